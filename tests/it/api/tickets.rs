//! Tickets: every action and refused transition, authorisation between
//! units, and the list's filters and pages.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_move_a_ticket_through_its_register() {
    let gw = Gateway::start(settings()).await;
    let api = Api::new(&gw);
    let (n, mine, theirs) = paged_ticket(&gw).await;
    for m in [&mine, &theirs, &"m-chen".to_string()] {
        set_pin(&gw, m, "246810").await;
    }
    let me = api.login(&mine, "246810").await;
    let other = api.login(&theirs, "246810").await;
    let director = api.login("m-chen", "246810").await;

    // Listed and readable by the paged officer, with the timeline.
    let (s, list) = api.call("GET", "/tickets", Some(&me), None).await;
    assert_eq!(s, 200);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["number"] == n.as_str()),
        "{list}"
    );
    let (s, one) = api
        .call("GET", &format!("/tickets/{n}"), Some(&me), None)
        .await;
    assert_eq!(s, 200, "{one}");
    assert!(one["timeline"].as_array().unwrap().len() >= 2);
    let version = one["ticket"]["version"].as_u64().unwrap();

    // Another unit's officer: every read and write of the ticket is a 404,
    // the same answer as for a ticket that does not exist, and nothing of
    // it is in Redis afterwards.
    let register = |t: hotline::tickets::model::Ticket| (t.state, t.register);
    let before = register(gw.store.get(&n).await.unwrap());
    for (method, action, body) in [
        ("GET", "", None),
        ("GET", "/recording", None),
        ("POST", "/acknowledge", Some(json!({"version": version}))),
        (
            "POST",
            "/dispatch",
            Some(json!({"version": version, "officers": [&theirs]})),
        ),
        ("POST", "/arrive", Some(json!({"version": version}))),
        (
            "POST",
            "/close",
            Some(json!({"version": version, "measures": ["other"], "result": "x"})),
        ),
        ("POST", "/notes", Some(json!({"text": "x"}))),
        ("POST", "/reveal-caller", Some(json!({"reason": "x"}))),
    ] {
        let (s, b) = api
            .call(
                method,
                &format!("/tickets/{n}{action}"),
                Some(&other),
                body.clone(),
            )
            .await;
        let missing = api
            .call(
                method,
                &format!("/tickets/2026-999999{action}"),
                Some(&other),
                body,
            )
            .await;
        assert_eq!((s, &b), (404, &missing.1), "{method} {action}");
    }
    let (s, list) = api.call("GET", "/tickets", Some(&other), None).await;
    assert_eq!((s, list.as_array().unwrap().len()), (200, 0));
    assert_eq!(
        register(gw.store.get(&n).await.unwrap()),
        before,
        "refused writes change nothing"
    );
    assert!(
        gw.store
            .timeline(&n)
            .await
            .unwrap()
            .iter()
            .all(|e| e.actor != theirs),
        "nothing of theirs on the timeline"
    );
    // The director sees every ticket.
    let (s, _) = api
        .call("GET", &format!("/tickets/{n}"), Some(&director), None)
        .await;
    assert_eq!(s, 200);

    // A stale version: 409 with the current state.
    let (s, b) = api
        .act(&n, "acknowledge", &me, json!({"version": version - 1}))
        .await;
    assert_eq!(
        (s, b["error"].as_str(), b["state"].as_str()),
        (409, Some("stale"), Some("open")),
        "{b}"
    );
    // Fields the action does not own are refused.
    let (s, b) = api
        .act(
            &n,
            "acknowledge",
            &me,
            json!({"version": version, "state": "closed"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("unknown field"),
        "{b}"
    );
    // 签收, 出警, arrival, closing.
    let (s, t) = api
        .act(&n, "acknowledge", &me, json!({"version": version}))
        .await;
    assert_eq!((s, t["state"].as_str()), (200, Some("acknowledged")), "{t}");
    let v = t["version"].as_u64().unwrap();
    // Arriving before dispatch is not a transition the register allows.
    let (s, b) = api.act(&n, "arrive", &me, json!({"version": v})).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (409, Some("illegal_transition")),
        "{b}"
    );
    let (s, t) = api
        .act(
            &n,
            "dispatch",
            &me,
            json!({"version": v, "officers": [mine.clone()], "vehicle": "鲁B·J0101"}),
        )
        .await;
    assert_eq!((s, t["state"].as_str()), (200, Some("dispatched")), "{t}");
    let v = t["version"].as_u64().unwrap();
    let (s, t) = api.act(&n, "arrive", &me, json!({"version": v})).await;
    assert_eq!((s, t["state"].as_str()), (200, Some("on_scene")), "{t}");
    let v = t["version"].as_u64().unwrap();
    let (s, _) = api
        .act(&n, "notes", &me, json!({"text": "被执行人在场"}))
        .await;
    assert_eq!(s, 200);
    let (s, t) = api.act(&n, "close", &me, json!({"version": v + 1, "measures": ["detention", "seizure"], "result": "已拘留，扣押车辆一辆"}))
        .await;
    assert_eq!((s, t["state"].as_str()), (200, Some("closed")), "{t}");
    let ticket = gw.store.get(&n).await.unwrap();
    assert_eq!(
        ticket.register.disposal.closed_by.as_deref(),
        Some(mine.as_str())
    );
    assert_eq!(
        ticket.register.dispatch.vehicle.as_deref(),
        Some("鲁B·J0101")
    );
    gw.stop().await;
}

/// The published API description names exactly what the gateway serves (every
/// documented operation answers, unauthenticated ones refuse with 401), and
/// the officers' page is served at `/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_list_filters_by_category_state_and_time_and_pages() {
    use hotline::tickets::model::Change;
    use hotline::tickets::model::{Category, Register};
    use hotline::tickets::store::NewTicket;
    let gw = Gateway::start(settings()).await;
    let api = Api::new(&gw);
    set_pin(&gw, "m-chen", "246810").await;
    let director = api.login("m-chen", "246810").await;
    // Five tickets received a minute apart, the oldest first: lead, other,
    // lead, other, lead.
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
    let mut numbers = Vec::new();
    for i in 0..5i64 {
        let t = NewTicket {
            call_id: format!("list-{i}@t"),
            call: String::new(),
            received_at: start + jiff::SignedDuration::from_mins(i),
            register: Register::default(),
        };
        let (n, _) = gw.store.create(&t, "test").await.unwrap();
        let category = if i % 2 == 0 {
            Category::Lead
        } else {
            Category::Other
        };
        let mut c = Change::new("gateway", "intake");
        if i == 4 {
            c.to = Some(State::Open);
        }
        gw.store
            .change(&n, &c, |r| r.intake.category = Some(category))
            .await
            .unwrap();
        numbers.push(n);
    }
    let listed = |b: &Value| -> Vec<String> {
        b.as_array()
            .unwrap_or_else(|| panic!("not a list: {b}"))
            .iter()
            .map(|t| t["number"].as_str().unwrap().to_string())
            .collect()
    };
    let newest_first =
        |idx: &[usize]| -> Vec<String> { idx.iter().rev().map(|&i| numbers[i].clone()).collect() };
    let (s, b) = api
        .call("GET", "/tickets?category=lead", Some(&director), None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(listed(&b), newest_first(&[0, 2, 4]));
    let (_, b) = api
        .call(
            "GET",
            "/tickets?category=lead&state=intake",
            Some(&director),
            None,
        )
        .await;
    assert_eq!(listed(&b), newest_first(&[0, 2]));
    let since = (start + jiff::SignedDuration::from_secs(150)).to_string();
    let (s, b) = api
        .call(
            "GET",
            &format!("/tickets?since={since}"),
            Some(&director),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(listed(&b), newest_first(&[3, 4]));
    // Pages of two, each after the last ticket of the one before.
    let mut pages = Vec::new();
    let mut query = "/tickets?limit=2".to_string();
    loop {
        let (s, b) = api.call("GET", &query, Some(&director), None).await;
        assert_eq!(s, 200, "{b}");
        let page = listed(&b);
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        query = format!("/tickets?limit=2&before={}", page.last().unwrap());
        pages.push(page);
        assert!(pages.len() <= 3, "pages never end: {pages:?}");
    }
    assert_eq!(pages.concat(), newest_first(&[0, 1, 2, 3, 4]));
    // Bad filters are refused with the reason, as JSON.
    for (q, needle) in [
        ("category=theft", "category"),
        ("state=lost", "state"),
        ("since=yesterday", "since"),
        ("before=2026-999999", "not in this list"),
        ("colour=red", "colour"),
        ("limit=many", "limit"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
    ] {
        let (s, b) = api
            .call("GET", &format!("/tickets?{q}"), Some(&director), None)
            .await;
        assert_eq!(s, 400, "{q}: {b}");
        assert_eq!(b["error"], "bad_request", "{q}: {b}");
        assert!(b["message"].as_str().unwrap().contains(needle), "{q}: {b}");
    }
    // An officer of a unit sees at most the open one (paged to the duty
    // unit), never the tickets still in intake.
    set_pin(&gw, "u1-officer", "135790").await;
    let officer = api.login("u1-officer", "135790").await;
    let (s, b) = api
        .call("GET", "/tickets?category=lead", Some(&officer), None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(listed(&b).iter().all(|n| *n == numbers[4]), "{b}");
    gw.stop().await;
}
