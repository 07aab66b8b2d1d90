//! `spot-agent` binary: reads its configuration from flags or the environment, builds an
//! in-cluster (or kubeconfig) Kubernetes client and runs the agent.
//!
//! Exit codes: 0 never (it runs until stopped), 1 on a configuration or Kubernetes
//! client error, 2 when the control plane rejects or revokes the token.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use spot_agent::{Agent, AgentError, Backoff, Config};

#[derive(Parser, Debug)]
#[command(
    name = "spot-agent",
    version,
    about = "In-cluster agent of Spot Optimizer (outbound only)"
)]
struct Args {
    /// Control plane base URL (https://…).
    #[arg(long, env = "SPOT_CONTROL_PLANE_URL", default_value = "")]
    control_plane_url: String,
    /// Per-cluster agent token (spa_…), sent as a bearer token.
    #[arg(
        long,
        env = "SPOT_AGENT_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    token: String,
    /// Cluster id (informational; the token identifies the cluster).
    #[arg(long, env = "SPOT_CLUSTER_ID")]
    cluster_id: Option<uuid::Uuid>,
    /// Seconds between heartbeats.
    #[arg(long, env = "SPOT_HEARTBEAT_SECS", default_value_t = 30)]
    heartbeat_secs: u64,
    /// Milliseconds changes are batched before a delta is sent.
    #[arg(long, env = "SPOT_DELTA_BATCH_MS", default_value_t = 1000)]
    delta_batch_ms: u64,
    /// Seconds between metrics.k8s.io reads.
    #[arg(long, env = "SPOT_METRICS_SECS", default_value_t = 30)]
    metrics_secs: u64,
    /// Seconds the control plane may be unreachable before the agent enters safe mode.
    #[arg(long, env = "SPOT_SAFE_MODE_AFTER_SECS", default_value_t = 300)]
    safe_mode_after_secs: u64,
    /// Long-poll wait for commands, in seconds (at most 30).
    #[arg(long, env = "SPOT_POLL_WAIT_SECS", default_value_t = 25)]
    poll_wait_secs: u64,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "SPOT_AGENT_LOG", default_value = "info")]
    log: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .init();
    let mut config = match Config::new(&args.control_plane_url, &args.token) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("spot-agent: {e}");
            return ExitCode::from(1);
        }
    };
    config.cluster_id = args.cluster_id;
    config.heartbeat_interval = Duration::from_secs(args.heartbeat_secs.max(1));
    config.delta_batch = Duration::from_millis(args.delta_batch_ms);
    config.metrics_interval = Duration::from_secs(args.metrics_secs.max(1));
    config.safe_mode_after = Duration::from_secs(args.safe_mode_after_secs.max(1));
    config.poll_wait_secs = args.poll_wait_secs.min(30);
    config.eviction_backoff = Backoff::default();
    let client = match kube::Config::infer()
        .await
        .map_err(|e| e.to_string())
        .and_then(|c| spot_agent::kube_client(c).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("spot-agent: cannot build a Kubernetes client (in-cluster config or kubeconfig): {e}");
            return ExitCode::from(1);
        }
    };
    let agent = match Agent::new(config, client) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("spot-agent: {e}");
            return ExitCode::from(1);
        }
    };
    // Kubernetes stops a pod with SIGTERM; Ctrl-C for local runs.
    let shutdown = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    match agent.run_until(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ (AgentError::Rejected(_) | AgentError::Revoked(_))) => {
            eprintln!("spot-agent: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("spot-agent: {e}");
            ExitCode::from(1)
        }
    }
}
