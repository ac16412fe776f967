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
    let _one = crate::helpers::CHROMIUM.lock().await;
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
            // Without a body: the login and a link's opening are 400.
            let want = if path == "/login" || path == "/link" {
                400
            } else {
                401
            };
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

/// Routes served outside the officers' API, which `docs/openapi.json`
/// describes (its server is `/api/v1`): each with what it is instead.
const OUTSIDE_THE_DOCUMENT: &[(&str, &str)] = &[
    ("/healthz", "the health probe"),
    ("/metrics", "Prometheus' scrape"),
    ("/openapi.json", "the document itself"),
    ("/", "the officers' mobile page (HTML)"),
    ("/board", "the command center's board (HTML)"),
    ("/board/stats", "the board's statistics view (HTML)"),
    ("/board/report", "the board's monthly report view (HTML)"),
    ("/call", "the public caller page (HTML)"),
    (
        "/call/whip",
        "the caller page's WebRTC signalling (WHIP), not the officers'",
    ),
    ("/call/whip/{id}", "the same WHIP session's resource"),
    (
        "/calendar/{file}",
        "a member's calendar subscription (iCalendar), by its secret token: a phone's calendar sends no bearer token",
    ),
];

/// Documented ⊇ served: every route the routers in `src/api` declare (read
/// from their `.route(…)` calls, so a route added without documentation
/// fails here) is in `docs/openapi.json` with each of its methods, or,
/// outside `/api/v1`, named in [`OUTSIDE_THE_DOCUMENT`]; and every
/// documented operation is declared (the served side of it is probed by
/// `openapi_document_matches_the_served_api_and_page`).
#[test]
fn every_route_the_routers_serve_is_documented() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("docs/openapi.json")).unwrap())
            .unwrap();
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let paths = doc["paths"].as_object().unwrap();
    // The v1 routers are nested at /api/v1, the others at the root.
    let api = std::fs::read_to_string(repo().join("src/api/mod.rs")).unwrap();
    assert!(api.contains(".nest(\"/api/v1\", v1::router("), "{api}");
    let mut problems = Vec::new();
    let mut declared = std::collections::BTreeSet::new();
    let mut outside = std::collections::BTreeSet::new();
    for file in rust_files(&repo().join("src/api")) {
        let rel = file.strip_prefix(repo()).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        for r in routes_in(&rel, &text) {
            if r.methods.is_empty() {
                problems.push(format!("{} ({}): no method router read", r.path, r.file));
            }
            if !rel.starts_with("src/api/v1/") {
                if OUTSIDE_THE_DOCUMENT.iter().any(|(p, _)| *p == r.path) {
                    outside.insert(r.path.clone());
                } else {
                    problems.push(format!(
                        "{} ({}): served outside /api/v1 and not in OUTSIDE_THE_DOCUMENT",
                        r.path, r.file
                    ));
                }
                continue;
            }
            for m in &r.methods {
                declared.insert((r.path.clone(), m.clone()));
                if paths.get(&r.path).and_then(|p| p.get(m)).is_none() {
                    problems.push(format!(
                        "{} {} ({}): served, not in docs/openapi.json",
                        m.to_uppercase(),
                        r.path,
                        r.file
                    ));
                }
            }
        }
    }
    for (path, ops) in paths {
        for m in ops.as_object().unwrap().keys() {
            if !declared.contains(&(path.clone(), m.clone())) {
                problems.push(format!(
                    "{} {path}: documented, declared by no router in src/api/v1",
                    m.to_uppercase()
                ));
            }
        }
    }
    for (p, _) in OUTSIDE_THE_DOCUMENT {
        if !outside.contains(*p) {
            problems.push(format!("{p}: in OUTSIDE_THE_DOCUMENT, served no more"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The source was read, not skipped: the document's 21 operations.
    assert!(declared.len() >= 21, "{declared:?}");
}

/// The route reader on the shapes the routers use.
#[test]
fn the_route_reader_reads_paths_and_methods() {
    let text = r#"
        Router::new()
            .route("/a", get(list))
            .route("/a/{n}", get(one).post(change))
            .route(
                "/b/{id}",
                get(state_of).delete(hang_up).patch(|| async {
                    refuse(StatusCode::METHOD_NOT_ALLOWED, "no (get) here", x.get(1))
                }),
            )
            .with_state(state)
        #[cfg(test)]
        mod tests {
            fn t() { Router::new().route("/slow", get(slow)); }
        }
    "#;
    let got: Vec<(String, Vec<String>)> = routes_in("x.rs", text)
        .into_iter()
        .map(|r| (r.path, r.methods))
        .collect();
    let want = |p: &str, m: &[&str]| (p.to_string(), m.iter().map(|s| s.to_string()).collect());
    assert_eq!(
        got,
        vec![
            want("/a", &["get"]),
            want("/a/{n}", &["get", "post"]),
            want("/b/{id}", &["get", "delete", "patch"]),
        ]
    );
}
