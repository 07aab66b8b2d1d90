use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::state::AppState;

pub struct HealthApi;

#[derive(Object)]
pub struct HealthStatus {
    pub status: String,
    pub version: String,
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The database answers.
    #[oai(status = 200)]
    Ready(Json<HealthStatus>),
    /// The database does not answer, the job queue's worker is down, or the server is
    /// shutting down.
    #[oai(status = 503)]
    NotReady(Json<HealthStatus>),
}

fn ok() -> HealthStatus {
    HealthStatus {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

async fn ready(state: &AppState) -> ReadyResponse {
    let version = env!("CARGO_PKG_VERSION").to_string();
    match state.db.ping().await {
        Ok(()) => {
            let rt = state.jobs.runtime();
            let queue = rt.health();
            if rt.is_shutting_down() {
                return ReadyResponse::NotReady(Json(HealthStatus {
                    status: "shutting down".into(),
                    version,
                }));
            }
            if !queue.alive {
                return ReadyResponse::NotReady(Json(HealthStatus {
                    status: format!(
                        "job queue down: {}",
                        queue
                            .last_error
                            .as_deref()
                            .unwrap_or("the worker is starting")
                    ),
                    version,
                }));
            }
            ReadyResponse::Ready(Json(HealthStatus {
                status: "ready".into(),
                version,
            }))
        }
        Err(e) => {
            tracing::warn!(component = "CORE-API", error = %e, "database not reachable");
            ReadyResponse::NotReady(Json(HealthStatus {
                status: "database unreachable".into(),
                version,
            }))
        }
    }
}

/// `/healthz` at the root, for load balancers.
#[poem::handler]
pub async fn healthz_plain() -> poem::web::Json<serde_json::Value> {
    let h = ok();
    poem::web::Json(serde_json::json!({"status": h.status, "version": h.version}))
}

/// `/readyz` at the root, for load balancers.
#[poem::handler]
pub async fn readyz_plain(state: Data<&AppState>) -> poem::Response {
    use poem::IntoResponse;
    ready(&state).await.into_response()
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Process liveness (also served at `/healthz`).
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<HealthStatus> {
        Json(ok())
    }

    /// Readiness: the database is reachable and the job queue's worker is polling (also
    /// served at `/readyz`); 503 while shutting down.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyResponse {
        ready(&state).await
    }
}
