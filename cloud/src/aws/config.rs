//! How an [`super::AwsCloud`] authenticates: region, credentials and (for tests) an
//! endpoint override.
//!
//! Secrets live only in memory: [`Secret`] never prints its value, none of these types
//! implements `Serialize`, and nothing here is persisted. Storing linked-account keys
//! (encrypted) is the models crate's job; it hands them over at connect time.

use std::fmt;

/// A secret string (an AWS secret access key). `Debug` prints `Secret(***)` so that a
/// stray `{:?}` of a config or a credentials value cannot leak it into logs; there is no
/// `Display` and no `Serialize` on purpose. Read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Call this only where the value is handed to the SDK.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

/// Where the credentials of a linked account come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsCredentials {
    /// Long-lived IAM user keys the customer gave us (the "access keys" linking mode).
    AccessKeys {
        access_key_id: String,
        secret_access_key: Secret,
    },
    /// The recommended linking mode: STS `AssumeRole` into the customer's role with the
    /// external id we generated for that account (which defeats the confused-deputy
    /// problem). `base` signs the AssumeRole call: normally [`AwsCredentials::Ambient`],
    /// the control plane's own identity. The temporary credentials are cached in memory
    /// and refreshed 5 minutes before they expire.
    AssumeRole {
        role_arn: String,
        external_id: String,
        /// Shows up in the customer's CloudTrail; use something that names us and the
        /// account, e.g. `spot-optimizer-<account id>` (2–64 chars of `[\w+=,.@-]`).
        session_name: String,
        base: Box<AwsCredentials>,
    },
    /// The control plane's own identity from the SDK's default chain (environment,
    /// profile, web identity / IRSA, ECS, instance metadata).
    Ambient,
}

/// Everything [`super::AwsCloud::connect`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// e.g. `us-east-1`. One `AwsCloud` is bound to one region (port contract).
    pub region: String,
    pub credentials: AwsCredentials,
    /// Sends every service (EC2, Auto Scaling, STS, EKS) to this URL instead of AWS.
    /// Tests point it at a local moto server; production leaves it `None`.
    pub endpoint_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = AwsConfig {
            region: "us-east-1".into(),
            credentials: AwsCredentials::AssumeRole {
                role_arn: "arn:aws:iam::123456789012:role/SpotOptimizer".into(),
                external_id: "ext".into(),
                session_name: "s".into(),
                base: Box::new(AwsCredentials::AccessKeys {
                    access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                    secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                }),
            },
            endpoint_url: None,
        };
        let printed = format!("{config:?} {config:#?}");
        assert!(!printed.contains("wJalrXUtnFEMI"), "{printed}");
        assert!(printed.contains("Secret(***)"));
    }
}
