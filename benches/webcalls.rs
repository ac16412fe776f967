//! Concurrent browser calls (ICE, DTLS-SRTP, G.711) the gateway carries on
//! this machine: test browsers (`benches/support/browser.rs`: the
//! webrtc-rs crates' client side, not the gateway's code) call at RATE a
//! second until CALLS are up, each sending 20 ms of SRTP audio for SECONDS
//! while the gateway plays its prompts, then hang up. It reports the time
//! from offer to keyed media (p50, p99, max), the gateway's media clock
//! (late ticks), what reached the gateway (`rtp_received` against what was
//! sent) and any SRTP failure or refusal. The load generator shares the
//! machine (and the process) with the gateway, as SIPp does in the SIP load
//! harness.
//!
//! Run: `cargo bench --bench webcalls [-- CALLS RATE SECONDS]`
//! (default 50 10 20; needs redis-server; everything on 127.0.0.1).

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use hotline::app::App;
use support::browser::{rtp, Browser};
use tokio_util::sync::CancellationToken;

struct Outcome {
    setup: Duration,
    sent: u64,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let calls: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(50);
    let rate: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10.0);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    let dir = std::env::temp_dir().join(format!("hotline-webcalls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let redis = support::Redis::start().expect("redis-server");
    let mut s = support::bench_settings(&dir, &redis);
    // Every browser is 127.0.0.1: the per-source limits would stop the run.
    s.webrtc.max_calls = calls;
    s.webrtc.calls_per_source = calls;
    s.webrtc.offers_per_minute = calls * 2;
    let app = App::build(s.clone()).await.unwrap();
    let http = app.http_addr();
    let metrics = app.metrics.clone();
    let stop = CancellationToken::new();
    let gw = tokio::spawn(app.run_until_stopped(stop.clone()));
    let scrape = |body: &str, name: &str| -> u64 {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let get_metrics = || async {
        hotline::webhook::client()
            .unwrap()
            .get(format!("http://{http}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = get_metrics().await;

    println!("browser calls: {calls} at {rate}/s, {seconds} s of audio each");
    let started = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut tasks = Vec::new();
    for _ in 0..calls {
        pace.tick().await;
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let mut b = Browser::call(http).await?;
            let setup = t0.elapsed();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let mut buf = [0u8; 2048];
            let mut sent = 0u64;
            for i in 0..seconds * 50 {
                tick.tick().await;
                let p = rtp(i as u16, (i * 160) as u32, 0, &[0xAA; 160]);
                b.send_rtp(&p).await;
                sent += 1;
                // What the gateway sent meanwhile (prompts), drained.
                while b.sock.try_recv_from(&mut buf).is_ok() {}
            }
            b.hang_up(http).await;
            Ok::<_, String>(Outcome { setup, sent })
        }));
    }
    let mut setups = Vec::new();
    let (mut sent, mut failed) = (0u64, Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            Ok(o) => {
                setups.push(o.setup);
                sent += o.sent;
            }
            Err(e) => failed.push(e),
        }
    }
    // Let the last packets and the hang-ups land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = get_metrics().await;
    let delta = |name: &str| scrape(&after, name) - scrape(&before, name);
    setups.sort();
    let pct = |p: f64| {
        setups
            .get(((setups.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let ticks = delta("hotline_media_ticks_total");
    let late = delta("hotline_media_late_ticks_total");
    let received = delta("hotline_rtp_received_total");
    println!(
        "calls connected {}/{calls}, failed {}",
        setups.len(),
        failed.len()
    );
    for e in failed.iter().take(5) {
        println!("  failure: {e}");
    }
    println!(
        "offer to keyed media: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "media clock: {ticks} ticks, {late} late (>60 ms): {:.3} %",
        late as f64 * 100.0 / ticks.max(1) as f64
    );
    println!(
        "caller audio: {sent} SRTP packets sent, {received} taken by the gateway ({:.3} % missing)",
        (sent.saturating_sub(received)) as f64 * 100.0 / sent.max(1) as f64
    );
    println!(
        "srtp failures {}, refused {}, not connected {}, calls shed {}",
        delta("hotline_srtp_auth_failed_total"),
        delta("hotline_webrtc_refused_total"),
        delta("hotline_webrtc_failed_total"),
        metrics
            .sip
            .sip_shed
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    println!("elapsed {:.1} s", started.elapsed().as_secs_f64());
    stop.cancel();
    let _ = gw.await;
    let _ = std::fs::remove_dir_all(&dir);
}
