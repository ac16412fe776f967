//! What the core takes and gives: peers, the events and commands of the
//! call layer, the outputs for the driver, the settings, calls to place and
//! requests to send.

use super::*;

/// Methods we implement, for `Allow`.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK";

/// The same with REGISTER, when the gateway is the softphones' registrar.
pub const ALLOW_REGISTRAR: &str =
    "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK, REGISTER";

/// Extensions we implement (RFC 3262 reliable provisionals, RFC 4028
/// session timers), for `Supported`; any other in `Require` gets 420.
pub const SUPPORTED: &str = "100rel, timer";

/// Bodies we take, for `Accept`.
pub const ACCEPT: &str = "application/sdp, application/dtmf-relay, application/dtmf";

/// Identifies a call between the SIP core and the call layer.
pub type CallRef = u64;

/// Which socket a message travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Link {
    /// Index of the UDP socket among the listeners.
    Udp(u8),
    /// A TCP connection.
    Tcp(u64),
    /// A TLS connection (numbered with the TCP ones).
    Tls(u64),
}

impl Link {
    /// The connection, for a stream link.
    pub fn conn(self) -> Option<u64> {
        match self {
            Link::Udp(_) => None,
            Link::Tcp(c) | Link::Tls(c) => Some(c),
        }
    }
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
            Link::Tls(_) => Transport::Tls,
        }
    }

    /// The Via of a request we send to this peer (with `rport`, RFC 3581).
    pub(super) fn via(&self, branch: &str) -> String {
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
    /// The number is asserted by the court's trunk or SBC (`[sip]
    /// trusted`), not only claimed by whoever sent the INVITE.
    pub number_asserted: bool,
    pub caller_display: Option<String>,
    /// The caller asked for privacy (RFC 3323 Privacy, or an anonymous From).
    pub privacy: bool,
    pub to: String,
    pub request_uri: String,
    pub p_asserted_identity: Option<String>,
    pub user_agent: Option<String>,
    /// The caller's address: the socket's peer, or behind a proxy of
    /// `[sip] proxies` the source it forwarded.
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
    /// A call of ours not placed: `max_placed` calls are up.
    TooManyPlaced,
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
            EndReason::TooManyPlaced => "too_many_placed_calls",
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
    /// A REGISTER for the registrar; answer with [`Core::answer_register`].
    Register(Box<RegisterRequest>),
    /// A MESSAGE for the inbox (replies to pages); answer with
    /// [`Core::answer_handed`].
    Text(Box<super::TextRequest>),
    /// Our registration with the trunk: a REGISTER's final outcome.
    Registration(super::RegistrationState),
}

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub timers: TimerConfig,
    pub max_calls: usize,
    /// Calls we place (paging), counted apart from `max_calls`.
    pub max_placed: usize,
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
    /// REGISTER is taken (and handed out as [`Output::Register`]); else 405.
    pub registrar: bool,
    /// MESSAGE is taken (and handed out as [`Output::Text`]); else 405.
    pub messages: bool,
    /// Whether calls may, or must, be SRTP (SDES).
    pub srtp: crate::sdp::SrtpPolicy,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            timers: TimerConfig::default(),
            max_calls: 1000,
            max_placed: 100,
            retry_after: 30,
            ring: Duration::ZERO,
            tcp_idle: Duration::from_secs(120),
            user_agent: "hotline".into(),
            limits: Limits::default(),
            admission: AdmissionConfig::default(),
            load: Arc::new(Load::default()),
            registrar: false,
            messages: false,
            srtp: Default::default(),
        }
    }
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
