//! `GET /api/v1/board`: what the command center's board shows (rules
//! 第六条, 第七条), for the desk, the director, the deputies and the chief
//! commander: calls in progress (tickets still in the intake, with the
//! stage reached), open tickets with what their 签收 and 出警 clocks run
//! from (`five_minutes`: whether the rule holds for the category; not for
//! a consultation or a complaint) and their escalation ladder (every page:
//! who, how, when, the outcome), their deadlines after opening (a
//! partner's pickup, a consultation's answer with its handler, the arrival
//! after 出警) and the earlier reports on the same case, who holds the duty
//! now and who from the next handover, and today's five-minute breaches.
//! The channel watch's findings (`crate::watch`) come along. The page
//! (`/board`) draws the clocks against `now` (red: `warn_minutes` before a
//! pickup, or past a deadline) and follows the events stream.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::{json, Value};

use super::{ApiError, Officer, Shared};
use crate::tickets::model::{Category, Index, State as TicketState, Ticket};
use crate::tickets::stats::arrival_due;

/// Tickets shown at most in each list.
const SHOWN: usize = 200;

/// How far a call in progress has got in the intake.
fn stage(t: &Ticket) -> &'static str {
    let i = &t.register.intake;
    if t.register.connections.iter().any(|c| c.seconds.is_none()) {
        "talking to an officer"
    } else if i.message_start_ms.is_some() {
        "message"
    } else if i.case_number.is_some() {
        "case number given"
    } else if i.category.is_some() {
        "category chosen"
    } else {
        "greeting"
    }
}

async fn board(State(s): State<Shared>, o: Officer) -> Result<Json<Value>, ApiError> {
    o.require_board("the board")?;
    let now = Timestamp::now();
    let live = s.live.get();
    let calls: Vec<Value> = s
        .store
        .list(&Index::State(TicketState::Intake).name(), SHOWN)
        .await?
        .iter()
        .map(|t| {
            json!({
                "ticket": t.number, "received_at": t.received_at, "stage": stage(t),
                "category": t.register.intake.category, "urgent": t.register.intake.urgent,
            })
        })
        .collect();
    let mut open = Vec::new();
    for t in s.store.list(&Index::Open.name(), SHOWN).await? {
        if t.state == TicketState::Intake {
            continue;
        }
        let ladder: Vec<Value> = s
            .store
            .timeline(&t.number)
            .await?
            .iter()
            .filter(|e| e.action == "page")
            .map(|e| {
                let d: Value = serde_json::from_str(&e.details).unwrap_or_default();
                let name = d["member"].as_str().and_then(|m| live.roster.name_of(m));
                json!({
                    "at": e.at, "step": d["step"], "member": d["member"], "member_name": name,
                    "channel": d["channel"], "ok": d["ok"], "outcome": d["outcome"],
                })
            })
            .collect();
        let r = &t.register;
        let (i, d, triage, due) = (&r.intake, &r.dispatch, &r.triage, &r.deadlines);
        let handler = triage.handler.as_deref();
        open.push(json!({
            "ticket": t.number, "state": t.state, "received_at": t.received_at,
            "category": i.category, "urgent": i.urgent,
            "five_minutes": i.category.is_none_or(Category::five_minute_rule),
            "acknowledged_at": d.acknowledged_at, "acknowledged_by": d.acknowledged_by,
            "acknowledged_by_name": d.acknowledged_by.as_deref().and_then(|m| live.roster.name_of(m)),
            "departed_at": d.departed_at, "arrived_at": d.arrived_at,
            "breach": d.five_minute_breach, "ladder": ladder,
            "partner": i.partner, "pickup_by": due.pickup_by,
            "handler": handler, "handler_name": handler.and_then(|h| live.roster.name_of(h)),
            "answer_by": due.answer_by, "arrive_by": arrival_due(r, &live.dispatch),
            "linked": triage.linked, "joined": triage.joined,
            "whereabouts": i.whereabouts, "whereabouts_machine": i.whereabouts_machine,
            // The first words of the caller's message (the transcriber's).
            "transcript": r.transcript.as_ref().filter(|x| x.is_done()).map(|x| {
                x.text.chars().take(crate::paging::channels::TRANSCRIPT_CHARS).collect::<String>()
            }),
        }));
    }
    let offset = s.store.rotation_offset().await?;
    let duty = live.roster.resolve(&live.calendar, offset, now, None);
    let handover = live
        .roster
        .period_at(&live.calendar, now)
        .map(|p| p.end)
        .unwrap_or_else(|| live.roster.next_working_start(&live.calendar, now));
    // Who takes over then.
    let next_duty = live.roster.resolve(
        &live.calendar,
        offset,
        handover + jiff::SignedDuration::from_mins(1),
        None,
    );
    let today = crate::court_time::court_day(now).to_string();
    let (_, _, start, end) =
        crate::tickets::stats::days(&today, &today).map_err(ApiError::bad_request)?;
    let breaches: Vec<String> = s
        .store
        .received_between(start, end, crate::tickets::stats::MAX_TICKETS)
        .await?
        .into_iter()
        .filter(|t| t.register.dispatch.five_minute_breach)
        .map(|t| t.number)
        .collect();
    let last_handover: Option<Value> = s
        .store
        .latest_handover()
        .await?
        .and_then(|j| serde_json::from_str(&j).ok());
    // The channel watch: what is broken, since when (null without it).
    let watch = match &s.watch {
        Some(w) => w.board(now).await?,
        None => Value::Null,
    };
    Ok(Json(json!({
        "now": now, "calls": calls, "open": open, "duty": duty,
        "next_handover": handover, "next_duty": next_duty, "last_handover": last_handover, "breaches_today": breaches,
        "link_days": live.case_settings.link_days, "warn_minutes": live.partner_settings.warn_minutes,
        "watch": watch,
    })))
}

pub(super) fn router() -> Router<Shared> {
    Router::new().route("/board", get(board))
}
