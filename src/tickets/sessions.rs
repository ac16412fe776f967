//! The officers' credentials in Redis: a member's PIN as its argon2 PHC
//! string (`pin:<member>`), and bearer tokens stored as their SHA-256
//! (`token:<hash>` → member, with an expiry; `tokens:<member>`, the set of a
//! member's token hashes, for revocation). Hashing and checking are the
//! API's (`api::auth`); this file only keeps what it is given.

use redis::AsyncCommands;

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
        let set = self.key(&format!("tokens:{member}"));
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.key(&format!("token:{hash}")))
            .arg(member)
            .arg("EX")
            .arg(seconds)
            .cmd("SADD")
            .arg(&set)
            .arg(hash)
            // The set lives as long as the newest token in it.
            .cmd("EXPIRE")
            .arg(&set)
            .arg(seconds);
        let mut c = self.conn.clone();
        let _: () = pipe.query_async(&mut c).await?;
        Ok(())
    }

    /// The member a token hash belongs to, while it is valid.
    pub async fn token_member(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        Ok(c.get(self.key(&format!("token:{hash}"))).await?)
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

    /// Ends every token of a member at once; returns how many were live.
    pub async fn revoke_tokens(&self, member: &str) -> Result<usize, StoreError> {
        let set = self.key(&format!("tokens:{member}"));
        let mut c = self.conn.clone();
        let hashes: Vec<String> = c.smembers(&set).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for h in &hashes {
            pipe.cmd("DEL").arg(self.key(&format!("token:{h}")));
        }
        pipe.cmd("DEL").arg(&set);
        let deleted: Vec<usize> = pipe.query_async(&mut c).await?;
        Ok(deleted.iter().take(hashes.len()).sum())
    }
}
