//! The append-only, hash-chained audit log.
//!
//! Each organization has its own chain (platform-level events without an organization use the
//! `platform` chain). `hash = SHA-256(prev_hash || "\n" || canonical_record)` where the
//! canonical record is the JSON object of every stored column except `hash` and `mac`, with
//! keys in lexicographic order (serde_json's default map is ordered). Altering, inserting or
//! deleting a row in the middle breaks the chain at that row, which `verify` reports.
//!
//! What the rows alone cannot show is kept elsewhere:
//! - the chain head (`audit_chain_heads`, updated in the append's transaction) holds the last
//!   seq and hash, so a truncated tail or an emptied chain is detected;
//! - the purge watermark in the same row (last purged seq and hash, moved only by the
//!   retention purge, which records itself in the chain in the same transaction), so a deleted
//!   prefix is detected;
//! - an HMAC-SHA256 over each record's hash (`mac`) and over the head (`head_mac`) under a key
//!   derived from the server's secret key, which the database does not hold: a chain rewritten
//!   and re-hashed by someone with database access, or a head moved back to match a truncated
//!   chain, no longer verifies. (Replaying an older head together with its MAC and deleting
//!   the rows after it is the one rollback this cannot see; that needs an external anchor.)
//!
//! The database refuses UPDATE and DELETE on `audit_logs` (triggers, migration 0012) except
//! the retention purge's DELETE, which it enables inside its own transaction only.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::is_transient;
use crate::error::{DbError, Result};
use crate::{new_id, now_ms, Backend, Db};

/// The `prev_hash` of the first record of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Chain key for events that belong to no organization.
pub const PLATFORM_CHAIN: &str = "platform";

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: String,
    pub chain_key: String,
    pub seq: i64,
    pub organization_id: Option<String>,
    pub ts: i64,
    pub actor_kind: String,
    pub actor_user_id: Option<String>,
    pub actor_email: Option<String>,
    pub actor_component: Option<String>,
    pub actor_admin_id: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub status_code: Option<i64>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: String,
    /// JSON text `{"before": ..., "after": ...}`, hashed verbatim.
    pub diff: String,
    pub prev_hash: String,
    pub hash: String,
    /// HMAC of `hash` under the server's audit key (None on records written before it existed).
    pub mac: Option<String>,
}

/// What a caller supplies; the log fills id, chain position, timestamp and hashes.
#[derive(Debug, Clone, Default)]
pub struct NewAuditRecord {
    pub organization_id: Option<String>,
    pub actor_kind: String,
    pub actor_user_id: Option<String>,
    pub actor_email: Option<String>,
    pub actor_component: Option<String>,
    pub actor_admin_id: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub status_code: Option<i64>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

const COLS: &str = "id, chain_key, seq, organization_id, ts, actor_kind, actor_user_id, actor_email, actor_component, actor_admin_id, action, resource_type, resource_id, outcome, status_code, source_ip, user_agent, request_id, diff, prev_hash, hash, mac";

/// The canonical text hashed for a record (every column but `hash`).
pub fn canonical(r: &AuditRecord) -> String {
    let v = serde_json::json!({
        "id": r.id,
        "chain_key": r.chain_key,
        "seq": r.seq,
        "organization_id": r.organization_id,
        "ts": r.ts,
        "actor_kind": r.actor_kind,
        "actor_user_id": r.actor_user_id,
        "actor_email": r.actor_email,
        "actor_component": r.actor_component,
        "actor_admin_id": r.actor_admin_id,
        "action": r.action,
        "resource_type": r.resource_type,
        "resource_id": r.resource_id,
        "outcome": r.outcome,
        "status_code": r.status_code,
        "source_ip": r.source_ip,
        "user_agent": r.user_agent,
        "request_id": r.request_id,
        "diff": r.diff,
        "prev_hash": r.prev_hash,
    });
    v.to_string()
}

pub fn compute_hash(r: &AuditRecord) -> String {
    let mut h = Sha256::new();
    h.update(r.prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical(r).as_bytes());
    hex::encode(h.finalize())
}

/// HMAC-SHA256 (RFC 2104) over SHA-256.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The keys that authenticate audit records and chain heads: derived from the server's
/// secret key (and its previous keys, so records MAC'd before a rotation still verify).
#[derive(Clone)]
pub struct MacKeys {
    current: [u8; 32],
    previous: Vec<[u8; 32]>,
}

impl std::fmt::Debug for MacKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKeys(..)")
    }
}

const KEY_LABEL: &[u8] = b"spot-optimizer audit-chain mac v1";

impl MacKeys {
    pub fn derive(secret_key: &[u8], previous_secret_keys: &[Vec<u8>]) -> MacKeys {
        MacKeys {
            current: hmac_sha256(secret_key, KEY_LABEL),
            previous: previous_secret_keys
                .iter()
                .map(|k| hmac_sha256(k, KEY_LABEL))
                .collect(),
        }
    }

    fn sign(&self, msg: &str) -> String {
        hex::encode(hmac_sha256(&self.current, msg.as_bytes()))
    }

    fn check(&self, msg: &str, mac_hex: &str) -> bool {
        let Ok(mac) = hex::decode(mac_hex) else {
            return false;
        };
        std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|k| constant_time_eq(&hmac_sha256(k, msg.as_bytes()), &mac))
    }
}

fn row_message(chain_key: &str, seq: i64, hash: &str) -> String {
    format!("audit-row\n{chain_key}\n{seq}\n{hash}")
}

/// The head row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
    /// The last record removed by the retention purge (0 and the genesis hash when none).
    pub purged_seq: i64,
    pub purged_hash: String,
    /// The first seq that must carry a MAC (None while no keyed append happened).
    pub mac_from: Option<i64>,
    pub head_mac: Option<String>,
}

impl ChainHead {
    fn message(&self, chain_key: &str) -> String {
        format!(
            "audit-head\n{chain_key}\n{}\n{}\n{}\n{}\n{}",
            self.seq,
            self.hash,
            self.purged_seq,
            self.purged_hash,
            self.mac_from.map(|m| m.to_string()).unwrap_or_default()
        )
    }
}

const HEAD_COLS: &str = "seq, hash, purged_seq, purged_hash, mac_from, head_mac";

async fn lock_head(
    db: &Db,
    conn: &mut sqlx::AnyConnection,
    chain_key: &str,
) -> Result<Option<ChainHead>> {
    Ok(sqlx::query_as::<_, ChainHead>(sqlx::AssertSqlSafe(format!(
        "SELECT {HEAD_COLS} FROM audit_chain_heads WHERE chain_key = $1{}",
        db.for_update()
    )))
    .bind(chain_key)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Stores a head's new position, watermark and MAC (when the keys are installed).
async fn store_head(
    db: &Db,
    conn: &mut sqlx::AnyConnection,
    chain_key: &str,
    head: &mut ChainHead,
) -> Result<()> {
    let keys = db.audit_keys();
    if keys.is_some() && head.mac_from.is_none() {
        head.mac_from = Some(head.seq + 1);
    }
    head.head_mac = keys.map(|k| k.sign(&head.message(chain_key)));
    sqlx::query(
        "UPDATE audit_chain_heads SET seq = $1, hash = $2, purged_seq = $3, purged_hash = $4, mac_from = $5, head_mac = $6 WHERE chain_key = $7",
    )
    .bind(head.seq)
    .bind(&head.hash)
    .bind(head.purged_seq)
    .bind(&head.purged_hash)
    .bind(head.mac_from)
    .bind(head.head_mac.clone())
    .bind(chain_key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Attempts of a transient failure (SQLite busy, PostgreSQL serialization) before `append`
/// gives up.
const APPEND_ATTEMPTS: u32 = 6;

/// Appends one record to its organization's chain in its own write transaction, retrying
/// transient failures (SQLite busy, lock timeouts) with backoff. An error here means the
/// record was not written: callers must not report the audited action as done.
pub async fn append(db: &Db, n: NewAuditRecord) -> Result<AuditRecord> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r: Result<AuditRecord> = async {
            let mut tx = db.begin_write().await?;
            let rec = append_in(db, &mut tx, n.clone()).await?;
            tx.commit().await?;
            Ok(rec)
        }
        .await;
        match r {
            Err(e) if attempt < APPEND_ATTEMPTS && is_transient(&e) => {
                tracing::warn!(component = "CORE-AUDIT", attempt, error = %e, "audit append retried");
                tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
            }
            other => return other,
        }
    }
}

/// Appends one record inside the caller's transaction, so the record commits (or rolls
/// back) with the mutation it describes. The chain head row is written first so that SQLite
/// takes its write lock up front and PostgreSQL holds a row lock: concurrent appends
/// serialize instead of forking the chain. On SQLite the transaction should be begun with
/// [`Db::begin_write`].
pub async fn append_in(
    db: &Db,
    conn: &mut sqlx::AnyConnection,
    n: NewAuditRecord,
) -> Result<AuditRecord> {
    let chain_key = n
        .organization_id
        .clone()
        .unwrap_or_else(|| PLATFORM_CHAIN.to_string());
    let diff = serde_json::json!({ "before": n.before, "after": n.after }).to_string();
    sqlx::query("INSERT INTO audit_chain_heads (chain_key, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (chain_key) DO NOTHING")
        .bind(&chain_key)
        .bind(GENESIS_HASH)
        .execute(&mut *conn)
        .await?;
    let mut head = lock_head(db, conn, &chain_key)
        .await?
        .ok_or_else(|| DbError::Corrupt(format!("audit chain head {chain_key} vanished")))?;
    let mut r = AuditRecord {
        id: new_id(),
        chain_key: chain_key.clone(),
        seq: head.seq + 1,
        organization_id: n.organization_id,
        ts: now_ms(),
        actor_kind: n.actor_kind,
        actor_user_id: n.actor_user_id,
        actor_email: n.actor_email,
        actor_component: n.actor_component,
        actor_admin_id: n.actor_admin_id,
        action: n.action,
        resource_type: n.resource_type,
        resource_id: n.resource_id,
        outcome: n.outcome,
        status_code: n.status_code,
        source_ip: n.source_ip,
        user_agent: n.user_agent,
        request_id: n.request_id,
        diff,
        prev_hash: head.hash.clone(),
        hash: String::new(),
        mac: None,
    };
    r.hash = compute_hash(&r);
    r.mac = db
        .audit_keys()
        .map(|k| k.sign(&row_message(&chain_key, r.seq, &r.hash)));
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_logs ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
    )))
    .bind(&r.id)
    .bind(&r.chain_key)
    .bind(r.seq)
    .bind(r.organization_id.clone())
    .bind(r.ts)
    .bind(&r.actor_kind)
    .bind(r.actor_user_id.clone())
    .bind(r.actor_email.clone())
    .bind(r.actor_component.clone())
    .bind(r.actor_admin_id.clone())
    .bind(&r.action)
    .bind(&r.resource_type)
    .bind(r.resource_id.clone())
    .bind(&r.outcome)
    .bind(r.status_code)
    .bind(r.source_ip.clone())
    .bind(r.user_agent.clone())
    .bind(&r.request_id)
    .bind(&r.diff)
    .bind(&r.prev_hash)
    .bind(&r.hash)
    .bind(r.mac.clone())
    .execute(&mut *conn)
    .await?;
    if head.mac_from.is_none() && r.mac.is_some() {
        head.mac_from = Some(r.seq);
    }
    head.seq = r.seq;
    head.hash = r.hash.clone();
    store_head(db, conn, &chain_key, &mut head).await?;
    Ok(r)
}

/// Filters for listing and exporting. All optional; times are epoch milliseconds.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Matches the actor's user id, e-mail or component name.
    pub actor: Option<String>,
    /// Prefix match on the action (e.g. `invite.` matches `invite.create`).
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub outcome: Option<String>,
}

fn filter_sql(f: &AuditFilter, first_param: usize) -> (String, Vec<FilterArg>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    let mut i = first_param;
    if let Some(v) = f.from_ms {
        sql.push_str(&format!(" AND ts >= ${i}"));
        args.push(FilterArg::Int(v));
        i += 1;
    }
    if let Some(v) = f.to_ms {
        sql.push_str(&format!(" AND ts <= ${i}"));
        args.push(FilterArg::Int(v));
        i += 1;
    }
    if let Some(v) = &f.actor {
        sql.push_str(&format!(
            " AND (actor_user_id = ${i} OR actor_email = ${i} OR actor_component = ${i})"
        ));
        args.push(FilterArg::Text(v.clone()));
        i += 1;
    }
    if let Some(v) = &f.action {
        sql.push_str(&format!(" AND action LIKE ${i} ESCAPE '\\'"));
        let escaped = v
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        args.push(FilterArg::Text(format!("{escaped}%")));
        i += 1;
    }
    if let Some(v) = &f.resource_type {
        sql.push_str(&format!(" AND resource_type = ${i}"));
        args.push(FilterArg::Text(v.clone()));
        i += 1;
    }
    if let Some(v) = &f.outcome {
        sql.push_str(&format!(" AND outcome = ${i}"));
        args.push(FilterArg::Text(v.clone()));
    }
    (sql, args)
}

enum FilterArg {
    Int(i64),
    Text(String),
}

fn bind_args<'q>(
    mut q: sqlx::query::QueryAs<'q, sqlx::Any, AuditRecord, sqlx::any::AnyArguments>,
    args: Vec<FilterArg>,
) -> sqlx::query::QueryAs<'q, sqlx::Any, AuditRecord, sqlx::any::AnyArguments> {
    for a in args {
        q = match a {
            FilterArg::Int(v) => q.bind(v),
            FilterArg::Text(v) => q.bind(v),
        };
    }
    q
}

/// One page, newest first. `cursor` is the `seq` of the last record of the previous page.
/// Returns the page and the next cursor when more rows exist.
pub async fn list(
    db: &Db,
    org_id: &str,
    f: &AuditFilter,
    cursor: Option<i64>,
    limit: i64,
) -> Result<(Vec<AuditRecord>, Option<i64>)> {
    let (mut extra, args) = filter_sql(f, 3);
    let cursor_param = 3 + args.len();
    if cursor.is_some() {
        extra.push_str(&format!(" AND seq < ${cursor_param}"));
    }
    let sql = format!(
        "SELECT {COLS} FROM audit_logs WHERE chain_key = $1 AND organization_id = $1{extra} ORDER BY seq DESC LIMIT $2"
    );
    let mut q = sqlx::query_as::<_, AuditRecord>(sqlx::AssertSqlSafe(sql))
        .bind(org_id)
        .bind(limit + 1);
    q = bind_args(q, args);
    if let Some(c) = cursor {
        q = q.bind(c);
    }
    let mut rows = q.fetch_all(&db.pool).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.seq)
    } else {
        None
    };
    Ok((rows, next))
}

pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<AuditRecord>> {
    Ok(
        sqlx::query_as::<_, AuditRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM audit_logs WHERE organization_id = $1 AND id = $2"
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?,
    )
}

/// Every record matching the filter, oldest first, capped at `max_rows`.
pub async fn export(
    db: &Db,
    org_id: &str,
    f: &AuditFilter,
    max_rows: i64,
) -> Result<Vec<AuditRecord>> {
    let (extra, args) = filter_sql(f, 3);
    let sql = format!(
        "SELECT {COLS} FROM audit_logs WHERE chain_key = $1 AND organization_id = $1{extra} ORDER BY seq ASC LIMIT $2"
    );
    let q = sqlx::query_as::<_, AuditRecord>(sqlx::AssertSqlSafe(sql))
        .bind(org_id)
        .bind(max_rows);
    Ok(bind_args(q, args).fetch_all(&db.pool).await?)
}

/// Result of recomputing a chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub checked: i64,
    pub first_broken: Option<BrokenLink>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrokenLink {
    pub id: String,
    pub seq: i64,
    pub ts: i64,
    pub reason: String,
}

fn broken(r: &AuditRecord, reason: impl Into<String>) -> BrokenLink {
    BrokenLink {
        id: r.id.clone(),
        seq: r.seq,
        ts: r.ts,
        reason: reason.into(),
    }
}

fn missing(seq: i64, reason: impl Into<String>) -> BrokenLink {
    BrokenLink {
        id: String::new(),
        seq,
        ts: 0,
        reason: reason.into(),
    }
}

fn failed(checked: i64, b: BrokenLink) -> VerifyReport {
    VerifyReport {
        ok: false,
        checked,
        first_broken: Some(b),
    }
}

/// Recomputes the chain and reports the first broken link. The records must run without a
/// gap from just after the purge watermark to the chain head; the first must link to the
/// watermark's hash, every later one to its predecessor, each must hash to its stored value,
/// and with the audit keys installed every record from `mac_from` on and the head itself must
/// carry a valid MAC. A deleted prefix, a truncated tail, an emptied chain and a rewritten
/// (even re-hashed) chain are all reported, naming the first missing or altered seq.
pub async fn verify(db: &Db, chain_key: &str) -> Result<VerifyReport> {
    let keys = db.audit_keys();
    let head: Option<ChainHead> = sqlx::query_as::<_, ChainHead>(sqlx::AssertSqlSafe(format!(
        "SELECT {HEAD_COLS} FROM audit_chain_heads WHERE chain_key = $1"
    )))
    .bind(chain_key)
    .fetch_optional(&db.pool)
    .await?;
    let Some(head) = head else {
        // No head: the chain never started, or its head was removed.
        let first = sqlx::query_as::<_, AuditRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM audit_logs WHERE chain_key = $1 ORDER BY seq ASC LIMIT 1"
        )))
        .bind(chain_key)
        .fetch_optional(&db.pool)
        .await?;
        return Ok(match first {
            None => VerifyReport {
                ok: true,
                checked: 0,
                first_broken: None,
            },
            Some(r) => failed(0, broken(&r, "the chain head is missing")),
        });
    };
    // With the keys, an authenticated head is required once the chain has had a keyed append.
    let head_mac_ok = match (&keys, &head.head_mac) {
        (Some(k), Some(mac)) => k.check(&head.message(chain_key), mac),
        (Some(_), None) => head.mac_from.is_none(),
        (None, _) => true,
    };
    let batch = 1000i64;
    let mut after = i64::MIN;
    let mut expected = head.purged_seq + 1;
    let mut prev_hash = head.purged_hash.clone();
    let mut checked = 0i64;
    loop {
        let rows = sqlx::query_as::<_, AuditRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM audit_logs WHERE chain_key = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3"
        )))
        .bind(chain_key)
        .bind(after)
        .bind(batch)
        .fetch_all(&db.pool)
        .await?;
        let n = rows.len() as i64;
        for r in rows {
            if r.seq < expected {
                return Ok(failed(
                    checked,
                    broken(&r, "a record exists at or below the purge watermark"),
                ));
            }
            if r.seq > expected {
                let reason = if checked == 0 {
                    format!(
                        "records {expected}..{} were deleted: the chain starts after the purge watermark (seq {})",
                        r.seq - 1,
                        head.purged_seq
                    )
                } else {
                    format!("records {expected}..{} are missing", r.seq - 1)
                };
                return Ok(failed(checked, missing(expected, reason)));
            }
            if r.prev_hash != prev_hash {
                let reason = if checked == 0 {
                    "prev_hash does not match the purge watermark"
                } else {
                    "prev_hash does not match the previous record"
                };
                return Ok(failed(checked, broken(&r, reason)));
            }
            if compute_hash(&r) != r.hash {
                return Ok(failed(
                    checked,
                    broken(&r, "record content does not match its hash"),
                ));
            }
            if let Some(k) = &keys {
                let required = head.mac_from.is_some_and(|m| r.seq >= m);
                match &r.mac {
                    Some(mac) if !k.check(&row_message(chain_key, r.seq, &r.hash), mac) => {
                        return Ok(failed(
                            checked,
                            broken(&r, "record MAC is invalid: the record was rewritten"),
                        ));
                    }
                    None if required => {
                        return Ok(failed(
                            checked,
                            broken(&r, "record MAC is missing: the record was rewritten"),
                        ));
                    }
                    _ => {}
                }
            }
            checked += 1;
            after = r.seq;
            expected = r.seq + 1;
            prev_hash = r.hash;
        }
        if n < batch {
            break;
        }
    }
    let last = expected - 1;
    if last < head.seq {
        let reason = if checked == 0 {
            format!(
                "the chain was emptied: records {expected}..{} are missing",
                head.seq
            )
        } else {
            format!(
                "the chain was truncated: records {expected}..{} after the last remaining one are missing",
                head.seq
            )
        };
        return Ok(failed(checked, missing(expected, reason)));
    }
    if last > head.seq {
        return Ok(failed(
            checked,
            missing(head.seq + 1, "records exist beyond the chain head"),
        ));
    }
    if prev_hash != head.hash {
        return Ok(failed(
            checked,
            missing(head.seq, "the chain head does not match the last record"),
        ));
    }
    if !head_mac_ok {
        return Ok(failed(
            checked,
            missing(
                head.seq,
                "the chain head's MAC is invalid: its position or purge watermark was altered",
            ),
        ));
    }
    Ok(VerifyReport {
        ok: true,
        checked,
        first_broken: None,
    })
}

/// What a retention purge removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeSummary {
    pub chain_key: String,
    pub purged: i64,
    /// The new watermark: the last purged seq and its hash.
    pub through_seq: i64,
    pub through_hash: String,
    pub cutoff_ms: i64,
}

/// Retention: deletes the oldest records of a chain, up to (not including) the first record
/// at or after `before_ms`, so the remaining chain stays contiguous. In one write transaction
/// it enables the delete for itself only (PostgreSQL `spot.audit_purge`, transaction-local;
/// SQLite `audit_control.purging`, set and reset inside the transaction), moves the purge
/// watermark, and appends the record `record` builds from the summary, so a purge is never
/// unaudited. Returns None when nothing was old enough. Only the retention purge calls this;
/// no API can.
pub async fn purge_before(
    db: &Db,
    chain_key: &str,
    before_ms: i64,
    record: impl FnOnce(&PurgeSummary) -> NewAuditRecord,
) -> Result<Option<(PurgeSummary, AuditRecord)>> {
    let mut tx = db.begin_write().await?;
    let Some(mut head) = lock_head(db, &mut tx, chain_key).await? else {
        return Ok(None);
    };
    let (first_kept,): (Option<i64>,) = sqlx::query_as(
        "SELECT MIN(seq) FROM audit_logs WHERE chain_key = $1 AND ts >= $2 AND seq > $3",
    )
    .bind(chain_key)
    .bind(before_ms)
    .bind(head.purged_seq)
    .fetch_one(&mut *tx)
    .await?;
    let through = first_kept.map_or(head.seq, |s| s - 1).min(head.seq);
    if through <= head.purged_seq {
        return Ok(None);
    }
    let through_hash: Option<(String,)> =
        sqlx::query_as("SELECT hash FROM audit_logs WHERE chain_key = $1 AND seq = $2")
            .bind(chain_key)
            .bind(through)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((through_hash,)) = through_hash else {
        return Err(DbError::Corrupt(format!(
            "audit chain {chain_key}: record {through} is missing, refusing to purge"
        )));
    };
    set_purging(db, &mut tx, true).await?;
    let deleted = sqlx::query("DELETE FROM audit_logs WHERE chain_key = $1 AND seq <= $2")
        .bind(chain_key)
        .bind(through)
        .execute(&mut *tx)
        .await?;
    head.purged_seq = through;
    head.purged_hash = through_hash.clone();
    store_head(db, &mut tx, chain_key, &mut head).await?;
    set_purging(db, &mut tx, false).await?;
    let summary = PurgeSummary {
        chain_key: chain_key.to_string(),
        purged: i64::try_from(deleted.rows_affected())
            .map_err(|_| DbError::Corrupt("row count overflow".into()))?,
        through_seq: through,
        through_hash,
        cutoff_ms: before_ms,
    };
    let rec = append_in(db, &mut tx, record(&summary)).await?;
    tx.commit().await?;
    Ok(Some((summary, rec)))
}

async fn set_purging(db: &Db, conn: &mut sqlx::AnyConnection, on: bool) -> Result<()> {
    match db.backend {
        Backend::Postgres => {
            sqlx::query("SELECT set_config('spot.audit_purge', $1, true)")
                .bind(if on { "on" } else { "off" })
                .execute(&mut *conn)
                .await?;
        }
        Backend::Sqlite => {
            sqlx::query("UPDATE audit_control SET purging = $1 WHERE id = 1")
                .bind(i64::from(on))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Organizations with a finite retention, for the periodic purge.
pub async fn retention_targets(db: &Db) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT id, audit_retention_days FROM organizations WHERE audit_retention_days IS NOT NULL",
    )
    .fetch_all(&db.pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn rotated_keys_still_check_old_macs() {
        let old = MacKeys::derive(&[1; 32], &[]);
        let mac = old.sign("m");
        let rotated = MacKeys::derive(&[2; 32], &[vec![1; 32]]);
        assert!(rotated.check("m", &mac));
        assert!(!rotated.check("n", &mac));
        assert!(!MacKeys::derive(&[2; 32], &[]).check("m", &mac));
        assert!(!rotated.check("m", "not hex"));
    }

    async fn db() -> Db {
        let dir = std::env::temp_dir().join(format!("spot-audit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = Db::connect(&format!("sqlite://{}/a.db", dir.display()))
            .await
            .expect("connect");
        db.migrate().await.expect("migrate");
        db
    }

    fn rec(org: &str, action: &str) -> NewAuditRecord {
        NewAuditRecord {
            organization_id: Some(org.into()),
            actor_kind: "system".into(),
            action: action.into(),
            resource_type: "test".into(),
            outcome: "success".into(),
            request_id: "r".into(),
            ..Default::default()
        }
    }

    /// Removes rows the way an intruder with database access would (through the purge switch,
    /// without moving the watermark).
    async fn delete_rows(db: &Db, chain: &str, cond: &str) {
        let mut tx = db.begin_write().await.expect("tx");
        set_purging(db, &mut tx, true).await.expect("switch");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM audit_logs WHERE chain_key = $1{cond}"
        )))
        .bind(chain)
        .execute(&mut *tx)
        .await
        .expect("delete");
        set_purging(db, &mut tx, false).await.expect("switch");
        tx.commit().await.expect("commit");
    }

    async fn chain(db: &Db, org: &str, n: usize) {
        for i in 0..n {
            append(db, rec(org, &format!("a{i}")))
                .await
                .expect("append");
        }
    }

    #[tokio::test]
    async fn verify_names_the_first_missing_record() {
        let db = db().await;
        db.set_audit_keys(MacKeys::derive(&[9; 32], &[]));
        chain(&db, "o1", 5).await;
        assert!(verify(&db, "o1").await.expect("verify").ok);
        assert!(verify(&db, "never-used").await.expect("verify").ok);

        // Prefix.
        delete_rows(&db, "o1", " AND seq <= 2").await;
        let v = verify(&db, "o1").await.expect("verify");
        assert!(!v.ok);
        let b = v.first_broken.expect("broken");
        assert_eq!(b.seq, 1, "{}", b.reason);
        assert!(b.reason.contains("deleted"), "{}", b.reason);

        // Tail.
        chain(&db, "o2", 5).await;
        delete_rows(&db, "o2", " AND seq >= 4").await;
        let b = verify(&db, "o2")
            .await
            .expect("verify")
            .first_broken
            .expect("broken");
        assert_eq!(b.seq, 4);
        assert!(b.reason.contains("truncated"), "{}", b.reason);

        // Everything.
        chain(&db, "o3", 3).await;
        delete_rows(&db, "o3", "").await;
        let v = verify(&db, "o3").await.expect("verify");
        assert!(!v.ok);
        let b = v.first_broken.expect("broken");
        assert_eq!(b.seq, 1);
        assert!(b.reason.contains("emptied"), "{}", b.reason);
    }

    #[tokio::test]
    async fn a_rehashed_rewrite_or_a_moved_head_fails_the_mac() {
        let db = db().await;
        db.set_audit_keys(MacKeys::derive(&[9; 32], &[]));
        chain(&db, "o", 4).await;
        // Rewrite record 2 and re-chain everything after it, head included: every hash is
        // consistent, but the intruder has no MAC key.
        sqlx::query("DROP TRIGGER audit_logs_no_update")
            .execute(&db.pool)
            .await
            .expect("drop trigger");
        let mut rows: Vec<AuditRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM audit_logs WHERE chain_key = 'o' ORDER BY seq"
        )))
        .fetch_all(&db.pool)
        .await
        .expect("rows");
        rows[1].diff = r#"{"before":null,"after":"forged"}"#.into();
        for i in 1..rows.len() {
            if i > 1 {
                rows[i].prev_hash = rows[i - 1].hash.clone();
            }
            rows[i].hash = compute_hash(&rows[i]);
            sqlx::query("UPDATE audit_logs SET diff = $1, prev_hash = $2, hash = $3 WHERE id = $4")
                .bind(&rows[i].diff)
                .bind(&rows[i].prev_hash)
                .bind(&rows[i].hash)
                .bind(&rows[i].id)
                .execute(&db.pool)
                .await
                .expect("rewrite");
        }
        sqlx::query("UPDATE audit_chain_heads SET hash = $1 WHERE chain_key = 'o'")
            .bind(&rows[3].hash)
            .execute(&db.pool)
            .await
            .expect("head");
        let b = verify(&db, "o")
            .await
            .expect("verify")
            .first_broken
            .expect("broken");
        assert_eq!(b.seq, 2);
        assert!(b.reason.contains("MAC"), "{}", b.reason);
        // Without the key only the plain chain is checked, and the forgery passes: the MAC is
        // what catches it.
        let keyless = Db::connect(&db.url).await.expect("connect");
        assert!(verify(&keyless, "o").await.expect("verify").ok);

        // A tail removed and the head moved back to the last remaining record.
        chain(&db, "p", 4).await;
        delete_rows(&db, "p", " AND seq = 4").await;
        sqlx::query("DROP TRIGGER audit_chain_heads_forward_only")
            .execute(&db.pool)
            .await
            .expect("drop trigger");
        sqlx::query(
            "UPDATE audit_chain_heads SET seq = 3, hash = (SELECT hash FROM audit_logs WHERE chain_key = 'p' AND seq = 3) WHERE chain_key = 'p'",
        )
        .execute(&db.pool)
        .await
        .expect("move head");
        let b = verify(&db, "p")
            .await
            .expect("verify")
            .first_broken
            .expect("broken");
        assert!(b.reason.contains("head"), "{}", b.reason);
    }

    #[tokio::test]
    async fn the_database_refuses_updates_and_deletes_outside_the_purge() {
        let db = db().await;
        chain(&db, "o", 3).await;
        for sql in [
            "UPDATE audit_logs SET diff = '{}' WHERE chain_key = 'o'",
            "DELETE FROM audit_logs WHERE chain_key = 'o' AND seq = 1",
            "DELETE FROM audit_logs",
            "DELETE FROM audit_chain_heads",
            "UPDATE audit_chain_heads SET seq = 1",
            "UPDATE audit_chain_heads SET purged_seq = 2",
        ] {
            let e = sqlx::query(sql).execute(&db.pool).await;
            assert!(e.is_err(), "{sql} was allowed");
        }
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_logs")
            .fetch_one(&db.pool)
            .await
            .expect("count");
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn the_purge_moves_the_watermark_and_audits_itself() {
        let db = db().await;
        db.set_audit_keys(MacKeys::derive(&[9; 32], &[]));
        for i in 0..5 {
            append(&db, rec("o", &format!("a{i}")))
                .await
                .expect("append");
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT seq, ts FROM audit_logs WHERE chain_key = 'o' ORDER BY seq")
                .fetch_all(&db.pool)
                .await
                .expect("rows");
        // Everything strictly before record 3's timestamp goes.
        let cutoff = rows[2].1;
        let expect = rows.iter().filter(|r| r.1 < cutoff).count() as i64;
        let (s, r) = purge_before(&db, "o", cutoff, |s| {
            let mut n = rec("o", "audit.retention_purge");
            n.after = Some(serde_json::json!({"purged": s.purged, "through_seq": s.through_seq}));
            n
        })
        .await
        .expect("purge")
        .expect("something purged");
        assert_eq!(s.purged, expect);
        assert_eq!(s.through_seq, expect);
        assert_eq!(r.seq, 6);
        let v = verify(&db, "o").await.expect("verify");
        assert!(v.ok, "{:?}", v.first_broken);
        assert_eq!(v.checked, 5 - expect + 1);
        // Nothing older is left: a second pass is a no-op.
        assert!(purge_before(&db, "o", cutoff, |_| rec("o", "x"))
            .await
            .expect("purge")
            .is_none());
        // A legacy chain (written without keys) verifies, and the first keyed append seals it.
        let keyless = Db::connect(&db.url).await.expect("connect");
        chain(&keyless, "legacy", 2).await;
        assert!(verify(&db, "legacy").await.expect("verify").ok);
        chain(&db, "legacy", 1).await;
        assert!(verify(&db, "legacy").await.expect("verify").ok);
        // After that, a keyless (unauthenticated) append does not verify.
        chain(&keyless, "legacy", 1).await;
        assert!(!verify(&db, "legacy").await.expect("verify").ok);
    }
}
