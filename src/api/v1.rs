//! `/api/v1`: officers log in, see the tickets paged to them, their unit or
//! their cases, and move them on (签收, 出警, arrival, closing). Handlers
//! delegate to the ticket store; the state machine and version checks are
//! the store's. Errors are `{"error": code, "message": text}`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::auth;
use crate::privacy::{mask, CallerKey};
use crate::roster::{Member, Roster};
use crate::tickets::actions;
use crate::tickets::model::{Category, Measure, Note, State as TicketState, Ticket};
use crate::tickets::store::{Attempt, Store, StoreError};

/// What the API needs.
pub struct V1 {
    pub store: Store,
    pub roster: Arc<Roster>,
    pub calendar: Arc<crate::roster::Calendar>,
    pub caller_key: CallerKey,
    /// Roles that may reveal a caller (rule 第二十条(三)).
    pub reveal_roles: Vec<String>,
    /// Cancelled when the gateway stops: event streams end.
    pub stop: tokio_util::sync::CancellationToken,
}

type Shared = Arc<V1>;

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Option<serde_json::Value>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such ticket")
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

/// The logged-in officer.
pub struct Officer {
    pub member: Member,
    token: String,
}

impl Officer {
    fn sees_all(&self) -> bool {
        actions::sees_all(&self.member.roles)
    }
}

impl FromRequestParts<Shared> for Officer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Officer, ApiError> {
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
        let id = auth::member_of(&s.store, &token)
            .await?
            .ok_or_else(unauthorized)?;
        let member = s.roster.member(&id).cloned().ok_or_else(unauthorized)?;
        Ok(Officer { member, token })
    }
}

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
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Body(b): Body<Login>,
) -> Result<Response, ApiError> {
    // Per member, and per source (an IPv6 source is its /64).
    let source = crate::sip::admission::source_of(from.ip()).to_string();
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
    let member = s.roster.member(&b.member).map(|m| m.id.as_str());
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

/// A ticket as an officer may see it: the caller masked.
#[derive(Serialize)]
struct TicketView {
    number: String,
    state: TicketState,
    version: u64,
    received_at: Timestamp,
    caller: serde_json::Value,
    intake: crate::tickets::model::Intake,
    dispatch: crate::tickets::model::Dispatch,
    disposal: crate::tickets::model::Disposal,
    notes: Vec<Note>,
    recordings: usize,
}

fn view(s: &V1, t: &Ticket) -> TicketView {
    let r = &t.register;
    let number = if r.caller.privacy {
        None
    } else {
        r.caller
            .number
            .as_deref()
            .and_then(|n| s.caller_key.open(n))
            .map(|n| mask(&n))
    };
    TicketView {
        number: t.number.clone(),
        state: t.state,
        version: t.version,
        received_at: t.received_at,
        caller: serde_json::json!({"number": number, "withheld": r.caller.privacy}),
        intake: r.intake.clone(),
        dispatch: r.dispatch.clone(),
        disposal: r.disposal.clone(),
        notes: r.notes.clone(),
        recordings: r.recordings.len(),
    }
}

/// Whether the officer may see the ticket: paged to them or their unit,
/// a case they handle, or they see all.
async fn may_see(s: &V1, o: &Officer, t: &Ticket) -> Result<bool, ApiError> {
    if o.sees_all() {
        return Ok(true);
    }
    let mut indexes = vec![format!("member:{}", o.member.id)];
    for u in s.roster.units_of(&o.member.id) {
        indexes.push(format!("unit:{u}"));
    }
    for idx in indexes {
        if s.store.position(&idx, &t.number).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(t.register
        .intake
        .case_number
        .as_deref()
        .is_some_and(|n| s.roster.handler_of(n) == Some(o.member.id.as_str())))
}

/// The ticket, or 404 exactly as for one that does not exist.
async fn visible(s: &V1, o: &Officer, number: &str) -> Result<Ticket, ApiError> {
    let t = s.store.get(number).await?;
    if may_see(s, o, &t).await? {
        Ok(t)
    } else {
        Err(ApiError::not_found())
    }
}

/// `GET /tickets` filters; all optional, combined with "and". To page on,
/// pass the last ticket's number as `before`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    category: Option<String>,
    #[serde(default)]
    mine: bool,
    /// An RFC 3339 instant, or a day `YYYY-MM-DD` in Asia/Shanghai.
    since: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
}

/// How many index entries one listing reads at most (visibility is checked
/// per ticket, so an officer's tickets may be sparse in a large index).
const LIST_SCAN: usize = 5000;
const LIST_CHUNK: usize = 100;

/// `since`: an instant, or the start of a day in the court's time zone.
fn parse_since(v: &str) -> Option<Timestamp> {
    if let Ok(t) = v.parse::<Timestamp>() {
        return Some(t);
    }
    let day: jiff::civil::Date = v.parse().ok()?;
    crate::tickets::store::court_tz()
        .to_timestamp(day.to_datetime(jiff::civil::Time::midnight()))
        .ok()
}

async fn list(
    State(s): State<Shared>,
    o: Officer,
    Params(q): Params<ListQuery>,
) -> Result<Json<Vec<TicketView>>, ApiError> {
    let state =
        match q.state.as_deref() {
            None => None,
            Some(st) => Some(TicketState::parse(st).ok_or_else(|| {
                ApiError::bad_request(format!("state {st:?} is not a ticket state"))
            })?),
        };
    let category = match q.category.as_deref() {
        None => None,
        Some(c) => Some(Category::parse(c).ok_or_else(|| {
            let known: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
            ApiError::bad_request(format!("category {c:?} is not one of {}", known.join(", ")))
        })?),
    };
    let since = match q.since.as_deref() {
        None => None,
        Some(v) => Some(parse_since(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "since {v:?} is neither an RFC 3339 instant nor a day YYYY-MM-DD"
            ))
        })?),
    };
    // The narrowest index; the other filters are checked per ticket.
    let index = if q.mine {
        format!("member:{}", o.member.id)
    } else if let Some(c) = category {
        format!("category:{}", c.as_str())
    } else if let Some(st) = state {
        format!("state:{st}")
    } else {
        "all".into()
    };
    let mut pos = 0;
    if let Some(n) = &q.before {
        let not_listed = || ApiError::bad_request(format!("ticket {n:?} is not in this list"));
        match visible(&s, &o, n).await {
            Ok(_) => {}
            Err(e) if e.status == StatusCode::NOT_FOUND => return Err(not_listed()),
            Err(e) => return Err(e),
        }
        pos = s.store.position(&index, n).await?.ok_or_else(not_listed)? + 1;
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is not within 1 to 200"
        )));
    }
    let mut out = Vec::new();
    let end = pos + LIST_SCAN;
    'scan: while out.len() < limit && pos < end {
        let chunk = s.store.list_from(&index, pos, LIST_CHUNK).await?;
        if chunk.is_empty() {
            break;
        }
        pos += LIST_CHUNK;
        for t in chunk {
            if since.is_some_and(|since| t.received_at < since) {
                break 'scan;
            }
            if state.is_some_and(|st| t.state != st)
                || category.is_some_and(|c| t.register.intake.category != Some(c))
            {
                continue;
            }
            if may_see(&s, &o, &t).await? {
                out.push(view(&s, &t));
                if out.len() >= limit {
                    break 'scan;
                }
            }
        }
    }
    Ok(Json(out))
}

async fn one(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = visible(&s, &o, &n).await?;
    let timeline = s.store.timeline(&n).await?;
    Ok(Json(
        serde_json::json!({"ticket": view(&s, &t), "timeline": timeline}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Versioned {
    version: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DispatchBody {
    version: u64,
    /// Member ids of who goes.
    officers: Vec<String>,
    vehicle: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    version: u64,
    measures: Vec<Measure>,
    result: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    text: String,
}

/// An officer's transition of a ticket they may see; the ticket as it
/// is afterwards.
async fn act(
    s: &V1,
    o: &Officer,
    n: &str,
    a: actions::Action,
) -> Result<Json<serde_json::Value>, ApiError> {
    visible(s, o, n).await?;
    s.store.act(n, &a).await?;
    let t = s.store.get(n).await?;
    Ok(Json(
        serde_json::to_value(view(s, &t)).expect("view serialises"),
    ))
}

async fn acknowledge(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<Versioned>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let a = actions::acknowledge(
        &o.member.id,
        Some(b.version),
        Timestamp::now(),
        serde_json::Value::Null,
    );
    act(&s, &o, &n, a).await
}

async fn dispatch(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<DispatchBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(bad) = b.officers.iter().find(|m| s.roster.member(m).is_none()) {
        return Err(ApiError::bad_request(format!(
            "officers: {bad:?} is not a member"
        )));
    }
    let a = actions::dispatch(
        &o.member.id,
        b.version,
        b.officers,
        b.vehicle,
        Timestamp::now(),
    );
    act(&s, &o, &n, a).await
}

async fn arrive(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<Versioned>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let a = actions::arrive(&o.member.id, b.version, Timestamp::now());
    act(&s, &o, &n, a).await
}

async fn close(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<CloseBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let closing = actions::Closing::parse(b.measures, &b.result).map_err(ApiError::bad_request)?;
    let a = actions::close(&o.member.id, b.version, closing, Timestamp::now());
    act(&s, &o, &n, a).await
}

async fn note(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<NoteBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let text = actions::NoteText::parse(&b.text).map_err(ApiError::bad_request)?;
    let a = actions::note(&o.member.id, text, Timestamp::now());
    act(&s, &o, &n, a).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevealBody {
    reason: String,
}

/// The caller in clear, for the roles entitled to it, with the reason on
/// the timeline.
async fn reveal(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<RevealBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = visible(&s, &o, &n).await?;
    if !o.member.roles.iter().any(|r| s.reveal_roles.contains(r)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role may not reveal callers",
        ));
    }
    let reason = actions::RevealReason::parse(&b.reason).map_err(ApiError::bad_request)?;
    let open = |v: &Option<String>| v.as_deref().and_then(|v| s.caller_key.open(v));
    let c = &t.register.caller;
    s.store
        .act(&n, &actions::reveal(&o.member.id, &reason))
        .await?;
    tracing::info!(ticket = %n, member = %o.member.id, "caller revealed");
    Ok(Json(serde_json::json!({
        "number": open(&c.number),
        "display_name": open(&c.display_name),
        "p_asserted_identity": open(&c.p_asserted_identity),
        "privacy_requested": c.privacy,
    })))
}

/// Who is on duty now (contacts included; the officers need them).
async fn roster_now(
    State(s): State<Shared>,
    _o: Officer,
) -> Result<Json<crate::roster::OnDuty>, ApiError> {
    let offset = s.store.rotation_offset().await?;
    Ok(Json(s.roster.resolve(
        &s.calendar,
        offset,
        Timestamp::now(),
        None,
    )))
}

/// The call's recording, with HTTP Range (one range); every download is
/// written to the timeline.
async fn recording(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let t = visible(&s, &o, &n).await?;
    let Some(link) = t
        .register
        .recordings
        .iter()
        .rev()
        .find(|r| r.duration_ms > 0)
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this ticket has no recording",
        ));
    };
    let bytes = tokio::fs::read(&link.path).await.map_err(|e| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("recording unavailable: {}", e.kind()),
        )
    })?;
    let len = bytes.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    let asked = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    s.store
        .act(&n, &actions::download(&o.member.id, asked))
        .await?;
    let common = [
        (header::CONTENT_TYPE, HeaderValue::from_static("audio/wav")),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
    ];
    match range {
        None => Ok((StatusCode::OK, common, bytes).into_response()),
        Some(Some((a, b))) => {
            let mut r = (
                StatusCode::PARTIAL_CONTENT,
                common,
                bytes[a as usize..=b as usize].to_vec(),
            )
                .into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {a}-{b}/{len}")).expect("ascii"),
            );
            Ok(r)
        }
        Some(None) => {
            let mut r = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "bad_range",
                "range not satisfiable",
            )
            .into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            Ok(r)
        }
    }
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` within `len` (one range).
fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let spec = v.strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len - 1)
        }
        (a, "") => (a.parse().ok()?, len - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(len - 1)),
    };
    (a <= b && a < len).then_some((a, b))
}

/// Server-sent events for this officer: pages addressed to them, from the
/// events stream, resumable with `Last-Event-ID` (the stream entry id).
async fn events(
    State(s): State<Shared>,
    o: Officer,
    headers: axum::http::HeaderMap,
) -> axum::response::sse::Sse<
    impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let mut last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| "$".to_string());
    let stop = s.stop.clone();
    let stream = async_stream(move |tx| async move {
        if last == "$" {
            // From now on: after the newest entry, if any.
            last = s
                .store
                .newest_event()
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| "0-0".to_string());
        }
        loop {
            let entries = match s.store.events_after(&last, 100).await {
                Ok(entries) if !entries.is_empty() => entries,
                _ => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tx.closed() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
                    }
                    continue;
                }
            };
            for (id, f) in entries {
                last = id.clone();
                let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
                let ev = match field("kind") {
                    "page" if field("member") == o.member.id => {
                        let data = serde_json::json!({
                            "kind": "page", "ticket": field("ticket"), "text": field("text"),
                        });
                        Event::default().id(id).event("page").data(data.to_string())
                    }
                    // A change of a ticket this officer may see.
                    "change" => {
                        let Ok(t) = s.store.get(field("ticket")).await else {
                            continue;
                        };
                        if !may_see(&s, &o, &t).await.unwrap_or(false) {
                            continue;
                        }
                        let data = serde_json::json!({
                            "kind": "change", "ticket": t.number, "action": field("action"),
                            "actor": field("actor"), "from": field("from"), "to": field("to"),
                            "version": field("version").parse::<u64>().ok(),
                        });
                        Event::default()
                            .id(id)
                            .event("change")
                            .data(data.to_string())
                    }
                    _ => continue,
                };
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A stream fed by a task (ends when the client goes away).
fn async_stream<T, F, Fut>(f: F) -> impl futures::Stream<Item = T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub fn router(v1: Shared) -> Router {
    Router::new()
        .route("/tickets/{number}/reveal-caller", post(reveal))
        .route("/tickets/{number}/recording", get(recording))
        .route("/roster/now", get(roster_now))
        .route("/events", get(events))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/tickets", get(list))
        .route("/tickets/{number}", get(one))
        .route("/tickets/{number}/acknowledge", post(acknowledge))
        .route("/tickets/{number}/dispatch", post(dispatch))
        .route("/tickets/{number}/arrive", post(arrive))
        .route("/tickets/{number}/close", post(close))
        .route("/tickets/{number}/notes", post(note))
        .with_state(v1)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some((990, 999)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-1", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
    }
}
