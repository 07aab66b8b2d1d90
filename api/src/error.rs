//! API errors and their single mapping to HTTP. Every response error body has the shape
//! `{"error": {"code": "...", "message": "...", "field": "..."?}}`.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use serde::Serialize;
use spot_models::DbError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request was well-formed JSON but a field is invalid (422).
    #[error("{message}")]
    Validation {
        field: Option<String>,
        message: String,
    },
    /// The body is not valid JSON (400).
    #[error("{0}")]
    MalformedJson(String),
    /// The request could not be read at all (400).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Missing, or belonging to another organization: the two are indistinguishable.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict {
        field: Option<String>,
        message: String,
    },
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Details are logged, never returned.
    #[error("internal error")]
    Internal(String),
}

/// Every `code` an error body can carry (documented as the `ApiErrorDetail.code` enum).
pub const ERROR_CODES: &[&str] = &[
    "malformed_json",
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "validation_failed",
    "rate_limited",
    "internal",
    "unavailable",
];

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MalformedJson(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation_failed",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field_name(&self) -> Option<&str> {
        match self {
            ApiError::Validation { field, .. } | ApiError::Conflict { field, .. } => {
                field.as_deref()
            }
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorInner<'a>,
}

#[derive(Serialize)]
struct ErrorInner<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

/// Builds the JSON error response for any status.
pub fn json_error(
    status: StatusCode,
    code: &str,
    message: String,
    field: Option<&str>,
) -> Response {
    let body = ErrorBody {
        error: ErrorInner {
            code,
            message,
            field,
        },
    };
    let text = serde_json::to_string(&body).unwrap_or_else(|_| {
        "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}".into()
    });
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(text)
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        if let ApiError::Internal(detail) = self {
            tracing::error!(component = "CORE-API", %detail, "internal error");
        }
        let mut resp = json_error(
            self.status(),
            self.code(),
            self.to_string(),
            self.field_name(),
        );
        if let ApiError::RateLimited { retry_after_secs } = self {
            if let Ok(v) = retry_after_secs.to_string().parse() {
                resp.headers_mut()
                    .insert(poem::http::header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        poem::error::ResponseError::as_response(&self)
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            // A unique index refused the write. The database's own message names tables,
            // columns and sometimes the conflicting value (possibly another organization's),
            // so it is only logged; messages the models layer wrote itself are scoped to
            // the caller's organization and kept.
            DbError::Conflict(m) => {
                let from_database = m.starts_with("UNIQUE constraint failed")
                    || m.starts_with("duplicate key value")
                    || m.contains("unique constraint");
                if from_database {
                    tracing::info!(component = "CORE-API", detail = %m, "unique violation");
                    ApiError::Conflict {
                        field: None,
                        message: "conflicts with an existing resource".into(),
                    }
                } else {
                    ApiError::Conflict {
                        field: None,
                        message: m,
                    }
                }
            }
            DbError::Sqlx(e) => {
                // Pool exhaustion or a lost connection is transient: 503, retry later.
                let msg = e.to_string();
                // (sqlx's messages for PoolTimedOut, PoolClosed and Io; SQLite's busy/locked.)
                let transient = [
                    "pool timed out",
                    "closed pool",
                    "error communicating with database",
                    "database is locked",
                    "database table is locked",
                ]
                .iter()
                .any(|s| msg.contains(s));
                if transient {
                    tracing::warn!(component = "CORE-API", error = %msg, "database unavailable");
                    ApiError::Unavailable("database busy".into())
                } else {
                    ApiError::Internal(format!("database error: {msg}"))
                }
            }
            DbError::Migrate(e) => ApiError::Internal(format!("migration: {e}")),
            DbError::InvalidUrl(e) => ApiError::Internal(format!("database url: {e}")),
            DbError::Corrupt(e) => ApiError::Internal(format!("corrupt stored data: {e}")),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
