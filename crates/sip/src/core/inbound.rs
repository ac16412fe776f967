//! Every message that arrives: parsed, admitted (bans, scanners, per-source
//! limits), matched to a transaction or dialog, refused statelessly when it
//! must be, and routed to the part that handles it.

use super::*;

impl Core {
    /// One message (a datagram, or one framed message from a stream). A
    /// panic while handling it (a bug; none is known) costs this message
    /// only: it is counted, logged with the bytes, and the core goes on.
    pub fn on_message(&mut self, data: &[u8], peer: Peer, now: Instant) {
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.handle_message(data, peer, now)
        }));
        if handled.is_err() {
            Metrics::inc(&self.metrics.sip_panics);
            tracing::error!(
                from = %peer.addr,
                bytes = %data.escape_ascii(),
                "panic while handling a SIP message: the message is dropped, the core goes on"
            );
        }
    }

    pub(super) fn handle_message(&mut self, data: &[u8], peer: Peer, now: Instant) {
        if let Some(c) = peer.link.conn() {
            if let Some(conn) = self.conns.get_mut(&c) {
                conn.last_activity = now;
            }
        }
        // A proxy's relayed requests are banned by the source it names,
        // below; the proxy itself never is.
        let proxied = self.admission.proxy(peer.addr.ip());
        if !proxied && self.admission.banned(peer.addr.ip(), now) {
            Metrics::inc(&self.metrics.sip_banned_dropped);
            return;
        }
        let datagram = matches!(peer.link, Link::Udp(_));
        match message::parse(data, datagram, &self.cfg.limits) {
            Err(m) => self.on_malformed(m, peer, now),
            Ok(msg) => {
                Metrics::inc(&self.metrics.sip_messages);
                match msg.start.clone() {
                    StartLine::Request { method, .. } => {
                        self.origin = self.admission.origin(
                            peer.addr,
                            peer.transport().as_str(),
                            msg.header_values(SOURCE_HEADER),
                            now,
                        );
                        let from = self.origin.ip();
                        if self.origin.forwarded && self.admission.banned(from, now) {
                            return self.silence(&msg, &method, peer, "banned");
                        }
                        let scanner = msg
                            .header("User-Agent")
                            .is_some_and(|ua| self.admission.scanner(from, &ua, now));
                        if scanner {
                            Metrics::inc(&self.metrics.sip_scanner_dropped);
                            return self.silence(&msg, &method, peer, "scanner");
                        }
                        self.on_request(msg, method, peer, now)
                    }
                    StartLine::Response { code, .. } => self.on_response(&msg, code, now),
                }
            }
        }
    }

    pub(super) fn on_malformed(&mut self, m: Malformed, peer: Peer, now: Instant) {
        if self.admission.malformed(peer.addr.ip(), now, &m.reason) {
            // That was one too many: the source is banned, nothing is sent.
            Metrics::inc(&self.metrics.sip_malformed_dropped);
            return;
        }
        match &m.reply {
            Some(reply) => {
                tracing::debug!(status = m.status, reason = %m.reason, from = %peer.addr, "refusing malformed request");
                Metrics::inc(&self.metrics.sip_malformed_answered);
                let tag = random_token();
                let mut b = ResponseBuilder::new(reply, m.status, &m.reason)
                    .to_tag(&tag)
                    .source(peer.addr)
                    .header("Server", self.cfg.user_agent.clone());
                if m.status == 505 || m.status == 416 {
                    b = b.header("Allow", self.allow());
                }
                let data = b.build();
                self.send(&peer, data);
            }
            None => {
                tracing::debug!(reason = %m.reason, from = %peer.addr, "dropping malformed message");
                Metrics::inc(&self.metrics.sip_malformed_dropped);
            }
        }
    }

    pub(super) fn on_response(&mut self, msg: &Message, code: u16, now: Instant) {
        if msg.cseq_method == Method::Invite {
            let call = msg
                .top_via
                .branch
                .as_ref()
                .and_then(|b| self.uac_index.get(b).copied());
            if let Some(call) = call {
                return self.on_invite_response(call, msg, code, now);
            }
            // A copy of a failure we have acknowledged: acknowledge it again.
            let done = msg
                .top_via
                .branch
                .as_ref()
                .and_then(|b| self.uac_completed.get(b));
            if let Some((peer, tx)) = done {
                if let (true, Some(ack)) = (code >= 300, tx.ack(now)) {
                    let (peer, ack) = (*peer, ack.clone());
                    return self.send(&peer, ack);
                }
            }
        }
        let found = msg
            .top_via
            .branch
            .as_ref()
            .and_then(|b| self.client_index.get(b).copied());
        match found {
            Some(id) => {
                let Some(c) = self.clients.get_mut(&id) else {
                    return;
                };
                if let (Some(ack), true) = (&c.ack, (200..300).contains(&code)) {
                    // A copy of the 2xx to our re-INVITE: the same ACK.
                    let (peer, ack) = (c.peer, ack.clone());
                    return self.send(&peer, ack);
                }
                let first_final = code >= 200 && !c.tx.is_completed();
                if code >= 300 && !first_final {
                    // A copy of a failure of our re-INVITE: the same ACK.
                    if let Some(ack) = c.tx.ack(now) {
                        let (peer, ack) = (c.peer, ack.clone());
                        return self.send(&peer, ack);
                    }
                }
                c.tx.on_response(code, now);
                let at = c.tx.next_deadline();
                let purpose = c.purpose;
                self.arm(TimerKey::Client(id), Some(at));
                if !first_final {
                    return;
                }
                if let (Purpose::Refresh(call), true) = (purpose, code >= 300) {
                    self.ack_refresh_failure(call, id, msg);
                }
                match purpose {
                    Purpose::Quiet => {}
                    Purpose::Report => self.out.push_back(Output::RequestDone {
                        id,
                        status: Some(code),
                    }),
                    Purpose::Refresh(call) => self.refresh_answered(call, id, msg, code, now),
                    Purpose::Register => self.registered(msg, code, now),
                }
            }
            None => {
                Metrics::inc(&self.metrics.sip_stray_responses);
                tracing::debug!(code, call_id = %msg.call_id, "dropping stray response");
            }
        }
    }

    /// A stateless-looking reply through a new server transaction, so that
    /// retransmissions of the request get the same answer.
    pub(super) fn respond_new(
        &mut self,
        msg: &Message,
        method: &Method,
        peer: Peer,
        now: Instant,
        b: ResponseBuilder<'_>,
        code: u16,
    ) {
        let data = b.build();
        self.send(&peer, data.clone());
        if !self
            .admission
            .tx_room(self.origin.ip(), self.txs.len(), now)
        {
            // Over the bound: answered, nothing kept (a retransmission
            // gets the same answer built again).
            Metrics::inc(&self.metrics.sip_stateless_answers);
            return;
        }
        let key = TxKey::of(msg, method);
        let mut tx = ServerTx::new(
            *method == Method::Invite,
            peer.transport().reliable(),
            self.cfg.timers,
        );
        tx.respond(code, data, now);
        self.insert_tx(key, tx, peer, None, now);
    }

    /// 503 with Retry-After, keeping no state (RFC 3261 §8.2.7: the To tag
    /// is derived from the request, so a retransmission gets the same one).
    pub(super) fn refuse_stateless(&mut self, msg: &Message, peer: Peer, why: &str) {
        self.refuse_503(msg, peer, why, None)
    }

    /// The same for a limit of the request's source (admission): with a
    /// `Warning` that says so, so that a proxy in front does not take this
    /// gateway for full (deploy/kamailio/kamailio.cfg keeps it in).
    pub(super) fn refuse_source(&mut self, msg: &Message, peer: Peer, why: &str) {
        let warning = format!("399 {} \"per-source limit: {why}\"", peer.local.ip());
        self.refuse_503(msg, peer, why, Some(warning))
    }

    /// A silenced source's request (banned, a scanner): dropped unanswered,
    /// unless a proxy forwarded it. Then it gets a 503 naming the limit:
    /// silence would look to the proxy like a dead gateway, and it would
    /// take the gateway out for everyone. (An ACK is never answered.)
    pub(super) fn silence(&mut self, msg: &Message, method: &Method, peer: Peer, why: &str) {
        if self.origin.forwarded && *method != Method::Ack {
            return self.refuse_source(msg, peer, why);
        }
        if why != "scanner" {
            Metrics::inc(&self.metrics.sip_banned_dropped);
        }
    }

    fn refuse_503(&mut self, msg: &Message, peer: Peer, why: &str, warning: Option<String>) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&msg.call_id, &msg.from_tag, &msg.top_via.branch, msg.cseq).hash(&mut h);
        let tag = format!("{:016x}", h.finish());
        tracing::debug!(from = %peer.addr, call_id = %msg.call_id, why, "refusing statelessly");
        Metrics::inc(&self.metrics.sip_refused_stateless);
        let mut b = self
            .builder(msg, peer, 503, "Service Unavailable")
            .to_tag(&tag)
            .header("Retry-After", self.cfg.retry_after.to_string());
        if let Some(w) = warning {
            b = b.header("Warning", w);
        }
        let data = b.build();
        self.send(&peer, data);
    }

    pub(super) fn insert_tx(
        &mut self,
        key: TxKey,
        tx: ServerTx,
        peer: Peer,
        call: Option<CallRef>,
        now: Instant,
    ) -> u64 {
        let id = self.id();
        let at = tx.next_deadline();
        let source = self.origin.ip();
        self.admission.tx_started(source, now);
        self.tx_index.insert(key.clone(), id);
        self.txs.insert(
            id,
            Box::new(TxEntry {
                key,
                tx,
                peer,
                source,
                call,
            }),
        );
        self.arm(TimerKey::Tx(id), at);
        id
    }

    /// `Allow` outside a call: REGISTER too when we are a registrar,
    /// MESSAGE when we take replies to pages.
    fn allow(&self) -> String {
        let mut allow = String::from(if self.cfg.registrar {
            ALLOW_REGISTRAR
        } else {
            ALLOW
        });
        if self.cfg.messages {
            allow.push_str(", MESSAGE");
        }
        allow
    }

    pub(super) fn builder<'a>(
        &self,
        msg: &'a Message,
        peer: Peer,
        code: u16,
        reason: &'a str,
    ) -> ResponseBuilder<'a> {
        ResponseBuilder::new(&msg.reply, code, reason)
            .source(peer.addr)
            .header("Server", self.cfg.user_agent.clone())
    }

    /// A request that passed the message's admission: an ACK to its
    /// transaction or dialog, a retransmission absorbed, then the checks
    /// (per-source limits, the method, the dialog, required extensions)
    /// before the part that handles it.
    pub(super) fn on_request(&mut self, msg: Message, method: Method, peer: Peer, now: Instant) {
        if method == Method::Ack {
            return self.on_ack(&msg, peer, now);
        }
        if self.absorb_retransmission(&msg, &method, peer) {
            return;
        }
        if let Err(limit) = self.source_limit(&msg, &method, now) {
            return self.limit(&msg, &method, peer, limit);
        }
        let tag = random_token();
        if let Err(refusal) = self.method_allowed(&method) {
            return self.refuse(&msg, &method, peer, now, &tag, refusal);
        }
        if method == Method::Cancel {
            return self.on_cancel(&msg, peer, now);
        }
        // In-dialog requests must match a dialog (RFC 3261 §12.2.2).
        let dialog = msg
            .to_tag
            .as_ref()
            .map(|t| self.dialogs.get(&(msg.call_id.clone(), t.clone())).copied());
        if let Some(None) = dialog {
            let b = self.builder(&msg, peer, 481, "Call/Transaction Does Not Exist");
            return self.respond_new(&msg, &method, peer, now, b, 481);
        }
        if let Err(refusal) = required_extensions(&msg) {
            return self.refuse(&msg, &method, peer, now, &tag, refusal);
        }
        if method == Method::Options {
            return self.on_options(&msg, peer, now, &tag);
        }
        match dialog.flatten() {
            None => self.out_of_dialog(msg, method, peer, now, tag),
            Some(call) => self.in_dialog(&msg, method, call, peer, now),
        }
    }

    /// A retransmission of a request we already handle: counted, and our
    /// last answer sent again. True when it was one.
    fn absorb_retransmission(&mut self, msg: &Message, method: &Method, peer: Peer) -> bool {
        let Some(&id) = self.tx_index.get(&TxKey::of(msg, method)) else {
            return false;
        };
        Metrics::inc(&self.metrics.sip_retransmissions_absorbed);
        let Some(entry) = self.txs.get_mut(&id) else {
            return true;
        };
        // The copy may come from a new address (a NAT rebinding): answer there.
        entry.peer = peer;
        if let Some(data) = entry.tx.on_retransmit() {
            self.send(&peer, data);
        }
        true
    }

    /// What is not part of a call or transaction we have is limited per
    /// source (a flood gets stateless 503s, then silence).
    fn source_limit(&mut self, msg: &Message, method: &Method, now: Instant) -> Result<(), Limit> {
        let known = match &msg.to_tag {
            Some(t) => self.dialogs.contains_key(&(msg.call_id.clone(), t.clone())),
            None => {
                *method == Method::Cancel
                    && self
                        .tx_index
                        .contains_key(&TxKey::of(msg, method).with_method("INVITE"))
            }
        };
        if known {
            return Ok(());
        }
        Limit::of(self.admission.request(self.origin.ip(), now))
    }

    /// The methods we handle: any other gets 501 when we do not know it,
    /// 405 when we know it but do not allow it, both with `Allow`.
    fn method_allowed(&self, method: &Method) -> Result<(), Refusal> {
        let (code, reason) = match method {
            Method::Invite | Method::Bye | Method::Cancel | Method::Options | Method::Info => {
                return Ok(())
            }
            Method::Other(name) if name == "UPDATE" || name == "PRACK" => return Ok(()),
            Method::Register if self.cfg.registrar => return Ok(()),
            Method::Other(name) if name == "MESSAGE" && self.cfg.messages => return Ok(()),
            Method::Other(name) if !KNOWN_ELSEWHERE.contains(&name.as_str()) => {
                (501, "Not Implemented")
            }
            _ => (405, "Method Not Allowed"),
        };
        Err(Refusal::Reply(code, reason, Some(("Allow", self.allow()))))
    }

    /// OPTIONS: 200 with what we allow, accept and support; while draining
    /// 503, so that a proxy's probe learns to send calls elsewhere.
    fn on_options(&mut self, msg: &Message, peer: Peer, now: Instant, tag: &str) {
        let method = Method::Options;
        if self.cfg.load.draining() {
            let b = self
                .builder(msg, peer, 503, "Service Unavailable")
                .to_tag(tag)
                .header("Retry-After", self.cfg.retry_after.to_string());
            return self.respond_new(msg, &method, peer, now, b, 503);
        }
        let b = self
            .builder(msg, peer, 200, "OK")
            .to_tag(tag)
            .header("Allow", self.allow())
            .header("Accept", ACCEPT)
            .header("Supported", SUPPORTED);
        self.respond_new(msg, &method, peer, now, b, 200);
    }

    /// Out of a dialog only INVITE begins anything (and REGISTER asks the
    /// registrar, MESSAGE the inbox); anything else gets 481.
    fn out_of_dialog(
        &mut self,
        msg: Message,
        method: Method,
        peer: Peer,
        now: Instant,
        tag: String,
    ) {
        match method {
            Method::Invite => self.on_invite(msg, peer, now, tag),
            Method::Register => self.on_register(&msg, peer, now),
            Method::Other(ref name) if name == "MESSAGE" => self.on_text(&msg, &method, peer, now),
            _ => {
                let b = self
                    .builder(&msg, peer, 481, "Call/Transaction Does Not Exist")
                    .to_tag(&tag);
                self.respond_new(&msg, &method, peer, now, b, 481);
            }
        }
    }

    /// A request in one of our dialogs (CANCEL and OPTIONS are answered
    /// before).
    fn in_dialog(
        &mut self,
        msg: &Message,
        method: Method,
        call: CallRef,
        peer: Peer,
        now: Instant,
    ) {
        match method {
            Method::Bye => {
                let b = self.builder(msg, peer, 200, "OK");
                self.respond_new(msg, &method, peer, now, b, 200);
                self.end_call(call, EndReason::CallerBye, now, false);
            }
            Method::Info => {
                let b = self.builder(msg, peer, 200, "OK");
                self.respond_new(msg, &method, peer, now, b, 200);
                let content_type = msg.content_type();
                self.event(CallEvent::Info {
                    call,
                    content_type,
                    body: msg.body.clone(),
                });
            }
            Method::Invite => self.on_reinvite(msg, call, peer, now),
            Method::Other(ref name) if name == "UPDATE" => self.on_update(msg, call, peer, now),
            // A MESSAGE inside a call is a text like any other.
            Method::Other(ref name) if name == "MESSAGE" => self.on_text(msg, &method, peer, now),
            Method::Other(_) => self.on_prack(msg, call, peer, now),
            _ => {}
        }
    }

    /// Tells a request it is refused; `tag` is our To tag for a reply.
    pub(super) fn refuse(
        &mut self,
        msg: &Message,
        method: &Method,
        peer: Peer,
        now: Instant,
        tag: &str,
        refusal: Refusal,
    ) {
        match refusal {
            Refusal::Reply(code, reason, header) => {
                let mut b = self.builder(msg, peer, code, reason).to_tag(tag);
                if let Some((name, value)) = header {
                    b = b.header(name, value);
                }
                self.respond_new(msg, method, peer, now, b, code);
            }
            Refusal::Limit(limit) => self.limit(msg, method, peer, limit),
        }
    }

    /// Tells a request a limit refuses it (or tells it nothing).
    pub(super) fn limit(&mut self, msg: &Message, method: &Method, peer: Peer, limit: Limit) {
        match limit {
            Limit::Full(why) => self.refuse_stateless(msg, peer, why),
            Limit::Source(why) => self.refuse_source(msg, peer, why),
            Limit::Banned => self.silence(msg, method, peer, "banned"),
        }
    }
}

/// Extensions we are required to support (RFC 3261 §8.2.2.3): 100rel and
/// timer; any other gets 420 naming it.
fn required_extensions(msg: &Message) -> Result<(), Refusal> {
    let unsupported: Vec<String> = msg
        .tokens("Require")
        .into_iter()
        .filter(|t| !(t.eq_ignore_ascii_case("100rel") || t.eq_ignore_ascii_case("timer")))
        .collect();
    if unsupported.is_empty() {
        return Ok(());
    }
    Err(Refusal::Reply(
        420,
        "Bad Extension",
        Some(("Unsupported", unsupported.join(", "))),
    ))
}

/// Why a request is refused, and so how it is told.
pub(super) enum Refusal {
    /// A final response with our To tag, through a new server transaction
    /// (`respond_new`): code, reason and one more header.
    Reply(u16, &'static str, Option<(&'static str, String)>),
    /// A limit (see [`Limit`]).
    Limit(Limit),
}

/// A limit that refuses a request.
pub(super) enum Limit {
    /// This gateway's: 503 keeping no state (`refuse_stateless`).
    Full(&'static str),
    /// The request's source's: 503 saying so (`refuse_source`).
    Source(&'static str),
    /// The source is banned: silence (`silence`).
    Banned,
}

impl Limit {
    /// Admission's verdict as a limit, if it refuses.
    pub(super) fn of(verdict: Verdict) -> Result<(), Limit> {
        match verdict {
            Verdict::Pass => Ok(()),
            Verdict::Refuse(why) => Err(Limit::Source(why)),
            Verdict::Drop => Err(Limit::Banned),
        }
    }
}

impl From<Limit> for Refusal {
    fn from(limit: Limit) -> Refusal {
        Refusal::Limit(limit)
    }
}
