//! RTP ports: even ports from the configured range, handed out round-robin.
//! A port in use by anything (another call, another program) fails to bind
//! and the next one is tried, so no table of ports is kept.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    min: u16,
    /// Number of even ports in the range.
    count: u32,
    cursor: AtomicU32,
}

#[derive(Debug, thiserror::Error)]
#[error("no free RTP port in {min}-{max}")]
pub struct Exhausted {
    pub min: u16,
    pub max: u16,
}

impl PortPool {
    pub fn new(ip: IpAddr, min: u16, max: u16) -> PortPool {
        let min = min + (min % 2);
        let count = (u32::from(max.max(min)) - u32::from(min)) / 2 + 1;
        PortPool {
            ip,
            min,
            count,
            cursor: AtomicU32::new(0),
        }
    }

    /// Binds a socket on the next free even port.
    pub fn bind(&self) -> Result<UdpSocket, Exhausted> {
        self.bind_for(self.ip)
    }

    /// Binds in the address family of `peer_side` (our address as the peer
    /// sees it): an IPv6 caller gets an IPv6 socket even when the
    /// configured address is the IPv4 wildcard.
    pub fn bind_for(&self, peer_side: IpAddr) -> Result<UdpSocket, Exhausted> {
        let ip = match (self.ip, peer_side) {
            (IpAddr::V4(v4), IpAddr::V6(_)) if v4.is_unspecified() => IpAddr::from([0u16; 8]),
            (IpAddr::V6(v6), IpAddr::V4(_)) if v6.is_unspecified() => IpAddr::from([0u8; 4]),
            (ip, _) => ip,
        };
        for _ in 0..self.count.min(4096) {
            let i = self.cursor.fetch_add(1, Ordering::Relaxed) % self.count;
            let port = self.min as u32 + 2 * i;
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            let addr = SocketAddr::new(ip, port);
            if let Ok(s) = UdpSocket::bind(addr) {
                // Non-blocking: the media session reads it once a tick.
                if s.set_nonblocking(true).is_ok() {
                    return Ok(s);
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
    fn even_ports_and_skips_busy_ones() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41001, 41010);
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
        drop((a, b, c, d, e));
    }
}
