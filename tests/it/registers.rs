//! The daily activity register (issue 20, item 4): officers record their
//! own day's activities; a correction is a new entry naming the one it
//! corrects (both stay: append-only); an officer reads only their own, the
//! bureau everyone's and exports them; bad input is named.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_are_recorded_corrected_by_new_entries_and_read_by_role() {
    let gw = Gateway::start(settings()).await;
    let api = crate::helpers::Api::new(&gw);
    let tokens = api
        .logged_in(&gw.store, &["u1-officer", "u2-officer", "m-chen"])
        .await;
    let (u1, u2, director) = (&tokens[0], &tokens[1], &tokens[2]);
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(hotline::court_time::court_tz())
        .date()
        .to_string();
    let entry = |result: &str, corrects: Option<&str>| {
        json!({"time": "09:30", "case_number": "(2026)鲁0203执1号", "measure": "search",
               "result": result, "corrects": corrects})
    };
    let (s, b) = api
        .call(
            "POST",
            "/activities",
            Some(u1),
            Some(entry("搜查住所，未发现", None)),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let first = b["id"].as_str().unwrap().to_string();
    let (s, b) = api
        .call(
            "POST",
            "/activities",
            Some(u1),
            Some(entry("搜查住所，查获车辆一辆", Some(&first))),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let second = b["id"].as_str().unwrap().to_string();
    // Another officer cannot correct it.
    let (s, b) = api
        .call(
            "POST",
            "/activities",
            Some(u2),
            Some(entry("改写", Some(&first))),
        )
        .await;
    assert_eq!(s, 404, "{b}");

    // Append-only: both entries, the first marked as corrected by the second.
    let q = format!("/activities?day={today}");
    let (s, b) = api.call("GET", &q, Some(u1), None).await;
    assert_eq!(s, 200, "{b}");
    let list = b.as_array().unwrap();
    assert_eq!(list.len(), 2, "{b}");
    assert_eq!(list[0]["id"], first.as_str());
    assert_eq!(list[0]["corrected_by"], second.as_str());
    assert_eq!(list[0]["result"], "搜查住所，未发现");
    assert_eq!(list[1]["corrects"], first.as_str());
    // An officer sees only their own; not someone else's on asking.
    let (s, b) = api.call("GET", &q, Some(u2), None).await;
    assert_eq!((s, b.as_array().map(Vec::len)), (200, Some(0)), "{b}");
    let (s, b) = api
        .call("GET", &format!("{q}&member=u1-officer"), Some(u2), None)
        .await;
    assert_eq!(s, 403, "{b}");
    // The bureau sees and exports everyone's.
    let (s, b) = api
        .call(
            "GET",
            &format!("{q}&member=u1-officer"),
            Some(director),
            None,
        )
        .await;
    assert_eq!((s, b.as_array().map(Vec::len)), (200, Some(2)), "{b}");
    let (_, _, csv) = api.bytes(&format!("{q}&format=csv"), director).await;
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.starts_with("\u{feff}编号,人员编号,人员,日期,时间,"),
        "{csv}"
    );
    assert!(csv.contains(&first) && csv.contains(&second), "{csv}");
    assert!(csv.contains(",u1-officer,一组执行员,"), "{csv}");
    assert!(csv.contains("09:30,(2026)鲁0203执1号,搜查,"), "{csv}");
    let (s, kind, xlsx) = api.bytes(&format!("{q}&format=xlsx"), director).await;
    assert_eq!(s, 200);
    assert!(kind.starts_with("application/vnd.openxmlformats"), "{kind}");
    // Read back by openpyxl: Chinese headers, the day a date, the time a
    // time, the officer by name, the measure by its name.
    let book = crate::helpers::openpyxl_bytes(&xlsx, "activities.xlsx");
    let rows = book["执法活动登记"]["rows"].as_array().unwrap();
    let head: Vec<&Value> = rows[0].as_array().unwrap().iter().map(|c| &c[1]).collect();
    assert_eq!(
        head,
        [
            "编号",
            "人员编号",
            "人员",
            "日期",
            "时间",
            "案号",
            "措施",
            "结果",
            "工单",
            "更正",
            "被更正"
        ]
    );
    assert_eq!(rows.len(), 3, "{book}");
    let first_row = &rows[1];
    assert_eq!(first_row[0][1], first.as_str());
    assert_eq!(
        (&first_row[1][1], &first_row[2][1]),
        (&json!("u1-officer"), &json!("一组执行员"))
    );
    assert_eq!(
        first_row[3],
        json!(["datetime", format!("{today}T00:00:00")])
    );
    assert_eq!(first_row[4], json!(["time", "09:30:00"]));
    assert_eq!(
        (&first_row[6][1], &first_row[7][1]),
        (&json!("搜查"), &json!("搜查住所，未发现"))
    );
    assert_eq!(first_row[10][1], second.as_str());
    // Nothing to delete or rewrite an entry with.
    let (s, _) = api.call("DELETE", "/activities", Some(u1), None).await;
    assert_eq!(s, 405);

    // Bad input, named.
    for (body, says) in [
        (
            json!({"day": "2999-01-01", "time": "09:30", "measure": "search", "result": "x"}),
            "day: not in the future",
        ),
        (
            json!({"time": "9h30", "measure": "search", "result": "x"}),
            "time \"9h30\"",
        ),
        (
            json!({"time": "09:30", "measure": "shooting", "result": "x"}),
            "measure",
        ),
        (
            json!({"time": "09:30", "measure": "search", "result": " "}),
            "result: 1 to 4000 bytes",
        ),
    ] {
        let (s, b) = api.call("POST", "/activities", Some(u1), Some(body)).await;
        assert_eq!(s, 400, "{b}");
        assert!(b["message"].as_str().unwrap().contains(says), "{b}");
    }
    let (s, b) = api
        .call("POST", "/activities", Some(u1), Some(json!({"time": "09:30", "measure": "search", "result": "x", "ticket": "2026-999999"})))
        .await;
    assert_eq!(s, 404, "{b}");
    gw.stop().await;
}

/// The reward register (issue 20, item 5): the director rates a closed lead
/// and proposes a reward, a deputy (not the proposer) approves; the register
/// of rated leads shows the informant only to the reveal roles, and every
/// listing goes on the ticket's timeline.
/// Issue 30: a result written as a spreadsheet formula leaves in the
/// export as text (OWASP: a leading `'`), quoted as CSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_written_as_a_formula_exports_as_text() {
    let gw = Gateway::start(settings()).await;
    let api = crate::helpers::Api::new(&gw);
    let tokens = api.logged_in(&gw.store, &["u1-officer", "m-chen"]).await;
    let (u1, director) = (&tokens[0], &tokens[1]);
    let formula = r#"=HYPERLINK("http://x","y")"#;
    let (s, b) = api
        .call(
            "POST",
            "/activities",
            Some(u1),
            Some(json!({"time": "09:30", "measure": "search", "result": formula})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(hotline::court_time::court_tz())
        .date()
        .to_string();
    let csv = api
        .text(&format!("/activities?day={today}&format=csv"), director)
        .await;
    // The cell as a spreadsheet reads it: `'=HYPERLINK("http://x","y")`.
    assert!(
        csv.contains(r#",搜查,"'=HYPERLINK(""http://x"",""y"")","#),
        "{csv}"
    );
    assert!(!csv.contains(r#","=HYPERLINK"#), "{csv}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewards_are_rated_approved_by_another_and_every_view_is_audited() {
    use hotline::tickets::actions;
    let gw = Gateway::start(settings()).await;
    let api = crate::helpers::Api::new(&gw);
    let tokens = api
        .logged_in(&gw.store, &["u1-officer", "m-chen", "m-lin", "m-desk-1"])
        .await;
    let (officer, director, deputy, desk) = (&tokens[0], &tokens[1], &tokens[2], &tokens[3]);
    let call = crate::helpers::TestCall::place(gw.udp, "reward@t", 0).await;
    call.info(0, '1').await;
    call.hangup().await;
    let n = ticket_of(&gw.store, "reward@t").await;
    let store = gw.store.clone();
    eventually("open", std::time::Duration::from_secs(10), || async {
        store
            .get(&n)
            .await
            .is_ok_and(|t| t.state == hotline::tickets::State::Open)
    })
    .await;
    let path = format!("/tickets/{n}/reward");
    let rating = json!({"value": "valuable", "amount_yuan": 500});
    // Not closed yet: refused.
    let (s, b) = api
        .call("POST", &path, Some(director), Some(rating.clone()))
        .await;
    assert_eq!(s, 409, "{b}");
    let t = store.get(&n).await.unwrap();
    let closing =
        actions::Closing::parse(vec![hotline::tickets::model::Measure::Seizure], "扣押车辆")
            .unwrap();
    store
        .act(
            &n,
            &actions::close("u1-officer", t.version, closing, jiff::Timestamp::now()),
        )
        .await
        .unwrap();
    // Only the director rates; a worthless lead gets no reward.
    let (s, b) = api
        .call("POST", &path, Some(deputy), Some(rating.clone()))
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = api
        .call(
            "POST",
            &path,
            Some(director),
            Some(json!({"value": "worthless", "amount_yuan": 100})),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = api
        .call("POST", &path, Some(director), Some(rating.clone()))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["reward"]["amount_yuan"], 500);
    // The proposer does not approve (the director is a deputy too); another does.
    let decision = format!("{path}/decision");
    let (s, b) = api
        .call(
            "POST",
            &decision,
            Some(director),
            Some(json!({"approved": true})),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = api
        .call(
            "POST",
            &decision,
            Some(deputy),
            Some(json!({"approved": true})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["reward"]["decision"]["by"], "m-lin");
    // Decided: no more rating.
    let (s, b) = api.call("POST", &path, Some(director), Some(rating)).await;
    assert_eq!(s, 409, "{b}");

    // The register: the informant for the director (a reveal role) only.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(hotline::court_time::court_tz())
        .date();
    let q = format!("/rewards?from={today}&to={today}");
    let (s, b) = api.call("GET", &q, Some(director), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b[0]["ticket"], n.as_str());
    assert_eq!(b[0]["informant"], "13700000000", "{b}");
    let (s, b) = api.call("GET", &q, Some(desk), None).await;
    assert_eq!(s, 200, "{b}");
    assert!(b[0]["informant"].is_null(), "{b}");
    let (s, b) = api.call("GET", &q, Some(officer), None).await;
    assert_eq!(s, 403, "{b}");
    // Each view on the ticket's timeline, by whom and whether it showed the informant.
    let tl = store.timeline(&n).await.unwrap();
    let views: Vec<(&str, &str)> = tl
        .iter()
        .filter(|e| e.action == "reward_register_viewed")
        .map(|e| (e.actor.as_str(), e.details.as_str()))
        .collect();
    assert_eq!(views.len(), 2, "{views:?}");
    assert_eq!(views[0].0, "m-chen");
    assert!(views[0].1.contains("\"informant_shown\":true"), "{views:?}");
    assert_eq!(views[1].0, "m-desk-1");
    assert!(
        views[1].1.contains("\"informant_shown\":false"),
        "{views:?}"
    );
    // The register as a workbook (a listing too: on the timeline).
    let (s, _, xlsx) = api.bytes(&format!("{q}&format=xlsx"), director).await;
    assert_eq!(s, 200);
    let book = crate::helpers::openpyxl_bytes(&xlsx, "rewards.xlsx");
    let rows = book["奖励登记"]["rows"].as_array().unwrap();
    let cells = |r: usize| -> Vec<Value> {
        rows[r]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[1].clone())
            .collect()
    };
    assert_eq!(
        cells(0),
        [
            "工单号",
            "接报时间",
            "类别",
            "线索价值",
            "建议奖励（元）",
            "评价人",
            "评价时间",
            "审批",
            "审批人",
            "审批时间",
            "举报人"
        ]
    );
    let row = cells(1);
    assert_eq!(row[0], n.as_str());
    assert_eq!(
        (&row[3], &row[4], &row[5]),
        (&json!("有价值"), &json!(500), &json!("陈局长"))
    );
    assert_eq!(
        (&row[7], &row[8], &row[10]),
        (&json!("批准"), &json!("林副院长"), &json!("13700000000"))
    );
    assert_eq!(
        rows[1][1][0], "datetime",
        "the time received is a date: {book}"
    );
    assert_eq!(
        rows[1][9][0], "datetime",
        "the decision's time is a date: {book}"
    );
    let (s, b) = api
        .call("GET", &format!("{q}&format=pdf"), Some(director), None)
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["message"].as_str().unwrap().starts_with("format \"pdf\""),
        "{b}"
    );
    gw.stop().await;
}

/// Shift handover (issue 20, item 3): the duty block's handover goes out
/// once through the incoming duty's and the director's text channels (here
/// SIP MESSAGE to a phone of the test's) and is on the board.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shift_handover_reaches_the_incoming_duty_and_the_board() {
    let (phone, _, bodies) = crate::helpers::phone_keeping(true).await;
    let mut s = settings();
    s.roster.file = crate::helpers::roster_for(phone);
    let gw = Gateway::start(s).await;
    eventually(
        "the handover's MESSAGE",
        std::time::Duration::from_secs(15),
        || async { bodies.lock().unwrap().iter().any(|b| b.contains("交接班")) },
    )
    .await;
    let api = crate::helpers::Api::new(&gw);
    let director = api.logged_in(&gw.store, &["m-chen"]).await.remove(0);
    let (s, b) = api.call("GET", "/board", Some(&director), None).await;
    assert_eq!(s, 200, "{b}");
    let h = &b["last_handover"];
    assert!(h["until"].is_string(), "{b}");
    assert!(!h["sent_to"].as_array().unwrap().is_empty(), "{h}");
    // Once per block, whichever gateway claims it: the claim is the store's.
    let start = jiff::Timestamp::now().as_millisecond() + 86_400_000;
    assert!(gw.store.claim_handover(start).await.unwrap());
    assert!(!gw.store.claim_handover(start).await.unwrap());
    gw.stop().await;
}
