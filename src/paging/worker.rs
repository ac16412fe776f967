//! The escalation scheduler. Due steps live in Redis (the store's
//! schedule, `tickets::duty`: ticket numbers by due time, each one's
//! opening time and progress), not in task memory: a restart resumes them, and several
//! gateways on one Redis share the work. A due ticket is claimed
//! atomically (its score moved a lease into the future) before anything is
//! sent, so each step fires once; a gateway that dies mid-step leaves the
//! lease to expire and another takes the step over.
//!
//! One look at a ticket: the triage, the first time (`super::triage`); its
//! policy (the category's, or the officers already on its case when it
//! joined their dispatch), paged step by step; then the clocks
//! (`tickets::clocks`), whose alarms are paged the same way and mark the
//! deadlines missed. The next look is the earlier of the policy's and the
//! clocks' next instants; a change that sets a deadline later wakes the
//! schedule itself (`Change::wake`).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::channels::{Attempt, Channels, Page};
use crate::escalation::{evaluate, Decision, Fire, Policy, Progress};
use crate::live::Loaded;
use crate::roster::{Member, OnDuty, Roster};
use crate::tickets::clocks::{Alarm, Fired};
use crate::tickets::model::Change;
use crate::tickets::model::{Index, State};
use crate::tickets::{Store, StoreError, Ticket};

/// How often the scheduler looks for due steps.
const TICK: Duration = Duration::from_millis(50);

/// What a step leaves for the next one.
pub struct Save {
    progress: String,
    clocks: String,
    next_ms: Option<i64>,
}

impl Save {
    fn new(progress: &Progress, clocks: &Fired, next_ms: Option<i64>) -> Save {
        Save {
            progress: serde_json::to_string(progress).expect("progress serialises"),
            clocks: serde_json::to_string(clocks).expect("alarms serialise"),
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
        let r = crate::tickets::duty::holding(
            self.lease,
            |until| self.store.extend_lease(number, until),
            self.fire_step(number),
        )
        .await;
        let Some(save) = r? else { return Ok(()) };
        // Progress and the next due time, together.
        self.store
            .save_paging(number, &save.progress, &save.clocks, save.next_ms)
            .await
    }

    /// Triages (the first time), evaluates the policy and the clocks,
    /// pages, records, reschedules.
    async fn fire_step(&self, number: &str) -> Result<Option<Save>, StoreError> {
        let mut t = self.store.get(number).await?;
        let state = self.store.paging_state(number).await?;
        let cfg = self.live.get();
        let opened = state.opened_ms.unwrap_or_else(now_ms);
        let mut progress: Progress = state
            .progress
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default();
        let mut fired: Fired = state
            .clocks
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default();
        // Final: nothing runs any more. Still in intake (the call goes on):
        // becoming open puts it on the schedule.
        if t.state.is_final() || t.state == State::Intake {
            return Ok(Some(Save::new(&progress, &fired, None)));
        }
        let now = Timestamp::now();
        if t.register.triage.at.is_none() {
            t = super::triage::run(&self.store, &cfg, &t, now).await?;
        }
        let offset = self.store.rotation_offset().await.unwrap_or(0);
        let duty = cfg.roster.resolve(
            &cfg.calendar,
            offset,
            now,
            t.register.intake.case_number.as_deref(),
        );
        let policy = policy_of(&cfg, &t);
        let step_next = self
            .escalate(number, &t, &policy, &mut progress, &duty, &cfg, opened, now)
            .await?;
        let clock_next = self
            .clocks(number, &t, &mut fired, &duty, &cfg, now)
            .await?;
        let next_ms = match (step_next, clock_next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Some(Save::new(&progress, &fired, next_ms)))
    }

    /// The policy's steps due now, paged; when the next one is due (Unix
    /// ms). A policy without steps (a consultation's) has nothing to page,
    /// defer or note.
    #[allow(clippy::too_many_arguments)]
    async fn escalate(
        &self,
        number: &str,
        t: &Ticket,
        policy: &Policy,
        progress: &mut Progress,
        duty: &OnDuty,
        cfg: &Loaded,
        opened: i64,
        now: Timestamp,
    ) -> Result<Option<i64>, StoreError> {
        if policy.steps.is_empty() {
            return Ok(None);
        }
        if let Some(next) = self.deferred(number, policy, cfg, now).await? {
            return Ok(Some(next.as_millisecond()));
        }
        let decision = decide(policy, progress, t, now, opened);
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
            if self.page_fired(number, t, f, duty, &cfg.roster).await? {
                // Key 2: the next step at once.
                progress.pass = true;
                pass_now = true;
            }
        }
        Ok(if pass_now {
            Some(now_ms())
        } else {
            decision.next.map(|next| opened + next.as_millis() as i64)
        })
    }

    /// The clocks' alarms due now: each deadline passed marked missed, each
    /// alarm paged; when the next one is due (Unix ms).
    async fn clocks(
        &self,
        number: &str,
        t: &Ticket,
        fired: &mut Fired,
        duty: &OnDuty,
        cfg: &Loaded,
        now: Timestamp,
    ) -> Result<Option<i64>, StoreError> {
        let d = crate::tickets::clocks::evaluate(t, fired, &cfg.partner_settings, now);
        for a in &d.alarms {
            if let Some(missed) = a.clock.missed() {
                self.record_missed(number, a, missed).await?;
            }
            self.page_alarm(number, t, a, duty, &cfg.roster).await?;
        }
        Ok(d.next.map(|n| n.as_millisecond()))
    }

    /// A deadline passed unmet: on the register (`deadlines.missed`) and
    /// the timeline.
    async fn record_missed(
        &self,
        number: &str,
        a: &Alarm,
        missed: &'static str,
    ) -> Result<(), StoreError> {
        crate::metrics::Metrics::inc(&self.metrics.deadlines_missed);
        tracing::warn!(ticket = %number, deadline = missed, due = %a.deadline, "deadline missed");
        let mut c = Change::new("gateway", "deadline_missed");
        c.details = serde_json::json!({"deadline": missed, "due": a.deadline});
        self.store
            .change(number, &c, |r| {
                if !r.deadlines.missed.iter().any(|m| m == missed) {
                    r.deadlines.missed.push(missed.to_string());
                }
            })
            .await?;
        Ok(())
    }

    /// One clock's alarm, to each member its targets name (as a step's
    /// page, but not a call to 签收 and never passed on by key 2).
    async fn page_alarm(
        &self,
        number: &str,
        t: &Ticket,
        a: &Alarm,
        duty: &OnDuty,
        roster: &Roster,
    ) -> Result<(), StoreError> {
        crate::metrics::Metrics::inc(&self.metrics.clock_alarms);
        let members = crate::escalation::members_for(duty, &a.targets, roster);
        let what = serde_json::json!({"clock": a.clock.as_str()});
        if members.is_empty() {
            let mut details = what;
            details["targets"] = format!("{:?}", a.targets).into();
            return self.note(number, "page_nobody", details).await;
        }
        let page = Page {
            alarm: true,
            note: Some(a.note.clone()),
            ..page_of(number, t, 0, 0)
        };
        self.send(number, &page, what, &members, duty, a.clock.rings())
            .await?;
        Ok(())
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
        let page = Page {
            note: f.note.clone(),
            ..page_of(number, t, f.step, f.repeat)
        };
        let what = serde_json::json!({"step": f.step, "repeat": f.repeat});
        self.send(number, &page, what, &members, duty, true).await
    }

    /// A page to `members`, who may then open the ticket, their phones
    /// rung or not (`ring`); each attempt on the timeline with `what` it
    /// was (a step, a clock). `true` when a member pressed 2.
    async fn send(
        &self,
        number: &str,
        page: &Page,
        what: serde_json::Value,
        members: &[Member],
        duty: &OnDuty,
        ring: bool,
    ) -> Result<bool, StoreError> {
        // Whoever is paged may open the ticket from the page at once.
        let indexes: Vec<String> = members
            .iter()
            .flat_map(|m| indexes_of(duty, &m.id))
            .collect();
        self.store.add_to_indexes(number, &indexes).await?;
        let sends = members.iter().map(|m| async move {
            match ring {
                true => self.channels.page(m, page).await,
                false => self.channels.page_in_writing(m, page).await,
            }
        });
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
        self.record_attempts(number, &what, duty, results).await?;
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
        what: &serde_json::Value,
        duty: &OnDuty,
        results: Vec<Attempt>,
    ) -> Result<(), StoreError> {
        for attempt in results {
            tracing::info!(ticket = %number, member = %attempt.member, channel = attempt.channel, outcome = %attempt.outcome, latency_ms = attempt.latency_ms, "page");
            let mut c = Change::new("gateway", "page");
            let mut details = what.clone();
            if let (Some(d), serde_json::Value::Object(a)) = (
                details.as_object_mut(),
                serde_json::json!({
                    "member": attempt.member,
                    "channel": attempt.channel, "ok": attempt.ok,
                    "outcome": attempt.outcome, "latency_ms": attempt.latency_ms,
                    "recording": attempt.recording,
                }),
            ) {
                d.extend(a);
            }
            c.details = details;
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

/// The policy a ticket is paged by: its category's, or, when the triage
/// joined it to an earlier lead's dispatch, the officers on that one.
fn policy_of<'a>(cfg: &'a Loaded, t: &Ticket) -> std::borrow::Cow<'a, Policy> {
    let base = cfg.policies.for_category(t.register.intake.category);
    let tr = &t.register.triage;
    match &tr.joined {
        Some(earlier) if !tr.joined_officers.is_empty() => {
            std::borrow::Cow::Owned(Policy::joined(base, &tr.joined_officers, earlier))
        }
        _ => std::borrow::Cow::Borrowed(base),
    }
}

/// The page about a ticket: the ticket, never the caller; its place among
/// the case's reports (本案7日内第N次举报).
fn page_of(number: &str, t: &Ticket, step: usize, repeat: u32) -> Page {
    Page {
        ticket: number.to_string(),
        category: t
            .register
            .intake
            .category
            .map_or("lead", |c| c.as_str())
            .to_string(),
        urgent: t.register.intake.urgent,
        step,
        repeat,
        note: None,
        partner: t.register.intake.partner.clone(),
        repeat_report: t.register.triage.repeat_report(),
        alarm: false,
        transcript: t
            .register
            .transcript
            .as_ref()
            .filter(|x| x.is_done() && !x.text.is_empty())
            .map(|x| x.text.clone()),
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
