//! `hotline recording verify FILE`: recomputes the chained chunk hashes and
//! the file hash and names the first thing that does not match.

use std::path::Path;

use super::{file_sha256, manifest_path, ChunkChain, Manifest, CHUNK_BYTES};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("cannot read: {0}")]
    Read(String),
    #[error("not a WAV this gateway wrote: {0}")]
    Format(String),
    #[error("chunk {index} (seconds {index}-{next}) does not match", next = index + 1)]
    Chunk { index: usize },
    #[error("chunk {index} is missing: the audio ends early (truncated)")]
    Missing { index: usize },
    #[error("audio after chunk {index} that the manifest does not list")]
    Extra { index: usize },
    #[error("the file's SHA-256 does not match (header changed)")]
    FileHash,
}

/// Offset and length of the `data` chunk of a RIFF/WAVE file.
pub fn data_chunk(bytes: &[u8]) -> Result<(usize, usize), String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("no RIFF/WAVE header".into());
    }
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        if id == b"data" {
            return Ok((at + 8, len));
        }
        at += 8 + len + (len & 1);
    }
    Err("no data chunk".into())
}

pub fn verify(wav: &Path) -> Result<(), VerifyError> {
    let m = Manifest::read(&manifest_path(wav))
        .map_err(|e| VerifyError::Read(format!("manifest: {e}")))?;
    let bytes = std::fs::read(wav).map_err(|e| VerifyError::Read(e.to_string()))?;
    let (start, declared) = data_chunk(&bytes).map_err(VerifyError::Format)?;
    // Hash what is there, whatever the header claims.
    let data = &bytes[start.min(bytes.len())..];
    let _ = declared;
    let expected = m.samples as usize * 4;
    let mut chain = ChunkChain::new();
    chain.update(&data[..data.len().min(expected)]);
    let got = chain.finish();
    // The first chunk that differs, among those fully present.
    let whole = data.len().min(expected) / CHUNK_BYTES;
    if let Some(i) = (0..whole.min(got.len()).min(m.chunks.len())).find(|&i| got[i] != m.chunks[i])
    {
        return Err(VerifyError::Chunk { index: i });
    }
    if data.len() < expected {
        return Err(VerifyError::Missing { index: whole });
    }
    if got.len() != m.chunks.len() || got.last() != m.chunks.last() {
        return Err(VerifyError::Chunk {
            index: m.chunks.len().saturating_sub(1),
        });
    }
    if data.len() > expected {
        return Err(VerifyError::Extra {
            index: m.chunks.len().saturating_sub(1),
        });
    }
    match &m.sha256 {
        Some(want)
            if *want != file_sha256(wav).map_err(|e| VerifyError::Read(e.to_string()))? =>
        {
            Err(VerifyError::FileHash)
        }
        _ => Ok(()),
    }
}
