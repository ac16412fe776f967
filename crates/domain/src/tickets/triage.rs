//! What happens when a ticket opens, decided once (the paging worker runs
//! it at its first look, before the escalation policy): the case's handler
//! from the case directory, the earlier reports on the same case within
//! the linking window, the deadlines that start at receipt (a partner's
//! pickup, a consultation's answer), and where the ticket goes:
//!
//! ```text
//!   consultation            → the handler's list (member or unit), an unknown
//!                             case the desk's (no desk: the director's); nobody paged
//!   lead/other/preservation → the officers of an earlier lead on the case that is
//!     on a case dispatched    dispatched or on scene (join_dispatched), not the duty
//!   anything else           → its category's policy
//! ```
//!
//! Sans-IO: the earlier tickets are given (the store finds them by the
//! case's digits), `now` is passed in.

use jiff::{SignedDuration, Timestamp};

use super::clocks;
use super::model::{Category, Index, State, Ticket, Triage};
use crate::cases::{case_digits, CaseSettings};
use crate::partners::PartnerSettings;
use crate::roster::{Calendar, Roster};

/// Where a ticket goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Its category's escalation policy.
    Policy,
    /// A consultation: onto these lists, nobody paged.
    Lists(Vec<Index>),
    /// A new lead on a case already dispatched: paged to the officers on it
    /// (`Triage::joined_officers`) instead of the duty.
    Joined,
}

/// The triage's outcome: the register's triage section, the deadlines it
/// starts, the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub triage: Triage,
    pub pickup_by: Option<Timestamp>,
    pub answer_by: Option<Timestamp>,
    pub route: Route,
}

/// What the triage needs of the configuration in force.
pub struct Context<'a> {
    pub roster: &'a Roster,
    pub calendar: &'a Calendar,
    pub cases: &'a CaseSettings,
    pub partners: &'a PartnerSettings,
}

/// Whether `earlier` came in before `t`: received earlier, or in the same
/// second with a lower number.
fn before(earlier: &Ticket, t: &Ticket) -> bool {
    (earlier.received_at, &earlier.number) < (t.received_at, &t.number)
}

/// The reports on `t`'s case received within `days` before it, oldest
/// first (by the case number's digits; `t` itself and later tickets left
/// out).
pub fn linked<'a>(t: &Ticket, candidates: &'a [Ticket], days: u32) -> Vec<&'a Ticket> {
    let Some(digits) = t
        .register
        .intake
        .case_number
        .as_deref()
        .map(case_digits)
        .filter(|d| !d.is_empty())
    else {
        return Vec::new();
    };
    let window = SignedDuration::from_hours(24 * i64::from(days));
    let since = t
        .received_at
        .saturating_sub(window)
        .unwrap_or(t.received_at);
    let mut out: Vec<&Ticket> = candidates
        .iter()
        .filter(|e| e.number != t.number && before(e, t) && e.received_at >= since)
        .filter(|e| {
            e.register.intake.case_number.as_deref().map(case_digits) == Some(digits.clone())
        })
        .collect();
    out.sort_by(|a, b| (a.received_at, &a.number).cmp(&(b.received_at, &b.number)));
    out
}

/// The categories whose new report joins a dispatch already out: leads
/// (and what is paged as one), not violence, partners or consultations.
fn joins(c: Option<Category>) -> bool {
    matches!(
        c,
        None | Some(Category::Lead) | Some(Category::Other) | Some(Category::Preservation)
    )
}

/// The lists a consultation goes onto: its handler's (the member's, or the
/// unit's), else the desk members', else (no desk) the director's.
pub fn consultation_lists(roster: &Roster, handler: Option<&str>) -> Vec<Index> {
    match handler {
        Some(h) if roster.is_unit(h) => vec![Index::Unit(h.to_string())],
        Some(h) => vec![Index::Member(h.to_string())],
        None => {
            let desk = roster.desk_members();
            if desk.is_empty() {
                vec![Index::Member(roster.director().id)]
            } else {
                desk.into_iter().map(|m| Index::Member(m.id)).collect()
            }
        }
    }
}

/// The triage of `t` at `now`, `candidates` the tickets the store found on
/// its case (any received in the window before it).
pub fn triage(t: &Ticket, candidates: &[Ticket], cx: &Context<'_>, now: Timestamp) -> Decision {
    let intake = &t.register.intake;
    let case = intake
        .case_number
        .as_deref()
        .filter(|c| !case_digits(c).is_empty());
    let handler = case
        .and_then(|c| cx.roster.handler_of(c))
        .map(str::to_string);
    let linked = linked(t, candidates, cx.cases.link_days);
    let joined = if cx.cases.join_dispatched && joins(intake.category) {
        linked.iter().rev().find(|e| {
            matches!(e.state, State::Dispatched | State::OnScene)
                && !e.register.dispatch.officers.is_empty()
        })
    } else {
        None
    };
    let mut triage = Triage {
        at: Some(now),
        case_known: case.map(|_| handler.is_some()),
        handler: handler.clone(),
        linked: linked.iter().map(|e| e.number.clone()).collect(),
        link_days: case.map(|_| cx.cases.link_days),
        joined: None,
        joined_officers: Vec::new(),
    };
    let mut route = Route::Policy;
    let mut answer_by = None;
    let mut pickup_by = None;
    match intake.category {
        Some(Category::Consultation) => {
            route = Route::Lists(consultation_lists(cx.roster, handler.as_deref()));
            let (_, end) = cx.roster.working_hours();
            answer_by = Some(clocks::answer_by(
                cx.calendar,
                end,
                t.received_at,
                cx.cases.answer_working_days,
            ));
        }
        Some(Category::Partner) => {
            pickup_by = Some(clocks::pickup_by(t.received_at, cx.partners));
        }
        _ => {}
    }
    if let Some(e) = joined {
        triage.joined = Some(e.number.clone());
        triage.joined_officers = e.register.dispatch.officers.clone();
        route = Route::Joined;
    }
    Decision {
        triage,
        pickup_by,
        answer_by,
        route,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::CaseDirectory;
    use crate::tickets::model::Register;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ticket(n: u32, received: &str, case: &str, category: Category, state: State) -> Ticket {
        let mut register = Register::default();
        register.intake.case_number = Some(case.to_string());
        register.intake.category = Some(category);
        Ticket {
            number: format!("2026-{n:06}"),
            call_id: format!("c{n}"),
            state,
            version: 1,
            received_at: at(received),
            register,
        }
    }

    fn config() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
    }

    fn roster(desk: bool) -> Roster {
        let text = std::fs::read_to_string(config().join("roster.toml")).unwrap();
        let text = if desk {
            text
        } else {
            text.replace("members = [\"m-desk-1\", \"m-desk-2\"]", "members = []")
        };
        let cases = CaseDirectory::parse(
            "case_number,handler\n（2026）鲁0203执1234号,m-zhao\n202602039012,unit-2\n",
            "cases.csv",
        )
        .unwrap();
        Roster::parse(&text, "roster.toml")
            .unwrap()
            .with_cases(cases)
            .unwrap()
    }

    #[test]
    fn linking_looks_back_link_days_by_the_case_digits_oldest_first() {
        let now = "2026-12-10T02:00:00Z";
        let t = ticket(9, now, "202602031234", Category::Lead, State::Open);
        let candidates = vec![
            // Exactly seven days before: within.
            ticket(
                3,
                "2026-12-03T02:00:00Z",
                "（2026）鲁0203执1234号",
                Category::Lead,
                State::Closed,
            ),
            // A second before the window: out.
            ticket(
                2,
                "2026-12-03T01:59:59Z",
                "202602031234",
                Category::Lead,
                State::Open,
            ),
            ticket(
                7,
                "2026-12-09T03:00:00Z",
                "(2026)鲁0203执1234号",
                Category::Consultation,
                State::Open,
            ),
            // Another case.
            ticket(
                8,
                "2026-12-09T01:00:00Z",
                "202602035678",
                Category::Lead,
                State::Open,
            ),
            // The same second, a higher number: after it.
            ticket(10, now, "202602031234", Category::Lead, State::Open),
            // The same second, a lower number: before it.
            ticket(5, now, "202602031234", Category::Lead, State::Open),
            t.clone(),
        ];
        let numbers = |v: Vec<&Ticket>| v.iter().map(|e| e.number.clone()).collect::<Vec<_>>();
        assert_eq!(
            numbers(linked(&t, &candidates, 7)),
            ["2026-000003", "2026-000007", "2026-000005"]
        );
        assert_eq!(
            numbers(linked(&t, &candidates, 1)),
            ["2026-000007", "2026-000005"]
        );
        let mut none = t.clone();
        none.register.intake.case_number = Some("执".into());
        assert!(linked(&none, &candidates, 7).is_empty());
    }

    #[test]
    fn a_consultation_goes_to_its_handler_with_an_answer_deadline() {
        let cal = Calendar::load(&config().join("holidays")).unwrap();
        let (r, cases, partners) = (
            roster(true),
            CaseSettings::default(),
            PartnerSettings::default(),
        );
        let cx = Context {
            roster: &r,
            calendar: &cal,
            cases: &cases,
            partners: &partners,
        };
        let now = at("2026-02-12T02:00:00Z");
        let t = ticket(
            1,
            "2026-02-12T02:00:00Z",
            "202602031234",
            Category::Consultation,
            State::Open,
        );
        let d = triage(&t, &[], &cx, now);
        assert_eq!(d.route, Route::Lists(vec![Index::Member("m-zhao".into())]));
        assert_eq!(d.triage.handler.as_deref(), Some("m-zhao"));
        assert_eq!(d.triage.case_known, Some(true));
        assert_eq!(d.triage.at, Some(now));
        // Three working days: 13, the adjusted Saturday 14, then 24 February.
        assert_eq!(d.answer_by, Some(at("2026-02-24T09:30:00Z")));
        assert_eq!(d.pickup_by, None);
        // A unit handles the case: the unit's list.
        let t = ticket(
            2,
            "2026-02-12T02:00:00Z",
            "（2026）鲁0203执恢9012号",
            Category::Consultation,
            State::Open,
        );
        assert_eq!(
            triage(&t, &[], &cx, now).route,
            Route::Lists(vec![Index::Unit("unit-2".into())])
        );
        // Unknown: the desk, and marked unknown.
        let t = ticket(
            3,
            "2026-02-12T02:00:00Z",
            "99",
            Category::Consultation,
            State::Open,
        );
        let d = triage(&t, &[], &cx, now);
        assert_eq!(
            d.route,
            Route::Lists(vec![
                Index::Member("m-desk-1".into()),
                Index::Member("m-desk-2".into())
            ])
        );
        assert_eq!((d.triage.case_known, d.triage.handler), (Some(false), None));
        // No desk: the director's.
        let r = roster(false);
        let cx = Context { roster: &r, ..cx };
        assert_eq!(
            triage(&t, &[], &cx, now).route,
            Route::Lists(vec![Index::Member("m-chen".into())])
        );
    }

    #[test]
    fn a_new_lead_joins_the_dispatch_already_on_its_case() {
        let cal = Calendar::default();
        let (r, mut cases, partners) = (
            roster(false),
            CaseSettings::default(),
            PartnerSettings::default(),
        );
        let now = at("2026-12-10T02:00:00Z");
        let mut first = ticket(
            1,
            "2026-12-10T01:00:00Z",
            "202602031234",
            Category::Lead,
            State::Dispatched,
        );
        first.register.dispatch.officers = vec!["u1-officer".into(), "u1-clerk".into()];
        let second = ticket(
            2,
            "2026-12-10T01:30:00Z",
            "202602031234",
            Category::Lead,
            State::Open,
        );
        let earlier = [first.clone(), second.clone()];
        let third = ticket(
            3,
            "2026-12-10T02:00:00Z",
            "202602031234",
            Category::Other,
            State::Open,
        );
        {
            let cx = Context {
                roster: &r,
                calendar: &cal,
                cases: &cases,
                partners: &partners,
            };
            let d = triage(&third, &earlier, &cx, now);
            assert_eq!(d.route, Route::Joined);
            assert_eq!(d.triage.joined.as_deref(), Some("2026-000001"));
            assert_eq!(d.triage.joined_officers, ["u1-officer", "u1-clerk"]);
            assert_eq!(d.triage.linked, ["2026-000001", "2026-000002"]);
            assert_eq!(
                d.triage.repeat_report().as_deref(),
                Some("本案7日内第3次举报")
            );
            // Violence is never held back to the officers on the case.
            let mut v = third.clone();
            v.register.intake.category = Some(Category::Violence);
            assert_eq!(triage(&v, &earlier, &cx, now).route, Route::Policy);
            // A closed earlier lead: nobody to join.
            let mut closed = first.clone();
            closed.state = State::Closed;
            assert_eq!(
                triage(&third, &[closed, second.clone()], &cx, now).route,
                Route::Policy
            );
            // A partner's call starts its pickup clock.
            let p = ticket(
                4,
                "2026-12-10T02:00:00Z",
                "",
                Category::Partner,
                State::Open,
            );
            let d = triage(&p, &[], &cx, now);
            assert_eq!(d.pickup_by, Some(at("2026-12-10T02:30:00Z")));
            assert_eq!((d.triage.case_known, d.triage.link_days), (None, None));
        }
        cases.join_dispatched = false;
        let cx = Context {
            roster: &r,
            calendar: &cal,
            cases: &cases,
            partners: &partners,
        };
        assert_eq!(triage(&third, &earlier, &cx, now).route, Route::Policy);
    }
}
