//! `spot-agent`: the in-cluster agent of Spot Optimizer.
//!
//! It watches Nodes, Pods, PodDisruptionBudgets and Events (kube-runtime watchers:
//! resourceVersion, bookmarks, re-list on 410 Gone), reads `metrics.k8s.io` when it is
//! served, pushes a full snapshot and then deltas plus a heartbeat to the control plane
//! (outbound HTTPS only; it never listens on a port), and long-polls commands (cordon,
//! uncordon, PDB-respecting drain through the Eviction API, label, taint, workload
//! rightsizing, Node deletion), claiming each before running it so it runs at most once.
//!
//! The run loop is a library ([`Agent`]) so tests can run a real agent in-process against
//! an injected [`kube::Client`] and control-plane URL; the `testing` feature adds an
//! in-process fake Kubernetes API server and a fake control plane.

pub mod agent;
pub mod commands;
pub mod control;
pub mod convert;
pub mod quantity;
#[cfg(feature = "testing")]
pub mod testing;
pub mod view;
pub mod watch;

pub use agent::{Agent, AgentError, Config, Status, AGENT_VERSION};
pub use commands::Backoff;
pub use control::{ControlPlane, ControlPlaneError};

/// Builds the kube client the agent should use: kube's own retry layer (which retries
/// 429/503/504 up to 15 times, for minutes) is turned off, so a PDB's 429 reaches the drain
/// loop, which retries it with its own backoff within the command's deadline.
pub fn kube_client(mut config: kube::Config) -> Result<kube::Client, kube::Error> {
    install_crypto_provider();
    config.default_retry = false;
    kube::Client::try_from(config)
}

/// Makes ring rustls' process-wide crypto provider (idempotent). When more than one
/// provider is compiled in (as in a build together with the AWS SDK), rustls will not pick
/// one by itself and every TLS client would panic.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs an agent with `config` against `client` until the token is rejected.
pub async fn run(config: Config, client: kube::Client) -> Result<(), AgentError> {
    Agent::new(config, client)?.run().await
}
