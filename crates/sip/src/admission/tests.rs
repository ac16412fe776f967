//! Admission with paused time: buckets, bans, scanners, shares, bounds.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn cidr_blocks() {
    let c: Cidr = "10.1.2.0/24".parse().unwrap();
    assert!(c.contains(ip("10.1.2.77")));
    assert!(!c.contains(ip("10.1.3.1")));
    assert!(c.contains(ip("::ffff:10.1.2.9")), "v4-mapped");
    assert!(!c.contains(ip("2001:db8::1")));
    let v6: Cidr = "2001:db8::/32".parse().unwrap();
    assert!(v6.contains(ip("2001:db8:1::5")));
    assert!(!v6.contains(ip("2001:db9::5")));
    let one: Cidr = "192.0.2.1".parse().unwrap();
    assert!(one.contains(ip("192.0.2.1")) && !one.contains(ip("192.0.2.2")));
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains(ip("203.0.113.4")));
    for bad in [
        "10.1.2.0/33",
        "10.1.2.1/24",
        "x/8",
        "10.1.2.0/",
        "::/129",
        "",
    ] {
        assert!(bad.parse::<Cidr>().is_err(), "{bad}");
    }
    assert_eq!(
        "10.1.2.1/24".parse::<Cidr>().unwrap_err(),
        "\"10.1.2.1/24\" has host bits set (the block is 10.1.2.0/24)"
    );
}

#[test]
fn ipv6_sources_are_limited_per_64() {
    assert_eq!(source_of(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
    assert_eq!(source_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    let mut a = Admission::new(AdmissionConfig::default());
    let now = Instant::now();
    // One /64 shares one bucket, whatever the interface identifiers.
    let mut passed = 0;
    for i in 0..100u16 {
        let addr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, 0, 0, 1));
        if a.request(addr, now) == Verdict::Pass {
            passed += 1;
        }
    }
    assert_eq!(passed, 40, "burst of twice the rate");
    assert_eq!(a.sources(), 1);
}

#[tokio::test(start_paused = true)]
async fn request_rate_refuses_then_bans_then_forgives() {
    let cfg = AdmissionConfig {
        requests_per_second: 2,
        ban_after: 3,
        ban: Duration::from_secs(60),
        ..AdmissionConfig::default()
    };
    let mut a = Admission::new(cfg);
    let src = ip("192.0.2.9");
    let t0 = Instant::now();
    // Burst of 4 passes, then refusals count as strikes.
    for _ in 0..4 {
        assert_eq!(a.request(src, t0), Verdict::Pass);
    }
    assert_eq!(a.request(src, t0), Verdict::Refuse("requests per second"));
    // Half a second refills one token.
    let t1 = t0 + Duration::from_millis(500);
    assert_eq!(a.request(src, t1), Verdict::Pass);
    assert_eq!(a.request(src, t1), Verdict::Refuse("requests per second"));
    // The third strike bans.
    assert_eq!(a.request(src, t1), Verdict::Drop);
    assert!(a.banned(src, t1));
    assert!(a.banned(src, t1 + Duration::from_secs(59)));
    // Another source is untouched.
    assert!(!a.banned(ip("192.0.2.10"), t1));
    assert_eq!(a.request(ip("192.0.2.10"), t1), Verdict::Pass);
    // After the ban the source starts again with a clean slate.
    let t2 = t1 + Duration::from_secs(60);
    assert!(!a.banned(src, t2));
    assert_eq!(a.request(src, t2), Verdict::Pass);
}

#[tokio::test(start_paused = true)]
async fn strikes_outside_the_window_do_not_add_up() {
    let cfg = AdmissionConfig {
        requests_per_second: 1,
        ban_after: 3,
        ..AdmissionConfig::default()
    };
    let mut a = Admission::new(cfg);
    let src = ip("192.0.2.9");
    let mut t = Instant::now();
    // Two strikes every 11 s never reach three in a window.
    for _ in 0..5 {
        while a.request(src, t) == Verdict::Pass {}
        assert_eq!(a.request(src, t), Verdict::Refuse("requests per second"));
        assert!(!a.banned(src, t));
        t += BAN_WINDOW + Duration::from_secs(1);
    }
}

#[tokio::test(start_paused = true)]
async fn trusted_sources_are_never_limited() {
    let cfg = AdmissionConfig {
        trusted: vec!["10.1.2.0/24".parse().unwrap()],
        requests_per_second: 1,
        invites_per_second: 1,
        calls_per_source: 1,
        ..AdmissionConfig::default()
    };
    let mut a = Admission::new(cfg);
    let pbx = ip("10.1.2.3");
    let now = Instant::now();
    for _ in 0..1000 {
        assert_eq!(a.request(pbx, now), Verdict::Pass);
        assert_eq!(a.invite(pbx, now, 10), Verdict::Pass);
        a.call_started(pbx, now);
    }
    assert!(!a.banned(pbx, now));
    assert_eq!(a.sources(), 0, "nothing kept for trusted sources");
}

#[tokio::test(start_paused = true)]
async fn calls_per_source_and_the_reserved_share() {
    let cfg = AdmissionConfig {
        invites_per_second: 100,
        calls_per_source: 3,
        reserve_percent: 20,
        ban_after: 0,
        trusted: vec!["10.0.0.1".parse().unwrap()],
        ..AdmissionConfig::default()
    };
    let mut a = Admission::new(cfg);
    let now = Instant::now();
    let max_calls = 10;
    // Three calls from one source, the fourth refused.
    let flood = ip("192.0.2.1");
    for _ in 0..3 {
        assert_eq!(a.invite(flood, now, max_calls), Verdict::Pass);
        a.call_started(flood, now);
    }
    assert_eq!(
        a.invite(flood, now, max_calls),
        Verdict::Refuse("calls per source")
    );
    // Others fill the untrusted share (8 of 10) with second calls.
    let b = ip("192.0.2.2");
    let c = ip("192.0.2.3");
    for s in [b, b, b, c, c] {
        assert_eq!(a.invite(s, now, max_calls), Verdict::Pass);
        a.call_started(s, now);
    }
    // A source with a call up can no longer take a slot...
    assert_eq!(
        a.invite(c, now, max_calls),
        Verdict::Refuse("untrusted share of max_calls")
    );
    // ...but one with none can, and so can a trusted one.
    assert_eq!(a.invite(ip("192.0.2.50"), now, max_calls), Verdict::Pass);
    assert_eq!(a.invite(ip("10.0.0.1"), now, max_calls), Verdict::Pass);
    // A call ending frees the share.
    a.call_ended(b);
    assert_eq!(a.invite(c, now, max_calls), Verdict::Pass);
}

#[tokio::test(start_paused = true)]
async fn transactions_are_bounded_in_total_and_per_source() {
    let cfg = AdmissionConfig {
        max_transactions: 5,
        transactions_per_source: 2,
        ..AdmissionConfig::default()
    };
    let mut a = Admission::new(cfg);
    let now = Instant::now();
    let src = ip("192.0.2.1");
    assert!(a.tx_room(src, 0, now));
    a.tx_started(src, now);
    a.tx_started(src, now);
    assert!(!a.tx_room(src, 2, now));
    assert!(a.tx_room(ip("192.0.2.2"), 2, now));
    assert!(!a.tx_room(ip("192.0.2.2"), 5, now), "total bound");
    a.tx_ended(src);
    assert!(a.tx_room(src, 1, now));
}

#[tokio::test(start_paused = true)]
async fn scanners_are_recognised_by_user_agent() {
    let mut a = Admission::new(AdmissionConfig::default());
    let now = Instant::now();
    let src = ip("203.0.113.5");
    assert!(a.scanner(src, "friendly-scanner", now));
    assert!(a.scanner(src, "SIPVicious 0.3.4", now));
    assert!(a.scanner(src, "VaxSIPUserAgent/3.1", now));
    assert!(!a.scanner(src, "Linphone/5.2 (belle-sip)", now));
    assert!(!a.scanner(src, "", now));
}

#[tokio::test(start_paused = true)]
async fn the_source_table_is_bounded_and_idle_sources_are_forgotten() {
    let cfg = AdmissionConfig {
        max_sources: 4,
        ..AdmissionConfig::default()
    };
    let mut a = Admission::new(cfg);
    let t0 = Instant::now();
    for i in 1..=4u8 {
        assert_eq!(a.request(IpAddr::from([192, 0, 2, i]), t0), Verdict::Pass);
    }
    // Full: a fifth source is refused, not remembered.
    let fifth = IpAddr::from([192, 0, 2, 5]);
    assert_eq!(a.request(fifth, t0), Verdict::Refuse("source table full"));
    assert_eq!(a.sources(), 4);
    // A minute later the idle ones are forgotten and there is room.
    let t1 = t0 + IDLE;
    assert_eq!(a.request(fifth, t1), Verdict::Pass);
    assert_eq!(a.sources(), 1);
}

#[tokio::test(start_paused = true)]
async fn malformed_floods_are_banned() {
    let cfg = AdmissionConfig {
        ban_after: 5,
        ..AdmissionConfig::default()
    };
    let mut a = Admission::new(cfg);
    let now = Instant::now();
    let src = ip("192.0.2.77");
    // A torture suite (tens of messages) is answered; a fuzzer is not.
    for _ in 0..49 {
        assert!(!a.malformed(src, now, "Malformed Request-Line"));
    }
    assert!(!a.banned(src, now));
    assert!(a.malformed(src, now, "Malformed Request-Line"));
    assert!(a.banned(src, now));
}

#[test]
fn a_forwarded_source_is_read_from_a_proxy_only() {
    let proxy: IpAddr = "192.0.2.50".parse().unwrap();
    let mut a = Admission::new(AdmissionConfig {
        proxies: vec!["192.0.2.50".parse().unwrap()],
        ..Default::default()
    });
    let now = Instant::now();
    let peer = std::net::SocketAddr::new(proxy, 5060);
    let hdr = |v: &[&str]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    };
    let o = a.origin(peer, "UDP", hdr(&["tcp 203.0.113.7 40000"]), now);
    assert_eq!(
        o.addr,
        "203.0.113.7:40000".parse::<std::net::SocketAddr>().unwrap()
    );
    assert_eq!((o.transport, o.forwarded), ("TCP", true));
    // The last one counts: the proxy appends its own after the caller's.
    let o = a.origin(
        peer,
        "UDP",
        hdr(&["udp 10.0.0.1 1", "udp 203.0.113.8 5060"]),
        now,
    );
    assert_eq!(
        o.addr,
        "203.0.113.8:5060".parse::<std::net::SocketAddr>().unwrap()
    );
    let o = a.origin(peer, "UDP", hdr(&["udp 2001:db8::7 5060"]), now);
    assert_eq!(
        o.addr,
        "[2001:db8::7]:5060"
            .parse::<std::net::SocketAddr>()
            .unwrap()
    );
    // None, or unreadable: the proxy's own.
    for junk in [
        &[][..],
        &["udp 203.0.113.7"],
        &["sip 1.2.3.4 5060"],
        &["udp x 5060"],
        &["udp 1.2.3.4 5060 extra"],
    ] {
        let o = a.origin(peer, "UDP", hdr(junk), now);
        assert_eq!((o.addr, o.forwarded), (peer, false), "{junk:?}");
    }
    // From anyone else, the header is nobody's word.
    let other = "198.51.100.1:5060".parse().unwrap();
    let o = a.origin(other, "TLS", hdr(&["udp 10.0.0.1 5060"]), now);
    assert_eq!((o.addr, o.transport, o.forwarded), (other, "TLS", false));
}

#[test]
fn a_proxy_is_never_banned() {
    let proxy: IpAddr = "192.0.2.50".parse().unwrap();
    let mut a = Admission::new(AdmissionConfig {
        proxies: vec!["192.0.2.50".parse().unwrap()],
        ban_after: 2,
        ..Default::default()
    });
    let now = Instant::now();
    for _ in 0..200 {
        a.request(proxy, now);
        a.malformed(proxy, now, "junk");
    }
    assert!(!a.banned(proxy, now));
}

#[test]
fn addresses_are_masked_to_their_network() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert_eq!(mask_ip(ip("198.51.100.77")), "198.51.100.0/24");
    assert_eq!(mask_ip(ip("::ffff:203.0.113.9")), "203.0.113.0/24");
    assert_eq!(mask_ip(ip("2001:db8:aa:bb12:1:2:3:4")), "2001:db8:aa::/48");
}
