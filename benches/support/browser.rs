//! A test browser of the webrtc-rs crates' own making, as Chromium does it
//! for the caller page: the WHIP-style offer, a nominated STUN check,
//! rtc-dtls as DTLS client, SRTP both ways with rtc-srtp. Shared by the
//! integration tests (`tests/it/webcall.rs`) and the browser-call load
//! benchmark (`benches/webcalls.rs`); nothing here is the gateway's code.

// The DTLS endpoint takes std's Instant.
#![allow(clippy::disallowed_types, clippy::disallowed_methods, dead_code)]

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

pub const PWD: &str = "browserpasswordbrowserpw";

struct UseCandidate;

impl Setter for UseCandidate {
    fn add_to(&self, m: &mut Message) -> rtc_shared::error::Result<()> {
        m.add(ATTR_USE_CANDIDATE, &[]);
        Ok(())
    }
}

/// A browser's audio offer (Opus first, as Chromium's; PCMU; keys), for a
/// certificate whose fingerprint is `fp`.
pub fn offer(fp: &str) -> String {
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

pub fn http() -> reqwest::Client {
    hotline::webhook::client().unwrap()
}

/// Posts `sdp` to the gateway's `/call/whip`.
pub async fn post_offer(http_addr: SocketAddr, sdp: &str) -> reqwest::Response {
    http()
        .post(format!("http://{http_addr}/call/whip"))
        .header("Content-Type", "application/sdp")
        .body(sdp.to_string())
        .send()
        .await
        .unwrap()
}

/// A connected test browser: its socket, where the gateway's media is, the
/// SRTP contexts both ways, the call's resource.
pub struct Browser {
    pub sock: UdpSocket,
    pub gw_media: SocketAddr,
    pub send: Context,
    pub receive: Context,
    pub resource: String,
    dtls: Endpoint,
}

impl Browser {
    /// Offers, checks, shakes hands: a call whose media may flow.
    pub async fn call(http_addr: SocketAddr) -> Result<Browser, String> {
        Browser::call_as(http_addr, None).await
    }

    /// As [`Browser::call`], the offer sent with `X-Forwarded-For:
    /// forwarded` when given (a client behind a reverse proxy).
    pub async fn call_as(
        http_addr: SocketAddr,
        forwarded: Option<&str>,
    ) -> Result<Browser, String> {
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
        let mut post = http()
            .post(format!("http://{http_addr}/call/whip"))
            .header("Content-Type", "application/sdp");
        if let Some(client) = forwarded {
            post = post.header("X-Forwarded-For", client);
        }
        let r = post.body(offer(&fp)).send().await.unwrap();
        if r.status() != 201 {
            return Err(format!(
                "offer answered {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ));
        }
        let resource = r.headers()["location"].to_str().unwrap().to_string();
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
        let mut buf = vec![0u8; 2048];
        let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
            .await
            .map_err(|_| "no STUN answer")?
            .unwrap();
        let mut m = Message::new();
        m.unmarshal_binary(&buf[..n]).unwrap();
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
        let now = std::time::Instant::now;
        dtls.connect(now(), gw_media, Arc::new(config), None)
            .unwrap();
        let mut done = false;
        let end = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done {
            while let Some(t) = dtls.poll_transmit() {
                sock.send_to(&t.message, gw_media).await.unwrap();
            }
            let got = tokio::time::timeout_at(end, sock.recv_from(&mut buf))
                .await
                .map_err(|_| "no DTLS handshake within 10 s")?
                .unwrap();
            if (20..=63).contains(&buf[0]) {
                let events = dtls
                    .read(now(), gw_media, None, BytesMut::from(&buf[..got.0]))
                    .map_err(|e| format!("DTLS: {e}"))?;
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
        Ok(Browser {
            sock,
            gw_media,
            send: srtp(&km[0..16], &km[32..46]),
            receive: srtp(&km[16..32], &km[46..60]),
            resource,
            dtls,
        })
    }

    /// Closes DTLS (`close_notify`), as a closed tab does.
    pub async fn close_dtls(&mut self) {
        let _ = self.dtls.close(std::time::Instant::now());
        while let Some(t) = self.dtls.poll_transmit() {
            let _ = self.sock.send_to(&t.message, self.gw_media).await;
        }
    }

    /// Sends one RTP packet of ours, protected.
    pub async fn send_rtp(&mut self, packet: &[u8]) {
        let wire = self.send.encrypt_rtp(packet).unwrap();
        let _ = self.sock.send_to(&wire, self.gw_media).await;
    }

    /// Hangs up (the page's 挂断): the status of the `DELETE`.
    pub fn hang_up(&self, http_addr: SocketAddr) -> impl std::future::Future<Output = u16> + Send {
        let url = format!("http://{http_addr}{}", self.resource);
        async move {
            http()
                .delete(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    }
}

/// An RTP packet: version 2, `pt`, `seq`, `ts`, a fixed SSRC.
pub fn rtp(seq: u16, ts: u32, pt: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0x51, 0x52, 0x53, 0x54];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(payload);
    p
}
