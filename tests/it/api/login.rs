//! Logging in: PINs counted before they are checked, the limits per
//! source and per member (behind a trusted proxy too), logout and
//! revocation.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_pins_are_counted_before_they_are_checked() {
    let gw = Gateway::start(settings()).await;
    let api = Api::new(&gw);
    set_pin(&gw, "u2-officer", "246810").await;
    // 64 wrong PINs at once: only the limit's worth is evaluated.
    let mut tries = Vec::new();
    for _ in 0..64 {
        let client = http_client();
        let url = format!("{}/login", api.base);
        tries.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"member": "u2-officer", "pin": "000000"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = std::collections::BTreeMap::new();
    for t in tries {
        *codes.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(codes.get(&401), Some(&5), "{codes:?}");
    assert_eq!(codes.get(&429), Some(&59), "{codes:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_limits_logout_and_revocation() {
    let gw = Gateway::start(settings()).await;
    let api = Api::new(&gw);
    set_pin(&gw, "u1-officer", "135790").await;
    // Wrong PINs: 401, then 429 with Retry-After.
    for _ in 0..5 {
        let (s, b) = api
            .call(
                "POST",
                "/login",
                None,
                Some(json!({"member": "u1-officer", "pin": "000000"})),
            )
            .await;
        assert_eq!(s, 401, "{b}");
    }
    let r = http_client()
        .post(format!("{}/login", api.base))
        .json(&json!({"member": "u1-officer", "pin": "135790"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    // The limit holds for a minute; clear the counters as a minute passing would.
    let mut c = gw.store.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("hotline:login:*")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut c)
        .await
        .unwrap();
    let token = api.login("u1-officer", "135790").await;
    assert_eq!(api.call("GET", "/tickets", Some(&token), None).await.0, 200);
    // No token, a bad token: 401.
    assert_eq!(api.call("GET", "/tickets", None, None).await.0, 401);
    assert_eq!(
        api.call("GET", "/tickets", Some("forged"), None).await.0,
        401
    );
    // A token lives 12 hours, kept by Redis's own expiry: one whose time
    // is up (brought forward here) is refused.
    let expiring = api.login("u1-officer", "135790").await;
    let token_keys: Vec<String> = redis::cmd("KEYS")
        .arg("hotline:token:*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(token_keys.len(), 2, "{token_keys:?}");
    for k in &token_keys {
        let ttl: i64 = redis::cmd("TTL").arg(k).query_async(&mut c).await.unwrap();
        let full = hotline::api::auth::TOKEN_SECONDS as i64;
        assert!((full - 60..=full).contains(&ttl), "{k}: ttl {ttl}");
    }
    let sha = |t: &str| {
        use sha2::Digest;
        let h = sha2::Sha256::digest(t.as_bytes());
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let key = format!("hotline:token:{}", sha(&expiring));
    assert!(token_keys.contains(&key), "{token_keys:?} lacks {key}");
    let _: () = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap();
    eventually("the token expired", Duration::from_secs(5), || async {
        api.call("GET", "/tickets", Some(&expiring), None).await.0 == 401
    })
    .await;
    assert_eq!(api.call("GET", "/tickets", Some(&token), None).await.0, 200);
    // Logout ends that token.
    assert_eq!(api.call("POST", "/logout", Some(&token), None).await.0, 204);
    assert_eq!(api.call("GET", "/tickets", Some(&token), None).await.0, 401);
    // Revocation ends all of a member's tokens at once.
    let a = api.login("u1-officer", "135790").await;
    let b = api.login("u1-officer", "135790").await;
    let n = hotline::api::auth::revoke(&gw.store, "u1-officer")
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(api.call("GET", "/tickets", Some(&a), None).await.0, 401);
    assert_eq!(api.call("GET", "/tickets", Some(&b), None).await.0, 401);
    // Tokens are stored hashed: the token itself is nowhere in Redis.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(keys.iter().all(|k| !k.contains(&a)));
    gw.stop().await;
}

/// Behind a trusted reverse proxy the client is the one `X-Forwarded-For`
/// names, so one attacker's failed logins lock out that attacker, not
/// everyone behind the proxy; from anyone else the header is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_limit_counts_the_client_a_trusted_proxy_names() {
    async fn wrong_pin(gw: &Gateway, member: &str, forwarded: &str) -> u16 {
        http_client()
            .post(format!("http://{}/api/v1/login", gw.http))
            .header("X-Forwarded-For", forwarded)
            .json(&json!({"member": member, "pin": "000000"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
    let mut s = settings();
    s.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let gw = Gateway::start(s).await;
    // The attacker (as the proxy saw them) tries six times, each for
    // another member: the sixth is refused for the source.
    let members = [
        "u1-officer",
        "u2-officer",
        "u3-officer",
        "u4-officer",
        "u5-officer",
        "m-chen",
    ];
    let mut statuses = Vec::new();
    for m in members {
        // What the attacker wrote themselves is to the left of what the
        // proxy added: only the proxy's entry counts.
        statuses.push(wrong_pin(&gw, m, "10.9.9.9, 198.51.100.7").await);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    // Another client behind the same proxy is not locked out.
    assert_eq!(wrong_pin(&gw, "m-chen", "203.0.113.5").await, 401);
    gw.stop().await;
    // Without trusted proxies the header is the client's own: ignored, all
    // six count against 127.0.0.1, whatever they say.
    let gw = Gateway::start(settings()).await;
    for (i, m) in members.iter().enumerate() {
        let st = wrong_pin(&gw, m, &format!("203.0.113.{i}")).await;
        assert_eq!(st, if i < 5 { 401 } else { 429 }, "attempt {i}");
    }
    gw.stop().await;
}

/// Issue 30: 1,000 wrong PINs for one member from 100 sources behind a
/// trusted proxy (25 at a time): the member's threshold (10) is evaluated
/// and no more (401s, the PIN-check counter, the record in Redis); the
/// rest are 429 unevaluated, the member's own right PIN too while the wait
/// runs. The member and the director are each told once by their webhook.
/// Once the wait is over (the record's last failure moved back a minute
/// and a second), the member's own login succeeds and clears the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_for_one_member_from_many_sources_are_evaluated_up_to_the_threshold() {
    use futures::StreamExt as _;
    let (hook, hooks) = webhook(FirstPages::Taken).await;
    let roster = offline(&test_roster_text())
        .replace(
            "id = \"u1-officer\"",
            "id = \"u1-officer\"\nwebhook = \"hook\"",
        )
        .replace("# webhook = \"wecom-bureau\"", "webhook = \"hook\"");
    let mut s = settings();
    s.roster.file = test_roster(&roster);
    s.paging.webhooks = toml::from_str(&format!(
        "[hook]\nurl = \"http://{hook}/hook\"\nretries = 0\n"
    ))
    .unwrap();
    s.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let gw = Gateway::start(s).await;
    set_pin(&gw, "u1-officer", "246810").await;
    let url = format!("http://{}/api/v1/login", gw.http);
    let client = http_client();
    let attempt = |forwarded: String, pin: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client
                .post(url)
                .header("X-Forwarded-For", forwarded)
                .json(&json!({"member": "u1-officer", "pin": pin}))
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (r.status().as_u16(), retry)
        }
    };
    // Bounded: the thousand answered within a minute, or the test fails.
    let answers: Vec<(u16, Option<u64>)> = tokio::time::timeout(
        Duration::from_secs(60),
        futures::stream::iter(0..1000)
            .map(|i| attempt(format!("198.18.0.{}", i % 100), "000000"))
            .buffer_unordered(25)
            .collect(),
    )
    .await
    .expect("1,000 logins answered within a minute");
    let count = |code: u16| answers.iter().filter(|(s, _)| *s == code).count();
    assert_eq!((count(401), count(429)), (10, 990), "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s == 429)
            .all(|(_, r)| r.is_some_and(|r| (1..=60).contains(&r))),
        "each 429 says when to come back"
    );
    let (_, metrics) = gw.get("/metrics").await;
    assert!(
        metrics.contains("hotline_login_pin_checks_total 10\n"),
        "{metrics}"
    );
    let record = gw
        .store
        .login_failures("u1-officer")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.count, 10);

    // Told once each, the member and the director (a shift handover may
    // go to the director's webhook too: not counted).
    let told = || -> Vec<Value> {
        hooks
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str::<Value>(b).unwrap())
            .filter(|b| b["category"] != "handover")
            .collect()
    };
    eventually("both told", Duration::from_secs(10), || async {
        told().len() >= 2
    })
    .await;
    let told_now = told();
    let mut whom: Vec<&str> = told_now
        .iter()
        .map(|b| b["member"].as_str().unwrap())
        .collect();
    whom.sort();
    assert_eq!(whom, ["m-chen", "u1-officer"], "{told_now:?}");
    for b in &told_now {
        assert_eq!(b["category"], "login_locked", "{b}");
        assert!(b["text"].as_str().unwrap().contains("u1-officer"), "{b}");
    }

    // The member's own right PIN inside the wait: refused unevaluated.
    let (status, retry) = attempt("203.0.113.5".into(), "246810").await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|r| (1..=60).contains(&r)), "{retry:?}");
    let (_, metrics) = gw.get("/metrics").await;
    assert!(metrics.contains("hotline_login_pin_checks_total 10\n"));
    // The wait over: their login is taken and their failures forgotten.
    let earlier = hotline::tickets::attempts::LoginFailures {
        count: record.count,
        last_ms: record.last_ms - 61_000,
    };
    assert!(gw
        .store
        .swap_login_failures(
            "u1-officer",
            Some(record),
            earlier,
            Duration::from_secs(3600)
        )
        .await
        .unwrap());
    assert_eq!(attempt("203.0.113.5".into(), "246810").await.0, 200);
    assert_eq!(gw.store.login_failures("u1-officer").await.unwrap(), None);
    assert_eq!(told().len(), 2, "told once, not per attempt");
    gw.stop().await;
}
