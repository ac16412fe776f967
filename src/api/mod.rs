//! The HTTP side. For now `/healthz`; the officers' API joins it later.
//! Handlers delegate and hold no domain rules.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::metrics::Metrics;

/// What the health endpoint reports.
#[derive(Debug, Default)]
pub struct Health {
    /// SIP sockets are bound and the core task runs.
    pub sip_listening: AtomicBool,
}

#[derive(Clone)]
pub struct ApiState {
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
}

#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
    sip: bool,
}

async fn healthz(State(s): State<ApiState>) -> (StatusCode, Json<HealthBody>) {
    let sip = s.health.sip_listening.load(Ordering::Acquire);
    let code = if sip {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status = if sip { "ok" } else { "starting" };
    (code, Json(HealthBody { status, sip }))
}

async fn metrics(State(s): State<ApiState>) -> String {
    let mut out = String::new();
    for (name, value) in s.metrics.snapshot() {
        out.push_str(&format!(
            "# TYPE hotline_{name}_total counter\nhotline_{name}_total {value}\n"
        ));
    }
    out
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn healthz_follows_sip_state() {
        let state = ApiState {
            health: Arc::new(Health::default()),
            metrics: Arc::new(Metrics::default()),
        };
        let (code, body) = healthz(State(state.clone())).await;
        assert_eq!((code, body.0.sip), (StatusCode::SERVICE_UNAVAILABLE, false));
        state.health.sip_listening.store(true, Ordering::Release);
        let (code, _) = healthz(State(state)).await;
        assert_eq!(code, StatusCode::OK);
    }
}
