//! The registrar's records, kept here because every key has one owner: a
//! member's HA1 (`sip:ha1:<member>`, never the password) and the bindings
//! of their softphones (`sip:bindings:<member>`, a hash of contact →
//! binding, with `sip:bindings:<member>:expiry`, a sorted set of contact by
//! expiry time), so every gateway sees every binding (`officer revoke`
//! forgets both); and the highest nonce count (`nc`) each digest nonce was
//! used with (`sip:nc:<nonce>`, for the nonce's life), so a captured
//! REGISTER is not accepted twice. Times are passed in: what has expired is
//! decided by the caller's clock.

use std::net::SocketAddr;

use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use super::store::{Store, StoreError};

/// One registered contact of a member's softphone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The Contact URI: a paging call's Request-URI.
    pub contact: String,
    /// Milliseconds since the epoch.
    pub expires_at_ms: i64,
    pub call_id: String,
    pub cseq: u32,
    /// Where the REGISTER came from, and on which of our sockets or
    /// connections (`udp:<index>`, `tcp:<connection>`), at which of our
    /// addresses: the flow a paging call goes back on.
    pub source: SocketAddr,
    pub link: String,
    pub local: SocketAddr,
    /// The gateway process holding that flow.
    pub gateway: String,
    pub user_agent: Option<String>,
}

/// What a REGISTER changes.
#[derive(Debug, Clone)]
pub enum BindingChange {
    /// Nothing: the current bindings.
    Query,
    /// Every binding removed (`Contact: *`).
    RemoveAll,
    /// Each binding set, or removed when it expires at or before now.
    Set(Vec<Binding>),
}

/// The outcome of [`Store::register`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// The member's bindings now.
    Bindings(Vec<Binding>),
    /// A binding of the same Call-ID has a CSeq as high or higher: the
    /// request is out of order and changed nothing (RFC 3261 §10.3 step 7).
    OutOfOrder,
    /// More than the allowed number of bindings: nothing changed.
    Full,
}

/// One REGISTER's changes, all or nothing: expired bindings pruned, the
/// CSeq order checked for every contact, the bound checked, then applied.
/// ARGV: prefix, member, now, max, call-id, cseq, mode, then
/// (contact, expires-at, json) triples.
const REGISTER: &str = r#"
local p, member, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local max, call_id, cseq, mode = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), ARGV[7]
local h = p .. 'sip:bindings:' .. member
local z = h .. ':expiry'
for _, c in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', now)) do redis.call('HDEL', h, c) end
redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
local function in_order(c)
  local old = redis.call('HGET', h, c)
  if not old then return true end
  local b = cjson.decode(old)
  return b.call_id ~= call_id or tonumber(b.cseq) < cseq
end
if mode == 'all' then
  for _, c in ipairs(redis.call('HKEYS', h)) do
    if not in_order(c) then return {'out_of_order'} end
  end
  redis.call('DEL', h, z)
elseif mode == 'set' then
  local count = redis.call('HLEN', h)
  for i = 8, #ARGV, 3 do
    local c, exp = ARGV[i], tonumber(ARGV[i + 1])
    if not in_order(c) then return {'out_of_order'} end
    local exists = redis.call('HEXISTS', h, c) == 1
    if exp > now and not exists then count = count + 1 end
    if exp <= now and exists then count = count - 1 end
  end
  if count > max then return {'full'} end
  for i = 8, #ARGV, 3 do
    local c, exp = ARGV[i], tonumber(ARGV[i + 1])
    if exp > now then
      redis.call('HSET', h, c, ARGV[i + 2])
      redis.call('ZADD', z, exp, c)
    else
      redis.call('HDEL', h, c)
      redis.call('ZREM', z, c)
    end
  end
end
local last = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
if last[2] then
  local ttl = math.floor(tonumber(last[2]) - now) + 1000
  redis.call('PEXPIRE', h, ttl)
  redis.call('PEXPIRE', z, ttl)
end
local out = {'ok'}
for _, v in ipairs(redis.call('HVALS', h)) do table.insert(out, v) end
return out
"#;

fn decode(values: Vec<String>) -> Vec<Binding> {
    let mut out: Vec<Binding> = values
        .iter()
        .filter_map(|v| serde_json::from_str(v).ok())
        .collect();
    out.sort_by_key(|b| std::cmp::Reverse(b.expires_at_ms));
    out
}

impl Store {
    /// Sets a member's HA1 (`MD5(member:realm:password)`).
    pub async fn set_sip_ha1(&self, member: &str, ha1: &str) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: () = c.set(self.key(&format!("sip:ha1:{member}")), ha1).await?;
        Ok(())
    }

    /// A member's HA1, if they have a SIP password.
    pub async fn sip_ha1(&self, member: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        Ok(c.get(self.key(&format!("sip:ha1:{member}"))).await?)
    }

    /// Forgets a member's softphones, all at once: their HA1 (no REGISTER
    /// is let in again) and every binding (no page goes to them again).
    /// Answers whether they had a SIP password and how many bindings.
    pub async fn forget_softphones(&self, member: &str) -> Result<(bool, usize), StoreError> {
        let h = self.key(&format!("sip:bindings:{member}"));
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hlen(&h)
            .del(self.key(&format!("sip:ha1:{member}")))
            .del(&h)
            .ignore()
            .del(format!("{h}:expiry"))
            .ignore();
        let mut c = self.conn.clone();
        let (bindings, ha1): (usize, usize) = pipe.query_async(&mut c).await?;
        Ok((ha1 > 0, bindings))
    }

    /// Applies one REGISTER's change to a member's bindings at `now_ms`,
    /// keeping at most `max` (see [`Registered`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn register(
        &self,
        member: &str,
        call_id: &str,
        cseq: u32,
        change: &BindingChange,
        max: usize,
        now_ms: i64,
    ) -> Result<Registered, StoreError> {
        static SCRIPT: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(REGISTER));
        let mut inv = SCRIPT.prepare_invoke();
        inv.arg(&self.prefix)
            .arg(member)
            .arg(now_ms)
            .arg(max)
            .arg(call_id)
            .arg(cseq);
        match change {
            BindingChange::Query => inv.arg("query"),
            BindingChange::RemoveAll => inv.arg("all"),
            BindingChange::Set(bindings) => {
                inv.arg("set");
                for b in bindings {
                    let json = serde_json::to_string(b).expect("a binding serialises");
                    inv.arg(&b.contact).arg(b.expires_at_ms).arg(json);
                }
                &mut inv
            }
        };
        let mut c = self.conn.clone();
        let mut reply: Vec<String> = inv.invoke_async(&mut c).await?;
        let head = if reply.is_empty() {
            String::new()
        } else {
            reply.remove(0)
        };
        Ok(match head.as_str() {
            "out_of_order" => Registered::OutOfOrder,
            "full" => Registered::Full,
            _ => Registered::Bindings(decode(reply)),
        })
    }

    /// A member's bindings still valid at `now_ms`, the longest-lived first.
    pub async fn bindings(&self, member: &str, now_ms: i64) -> Result<Vec<Binding>, StoreError> {
        let h = self.key(&format!("sip:bindings:{member}"));
        let mut c = self.conn.clone();
        let live: Vec<String> = c
            .zrangebyscore(format!("{h}:expiry"), format!("({now_ms}"), "+inf")
            .await?;
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&h)
            .arg(&live)
            .query_async(&mut c)
            .await?;
        Ok(decode(values.into_iter().flatten().collect()))
    }

    /// Records `nc` as the count `nonce` was last used with, if it is
    /// higher than any before (RFC 2617 §3.2.2: a request's nonce count
    /// only grows), the record kept `seconds` (the nonce's remaining life);
    /// `false`: the count was used already, or a higher one (a replay).
    pub async fn use_nonce(&self, nonce: &str, nc: u64, seconds: u64) -> Result<bool, StoreError> {
        static USE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(
                "local last = tonumber(redis.call('GET', KEYS[1]) or '0') \
                 if tonumber(ARGV[1]) <= last then return 0 end \
                 redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1",
            )
        });
        let mut c = self.conn.clone();
        let fresh: i64 = USE
            .key(self.key(&format!("sip:nc:{nonce}")))
            .arg(nc)
            .arg(seconds.max(1))
            .invoke_async(&mut c)
            .await?;
        Ok(fresh == 1)
    }
}
