//! `POST /login` and `/logout`: a PIN for a bearer token. Limited per
//! source (5 failures a minute, counted before the PIN is checked) and per
//! member across all sources (`auth::gate`: past `[http]
//! member_failures_per_hour` each further attempt waits longer, refused
//! with 429 and Retry-After without evaluating the PIN; the member and the
//! director are told once). Failures and lockouts in the security log,
//! naming the member and the source.
//!
//! `POST /link`: a text page's link for a session scoped to its ticket
//! (`auth::open_link`); used, expired, forged or revoked is one 401
//! (`link_unusable`) and counts as a failed login from the source.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::{AnySession, ApiError, Body, Client, Shared};
use crate::api::auth::{self, Gate};
use crate::roster::Member;
use crate::tickets::attempts::Attempt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    member: String,
    pin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    token: String,
}

/// A page's link opened: a session for its member on its ticket only. The
/// link is spent whatever follows; a link that opens nothing counts as a
/// failed login from this source (the same 5 a minute), and its token is
/// never logged.
async fn open_link(
    State(s): State<Shared>,
    Client(from): Client,
    Body(b): Body<LinkBody>,
) -> Result<Response, ApiError> {
    let source = crate::sip::admission::source_of(from).to_string();
    let by_source = s
        .store
        .count_source_attempt(Attempt::Login, &source)
        .await?;
    if by_source > LOGIN_ATTEMPTS {
        tracing::warn!(target: "security", "SECURITY event=link_limited src={source} reason=\"more than {LOGIN_ATTEMPTS} failed logins or links a minute from this source\" count=1");
        return Ok(too_many(
            Duration::from_secs(60),
            "too many failed logins from this address: wait a minute".into(),
        ));
    }
    let opened = auth::open_link(
        &s.store,
        b.token.trim(),
        s.page_link_lifetime,
        jiff::Timestamp::now(),
    )
    .await?;
    // A member no longer on the roster opens nothing (the session the link
    // made would let nobody in either).
    let live = s.live.get();
    let Some((token, session)) = opened.filter(|(_, o)| live.roster.member(&o.member).is_some())
    else {
        tracing::warn!(target: "security", "SECURITY event=link_refused src={source} reason=\"a page's link used, expired, forged or revoked\" count=1");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "link_unusable",
            "this link was used, has expired or is not one: log in with your PIN",
        ));
    };
    s.store
        .uncount_source_attempt(Attempt::Login, &source)
        .await?;
    let ticket = session.ticket.unwrap_or_default();
    tracing::info!(member = %session.member, %ticket, "page link opened");
    Ok(Json(serde_json::json!({
        "token": token,
        "expires_in": s.page_link_lifetime.as_secs(),
        "member": session.member,
        "ticket": ticket,
    }))
    .into_response())
}

/// At most this many failed logins per source a minute.
const LOGIN_ATTEMPTS: i64 = 5;

/// 429 with `Retry-After: seconds` (rounded up, at least 1).
fn too_many(wait: Duration, message: String) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut r =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    r
}

async fn login(
    State(s): State<Shared>,
    Client(from): Client,
    Body(b): Body<Login>,
) -> Result<Response, ApiError> {
    // Per source (an IPv6 source is its /64; behind a trusted proxy, the
    // client it names), counted first.
    let source = crate::sip::admission::source_of(from).to_string();
    // The name as typed is the client's: quoted in the log, and short.
    let named = format!("{:?}", b.member.chars().take(64).collect::<String>());
    let by_source = s
        .store
        .count_source_attempt(Attempt::Login, &source)
        .await?;
    if by_source > LOGIN_ATTEMPTS {
        tracing::warn!(target: "security", "SECURITY event=login_limited member={named} src={source} reason=\"more than {LOGIN_ATTEMPTS} logins a minute from this source\" count=1");
        return Ok(too_many(
            Duration::from_secs(60),
            "too many failed logins from this address: wait a minute".into(),
        ));
    }
    // Per member, whatever the source: a roster member's failures are on
    // record before the PIN is evaluated.
    let member = s.live.get().roster.member(&b.member).cloned();
    let threshold = s.member_failures_per_hour;
    let reserved = match &member {
        Some(m) => match auth::reserve_login(&s.store, &m.id, threshold).await? {
            Gate::Wait(wait) => {
                tracing::warn!(target: "security", "SECURITY event=login_delayed member={named} src={source} reason=\"more than {threshold} failed logins for this member\" retry_after_ms={} count=1", wait.as_millis());
                return Ok(too_many(
                    wait,
                    format!(
                        "too many failed logins for {}: the next attempt is taken later (Retry-After)",
                        m.id
                    ),
                ));
            }
            Gate::Evaluate { failures, .. } => Some(failures),
        },
        None => None,
    };
    crate::metrics::Metrics::inc(&s.metrics.login_pin_checks);
    let id = member.as_ref().map(|m| m.id.as_str());
    if !auth::check_pin(&s.store, id, &b.pin).await? {
        tracing::warn!(target: "security", "SECURITY event=login_failed member={named} src={source} reason=\"wrong member or PIN\" count=1");
        if let (Some(m), Some(f)) = (&member, reserved) {
            // The failure that reaches the threshold starts the lockout:
            // said once, and told once.
            if f.count == threshold {
                tracing::warn!(target: "security", "SECURITY event=login_locked member={named} src={source} reason=\"{threshold} failed logins for this member in an hour: each further attempt waits longer\" count={}", f.count);
                tell_locked(&s, m, &source, f.count);
            }
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "member or PIN is wrong",
        ));
    }
    s.store
        .uncount_source_attempt(Attempt::Login, &source)
        .await?;
    if let Some(m) = &member {
        // Their own login: the count of their failures starts again.
        s.store.clear_login_failures(&m.id).await?;
    }
    let token = auth::issue(&s.store, &b.member).await?;
    tracing::info!(member = %b.member, "officer logged in");
    Ok(Json(
        serde_json::json!({"token": token, "expires_in": auth::TOKEN_SECONDS, "member": b.member}),
    )
    .into_response())
}

/// Tells `m` and the director, through their text channels, that `m`'s
/// logins are failing (once per lockout, in the background).
fn tell_locked(s: &Shared, m: &Member, source: &str, failures: u32) {
    let Some(channels) = s.notices.clone() else {
        return;
    };
    let director = s.live.get().roster.director();
    let text = format!(
        "【安全提示】{}（{}）的登录 PIN 一小时内已错误 {failures} 次，最近一次来自 {source}。\
此后每次登录须依次等待 1、2、4……分钟。如非本人所为，请联系指挥中心。",
        m.name, m.id
    );
    let mut to = vec![m.clone()];
    if director.id != m.id {
        to.push(director);
    }
    tokio::spawn(async move {
        for member in to {
            for a in channels.notify_about(&member, "login_locked", &text).await {
                tracing::info!(member = %a.member, channel = a.channel, outcome = %a.outcome, "login lockout told");
            }
        }
    });
}

async fn logout(
    State(s): State<Shared>,
    AnySession(o): AnySession,
) -> Result<StatusCode, ApiError> {
    auth::logout(&s.store, &o.token, &o.member.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/link", post(open_link))
}
