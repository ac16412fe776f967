//! Start-up repair of recordings a crash left behind: their manifests still
//! say `recording`. The RIFF and data sizes are rewritten from the file's
//! length (a torn last sample frame is cut), the chunk hashes and file hash
//! computed, and the manifest finalised as `recovered`. A file with nothing
//! usable (no header, missing) becomes a valid WAV with no samples, what was
//! there kept aside as `<name>.wav.lost`, and the manifest says `lost` and
//! why. A WAV without a manifest (a crash between the two) gets one. Every
//! repair ends in a final state, so no file is reported twice.

use std::fs::OpenOptions;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::verify::data_chunk;
use super::{file_sha256, manifest_path, ChunkChain, Manifest, Status};

/// A recording put right (`manifest.status`: recovered or lost).
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
            } else if p.extension().is_some_and(|x| x == "wav") && !manifest_path(&p).exists() {
                // Created, then the crash before its manifest: no call to
                // name, the ticket (if any) is in the file's name.
                let ticket = p
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.split('_').next())
                    .unwrap_or("")
                    .to_string();
                let m = Manifest::started(&p, "", &ticket, Timestamp::now());
                match repair(&p, m) {
                    Ok(r) => {
                        tracing::warn!(path = %p.display(), status = r.manifest.status.as_str(), "a recording without a manifest got one");
                        out.push(r);
                    }
                    Err(e) => {
                        tracing::error!(path = %p.display(), error = %e, "cannot repair recording")
                    }
                }
            } else if p.extension().is_some_and(|x| x == "json") {
                match Manifest::read(&p) {
                    Ok(m) if m.status == Status::Recording => {
                        let wav = p.with_file_name(&m.wav);
                        match repair(&wav, m) {
                            Ok(r) => {
                                tracing::warn!(path = %wav.display(), call_id = %r.manifest.call_id, status = r.manifest.status.as_str(), seconds = r.manifest.samples / 8000, "recovered a recording left by an unclean stop");
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
    let bytes = match std::fs::read(wav) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let (start, _) = match data_chunk(&bytes) {
        Ok(found) => found,
        Err(why) => return lost(wav, m, &bytes, &why),
    };
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

/// Nothing usable: a valid WAV with no samples in its place, what was
/// there (if anything) kept aside, the manifest final as `lost`.
fn lost(wav: &Path, mut m: Manifest, bytes: &[u8], why: &str) -> io::Result<Recovered> {
    let mut note = format!("lost: {why} (the process died before any audio reached the file)");
    if !bytes.is_empty() {
        let mut aside = wav.as_os_str().to_owned();
        aside.push(".lost");
        let aside = PathBuf::from(aside);
        std::fs::rename(wav, &aside)?;
        note.push_str(&format!(
            "; its {} bytes are kept as {}",
            bytes.len(),
            aside
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
    }
    {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(wav)?;
        f.write_all(&super::wav_header(0))?;
        f.sync_all()?;
    }
    super::sync_dir(wav)?;
    m.status = Status::Lost;
    m.ended = Some(Timestamp::now());
    m.samples = 0;
    m.chunks = Vec::new();
    m.sha256 = Some(file_sha256(wav)?);
    m.note = Some(note);
    m.write(&manifest_path(wav))?;
    Ok(Recovered {
        wav: wav.to_path_buf(),
        manifest: m,
    })
}
