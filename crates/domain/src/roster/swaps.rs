//! Swaps and overrides (issue 33): the rules, without I/O. A member asks
//! another to take their duty of one day (every post they hold in that
//! day's blocks: the period that starts on it, and a day unit's hours); the
//! other accepts or declines; with `approval`, an approver (the director by
//! default) approves or rejects; or an approver puts in an override
//! directly: a unit or a member replaced by another for a range of days.
//! In force, each is a dynamic override ([`Swap::as_override`]) that
//! [`Roster::resolve`] applies after the file's, so paging, the bridge, the
//! handover, the board and `roster who`/`plan` need nothing of their own.
//!
//! ```text
//!   asked ──accept──> accepted ──approve──> in_effect ──cancel──> cancelled
//!     │                  │                     ^   └──void (a reload)──> void
//!     │                  └──reject──> rejected  │
//!     └──accept, no approval needed─────────────┘
//!   asked ──decline──> declined
//!   asked, accepted ──withdraw (the asker)──> withdrawn
//!   asked, accepted ──cancel (an approver)──> cancelled
//!   override (an approver) ──> in_effect
//! ```
//!
//! The role rule: whoever takes a place must be able to fill it. The court
//! police officer's place (法警) is for a member with the `police` role; a
//! unit member's place is for a member with one of the crew roles
//! (执行员 officer, 书记员 clerk, 司机 driver) that the replaced member has
//! (any crew role when they have none); nobody takes a place in a block
//! they are on already; a unit's place is for another unit. Refusals name
//! why: [`Refusal`].

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::blocks::{role_zh, Block, Post, CREW};
use super::{Calendar, Member, Override, Role, Roster};
use crate::court_time::court_day;

/// A swap between two members, or an approver's override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapKind {
    Swap,
    Override,
}

/// Where a swap stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapState {
    /// Asked of the other member.
    Asked,
    /// Accepted; awaiting an approver.
    Accepted,
    /// In force: the roster applies it.
    InEffect,
    Declined,
    Withdrawn,
    Rejected,
    Cancelled,
    /// No longer applicable after a reload of the roster file.
    Void,
}

impl SwapState {
    pub fn as_str(self) -> &'static str {
        match self {
            SwapState::Asked => "asked",
            SwapState::Accepted => "accepted",
            SwapState::InEffect => "in_effect",
            SwapState::Declined => "declined",
            SwapState::Withdrawn => "withdrawn",
            SwapState::Rejected => "rejected",
            SwapState::Cancelled => "cancelled",
            SwapState::Void => "void",
        }
    }

    /// Nothing more happens to it.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            SwapState::Asked | SwapState::Accepted | SwapState::InEffect
        )
    }
}

impl std::fmt::Display for SwapState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What someone did to a swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapAction {
    Ask,
    Accept,
    Decline,
    Withdraw,
    Approve,
    Reject,
    Cancel,
    /// An approver's override, in force at once.
    Override,
    /// A reload found it no longer applies.
    Void,
}

impl SwapAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SwapAction::Ask => "ask",
            SwapAction::Accept => "accept",
            SwapAction::Decline => "decline",
            SwapAction::Withdraw => "withdraw",
            SwapAction::Approve => "approve",
            SwapAction::Reject => "reject",
            SwapAction::Cancel => "cancel",
            SwapAction::Override => "override",
            SwapAction::Void => "void",
        }
    }

    /// The action a word names (the CLI's and the API's).
    pub fn parse(s: &str) -> Option<SwapAction> {
        [
            SwapAction::Accept,
            SwapAction::Decline,
            SwapAction::Withdraw,
            SwapAction::Approve,
            SwapAction::Reject,
            SwapAction::Cancel,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// One step of a swap's audit trail: who did what, when, through what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapStep {
    pub at: Timestamp,
    /// A member id, or `reload`.
    pub by: String,
    pub action: SwapAction,
    /// `api`, `cli`, `reload`.
    pub via: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A swap or an override, with its audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    /// The store's number (0 until stored).
    pub id: u64,
    pub kind: SwapKind,
    /// The member (a swap's asker), or the member or unit replaced.
    pub replace: String,
    pub with: String,
    /// The days whose blocks it covers (a swap: one day).
    pub from: Date,
    pub to: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub state: SwapState,
    /// Who asked for it (a swap) or put it in (an override).
    pub by: String,
    /// When its last block ends: after that it is history.
    pub until: Timestamp,
    pub steps: Vec<SwapStep>,
}

impl Swap {
    /// `换班 #3` or `调整 #4`.
    pub fn label(&self) -> String {
        match self.kind {
            SwapKind::Swap => format!("换班 #{}", self.id),
            SwapKind::Override => format!("调整 #{}", self.id),
        }
    }

    /// The dynamic override it is in force as.
    pub fn as_override(&self) -> Override {
        Override {
            replace: self.replace.clone(),
            with: self.with.clone(),
            from: self.from,
            to: self.to,
            reason: Some(match &self.reason {
                Some(r) if self.kind == SwapKind::Override => format!("{}：{r}", self.label()),
                _ => self.label(),
            }),
            swap: Some(self.id),
        }
    }

    /// The days it covers, in words: `2026-12-08` or `2026-12-08 至 2026-12-10`.
    pub fn days(&self) -> String {
        match self.from == self.to {
            true => self.from.to_string(),
            false => format!("{} 至 {}", self.from, self.to),
        }
    }

    /// Who and what, in words: `一组执行员 的 2026-12-08 值班由 二组执行员 代班`.
    pub fn describe(&self, roster: &Roster) -> String {
        let name = |id: &str| roster.name_of(id).unwrap_or(id).to_string();
        let base = format!(
            "{} 的 {} 值班由 {} {}",
            name(&self.replace),
            self.days(),
            name(&self.with),
            match self.kind {
                SwapKind::Swap => "代班",
                SwapKind::Override => "替换",
            }
        );
        match &self.reason {
            Some(r) => format!("{base}（{r}）"),
            None => base,
        }
    }
}

/// Why a request is refused: the answer's kind and a message naming why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
}

/// A refusal's kind: bad input (400), not this person's to do (403), not
/// in this state (409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    Invalid,
    Forbidden,
    Conflict,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal {
        kind: RefusalKind::Invalid,
        message: message.into(),
    }
}

fn forbidden(message: impl Into<String>) -> Refusal {
    Refusal {
        kind: RefusalKind::Forbidden,
        message: message.into(),
    }
}

fn conflict(message: impl Into<String>) -> Refusal {
    Refusal {
        kind: RefusalKind::Conflict,
        message: message.into(),
    }
}

/// The longest range an override covers, and how far ahead a swap may be.
pub const MAX_DAYS: i64 = 366;

/// The rules, applied to the roster in force (the file's plan with the
/// dynamic overrides in force) at `now`.
pub struct Rules<'a> {
    pub roster: &'a Roster,
    pub calendar: &'a Calendar,
    /// The rotation's offset.
    pub offset: i64,
    pub now: Timestamp,
    /// An accepted swap waits for an approver (`[swaps] approval`).
    pub approval: bool,
    /// Who approves swaps and puts in overrides (`[swaps] approvers`).
    pub approvers: &'a [Role],
}

/// `member`'s id and name: `一组执行员（u1-officer）`.
fn who(m: &Member) -> String {
    format!("{}（{}）", m.name, m.id)
}

impl Rules<'_> {
    fn member(&self, id: &str) -> Result<&Member, Refusal> {
        self.roster
            .member(id)
            .ok_or_else(|| invalid(format!("{id:?} is not a member of the roster")))
    }

    /// The approvers' roles in words: `执行局长`.
    fn approvers_words(&self) -> String {
        self.approvers
            .iter()
            .map(|r| format!("{} ({})", role_zh(*r), r.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn require_approver(&self, by: &Member, what: &str) -> Result<(), Refusal> {
        match by.has_any(self.approvers) {
            true => Ok(()),
            false => Err(forbidden(format!(
                "{what} is for {} ([swaps] approvers): {} is not one",
                self.approvers_words(),
                who(by)
            ))),
        }
    }

    /// The earliest day whose blocks are not all over: today's period's day.
    fn earliest(&self) -> Date {
        self.roster
            .period_at(self.calendar, self.now)
            .map_or_else(|| court_day(self.now), |p| p.day)
    }

    /// `day` is neither over nor more than a year ahead (bounded first:
    /// nothing is resolved for a day in another age).
    fn check_day(&self, day: Date, what: &str) -> Result<(), Refusal> {
        let ahead = (day - court_day(self.now)).get_days() as i64;
        if ahead > MAX_DAYS {
            return Err(invalid(format!(
                "{what} {day} is more than {MAX_DAYS} days ahead"
            )));
        }
        if ahead < -MAX_DAYS {
            return Err(invalid(format!(
                "{what} {day} is in the past (the earliest day now is {})",
                self.earliest()
            )));
        }
        let end = self.roster.period_of(self.calendar, day).end;
        if end <= self.now {
            return Err(invalid(format!(
                "{what} {day} is in the past: its duty ended at {} (the earliest day now is {})",
                crate::court_time::local(end),
                self.earliest()
            )));
        }
        Ok(())
    }

    /// Whether `with` can take `replaced`'s post in `block`.
    fn fits(
        &self,
        block: &Block,
        post: &Post,
        replaced: &Member,
        with: &Member,
    ) -> Result<(), Refusal> {
        if block.post_of(&with.id).is_some() {
            return Err(invalid(format!(
                "{} is on that duty already ({} {})",
                who(with),
                block.span(),
                block.post_words(&with.id)
            )));
        }
        match post {
            Post::Police if !with.has(Role::Police) => Err(invalid(format!(
                "{}: {} holds the court police officer's place (法警), and {} is not police: only a member with the police role may take it",
                block.span(),
                who(replaced),
                who(with)
            ))),
            Post::Crew { unit_name, .. } => {
                let theirs: Vec<Role> = CREW.into_iter().filter(|r| replaced.has(*r)).collect();
                let needed = if theirs.is_empty() { CREW.to_vec() } else { theirs };
                match with.has_any(&needed) {
                    true => Ok(()),
                    false => Err(invalid(format!(
                        "{}: {} rides with {unit_name} as {}, and {} is not: only a member who is may ride with that unit",
                        block.span(),
                        who(replaced),
                        needed
                            .iter()
                            .map(|r| format!("{} ({})", role_zh(*r), r.as_str()))
                            .collect::<Vec<_>>()
                            .join(" or "),
                        who(with)
                    ))),
                }
            }
            _ => Ok(()),
        }
    }

    /// The posts `replace` holds from `from` to `to` that are not over, each
    /// one `with` can take; refused naming why when there is none, or one
    /// `with` cannot take.
    fn check_takeover(
        &self,
        replace: &str,
        with: &str,
        from: Date,
        to: Date,
    ) -> Result<(), Refusal> {
        let mut held = 0;
        for b in self.roster.blocks(self.calendar, self.offset, from, to) {
            if b.end <= self.now {
                continue;
            }
            let Some(post) = b.post_of(replace) else {
                continue;
            };
            held += 1;
            if let (Some(r), Some(w)) = (self.roster.member(replace), self.roster.member(with)) {
                self.fits(&b, &post, r, w)?;
            }
        }
        if held == 0 {
            let name = self.roster.name_of(replace).unwrap_or(replace);
            let range = match from == to {
                true => from.to_string(),
                false => format!("{from} to {to}"),
            };
            let on = self.roster.period_block(self.calendar, self.offset, from);
            return Err(invalid(format!(
                "{name}（{replace}）has no duty on {range}: no such duty to hand on (on {from} the duty is {}{})",
                on.unit.as_ref().map_or("-", |u| u.name.as_str()),
                on.police
                    .as_ref()
                    .map(|p| format!(" with {}", p.name))
                    .unwrap_or_default()
            )));
        }
        Ok(())
    }

    fn until(&self, to: Date) -> Timestamp {
        self.roster.period_of(self.calendar, to).end
    }

    /// `by` asks `with` to take their duty of `day`.
    pub fn ask(
        &self,
        by: &str,
        with: &str,
        day: Date,
        note: Option<String>,
        via: &str,
    ) -> Result<Swap, Refusal> {
        let asker = self.member(by)?;
        let taker = self.member(with)?;
        if asker.id == taker.id {
            return Err(invalid("a swap needs another member: with names the asker"));
        }
        self.check_day(day, "the duty of")?;
        self.check_takeover(&asker.id, &taker.id, day, day)?;
        Ok(Swap {
            id: 0,
            kind: SwapKind::Swap,
            replace: asker.id.clone(),
            with: taker.id.clone(),
            from: day,
            to: day,
            reason: note.clone(),
            state: SwapState::Asked,
            by: asker.id.clone(),
            until: self.until(day),
            steps: vec![SwapStep {
                at: self.now,
                by: asker.id.clone(),
                action: SwapAction::Ask,
                via: via.into(),
                note,
            }],
        })
    }

    /// An approver puts in an override: `replace` (a unit or a member)
    /// replaced by `with` from `from` to `to`; in force at once.
    #[allow(clippy::too_many_arguments)]
    pub fn put_in(
        &self,
        by: &str,
        replace: &str,
        with: &str,
        from: Date,
        to: Date,
        reason: Option<String>,
        via: &str,
    ) -> Result<Swap, Refusal> {
        let director = self.member(by)?;
        self.require_approver(director, "putting in an override")?;
        for id in [replace, with] {
            if !self.roster.knows(id) {
                return Err(invalid(format!(
                    "{id:?} is neither a member nor a unit of the roster"
                )));
            }
        }
        if replace == with {
            return Err(invalid("replace and with name the same"));
        }
        if self.roster.is_unit(replace) != self.roster.is_unit(with) {
            return Err(invalid(
                "replace and with must both be units or both members",
            ));
        }
        if from > to {
            return Err(invalid(format!("from {from} is after to {to}")));
        }
        if (to - from).get_days() as i64 >= MAX_DAYS {
            return Err(invalid(format!(
                "from {from} to {to} is more than {MAX_DAYS} days"
            )));
        }
        self.check_day(from, "from")?;
        self.check_day(to, "to")?;
        self.check_takeover(replace, with, from, to)?;
        Ok(Swap {
            id: 0,
            kind: SwapKind::Override,
            replace: replace.into(),
            with: with.into(),
            from,
            to,
            reason: reason.clone(),
            state: SwapState::InEffect,
            by: director.id.clone(),
            until: self.until(to),
            steps: vec![SwapStep {
                at: self.now,
                by: director.id.clone(),
                action: SwapAction::Override,
                via: via.into(),
                note: reason,
            }],
        })
    }

    /// `by` does `action` to `swap`: the swap as it is then, or why not.
    /// Accepting and approving check the duty again (still theirs, not
    /// over, the role rule), against the roster in force without it.
    pub fn act(
        &self,
        swap: &Swap,
        by: &str,
        action: SwapAction,
        note: Option<String>,
        via: &str,
    ) -> Result<Swap, Refusal> {
        let actor = self.member(by)?;
        let label = swap.label();
        let state = swap.state;
        let next = match action {
            SwapAction::Accept | SwapAction::Decline => {
                if actor.id != swap.with || swap.kind != SwapKind::Swap {
                    return Err(forbidden(format!(
                        "{label} was asked of {}: only they may accept or decline it, not {}",
                        swap.with,
                        who(actor)
                    )));
                }
                if state != SwapState::Asked {
                    return Err(conflict(format!(
                        "{label} is {state}: only an asked swap can be accepted or declined"
                    )));
                }
                match action {
                    SwapAction::Decline => SwapState::Declined,
                    _ => {
                        self.check_day(swap.from, "the duty of")?;
                        self.check_takeover(&swap.replace, &swap.with, swap.from, swap.to)?;
                        match self.approval {
                            true => SwapState::Accepted,
                            false => SwapState::InEffect,
                        }
                    }
                }
            }
            SwapAction::Withdraw => {
                if actor.id != swap.by || swap.kind != SwapKind::Swap {
                    return Err(forbidden(format!(
                        "{label} is {}'s request: only they may withdraw it, not {}",
                        swap.by,
                        who(actor)
                    )));
                }
                if !matches!(state, SwapState::Asked | SwapState::Accepted) {
                    return Err(conflict(format!(
                        "{label} is {state}: only an asked or accepted swap can be withdrawn"
                    )));
                }
                SwapState::Withdrawn
            }
            SwapAction::Approve | SwapAction::Reject => {
                self.require_approver(actor, "approving a swap")?;
                if state != SwapState::Accepted {
                    return Err(conflict(format!(
                        "{label} is {state}: only a swap accepted by the member asked awaits approval"
                    )));
                }
                match action {
                    SwapAction::Reject => SwapState::Rejected,
                    _ => {
                        self.check_day(swap.from, "the duty of")?;
                        self.check_takeover(&swap.replace, &swap.with, swap.from, swap.to)?;
                        SwapState::InEffect
                    }
                }
            }
            SwapAction::Cancel => {
                self.require_approver(actor, "cancelling a swap or an override")?;
                if state.is_final() {
                    return Err(conflict(format!("{label} is {state} already")));
                }
                SwapState::Cancelled
            }
            SwapAction::Ask | SwapAction::Override | SwapAction::Void => {
                return Err(invalid(format!(
                    "{:?} is not something to do to a swap",
                    action.as_str()
                )))
            }
        };
        let mut out = swap.clone();
        out.state = next;
        out.steps.push(SwapStep {
            at: self.now,
            by: actor.id.clone(),
            action,
            via: via.into(),
            note,
        });
        Ok(out)
    }
}

/// A swap in force that a reload found no longer applicable, and why: a
/// member or unit it names is gone, the replaced one no longer holds a duty
/// in its days, or the one taking it no longer fits the role rule.
pub fn inapplicable(
    roster: &Roster,
    cal: &Calendar,
    offset: i64,
    now: Timestamp,
    swaps: &[Swap],
) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    // Checked in order, each against the plan with those before it.
    let mut kept: Vec<Override> = Vec::new();
    for s in swaps
        .iter()
        .filter(|s| s.state == SwapState::InEffect && s.until > now)
    {
        let (base, _) = roster.clone().with_dynamic(kept.clone());
        let rules = Rules {
            roster: &base,
            calendar: cal,
            offset,
            now,
            approval: false,
            approvers: &[],
        };
        let why = if let Some(gone) = [&s.replace, &s.with]
            .into_iter()
            .find(|id| !roster.knows(id))
        {
            Some(format!("{gone} is not in the roster any more"))
        } else if roster.is_unit(&s.replace) != roster.is_unit(&s.with) {
            Some("replace and with are no longer both units or both members".into())
        } else {
            let from = s.from.max(rules.earliest());
            rules
                .check_takeover(&s.replace, &s.with, from, s.to)
                .err()
                .map(|r| r.message)
        };
        match why {
            Some(why) => out.push((s.id, why)),
            None => kept.push(s.as_override()),
        }
    }
    out
}

/// Who a step is told to, beyond the moves of duty (which `blocks::moves`
/// finds): the member asked, the asker, the approvers; each with the text.
pub fn step_notices(swap: &Swap, roster: &Roster, approvers: &[Role]) -> Vec<(String, String)> {
    let Some(step) = swap.steps.last() else {
        return Vec::new();
    };
    let head = "【市北区执行指挥中心】";
    let label = swap.label();
    let what = swap.describe(roster);
    let by = roster.name_of(&step.by).unwrap_or(&step.by).to_string();
    let note = step
        .note
        .as_deref()
        .filter(|_| step.action != SwapAction::Ask)
        .map(|n| format!("（{n}）"))
        .unwrap_or_default();
    let to = |ids: &[&str], text: String| -> Vec<(String, String)> {
        let mut ids: Vec<&str> = ids.to_vec();
        ids.dedup();
        ids.into_iter()
            .map(|i| (i.to_string(), text.clone()))
            .collect()
    };
    match (step.action, swap.state) {
        (SwapAction::Ask, _) => to(
            &[&swap.with],
            format!("{head}{label} 请求：{what}。请在值班页面“值班”中接受或拒绝。"),
        ),
        (SwapAction::Accept, SwapState::Accepted) => {
            let mut ids: Vec<&str> = roster
                .members()
                .filter(|m| m.has_any(approvers))
                .map(|m| m.id.as_str())
                .collect();
            ids.push(&swap.by);
            to(
                &ids,
                format!("{head}{label} 已由 {by} 接受，待批准：{what}。"),
            )
        }
        (SwapAction::Decline, _) => to(
            &[&swap.by],
            format!("{head}{label} 被 {by} 拒绝{note}：{what}。"),
        ),
        (SwapAction::Reject, _) => to(
            &[&swap.by, &swap.with],
            format!("{head}{label} 未获批准（{by}）{note}：{what}。"),
        ),
        (SwapAction::Withdraw, _) => to(
            &[&swap.with],
            format!("{head}{label} 已由 {by} 撤回：{what}。"),
        ),
        (SwapAction::Void, _) => to(
            &[&swap.replace, &swap.with],
            format!("{head}{label} 已失效{note}：{what}。"),
        ),
        (SwapAction::Cancel, _) if swap.kind == SwapKind::Swap => to(
            &[&swap.replace, &swap.with],
            format!("{head}{label} 已由 {by} 取消{note}：{what}。"),
        ),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use jiff::civil::date;

    use super::*;
    use crate::roster::blocks::moves;
    use crate::roster::ics;

    fn sample() -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/roster.toml"),
        )
        .unwrap()
    }

    fn roster() -> Roster {
        Roster::parse(&sample(), "roster.toml").unwrap()
    }

    fn cal() -> Calendar {
        Calendar::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/holidays"))
            .unwrap()
    }

    /// Tuesday 1 December 2026, noon in Qingdao.
    fn now() -> Timestamp {
        "2026-12-01T04:00:00Z".parse().unwrap()
    }

    fn rules_on<'a>(r: &'a Roster, c: &'a Calendar, approval: bool) -> Rules<'a> {
        Rules {
            roster: r,
            calendar: c,
            offset: 0,
            now: now(),
            approval,
            approvers: &[Role::Director],
        }
    }

    /// The unit on duty in the period of `day`.
    fn unit_on(r: &Roster, c: &Calendar, day: Date) -> String {
        r.period_block(c, 0, day).unit.unwrap().id
    }

    /// A member with `role` of another unit than `not`.
    fn other(not: &str, role: &str) -> String {
        let n = if not == "unit-1" { "u2" } else { "u1" };
        format!("{n}-{role}")
    }

    #[test]
    fn a_swap_asked_accepted_and_approved_puts_the_taker_on_that_duty_only() {
        let (r, c) = (roster(), cal());
        let day = date(2026, 12, 8);
        let unit = unit_on(&r, &c, day);
        let asker = format!("{}-officer", unit.replace("unit-", "u"));
        let taker = other(&unit, "officer");
        let rules = rules_on(&r, &c, true);
        let s = rules
            .ask(&asker, &taker, day, Some("家中有事".into()), "api")
            .unwrap();
        assert_eq!((s.state, s.from, s.to), (SwapState::Asked, day, day));
        assert_eq!(step_notices(&s, &r, &[Role::Director])[0].0, taker);
        // Only the member asked accepts; then the director approves.
        let e = rules
            .act(&s, "m-chen", SwapAction::Accept, None, "api")
            .unwrap_err();
        assert_eq!(e.kind, RefusalKind::Forbidden);
        assert!(e.message.contains("was asked of"), "{e}");
        let mut s = rules
            .act(&s, &taker, SwapAction::Accept, None, "api")
            .unwrap();
        assert_eq!(s.state, SwapState::Accepted);
        let told: Vec<String> = step_notices(&s, &r, &[Role::Director])
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        assert_eq!(told, ["m-chen".to_string(), asker.clone()]);
        let e = rules
            .act(&s, &taker, SwapAction::Approve, None, "api")
            .unwrap_err();
        assert_eq!(e.kind, RefusalKind::Forbidden);
        assert!(
            e.message
                .contains("approving a swap is for 执行局长 (director)"),
            "{e}"
        );
        let e = rules
            .act(&s, &taker, SwapAction::Accept, None, "api")
            .unwrap_err();
        assert_eq!(e.kind, RefusalKind::Conflict);
        s = rules
            .act(&s, "m-chen", SwapAction::Approve, None, "api")
            .unwrap();
        assert_eq!(s.state, SwapState::InEffect);
        assert_eq!(s.steps.len(), 3);
        s.id = 7;
        let (after, left) = r.clone().with_dynamic(vec![s.as_override()]);
        assert!(left.is_empty());
        let b = after.period_block(&c, 0, day);
        let crew: Vec<&str> = b
            .unit
            .as_ref()
            .unwrap()
            .members
            .iter()
            .map(|m| m.id.as_str())
            .collect();
        assert!(
            crew.contains(&taker.as_str()) && !crew.contains(&asker.as_str()),
            "{crew:?}"
        );
        assert_eq!(b.swaps, [7]);
        assert!(b.overrides[0].contains("换班 #7"), "{:?}", b.overrides);
        // The day before and after are as planned.
        for d in [date(2026, 12, 7), date(2026, 12, 9)] {
            assert_eq!(after.period_block(&c, 0, d), r.period_block(&c, 0, d));
        }
        // Who moved: the asker lost that block, the taker gained it.
        let moved = moves(&r, &after, &c, 0, day, day, now());
        assert_eq!(moved.len(), 2, "{moved:?}");
        let lost = moved.iter().find(|m| m.member.id == asker).unwrap();
        assert_eq!((lost.lost.len(), lost.gained.len()), (1, 0));
        assert!(
            lost.text("换班 #7")
                .contains("不再值班：12月08日 17:30—12月09日 08:30"),
            "{}",
            lost.text("换班 #7")
        );
        let gained = moved.iter().find(|m| m.member.id == taker).unwrap();
        assert_eq!((gained.lost.len(), gained.gained.len()), (0, 1));
        // Without approval, acceptance puts it in force.
        let s = rules.ask(&asker, &taker, day, None, "api").unwrap();
        let s = super::Rules {
            approval: false,
            ..rules
        }
        .act(&s, &taker, SwapAction::Accept, None, "api")
        .unwrap();
        assert_eq!(s.state, SwapState::InEffect);
    }

    #[test]
    fn refusals_name_why() {
        let (r, c) = (roster(), cal());
        let rules = rules_on(&r, &c, true);
        let day = date(2026, 12, 8);
        let unit = unit_on(&r, &c, day);
        let u = unit.replace("unit-", "u");
        let police = r.period_block(&c, 0, day).police.unwrap().id;
        let other_police = ["p-sun", "p-zhou", "p-wu"]
            .into_iter()
            .find(|p| *p != police)
            .unwrap();
        let ask = |by: &str, with: &str, d: Date| rules.ask(by, with, d, None, "api").unwrap_err();
        // In the past: the period of 29 November ended on the 30th at 08:30.
        let e = ask(
            &format!("{u}-officer"),
            &other(&unit, "officer"),
            date(2026, 11, 29),
        );
        assert!(e.message.contains("2026-11-29 is in the past"), "{e}");
        assert_eq!(e.kind, RefusalKind::Invalid);
        // No duty that day.
        let e = ask(
            &format!("{u}-officer"),
            &other(&unit, "officer"),
            date(2026, 12, 9),
        );
        assert!(e.message.contains("has no duty on 2026-12-09"), "{e}");
        // A clerk does not ride as the officer; nobody but police takes the police place.
        let e = ask(&format!("{u}-officer"), &other(&unit, "clerk"), day);
        assert!(
            e.message.contains("as 执行员 (officer)")
                && e.message.contains("only a member who is may ride"),
            "{e}"
        );
        let e = ask(&police, &other(&unit, "officer"), day);
        assert!(
            e.message.contains("法警") && e.message.contains("is not police"),
            "{e}"
        );
        assert!(rules.ask(&police, other_police, day, None, "api").is_ok());
        // Someone on that duty already.
        let e = ask(&format!("{u}-officer"), &police, day);
        assert!(e.message.contains("on that duty already"), "{e}");
        let e = ask(&format!("{u}-officer"), "nobody", day);
        assert!(e.message.contains("\"nobody\" is not a member"), "{e}");
        // Days of another age are refused before anything is resolved.
        let e = ask(
            &format!("{u}-officer"),
            &other(&unit, "officer"),
            date(9999, 12, 31),
        );
        assert!(e.message.contains("more than 366 days ahead"), "{e}");
        let e = ask(
            &format!("{u}-officer"),
            &other(&unit, "officer"),
            date(-9999, 1, 1),
        );
        assert!(e.message.contains("is in the past"), "{e}");
        // An override by someone who is not an approver.
        let e = rules
            .put_in(
                &format!("{u}-officer"),
                "unit-1",
                "unit-3",
                day,
                day,
                None,
                "api",
            )
            .unwrap_err();
        assert_eq!(e.kind, RefusalKind::Forbidden);
        assert!(
            e.message
                .contains("putting in an override is for 执行局长 (director)"),
            "{e}"
        );
        let e = rules
            .put_in("m-chen", "unit-1", "u3-officer", day, day, None, "api")
            .unwrap_err();
        assert!(e.message.contains("both be units or both members"), "{e}");
        let e = rules
            .put_in(
                "m-chen",
                &unit,
                "unit-4",
                date(2026, 11, 20),
                day,
                None,
                "api",
            )
            .unwrap_err();
        assert!(e.message.contains("from 2026-11-20 is in the past"), "{e}");
    }

    #[test]
    fn an_override_by_the_director_replaces_a_unit_for_a_range_and_swaps_compose_in_order() {
        let (r, c) = (roster(), cal());
        let rules = rules_on(&r, &c, false);
        let (from, to) = (date(2026, 12, 7), date(2026, 12, 20));
        let mut o = rules
            .put_in(
                "m-chen",
                "unit-1",
                "unit-3",
                from,
                to,
                Some("一组外出培训".into()),
                "cli",
            )
            .unwrap();
        o.id = 1;
        assert_eq!(o.state, SwapState::InEffect);
        let (after, _) = r.clone().with_dynamic(vec![o.as_override()]);
        let mut seen = 0;
        for b in after.blocks(&c, 0, from, to) {
            let was = r.period_block(&c, 0, b.day).unit.unwrap().id;
            let unit = b.unit.unwrap().id;
            if was == "unit-1" {
                assert_eq!(unit, "unit-3", "{}", b.day);
                assert!(b.overrides[0].contains("调整 #1：一组外出培训"));
                seen += 1;
            } else {
                assert_eq!(unit, was);
            }
        }
        assert_eq!(seen, 3, "unit-1 holds 3 periods in 14 days");
        // Swaps in force apply in order, each to whoever holds the place by
        // then: a swap from the one who took a duty, and one handing it back.
        let day = date(2026, 12, 8);
        let unit = unit_on(&r, &c, day);
        let u = unit.replace("unit-", "u");
        let (a, b, x) = (
            format!("{u}-driver"),
            other(&unit, "driver"),
            "u5-driver".to_string(),
        );
        let swap = |r: &Roster, by: &str, with: &str, id: u64| {
            let rules = rules_on(r, &c, false);
            let s = rules.ask(by, with, day, None, "api").unwrap();
            let mut s = rules
                .act(&s, with, SwapAction::Accept, None, "api")
                .unwrap();
            s.id = id;
            s.as_override()
        };
        let first = swap(&r, &a, &b, 2);
        let (r1, _) = r.clone().with_dynamic(vec![first.clone()]);
        let second = swap(&r1, &b, &x, 3);
        let (r2, _) = r.clone().with_dynamic(vec![first.clone(), second.clone()]);
        let crew = |r: &Roster| -> Vec<String> {
            r.period_block(&c, 0, day)
                .unit
                .unwrap()
                .members
                .into_iter()
                .map(|m| m.id)
                .collect()
        };
        assert!(
            crew(&r2).contains(&x) && !crew(&r2).contains(&b),
            "{:?}",
            crew(&r2)
        );
        assert_eq!(r2.period_block(&c, 0, day).swaps, [2, 3]);
        let back = swap(&r1, &b, &a, 4);
        let (r3, _) = r.clone().with_dynamic(vec![first, back]);
        assert!(crew(&r3).contains(&a), "{:?}", crew(&r3));
    }

    #[test]
    fn a_reload_finds_the_swaps_that_no_longer_apply() {
        let (r, c) = (roster(), cal());
        let day = date(2026, 12, 8);
        let unit = unit_on(&r, &c, day);
        let u = unit.replace("unit-", "u");
        let rules = rules_on(&r, &c, false);
        let taker = other(&unit, "clerk");
        let mut s = rules
            .ask(&format!("{u}-clerk"), &taker, day, None, "api")
            .unwrap();
        s = rules
            .act(&s, &taker, SwapAction::Accept, None, "api")
            .unwrap();
        s.id = 5;
        assert!(inapplicable(&r, &c, 0, now(), std::slice::from_ref(&s)).is_empty());
        // The taker left the roster: void, naming them.
        let gone = Roster::parse(
            &sample()
                .replace(&format!("id = \"{taker}\""), "id = \"someone-else\"")
                .replace(&format!("\"{taker}\", "), ""),
            "roster.toml",
        )
        .unwrap();
        let found = inapplicable(&gone, &c, 0, now(), std::slice::from_ref(&s));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .1
                .contains(&format!("{taker} is not in the roster any more")),
            "{found:?}"
        );
        // The rotation moved (the epoch a day on): the asker holds no duty that day.
        let moved = Roster::parse(
            &sample().replace("epoch = \"2026-01-01\"", "epoch = \"2026-01-02\""),
            "roster.toml",
        )
        .unwrap();
        let found = inapplicable(&moved, &c, 0, now(), &[s]);
        assert!(
            found[0].1.contains("has no duty on 2026-12-08"),
            "{found:?}"
        );
    }

    #[test]
    fn the_calendar_feed_lists_a_members_blocks_with_the_swap_in_it() {
        let (r, c) = (roster(), cal());
        let day = date(2026, 12, 8);
        let unit = unit_on(&r, &c, day);
        let u = unit.replace("unit-", "u");
        let taker = other(&unit, "officer");
        let rules = rules_on(&r, &c, false);
        let mut s = rules
            .ask(&format!("{u}-officer"), &taker, day, None, "api")
            .unwrap();
        s = rules
            .act(&s, &taker, SwapAction::Accept, None, "api")
            .unwrap();
        s.id = 9;
        let (after, _) = r.clone().with_dynamic(vec![s.as_override()]);
        let blocks = after.blocks(&c, 0, date(2026, 12, 1), date(2026, 12, 30));
        let m = after.member(&taker).unwrap().clone();
        let text = ics::calendar(&blocks, ics::Feed::Member(&m), now());
        assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'), "bare LF");
        for l in text.split("\r\n") {
            assert!(l.len() <= 75, "{l:?}");
        }
        let unfolded = text.replace("\r\n ", "");
        let held = blocks
            .iter()
            .filter(|b| b.post_of(&taker).is_some())
            .count();
        assert_eq!(unfolded.matches("BEGIN:VEVENT").count(), held);
        assert!(
            unfolded.contains("DTSTART:20261208T093000Z\r\nDTEND:20261209T003000Z\r\n"),
            "{unfolded}"
        );
        let name = after.period_block(&c, 0, day).unit.unwrap().name;
        assert!(
            unfolded.contains(&format!("SUMMARY:值班：{name}")),
            "{unfolded}"
        );
        assert!(unfolded.contains("车辆 鲁B·J010"), "{unfolded}");
        assert!(unfolded.contains(&format!("UID:20261208-period-{taker}@hotline.duty")));
        // Everyone's has every block of the range.
        let all = ics::calendar(&blocks, ics::Feed::Everyone, now()).replace("\r\n ", "");
        assert_eq!(all.matches("BEGIN:VEVENT").count(), blocks.len());
    }

    #[test]
    fn reminders_tell_each_member_of_tomorrows_block_their_unit_and_partners() {
        let (r, c) = (roster(), cal());
        let day = date(2026, 12, 8);
        let b = r.period_block(&c, 0, day);
        let unit = b.unit.clone().unwrap();
        let sent = crate::roster::remind::reminders(&r, &c, 0, day);
        assert_eq!(
            sent.len(),
            4,
            "three of the unit and the court police officer"
        );
        let (m, text) = &sent
            .iter()
            .find(|(m, _)| m.id == unit.members[0].id)
            .unwrap();
        assert!(
            text.contains("值班提醒（2026-12-08）：12月08日 17:30—12月09日 08:30"),
            "{text}"
        );
        assert!(
            text.contains(&unit.name) && text.contains(&unit.vehicle),
            "{text}"
        );
        assert!(
            text.contains(&unit.members[1].name) && !text.contains(&format!("同班：{}", m.name)),
            "{text}"
        );
        assert!(
            text.contains(&format!("法警：{}", b.police.unwrap().name)),
            "{text}"
        );
    }
}
