//! Starting a gateway for a test, and talking to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hotline::app::App;
use hotline::config::Settings;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A gateway on loopback, stopped when dropped.
pub struct Gateway {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    pub metrics: std::sync::Arc<hotline::metrics::Metrics>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Test settings: everything on 127.0.0.1, ports picked by the OS.
pub fn settings() -> Settings {
    let mut s = Settings::from_toml(
        r#"
        [sip]
        listen = ["127.0.0.1:0"]
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
    s
}

impl Gateway {
    pub async fn start(settings: Settings) -> Gateway {
        settings.validate("test").expect("valid settings");
        let app = App::build(settings).await.expect("gateway builds");
        let (udp, tcp) = app.sip_addrs()[0];
        let http = app.http_addr();
        let metrics = app.metrics.clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        Gateway {
            udp,
            tcp,
            http,
            metrics,
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the gateway and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.expect("gateway task").expect("gateway ran");
        }
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
/// exit status and error log. Bounded by `-timeout` and a hard limit here.
pub async fn sipp(
    gateway: SocketAddr,
    scenario: &str,
    transport: &str,
    extra: &[&str],
) -> (bool, String) {
    let dir = tempfile_dir("sipp");
    let port = free_port().to_string();
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.arg(gateway.to_string())
        .arg("-sf")
        .arg(repo().join("tests/sipp").join(scenario))
        .args(["-t", transport, "-i", "127.0.0.1", "-p", &port])
        .args([
            "-m",
            "1",
            "-l",
            "1",
            "-nostdin",
            "-timeout",
            "40s",
            "-timeout_error",
        ])
        .args(["-trace_err", "-error_file"])
        .arg(dir.join("errors.log"))
        .args(extra)
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("sipp finishes within 60 s")
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
