//! Shift handover (issue 20): at the start of each duty block — working
//! hours (the desk takes over) and the duty periods after them (the duty
//! unit and the court police) — a summary of what the outgoing block leaves
//! goes to whoever takes over and to the director through their text
//! channels (SIP MESSAGE, webhook): the tickets still open, what was
//! acknowledged in the block, what breached the five minutes, and who
//! takes over (by name: swaps and overrides in force included). Once for all
//! gateways (the store's claim on the block's start); the board shows the
//! latest.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::channels::Channels;
use crate::roster::{Calendar, Roster};
use crate::tickets::model::{Index, Ticket};
use crate::tickets::Store;

/// What one block hands over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The outgoing block: from `since` to `until` (the handover).
    pub since: Timestamp,
    pub until: Timestamp,
    /// Tickets open at the handover (not yet closed).
    pub open: Vec<String>,
    /// Tickets acknowledged in the block.
    pub acknowledged: Vec<String>,
    /// Tickets of the block that breached the five minutes.
    pub breached: Vec<String>,
    /// Who it went to.
    #[serde(default)]
    pub sent_to: Vec<String>,
    /// Who takes over (the duty in force, swaps and overrides included),
    /// by name.
    #[serde(default)]
    pub incoming: Vec<String>,
}

/// The start of the duty block `now` is in: a duty period's start, or the
/// minute working hours began.
pub fn block_start(roster: &Roster, calendar: &Calendar, now: Timestamp) -> Timestamp {
    if let Some(p) = roster.period_at(calendar, now) {
        return p.start;
    }
    let minute = SignedDuration::from_mins(1);
    let mut t = now;
    for _ in 0..(24 * 60) {
        let before = t - minute;
        if roster.period_at(calendar, before).is_some() {
            return t;
        }
        t = before;
    }
    t
}

/// The summary of the block from `since` to `until`: `received` the
/// tickets of the block, `open` those open now.
pub fn summary(
    received: &[Ticket],
    open: &[Ticket],
    since: Timestamp,
    until: Timestamp,
) -> Summary {
    let within = |t: Option<Timestamp>| t.is_some_and(|t| since <= t && t < until);
    let mut acknowledged: Vec<String> = received
        .iter()
        .chain(open.iter())
        .filter(|t| within(t.register.dispatch.acknowledged_at))
        .map(|t| t.number.clone())
        .collect();
    acknowledged.sort();
    acknowledged.dedup();
    Summary {
        since,
        until,
        open: open.iter().map(|t| t.number.clone()).collect(),
        acknowledged,
        breached: received
            .iter()
            .filter(|t| t.register.dispatch.five_minute_breach)
            .map(|t| t.number.clone())
            .collect(),
        sent_to: Vec::new(),
        incoming: Vec::new(),
    }
}

impl Summary {
    /// The text the channels carry (never a caller).
    pub fn text(&self) -> String {
        let list = |v: &[String]| match v.len() {
            0 => "无".to_string(),
            n if n <= 10 => v.join("、"),
            n => format!("{} 等 {n} 件", v[..10].join("、")),
        };
        let incoming = match self.incoming.is_empty() {
            true => String::new(),
            false => format!("接班：{}。", self.incoming.join("、")),
        };
        format!(
            "【市北区执行指挥中心】交接班：待处理 {} 件（{}）；本班签收 {} 件；五分钟内未出警 {} 件（{}）。{incoming}",
            self.open.len(),
            list(&self.open),
            self.acknowledged.len(),
            self.breached.len(),
            list(&self.breached)
        )
    }
}

/// The handover worker, one per gateway.
pub struct Handover {
    pub store: Store,
    pub live: Arc<crate::live::Live>,
    pub channels: Channels,
}

const TICK: Duration = Duration::from_secs(30);

impl Handover {
    /// Runs until `stop`.
    /// Runs until `stop` (the current block's handover at once, if no
    /// gateway made it yet).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.tick(Timestamp::now()).await {
                tracing::debug!(error = %e, "handover: cannot reach redis");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// At `now`: the current block's handover, if no gateway made it yet.
    pub async fn tick(
        &self,
        now: Timestamp,
    ) -> Result<Option<Summary>, crate::tickets::StoreError> {
        let cfg = self.live.get();
        let start = block_start(&cfg.roster, &cfg.calendar, now);
        if !self.store.claim_handover(start.as_millisecond()).await? {
            return Ok(None);
        }
        let last: Option<Summary> = self
            .store
            .latest_handover()
            .await?
            .and_then(|j| serde_json::from_str(&j).ok());
        let since = match last {
            Some(s) if s.until < start => s.until,
            _ => start - SignedDuration::from_hours(24),
        };
        let received = self
            .store
            .received_between(
                since.as_second(),
                start.as_second() - 1,
                crate::tickets::stats::MAX_TICKETS,
            )
            .await?;
        let open: Vec<Ticket> = self
            .store
            .list(&Index::Open.name(), 1000)
            .await?
            .into_iter()
            // A consultation is its handler's (the digest), not the duty's.
            .filter(|t| {
                t.state != crate::tickets::State::Intake
                    && t.register.intake.category
                        != Some(crate::tickets::model::Category::Consultation)
            })
            .collect();
        let mut s = summary(&received, &open, since, start);
        let offset = self.store.rotation_offset().await.unwrap_or(0);
        let duty = cfg.roster.resolve(&cfg.calendar, offset, now, None);
        let targets = [
            crate::escalation::Target::OnDuty,
            crate::escalation::Target::Director,
        ];
        s.incoming = crate::escalation::members_for(
            &duty,
            &[crate::escalation::Target::OnDuty],
            &cfg.roster,
        )
        .into_iter()
        .map(|m| m.name)
        .collect();
        let text = s.text();
        for m in crate::escalation::members_for(&duty, &targets, &cfg.roster) {
            let sent = self.channels.notify(&m, &text).await;
            if sent.iter().any(|a| a.ok) {
                s.sent_to.push(m.id.clone());
            }
        }
        tracing::info!(open = s.open.len(), breached = s.breached.len(), sent_to = ?s.sent_to, "handover");
        let json = serde_json::to_string(&s).unwrap_or_default();
        self.store.save_handover(&json).await?;
        Ok(Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_start_at_the_desk_s_hours_and_at_their_end() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let roster = Roster::load(&dir.join("roster.toml")).unwrap();
        let calendar = Calendar::load(&dir.join("holidays")).unwrap();
        // Tuesday 1 December, 10:00 in Qingdao: working hours since 08:30.
        assert_eq!(
            block_start(&roster, &calendar, at("2026-12-01T02:00:00Z")),
            at("2026-12-01T00:30:00Z")
        );
        // That evening, 20:00: the duty period since 17:30.
        assert_eq!(
            block_start(&roster, &calendar, at("2026-12-01T12:00:00Z")),
            at("2026-12-01T09:30:00Z")
        );
    }

    #[test]
    fn the_summary_names_what_stays_open_and_what_breached() {
        let (since, until) = (at("2026-12-01T00:30:00Z"), at("2026-12-01T09:30:00Z"));
        let ticket = |n: &str, ack: Option<&str>, breach: bool| {
            let mut t = Ticket {
                number: n.into(),
                call_id: String::new(),
                state: crate::tickets::State::Open,
                version: 1,
                received_at: since,
                register: Default::default(),
            };
            t.register.dispatch.acknowledged_at = ack.map(at);
            t.register.dispatch.five_minute_breach = breach;
            t
        };
        let a = ticket("2026-000001", Some("2026-12-01T01:00:00Z"), false);
        let b = ticket("2026-000002", Some("2026-12-01T10:00:00Z"), true);
        let c = ticket("2026-000003", None, false);
        let s = summary(
            &[a.clone(), b.clone()],
            &[b.clone(), c.clone()],
            since,
            until,
        );
        assert_eq!(s.open, ["2026-000002", "2026-000003"]);
        assert_eq!(s.acknowledged, ["2026-000001"]);
        assert_eq!(s.breached, ["2026-000002"]);
        assert_eq!(
            s.text(),
            "【市北区执行指挥中心】交接班：待处理 2 件（2026-000002、2026-000003）；本班签收 1 件；五分钟内未出警 1 件（2026-000002）。"
        );
        // Who takes over, by name, when known.
        let s = Summary {
            incoming: vec!["二组执行员".into(), "孙法警".into()],
            ..s
        };
        assert!(
            s.text().ends_with("。接班：二组执行员、孙法警。"),
            "{}",
            s.text()
        );
    }
}
