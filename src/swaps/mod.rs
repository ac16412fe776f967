//! Swaps and overrides of the duty, the notices they owe and the evening
//! reminders (issue 33), for the API, the CLI and the gateway's tasks.
//!
//! The rules are the domain's (`crate::roster::swaps`: who may do what,
//! the role rule, refusals naming why); the records the store's
//! (`crate::tickets::swaps`: each change compare-and-set with its entry in
//! the `swaps:log` stream). In force, a swap is a dynamic override of the
//! roster (`crate::live`: the file's plan with the approved swaps and the
//! director's overrides applied after the file's own), so everything that
//! resolves the duty follows it with nothing of its own.
//!
//! - [`Swaps::ask`], [`Swaps::act`], [`Swaps::put_in`]: check against the
//!   roster in force, write, and log the texts owed: the step's (the member
//!   asked, the approvers, the asker) and the moves of duty
//!   (`blocks::moves`: who loses a block, who gains one).
//! - `sync` ([`Swaps::sync`], the task `swaps`): every gateway reads the log;
//!   when it moved, puts the swaps in force into its roster, and sends each
//!   entry's texts through the members' text channels once for all gateways
//!   (a claim in the store). The gateway that made a change syncs at once,
//!   the others within [`SYNC_EVERY`]; the CLI writes and leaves the
//!   sending to the gateways.
//! - [`Swaps::after_reload`]: a reload keeps the swaps that still apply,
//!   voids those that no longer do (telling the two members), and tells
//!   whoever's duty the new file moved.
//! - `remind`: the evening-before reminders (the task `reminders`, and on
//!   demand for an explicit day).

pub mod remind;
mod sync;

use std::sync::Arc;

use jiff::civil::Date;
use jiff::Timestamp;
use serde::Deserialize;

use crate::live::{Live, Loaded};
use crate::paging::channels::Channels;
use crate::roster::blocks::moves;
use crate::roster::swaps::{
    inapplicable, step_notices, Refusal, Rules, Swap, SwapAction, SwapKind, SwapState, SwapStep,
};
use crate::roster::{Member, Override, Role, Roster};
use crate::tickets::swaps::{DutyNote, Saved};
use crate::tickets::{Store, StoreError};
use crate::watch::DailyAt;

pub use sync::SYNC_EVERY;

/// `[swaps]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SwapSettings {
    /// An accepted swap waits for an approver; `false`: the member asked
    /// accepting puts it in force.
    pub approval: bool,
    /// Who approves swaps and puts in overrides (roles of the board: the
    /// director, the deputies, the chief commander, the desk).
    pub approvers: Vec<Role>,
    /// Each day at this time (Asia/Shanghai, `HH:MM`) everyone on duty the
    /// next day is reminded; `off`: never.
    pub remind_at: DailyAt,
    /// The days the calendar feed covers from today, and how far ahead a
    /// reload's moves of duty are told.
    pub calendar_days: u32,
}

impl Default for SwapSettings {
    fn default() -> Self {
        SwapSettings {
            approval: true,
            approvers: vec![Role::Director],
            remind_at: DailyAt(Some(jiff::civil::Time::constant(18, 0, 0, 0))),
            calendar_days: 60,
        }
    }
}

impl SwapSettings {
    /// Problems with the values, each naming its key.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.approvers.is_empty() {
            out.push((
                "swaps.approvers",
                "must name at least one role (e.g. [\"director\"])".to_string(),
            ));
        }
        for r in &self.approvers {
            if !Role::BOARD.contains(r) {
                out.push((
                    "swaps.approvers",
                    format!(
                        "{:?} may not approve: only director, deputy, chief_commander or desk",
                        r.as_str()
                    ),
                ));
            }
        }
        if !(1..=366).contains(&self.calendar_days) {
            out.push((
                "swaps.calendar_days",
                format!("{} is not between 1 and 366 days", self.calendar_days),
            ));
        }
        out
    }
}

/// Why a swap was not changed.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The rules refused it, naming why.
    #[error("{0}")]
    Refused(Refusal),
    #[error("there is no swap #{0}")]
    NotFound(u64),
    #[error("swap #{id} changed meanwhile: it is {state} now")]
    Changed { id: u64, state: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Swaps and overrides, on one gateway or in the CLI.
pub struct Swaps {
    pub store: Store,
    pub live: Arc<Live>,
    pub settings: SwapSettings,
    /// The members' text channels; none in the CLI (the gateways send
    /// what the log owes).
    pub channels: Option<Channels>,
    /// What this process has read of the log.
    seen: tokio::sync::Mutex<Option<String>>,
}

/// Days ago a swap's last block may have ended and it still be read
/// (tonight's duty began yesterday evening).
const KEEP_DAYS: i64 = 2;

impl Swaps {
    pub fn new(
        store: Store,
        live: Arc<Live>,
        settings: SwapSettings,
        channels: Option<Channels>,
    ) -> Swaps {
        Swaps {
            store,
            live,
            settings,
            channels,
            seen: tokio::sync::Mutex::new(None),
        }
    }

    /// The swaps in force, in the order they came into force.
    async fn in_force(&self, now: Timestamp) -> Result<Vec<Swap>, StoreError> {
        in_force(&self.store, now).await
    }

    /// Puts the swaps in force in the store into this process's roster;
    /// those the roster cannot apply (a member gone, before a reload
    /// voids them) are left out, logged.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        put_in_force(&self.store, &self.live).await
    }

    /// The rules against the roster in force now.
    fn rules<'a>(&'a self, cfg: &'a Loaded, offset: i64, now: Timestamp) -> Rules<'a> {
        Rules {
            roster: &cfg.roster,
            calendar: &cfg.calendar,
            offset,
            now,
            approval: self.settings.approval,
            approvers: &self.settings.approvers,
        }
    }

    /// `by` asks `with` to take their duty of `day`.
    pub async fn ask(
        &self,
        by: &str,
        with: &str,
        day: Date,
        note: Option<String>,
        via: &str,
    ) -> Result<Swap, SwapError> {
        self.sync().await?;
        let (cfg, offset, now) = self.now().await?;
        let mut swap = self
            .rules(&cfg, offset, now)
            .ask(by, with, day, note, via)
            .map_err(SwapError::Refused)?;
        swap.id = self.store.next_swap_id().await?;
        let notices = step_notices(&swap, &cfg.roster, &self.settings.approvers);
        self.save(&swap, None, notices).await?;
        Ok(swap)
    }

    /// An approver's override: `replace` replaced by `with` from `from` to
    /// `to`, in force at once.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_in(
        &self,
        by: &str,
        replace: &str,
        with: &str,
        from: Date,
        to: Date,
        reason: Option<String>,
        via: &str,
    ) -> Result<Swap, SwapError> {
        self.sync().await?;
        let (cfg, offset, now) = self.now().await?;
        let mut swap = self
            .rules(&cfg, offset, now)
            .put_in(by, replace, with, from, to, reason, via)
            .map_err(SwapError::Refused)?;
        swap.id = self.store.next_swap_id().await?;
        let notices = self.moved(&cfg, offset, now, &swap, true);
        self.save(&swap, None, notices).await?;
        Ok(swap)
    }

    /// `by` does `action` to swap `id`.
    pub async fn act(
        &self,
        id: u64,
        by: &str,
        action: SwapAction,
        note: Option<String>,
        via: &str,
    ) -> Result<Swap, SwapError> {
        self.sync().await?;
        let swap = self.store.swap(id).await?.ok_or(SwapError::NotFound(id))?;
        let (cfg, offset, now) = self.now().await?;
        let next = self
            .rules(&cfg, offset, now)
            .act(&swap, by, action, note, via)
            .map_err(SwapError::Refused)?;
        let mut notices = step_notices(&next, &cfg.roster, &self.settings.approvers);
        let was = swap.state == SwapState::InEffect;
        let is = next.state == SwapState::InEffect;
        if was != is {
            notices.extend(self.moved(&cfg, offset, now, &next, is));
        }
        self.save(&next, Some(swap.state), notices).await?;
        Ok(next)
    }

    /// The roster in force, the rotation's offset and the time.
    async fn now(&self) -> Result<(Arc<Loaded>, i64, Timestamp), StoreError> {
        let offset = self.store.rotation_offset().await?;
        Ok((self.live.get(), offset, Timestamp::now()))
    }

    /// The texts owed to whoever's duty `swap` moves as it comes into
    /// force (`on`) or leaves it.
    fn moved(
        &self,
        cfg: &Loaded,
        offset: i64,
        now: Timestamp,
        swap: &Swap,
        on: bool,
    ) -> Vec<(String, String)> {
        let mut list: Vec<Override> = cfg
            .roster
            .dynamic()
            .iter()
            .filter(|o| o.swap != Some(swap.id))
            .cloned()
            .collect();
        if on {
            list.push(swap.as_override());
        }
        let files = self.live.files();
        let (after, _) = files.roster.clone().with_dynamic(list);
        let by = swap
            .steps
            .last()
            .map(|s| cfg.roster.name_of(&s.by).unwrap_or(&s.by).to_string())
            .unwrap_or_default();
        let cause = match (swap.state, swap.kind) {
            (SwapState::InEffect, SwapKind::Override) => format!("{}，{by}", swap.label()),
            (SwapState::InEffect, SwapKind::Swap) if self.settings.approval => {
                format!("{}，{by} 批准", swap.label())
            }
            (SwapState::InEffect, _) => swap.label(),
            (SwapState::Void, _) => format!("{} 已失效", swap.label()),
            _ => format!("{} 已取消", swap.label()),
        };
        moves(
            &cfg.roster,
            &after,
            &cfg.calendar,
            offset,
            swap.from,
            swap.to,
            now,
        )
        .into_iter()
        .map(|m| (m.member.id.clone(), m.text(&cause)))
        .collect()
    }

    /// Writes a swap with its log entry (the texts it owes), then syncs:
    /// this gateway's roster follows at once and the texts go out.
    async fn save(
        &self,
        swap: &Swap,
        expected: Option<SwapState>,
        notices: Vec<(String, String)>,
    ) -> Result<(), SwapError> {
        let step = swap.steps.last().cloned().unwrap_or(SwapStep {
            at: Timestamp::now(),
            by: String::new(),
            action: SwapAction::Ask,
            via: String::new(),
            note: None,
        });
        let note = DutyNote {
            action: step.action.as_str().into(),
            by: step.by.clone(),
            at: step.at.to_string(),
            notices,
            claim: format!("swap:{}:{}", swap.id, swap.steps.len()),
        };
        match self.store.save_swap(swap, expected, &note).await? {
            Saved::Done => {}
            Saved::Changed(state) => {
                return Err(SwapError::Changed {
                    id: swap.id,
                    state: state.map_or("gone".into(), |s| s.to_string()),
                })
            }
        }
        tracing::info!(swap = swap.id, action = step.action.as_str(), by = %step.by, via = %step.via, state = %swap.state, "duty swap");
        if let Err(e) = self.sync().await {
            tracing::warn!(error = %e, "a swap saved, the roster not yet refreshed: the next sync does");
        }
        Ok(())
    }

    /// One swap, if `member` may see it (one of its members, or a board role).
    pub async fn one(&self, id: u64, member: &Member) -> Result<Option<Swap>, StoreError> {
        Ok(self
            .store
            .swap(id)
            .await?
            .filter(|s| member.has_any(&Role::BOARD) || concerns(s, &member.id)))
    }

    /// The swaps of the last days and ahead that `member` may see: the
    /// board's roles every one, others their own (asked, asking, replaced).
    pub async fn visible(&self, member: &Member) -> Result<Vec<Swap>, StoreError> {
        let since = Timestamp::now().as_millisecond() - KEEP_DAYS * 86_400_000;
        Ok(self
            .store
            .swaps_since(since)
            .await?
            .into_iter()
            .filter(|s| member.has_any(&Role::BOARD) || concerns(s, &member.id))
            .collect())
    }

    /// After a reload (`before`: the set in force before it): the swaps in
    /// force that no longer apply are voided (the two members told), the
    /// rest stay in force, and whoever's duty the new files moved is told.
    /// The reload's answer, a line each.
    pub async fn after_reload(&self, before: Arc<Loaded>) -> String {
        match self.reloaded(before).await {
            Ok(text) => text,
            Err(e) => format!(
                "swaps: not checked against the new roster ({e}): they stay as they are until the next reload"
            ),
        }
    }

    async fn reloaded(&self, before: Arc<Loaded>) -> Result<String, StoreError> {
        let now = Timestamp::now();
        let offset = self.store.rotation_offset().await?;
        let files = self.live.files();
        let swaps = self.in_force(now).await?;
        let gone = inapplicable(&files.roster, &files.calendar, offset, now, &swaps);
        let mut lines = Vec::new();
        for (id, why) in &gone {
            let Some(s) = swaps.iter().find(|s| s.id == *id) else {
                continue;
            };
            let mut next = s.clone();
            next.state = SwapState::Void;
            next.steps.push(SwapStep {
                at: now,
                by: "reload".into(),
                action: SwapAction::Void,
                via: "reload".into(),
                note: Some(why.clone()),
            });
            // Told: those of the two still in the roster.
            let notices: Vec<(String, String)> =
                step_notices(&next, &before.roster, &self.settings.approvers)
                    .into_iter()
                    .filter(|(m, _)| files.roster.member(m).is_some())
                    .collect();
            let told: Vec<&str> = notices.iter().map(|(m, _)| m.as_str()).collect();
            let text = format!(
                "{} ({}) no longer applies: {why}; void, told: {}",
                s.label(),
                s.describe(&before.roster),
                match told.is_empty() {
                    true => "nobody (neither is in the roster)".to_string(),
                    false => told.join(", "),
                }
            );
            match self.save(&next, Some(SwapState::InEffect), notices).await {
                Ok(()) | Err(SwapError::Changed { .. }) => lines.push(text),
                Err(SwapError::Store(e)) => return Err(e),
                Err(e) => lines.push(format!("{}: {e}", s.label())),
            }
        }
        self.refresh().await?;
        let kept = swaps.len() - gone.len();
        // Whose duty moved, from the set before to the one now in force.
        let after = self.live.get();
        let today = crate::court_time::court_day(now);
        let to = today + jiff::Span::new().days(i64::from(self.settings.calendar_days));
        let moved = moves(
            &before.roster,
            &after.roster,
            &after.calendar,
            offset,
            today.yesterday().unwrap_or(today),
            to,
            now,
        );
        // Those a void told already are told of the moves too: the void
        // says why, the move what.
        let notices: Vec<(String, String)> = moved
            .iter()
            .map(|m| (m.member.id.clone(), m.text("值班表更新")))
            .collect();
        if !notices.is_empty() {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(serde_json::to_vec(&notices).unwrap_or_default());
            self.store
                .note_duty(&DutyNote {
                    action: "reload".into(),
                    by: "reload".into(),
                    at: now.to_string(),
                    notices,
                    // Gateways reloading the same files owe the same texts: once.
                    claim: format!("reload:{}", crate::hex::encode(&digest[..16])),
                })
                .await?;
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %e, "the reload's notices wait for the next sync");
            }
        }
        lines.push(format!(
            "swaps: {kept} in force kept, {} void; duty moved for {} member(s) in the next {} days{}",
            gone.len(),
            moved.len(),
            self.settings.calendar_days,
            match moved.is_empty() {
                true => String::new(),
                false => format!(
                    " (told: {})",
                    moved
                        .iter()
                        .map(|m| m.member.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        ));
        Ok(lines.join("\n"))
    }
}

impl Swaps {
    /// The calendar feed (iCalendar) of `member`'s duty blocks, or with
    /// `everyone` of every block, from the block in progress for
    /// `calendar_days` (swaps in force included).
    pub async fn feed(&self, member: &Member, everyone: bool) -> Result<String, StoreError> {
        use crate::roster::ics;
        let (cfg, offset, now) = self.now().await?;
        let today = crate::court_time::court_day(now);
        let from = cfg
            .roster
            .period_at(&cfg.calendar, now)
            .map_or(today, |p| p.day.min(today));
        let to = today + jiff::Span::new().days(i64::from(self.settings.calendar_days) - 1);
        let blocks = cfg.roster.blocks(&cfg.calendar, offset, from, to);
        let feed = match everyone {
            true => ics::Feed::Everyone,
            false => ics::Feed::Member(member),
        };
        Ok(ics::calendar(&blocks, feed, now))
    }

    /// `member`'s duty blocks not over yet in the next `calendar_days`,
    /// and who could take each (the members the role rule may let in), for
    /// the mobile page's swap form.
    pub async fn duties_of(&self, member: &Member) -> Result<serde_json::Value, StoreError> {
        let (cfg, offset, now) = self.now().await?;
        let today = crate::court_time::court_day(now);
        let to = today + jiff::Span::new().days(i64::from(self.settings.calendar_days) - 1);
        let from = today.yesterday().unwrap_or(today);
        let duties: Vec<serde_json::Value> = cfg
            .roster
            .blocks(&cfg.calendar, offset, from, to)
            .into_iter()
            .filter(|b| b.end > now && b.post_of(&member.id).is_some())
            .map(|b| {
                serde_json::json!({
                    "day": b.day, "kind": b.kind, "start": b.start, "end": b.end,
                    "post": b.post_words(&member.id),
                })
            })
            .collect();
        let duty_roles: Vec<Role> = crate::roster::blocks::CREW
            .into_iter()
            .chain([Role::Police])
            .filter(|r| member.has(*r))
            .collect();
        let candidates: Vec<serde_json::Value> = cfg
            .roster
            .members()
            .filter(|m| m.id != member.id && (duty_roles.is_empty() || m.has_any(&duty_roles)))
            .map(|m| serde_json::json!({"id": m.id, "name": m.name}))
            .collect();
        Ok(serde_json::json!({"duties": duties, "candidates": candidates}))
    }
}

/// Whether `swap` is `member`'s: asked, asking or replaced.
fn concerns(swap: &Swap, member: &str) -> bool {
    swap.by == member || swap.replace == member || swap.with == member
}

/// The swaps in force in the store at `now`, in the order they came into
/// force (each when its last step put it there).
async fn in_force(store: &Store, now: Timestamp) -> Result<Vec<Swap>, StoreError> {
    let since = now.as_millisecond() - KEEP_DAYS * 86_400_000;
    let mut list: Vec<Swap> = store
        .swaps_since(since)
        .await?
        .into_iter()
        .filter(|s| s.state == SwapState::InEffect)
        .collect();
    list.sort_by_key(|s| (s.steps.last().map(|st| st.at), s.id));
    Ok(list)
}

/// Puts the swaps in force in the store into `live`'s roster (at start,
/// and whenever the log moved); those the roster cannot apply (a member
/// gone, before a reload voids them) are left out, logged.
pub async fn put_in_force(store: &Store, live: &Live) -> Result<(), StoreError> {
    let list: Vec<Override> = in_force(store, Timestamp::now())
        .await?
        .iter()
        .map(Swap::as_override)
        .collect();
    for (o, why) in live.set_dynamic(list) {
        tracing::warn!(swap = ?o.swap, replace = %o.replace, with = %o.with, "a swap in force is left out: {why}");
    }
    Ok(())
}

/// The roster in force for a process that does not run the gateway (the
/// CLI): the file's plan with the swaps in force in the store.
pub async fn roster_in_force(store: &Store, files: Roster) -> Result<Roster, StoreError> {
    let list = in_force(store, Timestamp::now()).await?;
    Ok(files
        .with_dynamic(list.iter().map(Swap::as_override).collect())
        .0)
}
