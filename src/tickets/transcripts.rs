//! The transcription queue (`crate::transcribe`): tickets whose call
//! recording waits for its transcript, in the order the tickets arrived
//! (`transcribe:queue`, score = the ticket's receipt), the recording each
//! is to be made from (`transcribe:recording`), and the claim with a lease
//! (`transcribe:hold`, score = until when a worker holds it, or when a
//! failed one may be tried again) so that one worker on one gateway works
//! on it and a dead worker's job is taken again when the lease runs out.

use redis::{AsyncCommands, Script};

use super::store::{Store, StoreError};

/// Queues a ticket once (the ticket's receipt is its place; a replayed
/// recording finds it queued, with the recording it was queued for).
const ENQUEUE: &str = r#"
local p, number, sha = ARGV[1], ARGV[2], ARGV[3]
local received = redis.call('HGET', p .. 'ticket:' .. number, 'received')
if not received then return 0 end
local added = redis.call('ZADD', p .. 'transcribe:queue', 'NX', tonumber(received) * 1000, number)
-- The recording a queued ticket waits for stays the one it was queued with.
if added == 1 then redis.call('HSET', p .. 'transcribe:recording', number, sha) end
return added
"#;

/// The first ticket in arrival order that nobody holds and whose retry is
/// due, held for the lease; none when there is none.
const CLAIM: &str = r#"
local p, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local queued = redis.call('ZRANGE', p .. 'transcribe:queue', 0, 199)
for _, n in ipairs(queued) do
  local hold = redis.call('ZSCORE', p .. 'transcribe:hold', n)
  if not hold or tonumber(hold) <= now then
    redis.call('ZADD', p .. 'transcribe:hold', now + lease, n)
    return {n, redis.call('HGET', p .. 'transcribe:recording', n) or ''}
  end
end
return {}
"#;

/// The queue as `/metrics` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub depth: u64,
    /// When the oldest queued ticket arrived (Unix ms).
    pub oldest_ms: Option<i64>,
}

impl Store {
    /// Queues `number`'s recording `sha256` for its transcript; false when
    /// it was queued already (or the ticket is unknown).
    pub async fn enqueue_transcript(&self, number: &str, sha256: &str) -> Result<bool, StoreError> {
        static SCRIPT: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(ENQUEUE));
        let mut c = self.conn.clone();
        let added: i64 = SCRIPT
            .arg(&self.prefix)
            .arg(number)
            .arg(sha256)
            .invoke_async(&mut c)
            .await?;
        Ok(added == 1)
    }

    /// The next ticket to transcribe and its recording's sha256, held
    /// until `now_ms + lease_ms`.
    pub async fn claim_transcript(
        &self,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<(String, String)>, StoreError> {
        static SCRIPT: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(CLAIM));
        let mut c = self.conn.clone();
        let got: Vec<String> = SCRIPT
            .arg(&self.prefix)
            .arg(now_ms)
            .arg(lease_ms)
            .invoke_async(&mut c)
            .await?;
        Ok(match got.as_slice() {
            [n, sha] => Some((n.clone(), sha.clone())),
            _ => None,
        })
    }

    /// Holds `number` (still working, or not to be tried before `until_ms`).
    pub async fn hold_transcript(&self, number: &str, until_ms: i64) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: () = c
            .zadd(self.key("transcribe:hold"), number, until_ms)
            .await?;
        Ok(())
    }

    /// A running job's claim on `number` kept until `until_ms`: only a hold
    /// there is (a job ended meanwhile left none) and only later (never
    /// shortening a retry's wait); Redis 6.2's `ZADD XX GT`.
    pub async fn renew_transcript(&self, number: &str, until_ms: i64) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: () = redis::cmd("ZADD")
            .arg(self.key("transcribe:hold"))
            .arg("XX")
            .arg("GT")
            .arg(until_ms)
            .arg(number)
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// `number` leaves the queue (transcribed, or given up on).
    pub async fn dequeue_transcript(&self, number: &str) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: () = redis::pipe()
            .atomic()
            .zrem(self.key("transcribe:queue"), number)
            .ignore()
            .zrem(self.key("transcribe:hold"), number)
            .ignore()
            .hdel(self.key("transcribe:recording"), number)
            .ignore()
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Whether `number` waits in the queue.
    pub async fn transcript_queued(&self, number: &str) -> Result<bool, StoreError> {
        let mut c = self.conn.clone();
        let score: Option<f64> = c.zscore(self.key("transcribe:queue"), number).await?;
        Ok(score.is_some())
    }

    /// How many wait, and since when the oldest.
    pub async fn transcript_queue(&self) -> Result<QueueStats, StoreError> {
        let mut c = self.conn.clone();
        let key = self.key("transcribe:queue");
        let (depth, oldest): (u64, Vec<(String, f64)>) = redis::pipe()
            .zcard(&key)
            .zrange_withscores(&key, 0, 0)
            .query_async(&mut c)
            .await?;
        Ok(QueueStats {
            depth,
            oldest_ms: oldest.first().map(|(_, s)| *s as i64),
        })
    }
}
