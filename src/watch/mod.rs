//! The channels watched (issue 33): broken ways to reach people are found
//! before the next emergency, not by it.
//!
//! - **the trunk**: an OPTIONS every `trunk_options_seconds` (and, with
//!   `[trunk] register = true`, our registration's last outcome): down
//!   after `trunk_down_after` failed checks in a row, up at the first
//!   answer;
//! - **each webhook receiver**: a test delivery every day at
//!   `webhook_test_at`, or on demand (`hotline watch test-webhooks`, `POST
//!   /api/v1/watch/test-webhooks`); an HTTP error or a robot's non-zero
//!   `errcode` is broken;
//! - **softphones**: members paged at a registered softphone (`sip =
//!   "registered"`), on duty now or within a day, with no live binding;
//! - **the duty**: `roster check`'s findings for the next `duty_check_days`,
//!   every day at `duty_check_at`.
//!
//! Each change (a channel down or up again, findings new or put right) is
//! told once to the desk and the director through the text channels that
//! work (`Channels::notify_avoiding`, never through a receiver found
//! broken), logged, counted, and shown on `/metrics`, `/healthz` and the
//! board. Several gateways on one Redis: each round of a check is claimed
//! in the store by one gateway, and what is shared (since when a channel is
//! down, the findings) lives in the store (`crate::tickets::watch`),
//! written compare-and-set. The rules without I/O are in `state` and
//! `duty`; this file is the task that drives them. Never pages a ticket
//! and never edits one.

pub mod duty;
pub mod state;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::watch as follow;
use tokio_util::sync::CancellationToken;

use crate::call::trunk::TrunkSettings;
use crate::metrics::{label_value, Metrics};
use crate::paging::channels::Channels;
use crate::roster::{Member, Reach, Role};
use crate::sip::core::RegistrationState;
use crate::tickets::watch::WatchRecord;
use crate::tickets::{Store, StoreError};
use state::{Change, Channel, ChannelState, Check, Finding, FindingKind};

/// `[watch]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchSettings {
    /// The watch at all (false: no check runs but an on-demand test).
    pub enabled: bool,
    /// The trunk: an OPTIONS every this many seconds (0: never).
    pub trunk_options_seconds: u64,
    /// Down after this many failed checks in a row.
    pub trunk_down_after: u32,
    /// Webhook receivers: a test delivery every day at this time
    /// (Asia/Shanghai, `HH:MM`), or `off`.
    pub webhook_test_at: DailyAt,
    /// Softphones of members on duty within a day: checked every this many
    /// seconds (0: never; only with a `[registrar]`).
    pub softphone_check_seconds: u64,
    /// `roster check` for the next `duty_check_days`: every day at this
    /// time, or `off`.
    pub duty_check_at: DailyAt,
    pub duty_check_days: u32,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            enabled: true,
            trunk_options_seconds: 60,
            trunk_down_after: 3,
            webhook_test_at: DailyAt::at(9, 0),
            softphone_check_seconds: 300,
            duty_check_at: DailyAt::at(15, 0),
            duty_check_days: 7,
        }
    }
}

impl WatchSettings {
    /// Problems with the values, each naming its key.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.trunk_down_after == 0 {
            out.push(("watch.trunk_down_after", "must be at least 1".to_string()));
        }
        if !(1..=56).contains(&self.duty_check_days) {
            out.push((
                "watch.duty_check_days",
                format!("{} is not between 1 and 56 days", self.duty_check_days),
            ));
        }
        for (key, seconds) in [
            ("watch.trunk_options_seconds", self.trunk_options_seconds),
            (
                "watch.softphone_check_seconds",
                self.softphone_check_seconds,
            ),
        ] {
            if seconds > 86_400 {
                out.push((key, format!("{seconds} is more than a day (86400)")));
            }
        }
        out
    }
}

/// A time of day for a daily check (Asia/Shanghai), or never (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct DailyAt(pub Option<jiff::civil::Time>);

impl DailyAt {
    const fn at(hour: i8, minute: i8) -> DailyAt {
        DailyAt(Some(jiff::civil::Time::constant(hour, minute, 0, 0)))
    }

    /// The day (as `YYYYMMDD`) whose check is due at `now`: today's, once
    /// its time has come; none before it, nor when `off`.
    pub fn due(self, now: Timestamp) -> Option<i64> {
        let local = now.to_zoned_datetime(crate::court_time::court_tz());
        let at = self.0?;
        let d = local.date();
        (local.time() >= at)
            .then(|| i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day()))
    }
}

impl TryFrom<String> for DailyAt {
    type Error = String;

    fn try_from(s: String) -> Result<DailyAt, String> {
        if s == "off" {
            return Ok(DailyAt(None));
        }
        let bad = || format!("{s:?} is not a time of day \"HH:MM\" (or \"off\")");
        let b = s.as_bytes();
        let digits = |i: std::ops::Range<usize>| {
            b.get(i.clone())
                .filter(|d| d.iter().all(u8::is_ascii_digit))
                .map(|d| d.iter().fold(0i8, |n, d| n * 10 + (d - b'0') as i8))
        };
        match (b.len(), b.get(2), digits(0..2), digits(3..5)) {
            (5, Some(b':'), Some(h), Some(m)) => jiff::civil::Time::new(h, m, 0, 0)
                .map(|t| DailyAt(Some(t)))
                .map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

/// How long an OPTIONS to the trunk is waited for at most (the SIP
/// transaction's own limit, 64·T1 with the default T1); a shorter interval
/// waits that long.
const TRUNK_WAIT: Duration = Duration::from_secs(32);

/// How long a test delivery to a receiver may take, its retries included:
/// within the API's request time.
const TEST_LIMIT: Duration = Duration::from_secs(12);

/// How often the daily checks look whether their time has come, and how
/// often every gateway reads the shared states for `/metrics` and
/// `/healthz`.
const DAILY_TICK: Duration = Duration::from_secs(30);
const MIRROR_TICK: Duration = Duration::from_secs(10);

/// What this gateway shows of the watch (`/metrics`, `/healthz`): the
/// shared states as last read from the store.
#[derive(Debug, Default)]
pub struct Watched(Mutex<Snapshot>);

/// The watch's states as read from the store.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub channels: Vec<(Channel, ChannelState)>,
    /// Findings of each kind (none until a check has run).
    pub findings: Vec<(FindingKind, usize)>,
}

impl Watched {
    pub fn get(&self) -> Snapshot {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, s: Snapshot) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// The channels down (`trunk`, `webhook:NAME`), for `/healthz`.
    pub fn down(&self) -> Vec<String> {
        self.get()
            .channels
            .iter()
            .filter(|(_, s)| !s.up)
            .map(|(c, _)| c.key())
            .collect()
    }

    /// The gauges, as Prometheus text: each channel up (1) or down (0)
    /// and since when (Unix seconds), the findings of each check.
    pub fn render(&self) -> String {
        let s = self.get();
        let mut out = String::new();
        if !s.channels.is_empty() {
            let labels = |c: &Channel| match c {
                Channel::Trunk => "channel=\"trunk\"".to_string(),
                Channel::Webhook(n) => format!("channel=\"webhook\",name=\"{}\"", label_value(n)),
            };
            out.push_str("# TYPE hotline_channel_up gauge\n");
            for (c, st) in &s.channels {
                out.push_str(&format!(
                    "hotline_channel_up{{{}}} {}\n",
                    labels(c),
                    u8::from(st.up)
                ));
            }
            out.push_str("# TYPE hotline_channel_since_seconds gauge\n");
            for (c, st) in &s.channels {
                out.push_str(&format!(
                    "hotline_channel_since_seconds{{{}}} {}\n",
                    labels(c),
                    st.since.as_second()
                ));
            }
        }
        if !s.findings.is_empty() {
            out.push_str("# TYPE hotline_watch_findings gauge\n");
            for (kind, n) in &s.findings {
                out.push_str(&format!(
                    "hotline_watch_findings{{check=\"{}\"}} {n}\n",
                    kind.name()
                ));
            }
        }
        out
    }
}

/// One receiver's test delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tested {
    pub receiver: String,
    pub ok: bool,
    /// `delivered`, or why not (`receiver hook: errcode 93000`).
    pub outcome: String,
}

/// The watch, one per gateway (see the module's header).
pub struct Watcher {
    pub settings: WatchSettings,
    pub store: Store,
    pub live: Arc<crate::live::Live>,
    /// The notices, the webhook tests, and through its dialler the trunk
    /// (resolved) and the SIP core.
    pub channels: Channels,
    /// Our registration with the trunk, once the gateway has registered.
    pub registration: OnceLock<follow::Receiver<RegistrationState>>,
    /// What the configuration opens: softphones are checked with a
    /// `[registrar]`; the duty check proves reach by it.
    pub reach: Reach,
    pub metrics: Arc<Metrics>,
    pub watched: Arc<Watched>,
}

impl Watcher {
    /// Runs every check on its schedule until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let s = &self.settings;
        let every = |seconds: u64| (seconds > 0).then(|| Duration::from_secs(seconds));
        let trunk = every(s.trunk_options_seconds).filter(|_| self.trunk().is_some());
        let softphones = every(s.softphone_check_seconds).filter(|_| self.reach.registrar);
        tokio::join!(
            self.every(&stop, trunk, || self.trunk_round()),
            self.every(&stop, softphones, || self.softphone_round()),
            self.every(&stop, Some(DAILY_TICK), || self.daily_round()),
            self.every(&stop, Some(MIRROR_TICK), || async {
                self.refresh().await;
            }),
        );
    }

    /// `round` every `period` (at once first), until `stop`; never without
    /// a period.
    async fn every<F, Fut>(&self, stop: &CancellationToken, period: Option<Duration>, round: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let Some(period) = period else { return };
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = round() => {}
            }
        }
    }

    fn trunk(&self) -> Option<&(TrunkSettings, std::net::SocketAddr)> {
        self.channels.dial.trunk.as_ref()
    }

    /// Claims `round` of `check` for this gateway (`false`: another has
    /// it, or Redis is away).
    async fn claim(&self, check: &str, round: i64, keep: Duration) -> bool {
        match self
            .store
            .claim_watch(check, round, keep.as_millis() as i64)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::debug!(error = %e, check, "watch: cannot reach redis");
                false
            }
        }
    }

    /// One OPTIONS to the trunk (and our registration's state), if this
    /// gateway has the round.
    async fn trunk_round(&self) {
        let Some((t, dest)) = self.trunk() else {
            return;
        };
        let period = Duration::from_secs(self.settings.trunk_options_seconds.max(1));
        let round = Timestamp::now().as_millisecond() / period.as_millis() as i64;
        if !self.claim("trunk", round, period * 2).await {
            return;
        }
        let sent = self
            .channels
            .dial
            .sip
            .send_via(t.options(), *dest, t.egress());
        let status = tokio::time::timeout(period.min(TRUNK_WAIT), sent)
            .await
            .ok()
            .flatten();
        let mut check = Check {
            ok: TrunkSettings::answers(status),
            detail: match status {
                Some(code) => format!("OPTIONS {code}"),
                None => "OPTIONS 无应答".into(),
            },
        };
        if let Some(RegistrationState::Failed { status }) =
            self.registration.get().map(|r| *r.borrow())
        {
            check.ok = false;
            check.detail.push_str(&match status {
                Some(code) => format!("；注册被拒 {code}"),
                None => "；注册无应答".into(),
            });
        }
        self.metrics.channel_check("trunk", check.ok);
        let down_after = self.settings.trunk_down_after;
        match self.apply(Channel::Trunk, &check, down_after).await {
            Ok(Some(text)) => self.tell(&text).await,
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "watch: cannot reach redis"),
        }
        self.refresh().await;
    }

    /// `check` of `channel` at this moment into the shared state: the
    /// notice to send when it changed the state (and this gateway was the
    /// one to change it).
    async fn apply(
        &self,
        channel: Channel,
        check: &Check,
        down_after: u32,
    ) -> Result<Option<String>, StoreError> {
        let key = channel.key();
        let before = self.store.watch_record(WatchRecord::Channels, &key).await?;
        let prev: Option<ChannelState> =
            before.as_deref().and_then(|j| serde_json::from_str(j).ok());
        let now = Timestamp::now();
        let (next, change) = state::observe(prev.as_ref(), check, down_after, now);
        let json = serde_json::to_string(&next).unwrap_or_default();
        let saved = self
            .store
            .save_watch_record(WatchRecord::Channels, &key, before.as_deref(), &json)
            .await?;
        let Some(change) = change.filter(|_| saved) else {
            return Ok(None);
        };
        match change {
            Change::Down => {
                tracing::warn!(channel = %key, detail = %check.detail, since = %next.since, "channel down")
            }
            Change::Up { down_since } => {
                tracing::info!(channel = %key, detail = %check.detail, %down_since, "channel up again")
            }
        }
        Ok(Some(state::change_notice(&channel, change, &next, now)))
    }

    /// Tells the desk and the director `text` through their text channels,
    /// leaving out every webhook receiver found broken.
    async fn tell(&self, text: &str) {
        let broken: Vec<String> = match self.store.watch_records(WatchRecord::Channels).await {
            Ok(all) => all
                .into_iter()
                .filter_map(|(key, json)| {
                    let s: ChannelState = serde_json::from_str(&json).ok()?;
                    match Channel::parse(&key)? {
                        Channel::Webhook(name) if !s.up => Some(name),
                        _ => None,
                    }
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let cfg = self.live.get();
        let to: Vec<Member> = cfg
            .roster
            .members()
            .filter(|m| m.has_any(&[Role::Desk, Role::Director]))
            .cloned()
            .collect();
        let mut told = Vec::new();
        for m in &to {
            let sent = self
                .channels
                .notify_avoiding(m, "channel_watch", text, &broken)
                .await;
            if sent.iter().any(|a| a.ok) {
                told.push(m.id.clone());
            }
        }
        tracing::info!(told = ?told, "watch notice: {text}");
    }

    /// Tests every webhook receiver now (the daily test, or on demand):
    /// each one's outcome; the changes are told meanwhile, in a task of
    /// their own (an abandoned request does not stop them).
    pub async fn test_webhooks(self: &Arc<Self>) -> Vec<Tested> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        tokio::spawn(async move {
            let (tested, notices) = me.run_webhook_tests().await;
            let _ = tx.send(tested);
            for text in notices {
                me.tell(&text).await;
            }
            me.refresh().await;
        });
        rx.await.unwrap_or_default()
    }

    async fn run_webhook_tests(&self) -> (Vec<Tested>, Vec<String>) {
        let cfg = self.live.get();
        let mut names: Vec<String> = cfg.webhooks.keys().cloned().collect();
        names.sort();
        let text = format!("{}测试消息，确认本通道可用，无需处理。", state::NOTICE);
        let text = &text;
        let tested = futures::future::join_all(names.iter().map(|name| async move {
            let r = tokio::time::timeout(TEST_LIMIT, self.channels.test_webhook(name, text))
                .await
                .unwrap_or_else(|_| {
                    Err(format!("receiver {name}: no outcome within {TEST_LIMIT:?}"))
                });
            let (ok, outcome) = match r {
                Ok(how) => (true, how),
                Err(why) => (false, why),
            };
            Tested {
                receiver: name.clone(),
                ok,
                outcome,
            }
        }))
        .await;
        let mut notices = Vec::new();
        for t in &tested {
            self.metrics.channel_check("webhook", t.ok);
            let check = Check {
                ok: t.ok,
                detail: t.outcome.clone(),
            };
            match self
                .apply(Channel::Webhook(t.receiver.clone()), &check, 1)
                .await
            {
                Ok(notice) => notices.extend(notice),
                Err(e) => tracing::debug!(error = %e, "watch: cannot reach redis"),
            }
        }
        tracing::info!(
            receivers = tested.len(),
            broken = tested.iter().filter(|t| !t.ok).count(),
            "webhook receivers tested"
        );
        (tested, notices)
    }

    /// The daily checks whose time has come, if no gateway made them today.
    async fn daily_round(self: &Arc<Self>) {
        let now = Timestamp::now();
        let keep = Duration::from_secs(2 * 86_400);
        if let Some(day) = self.settings.webhook_test_at.due(now) {
            if self.claim("webhooks", day, keep).await {
                self.test_webhooks().await;
            }
        }
        if let Some(day) = self.settings.duty_check_at.due(now) {
            if self.claim("duty", day, keep).await {
                self.duty_check(now).await;
            }
        }
    }

    /// `roster check` over the next days: its findings against the last.
    async fn duty_check(&self, now: Timestamp) {
        let Ok(offset) = self.store.rotation_offset().await else {
            return;
        };
        let cfg = self.live.get();
        let plan = self.trunk().and_then(|(t, _)| t.plan().ok());
        let check = duty::DutyCheck {
            roster: &cfg.roster,
            calendar: &cfg.calendar,
            policies: &cfg.policies,
            plan: plan.as_ref(),
            reach: self.reach,
        };
        let today = crate::court_time::court_day(now);
        let (issues, _) = check.findings(offset, today, i64::from(self.settings.duty_check_days));
        let found = issues
            .into_iter()
            .map(|i| (i.clone(), i, String::new()))
            .collect();
        self.findings(FindingKind::Duty, found, |_| true, now).await;
    }

    /// Members paged at a registered softphone, on duty now or within a
    /// day, with no live binding.
    async fn softphone_round(&self) {
        let period = Duration::from_secs(self.settings.softphone_check_seconds.max(1));
        let now = Timestamp::now();
        let round = now.as_millisecond() / period.as_millis() as i64;
        if !self.claim("softphones", round, period * 2).await {
            return;
        }
        let Ok(offset) = self.store.rotation_offset().await else {
            return;
        };
        let cfg = self.live.get();
        let on_duty = duty::on_duty_within(
            &cfg.roster,
            &cfg.calendar,
            offset,
            now,
            SignedDuration::from_hours(24),
        );
        let mut watched = HashSet::new();
        let mut found = Vec::new();
        for (m, from) in on_duty {
            if m.sip.as_deref() != Some(crate::roster::REGISTERED) {
                continue;
            }
            watched.insert(m.id.clone());
            match self.store.bindings(&m.id, now.as_millisecond()).await {
                Ok(b) if b.is_empty() => {
                    let when = match from == now {
                        true => "正在值班".to_string(),
                        false => format!("{} 起值班", state::clock(from, now)),
                    };
                    found.push((m.id.clone(), format!("{}（{}）", m.name, m.id), when));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "watch: cannot reach redis");
                    return;
                }
            }
        }
        self.findings(FindingKind::Softphones, found, |k| watched.contains(k), now)
            .await;
        self.refresh().await;
    }

    /// `found` against the kind's last findings: kept, and what is new or
    /// put right told.
    async fn findings(
        &self,
        kind: FindingKind,
        found: Vec<(String, String, String)>,
        still_watched: impl Fn(&str) -> bool,
        now: Timestamp,
    ) {
        let before = match self
            .store
            .watch_record(WatchRecord::Findings, kind.name())
            .await
        {
            Ok(b) => b,
            Err(e) => return tracing::debug!(error = %e, "watch: cannot reach redis"),
        };
        let prev: Vec<Finding> = before
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        let compared = state::compare(&prev, found, still_watched, now);
        let json = serde_json::to_string(&compared.now).unwrap_or_default();
        match self
            .store
            .save_watch_record(WatchRecord::Findings, kind.name(), before.as_deref(), &json)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return tracing::debug!(error = %e, "watch: cannot reach redis"),
        }
        if !compared.new.is_empty() {
            tracing::warn!(
                check = kind.name(),
                new = compared.new.len(),
                "watch: new findings"
            );
            self.tell(&state::findings_notice(kind, &compared.new, false))
                .await;
        }
        if !compared.resolved.is_empty() {
            tracing::info!(
                check = kind.name(),
                resolved = compared.resolved.len(),
                "watch: findings put right"
            );
            self.tell(&state::findings_notice(kind, &compared.resolved, true))
                .await;
        }
    }

    /// Whether `channel` is watched by this gateway's configuration (a
    /// receiver removed by a reload is not shown any more).
    fn configured(&self, channel: &Channel) -> bool {
        match channel {
            Channel::Trunk => self.trunk().is_some() && self.settings.trunk_options_seconds > 0,
            Channel::Webhook(name) => self.live.get().webhooks.contains_key(name),
        }
    }

    /// The shared states as the store has them, the channels this gateway
    /// watches only.
    async fn read(
        &self,
    ) -> Result<
        (
            Vec<(Channel, ChannelState)>,
            Vec<(FindingKind, Vec<Finding>)>,
        ),
        StoreError,
    > {
        let channels = self
            .store
            .watch_records(WatchRecord::Channels)
            .await?
            .into_iter()
            .filter_map(|(key, json)| {
                let c = Channel::parse(&key).filter(|c| self.configured(c))?;
                Some((c, serde_json::from_str(&json).ok()?))
            })
            .collect();
        let mut findings = Vec::new();
        for kind in [FindingKind::Softphones, FindingKind::Duty] {
            if let Some(json) = self
                .store
                .watch_record(WatchRecord::Findings, kind.name())
                .await?
            {
                findings.push((kind, serde_json::from_str(&json).unwrap_or_default()));
            }
        }
        Ok((channels, findings))
    }

    /// Reads the shared states into what this gateway shows.
    async fn refresh(&self) {
        match self.read().await {
            Ok((channels, findings)) => self.watched.set(Snapshot {
                channels,
                findings: findings.iter().map(|(k, f)| (*k, f.len())).collect(),
            }),
            Err(e) => tracing::debug!(error = %e, "watch: cannot reach redis"),
        }
    }

    /// The board's part: the red lines (what is wrong, since when), then
    /// the channels, the softphones and the duty findings in full.
    pub async fn board(&self, now: Timestamp) -> Result<serde_json::Value, StoreError> {
        let (channels, findings) = self.read().await?;
        let mut problems: Vec<String> = channels
            .iter()
            .filter(|(_, s)| !s.up)
            .map(|(c, s)| state::down_line(c, s, now))
            .collect();
        for (kind, list) in &findings {
            problems.extend(state::finding_lines(*kind, list, now));
        }
        let list = |kind: FindingKind| {
            findings
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, f)| f.clone())
                .unwrap_or_default()
        };
        let channels: Vec<serde_json::Value> = channels
            .iter()
            .map(|(c, s)| {
                serde_json::json!({
                    "channel": c.key(), "up": s.up, "since": s.since, "failures": s.failures,
                    "checked_at": s.checked_at, "detail": s.detail,
                })
            })
            .collect();
        Ok(serde_json::json!({
            "problems": problems,
            "channels": channels,
            "softphones": list(FindingKind::Softphones),
            "duty": list(FindingKind::Duty),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_refuse_what_they_cannot_mean() {
        let s: WatchSettings = toml::from_str("").unwrap();
        assert_eq!(s, WatchSettings::default());
        assert!(s.check().is_empty());
        let s: WatchSettings =
            toml::from_str("webhook_test_at = \"off\"\nduty_check_at = \"07:05\"").unwrap();
        assert_eq!(s.webhook_test_at, DailyAt(None));
        assert_eq!(
            s.duty_check_at,
            DailyAt(Some(jiff::civil::Time::constant(7, 5, 0, 0)))
        );
        for bad in ["25:00", "9:00", "09:00:00", "nine", ""] {
            let e = toml::from_str::<WatchSettings>(&format!("webhook_test_at = \"{bad}\""))
                .unwrap_err()
                .to_string();
            assert!(e.contains("is not a time of day"), "{bad}: {e}");
        }
        assert!(toml::from_str::<WatchSettings>("trunk_options = 5").is_err());
        let s: WatchSettings =
            toml::from_str("trunk_down_after = 0\nduty_check_days = 90").unwrap();
        let keys: Vec<&str> = s.check().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["watch.trunk_down_after", "watch.duty_check_days"]);
    }

    #[test]
    fn a_daily_check_is_due_from_its_time_on_the_court_s_day() {
        let at = DailyAt::at(9, 0);
        // 08:59 and 09:00 in Qingdao on 1 December.
        assert_eq!(at.due("2026-12-01T00:59:00Z".parse().unwrap()), None);
        assert_eq!(
            at.due("2026-12-01T01:00:00Z".parse().unwrap()),
            Some(20261201)
        );
        // 23:30 in Qingdao is still the 1st; 00:30 the 2nd, before 09:00.
        assert_eq!(
            at.due("2026-12-01T15:30:00Z".parse().unwrap()),
            Some(20261201)
        );
        assert_eq!(at.due("2026-12-01T16:30:00Z".parse().unwrap()), None);
        assert_eq!(
            DailyAt(None).due("2026-12-01T15:30:00Z".parse().unwrap()),
            None
        );
    }

    #[test]
    fn the_gauges_name_each_channel_and_escape_its_name() {
        let w = Watched::default();
        let since: Timestamp = "2026-12-01T19:12:00Z".parse().unwrap();
        let st = |up| ChannelState {
            up,
            since,
            failures: 0,
            failing_since: None,
            checked_at: since,
            detail: String::new(),
        };
        w.set(Snapshot {
            channels: vec![
                (Channel::Trunk, st(false)),
                (Channel::Webhook("a\"b".into()), st(true)),
            ],
            findings: vec![(FindingKind::Softphones, 2)],
        });
        let text = w.render();
        assert!(
            text.contains(
                "# TYPE hotline_channel_up gauge\nhotline_channel_up{channel=\"trunk\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("hotline_channel_up{channel=\"webhook\",name=\"a\\\"b\"} 1\n"),
            "{text}"
        );
        assert!(text.contains(&format!(
            "hotline_channel_since_seconds{{channel=\"trunk\"}} {}\n",
            since.as_second()
        )));
        assert!(text.contains("hotline_watch_findings{check=\"softphones\"} 2\n"));
        assert_eq!(w.down(), ["trunk"]);
    }
}
