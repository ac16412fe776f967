//! `hotline report` (issue 20, statistics): a Redis seeded with tickets of
//! known timings; the medians, 90th percentiles and the breach rate equal
//! the values worked out by hand below, and the SVG pictures carry the
//! expected series (read back from the SVG). Issue 32: consultations,
//! partner calls, linked reports, arrivals and property leads, likewise.

use hotline::tickets::actions;
use hotline::tickets::model::Change;
use hotline::tickets::model::{Answer, Category, Intake, Property, Register, State};
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

/// The value of the figure `section`, `key` (the CSV's last two columns
/// are the ids, the third its value; no cell here holds a comma).
fn row<'a>(csv: &'a str, section: &str, key: &str) -> &'a str {
    csv.lines()
        .find_map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c.len() == 5 && c[3] == section && c[4] == key).then_some(c[2])
        })
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

    // Chinese beside the ids: the category, the outcome, the unit by the
    // roster's name.
    assert!(csv.contains("\n按类别,执行线索,5,category,lead\n"), "{csv}");
    assert!(
        csv.contains("\n按结果,已放弃,1,outcome,abandoned\n"),
        "{csv}"
    );
    assert!(
        csv.contains("\n按签收单位,执行一组,5,unit,unit-1\n"),
        "{csv}"
    );

    // Two days: the charts read back from their SVG: the dates on the time
    // axis, the units of the axes, the legends, the five-minute line.
    let (ok, html, err) = report(&redis.url(), "2026-11-30", "2026-12-01", "html");
    assert!(ok, "{err}");
    let chart = |id: &str| {
        let svg = html
            .split(&format!("<figure data-chart=\"{id}\">"))
            .nth(1)
            .and_then(|r| r.split("</figure>").next())
            .unwrap_or_else(|| panic!("no chart {id}"));
        let texts: Vec<String> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>')?.1.split_once("</text>"))
            .map(|(t, _)| t.trim().to_string())
            .collect();
        (svg.to_string(), texts)
    };
    let (svg, texts) = chart("per-day");
    assert!(svg.starts_with("<svg"), "{svg}");
    for want in [
        "11月30日",
        "12月1日",
        "日期",
        "件数",
        "来电",
        "执行线索",
        "0",
        "6",
    ] {
        assert!(texts.iter().any(|t| t == want), "{want} in {texts:?}");
    }
    let (_, texts) = chart("minutes");
    for want in [
        "首次呼叫",
        "签收",
        "出警",
        "到场",
        "五分钟时限",
        "接报后分钟数",
        "≥10",
        "4–5",
    ] {
        assert!(texts.iter().any(|t| t == want), "{want} in {texts:?}");
    }
    let (_, texts) = chart("breaches");
    for want in ["2026年第49周", "应出警", "超五分钟未出警"] {
        assert!(texts.iter().any(|t| t == want), "{want} in {texts:?}");
    }
    let (_, texts) = chart("unit");
    for want in ["执行一组", "未签收", "5"] {
        assert!(texts.iter().any(|t| t == want), "{want} in {texts:?}");
    }

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
    assert!(
        html.contains("<figure data-chart=\"per-day\"><svg"),
        "{html}"
    );
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

/// Closed at `at` (and the register edited as given).
async fn closed(
    store: &hotline::tickets::Store,
    n: &str,
    at: Timestamp,
    edit: impl Fn(&mut Register),
) {
    let mut c = Change::new("gateway", "close");
    c.to = Some(State::Closed);
    store
        .change(n, &c, |r| {
            edit(r);
            r.disposal.closed_at = Some(at);
        })
        .await
        .unwrap();
}

/// Issue 32, item 6: the clocks after opening in the statistics. A Redis
/// seeded with two consultations, two partner calls, three leads on one
/// case and a violence report, each with the deadlines the clocks would
/// have set; `hotline report` (CSV) and `/api/v1/stats` (JSON) give the
/// figures worked out by hand beside each ticket. The report runs weeks
/// after every deadline here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_kinds_and_their_deadlines_are_counted_as_worked_out_by_hand() {
    let redis = Redis::start("everysec").await;
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();
    // Monday 16 November 2026, 10:00 in Qingdao.
    let base: Timestamp = "2026-11-16T02:00:00Z".parse().unwrap();
    let at = |minutes: i64| base + SignedDuration::from_mins(minutes);
    // Thursday 19 November, 17:00: both consultations' answer deadline.
    let answer_by: Timestamp = "2026-11-19T09:00:00Z".parse().unwrap();
    let case = "（2026）鲁0203执100号";

    // Consultation 1: answered Wednesday 14:00, in time; Tuesday and
    // Wednesday: 2 working days.
    let answered: Timestamp = "2026-11-18T06:00:00Z".parse().unwrap();
    let c1 = seed_opened(&store, "c1", Category::Consultation, at(0), |r| {
        r.triage.handler = Some("m-zhao".into());
        r.deadlines.answer_by = Some(answer_by);
    })
    .await;
    closed(&store, &c1, answered, |r| {
        r.answer = Some(Answer {
            by: "m-zhao".into(),
            at: answered,
            via: "callback".into(),
            text: "已告知执行进度".into(),
        })
    })
    .await;
    // Consultation 2: still open, unanswered: overdue.
    seed_opened(&store, "c2", Category::Consultation, at(10), |r| {
        r.deadlines.answer_by = Some(answer_by);
    })
    .await;
    // Partner 1 at 10:20, pickup by 10:50: 签收 10:22, 出警 10:25 (5 min),
    // on scene 10:45: collected in time; no arrive_by of its own, so due
    // on scene 30 minutes after leaving (10:55): in time.
    let p1 = seed_opened(&store, "p1", Category::Partner, at(20), |r| {
        r.intake.partner = Some("市北公安分局指挥中心".into());
        r.deadlines.pickup_by = Some(at(50));
    })
    .await;
    seed_dispatched(&store, &p1, at(22), at(25), Some(at(45))).await;
    // Partner 2 at 10:30, pickup by 11:00: 出警 10:40 (10 min), due on
    // scene by 11:10, there at 11:20: the pickup missed, the arrival late.
    let p2 = seed_opened(&store, "p2", Category::Partner, at(30), |r| {
        r.intake.partner = Some("青岛市公安局交警支队".into());
        r.deadlines.pickup_by = Some(at(60));
        r.deadlines.arrive_by = Some(at(70));
    })
    .await;
    seed_dispatched(&store, &p2, at(35), at(40), Some(at(80))).await;
    // Lead 1 on the case at 11:00: 出警 11:04 (4 min), due by 11:34, there
    // 11:30: in time. A property lead, due Monday the 23rd, checked Friday:
    // in time.
    let l1 = seed_opened(&store, "l1", Category::Lead, at(60), |r| {
        r.intake.case_number = Some(case.into());
        r.deadlines.arrive_by = Some(at(94));
        r.deadlines.verify_by = Some("2026-11-23T02:00:00Z".parse().unwrap());
        r.property = Some(Property {
            urgent: false,
            by: "m-chen".into(),
            at: at(61),
            verified_at: Some("2026-11-20T02:00:00Z".parse().unwrap()),
            result: Some("车辆一辆，已查封".into()),
        });
    })
    .await;
    seed_dispatched(&store, &l1, at(62), at(64), Some(at(90))).await;
    // Lead 2 on the case at 12:00, linked to lead 1, past the five
    // minutes; closed at 12:30.
    let l2 = seed_opened(&store, "l2", Category::Lead, at(120), |r| {
        r.intake.case_number = Some(case.into());
        r.triage.linked = vec![l1.clone()];
        r.dispatch.five_minute_breach = true;
    })
    .await;
    closed(&store, &l2, at(150), |_| {}).await;
    // Lead 3 on the case at 13:00: linked to both, sent to lead 1's
    // officers; closed at 13:30.
    let l3 = seed_opened(&store, "l3", Category::Lead, at(180), |r| {
        r.intake.case_number = Some(case.into());
        r.triage.linked = vec![l1.clone(), l2.clone()];
        r.triage.joined = Some(l1.clone());
        r.triage.joined_officers = vec!["u1-officer".into()];
    })
    .await;
    closed(&store, &l3, at(210), |_| {}).await;
    // Violence at 14:00: 出警 14:03 (3 min), due by 14:33, never there. An
    // urgent property lead due Thursday 14:00, unchecked: missed.
    let v = seed_opened(&store, "v", Category::Violence, at(240), |r| {
        r.deadlines.verify_by = Some(at(240 + 3 * 24 * 60));
        r.property = Some(Property {
            urgent: true,
            by: "m-chen".into(),
            at: at(241),
            verified_at: None,
            result: None,
        });
    })
    .await;
    seed_dispatched(&store, &v, at(241), at(243), None).await;

    let (ok, csv, err) = report(&redis.url(), "2026-11-16", "2026-11-16", "csv");
    assert!(ok, "{err}");
    for (section, key, value) in [
        ("tickets", "all", "8"),
        ("category", "lead", "3"),
        ("category", "violence", "1"),
        ("category", "partner", "2"),
        ("category", "consultation", "2"),
        ("category", "complaint", "0"),
        ("category", "preservation", "0"),
        ("category", "other", "0"),
        // Held to the five minutes: the partners, the leads, the violence
        // report (not the consultations); lead 2 breached: 1 of 6.
        ("five_minute", "opened", "6"),
        ("five_minute", "breaches", "1"),
        ("five_minute", "rate", "0.167"),
        // 出警 after 3, 4, 5, 10 minutes: the 2nd and the 4th by rank.
        ("seconds_median", "dispatched", "240.0"),
        ("seconds_p90", "dispatched", "600.0"),
        // Closed: leads 2 and 3 after 30 minutes; not consultation 1.
        ("seconds_median", "closed", "1800.0"),
        ("consultations", "received", "2"),
        ("consultations", "answered", "1"),
        ("consultations", "answered_in_time", "1"),
        ("consultations", "overdue", "1"),
        ("consultations", "working_days_median", "2"),
        ("partners", "received", "2"),
        ("partners", "collected_in_time", "1"),
        ("partners", "missed", "1"),
        ("linked", "reports", "2"),
        ("linked", "joined", "1"),
        ("arrivals", "dispatched", "4"),
        ("arrivals", "in_time", "2"),
        ("arrivals", "late", "1"),
        ("arrivals", "never_arrived", "1"),
        ("property", "marked", "2"),
        ("property", "verified_in_time", "1"),
        ("property", "missed", "1"),
    ] {
        assert_eq!(row(&csv, section, key), value, "{section},{key}\n{csv}");
    }

    // The same through the API.
    let gw = Gateway::start_with(settings(), redis).await;
    let api = crate::helpers::Api::new(&gw);
    let director = api.logged_in(&gw.store, &["m-chen"]).await.remove(0);
    let (s, b) = api
        .call(
            "GET",
            "/stats?from=2026-11-16&to=2026-11-16",
            Some(&director),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["tickets"], 8, "{b}");
    assert_eq!(b["by_category"]["consultation"], 2, "{b}");
    assert_eq!(b["by_category"]["partner"], 2, "{b}");
    assert_eq!(
        (&b["opened"], &b["breaches"]),
        (&6.into(), &1.into()),
        "{b}"
    );
    assert_eq!(
        b["consultations"],
        serde_json::json!({
            "received": 2, "answered": 1, "answered_in_time": 1, "overdue": 1,
            "working_days_to_answer": {"count": 1, "median": 2.0, "p90": 2.0},
        })
    );
    assert_eq!(
        b["partners"],
        serde_json::json!({"received": 2, "collected_in_time": 1, "missed": 1})
    );
    assert_eq!(b["linked"], serde_json::json!({"reports": 2, "joined": 1}));
    assert_eq!(
        b["arrivals"],
        serde_json::json!({"dispatched": 4, "in_time": 2, "late": 1, "never_arrived": 1})
    );
    assert_eq!(
        b["property"],
        serde_json::json!({"marked": 2, "verified_in_time": 1, "missed": 1})
    );
    gw.stop().await;
}
