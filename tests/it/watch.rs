//! The channels watched (issue 33): a trunk that stops answering OPTIONS,
//! webhook receivers that answer errors, a softphone that is not
//! registered. Each found, told once to the desk and the director (at a
//! SIP MESSAGE phone and a webhook receiver), shown on `/metrics`,
//! `/healthz` and the board; and the recovery told. Intervals of a second
//! through `[watch]`; outcomes awaited with `eventually`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline::watch::{DailyAt, WatchSettings};
use serde_json::Value;
use tokio::net::UdpSocket;

use crate::helpers::*;

/// A trunk on loopback that answers OPTIONS with 200 while `answering`.
struct Trunk {
    addr: SocketAddr,
    answering: Arc<AtomicBool>,
    /// The OPTIONS received, answered or not.
    options: Arc<Mutex<Vec<String>>>,
}

impl Trunk {
    async fn start() -> Trunk {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let answering = Arc::new(AtomicBool::new(true));
        let options = Arc::new(Mutex::new(Vec::new()));
        let (a, o) = (answering.clone(), options.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if !text.starts_with("OPTIONS ") {
                    continue;
                }
                o.lock().unwrap().push(text.clone());
                if !a.load(Ordering::SeqCst) {
                    continue;
                }
                let ok = ok_to(&text, Some("trunk"));
                let _ = sock.send_to(ok.as_bytes(), from).await;
            }
        });
        Trunk {
            addr,
            answering,
            options,
        }
    }
}

/// The watch on, with nothing on its schedule (each test sets its check).
fn watching() -> WatchSettings {
    WatchSettings {
        enabled: true,
        trunk_options_seconds: 0,
        webhook_test_at: DailyAt(None),
        softphone_check_seconds: 0,
        duty_check_at: DailyAt(None),
        ..WatchSettings::default()
    }
}

/// How many of `texts` contain `what`.
fn count(texts: &Mutex<Vec<String>>, what: &str) -> usize {
    texts
        .lock()
        .unwrap()
        .iter()
        .filter(|t| t.contains(what))
        .count()
}

async fn metrics(gw: &Gateway) -> String {
    gw.get("/metrics").await.1
}

/// The notices go to the desk (m-desk-1, m-desk-2) and the director
/// (m-chen): three SIP MESSAGEs at the test phone; the director's also at
/// the webhook receiver `hook`.
const RECIPIENTS: usize = 3;

/// A trunk that answers OPTIONS, then stops: down after two failed checks,
/// told once to the desk and the director, on `/metrics`, `/healthz` and
/// the board with since when (Asia/Shanghai); it answers again: up, told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_that_stops_answering_options_is_reported_down_then_up_again() {
    let (phone_addr, _, messages) = phone().await;
    let (hook, posts) = webhook(FirstPages::Taken).await;
    let trunk = Trunk::start().await;
    let mut s = settings();
    s.roster.file = roster_with_hook(phone_addr);
    s.paging.webhooks = toml::from_str(&format!(
        "[hook]\nurl = \"http://{hook}/hook\"\ntimeout_ms = 2000\nretries = 0\n"
    ))
    .unwrap();
    s.trunk = Some(
        toml::from_str(&format!(
            "proxy = \"{}\"\nfrom_user = \"053212368\"\n",
            trunk.addr
        ))
        .unwrap(),
    );
    s.watch = WatchSettings {
        trunk_options_seconds: 1,
        trunk_down_after: 2,
        ..watching()
    };
    let gw = Gateway::start(s).await;
    eventually("the trunk seen up", Duration::from_secs(10), || async {
        metrics(&gw)
            .await
            .contains("hotline_channel_up{channel=\"trunk\"} 1\n")
    })
    .await;
    let first = trunk.options.lock().unwrap()[0].clone();
    assert!(
        first.starts_with("OPTIONS sip:127.0.0.1 SIP/2.0\r\n"),
        "{first}"
    );
    assert!(
        header(&first, "From")
            .unwrap()
            .contains("sip:053212368@127.0.0.1"),
        "{first}"
    );
    // First seen working is no news.
    assert_eq!(count(&messages, "中继"), 0);

    let stopped = jiff::Timestamp::now();
    trunk.answering.store(false, Ordering::SeqCst);
    eventually(
        "the desk and the director told the trunk is down",
        Duration::from_secs(20),
        || async {
            count(&messages, "中继离线 since") == RECIPIENTS && count(&posts, "中继离线 since") == 1
        },
    )
    .await;
    let detected = jiff::Timestamp::now();
    let m = metrics(&gw).await;
    assert!(
        m.contains("hotline_channel_up{channel=\"trunk\"} 0\n"),
        "{m}"
    );
    assert!(
        m.contains("hotline_channel_checks_total{channel=\"trunk\",outcome=\"failed\"}"),
        "{m}"
    );
    let (code, health) = gw.get("/healthz").await;
    assert_eq!(code, 200, "calls are still answered: {health}");
    assert!(health.contains("\"channels_down\":[\"trunk\"]"), "{health}");

    // The board: a red line with since when, in Asia/Shanghai time.
    let api = Api::new(&gw);
    let director = api.logged_in(&gw.store, &["m-chen"]).await.remove(0);
    let (status, board) = api.call("GET", "/board", Some(&director), None).await;
    assert_eq!(status, 200, "{board}");
    let trunk_state = board["watch"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "trunk")
        .cloned()
        .expect("the trunk on the board");
    assert_eq!(trunk_state["up"], false, "{board}");
    let since: jiff::Timestamp = trunk_state["since"].as_str().unwrap().parse().unwrap();
    assert!(
        stopped <= since && since <= detected,
        "{stopped} <= {since} <= {detected}"
    );
    let local = since
        .to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .strftime("%H:%M")
        .to_string();
    let problems = board["watch"]["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p
            .as_str()
            .unwrap()
            .starts_with(&format!("中继离线 since {local}"))),
        "{board}"
    );

    // Still down, two checks more: no second notice.
    let failures = |gw: &Gateway| {
        let store = gw.store.clone();
        async move {
            let json = store
                .watch_record(hotline::tickets::watch::WatchRecord::Channels, "trunk")
                .await
                .unwrap()
                .unwrap();
            serde_json::from_str::<Value>(&json).unwrap()["failures"]
                .as_u64()
                .unwrap()
        }
    };
    let now_failed = failures(&gw).await;
    eventually(
        "two more failed checks",
        Duration::from_secs(10),
        || async { failures(&gw).await >= now_failed + 2 },
    )
    .await;
    assert_eq!(count(&messages, "中继离线"), RECIPIENTS, "one notice each");
    assert_eq!(count(&posts, "中继离线"), 1);

    trunk.answering.store(true, Ordering::SeqCst);
    eventually(
        "the desk and the director told it answers again",
        Duration::from_secs(20),
        || async {
            count(&messages, "中继已恢复") == RECIPIENTS && count(&posts, "中继已恢复") == 1
        },
    )
    .await;
    assert!(metrics(&gw)
        .await
        .contains("hotline_channel_up{channel=\"trunk\"} 1\n"));
    let (_, health) = gw.get("/healthz").await;
    assert!(!health.contains("channels_down"), "{health}");
    gw.stop().await;
}

/// Webhook receivers for the test, by path: `/err500` answers HTTP 500;
/// `/robot` a WeCom robot's 200 with `errcode` 93000 until `robot_ok`.
async fn failing_receivers(
    robot_ok: Arc<AtomicBool>,
) -> (SocketAddr, Arc<Mutex<Vec<(String, String)>>>) {
    use axum::http::StatusCode;
    let posts = Arc::new(Mutex::new(Vec::new()));
    let p = posts.clone();
    let app = axum::Router::new().route(
        "/{which}",
        axum::routing::post(
            move |axum::extract::Path(which): axum::extract::Path<String>, body: String| {
                let (p, ok) = (p.clone(), robot_ok.clone());
                async move {
                    p.lock().unwrap().push((which.clone(), body));
                    match which.as_str() {
                        "err500" => (StatusCode::INTERNAL_SERVER_ERROR, "boom".to_string()),
                        _ if ok.load(Ordering::SeqCst) => {
                            (StatusCode::OK, "{\"errcode\":0,\"errmsg\":\"ok\"}".into())
                        }
                        _ => (
                            StatusCode::OK,
                            "{\"errcode\":93000,\"errmsg\":\"invalid webhook url\"}".into(),
                        ),
                    }
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (addr, posts)
}

/// The on-demand test (the API's and the admin socket's): a receiver
/// answering HTTP 500 and a WeCom robot answering `errcode` 93000 are
/// broken, the working one is not; the breaks are told once to the desk
/// and the director through what works (never through the broken robot,
/// though the desk's member is on it), shown on `/metrics` and the board;
/// the robot working again is told. Only the board's roles may ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_receivers_answering_errors_are_reported_on_the_on_demand_test() {
    let (phone_addr, _, messages) = phone().await;
    let (hook, good) = webhook(FirstPages::Taken).await;
    let robot_ok = Arc::new(AtomicBool::new(false));
    let (bad, bad_posts) = failing_receivers(robot_ok.clone()).await;
    let mut s = settings();
    // The director on `hook`; the desk's m-desk-1 on the robot.
    let roster = std::fs::read_to_string(roster_with_hook(phone_addr))
        .unwrap()
        .replace(
            "id = \"m-desk-1\"",
            "id = \"m-desk-1\"\nwebhook = \"robot\"",
        );
    s.roster.file = test_roster(&roster);
    s.paging.webhooks = toml::from_str(&format!(
        "[hook]\nurl = \"http://{hook}/hook\"\ntimeout_ms = 2000\nretries = 0\n\
[err500]\nurl = \"http://{bad}/err500\"\ntimeout_ms = 2000\nretries = 1\n\
[robot]\nurl = \"http://{bad}/robot?key=SECRET\"\nformat = \"wecom\"\ntimeout_ms = 2000\nretries = 0\n"
    ))
    .unwrap();
    s.watch = watching();
    let gw = Gateway::start(s).await;
    let api = Api::new(&gw);
    let tokens = api.logged_in(&gw.store, &["m-chen", "u1-officer"]).await;
    let (director, officer) = (&tokens[0], &tokens[1]);
    let (status, body) = api
        .call("POST", "/watch/test-webhooks", Some(officer), None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(bad_posts.lock().unwrap().len(), 0, "nothing tested");

    let (status, body) = api
        .call("POST", "/watch/test-webhooks", Some(director), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let outcome = |name: &str| {
        body["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["receiver"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {body}"))
    };
    assert_eq!(outcome("hook")["ok"], true, "{body}");
    assert_eq!(outcome("hook")["outcome"], "delivered");
    assert_eq!(outcome("err500")["ok"], false, "{body}");
    assert_eq!(outcome("err500")["outcome"], "receiver err500: HTTP 500");
    assert_eq!(outcome("robot")["ok"], false, "{body}");
    assert_eq!(outcome("robot")["outcome"], "receiver robot: errcode 93000");
    assert!(!body.to_string().contains("SECRET"), "no URL: {body}");
    // The test message itself reached each (twice the 500: one retry).
    assert_eq!(count(&good, "测试消息"), 1);
    let tested = |which: &str| {
        bad_posts
            .lock()
            .unwrap()
            .iter()
            .filter(|(w, _)| w == which)
            .count()
    };
    assert_eq!((tested("err500"), tested("robot")), (2, 1));

    // Told once each, the robot's last: then nothing more is on its way.
    eventually("both breaks told", Duration::from_secs(20), || async {
        count(&messages, "消息推送 robot 故障") == RECIPIENTS
            && count(&good, "消息推送 robot 故障") == 1
    })
    .await;
    assert_eq!(count(&messages, "消息推送 err500 故障"), RECIPIENTS);
    assert_eq!(count(&good, "消息推送 err500 故障"), 1);
    assert!(count(&messages, "errcode 93000") >= 1);
    assert_eq!(tested("robot"), 1, "no notice through the broken robot");
    assert_eq!(
        count(&messages, "消息推送 hook"),
        0,
        "a working one is no news"
    );

    let m = metrics(&gw).await;
    for line in [
        "hotline_channel_up{channel=\"webhook\",name=\"robot\"} 0\n",
        "hotline_channel_up{channel=\"webhook\",name=\"err500\"} 0\n",
        "hotline_channel_up{channel=\"webhook\",name=\"hook\"} 1\n",
        "hotline_channel_checks_total{channel=\"webhook\",outcome=\"failed\"} 2\n",
    ] {
        assert!(m.contains(line), "{line}: {m}");
    }
    let (_, board) = api.call("GET", "/board", Some(director), None).await;
    let problems = board["watch"]["problems"].to_string();
    assert!(
        problems.contains("消息推送 robot 故障 since") && problems.contains("errcode 93000"),
        "{board}"
    );

    // Again, through the admin socket (`hotline watch test-webhooks`), the
    // robot fixed meanwhile: err500 still broken is no news; the robot's
    // recovery is told (the last notice of the round).
    robot_ok.store(true, Ordering::SeqCst);
    let answer = admin(&gw.journal.join("admin.sock"), "watch test-webhooks").await;
    assert!(answer.starts_with("error\n"), "{answer}");
    assert!(
        answer.contains("err500 BROKEN: receiver err500: HTTP 500\n"),
        "{answer}"
    );
    assert!(answer.contains("robot ok: delivered\n"), "{answer}");
    assert!(answer.contains("hook ok: delivered\n"), "{answer}");
    eventually(
        "the robot's recovery told",
        Duration::from_secs(20),
        || async { count(&messages, "消息推送 robot 已恢复") == RECIPIENTS },
    )
    .await;
    assert_eq!(count(&messages, "消息推送 err500 故障"), RECIPIENTS);
    assert!(metrics(&gw)
        .await
        .contains("hotline_channel_up{channel=\"webhook\",name=\"robot\"} 1\n"));
    gw.stop().await;
}

/// A member paged at a registered softphone (p-sun, the court police on
/// duty at every hour of the test roster) with no live binding: told to the
/// desk and the director, on `/metrics` and the board; once the softphone
/// registers, told again as put right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_paged_at_a_softphone_that_is_not_registered_is_reported() {
    let (phone_addr, _, messages) = phone().await;
    let (hook, _) = webhook(FirstPages::Taken).await;
    let mut s = settings();
    let roster = std::fs::read_to_string(roster_with_hook(phone_addr))
        .unwrap()
        .replace(
            "police = [\"p-sun\", \"p-zhou\", \"p-wu\"]",
            "police = [\"p-sun\"]",
        )
        .replace(
            "phone = \"+8613800000020\"",
            "phone = \"+8613800000020\"\nsip = \"registered\"",
        );
    s.roster.file = test_roster(&roster);
    s.paging.webhooks = toml::from_str(&format!(
        "[hook]\nurl = \"http://{hook}/hook\"\ntimeout_ms = 2000\nretries = 0\n"
    ))
    .unwrap();
    s.registrar = Some(toml::from_str("").unwrap());
    s.watch = WatchSettings {
        softphone_check_seconds: 1,
        ..watching()
    };
    let gw = Gateway::start(s).await;
    eventually(
        "the missing softphone told",
        Duration::from_secs(15),
        || async { count(&messages, "软电话未注册：孙法警（p-sun）") == RECIPIENTS },
    )
    .await;
    eventually("on /metrics", Duration::from_secs(15), || async {
        metrics(&gw)
            .await
            .contains("hotline_watch_findings{check=\"softphones\"} 1\n")
    })
    .await;
    let api = Api::new(&gw);
    let director = api.logged_in(&gw.store, &["m-chen"]).await.remove(0);
    let (_, board) = api.call("GET", "/board", Some(&director), None).await;
    assert_eq!(board["watch"]["softphones"][0]["key"], "p-sun", "{board}");
    assert!(
        board["watch"]["problems"]
            .to_string()
            .contains("软电话未注册：孙法警（p-sun）"),
        "{board}"
    );

    // The softphone registers: put right, told once.
    gw.store
        .set_sip_ha1(
            "p-sun",
            &hotline::sip::digest::ha1("p-sun", "hotline", PASSWORD),
        )
        .await
        .unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ok = register_for(&gw, &sock, "p-sun", PASSWORD, 1, 3600).await;
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    eventually("the registration told", Duration::from_secs(15), || async {
        count(&messages, "软电话已注册：孙法警（p-sun）") == RECIPIENTS
    })
    .await;
    eventually("none left on /metrics", Duration::from_secs(15), || async {
        metrics(&gw)
            .await
            .contains("hotline_watch_findings{check=\"softphones\"} 0\n")
    })
    .await;
    assert_eq!(count(&messages, "软电话未注册"), RECIPIENTS, "told once");
    gw.stop().await;
}

/// The daily duty check (`roster check` for the next days), its time come
/// (`00:00`: at once): members no page reaches (the court police have only
/// a phone number, and there is no trunk) told to the desk and the
/// director, on `/metrics` and the board (the first three, then how many
/// more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_duty_check_tells_what_roster_check_finds() {
    let (phone_addr, _, messages) = phone().await;
    let (hook, _) = webhook(FirstPages::Taken).await;
    let mut s = settings();
    s.roster.file = roster_with_hook(phone_addr);
    s.paging.webhooks = toml::from_str(&format!(
        "[hook]\nurl = \"http://{hook}/hook\"\ntimeout_ms = 2000\nretries = 0\n"
    ))
    .unwrap();
    s.watch = WatchSettings {
        duty_check_at: DailyAt(Some(jiff::civil::Time::midnight())),
        ..watching()
    };
    let gw = Gateway::start(s).await;
    eventually("the findings told", Duration::from_secs(15), || async {
        count(&messages, "值班检查：") == RECIPIENTS
    })
    .await;
    let told = messages.lock().unwrap().clone();
    assert!(
        told[0].contains("member p-sun (孙法警) has only a phone number"),
        "{told:?}"
    );
    let api = Api::new(&gw);
    let director = api.logged_in(&gw.store, &["m-chen"]).await.remove(0);
    let (_, board) = api.call("GET", "/board", Some(&director), None).await;
    let duty = board["watch"]["duty"].as_array().unwrap();
    assert!(duty.len() > 3, "{board}");
    let problems = board["watch"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 4, "three and how many more: {board}");
    assert_eq!(
        problems[3],
        format!(
            "值班检查：另有 {} 项（hotline roster check）",
            duty.len() - 3
        )
    );
    eventually("on /metrics", Duration::from_secs(15), || async {
        metrics(&gw).await.contains(&format!(
            "hotline_watch_findings{{check=\"duty\"}} {}\n",
            duty.len()
        ))
    })
    .await;
    gw.stop().await;
}
