//! Routing behind proxies (RFC 3261 §12): Record-Route, route sets, next hops.

use super::*;

/// An INVITE as a record-routing proxy at 192.0.2.50 forwards it.
fn proxied_invite(rr: &str, extra: &str) -> Vec<u8> {
    String::from_utf8(request("INVITE", "z9hG4bKrr", "rr", 1, None, SDP))
        .unwrap()
        .replace(
            "Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKrr\r\n",
            &format!(
                "Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKp1\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKrr\r\n{rr}{extra}"
            ),
        )
        .into_bytes()
}

fn proxy() -> &'static str {
    "192.0.2.50:5060"
}

#[test]
fn a_proxied_call_copies_record_route_and_routes_its_bye_through_the_proxies() {
    let mut h = Harness::new(CoreConfig::default());
    let rr = "Record-Route: <sip:192.0.2.50;lr;ftag=caller1>\r\nRecord-Route: <sip:10.0.0.9;lr>, <sip:10.0.0.10;lr>\r\n";
    h.input_from(&proxied_invite(rr, ""), proxy());
    let call = h.incoming();
    let ringing = h
        .sent
        .iter()
        .find(|m| m.starts_with("SIP/2.0 180"))
        .unwrap()
        .clone();
    let expected = [
        "<sip:192.0.2.50;lr;ftag=caller1>",
        "<sip:10.0.0.9;lr>",
        "<sip:10.0.0.10;lr>",
    ];
    assert_eq!(
        header_values(&ringing, "Record-Route"),
        expected,
        "{ringing}"
    );
    // Both Vias back, in order, the response to the proxy.
    assert_eq!(header_values(&ringing, "Via").len(), 2);
    assert!(h
        .dest
        .iter()
        .all(|d| *d == proxy().parse::<std::net::SocketAddr>().unwrap()));
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let ok = h.sent.last().unwrap().clone();
    assert!(ok.starts_with("SIP/2.0 200 OK"));
    assert_eq!(header_values(&ok, "Record-Route"), expected, "{ok}");
    let tag = h.to_tag();
    h.input_from(
        &request("ACK", "z9hG4bKrr2", "rr", 1, Some(&tag), ""),
        proxy(),
    );
    h.take();
    h.dest.clear();
    // Our BYE: Request-URI the caller's Contact, Route the set in order,
    // to the first route (loose routing).
    h.command(CallCommand::Hangup { call });
    let bye = h.sent.last().unwrap().clone();
    assert!(
        bye.starts_with("BYE sip:13800000000@192.0.2.7:5062 SIP/2.0\r\n"),
        "{bye}"
    );
    assert_eq!(header_values(&bye, "Route"), expected, "{bye}");
    assert!(bye.contains("Max-Forwards: 70\r\n"));
    assert_eq!(
        h.dest.last().unwrap(),
        &"192.0.2.50:5060".parse::<std::net::SocketAddr>().unwrap()
    );
}

#[test]
fn a_strict_router_gets_the_request_uri_and_the_target_last() {
    let mut h = Harness::new(CoreConfig::default());
    h.input_from(
        &proxied_invite(
            "Record-Route: <sip:192.0.2.50:5070>, <sip:10.0.0.9;lr>\r\n",
            "",
        ),
        proxy(),
    );
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let tag = h.to_tag();
    h.input_from(
        &request("ACK", "z9hG4bKrr2", "rr", 1, Some(&tag), ""),
        proxy(),
    );
    h.command(CallCommand::Hangup { call });
    let bye = h.sent.last().unwrap().clone();
    assert!(
        bye.starts_with("BYE sip:192.0.2.50:5070 SIP/2.0\r\n"),
        "{bye}"
    );
    assert_eq!(
        header_values(&bye, "Route"),
        ["<sip:10.0.0.9;lr>", "<sip:13800000000@192.0.2.7:5062>"]
    );
    assert_eq!(
        h.dest.last().unwrap(),
        &"192.0.2.50:5070".parse::<std::net::SocketAddr>().unwrap()
    );
}

#[test]
fn a_re_invite_refreshes_the_remote_target() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&request("INVITE", "z9hG4bKt", "t", 1, None, SDP));
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let tag = h.to_tag();
    h.input(&request("ACK", "z9hG4bKt2", "t", 1, Some(&tag), ""));
    let reinvite = String::from_utf8(request("INVITE", "z9hG4bKt3", "t", 2, Some(&tag), SDP))
        .unwrap()
        .replace(
            "Contact: <sip:13800000000@192.0.2.7:5062>",
            "Contact: <sip:13800000000@192.0.2.8:5080>",
        );
    h.input(reinvite.as_bytes());
    h.input(&request("ACK", "z9hG4bKt4", "t", 2, Some(&tag), ""));
    h.command(CallCommand::Hangup { call });
    let bye = h.sent.last().unwrap().clone();
    assert!(
        bye.starts_with("BYE sip:13800000000@192.0.2.8:5080 SIP/2.0\r\n"),
        "{bye}"
    );
    // No route set: it goes where the dialog's messages come from (NAT).
    assert_eq!(h.dest.last().unwrap(), &peer().addr);
}

#[test]
fn asserted_identity_counts_only_from_the_trust_domain() {
    let pai = "P-Asserted-Identity: <tel:+8613900000000>\r\n";
    let number = |h: &Harness| {
        h.events
            .iter()
            .find_map(|e| match e {
                CallEvent::Incoming { info, .. } => Some(info.clone()),
                _ => None,
            })
            .unwrap()
    };
    // Untrusted: the From's number; the assertion is kept as a claim.
    let mut h = Harness::new(CoreConfig::default());
    h.input_from(&proxied_invite("", pai), proxy());
    let info = number(&h);
    assert_eq!(info.caller_number.as_deref(), Some("13800000000"));
    assert_eq!(
        info.p_asserted_identity.as_deref(),
        Some("<tel:+8613900000000>")
    );
    // Trusted proxy: the asserted number.
    let mut h = Harness::new(CoreConfig {
        admission: AdmissionConfig {
            trusted: vec!["192.0.2.50".parse().unwrap()],
            ..Default::default()
        },
        ..Default::default()
    });
    h.input_from(&proxied_invite("", pai), proxy());
    assert_eq!(number(&h).caller_number.as_deref(), Some("+8613900000000"));
}

#[test]
fn a_placed_call_preloads_the_outbound_proxy_and_routes_by_the_answers_record_route() {
    let mut h = Harness::new(CoreConfig::default());
    let d = Dial {
        uri: "sip:8201@pbx.court.example".into(),
        from_uri: "sip:hotline@192.0.2.1".into(),
        rtp: rtp(),
        ring_timeout: Duration::from_secs(20),
        credentials: None,
        route: vec!["<sip:192.0.2.50:5060;lr>".into()],
    };
    let out: Peer = Peer {
        addr: proxy().parse().unwrap(),
        ..peer()
    };
    let call = h.core.dial(&d, out, h.now);
    h.drain();
    let invite = h.sent.pop().unwrap();
    // The Request-URI is the member's; the proxy is a Route.
    assert!(
        invite.starts_with("INVITE sip:8201@pbx.court.example SIP/2.0\r\n"),
        "{invite}"
    );
    assert_eq!(
        header_values(&invite, "Route"),
        ["<sip:192.0.2.50:5060;lr>"]
    );
    // The 200 came through two proxies: the route set is their RR reversed.
    let ok = answer(&invite, 200, "OK", "ph1", SDP).replace(
        "Contact:",
        "Record-Route: <sip:10.0.0.9;lr>\r\nRecord-Route: <sip:192.0.2.50:5060;lr>\r\nContact:",
    );
    h.dest.clear();
    h.input_from(ok.as_bytes(), proxy());
    let ack = h.sent.last().unwrap().clone();
    assert!(
        ack.starts_with("ACK sip:officer@192.0.2.7:5062 SIP/2.0\r\n"),
        "{ack}"
    );
    let reversed = ["<sip:192.0.2.50:5060;lr>", "<sip:10.0.0.9;lr>"];
    assert_eq!(header_values(&ack, "Route"), reversed);
    assert_eq!(
        h.dest.last().unwrap(),
        &proxy().parse::<std::net::SocketAddr>().unwrap()
    );
    h.command(CallCommand::Hangup { call });
    let bye = h.sent.last().unwrap().clone();
    assert!(
        bye.starts_with("BYE sip:officer@192.0.2.7:5062 SIP/2.0\r\n"),
        "{bye}"
    );
    assert_eq!(header_values(&bye, "Route"), reversed);
    assert_eq!(
        h.dest.last().unwrap(),
        &proxy().parse::<std::net::SocketAddr>().unwrap()
    );
}

/// What the call layer was told of each new call, in order.
fn incoming(h: &Harness) -> Vec<CallInfo> {
    h.events
        .iter()
        .filter_map(|e| match e {
            CallEvent::Incoming { info, .. } => Some((**info).clone()),
            _ => None,
        })
        .collect()
}

/// Behind a proxy of `[sip] proxies` (Kamailio), the limits, bans and the
/// identity go by the source the proxy forwarded, never by the proxy.
#[test]
fn a_proxy_is_trusted_for_routing_and_its_forwarded_source_for_nothing_more() {
    let pai = "P-Asserted-Identity: <tel:+8613900000000>\r\n";
    let mut h = Harness::new(CoreConfig {
        admission: AdmissionConfig {
            proxies: vec!["192.0.2.50".parse().unwrap()],
            trusted: vec!["10.9.9.9".parse().unwrap()],
            calls_per_source: 2,
            ban_after: 3,
            ..Default::default()
        },
        ..Default::default()
    });
    let relayed = |i: usize, from: &str, extra: &str| {
        String::from_utf8(proxied_invite("", extra))
            .unwrap()
            .replace("z9hG4bKp1", &format!("z9hG4bKp1-{i}"))
            .replace("z9hG4bKrr", &format!("z9hG4bKrr-{i}"))
            .replace("Call-ID: rr", &format!("Call-ID: rr-{i}"))
            .replace(
                "Max-Forwards:",
                &format!("X-Hotline-Source: udp {from} 5062\r\nMax-Forwards:"),
            )
            .into_bytes()
    };
    // A caller at 203.0.113.7: two calls, then its own limit (not the
    // proxy's); its P-Asserted-Identity is only a claim.
    for i in 0..3 {
        h.input_from(&relayed(i, "203.0.113.7", pai), proxy());
    }
    let s = h.take();
    assert_eq!(
        s.iter().filter(|l| l.ends_with(" 180 Ringing")).count(),
        2,
        "{s:?}"
    );
    assert_eq!(
        s.iter()
            .filter(|l| l.ends_with(" 503 Service Unavailable"))
            .count(),
        1
    );
    let infos = incoming(&h);
    assert_eq!(infos[0].caller_number.as_deref(), Some("13800000000"));
    assert!(!infos[0].number_asserted);
    assert_eq!(
        infos[0].source,
        "203.0.113.7:5062".parse::<std::net::SocketAddr>().unwrap()
    );
    // Another caller through the same proxy is not held back by the first.
    h.input_from(&relayed(10, "203.0.113.8", ""), proxy());
    assert!(h.take().iter().any(|l| l.ends_with(" 180 Ringing")));
    // The court's PBX through the proxy: its assertion is believed.
    h.input_from(&relayed(11, "10.9.9.9", pai), proxy());
    let pbx = incoming(&h).pop().unwrap();
    assert_eq!(pbx.caller_number.as_deref(), Some("+8613900000000"));
    assert!(pbx.number_asserted);
    // The first caller keeps hitting its limit: it is banned, the proxy is
    // not — a new caller through it still gets through. The banned caller
    // is answered (silence would look like a dead gateway to the proxy),
    // with a 503 that says whose limit it is.
    for i in 20..26 {
        h.input_from(&relayed(i, "203.0.113.7", ""), proxy());
    }
    h.take();
    h.input_from(&relayed(30, "203.0.113.7", ""), proxy());
    let refused = h.sent.last().unwrap().clone();
    assert!(
        refused.starts_with("SIP/2.0 503 ") && refused.contains("per-source limit: banned"),
        "{refused}"
    );
    assert!(h.counter("sip_banned_dropped") == 0);
    h.take();
    h.input_from(&relayed(31, "203.0.113.9", ""), proxy());
    assert!(h.take().iter().any(|l| l.ends_with(" 180 Ringing")));
    // From anyone but a configured proxy the header is ignored: this
    // source is the socket's (198.51.100.1), not the 10.9.9.9 it names.
    h.input_from(&relayed(40, "10.9.9.9", pai), "198.51.100.1:5060");
    let direct = incoming(&h).pop().unwrap();
    assert_eq!(
        direct.source,
        "198.51.100.1:5060".parse::<std::net::SocketAddr>().unwrap()
    );
    assert!(!direct.number_asserted);
}
