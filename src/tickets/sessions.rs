//! The officers' credentials in Redis: a member's PIN as its argon2 PHC
//! string (`pin:<member>`), and bearer tokens stored as their SHA-256
//! (`token:<hash>` → the session, with an expiry; `tokens:<member>`, the
//! set of a member's token hashes, for revocation); the one-tap links of
//! text pages the same way (`link:<hash>`, taken once with GETDEL, its
//! hash in `tokens:<member>` too). Hashing, the sessions' form and the
//! rules are the API's (`api::auth`); this file only keeps what it is
//! given.

use redis::AsyncCommands;

/// KEYS[1] (a credential) set to ARGV[1] for ARGV[2] seconds, its hash
/// ARGV[3] added to the member's set KEYS[2], which lives as long as the
/// longest credential in it (a short one never shortens it).
const KEEP: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"#;

use super::store::{Store, StoreError};

impl Store {
    /// Stores a member's PIN hash (a PHC string).
    pub async fn set_pin_hash(&self, member: &str, phc: &str) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: () = c.set(self.key(&format!("pin:{member}")), phc).await?;
        Ok(())
    }

    /// A member's PIN hash, if they have one.
    pub async fn pin_hash(&self, member: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        Ok(c.get(self.key(&format!("pin:{member}"))).await?)
    }

    /// Keeps a token (by its hash) for `member` for `seconds`.
    pub async fn add_token(
        &self,
        member: &str,
        hash: &str,
        seconds: u64,
    ) -> Result<(), StoreError> {
        self.keep(&format!("token:{hash}"), member, hash, member, seconds)
            .await
    }

    /// The session a token hash names, as it was given to
    /// [`Store::add_token`] or [`Store::add_session`], while it is valid.
    pub async fn token_session(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        Ok(c.get(self.key(&format!("token:{hash}"))).await?)
    }

    /// Keeps a token (by its hash) of `member`'s for `seconds` whose
    /// session is `session` (a scoped one: `api::auth` says its form).
    pub async fn add_session(
        &self,
        member: &str,
        hash: &str,
        session: &str,
        seconds: u64,
    ) -> Result<(), StoreError> {
        self.keep(&format!("token:{hash}"), member, hash, session, seconds)
            .await
    }

    /// Keeps a page's link (by its hash) of `member`'s for `seconds`:
    /// `link` says for what (`api::auth`'s form).
    pub async fn add_link(
        &self,
        member: &str,
        hash: &str,
        link: &str,
        seconds: u64,
    ) -> Result<(), StoreError> {
        self.keep(&format!("link:{hash}"), member, hash, link, seconds)
            .await
    }

    /// Takes a page's link by its hash: what it was given as, once (GETDEL:
    /// of two takers at once, one gets it, the other nothing).
    pub async fn take_link(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        Ok(redis::cmd("GETDEL")
            .arg(self.key(&format!("link:{hash}")))
            .query_async(&mut c)
            .await?)
    }

    async fn keep(
        &self,
        key: &str,
        member: &str,
        hash: &str,
        value: &str,
        seconds: u64,
    ) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: i64 = redis::Script::new(KEEP)
            .key(self.key(key))
            .key(self.key(&format!("tokens:{member}")))
            .arg(value)
            .arg(seconds.max(1))
            .arg(hash)
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    /// Ends one token.
    pub async fn remove_token(&self, member: &str, hash: &str) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.key(&format!("token:{hash}")))
            .cmd("SREM")
            .arg(self.key(&format!("tokens:{member}")))
            .arg(hash);
        let mut c = self.conn.clone();
        let _: () = pipe.query_async(&mut c).await?;
        Ok(())
    }

    /// Ends every token of a member at once, and every link of theirs not
    /// yet opened; returns how many were live.
    pub async fn revoke_tokens(&self, member: &str) -> Result<usize, StoreError> {
        let set = self.key(&format!("tokens:{member}"));
        let mut c = self.conn.clone();
        let hashes: Vec<String> = c.smembers(&set).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for h in &hashes {
            pipe.cmd("DEL")
                .arg(self.key(&format!("token:{h}")))
                .arg(self.key(&format!("link:{h}")));
        }
        pipe.cmd("DEL").arg(&set);
        let deleted: Vec<usize> = pipe.query_async(&mut c).await?;
        Ok(deleted.iter().take(hashes.len()).sum())
    }
}
