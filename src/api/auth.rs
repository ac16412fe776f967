//! Officers' credentials: PINs kept as argon2 hashes, bearer tokens kept
//! hashed (SHA-256) with an expiry, revocable at once; the store keeps
//! them (`tickets::sessions`), this module makes and checks them. And the
//! rule of a member's failed logins ([`gate`]): past `[http]
//! member_failures_per_hour` from all sources together, each further
//! attempt waits twice as long as the one before, refused unevaluated
//! until then.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use std::time::Duration;

use crate::tickets::attempts::LoginFailures;
use crate::tickets::{Store, StoreError};

/// How long a token lives.
pub const TOKEN_SECONDS: u64 = 12 * 3600;

fn token_hash(token: &str) -> String {
    crate::hex::encode(&Sha256::digest(token.as_bytes()))
}

/// Stores a member's PIN (argon2id, random salt).
pub async fn set_pin(store: &Store, member: &str, pin: &str) -> anyhow::Result<()> {
    let hash = Argon2::default()
        .hash_password(pin.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing the PIN: {e}"))?
        .to_string();
    store.set_pin_hash(member, &hash).await?;
    Ok(())
}

/// A member's failures are counted over this long (from the last one, and
/// beyond any wait it imposes).
pub const FAILURE_WINDOW: Duration = Duration::from_secs(3600);

/// The longest wait between two attempts of a locked-out member.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// What a member's failed logins allow now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The PIN may be evaluated. `failures` is the record should it be
    /// wrong: written (kept for `keep`) before the PIN is evaluated, so
    /// attempts in parallel cannot all pass one check.
    Evaluate {
        failures: LoginFailures,
        keep: Duration,
    },
    /// Refused without evaluating the PIN: the next attempt in this long.
    Wait(Duration),
}

/// How long after the `count`th failure in a row the next attempt must
/// wait: nothing below `threshold`; from it a minute, then 2, 4, 8 … (each
/// failure past the threshold doubles it), at most an hour.
pub fn wait_after(count: u32, threshold: u32) -> Duration {
    match count.checked_sub(threshold) {
        None => Duration::ZERO,
        Some(k) => (Duration::from_secs(60) * 2u32.pow(k.min(6))).min(MAX_WAIT),
    }
}

/// The rule of a member's failed logins, at `now_ms` (Unix ms), whatever
/// the sources: `prev` the record (forgotten [`FAILURE_WINDOW`] after its
/// wait ended). Up to `threshold` failures every attempt is evaluated;
/// past it, an attempt before the wait ([`wait_after`]) is refused.
pub fn gate(prev: Option<LoginFailures>, now_ms: i64, threshold: u32) -> Gate {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let prev = prev.filter(|f| {
        now_ms.saturating_sub(f.last_ms) < ms(wait_after(f.count, threshold) + FAILURE_WINDOW)
    });
    if let Some(f) = prev {
        let ready = f.last_ms.saturating_add(ms(wait_after(f.count, threshold)));
        if now_ms < ready {
            return Gate::Wait(Duration::from_millis(
                u64::try_from(ready - now_ms).unwrap_or(u64::MAX),
            ));
        }
    }
    let failures = LoginFailures {
        count: prev.map_or(0, |f| f.count).saturating_add(1),
        last_ms: now_ms,
    };
    Gate::Evaluate {
        failures,
        keep: wait_after(failures.count, threshold) + FAILURE_WINDOW,
    }
}

/// [`gate`] on the store's record of `member`, now: when it says evaluate,
/// the failure is on record (compared and set) before this returns.
pub async fn reserve_login(
    store: &Store,
    member: &str,
    threshold: u32,
) -> Result<Gate, StoreError> {
    // Attempts racing for one member: each round one of them wins; the
    // others read again (a few tries, then they wait a second).
    for _ in 0..16 {
        let prev = store.login_failures(member).await?;
        let now_ms = jiff::Timestamp::now().as_millisecond();
        match gate(prev, now_ms, threshold) {
            Gate::Evaluate { failures, keep } => {
                if store
                    .swap_login_failures(member, prev, failures, keep)
                    .await?
                {
                    return Ok(Gate::Evaluate { failures, keep });
                }
            }
            wait => return Ok(wait),
        }
    }
    Ok(Gate::Wait(Duration::from_secs(1)))
}

/// Checks a PIN; false for an unknown member or a wrong PIN. The argon2
/// work (tens of ms, ~19 MiB) runs on the blocking pool, two at a time, so
/// a login flood never stalls the runtime that runs the media clocks; an
/// unknown member (or one without a PIN) is checked against a dummy hash
/// and costs the same, so the time says nothing about who exists.
pub async fn check_pin(store: &Store, member: Option<&str>, pin: &str) -> Result<bool, StoreError> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let stored = match member {
        Some(m) => store.pin_hash(m).await?,
        None => None,
    };
    let known = stored.is_some();
    let pin = pin.to_string();
    let _slot = SLOTS
        .get_or_init(|| tokio::sync::Semaphore::new(2))
        .acquire()
        .await
        .expect("a static semaphore nobody closes");
    let ok = tokio::task::spawn_blocking(move || {
        let hash = stored.unwrap_or_else(|| dummy_hash().to_string());
        Argon2::default()
            .verify_password(pin.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false);
    Ok(known && ok)
}

/// A hash no PIN matches, for checking unknown members in the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let secret: [u8; 16] = rand::random();
        Argon2::default()
            .hash_password(&secret)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// A new token for `member`.
pub async fn issue(store: &Store, member: &str) -> Result<String, StoreError> {
    let raw: [u8; 32] = rand::random();
    let token = B64.encode(raw);
    store
        .add_token(member, &token_hash(&token), TOKEN_SECONDS)
        .await?;
    Ok(token)
}

/// The member a token belongs to, if it is valid.
pub async fn member_of(store: &Store, token: &str) -> Result<Option<String>, StoreError> {
    store.token_member(&token_hash(token)).await
}

/// Ends one token.
pub async fn logout(store: &Store, token: &str, member: &str) -> Result<(), StoreError> {
    store.remove_token(member, &token_hash(token)).await
}

/// A new calendar subscription token for `member` (32 random bytes,
/// URL-safe): only its hash is kept, and it replaces the member's previous
/// one. `scope`: `mine`, or `all` (everyone's duty).
pub async fn issue_calendar(
    store: &Store,
    member: &str,
    scope: &str,
) -> Result<String, StoreError> {
    let raw: [u8; 32] = rand::random();
    let token = B64.encode(raw);
    let sub = crate::tickets::swaps::Subscription {
        member: member.into(),
        scope: scope.into(),
    };
    store.set_calendar_token(&token_hash(&token), &sub).await?;
    Ok(token)
}

/// The subscription a calendar token stands for, while it stands.
pub async fn calendar_of(
    store: &Store,
    token: &str,
) -> Result<Option<crate::tickets::swaps::Subscription>, StoreError> {
    store.calendar_token(&token_hash(token)).await
}

/// Ends every token of a member at once; returns how many were live.
pub async fn revoke(store: &Store, member: &str) -> Result<usize, StoreError> {
    store.revoke_tokens(member).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    /// Applies the gate as the login does: an evaluated wrong PIN leaves
    /// its record, a right one clears it.
    fn attempt(rec: &mut Option<LoginFailures>, now: i64, right: bool) -> Gate {
        let g = gate(*rec, now, 10);
        if let Gate::Evaluate { failures, .. } = g {
            *rec = (!right).then_some(failures);
        }
        g
    }

    fn evaluated(g: Gate) -> bool {
        matches!(g, Gate::Evaluate { .. })
    }

    /// Issue 30, with the clock injected: ten failures in an hour are
    /// evaluated; then each attempt waits 1, 2, 4 … minutes after the last
    /// failure (refused unevaluated before); the member's own login once
    /// the wait is over clears the count, and ten more are evaluated.
    #[test]
    fn past_the_threshold_logins_wait_longer_and_the_members_own_login_resets() {
        let mut rec = None;
        let t0 = 1_800_000_000_000;
        for i in 0..10 {
            assert!(evaluated(attempt(&mut rec, t0 + i, false)), "failure {i}");
        }
        let last = t0 + 9;
        assert_eq!(
            attempt(&mut rec, last, false),
            Gate::Wait(Duration::from_secs(60))
        );
        assert_eq!(
            attempt(&mut rec, last + MIN - 1000, false),
            Gate::Wait(Duration::from_secs(1))
        );
        // At the minute: evaluated (wrong), then two minutes to wait.
        assert!(evaluated(attempt(&mut rec, last + MIN, false)));
        assert_eq!(rec.map(|f| f.count), Some(11));
        assert_eq!(
            attempt(&mut rec, last + MIN, false),
            Gate::Wait(Duration::from_secs(120))
        );
        assert!(evaluated(attempt(&mut rec, last + 3 * MIN, false)));
        assert_eq!(
            attempt(&mut rec, last + 3 * MIN + 1, false),
            Gate::Wait(Duration::from_millis(4 * MIN as u64 - 1))
        );
        // The member, after the wait: the right PIN is evaluated and the
        // record gone; the count starts again.
        assert!(evaluated(attempt(&mut rec, last + 7 * MIN, true)));
        assert_eq!(rec, None);
        for i in 0..10 {
            assert!(evaluated(attempt(&mut rec, last + 7 * MIN + i, false)));
        }
        assert!(!evaluated(attempt(&mut rec, last + 7 * MIN + 10, false)));
    }

    #[test]
    fn the_wait_is_at_most_an_hour_and_failures_are_forgotten_an_hour_after_it() {
        assert_eq!(wait_after(9, 10), Duration::ZERO);
        assert_eq!(wait_after(10, 10), Duration::from_secs(60));
        assert_eq!(wait_after(15, 10), Duration::from_secs(32 * 60));
        assert_eq!(wait_after(16, 10), Duration::from_secs(3600));
        assert_eq!(wait_after(u32::MAX, 10), Duration::from_secs(3600));
        let locked = Some(LoginFailures {
            count: 20,
            last_ms: 0,
        });
        assert_eq!(
            gate(locked, 3599 * 1000, 10),
            Gate::Wait(Duration::from_secs(1))
        );
        // An hour after the wait ended, a fresh start.
        match gate(locked, 2 * 3600 * 1000, 10) {
            Gate::Evaluate { failures, .. } => assert_eq!(failures.count, 1),
            g => panic!("{g:?}"),
        }
        match gate(locked, 2 * 3600 * 1000 - 1, 10) {
            Gate::Evaluate { failures, .. } => assert_eq!(failures.count, 21),
            g => panic!("{g:?}"),
        }
    }
}
