//! The append-only, hash-chained audit log.
//!
//! Each organization has its own chain (platform-level events without an organization use the
//! `platform` chain). `hash = SHA-256(prev_hash || "\n" || canonical_record)` where the
//! canonical record is the JSON object of every stored column except `hash`, with keys in
//! lexicographic order (serde_json's default map is ordered). Altering, inserting or deleting
//! a row in the middle breaks the chain at that row, which `verify` reports.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DbError, Result};
use crate::{new_id, now_ms, Db};

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

const COLS: &str = "id, chain_key, seq, organization_id, ts, actor_kind, actor_user_id, actor_email, actor_component, actor_admin_id, action, resource_type, resource_id, outcome, status_code, source_ip, user_agent, request_id, diff, prev_hash, hash";

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

/// Appends one record to its organization's chain in a single transaction. The chain head row
/// is written first so that SQLite takes its write lock up front and PostgreSQL holds a row
/// lock: concurrent appends serialize instead of forking the chain.
pub async fn append(db: &Db, n: NewAuditRecord) -> Result<AuditRecord> {
    let chain_key = n
        .organization_id
        .clone()
        .unwrap_or_else(|| PLATFORM_CHAIN.to_string());
    let diff = serde_json::json!({ "before": n.before, "after": n.after }).to_string();
    let mut tx = db.pool.begin().await?;
    sqlx::query("INSERT INTO audit_chain_heads (chain_key, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (chain_key) DO NOTHING")
        .bind(&chain_key)
        .bind(GENESIS_HASH)
        .execute(&mut *tx)
        .await?;
    let (seq, prev_hash): (i64, String) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT seq, hash FROM audit_chain_heads WHERE chain_key = $1{}",
        db.for_update()
    )))
    .bind(&chain_key)
    .fetch_one(&mut *tx)
    .await?;
    let mut r = AuditRecord {
        id: new_id(),
        chain_key: chain_key.clone(),
        seq: seq + 1,
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
        prev_hash,
        hash: String::new(),
    };
    r.hash = compute_hash(&r);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_logs ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
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
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE audit_chain_heads SET seq = $1, hash = $2 WHERE chain_key = $3")
        .bind(r.seq)
        .bind(&r.hash)
        .bind(&chain_key)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
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

/// Recomputes every hash of the chain in order and reports the first broken link. The first
/// remaining row may follow purged rows, so its `prev_hash` is taken as the anchor; every
/// later row must link to its predecessor and hash to its stored value, and the chain head
/// must point at the last row.
pub async fn verify(db: &Db, chain_key: &str) -> Result<VerifyReport> {
    let batch = 1000i64;
    let mut after = 0i64;
    let mut prev: Option<(i64, String)> = None;
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
            let broken = |reason: &str| BrokenLink {
                id: r.id.clone(),
                seq: r.seq,
                ts: r.ts,
                reason: reason.to_string(),
            };
            if let Some((pseq, phash)) = &prev {
                if r.seq != pseq + 1 {
                    return Ok(VerifyReport {
                        ok: false,
                        checked,
                        first_broken: Some(broken("a record is missing before this one")),
                    });
                }
                if &r.prev_hash != phash {
                    return Ok(VerifyReport {
                        ok: false,
                        checked,
                        first_broken: Some(broken("prev_hash does not match the previous record")),
                    });
                }
            }
            if compute_hash(&r) != r.hash {
                return Ok(VerifyReport {
                    ok: false,
                    checked,
                    first_broken: Some(broken("record content does not match its hash")),
                });
            }
            checked += 1;
            after = r.seq;
            prev = Some((r.seq, r.hash.clone()));
        }
        if n < batch {
            break;
        }
    }
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_chain_heads WHERE chain_key = $1")
            .bind(chain_key)
            .fetch_optional(&db.pool)
            .await?;
    if let (Some((hseq, hhash)), Some((pseq, phash))) = (&head, &prev) {
        if hseq != pseq || hhash != phash {
            return Ok(VerifyReport {
                ok: false,
                checked,
                first_broken: Some(BrokenLink {
                    id: String::new(),
                    seq: *hseq,
                    ts: 0,
                    reason: "records after the last remaining one were removed".into(),
                }),
            });
        }
    }
    Ok(VerifyReport {
        ok: true,
        checked,
        first_broken: None,
    })
}

/// Deletes records older than `before_ms` from an organization's chain (retention). Returns
/// the number removed. Only the retention purge calls this; no API can.
pub async fn purge_before(db: &Db, org_id: &str, before_ms: i64) -> Result<i64> {
    let r = sqlx::query("DELETE FROM audit_logs WHERE chain_key = $1 AND ts < $2")
        .bind(org_id)
        .bind(before_ms)
        .execute(&db.pool)
        .await?;
    i64::try_from(r.rows_affected()).map_err(|_| DbError::Corrupt("row count overflow".into()))
}

/// Organizations with a finite retention, for the periodic purge.
pub async fn retention_targets(db: &Db) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT id, audit_retention_days FROM organizations WHERE audit_retention_days IS NOT NULL",
    )
    .fetch_all(&db.pool)
    .await?)
}
