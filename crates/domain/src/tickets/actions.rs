//! The officers' transitions of a ticket as rules of the domain, so the
//! API and the paging worker make them alike: 签收 (acknowledge), 出警
//! (dispatch), arrival, closing (what closing needs), notes (their cap),
//! revealing the caller (why, and who may), callbacks (who may, how often;
//! refusals audited), downloading the recording. Each is an [`Action`]: the store's change
//! (actor, action, target state, details, the actor's index) and the edit
//! of the register it makes. Values from outside come in through the
//! parsing newtypes, which say what is wrong in words the API passes on.

use jiff::Timestamp;

use super::model::Change;
use super::model::{Index, Measure, Note, Register, State, Ticket};
use crate::roster::Role;

/// A change and the register edit that goes with it.
pub struct Action {
    pub change: Change,
    pub edit: Box<dyn Fn(&mut Register) + Send + Sync>,
}

/// A note's text: not blank, at most 4000 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteText(String);

impl NoteText {
    pub const MAX_BYTES: usize = 4000;

    pub fn parse(text: &str) -> Result<NoteText, &'static str> {
        if text.trim().is_empty() || text.len() > Self::MAX_BYTES {
            return Err("text: 1 to 4000 bytes");
        }
        Ok(NoteText(text.to_string()))
    }
}

/// Why a caller is revealed (said on the timeline): at least four bytes
/// that are not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(reason: &str) -> Result<Reason, &'static str> {
        if reason.trim().len() < 4 {
            return Err("reason: say why");
        }
        Ok(Reason(reason.to_string()))
    }
}

/// What closing a ticket needs: the measures taken and the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    measures: Vec<Measure>,
    result: String,
}

impl Closing {
    pub fn parse(measures: Vec<Measure>, result: &str) -> Result<Closing, &'static str> {
        if measures.is_empty() || result.trim().is_empty() {
            return Err("measures and result are required");
        }
        Ok(Closing {
            measures,
            result: result.to_string(),
        })
    }
}

/// What a check of a property lead found: not blank, at most 4000 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding(String);

impl Finding {
    pub fn parse(result: &str) -> Result<Finding, &'static str> {
        if result.trim().is_empty() || result.len() > NoteText::MAX_BYTES {
            return Err("result: 1 to 4000 bytes");
        }
        Ok(Finding(result.to_string()))
    }
}

/// A change by `actor`, found again through their index.
fn by(actor: &str, action: &str, version: Option<u64>, to: Option<State>) -> Change {
    let mut c = Change::new(actor, action);
    c.expected_version = version;
    c.to = to;
    c.index = vec![Index::Member(actor.to_string()).name()];
    c
}

/// 签收 by `actor` at `at` (`details`: how, e.g. by a paging call).
pub fn acknowledge(
    actor: &str,
    version: Option<u64>,
    at: Timestamp,
    details: serde_json::Value,
) -> Action {
    let mut change = by(actor, "acknowledge", version, Some(State::Acknowledged));
    change.details = details;
    let who = actor.to_string();
    Action {
        change,
        edit: Box::new(move |r| {
            r.dispatch.acknowledged_by = Some(who.clone());
            r.dispatch.acknowledged_at = Some(at);
        }),
    }
}

/// 出警: who goes (member ids, checked by the caller against the roster),
/// in which vehicle, leaving at `at`.
pub fn dispatch(
    actor: &str,
    version: u64,
    officers: Vec<String>,
    vehicle: Option<String>,
    at: Timestamp,
) -> Action {
    let mut change = by(actor, "dispatch", Some(version), Some(State::Dispatched));
    change.details = serde_json::json!({"officers": officers, "vehicle": vehicle});
    Action {
        change,
        edit: Box::new(move |r| {
            r.dispatch.officers = officers.clone();
            r.dispatch.vehicle = vehicle.clone();
            r.dispatch.departed_at = Some(at);
        }),
    }
}

impl Action {
    /// 出警 with its arrival clock: on scene by `by` (`DispatchSettings::
    /// arrive_by`), and the schedule woken then, in the same change.
    pub fn arriving_by(self, by: Timestamp) -> Action {
        let Action { mut change, edit } = self;
        change.wake = Some(by);
        if let Some(d) = change.details.as_object_mut() {
            d.insert("arrive_by".into(), serde_json::json!(by));
        }
        Action {
            change,
            edit: Box::new(move |r| {
                edit(r);
                r.deadlines.arrive_by = Some(by);
            }),
        }
    }
}

/// A consultation answered (by its handler, or anyone who may see it) at
/// `at`: the answer recorded and the ticket closed, which stops its clock.
pub fn answer(
    actor: &str,
    t: &Ticket,
    via: super::model::AnswerVia,
    text: NoteText,
    at: Timestamp,
) -> Result<Action, &'static str> {
    if t.register.intake.category != Some(super::model::Category::Consultation) {
        return Err("conflict: only a consultation is answered");
    }
    if t.register.answer.is_some() || t.state.is_final() {
        return Err("conflict: the consultation is closed already");
    }
    let mut change = by(actor, "answer", Some(t.version), Some(State::Closed));
    change.details = serde_json::json!({"via": via.as_str(), "text": text.0});
    let who = actor.to_string();
    Ok(Action {
        change,
        edit: Box::new(move |r| {
            r.answer = Some(super::model::Answer {
                by: who.clone(),
                at,
                via: via.as_str().to_string(),
                text: text.0.clone(),
            });
            r.disposal.result = Some(text.0.clone());
            r.disposal.closed_by = Some(who.clone());
            r.disposal.closed_at = Some(at);
        }),
    })
}

/// Whether a ticket's category may be a property lead (财产线索): a lead,
/// or what is handled as one.
fn may_be_property(c: Option<super::model::Category>) -> bool {
    use super::model::Category;
    matches!(
        c,
        None | Some(Category::Lead) | Some(Category::Other) | Some(Category::Preservation)
    )
}

/// A lead marked by `actor` as a property lead, urgent or not: checked
/// within `verify_days` (`verify_urgent_days`) of the first mark; marked
/// again, the urgency and so the deadline change. The schedule wakes for
/// the day-before reminder.
pub fn mark_property(
    actor: &str,
    t: &Ticket,
    urgent: bool,
    at: Timestamp,
    settings: &super::clocks::DispatchSettings,
) -> Result<Action, &'static str> {
    if !may_be_property(t.register.intake.category) {
        return Err("conflict: only a lead is a property lead");
    }
    if t.state.is_final() {
        return Err("conflict: the ticket is closed: its clocks have stopped");
    }
    if t.state == State::Intake {
        return Err("conflict: the report is still being taken");
    }
    let first = t.register.property.clone();
    if first.as_ref().is_some_and(|p| p.verified_at.is_some()) {
        return Err("conflict: the property lead was checked already");
    }
    let (by_whom, since) = first
        .map(|p| (p.by, p.at))
        .unwrap_or_else(|| (actor.to_string(), at));
    let verify_by = settings.verify_by(since, urgent);
    let mut change = by(actor, "property_marked", Some(t.version), None);
    change.details = serde_json::json!({"urgent": urgent, "verify_by": verify_by});
    change.wake = Some(
        verify_by
            .saturating_sub(jiff::SignedDuration::from_hours(24))
            .unwrap_or(verify_by),
    );
    Ok(Action {
        change,
        edit: Box::new(move |r| {
            r.property = Some(super::model::Property {
                urgent,
                by: by_whom.clone(),
                at: since,
                verified_at: None,
                result: None,
            });
            r.deadlines.verify_by = Some(verify_by);
        }),
    })
}

/// A property lead checked by `actor` at `at`, with what was found: its
/// clock stops. (A closed ticket's check may still be recorded.)
pub fn verified(
    actor: &str,
    t: &Ticket,
    finding: Finding,
    at: Timestamp,
) -> Result<Action, &'static str> {
    match &t.register.property {
        None => return Err("conflict: the ticket is not marked as a property lead"),
        Some(p) if p.verified_at.is_some() => {
            return Err("conflict: the property lead was checked already")
        }
        Some(_) => {}
    }
    let mut change = by(actor, "property_verified", Some(t.version), None);
    change.details = serde_json::json!({"result": finding.0});
    Ok(Action {
        change,
        edit: Box::new(move |r| {
            if let Some(p) = r.property.as_mut() {
                p.verified_at = Some(at);
                p.result = Some(finding.0.clone());
            }
        }),
    })
}

/// On the scene at `at`.
pub fn arrive(actor: &str, version: u64, at: Timestamp) -> Action {
    Action {
        change: by(actor, "arrive", Some(version), Some(State::OnScene)),
        edit: Box::new(move |r| r.dispatch.arrived_at = Some(at)),
    }
}

/// Closed by `actor` at `at`, with what was done and the result.
pub fn close(actor: &str, version: u64, closing: Closing, at: Timestamp) -> Action {
    let mut change = by(actor, "close", Some(version), Some(State::Closed));
    change.details = serde_json::json!({"measures": closing.measures, "result": closing.result});
    let who = actor.to_string();
    Action {
        change,
        edit: Box::new(move |r| {
            r.disposal.measures = closing.measures.clone();
            r.disposal.result = Some(closing.result.clone());
            r.disposal.closed_by = Some(who.clone());
            r.disposal.closed_at = Some(at);
        }),
    }
}

/// A note, in any state.
pub fn note(actor: &str, text: NoteText, at: Timestamp) -> Action {
    let mut change = by(actor, "note", None, None);
    change.details = serde_json::json!({"text": text.0});
    let who = actor.to_string();
    Action {
        change,
        edit: Box::new(move |r| {
            r.notes.push(Note {
                by: who.clone(),
                at,
                text: text.0.clone(),
            })
        }),
    }
}

/// Where the debtor is, as an officer puts it: not blank, at most 200
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whereabouts(String);

impl Whereabouts {
    pub const MAX_BYTES: usize = 200;

    pub fn parse(text: &str) -> Result<Whereabouts, &'static str> {
        let text = text.trim();
        if text.is_empty() || text.len() > Self::MAX_BYTES {
            return Err("text: 1 to 200 bytes");
        }
        Ok(Whereabouts(text.to_string()))
    }
}

/// The whereabouts set or corrected by `actor` (the machine's reading
/// replaced; the old value on the timeline), in any state.
pub fn whereabouts(actor: &str, version: u64, t: &Ticket, text: Whereabouts) -> Action {
    let mut change = by(actor, "whereabouts", Some(version), None);
    change.details = serde_json::json!({
        "from": t.register.intake.whereabouts,
        "machine_read": t.register.intake.whereabouts_machine,
        "to": text.0,
    });
    Action {
        change,
        edit: Box::new(move |r| {
            r.intake.whereabouts = Some(text.0.clone());
            r.intake.whereabouts_machine = false;
        }),
    }
}

/// The caller revealed to `actor`, and why: on the timeline only (no
/// index: revealing is not working on the ticket).
pub fn reveal(actor: &str, reason: &Reason) -> Action {
    let mut change = Change::new(actor, "reveal_caller");
    change.details = serde_json::json!({"reason": reason.0});
    Action {
        change,
        edit: Box::new(|_| {}),
    }
}

/// A callback to the informant asked for by `actor`, and why: on the
/// timeline, as a reveal (the number itself never leaves the gateway).
pub fn callback(actor: &str, reason: &Reason) -> Action {
    let mut change = Change::new(actor, "callback_requested");
    change.details = serde_json::json!({"reason": reason.0});
    Action {
        change,
        edit: Box::new(|_| {}),
    }
}

/// Whether `member` may see a caller in clear: one of `reveal_roles`
/// (`[api] reveal_roles`). The same right lets the informant be called
/// back, whose number the gateway opens.
pub fn may_reveal(member: &crate::roster::Member, reveal_roles: &[Role]) -> bool {
    member.has_any(reveal_roles)
}

/// How many callbacks a court day allows (`[api]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackLimits {
    pub per_ticket: u32,
    pub per_member: u32,
}

/// Why a callback is refused before anything is dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackRefusal {
    /// Not one of the roles that may reveal a caller.
    Role,
    /// The ticket's callbacks of the day are used up.
    TicketRate(u32),
    /// The member's callbacks of the day are used up.
    MemberRate(u32),
}

impl CallbackRefusal {
    /// A word for the timeline and the API's `error`.
    pub fn why(self) -> &'static str {
        match self {
            CallbackRefusal::Role => "role",
            CallbackRefusal::TicketRate(_) => "ticket_rate",
            CallbackRefusal::MemberRate(_) => "member_rate",
        }
    }

    pub fn message(self) -> String {
        match self {
            CallbackRefusal::Role => {
                "your role may not have informants called back (only the roles that may reveal a caller)".into()
            }
            CallbackRefusal::TicketRate(n) => {
                format!("this ticket's informant was asked for {n} times today: no more callbacks until tomorrow")
            }
            CallbackRefusal::MemberRate(n) => {
                format!("you asked for {n} callbacks today: no more until tomorrow")
            }
        }
    }
}

/// Who may ask for a callback: the roles that may reveal a caller.
pub fn may_call_back(
    member: &crate::roster::Member,
    reveal_roles: &[Role],
) -> Result<(), CallbackRefusal> {
    match may_reveal(member, reveal_roles) {
        true => Ok(()),
        false => Err(CallbackRefusal::Role),
    }
}

/// How often: `counts` are the ticket's and the member's callbacks of the
/// day, this one counted.
pub fn callback_quota(counts: (i64, i64), limits: CallbackLimits) -> Result<(), CallbackRefusal> {
    let (ticket, member) = counts;
    if ticket > i64::from(limits.per_ticket) {
        return Err(CallbackRefusal::TicketRate(limits.per_ticket));
    }
    if member > i64::from(limits.per_member) {
        return Err(CallbackRefusal::MemberRate(limits.per_member));
    }
    Ok(())
}

/// A callback refused to `actor`, and why: on the timeline, as a reveal
/// is (who tried to have the informant called, and was not let).
pub fn callback_refused(actor: &str, refusal: CallbackRefusal) -> Action {
    let mut change = Change::new(actor, "callback_refused");
    change.details = serde_json::json!({"why": refusal.why(), "message": refusal.message()});
    Action {
        change,
        edit: Box::new(|_| {}),
    }
}

/// The director rates a closed lead (第二十条(四)) and may propose a reward
/// in yuan; a rating not yet decided on may be given again.
pub fn rate(
    member: &crate::roster::Member,
    t: &super::model::Ticket,
    value: super::model::LeadValue,
    amount_yuan: Option<u32>,
    at: Timestamp,
) -> Result<Action, &'static str> {
    use super::model::{LeadValue, Reward};
    if !member.has(Role::Director) {
        return Err("forbidden: the director rates leads");
    }
    if t.state != State::Closed {
        return Err("conflict: only a closed lead is rated");
    }
    if t.register
        .reward
        .as_ref()
        .is_some_and(|r| r.decision.is_some())
    {
        return Err("conflict: the reward was decided on already");
    }
    match (value, amount_yuan) {
        (LeadValue::Worthless, Some(_)) => {
            return Err("amount_yuan: no reward for a worthless lead")
        }
        (_, Some(a)) if a == 0 || a > 1_000_000 => return Err("amount_yuan: 1 to 1000000"),
        _ => {}
    }
    let mut change = by(&member.id, "reward_rated", Some(t.version), None);
    change.details = serde_json::json!({"value": value, "amount_yuan": amount_yuan});
    let who = member.id.clone();
    Ok(Action {
        change,
        edit: Box::new(move |r| {
            r.reward = Some(Reward {
                value,
                rated_by: who.clone(),
                rated_at: at,
                amount_yuan,
                decision: None,
            })
        }),
    })
}

/// The chief commander or a deputy decides on a proposed reward — not the
/// one who proposed it.
pub fn decide_reward(
    member: &crate::roster::Member,
    t: &super::model::Ticket,
    approved: bool,
    at: Timestamp,
) -> Result<Action, &'static str> {
    use super::model::RewardDecision;
    if !member.has_any(&[Role::ChiefCommander, Role::Deputy]) {
        return Err("forbidden: the chief commander or a deputy decides on rewards");
    }
    let Some(reward) = t
        .register
        .reward
        .as_ref()
        .filter(|r| r.amount_yuan.is_some())
    else {
        return Err("conflict: no reward was proposed");
    };
    if reward.decision.is_some() {
        return Err("conflict: the reward was decided on already");
    }
    if reward.rated_by == member.id {
        return Err("forbidden: who proposed a reward does not approve it");
    }
    let mut change = by(&member.id, "reward_decided", Some(t.version), None);
    change.details = serde_json::json!({"approved": approved, "amount_yuan": reward.amount_yuan});
    let who = member.id.clone();
    Ok(Action {
        change,
        edit: Box::new(move |r| {
            if let Some(reward) = r.reward.as_mut() {
                reward.decision = Some(RewardDecision {
                    approved,
                    by: who.clone(),
                    at,
                });
            }
        }),
    })
}

/// Someone read the reward register with this ticket in it (the informant
/// shown or not): on the timeline, as a reveal.
pub fn reward_viewed(actor: &str, informant_shown: bool) -> Action {
    let mut change = Change::new(actor, "reward_register_viewed");
    change.details = serde_json::json!({"informant_shown": informant_shown});
    Action {
        change,
        edit: Box::new(|_| {}),
    }
}

/// The recording downloaded by `actor` (the Range asked for, if any): on
/// the timeline only, as a reveal.
pub fn download(actor: &str, range: Option<&str>) -> Action {
    let mut change = Change::new(actor, "recording_download");
    change.details = serde_json::json!({"range": range});
    Action {
        change,
        edit: Box::new(|_| {}),
    }
}

/// A legal hold on the ticket (its recordings are kept past retention),
/// or with `reason` `None` the hold released; on the timeline either way.
pub fn hold(actor: &str, reason: Option<&Reason>, at: Timestamp) -> Action {
    let (action, reason) = match reason {
        Some(r) => ("legal_hold", Some(r.0.clone())),
        None => ("legal_hold_released", None),
    };
    let mut change = Change::new(actor, action);
    change.details = serde_json::json!({ "reason": reason });
    let who = actor.to_string();
    Action {
        change,
        edit: Box::new(move |r| {
            r.hold = reason.clone().map(|reason| super::model::Hold {
                by: who.clone(),
                at,
                reason,
            })
        }),
    }
}

/// A recording deleted at the end of its retention: on the timeline (the
/// audit), its link kept with the hash it had.
pub fn recording_deleted(path: &str, sha256: &str, retain_days: u32) -> Action {
    let mut change = Change::new("gateway", "recording_deleted");
    change.details =
        serde_json::json!({"path": path, "sha256": sha256, "retain_days": retain_days});
    Action {
        change,
        edit: Box::new(|_| {}),
    }
}

/// The lists through which `member` sees tickets besides seeing them all:
/// their own and their units' (paging and the connections add to them).
pub fn indexes_of(member: &crate::roster::Member, roster: &crate::roster::Roster) -> Vec<Index> {
    std::iter::once(Index::Member(member.id.clone()))
        .chain(
            roster
                .units_of(&member.id)
                .into_iter()
                .map(|u| Index::Unit(u.to_string())),
        )
        .collect()
}

/// Whether `member` may see `t`: the leaders see every ticket, anyone else
/// those on one of their lists (`listed`, as the store found it through
/// [`indexes_of`]) or of a case they handle. Anything else is a 404.
pub fn may_see(
    member: &crate::roster::Member,
    roster: &crate::roster::Roster,
    t: &Ticket,
    listed: bool,
) -> bool {
    sees_all(member)
        || listed
        || t.register
            .intake
            .case_number
            .as_deref()
            .is_some_and(|n| roster.handles(&member.id, n))
}

/// The director, deputies and chief commander see every ticket; anyone
/// else those paged to them or their unit, or of the cases they handle.
pub fn sees_all(member: &crate::roster::Member) -> bool {
    member.has_any(&Role::SEE_ALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_outside_are_parsed_or_refused_in_words() {
        assert!(NoteText::parse("看到被执行人的车").is_ok());
        assert_eq!(NoteText::parse("  "), Err("text: 1 to 4000 bytes"));
        assert!(NoteText::parse(&"字".repeat(1333)).is_ok()); // 3999 bytes
        assert_eq!(
            NoteText::parse(&"字".repeat(1334)),
            Err("text: 1 to 4000 bytes")
        );
        assert_eq!(Reason::parse(" ab "), Err("reason: say why"));
        assert!(Reason::parse("回访举报人").is_ok());
        assert_eq!(
            Closing::parse(Vec::new(), "done"),
            Err("measures and result are required")
        );
        assert_eq!(
            Closing::parse(vec![Measure::Summons], " "),
            Err("measures and result are required")
        );
    }

    #[test]
    fn each_action_edits_the_register_as_the_logbook_wants() {
        let at: Timestamp = "2026-12-01T03:00:00Z".parse().unwrap();
        let mut r = Register::default();
        let a = acknowledge("p-sun", None, at, serde_json::json!({"via": "paging call"}));
        assert_eq!(
            (a.change.to, a.change.index.as_slice()),
            (
                Some(State::Acknowledged),
                ["member:p-sun".to_string()].as_slice()
            )
        );
        (a.edit)(&mut r);
        assert_eq!(r.dispatch.acknowledged_by.as_deref(), Some("p-sun"));
        assert_eq!(r.dispatch.acknowledged_at, Some(at));
        let c = close(
            "u1-officer",
            4,
            Closing::parse(vec![Measure::Summons], "已传唤").unwrap(),
            at,
        );
        assert_eq!(
            (c.change.to, c.change.expected_version),
            (Some(State::Closed), Some(4))
        );
        (c.edit)(&mut r);
        assert_eq!(r.disposal.result.as_deref(), Some("已传唤"));
        assert_eq!(r.disposal.closed_by.as_deref(), Some("u1-officer"));
        let n = note("m-chen", NoteText::parse("补充").unwrap(), at);
        (n.edit)(&mut r);
        assert_eq!(r.notes.len(), 1);
        assert!(reveal("m-guo", &Reason::parse("需要回访").unwrap())
            .change
            .index
            .is_empty());
        let with = |roles: Vec<Role>| crate::roster::Member {
            id: "m".into(),
            name: "m".into(),
            roles,
            phone: None,
            sip: None,
            message: None,
            webhook: None,
        };
        assert!(sees_all(&with(vec![Role::Deputy])));
        assert!(!sees_all(&with(vec![Role::Officer])));
    }

    #[test]
    fn an_officer_corrects_the_machine_read_whereabouts() {
        let mut t = Ticket {
            number: "2026-000001".into(),
            call_id: "c".into(),
            state: State::Open,
            version: 3,
            received_at: "2026-12-01T03:00:00Z".parse().unwrap(),
            register: Register::default(),
        };
        t.register.intake.whereabouts = Some("辽宁路一百二十号".into());
        t.register.intake.whereabouts_machine = true;
        assert!(Whereabouts::parse("  ").is_err());
        assert!(Whereabouts::parse(&"路".repeat(100)).is_err());
        let a = whereabouts(
            "m-chen",
            3,
            &t,
            Whereabouts::parse(" 辽宁路120号 ").unwrap(),
        );
        assert_eq!((a.change.to, a.change.expected_version), (None, Some(3)));
        assert_eq!(a.change.details["from"], "辽宁路一百二十号");
        assert_eq!(a.change.details["machine_read"], true);
        (a.edit)(&mut t.register);
        assert_eq!(
            t.register.intake.whereabouts.as_deref(),
            Some("辽宁路120号")
        );
        assert!(!t.register.intake.whereabouts_machine);
    }

    #[test]
    fn a_consultation_is_answered_once_and_a_lead_carries_a_property_clock() {
        use crate::tickets::clocks::DispatchSettings;
        use crate::tickets::model::{AnswerVia, Category};
        let at: Timestamp = "2026-12-01T03:00:00Z".parse().unwrap();
        let mut t = Ticket {
            number: "2026-000001".into(),
            call_id: "c".into(),
            state: State::Open,
            version: 3,
            received_at: at,
            register: Register::default(),
        };
        let text = || NoteText::parse("执行款已于上周发放").unwrap();
        t.register.intake.category = Some(Category::Lead);
        assert_eq!(
            answer("m-zhao", &t, AnswerVia::Reply, text(), at).err(),
            Some("conflict: only a consultation is answered")
        );
        t.register.intake.category = Some(Category::Consultation);
        let a = answer("m-zhao", &t, AnswerVia::Callback, text(), at).unwrap();
        assert_eq!(
            (
                a.change.to,
                a.change.expected_version,
                a.change.action.as_str()
            ),
            (Some(State::Closed), Some(3), "answer")
        );
        let mut r = t.register.clone();
        (a.edit)(&mut r);
        let got = r.answer.clone().unwrap();
        assert_eq!((got.by.as_str(), got.via.as_str()), ("m-zhao", "callback"));
        assert_eq!(r.disposal.closed_by.as_deref(), Some("m-zhao"));
        t.register = r;
        t.state = State::Closed;
        assert_eq!(
            answer("m-zhao", &t, AnswerVia::Reply, text(), at).err(),
            Some("conflict: the consultation is closed already")
        );
        // Property: only a lead, taken; seven days, three when urgent, from
        // the first mark; the schedule woken for the day-before reminder.
        let s = DispatchSettings::default();
        assert!(mark_property("u1-officer", &t, false, at, &s).is_err());
        let mut t = Ticket {
            state: State::Intake,
            register: Register::default(),
            ..t
        };
        t.register.intake.category = Some(Category::Lead);
        assert_eq!(
            mark_property("u1-officer", &t, false, at, &s).err(),
            Some("conflict: the report is still being taken")
        );
        t.state = State::Dispatched;
        let m = mark_property("u1-officer", &t, false, at, &s).unwrap();
        assert_eq!(m.change.wake, Some("2026-12-07T03:00:00Z".parse().unwrap()));
        (m.edit)(&mut t.register);
        assert_eq!(
            t.register.deadlines.verify_by,
            Some("2026-12-08T03:00:00Z".parse().unwrap())
        );
        let later: Timestamp = "2026-12-02T03:00:00Z".parse().unwrap();
        let m = mark_property("u2-officer", &t, true, later, &s).unwrap();
        (m.edit)(&mut t.register);
        assert_eq!(
            t.register.deadlines.verify_by,
            Some("2026-12-04T03:00:00Z".parse().unwrap())
        );
        assert_eq!(t.register.property.as_ref().unwrap().by, "u1-officer");
        assert_eq!(Finding::parse(" "), Err("result: 1 to 4000 bytes"));
        let v = verified(
            "u1-officer",
            &t,
            Finding::parse("查到车辆一辆").unwrap(),
            later,
        )
        .unwrap();
        (v.edit)(&mut t.register);
        let p = t.register.property.clone().unwrap();
        assert_eq!(
            (p.verified_at, p.result.as_deref()),
            (Some(later), Some("查到车辆一辆"))
        );
        assert!(verified("u1-officer", &t, Finding::parse("x").unwrap(), later).is_err());
        assert!(mark_property("u1-officer", &t, false, later, &s).is_err());
        // 出警 with its arrival clock.
        let d = dispatch("u1-officer", 4, vec!["u1-officer".into()], None, at)
            .arriving_by(s.arrive_by(at));
        assert_eq!(d.change.wake, Some("2026-12-01T03:30:00Z".parse().unwrap()));
        let mut r = Register::default();
        (d.edit)(&mut r);
        assert_eq!(
            (r.deadlines.arrive_by, r.dispatch.departed_at),
            (d.change.wake, Some(at))
        );
    }

    #[test]
    fn a_callback_needs_a_reveal_role_and_stays_within_the_days_limits() {
        let member = |roles: &[Role]| crate::roster::Member {
            id: "m".into(),
            name: "m".into(),
            roles: roles.to_vec(),
            phone: None,
            sip: None,
            message: None,
            webhook: None,
        };
        let reveal = [Role::Director, Role::ChiefCommander];
        assert_eq!(may_call_back(&member(&[Role::Director]), &reveal), Ok(()));
        // A deputy sees every ticket, but may not reveal: no callback.
        assert_eq!(
            may_call_back(&member(&[Role::Deputy]), &reveal),
            Err(CallbackRefusal::Role)
        );
        assert_eq!(
            may_call_back(&member(&[Role::Officer]), &[]),
            Err(CallbackRefusal::Role)
        );
        let limits = CallbackLimits {
            per_ticket: 3,
            per_member: 10,
        };
        assert_eq!(callback_quota((3, 10), limits), Ok(()));
        assert_eq!(
            callback_quota((4, 1), limits),
            Err(CallbackRefusal::TicketRate(3))
        );
        assert_eq!(
            callback_quota((1, 11), limits),
            Err(CallbackRefusal::MemberRate(10))
        );
        let refused = callback_refused("u1-officer", CallbackRefusal::Role);
        assert_eq!(refused.change.action, "callback_refused");
        assert_eq!(refused.change.details["why"], "role");
        assert!(refused.change.index.is_empty());
    }
}
