//! In-process fakes for tests (feature `testing`): a Kubernetes API server speaking real
//! HTTP on 127.0.0.1 ([`FakeKube`]) and a control plane serving the agent API
//! ([`FakeControlPlane`]). The control plane's integration tests reuse [`FakeKube`] to run a
//! real agent in-process.

pub mod fake_cp;
pub mod fake_kube;

pub use fake_cp::FakeControlPlane;
pub use fake_kube::FakeKube;

use std::time::Duration;

use crate::{Backoff, Config};

/// A configuration with short intervals for tests: heartbeat 200 ms, deltas batched
/// 100 ms, metrics every 200 ms, safe mode after 1 s, 1 s command long-poll, retries every
/// 100 ms, eviction backoff 50–200 ms.
pub fn fast_config(control_plane_url: &str, token: &str) -> Result<Config, crate::AgentError> {
    let mut c = Config::new(control_plane_url, token)?;
    c.heartbeat_interval = Duration::from_millis(200);
    c.delta_batch = Duration::from_millis(100);
    c.metrics_interval = Duration::from_millis(200);
    c.safe_mode_after = Duration::from_secs(1);
    c.poll_wait_secs = 1;
    c.retry_interval = Duration::from_millis(100);
    c.request_timeout = Duration::from_secs(5);
    c.eviction_backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    Ok(c)
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
