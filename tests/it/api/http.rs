//! The HTTP server itself: HTTPS, security headers, a client dribbling
//! its headers, health and metrics.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_served_with_the_configured_certificate() {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let tls = repo().join("tests/fixtures/tls");
    let mut s = settings();
    s.http.tls_cert = Some(tls.join("cert.pem"));
    s.http.tls_key = Some(tls.join("key.pem"));
    let gw = Gateway::start(s).await;
    // A client that trusts only the test CA.
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(tls.join("ca.pem")).unwrap();
    let ca = CertificateDer::from_pem_slice(&ca).unwrap();
    roots.add(ca).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{}", gw.http.port());
    let health = format!("{base}/healthz");
    eventually("https health", Duration::from_secs(10), || {
        let r = client.get(&health).send();
        async move { r.await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    let body = client
        .get(&health)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("\"sip\":true"), "{body}");
    // The API over TLS, with its JSON errors.
    let r = client
        .post(format!("{base}/api/v1/login"))
        .json(&json!({"member": "u1-officer", "pin": "000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let b: Value = r.json().await.unwrap();
    assert!(b["error"].is_string(), "{b}");
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = http_client()
        .get(format!("http://127.0.0.1:{}/healthz", gw.http.port()))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
    // A client that does not trust the certificate is refused.
    let untrusting = http_client()
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(untrusting.is_err(), "{untrusting:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_the_api_carry_security_headers() {
    let gw = Gateway::start(settings()).await;
    let base = format!("http://{}", gw.http);
    let page = http_client().get(format!("{base}/")).send().await.unwrap();
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        csp.contains("script-src 'sha256-") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    // The script the policy admits is the page's own.
    let html = page.text().await.unwrap();
    let script = html
        .split_once("<script>")
        .unwrap()
        .1
        .split_once("</script>")
        .unwrap()
        .0;
    use base64::Engine as _;
    use sha2::Digest as _;
    let want =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
    assert!(csp.contains(&format!("'sha256-{want}'")), "{csp}");
    let api = http_client()
        .get(format!("{base}/api/v1/tickets"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);
    assert_eq!(api.headers()["cache-control"], "no-store");
    gw.stop().await;
}

/// A client that sends half a header section and then nothing holds its
/// connection no longer than the header timeout (10 s): the gateway closes
/// it, and a well-behaved client is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_dribbling_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = Gateway::start(settings()).await;
    let mut slow = tokio::net::TcpStream::connect(gw.http).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_eq!(gw.get("/healthz").await.0, 200, "others are served");
    let mut buf = Vec::new();
    // Closed (an end of stream, or a reset) within the bound.
    let _ended = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut buf))
        .await
        .expect("the connection is closed within 20 s");
    let text = String::from_utf8_lossy(&buf);
    assert!(
        buf.is_empty() || text.starts_with("HTTP/1.1 408"),
        "nothing served to a request that never finished: {text}"
    );
    gw.stop().await;
}

/// `/healthz` and `/metrics` name the configuration a gateway runs (a
/// fingerprint of its files, and when it was loaded): the same files, the
/// same fingerprint; another roster, another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_name_the_configuration_loaded() {
    async fn fingerprint(gw: &Gateway) -> String {
        let (status, body) = gw.get("/healthz").await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        let f = v["config_fingerprint"].as_str().unwrap().to_string();
        assert_eq!(f.len(), 16, "{body}");
        assert!(v["config_loaded_at"].as_str().is_some(), "{body}");
        let (_, metrics) = gw.get("/metrics").await;
        assert!(
            metrics.contains(&format!("hotline_config_loaded{{fingerprint=\"{f}\"}} ")),
            "{metrics}"
        );
        f
    }
    let roster = test_roster(&offline(&test_roster_text()));
    let mut a = settings();
    a.roster.file = roster.clone();
    let mut b = settings();
    b.roster.file = roster;
    let (ga, gb) = (Gateway::start(a).await, Gateway::start(b).await);
    assert_eq!(fingerprint(&ga).await, fingerprint(&gb).await);
    let mut c = settings();
    c.roster.file = test_roster(&offline(&test_roster_text()).replace("孙法警", "孙警官"));
    let gc = Gateway::start(c).await;
    assert_ne!(fingerprint(&gc).await, fingerprint(&ga).await);
    for gw in [ga, gb, gc] {
        gw.stop().await;
    }
}
