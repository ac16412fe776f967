//! A redis-server of the test's own, and reading what the gateway wrote
//! there: tickets, recordings, the whole store.

use std::path::PathBuf;
use std::time::Duration;

use hotline::tickets::model::Change;
use hotline::tickets::model::State;

use super::*;

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

    pub(super) fn none() -> Redis {
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

/// The ticket the call `call_id` opened, as it is now: `None` until the
/// ticket writer has it (for `eventually`, or to see it is not there).
pub async fn ticket_now(
    store: &hotline::tickets::Store,
    call_id: &str,
) -> Option<hotline::tickets::Ticket> {
    let n = store.number_for_call(call_id).await.ok()??;
    store.get(&n).await.ok()
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

/// Tickets created straight in Redis and opened: the paging trigger.
pub async fn open_tickets(store: &hotline::tickets::Store, n: usize, tag: &str) -> Vec<String> {
    use hotline::tickets::model::Register;
    use hotline::tickets::store::NewTicket;
    let mut numbers = Vec::new();
    for i in 0..n {
        let t = NewTicket {
            call_id: format!("{tag}-{i}@t"),
            call: String::new(),
            received_at: jiff::Timestamp::now(),
            register: Register::default(),
        };
        let (number, _) = store.create(&t, "test").await.unwrap();
        let mut open = Change::new("gateway", "call_ended");
        open.to = Some(State::Open);
        store
            .change(&number, &open, |r| r.intake.whereabouts = Some("x".into()))
            .await
            .unwrap();
        numbers.push(number);
    }
    numbers
}

/// A ticket of `category` received at `received`, created straight in
/// Redis and opened, its register edited as given (the clocks' fields, a
/// triage, ...) in a `triaged` change under the op id the gateway's own
/// triage uses (`triage:<number>`): that one then finds it done and leaves
/// the seeded fields as they are.
pub async fn seed_opened(
    store: &hotline::tickets::Store,
    tag: &str,
    category: hotline::tickets::model::Category,
    received: jiff::Timestamp,
    edit: impl Fn(&mut hotline::tickets::model::Register),
) -> String {
    let n = seed_created(store, tag, category, received).await;
    let mut triaged = Change::new("gateway", "triaged");
    triaged.op_id = Some(format!("triage:{n}"));
    store.change(&n, &triaged, edit).await.unwrap();
    seed_open(store, &n).await;
    n
}

/// A ticket of `category` received at `received`, created straight in
/// Redis (the call still in progress): its number.
pub async fn seed_created(
    store: &hotline::tickets::Store,
    tag: &str,
    category: hotline::tickets::model::Category,
    received: jiff::Timestamp,
) -> String {
    use hotline::tickets::model::{Intake, Register};
    let t = hotline::tickets::store::NewTicket {
        call_id: format!("{tag}@t"),
        call: tag.into(),
        received_at: received,
        register: Register {
            intake: Intake {
                category: Some(category),
                ..Default::default()
            },
            ..Default::default()
        },
    };
    store.create(&t, "gateway").await.unwrap().0
}

/// Ticket `n`'s call ended: it is open.
pub async fn seed_open(store: &hotline::tickets::Store, n: &str) {
    let mut open = Change::new("gateway", "call_ended");
    open.to = Some(State::Open);
    store.change(n, &open, |_| {}).await.unwrap();
}

/// 签收 at `ack`, 出警 at `out`, on scene at `arrived` (if given), each by
/// unit 1's officer.
pub async fn seed_dispatched(
    store: &hotline::tickets::Store,
    n: &str,
    ack: jiff::Timestamp,
    out: jiff::Timestamp,
    arrived: Option<jiff::Timestamp>,
) {
    use hotline::tickets::actions;
    let who = "u1-officer";
    store
        .act(
            n,
            &actions::acknowledge(who, None, ack, serde_json::json!({})),
        )
        .await
        .unwrap();
    let v = store.get(n).await.unwrap().version;
    let go = actions::dispatch(who, v, vec![who.into()], None, out);
    store.act(n, &go).await.unwrap();
    if let Some(at) = arrived {
        let v = store.get(n).await.unwrap().version;
        store.act(n, &actions::arrive(who, v, at)).await.unwrap();
    }
}

/// Every key and value in the test's Redis, as text.
pub async fn redis_dump(s: &hotline::tickets::Store) -> String {
    let mut c = s.connection();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = String::new();
    for k in keys {
        let kind: String = ::redis::cmd("TYPE")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        let v: ::redis::Value = match kind.as_str() {
            "string" => ::redis::cmd("GET")
                .arg(&k)
                .query_async(&mut c)
                .await
                .unwrap(),
            "hash" => ::redis::cmd("HGETALL")
                .arg(&k)
                .query_async(&mut c)
                .await
                .unwrap(),
            "zset" => ::redis::cmd("ZRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
                .unwrap(),
            "stream" => ::redis::cmd("XRANGE")
                .arg(&k)
                .arg("-")
                .arg("+")
                .query_async(&mut c)
                .await
                .unwrap(),
            _ => ::redis::Value::Nil,
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

/// Whether the ticket's timeline has an entry `action`.
pub async fn timeline_has(store: &hotline::tickets::Store, number: &str, action: &str) -> bool {
    store
        .timeline(number)
        .await
        .is_ok_and(|tl| tl.iter().any(|e| e.action == action))
}

/// The ticket once the paging worker has triaged it (bounded). The triage is
/// a change of its own: an action read before it is stale (409), so a test
/// that acts on a ticket a call opened waits for it first.
pub async fn triaged(store: &hotline::tickets::Store, n: &str) -> hotline::tickets::Ticket {
    eventually("triaged", Duration::from_secs(10), || async {
        store
            .get(n)
            .await
            .is_ok_and(|t| t.register.triage.at.is_some())
    })
    .await;
    store.get(n).await.unwrap()
}
