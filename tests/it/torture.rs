//! RFC 4475 and RFC 5118 torture messages (tests/fixtures/): the valid ones
//! parse, none panics, and over UDP each gets the answer in
//! docs/sip-conformance.md — or silence where a drop is right — and the
//! gateway still answers OPTIONS after every one.

use std::time::Duration;

use hotline::sip::message::{parse, Limits};
use tokio::net::UdpSocket;

use crate::helpers::*;

/// `(file, expected status; None = dropped)`.
const EXPECTED: &[(&str, Option<u16>)] = &[
    // RFC 4475 §3.1.1: valid messages.
    ("rfc4475/wsinv.dat", Some(481)),
    ("rfc4475/intmeth.dat", Some(501)),
    ("rfc4475/esc01.dat", Some(200)),
    ("rfc4475/escnull.dat", Some(405)),
    ("rfc4475/esc02.dat", Some(501)),
    ("rfc4475/lwsdisp.dat", Some(200)),
    ("rfc4475/longreq.dat", Some(200)),
    ("rfc4475/dblreq.dat", Some(405)),
    ("rfc4475/semiuri.dat", Some(200)),
    ("rfc4475/transports.dat", Some(200)),
    // MESSAGE is taken (replies to pages): a multipart body is no text.
    ("rfc4475/mpart01.dat", Some(415)),
    ("rfc4475/unreason.dat", None),
    ("rfc4475/noreason.dat", None),
    // §3.1.2: invalid messages.
    ("rfc4475/badinv01.dat", Some(400)),
    ("rfc4475/clerr.dat", Some(400)),
    ("rfc4475/ncl.dat", Some(400)),
    ("rfc4475/scalar02.dat", Some(400)),
    ("rfc4475/scalarlg.dat", None),
    ("rfc4475/quotbal.dat", Some(400)),
    ("rfc4475/ltgtruri.dat", Some(400)),
    ("rfc4475/lwsruri.dat", Some(400)),
    ("rfc4475/lwsstart.dat", Some(400)),
    ("rfc4475/trws.dat", Some(400)),
    ("rfc4475/escruri.dat", Some(400)),
    ("rfc4475/baddate.dat", Some(200)),
    ("rfc4475/regbadct.dat", Some(405)),
    ("rfc4475/badaspec.dat", Some(400)),
    ("rfc4475/baddn.dat", Some(400)),
    ("rfc4475/badvers.dat", Some(505)),
    ("rfc4475/mismatch01.dat", Some(400)),
    ("rfc4475/mismatch02.dat", Some(400)),
    ("rfc4475/bigcode.dat", None),
    // §3.2, §3.3, §3.4: transaction layer and application layer.
    ("rfc4475/badbranch.dat", Some(200)),
    ("rfc4475/insuf.dat", Some(400)),
    ("rfc4475/unkscm.dat", Some(416)),
    ("rfc4475/novelsc.dat", Some(416)),
    ("rfc4475/unksm2.dat", Some(405)),
    ("rfc4475/bext01.dat", Some(420)),
    ("rfc4475/invut.dat", Some(415)),
    ("rfc4475/regaut01.dat", Some(405)),
    ("rfc4475/multi01.dat", Some(400)),
    ("rfc4475/mcl01.dat", Some(400)),
    ("rfc4475/bcast.dat", None),
    ("rfc4475/zeromf.dat", Some(200)),
    ("rfc4475/cparam01.dat", Some(405)),
    ("rfc4475/cparam02.dat", Some(405)),
    ("rfc4475/regescrt.dat", Some(405)),
    ("rfc4475/sdp01.dat", Some(406)),
    ("rfc4475/inv2543.dat", Some(200)),
    // RFC 5118.
    ("rfc5118/ipv6-good", Some(405)),
    ("rfc5118/ipv6-bad", Some(400)),
    ("rfc5118/port-ambiguous", Some(405)),
    ("rfc5118/port-unambiguous", Some(405)),
    ("rfc5118/via-received-param-with-delim", Some(481)),
    ("rfc5118/via-received-param-no-delim", Some(200)),
    ("rfc5118/ipv6-in-sdp", Some(488)),
    ("rfc5118/mult-ip-in-header", Some(481)),
    ("rfc5118/mult-ip-in-sdp", Some(200)),
    ("rfc5118/ipv4-mapped-ipv6", Some(488)),
    ("rfc5118/ipv6-bug-abnf-3-colons", Some(200)),
    ("rfc5118/ipv6-correct-abnf-2-colons", Some(200)),
];

/// RFC 4475 §3.1.1: these must parse.
const VALID: &[&str] = &[
    "wsinv.dat",
    "intmeth.dat",
    "esc01.dat",
    "escnull.dat",
    "esc02.dat",
    "lwsdisp.dat",
    "longreq.dat",
    "dblreq.dat",
    "semiuri.dat",
    "transports.dat",
    "mpart01.dat",
    "unreason.dat",
    "noreason.dat",
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures").join(name)).unwrap()
}

#[test]
fn every_fixture_is_in_the_table() {
    let mut files = Vec::new();
    for dir in ["rfc4475", "rfc5118"] {
        for e in std::fs::read_dir(repo().join("tests/fixtures").join(dir)).unwrap() {
            files.push(format!(
                "{dir}/{}",
                e.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    files.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

#[test]
fn valid_messages_parse_and_none_panics() {
    for (file, _) in EXPECTED {
        let data = fixture(file);
        let r = std::panic::catch_unwind(|| parse(&data, true, &Limits::default()));
        let r = r.unwrap_or_else(|_| panic!("{file} panicked the parser"));
        let name = file.rsplit('/').next().unwrap();
        if file.starts_with("rfc4475") && VALID.contains(&name) {
            assert!(r.is_ok(), "{file} must parse: {:?}", r.err());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_torture_message_gets_the_expected_answer_over_udp() {
    // A conformance run sends faster than an untrusted source may
    // (sip.requests_per_second): it runs from a trusted address.
    let mut s = settings();
    s.sip.trusted = vec!["127.0.0.1".parse().unwrap()];
    let gw = Gateway::start(s).await;
    let mut wrong = Vec::new();
    for (i, (file, expected)) in EXPECTED.iter().enumerate() {
        // A socket per message: answers to one cannot be mistaken for another's.
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(&fixture(file), gw.udp).await.unwrap();
        let probe = format!("probe-{i}");
        sock.send_to(
            options(&probe, sock.local_addr().unwrap()).as_bytes(),
            gw.udp,
        )
        .await
        .unwrap();
        // The core handles datagrams in order: a refusal or a drop is decided
        // before the probe's 200 is sent. A 200 to an INVITE waits for the
        // call layer, so for those we read on until it comes (bounded).
        let mut got = None;
        let mut probed = false;
        while !probed || (got.is_none() && expected.is_some_and(|c| c < 300)) {
            let Some(msg) = recv(&sock, Duration::from_secs(5)).await else {
                break;
            };
            let text = String::from_utf8_lossy(&msg).into_owned();
            if header(&text, "Call-ID") == Some(probe.as_str()) {
                assert_eq!(status_of(&msg), Some(200), "OPTIONS after {file}: {text}");
                probed = true;
                continue;
            }
            match status_of(&msg) {
                Some(code) if code >= 200 && got.is_none() => got = Some(code),
                _ => {}
            }
        }
        assert!(probed, "no answer to OPTIONS after {file}");
        if got != *expected {
            wrong.push(format!("{file}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    gw.stop().await;
}
