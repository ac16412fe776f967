//! Time from a ticket becoming `open` to its first page leaving the gateway
//! (target: under 200 ms at the 99th percentile). Both instants are Redis's
//! clock: the opening time the transition script stores, and the id of the
//! page's entry in the events stream.
//!
//! Run: `cargo bench --bench page_latency [-- TICKETS RATE_PER_S]`
//! (needs redis-server; everything on 127.0.0.1).

// Micro-benchmarks time synchronous code with the wall clock.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod support;

use std::time::Duration;

use hotline::app::App;
use hotline::tickets::model::Change;
use hotline::tickets::model::{Register, State};
use hotline::tickets::store::NewTicket;
use hotline::tickets::Store;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with("--")).collect();
    let tickets: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let rate: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20.0);
    let dir = std::env::temp_dir().join(format!("hotline-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let redis = support::Redis::start().expect("redis-server");
    let s = support::bench_settings(&dir, &redis);
    let app = App::build(s.clone()).await.unwrap();
    let stop = CancellationToken::new();
    let gw = tokio::spawn(app.run_until_stopped(stop.clone()));
    let store = Store::connect(&s.redis.url, "hotline:").unwrap();

    let mut numbers = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    for i in 0..tickets {
        pace.tick().await;
        let t = NewTicket {
            call_id: format!("bench-{i}"),
            call: String::new(),
            received_at: jiff::Timestamp::now(),
            register: Register::default(),
        };
        let (n, _) = store.create(&t, "bench").await.unwrap();
        let mut open = Change::new("bench", "call_ended");
        open.to = Some(State::Open);
        store
            .change(&n, &open, |r| r.intake.whereabouts = Some("x".into()))
            .await
            .unwrap();
        numbers.push(n);
    }
    // Wait (bounded) for every ticket's first page.
    let mut conn = store.connection();
    let mut first: std::collections::HashMap<String, i64> = Default::default();
    for _ in 0..200 {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg("hotline:events")
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        for (id, fields) in entries {
            let ms: i64 = id.split('-').next().unwrap().parse().unwrap();
            let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            // Pages only: the stream also carries the tickets' changes.
            if let (Some(kind), Some(t)) = (field("kind"), field("ticket")) {
                if kind == "page" {
                    first.entry(t.clone()).or_insert(ms);
                }
            }
        }
        if first.len() >= numbers.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut lat = Vec::new();
    for n in &numbers {
        let opened: Option<i64> = redis::cmd("HGET")
            .arg(format!("hotline:paging:{n}"))
            .arg("opened_ms")
            .query_async(&mut conn)
            .await
            .unwrap();
        if let (Some(o), Some(f)) = (opened, first.get(n)) {
            lat.push(f - o);
        }
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!("tickets opened      {}", numbers.len());
    println!("tickets paged       {}", lat.len());
    if !lat.is_empty() {
        println!(
            "open -> first page  median {} ms, p99 {} ms, max {} ms (target p99 < 200 ms)",
            pct(0.5),
            pct(0.99),
            lat[lat.len() - 1]
        );
    }
    stop.cancel();
    let _ = gw.await;
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}
