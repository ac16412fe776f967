//! What handlers take from a request: JSON bodies and query strings that
//! are 400 with the reason when malformed, and the logged-in [`Officer`]
//! (a bearer token that is valid now, a member of the roster).
//!
//! A session a page's link opened is scoped to its ticket: [`Officer`]
//! refuses it (403 `link_scope`), so a route takes it only by asking for
//! [`OnTicket`] (the ticket in its path is the session's: viewing it and
//! its dispatch steps) or [`AnySession`] (logging out). A new route is
//! closed to it unless it says otherwise.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;

use super::{ApiError, Shared};
use crate::api::auth;
use crate::roster::Member;

/// JSON bodies: unknown fields and bad JSON are 400 with the reason.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Query strings: unknown or malformed parameters are 400 with the reason.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Params(v)),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// The client's address: the peer, or behind a trusted reverse proxy the
/// nearest address in `X-Forwarded-For` that is not a trusted proxy (the
/// header is read right to left; what a client wrote itself is further left).
pub struct Client(pub std::net::IpAddr);

impl FromRequestParts<Shared> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Client, ApiError> {
        crate::api::client_of(parts, &s.trusted_proxies)
            .map(Client)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "no peer address",
                )
            })
    }
}

/// The logged-in officer.
pub struct Officer {
    pub member: Member,
    pub(super) token: String,
    /// The ticket a page's link opened this session for, its only one.
    pub(super) link: Option<String>,
}

impl Officer {
    /// One of the board's roles: the desk, the director, a deputy, the
    /// chief commander.
    pub(super) fn on_the_board(&self) -> bool {
        self.member.has_any(&crate::roster::Role::BOARD)
    }

    /// 403 (saying `what` is for the board's roles) unless on the board.
    pub(super) fn require_board(&self, what: &str) -> Result<(), ApiError> {
        match self.on_the_board() {
            true => Ok(()),
            false => Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "{what} is for the desk, the director, the deputies and the chief commander"
                ),
            )),
        }
    }
}

impl Officer {
    /// How the officer came: `{"via": "link"}` for a page's link, else
    /// nothing (their PIN), for the timeline.
    pub(super) fn via(&self) -> serde_json::Value {
        match self.link {
            Some(_) => serde_json::json!({"via": "link"}),
            None => serde_json::Value::Null,
        }
    }
}

/// 403 for a session a page's link opened, on what it is not for.
fn out_of_scope(ticket: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "link_scope",
        format!(
            "this session was opened by a page's link for ticket {ticket} only \
(viewing it, 签收, 出警, 到场): log in with your PIN for anything else"
        ),
    )
}

impl FromRequestParts<Shared> for Officer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Officer, ApiError> {
        let o = AnySession::from_request_parts(parts, s).await?.0;
        match &o.link {
            None => Ok(o),
            Some(ticket) => Err(out_of_scope(ticket)),
        }
    }
}

/// Any valid session, a page's link's too: for what every session may do
/// (log itself out).
pub struct AnySession(pub Officer);

/// An officer on the ticket of the route's `{number}`: a full session, or
/// one a page's link opened for that ticket.
pub struct OnTicket(pub Officer);

impl FromRequestParts<Shared> for OnTicket {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<OnTicket, ApiError> {
        let o = AnySession::from_request_parts(parts, s).await?.0;
        let Some(ticket) = &o.link else {
            return Ok(OnTicket(o));
        };
        let axum::extract::Path(number) =
            axum::extract::Path::<String>::from_request_parts(parts, s)
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()))?;
        match &number == ticket {
            true => Ok(OnTicket(o)),
            false => Err(out_of_scope(ticket)),
        }
    }
}

impl FromRequestParts<Shared> for AnySession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<AnySession, ApiError> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "log in: a valid bearer token is needed",
            )
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?
            .trim()
            .to_string();
        let session = auth::session_of(&s.store, &token)
            .await?
            .ok_or_else(unauthorized)?;
        let member = s
            .live
            .get()
            .roster
            .member(&session.member)
            .cloned()
            .ok_or_else(unauthorized)?;
        Ok(AnySession(Officer {
            member,
            token,
            link: session.ticket,
        }))
    }
}
