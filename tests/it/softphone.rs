//! The registrar for officers' softphones: SIPp registers a member with
//! digest auth and is paged at its contact (key 1 acknowledges); wrong
//! passwords are refused, the same for known and unknown members, and
//! rate-limited; a binding expires (at an injected time); over TCP the page
//! comes back on the connection the REGISTER came on.

use std::time::Duration;

use hotline::sip::digest;
use hotline::tickets::model::State;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_softphone_is_paged_at_its_contact_and_acknowledges() {
    let gw = registrar().await;
    let port = free_port();
    let (ok, log) = sipp_at(gw.udp, "uac_register.xml", "u1", port, &[], 20).await;
    assert!(ok, "the softphone did not register: {log}");
    let now = jiff::Timestamp::now().as_millisecond();
    let b = gw.store.bindings("p-sun", now).await.unwrap();
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(
        b[0].contact,
        format!("sip:p-sun@127.0.0.1:{port};transport=UDP")
    );
    assert_eq!(b[0].source.port(), port);
    // The same softphone now waits for calls on the port it registered from.
    let number = paged_and_acknowledged(&gw, port, "softphone").await;
    let store = gw.store.clone();
    // The attempt is written after the 签收 it brought.
    eventually(
        "the softphone's attempt noted",
        Duration::from_secs(10),
        || async {
            store.timeline(&number).await.is_ok_and(|tl| {
                tl.iter().any(|e| {
                    e.action == "page"
                        && e.details.contains("\"channel\":\"registered\"")
                        && e.details.contains("key 1: acknowledged")
                })
            })
        },
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_sip_passwords_are_refused_alike_and_rate_limited() {
    let gw = registrar().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A wrong password and an unknown member: the same answer.
    let wrong = register_udp(&gw, &sock, "p-sun", "guess-guess-1", 1).await;
    let unknown = register_udp(&gw, &sock, "nobody", "guess-guess-1", 3).await;
    assert!(wrong.starts_with("SIP/2.0 403 Forbidden\r\n"), "{wrong}");
    assert!(
        unknown.starts_with("SIP/2.0 403 Forbidden\r\n"),
        "{unknown}"
    );
    // Four more wrong guesses for p-sun: the limit (5 a minute) is reached,
    // and then even the right password is refused for the minute.
    for i in 0..4 {
        let r = register_udp(&gw, &sock, "p-sun", "guess-guess-2", 10 + 2 * i).await;
        assert!(r.starts_with("SIP/2.0 403 "), "{r}");
    }
    let locked = register_udp(&gw, &sock, "p-sun", PASSWORD, 30).await;
    assert!(locked.starts_with("SIP/2.0 403 "), "{locked}");
    let now = jiff::Timestamp::now().as_millisecond();
    assert!(gw.store.bindings("p-sun", now).await.unwrap().is_empty());
    // Another officer from another source is not locked out by it.
    gw.store
        .set_sip_ha1("m-chen", &digest::ha1("m-chen", "hotline", PASSWORD))
        .await
        .unwrap();
    let other = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let ok = register_udp(&gw, &other, "m-chen", PASSWORD, 1).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert!(ok.contains(";expires=60\r\n"), "{ok}");
    // Nor is p-sun's own phone elsewhere: the lock is the guesser's.
    let own = UdpSocket::bind("127.0.0.3:0").await.unwrap();
    let ok = register_udp(&gw, &own, "p-sun", PASSWORD, 1).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_expires_and_a_registration_can_be_removed() {
    let gw = registrar().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ok = register_udp(&gw, &sock, "p-sun", PASSWORD, 1).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    let now = jiff::Timestamp::now().as_millisecond();
    assert_eq!(gw.store.bindings("p-sun", now).await.unwrap().len(), 1);
    // Granted 60 s: at an injected time past that, nothing is left.
    let later = now + 61_000;
    assert!(gw.store.bindings("p-sun", later).await.unwrap().is_empty());
    // Expires: 0 removes it now.
    let r = register_for(&gw, &sock, "p-sun", PASSWORD, 3, 0).await;
    assert!(
        r.starts_with("SIP/2.0 200 OK\r\n") && !r.contains("Contact:"),
        "{r}"
    );
    assert!(gw.store.bindings("p-sun", now).await.unwrap().is_empty());
    // Shorter than min_expires (60): 423 with Min-Expires, nothing bound.
    let r = register_for(&gw, &sock, "p-sun", PASSWORD, 5, 30).await;
    assert!(r.starts_with("SIP/2.0 423 Interval Too Brief\r\n"), "{r}");
    assert_eq!(header(&r, "Min-Expires"), Some("60"), "{r}");
    assert!(gw.store.bindings("p-sun", now).await.unwrap().is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_the_page_comes_back_on_the_registering_connection() {
    let gw = registrar().await;
    let mut tcp = tokio::net::TcpStream::connect(gw.tcp).await.unwrap();
    let from = tcp.local_addr().unwrap();
    let mut buf = Vec::new();
    async fn read_message(tcp: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> String {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
                let len: usize = header(&head, "Content-Length").map_or(0, |v| v.parse().unwrap());
                if buf.len() >= end + 4 + len {
                    let msg = String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned();
                    buf.drain(..end + 4 + len);
                    return msg;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(15), tcp.read(&mut chunk))
                .await
                .expect("a message within the bound")
                .unwrap();
            assert!(n > 0, "the gateway closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        }
    }
    tcp.write_all(register_request("p-sun", from, "TCP", 1, 60, "").as_bytes())
        .await
        .unwrap();
    let ch = read_message(&mut tcp, &mut buf).await;
    let ch = digest::parse(header(&ch, "WWW-Authenticate").unwrap()).unwrap();
    let auth = digest::authorization(&ch, "p-sun", PASSWORD, "REGISTER", "sip:127.0.0.1", "c2");
    tcp.write_all(
        register_request(
            "p-sun",
            from,
            "TCP",
            2,
            60,
            &format!("Authorization: {auth}\r\n"),
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let ok = read_message(&mut tcp, &mut buf).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    let numbers = open_tickets(&gw.store, 1, "softphone-tcp").await;
    // The paging call arrives on this very connection, to the contact.
    let invite = read_message(&mut tcp, &mut buf).await;
    assert!(
        invite.starts_with(&format!(
            "INVITE sip:p-sun@{from};transport=tcp SIP/2.0\r\n"
        )),
        "{invite}"
    );
    assert!(
        header(&invite, "Via").unwrap().starts_with("SIP/2.0/TCP "),
        "{invite}"
    );
    let busy = format!(
        "SIP/2.0 486 Busy Here\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=busy\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&invite, "Via").unwrap(),
        header(&invite, "From").unwrap(),
        header(&invite, "To").unwrap(),
        header(&invite, "Call-ID").unwrap(),
        header(&invite, "CSeq").unwrap()
    );
    tcp.write_all(busy.as_bytes()).await.unwrap();
    let store = gw.store.clone();
    eventually(
        "the busy softphone noted",
        Duration::from_secs(10),
        || async {
            store.timeline(&numbers[0]).await.unwrap().iter().any(|e| {
                e.action == "page"
                    && e.details.contains("\"channel\":\"registered\"")
                    && e.details.contains("answered 486")
            })
        },
    )
    .await;
    gw.stop().await;
}

/// Digest credentials for `REGISTER uri` with nonce count `nc` (RFC 2617
/// §3.2.2, worked out here rather than by the code under test).
fn credentials(user: &str, nonce: &str, uri: &str, nc: u32, password: &str) -> String {
    use md5::{Digest, Md5};
    let h = |s: String| {
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let ha1 = h(format!("{user}:hotline:{password}"));
    let ha2 = h(format!("REGISTER:{uri}"));
    let nc = format!("{nc:08x}");
    let response = h(format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"hotline\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"c0ffee\"\r\n"
    )
}

/// The challenge's nonce for a REGISTER of `user` from `sock`.
async fn nonce_for(gw: &Gateway, sock: &UdpSocket, user: &str) -> String {
    let from = sock.local_addr().unwrap();
    sock.send_to(
        register_request(user, from, "UDP", 1, 60, "").as_bytes(),
        gw.udp,
    )
    .await
    .unwrap();
    let ch = String::from_utf8(
        recv(sock, Duration::from_secs(5))
            .await
            .expect("a challenge"),
    )
    .unwrap();
    assert!(ch.starts_with("SIP/2.0 401 "), "{ch}");
    digest::parse(header(&ch, "WWW-Authenticate").unwrap())
        .expect("a digest challenge")
        .nonce
}

/// Sends `message` from `sock`; the answer.
async fn ask(gw: &Gateway, sock: &UdpSocket, message: String) -> String {
    sock.send_to(message.as_bytes(), gw.udp).await.unwrap();
    String::from_utf8(recv(sock, Duration::from_secs(5)).await.expect("an answer")).unwrap()
}

/// A REGISTER captured on the officer's Wi-Fi cannot be used again: not
/// from another port, not with another Call-ID, not with a count used
/// before; nor can credentials made for another URI or without qop=auth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_register_replayed_changes_nothing() {
    let gw = registrar().await;
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = phone.local_addr().unwrap();
    let uri = "sip:127.0.0.1";
    let nonce = nonce_for(&gw, &phone, "p-sun").await;
    let captured = credentials("p-sun", &nonce, uri, 1, PASSWORD);
    let ok = ask(
        &gw,
        &phone,
        register_request("p-sun", me, "UDP", 2, 60, &captured),
    )
    .await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    let now = jiff::Timestamp::now().as_millisecond();
    let bound = gw.store.bindings("p-sun", now).await.unwrap();
    assert_eq!(bound.len(), 1);
    let redis_now = || async {
        (
            gw.store.bindings("p-sun", now).await.unwrap(),
            redis_dump(&gw.store).await,
        )
    };
    let before = redis_now().await;
    // The attacker's contact, from another port on the same address.
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let them = attacker.local_addr().unwrap();
    let r = ask(
        &gw,
        &attacker,
        register_request("p-sun", them, "UDP", 3, 3600, &captured),
    )
    .await;
    assert!(
        r.starts_with("SIP/2.0 401 ") && r.contains("stale=true"),
        "{r}"
    );
    // The same credentials from the phone's own address and port (UDP is
    // easily spoofed), in a new Call-ID: the count was used.
    let replay = register_request("p-sun", me, "UDP", 3, 3600, &captured)
        .replace("Call-ID: softphone-", "Call-ID: replayed-")
        .replace(
            &format!("Contact: <sip:p-sun@{me}"),
            &format!("Contact: <sip:p-sun@{them}"),
        );
    let r = ask(&gw, &phone, replay).await;
    assert!(
        r.starts_with("SIP/2.0 401 ") && r.contains("stale=true"),
        "{r}"
    );
    assert_eq!(redis_now().await, before, "a replay changed Redis");
    // The phone's next count is good; a lower or repeated one afterwards is not.
    let next = credentials("p-sun", &nonce, uri, 3, PASSWORD);
    let ok = ask(
        &gw,
        &phone,
        register_request("p-sun", me, "UDP", 4, 60, &next),
    )
    .await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    for nc in [3, 2] {
        let again = credentials("p-sun", &nonce, uri, nc, PASSWORD);
        let r = ask(
            &gw,
            &phone,
            register_request("p-sun", me, "UDP", 5 + nc, 60, &again),
        )
        .await;
        assert!(r.starts_with("SIP/2.0 401 "), "nc {nc}: {r}");
    }
    // Credentials for another URI, or without qop=auth: refused.
    let fresh = nonce_for(&gw, &phone, "p-sun").await;
    let elsewhere = credentials("p-sun", &fresh, "sip:other.example", 1, PASSWORD);
    let r = ask(
        &gw,
        &phone,
        register_request("p-sun", me, "UDP", 20, 60, &elsewhere),
    )
    .await;
    assert!(
        r.starts_with("SIP/2.0 403 Digest URI Is Not The Request-URI\r\n"),
        "{r}"
    );
    let ch = digest::Challenge {
        realm: "hotline".into(),
        nonce: fresh,
        opaque: None,
        qop_auth: false,
    };
    let plain = digest::authorization(&ch, "p-sun", PASSWORD, "REGISTER", uri, "c1");
    let r = ask(
        &gw,
        &phone,
        register_request(
            "p-sun",
            me,
            "UDP",
            21,
            60,
            &format!("Authorization: {plain}\r\n"),
        ),
    )
    .await;
    assert!(
        r.starts_with("SIP/2.0 403 Digest qop=auth Required\r\n"),
        "{r}"
    );
    gw.stop().await;
}

/// A thousand bad REGISTERs for a member from twenty other addresses
/// never keep the member's own phone from registering and being paged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_registers_never_locks_the_members_phone_out() {
    let gw = registrar().await;
    let mut guessers = Vec::new();
    for i in 2..22u8 {
        guessers.push(
            UdpSocket::bind((std::net::Ipv4Addr::new(127, 0, 0, i), 0))
                .await
                .unwrap(),
        );
    }
    let target = gw.udp;
    // 1,000 REGISTERs (bounded), 400 a second, each a wrong guess.
    let flood = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(2500));
        for n in 0..1000u32 {
            tick.tick().await;
            let s = &guessers[n as usize % guessers.len()];
            let from = s.local_addr().unwrap();
            let guess = credentials("p-sun", &format!("{n:064x}"), "sip:127.0.0.1", 1, "guess");
            let m = register_request("p-sun", from, "UDP", n + 1, 3600, &guess);
            let _ = s.send_to(m.as_bytes(), target).await;
        }
    });
    // Meanwhile the member's phone at 127.0.0.1 registers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let port = free_port();
    let (ok, log) = sipp_at(gw.udp, "uac_register.xml", "u1", port, &[], 20).await;
    assert!(ok, "the member's phone did not register: {log}");
    flood.await.unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    let b = gw.store.bindings("p-sun", now).await.unwrap();
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].source.port(), port);
    // And it is paged there: key 1 acknowledges.
    paged_and_acknowledged(&gw, port, "softphone-flood").await;
    gw.stop().await;
}

/// A ticket opened while p-sun's softphone (SIPp) waits at `port`: it is
/// paged there and key 1 acknowledges it; the ticket's number.
async fn paged_and_acknowledged(gw: &Gateway, port: u16, tag: &str) -> String {
    let phone = sipp_server("uas_softphone.xml", port);
    let numbers = open_tickets(&gw.store, 1, tag).await;
    let (ok, log) = phone.await.unwrap();
    assert!(ok, "the softphone's checks failed: {log}");
    let store = gw.store.clone();
    eventually("acknowledged by p-sun", Duration::from_secs(10), || async {
        store.get(&numbers[0]).await.is_ok_and(|t| {
            t.state == State::Acknowledged
                && t.register.dispatch.acknowledged_by.as_deref() == Some("p-sun")
        })
    })
    .await;
    numbers[0].clone()
}
