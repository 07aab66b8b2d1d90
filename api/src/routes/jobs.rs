//! Optimize Now (an apalis job per request), job status, and the cluster's optimization
//! policy.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use spot_jobs::policy::ClusterPolicy;
use spot_models::{inventory, jobs};

use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::AuditSlot;
use crate::state::AppState;

pub struct JobsApi;

// ---- Optimization policy, typed for the OpenAPI document (the engine's own types stay
// free of HTTP concerns; these mirror their JSON exactly).

/// Utilization below which a node is consolidated: conservative < 20 %, balanced < 50 %,
/// aggressive < 80 %.
#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Aggressiveness {
    Conservative,
    Balanced,
    Aggressive,
}

/// `delete_empty` (zero risk) or `replace_and_move` (evict pods / buy cheaper nodes).
#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ConsolidationMethod {
    DeleteEmpty,
    ReplaceAndMove,
}

#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub enum Architecture {
    #[oai(rename = "x86_64")]
    #[serde(rename = "x86_64")]
    X86_64,
    #[oai(rename = "arm64")]
    #[serde(rename = "arm64")]
    Arm64,
}

#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CapacityType {
    Spot,
    OnDemand,
    Hybrid,
}

/// `lowest_price`, or `capacity_optimized` (price-capacity: a few percent of price for a much
/// lower interruption risk).
#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AllocationStrategy {
    LowestPrice,
    CapacityOptimized,
}

#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RightsizePercentile {
    P95,
    P99,
}

/// Which instances the optimizer may buy for the cluster.
#[derive(Object, serde::Serialize, serde::Deserialize)]
pub struct NodeTemplate {
    /// Instance families allowed (empty: all).
    pub allowed_families: Vec<String>,
    /// Architectures allowed (empty: all).
    pub architectures: Vec<Architecture>,
    /// Sizes never bought, e.g. `metal`.
    pub excluded_sizes: Vec<String>,
    pub capacity_type: CapacityType,
    pub strategy: AllocationStrategy,
    pub allow_burstable: bool,
    /// Buy on-demand when no spot pool fits (or spot capacity is exhausted).
    pub on_demand_fallback: bool,
}

/// How a namespace's pods use spot capacity: `force` spot only (pending when none is
/// available), `prefer` spot with on-demand fallback, `never` on-demand only.
#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SpotPreference {
    Force,
    Prefer,
    Never,
}

/// A namespace's spot rule.
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotAffinity {
    pub namespace: String,
    pub mode: SpotPreference,
}

/// A `key=value` label.
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelPair {
    pub key: String,
    pub value: String,
}

/// Rightsizing operating mode: `off`, `recommend` (recommendations only; requests are
/// never patched) or `auto` (Optimize Now patches the requests of Deployments and
/// StatefulSets through the agent — a rolling update — except in a dry run).
#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RightsizeMode {
    Off,
    Recommend,
    Auto,
}

/// A cluster's optimization policy.
#[derive(Object, serde::Serialize, serde::Deserialize)]
pub struct ClusterPolicyView {
    pub aggressiveness: Aggressiveness,
    pub method: ConsolidationMethod,
    /// Namespaces whose pods are never moved.
    pub excluded_namespaces: Vec<String>,
    /// Nodes younger than this are never touched (seconds).
    pub stabilization_window_secs: i64,
    pub template: NodeTemplate,
    /// Plan and log "would execute" without touching the cloud.
    pub dry_run: bool,
    /// Plans are produced but every action is blocked.
    pub maintenance_mode: bool,
    /// Rightsizing: recommended request = this usage percentile ...
    pub rightsize_percentile: RightsizePercentile,
    /// ... plus this headroom, 0.10–0.50.
    pub rightsize_headroom: f64,
    /// How long a drain waits for PodDisruptionBudgets before the action fails and the
    /// node is uncordoned and kept (5–3600 s).
    pub drain_timeout_secs: u64,
    /// How many nodes a plan disrupts at a time.
    pub disruption_budget: DisruptionBudget,
    /// Per-workload floors of on-demand capacity ("run at least N % or N replicas of
    /// this namespace / label selector on on-demand").
    pub on_demand_minimums: Vec<OnDemandMinimum>,
    /// Risk premium of the planner's objective: a spot offer with interruption probability
    /// `p` is weighed at `price × (1 + risk_premium × p)`, plus per node `risk_premium ×
    /// (0.01 + 0.25 × p)` $/h (0 = price only; at most 10; default 3). Reported costs are
    /// always real prices.
    pub risk_premium: f64,
    /// Pods carrying any of these labels are never moved; their nodes are unmanaged.
    pub excluded_labels: Vec<LabelPair>,
    /// Per-namespace spot rules (a pod's own capacity-type node selector wins).
    pub spot_affinity: Vec<SpotAffinity>,
    pub rightsize_mode: RightsizeMode,
    /// Rightsizing reductions saving less than this (USD per month) are not recommended.
    pub rightsize_min_monthly_savings: f64,
    /// Intelligent autoscaling. Off: the cluster never gets a new node — pending pods stay
    /// pending (the cluster actor launches nothing) and Optimize Now only deletes empty
    /// nodes and drains under-utilised ones onto existing nodes (no replacement, no move
    /// to new spot capacity).
    #[serde(default = "yes")]
    pub autoscaling: bool,
    /// Enforce multi-AZ high availability: each workload's pods (same namespace and
    /// owner) are spread over availability zones on new nodes (zone skew at most 1), and
    /// consolidation never moves them to another zone.
    #[serde(default)]
    pub multi_az_spread: bool,
    /// The organization node template the policy uses (`template` is then that
    /// template's); none when the policy carries its own template.
    #[serde(default)]
    pub template_id: Option<String>,
    #[serde(default)]
    pub template_name: Option<String>,
    /// The stored version this is (none until the policy is first saved).
    #[serde(default)]
    pub version: Option<i64>,
    /// When and by whom (e-mail) the current version was saved.
    #[serde(default)]
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub updated_by: Option<String>,
}

/// One stored version of a cluster's policy.
#[derive(Object)]
pub struct PolicyVersionView {
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// E-mail of the user who saved it (the user id when the user is gone).
    pub created_by: Option<String>,
    /// Why it was made, e.g. "revert to version 3".
    pub note: Option<String>,
    pub policy: ClusterPolicyView,
}

#[derive(Object)]
pub struct PolicyVersionList {
    /// Newest first (at most 100).
    pub items: Vec<PolicyVersionView>,
}

/// Which version to restore.
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevertPolicyInput {
    pub version: i64,
}

/// At most `max_percent` % of the cluster's nodes (at least 1), and at most `max_nodes`
/// when set, are disrupted in one wave; at most `max_waves` waves per plan when set (the
/// nodes left over are kept: "disruption budget exhausted").
#[derive(Object, serde::Serialize, serde::Deserialize)]
pub struct DisruptionBudget {
    /// In (0, 100]; default 10.
    pub max_percent: f64,
    pub max_nodes: Option<u32>,
    pub max_waves: Option<u32>,
}

/// Fields of the disruption budget to set; the others keep their defaults.
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisruptionBudgetInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_waves: Option<u32>,
}

/// A pod matches when it is in `namespace` (if set) and carries every `selector` label;
/// at least `percent` % (rounded up) or `replicas` of the matching pods, whichever is
/// more, run on on-demand nodes.
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnDemandMinimum {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub selector: std::collections::BTreeMap<String, String>,
    /// 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

/// Template fields to change; the others keep their defaults.
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTemplateInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_families: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<Architecture>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_sizes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_type: Option<CapacityType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<AllocationStrategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_burstable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_demand_fallback: Option<bool>,
}

/// The policy to store. Every field is optional: a missing one takes its default (the
/// policy is replaced, not merged with the stored one).
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterPolicyInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggressiveness: Option<Aggressiveness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<ConsolidationMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_namespaces: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stabilization_window_secs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<NodeTemplateInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_mode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rightsize_percentile: Option<RightsizePercentile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rightsize_headroom: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disruption_budget: Option<DisruptionBudgetInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_demand_minimums: Option<Vec<OnDemandMinimum>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_premium: Option<f64>,
    /// Replaces the list (default `karpenter.sh/do-not-evict=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_labels: Option<Vec<LabelPair>>,
    /// Replaces the list of per-namespace spot rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot_affinity: Option<Vec<SpotAffinity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rightsize_mode: Option<RightsizeMode>,
    /// 0–10000 USD per month (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rightsize_min_monthly_savings: Option<f64>,
    /// Intelligent autoscaling on (default) or off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<bool>,
    /// Enforce multi-AZ spread of each workload's pods (default off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_az_spread: Option<bool>,
    /// Use this organization node template (its spec replaces `template`); left out, the
    /// policy carries its own `template`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
}

/// Largest what-if accepted over HTTP (the CLI has no limit).
const WHAT_IF_MAX_PODS: u64 = 20_000;

/// An engine error as a 422 naming the field (or the pod that cannot be scheduled).
fn engine_error(e: spot_engine::EngineError) -> ApiError {
    use spot_engine::EngineError as E;
    match &e {
        E::InvalidInput { field, .. } => ApiError::field(field, e.to_string()),
        E::Unschedulable { .. } => ApiError::field("pods", e.to_string()),
        E::NoCandidates(_) => ApiError::field("instance_types", e.to_string()),
        E::Solver(_) => ApiError::Internal(e.to_string()),
    }
}

/// Overlays `patch` onto `base`, objects recursively.
fn overlay(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(slot) => overlay(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// `current` with the input's fields laid over it; range errors name the field.
fn policy_over(
    current: &ClusterPolicy,
    body: &ClusterPolicyInput,
) -> Result<ClusterPolicy, ApiError> {
    let mut merged =
        serde_json::to_value(current).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut input = serde_json::to_value(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(o) = input.as_object_mut() {
        o.remove("template_id");
    }
    overlay(&mut merged, input);
    parse_policy(merged)
}

/// The policy an input describes: missing fields (also inside `template` and
/// `disruption_budget`) take their defaults; range errors name the field.
fn policy_from_input(body: &ClusterPolicyInput) -> Result<ClusterPolicy, ApiError> {
    let mut merged = serde_json::to_value(ClusterPolicy::default())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut input = serde_json::to_value(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    // The template link is not part of the engine's policy: it is stored beside it.
    if let Some(o) = input.as_object_mut() {
        o.remove("template_id");
    }
    overlay(&mut merged, input);
    parse_policy(merged)
}

/// A merged policy document, checked; errors name the field.
fn parse_policy(merged: serde_json::Value) -> Result<ClusterPolicy, ApiError> {
    let p = ClusterPolicy::from_json(&merged.to_string()).map_err(|e| {
        let field = e.split(':').next().unwrap_or("policy").trim().to_string();
        ApiError::field(
            if field.is_empty() || field == "." {
                "policy"
            } else {
                &field
            },
            e.clone(),
        )
    })?;
    if let Err((field, msg)) = p.validate() {
        return Err(ApiError::field(field, msg));
    }
    Ok(p)
}

/// What a proposed policy would do to the cluster now (computed by the planner on the
/// cluster's current snapshot; nothing changes).
#[derive(Object)]
pub struct PolicyImpact {
    /// USD per month the cluster's nodes cost now.
    pub current_monthly: f64,
    /// USD per month after the plan this policy makes.
    pub planned_monthly: f64,
    /// `planned_monthly − current_monthly` (negative: the policy saves money).
    pub monthly_difference: f64,
    /// `target`, `incremental` or `none`.
    pub strategy: String,
    /// Nodes the plan would delete, drain or replace.
    pub nodes_changed: u32,
    /// Nodes kept (each with its reason in `nodes`).
    pub nodes_kept: u32,
    /// Pods the plan would evict.
    pub pods_moved: u32,
    /// Disruption waves.
    pub waves: u32,
    /// Actions Optimize Now would run (rightsizing included).
    pub actions: u32,
    /// One decision per node, with its reason.
    pub nodes: Vec<NodeDecision>,
    /// Rules of the policy the plan cannot meet.
    pub warnings: Vec<String>,
    /// `agent` or `cloud`: where nodes and pods were read.
    pub source: String,
}

fn policy_view(
    p: &ClusterPolicy,
    linked: Option<spot_actors::policy::LinkedTemplate>,
) -> Result<ClusterPolicyView, ApiError> {
    let mut v: ClusterPolicyView = serde_json::to_value(p)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::Internal(format!("policy does not serialize: {e}")))?;
    if let Some(t) = linked {
        v.template_id = Some(t.id);
        v.template_name = Some(t.name);
    }
    Ok(v)
}

/// A cluster of the caller's organization (404 otherwise).
async fn cluster_of(
    state: &AppState,
    org: &str,
    id: &str,
) -> Result<inventory::ClusterView, ApiError> {
    inventory::cluster(&state.db, org, id)
        .await
        .map_err(ApiError::from)?
        .ok_or(ApiError::NotFound("cluster"))
}

/// Saves `p` (linked to `linked`) as the cluster's next policy version, tells the cluster
/// actor, records the audit diff and returns the view.
async fn store_policy(
    state: &AppState,
    auth: &BearerAuth,
    slot: &AuditSlot,
    cluster: &inventory::ClusterView,
    p: ClusterPolicy,
    linked: Option<spot_actors::policy::LinkedTemplate>,
    note: Option<&str>,
) -> Result<ClusterPolicyView, ApiError> {
    let org = &auth.0.org_id;
    let before = jobs::cluster_policy(&state.db, org, &cluster.id)
        .await
        .map_err(ApiError::from)?;
    let stored = serde_json::to_string(&p).map_err(|e| ApiError::Internal(e.to_string()))?;
    jobs::save_cluster_policy(
        &state.db,
        org,
        &cluster.id,
        &stored,
        linked.as_ref().map(|t| t.id.as_str()),
        Some(&auth.0.user_id),
        note,
    )
    .await
    .map_err(ApiError::from)?;
    // The cluster actor's event-driven decisions follow the new template at once.
    state
        .actors
        .set_template(&cluster.account_id, &cluster.name, p.template.clone());
    state
        .actors
        .set_autoscaling(&cluster.account_id, &cluster.name, p.autoscaling);
    let mut after = serde_json::to_value(&p).unwrap_or_default();
    if let (Some(o), Some(t)) = (after.as_object_mut(), &linked) {
        o.insert("template_id".into(), serde_json::json!(t.id));
    }
    slot.diff(
        before.and_then(|b| serde_json::from_str(&b).ok()),
        Some(after),
    );
    current_view(state, org, &cluster.id, &p, linked).await
}

/// The view of `p` with its version and who saved it.
async fn current_view(
    state: &AppState,
    org: &str,
    cluster_id: &str,
    p: &ClusterPolicy,
    linked: Option<spot_actors::policy::LinkedTemplate>,
) -> Result<ClusterPolicyView, ApiError> {
    let mut v = policy_view(p, linked)?;
    if let Some(last) = jobs::policy_versions(&state.db, org, cluster_id, 1)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .next()
    {
        v.version = Some(last.version);
        v.updated_at = Some(ts(last.created_at));
        v.updated_by = last.created_by_email.or(last.created_by);
    }
    Ok(v)
}

/// An organization template: its link and the node template it makes of the policy's.
async fn load_template(
    state: &AppState,
    org: &str,
    id: &str,
) -> Result<
    Option<(
        spot_actors::policy::LinkedTemplate,
        spot_engine::spot::NodeTemplate,
    )>,
    ApiError,
> {
    let Some(t) = spot_models::templates::get(&state.db, org, id)
        .await
        .map_err(ApiError::from)?
    else {
        return Ok(None);
    };
    let spec = spot_actors::policy::spec_of(&t).map_err(ApiError::Internal)?;
    Ok(Some((
        spot_actors::policy::LinkedTemplate {
            id: t.id,
            name: t.name,
        },
        spec.node_template(),
    )))
}

/// The organization template a policy input names: its spec replaces the policy's
/// template. 422 when it is not one of the organization's.
async fn apply_template(
    state: &AppState,
    org: &str,
    body: &ClusterPolicyInput,
    p: &mut ClusterPolicy,
) -> Result<Option<spot_actors::policy::LinkedTemplate>, ApiError> {
    let Some(id) = body.template_id.as_deref() else {
        return Ok(None);
    };
    let (linked, template) = load_template(state, org, id).await?.ok_or_else(|| {
        ApiError::field("template_id", "no such node template in this organization")
    })?;
    p.template = template;
    Ok(Some(linked))
}

/// One action of a plan.
#[derive(Object, serde::Deserialize)]
pub struct PlannedAction {
    /// `rightsize_up`, `delete_empty_node`, `drain_and_delete_node`, `replace_node`,
    /// `move_to_spot` or `rightsize_down` (execution order: stability first).
    pub kind: String,
    /// Node name, or `namespace/Kind/name` for a workload.
    pub target: String,
    pub reason: String,
    pub expected_monthly_savings: f64,
    #[serde(default)]
    pub destination: Option<PlannedDestination>,
    /// Nodes that receive the moved pods.
    #[serde(default)]
    pub receivers: Vec<String>,
    /// Further capacity a replacement buys when its pods need more than one new node.
    #[serde(default)]
    pub extra_destinations: Vec<PlannedDestination>,
}

/// Capacity an action buys.
#[derive(Object, serde::Deserialize)]
pub struct PlannedDestination {
    pub instance_type: String,
    /// `spot` or `on_demand`.
    pub lifecycle: String,
    pub az: String,
    pub hourly_price: f64,
}

/// An action the decision engine refused, and why (stability beats savings).
#[derive(Object, serde::Deserialize)]
pub struct BlockedAction {
    pub action: PlannedAction,
    pub reason: String,
}

/// What the planner decided for one node, and why.
#[derive(Object, serde::Deserialize)]
pub struct NodeDecision {
    pub node: String,
    /// `kept`, `deleted_empty`, `drained` or `replaced`.
    pub decision: String,
    /// For kept nodes: `unmanaged`, `cordoned`, `not_ready`, `do_not_disrupt`,
    /// `maintenance_mode`, `stabilization_window`, `pdb`, `unplaceable`,
    /// `method_delete_empty`, `in_target_fleet`, `well_utilized`, `pods_do_not_fit`,
    /// `saving_below_threshold` or `budget_exhausted`.
    #[serde(default)]
    pub why: Option<String>,
    /// Disruption wave (0-based) of a node that changes.
    #[serde(default)]
    pub wave: Option<u32>,
    /// New nodes receiving a replaced node's pods.
    #[serde(default)]
    pub by: Vec<String>,
    /// For a replaced node: the highest interruption probability among the new spot
    /// nodes receiving its pods (0–1).
    #[serde(default)]
    pub risk: Option<f64>,
    /// USD/h this node's change saves (0 when kept).
    pub saving_hourly: f64,
    /// Requested share of the node's allocatable (max of CPU and memory), 0–1.
    pub utilization: f64,
    /// The explanation shown to people ("why not consolidated").
    pub reason: String,
}

/// Costs of the cluster before and after the plan, USD per hour.
#[derive(Object, serde::Deserialize)]
pub struct PlanCosts {
    pub current_hourly: f64,
    pub planned_hourly: f64,
    pub saving_hourly: f64,
    pub saving_monthly: f64,
    /// Risk-weighted cost of the LP lower bound (pinned nodes + movable pods).
    pub lower_bound_hourly: f64,
    /// Relative gap of the plan's risk-weighted cost to the lower bound.
    pub gap: f64,
    /// Risk-weighted cost the planner minimised (spot at `price × (1 + risk_premium × p)`).
    #[serde(default)]
    pub objective_hourly: f64,
    /// First-fit-decreasing (Karpenter-style) risk-weighted cost on the same input.
    #[serde(default)]
    pub ffd_objective_hourly: f64,
    /// False when pods went into free room of kept nodes the bound does not know about
    /// (the lower bound is then not a proven bound).
    #[serde(default)]
    pub lower_bound_valid: bool,
}

/// The versioned action plan of an optimize job.
#[derive(Object, serde::Deserialize)]
pub struct ActionPlanView {
    pub version: u32,
    /// Seconds since the Unix epoch.
    pub generated_at: i64,
    pub actions: Vec<PlannedAction>,
    pub blocked: Vec<BlockedAction>,
    pub expected_monthly_savings: f64,
    /// `target` (the LP packer's target fleet), `incremental` (delete empty, drain
    /// under-utilised) or `none` (nothing movable).
    #[serde(default)]
    pub strategy: Option<String>,
    /// Nodes disrupted at most per wave.
    #[serde(default)]
    pub disruption_budget: Option<u32>,
    /// Number of disruption waves.
    #[serde(default)]
    pub waves: Option<u32>,
    /// One decision per node of the cluster, with its reason.
    #[serde(default)]
    pub nodes: Vec<NodeDecision>,
    #[serde(default)]
    pub costs: Option<PlanCosts>,
    /// On-demand minimums that could not be met, and similar notes.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// `agent` or `cloud`: where the nodes and pods were read.
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Object, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OptimizeRequest {
    /// Plan and log "would execute" without touching the cloud (also forced by the
    /// server's safe mode and the cluster policy's `dry_run`).
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// A job's status. `progress` is 0–100; `plan` is the versioned action plan (JSON) once
/// computed; `result` lists the actions that ran, failed and did not run.
#[derive(Object)]
pub struct JobView {
    pub id: String,
    pub kind: String,
    pub target_id: Option<String>,
    /// queued, running, succeeded, failed or cancelled.
    pub status: String,
    pub progress: i64,
    pub message: Option<String>,
    pub dry_run: bool,
    pub plan: Option<ActionPlanView>,
    /// Optimize: `{mode: execute|dry_run, executed: [{index, kind, target, status:
    /// applied|would_execute|skipped, launched?, terminated?, fallback?, asg_resized?, ...}],
    /// failed?, not_run: [...], expected_monthly_savings, realised_monthly_savings, plan_ms}`.
    /// Risk recompute: `{accounts, pools, instances, failed, model, degraded}`.
    pub result: Option<serde_json::Value>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Last heartbeat of the worker running it: a running job whose worker stops beating
    /// for a minute is failed by the reaper.
    pub heartbeat_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Safe mode was on when the job was queued: it plans and records "would execute" but
    /// never touches the cloud.
    pub safe_mode: bool,
    /// When cancellation was asked for; a running job stops at its next action boundary.
    pub cancel_requested_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Object)]
pub struct JobList {
    pub items: Vec<JobView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The largest page of `GET /api/jobs`.
pub const JOBS_MAX_PAGE: i64 = 200;

pub fn job_view(j: jobs::JobRow) -> JobView {
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    JobView {
        id: j.id,
        kind: j.kind,
        target_id: j.target_id,
        status: j.status,
        progress: j.progress,
        message: j.message,
        dry_run: j.dry_run != 0,
        plan: j.plan.and_then(|s| serde_json::from_str(&s).ok()),
        result: parse(j.result),
        created_at: ts(j.created_at),
        started_at: j.started_at.map(ts),
        finished_at: j.finished_at.map(ts),
        heartbeat_at: j.heartbeat_at.map(ts),
        safe_mode: j.safe_mode != 0,
        cancel_requested_at: j.cancel_requested_at.map(ts),
    }
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// The job is queued; poll `GET /api/jobs/{id}` or watch `job.progress` events.
    #[oai(status = 202)]
    Accepted(Json<JobView>),
}

/// Enqueues a job row on the apalis queue; a failed enqueue marks the job failed.
pub async fn enqueue(state: &AppState, job: jobs::JobRow) -> Result<JobView, ApiError> {
    if let Err(e) = state.jobs.enqueue(&job).await {
        let _ = jobs::fail_queued(&state.db, &job.id, &format!("could not queue: {e}")).await;
        return Err(ApiError::Unavailable(format!("job queue: {e}")));
    }
    Ok(job_view(job))
}

#[OpenApi(tag = "ApiTags::Inventory")]
impl JobsApi {
    /// What-if: plans a workload described in JSON (instance catalog with vCPU, memory,
    /// GPUs, arch, max pods and prices per lifecycle and zone; optional current nodes; pods
    /// with requests and constraints; PDBs; policy) with the same planner as Optimize Now,
    /// without touching any cluster. The format is `engine/whatif/workload.schema.json`
    /// (example: `engine/whatif/example.json`); the answer is the planner's report: the
    /// fleet, cost per hour, the LP lower bound and the gap, the first-fit-decreasing
    /// baseline on the same input, the disruption waves, a reason per node and per pod,
    /// and `solve_ms`. Invalid input is 422 naming the field; at most 20,000 pods.
    #[oai(path = "/plan/what-if", method = "post", operation_id = "planWhatIf")]
    async fn what_if(
        &self,
        auth: BearerAuth,
        body: Body<serde_json::Value>,
    ) -> poem::Result<Json<serde_json::Value>> {
        let _ = &auth.0;
        let workload = spot_engine::whatif::parse(&body.0.to_string()).map_err(engine_error)?;
        let pods: u64 = workload
            .pods
            .iter()
            .chain(workload.nodes.iter().flat_map(|n| n.pods.iter()))
            .map(|p| u64::from(p.replicas.unwrap_or(1)))
            .sum();
        if pods > WHAT_IF_MAX_PODS {
            return Err(ApiError::field(
                "pods",
                format!("at most {WHAT_IF_MAX_PODS} pods per what-if, got {pods}"),
            )
            .into());
        }
        // Planning is CPU-bound: off the async workers.
        let (report, solve_ms) = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let r = spot_engine::whatif::run(&workload);
            (r, started.elapsed().as_secs_f64() * 1000.0)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("planner task failed: {e}")))?;
        let report = report.map_err(engine_error)?;
        let mut value = serde_json::to_value(&report)
            .map_err(|e| ApiError::Internal(format!("report does not serialize: {e}")))?;
        if let Some(o) = value.as_object_mut() {
            o.insert("solve_ms".into(), serde_json::json!(solve_ms));
        }
        Ok(Json(value))
    }

    /// Optimize Now: plans the cluster with the engine's planner (LP target fleet, a
    /// reason for every node, disruption waves within the budget and the PDBs) and
    /// executes the plan as a background job
    /// (admins and owners). Returns 202 with the job; 409 while another optimization of the
    /// cluster is queued or running.
    #[oai(
        path = "/clusters/:id/optimize",
        method = "post",
        operation_id = "optimizeCluster"
    )]
    async fn optimize(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<OptimizeRequest>,
    ) -> poem::Result<Accepted> {
        slot.record("cluster.optimize", "cluster", Some(&id));
        auth.0.require_admin()?;
        cluster_of(&state, &auth.0.org_id, &id).await?;
        // One optimization of a cluster at a time: two plans executing at once would fight.
        if let Some(running) =
            jobs::active_for_target(&state.db, &auth.0.org_id, spot_jobs::optimize::KIND, &id)
                .await
                .map_err(ApiError::from)?
        {
            return Err(ApiError::Conflict {
                field: None,
                message: format!(
                    "an optimization of this cluster is already {} (job {})",
                    running.status, running.id
                ),
            }
            .into());
        }
        let dry_run = body.dry_run.unwrap_or(false);
        // The check above gives the friendly message; the partial unique index settles
        // two requests that pass it at the same moment.
        let job = jobs::insert(
            &state.db,
            jobs::NewJob {
                organization_id: Some(&auth.0.org_id),
                kind: spot_jobs::optimize::KIND,
                target_id: Some(&id),
                dry_run,
                requested_by: Some(&auth.0.user_id),
                safe_mode: state.cfg.safe_mode,
            },
        )
        .await
        .map_err(|e| match e {
            spot_models::DbError::Conflict(_) => ApiError::Conflict {
                field: None,
                message: "an optimization of this cluster is already queued or running".into(),
            },
            other => ApiError::from(other),
        })?;
        slot.diff(
            None,
            Some(serde_json::json!({"job_id": job.id, "dry_run": dry_run})),
        );
        Ok(Accepted::Accepted(Json(enqueue(&state, job).await?)))
    }

    /// Cancels a job (admins and owners): a queued job ends `cancelled` at once and never
    /// runs; a running one stops at its next action boundary (actions already taken stay
    /// taken and are listed in its result) and ends `cancelled`. 409 when it already ended.
    #[oai(path = "/jobs/:id/cancel", method = "post", operation_id = "cancelJob")]
    async fn cancel(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<Json<JobView>> {
        slot.record("job.cancel", "job", Some(&id));
        auth.0.require_admin()?;
        match jobs::request_cancel(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
        {
            jobs::CancelOutcome::NotFound => return Err(ApiError::NotFound("job").into()),
            jobs::CancelOutcome::AlreadyFinished(status) => {
                return Err(ApiError::Conflict {
                    field: None,
                    message: format!("the job already ended ({status})"),
                }
                .into())
            }
            jobs::CancelOutcome::Cancelled | jobs::CancelOutcome::Requested => {}
        }
        let j = jobs::get_for_org(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("job"))?;
        slot.diff(
            None,
            Some(serde_json::json!({"status": j.status, "cancel_requested_at": j.cancel_requested_at})),
        );
        if j.status == jobs::CANCELLED {
            state.actors.bus.publish(
                Some(&auth.0.org_id),
                "job.progress",
                serde_json::json!({"job_id": j.id, "kind": j.kind, "status": j.status, "progress": 100, "message": j.message}),
            );
        }
        Ok(Json(job_view(j)))
    }

    /// One job of the caller's organization.
    #[oai(path = "/jobs/:id", method = "get", operation_id = "getJob")]
    async fn job(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<JobView>> {
        let j = jobs::get_for_org(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("job"))?;
        Ok(Json(job_view(j)))
    }

    /// The organization's jobs, newest first, with cursor paging: at most `limit` per page
    /// (1–200, default 50); pass the page's `next_cursor` as `cursor` for older ones.
    #[oai(path = "/jobs", method = "get", operation_id = "listJobs")]
    async fn jobs(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The previous page's `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size, 1–200 (default 50).
        limit: Query<Option<i64>>,
    ) -> poem::Result<Json<JobList>> {
        use base64::Engine;
        let limit = limit.0.unwrap_or(50);
        if !(1..=JOBS_MAX_PAGE).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                format!("limit must be between 1 and {JOBS_MAX_PAGE}"),
            )
            .into());
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let after = match cursor.0.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                b64.decode(c)
                    .ok()
                    .and_then(|raw| serde_json::from_slice::<(i64, String)>(&raw).ok())
                    .ok_or_else(|| {
                        ApiError::field(
                            "cursor",
                            "cursor is not valid (pass the next_cursor of the previous page)",
                        )
                    })?,
            ),
        };
        let (rows, more) = jobs::page_for_org(&state.db, &auth.0.org_id, after, limit)
            .await
            .map_err(ApiError::from)?;
        let next_cursor = if more {
            rows.last()
                .map(|j| b64.encode(serde_json::to_vec(&(j.created_at, &j.id)).unwrap_or_default()))
        } else {
            None
        };
        Ok(Json(JobList {
            items: rows.into_iter().map(job_view).collect(),
            next_cursor,
        }))
    }

    /// The cluster's optimization policy (defaults when none was saved): aggressiveness
    /// (conservative < 20 %, balanced < 50 %, aggressive < 80 % utilization), method,
    /// excluded namespaces, stabilization window, node template, dry run, maintenance mode.
    #[oai(
        path = "/clusters/:id/policy",
        method = "get",
        operation_id = "getClusterPolicy"
    )]
    async fn policy(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<ClusterPolicyView>> {
        cluster_of(&state, &auth.0.org_id, &id).await?;
        let (p, linked) = spot_actors::policy::effective(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::Internal)?;
        Ok(Json(
            current_view(&state, &auth.0.org_id, &id, &p, linked).await?,
        ))
    }

    /// Estimated impact of a proposed policy: plans the cluster's current snapshot (the
    /// agent's view and the scored market) with the body's policy (missing fields take
    /// their defaults, as with PUT) and returns the monthly cost difference and what would
    /// change, node by node. Nothing is stored or executed. 422 names an invalid field; 409
    /// when the cluster cannot be read (e.g. no agent view and a cloud without one).
    #[oai(
        path = "/clusters/:id/policy/impact",
        method = "post",
        operation_id = "estimateClusterPolicyImpact"
    )]
    async fn policy_impact(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
        body: Body<ClusterPolicyInput>,
    ) -> poem::Result<Json<PolicyImpact>> {
        cluster_of(&state, &auth.0.org_id, &id).await?;
        let mut p = policy_from_input(&body)?;
        apply_template(&state, &auth.0.org_id, &body, &mut p).await?;
        let ctx = spot_jobs::JobContext {
            deps: state.deps.clone(),
            actors: state.actors.clone(),
            safe_mode: true,
        };
        let (actions, planned, source) =
            spot_jobs::optimize::estimate(&ctx, &auth.0.org_id, &id, &p)
                .await
                .map_err(|e| ApiError::Conflict {
                    field: None,
                    message: format!("the cluster cannot be planned now: {e}"),
                })?;
        let monthly = spot_engine::catalog::monthly;
        let nodes: Vec<NodeDecision> = serde_json::to_value(&planned.nodes)
            .and_then(serde_json::from_value)
            .map_err(|e| ApiError::Internal(format!("plan does not serialize: {e}")))?;
        let changed: Vec<&str> = planned
            .waves
            .iter()
            .flat_map(|w| w.actions.iter())
            .filter_map(|a| a.disrupted())
            .collect();
        let pods_moved: usize = planned
            .waves
            .iter()
            .flat_map(|w| w.actions.iter())
            .map(|a| match a {
                spot_engine::plan::PlanAction::Drain { moves, .. }
                | spot_engine::plan::PlanAction::Replace { moves, .. } => moves.len(),
                _ => 0,
            })
            .sum();
        let current = monthly(planned.costs.current_hourly);
        let after = monthly(planned.costs.planned_hourly);
        Ok(Json(PolicyImpact {
            current_monthly: current,
            planned_monthly: after,
            monthly_difference: after - current,
            strategy: serde_json::to_value(planned.strategy)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            nodes_changed: changed.len() as u32,
            nodes_kept: (planned.nodes.len().saturating_sub(changed.len())) as u32,
            pods_moved: pods_moved as u32,
            waves: planned.waves.len() as u32,
            actions: actions.actions.len() as u32,
            nodes,
            warnings: planned.warnings,
            source: source.to_string(),
        }))
    }

    /// Replaces the cluster's optimization policy (admins and owners). Unknown or invalid
    /// fields are rejected with 422 naming the field.
    #[oai(
        path = "/clusters/:id/policy",
        method = "put",
        operation_id = "putClusterPolicy"
    )]
    async fn put_policy(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<ClusterPolicyInput>,
    ) -> poem::Result<Json<ClusterPolicyView>> {
        slot.record("cluster.policy.update", "cluster", Some(&id));
        auth.0.require_admin()?;
        let cluster = cluster_of(&state, &auth.0.org_id, &id).await?;
        let mut p = policy_from_input(&body)?;
        let linked = apply_template(&state, &auth.0.org_id, &body, &mut p).await?;
        Ok(Json(
            store_policy(&state, &auth, &slot, &cluster, p, linked, None).await?,
        ))
    }

    /// Changes some fields of the cluster's policy (admins and owners): the body's fields
    /// are laid over the current policy (objects such as `template` and
    /// `disruption_budget` field by field); the rest keeps its value, including the
    /// template link unless `template_id` is given. Stored as a new version.
    #[oai(
        path = "/clusters/:id/policy",
        method = "patch",
        operation_id = "patchClusterPolicy"
    )]
    async fn patch_policy(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<ClusterPolicyInput>,
    ) -> poem::Result<Json<ClusterPolicyView>> {
        slot.record("cluster.policy.update", "cluster", Some(&id));
        auth.0.require_admin()?;
        let cluster = cluster_of(&state, &auth.0.org_id, &id).await?;
        let (current, linked) = spot_actors::policy::effective(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::Internal)?;
        let mut p = policy_over(&current, &body)?;
        let linked = match body.template_id {
            Some(_) => apply_template(&state, &auth.0.org_id, &body, &mut p).await?,
            None => linked,
        };
        Ok(Json(
            store_policy(&state, &auth, &slot, &cluster, p, linked, None).await?,
        ))
    }

    /// The cluster's policy versions, newest first (at most 100): when, by whom, and the
    /// policy as it was.
    #[oai(
        path = "/clusters/:id/policy/versions",
        method = "get",
        operation_id = "listClusterPolicyVersions"
    )]
    async fn policy_versions(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<PolicyVersionList>> {
        cluster_of(&state, &auth.0.org_id, &id).await?;
        let mut items = Vec::new();
        for v in jobs::policy_versions(&state.db, &auth.0.org_id, &id, 100)
            .await
            .map_err(ApiError::from)?
        {
            let p = ClusterPolicy::from_json(&v.policy).map_err(ApiError::Internal)?;
            let mut view = policy_view(&p, None)?;
            view.template_id = v.template_id.clone();
            view.version = Some(v.version);
            view.updated_at = Some(ts(v.created_at));
            view.updated_by = v.created_by_email.clone().or(v.created_by.clone());
            items.push(PolicyVersionView {
                version: v.version,
                created_at: ts(v.created_at),
                created_by: v.created_by_email.or(v.created_by),
                note: v.note,
                policy: view,
            });
        }
        Ok(Json(PolicyVersionList { items }))
    }

    /// Restores an earlier version of the cluster's policy (admins and owners), saved as a
    /// new version ("revert to version N"). A version linked to a template that no longer
    /// exists is restored with the template as it was stored in that version.
    #[oai(
        path = "/clusters/:id/policy/revert",
        method = "post",
        operation_id = "revertClusterPolicy"
    )]
    async fn revert_policy(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<RevertPolicyInput>,
    ) -> poem::Result<Json<ClusterPolicyView>> {
        slot.record("cluster.policy.revert", "cluster", Some(&id));
        auth.0.require_admin()?;
        let cluster = cluster_of(&state, &auth.0.org_id, &id).await?;
        let v = jobs::policy_version(&state.db, &auth.0.org_id, &id, body.version)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| {
                ApiError::field(
                    "version",
                    format!("this cluster's policy has no version {}", body.version),
                )
            })?;
        let mut p = ClusterPolicy::from_json(&v.policy).map_err(ApiError::Internal)?;
        let linked = match &v.template_id {
            Some(tid) => {
                load_template(&state, &auth.0.org_id, tid)
                    .await?
                    .map(|(linked, template)| {
                        p.template = template;
                        linked
                    })
            }
            None => None,
        };
        let note = format!("revert to version {}", v.version);
        Ok(Json(
            store_policy(&state, &auth, &slot, &cluster, p, linked, Some(&note)).await?,
        ))
    }
}

fn yes() -> bool {
    true
}
