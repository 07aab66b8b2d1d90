//! The optimization policy of a cluster lives in the engine (it is the planner's input);
//! re-exported here for the actors and jobs that load and store it.

pub use spot_engine::policy::{
    ClusterPolicy, DisruptionBudget, OnDemandMinimum, DEFAULT_DRAIN_TIMEOUT_SECS,
};

/// A stored template's spec; the error is a sentence naming the template.
pub fn spec_of(
    t: &spot_models::templates::TemplateRow,
) -> Result<spot_engine::template::TemplateSpec, String> {
    serde_json::from_str(&t.spec).map_err(|e| format!("stored template {} is invalid: {e}", t.name))
}

/// The organization template a cluster's policy is linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedTemplate {
    pub id: String,
    pub name: String,
}

/// The policy a cluster runs under: its stored policy (the defaults when none was saved),
/// with the node template replaced by the organization's template when the policy is
/// linked to one (so a template change reaches every cluster using it). The error is a
/// sentence for the user.
pub async fn effective(
    db: &spot_models::Db,
    org_id: &str,
    cluster_id: &str,
) -> Result<(ClusterPolicy, Option<LinkedTemplate>), String> {
    let mut policy = match spot_models::jobs::cluster_policy(db, org_id, cluster_id)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(s) => {
            ClusterPolicy::from_json(&s).map_err(|e| format!("stored policy is invalid: {e}"))?
        }
        None => ClusterPolicy::default(),
    };
    let linked = spot_models::templates::of_cluster(db, org_id, cluster_id)
        .await
        .map_err(|e| e.to_string())?;
    let linked = match linked {
        Some(t) => {
            let spec = spec_of(&t)?;
            policy.template = spec.node_template();
            Some(LinkedTemplate {
                id: t.id,
                name: t.name,
            })
        }
        None => None,
    };
    Ok((policy, linked))
}

/// The policy a cluster runs under right now: [`effective`], with the manual overrides in
/// force applied: while an instance, cluster, organization or platform override forces the
/// cluster to on-demand, the template buys only on-demand capacity (no spot launches, no
/// moves to spot). Returns the overrides too (instance-scope ones pin single nodes). Never
/// stored: the policy card and `PATCH` work on [`effective`].
pub async fn in_force(
    db: &spot_models::Db,
    org_id: &str,
    cluster_id: &str,
) -> Result<(ClusterPolicy, Vec<spot_models::overrides::Override>), String> {
    let (mut policy, _) = effective(db, org_id, cluster_id).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let overrides = spot_models::overrides::active_for_cluster(db, org_id, cluster_id, now)
        .await
        .map_err(|e| e.to_string())?;
    if overrides.iter().any(|o| o.covers_cluster()) {
        policy.template.capacity_type = spot_engine::spot::CapacityType::OnDemand;
    }
    Ok((policy, overrides))
}
