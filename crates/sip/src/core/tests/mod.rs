//! Core behaviour with a hand-moved clock: no sockets, no sleeps.

use super::*;
use crate::admission::AdmissionConfig;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn peer() -> Peer {
    Peer {
        link: Link::Udp(0),
        addr: "192.0.2.7:5062".parse().unwrap(),
        local: "192.0.2.1:5060".parse().unwrap(),
    }
}

fn request(
    method: &str,
    branch: &str,
    call_id: &str,
    cseq: u32,
    to_tag: Option<&str>,
    body: &str,
) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:12368@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.7:5062;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:13800000000@192.0.2.7>;tag=caller1\r\n\
To: <sip:12368@192.0.2.1>{to_tag}\r\n\
Call-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\n\
Contact: <sip:13800000000@192.0.2.7:5062>\r\n\
{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

struct Harness {
    core: Core,
    now: Instant,
    sent: Vec<String>,
    /// Where each of `sent` went.
    dest: Vec<SocketAddr>,
    events: Vec<CallEvent>,
    /// REGISTERs handed to the registrar.
    registers: Vec<RegisterRequest>,
    /// MESSAGEs handed to the inbox.
    texts: Vec<TextRequest>,
    /// Our registration's outcomes.
    registrations: Vec<RegistrationState>,
}

impl Harness {
    fn new(cfg: CoreConfig) -> Harness {
        Harness {
            core: Core::new(cfg, Arc::new(Metrics::default())),
            now: Instant::now(),
            sent: Vec::new(),
            dest: Vec::new(),
            events: Vec::new(),
            registers: Vec::new(),
            texts: Vec::new(),
            registrations: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Send { data, to, .. } => {
                    self.sent.push(String::from_utf8_lossy(&data).into_owned());
                    self.dest.push(to);
                }
                Output::Event(e) => self.events.push(e),
                Output::Register(r) => self.registers.push(*r),
                Output::Text(t) => self.texts.push(*t),
                Output::Registration(r) => self.registrations.push(r),
                Output::Close(_) | Output::RequestDone { .. } => {}
            }
        }
    }

    fn input(&mut self, data: &[u8]) {
        self.core.on_message(data, peer(), self.now);
        self.drain();
    }

    fn command(&mut self, c: CallCommand) {
        self.core.on_command(c, self.now);
        self.drain();
    }

    /// Moves the clock to `at`, firing every timer due on the way.
    fn advance_to(&mut self, at: Instant) {
        while let Some(d) = self.core.next_deadline() {
            if d > at {
                break;
            }
            self.now = d;
            self.core.on_timers(d);
            self.drain();
        }
        self.now = at;
    }

    fn advance(&mut self, d: Duration) {
        let at = self.now + d;
        self.advance_to(at);
    }

    fn statuses(&self) -> Vec<String> {
        self.sent
            .iter()
            .map(|s| s.lines().next().unwrap_or("").to_string())
            .collect()
    }

    fn take(&mut self) -> Vec<String> {
        let s = self.statuses();
        self.sent.clear();
        s
    }

    fn incoming(&self) -> CallRef {
        self.events
            .iter()
            .find_map(|e| match e {
                CallEvent::Incoming { call, .. } => Some(*call),
                _ => None,
            })
            .expect("an incoming call")
    }

    fn to_tag(&self) -> String {
        let m = message::parse(
            self.sent.last().unwrap().as_bytes(),
            true,
            &Limits::default(),
        )
        .unwrap();
        m.to_tag.unwrap()
    }
}

fn rtp() -> SocketAddr {
    "192.0.2.1:20000".parse().unwrap()
}

#[test]
fn invite_is_answered_and_retransmissions_absorbed() {
    let mut h = Harness::new(CoreConfig::default());
    let invite = request("INVITE", "z9hG4bK1", "c1", 1, None, SDP);
    h.input(&invite);
    assert_eq!(h.take(), ["SIP/2.0 100 Trying", "SIP/2.0 180 Ringing"]);
    // A retransmitted INVITE: the last provisional again, never a second call.
    h.input(&invite);
    assert_eq!(h.take(), ["SIP/2.0 180 Ringing"]);
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let ok = h.sent.last().unwrap().clone();
    assert!(ok.starts_with("SIP/2.0 200 OK"));
    assert!(ok.contains("m=audio 20000 RTP/AVP 0 101"), "{ok}");
    h.take();
    // After the 2xx, INVITE copies are absorbed by the transaction (RFC 6026).
    h.input(&invite);
    assert!(h.take().is_empty());
    let incoming = h
        .events
        .iter()
        .filter(|e| matches!(e, CallEvent::Incoming { .. }))
        .count();
    assert_eq!(incoming, 1);
    assert_eq!(h.core.active_calls(), 1);
}

#[test]
fn two_xx_retransmitted_until_ack() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&request("INVITE", "z9hG4bK2", "c2", 1, None, SDP));
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let tag = h.to_tag();
    h.take();
    let start = h.now;
    h.advance(Duration::from_millis(3600));
    // Timer G: at 500, 1500 and 3500 ms.
    assert_eq!(h.take(), ["SIP/2.0 200 OK"; 3]);
    h.input(&request("ACK", "z9hG4bK3", "c2", 1, Some(&tag), ""));
    assert!(matches!(h.events.last(), Some(CallEvent::Confirmed { .. })));
    h.advance_to(start + Duration::from_secs(40));
    assert!(h.take().is_empty(), "no retransmission after the ACK");
    // BYE from the caller ends the call.
    h.input(&request("BYE", "z9hG4bK4", "c2", 2, Some(&tag), ""));
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
    assert!(matches!(
        h.events.last(),
        Some(CallEvent::Ended {
            reason: EndReason::CallerBye,
            ..
        })
    ));
    assert_eq!(h.core.active_calls(), 0);
    // A retransmitted BYE gets the same 200 from the transaction, not 481.
    h.input(&request("BYE", "z9hG4bK4", "c2", 2, Some(&tag), ""));
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
    // A new BYE for the finished dialog: 481.
    h.input(&request("BYE", "z9hG4bK5", "c2", 3, Some(&tag), ""));
    assert_eq!(h.take(), ["SIP/2.0 481 Call/Transaction Does Not Exist"]);
}

#[test]
fn missing_ack_tears_down_with_bye_after_64_t1() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&request("INVITE", "z9hG4bK6", "c6", 1, None, SDP));
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    h.take();
    let start = h.now;
    h.advance(Duration::from_millis(31_999));
    assert!(h
        .events
        .iter()
        .all(|e| !matches!(e, CallEvent::Ended { .. })));
    h.advance_to(start + Duration::from_secs(32));
    let sent = h.take();
    assert_eq!(
        sent.last().map(String::as_str),
        Some("BYE sip:13800000000@192.0.2.7:5062 SIP/2.0")
    );
    assert!(matches!(
        h.events.last(),
        Some(CallEvent::Ended {
            reason: EndReason::NoAck,
            ..
        })
    ));
    // The BYE is retransmitted (Timer E) until answered.
    h.advance(Duration::from_millis(600));
    assert_eq!(h.take(), ["BYE sip:13800000000@192.0.2.7:5062 SIP/2.0"]);
}

#[test]
fn cancel_before_answer_gives_200_and_487() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&request("INVITE", "z9hG4bK7", "c7", 1, None, SDP));
    h.take();
    h.input(&request("CANCEL", "z9hG4bK7", "c7", 1, None, ""));
    assert_eq!(
        h.take(),
        ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    );
    assert!(matches!(
        h.events.last(),
        Some(CallEvent::Ended {
            reason: EndReason::Cancelled,
            ..
        })
    ));
    // The call layer's answer arrives late (the race): nothing is sent.
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    assert!(h.take().is_empty());
    // 487 is retransmitted until the ACK, which stops it.
    h.advance(Duration::from_millis(600));
    assert_eq!(h.take(), ["SIP/2.0 487 Request Terminated"]);
    h.input(&request("ACK", "z9hG4bK7", "c7", 1, Some("x"), ""));
    h.advance(Duration::from_secs(10));
    assert!(h.take().is_empty());
}

#[test]
fn cancel_after_answer_has_no_effect() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&request("INVITE", "z9hG4bK8", "c8", 1, None, SDP));
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    h.take();
    h.input(&request("CANCEL", "z9hG4bK8", "c8", 1, None, ""));
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
    assert!(h
        .events
        .iter()
        .all(|e| !matches!(e, CallEvent::Ended { .. })));
    // A CANCEL for nothing: 481.
    h.input(&request("CANCEL", "z9hG4bK99", "c99", 1, None, ""));
    assert_eq!(h.take(), ["SIP/2.0 481 Call/Transaction Does Not Exist"]);
}

#[test]
fn max_calls_plus_one_gets_exactly_one_503() {
    // One source: trusted, so that only max_calls limits it.
    let mut h = Harness::new(CoreConfig {
        max_calls: 3,
        admission: AdmissionConfig {
            trusted: vec!["0.0.0.0/0".parse().unwrap()],
            ..Default::default()
        },
        ..Default::default()
    });
    for i in 0..4 {
        h.input(&request(
            "INVITE",
            &format!("z9hG4bKm{i}"),
            &format!("m{i}"),
            1,
            None,
            SDP,
        ));
    }
    let s = h.take();
    assert_eq!(s.iter().filter(|l| l.contains(" 503 ")).count(), 1);
    assert_eq!(s.iter().filter(|l| l.contains(" 180 ")).count(), 3);
    assert_eq!(h.core.active_calls(), 3);
}

#[test]
fn retry_after_on_503() {
    let mut h = Harness::new(CoreConfig {
        max_calls: 1,
        retry_after: 7,
        ..Default::default()
    });
    h.input(&request("INVITE", "z9hG4bKa", "a", 1, None, SDP));
    h.input(&request("INVITE", "z9hG4bKb", "b", 1, None, SDP));
    let last = h.sent.last().unwrap();
    assert!(last.starts_with("SIP/2.0 503"), "{last}");
    assert!(last.contains("Retry-After: 7\r\n"), "{last}");
}

#[test]
fn options_and_unsupported_methods() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&request("OPTIONS", "z9hG4bKo", "o", 1, None, ""));
    let ok = h.sent.pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200 OK"));
    assert!(ok.contains(&format!("Allow: {ALLOW}\r\n")), "{ok}");
    assert!(ok.contains("Accept: application/sdp"), "{ok}");
    assert!(ok.contains("Supported:"), "{ok}");
    h.input(&request("REGISTER", "z9hG4bKr", "r", 1, None, ""));
    let r = h.sent.pop().unwrap();
    assert!(
        r.starts_with("SIP/2.0 405 Method Not Allowed") && r.contains("Allow: "),
        "{r}"
    );
    h.input(&request("FROBNICATE", "z9hG4bKf", "f", 1, None, ""));
    let f = h.sent.pop().unwrap();
    assert!(
        f.starts_with("SIP/2.0 501 Not Implemented") && f.contains("Allow: "),
        "{f}"
    );
}

#[test]
fn no_common_codec_is_488_and_creates_no_call() {
    let mut h = Harness::new(CoreConfig::default());
    let g729 = SDP.replace("RTP/AVP 0 101", "RTP/AVP 18");
    h.input(&request("INVITE", "z9hG4bKg", "g", 1, None, &g729));
    assert_eq!(h.take(), ["SIP/2.0 488 Not Acceptable Here"]);
    assert!(h.events.is_empty());
    assert_eq!(h.core.active_calls(), 0);
}

#[test]
fn late_offer_takes_answer_from_ack() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&request("INVITE", "z9hG4bKl", "l", 1, None, ""));
    assert!(matches!(
        h.events[0],
        CallEvent::Incoming { media: None, .. }
    ));
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let ok = h.sent.last().unwrap().clone();
    assert!(ok.contains("m=audio 20000 RTP/AVP 8 0 101"), "{ok}");
    let tag = h.to_tag();
    h.input(&request("ACK", "z9hG4bKl2", "l", 1, Some(&tag), SDP));
    match h.events.last() {
        Some(CallEvent::Confirmed { media, .. }) => {
            assert_eq!(media.remote, Some("192.0.2.7:6000".parse().unwrap()));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn malformed_request_gets_400_and_creates_nothing() {
    let mut h = Harness::new(CoreConfig::default());
    let bad = String::from_utf8(request("INVITE", "z9hG4bKx", "x", 1, None, SDP))
        .unwrap()
        .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS");
    h.input(bad.as_bytes());
    assert_eq!(h.take(), ["SIP/2.0 400 CSeq Method Does Not Match Request"]);
    assert!(h.events.is_empty());
    // No Via: cannot be answered, dropped.
    let novia = bad.replace("Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKx\r\n", "");
    h.input(novia.as_bytes());
    assert!(h.take().is_empty());
    assert_eq!(
        h.core
            .metrics
            .sip_malformed_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn ring_delay_holds_the_200() {
    let mut h = Harness::new(CoreConfig {
        ring: Duration::from_secs(2),
        ..Default::default()
    });
    h.input(&request("INVITE", "z9hG4bKd", "d", 1, None, SDP));
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    assert_eq!(h.take(), ["SIP/2.0 100 Trying", "SIP/2.0 180 Ringing"]);
    h.advance(Duration::from_millis(1999));
    assert!(h.take().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
}

#[test]
fn local_hangup_sends_bye_in_dialog() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&request("INVITE", "z9hG4bKh", "h", 1, None, SDP));
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let tag = h.to_tag();
    h.input(&request("ACK", "z9hG4bKh2", "h", 1, Some(&tag), ""));
    h.take();
    h.command(CallCommand::Hangup { call });
    let bye = h.sent.last().unwrap().clone();
    assert!(
        bye.starts_with("BYE sip:13800000000@192.0.2.7:5062 SIP/2.0\r\n"),
        "{bye}"
    );
    assert!(
        bye.contains(&format!("From: <sip:12368@192.0.2.1>;tag={tag}\r\n")),
        "{bye}"
    );
    assert!(
        bye.contains("To: <sip:13800000000@192.0.2.7>;tag=caller1\r\n"),
        "{bye}"
    );
    assert!(bye.contains("CSeq: 1 BYE\r\n"), "{bye}");
    // The 200 for the BYE stops its retransmission.
    let branch = bye
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\nFrom: <sip:12368@192.0.2.1>;tag={tag}\r\nTo: <sip:13800000000@192.0.2.7>;tag=caller1\r\nCall-ID: h\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    h.sent.clear();
    h.input(ok.as_bytes());
    h.advance(Duration::from_secs(40));
    assert!(h.take().is_empty());
    assert_eq!(
        h.core
            .metrics
            .sip_stray_responses
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn idle_tcp_connection_closed_unless_it_carries_a_call() {
    let mut h = Harness::new(CoreConfig {
        tcp_idle: Duration::from_secs(10),
        ..Default::default()
    });
    h.core.on_connected(1, h.now);
    h.core.on_connected(2, h.now);
    let tcp2 = Peer {
        link: Link::Tcp(2),
        ..peer()
    };
    h.core.on_message(
        &request("INVITE", "z9hG4bKt", "t", 1, None, SDP),
        tcp2,
        h.now,
    );
    h.drain();
    let mut closed = Vec::new();
    let end = h.now + Duration::from_secs(30);
    while let Some(d) = h.core.next_deadline() {
        if d > end {
            break;
        }
        h.core.on_timers(d);
        while let Some(o) = h.core.poll_output() {
            if let Output::Close(c) = o {
                closed.push(c);
            }
        }
    }
    assert_eq!(closed, [1]);
}

#[test]
fn shutdown_ends_calls_and_refuses_new_ones() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&request("INVITE", "z9hG4bKs1", "s1", 1, None, SDP));
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let tag = h.to_tag();
    h.input(&request("ACK", "z9hG4bKs2", "s1", 1, Some(&tag), ""));
    h.input(&request("INVITE", "z9hG4bKs3", "s2", 1, None, SDP));
    h.take();
    h.core.shutdown(h.now);
    h.drain();
    // The answered call gets a BYE, the ringing one a 503.
    let mut sent = h.take();
    sent.sort();
    assert_eq!(
        sent,
        [
            "BYE sip:13800000000@192.0.2.7:5062 SIP/2.0",
            "SIP/2.0 503 Service Unavailable"
        ]
    );
    assert!(!h.core.idle(), "the BYE waits for its answer");
    h.input(&request("INVITE", "z9hG4bKs4", "s3", 1, None, SDP));
    assert_eq!(h.take(), ["SIP/2.0 503 Service Unavailable"]);
    assert_eq!(h.core.active_calls(), 0);
}

#[test]
fn message_out_of_dialog_reports_its_final_status() {
    let mut h = Harness::new(CoreConfig::default());
    let req = OutRequest {
        method: "MESSAGE",
        uri: "sip:8201@192.0.2.7:5062".into(),
        from: "sip:hotline@192.0.2.1".into(),
        content_type: "text/plain;charset=UTF-8".into(),
        body: Bytes::from("工单 2026-000001"),
        route: Vec::new(),
    };
    let id = h.core.send_request(&req, peer(), h.now);
    h.drain();
    let sent = h.sent.pop().unwrap();
    assert!(
        sent.starts_with("MESSAGE sip:8201@192.0.2.7:5062 SIP/2.0\r\n"),
        "{sent}"
    );
    assert!(sent.contains("Content-Type: text/plain;charset=UTF-8\r\n"));
    assert!(sent.ends_with("\r\n\r\n工单 2026-000001"));
    // Retransmitted until answered.
    h.advance(Duration::from_millis(600));
    assert_eq!(h.take(), ["MESSAGE sip:8201@192.0.2.7:5062 SIP/2.0"]);
    let m = message::parse(sent.as_bytes(), true, &Limits::default()).unwrap();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=x\r\nCall-ID: {}\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
        m.reply.vias[0], m.reply.from, m.reply.to, m.call_id
    );
    let mut done = Vec::new();
    h.core.on_message(ok.as_bytes(), peer(), h.now);
    while let Some(o) = h.core.poll_output() {
        if let Output::RequestDone { id: i, status } = o {
            done.push((i, status));
        }
    }
    assert_eq!(done, [(id, Some(200))]);
    h.advance(Duration::from_secs(40));
    assert!(h.take().is_empty(), "no retransmission after the answer");

    // Nobody answers: `None` after 64*T1.
    let id = h.core.send_request(&req, peer(), h.now);
    let mut done = Vec::new();
    let end = h.now + Duration::from_secs(33);
    while let Some(d) = h.core.next_deadline() {
        if d > end {
            break;
        }
        h.core.on_timers(d);
        while let Some(o) = h.core.poll_output() {
            if let Output::RequestDone { id: i, status } = o {
                done.push((i, status));
            }
        }
    }
    assert_eq!(done, [(id, None)]);
}

/// A response from the callee to the INVITE `sent`.
fn answer(sent: &str, code: u16, reason: &str, to_tag: &str, body: &str) -> String {
    let m = message::parse(sent.as_bytes(), true, &Limits::default()).unwrap();
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {code} {reason}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag={to_tag}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
Contact: <sip:officer@192.0.2.7:5062>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        m.reply.vias[0],
        m.reply.from,
        m.reply.to,
        m.call_id,
        m.reply.cseq,
        body.len()
    )
}

fn dial(h: &mut Harness) -> (CallRef, String) {
    dial_with(h, Duration::from_secs(20))
}

/// Places a call that may ring for `ring`.
fn dial_with(h: &mut Harness, ring: Duration) -> (CallRef, String) {
    let d = Dial {
        uri: "sip:8201@192.0.2.7:5062".into(),
        from_uri: "sip:hotline@192.0.2.1".into(),
        rtp: rtp(),
        ring_timeout: ring,
        credentials: Some(("hotline".into(), "secret".into())),
        route: Vec::new(),
    };
    let call = h.core.dial(&d, peer(), h.now);
    h.drain();
    let invite = h.sent.pop().unwrap();
    assert!(
        invite.starts_with("INVITE sip:8201@192.0.2.7:5062 SIP/2.0\r\n"),
        "{invite}"
    );
    assert!(invite.contains("m=audio 20000 RTP/AVP 8 0 101"), "{invite}");
    (call, invite)
}

impl Harness {
    /// A message from another source address.
    fn input_from(&mut self, data: &[u8], addr: &str) {
        let p = Peer {
            addr: addr.parse().unwrap(),
            ..peer()
        };
        self.core.on_message(data, p, self.now);
        self.drain();
    }

    fn counter(&self, name: &str) -> u64 {
        self.core.metrics.get(name)
    }
}

fn header_values<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .collect()
}

fn response_to(req: &str, code: u16, reason: &str) -> String {
    let m = message::parse(req.as_bytes(), true, &Limits::default()).unwrap();
    format!(
        "SIP/2.0 {code} {reason}\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        m.reply.vias[0], m.reply.from, m.reply.to, m.call_id, m.reply.cseq
    )
}

mod hostile;
mod inbox;
mod midcall;
mod placing;
mod register;
mod registrar;
mod routing;

#[test]
fn the_tables_give_back_their_room_after_a_burst() {
    // A trusted source (a PBX): no per-source limit refuses the burst.
    let mut cfg = CoreConfig::default();
    cfg.admission.trusted = vec!["192.0.2.7/32".parse().unwrap()];
    let mut h = Harness::new(cfg);
    for i in 0..2000 {
        let (branch, call_id) = (format!("z9hG4bKburst{i}"), format!("burst{i}"));
        h.input(&request("OPTIONS", &branch, &call_id, 1, None, ""));
    }
    let ok = h
        .take()
        .iter()
        .filter(|s| s.starts_with("SIP/2.0 200"))
        .count();
    assert_eq!(ok, 2000);
    // Each waits out Timer J (64·T1 = 32 s) in the tables.
    assert_eq!(h.core.txs.len(), 2000);
    assert!(h.core.txs.capacity() >= 2000);
    assert!(h.core.tx_index.capacity() >= 2000);
    h.advance(Duration::from_secs(40));
    assert!(h.core.txs.is_empty() && h.core.tx_index.is_empty());
    for (table, capacity) in [
        ("txs", h.core.txs.capacity()),
        ("tx_index", h.core.tx_index.capacity()),
        ("armed", h.core.armed.capacity()),
        ("timers", h.core.timers.capacity()),
    ] {
        assert!(capacity <= 64, "{table} keeps room for {capacity}");
    }
}
