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

/// Checks a PIN; false for an unknown member or a wrong PIN.
pub async fn check_pin(
    c: &mut ConnectionManager,
    prefix: &str,
    member: &str,
    pin: &str,
) -> redis::RedisResult<bool> {
    let stored: Option<String> = c.get(format!("{prefix}pin:{member}")).await?;
    Ok(stored.is_some_and(|h| {
        Argon2::default()
            .verify_password(pin.as_bytes(), h.as_str())
            .is_ok()
    }))
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
