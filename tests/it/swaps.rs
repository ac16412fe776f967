//! Swaps and overrides of the duty, the calendar feed, the reminders and
//! the duty's notices (issue 33, items 1-3): a swap asked, accepted and
//! approved puts the member who took it on the next page and in the
//! handover; an override by the director; refusals naming why; a reload
//! that voids a swap and says so; the iCalendar feed parsed back by a
//! strict parser and matching `roster plan`; a day's reminders sent on
//! demand, once. Texts are observed at a test webhook receiver and at SIPp
//! as a member's MESSAGE phone. The roster is the sample without a desk
//! (a unit on duty at any hour), so the duty in force now is known.

use std::process::Command;
use std::time::Duration;

use hotline::roster::{Calendar, Roster};
use jiff::civil::Date;
use serde_json::{json, Value};

use crate::helpers::*;

fn hotline() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hotline"));
    c.current_dir(repo());
    c
}

/// The CLI with `args` and `--config config`: (success, stdout, stderr).
fn cli(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = hotline()
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn calendar() -> Calendar {
    Calendar::load(&repo().join("config/holidays")).unwrap()
}

/// The test roster (offline) with a line added to members' entries: a
/// `message` or `webhook` for the members whose texts a test reads.
fn roster_text(contacts: &[(&str, String)]) -> String {
    let mut text = offline(&test_roster_text());
    for (id, line) in contacts {
        let entry = format!("id = \"{id}\"\n");
        assert!(text.contains(&entry), "{id}");
        text = text.replace(&entry, &format!("{entry}{line}\n"));
    }
    text
}

/// Who holds a day's duty period (the rotation not advanced).
struct Duty {
    day: Date,
    unit: String,
    unit_name: String,
    /// The unit's members' prefix (`u2`).
    crew: String,
    /// Another unit's (`u1`, or `u2` when the unit is unit-1).
    other: String,
    police: String,
}

fn duty_on(day: Date) -> Duty {
    let r = Roster::parse(&test_roster_text(), "roster.toml").unwrap();
    let b = r.period_block(&calendar(), 0, day);
    let unit = b.unit.unwrap();
    let crew = unit.id.replace("unit-", "u");
    let other = if crew == "u1" { "u2" } else { "u1" }.to_string();
    Duty {
        day,
        unit_name: unit.name,
        unit: unit.id,
        crew,
        other,
        police: b.police.unwrap().id,
    }
}

/// The duty period in force now (the test roster has one at any hour).
fn duty_now() -> Duty {
    let r = Roster::parse(&test_roster_text(), "roster.toml").unwrap();
    let p = r.period_at(&calendar(), jiff::Timestamp::now()).unwrap();
    duty_on(p.day)
}

fn today() -> Date {
    hotline::court_time::court_day(jiff::Timestamp::now())
}

fn name_of(id: &str) -> String {
    Roster::parse(&test_roster_text(), "roster.toml")
        .unwrap()
        .name_of(id)
        .unwrap()
        .to_string()
}

/// The webhook receiver `hook` at a test receiver, as `[paging.webhooks]`
/// says it (`section`: with the table's name, for a configuration file).
fn hook_section(hook: std::net::SocketAddr, section: &str) -> String {
    format!("[{section}hook]\nurl = \"http://{hook}/hook\"\ntimeout_ms = 2000\nretries = 0\n")
}

/// A gateway in-process on `redis`, from a configuration file (so that a
/// reload reads it, and the CLI shares its Redis and roster): the gateway
/// and the file.
async fn gateway_from_file(
    redis: Redis,
    dir: &std::path::Path,
    roster: &str,
    extra: &str,
) -> (Gateway, std::path::PathBuf) {
    let path = dir.join("roster.toml");
    std::fs::write(&path, roster).unwrap();
    let config = write_config(dir, &redis, &path, extra);
    let s = hotline::config::Settings::load(&config, &Default::default()).unwrap();
    (Gateway::start_with(s, redis).await, config)
}

/// A swap of `day` asked by `asker` of `with` and accepted by `taker`
/// (`[swaps] approval = false`): in effect at once; its answer.
async fn swap_in_effect(api: &Api, asker: &str, taker: &str, day: Date, with: &str) -> Value {
    let (st, s) = api
        .call(
            "POST",
            "/swaps",
            Some(asker),
            Some(json!({"day": day.to_string(), "with": with})),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    let path = format!("/swaps/{}", s["id"]);
    let (st, s) = api
        .call(
            "POST",
            &path,
            Some(taker),
            Some(json!({"action": "accept"})),
        )
        .await;
    assert_eq!((st, s["state"].as_str()), (200, Some("in_effect")), "{s}");
    s
}

/// Whether ticket `n` was paged to `member`.
async fn paged_to(store: &hotline::tickets::Store, n: &str, member: &str) -> bool {
    store.timeline(n).await.is_ok_and(|tl| {
        tl.iter()
            .any(|e| e.action == "page" && e.details.contains(&format!("\"member\":\"{member}\"")))
    })
}

fn any_contains(texts: &std::sync::Mutex<Vec<String>>, what: &[&str]) -> bool {
    texts
        .lock()
        .unwrap()
        .iter()
        .any(|t| what.iter().all(|w| t.contains(w)))
}

/// Issue 33, item 1: a member asks another (an officer of another unit)
/// to take tonight's duty; the other accepts; the director approves. In
/// force at once: `/roster/now` names the taker, the next ticket's page
/// goes to them and not to the asker, and the move is told to both: the
/// taker at their webhook (what they gained), the asker at their SIPp
/// phone (what they lost; it also took the start's handover and the
/// "accepted, awaiting approval" text). The audit trail names who did
/// what, when, through what.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_asked_accepted_and_approved_pages_the_member_who_took_it() {
    let now = duty_now();
    let asker = format!("{}-officer", now.crew);
    let taker = format!("{}-officer", now.other);
    let sipp_port = free_port();
    let (hook, posts) = webhook(FirstPages::Taken).await;
    let text = roster_text(&[
        (
            &asker,
            format!("message = \"sip:page@127.0.0.1:{sipp_port}\""),
        ),
        (&taker, "webhook = \"hook\"".into()),
    ]);
    let phone = sipp_message_receiver(sipp_port, 3, 40);
    let mut s = settings();
    s.roster.file = test_roster(&text);
    s.paging.webhooks = toml::from_str(&hook_section(hook, "")).unwrap();
    let gw = Gateway::start(s).await;
    let api = Api::new(&gw);
    let t = api.logged_in(&gw.store, &[&asker, &taker, "m-chen"]).await;
    let (a, b, director) = (&t[0], &t[1], &t[2]);

    let (st, swap) = api
        .call(
            "POST",
            "/swaps",
            Some(a),
            Some(json!({"day": now.day.to_string(), "with": taker, "note": "家中有事"})),
        )
        .await;
    assert_eq!(st, 201, "{swap}");
    assert_eq!(swap["state"], "asked", "{swap}");
    let id = swap["id"].as_u64().unwrap();
    let label = format!("换班 #{id}");
    eventually(
        "the request at the taker's webhook",
        Duration::from_secs(10),
        || async { any_contains(&posts, &[&format!("{label} 请求"), "接受或拒绝"]) },
    )
    .await;
    let (st, swap) = api
        .call(
            "POST",
            &format!("/swaps/{id}"),
            Some(b),
            Some(json!({"action": "accept"})),
        )
        .await;
    assert_eq!(
        (st, swap["state"].as_str()),
        (200, Some("accepted")),
        "{swap}"
    );
    // Not in force before the director approves.
    let (_, duty) = api.call("GET", "/roster/now", Some(director), None).await;
    assert!(duty["swaps"].as_array().unwrap().is_empty(), "{duty}");
    let (st, swap) = api
        .call(
            "POST",
            &format!("/swaps/{id}"),
            Some(director),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!(
        (st, swap["state"].as_str()),
        (200, Some("in_effect")),
        "{swap}"
    );

    // In force at once, on this gateway's roster.
    let (_, duty) = api.call("GET", "/roster/now", Some(director), None).await;
    let crew: Vec<&str> = duty["unit"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        crew.contains(&taker.as_str()) && !crew.contains(&asker.as_str()),
        "{duty}"
    );
    assert_eq!(duty["swaps"], json!([id]), "{duty}");
    assert!(
        duty["overrides"][0].as_str().unwrap().contains(&label),
        "{duty}"
    );

    // The next page of a ticket goes to the taker, not to the asker.
    let n = open_tickets(&gw.store, 1, "after-swap").await.remove(0);
    eventually("the page to the taker", Duration::from_secs(15), || async {
        paged_to(&gw.store, &n, &taker).await
    })
    .await;
    assert!(
        !paged_to(&gw.store, &n, &asker).await,
        "the asker was paged"
    );

    // The move told to both, once.
    eventually(
        "the move at the taker's webhook",
        Duration::from_secs(10),
        || async { any_contains(&posts, &[&label, "批准", "新增值班", &now.unit_name]) },
    )
    .await;
    let (ok, trace) = tokio::time::timeout(Duration::from_secs(60), phone)
        .await
        .unwrap()
        .unwrap();
    assert!(ok, "SIPp took three MESSAGEs: {trace}");
    for what in ["交接班", "待批准", "不再值班", label.as_str()] {
        assert!(trace.contains(what), "{what}: {trace}");
    }

    // The audit trail.
    let (st, swap) = api
        .call("GET", &format!("/swaps/{id}"), Some(a), None)
        .await;
    assert_eq!(st, 200, "{swap}");
    let steps: Vec<(&str, &str, &str)> = swap["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap(),
                s["by"].as_str().unwrap(),
                s["via"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("ask", asker.as_str(), "api"),
            ("accept", taker.as_str(), "api"),
            ("approve", "m-chen", "api")
        ]
    );
    assert!(swap["steps"][2]["at"].is_string(), "{swap}");
    gw.stop().await;
}

/// Issue 33, item 1, through the command line before any gateway runs: a
/// swap of tonight's duty asked, accepted, refused to an officer who may
/// not approve and approved by the director; `roster who` shows it; a
/// gateway started then has it in force from its first moment: its
/// handover reaches the member who took the duty and names them, and it
/// sends the notices the command line left in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handover_names_the_member_a_swap_put_on_duty() {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("swap-handover");
    let (phone, _, bodies) = phone_keeping(true).await;
    let now = duty_now();
    let asker = format!("{}-driver", now.crew);
    let taker = format!("{}-driver", now.other);
    let text = roster_text(&[(&taker, format!("message = \"sip:page@{phone}\""))]);
    let path = dir.join("roster.toml");
    std::fs::write(&path, &text).unwrap();
    let config = write_config(&dir, &redis, &path, "");
    let day = now.day.to_string();
    let (ok, out, err) = cli(
        &config,
        &[
            "roster", "swap", "ask", "--by", &asker, "--with", &taker, "--day", &day,
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("#1 换班 #1 asked: "), "{out}");
    let (ok, out, err) = cli(&config, &["roster", "swap", "accept", "1", "--by", &taker]);
    assert!(ok && out.contains("accepted"), "{out}{err}");
    let (ok, out, err) = cli(&config, &["roster", "swap", "approve", "1", "--by", &taker]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("approving a swap is for 执行局长 (director)"),
        "{err}"
    );
    let (ok, out, err) = cli(
        &config,
        &[
            "roster", "swap", "approve", "1", "--by", "m-chen", "--note", "同意",
        ],
    );
    assert!(ok && out.contains("in_effect"), "{out}{err}");
    assert!(out.contains("m-chen approve via cli (同意)"), "{out}");
    let (ok, out, err) = cli(&config, &["roster", "who"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("override   {asker} replaced by {taker} (换班 #1)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{taker} {}", name_of(&taker))),
        "{out}"
    );

    let s = hotline::config::Settings::load(&config, &Default::default()).unwrap();
    let gw = Gateway::start_with(s, redis).await;
    let taker_name = name_of(&taker);
    eventually(
        "the handover at the taker's phone",
        Duration::from_secs(15),
        || async {
            any_contains(&bodies, &["交接班", "接班："])
                && any_contains(&bodies, &["交接班", &taker_name])
        },
    )
    .await;
    let api = Api::new(&gw);
    let director = api.logged_in(&gw.store, &["m-chen"]).await.remove(0);
    let (st, b) = api.call("GET", "/board", Some(&director), None).await;
    assert_eq!(st, 200, "{b}");
    let h = &b["last_handover"];
    assert!(
        h["sent_to"].as_array().unwrap().contains(&json!(taker)),
        "{h}"
    );
    let incoming: Vec<&str> = h["incoming"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(incoming.contains(&taker_name.as_str()), "{h}");
    assert!(!incoming.contains(&name_of(&asker).as_str()), "{h}");
    assert_eq!(b["duty"]["swaps"], json!([1]), "the board's duty: {b}");
    // The move the command line owed, sent by the gateway.
    eventually(
        "the move notice at the taker's phone",
        Duration::from_secs(10),
        || async { any_contains(&bodies, &["换班 #1", "新增值班"]) },
    )
    .await;
    gw.stop().await;
}

/// Issue 33, item 1: the director's override replaces a unit for three
/// days, in force at once (`roster/now`, `GET /swaps`), and the officers
/// whose duty moved are told; refusals name why: a duty in the past, none
/// that day, a clerk for an officer's place, an officer for the court
/// police officer's, accepting someone else's request, approving without
/// the role, an override by an officer; a swap an officer may not see is
/// not found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_by_the_director_and_refusals_that_name_why() {
    let now = duty_now();
    let (hook, posts) = webhook(FirstPages::Taken).await;
    let replaced_officer = format!("{}-officer", now.crew);
    let text = roster_text(&[(&replaced_officer, "webhook = \"hook\"".into())]);
    let mut s = settings();
    s.roster.file = test_roster(&text);
    s.paging.webhooks = toml::from_str(&hook_section(hook, "")).unwrap();
    let gw = Gateway::start(s).await;
    let api = Api::new(&gw);
    let officer = format!("{}-officer", now.crew);
    let clerk = format!("{}-clerk", now.other);
    let other_officer = format!("{}-officer", now.other);
    let bystander = "u5-clerk";
    let t = api
        .logged_in(&gw.store, &["m-chen", &officer, &other_officer, bystander])
        .await;
    let (director, a, b, nobody) = (&t[0], &t[1], &t[2], &t[3]);
    let ask = |day: Date, with: &str| json!({"day": day.to_string(), "with": with});

    // A duty in the past; a day without a duty of theirs.
    let past = now.day - jiff::Span::new().days(3);
    let (st, e) = api
        .call("POST", "/swaps", Some(a), Some(ask(past, &other_officer)))
        .await;
    assert_eq!((st, e["error"].as_str()), (400, Some("refused")), "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{past} is in the past")),
        "{e}"
    );
    let free = now.day + jiff::Span::new().days(1);
    let (st, e) = api
        .call("POST", "/swaps", Some(a), Some(ask(free, &other_officer)))
        .await;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(&format!("has no duty on {free}")),
        "{e}"
    );
    // The role rule: a clerk does not ride as the officer; only police
    // take the court police officer's place.
    let (st, e) = api
        .call("POST", "/swaps", Some(a), Some(ask(now.day, &clerk)))
        .await;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("as 执行员 (officer)")
            && e["message"]
                .as_str()
                .unwrap()
                .contains("only a member who is may ride with that unit"),
        "{e}"
    );
    let police_token = api.logged_in(&gw.store, &[&now.police]).await.remove(0);
    let (st, e) = api
        .call(
            "POST",
            "/swaps",
            Some(&police_token),
            Some(ask(now.day, &other_officer)),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("is not police"),
        "{e}"
    );
    // A valid request: only the member asked may accept it, only the
    // director approve it; someone else's is not even seen.
    let (st, swap) = api
        .call(
            "POST",
            "/swaps",
            Some(a),
            Some(ask(now.day, &other_officer)),
        )
        .await;
    assert_eq!(st, 201, "{swap}");
    let id = swap["id"].as_u64().unwrap();
    let path = format!("/swaps/{id}");
    let (st, e) = api
        .call("POST", &path, Some(a), Some(json!({"action": "accept"})))
        .await;
    assert_eq!((st, e["error"].as_str()), (403, Some("forbidden")), "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(&format!("was asked of {other_officer}")),
        "{e}"
    );
    let (st, e) = api
        .call(
            "POST",
            &path,
            Some(nobody),
            Some(json!({"action": "accept"})),
        )
        .await;
    assert_eq!(st, 404, "{e}");
    assert_eq!(api.call("GET", &path, Some(nobody), None).await.0, 404);
    let (st, _) = api
        .call("POST", &path, Some(b), Some(json!({"action": "accept"})))
        .await;
    assert_eq!(st, 200);
    let (st, e) = api
        .call("POST", &path, Some(b), Some(json!({"action": "approve"})))
        .await;
    assert_eq!(st, 403, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("approving a swap is for 执行局长 (director)"),
        "{e}"
    );
    let (st, e) = api
        .call("POST", &path, Some(b), Some(json!({"action": "accept"})))
        .await;
    assert_eq!((st, e["error"].as_str()), (409, Some("conflict")), "{e}");
    let (st, e) = api
        .call("POST", &path, Some(b), Some(json!({"action": "dance"})))
        .await;
    assert_eq!(st, 400, "{e}");
    // The director rejects it after all.
    let (st, swap) = api
        .call(
            "POST",
            &path,
            Some(director),
            Some(json!({"action": "reject", "note": "人手不足"})),
        )
        .await;
    assert_eq!(
        (st, swap["state"].as_str()),
        (200, Some("rejected")),
        "{swap}"
    );

    // Overrides are the approvers'.
    let to = now.day + jiff::Span::new().days(10);
    let body = json!({"replace": now.unit, "with": "unit-5", "from": now.day.to_string(),
                      "to": to.to_string(), "reason": "外出培训"});
    let (st, e) = api
        .call("POST", "/overrides", Some(a), Some(body.clone()))
        .await;
    assert_eq!(st, 403, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("putting in an override is for 执行局长"),
        "{e}"
    );
    let (st, e) = api
        .call("POST", "/overrides", Some(director), Some(json!({"replace": now.unit, "with": "u5-officer", "from": now.day.to_string(), "to": to.to_string()})))
        .await;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("both be units or both members"),
        "{e}"
    );
    let replacement = if now.unit == "unit-5" {
        "unit-4"
    } else {
        "unit-5"
    };
    let mut body = body;
    body["with"] = json!(replacement);
    let (st, o) = api
        .call("POST", "/overrides", Some(director), Some(body))
        .await;
    assert_eq!(st, 201, "{o}");
    assert_eq!(
        (o["kind"].as_str(), o["state"].as_str()),
        (Some("override"), Some("in_effect")),
        "{o}"
    );
    let oid = o["id"].as_u64().unwrap();
    let (_, duty) = api.call("GET", "/roster/now", Some(a), None).await;
    assert_eq!(duty["unit"]["id"], json!(replacement), "{duty}");
    assert_eq!(duty["swaps"], json!([oid]), "{duty}");
    assert!(
        duty["overrides"][0]
            .as_str()
            .unwrap()
            .contains(&format!("调整 #{oid}：外出培训")),
        "{duty}"
    );
    // The replaced unit's officer told what they no longer hold.
    eventually("the override's notice", Duration::from_secs(10), || async {
        any_contains(
            &posts,
            &[&format!("调整 #{oid}"), "不再值班", &now.unit_name],
        )
    })
    .await;
    // Everyone's list for the board's roles; an officer sees their own.
    let (_, all) = api.call("GET", "/swaps", Some(director), None).await;
    assert_eq!(all["swaps"].as_array().unwrap().len(), 2, "{all}");
    assert_eq!(all["approver"], json!(true));
    let (_, mine) = api.call("GET", "/swaps", Some(nobody), None).await;
    assert!(mine["swaps"].as_array().unwrap().is_empty(), "{mine}");
    // Cancelled: the unit is back.
    let (st, o) = api
        .call(
            "POST",
            &format!("/swaps/{oid}"),
            Some(director),
            Some(json!({"action": "cancel"})),
        )
        .await;
    assert_eq!((st, o["state"].as_str()), (200, Some("cancelled")), "{o}");
    let (_, duty) = api.call("GET", "/roster/now", Some(a), None).await;
    assert_eq!(duty["unit"]["id"], json!(now.unit), "{duty}");
    gw.stop().await;
}

/// Issue 33, item 1: a reload keeps the swaps that still apply and voids
/// one that no longer does (the member who took it left the roster),
/// saying so in its answer and telling the asker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_swaps_that_apply_and_voids_one_that_no_longer_does() {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("swap-reload");
    let (hook, posts) = webhook(FirstPages::Taken).await;
    let d = duty_on(today() + jiff::Span::new().days(3));
    let (clerk, gone) = (format!("{}-clerk", d.crew), format!("{}-clerk", d.other));
    let (driver, stays) = (format!("{}-driver", d.crew), format!("{}-driver", d.other));
    let text = roster_text(&[(&clerk, "webhook = \"hook\"".into())]);
    let extra = format!(
        "[swaps]\napproval = false\nremind_at = \"off\"\n{}",
        hook_section(hook, "paging.webhooks.")
    );
    let (gw, _config) = gateway_from_file(redis, &dir, &text, &extra).await;
    let api = Api::new(&gw);
    let t = api
        .logged_in(&gw.store, &[&clerk, &gone, &driver, &stays])
        .await;
    for (asker, taker, with) in [(&t[0], &t[1], &gone), (&t[2], &t[3], &stays)] {
        swap_in_effect(&api, asker, taker, d.day, with).await;
    }
    // The member who took the first swap leaves the roster.
    let next = text
        .replace(&format!("id = \"{gone}\""), "id = \"left-the-court\"")
        .replace(&format!("\"{gone}\", "), "");
    std::fs::write(dir.join("roster.toml"), next).unwrap();
    let answer = admin(&gw.journal.join("admin.sock"), "reload").await;
    assert!(
        answer.starts_with("ok\nreloaded: configuration "),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("换班 #1 ({} 的 {} 值班由 {} 代班) no longer applies: {gone} is not in the roster any more; void, told: {clerk}", name_of(&clerk), d.day, name_of(&gone))),
        "{answer}"
    );
    assert!(
        answer.contains("swaps: 1 in force kept, 1 void"),
        "{answer}"
    );
    let (_, s) = api.call("GET", "/swaps/1", Some(&t[0]), None).await;
    assert_eq!(s["state"], "void", "{s}");
    let last = &s["steps"][2];
    assert_eq!(
        (last["action"].as_str(), last["by"].as_str()),
        (Some("void"), Some("reload")),
        "{s}"
    );
    let (_, s) = api.call("GET", "/swaps/2", Some(&t[2]), None).await;
    assert_eq!(s["state"], "in_effect", "{s}");
    eventually(
        "the void told to the asker",
        Duration::from_secs(10),
        || async { any_contains(&posts, &["换班 #1 已失效", "not in the roster"]) },
    )
    .await;
    gw.stop().await;
}

/// The events of an iCalendar text as the PyPI `icalendar` package
/// (pinned; scripts/test.sh installs it into target/py) parses them, every
/// component checked for errors: (start, end, summary) each, start and end
/// as `YYYY-MM-DD HH:MM` in Asia/Shanghai.
fn parsed(ics: &str) -> Vec<(String, String, String)> {
    let python = repo().join("target/py/bin/python");
    let script = r#"
import json, sys, icalendar
cal = icalendar.Calendar.from_ical(sys.stdin.buffer.read())
errors = [e for c in cal.walk() for e in getattr(c, "errors", [])]
assert not errors, errors
assert cal.name == "VCALENDAR" and str(cal["VERSION"]) == "2.0", cal
out = []
for e in cal.walk("VEVENT"):
    for k in ("UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "DESCRIPTION"):
        assert k in e, (k, e)
    s, t = e.decoded("DTSTART"), e.decoded("DTEND")
    assert s.utcoffset() is not None and s.utcoffset().total_seconds() == 0, s
    out.append({"start": s.isoformat(), "end": t.isoformat(), "summary": str(e["SUMMARY"]),
                "description": str(e["DESCRIPTION"])})
print(json.dumps(out, ensure_ascii=False))
"#;
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/test.sh installs icalendar)",
                python.display()
            )
        });
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let local = |iso: &str| {
        let t: jiff::Timestamp = iso.parse().unwrap();
        hotline::court_time::local(t)[..16].to_string()
    };
    events
        .iter()
        .map(|e| {
            (
                local(e["start"].as_str().unwrap()),
                local(e["end"].as_str().unwrap()),
                e["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `hotline roster plan`'s lines: (start, end, unit id, police id, members).
fn plan_lines(text: &str) -> Vec<(String, String, String, String, String)> {
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l
                .split("  ")
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect();
            (
                f[0].into(),
                f[1].into(),
                f[3].into(),
                f[4].into(),
                f[5].into(),
            )
        })
        .collect()
}

/// Issue 33, item 2: `GET /api/v1/calendar.ics` answers the member's duty
/// blocks as text/calendar (CRLF, folded at 75 octets), parsed back by a
/// strict parser, and they are the lines of `hotline roster plan` for the
/// same days that name them, with the duty a swap gave them in it and
/// without the one it took away; everyone's feed for the director (403 for
/// an officer); the secret subscription URL serves the same without a
/// token, a new one ends the old, `hotline officer revoke` ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calendar_feed_parses_strictly_and_matches_roster_plan_with_a_swap_in_it() {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("swap-calendar");
    let d = duty_on(today() + jiff::Span::new().days(2));
    let (asker, taker) = (
        format!("{}-officer", d.crew),
        format!("{}-officer", d.other),
    );
    let extra = "[swaps]\napproval = false\nremind_at = \"off\"\ncalendar_days = 30\n";
    let (gw, config) = gateway_from_file(redis, &dir, &roster_text(&[]), extra).await;
    let api = Api::new(&gw);
    let t = api.logged_in(&gw.store, &[&asker, &taker, "m-chen"]).await;
    swap_in_effect(&api, &t[0], &t[1], d.day, &taker).await;

    let http = http_client();
    let get = |path: String, token: Option<String>| {
        let http = http.clone();
        async move {
            let mut r = http.get(format!("http://{}{path}", gw.http));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let kind = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (status, kind, r.text().await.unwrap())
        }
    };
    let (st, kind, ics) = get("/api/v1/calendar.ics".into(), Some(t[1].clone())).await;
    assert_eq!(st, 200, "{ics}");
    assert!(kind.starts_with("text/calendar"), "{kind}");
    assert!(
        ics.ends_with("\r\n") && !ics.replace("\r\n", "").contains('\n'),
        "CRLF only"
    );
    for l in ics.split("\r\n") {
        assert!(l.len() <= 75, "a line of {} octets: {l:?}", l.len());
    }
    let feed = parsed(&ics);
    assert!(!feed.is_empty());

    // Everyone's duty, for the director only: every period of the range.
    let (st, _, all) = get("/api/v1/calendar.ics?scope=all".into(), Some(t[2].clone())).await;
    assert_eq!(st, 200);
    let all = parsed(&all);
    let (st, _, e) = get("/api/v1/calendar.ics?scope=all".into(), Some(t[1].clone())).await;
    assert_eq!(st, 403, "{e}");

    // `roster plan` for the same days: a line a period, those that name
    // the taker theirs.
    let first = &all[0].0[..10];
    let last = today() + jiff::Span::new().days(29);
    let (ok, plan, err) = cli(
        &config,
        &["roster", "plan", "--from", first, "--to", &last.to_string()],
    );
    assert!(ok, "{err}");
    let lines = plan_lines(&plan);
    assert_eq!(all.len(), lines.len(), "{plan}");
    let taker_name = name_of(&taker);
    let unit_names: std::collections::HashMap<String, String> = (1..=5)
        .map(|i| (format!("unit-{i}"), name_of(&format!("unit-{i}"))))
        .collect();
    let want: Vec<(String, String, String)> = lines
        .into_iter()
        .filter(|l| l.4.contains(&taker_name))
        .map(|l| (l.0, l.1, format!("值班：{}", unit_names[&l.2])))
        .collect();
    assert_eq!(feed, want, "{plan}");
    // The swapped day is among them, and not in the asker's feed.
    let day = d.day.to_string();
    assert!(
        feed.iter()
            .any(|e| e.0.starts_with(&day) && e.2 == format!("值班：{}", d.unit_name)),
        "{feed:?}"
    );
    let (_, _, theirs) = get("/api/v1/calendar.ics".into(), Some(t[0].clone())).await;
    assert!(
        !parsed(&theirs).iter().any(|e| e.0.starts_with(&day)),
        "the asker's feed keeps the day they handed on"
    );
    assert!(
        plan.contains(&format!("{asker} replaced by {taker} (换班 #1)")),
        "{plan}"
    );
    assert!(ics.replace("\r\n ", "").contains("车辆 鲁B·J010"), "{ics}");

    // The secret subscription URL: no token needed; a new one ends the old;
    // `officer revoke` ends it.
    let (st, sub) = api
        .call(
            "POST",
            "/calendar/subscription",
            Some(&t[1]),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 201, "{sub}");
    let old = sub["path"].as_str().unwrap().to_string();
    assert!(
        old.starts_with("/calendar/") && old.ends_with(".ics") && old.len() >= 10 + 43,
        "{old}"
    );
    let (st, kind, body) = get(old.clone(), None).await;
    assert_eq!(st, 200, "{body}");
    assert!(kind.starts_with("text/calendar"));
    assert_eq!(parsed(&body), feed);
    let (_, sub) = api
        .call(
            "POST",
            "/calendar/subscription",
            Some(&t[1]),
            Some(json!({"scope": "mine"})),
        )
        .await;
    let new = sub["path"].as_str().unwrap().to_string();
    assert_eq!(get(old, None).await.0, 404);
    assert_eq!(get(new.clone(), None).await.0, 200);
    assert_eq!(get("/calendar/forged.ics".into(), None).await.0, 404);
    let (ok, out, err) = cli(&config, &["officer", "revoke", &taker]);
    assert!(
        ok && out.contains("calendar subscription ended"),
        "{out}{err}"
    );
    assert_eq!(get(new, None).await.0, 404);
    gw.stop().await;
}

/// Issue 33, item 3: `hotline roster remind --for DAY` (through the
/// running gateway's admin socket) sends the reminders of that day's duty
/// now: the unit's officer at SIPp (their MESSAGE phone) and the court
/// police officer at a webhook receiver, each with the unit, its vehicle
/// and who else is on duty; a second time it says they were sent already
/// (once for all gateways).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_days_reminders_reach_a_webhook_and_a_sipp_phone_once() {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("swap-remind");
    let (hook, posts) = webhook(FirstPages::Taken).await;
    let d = duty_on(today() + jiff::Span::new().days(3));
    let officer = format!("{}-officer", d.crew);
    let sipp_port = free_port();
    let text = roster_text(&[
        (
            &officer,
            format!("message = \"sip:page@127.0.0.1:{sipp_port}\""),
        ),
        (&d.police, "webhook = \"hook\"".into()),
    ]);
    let path = dir.join("roster.toml");
    std::fs::write(&path, text).unwrap();
    let config = write_config(&dir, &redis, &path, &hook_section(hook, "paging.webhooks."));
    let phone = sipp_message_receiver(sipp_port, 1, 40);
    let gw = Process::start(&config);
    let day = d.day.to_string();
    let (ok, out, err) = cli(&config, &["roster", "remind", "--for", &day]);
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with(&format!("reminders for {day} sent to 4 member(s)\n")),
        "{out}"
    );
    assert!(out.contains(&format!("{officer}: sip_message ok")), "{out}");
    assert!(out.contains(&format!("{}: webhook ok", d.police)), "{out}");
    let (ok, trace) = tokio::time::timeout(Duration::from_secs(60), phone)
        .await
        .unwrap()
        .unwrap();
    assert!(ok, "{trace}");
    let head = format!("值班提醒（{day}）");
    for what in [
        head.as_str(),
        d.unit_name.as_str(),
        "车辆 鲁B·J010",
        "法警：",
    ] {
        assert!(trace.contains(what), "{what}: {trace}");
    }
    assert!(
        any_contains(&posts, &[&head, &format!("法警（随 {}", d.unit_name)]),
        "{:?}",
        posts.lock().unwrap()
    );
    let (ok, out, err) = cli(&config, &["roster", "remind", "--for", &day]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("reminders for {day} were sent already (once for all gateways)\n")
    );
    let (ok, _, err) = cli(&config, &["roster", "remind", "--for", "8 December"]);
    assert!(!ok && err.contains("not a date YYYY-MM-DD"), "{err}");
    drop(gw);
}

/// Issue 33, item 1, on the mobile page in Debian's headless Chromium
/// (`tests/browser/duty.mjs`, playwright-core): the member asked opens
/// 值班, accepts the swap (it then awaits the director), asks another
/// member to take one of their own duties and makes their calendar
/// subscription URL; the store then holds what the page did. Screenshots
/// in `target/duty-screenshots/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mobile_page_accepts_a_swap_asks_one_and_subscribes_in_chromium() {
    let _one = CHROMIUM.lock().await;
    let browser = repo().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "scripts/test.sh installs playwright-core (npm ci --prefix tests/browser)"
    );
    let d = duty_on(today() + jiff::Span::new().days(2));
    let (asker, taker) = (
        format!("{}-officer", d.crew),
        format!("{}-officer", d.other),
    );
    // Whom the taker asks in turn: an officer of a third unit.
    let third = ["u3", "u4", "u5"]
        .into_iter()
        .find(|u| *u != d.crew)
        .map(|u| format!("{u}-officer"))
        .unwrap();
    let gw = Gateway::start(settings()).await;
    let api = Api::new(&gw);
    let a = api.logged_in(&gw.store, &[&asker]).await.remove(0);
    let (st, s) = api
        .call(
            "POST",
            "/swaps",
            Some(&a),
            Some(json!({"day": d.day.to_string(), "with": taker})),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    hotline::api::auth::set_pin(&gw.store, &taker, "246810")
        .await
        .unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("node")
            .arg(browser.join("duty.mjs"))
            .args(["--base", &format!("http://{}", gw.http)])
            .args(["--member", &taker, "--pin", "246810", "--with", &third])
            .arg("--shots")
            .arg(repo().join("target/duty-screenshots"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the page's script within 2 minutes")
    .expect("node runs (Debian's nodejs)");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("DONE"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, s) = api.call("GET", "/swaps/1", Some(&a), None).await;
    assert_eq!(s["state"], "accepted", "{s}");
    let (_, s) = api.call("GET", "/swaps/2", Some(&a), None).await;
    assert_eq!(s["state"].as_str(), None, "not the asker's to see: {s}");
    let t = api.logged_in(&gw.store, &[&taker]).await.remove(0);
    let (_, s) = api.call("GET", "/swaps/2", Some(&t), None).await;
    assert_eq!(
        (
            s["by"].as_str(),
            s["with"].as_str(),
            s["state"].as_str(),
            s["reason"].as_str()
        ),
        (
            Some(taker.as_str()),
            Some(third.as_str()),
            Some("asked"),
            Some("浏览器测试")
        ),
        "{s}"
    );
    let mut c = gw.store.connection();
    let sub: Option<String> = redis::cmd("GET")
        .arg(format!("hotline:calendar:member:{taker}"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(sub.is_some(), "the subscription is kept (as its hash)");
    gw.stop().await;
}

/// Issue 33, item 1, with two gateways on one Redis: a swap accepted on
/// one (no approval needed here) is in force on the other within its sync
/// (`/roster/now` there names the member who took it, with the swap), and
/// the move is told once for both: the one that made the change claimed
/// its texts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_made_on_one_gateway_is_in_force_on_another() {
    let redis = Redis::start("everysec").await;
    let (hook, posts) = webhook(FirstPages::Taken).await;
    let now = duty_now();
    let (asker, taker) = (
        format!("{}-clerk", now.crew),
        format!("{}-clerk", now.other),
    );
    let roster = test_roster(&roster_text(&[(&taker, "webhook = \"hook\"".into())]));
    let extra = format!(
        "[swaps]\napproval = false\nremind_at = \"off\"\n{}",
        hook_section(hook, "paging.webhooks.")
    );
    let (a_dir, b_dir) = (tempfile_dir("swap-gw-a"), tempfile_dir("swap-gw-b"));
    let a = Process::start(&write_config(&a_dir, &redis, &roster, &extra));
    let b = Process::start(&write_config(&b_dir, &redis, &roster, &extra));
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();
    let (on_a, on_b) = (Api::at(a.http), Api::at(b.http));
    let t = on_a.logged_in(&store, &[&asker, &taker]).await;
    let s = swap_in_effect(&on_a, &t[0], &t[1], now.day, &taker).await;
    assert_eq!(s["id"], 1, "{s}");
    eventually(
        "the swap in force on the other gateway",
        Duration::from_secs(5),
        || async {
            let (_, duty) = on_b.call("GET", "/roster/now", Some(&t[1]), None).await;
            duty["swaps"] == json!([1])
                && duty["unit"]["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m["id"] == json!(taker)))
        },
    )
    .await;
    eventually("the move told", Duration::from_secs(10), || async {
        any_contains(&posts, &["换班 #1", "新增值班"])
    })
    .await;
    // Claimed by the gateway that made the change: nobody sends it again.
    assert!(!store.claim_duty_notices("swap:1:2").await.unwrap());
    drop((a, b));
}
