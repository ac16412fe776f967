//! The event stream: an officer's own tickets only, ended when the token
//! is revoked, capped.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_carries_changes_of_my_tickets_only() {
    let gw = Gateway::start(settings()).await;
    let api = Api::new(&gw);
    let (n, mine, theirs) = paged_ticket(&gw).await;
    for m in [&mine, &theirs] {
        set_pin(&gw, m, "246810").await;
    }
    let me = api.login(&mine, "246810").await;
    let other = api.login(&theirs, "246810").await;
    let stream = |token: &str| {
        http_client()
            .get(format!("{}/events", api.base))
            .bearer_auth(token)
            .header("Last-Event-ID", "0-0")
            .send()
    };
    let (mut my_events, mut their_events) =
        (stream(&me).await.unwrap(), stream(&other).await.unwrap());
    let (_, t) = api
        .call("GET", &format!("/tickets/{n}"), Some(&me), None)
        .await;
    let version = t["ticket"]["version"].as_u64().unwrap();
    let (s, b) = api
        .act(&n, "acknowledge", &me, json!({"version": version}))
        .await;
    assert_eq!(s, 200, "{b}");
    let seen = read_events_until(&mut my_events, "\"to\":\"acknowledged\"").await;
    let change = seen
        .split("\n\n")
        .find(|e| e.contains("\"to\":\"acknowledged\""))
        .unwrap();
    assert!(change.contains("event: change"), "{change}");
    assert!(change.contains(&format!("\"ticket\":\"{n}\"")), "{change}");
    assert!(
        change.contains(&format!("\"actor\":\"{mine}\"")),
        "{change}"
    );
    // The other unit's officer: a page of their own comes through after
    // it, and nothing of this ticket before.
    let _: String = redis::cmd("XADD")
        .arg("hotline:events")
        .arg("*")
        .arg("kind")
        .arg("page")
        .arg("member")
        .arg(&theirs)
        .arg("ticket")
        .arg("marker")
        .arg("text")
        .arg("marker")
        .query_async(&mut gw.store.connection())
        .await
        .unwrap();
    let theirs_seen = read_events_until(&mut their_events, "marker").await;
    assert!(!theirs_seen.contains(&n), "{theirs_seen}");
    gw.stop().await;
}

/// An event stream lives only as long as its token: `officer revoke` (and
/// logout, expiry) ends it within seconds; a member holds at most four.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_ends_when_the_token_is_revoked_and_is_capped() {
    let gw = Gateway::start(settings()).await;
    let api = Api::new(&gw);
    set_pin(&gw, "u1-officer", "246810").await;
    let token = api.login("u1-officer", "246810").await;
    let open = || {
        http_client()
            .get(format!("{}/events", api.base))
            .bearer_auth(&token)
            .send()
    };
    let mut streams = Vec::new();
    for _ in 0..4 {
        let r = open().await.unwrap();
        assert_eq!(r.status(), 200);
        streams.push(r);
    }
    let fifth = open().await.unwrap();
    assert_eq!(fifth.status(), 429, "the fifth stream of one member");
    let n = hotline::api::auth::revoke(&gw.store, "u1-officer")
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Each stream ends (keep-alive comments may come first), bounded.
    for mut r in streams {
        tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(_chunk) = r.chunk().await.unwrap_or(None) {}
        })
        .await
        .expect("the stream ended after the revocation");
    }
    gw.stop().await;
}
