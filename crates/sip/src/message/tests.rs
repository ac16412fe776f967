//! The parser and the builders against hand-written messages.

use super::*;

const INVITE: &str = "INVITE sip:12368@hotline.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:12368@hotline.example>\r\n\
From: \"Caller\" <sip:13800000000@carrier.example>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:13800000000@192.0.2.7:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

fn p(s: &str) -> Result<Message, Malformed> {
    parse(s.as_bytes(), true, &Limits::default())
}

#[test]
fn parses_invite() {
    let m = p(INVITE).unwrap();
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(m.cseq, 314159);
    assert_eq!(m.from_tag.as_deref(), Some("1928301774"));
    assert_eq!(m.to_tag, None);
    assert_eq!(m.top_via.rfc3261_branch(), Some("z9hG4bK776asdhds"));
    assert!(m.top_via.rport);
    assert_eq!(&m.body[..], b"v=0\n");
    assert_eq!(
        m.contact_uri().as_deref(),
        Some("sip:13800000000@192.0.2.7:5060")
    );
}

#[test]
fn extension_method_is_kept() {
    let s = INVITE
        .replace("INVITE sip", "FOO-BAR sip")
        .replace("314159 INVITE", "314159 FOO-BAR");
    let m = p(&s).unwrap();
    assert_eq!(m.method(), Some(&Method::Other("FOO-BAR".into())));
}

#[test]
fn refusals_name_the_problem() {
    let cases = [
        (INVITE.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia"), 505),
        (INVITE.replace("sip:12368@", "foo:12368@"), 416),
        (INVITE.replace("314159 INVITE", "314159 OPTIONS"), 400),
        (INVITE.replace("314159", "4294967301"), 400),
        (
            INVITE.replace("Content-Length: 4", "Content-Length: 40"),
            400,
        ),
        (
            INVITE.replace("Content-Length: 4", "Content-Length: -4"),
            400,
        ),
        (
            INVITE.replace("Call-ID: a84b4c76e66710@pc33.example\r\n", ""),
            400,
        ),
    ];
    for (msg, status) in cases {
        let e = p(&msg).unwrap_err();
        assert_eq!(e.status, status, "{}: {}", e.reason, msg);
        // Via is there: the refusal can be sent.
        assert!(e.reply.is_some(), "{msg}");
    }
}

#[test]
fn response_copies_and_stamps_via() {
    let m = p(INVITE).unwrap();
    let src: SocketAddr = "198.51.100.4:40000".parse().unwrap();
    let r = ResponseBuilder::new(&m.reply, 180, "Ringing")
        .to_tag("abc")
        .source(src)
        .build();
    let text = std::str::from_utf8(&r).unwrap();
    assert!(text.starts_with("SIP/2.0 180 Ringing\r\n"), "{text}");
    assert!(
        text.contains("Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK776asdhds;rport=40000;received=198.51.100.4\r\n"),
        "{text}"
    );
    assert!(text.contains("To: <sip:12368@hotline.example>;tag=abc\r\n"));
    assert!(text.contains("CSeq: 314159 INVITE\r\n"));
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    // What we write parses back.
    let back = parse(&r, true, &Limits::default()).unwrap();
    assert_eq!(back.status(), Some(180));
    assert_eq!(back.to_tag.as_deref(), Some("abc"));
}

#[test]
fn broken_lines_still_answered() {
    let no_colon = INVITE.replace("Max-Forwards: 70\r\n", "Max-Forwards 70\r\n");
    let e = p(&no_colon).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (400, "Malformed Header Line")
    );
    assert!(e.reply.is_some());
    let mut latin1 = INVITE.as_bytes().to_vec();
    let at = INVITE.find("Caller").unwrap();
    latin1[at] = 0xC7; // not UTF-8 on its own
    let e = parse(&latin1, true, &Limits::default()).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (400, "Header Section Not UTF-8")
    );
    assert!(e.reply.is_some());
}

#[test]
fn other_transport_in_via() {
    let v = parse_top_via("SIP/2.0/FOO host.example:5070;branch=z9hG4bKx").unwrap();
    assert_eq!(
        (v.transport.as_str(), v.sent_by.as_str()),
        ("FOO", "host.example:5070")
    );
    assert!(parse_top_via("SIP/2.0/UDP 192.0.2.15;;").is_none());
    assert!(parse_top_via("SIP/7.0/UDP 192.0.2.15").is_none());
}

#[test]
fn caller_identity_parts() {
    assert_eq!(
        display_and_user("\"Zhang San\" <sip:13800000000@carrier.example>;tag=1"),
        (Some("Zhang San".into()), Some("13800000000".into()))
    );
    assert_eq!(
        display_and_user("<tel:+8653212368;phone-context=x>"),
        (None, Some("+8653212368".into()))
    );
    assert_eq!(display_and_user("sip:carrier.example"), (None, None));
    // Short or odd URIs never panic.
    for v in ["<a:>;tag=1", "<a:é>", "<:1>", "<é:>", ":", "<>"] {
        let _ = display_and_user(v);
    }
}

#[test]
fn stream_framing() {
    let l = Limits::default();
    let two = format!("{INVITE}{INVITE}");
    let one = INVITE.len();
    assert_eq!(frame(two.as_bytes(), &l), Frame::Complete(one));
    assert_eq!(frame(&two.as_bytes()[..one - 1], &l), Frame::Incomplete);
    assert_eq!(frame(&two.as_bytes()[..40], &l), Frame::Incomplete);
    let bad = INVITE.replace("Content-Length: 4", "Content-Length: -4");
    assert!(matches!(frame(bad.as_bytes(), &l), Frame::Broken(_)));
    let huge = "X".repeat(l.max_header_bytes + 1);
    assert_eq!(frame(huge.as_bytes(), &l), Frame::Broken(huge.len()));
}

#[test]
fn version_with_multibyte_characters_is_refused_not_a_panic() {
    for v in [
        "SIP\u{e9}",
        "SIP/\u{e9}",
        "\u{4e2d}\u{6587}",
        "S\u{1f600}",
        "SIP/2.0\u{0}",
    ] {
        let msg = INVITE.replacen("SIP/2.0\r\n", &format!("{v}\r\n"), 1);
        let e = p(&msg).unwrap_err();
        assert!(e.status == 400 || e.status == 505, "{v}: {e:?}");
    }
    let e = parse(
        b"OPTIONS sip:a@b SIP\xc3\xa9\r\n\r\n",
        true,
        &Limits::default(),
    );
    assert!(e.unwrap_err().reply.is_none(), "no Via: nothing to answer");
}

#[test]
fn bare_line_feeds_cannot_smuggle_headers() {
    // A From with a bare LF would copy "X-Evil" into every answer.
    let evil = INVITE.replace(";tag=1928301774\r\n", ";tag=1928301774\nX-Evil: 1\r\n");
    let e = p(&evil).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (400, "Bare CR or LF In Header")
    );
    let cr = INVITE.replace("Caller", "Cal\rler");
    assert_eq!(p(&cr).unwrap_err().status, 400);
    // The framer sees the same lines: a Content-Length behind a bare LF
    // does not count there either.
    let hidden = INVITE
        .replace("Content-Length: 4\r\n", "X-A: 1\nContent-Length: 40\r\n")
        .replace(
            "Content-Type: application/sdp\r\n",
            "Content-Type: application/sdp\r\nContent-Length: 4\r\n",
        );
    assert_eq!(
        frame(hidden.as_bytes(), &Limits::default()),
        Frame::Complete(hidden.len())
    );
}

#[test]
fn a_body_over_the_limit_is_513_whatever_arrived() {
    let l = Limits {
        max_header_bytes: 16 * 1024,
        max_body_bytes: 100,
    };
    let big = INVITE.replace("Content-Length: 4", "Content-Length: 5000");
    assert_eq!(parse(big.as_bytes(), true, &l).unwrap_err().status, 513);
}

#[test]
fn framing_resumes_where_it_stopped() {
    let l = Limits::default();
    let mut searched = 0;
    let bytes = INVITE.as_bytes();
    let head_end = INVITE.find("\r\n\r\n").unwrap();
    // Byte by byte up to the header end: never complete, one pass.
    for n in 1..head_end + 3 {
        assert_eq!(
            frame_from(&bytes[..n], &l, &mut searched),
            Frame::Incomplete
        );
        assert_eq!(searched, n);
    }
    // The end found, the body still missing: `searched` stays.
    assert_eq!(
        frame_from(&bytes[..head_end + 5], &l, &mut searched),
        Frame::Incomplete
    );
    assert_eq!(
        frame_from(bytes, &l, &mut searched),
        Frame::Complete(bytes.len())
    );
}

#[test]
fn leading_crlf_is_skipped() {
    let m = p(&format!("\r\n\r\n{INVITE}")).unwrap();
    assert_eq!(m.cseq, 314159);
}

#[test]
fn header_too_large() {
    let big = INVITE.replace(
        "Max-Forwards: 70\r\n",
        &format!("X-Pad: {}\r\n", "a".repeat(20_000)),
    );
    let e = p(&big).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (400, "Header Section Too Large")
    );
}
