//! A browser's media path (WebRTC audio without a data channel), sans-IO on
//! the webrtc-rs crates: the gateway is ICE-lite (RFC 8445 §2.5: it answers
//! the browser's STUN connectivity checks on its one host candidate and
//! sends none), DTLS server (`a=setup:passive`; the browser's certificate
//! must match the offer's `a=fingerprint`, RFC 8122) and then SRTP keyed by
//! the handshake (RFC 5764, `SRTP_AES128_CM_HMAC_SHA1_80`). Everything
//! arrives on the call's RTP socket and is told apart by its first byte
//! (RFC 7983): STUN 0–3, DTLS 20–63, SRTP 128–191.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_stun::attributes::{ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, BINDING_REQUEST, BINDING_SUCCESS};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;
use sha2::Digest;
use tokio::time::Instant;

use super::srtp::{Refused, Srtp};

/// The gateway's DTLS certificate (self-signed, ECDSA P-256, made at each
/// start: browsers pin it by the fingerprint in our answer, RFC 8827 §6.5).
pub struct Certificate {
    cert: rtc_dtls::crypto::Certificate,
    /// `sha-256` fingerprint, upper-case hex pairs joined by `:`.
    pub fingerprint: String,
}

impl Certificate {
    pub fn generate() -> Result<Certificate, String> {
        let provider = rtc_dtls::crypto_provider::default_provider().map_err(|e| e.to_string())?;
        let cert = rtc_dtls::crypto::Certificate::generate_self_signed(
            vec!["hotline".to_string()],
            provider.crypto(),
        )
        .map_err(|e| e.to_string())?;
        let der = cert
            .certificate
            .first()
            .ok_or("a certificate without its DER")?;
        Ok(Certificate {
            fingerprint: fingerprint_of(der.as_ref()),
            cert,
        })
    }
}

/// `AB:CD:…` of SHA-256 over `der`.
pub fn fingerprint_of(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What one call's path knows: our ICE credentials, the browser's user
/// fragment and its certificate's fingerprint (from its offer).
#[derive(Clone)]
pub struct IceDtls {
    pub local_ufrag: String,
    pub local_pwd: String,
    pub remote_ufrag: String,
    /// `AB:CD:…`, as the offer's `a=fingerprint:sha-256`.
    pub remote_fingerprint: String,
}

impl IceDtls {
    /// Fresh credentials of ours (RFC 8445 §5.3: at least 24 bits of
    /// randomness in the fragment, 128 in the password).
    pub fn new(remote_ufrag: String, remote_fingerprint: String) -> IceDtls {
        let token = |n: usize| -> String {
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            (0..n)
                .map(|_| char::from(ALPHABET[rand::random::<u32>() as usize % ALPHABET.len()]))
                .collect()
        };
        IceDtls {
            local_ufrag: token(8),
            local_pwd: token(24),
            remote_ufrag,
            remote_fingerprint,
        }
    }
}

/// What became of one datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// An SRTP packet, authenticated: the plain RTP.
    Rtp(BytesMut),
    /// STUN or DTLS, handled (answers are in `out`).
    Handled,
    /// RTCP, authenticated and not used.
    Rtcp,
    /// Dropped: `why`.
    Dropped(&'static str),
    /// Failed SRTP authentication (or a replay).
    AuthFailed,
}

/// One call's ICE-lite, DTLS and SRTP state.
pub struct WebRtc {
    /// `ours:theirs`, what a check's USERNAME must be.
    username: String,
    pwd: String,
    endpoint: Endpoint,
    /// Where the browser's valid checks come from (the pair it nominated
    /// last, else the first that passed): where our media goes.
    remote: Option<SocketAddr>,
    srtp: Option<Srtp>,
    failure: Option<String>,
    /// The browser closed DTLS (`close_notify`): the call is over.
    closed: bool,
    provider: Arc<dyn rtc_dtls::crypto_provider::RTCCryptoProvider>,
}

impl WebRtc {
    pub fn new(params: &IceDtls, cert: &Certificate, local: SocketAddr) -> Result<WebRtc, String> {
        let provider = rtc_dtls::crypto_provider::default_provider().map_err(|e| e.to_string())?;
        let expected = params.remote_fingerprint.to_ascii_uppercase();
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![cert.cert.clone()])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            // No CA: the browser's self-signed certificate is pinned by
            // the fingerprint its offer carried (RFC 8122 §5).
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(Arc::new(move |certs: &[Vec<u8>], _| {
                match certs.first() {
                    Some(c) if fingerprint_of(c) == expected => Ok(()),
                    _ => Err(rtc_shared::error::Error::Other(
                        "the certificate is not the one the offer's fingerprint names".into(),
                    )),
                }
            })))
            .build(false, None)
            .map_err(|e| e.to_string())?;
        Ok(WebRtc {
            username: format!("{}:{}", params.local_ufrag, params.remote_ufrag),
            pwd: params.local_pwd.clone(),
            endpoint: Endpoint::new(
                local,
                rtc_shared::TransportProtocol::UDP,
                Some(Arc::new(config)),
            ),
            remote: None,
            srtp: None,
            failure: None,
            closed: false,
            provider,
        })
    }

    /// SRTP is keyed: media may flow.
    pub fn ready(&self) -> bool {
        self.srtp.is_some()
    }

    /// Why the path failed, once it has (a DTLS alert, a wrong
    /// certificate, no SRTP profile in common).
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// The browser closed DTLS (a tab closed, `RTCPeerConnection.close()`).
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Where our media goes.
    pub fn target(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// One datagram from `from`; what to send back is pushed to `out`.
    pub fn on_datagram(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
        out: &mut Vec<(Vec<u8>, SocketAddr)>,
    ) -> Inbound {
        match data.first() {
            Some(0..=3) => self.on_stun(from, data, out),
            Some(20..=63) => self.on_dtls(from, data, now, out),
            Some(128..=191) => match self.srtp.as_mut() {
                None => Inbound::Dropped("media before the DTLS handshake"),
                Some(s) => match s.unprotect(data) {
                    Ok(p) => Inbound::Rtp(p),
                    Err(Refused::Rtcp) => Inbound::Rtcp,
                    Err(Refused::Auth) => Inbound::AuthFailed,
                },
            },
            _ => Inbound::Dropped("not STUN, DTLS or SRTP"),
        }
    }

    fn on_stun(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        out: &mut Vec<(Vec<u8>, SocketAddr)>,
    ) -> Inbound {
        let mut m = Message::new();
        if m.unmarshal_binary(data).is_err() {
            return Inbound::Dropped("malformed STUN");
        }
        if m.typ != BINDING_REQUEST {
            return Inbound::Dropped("STUN that is not a binding request");
        }
        if FINGERPRINT.check(&m).is_err() {
            return Inbound::Dropped("STUN without a valid FINGERPRINT");
        }
        match TextAttribute::get_from_as(&m, ATTR_USERNAME) {
            Ok(u) if u.to_string() == self.username => {}
            _ => return Inbound::Dropped("STUN for another session"),
        }
        let crypto = self.provider.crypto();
        if MessageIntegrity::check(&mut m, self.pwd.as_bytes(), crypto).is_err() {
            return Inbound::Dropped("STUN with a wrong MESSAGE-INTEGRITY");
        }
        let mut reply = Message::new();
        let built = reply.build(&[
            Box::new(m.clone()) as Box<dyn Setter>,
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress {
                ip: from.ip(),
                port: from.port(),
            }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                self.pwd.clone(),
                crypto,
            )),
            Box::new(FINGERPRINT),
        ]);
        if built.is_err() {
            return Inbound::Dropped("cannot build the STUN answer");
        }
        out.push((reply.raw, from));
        // The controlling browser nominates; before that the first valid
        // check's address is where we send (RFC 8445 §7.3.1.5, lite side).
        if m.contains(ATTR_USE_CANDIDATE) || self.remote.is_none() {
            self.remote = Some(from);
        }
        Inbound::Handled
    }

    fn on_dtls(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
        out: &mut Vec<(Vec<u8>, SocketAddr)>,
    ) -> Inbound {
        // Only over a path the browser's checks proved.
        if self.remote != Some(from) {
            return Inbound::Dropped("DTLS from an address without a valid ICE check");
        }
        let events = self
            .endpoint
            .read(now.into_std(), from, None, BytesMut::from(data));
        self.drain(out);
        match events {
            Ok(events) => {
                for e in events {
                    match e {
                        EndpointEvent::HandshakeComplete => self.keyed(from),
                        EndpointEvent::PeerClosed => {
                            self.closed = true;
                            if self.srtp.is_none() {
                                self.failure = Some("the browser closed DTLS".into());
                            }
                        }
                        _ => {}
                    }
                }
            }
            Err(e) if self.srtp.is_none() => self.failure = Some(format!("DTLS: {e}")),
            Err(_) => {}
        }
        Inbound::Handled
    }

    /// The handshake is done: SRTP keys from it (RFC 5764 §4.2: client
    /// key, server key, client salt, server salt; we are the server).
    fn keyed(&mut self, from: SocketAddr) {
        let Some(state) = self.endpoint.get_connection_state(from) else {
            return;
        };
        if state.srtp_protection_profile() != SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 {
            self.failure = Some("no SRTP profile in common".into());
            return;
        }
        let km = match state.export_keying_material("EXTRACTOR-dtls_srtp", &[], 60) {
            Ok(km) => km,
            Err(e) => {
                self.failure = Some(format!("SRTP keys: {e}"));
                return;
            }
        };
        let Some((client_key, server_key, client_salt, server_salt)) = split_keying(km.as_ref())
        else {
            self.failure = Some("SRTP keys: short keying material".into());
            return;
        };
        let join = |k: &[u8; 16], s: &[u8; 14]| -> [u8; 30] {
            let mut key = [0u8; 30];
            let (head, tail) = key.split_at_mut(16);
            head.copy_from_slice(k);
            tail.copy_from_slice(s);
            key
        };
        match Srtp::new(
            &join(server_key, server_salt),
            &join(client_key, client_salt),
        ) {
            Ok(s) => self.srtp = Some(s),
            Err(e) => self.failure = Some(format!("SRTP: {e}")),
        }
    }

    fn drain(&mut self, out: &mut Vec<(Vec<u8>, SocketAddr)>) {
        while let Some(t) = self.endpoint.poll_transmit() {
            out.push((t.message.to_vec(), t.transport.peer_addr));
        }
    }

    /// DTLS retransmissions due by `now`.
    pub fn on_timer(&mut self, now: Instant, out: &mut Vec<(Vec<u8>, SocketAddr)>) {
        let Some(remote) = self.remote else { return };
        let now = now.into_std();
        if self
            .endpoint
            .poll_timeout(&remote)
            .is_some_and(|at| at <= now)
        {
            let _ = self.endpoint.handle_timeout(remote, now);
            self.drain(out);
        }
    }

    /// Our RTP packet, protected (`None` before the keys: nothing is sent).
    pub fn protect(&mut self, rtp: &[u8]) -> Option<BytesMut> {
        self.srtp.as_mut()?.protect(rtp)
    }
}

/// RFC 5764 §4.2's keying material: client key, server key, client salt,
/// server salt (AES-CM-128: 16, 16, 14, 14 bytes); `None` when short.
#[allow(clippy::type_complexity)]
fn split_keying(km: &[u8]) -> Option<(&[u8; 16], &[u8; 16], &[u8; 14], &[u8; 14])> {
    let (client_key, rest) = km.split_first_chunk::<16>()?;
    let (server_key, rest) = rest.split_first_chunk::<16>()?;
    let (client_salt, rest) = rest.split_first_chunk::<14>()?;
    let server_salt = rest.first_chunk::<14>()?;
    Some((client_key, server_key, client_salt, server_salt))
}

/// Runs `path` on `socket` until it is keyed, fails, or `deadline` passes:
/// the browser's checks answered, the DTLS handshake done (polled every
/// 10 ms; the call's media session takes over from there).
pub async fn connect(
    socket: &super::ports::RtpSocket,
    path: &mut WebRtc,
    deadline: Instant,
) -> Result<(), String> {
    let mut buf = [0u8; 2048];
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                return Err(match path.target() {
                    None => "no ICE connectivity check came in time".into(),
                    Some(_) => "the DTLS handshake did not complete in time".into(),
                });
            }
            _ = tick.tick() => {}
        }
        let mut out = Vec::new();
        // Non-blocking: what arrived since the last look.
        for _ in 0..64 {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let data = buf.get(..n).unwrap_or_default();
                    // A panic on one datagram (a bug in a parser) costs the
                    // datagram, as in the media session.
                    let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        path.on_datagram(from, data, Instant::now(), &mut out)
                    }));
                    if handled.is_err() {
                        tracing::error!(from = %hotline_sip::admission::mask_ip(from.ip()), "panic while handling a browser's datagram: dropped");
                    }
                }
                Err(_) => break,
            }
        }
        path.on_timer(Instant::now(), &mut out);
        for (d, to) in out {
            let _ = socket.send_to(&d, to);
        }
        if path.ready() {
            return Ok(());
        }
        if let Some(why) = path.failure() {
            return Err(why.to_string());
        }
    }
}

#[cfg(test)]
mod tests;
