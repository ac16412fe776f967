//! Core behaviour with a hand-moved clock: no sockets, no sleeps.

use super::*;
use crate::sip::admission::AdmissionConfig;

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
}

impl Harness {
    fn new(cfg: CoreConfig) -> Harness {
        Harness {
            core: Core::new(cfg, Arc::new(Metrics::default())),
            now: Instant::now(),
            sent: Vec::new(),
            dest: Vec::new(),
            events: Vec::new(),
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
    let d = Dial {
        uri: "sip:8201@192.0.2.7:5062".into(),
        from_uri: "sip:hotline@192.0.2.1".into(),
        rtp: rtp(),
        ring_timeout: Duration::from_secs(20),
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

#[test]
fn placed_call_answered_acked_and_ended_by_the_callee() {
    let mut h = Harness::new(CoreConfig::default());
    let (call, invite) = dial(&mut h);
    // Timer A: 500 ms, then 1 s later.
    h.advance(Duration::from_millis(1600));
    assert_eq!(h.take().len(), 2);
    h.input(answer(&invite, 180, "Ringing", "ph1", "").as_bytes());
    h.advance(Duration::from_secs(5));
    assert!(h.take().is_empty(), "no retransmission once it rings");
    let ok = answer(&invite, 200, "OK", "ph1", SDP);
    h.input(ok.as_bytes());
    let ack = h.sent.pop().unwrap();
    assert!(
        ack.starts_with("ACK sip:officer@192.0.2.7:5062 SIP/2.0\r\n"),
        "{ack}"
    );
    assert!(
        ack.contains(";tag=ph1\r\n") && ack.contains("CSeq: 1 ACK\r\n"),
        "{ack}"
    );
    match h.events.last() {
        Some(CallEvent::Confirmed { call: c, media }) => {
            assert_eq!(*c, call);
            assert_eq!(media.remote, Some("192.0.2.7:6000".parse().unwrap()));
        }
        e => panic!("{e:?}"),
    }
    // A copy of the 200 gets the same ACK again.
    h.input(ok.as_bytes());
    assert_eq!(h.sent.pop().unwrap(), ack);
    // The callee hangs up: their BYE carries our tag as To tag.
    let m = message::parse(invite.as_bytes(), true, &Limits::default()).unwrap();
    let bye = format!(
        "BYE sip:hotline@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKcb\r\nFrom: <sip:8201@192.0.2.7:5062>;tag=ph1\r\n\
To: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        m.reply.from, m.call_id
    );
    h.input(bye.as_bytes());
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
    assert!(matches!(
        h.events.last(),
        Some(CallEvent::Ended {
            reason: EndReason::CallerBye,
            ..
        })
    ));
}

#[test]
fn placed_call_rejected_is_acked_on_its_branch() {
    let mut h = Harness::new(CoreConfig::default());
    let (call, invite) = dial(&mut h);
    h.input(answer(&invite, 486, "Busy Here", "ph2", "").as_bytes());
    let ack = h.sent.pop().unwrap();
    let branch = |s: &str| {
        s.split("branch=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    assert!(ack.starts_with("ACK "), "{ack}");
    assert_eq!(branch(&ack), branch(&invite));
    let events_after_rejection = h.events.len();
    assert!(
        matches!(h.events.last(), Some(CallEvent::Ended { call: c, reason: EndReason::Rejected(486) }) if *c == call)
    );
    assert_eq!(h.core.active_calls(), 0);
    // The ACK was lost: each copy of the 486 gets it again until Timer D
    // (64·T1 over UDP), and nothing after.
    let busy = answer(&invite, 486, "Busy Here", "ph2", "");
    h.advance(Duration::from_secs(1));
    h.input(busy.as_bytes());
    assert_eq!(h.sent.pop().as_deref(), Some(ack.as_str()));
    h.advance(Duration::from_secs(30));
    h.input(busy.as_bytes());
    assert_eq!(h.sent.pop().as_deref(), Some(ack.as_str()));
    h.advance(Duration::from_secs(1));
    h.input(busy.as_bytes());
    assert_eq!(h.sent.pop(), None, "after Timer D");
    assert_eq!(h.events.len(), events_after_rejection);
}

#[test]
fn placed_call_nobody_answers_timer_b() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, _) = dial(&mut h);
    h.advance(Duration::from_secs(33));
    assert!(matches!(
        h.events.last(),
        Some(CallEvent::Ended {
            reason: EndReason::Rejected(408),
            ..
        })
    ));
}

#[test]
fn placed_call_ringing_too_long_is_cancelled() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, invite) = dial(&mut h);
    h.input(answer(&invite, 180, "Ringing", "ph3", "").as_bytes());
    h.take();
    h.advance(Duration::from_secs(20));
    let sent = h.take();
    assert_eq!(sent, ["CANCEL sip:8201@192.0.2.7:5062 SIP/2.0"]);
    h.input(answer(&invite, 487, "Request Terminated", "ph3", "").as_bytes());
    assert_eq!(h.take(), ["ACK sip:8201@192.0.2.7:5062 SIP/2.0"]);
    assert!(matches!(
        h.events.last(),
        Some(CallEvent::Ended {
            reason: EndReason::Hangup,
            ..
        })
    ));
}

#[test]
fn placed_call_hung_up_by_us_sends_bye_in_its_dialog() {
    let mut h = Harness::new(CoreConfig::default());
    let (call, invite) = dial(&mut h);
    h.input(answer(&invite, 200, "OK", "ph4", SDP).as_bytes());
    h.take();
    h.command(CallCommand::Hangup { call });
    let bye = h.sent.pop().unwrap();
    assert!(
        bye.starts_with("BYE sip:officer@192.0.2.7:5062 SIP/2.0\r\n"),
        "{bye}"
    );
    assert!(bye.contains("From: <sip:hotline@192.0.2.1>;tag="), "{bye}");
    assert!(
        bye.contains("To: <sip:8201@192.0.2.7:5062>;tag=ph4\r\n"),
        "{bye}"
    );
    assert!(bye.contains("CSeq: 2 BYE\r\n"), "{bye}");
}

#[test]
fn placed_call_answers_a_digest_challenge_once() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, invite) = dial(&mut h);
    let challenge = answer(&invite, 407, "Proxy Authentication Required", "px", "").replace(
        "Contact:",
        "Proxy-Authenticate: Digest realm=\"court\", nonce=\"n1\", qop=\"auth\"\r\nContact:",
    );
    h.input(challenge.as_bytes());
    let sent = std::mem::take(&mut h.sent);
    assert!(sent[0].starts_with("ACK "), "{}", sent[0]);
    let again = &sent[1];
    assert!(
        again.starts_with("INVITE sip:8201@192.0.2.7:5062 SIP/2.0\r\n"),
        "{again}"
    );
    assert!(again.contains("CSeq: 2 INVITE\r\n"), "{again}");
    assert!(
        again.contains(
            "Proxy-Authorization: Digest username=\"hotline\", realm=\"court\", nonce=\"n1\""
        ),
        "{again}"
    );
    assert!(h.events.is_empty(), "the call goes on");
    // A second challenge is not answered again: the call fails.
    h.input(
        answer(again, 407, "Proxy Authentication Required", "px", "")
            .replace(
                "Contact:",
                "Proxy-Authenticate: Digest realm=\"court\", nonce=\"n2\"\r\nContact:",
            )
            .as_bytes(),
    );
    assert!(matches!(
        h.events.last(),
        Some(CallEvent::Ended {
            reason: EndReason::Rejected(407),
            ..
        })
    ));
}

#[test]
fn an_answer_crossing_our_cancel_gets_ack_and_bye() {
    let mut h = Harness::new(CoreConfig::default());
    let (call, invite) = dial(&mut h);
    h.input(answer(&invite, 180, "Ringing", "ph5", "").as_bytes());
    h.advance(Duration::from_secs(20));
    assert_eq!(h.take(), ["CANCEL sip:8201@192.0.2.7:5062 SIP/2.0"]);
    h.input(answer(&invite, 200, "OK", "ph5", SDP).as_bytes());
    let sent = h.take();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[0].starts_with("ACK ") && sent[1].starts_with("BYE "),
        "{sent:?}"
    );
    assert!(
        matches!(h.events.last(), Some(CallEvent::Ended { call: c, reason: EndReason::Hangup }) if *c == call)
    );
    assert_eq!(h.core.active_calls(), 0);
}

// ----- hostile traffic ------------------------------------------------------

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

fn options_req(branch: &str, user_agent: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:12368@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.7:5062;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:probe@192.0.2.7>;tag=p\r\n\
To: <sip:12368@192.0.2.1>\r\n\
Call-ID: {branch}\r\n\
CSeq: 1 OPTIONS\r\n\
User-Agent: {user_agent}\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn the_datagram_that_panicked_the_sip_thread_is_refused() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(b"OPTIONS sip:a@b SIP\xc3\xa9\r\n\r\n");
    // No Via: nothing can be answered; dropped and counted, no panic.
    assert!(h.take().is_empty());
    assert_eq!(h.counter("sip_panics"), 0);
    assert_eq!(h.counter("sip_malformed_dropped"), 1);
    // With a Via it gets its 400 (the version is not SIP/2.0).
    let bad = String::from_utf8(options_req("z9hG4bKv", "x"))
        .unwrap()
        .replace("SIP/2.0\r\nVia", "SIPé\r\nVia");
    h.input(bad.as_bytes());
    assert_eq!(h.take(), ["SIP/2.0 400 Malformed SIP-Version"]);
    // And the core still answers.
    h.input(&options_req("z9hG4bKok", "x"));
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
}

#[test]
fn an_invite_flood_gets_stateless_503s_then_silence_and_others_still_get_in() {
    let mut h = Harness::new(CoreConfig {
        admission: AdmissionConfig {
            invites_per_second: 2,
            ban_after: 10,
            ..Default::default()
        },
        ..Default::default()
    });
    // A burst of twice the rate passes; then 503 + Retry-After, kept nowhere.
    for i in 0..8 {
        h.input(&request(
            "INVITE",
            &format!("z9hG4bKf{i}"),
            &format!("f{i}"),
            1,
            None,
            SDP,
        ));
    }
    let s = h.take();
    assert_eq!(s.iter().filter(|l| l.ends_with(" 180 Ringing")).count(), 4);
    assert_eq!(
        s.iter()
            .filter(|l| *l == "SIP/2.0 503 Service Unavailable")
            .count(),
        4
    );
    assert_eq!(h.core.active_calls(), 4);
    let txs = h.core.txs.len();
    // A retransmission of a refused INVITE gets the same answer, to the byte.
    h.input(&request("INVITE", "z9hG4bKf5", "f5", 1, None, SDP));
    let first = h.sent.pop().unwrap();
    h.input(&request("INVITE", "z9hG4bKf5", "f5", 1, None, SDP));
    assert_eq!(h.sent.pop().unwrap(), first);
    assert!(first.contains("Retry-After: 30\r\n"), "{first}");
    assert_eq!(h.core.txs.len(), txs, "no transaction for a refusal");
    // Six strikes so far; the tenth bans the source: dropped unanswered
    // from then on, even an OPTIONS.
    for i in 0..3 {
        h.input(&request(
            "INVITE",
            &format!("z9hG4bKg{i}"),
            &format!("g{i}"),
            1,
            None,
            SDP,
        ));
    }
    assert_eq!(h.take().len(), 3);
    h.input(&request("INVITE", "z9hG4bKg9", "g9", 1, None, SDP));
    assert!(h.take().is_empty(), "the tenth strike is not answered");
    h.input(&options_req("z9hG4bKo1", "x"));
    assert!(h.take().is_empty());
    assert!(h.counter("sip_banned_dropped") >= 1);
    // Another address is served.
    h.input_from(&options_req("z9hG4bKo2", "x"), "192.0.2.99:5060");
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
    // The ban ends.
    h.advance(Duration::from_secs(301));
    h.take();
    h.input(&options_req("z9hG4bKo3", "x"));
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
}

#[test]
fn calls_in_progress_are_never_refused_by_the_limits() {
    let mut h = Harness::new(CoreConfig {
        admission: AdmissionConfig {
            requests_per_second: 1,
            ..Default::default()
        },
        ..Default::default()
    });
    h.input(&request("INVITE", "z9hG4bKa", "a", 1, None, SDP));
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let tag = h
        .sent
        .last()
        .unwrap()
        .split("tag=")
        .nth(2)
        .unwrap()
        .split('\r')
        .next()
        .unwrap()
        .to_string();
    h.input(&request("ACK", "z9hG4bKa2", "a", 1, Some(&tag), ""));
    h.take();
    // Use up the source's allowance, then send in-dialog requests: answered.
    while h.counter("sip_refused_stateless") == 0 {
        h.input(&options_req(&format!("z9hG4bKx{}", h.sent.len()), "x"));
    }
    h.take();
    for i in 0..20 {
        h.input(&request(
            "INFO",
            &format!("z9hG4bKi{i}"),
            "a",
            2 + i,
            Some(&tag),
            "",
        ));
    }
    assert!(h.take().iter().all(|l| l == "SIP/2.0 200 OK"));
    h.input(&request("BYE", "z9hG4bKbye", "a", 40, Some(&tag), ""));
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
}

#[test]
fn scanners_are_dropped_unanswered() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&options_req("z9hG4bKs1", "friendly-scanner"));
    let invite = String::from_utf8(request("INVITE", "z9hG4bKs2", "s2", 1, None, SDP))
        .unwrap()
        .replace(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nUser-Agent: sipvicious 0.3\r\n",
        );
    h.input(invite.as_bytes());
    assert!(h.take().is_empty());
    assert_eq!(h.core.active_calls(), 0);
    assert_eq!(h.counter("sip_scanner_dropped"), 2);
    assert!(h.events.is_empty());
}

#[test]
fn over_the_transaction_bound_answers_are_stateless() {
    let mut h = Harness::new(CoreConfig {
        admission: AdmissionConfig {
            transactions_per_source: 3,
            ..Default::default()
        },
        ..Default::default()
    });
    for i in 0..6 {
        h.input(&options_req(&format!("z9hG4bKt{i}"), "x"));
    }
    assert_eq!(h.take().len(), 6, "every OPTIONS answered");
    assert_eq!(h.core.txs.len(), 3);
    assert_eq!(h.counter("sip_stateless_answers"), 3);
    // An INVITE now gets a stateless 503: it could not be kept.
    h.input(&request("INVITE", "z9hG4bKt9", "t9", 1, None, SDP));
    assert_eq!(h.take(), ["SIP/2.0 503 Service Unavailable"]);
    // Transactions end (Timer J), the room comes back.
    h.advance(Duration::from_secs(40));
    h.input(&request("INVITE", "z9hG4bKt10", "t10", 1, None, SDP));
    assert!(h.take().iter().any(|l| l.ends_with(" 180 Ringing")));
}

#[test]
fn a_late_media_clock_sheds_new_calls() {
    let load = Arc::new(Load::default());
    let mut h = Harness::new(CoreConfig {
        load: load.clone(),
        ..Default::default()
    });
    load.tick(h.now, h.now + Duration::from_millis(200));
    h.input(&request("INVITE", "z9hG4bKl1", "l1", 1, None, SDP));
    let refused = h.sent.last().unwrap().clone();
    assert!(refused.starts_with("SIP/2.0 503 Service Unavailable\r\n"));
    assert!(refused.contains("Retry-After: "));
    assert_eq!(h.counter("sip_shed"), 1);
    // Two seconds without a late tick: calls are taken again.
    h.advance(Duration::from_secs(3));
    h.input(&request("INVITE", "z9hG4bKl2", "l2", 1, None, SDP));
    assert!(h.take().iter().any(|l| l.ends_with(" 180 Ringing")));
}

#[test]
fn the_untrusted_share_of_max_calls_is_kept_for_others() {
    let mut h = Harness::new(CoreConfig {
        max_calls: 5,
        admission: AdmissionConfig {
            trusted: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        },
        ..Default::default()
    });
    // One untrusted source with calls up takes at most 80 % (4 of 5).
    for i in 0..5 {
        h.input(&request(
            "INVITE",
            &format!("z9hG4bKu{i}"),
            &format!("u{i}"),
            1,
            None,
            SDP,
        ));
    }
    let s = h.take();
    assert_eq!(s.iter().filter(|l| l.ends_with(" 180 Ringing")).count(), 4);
    // The last slot is there for the court's PBX.
    h.input_from(
        &request("INVITE", "z9hG4bKp1", "p1", 1, None, SDP),
        "10.1.2.3:5060",
    );
    assert!(h.take().iter().any(|l| l.ends_with(" 180 Ringing")));
    assert_eq!(h.core.active_calls(), 5);
}

// ----- routing (RFC 3261 §12) -------------------------------------------------

/// An INVITE as a record-routing proxy at 192.0.2.50 forwards it.
fn proxied_invite(rr: &str, extra: &str) -> Vec<u8> {
    String::from_utf8(request("INVITE", "z9hG4bKrr", "rr", 1, None, SDP))
        .unwrap()
        .replace(
            "Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKrr\r\n",
            &format!(
                "Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKp1\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKrr\r\n{rr}{extra}"
            ),
        )
        .into_bytes()
}

fn header_values<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .collect()
}

fn proxy() -> &'static str {
    "192.0.2.50:5060"
}

#[test]
fn a_proxied_call_copies_record_route_and_routes_its_bye_through_the_proxies() {
    let mut h = Harness::new(CoreConfig::default());
    let rr = "Record-Route: <sip:192.0.2.50;lr;ftag=caller1>\r\nRecord-Route: <sip:10.0.0.9;lr>, <sip:10.0.0.10;lr>\r\n";
    h.input_from(&proxied_invite(rr, ""), proxy());
    let call = h.incoming();
    let ringing = h
        .sent
        .iter()
        .find(|m| m.starts_with("SIP/2.0 180"))
        .unwrap()
        .clone();
    let expected = [
        "<sip:192.0.2.50;lr;ftag=caller1>",
        "<sip:10.0.0.9;lr>",
        "<sip:10.0.0.10;lr>",
    ];
    assert_eq!(
        header_values(&ringing, "Record-Route"),
        expected,
        "{ringing}"
    );
    // Both Vias back, in order, the response to the proxy.
    assert_eq!(header_values(&ringing, "Via").len(), 2);
    assert!(h.dest.iter().all(|d| *d == proxy().parse().unwrap()));
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let ok = h.sent.last().unwrap().clone();
    assert!(ok.starts_with("SIP/2.0 200 OK"));
    assert_eq!(header_values(&ok, "Record-Route"), expected, "{ok}");
    let tag = h.to_tag();
    h.input_from(
        &request("ACK", "z9hG4bKrr2", "rr", 1, Some(&tag), ""),
        proxy(),
    );
    h.take();
    h.dest.clear();
    // Our BYE: Request-URI the caller's Contact, Route the set in order,
    // to the first route (loose routing).
    h.command(CallCommand::Hangup { call });
    let bye = h.sent.last().unwrap().clone();
    assert!(
        bye.starts_with("BYE sip:13800000000@192.0.2.7:5062 SIP/2.0\r\n"),
        "{bye}"
    );
    assert_eq!(header_values(&bye, "Route"), expected, "{bye}");
    assert!(bye.contains("Max-Forwards: 70\r\n"));
    assert_eq!(h.dest.last().unwrap(), &"192.0.2.50:5060".parse().unwrap());
}

#[test]
fn a_strict_router_gets_the_request_uri_and_the_target_last() {
    let mut h = Harness::new(CoreConfig::default());
    h.input_from(
        &proxied_invite(
            "Record-Route: <sip:192.0.2.50:5070>, <sip:10.0.0.9;lr>\r\n",
            "",
        ),
        proxy(),
    );
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let tag = h.to_tag();
    h.input_from(
        &request("ACK", "z9hG4bKrr2", "rr", 1, Some(&tag), ""),
        proxy(),
    );
    h.command(CallCommand::Hangup { call });
    let bye = h.sent.last().unwrap().clone();
    assert!(
        bye.starts_with("BYE sip:192.0.2.50:5070 SIP/2.0\r\n"),
        "{bye}"
    );
    assert_eq!(
        header_values(&bye, "Route"),
        ["<sip:10.0.0.9;lr>", "<sip:13800000000@192.0.2.7:5062>"]
    );
    assert_eq!(h.dest.last().unwrap(), &"192.0.2.50:5070".parse().unwrap());
}

#[test]
fn a_re_invite_refreshes_the_remote_target() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&request("INVITE", "z9hG4bKt", "t", 1, None, SDP));
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let tag = h.to_tag();
    h.input(&request("ACK", "z9hG4bKt2", "t", 1, Some(&tag), ""));
    let reinvite = String::from_utf8(request("INVITE", "z9hG4bKt3", "t", 2, Some(&tag), SDP))
        .unwrap()
        .replace(
            "Contact: <sip:13800000000@192.0.2.7:5062>",
            "Contact: <sip:13800000000@192.0.2.8:5080>",
        );
    h.input(reinvite.as_bytes());
    h.input(&request("ACK", "z9hG4bKt4", "t", 2, Some(&tag), ""));
    h.command(CallCommand::Hangup { call });
    let bye = h.sent.last().unwrap().clone();
    assert!(
        bye.starts_with("BYE sip:13800000000@192.0.2.8:5080 SIP/2.0\r\n"),
        "{bye}"
    );
    // No route set: it goes where the dialog's messages come from (NAT).
    assert_eq!(h.dest.last().unwrap(), &peer().addr);
}

#[test]
fn asserted_identity_counts_only_from_the_trust_domain() {
    let pai = "P-Asserted-Identity: <tel:+8613900000000>\r\n";
    let number = |h: &Harness| {
        h.events
            .iter()
            .find_map(|e| match e {
                CallEvent::Incoming { info, .. } => Some(info.clone()),
                _ => None,
            })
            .unwrap()
    };
    // Untrusted: the From's number; the assertion is kept as a claim.
    let mut h = Harness::new(CoreConfig::default());
    h.input_from(&proxied_invite("", pai), proxy());
    let info = number(&h);
    assert_eq!(info.caller_number.as_deref(), Some("13800000000"));
    assert_eq!(
        info.p_asserted_identity.as_deref(),
        Some("<tel:+8613900000000>")
    );
    // Trusted proxy: the asserted number.
    let mut h = Harness::new(CoreConfig {
        admission: AdmissionConfig {
            trusted: vec!["192.0.2.50".parse().unwrap()],
            ..Default::default()
        },
        ..Default::default()
    });
    h.input_from(&proxied_invite("", pai), proxy());
    assert_eq!(number(&h).caller_number.as_deref(), Some("+8613900000000"));
}

#[test]
fn a_placed_call_preloads_the_outbound_proxy_and_routes_by_the_answers_record_route() {
    let mut h = Harness::new(CoreConfig::default());
    let d = Dial {
        uri: "sip:8201@pbx.court.example".into(),
        from_uri: "sip:hotline@192.0.2.1".into(),
        rtp: rtp(),
        ring_timeout: Duration::from_secs(20),
        credentials: None,
        route: vec!["<sip:192.0.2.50:5060;lr>".into()],
    };
    let out: Peer = Peer {
        addr: proxy().parse().unwrap(),
        ..peer()
    };
    let call = h.core.dial(&d, out, h.now);
    h.drain();
    let invite = h.sent.pop().unwrap();
    // The Request-URI is the member's; the proxy is a Route.
    assert!(
        invite.starts_with("INVITE sip:8201@pbx.court.example SIP/2.0\r\n"),
        "{invite}"
    );
    assert_eq!(
        header_values(&invite, "Route"),
        ["<sip:192.0.2.50:5060;lr>"]
    );
    // The 200 came through two proxies: the route set is their RR reversed.
    let ok = answer(&invite, 200, "OK", "ph1", SDP).replace(
        "Contact:",
        "Record-Route: <sip:10.0.0.9;lr>\r\nRecord-Route: <sip:192.0.2.50:5060;lr>\r\nContact:",
    );
    h.dest.clear();
    h.input_from(ok.as_bytes(), proxy());
    let ack = h.sent.last().unwrap().clone();
    assert!(
        ack.starts_with("ACK sip:officer@192.0.2.7:5062 SIP/2.0\r\n"),
        "{ack}"
    );
    let reversed = ["<sip:192.0.2.50:5060;lr>", "<sip:10.0.0.9;lr>"];
    assert_eq!(header_values(&ack, "Route"), reversed);
    assert_eq!(h.dest.last().unwrap(), &proxy().parse().unwrap());
    h.command(CallCommand::Hangup { call });
    let bye = h.sent.last().unwrap().clone();
    assert!(
        bye.starts_with("BYE sip:officer@192.0.2.7:5062 SIP/2.0\r\n"),
        "{bye}"
    );
    assert_eq!(header_values(&bye, "Route"), reversed);
    assert_eq!(h.dest.last().unwrap(), &proxy().parse().unwrap());
}

// ----- mid-call changes, hold, session timers, 100rel (issue 23) --------------

/// An SDP offer from the caller: `port`, payload types, direction.
fn offer_sdp(ip: &str, port: u16, pts: &str, direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pts}\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

/// A request in the dialog `call_id` (our tag `tag`) with `extra` headers.
fn in_dialog(method: &str, n: u32, call_id: &str, tag: &str, extra: &str, body: &str) -> Vec<u8> {
    String::from_utf8(request(
        method,
        &format!("z9hG4bKd{method}{n}"),
        call_id,
        n,
        Some(tag),
        body,
    ))
    .unwrap()
    .replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{extra}"),
    )
    .into_bytes()
}

/// A confirmed call: INVITE (with `extra` headers), answer, ACK.
fn confirmed_call(h: &mut Harness, call_id: &str, extra: &str) -> (CallRef, String) {
    let invite = String::from_utf8(request(
        "INVITE",
        &format!("z9hG4bK{call_id}"),
        call_id,
        1,
        None,
        SDP,
    ))
    .unwrap()
    .replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{extra}"),
    );
    h.input(invite.as_bytes());
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    let tag = h.to_tag();
    h.input(&request(
        "ACK",
        &format!("z9hG4bK{call_id}a"),
        call_id,
        1,
        Some(&tag),
        "",
    ));
    h.take();
    h.events.clear();
    (call, tag)
}

fn media_changes(h: &Harness) -> Vec<Media> {
    h.events
        .iter()
        .filter_map(|e| match e {
            CallEvent::MediaChanged { media, .. } => Some(media.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_re_invite_moves_the_media_and_the_answer_has_the_next_version() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, tag) = confirmed_call(&mut h, "mv", "");
    h.input(&in_dialog(
        "INVITE",
        2,
        "mv",
        &tag,
        "",
        &offer_sdp("192.0.2.7", 7000, "0 101", "sendrecv"),
    ));
    let ok = h.sent.last().unwrap().clone();
    assert!(ok.starts_with("SIP/2.0 200 OK"), "{ok}");
    // Our side did not change: the same description, the same version
    // (RFC 3264 §8).
    assert!(ok.contains(" 1 IN IP4 192.0.2.1"), "version 1: {ok}");
    assert!(ok.contains("m=audio 20000 RTP/AVP 0 101"), "{ok}");
    let changes = media_changes(&h);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].remote, Some("192.0.2.7:7000".parse().unwrap()));
    // The same offer again (a refresh): the same version, no change.
    h.input(&request("ACK", "z9hG4bKmva2", "mv", 2, Some(&tag), ""));
    h.events.clear();
    h.input(&in_dialog(
        "INVITE",
        3,
        "mv",
        &tag,
        "",
        &offer_sdp("192.0.2.7", 7000, "0 101", "sendrecv"),
    ));
    let ok = h.sent.last().unwrap().clone();
    assert!(ok.contains(" 1 IN IP4 192.0.2.1"), "unchanged: {ok}");
    assert!(media_changes(&h).is_empty());
}

#[test]
fn a_re_invite_changes_the_codec() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, tag) = confirmed_call(&mut h, "cd", "");
    h.input(&in_dialog(
        "INVITE",
        2,
        "cd",
        &tag,
        "",
        &offer_sdp("192.0.2.7", 6000, "8 101", "sendrecv"),
    ));
    assert!(h
        .sent
        .last()
        .unwrap()
        .contains("m=audio 20000 RTP/AVP 8 101"));
    let changes = media_changes(&h);
    assert_eq!(changes[0].codec, sdp::Codec::Pcma);
    assert_eq!(changes[0].payload_type, 8);
}

#[test]
fn hold_and_resume() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, tag) = confirmed_call(&mut h, "hd", "");
    h.input(&in_dialog(
        "INVITE",
        2,
        "hd",
        &tag,
        "",
        &offer_sdp("192.0.2.7", 6000, "0 101", "sendonly"),
    ));
    let ok = h.sent.last().unwrap().clone();
    assert!(ok.contains("a=recvonly\r\n"), "we only receive: {ok}");
    assert!(
        ok.contains(" 2 IN IP4 192.0.2.1"),
        "our side changed: version 2: {ok}"
    );
    h.input(&request("ACK", "z9hG4bKhda2", "hd", 2, Some(&tag), ""));
    // inactive (RFC 3264 §8.4: c=0.0.0.0 is the old way, a port of ours stays)
    h.input(&in_dialog(
        "INVITE",
        3,
        "hd",
        &tag,
        "",
        &offer_sdp("192.0.2.7", 6000, "0 101", "inactive"),
    ));
    assert!(h.sent.last().unwrap().contains("a=inactive\r\n"));
    h.input(&request("ACK", "z9hG4bKhda3", "hd", 3, Some(&tag), ""));
    h.input(&in_dialog(
        "INVITE",
        4,
        "hd",
        &tag,
        "",
        &offer_sdp("192.0.2.7", 6000, "0 101", "sendrecv"),
    ));
    assert!(h.sent.last().unwrap().contains("a=sendrecv\r\n"));
    let dirs: Vec<_> = media_changes(&h).iter().map(|m| m.direction).collect();
    assert_eq!(
        dirs,
        [
            sdp::Direction::SendOnly,
            sdp::Direction::Inactive,
            sdp::Direction::SendRecv
        ]
    );
}

#[test]
fn a_change_we_cannot_take_is_refused_and_the_old_session_stays() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, tag) = confirmed_call(&mut h, "rf", "");
    h.input(&in_dialog(
        "INVITE",
        2,
        "rf",
        &tag,
        "",
        &offer_sdp("192.0.2.7", 6000, "9 18", "sendrecv"),
    ));
    assert_eq!(h.take(), ["SIP/2.0 488 Not Acceptable Here"]);
    assert!(media_changes(&h).is_empty());
    // The call goes on: the next, good offer is taken.
    h.input(&in_dialog(
        "INVITE",
        3,
        "rf",
        &tag,
        "",
        &offer_sdp("192.0.2.7", 6100, "0", "sendrecv"),
    ));
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
    assert_eq!(media_changes(&h).len(), 1);
}

#[test]
fn an_offer_while_one_is_pending_gets_491() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, tag) = confirmed_call(&mut h, "gl", "");
    h.input(&in_dialog(
        "INVITE",
        2,
        "gl",
        &tag,
        "",
        &offer_sdp("192.0.2.7", 6000, "0", "sendrecv"),
    ));
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
    // Its ACK has not come: a second offer collides.
    h.input(&in_dialog(
        "INVITE",
        3,
        "gl",
        &tag,
        "",
        &offer_sdp("192.0.2.7", 6200, "0", "sendrecv"),
    ));
    let r = h.sent.last().unwrap().clone();
    assert!(
        r.starts_with("SIP/2.0 491 Request Pending\r\n") && r.contains("Retry-After: "),
        "{r}"
    );
}

#[test]
fn an_offerless_re_invite_gets_our_offer_and_the_ack_answers() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, tag) = confirmed_call(&mut h, "ol", "");
    h.input(&in_dialog("INVITE", 2, "ol", &tag, "", ""));
    let ok = h.sent.last().unwrap().clone();
    assert!(
        ok.contains("m=audio 20000 RTP/AVP 8 0 101") && ok.contains(" 2 IN IP4"),
        "{ok}"
    );
    assert!(media_changes(&h).is_empty(), "nothing until the answer");
    h.input(&in_dialog(
        "ACK",
        2,
        "ol",
        &tag,
        "Content-Type: application/sdp\r\n",
        &offer_sdp("192.0.2.9", 8000, "8", "sendrecv"),
    ));
    let changes = media_changes(&h);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].remote, Some("192.0.2.9:8000".parse().unwrap()));
    assert_eq!(changes[0].codec, sdp::Codec::Pcma);
}

#[test]
fn update_with_and_without_an_offer() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, tag) = confirmed_call(&mut h, "up", "");
    h.input(&in_dialog(
        "UPDATE",
        2,
        "up",
        &tag,
        "",
        &offer_sdp("192.0.2.7", 6400, "0 101", "sendrecv"),
    ));
    let ok = h.sent.last().unwrap().clone();
    assert!(
        ok.starts_with("SIP/2.0 200 OK") && ok.contains("m=audio 20000"),
        "{ok}"
    );
    assert_eq!(
        media_changes(&h)[0].remote,
        Some("192.0.2.7:6400".parse().unwrap())
    );
    h.input(&in_dialog("UPDATE", 3, "up", &tag, "", ""));
    let ok = h.sent.last().unwrap().clone();
    assert!(
        ok.starts_with("SIP/2.0 200 OK") && ok.ends_with("Content-Length: 0\r\n\r\n"),
        "{ok}"
    );
    // An UPDATE for no dialog: 481.
    h.input(&in_dialog("UPDATE", 4, "up", "nosuchtag", "", ""));
    assert!(h.sent.last().unwrap().starts_with("SIP/2.0 481"));
}

#[test]
fn a_session_interval_below_90_s_gets_422() {
    let mut h = Harness::new(CoreConfig::default());
    let invite = String::from_utf8(request("INVITE", "z9hG4bKse", "se", 1, None, SDP))
        .unwrap()
        .replace(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nSupported: timer\r\nSession-Expires: 60\r\n",
        );
    h.input(invite.as_bytes());
    let r = h.sent.last().unwrap().clone();
    assert!(
        r.starts_with("SIP/2.0 422 Session Interval Too Small\r\n") && r.contains("Min-SE: 90\r\n"),
        "{r}"
    );
    assert_eq!(h.core.active_calls(), 0);
}

fn response_to(req: &str, code: u16, reason: &str) -> String {
    let m = message::parse(req.as_bytes(), true, &Limits::default()).unwrap();
    format!(
        "SIP/2.0 {code} {reason}\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        m.reply.vias[0], m.reply.from, m.reply.to, m.call_id, m.reply.cseq
    )
}

#[test]
fn as_the_refresher_we_send_update_at_half_and_hang_up_when_refreshes_fail() {
    let mut h = Harness::new(CoreConfig::default());
    let (call, _) = {
        let invite = String::from_utf8(request("INVITE", "z9hG4bKst", "st", 1, None, SDP))
            .unwrap()
            .replace(
                "Max-Forwards: 70\r\n",
                "Max-Forwards: 70\r\nSupported: timer\r\nAllow: INVITE, ACK, BYE, UPDATE\r\nSession-Expires: 90;refresher=uas\r\n",
            );
        h.input(invite.as_bytes());
        let call = h.incoming();
        h.command(CallCommand::Answer { call, rtp: rtp() });
        let ok = h.sent.last().unwrap().clone();
        assert!(ok.contains("Session-Expires: 90;refresher=uas\r\n"), "{ok}");
        assert!(ok.contains("Require: timer\r\n"), "{ok}");
        let tag = h.to_tag();
        h.input(&request("ACK", "z9hG4bKsta", "st", 1, Some(&tag), ""));
        (call, tag)
    };
    h.take();
    let start = h.now;
    // At 45 s: our UPDATE, naming us (the UAC of it) the refresher.
    h.advance(Duration::from_secs(44));
    assert!(h.take().is_empty());
    h.advance(Duration::from_secs(1));
    let update = h.sent.last().unwrap().clone();
    assert!(
        update.starts_with("UPDATE sip:13800000000@192.0.2.7:5062 SIP/2.0\r\n"),
        "{update}"
    );
    assert!(
        update.contains("Session-Expires: 90;refresher=uac\r\n"),
        "{update}"
    );
    assert_eq!(h.now - start, Duration::from_secs(45));
    h.input(response_to(&update, 200, "OK").as_bytes());
    h.take();
    // Refreshed: the next one 45 s later; that one gets no answer.
    h.advance(Duration::from_secs(45));
    assert!(h.sent.iter().any(|m| m.starts_with("UPDATE ")));
    h.take();
    h.advance(Duration::from_secs(33)); // Timer F
    let bye = h.sent.iter().find(|m| m.starts_with("BYE ")).expect("BYE");
    assert!(bye.contains("CSeq: 3 BYE"), "{bye}");
    assert!(h.events.iter().any(|e| matches!(e, CallEvent::Ended { call: c, reason: EndReason::SessionExpired } if *c == call)));
}

#[test]
fn without_update_we_refresh_by_re_invite_and_acknowledge_its_2xx() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, _) = confirmed_call(&mut h, "ri", "Supported: timer\r\nSession-Expires: 120\r\n");
    h.advance(Duration::from_secs(60));
    let reinvite = h.sent.last().unwrap().clone();
    assert!(
        reinvite.starts_with("INVITE sip:13800000000@192.0.2.7:5062 SIP/2.0\r\n"),
        "{reinvite}"
    );
    assert!(
        reinvite.contains("m=audio 20000"),
        "our description, unchanged"
    );
    assert!(
        reinvite.contains("CSeq: 1 INVITE\r\n"),
        "our first request in the dialog"
    );
    h.take();
    h.input(response_to(&reinvite, 200, "OK").as_bytes());
    let ack = h.sent.last().unwrap().clone();
    assert!(
        ack.starts_with("ACK ") && ack.contains("CSeq: 1 ACK"),
        "{ack}"
    );
}

#[test]
fn when_the_caller_refreshes_a_missing_refresh_ends_the_call() {
    let mut h = Harness::new(CoreConfig::default());
    let (call, tag) = confirmed_call(
        &mut h,
        "cr",
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    // Refreshed at 40 s by a re-INVITE: the end moves to 40 + 60 s.
    h.advance(Duration::from_secs(40));
    h.input(&in_dialog(
        "INVITE",
        2,
        "cr",
        &tag,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
        SDP,
    ));
    let ok = h.sent.last().unwrap().clone();
    assert!(ok.contains("Session-Expires: 90;refresher=uac\r\n"), "{ok}");
    h.input(&request("ACK", "z9hG4bKcra2", "cr", 2, Some(&tag), ""));
    h.take();
    h.advance(Duration::from_secs(59));
    assert!(!h.sent.iter().any(|m| m.starts_with("BYE ")));
    h.advance(Duration::from_secs(1));
    assert!(
        h.sent.iter().any(|m| m.starts_with("BYE ")),
        "no refresh by 90 - 30 s: BYE"
    );
    assert!(h.events.iter().any(|e| matches!(e, CallEvent::Ended { call: c, reason: EndReason::SessionExpired } if *c == call)));
}

#[test]
fn require_100rel_gets_a_reliable_180_and_the_200_after_the_prack() {
    let mut h = Harness::new(CoreConfig::default());
    let invite = String::from_utf8(request("INVITE", "z9hG4bKrl", "rl", 1, None, SDP))
        .unwrap()
        .replace(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nRequire: 100rel\r\n",
        );
    h.input(invite.as_bytes());
    let ringing = h.sent.last().unwrap().clone();
    assert!(
        ringing.starts_with("SIP/2.0 180 Ringing\r\n") && ringing.contains("Require: 100rel\r\n"),
        "{ringing}"
    );
    let rseq: u32 = ringing
        .lines()
        .find_map(|l| l.strip_prefix("RSeq: "))
        .unwrap()
        .parse()
        .unwrap();
    let tag = h.to_tag();
    let call = h.incoming();
    h.command(CallCommand::Answer { call, rtp: rtp() });
    h.take();
    // No 200 before the PRACK; the 180 again at T1.
    h.advance(Duration::from_millis(500));
    assert_eq!(h.take(), ["SIP/2.0 180 Ringing"]);
    // A PRACK for another RSeq: 481; the right one: 200, then our 200.
    h.input(&in_dialog(
        "PRACK",
        2,
        "rl",
        &tag,
        &format!("RAck: {} 1 INVITE\r\n", rseq + 1),
        "",
    ));
    assert_eq!(h.take(), ["SIP/2.0 481 No Matching Reliable Response"]);
    h.input(&in_dialog(
        "PRACK",
        3,
        "rl",
        &tag,
        &format!("RAck: {rseq} 1 INVITE\r\n"),
        "",
    ));
    let s = h.take();
    assert_eq!(s, ["SIP/2.0 200 OK", "SIP/2.0 200 OK"]);
    assert!(h.sent.is_empty());
    h.advance(Duration::from_secs(2));
    assert!(
        !h.take().iter().any(|l| l.contains("180")),
        "the 180 is not sent again"
    );
}

#[test]
fn a_reliable_183_to_our_call_gets_its_prack_once() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, invite) = dial(&mut h);
    assert!(invite.contains("Supported: 100rel, timer\r\n"), "{invite}");
    let progress = answer(&invite, 183, "Session Progress", "ph", "").replace(
        "Content-Length: 0",
        "Require: 100rel\r\nRSeq: 7\r\nContent-Length: 0",
    );
    h.input(progress.as_bytes());
    let prack = h.sent.last().unwrap().clone();
    assert!(
        prack.starts_with("PRACK sip:officer@192.0.2.7:5062 SIP/2.0\r\n"),
        "{prack}"
    );
    assert!(
        prack.contains("RAck: 7 1 INVITE\r\n") && prack.contains("CSeq: 2 PRACK\r\n"),
        "{prack}"
    );
    assert!(
        prack.contains(";tag=ph\r\n"),
        "in the early dialog: {prack}"
    );
    h.sent.clear();
    h.input(progress.as_bytes());
    assert!(h.sent.is_empty(), "a copy gets no second PRACK");
}

// ----- registering with the trunk (issue 14) ------------------------------------

#[test]
fn the_trunk_registration_answers_a_challenge_and_is_refreshed() {
    let mut h = Harness::new(CoreConfig::default());
    let trunk = Peer {
        addr: "192.0.2.30:5060".parse().unwrap(),
        ..peer()
    };
    h.core.register(
        Registration {
            registrar: "sip:trunk.example".into(),
            aor: "sip:053212368@trunk.example".into(),
            expires: 3600,
            credentials: Some(("hotline".into(), "secret".into())),
        },
        trunk,
        h.now,
    );
    h.drain();
    let first = h.sent.pop().unwrap();
    assert!(
        first.starts_with("REGISTER sip:trunk.example SIP/2.0\r\n"),
        "{first}"
    );
    assert!(
        first.contains("Expires: 3600\r\n") && first.contains("CSeq: 1 REGISTER\r\n"),
        "{first}"
    );
    let call_id = header_values(&first, "Call-ID")[0].to_string();
    // The challenge: the same REGISTER again, with credentials.
    let challenge = response_to(&first, 401, "Unauthorized").replace(
        "Content-Length: 0",
        "WWW-Authenticate: Digest realm=\"trunk.example\", nonce=\"n1\"\r\nContent-Length: 0",
    );
    h.input_from(challenge.as_bytes(), "192.0.2.30:5060");
    let second = h.sent.pop().unwrap();
    assert!(second.contains("CSeq: 2 REGISTER\r\n"), "{second}");
    assert!(
        second.contains("Authorization: Digest username=\"hotline\""),
        "{second}"
    );
    assert_eq!(header_values(&second, "Call-ID"), [call_id.as_str()]);
    // Granted for 60 s: refreshed at 48 s, on the same Call-ID.
    let ok = response_to(&second, 200, "OK")
        .replace("Content-Length: 0", "Expires: 60\r\nContent-Length: 0");
    h.input_from(ok.as_bytes(), "192.0.2.30:5060");
    h.sent.clear();
    h.advance(Duration::from_secs(47));
    assert!(!h.sent.iter().any(|m| m.starts_with("REGISTER")));
    h.advance(Duration::from_secs(1));
    let refresh = h
        .sent
        .iter()
        .find(|m| m.starts_with("REGISTER"))
        .expect("refreshed")
        .clone();
    assert!(refresh.contains("CSeq: 3 REGISTER\r\n"), "{refresh}");
    assert_eq!(header_values(&refresh, "Call-ID"), [call_id.as_str()]);
    // Refused: tried again 30 s later.
    h.input_from(
        response_to(&refresh, 403, "Forbidden").as_bytes(),
        "192.0.2.30:5060",
    );
    h.sent.clear();
    h.advance(Duration::from_secs(29));
    assert!(!h.sent.iter().any(|m| m.starts_with("REGISTER")));
    h.advance(Duration::from_secs(1));
    assert!(h.sent.iter().any(|m| m.starts_with("REGISTER")), "retried");
}
