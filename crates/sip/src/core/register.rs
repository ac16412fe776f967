//! Our registration with the trunk (RFC 3261 §10.2): REGISTER, a challenge
//! answered once, the refresh at four fifths of what was granted, a retry;
//! each outcome handed out as [`Output::Registration`] (the channel watch
//! counts a failed registration as the trunk's problem).

use super::*;

/// A registration of ours with a trunk (RFC 3261 §10.2), kept fresh.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The registrar's Request-URI (`sip:domain`).
    pub registrar: String,
    /// Our address of record (`sip:user@domain`): From and To.
    pub aor: String,
    pub expires: u32,
    pub credentials: Option<(String, String)>,
}

/// How our registration with the trunk stands: each final outcome of a
/// REGISTER (a challenge answered is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// Sent, not answered yet (the first REGISTER).
    Trying,
    /// Accepted, for this many seconds.
    Registered { granted_s: u64 },
    /// Refused with this status, or not answered at all (`None`); tried
    /// again in 30 s.
    Failed { status: Option<u16> },
}

pub(super) struct Registering {
    r: Registration,
    peer: Peer,
    call_id: String,
    tag: String,
    cseq: u32,
    /// The last REGISTER carried credentials (a second 401 is final).
    authenticated: bool,
}

/// How long a failed registration waits before it tries again.
pub(super) const REGISTER_RETRY: Duration = Duration::from_secs(30);

impl Core {
    /// Registers with a trunk at `peer` and keeps the registration fresh
    /// (refreshed at four fifths of what the registrar granted; a failure
    /// is tried again after 30 s; a challenge answered once).
    pub fn register(&mut self, r: Registration, peer: Peer, now: Instant) {
        self.registration = Some(Registering {
            r,
            peer,
            call_id: format!("{}@hotline", random_token()),
            tag: random_token(),
            cseq: 0,
            authenticated: false,
        });
        self.send_register(None, now);
    }

    pub(super) fn send_register(&mut self, auth: Option<(&'static str, String)>, now: Instant) {
        let user_agent = self.cfg.user_agent.clone();
        let Some(g) = self.registration.as_mut() else {
            return;
        };
        g.cseq += 1;
        g.authenticated = auth.is_some();
        let branch = format!("z9hG4bK{}", random_token());
        let contact = contact_uri(&g.peer);
        let mut headers = vec![("Expires", g.r.expires.to_string())];
        headers.extend(auth);
        let data = RequestSpec {
            method: "REGISTER",
            uri: &g.r.registrar,
            via: g.peer.via(&branch),
            from: &format!("<{}>;tag={}", g.r.aor, g.tag),
            to: &format!("<{}>", g.r.aor),
            call_id: &g.call_id,
            cseq: g.cseq,
            route: &[],
            contact: Some(&contact),
            user_agent: &user_agent,
            body: None,
            headers: &headers,
        }
        .build();
        let peer = g.peer;
        self.start_client(data, peer, branch, Purpose::Register, now);
    }

    /// The registrar's answer: the refresh scheduled, a challenge answered,
    /// or a retry.
    pub(super) fn registered(&mut self, msg: &Message, code: u16, now: Instant) {
        let Some(g) = self.registration.as_ref() else {
            return;
        };
        if (200..300).contains(&code) {
            // What the registrar granted: our Contact's expires, else Expires.
            let granted = msg
                .header_values("Contact")
                .find_map(|c| {
                    c.split(';')
                        .find_map(|p| p.trim().strip_prefix("expires="))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
                .or_else(|| msg.header("Expires").and_then(|v| v.trim().parse().ok()))
                .unwrap_or(u64::from(g.r.expires));
            let refresh = Duration::from_secs((granted * 4 / 5).max(1));
            tracing::info!(registrar = %g.r.registrar, granted_s = granted, "registered with the trunk");
            self.out
                .push_back(Output::Registration(RegistrationState::Registered {
                    granted_s: granted,
                }));
            return self.arm(TimerKey::Register, Some(now + refresh));
        }
        if (code == 401 || code == 407) && !g.authenticated {
            let (challenge, name) = if code == 401 {
                ("WWW-Authenticate", "Authorization")
            } else {
                ("Proxy-Authenticate", "Proxy-Authorization")
            };
            let ch = msg.header(challenge).and_then(|v| crate::digest::parse(&v));
            if let (Some(ch), Some((user, pass))) = (ch, g.r.credentials.clone()) {
                let value = crate::digest::authorization(
                    &ch,
                    &user,
                    &pass,
                    "REGISTER",
                    &g.r.registrar,
                    &random_token(),
                );
                return self.send_register(Some((name, value)), now);
            }
        }
        tracing::warn!(registrar = %g.r.registrar, code, "the trunk refused our REGISTER: trying again in 30 s");
        self.registration_failed(Some(code), now);
    }

    /// Our REGISTER was refused (`status`) or not answered (`None`): said,
    /// and tried again after [`REGISTER_RETRY`].
    pub(super) fn registration_failed(&mut self, status: Option<u16>, now: Instant) {
        self.out
            .push_back(Output::Registration(RegistrationState::Failed { status }));
        self.arm(TimerKey::Register, Some(now + REGISTER_RETRY));
    }
}
