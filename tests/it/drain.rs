//! Draining for an upgrade (issue 19): on SIGTERM (here the same stop) the
//! gateway answers new INVITEs and a proxy's OPTIONS with 503, says
//! `draining` on `/healthz`, lets the call in progress go on to its own end,
//! and then stops; the call's ticket and recording are as for any call.

use std::time::Duration;

use tokio::net::UdpSocket;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_gateway_refuses_new_calls_and_lets_the_one_in_progress_finish() {
    let mut s = settings();
    s.sip.drain_seconds = 60;
    let gw = Gateway::start(s).await;
    let call = TestCall::place(gw.udp, "drain-in-progress", 0).await;
    let number = ticket_of(&gw.store, "drain-in-progress").await;
    gw.begin_stop();

    // A proxy's probe: 503 with Retry-After (the dispatcher takes it out).
    let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = probe.local_addr().unwrap();
    let mut answered = None;
    for i in 0..50 {
        probe
            .send_to(options(&format!("drain-probe-{i}"), me).as_bytes(), gw.udp)
            .await
            .unwrap();
        let m = recv(&probe, Duration::from_secs(2))
            .await
            .expect("OPTIONS answered");
        if status_of(&m) == Some(503) {
            answered = Some(String::from_utf8_lossy(&m).into_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered = answered.expect("OPTIONS answered 503 while draining");
    assert!(header(&answered, "Retry-After").is_some(), "{answered}");
    // A new call: 503.
    probe
        .send_to(
            Invite::new("drain-new", me)
                .from("<sip:13700000001@127.0.0.1>")
                .tag("t-drain-new")
                .media("m=audio 40000 RTP/AVP 0\r\n")
                .to_string()
                .as_bytes(),
            gw.udp,
        )
        .await
        .unwrap();
    let refused = loop {
        let m = recv(&probe, Duration::from_secs(2))
            .await
            .expect("INVITE answered");
        match status_of(&m) {
            Some(100) => continue,
            other => break other,
        }
    };
    assert_eq!(refused, Some(503));
    let (code, body) = gw.get("/healthz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("\"status\":\"draining\""), "{body}");
    let (_, metrics) = gw.get("/metrics").await;
    assert!(metrics.contains("\nhotline_draining 1\n"), "{metrics}");

    // The call in progress goes on: the greeting keeps coming.
    let mut buf = [0u8; 2048];
    let mut packets = 0;
    while packets < 25 {
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), call.rtp.recv_from(&mut buf))
            .await
            .expect("RTP keeps coming while draining")
            .unwrap();
        if n > 12 {
            packets += 1;
        }
        call.send(&TestCall::packet(
            packets,
            u32::from(packets) * 160,
            0,
            &[0xff; 160],
        ))
        .await;
    }
    // It ends by the caller's hang-up, then the gateway stops (bounded).
    call.hangup().await;
    let store = gw.store.clone();
    let redis = tokio::time::timeout(Duration::from_secs(30), gw.stop())
        .await
        .expect("the gateway stops once its call has ended");
    let t = store.get(&number).await.unwrap();
    assert_eq!(
        t.register.intake.call_end.as_deref(),
        Some("caller_bye"),
        "{t:?}"
    );
    let path = std::path::PathBuf::from(&t.register.recordings[0].path);
    hotline::recording::verify::verify(&path).expect("the recording is final");
    drop(redis);
}

/// `hotline drain` asks the running gateway through its admin socket; with
/// no call up it stops at once and exits 0 (as systemd's stop wants).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotline_drain_stops_the_gateway_cleanly() {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("drain");
    let roster = test_roster(&offline(&test_roster_text()));
    let config = write_config(&dir, &redis, &roster, "");
    let mut gw = Process::start(&config);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["drain", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("draining"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = gw.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running after the drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}\n{}", gw.log.lock().unwrap());
    assert!(gw.log.lock().unwrap().contains("drained"));
}
