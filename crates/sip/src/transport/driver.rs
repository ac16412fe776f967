//! The core task: owns the [`Core`], feeds it messages, commands and the
//! paging side's requests, sleeps until its next deadline, and carries out
//! what it outputs (sends, events, connections to open or close); after
//! shutdown it drains until our BYEs are answered.

use super::*;

pub(super) struct ConnHandle {
    writer: mpsc::Sender<Bytes>,
    stop: CancellationToken,
}

/// The TCP connections, and what it takes to open one.
pub(super) struct Conns {
    pub(super) open: HashMap<u64, ConnHandle>,
    /// Connections being opened, with what waits to go over them.
    pub(super) connecting: HashMap<u64, Vec<Bytes>>,
    pub(super) dial: Connector,
}

/// Opens a TCP connection for a request whose connection has closed (RFC
/// 3261 §18.1.1: a request in a TCP dialog goes over a new connection to the
/// next hop), under the closed one's id so that the dialog's later requests
/// follow; it then runs like an accepted one.
pub(super) struct Connector {
    pub(super) tx: mpsc::Sender<Inbound>,
    pub(super) limits: Limits,
    /// Links opened over TLS, and how each checks its peer.
    pub(super) tls: HashMap<u64, ClientTls>,
    pub(super) stop: CancellationToken,
    pub(super) tracker: tokio_util::task::TaskTracker,
}

/// How long connecting to a next hop may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Connector {
    /// Opens `Link::Tcp(conn)`, or `Link::Tls(conn)` with `tls`.
    fn connect(&self, conn: u64, to: SocketAddr, first: Bytes, tls: Option<ClientTls>) {
        let (tx, limits, stop) = (self.tx.clone(), self.limits, self.stop.clone());
        self.tracker.spawn(async move {
            let opened = tokio::time::timeout(CONNECT_TIMEOUT, async {
                let stream = TcpStream::connect(to).await?;
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr()?;
                Ok::<_, io::Error>((stream, local))
            })
            .await;
            let (stream, local) = match opened {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!(%to, error = %e, "cannot connect over TCP; request not sent");
                    let _ = tx.send(Inbound::ConnectFailed { conn }).await;
                    return;
                }
                Err(_) => {
                    tracing::warn!(%to, "TCP connect timed out; request not sent");
                    let _ = tx.send(Inbound::ConnectFailed { conn }).await;
                    return;
                }
            };
            let Some(tls) = tls else {
                let link = Link::Tcp(conn);
                return stream_connection(stream, to, local, link, tx, limits, stop, Some(first))
                    .await;
            };
            let connector = tokio_rustls::TlsConnector::from(tls.config);
            match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(tls.name, stream)).await {
                Ok(Ok(stream)) => {
                    let link = Link::Tls(conn);
                    stream_connection(stream, to, local, link, tx, limits, stop, Some(first)).await
                }
                Ok(Err(e)) => {
                    // A certificate that is not the trunk's: nothing is sent.
                    tracing::warn!(%to, error = %e, "TLS handshake failed; request not sent");
                    let _ = tx.send(Inbound::ConnectFailed { conn }).await;
                }
                Err(_) => {
                    tracing::warn!(%to, "TLS handshake timed out; request not sent");
                    let _ = tx.send(Inbound::ConnectFailed { conn }).await;
                }
            }
        });
    }
}

pub(super) async fn core_task(
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
        texts: calls.texts,
        registration: None,
    };
    // By index, as `Link::Udp(i)` names them (one the OS cannot name: the
    // unspecified address, routed per destination by `local_for`).
    let locals: Vec<SocketAddr> = udp
        .iter()
        .map(|s| {
            s.local_addr()
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
        })
        .collect();
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
                    Egress::Tls(conn) => peer(dest).map(|p| Peer { link: Link::Tls(conn), ..p }),
                };
                match r {
                    PendingRequest::Send { request, dest, egress, reply } => match leave(dest, egress) {
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
                    PendingRequest::Register { registration, dest, egress, state } => match leave(dest, egress) {
                        Some(p) => {
                            out.registration = Some(state);
                            core.register(registration, p, Instant::now())
                        }
                        None => tracing::warn!(%dest, "no SIP socket of that address family"),
                    },
                    PendingRequest::RegisterAnswer(a) => core.answer_handed(a, Instant::now()),
                    PendingRequest::ConnectTls { conn, tls } => {
                        conns.dial.tls.insert(conn, tls);
                    }
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
pub(super) async fn drain(
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

pub(super) fn handle(core: &mut Core, conns: &mut Conns, input: Inbound) {
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
pub(super) struct Outlets {
    /// Who waits for which request's final status.
    pending: HashMap<u64, oneshot::Sender<Option<u16>>>,
    /// Where the events of calls we placed go.
    outbound: HashMap<CallRef, mpsc::Sender<CallEvent>>,
    /// The call layer.
    events: mpsc::Sender<CallEvent>,
    /// The registrar, when the gateway is one.
    registrar: Option<mpsc::Sender<RegisterRequest>>,
    /// The inbox, when the gateway takes replies to its pages.
    texts: Option<mpsc::Sender<TextRequest>>,
    /// Who follows our registration with the trunk.
    registration: Option<watch::Sender<RegistrationState>>,
}

pub(super) async fn flush(
    core: &mut Core,
    udp: &[Arc<UdpSocket>],
    conns: &mut Conns,
    outlets: &mut Outlets,
) {
    let Outlets {
        pending,
        outbound,
        events,
        registrar,
        texts,
        registration,
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
                Link::Tls(c)
                    if !conns.open.contains_key(&c) && !conns.dial.tls.contains_key(&c) =>
                {
                    // A TLS connection the peer made: only it can make it
                    // again (we could not check its certificate's name).
                    tracing::debug!(conn = c, %to, "tls connection gone; message not sent");
                }
                Link::Tcp(c) | Link::Tls(c) => {
                    let full = match conns.open.get(&c) {
                        Some(h) => h.writer.try_send(data).is_err(),
                        // A request: over a new connection to where it goes.
                        None if !data.starts_with(b"SIP/2.0 ") => {
                            match conns.connecting.get_mut(&c) {
                                Some(waiting) => waiting.push(data),
                                None => {
                                    tracing::debug!(conn = c, %to, "no tcp connection; connecting");
                                    conns.connecting.insert(c, Vec::new());
                                    let tls = match link {
                                        Link::Tls(_) => conns.dial.tls.get(&c).cloned(),
                                        _ => None,
                                    };
                                    conns.dial.connect(c, to, data, tls);
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
            Output::Registration(state) => {
                if let Some(tx) = registration {
                    tx.send_replace(state);
                }
            }
            Output::Text(req) => {
                let id = req.id;
                if texts.as_ref().is_none_or(|t| t.try_send(*req).is_err()) {
                    // The inbox is swamped: the phone may send it again.
                    core.answer_handed(swamped(id), Instant::now());
                }
            }
            Output::Register(req) => {
                let id = req.id;
                if registrar.as_ref().is_none_or(|r| r.try_send(*req).is_err()) {
                    // The registrar is swamped: the softphone tries later.
                    core.answer_register(swamped(id), Instant::now());
                }
            }
        }
    }
}

/// The answer to a request handed over when its taker's queue is full: 503,
/// try again in 30 s.
fn swamped(id: u64) -> RegisterAnswer {
    RegisterAnswer {
        id,
        status: 503,
        reason: "Service Unavailable",
        headers: vec![("Retry-After", "30".into())],
    }
}
