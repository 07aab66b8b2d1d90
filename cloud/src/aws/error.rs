//! Translation of AWS SDK errors into [`CloudError`].
//!
//! AWS reports most failures as an error *code* string (EC2 and Auto Scaling model almost
//! none of them as typed errors), so the mapping works on codes: one table for every
//! service. The call site supplies an [`ErrCtx`] because the code alone does not say
//! which resource was missing or which capacity pool was full.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ec2::error::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{CloudError, ResourceKind};

/// What `aws_config::sts::AssumeRoleProvider` wraps when AssumeRole fails.
type AssumeRoleSdkError =
    aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError>;

/// What the failing call was about.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrCtx {
    /// IAM-style action name, e.g. `ec2:TerminateInstances`, for messages.
    pub action: &'static str,
    /// Resource a `*.NotFound` refers to when the code does not name the kind.
    pub resource: Option<(ResourceKind, String)>,
    /// Capacity pool (instance type, AZ) for `InsufficientInstanceCapacity`.
    pub pool: Option<(String, String)>,
}

impl ErrCtx {
    pub fn new(action: &'static str) -> Self {
        ErrCtx {
            action,
            ..ErrCtx::default()
        }
    }

    pub fn resource(mut self, kind: ResourceKind, id: impl Into<String>) -> Self {
        self.resource = Some((kind, id.into()));
        self
    }

    pub fn pool(mut self, instance_type: impl Into<String>, az: impl Into<String>) -> Self {
        self.pool = Some((instance_type.into(), az.into()));
        self
    }
}

/// The code EC2 answers a successful `DryRun=true` request with.
pub(crate) const DRY_RUN_OK: &str = "DryRunOperation";

/// Error code of an SDK error, if the service sent one.
pub(crate) fn code_of<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    err.code()
}

/// Maps any SDK error (EC2, Auto Scaling, STS, EKS) to the port's error.
pub(crate) fn map_sdk_err<E, R>(err: SdkError<E, R>, ctx: &ErrCtx) -> CloudError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = err.code().map(str::to_string);
    let message = err.message().map(str::to_string).unwrap_or_default();
    match code {
        Some(code) => map_code(&code, &message, ctx),
        None => map_transport(&err, ctx),
    }
}

/// The code table. Order matters: `InvalidInstanceID.NotFound` is a not-found, not an
/// invalid parameter, so `NotFound` suffixes are checked before `Invalid` prefixes.
pub(crate) fn map_code(code: &str, message: &str, ctx: &ErrCtx) -> CloudError {
    let detail = || {
        if message.is_empty() {
            format!("{} ({code})", ctx.action)
        } else {
            format!("{}: {message} ({code})", ctx.action)
        }
    };
    match code {
        "RequestLimitExceeded"
        | "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "SlowDown"
        | "EC2ThrottledException"
        | "PriorRequestNotComplete" => return CloudError::Throttled { retry_after: None },
        "UnauthorizedOperation"
        | "AuthFailure"
        | "AccessDenied"
        | "AccessDeniedException"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidAccessKeyId"
        | "OptInRequired"
        | "Blocked" => return CloudError::Unauthorized(detail()),
        "InsufficientInstanceCapacity" | "InsufficientCapacity" | "InsufficientHostCapacity" => {
            let (instance_type, az) = ctx.pool.clone().unwrap_or_default();
            return CloudError::InsufficientCapacity { instance_type, az };
        }
        // Attached volume, snapshot backing an AMI, state conflicts: retrying the same
        // request cannot succeed until something else changes.
        "VolumeInUse"
        | "InvalidSnapshot.InUse"
        | "IncorrectState"
        | "IncorrectInstanceState"
        | "ResourceInUse"
        | "ResourceInUseException"
        | "ScalingActivityInProgress" => return CloudError::invalid(field_of(ctx), detail()),
        "ResourceNotFoundException" | "NotFoundException" | "NoSuchEntity" => {
            return not_found(code, message, ctx)
        }
        _ => {}
    }
    if code.ends_with(".NotFound") || code.ends_with("NotFound") {
        return not_found(code, message, ctx);
    }
    // Auto Scaling reports a missing group as a plain ValidationError.
    if code == "ValidationError" && message.contains("not found") {
        return not_found(code, message, ctx);
    }
    if code.starts_with("Invalid")
        || code.starts_with("Missing")
        || code.starts_with("ValidationE")
        || code == "IdempotentParameterMismatch"
        || code == "Unsupported"
        || code == "UnsupportedOperation"
    {
        return CloudError::invalid(field_of(ctx), detail());
    }
    CloudError::Other(detail())
}

fn field_of(ctx: &ErrCtx) -> String {
    match &ctx.resource {
        Some((kind, _)) => kind.to_string(),
        None => "request".to_string(),
    }
}

fn not_found(code: &str, message: &str, ctx: &ErrCtx) -> CloudError {
    let kind = if code.starts_with("InvalidInstanceID") {
        Some(ResourceKind::Instance)
    } else if code.starts_with("InvalidVolume") {
        Some(ResourceKind::Volume)
    } else if code.starts_with("InvalidSnapshot") {
        Some(ResourceKind::Snapshot)
    } else {
        None
    };
    let (ctx_kind, ctx_id) = ctx
        .resource
        .clone()
        .unwrap_or((ResourceKind::Instance, String::new()));
    // EC2 names the missing ids in quotes: "The instance ID 'i-1' does not exist".
    let id = quoted(message).unwrap_or(ctx_id);
    CloudError::not_found(kind.unwrap_or(ctx_kind), id)
}

/// First resource id named in an AWS message ("The instance IDs 'i-1, i-2' do not
/// exist"): a token shaped like `prefix-hex` with at least 8 hex digits.
fn quoted(message: &str) -> Option<String> {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|token| {
            token.split_once('-').is_some_and(|(prefix, rest)| {
                !prefix.is_empty()
                    && prefix.bytes().all(|b| b.is_ascii_lowercase())
                    && rest.len() >= 8
                    && rest.bytes().all(|b| b.is_ascii_hexdigit())
            })
        })
        .map(str::to_string)
}

/// Errors without a service code: credentials could not be obtained (bad keys, a role we
/// may not assume, a wrong external id), time-outs, connection failures.
fn map_transport<E, R>(err: &SdkError<E, R>, ctx: &ErrCtx) -> CloudError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let text = DisplayErrorContext(err).to_string();
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    let mut credentials: Option<&CredentialsError> = None;
    while let Some(e) = source {
        if let Some(cred) = e.downcast_ref::<CredentialsError>() {
            credentials.get_or_insert(cred);
        }
        // The AssumeRole call behind a role's credentials: its own code decides (a wrong
        // external id is AccessDenied; STS may throttle), and a transport failure is not
        // a permission problem.
        if let Some(sts) = e.downcast_ref::<AssumeRoleSdkError>() {
            return match sts.code() {
                Some(code) => map_code(code, sts.message().unwrap_or(""), ctx),
                None => CloudError::Other(format!("{}: AssumeRole failed: {text}", ctx.action)),
            };
        }
        source = e.source();
    }
    match credentials {
        Some(CredentialsError::ProviderTimedOut(_)) => {
            CloudError::Other(format!("{}: credentials timed out: {text}", ctx.action))
        }
        Some(_) if is_throttle_text(&text) => CloudError::Throttled { retry_after: None },
        Some(_) => CloudError::Unauthorized(format!(
            "{}: could not obtain credentials: {text}",
            ctx.action
        )),
        None if matches!(err, SdkError::TimeoutError(_)) => {
            CloudError::Other(format!("{}: timed out", ctx.action))
        }
        None => CloudError::Other(format!("{}: {text}", ctx.action)),
    }
}

fn is_throttle_text(text: &str) -> bool {
    ["Throttling", "RequestLimitExceeded", "TooManyRequests"]
        .iter()
        .any(|c| text.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ErrCtx {
        ErrCtx::new("ec2:TerminateInstances").resource(ResourceKind::Instance, "i-ctx")
    }

    #[test]
    fn codes_map_to_port_errors() {
        assert_eq!(
            map_code("RequestLimitExceeded", "slow down", &ctx()),
            CloudError::Throttled { retry_after: None }
        );
        assert!(matches!(
            map_code("UnauthorizedOperation", "no", &ctx()),
            CloudError::Unauthorized(_)
        ));
        assert!(matches!(
            map_code("AccessDeniedException", "no", &ctx()),
            CloudError::Unauthorized(_)
        ));
        assert_eq!(
            map_code(
                "InsufficientInstanceCapacity",
                "none",
                &ErrCtx::new("ec2:RunInstances").pool("m5.large", "us-east-1a")
            ),
            CloudError::InsufficientCapacity {
                instance_type: "m5.large".into(),
                az: "us-east-1a".into()
            }
        );
        assert!(matches!(
            map_code("InvalidParameterValue", "bad", &ctx()),
            CloudError::Invalid { .. }
        ));
        assert!(matches!(
            map_code("VolumeInUse", "attached", &ctx()),
            CloudError::Invalid { .. }
        ));
        assert!(matches!(
            map_code("SomethingElse", "?", &ctx()),
            CloudError::Other(_)
        ));
    }

    #[test]
    fn not_found_takes_kind_from_the_code_and_id_from_the_message() {
        assert_eq!(
            map_code(
                "InvalidVolume.NotFound",
                "The volume '{'vol-0000000000000dead'}' does not exist.",
                &ctx()
            ),
            CloudError::not_found(ResourceKind::Volume, "vol-0000000000000dead")
        );
        assert_eq!(
            map_code(
                "InvalidInstanceID.NotFound",
                "The instance IDs 'i-0123456789abcdef0, i-0fedcba9876543210' do not exist",
                &ctx()
            ),
            CloudError::not_found(ResourceKind::Instance, "i-0123456789abcdef0")
        );
        assert_eq!(
            map_code(
                "ResourceNotFoundException",
                "No cluster found for name: prod.",
                &ErrCtx::new("eks:DescribeCluster").resource(ResourceKind::EksCluster, "prod")
            ),
            CloudError::not_found(ResourceKind::EksCluster, "prod")
        );
    }
}
