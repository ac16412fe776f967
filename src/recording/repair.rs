//! Start-up repair of recordings a crash left behind: their manifests still
//! say `recording`. The RIFF and data sizes are rewritten from the file's
//! length (a torn last sample frame is cut), the chunk hashes and file hash
//! computed, and the manifest finalised as `recovered`.

use std::fs::OpenOptions;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::verify::data_chunk;
use super::{file_sha256, manifest_path, ChunkChain, Manifest, Status};

/// A recording put right.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub wav: PathBuf,
    pub manifest: Manifest,
}

/// Repairs every unfinished recording under `dir`. Problems with one file
/// are logged and do not stop the others.
pub fn scan(dir: &Path) -> Vec<Recovered> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                match Manifest::read(&p) {
                    Ok(m) if m.status == Status::Recording => {
                        let wav = p.with_file_name(&m.wav);
                        match repair(&wav, m) {
                            Ok(r) => {
                                tracing::warn!(path = %wav.display(), call_id = %r.manifest.call_id, seconds = r.manifest.samples / 8000, "recovered a recording left by an unclean stop");
                                out.push(r);
                            }
                            Err(e) => {
                                tracing::error!(path = %wav.display(), error = %e, "cannot repair recording")
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(path = %p.display(), error = %e, "unreadable manifest skipped")
                    }
                }
            }
        }
    }
    out
}

pub fn repair(wav: &Path, mut m: Manifest) -> io::Result<Recovered> {
    let bytes = std::fs::read(wav)?;
    let (start, _) =
        data_chunk(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let data_len = (bytes.len().saturating_sub(start)) / 4 * 4;
    let mut chain = ChunkChain::new();
    chain.update(&bytes[start..start + data_len]);
    let mut f = OpenOptions::new().write(true).open(wav)?;
    f.set_len((start + data_len) as u64)?;
    f.seek(SeekFrom::Start(4))?;
    f.write_all(&((start - 8 + data_len) as u32).to_le_bytes())?;
    f.seek(SeekFrom::Start((start - 4) as u64))?;
    f.write_all(&(data_len as u32).to_le_bytes())?;
    f.sync_all()?;
    let modified = std::fs::metadata(wav)?
        .modified()
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok());
    m.status = Status::Recovered;
    m.ended = modified;
    m.samples = (data_len / 4) as u64;
    m.chunks = chain.finish();
    m.sha256 = Some(file_sha256(wav)?);
    m.note = Some("recovered after an unclean stop: audio up to the last flush".into());
    m.write(&manifest_path(wav))?;
    Ok(Recovered {
        wav: wav.to_path_buf(),
        manifest: m,
    })
}
