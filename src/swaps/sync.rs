//! Every gateway follows the `swaps:log` stream (the task `swaps`): when
//! it moved, the swaps in force in the store are put into this gateway's
//! roster (`Live::set_dynamic`), and each entry's texts (a swap asked, a
//! duty moved, a swap void) are sent through the members' text channels,
//! once for all gateways (the entry's claim in the store). The connection
//! is shared by every request, so the log is polled, not read with BLOCK;
//! the gateway that makes a change syncs at once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Swaps;
use crate::tickets::StoreError;

/// How often a gateway reads the log: how long another gateway's swap
/// takes at most to be in force here.
pub const SYNC_EVERY: Duration = Duration::from_millis(500);

/// How far back a starting gateway reads the log for texts still owed (a
/// gateway that stopped between a change and its texts); each claimed once.
const LOOK_BACK_MS: i64 = 10 * 60 * 1000;

/// Entries read at once.
const BATCH: usize = 200;

impl Swaps {
    /// Reads the log past what this process has read: when it moved (or the
    /// first time), the swaps in force go into the roster; each entry's
    /// texts are claimed and sent (in a task of their own: a receiver that
    /// hangs holds up nobody). Without channels (the CLI) nothing is sent
    /// or claimed: the gateways send it.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let mut seen = self.seen.lock().await;
        let first = seen.is_none();
        let mut after = seen.clone().unwrap_or_else(|| {
            format!(
                "{}-0",
                jiff::Timestamp::now().as_millisecond() - LOOK_BACK_MS
            )
        });
        let mut entries = Vec::new();
        loop {
            let batch = self.store.duty_log_after(&after, BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = last.id.clone();
            let full = batch.len() == BATCH;
            entries.extend(batch);
            if !full {
                break;
            }
        }
        if first || !entries.is_empty() {
            self.refresh().await?;
        }
        if let Some(channels) = &self.channels {
            for e in entries.iter().filter(|e| !e.notices.is_empty()) {
                if !self.store.claim_duty_notices(&e.claim).await? {
                    continue;
                }
                let (channels, live) = (channels.clone(), self.live.clone());
                let (notices, what) = (e.notices.clone(), e.action.clone());
                tokio::spawn(async move {
                    let roster = live.get();
                    for (id, text) in notices {
                        let Some(m) = roster.roster.member(&id).cloned() else {
                            tracing::info!(member = %id, "a duty notice for someone no longer in the roster is not sent");
                            continue;
                        };
                        for a in channels.notify_about(&m, "duty", &text).await {
                            tracing::info!(member = %a.member, channel = a.channel, ok = a.ok, outcome = %a.outcome, what = %what, "duty notice");
                        }
                    }
                });
            }
        }
        *seen = Some(after);
        Ok(())
    }

    /// Syncs every [`SYNC_EVERY`] until `stop`.
    pub async fn run(self: std::sync::Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.sync().await {
                tracing::debug!(error = %e, "swaps: cannot reach redis");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(SYNC_EVERY) => {}
            }
        }
    }
}
