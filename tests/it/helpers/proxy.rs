//! Kamailio as a test proxy (`tests/kamailio/proxy.cfg`) or as the
//! production edge (`deploy/kamailio/kamailio.cfg`).

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

/// Kamailio on a free loopback port, relaying to `gateway`; killed on drop.
pub struct Kamailio {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
    child: std::process::Child,
    _dir: std::path::PathBuf,
}

impl Kamailio {
    /// The test proxy (`tests/kamailio/proxy.cfg`) in front of `gateway`.
    pub async fn start(gateway: SocketAddr) -> Kamailio {
        Kamailio::run(
            "tests/kamailio/proxy.cfg",
            &[
                format!("GATEWAY_HOST=\"{}\"", gateway.ip()),
                format!("GATEWAY_PORT={}", gateway.port()),
            ],
            tempfile_dir("kamailio"),
        )
        .await
    }

    /// The production edge (`deploy/kamailio/kamailio.cfg`, as the cluster
    /// test runs it: one UDP worker) dispatching to `gateways`, with
    /// `pbx` (a CIDR) as the court's PBX/SBC.
    pub async fn edge(gateways: &[SocketAddr], pbx: &str) -> Kamailio {
        let dir = tempfile_dir("kamailio-edge");
        let list: String = gateways.iter().map(|g| format!("1 sip:{g}\n")).collect();
        std::fs::write(dir.join("dispatcher.list"), list).unwrap();
        let defines = [
            "LISTEN_HOST=127.0.0.1".to_string(),
            format!(
                "DISPATCHER_LIST=\"{}\"",
                dir.join("dispatcher.list").display()
            ),
            format!("PBX_NETS=\"{pbx}\""),
        ];
        Kamailio::run("deploy/kamailio/kamailio.cfg", &defines, dir).await
    }

    async fn run(config: &str, defines: &[String], dir: std::path::PathBuf) -> Kamailio {
        use std::io::BufRead;
        let port = loop {
            let p = free_port();
            if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
                break p;
            }
        };
        let mut cmd = std::process::Command::new("kamailio");
        cmd.arg("-f")
            .arg(repo().join(config))
            .args(["-DD", "-E", "-n", "1", "-w"])
            .arg(&dir)
            .arg("-Y")
            .arg(&dir)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .args(["-A", &format!("LISTEN_PORT={port}")]);
        for d in defines {
            cmd.args(["-A", d]);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            // Its own process group: it forks workers, and all of them go
            // when it is stopped.
            .process_group(0)
            .spawn()
            .expect("kamailio runs (apt-get install kamailio)");
        let log = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                // A test that failed while reading the log poisoned it:
                // keep logging all the same.
                let mut log = l.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&format!("{line}\n"));
            }
        });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // Ready when its TCP side accepts (bounded: 5 s).
        let end = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < end,
                "kamailio did not listen: {}",
                log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Kamailio {
            addr,
            log,
            child,
            _dir: dir,
        }
    }

    /// Its log lines for requests of `method` in the call `call_id`.
    pub fn requests(&self, method: &str, call_id: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .lines()
            .filter(|l| {
                l.contains(&format!("KAMAILIO-REQ {method} "))
                    && l.contains(&format!("ci={call_id} "))
            })
            .map(str::to_string)
            .collect()
    }
}

// Drop cannot await: a bounded wall-clock wait for the process to go.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM to the group (the main process ends its workers), then
        // SIGKILL to whatever is left.
        let group = format!("-{}", self.child.id());
        let signal = |sig: &str| {
            let _ = std::process::Command::new("kill")
                .args([sig, "--", &group])
                .stderr(std::process::Stdio::null())
                .status();
        };
        signal("-TERM");
        let end = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal("-KILL");
        let _ = self.child.wait();
    }
}
