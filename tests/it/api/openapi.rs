//! The OpenAPI document against the served API: probed, and fuzzed by
//! schemathesis.

use super::*;

/// `schemathesis` (PyPI) against `/openapi.json` with a valid token: no
/// 5xx, no response outside the document (status, content type, headers,
/// body schema), no request the document calls invalid accepted. Logout is
/// left out (it would end the run's own session). Fixed seed: a failure
/// reproduces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_break() {
    let local = repo().join("target/py/bin/schemathesis");
    let exe = if local.is_file() {
        local
    } else {
        PathBuf::from("schemathesis")
    };
    let gw = Gateway::start(settings()).await;
    let api = Api::new(&gw);
    // A ticket to find: the document's example number, whatever year the
    // test runs in (a ticket received in 2026 is numbered in 2026).
    let example = std::fs::read_to_string(repo().join("docs/openapi.json")).unwrap();
    assert!(example.contains("\"example\": \"2026-000001\""));
    let t = hotline::tickets::store::NewTicket {
        call_id: "schemathesis@t".into(),
        call: String::new(),
        received_at: "2026-06-01T02:00:00Z".parse().unwrap(),
        register: Default::default(),
    };
    let (number, _) = gw.store.create(&t, "test").await.unwrap();
    assert_eq!(number, "2026-000001", "the example ticket exists");
    set_pin(&gw, "m-chen", "112233").await;
    let director = api.login("m-chen", "112233").await;
    let work = tempfile_dir("schemathesis");
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(&exe)
            .arg("run")
            .arg(format!("http://{}/openapi.json", gw.http))
            .args(["--header", &format!("Authorization: Bearer {director}")])
            .args(["--exclude-path", "/logout"])
            .args(["--checks", "all"])
            // The document cannot say which member ids exist, so a valid-
            // looking but unknown one is rightly refused.
            .args(["--exclude-checks", "positive_data_acceptance"])
            .args(["--max-examples", "20", "--workers", "1", "--seed", "1127"])
            .args(["--request-timeout", "10", "--no-color"])
            .current_dir(&work)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("schemathesis within 5 minutes")
    .unwrap_or_else(|e| {
        panic!(
            "{} cannot run ({e}): scripts/test.sh installs it",
            exe.display()
        )
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // It got past the login with the token.
    assert!(!text.contains("Authentication failed"), "{text}");
    gw.stop().await;
}

#[tokio::test]
async fn openapi_document_matches_the_served_api_and_page() {
    let gw = Gateway::start(settings()).await;
    let http = http_client();
    let r = http
        .get(format!("http://{}/openapi.json", gw.http))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 13, "{paths:?}");
    let api = Api::new(&gw);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path.replace("{number}", "2026-000001");
            let (s, b) = api
                .call(&method.to_uppercase(), &concrete, None, None)
                .await;
            let want = if path == "/login" { 400 } else { 401 };
            // A documented path the router lacks would be 404/405 here.
            assert_eq!(s, want, "{method} {path}: {b}");
        }
    }
    let r = http
        .get(format!("http://{}/", gw.http))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.contains("/api/v1") && html.contains("\"/login\"") && html.contains("签收"));
    let metrics = http
        .get(format!("http://{}/metrics", gw.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("# TYPE hotline_pages_total counter"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hotline_tickets{state=\"open\"} 0"),
        "{metrics}"
    );
}
