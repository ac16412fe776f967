//! The tokio driver of the SIP core: UDP sockets and TCP listeners on the
//! same port, one reader task per socket or connection feeding one bounded
//! queue, and one core task that owns [`Core`], its timers and all sends;
//! all of them on the SIP thread, a current-thread runtime of their own.
//!
//! ```text
//!  udp recv task(s) ──┐                     ┌──> UdpSocket::send_to
//!  tcp conn reader(s) ─┼─ Inbound (bounded) ─> core task ─┼──> conn writer (bounded)
//!  call layer ─── CallCommand (bounded) ──>  │            └──> CallEvent (bounded) ──> call layer
//!                                  sleep_until(core.next_deadline())
//! ```

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::core::{
    CallCommand, CallEvent, CallRef, Core, Dial, Link, OutRequest, Output, Peer, RegisterAnswer,
    RegisterRequest, Registration, RegistrationState, TextRequest,
};
use super::message::{self, Frame, Limits};
use crate::metrics::SipMetrics as Metrics;
mod driver;
mod readers;

use driver::{core_task, Connector, Conns};
use readers::{stream_connection, tcp_acceptor, udp_reader};

/// Depth of the queue into the core task; beyond it datagrams are dropped
/// and counted (a flood never grows memory).
const INBOUND_QUEUE: usize = 8192;
/// How long a stopping gateway waits for the answers to its BYEs.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(4);
/// Messages waiting to be written to one TCP connection.
const CONN_QUEUE: usize = 256;

/// The bound SIP sockets (registered with the SIP thread's runtime when
/// [`spawn`] starts it).
pub struct Bound {
    pub udp: Vec<std::net::UdpSocket>,
    pub tcp: Vec<std::net::TcpListener>,
    /// SIP over TLS: its listeners and the server configuration.
    pub tls: Vec<std::net::TcpListener>,
    tls_config: Option<Arc<rustls::ServerConfig>>,
    /// TLS connections of our own (the trunk's), by link id.
    client_tls: HashMap<u64, ClientTls>,
}

/// How a TLS connection of ours checks the other end.
#[derive(Clone)]
pub struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
    /// The name its certificate must carry.
    pub name: rustls::pki_types::ServerName<'static>,
}

impl Bound {
    /// Listens for SIP over TLS on `addrs` too (port 0: a free one each).
    pub fn listen_tls(
        &mut self,
        addrs: &[SocketAddr],
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<()> {
        for a in addrs {
            self.tls.push(tcp_listener(*a)?);
        }
        self.tls_config = Some(config);
        Ok(())
    }

    /// Requests on `Link::Tls(conn)` open a TLS connection checked so (the
    /// trunk's, [`TRUNK_CONN`]), again after it closed.
    pub fn connect_tls(&mut self, conn: u64, tls: ClientTls) {
        self.client_tls.insert(conn, tls);
    }

    /// The SIP over TLS addresses (a socket the OS cannot name is left out).
    pub fn tls_addrs(&self) -> Vec<SocketAddr> {
        self.tls
            .iter()
            .filter_map(|t| t.local_addr().ok())
            .collect()
    }

    /// `(udp, tcp)` local addresses, one pair per listen address.
    pub fn addrs(&self) -> Vec<(SocketAddr, SocketAddr)> {
        self.udp
            .iter()
            .zip(&self.tcp)
            .filter_map(|(u, t)| Some((u.local_addr().ok()?, t.local_addr().ok()?)))
            .collect()
    }
}

fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Room for a burst of calls arriving at once.
    let _ = s.set_recv_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// Binds UDP and TCP on every address, all on one port. Port 0 picks a port
/// free for both protocols on every address.
pub fn bind(addrs: &[SocketAddr]) -> io::Result<Bound> {
    let wanted = addrs.first().map_or(0, |a| a.port());
    let mut last_err = None;
    for _ in 0..if wanted == 0 { 20 } else { 1 } {
        match bind_once(addrs, wanted) {
            Ok(b) => return Ok(b),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no address to bind")))
}

fn bind_once(addrs: &[SocketAddr], wanted: u16) -> io::Result<Bound> {
    let mut port = wanted;
    let mut bound = Bound {
        udp: Vec::new(),
        tcp: Vec::new(),
        tls: Vec::new(),
        tls_config: None,
        client_tls: HashMap::new(),
    };
    for addr in addrs {
        let a = SocketAddr::new(addr.ip(), port);
        let u = udp_socket(a)?;
        port = u.local_addr()?.port();
        let t = tcp_listener(SocketAddr::new(addr.ip(), port))?;
        bound.udp.push(u);
        bound.tcp.push(t);
    }
    Ok(bound)
}

/// Our address as seen from `peer`: the socket's own address, or when bound
/// to the unspecified address, the source the kernel would route from (a
/// connected UDP socket sends nothing).
pub fn local_for(socket_local: SocketAddr, peer: IpAddr) -> SocketAddr {
    if !socket_local.ip().is_unspecified() {
        return socket_local;
    }
    let probe = match peer {
        IpAddr::V4(_) => std::net::UdpSocket::bind("0.0.0.0:0"),
        IpAddr::V6(_) => std::net::UdpSocket::bind("[::]:0"),
    };
    let ip = probe
        .and_then(|s| {
            s.connect(SocketAddr::new(peer, 9))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(socket_local.ip());
    SocketAddr::new(ip, socket_local.port())
}

enum Inbound {
    Message {
        data: Bytes,
        peer: Peer,
    },
    Connected {
        conn: u64,
        writer: mpsc::Sender<Bytes>,
        stop: CancellationToken,
    },
    Disconnected {
        conn: u64,
    },
    /// Close after what is queued has been written.
    CloseAfterFlush {
        conn: u64,
    },
    /// A connection we opened could not be (what waited for it is dropped;
    /// the transactions retransmit or time out).
    ConnectFailed {
        conn: u64,
    },
}

/// Channels between the SIP core and the call layer.
pub struct CallChannels {
    pub events: mpsc::Sender<CallEvent>,
    pub commands: mpsc::Receiver<CallCommand>,
    /// Requests to send outside calls (paging), with where to report.
    pub requests: mpsc::Receiver<PendingRequest>,
    /// Where REGISTERs go when the gateway is a registrar (answers come
    /// back as [`PendingRequest::RegisterAnswer`]).
    pub registrar: Option<mpsc::Sender<RegisterRequest>>,
    /// Where MESSAGEs go when the gateway takes replies to its pages
    /// (answers come back the same way).
    pub texts: Option<mpsc::Sender<TextRequest>>,
}

/// What the paging side and the registrar ask of the SIP core.
pub enum PendingRequest {
    /// Send a request outside calls, leaving as `egress` says; the final
    /// status comes back (`None`: no answer).
    Send {
        request: OutRequest,
        dest: SocketAddr,
        egress: Egress,
        reply: oneshot::Sender<Option<u16>>,
    },
    /// Place a call; its events go to `events`.
    Dial {
        dial: Dial,
        dest: SocketAddr,
        egress: Egress,
        events: mpsc::Sender<CallEvent>,
        reply: oneshot::Sender<CallRef>,
    },
    /// End a placed call.
    Hangup { call: CallRef },
    /// Register with a trunk and keep the registration fresh; each outcome
    /// goes to `state`.
    Register {
        registration: Registration,
        dest: SocketAddr,
        egress: Egress,
        state: watch::Sender<RegistrationState>,
    },
    /// The app's answer to a request handed over: the registrar's to a
    /// REGISTER, the inbox's to a MESSAGE.
    RegisterAnswer(RegisterAnswer),
    /// Requests on `Link::Tls(conn)` open a TLS connection checked so
    /// (from then on, as [`Bound::connect_tls`] at start).
    ConnectTls { conn: u64, tls: ClientTls },
}

/// How a call or registration of ours leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// From the first UDP socket of the destination's address family.
    Udp,
    /// Over this flow: the socket or connection a softphone registered on.
    Flow(Peer),
    /// Over a TCP connection of its own to the destination, known to the
    /// core as `Link::Tcp(id)`: opened on the first request, opened again
    /// under the same id when it has closed (the trunk's, [`TRUNK_CONN`]).
    Tcp(u64),
    /// The same over TLS (`Link::Tls(id)`, checked as
    /// [`Bound::connect_tls`] said).
    Tls(u64),
}

/// The id of the TCP connection to the trunk (`[trunk] transport = "tcp"`);
/// accepted connections are numbered from 1 up and never reach it.
pub const TRUNK_CONN: u64 = u64::MAX - 1;

/// The id of our TLS connection to `dest` for paging calls to `sips:`
/// URIs: one per destination, reused by every call to it (above any
/// accepted connection's id, below [`TRUNK_CONN`]).
pub fn tls_conn_for(dest: SocketAddr) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dest.hash(&mut h);
    (1 << 62) | (h.finish() & 0xffff_ffff)
}

/// Sends requests and places calls through the SIP core.
#[derive(Clone)]
pub struct Requester {
    tx: mpsc::Sender<PendingRequest>,
}

impl Requester {
    pub fn new(tx: mpsc::Sender<PendingRequest>) -> Requester {
        Requester { tx }
    }

    /// The final status of `request` sent to `dest` over UDP, `None` when
    /// nobody answered (Timer F) or the gateway is stopping.
    pub async fn send(&self, request: OutRequest, dest: SocketAddr) -> Option<u16> {
        self.send_via(request, dest, Egress::Udp).await
    }

    /// As [`Requester::send`], leaving as `egress` says (the trunk's
    /// connection).
    pub async fn send_via(
        &self,
        request: OutRequest,
        dest: SocketAddr,
        egress: Egress,
    ) -> Option<u16> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(PendingRequest::Send {
                request,
                dest,
                egress,
                reply,
            })
            .await
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Places a call to `dest`, leaving as `egress` says; `None` when the
    /// gateway is stopping.
    pub async fn dial(
        &self,
        dial: Dial,
        dest: SocketAddr,
        egress: Egress,
    ) -> Option<(CallRef, mpsc::Receiver<CallEvent>)> {
        let (events, rx_events) = mpsc::channel(32);
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(PendingRequest::Dial {
                dial,
                dest,
                egress,
                events,
                reply,
            })
            .await
            .ok()?;
        Some((rx.await.ok()?, rx_events))
    }

    pub async fn hangup(&self, call: CallRef) {
        let _ = self.tx.send(PendingRequest::Hangup { call }).await;
    }

    /// From now on requests on `Link::Tls(conn)` open a TLS connection
    /// checked as `tls` says.
    pub async fn connect_tls(&self, conn: u64, tls: ClientTls) {
        let _ = self.tx.send(PendingRequest::ConnectTls { conn, tls }).await;
    }

    /// The registrar's answer to a REGISTER the core handed over.
    pub async fn answer_register(&self, answer: RegisterAnswer) {
        let _ = self.tx.send(PendingRequest::RegisterAnswer(answer)).await;
    }

    /// The inbox's answer to a MESSAGE the core handed over.
    pub async fn answer_text(&self, answer: RegisterAnswer) {
        let _ = self.tx.send(PendingRequest::RegisterAnswer(answer)).await;
    }

    /// Registers with the trunk at `dest` (the core refreshes it); the
    /// answer follows how the registration stands, outcome by outcome.
    pub async fn register(
        &self,
        registration: Registration,
        dest: SocketAddr,
        egress: Egress,
    ) -> watch::Receiver<RegistrationState> {
        let (state, rx) = watch::channel(RegistrationState::Trying);
        let _ = self
            .tx
            .send(PendingRequest::Register {
                registration,
                dest,
                egress,
                state,
            })
            .await;
        rx
    }
}

/// How the driver runs.
#[derive(Debug, Clone, Copy)]
pub struct DriverConfig {
    pub limits: Limits,
    /// Concurrent TCP connections per listener.
    pub max_connections: usize,
    /// Debug builds: [`FAULT_DATAGRAM`] ends the SIP thread.
    pub fault_injection: bool,
}

/// The datagram that ends the SIP thread when fault injection is on (debug
/// builds, `HOTLINE_FAULT_INJECTION=1`): what the supervision test sends.
pub const FAULT_DATAGRAM: &[u8] = b"HOTLINE-FAULT-INJECTION";

/// Starts the readers, the TCP acceptors and the core task on a thread of
/// their own (a current-thread runtime): signalling never queues behind the
/// media of a thousand calls on the main runtime's workers. `beside` runs
/// on that thread too (the call manager, so that answering a call never
/// waits for the main runtime either). The handle resolves when the thread
/// ends: normally after `shutdown`, the core first and then `beside`; if
/// either ends (or panics) before, at once, and the gateway knows it died.
/// An error means no SIP at all, and the gateway does not start.
pub fn spawn<F>(
    bound: Bound,
    core: Core,
    calls: CallChannels,
    driver: DriverConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    beside: F,
) -> io::Result<tokio::task::JoinHandle<()>>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Not polled yet: the sockets register with the runtime that polls it.
    let sip = run(bound, core, calls, driver, metrics, shutdown);
    let (done_tx, done_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("hotline-sip".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut beside = tokio::spawn(beside);
                tokio::pin!(sip);
                tokio::select! {
                    _ = &mut sip => {
                        let _ = beside.await;
                    }
                    // A call manager that panics takes the thread with it:
                    // a core without it answers no call.
                    r = &mut beside => match r {
                        Ok(()) => sip.await,
                        Err(e) => tracing::error!(error = %e, "the call manager died"),
                    }
                }
            });
            // Dropped by a panic too: the handle resolves either way.
            drop(done_tx);
        })?;
    Ok(tokio::spawn(async move {
        let _ = done_rx.await;
    }))
}

/// The SIP thread: registers the sockets with its runtime, starts the
/// readers and acceptors, runs the core task to its end, then gives the TCP
/// writers a bounded time to drain.
async fn run(
    bound: Bound,
    core: Core,
    calls: CallChannels,
    driver: DriverConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let DriverConfig {
        limits,
        max_connections,
        fault_injection,
    } = driver;
    let udp: io::Result<Vec<Arc<UdpSocket>>> = bound
        .udp
        .into_iter()
        .map(|s| UdpSocket::from_std(s).map(Arc::new))
        .collect();
    let tcp: io::Result<Vec<TcpListener>> =
        bound.tcp.into_iter().map(TcpListener::from_std).collect();
    let tls: io::Result<Vec<TcpListener>> =
        bound.tls.into_iter().map(TcpListener::from_std).collect();
    let acceptor = bound.tls_config.map(tokio_rustls::TlsAcceptor::from);
    let (udp, tcp, tls) = match (udp, tcp, tls) {
        (Ok(u), Ok(t), Ok(s)) => (u, t, s),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            tracing::error!(error = %e, "cannot register the SIP sockets");
            return;
        }
    };
    let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
    let next_conn = Arc::new(AtomicU64::new(1));
    // Readers outlive `shutdown`: the core still hears the answers to its
    // BYEs while it drains; it stops them when it is done.
    let readers = CancellationToken::new();
    let conns = tokio_util::task::TaskTracker::new();
    let tracker = conns.clone();
    for (i, sock) in udp.iter().enumerate() {
        tokio::spawn(udp_reader(
            sock.clone(),
            i as u8,
            tx.clone(),
            metrics.clone(),
            limits,
            readers.clone(),
        ));
    }
    let listeners = tcp
        .into_iter()
        .map(|l| (l, None))
        .chain(tls.into_iter().map(|l| (l, acceptor.clone())));
    for (listener, tls) in listeners {
        tokio::spawn(tcp_acceptor(
            listener,
            tls,
            tx.clone(),
            next_conn.clone(),
            Arc::new(Semaphore::new(max_connections)),
            limits,
            readers.clone(),
            conns.clone(),
        ));
    }
    let conns = Conns {
        open: HashMap::new(),
        connecting: HashMap::new(),
        dial: Connector {
            tx,
            limits,
            tls: bound.client_tls,
            stop: readers.clone(),
            tracker: conns.clone(),
        },
    };
    core_task(core, udp, rx, calls, shutdown, fault_injection, conns).await;
    readers.cancel();
    // TCP writers empty their queues and close (bounded: this thread's
    // runtime ends after it, and with it whatever is left).
    tracker.close();
    let _ = tokio::time::timeout(DRAIN, tracker.wait()).await;
}
