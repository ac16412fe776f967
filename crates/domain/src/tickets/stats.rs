//! Statistics for the leadership (rule 第六条(七)): what the register says
//! over a range of days, sans-IO over tickets and their timelines. Calls,
//! tickets by category (every category, zeros included) and by outcome,
//! per acknowledging unit and per week; from the report (received) to the
//! first page, 签收, 出警, arrival and closing, the median and the 90th
//! percentile (nearest rank); the five-minute breach rate (第二十三条);
//! pages by channel and how many got through. Then the clocks after
//! opening, each judged by [`kept`] against the report's `now`:
//! consultations answered in time, partners' pickups, linked reports,
//! arrivals after dispatch, property leads checked in time. Rendered as
//! CSV, or as HTML with the same pictures as SVG (drawn here: a bar chart
//! and a time series need no plotting crate) for the page, a printout and
//! an e-mail alike.
//!
//! Which tickets each figure counts (every figure: tickets received in the
//! range):
//!
//! | figure | of the tickets |
//! |---|---|
//! | `tickets`, `by_*`, `per_day`, `pages` | all |
//! | the durations and their spreads, `opened`, `breaches` | of a category held to the five-minute rule ([`Category::five_minute_rule`]: not consultations or complaints, which are never dispatched) |
//! | `consultations` | category `consultation` |
//! | `partners` | category `partner` |
//! | `linked` | `triage.linked` or `triage.joined` given |
//! | `arrivals` | dispatched (`dispatch.departed_at`), any category |
//! | `property` | marked as a property lead (`property`) |

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::clocks::DispatchSettings;
use super::model::{Category, Event, Register, State, Ticket};
use crate::court_time::{court_day, court_tz};
use crate::roster::Calendar;

/// Seconds from the report to each later moment, per ticket held to the
/// five-minute rule (a consultation's answer is in [`Consultations`]).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Durations {
    pub first_page: Vec<f64>,
    pub acknowledged: Vec<f64>,
    pub dispatched: Vec<f64>,
    pub arrived: Vec<f64>,
    pub closed: Vec<f64>,
}

/// Median and 90th percentile of one duration, and how many it is of.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
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

/// Consultations (咨询, category `consultation`): answered by the case's
/// handler by `deadlines.answer_by`, never dispatched.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Consultations {
    /// Consultations received.
    pub received: usize,
    /// Of them, answered (an `answer` recorded), in time or not.
    pub answered: usize,
    /// Answered at or before their `deadlines.answer_by`.
    pub answered_in_time: usize,
    /// Answered after `answer_by`, or not answered when it passed: still
    /// open at the report's `now`, or ended unanswered after it.
    pub overdue: usize,
    /// Of those answered, the working days from the day received to the
    /// day answered ([`working_days`]: 0 the same day).
    pub working_days_to_answer: Spread,
}

/// Calls of the police and assisting units (category `partner`): the
/// person they hold is collected (officers on scene) by
/// `deadlines.pickup_by`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartnerCalls {
    /// Partner calls received.
    pub received: usize,
    /// On scene (`dispatch.arrived_at`) at or before `pickup_by`.
    pub collected_in_time: usize,
    /// On scene after `pickup_by`, or nobody on scene when it passed.
    pub missed: usize,
}

/// Reports on a case already reported within the linking window
/// (`[cases] link_days`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Linked {
    /// Tickets with earlier ones on the same case (`triage.linked` not
    /// empty): the second report on a case and later ones.
    pub reports: usize,
    /// Tickets sent to the officers already dispatched on the case's
    /// earlier lead (`triage.joined`) instead of a dispatch of their own.
    pub joined: usize,
}

/// On scene after 出警, by the arrival deadline ([`arrival_due`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Arrivals {
    /// Tickets dispatched (`dispatch.departed_at`), of any category.
    pub dispatched: usize,
    /// On scene (`dispatch.arrived_at`) by the arrival deadline.
    pub in_time: usize,
    /// On scene after it.
    pub late: usize,
    /// Nobody on scene when it passed (still not at the report's `now`, or
    /// the ticket ended without an arrival after it). The rest of those
    /// dispatched are on the way, or were called off before the deadline.
    pub never_arrived: usize,
}

/// Leads marked as property leads (财产线索), checked by
/// `deadlines.verify_by` (seven days, three when urgent).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PropertyLeads {
    /// Tickets marked (`property`).
    pub marked: usize,
    /// Checked (`property.verified_at`) at or before `verify_by`.
    pub verified_in_time: usize,
    /// Checked after `verify_by`, or unchecked when it passed.
    pub missed: usize,
}

/// What the figures are measured against besides the tickets.
#[derive(Debug, Clone, Copy)]
pub struct Basis<'a> {
    /// The moment of the report: a deadline before it that a ticket still
    /// open has not met is missed.
    pub now: Timestamp,
    /// The court's calendar, for the working days to an answer.
    pub calendar: &'a Calendar,
    /// `[dispatch]`: a dispatch with no `arrive_by` of its own is due on
    /// scene `arrive_minutes` after it left.
    pub dispatch: &'a DispatchSettings,
}

/// One table of figures: its CSV section and HTML title, and its rows as
/// `(key, label, value)` (a value of none is empty).
struct Table {
    section: &'static str,
    title: &'static str,
    rows: Vec<(&'static str, &'static str, String)>,
}

/// The report over `from..=to` (days in Asia/Shanghai).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: Date,
    pub to: Date,
    pub tickets: usize,
    /// Every category (zeros included), and `none` for tickets that got
    /// no category.
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
    /// Tickets that were opened (past the intake) of a category held to
    /// the five-minute rule ([`Category::five_minute_rule`]; consultations
    /// and complaints are never dispatched): the breach rate's denominator.
    pub opened: usize,
    /// Of them, those that breached the rule (`dispatch.five_minute_breach`).
    pub breaches: usize,
    pub pages: BTreeMap<String, Pages>,
    pub consultations: Consultations,
    pub partners: PartnerCalls,
    pub linked: Linked,
    pub arrivals: Arrivals,
    pub property: PropertyLeads,
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

/// How one deadline went: `Some(true)` met (`done` at or before `due`),
/// `Some(false)` missed (`done` after it, or not done when it passed while
/// the ticket waited, that is before `until`: the ticket's end, or the
/// report's `now` while it is open), `None` when there is no deadline or
/// it has not passed undone (pending, or the ticket ended first).
pub fn kept(due: Option<Timestamp>, done: Option<Timestamp>, until: Timestamp) -> Option<bool> {
    let due = due?;
    match done {
        Some(done) => Some(done <= due),
        None if due < until => Some(false),
        None => None,
    }
}

/// When a dispatched ticket is due on scene: its `deadlines.arrive_by`,
/// or `arrive_minutes` after it left (`dispatch.departed_at`) when it has
/// none (dispatched before the clock was kept). `None`: not dispatched.
pub fn arrival_due(r: &Register, dispatch: &DispatchSettings) -> Option<Timestamp> {
    let after = i64::try_from(dispatch.arrive_minutes.saturating_mul(60)).unwrap_or(i64::MAX);
    r.deadlines.arrive_by.or_else(|| {
        r.dispatch
            .departed_at
            .and_then(|d| d.checked_add(SignedDuration::from_secs(after)).ok())
    })
}

/// The working days after `from`'s day up to and including `to`'s (days in
/// Asia/Shanghai, by the court's calendar: holidays off, adjusted
/// weekend days on): 0 when both fall on one day, or `to` is not later.
/// At most ten years of days are walked.
pub fn working_days(calendar: &Calendar, from: Timestamp, to: Timestamp) -> usize {
    let last = court_day(to);
    let mut d = court_day(from);
    let mut n = 0;
    for _ in 0..3660 {
        match d.tomorrow() {
            Ok(next) if next <= last => d = next,
            _ => break,
        }
        n += usize::from(calendar.day(d).0.is_working());
    }
    n
}

/// When a ticket reached its final state (closed: its closing time; else
/// the timeline's entry), `None` while it is open.
fn ended(t: &Ticket, timeline: &[Event]) -> Option<Timestamp> {
    if !t.state.is_final() {
        return None;
    }
    let closed = t
        .register
        .disposal
        .closed_at
        .filter(|_| t.state == State::Closed);
    closed
        .or_else(|| timeline.iter().find(|e| e.to.is_final()).map(|e| e.at))
        .or(Some(t.received_at))
}

/// The report of `tickets` (each with its timeline) received from `from`
/// to `to`; `unit_of` names a member's unit; the deadlines are judged as
/// of `basis.now`.
pub fn report(
    from: Date,
    to: Date,
    tickets: &[(Ticket, Vec<Event>)],
    unit_of: impl Fn(&str) -> Option<String>,
    basis: &Basis,
) -> Report {
    let mut r = Report {
        from,
        to,
        tickets: 0,
        by_category: Category::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), 0))
            .collect(),
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
        consultations: Consultations::default(),
        partners: PartnerCalls::default(),
        linked: Linked::default(),
        arrivals: Arrivals::default(),
        property: PropertyLeads::default(),
    };
    let mut to_answer = Vec::new();
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
        let day = court_day(t.received_at);
        if day < from || day > to {
            continue;
        }
        r.tickets += 1;
        *per_day.entry(day).or_default() += 1;
        let reg = &t.register;
        let category = reg.intake.category;
        let name = category.map_or("none", |c| c.as_str());
        *r.by_category.entry(name.into()).or_default() += 1;
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
        // A ticket with no category yet is a lead.
        let held = category.is_none_or(Category::five_minute_rule);
        if held {
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
        }
        clocks(&mut r, reg, ended(t, timeline).unwrap_or(basis.now), basis);
        if let (Some(Category::Consultation), Some(a)) = (category, &reg.answer) {
            to_answer.push(working_days(basis.calendar, t.received_at, a.at) as f64);
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
    r.consultations.working_days_to_answer = spread(&to_answer);
    r
}

/// The clocks after opening of one ticket into `r`; `until`: its end, or
/// the report's `now` while it is open.
fn clocks(r: &mut Report, reg: &Register, until: Timestamp, basis: &Basis) {
    let d = &reg.deadlines;
    let arrived = reg.dispatch.arrived_at;
    match reg.intake.category {
        Some(Category::Consultation) => {
            let c = &mut r.consultations;
            let answered = reg.answer.as_ref().map(|a| a.at);
            c.received += 1;
            c.answered += usize::from(answered.is_some());
            match kept(d.answer_by, answered, until) {
                Some(true) => c.answered_in_time += 1,
                Some(false) => c.overdue += 1,
                None => {}
            }
        }
        Some(Category::Partner) => {
            let p = &mut r.partners;
            p.received += 1;
            match kept(d.pickup_by, arrived, until) {
                Some(true) => p.collected_in_time += 1,
                Some(false) => p.missed += 1,
                None => {}
            }
        }
        _ => {}
    }
    r.linked.reports += usize::from(!reg.triage.linked.is_empty());
    r.linked.joined += usize::from(reg.triage.joined.is_some());
    if reg.dispatch.departed_at.is_some() {
        let a = &mut r.arrivals;
        a.dispatched += 1;
        match (
            kept(arrival_due(reg, basis.dispatch), arrived, until),
            arrived,
        ) {
            (Some(true), _) => a.in_time += 1,
            (Some(false), Some(_)) => a.late += 1,
            (Some(false), None) => a.never_arrived += 1,
            (None, _) => {}
        }
    }
    if let Some(p) = &reg.property {
        let v = &mut r.property;
        v.marked += 1;
        match kept(d.verify_by, p.verified_at, until) {
            Some(true) => v.verified_in_time += 1,
            Some(false) => v.missed += 1,
            None => {}
        }
    }
}

impl Report {
    /// The five-minute breach rate: `breaches` over `opened`, the tickets
    /// opened of a category held to the rule (none opened: 0).
    pub fn breach_rate(&self) -> f64 {
        match self.opened {
            0 => 0.0,
            n => self.breaches as f64 / n as f64,
        }
    }

    /// The clocks after opening, a table each: the CSV's rows and the
    /// HTML's tables alike.
    fn clock_tables(&self) -> [Table; 5] {
        let n = |v: usize| v.to_string();
        let days = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.0}"));
        let (c, p, l, a, v) = (
            &self.consultations,
            &self.partners,
            &self.linked,
            &self.arrivals,
            &self.property,
        );
        let answer = c.working_days_to_answer;
        let table = |section, title, rows| Table {
            section,
            title,
            rows,
        };
        [
            table(
                "consultations",
                "咨询",
                vec![
                    ("received", "接到", n(c.received)),
                    ("answered", "已答复", n(c.answered)),
                    ("answered_in_time", "按期答复", n(c.answered_in_time)),
                    ("overdue", "逾期", n(c.overdue)),
                    (
                        "working_days_median",
                        "答复用时中位数（工作日）",
                        days(answer.median),
                    ),
                    (
                        "working_days_p90",
                        "答复用时90%（工作日）",
                        days(answer.p90),
                    ),
                ],
            ),
            table(
                "partners",
                "公安及协助单位来电",
                vec![
                    ("received", "接到", n(p.received)),
                    ("collected_in_time", "按时接人", n(p.collected_in_time)),
                    ("missed", "超时", n(p.missed)),
                ],
            ),
            table(
                "linked",
                "关联举报",
                vec![
                    ("reports", "同案再次举报", n(l.reports)),
                    ("joined", "交已出警人员", n(l.joined)),
                ],
            ),
            table(
                "arrivals",
                "出警后到场",
                vec![
                    ("dispatched", "出警", n(a.dispatched)),
                    ("in_time", "按时到场", n(a.in_time)),
                    ("late", "超时到场", n(a.late)),
                    ("never_arrived", "未到场", n(a.never_arrived)),
                ],
            ),
            table(
                "property",
                "财产线索",
                vec![
                    ("marked", "标记", n(v.marked)),
                    ("verified_in_time", "按期核查", n(v.verified_in_time)),
                    ("missed", "逾期", n(v.missed)),
                ],
            ),
        ]
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
        for t in self.clock_tables() {
            for (key, _, value) in t.rows {
                row(t.section, key, value);
            }
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
<h1>举报线索统计</h1><p>{} 至 {}：共 {} 件；五分钟内未出警 {} 件，占应出警 {} 件的 {:.1}%（咨询、信访投诉不出警，不计）。</p>",
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
        h.push_str("</table>");
        for t in self.clock_tables() {
            let _ = write!(h, "<h2>{}</h2><table>", t.title);
            for (key, label, value) in t.rows {
                let value = if value.is_empty() { "—" } else { &value };
                let _ = write!(
                    h,
                    "<tr data-figure=\"{}.{key}\"><td>{label}</td><td>{value}</td></tr>",
                    t.section
                );
            }
            h.push_str("</table>");
        }
        h.push_str("<h2>每日接报</h2>");
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
    use crate::tickets::model::{Answer, Property};

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
        let (calendar, dispatch) = (Calendar::default(), DispatchSettings::default());
        let basis = Basis {
            now: at("2026-12-02T00:00:00Z"),
            calendar: &calendar,
            dispatch: &dispatch,
        };
        let r = report(d, d, &[], |_| None, &basis);
        assert_eq!(r.tickets, 0);
        assert_eq!(r.breach_rate(), 0.0);
        assert_eq!(r.per_day, vec![(d, 0)]);
        assert!(r.csv().contains("tickets,all,0\n"));
        // Every category is counted, the new ones too, at zero.
        assert!(r.csv().contains("category,partner,0\n"));
        assert!(r.csv().contains("category,consultation,0\n"));
        assert!(r.csv().contains("consultations,working_days_median,\n"));
        assert!(r.html().contains("<polyline id=\"per-day\""));
        // No answer yet: no working days, a dash on the page.
        assert!(r.html().contains(
            "<tr data-figure=\"consultations.working_days_median\"><td>答复用时中位数（工作日）</td><td>—</td></tr>"
        ));
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_deadline_is_met_missed_or_undecided() {
        let due = Some(at("2026-11-02T10:00:00Z"));
        let (before, on, after) = (
            at("2026-11-02T09:59:00Z"),
            at("2026-11-02T10:00:00Z"),
            at("2026-11-02T10:01:00Z"),
        );
        // Done: by the deadline (at it too) or after it, whenever asked.
        assert_eq!(kept(due, Some(before), after), Some(true));
        assert_eq!(kept(due, Some(on), after), Some(true));
        assert_eq!(kept(due, Some(after), before), Some(false));
        // Not done: missed once it passed while the ticket waited.
        assert_eq!(kept(due, None, after), Some(false));
        assert_eq!(kept(due, None, on), None);
        assert_eq!(kept(due, None, before), None);
        // No deadline, nothing to judge.
        assert_eq!(kept(None, Some(before), after), None);
        assert_eq!(kept(None, None, after), None);
    }

    #[test]
    fn an_arrival_is_due_by_its_deadline_or_arrive_minutes_after_leaving() {
        let dispatch = DispatchSettings::default(); // 30 minutes
        let mut r = Register::default();
        assert_eq!(arrival_due(&r, &dispatch), None, "not dispatched");
        r.dispatch.departed_at = Some(at("2026-11-02T02:10:00Z"));
        assert_eq!(arrival_due(&r, &dispatch), Some(at("2026-11-02T02:40:00Z")));
        r.deadlines.arrive_by = Some(at("2026-11-02T02:35:00Z"));
        assert_eq!(arrival_due(&r, &dispatch), Some(at("2026-11-02T02:35:00Z")));
    }

    /// National Day 2026: 1-7 October off, Saturday 10 October worked.
    fn national_day() -> Calendar {
        let mut c = Calendar::default();
        c.add(
            r#"
            year = 2026
            source = "test"
            holidays = [{ name = "国庆节", from = "2026-10-01", to = "2026-10-07" }]
            adjusted_working_days = ["2026-10-10"]
            "#,
            "2026.toml",
        )
        .unwrap();
        c
    }

    #[test]
    fn working_days_skip_holidays_and_count_adjusted_saturdays() {
        let c = national_day();
        let days = |a: &str, b: &str| working_days(&c, at(a), at(b));
        // Wednesday 30 September, 10:00 and 16:00 in Qingdao: the same day.
        assert_eq!(days("2026-09-30T02:00:00Z", "2026-09-30T08:00:00Z"), 0);
        // To Thursday 8 October: the holiday week, then the 8th.
        assert_eq!(days("2026-09-30T02:00:00Z", "2026-10-08T02:00:00Z"), 1);
        // Friday 9 to Monday 12 October: Saturday the 10th worked, Sunday not.
        assert_eq!(days("2026-10-09T02:00:00Z", "2026-10-12T02:00:00Z"), 2);
        // 23:30 Thursday to 00:30 Friday in Qingdao: one working day.
        assert_eq!(days("2026-10-08T15:30:00Z", "2026-10-08T16:30:00Z"), 1);
        // Backwards: none.
        assert_eq!(days("2026-10-12T02:00:00Z", "2026-10-09T02:00:00Z"), 0);
    }

    #[test]
    fn the_five_minute_rule_holds_where_the_default_policies_watch_it() {
        let policies = crate::escalation::Policies::default();
        for c in Category::ALL {
            let watched = policies
                .for_category(Some(c))
                .steps
                .iter()
                .any(|s| s.breach);
            assert_eq!(c.five_minute_rule(), watched, "{}", c.as_str());
        }
    }

    /// One ticket received at `received` (UTC) in `state`, its register
    /// edited; `ended`: the timeline's entry of its final state.
    fn ticket(
        n: usize,
        category: Category,
        state: State,
        received: &str,
        ended: Option<&str>,
        edit: impl FnOnce(&mut Register),
    ) -> (Ticket, Vec<Event>) {
        let mut register = Register::default();
        register.intake.category = Some(category);
        edit(&mut register);
        let timeline = ended
            .map(|e| Event {
                id: "1-0".into(),
                at: at(e),
                actor: "test".into(),
                action: state.as_str().into(),
                from: Some(State::Open),
                to: state,
                version: 2,
                details: "{}".into(),
            })
            .into_iter()
            .collect();
        let t = Ticket {
            number: format!("2026-{n:06}"),
            call_id: format!("{n}@t"),
            state,
            version: 2,
            received_at: at(received),
            register,
        };
        (t, timeline)
    }

    fn answer(when: &str) -> Option<Answer> {
        Some(Answer {
            by: "m-zhao".into(),
            at: at(when),
            via: "callback".into(),
            text: "已答复".into(),
        })
    }

    fn property(urgent: bool, verified: Option<&str>) -> Option<Property> {
        Some(Property {
            urgent,
            by: "m-chen".into(),
            at: at("2026-11-02T03:00:00Z"),
            verified_at: verified.map(at),
            result: None,
        })
    }

    /// Monday 2 November 2026, every ticket received at 10:00 in Qingdao
    /// (02:00Z); the report made on 10 November. Each expected figure is
    /// worked out beside the ticket that makes it.
    #[test]
    fn the_clocks_after_opening_are_counted_as_worked_out_by_hand() {
        use Category::*;
        let r0 = "2026-11-02T02:00:00Z";
        // Answer deadline: Thursday 5 November, 17:00 in Qingdao.
        let answer_by = Some(at("2026-11-05T09:00:00Z"));
        let tickets = vec![
            // a: answered Wednesday, in time; 3 and 4 November: 2 working days.
            ticket(1, Consultation, State::Closed, r0, None, |r| {
                r.deadlines.answer_by = answer_by;
                r.answer = answer("2026-11-04T02:00:00Z");
                r.disposal.closed_at = Some(at("2026-11-04T02:00:00Z"));
            }),
            // b: open, unanswered past its deadline: overdue.
            ticket(2, Consultation, State::Open, r0, None, |r| {
                r.deadlines.answer_by = answer_by;
            }),
            // c: open, due after the report: neither.
            ticket(3, Consultation, State::Open, r0, None, |r| {
                r.deadlines.answer_by = Some(at("2026-11-12T09:00:00Z"));
            }),
            // d: answered Friday, late: overdue; 3 to 6 November: 4 days.
            ticket(4, Consultation, State::Closed, r0, None, |r| {
                r.deadlines.answer_by = answer_by;
                r.answer = answer("2026-11-06T02:00:00Z");
            }),
            // m: closed unanswered after the deadline: overdue.
            ticket(5, Consultation, State::Closed, r0, None, |r| {
                r.deadlines.answer_by = answer_by;
                r.disposal.closed_at = Some(at("2026-11-06T02:00:00Z"));
            }),
            // n: cancelled before the deadline, unanswered: neither.
            ticket(
                6,
                Consultation,
                State::Cancelled,
                r0,
                Some("2026-11-03T02:00:00Z"),
                |r| r.deadlines.answer_by = answer_by,
            ),
            // e: a partner's person collected at 10:25, by 10:30; dispatched
            // 10:10, no arrive_by: due 10:40, on scene in time.
            ticket(7, Partner, State::OnScene, r0, None, |r| {
                r.intake.partner = Some("市北公安分局".into());
                r.deadlines.pickup_by = Some(at("2026-11-02T02:30:00Z"));
                r.dispatch.departed_at = Some(at("2026-11-02T02:10:00Z"));
                r.dispatch.arrived_at = Some(at("2026-11-02T02:25:00Z"));
            }),
            // f: collected at 10:50, after 10:30: missed; dispatched 10:20,
            // due 10:50: on scene in time (at the deadline). Breached.
            ticket(8, Partner, State::OnScene, r0, None, |r| {
                r.deadlines.pickup_by = Some(at("2026-11-02T02:30:00Z"));
                r.dispatch.departed_at = Some(at("2026-11-02T02:20:00Z"));
                r.dispatch.arrived_at = Some(at("2026-11-02T02:50:00Z"));
                r.dispatch.five_minute_breach = true;
            }),
            // g: due on scene 11:00, there 11:05: late. A property lead
            // checked Friday, by Monday the 9th: in time.
            ticket(9, Lead, State::OnScene, r0, None, |r| {
                r.dispatch.departed_at = Some(at("2026-11-02T02:30:00Z"));
                r.deadlines.arrive_by = Some(at("2026-11-02T03:00:00Z"));
                r.dispatch.arrived_at = Some(at("2026-11-02T03:05:00Z"));
                r.deadlines.verify_by = Some(at("2026-11-09T02:00:00Z"));
                r.property = property(false, Some("2026-11-06T02:00:00Z"));
            }),
            // h: left 11:00, due 11:30, still not there: never arrived.
            // Linked to g.
            ticket(10, Lead, State::Dispatched, r0, None, |r| {
                r.dispatch.departed_at = Some(at("2026-11-02T03:00:00Z"));
                r.triage.linked = vec!["2026-000009".into()];
            }),
            // i: linked to g and h, sent to g's officers. An urgent property
            // lead due Thursday, unchecked: missed.
            ticket(11, Lead, State::Open, r0, None, |r| {
                r.triage.linked = vec!["2026-000009".into(), "2026-000010".into()];
                r.triage.joined = Some("2026-000009".into());
                r.deadlines.verify_by = Some(at("2026-11-05T02:00:00Z"));
                r.property = property(true, None);
            }),
            // j: a complaint: not held to the five minutes.
            ticket(12, Complaint, State::Open, r0, None, |_| {}),
            // k: a lead past the five minutes.
            ticket(13, Lead, State::Open, r0, None, |r| {
                r.dispatch.five_minute_breach = true;
            }),
        ];
        let calendar = Calendar::default();
        let dispatch = DispatchSettings::default();
        let basis = Basis {
            now: at("2026-11-10T00:00:00Z"),
            calendar: &calendar,
            dispatch: &dispatch,
        };
        let day = jiff::civil::date(2026, 11, 2);
        let r = report(day, day, &tickets, |_| None, &basis);
        assert_eq!(r.tickets, 13);
        assert_eq!(
            r.consultations,
            Consultations {
                received: 6,
                answered: 2,
                answered_in_time: 1,
                overdue: 3,
                // Nearest rank of [2, 4]: the 1st, and the 2nd.
                working_days_to_answer: Spread {
                    count: 2,
                    median: Some(2.0),
                    p90: Some(4.0),
                },
            }
        );
        assert_eq!(
            r.partners,
            PartnerCalls {
                received: 2,
                collected_in_time: 1,
                missed: 1,
            }
        );
        assert_eq!(
            r.linked,
            Linked {
                reports: 2,
                joined: 1
            }
        );
        assert_eq!(
            r.arrivals,
            Arrivals {
                dispatched: 4,
                in_time: 2,
                late: 1,
                never_arrived: 1,
            }
        );
        assert_eq!(
            r.property,
            PropertyLeads {
                marked: 2,
                verified_in_time: 1,
                missed: 1,
            }
        );
        // Held to the five minutes and opened: e, f, g, h, i, k (not the
        // six consultations, not the complaint); breached: f and k.
        assert_eq!((r.opened, r.breaches), (6, 2));
        // 出警 after 10, 20, 30 and 60 minutes; no consultation's closing.
        assert_eq!(r.dispatched.count, 4);
        assert_eq!(r.durations.dispatched, vec![600.0, 1200.0, 1800.0, 3600.0]);
        assert_eq!(r.closed.count, 0);
        let count = |c: &str| r.by_category[c];
        assert_eq!(
            [
                "lead",
                "violence",
                "partner",
                "consultation",
                "complaint",
                "preservation",
                "other"
            ]
            .map(count),
            [4, 0, 2, 6, 1, 0, 0]
        );
        let csv = r.csv();
        for line in [
            "five_minute,opened,6",
            "five_minute,rate,0.333",
            "consultations,overdue,3",
            "consultations,working_days_median,2",
            "consultations,working_days_p90,4",
            "partners,collected_in_time,1",
            "linked,joined,1",
            "arrivals,never_arrived,1",
            "property,missed,1",
        ] {
            assert!(csv.lines().any(|l| l == line), "{line} in\n{csv}");
        }
        let html = r.html();
        assert!(
            html.contains("<tr data-figure=\"consultations.overdue\"><td>逾期</td><td>3</td></tr>"),
            "{html}"
        );
        assert!(
            html.contains("<tr data-figure=\"consultations.working_days_median\"><td>答复用时中位数（工作日）</td><td>2</td></tr>"),
            "{html}"
        );
        assert!(html.contains("占应出警 6 件的 33.3%"), "{html}");
    }
}
