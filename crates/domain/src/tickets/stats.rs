//! Statistics for the leadership (rule 第六条(七)): what the register says
//! over a range of days, sans-IO over tickets and their timelines. Calls,
//! tickets by category and by outcome, per acknowledging unit and per week;
//! from the report (received) to the first page, 签收, 出警, arrival and
//! closing, the median and the 90th percentile (nearest rank); the
//! five-minute breach rate (第二十三条) of the tickets that were opened;
//! pages by channel and how many got through. Rendered as CSV, or as HTML
//! with the same pictures as SVG (drawn here: a bar chart and a time series
//! need no plotting crate) for the page, a printout and an e-mail alike.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::civil::Date;
use jiff::Timestamp;
use serde::Serialize;

use super::model::{Event, State, Ticket};
use crate::court_time::court_tz;

/// Seconds from the report to each later moment, per ticket.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Durations {
    pub first_page: Vec<f64>,
    pub acknowledged: Vec<f64>,
    pub dispatched: Vec<f64>,
    pub arrived: Vec<f64>,
    pub closed: Vec<f64>,
}

/// Median and 90th percentile of one duration, and how many it is of.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub count: usize,
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

/// Pages through one channel.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pages {
    pub attempts: usize,
    pub delivered: usize,
}

/// The report over `from..=to` (days in Asia/Shanghai).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: Date,
    pub to: Date,
    pub tickets: usize,
    pub by_category: BTreeMap<String, usize>,
    pub by_outcome: BTreeMap<String, usize>,
    /// By the unit of whoever acknowledged (`none`: not acknowledged).
    pub by_unit: BTreeMap<String, usize>,
    /// By ISO week (`2026-W49`).
    pub by_week: BTreeMap<String, usize>,
    /// Tickets received each day of the range (zeros included).
    pub per_day: Vec<(Date, usize)>,
    pub durations: Durations,
    pub first_page: Spread,
    pub acknowledged: Spread,
    pub dispatched: Spread,
    pub arrived: Spread,
    pub closed: Spread,
    /// Tickets that were opened (past the intake), and of them those that
    /// breached the five-minute rule.
    pub opened: usize,
    pub breaches: usize,
    pub pages: BTreeMap<String, Pages>,
}

/// A report's range is at most this many days.
pub const MAX_DAYS: i32 = 366;

/// At most this many tickets go into one report.
pub const MAX_TICKETS: usize = 200_000;

/// The range `from..=to` of days as given (`YYYY-MM-DD`), checked, and as
/// Unix seconds from the first day's midnight to the last one's end in
/// Asia/Shanghai; at most [`MAX_DAYS`] days. Errors name the parameter.
pub fn days(from: &str, to: &str) -> Result<(Date, Date, i64, i64), String> {
    let day = |name: &str, v: &str| {
        v.parse::<Date>()
            .map_err(|_| format!("{name} {v:?}: not a date (YYYY-MM-DD)"))
    };
    let (from, to) = (day("from", from)?, day("to", to)?);
    if to < from {
        return Err(format!("to {to} is before from {from}"));
    }
    // `from..=to` holds at most MAX_DAYS days (a year, a leap one too).
    if from.until(to).map_err(|e| e.to_string())?.get_days() >= MAX_DAYS {
        return Err(format!(
            "from {from}, to {to}: at most {MAX_DAYS} days at once"
        ));
    }
    let tz = court_tz();
    let midnight = |d: Date| {
        tz.to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .map(|t| t.as_second())
            .map_err(|e| e.to_string())
    };
    let next = to.tomorrow().map_err(|e| e.to_string())?;
    Ok((from, to, midnight(from)?, midnight(next)? - 1))
}

/// The nearest-rank percentile `p` (0-100) of `values`.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v.get(rank - 1).copied()
}

fn spread(values: &[f64]) -> Spread {
    Spread {
        count: values.len(),
        median: percentile(values, 50.0),
        p90: percentile(values, 90.0),
    }
}

/// The report of `tickets` (each with its timeline) received from `from`
/// to `to`; `unit_of` names a member's unit.
pub fn report(
    from: Date,
    to: Date,
    tickets: &[(Ticket, Vec<Event>)],
    unit_of: impl Fn(&str) -> Option<String>,
) -> Report {
    let mut r = Report {
        from,
        to,
        tickets: 0,
        by_category: BTreeMap::new(),
        by_outcome: BTreeMap::new(),
        by_unit: BTreeMap::new(),
        by_week: BTreeMap::new(),
        per_day: Vec::new(),
        durations: Durations::default(),
        first_page: spread(&[]),
        acknowledged: spread(&[]),
        dispatched: spread(&[]),
        arrived: spread(&[]),
        closed: spread(&[]),
        opened: 0,
        breaches: 0,
        pages: BTreeMap::new(),
    };
    let mut per_day: BTreeMap<Date, usize> = BTreeMap::new();
    let mut d = from;
    while d <= to {
        per_day.insert(d, 0);
        match d.tomorrow() {
            Ok(next) => d = next,
            Err(_) => break,
        }
    }
    for (t, timeline) in tickets {
        let day = crate::court_time::court_day(t.received_at);
        if day < from || day > to {
            continue;
        }
        r.tickets += 1;
        *per_day.entry(day).or_default() += 1;
        let reg = &t.register;
        let category = reg.intake.category.map_or("none", |c| c.as_str());
        *r.by_category.entry(category.into()).or_default() += 1;
        *r.by_outcome.entry(t.state.as_str().into()).or_default() += 1;
        let unit = reg
            .dispatch
            .acknowledged_by
            .as_deref()
            .map(|m| unit_of(m).unwrap_or_else(|| "center".into()))
            .unwrap_or_else(|| "none".into());
        *r.by_unit.entry(unit).or_default() += 1;
        let week = day.iso_week_date();
        let week = format!("{}-W{:02}", week.year(), week.week());
        *r.by_week.entry(week).or_default() += 1;
        if !matches!(t.state, State::Intake | State::Abandoned) {
            r.opened += 1;
            r.breaches += usize::from(reg.dispatch.five_minute_breach);
        }
        let since = |at: Option<Timestamp>| {
            at.map(|at| (at.as_millisecond() - t.received_at.as_millisecond()) as f64 / 1000.0)
        };
        let first_page = timeline.iter().find(|e| e.action == "page").map(|e| e.at);
        let durations = &mut r.durations;
        for (values, at) in [
            (&mut durations.first_page, first_page),
            (&mut durations.acknowledged, reg.dispatch.acknowledged_at),
            (&mut durations.dispatched, reg.dispatch.departed_at),
            (&mut durations.arrived, reg.dispatch.arrived_at),
            (&mut durations.closed, reg.disposal.closed_at),
        ] {
            values.extend(since(at));
        }
        for e in timeline.iter().filter(|e| e.action == "page") {
            let d: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
            let channel = d["channel"].as_str().unwrap_or("unknown").to_string();
            let p = r.pages.entry(channel).or_default();
            p.attempts += 1;
            p.delivered += usize::from(d["ok"].as_bool().unwrap_or(false));
        }
    }
    r.per_day = per_day.into_iter().collect();
    r.first_page = spread(&r.durations.first_page);
    r.acknowledged = spread(&r.durations.acknowledged);
    r.dispatched = spread(&r.durations.dispatched);
    r.arrived = spread(&r.durations.arrived);
    r.closed = spread(&r.durations.closed);
    r
}

impl Report {
    /// The five-minute breach rate of the tickets opened (none opened: 0).
    pub fn breach_rate(&self) -> f64 {
        match self.opened {
            0 => 0.0,
            n => self.breaches as f64 / n as f64,
        }
    }

    fn spreads(&self) -> [(&'static str, &'static str, Spread); 5] {
        [
            ("first_page", "首次呼叫", self.first_page),
            ("acknowledged", "签收", self.acknowledged),
            ("dispatched", "出警", self.dispatched),
            ("arrived", "到场", self.arrived),
            ("closed", "办结", self.closed),
        ]
    }

    /// One `section,key,value` row per figure: the key is text (a
    /// category, a unit, a channel: a CSV cell, neutralised), the section
    /// is ours and the value a number or a date we wrote.
    pub fn csv(&self) -> String {
        let mut out = String::from("section,key,value\n");
        let mut row = |s: &str, k: &str, v: String| {
            let _ = writeln!(out, "{s},{},{v}", super::csv::cell(k));
        };
        row("range", "from", self.from.to_string());
        row("range", "to", self.to.to_string());
        row("tickets", "all", self.tickets.to_string());
        for (section, map) in [
            ("category", &self.by_category),
            ("outcome", &self.by_outcome),
            ("unit", &self.by_unit),
            ("week", &self.by_week),
        ] {
            for (k, v) in map {
                row(section, k, v.to_string());
            }
        }
        let secs = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
        for (key, _, s) in self.spreads() {
            row("seconds_median", key, secs(s.median));
            row("seconds_p90", key, secs(s.p90));
        }
        row("five_minute", "opened", self.opened.to_string());
        row("five_minute", "breaches", self.breaches.to_string());
        row("five_minute", "rate", format!("{:.3}", self.breach_rate()));
        for (channel, p) in &self.pages {
            row("pages_attempts", channel, p.attempts.to_string());
            row("pages_delivered", channel, p.delivered.to_string());
        }
        out
    }

    /// A page (Chinese) with the figures and two pictures: tickets per day
    /// (a time series) and the minutes to 签收 and to 出警 (distributions).
    pub fn html(&self) -> String {
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>举报线索统计 {} 至 {}</title>\
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.2em .6em}}</style>\
<h1>举报线索统计</h1><p>{} 至 {}：共 {} 件；五分钟内未出警 {} 件，占已受理 {} 件的 {:.1}%。</p>",
            self.from,
            self.to,
            self.from,
            self.to,
            self.tickets,
            self.breaches,
            self.opened,
            self.breach_rate() * 100.0
        );
        let table = |h: &mut String, title: &str, map: &BTreeMap<String, usize>| {
            let _ = write!(h, "<h2>{}</h2><table>", esc(title));
            for (k, v) in map {
                let _ = write!(h, "<tr><td>{}</td><td>{v}</td></tr>", esc(k));
            }
            h.push_str("</table>");
        };
        table(&mut h, "按类别", &self.by_category);
        table(&mut h, "按结果", &self.by_outcome);
        table(&mut h, "按签收单位", &self.by_unit);
        table(&mut h, "按周", &self.by_week);
        h.push_str("<h2>响应时间（秒）</h2><table><tr><th></th><th>件数</th><th>中位数</th><th>90%</th></tr>");
        let secs = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0}"));
        for (_, name, s) in self.spreads() {
            let _ = write!(
                h,
                "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                s.count,
                secs(s.median),
                secs(s.p90)
            );
        }
        h.push_str("</table><h2>呼叫渠道</h2><table><tr><th></th><th>呼叫</th><th>送达</th></tr>");
        for (c, p) in &self.pages {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(c),
                p.attempts,
                p.delivered
            );
        }
        h.push_str("</table><h2>每日接报</h2>");
        h.push_str(&self.per_day_svg());
        h.push_str("<h2>签收、出警用时分布（分钟）</h2>");
        h.push_str(&self.minutes_svg());
        h.push_str("</html>\n");
        h
    }

    /// Tickets per day as a line (`<polyline id="per-day">`, one point a
    /// day, left to right).
    pub fn per_day_svg(&self) -> String {
        let (w, hgt, pad) = (640.0, 200.0, 30.0);
        let max = self
            .per_day
            .iter()
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let n = self.per_day.len().max(2) as f64 - 1.0;
        let points: Vec<String> = self
            .per_day
            .iter()
            .enumerate()
            .map(|(i, (_, c))| {
                let x = pad + (w - 2.0 * pad) * i as f64 / n;
                let y = hgt - pad - (hgt - 2.0 * pad) * *c as f64 / max;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\">\
<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#444\"/>\
<text x=\"2\" y=\"{t}\" font-size=\"11\">{max}</text>\
<polyline id=\"per-day\" fill=\"none\" stroke=\"#c00\" stroke-width=\"2\" points=\"{}\"/></svg>",
            points.join(" "),
            b = hgt - pad,
            r = w - pad,
            t = pad,
        )
    }

    /// How many tickets took 0-1, 1-2, ..., 9-10 and 10 or more minutes to
    /// 签收 and to 出警, as bars (`<rect class="acknowledged|dispatched"
    /// data-bucket="N" data-count="C">`).
    pub fn minutes_svg(&self) -> String {
        let buckets = |v: &[f64]| {
            let mut b = [0usize; 11];
            for s in v {
                b[((*s / 60.0).floor().max(0.0) as usize).min(10)] += 1;
            }
            b
        };
        let series = [
            (
                "acknowledged",
                "#06c",
                buckets(&self.durations.acknowledged),
            ),
            ("dispatched", "#c60", buckets(&self.durations.dispatched)),
        ];
        let max = series
            .iter()
            .flat_map(|(_, _, b)| b.iter().copied())
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let (w, hgt, pad) = (640.0, 200.0, 30.0);
        let slot = (w - 2.0 * pad) / 11.0;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\">"
        );
        for (k, (class, color, b)) in series.iter().enumerate() {
            for (i, c) in b.iter().enumerate() {
                let bh = (hgt - 2.0 * pad) * *c as f64 / max;
                let x = pad + slot * i as f64 + slot / 2.0 * k as f64;
                let _ = write!(
                    svg,
                    "<rect class=\"{class}\" data-bucket=\"{i}\" data-count=\"{c}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{color}\"/>",
                    hgt - pad - bh,
                    slot / 2.0 - 2.0
                );
            }
        }
        for i in 0..11 {
            let label = if i == 10 {
                "10+".to_string()
            } else {
                i.to_string()
            };
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{label}</text>",
                pad + slot * i as f64 + 4.0,
                hgt - pad + 14.0
            );
        }
        svg.push_str("</svg>");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v = [30.0, 10.0, 20.0, 50.0, 40.0];
        assert_eq!(percentile(&v, 50.0), Some(30.0));
        assert_eq!(percentile(&v, 90.0), Some(50.0));
        assert_eq!(percentile(&[], 50.0), None);
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 50.0), Some(5.0));
        assert_eq!(percentile(&ten, 90.0), Some(9.0));
    }

    #[test]
    fn an_empty_range_is_an_empty_report() {
        let d = jiff::civil::date(2026, 12, 1);
        let r = report(d, d, &[], |_| None);
        assert_eq!(r.tickets, 0);
        assert_eq!(r.breach_rate(), 0.0);
        assert_eq!(r.per_day, vec![(d, 0)]);
        assert!(r.csv().contains("tickets,all,0\n"));
        assert!(r.html().contains("<polyline id=\"per-day\""));
    }
}
