//! Answering calls (the UAS): the INVITE, its CANCEL and ACK, our 200 (held
//! for the ring delay or a PRACK), our BYE.

use super::*;

/// An INVITE that passed the checks: what its call is answered with.
struct Admitted {
    /// The session timer it asked for (RFC 4028 §9), for our 200.
    uas_timer: UasTimer,
    /// Its offer negotiated; `None` without one (ours goes in the 200).
    negotiation: Option<Negotiation>,
}

/// An INVITE taken on: its call, its server transaction (100 and 180
/// sent), the dialog's route set, and a reliable 180 waiting for its PRACK.
struct Taken {
    call: CallRef,
    tx: u64,
    route_set: Vec<String>,
    reliable: Option<Reliable>,
}

impl Core {
    /// A new INVITE: checked (a refusal answers it and keeps no call), then
    /// taken on (100, 180) and offered to the call layer.
    pub(super) fn on_invite(&mut self, msg: Message, peer: Peer, now: Instant, tag: String) {
        let admitted = match self.admit_invite(&msg, peer, now) {
            Ok(admitted) => admitted,
            Err(refusal) => return self.refuse(&msg, &Method::Invite, peer, now, &tag, refusal),
        };
        let taken = self.take_invite(&msg, peer, now, &tag);
        self.offer_call(&msg, peer, now, tag, admitted, taken);
    }

    /// The checks of a new INVITE, in order; the first that fails refuses
    /// it. Those after the session timer's are limits (ours, then the
    /// source's), and the offer is negotiated last.
    fn admit_invite(
        &mut self,
        msg: &Message,
        peer: Peer,
        now: Instant,
    ) -> Result<Admitted, Refusal> {
        self.not_merged(msg)?;
        sdp_body(msg)?;
        accepts_sdp(msg, peer)?;
        let uas_timer = session_timer_asked(msg)?;
        self.room_for_a_call(msg)?;
        self.not_shedding(now)?;
        self.source_room(now)?;
        let negotiation = self.negotiate_offer(msg, peer)?;
        Ok(Admitted {
            uas_timer,
            negotiation,
        })
    }

    /// 482 for a merged request: another copy of an initial INVITE we
    /// have, come by another path (RFC 3261 §8.2.2.2).
    fn not_merged(&self, msg: &Message) -> Result<(), Refusal> {
        let from_tag = msg.from_tag.clone().unwrap_or_default();
        if self
            .initial
            .contains_key(&(msg.call_id.clone(), from_tag, msg.cseq))
        {
            return Err(Refusal::Reply(482, "Loop Detected", None));
        }
        Ok(())
    }

    /// 503 with Retry-After while stopping; at `max_calls`, 503 keeping no
    /// state (counted and logged).
    fn room_for_a_call(&self, msg: &Message) -> Result<(), Refusal> {
        if self.stopping {
            let retry_after = self.cfg.retry_after.to_string();
            return Err(Refusal::Reply(
                503,
                "Service Unavailable",
                Some(("Retry-After", retry_after)),
            ));
        }
        if self.inbound >= self.cfg.max_calls {
            Metrics::inc(&self.metrics.sip_overload_rejected);
            tracing::warn!(call_id = %msg.call_id, max_calls = self.cfg.max_calls, "refusing call: at max_calls");
            return Err(Limit::Full("max_calls").into());
        }
        Ok(())
    }

    /// While the load sheds new calls: 503 keeping no state (counted, and
    /// logged once a second at most).
    fn not_shedding(&mut self, now: Instant) -> Result<(), Refusal> {
        let Some(why) = self.cfg.load.shed(now) else {
            return Ok(());
        };
        Metrics::inc(&self.metrics.sip_shed);
        if self
            .shed_logged
            .is_none_or(|t| now >= t + Duration::from_secs(1))
        {
            self.shed_logged = Some(now);
            tracing::warn!(why, "shedding new calls: admitted calls keep their audio");
        }
        Err(Limit::Full(why).into())
    }

    /// The source's room: for a transaction in the table (else 503 keeping
    /// no state), and for a call under admission's per-source limits.
    fn source_room(&mut self, now: Instant) -> Result<(), Refusal> {
        let source = self.origin.ip();
        if !self.admission.tx_room(source, self.txs.len(), now) {
            return Err(Limit::Full("transaction table full").into());
        }
        Limit::of(self.admission.invite(source, now, self.cfg.max_calls))?;
        Ok(())
    }

    /// The caller's offer negotiated (`None`: no offer, ours goes in the
    /// 200). 488 with a Warning saying why (RFC 3261 §20.43, code 304),
    /// 400 for an offer that does not parse.
    fn negotiate_offer(&self, msg: &Message, peer: Peer) -> Result<Option<Negotiation>, Refusal> {
        let not_acceptable = |why: String| {
            let warning = format!("304 {} \"{why}\"", peer.local.ip());
            Refusal::Reply(488, "Not Acceptable Here", Some(("Warning", warning)))
        };
        if msg.body.is_empty() {
            if self.cfg.srtp == SrtpPolicy::Required {
                // Our offer would be plain RTP: SRTP needs the caller's.
                return Err(not_acceptable("SRTP required: offer a=crypto".into()));
            }
            return Ok(None);
        }
        match sdp::negotiate(&msg.body, self.cfg.srtp) {
            Ok(n) => Ok(Some(n)),
            Err(SdpError::NoCommonCodec) => Err(not_acceptable("Only PCMU and PCMA audio".into())),
            Err(SdpError::SrtpRequired) => {
                Metrics::inc(&self.metrics.srtp_refused);
                let why = format!("SRTP required: {} by SDES", sdp::SUITE);
                Err(not_acceptable(why))
            }
            Err(SdpError::Malformed(e)) => {
                tracing::debug!(call_id = %msg.call_id, error = %e, "unparsable SDP offer");
                Err(Refusal::Reply(400, "Malformed SDP Offer", None))
            }
        }
    }

    /// Takes an admitted INVITE on: its server transaction, 100 at once,
    /// then 180; the call counted (`max_calls`, the source's calls).
    fn take_invite(&mut self, msg: &Message, peer: Peer, now: Instant, tag: &str) -> Taken {
        let key = TxKey::of(msg, &Method::Invite);
        let mut tx = ServerTx::new(true, peer.transport().reliable(), self.cfg.timers);
        let trying = ResponseBuilder::new(&msg.reply, 100, "Trying")
            .source(peer.addr)
            .build();
        tx.respond(100, trying.clone(), now);
        self.send(&peer, trying);
        let call = self.id();
        // The dialog's route set: what the proxies recorded, in order; every
        // dialog-creating response carries it back (RFC 3261 §12.1.1).
        let route_set = dialog::uas_route_set(msg.record_route());
        // A caller that requires 100rel gets the 180 reliably (RFC 3262 §3):
        // with an RSeq, sent again until its PRACK; our 200 waits for it.
        let rseq = msg
            .tokens("Require")
            .iter()
            .any(|t| t.eq_ignore_ascii_case("100rel"))
            .then(|| rand::random::<u32>() % (1 << 31) + 1);
        let ringing = self.ringing(msg, peer, tag, &route_set, rseq);
        tx.respond(180, ringing.clone(), now);
        self.send(&peer, ringing.clone());
        let t = self.cfg.timers;
        let reliable = rseq.map(|rseq| Reliable {
            rseq,
            data: ringing,
            retransmit: (!peer.transport().reliable()).then(|| (now + t.t1, t.t1)),
            give_up: now + t.t64(),
            held_ok: None,
        });
        let tx = self.insert_tx(key, tx, peer, Some(call), now);
        self.inbound += 1;
        self.admission.call_started(self.origin.ip(), now);
        Taken {
            call,
            tx,
            route_set,
            reliable,
        }
    }

    /// Our 180, with the route set and our Contact; with `rseq`, reliable.
    fn ringing(
        &self,
        msg: &Message,
        peer: Peer,
        tag: &str,
        route_set: &[String],
        rseq: Option<u32>,
    ) -> Bytes {
        let mut ringing = route_set.iter().fold(
            self.builder(msg, peer, 180, "Ringing").to_tag(tag),
            |b, r| b.header("Record-Route", r.clone()),
        );
        if let Some(rseq) = rseq {
            ringing = ringing
                .header("Require", "100rel")
                .header("RSeq", rseq.to_string());
        }
        ringing
            .header("Contact", format!("<{}>", contact_uri(&peer)))
            .header("Allow", ALLOW)
            .header("Supported", SUPPORTED)
            .build()
    }

    /// Records the call taken on (its dialog, its INVITE as an initial
    /// request) and offers it to the call layer: `Incoming`.
    fn offer_call(
        &mut self,
        msg: &Message,
        peer: Peer,
        now: Instant,
        tag: String,
        admitted: Admitted,
        taken: Taken,
    ) {
        let call = taken.call;
        let reliable_at = taken
            .reliable
            .as_ref()
            .map(|r| r.retransmit.map_or(r.give_up, |(a, _)| a));
        let info = self.caller_info(msg, peer);
        self.dialogs
            .insert((msg.call_id.clone(), tag.clone()), call);
        let from_tag = msg.from_tag.clone().unwrap_or_default();
        self.initial
            .insert((msg.call_id.clone(), from_tag, msg.cseq), call);
        let media = admitted.negotiation.as_ref().map(|n| n.media.clone());
        let offered = Call::offered(msg, peer, self.origin.ip(), now, tag, admitted, taken);
        self.calls.insert(call, offered);
        if reliable_at.is_some() {
            self.arm(TimerKey::Reliable(call), reliable_at);
        }
        Metrics::inc(&self.metrics.calls_offered);
        self.event(CallEvent::Incoming { call, info, media });
    }

    /// The call as the call layer is told of it.
    fn caller_info(&self, msg: &Message, peer: Peer) -> Box<CallInfo> {
        // An asserted identity is the caller's number only from inside the
        // trust domain (RFC 3325 §6: the court's PBX or SBC, `[sip]
        // trusted`, reached directly or through a proxy that forwarded its
        // address); from anyone else the number is only claimed.
        let caller = msg.caller_identity(self.admission.trusted(self.origin.ip()));
        Box::new(CallInfo {
            call_id: msg.call_id.clone(),
            from: msg.reply.from.clone(),
            caller_number: caller.number,
            number_asserted: caller.asserted,
            caller_display: caller.display,
            privacy: caller.privacy,
            to: msg.reply.to.clone(),
            request_uri: match &msg.start {
                StartLine::Request { uri, .. } => uri.clone(),
                StartLine::Response { .. } => String::new(),
            },
            p_asserted_identity: msg.header("P-Asserted-Identity"),
            user_agent: msg.header("User-Agent"),
            source: self.origin.addr,
            transport: peer.transport(),
            local_ip: peer.local.ip(),
        })
    }

    pub(super) fn on_cancel(&mut self, msg: &Message, peer: Peer, now: Instant) {
        let method = Method::Cancel;
        let invite_key = TxKey::of(msg, &method).with_method("INVITE");
        let Some(&tx_id) = self.tx_index.get(&invite_key) else {
            let tag = random_token();
            let b = self
                .builder(msg, peer, 481, "Call/Transaction Does Not Exist")
                .to_tag(&tag);
            return self.respond_new(msg, &method, peer, now, b, 481);
        };
        // 200 for the CANCEL itself (its To tag: the one our 180 carried).
        let call = self.txs.get(&tx_id).and_then(|e| e.call);
        let tag = call
            .and_then(|c| self.calls.get(&c))
            .map(|c| c.local_tag.clone())
            .unwrap_or_else(random_token);
        let b = self.builder(msg, peer, 200, "OK").to_tag(&tag);
        self.respond_new(msg, &method, peer, now, b, 200);
        if let Some(call) = call {
            let offered = self
                .calls
                .get(&call)
                .is_some_and(|c| c.state == CallState::Offered);
            if offered {
                self.end_call(call, EndReason::Cancelled, now, false);
            }
        }
    }

    pub(super) fn on_ack(&mut self, msg: &Message, _peer: Peer, now: Instant) {
        // ACK for a non-2xx final response: same transaction.
        let key = TxKey::of(msg, &Method::Ack);
        if let Some(&id) = self.tx_index.get(&key) {
            let Some(e) = self.txs.get_mut(&id) else {
                return;
            };
            if !matches!(e.tx.state, crate::transaction::ServerState::Accepted) {
                e.tx.on_ack(now);
                let at = e.tx.next_deadline();
                self.arm(TimerKey::Tx(id), at);
                return;
            }
        }
        // ACK for a 2xx: the dialog.
        let Some(call) = msg
            .to_tag
            .as_ref()
            .and_then(|t| self.dialogs.get(&(msg.call_id.clone(), t.clone())).copied())
        else {
            tracing::debug!(call_id = %msg.call_id, "dropping ACK outside any dialog");
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.pending_ok.as_ref().map(|p| p.cseq) != Some(msg.cseq) {
            return; // a retransmitted ACK
        }
        c.pending_ok = None;
        if c.state != CallState::Accepted {
            // ACK of a re-INVITE: it answers the offer our 200 carried.
            let answer = std::mem::take(&mut c.offer_pending);
            self.arm(TimerKey::Call(call), None);
            if answer {
                self.take_answer(call, &msg.body, now);
            }
            return;
        }
        c.state = CallState::Confirmed;
        Metrics::inc(&self.metrics.calls_confirmed);
        let media = match &c.negotiation {
            Some(n) => Some(n.media.clone()),
            // Late offer: the ACK carries the answer.
            // Our offer was plain RTP: keys in the answer are no use.
            None => sdp::negotiate(&msg.body, SrtpPolicy::Off).ok().map(|n| {
                let m = n.media.clone();
                c.negotiation = Some(n);
                m
            }),
        };
        self.arm(TimerKey::Call(call), None);
        match media {
            Some(media) => self.event(CallEvent::Confirmed { call, media }),
            None => {
                tracing::warn!(call_id = %msg.call_id, "ACK carried no usable SDP answer to our offer");
                self.end_call(call, EndReason::BadAnswer, now, true);
            }
        }
    }

    pub(super) fn answer(&mut self, call: CallRef, rtp: SocketAddr, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let held = c.reliable.as_ref().is_some_and(|r| r.held_ok.is_some());
        if c.state != CallState::Offered || c.delayed_ok.is_some() || held {
            return;
        }
        c.rtp = Some(rtp);
        let sdp = match &c.negotiation {
            Some(n) => n.answer(rtp, c.session_id, c.sdp_version),
            None => sdp::offer(rtp, c.session_id, c.sdp_version),
        };
        c.our_sdp = Some(sdp.clone());
        let contact = contact_uri(&c.peer);
        let mut b = c.route_set.iter().fold(
            ResponseBuilder::new(&c.invite_reply, 200, "OK").to_tag(&c.local_tag),
            |b, r| b.header("Record-Route", r.clone()),
        );
        if let UasTimer::Use {
            interval,
            refresher,
            require,
        } = c.uas_timer
        {
            b = b.header(
                "Session-Expires",
                format!("{interval};refresher={}", refresher.as_str()),
            );
            if require {
                b = b.header("Require", "timer");
            }
        }
        let ok = b
            .source(c.peer.addr)
            .header("Contact", format!("<{contact}>"))
            .header("Allow", ALLOW)
            .header("Supported", SUPPORTED)
            .header("Server", self.cfg.user_agent.clone())
            .body("application/sdp", sdp.as_bytes())
            .build();
        let send_at = c.offered_at + self.cfg.ring;
        if send_at > now {
            c.delayed_ok = Some((send_at, ok));
            self.arm(TimerKey::Call(call), Some(send_at));
        } else {
            self.release_ok(call, ok, now);
        }
    }

    /// Sends our 200, or holds it while a reliable 180 waits for its PRACK.
    pub(super) fn release_ok(&mut self, call: CallRef, ok: Bytes, now: Instant) {
        if let Some(r) = self.calls.get_mut(&call).and_then(|c| c.reliable.as_mut()) {
            r.held_ok = Some(ok);
            return;
        }
        self.send_ok(call, ok, now);
    }

    pub(super) fn send_ok(&mut self, call: CallRef, ok: Bytes, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let peer = c.peer;
        let reliable = peer.transport().reliable();
        let tx_id = c.invite_tx;
        let cseq = parse_cseq_num(&c.invite_reply.cseq).unwrap_or(0);
        c.state = CallState::Accepted;
        c.delayed_ok = None;
        // The session timer runs from our 2xx (RFC 4028 §9).
        if let UasTimer::Use {
            interval,
            refresher,
            ..
        } = c.uas_timer
        {
            let timer = session_timer::Timer {
                interval: Duration::from_secs(interval),
                we_refresh: refresher == session_timer::Refresher::Uas,
                since: now,
            };
            c.timer = Some(timer);
            self.arm(TimerKey::Session(call), Some(timer.due()));
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let retransmit = TwoXxRetransmit::new(cseq, ok.clone(), reliable, self.cfg.timers, now);
        let at = retransmit.next_deadline();
        c.pending_ok = Some(retransmit);
        if let Some(e) = self.txs.get_mut(&tx_id) {
            e.tx.respond(200, ok.clone(), now);
            let tat = e.tx.next_deadline();
            self.arm(TimerKey::Tx(tx_id), tat);
        }
        self.send(&peer, ok);
        self.arm(TimerKey::Call(call), Some(at));
        Metrics::inc(&self.metrics.calls_answered);
    }

    pub(super) fn send_bye(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.local_cseq += 1;
        let (peer, branch, bye) = c.request("BYE", c.local_cseq, None, &[], &self.cfg.user_agent);
        self.start_client(bye, peer, branch, Purpose::Quiet, now);
    }
}

/// 415 for a body that is not SDP, naming what we accept.
fn sdp_body(msg: &Message) -> Result<(), Refusal> {
    if !msg.body.is_empty() && msg.content_type().as_deref() != Some("application/sdp") {
        return Err(Refusal::Reply(
            415,
            "Unsupported Media Type",
            Some(("Accept", "application/sdp".into())),
        ));
    }
    Ok(())
}

/// 406 when the caller's Accept leaves out SDP, the only body we send.
fn accepts_sdp(msg: &Message, peer: Peer) -> Result<(), Refusal> {
    let accept = msg.tokens("Accept");
    let sdp = |a: &String| {
        let t = a
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        t == "application/sdp" || t == "application/*" || t == "*/*"
    };
    if accept.is_empty() || accept.iter().any(sdp) {
        return Ok(());
    }
    let warning = format!(
        "399 {} \"Only application/sdp bodies are sent\"",
        peer.local.ip()
    );
    Err(Refusal::Reply(
        406,
        "Not Acceptable",
        Some(("Warning", warning)),
    ))
}

/// The session timer the INVITE asks for (RFC 4028 §9); 422 for too short
/// an interval.
fn session_timer_asked(msg: &Message) -> Result<UasTimer, Refusal> {
    let uas_timer = session_timer::uas_negotiate(
        msg.header("Session-Expires")
            .or_else(|| msg.header("x"))
            .and_then(|v| session_timer::parse_session_expires(&v)),
        msg.header("Min-SE")
            .and_then(|v| session_timer::parse_min_se(&v)),
        msg.tokens("Supported")
            .iter()
            .any(|t| t.eq_ignore_ascii_case("timer")),
    );
    if let UasTimer::TooSmall { min_se } = uas_timer {
        return Err(Refusal::Reply(
            422,
            "Session Interval Too Small",
            Some(("Min-SE", min_se.to_string())),
        ));
    }
    Ok(uas_timer)
}

impl Call {
    /// A call offered to us: the INVITE's dialog, our tag on it, in state
    /// `Offered`.
    fn offered(
        msg: &Message,
        peer: Peer,
        source: IpAddr,
        now: Instant,
        tag: String,
        admitted: Admitted,
        taken: Taken,
    ) -> Call {
        let remote_target = msg
            .contact_uri()
            .or_else(|| message::angle_uri(&msg.reply.from))
            .unwrap_or_default();
        Call {
            call_id: msg.call_id.clone(),
            local_party: format!("{};tag={tag}", msg.reply.to),
            remote_party: msg.reply.from.clone(),
            uac: None,
            local_tag: tag,
            remote_tag: msg.from_tag.clone(),
            peer,
            source,
            invite_tx: taken.tx,
            invite_reply: msg.reply.clone(),
            remote_target,
            route_set: taken.route_set,
            local_cseq: 0,
            state: CallState::Offered,
            negotiation: admitted.negotiation,
            session_id: rand::random::<u32>() as u64,
            our_sdp: None,
            delayed_ok: None,
            pending_ok: None,
            offered_at: now,
            rtp: None,
            sdp_version: 1,
            offer_pending: false,
            peer_update: allows_update(msg),
            uas_timer: admitted.uas_timer,
            timer: None,
            refreshing: false,
            reliable: taken.reliable,
            rseq_acked: None,
        }
    }
}
