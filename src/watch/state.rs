//! The watch's rules without I/O: how a channel's state moves with each
//! check, how a check's findings compare with the last ones, and the words
//! the board and the notices use (times in Asia/Shanghai). Fed `now`;
//! tested on a hand-moved clock.
//!
//! ```text
//!             ok                      fail (failures < down_after)
//!   (none) ───────► up ◄──────┐     ┌──────┐
//!     │             │  ▲      │     ▼      │
//!     │ fail        │  │ ok   └── up, failing
//!     ▼             │  │               │ fail (failures = down_after)
//!   up, failing ────┘  └──── down ◄────┘          Change::Down
//!                       Change::Up     ▲ │ fail: no change
//!                                      └─┘
//! ```

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::court_time::court_tz;

/// What every notice of the watch starts with.
pub const NOTICE: &str = "【市北区执行指挥中心】通道监测：";

/// A watched channel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    /// The court's SIP trunk (`[trunk]`).
    Trunk,
    /// A webhook receiver (`[paging.webhooks.NAME]`).
    Webhook(String),
}

impl Channel {
    /// Its name in the store (`trunk`, `webhook:NAME`).
    pub fn key(&self) -> String {
        match self {
            Channel::Trunk => "trunk".into(),
            Channel::Webhook(name) => format!("webhook:{name}"),
        }
    }

    pub fn parse(key: &str) -> Option<Channel> {
        match key.split_once(':') {
            None if key == "trunk" => Some(Channel::Trunk),
            Some(("webhook", name)) => Some(Channel::Webhook(name.to_string())),
            _ => None,
        }
    }

    /// Its name for people (the board, the notices).
    pub fn label(&self) -> String {
        match self {
            Channel::Trunk => "中继".into(),
            Channel::Webhook(name) => format!("消息推送 {name} "),
        }
    }

    /// What it is when down.
    fn down_word(&self) -> &'static str {
        match self {
            Channel::Trunk => "离线",
            Channel::Webhook(_) => "故障",
        }
    }
}

/// How a channel stands, as the store keeps it for every gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    pub up: bool,
    /// Up: since it came up (or was first checked); down: since the first
    /// failed check of the run that brought it down.
    pub since: Timestamp,
    /// Failed checks in a row.
    pub failures: u32,
    /// The first of them, while there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    /// The last check: when, and what it found (`OPTIONS 200`,
    /// `receiver hook: errcode 93000`).
    pub checked_at: Timestamp,
    pub detail: String,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

/// A change worth a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The channel went down (its `since` says from when).
    Down,
    /// It works again; it had been down since then.
    Up { down_since: Timestamp },
}

/// The state after `check` at `now`, from `prev` (`None`: never checked):
/// down after `down_after` failed checks in a row, up at the first good
/// one; and the change, if this check made one (a channel first seen
/// working is no news, nor is one still down).
pub fn observe(
    prev: Option<&ChannelState>,
    check: &Check,
    down_after: u32,
    now: Timestamp,
) -> (ChannelState, Option<Change>) {
    let down_after = down_after.max(1);
    let was_up = prev.is_none_or(|p| p.up);
    if check.ok {
        let (since, change) = match prev {
            Some(p) if !p.up => (
                now,
                Some(Change::Up {
                    down_since: p.since,
                }),
            ),
            Some(p) => (p.since, None),
            None => (now, None),
        };
        let state = ChannelState {
            up: true,
            since,
            failures: 0,
            failing_since: None,
            checked_at: now,
            detail: check.detail.clone(),
        };
        return (state, change);
    }
    let failures = prev.map_or(0, |p| p.failures).saturating_add(1);
    let failing_since = prev.and_then(|p| p.failing_since).unwrap_or(now);
    let down = !was_up || failures >= down_after;
    let (since, change) = match prev {
        Some(p) if !p.up => (p.since, None),
        _ if down => (failing_since, Some(Change::Down)),
        Some(p) => (p.since, None),
        None => (now, None),
    };
    let state = ChannelState {
        up: !down,
        since,
        failures,
        failing_since: Some(failing_since),
        checked_at: now,
        detail: check.detail.clone(),
    };
    (state, change)
}

/// `at` on the court's clock: `03:12`, with the date (`12-01 03:12`) when
/// it is not `now`'s day.
pub fn clock(at: Timestamp, now: Timestamp) -> String {
    let (z, today) = (
        at.to_zoned_datetime(court_tz()),
        now.to_zoned_datetime(court_tz()).date(),
    );
    match z.date() == today {
        true => z.strftime("%H:%M").to_string(),
        false => z.strftime("%m-%d %H:%M").to_string(),
    }
}

/// The board's red line for a channel that is down: 「中继离线 since 03:12（…）」.
pub fn down_line(channel: &Channel, s: &ChannelState, now: Timestamp) -> String {
    format!(
        "{}{} since {}（{}）",
        channel.label(),
        channel.down_word(),
        clock(s.since, now),
        s.detail
    )
}

/// The notice of a change of `channel`, now in state `s`.
pub fn change_notice(
    channel: &Channel,
    change: Change,
    s: &ChannelState,
    now: Timestamp,
) -> String {
    match change {
        Change::Down => format!("{NOTICE}{}。", down_line(channel, s, now)),
        Change::Up { down_since } => format!(
            "{NOTICE}{}已恢复 {}（{} since {}）。",
            channel.label(),
            clock(now, now),
            channel.down_word(),
            clock(down_since, now)
        ),
    }
}

/// The kinds of findings the watch keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// Members paged at a registered softphone, on duty now or within a
    /// day, with no live binding.
    Softphones,
    /// `roster check`'s findings over the next days.
    Duty,
}

impl FindingKind {
    /// Its name in the store and in the board's JSON.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Softphones => "softphones",
            FindingKind::Duty => "duty",
        }
    }

    fn title(self) -> &'static str {
        match self {
            FindingKind::Softphones => "软电话未注册",
            FindingKind::Duty => "值班检查",
        }
    }

    fn resolved_title(self) -> &'static str {
        match self {
            FindingKind::Softphones => "软电话已注册",
            FindingKind::Duty => "值班检查问题已消除",
        }
    }
}

/// One finding, kept from its first sighting until it is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What it is about (a member's id, the finding's text): findings
    /// compare by it.
    pub key: String,
    /// Who or what (`吴警官（u1-officer）`, a finding as `roster check`
    /// words it).
    pub subject: String,
    /// What more is known now (`17:30 起值班`), or nothing.
    #[serde(default)]
    pub detail: String,
    /// When it was first found.
    pub since: Timestamp,
}

/// A check's findings against the last ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Compared {
    /// The findings now (each with the `since` of its first sighting).
    pub now: Vec<Finding>,
    /// Found now, not before.
    pub new: Vec<Finding>,
    /// Found before, gone now while their subject is still watched
    /// (a member who left the next day's duty is dropped, not resolved).
    pub resolved: Vec<Finding>,
}

/// `found` (key, subject, detail) at `now` against `prev`; `still_watched`
/// says whether a key gone from the findings is gone because it was put
/// right (true) or because it is no longer looked at (false).
pub fn compare(
    prev: &[Finding],
    found: Vec<(String, String, String)>,
    still_watched: impl Fn(&str) -> bool,
    now: Timestamp,
) -> Compared {
    let mut out = Compared::default();
    for (key, subject, detail) in found {
        if out.now.iter().any(|f| f.key == key) {
            continue;
        }
        let before = prev.iter().find(|p| p.key == key);
        let f = Finding {
            since: before.map_or(now, |p| p.since),
            key,
            subject,
            detail,
        };
        if before.is_none() {
            out.new.push(f.clone());
        }
        out.now.push(f);
    }
    out.resolved = prev
        .iter()
        .filter(|p| !out.now.iter().any(|f| f.key == p.key) && still_watched(&p.key))
        .cloned()
        .collect();
    out
}

/// A finding as the board shows it.
fn finding_line(kind: FindingKind, f: &Finding, now: Timestamp) -> String {
    let detail = match f.detail.is_empty() {
        true => String::new(),
        false => format!("，{}", f.detail),
    };
    format!(
        "{}：{}{detail}（since {}）",
        kind.title(),
        f.subject,
        clock(f.since, now)
    )
}

/// A kind's findings as the board shows them: the first three, then how
/// many more (a roster with a gap names every hour of it).
pub fn finding_lines(kind: FindingKind, findings: &[Finding], now: Timestamp) -> Vec<String> {
    const SHOWN: usize = 3;
    let mut out: Vec<String> = findings
        .iter()
        .take(SHOWN)
        .map(|f| finding_line(kind, f, now))
        .collect();
    if findings.len() > SHOWN {
        out.push(format!(
            "{}：另有 {} 项（hotline roster check）",
            kind.title(),
            findings.len() - SHOWN
        ));
    }
    out
}

/// The notice of new findings (`resolved`: false) or of findings put
/// right (true): the first ten, then how many more.
pub fn findings_notice(kind: FindingKind, findings: &[Finding], resolved: bool) -> String {
    let items: Vec<String> = findings
        .iter()
        .take(10)
        .map(
            |f| match (resolved || f.detail.is_empty(), f.detail.as_str()) {
                (true, _) => f.subject.clone(),
                (false, d) => format!("{}，{d}", f.subject),
            },
        )
        .collect();
    let more = match findings.len() {
        n if n > 10 => format!(" 等 {n} 项"),
        _ => String::new(),
    };
    let title = match resolved {
        true => kind.resolved_title(),
        false => kind.title(),
    };
    format!("{NOTICE}{title}：{}{more}。", items.join("；"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn check(ok: bool, detail: &str) -> Check {
        Check {
            ok,
            detail: detail.into(),
        }
    }

    /// Down after N failures in a row, once; still down is no news; up at
    /// the first answer, once; a failure short of N is forgotten by a
    /// success.
    #[test]
    fn a_channel_goes_down_after_n_failures_and_up_at_the_first_answer() {
        let t0 = at("2026-12-01T19:10:00Z"); // 03:10 in Qingdao
        let minute = jiff::SignedDuration::from_mins(1);
        let (s, c) = observe(None, &check(true, "OPTIONS 200"), 3, t0);
        assert_eq!(
            (s.up, s.since, c),
            (true, t0, None),
            "first seen working: no news"
        );
        // One failure, then an answer: forgotten.
        let (s, c) = observe(Some(&s), &check(false, "no answer"), 3, t0 + minute);
        assert_eq!((s.up, s.failures, c), (true, 1, None));
        let (s, c) = observe(Some(&s), &check(true, "OPTIONS 200"), 3, t0 + minute * 2);
        assert_eq!((s.up, s.failures, s.since, c), (true, 0, t0, None));
        // Three in a row: down, since the first of them.
        let mut s = s;
        let mut changes = Vec::new();
        for k in 3..=6 {
            let (next, c) = observe(Some(&s), &check(false, "no answer"), 3, t0 + minute * k);
            changes.extend(c);
            s = next;
        }
        assert_eq!(changes, [Change::Down], "one notice for the change");
        assert!(!s.up);
        assert_eq!(s.since, t0 + minute * 3);
        assert_eq!(s.failures, 4);
        assert_eq!(
            down_line(&Channel::Trunk, &s, t0 + minute * 6),
            "中继离线 since 03:13（no answer）"
        );
        // Up at the first answer, once.
        let (up, c) = observe(Some(&s), &check(true, "OPTIONS 200"), 3, t0 + minute * 30);
        assert_eq!(
            c,
            Some(Change::Up {
                down_since: t0 + minute * 3
            })
        );
        assert_eq!((up.up, up.since, up.failures), (true, t0 + minute * 30, 0));
        assert_eq!(
            change_notice(&Channel::Trunk, c.unwrap(), &up, t0 + minute * 30),
            "【市北区执行指挥中心】通道监测：中继已恢复 03:40（离线 since 03:13）。"
        );
        let (_, c) = observe(Some(&up), &check(true, "OPTIONS 200"), 3, t0 + minute * 31);
        assert_eq!(c, None);
    }

    #[test]
    fn with_one_failure_enough_a_first_check_that_fails_is_down_at_once() {
        let t0 = at("2026-12-01T01:00:00Z"); // 09:00
        let hook = Channel::Webhook("wecom-bureau".into());
        let (s, c) = observe(None, &check(false, "errcode 93000"), 1, t0);
        assert_eq!((s.up, s.since, c), (false, t0, Some(Change::Down)));
        // The next day, it is shown with its date.
        let next_day = t0 + jiff::SignedDuration::from_hours(24);
        assert_eq!(
            down_line(&hook, &s, next_day),
            "消息推送 wecom-bureau 故障 since 12-01 09:00（errcode 93000）"
        );
        // Below the threshold a first failure is not yet down.
        let (s, c) = observe(None, &check(false, "no answer"), 2, t0);
        assert_eq!((s.up, c), (true, None));
        assert_eq!(Channel::parse(&hook.key()), Some(hook));
        assert_eq!(Channel::parse("trunk"), Some(Channel::Trunk));
        assert_eq!(Channel::parse("other"), None);
    }

    #[test]
    fn findings_are_new_once_resolved_once_and_dropped_when_no_longer_watched() {
        let t0 = at("2026-12-01T02:00:00Z");
        let t1 = at("2026-12-01T02:05:00Z");
        let found = |keys: &[&str]| -> Vec<(String, String, String)> {
            keys.iter()
                .map(|k| (k.to_string(), format!("{k} 名"), "17:30 起值班".to_string()))
                .collect()
        };
        let first = compare(&[], found(&["a", "b"]), |_| true, t0);
        assert_eq!(first.new.len(), 2);
        assert!(first.resolved.is_empty());
        // Again: nothing new; a, still missing, keeps its first sighting.
        let again = compare(&first.now, found(&["a", "b"]), |_| true, t1);
        assert!(again.new.is_empty() && again.resolved.is_empty());
        assert_eq!(again.now[0].since, t0);
        // b registered; c appeared; a left the window (not watched): dropped.
        let later = compare(&again.now, found(&["c"]), |k| k != "a", t1);
        assert_eq!(later.new.iter().map(|f| &f.key).collect::<Vec<_>>(), ["c"]);
        assert_eq!(
            later.resolved.iter().map(|f| &f.key).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(
            findings_notice(FindingKind::Softphones, &later.new, false),
            "【市北区执行指挥中心】通道监测：软电话未注册：c 名，17:30 起值班。"
        );
        assert_eq!(
            findings_notice(FindingKind::Softphones, &later.resolved, true),
            "【市北区执行指挥中心】通道监测：软电话已注册：b 名。"
        );
        assert_eq!(
            finding_line(FindingKind::Softphones, &later.now[0], t1),
            "软电话未注册：c 名，17:30 起值班（since 10:05）"
        );
        let many: Vec<Finding> = (0..12)
            .map(|i| Finding {
                key: i.to_string(),
                subject: format!("问题{i}"),
                detail: String::new(),
                since: t0,
            })
            .collect();
        assert!(findings_notice(FindingKind::Duty, &many, false).ends_with("问题9 等 12 项。"));
        let lines = finding_lines(FindingKind::Duty, &many, t1);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[3], "值班检查：另有 9 项（hotline roster check）");
    }
}
