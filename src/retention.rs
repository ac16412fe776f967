//! Retention and legal hold (`[recording] retain_days`): a recording whose
//! ticket is final and not on hold is deleted once its day is older than
//! the retention period, its deletion written on the ticket's timeline
//! (the audit) with the hash it had. A recording whose ticket cannot be
//! found or read is kept: only what is known to be due goes.

use std::path::{Path, PathBuf};

use jiff::civil::Date;
use jiff::Timestamp;

use crate::recording::manifest::Manifest;
use crate::recording::manifest_path;
use crate::tickets::{actions, Store};

/// Manifests of the day directories (`YYYY/MM/DD`) before `cutoff`.
pub fn due(dir: &Path, cutoff: Date) -> Vec<PathBuf> {
    // The day a recording was made is its directory's: `…/YYYY/MM/DD/x.json`.
    let day = |p: &Path| {
        let mut parts = p
            .parent()?
            .iter()
            .rev()
            .map(|c| c.to_str()?.parse::<i16>().ok());
        let (d, m, y) = (parts.next()??, parts.next()??, parts.next()??);
        Date::new(y, i8::try_from(m).ok()?, i8::try_from(d).ok()?).ok()
    };
    crate::recording::files_under(dir, "json")
        .into_iter()
        .filter(|p| day(p).is_some_and(|d| d < cutoff))
        .collect()
}

/// One sweep at `now`: deletes what is due; returns the WAVs deleted.
pub async fn sweep(store: &Store, dir: &Path, retain_days: u32, now: Timestamp) -> Vec<PathBuf> {
    let mut deleted = Vec::new();
    if retain_days == 0 {
        return deleted;
    }
    let today = now.to_zoned_datetime(crate::court_time::court_tz()).date();
    let Ok(cutoff) = today.checked_sub(jiff::Span::new().days(i64::from(retain_days))) else {
        return deleted;
    };
    let dir = dir.to_path_buf();
    let due = tokio::task::spawn_blocking(move || due(&dir, cutoff))
        .await
        .unwrap_or_default();
    for manifest in due {
        let Ok(m) = Manifest::read(&manifest) else {
            continue;
        };
        let wav = manifest.with_file_name(&m.wav);
        let number = match m.ticket.as_str() {
            "" | "unnumbered" => store.number_for_call(&m.call_id).await.ok().flatten(),
            n => Some(n.to_string()),
        };
        let Some(number) = number else { continue };
        let Ok(t) = store.get(&number).await else {
            continue;
        };
        if !t.state.is_final() || t.register.hold.is_some() {
            continue;
        }
        let sha256 = m.sha256.clone().unwrap_or_default();
        // The audit first: a deletion is never unrecorded.
        let path = wav.display().to_string();
        let noted = store
            .act(
                &number,
                &actions::recording_deleted(&path, &sha256, retain_days),
            )
            .await;
        if noted.is_err() {
            continue;
        }
        let _ = std::fs::remove_file(&wav);
        let _ = std::fs::remove_file(manifest_path(&wav));
        tracing::info!(ticket = %number, path = %path, "recording deleted at the end of its retention");
        deleted.push(wav);
    }
    deleted
}

/// Sweeps every six hours (the first at once) until `stop`.
pub async fn run(
    store: Store,
    dir: PathBuf,
    retain_days: u32,
    stop: tokio_util::sync::CancellationToken,
) {
    if retain_days == 0 {
        return stop.cancelled().await;
    }
    loop {
        sweep(&store, &dir, retain_days, Timestamp::now()).await;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(6 * 3600)) => {}
        }
    }
}
