//! Officers' credentials: PINs kept as argon2 hashes, bearer tokens kept
//! hashed (SHA-256) with an expiry, revocable at once; the store keeps
//! them (`tickets::sessions`), this module makes and checks them.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::tickets::{Store, StoreError};

/// How long a token lives.
pub const TOKEN_SECONDS: u64 = 12 * 3600;

fn token_hash(token: &str) -> String {
    crate::recording::hex(&Sha256::digest(token.as_bytes()))
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

/// Ends every token of a member at once; returns how many were live.
pub async fn revoke(store: &Store, member: &str) -> Result<usize, StoreError> {
    store.revoke_tokens(member).await
}
