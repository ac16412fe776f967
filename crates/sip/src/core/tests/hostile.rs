//! Hostile traffic: the datagram that panicked, floods, scanners, bounds, shedding.

use super::*;

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
    // Forty ticks 200 ms late in one window, judged by the next tick.
    for _ in 0..40 {
        load.tick(h.now, h.now + Duration::from_millis(200));
    }
    let next = h.now + Duration::from_millis(600);
    load.tick(next, next);
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
