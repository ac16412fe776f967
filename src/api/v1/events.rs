//! `GET /events`: server-sent events for one officer, read from the
//! store's events stream (resumable with `Last-Event-ID`): the pages
//! addressed to them and the changes of the tickets they may see.

use axum::extract::State;
use axum::routing::get;
use axum::Router;

use super::tickets::may_see;
use super::{Officer, Shared};

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

pub(super) fn router() -> Router<Shared> {
    Router::new().route("/events", get(events))
}
