//! `POST /api/v1/watch/test-webhooks`: a test delivery to every webhook
//! receiver now, for the desk, the director, the deputies and the chief
//! commander (the daily test's, on demand); each receiver's outcome is the
//! answer, a broken one (or one working again) is told as the daily test
//! tells it (`crate::watch`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{ApiError, Officer, Shared};

async fn test_webhooks(State(s): State<Shared>, o: Officer) -> Result<Json<Value>, ApiError> {
    o.require_board("testing the webhook receivers")?;
    let watch = s.watch.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the channel watch does not run here",
        )
    })?;
    tracing::info!(member = %o.member.id, "webhook receivers tested on demand");
    let tested = watch.test_webhooks().await;
    Ok(Json(json!({
        "tested_at": jiff::Timestamp::now(),
        "receivers": tested,
    })))
}

pub(super) fn router() -> Router<Shared> {
    Router::new().route("/watch/test-webhooks", post(test_webhooks))
}
