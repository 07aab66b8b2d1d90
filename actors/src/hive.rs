//! SVC-RISK-GLB, the global risk tracker ("hive mind").
//!
//! When any tenant loses a Spot instance to an interruption (or receives a rebalance
//! recommendation), the *pool* it ran in — region, availability zone and instance type — is
//! flagged for [`HIVE_TTL`] so that every other tenant's engine avoids that pool while AWS is
//! reclaiming capacity there. This is the only state in the system that is deliberately shared
//! across tenants, which is why [`PoolId`] carries nothing but public AWS identifiers: no account
//! id, no instance id, no cluster name, no tag ever crosses the tenant boundary through here.
//!
//! Window semantics (identical for both implementations):
//! * every event keeps the pool flagged until `at + ttl` (the expiry only ever moves forward,
//!   so a late-delivered, older event cannot shorten a flag opened by a newer one);
//! * `count` is the number of events received since the flag was (re)opened;
//! * once the expiry has passed the pool is clean, and the next event reopens the flag with a
//!   count of 1.
//!
//! Timestamps are kept at millisecond resolution in both implementations, because that is what
//! Redis expiry works in; keeping the in-memory tracker at the same resolution means the two
//! behave identically under the shared test suite.
//!
//! Two implementations:
//! * [`MemoryTracker`] — in-process, for single-replica deployments and tests. The clock is the
//!   caller's `at`/`now`, so tests never sleep.
//! * [`RedisTracker`] — production; all replicas share one view through Redis.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

/// How long a single interruption/rebalance event keeps a pool flagged (the architecture's
/// "Redis flag (30min TTL)"): long enough to cover the typical capacity-reclaim wave in a pool,
/// short enough that a pool is not shunned for hours after AWS has recovered capacity.
pub const HIVE_TTL: Duration = Duration::from_secs(30 * 60);

/// [`HIVE_TTL`] as the chrono type used for time arithmetic (a unit test keeps them in sync).
const HIVE_TTL_DELTA: TimeDelta = TimeDelta::minutes(30);

/// Key namespace used in production; tests pass a unique prefix per test instead.
pub const DEFAULT_KEY_PREFIX: &str = "spot";

/// Upper bound for one identifier. AWS identifiers are far shorter; the cap keeps a malformed
/// input from producing unbounded Redis keys.
const MAX_ID_LEN: usize = 64;

/// Errors of the risk tracker.
///
/// Callers must not read an error as "pool is clean": an unreachable Redis means the risk is
/// *unknown*, and the engine decides whether to proceed conservatively.
#[derive(Debug, thiserror::Error)]
pub enum HiveError {
    /// A pool identifier is not a plausible AWS identifier. Rejected rather than normalised so
    /// that the same pool can never be split across two spellings or alias another pool's key.
    #[error("invalid pool {field} {value:?}: {reason}")]
    InvalidPool {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    /// A constructor argument (TTL, key prefix) is unusable.
    #[error("invalid hive configuration: {0}")]
    InvalidConfig(String),
    /// `at + ttl` does not fit in a timestamp.
    #[error("event time {0} is out of range")]
    TimeOutOfRange(DateTime<Utc>),
    /// Redis could not be reached or rejected a command.
    #[error("hive store unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis holds data this code cannot interpret (e.g. written by an incompatible version).
    #[error("corrupt hive entry {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// A Spot capacity pool. Only public AWS identifiers — this value is shared across tenants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PoolId {
    /// e.g. `us-east-1`
    pub region: String,
    /// e.g. `us-east-1a` (zone name, not zone id)
    pub az: String,
    /// e.g. `c5.xlarge`
    pub instance_type: String,
}

impl PoolId {
    /// Builds a validated pool id.
    pub fn new(
        region: impl Into<String>,
        az: impl Into<String>,
        instance_type: impl Into<String>,
    ) -> Result<Self, HiveError> {
        let pool = Self {
            region: region.into(),
            az: az.into(),
            instance_type: instance_type.into(),
        };
        pool.validate()?;
        Ok(pool)
    }

    /// Checks every field against the AWS identifier alphabet (`[a-z0-9.-]`, 1..=64 chars).
    ///
    /// The fields are public, so trackers call this on every input as well. Beyond catching
    /// bugs, it guarantees the Redis key `…:{region}:{az}:{type}` is injective: no field can
    /// contain `:` and so no pool can alias another pool's key or the index key.
    pub fn validate(&self) -> Result<(), HiveError> {
        validate_id("region", &self.region)?;
        validate_id("az", &self.az)?;
        validate_id("instance_type", &self.instance_type)
    }
}

impl std::fmt::Display for PoolId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.region, self.az, self.instance_type)
    }
}

fn validate_id(field: &'static str, value: &str) -> Result<(), HiveError> {
    let reason = if value.is_empty() {
        Some("must not be empty")
    } else if value.len() > MAX_ID_LEN {
        Some("is longer than 64 characters")
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        Some("may only contain a-z, 0-9, '-' and '.'")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(HiveError::InvalidPool {
            field,
            value: value.chars().take(MAX_ID_LEN + 8).collect(),
            reason,
        }),
    }
}

/// What AWS told a tenant about its instance in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskSignal {
    /// The two-minute Spot interruption notice (or the termination itself).
    Interruption,
    /// An EC2 rebalance recommendation: elevated interruption risk, no termination yet.
    Rebalance,
}

impl RiskSignal {
    /// Stable wire name (stored in Redis; do not change without a migration).
    pub fn as_str(self) -> &'static str {
        match self {
            RiskSignal::Interruption => "interruption",
            RiskSignal::Rebalance => "rebalance",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "interruption" => Some(RiskSignal::Interruption),
            "rebalance" => Some(RiskSignal::Rebalance),
            _ => None,
        }
    }
}

/// The current state of a flagged pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolFlag {
    pub pool: PoolId,
    /// Events received since the flag was (re)opened.
    pub count: u64,
    /// Time of the newest event (by event time, not arrival order).
    pub last_seen: DateTime<Utc>,
    /// The pool is clean from this instant on (unless another event arrives).
    pub expires_at: DateTime<Utc>,
    /// Signal of the newest event.
    pub last_signal: RiskSignal,
}

/// What the global risk tracker says about the pools, as a caller must read it: the flags
/// (possibly none), or *unknown* because the tracker could not be read. Unknown is not
/// "no pool is flagged": callers treat every pool whose state is unknown conservatively.
#[derive(Debug, Clone, PartialEq)]
pub enum Flags {
    Known(Vec<PoolFlag>),
    Unknown { reason: String },
}

impl Flags {
    /// The flags when known.
    pub fn known(&self) -> Option<&[PoolFlag]> {
        match self {
            Flags::Known(v) => Some(v),
            Flags::Unknown { .. } => None,
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Flags::Unknown { .. })
    }
}

/// Cross-tenant pool risk flags.
///
/// `at`/`now` are explicit so the in-memory implementation is deterministic under test. The
/// Redis implementation additionally expires keys on the Redis server's real clock, so callers
/// should pass the current time (or the event's own timestamp) there.
#[async_trait]
pub trait RiskTracker: Send + Sync {
    /// Records one event in `pool` at `at` and returns the pool's state after it.
    async fn flag(
        &self,
        pool: &PoolId,
        signal: RiskSignal,
        at: DateTime<Utc>,
    ) -> Result<PoolFlag, HiveError>;

    /// The pool's flag if it is still active at `now`.
    async fn get(&self, pool: &PoolId, now: DateTime<Utc>) -> Result<Option<PoolFlag>, HiveError>;

    /// Every pool flagged at `now`, ordered by pool id.
    async fn flagged(&self, now: DateTime<Utc>) -> Result<Vec<PoolFlag>, HiveError>;

    /// Every pool flagged at `now`, or [`Flags::Unknown`] (logged) when the tracker cannot
    /// be read. What decision code calls: an error cannot be mistaken for "clean".
    async fn flags(&self, now: DateTime<Utc>) -> Flags {
        match self.flagged(now).await {
            Ok(v) => Flags::Known(v),
            Err(e) => {
                tracing::warn!(component = "SVC-RISK-GLB", error = %e, "global risk tracker unavailable: pool flags unknown");
                Flags::Unknown {
                    reason: e.to_string(),
                }
            }
        }
    }

    /// The pools of one region flagged at `now` — the engine's block list when it picks a pool.
    async fn flagged_set(
        &self,
        region: &str,
        now: DateTime<Utc>,
    ) -> Result<HashSet<PoolId>, HiveError> {
        validate_id("region", region)?;
        Ok(self
            .flagged(now)
            .await?
            .into_iter()
            .filter(|f| f.pool.region == region)
            .map(|f| f.pool)
            .collect())
    }
}

/// Validates a TTL and converts it to the chrono type used for time arithmetic.
fn ttl_delta(ttl: Duration) -> Result<TimeDelta, HiveError> {
    if ttl.as_millis() == 0 {
        return Err(HiveError::InvalidConfig(
            "ttl must be at least 1 ms (Redis expiry has millisecond resolution)".into(),
        ));
    }
    TimeDelta::from_std(ttl)
        .map_err(|_| HiveError::InvalidConfig(format!("ttl {ttl:?} is too large")))
}

/// Truncates to whole milliseconds (see the module docs for why).
fn to_millis(t: DateTime<Utc>) -> Result<DateTime<Utc>, HiveError> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).ok_or(HiveError::TimeOutOfRange(t))
}

fn expiry(at: DateTime<Utc>, ttl: TimeDelta) -> Result<DateTime<Utc>, HiveError> {
    at.checked_add_signed(ttl)
        .ok_or(HiveError::TimeOutOfRange(at))
}

// ---------------------------------------------------------------------------------------------
// In-memory implementation
// ---------------------------------------------------------------------------------------------

/// In-process tracker: a TTL map behind a mutex.
///
/// Expired entries are purged lazily on every call instead of by a background task, so the
/// tracker needs no runtime of its own and time is entirely the caller's `at`/`now`. The map
/// only ever holds currently flagged pools (a few thousand at the very worst), so the O(n)
/// purge is cheap.
#[derive(Debug)]
pub struct MemoryTracker {
    ttl: TimeDelta,
    flags: Mutex<HashMap<PoolId, PoolFlag>>,
}

impl MemoryTracker {
    /// A tracker with the production TTL ([`HIVE_TTL`]).
    pub fn new() -> Self {
        Self {
            ttl: HIVE_TTL_DELTA,
            flags: Mutex::new(HashMap::new()),
        }
    }

    /// A tracker with a custom TTL (tests, tuning).
    pub fn with_ttl(ttl: Duration) -> Result<Self, HiveError> {
        Ok(Self {
            ttl: ttl_delta(ttl)?,
            flags: Mutex::new(HashMap::new()),
        })
    }

    /// Locks the map. A panic while holding the lock cannot leave an entry half-written (every
    /// mutation is a single insert/assignment of plain values), so a poisoned lock is recovered
    /// rather than turning one panic into a permanently broken tracker.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PoolId, PoolFlag>> {
        self.flags.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn purge(map: &mut HashMap<PoolId, PoolFlag>, now: DateTime<Utc>) {
        map.retain(|_, f| f.expires_at > now);
    }
}

impl Default for MemoryTracker {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl RiskTracker for MemoryTracker {
    async fn flag(
        &self,
        pool: &PoolId,
        signal: RiskSignal,
        at: DateTime<Utc>,
    ) -> Result<PoolFlag, HiveError> {
        pool.validate()?;
        let at = to_millis(at)?;
        let expires_at = expiry(at, self.ttl)?;
        let mut map = self.lock();
        // A flag that has expired by the time of this event is closed: the event opens a new one.
        if map.get(pool).is_some_and(|f| f.expires_at <= at) {
            map.remove(pool);
        }
        let flag = match map.get_mut(pool) {
            Some(f) => {
                f.count += 1;
                f.expires_at = f.expires_at.max(expires_at);
                if at >= f.last_seen {
                    f.last_seen = at;
                    f.last_signal = signal;
                }
                f.clone()
            }
            None => {
                let f = PoolFlag {
                    pool: pool.clone(),
                    count: 1,
                    last_seen: at,
                    expires_at,
                    last_signal: signal,
                };
                map.insert(pool.clone(), f.clone());
                f
            }
        };
        Self::purge(&mut map, at);
        drop(map);
        tracing::info!(component = "SVC-RISK-GLB", pool = %pool, signal = signal.as_str(),
            count = flag.count, expires_at = %flag.expires_at, "pool flagged");
        Ok(flag)
    }

    async fn get(&self, pool: &PoolId, now: DateTime<Utc>) -> Result<Option<PoolFlag>, HiveError> {
        pool.validate()?;
        let mut map = self.lock();
        Self::purge(&mut map, now);
        Ok(map.get(pool).cloned())
    }

    async fn flagged(&self, now: DateTime<Utc>) -> Result<Vec<PoolFlag>, HiveError> {
        let mut map = self.lock();
        Self::purge(&mut map, now);
        let mut out: Vec<PoolFlag> = map.values().cloned().collect();
        drop(map);
        out.sort_by(|a, b| a.pool.cmp(&b.pool));
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Redis implementation
// ---------------------------------------------------------------------------------------------

/// Atomic "record one event" on the pool hash and the index.
///
/// A Lua script rather than MULTI/EXEC because the update is read-modify-write: the expiry and
/// `last_seen` must only move forward (`max(stored, new)`), and a transaction cannot branch on
/// a value it reads. With a plain `HSET` + `PEXPIREAT at+ttl`, a delayed event from another
/// replica (CloudWatch delivery lag, clock skew) would *shorten* a live flag and let tenants
/// back into a pool that is still being reclaimed. The script runs atomically on the server,
/// so concurrent flags from all replicas are counted exactly (`HINCRBY`), and it needs no
/// Redis 7-only options (`PEXPIREAT GT`, `PEXPIRETIME`).
///
/// KEYS[1] pool hash, KEYS[2] index zset.
/// ARGV: at_ms, expires_ms (= at + ttl), signal, region, az, instance_type.
/// Returns {count, last_seen_ms, last_signal, expires_ms}.
///
/// The index itself is given the latest expiry of its members so that it disappears with the
/// last flag rather than lingering forever (unique per-test prefixes would otherwise leak).
const FLAG_SCRIPT: &str = r#"
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
local cur = redis.call('HMGET', KEYS[1], 'last_seen', 'last_signal', 'expires_at')
local last_seen, signal, exp = ARGV[1], ARGV[3], ARGV[2]
if cur[1] and tonumber(cur[1]) and tonumber(cur[1]) > tonumber(ARGV[1]) then
  last_seen = cur[1]
  if cur[2] then signal = cur[2] end
end
if cur[3] and tonumber(cur[3]) and tonumber(cur[3]) > tonumber(ARGV[2]) then
  exp = cur[3]
end
redis.call('HSET', KEYS[1], 'region', ARGV[4], 'az', ARGV[5], 'instance_type', ARGV[6],
  'last_seen', last_seen, 'last_signal', signal, 'expires_at', exp)
redis.call('PEXPIREAT', KEYS[1], exp)
redis.call('ZADD', KEYS[2], exp, KEYS[1])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], string.format('%.0f', tonumber(top[2])))
return {count, last_seen, signal, exp}
"#;

/// Hash fields read back by `get`/`flagged`, in this order.
const FIELDS: [&str; 7] = [
    "region",
    "az",
    "instance_type",
    "count",
    "last_seen",
    "last_signal",
    "expires_at",
];

/// Production tracker shared by all replicas through Redis.
///
/// Layout (`{p}` = key prefix, `spot` in production):
/// * `{p}:hive:{region}:{az}:{instance_type}` — hash `{region, az, instance_type, count,
///   last_seen, last_signal, expires_at}` (times in Unix ms), `PEXPIREAT`ed at `expires_at`, so
///   Redis itself makes the pool clean and a later `HINCRBY` restarts the count at 1;
/// * `{p}:hive:index` — sorted set, member = pool key, score = expiry ms, so `flagged()` is one
///   range query instead of a `SCAN` over the keyspace. Entries whose score has passed are
///   dead (their hash has expired) and are trimmed on read.
///
/// The pool fields are stored in the hash rather than parsed back out of the key so that the
/// key format can change without breaking readers. Both keys are touched by one script, so
/// this needs a single Redis primary (or Sentinel), not Redis Cluster.
#[derive(Clone)]
pub struct RedisTracker {
    conn: ConnectionManager,
    prefix: String,
    ttl: TimeDelta,
}

impl std::fmt::Debug for RedisTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTracker")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl RedisTracker {
    /// Wraps an existing connection (shared with other components of the process).
    ///
    /// `key_prefix` namespaces every key (`spot` in production; tests use a unique prefix so
    /// that concurrent tests against one Redis never see each other's flags).
    pub fn new(
        conn: ConnectionManager,
        key_prefix: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self, HiveError> {
        let prefix = key_prefix.into();
        if prefix.is_empty()
            || prefix.len() > 128
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(HiveError::InvalidConfig(format!(
                "key prefix {prefix:?} must be 1..=128 chars of [A-Za-z0-9-_.:]"
            )));
        }
        Ok(Self {
            conn,
            prefix,
            ttl: ttl_delta(ttl)?,
        })
    }

    /// Connects to `url` (`redis://host:port`). Fails if Redis is unreachable, so that a
    /// misconfiguration shows at start-up instead of at the first interruption.
    ///
    /// Connection and response timeouts are bounded: an engine deciding where to place a node
    /// must not hang on a stalled Redis; it gets an error and treats the risk as unknown.
    pub async fn connect(
        url: &str,
        key_prefix: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self, HiveError> {
        let client = redis::Client::open(url)?;
        // redis-rs' default backoff (factor 100, no cap) sleeps for up to a minute between
        // attempts; an explicit base-2 backoff capped at 2 s keeps the start-up failure fast
        // and bounds how long a call waits while the manager reconnects.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(3))
            .set_response_timeout(Duration::from_secs(2))
            .set_factor(2)
            .set_max_delay(2_000)
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Self::new(conn, key_prefix, ttl)
    }

    fn pool_key(&self, pool: &PoolId) -> String {
        format!(
            "{}:hive:{}:{}:{}",
            self.prefix, pool.region, pool.az, pool.instance_type
        )
    }

    fn index_key(&self) -> String {
        format!("{}:hive:index", self.prefix)
    }

    /// Decodes an `HMGET key FIELDS` reply. `None` when the hash does not exist (expired).
    fn decode(key: &str, v: &[Option<String>]) -> Result<Option<PoolFlag>, HiveError> {
        let corrupt = |reason: String| HiveError::Corrupt {
            key: key.to_string(),
            reason,
        };
        let field = |i: usize| -> Result<&str, HiveError> {
            v.get(i)
                .and_then(|x| x.as_deref())
                .ok_or_else(|| corrupt(format!("missing field {}", FIELDS[i])))
        };
        if v.iter().all(Option::is_none) {
            return Ok(None);
        }
        let pool = PoolId {
            region: field(0)?.to_string(),
            az: field(1)?.to_string(),
            instance_type: field(2)?.to_string(),
        };
        pool.validate().map_err(|e| corrupt(e.to_string()))?;
        let count = field(3)?
            .parse::<u64>()
            .map_err(|e| corrupt(format!("count: {e}")))?;
        let last_seen = parse_ms(field(4)?).ok_or_else(|| corrupt("last_seen".into()))?;
        let last_signal = RiskSignal::parse(field(5)?)
            .ok_or_else(|| corrupt(format!("unknown signal {:?}", field(5).unwrap_or(""))))?;
        let expires_at = parse_ms(field(6)?).ok_or_else(|| corrupt("expires_at".into()))?;
        Ok(Some(PoolFlag {
            pool,
            count,
            last_seen,
            expires_at,
            last_signal,
        }))
    }
}

fn parse_ms(s: &str) -> Option<DateTime<Utc>> {
    s.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

#[async_trait]
impl RiskTracker for RedisTracker {
    async fn flag(
        &self,
        pool: &PoolId,
        signal: RiskSignal,
        at: DateTime<Utc>,
    ) -> Result<PoolFlag, HiveError> {
        pool.validate()?;
        let at = to_millis(at)?;
        let expires_at = expiry(at, self.ttl)?;
        let key = self.pool_key(pool);
        let mut conn = self.conn.clone();
        let (count, last_seen, last_signal, exp): (u64, String, String, String) =
            redis::cmd("EVAL")
                .arg(FLAG_SCRIPT)
                .arg(2)
                .arg(&key)
                .arg(self.index_key())
                .arg(at.timestamp_millis())
                .arg(expires_at.timestamp_millis())
                .arg(signal.as_str())
                .arg(&pool.region)
                .arg(&pool.az)
                .arg(&pool.instance_type)
                .query_async(&mut conn)
                .await?;
        let flag = PoolFlag {
            pool: pool.clone(),
            count,
            last_seen: parse_ms(&last_seen).ok_or_else(|| HiveError::Corrupt {
                key: key.clone(),
                reason: format!("last_seen {last_seen:?}"),
            })?,
            expires_at: parse_ms(&exp).ok_or_else(|| HiveError::Corrupt {
                key: key.clone(),
                reason: format!("expires_at {exp:?}"),
            })?,
            last_signal: RiskSignal::parse(&last_signal).ok_or_else(|| HiveError::Corrupt {
                key: key.clone(),
                reason: format!("unknown signal {last_signal:?}"),
            })?,
        };
        tracing::info!(component = "SVC-RISK-GLB", pool = %pool, signal = signal.as_str(),
            count = flag.count, expires_at = %flag.expires_at, "pool flagged");
        Ok(flag)
    }

    async fn get(&self, pool: &PoolId, now: DateTime<Utc>) -> Result<Option<PoolFlag>, HiveError> {
        pool.validate()?;
        let key = self.pool_key(pool);
        let mut conn = self.conn.clone();
        let v: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&key)
            .arg(&FIELDS[..])
            .query_async(&mut conn)
            .await?;
        // Filter on `now` as well as relying on Redis expiry: Redis keeps a key alive through
        // its expiry millisecond, and callers asking about a specific instant get an answer for
        // that instant.
        Ok(Self::decode(&key, &v)?.filter(|f| f.expires_at > now))
    }

    async fn flagged(&self, now: DateTime<Utc>) -> Result<Vec<PoolFlag>, HiveError> {
        let index = self.index_key();
        let now_ms = now.timestamp_millis();
        // Only trim what is dead by the real clock too: a caller asking about a future instant
        // must not drop index entries of pools that are still flagged right now.
        let trim_ms = now_ms.min(Utc::now().timestamp_millis());
        let mut conn = self.conn.clone();
        let (_, keys): (i64, Vec<String>) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(trim_ms)
            .cmd("ZRANGEBYSCORE")
            .arg(&index)
            .arg(format!("({now_ms}"))
            .arg("+inf")
            .query_async(&mut conn)
            .await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("HMGET").arg(k).arg(&FIELDS[..]);
        }
        let rows: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
        let mut out = Vec::with_capacity(keys.len());
        for (k, row) in keys.iter().zip(rows.iter()) {
            // A hash may expire between the two round trips; that pool is simply clean now.
            if let Some(f) = Self::decode(k, row)? {
                if f.expires_at > now {
                    out.push(f);
                }
            }
        }
        out.sort_by(|a, b| a.pool.cmp(&b.pool));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The suite's notion of time: the memory tracker gets a manual clock (no sleeping), the
    /// Redis tracker the real clock, because Redis expires keys in real time.
    enum Clock {
        Manual(Mutex<DateTime<Utc>>),
        Real,
    }

    impl Clock {
        fn manual() -> Self {
            let start = DateTime::from_timestamp_millis(1_767_176_100_000).expect("valid time");
            Clock::Manual(Mutex::new(start))
        }

        fn now(&self) -> DateTime<Utc> {
            match self {
                Clock::Manual(t) => *t.lock().expect("clock lock"),
                Clock::Real => to_millis(Utc::now()).expect("now in range"),
            }
        }

        async fn advance(&self, by: TimeDelta) {
            match self {
                Clock::Manual(t) => *t.lock().expect("clock lock") += by,
                Clock::Real => tokio::time::sleep(by.to_std().expect("positive")).await,
            }
        }

        /// Moves time to (at least) `deadline`. The manual clock lands exactly on it, which
        /// tests the boundary; the real clock overshoots a little to absorb timer jitter.
        async fn advance_to(&self, deadline: DateTime<Utc>) {
            match self {
                Clock::Manual(t) => *t.lock().expect("clock lock") = deadline,
                Clock::Real => {
                    let wait = (deadline - Utc::now()) + TimeDelta::milliseconds(300);
                    if let Ok(w) = wait.to_std() {
                        tokio::time::sleep(w).await;
                    }
                }
            }
        }
    }

    fn pool(region: &str, az: &str, ty: &str) -> PoolId {
        PoolId::new(region, az, ty).expect("valid pool")
    }

    // ---- the shared behaviour suite -------------------------------------------------------

    /// Flag, count, extend, isolation, expiry and restart of a single pool's window.
    async fn suite_window(t: &dyn RiskTracker, clock: &Clock, ttl: TimeDelta) {
        let p = pool("us-east-1", "us-east-1a", "c5.xlarge");
        let other_az = pool("us-east-1", "us-east-1b", "c5.xlarge");
        let other_type = pool("us-east-1", "us-east-1a", "m5.large");

        let t0 = clock.now();
        assert!(
            t.get(&p, t0).await.expect("get").is_none(),
            "clean at start"
        );

        let f1 = t
            .flag(&p, RiskSignal::Interruption, t0)
            .await
            .expect("flag");
        assert_eq!(f1.pool, p);
        assert_eq!(f1.count, 1);
        assert_eq!(f1.last_seen, t0);
        assert_eq!(f1.expires_at, t0 + ttl);
        assert_eq!(f1.last_signal, RiskSignal::Interruption);
        let g1 = t.get(&p, clock.now()).await.expect("get").expect("flagged");
        assert_eq!(g1, f1, "get returns what flag reported");

        // A second event increments the counter and extends the window from *its* time.
        clock.advance(ttl / 10).await;
        let t1 = clock.now();
        let f2 = t.flag(&p, RiskSignal::Rebalance, t1).await.expect("flag");
        assert_eq!(f2.count, 2);
        assert_eq!(f2.last_seen, t1);
        assert_eq!(f2.expires_at, t1 + ttl);
        assert!(f2.expires_at > f1.expires_at, "window extended");
        assert_eq!(f2.last_signal, RiskSignal::Rebalance);
        assert_eq!(t.get(&p, clock.now()).await.expect("get"), Some(f2.clone()));

        // A late-delivered older event counts, but neither shortens the window nor rewinds
        // last_seen/last_signal.
        let late = t0 + TimeDelta::milliseconds(1);
        let f3 = t
            .flag(&p, RiskSignal::Interruption, late)
            .await
            .expect("flag");
        assert_eq!(f3.count, 3);
        assert_eq!(f3.expires_at, f2.expires_at, "older event must not shorten");
        assert_eq!(f3.last_seen, t1);
        assert_eq!(f3.last_signal, RiskSignal::Rebalance);

        // Neighbouring pools (other AZ, other type) are unaffected.
        let now = clock.now();
        assert!(t.get(&other_az, now).await.expect("get").is_none());
        assert!(t.get(&other_type, now).await.expect("get").is_none());
        let all = t.flagged(now).await.expect("flagged");
        assert_eq!(all, vec![f3.clone()]);

        // After the expiry the pool is clean...
        clock.advance_to(f3.expires_at).await;
        let t2 = clock.now();
        assert!(t2 >= f3.expires_at);
        assert!(t.get(&p, t2).await.expect("get").is_none(), "expired");
        assert!(t.flagged(t2).await.expect("flagged").is_empty());
        assert!(t
            .flagged_set("us-east-1", t2)
            .await
            .expect("flagged_set")
            .is_empty());

        // ...and the next event reopens the flag with a fresh count.
        let f4 = t.flag(&p, RiskSignal::Rebalance, t2).await.expect("flag");
        assert_eq!(f4.count, 1, "counter restarts after expiry");
        assert_eq!(f4.last_seen, t2);
        assert_eq!(f4.expires_at, t2 + ttl);
        assert_eq!(f4.last_signal, RiskSignal::Rebalance);
        assert_eq!(t.get(&p, clock.now()).await.expect("get"), Some(f4));
    }

    /// `flagged_set` returns exactly the pools of the requested region.
    async fn suite_region_filter(t: &dyn RiskTracker, clock: &Clock) {
        let a = pool("us-east-1", "us-east-1a", "c5.xlarge");
        let b = pool("us-east-1", "us-east-1b", "m5.large");
        let c = pool("eu-west-1", "eu-west-1a", "c5.xlarge");
        // Not a real region: guards against a future "optimisation" that filters by key prefix
        // (`…:us-east-1*` would also match `us-east-10`).
        let d = pool("us-east-10", "us-east-10a", "c5.xlarge");
        let now = clock.now();
        for p in [&a, &b, &c, &d] {
            t.flag(p, RiskSignal::Interruption, now)
                .await
                .expect("flag");
        }
        let us = t.flagged_set("us-east-1", now).await.expect("flagged_set");
        assert_eq!(us, HashSet::from([a.clone(), b.clone()]));
        let eu = t.flagged_set("eu-west-1", now).await.expect("flagged_set");
        assert_eq!(eu, HashSet::from([c.clone()]));
        assert!(t
            .flagged_set("ap-south-1", now)
            .await
            .expect("flagged_set")
            .is_empty());
        let all: Vec<PoolId> = t
            .flagged(now)
            .await
            .expect("flagged")
            .into_iter()
            .map(|f| f.pool)
            .collect();
        let mut expected = vec![a, b, c, d];
        expected.sort();
        assert_eq!(all, expected, "flagged() lists every pool, ordered by id");
    }

    /// Concurrent events from many tasks are all counted, each increment observed once.
    async fn suite_concurrent(t: Arc<dyn RiskTracker>, clock: &Clock) {
        const N: u64 = 50;
        let p = pool("us-west-2", "us-west-2c", "r6g.large");
        let at = clock.now();
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                let t = Arc::clone(&t);
                let p = p.clone();
                tokio::spawn(async move { t.flag(&p, RiskSignal::Interruption, at).await })
            })
            .collect();
        let mut seen = Vec::new();
        for task in futures_util::future::join_all(tasks).await {
            seen.push(task.expect("task").expect("flag").count);
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (1..=N).collect::<Vec<_>>(),
            "each increment exactly once"
        );
        let f = t.get(&p, at).await.expect("get").expect("flagged");
        assert_eq!(f.count, N);
    }

    /// Malformed ids are rejected before touching the store.
    async fn suite_validation(t: &dyn RiskTracker, clock: &Clock) {
        let now = clock.now();
        let bad = [
            PoolId {
                region: "us-east-1".into(),
                az: "us-east-1a:evil".into(),
                instance_type: "c5.xlarge".into(),
            },
            PoolId {
                region: "".into(),
                az: "us-east-1a".into(),
                instance_type: "c5.xlarge".into(),
            },
            PoolId {
                region: "us-east-1".into(),
                az: "us-east-1a".into(),
                instance_type: "C5.XLARGE".into(),
            },
        ];
        for p in &bad {
            assert!(matches!(
                t.flag(p, RiskSignal::Interruption, now).await,
                Err(HiveError::InvalidPool { .. })
            ));
            assert!(matches!(
                t.get(p, now).await,
                Err(HiveError::InvalidPool { .. })
            ));
        }
        assert!(matches!(
            t.flagged_set("us-east-1:x", now).await,
            Err(HiveError::InvalidPool { .. })
        ));
        assert!(t.flagged(now).await.expect("flagged").is_empty());
    }

    // ---- memory ---------------------------------------------------------------------------

    fn memory() -> MemoryTracker {
        MemoryTracker::new()
    }

    fn hive_ttl() -> TimeDelta {
        TimeDelta::from_std(HIVE_TTL).expect("ttl")
    }

    #[tokio::test]
    async fn hive_memory_window() {
        suite_window(&memory(), &Clock::manual(), hive_ttl()).await;
    }

    #[tokio::test]
    async fn hive_memory_custom_ttl_window() {
        let t = MemoryTracker::with_ttl(Duration::from_millis(1500)).expect("ttl");
        suite_window(&t, &Clock::manual(), TimeDelta::milliseconds(1500)).await;
    }

    #[tokio::test]
    async fn hive_memory_region_filter() {
        suite_region_filter(&memory(), &Clock::manual()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hive_memory_concurrent() {
        suite_concurrent(Arc::new(memory()), &Clock::manual()).await;
    }

    #[tokio::test]
    async fn hive_memory_validation() {
        suite_validation(&memory(), &Clock::manual()).await;
    }

    #[tokio::test]
    async fn hive_memory_boundary_and_lazy_purge() {
        let t = memory();
        let p = pool("us-east-1", "us-east-1a", "c5.xlarge");
        let q = pool("us-east-1", "us-east-1b", "c5.xlarge");
        let t0 = Clock::manual().now();
        t.flag(&p, RiskSignal::Interruption, t0)
            .await
            .expect("flag");
        t.flag(&q, RiskSignal::Interruption, t0 + TimeDelta::minutes(10))
            .await
            .expect("flag");
        let exp = t0 + hive_ttl();
        let just_before = exp - TimeDelta::milliseconds(1);
        assert!(t.get(&p, just_before).await.expect("get").is_some());
        assert_eq!(t.lock().len(), 2);
        // Reading at the expiry purges p's entry even though we asked about q.
        assert!(t.get(&q, exp).await.expect("get").is_some());
        assert_eq!(t.lock().len(), 1, "expired entry purged lazily");
        assert!(t.get(&p, exp).await.expect("get").is_none());
    }

    #[test]
    fn hive_config_is_validated() {
        assert_eq!(TimeDelta::from_std(HIVE_TTL).ok(), Some(HIVE_TTL_DELTA));
        assert!(matches!(
            MemoryTracker::with_ttl(Duration::ZERO),
            Err(HiveError::InvalidConfig(_))
        ));
        assert!(matches!(
            MemoryTracker::with_ttl(Duration::from_micros(500)),
            Err(HiveError::InvalidConfig(_))
        ));
        assert!(PoolId::new("us-west-2", "us-west-2-lax-1a", "m7i-flex.large").is_ok());
        assert!(PoolId::new("us-east-1", "us-east-1a", "x".repeat(65)).is_err());
        assert_eq!(
            pool("us-east-1", "us-east-1a", "c5.xlarge").to_string(),
            "us-east-1/us-east-1a/c5.xlarge"
        );
        assert_eq!(
            serde_json::to_string(&RiskSignal::Rebalance).expect("json"),
            "\"rebalance\""
        );
    }

    // ---- redis ----------------------------------------------------------------------------

    const DEFAULT_TEST_REDIS: &str = "redis://127.0.0.1:6379";

    fn redis_url() -> String {
        std::env::var("SPOT_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_TEST_REDIS.into())
    }

    /// A tracker on a fresh, unique key prefix. Panics (never skips) when Redis is down: a
    /// silently skipped test would hide that the production implementation is untested.
    async fn redis_tracker_with(prefix: &str, ttl: Duration) -> RedisTracker {
        let url = redis_url();
        let t = match tokio::time::timeout(
            Duration::from_secs(20),
            RedisTracker::connect(&url, prefix, ttl),
        )
        .await
        {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => panic!(
                "Redis at {url} is unreachable ({e}); the hive tests need a live Redis \
                 (start one at 127.0.0.1:6379 or set SPOT_TEST_REDIS_URL)"
            ),
            Err(_) => panic!("timed out connecting to Redis at {url}; the hive tests need it"),
        };
        let mut c = t.conn.clone();
        let pong: String = redis::cmd("PING")
            .query_async(&mut c)
            .await
            .unwrap_or_else(|e| panic!("Redis at {url} does not answer PING: {e}"));
        assert_eq!(pong, "PONG");
        t
    }

    fn unique_prefix() -> String {
        format!("spot-test-{}", uuid::Uuid::new_v4())
    }

    async fn redis_tracker(ttl: Duration) -> RedisTracker {
        redis_tracker_with(&unique_prefix(), ttl).await
    }

    /// Deletes everything under the tracker's prefix (keys also expire on their own if a test
    /// fails before reaching this).
    async fn cleanup(t: &RedisTracker) {
        let mut c = t.conn.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:hive:*", t.prefix))
            .query_async(&mut c)
            .await
            .expect("KEYS");
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut c)
                .await
                .expect("DEL");
        }
    }

    #[tokio::test]
    async fn hive_redis_window() {
        // Redis expires in real time: a short TTL and a real sleep past it.
        let ttl = Duration::from_millis(1500);
        let t = redis_tracker(ttl).await;
        suite_window(&t, &Clock::Real, TimeDelta::from_std(ttl).expect("ttl")).await;
        cleanup(&t).await;
    }

    #[tokio::test]
    async fn hive_redis_region_filter() {
        let t = redis_tracker(HIVE_TTL).await;
        suite_region_filter(&t, &Clock::Real).await;
        cleanup(&t).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hive_redis_concurrent() {
        let t = redis_tracker(HIVE_TTL).await;
        suite_concurrent(Arc::new(t.clone()), &Clock::Real).await;
        cleanup(&t).await;
    }

    #[tokio::test]
    async fn hive_redis_validation() {
        let t = redis_tracker(HIVE_TTL).await;
        suite_validation(&t, &Clock::Real).await;
        cleanup(&t).await;
    }

    /// Two replicas (separate connections, same prefix) see one shared state, and the stored
    /// layout is what the module docs promise (other services may read it).
    #[tokio::test]
    async fn hive_redis_shared_between_replicas_and_layout() {
        let prefix = unique_prefix();
        let a = redis_tracker_with(&prefix, HIVE_TTL).await;
        let b = redis_tracker_with(&prefix, HIVE_TTL).await;
        let p = pool("us-east-1", "us-east-1a", "c5.xlarge");
        let now = Clock::Real.now();
        a.flag(&p, RiskSignal::Interruption, now)
            .await
            .expect("flag");
        let f = b.flag(&p, RiskSignal::Rebalance, now).await.expect("flag");
        assert_eq!(f.count, 2, "replica B continues replica A's count");
        assert_eq!(a.get(&p, now).await.expect("get"), Some(f.clone()));

        let key = format!("{prefix}:hive:us-east-1:us-east-1a:c5.xlarge");
        let mut c = a.conn.clone();
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut c)
            .await
            .expect("PTTL");
        let ttl_ms = i64::try_from(HIVE_TTL.as_millis()).expect("ttl fits");
        assert!(
            pttl > 0 && pttl <= ttl_ms,
            "PTTL {pttl} within (0, {ttl_ms}]"
        );
        let count: String = redis::cmd("HGET")
            .arg(&key)
            .arg("count")
            .query_async(&mut c)
            .await
            .expect("HGET");
        assert_eq!(count, "2");
        let score: Option<String> = redis::cmd("ZSCORE")
            .arg(format!("{prefix}:hive:index"))
            .arg(&key)
            .query_async(&mut c)
            .await
            .expect("ZSCORE");
        assert_eq!(score, Some(f.expires_at.timestamp_millis().to_string()));
        let index_pttl: i64 = redis::cmd("PTTL")
            .arg(format!("{prefix}:hive:index"))
            .query_async(&mut c)
            .await
            .expect("PTTL");
        assert!(index_pttl > 0, "index expires with its last member");
        cleanup(&a).await;
    }

    /// A caller asking about a future instant must not drop live pools from the index.
    #[tokio::test]
    async fn hive_redis_future_query_keeps_index() {
        let t = redis_tracker(HIVE_TTL).await;
        let p = pool("eu-central-1", "eu-central-1b", "c6i.2xlarge");
        let now = Clock::Real.now();
        t.flag(&p, RiskSignal::Interruption, now)
            .await
            .expect("flag");
        let later = now + hive_ttl() + TimeDelta::minutes(1);
        assert!(t.flagged(later).await.expect("flagged").is_empty());
        assert_eq!(t.flagged(now).await.expect("flagged").len(), 1);
        cleanup(&t).await;
    }
}
