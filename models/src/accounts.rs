//! Linked cloud accounts. Signup creates a `pending` placeholder that account linking later
//! upserts, so an organization never exists without an account row.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

use crate::crypto::{account_aad, CryptoError, Keyring};
use crate::error::{DbError, Result};
use crate::{new_id, now_ms, Db};

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Account {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub provider: String,
    pub aws_account_id: Option<String>,
    pub method: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub region: Option<String>,
    pub status: String,
    pub status_message: Option<String>,
    pub last_sync_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub scan_phase: Option<String>,
    pub scan_progress: i64,
    /// JSON object of discovered counts (instances, clusters, volumes, snapshots).
    pub scan_counts: Option<String>,
}

pub(crate) const ACCOUNT_COLS: &str = "id, organization_id, name, provider, aws_account_id, method, role_arn, external_id, region, status, status_message, last_sync_at, created_at, updated_at, scan_phase, scan_progress, scan_counts";

pub(crate) async fn insert_placeholder(
    tx: &mut Transaction<'_, Any>,
    org_id: &str,
) -> Result<String> {
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO accounts (id, organization_id, name, provider, status, created_at, updated_at) VALUES ($1, $2, 'Pending account', 'aws', 'pending', $3, $3)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Accounts of an organization, disconnected ones excluded.
pub async fn list(db: &Db, org_id: &str) -> Result<Vec<Account>> {
    Ok(sqlx::query_as::<_, Account>(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLS} FROM accounts WHERE organization_id = $1 AND status <> 'disconnected' ORDER BY created_at"
    )))
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Whether the organization has at least one account in `active` status (drives the
/// onboarding/dashboard route hint).
pub async fn has_active(db: &Db, org_id: &str) -> Result<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM accounts WHERE organization_id = $1 AND status = 'active'",
    )
    .bind(org_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(n > 0)
}

/// What verification established about an account to link.
#[derive(Debug, Clone)]
pub struct LinkedAccount<'a> {
    pub name: &'a str,
    pub provider: &'a str,
    pub aws_account_id: &'a str,
    pub method: &'a str,
    pub role_arn: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub region: &'a str,
    /// Access keys to store; encrypted here, once the row that owns them is known, and bound
    /// to that row's id (AES-GCM associated data).
    pub credentials: Option<Credentials<'a>>,
}

/// Plaintext credentials and the keyring that seals them.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub keyring: &'a Keyring,
    pub plaintext: &'a [u8],
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

fn seal(c: &Option<Credentials<'_>>, account_id: &str) -> Result<Option<String>> {
    c.map(|c| {
        c.keyring
            .encrypt(&account_aad(account_id), c.plaintext)
            .map_err(|e| DbError::Corrupt(format!("cannot encrypt credentials: {e}")))
    })
    .transpose()
}

pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<Account>> {
    Ok(sqlx::query_as::<_, Account>(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLS} FROM accounts WHERE organization_id = $1 AND id = $2 AND status <> 'disconnected'"
    )))
    .bind(org_id)
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Any organization's live link of this AWS account id (for the 409 check).
pub async fn live_by_aws_id(db: &Db, aws_account_id: &str) -> Result<Option<Account>> {
    Ok(sqlx::query_as::<_, Account>(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLS} FROM accounts WHERE aws_account_id = $1 AND status <> 'disconnected'"
    )))
    .bind(aws_account_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Links a verified account: updates this organization's existing link of the same AWS
/// account, else fills the `pending` placeholder, else inserts a new row. The account moves
/// to `scanning`. A live link of the same AWS account in another organization violates the
/// unique index and surfaces as `DbError::Conflict`.
pub async fn upsert_linked(db: &Db, org_id: &str, l: &LinkedAccount<'_>) -> Result<Account> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    // Write first so SQLite takes the write lock up front (see inventory::apply).
    sqlx::query("UPDATE organizations SET name = name WHERE id = $1")
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let existing: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM accounts WHERE organization_id = $1 AND aws_account_id = $2 AND status <> 'disconnected'",
    )
    .bind(org_id)
    .bind(l.aws_account_id)
    .fetch_optional(&mut *tx)
    .await?;
    let placeholder: Option<(String,)> = if existing.is_none() {
        sqlx::query_as(
            "SELECT id FROM accounts WHERE organization_id = $1 AND aws_account_id IS NULL AND status IN ('pending', 'error') ORDER BY created_at LIMIT 1",
        )
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?
    } else {
        None
    };
    let id = match existing.or(placeholder) {
        Some((id,)) => {
            let ciphertext = seal(&l.credentials, &id)?;
            sqlx::query(
                "UPDATE accounts SET name = $1, provider = $2, aws_account_id = $3, method = $4, role_arn = $5, external_id = $6, region = $7, \
                 credentials_ciphertext = $8, status = 'scanning', status_message = NULL, scan_phase = 'queued', scan_progress = 0, updated_at = $9 WHERE id = $10",
            )
            .bind(l.name)
            .bind(l.provider)
            .bind(l.aws_account_id)
            .bind(l.method)
            .bind(l.role_arn)
            .bind(l.external_id)
            .bind(l.region)
            .bind(ciphertext)
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            id
        }
        None => {
            let id = new_id();
            let ciphertext = seal(&l.credentials, &id)?;
            sqlx::query(
                "INSERT INTO accounts (id, organization_id, name, provider, aws_account_id, method, role_arn, external_id, region, credentials_ciphertext, status, scan_phase, scan_progress, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'scanning', 'queued', 0, $11, $11)",
            )
            .bind(&id)
            .bind(org_id)
            .bind(l.name)
            .bind(l.provider)
            .bind(l.aws_account_id)
            .bind(l.method)
            .bind(l.role_arn)
            .bind(l.external_id)
            .bind(l.region)
            .bind(ciphertext)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            id
        }
    };
    let acc = sqlx::query_as::<_, Account>(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1"
    )))
    .bind(&id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(acc)
}

/// Records a failed verification on the placeholder (or an existing link) so the user sees
/// the `error` status and message.
pub async fn mark_error(db: &Db, id: &str, message: &str) -> Result<()> {
    sqlx::query("UPDATE accounts SET status = 'error', status_message = $1, scan_phase = NULL, updated_at = $2 WHERE id = $3")
        .bind(message)
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The `pending` placeholder of an organization, if it still has one.
pub async fn placeholder(db: &Db, org_id: &str) -> Result<Option<Account>> {
    Ok(sqlx::query_as::<_, Account>(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLS} FROM accounts WHERE organization_id = $1 AND aws_account_id IS NULL AND status IN ('pending', 'error') ORDER BY created_at LIMIT 1"
    )))
    .bind(org_id)
    .fetch_optional(&db.pool)
    .await?)
}

pub async fn set_scanning(db: &Db, id: &str) -> Result<()> {
    sqlx::query("UPDATE accounts SET status = 'scanning', status_message = NULL, scan_phase = 'queued', scan_progress = 0, updated_at = $1 WHERE id = $2 AND status <> 'disconnected'")
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn set_scan_progress(
    db: &Db,
    id: &str,
    phase: &str,
    progress: i64,
    counts: &str,
) -> Result<()> {
    sqlx::query("UPDATE accounts SET scan_phase = $1, scan_progress = $2, scan_counts = $3, updated_at = $4 WHERE id = $5 AND status = 'scanning'")
        .bind(phase)
        .bind(progress)
        .bind(counts)
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Completes a scan: the account becomes `active` with its last sync time.
pub async fn finish_scan(db: &Db, id: &str, counts: &str) -> Result<()> {
    let now = now_ms();
    sqlx::query("UPDATE accounts SET status = 'active', status_message = NULL, scan_phase = 'done', scan_progress = 100, scan_counts = $1, last_sync_at = $2, updated_at = $2 WHERE id = $3 AND status = 'scanning'")
        .bind(counts)
        .bind(now)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn rename(db: &Db, org_id: &str, id: &str, name: &str) -> Result<bool> {
    let r = sqlx::query("UPDATE accounts SET name = $1, updated_at = $2 WHERE organization_id = $3 AND id = $4 AND status <> 'disconnected'")
        .bind(name)
        .bind(now_ms())
        .bind(org_id)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Disconnects: credentials are erased, the row stays (hidden from lists) for the audit trail.
pub async fn disconnect(db: &Db, org_id: &str, id: &str) -> Result<bool> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE accounts SET status = 'disconnected', credentials_ciphertext = NULL, role_arn = NULL, scan_phase = NULL, disconnected_at = $1, updated_at = $1 \
         WHERE organization_id = $2 AND id = $3 AND status <> 'disconnected'",
    )
    .bind(now)
    .bind(org_id)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Stored (encrypted) credentials of an account.
pub async fn credentials(db: &Db, id: &str) -> Result<Option<String>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT credentials_ciphertext FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.and_then(|r| r.0))
}

/// Every linked, live account of every organization (for start-up scans).
pub async fn all_linked(db: &Db) -> Result<Vec<Account>> {
    Ok(sqlx::query_as::<_, Account>(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLS} FROM accounts WHERE aws_account_id IS NOT NULL AND status IN ('scanning', 'active', 'error') ORDER BY created_at"
    )))
    .fetch_all(&db.pool)
    .await?)
}

/// An account by id, whatever its organization or status (internal use by actors).
pub async fn by_id(db: &Db, id: &str) -> Result<Option<Account>> {
    Ok(sqlx::query_as::<_, Account>(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Records a successful periodic discovery.
pub async fn touch_sync(db: &Db, id: &str) -> Result<()> {
    let now = now_ms();
    sqlx::query("UPDATE accounts SET last_sync_at = $1, updated_at = $1 WHERE id = $2 AND status = 'active'")
        .bind(now)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Decrypts an account's stored credentials: the value must be bound to this account.
pub fn open_credentials(
    keyring: &Keyring,
    account_id: &str,
    stored: &str,
) -> std::result::Result<Vec<u8>, CryptoError> {
    keyring.decrypt(&account_aad(account_id), stored)
}

/// What `rotate-secrets` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Values re-encrypted under the current key (including upgraded `v1` values).
    pub reencrypted: usize,
    /// Values already under the current key in the current form.
    pub current: usize,
    /// Accounts whose value no key in the keyring opens (or that was changed meanwhile),
    /// with the reason; they are left as they are.
    pub failed: Vec<(String, String)>,
}

/// Re-encrypts every stored credential under the keyring's current key, bound to its account
/// (key rotation). Each row is swapped only if it still holds the value that was read, so a
/// concurrent relink is never overwritten.
pub async fn reencrypt_all(db: &Db, keyring: &Keyring) -> Result<RotationReport> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, credentials_ciphertext FROM accounts WHERE credentials_ciphertext IS NOT NULL ORDER BY created_at",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut report = RotationReport::default();
    for (id, stored) in rows {
        if keyring.is_current(&stored) {
            // Still prove it opens: a value moved from another account is reported.
            match open_credentials(keyring, &id, &stored) {
                Ok(_) => report.current += 1,
                Err(e) => report.failed.push((id, e.to_string())),
            }
            continue;
        }
        let fresh = match keyring.reencrypt(&account_aad(&id), &stored) {
            Ok(v) => v,
            Err(e) => {
                report.failed.push((id, e.to_string()));
                continue;
            }
        };
        let r = sqlx::query(
            "UPDATE accounts SET credentials_ciphertext = $1 WHERE id = $2 AND credentials_ciphertext = $3",
        )
        .bind(&fresh)
        .bind(&id)
        .bind(&stored)
        .execute(&db.pool)
        .await?;
        if r.rows_affected() == 1 {
            report.reencrypted += 1;
        } else {
            report
                .failed
                .push((id, "changed during rotation; run again".into()));
        }
    }
    Ok(report)
}
