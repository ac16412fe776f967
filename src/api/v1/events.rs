//! `GET /events`: server-sent events for one officer, read from the
//! store's events stream (resumable with `Last-Event-ID`): the pages
//! addressed to them and the changes of the tickets they may see. A
//! stream lives only as long as its token: it is checked every few seconds
//! and the stream ends once the officer logged out, was revoked or the
//! token expired; a member has at most [`STREAMS_PER_MEMBER`] at once.

use axum::extract::State;
use axum::routing::get;
use axum::Router;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::tickets::may_see;
use super::{ApiError, Officer, Shared};
use crate::api::auth;

/// Event streams one member may hold open at once.
pub(super) const STREAMS_PER_MEMBER: usize = 4;

/// How often a stream checks that its token is still valid.
const TOKEN_CHECK: std::time::Duration = std::time::Duration::from_secs(3);

/// Open streams per member; a stream's slot is given back when it ends.
#[derive(Default)]
pub struct Streams(std::sync::Mutex<std::collections::HashMap<String, usize>>);

/// One stream's slot.
struct Slot {
    streams: Shared,
    member: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .streams
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.member) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.member);
            }
        }
    }
}

/// Server-sent events for this officer: pages addressed to them, from the
/// events stream, resumable with `Last-Event-ID` (the stream entry id).
async fn events(State(s): State<Shared>, o: Officer, headers: axum::http::HeaderMap) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let slot = {
        let mut open = s.streams.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(o.member.id.clone()).or_default();
        if *n >= STREAMS_PER_MEMBER {
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!("at most {STREAMS_PER_MEMBER} event streams at once: close one"),
            )
            .into_response();
        }
        *n += 1;
        Slot {
            streams: s.clone(),
            member: o.member.id.clone(),
        }
    };
    let mut last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| "$".to_string());
    let stop = s.stop.clone();
    let stream = async_stream(
        move |tx: tokio::sync::mpsc::Sender<Result<Event, std::convert::Infallible>>| async move {
            let _slot = slot;
            let mut next_check = tokio::time::Instant::now() + TOKEN_CHECK;
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
                if tokio::time::Instant::now() >= next_check {
                    next_check = tokio::time::Instant::now() + TOKEN_CHECK;
                    // Logged out, revoked or expired: the stream ends (a store
                    // that cannot answer now is asked again next time).
                    if let Ok(who) = auth::member_of(&s.store, &o.token).await {
                        if who.as_deref() != Some(o.member.id.as_str()) {
                            tracing::info!(member = %o.member.id, "event stream ended: the token is no longer valid");
                            return;
                        }
                    }
                }
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
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
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

pub(super) fn router() -> Router<Shared> {
    Router::new().route("/events", get(events))
}
