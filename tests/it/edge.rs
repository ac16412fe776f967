//! Behind the court's edge (issue 30): Kamailio with the production
//! configuration (`deploy/kamailio/kamailio.cfg`, one worker as the cluster
//! test runs it) in front of a gateway that takes it as a proxy (`[sip]
//! proxies`): trusted for routing only. Each caller is limited, banned and
//! logged by its own address, which Kamailio forwards; nobody but the
//! court's PBX gets an identity through; a flood from fifty addresses
//! silences no real caller.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::helpers::*;

/// The court's PBX, as Kamailio (PBX_NETS) and the gateway (`trusted`)
/// both know it.
const PBX: &str = "127.0.0.250";

/// A gateway process (its log kept) behind the edge, with `sip` added to
/// its `[sip]` section.
async fn behind_the_edge(
    tag: &str,
    sip: &str,
) -> (Process, Kamailio, hotline::tickets::Store, Redis) {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir(tag);
    let roster = test_roster(&offline(&test_roster_text()));
    let config = write_config(&dir, &redis, &roster, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[sip]\n",
        &format!("[sip]\nproxies = [\"127.0.0.1\"]\ntrusted = [\"{PBX}\"]\n{sip}"),
    );
    std::fs::write(&config, text).unwrap();
    let gw = Process::start(&config);
    let edge = Kamailio::edge(&[gw.udp], &format!("{PBX}/32")).await;
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();
    (gw, edge, store, redis)
}

/// An INVITE from `me` for the line, through `edge`.
fn invite(me: SocketAddr, edge: SocketAddr, call_id: &str, from_user: &str, extra: &str) -> String {
    Invite::new(call_id, me)
        .via_host(edge)
        .rport()
        .from(&format!("<sip:{from_user}@{me}>"))
        .headers(extra)
        .to_string()
}

/// The final answer to the INVITE `call_id` on `sock` (provisional ones
/// and other calls' answers skipped), within 5 s.
async fn final_answer(sock: &UdpSocket, call_id: &str) -> String {
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        let m = recv(sock, left)
            .await
            .unwrap_or_else(|| panic!("a final answer to {call_id}"));
        let text = String::from_utf8_lossy(&m).to_string();
        if status_of(&m).is_some_and(|c| c >= 200) && header(&text, "Call-ID") == Some(call_id) {
            return text;
        }
    }
}

/// The ACK of a 200 through the record-routing edge (RFC 3261 §12.2.1.1:
/// the route set is the Record-Route reversed, the Request-URI the
/// Contact), sent to the edge.
async fn acknowledge(sock: &UdpSocket, edge: SocketAddr, ok: &str) {
    let me = sock.local_addr().unwrap();
    let mut routes: Vec<&str> = ok
        .lines()
        .filter_map(|l| l.strip_prefix("Record-Route: "))
        .flat_map(|v| v.split(", "))
        .collect();
    routes.reverse();
    let contact = header(ok, "Contact").unwrap();
    let target = contact.trim_start_matches('<').split('>').next().unwrap();
    let routes: String = routes.iter().map(|r| format!("Route: {r}\r\n")).collect();
    let ack = format!(
        "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-ack-{};rport\r\nMax-Forwards: 70\r\n\
From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 ACK\r\n{routes}Content-Length: 0\r\n\r\n",
        crate::helpers::token(header(ok, "Call-ID").unwrap()),
        header(ok, "From").unwrap(),
        header(ok, "To").unwrap(),
        header(ok, "Call-ID").unwrap(),
    );
    sock.send_to(ack.as_bytes(), edge).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_kamailio_a_caller_is_limited_by_its_own_address_and_asserts_nothing() {
    let (gw, edge, store, _redis) = behind_the_edge("edge-limits", "calls_per_source = 2\n").await;
    let caller = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let me = caller.local_addr().unwrap();
    let pai = "P-Asserted-Identity: <sip:+8613912345678@127.0.0.2>\r\n";
    // Two calls: answered; the first is acknowledged and becomes a ticket.
    for i in 0..2 {
        let id = format!("edge-{i}@127.0.0.2");
        let m = invite(me, edge.addr, &id, "13800000000", pai);
        caller.send_to(m.as_bytes(), edge.addr).await.unwrap();
        let ok = final_answer(&caller, &id).await;
        assert!(
            ok.starts_with("SIP/2.0 200 "),
            "{ok}\n{}",
            edge.log.lock().unwrap()
        );
        if i == 0 {
            acknowledge(&caller, edge.addr, &ok).await;
        }
    }
    // The third is past this caller's own limit: the gateway's 503, which
    // says so, relayed by the edge.
    let id = "edge-2@127.0.0.2";
    let m = invite(me, edge.addr, id, "13800000000", pai);
    caller.send_to(m.as_bytes(), edge.addr).await.unwrap();
    let refused = final_answer(&caller, id).await;
    assert!(refused.starts_with("SIP/2.0 503 "), "{refused}");
    assert!(
        header(&refused, "Warning")
            .is_some_and(|w| w.contains("per-source limit: calls per source")),
        "{refused}"
    );
    let log = gw.log.lock().unwrap().clone();
    assert!(
        log.contains("SECURITY event=rate_limited src=127.0.0.2 reason=\"calls per source\""),
        "the security log names the caller, not the edge:\n{log}"
    );
    // The edge keeps the gateway in: another caller gets through at once.
    let other = UdpSocket::bind("127.0.0.3:0").await.unwrap();
    let id3 = "edge-other@127.0.0.3";
    let m = invite(
        other.local_addr().unwrap(),
        edge.addr,
        id3,
        "13800000001",
        "",
    );
    other.send_to(m.as_bytes(), edge.addr).await.unwrap();
    let ok = final_answer(&other, id3).await;
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    // The caller's P-Asserted-Identity never reached the gateway (the
    // edge removed it) and the number is only claimed.
    let number = ticket_of(&store, "edge-0@127.0.0.2").await;
    let caller_on_file = store.get(&number).await.unwrap().register.caller;
    assert_eq!(caller_on_file.p_asserted_identity, None);
    assert!(!caller_on_file.asserted);
    // The court's PBX through the same edge: its assertion passes, and
    // the number is asserted.
    let pbx = UdpSocket::bind((PBX, 0)).await.unwrap();
    let id = "edge-pbx@127.0.0.250";
    let m = invite(pbx.local_addr().unwrap(), edge.addr, id, "053212345", pai);
    pbx.send_to(m.as_bytes(), edge.addr).await.unwrap();
    let ok = final_answer(&pbx, id).await;
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    acknowledge(&pbx, edge.addr, &ok).await;
    let number = ticket_of(&store, id).await;
    let caller_on_file = store.get(&number).await.unwrap().register.caller;
    assert!(caller_on_file.p_asserted_identity.is_some());
    assert!(caller_on_file.asserted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_flood_through_kamailio_silences_no_real_caller() {
    let (gw, edge, store, _redis) = behind_the_edge("edge-flood", "").await;
    // 500 INVITEs a second from 127.0.0.2-51 for 2 s, never acknowledged
    // (bounded: 1,000 datagrams).
    let mut flooders = Vec::new();
    for i in 2..52u8 {
        flooders.push(
            UdpSocket::bind((Ipv4Addr::new(127, 0, 0, i), 0))
                .await
                .unwrap(),
        );
    }
    let to = edge.addr;
    let flood = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        for n in 0..1000u32 {
            tick.tick().await;
            let s = &flooders[n as usize % flooders.len()];
            let me = s.local_addr().unwrap();
            let m = invite(me, to, &format!("storm{n}@{me}"), "flood", "");
            let _ = s.send_to(m.as_bytes(), to).await;
        }
    });
    // Meanwhile ten real callers at 127.0.0.60-69, each a whole call, one
    // every 400 ms: the later ones call while the flooders are banned
    // (and a gateway that dropped them unanswered would by then look dead
    // to Kamailio, its calls refused at the edge).
    let mut real = Vec::new();
    for i in 60..70u8 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let ip = format!("127.0.0.{i}");
        let rtp = free_port().to_string();
        real.push(tokio::spawn(async move {
            sipp_from(
                &ip,
                to,
                "uac_greeting.xml",
                "u1",
                free_port(),
                &["-set", "rtpport", &rtp, "-d", "1000"],
                20,
            )
            .await
        }));
    }
    flood.await.unwrap();
    for (i, r) in real.into_iter().enumerate() {
        let (ok, log) = r.await.unwrap();
        assert!(
            ok,
            "real caller {i} failed: {log}\n{}",
            edge.log
                .lock()
                .unwrap()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // A ticket for each real call, none from the flood (never confirmed).
    let tickets = store.list("all", 100).await.unwrap();
    assert_eq!(tickets.len(), 10, "{tickets:?}");
    assert!(tickets.iter().all(|t| !t.call_id.starts_with("storm")));
    // The flooders were limited by their own addresses.
    let log = gw.log.lock().unwrap().clone();
    assert!(
        log.contains("SECURITY event=rate_limited src=127.0.0."),
        "{log}"
    );
    assert!(
        !log.contains("src=127.0.0.1 "),
        "the edge itself was never limited"
    );
}
