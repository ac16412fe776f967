//! What the benchmarks share: a redis-server of their own on loopback, and
//! a test browser (`browser`).

// Benchmarks run outside the async runtime and time with the wall clock.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

pub mod browser;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server on a free 127.0.0.1 port, without persistence; killed
/// when dropped.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// Starts it and waits (up to 5 s) until it takes connections.
    pub fn start() -> Result<Redis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let redis = Redis { child, port };
        let end = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > end {
                return Err("redis-server did not listen within 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway's settings for a benchmark: everything on 127.0.0.1, the
/// sample prompts and calendars, the sample roster without SIP URIs,
/// webhooks or MESSAGE contacts (nothing leaves the machine: pages go out
/// as events for the officers' page), Redis at `redis`, files in `dir`.
// Not every benchmark starts a gateway.
#[allow(dead_code)]
pub fn bench_settings(dir: &std::path::Path, redis: &Redis) -> hotline::config::Settings {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let roster: String = std::fs::read_to_string(root.join("config/roster.toml"))
        .unwrap()
        .lines()
        .filter(|l| {
            !l.starts_with("sip = ") && !l.starts_with("webhook = ") && !l.starts_with("message = ")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("roster.toml"), roster).unwrap();
    let mut s = hotline::config::Settings::from_toml(
        "[sip]\nlisten = [\"127.0.0.1:0\"]\n[http]\nlisten = \"127.0.0.1:0\"\n[media]\nbind_ip = \"127.0.0.1\"\n",
        "bench",
    )
    .unwrap();
    s.prompts.dir = root.join("config/prompts");
    s.roster.file = dir.join("roster.toml");
    s.roster.holidays = root.join("config/holidays");
    s.redis.url = redis.url();
    s.redis.journal_dir = dir.join("journal");
    s.recording.dir = dir.join("recordings");
    s.privacy.key_file = dir.join("caller.key");
    // The transcriber is measured on its own (benches/transcribe).
    s.transcribe.enabled = false;
    s
}
