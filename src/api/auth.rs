//! Officers' credentials: PINs stored as argon2 hashes, bearer tokens
//! stored hashed (SHA-256) in Redis with an expiry, revocable at once.
//!
//! Keys: `<prefix>pin:<member>` (PHC string), `<prefix>token:<sha256>` →
//! member (EX), `<prefix>tokens:<member>` (set of that member's token hashes).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

/// How long a token lives.
pub const TOKEN_SECONDS: u64 = 12 * 3600;

fn token_hash(token: &str) -> String {
    crate::recording::hex(&Sha256::digest(token.as_bytes()))
}

/// Stores a member's PIN (argon2id, random salt).
pub async fn set_pin(
    c: &mut ConnectionManager,
    prefix: &str,
    member: &str,
    pin: &str,
) -> anyhow::Result<()> {
    let hash = Argon2::default()
        .hash_password(pin.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing the PIN: {e}"))?
        .to_string();
    let _: () = c.set(format!("{prefix}pin:{member}"), hash).await?;
    Ok(())
}

/// Checks a PIN; false for an unknown member or a wrong PIN. The argon2
/// work (tens of ms, ~19 MiB) runs on the blocking pool, two at a time, so
/// a login flood never stalls the runtime that runs the media clocks; an
/// unknown member (or one without a PIN) is checked against a dummy hash
/// and costs the same, so the time says nothing about who exists.
pub async fn check_pin(
    c: &mut ConnectionManager,
    prefix: &str,
    member: Option<&str>,
    pin: &str,
) -> redis::RedisResult<bool> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let stored: Option<String> = match member {
        Some(m) => c.get(format!("{prefix}pin:{m}")).await?,
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
pub async fn issue(
    c: &mut ConnectionManager,
    prefix: &str,
    member: &str,
) -> redis::RedisResult<String> {
    let raw: [u8; 32] = rand::random();
    let token = B64.encode(raw);
    let h = token_hash(&token);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("SET")
        .arg(format!("{prefix}token:{h}"))
        .arg(member)
        .arg("EX")
        .arg(TOKEN_SECONDS)
        .cmd("SADD")
        .arg(format!("{prefix}tokens:{member}"))
        .arg(&h)
        // The set lives as long as the newest token in it.
        .cmd("EXPIRE")
        .arg(format!("{prefix}tokens:{member}"))
        .arg(TOKEN_SECONDS);
    let _: () = pipe.query_async(c).await?;
    Ok(token)
}

/// The member a token belongs to, if it is valid.
pub async fn member_of(
    c: &mut ConnectionManager,
    prefix: &str,
    token: &str,
) -> redis::RedisResult<Option<String>> {
    c.get(format!("{prefix}token:{}", token_hash(token))).await
}

/// Ends one token.
pub async fn logout(
    c: &mut ConnectionManager,
    prefix: &str,
    token: &str,
    member: &str,
) -> redis::RedisResult<()> {
    let h = token_hash(token);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("DEL")
        .arg(format!("{prefix}token:{h}"))
        .cmd("SREM")
        .arg(format!("{prefix}tokens:{member}"))
        .arg(&h);
    pipe.query_async(c).await
}

/// Ends every token of a member at once; returns how many were live.
pub async fn revoke(
    c: &mut ConnectionManager,
    prefix: &str,
    member: &str,
) -> redis::RedisResult<usize> {
    let set = format!("{prefix}tokens:{member}");
    let hashes: Vec<String> = c.smembers(&set).await?;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for h in &hashes {
        pipe.cmd("DEL").arg(format!("{prefix}token:{h}"));
    }
    pipe.cmd("DEL").arg(&set);
    let deleted: Vec<usize> = pipe.query_async(c).await?;
    Ok(deleted[..hashes.len()].iter().sum())
}
