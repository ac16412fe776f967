//! The ways a member is paged: a SIP MESSAGE (RFC 3428) to their SIP URI,
//! an HTTP webhook (generic JSON, or the WeCom / DingTalk group-robot
//! formats) with retries, and an event for the officers' mobile page (a
//! Redis stream the API serves). Each attempt reports its outcome and
//! latency for the ticket's timeline. Pages never carry the caller's
//! identity (rule 第二十条(三)). Besides pages: texts that are no page
//! (handovers, notices; the channel watch's leave out the receivers it
//! found broken) and the watch's test deliveries to a receiver.
//!
//! A page through a text channel (MESSAGE, webhook) ends with a link that
//! opens its ticket on the mobile page as that member, once, for a while
//! (one per member and page, made by [`LinkMaker`] when `[http]
//! public_url` is set), and a MESSAGE page with the reply that is 签收
//! (`paging::replies`) when replies are taken. The mobile page's own event
//! carries neither: the page is already open, and a link there would be a
//! credential in clear in Redis.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::call::dial::{Dialer, Route};
use crate::call::outbound::Outcome;
use crate::roster::Member;
use crate::scripts::question::{Answer, QuestionScript};
use crate::sip::core::OutRequest;
use crate::webhook::{WebhookFormat, WebhookTarget};

/// What a page says.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub ticket: String,
    pub category: String,
    pub urgent: bool,
    pub step: usize,
    pub repeat: u32,
    pub note: Option<String>,
    /// The partner whose call it is (`[partners]`), named in clear: a
    /// police station or a court is no informant.
    pub partner: Option<String>,
    /// 本案7日内第N次举报, when earlier reports on the case are linked.
    pub repeat_report: Option<String>,
    /// A clock's alarm (a deadline near or passed: the note says which),
    /// not a call to 签收.
    pub alarm: bool,
    /// The first words of the caller's message as the transcriber read
    /// them (a repeat or a later step, once it is made), cut to
    /// [`TRANSCRIPT_CHARS`].
    pub transcript: Option<String>,
}

/// How much of a transcript a text page carries (characters).
pub const TRANSCRIPT_CHARS: usize = 60;

/// Makes a page's link for a member and a ticket (`api::auth`'s
/// credential, wired by the app): its URL, `None` when it cannot be made
/// (Redis down: the page goes without it).
pub type LinkMaker = Arc<
    dyn Fn(String, String) -> futures::future::BoxFuture<'static, Option<String>> + Send + Sync,
>;

/// The reply to a MESSAGE page that is 签收: `1 <ticket>`.
pub fn reply_code(ticket: &str) -> String {
    format!("1 {ticket}")
}

impl Page {
    /// The text with what a text channel adds for one member: the reply
    /// that is 签收 (`reply`, a MESSAGE page that asks for it) and the
    /// link that opens the ticket. Neither names the caller.
    pub fn text_with(&self, link: Option<&str>, reply: bool) -> String {
        let mut t = self.text();
        if reply && !self.alarm && !self.ticket.is_empty() {
            t.push_str(&format!("回复「{}」即签收。", reply_code(&self.ticket)));
        }
        if let Some(link) = link {
            let what = if self.alarm {
                "查看工单"
            } else {
                "一键签收"
            };
            t.push_str(&format!("{what}（限本人一次有效）：{link}"));
        }
        t
    }

    /// The text every channel carries: the ticket, never the caller.
    pub fn text(&self) -> String {
        // No category (or one unknown here) is paged as a lead.
        let kind = crate::tickets::model::Category::ALL
            .iter()
            .find(|c| c.as_str() == self.category)
            .map_or(
                crate::tickets::labels::category(crate::tickets::model::Category::Lead),
                |c| crate::tickets::labels::category(*c),
            );
        let mut t = format!(
            "【市北区执行指挥中心】{}工单 {}（{kind}{}）",
            if self.alarm { "" } else { "举报" },
            self.ticket,
            if self.urgent { "，紧急" } else { "" }
        );
        if let Some(r) = &self.repeat_report {
            t.push('，');
            t.push_str(r);
        }
        t.push_str(if self.alarm {
            "。"
        } else {
            "，请立即签收。"
        });
        if let Some(p) = &self.partner {
            t.push_str(&format!("协助单位：{p}。"));
        }
        if let Some(n) = &self.note {
            t.push_str(n);
            t.push('。');
        }
        if let Some(words) = &self.transcript {
            let cut: String = words.chars().take(TRANSCRIPT_CHARS).collect();
            let more = if words.chars().count() > TRANSCRIPT_CHARS {
                "…"
            } else {
                ""
            };
            t.push_str(&format!("留言（机器转写）：{cut}{more}。"));
        }
        t
    }
}

/// One try through one channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attempt {
    pub member: String,
    pub channel: &'static str,
    pub ok: bool,
    /// The member pressed 1 on a paging call: 签收.
    pub acknowledged: bool,
    /// The member pressed 2: pass to the next person.
    #[serde(skip)]
    pub passed: bool,
    /// `delivered`, `answered 486`, `no answer`, `failed: ...`.
    pub outcome: String,
    pub latency_ms: u64,
    /// An answered paging call's recording (the officer's 签收 is evidence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<crate::tickets::model::RecordingLink>,
}

/// Everything a page needs to leave the gateway: the calls (the member
/// dialler, `crate::call::dial`), SIP MESSAGE, webhooks, the mobile page's
/// events.
#[derive(Clone)]
pub struct Channels {
    pub dial: Dialer,
    /// The webhooks' HTTP client (`crate::webhook::client`).
    pub http: reqwest::Client,
    /// Makes the one-tap links of text pages (none without `[http]
    /// public_url`, or for a test page).
    pub links: Option<LinkMaker>,
    /// MESSAGE pages name the reply that is 签收 (`[paging]
    /// message_replies`).
    pub replies: bool,
}

/// A webhook failure in words, its source chain included (the URL taken
/// out beforehand).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

impl Channels {
    /// Pages one member through every contact method they have.
    pub async fn page(&self, m: &Member, page: &Page) -> Vec<Attempt> {
        self.page_by(m, page, true).await
    }

    /// As [`Channels::page`], without ringing their phones: SIP MESSAGE,
    /// webhook, the mobile page's event (a reminder that may come at any
    /// hour).
    pub async fn page_in_writing(&self, m: &Member, page: &Page) -> Vec<Attempt> {
        self.page_by(m, page, false).await
    }

    async fn page_by(&self, m: &Member, page: &Page, ring: bool) -> Vec<Attempt> {
        let text = page.text();
        // One link per member and page, in each of their text channels:
        // opening one spends it for all.
        let link = match (&self.links, m.message.is_some() || m.webhook.is_some()) {
            (Some(make), true) if !page.ticket.is_empty() => {
                make(m.id.clone(), page.ticket.clone()).await
            }
            _ => None,
        };
        let by_message = page.text_with(link.as_deref(), self.replies);
        let mut out = Vec::new();
        let (calls, sip, hook, event) = tokio::join!(
            async {
                let routes = match ring {
                    true => self.dial.routes(m).await,
                    false => Vec::new(),
                };
                futures::future::join_all(routes.into_iter().map(|r| self.call_via(m, r, page)))
                    .await
            },
            async {
                match &m.message {
                    Some(uri) => Some(self.message(m, uri, &by_message).await),
                    None => None,
                }
            },
            async {
                match &m.webhook {
                    Some(name) => Some(self.webhook(m, name, page, &text, link.as_deref()).await),
                    None => None,
                }
            },
            self.event(m, page, &text)
        );
        out.extend(calls);
        out.extend(sip);
        out.extend(hook);
        out.push(event);
        out
    }

    /// A text for `m` through their text channels (SIP MESSAGE, webhook),
    /// not about one ticket (a handover's summary).
    pub async fn notify(&self, m: &Member, text: &str) -> Vec<Attempt> {
        self.notify_about(m, "handover", text).await
    }

    /// As [`Channels::notify`], the webhook's `category` saying what about
    /// (`handover`, `login_locked`).
    pub async fn notify_about(&self, m: &Member, category: &str, text: &str) -> Vec<Attempt> {
        self.notify_avoiding(m, category, text, &[]).await
    }

    /// As [`Channels::notify_about`], leaving out the webhook receivers
    /// named in `broken` (the channel watch's notices: a receiver that
    /// fails carries no news, least of all its own failure).
    pub async fn notify_avoiding(
        &self,
        m: &Member,
        category: &str,
        text: &str,
        broken: &[String],
    ) -> Vec<Attempt> {
        let page = Page {
            category: category.into(),
            ..Page::default()
        };
        let mut out = Vec::new();
        if let Some(uri) = &m.message {
            out.push(self.message(m, uri, text).await);
        }
        if let Some(name) = m.webhook.as_ref().filter(|n| !broken.contains(n)) {
            out.push(self.webhook(m, name, &page, text, None).await);
        }
        out
    }

    /// A test delivery of `text` to the webhook receiver `name`, as a page
    /// goes (its format, timeout and retries): how it went (`Ok`: as
    /// delivered; `Err`: why not, never the URL). The channel watch's.
    pub async fn test_webhook(&self, name: &str, text: &str) -> Result<String, String> {
        let body = |target: &WebhookTarget| match target.format {
            WebhookFormat::Generic => serde_json::json!({
                "ticket": "", "category": "channel_test", "urgent": false,
                "member": null, "step": 0, "repeat": 0, "text": text,
            }),
            WebhookFormat::Wecom | WebhookFormat::Dingtalk => robot_text(text),
        };
        self.deliver(name, body).await
    }

    /// A text to `m` by SIP MESSAGE only, where their pages go (the answer
    /// to a reply: never to where the reply claims to come from).
    pub async fn tell_by_message(&self, m: &Member, text: &str) -> Option<Attempt> {
        let uri = m.message.as_ref()?;
        Some(self.message(m, uri, text).await)
    }

    async fn message(&self, m: &Member, uri: &str, text: &str) -> Attempt {
        let start = Instant::now();
        let attempt = |ok: bool, outcome: String| Attempt {
            member: m.id.clone(),
            channel: "sip_message",
            ok,
            acknowledged: false,
            passed: false,
            outcome,
            latency_ms: start.elapsed().as_millis() as u64,
            recording: None,
        };
        let dest = self.dial.destination(uri).await;
        let Some(dest) = dest else {
            return attempt(false, format!("failed: cannot resolve {uri}"));
        };
        let req = OutRequest {
            method: "MESSAGE",
            uri: uri.to_string(),
            from: self.dial.from_uri.clone(),
            content_type: "text/plain;charset=UTF-8".into(),
            body: Bytes::from(text.to_string()),
            route: self.dial.preloaded_route(),
        };
        match self.dial.sip.send(req, dest).await {
            Some(code) if (200..300).contains(&code) => attempt(true, "delivered".into()),
            Some(code) => attempt(false, format!("answered {code}")),
            None => attempt(false, "no answer".into()),
        }
    }

    /// Calls the member, plays the ticket number and asks for a key:
    /// 1 = 签收, 2 = pass on. Only a key counts: an answering machine or a
    /// hang-up does not acknowledge.
    async fn call_via(&self, m: &Member, route: Route, page: &Page) -> Attempt {
        let start = Instant::now();
        let channel = route.channel;
        let attempt = |ok: bool, acknowledged: bool, outcome: String| Attempt {
            member: m.id.clone(),
            channel,
            ok,
            acknowledged,
            passed: outcome.starts_with("key 2"),
            outcome,
            latency_ms: start.elapsed().as_millis() as u64,
            recording: None,
        };
        let partner = page
            .partner
            .as_deref()
            .and_then(|name| self.dial.live.get().partner_name_prompt(name));
        let script = QuestionScript::new(
            &page.ticket,
            &page.category,
            partner,
            self.dial.plays,
            self.dial.key_timeout,
        );
        let call = match self.dial.call_along(
            &m.id,
            route,
            script,
            self.dial.ring_timeout,
            Some(&page.ticket),
        ) {
            Ok(c) => c,
            Err(e) => return attempt(false, false, e),
        };
        match crate::call::outbound::place(call).await {
            Outcome::NotAnswered(reason) => {
                attempt(false, false, crate::call::outbound::not_answered(reason))
            }
            Outcome::Lost(why) => attempt(false, false, format!("failed: {why}")),
            Outcome::Answered { answer, recording } => {
                let (ok, acknowledged, outcome) = match answer {
                    Answer::Key('1') => (true, true, "key 1: acknowledged"),
                    Answer::Key(_) => (true, false, "key 2: passed on"),
                    Answer::NoKey => (false, false, "answered, no key"),
                    Answer::HungUp => (false, false, "answered, hung up without a key"),
                };
                Attempt {
                    recording: recording.map(crate::call::outbound::link),
                    ..attempt(ok, acknowledged, outcome.to_string())
                }
            }
        }
    }

    /// `text` about `page` to the receiver `name`; a page's with the
    /// member's `link`, unless the receiver is one several people read
    /// (`links = false`).
    async fn webhook(
        &self,
        m: &Member,
        name: &str,
        page: &Page,
        text: &str,
        link: Option<&str>,
    ) -> Attempt {
        let start = Instant::now();
        let body = |target: &WebhookTarget| {
            let link = link.filter(|_| target.links);
            let text = match link {
                Some(_) => page.text_with(link, false),
                None => text.to_string(),
            };
            match target.format {
                WebhookFormat::Generic => serde_json::json!({
                "ticket": page.ticket, "category": page.category, "urgent": page.urgent,
                "member": m.id, "step": page.step, "repeat": page.repeat, "text": text,
                "link": link,
                }),
                WebhookFormat::Wecom | WebhookFormat::Dingtalk => robot_text(&text),
            }
        };
        let (ok, outcome) = match self.deliver(name, body).await {
            Ok(how) => (true, how),
            Err(why) => (false, format!("failed: {why}")),
        };
        Attempt {
            member: m.id.clone(),
            channel: "webhook",
            ok,
            acknowledged: false,
            passed: false,
            outcome,
            latency_ms: start.elapsed().as_millis() as u64,
            recording: None,
        }
    }

    /// Posts `body` (made for the receiver's format) to the webhook
    /// receiver `name` with its timeout and retries: `Ok` says how it was
    /// delivered, `Err` why not (a robot's 200 with a non-zero `errcode`
    /// is a failure; never the URL: a robot's key is in it).
    async fn deliver(
        &self,
        name: &str,
        body: impl Fn(&WebhookTarget) -> serde_json::Value,
    ) -> Result<String, String> {
        let cfg = self.dial.live.get();
        let Some(target) = cfg.webhooks.get(name) else {
            return Err(format!("no [paging.webhooks.{name}]"));
        };
        let body = body(target);
        let mut last = String::new();
        for n in 0..=target.retries {
            if n > 0 {
                tokio::time::sleep(Duration::from_millis(200 << (n - 1).min(4))).await;
            }
            let r = self
                .http
                .post(&target.url)
                .timeout(Duration::from_millis(target.timeout_ms))
                .json(&body)
                .send()
                .await;
            match r {
                Ok(resp) if resp.status().is_success() => {
                    // The robots answer 200 with an error code in the body.
                    let code = resp
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|v| v.get("errcode").and_then(|c| c.as_i64()));
                    match code {
                        Some(c) if c != 0 => last = format!("errcode {c}"),
                        _ => {
                            return Ok(if n == 0 {
                                "delivered".to_string()
                            } else {
                                format!("delivered after {} retries", n)
                            });
                        }
                    }
                }
                Ok(resp) => last = format!("HTTP {}", resp.status().as_u16()),
                Err(e) if e.is_timeout() => last = "timeout".into(),
                // Never the URL: a robot's key is in its query string, and
                // this text goes to the log and the ticket's timeline.
                Err(e) => last = describe(&e.without_url()),
            }
        }
        Err(format!("receiver {name}: {last}"))
    }

    async fn event(&self, m: &Member, page: &Page, text: &str) -> Attempt {
        let start = Instant::now();
        let r = self
            .dial
            .store
            .add_page_event(&m.id, &page.ticket, text)
            .await;
        Attempt {
            member: m.id.clone(),
            channel: "event",
            ok: r.is_ok(),
            acknowledged: false,
            passed: false,
            outcome: match r {
                Ok(()) => "delivered".into(),
                Err(e) => format!("failed: {e}"),
            },
            latency_ms: start.elapsed().as_millis() as u64,
            recording: None,
        }
    }
}

/// A text message in the WeCom / DingTalk group robots' format.
fn robot_text(text: &str) -> serde_json::Value {
    serde_json::json!({ "msgtype": "text", "text": { "content": text } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_page_carries_the_first_sixty_characters_of_the_transcript() {
        let p = Page {
            ticket: "2026-000001".into(),
            category: "lead".into(),
            transcript: Some("被执行人住在辽宁路一百二十号".repeat(5)),
            ..Default::default()
        };
        let t = p.text_with(Some("https://h/l/x"), false);
        let words = t.split("留言（机器转写）：").nth(1).unwrap();
        let (said, rest) = words.split_once('…').unwrap();
        assert_eq!(said.chars().count(), TRANSCRIPT_CHARS);
        assert!(rest.starts_with("。"), "{t}");
        assert!(t.ends_with("https://h/l/x"), "the link still last: {t}");
        let short = Page {
            transcript: Some("在辽宁路".into()),
            ..p
        };
        assert!(short.text().ends_with("留言（机器转写）：在辽宁路。"));
    }

    #[test]
    fn page_text_never_names_the_caller() {
        let p = Page {
            ticket: "2026-000007".into(),
            category: "violence".into(),
            urgent: true,
            step: 0,
            repeat: 0,
            note: Some("五分钟内未出警".into()),
            partner: None,
            repeat_report: None,
            alarm: false,
            transcript: None,
        };
        assert_eq!(
            p.text(),
            "【市北区执行指挥中心】举报工单 2026-000007（暴力抗法/突发事件，紧急），请立即签收。五分钟内未出警。"
        );
        let linked = Page {
            category: "lead".into(),
            urgent: false,
            note: None,
            repeat_report: Some("本案7日内第3次举报".into()),
            ..p.clone()
        };
        assert_eq!(
            linked.text(),
            "【市北区执行指挥中心】举报工单 2026-000007（执行线索），本案7日内第3次举报，请立即签收。"
        );
        let alarm = Page {
            alarm: true,
            note: Some("已出警，超过到场时限（10:30）仍未到场".into()),
            ..linked
        };
        assert_eq!(
            alarm.text(),
            "【市北区执行指挥中心】工单 2026-000007（执行线索），本案7日内第3次举报。已出警，超过到场时限（10:30）仍未到场。"
        );
        // A partner is named (it is no informant).
        let p = Page {
            category: "partner".into(),
            urgent: true,
            note: None,
            partner: Some("市北分局辽宁路派出所".into()),
            ..p
        };
        assert_eq!(
            p.text(),
            "【市北区执行指挥中心】举报工单 2026-000007（公安/协助单位，紧急），请立即签收。协助单位：市北分局辽宁路派出所。"
        );
    }

    /// A text channel's page names the reply (MESSAGE) and the link; an
    /// alarm asks for no 签收; a notice (no ticket) for nothing.
    #[test]
    fn a_text_page_names_the_reply_and_the_link() {
        let p = Page {
            ticket: "2026-000123".into(),
            category: "lead".into(),
            ..Page::default()
        };
        let link = "https://hotline.court.example/#ticket=2026-000123&link=abc";
        assert_eq!(
            p.text_with(Some(link), true),
            format!(
                "{}回复「1 2026-000123」即签收。一键签收（限本人一次有效）：{link}",
                p.text()
            )
        );
        assert_eq!(p.text_with(None, false), p.text());
        let alarm = Page {
            alarm: true,
            ..p.clone()
        };
        assert_eq!(
            alarm.text_with(Some(link), true),
            format!("{}查看工单（限本人一次有效）：{link}", alarm.text())
        );
        let notice = Page {
            ticket: String::new(),
            ..p
        };
        assert!(!notice.text_with(None, true).contains("回复"));
    }
}
