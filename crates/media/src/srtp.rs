//! SRTP (RFC 3711) for one call, AES_CM_128_HMAC_SHA1_80, on `rtc-srtp`'s
//! contexts: ours protects what we send, the peer's authenticates and
//! decrypts what comes, with a replay window. A packet that fails is
//! dropped and counted: it is never played, latched to, or recorded.

use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use hotline_sip::sdp::{Sdes, KEY_LEN};

/// The replay window (packets), as browsers and the rtc crate use.
const REPLAY_WINDOW: usize = 64;
/// The master key's length; the salt is the rest of the 30 bytes.
const MASTER_KEY: usize = 16;

/// The two contexts of a call.
pub struct Srtp {
    send: Context,
    receive: Context,
}

/// Why a packet was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Failed authentication, replayed, or too short to be SRTP.
    Auth,
    /// RTCP (rtcp-mux): authenticated, not used.
    Rtcp,
}

impl Srtp {
    /// The contexts for keys agreed by SDES.
    pub fn sdes(keys: &Sdes) -> Result<Srtp, String> {
        Srtp::new(&keys.local, &keys.remote)
    }

    /// `local`: we send with it; `remote`: the peer does (key ‖ salt each).
    pub fn new(local: &[u8; KEY_LEN], remote: &[u8; KEY_LEN]) -> Result<Srtp, String> {
        let provider = rtc_srtp::crypto::default_provider().map_err(|e| e.to_string())?;
        let profile = ProtectionProfile::Aes128CmHmacSha1_80;
        let (lk, ls) = local.split_at(MASTER_KEY);
        let (rk, rs) = remote.split_at(MASTER_KEY);
        let send = Context::new(lk, ls, profile, None, None, provider.crypto())
            .map_err(|e| e.to_string())?;
        let receive = Context::new(
            rk,
            rs,
            profile,
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
            provider.crypto(),
        )
        .map_err(|e| e.to_string())?;
        Ok(Srtp { send, receive })
    }

    /// An RTP packet of ours, protected; `None` if it could not be (the
    /// packet is then not sent, never sent in clear).
    pub fn protect(&mut self, rtp: &[u8]) -> Option<bytes::BytesMut> {
        self.send.encrypt_rtp(rtp).ok()
    }

    /// The plain RTP packet in `packet`, once authenticated.
    pub fn unprotect(&mut self, packet: &[u8]) -> Result<bytes::BytesMut, Refused> {
        // RFC 5761 §4: RTCP packet types 192..=223 in the second byte.
        if packet.get(1).is_some_and(|b| (192..=223).contains(b)) {
            return match self.receive.decrypt_rtcp(packet) {
                Ok(_) => Err(Refused::Rtcp),
                Err(_) => Err(Refused::Auth),
            };
        }
        self.receive.decrypt_rtp(packet).map_err(|_| Refused::Auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 8, 0, 0, 0, 0, 0, 160, 1, 2, 3, 4];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend([0xd5u8; 160]);
        p
    }

    #[test]
    fn a_peer_with_the_keys_reads_us_and_a_tampered_or_replayed_packet_is_refused() {
        let (a, b) = ([7u8; KEY_LEN], [9u8; KEY_LEN]);
        let mut us = Srtp::new(&a, &b).unwrap();
        let mut peer = Srtp::new(&b, &a).unwrap();
        let wire = us.protect(&rtp(1)).unwrap();
        assert_eq!(wire.len(), rtp(1).len() + 10, "the 80-bit tag");
        assert_ne!(&wire[12..172], &rtp(1)[12..], "the payload is encrypted");
        assert_eq!(&peer.unprotect(&wire).unwrap()[..], &rtp(1)[..]);
        // The same packet again: a replay.
        assert_eq!(peer.unprotect(&wire), Err(Refused::Auth));
        // One flipped payload bit.
        let mut bad = us.protect(&rtp(2)).unwrap();
        bad[40] ^= 1;
        assert_eq!(peer.unprotect(&bad), Err(Refused::Auth));
        // Plain RTP is not SRTP.
        assert_eq!(peer.unprotect(&rtp(3)), Err(Refused::Auth));
        // Keys of another call.
        let mut other = Srtp::new(&[1u8; KEY_LEN], &a).unwrap();
        let foreign = other.protect(&rtp(4)).unwrap();
        assert_eq!(peer.unprotect(&foreign), Err(Refused::Auth));
    }
}
