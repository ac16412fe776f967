//! Placing calls (the UAC, paging): the INVITE on its client transaction
//! (`transaction::ClientTx`: Timer A/B, the ring limit, Timer D), its
//! responses (ACK, a challenge answered once, PRACK for a reliable 18x),
//! CANCEL when it rings too long.

use super::*;

impl Core {
    /// Places a call to `peer`; its progress comes back as `CallEvent`s for
    /// the returned call (`Confirmed` with the negotiated media, `Ended`).
    /// Beyond `max_placed` calls up, the call is not placed: `Ended` at
    /// once (inbound calls have their own bound, `max_calls`).
    pub fn dial(&mut self, d: &Dial, peer: Peer, now: Instant) -> CallRef {
        let call = self.id();
        if self.placed >= self.cfg.max_placed {
            tracing::warn!(
                max = self.cfg.max_placed,
                "sip.max_placed_calls reached: call not placed"
            );
            self.event(CallEvent::Ended {
                call,
                reason: EndReason::TooManyPlaced,
            });
            return call;
        }
        self.placed += 1;
        let tag = random_token();
        let call_id = format!("{}@hotline", random_token());
        let branch = format!("z9hG4bK{}", random_token());
        let session_id = rand::random::<u32>() as u64;
        let sdp = sdp::offer(d.rtp, session_id, 1);
        let local_party = format!("<{}>;tag={tag}", d.from_uri);
        let remote_party = format!("<{}>", d.uri);
        let contact = contact_uri(&peer);
        let invite = RequestSpec {
            method: "INVITE",
            uri: &d.uri,
            via: peer.via(&branch),
            from: &local_party,
            to: &remote_party,
            call_id: &call_id,
            cseq: 1,
            route: &d.route,
            contact: Some(&contact),
            user_agent: &self.cfg.user_agent,
            body: Some(("application/sdp", sdp.as_bytes())),
            headers: &[("Supported", SUPPORTED.into()), ("Allow", ALLOW.into())],
        }
        .build();
        let tx = ClientTx::invite(
            invite.clone(),
            peer.transport().reliable(),
            self.cfg.timers,
            now,
        )
        .ringing_at_most(d.ring_timeout);
        let deadline = tx.next_deadline();
        let uac = Uac {
            branch: branch.clone(),
            cseq: 1,
            tx,
            ring: d.ring_timeout,
            ack: None,
            cancelled: false,
            uri: d.uri.clone(),
            credentials: d.credentials.clone(),
            offer: sdp.clone(),
        };
        self.calls.insert(
            call,
            Call {
                call_id: call_id.clone(),
                local_tag: tag.clone(),
                remote_tag: None,
                local_party,
                remote_party,
                uac: Some(uac),
                peer,
                source: peer.addr.ip(),
                invite_tx: 0,
                invite_reply: ReplyHeaders {
                    vias: Vec::new(),
                    from: String::new(),
                    to: String::new(),
                    call_id: call_id.clone(),
                    cseq: String::new(),
                },
                remote_target: d.uri.clone(),
                route_set: d.route.clone(),
                local_cseq: 1,
                state: CallState::Dialing,
                negotiation: None,
                session_id,
                our_sdp: Some(sdp),
                delayed_ok: None,
                pending_ok: None,
                offered_at: now,
                rtp: Some(d.rtp),
                sdp_version: 1,
                offer_pending: false,
                peer_update: false,
                uas_timer: UasTimer::None,
                timer: None,
                refreshing: false,
                reliable: None,
                rseq_acked: None,
            },
        );
        // Requests from the callee (their BYE) carry our tag as To tag.
        self.dialogs.insert((call_id, tag), call);
        self.uac_index.insert(branch, call);
        self.send(&peer, invite);
        self.arm(TimerKey::Call(call), Some(deadline));
        call
    }

    /// A response to an INVITE we sent.
    pub(super) fn on_invite_response(
        &mut self,
        call: CallRef,
        msg: &Message,
        code: u16,
        now: Instant,
    ) {
        if code < 200 {
            self.invite_proceeding(call, msg, code, now)
        } else if code < 300 {
            self.invite_answered(call, msg, code, now)
        } else {
            self.invite_failed(call, msg, code, now)
        }
    }

    /// A provisional response: PRACK for a reliable one.
    fn invite_proceeding(&mut self, call: CallRef, msg: &Message, code: u16, now: Instant) {
        let Some(u) = self.calls.get_mut(&call).and_then(|c| c.uac.as_mut()) else {
            return;
        };
        // Proceeding: no more retransmissions; ringing is bounded by the
        // ring limit instead of Timer B (after our CANCEL, by the wait for
        // its final response).
        u.tx.on_response(code, now);
        let at = u.tx.next_deadline();
        self.arm(TimerKey::Call(call), Some(at));
        self.prack(call, msg, now)
    }

    /// A 2xx: the dialog from it, and our ACK (the same again for each
    /// copy). An answer that crossed our CANCEL is hung up at once.
    fn invite_answered(&mut self, call: CallRef, msg: &Message, code: u16, now: Instant) {
        let user_agent = self.cfg.user_agent.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(u) = c.uac.as_mut() else { return };
        if let Some((to, ack)) = u.ack.clone() {
            return self.send(&to, ack); // a copy of the 2xx
        }
        u.tx.on_response(code, now);
        let cseq = u.cseq;
        c.remote_tag = msg.to_tag.clone();
        c.remote_party = msg.reply.to.clone();
        if let Some(target) = msg.contact_uri() {
            c.remote_target = target;
        }
        c.route_set = dialog::uac_route_set(msg.record_route());
        let (ack_peer, _, ack) = c.request("ACK", cseq, None, &[], &user_agent);
        let Some(u) = c.uac.as_mut() else { return };
        u.ack = Some((ack_peer, ack.clone()));
        let cancelled = u.cancelled;
        self.send(&ack_peer, ack);
        self.arm(TimerKey::Call(call), None);
        if cancelled {
            // The answer crossed our CANCEL: the dialog exists, hang up
            // with a BYE.
            if let Some(c) = self.calls.get_mut(&call) {
                c.state = CallState::Confirmed;
            }
            return self.end_call(call, EndReason::Hangup, now, true);
        }
        self.placed_call_up(call, msg, now);
    }

    /// A call we placed is up: the session timer the callee chose, and the
    /// callee's answer to our offer (none usable: we hang up).
    fn placed_call_up(&mut self, call: CallRef, msg: &Message, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.state = CallState::Confirmed;
        // The session timer the callee chose (RFC 4028 §7.2): `uac` is us.
        c.peer_update = allows_update(msg);
        let se = msg
            .header("Session-Expires")
            .or_else(|| msg.header("x"))
            .and_then(|v| session_timer::parse_session_expires(&v));
        if let Some(se) = se {
            let timer = session_timer::Timer {
                interval: Duration::from_secs(se.interval.max(session_timer::MIN_SE)),
                we_refresh: se.refresher != Some(session_timer::Refresher::Uas),
                since: now,
            };
            c.timer = Some(timer);
            self.arm(TimerKey::Session(call), Some(timer.due()));
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        // Our offer is plain RTP.
        match sdp::negotiate(&msg.body, SrtpPolicy::Off) {
            Ok(n) => {
                let media = n.media.clone();
                c.negotiation = Some(n);
                self.event(CallEvent::Confirmed { call, media });
            }
            Err(e) => {
                tracing::warn!(call_id = %msg.call_id, error = %e, "answer without usable SDP: hanging up");
                self.end_call(call, EndReason::BadAnswer, now, true);
            }
        }
    }

    /// A failure: ACKed on the INVITE's branch (RFC 3261 §17.1.1.3); a
    /// challenge is answered once, anything else ends the call.
    fn invite_failed(&mut self, call: CallRef, msg: &Message, code: u16, now: Instant) {
        let user_agent = self.cfg.user_agent.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let peer = c.peer;
        let Some(u) = c.uac.as_mut() else { return };
        let ack = RequestSpec {
            method: "ACK",
            uri: &c.remote_target,
            via: peer.via(&u.branch),
            from: &c.local_party,
            to: &msg.reply.to,
            call_id: &c.call_id,
            cseq: u.cseq,
            route: &c.route_set,
            contact: None,
            user_agent: &user_agent,
            body: None,
            headers: &[],
        }
        .build();
        let reason = if u.cancelled {
            EndReason::Hangup
        } else {
            EndReason::Rejected(code)
        };
        let retry = if (code == 401 || code == 407) && !u.cancelled {
            answer_challenge(u, msg, code)
        } else {
            None
        };
        // Completed: the transaction resends this ACK for copies of the
        // failure until Timer D (32 s over UDP, none over TCP).
        u.tx.on_response(code, now);
        u.tx.acknowledge(ack.clone());
        let done = (u.branch.clone(), (peer, u.tx.clone()));
        self.uac_completed
            .retain(|_, (_, tx)| tx.next_deadline() > now);
        self.uac_completed.insert(done.0, done.1);
        self.send(&peer, ack);
        if let Some((name, value)) = retry {
            return self.reinvite_with(call, name, value, now);
        }
        self.remove_call(call, reason);
    }

    /// A reliable provisional response to our INVITE (`Require: 100rel`,
    /// `RSeq`) gets a PRACK in its early dialog (RFC 3262 §4), once per RSeq.
    pub(super) fn prack(&mut self, call: CallRef, msg: &Message, now: Instant) {
        let reliable = msg
            .tokens("Require")
            .iter()
            .any(|t| t.eq_ignore_ascii_case("100rel"));
        let rseq = msg
            .header("RSeq")
            .and_then(|v| v.trim().parse::<u32>().ok());
        let (true, Some(rseq), Some(to_tag)) = (reliable, rseq, msg.to_tag.as_ref()) else {
            return;
        };
        let user_agent = self.cfg.user_agent.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(u) = c.uac.as_ref() else { return };
        if c.rseq_acked.is_some_and(|r| rseq <= r) {
            return; // a retransmission: our PRACK's transaction sends it again
        }
        c.rseq_acked = Some(rseq);
        c.local_cseq += 1;
        let route_set = dialog::uac_route_set(msg.record_route());
        let target = msg.contact_uri().unwrap_or_else(|| c.remote_target.clone());
        let routed = dialog::route(&route_set, &target);
        let peer = next_hop(&c.peer, &routed, &route_set);
        let branch = format!("z9hG4bK{}", random_token());
        tracing::debug!(call_id = %c.call_id, rseq, tag = %to_tag, "PRACK for a reliable provisional");
        let data = RequestSpec {
            method: "PRACK",
            uri: &routed.request_uri,
            via: peer.via(&branch),
            from: &c.local_party,
            to: &msg.reply.to,
            call_id: &c.call_id,
            cseq: c.local_cseq,
            route: &routed.route,
            contact: None,
            user_agent: &user_agent,
            body: None,
            headers: &[("RAck", format!("{rseq} {} INVITE", u.cseq))],
        }
        .build();
        self.start_client(data, peer, branch, Purpose::Quiet, now);
    }

    /// Sends the INVITE again, on a new branch with the next CSeq and the
    /// credentials header.
    pub(super) fn reinvite_with(
        &mut self,
        call: CallRef,
        name: &'static str,
        value: String,
        now: Instant,
    ) {
        let user_agent = self.cfg.user_agent.clone();
        let t = self.cfg.timers;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let peer = c.peer;
        let Some(u) = c.uac.as_mut() else { return };
        let branch = format!("z9hG4bK{}", random_token());
        u.cseq += 1;
        let contact = contact_uri(&peer);
        let invite = RequestSpec {
            method: "INVITE",
            uri: &u.uri,
            via: peer.via(&branch),
            from: &c.local_party,
            to: &c.remote_party,
            call_id: &c.call_id,
            cseq: u.cseq,
            route: &c.route_set,
            contact: Some(&contact),
            user_agent: &user_agent,
            body: Some(("application/sdp", u.offer.as_bytes())),
            headers: &[(name, value)],
        }
        .build();
        let old = std::mem::replace(&mut u.branch, branch.clone());
        // Requests later in this dialog continue from this CSeq.
        c.local_cseq = u.cseq;
        u.tx = ClientTx::invite(invite.clone(), peer.transport().reliable(), t, now)
            .ringing_at_most(u.ring);
        let at = u.tx.next_deadline();
        self.uac_index.remove(&old);
        self.uac_index.insert(branch, call);
        self.send(&peer, invite);
        self.arm(TimerKey::Call(call), Some(at));
    }

    /// Gives up on a call still ringing: CANCEL (RFC 3261 §9.1).
    pub(super) fn cancel_dial(&mut self, call: CallRef, now: Instant) {
        let user_agent = self.cfg.user_agent.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let peer = c.peer;
        let Some(u) = c.uac.as_mut() else { return };
        if u.cancelled {
            return;
        }
        u.cancelled = true;
        // Wait for the 487 (and ACK it); give up at 64*T1.
        u.tx.cancelled(now);
        let cancel = RequestSpec {
            method: "CANCEL",
            uri: &c.remote_target,
            via: peer.via(&u.branch),
            from: &c.local_party,
            to: &c.remote_party,
            call_id: &c.call_id,
            cseq: u.cseq,
            route: &c.route_set,
            contact: None,
            user_agent: &user_agent,
            body: None,
            headers: &[],
        }
        .build();
        let at = u.tx.next_deadline();
        let branch = u.branch.clone();
        self.start_client(cancel, peer, branch, Purpose::Quiet, now);
        self.arm(TimerKey::Call(call), Some(at));
    }
}

/// A 401 or 407 answered with our credentials (RFC 3261 §22.2): the
/// header to send the INVITE again with. Once: the credentials are taken.
fn answer_challenge(u: &mut Uac, msg: &Message, code: u16) -> Option<(&'static str, String)> {
    let header = if code == 401 {
        "WWW-Authenticate"
    } else {
        "Proxy-Authenticate"
    };
    let challenge = msg.header(header).and_then(|v| crate::digest::parse(&v));
    let (Some(ch), Some((user, pass))) = (challenge, u.credentials.take()) else {
        return None;
    };
    let value = crate::digest::authorization(&ch, &user, &pass, "INVITE", &u.uri, &random_token());
    let name = if code == 401 {
        "Authorization"
    } else {
        "Proxy-Authorization"
    };
    Some((name, value))
}
