//! A call while it is up: offer/answer in re-INVITE and UPDATE (RFC 3264
//! §8, RFC 3311), the reliable 180's PRACK (RFC 3262), session timers
//! (RFC 4028): our refreshes and the peer's.

use super::*;

impl Core {
    pub(super) fn on_reinvite(&mut self, msg: &Message, call: CallRef, peer: Peer, now: Instant) {
        let method = Method::Invite;
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        // RFC 3261 §14.2, RFC 3264 §8: an offer while one is pending (ours
        // or theirs) is refused with 491; the old session stays.
        if c.state != CallState::Confirmed
            || c.offer_pending
            || c.refreshing
            || c.pending_ok.is_some()
        {
            let b = self
                .builder(msg, peer, 491, "Request Pending")
                .header("Retry-After", "1");
            return self.respond_new(msg, &method, peer, now, b, 491);
        }
        let (sdp, media) = match self.renegotiate(call, &msg.body, true) {
            Ok((Some(sdp), media)) => (sdp, media),
            Ok((None, _)) => return,
            Err((code, reason)) => {
                let b = self.builder(msg, peer, code, reason);
                return self.respond_new(msg, &method, peer, now, b, code);
            }
        };
        self.target_refresh(call, msg);
        let expires = self.refreshed_by_peer(call, msg, now);
        let ok = self
            .session_ok(msg, peer, expires)
            .body("application/sdp", sdp.as_bytes())
            .build();
        let key = TxKey::of(msg, &method);
        let mut tx = ServerTx::new(true, peer.transport().reliable(), self.cfg.timers);
        tx.respond(200, ok.clone(), now);
        self.send(&peer, ok.clone());
        self.insert_tx(key, tx, peer, Some(call), now);
        let retransmit = TwoXxRetransmit::new(
            msg.cseq,
            ok,
            peer.transport().reliable(),
            self.cfg.timers,
            now,
        );
        let at = retransmit.next_deadline();
        if let Some(c) = self.calls.get_mut(&call) {
            c.pending_ok = Some(retransmit);
        }
        self.arm(TimerKey::Call(call), Some(at));
        if let Some(media) = media {
            self.event(CallEvent::MediaChanged { call, media });
        }
    }

    /// An UPDATE in a confirmed call (RFC 3311): an offer changes the
    /// session as a re-INVITE would; without one it is a refresh.
    pub(super) fn on_update(&mut self, msg: &Message, call: CallRef, peer: Peer, now: Instant) {
        let method = Method::Other("UPDATE".into());
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let offer = !msg.body.is_empty();
        if c.state != CallState::Confirmed || c.refreshing || (offer && c.offer_pending) {
            let b = self
                .builder(msg, peer, 491, "Request Pending")
                .header("Retry-After", "1");
            return self.respond_new(msg, &method, peer, now, b, 491);
        }
        let (sdp, media) = match self.renegotiate(call, &msg.body, false) {
            Ok(x) => x,
            Err((code, reason)) => {
                let b = self.builder(msg, peer, code, reason);
                return self.respond_new(msg, &method, peer, now, b, code);
            }
        };
        self.target_refresh(call, msg);
        let expires = self.refreshed_by_peer(call, msg, now);
        let mut b = self.session_ok(msg, peer, expires);
        if let Some(sdp) = &sdp {
            b = b.body("application/sdp", sdp.as_bytes());
        }
        self.respond_new(msg, &method, peer, now, b, 200);
        if let Some(media) = media {
            self.event(CallEvent::MediaChanged { call, media });
        }
    }

    /// The 2xx to a re-INVITE or UPDATE: our Contact, what we allow and
    /// support, and the session timer in force (with `Require: timer` when
    /// the peer supports it).
    pub(super) fn session_ok<'a>(
        &self,
        msg: &'a Message,
        peer: Peer,
        expires: Option<(String, bool)>,
    ) -> ResponseBuilder<'a> {
        let contact = contact_uri(&peer);
        let mut b = self
            .builder(msg, peer, 200, "OK")
            .header("Contact", format!("<{contact}>"))
            .header("Allow", ALLOW)
            .header("Supported", SUPPORTED);
        if let Some((se, require)) = expires {
            b = b.header("Session-Expires", se);
            if require {
                b = b.header("Require", "timer");
            }
        }
        b
    }

    /// A PRACK (RFC 3262 §3): it acknowledges our reliable 180 when its
    /// RAck names it; then the held 200 goes out.
    pub(super) fn on_prack(&mut self, msg: &Message, call: CallRef, peer: Peer, now: Instant) {
        let method = Method::Other("PRACK".into());
        let rack = msg.header("RAck").and_then(|v| parse_rack(&v));
        let matched = self.calls.get(&call).is_some_and(|c| {
            let cseq = parse_cseq_num(&c.invite_reply.cseq);
            c.reliable
                .as_ref()
                .is_some_and(|r| rack == Some((r.rseq, cseq.unwrap_or(0))))
        });
        if !matched {
            let b = self.builder(msg, peer, 481, "No Matching Reliable Response");
            return self.respond_new(msg, &method, peer, now, b, 481);
        }
        let b = self.builder(msg, peer, 200, "OK");
        self.respond_new(msg, &method, peer, now, b, 200);
        self.arm(TimerKey::Reliable(call), None);
        let held = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.reliable.take())
            .and_then(|r| r.held_ok);
        if let Some(ok) = held {
            self.send_ok(call, ok, now);
        }
    }

    /// An offer (or none) in a re-INVITE or UPDATE of a confirmed call
    /// (RFC 3264 §8): our description for the 2xx and the new media when it
    /// changed. Without an offer a re-INVITE gets ours (the ACK answers it);
    /// an UPDATE gets no body. A refused offer leaves the session as it was.
    #[allow(clippy::type_complexity)]
    pub(super) fn renegotiate(
        &mut self,
        call: CallRef,
        body: &[u8],
        offer_if_none: bool,
    ) -> Result<(Option<String>, Option<Media>), (u16, &'static str)> {
        let policy = self.cfg.srtp;
        let c = self
            .calls
            .get_mut(&call)
            .ok_or((481, "Call/Transaction Does Not Exist"))?;
        let rtp = c.rtp.ok_or((491, "Request Pending"))?;
        if body.is_empty() {
            if !offer_if_none {
                return Ok((None, None));
            }
            c.sdp_version += 1;
            let offer = sdp::offer(rtp, c.session_id, c.sdp_version);
            c.our_sdp = Some(offer.clone());
            c.offer_pending = true;
            return Ok((Some(offer), None));
        }
        let mut n = sdp::negotiate(body, policy).map_err(|e| match e {
            SdpError::NoCommonCodec | SdpError::SrtpRequired => (488, "Not Acceptable Here"),
            SdpError::Malformed(_) => (400, "Malformed SDP Offer"),
        })?;
        if let Some(old) = &c.negotiation {
            n.keep_our_key(&old.media);
        }
        // The same version for the same description, the next for a new one.
        let mut answer = n.answer(rtp, c.session_id, c.sdp_version);
        if c.our_sdp.as_deref() != Some(answer.as_str()) {
            c.sdp_version += 1;
            answer = n.answer(rtp, c.session_id, c.sdp_version);
        }
        let media =
            (c.negotiation.as_ref().map(|o| &o.media) != Some(&n.media)).then(|| n.media.clone());
        c.negotiation = Some(n);
        c.our_sdp = Some(answer.clone());
        Ok((Some(answer), media))
    }

    /// A target refresh request (re-INVITE, UPDATE): its Contact is the
    /// remote target from now on (RFC 3261 §12.2.2).
    pub(super) fn target_refresh(&mut self, call: CallRef, msg: &Message) {
        if let (Some(target), Some(c)) = (msg.contact_uri(), self.calls.get_mut(&call)) {
            c.remote_target = target;
        }
    }

    /// A re-INVITE or UPDATE from the peer refreshes the session (RFC 4028
    /// §9): the interval and refresher it names (`uas`: us, we answer it),
    /// else the ones in force. Returns `Session-Expires` for the 2xx and
    /// whether to require `timer`.
    pub(super) fn refreshed_by_peer(
        &mut self,
        call: CallRef,
        msg: &Message,
        now: Instant,
    ) -> Option<(String, bool)> {
        let se = msg
            .header("Session-Expires")
            .or_else(|| msg.header("x"))
            .and_then(|v| session_timer::parse_session_expires(&v));
        let peer_timer = msg
            .tokens("Supported")
            .iter()
            .any(|t| t.eq_ignore_ascii_case("timer"));
        let c = self.calls.get_mut(&call)?;
        let mut t = match (c.timer, se) {
            (Some(t), _) => t,
            (None, Some(_)) => session_timer::Timer {
                interval: Duration::from_secs(session_timer::MIN_SE),
                we_refresh: true,
                since: now,
            },
            (None, None) => return None,
        };
        if let Some(se) = se {
            t.interval = Duration::from_secs(se.interval.max(session_timer::MIN_SE));
            t.we_refresh = !peer_timer || se.refresher != Some(session_timer::Refresher::Uac);
        }
        t.since = now;
        c.timer = Some(t);
        self.arm(TimerKey::Session(call), Some(t.due()));
        Some((t.header(true), peer_timer))
    }

    /// A session timer expired: ours to refresh, or theirs that did not come.
    pub(super) fn session_timer(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let Some(t) = c.timer else {
            return;
        };
        if c.refreshing {
            return; // its transaction decides
        }
        if t.due() > now {
            return self.arm(TimerKey::Session(call), Some(t.due()));
        }
        if !t.we_refresh {
            tracing::warn!(call_id = %c.call_id, interval_s = t.interval.as_secs(), "no session refresh in time: hanging up (RFC 4028 §10)");
            return self.end_call(call, EndReason::SessionExpired, now, true);
        }
        self.send_refresh(call, now);
    }

    /// Our session refresh: an UPDATE without a body when the peer allows
    /// UPDATE, else a re-INVITE with our description unchanged (RFC 4028 §7.4).
    pub(super) fn send_refresh(&mut self, call: CallRef, now: Instant) {
        let user_agent = self.cfg.user_agent.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(t) = c.timer else {
            return;
        };
        c.local_cseq += 1;
        c.refreshing = true;
        let method = if c.peer_update { "UPDATE" } else { "INVITE" };
        let body = match (method, &c.our_sdp) {
            ("INVITE", Some(sdp)) => Some(("application/sdp", sdp.as_bytes())),
            _ => None,
        };
        let (peer, branch, data) = c.request(
            method,
            c.local_cseq,
            body,
            &[
                ("Session-Expires", t.header(false)),
                ("Supported", SUPPORTED.into()),
            ],
            &user_agent,
        );
        tracing::debug!(call_id = %c.call_id, method, "refreshing the session");
        self.start_client(data, peer, branch, Purpose::Refresh(call), now);
    }

    /// The final answer to our refresh.
    pub(super) fn refresh_answered(
        &mut self,
        call: CallRef,
        client: u64,
        msg: &Message,
        code: u16,
        now: Instant,
    ) {
        let user_agent = self.cfg.user_agent.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.refreshing = false;
        match code {
            200..=299 => {
                let invite = msg.cseq_method == Method::Invite;
                if invite {
                    // The ACK for a 2xx of our re-INVITE (RFC 3261 §13.2.2.4).
                    let (peer, _, ack) = c.request("ACK", msg.cseq, None, &[], &user_agent);
                    if let Some(cl) = self.clients.get_mut(&client) {
                        cl.ack = Some(ack.clone());
                    }
                    self.send(&peer, ack);
                }
                let se = msg
                    .header("Session-Expires")
                    .or_else(|| msg.header("x"))
                    .and_then(|v| session_timer::parse_session_expires(&v));
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if let Some(t) = c.timer.as_mut() {
                    if let Some(se) = se {
                        t.interval = Duration::from_secs(se.interval.max(session_timer::MIN_SE));
                        // In our request's answer `uac` is us.
                        t.we_refresh = se.refresher != Some(session_timer::Refresher::Uas);
                    }
                    t.since = now;
                    let due = t.due();
                    self.arm(TimerKey::Session(call), Some(due));
                }
                // The answer to the offer our re-INVITE carried.
                if invite && !msg.body.is_empty() {
                    self.take_answer(call, &msg.body, now);
                }
            }
            408 | 481 => {
                tracing::warn!(call_id = %c.call_id, code, "session refresh failed: hanging up (RFC 4028 §10)");
                self.end_call(call, EndReason::SessionExpired, now, true);
            }
            491 => {
                // Glare: again after a random 0-2 s (RFC 3261 §14.1).
                let backoff = Duration::from_millis(rand::random::<u64>() % 2000);
                self.arm(TimerKey::Session(call), Some(now + backoff));
            }
            _ => {
                // The peer is there: the session goes on to the next refresh.
                if let Some(t) = c.timer.as_mut() {
                    t.since = now;
                    let due = t.due();
                    self.arm(TimerKey::Session(call), Some(due));
                }
            }
        }
    }

    /// A failure of our re-INVITE is acknowledged on its branch (RFC 3261
    /// §17.1.1.3); its transaction keeps the ACK for copies of it. An
    /// UPDATE's failure needs none.
    pub(super) fn ack_refresh_failure(&mut self, call: CallRef, client: u64, msg: &Message) {
        if msg.cseq_method != Method::Invite {
            return;
        }
        let (Some(c), Some(cl)) = (self.calls.get(&call), self.clients.get(&client)) else {
            return;
        };
        let (peer, _, ack) = c.request_on(
            cl.branch.clone(),
            "ACK",
            msg.cseq,
            None,
            &[],
            &self.cfg.user_agent,
        );
        if let Some(cl) = self.clients.get_mut(&client) {
            cl.tx.acknowledge(ack.clone());
        }
        self.send(&peer, ack);
    }

    /// Our refresh got no answer at all (Timer F or B): the session is gone.
    pub(super) fn refresh_failed(&mut self, call: CallRef, now: Instant) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.refreshing = false;
            tracing::warn!(call_id = %c.call_id, "no answer to our session refresh: hanging up (RFC 4028 §10)");
        }
        self.end_call(call, EndReason::SessionExpired, now, true);
    }

    /// An answer to an offer of ours in a confirmed call (in an ACK or a
    /// 2xx): the new media, or BYE when it is unusable (RFC 3264 §8).
    pub(super) fn take_answer(&mut self, call: CallRef, body: &[u8], now: Instant) {
        let policy = self.cfg.srtp;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        // Our offer carried our key when the call is SRTP (our last
        // description, offered again); else it was plain.
        let srtp = match c.negotiation.as_ref().and_then(|n| n.media.srtp.as_ref()) {
            Some(_) => policy,
            None => SrtpPolicy::Off,
        };
        match sdp::negotiate(body, srtp) {
            Ok(mut n) => {
                if let Some(old) = &c.negotiation {
                    n.keep_our_key(&old.media);
                }
                let changed = c.negotiation.as_ref().map(|o| &o.media) != Some(&n.media);
                let media = n.media.clone();
                c.negotiation = Some(n);
                if changed {
                    self.event(CallEvent::MediaChanged { call, media });
                }
            }
            Err(e) => {
                tracing::warn!(call_id = %c.call_id, error = %e, "answer to our offer unusable: hanging up");
                self.end_call(call, EndReason::BadAnswer, now, true);
            }
        }
    }

    /// A reliable 180's timer: sent again (UDP), or no PRACK came in 64·T1
    /// and the call is refused (RFC 3262 §3).
    pub(super) fn reliable_timer(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let peer = c.peer;
        let Some(r) = c.reliable.as_mut() else {
            return;
        };
        if now >= r.give_up {
            c.reliable = None;
            tracing::warn!(call_id = %c.call_id, "no PRACK for our reliable 180: refusing the call");
            return self.reject(call, 504, "No PRACK Received", now);
        }
        if let Some((at, interval)) = r.retransmit {
            if now >= at {
                let next = interval * 2;
                r.retransmit = Some((now + next, next));
                let data = r.data.clone();
                self.send(&peer, data);
            }
        }
        let Some(r) = self.calls.get(&call).and_then(|c| c.reliable.as_ref()) else {
            return;
        };
        let at = r.retransmit.map_or(r.give_up, |(a, _)| a.min(r.give_up));
        self.arm(TimerKey::Reliable(call), Some(at));
    }
}
