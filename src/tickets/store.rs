//! Tickets in Redis. Every write is one Lua script, so a change checks the
//! current state and version, updates the indexes and appends to the
//! timeline atomically: two officers closing at once cannot both win, and a
//! stale write is refused. Key layout: docs/redis-keys.md.

use std::collections::HashMap;

use jiff::Timestamp;
use redis::{AsyncCommands, Script};

use super::conn::Conn;

use super::model::{Change, Event, Register, State, Ticket};
use crate::court_time::court_year;

/// Creates a ticket once per call: the guard is the call's own id
/// (`dialog:<id>`), so a replay finds the same ticket and a Call-ID used
/// again gets a new one; `call:<Call-ID>` then names the newest. (Without
/// an id, from journals older than it, the Call-ID is the guard.)
const CREATE: &str = r#"
local p, call_id, year, call = ARGV[1], ARGV[2], ARGV[3], ARGV[9]
local ck = p .. 'call:' .. call_id
local guard = ck
if call ~= '' then guard = p .. 'dialog:' .. call end
local existing = redis.call('GET', guard)
if existing then return {'exists', existing} end
local n = redis.call('INCR', p .. 'seq:' .. year)
local number = year .. '-' .. string.format('%06d', n)
local t = p .. 'ticket:' .. number
redis.call('HSET', t, 'number', number, 'call_id', call_id, 'state', 'intake', 'version', 1,
  'received_at', ARGV[4], 'received', ARGV[5], 'category', '', 'case_number', '', 'data', ARGV[6])
redis.call('SET', guard, number)
redis.call('SET', ck, number)
redis.call('ZADD', p .. 'idx:all', ARGV[5], number)
redis.call('ZADD', p .. 'idx:open', ARGV[5], number)
redis.call('ZADD', p .. 'idx:state:intake', ARGV[5], number)
redis.call('XADD', t .. ':timeline', '*', 'at', ARGV[4], 'actor', ARGV[7], 'action', 'created',
  'from', '', 'to', 'intake', 'version', 1, 'details', ARGV[8])
return {'created', number}
"#;

/// One change of one ticket: version and state checked, data replaced,
/// indexes moved, timeline appended; `op` makes a replayed change a no-op.
const APPLY: &str = r#"
local p, number = ARGV[1], ARGV[2]
local t = p .. 'ticket:' .. number
local op = ARGV[13]
if op ~= '' and redis.call('EXISTS', p .. 'op:' .. op) == 1 then return {'dup'} end
local cur = redis.call('HMGET', t, 'state', 'version', 'category', 'case_number', 'received', 'data')
if not cur[1] then return {'missing'} end
local state, version = cur[1], tonumber(cur[2])
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= version then
  return {'stale', state, tostring(version)}
end
if ARGV[4] ~= '*' and not string.find(',' .. ARGV[4] .. ',', ',' .. state .. ',', 1, true) then
  return {'illegal', state, tostring(version)}
end
local to = ARGV[5]
if to == '' then to = state end
-- The version counts changes of state or register; an entry that only
-- adds to the timeline (a page attempt, a download) leaves it, so an
-- officer's next step is not refused because paging went on meanwhile.
local old_cat, old_case = cur[3] or '', cur[4] or ''
local nv = version
if to ~= state or ARGV[6] ~= (cur[6] or '') or old_cat ~= ARGV[7] or old_case ~= ARGV[8] then
  nv = version + 1
end
local score = cur[5]
redis.call('HSET', t, 'state', to, 'version', nv, 'data', ARGV[6], 'category', ARGV[7],
  'case_number', ARGV[8])
if to ~= state then
  redis.call('ZREM', p .. 'idx:state:' .. state, number)
  redis.call('ZADD', p .. 'idx:state:' .. to, score, number)
  -- The final states (ARGV[15]) are the model's: a final ticket is no
  -- longer open.
  if string.find(',' .. ARGV[15] .. ',', ',' .. to .. ',', 1, true) then
    redis.call('ZREM', p .. 'idx:open', number)
  end
  -- Becoming closed enters the follow-up calls' schedule (by the time it
  -- closed: the worker adds its delay); becoming open starts the
  -- escalation, in the same atomic step.
  if to == 'closed' then
    local now = redis.call('TIME')
    local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    redis.call('ZADD', p .. 'followup:due', 'NX', ms, number)
  end
  if to == 'open' then
    local now = redis.call('TIME')
    local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    redis.call('HSETNX', p .. 'paging:' .. number, 'opened_ms', ms)
    redis.call('ZADD', p .. 'paging:due', 'NX', ms, number)
  end
end
if old_cat ~= ARGV[7] then
  if old_cat ~= '' then redis.call('ZREM', p .. 'idx:category:' .. old_cat, number) end
  if ARGV[7] ~= '' then redis.call('ZADD', p .. 'idx:category:' .. ARGV[7], score, number) end
end
-- The case index is by the case number's digits (ARGV[8]), as callers key
-- it and the case directory finds it.
if old_case ~= ARGV[8] then
  if old_case ~= '' then redis.call('ZREM', p .. 'idx:case:' .. old_case, number) end
  if ARGV[8] ~= '' then redis.call('ZADD', p .. 'idx:case:' .. ARGV[8], score, number) end
end
for who in string.gmatch(ARGV[12], '[^,]+') do
  redis.call('ZADD', p .. 'idx:' .. who, score, number)
end
-- A deadline the change sets (ARGV[16], Unix ms): the escalation schedule
-- looks at the ticket by then even when its policy is done. A step in
-- flight (paging:<n> lease_until ahead) holds the ticket and saves its own
-- next time: the wake waits in wake_ms for that save to fold in, so that
-- no second step starts beside it.
if ARGV[16] ~= '' then
  local wake = tonumber(ARGV[16])
  local pk = p .. 'paging:' .. number
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  if tonumber(redis.call('HGET', pk, 'lease_until') or '0') > ms then
    local w = redis.call('HGET', pk, 'wake_ms')
    if not w or tonumber(w) > wake then redis.call('HSET', pk, 'wake_ms', wake) end
  else
    redis.call('ZADD', p .. 'paging:due', 'LT', wake, number)
  end
end
redis.call('XADD', t .. ':timeline', '*', 'at', ARGV[9], 'actor', ARGV[10], 'action', ARGV[11],
  'from', state, 'to', to, 'version', nv, 'details', ARGV[14])
-- The officers' live view: who may see it is the reader's question.
redis.call('XADD', p .. 'events', 'MAXLEN', '~', 100000, '*', 'kind', 'change', 'ticket', number,
  'action', ARGV[11], 'actor', ARGV[10], 'from', state, 'to', to, 'version', nv)
if op ~= '' then redis.call('SET', p .. 'op:' .. op, number, 'EX', 604800) end
return {'ok', to, tostring(nv)}
"#;

/// The model's final states, as `APPLY` takes them (`closed,abandoned,…`),
/// worked out once.
fn final_states() -> &'static str {
    static FINALS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        crate::tickets::model::ALL_STATES
            .into_iter()
            .filter(|s| s.is_final())
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    &FINALS
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("ticket {0} does not exist")]
    NotFound(String),
    #[error("ticket changed meanwhile: it is {state} at version {version}")]
    Stale { state: State, version: u64 },
    #[error("a ticket in state {from} cannot become {to}")]
    Illegal { from: State, to: State },
    #[error("ticket {number} is unreadable: {problem}")]
    Corrupt { number: String, problem: String },
}

impl StoreError {
    /// Redis failed (unreachable, slow, still loading after a restart,
    /// read-only, out of memory...): worth retrying later. Only a ticket
    /// that does not exist, an illegal change or unreadable data are final.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Redis(_))
    }
}

/// A new ticket, as the call layer knows it.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub call_id: String,
    /// The call's own id (empty: the Call-ID is the key).
    pub call: String,
    pub received_at: Timestamp,
    pub register: Register,
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Done {
        state: State,
        version: u64,
    },
    /// The op id was applied before.
    AlreadyApplied,
}

/// The ticket store.
#[derive(Clone)]
pub struct Store {
    pub(super) conn: Conn,
    pub(super) prefix: String,
    create: Script,
    apply: Script,
}

impl Store {
    /// Connects lazily: the gateway starts and answers calls with Redis down.
    pub fn connect(url: &str, prefix: &str) -> Result<Store, StoreError> {
        Store::connect_tls(url, prefix, None)
    }

    /// As [`Store::connect`]; a `rediss://` URL's certificate is checked
    /// against `ca_pem` when given (a court's own CA), else the system's
    /// roots.
    pub fn connect_tls(
        url: &str,
        prefix: &str,
        ca_pem: Option<Vec<u8>>,
    ) -> Result<Store, StoreError> {
        let client = match ca_pem {
            Some(root_cert) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )?,
            None => redis::Client::open(url)?,
        };
        Ok(Store::on(Conn::single(client)?, prefix))
    }

    /// The master `master_name` that `sentinels` (`redis://host:port`)
    /// name, followed across failovers; the master's own password, database
    /// and TLS from `master_url`.
    pub fn connect_sentinel(
        sentinels: &[String],
        master_name: &str,
        master_url: &str,
        prefix: &str,
    ) -> Result<Store, StoreError> {
        Ok(Store::on(
            Conn::sentinel(sentinels, master_name, master_url)?,
            prefix,
        ))
    }

    fn on(conn: Conn, prefix: &str) -> Store {
        Store {
            conn,
            prefix: prefix.to_string(),
            create: Script::new(CREATE),
            apply: Script::new(APPLY),
        }
    }

    pub(super) fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// Creates the ticket for a call, or returns the one it already has.
    /// `(number, created)`.
    pub async fn create(&self, t: &NewTicket, actor: &str) -> Result<(String, bool), StoreError> {
        let data = serde_json::to_string(&t.register).expect("register serialises");
        let details = serde_json::json!({ "call_id": t.call_id }).to_string();
        let mut c = self.conn.clone();
        let (kind, number): (String, String) = self
            .create
            .arg(&self.prefix)
            .arg(&t.call_id)
            .arg(court_year(t.received_at))
            .arg(t.received_at.to_string())
            .arg(t.received_at.as_second())
            .arg(data)
            .arg(actor)
            .arg(details)
            .arg(&t.call)
            .invoke_async(&mut c)
            .await?;
        Ok((number, kind == "created"))
    }

    /// The newest ticket of a Call-ID.
    pub async fn number_for_call(&self, call_id: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        Ok(c.get(self.key(&format!("call:{call_id}"))).await?)
    }

    /// The ticket of the call with this own id (see [`NewTicket::call`]).
    pub async fn number_for_dialog(&self, call: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        Ok(c.get(self.key(&format!("dialog:{call}"))).await?)
    }

    pub async fn get(&self, number: &str) -> Result<Ticket, StoreError> {
        let mut c = self.conn.clone();
        let h: HashMap<String, String> = c.hgetall(self.key(&format!("ticket:{number}"))).await?;
        if h.is_empty() {
            return Err(StoreError::NotFound(number.to_string()));
        }
        ticket_from(number, &h)
    }

    /// Applies `edit` to the register and the change atomically. System
    /// changes (no expected version) are retried when someone else wrote
    /// in between; officers' changes are refused as stale instead.
    /// Applies an [`Action`](super::actions::Action): its change with its edit.
    pub async fn act(
        &self,
        number: &str,
        action: &super::actions::Action,
    ) -> Result<Applied, StoreError> {
        self.change(number, &action.change, &action.edit).await
    }

    pub async fn change(
        &self,
        number: &str,
        change: &Change,
        edit: impl Fn(&mut Register),
    ) -> Result<Applied, StoreError> {
        for _ in 0..8 {
            let current = self.get(number).await?;
            let mut register = current.register.clone();
            edit(&mut register);
            let allowed = match change.to {
                Some(to) => to
                    .allowed_from()
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                // Not a transition: an edit in any state.
                None => "*".to_string(),
            };
            if allowed.is_empty() {
                return Err(StoreError::Illegal {
                    from: current.state,
                    to: change.to.unwrap_or(current.state),
                });
            }
            let expected = change.expected_version.unwrap_or(current.version);
            let data = serde_json::to_string(&register).expect("register serialises");
            let category = register.intake.category.map(|c| c.as_str()).unwrap_or("");
            let case = register
                .intake
                .case_number
                .as_deref()
                .map(crate::cases::case_digits)
                .unwrap_or_default();
            let mut c = self.conn.clone();
            let reply: Vec<String> = self
                .apply
                .arg(&self.prefix)
                .arg(number)
                .arg(expected)
                .arg(allowed)
                .arg(change.to.map(|s| s.as_str()).unwrap_or(""))
                .arg(data)
                .arg(category)
                .arg(case)
                .arg(Timestamp::now().to_string())
                .arg(&change.actor)
                .arg(&change.action)
                .arg(change.index.join(","))
                .arg(change.op_id.as_deref().unwrap_or(""))
                .arg(change.details.to_string())
                .arg(final_states())
                .arg(
                    change
                        .wake
                        .map(|w| w.as_millisecond().to_string())
                        .unwrap_or_default(),
                )
                .invoke_async(&mut c)
                .await?;
            let state_of = |s: &str| {
                State::parse(s).ok_or_else(|| StoreError::Corrupt {
                    number: number.to_string(),
                    problem: format!("state {s:?}"),
                })
            };
            match reply.first().map(String::as_str) {
                Some("ok") => {
                    return Ok(Applied::Done {
                        state: state_of(&reply[1])?,
                        version: reply[2].parse().unwrap_or(0),
                    })
                }
                Some("dup") => return Ok(Applied::AlreadyApplied),
                Some("missing") => return Err(StoreError::NotFound(number.to_string())),
                Some("illegal") => {
                    return Err(StoreError::Illegal {
                        from: state_of(&reply[1])?,
                        to: change.to.unwrap_or(current.state),
                    })
                }
                Some("stale") if change.expected_version.is_none() => continue,
                Some("stale") => {
                    return Err(StoreError::Stale {
                        state: state_of(&reply[1])?,
                        version: reply[2].parse().unwrap_or(0),
                    })
                }
                other => {
                    return Err(StoreError::Corrupt {
                        number: number.to_string(),
                        problem: format!("script answered {other:?}"),
                    })
                }
            }
        }
        Err(StoreError::Corrupt {
            number: number.to_string(),
            problem: "too many concurrent changes".into(),
        })
    }

    /// The timeline, oldest first.
    pub async fn timeline(&self, number: &str) -> Result<Vec<Event>, StoreError> {
        let mut c = self.conn.clone();
        let key = self.key(&format!("ticket:{number}:timeline"));
        let entries: Vec<StreamEntry> = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query_async(&mut c)
            .await?;
        timeline_from(number, entries)
    }

    /// The tickets naming case `case` (by its digits) received from
    /// `from` to `to` (Unix seconds, both included), the newest `limit` of
    /// them, newest first: the earlier reports the triage links.
    pub async fn case_tickets(
        &self,
        case: &str,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Ticket>, StoreError> {
        let digits = crate::cases::case_digits(case);
        if digits.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn.clone();
        let numbers: Vec<String> = redis::cmd("ZREVRANGEBYSCORE")
            .arg(self.key(&format!("idx:case:{digits}")))
            .arg(to)
            .arg(from)
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut c)
            .await?;
        self.tickets(&numbers).await
    }

    /// Newest first, from an index: `all`, `open`, `state:S`,
    /// `category:C`, `case:DIGITS`, `member:ID`, `unit:ID`.
    pub async fn list(&self, index: &str, limit: usize) -> Result<Vec<Ticket>, StoreError> {
        self.list_from(index, 0, limit).await
    }

    /// `count` tickets of an index from position `start` (newest first).
    pub async fn list_from(
        &self,
        index: &str,
        start: usize,
        count: usize,
    ) -> Result<Vec<Ticket>, StoreError> {
        let mut c = self.conn.clone();
        let numbers: Vec<String> = c
            .zrevrange(
                self.key(&format!("idx:{index}")),
                start as isize,
                (start + count.max(1)) as isize - 1,
            )
            .await?;
        self.tickets(&numbers).await
    }

    /// The tickets `numbers` name, in that order (a round trip per
    /// [`BATCH`]; those that do not exist left out).
    async fn tickets(&self, numbers: &[String]) -> Result<Vec<Ticket>, StoreError> {
        let mut c = self.conn.clone();
        let mut out = Vec::with_capacity(numbers.len());
        // In pipelined batches: a round trip per batch, and the shared
        // connection serves other requests between them.
        for batch in numbers.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for n in batch {
                pipe.hgetall(self.key(&format!("ticket:{n}")));
            }
            let rows: Vec<HashMap<String, String>> = pipe.query_async(&mut c).await?;
            for (n, h) in batch.iter().zip(rows) {
                if !h.is_empty() {
                    out.push(ticket_from(n, &h)?);
                }
            }
        }
        Ok(out)
    }

    /// The tickets received from `from` to `to` (Unix seconds, both
    /// included), oldest first, at most `limit`.
    pub async fn received_between(
        &self,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Ticket>, StoreError> {
        let mut c = self.conn.clone();
        let numbers: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.key("idx:all"))
            .arg(from)
            .arg(to)
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut c)
            .await?;
        self.tickets(&numbers).await
    }

    /// Each ticket with its timeline (a round trip per [`BATCH`]).
    pub async fn with_timelines(
        &self,
        tickets: Vec<Ticket>,
    ) -> Result<Vec<(Ticket, Vec<Event>)>, StoreError> {
        let mut c = self.conn.clone();
        let mut out = Vec::with_capacity(tickets.len());
        let mut tickets = tickets.into_iter().peekable();
        // In pipelined batches, as the tickets themselves.
        while tickets.peek().is_some() {
            let batch: Vec<Ticket> = tickets.by_ref().take(BATCH).collect();
            let mut pipe = redis::pipe();
            for t in &batch {
                pipe.cmd("XRANGE")
                    .arg(self.key(&format!("ticket:{}:timeline", t.number)))
                    .arg("-")
                    .arg("+");
            }
            let timelines: Vec<Vec<StreamEntry>> = pipe.query_async(&mut c).await?;
            for (t, entries) in batch.into_iter().zip(timelines) {
                let timeline = timeline_from(&t.number, entries)?;
                out.push((t, timeline));
            }
        }
        Ok(out)
    }

    /// Puts a ticket into indexes (`member:ID`, `unit:ID`) at once, e.g.
    /// before pages go out, so whoever is paged can open it at the page.
    pub async fn add_to_indexes(&self, number: &str, indexes: &[String]) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let score: Option<i64> = c
            .hget(self.key(&format!("ticket:{number}")), "received")
            .await?;
        let score = score.ok_or_else(|| StoreError::NotFound(number.to_string()))?;
        let mut pipe = redis::pipe();
        for idx in indexes {
            pipe.zadd(self.key(&format!("idx:{idx}")), number, score)
                .ignore();
        }
        let _: () = pipe.query_async(&mut c).await?;
        Ok(())
    }

    /// Where a ticket stands in an index (0 = newest), if it is there.
    /// Whether `member` may see `t` (`actions::may_see`): the leaders see
    /// every ticket, anyone else those on one of their lists (asked here)
    /// or of a case they handle. The API's rule, and the MESSAGE replies'.
    pub async fn may_see(
        &self,
        member: &crate::roster::Member,
        roster: &crate::roster::Roster,
        t: &Ticket,
    ) -> Result<bool, StoreError> {
        let mut listed = false;
        if !super::actions::sees_all(member) {
            for idx in super::actions::indexes_of(member, roster) {
                if self.position(&idx.name(), &t.number).await?.is_some() {
                    listed = true;
                    break;
                }
            }
        }
        Ok(super::actions::may_see(member, roster, t, listed))
    }

    pub async fn position(&self, index: &str, number: &str) -> Result<Option<usize>, StoreError> {
        let mut c = self.conn.clone();
        let rank: Option<usize> = c
            .zrevrank(self.key(&format!("idx:{index}")), number)
            .await?;
        Ok(rank)
    }

    /// The caller key's fingerprint on record: the first gateway writes
    /// `fingerprint`; `Some(other)` when another key came first (the
    /// tickets in this Redis were sealed with that one).
    pub async fn check_caller_key(&self, fingerprint: &str) -> Result<Option<String>, StoreError> {
        let k = self.key("caller_key:fingerprint");
        let mut c = self.conn.clone();
        let set: bool = redis::cmd("SET")
            .arg(&k)
            .arg(fingerprint)
            .arg("NX")
            .query_async::<Option<String>>(&mut c)
            .await?
            .is_some();
        if set {
            return Ok(None);
        }
        let on_record: Option<String> = c.get(&k).await?;
        Ok(on_record.filter(|f| f != fingerprint))
    }

    /// How many tickets each state holds (from the state indexes).
    pub async fn count_by_state(&self) -> Result<Vec<(State, u64)>, StoreError> {
        let mut c = self.conn.clone();
        let mut pipe = redis::pipe();
        for st in crate::tickets::model::ALL_STATES {
            pipe.zcard(self.key(&format!("idx:state:{st}")));
        }
        let counts: Vec<u64> = pipe.query_async(&mut c).await?;
        Ok(crate::tickets::model::ALL_STATES
            .into_iter()
            .zip(counts)
            .collect())
    }

    /// The id of the newest entry of the events stream, if any.
    pub async fn newest_event(&self) -> Result<Option<String>, StoreError> {
        self.newest_in("events").await
    }

    /// The id of the newest entry of the stream `name`, if any.
    pub(super) async fn newest_in(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        let newest: Vec<StreamEntry> = redis::cmd("XREVRANGE")
            .arg(self.key(name))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut c)
            .await?;
        Ok(newest.into_iter().next().map(|(id, _)| id))
    }

    /// Up to `count` entries of the events stream after the entry `after`,
    /// each its id and fields. No BLOCK: the connection is shared by every
    /// request, so a reader polls.
    pub async fn events_after(
        &self,
        after: &str,
        count: usize,
    ) -> Result<Vec<(String, HashMap<String, String>)>, StoreError> {
        let mut c = self.conn.clone();
        let read: Option<Vec<(String, Vec<StreamEntry>)>> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(self.key("events"))
            .arg(after)
            .query_async(&mut c)
            .await?;
        Ok(read
            .into_iter()
            .flatten()
            .flat_map(|(_, entries)| entries)
            .map(|(id, fields)| (id, fields.into_iter().collect()))
            .collect())
    }

    /// Raw access for tests and tools.
    /// Behind Sentinel: whether a replica has everything written so far
    /// (`WAIT 1`, up to half a second); else nothing to wait for.
    pub async fn replicated(&self) -> Result<(), StoreError> {
        if !self.conn.follows_sentinel() {
            return Ok(());
        }
        let mut c = self.conn.clone();
        let acked: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(500)
            .query_async(&mut c)
            .await?;
        if acked < 1 {
            return Err(StoreError::Redis(redis::RedisError::from((
                redis::ErrorKind::Io,
                "no replica acknowledged the write",
            ))));
        }
        Ok(())
    }

    pub fn connection(&self) -> Conn {
        self.conn.clone()
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// One stream entry: id and fields.
type StreamEntry = (String, Vec<(String, String)>);

/// Tickets (or timelines) read in one pipelined round trip, at most.
const BATCH: usize = 500;

/// A ticket's timeline from its stream's entries.
fn timeline_from(number: &str, entries: Vec<StreamEntry>) -> Result<Vec<Event>, StoreError> {
    entries
        .into_iter()
        .map(|(id, fields)| {
            let f: HashMap<String, String> = fields.into_iter().collect();
            let get = |k: &str| f.get(k).cloned().unwrap_or_default();
            let corrupt = |p: &str| StoreError::Corrupt {
                number: number.to_string(),
                problem: format!("timeline {id}: {p}"),
            };
            Ok(Event {
                at: get("at").parse().map_err(|_| corrupt("at"))?,
                actor: get("actor"),
                action: get("action"),
                from: State::parse(&get("from")),
                to: State::parse(&get("to")).ok_or_else(|| corrupt("to"))?,
                version: get("version").parse().map_err(|_| corrupt("version"))?,
                details: get("details"),
                id,
            })
        })
        .collect()
}

fn ticket_from(number: &str, h: &HashMap<String, String>) -> Result<Ticket, StoreError> {
    let corrupt = |p: String| StoreError::Corrupt {
        number: number.to_string(),
        problem: p,
    };
    let get = |k: &str| h.get(k).ok_or_else(|| corrupt(format!("no field {k}")));
    Ok(Ticket {
        number: number.to_string(),
        call_id: get("call_id")?.clone(),
        state: State::parse(get("state")?).ok_or_else(|| corrupt("state".into()))?,
        version: get("version")?
            .parse()
            .map_err(|_| corrupt("version".into()))?,
        received_at: get("received_at")?
            .parse()
            .map_err(|_| corrupt("received_at".into()))?,
        register: serde_json::from_str(get("data")?).map_err(|e| corrupt(format!("data: {e}")))?,
    })
}
