//! Server settings resolved by the binary and handed to the API.

use std::fmt;

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// HMAC key for access tokens (HS256).
    pub jwt_secret: Secret,
    /// 32-byte AES-256-GCM key for credentials at rest.
    pub secret_key: Secret,
    /// Access token lifetime. Short (<= 60 min) because revocation is checked per request but
    /// a stolen token should still expire quickly.
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    pub invite_ttl_secs: i64,
    /// Logins per client address per minute (seeds: 10/min).
    pub login_per_minute: u32,
    /// Signups per client address per hour (seeds: 5/hour).
    pub signup_per_hour: u32,
    /// Failed sign-ins per account (normalised e-mail, from any address) per
    /// `login_failure_window_secs`; 0 disables.
    pub login_failures_per_account: u32,
    pub login_failure_window_secs: u64,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// How many proxies in front of the server append to `X-Forwarded-For`: the client
    /// address is the entry this many places from the right.
    pub trusted_proxy_hops: usize,
    /// Base URL used in links handed to users (invites).
    pub public_url: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How often the audit retention purge runs.
    pub retention_interval_secs: u64,
    /// Days a soft-deleted organization is kept (restorable) before the purge removes it.
    pub deleted_org_retention_days: i64,
    /// Lifetime of a password reset link.
    pub password_reset_ttl_secs: i64,
    /// Keys that encrypted credentials before the last rotation (decrypt only).
    pub previous_secret_keys: Vec<Vec<u8>>,
    /// Seed of the cloud simulator (same seed, same simulated world).
    pub sim_seed: u64,
    /// The platform role customers trust in their role (CloudFormation `PlatformRoleArn`,
    /// `--platform-role-arn`): a role ARN, never an account root.
    pub platform_principal_arn: String,
    /// Seconds between discoveries of each account.
    pub discovery_interval_secs: u64,
    /// SAFE_MODE: every optimization job only plans and logs "would execute".
    pub safe_mode: bool,
    /// Account lease period across replicas (seconds).
    pub lease_secs: u64,
    /// apalis queue name shared by the replicas of one deployment.
    pub job_queue: String,
    /// Largest accepted risk model upload.
    pub max_model_bytes: usize,
    /// Live streams (server-sent events) one user may hold open at once.
    pub live_streams_per_user: usize,
    /// Live streams this server holds open at once, all users together.
    pub live_streams_max: usize,
    /// Executable that validates uploaded models in a child process (its
    /// `validate-model` subcommand). Default: this program.
    pub model_validator: Option<std::path::PathBuf>,
    /// Outbound e-mail (weekly reports, pre-sleep notices): `smtp://host:port` (plain, for a
    /// local relay), `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtps://…`.
    /// None: no e-mail is sent and the web app says so.
    pub smtp_url: Option<String>,
    /// Sender of those e-mails (`Name <address>` or an address).
    pub smtp_from: String,
    /// How often the notification dispatcher looks for queued notifications (ms).
    pub notify_poll_ms: u64,
    /// Delay before the first retry of a failed webhook or SMTP delivery (ms); it doubles
    /// with each retry, up to [`crate::notify::MAX_RETRY_DELAY`].
    pub notify_retry_base_ms: u64,
    /// Attempts per channel before a delivery is recorded as failed.
    pub notify_max_attempts: u32,
    /// How often the weekly report scheduler looks for a finished week to report (s).
    pub weekly_report_check_secs: u64,
    /// Webhooks may point at loopback, private, link-local (cloud metadata), unique-local
    /// and other non-public addresses (`--allow-private-webhooks`; tests and on-premises
    /// receivers). Off by default: such webhooks are refused when saved and when sent.
    pub allow_private_webhooks: bool,
}

impl ServerConfig {
    pub fn limits(&self) -> crate::ratelimit::Limits {
        crate::ratelimit::Limits {
            login_per_minute: self.login_per_minute,
            signup_per_hour: self.signup_per_hour,
            login_failures_per_account: self.login_failures_per_account,
            account_window_secs: self.login_failure_window_secs,
        }
    }

    /// Settings for tests and the embedded default, given the two secrets.
    pub fn with_secrets(jwt_secret: Vec<u8>, secret_key: Vec<u8>) -> Self {
        ServerConfig {
            jwt_secret: Secret(jwt_secret),
            secret_key: Secret(secret_key),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            invite_ttl_secs: 7 * 24 * 3600,
            login_per_minute: 10,
            signup_per_hour: 5,
            login_failures_per_account: 10,
            login_failure_window_secs: 15 * 60,
            trust_forwarded_for: false,
            trusted_proxy_hops: 1,
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            retention_interval_secs: 3600,
            deleted_org_retention_days: spot_models::clients::DELETED_RETENTION_DAYS,
            password_reset_ttl_secs: 3600,
            previous_secret_keys: Vec::new(),
            sim_seed: 42,
            // Placeholder for the simulator; `--cloud aws` requires `--platform-role-arn`.
            platform_principal_arn: "arn:aws:iam::000000000000:role/SpotOptimizerPlatform".into(),
            discovery_interval_secs: 300,
            safe_mode: false,
            lease_secs: 30,
            job_queue: "spot-optimizer".into(),
            max_model_bytes: 16 * 1024 * 1024,
            live_streams_per_user: 8,
            live_streams_max: 2000,
            model_validator: None,
            smtp_url: None,
            smtp_from: "Spot Optimizer <spot-optimizer@localhost>".into(),
            notify_poll_ms: 1000,
            notify_retry_base_ms: 1000,
            notify_max_attempts: 4,
            weekly_report_check_secs: 900,
            allow_private_webhooks: false,
        }
    }
}

/// Why the configuration cannot be used; each message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
    #[error("cannot use data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
}

fn decode_key(
    setting: &'static str,
    raw: &str,
    min_len: usize,
    exact: Option<usize>,
) -> Result<Vec<u8>, ConfigError> {
    use base64::Engine;
    let raw = raw.trim();
    let bytes = if raw.len() == 64 && raw.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(raw).map_err(|e| ConfigError::Invalid {
            setting,
            reason: e.to_string(),
        })?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
            .map_err(|_| ConfigError::Invalid {
                setting,
                reason: "must be 64 hex characters or base64".into(),
            })?
    };
    if let Some(n) = exact {
        if bytes.len() != n {
            return Err(ConfigError::Invalid {
                setting,
                reason: format!("must decode to exactly {n} bytes, got {}", bytes.len()),
            });
        }
    }
    if bytes.len() < min_len {
        return Err(ConfigError::Invalid {
            setting,
            reason: format!("must decode to at least {min_len} bytes"),
        });
    }
    Ok(bytes)
}

/// Reads a secret file from the data directory, or creates it with 32 random bytes (hex) and
/// mode 0600 on first start.
fn file_secret(dir: &std::path::Path, name: &str) -> Result<String, ConfigError> {
    use rand::RngCore;
    use std::io::Write;
    let path = dir.join(name);
    let err = |reason: String| ConfigError::DataDir {
        path: path.display().to_string(),
        reason,
    };
    if path.exists() {
        return std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|e| err(e.to_string()));
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let value = hex::encode(bytes);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&path).map_err(|e| err(e.to_string()))?;
    f.write_all(value.as_bytes())
        .map_err(|e| err(e.to_string()))?;
    Ok(value)
}

/// Resolves the JWT and encryption secrets: from configuration when given, otherwise (embedded
/// default only) generated once and kept in the data directory.
pub fn resolve_secrets(
    jwt_secret: Option<&str>,
    secret_key: Option<&str>,
    data_dir: &std::path::Path,
    allow_generate: bool,
) -> Result<(Vec<u8>, Vec<u8>), ConfigError> {
    let jwt_raw = match jwt_secret {
        Some(s) => s.to_string(),
        None if allow_generate => file_secret(data_dir, "jwt.secret")?,
        None => {
            return Err(ConfigError::Invalid {
                setting: "SPOT_JWT_SECRET",
                reason: "required when DATABASE_URL points at PostgreSQL (replicas must share it)"
                    .into(),
            })
        }
    };
    let key_raw = match secret_key {
        Some(s) => s.to_string(),
        None if allow_generate => file_secret(data_dir, "secret.key")?,
        None => {
            return Err(ConfigError::Invalid {
                setting: "SPOT_SECRET_KEY",
                reason: "required when DATABASE_URL points at PostgreSQL (replicas must share it)"
                    .into(),
            })
        }
    };
    let jwt = decode_key("SPOT_JWT_SECRET", &jwt_raw, 32, None)?;
    let key = decode_key("SPOT_SECRET_KEY", &key_raw, 32, Some(32))?;
    Ok((jwt, key))
}

/// Keys that encrypted credentials before the current one (`SPOT_PREVIOUS_SECRET_KEYS`:
/// comma-separated, each 64 hex characters or base64 of 32 bytes). They only decrypt.
pub fn parse_previous_keys(raw: Option<&str>) -> Result<Vec<Vec<u8>>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| decode_key("SPOT_PREVIOUS_SECRET_KEYS", k, 32, Some(32)))
        .collect()
}

/// The credential encryption key for offline commands (`rotate-secrets`): from
/// configuration, or the one the embedded default generated into the data directory. Never
/// generates one.
pub fn resolve_secret_key(
    secret_key: Option<&str>,
    data_dir: &std::path::Path,
    allow_file: bool,
) -> Result<Vec<u8>, ConfigError> {
    let raw = match secret_key {
        Some(s) => s.to_string(),
        None if allow_file && data_dir.join("secret.key").exists() => {
            file_secret(data_dir, "secret.key")?
        }
        None => {
            return Err(ConfigError::Invalid {
                setting: "SPOT_SECRET_KEY",
                reason: "required (the key to encrypt with from now on)".into(),
            })
        }
    };
    decode_key("SPOT_SECRET_KEY", &raw, 32, Some(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_private_and_stable() {
        let dir = std::env::temp_dir().join(format!("spot-secrets-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let a = resolve_secrets(None, None, &dir, true).expect("generate");
        let b = resolve_secrets(None, None, &dir, true).expect("reuse");
        assert_eq!(a.0, b.0);
        assert_eq!(a.1.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("secret.key"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn previous_keys_are_a_list_and_each_is_checked() {
        assert!(parse_previous_keys(None).expect("none").is_empty());
        let keys =
            parse_previous_keys(Some(&format!(" {} ,{},", "ab".repeat(32), "cd".repeat(32))))
                .expect("two keys");
        assert_eq!(keys, vec![vec![0xab; 32], vec![0xcd; 32]]);
        let e = parse_previous_keys(Some(&format!("{},short", "ab".repeat(32))))
            .expect_err("short key");
        assert!(e.to_string().contains("SPOT_PREVIOUS_SECRET_KEYS"), "{e}");
    }

    #[test]
    fn bad_secret_names_the_setting() {
        let dir = std::env::temp_dir();
        let e = resolve_secrets(Some("short"), Some(&"ab".repeat(32)), &dir, false)
            .expect_err("short jwt");
        assert!(e.to_string().contains("SPOT_JWT_SECRET"));
        let e =
            resolve_secrets(Some(&"ab".repeat(32)), None, &dir, false).expect_err("missing key");
        assert!(e.to_string().contains("SPOT_SECRET_KEY"));
    }
}
