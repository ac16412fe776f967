//! The tickets an officer may see (paged to them or their unit, of the
//! cases they handle, or all for those who see all; anything else is 404
//! exactly as a ticket that does not exist): the list with its filters, one
//! ticket with its timeline, the officers' transitions through the
//! domain's actions (出警 starting the arrival clock), revealing the
//! caller, and callbacks (回拨) for the roles that may reveal, within the
//! day's limits.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{ApiError, Body, Officer, OnTicket, Params, Shared, V1};
use crate::privacy::mask;
use crate::tickets::actions;
use crate::tickets::model::{Category, Index, Measure, Note, State as TicketState, Ticket};

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
    /// Who talked with the caller (the bridge, callbacks), when, how long.
    connections: Vec<crate::tickets::model::Connection>,
    /// The follow-up call's result (回访).
    follow_up: Option<crate::tickets::model::FollowUp>,
    /// The lead's value and reward (第二十条(四)).
    reward: Option<crate::tickets::model::Reward>,
    /// Where it went when it opened: handler, linked reports, a joined
    /// dispatch.
    triage: crate::tickets::model::Triage,
    /// 本案7日内第N次举报, when earlier reports on the case are linked.
    repeat_report: Option<String>,
    /// Pickup, answer, arrival, verification; those missed.
    deadlines: crate::tickets::model::Deadlines,
    /// A consultation's answer.
    answer: Option<crate::tickets::model::Answer>,
    /// A property lead and its check.
    property: Option<crate::tickets::model::Property>,
    /// The caller's words as text (`transcript.text`), or why not yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    transcript: Option<crate::tickets::model::Transcript>,
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
        caller: serde_json::json!({
            "number": number,
            "withheld": r.caller.privacy,
            // asserted (the trunk vouched for it), claimed (未核实), withheld.
            "provenance": r.caller.provenance(),
            "channel": r.caller.channel,
        }),
        intake: r.intake.clone(),
        dispatch: r.dispatch.clone(),
        disposal: r.disposal.clone(),
        notes: r.notes.clone(),
        recordings: r.recordings.len(),
        connections: r.connections.clone(),
        follow_up: r.follow_up.clone(),
        reward: r.reward.clone(),
        triage: r.triage.clone(),
        repeat_report: r.triage.repeat_report(),
        deadlines: r.deadlines.clone(),
        answer: r.answer.clone(),
        property: r.property.clone(),
        transcript: r.transcript.clone(),
    }
}

/// Whether the officer may see the ticket: paged to them or their unit,
/// a case they handle, or they see all.
/// (The rule is the domain's, `actions::may_see`; this asks the store.)
pub(super) async fn may_see(s: &V1, o: &Officer, t: &Ticket) -> Result<bool, ApiError> {
    let cfg = s.live.get();
    Ok(s.store.may_see(&o.member, &cfg.roster, t).await?)
}

/// The ticket, or 404 exactly as for one that does not exist.
pub(super) async fn visible(s: &V1, o: &Officer, number: &str) -> Result<Ticket, ApiError> {
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
    /// Words the ticket holds: in its transcript, whereabouts, case
    /// number or notes (at most 100 bytes).
    q: Option<String>,
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
    crate::court_time::court_tz()
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
        Index::Member(o.member.id.clone())
    } else if let Some(c) = category {
        Index::Category(c)
    } else if let Some(st) = state {
        Index::State(st)
    } else {
        Index::All
    }
    .name();
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
    let words = match q.q.as_deref().map(str::trim) {
        Some(w) if w.len() > 100 => {
            return Err(ApiError::bad_request("q: at most 100 bytes"));
        }
        Some("") | None => None,
        Some(w) => Some(w.to_string()),
    };
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
                || words.as_deref().is_some_and(|w| !holds(&t, w))
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

/// Whether the ticket's transcript, whereabouts, case number or notes
/// hold `words`.
fn holds(t: &crate::tickets::Ticket, words: &str) -> bool {
    let r = &t.register;
    r.transcript
        .as_ref()
        .is_some_and(|x| x.text.contains(words))
        || r.intake
            .whereabouts
            .as_deref()
            .is_some_and(|w| w.contains(words))
        || r.intake
            .case_number
            .as_deref()
            .is_some_and(|c| c.contains(words))
        || r.notes.iter().any(|n| n.text.contains(words))
}

async fn one(
    State(s): State<Shared>,
    OnTicket(o): OnTicket,
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
pub(super) async fn act(
    s: &V1,
    o: &Officer,
    n: &str,
    a: actions::Action,
) -> Result<Json<serde_json::Value>, ApiError> {
    visible(s, o, n).await?;
    s.store.act(n, &a).await?;
    let t = s.store.get(n).await?;
    let view = serde_json::to_value(view(s, &t)).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the ticket view: {e}"),
        )
    })?;
    Ok(Json(view))
}

async fn acknowledge(
    State(s): State<Shared>,
    OnTicket(o): OnTicket,
    Path(n): Path<String>,
    Body(b): Body<Versioned>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Through a page's link: on the timeline as `via: link`.
    let a = actions::acknowledge(&o.member.id, Some(b.version), Timestamp::now(), o.via());
    act(&s, &o, &n, a).await
}

async fn dispatch(
    State(s): State<Shared>,
    OnTicket(o): OnTicket,
    Path(n): Path<String>,
    Body(b): Body<DispatchBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let cfg = s.live.get();
    if let Some(bad) = b.officers.iter().find(|m| cfg.roster.member(m).is_none()) {
        return Err(ApiError::bad_request(format!(
            "officers: {bad:?} is not a member"
        )));
    }
    let now = Timestamp::now();
    let mut a = actions::dispatch(&o.member.id, b.version, b.officers, b.vehicle, now)
        .arriving_by(cfg.dispatch.arrive_by(now));
    with_via(&mut a, &o);
    act(&s, &o, &n, a).await
}

async fn arrive(
    State(s): State<Shared>,
    OnTicket(o): OnTicket,
    Path(n): Path<String>,
    Body(b): Body<Versioned>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut a = actions::arrive(&o.member.id, b.version, Timestamp::now());
    with_via(&mut a, &o);
    act(&s, &o, &n, a).await
}

/// A step taken through a page's link says so on the timeline (`via`).
fn with_via(a: &mut actions::Action, o: &Officer) {
    let serde_json::Value::Object(via) = o.via() else {
        return;
    };
    match a.change.details.as_object_mut() {
        Some(d) => d.extend(via),
        None => a.change.details = serde_json::Value::Object(via),
    }
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
struct WhereaboutsBody {
    version: u64,
    text: String,
}

/// The whereabouts set or corrected (the machine's reading replaced).
async fn whereabouts(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<WhereaboutsBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let text = actions::Whereabouts::parse(&b.text).map_err(ApiError::bad_request)?;
    let t = visible(&s, &o, &n).await?;
    let a = actions::whereabouts(&o.member.id, b.version, &t, text);
    act(&s, &o, &n, a).await
}

/// The transcript made again (a failed one, or on demand): the ticket's
/// call recording queued; 202 with whether it was not queued already.
async fn transcribe(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let t = visible(&s, &o, &n).await?;
    if !s.transcribe {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "transcribe_disabled",
            "transcription is turned off on this gateway ([transcribe] enabled = false)",
        ));
    }
    let sha = t
        .register
        .transcript
        .as_ref()
        .map(|x| x.recording_sha256.clone())
        .or_else(|| t.register.recordings.first().map(|r| r.sha256.clone()));
    let Some(sha) = sha else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_recording",
            "the ticket has no recording to transcribe",
        ));
    };
    let queued = s.store.enqueue_transcript(&n, &sha).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"queued": queued})),
    ))
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
    if !actions::may_reveal(&o.member, &s.reveal_roles) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role may not reveal callers",
        ));
    }
    let reason = actions::Reason::parse(&b.reason).map_err(ApiError::bad_request)?;
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
        "provenance": c.provenance(),
        "channel": c.channel,
        "client_ip": open(&c.client_ip),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackBody {
    reason: String,
}

/// 回拨: the gateway calls the officer, then the informant through the
/// trunk, and joins them; the number never reaches the officer's side.
/// Only for the roles that may reveal a caller, so many a day per ticket
/// and per member (`[api]`), checked in that order before anything else;
/// a refusal of either goes on the timeline. Audited as a reveal; its
/// progress goes on the ticket's timeline.
async fn callback(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<CallbackBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let t = visible(&s, &o, &n).await?;
    if let Err(r) = actions::may_call_back(&o.member, &s.reveal_roles) {
        return Err(refuse_callback(&s, &o, &n, r).await);
    }
    let reason = actions::Reason::parse(&b.reason).map_err(ApiError::bad_request)?;
    let Some(callbacks) = &s.callbacks else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_callbacks",
            "callbacks are not available on this gateway",
        ));
    };
    let (member, at) = (&o.member.id, Timestamp::now());
    let counts = s.store.count_callback(&n, member, at).await?;
    let take_back = || async {
        if let Err(e) = s.store.uncount_callback(&n, member, at).await {
            tracing::warn!(ticket = %n, member = %member, error = %e, "callback: cannot take back its count");
        }
    };
    if let Err(r) = actions::callback_quota(counts, s.callback_limits) {
        take_back().await;
        return Err(refuse_callback(&s, &o, &n, r).await);
    }
    let refused = |r: crate::call::callback::Refused| {
        use crate::call::callback::Refused;
        let (status, code) = match r {
            Refused::Withheld => (StatusCode::CONFLICT, "withheld"),
            Refused::Unverified => (StatusCode::CONFLICT, "unverified"),
            Refused::Unreachable => (StatusCode::CONFLICT, "unreachable"),
            Refused::NoTrunk => (StatusCode::SERVICE_UNAVAILABLE, "no_trunk"),
            Refused::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        };
        ApiError::new(status, code, r.message())
    };
    let prepared = match callbacks.prepare(&t.register.caller, &o.member) {
        Ok(p) => p,
        Err(r) => {
            // Every line busy: worth trying again, not a callback spent.
            if r == crate::call::callback::Refused::Busy {
                take_back().await;
            }
            return Err(refused(r));
        }
    };
    s.store
        .act(&n, &actions::callback(&o.member.id, &reason))
        .await?;
    tracing::info!(ticket = %n, member = %o.member.id, "callback requested");
    callbacks.start(&n, prepared);
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "ticket": n,
            "state": "calling_you",
            "message": "the gateway calls you first: press 1 to be connected",
        })),
    ))
}

/// A callback refused for the role (403) or the day's limits (429): on the
/// ticket's timeline with who and why, and in the security log.
async fn refuse_callback(s: &V1, o: &Officer, n: &str, r: actions::CallbackRefusal) -> ApiError {
    let member = &o.member.id;
    tracing::warn!(target: "security", "SECURITY event=callback_refused member={member} ticket={n} reason={}", r.why());
    if let Err(e) = s.store.act(n, &actions::callback_refused(member, r)).await {
        // Refused all the same; the log keeps it.
        tracing::error!(ticket = %n, member = %member, error = %e, "callback refusal not on the timeline");
    }
    let (status, code) = match r {
        actions::CallbackRefusal::Role => (StatusCode::FORBIDDEN, "forbidden"),
        _ => (StatusCode::TOO_MANY_REQUESTS, "too_many_callbacks"),
    };
    ApiError::new(status, code, r.message())
}

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/tickets", get(list))
        .route("/tickets/{number}", get(one))
        .route("/tickets/{number}/acknowledge", post(acknowledge))
        .route("/tickets/{number}/dispatch", post(dispatch))
        .route("/tickets/{number}/arrive", post(arrive))
        .route("/tickets/{number}/close", post(close))
        .route("/tickets/{number}/notes", post(note))
        .route("/tickets/{number}/whereabouts", post(whereabouts))
        .route("/tickets/{number}/transcribe", post(transcribe))
        .route("/tickets/{number}/reveal-caller", post(reveal))
        .route("/tickets/{number}/callback", post(callback))
}
