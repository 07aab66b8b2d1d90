//! The agent's run loop: watchers → view → snapshot/deltas; heartbeat; metrics; command
//! long-poll with exactly-once claims; safe mode; stop on 401.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use kube::Client;
use spot_agent_protocol as proto;
use thiserror::Error;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::commands::{Backoff, Executor};
use crate::control::{ControlPlane, ControlPlaneError};
use crate::watch::{self, Shared};

/// The agent's version, sent in every heartbeat.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Error)]
pub enum AgentError {
    #[error("missing configuration: {0}")]
    Config(String),
    /// The first heartbeat was answered 401/403.
    #[error("the control plane rejected the agent token (HTTP {0}); check SPOT_AGENT_TOKEN")]
    Rejected(u16),
    /// A later request was answered 401/403: the token was revoked; the agent stopped.
    #[error("the control plane revoked the agent token (HTTP {0}); the agent stopped acting")]
    Revoked(u16),
    #[error(transparent)]
    ControlPlane(#[from] ControlPlaneError),
}

/// Agent configuration (see `spot-agent --help` for the flags and environment variables).
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the control plane (`https://…`; `http://` only for local testing).
    pub control_plane_url: String,
    pub token: String,
    /// Informational: the control plane identifies the cluster by the token.
    pub cluster_id: Option<Uuid>,
    pub heartbeat_interval: Duration,
    /// How long changes are batched before a delta is sent.
    pub delta_batch: Duration,
    pub metrics_interval: Duration,
    /// Unreachable for longer than this → safe mode.
    pub safe_mode_after: Duration,
    /// Long-poll wait for commands, in seconds (≤ 30).
    pub poll_wait_secs: u64,
    /// Retry pause while the control plane is unreachable.
    pub retry_interval: Duration,
    pub request_timeout: Duration,
    pub eviction_backoff: Backoff,
}

impl Config {
    /// Validates the two required settings; everything else gets the defaults.
    pub fn new(control_plane_url: &str, token: &str) -> Result<Self, AgentError> {
        let url = control_plane_url.trim();
        if url.is_empty() {
            return Err(AgentError::Config(
                "the control plane URL is required (--control-plane-url or SPOT_CONTROL_PLANE_URL)"
                    .into(),
            ));
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(AgentError::Config(format!(
                "the control plane URL must start with https:// (got {url:?})"
            )));
        }
        if token.trim().is_empty() {
            return Err(AgentError::Config(
                "the agent token is required (--token or SPOT_AGENT_TOKEN)".into(),
            ));
        }
        Ok(Self {
            control_plane_url: url.to_string(),
            token: token.trim().to_string(),
            cluster_id: None,
            heartbeat_interval: Duration::from_secs(proto::HEARTBEAT_INTERVAL_SECS),
            delta_batch: Duration::from_secs(1),
            metrics_interval: Duration::from_secs(30),
            safe_mode_after: Duration::from_secs(300),
            poll_wait_secs: 25,
            retry_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            eviction_backoff: Backoff::default(),
        })
    }
}

/// Reachability of the control plane and the agent's safe mode.
#[derive(Debug, Default)]
struct Link {
    failing_since: Option<Instant>,
    last_error: Option<String>,
    /// Open (`exited_at == None`) while in safe mode; closed until a heartbeat carried it.
    safe_mode: Option<proto::SafeModeReport>,
}

/// Live status of a running agent (for tests and logs).
#[derive(Clone, Default)]
pub struct Status {
    link: Arc<Mutex<Link>>,
    metrics_available: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    /// HTTP status that stopped the agent (401 or 403).
    stopped_by: Arc<AtomicU16>,
    stop: Arc<Notify>,
    executed: Arc<Mutex<Vec<Uuid>>>,
}

impl Status {
    fn link<T>(&self, f: impl FnOnce(&mut Link) -> T) -> T {
        f(&mut self.link.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether the agent is in safe mode now.
    pub fn in_safe_mode(&self) -> bool {
        self.link(|l| l.safe_mode.as_ref().is_some_and(|s| s.exited_at.is_none()))
    }

    /// The current or last (not yet reported) safe-mode episode.
    pub fn safe_mode(&self) -> Option<proto::SafeModeReport> {
        self.link(|l| l.safe_mode.clone())
    }

    pub fn metrics_available(&self) -> bool {
        self.metrics_available.load(Ordering::SeqCst)
    }

    /// Set once the token was revoked: the agent acts no more.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Ids of the commands this agent executed.
    pub fn executed(&self) -> Vec<Uuid> {
        self.executed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn revoke(&self, status: u16) {
        self.stopped_by.store(status, Ordering::SeqCst);
        if !self.stopped.swap(true, Ordering::SeqCst) {
            tracing::error!(
                status,
                "the control plane rejected the agent token: stopping, no further commands"
            );
        }
        self.stop.notify_waiters();
        self.stop.notify_one();
    }

    fn success(&self) {
        self.link(|l| {
            l.failing_since = None;
            l.last_error = None;
            if let Some(s) = l.safe_mode.as_mut() {
                if s.exited_at.is_none() {
                    s.exited_at = Some(Utc::now());
                    tracing::info!("control plane reachable again: leaving safe mode");
                }
            }
        });
    }

    fn failure(&self, err: &ControlPlaneError, threshold: Duration) {
        self.link(|l| {
            l.failing_since.get_or_insert_with(Instant::now);
            l.last_error = Some(err.to_string());
        });
        self.check_safe_mode(threshold);
    }

    fn check_safe_mode(&self, threshold: Duration) {
        self.link(|l| {
            let Some(since) = l.failing_since else { return };
            let open = l.safe_mode.as_ref().is_some_and(|s| s.exited_at.is_none());
            if !open && since.elapsed() >= threshold {
                let reason = format!(
                    "control plane unreachable for more than {}s: {}",
                    threshold.as_secs_f64(),
                    l.last_error.clone().unwrap_or_default()
                );
                tracing::warn!(%reason, "entering safe mode: no new command will be started");
                l.safe_mode = Some(proto::SafeModeReport {
                    entered_at: Utc::now(),
                    exited_at: None,
                    reason,
                });
            }
        });
    }
}

/// One agent: a kube client, a control plane, a configuration.
pub struct Agent {
    config: Config,
    client: Client,
    control: ControlPlane,
    status: Status,
}

impl Agent {
    pub fn new(config: Config, client: Client) -> Result<Self, AgentError> {
        let control = ControlPlane::new(
            &config.control_plane_url,
            &config.token,
            config.request_timeout,
        )?;
        Ok(Self {
            config,
            client,
            control,
            status: Status::default(),
        })
    }

    pub fn status(&self) -> Status {
        self.status.clone()
    }

    /// Runs until the token is rejected (an error) or forever.
    pub async fn run(self) -> Result<(), AgentError> {
        self.run_until(std::future::pending()).await
    }

    /// Runs until `shutdown` completes (`Ok`) or the token is rejected (an error). Every
    /// task the agent spawned is stopped when this returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        let mut tasks = JoinSet::new();
        let result = tokio::select! {
            r = self.main(&mut tasks) => r,
            _ = shutdown => Ok(()),
        };
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        result
    }

    async fn kubernetes_version(&self) -> String {
        match self.client.apiserver_version().await {
            Ok(info) => info.git_version,
            Err(e) => {
                tracing::warn!(error = %e, "reading the Kubernetes version failed");
                "unknown".to_string()
            }
        }
    }

    fn heartbeat(&self, shared: &Shared, k8s_version: &str) -> proto::Heartbeat {
        proto::Heartbeat {
            protocol_version: proto::PROTOCOL_VERSION,
            agent_version: AGENT_VERSION.to_string(),
            kubernetes_version: k8s_version.to_string(),
            watches: shared.with(|v| v.health()),
            metrics_available: self.status.metrics_available(),
            safe_mode: self.status.safe_mode(),
            sent_at: Utc::now(),
        }
    }

    /// Sends a heartbeat; closes and clears the safe-mode report once it was delivered.
    async fn send_heartbeat(
        &self,
        shared: &Shared,
        k8s_version: &str,
    ) -> Result<proto::HeartbeatAck, ControlPlaneError> {
        let hb = self.heartbeat(shared, k8s_version);
        let ack = self.control.heartbeat(&hb).await?;
        self.status.success();
        if let Some(report) = hb.safe_mode {
            if report.exited_at.is_some() {
                self.status.link(|l| {
                    if l.safe_mode.as_ref() == Some(&report) {
                        l.safe_mode = None;
                    }
                });
                return Ok(ack);
            }
            // It left safe mode with this heartbeat: report the closed episode now.
            let hb = self.heartbeat(shared, k8s_version);
            let ack = self.control.heartbeat(&hb).await?;
            if let Some(report) = hb.safe_mode {
                self.status.link(|l| {
                    if l.safe_mode.as_ref() == Some(&report) && report.exited_at.is_some() {
                        l.safe_mode = None;
                    }
                });
            }
            return Ok(ack);
        }
        Ok(ack)
    }

    async fn main(&self, tasks: &mut JoinSet<()>) -> Result<(), AgentError> {
        let shared = Shared::new();
        let k8s_version = self.kubernetes_version().await;
        tracing::info!(
            control_plane = %self.config.control_plane_url,
            cluster_id = ?self.config.cluster_id,
            kubernetes = %k8s_version,
            "spot-agent {AGENT_VERSION} starting"
        );

        // First heartbeat: a 401/403 refuses to start; unreachable is retried.
        let mut need_snapshot = loop {
            match self.send_heartbeat(&shared, &k8s_version).await {
                Ok(ack) => break ack.resync,
                Err(ControlPlaneError::Unauthorized { status }) => {
                    return Err(AgentError::Rejected(status))
                }
                // A wrong URL (404) or a control plane that does not speak the protocol: a
                // configuration error, not an outage.
                Err(e @ ControlPlaneError::Rejected { .. }) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %e, "first heartbeat failed; retrying");
                    self.status.failure(&e, self.config.safe_mode_after);
                    tokio::time::sleep(self.config.retry_interval).await;
                }
            }
        };

        watch::spawn_watchers(&self.client, &shared, tasks);
        tasks.spawn(metrics_loop(
            self.client.clone(),
            shared.clone(),
            self.status.clone(),
            self.config.metrics_interval,
        ));
        tasks.spawn(command_loop(
            self.control.clone(),
            Executor::new(self.client.clone(), self.config.eviction_backoff),
            self.status.clone(),
            self.config.clone(),
        ));

        let mut sent: Option<crate::view::Sent> = None;
        let mut next_heartbeat = Instant::now() + self.config.heartbeat_interval;
        let tick = self
            .config
            .retry_interval
            .min(self.config.safe_mode_after / 4)
            .max(Duration::from_millis(50));
        let mut k8s_version = k8s_version;
        loop {
            tokio::select! {
                _ = shared.changed.notified() => tokio::time::sleep(self.config.delta_batch).await,
                _ = tokio::time::sleep_until(next_heartbeat) => {}
                _ = tokio::time::sleep(tick) => {}
                _ = self.status.stop.notified() => {}
            }
            if self.status.stopped() {
                return Err(AgentError::Revoked(
                    self.status.stopped_by.load(Ordering::SeqCst),
                ));
            }
            self.status.check_safe_mode(self.config.safe_mode_after);

            if Instant::now() >= next_heartbeat {
                if k8s_version == "unknown" {
                    k8s_version = self.kubernetes_version().await;
                }
                let was_failing = self.status.link(|l| l.failing_since.is_some());
                match self.send_heartbeat(&shared, &k8s_version).await {
                    Ok(ack) => {
                        if ack.resync {
                            tracing::info!("the control plane asked for a full snapshot");
                            need_snapshot = true;
                        }
                        if was_failing {
                            // Reconnected: start again from a full snapshot.
                            need_snapshot = true;
                        }
                        next_heartbeat = Instant::now() + self.config.heartbeat_interval;
                    }
                    Err(ControlPlaneError::Unauthorized { status }) => {
                        self.status.revoke(status);
                        return Err(AgentError::Revoked(status));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "heartbeat failed");
                        self.status.failure(&e, self.config.safe_mode_after);
                        next_heartbeat = Instant::now()
                            + self
                                .config
                                .retry_interval
                                .min(self.config.heartbeat_interval);
                    }
                }
            }

            if !shared.with(|v| v.ready_for_snapshot()) {
                continue;
            }
            let relisted = shared.with(|v| std::mem::take(&mut v.need_snapshot));
            if sent.is_none() || need_snapshot || relisted {
                let (snap, next) = shared.with(|v| v.snapshot());
                match self.control.snapshot(&snap).await {
                    Ok(_) => {
                        tracing::info!(
                            nodes = snap.nodes.len(),
                            pods = snap.pods.len(),
                            pdbs = snap.pdbs.len(),
                            "snapshot sent"
                        );
                        self.status.success();
                        if sent.is_none() {
                            // The watches just became healthy: say so without waiting a period.
                            next_heartbeat = Instant::now();
                        }
                        sent = Some(next);
                        need_snapshot = false;
                    }
                    Err(ControlPlaneError::Unauthorized { status }) => {
                        self.status.revoke(status);
                        return Err(AgentError::Revoked(status));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "snapshot failed");
                        self.status.failure(&e, self.config.safe_mode_after);
                        shared.with(|v| v.restore(Vec::new(), snap.usage));
                        need_snapshot = true;
                    }
                }
                continue;
            }
            let Some(prev) = sent.as_ref() else { continue };
            let (delta, next) = shared.with(|v| v.delta(prev));
            if delta.is_empty() {
                continue;
            }
            match self.control.delta(&delta).await {
                Ok(_) => {
                    tracing::debug!(
                        nodes = delta.nodes_upserted.len() + delta.nodes_deleted.len(),
                        pods = delta.pods_upserted.len() + delta.pods_deleted.len(),
                        events = delta.events.len(),
                        "delta sent"
                    );
                    self.status.success();
                    sent = Some(next);
                }
                Err(ControlPlaneError::Unauthorized { status }) => {
                    self.status.revoke(status);
                    return Err(AgentError::Revoked(status));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "delta failed");
                    self.status.failure(&e, self.config.safe_mode_after);
                    shared.with(|v| v.restore(delta.events, delta.usage));
                }
            }
        }
    }
}

async fn metrics_loop(client: Client, shared: Shared, status: Status, every: Duration) {
    let mut logged_absent = false;
    loop {
        match watch::read_metrics(&client).await {
            Ok(Some(samples)) => {
                status.metrics_available.store(true, Ordering::SeqCst);
                logged_absent = false;
                shared.with(|v| v.add_usage(samples));
                shared.changed.notify_one();
            }
            Ok(None) => {
                status.metrics_available.store(false, Ordering::SeqCst);
                if !logged_absent {
                    tracing::info!(
                        "metrics.k8s.io is not served (no metrics-server): usage is not reported"
                    );
                    logged_absent = true;
                }
            }
            Err(e) => {
                status.metrics_available.store(false, Ordering::SeqCst);
                tracing::warn!(error = %e, "reading metrics.k8s.io failed");
            }
        }
        tokio::time::sleep(every).await;
    }
}

async fn command_loop(control: ControlPlane, executor: Executor, status: Status, config: Config) {
    loop {
        if status.stopped() {
            return;
        }
        let batch = match control.commands(config.poll_wait_secs).await {
            Ok(b) => b,
            Err(ControlPlaneError::Unauthorized { status: code }) => return status.revoke(code),
            Err(e) => {
                tracing::debug!(error = %e, "command poll failed");
                status.failure(&e, config.safe_mode_after);
                tokio::time::sleep(config.retry_interval).await;
                continue;
            }
        };
        // Nothing startable in a non-empty batch: pause instead of polling in a loop.
        let mut idle = !batch.commands.is_empty();
        for cmd in batch.commands {
            if status.stopped() {
                return;
            }
            if status.in_safe_mode() {
                tracing::warn!(command = %cmd.id, kind = cmd.command.name(), "safe mode: not starting the command");
                idle = true;
                break;
            }
            if cmd.deadline <= Utc::now() {
                tracing::warn!(command = %cmd.id, "command past its deadline: not starting it");
                continue;
            }
            let claimed = match control.start(cmd.id).await {
                Ok(c) => c,
                Err(ControlPlaneError::Conflict) => {
                    tracing::info!(command = %cmd.id, "command already claimed (409): skipped");
                    continue;
                }
                Err(ControlPlaneError::Unauthorized { status: code }) => {
                    return status.revoke(code)
                }
                Err(e) => {
                    tracing::warn!(command = %cmd.id, error = %e, "claiming the command failed");
                    status.failure(&e, config.safe_mode_after);
                    idle = true;
                    break;
                }
            };
            idle = false;
            tracing::info!(command = %claimed.id, kind = claimed.command.name(), "executing");
            status
                .executed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(claimed.id);
            let result = executor.execute(&claimed).await;
            tracing::info!(command = %claimed.id, outcome = ?result.outcome, message = %result.message, "command finished");
            // The result must reach the control plane: retry until it does.
            loop {
                match control.result(claimed.id, &result).await {
                    Ok(_) => break,
                    Err(ControlPlaneError::Unauthorized { status: code }) => {
                        return status.revoke(code)
                    }
                    Err(ControlPlaneError::Rejected { status: code, body }) if code < 500 => {
                        tracing::error!(command = %claimed.id, code, %body, "the control plane refused the result");
                        break;
                    }
                    Err(e) => {
                        status.failure(&e, config.safe_mode_after);
                        tokio::time::sleep(config.retry_interval).await;
                    }
                }
            }
        }
        if idle {
            tokio::time::sleep(config.retry_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_requires_url_and_token() {
        assert!(
            matches!(Config::new("", "t"), Err(AgentError::Config(m)) if m.contains("SPOT_CONTROL_PLANE_URL"))
        );
        assert!(
            matches!(Config::new("https://cp", ""), Err(AgentError::Config(m)) if m.contains("SPOT_AGENT_TOKEN"))
        );
        assert!(matches!(
            Config::new("ftp://cp", "t"),
            Err(AgentError::Config(_))
        ));
        let c = Config::new(" https://cp/ ", " spa_x ").unwrap();
        assert_eq!(c.token, "spa_x");
        assert_eq!(c.heartbeat_interval, Duration::from_secs(30));
    }

    #[tokio::test]
    async fn safe_mode_opens_after_the_threshold_and_closes_on_success() {
        let s = Status::default();
        let err = ControlPlaneError::Unreachable("connection refused".into());
        s.failure(&err, Duration::from_secs(3600));
        assert!(!s.in_safe_mode(), "not before the threshold");
        s.success();
        s.failure(&err, Duration::ZERO);
        assert!(s.in_safe_mode());
        let open = s.safe_mode().unwrap();
        assert!(open.exited_at.is_none());
        assert!(open.reason.contains("connection refused"));
        // Further failures keep the same episode.
        s.failure(&err, Duration::ZERO);
        assert_eq!(s.safe_mode().unwrap().entered_at, open.entered_at);
        s.success();
        assert!(!s.in_safe_mode());
        let closed = s.safe_mode().unwrap();
        assert_eq!(closed.entered_at, open.entered_at);
        assert!(closed.exited_at.is_some());
    }
}
