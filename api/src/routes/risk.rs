//! MOD-AI-01 / MOD-VAL-01 (Flow 3): the risk model registry for super-admins. Uploads are
//! validated in a separate process under memory and CPU limits before they are stored;
//! graduation hot-swaps the model in every account and cluster actor (and, through Redis,
//! on every replica); rollback returns to the previously graduated model.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiResponse, Multipart, Object, OpenApi};
use sha2::Digest;
use spot_models::{jobs, risk as store};

use super::jobs::{enqueue, JobView};
use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::gateway::AuditSlot;
use crate::state::AppState;

pub struct RiskApi;

#[derive(Multipart)]
pub struct ModelUpload {
    /// The ONNX file (contract v1, see onnx/CONTRACT.md).
    pub file: Upload,
    /// Display name; defaults to the file name.
    pub name: Option<String>,
}

/// A registry entry. Status: uploaded → validated → graduated → retired.
#[derive(Object)]
pub struct ModelView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub sha256: String,
    pub size_bytes: i64,
    /// What validation checked (loads, contract inputs/outputs, contract vectors in [0, 1]).
    pub validation: serde_json::Value,
    pub uploaded_by: String,
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
    pub validated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub graduated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub retired_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Object)]
pub struct ModelList {
    pub items: Vec<ModelView>,
    pub active: ActiveModelView,
}

/// The model serving decisions now. `degraded` means the static heuristic took over
/// because no model could be loaded.
#[derive(Object)]
pub struct ActiveModelView {
    /// Registry id, `shipped:risk-v1`, or `heuristic`.
    pub id: String,
    pub name: String,
    /// `onnx:tract`, `onnx:onnxruntime` or `heuristic`.
    pub runtime: String,
    pub degraded: bool,
    pub load_error: Option<String>,
}

#[derive(ApiResponse)]
pub enum UploadResponse {
    /// Validated and stored.
    #[oai(status = 201)]
    Created(Json<ModelView>),
}

fn view(m: store::ModelRow) -> ModelView {
    ModelView {
        validation: serde_json::from_str(&m.validation).unwrap_or_default(),
        id: m.id,
        name: m.name,
        status: m.status,
        sha256: m.sha256,
        size_bytes: m.size_bytes,
        uploaded_by: m.uploaded_by,
        uploaded_at: ts(m.uploaded_at),
        validated_at: m.validated_at.map(ts),
        graduated_at: m.graduated_at.map(ts),
        retired_at: m.retired_at.map(ts),
    }
}

pub fn active_view(state: &AppState) -> ActiveModelView {
    let s = state.risk.status();
    ActiveModelView {
        id: s.id,
        name: s.name,
        runtime: s.runtime,
        degraded: s.degraded,
        load_error: s.load_error,
    }
}

/// Runs `spot-optimizer validate-model` on the file in a child process (the sandbox: its own
/// address space, RLIMIT_AS 2 GiB, RLIMIT_CPU 30 s, killed after 60 s of wall time).
async fn validate_in_sandbox(
    state: &AppState,
    path: &std::path::Path,
) -> Result<serde_json::Value, String> {
    let exe = match &state.cfg.model_validator {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| format!("cannot locate the validator: {e}"))?,
    };
    let path = path.to_path_buf();
    // std::process in a blocking task (tokio's process feature would change the shared
    // tokio build): poll for exit, kill after the wall-time limit.
    let out = tokio::task::spawn_blocking(move || -> Result<std::process::Output, String> {
        let mut child = std::process::Command::new(&exe)
            .arg("validate-model")
            .arg(&path)
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the validator: {e}"))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if std::time::Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("validation took longer than 60 s and was stopped".into());
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
                Err(e) => return Err(format!("validator failed: {e}")),
            }
        }
        child
            .wait_with_output()
            .map_err(|e| format!("validator failed: {e}"))
    })
    .await
    .map_err(|e| format!("validator task failed: {e}"))??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict: Option<serde_json::Value> = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok());
    match verdict {
        Some(v) if v["ok"] == true => Ok(v["report"].clone()),
        Some(v) => Err(v["error"].as_str().unwrap_or("rejected").to_string()),
        None => Err(format!(
            "the validator crashed ({}){}",
            out.status,
            if out.status.code().is_none() {
                ": killed by a resource limit"
            } else {
                ""
            }
        )),
    }
}

#[OpenApi(prefix_path = "/admin/risk", tag = "ApiTags::Admin")]
impl RiskApi {
    /// Registry entries, newest first, and the active model (super_admin only).
    #[oai(path = "/models", method = "get", operation_id = "adminListRiskModels")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<ModelList>> {
        auth.0.require_super_admin()?;
        let items = store::list_models(&state.db)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(view)
            .collect();
        Ok(Json(ModelList {
            items,
            active: active_view(&state),
        }))
    }

    /// Upload an ONNX model (multipart field `file`, at most `max_model_bytes`). It is
    /// validated in a sandboxed child process against contract v1 (loads; input `features`
    /// float32 [N, 22]; output `interruption_probability`; values in [0, 1] on the contract
    /// vectors). Rejected uploads get 422 with the reason and are deleted.
    #[oai(
        path = "/models",
        method = "post",
        operation_id = "adminUploadRiskModel"
    )]
    async fn upload(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        form: ModelUpload,
    ) -> poem::Result<UploadResponse> {
        slot.record("risk_model.upload", "risk_model", None);
        auth.0.require_super_admin()?;
        let name = form
            .name
            .clone()
            .or_else(|| form.file.file_name().map(str::to_string))
            .unwrap_or_else(|| "unnamed model".into());
        if name.trim().is_empty() || name.len() > 200 {
            return Err(ApiError::field("name", "must be 1 to 200 characters").into());
        }
        let bytes = form
            .file
            .into_vec()
            .await
            .map_err(|e| ApiError::BadRequest(format!("cannot read `file`: {e}")))?;
        if bytes.is_empty() {
            return Err(ApiError::field("file", "is empty").into());
        }
        if bytes.len() > state.cfg.max_model_bytes {
            return Err(ApiError::field(
                "file",
                format!("is larger than {} bytes", state.cfg.max_model_bytes),
            )
            .into());
        }
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        let dir = std::env::temp_dir().join("spot-optimizer-uploads");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let path = dir.join(format!("{}.onnx", uuid::Uuid::new_v4()));
        tokio::fs::write(&path, &bytes)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let verdict = validate_in_sandbox(&state, &path).await;
        // The uploaded file never outlives validation: accepted bytes live in the registry.
        let _ = tokio::fs::remove_file(&path).await;
        let report = match verdict {
            Ok(r) => r,
            Err(reason) => {
                slot.diff(
                    None,
                    Some(serde_json::json!({"name": name, "sha256": sha, "rejected": reason})),
                );
                return Err(ApiError::field("file", format!("model rejected: {reason}")).into());
            }
        };
        let row = store::insert_validated(
            &state.db,
            &name,
            &sha,
            &bytes,
            &report.to_string(),
            &auth.0.email,
        )
        .await
        .map_err(ApiError::from)?;
        slot.record("risk_model.upload", "risk_model", Some(&row.id));
        slot.diff(None, Some(serde_json::json!({"id": row.id, "name": row.name, "sha256": sha, "status": row.status})));
        Ok(UploadResponse::Created(Json(view(row))))
    }

    /// Graduate a validated (or retired) model once the Lab's safety checklist passes
    /// (`GET /api/lab/models/{id}/checklist`; 409 naming the failing items otherwise; the
    /// checklist is recorded with the graduation): it becomes the active model, is swapped into
    /// every account and cluster actor without a restart (decisions in flight finish on the
    /// old model), and is broadcast to other replicas through Redis when configured.
    #[oai(
        path = "/models/:id/graduate",
        method = "post",
        operation_id = "adminGraduateRiskModel"
    )]
    async fn graduate(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<Json<ModelList>> {
        slot.record("risk_model.graduate", "risk_model", Some(&id));
        auth.0.require_super_admin()?;
        let m = store::model(&state.db, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("model"))?;
        if m.status == store::GRADUATED {
            return Err(ApiError::Conflict {
                field: None,
                message: "this model is already graduated".into(),
            }
            .into());
        }
        let before = active_view(&state).id;
        // The Lab's safety checklist must pass; it is recorded with the graduation.
        let (_, checklist) = super::lab::graduate_checked(&state, &id, &auth.0.email).await?;
        slot.diff(
            Some(serde_json::json!({"active": before})),
            Some(serde_json::json!({"active": active_view(&state).id, "checklist": checklist})),
        );
        self.list(state, auth).await
    }

    /// Roll back to the previously graduated model (or to the shipped model when there is
    /// none); the current one is retired. Broadcast like a graduation.
    #[oai(
        path = "/rollback",
        method = "post",
        operation_id = "adminRollbackRiskModel"
    )]
    async fn rollback(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
    ) -> poem::Result<Json<ModelList>> {
        slot.record("risk_model.rollback", "risk_model", None);
        auth.0.require_super_admin()?;
        let current = store::graduated(&state.db).await.map_err(ApiError::from)?;
        let Some(current) = current else {
            return Err(ApiError::Conflict {
                field: None,
                message: "no graduated model to roll back from: the shipped model is active".into(),
            }
            .into());
        };
        let previous = store::previous_graduated(&state.db)
            .await
            .map_err(ApiError::from)?;
        match &previous {
            Some(p) => {
                store::graduate(&state.db, &p.id)
                    .await
                    .map_err(ApiError::from)?;
            }
            None => {
                store::retire_graduated(&state.db)
                    .await
                    .map_err(ApiError::from)?;
            }
        }
        state.reload_risk_model(true).await?;
        slot.diff(
            Some(serde_json::json!({"active": current.id})),
            Some(serde_json::json!({"active": active_view(&state).id})),
        );
        self.list(state, auth).await
    }

    /// Rescore every pool and instance of every linked account with the active model, as a
    /// background job; `GET /api/admin/risk/jobs/{id}` reports the counts.
    #[oai(
        path = "/recompute",
        method = "post",
        operation_id = "adminRecomputeRisk"
    )]
    async fn recompute(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
    ) -> poem::Result<super::jobs::Accepted> {
        slot.record("risk.recompute", "job", None);
        auth.0.require_super_admin()?;
        let job = jobs::insert(
            &state.db,
            jobs::NewJob {
                organization_id: None,
                kind: spot_jobs::recompute::KIND,
                target_id: None,
                dry_run: false,
                requested_by: Some(&auth.0.user_id),
                safe_mode: state.cfg.safe_mode,
            },
        )
        .await
        .map_err(ApiError::from)?;
        slot.record("risk.recompute", "job", Some(&job.id));
        Ok(super::jobs::Accepted::Accepted(Json(
            enqueue(&state, job).await?,
        )))
    }

    /// Any job (super_admin only), e.g. a risk recompute.
    #[oai(path = "/jobs/:id", method = "get", operation_id = "adminGetJob")]
    async fn job(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<JobView>> {
        auth.0.require_super_admin()?;
        let j = jobs::get(&state.db, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("job"))?;
        Ok(Json(super::jobs::job_view(j)))
    }
}
