//! Statistics for the leadership (rule 第六条(七)): what the register says
//! over a range of days, sans-IO over tickets and their timelines. Calls,
//! tickets by category (every category, zeros included) and by outcome,
//! per acknowledging unit and per week; from the report (received) to the
//! first page, 签收, 出警, arrival and closing, the median and the 90th
//! percentile (nearest rank); the five-minute breach rate (第二十三条);
//! pages by channel and how many got through. Then the clocks after
//! opening, each judged by [`kept`] against the report's `now`:
//! consultations answered in time, partners' pickups, linked reports,
//! arrivals after dispatch, property leads checked in time; the follow-up
//! calls' results; the breaches one by one. Rendered as CSV (with a BOM,
//! Chinese columns first), as `.xlsx` ([`super::xlsx`]), or as HTML with
//! the charts ([`super::charts`]) for the page, a printout and an e-mail
//! alike; every label from [`crate::tickets::labels`], members and units by the
//! roster's names ([`Report::named`]).
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
use crate::tickets::labels;

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
#[derive(Clone)]
struct Table {
    section: &'static str,
    title: &'static str,
    rows: Vec<(&'static str, &'static str, Figure)>,
}

/// A ticket that breached the five-minute rule, for the list of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breach {
    pub ticket: String,
    pub received_at: Timestamp,
    pub category: Option<Category>,
    pub state: State,
    /// Who acknowledged it (a member id; the roster's name in `names`).
    pub acknowledged_by: Option<String>,
    /// Seconds from the report to 出警 (none: not dispatched).
    pub dispatched_after: Option<f64>,
}

/// The follow-up calls (回访) to the informants of the tickets in range.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FollowUps {
    /// Tickets whose informant was called back (`follow_up` recorded).
    pub called: usize,
    /// Of them, those where the informant gave a rating (1-5).
    pub rated: usize,
    /// Of those rated, 4 or 5 (satisfied).
    pub satisfied: usize,
    /// The informant declined a follow-up at the intake.
    pub declined: usize,
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
    /// Of them, category `lead`, each day (zeros included).
    pub leads_per_day: Vec<(Date, usize)>,
    /// `opened` per ISO week.
    pub opened_by_week: BTreeMap<String, usize>,
    /// `breaches` per ISO week.
    pub breaches_by_week: BTreeMap<String, usize>,
    /// The breaches, one by one, in the order received.
    pub breached: Vec<Breach>,
    pub follow_ups: FollowUps,
    /// The roster's names of the members and units the report names (by
    /// id), set by [`Report::named`]; an id missing here is shown as is.
    pub names: BTreeMap<String, String>,
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
        leads_per_day: Vec::new(),
        opened_by_week: BTreeMap::new(),
        breaches_by_week: BTreeMap::new(),
        breached: Vec::new(),
        follow_ups: FollowUps::default(),
        names: BTreeMap::new(),
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
    let mut leads: BTreeMap<Date, usize> = BTreeMap::new();
    let mut d = from;
    while d <= to {
        per_day.insert(d, 0);
        leads.insert(d, 0);
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
        *leads.entry(day).or_default() += usize::from(category == Some(Category::Lead));
        if let Some(f) = &reg.follow_up {
            r.follow_ups.called += 1;
            r.follow_ups.rated += usize::from(f.satisfaction.is_some());
            r.follow_ups.satisfied += usize::from(f.satisfaction.is_some_and(|s| s >= 4));
        }
        r.follow_ups.declined += usize::from(reg.intake.no_follow_up);
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
        *r.by_week.entry(week.clone()).or_default() += 1;
        // A ticket with no category yet is a lead.
        let held = category.is_none_or(Category::five_minute_rule);
        if held {
            if !matches!(t.state, State::Intake | State::Abandoned) {
                r.opened += 1;
                r.breaches += usize::from(reg.dispatch.five_minute_breach);
                *r.opened_by_week.entry(week.clone()).or_default() += 1;
                let breached = usize::from(reg.dispatch.five_minute_breach);
                *r.breaches_by_week.entry(week).or_default() += breached;
                if reg.dispatch.five_minute_breach {
                    r.breached.push(Breach {
                        ticket: t.number.clone(),
                        received_at: t.received_at,
                        category,
                        state: t.state,
                        acknowledged_by: reg.dispatch.acknowledged_by.clone(),
                        dispatched_after: reg.dispatch.departed_at.map(|d| {
                            (d.as_millisecond() - t.received_at.as_millisecond()) as f64 / 1000.0
                        }),
                    });
                }
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
    r.leads_per_day = leads.into_iter().collect();
    r.breached
        .sort_by(|a, b| (a.received_at, &a.ticket).cmp(&(b.received_at, &b.ticket)));
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
        let n = Figure::Count;
        let days = Figure::Days;
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

    /// A unit's name: the roster's (by [`Report::named`]), 未签收 for
    /// `none`, 指挥中心 for `center`, else the id.
    pub fn unit_name(&self, id: &str) -> String {
        match id {
            "none" => labels::NO_UNIT.into(),
            "center" => labels::CENTER.into(),
            id => self.member_name(id),
        }
    }

    /// A member's (or unit's) name from the roster, else the id.
    pub fn member_name(&self, id: &str) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// `by_category` in the menu's order ([`Category::ALL`]), then `none`.
    pub fn categories(&self) -> Vec<(&str, usize)> {
        let rank = |k: &str| {
            Category::ALL
                .iter()
                .position(|c| c.as_str() == k)
                .unwrap_or(Category::ALL.len())
        };
        let mut v: Vec<(&str, usize)> = self
            .by_category
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        v.sort_by_key(|(k, _)| rank(k));
        v
    }

    /// The report with the roster's names of the units and members it
    /// names (`name_of`: `Roster::name_of`).
    pub fn named(mut self, name_of: impl Fn(&str) -> Option<String>) -> Self {
        let ids: Vec<String> = self
            .by_unit
            .keys()
            .cloned()
            .chain(
                self.breached
                    .iter()
                    .filter_map(|b| b.acknowledged_by.clone()),
            )
            .collect();
        for id in ids {
            if let Some(name) = name_of(&id) {
                self.names.insert(id, name);
            }
        }
        self
    }

    /// Every figure, in order: its section and key (ids, for scripts),
    /// its group and item (Chinese, for people) and its value.
    pub fn rows(&self) -> Vec<Row> {
        let mut out = Vec::new();
        let mut row = |section: &'static str, group: &str, key: &str, item: String, value| {
            out.push(Row {
                section,
                key: key.to_string(),
                group: group.to_string(),
                item,
                value,
            })
        };
        row(
            "range",
            "统计区间",
            "from",
            "起始日".into(),
            Figure::Day(self.from),
        );
        row(
            "range",
            "统计区间",
            "to",
            "截止日".into(),
            Figure::Day(self.to),
        );
        row(
            "tickets",
            "接报",
            "all",
            "总数".into(),
            Figure::Count(self.tickets),
        );
        for (k, v) in &self.by_category {
            row(
                "category",
                "按类别",
                k,
                labels::category_key(k),
                Figure::Count(*v),
            );
        }
        for (k, v) in &self.by_outcome {
            row(
                "outcome",
                "按结果",
                k,
                labels::state_key(k),
                Figure::Count(*v),
            );
        }
        for (k, v) in &self.by_unit {
            row(
                "unit",
                "按签收单位",
                k,
                self.unit_name(k),
                Figure::Count(*v),
            );
        }
        for (k, v) in &self.by_week {
            row("week", "按周", k, labels::week_key(k), Figure::Count(*v));
        }
        for (key, name, s) in self.spreads() {
            row(
                "seconds_median",
                "用时中位数（秒）",
                key,
                name.into(),
                Figure::Seconds(s.median),
            );
            row(
                "seconds_p90",
                "用时90%（秒）",
                key,
                name.into(),
                Figure::Seconds(s.p90),
            );
        }
        row(
            "five_minute",
            "五分钟出警",
            "opened",
            "应出警".into(),
            Figure::Count(self.opened),
        );
        row(
            "five_minute",
            "五分钟出警",
            "breaches",
            "超过五分钟".into(),
            Figure::Count(self.breaches),
        );
        row(
            "five_minute",
            "五分钟出警",
            "rate",
            "超时率".into(),
            Figure::Rate(self.breach_rate()),
        );
        for (channel, p) in &self.pages {
            let name = labels::channel(channel).to_string();
            row(
                "pages_attempts",
                "呼叫次数",
                channel,
                name.clone(),
                Figure::Count(p.attempts),
            );
            row(
                "pages_delivered",
                "呼叫送达",
                channel,
                name,
                Figure::Count(p.delivered),
            );
        }
        for t in self.clock_tables() {
            for (key, label, value) in t.rows {
                row(t.section, t.title, key, label.into(), value);
            }
        }
        let f = &self.follow_ups;
        for (key, label, v) in [
            ("called", "已回访", f.called),
            ("rated", "作出评价", f.rated),
            ("satisfied", "满意（4-5分）", f.satisfied),
            ("declined", "不接受回访", f.declined),
        ] {
            row("follow_ups", "回访", key, label.into(), Figure::Count(v));
        }
        out
    }

    /// The CSV for a spreadsheet: a UTF-8 byte-order mark (Excel reads
    /// UTF-8 only with it), then `栏目,项目,数值,section,key`: the Chinese
    /// group and item, the value (a number or a date we wrote), and the
    /// ids for scripts. Text cells go through the one cell writer.
    pub fn csv(&self) -> String {
        let mut out = String::from("\u{feff}栏目,项目,数值,section,key\n");
        let cell = super::csv::cell;
        for r in self.rows() {
            let _ = writeln!(
                out,
                "{},{},{},{},{}",
                cell(&r.group),
                cell(&r.item),
                r.value.text(),
                r.section,
                cell(&r.key)
            );
        }
        out
    }

    /// A page (Chinese) with the figures and the charts.
    pub fn html(&self) -> String {
        format!(
            "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>举报线索统计 {} 至 {}</title>\
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.2em .6em}}\
figure{{margin:1em 0}}figure svg{{max-width:100%;height:auto}}</style><body>{}</body></html>\n",
            self.from,
            self.to,
            self.body()
        )
    }

    /// The page's body: heading, summary, tables, charts.
    pub fn body(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<h1>举报线索统计</h1><p>{} 至 {}：共 {} 件；五分钟内未出警 {} 件，占应出警 {} 件的 {:.1}%（咨询、信访投诉不出警，不计）。</p>",
            self.from,
            self.to,
            self.tickets,
            self.breaches,
            self.opened,
            self.breach_rate() * 100.0
        );
        h.push_str(&self.tables());
        for (id, svg) in super::charts::all(self) {
            let _ = write!(h, "<figure data-chart=\"{id}\">{svg}</figure>");
        }
        h
    }

    /// The figures as tables (Chinese labels throughout).
    pub fn tables(&self) -> String {
        let mut h = String::new();
        let table = |h: &mut String, title: &str, rows: Vec<(String, usize)>| {
            let _ = write!(h, "<h2>{title}</h2><table>");
            for (k, v) in rows {
                let _ = write!(h, "<tr><td>{}</td><td>{v}</td></tr>", esc(&k));
            }
            h.push_str("</table>");
        };
        let named = |m: &BTreeMap<String, usize>, f: &dyn Fn(&str) -> String| {
            m.iter().map(|(k, v)| (f(k), *v)).collect::<Vec<_>>()
        };
        table(
            &mut h,
            "按类别",
            named(&self.by_category, &labels::category_key),
        );
        table(
            &mut h,
            "按结果",
            named(&self.by_outcome, &labels::state_key),
        );
        table(
            &mut h,
            "按签收单位",
            named(&self.by_unit, &|k| self.unit_name(k)),
        );
        table(&mut h, "按周", named(&self.by_week, &labels::week_key));
        h.push_str("<h2>响应时间（分钟）</h2><table><tr><th></th><th>件数</th><th>中位数</th><th>90%</th></tr>");
        let mins = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.1}", v / 60.0));
        for (_, name, s) in self.spreads() {
            let _ = write!(
                h,
                "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                s.count,
                mins(s.median),
                mins(s.p90)
            );
        }
        h.push_str("</table><h2>呼叫渠道</h2><table><tr><th></th><th>呼叫</th><th>送达</th></tr>");
        for (c, p) in &self.pages {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                labels::channel(c),
                p.attempts,
                p.delivered
            );
        }
        h.push_str("</table>");
        let mut tables = self.clock_tables().to_vec();
        let f = &self.follow_ups;
        tables.push(Table {
            section: "follow_ups",
            title: "回访",
            rows: vec![
                ("called", "已回访", Figure::Count(f.called)),
                ("rated", "作出评价", Figure::Count(f.rated)),
                ("satisfied", "满意（4-5分）", Figure::Count(f.satisfied)),
                ("declined", "不接受回访", Figure::Count(f.declined)),
            ],
        });
        for t in tables {
            let _ = write!(h, "<h2>{}</h2><table>", t.title);
            for (key, label, value) in t.rows {
                let value = match value.text() {
                    v if v.is_empty() => "—".to_string(),
                    v => v,
                };
                let _ = write!(
                    h,
                    "<tr data-figure=\"{}.{key}\"><td>{label}</td><td>{value}</td></tr>",
                    t.section
                );
            }
            h.push_str("</table>");
        }
        h
    }
}

/// Text for HTML (element content and attribute values).
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One figure of a report ([`Report::rows`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The section's id (`category`, `five_minute`, ...).
    pub section: &'static str,
    /// The figure's id in it (a category, a unit id, `opened`, ...).
    pub key: String,
    /// The section's Chinese name.
    pub group: String,
    /// The figure's Chinese name.
    pub item: String,
    pub value: Figure,
}

/// A figure's value, typed for a spreadsheet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    Count(usize),
    /// Seconds (none: nothing measured).
    Seconds(Option<f64>),
    /// Working days (none: nothing measured).
    Days(Option<f64>),
    /// A share, 0 to 1.
    Rate(f64),
    Day(Date),
}

impl Figure {
    /// As CSV and the page write it (none: empty).
    pub fn text(&self) -> String {
        match self {
            Figure::Count(n) => n.to_string(),
            Figure::Seconds(v) => v.map_or(String::new(), |v| format!("{v:.1}")),
            Figure::Days(v) => v.map_or(String::new(), |v| format!("{v:.0}")),
            Figure::Rate(v) => format!("{v:.3}"),
            Figure::Day(d) => d.to_string(),
        }
    }
}

/// A report and tickets for the tests (here and in the charts', the
/// exports' and the monthly report's).
#[cfg(test)]
pub(crate) mod sample {
    use super::*;
    use crate::tickets::model::FollowUp;

    pub(crate) fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// One ticket received at `received` (UTC) in `state`, its register
    /// edited; `ended`: the timeline's entry of its final state.
    pub(crate) fn ticket(
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

    /// A small report for the charts' and the exports' tests, its figures
    /// by hand: 30 November and 1 December 2026 (ISO week 49). Two leads
    /// on the 30th, acknowledged by u1-officer (赵一 of unit-1, 执行一组):
    /// the first at 10:00 Qingdao, dispatched after 10 minutes (a breach),
    /// called back and rated 5; the second at 11:00, 签收 after 1 and 出警
    /// after 4 minutes. On the 1st: a violence report still in the intake,
    /// a consultation open, a call with no category abandoned. Opened and
    /// held to the five minutes: the two leads; one breach (50 %).
    pub(crate) fn sample() -> Report {
        use Category::*;
        let tickets = [
            ticket(
                1,
                Lead,
                State::Dispatched,
                "2026-11-30T02:00:00Z",
                None,
                |r| {
                    r.dispatch.acknowledged_by = Some("u1-officer".into());
                    r.dispatch.acknowledged_at = Some(at("2026-11-30T02:02:00Z"));
                    r.dispatch.departed_at = Some(at("2026-11-30T02:10:00Z"));
                    r.dispatch.five_minute_breach = true;
                    r.follow_up = Some(FollowUp {
                        at: at("2026-12-01T02:00:00Z"),
                        satisfaction: Some(5),
                        outcome: "key 5".into(),
                    });
                },
            ),
            ticket(
                2,
                Lead,
                State::Dispatched,
                "2026-11-30T03:00:00Z",
                None,
                |r| {
                    r.dispatch.acknowledged_by = Some("u1-officer".into());
                    r.dispatch.acknowledged_at = Some(at("2026-11-30T03:01:00Z"));
                    r.dispatch.departed_at = Some(at("2026-11-30T03:04:00Z"));
                },
            ),
            ticket(
                3,
                Violence,
                State::Intake,
                "2026-12-01T02:00:00Z",
                None,
                |_| {},
            ),
            ticket(
                4,
                Consultation,
                State::Open,
                "2026-12-01T03:00:00Z",
                None,
                |_| {},
            ),
            ticket(
                5,
                Lead,
                State::Abandoned,
                "2026-12-01T04:00:00Z",
                None,
                |r| {
                    r.intake.category = None;
                },
            ),
        ];
        let (calendar, dispatch) = (Calendar::default(), DispatchSettings::default());
        let basis = Basis {
            now: at("2026-12-02T00:00:00Z"),
            calendar: &calendar,
            dispatch: &dispatch,
        };
        let unit_of = |m: &str| (m == "u1-officer").then(|| "unit-1".to_string());
        let (from, to) = (
            jiff::civil::date(2026, 11, 30),
            jiff::civil::date(2026, 12, 1),
        );
        report(from, to, &tickets, unit_of, &basis).named(|id| match id {
            "unit-1" => Some("执行一组".into()),
            "u1-officer" => Some("赵一".into()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sample::{at, sample, ticket};
    use super::*;
    use crate::tickets::model::{Answer, Property};

    #[test]
    fn the_sample_counts_as_worked_out_by_hand() {
        let r = sample();
        assert_eq!(r.tickets, 5);
        assert_eq!((r.opened, r.breaches), (2, 1));
        let d = |m, d| jiff::civil::date(2026, m, d);
        assert_eq!(r.per_day, vec![(d(11, 30), 2), (d(12, 1), 3)]);
        assert_eq!(r.leads_per_day, vec![(d(11, 30), 2), (d(12, 1), 0)]);
        assert_eq!(r.opened_by_week["2026-W49"], 2);
        assert_eq!(r.breaches_by_week["2026-W49"], 1);
        assert_eq!(r.breached.len(), 1);
        assert_eq!(r.breached[0].ticket, "2026-000001");
        assert_eq!(r.breached[0].dispatched_after, Some(600.0));
        assert_eq!(
            r.follow_ups,
            FollowUps {
                called: 1,
                rated: 1,
                satisfied: 1,
                declined: 0
            }
        );
        assert_eq!(r.unit_name("unit-1"), "执行一组");
        assert_eq!(r.unit_name("none"), "未签收");
        let csv = r.csv();
        assert!(
            csv.starts_with("\u{feff}栏目,项目,数值,section,key\n"),
            "{csv}"
        );
        for line in [
            "按类别,执行线索,2,category,lead",
            "按类别,未分类,1,category,none",
            "按结果,已出警,2,outcome,dispatched",
            "按签收单位,执行一组,2,unit,unit-1",
            "按签收单位,未签收,3,unit,none",
            "按周,2026年第49周,5,week,2026-W49",
            "五分钟出警,超时率,0.500,five_minute,rate",
            "回访,满意（4-5分）,1,follow_ups,satisfied",
        ] {
            assert!(csv.lines().any(|l| l == line), "{line} in\n{csv}");
        }
        let html = r.html();
        for english in ["lead", "dispatched", "unit-1", "u1-officer", "none"] {
            assert!(
                !html.contains(&format!(">{english}<")),
                "{english} shown in {html}"
            );
        }
    }

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
        assert!(r.csv().contains("接报,总数,0,tickets,all\n"));
        // Every category is counted, the new ones too, at zero.
        assert!(r
            .csv()
            .contains("按类别,公安/协助单位,0,category,partner\n"));
        assert!(r.csv().contains("按类别,咨询,0,category,consultation\n"));
        assert!(r.csv().contains(",,consultations,working_days_median\n"));
        assert!(r.html().contains("<figure data-chart=\"per-day\"><svg"));
        // No answer yet: no working days, a dash on the page.
        assert!(r.html().contains(
            "<tr data-figure=\"consultations.working_days_median\"><td>答复用时中位数（工作日）</td><td>—</td></tr>"
        ));
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
        for (key, value) in [
            ("five_minute,opened", "6"),
            ("five_minute,rate", "0.333"),
            ("consultations,overdue", "3"),
            ("consultations,working_days_median", "2"),
            ("consultations,working_days_p90", "4"),
            ("partners,collected_in_time", "1"),
            ("linked,joined", "1"),
            ("arrivals,never_arrived", "1"),
            ("property,missed", "1"),
        ] {
            let found = csv.lines().find_map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                (cells[3..].join(",") == key).then(|| cells[2].to_string())
            });
            assert_eq!(found.as_deref(), Some(value), "{key} in\n{csv}");
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
