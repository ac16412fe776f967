//! The statistics' charts as SVG, drawn by `plotters` (its SVG backend
//! only, docs/adr/0013-charts.md): axes with ticks and their units, dates
//! on the time axis, a legend for every series, every label Chinese
//! ([`crate::tickets::labels`]). Text is SVG `<text>` (the browser's fonts draw the
//! Chinese; no font is read here). Each chart is one `<svg>` string, for
//! the statistics page, the monthly report and the CLI alike.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::stats::Report;
use crate::tickets::labels;

/// The series' colours (the first for one series alone).
const COLOURS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x5f, 0xa8),
    RGBColor(0xd9, 0x6b, 0x00),
    RGBColor(0x2a, 0x8a, 0x3e),
    RGBColor(0x8e, 0x44, 0xad),
];

/// The five-minute rule's line.
const LIMIT: RGBColor = RGBColor(0xc0, 0x00, 0x00);

const FONT: &str = "sans-serif";

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Draws on a `w`×`h` SVG; a drawing error (none is expected: the ranges
/// are checked before) leaves the picture as far as it got.
fn svg(w: u32, h: u32, draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Drawn) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let _ = draw(&root);
        let _ = root.present();
    }
    out
}

/// A y axis's upper end for counts up to `max`: a little headroom, at least 1.
fn top(max: f64) -> f64 {
    (max * 1.15).max(1.0).ceil()
}

/// Calls (every ticket) and leads (category `lead`) per day: two lines
/// over the dates of the range.
pub fn per_day(r: &Report) -> String {
    let days: Vec<String> = r
        .per_day
        .iter()
        .map(|(d, _)| format!("{}月{}日", d.month(), d.day()))
        .collect();
    let n = days.len().max(1);
    let max = r.per_day.iter().map(|(_, c)| *c).max().unwrap_or(0) as f64;
    let series = [
        ("来电", &r.per_day),
        (
            labels::category(super::model::Category::Lead),
            &r.leads_per_day,
        ),
    ];
    svg(760, 300, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("每日来电与执行线索", (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top(max))?;
        chart
            .configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&|x| at_whole(*x, &days))
            .y_labels(6)
            .y_label_formatter(&|y| whole(*y))
            .x_desc("日期")
            .y_desc("件数")
            .label_style((FONT, 13))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        for (i, (name, values)) in series.iter().enumerate() {
            let colour = COLOURS[i];
            chart
                .draw_series(LineSeries::new(
                    values
                        .iter()
                        .enumerate()
                        .map(|(x, (_, c))| (x as f64, *c as f64)),
                    colour.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart.draw_series(
                values
                    .iter()
                    .enumerate()
                    .map(|(x, (_, c))| Circle::new((x as f64, *c as f64), 3, colour.filled())),
            )?;
        }
        legend(&mut chart)
    })
}

/// How many tickets took 0–1, 1–2, …, 9–10 and 10 or more minutes from the
/// report to the first page, 签收, 出警 and arrival, as grouped bars, with
/// the five-minute line between the 4–5 and the 5–6 minutes.
pub fn minutes(r: &Report) -> String {
    let buckets = |v: &[f64]| {
        let mut b = [0f64; 11];
        for s in v {
            b[((*s / 60.0).floor().max(0.0) as usize).min(10)] += 1.0;
        }
        b.to_vec()
    };
    let d = &r.durations;
    let series = [
        ("首次呼叫", buckets(&d.first_page)),
        ("签收", buckets(&d.acknowledged)),
        ("出警", buckets(&d.dispatched)),
        ("到场", buckets(&d.arrived)),
    ];
    let groups: Vec<String> = (0..11)
        .map(|i| match i {
            10 => "≥10".to_string(),
            i => format!("{i}–{}", i + 1),
        })
        .collect();
    bars(
        "接报后用时分布",
        &groups,
        &series,
        "接报后分钟数",
        Some((4.5, "五分钟时限")),
    )
}

/// Breaches of the five-minute rule per ISO week, beside the tickets
/// opened that week that were held to it.
pub fn breaches_per_week(r: &Report) -> String {
    let weeks: Vec<String> = r
        .opened_by_week
        .keys()
        .map(|w| labels::week_key(w))
        .collect();
    let of = |m: &std::collections::BTreeMap<String, usize>| {
        r.opened_by_week
            .keys()
            .map(|w| m.get(w).copied().unwrap_or(0) as f64)
            .collect::<Vec<_>>()
    };
    let series = [
        ("应出警", of(&r.opened_by_week)),
        ("超五分钟未出警", of(&r.breaches_by_week)),
    ];
    bars("每周超时出警", &weeks, &series, "周", None)
}

/// Tickets by category (every category, and those with none).
pub fn by_category(r: &Report) -> String {
    let rows: Vec<(String, f64)> = r
        .categories()
        .into_iter()
        .map(|(k, v)| (labels::category_key(k), v as f64))
        .collect();
    hbars("按类别", &rows, "件数")
}

/// Tickets by the unit of whoever acknowledged them, by the roster's names.
pub fn by_unit(r: &Report) -> String {
    let rows: Vec<(String, f64)> = r
        .by_unit
        .iter()
        .map(|(k, v)| (r.unit_name(k), *v as f64))
        .collect();
    hbars("按签收单位", &rows, "件数")
}

/// The deadlines after opening: consultations answered, partners'
/// persons collected, arrivals after 出警, property leads checked; in time
/// against late or missed.
pub fn deadlines(r: &Report) -> String {
    let (c, p, a, v) = (&r.consultations, &r.partners, &r.arrivals, &r.property);
    let groups = ["咨询答复", "公安接人", "出警到场", "财产线索核查"].map(String::from);
    let series = [
        (
            "按时",
            vec![
                c.answered_in_time,
                p.collected_in_time,
                a.in_time,
                v.verified_in_time,
            ],
        ),
        (
            "逾期或超时",
            vec![c.overdue, p.missed, a.late + a.never_arrived, v.missed],
        ),
    ]
    .map(|(n, v)| (n, v.into_iter().map(|x| x as f64).collect::<Vec<_>>()));
    bars("时限执行情况", &groups, &series, "", None)
}

/// Every chart of a report, in the order the pages show them.
pub fn all(r: &Report) -> Vec<(&'static str, String)> {
    vec![
        ("per-day", per_day(r)),
        ("minutes", minutes(r)),
        ("breaches", breaches_per_week(r)),
        ("category", by_category(r)),
        ("unit", by_unit(r)),
        ("deadlines", deadlines(r)),
    ]
}

/// The label of the group at a whole `x`, none between.
fn at_whole(x: f64, names: &[String]) -> String {
    let i = x.round();
    match (x - i).abs() < 1e-6 && i >= 0.0 {
        true => names.get(i as usize).cloned().unwrap_or_default(),
        false => String::new(),
    }
}

/// A count's tick: whole numbers only.
fn whole(y: f64) -> String {
    match (y - y.round()).abs() < 1e-6 {
        true => format!("{y:.0}"),
        false => String::new(),
    }
}

fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 13))
        .draw()
        .map_err(|e| e.to_string().into())
}

/// Grouped vertical bars: one group per `groups` name, one bar per series
/// in it; `line`: a vertical line at that x (between groups) with its name.
fn bars(
    title: &str,
    groups: &[String],
    series: &[(&str, Vec<f64>)],
    x_desc: &str,
    line: Option<(f64, &str)>,
) -> String {
    let n = groups.len().max(1);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0, f64::max);
    let width = 0.8 / series.len().max(1) as f64;
    svg(760, 300, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top(max))?;
        let (xf, yf) = (|x: &f64| at_whole(*x, groups), |y: &f64| whole(*y));
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh();
        mesh.x_labels(n + 1)
            .x_label_formatter(&xf)
            .y_labels(6)
            .y_label_formatter(&yf)
            .y_desc("件数")
            .label_style((FONT, 13))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.12));
        if !x_desc.is_empty() {
            mesh.x_desc(x_desc);
        }
        mesh.draw()?;
        for (k, (name, values)) in series.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let left = |i: usize| i as f64 - 0.4 + width * k as f64;
            chart
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    Rectangle::new(
                        [(left(i), 0.0), (left(i) + width * 0.92, *v)],
                        colour.filled(),
                    )
                }))?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                });
        }
        if let Some((x, name)) = line {
            let t = top(max);
            chart
                .draw_series(LineSeries::new([(x, 0.0), (x, t)], LIMIT.stroke_width(2)))?
                .label(name)
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], LIMIT.stroke_width(2))
                });
        }
        legend(&mut chart)
    })
}

/// Horizontal bars, one per row (named on the y axis), top to bottom.
fn hbars(title: &str, rows: &[(String, f64)], x_desc: &str) -> String {
    let n = rows.len().max(1);
    let max = rows.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    // Top to bottom: row 0 at the top.
    let names: Vec<String> = rows.iter().rev().map(|(k, _)| k.clone()).collect();
    let height = 80 + 28 * n as u32;
    svg(760, height, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(170)
            .build_cartesian_2d(0f64..top(max), -0.5f64..(n as f64 - 0.5))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n + 1)
            .y_label_formatter(&|y| at_whole(*y, &names))
            .x_labels(6)
            .x_label_formatter(&|x| whole(*x))
            .x_desc(x_desc)
            .label_style((FONT, 13))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        let colour = COLOURS[0];
        chart
            .draw_series(rows.iter().rev().enumerate().map(|(i, (_, v))| {
                Rectangle::new(
                    [(0.0, i as f64 - 0.35), (*v, i as f64 + 0.35)],
                    colour.filled(),
                )
            }))?
            .label("件数")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        chart.draw_series(rows.iter().rev().enumerate().map(|(i, (_, v))| {
            Text::new(
                format!("{v:.0}"),
                (*v, i as f64),
                (FONT, 13).into_font().color(&BLACK),
            )
        }))?;
        legend(&mut chart)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::stats::sample::sample;

    /// The `<text>` elements' contents, trimmed.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>').map(|(_, r)| r))
            .filter_map(|r| r.split_once("</text>").map(|(t, _)| t.trim().to_string()))
            .collect()
    }

    #[test]
    fn the_per_day_chart_has_dates_units_and_a_legend() {
        let r = sample();
        let svg = per_day(&r);
        assert!(svg.starts_with("<svg"), "{svg}");
        let t = texts(&svg);
        for want in [
            "每日来电与执行线索",
            "11月30日",
            "12月1日",
            "日期",
            "件数",
            "来电",
            "执行线索",
            "0",
        ] {
            assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
        }
        // No English id, no font file: text is text.
        assert!(!svg.contains("lead"), "{svg}");
    }

    #[test]
    fn the_minutes_chart_has_the_five_minute_line_and_four_series() {
        let t = texts(&minutes(&sample()));
        for want in [
            "首次呼叫",
            "签收",
            "出警",
            "到场",
            "五分钟时限",
            "0–1",
            "4–5",
            "≥10",
            "接报后分钟数",
        ] {
            assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
        }
    }

    #[test]
    fn categories_units_and_weeks_are_named() {
        let r = sample();
        let t = texts(&by_category(&r));
        for want in ["执行线索", "暴力抗法/突发事件", "咨询", "未分类"] {
            assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
        }
        let t = texts(&by_unit(&r));
        assert!(t.iter().any(|x| x == "执行一组"), "{t:?}");
        assert!(t.iter().any(|x| x == "未签收"), "{t:?}");
        let t = texts(&breaches_per_week(&r));
        assert!(t.iter().any(|x| x == "2026年第49周"), "{t:?}");
        assert!(t.iter().any(|x| x == "超五分钟未出警"), "{t:?}");
        let t = texts(&deadlines(&r));
        assert!(t.iter().any(|x| x == "咨询答复"), "{t:?}");
    }
}
