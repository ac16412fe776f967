//! The ways a member is paged: a SIP MESSAGE (RFC 3428) to their SIP URI,
//! an HTTP webhook (generic JSON, or the WeCom / DingTalk group-robot
//! formats) with retries, and an event for the officers' mobile page (a
//! Redis stream the API serves). Each attempt reports its outcome and
//! latency for the ticket's timeline. Pages never carry the caller's
//! identity (rule 第二十条(三)).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use std::net::IpAddr;
use std::sync::Arc;

use crate::call::page::{Outcome, PageCall};
use crate::intake::page::{Answer, PageScript};
use crate::media::ports::PortPool;
use crate::roster::{Member, REGISTERED};
use crate::sip::core::{Dial, OutRequest};
use crate::sip::transport::{Egress, Requester};
use crate::webhook::WebhookFormat;

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

/// Everything a page needs to leave the gateway.
#[derive(Clone)]
pub struct Channels {
    pub sip: Requester,
    pub from_uri: String,
    /// Send SIP pages here instead of to the URI's host.
    pub outbound_proxy: Option<SocketAddr>,
    pub http: reqwest::Client,
    /// The webhook receivers and prompts in force (taken at each page).
    pub live: Arc<crate::live::Live>,
    /// For paging calls: RTP ports, our address in SDP, the prompts.
    pub ports: Arc<PortPool>,
    pub advertise_ip: Option<IpAddr>,
    /// Ringing longer is cancelled; after the question, this long for a key.
    pub ring_timeout: Duration,
    pub key_timeout: Duration,
    /// Times the announcement is played when no key comes.
    pub plays: u32,
    /// No RTP from the officer's phone for this long ends the call.
    pub media_timeout: Duration,
    /// `(user, password)` when the PBX or trunk challenges our calls.
    pub credentials: Option<(String, String)>,
    /// How `sips:` members' certificates are checked (`[paging] tls_ca`,
    /// else the webpki roots), loaded once.
    pub sips: Arc<rustls::ClientConfig>,
    /// The court's trunk and its address: members' phones are paged
    /// through it; without one a phone number is no channel.
    pub trunk: Option<(crate::paging::trunk::TrunkSettings, SocketAddr)>,
    /// Where paging calls are recorded (none: not recorded, e.g. a test
    /// page).
    pub recordings: Option<std::path::PathBuf>,
    /// The events stream of the mobile page; the registrar's bindings of
    /// softphones (`sip = "registered"`), and this gateway's name in them:
    /// a flow it holds is called back on.
    pub store: crate::tickets::Store,
    pub gateway: String,
}

/// Softphones of one member called at once, at most.
const SOFTPHONES: usize = 3;

/// One way to call a member: the channel's name, the Request-URI, how the
/// call leaves (or why it cannot).
pub struct Route {
    pub channel: &'static str,
    pub uri: String,
    via: Result<Via, String>,
}

/// How a paging call leaves: where to, as whom, through which proxy.
struct Via {
    dest: SocketAddr,
    from_uri: String,
    credentials: Option<(String, String)>,
    route: Vec<String>,
    /// How it leaves: a UDP socket, a softphone's flow, the trunk's TCP
    /// connection.
    egress: Egress,
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

/// Where a SIP URI's requests go: an IP literal host, else DNS.
async fn sip_destination(uri: &str) -> Option<SocketAddr> {
    let (rest, port) = match uri.strip_prefix("sips:") {
        Some(rest) => (rest, 5061),
        None => (uri.strip_prefix("sip:")?, 5060),
    };
    let hostport = rest.rsplit('@').next()?.split(';').next()?;
    if let Ok(a) = hostport.parse::<SocketAddr>() {
        return Some(a);
    }
    let with_port = if hostport.starts_with('[') || !hostport.contains(':') {
        if hostport.ends_with(']') || !hostport.contains(':') {
            format!("{hostport}:{port}")
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
        let (calls, sip, hook, event) = tokio::join!(
            async {
                let routes = self.routes(m).await;
                futures::future::join_all(routes.into_iter().map(|r| self.call_via(m, r, page)))
                    .await
            },
            async {
                match &m.message {
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
        let page = Page {
            ticket: String::new(),
            category: category.into(),
            urgent: false,
            step: 0,
            repeat: 0,
            note: None,
        };
        let mut out = Vec::new();
        if let Some(uri) = &m.message {
            out.push(self.message(m, uri, text).await);
        }
        if let Some(name) = &m.webhook {
            out.push(self.webhook(m, name, &page, text).await);
        }
        out
    }

    /// Every way a call reaches `m`: their SIP URI (or their registered
    /// softphones), their phone through the trunk. A way that cannot be
    /// taken says why.
    pub async fn routes(&self, m: &Member) -> Vec<Route> {
        let mut out = match m.sip.as_deref() {
            Some(REGISTERED) => self.registered(m).await,
            Some(uri) => vec![self.sip_route(uri).await],
            None => Vec::new(),
        };
        if let Some(phone) = &m.phone {
            out.extend(self.phone_route(phone));
        }
        out
    }

    /// A call to any phone number through the trunk (none without one).
    pub fn phone_route(&self, phone: &str) -> Option<Route> {
        let (trunk, dest) = self.trunk.as_ref()?;
        let via = trunk.uri(phone).map_err(|e| format!("failed: {e}"));
        Some(Route {
            channel: "phone",
            uri: via
                .as_ref()
                .map_or_else(|_| phone.to_string(), Clone::clone),
            via: via.map(|_| Via {
                dest: *dest,
                from_uri: trunk.from_uri(),
                credentials: trunk.credentials(),
                route: vec![trunk.route(*dest)],
                egress: trunk.egress(),
            }),
        })
    }

    /// A call to an informant's number through the trunk, or why the court
    /// does not dial it (no trunk, or the dial plan): in words that never
    /// name the number (rule 第二十条(三)).
    pub fn informant_route(&self, number: &str) -> Result<Route, String> {
        let route = self
            .phone_route(number)
            .ok_or_else(|| "no [trunk] to dial the informant through".to_string())?;
        match &route.via {
            Ok(_) => Ok(route),
            Err(e) => Err(format!(
                "the informant's number: {}",
                e.trim_start_matches("failed: ")
            )),
        }
    }

    /// Where a page to `uri` goes: the outbound proxy when one is set.
    async fn destination(&self, uri: &str) -> Option<SocketAddr> {
        match self.outbound_proxy {
            Some(p) => Some(p),
            None => sip_destination(uri).await,
        }
    }

    /// The outbound proxy as a pre-loaded route (RFC 3261 §8.1.2): the
    /// Request-URI stays the member's, the proxy is named in Route.
    fn preloaded_route(&self) -> Vec<String> {
        self.outbound_proxy
            .map(|p| crate::sip::dialog::loose_route(p, crate::sip::message::Transport::Udp))
            .into_iter()
            .collect()
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
        let dest = self.destination(uri).await;
        let Some(dest) = dest else {
            return attempt(false, format!("failed: cannot resolve {uri}"));
        };
        let req = OutRequest {
            method: "MESSAGE",
            uri: uri.to_string(),
            from: self.from_uri.clone(),
            content_type: "text/plain;charset=UTF-8".into(),
            body: Bytes::from(text.to_string()),
            route: self.preloaded_route(),
        };
        match self.sip.send(req, dest).await {
            Some(code) if (200..300).contains(&code) => attempt(true, "delivered".into()),
            Some(code) => attempt(false, format!("answered {code}")),
            None => attempt(false, "no answer".into()),
        }
    }

    /// A call to a SIP URI: through the outbound proxy, if any; a `sips:`
    /// URI (or `;transport=tls`) over TLS to its host, one connection per
    /// destination reused by every call, the certificate checked against
    /// `[paging] tls_ca` and the URI's host.
    async fn sip_route(&self, uri: &str) -> Route {
        let tls = uri
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("sips:"))
            || uri.to_ascii_lowercase().contains(";transport=tls");
        let via = match (self.destination(uri).await, tls) {
            (None, _) => Err(format!("failed: cannot resolve {uri}")),
            (Some(_), true) if self.outbound_proxy.is_some() => Err(format!(
                "failed: {uri} is over TLS, which [paging] outbound_proxy is not"
            )),
            (Some(dest), true) => match self.tls_to(uri) {
                Ok(checked) => {
                    let conn = crate::sip::transport::tls_conn_for(dest);
                    self.sip.connect_tls(conn, checked).await;
                    Ok(Via {
                        dest,
                        from_uri: self.from_uri.clone(),
                        credentials: self.credentials.clone(),
                        route: Vec::new(),
                        egress: Egress::Tls(conn),
                    })
                }
                Err(e) => Err(format!("failed: {e}")),
            },
            (Some(dest), false) => Ok(Via {
                dest,
                from_uri: self.from_uri.clone(),
                credentials: self.credentials.clone(),
                route: self.preloaded_route(),
                egress: Egress::Udp,
            }),
        };
        Route {
            channel: "call",
            uri: uri.to_string(),
            via,
        }
    }

    /// How a TLS connection to `uri`'s host checks it.
    fn tls_to(&self, uri: &str) -> Result<crate::sip::transport::ClientTls, String> {
        let host = uri
            .split_once(':')
            .map(|(_, r)| r)
            .and_then(|r| r.rsplit('@').next())
            .and_then(|h| h.split(';').next())
            .map(|h| match h.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(v6),
                None => h.rsplit_once(':').map_or(h, |(host, _)| host),
            })
            .ok_or_else(|| format!("{uri}: no host"))?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{uri}: {e}"))?;
        Ok(crate::sip::transport::ClientTls {
            config: self.sips.clone(),
            name,
        })
    }

    /// A member's registered softphones (at most `SOFTPHONES`), each to its
    /// Contact, over the flow its REGISTER came on when this gateway holds
    /// it (the same UDP socket, or the same TCP connection, so the
    /// softphone's NAT lets the INVITE in), else to the address it
    /// registered from.
    async fn registered(&self, m: &Member) -> Vec<Route> {
        let failed = |why: String| Route {
            channel: "registered",
            uri: String::new(),
            via: Err(why),
        };
        let now = jiff::Timestamp::now().as_millisecond();
        let bindings = match self.store.bindings(&m.id, now).await {
            Ok(b) => b,
            Err(e) => return vec![failed(format!("failed: the registrar's bindings: {e}"))],
        };
        if bindings.is_empty() {
            return vec![failed("no softphone registered".into())];
        }
        let route = |b: &crate::tickets::softphones::Binding| {
            let flow = crate::registrar::flow_of(b);
            let via = match flow {
                Some(f) if b.gateway == self.gateway => Ok(Via {
                    dest: b.source,
                    from_uri: self.from_uri.clone(),
                    credentials: None,
                    route: Vec::new(),
                    egress: Egress::Flow(f),
                }),
                Some(f) if f.transport() == crate::sip::message::Transport::Udp => Ok(Via {
                    dest: b.source,
                    from_uri: self.from_uri.clone(),
                    credentials: None,
                    route: Vec::new(),
                    egress: Egress::Udp,
                }),
                _ => Err(format!(
                    "failed: registered over a connection gateway {} holds",
                    b.gateway
                )),
            };
            Route {
                channel: "registered",
                uri: b.contact.clone(),
                via,
            }
        };
        bindings.iter().take(SOFTPHONES).map(route).collect()
    }

    /// A call along `route` running `script` once answered, rung at most
    /// `ring`, recorded on `ticket` (when paging calls are recorded).
    pub fn call_along<S>(
        &self,
        member: &str,
        route: Route,
        script: S,
        ring: Duration,
        ticket: Option<&str>,
    ) -> Result<PageCall<S>, String> {
        let via = route.via?;
        let dest = via.dest;
        let ip = self.advertise_ip.unwrap_or_else(|| {
            crate::sip::transport::local_for(
                std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
                dest.ip(),
            )
            .ip()
        });
        let socket = self
            .ports
            .bind_for(ip)
            .map_err(|e| format!("failed: {e}"))?;
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let dial = Dial {
            uri: route.uri,
            from_uri: via.from_uri,
            rtp: std::net::SocketAddr::new(ip, port),
            ring_timeout: ring,
            credentials: via.credentials,
            route: via.route,
        };
        Ok(PageCall {
            member: member.to_string(),
            requester: self.sip.clone(),
            dial,
            dest,
            egress: via.egress,
            socket,
            script,
            media_timeout: self.media_timeout,
            live: self.live.get(),
            recording: ticket.and_then(|t| self.recordings.clone().map(|d| (d, t.to_string()))),
        })
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
        let script = PageScript::new(&page.ticket, &page.category, self.plays, self.key_timeout);
        let call =
            match self.call_along(&m.id, route, script, self.ring_timeout, Some(&page.ticket)) {
                Ok(c) => c,
                Err(e) => return attempt(false, false, e),
            };
        match crate::call::page::place(call).await {
            Outcome::NotAnswered(reason) => {
                attempt(false, false, crate::call::page::not_answered(reason))
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
                    recording: recording.map(crate::call::page::link),
                    ..attempt(ok, acknowledged, outcome.to_string())
                }
            }
        }
    }

    async fn webhook(&self, m: &Member, name: &str, page: &Page, text: &str) -> Attempt {
        let start = Instant::now();
        let attempt = |ok: bool, outcome: String| Attempt {
            member: m.id.clone(),
            channel: "webhook",
            ok,
            acknowledged: false,
            passed: false,
            outcome,
            latency_ms: start.elapsed().as_millis() as u64,
            recording: None,
        };
        let cfg = self.live.get();
        let Some(target) = cfg.webhooks.get(name) else {
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
                // Never the URL: a robot's key is in its query string, and
                // this text goes to the log and the ticket's timeline.
                Err(e) => last = describe(&e.without_url()),
            }
        }
        attempt(false, format!("failed: receiver {name}: {last}"))
    }

    async fn event(&self, m: &Member, page: &Page, text: &str) -> Attempt {
        let start = Instant::now();
        let r = self.store.add_page_event(&m.id, &page.ticket, text).await;
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
        assert_eq!(
            sip_destination("sips:8201@127.0.0.1").await,
            Some("127.0.0.1:5061".parse().unwrap()),
            "sips: defaults to 5061"
        );
        assert_eq!(sip_destination("tel:+86123").await, None);
    }
}
