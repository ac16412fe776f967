//! The path against a DTLS client and STUN checks of the crates' own
//! making (as a browser sends them), in memory.

use std::net::SocketAddr;
use std::sync::Arc;

use rtc_dtls::config::{ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_stun::attributes::{ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, TransactionId, BINDING_REQUEST, BINDING_SUCCESS};
use rtc_stun::textattrs::TextAttribute;

use super::*;

const GATEWAY: &str = "127.0.0.1:20000";
const BROWSER: &str = "127.0.0.1:50000";

struct UseCandidate;

impl Setter for UseCandidate {
    fn add_to(&self, m: &mut Message) -> rtc_shared::error::Result<()> {
        m.add(ATTR_USE_CANDIDATE, &[]);
        Ok(())
    }
}

/// A browser's connectivity check (USE-CANDIDATE: nominated).
fn check(username: &str, pwd: &str) -> Vec<u8> {
    let provider = rtc_stun::crypto::default_provider().unwrap();
    let mut m = Message::new();
    m.build(&[
        Box::new(TransactionId::new()) as Box<dyn Setter>,
        Box::new(BINDING_REQUEST),
        Box::new(TextAttribute::new(ATTR_USERNAME, username.to_string())),
        Box::new(UseCandidate),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            pwd.to_string(),
            provider.crypto(),
        )),
        Box::new(FINGERPRINT),
    ])
    .unwrap();
    m.raw
}

struct Browser {
    endpoint: Endpoint,
    fingerprint: String,
    done: bool,
}

impl Browser {
    fn new() -> Browser {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let cert = rtc_dtls::crypto::Certificate::generate_self_signed(
            vec!["browser".to_string()],
            provider.crypto(),
        )
        .unwrap();
        let fingerprint = fingerprint_of(cert.certificate[0].as_ref());
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider)
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_insecure_skip_verify(true)
            .build(true, Some(GATEWAY.parse().unwrap()))
            .unwrap();
        let mut endpoint = Endpoint::new(
            BROWSER.parse().unwrap(),
            rtc_shared::TransportProtocol::UDP,
            None,
        );
        endpoint
            .connect(
                Instant::now().into_std(),
                GATEWAY.parse().unwrap(),
                Arc::new(config),
                None,
            )
            .unwrap();
        Browser {
            endpoint,
            fingerprint,
            done: false,
        }
    }

    /// Runs the handshake against `w` until both sides are done (or 20
    /// rounds).
    fn handshake(&mut self, w: &mut WebRtc) {
        let gateway: SocketAddr = GATEWAY.parse().unwrap();
        let browser: SocketAddr = BROWSER.parse().unwrap();
        for _ in 0..20 {
            let mut to_gateway = Vec::new();
            while let Some(t) = self.endpoint.poll_transmit() {
                to_gateway.push(t.message.to_vec());
            }
            let mut out = Vec::new();
            for d in to_gateway {
                assert_eq!(
                    w.on_datagram(browser, &d, Instant::now(), &mut out),
                    Inbound::Handled
                );
            }
            for (d, to) in out {
                assert_eq!(to, browser);
                if let Ok(events) = self.endpoint.read(
                    Instant::now().into_std(),
                    gateway,
                    None,
                    BytesMut::from(&d[..]),
                ) {
                    self.done |= events
                        .iter()
                        .any(|e| matches!(e, EndpointEvent::HandshakeComplete));
                }
            }
            if self.done && (w.ready() || w.failure().is_some()) {
                return;
            }
        }
    }

    /// The browser's SRTP contexts: it sends with the client key.
    fn srtp(&self) -> Srtp {
        let state = self
            .endpoint
            .get_connection_state(GATEWAY.parse().unwrap())
            .unwrap();
        let km = state
            .export_keying_material("EXTRACTOR-dtls_srtp", &[], 60)
            .unwrap();
        let km = km.as_ref();
        let mut client = [0u8; 30];
        let mut server = [0u8; 30];
        client[..16].copy_from_slice(&km[0..16]);
        client[16..].copy_from_slice(&km[32..46]);
        server[..16].copy_from_slice(&km[16..32]);
        server[16..].copy_from_slice(&km[46..60]);
        Srtp::new(&client, &server).unwrap()
    }
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 9, 9, 9, 9];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend([0x55u8; 160]);
    p
}

fn path(browser: &Browser) -> (WebRtc, IceDtls) {
    let cert = Certificate::generate().unwrap();
    let params = IceDtls::new("brws".into(), browser.fingerprint.clone());
    let w = WebRtc::new(&params, &cert, GATEWAY.parse().unwrap()).unwrap();
    (w, params)
}

#[test]
fn a_browser_checks_shakes_hands_and_exchanges_srtp() {
    let mut browser = Browser::new();
    let (mut w, params) = path(&browser);
    let from: SocketAddr = BROWSER.parse().unwrap();
    let mut out = Vec::new();
    // DTLS before any check: dropped, nothing answered.
    let mut early = Browser::new();
    let hello = early.endpoint.poll_transmit().unwrap().message.to_vec();
    assert!(matches!(
        w.on_datagram(from, &hello, Instant::now(), &mut out),
        Inbound::Dropped(_)
    ));
    assert!(out.is_empty());
    // A check with the wrong password: no answer.
    let bad = check(
        &format!("{}:brws", params.local_ufrag),
        "not-the-password-at-all",
    );
    assert!(matches!(
        w.on_datagram(from, &bad, Instant::now(), &mut out),
        Inbound::Dropped(_)
    ));
    assert!(out.is_empty());
    assert_eq!(w.target(), None);
    // The right one: a success answer, the browser's address is the path.
    let good = check(&format!("{}:brws", params.local_ufrag), &params.local_pwd);
    assert_eq!(
        w.on_datagram(from, &good, Instant::now(), &mut out),
        Inbound::Handled
    );
    let (answer, to) = out.pop().unwrap();
    assert_eq!(to, from);
    let mut m = Message::new();
    m.unmarshal_binary(&answer).unwrap();
    assert_eq!(m.typ, BINDING_SUCCESS);
    let provider = rtc_stun::crypto::default_provider().unwrap();
    MessageIntegrity::check(&mut m, params.local_pwd.as_bytes(), provider.crypto())
        .expect("signed with our password");
    FINGERPRINT.check(&m).unwrap();
    assert_eq!(w.target(), Some(from));
    // SRTP before the handshake: dropped.
    assert!(matches!(
        w.on_datagram(from, &rtp(1), Instant::now(), &mut out),
        Inbound::Dropped(_)
    ));
    browser.handshake(&mut w);
    assert!(w.ready(), "keyed: {:?}", w.failure());
    // Both ways.
    let mut theirs = browser.srtp();
    let wire = theirs.protect(&rtp(7)).unwrap();
    match w.on_datagram(from, &wire, Instant::now(), &mut out) {
        Inbound::Rtp(p) => assert_eq!(&p[..], &rtp(7)[..]),
        other => panic!("{other:?}"),
    }
    // Tampered: refused.
    let mut bad = theirs.protect(&rtp(8)).unwrap();
    bad[20] ^= 1;
    assert_eq!(
        w.on_datagram(from, &bad, Instant::now(), &mut out),
        Inbound::AuthFailed
    );
    let ours = w.protect(&rtp(3)).unwrap();
    assert_eq!(&theirs.unprotect(&ours).unwrap()[..], &rtp(3)[..]);
    // The browser closes: close_notify, and the path says so.
    assert!(!w.closed());
    browser.endpoint.close(Instant::now().into_std()).unwrap();
    while let Some(t) = browser.endpoint.poll_transmit() {
        w.on_datagram(from, &t.message, Instant::now(), &mut out);
    }
    assert!(w.closed(), "close_notify seen");
    assert!(
        w.ready() && w.failure().is_none(),
        "a call that was, not a failure"
    );
}

#[test]
fn a_certificate_the_offer_did_not_name_fails_the_path() {
    let mut browser = Browser::new();
    let cert = Certificate::generate().unwrap();
    // The offer named another certificate.
    let params = IceDtls::new("brws".into(), fingerprint_of(b"another certificate"));
    let mut w = WebRtc::new(&params, &cert, GATEWAY.parse().unwrap()).unwrap();
    let from: SocketAddr = BROWSER.parse().unwrap();
    let mut out = Vec::new();
    let good = check(&format!("{}:brws", params.local_ufrag), &params.local_pwd);
    w.on_datagram(from, &good, Instant::now(), &mut out);
    browser.handshake(&mut w);
    assert!(!w.ready());
    assert!(w.failure().is_some());
}

/// Deterministic noise (xorshift), for the tests below.
fn noise(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn hostile_datagrams_are_dropped_never_a_panic() {
    let browser = Browser::new();
    let (mut w, params) = path(&browser);
    let from: SocketAddr = BROWSER.parse().unwrap();
    let mut out = Vec::new();
    // A valid check first, so DTLS from this address is read at all.
    let good = check(&format!("{}:brws", params.local_ufrag), &params.local_pwd);
    w.on_datagram(from, &good, Instant::now(), &mut out);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..3000 {
        // Truncated and bit-flipped checks, records with a DTLS or an SRTP
        // first byte, and pure noise, of every length up to 300.
        let mut d = match i % 3 {
            0 => good.clone(),
            _ => (0..(noise(&mut seed) % 300) as usize)
                .map(|_| noise(&mut seed) as u8)
                .collect(),
        };
        if let Some(first) = d.first_mut() {
            *first = match i % 3 {
                1 => 20 + (noise(&mut seed) % 44) as u8,
                2 => 128 + (noise(&mut seed) % 64) as u8,
                _ => *first,
            };
        }
        if i % 3 == 0 && !d.is_empty() {
            let at = (noise(&mut seed) as usize) % d.len();
            d[at] ^= 1 << (noise(&mut seed) % 8);
            d.truncate(1 + (noise(&mut seed) as usize) % d.len());
        }
        let got = w.on_datagram(from, &d, Instant::now(), &mut out);
        assert!(!matches!(got, Inbound::Rtp(_)), "noise taken as media");
        out.clear();
    }
}
