//! Calls we place (paging): answered, refused, unanswered, cancelled,
//! challenged, and an answer crossing our CANCEL.

use super::*;

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
fn a_placed_call_rings_past_timer_b_until_its_ring_limit() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, invite) = dial_with(&mut h, Duration::from_secs(60));
    h.advance(Duration::from_millis(100));
    h.input(answer(&invite, 180, "Ringing", "ph8", "").as_bytes());
    h.take();
    // Proceeding: Timer B (32 s) no longer applies, nor is the INVITE sent
    // again (RFC 3261 §17.1.1.2).
    h.advance(Duration::from_secs(45));
    assert_eq!(h.take(), Vec::<String>::new());
    assert!(h.events.is_empty(), "{:?}", h.events);
    // The ring limit, counted from the INVITE.
    h.advance(Duration::from_secs(15));
    assert_eq!(h.take(), ["CANCEL sip:8201@192.0.2.7:5062 SIP/2.0"]);
    // No final response to the CANCEL's INVITE: given up 64·T1 later.
    h.advance(Duration::from_secs(31));
    assert!(h.events.is_empty(), "{:?}", h.events);
    h.advance(Duration::from_secs(2));
    assert!(matches!(
        h.events.last(),
        Some(CallEvent::Ended {
            reason: EndReason::Hangup,
            ..
        })
    ));
}

#[test]
fn timer_a_doubles_without_the_t2_cap_until_timer_b() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, invite) = dial(&mut h);
    let start = h.now;
    let mut sent_at = Vec::new();
    for _ in 0..330 {
        h.advance(Duration::from_millis(100));
        for m in h.take() {
            assert_eq!(m, invite.lines().next().unwrap());
            sent_at.push((h.now - start).as_millis());
        }
    }
    assert_eq!(sent_at, [500, 1500, 3500, 7500, 15500, 31500]);
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

#[test]
fn placed_calls_and_answered_calls_are_admitted_apart() {
    let mut h = Harness::new(CoreConfig {
        max_calls: 1,
        max_placed: 1,
        admission: AdmissionConfig {
            trusted: vec!["0.0.0.0/0".parse().unwrap()],
            ..Default::default()
        },
        ..Default::default()
    });
    let (first, invite) = dial(&mut h);
    // A second page while one is up is not placed: nothing leaves.
    let d = Dial {
        uri: "sip:8202@192.0.2.7:5062".into(),
        from_uri: "sip:hotline@192.0.2.1".into(),
        rtp: rtp(),
        ring_timeout: Duration::from_secs(20),
        credentials: None,
        route: Vec::new(),
    };
    let second = h.core.dial(&d, peer(), h.now);
    h.drain();
    assert!(h.sent.is_empty(), "{:?}", h.sent);
    assert!(matches!(
        h.events.last(),
        Some(CallEvent::Ended { call, reason: EndReason::TooManyPlaced }) if *call == second
    ));
    // The page up takes nothing from the line: a caller is still answered.
    h.input(&request("INVITE", "z9hG4bKap1", "ap1", 1, None, SDP));
    assert_eq!(h.take(), ["SIP/2.0 100 Trying", "SIP/2.0 180 Ringing"]);
    // The first page ends (busy): the next one is placed.
    h.input(answer(&invite, 486, "Busy Here", "ph9", "").as_bytes());
    assert!(matches!(
        h.events.last(),
        Some(CallEvent::Ended { call, reason: EndReason::Rejected(486) }) if *call == first
    ));
    h.take();
    h.core.dial(&d, peer(), h.now);
    h.drain();
    assert_eq!(h.take(), ["INVITE sip:8202@192.0.2.7:5062 SIP/2.0"]);
}
