//! The consultations' daily digest (咨询日报): at the start of each working
//! day (the roster's working hours, on a working day of the court's
//! calendar) each handler with open consultations gets their list through
//! their text channels (SIP MESSAGE, webhook): the ticket, the case and
//! the answer deadline, overdue first. A handler is whom the triage routed
//! the consultation to (`tickets::triage::consultation_lists`: the case's
//! judge or unit, else the desk, else the director); a unit's digest goes
//! to each of its members. Once for all gateways: the store's claim on the
//! day's start, as the handover's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::channels::Channels;
use crate::roster::{Calendar, Member, Roster};
use crate::tickets::model::{Category, Index, Ticket};
use crate::tickets::Store;

/// How many open tickets a digest reads at most.
const MAX_OPEN: usize = 5000;
/// How many consultations one text names (then how many more).
const MAX_LISTED: usize = 20;

/// One handler's digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The list it is about (`member:m-zhao`, `unit:unit-2`).
    pub list: String,
    pub members: Vec<Member>,
    /// Their open consultations, overdue first, then by deadline.
    pub tickets: Vec<String>,
    pub text: String,
}

/// The start of working hours today, when `now` is within them on a
/// working day (adjusted working days included).
pub fn working_day_start(
    roster: &Roster,
    calendar: &Calendar,
    now: Timestamp,
) -> Option<Timestamp> {
    let tz = crate::court_time::court_tz();
    let local = now.to_zoned_datetime(tz.clone());
    let (start, end) = roster.working_hours();
    let worked = calendar.day(local.date()).0.is_working();
    if !worked || local.time() < start || local.time() >= end {
        return None;
    }
    local
        .date()
        .to_datetime(start)
        .to_zoned_datetime(tz)
        .ok()
        .map(|z| z.timestamp())
}

/// The digests of `open` (tickets not in a final state) at `now`: one per
/// list that has open, triaged consultations.
pub fn digests(open: &[Ticket], roster: &Roster, now: Timestamp) -> Vec<Entry> {
    let mut by_list: BTreeMap<String, (Index, Vec<&Ticket>)> = BTreeMap::new();
    for t in open.iter().filter(|t| {
        t.register.intake.category == Some(Category::Consultation)
            && !t.state.is_final()
            && t.register.triage.at.is_some()
    }) {
        let handler = t.register.triage.handler.as_deref();
        for list in crate::tickets::triage::consultation_lists(roster, handler) {
            by_list
                .entry(list.name())
                .or_insert_with(|| (list, Vec::new()))
                .1
                .push(t);
        }
    }
    by_list
        .into_iter()
        .map(|(name, (list, mut tickets))| {
            // Overdue first: the earliest deadlines are the overdue ones.
            tickets.sort_by_key(|t| {
                (
                    t.register.deadlines.answer_by.is_none(),
                    t.register.deadlines.answer_by,
                    t.number.clone(),
                )
            });
            let members = match &list {
                Index::Unit(u) => roster.handler_members(u),
                Index::Member(m) => roster.member(m).cloned().into_iter().collect(),
                _ => Vec::new(),
            };
            Entry {
                list: name,
                members,
                text: text(&tickets, now),
                tickets: tickets.iter().map(|t| t.number.clone()).collect(),
            }
        })
        .collect()
}

/// The digest's text (never a caller): each consultation with its case and
/// deadline, 已逾期 when passed.
fn text(tickets: &[&Ticket], now: Timestamp) -> String {
    let tz = crate::court_time::court_tz();
    let overdue = tickets
        .iter()
        .filter(|t| t.register.deadlines.answer_by.is_some_and(|by| by <= now))
        .count();
    let mut out = format!(
        "【市北区执行指挥中心】待答复咨询 {} 件（已逾期 {overdue} 件）：",
        tickets.len()
    );
    let items: Vec<String> = tickets
        .iter()
        .take(MAX_LISTED)
        .map(|t| {
            let case = t.register.intake.case_number.as_deref().unwrap_or("无案号");
            let due = match t.register.deadlines.answer_by {
                Some(by) => {
                    let at = by.to_zoned_datetime(tz.clone()).strftime("%m月%d日%H:%M");
                    if by <= now {
                        format!("已逾期（{at}）")
                    } else {
                        format!("{at}前答复")
                    }
                }
                None => "无期限".into(),
            };
            format!("{} 案号{case} {due}", t.number)
        })
        .collect();
    out.push_str(&items.join("；"));
    if tickets.len() > MAX_LISTED {
        out.push_str(&format!("；等 {} 件", tickets.len()));
    }
    out.push('。');
    out
}

/// The digest worker, one per gateway.
pub struct Digest {
    pub store: Store,
    pub live: Arc<crate::live::Live>,
    pub channels: Channels,
    pub metrics: Arc<crate::metrics::Metrics>,
}

const TICK: Duration = Duration::from_secs(30);

impl Digest {
    /// Runs until `stop`: today's digest as soon as working hours began,
    /// if no gateway sent it yet.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.tick(Timestamp::now()).await {
                tracing::debug!(error = %e, "digest: cannot reach redis");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// At `now`: the working day's digest, if it is one and no gateway
    /// sent it yet; the digests sent.
    pub async fn tick(&self, now: Timestamp) -> Result<Vec<Entry>, crate::tickets::StoreError> {
        let cfg = self.live.get();
        let Some(start) = working_day_start(&cfg.roster, &cfg.calendar, now) else {
            return Ok(Vec::new());
        };
        if !self.store.claim_digest(start.as_millisecond()).await? {
            return Ok(Vec::new());
        }
        let open = self.store.list(&Index::Open.name(), MAX_OPEN).await?;
        let entries = digests(&open, &cfg.roster, now);
        for e in &entries {
            let mut sent_to = Vec::new();
            for m in &e.members {
                let sent = self.channels.notify_about(m, "digest", &e.text).await;
                for a in &sent {
                    self.metrics.page(a.channel, a.ok);
                }
                if sent.iter().any(|a| a.ok) {
                    crate::metrics::Metrics::inc(&self.metrics.consultation_digests);
                    sent_to.push(m.id.clone());
                }
            }
            tracing::info!(list = %e.list, consultations = e.tickets.len(), sent_to = ?sent_to, "consultations' digest");
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::model::State;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn config() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
    }

    fn roster() -> Roster {
        let cases = crate::cases::CaseDirectory::load(&config().join("cases.csv")).unwrap();
        Roster::load(&config().join("roster.toml"))
            .unwrap()
            .with_cases(cases)
            .unwrap()
    }

    #[test]
    fn the_digest_goes_out_in_working_hours_of_working_days_only() {
        let (r, cal) = (
            roster(),
            Calendar::load(&config().join("holidays")).unwrap(),
        );
        // Tuesday 1 December 2026, 10:00 in Qingdao: since 08:30.
        assert_eq!(
            working_day_start(&r, &cal, at("2026-12-01T02:00:00Z")),
            Some(at("2026-12-01T00:30:00Z"))
        );
        // 08:00, before the hours; 18:00, after them.
        assert_eq!(
            working_day_start(&r, &cal, at("2026-12-01T00:00:00Z")),
            None
        );
        assert_eq!(
            working_day_start(&r, &cal, at("2026-12-01T10:00:00Z")),
            None
        );
        // A Saturday off, and the adjusted working Saturday 14 February.
        assert_eq!(
            working_day_start(&r, &cal, at("2026-12-05T02:00:00Z")),
            None
        );
        assert_eq!(
            working_day_start(&r, &cal, at("2026-02-14T02:00:00Z")),
            Some(at("2026-02-14T00:30:00Z"))
        );
        // A holiday.
        assert_eq!(
            working_day_start(&r, &cal, at("2026-10-05T02:00:00Z")),
            None
        );
    }

    #[test]
    fn each_handler_gets_their_open_consultations_overdue_first() {
        let r = roster();
        let now = at("2026-12-03T01:00:00Z");
        let consultation = |n: u32, handler: Option<&str>, by: &str, state: State| {
            let mut t = Ticket {
                number: format!("2026-{n:06}"),
                call_id: String::new(),
                state,
                version: 1,
                received_at: at("2026-11-30T02:00:00Z"),
                register: Default::default(),
            };
            t.register.intake.category = Some(Category::Consultation);
            t.register.intake.case_number = Some(format!("20260203{n}"));
            t.register.triage.at = Some(at("2026-11-30T02:00:00Z"));
            t.register.triage.handler = handler.map(str::to_string);
            t.register.deadlines.answer_by = Some(at(by));
            t
        };
        let mut lead = consultation(9, Some("m-zhao"), "2026-12-01T09:30:00Z", State::Open);
        lead.register.intake.category = Some(Category::Lead);
        let open = vec![
            consultation(1, Some("m-zhao"), "2026-12-04T09:30:00Z", State::Open),
            consultation(
                2,
                Some("m-zhao"),
                "2026-12-02T09:30:00Z",
                State::Acknowledged,
            ),
            consultation(3, Some("unit-2"), "2026-12-04T09:30:00Z", State::Open),
            consultation(4, None, "2026-12-04T09:30:00Z", State::Open),
            consultation(5, Some("m-zhao"), "2026-12-01T09:30:00Z", State::Closed),
            lead,
        ];
        let d = digests(&open, &r, now);
        let lists: Vec<(&str, Vec<&str>)> = d
            .iter()
            .map(|e| {
                (
                    e.list.as_str(),
                    e.tickets.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            lists,
            [
                ("member:m-desk-1", vec!["2026-000004"]),
                ("member:m-desk-2", vec!["2026-000004"]),
                ("member:m-zhao", vec!["2026-000002", "2026-000001"]),
                ("unit:unit-2", vec!["2026-000003"]),
            ]
        );
        let zhao = &d[2];
        assert_eq!(
            zhao.members
                .iter()
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>(),
            ["m-zhao"]
        );
        assert_eq!(
            zhao.text,
            "【市北区执行指挥中心】待答复咨询 2 件（已逾期 1 件）：2026-000002 案号202602032 已逾期（12月02日17:30）；2026-000001 案号202602031 12月04日17:30前答复。"
        );
        assert_eq!(d[3].members.len(), 3, "a unit's digest goes to each member");
    }
}
