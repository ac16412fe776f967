//! The readers: one task per UDP socket (datagrams cut to what the parser
//! reads, keep-alives dropped), the TCP and TLS acceptors and one task per
//! connection (a TLS handshake first, bounded in time; stream framing
//! resumed where it stopped, CRLF keep-alives answered, a writer task
//! draining the connection's queue).

use super::*;

pub(super) async fn udp_reader(
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
    let Ok(socket_local) = sock.local_addr() else {
        tracing::error!("a SIP socket without a local address: not read");
        return;
    };
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
        let data = buf.get(..n).unwrap_or_default();
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

/// A TLS handshake not done in this time is dropped (a silent client
/// holds a connection slot no longer).
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts on `listener` until `shutdown`; with `tls`, each connection
/// first completes a TLS handshake (SIP over TLS).
#[allow(clippy::too_many_arguments)]
pub(super) async fn tcp_acceptor(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
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
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                // Never closed: no acceptor waits on a closed one.
                Err(_) => return,
            },
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
        let tls = tls.clone();
        conns.spawn(async move {
            let _ = stream.set_nodelay(true);
            let Ok(local) = stream.local_addr() else {
                return;
            };
            match tls {
                None => {
                    let link = Link::Tcp(conn);
                    stream_connection(stream, from, local, link, tx, limits, shutdown, None).await
                }
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let stream = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        r = handshake => match r {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => return tracing::debug!(%from, error = %e, "SIP TLS handshake failed"),
                            Err(_) => return tracing::debug!(%from, "SIP TLS handshake timed out"),
                        },
                    };
                    let link = Link::Tls(conn);
                    stream_connection(stream, from, local, link, tx, limits, shutdown, None).await
                }
            }
            drop(permit);
        });
    }
}

/// One connection (TCP or TLS, `link` says which and its id) from `from`
/// to our `local`, until either side closes it; `first` is written first
/// (a request that opened it).
#[allow(clippy::too_many_arguments)]
pub(super) async fn stream_connection<S>(
    stream: S,
    from: SocketAddr,
    local: SocketAddr,
    link: Link,
    tx: mpsc::Sender<Inbound>,
    limits: Limits,
    shutdown: CancellationToken,
    first: Option<Bytes>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let Some(conn) = link.conn() else { return };
    let (mut reader, mut writer) = tokio::io::split(stream);
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
        link,
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
                if buf
                    .get(..lead)
                    .is_some_and(|crlf| crlf.windows(4).any(|w| w == b"\r\n\r\n"))
                {
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
