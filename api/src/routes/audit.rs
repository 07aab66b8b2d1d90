use chrono::{DateTime, SecondsFormat, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use spot_models::audit::{self, AuditFilter, AuditRecord};

use super::{ts, ApiTags};
use crate::auth::{sha256_hex, BearerAuth};
use crate::error::ApiError;
use crate::state::AppState;

pub struct AuditApi;

/// Who performed an action.
#[derive(Object)]
pub struct Actor {
    /// `user`, `system`, `impersonation` (a platform admin acting as `user_id`) or `anonymous`.
    pub kind: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    /// For `system`: the component id (e.g. `CORE-AUDIT-RETENTION`).
    pub component: Option<String>,
    /// For `impersonation`: the platform admin.
    pub admin_id: Option<String>,
}

#[derive(Object)]
pub struct Diff {
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Object)]
pub struct AuditEntry {
    pub id: String,
    pub organization_id: Option<String>,
    /// Position in the organization's hash chain.
    pub seq: i64,
    /// UTC, millisecond precision.
    pub timestamp: DateTime<Utc>,
    pub actor: Actor,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    /// `success`, `failed` or `denied`.
    pub outcome: String,
    pub status_code: Option<i64>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: String,
    pub diff: Diff,
    pub prev_hash: String,
    /// SHA-256 over `prev_hash`, a newline and the canonical JSON of the record.
    pub hash: String,
}

#[derive(Object)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct BrokenLinkView {
    pub id: String,
    pub seq: i64,
    pub timestamp: Option<DateTime<Utc>>,
    pub reason: String,
}

#[derive(Object)]
pub struct VerifyResult {
    pub ok: bool,
    pub checked: i64,
    pub first_broken: Option<BrokenLinkView>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failed,
    Denied,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
        }
    }
}

#[derive(ApiResponse)]
pub enum ExportResponse {
    /// The export; `X-Content-SHA256` is the hex SHA-256 of exactly these bytes.
    #[oai(status = 200)]
    Ok(
        Binary<Vec<u8>>,
        #[oai(header = "X-Content-SHA256")] String,
        #[oai(header = "Content-Disposition")] String,
    ),
}

pub fn entry(r: AuditRecord) -> AuditEntry {
    let diff: serde_json::Value = serde_json::from_str(&r.diff).unwrap_or(serde_json::Value::Null);
    AuditEntry {
        id: r.id,
        organization_id: r.organization_id,
        seq: r.seq,
        timestamp: ts(r.ts),
        actor: Actor {
            kind: r.actor_kind,
            user_id: r.actor_user_id,
            email: r.actor_email,
            component: r.actor_component,
            admin_id: r.actor_admin_id,
        },
        action: r.action,
        resource_type: r.resource_type,
        resource_id: r.resource_id,
        outcome: r.outcome,
        status_code: r.status_code,
        source_ip: r.source_ip,
        user_agent: r.user_agent,
        request_id: r.request_id,
        diff: Diff {
            before: diff.get("before").cloned().filter(|v| !v.is_null()),
            after: diff.get("after").cloned().filter(|v| !v.is_null()),
        },
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

fn parse_time(field: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|d| Some(d.timestamp_millis()))
            .map_err(|_| {
                ApiError::field(
                    field,
                    format!("{field} must be an RFC 3339 timestamp, e.g. 2026-01-31T12:00:00Z"),
                )
            }),
    }
}

#[allow(clippy::too_many_arguments)]
fn filter(
    from: &Option<String>,
    to: &Option<String>,
    actor: Option<String>,
    action: Option<String>,
    resource_type: Option<String>,
    outcome: Option<Outcome>,
) -> Result<AuditFilter, ApiError> {
    let f = AuditFilter {
        from_ms: parse_time("from", from)?,
        to_ms: parse_time("to", to)?,
        actor: actor.filter(|s| !s.is_empty()),
        action: action.filter(|s| !s.is_empty()),
        resource_type: resource_type.filter(|s| !s.is_empty()),
        outcome: outcome.map(|o| o.as_str().to_string()),
    };
    if let (Some(a), Some(b)) = (f.from_ms, f.to_ms) {
        if a > b {
            return Err(ApiError::field("from", "from must not be after to"));
        }
    }
    Ok(f)
}

const EXPORT_MAX_ROWS: i64 = 100_000;

#[OpenApi(prefix_path = "/audit-logs", tag = "ApiTags::Audit")]
impl AuditApi {
    /// List audit records, newest first, with filters and cursor pagination.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/", method = "get", operation_id = "listAuditLogs")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Inclusive lower bound (RFC 3339).
        from: Query<Option<String>>,
        /// Inclusive upper bound (RFC 3339).
        to: Query<Option<String>>,
        /// User id, e-mail or system component.
        actor: Query<Option<String>>,
        /// Action prefix, e.g. `invite.`.
        action: Query<Option<String>>,
        resource_type: Query<Option<String>>,
        outcome: Query<Option<Outcome>>,
        cursor: Query<Option<String>>,
        /// Page size, 1–200 (default 50).
        limit: Query<Option<i64>>,
    ) -> poem::Result<Json<AuditPage>> {
        let f = filter(&from, &to, actor.0, action.0, resource_type.0, outcome.0)?;
        let limit = limit.0.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::field("limit", "limit must be between 1 and 200").into());
        }
        let cursor = match cursor.0.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(c) => Some(
                c.parse::<i64>()
                    .map_err(|_| ApiError::field("cursor", "cursor is not valid"))?,
            ),
        };
        let (rows, next) = audit::list(&state.db, &auth.0.org_id, &f, cursor, limit)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(AuditPage {
            items: rows.into_iter().map(entry).collect(),
            next_cursor: next.map(|n| n.to_string()),
        }))
    }

    /// Recompute the organization's hash chain and report the first broken link.
    #[oai(path = "/verify", method = "get", operation_id = "verifyAuditChain")]
    async fn verify(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<VerifyResult>> {
        let r = audit::verify(&state.db, &auth.0.org_id)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(VerifyResult {
            ok: r.ok,
            checked: r.checked,
            first_broken: r.first_broken.map(|b| BrokenLinkView {
                id: b.id,
                seq: b.seq,
                timestamp: (b.ts > 0).then(|| ts(b.ts)),
                reason: b.reason,
            }),
        }))
    }

    /// Export records of a time range as CSV or JSON (oldest first, at most 100,000 rows).
    /// The `X-Content-SHA256` header is the SHA-256 of the exact bytes returned.
    #[oai(path = "/export", method = "get", operation_id = "exportAuditLogs")]
    async fn export(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        format: Query<Option<ExportFormat>>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
    ) -> poem::Result<ExportResponse> {
        let f = filter(&from, &to, None, None, None, None)?;
        let rows = audit::export(&state.db, &auth.0.org_id, &f, EXPORT_MAX_ROWS)
            .await
            .map_err(ApiError::from)?;
        let format = format.0.unwrap_or(ExportFormat::Csv);
        let (bytes, ext) = match format {
            ExportFormat::Json => {
                let items: Vec<serde_json::Value> = rows.iter().map(record_json).collect();
                let b = serde_json::to_vec_pretty(&items)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                (b, "json")
            }
            ExportFormat::Csv => (to_csv(&rows)?, "csv"),
        };
        let checksum = sha256_hex(&bytes);
        let name = format!("audit-{}.{ext}", Utc::now().format("%Y%m%dT%H%M%SZ"));
        Ok(ExportResponse::Ok(
            Binary(bytes),
            checksum,
            format!("attachment; filename=\"{name}\""),
        ))
    }

    /// One audit record with its before/after diff.
    #[oai(path = "/:id", method = "get", operation_id = "getAuditLog")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<AuditEntry>> {
        let r = audit::get(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("audit record"))?;
        Ok(Json(entry(r)))
    }
}

fn iso(ms: i64) -> String {
    ts(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn record_json(r: &AuditRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "seq": r.seq, "organization_id": r.organization_id, "timestamp": iso(r.ts),
        "actor_kind": r.actor_kind, "actor_user_id": r.actor_user_id, "actor_email": r.actor_email,
        "actor_component": r.actor_component, "actor_admin_id": r.actor_admin_id,
        "action": r.action, "resource_type": r.resource_type, "resource_id": r.resource_id,
        "outcome": r.outcome, "status_code": r.status_code, "source_ip": r.source_ip,
        "user_agent": r.user_agent, "request_id": r.request_id,
        "diff": serde_json::from_str::<serde_json::Value>(&r.diff).unwrap_or(serde_json::Value::Null),
        "prev_hash": r.prev_hash, "hash": r.hash,
    })
}

/// A text cell that a spreadsheet must not read as a formula (OWASP "CSV injection"): a cell
/// starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`. The csv
/// writer quotes separators, quotes and line breaks. (The JSON export keeps values verbatim.)
fn csv_cell(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_string()
    }
}

fn to_csv(rows: &[AuditRecord]) -> Result<Vec<u8>, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| ApiError::Internal(e.to_string());
    w.write_record([
        "id",
        "seq",
        "timestamp",
        "actor_kind",
        "actor_user_id",
        "actor_email",
        "actor_component",
        "actor_admin_id",
        "action",
        "resource_type",
        "resource_id",
        "outcome",
        "status_code",
        "source_ip",
        "user_agent",
        "request_id",
        "diff",
        "prev_hash",
        "hash",
    ])
    .map_err(err)?;
    for r in rows {
        let o = |v: &Option<String>| csv_cell(v.as_deref().unwrap_or_default());
        w.write_record([
            csv_cell(&r.id),
            r.seq.to_string(),
            iso(r.ts),
            csv_cell(&r.actor_kind),
            o(&r.actor_user_id),
            o(&r.actor_email),
            o(&r.actor_component),
            o(&r.actor_admin_id),
            csv_cell(&r.action),
            csv_cell(&r.resource_type),
            o(&r.resource_id),
            csv_cell(&r.outcome),
            r.status_code.map(|c| c.to_string()).unwrap_or_default(),
            o(&r.source_ip),
            o(&r.user_agent),
            csv_cell(&r.request_id),
            csv_cell(&r.diff),
            r.prev_hash.clone(),
            r.hash.clone(),
        ])
        .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| ApiError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralized() {
        for v in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(csv_cell(v), format!("'{v}"));
        }
        for v in ["", "alice@example.com", "a=b", "POST /api/x"] {
            assert_eq!(csv_cell(v), v);
        }
    }
}
