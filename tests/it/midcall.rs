//! What a PBX or trunk does to a call in progress: moves its media, holds
//! and resumes, refreshes the session, requires reliable provisionals.

use std::time::Duration;

use tokio::net::UdpSocket;

use crate::helpers::*;

/// RTP packets arriving on `sock` within `window`, with the first one's SSRC.
async fn count_rtp(sock: &UdpSocket, window: Duration) -> (usize, Option<u32>) {
    let mut buf = [0u8; 2048];
    let end = tokio::time::Instant::now() + window;
    let (mut n, mut ssrc) = (0, None);
    while let Ok(Ok((len, _))) = tokio::time::timeout_at(end, sock.recv_from(&mut buf)).await {
        if len >= 12 {
            n += 1;
            ssrc.get_or_insert(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
        }
    }
    (n, ssrc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_invite_moves_our_rtp_to_the_new_port_at_once() {
    let gw = Gateway::start(settings()).await;
    let call = TestCall::place(gw.udp, "move@midcall", 8).await;
    // The greeting flows to port A.
    let (before, ssrc_a) = count_rtp(&call.rtp, Duration::from_millis(500)).await;
    assert!(before >= 5, "RTP to the first port: {before}");
    // The caller's side moves the media to port B (direct media, an SBC).
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port_b = b.local_addr().unwrap().port();
    let ok = call
        .reinvite(2, &TestCall::offer(port_b, 8, "sendrecv"))
        .await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert!(ok.contains("m=audio "), "an answer: {ok}");
    // What was in flight on A, then nothing more there; B gets the stream.
    count_rtp(&call.rtp, Duration::from_millis(100)).await;
    let (on_b, on_a) = tokio::join!(
        count_rtp(&b, Duration::from_secs(1)),
        count_rtp(&call.rtp, Duration::from_secs(1))
    );
    assert_eq!(on_a.0, 0, "nothing more to the old port");
    assert!(
        on_b.0 >= 20,
        "the prompts go on to the new port: {} packets",
        on_b.0
    );
    assert_eq!(on_b.1, ssrc_a, "the same stream goes on");
    // The caller now talks from B: its audio is taken (the latch re-armed
    // for the new address) and recorded.
    for i in 0..25u16 {
        let p = TestCall::packet(100 + i, 8000 + 160 * u32::from(i), 8, &[0xAA; 160]);
        b.send_to(&p, call.gw_rtp).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    call.hangup_at(3).await;
    let wav = recording_of(&gw.store, "move@midcall").await;
    let samples: Vec<i16> = hound::WavReader::open(&wav)
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect();
    // Left is the caller: 25 packets of A-law (no code of which is zero).
    let caller = samples.iter().step_by(2).filter(|s| **s != 0).count();
    // (The last packet may still be in flight when the call ends.)
    assert!(
        (24 * 160..=25 * 160).contains(&caller),
        "the caller's audio after the move is recorded: {caller} samples"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_stops_our_audio_and_is_marked_in_the_recording() {
    let gw = Gateway::start(settings()).await;
    let call = TestCall::place(gw.udp, "hold@midcall", 8).await;
    let port = call.rtp.local_addr().unwrap().port();
    let (n, _) = count_rtp(&call.rtp, Duration::from_millis(300)).await;
    assert!(n >= 3, "audio before the hold: {n}");
    let ok = call
        .reinvite(2, &TestCall::offer(port, 8, "sendonly"))
        .await;
    assert!(ok.contains("a=recvonly\r\n"), "{ok}");
    count_rtp(&call.rtp, Duration::from_millis(100)).await;
    let (held, _) = count_rtp(&call.rtp, Duration::from_millis(1200)).await;
    assert_eq!(held, 0, "nothing sent while on hold");
    let ok = call
        .reinvite(3, &TestCall::offer(port, 8, "sendrecv"))
        .await;
    assert!(ok.contains("a=sendrecv\r\n"), "{ok}");
    let (resumed, _) = count_rtp(&call.rtp, Duration::from_secs(1)).await;
    assert!(
        resumed >= 20,
        "the prompt goes on after the hold: {resumed}"
    );
    call.hangup_at(4).await;
    // The manifest marks the span on hold.
    let wav = recording_of(&gw.store, "hold@midcall").await;
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(hotline::recording::manifest_path(&wav)).unwrap(),
    )
    .unwrap();
    let holds = manifest["holds"].as_array().expect("holds in the manifest");
    assert_eq!(holds.len(), 1, "{manifest}");
    let (start, end) = (
        holds[0]["start_ms"].as_u64().unwrap(),
        holds[0]["end_ms"].as_u64().unwrap(),
    );
    assert!(end - start >= 1000, "the span on hold: {start}..{end}");
    assert_eq!(manifest["status"], "complete");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_requires_100rel_completes_after_its_prack() {
    let gw = Gateway::start(settings()).await;
    let media = free_port().to_string();
    let (ok, log) = sipp(gw.udp, "uac_100rel.xml", "u1", &["-mp", &media]).await;
    assert!(ok, "sipp failed: {log}");
    assert_eq!(gw.metrics.get("calls_confirmed"), 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_refreshes_a_session_with_a_90_s_timer() {
    // The one test that waits for real time: the refresh comes at 45 s.
    let gw = Gateway::start(settings()).await;
    let media = free_port().to_string();
    let (ok, log) = sipp_for(gw.udp, "uac_session_timer.xml", "u1", &["-mp", &media], 70).await;
    assert!(ok, "sipp failed: {log}");
    assert_eq!(gw.metrics.get("calls_confirmed"), 1);
    gw.stop().await;
}
