//! The API's errors: `{"error": code, "message": text}` with the status
//! that says what went wrong, and how store errors become them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::tickets::store::StoreError;

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    code: &'static str,
    message: String,
    extra: Option<serde_json::Value>,
}

impl ApiError {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A failure of ours (500), its cause in the log.
    pub(super) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub(super) fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such ticket")
    }

    /// A refusal of the domain's rules (`"forbidden: …"`, `"conflict: …"`,
    /// else a field's problem) as an HTTP answer: 403, 409, 400.
    pub(super) fn refused(why: &'static str) -> ApiError {
        match why.split_once(": ") {
            Some(("forbidden", m)) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            Some(("conflict", m)) => ApiError::new(StatusCode::CONFLICT, "illegal_transition", m),
            _ => ApiError::bad_request(why),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), error = %self.message, "api error");
        }
        let mut body = serde_json::json!({"error": self.code, "message": self.message});
        if let (Some(extra), Some(obj)) = (self.extra, body.as_object_mut()) {
            if let Some(e) = extra.as_object() {
                obj.extend(e.clone());
            }
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(_) => ApiError::not_found(),
            StoreError::Stale { state, version } => ApiError {
                extra: Some(serde_json::json!({"state": state, "version": version})),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    "stale",
                    format!("the ticket changed meanwhile: it is {state} at version {version}"),
                )
            },
            StoreError::Illegal { from, to } => ApiError {
                extra: Some(serde_json::json!({"state": from})),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    "illegal_transition",
                    format!("a ticket in state {from} cannot become {to}"),
                )
            },
            StoreError::Redis(e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("ticket store unavailable: {e}"),
            ),
            StoreError::Corrupt { .. } => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt",
                "a stored ticket cannot be read",
            ),
        }
    }
}
