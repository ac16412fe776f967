//! The store's connection: one Redis (`redis.url`), or the master that Redis
//! Sentinel names (`redis.sentinels`, `master_name`), followed across a
//! failover. The redis crate's `ConnectionManager` reconnects to one
//! address; behind Sentinel that address can become a replica or vanish.
//! So a failure that means "not the master any more" (the connection lost
//! or refused, a timeout, a `READONLY` reply) makes the next command ask the
//! sentinels again and connect to whoever they name now. Nothing is retried
//! here: the ticket writer's journal holds what failed and replays it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Client, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use tokio::time::Instant;

/// A connection to the store's Redis, cheap to clone.
#[derive(Clone)]
pub struct Conn {
    /// None behind Sentinel until one names a master.
    current: Arc<RwLock<Option<ConnectionManager>>>,
    sentinel: Option<Arc<Follow>>,
}

/// What following a failover needs.
struct Follow {
    client: tokio::sync::Mutex<SentinelClient>,
    /// The master connected to last, and whether it must be asked again.
    state: std::sync::Mutex<FollowState>,
}

struct FollowState {
    stale: bool,
    asked: Option<Instant>,
    master: String,
}

/// The sentinels are asked at most this often.
const ASK_EVERY: Duration = Duration::from_millis(500);

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1))
}

impl Conn {
    /// One Redis, reconnected to as needed (lazily: no Redis at start is
    /// no error).
    pub fn single(client: Client) -> RedisResult<Conn> {
        Ok(Conn {
            current: Arc::new(RwLock::new(Some(ConnectionManager::new_lazy_with_config(
                client,
                config(),
            )?))),
            sentinel: None,
        })
    }

    /// The master `master_name` as the `sentinels` (`host:port`, or
    /// `redis://…` URLs when they need a password) name it; the master's
    /// own password, database and TLS (`rediss://`) from `master_url`. Until
    /// a sentinel answers, commands fail (and the journal keeps them).
    pub fn sentinel(
        sentinels: &[String],
        master_name: &str,
        master_url: &str,
    ) -> RedisResult<Conn> {
        let info = redis::IntoConnectionInfo::into_connection_info(master_url)?;
        let mut node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(info.redis_settings().clone());
        if master_url.starts_with("rediss://") {
            node = node.set_tls_mode(redis::TlsMode::Secure);
        }
        let sentinels: Vec<String> = sentinels
            .iter()
            .map(|s| match s.contains("://") {
                true => s.clone(),
                false => format!("redis://{s}"),
            })
            .collect();
        let client = SentinelClient::build(
            sentinels,
            master_name,
            Some(node),
            SentinelServerType::Master,
        )?;
        Ok(Conn {
            // The first command asks the sentinels.
            current: Arc::new(RwLock::new(None)),
            sentinel: Some(Arc::new(Follow {
                client: tokio::sync::Mutex::new(client),
                state: std::sync::Mutex::new(FollowState {
                    stale: true,
                    asked: None,
                    master: String::new(),
                }),
            })),
        })
    }

    /// Whether the master is the one Sentinel names.
    pub fn follows_sentinel(&self) -> bool {
        self.sentinel.is_some()
    }

    fn manager(&self) -> RedisResult<ConnectionManager> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| RedisError::from((ErrorKind::Io, "no sentinel names a master yet")))
    }

    /// Behind Sentinel, with the master in doubt: ask the sentinels (not
    /// more than every `ASK_EVERY`) and connect to the master they name.
    async fn follow(&self) {
        let Some(f) = &self.sentinel else { return };
        {
            let mut st = f.state.lock().unwrap_or_else(|e| e.into_inner());
            if !st.stale || st.asked.is_some_and(|t| t.elapsed() < ASK_EVERY) {
                return;
            }
            st.asked = Some(Instant::now());
        }
        let mut client = f.client.lock().await;
        match client.async_get_client().await {
            Ok(master) => {
                let addr = master.get_connection_info().addr().to_string();
                match ConnectionManager::new_lazy_with_config(master, config()) {
                    Ok(m) => {
                        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(m);
                        let mut st = f.state.lock().unwrap_or_else(|e| e.into_inner());
                        if st.master != addr {
                            tracing::info!(master = %addr, "redis: following the master Sentinel names");
                            st.master = addr;
                        }
                        st.stale = false;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "redis: cannot connect to the master Sentinel names")
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "redis: no sentinel names a master"),
        }
    }

    /// After a failure: whether it says the master moved (then the next
    /// command asks the sentinels).
    fn judge<T>(&self, r: &RedisResult<T>) {
        let (Some(f), Err(e)) = (&self.sentinel, r) else {
            return;
        };
        if moved(e) || self.manager().is_err() {
            f.state.lock().unwrap_or_else(|e| e.into_inner()).stale = true;
        }
    }
}

/// A failure that may mean this is not the master any more.
fn moved(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN"))
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.follow().await;
            let r = match self.manager() {
                Ok(mut m) => m.req_packed_command(cmd).await,
                Err(e) => Err(e),
            };
            self.judge(&r);
            r
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.follow().await;
            let r = match self.manager() {
                Ok(mut m) => m.req_packed_commands(cmd, offset, count).await,
                Err(e) => Err(e),
            };
            self.judge(&r);
            r
        })
    }

    fn get_db(&self) -> i64 {
        self.manager().map_or(0, |m| m.get_db())
    }
}
