//! The local write-ahead journal of ticket operations. Every operation from
//! the call path is appended here (JSON lines, fsynced) before it is sent to
//! Redis, so neither a Redis outage nor a crash loses one; an offset file
//! says how far Redis has taken them. Operations carry ids, so applying one
//! twice (a crash between Redis and the offset) changes nothing.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::model::{Caller, Category, RecordingLink};

/// An operation of the call path on a call's ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The call was answered: its ticket exists from now on.
    Created {
        id: String,
        call_id: String,
        /// The call's own id (one per answered call, never reused): its
        /// ticket's key. Empty in journals from before it existed.
        #[serde(default)]
        call: String,
        at: Timestamp,
        caller: Caller,
    },
    /// The call ended.
    CallEnded {
        id: String,
        call_id: String,
        #[serde(default)]
        call: String,
        at: Timestamp,
        seconds: f64,
        how: String,
    },
    /// The caller answered a question of the intake.
    Intake {
        id: String,
        call_id: String,
        #[serde(default)]
        call: String,
        at: Timestamp,
        step: IntakeStep,
    },
    /// A recording was finalised (or recovered after a crash, or stopped
    /// by a write error): link it, with its hash, on the ticket.
    Recording {
        id: String,
        call_id: String,
        #[serde(default)]
        call: String,
        at: Timestamp,
        link: RecordingLink,
        status: String,
        note: Option<String>,
    },
    /// A person joined to the caller, or the try.
    Connection {
        id: String,
        call_id: String,
        #[serde(default)]
        call: String,
        /// The ticket, when known (a callback's); else the call's.
        #[serde(default)]
        ticket: String,
        at: Timestamp,
        step: ConnectionStep,
    },
}

/// A step of a bridge or a callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum ConnectionStep {
    /// These members are rung.
    Ringing {
        kind: String,
        members: Vec<String>,
        offset_ms: u64,
    },
    /// A member took it (key 1): for a bridge, the 签收.
    Connected {
        kind: String,
        member: String,
        channel: String,
        offset_ms: u64,
    },
    /// A key on a bridged leg (`caller` or `officer`).
    Key {
        side: String,
        key: char,
        offset_ms: u64,
    },
    Ended {
        member: String,
        seconds: f64,
        how: String,
        /// A callback's own recording (a bridge is in the caller's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recording: Option<RecordingLink>,
    },
    /// Nobody was connected, and why.
    NotConnected { kind: String, why: String },
}

impl Op {
    pub fn id(&self) -> &str {
        match self {
            Op::Created { id, .. }
            | Op::CallEnded { id, .. }
            | Op::Intake { id, .. }
            | Op::Recording { id, .. }
            | Op::Connection { id, .. } => id,
        }
    }

    /// The call's own id (empty for operations journaled before it, or a
    /// recording recovered without one).
    pub fn call(&self) -> &str {
        match self {
            Op::Created { call, .. }
            | Op::CallEnded { call, .. }
            | Op::Intake { call, .. }
            | Op::Recording { call, .. }
            | Op::Connection { call, .. } => call,
        }
    }

    pub fn call_id(&self) -> &str {
        match self {
            Op::Created { call_id, .. }
            | Op::CallEnded { call_id, .. }
            | Op::Intake { call_id, .. }
            | Op::Recording { call_id, .. }
            | Op::Connection { call_id, .. } => call_id,
        }
    }
}

/// A step of the intake, as it happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum IntakeStep {
    Category {
        category: Category,
        urgent: bool,
        /// A person is rung for the caller at once (the bridge): see the
        /// writer for when the ticket opens then.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        person: bool,
    },
    /// A partner (`[partners]`, by its asserted number) called: the
    /// category is `partner`, urgent, and the ticket names the partner in
    /// clear (a police station or a court is no informant).
    Partner {
        name: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        person: bool,
    },
    CaseNumber {
        number: String,
    },
    MessageStarted {
        offset_ms: u64,
    },
    MessageEnded {
        offset_ms: u64,
    },
    NoFollowUp,
}

/// A fresh operation id.
pub fn op_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The journal file and its applied offset.
pub struct Journal {
    file: File,
    offset_path: PathBuf,
    /// Bytes of the file already applied to Redis.
    applied: u64,
    /// Operations not yet applied, with their length in the file (`None`:
    /// a line that did not parse, skipped when reached).
    pending: VecDeque<(Option<Op>, u64)>,
    /// The file's bound in bytes: an append past it is refused.
    limit: u64,
}

impl Journal {
    /// Opens (or creates) `dir/tickets.journal`, loading what Redis has not
    /// taken yet. A torn last line (a crash mid-write) is cut off.
    pub fn open(dir: &Path) -> io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("tickets.journal");
        let offset_path = dir.join("tickets.journal.applied");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        let applied = std::fs::read_to_string(&offset_path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
            .min(len);
        file.seek(SeekFrom::Start(applied))?;
        let mut pending = VecDeque::new();
        let mut good = applied;
        let mut reader = BufReader::new(&file);
        // Bytes, not text: a crash may have cut a character in two.
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            match serde_json::from_slice::<Op>(&line[..n - 1]) {
                Ok(op) => pending.push_back((Some(op), n as u64)),
                Err(e) => {
                    tracing::error!(error = %e, offset = good, "unreadable journal line will be skipped");
                    pending.push_back((None, n as u64));
                }
            }
            good += n as u64;
        }
        if good < len {
            tracing::warn!(bytes = len - good, "cutting a torn journal line");
            file.set_len(good)?;
        }
        Ok(Journal {
            file,
            offset_path,
            applied,
            pending,
            limit: u64::MAX,
        })
    }

    /// Bounds the file (`[redis] journal_max_mb`).
    pub fn set_limit(&mut self, bytes: u64) {
        self.limit = bytes;
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The file's length: what waits, and what was applied since it was
    /// last emptied.
    pub fn bytes(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }

    /// Appends and fsyncs; only then are the operations pending. Refused
    /// (nothing written) when it would take the file past its bound.
    pub fn append(&mut self, ops: &[Op]) -> io::Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        let mut lens = Vec::with_capacity(ops.len());
        for op in ops {
            let before = buf.len();
            serde_json::to_writer(&mut buf, op).expect("op serialises");
            buf.push(b'\n');
            lens.push((buf.len() - before) as u64);
        }
        let before = self.file.metadata()?.len();
        if before.saturating_add(buf.len() as u64) > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("the journal is at its bound of {} bytes", self.limit),
            ));
        }
        if let Err(e) = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data())
        {
            // Leave no fragment for the next batch to be appended after.
            let _ = self.file.set_len(before);
            return Err(e);
        }
        for (op, len) in ops.iter().cloned().zip(lens) {
            self.pending.push_back((Some(op), len));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Up to `n` entries from the front: how many there are, and the
    /// operations among them (an unreadable line is an entry without one).
    pub fn front(&self, n: usize) -> (usize, Vec<Op>) {
        let entries: Vec<_> = self.pending.iter().take(n).collect();
        let ops = entries.iter().filter_map(|(op, _)| op.clone()).collect();
        (entries.len(), ops)
    }

    /// The first `n` pending entries reached Redis (the offset is written
    /// once for all of them). When none is left the file is emptied.
    pub fn advance_by(&mut self, n: usize) -> io::Result<()> {
        let mut moved = false;
        for _ in 0..n {
            let Some((_, len)) = self.pending.pop_front() else {
                break;
            };
            self.applied += len;
            moved = true;
        }
        if !moved {
            return Ok(());
        }
        if self.pending.is_empty() {
            self.file.set_len(0)?;
            self.applied = 0;
        }
        // Written whole and renamed into place: a crash leaves the old
        // offset or the new one, never a torn one. It is not fsynced (that
        // would be two syncs an operation): after a power cut it may be
        // older, or unreadable (then 0), and the operations after it are
        // sent to Redis again, which changes nothing (op ids, one ticket a
        // Call-ID). The journal's lines themselves are fsynced in `append`.
        let tmp = self.offset_path.with_extension("tmp");
        std::fs::write(&tmp, self.applied.to_string())?;
        std::fs::rename(&tmp, &self.offset_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(n: u32) -> Op {
        Op::CallEnded {
            id: format!("op{n}"),
            call_id: format!("c{n}"),
            call: format!("k{n}"),
            at: Timestamp::UNIX_EPOCH,
            seconds: 1.5,
            how: "caller_bye".into(),
        }
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hotline-journal-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn survives_reopen_and_resumes_where_redis_stopped() {
        let d = dir("reopen");
        let mut j = Journal::open(&d).unwrap();
        j.append(&[op(1), op(2), op(3)]).unwrap();
        j.advance_by(1).unwrap();
        drop(j);
        let mut j = Journal::open(&d).unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(j.front(1), (1, vec![op(2)]));
        assert_eq!(j.front(10), (2, vec![op(2), op(3)]));
        j.advance_by(2).unwrap();
        assert!(j.is_empty());
        // Everything applied: the file is emptied.
        assert_eq!(
            std::fs::metadata(d.join("tickets.journal")).unwrap().len(),
            0
        );
        drop(j);
        assert!(Journal::open(&d).unwrap().is_empty());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn torn_last_line_is_cut() {
        let d = dir("torn");
        let mut j = Journal::open(&d).unwrap();
        j.append(&[op(1)]).unwrap();
        drop(j);
        let mut f = OpenOptions::new()
            .append(true)
            .open(d.join("tickets.journal"))
            .unwrap();
        f.write_all(b"{\"op\":\"call_ended\",\"id\":").unwrap();
        drop(f);
        let mut j = Journal::open(&d).unwrap();
        assert_eq!(j.len(), 1);
        j.append(&[op(2)]).unwrap();
        // An unreadable line in the middle is an entry without an operation.
        let mut f = OpenOptions::new()
            .append(true)
            .open(d.join("tickets.journal"))
            .unwrap();
        f.write_all(b"not json\n").unwrap();
        drop(f);
        j.append(&[op(3)]).unwrap();
        drop(j);
        let mut j = Journal::open(&d).unwrap();
        assert_eq!(j.front(10), (4, vec![op(1), op(2), op(3)]));
        j.advance_by(2).unwrap();
        assert_eq!(j.front(10), (2, vec![op(3)]));
        drop(j);
        let j = Journal::open(&d).unwrap();
        let ids: Vec<String> = j
            .pending
            .iter()
            .flat_map(|(o, _)| o.as_ref().map(|o| o.id().to_string()))
            .collect();
        assert_eq!(ids, ["op3"]);
        std::fs::remove_dir_all(d).unwrap();
    }
}
