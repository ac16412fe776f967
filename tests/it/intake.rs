//! The intake over the wire: the same keys by SIP INFO, by in-band tones and
//! by RFC 4733 events (SIPp playing the pcaps sip-tester ships) give the
//! same ticket.

use std::time::Duration;

use hotline::media::dtmf;
use hotline::tickets::model::{Category, State};
use hotline::tickets::{Store, Ticket};

use crate::helpers::*;

/// Category 1 (during the greeting), case number 234, confirm, start the
/// message, end it.
const KEYS: &str = "1234#15#";

/// Waits until the intake's last step (message ended) is on the ticket.
async fn intake_done(store: &Store, call_id: &str) -> Ticket {
    eventually(
        "the intake is on the ticket",
        Duration::from_secs(20),
        || async {
            ticket_now(store, call_id)
                .await
                .is_some_and(|t| t.register.intake.message_end_ms.is_some())
        },
    )
    .await;
    ticket_now(store, call_id).await.unwrap()
}

fn assert_fields(t: &Ticket) {
    let i = &t.register.intake;
    assert_eq!(i.category, Some(Category::Lead));
    assert_eq!(i.case_number.as_deref(), Some("234"));
    assert!(!i.urgent);
    let (s, e) = (i.message_start_ms.unwrap(), i.message_end_ms.unwrap());
    assert!(s <= e, "message marks in order: {s} {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_by_sip_info() {
    let gw = Gateway::start(settings()).await;
    let call = TestCall::place(gw.udp, "info@t", 0).await;
    for (n, k) in KEYS.chars().enumerate() {
        call.info(n as u32, k).await;
    }
    let t = intake_done(&gw.store, "info@t").await;
    assert_fields(&t);
    // The closing reads the ticket number back, then the gateway hangs up.
    call.expect_bye(Duration::from_secs(30)).await;
    let store = gw.store.clone();
    eventually("ended by the intake", Duration::from_secs(10), || async {
        ticket_now(&store, "info@t")
            .await
            .is_some_and(|t| t.register.intake.call_end.as_deref() == Some("intake_complete"))
    })
    .await;
    let t = ticket_now(&gw.store, "info@t").await.unwrap();
    assert_eq!(t.state, State::Open, "a usable report is open for dispatch");
    let actions: Vec<String> = gw
        .store
        .timeline(&t.number)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for step in [
        "intake_category",
        "intake_case_number",
        "intake_message_started",
        "intake_message_ended",
    ] {
        assert!(actions.iter().any(|a| a == step), "{step} in {actions:?}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_by_inband_tones() {
    let gw = Gateway::start(settings()).await;
    // No telephone-event offered: the gateway listens for tones.
    let call = TestCall::place_with(gw.udp, "tones@t", 0, false).await;
    let mut audio = Vec::new();
    for k in KEYS.chars() {
        audio.extend(dtmf::tone(k, 100, 12000.0));
        audio.extend(vec![0i16; 800]);
    }
    // Sent in real time, as a phone would.
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    for (i, frame) in audio.chunks(160).enumerate() {
        let bytes: Vec<u8> = frame
            .iter()
            .map(|&s| hotline::media::g711::linear_to_ulaw(s))
            .collect();
        pace.tick().await;
        call.send(&TestCall::packet(i as u16, (i * 160) as u32, 0, &bytes))
            .await;
    }
    let t = intake_done(&gw.store, "tones@t").await;
    assert_fields(&t);
    call.hangup().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_by_rfc4733_from_sipp() {
    let gw = Gateway::start(settings()).await;
    let media_port = free_port().to_string();
    let (ok, log) = sipp(gw.udp, "uac_dtmf_2833.xml", "u1", &["-mp", &media_port]).await;
    assert!(ok, "sipp failed: {log}");
    // SIPp's Call-ID is its own: find the one ticket.
    let all = gw.store.list("all", 10).await.unwrap();
    assert_eq!(all.len(), 1);
    let t = intake_done(&gw.store, &all[0].call_id).await;
    assert_fields(&t);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violence_is_urgent_and_open_at_once() {
    let gw = Gateway::start(settings()).await;
    let call = TestCall::place(gw.udp, "urgent@t", 0).await;
    call.info(0, '2').await;
    let store = gw.store.clone();
    eventually(
        "open and urgent while the caller is still on",
        Duration::from_secs(10),
        || async {
            ticket_now(&store, "urgent@t")
                .await
                .is_some_and(|t| t.state == State::Open && t.register.intake.urgent)
        },
    )
    .await;
    call.hangup().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_is_not_taken_for_keys() {
    let gw = Gateway::start(settings()).await;
    let call = TestCall::place_with(gw.udp, "speech@t", 0, false).await;
    let speech: Vec<i16> = hound::WavReader::open(repo().join("tests/fixtures/speech.wav"))
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .take(8000 * 4)
        .collect();
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    for (i, frame) in speech.chunks(160).enumerate() {
        let bytes: Vec<u8> = frame
            .iter()
            .map(|&s| hotline::media::g711::linear_to_ulaw(s))
            .collect();
        pace.tick().await;
        call.send(&TestCall::packet(i as u16, (i * 160) as u32, 0, &bytes))
            .await;
    }
    call.hangup().await;
    // Everything the call did is on the ticket once its recording is.
    let store = gw.store.clone();
    eventually(
        "the call is on its ticket",
        Duration::from_secs(10),
        || async {
            ticket_now(&store, "speech@t")
                .await
                .is_some_and(|t| !t.register.recordings.is_empty())
        },
    )
    .await;
    let t = ticket_now(&gw.store, "speech@t").await.unwrap();
    assert_eq!(
        t.register.intake.category, None,
        "four seconds of speech pressed no key"
    );
    assert_eq!(t.state, State::Abandoned);
    gw.stop().await;
}
