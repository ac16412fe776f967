//! `POST /login` and `/logout`: a PIN for a bearer token, limited per
//! member and per source (both counted first, then decided), lockouts and
//! failures in the security log.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, Body, Client, Officer, Shared};
use crate::api::auth;
use crate::tickets::store::Attempt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    member: String,
    pin: String,
}

/// At most this many failed logins per member and per source a minute.
const LOGIN_ATTEMPTS: i64 = 5;

async fn login(
    State(s): State<Shared>,
    Client(from): Client,
    Body(b): Body<Login>,
) -> Result<Response, ApiError> {
    // Per member, and per source (an IPv6 source is its /64; behind a
    // trusted proxy, the client it names).
    let source = crate::sip::admission::source_of(from).to_string();
    let (by_member, by_source) = s
        .store
        .count_attempt(Attempt::Login, &b.member, &source)
        .await?;
    let over = by_member > LOGIN_ATTEMPTS || by_source > LOGIN_ATTEMPTS;
    if over {
        tracing::warn!(target: "security", "SECURITY event=login_locked src={source} reason=\"more than {LOGIN_ATTEMPTS} logins a minute\" count=1");
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed logins: wait a minute",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return Ok(r);
    }
    let cfg = s.live.get();
    let member = cfg.roster.member(&b.member).map(|m| m.id.as_str());
    if !auth::check_pin(&s.store, member, &b.pin).await? {
        tracing::warn!(target: "security", "SECURITY event=login_failed src={source} reason=\"wrong member or PIN\" count=1");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "member or PIN is wrong",
        ));
    }
    s.store
        .uncount_attempt(Attempt::Login, &b.member, &source)
        .await?;
    let token = auth::issue(&s.store, &b.member).await?;
    tracing::info!(member = %b.member, "officer logged in");
    Ok(Json(
        serde_json::json!({"token": token, "expires_in": auth::TOKEN_SECONDS, "member": b.member}),
    )
    .into_response())
}

async fn logout(State(s): State<Shared>, o: Officer) -> Result<StatusCode, ApiError> {
    auth::logout(&s.store, &o.token, &o.member.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
}
