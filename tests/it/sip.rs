//! Calls over the wire: SIPp as an independent caller, raw sockets for the
//! edges SIPp cannot show.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::helpers::*;

async fn greeting_call(transport: &str) {
    let gw = Gateway::start(settings()).await;
    let target = if transport.starts_with('t') {
        gw.tcp
    } else {
        gw.udp
    };
    a_sipp_call_hears_the_greeting(target, transport).await;
    assert_eq!(gw.metrics.get("calls_answered"), 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_call_over_udp_hears_the_greeting() {
    greeting_call("u1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_call_over_tcp_hears_the_greeting() {
    greeting_call("t1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_cancel_while_ringing() {
    let mut s = settings();
    // Ring long enough that the CANCEL comes before the answer.
    s.sip.ring_ms = 10_000;
    let gw = Gateway::start(s).await;
    let port = free_port().to_string();
    let (ok, log) = sipp(gw.udp, "uac_cancel.xml", "u1", &["-set", "rtpport", &port]).await;
    assert!(ok, "sipp failed: {log}");
    assert_eq!(gw.metrics.get("calls_answered"), 0);
    assert_eq!(gw.metrics.get("calls_ended"), 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_without_ack_gets_bye() {
    let mut s = settings();
    // 64*T1 = 3.2 s.
    s.sip.t1_ms = 50;
    let gw = Gateway::start(s).await;
    let port = free_port().to_string();
    let (ok, log) = sipp(gw.udp, "uac_no_ack.xml", "u1", &["-set", "rtpport", &port]).await;
    assert!(ok, "sipp failed: {log}");
    assert_eq!(gw.metrics.get("calls_ended"), 1);
    gw.stop().await;
}

/// An INVITE from `from` offering PCMA and PCMU on `rtp`.
fn invite(call_id: &str, from: std::net::SocketAddr, rtp: u16) -> String {
    Invite::new(call_id, from)
        .rport()
        .tag(format!("t-{call_id}"))
        .media(format!("m=audio {rtp} RTP/AVP 8 0\r\n"))
        .to_string()
}

/// Final responses per Call-ID, reading until `n` calls have one.
async fn finals(sock: &UdpSocket, n: usize) -> std::collections::HashMap<String, u16> {
    let mut got = std::collections::HashMap::new();
    while got.len() < n {
        let msg = recv(sock, Duration::from_secs(10))
            .await
            .expect("a response");
        let text = String::from_utf8_lossy(&msg).into_owned();
        let code = status_of(&msg).expect("a response");
        if code >= 200 {
            let cid = header(&text, "Call-ID").unwrap().to_string();
            got.entry(cid).or_insert(code);
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_calls_plus_one_gets_exactly_one_503() {
    let mut s = settings();
    s.sip.max_calls = 3;
    // One source for all four: trusted, so only max_calls limits it.
    s.sip.trusted = vec!["127.0.0.1".parse().unwrap()];
    let gw = Gateway::start(s).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    for i in 0..4 {
        sock.send_to(invite(&format!("cap-{i}"), me, 9).as_bytes(), gw.udp)
            .await
            .unwrap();
    }
    let got = finals(&sock, 4).await;
    let mut codes: Vec<u16> = got.values().copied().collect();
    codes.sort();
    assert_eq!(codes, [200, 200, 200, 503]);
    assert_eq!(gw.metrics.get("sip_overload_rejected"), 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_hangs_up_at_max_call_seconds() {
    let mut s = settings();
    s.sip.max_call_seconds = 1;
    let gw = Gateway::start(s).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let inv = invite("long-1", me, rtp.local_addr().unwrap().port());
    sock.send_to(inv.as_bytes(), gw.udp).await.unwrap();
    let ok = loop {
        let m = recv(&sock, Duration::from_secs(5))
            .await
            .expect("responses");
        if status_of(&m) == Some(200) {
            break String::from_utf8(m).unwrap();
        }
    };
    assert!(
        ok.contains("a=rtpmap:8 PCMA/8000"),
        "PCMA offered first is chosen: {ok}"
    );
    let to = header(&ok, "To").unwrap();
    let ack = format!(
        "ACK sip:hotline@{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-ack1\r\nMax-Forwards: 70\r\n\
From: <sip:13800000000@127.0.0.1>;tag=t-long-1\r\nTo: {to}\r\nCall-ID: long-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        gw.udp
    );
    sock.send_to(ack.as_bytes(), gw.udp).await.unwrap();
    // The gateway's BYE comes after max_call_seconds (bounded wait).
    let bye = loop {
        let m = recv(&sock, Duration::from_secs(10)).await.expect("a BYE");
        if m.starts_with(b"BYE ") {
            break String::from_utf8(m).unwrap();
        }
    };
    assert!(bye.contains("Call-ID: long-1\r\n"), "{bye}");
    assert!(bye.contains("CSeq: 1 BYE\r\n"), "{bye}");
    // Not early: a second of greeting, one 20 ms packet after another, went
    // to the SDP address before the hang-up (about 50; the socket kept them).
    let mut packets = 0;
    while recv(&rtp, Duration::from_millis(300)).await.is_some() {
        packets += 1;
    }
    assert!(
        (40..=60).contains(&packets),
        "{packets} RTP packets in a 1 s call"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_once_sip_listens() {
    let gw = Gateway::start(settings()).await;
    let mut c = TcpStream::connect(gw.http).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"sip\":true"), "{resp}");
    gw.stop().await;
}

async fn read_responses(c: &mut TcpStream, n: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while out.len() < n {
        let mut chunk = [0u8; 4096];
        let k = tokio::time::timeout(Duration::from_secs(5), c.read(&mut chunk))
            .await
            .expect("response in time")
            .unwrap();
        assert!(
            k > 0,
            "connection closed early: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..k]);
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let len: usize = header(&head, "Content-Length")
                .unwrap_or("0")
                .parse()
                .unwrap();
            if buf.len() < end + 4 + len {
                break;
            }
            buf.drain(..end + 4 + len);
            out.push(head);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_framing_several_per_read_and_split_across_reads() {
    let gw = Gateway::start(settings()).await;
    let mut c = TcpStream::connect(gw.tcp).await.unwrap();
    let me = c.local_addr().unwrap();
    let a = options("tcp-a", me).replace("/UDP", "/TCP");
    let b = options("tcp-b", me).replace("/UDP", "/TCP");
    // Two messages in one write.
    c.write_all(format!("{a}{b}").as_bytes()).await.unwrap();
    let r = read_responses(&mut c, 2).await;
    assert!(r[0].starts_with("SIP/2.0 200") && r[0].contains("Call-ID: tcp-a"));
    assert!(r[1].starts_with("SIP/2.0 200") && r[1].contains("Call-ID: tcp-b"));
    // One message in three writes, with a keep-alive before it.
    let d = options("tcp-d", me).replace("/UDP", "/TCP");
    c.write_all(b"\r\n\r\n").await.unwrap();
    c.write_all(&d.as_bytes()[..10]).await.unwrap();
    c.flush().await.unwrap();
    c.write_all(&d.as_bytes()[10..60]).await.unwrap();
    c.flush().await.unwrap();
    c.write_all(&d.as_bytes()[60..]).await.unwrap();
    // The pong (a CRLF) may come first.
    let mut pong = [0u8; 2];
    c.read_exact(&mut pong).await.unwrap();
    assert_eq!(&pong, b"\r\n");
    let r = read_responses(&mut c, 1).await;
    assert!(r[0].contains("Call-ID: tcp-d"), "{r:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_oversized_header_gets_400_and_close() {
    let gw = Gateway::start(settings()).await;
    let mut c = TcpStream::connect(gw.tcp).await.unwrap();
    let me = c.local_addr().unwrap();
    let big = options("tcp-big", me).replace("/UDP", "/TCP").replace(
        "Content-Length: 0\r\n",
        &format!("X-Pad: {}\r\nContent-Length: 0\r\n", "p".repeat(20_000)),
    );
    let _ = c.write_all(big.as_bytes()).await;
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut all)).await;
    assert!(read.is_ok(), "connection closed by the gateway");
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.starts_with("SIP/2.0 400 Header Section Too Large\r\n"),
        "{text}"
    );
    assert!(text.contains("Call-ID: tcp-big"), "{text}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_answers_options() {
    let Ok(sock) = UdpSocket::bind("[::1]:0").await else {
        // Not a silent pass: without IPv6 loopback this fails, unless the
        // operator says to skip it (HOTLINE_SKIP_IPV6=1), which it then says.
        assert!(
            std::env::var_os("HOTLINE_SKIP_IPV6").is_some(),
            "no IPv6 loopback on this machine (set HOTLINE_SKIP_IPV6=1 to skip this test)"
        );
        eprintln!("SKIPPED ipv6_loopback_answers_options: no IPv6 loopback (HOTLINE_SKIP_IPV6)");
        return;
    };
    let mut s = settings();
    s.sip.listen = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
    let gw = Gateway::start(s).await;
    let v6 = std::net::SocketAddr::new("::1".parse().unwrap(), gw.udp.port());
    let me = sock.local_addr().unwrap();
    sock.send_to(options("v6", me).as_bytes(), v6)
        .await
        .unwrap();
    let r = recv(&sock, Duration::from_secs(5))
        .await
        .expect("answer over IPv6");
    assert_eq!(status_of(&r), Some(200));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_gateway_ends_calls_with_bye() {
    let gw = Gateway::start(settings()).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    sock.send_to(invite("stop-1", me, 9).as_bytes(), gw.udp)
        .await
        .unwrap();
    assert_eq!(finals(&sock, 1).await.get("stop-1"), Some(&200));
    let udp = gw.udp;
    let stopping = tokio::spawn(gw.stop());
    let bye = loop {
        let m = recv(&sock, Duration::from_secs(10)).await.expect("a BYE");
        if m.starts_with(b"BYE ") {
            break String::from_utf8(m).unwrap();
        }
    };
    // Answer the BYE: the gateway then stops without waiting out its timers.
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: stop-1\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&bye, "Via").unwrap(),
        header(&bye, "From").unwrap(),
        header(&bye, "To").unwrap(),
        header(&bye, "CSeq").unwrap(),
    );
    sock.send_to(reply.as_bytes(), udp).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("gateway stops")
        .unwrap();
}
