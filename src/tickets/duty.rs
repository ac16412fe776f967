//! What the duty keeps in Redis besides the tickets: the rotation's offset
//! (`roster:offset`, so every gateway and the CLI agree and an authorised
//! person can move it on at once), the escalation schedule (`paging:due`, a
//! sorted set of ticket numbers by due time; `paging:<n>`, the opening time
//! set by the transition script and the progress), the follow-up calls'
//! schedule (`followup:due`: closed tickets by the time they closed, set by
//! the transition script), and pages for the officers' mobile page (the
//! `events` stream); and the one claim-with-lease loop the workers of both
//! schedules run (`run_claimed`), and the one way a claim is kept while its
//! work runs (`holding`).

use redis::{AsyncCommands, Script};

use super::store::{Store, StoreError};

/// Claims due tickets: each one's score moves a lease into the future, so
/// a step fires on one gateway only.
const CLAIM: &str = r#"
local p, now, lease, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', p .. 'paging:due', '-inf', now, 'LIMIT', 0, limit)
for _, n in ipairs(due) do
  redis.call('ZADD', p .. 'paging:due', 'XX', now + lease, n)
  -- Held: a change's wake meanwhile waits for this step's save.
  redis.call('HSET', p .. 'paging:' .. n, 'lease_until', now + lease)
end
return due
"#;

/// A step's outcome: progress and alarms fired, the lease released, and
/// the next due time, the earlier of the step's and a wake a change left
/// meanwhile (then taken); none of either: off the schedule.
const SAVE_PAGING: &str = r#"
local p, number, progress, clocks, next = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local pk = p .. 'paging:' .. number
redis.call('HSET', pk, 'progress', progress, 'clocks', clocks)
redis.call('HDEL', pk, 'lease_until')
local at = nil
if next ~= '' then at = tonumber(next) end
local w = redis.call('HGET', pk, 'wake_ms')
if w then
  redis.call('HDEL', pk, 'wake_ms')
  w = tonumber(w)
  if not at or w < at then at = w end
end
if at then
  redis.call('ZADD', p .. 'paging:due', at, number)
else
  redis.call('ZREM', p .. 'paging:due', number)
end
"#;

/// What the schedule keeps of one ticket (`paging:<n>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagingState {
    /// When it became open (Unix ms): the five-minute clock.
    pub opened_ms: Option<i64>,
    /// The escalation's progress (JSON).
    pub progress: Option<String>,
    /// The clocks' alarms fired (JSON).
    pub clocks: Option<String>,
}

/// Claims closed tickets due a follow-up call: closed before the cutoff,
/// each one's score moved so that it is due again after the lease.
const CLAIM_FOLLOW_UP: &str = r#"
local p, cutoff, moved, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', p .. 'followup:due', '-inf', cutoff, 'WITHSCORES', 'LIMIT', 0, limit)
local out = {}
for i = 1, #due, 2 do
  redis.call('ZADD', p .. 'followup:due', 'XX', tonumber(due[i + 1]) + moved, due[i])
  table.insert(out, due[i])
  table.insert(out, due[i + 1])
end
return out
"#;

impl Store {
    /// Up to `limit` closed tickets due their follow-up call (closed at
    /// or before `cutoff_ms`), with when they closed; each claimed for
    /// `lease_ms`.
    pub async fn claim_follow_ups(
        &self,
        cutoff_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        static SCRIPT: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(CLAIM_FOLLOW_UP));
        let mut c = self.conn.clone();
        let flat: Vec<String> = SCRIPT
            .arg(&self.prefix)
            .arg(cutoff_ms)
            .arg(lease_ms)
            .arg(limit)
            .invoke_async(&mut c)
            .await?;
        Ok(flat
            .chunks_exact(2)
            .filter_map(|p| match p {
                [n, score] => Some((n.clone(), score.parse::<f64>().ok()? as i64)),
                _ => None,
            })
            .collect())
    }

    /// The follow-up of `number` due as if it closed at `closed_ms`
    /// (deferred to working hours), or done (`None`).
    pub async fn follow_up_at(
        &self,
        number: &str,
        closed_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let key = self.key("followup:due");
        match closed_ms {
            Some(ms) => {
                let _: () = redis::cmd("ZADD")
                    .arg(key)
                    .arg("XX")
                    .arg(ms)
                    .arg(number)
                    .query_async(&mut c)
                    .await?;
            }
            None => {
                let _: () = c.zrem(key, number).await?;
            }
        }
        Ok(())
    }

    /// Claims the handover of the duty block that started at `start_ms`:
    /// true for the one gateway that is to make it.
    pub async fn claim_handover(&self, start_ms: i64) -> Result<bool, StoreError> {
        self.claim_once("handover", start_ms).await
    }

    /// Claims the consultations' digest of the working day that started
    /// at `start_ms`: true for the one gateway that is to send it.
    pub async fn claim_digest(&self, start_ms: i64) -> Result<bool, StoreError> {
        self.claim_once("digest", start_ms).await
    }

    /// `<what>:claim:<start_ms>` set if absent (kept 40 days): true for the
    /// one gateway that set it.
    async fn claim_once(&self, what: &str, start_ms: i64) -> Result<bool, StoreError> {
        let mut c = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(&format!("{what}:claim:{start_ms}")))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(40 * 86_400)
            .query_async(&mut c)
            .await?;
        Ok(set.is_some())
    }

    /// The latest handover's summary (JSON), as the board shows it.
    pub async fn latest_handover(&self) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        Ok(c.get(self.key("handover:latest")).await?)
    }

    /// A handover made: the latest, and kept in the `handovers` stream.
    pub async fn save_handover(&self, summary: &str) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: () = redis::pipe()
            .atomic()
            .set(self.key("handover:latest"), summary)
            .ignore()
            .cmd("XADD")
            .arg(self.key("handovers"))
            .arg("*")
            .arg("summary")
            .arg(summary)
            .ignore()
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Periods the rotation has been advanced by hand (0 when never).
    pub async fn rotation_offset(&self) -> Result<i64, StoreError> {
        let mut c = self.conn.clone();
        let v: Option<i64> = c.get(self.key("roster:offset")).await?;
        Ok(v.unwrap_or(0))
    }

    /// Moves the rotation on by one period; returns the new offset.
    pub async fn advance_rotation(&self) -> Result<i64, StoreError> {
        let mut c = self.conn.clone();
        Ok(c.incr(self.key("roster:offset"), 1).await?)
    }

    /// Up to `limit` tickets with a step due at `now_ms`, each claimed for
    /// `lease_ms`.
    pub async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        static SCRIPT: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(CLAIM));
        let mut c = self.conn.clone();
        Ok(SCRIPT
            .arg(&self.prefix)
            .arg(now_ms)
            .arg(lease_ms)
            .arg(limit)
            .invoke_async(&mut c)
            .await?)
    }

    /// Keeps a claimed ticket's lease until `until_ms` (a step still running).
    pub async fn extend_lease(&self, number: &str, until_ms: i64) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: () = redis::pipe()
            .atomic()
            .cmd("ZADD")
            .arg(self.key("paging:due"))
            .arg("XX")
            .arg(until_ms)
            .arg(number)
            .ignore()
            .cmd("HSET")
            .arg(self.key(&format!("paging:{number}")))
            .arg("lease_until")
            .arg(until_ms)
            .ignore()
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// When the ticket became open (Unix ms), its escalation progress and
    /// the clocks' alarms fired (JSON each), as far as they are known.
    pub async fn paging_state(&self, number: &str) -> Result<PagingState, StoreError> {
        let mut c = self.conn.clone();
        let (opened_ms, progress, clocks) = redis::cmd("HMGET")
            .arg(self.key(&format!("paging:{number}")))
            .arg("opened_ms")
            .arg("progress")
            .arg("clocks")
            .query_async(&mut c)
            .await?;
        Ok(PagingState {
            opened_ms,
            progress,
            clocks,
        })
    }

    /// The progress, the clocks' alarms fired and the next due time (none:
    /// nothing more to do), together. A deadline a change set meanwhile
    /// (`wake_ms`, see `Change::wake`) is folded in: the earlier one wins.
    pub async fn save_paging(
        &self,
        number: &str,
        progress: &str,
        clocks: &str,
        next_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        static SCRIPT: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(SAVE_PAGING));
        let mut c = self.conn.clone();
        let _: () = SCRIPT
            .arg(&self.prefix)
            .arg(number)
            .arg(progress)
            .arg(clocks)
            .arg(next_ms.map(|n| n.to_string()).unwrap_or_default())
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    /// A page for a member's mobile page (the events stream, capped).
    pub async fn add_page_event(
        &self,
        member: &str,
        ticket: &str,
        text: &str,
    ) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: String = redis::cmd("XADD")
            .arg(self.key("events"))
            .arg("MAXLEN")
            .arg("~")
            .arg(100_000)
            .arg("*")
            .arg("kind")
            .arg("page")
            .arg("member")
            .arg(member)
            .arg("ticket")
            .arg(ticket)
            .arg("text")
            .arg(text)
            .query_async(&mut c)
            .await?;
        Ok(())
    }
}

/// The one claim-with-lease loop of the store's schedules (the escalation
/// steps, the follow-up calls): every `tick` until `stop`, `claim` takes
/// what is due (the store's script moves each past a lease, so another
/// gateway or a restart takes it again if it is not finished), and each
/// item runs in a task of its own (`what` names it in the log); at the stop
/// the items in flight finish.
pub async fn run_claimed<T, C, CF, W, WF>(
    what: &'static str,
    tick: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
    claim: C,
    work: W,
) where
    T: Send + 'static,
    C: Fn() -> CF,
    CF: std::future::Future<Output = Result<Vec<T>, StoreError>>,
    W: Fn(T) -> WF,
    WF: std::future::Future<Output = ()> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(tick) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        }
        match claim().await {
            Ok(items) => {
                for item in items {
                    tasks.spawn(work(item));
                }
            }
            Err(e) => tracing::debug!(error = %e, "{what}: cannot reach redis"),
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// `work`, its claim kept meanwhile: every third of `lease`, `renew` moves
/// it a lease past now (the store's call for that claim). A dead gateway's
/// claim so lapses within one lease, however long the work takes; a
/// renewal that fails is tried again at the next (the lease has two more
/// in it).
pub async fn holding<R, RF, W>(lease: std::time::Duration, renew: R, work: W) -> W::Output
where
    R: Fn(i64) -> RF,
    RF: std::future::Future<Output = Result<(), StoreError>>,
    W: std::future::Future,
{
    let keep = async {
        loop {
            tokio::time::sleep(lease / 3).await;
            let until = jiff::Timestamp::now().as_millisecond() + lease.as_millis() as i64;
            if let Err(e) = renew(until).await {
                tracing::debug!(error = %e, "lease not renewed");
            }
        }
    };
    tokio::select! {
        out = work => out,
        never = keep => never, // never ends
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// Work of 95 s under a 30 s lease: renewed at 10, 20, ... 90 s (a
    /// failed renewal tried again at the next), never after the work ends;
    /// the work's own outcome comes back.
    #[tokio::test(start_paused = true)]
    async fn a_claim_is_renewed_every_third_of_its_lease_while_the_work_runs() {
        let renewals = AtomicU32::new(0);
        let renew = |_until: i64| {
            let n = renewals.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                match n {
                    3 => Err(StoreError::NotFound("a failed renewal".into())),
                    _ => Ok(()),
                }
            }
        };
        let work = async {
            tokio::time::sleep(Duration::from_secs(95)).await;
            "done"
        };
        let out = holding(Duration::from_secs(30), renew, work).await;
        assert_eq!((out, renewals.load(Ordering::Relaxed)), ("done", 9));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(renewals.load(Ordering::Relaxed), 9);
    }
}
