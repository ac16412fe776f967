//! The HTTP side: `/healthz`, `/metrics`, and the officers' API under
//! `/api/v1` (`v1`, credentials in `auth`), a member's calendar
//! subscription at `/calendar/<token>.ics` (`calendar`). Handlers delegate
//! and hold no domain rules.

pub mod auth;
mod calendar;
pub mod serve;
pub mod tls;
pub mod v1;
pub mod webcall;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::metrics::Metrics;
use crate::tickets::writer::TicketHealth;

/// What the health endpoint reports.
#[derive(Debug, Default)]
pub struct Health {
    /// SIP sockets are bound and the core task runs.
    pub sip_listening: AtomicBool,
    /// A long-lived task died: the gateway is about to exit.
    pub failed: AtomicBool,
    /// Which one (its name, as the logs say it).
    failed_task: std::sync::Mutex<Option<&'static str>>,
    /// The configuration loaded: its fingerprint, and when (RFC 3339).
    pub config: std::sync::Mutex<Option<(String, jiff::Timestamp)>>,
    /// The channel watch's states as this gateway last read them.
    pub watched: Arc<crate::watch::Watched>,
}

impl Health {
    /// Says which configuration runs (at start, and after a reload).
    pub fn loaded(&self, fingerprint: &str, at: jiff::Timestamp) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((fingerprint.to_string(), at));
    }

    /// A long-lived task, `task`, died: health answers 503 `failed`,
    /// naming it, until the gateway exits.
    pub fn fail(&self, task: &'static str) {
        *self.failed_task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        self.sip_listening.store(false, Ordering::Release);
        self.failed.store(true, Ordering::Release);
    }

    fn failed_task(&self) -> Option<&'static str> {
        *self.failed_task.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn config(&self) -> Option<(String, jiff::Timestamp)> {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[derive(Clone)]
pub struct ApiState {
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub tickets: Arc<TicketHealth>,
    /// The configuration in force (for the calendar's warning).
    pub live: Arc<crate::live::Live>,
    /// The media clocks' ticks and the RTP ports leased.
    pub load: Arc<crate::shedding::Load>,
    pub v1: Option<Arc<v1::V1>>,
    /// The public caller page, when `[webrtc] enabled`.
    pub call: Option<webcall::CallApi>,
}

#[derive(Serialize)]
struct HealthBody {
    /// `ok`, `degraded` (calls answered, tickets waiting in the journal),
    /// `starting`, `draining` (503: no new calls, those in progress
    /// finish), or `failed` (a task died; the gateway exits).
    status: &'static str,
    /// With `failed`: the task that died (`sip`, `handover`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<&'static str>,
    sip: bool,
    redis: &'static str,
    /// `ok`, or `full`: the journal takes no more (a full or broken disk),
    /// operations wait in memory.
    journal: &'static str,
    journal_pending: usize,
    /// The configuration's fingerprint and when it was loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    config_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config_loaded_at: Option<jiff::Timestamp>,
    /// Set when a holiday calendar is missing (next year's, from December).
    #[serde(skip_serializing_if = "Option::is_none")]
    calendar_warning: Option<String>,
    /// Channels the watch found down (`trunk`, `webhook:NAME`): calls are
    /// still answered, so neither the status nor the code changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    channels_down: Vec<String>,
}

/// 200 once SIP listens (calls are answered even with Redis down, so a
/// degraded store is reported in the body, not by the status code).
async fn healthz(State(s): State<ApiState>) -> (StatusCode, Json<HealthBody>) {
    let sip = s.health.sip_listening.load(Ordering::Acquire);
    let redis_ok = s.tickets.redis_ok.load(Ordering::Relaxed);
    let journal_ok = s.tickets.journal_ok.load(Ordering::Relaxed);
    let pending = s.tickets.pending.load(Ordering::Relaxed);
    let draining = s.load.draining();
    let code = if sip && !draining {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let failed = s.health.failed.load(Ordering::Acquire);
    let status = match (sip, redis_ok && journal_ok) {
        _ if failed => "failed",
        _ if draining => "draining",
        (false, _) => "starting",
        (true, true) => "ok",
        (true, false) => "degraded",
    };
    (
        code,
        Json(HealthBody {
            status,
            failed: s.health.failed_task(),
            sip,
            redis: if redis_ok { "ok" } else { "down" },
            journal: if journal_ok { "ok" } else { "full" },
            journal_pending: pending,
            config_fingerprint: s.health.config().map(|c| c.0),
            config_loaded_at: s.health.config().map(|c| c.1),
            calendar_warning: s
                .live
                .get()
                .calendar
                .warning(crate::court_time::court_day(jiff::Timestamp::now())),
            channels_down: s.health.watched.down(),
        }),
    )
}

async fn metrics(State(s): State<ApiState>) -> String {
    let mut out = s.metrics.render();
    let (ticks, late) = (
        s.load.ticks.load(Ordering::Relaxed),
        s.load.late_ticks.load(Ordering::Relaxed),
    );
    out.push_str(&format!(
        "# TYPE hotline_media_ticks_total counter\nhotline_media_ticks_total {ticks}\n\
# TYPE hotline_media_late_ticks_total counter\nhotline_media_late_ticks_total {late}\n\
# TYPE hotline_rtp_ports_leased gauge\nhotline_rtp_ports_leased {}\n",
        s.load.leased()
    ));
    // What /healthz says, for alerts.
    let flag = |b: bool| u8::from(b);
    out.push_str(&format!(
        "# TYPE hotline_sip_listening gauge\nhotline_sip_listening {}\n\
# TYPE hotline_redis_up gauge\nhotline_redis_up {}\n\
# TYPE hotline_journal_ok gauge\nhotline_journal_ok {}\n\
# TYPE hotline_journal_pending gauge\nhotline_journal_pending {}\n\
# TYPE hotline_draining gauge\nhotline_draining {}\n",
        flag(s.health.sip_listening.load(Ordering::Acquire)),
        flag(s.tickets.redis_ok.load(Ordering::Relaxed)),
        flag(s.tickets.journal_ok.load(Ordering::Relaxed)),
        s.tickets.pending.load(Ordering::Relaxed),
        flag(s.load.draining()),
    ));
    if let Some((fingerprint, at)) = s.health.config() {
        out.push_str(&format!(
            "# TYPE hotline_config_loaded gauge\nhotline_config_loaded{{fingerprint=\"{fingerprint}\"}} {}\n",
            at.as_second()
        ));
    }
    // The channel watch: each channel up or down, and since when.
    out.push_str(&s.health.watched.render());
    out.push_str(&crate::allocator::figures());
    // Tickets by state, read from Redis when the API has a store (the gauge
    // is left out, not zeroed, while Redis is away).
    if let Some(v1) = &s.v1 {
        if let Ok(counts) = v1.store.count_by_state().await {
            out.push_str("# TYPE hotline_tickets gauge\n");
            for (state, n) in counts {
                out.push_str(&format!("hotline_tickets{{state=\"{state}\"}} {n}\n"));
            }
        }
        // The transcription queue: how many wait, and how long the oldest
        // (since its ticket arrived) has.
        if let Ok(q) = v1.store.transcript_queue().await {
            let age = q
                .oldest_ms
                .map(|ms| ((jiff::Timestamp::now().as_millisecond() - ms).max(0) as f64) / 1000.0)
                .unwrap_or(0.0);
            out.push_str(&format!(
                "# TYPE hotline_transcribe_queue_depth gauge\nhotline_transcribe_queue_depth {}\n\
# TYPE hotline_transcribe_oldest_age_seconds gauge\nhotline_transcribe_oldest_age_seconds {age:.1}\n",
                q.depth
            ));
        }
    }
    out
}

/// Every request gets an answer within this time. Streams (SSE, recording
/// downloads) are bounded only up to their headers; their bodies run on.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

async fn timeout(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": "timeout", "message": "request timed out"})),
        )
            .into_response(),
    }
}

/// The API description, served beside the API it describes.
async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../docs/openapi.json"),
    )
}

/// The client's address: the peer, or behind a trusted reverse proxy the
/// nearest address in `X-Forwarded-For` that is not a trusted proxy (the
/// header is read right to left; what a client wrote itself is further
/// left). `None` without the peer's address (a request not from the
/// server's own loop). The header from anyone else is ignored, and the log
/// says so once.
pub(crate) fn client_of(
    parts: &axum::http::request::Parts,
    trusted_proxies: &[crate::sip::admission::Cidr],
) -> Option<std::net::IpAddr> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())?;
    let trusted = |ip: std::net::IpAddr| trusted_proxies.iter().any(|c| c.contains(ip));
    if !trusted(peer) {
        if parts.headers.contains_key("x-forwarded-for") {
            forwarded_by_untrusted(peer);
        }
        return Some(peer);
    }
    let forwarded: Vec<std::net::IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().parse())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(*ip))
            .unwrap_or(peer),
    )
}

/// A request with `X-Forwarded-For` from a peer not in `[http]
/// trusted_proxies`: the header is ignored (anyone can write it), so behind
/// a proxy every client would count as the proxy. Said once per process.
fn forwarded_by_untrusted(peer: std::net::IpAddr) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            peer = %crate::sip::admission::mask_ip(peer),
            "X-Forwarded-For from a peer not in [http] trusted_proxies is ignored: \
        behind a reverse proxy, set trusted_proxies to its address, or every client counts \
        as the proxy (one login and browser-call budget for all)"
        );
    }
}

/// The field officers' mobile page (one self-contained file, no build step).
static PAGE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| with_labels(include_str!("page.html")));

/// The command center's board (wall screen and phone; data from
/// `/api/v1/board` for the board's roles).
static BOARD: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| with_labels(include_str!("board.html")));

/// A page with the one table of display names (`labels::table`) put in
/// for its script's `LABELS_JSON`, so the pages carry no copy of it (the
/// Content-Security-Policy's hash is of the page as served).
fn with_labels(page: &str) -> String {
    page.replace("LABELS_JSON", &crate::tickets::labels::table().to_string())
}

async fn board() -> axum::response::Response {
    use axum::response::IntoResponse;
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    (
        [(
            axum::http::header::CONTENT_SECURITY_POLICY,
            csp_for(&BOARD, &CSP),
        )],
        axum::response::Html(BOARD.as_str()),
    )
        .into_response()
}

async fn page() -> axum::response::Response {
    use axum::response::IntoResponse;
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    (
        [(
            axum::http::header::CONTENT_SECURITY_POLICY,
            csp_for(&PAGE, &CSP),
        )],
        axum::response::Html(PAGE.as_str()),
    )
        .into_response()
}

/// A page's Content-Security-Policy (made once, kept in `cell`): nothing
/// but its own inline script and style (by their SHA-256), requests to the
/// same origin, media from blobs; no framing, no other origin.
fn csp_for<'a>(page: &str, cell: &'a std::sync::OnceLock<String>) -> &'a str {
    cell.get_or_init(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = |open: &str, close: &str| {
            let body = page
                .split_once(open)
                .and_then(|(_, rest)| rest.split_once(close))
                .map_or("", |(b, _)| b);
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body.as_bytes()))
        };
        format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; \
media-src 'self' blob:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash("<script>", "</script>"),
            hash("<style>", "</style>")
        )
    })
}

/// Headers every answer carries; API answers are never cached (tickets,
/// tokens, recordings).
async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    // A calendar subscription's answer is a member's duty, its URL a secret.
    let api = req.uri().path().starts_with("/api/") || req.uri().path().starts_with("/calendar/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

pub fn router(state: ApiState) -> Router {
    let v1 = state.v1.clone();
    let call = state.call.clone();
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/", get(page))
        .route("/board", get(board))
        .route("/board/stats", get(board))
        .route("/board/report", get(board))
        .with_state(state);
    if let Some(v1) = v1 {
        r = r.merge(calendar::router(v1.clone()));
        r = r.nest("/api/v1", v1::router(v1));
    }
    if let Some(c) = call {
        r = r.merge(webcall::router(c));
    }
    // Bodies are small JSON; nothing bigger is read.
    r.layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(timeout))
        .layer(axum::middleware::from_fn(security_headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 30: `X-Forwarded-For` from a peer that is not a trusted proxy
    /// names nobody (the peer is the client) and the log says once that
    /// `[http] trusted_proxies` is not set for it; from a trusted proxy the
    /// header names the client.
    #[test]
    fn forwarded_for_from_an_untrusted_peer_is_ignored_and_said_once() {
        #[derive(Clone, Default)]
        struct Log(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Log {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let parts = |peer: &str| {
            let mut req = axum::http::Request::get("/")
                .header("x-forwarded-for", "203.0.113.9")
                .body(())
                .unwrap();
            req.extensions_mut().insert(axum::extract::ConnectInfo(
                peer.parse::<std::net::SocketAddr>().unwrap(),
            ));
            req.into_parts().0
        };
        let proxy: crate::sip::admission::Cidr = "127.0.0.1/32".parse().unwrap();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                assert_eq!(
                    client_of(&parts("198.51.100.4:5000"), std::slice::from_ref(&proxy)),
                    Some("198.51.100.4".parse().unwrap())
                );
            }
            assert_eq!(
                client_of(&parts("127.0.0.1:5000"), &[proxy]),
                Some("203.0.113.9".parse().unwrap())
            );
        });
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("[http] trusted_proxies").count(), 1, "{text}");
        assert!(!text.contains("198.51.100.4"), "the peer masked: {text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_hangs_gets_a_503_after_the_timeout() {
        use tower::ServiceExt;
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(REQUEST_TIMEOUT * 2).await;
                    "late"
                }),
            )
            .route("/fast", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(timeout));
        let req = |p: &str| {
            axum::http::Request::get(p)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let started = tokio::time::Instant::now();
        let resp = app.clone().oneshot(req("/slow")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(started.elapsed(), REQUEST_TIMEOUT);
        let resp = app.oneshot(req("/fast")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn healthz_follows_sip_state() {
        let state = ApiState {
            health: Arc::new(Health::default()),
            metrics: Arc::new(Metrics::default()),
            load: Arc::new(crate::shedding::Load::default()),
            tickets: Arc::new(TicketHealth {
                redis_ok: true.into(),
                journal_ok: true.into(),
                pending: 0.into(),
            }),
            live: Arc::new(crate::live::Live::new(crate::live::Loaded {
                roster: crate::roster::Roster::parse(
                    &std::fs::read_to_string(
                        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/roster.toml"),
                    )
                    .unwrap(),
                    "roster.toml",
                )
                .unwrap(),
                partners: Default::default(),
                calendar: Default::default(),
                prompts: Default::default(),
                policies: Default::default(),
                webhooks: Default::default(),
                partner_settings: Default::default(),
                case_settings: Default::default(),
                dispatch: Default::default(),
                fingerprint: "test".into(),
            })),
            v1: None,
            call: None,
        };
        let (code, body) = healthz(State(state.clone())).await;
        assert_eq!((code, body.0.sip), (StatusCode::SERVICE_UNAVAILABLE, false));
        state.health.sip_listening.store(true, Ordering::Release);
        let (code, body) = healthz(State(state.clone())).await;
        assert_eq!((code, body.0.status), (StatusCode::OK, "ok"));
        assert_eq!(body.0.failed, None);
        state.tickets.redis_ok.store(false, Ordering::Relaxed);
        let (code, body) = healthz(State(state.clone())).await;
        assert_eq!(
            (code, body.0.status, body.0.redis),
            (StatusCode::OK, "degraded", "down")
        );
        // A task died: 503, `failed`, naming it.
        state.health.fail("handover");
        let (code, body) = healthz(State(state)).await;
        assert_eq!(
            (code, body.0.status, body.0.failed, body.0.sip),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "failed",
                Some("handover"),
                false
            )
        );
        let json = serde_json::to_string(&body.0).unwrap();
        assert!(json.contains("\"failed\":\"handover\""), "{json}");
    }
}
