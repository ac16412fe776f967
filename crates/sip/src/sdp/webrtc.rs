//! SDP for a browser's call (JSEP, RFC 8829): an audio offer on
//! `UDP/TLS/RTP/SAVPF` with its ICE credentials (RFC 8839), the DTLS
//! fingerprint and role (RFC 8842) and rtcp-mux, answered by an ICE-lite
//! gateway with one host candidate, `a=setup:passive`, the same mid in a
//! BUNDLE group (RFC 8843) and PCMU or PCMA (G.711 is mandatory in WebRTC,
//! RFC 7874 §3: no transcoding), telephone-event for the keypad.

use std::net::SocketAddr;

use super::{attr, audio_attributes, direction_of, parse_sdp, pick_audio, MLine, Media, SdpError};

/// WebRTC's media profile.
const PROFILE: &str = "UDP/TLS/RTP/SAVPF";

/// A browser's offer, as we answer it.
#[derive(Debug, Clone)]
pub struct WebOffer {
    pub media: Media,
    /// The browser's ICE user fragment (its checks' USERNAME ends in it).
    pub ice_ufrag: String,
    /// Its certificate's SHA-256 fingerprint, `AB:CD:…`.
    pub fingerprint: String,
    mid: Option<String>,
    lines: Vec<(MLine, Option<String>)>,
    chosen: usize,
}

/// Why an offer is no WebRTC offer we can take.
fn missing(what: &str) -> SdpError {
    SdpError::Malformed(format!("not a WebRTC offer: {what}"))
}

/// Reads a browser's offer: the first audio stream on WebRTC's profile
/// with PCMU or PCMA.
pub fn negotiate(body: &[u8]) -> Result<WebOffer, SdpError> {
    let session = parse_sdp(body)?;
    let session_attr = |key: &str| -> Option<String> {
        session
            .attributes
            .iter()
            .find(|a| a.key.eq_ignore_ascii_case(key))
            .and_then(|a| a.value.clone())
    };
    let mut lines = Vec::new();
    let mut chosen = None;
    for (i, md) in session.media_descriptions.iter().enumerate() {
        let name = &md.media_name;
        let proto = name.protos.join("/");
        let mid = attr(md, "mid").next().map(str::to_string);
        lines.push((
            MLine {
                media: name.media.clone(),
                proto: proto.clone(),
                formats: name.formats.clone(),
            },
            mid.clone(),
        ));
        if chosen.is_some() || !name.media.eq_ignore_ascii_case("audio") || proto != PROFILE {
            continue;
        }
        let Some((pt, codec, telephone_event)) = pick_audio(md) else {
            continue;
        };
        let at = |key: &str| {
            attr(md, key)
                .next()
                .map(str::to_string)
                .or_else(|| session_attr(key))
        };
        let ufrag = at("ice-ufrag").ok_or_else(|| missing("no a=ice-ufrag"))?;
        let fingerprint = at("fingerprint").ok_or_else(|| missing("no a=fingerprint"))?;
        let fingerprint = match fingerprint.split_once(' ') {
            Some((hash, fp)) if hash.eq_ignore_ascii_case("sha-256") => {
                fp.trim().to_ascii_uppercase()
            }
            _ => return Err(missing("the fingerprint is not sha-256")),
        };
        // We are the DTLS server: the browser must be able to be the client.
        match at("setup").as_deref() {
            Some("actpass") | Some("active") | None => {}
            Some(other) => {
                return Err(missing(&format!(
                    "a=setup:{other} (we take actpass or active)"
                )))
            }
        }
        if !md
            .attributes
            .iter()
            .any(|a| a.key.eq_ignore_ascii_case("rtcp-mux"))
        {
            return Err(missing("no a=rtcp-mux"));
        }
        chosen = Some((
            i,
            ufrag,
            fingerprint,
            mid,
            Media {
                codec,
                payload_type: pt,
                telephone_event,
                remote: None,
                direction: direction_of(&session, md),
                srtp: None,
            },
        ));
    }
    let (chosen, ice_ufrag, fingerprint, mid, media) = chosen.ok_or(SdpError::NoCommonCodec)?;
    Ok(WebOffer {
        media,
        ice_ufrag,
        fingerprint,
        mid,
        lines,
        chosen,
    })
}

impl WebOffer {
    /// Our answer: ICE-lite on `local` (the one host candidate), our ICE
    /// credentials and certificate, every other stream refused with port 0.
    pub fn answer(
        &self,
        local: SocketAddr,
        ice: (&str, &str),
        fingerprint: &str,
        session_id: u64,
    ) -> String {
        let ip = local.ip();
        let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let mut s = format!(
            "v=0\r\no=hotline {session_id} 1 IN {fam} {ip}\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n"
        );
        if let Some(mid) = &self.mid {
            s.push_str(&format!("a=group:BUNDLE {mid}\r\n"));
        }
        for (i, (line, mid)) in self.lines.iter().enumerate() {
            if i != self.chosen {
                s.push_str(&format!(
                    "m={} 0 {} {}\r\nc=IN {fam} {ip}\r\n",
                    line.media,
                    line.proto,
                    line.formats.join(" ")
                ));
                if let Some(mid) = mid {
                    s.push_str(&format!("a=mid:{mid}\r\n"));
                }
                continue;
            }
            let m = &self.media;
            let mut pts = vec![m.payload_type.to_string()];
            pts.extend(m.telephone_event.map(|t| t.to_string()));
            s.push_str(&format!(
                "m=audio {} {PROFILE} {}\r\nc=IN {fam} {ip}\r\n",
                local.port(),
                pts.join(" ")
            ));
            if let Some(mid) = mid {
                s.push_str(&format!("a=mid:{mid}\r\n"));
            }
            s.push_str(&format!(
                "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {fingerprint}\r\na=setup:passive\r\na=rtcp-mux\r\n",
                ice.0, ice.1
            ));
            s.push_str(&format!("a={}\r\n", m.direction.mirror().attr()));
            s.push_str(&audio_attributes(m));
            s.push_str(&format!(
                "a=candidate:1 1 udp 2130706431 {ip} {} typ host\r\na=end-of-candidates\r\n",
                local.port()
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::Codec;

    /// Chromium's offer for one audio transceiver (trimmed of extmaps).
    const CHROMIUM: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS stream\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:RJsC\r\na=ice-pwd:8vUBQlvb0wDEwGKWzkIq7uuR\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 9d:6B:12:0F:4C:2A:8E:2A:44:1F:62:AF:64:87:21:3F:05:3E:C4:70:52:52:E6:79:F9:03:6B:9D:77:20:7D:0A\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\na=ssrc:1 cname:x\r\n";

    #[test]
    fn chromium_offer_is_answered_ice_lite_with_pcmu() {
        let o = negotiate(CHROMIUM.as_bytes()).unwrap();
        assert_eq!((o.media.codec, o.media.payload_type), (Codec::Pcmu, 0));
        assert_eq!(o.media.telephone_event, Some(126));
        assert_eq!(o.ice_ufrag, "RJsC");
        assert!(o.fingerprint.starts_with("9D:6B:12:"), "{}", o.fingerprint);
        let a = o.answer(
            "127.0.0.1:30000".parse().unwrap(),
            ("ufrg", "password"),
            "AA:BB",
            7,
        );
        for line in [
            "a=ice-lite\r\n",
            "a=group:BUNDLE 0\r\n",
            "m=audio 30000 UDP/TLS/RTP/SAVPF 0 126\r\n",
            "a=mid:0\r\n",
            "a=ice-ufrag:ufrg\r\na=ice-pwd:password\r\n",
            "a=fingerprint:sha-256 AA:BB\r\na=setup:passive\r\na=rtcp-mux\r\n",
            "a=rtpmap:126 telephone-event/8000\r\n",
            "a=candidate:1 1 udp 2130706431 127.0.0.1 30000 typ host\r\n",
        ] {
            assert!(a.contains(line), "{line:?} in\n{a}");
        }
        // The answer parses as SDP again.
        parse_sdp(a.as_bytes()).unwrap();
    }

    #[test]
    fn what_is_not_a_webrtc_offer_is_named() {
        for (cut, why) in [
            ("a=ice-ufrag:RJsC\r\n", "ice-ufrag"),
            ("a=rtcp-mux\r\n", "rtcp-mux"),
        ] {
            let o = CHROMIUM.replace(cut, "");
            match negotiate(o.as_bytes()) {
                Err(SdpError::Malformed(m)) => assert!(m.contains(why), "{m}"),
                other => panic!("{why}: {other:?}"),
            }
        }
        let passive = CHROMIUM.replace("a=setup:actpass", "a=setup:passive");
        assert!(matches!(
            negotiate(passive.as_bytes()),
            Err(SdpError::Malformed(_))
        ));
        let sha1 = CHROMIUM.replace("sha-256 9d", "sha-1 9d");
        assert!(matches!(
            negotiate(sha1.as_bytes()),
            Err(SdpError::Malformed(_))
        ));
        let opus_only = CHROMIUM.replace(" 111 63 9 0 8 13 110 126", " 111");
        assert_eq!(
            negotiate(opus_only.as_bytes()).unwrap_err(),
            SdpError::NoCommonCodec
        );
        // A plain SIP offer is not one either.
        let sip = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(
            negotiate(sip.as_bytes()).unwrap_err(),
            SdpError::NoCommonCodec
        );
    }

    #[test]
    fn mangled_offers_are_answered_or_refused_never_a_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let base = CHROMIUM.as_bytes();
        for _ in 0..3000 {
            let mut o = base.to_vec();
            for _ in 0..1 + next() % 8 {
                let at = (next() as usize) % o.len();
                match next() % 3 {
                    0 => o[at] = next() as u8,
                    1 => {
                        o.remove(at);
                    }
                    _ => o.insert(at, b"\r\n:= /0"[(next() % 7) as usize]),
                }
            }
            o.truncate(1 + (next() as usize) % o.len());
            let _ = negotiate(&o);
        }
    }
}
