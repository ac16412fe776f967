//! Registering with the trunk.

use super::*;

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
    // A challenge answered is no outcome.
    assert!(h.registrations.is_empty());
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
    assert_eq!(
        h.registrations,
        [RegistrationState::Registered { granted_s: 60 }]
    );
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
    assert_eq!(
        h.registrations.last(),
        Some(&RegistrationState::Failed { status: Some(403) })
    );
    h.sent.clear();
    h.advance(Duration::from_secs(29));
    assert!(!h.sent.iter().any(|m| m.starts_with("REGISTER")));
    h.advance(Duration::from_secs(1));
    assert!(h.sent.iter().any(|m| m.starts_with("REGISTER")), "retried");
    // Not answered at all (Timer F): failed, with no status.
    h.advance(Duration::from_secs(33));
    assert_eq!(
        h.registrations.last(),
        Some(&RegistrationState::Failed { status: None })
    );
}
