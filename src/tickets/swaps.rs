//! Swaps and overrides of the duty, and the duty's notices, kept here
//! because every key has one owner (layout: docs/redis-keys.md):
//!
//! - `swap:<id>` (hash: `state`, `data`: the swap as JSON with its audit
//!   trail), numbered by `swaps:seq`, indexed by `swaps` (score: when its
//!   last block ends, Unix ms). A change is compare-and-set on the state,
//!   in one script with its entry in the log, so two approvers cannot both
//!   act on one swap.
//! - `swaps:log` (stream, never trimmed): every change, who made it, and
//!   the notices it owes (`notices`, JSON `[[member, text], …]`); every
//!   gateway reads it to refresh its roster and to send what is owed, once
//!   (`swaps:notice:<claim>`, set once).
//! - `reminders:claim:<YYYYMMDD>`: the evening reminders of a day, sent
//!   once.
//! - `calendar:<sha256>` → JSON (`member`, `scope`), a calendar
//!   subscription's token stored as its hash; `calendar:member:<id>`, the
//!   member's current one (a new token replaces it, `officer revoke` ends it).
//!
//! What the records mean is `crate::roster::swaps`' and `crate::swaps`';
//! this module only keeps them.

use std::collections::HashMap;

use redis::{AsyncCommands, Script};

use super::store::{Store, StoreError};
use crate::roster::swaps::{Swap, SwapState};

/// A swap written if its state is still `ARGV[3]` (`''`: new), with its
/// entry in the log: `{'ok'}`, or `{'stale', state}`.
const SAVE_SWAP: &str = r#"
local p, id, expected, state, data, ends = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local k = p .. 'swap:' .. id
local cur = redis.call('HGET', k, 'state') or ''
if cur ~= expected then return {'stale', cur} end
redis.call('HSET', k, 'state', state, 'data', data)
redis.call('ZADD', p .. 'swaps', ends, id)
redis.call('XADD', p .. 'swaps:log', '*', 'swap', id, 'action', ARGV[7], 'by', ARGV[8],
  'state', state, 'at', ARGV[9], 'notices', ARGV[10], 'claim', ARGV[11])
return {'ok'}
"#;

/// A member's calendar subscription replaced by the token hash `ARGV[3]`
/// with `ARGV[4]` (`''`: none, ended): 1 when there was one before.
const REPLACE_CALENDAR: &str = r#"
local p, member, hash, sub = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local mine = p .. 'calendar:member:' .. member
local old = redis.call('GET', mine)
if old then redis.call('DEL', p .. 'calendar:' .. old) end
if hash ~= '' then
  redis.call('SET', p .. 'calendar:' .. hash, sub)
  redis.call('SET', mine, hash)
else
  redis.call('DEL', mine)
end
if old then return 1 end
return 0
"#;

/// A change's entry in the log, besides the swap itself.
#[derive(Debug, Clone, Default)]
pub struct DutyNote {
    /// What happened: a swap's action (`approve`, `override`, …), or
    /// `reload`.
    pub action: String,
    /// A member id, `reload`.
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// Who is owed a text, and the text.
    pub notices: Vec<(String, String)>,
    /// What sending them claims, once for all gateways.
    pub claim: String,
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DutyLogEntry {
    pub id: String,
    /// The swap it changed, if any.
    pub swap: Option<u64>,
    pub action: String,
    pub by: String,
    pub state: String,
    pub notices: Vec<(String, String)>,
    pub claim: String,
}

/// A swap saved, or found changed meanwhile (then in that state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    Done,
    Changed(Option<SwapState>),
}

/// A calendar subscription: whose, and whether it is everyone's duty.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subscription {
    pub member: String,
    /// `mine` or `all`.
    pub scope: String,
}

/// A stream entry as Redis answers it: id and fields.
type Entry = (String, Vec<(String, String)>);

fn corrupt(what: String, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        number: what,
        problem: e.to_string(),
    }
}

impl Store {
    /// The next swap number.
    pub async fn next_swap_id(&self) -> Result<u64, StoreError> {
        let mut c = self.conn.clone();
        Ok(c.incr(self.key("swaps:seq"), 1).await?)
    }

    /// Writes `swap` if its stored state is still `expected` (`None`: a
    /// new one), with its entry in the log.
    pub async fn save_swap(
        &self,
        swap: &Swap,
        expected: Option<SwapState>,
        note: &DutyNote,
    ) -> Result<Saved, StoreError> {
        static SCRIPT: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(SAVE_SWAP));
        let data =
            serde_json::to_string(swap).map_err(|e| corrupt(format!("swap {}", swap.id), e))?;
        let notices = serde_json::to_string(&note.notices).unwrap_or_else(|_| "[]".into());
        let mut c = self.conn.clone();
        let out: Vec<String> = SCRIPT
            .arg(&self.prefix)
            .arg(swap.id)
            .arg(expected.map_or("", |s| s.as_str()))
            .arg(swap.state.as_str())
            .arg(data)
            .arg(swap.until.as_millisecond())
            .arg(&note.action)
            .arg(&note.by)
            .arg(&note.at)
            .arg(notices)
            .arg(&note.claim)
            .invoke_async(&mut c)
            .await?;
        Ok(match out.first().map(String::as_str) {
            Some("ok") => Saved::Done,
            _ => {
                Saved::Changed(out.get(1).and_then(|s| {
                    serde_json::from_value(serde_json::Value::String(s.clone())).ok()
                }))
            }
        })
    }

    /// One swap, if it exists.
    pub async fn swap(&self, id: u64) -> Result<Option<Swap>, StoreError> {
        let mut c = self.conn.clone();
        let data: Option<String> = c.hget(self.key(&format!("swap:{id}")), "data").await?;
        data.map(|d| serde_json::from_str(&d).map_err(|e| corrupt(format!("swap {id}"), e)))
            .transpose()
    }

    /// Every swap whose last block ends at `since_ms` or later, by number
    /// (one that cannot be read is left out, and logged).
    pub async fn swaps_since(&self, since_ms: i64) -> Result<Vec<Swap>, StoreError> {
        let mut c = self.conn.clone();
        let ids: Vec<u64> = c.zrangebyscore(self.key("swaps"), since_ms, "+inf").await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hget(self.key(&format!("swap:{id}")), "data");
        }
        let data: Vec<Option<String>> = pipe.query_async(&mut c).await?;
        let mut out: Vec<Swap> = ids
            .iter()
            .zip(data)
            .filter_map(|(id, d)| {
                let d = d?;
                serde_json::from_str(&d)
                    .map_err(
                        |e| tracing::warn!(swap = id, error = %e, "an unreadable swap is left out"),
                    )
                    .ok()
            })
            .collect();
        out.sort_by_key(|s| s.id);
        Ok(out)
    }

    /// An entry in the log that changes no swap (a reload's moves).
    pub async fn note_duty(&self, note: &DutyNote) -> Result<(), StoreError> {
        let notices = serde_json::to_string(&note.notices).unwrap_or_else(|_| "[]".into());
        let mut c = self.conn.clone();
        let _: String = redis::cmd("XADD")
            .arg(self.key("swaps:log"))
            .arg("*")
            .arg("swap")
            .arg("")
            .arg("action")
            .arg(&note.action)
            .arg("by")
            .arg(&note.by)
            .arg("state")
            .arg("")
            .arg("at")
            .arg(&note.at)
            .arg("notices")
            .arg(notices)
            .arg("claim")
            .arg(&note.claim)
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Up to `count` entries of the log after the entry `after` (`0-0`:
    /// from the start; `<ms>-0`: from that instant).
    pub async fn duty_log_after(
        &self,
        after: &str,
        count: usize,
    ) -> Result<Vec<DutyLogEntry>, StoreError> {
        let mut c = self.conn.clone();
        let read: Option<Vec<(String, Vec<Entry>)>> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(self.key("swaps:log"))
            .arg(after)
            .query_async(&mut c)
            .await?;
        Ok(read
            .into_iter()
            .flatten()
            .flat_map(|(_, entries)| entries)
            .map(|(id, fields)| {
                let f: HashMap<String, String> = fields.into_iter().collect();
                let get = |k: &str| f.get(k).cloned().unwrap_or_default();
                DutyLogEntry {
                    swap: get("swap").parse().ok(),
                    action: get("action"),
                    by: get("by"),
                    state: get("state"),
                    notices: serde_json::from_str(&get("notices")).unwrap_or_default(),
                    claim: get("claim"),
                    id,
                }
            })
            .collect())
    }

    /// The id of the log's newest entry, if any: what a gateway's roster
    /// is up to date with.
    pub async fn duty_log_newest(&self) -> Result<Option<String>, StoreError> {
        self.newest_in("swaps:log").await
    }

    /// Claims the sending of a log entry's notices: true for the one
    /// gateway that is to send them (kept 40 days).
    pub async fn claim_duty_notices(&self, claim: &str) -> Result<bool, StoreError> {
        self.set_once(&format!("swaps:notice:{claim}")).await
    }

    /// Claims the evening reminders of the blocks of `day`: true for the
    /// one gateway that is to send them.
    pub async fn claim_reminders(&self, day: jiff::civil::Date) -> Result<bool, StoreError> {
        self.set_once(&format!("reminders:claim:{}", day.strftime("%Y%m%d")))
            .await
    }

    async fn set_once(&self, key: &str) -> Result<bool, StoreError> {
        let mut c = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(40 * 86_400)
            .query_async(&mut c)
            .await?;
        Ok(set.is_some())
    }

    /// Keeps a calendar subscription (by its token's hash), replacing the
    /// member's previous one, in one step.
    pub async fn set_calendar_token(
        &self,
        hash: &str,
        sub: &Subscription,
    ) -> Result<(), StoreError> {
        static SCRIPT: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(REPLACE_CALENDAR));
        let json = serde_json::to_string(sub).map_err(|e| corrupt("calendar".into(), e))?;
        let mut c = self.conn.clone();
        let _: () = SCRIPT
            .arg(&self.prefix)
            .arg(&sub.member)
            .arg(hash)
            .arg(json)
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    /// The subscription a token's hash stands for, while it stands.
    pub async fn calendar_token(&self, hash: &str) -> Result<Option<Subscription>, StoreError> {
        let mut c = self.conn.clone();
        let json: Option<String> = c.get(self.key(&format!("calendar:{hash}"))).await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Ends a member's calendar subscription; whether there was one.
    pub async fn revoke_calendar(&self, member: &str) -> Result<bool, StoreError> {
        static SCRIPT: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(REPLACE_CALENDAR));
        let mut c = self.conn.clone();
        let had: i64 = SCRIPT
            .arg(&self.prefix)
            .arg(member)
            .arg("")
            .arg("")
            .invoke_async(&mut c)
            .await?;
        Ok(had == 1)
    }
}
