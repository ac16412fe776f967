//! The escalation scheduler. Due steps live in Redis (the store's
//! schedule, `tickets::duty`: ticket numbers by due time, each one's
//! opening time and progress), not in task memory: a restart resumes them, and several
//! gateways on one Redis share the work. A due ticket is claimed
//! atomically (its score moved a lease into the future) before anything is
//! sent, so each step fires once; a gateway that dies mid-step leaves the
//! lease to expire and another takes the step over.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::channels::{Attempt, Channels, Page};
use crate::escalation::{evaluate, Decision, Fire, Policy, Progress};
use crate::live::Loaded;
use crate::roster::{OnDuty, Roster};
use crate::tickets::model::Change;
use crate::tickets::model::{Index, State};
use crate::tickets::{Store, StoreError, Ticket};

/// How often the scheduler looks for due steps.
const TICK: Duration = Duration::from_millis(50);

/// What a step leaves for the next one.
pub struct Save {
    progress: String,
    next_ms: Option<i64>,
}

impl Save {
    fn new(progress: &Progress, next_ms: Option<i64>) -> Save {
        Save {
            progress: serde_json::to_string(progress).expect("progress serialises"),
            next_ms,
        }
    }
}

pub struct Paging {
    pub metrics: Arc<crate::metrics::Metrics>,
    pub store: Store,
    /// The roster, calendars and policies in force (a step takes them as
    /// they are when it starts).
    pub live: Arc<crate::live::Live>,
    pub channels: Channels,
    pub lease: Duration,
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

impl Paging {
    /// Runs until `stop` (steps in flight finish: their pages are on their
    /// way).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let lease = self.lease.as_millis() as i64;
        crate::tickets::duty::run_claimed(
            "paging",
            TICK,
            stop,
            || self.store.claim_due(now_ms(), lease, 64),
            |number: String| {
                let me = self.clone();
                async move {
                    if let Err(e) = me.fire(&number).await {
                        tracing::error!(ticket = %number, error = %e, "paging step failed; retried after the lease");
                    }
                }
            },
        )
        .await
    }

    /// One claimed ticket, its lease kept fresh while the step runs (a
    /// paging call can take a minute).
    pub async fn fire(&self, number: &str) -> Result<(), StoreError> {
        let (store, lease, n) = (self.store.clone(), self.lease, number.to_string());
        let keepalive = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = now_ms() + lease.as_millis() as i64;
                let _ = store.extend_lease(&n, until).await;
            }
        });
        let r = self.fire_step(number).await;
        keepalive.abort();
        let _ = keepalive.await;
        let Some(save) = r? else { return Ok(()) };
        // Progress and the next due time, together.
        self.store
            .save_paging(number, &save.progress, save.next_ms)
            .await
    }

    /// Evaluates the policy, pages, records, reschedules.
    async fn fire_step(&self, number: &str) -> Result<Option<Save>, StoreError> {
        let t = self.store.get(number).await?;
        let (opened, progress) = self.store.paging_state(number).await?;
        let cfg = self.live.get();
        let opened = opened.unwrap_or_else(now_ms);
        let mut progress: Progress = progress
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default();
        if t.state.is_final() {
            return Ok(Some(Save::new(&progress, None)));
        }
        let policy = cfg.policies.for_category(t.register.intake.category);
        let now = Timestamp::now();
        if let Some(next) = self.deferred(number, policy, &cfg, now).await? {
            return Ok(Some(Save::new(&progress, Some(next.as_millisecond()))));
        }
        let decision = decide(policy, &mut progress, &t, now, opened);
        let offset = self.store.rotation_offset().await.unwrap_or(0);
        let duty = cfg.roster.resolve(
            &cfg.calendar,
            offset,
            now,
            t.register.intake.case_number.as_deref(),
        );
        for step in decision.skipped {
            self.note(
                number,
                "page_step_skipped",
                serde_json::json!({"step": step, "why": "dispatched already"}),
            )
            .await?;
        }
        let mut pass_now = false;
        for f in &decision.fire {
            if self.page_fired(number, &t, f, &duty, &cfg.roster).await? {
                // Key 2: the next step at once.
                progress.pass = true;
                pass_now = true;
            }
        }
        let next_ms = if pass_now {
            Some(now_ms())
        } else {
            decision.next.map(|next| opened + next.as_millis() as i64)
        };
        Ok(Some(Save::new(&progress, next_ms)))
    }

    /// A policy that waits for working hours, outside them: the next
    /// working start, noted on the timeline; `None` to page now.
    async fn deferred(
        &self,
        number: &str,
        policy: &Policy,
        cfg: &Loaded,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        if !policy.defer_to_working_hours || cfg.roster.period_at(&cfg.calendar, now).is_none() {
            return Ok(None);
        }
        let next = cfg.roster.next_working_start(&cfg.calendar, now);
        self.note(
            number,
            "page_deferred",
            serde_json::json!({"until": next.to_string()}),
        )
        .await?;
        Ok(Some(next))
    }

    /// One step the policy fired: the breach it marks, then a page to each
    /// member its targets name, who may then open the ticket; each attempt
    /// on the timeline. `true` when a member pressed 2.
    async fn page_fired(
        &self,
        number: &str,
        t: &Ticket,
        f: &Fire,
        duty: &OnDuty,
        roster: &Roster,
    ) -> Result<bool, StoreError> {
        let members = crate::escalation::members_for(duty, &f.targets, roster);
        crate::metrics::Metrics::inc(&self.metrics.escalation_steps);
        if f.breach {
            self.record_breach(number).await?;
        }
        if members.is_empty() {
            self.note(
                number,
                "page_nobody",
                serde_json::json!({"step": f.step, "targets": format!("{:?}", f.targets)}),
            )
            .await?;
            return Ok(false);
        }
        let page = page_of(number, t, f);
        // Whoever is paged may open the ticket from the page at once.
        let indexes: Vec<String> = members
            .iter()
            .flat_map(|m| indexes_of(duty, &m.id))
            .collect();
        self.store.add_to_indexes(number, &indexes).await?;
        let sends = members.iter().map(|m| self.channels.page(m, &page));
        let results: Vec<Attempt> = futures::future::join_all(sends)
            .await
            .into_iter()
            .flatten()
            .collect();
        let passed = results.iter().any(|a| a.passed);
        for a in &results {
            self.metrics.page(a.channel, a.ok);
        }
        self.acknowledged(number, &results).await?;
        self.record_attempts(number, f, duty, results).await?;
        Ok(passed)
    }

    /// The five minutes passed without a dispatch (第二十三条): on the
    /// register and the timeline.
    async fn record_breach(&self, number: &str) -> Result<(), StoreError> {
        crate::metrics::Metrics::inc(&self.metrics.breaches);
        let mut c = Change::new("gateway", "breach");
        c.details =
            serde_json::json!({"rule": "第二十三条", "what": "no dispatch within five minutes"});
        self.store
            .change(number, &c, |r| r.dispatch.five_minute_breach = true)
            .await?;
        Ok(())
    }

    /// A key 1 on a paging call is 签收 (only a key counts): the first
    /// member who pressed it acknowledges the ticket, unless it has moved
    /// on.
    async fn acknowledged(&self, number: &str, results: &[Attempt]) -> Result<(), StoreError> {
        let Some(a) = results.iter().find(|a| a.acknowledged) else {
            return Ok(());
        };
        crate::metrics::Metrics::inc(&self.metrics.pages_acknowledged);
        let ack = crate::tickets::actions::acknowledge(
            &a.member,
            None,
            Timestamp::now(),
            serde_json::json!({"via": "paging call"}),
        );
        match self.store.act(number, &ack).await {
            Ok(_) | Err(StoreError::Illegal { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Each attempt in the log and on the timeline, where the member it
    /// went to sees it.
    async fn record_attempts(
        &self,
        number: &str,
        f: &Fire,
        duty: &OnDuty,
        results: Vec<Attempt>,
    ) -> Result<(), StoreError> {
        for attempt in results {
            tracing::info!(ticket = %number, member = %attempt.member, channel = attempt.channel, outcome = %attempt.outcome, latency_ms = attempt.latency_ms, "page");
            let mut c = Change::new("gateway", "page");
            c.details = serde_json::json!({
                "step": f.step, "repeat": f.repeat, "member": attempt.member,
                "channel": attempt.channel, "ok": attempt.ok,
                "outcome": attempt.outcome, "latency_ms": attempt.latency_ms,
                "recording": attempt.recording,
            });
            c.index = indexes_of(duty, &attempt.member);
            self.store.change(number, &c, |_| {}).await?;
        }
        Ok(())
    }

    async fn note(
        &self,
        number: &str,
        action: &str,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut c = Change::new("gateway", action);
        c.details = details;
        self.store.change(number, &c, |_| {}).await.map(|_| ())
    }
}

/// What the policy says at the time since the ticket opened, given how far
/// the officers have got with it.
fn decide(
    policy: &Policy,
    progress: &mut Progress,
    t: &Ticket,
    now: Timestamp,
    opened: i64,
) -> Decision {
    let acked = matches!(
        t.state,
        State::Acknowledged | State::Dispatched | State::OnScene
    );
    let dispatched = matches!(t.state, State::Dispatched | State::OnScene);
    let elapsed = Duration::from_millis((now.as_millisecond() - opened).max(0) as u64);
    evaluate(policy, progress, elapsed, acked, dispatched)
}

/// The page a fired step sends: the ticket, never the caller.
fn page_of(number: &str, t: &Ticket, f: &Fire) -> Page {
    Page {
        ticket: number.to_string(),
        category: t
            .register
            .intake
            .category
            .map_or("lead", |c| c.as_str())
            .to_string(),
        urgent: t.register.intake.urgent,
        step: f.step,
        repeat: f.repeat,
        note: f.note.clone(),
        partner: t.register.intake.partner.clone(),
    }
}

/// The indexes a paged member sees the ticket through: their own, and
/// their unit's when they page as a member of the duty unit.
fn indexes_of(duty: &OnDuty, member: &str) -> Vec<String> {
    let unit = duty
        .unit
        .as_ref()
        .filter(|u| u.members.iter().any(|m| m.id == member));
    std::iter::once(Index::Member(member.to_string()))
        .chain(unit.map(|u| Index::Unit(u.id.clone())))
        .map(|i| i.name())
        .collect()
}
