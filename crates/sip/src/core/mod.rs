//! The UAS core: transactions, dialogs and call admission, sans-IO.
//!
//! Inputs are messages with the peer they came from, commands from the call
//! layer, and `now`; outputs are bytes to send, call events and connections
//! to close, read with [`Core::poll_output`]. [`Core::next_deadline`] tells
//! the driver when to call [`Core::on_timers`]. Nothing here sleeps or does
//! I/O, so every schedule is tested with a hand-moved clock.
//!
//! The parts: this file keeps the tables and the timers; `inbound` parses
//! each message, applies admission and routes it;
//! `uas` answers calls, `uac` places them, `session` changes them while up
//! (re-INVITE, UPDATE, PRACK, session timers), `register` keeps our
//! registration with a trunk, `registrar` takes the REGISTERs of the
//! officers' softphones to the registrar and its answers back.
//!
//! A call (dialog) as seen from here:
//!
//! ```text
//!  INVITE ──> 100, 180 ──> Offered ──Answer──> Accepted ──ACK──> Confirmed
//!                            │  (ring delay)     │ 2xx resent      │
//!                  CANCEL/BYE│ Reject            │ no ACK in 64·T1 │ BYE either way
//!                            v                   v  → BYE          v
//!                           Ended  <─────────────┴─────────────────┘
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::admission::{Admission, AdmissionConfig, Origin, Verdict, SOURCE_HEADER};
use super::dialog;
use super::message::{
    self, Limits, Malformed, Message, Method, ReplyHeaders, RequestSpec, ResponseBuilder,
    StartLine, Transport,
};
use super::sdp::{self, Media, Negotiation, SdpError, SrtpPolicy};
use super::session_timer::{self, UasTimer};
use super::transaction::{ClientTx, ServerTx, TimerAction, TimerConfig, TwoXxRetransmit};
use crate::metrics::SipMetrics as Metrics;
use crate::shedding::Load;

/// Methods other SIP elements use that we recognise but do not allow (405);
/// any other unknown method gets 501 (RFC 3261 §21.4.6, §21.5.2). REGISTER
/// is allowed with a registrar, MESSAGE with an inbox (replies to pages).
const KNOWN_ELSEWHERE: &[&str] = &[
    "REGISTER",
    "MESSAGE",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "PUBLISH",
];

/// Transaction identity (RFC 3261 §17.2.3). ACK is matched as INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TxKey {
    Branch {
        branch: String,
        sent_by: String,
        method: String,
    },
    /// RFC 2543 peers: no magic cookie.
    Legacy {
        call_id: String,
        cseq: u32,
        from_tag: String,
        via: String,
        method: String,
    },
}

impl TxKey {
    fn of(msg: &Message, method: &Method) -> TxKey {
        let method = match method {
            Method::Ack => "INVITE".to_string(),
            m => m.as_str().to_string(),
        };
        match msg.top_via.rfc3261_branch() {
            Some(b) => TxKey::Branch {
                branch: b.to_string(),
                sent_by: msg.top_via.sent_by.to_ascii_lowercase(),
                method,
            },
            None => TxKey::Legacy {
                call_id: msg.call_id.clone(),
                cseq: msg.cseq,
                from_tag: msg.from_tag.clone().unwrap_or_default(),
                // `parse` refuses a message without a Via.
                via: msg.reply.vias.first().cloned().unwrap_or_default(),
                method,
            },
        }
    }

    fn with_method(&self, m: &str) -> TxKey {
        let mut k = self.clone();
        match &mut k {
            TxKey::Branch { method, .. } | TxKey::Legacy { method, .. } => *method = m.into(),
        }
        k
    }
}

struct TxEntry {
    key: TxKey,
    tx: ServerTx,
    peer: Peer,
    /// The address the request first came from (what admission counts).
    source: IpAddr,
    call: Option<CallRef>,
}

/// An INVITE we sent (RFC 3261 §17.1.1, without Timer D: we answer every
/// final response copy with the same ACK).
struct Uac {
    branch: String,
    cseq: u32,
    /// The INVITE's client transaction (Timer A/B, the ring limit once
    /// proceeding, the wait after our CANCEL).
    tx: ClientTx,
    /// How long it may ring before we cancel.
    ring: Duration,
    /// The ACK for a 2xx and where it goes, resent for each 2xx copy.
    ack: Option<(Peer, Bytes)>,
    /// A CANCEL was sent: the final response ends the call.
    cancelled: bool,
    /// The Request-URI, and credentials for one answer to a challenge.
    uri: String,
    credentials: Option<(String, String)>,
    /// Our SDP offer (sent again with credentials).
    offer: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// We sent an INVITE and wait for its final response.
    Dialing,
    Offered,
    Accepted,
    Confirmed,
}

struct Call {
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our From in requests we send in this dialog (with our tag).
    local_party: String,
    /// Their address, our To in requests we send (with their tag).
    remote_party: String,
    /// Set for calls we placed (paging).
    uac: Option<Uac>,
    peer: Peer,
    /// The source its limits count against (see [`Origin`]).
    source: IpAddr,
    invite_tx: u64,
    invite_reply: ReplyHeaders,
    remote_target: String,
    route_set: Vec<String>,
    local_cseq: u32,
    state: CallState,
    negotiation: Option<Negotiation>,
    session_id: u64,
    /// Our SDP, once answered (re-INVITEs get it again).
    our_sdp: Option<String>,
    /// The 200 waiting for the ring delay.
    delayed_ok: Option<(Instant, Bytes)>,
    pending_ok: Option<TwoXxRetransmit>,
    offered_at: Instant,
    /// Our RTP address, for answers to later offers.
    rtp: Option<SocketAddr>,
    /// The `o=` version of our last description (RFC 3264 §8).
    sdp_version: u64,
    /// Our offer went in the 200 to an offer-less re-INVITE: the ACK answers.
    offer_pending: bool,
    /// The peer lists UPDATE in Allow (refreshes go by UPDATE then).
    peer_update: bool,
    /// The timer the INVITE asked for (RFC 4028 §9), for our 200.
    uas_timer: UasTimer,
    /// The session timer in force.
    timer: Option<session_timer::Timer>,
    /// A refresh of ours is in flight (their re-INVITE meanwhile: 491).
    refreshing: bool,
    /// A reliable 180 waiting for its PRACK (RFC 3262), with the 200 held
    /// until it comes.
    reliable: Option<Reliable>,
    /// Calls we placed: the highest RSeq we acknowledged with PRACK.
    rseq_acked: Option<u32>,
}

impl Call {
    /// A request of ours in this dialog (RFC 3261 §12.2.1.1): routed by its
    /// route set to its remote target, on a new branch; where it goes, and
    /// its branch and bytes.
    fn request(
        &self,
        method: &str,
        cseq: u32,
        body: Option<(&str, &[u8])>,
        headers: &[(&'static str, String)],
        user_agent: &str,
    ) -> (Peer, String, Bytes) {
        let branch = format!("z9hG4bK{}", random_token());
        self.request_on(branch, method, cseq, body, headers, user_agent)
    }

    /// A request in this dialog on the given branch (the ACK of a failure
    /// goes on its INVITE's, RFC 3261 §17.1.1.3).
    fn request_on(
        &self,
        branch: String,
        method: &str,
        cseq: u32,
        body: Option<(&str, &[u8])>,
        headers: &[(&'static str, String)],
        user_agent: &str,
    ) -> (Peer, String, Bytes) {
        let routed = dialog::route(&self.route_set, &self.remote_target);
        let peer = next_hop(&self.peer, &routed, &self.route_set);
        // ACK carries no Contact; the others do (target refresh, RFC 3261 §8.1.1.8).
        let contact = (method != "ACK").then(|| contact_uri(&self.peer));
        let data = RequestSpec {
            method,
            uri: &routed.request_uri,
            via: peer.via(&branch),
            from: &self.local_party,
            to: &self.remote_party,
            call_id: &self.call_id,
            cseq,
            route: &routed.route,
            contact: contact.as_deref(),
            user_agent,
            body,
            headers,
        }
        .build();
        (peer, branch, data)
    }
}

/// A reliable provisional response of ours (RFC 3262 §3).
struct Reliable {
    rseq: u32,
    data: Bytes,
    /// Next retransmission and interval (UDP).
    retransmit: Option<(Instant, Duration)>,
    give_up: Instant,
    /// Our 200, held until the PRACK.
    held_ok: Option<Bytes>,
}

/// What happens with the final response to one of our requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Nothing (our BYE, PRACK, CANCEL).
    Quiet,
    /// `Output::RequestDone` (a page's MESSAGE).
    Report,
    /// A session refresh of this call.
    Refresh(CallRef),
    /// Our registration with the trunk.
    Register,
}

struct Client {
    tx: ClientTx,
    peer: Peer,
    branch: String,
    purpose: Purpose,
    /// For an INVITE: the ACK sent for its 2xx (again for each copy).
    ack: Option<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum TimerKey {
    Tx(u64),
    Call(CallRef),
    /// A session timer: our refresh, or the session's end (RFC 4028).
    Session(CallRef),
    /// A reliable provisional response's retransmission (RFC 3262).
    Reliable(CallRef),
    /// Our registration's refresh (or its retry).
    Register,
    /// The app's answer to a request handed over (a REGISTER to the
    /// registrar, a MESSAGE to the inbox) is overdue.
    Handed(u64),
    Client(u64),
    Conn(u64),
}

struct Conn {
    last_activity: Instant,
}

/// The UAS core.
pub struct Core {
    cfg: CoreConfig,
    metrics: Arc<Metrics>,
    next_id: u64,
    /// Boxed: the table's slots stay small (at 60 calls/s about 20,000
    /// transactions wait out Timer J at once; an inline entry of ~400 bytes
    /// in every slot, empty ones too, was most of the core's memory).
    txs: HashMap<u64, Box<TxEntry>>,
    tx_index: HashMap<TxKey, u64>,
    calls: HashMap<CallRef, Call>,
    dialogs: HashMap<(String, String), CallRef>,
    /// Initial INVITEs by (Call-ID, From tag, CSeq), for merged requests
    /// (RFC 3261 §8.2.2.2).
    initial: HashMap<(String, String, u32), CallRef>,
    /// Our requests (BYE, MESSAGE): the transaction, where it goes, its
    /// branch, and whether its outcome is reported.
    clients: HashMap<u64, Client>,
    /// Calls we placed, by their INVITE's branch.
    uac_index: HashMap<String, CallRef>,
    /// INVITEs of ours that ended with a failure, by branch: their
    /// completed transactions, which send the ACK again for each copy of
    /// the response until Timer D (RFC 3261 §17.1.1.2), and where to.
    uac_completed: HashMap<String, (Peer, ClientTx)>,
    client_index: HashMap<String, u64>,
    conns: HashMap<u64, Conn>,
    timers: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    armed: HashMap<TimerKey, Instant>,
    out: VecDeque<Output>,
    stopping: bool,
    admission: Admission,
    /// Calls offered to us (not the ones we placed) holding a slot: what
    /// `max_calls` bounds.
    inbound: usize,
    /// Calls we placed, up: what `max_placed` bounds.
    placed: usize,
    /// When shedding was last logged (once a second at most).
    shed_logged: Option<Instant>,
    registration: Option<Registering>,
    /// Requests handed to the app (REGISTERs to the registrar, MESSAGEs to
    /// the inbox) waiting for its answer: what the answer is built from.
    handed: HashMap<u64, Handed>,
    /// Where the request being handled comes from, as admission counts it
    /// (the socket's peer, or the source a proxy forwarded): set for each
    /// request by `handle_message`, read by the limits and transactions.
    origin: Origin,
}

fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Core {
    pub fn new(cfg: CoreConfig, metrics: Arc<Metrics>) -> Core {
        Core {
            admission: Admission::new(cfg.admission.clone()),
            inbound: 0,
            placed: 0,
            shed_logged: None,
            registration: None,
            handed: HashMap::new(),
            origin: Origin::direct(SocketAddr::from(([0, 0, 0, 0], 0)), "UDP"),
            cfg,
            metrics,
            next_id: 1,
            txs: HashMap::new(),
            tx_index: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            initial: HashMap::new(),
            clients: HashMap::new(),
            uac_index: HashMap::new(),
            uac_completed: HashMap::new(),
            client_index: HashMap::new(),
            conns: HashMap::new(),
            timers: BinaryHeap::new(),
            armed: HashMap::new(),
            out: VecDeque::new(),
            stopping: false,
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Calls that hold a slot (offered, answered or confirmed).
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn next_deadline(&mut self) -> Option<Instant> {
        // Drop stale heap entries so the driver does not wake for nothing.
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if self.armed.get(&key) == Some(&at) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn arm(&mut self, key: TimerKey, at: Option<Instant>) {
        match at {
            Some(at) if self.armed.get(&key) != Some(&at) => {
                self.armed.insert(key, at);
                self.timers.push(Reverse((at, key)));
            }
            Some(_) => {}
            None => {
                self.armed.remove(&key);
            }
        }
    }

    fn send(&mut self, peer: &Peer, data: Bytes) {
        self.out.push_back(Output::Send {
            link: peer.link,
            to: peer.addr,
            data,
        });
    }

    fn event(&mut self, e: CallEvent) {
        self.out.push_back(Output::Event(e));
    }

    // ----- connections -------------------------------------------------

    /// A TCP connection was accepted.
    pub fn on_connected(&mut self, conn: u64, now: Instant) {
        self.conns.insert(conn, Conn { last_activity: now });
        self.arm(TimerKey::Conn(conn), Some(now + self.cfg.tcp_idle));
    }

    /// A TCP connection closed (by the peer or by us).
    pub fn on_disconnected(&mut self, conn: u64) {
        self.conns.remove(&conn);
        self.arm(TimerKey::Conn(conn), None);
    }

    fn conn_busy(&self, conn: u64) -> bool {
        self.calls
            .values()
            .any(|c| c.peer.link.conn() == Some(conn))
            || self.txs.values().any(|t| t.peer.link.conn() == Some(conn))
    }

    // ----- inbound -----------------------------------------------------

    // ----- commands ------------------------------------------------------

    pub fn on_command(&mut self, cmd: CallCommand, now: Instant) {
        match cmd {
            CallCommand::Answer { call, rtp } => self.answer(call, rtp, now),
            CallCommand::Reject {
                call,
                status,
                reason,
            } => self.reject(call, status, reason, now),
            CallCommand::Hangup { call } => {
                let state = self.calls.get(&call).map(|c| c.state);
                match state {
                    Some(CallState::Dialing) => self.cancel_dial(call, now),
                    Some(CallState::Offered) => {
                        self.reject(call, 480, "Temporarily Unavailable", now)
                    }
                    Some(_) => self.end_call(call, EndReason::Hangup, now, true),
                    None => {}
                }
            }
        }
    }

    fn reject(&mut self, call: CallRef, status: u16, reason: &str, now: Instant) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.state != CallState::Offered {
            return;
        }
        let data = ResponseBuilder::new(&c.invite_reply, status, reason)
            .to_tag(&c.local_tag)
            .source(c.peer.addr)
            .header("Server", self.cfg.user_agent.clone())
            .build();
        let (tx_id, peer) = (c.invite_tx, c.peer);
        self.respond_on(tx_id, peer, status, data, now);
        self.remove_call(call, EndReason::Rejected(status));
    }

    /// A final response on an existing INVITE transaction.
    fn respond_on(&mut self, tx_id: u64, peer: Peer, status: u16, data: Bytes, now: Instant) {
        let Some(e) = self.txs.get_mut(&tx_id) else {
            return;
        };
        let accepted = e.tx.respond(status, data.clone(), now);
        let at = e.tx.next_deadline();
        self.arm(TimerKey::Tx(tx_id), at);
        if accepted {
            self.send(&peer, data);
        }
    }

    /// Ends a call: 487 for an INVITE not yet answered, BYE if `send_bye`
    /// and the dialog is established.
    fn end_call(&mut self, call: CallRef, reason: EndReason, now: Instant, send_bye: bool) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.state == CallState::Dialing {
            // The final response to the CANCEL's INVITE ends the call.
            return self.cancel_dial(call, now);
        } else if c.state == CallState::Offered {
            let data = ResponseBuilder::new(&c.invite_reply, 487, "Request Terminated")
                .to_tag(&c.local_tag)
                .source(c.peer.addr)
                .build();
            let (tx_id, peer) = (c.invite_tx, c.peer);
            self.respond_on(tx_id, peer, 487, data, now);
        } else if send_bye {
            self.send_bye(call, now);
        }
        self.remove_call(call, reason);
    }

    fn remove_call(&mut self, call: CallRef, reason: EndReason) {
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        match &c.uac {
            Some(u) => {
                self.uac_index.remove(&u.branch);
                self.placed = self.placed.saturating_sub(1);
            }
            None => {
                self.inbound = self.inbound.saturating_sub(1);
                self.admission.call_ended(c.source);
            }
        }
        self.dialogs
            .remove(&(c.call_id.clone(), c.local_tag.clone()));
        let cseq = parse_cseq_num(&c.invite_reply.cseq).unwrap_or(0);
        self.initial.remove(&(
            c.call_id.clone(),
            c.remote_tag.clone().unwrap_or_default(),
            cseq,
        ));
        self.arm(TimerKey::Call(call), None);
        self.arm(TimerKey::Session(call), None);
        self.arm(TimerKey::Reliable(call), None);
        Metrics::inc(&self.metrics.calls_ended);
        self.event(CallEvent::Ended { call, reason });
    }

    /// Sends a request outside any dialog to `peer`; its outcome comes back
    /// as `Output::RequestDone` with the returned id.
    pub fn send_request(&mut self, req: &OutRequest, peer: Peer, now: Instant) -> u64 {
        let branch = format!("z9hG4bK{}", random_token());
        let from = format!("<{}>;tag={}", req.from, random_token());
        let to = format!("<{}>", req.uri);
        let call_id = format!("{}@hotline", random_token());
        let data = RequestSpec {
            method: req.method,
            uri: &req.uri,
            via: peer.via(&branch),
            from: &from,
            to: &to,
            call_id: &call_id,
            cseq: 1,
            route: &req.route,
            contact: None,
            user_agent: &self.cfg.user_agent,
            body: Some((&req.content_type, &req.body)),
            headers: &[],
        }
        .build();
        self.start_client(data, peer, branch, Purpose::Report, now)
    }

    /// Starts a non-INVITE client transaction (RFC 3261 §17.1.2) for
    /// `data`, keyed by its Via `branch`, and sends it; `report` asks for
    /// `Output::RequestDone` when it ends.
    fn start_client(
        &mut self,
        data: Bytes,
        peer: Peer,
        branch: String,
        purpose: Purpose,
        now: Instant,
    ) -> u64 {
        let reliable = peer.transport().reliable();
        let tx = if data.starts_with(b"INVITE ") {
            ClientTx::invite(data.clone(), reliable, self.cfg.timers, now)
        } else {
            ClientTx::new(data.clone(), reliable, self.cfg.timers, now)
        };
        let id = self.id();
        let at = tx.next_deadline();
        self.client_index.insert(branch.clone(), id);
        self.clients.insert(
            id,
            Client {
                tx,
                peer,
                branch,
                purpose,
                ack: None,
            },
        );
        self.arm(TimerKey::Client(id), Some(at));
        self.send(&peer, data);
        id
    }

    /// True when no request of ours (a BYE) still waits for its answer.
    pub fn idle(&self) -> bool {
        self.clients.is_empty()
    }

    /// Ends every call (the gateway is stopping); new INVITEs get 503 from
    /// now on.
    pub fn shutdown(&mut self, now: Instant) {
        self.stopping = true;
        let calls: Vec<CallRef> = self.calls.keys().copied().collect();
        for call in calls {
            let offered = self
                .calls
                .get(&call)
                .is_some_and(|c| c.state == CallState::Offered);
            if offered {
                self.reject(call, 503, "Service Unavailable", now);
            } else {
                self.end_call(call, EndReason::Shutdown, now, true);
            }
        }
    }
}

/// `RAck: rseq cseq method` (RFC 3262 §7.2), for an INVITE.
fn parse_rack(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split_whitespace();
    let rseq = it.next()?.parse().ok()?;
    let cseq = it.next()?.parse().ok()?;
    it.next()
        .filter(|m| m.eq_ignore_ascii_case("INVITE"))
        .map(|_| (rseq, cseq))
}

/// The request or response lists UPDATE in Allow.
fn allows_update(msg: &Message) -> bool {
    msg.tokens("Allow")
        .iter()
        .any(|t| t.eq_ignore_ascii_case("UPDATE"))
}

fn parse_cseq_num(cseq: &str) -> Option<u32> {
    cseq.split_whitespace().next()?.parse().ok()
}

fn host_port(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
    }
}

/// Where a request in a dialog goes: over the dialog's link, to the first
/// route's address when the route set names one by IP literal. With no
/// route set (or a host name, the core does no DNS) it goes where the
/// dialog's messages come from: behind a NAT the Contact may not be
/// reachable, the source is. On a TCP link whose connection has closed the
/// driver connects to that address.
fn next_hop(peer: &Peer, routed: &dialog::Routed, route_set: &[String]) -> Peer {
    if route_set.is_empty() {
        return *peer;
    }
    match dialog::hop_addr(&routed.next_hop) {
        Some(addr) if addr.is_ipv4() == peer.addr.is_ipv4() => Peer { addr, ..*peer },
        _ => *peer,
    }
}

/// Our Contact URI for a peer.
fn contact_uri(peer: &Peer) -> String {
    match peer.transport() {
        Transport::Udp => format!("sip:hotline@{}", host_port(peer.local)),
        Transport::Tcp => format!("sip:hotline@{};transport=tcp", host_port(peer.local)),
        Transport::Tls => format!("sip:hotline@{};transport=tls", host_port(peer.local)),
    }
}

mod inbound;
use inbound::{Limit, Refusal};
mod inbox;
mod register;
mod registrar;
mod session;
mod timers;
mod types;
mod uac;
mod uas;

pub use types::*;

pub use inbox::{TextRequest, MAX_TEXT_BYTES};
use register::Registering;
pub use register::{Registration, RegistrationState};
use registrar::Handed;
pub use registrar::{Contacts, RegisterAnswer, RegisterRequest, REGISTRAR_WAIT};

#[cfg(test)]
mod tests;
