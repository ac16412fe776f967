//! One-tap 签收 from a text page (issue 33, item 4): the link a WeCom page
//! carries, opened once in Chromium and refused after (used, expired,
//! forged: the PIN form, nobody signed in); the session it opens refused
//! on anything but its ticket's view and steps; a reply `1 <ticket>` to a
//! MESSAGE page from the member's PBX acknowledging and answered, and the
//! same from an unknown address or with a wrong code changing nothing.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hotline::api::auth::{self, PageLink};
use hotline::tickets::model::State;
use serde_json::json;
use tokio::net::UdpSocket;

use crate::helpers::*;

const OFFICER: &str = "u1-officer";
const PIN: &str = "246810";
const PUBLIC: &str = "https://hotline.court.example";

/// The test roster with unit 1 on duty at every hour and no contact but
/// the page's events, and the unit's officer's `extra` line (a webhook, a
/// MESSAGE URI).
fn roster(extra: &str) -> std::path::PathBuf {
    let text = offline(&test_roster_text()).replace(
        r#"units = ["unit-1", "unit-2", "unit-3", "unit-4", "unit-5"]"#,
        r#"units = ["unit-1"]"#,
    );
    let text = text.replace(
        "id = \"u1-officer\"\n",
        &format!("id = \"u1-officer\"\n{extra}\n"),
    );
    assert!(text.contains(extra), "the officer's entry changed");
    test_roster(&text)
}

/// The token of a page's link, and the link as the gateway's own origin
/// serves it (the configured public origin is nginx's in a court).
fn link_of(page: &str) -> (String, String) {
    let at = page.find(PUBLIC).expect("the page carries a link");
    let url: String = page[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    let token = url.split("&link=").nth(1).unwrap().to_string();
    (url, token)
}

/// Runs `tests/browser/link.mjs` on `link` (and the links it must refuse);
/// what it said on stdout.
async fn chromium(link: &str, refused: &[String], shots: &std::path::Path) -> String {
    let dir = repo().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: npm ci --prefix tests/browser (scripts/test.sh does it)"
    );
    let out = tokio::time::timeout(
        Duration::from_secs(150),
        tokio::process::Command::new("node")
            .arg(dir.join("link.mjs"))
            .args(["--link", link, "--refused", &refused.join(",")])
            .args([
                "--member",
                OFFICER,
                "--pin",
                PIN,
                "--step-timeout-ms",
                "30000",
            ])
            .arg("--shots")
            .arg(shots)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the link script ends within 150 s")
    .expect("node runs (Debian's nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "link.mjs failed:\n{}\nstdout:\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A WeCom page's link, opened in Chromium: the ticket, signed in for it,
/// 签收 in one tap (`via: link` on the timeline); the same link again, an
/// expired one and a forged one show the PIN form and sign nobody in; the
/// PIN then shows that ticket, acknowledged once. The token is in Redis
/// only as its hash, and gone once used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_in_a_wecom_page_signs_in_once_for_its_ticket_and_never_again() {
    let _one = CHROMIUM.lock().await;
    let (hook, posts) = webhook(FirstPages::Taken).await;
    let mut s = settings();
    s.roster.file = roster("webhook = \"hook\"");
    s.paging.webhooks = toml::from_str(&format!(
        "[hook]\nurl = \"http://{hook}/hook\"\nformat = \"wecom\"\n"
    ))
    .unwrap();
    s.http.public_url = Some(PUBLIC.into());
    let gw = Gateway::start(s).await;
    auth::set_pin(&gw.store, OFFICER, PIN).await.unwrap();
    let number = open_tickets(&gw.store, 1, "link").await.remove(0);
    let body = post_naming(&posts, &number, "the WeCom page").await;
    // WeCom's robot format: the text with the link, no caller.
    assert_eq!(body["msgtype"], "text");
    let content = body["text"]["content"].as_str().unwrap();
    assert!(content.contains("一键签收"), "{content}");
    assert!(
        !content.contains("回复「1"),
        "a webhook names no reply: {content}"
    );
    let (url, token) = link_of(content);
    assert!(
        url.starts_with(&format!("{PUBLIC}/#ticket={number}&link=")),
        "{url}"
    );
    assert_eq!(token.len(), 43, "256 random bits: {token}");
    // Only the token's hash is kept; the event the mobile page gets has no
    // link.
    let mut c = gw.store.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(keys.iter().all(|k| !k.contains(&token)), "{keys:?}");
    let dump: String = redis::cmd("XRANGE")
        .arg("hotline:events")
        .arg("-")
        .arg("+")
        .query_async::<redis::Value>(&mut c)
        .await
        .map(|v| format!("{v:?}"))
        .unwrap();
    assert!(!dump.contains(&token), "the token is in the events stream");
    let links: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("hotline:link:"))
        .cloned()
        .collect();
    assert!(!links.is_empty(), "{keys:?}");

    // An expired link for the same ticket, written through the store, and
    // a forged one.
    let expired = "expired-token-expired-token-expired-token-xx";
    auth::keep_link(
        &gw.store,
        expired,
        &PageLink {
            member: OFFICER.into(),
            ticket: number.clone(),
            expires_ms: jiff::Timestamp::now().as_millisecond() - 1,
        },
    )
    .await
    .unwrap();
    let local = |t: &str| format!("http://{}/#ticket={number}&link={t}", gw.http);
    let shots = repo().join("target/link-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let said = chromium(
        &local(&token),
        &[
            local(&token),
            local(expired),
            local("forged0forged0forged0forged0forged0forged0f"),
        ],
        &shots,
    )
    .await;
    for line in [
        format!("ACKED {number}"),
        "REFUSED 0".into(),
        "REFUSED 1".into(),
        "REFUSED 2".into(),
        format!("SHOWN {number}"),
    ] {
        assert!(said.lines().any(|l| l == line), "no {line:?}:\n{said}");
    }

    // Redis: acknowledged once, by the officer, through the link.
    let t = gw.store.get(&number).await.unwrap();
    assert_eq!(t.state, State::Acknowledged);
    assert_eq!(
        t.register.dispatch.acknowledged_by.as_deref(),
        Some(OFFICER)
    );
    let acks: Vec<_> = gw
        .store
        .timeline(&number)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "acknowledge")
        .collect();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0].actor, OFFICER);
    let details: serde_json::Value = serde_json::from_str(&acks[0].details).unwrap();
    assert_eq!(details["via"], "link", "{details}");
    // The links are spent: none of them is kept any more.
    for k in &links {
        let left: bool = redis::cmd("EXISTS")
            .arg(k)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(!left, "{k} is still there");
    }
    gw.stop().await;
}

/// The session a link opens: its ticket's view and steps, nothing else
/// (403 `link_scope`, naming the ticket); 签收 through it is `via: link`;
/// the link opens once; an expired, forged or revoked link opens nothing
/// (401 `link_unusable`, one answer for all); logging out ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_links_session_is_for_its_ticket_alone() {
    let mut s = settings();
    s.roster.file = roster("");
    let gw = Gateway::start(s).await;
    let api = Api::new(&gw);
    let numbers = open_tickets(&gw.store, 2, "scope").await;
    let (a, b) = (&numbers[0], &numbers[1]);
    // The gateway's first look (the triage) changes the ticket: the
    // version read below is the one after it.
    eventually("A triaged", Duration::from_secs(10), || {
        timeline_has(&gw.store, a, "triaged")
    })
    .await;
    // The director sees every ticket: only the scope keeps B from them.
    let life = Duration::from_secs(1800);
    let now = jiff::Timestamp::now();
    let link = auth::issue_link(&gw.store, "m-chen", a, life, now)
        .await
        .unwrap();
    let open = |t: String| {
        let api = &api;
        async move {
            api.call("POST", "/link", None, Some(json!({"token": t})))
                .await
        }
    };
    let (code, body) = open(link.clone()).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (body["member"].as_str(), body["ticket"].as_str()),
        (Some("m-chen"), Some(a.as_str()))
    );
    assert_eq!(body["expires_in"], 1800);
    let scoped = body["token"].as_str().unwrap().to_string();
    let token = Some(scoped.as_str());
    // Its ticket: viewed.
    let (code, view) = api.call("GET", &format!("/tickets/{a}"), token, None).await;
    assert_eq!(code, 200, "{view}");
    let version = view["ticket"]["version"].as_u64().unwrap();
    // Anything else: 403 naming the ticket.
    for (method, path, body) in [
        ("GET", format!("/tickets/{b}"), None),
        (
            "POST",
            format!("/tickets/{b}/acknowledge"),
            Some(json!({"version": 1})),
        ),
        ("GET", "/tickets".to_string(), None),
        (
            "POST",
            format!("/tickets/{a}/notes"),
            Some(json!({"text": "看到了"})),
        ),
        (
            "POST",
            format!("/tickets/{a}/reveal-caller"),
            Some(json!({"reason": "核实身份"})),
        ),
        (
            "POST",
            format!("/tickets/{a}/close"),
            Some(json!({"version": version, "measures": ["none_found"], "result": "x"})),
        ),
        ("GET", format!("/tickets/{a}/recording"), None),
        ("GET", "/roster/now".to_string(), None),
        ("GET", "/board".to_string(), None),
    ] {
        let (code, err) = api.call(method, &path, token, body).await;
        assert_eq!(code, 403, "{method} {path}: {err}");
        assert_eq!(err["error"], "link_scope", "{method} {path}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains(a.as_str()),
            "{err}"
        );
    }
    // Its 签收: on the timeline as the director's, via the link.
    let (code, after) = api
        .call(
            "POST",
            &format!("/tickets/{a}/acknowledge"),
            token,
            Some(json!({"version": version})),
        )
        .await;
    assert_eq!(code, 200, "{after}");
    assert_eq!(after["state"], "acknowledged");
    let tl = gw.store.timeline(a).await.unwrap();
    let ack = tl.iter().find(|e| e.action == "acknowledge").unwrap();
    assert_eq!(ack.actor, "m-chen");
    assert!(ack.details.contains("\"via\":\"link\""), "{}", ack.details);
    assert_eq!(gw.store.get(b).await.unwrap().state, State::Open);

    // Opened once: the second open, an expired link, a forged one, a
    // revoked one: one 401, the same words.
    let expired = "expired-token-expired-token-expired-token-xx".to_string();
    auth::keep_link(
        &gw.store,
        &expired,
        &PageLink {
            member: "m-chen".into(),
            ticket: b.clone(),
            expires_ms: now.as_millisecond() - 1,
        },
    )
    .await
    .unwrap();
    let revoked = auth::issue_link(&gw.store, "m-lin", b, life, now)
        .await
        .unwrap();
    auth::revoke(&gw.store, "m-lin").await.unwrap();
    let mut words = Vec::new();
    for t in [
        link,
        expired,
        "forged".repeat(8),
        revoked,
        "x".repeat(10_000),
    ] {
        let (code, err) = open(t).await;
        assert_eq!(code, 401, "{err}");
        assert_eq!(err["error"], "link_unusable", "{err}");
        words.push(err["message"].clone());
    }
    words.dedup();
    assert_eq!(words.len(), 1, "{words:?}");
    assert_eq!(gw.store.get(b).await.unwrap().state, State::Open);
    // Logging out ends the link's session.
    assert_eq!(api.call("POST", "/logout", token, None).await.0, 204);
    assert_eq!(
        api.call("GET", &format!("/tickets/{a}"), token, None)
            .await
            .0,
        401
    );
    gw.stop().await;
}

/// A MESSAGE from `from` to the gateway with `body`, `headers` added:
/// the status it was answered with.
async fn reply(
    gw: SocketAddr,
    from: &UdpSocket,
    user: &str,
    body: &[u8],
    headers: &str,
) -> Option<u16> {
    let me = from.local_addr().unwrap();
    let n: u64 = rand_id();
    let mut msg = format!(
        "MESSAGE sip:hotline@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-reply-{n}\r\n\
Max-Forwards: 70\r\nFrom: <sip:{user}@{me}>;tag=r{n}\r\nTo: <sip:hotline@{gw}>\r\n\
Call-ID: reply-{n}@t\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain;charset=UTF-8\r\n{headers}\
Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    msg.extend_from_slice(body);
    from.send_to(&msg, gw).await.unwrap();
    let answer = recv(from, Duration::from_secs(10)).await?;
    status_of(&answer)
}

/// Waits (bounded) for a MESSAGE at the phone, after its first `before`,
/// that says `what` (pages keep coming meanwhile).
async fn said_after(bodies: &std::sync::Mutex<Vec<String>>, before: usize, what: &str) {
    eventually(
        &format!("a MESSAGE back saying {what}"),
        Duration::from_secs(10),
        || async {
            bodies
                .lock()
                .unwrap()
                .iter()
                .skip(before)
                .any(|b| b.contains(what))
        },
    )
    .await;
}

fn rand_id() -> u64 {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The MESSAGE page names the reply; `1 <ticket>` from the member's PBX
/// (`[sip] trusted`, the address their pages go to, asserting their user)
/// is 签收 as theirs (`via: sip_message`), answered 200 and by a MESSAGE
/// where their pages go; again, wrong codes and unknown tickets are
/// answered in words and change nothing; from an unknown address (or
/// the PBX asserting nobody's user) 403 and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_message_page_from_the_members_pbx_acknowledges_and_is_answered() {
    // The "PBX" is this machine's 127.0.0.1: the officer's MESSAGE URI
    // names it, and it is trusted.
    let (phone, count, bodies) = phone().await;
    let mut s = settings();
    s.roster.file = roster(&format!("message = \"sip:{OFFICER}@{phone}\""));
    s.sip.trusted = vec!["127.0.0.1".parse().unwrap()];
    s.http.public_url = Some(PUBLIC.into());
    let gw = Gateway::start(s).await;
    let number = open_tickets(&gw.store, 1, "reply").await.remove(0);
    eventually("the MESSAGE page", Duration::from_secs(15), || async {
        count.load(Ordering::SeqCst) > 0
    })
    .await;
    let page = bodies.lock().unwrap()[0].clone();
    assert!(page.contains(&number), "{page}");
    assert!(
        page.contains(&format!("回复「1 {number}」即签收")),
        "{page}"
    );
    assert!(
        page.contains(&format!("{PUBLIC}/#ticket={number}&link=")),
        "{page}"
    );
    let acks = |store: hotline::tickets::Store, n: String| async move {
        store
            .timeline(&n)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "acknowledge")
            .collect::<Vec<_>>()
    };
    // Pages go on while it is open: count what is there before each reply.
    let pages_now = || bodies.lock().unwrap().len();

    // An unknown address, whatever its From claims: 403, nothing sent.
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let code = format!("1 {number}");
    assert_eq!(
        reply(gw.udp, &stranger, OFFICER, code.as_bytes(), "").await,
        Some(403)
    );
    // The PBX asserting a user no member's pages go to: 403 too.
    let pbx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(
        reply(
            gw.udp,
            &pbx,
            OFFICER,
            code.as_bytes(),
            "P-Asserted-Identity: <sip:8999@127.0.0.1>\r\n"
        )
        .await,
        Some(403)
    );
    assert_eq!(gw.store.get(&number).await.unwrap().state, State::Open);
    assert!(acks(gw.store.clone(), number.clone()).await.is_empty());

    // A wrong code from the member: 200, told so, nothing changes.
    for (body, says) in [
        (b"ok".to_vec(), "未能识别"),
        (format!("1 {number} 签收").into_bytes(), "未能识别"),
        (b"1 2026-999999".to_vec(), "不存在或您无权签收"),
        (vec![0xff, 0xfe, b'1'], "未能识别"),
    ] {
        let before = pages_now();
        assert_eq!(reply(gw.udp, &pbx, OFFICER, &body, "").await, Some(200));
        said_after(&bodies, before, says).await;
    }
    assert_eq!(gw.store.get(&number).await.unwrap().state, State::Open);

    // The reply the page asked for: 签收, as the member's, via MESSAGE.
    let before = pages_now();
    assert_eq!(
        reply(gw.udp, &pbx, OFFICER, code.as_bytes(), "").await,
        Some(200)
    );
    let t = gw.store.get(&number).await.unwrap();
    assert_eq!(t.state, State::Acknowledged);
    assert_eq!(
        t.register.dispatch.acknowledged_by.as_deref(),
        Some(OFFICER)
    );
    let done = acks(gw.store.clone(), number.clone()).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].actor, OFFICER);
    assert!(
        done[0].details.contains("\"via\":\"sip_message\""),
        "{}",
        done[0].details
    );
    said_after(&bodies, before, &format!("工单 {number} 已签收")).await;
    // Again: told it is theirs already; still one 签收.
    let before = pages_now();
    assert_eq!(
        reply(gw.udp, &pbx, OFFICER, code.as_bytes(), "").await,
        Some(200)
    );
    said_after(&bodies, before, "您已签收").await;
    assert_eq!(acks(gw.store.clone(), number.clone()).await.len(), 1);
    gw.stop().await;
}

/// A receiver several people read (`links = false`, a WeCom group): its
/// page names the ticket but carries no one-tap link, which anyone in the
/// group could use once as the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_receiver_marked_links_false_gets_no_link() {
    let (hook, posts) = webhook(FirstPages::Taken).await;
    let mut s = settings();
    s.roster.file = roster("webhook = \"group\"");
    s.paging.webhooks = toml::from_str(&format!(
        "[group]\nurl = \"http://{hook}/hook\"\nformat = \"wecom\"\nlinks = false\n"
    ))
    .unwrap();
    s.http.public_url = Some(PUBLIC.into());
    let gw = Gateway::start(s).await;
    let number = open_tickets(&gw.store, 1, "group").await.remove(0);
    let body = post_naming(&posts, &number, "the group's page").await;
    let content = body["text"]["content"].as_str().unwrap();
    assert!(content.contains(&format!("举报工单 {number}")), "{content}");
    assert!(
        !content.contains(PUBLIC) && !content.contains("一键签收"),
        "a group's page carries a link: {content}"
    );
}

/// The first webhook post naming `number` (bounded wait), as JSON.
async fn post_naming(
    posts: &std::sync::Mutex<Vec<String>>,
    number: &str,
    what: &str,
) -> serde_json::Value {
    eventually(what, Duration::from_secs(15), || async {
        posts.lock().unwrap().iter().any(|p| p.contains(number))
    })
    .await;
    let post = posts
        .lock()
        .unwrap()
        .iter()
        .find(|p| p.contains(number))
        .cloned()
        .unwrap();
    serde_json::from_str(&post).unwrap()
}
