//! MESSAGE handed to the inbox (replies to pages) and its answer sent back.

use super::*;

fn text(branch: &str, ctype: &str, body: &[u8], extra: &str) -> Vec<u8> {
    let mut m = format!(
        "MESSAGE sip:hotline@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.7:5062;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:8201@192.0.2.7>;tag=ph1\r\n\
To: <sip:hotline@192.0.2.1>\r\n\
Call-ID: msg-{branch}\r\n\
CSeq: 1 MESSAGE\r\n\
{ctype}{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

const PLAIN: &str = "Content-Type: text/plain;charset=UTF-8\r\n";

fn inbox(trusted: &str) -> Harness {
    Harness::new(CoreConfig {
        messages: true,
        admission: AdmissionConfig {
            trusted: vec![trusted.parse().unwrap()],
            ..AdmissionConfig::default()
        },
        ..CoreConfig::default()
    })
}

#[test]
fn without_an_inbox_message_is_not_allowed() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&text("z9hG4bKm0", PLAIN, b"1 2026-000123", ""));
    assert_eq!(h.take(), ["SIP/2.0 405 Method Not Allowed"]);
    assert!(h.texts.is_empty());
}

#[test]
fn a_message_goes_to_the_inbox_with_its_sender_and_its_answer_back() {
    // From a trusted element: its P-Asserted-Identity is the sender.
    let mut h = inbox("192.0.2.7");
    let msg = text(
        "z9hG4bKm1",
        PLAIN,
        b"1 2026-000123",
        "P-Asserted-Identity: <sip:8202@192.0.2.7>\r\n",
    );
    h.input(&msg);
    // Nothing said until the inbox decides; a copy changes nothing.
    assert!(h.take().is_empty());
    h.input(&msg);
    assert!(h.take().is_empty());
    assert_eq!(h.texts.len(), 1);
    let t = h.texts.remove(0);
    assert_eq!(t.asserted.as_deref(), Some("8202"));
    assert_eq!(t.from_user.as_deref(), Some("8201"));
    assert_eq!(&t.body[..], b"1 2026-000123");
    assert_eq!(t.origin.addr, peer().addr);
    h.core.answer_handed(
        RegisterAnswer {
            id: t.id,
            status: 200,
            reason: "OK",
            headers: Vec::new(),
        },
        h.now,
    );
    h.drain();
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
    // A copy after the answer gets the answer again.
    h.input(&msg);
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
}

#[test]
fn from_anyone_else_the_from_is_only_claimed() {
    let mut h = inbox("10.9.9.9");
    h.input(&text(
        "z9hG4bKm2",
        PLAIN,
        b"1 2026-000123",
        "P-Asserted-Identity: <sip:8202@192.0.2.7>\r\n",
    ));
    let t = h.texts.remove(0);
    assert_eq!(t.asserted, None);
    assert_eq!(t.from_user.as_deref(), Some("8201"));
}

#[test]
fn bodies_that_are_no_text_or_too_long_are_refused_before_the_inbox() {
    let mut h = inbox("192.0.2.7");
    h.input(&text(
        "z9hG4bKm3",
        "Content-Type: text/html\r\n",
        b"<b>1</b>",
        "",
    ));
    let refused = h.sent.last().unwrap().clone();
    assert!(
        refused.starts_with("SIP/2.0 415 Unsupported Media Type\r\n")
            && refused.contains("Accept: text/plain\r\n"),
        "{refused}"
    );
    h.input(&text("z9hG4bKm4", "", b"1 2026-000123", ""));
    assert_eq!(
        h.take(),
        [
            "SIP/2.0 415 Unsupported Media Type",
            "SIP/2.0 415 Unsupported Media Type"
        ]
    );
    let huge = vec![b'1'; MAX_TEXT_BYTES + 1];
    h.input(&text("z9hG4bKm5", PLAIN, &huge, ""));
    assert_eq!(h.take(), ["SIP/2.0 413 Request Entity Too Large"]);
    assert!(h.texts.is_empty());
    // OPTIONS says MESSAGE is allowed.
    h.input(&request("OPTIONS", "z9hG4bKo1", "o1", 1, None, ""));
    assert!(
        h.sent[0].contains(&format!("Allow: {ALLOW}, MESSAGE\r\n")),
        "{}",
        h.sent[0]
    );
}

#[test]
fn an_inbox_that_does_not_answer_leaves_a_503() {
    let mut h = inbox("192.0.2.7");
    h.input(&text("z9hG4bKm6", PLAIN, b"1 2026-000123", ""));
    assert_eq!(h.texts.len(), 1);
    h.advance(REGISTRAR_WAIT + Duration::from_millis(1));
    let late = h.sent.last().unwrap().clone();
    assert!(
        late.starts_with("SIP/2.0 503 Service Unavailable\r\n") && late.contains("Retry-After: "),
        "{late}"
    );
    // The answer that comes after is dropped.
    let id = h.texts[0].id;
    h.sent.clear();
    h.core.answer_handed(
        RegisterAnswer {
            id,
            status: 200,
            reason: "OK",
            headers: Vec::new(),
        },
        h.now,
    );
    h.drain();
    assert!(h.take().is_empty());
}
