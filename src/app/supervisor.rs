//! Supervision: every long-lived task of the gateway is started here under
//! its name, and [`Supervisor::watch`] waits for the shutdown or for the
//! first of them to end. A task that ends (or panics) before the shutdown
//! has died: the gateway says so (`/healthz` 503 `failed`, naming it) and
//! stops with an error, so that systemd starts it again.
//!
//! Debug builds with `HOTLINE_FAULT_INJECTION=1` hand out [`Faults`]: the
//! admin socket's `fault NAME` makes the named task panic (the supervision
//! tests). Release builds never do.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

/// The gateway's long-lived tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    /// The SIP thread: the core task, the readers, the call manager.
    Sip,
    Paging,
    Tickets,
    Http,
    /// With `[http] tls_cert`: the accept loop that hands the HTTP server
    /// its handshaken connections.
    HttpsAccept,
    KeyCheck,
    Registrar,
    Handover,
    /// The consultations' daily digest to their handlers.
    Digest,
    FollowUps,
    Reloads,
    Retention,
    WebPruning,
    /// The channel watch (`crate::watch`).
    Watch,
    /// Replies to SIP MESSAGE pages (`paging::replies`).
    Replies,
    /// The swaps' sync: the roster in force follows the store's swaps; the
    /// duty's notices (`crate::swaps`).
    Swaps,
    /// The evening-before duty reminders.
    Reminders,
    /// The transcriber (`crate::transcribe`), with `[transcribe] enabled`.
    Transcribe,
    /// Freed memory given back while idle (`crate::allocator`).
    Allocator,
}

impl Task {
    pub const ALL: [Task; 19] = [
        Task::Sip,
        Task::Paging,
        Task::Tickets,
        Task::Http,
        Task::HttpsAccept,
        Task::KeyCheck,
        Task::Registrar,
        Task::Handover,
        Task::Digest,
        Task::FollowUps,
        Task::Reloads,
        Task::Retention,
        Task::WebPruning,
        Task::Watch,
        Task::Replies,
        Task::Swaps,
        Task::Reminders,
        Task::Transcribe,
        Task::Allocator,
    ];

    /// Its name: in the logs (`task=`), in `/healthz`'s `failed`, and as
    /// the admin socket's `fault` names it.
    pub fn name(self) -> &'static str {
        match self {
            Task::Sip => "sip",
            Task::Paging => "paging",
            Task::Tickets => "tickets",
            Task::Http => "http",
            Task::HttpsAccept => "https-accept",
            Task::KeyCheck => "key-check",
            Task::Registrar => "registrar",
            Task::Handover => "handover",
            Task::Digest => "digest",
            Task::FollowUps => "follow-ups",
            Task::Reloads => "reloads",
            Task::Retention => "retention",
            Task::WebPruning => "web-pruning",
            Task::Watch => "watch",
            Task::Replies => "replies",
            Task::Swaps => "swaps",
            Task::Reminders => "reminders",
            Task::Transcribe => "transcribe",
            Task::Allocator => "allocator",
        }
    }

    pub fn from_name(name: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Sip => "the SIP thread",
            Task::Paging => "the paging worker",
            Task::Tickets => "the ticket writer",
            Task::Http => "the HTTP server",
            Task::HttpsAccept => "the HTTPS acceptor",
            Task::KeyCheck => "the caller key check",
            Task::Registrar => "the registrar",
            Task::Handover => "the handover task",
            Task::Digest => "the consultations' digest task",
            Task::FollowUps => "the follow-up task",
            Task::Reloads => "the reload task (SIGHUP and the admin socket)",
            Task::Retention => "the retention task",
            Task::WebPruning => "the browser calls' pruning timer",
            Task::Watch => "the channel watch",
            Task::Replies => "the replies to MESSAGE pages",
            Task::Swaps => "the swaps' sync (the roster in force, the duty's notices)",
            Task::Reminders => "the duty reminders",
            Task::Transcribe => "the transcriber",
            Task::Allocator => "the allocator's idle give-back",
        })
    }
}

/// Debug builds, `HOTLINE_FAULT_INJECTION=1`: makes a named task panic.
#[derive(Clone)]
pub struct Faults(std::sync::Arc<watch::Sender<Option<Task>>>);

impl Faults {
    /// `Some` only in a debug build with fault injection on.
    pub fn new(enabled: bool) -> Option<Faults> {
        (cfg!(debug_assertions) && enabled)
            .then(|| Faults(std::sync::Arc::new(watch::channel(None).0)))
    }

    /// `name`'s task panics (at once, wherever it waits).
    pub fn inject(&self, name: &str) -> Result<Task, String> {
        match Task::from_name(name) {
            // A thread of its own: the fault datagram ends it.
            Some(Task::Sip) => Err("sip: send the fault datagram instead".into()),
            Some(task) => {
                self.0.send_replace(Some(task));
                Ok(task)
            }
            None => Err(format!(
                "no task {name:?}; the tasks: {}",
                Task::ALL.map(Task::name).join(", ")
            )),
        }
    }

    /// Ends when a fault is injected into `task` (never otherwise).
    async fn struck(mut rx: watch::Receiver<Option<Task>>, task: Task) {
        if rx.wait_for(|t| *t == Some(task)).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The long-lived tasks, each under its name.
pub struct Supervisor {
    tasks: Vec<(Task, JoinHandle<()>)>,
    faults: Option<Faults>,
}

impl Supervisor {
    pub fn new(faults: Option<Faults>) -> Supervisor {
        Supervisor {
            tasks: Vec::new(),
            faults,
        }
    }

    /// Starts `task` on the runtime.
    pub fn spawn<F>(&mut self, task: Task, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = match &self.faults {
            None => tokio::spawn(future),
            Some(f) => {
                let struck = Faults::struck(f.0.subscribe(), task);
                tokio::spawn(async move {
                    tokio::select! {
                        () = future => {}
                        () = struck => panic!("fault injected: {task} dies"),
                    }
                })
            }
        };
        self.tasks.push((task, handle));
    }

    /// Watches `task`, started elsewhere (the SIP thread).
    pub fn adopt(&mut self, task: Task, handle: JoinHandle<()>) {
        self.tasks.push((task, handle));
    }

    /// Until `shutdown`: `None`. Or the first task to end before it (a
    /// panic, a lost socket), logged with its name.
    pub async fn watch(&mut self, shutdown: &CancellationToken) -> Option<Task> {
        let (mut task, result) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return None,
            ended = self.first_to_end() => ended,
        };
        // The writer ends when the call layer lets go of it, the registrar
        // and the replies when the core does: if the SIP thread (where the
        // core and the call manager run) has died, that is the cause.
        let follows_sip = matches!(task, Task::Tickets | Task::Registrar | Task::Replies);
        if follows_sip && self.wait(Task::Sip, Some(Duration::from_secs(1))).await {
            task = Task::Sip;
        }
        let why = "ended unexpectedly: the gateway stops so that it is restarted";
        match result.err().filter(|e| e.is_panic()).map(panic_text) {
            Some(p) => tracing::error!(task = %task.name(), panic = %p, "{task} {why}"),
            None => tracing::error!(task = %task.name(), "{task} {why}"),
        }
        Some(task)
    }

    /// The first task to end, no longer watched; never, if none is left.
    async fn first_to_end(&mut self) -> (Task, Result<(), JoinError>) {
        use std::task::Poll;
        std::future::poll_fn(|cx| {
            for i in 0..self.tasks.len() {
                if let Poll::Ready(r) = std::pin::Pin::new(&mut self.tasks[i].1).poll(cx) {
                    let (task, _) = self.tasks.remove(i);
                    return Poll::Ready((task, r));
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Waits for `task` to end, at most `limit`: whether it has (a task
    /// never started has not).
    pub async fn wait(&mut self, task: Task, limit: Option<Duration>) -> bool {
        let Some(i) = self.tasks.iter().position(|(t, _)| *t == task) else {
            return false;
        };
        let (_, handle) = self.tasks.remove(i);
        match limit {
            None => {
                let _ = handle.await;
                true
            }
            Some(limit) => {
                let mut handle = handle;
                match tokio::time::timeout(limit, &mut handle).await {
                    Ok(_) => true,
                    Err(_) => {
                        self.tasks.push((task, handle));
                        false
                    }
                }
            }
        }
    }

    /// Stops `task` where it is (a maintenance task: nothing to finish).
    pub fn abort(&mut self, task: Task) {
        if let Some(i) = self.tasks.iter().position(|(t, _)| *t == task) {
            self.tasks.remove(i).1.abort();
        }
    }

    /// Whether `task` was started and is still watched.
    pub fn has(&self, task: Task) -> bool {
        self.tasks.iter().any(|(t, _)| *t == task)
    }
}

/// What a panic said.
fn panic_text(e: JoinError) -> String {
    let p = e.into_panic();
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(not a message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forever() -> impl Future<Output = ()> + Send + 'static {
        std::future::pending()
    }

    #[tokio::test(start_paused = true)]
    async fn the_shutdown_ends_the_watch_with_nobody_dead() {
        let mut s = Supervisor::new(None);
        s.spawn(Task::Handover, forever());
        s.spawn(Task::Retention, forever());
        let stop = CancellationToken::new();
        stop.cancel();
        assert_eq!(s.watch(&stop).await, None);
        assert!(s.has(Task::Handover) && s.has(Task::Retention));
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_or_ends_is_named() {
        let stop = CancellationToken::new();
        let mut s = Supervisor::new(None);
        s.spawn(Task::Handover, forever());
        s.spawn(Task::Retention, async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            panic!("disk on fire");
        });
        s.spawn(Task::Reloads, async {
            tokio::time::sleep(Duration::from_secs(120)).await;
        });
        assert_eq!(s.watch(&stop).await, Some(Task::Retention));
        assert!(!s.has(Task::Retention));
        assert_eq!(s.watch(&stop).await, Some(Task::Reloads));
        assert!(s.has(Task::Handover));
    }

    #[tokio::test(start_paused = true)]
    async fn the_writer_ending_after_the_sip_thread_blames_the_sip_thread() {
        let stop = CancellationToken::new();
        let mut s = Supervisor::new(None);
        let (dead_tx, dead_rx) = tokio::sync::oneshot::channel::<()>();
        s.spawn(Task::Tickets, async {
            let _ = dead_rx.await;
        });
        s.adopt(
            Task::Sip,
            tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }),
        );
        drop(dead_tx);
        assert_eq!(s.watch(&stop).await, Some(Task::Sip));
        // A writer that ends on its own is the writer.
        let mut s = Supervisor::new(None);
        s.spawn(Task::Tickets, async {});
        s.adopt(Task::Sip, tokio::spawn(forever()));
        assert_eq!(s.watch(&stop).await, Some(Task::Tickets));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_is_bounded_and_keeps_watching_a_task_still_running() {
        let mut s = Supervisor::new(None);
        s.spawn(Task::Paging, async {
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        assert!(!s.wait(Task::Paging, Some(Duration::from_secs(10))).await);
        assert!(s.has(Task::Paging));
        assert!(s.wait(Task::Paging, None).await);
        assert!(!s.wait(Task::FollowUps, None).await, "never started");
    }

    #[tokio::test(start_paused = true)]
    async fn an_injected_fault_kills_the_named_task_only() {
        let faults = Faults::new(true).expect("a debug build");
        let mut s = Supervisor::new(Some(faults.clone()));
        for t in [Task::Handover, Task::FollowUps, Task::Retention] {
            s.spawn(t, forever());
        }
        assert_eq!(faults.inject("follow-ups"), Ok(Task::FollowUps));
        let stop = CancellationToken::new();
        assert_eq!(s.watch(&stop).await, Some(Task::FollowUps));
        assert!(s.has(Task::Handover) && s.has(Task::Retention));
        assert!(faults.inject("sip").is_err());
        assert!(faults.inject("nonsense").is_err());
    }

    #[test]
    fn no_faults_without_the_flag() {
        assert!(Faults::new(false).is_none());
    }

    #[test]
    fn names_are_unique_and_read_back() {
        for t in Task::ALL {
            assert_eq!(Task::from_name(t.name()), Some(t));
        }
    }
}
