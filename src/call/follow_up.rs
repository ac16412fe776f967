//! The follow-up call (回访): `[follow_up] delay_hours` after a ticket is
//! closed, in working hours only, the gateway calls the informant through
//! the trunk (the sealed number opened only for the call's Request-URI, as
//! a callback's), says who calls and asks for satisfaction 1 to 5; the key,
//! or that none came, goes on the ticket. A caller who pressed 9 at the end
//! of the intake, or withheld the number, is not called. The schedule is
//! the store's (`followup:due`, claimed with a lease like paging's), so a
//! restart or a second gateway neither loses nor repeats a call.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::bridge::Bridging;
use super::outbound::Outcome;
use crate::privacy::CallerKey;
use crate::scripts::question::{Answer, QuestionScript};
use crate::tickets::model::Change;
use crate::tickets::model::{FollowUp, Provenance, RecordingLink, State};
use crate::tickets::{Store, StoreError};

/// `[follow_up]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FollowUpSettings {
    /// Call informants back after their tickets are closed (and offer key
    /// 9 at the end of the intake to decline).
    pub enabled: bool,
    /// Hours after closing (then the next working hours).
    pub delay_hours: u64,
    /// A ticket closed longer ago than this many days is not called (a
    /// gateway that had follow-ups off does not call a backlog).
    pub within_days: u64,
    pub ring_seconds: u64,
    /// Seconds for a key after the question, asked `plays` times.
    pub key_seconds: u64,
    pub plays: u32,
}

impl Default for FollowUpSettings {
    fn default() -> Self {
        FollowUpSettings {
            enabled: false,
            delay_hours: 24,
            within_days: 7,
            ring_seconds: 30,
            key_seconds: 10,
            plays: 2,
        }
    }
}

/// The follow-up calls' worker, one per gateway.
pub struct FollowUps {
    pub settings: FollowUpSettings,
    pub store: Store,
    pub bridging: Arc<Bridging>,
    pub caller_key: CallerKey,
}

/// How often the schedule is read.
const TICK: Duration = Duration::from_secs(5);
/// A claimed call not finished by then is claimed again.
const LEASE: Duration = Duration::from_secs(600);

impl FollowUps {
    /// Runs until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let delay = Duration::from_secs(self.settings.delay_hours * 3600);
        crate::tickets::duty::run_claimed(
            "follow-up",
            TICK,
            stop,
            || {
                let cutoff = Timestamp::now().as_millisecond() - delay.as_millis() as i64;
                self.store
                    .claim_follow_ups(cutoff, LEASE.as_millis() as i64, 16)
            },
            |(number, closed_ms): (String, i64)| {
                let me = self.clone();
                async move {
                    if let Err(e) = me.one(&number, closed_ms).await {
                        tracing::warn!(ticket = %number, error = %e, "follow-up failed; tried again after the lease");
                    }
                }
            },
        )
        .await
    }

    /// The follow-up of `number`, closed at `closed_ms`: skipped, deferred,
    /// or the call and its result on the ticket.
    async fn one(&self, number: &str, closed_ms: i64) -> Result<(), StoreError> {
        let t = self.store.get(number).await?;
        let now = Timestamp::now();
        let too_old = Duration::from_secs(
            (self.settings.delay_hours + self.settings.within_days * 24) * 3600,
        );
        // Not (or no longer) one for a follow-up: off the schedule.
        if t.state != State::Closed || t.register.follow_up.is_some() {
            return self.store.follow_up_at(number, None).await;
        }
        let caller = &t.register.caller;
        let skip = if t.register.intake.no_follow_up {
            Some("the caller declined it (key 9)")
        } else if caller.provenance() == Provenance::Withheld {
            Some("no number to call (withheld)")
        } else if caller.provenance() == Provenance::Claimed {
            Some("the number is unverified (only claimed by the call, not asserted by the court's trunk): not dialled")
        } else if now.as_millisecond() - closed_ms > too_old.as_millis() as i64 {
            Some("closed too long ago")
        } else {
            None
        };
        if let Some(why) = skip {
            tracing::info!(ticket = %number, why, "follow-up skipped");
            let mut c = Change::new("gateway", "follow_up_skipped");
            c.details = serde_json::json!({ "why": why });
            self.store.change(number, &c, |_| {}).await?;
            return self.store.follow_up_at(number, None).await;
        }
        // Working hours only: due again at the next start.
        let live = self.bridging.dial.live.get();
        if let Some(next) = deferred_to(&live.roster, &live.calendar, now) {
            let delay = (self.settings.delay_hours * 3600 * 1000) as i64;
            return self
                .store
                .follow_up_at(number, Some(next.as_millisecond() - delay))
                .await;
        }
        let Some(_slot) = self.bridging.slot(super::bridge::Need::Other) else {
            // Every line busy: the lease brings it back.
            return Ok(());
        };
        let (satisfaction, outcome, recording) =
            self.call(number, t.register.caller.number.as_deref()).await;
        tracing::info!(ticket = %number, outcome = %outcome, "follow-up call");
        let mut c = Change::new("gateway", "follow_up");
        c.details = serde_json::json!({
            "satisfaction": satisfaction, "outcome": outcome, "recording": recording,
        });
        let result = FollowUp {
            at: now,
            satisfaction,
            outcome,
        };
        self.store
            .change(number, &c, move |r| {
                r.follow_up = Some(result.clone());
                r.recordings.extend(recording.clone());
            })
            .await?;
        self.store.follow_up_at(number, None).await
    }

    /// Calls the informant (the sealed number opened here only); the key,
    /// the outcome in words (never the number), the recording.
    async fn call(
        &self,
        number: &str,
        sealed: Option<&str>,
    ) -> (Option<u8>, String, Option<RecordingLink>) {
        let s = &self.settings;
        let channels = &self.bridging.dial;
        let script = QuestionScript::survey(s.plays, Duration::from_secs(s.key_seconds));
        let call = sealed
            .and_then(|n| self.caller_key.open(n))
            .ok_or_else(|| "the trunk cannot dial the informant's number".to_string())
            .and_then(|n| channels.informant_route(&n))
            .and_then(|route| {
                let ring = Duration::from_secs(s.ring_seconds);
                channels
                    .call_along("follow-up", route, script, ring, Some(number))
                    .map_err(|_| "the trunk cannot dial the informant's number".to_string())
            });
        let call = match call {
            Ok(c) => c,
            Err(why) => return (None, why, None),
        };
        match super::outbound::place(call).await {
            Outcome::NotAnswered(reason) => (None, super::outbound::not_answered(reason), None),
            Outcome::Lost(why) => (None, format!("failed: {why}"), None),
            Outcome::Answered { answer, recording } => {
                let recording = recording.map(super::outbound::link);
                let (satisfaction, outcome) = match answer {
                    Answer::Key(k) => (k.to_digit(10).map(|d| d as u8), format!("key {k}")),
                    Answer::NoKey => (None, "answered, no key".into()),
                    Answer::HungUp => (None, "answered, hung up without a key".into()),
                };
                (satisfaction, outcome, recording)
            }
        }
    }
}

/// When a follow-up due at `now` may be made: now (`None`), or at the
/// start of the next working hours (the desk's: rule 第十条's office hours).
fn deferred_to(
    roster: &crate::roster::Roster,
    calendar: &crate::roster::Calendar,
    now: Timestamp,
) -> Option<Timestamp> {
    roster
        .period_at(calendar, now)
        .map(|_| roster.next_working_start(calendar, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn follow_ups_wait_for_working_hours() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let roster = crate::roster::Roster::load(&dir.join("roster.toml")).unwrap();
        let calendar = crate::roster::Calendar::load(&dir.join("holidays")).unwrap();
        // A Tuesday morning: now.
        assert_eq!(
            deferred_to(&roster, &calendar, at("2026-12-01T02:00:00Z")),
            None
        );
        // That evening (20:00 in Qingdao): the next morning at 08:30.
        assert_eq!(
            deferred_to(&roster, &calendar, at("2026-12-01T12:00:00Z")),
            Some(at("2026-12-02T00:30:00Z"))
        );
        // A Saturday: Monday morning.
        assert_eq!(
            deferred_to(&roster, &calendar, at("2026-12-05T02:00:00Z")),
            Some(at("2026-12-07T00:30:00Z"))
        );
        // During the National Day holiday: the first working day after it.
        assert_eq!(
            deferred_to(&roster, &calendar, at("2026-10-03T02:00:00Z")),
            Some(at("2026-10-08T00:30:00Z"))
        );
    }
}
