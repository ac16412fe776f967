//! The line's real traffic (issue 32), the call's side: a partner (police,
//! another court) calling from the court's trunk with an asserted number
//! skips greeting and menu and the duty is rung at once, the whisper
//! naming the partner; nobody taking it, the partner hears the promise and
//! the ticket is paged at top priority, the page naming the partner; the
//! same number only claimed is a public caller; a consultation keys its
//! case number, hears the answer promised, and pages nobody.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hotline::config::Settings;
use hotline::tickets::model::{Category, Event, State};
use tokio::net::UdpSocket;

use crate::helpers::*;

const PARTNER: &str = "市北分局辽宁路派出所";
/// The partner's number as the trunk asserts it.
const NUMBER: &str = "053282820110";

fn prompt(name: &str) -> Vec<i16> {
    wav(&repo().join("config/prompts").join(name))
}

/// A partners file naming `PARTNER` at `NUMBER`, its name spoken (1.5 s of
/// the speech fixture) in `name.wav` beside it: the file, and the name's
/// samples.
fn partners_file() -> (PathBuf, Vec<i16>) {
    let dir = tempfile_dir("partners");
    let name = wav(&repo().join("tests/fixtures/speech.wav"))[8000..20000].to_vec();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(dir.join("name.wav"), spec).unwrap();
    for s in &name {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
    std::fs::write(
        dir.join("partners.toml"),
        format!(
            "[[partners]]\nname = \"{PARTNER}\"\nnumbers = [\"{NUMBER}\"]\nprompt = \"name.wav\"\n"
        ),
    )
    .unwrap();
    (dir.join("partners.toml"), name)
}

/// The gateway's settings: `roster`, a person for callers within
/// `ring_seconds`, the partners file, and the court's trunk at 127.0.0.1
/// (the numbers it sends are asserted; 127.0.0.2 is anyone else).
fn partner_settings(roster: PathBuf, ring_seconds: u64, partners: PathBuf) -> Settings {
    let mut s = settings();
    s.roster.file = roster;
    s.bridge.enabled = true;
    s.bridge.ring_seconds = ring_seconds;
    s.sip.trusted = vec!["127.0.0.1".parse().unwrap()];
    s.partners.file = Some(partners);
    s
}

/// The sample roster with the officers' phones at `officers` and the
/// director's SIP MESSAGEs to `director`.
fn roster(officers: u16, director: SocketAddr) -> PathBuf {
    let text = std::fs::read_to_string(roster_with_officer_phones(officers)).unwrap();
    test_roster(&text.replace(
        "id = \"m-chen\"\n",
        &format!("id = \"m-chen\"\nmessage = \"sip:page@{director}\"\n"),
    ))
}

/// A call from `ip` whose From and P-Asserted-Identity carry `from` and
/// `asserted`, offering PCMU and telephone-event.
async fn call_from(gw: &Gateway, ip: &str, call_id: &str, from: &str, asserted: &str) -> TestCall {
    TestCall::place_from(
        ip,
        gw.udp,
        call_id,
        &format!("<sip:{from}@{ip}>"),
        &format!("P-Asserted-Identity: <sip:{asserted}@{ip}>\r\n"),
        |port| format!("m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"),
    )
    .await
}

/// The timeline's entry that opened the ticket (from the intake to open).
fn opened_by(tl: &[Event]) -> Option<&Event> {
    tl.iter()
        .find(|e| e.from == Some(State::Intake) && e.to == State::Open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_rings_the_duty_at_once_named_in_the_whisper_and_key_1_takes_it() {
    let officer_rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_port = officer_rtp.local_addr().unwrap().port().to_string();
    let port = free_port();
    let phone = sipp_server_with(
        "uas_bridge_officer.xml",
        port,
        "u1",
        &["-set", "rtp", &rtp_port],
    );
    let (partners, name) = partners_file();
    let roster = roster_with_officer_phones(port);
    let gw = Gateway::start(partner_settings(roster, 30, partners)).await;
    // Through the trunk: the number asserted in P-Asserted-Identity.
    let call = call_from(&gw, "127.0.0.1", "partner@t", "13700000000", NUMBER).await;
    let number = ticket_of(&gw.store, "partner@t").await;
    let mut caller = Side::new(&call.rtp, Some(call.gw_rtp), 0);
    let mut officer = Side::new(&officer_rtp, None, 8);
    let whisper = prompt("partner_whisper.wav");
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    // The officer hears the whole whisper, the partner's name last, then
    // keys 1.
    let mut keyed = false;
    for _ in 0..1000 {
        tick.tick().await;
        caller.send(&[0; 160]).await;
        officer.drain();
        if !keyed && officer.heard.len() + 160 >= whisper.len() + name.len() {
            officer.key(1).await;
            keyed = true;
        }
        if keyed && timeline_has(&gw.store, &number, "bridge_connected").await {
            break;
        }
    }
    assert!(keyed, "the officer heard {} samples", officer.heard.len());
    let tl = gw.store.timeline(&number).await.unwrap();
    assert!(
        tl.iter().any(|e| e.action == "bridge_connected"),
        "no bridge after key 1: {tl:?}"
    );
    let heard = envelope(&officer.heard);
    for (what, said) in [
        ("the partner whisper", &whisper),
        ("the partner's name", &name),
    ] {
        let c = best_correlation(&heard, &envelope(said));
        assert!(c > 0.9, "the officer heard {what}: {c:.2}");
    }
    // No greeting, no menu: the partner's first frame is 「正在为您转接」.
    let connecting: Vec<i16> = prompt("connecting.wav")[..160]
        .iter()
        .map(|s| hotline::media::g711::ulaw_to_linear(hotline::media::g711::linear_to_ulaw(*s)))
        .collect();
    assert_eq!(
        caller.heard.get(..160),
        Some(&connecting[..]),
        "the partner's first frame"
    );
    // Bridged: the partner hears the officer.
    let said = wav(&repo().join("tests/fixtures/speech.wav"))[40000..56000].to_vec();
    let before = caller.heard.len();
    for frame in said
        .chunks_exact(160)
        .chain(std::iter::repeat_n(&[0i16; 160][..], 50))
    {
        tick.tick().await;
        caller.send(&[0; 160]).await;
        officer.send(frame).await;
    }
    let c = best_correlation(&envelope(&caller.heard[before..]), &envelope(&said));
    assert!(c > 0.9, "the partner heard the officer: {c:.2}");

    // The ticket: the partner's, named in clear, opened by the connection
    // (never paged while the duty's phone rang) and 签收 by the officer.
    let t = gw.store.get(&number).await.unwrap();
    assert_eq!(t.register.intake.category, Some(Category::Partner));
    assert!(t.register.intake.urgent);
    assert_eq!(t.register.intake.partner.as_deref(), Some(PARTNER));
    assert_eq!(t.state, State::Acknowledged, "{t:?}");
    let officer_id = t.register.dispatch.acknowledged_by.clone().unwrap();
    assert!(officer_id.ends_with("-officer"), "{officer_id}");
    assert_eq!(t.register.connections[0].member, officer_id);
    assert!(t.register.caller.asserted);
    let tl = gw.store.timeline(&number).await.unwrap();
    assert_eq!(
        opened_by(&tl).map(|e| e.action.as_str()),
        Some("bridge_connected"),
        "{tl:?}"
    );
    let actions: Vec<&str> = tl.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"intake_partner"), "{actions:?}");
    assert!(!actions.contains(&"intake_category"), "{actions:?}");
    // The number stays sealed, as everyone's.
    let dump = redis_dump(&gw.store).await;
    assert!(dump.contains(&number), "the dump holds the ticket");
    assert!(
        !dump.contains(NUMBER),
        "the partner's number in clear in Redis"
    );

    call.hangup().await;
    let (ok, log) = phone.await.unwrap();
    assert!(ok, "sipp failed: {log}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_taking_a_partners_call_promises_the_pickup_and_pages_at_top_priority() {
    let (pages, _, bodies) = phone().await;
    let (duty, rung) = ringing_phone().await;
    let (partners, _) = partners_file();
    let mut s = partner_settings(roster(duty.port(), pages), 3, partners);
    // The paging call to the duty's phone (which never answers) gives up
    // soon, so that the step's attempts reach the timeline.
    s.paging.call_ring_seconds = 2;
    let gw = Gateway::start(s).await;
    let call = call_from(&gw, "127.0.0.1", "partner-nobody@t", NUMBER, NUMBER).await;
    let number = ticket_of(&gw.store, "partner-nobody@t").await;
    let mut caller = Side::new(&call.rtp, Some(call.gw_rtp), 0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    // Bounded: the ring time, the promise (about 12 s) and the tone.
    let mut message = false;
    for _ in 0..1500 {
        tick.tick().await;
        caller.send(&[0; 160]).await;
        if timeline_has(&gw.store, &number, "intake_message_started").await {
            message = true;
            break;
        }
    }
    assert!(
        message,
        "no message after the promise: {:?}",
        gw.store.timeline(&number).await
    );
    assert!(
        !rung.lock().unwrap().is_empty(),
        "the duty's phone was not rung"
    );
    // The partner heard the promise.
    let c = best_correlation(
        &envelope(&caller.heard),
        &envelope(&prompt("partner_promise.wav")[..16000]),
    );
    assert!(c > 0.9, "the partner heard the promise: {c:.2}");
    // The ticket opened when the ring time was over, not before.
    let tl = gw.store.timeline(&number).await.unwrap();
    let at = |a: &str| tl.iter().position(|e| e.action == a);
    let (ringing, missed) = (
        at("bridge_ringing").unwrap(),
        at("bridge_not_connected").unwrap(),
    );
    assert!(ringing < missed, "{tl:?}");
    assert!(
        tl[missed].details.contains("within 3 s"),
        "{}",
        tl[missed].details
    );
    assert_eq!(
        opened_by(&tl).map(|e| e.action.as_str()),
        Some("bridge_not_connected"),
        "{tl:?}"
    );

    // Top priority: the director (the partner policy's first step, not a
    // lead's) gets a page naming the partner.
    let wanted = format!("协助单位：{PARTNER}");
    eventually("the director's page", Duration::from_secs(10), || async {
        bodies
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains(&number) && b.contains(&wanted))
    })
    .await;
    let body = (bodies.lock().unwrap().iter())
        .find(|b| b.contains(&wanted))
        .cloned()
        .unwrap();
    assert!(body.contains("（公安/协助单位，紧急）"), "{body}");
    let store = gw.store.clone();
    eventually(
        "step 0's pages on the timeline",
        Duration::from_secs(20),
        || async {
            store.timeline(&number).await.is_ok_and(|tl| {
                tl.iter().any(|e| {
                    e.action == "page"
                        && e.details.contains("\"member\":\"m-chen\"")
                        && e.details.contains("\"channel\":\"sip_message\"")
                        && e.details.contains("\"step\":0")
                })
            })
        },
    )
    .await;
    let t = gw.store.get(&number).await.unwrap();
    assert_eq!(t.register.intake.category, Some(Category::Partner));
    assert_eq!(t.register.intake.partner.as_deref(), Some(PARTNER));
    // The pickup deadline: [partners] pickup_minutes (30, the default)
    // from the call's receipt.
    assert_eq!(
        t.register.deadlines.pickup_by,
        Some(t.received_at + jiff::SignedDuration::from_mins(30)),
        "{:?}",
        t.register.deadlines
    );
    call.hangup().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partners_number_only_claimed_is_a_public_caller() {
    let (partners, _) = partners_file();
    let roster = test_roster(&offline(&test_roster_text()));
    let gw = Gateway::start(partner_settings(roster, 30, partners)).await;
    // Not from the trunk: From and P-Asserted-Identity are only claimed.
    let call = call_from(&gw, "127.0.0.2", "claimed-partner@t", NUMBER, NUMBER).await;
    hears_the_greeting(&call).await;
    call.info(0, '1').await;
    let store = gw.store.clone();
    eventually(
        "the lead on the ticket",
        Duration::from_secs(10),
        || async {
            ticket_now(&store, "claimed-partner@t")
                .await
                .is_some_and(|t| t.register.intake.category == Some(Category::Lead))
        },
    )
    .await;
    call.hangup().await;
    let t = ticket_now(&gw.store, "claimed-partner@t").await.unwrap();
    assert_eq!(t.register.intake.partner, None);
    assert!(!t.register.caller.asserted);
    let tl = gw.store.timeline(&t.number).await.unwrap();
    assert!(!tl.iter().any(|e| e.action == "intake_partner"), "{tl:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consultation_keys_its_case_hears_the_answer_promised_and_pages_nobody() {
    let (pages, _, bodies) = phone().await;
    let mut s = settings();
    // Every officer's SIP URI is a MESSAGE to `pages`.
    s.roster.file = roster_for(pages);
    let gw = Gateway::start(s).await;
    let call = TestCall::place(gw.udp, "consultation@t", 0).await;
    // 4: consultation; case number 1234, confirmed; the question; its end.
    for (i, k) in "41234#15#".chars().enumerate() {
        call.info(i as u32, k).await;
    }
    let mut caller = Side::new(&call.rtp, Some(call.gw_rtp), 0);
    let talking = async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            caller.send(&[0; 160]).await;
        }
    };
    // The closing said, the gateway hangs up.
    tokio::select! {
        _ = call.expect_bye(Duration::from_secs(40)) => {}
        _ = talking => unreachable!(),
    }
    let c = best_correlation(
        &envelope(&caller.heard),
        &envelope(&prompt("consultation_promise.wav")[..16000]),
    );
    assert!(c > 0.9, "the caller heard the answer promised: {c:.2}");
    let store = gw.store.clone();
    eventually("the consultation open", Duration::from_secs(10), || async {
        ticket_now(&store, "consultation@t")
            .await
            .is_some_and(|t| t.state == State::Open)
    })
    .await;
    let t = ticket_now(&gw.store, "consultation@t").await.unwrap();
    assert_eq!(t.register.intake.category, Some(Category::Consultation));
    assert_eq!(t.register.intake.case_number.as_deref(), Some("1234"));
    assert!(!t.register.intake.urgent);

    // A lead opened after it is paged: the paging worker has had the
    // consultation before it, and paged nobody for it.
    let lead = TestCall::place(gw.udp, "lead-after@t", 0).await;
    lead.info(0, '1').await;
    lead.hangup().await;
    let lead_number = ticket_of(&gw.store, "lead-after@t").await;
    eventually("the lead's page", Duration::from_secs(20), || async {
        bodies
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains(&lead_number))
    })
    .await;
    let paged = bodies.lock().unwrap().clone();
    assert!(!paged.iter().any(|b| b.contains(&t.number)), "{paged:?}");
    let tl = gw.store.timeline(&t.number).await.unwrap();
    assert!(!tl.iter().any(|e| e.action == "page"), "{tl:?}");
    gw.stop().await;
}
