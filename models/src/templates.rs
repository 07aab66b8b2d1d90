//! Node templates of an organization (the spec is JSON, validated by the engine before it
//! reaches here). Exactly one template per organization is the default — a partial unique
//! index enforces it and [`set_default`] switches it in one transaction. A cluster policy
//! may point at a template; such a template cannot be deleted.

use serde::Serialize;

use crate::error::Result;
use crate::{new_id, now_ms, Db};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub description: Option<String>,
    /// JSON `spot_engine::template::TemplateSpec`.
    pub spec: String,
    pub is_default: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str =
    "id, organization_id, name, description, spec, is_default, created_by, created_at, updated_at";

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<TemplateRow>> {
    Ok(sqlx::query_as::<_, TemplateRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM node_templates WHERE organization_id = $1 ORDER BY is_default DESC, name"
    )))
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?)
}

pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<TemplateRow>> {
    Ok(
        sqlx::query_as::<_, TemplateRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM node_templates WHERE organization_id = $1 AND id = $2"
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?,
    )
}

/// Whether `name` is taken in the organization (by another template than `except`).
pub async fn name_taken(db: &Db, org_id: &str, name: &str, except: Option<&str>) -> Result<bool> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT id FROM node_templates WHERE organization_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.is_some_and(|(id,)| Some(id.as_str()) != except))
}

pub struct NewTemplate<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub spec: &'a str,
    pub created_by: Option<&'a str>,
}

/// Inserts a template. The organization's first template becomes its default. A taken
/// name is [`crate::DbError::Conflict`].
pub async fn insert(db: &Db, org_id: &str, t: NewTemplate<'_>) -> Result<TemplateRow> {
    let id = new_id();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM node_templates WHERE organization_id = $1")
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query(
        "INSERT INTO node_templates (id, organization_id, name, description, spec, is_default, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(t.name)
    .bind(t.description)
    .bind(t.spec)
    .bind(i64::from(count == 0))
    .bind(t.created_by)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    get(db, org_id, &id)
        .await?
        .ok_or_else(|| crate::DbError::Corrupt("template vanished".into()))
}

/// Replaces a template's name, description and spec. False when it does not exist.
pub async fn update(
    db: &Db,
    org_id: &str,
    id: &str,
    name: &str,
    description: Option<&str>,
    spec: &str,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE node_templates SET name = $1, description = $2, spec = $3, updated_at = $4 WHERE organization_id = $5 AND id = $6",
    )
    .bind(name)
    .bind(description)
    .bind(spec)
    .bind(now_ms())
    .bind(org_id)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Makes `id` the organization's only default, atomically. False when it does not exist.
pub async fn set_default(db: &Db, org_id: &str, id: &str) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    let exists: Option<(String,)> =
        sqlx::query_as("SELECT id FROM node_templates WHERE organization_id = $1 AND id = $2")
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE node_templates SET is_default = 0 WHERE organization_id = $1 AND is_default = 1 AND id <> $2",
    )
    .bind(org_id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE node_templates SET is_default = 1 WHERE organization_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Clusters (id, name) whose policy uses the template.
pub async fn used_by(db: &Db, org_id: &str, id: &str) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT c.id, c.name FROM cluster_policies p JOIN clusters c ON c.id = p.cluster_id \
         WHERE p.organization_id = $1 AND p.template_id = $2 ORDER BY c.name",
    )
    .bind(org_id)
    .bind(id)
    .fetch_all(&db.pool)
    .await?)
}

/// Every template of the organization that a policy uses, with its clusters (id, name):
/// (template id, cluster id, cluster name), ordered by cluster name.
pub async fn users_in_org(db: &Db, org_id: &str) -> Result<Vec<(String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT p.template_id, c.id, c.name FROM cluster_policies p JOIN clusters c ON c.id = p.cluster_id \
         WHERE p.organization_id = $1 AND p.template_id IS NOT NULL ORDER BY c.name",
    )
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?)
}

/// What [`delete`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    NotFound,
    /// Cluster names whose policy uses it.
    InUse(Vec<String>),
}

/// Deletes a template no policy uses. When it was the default, the oldest remaining
/// template becomes the default (so an organization with templates always has one).
pub async fn delete(db: &Db, org_id: &str, id: &str) -> Result<Deleted> {
    let Some(t) = get(db, org_id, id).await? else {
        return Ok(Deleted::NotFound);
    };
    let users = used_by(db, org_id, id).await?;
    if !users.is_empty() {
        return Ok(Deleted::InUse(users.into_iter().map(|(_, n)| n).collect()));
    }
    let mut tx = db.begin_write().await?;
    let r = sqlx::query("DELETE FROM node_templates WHERE organization_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if t.is_default == 1 {
        let next: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM node_templates WHERE organization_id = $1 ORDER BY created_at, id LIMIT 1",
        )
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((next,)) = next {
            sqlx::query("UPDATE node_templates SET is_default = 1 WHERE id = $1")
                .bind(next)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(if r.rows_affected() == 1 {
        Deleted::Deleted
    } else {
        Deleted::NotFound
    })
}

/// The template a cluster's policy points at, if any.
pub async fn of_cluster(db: &Db, org_id: &str, cluster_id: &str) -> Result<Option<TemplateRow>> {
    Ok(
        sqlx::query_as::<_, TemplateRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM node_templates t JOIN cluster_policies p ON p.template_id = t.id \
         WHERE p.organization_id = $1 AND p.cluster_id = $2",
            COLS.split(", ")
                .map(|c| format!("t.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(org_id)
        .bind(cluster_id)
        .fetch_optional(&db.pool)
        .await?,
    )
}
