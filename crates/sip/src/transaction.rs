//! Server and client transactions (RFC 3261 §17, with RFC 6026's Accepted
//! state), sans-IO: callers pass `now`, transactions return what to send and
//! when they next need to be woken. No sockets, no tokio tasks.
//!
//! INVITE server transaction (UAS side):
//!
//! ```text
//!            INVITE: send 100 Trying
//!                 |
//!                 v        INVITE retransmit: resend last provisional
//!           +-----------+
//!           | Proceeding|--- 1xx from TU: send, stay
//!           +-----------+
//!   2xx from TU |     | 300-699 from TU: send
//!               v     v
//!      +----------+  +-----------+  Timer G (unreliable): resend, double to T2
//!      | Accepted |  | Completed |  INVITE retransmit: resend final
//!      +----------+  +-----------+  Timer H (64*T1): Terminated, "no ACK"
//!  INVITE: absorb |     | ACK
//!  ACK: to TU     |     v
//!  Timer L        | +-----------+
//!  (64*T1)        | | Confirmed |  ACKs absorbed; Timer I (T4, 0 on TCP)
//!                 v +-----------+
//!           +------------+  |
//!           | Terminated |<-+
//!           +------------+
//! ```
//!
//! Non-INVITE server transaction: Trying/Proceeding until the final response,
//! then Completed, absorbing request retransmissions by resending the final
//! response, until Timer J (64*T1 on UDP, 0 on TCP).
//!
//! Non-INVITE client transaction (our BYE): Timer E retransmits on UDP,
//! doubling to T2; Timer F (64*T1) gives up; a final response completes it
//! (Timer K: T4 on UDP, 0 on TCP).

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// RFC 3261 timer base values.
#[derive(Debug, Clone, Copy)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1: Timers B, F, H, J (unreliable) and L.
    pub fn t64(&self) -> Duration {
        self.t1 * 64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

/// What a timer firing asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerAction {
    /// Nothing due yet.
    None,
    /// Send these bytes again.
    Retransmit(Bytes),
    /// INVITE final response never acknowledged (Timer H).
    NoAck,
    /// The transaction is over and can be forgotten.
    Terminated,
}

/// A server transaction; `invite` selects the INVITE state machine.
#[derive(Debug)]
pub struct ServerTx {
    pub invite: bool,
    pub state: ServerState,
    reliable: bool,
    timers: TimerConfig,
    last_response: Option<Bytes>,
    /// Timer G: next retransmission and its interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer H / I / J / L.
    end: Option<Instant>,
}

impl ServerTx {
    pub fn new(invite: bool, reliable: bool, timers: TimerConfig) -> ServerTx {
        ServerTx {
            invite,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            reliable,
            timers,
            last_response: None,
            retransmit: None,
            end: None,
        }
    }

    /// The request arrived again. Returns the response to resend, if any.
    pub fn on_retransmit(&mut self) -> Option<Bytes> {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => self.last_response.clone(),
            _ => None,
        }
    }

    /// An ACK for a non-2xx final response (INVITE only).
    pub fn on_ack(&mut self, now: Instant) {
        if self.invite && self.state == ServerState::Completed {
            self.state = ServerState::Confirmed;
            self.retransmit = None;
            self.end = Some(
                now + if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.t4
                },
            );
        }
    }

    /// The TU responds; returns false when the transaction can no longer
    /// carry a response (already final).
    pub fn respond(&mut self, code: u16, bytes: Bytes, now: Instant) -> bool {
        match self.state {
            ServerState::Trying | ServerState::Proceeding => {}
            _ => return false,
        }
        self.last_response = Some(bytes);
        if code < 200 {
            self.state = ServerState::Proceeding;
            return true;
        }
        let t64 = self.timers.t64();
        if self.invite && code < 300 {
            // RFC 6026: the TU retransmits the 2xx; we absorb INVITE copies.
            self.state = ServerState::Accepted;
            self.end = Some(now + t64);
        } else if self.invite {
            self.state = ServerState::Completed;
            if !self.reliable {
                self.retransmit = Some((now + self.timers.t1, self.timers.t1));
            }
            self.end = Some(now + t64);
        } else {
            self.state = ServerState::Completed;
            self.end = Some(now + if self.reliable { Duration::ZERO } else { t64 });
        }
        true
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.retransmit.map(|r| r.0), self.end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        if let Some(end) = self.end {
            if now >= end {
                let no_ack = self.invite && self.state == ServerState::Completed;
                self.state = ServerState::Terminated;
                self.retransmit = None;
                self.end = None;
                return if no_ack {
                    TimerAction::NoAck
                } else {
                    TimerAction::Terminated
                };
            }
        }
        if let Some((at, interval)) = self.retransmit {
            if now >= at {
                let next = (interval * 2).min(self.timers.t2);
                self.retransmit = Some((now + next, next));
                if let Some(r) = &self.last_response {
                    return TimerAction::Retransmit(r.clone());
                }
            }
        }
        TimerAction::None
    }
}

/// Retransmission of a 2xx to INVITE by the UAS core until the ACK comes
/// (RFC 3261 §13.3.1.4): T1 doubling to T2 on unreliable transports, and
/// the dialog is given up after 64·T1 in any case.
#[derive(Debug, Clone)]
pub struct TwoXxRetransmit {
    pub cseq: u32,
    bytes: Bytes,
    retransmit: Option<(Instant, Duration)>,
    give_up: Instant,
    t2: Duration,
}

impl TwoXxRetransmit {
    pub fn new(cseq: u32, bytes: Bytes, reliable: bool, t: TimerConfig, now: Instant) -> Self {
        TwoXxRetransmit {
            cseq,
            bytes,
            retransmit: (!reliable).then(|| (now + t.t1, t.t1)),
            give_up: now + t.t64(),
            t2: t.t2,
        }
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn next_deadline(&self) -> Instant {
        self.retransmit
            .map_or(self.give_up, |(at, _)| at.min(self.give_up))
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        if now >= self.give_up {
            return TimerAction::NoAck;
        }
        match self.retransmit {
            Some((at, interval)) if now >= at => {
                let next = (interval * 2).min(self.t2);
                self.retransmit = Some((now + next, next));
                TimerAction::Retransmit(self.bytes.clone())
            }
            _ => TimerAction::None,
        }
    }
}

/// A client transaction: non-INVITE (the BYE, UPDATE, PRACK and MESSAGE we
/// send, RFC 3261 §17.1.2) or INVITE (§17.1.1: the calls we place and the
/// re-INVITEs inside a dialog). An INVITE's Timer A doubles without the T2
/// cap and stops at a provisional response, Timer B gives up on a silent
/// peer; a failure is acknowledged by the TU through [`ClientTx::acknowledge`]
/// and that ACK is resent for every copy of it until Timer D; the TU
/// acknowledges a 2xx itself.
#[derive(Debug, Clone)]
pub struct ClientTx {
    request: Bytes,
    retransmit: Option<(Instant, Duration)>,
    started: Instant,
    /// Timer B / F, then the proceeding limit, then Timer D / K.
    end: Instant,
    proceeding: bool,
    completed: bool,
    reliable: bool,
    invite: bool,
    /// An INVITE may be proceeding (ringing) this long from its start;
    /// without a limit Timer B stands.
    proceeding_limit: Option<Duration>,
    /// The ACK of an INVITE's failure.
    ack: Option<Bytes>,
    timers: TimerConfig,
}

impl ClientTx {
    pub fn new(request: Bytes, reliable: bool, timers: TimerConfig, now: Instant) -> ClientTx {
        ClientTx {
            request,
            retransmit: (!reliable).then(|| (now + timers.t1, timers.t1)),
            started: now,
            end: now + timers.t64(),
            proceeding: false,
            completed: false,
            reliable,
            invite: false,
            proceeding_limit: None,
            ack: None,
            timers,
        }
    }

    /// An INVITE client transaction (Timer A, Timer B).
    pub fn invite(request: Bytes, reliable: bool, timers: TimerConfig, now: Instant) -> ClientTx {
        ClientTx {
            invite: true,
            ..ClientTx::new(request, reliable, timers, now)
        }
    }

    /// Once proceeding (a provisional came), the transaction ends `limit`
    /// after it started unless a final response came: the TU then cancels
    /// (a call ringing too long). Before that, Timer B.
    pub fn ringing_at_most(mut self, limit: Duration) -> ClientTx {
        self.proceeding_limit = Some(limit);
        self
    }

    /// A response arrived; a final one completes the transaction.
    pub fn on_response(&mut self, code: u16, now: Instant) {
        if code >= 200 && !self.completed {
            self.completed = true;
            self.retransmit = None;
            self.end = now
                + match (self.reliable, self.invite) {
                    (true, _) => Duration::ZERO,
                    // Timer D: at least 32 s for copies of a failure.
                    (false, true) => self.timers.t64(),
                    // Timer K.
                    (false, false) => self.timers.t4,
                };
        } else if code < 200 && !self.completed && self.invite {
            // Proceeding: an INVITE is not sent again (§17.1.1.2), and
            // Timer B no longer applies; the TU's limit does, if any.
            self.retransmit = None;
            if !self.proceeding {
                self.proceeding = true;
                if let Some(limit) = self.proceeding_limit {
                    self.end = self.started + limit;
                }
            }
        } else if code < 200 && !self.completed {
            // Proceeding: keep retransmitting at T2 (RFC 3261 §17.1.2.2).
            if let Some((at, _)) = self.retransmit {
                self.retransmit = Some((at, self.timers.t2));
            }
        }
    }

    /// The TU sent a CANCEL for this INVITE: the final response is awaited
    /// for 64·T1 more, then the transaction is given up (RFC 3261 §9.1).
    pub fn cancelled(&mut self, now: Instant) {
        if !self.completed {
            self.retransmit = None;
            self.end = now + self.timers.t64();
        }
    }

    /// The ACK the TU built for the INVITE's failure: sent again for each
    /// copy of the failure (see [`ClientTx::ack`]).
    pub fn acknowledge(&mut self, ack: Bytes) {
        self.ack = Some(ack);
    }

    /// The ACK to resend for a copy of the failure, while Timer D runs.
    pub fn ack(&self, now: Instant) -> Option<&Bytes> {
        self.ack.as_ref().filter(|_| now < self.end)
    }

    pub fn next_deadline(&self) -> Instant {
        self.retransmit.map_or(self.end, |(at, _)| at.min(self.end))
    }

    /// A final response arrived.
    pub fn is_completed(&self) -> bool {
        self.completed
    }

    /// A provisional response arrived, no final one yet.
    pub fn is_proceeding(&self) -> bool {
        self.proceeding && !self.completed
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        if now >= self.end {
            return TimerAction::Terminated;
        }
        match self.retransmit {
            Some((at, interval)) if now >= at => {
                let next = if self.invite {
                    interval * 2
                } else {
                    (interval * 2).min(self.timers.t2)
                };
                self.retransmit = Some((now + next, next));
                TimerAction::Retransmit(self.request.clone())
            }
            _ => TimerAction::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TimerConfig {
        TimerConfig::default()
    }

    /// Drives a transaction's timers to `until`, recording when each
    /// retransmission happened (offsets from `start`, in ms).
    fn drive(
        start: Instant,
        until: Duration,
        mut deadline: impl FnMut() -> Option<Instant>,
        mut fire: impl FnMut(Instant) -> TimerAction,
    ) -> (Vec<u128>, Option<(u128, TimerAction)>) {
        let mut sent = Vec::new();
        while let Some(at) = deadline() {
            if at > start + until {
                break;
            }
            match fire(at) {
                TimerAction::Retransmit(_) => sent.push((at - start).as_millis()),
                TimerAction::None => {}
                other => return (sent, Some(((at - start).as_millis(), other))),
            }
        }
        (sent, None)
    }

    #[test]
    fn invite_error_response_timer_g_then_h() {
        let now = Instant::now();
        let mut tx = ServerTx::new(true, false, t());
        assert!(tx.respond(486, Bytes::from_static(b"486"), now));
        let tx = std::cell::RefCell::new(tx);
        let (sent, end) = drive(
            now,
            Duration::from_secs(60),
            || tx.borrow().next_deadline(),
            |at| tx.borrow_mut().on_timer(at),
        );
        // 500, 1000, 2000, 4000, then every 4000 until 32000.
        assert_eq!(
            sent,
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(end, Some((32000, TimerAction::NoAck)));
    }

    #[test]
    fn ack_stops_retransmission_and_confirms() {
        let now = Instant::now();
        let mut tx = ServerTx::new(true, false, t());
        tx.respond(487, Bytes::from_static(b"487"), now);
        tx.on_ack(now + Duration::from_millis(700));
        assert_eq!(tx.state, ServerState::Confirmed);
        // Timer I = T4 after the ACK, no retransmission before.
        assert_eq!(tx.next_deadline(), Some(now + Duration::from_millis(5700)));
        assert_eq!(
            tx.on_timer(now + Duration::from_millis(5700)),
            TimerAction::Terminated
        );
        // A late INVITE copy is absorbed.
        assert_eq!(tx.on_retransmit(), None);
    }

    #[test]
    fn retransmitted_invite_gets_last_provisional_then_absorbed_after_2xx() {
        let now = Instant::now();
        let mut tx = ServerTx::new(true, false, t());
        tx.respond(100, Bytes::from_static(b"100"), now);
        tx.respond(180, Bytes::from_static(b"180"), now);
        assert_eq!(tx.on_retransmit(), Some(Bytes::from_static(b"180")));
        tx.respond(200, Bytes::from_static(b"200"), now);
        assert_eq!(tx.state, ServerState::Accepted);
        assert_eq!(tx.on_retransmit(), None);
        // No second final response.
        assert!(!tx.respond(487, Bytes::from_static(b"487"), now));
        // Timer L.
        assert_eq!(tx.next_deadline(), Some(now + Duration::from_secs(32)));
    }

    #[test]
    fn non_invite_timer_j() {
        let now = Instant::now();
        let mut udp = ServerTx::new(false, false, t());
        udp.respond(200, Bytes::from_static(b"200"), now);
        assert_eq!(udp.on_retransmit(), Some(Bytes::from_static(b"200")));
        assert_eq!(udp.next_deadline(), Some(now + Duration::from_secs(32)));
        let mut tcp = ServerTx::new(false, true, t());
        tcp.respond(200, Bytes::from_static(b"200"), now);
        assert_eq!(tcp.next_deadline(), Some(now));
        assert_eq!(tcp.on_timer(now), TimerAction::Terminated);
    }

    #[test]
    fn two_xx_schedule_until_give_up() {
        let now = Instant::now();
        let r = std::cell::RefCell::new(TwoXxRetransmit::new(
            1,
            Bytes::from_static(b"200"),
            false,
            t(),
            now,
        ));
        let (sent, end) = drive(
            now,
            Duration::from_secs(60),
            || Some(r.borrow().next_deadline()),
            |at| r.borrow_mut().on_timer(at),
        );
        assert_eq!(&sent[..5], &[500, 1500, 3500, 7500, 11500]);
        assert_eq!(end, Some((32000, TimerAction::NoAck)));
        // Over TCP: no retransmission, still a deadline for the ACK.
        let tcp = TwoXxRetransmit::new(1, Bytes::from_static(b"200"), true, t(), now);
        assert_eq!(tcp.next_deadline(), now + Duration::from_secs(32));
    }

    #[test]
    fn client_tx_timer_e_f_and_k() {
        let now = Instant::now();
        let c = std::cell::RefCell::new(ClientTx::new(Bytes::from_static(b"BYE"), false, t(), now));
        let (sent, end) = drive(
            now,
            Duration::from_secs(60),
            || Some(c.borrow().next_deadline()),
            |at| c.borrow_mut().on_timer(at),
        );
        assert_eq!(&sent[..4], &[500, 1500, 3500, 7500]);
        assert_eq!(end, Some((32000, TimerAction::Terminated)));

        let mut c = ClientTx::new(Bytes::from_static(b"BYE"), false, t(), now);
        c.on_response(200, now + Duration::from_millis(100));
        assert_eq!(c.next_deadline(), now + Duration::from_millis(5100));
    }

    #[test]
    fn invite_client_tx_timer_d_keeps_the_failure_ack() {
        let now = Instant::now();
        let mut c = ClientTx::invite(Bytes::from_static(b"INVITE"), false, t(), now);
        c.on_response(180, now);
        assert!(c.is_proceeding());
        // Without a ring limit, Timer B still bounds a proceeding INVITE.
        assert_eq!(c.next_deadline(), now + Duration::from_secs(32));
        let at = now + Duration::from_secs(3);
        c.on_response(486, at);
        assert!(c.is_completed() && !c.is_proceeding());
        assert_eq!(c.ack(at), None, "the TU has not acknowledged yet");
        c.acknowledge(Bytes::from_static(b"ACK"));
        assert_eq!(
            c.ack(at + Duration::from_secs(31)),
            Some(&Bytes::from_static(b"ACK"))
        );
        // Timer D: 32 s over UDP.
        assert_eq!(c.ack(at + Duration::from_secs(32)), None);
        assert_eq!(
            c.on_timer(at + Duration::from_secs(32)),
            TimerAction::Terminated
        );
        // Over TCP: no retransmission, and Timer D is zero.
        let mut tcp = ClientTx::invite(Bytes::from_static(b"INVITE"), true, t(), now);
        assert_eq!(tcp.next_deadline(), now + Duration::from_secs(32));
        tcp.on_response(503, now);
        assert_eq!(tcp.next_deadline(), now);
    }

    #[test]
    fn a_ringing_invite_ends_at_its_limit_and_waits_64_t1_after_a_cancel() {
        let now = Instant::now();
        let mut c = ClientTx::invite(Bytes::from_static(b"INVITE"), false, t(), now)
            .ringing_at_most(Duration::from_secs(90));
        // Calling: Timer B.
        assert_eq!(c.next_deadline(), now + Duration::from_millis(500));
        c.on_response(100, now + Duration::from_millis(200));
        assert_eq!(c.next_deadline(), now + Duration::from_secs(90));
        // A second provisional does not move the limit.
        c.on_response(180, now + Duration::from_secs(10));
        assert_eq!(c.next_deadline(), now + Duration::from_secs(90));
        let limit = now + Duration::from_secs(90);
        assert_eq!(c.on_timer(limit), TimerAction::Terminated);
        assert!(c.is_proceeding(), "the TU cancels a proceeding INVITE");
        c.cancelled(limit);
        assert_eq!(c.next_deadline(), limit + Duration::from_secs(32));
    }
}
