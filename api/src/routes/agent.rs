//! The in-cluster agent: its own API (`/api/agent/v1/...`, authenticated by the cluster's
//! agent token only, wire types from `spot-agent-protocol`) and the tenant routes that
//! install, watch and revoke it (`/api/clusters/{id}/agent...`, `/api/clusters/register`).
//!
//! Agent writes are not audited per request (heartbeats and deltas would flood the log);
//! the agent's connection (first heartbeat of a token), safe-mode reports and the start and
//! result of every command are, with actor `agent` / `agent:<token prefix>`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use poem::http::{header, StatusCode};
use poem::web::Data;
use poem::{get, handler, post, IntoResponse, Request, Response, Route};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::Serialize;
use spot_agent_protocol as protocol;
use spot_agent_protocol::{
    Ack, ClusterDelta, ClusterSnapshot, CommandBatch, CommandResult, Heartbeat, HeartbeatAck, Node,
    Pod,
};
use spot_models::agents::{self, AgentPrincipal, AgentState, CommandRecord, CommandStatus};
use spot_models::audit::{self, NewAuditRecord};
use spot_models::inventory;

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::body::{parse_json, Body};
use crate::error::ApiError;
use crate::gateway::{AuditSlot, ClientInfo};
use crate::state::AppState;

/// Largest snapshot or delta body the agent may send.
pub const MAX_VIEW_BYTES: usize = 16 * 1024 * 1024;
/// Agent paths whose bodies may reach [`MAX_VIEW_BYTES`].
pub fn is_view_path(path: &str) -> bool {
    path == "/api/agent/v1/snapshot" || path == "/api/agent/v1/delta"
}
/// Paths of the agent API (not audited per request by the gateway).
pub fn is_agent_path(path: &str) -> bool {
    path.starts_with("/api/agent/v1/")
}

/// How often a waiting long poll re-reads the queue (commands queued on another replica).
const POLL_RECHECK: Duration = Duration::from_secs(1);

// =======================================================================================
// Agent API
// =======================================================================================

/// The agent API's routes, mounted at [`protocol::API_PREFIX`].
pub fn agent_routes() -> Route {
    Route::new()
        .at("/heartbeat", post(agent_heartbeat))
        .at("/snapshot", post(agent_snapshot))
        .at("/delta", post(agent_delta))
        .at("/commands", get(agent_commands))
        .at("/commands/:id/start", post(agent_start))
        .at("/commands/:id/result", post(agent_result))
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => Response::builder()
            .status(status)
            .content_type("application/json; charset=utf-8")
            .body(text),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

/// The cluster behind the presented agent token. User access tokens are not agent tokens.
async fn principal(state: &AppState, req: &Request) -> Result<AgentPrincipal, ApiError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "send the cluster's agent token as `Authorization: Bearer spa_...`".into(),
            )
        })?;
    match agents::authenticate(&state.db, token).await? {
        Some(p) => Ok(p),
        None => {
            tracing::warn!(component = "CORE-AGENT", prefix = %agents::token_prefix_of(token).unwrap_or("-"), "agent token rejected");
            Err(ApiError::Unauthorized(
                "the agent token is unknown or revoked".into(),
            ))
        }
    }
}

/// Records an agent action in the audit log (failures are logged, not returned).
async fn audit_agent(
    state: &AppState,
    req: &Request,
    p: &AgentPrincipal,
    action: &str,
    resource_type: &str,
    resource_id: &str,
    after: serde_json::Value,
) {
    let client = req.extensions().get::<ClientInfo>().cloned();
    let rec = NewAuditRecord {
        organization_id: Some(p.organization_id.clone()),
        actor_kind: "agent".into(),
        actor_component: Some(format!("agent:{}", p.token_prefix)),
        action: action.into(),
        resource_type: resource_type.into(),
        resource_id: Some(resource_id.to_string()),
        outcome: "success".into(),
        status_code: Some(200),
        source_ip: client.as_ref().map(|c| c.ip.to_string()),
        user_agent: client.as_ref().and_then(|c| c.user_agent.clone()),
        request_id: client
            .map(|c| c.request_id)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        before: None,
        after: Some(after),
        actor_user_id: None,
        actor_email: None,
        actor_admin_id: None,
    };
    if let Err(e) = audit::append(&state.db, rec).await {
        tracing::error!(component = "CORE-AUDIT", error = %e, "audit append failed");
    }
}

fn check_len(field: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.chars().count() > max {
        return Err(ApiError::field(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(())
}

fn validate_heartbeat(hb: &Heartbeat) -> Result<(), ApiError> {
    if hb.protocol_version == 0 || hb.protocol_version > protocol::PROTOCOL_VERSION {
        return Err(ApiError::field(
            "protocol_version",
            format!(
                "protocol_version must be between 1 and {}",
                protocol::PROTOCOL_VERSION
            ),
        ));
    }
    if hb.agent_version.trim().is_empty() {
        return Err(ApiError::field(
            "agent_version",
            "agent_version is required",
        ));
    }
    check_len("agent_version", &hb.agent_version, 64)?;
    check_len("kubernetes_version", &hb.kubernetes_version, 128)?;
    if hb.watches.len() > 64 {
        return Err(ApiError::field("watches", "at most 64 watches"));
    }
    for (i, w) in hb.watches.iter().enumerate() {
        check_len(&format!("watches[{i}].resource"), &w.resource, 64)?;
    }
    Ok(())
}

fn validate_objects<'a>(
    nodes: impl Iterator<Item = (String, &'a Node)>,
    pods: impl Iterator<Item = (String, &'a Pod)>,
) -> Result<(), ApiError> {
    for (field, n) in nodes {
        if n.name.is_empty() {
            return Err(ApiError::field(
                &format!("{field}.name"),
                format!("{field}.name must not be empty"),
            ));
        }
    }
    for (field, p) in pods {
        if p.name.is_empty() {
            return Err(ApiError::field(
                &format!("{field}.name"),
                format!("{field}.name must not be empty"),
            ));
        }
        if p.namespace.is_empty() {
            return Err(ApiError::field(
                &format!("{field}.namespace"),
                format!("{field}.namespace must not be empty"),
            ));
        }
    }
    Ok(())
}

/// A snapshot's history: at most [`protocol::HISTORY_BACKFILL_DAYS`] of hourly points, none
/// in the future.
fn validate_history(
    history: &[protocol::HistoryPoint],
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let max = usize::try_from(protocol::HISTORY_BACKFILL_DAYS * 24).unwrap_or(usize::MAX);
    if history.len() > max {
        return Err(ApiError::field(
            "history",
            format!("history holds at most {max} hourly points"),
        ));
    }
    let oldest =
        now - chrono::Duration::days(protocol::HISTORY_BACKFILL_DAYS) - chrono::Duration::hours(1);
    for (i, h) in history.iter().enumerate() {
        if h.hour > now || h.hour < oldest {
            return Err(ApiError::field(
                &format!("history[{i}].hour"),
                format!(
                    "history[{i}].hour must lie within the last {} days",
                    protocol::HISTORY_BACKFILL_DAYS
                ),
            ));
        }
    }
    Ok(())
}

/// An unschedulable pending pod as the packer sees it.
fn engine_pod(p: &Pod) -> spot_engine::pack::Pod {
    let (capacity, arch) = spot_engine::plan::constraints_from_node_selector(&p.node_selector);
    spot_engine::pack::Pod {
        id: p.key(),
        cpu_millis: p.requests.cpu_millis,
        memory_mib: p.requests.memory_mib,
        gpus: p.requests.gpus,
        capacity,
        arch,
        anti_affinity_group: None,
        az_spread_group: None,
    }
}

fn is_unschedulable(p: &Pod) -> bool {
    p.phase == protocol::PodPhase::Pending && p.unschedulable_reason.is_some()
}

/// Pending pods go to the cluster actor (which publishes `decision.launch`); every
/// reported node's pressure conditions go to it too (it publishes `cluster.node_pressure`
/// when the set of pressured nodes changes). `removed` are nodes a delta deleted; `full`
/// marks a snapshot (nodes not in it are gone). Runs off the request.
fn forward_signals(
    state: &AppState,
    p: &AgentPrincipal,
    pods: &[&Pod],
    nodes: &[&Node],
    removed: &[String],
    full: bool,
) {
    let unschedulable: Vec<&&Pod> = pods.iter().filter(|p| is_unschedulable(p)).collect();
    let mut pending: Vec<spot_engine::pack::Pod> =
        unschedulable.iter().map(|p| engine_pod(p)).collect();
    // `namespace`, workload (`Kind/name`) and DaemonSet flag of each pending pod, for the
    // policy's multi-AZ spread.
    let workloads: Vec<(String, Option<String>, bool)> = unschedulable
        .iter()
        .map(|p| {
            (
                p.namespace.clone(),
                p.owner.as_ref().map(|o| format!("{}/{}", o.kind, o.name)),
                p.daemonset || p.mirror,
            )
        })
        .collect();
    if !nodes.is_empty() || !removed.is_empty() || full {
        let reports = nodes
            .iter()
            .map(|n| spot_actors::system::NodePressureReport {
                node: n.name.clone(),
                instance_id: n.instance_id.clone(),
                conditions: n.pressure(),
            })
            .collect();
        state.actors.node_pressure(
            &p.account_id,
            &p.cluster_name,
            &p.cluster_id,
            reports,
            removed.to_vec(),
            full,
        );
    }
    if pending.is_empty() {
        return;
    }
    let actors = state.actors.clone();
    let db = state.db.clone();
    let (org, cluster_id) = (p.organization_id.clone(), p.cluster_id.clone());
    let (account, cluster) = (p.account_id.clone(), p.cluster_name.clone());
    tokio::spawn(async move {
        let n = pending.len();
        // With multi-AZ spread enforced, each workload's pending pods are spread over
        // zones by the launch decision.
        match spot_actors::policy::effective(&db, &org, &cluster_id).await {
            Ok((policy, _)) if policy.multi_az_spread => {
                for (pod, (ns, owner, ds)) in pending.iter_mut().zip(&workloads) {
                    pod.az_spread_group = policy.spread_group(
                        ns,
                        owner.as_deref(),
                        pod.az_spread_group.as_deref(),
                        *ds,
                    );
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(component = "CORE-AGENT", %cluster, error = %e, "policy unreadable; pending pods not spread")
            }
        }
        match actors.pending_pods(&account, &cluster, pending).await {
            Ok(Ok(d)) => {
                tracing::info!(component = "CORE-AGENT", %cluster, pods = n, nodes = d.nodes.len(), "pending pods reached the cluster actor")
            }
            Ok(Err(e)) => {
                tracing::info!(component = "CORE-AGENT", %cluster, pods = n, reason = %e, "cluster actor made no launch decision")
            }
            Err(e) => {
                tracing::debug!(component = "CORE-AGENT", %cluster, error = %e, "no cluster actor for pending pods")
            }
        }
    });
}

#[handler]
async fn agent_heartbeat(
    req: &Request,
    state: Data<&AppState>,
    body: Vec<u8>,
) -> poem::Result<Response> {
    let p = principal(&state, req).await?;
    let hb: Heartbeat = parse_json(&body)?;
    validate_heartbeat(&hb)?;
    let now = Utc::now();
    let out = agents::record_heartbeat(&state.db, &p, &hb, now)
        .await
        .map_err(ApiError::from)?;
    state.actors.bus.publish(
        Some(&p.organization_id),
        "agent.heartbeat",
        serde_json::json!({
            "cluster_id": p.cluster_id,
            "agent_version": hb.agent_version,
            "kubernetes_version": hb.kubernetes_version,
            "metrics_available": hb.metrics_available,
            "safe_mode": hb.safe_mode.as_ref().is_some_and(|s| s.exited_at.is_none()),
            "connected": true,
        }),
    );
    if out.connected {
        tracing::info!(component = "CORE-AGENT", cluster_id = %p.cluster_id, prefix = %p.token_prefix, version = %hb.agent_version, "agent connected");
        audit_agent(
            &state,
            req,
            &p,
            "agent.connect",
            "cluster",
            &p.cluster_id,
            serde_json::json!({"agent_version": hb.agent_version, "kubernetes_version": hb.kubernetes_version, "protocol_version": hb.protocol_version, "token_prefix": p.token_prefix}),
        )
        .await;
    }
    if out.safe_mode_changed {
        if let Some(s) = &hb.safe_mode {
            tracing::warn!(component = "CORE-AGENT", cluster_id = %p.cluster_id, reason = %s.reason, "agent reports safe mode");
            audit_agent(
                &state,
                req,
                &p,
                "agent.safe_mode",
                "cluster",
                &p.cluster_id,
                serde_json::json!({"entered_at": s.entered_at, "exited_at": s.exited_at, "reason": s.reason}),
            )
            .await;
        }
    }
    let cluster_id = p
        .cluster_id
        .parse()
        .map_err(|e| ApiError::Internal(format!("cluster id: {e}")))?;
    Ok(json_response(
        StatusCode::OK,
        &HeartbeatAck {
            cluster_id,
            server_time: now,
            resync: out.resync,
        },
    ))
}

#[handler]
async fn agent_snapshot(
    req: &Request,
    state: Data<&AppState>,
    body: Vec<u8>,
) -> poem::Result<Response> {
    let p = principal(&state, req).await?;
    let snap: ClusterSnapshot = parse_json(&body)?;
    validate_objects(
        snap.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("nodes[{i}]"), n)),
        snap.pods
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("pods[{i}]"), n)),
    )?;
    let now = Utc::now();
    validate_history(&snap.history, now)?;
    agents::apply_snapshot(&state.db, &p.organization_id, &p.cluster_id, &snap, now)
        .await
        .map_err(ApiError::from)?;
    // The cluster's figures follow the view at once; the history fills the dashboards.
    match spot_actors::discovery::refresh_from_agent(
        &state.db,
        &p.organization_id,
        &p.cluster_id,
        &snap.history,
    )
    .await
    {
        Ok(n) if n > 0 => {
            tracing::info!(component = "CORE-AGENT", cluster_id = %p.cluster_id, hours = n, "usage history recorded from the agent")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(component = "CORE-AGENT", cluster_id = %p.cluster_id, error = %e, "cluster figures not refreshed from the agent view")
        }
    }
    let pods: Vec<&Pod> = snap.pods.iter().collect();
    let nodes: Vec<&Node> = snap.nodes.iter().collect();
    forward_signals(&state, &p, &pods, &nodes, &[], true);
    state.actors.bus.publish(
        Some(&p.organization_id),
        "agent.view",
        serde_json::json!({"cluster_id": p.cluster_id, "kind": "snapshot", "nodes": snap.nodes.len(), "pods": snap.pods.len(), "pdbs": snap.pdbs.len()}),
    );
    Ok(json_response(StatusCode::OK, &Ack { ok: true }))
}

#[handler]
async fn agent_delta(
    req: &Request,
    state: Data<&AppState>,
    body: Vec<u8>,
) -> poem::Result<Response> {
    let p = principal(&state, req).await?;
    let d: ClusterDelta = parse_json(&body)?;
    validate_objects(
        d.nodes_upserted
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("nodes_upserted[{i}]"), n)),
        d.pods_upserted
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("pods_upserted[{i}]"), n)),
    )?;
    if !d.is_empty() {
        agents::apply_delta(&state.db, &p.organization_id, &p.cluster_id, &d, Utc::now())
            .await
            .map_err(ApiError::from)?;
        let pods: Vec<&Pod> = d.pods_upserted.iter().collect();
        let nodes: Vec<&Node> = d.nodes_upserted.iter().collect();
        forward_signals(&state, &p, &pods, &nodes, &d.nodes_deleted, false);
    }
    Ok(json_response(StatusCode::OK, &Ack { ok: true }))
}

/// `wait` of a long poll: whole seconds, at most [`protocol::MAX_POLL_WAIT_SECS`].
fn poll_wait(query: Option<&str>) -> Result<Duration, ApiError> {
    let raw = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("wait="));
    let Some(raw) = raw else {
        return Ok(Duration::ZERO);
    };
    let secs: u64 = raw.parse().map_err(|_| {
        ApiError::field(
            "wait",
            format!(
                "wait must be a whole number of seconds between 0 and {}",
                protocol::MAX_POLL_WAIT_SECS
            ),
        )
    })?;
    if secs > protocol::MAX_POLL_WAIT_SECS {
        return Err(ApiError::field(
            "wait",
            format!(
                "wait must be at most {} seconds",
                protocol::MAX_POLL_WAIT_SECS
            ),
        ));
    }
    Ok(Duration::from_secs(secs))
}

#[handler]
async fn agent_commands(req: &Request, state: Data<&AppState>) -> poem::Result<Response> {
    let p = principal(&state, req).await?;
    let wait = poll_wait(req.uri().query())?;
    let until = Instant::now() + wait;
    let notify = agents::command_notifier(&p.cluster_id);
    loop {
        // Registered before reading, so an enqueue between the read and the wait still wakes us.
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let pending = agents::pending_commands(&state.db, &p.cluster_id, 100)
            .await
            .map_err(ApiError::from)?;
        let now = Instant::now();
        if !pending.is_empty() || now >= until {
            let commands = pending
                .iter()
                .map(CommandRecord::wire)
                .collect::<Result<Vec<_>, _>>()
                .map_err(ApiError::from)?;
            return Ok(json_response(StatusCode::OK, &CommandBatch { commands }));
        }
        let nap = (until - now).min(POLL_RECHECK);
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

fn command_event(state: &AppState, rec: &CommandRecord) {
    state.actors.bus.publish(
        Some(&rec.organization_id),
        "agent.command",
        serde_json::json!({"cluster_id": rec.cluster_id, "id": rec.id, "kind": rec.command.name(), "status": rec.status.as_str()}),
    );
}

#[handler]
async fn agent_start(
    req: &Request,
    state: Data<&AppState>,
    id: poem::web::Path<String>,
) -> poem::Result<Response> {
    let p = principal(&state, req).await?;
    let now = Utc::now();
    // Overdue commands are expired first: a command past its deadline never starts.
    agents::expire_commands(&state.db, Some(&p.cluster_id), now)
        .await
        .map_err(ApiError::from)?;
    match agents::start_command(&state.db, &p.cluster_id, &id, now)
        .await
        .map_err(ApiError::from)?
    {
        Some(rec) => {
            audit_agent(
                &state,
                req,
                &p,
                "agent.command.start",
                "agent_command",
                &rec.id,
                serde_json::json!({"cluster_id": rec.cluster_id, "command": rec.command, "created_by": rec.created_by}),
            )
            .await;
            command_event(&state, &rec);
            let wire = rec.wire().map_err(ApiError::from)?;
            Ok(json_response(StatusCode::OK, &wire))
        }
        None => match agents::cluster_command(&state.db, &p.cluster_id, &id)
            .await
            .map_err(ApiError::from)?
        {
            Some(rec) => Err(ApiError::Conflict {
                field: None,
                message: format!(
                    "command {} is {}; it must not be run",
                    rec.id,
                    rec.status.as_str()
                ),
            }
            .into()),
            None => Err(ApiError::NotFound("command").into()),
        },
    }
}

#[handler]
async fn agent_result(
    req: &Request,
    state: Data<&AppState>,
    id: poem::web::Path<String>,
    body: Vec<u8>,
) -> poem::Result<Response> {
    let p = principal(&state, req).await?;
    let r: CommandResult = parse_json(&body)?;
    check_len("message", &r.message, 8192)?;
    match agents::finish_command(&state.db, &p.cluster_id, &id, &r, Utc::now())
        .await
        .map_err(ApiError::from)?
    {
        agents::FinishOutcome::Stored(rec) => {
            audit_agent(
                &state,
                req,
                &p,
                "agent.command.result",
                "agent_command",
                &rec.id,
                serde_json::json!({"cluster_id": rec.cluster_id, "kind": rec.command.name(), "outcome": r.outcome, "message": r.message, "evictions": r.evictions.len()}),
            )
            .await;
            command_event(&state, &rec);
            Ok(json_response(StatusCode::OK, &Ack { ok: true }))
        }
        agents::FinishOutcome::Repeated(_) => Ok(json_response(StatusCode::OK, &Ack { ok: true })),
        agents::FinishOutcome::NotRunning(rec) => Err(ApiError::Conflict {
            field: None,
            message: format!(
                "command {} is {}; only a running command takes a result",
                rec.id,
                rec.status.as_str()
            ),
        }
        .into()),
        agents::FinishOutcome::NotFound => Err(ApiError::NotFound("command").into()),
    }
}

// =======================================================================================
// Tenant API
// =======================================================================================

pub struct AgentApi;

/// The agent's state as users see it: `not_installed` (no token issued), `waiting` (token
/// issued, no heartbeat yet), `connected` (heartbeat within 60 s), `disconnected` (older),
/// `revoked` (the last token was revoked).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum AgentStatus {
    NotInstalled,
    Waiting,
    Connected,
    Disconnected,
    Revoked,
}

impl From<AgentState> for AgentStatus {
    fn from(s: AgentState) -> Self {
        match s {
            AgentState::NotInstalled => AgentStatus::NotInstalled,
            AgentState::Waiting => AgentStatus::Waiting,
            AgentState::Connected => AgentStatus::Connected,
            AgentState::Disconnected => AgentStatus::Disconnected,
            AgentState::Revoked => AgentStatus::Revoked,
        }
    }
}

/// Ready-to-paste install commands with the cluster id, endpoint and token filled in.
#[derive(Object)]
pub struct InstallCommands {
    /// Helm chart `deploy/helm/spot-agent` (values `controlPlaneUrl`, `clusterId`, `token`).
    pub helm: String,
    /// Plain manifests (`deploy/agent`, a kustomization), then the real ConfigMap and Secret.
    pub kubectl: String,
    /// A Terraform `helm_release`.
    pub terraform: String,
}

/// A new agent token. The token is shown only in this answer; the server keeps its
/// SHA-256 and the visible prefix.
#[derive(Object)]
pub struct AgentTokenIssued {
    pub token: String,
    /// `spa_` and the 8-character visible id.
    pub token_prefix: String,
    pub cluster_id: String,
    /// Where the agent connects (the server's public URL).
    pub control_plane_url: String,
    pub created_at: DateTime<Utc>,
    pub install: InstallCommands,
}

#[derive(ApiResponse)]
pub enum TokenIssuedResponse {
    /// Issued; shown once.
    #[oai(status = 201)]
    Created(Json<AgentTokenIssued>),
}

#[derive(ApiResponse)]
pub enum RevokedResponse {
    /// Revoked; the agent's next request gets 401.
    #[oai(status = 204)]
    Revoked,
}

/// One watch of the agent (nodes, pods, PDBs, events).
#[derive(Object)]
pub struct AgentWatch {
    pub resource: String,
    pub healthy: bool,
    pub objects: i64,
    pub last_event_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Full re-lists (each 410 Gone causes one).
    pub relists: i64,
}

/// The agent's own safe mode (control plane unreachable for too long: it starts no command).
#[derive(Object)]
pub struct AgentSafeMode {
    pub entered_at: DateTime<Utc>,
    /// Absent while still in safe mode.
    pub exited_at: Option<DateTime<Utc>>,
    pub reason: String,
    /// Whether it is still in safe mode.
    pub active: bool,
}

/// The agent of one cluster.
#[derive(Object)]
pub struct AgentStatusView {
    pub cluster_id: String,
    pub status: AgentStatus,
    /// Heartbeat within 60 s and the token active.
    pub connected: bool,
    pub first_seen_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub agent_version: Option<String>,
    pub kubernetes_version: Option<String>,
    pub protocol_version: Option<i64>,
    pub watches: Vec<AgentWatch>,
    /// `metrics.k8s.io` answers (usage samples flow).
    pub metrics_available: bool,
    /// The last safe-mode report, if any.
    pub safe_mode: Option<AgentSafeMode>,
    /// The active (or, when revoked, the last) token's visible prefix.
    pub token_prefix: Option<String>,
    pub token_created_at: Option<DateTime<Utc>>,
    pub token_revoked_at: Option<DateTime<Utc>>,
    /// Objects in the stored cluster view.
    pub nodes: i64,
    pub pods: i64,
    pub pdbs: i64,
    pub pending_pods: i64,
    /// When the agent collected the view it last sent.
    pub view_collected_at: Option<DateTime<Utc>>,
}

/// `pending`, `running`, `succeeded`, `failed` (by the agent, or started and never reported
/// before the deadline) or `expired` (never claimed before the deadline).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum AgentCommandStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Expired,
}

impl From<CommandStatus> for AgentCommandStatus {
    fn from(s: CommandStatus) -> Self {
        match s {
            CommandStatus::Pending => AgentCommandStatus::Pending,
            CommandStatus::Running => AgentCommandStatus::Running,
            CommandStatus::Succeeded => AgentCommandStatus::Succeeded,
            CommandStatus::Failed => AgentCommandStatus::Failed,
            CommandStatus::Expired => AgentCommandStatus::Expired,
        }
    }
}

/// One pod's fate during a drain.
#[derive(Object)]
pub struct AgentEviction {
    /// `namespace/name`.
    pub pod: String,
    /// `evicted`, `skipped_daemonset`, `skipped_mirror`, `blocked_by_pdb`, `failed`.
    pub outcome: String,
    pub retries: i64,
    pub message: Option<String>,
}

/// One command queued for the agent.
#[derive(Object)]
pub struct AgentCommandView {
    pub id: String,
    /// `cordon`, `uncordon`, `drain`, `label`, `taint`, `patch_requests`, `delete_node`.
    pub kind: String,
    /// The node, or `namespace/Kind/name` for a workload.
    pub target: String,
    /// The command's other parameters, each as text (JSON for structured values).
    pub parameters: BTreeMap<String, String>,
    pub status: AgentCommandStatus,
    /// `system:job:<id>`, a user id, …
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `succeeded` or `failed`, as the agent reported.
    pub outcome: Option<String>,
    /// The agent's message.
    pub message: Option<String>,
    /// Why the control plane failed or expired the command.
    pub reason: Option<String>,
    pub evictions: Vec<AgentEviction>,
}

#[derive(Object)]
pub struct AgentCommandList {
    /// Newest first.
    pub items: Vec<AgentCommandView>,
    pub limit: i64,
    pub offset: i64,
}

/// Registers a Kubernetes cluster discovery does not know (any distribution).
#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterClusterRequest {
    /// 1–100 characters: letters, digits, `-`, `_`, `.`; unique in the organization.
    pub name: String,
    /// Defaults to the account's region.
    #[serde(default)]
    pub region: Option<String>,
    /// The linked account the cluster is billed to. May be omitted when the organization
    /// has exactly one account.
    #[serde(default)]
    pub account_id: Option<String>,
}

#[derive(Object)]
pub struct RegisteredCluster {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub region: String,
    /// Always `kubernetes`.
    pub provider: String,
    pub agent_status: AgentStatus,
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    #[oai(status = 201)]
    Created(Json<RegisteredCluster>),
}

/// Namespace of the agent (the plain manifests' namespace; the Helm release uses it too).
const AGENT_NAMESPACE: &str = "spot-agent";

/// Quotes a value for a POSIX shell.
fn sh(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=".contains(c))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

/// Quotes a value for an HCL string.
fn hcl(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into())
}

/// The install commands for a cluster: the Helm chart `deploy/helm/spot-agent` (values
/// `controlPlaneUrl`, `clusterId`, `token`), the plain manifests `deploy/agent` (a
/// kustomization; the `spot-agent` ConfigMap and `spot-agent-token` Secret are then
/// replaced with the real values) and a Terraform `helm_release`.
pub fn install_commands(url: &str, cluster_id: &str, token: &str) -> InstallCommands {
    InstallCommands {
        helm: format!(
            "helm upgrade --install spot-agent ./deploy/helm/spot-agent --namespace {AGENT_NAMESPACE} --create-namespace --set controlPlaneUrl={} --set clusterId={} --set token={}",
            sh(url), sh(cluster_id), sh(token)
        ),
        kubectl: format!(
            "kubectl apply -k deploy/agent\n\
             kubectl -n {AGENT_NAMESPACE} create secret generic spot-agent-token --from-literal=token={} --dry-run=client -o yaml | kubectl apply -f -\n\
             kubectl -n {AGENT_NAMESPACE} create configmap spot-agent --from-literal=SPOT_CONTROL_PLANE_URL={} --from-literal=SPOT_CLUSTER_ID={} --dry-run=client -o yaml | kubectl apply -f -\n\
             kubectl -n {AGENT_NAMESPACE} rollout restart deployment/spot-agent",
            sh(token), sh(url), sh(cluster_id)
        ),
        terraform: format!(
            "resource \"helm_release\" \"spot_agent\" {{\n  name             = \"spot-agent\"\n  chart            = \"./deploy/helm/spot-agent\"\n  namespace        = \"{AGENT_NAMESPACE}\"\n  create_namespace = true\n\n  set {{\n    name  = \"controlPlaneUrl\"\n    value = {}\n  }}\n  set {{\n    name  = \"clusterId\"\n    value = {}\n  }}\n  set_sensitive {{\n    name  = \"token\"\n    value = {}\n  }}\n}}\n",
            hcl(url), hcl(cluster_id), hcl(token)
        ),
    }
}

fn issued(state: &AppState, t: agents::IssuedToken) -> AgentTokenIssued {
    let url = state.cfg.public_url.trim_end_matches('/').to_string();
    AgentTokenIssued {
        install: install_commands(&url, &t.row.cluster_id, &t.token),
        token: t.token,
        token_prefix: t.row.token_prefix,
        cluster_id: t.row.cluster_id,
        control_plane_url: url,
        created_at: super::ts(t.row.created_at),
    }
}

fn command_view(c: CommandRecord) -> AgentCommandView {
    use protocol::CommandKind as K;
    let target = match &c.command {
        K::Cordon { node }
        | K::Uncordon { node }
        | K::Drain { node, .. }
        | K::Label { node, .. }
        | K::Taint { node, .. }
        | K::DeleteNode { node } => node.clone(),
        K::PatchRequests {
            namespace,
            workload_kind,
            workload,
            ..
        } => format!("{namespace}/{workload_kind:?}/{workload}"),
    };
    let mut parameters = BTreeMap::new();
    if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(&c.command) {
        for (k, v) in m {
            if k == "type" || v.is_null() {
                continue;
            }
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            parameters.insert(k, text);
        }
    }
    let (outcome, message, evictions) = match &c.result {
        Some(r) => (
            Some(
                match r.outcome {
                    protocol::CommandOutcome::Succeeded => "succeeded",
                    protocol::CommandOutcome::Failed => "failed",
                }
                .to_string(),
            ),
            Some(r.message.clone()),
            r.evictions
                .iter()
                .map(|e| AgentEviction {
                    pod: e.pod.clone(),
                    outcome: e.outcome.clone(),
                    retries: i64::from(e.retries),
                    message: e.message.clone(),
                })
                .collect(),
        ),
        None => (None, None, Vec::new()),
    };
    AgentCommandView {
        kind: c.command.name().to_string(),
        target,
        parameters,
        status: c.status.into(),
        id: c.id,
        created_by: c.created_by,
        created_at: c.created_at,
        deadline: c.deadline,
        started_at: c.started_at,
        finished_at: c.finished_at,
        outcome,
        message,
        reason: c.reason,
        evictions,
    }
}

/// On the simulator, issuing a token installs the cluster's simulated agent with it, as
/// running the install command would on a real cluster.
async fn install_simulated(state: &AppState, cluster_id: &str, token: &str) {
    if let Some(sim) = &state.sim_agents {
        if !sim.install(cluster_id, token).await {
            tracing::info!(
                component = "sim-agent",
                cluster_id,
                "not a simulated cluster: no simulated agent installed"
            );
        }
    }
}

async fn own_cluster(
    state: &AppState,
    org_id: &str,
    id: &str,
) -> Result<inventory::ClusterView, ApiError> {
    inventory::cluster(&state.db, org_id, id)
        .await?
        .ok_or(ApiError::NotFound("cluster"))
}

fn valid_cluster_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=100).contains(&n)
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[OpenApi(tag = "ApiTags::Agent")]
impl AgentApi {
    /// Issue the cluster's agent token and the install commands (Helm, kubectl,
    /// Terraform) with the cluster id, the endpoint and the token filled in. The token is
    /// shown only in this answer. 409 when an active token exists (rotate it instead).
    #[oai(
        path = "/clusters/:id/agent",
        method = "post",
        operation_id = "createAgentToken"
    )]
    async fn create_token(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<TokenIssuedResponse> {
        slot.record("agent.token.create", "cluster", Some(&id));
        auth.0.require_admin()?;
        let c = own_cluster(&state, &auth.0.org_id, &id).await?;
        let t = agents::issue_token(&state.db, &auth.0.org_id, &c.id, Some(&auth.0.user_id))
            .await
            .map_err(ApiError::from)?;
        slot.diff(
            None,
            Some(serde_json::json!({"token_prefix": t.row.token_prefix})),
        );
        install_simulated(&state, &c.id, &t.token).await;
        Ok(TokenIssuedResponse::Created(Json(issued(&state, t))))
    }

    /// Rotate the agent token: a new token (shown once) replaces the active one, which is
    /// revoked at once (its agent gets 401 from then on).
    #[oai(
        path = "/clusters/:id/agent/rotate",
        method = "post",
        operation_id = "rotateAgentToken"
    )]
    async fn rotate_token(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<TokenIssuedResponse> {
        slot.record("agent.token.rotate", "cluster", Some(&id));
        auth.0.require_admin()?;
        let c = own_cluster(&state, &auth.0.org_id, &id).await?;
        let t = agents::rotate_token(&state.db, &auth.0.org_id, &c.id, Some(&auth.0.user_id))
            .await
            .map_err(ApiError::from)?;
        slot.diff(
            t.revoked
                .as_ref()
                .map(|r| serde_json::json!({"token_prefix": r.token_prefix})),
            Some(serde_json::json!({"token_prefix": t.row.token_prefix})),
        );
        install_simulated(&state, &c.id, &t.token).await;
        Ok(TokenIssuedResponse::Created(Json(issued(&state, t))))
    }

    /// Revoke the agent token; the agent's next request is answered 401 and it stops acting.
    #[oai(
        path = "/clusters/:id/agent",
        method = "delete",
        operation_id = "revokeAgentToken"
    )]
    async fn revoke_token(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<RevokedResponse> {
        slot.record("agent.token.revoke", "cluster", Some(&id));
        auth.0.require_admin()?;
        let c = own_cluster(&state, &auth.0.org_id, &id).await?;
        let r = agents::revoke_token(&state.db, &auth.0.org_id, &c.id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("agent token"))?;
        slot.diff(
            Some(serde_json::json!({"token_prefix": r.token_prefix})),
            None,
        );
        state.actors.bus.publish(
            Some(&auth.0.org_id),
            "agent.revoked",
            serde_json::json!({"cluster_id": c.id, "token_prefix": r.token_prefix}),
        );
        Ok(RevokedResponse::Revoked)
    }

    /// The cluster's agent: connected (heartbeat within 60 s), version, watch health,
    /// safe mode, token and the size of the stored cluster view.
    #[oai(
        path = "/clusters/:id/agent",
        method = "get",
        operation_id = "getAgent"
    )]
    async fn status(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<AgentStatusView>> {
        let c = own_cluster(&state, &auth.0.org_id, &id).await?;
        let org = &auth.0.org_id;
        let now = Utc::now();
        let state_now = agents::state(&state.db, org, &c.id, now)
            .await
            .map_err(ApiError::from)?;
        let token = agents::latest_token(&state.db, org, &c.id)
            .await
            .map_err(ApiError::from)?;
        let st = agents::status(&state.db, org, &c.id)
            .await
            .map_err(ApiError::from)?;
        let (nodes, pods, pdbs, pending_pods) = agents::view_counts(&state.db, &c.id)
            .await
            .map_err(ApiError::from)?;
        let watches = st
            .as_ref()
            .map(|s| s.watches())
            .unwrap_or_default()
            .into_iter()
            .map(|w| AgentWatch {
                resource: w.resource,
                healthy: w.healthy,
                objects: i64::try_from(w.objects).unwrap_or(i64::MAX),
                last_event_at: w.last_event_at,
                last_error: w.last_error,
                relists: i64::try_from(w.relists).unwrap_or(i64::MAX),
            })
            .collect();
        let safe_mode = st
            .as_ref()
            .and_then(|s| s.safe_mode())
            .map(|s| AgentSafeMode {
                active: s.exited_at.is_none(),
                entered_at: s.entered_at,
                exited_at: s.exited_at,
                reason: s.reason,
            });
        Ok(Json(AgentStatusView {
            cluster_id: c.id.clone(),
            status: state_now.into(),
            connected: state_now == AgentState::Connected,
            first_seen_at: st.as_ref().and_then(|s| s.first_seen_at).map(super::ts),
            last_heartbeat_at: st.as_ref().and_then(|s| s.last_heartbeat_at).map(super::ts),
            agent_version: st.as_ref().and_then(|s| s.agent_version.clone()),
            kubernetes_version: st.as_ref().and_then(|s| s.kubernetes_version.clone()),
            protocol_version: st.as_ref().and_then(|s| s.protocol_version),
            watches,
            metrics_available: st.as_ref().is_some_and(|s| s.metrics_available != 0),
            safe_mode,
            token_prefix: token.as_ref().map(|t| t.token_prefix.clone()),
            token_created_at: token.as_ref().map(|t| super::ts(t.created_at)),
            token_revoked_at: token.as_ref().and_then(|t| t.revoked_at).map(super::ts),
            nodes,
            pods,
            pdbs,
            pending_pods,
            view_collected_at: st.as_ref().and_then(|s| s.collected_at).map(super::ts),
        }))
    }

    /// Commands queued for the cluster's agent with their status and result, newest first.
    #[oai(
        path = "/clusters/:id/agent/commands",
        method = "get",
        operation_id = "listAgentCommands"
    )]
    async fn list_commands(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
        /// 1–200 (default 50).
        limit: Query<Option<i64>>,
        /// Commands to skip (default 0).
        offset: Query<Option<i64>>,
    ) -> poem::Result<Json<AgentCommandList>> {
        let limit = limit.0.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::field("limit", "limit must be between 1 and 200").into());
        }
        let offset = offset.0.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::field("offset", "offset must not be negative").into());
        }
        let c = own_cluster(&state, &auth.0.org_id, &id).await?;
        let items = agents::list_commands(&state.db, &auth.0.org_id, &c.id, limit, offset)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(command_view)
            .collect();
        Ok(Json(AgentCommandList {
            items,
            limit,
            offset,
        }))
    }

    /// Register a Kubernetes cluster that discovery did not find (any distribution), so an
    /// agent can be installed on it. The cluster belongs to one of the organization's
    /// accounts (`account_id`, optional when there is only one) and has provider
    /// `kubernetes`; discovery never retires it. 409 when the organization already has a
    /// cluster of that name.
    #[oai(
        path = "/clusters/register",
        method = "post",
        operation_id = "registerCluster"
    )]
    async fn register(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<RegisterClusterRequest>,
    ) -> poem::Result<RegisterResponse> {
        slot.record("cluster.register", "cluster", None);
        auth.0.require_admin()?;
        let name = body.name.trim().to_string();
        if !valid_cluster_name(&name) {
            return Err(ApiError::field(
                "name",
                "name must be 1–100 characters of letters, digits, '-', '_' or '.', starting with a letter or digit",
            )
            .into());
        }
        if let Some(r) = &body.region {
            if r.trim().is_empty() || r.chars().count() > 64 {
                return Err(ApiError::field("region", "region must be 1–64 characters").into());
            }
        }
        let org = &auth.0.org_id;
        let accounts: Vec<_> = spot_models::accounts::list(&state.db, org)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .filter(|a| a.status != "disconnected")
            .collect();
        let account = match &body.account_id {
            Some(aid) => accounts.iter().find(|a| &a.id == aid).ok_or_else(|| {
                ApiError::field(
                    "account_id",
                    "account_id is not an account of this organization",
                )
            })?,
            None => match accounts.as_slice() {
                [only] => only,
                _ => {
                    return Err(ApiError::field(
                        "account_id",
                        "account_id is required when the organization has several accounts",
                    )
                    .into())
                }
            },
        };
        let region = body
            .region
            .clone()
            .map(|r| r.trim().to_string())
            .or_else(|| account.region.clone())
            .unwrap_or_else(|| "unknown".into());
        let id = agents::register_cluster(&state.db, org, &account.id, &name, &region)
            .await
            .map_err(|e| match e {
                spot_models::DbError::Conflict(_) => ApiError::Conflict {
                    field: Some("name".into()),
                    message: format!("the organization already has a cluster named {name}"),
                },
                other => ApiError::from(other),
            })?;
        slot.record("cluster.register", "cluster", Some(&id));
        slot.diff(
            None,
            Some(serde_json::json!({"name": name, "account_id": account.id, "region": region})),
        );
        Ok(RegisterResponse::Created(Json(RegisteredCluster {
            id,
            name,
            account_id: account.id.clone(),
            region,
            provider: agents::REGISTERED_PROVIDER.into(),
            agent_status: AgentStatus::NotInstalled,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_commands_carry_the_values() {
        let i = install_commands("https://spot.example.com", "c-1", "spa_abc");
        assert!(i
            .helm
            .contains("--set controlPlaneUrl=https://spot.example.com"));
        assert!(i.helm.contains("--set clusterId=c-1 --set token=spa_abc"));
        assert!(i.kubectl.contains("--from-literal=token=spa_abc"));
        assert!(i.terraform.contains("value = \"spa_abc\""));
        assert_eq!(sh("a b'c"), "'a b'\\''c'");
    }

    #[test]
    fn poll_wait_is_bounded() {
        assert_eq!(poll_wait(None).ok(), Some(Duration::ZERO));
        assert_eq!(poll_wait(Some("wait=5")).ok(), Some(Duration::from_secs(5)));
        assert!(poll_wait(Some("wait=31")).is_err());
        assert!(poll_wait(Some("wait=-1")).is_err());
        assert!(poll_wait(Some("x=1&wait=abc")).is_err());
    }

    #[test]
    fn cluster_names_are_checked() {
        assert!(valid_cluster_name("prod-eu.1"));
        assert!(!valid_cluster_name(""));
        assert!(!valid_cluster_name("-x"));
        assert!(!valid_cluster_name("a b"));
    }
}
