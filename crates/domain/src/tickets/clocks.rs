//! The clocks that run on a ticket after it opened, besides its escalation
//! policy's five minutes: a partner's pickup deadline, a consultation's
//! answer deadline, the arrival after dispatch, a property lead's
//! verification. The deadlines are set on the register (`Deadlines`) by
//! the triage, by 出警 and by the property mark; this engine, sans-IO like
//! the escalation policy, says at `now` which alarms are due (each once per
//! deadline) and when to look again. The paging worker drives it on the
//! escalation's schedule.
//!
//! ```text
//!   pickup_by − warn   not on scene      → director, on duty        (warning)
//!   pickup_by          not on scene      → director, chief commander, missed: pickup
//!   arrive_by          dispatched only   → the officers, on duty     missed: arrival
//!   answer_by          not answered      → director                  missed: answer
//!   verify_by − 1 day  not checked       → handler, marker, officers (reminder)
//!   verify_by          not checked       → director                  missed: verification
//! ```
//!
//! The first three ring phones as a page does; the day-scale ones are
//! written only (`Clock::rings`).
//!
//! A final ticket (closed, cancelled, ...) has no clocks: closing stops
//! them all. A reminder whose deadline has passed unheard is dropped for
//! the deadline's own alarm.

use std::collections::BTreeMap;

use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::model::{State, Ticket};
use crate::partners::PartnerSettings;
use crate::roster::{Calendar, Target};

/// `[dispatch]`: the clocks after 签收 and 出警.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchSettings {
    /// Dispatched but not on scene within this many minutes: the officers
    /// and the desk are alerted again, the board shows it red.
    pub arrive_minutes: u64,
    /// A property lead is checked within this many days (the Supreme
    /// People's Court's property-investigation rules) ...
    pub verify_days: u32,
    /// ... or this many when marked urgent.
    pub verify_urgent_days: u32,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            arrive_minutes: 30,
            verify_days: 7,
            verify_urgent_days: 3,
        }
    }
}

impl DispatchSettings {
    /// On scene by then, dispatched at `departed`.
    pub fn arrive_by(&self, departed: Timestamp) -> Timestamp {
        departed
            .saturating_add(minutes(self.arrive_minutes))
            .unwrap_or(departed)
    }

    /// A property lead marked at `marked` is checked by then (calendar
    /// days: the rules count days, not working days).
    pub fn verify_by(&self, marked: Timestamp, urgent: bool) -> Timestamp {
        let days = if urgent {
            self.verify_urgent_days
        } else {
            self.verify_days
        };
        marked
            .saturating_add(SignedDuration::from_hours(24 * i64::from(days)))
            .unwrap_or(marked)
    }
}

fn minutes(m: u64) -> SignedDuration {
    SignedDuration::from_mins(i64::try_from(m).unwrap_or(i64::MAX / 60))
}

/// A partner's call: the person held is collected by then.
pub fn pickup_by(received: Timestamp, partners: &PartnerSettings) -> Timestamp {
    received
        .saturating_add(minutes(partners.pickup_minutes))
        .unwrap_or(received)
}

/// A consultation received at `received` is answered by the end of working
/// hours (`hours_end`, the court's clock) of the `n`th working day after
/// the day it came in (the court's calendar: `Calendar::working_day_after`).
pub fn answer_by(cal: &Calendar, hours_end: Time, received: Timestamp, n: u32) -> Timestamp {
    let tz = crate::court_time::court_tz();
    let day = cal.working_day_after(crate::court_time::court_day(received), n);
    day.to_datetime(hours_end)
        .to_zoned_datetime(tz)
        .map(|z| z.timestamp())
        // Asia/Shanghai has no gaps; a day past the end of time stays put.
        .unwrap_or(received)
}

/// One clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    PickupWarning,
    Pickup,
    Arrival,
    Answer,
    VerifyReminder,
    Verification,
}

impl Clock {
    pub const ALL: [Clock; 6] = [
        Clock::PickupWarning,
        Clock::Pickup,
        Clock::Arrival,
        Clock::Answer,
        Clock::VerifyReminder,
        Clock::Verification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Clock::PickupWarning => "pickup_warning",
            Clock::Pickup => "pickup",
            Clock::Arrival => "arrival",
            Clock::Answer => "answer",
            Clock::VerifyReminder => "verify_reminder",
            Clock::Verification => "verification",
        }
    }

    /// Whether its alarm rings people's phones: the clocks of minutes
    /// (a person held, officers not arrived) do; those of days (an answer,
    /// a property check, their reminders) are written (SIP MESSAGE,
    /// webhook, the mobile page): a day-before reminder may fall at 3 a.m.
    pub fn rings(self) -> bool {
        matches!(self, Clock::PickupWarning | Clock::Pickup | Clock::Arrival)
    }

    /// The name `Deadlines::missed` gives the deadline when this alarm
    /// marks it missed; `None` for a warning or a reminder.
    pub fn missed(self) -> Option<&'static str> {
        match self {
            Clock::Pickup => Some("pickup"),
            Clock::Arrival => Some("arrival"),
            Clock::Answer => Some("answer"),
            Clock::Verification => Some("verification"),
            Clock::PickupWarning | Clock::VerifyReminder => None,
        }
    }
}

/// The alarms fired so far: each clock with the deadline it fired for (a
/// deadline set again, e.g. a property lead marked urgent, arms it anew).
/// Kept with the escalation's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired(BTreeMap<Clock, Timestamp>);

impl Fired {
    pub fn fired(&self, clock: Clock, deadline: Timestamp) -> bool {
        self.0.get(&clock) == Some(&deadline)
    }
}

/// One alarm due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub clock: Clock,
    /// The deadline it is about.
    pub deadline: Timestamp,
    pub targets: Vec<Target>,
    /// What the page says (Chinese), beyond the ticket.
    pub note: String,
}

/// What one look at the clocks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub alarms: Vec<Alarm>,
    /// When the next alarm is due, if any clock still runs.
    pub next: Option<Timestamp>,
}

/// HH:MM, or MM-DD HH:MM when not today's, in the court's time.
fn short(at: Timestamp, now: Timestamp) -> String {
    let tz = crate::court_time::court_tz();
    let z = at.to_zoned_datetime(tz.clone());
    if z.date() == now.to_zoned_datetime(tz).date() {
        z.strftime("%H:%M").to_string()
    } else {
        z.strftime("%m月%d日%H:%M").to_string()
    }
}

/// Each clock's deadline, the instant its alarm is due, whether it still
/// runs, and the deadline whose own alarm supersedes it (a warning, a
/// reminder).
struct Running {
    clock: Clock,
    deadline: Timestamp,
    due: Timestamp,
    superseded_at: Option<Timestamp>,
}

fn running(t: &Ticket, partners: &PartnerSettings) -> Vec<Running> {
    let r = &t.register;
    let d = &r.deadlines;
    let mut out = Vec::new();
    if t.state.is_final() {
        return out;
    }
    let on_scene = t.state == State::OnScene || r.dispatch.arrived_at.is_some();
    if let (Some(by), false) = (d.pickup_by, on_scene) {
        let warn = by
            .saturating_sub(minutes(partners.warn_minutes))
            .unwrap_or(by);
        out.push(Running {
            clock: Clock::PickupWarning,
            deadline: by,
            due: warn,
            superseded_at: Some(by),
        });
        out.push(Running {
            clock: Clock::Pickup,
            deadline: by,
            due: by,
            superseded_at: None,
        });
    }
    if let (Some(by), State::Dispatched, false) = (d.arrive_by, t.state, on_scene) {
        out.push(Running {
            clock: Clock::Arrival,
            deadline: by,
            due: by,
            superseded_at: None,
        });
    }
    if let (Some(by), None) = (d.answer_by, &r.answer) {
        out.push(Running {
            clock: Clock::Answer,
            deadline: by,
            due: by,
            superseded_at: None,
        });
    }
    let unchecked = r.property.as_ref().is_some_and(|p| p.verified_at.is_none());
    if let (Some(by), true) = (d.verify_by, unchecked) {
        let day_before = by
            .saturating_sub(SignedDuration::from_hours(24))
            .unwrap_or(by);
        out.push(Running {
            clock: Clock::VerifyReminder,
            deadline: by,
            due: day_before,
            superseded_at: Some(by),
        });
        out.push(Running {
            clock: Clock::Verification,
            deadline: by,
            due: by,
            superseded_at: None,
        });
    }
    out
}

/// Who an alarm goes to, and what it says.
fn alarm(t: &Ticket, clock: Clock, deadline: Timestamp, now: Timestamp) -> Alarm {
    let r = &t.register;
    let officers = || {
        r.dispatch
            .officers
            .iter()
            .map(|o| Target::Member(o.clone()))
    };
    let by = short(deadline, now);
    let (targets, note): (Vec<Target>, String) = match clock {
        Clock::PickupWarning => (
            vec![Target::Director, Target::OnDuty],
            format!("公安/协助单位移交的人员须于{by}前接回，仍无人到场"),
        ),
        Clock::Pickup => (
            vec![Target::Director, Target::ChiefCommander],
            format!("已过接人时限（{by}），仍无人到场"),
        ),
        Clock::Arrival => (
            officers().chain([Target::OnDuty]).collect(),
            format!("已出警，超过到场时限（{by}）仍未到场"),
        ),
        Clock::Answer => (
            vec![Target::Director],
            format!("咨询已过答复期限（{by}），仍未答复"),
        ),
        Clock::VerifyReminder => (
            std::iter::once(Target::CaseHandler)
                .chain(r.property.iter().map(|p| Target::Member(p.by.clone())))
                .chain(officers())
                .collect(),
            format!("财产线索须于{by}前核查，明日到期"),
        ),
        Clock::Verification => (
            vec![Target::Director],
            format!("财产线索已过核查期限（{by}），仍未核查"),
        ),
    };
    Alarm {
        clock,
        deadline,
        targets,
        note,
    }
}

/// The alarms due at `now` on `t`, each once per deadline (`fired` is
/// updated), and when to look again.
pub fn evaluate(
    t: &Ticket,
    fired: &mut Fired,
    partners: &PartnerSettings,
    now: Timestamp,
) -> Decision {
    let mut out = Decision::default();
    for c in running(t, partners) {
        if fired.fired(c.clock, c.deadline) {
            continue;
        }
        if now < c.due {
            out.next = Some(out.next.map_or(c.due, |n| n.min(c.due)));
            continue;
        }
        fired.0.insert(c.clock, c.deadline);
        if c.superseded_at.is_some_and(|s| now >= s) {
            continue; // too late to warn: the deadline's own alarm says it
        }
        out.alarms.push(alarm(t, c.clock, c.deadline, now));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::model::{Property, Register};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ticket(state: State) -> Ticket {
        Ticket {
            number: "2026-000001".into(),
            call_id: "c".into(),
            state,
            version: 1,
            received_at: at("2026-12-01T02:00:00Z"),
            register: Register::default(),
        }
    }

    fn partners() -> PartnerSettings {
        PartnerSettings::default() // 30 minutes, warned 10 before
    }

    fn clocks(d: &Decision) -> Vec<Clock> {
        d.alarms.iter().map(|a| a.clock).collect()
    }

    #[test]
    fn the_answer_is_due_at_the_end_of_the_nth_working_day() {
        let cal = Calendar::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/holidays"),
        )
        .unwrap();
        let end = Time::constant(17, 30, 0, 0);
        // Thursday 12 February 2026, 10:00 in Qingdao: Friday, the adjusted
        // Saturday 14, then the Spring Festival: Tuesday 24 at 17:30.
        assert_eq!(
            answer_by(&cal, end, at("2026-02-12T02:00:00Z"), 3),
            at("2026-02-24T09:30:00Z")
        );
        // Friday 4 December 2026 at 00:30 in Qingdao (still Thursday in
        // UTC): the court's day counts, so Wednesday 9 December.
        assert_eq!(
            answer_by(&cal, end, at("2026-12-03T16:30:00Z"), 3),
            at("2026-12-09T09:30:00Z")
        );
    }

    #[test]
    fn a_partners_pickup_warns_then_marks_the_deadline_missed_each_once() {
        let mut t = ticket(State::Open);
        let by = at("2026-12-01T02:30:00Z");
        t.register.deadlines.pickup_by = Some(by);
        let mut fired = Fired::default();
        let d = evaluate(&t, &mut fired, &partners(), at("2026-12-01T02:05:00Z"));
        assert_eq!(
            (clocks(&d), d.next),
            (vec![], Some(at("2026-12-01T02:20:00Z")))
        );
        let d = evaluate(&t, &mut fired, &partners(), at("2026-12-01T02:20:00Z"));
        assert_eq!((clocks(&d), d.next), (vec![Clock::PickupWarning], Some(by)));
        assert_eq!(d.alarms[0].targets, [Target::Director, Target::OnDuty]);
        assert!(d.alarms[0].note.contains("10:30"), "{}", d.alarms[0].note);
        // Looked at again before the deadline: nothing twice.
        let d = evaluate(&t, &mut fired, &partners(), at("2026-12-01T02:25:00Z"));
        assert_eq!((clocks(&d), d.next), (vec![], Some(by)));
        let d = evaluate(&t, &mut fired, &partners(), by);
        assert_eq!((clocks(&d), d.next), (vec![Clock::Pickup], None));
        assert_eq!(
            d.alarms[0].targets,
            [Target::Director, Target::ChiefCommander]
        );
        assert_eq!(Clock::Pickup.missed(), Some("pickup"));
        let d = evaluate(&t, &mut fired, &partners(), at("2026-12-01T05:00:00Z"));
        assert_eq!((clocks(&d), d.next), (vec![], None));
        // On scene in time: no clock runs.
        let mut fired = Fired::default();
        t.state = State::OnScene;
        let d = evaluate(&t, &mut fired, &partners(), by);
        assert_eq!(d, Decision::default());
    }

    #[test]
    fn a_warning_too_late_gives_way_to_the_deadline() {
        let mut t = ticket(State::Acknowledged);
        t.register.deadlines.pickup_by = Some(at("2026-12-01T02:30:00Z"));
        let mut fired = Fired::default();
        // The worker looks only after the deadline (a restart): one alarm.
        let d = evaluate(&t, &mut fired, &partners(), at("2026-12-01T02:31:00Z"));
        assert_eq!((clocks(&d), d.next), (vec![Clock::Pickup], None));
    }

    #[test]
    fn the_arrival_alarm_re_alerts_the_officers_and_the_duty_until_on_scene() {
        let mut t = ticket(State::Dispatched);
        let departed = at("2026-12-01T02:10:00Z");
        let by = DispatchSettings::default().arrive_by(departed);
        assert_eq!(by, at("2026-12-01T02:40:00Z"));
        t.register.deadlines.arrive_by = Some(by);
        t.register.dispatch.officers = vec!["u1-officer".into(), "u1-clerk".into()];
        let mut fired = Fired::default();
        let d = evaluate(&t, &mut fired, &partners(), departed);
        assert_eq!((clocks(&d), d.next), (vec![], Some(by)));
        let d = evaluate(&t, &mut fired, &partners(), at("2026-12-01T02:41:00Z"));
        assert_eq!(clocks(&d), [Clock::Arrival]);
        assert_eq!(
            d.alarms[0].targets,
            [
                Target::Member("u1-officer".into()),
                Target::Member("u1-clerk".into()),
                Target::OnDuty
            ]
        );
        assert_eq!(d.next, None);
        assert!(
            evaluate(&t, &mut fired, &partners(), at("2026-12-01T03:00:00Z"))
                .alarms
                .is_empty()
        );
        // Arrived, or closed: the clock stops.
        for state in [State::OnScene, State::Closed] {
            t.state = state;
            let d = evaluate(
                &t,
                &mut Fired::default(),
                &partners(),
                at("2026-12-01T03:00:00Z"),
            );
            assert_eq!(d, Decision::default(), "{state}");
        }
    }

    #[test]
    fn an_unanswered_consultation_goes_to_the_director_once() {
        let mut t = ticket(State::Open);
        let by = at("2026-12-04T09:30:00Z");
        t.register.deadlines.answer_by = Some(by);
        let mut fired = Fired::default();
        assert_eq!(
            evaluate(&t, &mut fired, &partners(), t.received_at).next,
            Some(by)
        );
        let d = evaluate(&t, &mut fired, &partners(), by);
        assert_eq!(clocks(&d), [Clock::Answer]);
        assert_eq!(d.alarms[0].targets, [Target::Director]);
        // Days count here: written, never rung; minutes ring.
        assert!(!Clock::Answer.rings() && !Clock::VerifyReminder.rings());
        assert!(Clock::Arrival.rings() && Clock::Pickup.rings());
        assert_eq!(
            evaluate(&t, &mut fired, &partners(), by),
            Decision::default()
        );
        // Answered (and so closed): nothing runs.
        t.state = State::Closed;
        assert_eq!(
            evaluate(&t, &mut Fired::default(), &partners(), by),
            Decision::default()
        );
    }

    #[test]
    fn a_property_lead_is_reminded_the_day_before_and_marked_when_unchecked() {
        let mut t = ticket(State::Dispatched);
        let marked = at("2026-12-01T03:00:00Z");
        let s = DispatchSettings::default();
        let by = s.verify_by(marked, false);
        assert_eq!(by, at("2026-12-08T03:00:00Z"));
        assert_eq!(s.verify_by(marked, true), at("2026-12-04T03:00:00Z"));
        t.register.deadlines.verify_by = Some(by);
        t.register.dispatch.officers = vec!["u2-officer".into()];
        t.register.property = Some(Property {
            urgent: false,
            by: "u2-clerk".into(),
            at: marked,
            verified_at: None,
            result: None,
        });
        let mut fired = Fired::default();
        let day_before = at("2026-12-07T03:00:00Z");
        assert_eq!(
            evaluate(&t, &mut fired, &partners(), marked).next,
            Some(day_before)
        );
        let d = evaluate(&t, &mut fired, &partners(), day_before);
        assert_eq!(
            (clocks(&d), d.next),
            (vec![Clock::VerifyReminder], Some(by))
        );
        assert_eq!(
            d.alarms[0].targets,
            [
                Target::CaseHandler,
                Target::Member("u2-clerk".into()),
                Target::Member("u2-officer".into())
            ]
        );
        let d = evaluate(&t, &mut fired, &partners(), by);
        assert_eq!((clocks(&d), d.next), (vec![Clock::Verification], None));
        // Marked urgent afterwards: a new deadline, armed anew.
        let urgent = s.verify_by(marked, true);
        t.register.deadlines.verify_by = Some(urgent);
        let d = evaluate(&t, &mut fired, &partners(), at("2026-12-09T00:00:00Z"));
        assert_eq!(clocks(&d), [Clock::Verification]);
        // Checked: the clock stops.
        let mut fired = Fired::default();
        if let Some(p) = t.register.property.as_mut() {
            p.verified_at = Some(at("2026-12-02T00:00:00Z"));
        }
        assert_eq!(
            evaluate(&t, &mut fired, &partners(), by),
            Decision::default()
        );
    }

    #[test]
    fn several_clocks_wake_at_the_earliest() {
        let mut t = ticket(State::Dispatched);
        t.register.deadlines.arrive_by = Some(at("2026-12-01T03:00:00Z"));
        t.register.deadlines.pickup_by = Some(at("2026-12-01T02:50:00Z"));
        let d = evaluate(&t, &mut Fired::default(), &partners(), t.received_at);
        assert_eq!(d.next, Some(at("2026-12-01T02:40:00Z")));
        let fired = {
            let mut f = Fired::default();
            evaluate(&t, &mut f, &partners(), at("2026-12-01T03:00:00Z"));
            f
        };
        // Fired alarms survive a round trip through the store.
        let json = serde_json::to_string(&fired).unwrap();
        assert_eq!(serde_json::from_str::<Fired>(&json).unwrap(), fired);
        assert!(json.contains("\"arrival\""), "{json}");
    }
}
