//! Behind a proxy: a real Kamailio (Debian's package, `tests/kamailio/proxy.cfg`,
//! record-routing) in front of the gateway, over UDP and TCP. Callers reach
//! the gateway through it, and every in-dialog request — the caller's ACK,
//! the gateway's BYE after the intake, a paging call's ACK and BYE — passes
//! through it, as its log shows.

use std::net::SocketAddr;
use std::time::Duration;

use crate::helpers::*;

/// A caller keys the intake through Kamailio; the gateway reads the ticket
/// back and hangs up, its BYE routed back through Kamailio.
async fn intake_through_kamailio(transport: &str) {
    let mut s = settings();
    // The gateway takes Kamailio as its proxy (routing only; this test
    // proxy names no source, so its calls count as its own).
    s.sip.proxies = vec!["127.0.0.1".parse().unwrap()];
    let gw = Gateway::start(s).await;
    let (gw_addr, proto) = match transport {
        "t1" => (gw.tcp, "tcp"),
        _ => (gw.udp, "udp"),
    };
    let proxy = Kamailio::start(gw_addr).await;
    // A caller through the proxy hears the greeting.
    a_sipp_call_hears_the_greeting(proxy.addr, transport).await;
    let media_port = free_port().to_string();
    let (ok, log) = sipp(
        proxy.addr,
        "uac_dtmf_2833.xml",
        transport,
        &["-mp", &media_port],
    )
    .await;
    assert!(
        ok,
        "sipp through kamailio failed: {log}\n{}",
        proxy.log.lock().unwrap()
    );
    // The intake call's ticket (the newest; the greeting call has one too).
    let all = gw.store.list("all", 10).await.unwrap();
    assert_eq!(all.len(), 2, "a ticket for each call");
    let call_id = all[0].call_id.clone();
    // The intake was done: the ticket has the keys the caller pressed.
    let t = gw.store.get(&all[0].number).await.unwrap();
    assert!(t.register.intake.category.is_some(), "{t:?}");
    // The caller's ACK went through the proxy (SIPp sends only there; the
    // proxy relays it only by the route the gateway's 200 recorded).
    assert_eq!(
        gw.metrics.get("calls_confirmed"),
        2,
        "the ACKs reached the gateway"
    );
    let acks = proxy.requests("ACK", &call_id);
    assert!(
        acks.iter().any(|l| l.contains(&format!("proto {proto}"))),
        "the caller's ACK through kamailio: {acks:?}"
    );
    // The gateway's own BYE came to the proxy, from the gateway.
    let byes = proxy.requests("BYE", &call_id);
    let from_gw = format!("from {gw_addr} proto {proto}");
    assert!(
        byes.iter().any(|l| l.contains(&from_gw)),
        "the gateway's BYE through kamailio ({from_gw}): {byes:?}\n{}",
        proxy.log.lock().unwrap()
    );
    // And its 200 came back through it.
    assert!(
        proxy
            .log
            .lock()
            .unwrap()
            .lines()
            .any(|l| l.contains("KAMAILIO-RPL 200 BYE") && l.contains(&call_id)),
        "the BYE's 200 through kamailio"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_kamailio_over_udp_routes_every_request_through_it() {
    intake_through_kamailio("u1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_kamailio_over_tcp_routes_every_request_through_it() {
    intake_through_kamailio("t1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paging_call_through_kamailio_is_acknowledged_and_routed_back() {
    let port = free_port();
    let phone = sipp_server("uas_page_key_rr.xml", port);
    let mut s = settings();
    s.roster.file = roster_with_officer_phones(port);
    // The gateway's address must be known to the proxy before it starts:
    // the proxy listens first, the gateway's outbound proxy points at it.
    let gw_port = free_port();
    s.sip.listen = vec![SocketAddr::from(([127, 0, 0, 1], gw_port))];
    let proxy = Kamailio::start(SocketAddr::from(([127, 0, 0, 1], gw_port))).await;
    s.paging.outbound_proxy = Some(proxy.addr);
    let gw = Gateway::start(s).await;
    assert_eq!(gw.udp.port(), gw_port);
    let numbers = open_tickets(&gw.store, 1, "proxied").await;
    let (ok, log) = phone.await.unwrap();
    assert!(
        ok,
        "the phone behind kamailio: {log}\n{}",
        proxy.log.lock().unwrap()
    );
    let store = gw.store.clone();
    eventually(
        "acknowledged with key 1",
        Duration::from_secs(10),
        || async {
            store
                .get(&numbers[0])
                .await
                .is_ok_and(|t| t.state == hotline::tickets::State::Acknowledged)
        },
    )
    .await;
    // The paging call's Call-ID, from the proxy's log of our INVITE.
    let log = proxy.log.lock().unwrap().clone();
    let invite = log
        .lines()
        .find(|l| {
            l.contains("KAMAILIO-REQ INVITE sip:officer@")
                && l.contains(&format!("from {}", gw.udp))
        })
        .unwrap_or_else(|| panic!("our INVITE through kamailio:\n{log}"));
    let call_id = invite
        .split("ci=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let from_gw = format!("from {}", gw.udp);
    for method in ["ACK", "BYE"] {
        let seen = proxy.requests(method, call_id);
        assert!(
            seen.iter().any(|l| l.contains(&from_gw)),
            "our {method} through kamailio: {seen:?}\n{log}"
        );
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_dialog_whose_connection_closed_gets_its_bye_over_a_new_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = settings();
    // No RTP from this caller: the gateway hangs up after a second.
    s.media.timeout_seconds = 1;
    let gw = Gateway::start(s).await;
    // The "proxy" that record-routed the call listens here.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rr = proxy.local_addr().unwrap();
    let mut c = tokio::net::TcpStream::connect(gw.tcp).await.unwrap();
    let me = c.local_addr().unwrap();
    let invite = Invite::new("tcp-reconnect@test", me)
        .tcp()
        .forwarded_by(rr)
        .branch("z9hG4bK-tcpp")
        .tag("tp")
        .to_string();
    c.write_all(invite.as_bytes()).await.unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    // Until the 200 and its SDP are in.
    while !(got.contains("SIP/2.0 200 OK") && got.contains("m=audio")) {
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("the 200 within 5 s")
            .unwrap();
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let ok = &got[got.find("SIP/2.0 200 OK").unwrap()..];
    assert!(
        ok.contains(&format!("Record-Route: <sip:{rr};transport=tcp;lr>")),
        "{ok}"
    );
    assert!(ok.contains(";transport=tcp>"), "our Contact says TCP: {ok}");
    let to = header(ok, "To").unwrap().to_string();
    let ack = format!(
        "ACK sip:hotline@{} SIP/2.0\r\nVia: SIP/2.0/TCP {rr};branch=z9hG4bK-tcpa\r\nMax-Forwards: 69\r\n\
From: <sip:13800000000@127.0.0.1>;tag=tp\r\nTo: {to}\r\nCall-ID: tcp-reconnect@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        gw.tcp
    );
    c.write_all(ack.as_bytes()).await.unwrap();
    // The caller's side of the connection goes away.
    drop(c);
    // The gateway's BYE arrives over a connection it opens to the route.
    let (mut back, _) = tokio::time::timeout(Duration::from_secs(10), proxy.accept())
        .await
        .expect("the gateway connects to the route's address")
        .unwrap();
    let mut bye = String::new();
    while !bye.contains("\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), back.read(&mut buf))
            .await
            .expect("the BYE within 5 s")
            .unwrap();
        assert!(n > 0, "connection closed before the BYE");
        bye.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        bye.starts_with(&format!(
            "BYE sip:13800000000@{me};transport=tcp SIP/2.0\r\n"
        )),
        "{bye}"
    );
    assert!(
        bye.contains(&format!("Route: <sip:{rr};transport=tcp;lr>\r\n")),
        "{bye}"
    );
    assert!(bye.contains("Via: SIP/2.0/TCP "), "{bye}");
    gw.stop().await;
}
