//! `hotline report` (issue 20, statistics): a Redis seeded with tickets of
//! known timings; the medians, 90th percentiles and the breach rate equal
//! the values worked out by hand below, and the SVG pictures carry the
//! expected series (read back from the SVG).

use hotline::tickets::actions;
use hotline::tickets::model::Change;
use hotline::tickets::model::{Category, Intake, Register, State};
use hotline::tickets::store::NewTicket;
use jiff::{SignedDuration, Timestamp};

use crate::helpers::*;

fn report(url: &str, from: &str, to: &str, format: &str) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .current_dir(repo())
        .args(["report", "--from", from, "--to", to, "--format", format])
        .args(["--config", "config/hotline.toml", "--redis-url", url])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn row<'a>(csv: &'a str, section: &str, key: &str) -> &'a str {
    let prefix = format!("{section},{key},");
    csv.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {section},{key} in\n{csv}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_equals_the_figures_worked_out_by_hand() {
    let redis = Redis::start("everysec").await;
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();
    // 30 November 2026, 10:00 in Qingdao.
    let base: Timestamp = "2026-11-30T02:00:00Z".parse().unwrap();
    let secs = |s: i64| SignedDuration::from_secs(s);
    // Five leads: 签收 after 60, 120, 180, 240, 600 s; 出警 after 200, 250,
    // 300, 400, 900 s (the last two past the five minutes: breaches, marked
    // as the paging worker marks them).
    let timings = [(60, 200), (120, 250), (180, 300), (240, 400), (600, 900)];
    let created = |i: usize, at: Timestamp, category: Option<Category>| {
        let store = store.clone();
        async move {
            let t = NewTicket {
                call_id: format!("report-{i}@t"),
                call: format!("report-{i}"),
                received_at: at,
                register: Register {
                    intake: Intake {
                        category,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            };
            store.create(&t, "gateway").await.unwrap().0
        }
    };
    for (i, (ack, out)) in timings.iter().enumerate() {
        let received = base + secs(60 * i as i64);
        let n = created(i, received, Some(Category::Lead)).await;
        let mut open = Change::new("gateway", "call_ended");
        open.to = Some(State::Open);
        store.change(&n, &open, |_| {}).await.unwrap();
        let who = "u1-officer";
        let ack = actions::acknowledge(who, None, received + secs(*ack), serde_json::json!({}));
        store.act(&n, &ack).await.unwrap();
        let v = store.get(&n).await.unwrap().version;
        let go = actions::dispatch(who, v, vec![who.into()], None, received + secs(*out));
        store.act(&n, &go).await.unwrap();
        if *out > 300 {
            let breach = Change::new("gateway", "breach");
            store
                .change(&n, &breach, |r| r.dispatch.five_minute_breach = true)
                .await
                .unwrap();
        }
    }
    // A call that gave nothing (abandoned), the same day; a lead the day
    // before and one the day after: outside the range.
    let n = created(5, base + secs(3600), None).await;
    let mut gone = Change::new("gateway", "call_ended");
    gone.to = Some(State::Abandoned);
    store.change(&n, &gone, |_| {}).await.unwrap();
    created(6, base - secs(86_400), Some(Category::Lead)).await;
    created(7, base + secs(86_400), Some(Category::Violence)).await;

    let (ok, csv, err) = report(&redis.url(), "2026-11-30", "2026-11-30", "csv");
    assert!(ok, "{err}");
    assert_eq!(row(&csv, "tickets", "all"), "6");
    assert_eq!(row(&csv, "category", "lead"), "5");
    assert_eq!(row(&csv, "category", "none"), "1");
    assert_eq!(row(&csv, "outcome", "dispatched"), "5");
    assert_eq!(row(&csv, "outcome", "abandoned"), "1");
    // u1-officer is of unit-1; the abandoned one was never acknowledged.
    assert_eq!(row(&csv, "unit", "unit-1"), "5");
    assert_eq!(row(&csv, "unit", "none"), "1");
    assert_eq!(row(&csv, "week", "2026-W49"), "6");
    // Nearest rank: the median of five is the 3rd, the 90th percentile the 5th.
    assert_eq!(row(&csv, "seconds_median", "acknowledged"), "180.0");
    assert_eq!(row(&csv, "seconds_p90", "acknowledged"), "600.0");
    assert_eq!(row(&csv, "seconds_median", "dispatched"), "300.0");
    assert_eq!(row(&csv, "seconds_p90", "dispatched"), "900.0");
    assert_eq!(row(&csv, "seconds_median", "closed"), "");
    // Five opened, two breached: 0.4.
    assert_eq!(row(&csv, "five_minute", "opened"), "5");
    assert_eq!(row(&csv, "five_minute", "breaches"), "2");
    assert_eq!(row(&csv, "five_minute", "rate"), "0.400");

    // Two days: the per-day series has two points, 6 then 1.
    let (ok, html, err) = report(&redis.url(), "2026-11-30", "2026-12-01", "html");
    assert!(ok, "{err}");
    let points = html
        .split("<polyline id=\"per-day\"")
        .nth(1)
        .and_then(|r| r.split("points=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .expect("the per-day polyline");
    let ys: Vec<f64> = points
        .split(' ')
        .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ys.len(), 2, "{points}");
    assert!(ys[0] < ys[1], "6 tickets drawn higher than 1: {points}");
    // The minutes to 签收 and 出警 as bars: 1, 2, 3, 4 and 10+ minutes; 3, 4,
    // 5, 6 and 10+ (15 minutes).
    let bar = |class: &str, bucket: usize| {
        let needle = format!("class=\"{class}\" data-bucket=\"{bucket}\" data-count=\"");
        html.split(&needle)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no bar {class} {bucket}"))
    };
    for b in [1, 2, 3, 4, 10] {
        assert_eq!(bar("acknowledged", b), 1, "acknowledged bucket {b}");
    }
    for b in [3, 4, 5, 6, 10] {
        assert_eq!(bar("dispatched", b), 1, "dispatched bucket {b}");
    }
    assert_eq!(bar("acknowledged", 0), 0);

    // An empty range is an empty report, a bad date names its parameter.
    let (ok, csv, _) = report(&redis.url(), "2026-01-01", "2026-01-31", "csv");
    assert!(ok);
    assert_eq!(row(&csv, "tickets", "all"), "0");
    let (ok, _, err) = report(&redis.url(), "2026-13-01", "2026-12-01", "csv");
    assert!(!ok);
    assert!(err.contains("--from \"2026-13-01\": not a date"), "{err}");
    let (ok, _, err) = report(&redis.url(), "2026-12-02", "2026-12-01", "csv");
    assert!(!ok);
    assert!(
        err.contains("--to 2026-12-01 is before from 2026-12-02"),
        "{err}"
    );

    // The same through the API, for the board's roles only.
    let gw = Gateway::start_with(settings(), redis).await;
    let api = crate::helpers::Api::new(&gw);
    let tokens = api.logged_in(&gw.store, &["m-chen", "u1-officer"]).await;
    let (director, officer) = (&tokens[0], &tokens[1]);
    let q = "/stats?from=2026-11-30&to=2026-11-30";
    let (s, b) = api.call("GET", q, Some(director), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["tickets"], 6, "{b}");
    assert_eq!(b["dispatched"]["median"], 300.0, "{b}");
    assert_eq!(b["breaches"], 2, "{b}");
    let (s, b) = api.call("GET", q, Some(officer), None).await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = api
        .call(
            "GET",
            "/stats?from=30.11.2026&to=2026-11-30",
            Some(director),
            None,
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .starts_with("from \"30.11.2026\""),
        "{b}"
    );
    let html = api.text(&format!("{q}&format=html"), director).await;
    assert!(html.contains("<polyline id=\"per-day\""), "{html}");
    gw.stop().await;
}

/// Issue 30: a statistics range is at most 366 days (a leap year whole);
/// a longer one is 400 naming `from` and `to`, before any ticket is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statistics_refuse_a_range_over_366_days() {
    let gw = Gateway::start(settings()).await;
    let api = crate::helpers::Api::new(&gw);
    let director = api.logged_in(&gw.store, &["m-chen"]).await.remove(0);
    let (s, b) = api
        .call(
            "GET",
            "/stats?from=2024-01-01&to=2024-12-31",
            Some(&director),
            None,
        )
        .await;
    assert_eq!(s, 200, "366 days: {b}");
    for q in [
        "/stats?from=2024-01-01&to=2025-01-01",
        "/stats?from=2023-01-01&to=2025-12-31&format=csv",
    ] {
        let (s, b) = api.call("GET", q, Some(&director), None).await;
        assert_eq!(s, 400, "{q}: {b}");
        let message = b["message"].as_str().unwrap();
        assert!(
            message.starts_with("from 20") && message.contains(", to 20"),
            "{message}"
        );
        assert!(message.contains("at most 366 days"), "{message}");
    }
    gw.stop().await;
}
