//! The rotation's position, kept in Redis (`<prefix>roster:offset`) so every
//! gateway instance and the CLI agree, and an authorised person can move it
//! on at once ("advance now").

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

fn key(prefix: &str) -> String {
    format!("{prefix}roster:offset")
}

/// Periods the rotation has been advanced by hand (0 when never).
pub async fn offset(conn: &mut ConnectionManager, prefix: &str) -> redis::RedisResult<i64> {
    let v: Option<i64> = conn.get(key(prefix)).await?;
    Ok(v.unwrap_or(0))
}

/// Moves the rotation on by one period; returns the new offset.
pub async fn advance(conn: &mut ConnectionManager, prefix: &str) -> redis::RedisResult<i64> {
    conn.incr(key(prefix), 1).await
}
