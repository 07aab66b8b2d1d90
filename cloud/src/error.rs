//! The one error type of the `Cloud` port.
//!
//! Adapters translate provider error codes into these variants so callers can decide
//! what to do without knowing the provider: back off and retry (`Throttled`), fall back
//! to another pool or to on-demand (`InsufficientCapacity`), mark the linked account as
//! broken (`Unauthorized`), or treat a vanished resource as already handled (`NotFound`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Result alias used throughout the crate.
pub type Result<T, E = CloudError> = std::result::Result<T, E>;

/// The kind of resource a [`CloudError::NotFound`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Instance,
    Volume,
    Snapshot,
    AutoScalingGroup,
    EksCluster,
    Pod,
    InstanceType,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ResourceKind::Instance => "instance",
            ResourceKind::Volume => "volume",
            ResourceKind::Snapshot => "snapshot",
            ResourceKind::AutoScalingGroup => "auto scaling group",
            ResourceKind::EksCluster => "EKS cluster",
            ResourceKind::Pod => "pod",
            ResourceKind::InstanceType => "instance type",
        };
        f.write_str(s)
    }
}

/// Every failure a [`crate::Cloud`] call can report.
///
/// There is deliberately no `DryRunOperation` variant: AWS reports a successful dry run
/// as an error, but the port returns it as [`crate::Mutation::DryRun`] so that callers
/// never confuse "would have succeeded" with a failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CloudError {
    /// The provider rate-limited the call (AWS `RequestLimitExceeded` / `Throttling`).
    /// Retry with backoff, no sooner than `retry_after` when given.
    #[error("throttled by the cloud provider{}", fmt_retry(retry_after))]
    Throttled { retry_after: Option<Duration> },

    /// The capacity pool (instance type in an AZ) cannot serve the request right now
    /// (AWS `InsufficientInstanceCapacity`). Try another pool or on-demand.
    #[error("insufficient capacity for {instance_type} in {az}")]
    InsufficientCapacity { instance_type: String, az: String },

    /// Credentials are invalid, expired, or lack permission. Not retryable: the account
    /// needs attention.
    #[error("unauthorized: {0}")]
    Unauthorized(String),

    /// The named resource does not exist (or no longer does).
    #[error("{kind} {id} not found")]
    NotFound { kind: ResourceKind, id: String },

    /// A request parameter was rejected; retrying the same request cannot succeed.
    #[error("invalid {field}: {msg}")]
    Invalid { field: String, msg: String },

    /// The adapter cannot answer this call (e.g. pod inventory from the AWS API, which
    /// comes from the in-cluster agent instead).
    #[error("unsupported by this cloud adapter: {0}")]
    Unsupported(String),

    /// Anything else; the message is for humans.
    #[error("cloud provider error: {0}")]
    Other(String),
}

fn fmt_retry(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {} ms)", d.as_millis()),
        None => String::new(),
    }
}

impl CloudError {
    /// True when the same call may succeed later without any change by the caller.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CloudError::Throttled { .. })
    }

    /// True when the failure says "no capacity here", so a fallback pool is the answer.
    pub fn is_capacity(&self) -> bool {
        matches!(self, CloudError::InsufficientCapacity { .. })
    }

    /// Shorthand used by adapters.
    pub fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Self {
        CloudError::Invalid {
            field: field.into(),
            msg: msg.into(),
        }
    }

    /// Shorthand used by adapters.
    pub fn not_found(kind: ResourceKind, id: impl Into<String>) -> Self {
        CloudError::NotFound {
            kind,
            id: id.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_is_the_only_retryable_error() {
        let throttled = CloudError::Throttled {
            retry_after: Some(Duration::from_millis(1500)),
        };
        assert!(throttled.is_retryable());
        assert!(throttled.to_string().contains("1500 ms"));
        assert!(!CloudError::Unauthorized("x".into()).is_retryable());
        assert!(!CloudError::Other("x".into()).is_retryable());
    }

    #[test]
    fn not_found_names_kind_and_id() {
        let e = CloudError::not_found(ResourceKind::Volume, "vol-1");
        assert_eq!(e.to_string(), "volume vol-1 not found");
    }
}
