//! The evening-before reminders (the task `reminders`): each day from
//! `[swaps] remind_at` everyone who holds a block of the next day is told
//! when, with which unit, vehicle and partners (`roster::remind`, swaps in
//! force included), through their text channels, once for all gateways
//! (`reminders:claim:<day>`). On demand for an explicit day: the admin
//! socket's `remind YYYY-MM-DD` (`hotline roster remind --for`).

use std::sync::Arc;
use std::time::Duration;

use jiff::civil::Date;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::Swaps;
use crate::paging::channels::Attempt;
use crate::tickets::StoreError;

/// How often the task looks whether the time has come.
const TICK: Duration = Duration::from_secs(30);

/// The reminders of one day: who was told through what, or `None` when a
/// gateway sent them already.
pub type Reminded = Option<Vec<(String, Vec<Attempt>)>>;

impl Swaps {
    /// Sends the reminders of the blocks that start on `day`, unless a
    /// gateway did already.
    pub async fn remind(&self, day: Date) -> Result<Reminded, StoreError> {
        let Some(channels) = &self.channels else {
            return Ok(Some(Vec::new()));
        };
        if !self.store.claim_reminders(day).await? {
            return Ok(None);
        }
        let offset = self.store.rotation_offset().await?;
        let cfg = self.live.get();
        let mut told = Vec::new();
        for (m, text) in crate::roster::remind::reminders(&cfg.roster, &cfg.calendar, offset, day) {
            let attempts = channels.notify_about(&m, "duty_reminder", &text).await;
            for a in &attempts {
                tracing::info!(member = %a.member, channel = a.channel, ok = a.ok, outcome = %a.outcome, day = %day, "duty reminder");
            }
            told.push((m.id.clone(), attempts));
        }
        Ok(Some(told))
    }

    /// Sends each day's reminders from `remind_at` on, until `stop`.
    pub async fn run_reminders(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Some(day) =
                crate::roster::remind::due(self.settings.remind_at.0, Timestamp::now())
            {
                if let Err(e) = self.remind(day).await {
                    tracing::debug!(error = %e, "reminders: cannot reach redis");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }
}

/// The admin socket's answer to `remind YYYY-MM-DD`.
pub fn answer(day: Date, r: Result<Reminded, StoreError>) -> String {
    match r {
        Err(e) => format!("error\nreminders for {day}: {e}\n"),
        Ok(None) => format!("ok\nreminders for {day} were sent already (once for all gateways)\n"),
        Ok(Some(told)) if told.is_empty() => {
            format!("ok\nreminders for {day}: nobody holds a duty block that day\n")
        }
        Ok(Some(told)) => {
            let mut text = format!("ok\nreminders for {day} sent to {} member(s)\n", told.len());
            for (m, attempts) in told {
                let how: Vec<String> = attempts
                    .iter()
                    .map(|a| format!("{} {}", a.channel, if a.ok { "ok" } else { "failed" }))
                    .collect();
                let how = match how.is_empty() {
                    true => "no text channel".to_string(),
                    false => how.join(", "),
                };
                text.push_str(&format!("{m}: {how}\n"));
            }
            text
        }
    }
}
