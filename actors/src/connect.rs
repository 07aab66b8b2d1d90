//! Turning an account's configuration into a `Cloud` handle: the simulator (embedded default)
//! or AWS. Both accept the same role/keys inputs so onboarding is identical in the demo.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use spot_cloud::sim::SimCloud;
use spot_cloud::{Cloud, CloudError};

/// How to reach an account.
#[derive(Clone)]
pub enum Credentials {
    /// Assume `role_arn` presenting the organization's external id.
    Role {
        role_arn: String,
        external_id: String,
    },
    /// Long-lived access keys (lab mode). Decrypted only in memory.
    Keys {
        access_key_id: String,
        secret_access_key: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Role { role_arn, .. } => write!(f, "Role({role_arn})"),
            Credentials::Keys { access_key_id, .. } => write!(f, "Keys({access_key_id}, ***)"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectTarget {
    pub region: String,
    pub credentials: Credentials,
}

#[async_trait]
pub trait CloudConnector: Send + Sync {
    /// `sim` or `aws`, stored on the account.
    fn provider(&self) -> &'static str;
    /// The simulator behind this connector, when it is one (simulated agents use it).
    fn as_sim(&self) -> Option<&SimConnector> {
        None
    }
    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn Cloud>, CloudError>;
    /// IAM actions the product needs that the target's credentials are denied.
    async fn missing_permissions(
        &self,
        _target: &ConnectTarget,
    ) -> Result<Vec<String>, CloudError> {
        Ok(Vec::new())
    }
}

/// Parses `arn:aws:iam::<12 digits>:role/<optional path/><name>` into (account id, role name).
pub fn parse_role_arn(arn: &str) -> Option<(String, String)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, role) = rest.split_once(":role/")?;
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let name = role.rsplit('/').next()?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    };
    if !ok(name) || role.len() > 512 || !role.split('/').all(ok) {
        return None;
    }
    Some((account.to_string(), name.to_string()))
}

/// The simulator. One world per (account id, region), kept for the process lifetime so
/// mutations persist between calls. A role named `NoAccess` simulates AccessDenied on
/// AssumeRole, so the failure path of onboarding can be exercised in the demo.
pub struct SimConnector {
    seed: u64,
    profile: Option<spot_cloud::sim::SimProfile>,
    /// Where each simulated account journals its changes (see `spot_cloud::sim::journal`).
    journal_dir: Option<std::path::PathBuf>,
    worlds: Mutex<HashMap<(String, String), Arc<SimCloud>>>,
}

impl SimConnector {
    pub fn new(seed: u64) -> Self {
        SimConnector {
            seed,
            profile: None,
            journal_dir: None,
            worlds: Mutex::new(HashMap::new()),
        }
    }

    /// Every simulated account gets `profile` (e.g. the 10,000-instance benchmark world).
    pub fn with_profile(seed: u64, profile: spot_cloud::sim::SimProfile) -> Self {
        SimConnector {
            seed,
            profile: Some(profile),
            journal_dir: None,
            worlds: Mutex::new(HashMap::new()),
        }
    }

    /// The simulated accounts' changes (snapshots, deletions, terminations) are journaled
    /// under `dir` and survive a restart of the process.
    pub fn with_journal(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.journal_dir = Some(dir.into());
        self
    }

    /// A stable 12-digit account id for a simulated access key.
    fn account_for_key(key: &str) -> String {
        let d = Sha256::digest(key.as_bytes());
        let n = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
            % 900_000_000_000
            + 100_000_000_000;
        n.to_string()
    }

    pub fn world(&self, account_id: &str, region: &str) -> Result<Arc<SimCloud>, CloudError> {
        let mut worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = worlds.get(&(account_id.to_string(), region.to_string())) {
            return Ok(w.clone());
        }
        let mut cfg = spot_cloud::sim::SimConfig::for_account(account_id, self.seed);
        cfg.region = region.to_string();
        if let Some(p) = &self.profile {
            cfg.profile = p.clone();
        }
        let w = Arc::new(match &self.journal_dir {
            Some(dir) => SimCloud::with_journal(
                cfg,
                &spot_cloud::sim::journal::path_for(dir, account_id, region),
            )?,
            None => SimCloud::new(cfg)?,
        });
        worlds.insert((account_id.to_string(), region.to_string()), w.clone());
        Ok(w)
    }
}

#[async_trait]
impl CloudConnector for SimConnector {
    fn provider(&self) -> &'static str {
        "sim"
    }

    fn as_sim(&self) -> Option<&SimConnector> {
        Some(self)
    }

    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn Cloud>, CloudError> {
        let account = match &target.credentials {
            Credentials::Role { role_arn, .. } => {
                let (account, name) =
                    parse_role_arn(role_arn).ok_or_else(|| CloudError::Invalid {
                        field: "role_arn".into(),
                        msg: "not a role ARN".into(),
                    })?;
                if name == "NoAccess" {
                    return Err(CloudError::Unauthorized(format!(
                        "AccessDenied: the platform is not authorized to perform sts:AssumeRole on {role_arn}"
                    )));
                }
                account
            }
            Credentials::Keys { access_key_id, .. } => Self::account_for_key(access_key_id),
        };
        let w: Arc<dyn Cloud> = self.world(&account, &target.region)?;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_are_parsed_strictly() {
        assert_eq!(
            parse_role_arn("arn:aws:iam::123456789012:role/SpotOptimizer"),
            Some(("123456789012".into(), "SpotOptimizer".into()))
        );
        assert_eq!(
            parse_role_arn("arn:aws:iam::123456789012:role/team/ops/Spot"),
            Some(("123456789012".into(), "Spot".into()))
        );
        for bad in [
            "",
            "arn:aws:iam::12345:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/bad name",
        ] {
            assert_eq!(parse_role_arn(bad), None, "{bad}");
        }
    }
}

/// AWS through the SDK (feature `aws`, on by default). Role mode signs `AssumeRole` with the control plane's own identity
/// (`base`, normally the SDK's default chain) and presents the organization's external id.
#[cfg(feature = "aws")]
pub struct AwsConnector {
    /// Sends every call here instead of AWS (tests point it at moto).
    pub endpoint_url: Option<String>,
    /// Identity that signs `AssumeRole`.
    pub base: spot_cloud::aws::AwsCredentials,
}

#[cfg(feature = "aws")]
#[async_trait]
impl CloudConnector for AwsConnector {
    fn provider(&self) -> &'static str {
        "aws"
    }

    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn Cloud>, CloudError> {
        Ok(Arc::new(self.aws(target).await?))
    }

    async fn missing_permissions(&self, target: &ConnectTarget) -> Result<Vec<String>, CloudError> {
        self.aws(target).await?.check_permissions().await
    }
}

#[cfg(feature = "aws")]
impl AwsConnector {
    async fn aws(&self, target: &ConnectTarget) -> Result<spot_cloud::aws::AwsCloud, CloudError> {
        use spot_cloud::aws::{AwsCloud, AwsConfig, AwsCredentials, Secret};
        let credentials = match &target.credentials {
            Credentials::Role {
                role_arn,
                external_id,
            } => {
                let account = parse_role_arn(role_arn).map(|(a, _)| a).unwrap_or_default();
                AwsCredentials::AssumeRole {
                    role_arn: role_arn.clone(),
                    external_id: external_id.clone(),
                    session_name: format!("spot-optimizer-{account}"),
                    base: Box::new(self.base.clone()),
                }
            }
            Credentials::Keys {
                access_key_id,
                secret_access_key,
            } => AwsCredentials::AccessKeys {
                access_key_id: access_key_id.clone(),
                secret_access_key: Secret::new(secret_access_key.clone()),
            },
        };
        AwsCloud::connect(AwsConfig {
            region: target.region.clone(),
            credentials,
            endpoint_url: self.endpoint_url.clone(),
        })
        .await
    }
}
