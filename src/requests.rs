//! The SIP core's hand-overs to the application (a REGISTER to the
//! registrar, a MESSAGE to the pages' replies): each request decided in a
//! task of its own, a bounded number at once, until the stop.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

/// Takes requests from `rx` until `stop` (or the core is gone) and runs
/// `decide` on each in a task of its own, at most `in_flight` at once (the
/// next request waits for a slot).
pub(crate) async fn each_in_its_task<T, F, Fut>(
    mut rx: mpsc::Receiver<T>,
    stop: CancellationToken,
    in_flight: usize,
    decide: F,
) where
    T: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(in_flight));
    loop {
        let req = tokio::select! {
            _ = stop.cancelled() => return,
            r = rx.recv() => match r {
                Some(r) => r,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let work = decide(req);
        tokio::spawn(async move {
            work.await;
            drop(slot);
        });
    }
}

/// A name from a request (a member, a user part), safe inside the security
/// log's quotes: 64 characters at most, anything but printable ASCII and
/// the quote itself as `?`.
pub(crate) fn log_safe(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' {
                c
            } else {
                '?'
            }
        })
        .collect()
}
