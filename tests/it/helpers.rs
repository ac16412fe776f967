//! Starting a gateway for a test, and talking to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline::app::App;
use hotline::config::Settings;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

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

/// The greeting's first 20 ms (160 samples of the committed WAV), encoded.
pub fn greeting_first_frame(encode: fn(i16) -> u8) -> Vec<u8> {
    hound::WavReader::open(repo().join("config/prompts/greeting.wav"))
        .unwrap()
        .into_samples::<i16>()
        .take(160)
        .map(|s| encode(s.unwrap()))
        .collect()
}

/// A free loopback port (for tools that must be told one).
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Receives one datagram within `limit` (a bound, not a timing assumption).
pub async fn recv(sock: &UdpSocket, limit: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(limit, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub fn status_of(msg: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(msg).ok()?;
    let line = text.lines().next()?;
    line.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

pub fn options(call_id: &str, from: SocketAddr) -> String {
    format!(
        "OPTIONS sip:12368@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id}\r\n\
Max-Forwards: 70\r\n\
From: <sip:probe@127.0.0.1>;tag=probe\r\n\
To: <sip:12368@127.0.0.1>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// Runs sipp (from Debian's sip-tester) against the gateway; returns its
/// exit status and error log.
pub async fn sipp(
    gateway: SocketAddr,
    scenario: &str,
    transport: &str,
    extra: &[&str],
) -> (bool, String) {
    sipp_for(gateway, scenario, transport, extra, 40).await
}

/// As [`sipp`], for a scenario that lasts up to `seconds` (SIPp's
/// `-timeout`; the hard limit here is 20 s more).
pub async fn sipp_for(
    gateway: SocketAddr,
    scenario: &str,
    transport: &str,
    extra: &[&str],
    seconds: u64,
) -> (bool, String) {
    sipp_at(gateway, scenario, transport, free_port(), extra, seconds).await
}

/// As [`sipp_for`], from the local port `port` (a softphone that registers
/// there and is called there later).
pub async fn sipp_at(
    gateway: SocketAddr,
    scenario: &str,
    transport: &str,
    port: u16,
    extra: &[&str],
    seconds: u64,
) -> (bool, String) {
    sipp_from(
        "127.0.0.1",
        gateway,
        scenario,
        transport,
        port,
        extra,
        seconds,
    )
    .await
}

/// As [`sipp_at`], the caller on loopback address `ip` (127.0.0.0/8).
pub async fn sipp_from(
    ip: &str,
    gateway: SocketAddr,
    scenario: &str,
    transport: &str,
    port: u16,
    extra: &[&str],
    seconds: u64,
) -> (bool, String) {
    let port = port.to_string();
    let scenario = repo().join("tests/sipp").join(scenario);
    let mut args: Vec<std::ffi::OsString> = vec![gateway.to_string().into(), "-sf".into()];
    args.push(scenario.into());
    for a in ["-t", transport, "-i", ip, "-p", &port, "-l", "1"]
        .iter()
        .chain(extra)
    {
        args.push(a.into());
    }
    run_sipp("sipp", args, seconds).await
}

/// One sipp run, bounded as every test's is: one call, `-timeout` of
/// `seconds`, and a hard limit of 20 s more here; returns (success, error
/// log and stderr).
async fn run_sipp(tag: &str, args: Vec<std::ffi::OsString>, seconds: u64) -> (bool, String) {
    let dir = tempfile_dir(tag);
    let timeout = format!("{seconds}s");
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.args(args)
        .args([
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            timeout.as_str(),
            "-timeout_error",
            "-trace_err",
            "-error_file",
        ])
        .arg(dir.join("errors.log"))
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(seconds + 20), cmd.output())
        .await
        .expect("sipp finishes within its bound")
        .expect("sipp runs (apt-get install sip-tester)");
    let log = std::fs::read_to_string(dir.join("errors.log")).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.success(), format!("{log}\n{stderr}"))
}

pub fn tempfile_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "hotline-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A redis-server of the test's own: free port, temporary directory,
/// append-only file with the given `appendfsync`.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    fsync: &'static str,
    child: Option<std::process::Child>,
}

impl Redis {
    /// The caller key of the gateways on this Redis.
    pub fn key_file(&self) -> PathBuf {
        self.dir.join("caller.key")
    }

    pub async fn start(fsync: &'static str) -> Redis {
        let mut r = Redis {
            port: free_tcp_port(),
            dir: tempfile_dir("redis"),
            fsync,
            child: None,
        };
        r.restart().await;
        r
    }

    fn none() -> Redis {
        Redis {
            port: 0,
            dir: PathBuf::new(),
            fsync: "everysec",
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// (Re)starts on the same port and directory, loading the AOF.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                self.fsync,
                "--save",
                "",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        self.child = Some(child);
        // Ready when it answers PING (bounded).
        for _ in 0..500 {
            if let Ok(mut c) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 64];
                if c.write_all(b"PING\r\n").await.is_ok() {
                    if let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(1), c.read(&mut buf)).await
                    {
                        if buf[..n].starts_with(b"+PONG") {
                            return;
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server on port {} did not come up", self.port);
    }

    /// SIGKILL: no shutdown, no final fsync.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
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

/// The number of the ticket a call opened, once the ticket writer has it
/// (bounded: 10 s).
pub async fn ticket_of(store: &hotline::tickets::Store, call_id: &str) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Some(n)) = store.number_for_call(call_id).await {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no ticket for {call_id} within 10 s"))
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
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten = [\"127.0.0.1:0\"]\n[media]\nbind_ip = \"127.0.0.1\"\nadvertise_ip = \"127.0.0.1\"\n\
rtp_port_min = 40000\nrtp_port_max = 44999\n[http]\nlisten = \"127.0.0.1:0\"\n[redis]\nurl = \"{redis_url}\"\njournal_dir = \"{}\"\n\
[privacy]\nkey_file = \"{}\"\n\
[recording]\ndir = \"{}\"\n[prompts]\ndir = \"{}\"\n[roster]\nfile = \"{}\"\nholidays = \"{}\"\n{extra}",
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

/// Runs sipp as a server (a phone the gateway calls) on `port`, in the
/// background; the handle resolves to (success, error log).
pub fn sipp_server(scenario: &str, port: u16) -> tokio::task::JoinHandle<(bool, String)> {
    sipp_server_over(scenario, port, "u1")
}

/// As [`sipp_server`], over SIPp's `transport` (`u1` UDP, `t1` TCP).
pub fn sipp_server_over(
    scenario: &str,
    port: u16,
    transport: &str,
) -> tokio::task::JoinHandle<(bool, String)> {
    sipp_server_with(scenario, port, transport, &[])
}

/// As [`sipp_server_over`], with more of SIPp's arguments (`-set rtp N`).
pub fn sipp_server_with(
    scenario: &str,
    port: u16,
    transport: &str,
    extra: &[&str],
) -> tokio::task::JoinHandle<(bool, String)> {
    let scenario = repo().join("tests/sipp").join(scenario);
    let media = free_port().to_string();
    let mut args: Vec<std::ffi::OsString> = vec!["-sf".into(), scenario.into()];
    for a in [
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-mp",
        &media,
        "-t",
        transport,
    ]
    .iter()
    .chain(extra)
    {
        args.push(a.into());
    }
    tokio::spawn(run_sipp("sipp-uas", args, 40))
}

/// The sample roster without a day desk: a duty unit is on at any hour, so
/// tests that page do not depend on the time of day they run at.
pub fn test_roster_text() -> String {
    std::fs::read_to_string(repo().join("config/roster.toml"))
        .unwrap()
        .replace("members = [\"m-desk-1\", \"m-desk-2\"]", "members = []")
}

/// A roster without SIP URIs and webhooks: its pages reach the officers'
/// page (the events stream) and nothing else, so no name is looked up and
/// nothing leaves the machine. Tests that page phones point the URIs at
/// loopback instead.
pub fn offline(roster: &str) -> String {
    roster
        .lines()
        .filter(|l| !l.starts_with("sip = ") && !l.starts_with("webhook = "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Writes a roster for a test; returns its path.
pub fn test_roster(text: &str) -> PathBuf {
    let dir = tempfile_dir("roster");
    std::fs::write(dir.join("roster.toml"), text).unwrap();
    dir.join("roster.toml")
}

/// Every key and value in the test's Redis, as text.
pub async fn redis_dump(s: &hotline::tickets::Store) -> String {
    let mut c = s.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = String::new();
    for k in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        let v: redis::Value = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&k).query_async(&mut c).await.unwrap(),
            "hash" => redis::cmd("HGETALL")
                .arg(&k)
                .query_async(&mut c)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
                .unwrap(),
            "stream" => redis::cmd("XRANGE")
                .arg(&k)
                .arg("-")
                .arg("+")
                .query_async(&mut c)
                .await
                .unwrap(),
            _ => redis::Value::Nil,
        };
        out.push_str(&format!("{k} {v:?}\n"));
    }
    out
}

/// The recording of the call `call_id`, once it is linked on its ticket
/// (bounded: 15 s).
pub async fn recording_of(store: &hotline::tickets::Store, call_id: &str) -> PathBuf {
    for _ in 0..600 {
        if let Ok(Some(n)) = store.number_for_call(call_id).await {
            if let Some(r) = store
                .get(&n)
                .await
                .ok()
                .and_then(|t| t.register.recordings.first().cloned())
            {
                return PathBuf::from(r.path);
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no recording linked on the ticket of {call_id}");
}

/// The 10 ms RMS envelope of 8 kHz samples.
pub fn envelope(samples: &[i16]) -> Vec<f64> {
    samples
        .chunks_exact(80)
        .map(|c| (c.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 80.0).sqrt())
        .collect()
}

/// The best Pearson correlation of `needle` against `hay` at any lag.
pub fn best_correlation(hay: &[f64], needle: &[f64]) -> f64 {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (nm, mut best) = (mean(needle), f64::MIN);
    let nd: Vec<f64> = needle.iter().map(|x| x - nm).collect();
    let nv = nd.iter().map(|x| x * x).sum::<f64>();
    for w in hay.windows(needle.len()) {
        let wm = mean(w);
        let (mut cov, mut wv) = (0.0, 0.0);
        for (a, b) in w.iter().zip(&nd) {
            cov += (a - wm) * b;
            wv += (a - wm).powi(2);
        }
        if wv > 0.0 && nv > 0.0 {
            best = best.max(cov / (wv * nv).sqrt());
        }
    }
    best
}

pub fn wav(path: &std::path::Path) -> Vec<i16> {
    hound::WavReader::open(path)
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect()
}
