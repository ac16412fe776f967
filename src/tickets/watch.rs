//! The channel watch's records, kept here because every key has one owner:
//! how each watched channel stands (`watch:channels`, a hash of channel →
//! JSON: up or down, since when, failures in a row, the last check), the
//! latest findings of the softphone and duty checks (`watch:findings`, a
//! hash of kind → JSON), both shared by every gateway and written compare-
//! and-set; and the claims that make one gateway do each round of a check
//! (`watch:claim:<check>:<round>`, set once, expiring). What the records
//! say is `crate::watch`'s; this module only keeps them.

use redis::{AsyncCommands, Script};

use super::store::{Store, StoreError};

/// Sets a field of a hash to `ARGV[3]` only if it holds `ARGV[2]` now (""
/// for absent): 1 when set.
const COMPARE_AND_SET: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"#;

/// The two hashes of the watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchRecord {
    /// `watch:channels`: the trunk, each webhook receiver.
    Channels,
    /// `watch:findings`: the softphone and duty checks' findings.
    Findings,
}

impl WatchRecord {
    fn name(self) -> &'static str {
        match self {
            WatchRecord::Channels => "watch:channels",
            WatchRecord::Findings => "watch:findings",
        }
    }
}

impl Store {
    /// Claims round `round` of the check `check` for this gateway: true
    /// for the one gateway that is to make it (the claim expires after
    /// `keep_ms`).
    pub async fn claim_watch(
        &self,
        check: &str,
        round: i64,
        keep_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut c = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(&format!("watch:claim:{check}:{round}")))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(keep_ms.max(1))
            .query_async(&mut c)
            .await?;
        Ok(set.is_some())
    }

    /// Every field of `record` (name → JSON).
    pub async fn watch_records(
        &self,
        record: WatchRecord,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut c = self.conn.clone();
        let mut all: Vec<(String, String)> = c.hgetall(self.key(record.name())).await?;
        all.sort();
        Ok(all)
    }

    /// One field of `record`, if set.
    pub async fn watch_record(
        &self,
        record: WatchRecord,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        Ok(c.hget(self.key(record.name()), name).await?)
    }

    /// Sets `name` of `record` to `next` if it still holds `expected`
    /// (`None`: absent): false when another gateway changed it meanwhile.
    pub async fn save_watch_record(
        &self,
        record: WatchRecord,
        name: &str,
        expected: Option<&str>,
        next: &str,
    ) -> Result<bool, StoreError> {
        static SCRIPT: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(COMPARE_AND_SET));
        let mut c = self.conn.clone();
        let set: i64 = SCRIPT
            .key(self.key(record.name()))
            .arg(name)
            .arg(expected.unwrap_or(""))
            .arg(next)
            .invoke_async(&mut c)
            .await?;
        Ok(set == 1)
    }

    /// Forgets fields of `record` (a channel no longer configured).
    pub async fn forget_watch_records(
        &self,
        record: WatchRecord,
        names: &[String],
    ) -> Result<(), StoreError> {
        if names.is_empty() {
            return Ok(());
        }
        let mut c = self.conn.clone();
        let _: () = c.hdel(self.key(record.name()), names).await?;
        Ok(())
    }
}
