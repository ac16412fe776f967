//! Encrypted calls: SRTP keyed by SDES (RFC 4568). The test caller keeps
//! its own SRTP contexts (rtc-srtp, not the gateway's wrapper) and reads
//! the gateway's key from the answer as any phone would.

use std::time::Duration;

use base64::Engine;
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One direction's SRTP context from 30 bytes of key ‖ salt.
fn context(key: &[u8]) -> Context {
    let provider = rtc_srtp::crypto::default_provider().unwrap();
    Context::new(
        &key[..16],
        &key[16..30],
        ProtectionProfile::Aes128CmHmacSha1_80,
        None,
        None,
        provider.crypto(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdes_offer_gets_srtp_back_and_is_recorded_in_clear() {
    let gw = Gateway::start(settings()).await;
    let ours: [u8; 30] = std::array::from_fn(|i| (i * 7 + 3) as u8);
    let offer_key = B64.encode(ours);
    let call = TestCall::place_offering(
        gw.udp,
        "sdes@secure",
        "<sip:13700000000@127.0.0.1>",
        |port| {
            format!(
                "m=audio {port} RTP/SAVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{offer_key}|2^31\r\n"
            )
        },
    )
    .await;
    // The answer: SAVP and the gateway's own key under our tag.
    let answer = &call.answer;
    assert!(answer.contains(" RTP/SAVP 8 101\r\n"), "{answer}");
    let theirs = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"))
        .map(|k| B64.decode(k.split('|').next().unwrap()).unwrap())
        .expect("the gateway's key");
    assert_eq!(theirs.len(), 30);
    assert_ne!(&theirs[..], &ours[..]);
    let mut from_gw = context(&theirs);
    let mut to_gw = context(&ours);

    // The greeting comes encrypted: not the clear frame on the wire, the
    // clear frame once decrypted with the answer's key.
    let greeting = greeting_first_frame(hotline::media::g711::linear_to_alaw);
    let wire = recv(&call.rtp, Duration::from_secs(5)).await.expect("SRTP");
    assert_eq!(wire.len(), 12 + 160 + 10, "an 80-bit tag");
    assert_ne!(&wire[12..172], &greeting[..], "the payload is not in clear");
    let plain = from_gw.decrypt_rtp(&wire).expect("authentic SRTP");
    assert_the_greeting_opens(8, &plain[12..]);

    // The caller speaks: 25 authentic packets; between them, 5 tampered
    // ones and 5 in clear, whose audio must not reach the recording.
    for i in 0..25u16 {
        let p = TestCall::packet(100 + i, 8000 + 160 * u32::from(i), 8, &[0xAA; 160]);
        call.send(&to_gw.encrypt_rtp(&p).unwrap()).await;
        if i % 5 == 0 {
            let forged = TestCall::packet(500 + i, 90000, 8, &[0x11; 160]);
            let mut bad = to_gw.encrypt_rtp(&forged).unwrap().to_vec();
            bad[30] ^= 0x40;
            call.send(&bad).await;
            call.send(&TestCall::packet(700 + i, 95000, 8, &[0x22; 160]))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    call.hangup_at(2).await;
    let wav = recording_of(&gw.store, "sdes@secure").await;
    let samples: Vec<i16> = hound::WavReader::open(&wav)
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect();
    let caller: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let spoken = hotline::media::g711::alaw_to_linear(0xAA);
    let (forged, clear) = (
        hotline::media::g711::alaw_to_linear(0x11),
        hotline::media::g711::alaw_to_linear(0x22),
    );
    let heard = caller.iter().filter(|s| **s == spoken).count();
    assert!(
        (24 * 160..=25 * 160).contains(&heard),
        "the decrypted audio is recorded: {heard} samples"
    );
    assert!(
        !caller.iter().any(|s| *s == forged || *s == clear),
        "a tampered or clear packet reached the recording"
    );
    let (_, metrics) = gw.get("/metrics").await;
    let failed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hotline_srtp_auth_failed_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(
        failed, 10,
        "5 tampered + 5 clear packets counted:\n{metrics}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_srtp_required_a_plain_offer_is_refused_with_488() {
    let mut s = settings();
    s.sip.srtp = hotline::sip::sdp::SrtpPolicy::Required;
    let gw = Gateway::start(s).await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let invite = Invite::new("plain@secure", me)
        .branch("z9hG4bK-plain")
        .from("<sip:13700000000@127.0.0.1>")
        .tag("p1")
        .media("m=audio 40000 RTP/AVP 8\r\n")
        .to_string();
    sock.send_to(invite.as_bytes(), gw.udp).await.unwrap();
    let reply = String::from_utf8(recv(&sock, Duration::from_secs(5)).await.unwrap()).unwrap();
    assert!(reply.starts_with("SIP/2.0 488 "), "{reply}");
    assert!(
        header(&reply, "Warning").is_some_and(|w| w.contains("SRTP required")),
        "{reply}"
    );
    gw.stop().await;
}

/// A SIP client over TLS that trusts only the test CA.
async fn tls_client(
    to: std::net::SocketAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    let ca = std::fs::read(repo().join("tests/fixtures/tls/ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&ca).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(to).await.unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("the gateway's certificate, checked against the test CA")
}

/// The next SIP message on a stream (framed by Content-Length).
async fn read_message<S: tokio::io::AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = header(&head, "Content-Length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let msg: Vec<u8> = buf.drain(..end + 4 + len).collect();
                return String::from_utf8(msg).unwrap();
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("a message within 5 s")
            .unwrap();
        assert!(n > 0, "the gateway closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_tls_with_sdes_is_answered_encrypted_end_to_end() {
    let tls = repo().join("tests/fixtures/tls");
    let mut s = settings();
    s.sip.tls_cert = Some(tls.join("cert.pem"));
    s.sip.tls_key = Some(tls.join("key.pem"));
    s.sip.tls_listen = vec!["127.0.0.1:0".parse().unwrap()];
    let gw = Gateway::start(s).await;
    let addr = gw.tls.expect("a TLS listener");
    let mut stream = tls_client(addr).await;
    let me = stream.get_ref().0.local_addr().unwrap();
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ours: [u8; 30] = std::array::from_fn(|i| (i * 11 + 5) as u8);
    let invite = Invite::new("tls@secure", me)
        .tls()
        .branch("z9hG4bK-tls1")
        .from("<sip:13700000000@127.0.0.1>")
        .tag("t1")
        .media(format!(
            "m=audio {} RTP/SAVP 8\r\na=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
            rtp.local_addr().unwrap().port(),
            B64.encode(ours)
        ))
        .to_string();
    stream.write_all(invite.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let ok = loop {
        let m = read_message(&mut stream, &mut buf).await;
        if m.starts_with("SIP/2.0 200 ") {
            break m;
        }
        assert!(m.starts_with("SIP/2.0 1"), "{m}");
    };
    // Over TLS, our Contact says so (RFC 3261 §26.3.1 / §19.1.4).
    assert!(
        header(&ok, "Contact").is_some_and(|c| c.contains(";transport=tls")),
        "{ok}"
    );
    let to = header(&ok, "To").unwrap().to_string();
    let theirs = ok
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:"))
        .map(|k| B64.decode(k).unwrap())
        .expect("SRTP answered");
    let in_dialog =
        format!("From: <sip:13700000000@127.0.0.1>;tag=t1\r\nTo: {to}\r\nCall-ID: tls@secure\r\n");
    let ack = format!(
        "ACK sips:12368@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bK-tls2\r\nMax-Forwards: 70\r\n\
{in_dialog}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(ack.as_bytes()).await.unwrap();
    // The greeting, SRTP under the answer's key.
    let wire = recv(&rtp, Duration::from_secs(5)).await.expect("SRTP");
    let plain = context(&theirs).decrypt_rtp(&wire).expect("authentic SRTP");
    assert_the_greeting_opens(8, &plain[12..]);
    // Our BYE over the same connection gets its 200 there.
    let bye = format!(
        "BYE sips:12368@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bK-tls3\r\nMax-Forwards: 70\r\n\
{in_dialog}CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(bye.as_bytes()).await.unwrap();
    let reply = loop {
        let m = read_message(&mut stream, &mut buf).await;
        if m.contains("CSeq: 2 BYE") {
            break m;
        }
    };
    assert!(reply.starts_with("SIP/2.0 200 "), "{reply}");
    // A ticket, as for any call.
    ticket_of(&gw.store, "tls@secure").await;
    // Plain SIP on the TLS port is no handshake: the connection is closed,
    // nothing else happens.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain.write_all(invite.as_bytes()).await.unwrap();
    let mut sink = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match plain.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a non-TLS client is dropped");
    let (status, _) = gw.get("/healthz").await;
    assert_eq!(status, 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_over_tls_gets_the_paging_call_with_its_certificate_checked() {
    use hotline::tickets::model::State;
    let fixtures = repo().join("tests/fixtures/tls");
    // The court's trunk: a TLS server with the test certificate.
    let (config, listener, port) = tls_phone().await;
    let mut s = settings();
    s.roster.file = crate::helpers::roster_police_by_phone();
    s.trunk = Some(
        toml::from_str(&format!(
            "proxy = \"127.0.0.1:{port}\"\ntransport = \"tls\"\ntls_ca = \"{}\"\nfrom_user = \"053212368\"\n",
            fixtures.join("ca.pem").display()
        ))
        .unwrap(),
    );
    let gw = Gateway::start(s).await;
    let numbers = crate::helpers::open_tickets(&gw.store, 1, "tlstrunk").await;
    let (mut conn, mut buf, invite) = first_request(&listener, config).await;
    assert!(
        invite.starts_with("INVITE sip:13800000020@127.0.0.1 SIP/2.0\r\n"),
        "{invite}"
    );
    assert!(
        header(&invite, "Via").is_some_and(|v| v.starts_with("SIP/2.0/TLS ")),
        "{invite}"
    );
    assert!(
        header(&invite, "Route").is_some_and(|r| r.contains(";transport=tls;lr")),
        "{invite}"
    );
    answer_and_press_1(&mut conn, &mut buf, &invite, port).await;
    let store = gw.store.clone();
    eventually("acknowledged by p-sun", Duration::from_secs(10), || async {
        store.get(&numbers[0]).await.is_ok_and(|t| {
            t.state == State::Acknowledged
                && t.register.dispatch.acknowledged_by.as_deref() == Some("p-sun")
        })
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_whose_certificate_names_another_host_gets_nothing() {
    let fixtures = repo().join("tests/fixtures/tls");
    let (config, listener, port) = tls_phone().await;
    let mut s = settings();
    s.roster.file = test_roster(&offline(&test_roster_text()));
    // The certificate is for 127.0.0.1 and localhost, not this name.
    s.trunk = Some(
        toml::from_str(&format!(
            "proxy = \"127.0.0.1:{port}\"\ntransport = \"tls\"\ntls_ca = \"{}\"\ntls_name = \"pbx.court.example\"\nfrom_user = \"053212368\"\n",
            fixtures.join("ca.pem").display()
        ))
        .unwrap(),
    );
    let gw = Gateway::start(s).await;
    crate::helpers::open_tickets(&gw.store, 1, "badname").await;
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .expect("the gateway connects to the trunk")
        .unwrap();
    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await;
    match handshake {
        // The client refused our certificate: the handshake fails, or it
        // ends the connection before sending anything.
        Err(_) => {}
        Ok(mut conn) => {
            let mut b = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut b))
                .await
                .map(|r| r.unwrap_or(0))
                .unwrap_or(0);
            assert_eq!(n, 0, "no request over an unchecked connection");
        }
    }
    gw.stop().await;
}

/// A TLS server with the test certificate (a trunk, a phone), its
/// listener on loopback and its port.
async fn tls_phone() -> (
    std::sync::Arc<rustls::ServerConfig>,
    tokio::net::TcpListener,
    u16,
) {
    let fixtures = repo().join("tests/fixtures/tls");
    let config =
        hotline::tls::server_config(&fixtures.join("cert.pem"), &fixtures.join("key.pem"), &[])
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (config, listener, port)
}

/// The gateway's connection to a TLS server of ours (within 30 s), its
/// handshake, and the first request on it (with what was read past it).
async fn first_request(
    listener: &tokio::net::TcpListener,
    config: std::sync::Arc<rustls::ServerConfig>,
) -> (
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
    String,
) {
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .expect("the gateway connects")
        .unwrap();
    let mut conn = tokio_rustls::TlsAcceptor::from(config)
        .accept(tcp)
        .await
        .expect("a TLS handshake");
    let mut buf = Vec::new();
    let request = read_message(&mut conn, &mut buf).await;
    (conn, buf, request)
}

/// A phone over TLS answers `invite` (its SDP on a socket of its own),
/// takes the ACK, presses 1 (RFC 4733) and gets the gateway's BYE.
async fn answer_and_press_1<S>(conn: &mut S, buf: &mut Vec<u8>, invite: &str, port: u16)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let gw_rtp: u16 = invite
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next()?.parse().ok())
        .expect("an offer");
    // The phone answers.
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio {} RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n",
        rtp.local_addr().unwrap().port()
    );
    let copy = |name: &str| format!("{name}: {}\r\n", header(invite, name).unwrap());
    let ok = format!(
        "SIP/2.0 200 OK\r\n{}{}{}To: {};tag=phone1\r\n{}Contact: <sip:phone@127.0.0.1:{port};transport=tls>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        copy("Via"),
        copy("From"),
        copy("Call-ID"),
        header(invite, "To").unwrap(),
        copy("CSeq"),
        sdp.len()
    );
    conn.write_all(ok.as_bytes()).await.unwrap();
    let ack = read_message(conn, buf).await;
    assert!(ack.starts_with("ACK "), "{ack}");
    // Key 1 as RFC 4733 events, then the gateway hangs up over TLS.
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], gw_rtp));
    for (i, end) in [(0u16, false), (1, false), (2, true)] {
        let duration = (160 * (i + 1)).to_be_bytes();
        let flags = if end { 0x80 | 10 } else { 10 };
        let payload = [1u8, flags, duration[0], duration[1]];
        rtp.send_to(&TestCall::packet(10 + i, 4000, 101, &payload), to)
            .await
            .unwrap();
    }
    let bye = read_message(conn, buf).await;
    assert!(bye.starts_with("BYE sip:phone@127.0.0.1:"), "{bye}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sips_member_is_paged_over_tls_and_acknowledges() {
    use hotline::tickets::model::State;
    let fixtures = repo().join("tests/fixtures/tls");
    let (config, listener, port) = tls_phone().await;
    let mut s = settings();
    // The officers of unit 1 have a sips: URI at the phone.
    s.roster.file = crate::helpers::roster_with_officer_phones(port);
    let roster = std::fs::read_to_string(&s.roster.file)
        .unwrap()
        .replace("sip = \"sip:officer@", "sip = \"sips:officer@");
    s.roster.file = test_roster(&roster);
    s.paging.tls_ca = Some(fixtures.join("ca.pem"));
    let gw = Gateway::start(s).await;
    let numbers = crate::helpers::open_tickets(&gw.store, 1, "sips").await;
    let (mut conn, mut buf, invite) = first_request(&listener, config).await;
    assert!(
        invite.starts_with(&format!("INVITE sips:officer@127.0.0.1:{port} SIP/2.0\r\n")),
        "{invite}"
    );
    assert!(
        header(&invite, "Via").is_some_and(|v| v.starts_with("SIP/2.0/TLS ")),
        "{invite}"
    );
    assert!(
        header(&invite, "Contact").is_some_and(|c| c.contains(";transport=tls")),
        "{invite}"
    );
    answer_and_press_1(&mut conn, &mut buf, &invite, port).await;
    let store = gw.store.clone();
    eventually("acknowledged", Duration::from_secs(10), || async {
        store
            .get(&numbers[0])
            .await
            .is_ok_and(|t| t.state == State::Acknowledged)
    })
    .await;
    gw.stop().await;
}
