//! What happens when a ticket opens and the clocks after it, against a
//! gateway with a case directory: a consultation routed to its judge (an
//! unknown case to the desk) and never paged; reports on one case linked,
//! and a new lead joined to the officers already dispatched on it; the
//! arrival deadline passing (injected: the deadline written into the past
//! through the store, which wakes the schedule) and the re-alert; the
//! answer and property endpoints.

use std::time::Duration;

use hotline::config::Settings;
use hotline::tickets::model::{Category, Change, State};
use hotline::tickets::store::NewTicket;
use hotline::tickets::Store;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::helpers::*;

/// Settings with a case directory: 1234 handled by the judge m-zhao,
/// 9012 by unit-2.
fn with_cases(mut s: Settings) -> Settings {
    let dir = tempfile_dir("cases");
    let file = dir.join("cases.csv");
    std::fs::write(
        &file,
        "case_number,handler\n（2026）鲁0203执1234号,m-zhao\n（2026）鲁0203执恢9012号,unit-2\n",
    )
    .unwrap();
    s.cases.file = Some(file);
    s
}

/// The sample roster with its day desk (the desk takes consultations
/// nobody handles), reaching nobody outside the machine.
fn roster_with_desk() -> std::path::PathBuf {
    test_roster(&offline(
        &std::fs::read_to_string(repo().join("config/roster.toml")).unwrap(),
    ))
}

/// A ticket received at `received`, opened (the paging trigger) with its
/// category and case number.
async fn opened(
    store: &Store,
    tag: &str,
    received: Timestamp,
    category: Category,
    case: Option<&str>,
) -> String {
    let t = NewTicket {
        call_id: format!("{tag}@t"),
        call: String::new(),
        received_at: received,
        register: Default::default(),
    };
    let (number, _) = store.create(&t, "test").await.unwrap();
    let mut open = Change::new("gateway", "call_ended");
    open.to = Some(State::Open);
    let case = case.map(str::to_string);
    store
        .change(&number, &open, move |r| {
            r.intake.category = Some(category);
            r.intake.case_number = case.clone();
        })
        .await
        .unwrap();
    number
}

async fn actions_of(store: &Store, n: &str, action: &str) -> Vec<Value> {
    store
        .timeline(n)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| serde_json::from_str(&e.details).unwrap())
        .collect()
}

fn numbers(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consultation_goes_to_its_judge_with_its_deadline_and_pages_nobody() {
    let mut s = with_cases(settings());
    s.roster.file = roster_with_desk();
    let gw = Gateway::start(s).await;
    let store = gw.store.clone();
    // Received on Tuesday 5 March 2030, 10:00 in Qingdao (a receipt in the
    // future keeps the answer clock from passing during the test): three
    // working days on, Friday 8 March at 17:30 (no holiday near).
    let received: Timestamp = "2030-03-05T02:00:00Z".parse().unwrap();
    let n = opened(
        &store,
        "judge",
        received,
        Category::Consultation,
        Some("202602031234"),
    )
    .await;
    let unknown = opened(&store, "desk", received, Category::Consultation, Some("99")).await;
    let t = triaged(&store, &n).await;
    assert_eq!(t.register.triage.handler.as_deref(), Some("m-zhao"));
    assert_eq!(t.register.triage.case_known, Some(true));
    let due: Timestamp = "2030-03-08T09:30:00Z".parse().unwrap();
    assert_eq!(t.register.deadlines.answer_by, Some(due));
    let u = triaged(&store, &unknown).await;
    assert_eq!(
        (u.register.triage.case_known, u.register.triage.handler),
        (Some(false), None)
    );

    // The judge's list has theirs with its deadline; the desk's the
    // unknown one; the duty units' officers and the police see neither.
    let api = Api::new(&gw);
    let mut who = vec!["m-zhao", "m-desk-1"];
    let duty = [
        "u1-officer",
        "u2-officer",
        "u3-officer",
        "u4-officer",
        "u5-officer",
        "p-sun",
        "p-zhou",
        "p-wu",
    ];
    who.extend(duty);
    let tokens = api.logged_in(&store, &who).await;
    let (status, list) = api.call("GET", "/tickets", Some(&tokens[0]), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(numbers(&list), vec![n.clone()], "{list}");
    assert_eq!(list[0]["deadlines"]["answer_by"], "2030-03-08T09:30:00Z");
    assert_eq!(list[0]["triage"]["handler"], "m-zhao");
    let (_, desk) = api.call("GET", "/tickets", Some(&tokens[1]), None).await;
    assert_eq!(numbers(&desk), vec![unknown.clone()], "{desk}");
    for (m, token) in duty.iter().zip(&tokens[2..]) {
        let (status, list) = api.call("GET", "/tickets", Some(token), None).await;
        assert_eq!((status, numbers(&list)), (200, vec![]), "{m}: {list}");
    }
    // Nobody was paged, and no paging noise is on either timeline.
    for number in [&n, &unknown] {
        for action in [
            "page",
            "page_nobody",
            "page_deferred",
            "page_step_skipped",
            "breach",
        ] {
            assert!(
                actions_of(&store, number, action).await.is_empty(),
                "{number}: {action}"
            );
        }
        let routed = actions_of(&store, number, "triaged").await;
        assert_eq!(routed.len(), 1, "{number}: triaged once");
    }
    assert_eq!(
        actions_of(&store, &n, "triaged").await[0]["lists"],
        json!(["member:m-zhao"])
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_consultation_is_written_to_the_director_never_rung() {
    // The director has a SIP URI a page would ring (loopback, nobody
    // there): an answer's alarm must not use it.
    let roster = offline(&test_roster_text()).replace(
        "name = \"陈局长\"",
        "name = \"陈局长\"\nsip = \"sip:8003@127.0.0.1:9\"",
    );
    assert!(roster.contains("sip:8003@127.0.0.1:9"));
    let mut s = with_cases(settings());
    s.roster.file = test_roster(&roster);
    let gw = Gateway::start(s).await;
    let store = gw.store.clone();
    // Received on Thursday 12 February 2026: due on Tuesday 24 February at
    // 17:30 (the adjusted Saturday 14 worked, the Spring Festival off),
    // long passed.
    let received: Timestamp = "2026-02-12T02:00:00Z".parse().unwrap();
    let n = opened(
        &store,
        "late",
        received,
        Category::Consultation,
        Some("202602031234"),
    )
    .await;
    eventually("marked missed", Duration::from_secs(10), || async {
        store
            .get(&n)
            .await
            .is_ok_and(|t| t.register.deadlines.missed == ["answer"])
    })
    .await;
    let t = store.get(&n).await.unwrap();
    let due: Timestamp = "2026-02-24T09:30:00Z".parse().unwrap();
    assert_eq!(t.register.deadlines.answer_by, Some(due));
    eventually("the director told", Duration::from_secs(10), || async {
        actions_of(&store, &n, "page")
            .await
            .iter()
            .any(|p| p["member"] == "m-chen" && p["clock"] == "answer")
    })
    .await;
    for p in actions_of(&store, &n, "page").await {
        assert_eq!(p["member"], "m-chen", "{p}");
        assert_eq!(p["channel"], "event", "written, not rung: {p}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_on_one_case_are_linked_and_a_new_lead_goes_to_the_officers_already_there() {
    let mut s = with_cases(settings());
    // Leads in seconds: the duty every second until acknowledged, the
    // breach at three seconds without a dispatch.
    s.paging.policies = toml::from_str(
        "[lead]\nsteps = [\n\
  { after_seconds = 0, targets = [\"on_duty\"], repeat_seconds = 1, until = \"acknowledged\" },\n\
  { after_seconds = 3, targets = [\"director\"], unless = \"dispatched\", breach = true, note = \"五分钟内未出警\" },\n]\n",
    )
    .unwrap();
    let gw = Gateway::start(s).await;
    let store = gw.store.clone();
    let now = Timestamp::now();
    let first = opened(
        &store,
        "first",
        now,
        Category::Lead,
        Some("（2026）鲁0203执1234号"),
    )
    .await;
    triaged(&store, &first).await;
    // 签收 and 出警 of the first lead: two officers go.
    let officers = vec!["u1-officer".to_string(), "u1-clerk".to_string()];
    let ack = hotline::tickets::actions::acknowledge("u1-officer", None, now, Value::Null);
    store.act(&first, &ack).await.unwrap();
    let v = store.get(&first).await.unwrap().version;
    let go = hotline::tickets::actions::dispatch("u1-officer", v, officers.clone(), None, now);
    store.act(&first, &go).await.unwrap();

    // The second lead on the case (its digits as a caller keys them).
    let second = opened(
        &store,
        "second",
        Timestamp::now(),
        Category::Lead,
        Some("202602031234"),
    )
    .await;
    let t = triaged(&store, &second).await;
    assert_eq!(t.register.triage.linked, vec![first.clone()]);
    assert_eq!(t.register.triage.joined.as_deref(), Some(first.as_str()));
    assert_eq!(t.register.triage.joined_officers, officers);
    eventually("the officers paged", Duration::from_secs(10), || async {
        let pages = actions_of(&store, &second, "page").await;
        officers
            .iter()
            .all(|o| pages.iter().any(|p| p["member"] == o.as_str()))
    })
    .await;
    // Only they: not the duty, not the director.
    for p in actions_of(&store, &second, "page").await {
        assert!(
            officers.iter().any(|o| p["member"] == o.as_str()),
            "paged someone else: {p}"
        );
    }
    // Acknowledged: its policy is done and it leaves the schedule without
    // a breach (the lead's policy would have breached at three seconds).
    let ack =
        hotline::tickets::actions::acknowledge("u1-clerk", None, Timestamp::now(), Value::Null);
    store.act(&second, &ack).await.unwrap();
    let c = store.connection();
    eventually("off the schedule", Duration::from_secs(10), || {
        let mut c = c.clone();
        let second = second.clone();
        async move {
            let score: Option<f64> = redis::cmd("ZSCORE")
                .arg("hotline:paging:due")
                .arg(&second)
                .query_async(&mut c)
                .await
                .unwrap();
            score.is_none()
        }
    })
    .await;
    let t = store.get(&second).await.unwrap();
    assert!(!t.register.dispatch.five_minute_breach);
    assert!(actions_of(&store, &second, "breach").await.is_empty());
    let routed = actions_of(&store, &second, "triaged").await;
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0]["joined"], first.as_str());

    // The third report: two earlier ones, and the page says so.
    let third = opened(
        &store,
        "third",
        Timestamp::now(),
        Category::Other,
        Some("(2026)鲁0203执1234号"),
    )
    .await;
    let t = triaged(&store, &third).await;
    assert_eq!(t.register.triage.linked, [first.clone(), second.clone()]);
    assert_eq!(
        t.register.triage.repeat_report().as_deref(),
        Some("本案7日内第3次举报")
    );
    eventually("the page names the repeat", Duration::from_secs(10), || {
        let mut c = c.clone();
        let third = third.clone();
        async move {
            let events: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                .arg("hotline:events")
                .arg("-")
                .arg("+")
                .query_async(&mut c)
                .await
                .unwrap();
            events.iter().any(|(_, f)| {
                f.contains(&("ticket".into(), third.clone()))
                    && f.iter()
                        .any(|(k, v)| k == "text" && v.contains("本案7日内第3次举报"))
            })
        }
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arrival_deadline_passing_re_alerts_the_officers_once_and_is_marked_missed() {
    let gw = Gateway::start(with_cases(settings())).await;
    let store = gw.store.clone();
    let n = opened(&store, "arrive", Timestamp::now(), Category::Lead, None).await;
    triaged(&store, &n).await;
    // 签收 and 出警 through the API: the arrival clock starts at 出警.
    let api = Api::new(&gw);
    let director = api.logged_in(&store, &["m-chen"]).await.remove(0);
    let v = store.get(&n).await.unwrap().version;
    let (s, b) = api
        .act(&n, "acknowledge", &director, json!({"version": v}))
        .await;
    assert_eq!(s, 200, "{b}");
    let officers = ["u3-officer", "u3-clerk"];
    let (s, b) = api
        .act(
            &n,
            "dispatch",
            &director,
            json!({"version": b["version"], "officers": officers}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let departed: Timestamp = b["dispatch"]["departed_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let arrive_by: Timestamp = b["deadlines"]["arrive_by"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        arrive_by.duration_since(departed),
        jiff::SignedDuration::from_mins(30)
    );

    // The deadline written into the past through the store, which wakes
    // the schedule with the change.
    let past = Timestamp::now() - jiff::SignedDuration::from_mins(1);
    let mut inject = Change::new("test", "inject_arrive_by");
    inject.wake = Some(past);
    store
        .change(&n, &inject, move |r| r.deadlines.arrive_by = Some(past))
        .await
        .unwrap();
    eventually("marked missed", Duration::from_secs(10), || async {
        store
            .get(&n)
            .await
            .is_ok_and(|t| t.register.deadlines.missed == ["arrival"])
    })
    .await;
    eventually(
        "the officers re-alerted",
        Duration::from_secs(10),
        || async {
            let pages = actions_of(&store, &n, "page").await;
            officers.iter().all(|o| {
                pages
                    .iter()
                    .any(|p| p["member"] == *o && p["clock"] == "arrival")
            })
        },
    )
    .await;
    let missed = actions_of(&store, &n, "deadline_missed").await;
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0]["deadline"], "arrival");
    // The re-alert also went to whoever holds the duty.
    let pages = actions_of(&store, &n, "page").await;
    assert!(
        pages
            .iter()
            .any(|p| p["clock"] == "arrival" && !officers.iter().any(|o| p["member"] == *o)),
        "{pages:?}"
    );
    // Arrived: the clock has nothing more to say (the ticket's view says
    // the deadline was missed).
    let (s, b) = api
        .call("GET", &format!("/tickets/{n}"), Some(&director), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["ticket"]["deadlines"]["missed"], json!(["arrival"]));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consultation_is_answered_and_a_lead_marked_and_checked_as_a_property_lead() {
    let gw = Gateway::start(with_cases(settings())).await;
    let store = gw.store.clone();
    let received: Timestamp = "2030-03-05T02:00:00Z".parse().unwrap();
    let c = opened(
        &store,
        "ask",
        received,
        Category::Consultation,
        Some("202602031234"),
    )
    .await;
    let lead = opened(
        &store,
        "lead",
        Timestamp::now(),
        Category::Lead,
        Some("202602035678"),
    )
    .await;
    triaged(&store, &c).await;
    triaged(&store, &lead).await;
    let api = Api::new(&gw);
    let t = api
        .logged_in(&store, &["m-zhao", "u4-clerk", "m-chen"])
        .await;
    let (judge, stranger, director) = (&t[0], &t[1], &t[2]);

    // Answers: refused in words, then recorded and the ticket closed.
    let answer = |via: &str, text: &str| json!({"via": via, "text": text});
    let (s, _) = api.act(&c, "answer", stranger, answer("reply", "x")).await;
    assert_eq!(s, 404, "not theirs");
    let (s, b) = api.act(&c, "answer", judge, answer("letter", "x")).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = api.act(&c, "answer", judge, answer("reply", "  ")).await;
    assert_eq!(
        (s, b["message"].as_str()),
        (400, Some("text: 1 to 4000 bytes"))
    );
    let (s, b) = api
        .act(&lead, "answer", director, answer("reply", "x"))
        .await;
    assert_eq!(s, 409, "{b}");
    let (s, b) = api
        .act(
            &c,
            "answer",
            judge,
            answer("callback", "已电话告知执行款发放进度"),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "closed");
    assert_eq!(b["answer"]["by"], "m-zhao");
    assert_eq!(b["answer"]["via"], "callback");
    assert_eq!(b["disposal"]["closed_by"], "m-zhao");
    let (s, b) = api.act(&c, "answer", judge, answer("reply", "again")).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (409, Some("illegal_transition")),
        "{b}"
    );
    let stored = store.get(&c).await.unwrap();
    assert_eq!(stored.state, State::Closed);
    assert_eq!(
        stored.register.answer.map(|a| a.text),
        Some("已电话告知执行款发放进度".to_string())
    );

    // Property: not on a consultation; on the lead, three days when urgent.
    let (s, _) = api
        .act(&c, "property", director, json!({"urgent": true}))
        .await;
    assert_eq!(s, 409);
    let (s, b) = api
        .act(&lead, "verified", director, json!({"result": "x"}))
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (409, Some("illegal_transition")),
        "{b}"
    );
    let (s, b) = api
        .act(
            &lead,
            "property",
            director,
            json!({"urgent": true, "state": "closed"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = api
        .act(&lead, "property", director, json!({"urgent": true}))
        .await;
    assert_eq!(s, 200, "{b}");
    let marked: Timestamp = b["property"]["at"].as_str().unwrap().parse().unwrap();
    let verify_by: Timestamp = b["deadlines"]["verify_by"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        verify_by.duration_since(marked),
        jiff::SignedDuration::from_hours(72)
    );
    assert_eq!(
        (
            b["property"]["urgent"].as_bool(),
            b["property"]["by"].as_str()
        ),
        (Some(true), Some("m-chen"))
    );
    let (s, b) = api
        .act(&lead, "verified", director, json!({"result": ""}))
        .await;
    assert_eq!(
        (s, b["message"].as_str()),
        (400, Some("result: 1 to 4000 bytes"))
    );
    let (s, b) = api
        .act(
            &lead,
            "verified",
            director,
            json!({"result": "查到被执行人名下车辆一辆"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["property"]["result"], "查到被执行人名下车辆一辆");
    assert!(b["property"]["verified_at"].is_string());
    let (s, _) = api
        .act(&lead, "verified", director, json!({"result": "again"}))
        .await;
    assert_eq!(s, 409);
    let tl = actions_of(&store, &lead, "property_verified").await;
    assert_eq!(tl.len(), 1);
    gw.stop().await;
}

/// The store alone (no gateway claiming): a change's deadline puts the
/// ticket on the schedule by then, earlier only; while a step holds the
/// ticket under its lease the deadline waits for that step's save instead
/// of letting a second step start beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_wakes_the_schedule_and_never_a_second_step_beside_a_held_one() {
    let redis = Redis::start("everysec").await;
    let store = Store::connect(&redis.url(), "hotline:").unwrap();
    let n = open_tickets(&store, 1, "wake").await.remove(0);
    let mut c = store.connection();
    let score = |c: &mut hotline::tickets::conn::Conn| {
        let mut c = c.clone();
        let n = n.clone();
        async move {
            let s: Option<f64> = redis::cmd("ZSCORE")
                .arg("hotline:paging:due")
                .arg(&n)
                .query_async(&mut c)
                .await
                .unwrap();
            s.map(|s| s as i64)
        }
    };
    let wake = |at: i64| {
        let mut w = Change::new("test", "deadline_set");
        w.wake = Some(Timestamp::from_millisecond(at).unwrap());
        w
    };
    let now = Timestamp::now().as_millisecond();
    // Off the schedule (its steps done), then a deadline an hour ahead.
    store.save_paging(&n, "{}", "{}", None).await.unwrap();
    assert_eq!(score(&mut c).await, None);
    store
        .change(&n, &wake(now + 3_600_000), |_| {})
        .await
        .unwrap();
    assert_eq!(score(&mut c).await, Some(now + 3_600_000));
    // A later one never postpones it; an earlier one brings it forward.
    store
        .change(&n, &wake(now + 7_200_000), |_| {})
        .await
        .unwrap();
    assert_eq!(score(&mut c).await, Some(now + 3_600_000));
    store.change(&n, &wake(now + 60_000), |_| {}).await.unwrap();
    assert_eq!(score(&mut c).await, Some(now + 60_000));
    // Claimed (a step runs, leased for two minutes): a deadline due
    // meanwhile does not make it claimable again...
    let claimed = store.claim_due(now + 60_000, 120_000, 10).await.unwrap();
    assert_eq!(claimed, vec![n.clone()]);
    store.change(&n, &wake(now + 61_000), |_| {}).await.unwrap();
    assert_eq!(score(&mut c).await, Some(now + 180_000));
    assert!(store
        .claim_due(now + 61_000, 120_000, 10)
        .await
        .unwrap()
        .is_empty());
    // ...the step's save takes it, even when the step had nothing more.
    store.save_paging(&n, "{}", "{}", None).await.unwrap();
    assert_eq!(score(&mut c).await, Some(now + 61_000));
    // Taken once: the next save without one leaves the schedule.
    store.save_paging(&n, "{}", "{}", None).await.unwrap();
    assert_eq!(score(&mut c).await, None);
}
