//! The in-cluster agent's side of the database: per-cluster agent tokens (stored as SHA-256
//! with a visible prefix), the agent's reported status, the cluster view it pushes (nodes,
//! pods and PDBs as JSON rows, usage samples) and the command queue with exactly-once
//! `start` semantics.
//!
//! The stored cluster view is the one source of nodes, pods, PDBs and usage for the
//! optimizer: [`cluster_view`], [`pod_usage`], [`node_usage`]. Commands are queued with
//! [`enqueue_command`] (idempotent per cluster and key) and read back with [`command`];
//! a command past its deadline is expired (pending) or failed (running) whenever it is read.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, TimeZone, Utc};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use spot_agent_protocol as protocol;
use spot_agent_protocol::{
    ClusterDelta, ClusterSnapshot, CommandKind, CommandOutcome, CommandResult, Heartbeat, Node,
    Pdb, Pod, UsageSample, UsageTarget,
};
use sqlx::{Any, Transaction};
use tokio::sync::Notify;

use crate::error::{DbError, Result};
use crate::{new_id, Db};

/// Usage samples younger than this are never pruned (the optimizer reads two days).
pub const USAGE_RETENTION_MS: i64 = 72 * 3600 * 1000;
/// Length of the random part of a token after the visible id.
const SECRET_LEN: usize = 40;
/// Length of the visible id after [`protocol::TOKEN_PREFIX`].
const VISIBLE_LEN: usize = 8;

fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// SHA-256 hex of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The visible part of a token (`spa_XXXXXXXX`), when it has the agent token shape.
pub fn token_prefix_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(protocol::TOKEN_PREFIX)?;
    if rest.len() != VISIBLE_LEN + SECRET_LEN || !rest.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(&token[..protocol::TOKEN_PREFIX.len() + VISIBLE_LEN])
}

fn random_token() -> String {
    const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let mut t = String::from(protocol::TOKEN_PREFIX);
    for _ in 0..VISIBLE_LEN {
        t.push(LOWER[rng.gen_range(0..LOWER.len())] as char);
    }
    for _ in 0..SECRET_LEN {
        t.push(ALNUM[rng.gen_range(0..ALNUM.len())] as char);
    }
    t
}

// ---------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TokenRow {
    pub id: String,
    pub organization_id: String,
    pub cluster_id: String,
    pub token_prefix: String,
    pub created_at: i64,
    pub created_by: Option<String>,
    pub revoked_at: Option<i64>,
}

const TOKEN_COLS: &str =
    "id, organization_id, cluster_id, token_prefix, created_at, created_by, revoked_at";

/// A freshly issued token: the plaintext exists only here (shown once).
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub row: TokenRow,
    /// The token this one replaced (rotation).
    pub revoked: Option<TokenRow>,
}

/// The cluster (and organization) an agent token stands for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentPrincipal {
    pub token_id: String,
    pub token_prefix: String,
    pub organization_id: String,
    pub cluster_id: String,
    pub account_id: String,
    pub cluster_name: String,
}

/// Whether the cluster belongs to the organization (and is not gone).
pub async fn cluster_in_org(db: &Db, org_id: &str, cluster_id: &str) -> Result<bool> {
    let r: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM clusters WHERE id = $1 AND organization_id = $2 AND gone_at IS NULL",
    )
    .bind(cluster_id)
    .bind(org_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(r.is_some())
}

async fn insert_token(
    tx: &mut Transaction<'_, Any>,
    org_id: &str,
    cluster_id: &str,
    created_by: Option<&str>,
    now: i64,
) -> Result<(String, TokenRow)> {
    let token = random_token();
    let prefix = token_prefix_of(&token)
        .ok_or_else(|| DbError::Corrupt("generated token has the wrong shape".into()))?
        .to_string();
    let row = TokenRow {
        id: new_id(),
        organization_id: org_id.to_string(),
        cluster_id: cluster_id.to_string(),
        token_prefix: prefix,
        created_at: now,
        created_by: created_by.map(str::to_string),
        revoked_at: None,
    };
    sqlx::query("INSERT INTO agent_tokens (id, organization_id, cluster_id, token_prefix, token_hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&row.id)
        .bind(org_id)
        .bind(cluster_id)
        .bind(&row.token_prefix)
        .bind(token_hash(&token))
        .bind(now)
        .bind(created_by)
        .execute(&mut **tx)
        .await?;
    Ok((token, row))
}

/// Issues the cluster's first (or next, after a revoke) agent token. `Conflict` when the
/// cluster already has an active token (rotate it instead).
pub async fn issue_token(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    created_by: Option<&str>,
) -> Result<IssuedToken> {
    let now = crate::now_ms();
    let mut tx = db.begin_write().await?;
    if active_token_tx(&mut tx, org_id, cluster_id)
        .await?
        .is_some()
    {
        return Err(DbError::Conflict(
            "the cluster already has an active agent token; rotate it instead".into(),
        ));
    }
    let (token, row) = insert_token(&mut tx, org_id, cluster_id, created_by, now).await?;
    tx.commit().await?;
    Ok(IssuedToken {
        token,
        row,
        revoked: None,
    })
}

/// Replaces the active token (if any) with a new one in one transaction: the old token is
/// revoked at once.
pub async fn rotate_token(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    created_by: Option<&str>,
) -> Result<IssuedToken> {
    let now = crate::now_ms();
    let mut tx = db.begin_write().await?;
    // Write first so SQLite takes its write lock up front.
    sqlx::query("UPDATE agent_tokens SET revoked_at = $1 WHERE cluster_id = $2 AND organization_id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(cluster_id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let revoked: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLS} FROM agent_tokens WHERE cluster_id = $1 AND organization_id = $2 AND revoked_at = $3 ORDER BY created_at DESC LIMIT 1"
    )))
    .bind(cluster_id)
    .bind(org_id)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let (token, row) = insert_token(&mut tx, org_id, cluster_id, created_by, now).await?;
    tx.commit().await?;
    Ok(IssuedToken {
        token,
        row,
        revoked,
    })
}

/// Revokes the cluster's active token; the revoked row, or `None` when there was none.
pub async fn revoke_token(db: &Db, org_id: &str, cluster_id: &str) -> Result<Option<TokenRow>> {
    let now = crate::now_ms();
    let mut tx = db.begin_write().await?;
    let r = sqlx::query("UPDATE agent_tokens SET revoked_at = $1 WHERE cluster_id = $2 AND organization_id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(cluster_id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLS} FROM agent_tokens WHERE cluster_id = $1 AND organization_id = $2 AND revoked_at = $3 ORDER BY created_at DESC LIMIT 1"
    )))
    .bind(cluster_id)
    .bind(org_id)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

async fn active_token_tx(
    tx: &mut Transaction<'_, Any>,
    org_id: &str,
    cluster_id: &str,
) -> Result<Option<TokenRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLS} FROM agent_tokens WHERE cluster_id = $1 AND organization_id = $2 AND revoked_at IS NULL"
    )))
    .bind(cluster_id)
    .bind(org_id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// The newest token of a cluster, active or revoked.
pub async fn latest_token(db: &Db, org_id: &str, cluster_id: &str) -> Result<Option<TokenRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLS} FROM agent_tokens WHERE cluster_id = $1 AND organization_id = $2 ORDER BY (revoked_at IS NULL) DESC, created_at DESC LIMIT 1"
    )))
    .bind(cluster_id)
    .bind(org_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Resolves a presented agent token to its cluster. `None` for unknown, malformed or
/// revoked tokens and for clusters that are gone.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<AgentPrincipal>> {
    if token_prefix_of(token).is_none() {
        return Ok(None);
    }
    Ok(sqlx::query_as(
        "SELECT t.id AS token_id, t.token_prefix AS token_prefix, t.organization_id AS organization_id, t.cluster_id AS cluster_id, \
         c.account_id AS account_id, c.name AS cluster_name \
         FROM agent_tokens t JOIN clusters c ON c.id = t.cluster_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND c.gone_at IS NULL",
    )
    .bind(token_hash(token))
    .fetch_optional(&db.pool)
    .await?)
}

/// Provider of clusters registered by hand (`POST /api/clusters/register`); discovery
/// never retires them.
pub const REGISTERED_PROVIDER: &str = "kubernetes";

/// Registers a cluster discovery did not find under one of the organization's accounts.
/// `Conflict` when the organization already has a live cluster of that name.
pub async fn register_cluster(
    db: &Db,
    org_id: &str,
    account_id: &str,
    name: &str,
    region: &str,
) -> Result<String> {
    let now = crate::now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE accounts SET updated_at = updated_at WHERE id = $1 AND organization_id = $2",
    )
    .bind(account_id)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    let dup: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM clusters WHERE organization_id = $1 AND name = $2 AND gone_at IS NULL",
    )
    .bind(org_id)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    if dup.is_some() {
        return Err(DbError::Conflict(format!("a cluster named {name} exists")));
    }
    let id = new_id();
    sqlx::query("INSERT INTO clusters (id, organization_id, account_id, name, provider, region, status, node_groups, tags, first_seen_at, last_seen_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'active', '[]', '{}', $7, $7)")
        .bind(&id)
        .bind(org_id)
        .bind(account_id)
        .bind(name)
        .bind(REGISTERED_PROVIDER)
        .bind(region)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------
// Status

/// What the agent last reported about itself.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StatusRow {
    pub cluster_id: String,
    pub organization_id: String,
    pub first_seen_at: Option<i64>,
    pub last_heartbeat_at: Option<i64>,
    pub agent_version: Option<String>,
    pub kubernetes_version: Option<String>,
    pub protocol_version: Option<i64>,
    /// JSON array of [`protocol::WatchHealth`].
    pub watches: String,
    pub metrics_available: i64,
    /// JSON of the last [`protocol::SafeModeReport`].
    pub safe_mode: Option<String>,
    /// Prefix of the token the last heartbeat came with.
    pub token_prefix: Option<String>,
    pub collected_at: Option<i64>,
    pub snapshot_at: Option<i64>,
    pub view_updated_at: Option<i64>,
}

const STATUS_COLS: &str = "cluster_id, organization_id, first_seen_at, last_heartbeat_at, agent_version, kubernetes_version, protocol_version, watches, metrics_available, safe_mode, token_prefix, collected_at, snapshot_at, view_updated_at";

impl StatusRow {
    pub fn watches(&self) -> Vec<protocol::WatchHealth> {
        serde_json::from_str(&self.watches).unwrap_or_default()
    }

    pub fn safe_mode(&self) -> Option<protocol::SafeModeReport> {
        self.safe_mode
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
    }
}

/// What a heartbeat changed, for the caller's audit and events.
#[derive(Debug, Clone)]
pub struct HeartbeatOutcome {
    /// The first heartbeat of this token (the agent connected).
    pub connected: bool,
    /// The safe-mode report differs from the one stored before.
    pub safe_mode_changed: bool,
    /// No snapshot has been stored yet: ask the agent for one.
    pub resync: bool,
}

/// Records a heartbeat.
pub async fn record_heartbeat(
    db: &Db,
    p: &AgentPrincipal,
    hb: &Heartbeat,
    now: DateTime<Utc>,
) -> Result<HeartbeatOutcome> {
    let now = now.timestamp_millis();
    let watches =
        serde_json::to_string(&hb.watches).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let safe_mode = match &hb.safe_mode {
        Some(s) => Some(serde_json::to_string(s).map_err(|e| DbError::Corrupt(e.to_string()))?),
        None => None,
    };
    let mut tx = db.begin_write().await?;
    sqlx::query("INSERT INTO agent_status (cluster_id, organization_id) VALUES ($1, $2) ON CONFLICT (cluster_id) DO NOTHING")
        .bind(&p.cluster_id)
        .bind(&p.organization_id)
        .execute(&mut *tx)
        .await?;
    let before: StatusRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {STATUS_COLS} FROM agent_status WHERE cluster_id = $1{}",
        db.for_update()
    )))
    .bind(&p.cluster_id)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE agent_status SET first_seen_at = COALESCE(first_seen_at, $1), last_heartbeat_at = $1, agent_version = $2, kubernetes_version = $3, protocol_version = $4, watches = $5, metrics_available = $6, safe_mode = COALESCE($7, safe_mode), token_prefix = $8 WHERE cluster_id = $9")
        .bind(now)
        .bind(&hb.agent_version)
        .bind(&hb.kubernetes_version)
        .bind(i64::from(hb.protocol_version))
        .bind(&watches)
        .bind(i64::from(hb.metrics_available))
        .bind(safe_mode.clone())
        .bind(&p.token_prefix)
        .bind(&p.cluster_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(HeartbeatOutcome {
        connected: before.token_prefix.as_deref() != Some(p.token_prefix.as_str()),
        safe_mode_changed: safe_mode.is_some() && safe_mode != before.safe_mode,
        resync: before.snapshot_at.is_none(),
    })
}

pub async fn status(db: &Db, org_id: &str, cluster_id: &str) -> Result<Option<StatusRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {STATUS_COLS} FROM agent_status WHERE cluster_id = $1 AND organization_id = $2"
    )))
    .bind(cluster_id)
    .bind(org_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// The agent state shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// No token was ever issued.
    NotInstalled,
    /// A token is active and no heartbeat arrived with it yet.
    Waiting,
    /// Heartbeat within [`protocol::CONNECTED_WITHIN_SECS`].
    Connected,
    /// The last heartbeat is older.
    Disconnected,
    /// The last token was revoked and none is active.
    Revoked,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::NotInstalled => "not_installed",
            AgentState::Waiting => "waiting",
            AgentState::Connected => "connected",
            AgentState::Disconnected => "disconnected",
            AgentState::Revoked => "revoked",
        }
    }

    /// From the newest token (prefix, revoked) and the last heartbeat (token prefix, time).
    pub fn derive(
        newest_token: Option<(&str, bool)>,
        heartbeat: Option<(&str, i64)>,
        now_ms: i64,
    ) -> AgentState {
        match newest_token {
            None => AgentState::NotInstalled,
            Some((_, true)) => AgentState::Revoked,
            // Only heartbeats sent with the active token count: after a rotation the new
            // token's agent has to report before the cluster is green again.
            Some((prefix, false)) => match heartbeat {
                Some((hb_prefix, at)) if hb_prefix == prefix => {
                    if now_ms - at < protocol::CONNECTED_WITHIN_SECS * 1000 {
                        AgentState::Connected
                    } else {
                        AgentState::Disconnected
                    }
                }
                _ => AgentState::Waiting,
            },
        }
    }
}

/// The agent state of every cluster of an organization, in one query.
pub async fn states(
    db: &Db,
    org_id: &str,
    now: DateTime<Utc>,
) -> Result<HashMap<String, AgentState>> {
    let rows: Vec<(String, Option<String>, Option<i64>, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT c.id, t.token_prefix, t.revoked_at, s.token_prefix, s.last_heartbeat_at FROM clusters c \
         LEFT JOIN agent_tokens t ON t.id = (SELECT t2.id FROM agent_tokens t2 WHERE t2.cluster_id = c.id ORDER BY (t2.revoked_at IS NULL) DESC, t2.created_at DESC LIMIT 1) \
         LEFT JOIN agent_status s ON s.cluster_id = c.id \
         WHERE c.organization_id = $1 AND c.gone_at IS NULL",
    )
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?;
    let now = now.timestamp_millis();
    Ok(rows
        .into_iter()
        .map(|(id, tp, revoked, hp, hb)| {
            let token = tp.as_deref().map(|p| (p, revoked.is_some()));
            let heartbeat = match (hp.as_deref(), hb) {
                (Some(p), Some(at)) => Some((p, at)),
                _ => None,
            };
            (id, AgentState::derive(token, heartbeat, now))
        })
        .collect())
}

/// The agent state of one cluster.
pub async fn state(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    now: DateTime<Utc>,
) -> Result<AgentState> {
    let token = latest_token(db, org_id, cluster_id).await?;
    let st = status(db, org_id, cluster_id).await?;
    let heartbeat = st
        .as_ref()
        .and_then(|s| Some((s.token_prefix.as_deref()?, s.last_heartbeat_at?)));
    Ok(AgentState::derive(
        token
            .as_ref()
            .map(|t| (t.token_prefix.as_str(), t.revoked_at.is_some())),
        heartbeat,
        now.timestamp_millis(),
    ))
}

/// An agent with an active token sent a heartbeat within [`protocol::CONNECTED_WITHIN_SECS`].
pub async fn is_connected(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(state(db, org_id, cluster_id, now).await? == AgentState::Connected)
}

// ---------------------------------------------------------------------------------------
// Cluster view

/// The cluster as the agent last reported it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterView {
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub pdbs: Vec<Pdb>,
    /// `collected_at` of the last snapshot or delta.
    pub collected_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
}

fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| DbError::Corrupt(e.to_string()))
}

fn phase_name(p: protocol::PodPhase) -> &'static str {
    match p {
        protocol::PodPhase::Pending => "Pending",
        protocol::PodPhase::Running => "Running",
        protocol::PodPhase::Succeeded => "Succeeded",
        protocol::PodPhase::Failed => "Failed",
        protocol::PodPhase::Unknown => "Unknown",
    }
}

async fn upsert_node(
    tx: &mut Transaction<'_, Any>,
    cluster_id: &str,
    n: &Node,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO agent_nodes (cluster_id, name, data, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (cluster_id, name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at")
        .bind(cluster_id)
        .bind(&n.name)
        .bind(json(n)?)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn upsert_pod(
    tx: &mut Transaction<'_, Any>,
    cluster_id: &str,
    p: &Pod,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO agent_pods (cluster_id, pod_key, phase, node_name, data, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (cluster_id, pod_key) DO UPDATE SET phase = excluded.phase, node_name = excluded.node_name, data = excluded.data, updated_at = excluded.updated_at")
        .bind(cluster_id)
        .bind(p.key())
        .bind(phase_name(p.phase))
        .bind(p.node_name.clone())
        .bind(json(p)?)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn upsert_pdb(
    tx: &mut Transaction<'_, Any>,
    cluster_id: &str,
    p: &Pdb,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO agent_pdbs (cluster_id, pdb_key, data, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (cluster_id, pdb_key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at")
        .bind(cluster_id)
        .bind(p.key())
        .bind(json(p)?)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert_usage(
    tx: &mut Transaction<'_, Any>,
    cluster_id: &str,
    usage: &[UsageSample],
    now: i64,
) -> Result<()> {
    // Multi-row statements: a connect may carry two days of samples per workload.
    const ROWS: usize = 400;
    for chunk in usage.chunks(ROWS) {
        let mut sql = String::from(
            "INSERT INTO agent_usage (cluster_id, target, namespace, name, at, cpu_millis, memory_mib) VALUES ",
        );
        sql.push_str(&crate::values_rows(chunk.len(), 7));
        sql.push_str(" ON CONFLICT (cluster_id, target, namespace, name, at) DO NOTHING");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for u in chunk {
            let target = match u.target {
                UsageTarget::Node => "node",
                UsageTarget::Pod => "pod",
            };
            q = q
                .bind(cluster_id)
                .bind(target)
                .bind(u.namespace.clone())
                .bind(u.name.clone())
                .bind(u.at.timestamp_millis())
                .bind(i64::try_from(u.cpu_millis).unwrap_or(i64::MAX))
                .bind(i64::try_from(u.memory_mib).unwrap_or(i64::MAX));
        }
        q.execute(&mut **tx).await?;
    }
    if !usage.is_empty() {
        sqlx::query("DELETE FROM agent_usage WHERE cluster_id = $1 AND at < $2")
            .bind(cluster_id)
            .bind(now - USAGE_RETENTION_MS)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Takes the status row's write lock first (SQLite: the write lock up front).
async fn touch_view(
    tx: &mut Transaction<'_, Any>,
    org_id: &str,
    cluster_id: &str,
    collected_at: Option<i64>,
    snapshot: bool,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO agent_status (cluster_id, organization_id) VALUES ($1, $2) ON CONFLICT (cluster_id) DO NOTHING")
        .bind(cluster_id)
        .bind(org_id)
        .execute(&mut **tx)
        .await?;
    let sql = if snapshot {
        "UPDATE agent_status SET collected_at = COALESCE($1, collected_at), view_updated_at = $2, snapshot_at = $2 WHERE cluster_id = $3"
    } else {
        "UPDATE agent_status SET collected_at = COALESCE($1, collected_at), view_updated_at = $2 WHERE cluster_id = $3"
    };
    sqlx::query(sql)
        .bind(collected_at)
        .bind(now)
        .bind(cluster_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Replaces the cluster's view with a snapshot, in one transaction.
pub async fn apply_snapshot(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    snap: &ClusterSnapshot,
    now: DateTime<Utc>,
) -> Result<()> {
    let now = now.timestamp_millis();
    let mut tx = db.begin_write().await?;
    touch_view(
        &mut tx,
        org_id,
        cluster_id,
        Some(snap.collected_at.timestamp_millis()),
        true,
        now,
    )
    .await?;
    for table in ["agent_nodes", "agent_pods", "agent_pdbs"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE cluster_id = $1"
        )))
        .bind(cluster_id)
        .execute(&mut *tx)
        .await?;
    }
    // Duplicates in the payload: the last one wins.
    let nodes: BTreeMap<&str, &Node> = snap.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    for n in nodes.values() {
        upsert_node(&mut tx, cluster_id, n, now).await?;
    }
    let pods: BTreeMap<String, &Pod> = snap.pods.iter().map(|p| (p.key(), p)).collect();
    for p in pods.values() {
        upsert_pod(&mut tx, cluster_id, p, now).await?;
    }
    let pdbs: BTreeMap<String, &Pdb> = snap.pdbs.iter().map(|p| (p.key(), p)).collect();
    for p in pdbs.values() {
        upsert_pdb(&mut tx, cluster_id, p, now).await?;
    }
    insert_usage(&mut tx, cluster_id, &snap.usage, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Applies a delta (upserts, then deletions) in one transaction.
pub async fn apply_delta(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    d: &ClusterDelta,
    now: DateTime<Utc>,
) -> Result<()> {
    let now = now.timestamp_millis();
    let mut tx = db.begin_write().await?;
    touch_view(
        &mut tx,
        org_id,
        cluster_id,
        d.collected_at.map(|t| t.timestamp_millis()),
        false,
        now,
    )
    .await?;
    for n in &d.nodes_upserted {
        upsert_node(&mut tx, cluster_id, n, now).await?;
    }
    for p in &d.pods_upserted {
        upsert_pod(&mut tx, cluster_id, p, now).await?;
    }
    for p in &d.pdbs_upserted {
        upsert_pdb(&mut tx, cluster_id, p, now).await?;
    }
    for (table, col, keys) in [
        ("agent_nodes", "name", &d.nodes_deleted),
        ("agent_pods", "pod_key", &d.pods_deleted),
        ("agent_pdbs", "pdb_key", &d.pdbs_deleted),
    ] {
        for k in keys {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE cluster_id = $1 AND {col} = $2"
            )))
            .bind(cluster_id)
            .bind(k)
            .execute(&mut *tx)
            .await?;
        }
    }
    insert_usage(&mut tx, cluster_id, &d.usage, now).await?;
    tx.commit().await?;
    Ok(())
}

fn parse_rows<T: serde::de::DeserializeOwned>(rows: Vec<(String,)>, what: &str) -> Result<Vec<T>> {
    rows.into_iter()
        .map(|(d,)| serde_json::from_str(&d).map_err(|e| DbError::Corrupt(format!("{what}: {e}"))))
        .collect()
}

/// The stored view of a cluster of the organization; `None` when the cluster is not the
/// organization's or no snapshot has arrived yet.
pub async fn cluster_view(db: &Db, org_id: &str, cluster_id: &str) -> Result<Option<ClusterView>> {
    let Some(st) = status(db, org_id, cluster_id).await? else {
        return Ok(None);
    };
    if st.snapshot_at.is_none() {
        return Ok(None);
    }
    let nodes: Vec<(String,)> =
        sqlx::query_as("SELECT data FROM agent_nodes WHERE cluster_id = $1 ORDER BY name")
            .bind(cluster_id)
            .fetch_all(&db.pool)
            .await?;
    let pods: Vec<(String,)> =
        sqlx::query_as("SELECT data FROM agent_pods WHERE cluster_id = $1 ORDER BY pod_key")
            .bind(cluster_id)
            .fetch_all(&db.pool)
            .await?;
    let pdbs: Vec<(String,)> =
        sqlx::query_as("SELECT data FROM agent_pdbs WHERE cluster_id = $1 ORDER BY pdb_key")
            .bind(cluster_id)
            .fetch_all(&db.pool)
            .await?;
    Ok(Some(ClusterView {
        nodes: parse_rows(nodes, "node")?,
        pods: parse_rows(pods, "pod")?,
        pdbs: parse_rows(pdbs, "pdb")?,
        collected_at: st.collected_at.map(ts),
        last_heartbeat_at: st.last_heartbeat_at.map(ts),
    }))
}

/// Clusters of `org_id` whose agent reported since `fresh_since` (ms) and whose view has a
/// node under pressure ([`spot_agent_protocol::Node::pressure`]).
pub async fn clusters_with_node_pressure(
    db: &Db,
    org_id: &str,
    fresh_since: i64,
) -> Result<std::collections::BTreeSet<String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.cluster_id, n.data FROM agent_nodes n JOIN agent_status s ON s.cluster_id = n.cluster_id \
         WHERE s.organization_id = $1 AND s.last_heartbeat_at >= $2 \
           AND (n.data LIKE '%Pressure%' OR n.data LIKE '%NetworkUnavailable%')",
    )
    .bind(org_id)
    .bind(fresh_since)
    .fetch_all(&db.pool)
    .await?;
    let mut out = std::collections::BTreeSet::new();
    for (cluster, data) in rows {
        let node: spot_agent_protocol::Node = serde_json::from_str(&data)
            .map_err(|e| crate::DbError::Corrupt(format!("stored node: {e}")))?;
        if !node.pressure().is_empty() {
            out.insert(cluster);
        }
    }
    Ok(out)
}

/// Object counts of the stored view: (nodes, pods, pdbs, pending pods).
pub async fn view_counts(db: &Db, cluster_id: &str) -> Result<(i64, i64, i64, i64)> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM agent_nodes WHERE cluster_id = $1")
        .bind(cluster_id)
        .fetch_one(&db.pool)
        .await?;
    let (p, pending): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN phase = 'Pending' THEN 1 ELSE 0 END), 0) FROM agent_pods WHERE cluster_id = $1",
    )
    .bind(cluster_id)
    .fetch_one(&db.pool)
    .await?;
    let (b,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM agent_pdbs WHERE cluster_id = $1")
        .bind(cluster_id)
        .fetch_one(&db.pool)
        .await?;
    Ok((n, p, b, pending))
}

#[allow(clippy::too_many_arguments)]
async fn usage(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    target: UsageTarget,
    namespace: &str,
    name: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<UsageSample>> {
    if !cluster_in_org(db, org_id, cluster_id).await? {
        return Ok(Vec::new());
    }
    let t = match target {
        UsageTarget::Node => "node",
        UsageTarget::Pod => "pod",
    };
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT at, cpu_millis, memory_mib FROM agent_usage WHERE cluster_id = $1 AND target = $2 AND namespace = $3 AND name = $4 AND at >= $5 AND at <= $6 ORDER BY at",
    )
    .bind(cluster_id)
    .bind(t)
    .bind(namespace)
    .bind(name)
    .bind(from.timestamp_millis())
    .bind(to.timestamp_millis())
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, cpu, mem)| UsageSample {
            target,
            namespace: namespace.to_string(),
            name: name.to_string(),
            at: ts(at),
            cpu_millis: u64::try_from(cpu).unwrap_or(0),
            memory_mib: u64::try_from(mem).unwrap_or(0),
        })
        .collect())
}

/// Usage samples of one pod in `[from, to]`, oldest first (empty for other organizations).
pub async fn pod_usage(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    namespace: &str,
    pod: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<UsageSample>> {
    usage(
        db,
        org_id,
        cluster_id,
        UsageTarget::Pod,
        namespace,
        pod,
        from,
        to,
    )
    .await
}

/// Usage samples of one node in `[from, to]`, oldest first.
pub async fn node_usage(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    node: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<UsageSample>> {
    usage(
        db,
        org_id,
        cluster_id,
        UsageTarget::Node,
        "",
        node,
        from,
        to,
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Commands

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Never claimed before its deadline.
    Expired,
}

impl CommandStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandStatus::Pending => "pending",
            CommandStatus::Running => "running",
            CommandStatus::Succeeded => "succeeded",
            CommandStatus::Failed => "failed",
            CommandStatus::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Result<CommandStatus> {
        Ok(match s {
            "pending" => CommandStatus::Pending,
            "running" => CommandStatus::Running,
            "succeeded" => CommandStatus::Succeeded,
            "failed" => CommandStatus::Failed,
            "expired" => CommandStatus::Expired,
            other => return Err(DbError::Corrupt(format!("command status {other}"))),
        })
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            CommandStatus::Succeeded | CommandStatus::Failed | CommandStatus::Expired
        )
    }
}

/// One queued command with its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandRecord {
    pub id: String,
    pub organization_id: String,
    pub cluster_id: String,
    pub command: CommandKind,
    pub status: CommandStatus,
    pub idempotency_key: String,
    /// `system:job:<id>`, a user id, …
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What the agent reported.
    pub result: Option<CommandResult>,
    /// Why the control plane failed or expired it (deadline).
    pub reason: Option<String>,
}

impl CommandRecord {
    /// The wire form handed to the agent.
    pub fn wire(&self) -> Result<protocol::Command> {
        Ok(protocol::Command {
            id: self
                .id
                .parse()
                .map_err(|e| DbError::Corrupt(format!("command id: {e}")))?,
            command: self.command.clone(),
            created_at: self.created_at,
            deadline: self.deadline,
        })
    }
}

#[derive(sqlx::FromRow)]
struct CommandRow {
    id: String,
    organization_id: String,
    cluster_id: String,
    command: String,
    status: String,
    idempotency_key: String,
    created_by: String,
    created_at: i64,
    deadline: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    result: Option<String>,
    reason: Option<String>,
}

const COMMAND_COLS: &str = "id, organization_id, cluster_id, command, status, idempotency_key, created_by, created_at, deadline, started_at, finished_at, result, reason";

impl TryFrom<CommandRow> for CommandRecord {
    type Error = DbError;
    fn try_from(r: CommandRow) -> Result<CommandRecord> {
        Ok(CommandRecord {
            command: serde_json::from_str(&r.command)
                .map_err(|e| DbError::Corrupt(format!("command {}: {e}", r.id)))?,
            status: CommandStatus::parse(&r.status)?,
            result: match r.result.as_deref() {
                Some(s) => Some(
                    serde_json::from_str(s)
                        .map_err(|e| DbError::Corrupt(format!("command result {}: {e}", r.id)))?,
                ),
                None => None,
            },
            id: r.id,
            organization_id: r.organization_id,
            cluster_id: r.cluster_id,
            idempotency_key: r.idempotency_key,
            created_by: r.created_by,
            created_at: ts(r.created_at),
            deadline: ts(r.deadline),
            started_at: r.started_at.map(ts),
            finished_at: r.finished_at.map(ts),
            reason: r.reason,
        })
    }
}

fn records(rows: Vec<CommandRow>) -> Result<Vec<CommandRecord>> {
    rows.into_iter().map(CommandRecord::try_from).collect()
}

type Wakers = Mutex<HashMap<String, Arc<Notify>>>;

fn wakers() -> &'static Wakers {
    static W: OnceLock<Wakers> = OnceLock::new();
    W.get_or_init(Default::default)
}

/// Woken whenever a command is queued for the cluster in this process (long polls wait on
/// it; other replicas' enqueues are seen by the poll's periodic re-check).
pub fn command_notifier(cluster_id: &str) -> Arc<Notify> {
    let mut w = wakers().lock().unwrap_or_else(|e| e.into_inner());
    w.entry(cluster_id.to_string()).or_default().clone()
}

/// Queues a command for the cluster's agent. Enqueueing the same `idempotency_key` for the
/// same cluster again returns the command queued first (whatever its state). `None` when
/// the cluster is not the organization's.
pub async fn enqueue_command(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    idempotency_key: &str,
    kind: &CommandKind,
    deadline: DateTime<Utc>,
    created_by: &str,
) -> Result<Option<CommandRecord>> {
    if !cluster_in_org(db, org_id, cluster_id).await? {
        return Ok(None);
    }
    let now = crate::now_ms();
    sqlx::query("INSERT INTO agent_commands (id, organization_id, cluster_id, kind, command, status, idempotency_key, created_by, created_at, deadline) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9) ON CONFLICT (cluster_id, idempotency_key) DO NOTHING")
        .bind(new_id())
        .bind(org_id)
        .bind(cluster_id)
        .bind(kind.name())
        .bind(json(kind)?)
        .bind(idempotency_key)
        .bind(created_by)
        .bind(now)
        .bind(deadline.timestamp_millis())
        .execute(&db.pool)
        .await?;
    let row: CommandRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COMMAND_COLS} FROM agent_commands WHERE cluster_id = $1 AND idempotency_key = $2"
    )))
    .bind(cluster_id)
    .bind(idempotency_key)
    .fetch_one(&db.pool)
    .await?;
    command_notifier(cluster_id).notify_waiters();
    Ok(Some(row.try_into()?))
}

/// Expires pending commands and fails running ones whose deadline passed (of one cluster,
/// or of all clusters). Returns the commands it changed.
pub async fn expire_commands(
    db: &Db,
    cluster_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<CommandRecord>> {
    let now = now.timestamp_millis();
    let scope = if cluster_id.is_some() {
        " AND cluster_id = $2"
    } else {
        ""
    };
    let due: Vec<CommandRow> = {
        let sql = format!(
            "SELECT {COMMAND_COLS} FROM agent_commands WHERE deadline < $1 AND status IN ('pending', 'running'){scope}"
        );
        let mut q = sqlx::query_as::<_, CommandRow>(sqlx::AssertSqlSafe(sql)).bind(now);
        if let Some(c) = cluster_id {
            q = q.bind(c);
        }
        q.fetch_all(&db.pool).await?
    };
    let mut changed = Vec::new();
    for r in due {
        let (status, reason) = if r.status == "pending" {
            (
                "expired",
                "the agent did not claim the command before its deadline",
            )
        } else {
            (
                "failed",
                "the agent started the command but reported no result before its deadline",
            )
        };
        let done = sqlx::query("UPDATE agent_commands SET status = $1, reason = $2, finished_at = $3 WHERE id = $4 AND status = $5")
            .bind(status)
            .bind(reason)
            .bind(now)
            .bind(&r.id)
            .bind(&r.status)
            .execute(&db.pool)
            .await?;
        if done.rows_affected() == 1 {
            let mut rec = CommandRecord::try_from(r)?;
            rec.status = CommandStatus::parse(status)?;
            rec.reason = Some(reason.to_string());
            rec.finished_at = Some(ts(now));
            changed.push(rec);
        }
    }
    Ok(changed)
}

/// One command of the organization (expired first when its deadline passed).
pub async fn command(db: &Db, org_id: &str, id: &str) -> Result<Option<CommandRecord>> {
    let find = || async {
        let r: Option<CommandRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COMMAND_COLS} FROM agent_commands WHERE id = $1 AND organization_id = $2"
        )))
        .bind(id)
        .bind(org_id)
        .fetch_optional(&db.pool)
        .await?;
        Ok::<_, DbError>(r)
    };
    let Some(r) = find().await? else {
        return Ok(None);
    };
    if (r.status == "pending" || r.status == "running") && r.deadline < crate::now_ms() {
        expire_commands(db, Some(&r.cluster_id), Utc::now()).await?;
        return find().await?.map(CommandRecord::try_from).transpose();
    }
    Ok(Some(r.try_into()?))
}

/// A command of a cluster (the agent's view).
pub async fn cluster_command(db: &Db, cluster_id: &str, id: &str) -> Result<Option<CommandRecord>> {
    let r: Option<CommandRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COMMAND_COLS} FROM agent_commands WHERE id = $1 AND cluster_id = $2"
    )))
    .bind(id)
    .bind(cluster_id)
    .fetch_optional(&db.pool)
    .await?;
    r.map(CommandRecord::try_from).transpose()
}

/// Pending commands of a cluster, oldest first (after expiring the overdue ones).
pub async fn pending_commands(db: &Db, cluster_id: &str, limit: i64) -> Result<Vec<CommandRecord>> {
    expire_commands(db, Some(cluster_id), Utc::now()).await?;
    let rows: Vec<CommandRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COMMAND_COLS} FROM agent_commands WHERE cluster_id = $1 AND status = 'pending' ORDER BY created_at, id LIMIT $2"
    )))
    .bind(cluster_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    records(rows)
}

/// Recent commands of a cluster of the organization, newest first.
pub async fn list_commands(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<CommandRecord>> {
    expire_commands(db, Some(cluster_id), Utc::now()).await?;
    let rows: Vec<CommandRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COMMAND_COLS} FROM agent_commands WHERE cluster_id = $1 AND organization_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(cluster_id)
    .bind(org_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    records(rows)
}

/// Claims a pending command (pending → running, atomically). `None` when it is not pending
/// (already started, finished, expired) or not this cluster's: the agent must not run it.
pub async fn start_command(
    db: &Db,
    cluster_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<CommandRecord>> {
    let now_ms = now.timestamp_millis();
    let r = sqlx::query("UPDATE agent_commands SET status = 'running', started_at = $1 WHERE id = $2 AND cluster_id = $3 AND status = 'pending' AND deadline >= $1")
        .bind(now_ms)
        .bind(id)
        .bind(cluster_id)
        .execute(&db.pool)
        .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    cluster_command(db, cluster_id, id).await
}

/// What reporting a result did.
#[derive(Debug, Clone)]
pub enum FinishOutcome {
    /// Stored; the command is now succeeded or failed.
    Stored(CommandRecord),
    /// The same result was already stored (a retried report).
    Repeated(CommandRecord),
    /// The command is not running (never started, expired, or finished differently).
    NotRunning(CommandRecord),
    NotFound,
}

/// Stores the agent's result of a running command of the cluster.
pub async fn finish_command(
    db: &Db,
    cluster_id: &str,
    id: &str,
    result: &CommandResult,
    now: DateTime<Utc>,
) -> Result<FinishOutcome> {
    let status = match result.outcome {
        CommandOutcome::Succeeded => "succeeded",
        CommandOutcome::Failed => "failed",
    };
    let r = sqlx::query("UPDATE agent_commands SET status = $1, result = $2, finished_at = $3 WHERE id = $4 AND cluster_id = $5 AND status = 'running'")
        .bind(status)
        .bind(json(result)?)
        .bind(now.timestamp_millis())
        .bind(id)
        .bind(cluster_id)
        .execute(&db.pool)
        .await?;
    let Some(rec) = cluster_command(db, cluster_id, id).await? else {
        return Ok(FinishOutcome::NotFound);
    };
    if r.rows_affected() == 1 {
        return Ok(FinishOutcome::Stored(rec));
    }
    if rec.result.as_ref() == Some(result) {
        return Ok(FinishOutcome::Repeated(rec));
    }
    Ok(FinishOutcome::NotRunning(rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_documented_shape() {
        let t = random_token();
        assert!(t.starts_with("spa_"));
        assert_eq!(t.len(), 4 + VISIBLE_LEN + SECRET_LEN);
        let p = token_prefix_of(&t).expect("prefix");
        assert_eq!(p.len(), 12);
        assert!(t.starts_with(p));
        assert_ne!(random_token(), t);
        assert!(token_prefix_of("spa_short").is_none());
        assert!(token_prefix_of("eyJhbGciOiJIUzI1NiJ9.e30.x").is_none());
        assert_eq!(token_hash(&t).len(), 64);
    }

    #[test]
    fn agent_state_follows_tokens_and_heartbeats() {
        let now = 1_000_000_000;
        assert_eq!(
            AgentState::derive(None, None, now),
            AgentState::NotInstalled
        );
        assert_eq!(
            AgentState::derive(Some(("spa_a", false)), None, now),
            AgentState::Waiting
        );
        assert_eq!(
            AgentState::derive(Some(("spa_a", false)), Some(("spa_a", now - 59_000)), now),
            AgentState::Connected
        );
        assert_eq!(
            AgentState::derive(Some(("spa_a", false)), Some(("spa_a", now - 61_000)), now),
            AgentState::Disconnected
        );
        // A new token whose agent has not reported yet (the old token's agent reported
        // recently, but that token is revoked).
        assert_eq!(
            AgentState::derive(Some(("spa_b", false)), Some(("spa_a", now - 1_000)), now),
            AgentState::Waiting
        );
        assert_eq!(
            AgentState::derive(Some(("spa_a", true)), Some(("spa_a", now - 1_000)), now),
            AgentState::Revoked
        );
    }
}
