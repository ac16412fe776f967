//! REGISTER handed to the registrar and its answer sent back.

use super::*;

fn register(branch: &str, cseq: u32, contact: &str, extra: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.7:5062;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:p-sun@192.0.2.1>;tag=ph1\r\n\
To: <sip:p-sun@192.0.2.1>\r\n\
Call-ID: reg-1\r\n\
CSeq: {cseq} REGISTER\r\n\
{contact}{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn registrar() -> Harness {
    Harness::new(CoreConfig {
        registrar: true,
        ..CoreConfig::default()
    })
}

#[test]
fn without_a_registrar_register_is_not_allowed() {
    let mut h = Harness::new(CoreConfig::default());
    h.input(&register(
        "z9hG4bKr1",
        1,
        "Contact: <sip:p-sun@10.0.0.2:5062>\r\n",
        "",
    ));
    assert_eq!(h.take(), ["SIP/2.0 405 Method Not Allowed"]);
    assert!(h.registers.is_empty());
}

#[test]
fn a_register_goes_to_the_registrar_and_its_answer_back() {
    let mut h = registrar();
    let contact = "Contact: <sip:p-sun@10.0.0.2:5062;ob>;expires=600, <sip:p-sun@10.0.0.3>\r\n";
    let msg = register(
        "z9hG4bKr2",
        7,
        contact,
        "Expires: 120\r\nAuthorization: Digest username=\"p-sun\"\r\nUser-Agent: Linphone\r\n",
    );
    h.input(&msg);
    // Nothing is said until the registrar decides; a copy changes nothing.
    assert!(h.take().is_empty());
    h.input(&msg);
    assert!(h.take().is_empty());
    assert_eq!(h.registers.len(), 1);
    let r = h.registers.remove(0);
    assert_eq!(
        (r.user.as_str(), r.cseq, r.expires),
        ("p-sun", 7, Some(120))
    );
    assert_eq!(
        r.contacts,
        Contacts::Set(vec![
            ("sip:p-sun@10.0.0.2:5062;ob".into(), Some(600)),
            ("sip:p-sun@10.0.0.3".into(), None),
        ])
    );
    assert_eq!(r.flow, peer());
    assert_eq!(
        r.authorization.as_deref(),
        Some("Digest username=\"p-sun\"")
    );
    assert_eq!(r.user_agent.as_deref(), Some("Linphone"));
    h.core.answer_register(
        RegisterAnswer {
            id: r.id,
            status: 200,
            reason: "OK",
            headers: vec![("Contact", "<sip:p-sun@10.0.0.2:5062;ob>;expires=600".into())],
        },
        h.now,
    );
    h.drain();
    let ok = h.sent.pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert!(
        ok.contains("Contact: <sip:p-sun@10.0.0.2:5062;ob>;expires=600\r\n"),
        "{ok}"
    );
    assert!(header_values(&ok, "To")[0].contains(";tag="), "{ok}");
    // The copy now gets the same answer; a late second answer is dropped.
    h.input(&msg);
    assert_eq!(h.take(), ["SIP/2.0 200 OK"]);
    h.core.answer_register(
        RegisterAnswer {
            id: r.id,
            status: 500,
            reason: "Late",
            headers: Vec::new(),
        },
        h.now,
    );
    h.drain();
    assert!(h.take().is_empty());
}

#[test]
fn a_registrar_that_does_not_answer_gives_503() {
    let mut h = registrar();
    h.input(&register("z9hG4bKr3", 1, "", ""));
    assert_eq!(h.registers[0].contacts, Contacts::Query);
    h.advance(REGISTRAR_WAIT - Duration::from_millis(1));
    assert!(h.take().is_empty());
    h.advance(Duration::from_millis(1));
    let sent = h.sent.clone();
    assert_eq!(h.take(), ["SIP/2.0 503 Service Unavailable"]);
    assert!(sent[0].contains("Retry-After: "), "{}", sent[0]);
}

#[test]
fn malformed_registers_are_refused_before_the_registrar() {
    let mut h = registrar();
    for (contact, extra, want) in [
        (
            "Contact: *\r\n",
            "",
            "SIP/2.0 400 Contact * Needs Expires 0 Alone",
        ),
        (
            "Contact: *, <sip:a@10.0.0.2>\r\n",
            "Expires: 0\r\n",
            "SIP/2.0 400 Contact * Needs Expires 0 Alone",
        ),
        (
            "Contact: <tel:+8613800000000>\r\n",
            "",
            "SIP/2.0 400 Contact Must Be A SIP URI",
        ),
        (
            "Contact: <sip:a@10.0.0.2>;expires=soon\r\n",
            "",
            "SIP/2.0 400 Bad Contact Expires",
        ),
        (
            "Contact: <sip:a@10.0.0.2>\r\n",
            "Expires: -5\r\n",
            "SIP/2.0 400 Bad Expires",
        ),
    ] {
        let branch = format!("z9hG4bK{}", rand::random::<u32>());
        h.input(&register(&branch, 1, contact, extra));
        assert_eq!(h.take(), [want], "{contact} {extra}");
    }
    let no_user = String::from_utf8(register("z9hG4bKr9", 1, "", ""))
        .unwrap()
        .replace("To: <sip:p-sun@192.0.2.1>", "To: <sip:192.0.2.1>");
    h.input(no_user.as_bytes());
    assert_eq!(h.take(), ["SIP/2.0 400 To Names No User"]);
    assert!(h.registers.is_empty());
    // `*` with Expires: 0 removes everything.
    h.input(&register(
        "z9hG4bKr10",
        2,
        "Contact: *\r\n",
        "Expires: 0\r\n",
    ));
    assert_eq!(h.registers[0].contacts, Contacts::RemoveAll);
}

#[test]
fn options_name_register_when_we_are_a_registrar() {
    let mut h = registrar();
    h.input(&request("OPTIONS", "z9hG4bKo1", "o1", 1, None, ""));
    let ok = h.sent.pop().unwrap();
    assert!(
        ok.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK, REGISTER\r\n"),
        "{ok}"
    );
}
