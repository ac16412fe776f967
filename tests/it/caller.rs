//! A test caller over raw UDP: SIP by hand, RTP packets exactly as a test
//! wants them (reordered, duplicated, lost, foreign, malformed).

use std::net::SocketAddr;
use std::time::Duration;

use rtc_rtp::{Header, Packet};
use rtc_shared::marshal::{Marshal, MarshalSize};
use tokio::net::UdpSocket;

use crate::helpers::*;

pub struct TestCall {
    pub sip: UdpSocket,
    pub rtp: UdpSocket,
    pub gw: SocketAddr,
    /// Where the gateway wants RTP (from its SDP answer).
    pub gw_rtp: SocketAddr,
    pub call_id: String,
    /// The gateway's 200 OK to the INVITE (its SDP answer).
    pub answer: String,
    to: String,
    /// The From header's name-addr (without its tag).
    from: String,
    tag: String,
}

/// A token made from any text (for tags and branches).
pub fn token(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

impl TestCall {
    /// INVITE offering payload type `pt` (0 PCMU, 8 PCMA) and
    /// telephone-event, 200, ACK.
    pub async fn place(gw: SocketAddr, call_id: &str, pt: u8) -> TestCall {
        TestCall::place_with(gw, call_id, pt, true).await
    }

    /// As `place`, with or without telephone-event in the offer.
    pub async fn place_with(gw: SocketAddr, call_id: &str, pt: u8, events: bool) -> TestCall {
        TestCall::place_as(gw, call_id, pt, events, "<sip:13700000000@127.0.0.1>").await
    }

    /// As `place_with`, from a given caller (`from`: a name-addr such as
    /// `"Name" <sip:number@host>`).
    pub async fn place_as(
        gw: SocketAddr,
        call_id: &str,
        pt: u8,
        events: bool,
        from: &str,
    ) -> TestCall {
        let te = if events {
            " 101\r\na=rtpmap:101 telephone-event/8000"
        } else {
            ""
        };
        TestCall::place_offering(gw, call_id, from, |port| {
            format!("m=audio {port} RTP/AVP {pt}{te}\r\n")
        })
        .await
    }

    /// INVITE with the media section `media(rtp_port)` makes, 200, ACK.
    pub async fn place_offering(
        gw: SocketAddr,
        call_id: &str,
        from: &str,
        media: impl FnOnce(u16) -> String,
    ) -> TestCall {
        TestCall::place_from("127.0.0.1", gw, call_id, from, "", media).await
    }

    /// As `place_offering`, from the loopback address `ip` (127.0.0.0/8),
    /// with `headers` (whole lines, each ending in CRLF) in the INVITE.
    pub async fn place_from(
        ip: &str,
        gw: SocketAddr,
        call_id: &str,
        from: &str,
        headers: &str,
        media: impl FnOnce(u16) -> String,
    ) -> TestCall {
        let sip = UdpSocket::bind((ip, 0)).await.unwrap();
        let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let me = sip.local_addr().unwrap();
        let tag = token(call_id);
        // A phone's Contact carries its number, as the From does.
        let user = from
            .split("sip:")
            .nth(1)
            .and_then(|u| u.split('@').next())
            .unwrap_or("caller");
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{}",
            media(rtp.local_addr().unwrap().port())
        );
        let invite = format!(
            "INVITE sip:12368@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{tag}\r\nMax-Forwards: 70\r\n\
From: {from};tag={tag}\r\nTo: <sip:12368@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:{user}@{me}>\r\n{headers}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        sip.send_to(invite.as_bytes(), gw).await.unwrap();
        let ok = loop {
            let m = recv(&sip, Duration::from_secs(5)).await.expect("an answer");
            if status_of(&m) == Some(200) {
                break String::from_utf8(m).unwrap();
            }
        };
        let port: u16 = ok
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split(' ').next())
            .and_then(|p| p.parse().ok())
            .expect("SDP answer with a port");
        let to = header(&ok, "To").unwrap().to_string();
        let call = TestCall {
            sip,
            rtp,
            gw,
            gw_rtp: SocketAddr::new("127.0.0.1".parse().unwrap(), port),
            call_id: call_id.to_string(),
            answer: ok.clone(),
            to,
            from: from.to_string(),
            tag,
        };
        call.request("ACK", 1, "ack").await;
        call
    }

    async fn request(&self, method: &str, cseq: u32, branch: &str) {
        self.request_with(method, cseq, branch, None, b"").await;
    }

    async fn request_with(
        &self,
        method: &str,
        cseq: u32,
        branch: &str,
        ctype: Option<&str>,
        body: &[u8],
    ) {
        let me = self.sip.local_addr().unwrap();
        let ctype = ctype
            .map(|c| format!("Content-Type: {c}\r\n"))
            .unwrap_or_default();
        let mut m = format!(
            "{method} sip:hotline@{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{}-{branch}\r\nMax-Forwards: 70\r\n\
From: {};tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n{ctype}Content-Length: {}\r\n\r\n",
            self.gw, self.tag, self.from, self.tag, self.to, self.call_id, body.len()
        )
        .into_bytes();
        m.extend_from_slice(body);
        self.sip.send_to(&m, self.gw).await.unwrap();
    }

    /// A key by SIP INFO (`application/dtmf-relay`), numbered from `n`.
    pub async fn info(&self, n: u32, key: char) {
        let body = format!("Signal={key}\r\nDuration=160\r\n");
        self.request_with(
            "INFO",
            10 + n,
            &format!("info{n}"),
            Some("application/dtmf-relay"),
            body.as_bytes(),
        )
        .await;
    }

    pub fn packet(seq: u16, ts: u32, pt: u8, payload: &[u8]) -> Vec<u8> {
        let p = Packet {
            header: Header {
                version: 2,
                payload_type: pt,
                sequence_number: seq,
                timestamp: ts,
                ssrc: 0x1234_5678,
                ..Default::default()
            },
            payload: bytes::Bytes::copy_from_slice(payload),
        };
        let mut buf = vec![0u8; p.marshal_size()];
        p.marshal_to(&mut buf).unwrap();
        buf
    }

    pub async fn send(&self, datagram: &[u8]) {
        self.rtp.send_to(datagram, self.gw_rtp).await.unwrap();
    }

    /// BYE, and wait for its 200.
    pub async fn hangup(&self) {
        self.hangup_at(2).await;
    }

    /// BYE with CSeq `cseq` (after re-INVITEs), and wait for its 200.
    pub async fn hangup_at(&self, cseq: u32) {
        self.request("BYE", cseq, "bye").await;
        let done = format!("CSeq: {cseq} BYE");
        loop {
            let m = recv(&self.sip, Duration::from_secs(5))
                .await
                .expect("BYE answered");
            if status_of(&m) == Some(200) && String::from_utf8_lossy(&m).contains(&done) {
                return;
            }
        }
    }

    /// Our audio offer on `port` with `direction` (sendrecv, sendonly, ...).
    pub fn offer(port: u16, pt: u8, direction: &str) -> String {
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
        )
    }

    /// A re-INVITE (CSeq `cseq`) carrying `sdp`; returns the final answer
    /// once it came, a 2xx ACKed.
    pub async fn reinvite(&self, cseq: u32, sdp: &str) -> String {
        let branch = format!("reinv{cseq}");
        self.request_with(
            "INVITE",
            cseq,
            &branch,
            Some("application/sdp"),
            sdp.as_bytes(),
        )
        .await;
        let want = format!("CSeq: {cseq} INVITE");
        loop {
            let m = recv(&self.sip, Duration::from_secs(5))
                .await
                .expect("the re-INVITE answered");
            let text = String::from_utf8_lossy(&m).into_owned();
            match status_of(&m) {
                Some(code) if code >= 200 && text.contains(&want) => {
                    if code < 300 {
                        self.request("ACK", cseq, &format!("reack{cseq}")).await;
                    }
                    return text;
                }
                _ => {}
            }
        }
    }
}

impl TestCall {
    /// Waits (bounded) for the gateway's BYE and answers it.
    pub async fn expect_bye(&self, limit: Duration) {
        loop {
            let m = recv(&self.sip, limit).await.expect("the gateway's BYE");
            let text = String::from_utf8_lossy(&m).into_owned();
            if text.starts_with("BYE ") {
                let reply = format!(
                    "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                    header(&text, "Via").unwrap(),
                    header(&text, "From").unwrap(),
                    header(&text, "To").unwrap(),
                    self.call_id,
                    header(&text, "CSeq").unwrap()
                );
                self.sip.send_to(reply.as_bytes(), self.gw).await.unwrap();
                return;
            }
        }
    }
}
