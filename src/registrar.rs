//! The registrar for the officers' softphones (Linphone, MicroSIP, a desk
//! phone), so an officer on a mobile network can be paged without the
//! court's PBX (RFC 3261 §10.3). The SIP core hands each REGISTER over
//! ([`RegisterRequest`]); this task decides it against Redis and answers:
//!
//! - no credentials, or for another realm: 401 with a fresh nonce
//!   (`digest::Nonces`: no state, bound to the source's transport, address
//!   and port — behind a proxy of `[sip] proxies`, the ones it forwarded)
//!   and `qop="auth"`;
//! - credentials without `qop=auth`, or whose `uri` is not the
//!   Request-URI: 403;
//! - credentials: counted first against the member *from this source*
//!   and against the source (`[registrar] attempts_per_minute`,
//!   `source_attempts_per_minute`), then checked against the member's HA1
//!   (`hotline officer set-sip-password`); an unknown member is checked
//!   against a dummy HA1, so known and unknown members get the same answers
//!   (403) in the same time; failures and lockouts go to the security log.
//!   A stranger's wrong guesses lock the stranger out, never the member's
//!   own phone elsewhere;
//! - right credentials with a nonce that is stale, another gateway's or
//!   another source's, or a nonce count (`nc`) not above the last one the
//!   nonce was used with (kept in Redis for the nonce's life: a replay):
//!   401 `stale=true`, and a softphone retries without asking anyone;
//! - then the bindings change (the store applies the CSeq order and the
//!   bound atomically) and the 200 lists them with their expiry.
//!
//! A binding keeps the flow the REGISTER came on (socket or connection,
//! source address, this gateway), so a paging call to a member with
//! `sip = "registered"` goes back the way the softphone's NAT lets it in.

use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::sip::admission::{source_of, Origin};
use crate::sip::core::{Contacts, Link, Peer, RegisterAnswer, RegisterRequest};
use crate::sip::digest::{Credentials, NonceCheck, Nonces};
use crate::sip::transport::Requester;
use crate::tickets::attempts::Attempt;
use crate::tickets::softphones::{Binding, BindingChange, Registered};
use crate::tickets::Store;

/// `[registrar]`: the gateway takes REGISTER from the officers' softphones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarSettings {
    /// The digest realm. HA1s are made with it: changing it means setting
    /// every SIP password again.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Shorter registrations get 423 with this as Min-Expires.
    #[serde(default = "default_min_expires")]
    pub min_expires: u32,
    /// Longer ones are granted this; a REGISTER without expiry gets it.
    #[serde(default = "default_max_expires")]
    pub max_expires: u32,
    /// Softphones per member.
    #[serde(default = "default_max_bindings")]
    pub max_bindings: usize,
    /// Failed REGISTERs per member from one source a minute (good ones are
    /// taken back: this bounds guessing, not a phone's refreshes); beyond
    /// it that source is refused for that member.
    #[serde(default = "default_attempts")]
    pub attempts_per_minute: i64,
    /// The same per source (an IPv6 source is its /64).
    #[serde(default = "default_source_attempts")]
    pub source_attempts_per_minute: i64,
}

impl Default for RegistrarSettings {
    fn default() -> Self {
        RegistrarSettings {
            realm: default_realm(),
            min_expires: default_min_expires(),
            max_expires: default_max_expires(),
            max_bindings: default_max_bindings(),
            attempts_per_minute: default_attempts(),
            source_attempts_per_minute: default_source_attempts(),
        }
    }
}

fn default_realm() -> String {
    "hotline".into()
}
fn default_min_expires() -> u32 {
    60
}
fn default_max_expires() -> u32 {
    3600
}
fn default_max_bindings() -> usize {
    3
}
fn default_attempts() -> i64 {
    5
}
fn default_source_attempts() -> i64 {
    20
}

impl RegistrarSettings {
    /// Checks what the types cannot say: the key and the problem.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let realm_ok = !self.realm.is_empty()
            && self.realm.len() <= 64
            && self
                .realm
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !realm_ok {
            return Err((
                "registrar.realm",
                "1 to 64 printable characters, no quotes".into(),
            ));
        }
        if self.min_expires == 0 || self.min_expires > self.max_expires {
            return Err((
                "registrar.min_expires",
                format!(
                    "must be at least 1 and at most max_expires ({})",
                    self.max_expires
                ),
            ));
        }
        if !(1..=10).contains(&self.max_bindings) {
            return Err(("registrar.max_bindings", "1 to 10".into()));
        }
        if self.attempts_per_minute < 1 {
            return Err(("registrar.attempts_per_minute", "at least 1".into()));
        }
        if self.source_attempts_per_minute < 1 {
            return Err(("registrar.source_attempts_per_minute", "at least 1".into()));
        }
        Ok(())
    }
}

/// The registrar task's state.
pub struct Registrar {
    pub settings: RegistrarSettings,
    pub store: Store,
    /// This gateway process, named in the bindings it holds the flow of.
    pub gateway: String,
    nonces: Nonces,
    /// An HA1 no password gives, for unknown members.
    dummy_ha1: String,
}

/// How long a nonce we issued is good for.
const NONCE_SECONDS: u64 = 300;

/// How many REGISTERs are decided at once (each waits on Redis).
const IN_FLIGHT: usize = 64;

/// What a nonce is bound to: the source's transport, address and port
/// (behind a proxy, the ones it forwarded).
fn bound_to(origin: &Origin) -> String {
    format!("{} {}", origin.transport, origin.addr)
}

/// A digest `uri` names the Request-URI (compared as RFC 3261 §19.1.4
/// compares what matters here: the same text, the scheme and host in any
/// case).
fn uri_is(digest_uri: &str, request_uri: &str) -> bool {
    digest_uri.trim().eq_ignore_ascii_case(request_uri.trim())
}

/// The flow of a binding as the store keeps it, and back.
pub fn link_name(link: Link) -> String {
    match link {
        Link::Udp(i) => format!("udp:{i}"),
        Link::Tcp(c) => format!("tcp:{c}"),
        Link::Tls(c) => format!("tls:{c}"),
    }
}

/// The flow a binding names, if it is well formed.
pub fn flow_of(b: &Binding) -> Option<Peer> {
    let (kind, n) = b.link.split_once(':')?;
    let link = match kind {
        "udp" => Link::Udp(n.parse().ok()?),
        "tcp" => Link::Tcp(n.parse().ok()?),
        "tls" => Link::Tls(n.parse().ok()?),
        _ => return None,
    };
    Some(Peer {
        link,
        addr: b.source,
        local: b.local,
    })
}

fn answer(id: u64, status: u16, reason: &'static str) -> RegisterAnswer {
    RegisterAnswer {
        id,
        status,
        reason,
        headers: Vec::new(),
    }
}

impl Registrar {
    pub fn new(settings: RegistrarSettings, store: Store, gateway: String) -> Registrar {
        let dummy: [u8; 16] = rand::random();
        Registrar {
            dummy_ha1: crate::hex::encode(&dummy),
            settings,
            store,
            gateway,
            nonces: Nonces::new(NONCE_SECONDS),
        }
    }

    /// Decides REGISTERs until `stop` (or until the core is gone), each in
    /// a task of its own, at most [`IN_FLIGHT`] at once.
    pub async fn run(
        self: Arc<Self>,
        rx: mpsc::Receiver<RegisterRequest>,
        answers: Requester,
        stop: CancellationToken,
    ) {
        crate::requests::each_in_its_task(rx, stop, IN_FLIGHT, |req| {
            let (me, answers) = (self.clone(), answers.clone());
            async move {
                let now = jiff::Timestamp::now();
                let a = me.decide(&req, now).await;
                answers.answer_register(a).await;
            }
        })
        .await
    }

    /// A 401 with a new nonce for the request's source.
    fn challenge(&self, req: &RegisterRequest, now_s: u64, stale: bool) -> RegisterAnswer {
        let nonce = self.nonces.issue(now_s, &bound_to(&req.origin));
        let mut v = format!(
            "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"",
            self.settings.realm
        );
        if stale {
            v.push_str(", stale=true");
        }
        RegisterAnswer {
            headers: vec![("WWW-Authenticate", v)],
            ..answer(req.id, 401, "Unauthorized")
        }
    }

    /// The answer to one REGISTER at `now`.
    pub async fn decide(&self, req: &RegisterRequest, now: jiff::Timestamp) -> RegisterAnswer {
        let now_s = now.as_second().max(0) as u64;
        let Some(auth) = &req.authorization else {
            return self.challenge(req, now_s, false);
        };
        let Some(creds) = Credentials::parse(auth) else {
            return answer(req.id, 400, "Bad Authorization");
        };
        if creds.realm != self.settings.realm {
            return self.challenge(req, now_s, false);
        }
        match self.authenticate(req, &creds, now_s).await {
            Ok(()) => {}
            Err(a) => return a,
        }
        let change = match self.change(req, now.as_millisecond()) {
            Ok(c) => c,
            Err(a) => return a,
        };
        let r = self
            .store
            .register(
                &req.user,
                &req.call_id,
                req.cseq,
                &change,
                self.settings.max_bindings,
                now.as_millisecond(),
            )
            .await;
        match r {
            Ok(Registered::Bindings(list)) => {
                if matches!(change, BindingChange::Set(_)) {
                    tracing::info!(member = %req.user, source = %req.origin.addr, bindings = list.len(), "softphone registered");
                }
                let now_ms = now.as_millisecond();
                RegisterAnswer {
                    headers: list
                        .iter()
                        .map(|b| {
                            let left = ((b.expires_at_ms - now_ms).max(0) + 999) / 1000;
                            ("Contact", format!("<{}>;expires={left}", b.contact))
                        })
                        .collect(),
                    ..answer(req.id, 200, "OK")
                }
            }
            Ok(Registered::OutOfOrder) => answer(req.id, 500, "Out Of Order CSeq"),
            Ok(Registered::Full) => answer(req.id, 403, "Too Many Contacts"),
            Err(e) => self.unavailable(req, &e),
        }
    }

    fn unavailable(&self, req: &RegisterRequest, e: &crate::tickets::StoreError) -> RegisterAnswer {
        tracing::warn!(error = %e, member = %req.user, "registrar: Redis unavailable: 503");
        RegisterAnswer {
            headers: vec![("Retry-After", "30".into())],
            ..answer(req.id, 503, "Service Unavailable")
        }
    }

    /// Counted first, then checked: `Err` is the answer that refuses.
    async fn authenticate(
        &self,
        req: &RegisterRequest,
        creds: &Credentials,
        now_s: u64,
    ) -> Result<(), RegisterAnswer> {
        // RFC 2617 §3.2.2.5: the credentials are for this request's URI;
        // and only qop=auth carries the count that stops a replay.
        if !uri_is(&creds.uri, &req.request_uri) {
            return Err(answer(req.id, 403, "Digest URI Is Not The Request-URI"));
        }
        let Some(nc) = creds.nonce_count() else {
            return Err(answer(req.id, 403, "Digest qop=auth Required"));
        };
        let source = source_of(req.origin.ip()).to_string();
        let member = crate::requests::log_safe(&creds.username);
        let counted = self
            .store
            .count_attempt(Attempt::Register, &creds.username, &source)
            .await;
        let (by_member, by_source) = counted.map_err(|e| self.unavailable(req, &e))?;
        let s = &self.settings;
        if by_member > s.attempts_per_minute || by_source > s.source_attempts_per_minute {
            tracing::warn!(target: "security", "SECURITY event=register_locked src={source} member=\"{member}\" reason=\"too many failed REGISTERs a minute from this source\" count=1");
            return Err(answer(req.id, 403, "Forbidden"));
        }
        let ha1 = self
            .store
            .sip_ha1(&creds.username)
            .await
            .map_err(|e| self.unavailable(req, &e))?;
        let known = ha1.is_some();
        let right = creds.verify(ha1.as_deref().unwrap_or(&self.dummy_ha1), "REGISTER");
        // The credentials must be the address of record's own.
        if !(known && right && creds.username == req.user) {
            tracing::warn!(target: "security", "SECURITY event=register_failed src={source} member=\"{member}\" reason=\"wrong member or SIP password\" count=1");
            return Err(answer(req.id, 403, "Forbidden"));
        }
        let _ = self
            .store
            .uncount_attempt(Attempt::Register, &creds.username, &source)
            .await;
        let issued = match self
            .nonces
            .check(&creds.nonce, now_s, &bound_to(&req.origin))
        {
            NonceCheck::Fresh => creds
                .nonce
                .get(..16)
                .and_then(|s| u64::from_str_radix(s, 16).ok()),
            NonceCheck::Stale | NonceCheck::Unknown => None,
        };
        let Some(issued) = issued else {
            return Err(self.challenge(req, now_s, true));
        };
        // Each count once, upwards: the same credentials again (a replay
        // from the same source, with any Call-ID) change nothing.
        let life = (issued + NONCE_SECONDS + 5).saturating_sub(now_s);
        let fresh = self
            .store
            .use_nonce(&creds.nonce, nc, life)
            .await
            .map_err(|e| self.unavailable(req, &e))?;
        if !fresh {
            tracing::warn!(target: "security", "SECURITY event=register_replayed src={source} member=\"{member}\" reason=\"nonce count used before\" count=1");
            return Err(self.challenge(req, now_s, true));
        }
        Ok(())
    }

    /// What the REGISTER asks of the bindings; `Err`: 423 for an expiry
    /// too brief (RFC 3261 §10.3 step 7).
    fn change(&self, req: &RegisterRequest, now_ms: i64) -> Result<BindingChange, RegisterAnswer> {
        let s = &self.settings;
        let list = match &req.contacts {
            Contacts::Query => return Ok(BindingChange::Query),
            Contacts::RemoveAll => return Ok(BindingChange::RemoveAll),
            Contacts::Set(list) => list,
        };
        let mut out = Vec::new();
        for (contact, own) in list {
            let asked = own.or(req.expires).unwrap_or(s.max_expires);
            if asked != 0 && asked < s.min_expires {
                return Err(RegisterAnswer {
                    headers: vec![("Min-Expires", s.min_expires.to_string())],
                    ..answer(req.id, 423, "Interval Too Brief")
                });
            }
            let granted = asked.min(s.max_expires);
            out.push(Binding {
                contact: contact.clone(),
                expires_at_ms: now_ms + i64::from(granted) * 1000,
                call_id: req.call_id.clone(),
                cseq: req.cseq,
                source: req.flow.addr,
                link: link_name(req.flow.link),
                local: req.flow.local,
                gateway: self.gateway.clone(),
                user_agent: req.user_agent.clone(),
            });
        }
        Ok(BindingChange::Set(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_problems() {
        let s: RegistrarSettings = toml::from_str("").unwrap();
        assert_eq!(s.realm, RegistrarSettings::default().realm);
        assert_eq!(
            (s.realm.as_str(), s.min_expires, s.max_expires),
            ("hotline", 60, 3600)
        );
        assert_eq!(s.check(), Ok(()));
        let bad = |t: &str| {
            toml::from_str::<RegistrarSettings>(t)
                .unwrap()
                .check()
                .unwrap_err()
                .0
        };
        assert_eq!(bad("realm = \"a\\\"b\""), "registrar.realm");
        assert_eq!(bad("min_expires = 7200"), "registrar.min_expires");
        assert_eq!(bad("max_bindings = 0"), "registrar.max_bindings");
        assert!(toml::from_str::<RegistrarSettings>("relm = \"x\"").is_err());
    }

    #[test]
    fn flows_round_trip() {
        let b = |link: &str| Binding {
            contact: "sip:p-sun@10.0.0.2:5060".into(),
            expires_at_ms: 0,
            call_id: "c".into(),
            cseq: 1,
            source: "192.0.2.1:40000".parse().unwrap(),
            link: link.into(),
            local: "192.0.2.9:5060".parse().unwrap(),
            gateway: "g".into(),
            user_agent: None,
        };
        for link in [Link::Udp(1), Link::Tcp(42)] {
            let p = flow_of(&b(&link_name(link))).unwrap();
            assert_eq!((p.link, p.addr.port()), (link, 40000));
        }
        for junk in ["", "udp", "udp:x", "sctp:1", "udp:300"] {
            assert_eq!(flow_of(&b(junk)), None, "{junk}");
        }
    }
}
