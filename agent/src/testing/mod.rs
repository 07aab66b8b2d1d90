//! In-process fakes for tests (feature `testing`): a Kubernetes API server speaking real
//! HTTP on 127.0.0.1 ([`FakeKube`]) and a control plane serving the agent API
//! ([`FakeControlPlane`]). The control plane's integration tests reuse [`FakeKube`] to run a
//! real agent in-process.

pub mod fake_cp;
pub mod fake_kube;

pub use fake_cp::FakeControlPlane;
pub use fake_kube::FakeKube;

use std::time::Duration;

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
