//! A reported call through the API: its events, recording and the caller
//! revealed; the caller's number and name found only sealed, and in the
//! reveal.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_call_through_the_api_events_recording_and_reveal() {
    let gw = Gateway::start(settings()).await;
    let api = Api::new(&gw);
    let call = crate::helpers::TestCall::place(gw.udp, "api-call@t", 0).await;
    call.info(0, '1').await; // a lead
    call.hangup().await;
    let store = gw.store.clone();
    let number = ticket_of(&store, "api-call@t").await;
    let n2 = number.clone();
    eventually(
        "paged with its recording linked",
        Duration::from_secs(15),
        || async {
            let tl = store.timeline(&n2).await.unwrap();
            tl.iter()
                .any(|e| e.action == "page" && e.details.contains("-officer"))
                && tl.iter().any(|e| e.action == "recording")
        },
    )
    .await;
    let officer = paged_officer(&gw.store, &number).await;
    set_pin(&gw, &officer, "112233").await;
    set_pin(&gw, "m-chen", "112233").await;
    let me = api.login(&officer, "112233").await;
    let director = api.login("m-chen", "112233").await;

    // The page, live from the events stream (from its start).
    let resp = http_client()
        .get(format!("{}/events", api.base))
        .bearer_auth(&me)
        .header("Last-Event-ID", "0-0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut resp = resp;
    let seen = read_events_until(&mut resp, "event: page").await;
    assert!(seen.contains(&number), "{seen}");
    // Confidentiality: the caller's number is in clear nowhere the officers'
    // side or Redis can show it (events, metrics, any key).
    let metrics = http_client()
        .get(format!("http://{}/metrics", gw.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dump = redis_dump(&gw.store).await;
    for (place, text) in [("events", &seen), ("metrics", &metrics), ("redis", &dump)] {
        assert!(!text.contains("13700000000"), "caller in clear in {place}");
    }

    // The caller: masked for the officer, in clear only through reveal.
    let (s, one) = api
        .call("GET", &format!("/tickets/{number}"), Some(&me), None)
        .await;
    assert_eq!(s, 200);
    let text = one.to_string();
    assert!(
        !text.contains("13700000000") && text.contains("*******0000"),
        "{text}"
    );
    let (s, b) = api
        .act(&number, "reveal-caller", &me, json!({"reason": "核实线索"}))
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = api
        .act(
            &number,
            "reveal-caller",
            &director,
            json!({"reason": "核实线索来源"}),
        )
        .await;
    assert_eq!((s, b["number"].as_str()), (200, Some("13700000000")), "{b}");

    // The recording, by range; the download is on the timeline.
    let r = http_client()
        .get(format!("{}/tickets/{number}/recording", api.base))
        .bearer_auth(&me)
        .header("Range", "bytes=0-11")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert!(r.headers()["content-range"]
        .to_str()
        .unwrap()
        .starts_with("bytes 0-11/"));
    let body = r.bytes().await.unwrap();
    assert_eq!(&body[..4], b"RIFF");
    assert_eq!(&body[8..12], b"WAVE");
    // A range in the middle and the whole file: the file's own bytes
    // (streamed from it; issue 30).
    let path = gw.store.get(&number).await.unwrap().register.recordings[0]
        .path
        .clone();
    let file = std::fs::read(&path).unwrap();
    assert!(file.len() > 2000, "{}", file.len());
    let get = |range: Option<&'static str>| {
        let mut r = http_client()
            .get(format!("{}/tickets/{number}/recording", api.base))
            .bearer_auth(&me);
        if let Some(range) = range {
            r = r.header("Range", range);
        }
        r.send()
    };
    let r = get(Some("bytes=100-1999")).await.unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.headers()["content-length"], "1900");
    assert_eq!(&r.bytes().await.unwrap()[..], &file[100..2000]);
    let r = get(None).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap(), file);
    let tl = gw.store.timeline(&number).await.unwrap();
    assert!(tl
        .iter()
        .any(|e| e.action == "recording_download" && e.actor == officer));
    assert!(tl
        .iter()
        .any(|e| e.action == "reveal_caller" && e.actor == "m-chen"));

    // Who is on duty.
    let (s, now) = api.call("GET", "/roster/now", Some(&me), None).await;
    assert_eq!(s, 200, "{now}");
    assert!(now["unit"]["id"].as_str().is_some(), "{now}");
    gw.stop().await;
}

/// Rule 第二十条(三): a caller with a number and a name found nowhere else
/// goes through intake, paging (SIP MESSAGE, webhook, events) and the API;
/// the gateway's log (at debug), every file it wrote but the WAV, the whole
/// Redis, the page and webhook bodies, the event stream and every API
/// response hold neither in clear. Redis holds them sealed; the reveal
/// response is the one place they are in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_is_found_only_sealed_and_in_the_reveal() {
    const NUMBER: &str = "13912345678";
    const NAME: &str = "王举报";
    let (phone_addr, _, messages) = crate::helpers::phone().await;
    let (hook, hooks) = webhook(FirstPages::Taken).await;
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("secret");
    let extra = format!(
        "[paging.webhooks.hook]\nurl = \"http://{hook}/hook\"\nformat = \"wecom\"\n\
[paging.policies.violence]\nsteps = [\n\
  {{ after_seconds = 0, targets = [\"duty_unit\", \"court_police\", \"director\"], repeat_seconds = 60, until = \"acknowledged\" }},\n]\n"
    );
    let config = write_config(
        &dir,
        &redis,
        &crate::helpers::roster_with_hook(phone_addr),
        &extra,
    );
    let gw = Process::start_logging(&config, "debug");
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();
    let call = crate::helpers::TestCall::place_as(
        gw.udp,
        "secret@t",
        0,
        true,
        &format!("\"{NAME}\" <sip:{NUMBER}@127.0.0.1>"),
    )
    .await;
    call.info(0, '2').await; // violent resistance: opened and paged at once
    call.hangup().await;
    let number = ticket_of(&store, "secret@t").await;
    eventually(
        "paged by SIP MESSAGE and webhook",
        Duration::from_secs(15),
        || async { !messages.lock().unwrap().is_empty() && !hooks.lock().unwrap().is_empty() },
    )
    .await;

    // Every API response an officer and the director can get.
    let api = Api {
        base: format!("http://{}/api/v1", gw.http),
        http: http_client(),
    };
    for m in ["u1-officer", "m-chen"] {
        hotline::api::auth::set_pin(&store, m, "112233")
            .await
            .unwrap();
    }
    let officer = api.login("u1-officer", "112233").await;
    let director = api.login("m-chen", "112233").await;
    let mut responses = Vec::new();
    let t = |p: &str| format!("/tickets/{number}{p}");
    for (method, path, body) in [
        ("GET", "/tickets".to_string(), None),
        ("GET", "/tickets?mine=true".to_string(), None),
        ("GET", t(""), None),
        ("GET", "/roster/now".to_string(), None),
        ("POST", t("/notes"), Some(json!({"text": "核实中"}))),
        ("POST", t("/acknowledge"), Some(json!({"version": 0}))),
    ] {
        for token in [&officer, &director] {
            let (_, b) = api.call(method, &path, Some(token), body.clone()).await;
            responses.push(format!("{method} {path}: {b}"));
        }
    }
    for path in ["/metrics", "/healthz", "/openapi.json", "/"] {
        let r = http_client()
            .get(format!("http://{}{path}", gw.http))
            .send()
            .await
            .unwrap();
        responses.push(format!("GET {path}: {}", r.text().await.unwrap()));
    }
    // The director's event stream, from its start, up to the ticket's page.
    let mut sse = http_client()
        .get(format!("{}/events", api.base))
        .bearer_auth(&director)
        .header("Last-Event-ID", "0-0")
        .send()
        .await
        .unwrap();
    let events = read_events_until(&mut sse, "event: page").await;
    // The reveal: the one response with the caller in clear.
    let (s, revealed) = api
        .call(
            "POST",
            &t("/reveal-caller"),
            Some(&director),
            Some(json!({"reason": "核实线索来源"})),
        )
        .await;
    assert_eq!(s, 200, "{revealed}");
    assert_eq!(revealed["number"], NUMBER, "{revealed}");
    assert_eq!(revealed["display_name"], NAME, "{revealed}");
    // The log is read once it has the reveal in it (it is written as it
    // happens, so everything before is in).
    eventually("the reveal logged", Duration::from_secs(10), || async {
        gw.log.lock().unwrap().contains("caller revealed")
    })
    .await;

    let log = gw.log.lock().unwrap().clone();
    assert!(log.contains(&number) && log.contains("DEBUG"), "{log}");
    let mut places: Vec<(String, String)> = vec![
        ("log".into(), log),
        ("redis".into(), redis_dump(&store).await),
        ("events".into(), events),
    ];
    places.extend(
        messages
            .lock()
            .unwrap()
            .iter()
            .map(|b| ("sip page".into(), b.clone())),
    );
    places.extend(
        hooks
            .lock()
            .unwrap()
            .iter()
            .map(|b| ("webhook".into(), b.clone())),
    );
    places.extend(responses.into_iter().map(|r| ("api".into(), r)));
    // Every file the gateway wrote (journal, manifests, key) but the audio.
    let mut files = vec![dir.clone()];
    while let Some(d) = files.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files.push(p);
            } else if p.is_file() && p.extension().is_none_or(|x| x != "wav") {
                // (Files, not the admin socket.)
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                places.push((p.display().to_string(), text));
            }
        }
    }
    for (place, text) in &places {
        assert!(
            !text.contains(NUMBER) && !text.contains(NAME),
            "the caller in clear in {place}: {text}"
        );
    }
    // What Redis holds is the caller sealed with the configured key.
    let key = hotline::privacy::CallerKey::load(None, &redis.key_file()).unwrap();
    let ticket = store.get(&number).await.unwrap();
    let sealed = ticket.register.caller.number.clone().unwrap();
    assert!(hotline::privacy::is_sealed(&sealed), "{sealed}");
    assert_eq!(key.open(&sealed).as_deref(), Some(NUMBER));
    assert!(places
        .iter()
        .any(|(p, t)| p == "redis" && t.contains(&sealed)));
    // The pages did go out, masked.
    let pages = messages.lock().unwrap().concat() + &hooks.lock().unwrap().concat();
    assert!(pages.contains(&number), "{pages}");
    drop(gw);
}
