//! Officers' credentials: PINs kept as argon2 hashes, bearer tokens kept
//! hashed (SHA-256) with an expiry, revocable at once; the store keeps
//! them (`tickets::sessions`), this module makes and checks them. And the
//! rule of a member's failed logins ([`gate`]): past `[http]
//! member_failures_per_hour` from all sources together, each further
//! attempt waits twice as long as the one before, refused unevaluated
//! until then.
//!
//! A text page's one-tap link ([`issue_link`]) is a credential too: 256
//! random bits, kept only as their hash with the member, the ticket and
//! when it expires ([`PageLink`]); opening it ([`open_link`]) takes it
//! from the store at once (GETDEL), so of two opens one at most succeeds,
//! and gives a [`Session`] scoped to that ticket (what it may do is the
//! API's `OnTicket`). A used, expired, forged or revoked link opens
//! nothing.

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

/// 256 random bits, base64url.
fn new_token() -> String {
    let raw: [u8; 32] = rand::random();
    B64.encode(raw)
}

/// A new token for `member`.
pub async fn issue(store: &Store, member: &str) -> Result<String, StoreError> {
    let token = new_token();
    store
        .add_token(member, &token_hash(&token), TOKEN_SECONDS)
        .await?;
    Ok(token)
}

/// Who a valid token is, and for what: every route (a PIN's login), or one
/// ticket only (a page's link).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub member: String,
    /// The ticket a page's link opened, the session's only one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

impl Session {
    /// As the store keeps it: a full session is the member id alone (as it
    /// always was); a scoped one JSON. Read back, a value that starts like
    /// JSON and is not a scoped session is no session (never a full one).
    fn encode(&self) -> String {
        match &self.ticket {
            None => self.member.clone(),
            Some(_) => serde_json::to_string(self).unwrap_or_default(),
        }
    }

    fn decode(v: &str) -> Option<Session> {
        if !v.starts_with('{') {
            return Some(Session {
                member: v.to_string(),
                ticket: None,
            });
        }
        serde_json::from_str::<Session>(v)
            .ok()
            .filter(|s| s.ticket.is_some())
    }
}

/// The session a token opens, if it is valid.
pub async fn session_of(store: &Store, token: &str) -> Result<Option<Session>, StoreError> {
    Ok(store
        .token_session(&token_hash(token))
        .await?
        .as_deref()
        .and_then(Session::decode))
}

/// The member a token belongs to, if it is valid (whatever its scope).
pub async fn member_of(store: &Store, token: &str) -> Result<Option<String>, StoreError> {
    Ok(session_of(store, token).await?.map(|s| s.member))
}

/// What a page's link is for, as the store keeps it (by the link's hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PageLink {
    pub member: String,
    pub ticket: String,
    /// When it stops opening anything (Unix ms); Redis forgets it then too.
    pub expires_ms: i64,
}

impl PageLink {
    /// Whether it still opens its ticket at `now_ms`.
    pub fn usable(&self, now_ms: i64) -> bool {
        now_ms < self.expires_ms
    }
}

/// The link in a page: the page's origin (`[http] public_url`), the ticket
/// and the token in the fragment, which no browser sends to a server (so
/// no access log or proxy sees it) and the page reads and forgets.
pub fn link_url(base: &str, ticket: &str, token: &str) -> String {
    format!(
        "{}/#ticket={ticket}&link={token}",
        base.trim_end_matches('/')
    )
}

/// A new link for `member` to `ticket`, good for `lifetime` from `now`:
/// the token (only its hash is kept).
pub async fn issue_link(
    store: &Store,
    member: &str,
    ticket: &str,
    lifetime: Duration,
    now: jiff::Timestamp,
) -> Result<String, StoreError> {
    let token = new_token();
    let ms = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
    let link = PageLink {
        member: member.to_string(),
        ticket: ticket.to_string(),
        expires_ms: now.as_millisecond().saturating_add(ms),
    };
    let value = serde_json::to_string(&link).unwrap_or_default();
    store
        .add_link(member, &token_hash(&token), &value, lifetime.as_secs())
        .await?;
    Ok(token)
}

/// The paging channels' link maker: a link for each member and page, its
/// URL under `base` (`[http] public_url`), good for `lifetime`.
pub fn page_links(
    store: Store,
    base: String,
    lifetime: Duration,
) -> crate::paging::channels::LinkMaker {
    std::sync::Arc::new(move |member: String, ticket: String| {
        let (store, base) = (store.clone(), base.clone());
        Box::pin(async move {
            let now = jiff::Timestamp::now();
            match issue_link(&store, &member, &ticket, lifetime, now).await {
                Ok(token) => Some(link_url(&base, &ticket, &token)),
                Err(e) => {
                    tracing::warn!(%member, %ticket, error = %e, "page link not made: the page goes without one");
                    None
                }
            }
        })
    })
}

/// Keeps a link as given (its expiry included): what [`issue_link`] does
/// with a new token; tests write a link already expired through it.
pub async fn keep_link(store: &Store, token: &str, link: &PageLink) -> Result<(), StoreError> {
    let value = serde_json::to_string(link).unwrap_or_default();
    store
        .add_link(&link.member, &token_hash(token), &value, 3600)
        .await
}

/// Opens a page's link at `now`: taken from the store whatever happens
/// next (a second open finds nothing), then a new token whose session is
/// the link's member on the link's ticket only, for `lifetime`. `None`:
/// used, expired, forged or revoked (not said which).
pub async fn open_link(
    store: &Store,
    token: &str,
    lifetime: Duration,
    now: jiff::Timestamp,
) -> Result<Option<(String, Session)>, StoreError> {
    if token.len() > 128 {
        return Ok(None);
    }
    let Some(value) = store.take_link(&token_hash(token)).await? else {
        return Ok(None);
    };
    let Some(link) = serde_json::from_str::<PageLink>(&value)
        .ok()
        .filter(|l| l.usable(now.as_millisecond()))
    else {
        return Ok(None);
    };
    let session = Session {
        member: link.member,
        ticket: Some(link.ticket),
    };
    let scoped = new_token();
    store
        .add_session(
            &session.member,
            &token_hash(&scoped),
            &session.encode(),
            lifetime.as_secs(),
        )
        .await?;
    Ok(Some((scoped, session)))
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

    /// A scoped session is read back scoped; a full one is the member id
    /// as before; anything that looks like JSON and is no scoped session
    /// is no session at all (never a full one).
    #[test]
    fn sessions_keep_their_scope_and_junk_is_none() {
        let full = Session {
            member: "u1-officer".into(),
            ticket: None,
        };
        assert_eq!(full.encode(), "u1-officer");
        assert_eq!(Session::decode("u1-officer"), Some(full));
        let scoped = Session {
            member: "u1-officer".into(),
            ticket: Some("2026-000123".into()),
        };
        assert_eq!(Session::decode(&scoped.encode()), Some(scoped));
        for junk in [
            "{",
            "{}",
            r#"{"member":"u1-officer"}"#,
            r#"{"member":"u1-officer","ticket":null}"#,
            r#"{"member":"u1-officer","ticket":"x","admin":true}x"#,
        ] {
            assert_eq!(Session::decode(junk), None, "{junk}");
        }
    }

    /// A link opens its ticket until its expiry, not at it; its URL has
    /// the token in the fragment and nothing of the caller.
    #[test]
    fn a_link_is_usable_until_it_expires_and_its_url_carries_the_token_in_the_fragment() {
        let l = PageLink {
            member: "u1-officer".into(),
            ticket: "2026-000123".into(),
            expires_ms: 1_800_000_000_000,
        };
        assert!(l.usable(1_800_000_000_000 - 1));
        assert!(!l.usable(1_800_000_000_000));
        assert!(!l.usable(i64::MAX));
        assert_eq!(
            link_url("https://hotline.court.example/", "2026-000123", "tok"),
            "https://hotline.court.example/#ticket=2026-000123&link=tok"
        );
        let a = new_token();
        assert_eq!(a.len(), 43, "256 bits in base64url: {a}");
        assert_ne!(a, new_token());
        assert_eq!(token_hash(&a).len(), 64);
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
