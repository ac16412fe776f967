//! The officers' API against a real gateway and Redis, by resource:
//! login and its limits (`login`), tickets' actions, transitions and
//! lists (`tickets`), a reported call and its caller (`calls`), the event
//! stream (`events`), the OpenAPI document (`openapi`), and the HTTP
//! server itself (`http`). Helpers for more than one of them are here.

mod calls;
mod events;
mod http;
mod login;
mod openapi;
mod tickets;

use std::path::PathBuf;
use std::time::Duration;

use hotline::tickets::model::State;
use serde_json::{json, Value};

use crate::helpers::*;

async fn set_pin(gw: &Gateway, member: &str, pin: &str) {
    hotline::api::auth::set_pin(&gw.store, member, pin)
        .await
        .unwrap();
}

/// The officer (`…-officer`) a ticket's timeline says was paged.
async fn paged_officer(store: &hotline::tickets::Store, number: &str) -> String {
    let timeline = store.timeline(number).await.unwrap();
    timeline
        .iter()
        .filter(|e| e.action == "page")
        .find_map(|e| {
            let d: Value = serde_json::from_str(&e.details).ok()?;
            let m = d["member"].as_str()?.to_string();
            m.ends_with("-officer").then_some(m)
        })
        .expect("an officer was paged")
}

/// A lead ticket opened and paged: returns (number, the duty unit's
/// officer who was paged, an officer of another unit).
async fn paged_ticket(gw: &Gateway) -> (String, String, String) {
    let n = crate::helpers::open_tickets(&gw.store, 1, "api")
        .await
        .remove(0);
    let store = gw.store.clone();
    let n2 = n.clone();
    eventually("paged", Duration::from_secs(10), || async {
        store
            .timeline(&n2)
            .await
            .unwrap()
            .iter()
            .any(|e| e.action == "page" && e.details.contains("-officer"))
    })
    .await;
    let paged = paged_officer(&gw.store, &n).await;
    let other = (1..=5)
        .map(|u| format!("u{u}-officer"))
        .find(|m| *m != paged)
        .unwrap();
    (n, paged, other)
}

/// Reads an event stream until `until` shows in it (bounded).
async fn read_events_until(resp: &mut reqwest::Response, until: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(until) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {until:?} in {seen}"))
            .unwrap()
            .expect("the stream goes on");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}
