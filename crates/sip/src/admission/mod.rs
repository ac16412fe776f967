//! Who may use the SIP core, and how much, sans-IO: per-source limits in the
//! manner of Kamailio's `pike` (requests and new INVITEs per second,
//! concurrent calls, transactions), bans for sources that keep hitting them,
//! the scanner list, and the share of `max_calls` that untrusted sources
//! with a call up cannot take. Trusted sources (the court's PBX, the carrier
//! SBC: `[sip] trusted`) are never limited and vouch for the caller's
//! identity. A proxy in front (`[sip] proxies`, Kamailio) is trusted for
//! routing only: the source of what it relays is the one it names in
//! [`SOURCE_HEADER`] ([`Origin`]), and every limit, ban and log line
//! applies to that source; a proxy itself is never banned.
//!
//! A source is an IPv4 address or an IPv6 /64 (one subscriber's prefix).
//! Every decision takes `now`, so the limits are tested with a hand-moved
//! clock. Each limit hit, ban, scanner drop and malformed message writes one
//! line to the security log (target `security`, fixed format; at most one
//! line a second per source and kind, counting what it stands for), which
//! `deploy/fail2ban/` reads.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use tokio::time::Instant;

/// An address block, `10.1.2.0/24` or `2001:db8::/32` (a bare address is a
/// block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.prefix) == self.net
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u32::from(a) & m).to_be_bytes())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or address/prefix"))?;
        let net = net.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("{s:?}: the prefix length must be 0 to {max}")),
            },
        };
        let block = Cidr {
            net: mask(net, prefix),
            prefix,
        };
        if block.net != net {
            return Err(format!("{s:?} has host bits set (the block is {block})"));
        }
        Ok(block)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The header in which a proxy of `[sip] proxies` names the source of a
/// request it relays: `X-Hotline-Source: <transport> <address> <port>`
/// (Kamailio: `$pr $si $sp`). From anyone else it is ignored.
pub const SOURCE_HEADER: &str = "X-Hotline-Source";

/// Where a request comes from, as admission counts it: the socket's peer,
/// or, from a configured proxy, the source that proxy forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub addr: std::net::SocketAddr,
    /// `UDP`, `TCP`, `TLS`, `WS`, `WSS`, `SCTP`.
    pub transport: &'static str,
    /// Named by a proxy in [`SOURCE_HEADER`] (else the socket's own peer).
    pub forwarded: bool,
}

impl Origin {
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    /// The socket's peer as the origin.
    pub fn direct(addr: std::net::SocketAddr, transport: &'static str) -> Origin {
        Origin {
            addr,
            transport,
            forwarded: false,
        }
    }

    /// The value of a [`SOURCE_HEADER`]: `udp 192.0.2.7 5060`; `None` when
    /// it is not three well-formed fields.
    pub fn parse_forwarded(value: &str) -> Option<Origin> {
        let mut f = value.split_ascii_whitespace();
        let transport = match f.next()?.to_ascii_uppercase().as_str() {
            "UDP" => "UDP",
            "TCP" => "TCP",
            "TLS" => "TLS",
            "WS" => "WS",
            "WSS" => "WSS",
            "SCTP" => "SCTP",
            _ => return None,
        };
        let ip: IpAddr = f
            .next()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        let port: u16 = f.next()?.parse().ok()?;
        if f.next().is_some() {
            return None;
        }
        Some(Origin {
            addr: std::net::SocketAddr::new(ip.to_canonical(), port),
            transport,
            forwarded: true,
        })
    }
}

/// The limits (`[sip]` in the config file).
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    /// The court's PBX and the carrier's SBC: never limited, their
    /// P-Asserted-Identity (or From) is the caller's number.
    pub trusted: Vec<Cidr>,
    /// Proxies in front (Kamailio): trusted for routing only. The source
    /// of what they relay is the one they name in [`SOURCE_HEADER`]; they
    /// are never banned themselves.
    pub proxies: Vec<Cidr>,
    /// New requests (outside transactions and dialogs) per source per
    /// second; bursts of twice as many pass.
    pub requests_per_second: u32,
    /// New INVITEs per source per second; bursts of twice as many pass.
    pub invites_per_second: u32,
    /// Calls one source may have up at once.
    pub calls_per_source: usize,
    /// This many limit hits within [`BAN_WINDOW`] ban the source.
    pub ban_after: u32,
    /// How long a banned source is dropped unanswered.
    pub ban: Duration,
    /// Percent of `max_calls` that untrusted sources with a call up cannot
    /// take (kept for trusted sources and for sources with no call up).
    pub reserve_percent: u32,
    /// User-Agent substrings (lower case) of scanners, dropped unanswered.
    pub scanners: Vec<String>,
    /// Server transactions kept at once, in total and per untrusted source;
    /// beyond them requests are answered statelessly.
    pub max_transactions: usize,
    pub transactions_per_source: usize,
    /// Sources remembered at once; when full, unknown sources are refused.
    pub max_sources: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            trusted: Vec::new(),
            proxies: Vec::new(),
            requests_per_second: 20,
            invites_per_second: 5,
            calls_per_source: 4,
            ban_after: 10,
            ban: Duration::from_secs(300),
            reserve_percent: 20,
            scanners: default_scanners(),
            max_transactions: 20_000,
            transactions_per_source: 256,
            max_sources: 65_536,
        }
    }
}

/// User agents of the common SIP scanners (SIPVicious and its forks).
pub fn default_scanners() -> Vec<String> {
    [
        "friendly-scanner",
        "sipvicious",
        "sipcli",
        "vaxsipuseragent",
        "sundayddr",
        "iwar",
    ]
    .map(String::from)
    .to_vec()
}

/// Limit hits counted towards a ban within this window.
pub const BAN_WINDOW: Duration = Duration::from_secs(10);
/// Malformed messages that weigh as much as one limit hit.
pub const MALFORMED_PER_STRIKE: u32 = 10;
/// A source idle this long (no call, no transaction, no ban) is forgotten.
const IDLE: Duration = Duration::from_secs(60);

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Answer 503 with Retry-After, statelessly; the reason is logged.
    Refuse(&'static str),
    /// Drop unanswered.
    Drop,
}

/// Kinds of security log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    RateLimited,
    Banned,
    Scanner,
    Malformed,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::RateLimited => "rate_limited",
            Event::Banned => "banned",
            Event::Scanner => "scanner",
            Event::Malformed => "malformed",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// A token bucket holding up to twice its rate.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: 2.0 * f64::from(rate),
            at: now,
        }
    }

    fn take(&mut self, rate: u32, now: Instant) -> bool {
        let rate = f64::from(rate);
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(2.0 * rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Events counted within [`BAN_WINDOW`].
#[derive(Debug, Clone, Copy)]
struct Window {
    count: u32,
    since: Instant,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            count: 0,
            since: now,
        }
    }

    /// Counts one more; returns the count within the current window.
    fn add(&mut self, now: Instant) -> u32 {
        if now.saturating_duration_since(self.since) >= BAN_WINDOW {
            *self = Window::new(now);
        }
        self.count = self.count.saturating_add(1);
        self.count
    }
}

#[derive(Debug)]
struct Source {
    requests: Bucket,
    invites: Bucket,
    /// Limit hits.
    strikes: Window,
    malformed: Window,
    banned_until: Option<Instant>,
    calls: usize,
    txs: usize,
    last_seen: Instant,
    /// Per event kind: when its last line was written, and how many events
    /// came since.
    logged: [(Option<Instant>, u64); 4],
}

/// Per-source state and the decisions made on it.
pub struct Admission {
    cfg: AdmissionConfig,
    sources: HashMap<IpAddr, Source>,
    /// Calls up from untrusted sources.
    untrusted_calls: usize,
    last_sweep: Option<Instant>,
    /// Refusals because the table was full, since the last line about them.
    full_refused: u64,
    full_logged: Option<Instant>,
}

/// The source a limit applies to: the IPv4 address, or the IPv6 /64.
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        v6 @ IpAddr::V6(_) => mask(v6, 64),
        v4 => v4,
    }
}

/// An address as the logs show it, where it names a person (a browser
/// caller, a client of the HTTPS port): its network only, the IPv4 /24
/// (`198.51.100.0/24`) or the IPv6 /48, never the address itself.
pub fn mask_ip(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V4(a) => {
            let [x, y, z, _] = a.octets();
            format!("{x}.{y}.{z}.0/24")
        }
        std::net::IpAddr::V6(a) => {
            let net = std::net::Ipv6Addr::from(u128::from(a) & (u128::MAX << 80));
            format!("{net}/48")
        }
    }
}

/// The security log line of a ban.
fn log_ban(ip: IpAddr, why: &str, ban: Duration) {
    tracing::warn!(
        target: "security",
        "SECURITY event=banned src={} reason=\"{why} in {} s\" seconds={}",
        source_of(ip),
        BAN_WINDOW.as_secs(),
        ban.as_secs()
    );
}

impl Admission {
    pub fn new(cfg: AdmissionConfig) -> Admission {
        Admission {
            cfg,
            sources: HashMap::new(),
            untrusted_calls: 0,
            last_sweep: None,
            full_refused: 0,
            full_logged: None,
        }
    }

    pub fn config(&self) -> &AdmissionConfig {
        &self.cfg
    }

    pub fn trusted(&self, ip: IpAddr) -> bool {
        self.cfg.trusted.iter().any(|c| c.contains(ip))
    }

    /// A proxy in front: what it relays is counted against the source it
    /// forwards ([`Admission::origin`]).
    pub fn proxy(&self, ip: IpAddr) -> bool {
        self.cfg.proxies.iter().any(|c| c.contains(ip))
    }

    /// The origin of a request that came from `peer` over `transport`,
    /// with its [`SOURCE_HEADER`] values: from a proxy the last one (the
    /// proxy appends its own after any the caller sent), from anyone else
    /// the peer. A proxy's request without a readable one (its own probes,
    /// or a configuration that does not add it) is the proxy's own.
    pub fn origin<I: Iterator<Item = String>>(
        &mut self,
        peer: std::net::SocketAddr,
        transport: &'static str,
        forwarded: I,
        now: Instant,
    ) -> Origin {
        let direct = Origin::direct(peer, transport);
        if !self.proxy(peer.ip()) {
            return direct;
        }
        match forwarded.last().as_deref().map(Origin::parse_forwarded) {
            Some(Some(o)) => o,
            Some(None) => {
                self.log(
                    peer.ip(),
                    Event::Malformed,
                    "proxy sent an unreadable X-Hotline-Source",
                    now,
                );
                direct
            }
            None => direct,
        }
    }

    /// The source's state, created when there is room.
    fn source(&mut self, ip: IpAddr, now: Instant) -> Option<&mut Source> {
        let key = source_of(ip);
        if !self.sources.contains_key(&key) {
            if self.sources.len() >= self.cfg.max_sources {
                self.sweep(now, true);
            }
            if self.sources.len() >= self.cfg.max_sources {
                return None;
            }
            let (r, i) = (self.cfg.requests_per_second, self.cfg.invites_per_second);
            self.sources.insert(
                key,
                Source {
                    requests: Bucket::full(r, now),
                    invites: Bucket::full(i, now),
                    strikes: Window::new(now),
                    malformed: Window::new(now),
                    banned_until: None,
                    calls: 0,
                    txs: 0,
                    last_seen: now,
                    logged: [(None, 0); 4],
                },
            );
        }
        let s = self.sources.get_mut(&key)?;
        s.last_seen = now;
        Some(s)
    }

    /// Forgets idle sources (at most every [`IDLE`], unless `force`).
    fn sweep(&mut self, now: Instant, force: bool) {
        if !force && self.last_sweep.is_some_and(|t| now < t + IDLE) {
            return;
        }
        self.last_sweep = Some(now);
        self.sources.retain(|_, s| {
            s.calls > 0
                || s.txs > 0
                || s.banned_until.is_some_and(|b| b > now)
                || now.saturating_duration_since(s.last_seen) < IDLE
        });
    }

    /// True while `ip` is banned: its messages are dropped before parsing.
    pub fn banned(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.sweep(now, false);
        let Some(s) = self.sources.get_mut(&source_of(ip)) else {
            return false;
        };
        match s.banned_until {
            Some(until) if now < until => true,
            Some(_) => {
                s.banned_until = None;
                s.strikes = Window::new(now);
                false
            }
            None => false,
        }
    }

    /// A request that starts a new transaction outside any dialog.
    pub fn request(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if self.trusted(ip) {
            return Verdict::Pass;
        }
        let rate = self.cfg.requests_per_second;
        let Some(s) = self.source(ip, now) else {
            return self.full(ip, now);
        };
        if s.requests.take(rate, now) {
            Verdict::Pass
        } else {
            self.hit(ip, now, "requests per second")
        }
    }

    /// A new call (an INVITE that passed [`Admission::request`]), with the
    /// number of inbound calls up and `max_calls`.
    pub fn invite(&mut self, ip: IpAddr, now: Instant, max_calls: usize) -> Verdict {
        if self.trusted(ip) {
            return Verdict::Pass;
        }
        let rate = self.cfg.invites_per_second;
        let per_source = self.cfg.calls_per_source;
        let cap = max_calls.saturating_mul(100 - self.cfg.reserve_percent.min(100) as usize) / 100;
        let untrusted = self.untrusted_calls;
        let Some(s) = self.source(ip, now) else {
            return self.full(ip, now);
        };
        if !s.invites.take(rate, now) {
            return self.hit(ip, now, "invites per second");
        }
        if s.calls >= per_source {
            return self.hit(ip, now, "calls per source");
        }
        if s.calls > 0 && untrusted >= cap {
            // Not the source's fault: no strike, but said.
            self.log(ip, Event::RateLimited, "untrusted share of max_calls", now);
            return Verdict::Refuse("untrusted share of max_calls");
        }
        Verdict::Pass
    }

    /// The source table is full: a stateless refusal, logged once a
    /// second at most (with how many it stands for).
    fn full(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        self.full_refused += 1;
        if self
            .full_logged
            .is_none_or(|t| now >= t + Duration::from_secs(1))
        {
            self.full_logged = Some(now);
            tracing::warn!(
                target: "security",
                "SECURITY event=rate_limited src={} reason=\"source table full\" count={}",
                source_of(ip),
                std::mem::take(&mut self.full_refused)
            );
        }
        Verdict::Refuse("source table full")
    }

    /// A limit was hit: a strike, the log line, and a ban past `ban_after`.
    fn hit(&mut self, ip: IpAddr, now: Instant, reason: &'static str) -> Verdict {
        let (ban_after, ban) = (self.cfg.ban_after, self.cfg.ban);
        let proxy = self.proxy(ip);
        let Some(s) = self.source(ip, now) else {
            return Verdict::Refuse(reason);
        };
        let strikes = s.strikes.add(now);
        if ban_after > 0 && strikes >= ban_after && !proxy {
            s.banned_until = Some(now + ban);
            log_ban(ip, &format!("{reason}: {strikes} limit hits"), ban);
            return Verdict::Drop;
        }
        self.log(ip, Event::RateLimited, reason, now);
        Verdict::Refuse(reason)
    }

    /// A malformed message from `ip`: logged; true when it bans the source.
    /// Answering one costs little, so a conformance run from one address
    /// is answered throughout: only [`MALFORMED_PER_STRIKE`] times the
    /// `ban_after` malformed messages within [`BAN_WINDOW`] (a fuzzer) ban.
    pub fn malformed(&mut self, ip: IpAddr, now: Instant, reason: &str) -> bool {
        self.log(ip, Event::Malformed, reason, now);
        if self.trusted(ip) || self.proxy(ip) {
            return false;
        }
        let (ban_after, ban) = (self.cfg.ban_after, self.cfg.ban);
        let Some(s) = self.source(ip, now) else {
            return false;
        };
        let malformed = s.malformed.add(now);
        let limit = ban_after.saturating_mul(MALFORMED_PER_STRIKE);
        if ban_after > 0 && malformed >= limit && s.banned_until.is_none() {
            s.banned_until = Some(now + ban);
            log_ban(ip, &format!("{malformed} malformed messages"), ban);
            return true;
        }
        false
    }

    /// True when `user_agent` is a known scanner's (then logged). Through
    /// a trusted source too: the request is dropped, the source is not
    /// banned (put it in fail2ban's `ignoreip` as well).
    pub fn scanner(&mut self, ip: IpAddr, user_agent: &str, now: Instant) -> bool {
        let ua = user_agent.to_ascii_lowercase();
        let Some(name) = self.cfg.scanners.iter().find(|s| ua.contains(s.as_str())) else {
            return false;
        };
        let reason = format!("user agent {name}");
        self.log(ip, Event::Scanner, &reason, now);
        true
    }

    /// One security log line per source and kind a second at most; `count`
    /// says how many events it stands for.
    fn log(&mut self, ip: IpAddr, event: Event, reason: &str, now: Instant) {
        let key = source_of(ip);
        let count = match self.source(ip, now) {
            Some(s) => {
                let (last, n) = &mut s.logged[event.index()];
                *n += 1;
                if last.is_some_and(|t| now < t + Duration::from_secs(1)) {
                    return;
                }
                *last = Some(now);
                std::mem::take(n)
            }
            None => 1,
        };
        // Quotes in a reason would break the fixed format.
        let reason = reason.replace(['"', '\r', '\n'], "'");
        tracing::warn!(
            target: "security",
            "SECURITY event={} src={key} reason=\"{reason}\" count={count}",
            event.as_str()
        );
    }

    /// A call from `ip` holds a slot.
    pub fn call_started(&mut self, ip: IpAddr, now: Instant) {
        if self.trusted(ip) {
            return;
        }
        self.untrusted_calls += 1;
        if let Some(s) = self.source(ip, now) {
            s.calls += 1;
        }
    }

    pub fn call_ended(&mut self, ip: IpAddr) {
        if self.trusted(ip) {
            return;
        }
        self.untrusted_calls = self.untrusted_calls.saturating_sub(1);
        if let Some(s) = self.sources.get_mut(&source_of(ip)) {
            s.calls = s.calls.saturating_sub(1);
        }
    }

    /// Whether a server transaction for a request from `ip` may be kept,
    /// with `total` kept now.
    pub fn tx_room(&mut self, ip: IpAddr, total: usize, now: Instant) -> bool {
        if total >= self.cfg.max_transactions {
            return false;
        }
        if self.trusted(ip) {
            return true;
        }
        let per = self.cfg.transactions_per_source;
        self.source(ip, now).is_some_and(|s| s.txs < per)
    }

    pub fn tx_started(&mut self, ip: IpAddr, now: Instant) {
        if !self.trusted(ip) {
            if let Some(s) = self.source(ip, now) {
                s.txs += 1;
            }
        }
    }

    pub fn tx_ended(&mut self, ip: IpAddr) {
        if let Some(s) = self.sources.get_mut(&source_of(ip)) {
            s.txs = s.txs.saturating_sub(1);
        }
    }

    /// Sources remembered now (for tests and `/metrics`).
    pub fn sources(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests;
