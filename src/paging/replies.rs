//! Replies to SIP MESSAGE pages: a page names the reply that is 签收
//! (`1 <ticket>`, [`channels::reply_code`]); the SIP core hands each
//! MESSAGE over (`TextRequest`, as it hands a REGISTER to the registrar)
//! and this task decides it and answers.
//!
//! Who sent it is never the From alone: the sender is the member whose
//! `message` URI the request answers for, and only when
//!
//! - it comes from a `[sip] trusted` element (the court's PBX; the core
//!   says so, and gives the identity that element asserts: its
//!   P-Asserted-Identity's user, else its From's),
//! - from the address the member's pages go to (the URI's host as
//!   resolved, or `[paging] outbound_proxy`), and
//! - the asserted user is the URI's user, one member's alone.
//!
//! Anyone else gets **403 Sender Not Known** and nothing is looked up or
//! sent (a MESSAGE back to an address only claimed would make the gateway
//! a reflector). A known sender's replies are counted first
//! (`[paging] replies_per_minute` per member, ten times that per source:
//! past either, 403 and nothing looked up), then the reply is read
//! ([`parse`]): its ticket acknowledged as the member's 签收 with `via:
//! "sip_message"` on the timeline. It gets **200**, then a MESSAGE back
//! where their pages go saying what happened ([`Outcome`]): 已签收, 已由某某
//! 签收, a ticket that does not exist or that they may not see (one
//! answer, as the API's 404), one that cannot be acknowledged now, or a
//! reply not understood. Redis unreachable: 503.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::channels::{reply_code, Channels};
use crate::roster::{Member, Roster};
use crate::sip::admission::source_of;
use crate::sip::core::{RegisterAnswer, TextRequest};
use crate::sip::transport::Requester;
use crate::tickets::attempts::Attempt;
use crate::tickets::model::State;
use crate::tickets::{Store, StoreError};

/// The longest reply read: `1 2026-000123` and some spaces.
const MAX_REPLY_BYTES: usize = 64;

/// What a reply asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `1 <ticket>`: 签收.
    Acknowledge(String),
}

/// Full-width digits, hyphen and space (a Chinese phone's keyboard) as
/// their ASCII selves.
fn half_width(c: char) -> char {
    match c {
        '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
        '－' | '—' => '-',
        '\u{3000}' => ' ',
        c => c,
    }
}

/// A ticket number as the store makes them: a year, a hyphen, six digits
/// or more (at most nine).
fn ticket_number(s: &str) -> bool {
    let Some((year, n)) = s.split_once('-') else {
        return false;
    };
    year.len() == 4
        && (6..=9).contains(&n.len())
        && year.bytes().chain(n.bytes()).all(|b| b.is_ascii_digit())
}

/// Reads a reply: `1`, whitespace, a ticket number, nothing else (spaces
/// around are fine, full-width digits too). Anything else, a body that is
/// not UTF-8 or longer than a reply can be, is no reply.
pub fn parse(body: &[u8]) -> Option<Reply> {
    if body.len() > MAX_REPLY_BYTES {
        return None;
    }
    let text: String = std::str::from_utf8(body)
        .ok()?
        .chars()
        .map(half_width)
        .collect();
    let mut words = text.split_whitespace();
    let (code, ticket) = (words.next()?, words.next()?);
    if words.next().is_some() || code != "1" || !ticket_number(ticket) {
        return None;
    }
    Some(Reply::Acknowledge(ticket.to_string()))
}

/// What a reply did, as the MESSAGE back says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 签收 now, by this member.
    Acknowledged(String),
    /// Someone acknowledged it before (this member, or another: named).
    AlreadyBy { ticket: String, by: String },
    /// No such ticket, or not one this member may see (one answer).
    NotFound(String),
    /// In a state 签收 does not apply to (closed, cancelled, in a call).
    NotNow { ticket: String, state: State },
    /// Not a reply the page asked for.
    NotUnderstood,
}

impl Outcome {
    /// The words of the MESSAGE back; `roster` names whoever acknowledged.
    pub fn text(&self, me: &Member, roster: &Roster) -> String {
        let name = |id: &str| {
            roster
                .member(id)
                .map_or_else(|| id.to_string(), |m| format!("{}（{}）", m.name, m.id))
        };
        let head = "【市北区执行指挥中心】";
        match self {
            Outcome::Acknowledged(n) => {
                format!("{head}工单 {n} 已签收（{}，短信回复）。", name(&me.id))
            }
            Outcome::AlreadyBy { ticket, by } if *by == me.id => {
                format!("{head}工单 {ticket} 您已签收，无需再次回复。")
            }
            Outcome::AlreadyBy { ticket, by } => {
                format!("{head}工单 {ticket} 已由{}签收。", name(by))
            }
            Outcome::NotFound(n) => format!("{head}工单 {n} 不存在或您无权签收。"),
            Outcome::NotNow { ticket, state } => {
                format!(
                    "{head}工单 {ticket} 当前为「{}」，不能签收。",
                    crate::tickets::labels::state(*state)
                )
            }
            Outcome::NotUnderstood => format!(
                "{head}未能识别您的回复。签收请回复「{}」（1、空格、工单号）。",
                reply_code("工单号")
            ),
        }
    }
}

/// The inbox task's state.
pub struct Replies {
    pub store: Store,
    pub live: Arc<crate::live::Live>,
    /// Where members' pages go (the MESSAGE back goes there too).
    pub channels: Channels,
    /// `[paging] replies_per_minute`, per member.
    pub per_minute: u32,
}

/// How many MESSAGEs are decided at once.
const IN_FLIGHT: usize = 32;

fn answer(id: u64, status: u16, reason: &'static str) -> RegisterAnswer {
    RegisterAnswer {
        id,
        status,
        reason,
        headers: Vec::new(),
    }
}

impl Replies {
    /// Decides MESSAGEs until `stop` (or the core is gone), each in a task
    /// of its own, at most [`IN_FLIGHT`] at once: the answer on the
    /// request's transaction, then the MESSAGE back.
    pub async fn run(
        self: Arc<Self>,
        rx: mpsc::Receiver<TextRequest>,
        answers: Requester,
        stop: CancellationToken,
    ) {
        crate::requests::each_in_its_task(rx, stop, IN_FLIGHT, |req| {
            let (me, answers) = (self.clone(), answers.clone());
            async move {
                let (a, told) = me.decide(&req).await;
                answers.answer_text(a).await;
                if let Some((member, outcome)) = told {
                    let text = outcome.text(&member, &me.live.get().roster);
                    if let Some(a) = me.channels.tell_by_message(&member, &text).await {
                        tracing::info!(member = %member.id, outcome = %a.outcome, "reply answered by MESSAGE");
                    }
                }
            }
        })
        .await
    }

    /// The member `req` comes from, vouched for as the module says; `None`
    /// for anyone else (or two members at once).
    async fn sender(&self, req: &TextRequest) -> Option<Member> {
        let user = req.asserted.as_deref()?;
        let from: IpAddr = req.origin.ip().to_canonical();
        let live = self.live.get();
        let mut found: Option<Member> = None;
        for m in live.roster.members() {
            let Some(uri) = &m.message else { continue };
            let uri_user = crate::sip::message::display_and_user(uri).1;
            if uri_user.as_deref() != Some(user) {
                continue;
            }
            let Some(dest) = self.channels.dial.destination(uri).await else {
                continue;
            };
            if dest.ip().to_canonical() != from {
                continue;
            }
            if found.is_some() {
                return None;
            }
            found = Some(m.clone());
        }
        found
    }

    /// The answer to one MESSAGE, and what to tell whom after it.
    pub async fn decide(&self, req: &TextRequest) -> (RegisterAnswer, Option<(Member, Outcome)>) {
        let source = source_of(req.origin.ip()).to_string();
        let Some(member) = self.sender(req).await else {
            let claimed = crate::requests::log_safe(req.from_user.as_deref().unwrap_or(""));
            tracing::warn!(target: "security", "SECURITY event=reply_refused src={source} member=\"{claimed}\" reason=\"a MESSAGE from an address that vouches for no member\" count=1");
            return (answer(req.id, 403, "Sender Not Known"), None);
        };
        match self.acknowledge(req, &member, &source).await {
            Ok(Some(outcome)) => (answer(req.id, 200, "OK"), Some((member, outcome))),
            Ok(None) => (answer(req.id, 403, "Too Many Replies"), None),
            Err(e) => {
                tracing::warn!(error = %e, member = %member.id, "reply: Redis unavailable: 503");
                let mut a = answer(req.id, 503, "Service Unavailable");
                a.headers.push(("Retry-After", "30".into()));
                (a, None)
            }
        }
    }

    /// Counted, read, and 签收 when it says so; `None`: over the limit.
    async fn acknowledge(
        &self,
        req: &TextRequest,
        member: &Member,
        source: &str,
    ) -> Result<Option<Outcome>, StoreError> {
        let (by_member, by_source) = self
            .store
            .count_attempt(Attempt::Reply, &member.id, source)
            .await?;
        let limit = i64::from(self.per_minute);
        if by_member > limit || by_source > limit * 10 {
            tracing::warn!(target: "security", "SECURITY event=reply_limited src={source} member=\"{}\" reason=\"more than {limit} replies a minute\" count=1", member.id);
            return Ok(None);
        }
        let Some(Reply::Acknowledge(n)) = parse(&req.body) else {
            return Ok(Some(Outcome::NotUnderstood));
        };
        let live = self.live.get();
        let roster = &live.roster;
        let t = match self.store.get(&n).await {
            Ok(t) => t,
            Err(StoreError::NotFound(_)) => return Ok(Some(Outcome::NotFound(n))),
            Err(e) => return Err(e),
        };
        if !self.store.may_see(member, roster, &t).await? {
            return Ok(Some(Outcome::NotFound(n)));
        }
        let ack = crate::tickets::actions::acknowledge(
            &member.id,
            None,
            jiff::Timestamp::now(),
            serde_json::json!({"via": "sip_message"}),
        );
        let outcome = match self.store.act(&n, &ack).await {
            Ok(_) => {
                tracing::info!(ticket = %n, member = %member.id, "acknowledged by a MESSAGE reply");
                // A reply that did what it said is not held against them.
                let _ = self
                    .store
                    .uncount_attempt(Attempt::Reply, &member.id, source)
                    .await;
                Outcome::Acknowledged(n)
            }
            Err(StoreError::Illegal { from, .. }) => {
                let now = self.store.get(&n).await?;
                match now.register.dispatch.acknowledged_by {
                    Some(by) => Outcome::AlreadyBy { ticket: n, by },
                    None => Outcome::NotNow {
                        ticket: n,
                        state: from,
                    },
                }
            }
            Err(StoreError::NotFound(_)) => Outcome::NotFound(n),
            Err(e) => return Err(e),
        };
        Ok(Some(outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_one_then_a_ticket_number_and_nothing_else() {
        let ack = |n: &str| Some(Reply::Acknowledge(n.to_string()));
        assert_eq!(parse(b"1 2026-000123"), ack("2026-000123"));
        assert_eq!(parse(b"  1\t2026-000123 \r\n"), ack("2026-000123"));
        // A Chinese phone's keyboard: full-width digits and space.
        assert_eq!(
            parse("１\u{3000}２０２６－０００１２３".as_bytes()),
            ack("2026-000123")
        );
        assert_eq!(parse(b"1 2026-1234567"), ack("2026-1234567"));
        for junk in [
            &b""[..],
            b"1",
            b"2026-000123",
            b"2 2026-000123",
            b"1 2026-000123 ok",
            "1 2026-000123 签收".as_bytes(),
            b"11 2026-000123",
            b"1 2026-00012",
            b"1 2026-0001234567",
            b"1 26-000123",
            b"1 2026-00012a",
            b"1 2026_000123",
            b"1 ../2026-000123",
            b"1 2026-000123\x00",
            // Not UTF-8.
            b"1 2026-000123\xff",
            b"\xc3\x28 2026-000123",
        ] {
            assert_eq!(parse(junk), None, "{:?}", String::from_utf8_lossy(junk));
        }
        // Huge bodies are not read at all.
        let mut huge = b"1 2026-000123".to_vec();
        huge.extend(std::iter::repeat_n(b' ', 1 << 20));
        assert_eq!(parse(&huge), None);
        assert_eq!(parse(&[b'1'; MAX_REPLY_BYTES + 1]), None);
    }

    #[test]
    fn each_outcome_says_what_happened_and_names_who_acknowledged() {
        let roster = Roster::parse(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/roster.toml"),
            )
            .unwrap(),
            "roster.toml",
        )
        .unwrap();
        let me = roster.member("u1-officer").unwrap().clone();
        let n = "2026-000123".to_string();
        let says = |o: Outcome| o.text(&me, &roster);
        assert!(says(Outcome::Acknowledged(n.clone())).contains("工单 2026-000123 已签收"));
        let other = says(Outcome::AlreadyBy {
            ticket: n.clone(),
            by: "p-sun".into(),
        });
        assert!(other.contains("已由孙法警（p-sun）签收"), "{other}");
        assert!(says(Outcome::AlreadyBy {
            ticket: n.clone(),
            by: "u1-officer".into()
        })
        .contains("您已签收"));
        assert!(says(Outcome::NotFound(n.clone())).contains("不存在或您无权签收"));
        assert!(says(Outcome::NotNow {
            ticket: n,
            state: State::Closed
        })
        .contains("已办结"));
        assert!(says(Outcome::NotUnderstood).contains("1 工单号"));
    }
}
