//! The transcriber (issue 34, docs/adr/0012-transcription.md): the caller's
//! channel of each call's recording as Simplified Chinese text on its
//! ticket, with the whereabouts it names. Never in the evidence's way: the
//! call's recording and ticket are complete without it; the ticket writer
//! queues the ticket when its recording is final (the store's
//! `transcribe:queue`, in arrival order, surviving restarts), and this task
//! drains it one job at a time through a worker process (Python,
//! faster-whisper, a local model; `nice`d, `threads` threads), claimed with
//! a lease, renewed while the job runs, so a dead worker's or a dead
//! gateway's job is taken again within [`LEASE`]. A
//! failure leaves `transcript: failed (reason)` and a retry, `attempts`
//! times in all; `[transcribe] enabled = false` turns it off.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio_util::sync::CancellationToken;

use crate::tickets::duty::holding;
use crate::tickets::model::{Change, Transcript};
use crate::tickets::whereabouts;
use crate::tickets::{Store, StoreError};

/// `[transcribe]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranscribeSettings {
    pub enabled: bool,
    /// The virtualenv's python (scripts/install-transcribe.sh).
    pub python: PathBuf,
    /// The worker script.
    pub worker: PathBuf,
    /// The joined model directory (model.bin, config.json, tokenizer.json).
    pub model_dir: PathBuf,
    /// CPU threads of the worker (1 or 2: calls come first).
    pub threads: u32,
    /// The worker's niceness (0 to 19).
    pub nice: u32,
    /// Attempts per recording before it is given up (`failed` stays).
    pub attempts: u32,
    /// The wait before a failed job is tried again, times its attempts.
    pub retry_seconds: u64,
    /// The longest one job may take (the worker is then restarted).
    pub timeout_seconds: u64,
}

impl Default for TranscribeSettings {
    fn default() -> Self {
        TranscribeSettings {
            enabled: true,
            python: PathBuf::from("../target/transcribe/bin/python"),
            worker: PathBuf::from("../scripts/transcribe/worker.py"),
            model_dir: PathBuf::from("../target/transcribe/whisper-base"),
            threads: 1,
            nice: 10,
            attempts: 3,
            retry_seconds: 60,
            timeout_seconds: 600,
        }
    }
}

impl TranscribeSettings {
    /// Problems as (key, what is wrong).
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if !(1..=2).contains(&self.threads) {
            p.push(("transcribe.threads", "1 or 2 (calls come first)".into()));
        }
        if self.nice > 19 {
            p.push(("transcribe.nice", "0 to 19".into()));
        }
        if self.attempts == 0 {
            p.push(("transcribe.attempts", "must be at least 1".into()));
        }
        if self.timeout_seconds == 0 {
            p.push(("transcribe.timeout_seconds", "must be at least 1".into()));
        }
        p
    }
}

/// What a claim holds the ticket for, renewed while the job runs
/// (`tickets::duty::holding`): a dead gateway's job is taken again within
/// this much, not its whole timeout.
const LEASE: Duration = Duration::from_secs(30);

/// How often the queue is looked at when it was empty.
const TICK: Duration = Duration::from_millis(500);
/// The worker's start (loading the model) may take this long.
const READY: Duration = Duration::from_secs(120);
/// The longest line the worker may answer with.
const MAX_LINE: usize = 1 << 20;
/// The longest transcript kept (characters).
const MAX_TEXT: usize = 20_000;

/// What the worker answers (one JSON line).
#[derive(Debug, Deserialize)]
struct Reply {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    text: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    duration: f64,
    #[serde(default)]
    model: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    ready: bool,
}

/// The worker process, started on demand and again after it died.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    async fn start(s: &TranscribeSettings) -> Result<Worker, String> {
        for (what, path) in [("python", &s.python), ("model_dir", &s.model_dir)] {
            if !path.exists() {
                return Err(format!(
                    "[transcribe] {what} {} is missing: install the transcriber \
                     (scripts/install-transcribe.sh; docs/deploy.md)",
                    path.display()
                ));
            }
        }
        let mut cmd = tokio::process::Command::new("nice");
        cmd.arg("-n")
            .arg(s.nice.to_string())
            .arg(&s.python)
            .arg(&s.worker)
            .arg(&s.model_dir)
            .arg(s.threads.to_string())
            .env("HF_HUB_OFFLINE", "1")
            .env("OMP_NUM_THREADS", s.threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", s.python.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the worker has no pipes".into());
        };
        let mut w = Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        match tokio::time::timeout(READY, w.read()).await {
            Ok(Ok(r)) if r.ready => Ok(w),
            Ok(Ok(r)) => Err(r.error.unwrap_or_else(|| "the worker did not start".into())),
            Ok(Err(e)) => Err(format!(
                "{e} (is it installed? scripts/install-transcribe.sh)"
            )),
            Err(_) => Err("the worker's model did not load in time".into()),
        }
    }

    /// One JSON line from the worker.
    async fn read(&mut self) -> Result<Reply, String> {
        let mut line = Vec::new();
        let n = (&mut self.stdout)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| format!("worker: {e}"))?;
        if n == 0 {
            return Err("the worker died".into());
        }
        serde_json::from_slice(&line).map_err(|e| format!("the worker's answer is unreadable: {e}"))
    }

    async fn transcribe(&mut self, wav: &str) -> Result<Reply, String> {
        let mut req = serde_json::json!({"wav": wav, "channel": 0}).to_string();
        req.push('\n');
        self.stdin
            .write_all(req.as_bytes())
            .await
            .map_err(|_| "the worker died".to_string())?;
        self.stdin
            .flush()
            .await
            .map_err(|_| "the worker died".to_string())?;
        self.read().await
    }
}

/// The transcriber task, one per gateway.
pub struct Transcriber {
    pub settings: TranscribeSettings,
    pub store: Store,
}

impl Transcriber {
    /// Drains the queue until `stop`, one job at a time.
    pub async fn run(self, stop: CancellationToken) {
        let mut worker: Option<Worker> = None;
        loop {
            let claimed = tokio::select! {
                _ = stop.cancelled() => break,
                c = self.store.claim_transcript(Timestamp::now().as_millisecond(), LEASE.as_millis() as i64) => c,
            };
            let (number, sha) = match claimed {
                Ok(Some(job)) => job,
                Ok(None) => {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(TICK) => continue,
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "transcribe: cannot reach redis");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(TICK * 4) => continue,
                    }
                }
            };
            tokio::select! {
                _ = stop.cancelled() => {
                    // Cut off: back in the queue at once rather than when
                    // its lease runs out.
                    let now = Timestamp::now().as_millisecond();
                    if let Err(e) = self.store.hold_transcript(&number, now).await {
                        tracing::debug!(error = %e, "transcribe: the lease will run out instead");
                    }
                    break;
                }
                r = holding(LEASE, |until| self.store.renew_transcript(&number, until), self.job(&mut worker, &number, &sha)) => {
                    if let Err(e) = r {
                        tracing::warn!(ticket = %number, error = %e, "transcribe: cannot save; the lease will run out");
                    }
                }
            }
        }
        if let Some(mut w) = worker {
            let _ = w.child.start_kill();
            let _ = w.child.wait().await;
        }
    }

    /// One ticket: its recording transcribed and saved, or the failure.
    async fn job(
        &self,
        worker: &mut Option<Worker>,
        number: &str,
        sha: &str,
    ) -> Result<(), StoreError> {
        let t = match self.store.get(number).await {
            Ok(t) => t,
            Err(StoreError::NotFound(_)) => return self.store.dequeue_transcript(number).await,
            Err(e) => return Err(e),
        };
        let attempts = t
            .register
            .transcript
            .as_ref()
            .filter(|x| x.recording_sha256 == sha)
            .map(|x| x.attempts)
            .unwrap_or(0);
        if t.register
            .transcript
            .as_ref()
            .is_some_and(|x| x.is_done() && x.recording_sha256 == sha)
        {
            return self.store.dequeue_transcript(number).await;
        }
        let Some(link) = t
            .register
            .recordings
            .iter()
            .find(|r| r.sha256 == sha)
            .cloned()
        else {
            return self
                .failed(
                    number,
                    sha,
                    attempts,
                    "the ticket has no such recording".into(),
                    true,
                )
                .await;
        };
        let path = link.path.clone();
        // The file must still be the evidence the ticket names.
        let hashed = tokio::task::spawn_blocking(move || {
            std::fs::read(&path).map(|b| crate::hex::encode(&Sha256::digest(&b)))
        })
        .await;
        match hashed {
            Ok(Ok(h)) if h == sha => {}
            Ok(Ok(_)) => {
                return self
                    .failed(
                        number,
                        sha,
                        attempts,
                        "the recording's hash differs from the ticket's".into(),
                        true,
                    )
                    .await
            }
            Ok(Err(e)) => {
                return self
                    .failed(number, sha, attempts, format!("recording: {e}"), false)
                    .await
            }
            Err(_) => {
                return self
                    .failed(number, sha, attempts, "hashing failed".into(), false)
                    .await
            }
        }
        if worker.is_none() {
            match Worker::start(&self.settings).await {
                Ok(w) => *worker = Some(w),
                Err(e) => return self.failed(number, sha, attempts, e, false).await,
            }
        }
        let Some(w) = worker.as_mut() else {
            return Ok(());
        };
        let limit = Duration::from_secs(self.settings.timeout_seconds);
        let reply = match tokio::time::timeout(limit, w.transcribe(&link.path)).await {
            Ok(r) => r,
            Err(_) => Err("timed out".to_string()),
        };
        let reply = match reply {
            Ok(r) if r.ok => r,
            Ok(r) => {
                let e = r.error.unwrap_or_else(|| "no text".into());
                return self.failed(number, sha, attempts, e, false).await;
            }
            Err(e) => {
                // Dead, stuck or talking nonsense: a new one next time.
                if let Some(mut w) = worker.take() {
                    let _ = w.child.start_kill();
                    let _ = w.child.wait().await;
                }
                return self.failed(number, sha, attempts, e, false).await;
            }
        };
        let text: String = reply.text.trim().chars().take(MAX_TEXT).collect();
        let transcript = Transcript {
            status: "done".into(),
            place: whereabouts::extract(&text),
            text,
            model: reply.model.chars().take(64).collect(),
            language: reply.language.chars().take(16).collect(),
            duration_s: if reply.duration.is_finite() {
                reply.duration.max(0.0)
            } else {
                0.0
            },
            recording_sha256: sha.to_string(),
            reason: None,
            attempts: attempts + 1,
            at: Timestamp::now(),
        };
        let mut change = Change::new("transcriber", "transcribed");
        // Once per recording, whatever restarts and replays happen.
        change.op_id = Some(format!("transcribed:{number}:{sha}"));
        change.details = serde_json::json!({
            "model": transcript.model, "language": transcript.language,
            "duration_s": transcript.duration_s, "chars": transcript.text.chars().count(),
            "recording_sha256": sha, "whereabouts": transcript.place,
        });
        self.store
            .change(number, &change, move |r| {
                if r.intake.whereabouts.is_none() || r.intake.whereabouts_machine {
                    if let Some(p) = &transcript.place {
                        r.intake.whereabouts = Some(p.clone());
                        r.intake.whereabouts_machine = true;
                    }
                }
                r.transcript = Some(transcript.clone());
            })
            .await?;
        tracing::info!(ticket = %number, "transcribed");
        self.store.dequeue_transcript(number).await
    }

    /// A failed attempt on the ticket; tried again later unless `final_`
    /// or out of attempts.
    async fn failed(
        &self,
        number: &str,
        sha: &str,
        attempts: u32,
        reason: String,
        final_: bool,
    ) -> Result<(), StoreError> {
        let attempts = attempts + 1;
        let reason: String = reason.chars().take(300).collect();
        tracing::warn!(ticket = %number, attempt = attempts, reason = %reason, "transcription failed");
        let again = !final_ && attempts < self.settings.attempts;
        let mut change = Change::new("transcriber", "transcript_failed");
        change.details = serde_json::json!({"reason": reason, "attempt": attempts, "retry": again});
        let t = Transcript {
            status: "failed".into(),
            text: String::new(),
            place: None,
            model: String::new(),
            language: String::new(),
            duration_s: 0.0,
            recording_sha256: sha.to_string(),
            reason: Some(reason),
            attempts,
            at: Timestamp::now(),
        };
        self.store
            .change(number, &change, move |r| {
                // Never over a transcript made meanwhile.
                if !r.transcript.as_ref().is_some_and(|x| x.is_done()) {
                    r.transcript = Some(t.clone());
                }
            })
            .await?;
        if again {
            // A dead worker's job goes again at once (a new worker); others wait.
            let wait = if attempts == 1 {
                0
            } else {
                self.settings.retry_seconds * u64::from(attempts - 1)
            };
            let at = Timestamp::now().as_millisecond() + (wait * 1000) as i64;
            self.store.hold_transcript(number, at).await
        } else {
            self.store.dequeue_transcript(number).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_bad_values_name_their_key() {
        assert!(TranscribeSettings::default().check().is_empty());
        let s = TranscribeSettings {
            threads: 4,
            nice: 30,
            attempts: 0,
            ..Default::default()
        };
        let keys: Vec<_> = s.check().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "transcribe.threads",
                "transcribe.nice",
                "transcribe.attempts"
            ]
        );
    }

    #[test]
    fn a_worker_reply_parses_and_a_bad_one_does_not() {
        let r: Reply = serde_json::from_str(
            r#"{"ok": true, "text": "在辽宁路", "language": "zh", "duration": 3.2, "model": "whisper-base", "seconds": 1.0}"#,
        )
        .unwrap();
        assert!(r.ok && r.text == "在辽宁路");
        assert!(serde_json::from_str::<Reply>("not json").is_err());
    }
}
