//! Call recordings as evidence (rules 第十四条, 第二十七条(四)): one stereo
//! 8 kHz 16-bit WAV per call (caller left, gateway right, one clock),
//! flushed every second so a crash costs at most a second, and a manifest
//! beside it whose chained SHA-256 of each one-second chunk makes tampering
//! visible (`verify`). Files left by a crash are repaired at start-up
//! (`repair`). Knows nothing of SIP or tickets.

pub mod manifest;
pub mod repair;
pub mod verify;

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::media::prompt::FRAME;
use crate::media::rtp::FrameSink;
pub use manifest::{Manifest, Status};

/// Sample rate of every recording.
pub const RATE: u32 = 8000;
/// Bytes of one second of stereo 16-bit audio: one hash chunk.
pub const CHUNK_BYTES: usize = RATE as usize * 4;

/// `dir/YYYY/MM/DD/<ticket>_<hash of Call-ID>.wav`, the date in the court's
/// time zone.
pub fn path_for(dir: &Path, at: Timestamp, ticket: &str, call_id: &str) -> PathBuf {
    let day = at.to_zoned_datetime(crate::court_time::court_tz());
    let hash = crate::hex::encode(&Sha256::digest(call_id.as_bytes())[..6]);
    dir.join(format!("{:04}", day.year()))
        .join(format!("{:02}", day.month()))
        .join(format!("{:02}", day.day()))
        .join(format!("{ticket}_{hash}.wav"))
}

/// Every file under `dir` (recursively) whose name ends in `.ext`, sorted.
pub fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for p in std::fs::read_dir(&d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
        {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The manifest's path: the WAV's with `.json`.
pub fn manifest_path(wav: &Path) -> PathBuf {
    wav.with_extension("json")
}

/// Chained chunk hashing: `h0 = H(chunk0)`, `hi = H(h(i-1) || chunki)`.
#[derive(Debug, Clone, Default)]
pub struct ChunkChain {
    current: Sha256,
    filled: usize,
    prev: Option<[u8; 32]>,
    pub chunks: Vec<String>,
}

impl ChunkChain {
    pub fn new() -> ChunkChain {
        ChunkChain::default()
    }

    fn start_chunk(&mut self) {
        self.current = Sha256::new();
        if let Some(p) = self.prev {
            self.current.update(p);
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.filled == 0 {
                self.start_chunk();
            }
            let take = (CHUNK_BYTES - self.filled).min(data.len());
            self.current.update(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == CHUNK_BYTES {
                self.close_chunk();
            }
        }
    }

    fn close_chunk(&mut self) {
        let h: [u8; 32] = std::mem::take(&mut self.current).finalize().into();
        self.chunks.push(crate::hex::encode(&h));
        self.prev = Some(h);
        self.filled = 0;
    }

    /// Closes a partial last chunk.
    pub fn finish(mut self) -> Vec<String> {
        if self.filled > 0 {
            self.close_chunk();
        }
        self.chunks
    }
}

/// What a finished recording left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub path: PathBuf,
    pub duration_ms: u64,
    pub sha256: String,
    pub status: Status,
    /// Why the recording stopped early, if it did.
    pub problem: Option<String>,
}

/// The 44-byte header of a stereo 8 kHz 16-bit PCM WAV holding
/// `data_bytes` of samples (what hound writes for this format).
pub(crate) fn wav_header(data_bytes: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_bytes).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&2u16.to_le_bytes()); // channels
    h[24..28].copy_from_slice(&RATE.to_le_bytes());
    h[28..32].copy_from_slice(&(RATE * 4).to_le_bytes()); // bytes a second
    h[32..34].copy_from_slice(&4u16.to_le_bytes()); // bytes a frame
    h[34..36].copy_from_slice(&16u16.to_le_bytes()); // bits a sample
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// The WAV being written: samples appended through a buffer, the sizes in
/// the header rewritten at each flush (once a second) and at the end.
struct WavFile {
    out: BufWriter<File>,
    data_bytes: u32,
}

impl WavFile {
    /// The header goes to the file (and the disk) before any audio: a crash
    /// at any instant leaves a WAV that opens.
    fn new(mut file: File) -> io::Result<WavFile> {
        file.write_all(&wav_header(0))?;
        file.sync_data()?;
        // 8 KB: a write every 12 frames, one allocation of jemalloc's
        // small classes per call (16 KB was a large one, an extent each).
        let out = BufWriter::with_capacity(8 * 1024, file);
        Ok(WavFile { out, data_bytes: 0 })
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.data_bytes = self.data_bytes.saturating_add(bytes.len() as u32);
        Ok(())
    }

    /// Buffered samples to the file, then the header's sizes: one
    /// positioned write of bytes 4 to 44 (the RIFF size, the unchanged
    /// format chunk, the data size), which leaves the file's offset at its
    /// end for the next samples.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let header = wav_header(self.data_bytes);
        self.out.get_ref().write_all_at(&header[4..44], 4)
    }
}

/// Writes one call. Implements [`FrameSink`] for the media session.
pub struct Recorder {
    path: PathBuf,
    writer: Option<WavFile>,
    manifest: Manifest,
    chain: ChunkChain,
    frames: u64,
    since_flush: u32,
    problem: Option<String>,
    /// A sync of the WAV is running on the blocking pool (one at a time).
    syncing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Syncs started (for the tests).
    syncs: u64,
}

/// Frames between header rewrites: 40 × 20 ms = 0.8 s, so that a crash
/// loses at most a second of audio with the 80 ms reorder delay.
const FLUSH_EVERY: u32 = 40;
/// Frames between syncs of the WAV to the disk (4.8 s, right after a
/// flush): after a power cut the file holds what the last sync saw, and its
/// manifest (`recording`, then repaired) says so, never more.
const SYNC_EVERY: u64 = FLUSH_EVERY as u64 * 6;

impl Recorder {
    /// Creates the file (mode 0600; never over an existing one: a second
    /// recording of the same call gets `_2`, `_3`, ...) and a manifest
    /// saying it is being written.
    pub fn create(path: PathBuf, call_id: &str, ticket: &str) -> io::Result<Recorder> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true).read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut path = path;
        let mut n = 1;
        let file = loop {
            match opts.open(&path) {
                Ok(f) => break f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => {
                    n += 1;
                    path.set_file_name(format!("{stem}_{n}.wav"));
                }
                Err(e) => return Err(e),
            }
        };
        let writer = WavFile::new(file)?;
        let manifest = Manifest::started(&path, call_id, ticket, Timestamp::now());
        // The manifest (its write fsyncs the directory, and with it the
        // WAV's entry): from here a crash leaves something repair finishes.
        manifest.write(&manifest_path(&path))?;
        Ok(Recorder {
            path,
            writer: Some(writer),
            manifest,
            chain: ChunkChain::new(),
            frames: 0,
            since_flush: 0,
            problem: None,
            syncing: Default::default(),
            syncs: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&mut self, what: &str, e: impl std::fmt::Display) {
        let msg = format!("{what}: {e}");
        tracing::error!(path = %self.path.display(), error = %msg, "recording stopped; the call goes on");
        self.problem = Some(msg);
        // What can still be written, and the sizes in the header.
        if let Some(mut w) = self.writer.take() {
            let _ = w.flush();
        }
    }

    /// Starts a sync of what was flushed so far, off the media task (on
    /// the blocking pool; none outside a runtime, nor while one runs).
    fn sync_soon(&mut self) {
        use std::sync::atomic::Ordering;
        let Some(w) = self.writer.as_ref() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.syncing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (file, busy) = (w.out.get_ref().try_clone(), self.syncing.clone());
        self.syncs += 1;
        rt.spawn_blocking(move || {
            if let Ok(f) = file {
                let _ = f.sync_data();
            }
            busy.store(false, Ordering::Release);
        });
    }

    /// Finalises the WAV (synced to the disk first: the manifest's hash and
    /// `complete` never speak of data still in memory) and the manifest
    /// (with the file's SHA-256). Blocking: run it off the runtime.
    pub fn finish(mut self) -> Finished {
        if let Some(mut w) = self.writer.take() {
            if let Err(e) = w.flush().and_then(|_| w.out.get_ref().sync_data()) {
                self.problem.get_or_insert(format!("finalise: {e}"));
            }
        }
        let sha256 = file_sha256(&self.path).unwrap_or_default();
        let status = if self.problem.is_some() {
            Status::Incomplete
        } else {
            Status::Complete
        };
        let m = &mut self.manifest;
        m.status = status;
        m.ended = Some(Timestamp::now());
        m.samples = self.frames * FRAME as u64;
        m.chunks = std::mem::take(&mut self.chain).finish();
        m.sha256 = Some(sha256.clone());
        m.note = self.problem.clone();
        if let Err(e) = m.write(&manifest_path(&self.path)) {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the recording manifest");
        }
        Finished {
            duration_ms: self.frames * 20,
            path: self.path,
            sha256,
            status,
            problem: self.problem,
        }
    }
}

impl FrameSink for Recorder {
    fn hold(&mut self, held: bool) {
        let at = self.frames * 20;
        let holds = &mut self.manifest.holds;
        match holds.last_mut() {
            Some(h) if !held && h.end_ms.is_none() => h.end_ms = Some(at),
            _ if held => holds.push(manifest::Hold {
                start_ms: at,
                end_ms: None,
            }),
            _ => {}
        }
    }

    fn frame(&mut self, left: &[i16; FRAME], right: &[i16; FRAME]) {
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        // Interleaved once: the same bytes go to the file and the hash.
        let mut bytes = [0u8; FRAME * 4];
        for ((out, l), r) in bytes.chunks_exact_mut(4).zip(left).zip(right) {
            out[..2].copy_from_slice(&l.to_le_bytes());
            out[2..].copy_from_slice(&r.to_le_bytes());
        }
        if let Err(e) = w.write(&bytes) {
            return self.fail("write", e);
        }
        self.chain.update(&bytes);
        self.frames += 1;
        self.since_flush += 1;
        if self.since_flush >= FLUSH_EVERY {
            self.since_flush = 0;
            if let Err(e) = w.flush() {
                return self.fail("flush", e);
            }
        }
        if self.frames % SYNC_EVERY == 0 {
            self.sync_soon();
        }
    }
}

/// Fsyncs the directory holding `path`, so that its entry (a new file, a
/// rename) survives a crash of the machine.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

pub fn file_sha256(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut HashWriter(&mut h))?;
    Ok(crate::hex::encode(&h.finalize()))
}

struct HashWriter<'a>(&'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hotline-rec-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_wav_is_synced_during_the_call_off_the_media_task() {
        let dir = tmp("sync");
        let path = path_for(&dir, Timestamp::now(), "2026-000042", "sync@x");
        let mut r = Recorder::create(path, "sync@x", "2026-000042").unwrap();
        let frame = [1i16; FRAME];
        for _ in 0..SYNC_EVERY * 3 {
            r.frame(&frame, &frame);
        }
        // One sync every 4.8 s of audio, skipped only while one still runs.
        assert!((1..=3).contains(&r.syncs), "{} syncs", r.syncs);
        let done = tokio::task::spawn_blocking(move || r.finish())
            .await
            .unwrap();
        assert_eq!(done.status, Status::Complete);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn chain_matches_a_direct_computation() {
        let data: Vec<u8> = (0..CHUNK_BYTES * 2 + 100)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut c = ChunkChain::new();
        for piece in data.chunks(640) {
            c.update(piece);
        }
        let chunks = c.finish();
        let h0: [u8; 32] = Sha256::digest(&data[..CHUNK_BYTES]).into();
        let mut s = Sha256::new();
        s.update(h0);
        s.update(&data[CHUNK_BYTES..2 * CHUNK_BYTES]);
        let h1: [u8; 32] = s.finalize().into();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0], crate::hex::encode(&h0));
        assert_eq!(chunks[1], crate::hex::encode(&h1));
    }

    #[test]
    fn recorder_writes_a_stereo_wav_and_manifest() {
        let dir = tmp("basic");
        let path = path_for(
            &dir,
            "2026-11-27T16:30:00Z".parse().unwrap(),
            "2026-000001",
            "c@x",
        );
        // 00:30 on the 28th in Qingdao.
        assert!(
            path.to_string_lossy().contains("2026/11/28/2026-000001_"),
            "{}",
            path.display()
        );
        let mut r = Recorder::create(path.clone(), "c@x", "2026-000001").unwrap();
        let left = [100i16; FRAME];
        let right = [-7i16; FRAME];
        for _ in 0..60 {
            r.frame(&left, &right);
        }
        let done = r.finish();
        assert_eq!((done.duration_ms, done.status), (1200, Status::Complete));
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().channels, 2);
        let s: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(s.len(), 60 * FRAME * 2);
        assert_eq!(&s[..4], &[100, -7, 100, -7]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let m = Manifest::read(&manifest_path(&path)).unwrap();
        assert_eq!(
            (m.status, m.samples, m.chunks.len()),
            (Status::Complete, 9600, 2)
        );
        assert_eq!(m.sha256.as_deref(), Some(done.sha256.as_str()));
        assert!(verify::verify(&path).is_ok());
        // The same call recorded again never overwrites the first.
        let again = Recorder::create(path.clone(), "c@x", "2026-000001").unwrap();
        assert!(
            again.path().to_string_lossy().ends_with("_2.wav"),
            "{}",
            again.path().display()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A 3.5 s recording with varied audio, and its bytes.
    fn sample(tag: &str) -> (PathBuf, PathBuf) {
        let dir = tmp(tag);
        let path = dir.join("r.wav");
        let mut r = Recorder::create(path.clone(), "v@x", "2026-000009").unwrap();
        for i in 0..175i16 {
            r.frame(&[i; FRAME], &[i.wrapping_mul(3); FRAME]);
        }
        r.finish();
        (dir, path)
    }

    #[test]
    fn verify_finds_the_first_bad_chunk() {
        use verify::{verify, VerifyError};
        // One byte flipped in the third second.
        let (dir, path) = sample("flip");
        let mut b = std::fs::read(&path).unwrap();
        b[44 + 2 * CHUNK_BYTES + 17] ^= 1;
        std::fs::write(&path, &b).unwrap();
        assert_eq!(verify(&path), Err(VerifyError::Chunk { index: 2 }));
        // Truncated in the second second.
        let (dir2, path2) = sample("trunc");
        let b = std::fs::read(&path2).unwrap();
        std::fs::write(&path2, &b[..44 + CHUNK_BYTES + 1000]).unwrap();
        assert_eq!(verify(&path2), Err(VerifyError::Missing { index: 1 }));
        // A second of other audio spliced in after the first.
        let (dir3, path3) = sample("splice");
        let b = std::fs::read(&path3).unwrap();
        let mut spliced = b[..44 + CHUNK_BYTES].to_vec();
        spliced.extend(std::iter::repeat_n(7u8, CHUNK_BYTES));
        spliced.extend_from_slice(&b[44 + CHUNK_BYTES..]);
        std::fs::write(&path3, &spliced).unwrap();
        assert_eq!(verify(&path3), Err(VerifyError::Chunk { index: 1 }));
        // The header edited: the chunks hold, the file hash does not.
        let (dir4, path4) = sample("header");
        let mut b = std::fs::read(&path4).unwrap();
        b[24] ^= 1; // sample rate
        std::fs::write(&path4, &b).unwrap();
        assert_eq!(verify(&path4), Err(VerifyError::FileHash));
        for d in [dir, dir2, dir3, dir4] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn repair_fixes_sizes_of_a_crashed_file() {
        let dir = tmp("repair");
        let path = dir.join("c.wav");
        let mut r = Recorder::create(path.clone(), "crash@x", "2026-000010").unwrap();
        for i in 0..120i16 {
            r.frame(&[i; FRAME], &[0; FRAME]);
        }
        // A crash: no finish; the last flush was at frame 100.
        std::mem::forget(r);
        let recovered = repair::scan(&dir);
        assert_eq!(recovered.len(), 1);
        let m = &recovered[0].manifest;
        assert_eq!(
            (m.status, m.call_id.as_str()),
            (Status::Recovered, "crash@x")
        );
        assert!(m.samples >= 100 * FRAME as u64, "{}", m.samples);
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.duration() as u64, m.samples);
        assert!(verify::verify(&path).is_ok());
        // A second scan finds nothing left to do.
        assert!(repair::scan(&dir).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_new_recording_is_a_valid_wav_before_any_audio() {
        let dir = tmp("fresh");
        let path = dir.join("f.wav");
        let r = Recorder::create(path.clone(), "fresh@x", "2026-000011").unwrap();
        // A crash right after the call was answered: the header is there.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 44);
        assert!(hound::WavReader::open(&path).is_ok());
        assert_eq!(
            Manifest::read(&manifest_path(&path)).unwrap().status,
            Status::Recording
        );
        std::mem::forget(r);
        let rec = repair::scan(&dir);
        assert_eq!(rec[0].manifest.status, Status::Recovered);
        assert_eq!(rec[0].manifest.samples, 0);
        assert!(verify::verify(&path).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn repair_ends_in_a_final_state_at_every_cut() {
        // A whole recording of 1.5 s, then copies cut at every interesting
        // offset, each with a manifest still saying `recording`.
        let src = tmp("cuts-src");
        let full = src.join("full.wav");
        let mut r = Recorder::create(full.clone(), "cut@x", "2026-000012").unwrap();
        for i in 0..75i16 {
            r.frame(&[i; FRAME], &[-i; FRAME]);
        }
        r.finish();
        let bytes = std::fs::read(&full).unwrap();
        let second = 44 + CHUNK_BYTES;
        for cut in [
            0,
            1,
            10,
            30,
            43,
            44,
            45,
            47,
            48,
            1044,
            1045,
            second - 2,
            second,
            second + 6001,
            bytes.len(),
        ] {
            let dir = tmp("cut");
            std::fs::create_dir_all(&dir).unwrap();
            let wav = dir.join(format!("2026-000012_{cut}.wav"));
            std::fs::write(&wav, &bytes[..cut]).unwrap();
            Manifest::started(&wav, "cut@x", "2026-000012", Timestamp::now())
                .write(&manifest_path(&wav))
                .unwrap();
            let rec = repair::scan(&dir);
            assert_eq!(rec.len(), 1, "cut at {cut}");
            let m = Manifest::read(&manifest_path(&wav)).unwrap();
            let expected = if cut < 44 {
                Status::Lost
            } else {
                Status::Recovered
            };
            assert_eq!(m.status, expected, "cut at {cut}: {:?}", m.note);
            assert_eq!(
                m.samples,
                (cut.saturating_sub(44) / 4) as u64,
                "cut at {cut}"
            );
            // Readable, and it verifies against its manifest.
            let reader = hound::WavReader::open(&wav).unwrap();
            assert_eq!(u64::from(reader.duration()), m.samples, "cut at {cut}");
            assert!(verify::verify(&wav).is_ok(), "cut at {cut}");
            if (1..44).contains(&cut) {
                let aside = dir.join(format!("2026-000012_{cut}.wav.lost"));
                assert_eq!(std::fs::read(&aside).unwrap(), &bytes[..cut], "kept aside");
                assert!(m.note.as_deref().unwrap().contains(".wav.lost"));
            }
            // Never reported twice.
            assert!(repair::scan(&dir).is_empty(), "cut at {cut}");
            std::fs::remove_dir_all(dir).unwrap();
        }
        std::fs::remove_dir_all(src).unwrap();
    }

    #[test]
    fn a_missing_wav_or_a_missing_manifest_is_finished_too() {
        // The manifest, and no WAV beside it.
        let dir = tmp("nowav");
        std::fs::create_dir_all(&dir).unwrap();
        let wav = dir.join("2026-000013_x.wav");
        Manifest::started(&wav, "gone@x", "2026-000013", Timestamp::now())
            .write(&manifest_path(&wav))
            .unwrap();
        let rec = repair::scan(&dir);
        assert_eq!(rec[0].manifest.status, Status::Lost);
        assert!(hound::WavReader::open(&wav).is_ok());
        assert!(repair::scan(&dir).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
        // A WAV, and no manifest (the crash between the two).
        let dir = tmp("nomanifest");
        std::fs::create_dir_all(&dir).unwrap();
        let wav = dir.join("2026-000014_y.wav");
        std::fs::write(&wav, wav_header(0)).unwrap();
        let rec = repair::scan(&dir);
        assert_eq!(rec.len(), 1);
        let m = &rec[0].manifest;
        assert_eq!(
            (m.status, m.ticket.as_str()),
            (Status::Recovered, "2026-000014")
        );
        assert!(verify::verify(&wav).is_ok());
        assert!(repair::scan(&dir).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
