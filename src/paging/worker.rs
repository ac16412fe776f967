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

use super::channels::{Channels, Page};
use crate::escalation::{evaluate, Progress};
use crate::tickets::model::{Index, State};
use crate::tickets::store::Change;
use crate::tickets::Store;

/// How often the scheduler looks for due steps.
const TICK: Duration = Duration::from_millis(50);

/// What a step leaves for the next one.
pub struct Save {
    progress: String,
    next_ms: Option<i64>,
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
    /// Runs until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(TICK) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            }
            let claimed = match self
                .store
                .claim_due(now_ms(), self.lease.as_millis() as i64, 64)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "paging: cannot reach redis");
                    continue;
                }
            };
            for number in claimed {
                let me = self.clone();
                tasks.spawn(async move {
                    if let Err(e) = me.fire(&number).await {
                        tracing::error!(ticket = %number, error = %e, "paging step failed; retried after the lease");
                    }
                });
            }
        }
        // Steps in flight finish (their pages are on their way).
        while tasks.join_next().await.is_some() {}
    }

    /// One claimed ticket, its lease kept fresh while the step runs (a
    /// paging call can take a minute).
    pub async fn fire(&self, number: &str) -> Result<(), crate::tickets::StoreError> {
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
    async fn fire_step(&self, number: &str) -> Result<Option<Save>, crate::tickets::StoreError> {
        let t = self.store.get(number).await?;
        let (opened, progress) = self.store.paging_state(number).await?;
        let cfg = self.live.get();
        let opened = opened.unwrap_or_else(now_ms);
        let mut progress: Progress = progress
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default();
        if t.state.is_final() {
            return Ok(Some(Save {
                progress: serde_json::to_string(&progress).expect("progress serialises"),
                next_ms: None,
            }));
        }
        let policy = cfg.policies.for_category(t.register.intake.category);
        let now = Timestamp::now();
        if policy.defer_to_working_hours && cfg.roster.period_at(&cfg.calendar, now).is_some() {
            let next = cfg.roster.next_working_start(&cfg.calendar, now);
            self.note(
                number,
                "page_deferred",
                serde_json::json!({"until": next.to_string()}),
            )
            .await?;
            return Ok(Some(Save {
                progress: serde_json::to_string(&progress).expect("progress serialises"),
                next_ms: Some(next.as_millisecond()),
            }));
        }
        let acked = matches!(
            t.state,
            State::Acknowledged | State::Dispatched | State::OnScene
        );
        let dispatched = matches!(t.state, State::Dispatched | State::OnScene);
        let elapsed = Duration::from_millis((now.as_millisecond() - opened).max(0) as u64);
        let decision = evaluate(policy, &mut progress, elapsed, acked, dispatched);
        let mut pass_now = false;
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
        // The indexes a paged member sees the ticket through: their own,
        // and their unit's when they page as a member of the duty unit.
        let indexes_of = |member: &str| {
            let unit = duty
                .unit
                .as_ref()
                .filter(|u| u.members.iter().any(|m| m.id == member));
            std::iter::once(Index::Member(member.to_string()))
                .chain(unit.map(|u| Index::Unit(u.id.clone())))
                .map(|i| i.name())
                .collect::<Vec<_>>()
        };
        for f in decision.fire {
            let members = crate::escalation::members_for(&duty, &f.targets, &cfg.roster);
            crate::metrics::Metrics::inc(&self.metrics.escalation_steps);
            if f.breach {
                crate::metrics::Metrics::inc(&self.metrics.breaches);
                let mut c = Change::new("gateway", "breach");
                c.details = serde_json::json!({"rule": "第二十三条", "what": "no dispatch within five minutes"});
                self.store
                    .change(number, &c, |r| r.dispatch.five_minute_breach = true)
                    .await?;
            }
            if members.is_empty() {
                self.note(
                    number,
                    "page_nobody",
                    serde_json::json!({"step": f.step, "targets": format!("{:?}", f.targets)}),
                )
                .await?;
                continue;
            }
            let page = Page {
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
            };
            // Whoever is paged may open the ticket from the page at once.
            let indexes: Vec<String> = members.iter().flat_map(|m| indexes_of(&m.id)).collect();
            self.store.add_to_indexes(number, &indexes).await?;
            let sends = members.iter().map(|m| self.channels.page(m, &page));
            let results: Vec<_> = futures::future::join_all(sends)
                .await
                .into_iter()
                .flatten()
                .collect();
            // Key 2: the next step at once.
            if results.iter().any(|a| a.passed) {
                progress.pass = true;
                pass_now = true;
            }
            // A key 1 on a paging call is 签收 (only a key counts).
            for a in &results {
                self.metrics.page(a.channel, a.ok);
            }
            if let Some(a) = results.iter().find(|a| a.acknowledged) {
                crate::metrics::Metrics::inc(&self.metrics.pages_acknowledged);
                let ack = crate::tickets::actions::acknowledge(
                    &a.member,
                    None,
                    Timestamp::now(),
                    serde_json::json!({"via": "paging call"}),
                );
                match self.store.act(number, &ack).await {
                    Ok(_) | Err(crate::tickets::StoreError::Illegal { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            for attempt in results {
                tracing::info!(ticket = %number, member = %attempt.member, channel = attempt.channel, outcome = %attempt.outcome, latency_ms = attempt.latency_ms, "page");
                let mut c = Change::new("gateway", "page");
                c.details = serde_json::json!({
                    "step": f.step, "repeat": f.repeat, "member": attempt.member,
                    "channel": attempt.channel, "ok": attempt.ok,
                    "outcome": attempt.outcome, "latency_ms": attempt.latency_ms,
                    "recording": attempt.recording,
                });
                c.index = indexes_of(&attempt.member);
                self.store.change(number, &c, |_| {}).await?;
            }
        }
        Ok(Some(Save {
            progress: serde_json::to_string(&progress).expect("progress serialises"),
            next_ms: if pass_now {
                Some(now_ms())
            } else {
                decision.next.map(|next| opened + next.as_millis() as i64)
            },
        }))
    }

    async fn note(
        &self,
        number: &str,
        action: &str,
        details: serde_json::Value,
    ) -> Result<(), crate::tickets::StoreError> {
        let mut c = Change::new("gateway", action);
        c.details = details;
        self.store.change(number, &c, |_| {}).await.map(|_| ())
    }
}
