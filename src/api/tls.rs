//! HTTPS served by the gateway itself (rustls, ring provider), for courts
//! that put no reverse proxy in front of it. Handshakes run in their own
//! tasks, bounded in number and time, so a slow or silent client holds up
//! nobody; finished connections go to `axum::serve` like plain TCP ones.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A handshake not done in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; a connection beyond is closed.
const MAX_HANDSHAKES: usize = 256;

/// Accepted and handshaken connections, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// The listener, and its acceptor for the caller to run (supervised):
    /// it accepts on `tcp` until `stop`.
    pub fn new(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        stop: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<(
        TlsListener,
        impl std::future::Future<Output = ()> + Send + 'static,
    )> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let accepting = async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = tcp.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            // Out of descriptors and the like: back off.
                            tracing::warn!("https accept: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(peer = %crate::sip::admission::mask_ip(peer.ip()), "https: too many handshakes in progress; closed");
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %crate::sip::admission::mask_ip(peer.ip()), "https handshake: {e}")
                        }
                        Err(_) => {
                            tracing::debug!(peer = %crate::sip::admission::mask_ip(peer.ip()), "https handshake timed out")
                        }
                    }
                });
            }
        };
        Ok((TlsListener { ready, local }, accepting))
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // Stopped: the server's graceful shutdown ends the serve loop.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
