//! The counters that limit guessing and callbacks, kept here because
//! every key has one owner: attempts per member and per source (logins'
//! `login:ip:<source>`; softphones' REGISTERs, `register:member:<id>|<source>`
//! and `register:ip:<source>`; replies to MESSAGE pages, `reply:member:<id>`
//! and `reply:ip:<source>`, each for a minute), a member's failed
//! logins (`login:failures:<member>`, compared and set in one step), and
//! callbacks per ticket and per member in a court day
//! (`callback:ticket:<n>:<day>`, `callback:member:<id>:<day>`). Counted
//! before the check they guard, taken back when it passes.

use jiff::Timestamp;
use redis::{AsyncCommands, Script};

use super::store::{Store, StoreError};
use crate::court_time::court_day;

/// What [`Store::count_attempt`] and [`Store::count_source_attempt`]
/// count: each kind has its own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A login to the officers' API.
    Login,
    /// A softphone's REGISTER with credentials.
    Register,
    /// A reply to a SIP MESSAGE page (`paging::replies`).
    Reply,
}

/// A member's failed logins as the store keeps them: how many, the last
/// one when (Unix milliseconds). What they allow is `api::auth`'s rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    pub count: u32,
    pub last_ms: i64,
}

impl LoginFailures {
    fn encode(self) -> String {
        format!("{} {}", self.count, self.last_ms)
    }

    fn decode(v: &str) -> Option<LoginFailures> {
        let (count, last) = v.split_once(' ')?;
        Some(LoginFailures {
            count: count.parse().ok()?,
            last_ms: last.parse().ok()?,
        })
    }
}

/// KEYS[1] set to ARGV[2] for ARGV[3] ms if it holds ARGV[1] (`""`: if it
/// does not exist); 1 if set.
const SWAP: &str = r#"
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"#;

impl Store {
    /// Counts one attempt (a softphone's REGISTER with credentials; logins
    /// count per member as [`LoginFailures`] instead) against the member
    /// from this source and against the source
    /// (`register:member:<id>|<source>`, `register:ip:<source>`, each for a
    /// minute) and answers both counts. Counted first, both at once
    /// (MULTI), so that attempts sent in parallel cannot all pass a check
    /// made before any of them was counted.
    pub async fn count_attempt(
        &self,
        kind: Attempt,
        member: &str,
        source: &str,
    ) -> Result<(i64, i64), StoreError> {
        let mut c = self.conn.clone();
        let mut counts = redis::pipe();
        counts.atomic();
        for k in self.attempt_keys(kind, member, source) {
            counts
                .incr(&k, 1)
                .cmd("EXPIRE")
                .arg(&k)
                .arg(60)
                .arg("NX")
                .ignore();
        }
        Ok(counts.query_async(&mut c).await?)
    }

    /// Takes back an attempt [`Store::count_attempt`] counted: a good one
    /// does not count against the limit of failures.
    pub async fn uncount_attempt(
        &self,
        kind: Attempt,
        member: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let mut pipe = redis::pipe();
        for k in self.attempt_keys(kind, member, source) {
            pipe.decr(k, 1).ignore();
        }
        Ok(pipe.query_async(&mut c).await?)
    }

    /// Counts one attempt against the source only (`login:ip:<source>` or
    /// `register:ip:<source>`, for a minute) and answers its count; for
    /// logins, whose failures per member are [`LoginFailures`].
    pub async fn count_source_attempt(
        &self,
        kind: Attempt,
        source: &str,
    ) -> Result<i64, StoreError> {
        let [_, k] = self.attempt_keys(kind, "", source);
        let mut c = self.conn.clone();
        let (count,): (i64,) = redis::pipe()
            .atomic()
            .incr(&k, 1)
            .cmd("EXPIRE")
            .arg(&k)
            .arg(60)
            .arg("NX")
            .ignore()
            .query_async(&mut c)
            .await?;
        Ok(count)
    }

    /// Takes back an attempt [`Store::count_source_attempt`] counted.
    pub async fn uncount_source_attempt(
        &self,
        kind: Attempt,
        source: &str,
    ) -> Result<(), StoreError> {
        let [_, k] = self.attempt_keys(kind, "", source);
        let mut c = self.conn.clone();
        Ok(c.decr(k, 1).await?)
    }

    fn attempt_keys(&self, kind: Attempt, member: &str, source: &str) -> [String; 2] {
        let (by_member, kind) = match kind {
            Attempt::Login => (format!("login:member:{member}"), "login"),
            // A softphone's failures count per member *and source*: a
            // stranger who guesses wrong is locked out of that member, the
            // member's own phone elsewhere is not.
            Attempt::Register => (format!("register:member:{member}|{source}"), "register"),
            // A member's replies come through the court's PBX, from
            // wherever they are: per member, whatever the source.
            Attempt::Reply => (format!("reply:member:{member}"), "reply"),
        };
        [
            self.key(&by_member),
            self.key(&format!("{kind}:ip:{source}")),
        ]
    }

    /// A member's failed logins on record (`login:failures:<member>`).
    pub async fn login_failures(&self, member: &str) -> Result<Option<LoginFailures>, StoreError> {
        let mut c = self.conn.clone();
        let v: Option<String> = c.get(self.login_failures_key(member)).await?;
        Ok(v.as_deref().and_then(LoginFailures::decode))
    }

    /// Replaces `was` (what [`Store::login_failures`] read) by `now`, kept
    /// for `keep`, only if nobody changed the record in between (compared
    /// and set in one step): `false` when someone did, and the caller reads
    /// again. So attempts sent in parallel, to any gateway, each see the
    /// count the one before left.
    pub async fn swap_login_failures(
        &self,
        member: &str,
        was: Option<LoginFailures>,
        now: LoginFailures,
        keep: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let mut c = self.conn.clone();
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(SWAP));
        let swapped: i64 = SCRIPT
            .key(self.login_failures_key(member))
            .arg(was.map(|f| f.encode()).unwrap_or_default())
            .arg(now.encode())
            .arg(keep.as_millis().max(1) as u64)
            .invoke_async(&mut c)
            .await?;
        Ok(swapped == 1)
    }

    /// Forgets a member's failed logins (their own login succeeded).
    pub async fn clear_login_failures(&self, member: &str) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        Ok(c.del(self.login_failures_key(member)).await?)
    }

    fn login_failures_key(&self, member: &str) -> String {
        self.key(&format!("login:failures:{member}"))
    }

    /// Counts one callback of ticket `number` asked for by `member` in the
    /// court day of `at` (`callback:ticket:<number>:<day>`,
    /// `callback:member:<member>:<day>`, kept two days) and answers both
    /// counts. Counted first, both at once, as attempts are: callbacks
    /// asked for in parallel cannot all pass a check made before any was
    /// counted.
    pub async fn count_callback(
        &self,
        number: &str,
        member: &str,
        at: Timestamp,
    ) -> Result<(i64, i64), StoreError> {
        let mut c = self.conn.clone();
        let mut counts = redis::pipe();
        counts.atomic();
        for k in self.callback_keys(number, member, at) {
            counts
                .incr(&k, 1)
                .cmd("EXPIRE")
                .arg(&k)
                .arg(2 * 86_400)
                .arg("NX")
                .ignore();
        }
        Ok(counts.query_async(&mut c).await?)
    }

    /// Takes back a callback [`Store::count_callback`] counted at `at`
    /// (refused, or not placed).
    pub async fn uncount_callback(
        &self,
        number: &str,
        member: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for k in self.callback_keys(number, member, at) {
            pipe.decr(k, 1).ignore();
        }
        Ok(pipe.query_async(&mut c).await?)
    }

    fn callback_keys(&self, number: &str, member: &str, at: Timestamp) -> [String; 2] {
        let day = court_day(at);
        [
            self.key(&format!("callback:ticket:{number}:{day}")),
            self.key(&format!("callback:member:{member}:{day}")),
        ]
    }
}
