//! The manifest beside each recording (`<name>.json`).

use std::io;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being written (a crash leaves this; start-up repairs it).
    Recording,
    /// Finished normally.
    Complete,
    /// Stopped early by a write error; what was written is intact.
    Incomplete,
    /// Left by a crash and repaired at start-up.
    Recovered,
    /// Left by a crash with nothing usable (no header, no file): replaced by
    /// a valid WAV with no samples; what was there is kept aside (`note`).
    Lost,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Recording => "recording",
            Status::Complete => "complete",
            Status::Incomplete => "incomplete",
            Status::Recovered => "recovered",
            Status::Lost => "lost",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The WAV's file name (the manifest sits beside it).
    pub wav: String,
    pub call_id: String,
    pub ticket: String,
    pub status: Status,
    pub started: Timestamp,
    pub ended: Option<Timestamp>,
    pub sample_rate: u32,
    pub channels: u16,
    /// Samples per channel.
    pub samples: u64,
    /// Bytes of audio each chunk hash covers (one second).
    pub chunk_bytes: usize,
    /// `h0 = SHA-256(chunk0)`, `hi = SHA-256(h(i-1) || chunki)`, hex.
    pub chunks: Vec<String>,
    /// SHA-256 of the whole WAV file, once finished.
    pub sha256: Option<String>,
    pub note: Option<String>,
    /// Spans the caller had the call on hold (RFC 3264 §8.4), as offsets
    /// into the recording; silence is recorded meanwhile, so time stays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<Hold>,
}

/// One span on hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    pub start_ms: u64,
    /// `None`: still on hold when the call ended.
    pub end_ms: Option<u64>,
}

impl Manifest {
    pub fn started(wav: &Path, call_id: &str, ticket: &str, at: Timestamp) -> Manifest {
        Manifest {
            wav: wav
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            call_id: call_id.to_string(),
            ticket: ticket.to_string(),
            status: Status::Recording,
            started: at,
            ended: None,
            sample_rate: super::RATE,
            channels: 2,
            samples: 0,
            chunk_bytes: super::CHUNK_BYTES,
            chunks: Vec::new(),
            sha256: None,
            note: None,
            holds: Vec::new(),
        }
    }

    /// Written to a temporary file, fsynced, renamed over the old one, and
    /// the directory fsynced: a crash leaves the old manifest or the new one.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).expect("manifest serialises");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        super::sync_dir(path)
    }

    pub fn read(path: &Path) -> io::Result<Manifest> {
        let text = std::fs::read(path)?;
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}
