//! Login sessions. The refresh token is stored only as a SHA-256 hash and rotates on every use;
//! access tokens carry the session id so revoking the session revokes them too.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::{new_id, now_ms, Db};

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub organization_id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub impersonator_id: Option<String>,
}

/// What the authentication middleware needs for every request, read in one query.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionPrincipal {
    pub session_id: String,
    pub user_id: String,
    pub email: String,
    pub organization_id: String,
    pub role: String,
    pub platform_role: Option<String>,
    pub impersonator_id: Option<String>,
}

const SESSION_COLS: &str =
    "id, user_id, organization_id, created_at, last_used_at, expires_at, revoked_at, impersonator_id";

pub struct NewSession<'a> {
    pub user_id: &'a str,
    pub organization_id: &'a str,
    pub refresh_hash: &'a str,
    pub ttl_ms: i64,
    pub impersonator_id: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub async fn create(db: &Db, s: NewSession<'_>) -> Result<Session> {
    let now = now_ms();
    let id = new_id();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, organization_id, refresh_hash, created_at, last_used_at, expires_at, impersonator_id, source_ip, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(s.user_id)
    .bind(s.organization_id)
    .bind(s.refresh_hash)
    .bind(now)
    .bind(now + s.ttl_ms)
    .bind(s.impersonator_id)
    .bind(s.source_ip)
    .bind(s.user_agent)
    .execute(&db.pool)
    .await?;
    Ok(Session {
        id,
        user_id: s.user_id.into(),
        organization_id: s.organization_id.into(),
        created_at: now,
        last_used_at: now,
        expires_at: now + s.ttl_ms,
        revoked_at: None,
        impersonator_id: s.impersonator_id.map(str::to_string),
    })
}

/// Swaps the refresh token of a live session: succeeds once per token, so a replayed or
/// stolen-and-used token finds nothing. Returns the session on success.
pub async fn rotate(db: &Db, old_hash: &str, new_hash: &str) -> Result<Option<Session>> {
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "UPDATE sessions SET refresh_hash = $1, last_used_at = $2 WHERE refresh_hash = $3 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(new_hash)
    .bind(now)
    .bind(old_hash)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    let s = sqlx::query_as::<_, Session>(sqlx::AssertSqlSafe(format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE refresh_hash = $1"
    )))
    .bind(new_hash)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(s)
}

/// Revokes the session holding this refresh token. Returns the session when one was live.
pub async fn revoke_by_refresh(db: &Db, hash: &str) -> Result<Option<Session>> {
    let s = sqlx::query_as::<_, Session>(sqlx::AssertSqlSafe(format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE refresh_hash = $1 AND revoked_at IS NULL"
    )))
    .bind(hash)
    .fetch_optional(&db.pool)
    .await?;
    if let Some(ref s) = s {
        revoke(db, &s.id).await?;
    }
    Ok(s)
}

pub async fn revoke(db: &Db, session_id: &str) -> Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(session_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The principal behind a live (not revoked, not expired) session.
pub async fn principal(db: &Db, session_id: &str) -> Result<Option<SessionPrincipal>> {
    Ok(sqlx::query_as::<_, SessionPrincipal>(
        "SELECT s.id AS session_id, u.id AS user_id, u.email AS email, m.organization_id AS organization_id, \
                m.role AS role, u.platform_role AS platform_role, s.impersonator_id AS impersonator_id \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         JOIN memberships m ON m.user_id = s.user_id AND m.organization_id = s.organization_id \
         WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
    )
    .bind(session_id)
    .bind(now_ms())
    .fetch_optional(&db.pool)
    .await?)
}
