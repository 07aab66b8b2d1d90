//! The typed queue messages: one struct per job kind, carried by apalis as a tagged enum.
//!
//! The `jobs` row stays the record users see (status, progress, plan, result); the message
//! says what to run. It is built from the row when the job is queued
//! ([`QueuedJob::for_row`]: an unknown kind or a row missing what its kind needs is refused
//! then, not by a worker later), and checked against the row again when it is delivered
//! ([`QueuedJob::matches`]): a message whose kind, cluster or dry-run flag disagrees with its
//! row is not run.

use serde::{Deserialize, Serialize};
use spot_models::jobs::JobRow;

use crate::{force, lab, optimize, recompute, waste};

/// "Optimize Now" on one cluster (plan, then execute unless a dry run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptimizeJob {
    pub job_id: String,
    pub cluster_id: String,
    pub dry_run: bool,
}

/// Force on-demand: replace one cluster's spot nodes by on-demand ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForceOnDemandJob {
    pub job_id: String,
    pub cluster_id: String,
}

/// The Lab's live single-instance switch (its switch record names the instance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSwitchJob {
    pub job_id: String,
}

/// Platform-wide risk recompute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskRecomputeJob {
    pub job_id: String,
}

/// Which clean-up batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cleanup {
    /// Orphaned volumes: snapshot, wait, delete.
    Volumes,
    /// Unused snapshots: re-verify, delete.
    Snapshots,
    /// Unregistered instances: authorize or terminate.
    UnregisteredInstances,
}

impl Cleanup {
    pub fn kind(self) -> &'static str {
        match self {
            Cleanup::Volumes => waste::CLEANUP_VOLUMES,
            Cleanup::Snapshots => waste::CLEANUP_SNAPSHOTS,
            Cleanup::UnregisteredInstances => waste::TERMINATE_UNREGISTERED,
        }
    }
}

/// A waste clean-up batch (its items are rows of `job_items`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupJob {
    pub job_id: String,
    pub batch: Cleanup,
}

/// What goes on the queue: one variant per kind, each with its own struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QueuedJob {
    Optimize(OptimizeJob),
    ForceOnDemand(ForceOnDemandJob),
    LabSwitch(LabSwitchJob),
    RiskRecompute(RiskRecomputeJob),
    Cleanup(CleanupJob),
}

/// Why a row cannot be queued, or a message not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("unknown job kind `{0}`")]
    UnknownKind(String),
    #[error("a `{kind}` job needs a target cluster")]
    MissingTarget { kind: String },
    #[error("the queued message ({message}) does not match its job row ({row})")]
    Mismatch { message: String, row: String },
}

impl QueuedJob {
    /// The typed message for a job row.
    pub fn for_row(row: &JobRow) -> Result<QueuedJob, MessageError> {
        let job_id = row.id.clone();
        let cluster = || {
            row.target_id
                .clone()
                .ok_or_else(|| MessageError::MissingTarget {
                    kind: row.kind.clone(),
                })
        };
        Ok(match row.kind.as_str() {
            optimize::KIND => QueuedJob::Optimize(OptimizeJob {
                job_id,
                cluster_id: cluster()?,
                dry_run: row.dry_run != 0,
            }),
            force::KIND => QueuedJob::ForceOnDemand(ForceOnDemandJob {
                job_id,
                cluster_id: cluster()?,
            }),
            lab::SWITCH_KIND => QueuedJob::LabSwitch(LabSwitchJob { job_id }),
            recompute::KIND => QueuedJob::RiskRecompute(RiskRecomputeJob { job_id }),
            waste::CLEANUP_VOLUMES => QueuedJob::Cleanup(CleanupJob {
                job_id,
                batch: Cleanup::Volumes,
            }),
            waste::CLEANUP_SNAPSHOTS => QueuedJob::Cleanup(CleanupJob {
                job_id,
                batch: Cleanup::Snapshots,
            }),
            waste::TERMINATE_UNREGISTERED => QueuedJob::Cleanup(CleanupJob {
                job_id,
                batch: Cleanup::UnregisteredInstances,
            }),
            other => return Err(MessageError::UnknownKind(other.to_string())),
        })
    }

    pub fn job_id(&self) -> &str {
        match self {
            QueuedJob::Optimize(j) => &j.job_id,
            QueuedJob::ForceOnDemand(j) => &j.job_id,
            QueuedJob::LabSwitch(j) => &j.job_id,
            QueuedJob::RiskRecompute(j) => &j.job_id,
            QueuedJob::Cleanup(j) => &j.job_id,
        }
    }

    /// The `jobs.kind` this message runs.
    pub fn kind(&self) -> &'static str {
        match self {
            QueuedJob::Optimize(_) => optimize::KIND,
            QueuedJob::ForceOnDemand(_) => force::KIND,
            QueuedJob::LabSwitch(_) => lab::SWITCH_KIND,
            QueuedJob::RiskRecompute(_) => recompute::KIND,
            QueuedJob::Cleanup(j) => j.batch.kind(),
        }
    }

    /// The message agrees with the row it was delivered for (same job, kind, cluster and
    /// dry-run flag): what was queued is what the user asked for.
    pub fn matches(&self, row: &JobRow) -> Result<(), MessageError> {
        match QueuedJob::for_row(row) {
            Ok(expected) if &expected == self => Ok(()),
            Ok(expected) => Err(MessageError::Mismatch {
                message: describe(self),
                row: describe(&expected),
            }),
            Err(e) => Err(e),
        }
    }
}

fn describe(j: &QueuedJob) -> String {
    serde_json::to_string(j).unwrap_or_else(|_| j.kind().to_string())
}

/// What apalis stores: the typed message, or the id-only message of queues written before
/// messages were typed (its kind is read from the row when it is delivered).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Envelope {
    Typed(QueuedJob),
    Legacy(crate::JobRequest),
}

impl Envelope {
    pub fn job_id(&self) -> &str {
        match self {
            Envelope::Typed(j) => j.job_id(),
            Envelope::Legacy(r) => &r.job_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, target: Option<&str>, dry: bool) -> JobRow {
        JobRow {
            id: "j1".into(),
            organization_id: Some("o".into()),
            kind: kind.into(),
            target_id: target.map(str::to_string),
            status: "queued".into(),
            progress: 0,
            message: None,
            dry_run: dry as i64,
            plan: None,
            result: None,
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
    fn every_kind_has_its_own_message_and_round_trips() {
        for (kind, target) in [
            (optimize::KIND, Some("c1")),
            (force::KIND, Some("c1")),
            (lab::SWITCH_KIND, None),
            (recompute::KIND, None),
            (waste::CLEANUP_VOLUMES, None),
            (waste::CLEANUP_SNAPSHOTS, None),
            (waste::TERMINATE_UNREGISTERED, None),
        ] {
            let r = row(kind, target, false);
            let m = QueuedJob::for_row(&r).expect(kind);
            assert_eq!(m.kind(), kind);
            assert_eq!(m.job_id(), "j1");
            let text = serde_json::to_string(&Envelope::Typed(m.clone())).expect("json");
            match serde_json::from_str::<Envelope>(&text).expect("decode") {
                Envelope::Typed(back) => assert_eq!(back, m),
                Envelope::Legacy(_) => panic!("{kind} decoded as a legacy message: {text}"),
            }
            assert_eq!(m.matches(&r), Ok(()));
        }
        let m = QueuedJob::for_row(&row(optimize::KIND, Some("c1"), true)).expect("optimize");
        assert_eq!(
            serde_json::to_value(&m).expect("json"),
            serde_json::json!({"type": "optimize", "job_id": "j1", "cluster_id": "c1", "dry_run": true})
        );
    }

    #[test]
    fn rows_that_cannot_be_queued_are_refused() {
        assert_eq!(
            QueuedJob::for_row(&row("mine_bitcoin", None, false)),
            Err(MessageError::UnknownKind("mine_bitcoin".into()))
        );
        assert!(matches!(
            QueuedJob::for_row(&row(optimize::KIND, None, false)),
            Err(MessageError::MissingTarget { .. })
        ));
    }

    #[test]
    fn a_message_that_disagrees_with_its_row_is_not_run() {
        let real = QueuedJob::for_row(&row(optimize::KIND, Some("c1"), true)).expect("dry");
        // The row says dry run; a message asking for a real run must not pass.
        let tampered = QueuedJob::Optimize(OptimizeJob {
            job_id: "j1".into(),
            cluster_id: "c1".into(),
            dry_run: false,
        });
        assert_ne!(real, tampered);
        assert!(matches!(
            tampered.matches(&row(optimize::KIND, Some("c1"), true)),
            Err(MessageError::Mismatch { .. })
        ));
        let other_cluster = QueuedJob::ForceOnDemand(ForceOnDemandJob {
            job_id: "j1".into(),
            cluster_id: "c2".into(),
        });
        assert!(other_cluster
            .matches(&row(force::KIND, Some("c1"), false))
            .is_err());
        assert!(real
            .matches(&row(waste::CLEANUP_VOLUMES, None, false))
            .is_err());
    }

    #[test]
    fn legacy_id_only_messages_still_decode() {
        let e: Envelope = serde_json::from_str(r#"{"job_id":"old"}"#).expect("legacy");
        assert!(matches!(e, Envelope::Legacy(_)));
        assert_eq!(e.job_id(), "old");
    }
}
