//! Paging over the wire: SIP MESSAGEs to a phone on loopback, a webhook
//! receiver that fails twice then takes the page, events for the mobile
//! page, repeats that stop on acknowledgement, and the five-minute breach
//! (policy times shortened through config).

use std::sync::atomic::Ordering;
use std::time::Duration;

use hotline::tickets::model::Change;
use hotline::tickets::model::State;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violence_pages_by_message_webhook_and_event_until_acknowledged() {
    let (phone_addr, messages, bodies) = phone().await;
    let (hook, posts) = webhook(FirstPages::Refused(2)).await;
    let mut s = settings();
    s.roster.file = roster_with_hook(phone_addr);
    s.paging.webhooks = toml::from_str(&format!(
        "[hook]\nurl = \"http://{hook}/hook\"\nformat = \"wecom\"\ntimeout_ms = 2000\nretries = 3\n"
    ))
    .unwrap();
    // The violence policy, in seconds instead of minutes.
    s.paging.policies = toml::from_str(
        "[violence]\nsteps = [\n\
  { after_seconds = 0, targets = [\"duty_unit\", \"court_police\", \"director\"], repeat_seconds = 1, until = \"acknowledged\" },\n\
  { after_seconds = 4, targets = [\"chief_commander\"], unless = \"dispatched\", breach = true, note = \"五分钟内未出警\" },\n]\n",
    )
    .unwrap();
    let gw = Gateway::start(s).await;
    let call = TestCall::place(gw.udp, "page@t", 0).await;
    call.info(0, '2').await; // violent resistance: open at once
    let store = gw.store.clone();
    let number = ticket_of(&store, "page@t").await;
    let pages = |action: &'static str| {
        let store = store.clone();
        let number = number.clone();
        async move {
            store
                .timeline(&number)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == action)
                .collect::<Vec<_>>()
        }
    };
    // Two rounds of step 0 (the first and one repeat), then 签收.
    eventually("step 0 repeated once", Duration::from_secs(10), || async {
        pages("page")
            .await
            .iter()
            .any(|e| e.details.contains("\"repeat\":1"))
    })
    .await;
    let mut ack = Change::new("u1-officer", "acknowledge");
    ack.to = Some(State::Acknowledged);
    store
        .change(&number, &ack, |r| {
            r.dispatch.acknowledged_by = Some("u1-officer".into())
        })
        .await
        .unwrap();
    // The breach step still comes: acknowledged is not dispatched.
    eventually(
        "the breach is on the ticket",
        Duration::from_secs(10),
        || async {
            store
                .get(&number)
                .await
                .is_ok_and(|t| t.register.dispatch.five_minute_breach)
        },
    )
    .await;
    let all = pages("page").await;
    // No round of step 0 starts after the 签收, however slow this machine
    // is: in timeline order, step 0's pages after the acknowledgement are
    // of the round in flight when it landed, at most one past the last
    // round before it.
    let tl = store.timeline(&number).await.unwrap();
    let acked_at = tl
        .iter()
        .position(|e| e.action == "acknowledge")
        .expect("the acknowledgement is on the timeline");
    let round = |e: &hotline::tickets::model::Event| -> Option<u64> {
        let d: serde_json::Value = serde_json::from_str(&e.details).ok()?;
        (e.action == "page" && d["step"] == 0 && d["member"] == "m-chen" && d["channel"] == "event")
            .then(|| d["repeat"].as_u64())
            .flatten()
    };
    let before = tl[..acked_at]
        .iter()
        .filter_map(round)
        .max()
        .expect("rounds before");
    let after: Vec<u64> = tl[acked_at..].iter().filter_map(round).collect();
    assert!(
        after.iter().all(|r| *r <= before + 1),
        "a round of step 0 started after the acknowledgement: before {before}, after {after:?}"
    );
    // The SIP phone got MESSAGEs that carry the ticket but not the caller.
    assert!(messages.load(Ordering::SeqCst) >= 5);
    for b in bodies.lock().unwrap().iter() {
        assert!(b.contains(&number) && !b.contains("13700000000"), "{b}");
    }
    assert!(all
        .iter()
        .any(|e| e.details.contains("\"channel\":\"sip_message\"")
            && e.details.contains("\"ok\":true")));
    // The webhook failed twice, then took it.
    assert!(
        all.iter()
            .any(|e| e.details.contains("\"channel\":\"webhook\"")
                && e.details.contains("delivered after 2 retries")),
        "{all:?}"
    );
    let page_posts: Vec<String> = posts
        .lock()
        .unwrap()
        .iter()
        .filter(|b| !b.contains("交接班"))
        .cloned()
        .collect();
    assert!(page_posts.len() >= 3, "{page_posts:?}");
    assert!(
        page_posts.iter().all(|b| b.contains("举报工单")),
        "{page_posts:?}"
    );
    // Events for the officers' page.
    let mut c = store.connection();
    let n: usize = redis::cmd("XLEN")
        .arg("hotline:events")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(n >= 5, "{n} events");
    // The ticket is listed for the unit that was paged and for its members.
    let on_duty = s_unit(&store, &number).await;
    assert!(on_duty, "ticket indexed under the paged unit");
    // The chief commander was told of the breach (the attempt goes on the
    // timeline once the page has gone out, after the breach mark).
    eventually(
        "the chief commander paged",
        Duration::from_secs(10),
        || async {
            pages("page").await.iter().any(|e| {
                e.details.contains("\"member\":\"m-guo\"") && e.details.contains("\"step\":1")
            })
        },
    )
    .await;
    call.hangup().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_page_each_ticket_once() {
    let (phone_addr, messages, bodies) = phone().await;
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("two");
    let roster = roster_for(phone_addr);
    let a_dir = dir.join("a");
    let b_dir = dir.join("b");
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let _a = Process::start(&write_config(&a_dir, &redis, &roster, ""));
    let _b = Process::start(&write_config(&b_dir, &redis, &roster, ""));
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();
    let numbers = open_tickets(&store, 100, "two").await;
    // Step 0 of a lead: the duty unit's officer (the one member with a SIP URI).
    eventually("every ticket paged", Duration::from_secs(30), || async {
        messages.load(Ordering::SeqCst) >= 100
    })
    .await;
    // Each ticket's step 0 fires once: a second page for a ticket could only
    // come from a second claim of the same step by the other process.
    let bodies = bodies.lock().unwrap().clone();
    for n in &numbers {
        let count = bodies.iter().filter(|b| b.contains(n.as_str())).count();
        assert_eq!(count, 1, "ticket {n} paged {count} times");
    }
    assert_eq!(bodies.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_leaves_its_step_to_the_other() {
    let (phone_addr, _messages, _) = phone().await;
    // The director's webhook hangs on its first post: gateway A is stuck
    // mid-step when it is killed.
    let (hook, posts) = webhook(FirstPages::Held).await;
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("takeover");
    let roster = roster_with_hook(phone_addr);
    let extra = format!(
        "[paging]\nlease_seconds = 2\n[paging.webhooks.hook]\nurl = \"http://{hook}/hook\"\ntimeout_ms = 30000\nretries = 0\n\
[paging.policies.lead]\nsteps = [{{ after_seconds = 0, targets = [\"duty_unit\", \"director\"] }}]\n"
    );
    let (a_dir, b_dir) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let mut a = Process::start(&write_config(&a_dir, &redis, &roster, &extra));
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();
    let numbers = open_tickets(&store, 1, "kill").await;
    eventually(
        "A is stuck on the webhook",
        Duration::from_secs(10),
        || async { posts.lock().unwrap().iter().any(|b| !b.contains("交接班")) },
    )
    .await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let _b = Process::start(&write_config(&b_dir, &redis, &roster, &extra));
    // After A's lease, B fires the step and records it.
    eventually("B finished the step", Duration::from_secs(20), || async {
        store.timeline(&numbers[0]).await.is_ok_and(|tl| {
            tl.iter().any(|e| {
                e.action == "page"
                    && e.details.contains("\"channel\":\"webhook\"")
                    && e.details.contains("\"ok\":true")
            })
        })
    })
    .await;
    // And the step is settled (the timeline is written before the due set
    // is): not due any more.
    eventually("the step is settled", Duration::from_secs(10), || async {
        let mut c = store.connection();
        let due: Option<f64> = redis::cmd("ZSCORE")
            .arg("hotline:paging:due")
            .arg(&numbers[0])
            .query_async(&mut c)
            .await
            .unwrap();
        due.is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_test_reports_each_contact_method() {
    let (phone_addr, messages, bodies) = phone().await;
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("pagetest");
    let config = write_config(&dir, &redis, &roster_for(phone_addr), "");
    let run = move |member: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["page", "test", member, "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let out = tokio::task::spawn_blocking(move || run("u1-officer"))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("sip_message  ok   delivered"), "{text}");
    assert!(text.contains("event        ok   delivered"), "{text}");
    assert_eq!(messages.load(Ordering::SeqCst), 1);
    assert!(bodies.lock().unwrap()[0].contains("测试"));
    let config2 = dir.join("hotline.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["page", "test", "nobody", "--config"])
        .arg(&config2)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nobody\" is not a member"));
}

/// Whether some unit's index lists the ticket.
async fn s_unit(store: &hotline::tickets::Store, number: &str) -> bool {
    for u in 1..=5 {
        if store
            .list(&format!("unit:unit-{u}"), 100)
            .await
            .unwrap()
            .iter()
            .any(|t| t.number == number)
        {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paging_call_answered_with_key_1_acknowledges() {
    let port = free_port();
    let phone = sipp_server("uas_page_key.xml", port);
    let mut s = settings();
    s.roster.file = roster_with_officer_phones(port);
    let gw = Gateway::start(s).await;
    let numbers = open_tickets(&gw.store, 1, "call").await;
    let (ok, log) = phone.await.unwrap();
    assert!(ok, "sipp failed: {log}");
    let store = gw.store.clone();
    eventually(
        "acknowledged by the officer who pressed 1",
        Duration::from_secs(10),
        || async {
            store.get(&numbers[0]).await.is_ok_and(|t| {
                t.state == State::Acknowledged
                    && t.register
                        .dispatch
                        .acknowledged_by
                        .as_deref()
                        .is_some_and(|m| m.ends_with("-officer"))
            })
        },
    )
    .await;
    // The attempt is noted once the paging call has ended (after the 签收
    // it brought).
    eventually(
        "the call attempt noted",
        Duration::from_secs(10),
        || async {
            store.timeline(&numbers[0]).await.unwrap().iter().any(|e| {
                e.action == "page"
                    && e.details.contains("\"channel\":\"call\"")
                    && e.details.contains("key 1: acknowledged")
            })
        },
    )
    .await;
    // The paging call is evidence too: recorded on the paged ticket, the
    // WAV checking against its manifest, named in the attempt.
    let tl = store.timeline(&numbers[0]).await.unwrap();
    let attempt = tl
        .iter()
        .find(|e| e.action == "page" && e.details.contains("key 1: acknowledged"))
        .unwrap();
    let d: serde_json::Value = serde_json::from_str(&attempt.details).unwrap();
    let path = std::path::PathBuf::from(d["recording"]["path"].as_str().expect("a recording"));
    assert!(
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&numbers[0]),
        "{path:?}"
    );
    assert!(d["recording"]["duration_ms"].as_u64().unwrap() > 0, "{d}");
    hotline::recording::verify::verify(&path).expect("the paging call's recording verifies");
    let manifest =
        hotline::recording::manifest::Manifest::read(&hotline::recording::manifest_path(&path))
            .unwrap();
    assert_eq!(manifest.ticket, numbers[0]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_phone_is_no_acknowledgement() {
    let port = free_port();
    let phone = sipp_server("uas_page_busy.xml", port);
    let mut s = settings();
    s.roster.file = roster_with_officer_phones(port);
    let gw = Gateway::start(s).await;
    let numbers = open_tickets(&gw.store, 1, "busy").await;
    let (ok, log) = phone.await.unwrap();
    assert!(ok, "sipp failed: {log}");
    let store = gw.store.clone();
    eventually(
        "the refusal is on the timeline",
        Duration::from_secs(10),
        || async {
            store.timeline(&numbers[0]).await.is_ok_and(|tl| {
                tl.iter().any(|e| {
                    e.action == "page"
                        && e.details.contains("\"channel\":\"call\"")
                        && e.details.contains("answered 486")
                })
            })
        },
    )
    .await;
    assert_eq!(
        store.get(&numbers[0]).await.unwrap().state,
        State::Open,
        "escalation goes on"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_without_a_key_is_no_acknowledgement() {
    let port = free_port();
    let phone = sipp_server("uas_page_nokey.xml", port);
    let mut s = settings();
    s.roster.file = roster_with_officer_phones(port);
    s.paging.call_key_seconds = 1;
    s.paging.call_plays = 1;
    let gw = Gateway::start(s).await;
    let numbers = open_tickets(&gw.store, 1, "nokey").await;
    let (ok, log) = phone.await.unwrap();
    assert!(ok, "sipp failed: {log}");
    let store = gw.store.clone();
    eventually(
        "the call's outcome is on the timeline",
        Duration::from_secs(10),
        || async {
            store.timeline(&numbers[0]).await.is_ok_and(|tl| {
                tl.iter()
                    .any(|e| e.action == "page" && e.details.contains("answered, no key"))
            })
        },
    )
    .await;
    assert_eq!(
        store.get(&numbers[0]).await.unwrap().state,
        State::Open,
        "an answering machine does not acknowledge"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenged_paging_call_answers_with_digest_credentials() {
    let port = free_port();
    let phone = sipp_server("uas_page_auth.xml", port);
    let mut s = settings();
    s.roster.file = roster_with_officer_phones(port);
    s.paging.auth_user = Some("hotline".into());
    s.paging.auth_password = Some("secret".into());
    let gw = Gateway::start(s).await;
    let numbers = open_tickets(&gw.store, 1, "auth").await;
    let (ok, log) = phone.await.unwrap();
    assert!(ok, "sipp rejected our credentials: {log}");
    let store = gw.store.clone();
    eventually(
        "the busy answer after authenticating",
        Duration::from_secs(10),
        || async {
            store
                .timeline(&numbers[0])
                .await
                .is_ok_and(|tl| tl.iter().any(|e| e.details.contains("answered 486")))
        },
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_2_passes_the_page_to_the_next_step_at_once() {
    let port = free_port();
    let phone = sipp_server("uas_page_pass.xml", port);
    let mut s = settings();
    s.roster.file = roster_with_officer_phones(port);
    let gw = Gateway::start(s).await;
    let numbers = open_tickets(&gw.store, 1, "pass").await;
    let (ok, log) = phone.await.unwrap();
    assert!(ok, "sipp failed: {log}");
    let store = gw.store.clone();
    // Step 1 (case handler and director) is due at two minutes; key 2 brings it now.
    eventually(
        "the director is paged at once",
        Duration::from_secs(10),
        || async {
            store.timeline(&numbers[0]).await.is_ok_and(|tl| {
                tl.iter().any(|e| {
                    e.action == "page"
                        && e.details.contains("\"step\":1")
                        && e.details.contains("\"member\":\"m-chen\"")
                })
            })
        },
    )
    .await;
    let t = store.get(&numbers[0]).await.unwrap();
    assert_eq!(t.state, State::Open, "passing on is not acknowledging");
    gw.stop().await;
}

/// A step whose targets resolve to nobody (no case handler on a ticket
/// without a case number) is noted on the timeline and passed; the next step
/// still pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_with_nobody_to_page_is_noted_and_passed() {
    let (phone_addr, messages, _) = phone().await;
    let mut s = settings();
    s.roster.file = roster_for(phone_addr);
    s.paging.policies = toml::from_str(
        "[lead]\nsteps = [\n\
  { after_seconds = 0, targets = [\"case_handler\"] },\n\
  { after_seconds = 1, targets = [\"duty_unit\"] },\n]\n",
    )
    .unwrap();
    let gw = Gateway::start(s).await;
    let numbers = open_tickets(&gw.store, 1, "nobody").await;
    let n = &numbers[0];
    // The page is on the timeline once its attempts are back.
    eventually("step 1 paged", Duration::from_secs(10), || async {
        gw.store
            .timeline(n)
            .await
            .is_ok_and(|tl| tl.iter().any(|e| e.action == "page"))
    })
    .await;
    assert!(
        messages.load(Ordering::SeqCst) >= 1,
        "the phone got the page"
    );
    let tl = gw.store.timeline(n).await.unwrap();
    let nobody: Vec<_> = tl.iter().filter(|e| e.action == "page_nobody").collect();
    assert_eq!(nobody.len(), 1, "{tl:?}");
    assert!(nobody[0].details.contains("\"step\":0"), "{tl:?}");
    let pages: Vec<_> = tl.iter().filter(|e| e.action == "page").collect();
    assert!(!pages.is_empty(), "{tl:?}");
    assert!(
        pages.iter().all(|e| e.details.contains("\"step\":1")),
        "{tl:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_only_officer_is_paged_through_the_trunk_and_acknowledges() {
    page_through_the_trunk("udp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_over_tcp_gets_the_paging_call_on_one_connection() {
    page_through_the_trunk("tcp").await;
}

/// SIPp plays the court's trunk over `transport`: it challenges, checks the
/// credentials, the number dialled and the hotline's caller ID; the phone
/// presses 1. Over TCP the challenge, the second INVITE, the ACKs and our
/// BYE all travel on the connection the gateway opened (SIPp's TCP server
/// sees one call on one socket).
async fn page_through_the_trunk(transport: &str) {
    let port = if transport == "tcp" {
        free_tcp_port()
    } else {
        free_port()
    };
    let sipp_transport = if transport == "tcp" { "t1" } else { "u1" };
    let trunk = sipp_server_over("uas_trunk.xml", port, sipp_transport);
    let mut s = settings();
    s.roster.file = roster_police_by_phone();
    s.trunk = Some(
        toml::from_str(&format!(
            "proxy = \"127.0.0.1:{port}\"\ntransport = \"{transport}\"\nfrom_user = \"053212368\"\nusername = \"hotline-trunk\"\npassword = \"trunk-secret\"\n"
        ))
        .unwrap(),
    );
    let gw = Gateway::start(s).await;
    let numbers = open_tickets(&gw.store, 1, "trunk").await;
    let (ok, log) = trunk.await.unwrap();
    assert!(ok, "the trunk's checks failed: {log}");
    let store = gw.store.clone();
    eventually("acknowledged by p-sun", Duration::from_secs(10), || async {
        store.get(&numbers[0]).await.is_ok_and(|t| {
            t.state == State::Acknowledged
                && t.register.dispatch.acknowledged_by.as_deref() == Some("p-sun")
        })
    })
    .await;
    eventually(
        "the phone attempt noted",
        Duration::from_secs(10),
        || async {
            store.timeline(&numbers[0]).await.unwrap().iter().any(|e| {
                e.action == "page"
                    && e.details.contains("\"channel\":\"phone\"")
                    && e.details.contains("key 1: acknowledged")
            })
        },
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_webhook_names_its_receiver_never_its_url() {
    // A robot whose key is in its URL, at a port where nobody listens.
    let mut s = settings();
    let roster: String = offline(&test_roster_text())
        .replace(
            "police = [\"p-sun\", \"p-zhou\", \"p-wu\"]",
            "police = [\"p-sun\"]",
        )
        .replace(
            "phone = \"+8613800000020\"",
            "phone = \"+8613800000020\"\nwebhook = \"robot\"",
        );
    s.roster.file = test_roster(&roster);
    s.paging.webhooks.insert(
        "robot".into(),
        toml::from_str(
            "url = \"http://127.0.0.1:1/cgi-bin/webhook/send?key=top-secret-key\"\nformat = \"wecom\"\nretries = 0\ntimeout_ms = 500\n",
        )
        .unwrap(),
    );
    let gw = Gateway::start(s).await;
    let numbers = open_tickets(&gw.store, 1, "robot").await;
    let store = gw.store.clone();
    eventually(
        "the webhook attempt noted",
        Duration::from_secs(10),
        || async {
            store
                .timeline(&numbers[0])
                .await
                .unwrap()
                .iter()
                .any(|e| e.action == "page" && e.details.contains("\"channel\":\"webhook\""))
        },
    )
    .await;
    let details: String = gw
        .store
        .timeline(&numbers[0])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.details)
        .collect();
    assert!(details.contains("failed: receiver robot"), "{details}");
    assert!(
        !details.contains("top-secret-key"),
        "the key leaked: {details}"
    );
    assert!(
        !details.contains("127.0.0.1:1/cgi-bin"),
        "the URL leaked: {details}"
    );
    gw.stop().await;
}
