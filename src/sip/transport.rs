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
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::core::{
    CallCommand, CallEvent, CallRef, Core, Dial, Link, OutRequest, Output, Peer, RegisterAnswer,
    RegisterRequest, Registration,
};
use super::message::{self, Frame, Limits};
use crate::metrics::Metrics;

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
}

impl Bound {
    /// `(udp, tcp)` local addresses, one pair per listen address.
    pub fn addrs(&self) -> Vec<(SocketAddr, SocketAddr)> {
        self.udp
            .iter()
            .zip(&self.tcp)
            .map(|(u, t)| {
                (
                    u.local_addr().expect("bound"),
                    t.local_addr().expect("bound"),
                )
            })
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
}

/// What the paging side and the registrar ask of the SIP core.
pub enum PendingRequest {
    /// Send a request outside calls; the final status comes back
    /// (`None`: no answer).
    Send {
        request: OutRequest,
        dest: SocketAddr,
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
    /// Register with a trunk and keep the registration fresh.
    Register {
        registration: Registration,
        dest: SocketAddr,
        egress: Egress,
    },
    /// The registrar's answer to a REGISTER.
    RegisterAnswer(RegisterAnswer),
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
}

/// The id of the TCP connection to the trunk (`[trunk] transport = "tcp"`);
/// accepted connections are numbered from 1 up and never reach it.
pub const TRUNK_CONN: u64 = u64::MAX - 1;

/// Sends requests and places calls through the SIP core.
#[derive(Clone)]
pub struct Requester {
    tx: mpsc::Sender<PendingRequest>,
}

impl Requester {
    pub fn new(tx: mpsc::Sender<PendingRequest>) -> Requester {
        Requester { tx }
    }

    /// The final status of `request` sent to `dest`, `None` when nobody
    /// answered (Timer F) or the gateway is stopping.
    pub async fn send(&self, request: OutRequest, dest: SocketAddr) -> Option<u16> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(PendingRequest::Send {
                request,
                dest,
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

    /// The registrar's answer to a REGISTER the core handed over.
    pub async fn answer_register(&self, answer: RegisterAnswer) {
        let _ = self.tx.send(PendingRequest::RegisterAnswer(answer)).await;
    }

    /// Registers with the trunk at `dest` (the core refreshes it).
    pub async fn register(&self, registration: Registration, dest: SocketAddr, egress: Egress) {
        let _ = self
            .tx
            .send(PendingRequest::Register {
                registration,
                dest,
                egress,
            })
            .await;
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
    let (udp, tcp) = match (udp, tcp) {
        (Ok(u), Ok(t)) => (u, t),
        (Err(e), _) | (_, Err(e)) => {
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
    for listener in tcp {
        tokio::spawn(tcp_acceptor(
            listener,
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

async fn udp_reader(
    sock: Arc<UdpSocket>,
    index: u8,
    tx: mpsc::Sender<Inbound>,
    metrics: Arc<Metrics>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 65536];
    // What the parser reads of a datagram at most, and a little more so it
    // can still say "too large": the queue never holds 64 KiB datagrams.
    let keep = limits.max_header_bytes + limits.max_body_bytes + 8;
    let socket_local = sock.local_addr().expect("bound");
    let mut locals: HashMap<IpAddr, SocketAddr> = HashMap::new();
    loop {
        let (n, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors surface here on some systems; keep serving.
                    tracing::debug!(error = %e, "udp receive error");
                    continue;
                }
            },
        };
        let data = &buf[..n];
        // RFC 5626 keep-alives and stray blank datagrams.
        if data.iter().all(|b| *b == b'\r' || *b == b'\n' || *b == 0) {
            continue;
        }
        if locals.len() > 4096 {
            locals.clear();
        }
        let local = *locals
            .entry(from.ip())
            .or_insert_with(|| local_for(socket_local, from.ip()));
        let peer = Peer {
            link: Link::Udp(index),
            addr: from,
            local,
        };
        let msg = Inbound::Message {
            data: Bytes::copy_from_slice(data.get(..keep).unwrap_or(data)),
            peer,
        };
        if tx.try_send(msg).is_err() {
            Metrics::inc(&metrics.sip_queue_full);
        }
    }
}

async fn tcp_acceptor(
    listener: TcpListener,
    tx: mpsc::Sender<Inbound>,
    next_conn: Arc<AtomicU64>,
    slots: Arc<Semaphore>,
    limits: Limits,
    shutdown: CancellationToken,
    conns: tokio_util::task::TaskTracker,
) {
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let (stream, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept failed");
                    continue;
                }
            },
        };
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        let tx = tx.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            tcp_connection(stream, from, conn, tx, limits, shutdown, None).await;
            drop(permit);
        });
    }
}

async fn tcp_connection(
    stream: TcpStream,
    from: SocketAddr,
    conn: u64,
    tx: mpsc::Sender<Inbound>,
    limits: Limits,
    shutdown: CancellationToken,
    first: Option<Bytes>,
) {
    let _ = stream.set_nodelay(true);
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let (mut reader, mut writer) = stream.into_split();
    let (wtx, mut wrx) = mpsc::channel::<Bytes>(CONN_QUEUE);
    if let Some(first) = first {
        let _ = wtx.try_send(first);
    }
    let stop = shutdown.child_token();
    if tx
        .send(Inbound::Connected {
            conn,
            writer: wtx.clone(),
            stop: stop.clone(),
        })
        .await
        .is_err()
    {
        return;
    }
    // Writer: drains its queue; ends when the core drops the sender.
    let writer_task = tokio::spawn(async move {
        while let Some(b) = wrx.recv().await {
            if writer.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let peer = Peer {
        link: Link::Tcp(conn),
        addr: from,
        local,
    };
    let mut buf = BytesMut::with_capacity(4096);
    // How far the buffer has been searched for the end of a header section.
    let mut searched = 0usize;
    'read: loop {
        let n = tokio::select! {
            _ = stop.cancelled() => break,
            r = reader.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        let _ = n;
        loop {
            // CRLF keep-alive: a double CRLF ping gets a single CRLF pong
            // (RFC 5626 §4.4.1); lone CRLFs between messages are ignored.
            let lead = message::leading_crlf(&buf);
            if lead > 0 {
                if buf[..lead].windows(4).any(|w| w == b"\r\n\r\n") {
                    let _ = wtx.try_send(Bytes::from_static(b"\r\n"));
                }
                buf.advance(lead);
                searched = 0;
            }
            match message::frame_from(&buf, &limits, &mut searched) {
                Frame::Incomplete => break,
                Frame::Complete(n) => {
                    searched = 0;
                    let data = buf.split_to(n).freeze();
                    if tx.send(Inbound::Message { data, peer }).await.is_err() {
                        break 'read;
                    }
                }
                Frame::Broken(n) => {
                    let n = n.min(buf.len());
                    let data = buf.split_to(n).freeze();
                    let _ = tx.send(Inbound::Message { data, peer }).await;
                    let _ = tx.send(Inbound::CloseAfterFlush { conn }).await;
                    // Read and discard what the peer still sends (bounded), so
                    // closing does not reset the connection before the peer
                    // has read our 400.
                    drop(wtx);
                    let mut sink = [0u8; 4096];
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                        let mut left = 1usize << 20;
                        while left > 0 {
                            match reader.read(&mut sink).await {
                                Ok(0) | Err(_) => break,
                                Ok(k) => left = left.saturating_sub(k),
                            }
                        }
                    })
                    .await;
                    let _ = tx.send(Inbound::Disconnected { conn }).await;
                    let _ = writer_task.await;
                    return;
                }
            }
        }
    }
    drop(wtx);
    let _ = tx.send(Inbound::Disconnected { conn }).await;
    let _ = writer_task.await;
}

struct ConnHandle {
    writer: mpsc::Sender<Bytes>,
    stop: CancellationToken,
}

/// The TCP connections, and what it takes to open one.
struct Conns {
    open: HashMap<u64, ConnHandle>,
    /// Connections being opened, with what waits to go over them.
    connecting: HashMap<u64, Vec<Bytes>>,
    dial: Connector,
}

/// Opens a TCP connection for a request whose connection has closed (RFC
/// 3261 §18.1.1: a request in a TCP dialog goes over a new connection to the
/// next hop), under the closed one's id so that the dialog's later requests
/// follow; it then runs like an accepted one.
struct Connector {
    tx: mpsc::Sender<Inbound>,
    limits: Limits,
    stop: CancellationToken,
    tracker: tokio_util::task::TaskTracker,
}

/// How long connecting to a next hop may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Connector {
    fn connect(&self, conn: u64, to: SocketAddr, first: Bytes) {
        let (tx, limits, stop) = (self.tx.clone(), self.limits, self.stop.clone());
        self.tracker.spawn(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to)).await {
                Ok(Ok(stream)) => {
                    return tcp_connection(stream, to, conn, tx, limits, stop, Some(first)).await
                }
                Ok(Err(e)) => {
                    tracing::warn!(%to, error = %e, "cannot connect over TCP; request not sent")
                }
                Err(_) => tracing::warn!(%to, "TCP connect timed out; request not sent"),
            }
            let _ = tx.send(Inbound::ConnectFailed { conn }).await;
        });
    }
}

async fn core_task(
    mut core: Core,
    udp: Vec<Arc<UdpSocket>>,
    mut rx: mpsc::Receiver<Inbound>,
    mut calls: CallChannels,
    shutdown: CancellationToken,
    fault_injection: bool,
    mut conns: Conns,
) {
    let mut out = Outlets {
        pending: HashMap::new(),
        outbound: HashMap::new(),
        events: calls.events,
        registrar: calls.registrar,
    };
    let locals: Vec<SocketAddr> = udp.iter().map(|s| s.local_addr().expect("bound")).collect();
    loop {
        let deadline = core.next_deadline();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                core.shutdown(Instant::now());
                flush(&mut core, &udp, &mut conns, &mut out).await;
                drain(&mut core, &udp, &mut conns, &mut out, &mut rx).await;
                return;
            }
            Some(cmd) = calls.commands.recv() => core.on_command(cmd, Instant::now()),
            Some(r) = calls.requests.recv() => {
                // The first socket of the destination's family.
                let peer = |dest: SocketAddr| {
                    locals.iter().position(|l| l.is_ipv4() == dest.is_ipv4()).map(|i| Peer {
                        link: Link::Udp(i as u8),
                        addr: dest,
                        local: local_for(locals[i], dest.ip()),
                    })
                };
                // Our Via and Contact name the listening port, for TCP too.
                let leave = |dest: SocketAddr, egress: Egress| match egress {
                    Egress::Udp => peer(dest),
                    Egress::Flow(p) => Some(p),
                    Egress::Tcp(conn) => peer(dest).map(|p| Peer { link: Link::Tcp(conn), ..p }),
                };
                match r {
                    PendingRequest::Send { request, dest, reply } => match peer(dest) {
                        Some(p) => {
                            let id = core.send_request(&request, p, Instant::now());
                            out.pending.insert(id, reply);
                        }
                        None => {
                            tracing::warn!(%dest, "no SIP socket of that address family");
                            let _ = reply.send(None);
                        }
                    },
                    PendingRequest::Dial { dial, dest, egress, events, reply } => match leave(dest, egress) {
                        Some(p) => {
                            let call = core.dial(&dial, p, Instant::now());
                            out.outbound.insert(call, events);
                            let _ = reply.send(call);
                        }
                        None => tracing::warn!(%dest, "no SIP socket of that address family"),
                    },
                    PendingRequest::Hangup { call } => {
                        core.on_command(CallCommand::Hangup { call }, Instant::now())
                    }
                    PendingRequest::Register { registration, dest, egress } => match leave(dest, egress) {
                        Some(p) => core.register(registration, p, Instant::now()),
                        None => tracing::warn!(%dest, "no SIP socket of that address family"),
                    },
                    PendingRequest::RegisterAnswer(a) => core.answer_register(a, Instant::now()),
                }
            }
            Some(input) = rx.recv() => {
                if fault_injection {
                    if let Inbound::Message { data, .. } = &input {
                        if data.as_ref() == FAULT_DATAGRAM {
                            panic!("fault injected: the SIP core task dies");
                        }
                    }
                }
                handle(&mut core, &mut conns, input);
                // Take what is already queued (bounded) before waiting again;
                // outputs go out after each input, so a close that follows a
                // response on the queue never overtakes it.
                for _ in 0..64 {
                    flush(&mut core, &udp, &mut conns, &mut out).await;
                    match rx.try_recv() {
                        Ok(input) => handle(&mut core, &mut conns, input),
                        Err(_) => break,
                    }
                }
            }
            _ = sleep => core.on_timers(Instant::now()),
        }
        flush(&mut core, &udp, &mut conns, &mut out).await;
    }
}

/// After shutdown: keeps serving (new INVITEs get 503) until our BYEs are
/// answered or have been retransmitted for [`DRAIN`].
async fn drain(
    core: &mut Core,
    udp: &[Arc<UdpSocket>],
    conns: &mut Conns,
    out: &mut Outlets,
    rx: &mut mpsc::Receiver<Inbound>,
) {
    let give_up = Instant::now() + DRAIN;
    while !core.idle() {
        let next = core.next_deadline().map_or(give_up, |d| d.min(give_up));
        tokio::select! {
            Some(input) = rx.recv() => handle(core, conns, input),
            _ = tokio::time::sleep_until(next) => {
                if Instant::now() >= give_up {
                    return;
                }
                core.on_timers(Instant::now());
            }
        }
        flush(core, udp, conns, out).await;
    }
}

fn handle(core: &mut Core, conns: &mut Conns, input: Inbound) {
    let now = Instant::now();
    match input {
        Inbound::Message { data, peer } => core.on_message(&data, peer, now),
        Inbound::Connected { conn, writer, stop } => {
            for data in conns.connecting.remove(&conn).unwrap_or_default() {
                let _ = writer.try_send(data);
            }
            conns.open.insert(conn, ConnHandle { writer, stop });
            core.on_connected(conn, now);
        }
        Inbound::ConnectFailed { conn } => {
            conns.connecting.remove(&conn);
        }
        Inbound::Disconnected { conn } => {
            conns.open.remove(&conn);
            core.on_disconnected(conn);
        }
        Inbound::CloseAfterFlush { conn } => {
            // Dropping the writer lets it finish the queue, then shut down.
            conns.open.remove(&conn);
            core.on_disconnected(conn);
        }
    }
}

/// Where the core's outputs go besides the network.
struct Outlets {
    /// Who waits for which request's final status.
    pending: HashMap<u64, oneshot::Sender<Option<u16>>>,
    /// Where the events of calls we placed go.
    outbound: HashMap<CallRef, mpsc::Sender<CallEvent>>,
    /// The call layer.
    events: mpsc::Sender<CallEvent>,
    /// The registrar, when the gateway is one.
    registrar: Option<mpsc::Sender<RegisterRequest>>,
}

async fn flush(core: &mut Core, udp: &[Arc<UdpSocket>], conns: &mut Conns, outlets: &mut Outlets) {
    let Outlets {
        pending,
        outbound,
        events,
        registrar,
    } = outlets;
    while let Some(out) = core.poll_output() {
        match out {
            Output::Send { link, to, data } => match link {
                Link::Udp(i) => {
                    if let Some(s) = udp.get(i as usize) {
                        if let Err(e) = s.send_to(&data, to).await {
                            tracing::debug!(error = %e, %to, "udp send failed");
                        }
                    }
                }
                Link::Tcp(c) => {
                    let full = match conns.open.get(&c) {
                        Some(h) => h.writer.try_send(data).is_err(),
                        // A request: over a new connection to where it goes.
                        None if !data.starts_with(b"SIP/2.0 ") => {
                            match conns.connecting.get_mut(&c) {
                                Some(waiting) => waiting.push(data),
                                None => {
                                    tracing::debug!(conn = c, %to, "no tcp connection; connecting");
                                    conns.connecting.insert(c, Vec::new());
                                    conns.dial.connect(c, to, data);
                                }
                            }
                            false
                        }
                        None => {
                            tracing::debug!(conn = c, %to, "tcp connection gone; response not sent");
                            false
                        }
                    };
                    if full {
                        // A peer that does not read its responses loses its connection.
                        if let Some(h) = conns.open.remove(&c) {
                            h.stop.cancel();
                        }
                        core.on_disconnected(c);
                    }
                }
            },
            Output::Event(e) => {
                let call = e.call();
                if let Some(tx) = outbound.get(&call) {
                    let ended = matches!(e, CallEvent::Ended { .. });
                    let _ = tx.send(e).await;
                    if ended {
                        outbound.remove(&call);
                    }
                } else if events.send(e).await.is_err() {
                    tracing::error!("call layer is gone");
                }
            }
            Output::Close(c) => {
                if let Some(h) = conns.open.remove(&c) {
                    h.stop.cancel();
                }
            }
            Output::RequestDone { id, status } => {
                if let Some(reply) = pending.remove(&id) {
                    let _ = reply.send(status);
                }
            }
            Output::Register(req) => {
                let id = req.id;
                if registrar.as_ref().is_none_or(|r| r.try_send(*req).is_err()) {
                    // The registrar is swamped: the softphone tries later.
                    core.answer_register(
                        RegisterAnswer {
                            id,
                            status: 503,
                            reason: "Service Unavailable",
                            headers: vec![("Retry-After", "30".into())],
                        },
                        Instant::now(),
                    );
                }
            }
        }
    }
}
