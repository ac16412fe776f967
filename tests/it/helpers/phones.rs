//! Phones of the test: a caller over raw UDP (`TestCall`: SIP by hand, RTP
//! packets exactly as a test wants them: reordered, duplicated, lost,
//! foreign, malformed), one side's media in real time (`Side`), an
//! officer's phone that takes pages, and softphones registering with the
//! gateway.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hotline::sip::digest;
use rtc_rtp::{Header, Packet};
use rtc_shared::marshal::{Marshal, MarshalSize};
use tokio::net::UdpSocket;

use super::*;

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
        let invite = Invite::new(call_id, me)
            .from(from)
            .headers(headers)
            .media(media(rtp.local_addr().unwrap().port()));
        sip.send_to(invite.to_string().as_bytes(), gw)
            .await
            .unwrap();
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

/// One side's media over RTP by hand (a caller's `TestCall::rtp`, or the
/// socket a SIPp phone's media goes to), 20 ms at a time: what it sends,
/// what it heard (decoded).
pub struct Side<'a> {
    sock: &'a UdpSocket,
    /// Where the gateway's leg for this side takes RTP (learnt from what
    /// it sends when not known).
    pub to: Option<SocketAddr>,
    pt: u8,
    encode: fn(i16) -> u8,
    decode: fn(u8) -> i16,
    seq: u16,
    pub heard: Vec<i16>,
}

impl<'a> Side<'a> {
    /// `pt`: 0 PCMU, 8 PCMA.
    pub fn new(sock: &'a UdpSocket, to: Option<SocketAddr>, pt: u8) -> Side<'a> {
        let mu = pt == 0;
        let encode = if mu {
            hotline::media::g711::linear_to_ulaw
        } else {
            hotline::media::g711::linear_to_alaw
        };
        let decode = if mu {
            hotline::media::g711::ulaw_to_linear
        } else {
            hotline::media::g711::alaw_to_linear
        };
        Side {
            sock,
            to,
            pt,
            encode,
            decode,
            seq: 0,
            heard: Vec::new(),
        }
    }

    /// Keeps what arrived (the gateway's address learnt from it).
    pub fn drain(&mut self) {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = self.sock.try_recv_from(&mut buf) {
            self.to.get_or_insert(from);
            if n > 12 && buf[1] & 0x7f == self.pt {
                self.heard
                    .extend(buf[12..n].iter().map(|b| (self.decode)(*b)));
            }
        }
    }

    /// One frame of 160 samples.
    pub async fn send(&mut self, frame: &[i16]) {
        self.drain();
        let Some(to) = self.to else { return };
        let payload: Vec<u8> = frame.iter().map(|s| (self.encode)(*s)).collect();
        self.seq = self.seq.wrapping_add(1);
        let p = TestCall::packet(self.seq, u32::from(self.seq) * 160, self.pt, &payload);
        self.sock.send_to(&p, to).await.unwrap();
    }

    /// Key `event` (RFC 4733: three updates, then the end three times).
    pub async fn key(&mut self, event: u8) {
        let Some(to) = self.to else { return };
        let ts = u32::from(self.seq.wrapping_add(1)) * 160;
        for (i, end) in [
            (1u16, false),
            (2, false),
            (3, false),
            (4, true),
            (4, true),
            (4, true),
        ] {
            self.seq = self.seq.wrapping_add(1);
            let d = (i * 160).to_be_bytes();
            let payload = [event, if end { 0x80 | 10 } else { 10 }, d[0], d[1]];
            let p = TestCall::packet(self.seq, ts, 101, &payload);
            self.sock.send_to(&p, to).await.unwrap();
        }
    }
}

/// A SIP phone that answers every request with 200 and counts MESSAGEs
/// (pages: a shift handover's summary is answered, not kept).
pub async fn phone() -> (
    std::net::SocketAddr,
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<Vec<String>>>,
) {
    phone_keeping(false).await
}

/// As [`phone`], keeping the handovers' summaries too when `handovers`.
pub async fn phone_keeping(
    handovers: bool,
) -> (
    std::net::SocketAddr,
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<Vec<String>>>,
) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, b) = (count.clone(), bodies.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !text.starts_with("MESSAGE ") {
                continue;
            }
            let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
            if handovers || !body.contains("交接班") {
                c.fetch_add(1, Ordering::SeqCst);
                b.lock().unwrap().push(body);
            }
            let ok = ok_to(&text, Some("ph"));
            let _ = sock.send_to(ok.as_bytes(), from).await;
        }
    });
    (addr, count, bodies)
}

/// A phone that rings for every call and is never answered: 180 to each
/// INVITE, a CANCEL answered 200 and its INVITE 487 (the ACK taken),
/// anything else 200. Keeps each call's first INVITE, in order.
pub async fn ringing_phone() -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let invites = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = invites.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut rung = std::collections::HashSet::new();
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let (Some(call_id), Some(cseq)) = (header(&text, "Call-ID"), header(&text, "CSeq"))
            else {
                continue;
            };
            let answer = |status: &str, cseq: &str| {
                format!(
                    "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=ringing\r\nCall-ID: {call_id}\r\n\
CSeq: {cseq}\r\nContact: <sip:officer@{addr}>\r\nContent-Length: 0\r\n\r\n",
                    header(&text, "Via").unwrap_or_default(),
                    header(&text, "From").unwrap_or_default(),
                    header(&text, "To").unwrap_or_default(),
                )
            };
            let answers = match text.split(' ').next() {
                Some("INVITE") => {
                    if rung.insert(call_id.to_string()) {
                        kept.lock().unwrap().push(text.clone());
                    }
                    vec![answer("180 Ringing", cseq)]
                }
                // The CANCEL's Via and CSeq number are its INVITE's.
                Some("CANCEL") => {
                    let n = cseq.split(' ').next().unwrap_or("1");
                    vec![
                        answer("200 OK", cseq),
                        answer("487 Request Terminated", &format!("{n} INVITE")),
                    ]
                }
                Some("ACK") | Some("SIP/2.0") => vec![],
                _ => vec![answer("200 OK", cseq)],
            };
            for a in answers {
                let _ = sock.send_to(a.as_bytes(), from).await;
            }
        }
    });
    (addr, invites)
}

pub const PASSWORD: &str = "softphone-secret-1";

/// The test gateway as the softphones' registrar, with p-sun (the court
/// police officer on duty at every hour of the test roster) to be called
/// at their registered softphone.
pub async fn registrar() -> Gateway {
    let mut s = settings();
    let roster = offline(&test_roster_text())
        .replace(
            "police = [\"p-sun\", \"p-zhou\", \"p-wu\"]",
            "police = [\"p-sun\"]",
        )
        .replace(
            "phone = \"+8613800000020\"",
            "phone = \"+8613800000020\"\nsip = \"registered\"",
        );
    s.roster.file = test_roster(&roster);
    s.registrar = Some(toml::from_str("").unwrap());
    let gw = Gateway::start(s).await;
    gw.store
        .set_sip_ha1("p-sun", &digest::ha1("p-sun", "hotline", PASSWORD))
        .await
        .unwrap();
    gw
}

/// A REGISTER for `user` from `from` (UDP or TCP) asking for `expires`
/// seconds, with `extra` headers (credentials).
pub fn register_request(
    user: &str,
    from: SocketAddr,
    transport: &str,
    cseq: u32,
    expires: u32,
    extra: &str,
) -> String {
    let tp = transport.to_ascii_lowercase();
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/{transport} {from};branch=z9hG4bK-reg-{user}-{cseq}\r\n\
Max-Forwards: 70\r\n\
From: <sip:{user}@127.0.0.1>;tag=sp{cseq}\r\n\
To: <sip:{user}@127.0.0.1>\r\n\
Call-ID: softphone-{user}-{from}\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: <sip:{user}@{from};transport={tp}>\r\n\
Expires: {expires}\r\n\
{extra}Content-Length: 0\r\n\r\n"
    )
}

/// Over UDP: REGISTER for 60 s, the challenge, then `password`'s answer;
/// the final response.
pub async fn register_udp(
    gw: &Gateway,
    sock: &UdpSocket,
    user: &str,
    password: &str,
    cseq: u32,
) -> String {
    register_for(gw, sock, user, password, cseq, 60).await
}

/// As [`register_udp`], asking for `expires` seconds.
pub async fn register_for(
    gw: &Gateway,
    sock: &UdpSocket,
    user: &str,
    password: &str,
    cseq: u32,
    expires: u32,
) -> String {
    let from = sock.local_addr().unwrap();
    sock.send_to(
        register_request(user, from, "UDP", cseq, expires, "").as_bytes(),
        gw.udp,
    )
    .await
    .unwrap();
    let challenge = String::from_utf8(
        recv(sock, Duration::from_secs(5))
            .await
            .expect("a challenge"),
    )
    .unwrap();
    assert!(challenge.starts_with("SIP/2.0 401 "), "{challenge}");
    let ch =
        digest::parse(header(&challenge, "WWW-Authenticate").unwrap()).expect("a digest challenge");
    assert_eq!(ch.realm, "hotline");
    let auth = digest::authorization(&ch, user, password, "REGISTER", "sip:127.0.0.1", "c0ffee");
    sock.send_to(
        register_request(
            user,
            from,
            "UDP",
            cseq + 1,
            expires,
            &format!("Authorization: {auth}\r\n"),
        )
        .as_bytes(),
        gw.udp,
    )
    .await
    .unwrap();
    String::from_utf8(recv(sock, Duration::from_secs(5)).await.expect("an answer")).unwrap()
}

/// What a webhook receiver does with the first pages posted to it (a shift
/// handover's summary, 交接班, is no page: it is always taken).
#[derive(Debug, Clone, Copy)]
pub enum FirstPages {
    /// Every post is taken.
    Taken,
    /// The first `n` pages are answered 503, later ones taken.
    Refused(usize),
    /// The first page is held for a minute before it is taken (a receiver
    /// that hangs).
    Held,
}

/// A webhook receiver at `http://{addr}/hook` that keeps every post's body,
/// in order, and answers as `first` says (`{"errcode":0}` when it takes
/// one, as WeCom does).
pub async fn webhook(first: FirstPages) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::http::StatusCode;
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let pages = Arc::new(AtomicUsize::new(0));
    let (b, p) = (bodies.clone(), pages.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let (b, p) = (b.clone(), p.clone());
            async move {
                let page = !body.contains("交接班");
                b.lock().unwrap().push(body);
                let n = if page {
                    p.fetch_add(1, Ordering::SeqCst)
                } else {
                    usize::MAX
                };
                match first {
                    FirstPages::Refused(k) if n < k => {
                        return (StatusCode::SERVICE_UNAVAILABLE, "busy");
                    }
                    FirstPages::Held if n == 0 => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    _ => {}
                }
                (StatusCode::OK, "{\"errcode\":0}")
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (addr, bodies)
}
