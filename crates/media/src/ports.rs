//! RTP ports: even ports from the configured range, each taken from a random
//! place in it.
//! A port in use by anything (another call, another program) fails to bind
//! and the next one is tried, so no table of ports is kept; the number
//! leased is counted in [`Load`] (each [`RtpSocket`] gives its port back
//! when dropped), so the SIP core sheds new calls before the range runs out.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;

use hotline_sip::shedding::Load;

#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    min: u16,
    /// Number of even ports in the range.
    count: u32,
    load: Arc<Load>,
}

/// A bound RTP socket, counted as leased until dropped.
#[derive(Debug)]
pub struct RtpSocket {
    socket: UdpSocket,
    load: Option<Arc<Load>>,
}

impl RtpSocket {
    /// A socket bound elsewhere (tests, benchmarks): counted nowhere.
    pub fn unpooled(socket: UdpSocket) -> RtpSocket {
        RtpSocket { socket, load: None }
    }

    /// The load the socket's pool reports to.
    pub fn load(&self) -> Option<&Load> {
        self.load.as_deref()
    }
}

impl std::ops::Deref for RtpSocket {
    type Target = UdpSocket;
    fn deref(&self) -> &UdpSocket {
        &self.socket
    }
}

impl Drop for RtpSocket {
    fn drop(&mut self) {
        if let Some(l) = &self.load {
            l.port_returned();
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no free RTP port in {min}-{max}")]
pub struct Exhausted {
    pub min: u16,
    pub max: u16,
}

impl PortPool {
    pub fn new(ip: IpAddr, min: u16, max: u16, load: Arc<Load>) -> PortPool {
        let min = min.saturating_add(min % 2);
        let count = (u32::from(max.max(min)) - u32::from(min)) / 2 + 1;
        load.set_ports(count);
        PortPool {
            ip,
            min,
            count,
            load,
        }
    }

    pub fn load(&self) -> &Arc<Load> {
        &self.load
    }

    /// Binds a socket on the next free even port.
    pub fn bind(&self) -> Result<RtpSocket, Exhausted> {
        self.bind_for(self.ip)
    }

    /// Binds in the address family of `peer_side` (our address as the peer
    /// sees it): an IPv6 caller gets an IPv6 socket even when the
    /// configured address is the IPv4 wildcard.
    pub fn bind_for(&self, peer_side: IpAddr) -> Result<RtpSocket, Exhausted> {
        let ip = match (self.ip, peer_side) {
            (IpAddr::V4(v4), IpAddr::V6(_)) if v4.is_unspecified() => IpAddr::from([0u16; 8]),
            (IpAddr::V6(v6), IpAddr::V4(_)) if v6.is_unspecified() => IpAddr::from([0u8; 4]),
            (ip, _) => ip,
        };
        // A random place in the range, then on from there: one call's port
        // tells nobody the next caller's (a round robin would).
        let from = rand::random::<u32>() % self.count;
        for k in 0..self.count.min(4096) {
            let i = (from + k) % self.count;
            let port = self.min as u32 + 2 * i;
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            let addr = SocketAddr::new(ip, port);
            if let Ok(s) = UdpSocket::bind(addr) {
                // Non-blocking: the media session reads it once a tick.
                if s.set_nonblocking(true).is_ok() {
                    self.load.port_leased();
                    return Ok(RtpSocket {
                        socket: s,
                        load: Some(self.load.clone()),
                    });
                }
            }
        }
        Err(Exhausted {
            min: self.min,
            max: (self.min as u32 + 2 * (self.count - 1)) as u16,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_port_cannot_be_guessed_from_the_last() {
        let pool = PortPool::new(
            "127.0.0.1".parse().unwrap(),
            42000,
            43998,
            Arc::new(Load::default()),
        );
        let ports: Vec<u16> = (0..20)
            .map(|_| pool.bind().unwrap())
            .map(|s| s.local_addr().unwrap().port())
            .collect::<Vec<_>>();
        assert!(ports.iter().all(|p| p % 2 == 0));
        // In order, each 2 above the last, is what a round robin gives.
        let in_a_row = ports.windows(2).filter(|w| w[1] == w[0] + 2).count();
        assert!(in_a_row < 5, "{ports:?}");
    }

    #[test]
    fn even_ports_and_skips_busy_ones() {
        let load = Arc::new(Load::default());
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41001, 41010, load.clone());
        let a = pool.bind().unwrap();
        let b = pool.bind().unwrap();
        let (pa, pb) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        assert_eq!(pa % 2, 0);
        assert_eq!(pb % 2, 0);
        assert_ne!(pa, pb);
        // All five even ports taken: the sixth attempt fails with a clear error.
        let c = pool.bind().unwrap();
        let d = pool.bind().unwrap();
        let e = pool.bind().unwrap();
        let err = pool.bind().unwrap_err();
        assert_eq!(err.to_string(), "no free RTP port in 41002-41010");
        assert_eq!(
            load.shed(tokio::time::Instant::now()),
            Some("RTP ports low")
        );
        drop((a, b, c, d, e));
        assert_eq!(
            load.shed(tokio::time::Instant::now()),
            None,
            "all five back"
        );
    }
}
