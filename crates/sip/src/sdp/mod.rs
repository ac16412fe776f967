//! SDP offer/answer for audio calls (RFC 3264), on top of `rtc-sdp`'s parser.
//!
//! `rtc-sdp` is written for WebRTC: it knows codecs only through `a=rtpmap`,
//! while SIP phones and trunks commonly offer the static payload types 0
//! (PCMU) and 8 (PCMA) without one (RFC 3551 §6). This wrapper reads the
//! `m=` format list itself, honours static types, and finds telephone-event
//! (RFC 4733) by its rtpmap. It never touches sockets or audio.
//!
//! SRTP keys come by SDES (RFC 4568): an audio stream offered as
//! `RTP/SAVP` (or `RTP/AVP`, best effort) with an
//! `a=crypto:<tag> AES_CM_128_HMAC_SHA1_80 inline:<key||salt>` is answered
//! with that tag, the suite and a key of ours, as `[sip] srtp` allows.

pub mod webrtc;

use std::collections::HashMap;
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use rtc_sdp::description::media::MediaDescription;
use rtc_sdp::description::session::SessionDescription;

/// The G.711 codecs the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// Which way media flows, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// The peer will send RTP.
    pub fn peer_sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
    /// The peer wants our RTP.
    pub fn peer_receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
    /// The peer put the call on hold (RFC 3264 §8.4: sendonly or inactive).
    pub fn is_hold(self) -> bool {
        matches!(self, Direction::SendOnly | Direction::Inactive)
    }
    /// Our side of it.
    fn mirror(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

/// `[sip] srtp`: whether calls may, or must, carry SRTP keyed by SDES.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SrtpPolicy {
    /// `RTP/SAVP` streams are refused, `a=crypto` ignored.
    Off,
    /// SRTP when the offer has a usable `a=crypto`, plain RTP otherwise.
    #[default]
    Optional,
    /// Only streams with a usable `a=crypto`: anything else gets 488.
    Required,
}

/// The one SRTP suite we take (RFC 4568 §6.2.1; mandatory in RFC 3711).
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// A master key (16 bytes) and salt (14), as `inline:` carries them.
pub const KEY_LEN: usize = 30;

/// SRTP keys agreed by SDES: the peer sends with `remote`, we with `local`.
#[derive(Clone, PartialEq, Eq)]
pub struct Sdes {
    pub tag: u32,
    pub remote: [u8; KEY_LEN],
    pub local: [u8; KEY_LEN],
}

impl std::fmt::Debug for Sdes {
    /// Never the keys (a `Media` is logged).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sdes {{ tag: {}, {SUITE} }}", self.tag)
    }
}

/// Reads `a=crypto` values: the first with our suite, an `inline:` key of
/// the right length, no MKI and no session parameters (which we would
/// have to honour) is taken.
fn crypto_offer<'a>(values: impl Iterator<Item = &'a str>) -> Option<(u32, [u8; KEY_LEN])> {
    use base64::Engine;
    values.into_iter().find_map(|v| {
        let mut parts = v.split_ascii_whitespace();
        let tag = parts.next()?.parse::<u32>().ok()?;
        if !parts.next()?.eq_ignore_ascii_case(SUITE) {
            return None;
        }
        let key_params = parts.next()?;
        if parts.next().is_some() || key_params.contains(';') {
            return None; // session parameters, or a second key
        }
        let inline = key_params.strip_prefix("inline:")?;
        let mut fields = inline.split('|');
        let key = base64::engine::general_purpose::STANDARD
            .decode(fields.next()?)
            .ok()?;
        // A lifetime is fine (we never reach 2^31 packets); an MKI is not.
        let lifetime = fields.next();
        if fields.next().is_some() || lifetime.is_some_and(|l| l.contains(':')) {
            return None;
        }
        Some((tag, key.try_into().ok()?))
    })
}

/// The `a=crypto` line of our answer.
fn crypto_line(s: &Sdes) -> String {
    use base64::Engine;
    format!(
        "a=crypto:{} {SUITE} inline:{}\r\n",
        s.tag,
        base64::engine::general_purpose::STANDARD.encode(s.local)
    )
}

/// The result of a negotiation: what both sides will use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub codec: Codec,
    /// Payload type the peer uses for the codec.
    pub payload_type: u8,
    /// Payload type for RFC 4733 events, when both sides have them.
    pub telephone_event: Option<u8>,
    /// Where the peer wants RTP (`None`: no usable address, wait for latching).
    pub remote: Option<SocketAddr>,
    /// The peer's direction.
    pub direction: Direction,
    /// SRTP, when agreed.
    pub srtp: Option<Sdes>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP does not parse: {0}")]
    Malformed(String),
    #[error("no audio stream with PCMU or PCMA")]
    NoCommonCodec,
    #[error("no audio stream with SRTP ({SUITE}, SDES), which this gateway requires")]
    SrtpRequired,
}

/// One `m=` line of an offer, as we will answer it.
#[derive(Debug, Clone)]
struct MLine {
    media: String,
    proto: String,
    formats: Vec<String>,
}

/// A parsed offer (or answer) and what we will answer to it.
#[derive(Debug, Clone)]
pub struct Negotiation {
    pub media: Media,
    lines: Vec<MLine>,
    chosen: usize,
}

fn parse_sdp(body: &[u8]) -> Result<SessionDescription, SdpError> {
    // rtc-sdp wants CRLF or LF line ends and no trailing blank junk.
    let text = std::str::from_utf8(body).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
    let text = text.trim_end_matches(['\r', '\n', ' ', '\0']);
    let mut cursor = Cursor::new(format!("{text}\r\n").into_bytes());
    SessionDescription::unmarshal(&mut cursor).map_err(|e| SdpError::Malformed(e.to_string()))
}

fn attr<'a>(md: &'a MediaDescription, key: &str) -> impl Iterator<Item = &'a str> + 'a {
    let key = key.to_string();
    md.attributes
        .iter()
        .filter(move |a| a.key.eq_ignore_ascii_case(&key))
        .filter_map(|a| a.value.as_deref())
}

/// Every `a=rtpmap:<pt> <name>/<rate>` of a stream, read once (the first
/// for a payload type counts), so a long format list costs one pass.
fn rtpmaps(md: &MediaDescription) -> HashMap<u8, (String, u32)> {
    let mut maps = HashMap::new();
    for v in attr(md, "rtpmap") {
        let Some((num, rest)) = v.split_once(' ') else {
            continue;
        };
        let Ok(pt) = num.trim().parse::<u8>() else {
            continue;
        };
        let mut parts = rest.trim().split('/');
        let name = parts.next().unwrap_or("").to_ascii_uppercase();
        let Some(rate) = parts.next().and_then(|r| r.parse().ok()) else {
            continue;
        };
        maps.entry(pt).or_insert((name, rate));
    }
    maps
}

fn codec_of(maps: &HashMap<u8, (String, u32)>, pt: u8) -> Option<Codec> {
    match maps.get(&pt).map(|(n, r)| (n.as_str(), *r)) {
        Some(("PCMU", 8000)) => Some(Codec::Pcmu),
        Some(("PCMA", 8000)) => Some(Codec::Pcma),
        Some(_) => None,
        None if pt == 0 => Some(Codec::Pcmu),
        None if pt == 8 => Some(Codec::Pcma),
        None => None,
    }
}

fn direction_of(session: &SessionDescription, md: &MediaDescription) -> Direction {
    let find = |attrs: &[rtc_sdp::description::common::Attribute]| {
        attrs.iter().find_map(|a| match a.key.as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        })
    };
    find(&md.attributes)
        .or_else(|| find(&session.attributes))
        .unwrap_or(Direction::SendRecv)
}

/// A stream's first codec we speak, in the peer's order of preference,
/// and its telephone-event at 8 kHz (RFC 4733), if any.
fn pick_audio(md: &MediaDescription) -> Option<(u8, Codec, Option<u8>)> {
    let pts: Vec<u8> = md
        .media_name
        .formats
        .iter()
        .filter_map(|f| f.parse().ok())
        .collect();
    let maps = rtpmaps(md);
    let (pt, codec) = pts
        .iter()
        .find_map(|&pt| codec_of(&maps, pt).map(|c| (pt, c)))?;
    let telephone_event = pts.iter().copied().find(|pt| {
        maps.get(pt)
            .is_some_and(|(n, r)| n == "TELEPHONE-EVENT" && *r == 8000)
    });
    Some((pt, codec, telephone_event))
}

/// Reads an offer (or an answer to our offer) and picks the first codec of
/// the first audio stream that we support, in the peer's order of
/// preference; `srtp` says whether that stream may, or must, be SRTP.
pub fn negotiate(body: &[u8], srtp: SrtpPolicy) -> Result<Negotiation, SdpError> {
    let session = parse_sdp(body)?;
    let mut lines = Vec::new();
    let mut chosen = None;
    let mut plain_refused = false;
    for (i, md) in session.media_descriptions.iter().enumerate() {
        let name = &md.media_name;
        let proto = name.protos.join("/");
        lines.push(MLine {
            media: name.media.clone(),
            proto: proto.clone(),
            formats: name.formats.clone(),
        });
        if chosen.is_some()
            || !name.media.eq_ignore_ascii_case("audio")
            || !(proto == "RTP/AVP" || proto == "RTP/SAVP")
            || name.port.value <= 0
        {
            continue;
        }
        let crypto = match srtp {
            SrtpPolicy::Off => None,
            _ => crypto_offer(attr(md, "crypto")),
        };
        match (proto == "RTP/SAVP", &crypto, srtp) {
            // SAVP needs keys we can use, and SRTP allowed.
            (true, None, _) => continue,
            (false, None, SrtpPolicy::Required) => {
                plain_refused = true;
                continue;
            }
            _ => {}
        }
        let sdes = crypto.map(|(tag, remote)| Sdes {
            tag,
            remote,
            local: rand::random(),
        });
        let Some((pt, codec, telephone_event)) = pick_audio(md) else {
            continue;
        };
        let conn = md
            .connection_information
            .as_ref()
            .or(session.connection_information.as_ref());
        let ip: Option<IpAddr> = conn
            .and_then(|c| c.address.as_ref())
            .and_then(|a| a.address.split('/').next()?.parse().ok());
        let port = u16::try_from(name.port.value).ok();
        let remote = match (ip, port) {
            (Some(ip), Some(port)) if !ip.is_unspecified() => Some(SocketAddr::new(ip, port)),
            _ => None,
        };
        chosen = Some((
            i,
            Media {
                codec,
                payload_type: pt,
                telephone_event,
                remote,
                direction: direction_of(&session, md),
                srtp: sdes,
            },
        ));
    }
    let (chosen, media) = chosen.ok_or(if plain_refused {
        SdpError::SrtpRequired
    } else {
        SdpError::NoCommonCodec
    })?;
    Ok(Negotiation {
        media,
        lines,
        chosen,
    })
}

fn origin(local: IpAddr, session_id: u64, version: u64) -> String {
    let fam = if local.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=hotline {session_id} {version} IN {fam} {local}\r\ns=hotline\r\nc=IN {fam} {local}\r\nt=0 0\r\n"
    )
}

/// The chosen codec's rtpmap, telephone-event's (keys 0-16) and the
/// packet time, as every answer of ours carries them.
fn audio_attributes(m: &Media) -> String {
    let mut s = format!("a=rtpmap:{} {}/8000\r\n", m.payload_type, m.codec.name());
    if let Some(te) = m.telephone_event {
        s.push_str(&format!(
            "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
        ));
    }
    s.push_str("a=ptime:20\r\n");
    s
}

impl Negotiation {
    /// Keeps the key we already send with (a refresh, a hold, an answer to
    /// our description offered again): SRTP goes on without a new context.
    pub fn keep_our_key(&mut self, previous: &Media) {
        if let (Some(new), Some(old)) = (self.media.srtp.as_mut(), previous.srtp.as_ref()) {
            new.local = old.local;
        }
    }

    /// Our answer: the chosen stream on `local`, every other stream refused
    /// with port 0 (RFC 3264 §6).
    pub fn answer(&self, local: SocketAddr, session_id: u64, version: u64) -> String {
        let mut s = origin(local.ip(), session_id, version);
        for (i, line) in self.lines.iter().enumerate() {
            if i != self.chosen {
                s.push_str(&format!(
                    "m={} 0 {} {}\r\n",
                    line.media,
                    line.proto,
                    line.formats.join(" ")
                ));
                continue;
            }
            let m = &self.media;
            let mut pts = vec![m.payload_type.to_string()];
            if let Some(te) = m.telephone_event {
                pts.push(te.to_string());
            }
            // The offer's profile: SAVP, or AVP with keys (best effort).
            s.push_str(&format!(
                "m=audio {} {} {}\r\n",
                local.port(),
                line.proto,
                pts.join(" ")
            ));
            if let Some(sdes) = &m.srtp {
                s.push_str(&crypto_line(sdes));
            }
            s.push_str(&audio_attributes(m));
            s.push_str(&format!("a={}\r\n", m.direction.mirror().attr()));
        }
        s
    }
}

/// Our offer for an INVITE that came without one (RFC 3261 §13.2.1 late
/// offer, or an offer-less re-INVITE: `version` one above our last).
pub fn offer(local: SocketAddr, session_id: u64, version: u64) -> String {
    let mut s = origin(local.ip(), session_id, version);
    s.push_str(&format!(
        "m=audio {} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        local.port()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SIPp's built-in uac scenario offer.
    const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

    /// A desk phone offer without rtpmap for static types, PCMA first.
    const NO_RTPMAP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=call\r\nc=IN IP4 192.0.2.10\r\n\
t=0 0\r\nm=audio 16384 RTP/AVP 8 0 18 101\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\na=ptime:20\r\n";

    /// Linphone-style offer: dynamic codecs first, session-level c=, LF only.
    const LINPHONE: &str = "v=0\no=13800000000 3135 1467 IN IP4 10.0.0.5\ns=Talk\n\
c=IN IP4 203.0.113.9\nt=0 0\na=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\n\
m=audio 7078 RTP/AVP 96 97 98 0 8 101 99 100\na=rtpmap:96 opus/48000/2\na=fmtp:96 useinbandfec=1\n\
a=rtpmap:97 speex/16000\na=rtpmap:98 speex/8000\na=rtpmap:101 telephone-event/48000\n\
a=rtpmap:99 telephone-event/16000\na=rtpmap:100 telephone-event/8000\na=rtcp-fb:* trr-int 1000\n";

    /// An offer with video and an IPv6 address (RFC 5118 §4.5 shape).
    const VIDEO_V6: &str = "v=0\r\no=bob 280744730 28977631 IN IP6 2001:db8::10\r\ns=\r\n\
c=IN IP6 2001:db8::10\r\nt=0 0\r\nm=video 3400 RTP/AVP 31\r\nm=audio 3456 RTP/AVP 0 8\r\n\
a=sendonly\r\n";

    #[test]
    fn sipp_offer() {
        let n = negotiate(SIPP.as_bytes(), SrtpPolicy::Optional).unwrap();
        assert_eq!(n.media.codec, Codec::Pcmu);
        assert_eq!(n.media.remote, Some("127.0.0.1:6000".parse().unwrap()));
        assert_eq!(n.media.telephone_event, None);
    }

    #[test]
    fn static_types_without_rtpmap() {
        let n = negotiate(NO_RTPMAP.as_bytes(), SrtpPolicy::Optional).unwrap();
        assert_eq!((n.media.codec, n.media.payload_type), (Codec::Pcma, 8));
        assert_eq!(n.media.telephone_event, Some(101));
        let a = n.answer("192.0.2.1:20000".parse().unwrap(), 7, 1);
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{a}");
        assert!(a.contains("a=rtpmap:101 telephone-event/8000\r\n"), "{a}");
        // Our answer parses with the same parser.
        negotiate(a.as_bytes(), SrtpPolicy::Optional).unwrap();
    }

    #[test]
    fn linphone_offer_picks_8khz_event() {
        let n = negotiate(LINPHONE.as_bytes(), SrtpPolicy::Optional).unwrap();
        assert_eq!(n.media.codec, Codec::Pcmu);
        assert_eq!(n.media.telephone_event, Some(100));
        assert_eq!(n.media.remote, Some("203.0.113.9:7078".parse().unwrap()));
    }

    #[test]
    fn other_streams_refused_and_direction_mirrored() {
        let n = negotiate(VIDEO_V6.as_bytes(), SrtpPolicy::Optional).unwrap();
        assert_eq!(n.media.direction, Direction::SendOnly);
        let a = n.answer("[2001:db8::1]:20002".parse().unwrap(), 1, 1);
        assert!(
            a.contains("m=video 0 RTP/AVP 31\r\nm=audio 20002 RTP/AVP 0\r\n"),
            "{a}"
        );
        assert!(a.contains("a=recvonly\r\n"), "{a}");
        assert!(a.contains("c=IN IP6 2001:db8::1\r\n"), "{a}");
    }

    #[test]
    fn no_common_codec() {
        let s = SIPP
            .replace("RTP/AVP 0", "RTP/AVP 18")
            .replace("0 PCMU", "18 G729");
        assert_eq!(
            negotiate(s.as_bytes(), SrtpPolicy::Optional).unwrap_err(),
            SdpError::NoCommonCodec
        );
        assert!(matches!(
            negotiate(b"hello", SrtpPolicy::Optional),
            Err(SdpError::Malformed(_))
        ));
    }

    #[test]
    fn late_offer_round_trip() {
        let o = offer("127.0.0.1:20000".parse().unwrap(), 5, 1);
        let n = negotiate(o.as_bytes(), SrtpPolicy::Optional).unwrap();
        assert_eq!(
            (n.media.codec, n.media.telephone_event),
            (Codec::Pcma, Some(101))
        );
    }

    /// RFC 4568 §6.2.1's example key, with a second suite we do not take.
    const SAVP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n\
t=0 0\r\nm=audio 49170 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20\r\n";

    #[test]
    fn sdes_offer_is_answered_with_its_tag_and_a_key_of_ours() {
        use base64::Engine;
        let n = negotiate(SAVP.as_bytes(), SrtpPolicy::Optional).unwrap();
        let keys = n.media.srtp.clone().expect("SRTP agreed");
        assert_eq!(keys.tag, 2);
        let theirs = base64::engine::general_purpose::STANDARD
            .decode("d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj")
            .unwrap();
        assert_eq!(&keys.remote[..], &theirs[..]);
        assert_ne!(keys.local, keys.remote);
        let a = n.answer("192.0.2.1:20000".parse().unwrap(), 1, 1);
        assert!(a.contains("m=audio 20000 RTP/SAVP 0 101\r\n"), "{a}");
        let ours = base64::engine::general_purpose::STANDARD.encode(keys.local);
        assert!(
            a.contains(&format!(
                "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{ours}\r\n"
            )),
            "{a}"
        );
        assert_eq!(a.matches("a=crypto:").count(), 1, "{a}");
        // The keys never reach a log line.
        assert!(!format!("{:?}", n.media).contains(&ours));
        // A refresh keeps our key.
        let mut again = negotiate(SAVP.as_bytes(), SrtpPolicy::Optional).unwrap();
        again.keep_our_key(&n.media);
        assert_eq!(again.media, n.media);
    }

    #[test]
    fn srtp_policy_decides_what_is_refused() {
        // Off: SAVP is refused, crypto in AVP ignored.
        assert_eq!(
            negotiate(SAVP.as_bytes(), SrtpPolicy::Off).unwrap_err(),
            SdpError::NoCommonCodec
        );
        let avp_crypto = SAVP.replace("RTP/SAVP", "RTP/AVP");
        let n = negotiate(avp_crypto.as_bytes(), SrtpPolicy::Off).unwrap();
        assert_eq!(n.media.srtp, None);
        let a = n.answer("192.0.2.1:20000".parse().unwrap(), 1, 1);
        assert!(!a.contains("a=crypto"), "{a}");
        // Optional: best-effort keys in AVP are taken, AVP kept.
        let n = negotiate(avp_crypto.as_bytes(), SrtpPolicy::Optional).unwrap();
        assert!(n.media.srtp.is_some());
        let a = n.answer("192.0.2.1:20000".parse().unwrap(), 1, 1);
        assert!(
            a.contains("RTP/AVP 0 101") && a.contains("a=crypto:2 "),
            "{a}"
        );
        // Required: plain RTP is refused as such.
        assert_eq!(
            negotiate(SIPP.as_bytes(), SrtpPolicy::Required).unwrap_err(),
            SdpError::SrtpRequired
        );
        assert!(negotiate(SAVP.as_bytes(), SrtpPolicy::Required).is_ok());
        // Only the 32-bit suite, a short key, an MKI, a session parameter:
        // no usable key.
        for bad in [
            "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZi",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:4",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj UNENCRYPTED_SRTP",
            "a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!!!",
        ] {
            let offer = format!(
                "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=audio 49170 RTP/SAVP 0\r\n{bad}\r\n"
            );
            assert_eq!(
                negotiate(offer.as_bytes(), SrtpPolicy::Optional).unwrap_err(),
                SdpError::NoCommonCodec,
                "{bad}"
            );
        }
    }
}
