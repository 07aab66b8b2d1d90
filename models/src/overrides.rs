//! Manual capacity overrides ("force on-demand"): at the scope of one instance, a cluster,
//! an organization or the whole platform, for a duration or until revoked. While one is
//! active the planner keeps the covered capacity on demand; the sweep ends expired ones
//! (the timer is a row, so it survives restarts) and hands their clusters back to the
//! policy.

use serde::Serialize;

use crate::error::Result;
use crate::{new_id, now_ms, Db};

/// Where an override applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Instance,
    Cluster,
    Organization,
    Platform,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Instance => "instance",
            Scope::Cluster => "cluster",
            Scope::Organization => "organization",
            Scope::Platform => "platform",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Override {
    pub id: String,
    pub organization_id: Option<String>,
    pub scope: String,
    pub cluster_id: Option<String>,
    pub instance_id: Option<String>,
    pub replacement_instance_id: Option<String>,
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub ended_by: Option<String>,
    pub end_reason: Option<String>,
}

impl Override {
    /// Active at `now` (ms): not ended and not past its expiry.
    pub fn active_at(&self, now: i64) -> bool {
        self.ended_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }

    /// Whether it covers the whole cluster (not just one of its instances).
    pub fn covers_cluster(&self) -> bool {
        self.scope != Scope::Instance.as_str()
    }

    /// The instance the planner keeps on demand (instance scope): the replacement once
    /// the force job made one, else the instance as forced.
    pub fn pinned_instance(&self) -> Option<&str> {
        if self.scope != Scope::Instance.as_str() {
            return None;
        }
        self.replacement_instance_id
            .as_deref()
            .or(self.instance_id.as_deref())
    }
}

const COLS: &str = "id, organization_id, scope, cluster_id, instance_id, replacement_instance_id, reason, created_by, created_at, expires_at, ended_at, ended_by, end_reason";

/// What a new override says.
#[derive(Debug, Clone)]
pub struct NewOverride<'a> {
    pub organization_id: Option<&'a str>,
    pub scope: Scope,
    pub cluster_id: Option<&'a str>,
    pub instance_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub created_by: &'a str,
    pub expires_at: Option<i64>,
}

pub async fn create(db: &Db, o: NewOverride<'_>) -> Result<Override> {
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO capacity_overrides (id, organization_id, scope, cluster_id, instance_id, reason, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(o.organization_id)
    .bind(o.scope.as_str())
    .bind(o.cluster_id)
    .bind(o.instance_id)
    .bind(o.reason)
    .bind(o.created_by)
    .bind(now)
    .bind(o.expires_at)
    .execute(&db.pool)
    .await?;
    Ok(get(db, &id)
        .await?
        .ok_or_else(|| crate::DbError::Corrupt("override vanished".into()))?)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

/// One override visible to the organization (its own, or a platform one).
pub async fn get_for_org(db: &Db, org_id: &str, id: &str) -> Result<Option<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides WHERE id = $1 AND (organization_id = $2 OR organization_id IS NULL)"
    )))
    .bind(id)
    .bind(org_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// The organization's overrides (with the platform's), active first, newest first;
/// ended ones from the last `ended_within_ms`.
pub async fn list(db: &Db, org_id: &str, ended_within_ms: i64) -> Result<Vec<Override>> {
    let now = now_ms();
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides \
         WHERE (organization_id = $1 OR organization_id IS NULL) AND (ended_at IS NULL OR ended_at >= $2) \
         ORDER BY CASE WHEN ended_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id"
    )))
    .bind(org_id)
    .bind(now - ended_within_ms)
    .fetch_all(&db.pool)
    .await?)
}

/// Every platform-scope override (super-admins), newest first.
pub async fn list_platform(db: &Db) -> Result<Vec<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides WHERE scope = 'platform' ORDER BY created_at DESC, id LIMIT 100"
    )))
    .fetch_all(&db.pool)
    .await?)
}

/// Overrides in force for a cluster of `org_id` at `now` (ms): its own instance and
/// cluster ones, the organization's and the platform's.
pub async fn active_for_cluster(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    now: i64,
) -> Result<Vec<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides \
         WHERE ended_at IS NULL AND (expires_at IS NULL OR expires_at > $3) \
           AND ((organization_id = $1 AND (cluster_id = $2 OR scope = 'organization')) OR scope = 'platform') \
         ORDER BY created_at, id"
    )))
    .bind(org_id)
    .bind(cluster_id)
    .bind(now)
    .fetch_all(&db.pool)
    .await?)
}

/// Ends an override (revoked by a user, or expired: `by` = `system`). `false` when it
/// had already ended.
pub async fn end(db: &Db, id: &str, by: &str, reason: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE capacity_overrides SET ended_at = $1, ended_by = $2, end_reason = $3 WHERE id = $4 AND ended_at IS NULL",
    )
    .bind(now_ms())
    .bind(by)
    .bind(reason)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Overrides past their expiry and not yet ended.
pub async fn due(db: &Db, now: i64) -> Result<Vec<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides WHERE ended_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at, id"
    )))
    .bind(now)
    .fetch_all(&db.pool)
    .await?)
}

/// Records the on-demand instance that replaced an instance-scope override's instance.
pub async fn set_replacement(db: &Db, id: &str, instance_id: &str) -> Result<()> {
    sqlx::query("UPDATE capacity_overrides SET replacement_instance_id = $1 WHERE id = $2")
        .bind(instance_id)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The live clusters an override covers: (organization id, cluster id).
pub async fn clusters_of(db: &Db, o: &Override) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = match (o.scope.as_str(), &o.organization_id, &o.cluster_id) {
        ("instance" | "cluster", Some(org), Some(cluster)) => sqlx::query_as(
            "SELECT organization_id, id FROM clusters WHERE organization_id = $1 AND id = $2 AND gone_at IS NULL",
        )
        .bind(org)
        .bind(cluster)
        .fetch_all(&db.pool)
        .await?,
        ("organization", Some(org), _) => sqlx::query_as(
            "SELECT organization_id, id FROM clusters WHERE organization_id = $1 AND gone_at IS NULL ORDER BY name",
        )
        .bind(org)
        .fetch_all(&db.pool)
        .await?,
        ("platform", _, _) => sqlx::query_as(
            "SELECT organization_id, id FROM clusters WHERE gone_at IS NULL ORDER BY organization_id, name",
        )
        .fetch_all(&db.pool)
        .await?,
        _ => Vec::new(),
    };
    Ok(rows)
}

/// Every override active at `now` (ms), oldest first.
pub async fn active(db: &Db, now: i64) -> Result<Vec<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides WHERE ended_at IS NULL AND (expires_at IS NULL OR expires_at > $1) ORDER BY created_at, id"
    )))
    .bind(now)
    .fetch_all(&db.pool)
    .await?)
}

/// Clusters an active override covers that have had no force job since the override
/// began (their cluster was busy when it started, or appeared since): (override,
/// organization id, cluster id).
pub async fn uncovered_clusters(db: &Db, now: i64) -> Result<Vec<(Override, String, String)>> {
    let mut out = Vec::new();
    for o in active(db, now).await? {
        for (org, cluster) in clusters_of(db, &o).await? {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM jobs WHERE kind = 'force_on_demand' AND target_id = $1 AND created_at >= $2",
            )
            .bind(&cluster)
            .bind(o.created_at)
            .fetch_one(&db.pool)
            .await?;
            if n == 0
                && !out
                    .iter()
                    .any(|(_, _, c): &(Override, String, String)| *c == cluster)
            {
                out.push((o.clone(), org, cluster));
            }
        }
    }
    Ok(out)
}

/// The kind of the jobs that make clusters comply with overrides (`spot_jobs::force::KIND`).
pub const FORCE_JOB_KIND: &str = "force_on_demand";

/// A cluster an override covers, with the names people know it by.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CoveredCluster {
    pub organization_id: String,
    pub organization_name: String,
    pub cluster_id: String,
    pub cluster_name: String,
    /// Running or pending spot nodes of the cluster in the inventory now: what is still to
    /// switch before its force job has planned.
    pub spot_nodes: i64,
}

/// Where one covered cluster stands: its latest force job since the override began.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterProgress {
    pub organization_id: String,
    pub organization_name: String,
    pub cluster_id: String,
    pub cluster_name: String,
    /// None: no force job yet (the cluster was busy; the sweep queues it).
    pub job_id: Option<String>,
    /// queued, running, succeeded, failed or cancelled; None without a job.
    pub job_status: Option<String>,
    pub job_message: Option<String>,
    /// The job plans and records only (safe mode or a dry-run policy): nothing is switched.
    pub dry_run: bool,
    /// Spot nodes the force job replaces (its plan's actions); before it planned (or when
    /// it failed before planning), the cluster's spot nodes in the inventory.
    pub nodes_to_switch: i64,
    /// Whether `nodes_to_switch` comes from the plan (false: the inventory estimate).
    pub planned: bool,
    /// Replacements the executor applied.
    pub nodes_switched: i64,
    /// Spot nodes the plan could not replace (no on-demand price for their type).
    pub blocked: i64,
}

/// An override's progress across every cluster it covers, computed from the stored jobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverrideProgress {
    pub clusters: Vec<ClusterProgress>,
    pub nodes_to_switch: i64,
    pub nodes_switched: i64,
    pub blocked: i64,
    /// Clusters with a force job.
    pub jobs_total: i64,
    /// Of those, jobs that ended (succeeded, failed or cancelled).
    pub jobs_finished: i64,
    /// Of those, jobs that failed or were cancelled.
    pub jobs_failed: i64,
    /// Covered clusters still without a force job.
    pub clusters_waiting: i64,
    /// Every covered cluster's force job ended.
    pub complete: bool,
    /// Complete, and every spot node covered was switched: nothing left to switch, nothing
    /// blocked, no dry run short of its plan.
    pub all_switched: bool,
}

fn is_final(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled")
}

/// One cluster's figures from its force job (`None`: no job yet); `live` is what a
/// running job has applied so far (its result counts once it ends).
fn cluster_progress(
    c: &CoveredCluster,
    job: Option<&crate::jobs::JobRow>,
    live: Option<i64>,
) -> ClusterProgress {
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
    };
    let (plan, result) = job.map_or((None, None), |j| (parse(&j.plan), parse(&j.result)));
    // The plan's actions: the result's count once the job finished, else the stored plan.
    let planned_actions = result
        .as_ref()
        .and_then(|r| r["actions"].as_i64())
        .or_else(|| {
            plan.as_ref()
                .and_then(|p| p["actions"].as_array())
                .map(|a| a.len() as i64)
        });
    let blocked = result
        .as_ref()
        .and_then(|r| r["blocked"].as_i64())
        .or_else(|| {
            plan.as_ref()
                .and_then(|p| p["blocked"].as_array())
                .map(|a| a.len() as i64)
        })
        .unwrap_or(0);
    let switched = result
        .as_ref()
        .and_then(|r| r["executed"].as_array())
        .map(|e| {
            e.iter()
                .filter(|d| d["status"].as_str() == Some("applied"))
                .count() as i64
        })
        .or(live)
        .unwrap_or(0);
    let dry_run = job.is_some_and(|j| j.dry_run != 0 || j.safe_mode != 0)
        || result
            .as_ref()
            .is_some_and(|r| r["mode"].as_str() == Some("dry_run"));
    ClusterProgress {
        organization_id: c.organization_id.clone(),
        organization_name: c.organization_name.clone(),
        cluster_id: c.cluster_id.clone(),
        cluster_name: c.cluster_name.clone(),
        job_id: job.map(|j| j.id.clone()),
        job_status: job.map(|j| j.status.clone()),
        job_message: job.and_then(|j| j.message.clone()),
        dry_run,
        nodes_to_switch: planned_actions.unwrap_or(c.spot_nodes).max(switched),
        planned: planned_actions.is_some(),
        nodes_switched: switched,
        blocked,
    }
}

/// The progress of an override over `covered` clusters from `force_jobs` (force jobs
/// created while it was in force, oldest first): each cluster's latest job counts.
/// `live` holds, by job id, the replacements running jobs applied so far.
pub fn summarize(
    covered: &[CoveredCluster],
    force_jobs: &[crate::jobs::JobRow],
    live: &std::collections::HashMap<String, i64>,
) -> OverrideProgress {
    let clusters: Vec<ClusterProgress> = covered
        .iter()
        .map(|c| {
            let job = force_jobs
                .iter()
                .rev()
                .find(|j| j.target_id.as_deref() == Some(c.cluster_id.as_str()));
            cluster_progress(c, job, job.and_then(|j| live.get(&j.id).copied()))
        })
        .collect();
    let sum = |f: fn(&ClusterProgress) -> i64| clusters.iter().map(f).sum::<i64>();
    let nodes_to_switch = sum(|c| c.nodes_to_switch);
    let nodes_switched = sum(|c| c.nodes_switched);
    let blocked = sum(|c| c.blocked);
    let jobs_total = sum(|c| i64::from(c.job_status.is_some()));
    let jobs_finished = sum(|c| i64::from(c.job_status.as_deref().is_some_and(is_final)));
    let jobs_failed = sum(|c| {
        i64::from(matches!(
            c.job_status.as_deref(),
            Some("failed" | "cancelled")
        ))
    });
    let clusters_waiting = clusters.len() as i64 - jobs_total;
    let complete = clusters_waiting == 0 && jobs_finished == jobs_total;
    OverrideProgress {
        all_switched: complete && nodes_switched >= nodes_to_switch && blocked == 0,
        clusters,
        nodes_to_switch,
        nodes_switched,
        blocked,
        jobs_total,
        jobs_finished,
        jobs_failed,
        clusters_waiting,
        complete,
    }
}

/// The clusters an override covers ([`clusters_of`]) with their organization's and their
/// own names and their spot nodes in the inventory, ordered by organization and cluster name.
pub async fn covered_clusters(db: &Db, o: &Override) -> Result<Vec<CoveredCluster>> {
    let ids = clusters_of(db, o).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let named: Vec<CoveredCluster> = sqlx::query_as(
        "SELECT c.organization_id AS organization_id, g.name AS organization_name, c.id AS cluster_id, c.name AS cluster_name, \
         (SELECT COUNT(*) FROM instances i WHERE i.cluster_id = c.id AND i.gone_at IS NULL AND i.state IN ('running', 'pending') AND i.lifecycle = 'spot') AS spot_nodes \
         FROM clusters c JOIN organizations g ON g.id = c.organization_id \
         WHERE c.gone_at IS NULL ORDER BY g.name, c.organization_id, c.name, c.id",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(named
        .into_iter()
        .filter(|c| {
            ids.iter()
                .any(|(org, id)| *org == c.organization_id && *id == c.cluster_id)
        })
        .collect())
}

/// Replacements a force job applied so far, from its per-action audit records (the job's
/// result lists them only once it ends).
async fn applied_so_far(db: &Db, job: &crate::jobs::JobRow) -> Result<i64> {
    let (Some(org), Some(started)) = (job.organization_id.as_deref(), job.started_at) else {
        return Ok(0);
    };
    let diffs: Vec<(String,)> = sqlx::query_as(
        "SELECT diff FROM audit_logs WHERE organization_id = $1 AND ts >= $2 \
         AND action = 'force_on_demand.action' AND resource_type = 'job' AND resource_id = $3",
    )
    .bind(org)
    .bind(started)
    .bind(&job.id)
    .fetch_all(&db.pool)
    .await?;
    Ok(diffs
        .iter()
        .filter(|(d,)| {
            serde_json::from_str::<serde_json::Value>(d)
                .is_ok_and(|v| v["after"]["detail"]["status"].as_str() == Some("applied"))
        })
        .count() as i64)
}

/// The override's progress now: the force jobs created while it was in force, per covered
/// cluster ([`summarize`]), running ones counted action by action.
pub async fn progress(db: &Db, o: &Override) -> Result<OverrideProgress> {
    let covered = covered_clusters(db, o).await?;
    let jobs = crate::jobs::of_kind_between(db, FORCE_JOB_KIND, o.created_at, o.ended_at).await?;
    let mut live = std::collections::HashMap::new();
    for j in jobs
        .iter()
        .filter(|j| j.status == crate::jobs::RUNNING && j.result.is_none())
    {
        live.insert(j.id.clone(), applied_so_far(db, j).await?);
    }
    Ok(summarize(&covered, &jobs, &live))
}

#[cfg(test)]
mod progress_tests {
    use super::*;
    use crate::jobs::JobRow;

    fn cluster(id: &str, spot: i64) -> CoveredCluster {
        CoveredCluster {
            organization_id: format!("org-{id}"),
            organization_name: format!("Org {id}"),
            cluster_id: id.into(),
            cluster_name: format!("eks-{id}"),
            spot_nodes: spot,
        }
    }

    fn job(
        id: &str,
        target: &str,
        status: &str,
        plan: Option<&str>,
        result: Option<&str>,
    ) -> JobRow {
        JobRow {
            id: id.into(),
            organization_id: Some(format!("org-{target}")),
            kind: FORCE_JOB_KIND.into(),
            target_id: Some(target.into()),
            status: status.into(),
            progress: 0,
            message: None,
            dry_run: 0,
            plan: plan.map(str::to_string),
            result: result.map(str::to_string),
            requested_by: None,
            created_at: 0,
            started_at: None,
            finished_at: None,
            heartbeat_at: None,
            worker_id: None,
            safe_mode: 0,
            cancel_requested_at: None,
        }
    }

    #[test]
    fn counts_planned_and_applied_replacements_per_cluster() {
        let covered = [cluster("a", 3), cluster("b", 4), cluster("c", 2)];
        let jobs = [
            job(
                "j1",
                "a",
                "succeeded",
                Some(r#"{"actions":[{},{},{}],"blocked":[]}"#),
                Some(
                    r#"{"mode":"execute","actions":3,"blocked":0,"executed":[{"status":"applied"},{"status":"applied"},{"status":"applied"}]}"#,
                ),
            ),
            job(
                "j2",
                "b",
                "running",
                Some(r#"{"actions":[{},{}],"blocked":[]}"#),
                None,
            ),
        ];
        let p = summarize(&covered, &jobs, &Default::default());
        assert_eq!((p.nodes_switched, p.nodes_to_switch), (3, 3 + 2 + 2));
        assert_eq!(
            (
                p.jobs_total,
                p.jobs_finished,
                p.jobs_failed,
                p.clusters_waiting
            ),
            (2, 1, 0, 1)
        );
        assert!(!p.complete && !p.all_switched);
        assert!(p.clusters[1].planned && !p.clusters[2].planned);
        assert_eq!(p.clusters[2].job_status, None);
        // A running job counts its replacements as they are applied.
        let live = std::collections::HashMap::from([("j2".to_string(), 1)]);
        let p = summarize(&covered, &jobs, &live);
        assert_eq!(p.clusters[1].nodes_switched, 1);
        assert_eq!(p.nodes_switched, 4);
    }

    #[test]
    fn complete_only_when_every_cluster_ended_and_all_switched_only_without_leftovers() {
        let covered = [cluster("a", 2), cluster("b", 0)];
        let done_a = job(
            "j1",
            "a",
            "succeeded",
            None,
            Some(
                r#"{"mode":"execute","actions":2,"blocked":0,"executed":[{"status":"applied"},{"status":"applied"}]}"#,
            ),
        );
        // A cluster with nothing on spot whose job failed (no agent) leaves nothing unswitched.
        let failed_b = job(
            "j2",
            "b",
            "failed",
            None,
            Some(r#"{"executed":[],"not_run":[]}"#),
        );
        let p = summarize(&covered, &[done_a.clone(), failed_b], &Default::default());
        assert!(p.complete && p.all_switched, "{p:?}");
        assert_eq!(p.jobs_failed, 1);
        // The same failure on a cluster with spot nodes does leave them.
        let covered = [cluster("a", 2), cluster("b", 5)];
        let failed_b = job(
            "j2",
            "b",
            "failed",
            None,
            Some(r#"{"executed":[],"not_run":[]}"#),
        );
        let p = summarize(&covered, &[done_a.clone(), failed_b], &Default::default());
        assert!(p.complete && !p.all_switched);
        assert_eq!((p.nodes_switched, p.nodes_to_switch), (2, 7));
        // A dry run plans but switches nothing.
        let dry = job(
            "j3",
            "b",
            "succeeded",
            None,
            Some(
                r#"{"mode":"dry_run","actions":5,"blocked":0,"executed":[{"status":"would_execute"}]}"#,
            ),
        );
        let p = summarize(&covered, &[done_a.clone(), dry], &Default::default());
        assert!(p.complete && !p.all_switched && p.clusters[1].dry_run);
        // The latest job of a cluster counts; a blocked node keeps it from "all switched".
        let retry = job(
            "j4",
            "b",
            "succeeded",
            None,
            Some(
                r#"{"mode":"execute","actions":4,"blocked":1,"executed":[{"status":"applied"},{"status":"applied"},{"status":"applied"},{"status":"applied"}]}"#,
            ),
        );
        let earlier = job("j0", "b", "failed", None, None);
        let p = summarize(&covered, &[earlier, done_a, retry], &Default::default());
        assert_eq!(p.clusters[1].job_id.as_deref(), Some("j4"));
        assert_eq!((p.nodes_switched, p.nodes_to_switch, p.blocked), (6, 6, 1));
        assert!(p.complete && !p.all_switched);
    }

    #[test]
    fn nothing_covered_is_trivially_complete() {
        let p = summarize(&[], &[], &Default::default());
        assert!(p.complete && p.all_switched);
        assert_eq!(p.nodes_to_switch, 0);
    }
}
