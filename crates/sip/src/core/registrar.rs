//! REGISTER from the officers' softphones (RFC 3261 §10.3), when the
//! gateway is their registrar: the core checks the request's form, keeps
//! its server transaction and hands it over as [`Output::Register`]; the
//! registrar (credentials and bindings live in Redis, outside the core)
//! answers with [`Core::answer_register`]. An answer that does not come in
//! [`REGISTRAR_WAIT`] becomes a 503, so a softphone is never left hanging.
//!
//! The hand-over itself ([`Core::hand_over`], the answer, the 503 when it
//! is late) is the same for every request the app decides: a MESSAGE to
//! the inbox (`inbox`) goes the same way.

use super::*;

/// How long the core waits for the registrar's answer.
pub const REGISTRAR_WAIT: Duration = Duration::from_secs(5);

/// Longest Contact URI kept in a binding.
const MAX_CONTACT: usize = 512;

/// What a REGISTER asks for its address of record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// No Contact: the current bindings, please.
    Query,
    /// `Contact: *` with `Expires: 0`: remove them all.
    RemoveAll,
    /// These contacts, each with its own `expires` parameter if it has one.
    Set(Vec<(String, Option<u32>)>),
}

/// A REGISTER for the registrar to decide.
#[derive(Debug, Clone)]
pub struct RegisterRequest {
    /// The server transaction to answer on.
    pub id: u64,
    /// The user part of the To URI: the member.
    pub user: String,
    pub request_uri: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    pub contacts: Contacts,
    /// The `Expires` header.
    pub expires: Option<u32>,
    pub call_id: String,
    pub cseq: u32,
    /// The flow the request came on: paging calls go back over it.
    pub flow: Peer,
    /// Where it comes from (the flow's peer, or the source a proxy
    /// forwarded): nonces are bound to it, attempts counted against it.
    pub origin: Origin,
    pub user_agent: Option<String>,
}

/// The app's answer to a request the core handed over: the registrar's to
/// a [`RegisterRequest`], the inbox's to a [`super::TextRequest`].
#[derive(Debug, Clone)]
pub struct RegisterAnswer {
    pub id: u64,
    pub status: u16,
    pub reason: &'static str,
    /// Contact, WWW-Authenticate, Min-Expires, Retry-After...
    pub headers: Vec<(&'static str, String)>,
}

/// A Contact entry's `expires` parameter (after the `>`, or after the URI
/// of the bare form, RFC 3261 §20.10).
fn contact_expires(entry: &str) -> Result<Option<u32>, ()> {
    let params = match entry.rfind('>') {
        Some(gt) => entry.get(gt + 1..).unwrap_or(""),
        None => entry.split_once(';').map_or("", |(_, p)| p),
    };
    for p in params.split(';') {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("expires") {
                return v.trim().parse().map(Some).map_err(|_| ());
            }
        }
    }
    Ok(None)
}

impl Core {
    /// A REGISTER outside any dialog: checked, kept, handed to the registrar.
    pub(super) fn on_register(&mut self, msg: &Message, peer: Peer, now: Instant) {
        let method = Method::Register;
        let tag = random_token();
        let refuse = |core: &mut Core, code: u16, reason: &'static str| {
            let b = core.builder(msg, peer, code, reason).to_tag(&tag);
            core.respond_new(msg, &method, peer, now, b, code);
        };
        let user = message::display_and_user(&msg.reply.to).1;
        let Some(user) = user.filter(|u| u.len() <= 64) else {
            return refuse(self, 400, "To Names No User");
        };
        let expires = match msg.header("Expires").map(|v| v.trim().parse::<u32>()) {
            None => None,
            Some(Ok(e)) => Some(e),
            Some(Err(_)) => return refuse(self, 400, "Bad Expires"),
        };
        let entries: Vec<String> = msg
            .header_values("Contact")
            .flat_map(|v| message::split_commas(&v))
            .collect();
        let contacts = if entries.is_empty() {
            Contacts::Query
        } else if entries.iter().any(|e| e.trim() == "*") {
            // RFC 3261 §10.3 step 6: `*` alone, and only to remove.
            if entries.len() != 1 || expires != Some(0) {
                return refuse(self, 400, "Contact * Needs Expires 0 Alone");
            }
            Contacts::RemoveAll
        } else {
            let mut set = Vec::new();
            for e in &entries {
                let uri = message::angle_uri(e).unwrap_or_default();
                let sip = uri.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("sip:"));
                if !sip || uri.len() > MAX_CONTACT {
                    return refuse(self, 400, "Contact Must Be A SIP URI");
                }
                match contact_expires(e) {
                    Ok(x) => set.push((uri, x)),
                    Err(()) => return refuse(self, 400, "Bad Contact Expires"),
                }
            }
            Contacts::Set(set)
        };
        if !self
            .admission
            .tx_room(self.origin.ip(), self.txs.len(), now)
        {
            return self.refuse_stateless(msg, peer, "transactions");
        }
        let id = self.hand_over(msg, &method, peer, tag, now);
        let request_uri = match &msg.start {
            StartLine::Request { uri, .. } => uri.clone(),
            StartLine::Response { .. } => String::new(),
        };
        self.out
            .push_back(Output::Register(Box::new(RegisterRequest {
                id,
                user,
                request_uri,
                authorization: msg.header("Authorization"),
                contacts,
                expires,
                call_id: msg.call_id.clone(),
                cseq: msg.cseq,
                flow: peer,
                origin: self.origin,
                user_agent: msg.header("User-Agent"),
            })));
    }

    /// Keeps a server transaction for `msg` whose final response the app
    /// gives (within [`REGISTRAR_WAIT`], else 503); its id names it in the
    /// hand-over and the answer. `tag`: our To tag for the answer.
    pub(super) fn hand_over(
        &mut self,
        msg: &Message,
        method: &Method,
        peer: Peer,
        tag: String,
        now: Instant,
    ) -> u64 {
        let tx = ServerTx::new(false, peer.transport().reliable(), self.cfg.timers);
        let id = self.insert_tx(TxKey::of(msg, method), tx, peer, None, now);
        let reply = msg.reply.clone();
        let method = match method {
            Method::Register => "REGISTER",
            _ => "MESSAGE",
        };
        self.handed.insert(id, Handed { reply, tag, method });
        self.arm(TimerKey::Handed(id), Some(now + REGISTRAR_WAIT));
        id
    }

    /// The registrar's answer, sent on the REGISTER's transaction (a late
    /// one, after the core gave up, is dropped).
    pub fn answer_register(&mut self, a: RegisterAnswer, now: Instant) {
        self.answer_handed(a, now)
    }

    /// The app's answer to a request it was handed (a REGISTER, a
    /// MESSAGE), sent on its transaction; a late one, after the core gave
    /// up, is dropped.
    pub fn answer_handed(&mut self, a: RegisterAnswer, now: Instant) {
        let Some(Handed { reply, tag, .. }) = self.handed.remove(&a.id) else {
            return;
        };
        self.arm(TimerKey::Handed(a.id), None);
        let Some(peer) = self.txs.get(&a.id).map(|e| e.peer) else {
            return;
        };
        let mut b = ResponseBuilder::new(&reply, a.status, a.reason)
            .to_tag(&tag)
            .source(peer.addr)
            .header("Server", self.cfg.user_agent.clone());
        for (name, value) in a.headers {
            b = b.header(name, value);
        }
        let data = b.build();
        self.respond_on(a.id, peer, a.status, data, now);
    }

    /// No answer from the app in time: 503.
    pub(super) fn handed_timer(&mut self, id: u64, now: Instant) {
        let Some(h) = self.handed.get(&id) else {
            return;
        };
        tracing::warn!(
            method = h.method,
            "no answer to a request handed over in time: 503"
        );
        let retry = self.cfg.retry_after.to_string();
        self.answer_handed(
            RegisterAnswer {
                id,
                status: 503,
                reason: "Service Unavailable",
                headers: vec![("Retry-After", retry)],
            },
            now,
        );
    }
}

/// A request handed to the app: what its answer is built from.
pub(super) struct Handed {
    /// The request's headers a response copies.
    reply: message::ReplyHeaders,
    /// Our To tag.
    tag: String,
    /// For the log.
    method: &'static str,
}

#[cfg(test)]
mod tests {
    use super::contact_expires;

    #[test]
    fn contact_expires_params() {
        assert_eq!(contact_expires("<sip:a@b;expires=9>"), Ok(None));
        assert_eq!(contact_expires("<sip:a@b>;expires=60"), Ok(Some(60)));
        assert_eq!(contact_expires("<sip:a@b>;q=0.5; Expires = 0"), Ok(Some(0)));
        assert_eq!(contact_expires("sip:a@b;expires=30"), Ok(Some(30)));
        assert_eq!(contact_expires("<sip:a@b>;expires=-1"), Err(()));
        assert_eq!(contact_expires("<sip:a@b>;expires=99999999999"), Err(()));
    }
}
