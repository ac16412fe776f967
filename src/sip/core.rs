//! The UAS core: transactions, dialogs and call admission, sans-IO.
//!
//! Inputs are messages with the peer they came from, commands from the call
//! layer, and `now`; outputs are bytes to send, call events and connections
//! to close, read with [`Core::poll_output`]. [`Core::next_deadline`] tells
//! the driver when to call [`Core::on_timers`]. Nothing here sleeps or does
//! I/O, so every schedule is tested with a hand-moved clock.
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

use super::admission::{Admission, AdmissionConfig, Verdict};
use super::dialog;
use super::message::{
    self, Limits, Malformed, Message, Method, ReplyHeaders, RequestSpec, ResponseBuilder,
    StartLine, Transport,
};
use super::sdp::{self, Media, Negotiation, SdpError};
use super::session_timer::{self, UasTimer};
use super::transaction::{ClientTx, ServerTx, TimerAction, TimerConfig, TwoXxRetransmit};
use crate::load::Load;
use crate::metrics::Metrics;

/// Methods we implement, for `Allow`.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK";
/// Extensions we implement (RFC 3262 reliable provisionals, RFC 4028
/// session timers), for `Supported`; any other in `Require` gets 420.
pub const SUPPORTED: &str = "100rel, timer";
/// Bodies we take, for `Accept`.
pub const ACCEPT: &str = "application/sdp, application/dtmf-relay, application/dtmf";
/// Methods other SIP elements use that we recognise but do not allow (405);
/// any other unknown method gets 501 (RFC 3261 §21.4.6, §21.5.2).
const KNOWN_ELSEWHERE: &[&str] = &[
    "REGISTER",
    "MESSAGE",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "PUBLISH",
];

/// Identifies a call between the SIP core and the call layer.
pub type CallRef = u64;

/// Which socket a message travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Link {
    /// Index of the UDP socket among the listeners.
    Udp(u8),
    /// A TCP connection.
    Tcp(u64),
}

/// Where a message came from and which of our addresses it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub link: Link,
    pub addr: SocketAddr,
    /// Our address as the peer sees it (for Contact, Via, SDP).
    pub local: SocketAddr,
}

impl Peer {
    pub fn transport(&self) -> Transport {
        match self.link {
            Link::Udp(_) => Transport::Udp,
            Link::Tcp(_) => Transport::Tcp,
        }
    }

    /// The Via of a request we send to this peer (with `rport`, RFC 3581).
    fn via(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.transport().as_str(),
            host_port(self.local)
        )
    }
}

/// What the call layer learns about a new call.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub call_id: String,
    pub from: String,
    /// The caller's number: from P-Asserted-Identity when the network
    /// asserted one, else the From user part.
    pub caller_number: Option<String>,
    pub caller_display: Option<String>,
    /// The caller asked for privacy (RFC 3323 Privacy, or an anonymous From).
    pub privacy: bool,
    pub to: String,
    pub request_uri: String,
    pub p_asserted_identity: Option<String>,
    pub user_agent: Option<String>,
    pub source: SocketAddr,
    pub transport: Transport,
    /// Our IP address as the caller reaches it.
    pub local_ip: IpAddr,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    CallerBye,
    /// The caller cancelled before we answered.
    Cancelled,
    /// Our 200 OK was never acknowledged (64·T1).
    NoAck,
    /// The late-offer ACK carried no usable answer.
    BadAnswer,
    /// The call layer hung up (it knows why).
    Hangup,
    /// The call layer refused the call with this status.
    Rejected(u16),
    /// The gateway is stopping.
    Shutdown,
    /// No session refresh came in time, or ours failed (RFC 4028 §10).
    SessionExpired,
}

impl EndReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::CallerBye => "caller_bye",
            EndReason::Cancelled => "cancelled",
            EndReason::NoAck => "no_ack",
            EndReason::BadAnswer => "bad_answer",
            EndReason::Hangup => "hangup",
            EndReason::Rejected(_) => "rejected",
            EndReason::Shutdown => "shutdown",
            EndReason::SessionExpired => "session_expired",
        }
    }
}

/// Events for the call layer.
#[derive(Debug, Clone)]
pub enum CallEvent {
    /// A new call; answer it with [`CallCommand::Answer`] or refuse it.
    /// `media` is `None` for a late offer (we offer, the ACK answers).
    Incoming {
        call: CallRef,
        info: Box<CallInfo>,
        media: Option<Media>,
    },
    /// The ACK arrived: media may flow.
    Confirmed { call: CallRef, media: Media },
    /// A re-INVITE, UPDATE or the ACK to our offer changed the session
    /// (address, codec, direction): media follows at once.
    MediaChanged { call: CallRef, media: Media },
    /// An INFO request inside the call (DTMF relay).
    Info {
        call: CallRef,
        content_type: Option<String>,
        body: Bytes,
    },
    /// The call is over; no more events for it.
    Ended { call: CallRef, reason: EndReason },
}

impl CallEvent {
    pub fn call(&self) -> CallRef {
        match self {
            CallEvent::Incoming { call, .. }
            | CallEvent::Confirmed { call, .. }
            | CallEvent::MediaChanged { call, .. }
            | CallEvent::Info { call, .. }
            | CallEvent::Ended { call, .. } => *call,
        }
    }
}

/// Commands from the call layer.
#[derive(Debug, Clone)]
pub enum CallCommand {
    /// Answer with our RTP address (the address in SDP).
    Answer { call: CallRef, rtp: SocketAddr },
    /// Refuse before answering.
    Reject {
        call: CallRef,
        status: u16,
        reason: &'static str,
    },
    /// End the call (BYE, or 487-less refusal if not yet answered).
    Hangup { call: CallRef },
}

/// What the driver must do.
#[derive(Debug, Clone)]
pub enum Output {
    Send {
        link: Link,
        to: SocketAddr,
        data: Bytes,
    },
    Event(CallEvent),
    Close(u64),
    /// The final status of a request sent with [`Core::send_request`]
    /// (`None`: no answer within 64·T1).
    RequestDone {
        id: u64,
        status: Option<u16>,
    },
}

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub timers: TimerConfig,
    pub max_calls: usize,
    pub retry_after: u32,
    pub ring: Duration,
    pub tcp_idle: Duration,
    pub user_agent: String,
    pub limits: Limits,
    /// Per-source limits, bans, scanners, the untrusted share.
    pub admission: AdmissionConfig,
    /// The media clock's lateness and the RTP ports leased: new calls are
    /// shed while either says so.
    pub load: Arc<Load>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            timers: TimerConfig::default(),
            max_calls: 1000,
            retry_after: 30,
            ring: Duration::ZERO,
            tcp_idle: Duration::from_secs(120),
            user_agent: "hotline".into(),
            limits: Limits::default(),
            admission: AdmissionConfig::default(),
            load: Arc::new(Load::default()),
        }
    }
}

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
                via: msg.reply.vias[0].clone(),
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
    invite: Bytes,
    cseq: u32,
    /// Timer A: next retransmission and interval (unreliable, until a
    /// provisional response).
    retransmit: Option<(Instant, Duration)>,
    /// Timer B until a provisional response, then the ring timeout.
    give_up: Instant,
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

struct Registering {
    r: Registration,
    peer: Peer,
    call_id: String,
    tag: String,
    cseq: u32,
    /// The last REGISTER carried credentials (a second 401 is final).
    authenticated: bool,
}

/// How long a failed registration waits before it tries again.
const REGISTER_RETRY: Duration = Duration::from_secs(30);

struct Client {
    tx: ClientTx,
    peer: Peer,
    branch: String,
    purpose: Purpose,
    /// For an INVITE: the ACK sent for its 2xx (again for each copy).
    ack: Option<Bytes>,
}

/// A call the gateway places (a page by phone).
#[derive(Debug, Clone)]
pub struct Dial {
    /// Request-URI and To.
    pub uri: String,
    /// Our From URI.
    pub from_uri: String,
    /// Our RTP address, offered in SDP.
    pub rtp: SocketAddr,
    /// Ringing longer than this is cancelled.
    pub ring_timeout: Duration,
    /// `(user, password)` for a 401/407 challenge.
    pub credentials: Option<(String, String)>,
    /// A pre-loaded route set (an outbound proxy, RFC 3261 §8.1.2), as
    /// name-addrs with `;lr`; the 2xx's Record-Route replaces it.
    pub route: Vec<String>,
}

/// A request the gateway sends outside any call (a SIP MESSAGE page).
#[derive(Debug, Clone)]
pub struct OutRequest {
    pub method: &'static str,
    /// Request-URI and To.
    pub uri: String,
    /// Our From URI.
    pub from: String,
    pub content_type: String,
    pub body: Bytes,
    /// A pre-loaded route (an outbound proxy), as for [`Dial::route`].
    pub route: Vec<String>,
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
    txs: HashMap<u64, TxEntry>,
    tx_index: HashMap<TxKey, u64>,
    calls: HashMap<CallRef, Call>,
    dialogs: HashMap<(String, String), CallRef>,
    /// Initial INVITEs by (Call-ID, From tag, CSeq), for merged requests
    /// (RFC 3261 §8.2.2.2).
    initial: HashMap<(String, String, u32), CallRef>,
    /// Ring timeouts of the calls we placed.
    ring_timeouts: HashMap<CallRef, Duration>,
    /// Our requests (BYE, MESSAGE): the transaction, where it goes, its
    /// branch, and whether its outcome is reported.
    clients: HashMap<u64, Client>,
    /// Calls we placed, by their INVITE's branch.
    uac_index: HashMap<String, CallRef>,
    /// INVITEs of ours that ended with a failure, by branch: the ACK is
    /// sent again for each copy of the response until Timer D (RFC 3261
    /// §17.1.1.2), i.e. where to, the ACK, and until when.
    uac_completed: HashMap<String, (Peer, Bytes, Instant)>,
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
    /// When shedding was last logged (once a second at most).
    shed_logged: Option<Instant>,
    registration: Option<Registering>,
}

fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Core {
    pub fn new(cfg: CoreConfig, metrics: Arc<Metrics>) -> Core {
        Core {
            admission: Admission::new(cfg.admission.clone()),
            inbound: 0,
            shed_logged: None,
            registration: None,
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
            ring_timeouts: HashMap::new(),
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
        self.calls.values().any(|c| c.peer.link == Link::Tcp(conn))
            || self.txs.values().any(|t| t.peer.link == Link::Tcp(conn))
    }

    // ----- inbound -----------------------------------------------------

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

    fn handle_message(&mut self, data: &[u8], peer: Peer, now: Instant) {
        if let Link::Tcp(c) = peer.link {
            if let Some(conn) = self.conns.get_mut(&c) {
                conn.last_activity = now;
            }
        }
        if self.admission.banned(peer.addr.ip(), now) {
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
                        let scanner = msg
                            .header("User-Agent")
                            .is_some_and(|ua| self.admission.scanner(peer.addr.ip(), &ua, now));
                        if scanner {
                            Metrics::inc(&self.metrics.sip_scanner_dropped);
                            return;
                        }
                        self.on_request(msg, method, peer, now)
                    }
                    StartLine::Response { code, .. } => self.on_response(&msg, code, now),
                }
            }
        }
    }

    fn on_malformed(&mut self, m: Malformed, peer: Peer, now: Instant) {
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
                    b = b.header("Allow", ALLOW);
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

    fn on_response(&mut self, msg: &Message, code: u16, now: Instant) {
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
            if let Some((peer, ack, until)) = done {
                if code >= 300 && now < *until {
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
                c.tx.on_response(code, now);
                let at = c.tx.next_deadline();
                let purpose = c.purpose;
                self.arm(TimerKey::Client(id), Some(at));
                if !first_final {
                    return;
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
    fn respond_new(
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
        if !self.admission.tx_room(peer.addr.ip(), self.txs.len(), now) {
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
    fn refuse_stateless(&mut self, msg: &Message, peer: Peer, why: &str) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&msg.call_id, &msg.from_tag, &msg.top_via.branch, msg.cseq).hash(&mut h);
        let tag = format!("{:016x}", h.finish());
        tracing::debug!(from = %peer.addr, call_id = %msg.call_id, why, "refusing statelessly");
        Metrics::inc(&self.metrics.sip_refused_stateless);
        let data = self
            .builder(msg, peer, 503, "Service Unavailable")
            .to_tag(&tag)
            .header("Retry-After", self.cfg.retry_after.to_string())
            .build();
        self.send(&peer, data);
    }

    fn insert_tx(
        &mut self,
        key: TxKey,
        tx: ServerTx,
        peer: Peer,
        call: Option<CallRef>,
        now: Instant,
    ) -> u64 {
        let id = self.id();
        let at = tx.next_deadline();
        self.admission.tx_started(peer.addr.ip(), now);
        self.tx_index.insert(key.clone(), id);
        self.txs.insert(
            id,
            TxEntry {
                key,
                tx,
                peer,
                source: peer.addr.ip(),
                call,
            },
        );
        self.arm(TimerKey::Tx(id), at);
        id
    }

    fn builder<'a>(
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

    fn on_request(&mut self, msg: Message, method: Method, peer: Peer, now: Instant) {
        if method == Method::Ack {
            return self.on_ack(&msg, peer, now);
        }
        // A retransmission of a request we already handle.
        let key = TxKey::of(&msg, &method);
        if let Some(&id) = self.tx_index.get(&key) {
            Metrics::inc(&self.metrics.sip_retransmissions_absorbed);
            let Some(entry) = self.txs.get_mut(&id) else {
                return;
            };
            // The copy may come from a new address (a NAT rebinding): answer there.
            entry.peer = peer;
            if let Some(data) = entry.tx.on_retransmit() {
                self.send(&peer, data);
            }
            return;
        }
        // What is not part of a call or transaction we have is limited per
        // source (a flood gets stateless 503s, then silence).
        let known = match &msg.to_tag {
            Some(t) => self.dialogs.contains_key(&(msg.call_id.clone(), t.clone())),
            None => {
                method == Method::Cancel
                    && self
                        .tx_index
                        .contains_key(&TxKey::of(&msg, &method).with_method("INVITE"))
            }
        };
        if !known {
            match self.admission.request(peer.addr.ip(), now) {
                Verdict::Pass => {}
                Verdict::Refuse(why) => return self.refuse_stateless(&msg, peer, why),
                Verdict::Drop => return Metrics::inc(&self.metrics.sip_banned_dropped),
            }
        }
        let tag = random_token();
        match &method {
            Method::Invite | Method::Bye | Method::Cancel | Method::Options | Method::Info => {}
            Method::Other(name) if name == "UPDATE" || name == "PRACK" => {}
            Method::Other(name) if !KNOWN_ELSEWHERE.contains(&name.as_str()) => {
                let b = self
                    .builder(&msg, peer, 501, "Not Implemented")
                    .to_tag(&tag)
                    .header("Allow", ALLOW);
                return self.respond_new(&msg, &method, peer, now, b, 501);
            }
            _ => {
                let b = self
                    .builder(&msg, peer, 405, "Method Not Allowed")
                    .to_tag(&tag)
                    .header("Allow", ALLOW);
                return self.respond_new(&msg, &method, peer, now, b, 405);
            }
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
        let dialog = dialog.flatten();
        // Extensions we are required to support (RFC 3261 §8.2.2.3): 100rel
        // and timer; any other is refused.
        let unsupported: Vec<String> = msg
            .tokens("Require")
            .into_iter()
            .filter(|t| !(t.eq_ignore_ascii_case("100rel") || t.eq_ignore_ascii_case("timer")))
            .collect();
        if !unsupported.is_empty() {
            let b = self
                .builder(&msg, peer, 420, "Bad Extension")
                .to_tag(&tag)
                .header("Unsupported", unsupported.join(", "));
            return self.respond_new(&msg, &method, peer, now, b, 420);
        }
        match method {
            Method::Options => {
                let b = self
                    .builder(&msg, peer, 200, "OK")
                    .to_tag(&tag)
                    .header("Allow", ALLOW)
                    .header("Accept", ACCEPT)
                    .header("Supported", SUPPORTED);
                self.respond_new(&msg, &method, peer, now, b, 200);
            }
            Method::Bye => match dialog {
                None => {
                    let b = self
                        .builder(&msg, peer, 481, "Call/Transaction Does Not Exist")
                        .to_tag(&tag);
                    self.respond_new(&msg, &method, peer, now, b, 481);
                }
                Some(call) => {
                    let b = self.builder(&msg, peer, 200, "OK");
                    self.respond_new(&msg, &method, peer, now, b, 200);
                    self.end_call(call, EndReason::CallerBye, now, false);
                }
            },
            Method::Info => match dialog {
                None => {
                    let b = self
                        .builder(&msg, peer, 481, "Call/Transaction Does Not Exist")
                        .to_tag(&tag);
                    self.respond_new(&msg, &method, peer, now, b, 481);
                }
                Some(call) => {
                    let b = self.builder(&msg, peer, 200, "OK");
                    self.respond_new(&msg, &method, peer, now, b, 200);
                    let content_type = msg.content_type();
                    self.event(CallEvent::Info {
                        call,
                        content_type,
                        body: msg.body.clone(),
                    });
                }
            },
            Method::Invite => match dialog {
                Some(call) => self.on_reinvite(&msg, call, peer, now),
                None => self.on_invite(msg, peer, now, tag),
            },
            Method::Other(ref name) => match dialog {
                None => {
                    let b = self
                        .builder(&msg, peer, 481, "Call/Transaction Does Not Exist")
                        .to_tag(&tag);
                    self.respond_new(&msg, &method, peer, now, b, 481);
                }
                Some(call) if name == "UPDATE" => self.on_update(&msg, call, peer, now),
                Some(call) => self.on_prack(&msg, call, peer, now),
            },
            _ => unreachable!("filtered above"),
        }
    }

    fn on_invite(&mut self, msg: Message, peer: Peer, now: Instant, tag: String) {
        let method = Method::Invite;
        let reject =
            |core: &mut Core, code: u16, reason: &str, extra: Option<(&'static str, String)>| {
                let mut b = core.builder(&msg, peer, code, reason).to_tag(&tag);
                if let Some((n, v)) = extra {
                    b = b.header(n, v);
                }
                core.respond_new(&msg, &method, peer, now, b, code);
            };
        let from_tag = msg.from_tag.clone().unwrap_or_default();
        if self
            .initial
            .contains_key(&(msg.call_id.clone(), from_tag.clone(), msg.cseq))
        {
            return reject(self, 482, "Loop Detected", None);
        }
        if !msg.body.is_empty() && msg.content_type().as_deref() != Some("application/sdp") {
            return reject(
                self,
                415,
                "Unsupported Media Type",
                Some(("Accept", "application/sdp".into())),
            );
        }
        let accept = msg.tokens("Accept");
        if !accept.is_empty()
            && !accept.iter().any(|a| {
                let t = a
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                t == "application/sdp" || t == "application/*" || t == "*/*"
            })
        {
            return reject(
                self,
                406,
                "Not Acceptable",
                Some((
                    "Warning",
                    format!(
                        "399 {} \"Only application/sdp bodies are sent\"",
                        peer.local.ip()
                    ),
                )),
            );
        }
        // Session timer (RFC 4028 §9): too short an interval gets 422.
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
            return reject(
                self,
                422,
                "Session Interval Too Small",
                Some(("Min-SE", min_se.to_string())),
            );
        }
        if self.stopping {
            return reject(
                self,
                503,
                "Service Unavailable",
                Some(("Retry-After", self.cfg.retry_after.to_string())),
            );
        }
        if self.inbound >= self.cfg.max_calls {
            Metrics::inc(&self.metrics.sip_overload_rejected);
            tracing::warn!(call_id = %msg.call_id, max_calls = self.cfg.max_calls, "refusing call: at max_calls");
            return self.refuse_stateless(&msg, peer, "max_calls");
        }
        if let Some(why) = self.cfg.load.shed(now) {
            Metrics::inc(&self.metrics.sip_shed);
            if self
                .shed_logged
                .is_none_or(|t| now >= t + Duration::from_secs(1))
            {
                self.shed_logged = Some(now);
                tracing::warn!(why, "shedding new calls: admitted calls keep their audio");
            }
            return self.refuse_stateless(&msg, peer, why);
        }
        if !self.admission.tx_room(peer.addr.ip(), self.txs.len(), now) {
            return self.refuse_stateless(&msg, peer, "transaction table full");
        }
        match self
            .admission
            .invite(peer.addr.ip(), now, self.cfg.max_calls)
        {
            Verdict::Pass => {}
            Verdict::Refuse(why) => return self.refuse_stateless(&msg, peer, why),
            Verdict::Drop => return Metrics::inc(&self.metrics.sip_banned_dropped),
        }
        let negotiation = if msg.body.is_empty() {
            None
        } else {
            match sdp::negotiate(&msg.body) {
                Ok(n) => Some(n),
                Err(SdpError::NoCommonCodec) => {
                    return reject(
                        self,
                        488,
                        "Not Acceptable Here",
                        Some((
                            "Warning",
                            format!("304 {} \"Only PCMU and PCMA audio\"", peer.local.ip()),
                        )),
                    );
                }
                Err(SdpError::Malformed(e)) => {
                    tracing::debug!(call_id = %msg.call_id, error = %e, "unparsable SDP offer");
                    return reject(self, 400, "Malformed SDP Offer", None);
                }
            }
        };

        // Accept: 100 at once, the call to the call layer, 180.
        let key = TxKey::of(&msg, &method);
        let mut tx = ServerTx::new(true, peer.transport().reliable(), self.cfg.timers);
        let trying = ResponseBuilder::new(&msg.reply, 100, "Trying")
            .source(peer.addr)
            .build();
        tx.respond(100, trying.clone(), now);
        self.send(&peer, trying);
        let call = self.id();
        let contact = contact_uri(&peer);
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
        let mut ringing = route_set.iter().fold(
            self.builder(&msg, peer, 180, "Ringing").to_tag(&tag),
            |b, r| b.header("Record-Route", r.clone()),
        );
        if let Some(rseq) = rseq {
            ringing = ringing
                .header("Require", "100rel")
                .header("RSeq", rseq.to_string());
        }
        let ringing = ringing
            .header("Contact", format!("<{contact}>"))
            .header("Allow", ALLOW)
            .header("Supported", SUPPORTED)
            .build();
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
        let reliable_at = reliable
            .as_ref()
            .map(|r| r.retransmit.map_or(r.give_up, |(a, _)| a));
        let tx_id = self.insert_tx(key, tx, peer, Some(call), now);
        self.inbound += 1;
        self.admission.call_started(peer.addr.ip(), now);

        let (display, from_user) = message::display_and_user(&msg.reply.from);
        let pai = msg.header("P-Asserted-Identity");
        // An asserted identity is the caller's number only from inside the
        // trust domain (RFC 3325 §6: our trusted PBX, SBC or proxy); from
        // anyone else it is kept as a claim.
        let asserted = self.admission.trusted(peer.addr.ip());
        let pai_user = pai
            .as_deref()
            .filter(|_| asserted)
            .and_then(|p| message::display_and_user(p).1);
        let privacy_header = msg.header("Privacy");
        let anonymous = |s: &Option<String>| {
            s.as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("anonymous"))
        };
        let privacy = privacy_header.as_deref().is_some_and(|p| {
            p.split([';', ',']).any(|t| {
                matches!(
                    t.trim().to_ascii_lowercase().as_str(),
                    "id" | "user" | "header" | "session" | "critical"
                )
            })
        }) || anonymous(&display)
            || anonymous(&from_user)
            || msg
                .reply
                .from
                .to_ascii_lowercase()
                .contains("anonymous.invalid");
        let info = Box::new(CallInfo {
            call_id: msg.call_id.clone(),
            from: msg.reply.from.clone(),
            caller_number: pai_user
                .or(from_user)
                .filter(|u| !u.eq_ignore_ascii_case("anonymous")),
            caller_display: display,
            privacy,
            to: msg.reply.to.clone(),
            request_uri: match &msg.start {
                StartLine::Request { uri, .. } => uri.clone(),
                StartLine::Response { .. } => String::new(),
            },
            p_asserted_identity: pai,
            user_agent: msg.header("User-Agent"),
            source: peer.addr,
            transport: peer.transport(),
            local_ip: peer.local.ip(),
        });
        let remote_target = msg
            .contact_uri()
            .or_else(|| message::angle_uri(&msg.reply.from))
            .unwrap_or_default();
        self.dialogs
            .insert((msg.call_id.clone(), tag.clone()), call);
        self.initial
            .insert((msg.call_id.clone(), from_tag, msg.cseq), call);
        let media = negotiation.as_ref().map(|n| n.media.clone());
        self.calls.insert(
            call,
            Call {
                call_id: msg.call_id.clone(),
                local_party: format!("{};tag={tag}", msg.reply.to),
                remote_party: msg.reply.from.clone(),
                uac: None,
                local_tag: tag,
                remote_tag: msg.from_tag.clone(),
                peer,
                invite_tx: tx_id,
                invite_reply: msg.reply.clone(),
                remote_target,
                route_set,
                local_cseq: 0,
                state: CallState::Offered,
                negotiation,
                session_id: rand::random::<u32>() as u64,
                our_sdp: None,
                delayed_ok: None,
                pending_ok: None,
                offered_at: now,
                rtp: None,
                sdp_version: 1,
                offer_pending: false,
                peer_update: allows_update(&msg),
                uas_timer,
                timer: None,
                refreshing: false,
                reliable,
                rseq_acked: None,
            },
        );
        if reliable_at.is_some() {
            self.arm(TimerKey::Reliable(call), reliable_at);
        }
        Metrics::inc(&self.metrics.calls_offered);
        self.event(CallEvent::Incoming { call, info, media });
    }

    fn on_reinvite(&mut self, msg: &Message, call: CallRef, peer: Peer, now: Instant) {
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
    fn on_update(&mut self, msg: &Message, call: CallRef, peer: Peer, now: Instant) {
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
    fn session_ok<'a>(
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
    fn on_prack(&mut self, msg: &Message, call: CallRef, peer: Peer, now: Instant) {
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
    fn renegotiate(
        &mut self,
        call: CallRef,
        body: &[u8],
        offer_if_none: bool,
    ) -> Result<(Option<String>, Option<Media>), (u16, &'static str)> {
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
        let n = sdp::negotiate(body).map_err(|e| match e {
            SdpError::NoCommonCodec => (488, "Not Acceptable Here"),
            SdpError::Malformed(_) => (400, "Malformed SDP Offer"),
        })?;
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
    fn target_refresh(&mut self, call: CallRef, msg: &Message) {
        if let (Some(target), Some(c)) = (msg.contact_uri(), self.calls.get_mut(&call)) {
            c.remote_target = target;
        }
    }

    /// A re-INVITE or UPDATE from the peer refreshes the session (RFC 4028
    /// §9): the interval and refresher it names (`uas`: us, we answer it),
    /// else the ones in force. Returns `Session-Expires` for the 2xx and
    /// whether to require `timer`.
    fn refreshed_by_peer(
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
    fn session_timer(&mut self, call: CallRef, now: Instant) {
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
    fn send_refresh(&mut self, call: CallRef, now: Instant) {
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
        let branch = format!("z9hG4bK{}", random_token());
        let contact = contact_uri(&c.peer);
        let routed = dialog::route(&c.route_set, &c.remote_target);
        let peer = next_hop(&c.peer, &routed, &c.route_set);
        let data = RequestSpec {
            method,
            uri: &routed.request_uri,
            via: peer.via(&branch),
            from: &c.local_party,
            to: &c.remote_party,
            call_id: &c.call_id,
            cseq: c.local_cseq,
            route: &routed.route,
            contact: Some(&contact),
            user_agent: &user_agent,
            body,
            headers: &[
                ("Session-Expires", t.header(false)),
                ("Supported", SUPPORTED.into()),
            ],
        }
        .build();
        tracing::debug!(call_id = %c.call_id, method, "refreshing the session");
        self.start_client(data, peer, branch, Purpose::Refresh(call), now);
    }

    /// The final answer to our refresh.
    fn refresh_answered(
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
                    let routed = dialog::route(&c.route_set, &c.remote_target);
                    let peer = next_hop(&c.peer, &routed, &c.route_set);
                    let ack = RequestSpec {
                        method: "ACK",
                        uri: &routed.request_uri,
                        via: peer.via(&format!("z9hG4bK{}", random_token())),
                        from: &c.local_party,
                        to: &c.remote_party,
                        call_id: &c.call_id,
                        cseq: msg.cseq,
                        route: &routed.route,
                        contact: None,
                        user_agent: &user_agent,
                        body: None,
                        headers: &[],
                    }
                    .build();
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

    /// Our refresh got no answer at all (Timer F or B): the session is gone.
    fn refresh_failed(&mut self, call: CallRef, now: Instant) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.refreshing = false;
            tracing::warn!(call_id = %c.call_id, "no answer to our session refresh: hanging up (RFC 4028 §10)");
        }
        self.end_call(call, EndReason::SessionExpired, now, true);
    }

    /// An answer to an offer of ours in a confirmed call (in an ACK or a
    /// 2xx): the new media, or BYE when it is unusable (RFC 3264 §8).
    fn take_answer(&mut self, call: CallRef, body: &[u8], now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match sdp::negotiate(body) {
            Ok(n) => {
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
    fn reliable_timer(&mut self, call: CallRef, now: Instant) {
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

    fn on_cancel(&mut self, msg: &Message, peer: Peer, now: Instant) {
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

    fn on_ack(&mut self, msg: &Message, _peer: Peer, now: Instant) {
        // ACK for a non-2xx final response: same transaction.
        let key = TxKey::of(msg, &Method::Ack);
        if let Some(&id) = self.tx_index.get(&key) {
            let Some(e) = self.txs.get_mut(&id) else {
                return;
            };
            if !matches!(e.tx.state, super::transaction::ServerState::Accepted) {
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
            None => sdp::negotiate(&msg.body).ok().map(|n| {
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

    fn answer(&mut self, call: CallRef, rtp: SocketAddr, now: Instant) {
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
    fn release_ok(&mut self, call: CallRef, ok: Bytes, now: Instant) {
        if let Some(r) = self.calls.get_mut(&call).and_then(|c| c.reliable.as_mut()) {
            r.held_ok = Some(ok);
            return;
        }
        self.send_ok(call, ok, now);
    }

    fn send_ok(&mut self, call: CallRef, ok: Bytes, now: Instant) {
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
                self.ring_timeouts.remove(&call);
            }
            None => {
                self.inbound = self.inbound.saturating_sub(1);
                self.admission.call_ended(c.peer.addr.ip());
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

    fn send_bye(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.local_cseq += 1;
        let branch = format!("z9hG4bK{}", random_token());
        let contact = contact_uri(&c.peer);
        let routed = dialog::route(&c.route_set, &c.remote_target);
        let peer = next_hop(&c.peer, &routed, &c.route_set);
        let bye = RequestSpec {
            method: "BYE",
            uri: &routed.request_uri,
            via: peer.via(&branch),
            from: &c.local_party,
            to: &c.remote_party,
            call_id: &c.call_id,
            cseq: c.local_cseq,
            route: &routed.route,
            contact: Some(&contact),
            user_agent: &self.cfg.user_agent,
            body: None,
            headers: &[],
        }
        .build();
        self.start_client(bye, peer, branch, Purpose::Quiet, now);
    }

    /// Places a call to `peer`; its progress comes back as `CallEvent`s for
    /// the returned call (`Confirmed` with the negotiated media, `Ended`).
    pub fn dial(&mut self, d: &Dial, peer: Peer, now: Instant) -> CallRef {
        let call = self.id();
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
        let t = self.cfg.timers;
        let uac = Uac {
            branch: branch.clone(),
            invite: invite.clone(),
            cseq: 1,
            retransmit: (!peer.transport().reliable()).then(|| (now + t.t1, t.t1)),
            give_up: now + t.t64(),
            ack: None,
            cancelled: false,
            uri: d.uri.clone(),
            credentials: d.credentials.clone(),
            offer: sdp.clone(),
        };
        let deadline = uac
            .retransmit
            .map_or(uac.give_up, |(a, _)| a.min(uac.give_up));
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
        self.ring_timeouts.insert(call, d.ring_timeout);
        self.send(&peer, invite);
        self.arm(TimerKey::Call(call), Some(deadline));
        call
    }

    /// A response to an INVITE we sent.
    fn on_invite_response(&mut self, call: CallRef, msg: &Message, code: u16, now: Instant) {
        let ring = self
            .ring_timeouts
            .get(&call)
            .copied()
            .unwrap_or(Duration::from_secs(30));
        let user_agent = self.cfg.user_agent.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let peer = c.peer;
        let Some(u) = c.uac.as_mut() else { return };
        if code < 200 {
            // Proceeding: no more retransmissions; ringing is bounded by
            // the ring timeout instead of Timer B.
            u.retransmit = None;
            if !u.cancelled {
                u.give_up = c.offered_at + ring;
            }
            let at = u.give_up.max(now);
            self.arm(TimerKey::Call(call), Some(at));
            return self.prack(call, msg, now);
        }
        if code < 300 {
            if let Some((to, ack)) = u.ack.clone() {
                return self.send(&to, ack); // a copy of the 2xx
            }
            u.retransmit = None;
            c.remote_tag = msg.to_tag.clone();
            c.remote_party = msg.reply.to.clone();
            if let Some(target) = msg.contact_uri() {
                c.remote_target = target;
            }
            c.route_set = dialog::uac_route_set(msg.record_route());
            let routed = dialog::route(&c.route_set, &c.remote_target);
            let ack_peer = next_hop(&peer, &routed, &c.route_set);
            let ack = RequestSpec {
                method: "ACK",
                uri: &routed.request_uri,
                via: ack_peer.via(&format!("z9hG4bK{}", random_token())),
                from: &c.local_party,
                to: &c.remote_party,
                call_id: &c.call_id,
                cseq: u.cseq,
                route: &routed.route,
                contact: None,
                user_agent: &user_agent,
                body: None,
                headers: &[],
            }
            .build();
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
            match sdp::negotiate(&msg.body) {
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
            return;
        }
        // A failure: ACK it on the INVITE's branch (RFC 3261 §17.1.1.3).
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
        // Challenged: answer once with the credentials (RFC 3261 §22.2).
        let mut retry = None;
        if (code == 401 || code == 407) && !u.cancelled {
            let header = if code == 401 {
                "WWW-Authenticate"
            } else {
                "Proxy-Authenticate"
            };
            let challenge = msg.header(header).and_then(|v| super::digest::parse(&v));
            if let (Some(ch), Some((user, pass))) = (challenge, u.credentials.take()) {
                let value = super::digest::authorization(
                    &ch,
                    &user,
                    &pass,
                    "INVITE",
                    &u.uri,
                    &random_token(),
                );
                let name = if code == 401 {
                    "Authorization"
                } else {
                    "Proxy-Authorization"
                };
                retry = Some((name, value));
            }
        }
        // Timer D: 32 s over UDP, none over TCP.
        let until = now
            + if peer.transport().reliable() {
                Duration::ZERO
            } else {
                self.cfg.timers.t64()
            };
        self.uac_completed.retain(|_, (_, _, u)| *u > now);
        self.uac_completed
            .insert(u.branch.clone(), (peer, ack.clone(), until));
        self.send(&peer, ack);
        if let Some((name, value)) = retry {
            return self.reinvite_with(call, name, value, now);
        }
        self.remove_call(call, reason);
    }

    /// A reliable provisional response to our INVITE (`Require: 100rel`,
    /// `RSeq`) gets a PRACK in its early dialog (RFC 3262 §4), once per RSeq.
    fn prack(&mut self, call: CallRef, msg: &Message, now: Instant) {
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
    fn reinvite_with(&mut self, call: CallRef, name: &'static str, value: String, now: Instant) {
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
        u.invite = invite.clone();
        u.retransmit = (!peer.transport().reliable()).then(|| (now + t.t1, t.t1));
        u.give_up = now + t.t64();
        let at = u.retransmit.map_or(u.give_up, |(a, _)| a.min(u.give_up));
        self.uac_index.remove(&old);
        self.uac_index.insert(branch, call);
        self.send(&peer, invite);
        self.arm(TimerKey::Call(call), Some(at));
    }

    /// Gives up on a call still ringing: CANCEL (RFC 3261 §9.1).
    fn cancel_dial(&mut self, call: CallRef, now: Instant) {
        let user_agent = self.cfg.user_agent.clone();
        let timers = self.cfg.timers;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let peer = c.peer;
        let Some(u) = c.uac.as_mut() else { return };
        if u.cancelled {
            return;
        }
        u.cancelled = true;
        u.retransmit = None;
        // Wait for the 487 (and ACK it); give up at 64*T1.
        u.give_up = now + timers.t64();
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
        let at = u.give_up;
        let branch = u.branch.clone();
        self.start_client(cancel, peer, branch, Purpose::Quiet, now);
        self.arm(TimerKey::Call(call), Some(at));
    }

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

    fn send_register(&mut self, auth: Option<(&'static str, String)>, now: Instant) {
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
    fn registered(&mut self, msg: &Message, code: u16, now: Instant) {
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
            return self.arm(TimerKey::Register, Some(now + refresh));
        }
        if (code == 401 || code == 407) && !g.authenticated {
            let (challenge, name) = if code == 401 {
                ("WWW-Authenticate", "Authorization")
            } else {
                ("Proxy-Authenticate", "Proxy-Authorization")
            };
            let ch = msg.header(challenge).and_then(|v| super::digest::parse(&v));
            if let (Some(ch), Some((user, pass))) = (ch, g.r.credentials.clone()) {
                let value = super::digest::authorization(
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
        self.arm(TimerKey::Register, Some(now + REGISTER_RETRY));
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

    // ----- timers ----------------------------------------------------------

    pub fn on_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.armed.get(&key) != Some(&at) {
                continue; // superseded
            }
            self.armed.remove(&key);
            match key {
                TimerKey::Tx(id) => self.tx_timer(id, now),
                TimerKey::Call(id) => self.call_timer(id, now),
                TimerKey::Session(id) => self.session_timer(id, now),
                TimerKey::Reliable(id) => self.reliable_timer(id, now),
                TimerKey::Register => self.send_register(None, now),
                TimerKey::Client(id) => self.client_timer(id, now),
                TimerKey::Conn(id) => self.conn_timer(id, now),
            }
        }
    }

    fn tx_timer(&mut self, id: u64, now: Instant) {
        let Some(e) = self.txs.get_mut(&id) else {
            return;
        };
        match e.tx.on_timer(now) {
            TimerAction::Retransmit(data) => {
                let p = e.peer;
                let at = e.tx.next_deadline();
                self.send(&p, data);
                self.arm(TimerKey::Tx(id), at);
            }
            TimerAction::NoAck | TimerAction::Terminated => {
                if let Some(e) = self.txs.remove(&id) {
                    self.tx_index.remove(&e.key);
                    self.admission.tx_ended(e.source);
                }
            }
            TimerAction::None => {
                let at = e.tx.next_deadline();
                self.arm(TimerKey::Tx(id), at);
            }
        }
    }

    fn call_timer(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.state == CallState::Dialing {
            let peer = c.peer;
            let Some(u) = c.uac.as_mut() else { return };
            if now >= u.give_up {
                let (no_answer, cancelled) = (u.retransmit.is_some(), u.cancelled);
                if no_answer || cancelled {
                    // Timer B, or no final response to our CANCEL.
                    let reason = if cancelled {
                        EndReason::Hangup
                    } else {
                        EndReason::Rejected(408)
                    };
                    return self.remove_call(call, reason);
                }
                // Ringing too long.
                return self.cancel_dial(call, now);
            }
            if let Some((at, interval)) = u.retransmit {
                if now >= at {
                    let next = interval * 2;
                    u.retransmit = Some((now + next, next));
                    let invite = u.invite.clone();
                    let at = (now + next).min(u.give_up);
                    self.send(&peer, invite);
                    return self.arm(TimerKey::Call(call), Some(at));
                }
            }
            let at = u.retransmit.map_or(u.give_up, |(a, _)| a.min(u.give_up));
            return self.arm(TimerKey::Call(call), Some(at));
        }
        if let Some((at, _)) = &c.delayed_ok {
            let at = *at;
            if at > now {
                return self.arm(TimerKey::Call(call), Some(at));
            }
            if let Some((_, ok)) = c.delayed_ok.take() {
                return self.release_ok(call, ok, now);
            }
        }
        let Some(p) = c.pending_ok.as_mut() else {
            return;
        };
        match p.on_timer(now) {
            TimerAction::Retransmit(data) => {
                let at = p.next_deadline();
                let peer = c.peer;
                self.send(&peer, data);
                self.arm(TimerKey::Call(call), Some(at));
            }
            TimerAction::NoAck => {
                Metrics::inc(&self.metrics.calls_unconfirmed);
                tracing::warn!(call_id = %c.call_id, source = %c.peer.addr, "no ACK for our 200 OK within 64*T1: hanging up; no ticket");
                self.end_call(call, EndReason::NoAck, now, true);
            }
            _ => {
                let at = p.next_deadline();
                self.arm(TimerKey::Call(call), Some(at));
            }
        }
    }

    fn client_timer(&mut self, id: u64, now: Instant) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        match c.tx.on_timer(now) {
            TimerAction::Retransmit(data) => {
                let (at, peer) = (c.tx.next_deadline(), c.peer);
                self.send(&peer, data);
                self.arm(TimerKey::Client(id), Some(at));
            }
            TimerAction::None => {
                let at = c.tx.next_deadline();
                self.arm(TimerKey::Client(id), Some(at));
            }
            _ => {
                if let Some(c) = self.clients.remove(&id) {
                    self.client_index.remove(&c.branch);
                    // Timer F (or B): no final response at all.
                    match (c.purpose, c.tx.is_completed()) {
                        (Purpose::Report, false) => {
                            self.out.push_back(Output::RequestDone { id, status: None })
                        }
                        (Purpose::Refresh(call), false) => self.refresh_failed(call, now),
                        (Purpose::Register, false) => {
                            tracing::warn!("no answer to our REGISTER: trying again in 30 s");
                            self.arm(TimerKey::Register, Some(now + REGISTER_RETRY));
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn conn_timer(&mut self, id: u64, now: Instant) {
        let Some(c) = self.conns.get(&id) else { return };
        let idle_until = c.last_activity + self.cfg.tcp_idle;
        if idle_until > now {
            return self.arm(TimerKey::Conn(id), Some(idle_until));
        }
        if self.conn_busy(id) {
            return self.arm(TimerKey::Conn(id), Some(now + self.cfg.tcp_idle));
        }
        tracing::debug!(conn = id, "closing idle TCP connection");
        self.conns.remove(&id);
        self.out.push_back(Output::Close(id));
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
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
