//! Client of the control plane's agent API (`/api/agent/v1`, see `spot-agent-protocol`).

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use spot_agent_protocol as proto;
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum ControlPlaneError {
    /// 401/403: the token is unknown, revoked or not allowed. The agent stops acting.
    #[error("control plane rejected the agent token ({status})")]
    Unauthorized { status: u16 },
    /// 409 on a command claim: someone else started it; never run it.
    #[error("command already claimed (409)")]
    Conflict,
    /// Network errors, timeouts and 5xx: the control plane is unreachable.
    #[error("control plane unreachable: {0}")]
    Unreachable(String),
    /// Any other answer (4xx with a body, undecodable JSON).
    #[error("control plane answered {status}: {body}")]
    Rejected { status: u16, body: String },
}

impl ControlPlaneError {
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ControlPlaneError::Unauthorized { .. })
    }
}

/// HTTP client of the agent API.
#[derive(Clone)]
pub struct ControlPlane {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ControlPlane {
    /// `base` is the control plane's URL (`https://spot.example.com`), without the API prefix.
    pub fn new(
        base: &str,
        token: &str,
        request_timeout: Duration,
    ) -> Result<Self, ControlPlaneError> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .user_agent(concat!("spot-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ControlPlaneError::Unreachable(e.to_string()))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}{}", self.base, proto::API_PREFIX, path)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ControlPlaneError> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| ControlPlaneError::Unreachable(e.to_string()))?;
        let status = resp.status();
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(ControlPlaneError::Unauthorized {
                    status: status.as_u16(),
                })
            }
            StatusCode::CONFLICT => return Err(ControlPlaneError::Conflict),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                return Err(ControlPlaneError::Unreachable(format!("HTTP {s}")))
            }
            _ => {}
        }
        let body = resp
            .text()
            .await
            .map_err(|e| ControlPlaneError::Unreachable(e.to_string()))?;
        if !status.is_success() {
            return Err(ControlPlaneError::Rejected {
                status: status.as_u16(),
                body: body.chars().take(500).collect(),
            });
        }
        serde_json::from_str(&body).map_err(|e| ControlPlaneError::Rejected {
            status: status.as_u16(),
            body: format!("undecodable answer: {e}"),
        })
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ControlPlaneError> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn heartbeat(
        &self,
        hb: &proto::Heartbeat,
    ) -> Result<proto::HeartbeatAck, ControlPlaneError> {
        self.post("/heartbeat", hb).await
    }

    pub async fn snapshot(
        &self,
        s: &proto::ClusterSnapshot,
    ) -> Result<proto::Ack, ControlPlaneError> {
        self.post("/snapshot", s).await
    }

    pub async fn delta(&self, d: &proto::ClusterDelta) -> Result<proto::Ack, ControlPlaneError> {
        self.post("/delta", d).await
    }

    /// Long poll: held open by the control plane up to `wait` seconds.
    pub async fn commands(&self, wait: u64) -> Result<proto::CommandBatch, ControlPlaneError> {
        let wait = wait.min(proto::MAX_POLL_WAIT_SECS);
        self.send(
            self.http
                .get(self.url(&format!("/commands?wait={wait}")))
                .timeout(Duration::from_secs(wait + 15)),
        )
        .await
    }

    /// Claims a command; only `Ok` allows executing it.
    pub async fn start(&self, id: Uuid) -> Result<proto::Command, ControlPlaneError> {
        self.send(self.http.post(self.url(&format!("/commands/{id}/start"))))
            .await
    }

    pub async fn result(
        &self,
        id: Uuid,
        r: &proto::CommandResult,
    ) -> Result<proto::Ack, ControlPlaneError> {
        self.post(&format!("/commands/{id}/result"), r).await
    }
}
