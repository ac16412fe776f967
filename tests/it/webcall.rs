//! Calls from a browser, with a test "browser" of the webrtc-rs crates'
//! own making (rtc-dtls as DTLS client, rtc-stun checks, rtc-srtp): the
//! WHIP exchange, ICE, DTLS and SRTP over real loopback sockets, then the
//! call as any other: greeting, keys, a ticket from `web`, a recording.
//! The same in Chromium is `browser::a_caller_in_chromium_…`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rtc_dtls::config::{ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;
use rtc_stun::attributes::{ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, TransactionId, BINDING_REQUEST, BINDING_SUCCESS};
use rtc_stun::textattrs::TextAttribute;
use sha2::Digest;
use tokio::net::UdpSocket;

use crate::caller::TestCall;
use crate::helpers::*;

const PWD: &str = "browserpasswordbrowserpw";

struct UseCandidate;

impl Setter for UseCandidate {
    fn add_to(&self, m: &mut Message) -> rtc_shared::error::Result<()> {
        m.add(ATTR_USE_CANDIDATE, &[]);
        Ok(())
    }
}

/// A browser's audio offer, for a certificate whose fingerprint is `fp`.
fn offer(fp: &str) -> String {
    format!(
        "v=0\r\no=- 46117314 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0 126\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:brw1\r\na=ice-pwd:{PWD}\r\n\
a=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:126 telephone-event/8000\r\n"
    )
}

fn srtp(key: &[u8], salt: &[u8]) -> Context {
    let provider = rtc_srtp::crypto::default_provider().unwrap();
    Context::new(
        key,
        salt,
        ProtectionProfile::Aes128CmHmacSha1_80,
        None,
        None,
        provider.crypto(),
    )
    .unwrap()
}

async fn post_offer(gw: &Gateway, sdp: &str) -> reqwest::Response {
    hotline::paging::channels::webhook_client()
        .unwrap()
        .post(format!("http://{}/call/whip", gw.http))
        .header("Content-Type", "application/sdp")
        .body(sdp.to_string())
        .send()
        .await
        .unwrap()
}

/// A connected test browser: its socket, where the gateway's media is,
/// and the SRTP contexts both ways.
struct Browser {
    sock: UdpSocket,
    gw_media: SocketAddr,
    send: Context,
    receive: Context,
    resource: String,
}

impl Browser {
    async fn call(gw: &Gateway) -> Browser {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let cert = rtc_dtls::crypto::Certificate::generate_self_signed(
            vec!["browser".to_string()],
            provider.crypto(),
        )
        .unwrap();
        let fp = sha2::Sha256::digest(cert.certificate[0].as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let r = post_offer(gw, &offer(&fp)).await;
        assert_eq!(r.status(), 201);
        let resource = r.headers()["location"].to_str().unwrap().to_string();
        assert!(resource.starts_with("/call/whip/"), "{resource}");
        assert_eq!(r.headers()["content-type"], "application/sdp");
        let answer = r.text().await.unwrap();
        let value = |key: &str| {
            answer
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("{key} in\n{answer}"))
                .to_string()
        };
        assert!(answer.contains("a=ice-lite\r\n"), "{answer}");
        assert!(answer.contains("a=setup:passive\r\n"), "{answer}");
        assert!(answer.contains("m=audio "), "{answer}");
        let (ufrag, pwd) = (value("a=ice-ufrag:"), value("a=ice-pwd:"));
        let candidate = value("a=candidate:");
        let parts: Vec<&str> = candidate.split(' ').collect();
        let gw_media: SocketAddr = format!("{}:{}", parts[4], parts[5]).parse().unwrap();

        // ICE: our nominated check, its answer.
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let stun = rtc_stun::crypto::default_provider().unwrap();
        let mut check = Message::new();
        check
            .build(&[
                Box::new(TransactionId::new()) as Box<dyn Setter>,
                Box::new(BINDING_REQUEST),
                Box::new(TextAttribute::new(ATTR_USERNAME, format!("{ufrag}:brw1"))),
                Box::new(UseCandidate),
                Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                    pwd.clone(),
                    stun.crypto(),
                )),
                Box::new(FINGERPRINT),
            ])
            .unwrap();
        sock.send_to(&check.raw, gw_media).await.unwrap();
        let reply = recv(&sock, Duration::from_secs(5))
            .await
            .expect("a STUN answer");
        let mut m = Message::new();
        m.unmarshal_binary(&reply).unwrap();
        assert_eq!(m.typ, BINDING_SUCCESS);
        MessageIntegrity::check(&mut m, pwd.as_bytes(), stun.crypto()).unwrap();

        // DTLS, we the client.
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider)
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_insecure_skip_verify(true)
            .build(true, Some(gw_media))
            .unwrap();
        let me = sock.local_addr().unwrap();
        let mut dtls = Endpoint::new(me, rtc_shared::TransportProtocol::UDP, None);
        #[allow(clippy::disallowed_types)]
        let now = std::time::Instant::now;
        dtls.connect(now(), gw_media, Arc::new(config), None)
            .unwrap();
        let mut done = false;
        let end = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done {
            while let Some(t) = dtls.poll_transmit() {
                sock.send_to(&t.message, gw_media).await.unwrap();
            }
            let mut buf = vec![0u8; 2048];
            let got = tokio::time::timeout_at(end, sock.recv_from(&mut buf))
                .await
                .expect("the DTLS handshake within 10 s")
                .unwrap();
            if buf[0] >= 20 && buf[0] <= 63 {
                let events = dtls
                    .read(now(), gw_media, None, BytesMut::from(&buf[..got.0]))
                    .unwrap();
                done = events
                    .iter()
                    .any(|e| matches!(e, EndpointEvent::HandshakeComplete));
            }
        }
        while let Some(t) = dtls.poll_transmit() {
            sock.send_to(&t.message, gw_media).await.unwrap();
        }
        let state = dtls.get_connection_state(gw_media).unwrap();
        let km = state
            .export_keying_material("EXTRACTOR-dtls_srtp", &[], 60)
            .unwrap();
        let km = km.as_ref();
        Browser {
            sock,
            gw_media,
            send: srtp(&km[0..16], &km[32..46]),
            receive: srtp(&km[16..32], &km[46..60]),
            resource,
        }
    }

    async fn state(&self, gw: &Gateway) -> serde_json::Value {
        let (status, body) = gw.get(&self.resource).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_call_is_a_call_like_any_other() {
    let gw = Gateway::start(settings()).await;
    let (status, page) = gw.get("/call").await;
    assert_eq!(status, 200);
    assert!(page.contains("拨打举报电话"), "the caller page");
    let mut b = Browser::call(&gw).await;
    // The greeting, in SRTP, PCMU as the offer preferred after Opus.
    let greeting = greeting_first_frame(hotline::media::g711::linear_to_ulaw);
    let first = loop {
        let wire = recv(&b.sock, Duration::from_secs(5)).await.expect("media");
        if (128..=191).contains(&wire[0]) {
            break wire;
        }
    };
    let plain = b.receive.decrypt_rtp(&first).expect("authentic SRTP");
    assert_eq!(plain[1] & 0x7f, 0, "PCMU");
    assert_eq!(&plain[12..], &greeting[..]);
    // The caller speaks, then keys 1 (a lead) as RFC 4733 events.
    for i in 0..25u16 {
        let p = TestCall::packet(100 + i, 16000 + 160 * u32::from(i), 0, &[0xAA; 160]);
        b.sock
            .send_to(&b.send.encrypt_rtp(&p).unwrap(), b.gw_media)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (i, end) in [(0u16, false), (1, false), (2, true)] {
        let d = (160 * (i + 1)).to_be_bytes();
        let flags = if end { 0x80 | 10 } else { 10 };
        let p = TestCall::packet(200 + i, 30000, 126, &[1, flags, d[0], d[1]]);
        b.sock
            .send_to(&b.send.encrypt_rtp(&p).unwrap(), b.gw_media)
            .await
            .unwrap();
    }
    // The page sees the call connected, with its ticket's number.
    let number = {
        let mut n = None;
        for _ in 0..50 {
            let s = b.state(&gw).await;
            if let Some(t) = s["ticket"].as_str() {
                assert_eq!(s["state"], "connected", "{s}");
                n = Some(t.to_string());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        n.expect("the ticket's number on the page")
    };
    let t = gw.store.get(&number).await.unwrap();
    assert_eq!(t.register.caller.channel.as_deref(), Some("web"));
    assert_eq!(t.register.caller.number, None);
    let sealed = t
        .register
        .caller
        .client_ip
        .clone()
        .expect("the address, sealed");
    assert!(!sealed.contains("127.0.0.1"), "sealed, not in clear");
    let store = gw.store.clone();
    let n = number.clone();
    eventually(
        "the category on the ticket",
        Duration::from_secs(10),
        || async {
            store.get(&n).await.is_ok_and(|t| {
                t.register.intake.category == Some(hotline::tickets::model::Category::Lead)
            })
        },
    )
    .await;
    // The page hangs up.
    let r = hotline::paging::channels::webhook_client()
        .unwrap()
        .delete(format!("http://{}{}", gw.http, b.resource))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let n = number.clone();
    eventually("the recording linked", Duration::from_secs(10), || async {
        store
            .get(&n)
            .await
            .is_ok_and(|t| !t.register.recordings.is_empty())
    })
    .await;
    assert_eq!(b.state(&gw).await["state"], "ended");
    let t = gw.store.get(&number).await.unwrap();
    let samples: Vec<i16> = hound::WavReader::open(&t.register.recordings[0].path)
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect();
    let spoken = hotline::media::g711::ulaw_to_linear(0xAA);
    let heard = samples.iter().step_by(2).filter(|s| **s == spoken).count();
    assert!(
        (24 * 160..=25 * 160).contains(&heard),
        "the browser's audio is recorded: {heard} samples"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_never_connects_leaves_no_ticket_and_bad_offers_are_named() {
    let mut s = settings();
    s.webrtc.connect_seconds = 1;
    s.webrtc.offers_per_minute = 3;
    let gw = Gateway::start(s).await;
    // Not SDP, not WebRTC, no G.711: each refused with what is wrong.
    let r = hotline::paging::channels::webhook_client()
        .unwrap()
        .post(format!("http://{}/call/whip", gw.http))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = post_offer(&gw, "v=0\r\nnot sdp at all").await;
    assert_eq!(r.status(), 400);
    let r = post_offer(&gw, &offer("AB:CD").replace("a=ice-ufrag:brw1\r\n", "")).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("ice-ufrag"),
        "{body}"
    );
    // An offer whose browser never checks: failed after connect_seconds,
    // no ticket, and the next offer from this source is over its limit.
    let r = post_offer(&gw, &offer("AB:CD")).await;
    assert_eq!(r.status(), 201);
    let resource = r.headers()["location"].to_str().unwrap().to_string();
    let r = post_offer(&gw, &offer("AB:CD")).await;
    assert_eq!(r.status(), 429, "three offers a minute from one address");
    assert_eq!(r.headers()["retry-after"], "60");
    let gw_ref = &gw;
    eventually("the call failed", Duration::from_secs(10), || async {
        let (_, body) = gw_ref.get(&resource).await;
        body.contains("\"failed\"")
    })
    .await;
    let (_, body) = gw.get(&resource).await;
    assert!(body.contains("ICE"), "{body}");
    assert_eq!(
        crate::helpers::redis_dump(&gw.store)
            .await
            .matches("ticket:")
            .count(),
        0,
        "no ticket for a call that never happened"
    );
    let (_, metrics) = gw.get("/metrics").await;
    assert!(
        metrics.contains("hotline_webrtc_failed_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hotline_webrtc_refused_total 1\n"),
        "{metrics}"
    );
    gw.stop().await;
}
