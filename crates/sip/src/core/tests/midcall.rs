//! Calls in progress: offer/answer, hold, session timers, reliable provisionals.

use super::*;

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
fn a_failed_re_invite_refresh_is_acknowledged_on_its_branch() {
    let mut h = Harness::new(CoreConfig::default());
    let (_, _) = confirmed_call(&mut h, "rf", "Supported: timer\r\nSession-Expires: 120\r\n");
    h.advance(Duration::from_secs(60));
    let reinvite = h.sent.last().unwrap().clone();
    assert!(reinvite.starts_with("INVITE "), "{reinvite}");
    let via = header_values(&reinvite, "Via")[0].to_string();
    h.take();
    // RFC 3261 §17.1.1.3: a failure is acknowledged by the transaction,
    // on the INVITE's branch, with its CSeq number.
    let failure = response_to(&reinvite, 500, "Server Internal Error");
    h.input(failure.as_bytes());
    let ack = h.sent.last().unwrap().clone();
    assert!(
        ack.starts_with("ACK sip:13800000000@192.0.2.7:5062 SIP/2.0\r\n"),
        "{ack}"
    );
    assert_eq!(header_values(&ack, "Via"), [via.as_str()], "{ack}");
    assert!(ack.contains("CSeq: 1 ACK\r\n"), "{ack}");
    // A copy of the failure gets the same ACK again, nothing else.
    h.take();
    h.input(failure.as_bytes());
    assert_eq!(h.sent, [ack]);
    // After Timer D the transaction is gone: a late copy is a stray.
    h.take();
    h.advance(Duration::from_secs(33));
    h.take();
    h.input(failure.as_bytes());
    assert!(
        h.sent.iter().all(|m| !m.starts_with("ACK ")),
        "{:?}",
        h.sent
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
