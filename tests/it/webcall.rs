//! Calls from a browser, with a test "browser" of the webrtc-rs crates'
//! own making (rtc-dtls as DTLS client, rtc-stun checks, rtc-srtp): the
//! WHIP exchange, ICE, DTLS and SRTP over real loopback sockets, then the
//! call as any other: greeting, keys, a ticket from `web`, a recording.
//! The same in Chromium is `browser::a_caller_in_chromium_…`.

use std::time::Duration;

use crate::helpers::*;

#[path = "../../benches/support/browser.rs"]
mod browser;

use browser::{offer, Browser};

async fn post_offer(gw: &Gateway, sdp: &str) -> reqwest::Response {
    browser::post_offer(gw.http, sdp).await
}

/// The call's state, as the page reads it.
async fn state(gw: &Gateway, b: &Browser) -> serde_json::Value {
    let (status, body) = gw.get(&b.resource).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_call_is_a_call_like_any_other() {
    let gw = Gateway::start(settings()).await;
    let (status, page) = gw.get("/call").await;
    assert_eq!(status, 200);
    assert!(page.contains("拨打举报电话"), "the caller page");
    let mut b = Browser::call(gw.http).await.unwrap();
    // The greeting, in SRTP, PCMU as the offer preferred after Opus.
    let first = loop {
        let wire = recv(&b.sock, Duration::from_secs(5)).await.expect("media");
        if (128..=191).contains(&wire[0]) {
            break wire;
        }
    };
    let plain = b.receive.decrypt_rtp(&first).expect("authentic SRTP");
    assert_eq!(plain[1] & 0x7f, 0, "PCMU");
    assert_the_greeting_opens(0, &plain[12..]);
    // The caller speaks, then keys 1 (a lead) as RFC 4733 events.
    for i in 0..25u16 {
        let p = TestCall::packet(100 + i, 16000 + 160 * u32::from(i), 0, &[0xAA; 160]);
        b.send_rtp(&p).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (i, end) in [(0u16, false), (1, false), (2, true)] {
        let d = (160 * (i + 1)).to_be_bytes();
        let flags = if end { 0x80 | 10 } else { 10 };
        let p = TestCall::packet(200 + i, 30000, 126, &[1, flags, d[0], d[1]]);
        b.send_rtp(&p).await;
    }
    // The page sees the call connected, with its ticket's number.
    let number = {
        let mut n = None;
        for _ in 0..50 {
            let s = state(&gw, &b).await;
            if let Some(t) = s["ticket"].as_str() {
                assert_eq!(s["state"], "connected", "{s}");
                n = Some(t.to_string());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        n.expect("the ticket's number on the page")
    };
    let t = gw.store.get(&number).await.unwrap();
    assert_eq!(t.register.caller.channel.as_deref(), Some("web"));
    assert_eq!(t.register.caller.number, None);
    let sealed = t
        .register
        .caller
        .client_ip
        .clone()
        .expect("the address, sealed");
    assert!(!sealed.contains("127.0.0.1"), "sealed, not in clear");
    let store = gw.store.clone();
    let n = number.clone();
    eventually(
        "the category on the ticket",
        Duration::from_secs(10),
        || async {
            store.get(&n).await.is_ok_and(|t| {
                t.register.intake.category == Some(hotline::tickets::model::Category::Lead)
            })
        },
    )
    .await;
    // The page hangs up.
    assert_eq!(b.hang_up(gw.http).await, 200);
    let n = number.clone();
    eventually("the recording linked", Duration::from_secs(10), || async {
        store
            .get(&n)
            .await
            .is_ok_and(|t| !t.register.recordings.is_empty())
    })
    .await;
    assert_eq!(state(&gw, &b).await["state"], "ended");
    let t = gw.store.get(&number).await.unwrap();
    let samples: Vec<i16> = hound::WavReader::open(&t.register.recordings[0].path)
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect();
    let spoken = hotline::media::g711::ulaw_to_linear(0xAA);
    let heard = samples.iter().step_by(2).filter(|s| **s == spoken).count();
    assert!(
        (24 * 160..=25 * 160).contains(&heard),
        "the browser's audio is recorded: {heard} samples"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_never_connects_leaves_no_ticket_and_bad_offers_are_named() {
    let mut s = settings();
    s.webrtc.connect_seconds = 1;
    s.webrtc.offers_per_minute = 1;
    let gw = Gateway::start(s).await;
    // Not SDP, not WebRTC, no G.711: each refused with what is wrong.
    let r = browser::http()
        .post(format!("http://{}/call/whip", gw.http))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = post_offer(&gw, "v=0\r\nnot sdp at all").await;
    assert_eq!(r.status(), 400);
    let r = post_offer(&gw, &offer("AB:CD").replace("a=ice-ufrag:brw1\r\n", "")).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("ice-ufrag"),
        "{body}"
    );
    // An offer whose browser never checks: failed after connect_seconds,
    // no ticket, and the next offer from this source is over its limit.
    let r = post_offer(&gw, &offer("AB:CD")).await;
    assert_eq!(r.status(), 201);
    let resource = r.headers()["location"].to_str().unwrap().to_string();
    let r = post_offer(&gw, &offer("AB:CD")).await;
    assert_eq!(
        r.status(),
        429,
        "one offer a minute from one address: the bad ones did not count"
    );
    assert_eq!(r.headers()["retry-after"], "60");
    let gw_ref = &gw;
    eventually("the call failed", Duration::from_secs(10), || async {
        let (_, body) = gw_ref.get(&resource).await;
        body.contains("\"failed\"")
    })
    .await;
    let (_, body) = gw.get(&resource).await;
    assert!(body.contains("ICE"), "{body}");
    assert_eq!(
        crate::helpers::redis_dump(&gw.store)
            .await
            .matches("ticket:")
            .count(),
        0,
        "no ticket for a call that never happened"
    );
    let (_, metrics) = gw.get("/metrics").await;
    assert!(
        metrics.contains("hotline_webrtc_failed_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hotline_webrtc_refused_total 1\n"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_offers_from_one_address_gets_its_limit_and_no_more() {
    let mut s = settings();
    s.webrtc.offers_per_minute = 5;
    s.webrtc.calls_per_source = 5;
    s.webrtc.connect_seconds = 2;
    let gw = Gateway::start(s).await;
    // 200 offers at once from 127.0.0.1 (bounded: one request each).
    let sdp = offer("AB:CD");
    let offers = (0..200).map(|_| post_offer(&gw, &sdp));
    let statuses: Vec<u16> = futures::future::join_all(offers)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    let taken = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (taken, refused),
        (5, 195),
        "five a minute from one address: {statuses:?}"
    );
    // The line itself is untouched: a SIP call is answered meanwhile.
    let call = TestCall::place(gw.udp, "during-flood@webcall", 0).await;
    call.hangup().await;
    let (status, _) = gw.get("/healthz").await;
    assert_eq!(status, 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_closes_its_connection_ends_the_call_at_once() {
    let gw = Gateway::start(settings()).await;
    let mut b = Browser::call(gw.http).await.unwrap();
    let gw_ref = &gw;
    let b_ref = &b;
    eventually("connected", Duration::from_secs(10), || async {
        state(gw_ref, b_ref).await["state"] == "connected"
    })
    .await;
    // No DELETE: the tab closes, DTLS says close_notify.
    b.close_dtls().await;
    let b_ref = &b;
    // Well before the media timeout (30 s).
    eventually("ended", Duration::from_secs(5), || async {
        state(gw_ref, b_ref).await["state"] == "ended"
    })
    .await;
    let number = state(&gw, &b).await["ticket"].as_str().unwrap().to_string();
    let store = gw.store.clone();
    eventually(
        "the end on the timeline",
        Duration::from_secs(10),
        || async {
            store.timeline(&number).await.is_ok_and(|tl| {
                tl.iter()
                    .any(|e| e.action == "call_ended" && e.details.contains("peer_gone"))
            })
        },
    )
    .await;
    gw.stop().await;
}

/// Issue 30, behind a reverse proxy (`trusted_proxies = ["127.0.0.1"]`,
/// clients named by `X-Forwarded-For`): one client's 20 junk offers (each
/// a 400, none counted) and 20 wrong PINs for an officer (its own limit:
/// 5 evaluated, then 429) block nobody: that client's own valid offer and
/// another client's are answered 201, and the officer logs in from
/// another client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_one_clients_junk_blocks_nobody() {
    let mut s = settings();
    s.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let gw = Gateway::start(s).await;
    hotline::api::auth::set_pin(&gw.store, "u1-officer", "246810")
        .await
        .unwrap();
    let http = browser::http();
    let whip = format!("http://{}/call/whip", gw.http);
    let offer_from = |client: &'static str, sdp: String| {
        http.post(&whip)
            .header("Content-Type", "application/sdp")
            .header("X-Forwarded-For", client)
            .body(sdp)
            .send()
    };
    let login_from = |client: &'static str, pin: &'static str| {
        http.post(format!("http://{}/api/v1/login", gw.http))
            .header("X-Forwarded-For", client)
            .json(&serde_json::json!({"member": "u1-officer", "pin": pin}))
            .send()
    };
    let attacker = "198.51.100.7";
    for _ in 0..20 {
        let r = offer_from(attacker, "v=0\r\njunk".into()).await.unwrap();
        assert_eq!(r.status(), 400);
    }
    let mut pins = Vec::new();
    for _ in 0..20 {
        pins.push(
            login_from(attacker, "000000")
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(pins.iter().filter(|s| **s == 401).count(), 5, "{pins:?}");
    assert_eq!(pins.iter().filter(|s| **s == 429).count(), 15, "{pins:?}");
    for client in [attacker, "203.0.113.5"] {
        let r = offer_from(client, offer("AB:CD")).await.unwrap();
        assert_eq!(r.status(), 201, "a valid offer from {client}");
    }
    let r = login_from("203.0.113.5", "246810").await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    gw.stop().await;
}

/// Issue 30: a browser caller's address (here the client a trusted proxy
/// names) is in no log line, at debug, in clear: the call's start, a call
/// that never connected and a per-source refusal show its /24 only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_callers_address_is_masked_in_every_log_line() {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("masked");
    let roster = test_roster(&offline(&test_roster_text()));
    let config = write_config(&dir, &redis, &roster, "[webrtc]\nconnect_seconds = 1\n");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[http]\nlisten = \"127.0.0.1:0\"\n",
        "[http]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
    );
    std::fs::write(&config, text).unwrap();
    let gw = Process::start_logging(&config, "debug");
    const CLIENT: &str = "198.51.100.77";
    let b = Browser::call_as(gw.http, Some(CLIENT)).await.unwrap();
    let logged = |what: &'static str| {
        let log = gw.log.clone();
        async move { log.lock().unwrap().contains(what) }
    };
    eventually("the call started", Duration::from_secs(10), || {
        logged("call started")
    })
    .await;
    // A second offer that never connects, then a third over the limit of
    // two calls from one source.
    let whip = format!("http://{}/call/whip", gw.http);
    let offer_as_client = || {
        browser::http()
            .post(&whip)
            .header("Content-Type", "application/sdp")
            .header("X-Forwarded-For", CLIENT)
            .body(offer("AB:CD"))
            .send()
    };
    assert_eq!(offer_as_client().await.unwrap().status(), 201);
    assert_eq!(offer_as_client().await.unwrap().status(), 429);
    eventually("the second not connected", Duration::from_secs(10), || {
        logged("browser call not connected")
    })
    .await;
    assert_eq!(b.hang_up(gw.http).await, 200);
    let log = gw.log.lock().unwrap().clone();
    for line in [
        "call started",
        "browser call not connected",
        "browser call refused: per-source limit",
    ] {
        let l = log
            .lines()
            .find(|l| l.contains(line))
            .unwrap_or_else(|| panic!("no {line:?} in\n{log}"));
        assert!(l.contains("198.51.100.0/24"), "{l}");
    }
    assert!(!log.contains(CLIENT), "{log}");
}
