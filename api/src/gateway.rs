//! The one middleware every API request passes: request id and tracing span, client address,
//! authentication, the viewer write-guard, JSON errors, and automatic audit capture of every
//! mutating request (including denied and failed ones).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, LazyLock, Mutex};

use poem::http::{header, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use serde_json::Value;
use spot_models::audit::{self, NewAuditRecord};
use spot_models::{orgs, sessions};
use tracing::Instrument;

use crate::auth::{AuthCtx, Role};
use crate::error::{json_error, ApiError};
use crate::state::AppState;

/// Per-request facts handlers may need (client address for rate limits, request id).
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
    pub request_id: String,
}

/// What a handler tells the audit log about its mutation. The middleware supplies everything
/// else (actor, outcome, address, request id); a handler that says nothing still gets a row.
#[derive(Debug, Default)]
pub struct AuditDetails {
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// For unauthenticated requests (signup, login): the organization concerned.
    pub org_id: Option<String>,
    pub actor_user_id: Option<String>,
    pub actor_email: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditSlot(Arc<Mutex<AuditDetails>>);

impl AuditSlot {
    fn with<R>(&self, f: impl FnOnce(&mut AuditDetails) -> R) -> R {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// Names the action and the resource it touched.
    pub fn record(&self, action: &str, resource_type: &str, resource_id: Option<&str>) {
        self.with(|d| {
            d.action = Some(action.to_string());
            d.resource_type = Some(resource_type.to_string());
            d.resource_id = resource_id.map(str::to_string);
        });
    }

    pub fn diff(&self, before: Option<Value>, after: Option<Value>) {
        self.with(|d| {
            d.before = before;
            d.after = after;
        });
    }

    /// Identifies the organization and user for requests made before authentication.
    pub fn subject(&self, org_id: Option<&str>, user_id: Option<&str>, email: Option<&str>) {
        self.with(|d| {
            d.org_id = org_id.map(str::to_string);
            d.actor_user_id = user_id.map(str::to_string);
            d.actor_email = email.map(str::to_string);
        });
    }

    fn take(&self) -> AuditDetails {
        self.with(std::mem::take)
    }
}

fn is_mutating(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The client address: the peer, or behind trusted proxies the `X-Forwarded-For` entry the
/// outermost of them wrote (see [`crate::ratelimit::forwarded_client`]).
fn client_ip(req: &Request, trust_forwarded_for: bool, hops: usize) -> IpAddr {
    if trust_forwarded_for {
        let lines = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        if let Some(ip) = crate::ratelimit::forwarded_client(lines, hops) {
            return ip;
        }
    }
    req.remote_addr()
        .as_socket_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

async fn authenticate(state: &AppState, req: &Request) -> Option<AuthCtx> {
    let header_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Event streams also take the token from the query (EventSource cannot set headers).
    let query_token = || {
        let path = req.uri().path();
        if path != "/api/events" && path != "/api/admin/events" && path != "/api/admin/logs/stream"
        {
            return None;
        }
        req.uri()
            .query()?
            .split('&')
            .find_map(|kv| kv.strip_prefix("access_token="))
    };
    let token = header_token.or_else(query_token)?;
    let claims = state.jwt.decode(token.trim())?;
    let p = match sessions::principal(&state.db, &claims.sid).await {
        Ok(p) => p?,
        Err(e) => {
            tracing::error!(component = "CORE-AUTH", error = %e, "session lookup failed");
            return None;
        }
    };
    if p.user_id != claims.sub || p.organization_id != claims.org {
        return None;
    }
    // An impersonation session only accepts tokens naming its admin in `act`, and a token
    // with `act` only an impersonation session.
    if claims.act.as_ref().map(|a| a.sub.as_str()) != p.impersonator_id.as_deref() {
        return None;
    }
    Some(AuthCtx {
        user_id: p.user_id,
        email: p.email,
        org_id: p.organization_id,
        role: Role::parse(&p.role)?,
        super_admin: p.platform_role.as_deref() == Some("super_admin"),
        session_id: p.session_id,
        impersonator_id: p.impersonator_id,
    })
}

/// Converts any error into the JSON error shape, naming the offending field when the
/// framework's message does.
fn error_to_response(err: poem::Error) -> Response {
    if err.is::<ApiError>() {
        return err.into_response();
    }
    let status = err.status();
    let message = err.to_string();
    let (code, status, field) = match status {
        StatusCode::BAD_REQUEST => classify_parse_error(&message),
        StatusCode::UNAUTHORIZED => ("unauthorized", status, None),
        StatusCode::FORBIDDEN => ("forbidden", status, None),
        StatusCode::NOT_FOUND => ("not_found", status, None),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", status, None),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", status, None),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", status, None),
        s if s.is_client_error() => ("bad_request", s, None),
        s => {
            tracing::error!(component = "CORE-API", error = %message, "unhandled error");
            ("internal", s, None)
        }
    };
    let message = match code {
        "unauthorized" => "authentication required: send a valid access token".to_string(),
        "internal" => "internal error".to_string(),
        _ => message,
    };
    json_error(status, code, message, field.as_deref())
}

/// poem-openapi reports both unreadable JSON and schema mismatches as 400. Unreadable bodies
/// stay 400 (`malformed_json`); a body that parsed but does not fit the schema (wrong type,
/// unknown or missing field) becomes 422 with the field named.
fn classify_parse_error(message: &str) -> (&'static str, StatusCode, Option<String>) {
    let lower = message.to_lowercase();
    let syntax = [
        "expected value",
        "eof while parsing",
        "expected `",
        "trailing characters",
        "key must be a string",
        "invalid escape",
        "control character",
        "expected ident",
    ];
    if syntax.iter().any(|s| lower.contains(s)) {
        return ("malformed_json", StatusCode::BAD_REQUEST, None);
    }
    if let Some(f) = field_in(message) {
        return (
            "validation_failed",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(f),
        );
    }
    ("bad_request", StatusCode::BAD_REQUEST, None)
}

/// Extracts a field name from messages such as ``unknown field `foo` `` or
/// `(occurred while parsing "email")` or ``properties "x" is required``.
fn field_in(message: &str) -> Option<String> {
    for (open, close) in [
        ("field `", "`"),
        ("occurred while parsing \"", "\""),
        ("properties \"", "\""),
        ("property \"", "\""),
        ("field \"", "\""),
    ] {
        if let Some(start) = message.rfind(open) {
            let rest = &message[start + open.len()..];
            if let Some(end) = rest.find(close) {
                let f = &rest[..end];
                if !f.is_empty()
                    && f.len() < 64
                    && !f.chars().next().is_some_and(|c| c.is_uppercase())
                {
                    return Some(f.to_string());
                }
            }
        }
    }
    None
}

/// Path segments that are identifiers rather than names.
fn looks_like_id(seg: &str) -> bool {
    seg.len() >= 16 && seg.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn default_resource(path: &str) -> (String, Option<String>) {
    let segs: Vec<&str> = path
        .trim_start_matches("/api/")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let names: Vec<&str> = segs.iter().copied().filter(|s| !looks_like_id(s)).collect();
    let id = segs
        .iter()
        .copied()
        .rfind(|s| looks_like_id(s))
        .map(str::to_string);
    (
        if names.is_empty() {
            "api".into()
        } else {
            names.join(".")
        },
        id,
    )
}

/// The route that accepts the large (model-sized) bodies, for super-admins only.
const MODEL_UPLOAD_PATH: &str = "/api/admin/risk/models";

/// Whether the request carries a valid agent token (checked before an agent's body is read;
/// the route checks it again and answers the refusal).
async fn agent_token_valid(state: &AppState, req: &Request) -> bool {
    let Some(token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    matches!(
        spot_models::agents::authenticate(&state.db, token.trim()).await,
        Ok(Some(_))
    )
}

pub async fn gateway<E: Endpoint>(ep: E, mut req: Request) -> poem::Result<Response> {
    let Some(state) = req.data::<AppState>().cloned() else {
        return Ok(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "state missing".into(),
            None,
        ));
    };
    let rid = request_id(&req);
    let ip = client_ip(
        &req,
        state.cfg.trust_forwarded_for,
        state.cfg.trusted_proxy_hops,
    );
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect::<String>());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span =
        tracing::info_span!("request", request_id = %rid, component = "CORE-API", %method, %path);

    async move {
        let auth = authenticate(&state, &req).await;
        // Members of a soft-deleted organization: their organization is gone (404).
        let org_deleted =
            auth.is_none()
                && path.starts_with("/api/")
                && crate::console::token_of_deleted_org(&state, &req).await;
        if let Some(a) = &auth {
            req.extensions_mut().insert(a.clone());
        }
        req.extensions_mut().insert(ClientInfo {
            ip,
            user_agent: user_agent.clone(),
            request_id: rid.clone(),
        });
        // The agent API audits what matters itself (connect, safe mode, commands), not
        // every heartbeat and delta.
        let mutating = is_mutating(&method)
            && path.starts_with("/api/")
            && !crate::routes::agent::is_agent_path(&path);
        let slot = AuditSlot::default();
        req.extensions_mut().insert(slot.clone());

        // Bodies are buffered under a hard cap, whether or not Content-Length is sent.
        let mut too_large = false;
        // Model uploads have their own, larger cap.
        let cap = if path == MODEL_UPLOAD_PATH {
            state.cfg.max_model_bytes + 64 * 1024
        } else if crate::routes::agent::is_view_path(&path) {
            // Agent snapshots and deltas of large clusters.
            crate::routes::agent::MAX_VIEW_BYTES.max(state.cfg.max_body_bytes)
        } else {
            state.cfg.max_body_bytes
        };
        // Authenticate first, then read the body: a caller the route would refuse gets no
        // byte of its body buffered. The model upload (the large cap) is answered 401/403 here;
        // elsewhere an unauthenticated caller's body is dropped unread and the route answers
        // (401, or 404 for an unknown route). Public routes (sign-in/up, refresh, invites,
        // password reset under /api/auth/) read under the ordinary cap; agent routes only
        // with a valid agent token.
        let mut refused_early = None;
        let mut read_body = is_mutating(&method);
        if read_body {
            if path == MODEL_UPLOAD_PATH {
                refused_early = match &auth {
                    None => Some(ApiError::Unauthorized(
                        "authentication required: send a valid access token".into(),
                    )),
                    Some(a) if !a.super_admin => Some(ApiError::Forbidden(
                        "only the platform super-admin manages risk models".into(),
                    )),
                    Some(_) => None,
                };
                read_body = refused_early.is_none();
            } else if crate::routes::agent::is_agent_path(&path) {
                read_body = agent_token_valid(&state, &req).await;
            } else if auth.is_none() && !path.starts_with("/api/auth/") {
                read_body = false;
            } else if mutating
                && !path.starts_with("/api/auth/")
                && auth
                    .as_ref()
                    .is_some_and(|a| a.role == Role::Viewer && a.impersonator_id.is_none())
            {
                // A viewer's write is refused below (403) whatever it carries.
                read_body = false;
            }
            if !read_body {
                req.set_body(poem::Body::empty());
            }
        }
        if read_body {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > cap) {
                too_large = true;
            } else {
                match req.take_body().into_bytes_limit(cap).await {
                    Ok(bytes) => req.set_body(bytes),
                    Err(_) => too_large = true,
                }
            }
        }
        let viewer_write = mutating
            && !path.starts_with("/api/auth/")
            && auth
                .as_ref()
                .is_some_and(|a| a.role == Role::Viewer && a.impersonator_id.is_none());
        let mut resp = if let Some(e) = refused_early {
            e.into_response()
        } else if too_large {
            json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body exceeds the limit of {cap} bytes"),
                None,
            )
        } else if org_deleted {
            ApiError::NotFound("organization").into_response()
        } else if viewer_write {
            ApiError::Forbidden("viewers have read-only access".into()).into_response()
        } else {
            match ep.call(req).await {
                Ok(r) => r.into_response(),
                Err(e) => error_to_response(e),
            }
        };
        let status = resp.status();
        if let Ok(v) = rid.parse() {
            resp.headers_mut().insert("x-request-id", v);
        }
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), "request");
        }

        // During impersonation every request is audited, reads included (in the customer's
        // chain, with both identities).
        let impersonated = path.starts_with("/api/")
            && auth.as_ref().is_some_and(|a| a.impersonator_id.is_some());
        if mutating || impersonated {
            let d = slot.take();
            let outcome = if status.is_success() || status.is_redirection() {
                "success"
            } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                "denied"
            } else {
                "failed"
            };
            let (default_type, default_id) = default_resource(&path);
            let (org_id, actor_kind, actor_user_id, actor_email, actor_admin_id) = match &auth {
                Some(a) => (
                    Some(a.org_id.clone()),
                    if a.impersonator_id.is_some() {
                        "impersonation"
                    } else {
                        "user"
                    },
                    Some(a.user_id.clone()),
                    Some(a.email.clone()),
                    a.impersonator_id.clone(),
                ),
                None => (
                    d.org_id.clone(),
                    if d.actor_user_id.is_some() || d.actor_email.is_some() {
                        "user"
                    } else {
                        "anonymous"
                    },
                    d.actor_user_id.clone(),
                    d.actor_email.clone(),
                    None,
                ),
            };
            let rec = NewAuditRecord {
                organization_id: org_id,
                actor_kind: actor_kind.into(),
                actor_user_id,
                actor_email,
                actor_component: None,
                actor_admin_id,
                action: d.action.unwrap_or_else(|| format!("{method} {path}")),
                resource_type: d.resource_type.unwrap_or(default_type),
                resource_id: d.resource_id.or(default_id),
                outcome: outcome.into(),
                status_code: Some(i64::from(status.as_u16())),
                source_ip: Some(ip.to_string()),
                user_agent,
                request_id: rid.clone(),
                before: d.before,
                after: d.after,
            };
            // Anonymous requests that named no organization (unknown routes, bad tokens,
            // failed signups) add nothing to the shared platform chain, except failed logins,
            // at most one entry per client address and e-mail a minute.
            let rec = if auth.is_none() && rec.organization_id.is_none() {
                FAILED_LOGINS.admit(rec, spot_models::now_ms())
            } else {
                Some(rec)
            };
            // `append` retries busy databases; if the record still cannot be written, a
            // successful request is not reported as done without its audit record.
            if let Some(rec) = rec {
                if let Err(e) = audit::append(&state.db, rec).await {
                    tracing::error!(component = "CORE-AUDIT", error = %e, status = status.as_u16(), "audit append failed");
                    if status.is_success() || status.is_redirection() {
                        resp = ApiError::Unavailable(
                            "the request was processed but could not be recorded in the audit log; check the resource before retrying".into(),
                        )
                        .into_response();
                        if let Ok(v) = rid.parse() {
                            resp.headers_mut().insert("x-request-id", v);
                        }
                    }
                }
            }
        }
        Ok(resp)
    }
    .instrument(span)
    .await
}

/// How often a failed login of one client address and e-mail reaches the platform chain.
pub const FAILED_LOGIN_WINDOW_MS: i64 = 60_000;
/// Above this many tracked (address, e-mail) pairs, expired ones are dropped.
const FAILED_LOGIN_TRACKED_MAX: usize = 10_000;

/// Rate limit of failed-login records in the platform chain: the first failure of an
/// (address, e-mail) pair in a window is recorded with `attempts`, the number of failures of
/// that pair since its previous record (this one included); the others are only counted.
#[derive(Default)]
pub struct FailedLogins(Mutex<HashMap<(String, String), (i64, u64)>>);

static FAILED_LOGINS: LazyLock<FailedLogins> = LazyLock::new(FailedLogins::default);

impl FailedLogins {
    /// The record to append for an anonymous request without an organization, if any: only
    /// failed logins, and only the first of their window.
    pub fn admit(&self, mut rec: NewAuditRecord, now_ms: i64) -> Option<NewAuditRecord> {
        if rec.action != "auth.login" || rec.outcome == "success" {
            return None;
        }
        let key = (
            rec.source_ip.clone().unwrap_or_default(),
            rec.actor_email.clone().unwrap_or_default(),
        );
        let attempts = {
            let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if m.len() >= FAILED_LOGIN_TRACKED_MAX {
                m.retain(|_, (start, _)| now_ms - *start < FAILED_LOGIN_WINDOW_MS);
            }
            let (start, pending) = m.entry(key).or_insert((i64::MIN, 0));
            *pending += 1;
            if now_ms.saturating_sub(*start) < FAILED_LOGIN_WINDOW_MS {
                return None;
            }
            let n = *pending;
            *start = now_ms;
            *pending = 0;
            n
        };
        rec.after = Some(serde_json::json!({
            "attempts": attempts,
            "window_secs": FAILED_LOGIN_WINDOW_MS / 1000,
        }));
        Some(rec)
    }
}

/// Looks up whether the org should see onboarding (no active account, wizard not dismissed).
pub async fn route_hint(
    state: &AppState,
    org: &orgs::Organization,
) -> Result<&'static str, ApiError> {
    let active = spot_models::accounts::has_active(&state.db, &org.id).await?;
    Ok(if active || org.onboarding_state.is_some() {
        "dashboard"
    } else {
        "onboarding"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_extracted_from_parser_messages() {
        assert_eq!(
            field_in("unknown field `nickname`, expected one of"),
            Some("nickname".into())
        );
        assert_eq!(
            field_in("failed to parse \"string\" (occurred while parsing \"email\")"),
            Some("email".into())
        );
        assert_eq!(field_in("no field here"), None);
    }

    fn login(outcome: &str, ip: &str, email: &str) -> NewAuditRecord {
        NewAuditRecord {
            action: "auth.login".into(),
            outcome: outcome.into(),
            source_ip: Some(ip.into()),
            actor_email: Some(email.into()),
            ..Default::default()
        }
    }

    #[test]
    fn failed_logins_reach_the_platform_chain_once_a_window_with_a_count() {
        let f = FailedLogins::default();
        let t = 1_000_000;
        let first = f
            .admit(login("denied", "1.2.3.4", "a@x"), t)
            .expect("first");
        assert_eq!(first.after.expect("after")["attempts"], 1);
        for i in 1..5 {
            assert!(f.admit(login("denied", "1.2.3.4", "a@x"), t + i).is_none());
        }
        // Another pair has its own window.
        assert!(f.admit(login("denied", "1.2.3.5", "a@x"), t + 5).is_some());
        assert!(f.admit(login("denied", "1.2.3.4", "b@x"), t + 5).is_some());
        // The next window's record carries the attempts counted since the last record.
        let next = f
            .admit(
                login("denied", "1.2.3.4", "a@x"),
                t + FAILED_LOGIN_WINDOW_MS,
            )
            .expect("next window");
        assert_eq!(next.after.expect("after")["attempts"], 5);
        // Successes and anything else anonymous are never admitted.
        assert!(f.admit(login("success", "9.9.9.9", "c@x"), t).is_none());
        let mut other = login("failed", "9.9.9.9", "c@x");
        other.action = "POST /api/nope".into();
        assert!(f.admit(other, t).is_none());
    }

    #[test]
    fn default_resource_splits_names_and_ids() {
        let (t, id) = default_resource("/api/org/invites/5b0c7a52-8f53-4a4e-9a57-6b0b0f8e8c11");
        assert_eq!(t, "org.invites");
        assert_eq!(id.as_deref(), Some("5b0c7a52-8f53-4a4e-9a57-6b0b0f8e8c11"));
    }
}
