//! The live bridge (issue 18): key 0 rings the officer on duty (SIPp as the
//! officer's phone, its media on a socket of the test's own), key 1 on the
//! whisper takes the call, and each side hears what the other says across
//! µ-law and A-law; the recording holds both; the ticket shows who was
//! connected, for how long, and the officer's 签收. Nobody taking it within
//! the ring time returns the caller to the intake's message.

use std::time::Duration;

use hotline::tickets::model::State;
use tokio::net::UdpSocket;

use crate::helpers::*;

fn speech() -> Vec<i16> {
    wav(&repo().join("tests/fixtures/speech.wav"))
}

/// What each side of a bridge says: two stretches of 3 s of speech.
fn stretches() -> (Vec<i16>, Vec<i16>) {
    let speech = speech();
    (speech[8000..32000].to_vec(), speech[40000..64000].to_vec())
}

/// Bridged: `a` says its stretch while `b` says its own, then a second of
/// silence (what was said reaches the other side whole, past the relay's
/// and the tracks' delays). How well each heard the other (the best
/// correlation of 10 ms envelopes): (`a` heard `b`, `b` heard `a`).
async fn talk(
    a: &mut Side<'_>,
    b: &mut Side<'_>,
    said: &(Vec<i16>, Vec<i16>),
    tick: &mut tokio::time::Interval,
) -> (f64, f64) {
    let (a0, b0) = (a.heard.len(), b.heard.len());
    for (x, y) in said.0.chunks_exact(160).zip(said.1.chunks_exact(160)) {
        tick.tick().await;
        a.send(x).await;
        b.send(y).await;
    }
    for _ in 0..50 {
        tick.tick().await;
        a.send(&[0; 160]).await;
        b.send(&[0; 160]).await;
    }
    (
        best_correlation(&envelope(&a.heard[a0..]), &envelope(&said.1)),
        best_correlation(&envelope(&b.heard[b0..]), &envelope(&said.0)),
    )
}

fn bridge_settings(officer_port: u16, ring_seconds: u64) -> hotline::config::Settings {
    let mut s = settings();
    s.roster.file = roster_with_officer_phones(officer_port);
    s.bridge.enabled = true;
    s.bridge.ring_seconds = ring_seconds;
    s
}

/// The duty officer's phone is SIPp `scenario` (with `extra` arguments);
/// a gateway whose callers wait `ring_seconds` for a person; a call on it
/// (`call_id`) that presses 0: (the phone, the gateway, the call, its
/// ticket).
async fn person_wanted(
    scenario: &str,
    extra: &[&str],
    ring_seconds: u64,
    call_id: &str,
) -> (
    tokio::task::JoinHandle<(bool, String)>,
    Gateway,
    TestCall,
    String,
) {
    let port = free_port();
    let phone = sipp_server_with(scenario, port, "u1", extra);
    let gw = Gateway::start(bridge_settings(port, ring_seconds)).await;
    let call = TestCall::place(gw.udp, call_id, 0).await;
    let number = ticket_of(&gw.store, call_id).await;
    call.info(1, '0').await;
    (phone, gw, call, number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_0_rings_the_officer_key_1_bridges_and_each_hears_the_other() {
    let officer_rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_port = officer_rtp.local_addr().unwrap().port().to_string();
    // Key 0 during the greeting: the officer's phone rings.
    let (phone, gw, call, number) = person_wanted(
        "uas_bridge_officer.xml",
        &["-set", "rtp", &rtp_port],
        30,
        "bridge-key0",
    )
    .await;
    let mut caller = Side::new(&call.rtp, Some(call.gw_rtp), 0);
    let mut officer = Side::new(&officer_rtp, None, 8);
    let silence = [0i16; 160];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    // Once its media comes (the whisper), key 1.
    let mut keyed = false;
    for _ in 0..500 {
        tick.tick().await;
        caller.send(&silence).await;
        officer.drain();
        if officer.to.is_some() && !keyed {
            // Let the whisper start before the key.
            keyed = officer.heard.len() >= 160 * 10;
            if keyed {
                officer.key(1).await;
            }
        }
        if keyed && timeline_has(&gw.store, &number, "bridge_connected").await {
            break;
        }
    }
    assert!(keyed, "the officer's phone got no whisper");
    assert!(
        timeline_has(&gw.store, &number, "bridge_connected").await,
        "no bridge after key 1"
    );
    // Bridged: 3 s of speech each way, each side a different stretch.
    let said = stretches();
    let (said_by_caller, said_by_officer) = (&said.0, &said.1);
    let (to_caller, to_officer) = talk(&mut caller, &mut officer, &said, &mut tick).await;
    assert!(
        to_caller > 0.9,
        "the caller heard the officer: {to_caller:.2}"
    );
    assert!(
        to_officer > 0.9,
        "the officer heard the caller: {to_officer:.2}"
    );

    // A key of either side while bridged goes on the timeline.
    call.info(2, '5').await;
    officer.key(7).await;
    let store = gw.store.clone();
    eventually(
        "both keys on the timeline",
        Duration::from_secs(10),
        || async {
            store.timeline(&number).await.is_ok_and(|tl| {
                let key = |side: &str, k: &str| {
                    tl.iter().any(|e| {
                        e.action == "bridge_key"
                            && e.actor == side
                            && e.details.contains(&format!("\"key\":\"{k}\""))
                    })
                };
                key("caller", "5") && key("officer", "7")
            })
        },
    )
    .await;

    // The ticket: opened, 签收 by the officer who took it, the connection.
    let t = gw.store.get(&number).await.unwrap();
    assert_eq!(t.state, State::Acknowledged, "{t:?}");
    let officer_id = t.register.dispatch.acknowledged_by.clone().unwrap();
    assert!(officer_id.ends_with("-officer"), "{officer_id}");
    assert_eq!(
        t.register.connections.len(),
        1,
        "{:?}",
        t.register.connections
    );
    assert_eq!(t.register.connections[0].member, officer_id);
    assert_eq!(t.register.connections[0].kind, "bridge");
    assert!(timeline_has(&gw.store, &number, "bridge_ringing").await);

    // The caller hangs up: the officer's phone gets the BYE (SIPp ends
    // well), the connection's length and end go on the ticket.
    call.hangup().await;
    let (ok, log) = phone.await.unwrap();
    assert!(ok, "sipp failed: {log}");
    let store = gw.store.clone();
    eventually(
        "the bridge's end on the ticket",
        Duration::from_secs(10),
        || async {
            store.get(&number).await.is_ok_and(|t| {
                t.register.connections[0].how.as_deref() == Some("caller_hung_up")
                    && t.register.connections[0].seconds.is_some_and(|s| s >= 3.0)
            })
        },
    )
    .await;

    // One stereo recording: the caller left, what the caller heard right
    // (the officer among it).
    let path = recording_of(&gw.store, "bridge-key0").await;
    eventually("the recording final", Duration::from_secs(10), || async {
        hotline::recording::verify::verify(&path).is_ok()
    })
    .await;
    let samples = wav(&path);
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let l = best_correlation(&envelope(&left), &envelope(said_by_caller));
    let r = best_correlation(&envelope(&right), &envelope(said_by_officer));
    assert!(l > 0.9, "the recording's caller channel: {l:.2}");
    assert!(
        r > 0.9,
        "the recording's other channel holds the officer: {r:.2}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_taking_the_call_returns_the_caller_to_the_message() {
    // The officer's phone answers but never keys: no acceptance.
    let (phone, gw, call, number) =
        person_wanted("uas_page_nokey.xml", &[], 3, "bridge-nobody").await;
    let mut caller = Side::new(&call.rtp, Some(call.gw_rtp), 0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut done = false;
    // Bounded: the ring time, then the prompt (about 9 s) and the tone.
    for _ in 0..1000 {
        tick.tick().await;
        caller.send(&[0; 160]).await;
        if timeline_has(&gw.store, &number, "intake_message_started").await {
            done = true;
            break;
        }
    }
    assert!(
        done,
        "the caller was not taken to the message: {:?}",
        gw.store.timeline(&number).await
    );
    let tl = gw.store.timeline(&number).await.unwrap();
    let at = |a: &str| tl.iter().position(|e| e.action == a);
    let (ringing, not_connected, message) = (
        at("bridge_ringing").expect("rung"),
        at("bridge_not_connected").expect("not connected"),
        at("intake_message_started").unwrap(),
    );
    assert!(ringing < not_connected && not_connected < message, "{tl:?}");
    assert!(
        tl[not_connected].details.contains("within 3 s"),
        "{}",
        tl[not_connected].details
    );
    // The caller heard that nobody could answer (the prompt's start).
    let no_person = envelope(&wav(&repo().join("config/prompts/no_person.wav"))[..8000]);
    let heard = best_correlation(&envelope(&caller.heard), &no_person);
    assert!(
        heard > 0.9,
        "the caller heard the no-person prompt: {heard:.2}"
    );
    // Nothing left ringing: the officer's call was hung up.
    let (ok, log) = phone.await.unwrap();
    assert!(ok, "sipp failed: {log}");
    assert!(gw
        .store
        .get(&number)
        .await
        .unwrap()
        .register
        .connections
        .is_empty());
    call.hangup().await;
    gw.stop().await;
}

/// The sample roster, offline (pages reach the officers' page only) and
/// without phones (the trunk is the informant's), the director reached at a
/// SIPp on `port`.
fn roster_with_director_phone(port: u16) -> std::path::PathBuf {
    let mut out = String::new();
    for l in offline(&test_roster_text()).lines() {
        if l.starts_with("phone = ") {
            continue;
        }
        out.push_str(l);
        out.push('\n');
        if l == "id = \"m-chen\"" {
            out.push_str(&format!("sip = \"sip:chen@127.0.0.1:{port}\"\n"));
        }
    }
    test_roster(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_joins_officer_and_informant_and_never_shows_the_number() {
    const NUMBER: &str = "13700000000";
    let (officer_rtp, informant_rtp) = (
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let port_of = |s: &UdpSocket| s.local_addr().unwrap().port().to_string();
    let (officer_port, trunk_port) = (free_port(), free_port());
    let officer_phone = sipp_server_with(
        "uas_bridge_officer.xml",
        officer_port,
        "u1",
        &["-set", "rtp", &port_of(&officer_rtp)],
    );
    let trunk = sipp_server_with(
        "uas_callback_informant.xml",
        trunk_port,
        "u1",
        &["-set", "rtp", &port_of(&informant_rtp)],
    );
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("callback");
    let extra = format!(
        "[trunk]\nproxy = \"127.0.0.1:{trunk_port}\"\nfrom_user = \"053212368\"\n[bridge]\nring_seconds = 20\n"
    );
    let config = write_config(
        &dir,
        &redis,
        &roster_with_director_phone(officer_port),
        &extra,
    );
    // Both sides fall silent at the end: the bridge ends by the media
    // timeout. The test's caller plays the court's trunk: its number is
    // asserted, so the court may call it back.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[media]\n", "[media]\ntimeout_seconds = 3\n")
            .replace("[sip]\n", "[sip]\ntrusted = [\"127.0.0.1\"]\n"),
    )
    .unwrap();
    let gw = Process::start_logging(&config, "debug");
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();

    // The informant's call: a lead, then the hang-up.
    let call = TestCall::place(gw.udp, "callback@t", 0).await;
    call.info(0, '1').await;
    call.hangup().await;
    let number = ticket_of(&store, "callback@t").await;

    let api = crate::helpers::Api::at(gw.http);
    let director = api.logged_in(&store, &["m-chen"]).await.remove(0);
    let mut outputs = Vec::new();
    let path = format!("/tickets/{number}/callback");
    // A reason is needed.
    let (s, b) = api
        .call(
            "POST",
            &path,
            Some(&director),
            Some(serde_json::json!({"reason": ""})),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = api
        .call(
            "POST",
            &path,
            Some(&director),
            Some(serde_json::json!({"reason": "核实被执行人位置"})),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    outputs.push(b.to_string());

    // The director's phone rings first: key 1 on the whisper; then the
    // informant's, through the trunk; each says something to the other.
    let mut officer = Side::new(&officer_rtp, None, 8);
    let mut informant = Side::new(&informant_rtp, None, 8);
    let silence = [0i16; 160];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut keyed = false;
    for _ in 0..1500 {
        tick.tick().await;
        officer.send(&silence).await;
        informant.send(&silence).await;
        if !keyed && officer.heard.len() >= 160 * 10 {
            officer.key(1).await;
            keyed = true;
        }
        if keyed && timeline_has(&store, &number, "callback_connected").await {
            break;
        }
    }
    assert!(
        timeline_has(&store, &number, "callback_connected").await,
        "not connected: {:?}\n{}",
        store.timeline(&number).await,
        gw.log.lock().unwrap()
    );
    let said = stretches();
    let (said_by_informant, said_by_officer) = (&said.0, &said.1);
    let (to_informant, to_officer) = talk(&mut informant, &mut officer, &said, &mut tick).await;
    assert!(
        to_informant > 0.9,
        "the informant heard the officer: {to_informant:.2}"
    );
    assert!(
        to_officer > 0.9,
        "the officer heard the informant: {to_officer:.2}"
    );

    // Silence from both now: the media timeout ends the bridge, both
    // phones get their BYE; the trunk saw the number in the Request-URI
    // and the hotline's in From (its scenario checks both).
    let (ok, log) = trunk.await.unwrap();
    assert!(ok, "the trunk's checks failed: {log}");
    let (ok, log) = officer_phone.await.unwrap();
    assert!(ok, "the officer's phone: {log}");
    eventually(
        "the callback's end on the ticket",
        Duration::from_secs(10),
        || async {
            store.get(&number).await.is_ok_and(|t| {
                t.register
                    .connections
                    .iter()
                    .any(|c| c.kind == "callback" && c.member == "m-chen" && c.seconds.is_some())
            })
        },
    )
    .await;
    let tl = store.timeline(&number).await.unwrap();
    let requested = tl
        .iter()
        .find(|e| e.action == "callback_requested")
        .unwrap();
    assert_eq!(requested.actor, "m-chen");
    assert!(
        requested.details.contains("核实被执行人位置"),
        "{}",
        requested.details
    );
    // Recorded and attached: the informant left, the officer among the right.
    let t = store.get(&number).await.unwrap();
    assert_eq!(
        t.register.recordings.len(),
        2,
        "{:?}",
        t.register.recordings
    );
    let rec = std::path::PathBuf::from(&t.register.recordings[1].path);
    hotline::recording::verify::verify(&rec).expect("the callback's recording verifies");
    let samples = wav(&rec);
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert!(best_correlation(&envelope(&left), &envelope(said_by_informant)) > 0.9);
    assert!(best_correlation(&envelope(&right), &envelope(said_by_officer)) > 0.9);

    // The number is nowhere the officer's side sees, nor in the log.
    let (_, one) = api
        .call("GET", &format!("/tickets/{number}"), Some(&director), None)
        .await;
    outputs.push(one.to_string());
    let log = gw.log.lock().unwrap().clone();
    assert!(
        log.contains("callback requested") && log.contains("DEBUG"),
        "{log}"
    );
    for (place, text) in [("API", outputs.join("\n")), ("log", log)] {
        assert!(!text.contains(NUMBER), "the number in clear in the {place}");
    }

    // A caller who withheld the number cannot be called back.
    let hidden = TestCall::place_as(
        gw.udp,
        "withheld@t",
        0,
        true,
        "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
    )
    .await;
    hidden.info(0, '1').await;
    hidden.hangup().await;
    let hidden_ticket = ticket_of(&store, "withheld@t").await;
    let (s, b) = api
        .call(
            "POST",
            &format!("/tickets/{hidden_ticket}/callback"),
            Some(&director),
            Some(serde_json::json!({"reason": "核实"})),
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (409, Some("withheld")), "{b}");
}

/// A roster and calendar in which now is working hours whatever the day:
/// the sample roster (offline, no phones: the trunk is the informant's)
/// with the desk on from 00:00 to the day's last millisecond, and every
/// weekend day around this year worked, with no holidays.
fn always_working_hours() -> (std::path::PathBuf, std::path::PathBuf) {
    let mut roster = String::new();
    for l in offline(&test_roster_text()).lines() {
        if l.starts_with("phone = ") {
            continue;
        }
        let l = match l {
            l if l.starts_with("start = ") => "start = \"00:00\"",
            l if l.starts_with("end = ") => "end = \"23:59:59.999\"",
            l => l,
        };
        roster.push_str(l);
        roster.push('\n');
    }
    let roster = roster.replace("members = []", "members = [\"m-desk-1\", \"m-desk-2\"]");
    let holidays = tempfile_dir("holidays");
    let this_year = jiff::Timestamp::now()
        .to_zoned_datetime(hotline::court_time::court_tz())
        .year();
    for year in [this_year - 1, this_year, this_year + 1] {
        let mut worked = Vec::new();
        let mut d = jiff::civil::date(year, 1, 1);
        while d.year() == year {
            if matches!(
                d.weekday(),
                jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
            ) {
                worked.push(format!("\"{d}\""));
            }
            d = d.tomorrow().unwrap();
        }
        std::fs::write(
            holidays.join(format!("{year}.toml")),
            format!(
                "year = {year}\nsource = \"test\"\nholidays = []\nadjusted_working_days = [{}]\n",
                worked.join(", ")
            ),
        )
        .unwrap();
    }
    (test_roster(&roster), holidays)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follow_up_call_records_the_key_and_an_opted_out_caller_is_not_called() {
    let port = free_port();
    let trunk = sipp_server("uas_follow_up.xml", port);
    let mut s = settings();
    (s.roster.file, s.roster.holidays) = always_working_hours();
    s.trunk = Some(
        toml::from_str(&format!(
            "proxy = \"127.0.0.1:{port}\"\nfrom_user = \"053212368\"\n"
        ))
        .unwrap(),
    );
    s.follow_up.enabled = true;
    s.follow_up.delay_hours = 0;
    // The test's callers come through the court's trunk: numbers asserted.
    s.sip.trusted = vec!["127.0.0.1".parse().unwrap()];
    let gw = Gateway::start(s).await;
    // One caller leaves a lead; another goes to the end and presses 9.
    let rated = TestCall::place(gw.udp, "follow-up@t", 0).await;
    rated.info(0, '1').await;
    rated.hangup().await;
    let declined = TestCall::place(gw.udp, "no-follow-up@t", 0).await;
    for (i, k) in "1*##9".chars().enumerate() {
        declined.info(i as u32, k).await;
    }
    // A third caller reaches the line from outside the trunk (127.0.0.2):
    // its number is only claimed, and never dialled.
    let claimed = TestCall::place_from(
        "127.0.0.2",
        gw.udp,
        "claimed-follow-up@t",
        "<sip:13900000000@127.0.0.2>",
        "",
        |port| format!("m=audio {port} RTP/AVP 0\r\n"),
    )
    .await;
    claimed.info(0, '1').await;
    claimed.hangup().await;
    let (a, b, c) = (
        ticket_of(&gw.store, "follow-up@t").await,
        ticket_of(&gw.store, "no-follow-up@t").await,
        ticket_of(&gw.store, "claimed-follow-up@t").await,
    );
    let store = gw.store.clone();
    eventually(
        "the key 9 on the ticket",
        Duration::from_secs(10),
        || async {
            store
                .get(&b)
                .await
                .is_ok_and(|t| t.register.intake.no_follow_up)
        },
    )
    .await;
    declined.hangup().await;
    // All closed: the follow-ups are due at once (delay 0).
    for n in [&a, &b, &c] {
        eventually("open", Duration::from_secs(10), || async {
            store.get(n).await.is_ok_and(|t| t.state == State::Open)
        })
        .await;
        let t = triaged(&store, n).await;
        let closing = hotline::tickets::actions::Closing::parse(
            vec![hotline::tickets::model::Measure::Other],
            "电话核实后办结",
        )
        .unwrap();
        let close =
            hotline::tickets::actions::close("m-chen", t.version, closing, jiff::Timestamp::now());
        store.act(n, &close).await.unwrap();
    }
    let (ok, log) = trunk.await.unwrap();
    assert!(ok, "the trunk's checks failed: {log}");
    eventually(
        "the satisfaction on the ticket",
        Duration::from_secs(20),
        || async {
            store.get(&a).await.is_ok_and(|t| {
                t.register
                    .follow_up
                    .as_ref()
                    .is_some_and(|f| f.satisfaction == Some(4) && f.outcome == "key 4")
            })
        },
    )
    .await;
    let tl = store.timeline(&a).await.unwrap();
    let entry = tl.iter().find(|e| e.action == "follow_up").unwrap();
    assert!(
        entry.details.contains("\"satisfaction\":4"),
        "{}",
        entry.details
    );
    // The follow-up call is recorded on the ticket too.
    assert_eq!(store.get(&a).await.unwrap().register.recordings.len(), 2);
    // The one who pressed 9 is not called, and the ticket says why.
    eventually("the opt-out honoured", Duration::from_secs(20), || async {
        store.timeline(&b).await.is_ok_and(|tl| {
            tl.iter()
                .any(|e| e.action == "follow_up_skipped" && e.details.contains("key 9"))
        })
    })
    .await;
    let t = store.get(&b).await.unwrap();
    assert!(t.register.follow_up.is_none(), "{:?}", t.register.follow_up);
    // Nor is the one whose number nobody vouched for (the trunk's SIPp
    // took exactly one call: the first caller's).
    eventually(
        "the unverified number skipped",
        Duration::from_secs(20),
        || async {
            store.timeline(&c).await.is_ok_and(|tl| {
                tl.iter()
                    .any(|e| e.action == "follow_up_skipped" && e.details.contains("unverified"))
            })
        },
    )
    .await;
    assert!(store.get(&c).await.unwrap().register.follow_up.is_none());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_while_the_officer_is_rung_leaves_nothing_ringing() {
    let (phone, gw, call, number) =
        person_wanted("uas_ring_cancel.xml", &[], 30, "bridge-gone").await;
    let store = gw.store.clone();
    eventually("the officer rung", Duration::from_secs(10), || async {
        timeline_has(&store, &number, "bridge_ringing").await
    })
    .await;
    call.hangup().await;
    // The ringing phone is cancelled (SIPp checks the CANCEL and ACK).
    let (ok, log) = phone.await.unwrap();
    assert!(ok, "the officer's phone: {log}");
    eventually("the ticket says so", Duration::from_secs(10), || async {
        store.timeline(&number).await.is_ok_and(|tl| {
            tl.iter().any(|e| {
                e.action == "bridge_not_connected" && e.details.contains("the caller hung up")
            }) && tl.iter().any(|e| e.action == "recording")
        })
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_informant_line_ends_the_callback_with_a_clear_state() {
    let officer_rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_port = officer_rtp.local_addr().unwrap().port().to_string();
    let (officer_port, trunk_port) = (free_port(), free_port());
    let officer_phone = sipp_server_with(
        "uas_bridge_officer.xml",
        officer_port,
        "u1",
        &["-set", "rtp", &rtp_port],
    );
    let trunk = sipp_server("uas_page_busy.xml", trunk_port);
    let mut s = settings();
    s.roster.file = roster_with_director_phone(officer_port);
    s.trunk = Some(
        toml::from_str(&format!(
            "proxy = \"127.0.0.1:{trunk_port}\"\nfrom_user = \"053212368\"\n"
        ))
        .unwrap(),
    );
    // The test's caller comes through the court's trunk: number asserted.
    s.sip.trusted = vec!["127.0.0.1".parse().unwrap()];
    let gw = Gateway::start(s).await;
    let call = TestCall::place(gw.udp, "busy-callback@t", 0).await;
    call.info(0, '1').await;
    call.hangup().await;
    let number = ticket_of(&gw.store, "busy-callback@t").await;
    let store = gw.store.clone();
    eventually("open", Duration::from_secs(10), || async {
        store
            .get(&number)
            .await
            .is_ok_and(|t| t.state == State::Open)
    })
    .await;
    let api = crate::helpers::Api::at(gw.http);
    let director = api.logged_in(&store, &["m-chen"]).await.remove(0);
    let (s, b) = api
        .call(
            "POST",
            &format!("/tickets/{number}/callback"),
            Some(&director),
            Some(serde_json::json!({"reason": "核实"})),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    // The director takes it (key 1); the trunk answers 486.
    let mut officer = Side::new(&officer_rtp, None, 8);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut keyed = false;
    for _ in 0..1000 {
        tick.tick().await;
        officer.send(&[0; 160]).await;
        if !keyed && officer.heard.len() >= 1600 {
            officer.key(1).await;
            keyed = true;
        }
        if timeline_has(&store, &number, "callback_not_connected").await {
            break;
        }
    }
    let tl = store.timeline(&number).await.unwrap();
    let e = tl
        .iter()
        .find(|e| e.action == "callback_not_connected")
        .expect("the callback's failure on the ticket");
    assert!(e.details.contains("answered 486"), "{}", e.details);
    assert!(!e.details.contains("13700000000"), "{}", e.details);
    // Nothing left up: the officer's call is hung up too.
    let (ok, log) = trunk.await.unwrap();
    assert!(ok, "the trunk: {log}");
    let (ok, log) = officer_phone.await.unwrap();
    assert!(ok, "the officer's phone got its BYE: {log}");
    assert!(store
        .get(&number)
        .await
        .unwrap()
        .register
        .connections
        .is_empty());
    gw.stop().await;
}

/// The final answer `code` to a request the test received.
fn answer_to(request: &str, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for l in request.lines() {
        let name = l
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "from" | "call-id" | "cseq" => out.push_str(&format!("{l}\r\n")),
            "to" => out.push_str(&format!("{l};tag=trunk\r\n")),
            _ => {}
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// Rules of who is called back (issue 30): a number only the caller's
/// INVITE claimed is shown unverified and never dialled; one the court's
/// trunk asserted is dialled where the dial plan allows (an international
/// prefix once listed), and an emergency number never is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_asserted_number_the_dial_plan_allows_is_called_back() {
    let officer_rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let officer_port = free_port();
    let officer_phone = sipp_server_with(
        "uas_bridge_officer.xml",
        officer_port,
        "u1",
        &[
            "-set",
            "rtp",
            &officer_rtp.local_addr().unwrap().port().to_string(),
        ],
    );
    // The trunk: a socket of the test's own, to see every INVITE it gets.
    let trunk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut s = settings();
    s.roster.file = roster_with_director_phone(officer_port);
    s.trunk = Some(
        toml::from_str(&format!(
            "proxy = \"{}\"\nfrom_user = \"053212368\"\nallow = [\"1[3-9]XXXXXXXXX\", \"00882.\"]\n",
            trunk.local_addr().unwrap()
        ))
        .unwrap(),
    );
    // The court's trunk reaches the line from 127.0.0.5; anyone else (the
    // test's callers at 127.0.0.1) only claims a number.
    s.sip.trusted = vec!["127.0.0.5".parse().unwrap()];
    let gw = Gateway::start(s).await;
    let store = gw.store.clone();
    let sdp = |port: u16| format!("m=audio {port} RTP/AVP 0\r\n");
    let lead = |ip: &'static str, call_id: &'static str, from: &'static str, pai: &'static str| {
        let gw = gw.udp;
        let store = store.clone();
        async move {
            let headers = if pai.is_empty() {
                String::new()
            } else {
                format!("P-Asserted-Identity: {pai}\r\n")
            };
            let call = TestCall::place_from(ip, gw, call_id, from, &headers, sdp).await;
            call.info(0, '1').await;
            call.hangup().await;
            let number = ticket_of(&store, call_id).await;
            eventually("open", Duration::from_secs(10), || async {
                store
                    .get(&number)
                    .await
                    .is_ok_and(|t| t.state == State::Open)
            })
            .await;
            number
        }
    };
    let api = crate::helpers::Api::at(gw.http);
    let director = api.logged_in(&store, &["m-chen"]).await.remove(0);
    let callback = |n: String| {
        let (api, director) = (&api, &director);
        async move {
            api.call(
                "POST",
                &format!("/tickets/{n}/callback"),
                Some(director),
                Some(serde_json::json!({"reason": "核实被执行人位置"})),
            )
            .await
        }
    };

    // An untrusted caller claiming a satellite number (and asserting it
    // too: nobody vouches for a stranger's P-Asserted-Identity).
    let claimed = lead(
        "127.0.0.1",
        "claimed@t",
        "<sip:+8821234567890@127.0.0.1>",
        "<tel:+8821234567890>",
    )
    .await;
    let (_, view) = api
        .call("GET", &format!("/tickets/{claimed}"), Some(&director), None)
        .await;
    assert_eq!(view["ticket"]["caller"]["provenance"], "claimed", "{view}");
    let (s, b) = callback(claimed.clone()).await;
    assert_eq!((s, b["error"].as_str()), (409, Some("unverified")), "{b}");

    // The same number asserted by the court's trunk: dialled (listed).
    let asserted = lead(
        "127.0.0.5",
        "asserted@t",
        "<sip:053212368@127.0.0.5>",
        "<tel:+8821234567890>",
    )
    .await;
    let (_, view) = api
        .call(
            "GET",
            &format!("/tickets/{asserted}"),
            Some(&director),
            None,
        )
        .await;
    assert_eq!(view["ticket"]["caller"]["provenance"], "asserted", "{view}");
    let (s, b) = callback(asserted.clone()).await;
    assert_eq!(s, 202, "{b}");
    // The director takes it (key 1); then the trunk gets the INVITE.
    let mut officer = Side::new(&officer_rtp, None, 8);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut keyed = false;
    let mut buf = vec![0u8; 65536];
    let mut invite = None;
    for _ in 0..1000 {
        tick.tick().await;
        officer.send(&[0; 160]).await;
        if !keyed && officer.heard.len() >= 1600 {
            officer.key(1).await;
            keyed = true;
        }
        if let Ok((n, from)) = trunk.try_recv_from(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).to_string();
            if m.starts_with("INVITE ") {
                invite = Some((m, from));
                break;
            }
        }
    }
    let (invite, from) = invite.expect("the callback's INVITE reached the trunk");
    assert!(
        invite.starts_with("INVITE sip:008821234567890@127.0.0.1 SIP/2.0\r\n"),
        "{invite}"
    );
    trunk
        .send_to(answer_to(&invite, 486, "Busy Here").as_bytes(), from)
        .await
        .unwrap();
    eventually(
        "the busy line on the ticket",
        Duration::from_secs(10),
        || async { timeline_has(&store, &asserted, "callback_not_connected").await },
    )
    .await;
    let (ok, log) = officer_phone.await.unwrap();
    assert!(ok, "the officer's phone: {log}");
    // What the trunk got since were copies of that INVITE and our ACK.
    while let Ok((n, _)) = trunk.try_recv_from(&mut buf) {
        let m = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            m.starts_with("INVITE sip:0088") || m.starts_with("ACK "),
            "{m}"
        );
    }

    // An emergency number, asserted: the dial plan refuses it before
    // anyone is rung, and the ticket names the rule (never the number).
    let emergency = lead("127.0.0.5", "emergency@t", "<sip:110@127.0.0.5>", "").await;
    let (s, b) = callback(emergency.clone()).await;
    assert_eq!(s, 202, "{b}");
    eventually(
        "the refusal on the ticket",
        Duration::from_secs(10),
        || async {
            store.timeline(&emergency).await.is_ok_and(|tl| {
                tl.iter().any(|e| {
                    e.action == "callback_not_connected"
                        && e.details.contains("the dial plan refuses it")
                        && e.details.contains("1[0-2].")
                })
            })
        },
    )
    .await;
    assert!(
        trunk.try_recv_from(&mut buf).is_err(),
        "nothing reached the trunk for the emergency number"
    );
    gw.stop().await;
}

/// Issue 30: only the roles that may reveal a caller have an informant
/// called back, and only so often a court day per ticket and per member;
/// checked before anything else (tickets without a number: what passes the
/// checks is then refused as withheld, nothing is dialled), each refusal on
/// the ticket's timeline with who and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_needs_a_reveal_role_and_stays_within_the_days_limits() {
    use hotline::tickets::model::Register;
    use hotline::tickets::store::NewTicket;
    let mut s = settings();
    s.api.callbacks_per_ticket_per_day = 2;
    s.api.callbacks_per_member_per_day = 3;
    let gw = Gateway::start(s).await;
    let store = gw.store.clone();
    let mut tickets = Vec::new();
    for i in 0..2 {
        let t = NewTicket {
            call_id: format!("rights-{i}@t"),
            call: String::new(),
            received_at: jiff::Timestamp::now(),
            register: Register::default(),
        };
        tickets.push(store.create(&t, "test").await.unwrap().0);
    }
    let (t0, t1) = (&tickets[0], &tickets[1]);
    // u1-officer's unit was paged with the first ticket: they see it.
    store
        .add_to_indexes(t0, &["member:u1-officer".to_string()])
        .await
        .unwrap();
    let api = crate::helpers::Api::new(&gw);
    let members = ["u1-officer", "m-lin", "m-chen", "m-guo", "u2-officer"];
    let tokens = api.logged_in(&store, &members).await;
    let token = |m: &str| tokens[members.iter().position(|x| *x == m).unwrap()].as_str();
    let callback = |n: &str, m: &str| {
        let (api, path, token) = (&api, format!("/tickets/{n}/callback"), token(m));
        async move {
            let body = serde_json::json!({"reason": "核实被执行人位置"});
            let (s, b) = api.call("POST", &path, Some(token), Some(body)).await;
            (s, b["error"].as_str().unwrap_or_default().to_string())
        }
    };
    let refusals = |n: String| {
        let store = store.clone();
        async move {
            store
                .timeline(&n)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == "callback_refused")
                .map(|e| {
                    let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
                    (e.actor, d["why"].as_str().unwrap().to_string())
                })
                .collect::<Vec<_>>()
        }
    };
    let refused = |m: &str, why: &str| (m.to_string(), why.to_string());

    // Not the ticket's officer's to ask: 404, as for any ticket not theirs,
    // and nothing on its timeline.
    assert_eq!(callback(t0, "u2-officer").await, (404, "not_found".into()));
    // Seeing the ticket is not enough: the officer, and a deputy (who sees
    // every ticket but may not reveal), get 403, each on the timeline.
    assert_eq!(callback(t0, "u1-officer").await, (403, "forbidden".into()));
    assert_eq!(callback(t0, "m-lin").await, (403, "forbidden".into()));
    assert_eq!(
        refusals(t0.clone()).await,
        [refused("u1-officer", "role"), refused("m-lin", "role")]
    );

    // The director, twice on the first ticket: past the checks (then
    // withheld); a third time is over the ticket's day, for anyone.
    for _ in 0..2 {
        assert_eq!(callback(t0, "m-chen").await, (409, "withheld".into()));
    }
    assert_eq!(
        callback(t0, "m-chen").await,
        (429, "too_many_callbacks".into())
    );
    assert_eq!(
        callback(t0, "m-guo").await,
        (429, "too_many_callbacks".into())
    );
    assert_eq!(
        refusals(t0.clone()).await[2..],
        [
            refused("m-chen", "ticket_rate"),
            refused("m-guo", "ticket_rate")
        ]
    );
    // The director's third of the day on the other ticket passes, the
    // fourth is over the member's day; the chief commander, whose refusal
    // above was not counted, still gets through.
    assert_eq!(callback(t1, "m-chen").await, (409, "withheld".into()));
    assert_eq!(
        callback(t1, "m-chen").await,
        (429, "too_many_callbacks".into())
    );
    assert_eq!(callback(t1, "m-guo").await, (409, "withheld".into()));
    assert_eq!(
        refusals(t1.clone()).await,
        [refused("m-chen", "member_rate")]
    );
    // Nothing was dialled: no connection on either ticket.
    for n in [t0, t1] {
        let t = store.get(n).await.unwrap();
        assert!(t.register.connections.is_empty(), "{n}");
    }
    gw.stop().await;
}

/// Issue 30: a caller pressing 0 again and again held a bridge slot each
/// time. Nobody on duty can be called here (the offline roster), so each
/// ask ends at once with "not connected": the first 0 and one more ring,
/// the third takes the caller on into the message, with no third ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_asks_for_a_person_twice_at_most_then_leaves_the_message() {
    let mut s = settings();
    s.bridge.enabled = true;
    let gw = Gateway::start(s).await;
    let call = TestCall::place(gw.udp, "asks@t", 0).await;
    let number = ticket_of(&gw.store, "asks@t").await;
    let count = |action: &'static str| {
        let (store, number) = (gw.store.clone(), number.clone());
        async move {
            store
                .timeline(&number)
                .await
                .map_or(0, |tl| tl.iter().filter(|e| e.action == action).count())
        }
    };
    for n in 1..=2 {
        call.info(n, '0').await;
        eventually(
            "the ask answered: nobody",
            Duration::from_secs(10),
            || async { count("bridge_not_connected").await == n as usize },
        )
        .await;
    }
    // The third 0, during the "nobody could answer" prompt: the message.
    call.info(3, '0').await;
    eventually("the message started", Duration::from_secs(10), || async {
        count("intake_message_started").await == 1
    })
    .await;
    let tl = gw.store.timeline(&number).await.unwrap();
    let actions: Vec<&str> = tl
        .iter()
        .map(|e| e.action.as_str())
        .filter(|a| a.starts_with("bridge_") || a.starts_with("intake_message"))
        .collect();
    assert_eq!(
        actions,
        [
            "bridge_not_connected",
            "bridge_not_connected",
            "intake_message_started"
        ],
        "{tl:?}"
    );
    call.hangup().await;
    gw.stop().await;
}
