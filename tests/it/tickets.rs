//! Tickets against a real redis-server: the state machine, races,
//! idempotency, timelines, and what a call leaves in the logbook, also
//! across Redis outages and a SIGKILL.

use std::time::Duration;

use hotline::tickets::model::Change;
use hotline::tickets::model::{Register, State, ALL_STATES};
use hotline::tickets::store::{Applied, NewTicket};
use hotline::tickets::{Store, StoreError};
use jiff::Timestamp;
use tokio::net::UdpSocket;

use crate::helpers::*;

fn store(r: &Redis) -> Store {
    Store::connect(&r.url(), "hotline:").unwrap()
}

async fn new_ticket(s: &Store, call_id: &str) -> String {
    let t = NewTicket {
        call_id: call_id.into(),
        call: String::new(),
        received_at: Timestamp::now(),
        register: Register::default(),
    };
    s.create(&t, "test").await.unwrap().0
}

fn to(state: State, actor: &str) -> Change {
    let mut c = Change::new(actor, &format!("to_{state}"));
    c.to = Some(state);
    c
}

/// Walks a new ticket to `state` through allowed steps.
async fn ticket_in(s: &Store, state: State, call_id: &str) -> String {
    use State::*;
    let path: &[State] = match state {
        Intake => &[],
        Open => &[Open],
        Acknowledged => &[Open, Acknowledged],
        Dispatched => &[Open, Acknowledged, Dispatched],
        OnScene => &[Open, Acknowledged, Dispatched, OnScene],
        Closed => &[Open, Acknowledged, Dispatched, OnScene, Closed],
        Abandoned => &[Abandoned],
        Cancelled => &[Cancelled],
        Duplicate => &[Duplicate],
    };
    let n = new_ticket(s, call_id).await;
    for st in path {
        s.change(&n, &to(*st, "walker"), |_| {}).await.unwrap();
    }
    assert_eq!(s.get(&n).await.unwrap().state, state);
    n
}

/// The register's transitions, written out from the logbook's rules (not
/// read from the code under test): report → 签收 → 出警 → arrival →
/// closing; closing without a dispatch (a lead settled by phone); an
/// intake with nothing usable abandoned; anything not final cancelled or
/// marked a duplicate by an authorised person.
const ALLOWED: &[(State, State)] = {
    use State::*;
    &[
        (Intake, Open),
        (Intake, Abandoned),
        (Intake, Cancelled),
        (Intake, Duplicate),
        (Open, Acknowledged),
        (Open, Closed),
        (Open, Cancelled),
        (Open, Duplicate),
        (Acknowledged, Dispatched),
        (Acknowledged, Closed),
        (Acknowledged, Cancelled),
        (Acknowledged, Duplicate),
        (Dispatched, OnScene),
        (Dispatched, Closed),
        (Dispatched, Cancelled),
        (Dispatched, Duplicate),
        (OnScene, Closed),
        (OnScene, Cancelled),
        (OnScene, Duplicate),
    ]
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transition_is_allowed_or_refused_as_the_table_says() {
    let r = Redis::start("everysec").await;
    let s = store(&r);
    let mut i = 0;
    for from in ALL_STATES {
        for target in ALL_STATES {
            i += 1;
            let n = ticket_in(&s, from, &format!("sm-{i}")).await;
            let before = s.get(&n).await.unwrap();
            let result = s.change(&n, &to(target, "officer"), |_| {}).await;
            let after = s.get(&n).await.unwrap();
            if ALLOWED.contains(&(from, target)) {
                assert!(result.is_ok(), "{from} -> {target}: {result:?}");
                assert_eq!((after.state, after.version), (target, before.version + 1));
            } else {
                assert!(
                    matches!(result, Err(StoreError::Illegal { from: f, .. }) if f == from),
                    "{from} -> {target} must be refused: {result:?}"
                );
                assert_eq!(
                    after, before,
                    "a refused change leaves the ticket as it was"
                );
            }
        }
    }
    // Indexes follow: the open index holds no final ticket.
    let open = s.list("open", 1000).await.unwrap();
    assert!(open.iter().all(|t| !t.state.is_final()));
    let closed = s.list("state:closed", 1000).await.unwrap();
    assert!(!closed.is_empty() && closed.iter().all(|t| t.state == State::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_officers_exactly_one_closes() {
    let r = Redis::start("everysec").await;
    let s = store(&r);
    let n = ticket_in(&s, State::OnScene, "race-1").await;
    let version = s.get(&n).await.unwrap().version;
    let mut tasks = Vec::new();
    for k in 0..16 {
        let (s, n) = (s.clone(), n.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = to(State::Closed, &format!("officer{k}"));
            c.expected_version = Some(version);
            s.change(&n, &c, move |r| {
                r.disposal.closed_by = Some(format!("officer{k}"))
            })
            .await
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(Applied::Done { .. }) => won.push(()),
            Err(StoreError::Stale { state, .. }) => assert_eq!(state, State::Closed),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one officer closes the ticket");
    let t = s.get(&n).await.unwrap();
    assert_eq!((t.state, t.version), (State::Closed, version + 1));
    let closes = s
        .timeline(&n)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.to == State::Closed)
        .count();
    assert_eq!(closes, 1);
    // Without a version (system writers retry), a second close is illegal.
    let again = s.change(&n, &to(State::Closed, "gateway"), |_| {}).await;
    assert!(
        matches!(again, Err(StoreError::Illegal { .. })),
        "{again:?}"
    );
}

/// The version guards the register: entries that only add to the timeline
/// (page attempts, downloads) leave it, so an officer's step based on what
/// they read still applies; any edit of the register moves it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_changes_of_state_or_register_move_the_version() {
    let r = Redis::start("everysec").await;
    let s = store(&r);
    let n = ticket_in(&s, State::Open, "version-1").await;
    let read = s.get(&n).await.unwrap().version;
    for action in ["page", "recording_download"] {
        let done = s.change(&n, &Change::new("paging", action), |_| {}).await;
        assert!(matches!(done, Ok(Applied::Done { version, .. }) if version == read));
    }
    assert_eq!(
        s.timeline(&n).await.unwrap().last().unwrap().action,
        "recording_download"
    );
    let mut ack = to(State::Acknowledged, "u1-officer");
    ack.expected_version = Some(read);
    let done = s.change(&n, &ack, |_| {}).await.unwrap();
    assert_eq!(
        done,
        Applied::Done {
            state: State::Acknowledged,
            version: read + 1
        }
    );
    // An edit without a transition is a change too: a step on the old
    // version is now stale.
    s.change(&n, &Change::new("u1-officer", "note"), |r| {
        r.intake.whereabouts = Some("东门".into())
    })
    .await
    .unwrap();
    let mut dispatch = to(State::Dispatched, "u1-officer");
    dispatch.expected_version = Some(read + 1);
    let stale = s.change(&n, &dispatch, |_| {}).await;
    assert!(
        matches!(stale, Err(StoreError::Stale { state: State::Acknowledged, version }) if version == read + 2),
        "{stale:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_id_one_ticket_and_numbers_per_year() {
    let r = Redis::start("everysec").await;
    let s = store(&r);
    let t = NewTicket {
        call_id: "same@x".into(),
        call: String::new(),
        received_at: "2026-12-31T16:30:00Z".parse().unwrap(), // 2027-01-01 00:30 in Qingdao
        register: Register::default(),
    };
    let (a, created_a) = s.create(&t, "gateway").await.unwrap();
    let (b, created_b) = s.create(&t, "gateway").await.unwrap();
    assert_eq!(
        (a.as_str(), created_a, created_b),
        ("2027-000001", true, false)
    );
    assert_eq!(a, b);
    let other = NewTicket {
        call_id: "other@x".into(),
        call: String::new(),
        received_at: "2026-12-31T15:59:59Z".parse().unwrap(), // 23:59:59 on New Year's Eve
        register: Register::default(),
    };
    assert_eq!(s.create(&other, "gateway").await.unwrap().0, "2026-000001");
    let timeline = s.timeline(&a).await.unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(
        (timeline[0].action.as_str(), timeline[0].to),
        ("created", State::Intake)
    );
    // A replayed change (same op id) is applied once.
    let mut c = Change::new("gateway", "note");
    c.op_id = Some("op-1".into());
    let first = s
        .change(&a, &c, |r| r.intake.whereabouts = Some("x".into()))
        .await
        .unwrap();
    let second = s
        .change(&a, &c, |r| r.intake.whereabouts = Some("y".into()))
        .await
        .unwrap();
    assert!(matches!(first, Applied::Done { version: 2, .. }));
    assert_eq!(second, Applied::AlreadyApplied);
    assert_eq!(
        s.get(&a)
            .await
            .unwrap()
            .register
            .intake
            .whereabouts
            .as_deref(),
        Some("x")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_records_every_change_in_order() {
    let r = Redis::start("everysec").await;
    let s = store(&r);
    let n = new_ticket(&s, "tl-1").await;
    s.change(&n, &to(State::Open, "gateway"), |r| {
        r.intake.case_number = Some("(2026)鲁0203执1234号".into())
    })
    .await
    .unwrap();
    let mut ack = to(State::Acknowledged, "m-zhang");
    ack.details = serde_json::json!({"note": "签收"});
    ack.index = vec!["member:m-zhang".into()];
    s.change(&n, &ack, |r| {
        r.dispatch.acknowledged_by = Some("m-zhang".into())
    })
    .await
    .unwrap();
    let tl = s.timeline(&n).await.unwrap();
    let summary: Vec<(String, Option<State>, State, u64)> = tl
        .iter()
        .map(|e| (e.actor.clone(), e.from, e.to, e.version))
        .collect();
    assert_eq!(
        summary,
        [
            ("test".into(), None, State::Intake, 1),
            ("gateway".into(), Some(State::Intake), State::Open, 2),
            ("m-zhang".into(), Some(State::Open), State::Acknowledged, 3),
        ]
    );
    assert_eq!(tl[2].details, r#"{"note":"签收"}"#);
    assert!(tl.windows(2).all(|w| w[0].at <= w[1].at));
    // Indexes: by case number (its digits, as callers key it) and by member.
    let by_case = s.list("case:202602031234", 10).await.unwrap();
    assert_eq!(by_case.len(), 1);
    assert_eq!(s.list("member:m-zhang", 10).await.unwrap()[0].number, n);
}

/// A Via branch from a Call-ID (a token: no `@`).
fn branch(call_id: &str, suffix: &str) -> String {
    format!("z9hG4bK-{}{suffix}", token(call_id))
}

fn invite(call_id: &str, via_branch: &str, from: std::net::SocketAddr) -> String {
    Invite::new(call_id, from)
        .branch(via_branch)
        .from("\"Li Si\" <sip:13900000000@127.0.0.1>")
        .tag(branch(call_id, "-tag"))
        .to_string()
}

/// INVITE on `via_branch` from `sock`, its 200, our ACK (the call is
/// confirmed: it has a ticket); returns the headers in-dialog requests share.
async fn confirmed(
    sock: &UdpSocket,
    gw: std::net::SocketAddr,
    call_id: &str,
    via_branch: &str,
) -> String {
    let me = sock.local_addr().unwrap();
    sock.send_to(invite(call_id, via_branch, me).as_bytes(), gw)
        .await
        .unwrap();
    let ok = loop {
        let m = recv(sock, Duration::from_secs(5)).await.expect("answer");
        if status_of(&m) == Some(200) && String::from_utf8_lossy(&m).contains(via_branch) {
            break String::from_utf8(m).unwrap();
        }
    };
    let to = header(&ok, "To").unwrap().to_string();
    let common = format!(
        "Max-Forwards: 70\r\nFrom: \"Li Si\" <sip:13900000000@127.0.0.1>;tag={}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n",
        branch(call_id, "-tag")
    );
    let ack = format!("ACK sip:hotline@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={via_branch}-a\r\n{common}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    sock.send_to(ack.as_bytes(), gw).await.unwrap();
    common
}

/// A whole call over raw UDP: INVITE, ACK, BYE; returns when the BYE is answered.
async fn call(gw: &Gateway, call_id: &str) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let common = confirmed(&sock, gw.udp, call_id, &branch(call_id, "")).await;
    let bye = format!("BYE sip:hotline@{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={}\r\n{common}CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", gw.udp, branch(call_id, "-b"));
    sock.send_to(bye.as_bytes(), gw.udp).await.unwrap();
    loop {
        let m = recv(&sock, Duration::from_secs(5))
            .await
            .expect("BYE answered");
        let text = String::from_utf8_lossy(&m);
        if status_of(&m) == Some(200) && text.contains("CSeq: 2 BYE") {
            return;
        }
    }
}

/// A Call-ID used again (same From tag, same everything) is another call:
/// a new ticket, and the first one, already final, keeps its register and
/// its recording.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_call_id_gets_a_new_ticket_and_leaves_the_old_one_alone() {
    let gw = Gateway::start(settings()).await;
    let s = gw.store.clone();
    let recorded = |n: String| {
        let s = s.clone();
        async move {
            s.get(&n)
                .await
                .is_ok_and(|t| t.state.is_final() && t.register.recordings.len() == 1)
        }
    };
    let newest = || {
        let s = s.clone();
        async move { s.number_for_call("reused@test").await.ok().flatten() }
    };
    call(&gw, "reused@test").await;
    eventually(
        "the first call's ticket final, recorded",
        Duration::from_secs(10),
        || async {
            match newest().await {
                Some(n) => recorded(n).await,
                None => false,
            }
        },
    )
    .await;
    let first = newest().await.unwrap();
    let before = s.get(&first).await.unwrap();
    call(&gw, "reused@test").await;
    let other = |n: &Option<String>| n.as_ref().is_some_and(|n| *n != first);
    eventually(
        "a second ticket, recorded",
        Duration::from_secs(10),
        || async {
            match newest().await.filter(|n| *n != first) {
                Some(n) => recorded(n).await,
                None => false,
            }
        },
    )
    .await;
    let second = newest().await;
    assert!(other(&second));
    let after = s.get(&first).await.unwrap();
    assert_eq!(after, before, "the first ticket is untouched");
    let second = s.get(&second.unwrap()).await.unwrap();
    assert_ne!(
        second.register.recordings[0].path, before.register.recordings[0].path,
        "each call its own recording"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_leaves_a_ticket_with_its_end() {
    let gw = Gateway::start(settings()).await;
    call(&gw, "tk-1@test").await;
    let s = gw.store.clone();
    eventually(
        "the call's end is on its ticket",
        Duration::from_secs(10),
        || {
            let s = s.clone();
            async move {
                ticket_now(&s, "tk-1@test")
                    .await
                    .is_some_and(|t| t.register.intake.call_end.is_some())
            }
        },
    )
    .await;
    let t = ticket_now(&s, "tk-1@test").await.unwrap();
    // Nothing usable was given (no intake yet): abandoned.
    assert_eq!(t.state, State::Abandoned);
    // The caller is sealed at rest; the gateway's key opens it.
    let key = hotline::privacy::CallerKey::load(None, &gw.key_file).unwrap();
    let sealed = t.register.caller.number.clone().unwrap();
    assert!(hotline::privacy::is_sealed(&sealed), "{sealed}");
    assert_eq!(key.open(&sealed).as_deref(), Some("13900000000"));
    assert_eq!(
        key.open(t.register.caller.display_name.as_deref().unwrap())
            .as_deref(),
        Some("Li Si")
    );
    assert_eq!(t.register.intake.call_end.as_deref(), Some("caller_bye"));
    let tl = s.timeline(&t.number).await.unwrap();
    let actions: Vec<&str> = tl.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["created", "call_ended", "recording"]);
    // Nowhere in Redis in clear.
    let dump = redis_dump(&s).await;
    assert!(
        !dump.contains("13900000000") && !dump.contains("Li Si"),
        "caller in clear in Redis"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_loses_no_call_and_duplicates_none() {
    let mut gw = Gateway::start(settings()).await;
    gw.redis.kill();
    for i in 0..3 {
        call(&gw, &format!("out-{i}@test")).await;
    }
    eventually("healthz says degraded", Duration::from_secs(10), || async {
        let (code, body) = gw.get("/healthz").await;
        code == 200 && body.contains("\"status\":\"degraded\"")
    })
    .await;
    // Calls during the outage were answered: three 200s went out.
    assert_eq!(gw.metrics.get("calls_answered"), 3);
    gw.redis.restart().await;
    let s = gw.store.clone();
    eventually("journal replayed", Duration::from_secs(15), || {
        let s = s.clone();
        async move {
            let mut done = 0;
            for i in 0..3 {
                if ticket_now(&s, &format!("out-{i}@test"))
                    .await
                    .is_some_and(|t| {
                        t.state == State::Abandoned && !t.register.recordings.is_empty()
                    })
                {
                    done += 1;
                }
            }
            done == 3
        }
    })
    .await;
    let all = s.list("all", 100).await.unwrap();
    assert_eq!(all.len(), 3, "exactly one ticket per call");
    for t in &all {
        let actions: Vec<String> = s
            .timeline(&t.number)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            ["created", "call_ended", "recording"],
            "{}",
            t.number
        );
    }
    eventually("healthz ok again", Duration::from_secs(10), || async {
        gw.get("/healthz").await.1.contains("\"status\":\"ok\"")
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_tickets_survive_sigkill_with_fsync_always() {
    let mut r = Redis::start("always").await;
    let s = store(&r);
    let mut numbers = Vec::new();
    for i in 0..20 {
        numbers.push(ticket_in(&s, State::Acknowledged, &format!("kill-{i}")).await);
    }
    r.kill();
    r.restart().await;
    let s = store(&r);
    for n in &numbers {
        assert_eq!(s.get(n).await.unwrap().state, State::Acknowledged, "{n}");
    }
}

/// A gateway that stopped ended its call (BYE) and finished its ticket;
/// an INVITE with the same Call-ID at the restarted gateway is a new call:
/// a new ticket, the first one's register and timeline as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_same_call_id_is_a_new_call_with_its_own_ticket() {
    let gw = Gateway::start(settings()).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    confirmed(&sock, gw.udp, "restart@test", "z9hG4bK-r1").await;
    let s = gw.store.clone();
    eventually("ticket created", Duration::from_secs(10), || {
        let s = s.clone();
        async move { ticket_now(&s, "restart@test").await.is_some() }
    })
    .await;
    let first = ticket_now(&s, "restart@test").await.unwrap().number;
    let redis = gw.stop().await;
    let timeline = |s: Store, n: String| async move {
        s.timeline(&n)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect::<Vec<String>>()
    };
    // The stop ended the call: the writer applied everything first.
    let ended = timeline(s.clone(), first.clone()).await;
    assert_eq!(ended, ["created", "call_ended", "recording"]);
    // A new gateway process on the same Redis gets an INVITE again.
    let gw = Gateway::start_with(settings(), redis).await;
    confirmed(&sock, gw.udp, "restart@test", "z9hG4bK-r2").await;
    let m = gw.metrics.clone();
    eventually("the call confirmed", Duration::from_secs(5), || {
        let m = m.clone();
        async move { m.get("calls_confirmed") == 1 }
    })
    .await;
    let store = gw.store.clone();
    let _redis = gw.stop().await;
    let all = store.list("all", 10).await.unwrap();
    assert_eq!(all.len(), 2, "a ticket for each call");
    let second = store
        .number_for_call("restart@test")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(second, first);
    assert_eq!(
        timeline(store.clone(), first).await,
        ended,
        "the first is untouched"
    );
    assert_eq!(
        timeline(store, second).await,
        ["created", "call_ended", "recording"]
    );
}

/// The journal at its bound (a full disk, as far as the writer can tell)
/// with Redis down: a call's operations wait in memory, in order, and all
/// reach Redis when it is back — the intake after its ticket, the end after
/// the intake — and health says the journal is full meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_keeps_the_order_and_loses_nothing() {
    use hotline::tickets::journal::{IntakeStep, Journal, Op};
    use hotline::tickets::model::{Caller, Category};
    use std::sync::atomic::Ordering;
    let mut r = Redis::start("everysec").await;
    let s = store(&r);
    let mut journal = Journal::open(&tempfile_dir("journal-full")).unwrap();
    // Room for one operation: the second one finds the journal full.
    journal.set_limit(250);
    r.kill();
    let (tickets, task) = hotline::tickets::Tickets::spawn(s.clone(), journal);
    let (call_id, call) = ("full@test".to_string(), "k-full".to_string());
    let at = Timestamp::now();
    let ops = [
        Op::Created {
            id: "f1".into(),
            call_id: call_id.clone(),
            call: call.clone(),
            at,
            caller: Caller::default(),
        },
        Op::Intake {
            id: "f2".into(),
            call_id: call_id.clone(),
            call: call.clone(),
            at,
            step: IntakeStep::Category {
                category: Category::Lead,
                urgent: false,
                person: false,
            },
        },
        Op::CallEnded {
            id: "f3".into(),
            call_id: call_id.clone(),
            call: call.clone(),
            at,
            seconds: 12.0,
            how: "caller_bye".into(),
        },
    ];
    for op in ops {
        tickets.submit(op).await;
    }
    let health = tickets.health.clone();
    eventually("the journal reported full", Duration::from_secs(10), || {
        let h = health.clone();
        async move { !h.journal_ok.load(Ordering::Relaxed) && h.pending.load(Ordering::Relaxed) == 3 }
    })
    .await;
    r.restart().await;
    eventually(
        "all three applied, in order",
        Duration::from_secs(15),
        || {
            let s = s.clone();
            async move {
                match s.number_for_call("full@test").await {
                    Ok(Some(n)) => s.get(&n).await.is_ok_and(|t| {
                        t.state == State::Open
                            && t.register.intake.category == Some(Category::Lead)
                            && t.register.intake.call_end.as_deref() == Some("caller_bye")
                    }),
                    _ => false,
                }
            }
        },
    )
    .await;
    let n = s.number_for_call("full@test").await.unwrap().unwrap();
    let actions: Vec<String> = s
        .timeline(&n)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["created", "intake_category", "call_ended"]);
    drop(tickets);
    task.await.unwrap();
}

/// The caller key's fingerprint is kept in Redis by the first gateway; a
/// gateway started with another key (a lost file, another working
/// directory) is refused, the error naming both fingerprints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_another_caller_key_is_refused_at_start() {
    let gw = Gateway::start(settings()).await;
    let first = hotline::privacy::CallerKey::load(None, &gw.key_file).unwrap();
    let redis = gw.stop().await;
    let mut s = settings();
    s.redis.url = redis.url();
    s.redis.journal_dir = tempfile_dir("journal");
    s.recording.dir = tempfile_dir("recordings");
    // A new key file: another key.
    s.privacy.key_file = tempfile_dir("key2").join("caller.key");
    let other = hotline::privacy::CallerKey::load(None, &s.privacy.key_file).unwrap();
    assert_ne!(other.fingerprint(), first.fingerprint());
    let err = match hotline::app::App::build(s).await {
        Ok(_) => panic!("a gateway with another caller key started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains(other.fingerprint()) && err.contains(first.fingerprint()),
        "{err}"
    );
    assert!(err.contains("privacy.key_file"), "{err}");
    // The right key still starts.
    Gateway::start_with(settings(), redis).await.stop().await;
}

/// `rediss://`: the store talks TLS to a Redis (redis-server with TLS on
/// loopback, the test CA's certificate), checking the server's certificate
/// against `[redis] tls_ca`; without that CA the same server is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_store_over_tls_checks_the_servers_certificate() {
    let tls = repo().join("tests/fixtures/tls");
    let port = free_tcp_port();
    // Killed when dropped, a failed assertion included.
    let _server = tokio::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--tls-cert-file")
        .arg(tls.join("cert.pem"))
        .arg("--tls-key-file")
        .arg(tls.join("key.pem"))
        .arg("--tls-ca-cert-file")
        .arg(tls.join("ca.pem"))
        .args([
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server runs");
    let mut s = settings();
    s.redis.url = format!("rediss://127.0.0.1:{port}/");
    s.redis.tls_ca = Some(tls.join("ca.pem"));
    s.validate("test").expect("rediss:// with a CA is valid");
    let store = s.redis.store().unwrap();
    let t = NewTicket {
        call_id: "tls@test".into(),
        call: String::new(),
        received_at: Timestamp::now(),
        register: Register::default(),
    };
    // Bounded wait for the server to listen.
    let mut created = None;
    for _ in 0..50 {
        if let Ok((n, _)) = store.create(&t, "test").await {
            created = Some(n);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let number = created.expect("a ticket over TLS");
    assert_eq!(store.get(&number).await.unwrap().call_id, "tls@test");
    // The system's roots do not know the test CA: refused.
    let untrusted = Store::connect(&s.redis.url, "hotline:").unwrap();
    assert!(untrusted.number_for_call("tls@test").await.is_err());
}
