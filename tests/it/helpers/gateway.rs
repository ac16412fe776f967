//! A gateway for a test: in-process (`Gateway`, on its own redis-server)
//! or as a separate process (`Process`, with a config file), and what
//! every test needs around it: temporary directories, free ports, bounded
//! waits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline::app::App;
use hotline::config::Settings;
use tokio_util::sync::CancellationToken;

use super::*;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A gateway on loopback with its own redis-server, stopped when dropped.
pub struct Gateway {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    /// SIP over TLS, when the settings name a certificate.
    pub tls: Option<SocketAddr>,
    pub http: SocketAddr,
    pub metrics: std::sync::Arc<hotline::metrics::Metrics>,
    pub redis: Redis,
    pub store: hotline::tickets::Store,
    /// The key file the gateway seals callers with.
    pub key_file: PathBuf,
    /// Its journal's directory (the admin socket is in it).
    pub journal: PathBuf,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Test settings: everything on 127.0.0.1, ports picked by the OS.
pub fn settings() -> Settings {
    let mut s = Settings::from_toml(
        r#"
        [sip]
        listen = ["127.0.0.1:0"]
        drain_seconds = 0
        [media]
        bind_ip = "127.0.0.1"
        advertise_ip = "127.0.0.1"
        rtp_port_min = 30000
        rtp_port_max = 39999
        [http]
        listen = "127.0.0.1:0"
        "#,
        "test",
    )
    .expect("test settings");
    s.prompts.dir = repo().join("config/prompts");
    s.roster.file = test_roster(&offline(&test_roster_text()));
    s.roster.holidays = repo().join("config/holidays");
    // The channel watch would ping a test's trunk (a SIPp scenario) and
    // send its test messages and notices to the test's receivers: off
    // unless the test is about it (`watch.rs`).
    s.watch.enabled = false;
    // The evening reminders would text whoever is on duty tomorrow when a
    // test runs after 18:00 in Qingdao: off unless the test is about them
    // (`swaps.rs` sends them for an explicit day).
    s.swaps.remind_at = hotline::watch::DailyAt(None);
    // The transcriber would start a Python worker for every test's calls:
    // off unless the test is about it (`transcribe.rs`).
    s.transcribe.enabled = false;
    s
}

impl Gateway {
    /// Starts a gateway with a fresh redis-server of its own.
    pub async fn start(settings: Settings) -> Gateway {
        Gateway::start_with(settings, Redis::start("everysec").await).await
    }

    /// Starts a gateway on a given Redis (to share one between gateways).
    pub async fn start_with(settings: Settings, redis: Redis) -> Gateway {
        Gateway::start_full(settings, redis, tempfile_dir("recordings")).await
    }

    /// Starts a gateway whose recordings go to `dir`.
    pub async fn start_with_recordings(settings: Settings, dir: PathBuf) -> Gateway {
        Gateway::start_full(settings, Redis::start("everysec").await, dir).await
    }

    async fn start_full(mut settings: Settings, redis: Redis, recordings: PathBuf) -> Gateway {
        settings.redis.url = redis.url();
        settings.redis.journal_dir = tempfile_dir("journal");
        settings.recording.dir = recordings;
        // Gateways on one Redis share its caller key, as a court's do.
        settings.privacy.key_file = redis.key_file();
        settings.validate("test").expect("valid settings");
        let store =
            hotline::tickets::Store::connect(&settings.redis.url, &settings.redis.key_prefix)
                .expect("store");
        let key_file = settings.privacy.key_file.clone();
        let journal = settings.redis.journal_dir.clone();
        let app = App::build(settings).await.expect("gateway builds");
        let (udp, tcp) = app.sip_addrs()[0];
        let tls = app.sip_tls_addrs().first().copied();
        let http = app.http_addr();
        let metrics = app.metrics.clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        Gateway {
            udp,
            tcp,
            tls,
            http,
            metrics,
            redis,
            store,
            key_file,
            journal,
            shutdown,
            task: Some(task),
        }
    }

    /// What SIGTERM does: the gateway drains (as `[sip] drain_seconds`
    /// says), then stops; `stop` waits for it.
    pub fn begin_stop(&self) {
        self.shutdown.cancel();
    }

    /// Stops the gateway and waits for it; returns its Redis, still running.
    pub async fn stop(mut self) -> Redis {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.expect("gateway task").expect("gateway ran");
        }
        std::mem::replace(&mut self.redis, Redis::none())
    }

    /// `GET path` on the HTTP port: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path)
            .await
            .expect("the gateway answers HTTP")
    }
}

/// `GET path` at `addr`: (status, body), `None` when nobody answers.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = tokio::net::TcpStream::connect(addr).await.ok()?;
        c.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
        let mut resp = String::new();
        c.read_to_string(&mut resp).await.ok()?;
        let status = resp.get(9..12).and_then(|s| s.parse().ok())?;
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A free loopback port (for tools that must be told one).
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh directory under this test process's own root
/// (`$TMPDIR/hotline-it-<pid>`), kept after the run for a failed test's
/// logs; the roots of test processes no longer running are removed the
/// first time (the package test alone leaves 300 MB).
pub fn tempfile_dir(tag: &str) -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let tmp = std::env::temp_dir();
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|n| n.strip_prefix("hotline-it-"));
            if pid.is_some_and(|p| !std::path::Path::new("/proc").join(p).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        tmp.join(format!("hotline-it-{}", std::process::id()))
    });
    let d = root.join(format!("{tag}-{}", rand_suffix()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until `check` holds; for outcomes that arrive through
/// another process, never as a stand-in for a timer.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not within {limit:?}: {what}");
}

/// One request on a gateway's admin socket (`<journal_dir>/admin.sock`),
/// retried while the socket is not there yet (at most 5 s); its answer
/// (within 15 s).
pub async fn admin(socket: &std::path::Path, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut c = loop {
        match tokio::net::UnixStream::connect(socket).await {
            Ok(c) => break c,
            Err(e) if tokio::time::Instant::now() > end => panic!("{}: {e}", socket.display()),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    c.write_all(format!("{request}\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(15), c.read_to_string(&mut answer))
        .await
        .expect("the admin socket answers within 15 s")
        .unwrap();
    answer
}

/// The gateway as a separate process (so it can be SIGKILLed).
pub struct Process {
    pub child: std::process::Child,
    pub udp: std::net::SocketAddr,
    pub http: std::net::SocketAddr,
    /// Everything it has logged so far (stdout and stderr).
    pub log: Arc<Mutex<String>>,
}

impl Process {
    pub fn start(config: &std::path::Path) -> Process {
        Process::start_logging(config, "info")
    }

    /// Started with `HOTLINE_LOG=filter`.
    pub fn start_logging(config: &std::path::Path, filter: &str) -> Process {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"));
        cmd.env("HOTLINE_LOG", filter);
        Process::start_command(cmd, config)
    }

    /// `cmd` (the gateway binary, with its environment) serving `config`.
    pub fn start_command(mut cmd: std::process::Command, config: &std::path::Path) -> Process {
        use std::io::BufRead;
        let mut child = cmd
            .args(["serve", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        // Keep draining both pipes so it never blocks on a full one.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let drain = |pipe: Box<dyn std::io::Read + Send>| {
            let (log, tx) = (log.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    log.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            });
        };
        drain(Box::new(out));
        drain(Box::new(err));
        let (mut udp, mut http) = (None, None);
        while udp.is_none() || http.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("the gateway logs its addresses");
            if let Some(rest) = line.split("sip listening udp=").nth(1) {
                udp = rest.split(' ').next().unwrap().parse().ok();
            }
            if let Some(rest) = line.split("http listening ").nth(1) {
                http = rest.trim().parse().ok();
            }
        }
        Process {
            child,
            udp: udp.unwrap(),
            http: http.unwrap(),
            log,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config file for a gateway process in `dir` (loopback ports, its own
/// journal and recordings), with `extra` TOML appended.
pub fn write_config(
    dir: &std::path::Path,
    redis: &Redis,
    roster: &std::path::Path,
    extra: &str,
) -> PathBuf {
    let config = dir.join("hotline.toml");
    let redis_url = redis.url();
    // The channel watch and the evening reminders off, as in
    // `settings()`, unless `extra` has them.
    let mut watch = match extra.contains("[watch]") {
        true => String::new(),
        false => "[watch]\nenabled = false\n".to_string(),
    };
    if !extra.contains("[transcribe]") {
        watch.push_str("[transcribe]\nenabled = false\n");
    }
    if !extra.contains("[swaps]") {
        watch.push_str("[swaps]\nremind_at = \"off\"\n");
    }
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten = [\"127.0.0.1:0\"]\n[media]\nbind_ip = \"127.0.0.1\"\nadvertise_ip = \"127.0.0.1\"\n\
rtp_port_min = 40000\nrtp_port_max = 44999\n[http]\nlisten = \"127.0.0.1:0\"\n[redis]\nurl = \"{redis_url}\"\njournal_dir = \"{}\"\n\
[privacy]\nkey_file = \"{}\"\n\
[recording]\ndir = \"{}\"\n[prompts]\ndir = \"{}\"\n[roster]\nfile = \"{}\"\nholidays = \"{}\"\n{extra}\n{watch}",
            dir.join("journal").display(),
            // Gateways on one Redis share its caller key.
            redis.key_file().display(),
            dir.join("recordings").display(),
            repo().join("config/prompts").display(),
            roster.display(),
            repo().join("config/holidays").display()
        ),
    )
    .unwrap();
    config
}

/// `hotline ARGS --config config/hotline.toml --redis-url URL` from the
/// repository: the command line an operator runs, on the sample config.
pub fn hotline_cli(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .current_dir(repo())
        .args(args)
        .args(["--config", "config/hotline.toml", "--redis-url", url])
        .output()
        .unwrap()
}
