//! The public caller page and its signalling, WHIP-style (RFC 9725,
//! docs/adr/0010): `POST /call/whip` with the browser's SDP offer answers
//! `201 Created` with ours and the call's resource in `Location`; `GET` on
//! it says the call's state and ticket number, `DELETE` hangs up, `PATCH`
//! (trickle ICE) is 405: an ICE-lite gateway needs no candidates from the
//! browser. No login: the per-source limits of `[webrtc]` apply.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::call::web::{Refusal, WebCalls};

#[derive(Clone)]
pub struct CallApi {
    pub web: Arc<WebCalls>,
    /// `[http] trusted_proxies`: whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<crate::sip::admission::Cidr>,
}

/// The caller page (one self-contained file).
const PAGE: &str = include_str!("call.html");

pub fn router(state: CallApi) -> Router {
    Router::new()
        .route("/call", get(page))
        .route("/call/whip", post(offer))
        .route(
            "/call/whip/{id}",
            get(state_of).delete(hang_up).patch(|| async {
                refuse(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "no_trickle",
                    "trickle ICE is not taken: the gateway is ICE-lite",
                )
            }),
        )
        .with_state(state)
}

async fn page() -> Response {
    (
        [(header::CONTENT_SECURITY_POLICY, super::csp_for(PAGE, &CSP))],
        Html(PAGE),
    )
        .into_response()
}

static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// An error as the page reads it: `{"error": code, "message": text}`.
fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

async fn offer(State(s): State<CallApi>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(client) = super::client_of(&parts, &s.trusted_proxies) else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no peer address",
        );
    };
    let sdp = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/sdp"));
    if !sdp {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_sdp",
            "the offer must be sent as application/sdp",
        );
    }
    let body: Bytes = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "an offer is at most 64 KiB",
            )
        }
    };
    match s.web.offer(&body, std::net::SocketAddr::new(client, 0)) {
        Ok((id, answer)) => (
            StatusCode::CREATED,
            [
                (header::CONTENT_TYPE, "application/sdp".to_string()),
                (header::LOCATION, format!("/call/whip/{id}")),
            ],
            answer,
        )
            .into_response(),
        Err(r) => {
            let message = r.to_string();
            let (status, code, retry) = match r {
                Refusal::BadOffer(_) => (StatusCode::BAD_REQUEST, "bad_offer", None),
                Refusal::NoCodec => (StatusCode::NOT_ACCEPTABLE, "no_codec", None),
                Refusal::TooMany => (StatusCode::TOO_MANY_REQUESTS, "too_many", Some("60")),
                Refusal::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy", Some("30")),
            };
            let mut resp = refuse(status, code, message);
            if let Some(after) = retry {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static(after));
            }
            resp
        }
    }
}

async fn state_of(State(s): State<CallApi>, Path(id): Path<String>) -> Response {
    match s.web.state(&id) {
        Some(state) => {
            let mut h = HeaderMap::new();
            h.insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            (h, Json(state)).into_response()
        }
        None => refuse(StatusCode::NOT_FOUND, "not_found", "no such call"),
    }
}

async fn hang_up(State(s): State<CallApi>, Path(id): Path<String>) -> Response {
    if s.web.hang_up(&id).await {
        StatusCode::OK.into_response()
    } else {
        refuse(StatusCode::NOT_FOUND, "not_found", "no such call")
    }
}
