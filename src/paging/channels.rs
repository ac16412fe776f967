//! The ways a member is paged: a SIP MESSAGE (RFC 3428) to their SIP URI,
//! an HTTP webhook (generic JSON, or the WeCom / DingTalk group-robot
//! formats) with retries, and an event for the officers' mobile page (a
//! Redis stream the API serves). Each attempt reports its outcome and
//! latency for the ticket's timeline. Pages never carry the caller's
//! identity (rule 第二十条(三)).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::time::Instant;

use crate::roster::Member;
use crate::sip::core::OutRequest;
use crate::sip::transport::Requester;

/// `[paging.webhooks.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_timeout_ms() -> u64 {
    3000
}

fn default_retries() -> u32 {
    3
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    #[default]
    Generic,
    /// 企业微信群机器人.
    Wecom,
    /// 钉钉群机器人.
    Dingtalk,
}

/// What a page says.
#[derive(Debug, Clone)]
pub struct Page {
    pub ticket: String,
    pub category: String,
    pub urgent: bool,
    pub step: usize,
    pub repeat: u32,
    pub note: Option<String>,
}

impl Page {
    /// The text every channel carries: the ticket, never the caller.
    pub fn text(&self) -> String {
        let kind = match self.category.as_str() {
            "violence" => "暴力抗法/突发事件",
            "complaint" => "信访投诉",
            "preservation" => "财产保全",
            "other" => "其他",
            _ => "执行线索",
        };
        let mut t = format!(
            "【市北区执行指挥中心】举报工单 {}（{kind}{}），请立即签收。",
            self.ticket,
            if self.urgent { "，紧急" } else { "" }
        );
        if let Some(n) = &self.note {
            t.push_str(n);
            t.push('。');
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
    /// `delivered`, `answered 486`, `no answer`, `failed: ...`.
    pub outcome: String,
    pub latency_ms: u64,
}

/// Everything a page needs to leave the gateway.
#[derive(Clone)]
pub struct Channels {
    pub sip: Requester,
    pub from_uri: String,
    /// Send SIP pages here instead of to the URI's host.
    pub outbound_proxy: Option<SocketAddr>,
    pub http: reqwest::Client,
    pub webhooks: HashMap<String, WebhookTarget>,
    pub events: redis::aio::ConnectionManager,
    pub prefix: String,
}

/// Where a SIP URI's requests go: an IP literal host, else DNS.
async fn sip_destination(uri: &str) -> Option<SocketAddr> {
    let rest = uri.strip_prefix("sip:")?;
    let hostport = rest.rsplit('@').next()?.split(';').next()?;
    if let Ok(a) = hostport.parse::<SocketAddr>() {
        return Some(a);
    }
    let with_port = if hostport.starts_with('[') || !hostport.contains(':') {
        if hostport.ends_with(']') || !hostport.contains(':') {
            format!("{hostport}:5060")
        } else {
            hostport.to_string()
        }
    } else {
        hostport.to_string()
    };
    tokio::net::lookup_host(with_port).await.ok()?.next()
}

impl Channels {
    /// Pages one member through every contact method they have.
    pub async fn page(&self, m: &Member, page: &Page) -> Vec<Attempt> {
        let text = page.text();
        let mut out = Vec::new();
        let (sip, hook, event) = tokio::join!(
            async {
                match &m.sip {
                    Some(uri) => Some(self.message(m, uri, &text).await),
                    None => None,
                }
            },
            async {
                match &m.webhook {
                    Some(name) => Some(self.webhook(m, name, page, &text).await),
                    None => None,
                }
            },
            self.event(m, page, &text)
        );
        out.extend(sip);
        out.extend(hook);
        out.push(event);
        out
    }

    async fn message(&self, m: &Member, uri: &str, text: &str) -> Attempt {
        let start = Instant::now();
        let attempt = |ok: bool, outcome: String| Attempt {
            member: m.id.clone(),
            channel: "sip_message",
            ok,
            outcome,
            latency_ms: start.elapsed().as_millis() as u64,
        };
        let dest = match self.outbound_proxy {
            Some(p) => Some(p),
            None => sip_destination(uri).await,
        };
        let Some(dest) = dest else {
            return attempt(false, format!("failed: cannot resolve {uri}"));
        };
        let req = OutRequest {
            method: "MESSAGE",
            uri: uri.to_string(),
            from: self.from_uri.clone(),
            content_type: "text/plain;charset=UTF-8".into(),
            body: Bytes::from(text.to_string()),
        };
        match self.sip.send(req, dest).await {
            Some(code) if (200..300).contains(&code) => attempt(true, "delivered".into()),
            Some(code) => attempt(false, format!("answered {code}")),
            None => attempt(false, "no answer".into()),
        }
    }

    async fn webhook(&self, m: &Member, name: &str, page: &Page, text: &str) -> Attempt {
        let start = Instant::now();
        let attempt = |ok: bool, outcome: String| Attempt {
            member: m.id.clone(),
            channel: "webhook",
            ok,
            outcome,
            latency_ms: start.elapsed().as_millis() as u64,
        };
        let Some(target) = self.webhooks.get(name) else {
            return attempt(false, format!("failed: no [paging.webhooks.{name}]"));
        };
        let body = match target.format {
            WebhookFormat::Generic => serde_json::json!({
                "ticket": page.ticket, "category": page.category, "urgent": page.urgent,
                "member": m.id, "step": page.step, "repeat": page.repeat, "text": text,
            }),
            WebhookFormat::Wecom | WebhookFormat::Dingtalk => serde_json::json!({
                "msgtype": "text", "text": { "content": text },
            }),
        };
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
                            let how = if n == 0 {
                                "delivered".to_string()
                            } else {
                                format!("delivered after {} retries", n)
                            };
                            return attempt(true, how);
                        }
                    }
                }
                Ok(resp) => last = format!("HTTP {}", resp.status().as_u16()),
                Err(e) if e.is_timeout() => last = "timeout".into(),
                Err(e) => last = e.to_string(),
            }
        }
        attempt(false, format!("failed: {last}"))
    }

    async fn event(&self, m: &Member, page: &Page, text: &str) -> Attempt {
        let start = Instant::now();
        let mut c = self.events.clone();
        let r: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(format!("{}events", self.prefix))
            .arg("MAXLEN")
            .arg("~")
            .arg(100_000)
            .arg("*")
            .arg("kind")
            .arg("page")
            .arg("member")
            .arg(&m.id)
            .arg("ticket")
            .arg(&page.ticket)
            .arg("text")
            .arg(text)
            .query_async(&mut c)
            .await;
        Attempt {
            member: m.id.clone(),
            channel: "event",
            ok: r.is_ok(),
            outcome: match r {
                Ok(_) => "delivered".into(),
                Err(e) => format!("failed: {e}"),
            },
            latency_ms: start.elapsed().as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_text_never_names_the_caller() {
        let p = Page {
            ticket: "2026-000007".into(),
            category: "violence".into(),
            urgent: true,
            step: 0,
            repeat: 0,
            note: Some("五分钟内未出警".into()),
        };
        assert_eq!(
            p.text(),
            "【市北区执行指挥中心】举报工单 2026-000007（暴力抗法/突发事件，紧急），请立即签收。五分钟内未出警。"
        );
    }

    #[tokio::test]
    async fn sip_destinations() {
        assert_eq!(
            sip_destination("sip:8201@127.0.0.1:5070").await,
            Some("127.0.0.1:5070".parse().unwrap())
        );
        assert_eq!(
            sip_destination("sip:8201@127.0.0.1").await,
            Some("127.0.0.1:5060".parse().unwrap())
        );
        assert_eq!(
            sip_destination("sip:x@[::1]:5080;transport=udp").await,
            Some("[::1]:5080".parse().unwrap())
        );
        assert_eq!(sip_destination("tel:+86123").await, None);
    }
}
