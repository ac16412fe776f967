//! The monthly report (第六条(七) analysis for the leadership, 第十九条's
//! monthly consultation, 第四十五条(一) the report to the district people's
//! congress start from it): one printable page (A4, a print stylesheet),
//! the month's figures against the previous month's, the charts inline as
//! SVG, the breaches listed with their tickets, the deadlines after
//! opening and the follow-up calls. Everything Chinese ([`crate::tickets::labels`]).

use std::fmt::Write as _;

use jiff::civil::Date;

use super::stats::{esc, Figure, Report};
use crate::court_time::local;
use crate::tickets::labels;

/// A month given as `YYYY-MM`: its first and last day; the error names
/// `month`.
pub fn month(v: &str) -> Result<(Date, Date), String> {
    let bad = || format!("month {v:?}: not a month (YYYY-MM)");
    let (y, m) = v.split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.len() != 2 {
        return Err(bad());
    }
    let (y, m): (i16, i8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let first = Date::new(y, m, 1).map_err(|_| bad())?;
    Ok((first, first.last_of_month()))
}

/// The month before the one starting on `first`: its first and last day.
pub fn previous(first: Date) -> Result<(Date, Date), String> {
    let last = first.yesterday().map_err(|e| e.to_string())?;
    Ok((last.first_of_month(), last))
}

/// The stylesheet: A4 with 15 mm margins when printed, charts kept whole,
/// tables repeating their heads.
pub const STYLE: &str = "@page{size:A4;margin:15mm}\
body{font-family:'WenQuanYi Micro Hei','Microsoft YaHei',sans-serif;font-size:11pt;margin:0 auto;max-width:180mm;color:#000}\
h1{font-size:18pt;text-align:center;margin:0 0 .3em}h2{font-size:13pt;margin:1em 0 .4em;border-bottom:1px solid #444}\
p.range{text-align:center;margin:0 0 1em}table{border-collapse:collapse;width:100%;margin:.3em 0}\
td,th{border:1px solid #888;padding:.15em .4em;text-align:left}td.n{text-align:right}\
thead{display:table-header-group}tr,figure{break-inside:avoid;page-break-inside:avoid}\
figure{margin:.6em 0}figure svg{width:100%;height:auto}.up{color:#b00}.down{color:#070}\
@media print{.noprint{display:none}}";

/// A change from the previous month's value.
fn change(cur: &Figure, prev: &Figure) -> String {
    let num = |f: &Figure| match f {
        Figure::Count(n) => Some(*n as f64),
        Figure::Seconds(v) => v.map(|v| v / 60.0),
        Figure::Days(v) => *v,
        Figure::Rate(v) => Some(*v * 100.0),
        Figure::Day(_) => None,
    };
    match (num(cur), num(prev)) {
        (Some(c), Some(p)) => {
            let d = c - p;
            let unit = if matches!(cur, Figure::Rate(_)) {
                "个百分点"
            } else {
                ""
            };
            match d {
                d if d.abs() < 1e-9 => "持平".into(),
                d if d > 0.0 => format!("<span class=\"up\">+{}{unit}</span>", trim(d)),
                d => format!("<span class=\"down\">{}{unit}</span>", trim(d)),
            }
        }
        _ => "—".into(),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// A figure as the report shows it: minutes for seconds, a percentage for
/// a share, a dash for none.
fn shown(f: &Figure) -> String {
    match f {
        Figure::Count(n) => n.to_string(),
        Figure::Seconds(Some(v)) => format!("{:.1} 分钟", v / 60.0),
        Figure::Days(Some(v)) => format!("{v:.0} 个工作日"),
        Figure::Rate(v) => format!("{:.1}%", v * 100.0),
        Figure::Day(d) => d.to_string(),
        Figure::Seconds(None) | Figure::Days(None) => "—".into(),
    }
}

/// The printable page of `cur` (a month) against `prev` (the month before).
pub fn html(cur: &Report, prev: &Report) -> String {
    let title = format!(
        "执行指挥中心工作月报（{}年{}月）",
        cur.from.year(),
        cur.from.month()
    );
    let mut h = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{title}</title>\
<style>{STYLE}</style></head><body><h1>{title}</h1><p class=\"range\">统计区间：{} 至 {}（上月 {} 至 {}）</p>",
        cur.from, cur.to, prev.from, prev.to
    );
    let _ = write!(
        h,
        "<h2>一、概况</h2><p>本月共接报 {} 件（上月 {} 件）；应在五分钟内出警 {} 件，超时 {} 件，超时率 {:.1}%（上月 {:.1}%）。\
咨询 {} 件，按期答复 {} 件，逾期 {} 件；公安及协助单位来电 {} 件，按时接人 {} 件。回访 {} 件，满意 {} 件。</p>",
        cur.tickets,
        prev.tickets,
        cur.opened,
        cur.breaches,
        cur.breach_rate() * 100.0,
        prev.breach_rate() * 100.0,
        cur.consultations.received,
        cur.consultations.answered_in_time,
        cur.consultations.overdue,
        cur.partners.received,
        cur.partners.collected_in_time,
        cur.follow_ups.called,
        cur.follow_ups.satisfied,
    );
    h.push_str(
        "<h2>二、主要数据与上月对比</h2><table><thead><tr><th>栏目</th><th>项目</th><th>本月</th><th>上月</th><th>增减</th></tr></thead><tbody>",
    );
    let prev_rows = prev.rows();
    for r in cur.rows() {
        // The range and the weeks differ from month to month.
        if matches!(r.section, "range" | "week") {
            continue;
        }
        let before = prev_rows
            .iter()
            .find(|p| p.section == r.section && p.key == r.key)
            .map(|p| p.value)
            .unwrap_or(match r.value {
                Figure::Count(_) => Figure::Count(0),
                v => v,
            });
        let _ = write!(
            h,
            "<tr data-figure=\"{}.{}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            r.section,
            esc(&r.key),
            // Seconds are shown in minutes here.
            esc(&r.group.replace("（秒）", "")),
            esc(&r.item),
            shown(&r.value),
            shown(&before),
            change(&r.value, &before)
        );
    }
    h.push_str("</tbody></table>");
    let _ = write!(
        h,
        "<h2>三、超过五分钟未出警的工单（{} 件）</h2>",
        cur.breached.len()
    );
    if cur.breached.is_empty() {
        h.push_str("<p>本月无。</p>");
    } else {
        h.push_str("<table id=\"breaches\"><thead><tr><th>工单号</th><th>接报时间</th><th>类别</th><th>状态</th><th>签收人</th><th>出警用时</th></tr></thead><tbody>");
        for b in &cur.breached {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(&b.ticket),
                local(b.received_at),
                b.category.map_or(labels::NO_CATEGORY, labels::category),
                labels::state(b.state),
                b.acknowledged_by
                    .as_deref()
                    .map_or("—".to_string(), |m| esc(&cur.member_name(m))),
                b.dispatched_after
                    .map_or("未出警".to_string(), |s| format!("{:.1} 分钟", s / 60.0)),
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("<h2>四、图表</h2>");
    for (id, svg) in super::charts::all(cur) {
        let _ = write!(h, "<figure data-chart=\"{id}\">{svg}</figure>");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::stats::sample::sample;

    #[test]
    fn a_month_is_its_first_to_last_day_and_bad_input_names_month() {
        let d = jiff::civil::date;
        assert_eq!(month("2026-11"), Ok((d(2026, 11, 1), d(2026, 11, 30))));
        assert_eq!(month("2028-02"), Ok((d(2028, 2, 1), d(2028, 2, 29))));
        assert_eq!(
            previous(d(2026, 1, 1)),
            Ok((d(2025, 12, 1), d(2025, 12, 31)))
        );
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-11-01"] {
            assert!(month(bad).unwrap_err().starts_with("month "), "{bad}");
        }
    }

    #[test]
    fn the_page_compares_lists_the_breaches_and_is_chinese() {
        let cur = sample();
        let mut prev = sample();
        prev.tickets = 3;
        let page = html(&cur, &prev);
        assert!(page.contains("@page{size:A4"), "A4 print stylesheet");
        assert!(page.contains(
            "<tr data-figure=\"tickets.all\"><td>接报</td><td>总数</td><td class=\"n\">5</td><td class=\"n\">3</td><td class=\"n\"><span class=\"up\">+2</span></td></tr>"
        ), "{page}");
        assert!(page.contains("<td>2026-000001</td><td>2026-11-30 10:00:00</td><td>执行线索</td><td>已出警</td><td>赵一</td><td class=\"n\">10.0 分钟</td>"), "{page}");
        assert_eq!(page.matches("<figure data-chart=").count(), 6);
        // Seconds compared in minutes, a share in percentage points.
        let (s, r) = (Figure::Seconds, Figure::Rate);
        assert_eq!(
            change(&s(Some(600.0)), &s(Some(300.0))),
            "<span class=\"up\">+5</span>"
        );
        assert_eq!(
            change(&r(0.25), &r(0.5)),
            "<span class=\"down\">-25个百分点</span>"
        );
        assert_eq!(change(&s(None), &s(Some(1.0))), "—");
        for english in ["lead", "dispatched", "unit-1", "u1-officer"] {
            assert!(!page.contains(&format!(">{english}<")), "{english}");
        }
    }
}
