//! `spot-optimizer`: the command line. Wiring only; behaviour lives in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use spot_api::server;
use spot_api::state::StateOptions;
use spot_api::{AppState, ServerConfig};
use spot_models::Db;

#[derive(Parser)]
#[command(
    name = "spot-optimizer",
    version,
    about = "Spot Optimizer control plane"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Database URL. Default: SQLite file `<data-dir>/spot.db` (the embedded default).
    /// Production: `postgres://user@host:5432/db`.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Directory for the SQLite database and generated secrets.
    #[arg(
        long,
        env = "SPOT_DATA_DIR",
        default_value = "./spot-data",
        global = true
    )]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the control plane (API, web app, background work). The default command.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Write labelled spot-market history of the simulator as CSV (training data of the
    /// risk model, see onnx/README.md).
    ExportHistory {
        /// Simulator seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Days of hourly history.
        #[arg(long, default_value_t = 61)]
        days: u32,
    },
    /// Validate an ONNX risk model against contract v1 and print a JSON report (the model
    /// registry runs this in a child process with memory and CPU limits).
    ValidateModel {
        /// The model file.
        file: PathBuf,
    },
    /// Re-encrypt every stored cloud credential under the current SPOT_SECRET_KEY, bound to
    /// its account. Rotation: start serving with the new key and the old one in
    /// SPOT_PREVIOUS_SECRET_KEYS, run this, then drop the old key.
    RotateSecrets {
        /// The key to encrypt with from now on (64 hex chars or base64 of 32 bytes). Default
        /// on the embedded default: the one in the data directory.
        #[arg(long, env = "SPOT_SECRET_KEY", hide_env_values = true)]
        secret_key: Option<String>,
        /// Keys the stored values may still be encrypted with (comma-separated).
        #[arg(long, env = "SPOT_PREVIOUS_SECRET_KEYS", hide_env_values = true)]
        previous_secret_keys: Option<String>,
    },
    /// Plan a what-if workload (JSON; format: engine/whatif/workload.schema.json, example:
    /// engine/whatif/example.json) and print the plan as JSON: nodes, cost per hour, LP
    /// lower bound, gap, first-fit-decreasing baseline, reasons, and `solve_ms`.
    Plan {
        /// The workload file.
        #[arg(long)]
        workload: PathBuf,
        /// Indent the JSON.
        #[arg(long)]
        pretty: bool,
    },
}

/// Limits of the validation sandbox: address space and CPU seconds.
const VALIDATE_MAX_MEMORY: u64 = 2 * 1024 * 1024 * 1024;
const VALIDATE_MAX_CPU_SECS: u64 = 30;

/// `validate-model`: runs without the async runtime, under resource limits. Prints one JSON
/// line, `{"ok": true, "report": ...}` or `{"ok": false, "error": ...}`; exit code 0 or 3.
fn validate_model(file: &std::path::Path) -> ExitCode {
    let limits = rlimit::setrlimit(
        rlimit::Resource::AS,
        VALIDATE_MAX_MEMORY,
        VALIDATE_MAX_MEMORY,
    )
    .and_then(|_| {
        rlimit::setrlimit(
            rlimit::Resource::CPU,
            VALIDATE_MAX_CPU_SECS,
            VALIDATE_MAX_CPU_SECS,
        )
    });
    if let Err(e) = limits {
        println!(
            "{}",
            serde_json::json!({"ok": false, "error": format!("cannot set sandbox limits: {e}")})
        );
        return ExitCode::from(3);
    }
    let verdict = std::fs::read(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))
        .and_then(|bytes| spot_actors::risk::validate_bytes(&bytes));
    match verdict {
        Ok(report) => {
            println!("{}", serde_json::json!({"ok": true, "report": report}));
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{}", serde_json::json!({"ok": false, "error": e}));
            ExitCode::from(3)
        }
    }
}

/// `plan`: the what-if entry point. Prints the report with the measured solve time; bad
/// input prints one line naming the field and exits 2.
fn plan_workload(file: &std::path::Path, pretty: bool) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let report = spot_engine::whatif::run_json(&text);
    let solve_ms = started.elapsed().as_secs_f64() * 1000.0;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut value = serde_json::to_value(&report).unwrap_or_default();
    if let Some(o) = value.as_object_mut() {
        o.insert("solve_ms".into(), serde_json::json!(solve_ms));
    }
    let out = if pretty {
        serde_json::to_string_pretty(&value)
    } else {
        serde_json::to_string(&value)
    };
    match out {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn export_history(seed: u64, days: u32) -> ExitCode {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match spot_cloud::sim::history::write_csv(seed, days, &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: export-history: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SPOT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Redis for shared state across replicas (`redis://host:6379`). Default: in-process.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// AES-256-GCM key for cloud credentials (64 hex chars or base64 of 32 bytes).
    /// Generated into the data directory on the embedded default.
    #[arg(long, env = "SPOT_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Keys that encrypted credentials before SPOT_SECRET_KEY (comma-separated; decrypt
    /// only, until `rotate-secrets` has re-encrypted everything).
    #[arg(long, env = "SPOT_PREVIOUS_SECRET_KEYS", hide_env_values = true)]
    previous_secret_keys: Option<String>,
    /// HMAC key for access tokens (at least 32 bytes, hex or base64).
    #[arg(long, env = "SPOT_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// E-mail of the platform super-admin to create at start (with --admin-password).
    #[arg(long, env = "SPOT_ADMIN_EMAIL")]
    admin_email: Option<String>,
    /// Password of the platform super-admin (no default exists).
    #[arg(long, env = "SPOT_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Public base URL of the web app, used in invite links.
    #[arg(long, env = "SPOT_PUBLIC_URL")]
    public_url: Option<String>,
    /// Take client addresses from X-Forwarded-For (only behind a trusted proxy).
    #[arg(long, env = "SPOT_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
    /// Proxies in front of the server that append to X-Forwarded-For: the client address is
    /// the entry this many places from the right.
    #[arg(long, env = "SPOT_TRUSTED_PROXY_HOPS", default_value_t = 1)]
    trusted_proxy_hops: usize,
    /// Logins allowed per client address per minute.
    #[arg(long, env = "SPOT_LOGIN_PER_MINUTE", default_value_t = 10)]
    login_per_minute: u32,
    /// Signups allowed per client address per hour.
    #[arg(long, env = "SPOT_SIGNUP_PER_HOUR", default_value_t = 5)]
    signup_per_hour: u32,
    /// Failed sign-ins allowed per account (e-mail) per 15 minutes, from any address
    /// (0 disables).
    #[arg(long, env = "SPOT_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = 10)]
    login_failures_per_account: u32,
    /// IAM role the platform runs as, which customers' SpotOptimizer roles trust (the
    /// CloudFormation `PlatformRoleArn`): `arn:aws:iam::<account>:role/<name>`, never an
    /// account root. Required with `--cloud aws`.
    #[arg(long, env = "SPOT_PLATFORM_ROLE_ARN")]
    platform_role_arn: Option<String>,
    /// Seed of the cloud simulator (same seed, same simulated world).
    #[arg(long, env = "SPOT_SIM_SEED", default_value_t = 42)]
    sim_seed: u64,
    /// What each simulated account holds: `demo` (a per-account demo size), `empty`,
    /// `scale:N` (N instances) or `cleanup:N` (N orphaned volumes and snapshots: the load of
    /// the clean-up batches).
    #[arg(long, env = "SPOT_SIM_PROFILE", default_value = "demo")]
    sim_profile: String,
    /// Journal the simulated accounts' changes (snapshots, deletions, terminations) under
    /// the data directory (`sim/`) so that they survive a restart (crash tests).
    #[arg(long, env = "SPOT_SIM_JOURNAL")]
    sim_journal: bool,
    /// Seconds without a heartbeat after which a running job's worker is presumed dead:
    /// its job is failed, or resumed when its executor can reconcile (clean-up batches).
    #[arg(long, env = "SPOT_JOB_ORPHAN_AFTER", default_value_t = 60)]
    job_orphan_after: u64,
    /// Seed a demo organization (printed login) with two simulated AWS accounts.
    #[arg(long, env = "SPOT_DEMO")]
    demo: bool,
    /// Cloud behind linked accounts: `sim` (the built-in region simulator) or `aws`.
    #[arg(long, env = "SPOT_CLOUD", default_value = "sim", value_parser = ["sim", "aws"])]
    cloud: String,
    /// Send every AWS call to this endpoint instead of AWS (testing against moto).
    #[arg(long, env = "SPOT_AWS_ENDPOINT_URL")]
    aws_endpoint_url: Option<String>,
    /// Seconds between discoveries of each linked account.
    #[arg(long, env = "SPOT_DISCOVERY_INTERVAL", default_value_t = 300)]
    discovery_interval: u64,
    /// Days a soft-deleted organization is kept (and can be restored) before it is purged.
    #[arg(long, env = "SPOT_DELETED_ORG_RETENTION_DAYS", default_value_t = 30)]
    deleted_org_retention_days: u32,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "SPOT_LOG_JSON")]
    log_json: bool,
    /// Global safe mode: optimization jobs plan and log "would execute" but never change
    /// cloud resources.
    #[arg(long, env = "SAFE_MODE")]
    safe_mode: bool,
    /// Seconds an account lease lasts: each account's actor runs on the one replica holding
    /// its lease; a dead replica's accounts move to others within this period.
    #[arg(long, env = "SPOT_LEASE_SECS", default_value_t = 30)]
    lease_secs: u64,
    /// SMTP server for e-mail (weekly reports, pre-sleep notices): `smtp://host:25` (plain,
    /// a local relay), `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host:465`. Default: no e-mail is sent.
    #[arg(long, env = "SPOT_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// Sender of those e-mails.
    #[arg(
        long,
        env = "SPOT_SMTP_FROM",
        default_value = "Spot Optimizer <spot-optimizer@localhost>"
    )]
    smtp_from: String,
    /// Let notification webhooks point at loopback, private, link-local (cloud metadata),
    /// unique-local IPv6 and other non-public addresses (on-premises receivers, tests).
    /// Default: refused when saved and again, after DNS resolution, when sent.
    #[arg(long, env = "SPOT_ALLOW_PRIVATE_WEBHOOKS")]
    allow_private_webhooks: bool,
}

fn database_url(cli: &Cli) -> anyhow::Result<String> {
    match &cli.database_url {
        Some(u)
            if u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://") =>
        {
            Ok(u.clone())
        }
        Some(_) => anyhow::bail!("invalid DATABASE_URL: must start with sqlite:// or postgres://"),
        None => {
            std::fs::create_dir_all(&cli.data_dir).with_context(|| {
                format!(
                    "invalid SPOT_DATA_DIR: cannot create {}",
                    cli.data_dir.display()
                )
            })?;
            Ok(format!("sqlite://{}/spot.db", cli.data_dir.display()))
        }
    }
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // Every line also goes to the super-admin live log stream (redacted, bounded buffer).
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(spot_api::logs::layer());
    if json {
        registry
            .with(tracing_subscriber::fmt::layer().json().with_target(false))
            .init();
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_target(false))
            .init();
    }
}

async fn connect(url: &str) -> anyhow::Result<Db> {
    let db = Db::connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open DATABASE_URL: {e}"))?;
    db.migrate()
        .await
        .map_err(|e| anyhow::anyhow!("database migration failed: {e}"))?;
    Ok(db)
}

async fn serve(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    init_logs(args.log_json);
    let url = database_url(cli)?;
    let embedded = url.starts_with("sqlite:");
    if let Some(r) = &args.redis_url {
        if !(r.starts_with("redis://") || r.starts_with("rediss://")) {
            anyhow::bail!("invalid REDIS_URL: must start with redis:// or rediss://");
        }
    }
    if !embedded || args.jwt_secret.is_none() || args.secret_key.is_none() {
        std::fs::create_dir_all(&cli.data_dir).with_context(|| {
            format!(
                "invalid SPOT_DATA_DIR: cannot create {}",
                cli.data_dir.display()
            )
        })?;
    }
    let (jwt, key) = spot_api::config::resolve_secrets(
        args.jwt_secret.as_deref(),
        args.secret_key.as_deref(),
        &cli.data_dir,
        embedded,
    )?;
    if args.trusted_proxy_hops == 0 {
        anyhow::bail!("invalid SPOT_TRUSTED_PROXY_HOPS: must be at least 1");
    }
    let mut cfg = ServerConfig::with_secrets(jwt, key);
    cfg.previous_secret_keys =
        spot_api::config::parse_previous_keys(args.previous_secret_keys.as_deref())?;
    cfg.login_per_minute = args.login_per_minute;
    cfg.signup_per_hour = args.signup_per_hour;
    cfg.login_failures_per_account = args.login_failures_per_account;
    cfg.trust_forwarded_for = args.trust_forwarded_for;
    cfg.trusted_proxy_hops = args.trusted_proxy_hops;
    cfg.sim_seed = args.sim_seed;
    match &args.platform_role_arn {
        Some(arn) => {
            if spot_actors::connect::parse_role_arn(arn).is_none() {
                anyhow::bail!(
                    "invalid SPOT_PLATFORM_ROLE_ARN: must be an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>), not an account root or user"
                );
            }
            cfg.platform_principal_arn = arn.clone();
        }
        None if args.cloud == "aws" => anyhow::bail!(
            "invalid SPOT_PLATFORM_ROLE_ARN: required with --cloud aws (the role customers' SpotOptimizer roles trust)"
        ),
        None => {}
    }
    cfg.discovery_interval_secs = args.discovery_interval;
    cfg.safe_mode = args.safe_mode;
    cfg.lease_secs = args.lease_secs;
    cfg.smtp_url = args.smtp_url.clone().filter(|u| !u.trim().is_empty());
    cfg.smtp_from = args.smtp_from.clone();
    cfg.allow_private_webhooks = args.allow_private_webhooks;
    spot_api::notify::Mailer::from_config(&cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    cfg.deleted_org_retention_days = i64::from(args.deleted_org_retention_days);
    cfg.public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen));
    if !(3..=86_400).contains(&args.job_orphan_after) {
        anyhow::bail!("invalid SPOT_JOB_ORPHAN_AFTER: must be 3 to 86400 seconds");
    }
    spot_models::jobs::set_orphan_after_secs(args.job_orphan_after as i64);
    let db = connect(&url).await?;
    // Records written before the state is built (the super-admin seed) are MAC'd too.
    db.set_audit_keys(spot_models::audit::MacKeys::derive(
        &cfg.secret_key.0,
        &cfg.previous_secret_keys,
    ));
    match (&args.admin_email, &args.admin_password) {
        (Some(e), Some(p)) => server::seed_super_admin(&db, e, p).await?,
        (Some(_), None) => {
            anyhow::bail!("invalid SPOT_ADMIN_PASSWORD: required with SPOT_ADMIN_EMAIL")
        }
        (None, Some(_)) => {
            anyhow::bail!("invalid SPOT_ADMIN_EMAIL: required with SPOT_ADMIN_PASSWORD")
        }
        (None, None) => {}
    }
    if args.demo && args.cloud != "sim" {
        anyhow::bail!("invalid --demo: the demo organization runs on the simulator (--cloud sim)");
    }
    let connector: std::sync::Arc<dyn spot_actors::connect::CloudConnector> =
        match args.cloud.as_str() {
            "aws" => std::sync::Arc::new(spot_actors::connect::AwsConnector {
                endpoint_url: args.aws_endpoint_url.clone(),
                base: spot_cloud::aws::AwsCredentials::Ambient,
            }),
            _ => {
                let profile = spot_cloud::sim::SimProfile::parse(&args.sim_profile)
                    .map_err(|e| anyhow::anyhow!("invalid SPOT_SIM_PROFILE: {e}"))?;
                let mut sim = match profile {
                    Some(p) => spot_actors::connect::SimConnector::with_profile(args.sim_seed, p),
                    None => spot_actors::connect::SimConnector::new(args.sim_seed),
                };
                if args.sim_journal {
                    sim = sim.with_journal(cli.data_dir.join("sim"));
                }
                std::sync::Arc::new(sim)
            }
        };
    let state = AppState::build(
        db,
        cfg,
        StateOptions {
            connector: Some(connector),
            redis_url: args.redis_url.clone(),
        },
    )
    .await?;
    if args.demo {
        let login = server::seed_demo(&state).await?;
        println!("Demo organization \"Acme Corp\" is ready. Log in with:\n  email:    {}\n  password: {}", login.email, login.password);
    }
    // SIGTERM (a rolling deploy) or SIGINT: readiness turns 503, the job worker stops
    // claiming and its running job stops at the next action boundary (a job is never left
    // `running`), the actors stop and give their account leases up, then the HTTP server
    // drains its connections.
    let (queue, actors) = (state.jobs.clone(), state.actors.clone());
    let shutdown = async move {
        let signal = wait_for_signal().await;
        tracing::info!(component = "CORE-API", signal, "shutting down");
        let failed = queue.shutdown(std::time::Duration::from_secs(25)).await;
        let released = actors
            .shutdown_and_release(std::time::Duration::from_secs(10))
            .await;
        tracing::info!(
            component = "CORE-API",
            jobs_interrupted = failed,
            leases_released = released,
            "workers and actors stopped"
        );
    };
    let running = server::start(state, &args.listen, shutdown).await?;
    println!(
        "Spot Optimizer is running at http://{} (API docs: /api/docs)",
        running.addr
    );
    running
        .handle
        .await
        .context("server task failed")?
        .context("server stopped with an error")?;
    Ok(())
}

/// `rotate-secrets`: re-encrypts every stored credential under the current key, bound to its
/// account, and audits the rotation (platform chain, `system`). Fails (exit 2) when a value
/// no configured key opens remains.
async fn rotate_secrets(
    cli: &Cli,
    secret_key: Option<&str>,
    previous: Option<&str>,
) -> anyhow::Result<()> {
    let url = database_url(cli)?;
    let key = spot_api::config::resolve_secret_key(
        secret_key,
        &cli.data_dir,
        url.starts_with("sqlite:"),
    )?;
    let previous = spot_api::config::parse_previous_keys(previous)?;
    let keyring = spot_models::crypto::Keyring::new(&key, &previous)
        .map_err(|e| anyhow::anyhow!("invalid SPOT_SECRET_KEY: {e}"))?;
    let db = connect(&url).await?;
    // The rotation's audit record is MAC'd like the server's (the new key; the previous
    // ones still verify older records).
    db.set_audit_keys(spot_models::audit::MacKeys::derive(&key, &previous));
    let report = spot_models::accounts::reencrypt_all(&db, &keyring)
        .await
        .map_err(|e| anyhow::anyhow!("rotate-secrets: {e}"))?;
    spot_models::audit::append(
        &db,
        spot_models::audit::NewAuditRecord {
            organization_id: None,
            actor_kind: "system".into(),
            actor_component: Some("CORE-SECRETS".into()),
            action: "secrets.rotate".into(),
            resource_type: "secret_key".into(),
            outcome: if report.failed.is_empty() {
                "success".into()
            } else {
                "failed".into()
            },
            request_id: uuid_like(),
            after: Some(serde_json::json!({
                "reencrypted": report.reencrypted,
                "already_current": report.current,
                "failed": report.failed.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            })),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("rotate-secrets: cannot audit: {e}"))?;
    println!(
        "re-encrypted {} credential(s); {} already current",
        report.reencrypted, report.current
    );
    if let Some((id, why)) = report.failed.first() {
        anyhow::bail!(
            "{} credential(s) could not be re-encrypted (first: account {id}: {why}); add the key they were encrypted with to SPOT_PREVIOUS_SECRET_KEYS",
            report.failed.len()
        );
    }
    Ok(())
}

/// A request id for audit rows written outside a request.
fn uuid_like() -> String {
    format!(
        "cli-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C) and names it.
async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.cmd {
        Some(Cmd::Openapi) => {
            println!("{}", spot_api::openapi_json());
            Ok(())
        }
        Some(Cmd::Migrate) => {
            connect(&database_url(&cli)?).await?;
            println!("migrations applied");
            Ok(())
        }
        Some(Cmd::Serve(a)) => serve(&cli, a).await,
        Some(Cmd::RotateSecrets {
            secret_key,
            previous_secret_keys,
        }) => rotate_secrets(&cli, secret_key.as_deref(), previous_secret_keys.as_deref()).await,
        Some(Cmd::ValidateModel { .. } | Cmd::ExportHistory { .. } | Cmd::Plan { .. }) => Ok(()),
        None => {
            let defaults = ServeArgs::parse_defaults();
            serve(&cli, &defaults).await
        }
    }
}

impl ServeArgs {
    /// `spot-optimizer` with no subcommand behaves like `spot-optimizer serve`.
    fn parse_defaults() -> ServeArgs {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Only::try_parse_from(["spot-optimizer"])
            .map(|o| o.serve)
            .unwrap_or_default()
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let msg = e.to_string();
            eprintln!("{}", msg.lines().next().unwrap_or("invalid arguments"));
            return ExitCode::from(2);
        }
    };
    match &cli.cmd {
        Some(Cmd::ValidateModel { file }) => return validate_model(file),
        Some(Cmd::ExportHistory { seed, days }) => return export_history(*seed, *days),
        Some(Cmd::Plan { workload, pretty }) => return plan_workload(workload, *pretty),
        _ => {}
    }
    // `rediss://` (redis-rs builds its rustls config with the process-wide provider). The AWS
    // SDK compiles aws-lc-rs in as well, so rustls will not pick one by itself: choose ring,
    // the provider sqlx's PostgreSQL TLS also uses. Idempotent (an error = already installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
