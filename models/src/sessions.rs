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

/// What presenting a refresh token led to.
#[derive(Debug, Clone)]
pub enum Rotation {
    /// The token was the session's current one: it is consumed and replaced.
    Rotated(Session),
    /// The token was one the session had already rotated away from: someone replayed it (a
    /// stolen copy, or the legitimate holder after a thief used it first). The whole session
    /// is revoked, so every holder of it, the thief and the user, is signed out.
    Reused(Session),
    /// Unknown, expired or revoked.
    Invalid,
}

/// Swaps the refresh token of a live session: succeeds once per token. Presenting a token the
/// session already rotated away from revokes the session (refresh-token reuse detection).
pub async fn rotate(db: &Db, old_hash: &str, new_hash: &str) -> Result<Rotation> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let r = sqlx::query(
        "UPDATE sessions SET refresh_hash = $1, last_used_at = $2 WHERE refresh_hash = $3 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(new_hash)
    .bind(now)
    .bind(old_hash)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 1 {
        let s = sqlx::query_as::<_, Session>(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE refresh_hash = $1"
        )))
        .bind(new_hash)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO session_retired_refresh (refresh_hash, session_id, retired_at) VALUES ($1, $2, $3)",
        )
        .bind(old_hash)
        .bind(&s.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // The user's dead sessions need their retired tokens no more: replaying one of those
        // answers 401 anyway. Keeps the table bounded by the live sessions.
        sqlx::query(
            "DELETE FROM session_retired_refresh WHERE session_id IN \
             (SELECT id FROM sessions WHERE user_id = $1 AND (revoked_at IS NOT NULL OR expires_at <= $2))",
        )
        .bind(&s.user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(Rotation::Rotated(s));
    }
    let family: Option<(String,)> =
        sqlx::query_as("SELECT session_id FROM session_retired_refresh WHERE refresh_hash = $1")
            .bind(old_hash)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((session_id,)) = family else {
        tx.rollback().await?;
        return Ok(Rotation::Invalid);
    };
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = 'refresh_reuse' WHERE id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(&session_id)
    .execute(&mut *tx)
    .await?;
    let s = sqlx::query_as::<_, Session>(sqlx::AssertSqlSafe(format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE id = $1"
    )))
    .bind(&session_id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(s.map(Rotation::Reused).unwrap_or(Rotation::Invalid))
}

/// Revokes every live session of a user (e.g. after their password was changed).
pub async fn revoke_all_for_user(db: &Db, user_id: &str, reason: &str) -> Result<u64> {
    let r = sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE user_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(reason)
    .bind(user_id)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected())
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
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = 'logout' WHERE id = $2 AND revoked_at IS NULL",
    )
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
