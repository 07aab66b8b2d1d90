//! A fake control plane serving the agent API (`/api/agent/v1`), recording everything the
//! agent sends and serving queued commands with the exactly-once claim.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::Utc;
use serde_json::json;
use spot_agent_protocol as proto;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdState {
    Pending,
    Started,
    Done,
}

#[derive(Default)]
pub struct CpState {
    pub token: String,
    /// Every request answers 401.
    pub revoked: bool,
    /// Heartbeat, snapshot, delta, start and result answer 503; the command poll still
    /// answers (a flapping link).
    pub unreachable: bool,
    /// Polls also list commands that were already claimed (as a racing replica would see
    /// them), so the agent's handling of a 409 on `start` is exercised.
    pub redeliver_claimed: bool,
    /// The next heartbeat ack asks for a full snapshot.
    pub resync_next: bool,
    pub heartbeats: Vec<proto::Heartbeat>,
    pub snapshots: Vec<proto::ClusterSnapshot>,
    pub deltas: Vec<proto::ClusterDelta>,
    pub commands: Vec<(proto::Command, CmdState)>,
    /// (command id, HTTP status answered) per start request.
    pub starts: Vec<(Uuid, u16)>,
    pub results: Vec<(Uuid, proto::CommandResult)>,
    /// Requests answered 401/503.
    pub rejected: Vec<String>,
}

pub struct FakeControlPlane {
    addr: SocketAddr,
    state: Arc<Mutex<CpState>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeControlPlane {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn err(code: StatusCode, msg: &str) -> Response {
    (
        code,
        [("content-type", "application/json")],
        json!({"error": msg}).to_string(),
    )
        .into_response()
}

fn ok<T: serde::Serialize>(v: &T) -> Response {
    match serde_json::to_string(v) {
        Ok(s) => (StatusCode::OK, [("content-type", "application/json")], s).into_response(),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[allow(clippy::result_large_err)] // test server: the error is the ready answer
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| err(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")))
}

async fn handle(
    State(state): State<Arc<Mutex<CpState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let Some(rest) = path.strip_prefix(proto::API_PREFIX) else {
        return err(StatusCode::NOT_FOUND, "not found");
    };
    let rest = rest.to_string();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        if st.revoked || auth != format!("Bearer {}", st.token) {
            st.rejected.push(format!("401 {method} {rest}"));
            return err(StatusCode::UNAUTHORIZED, "invalid or revoked agent token");
        }
        if st.unreachable && rest != "/commands" {
            st.rejected.push(format!("503 {method} {rest}"));
            if let Some(id) = rest
                .strip_prefix("/commands/")
                .and_then(|r| r.strip_suffix("/start"))
            {
                if let Ok(id) = id.parse() {
                    st.starts.push((id, 503));
                }
            }
            return err(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        }
    }
    let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        (Method::POST, ["heartbeat"]) => {
            let hb: proto::Heartbeat = match parse(&body) {
                Ok(h) => h,
                Err(r) => return r,
            };
            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
            st.heartbeats.push(hb);
            let resync = std::mem::take(&mut st.resync_next);
            ok(&proto::HeartbeatAck {
                cluster_id: Uuid::nil(),
                server_time: Utc::now(),
                resync,
            })
        }
        (Method::POST, ["snapshot"]) => match parse::<proto::ClusterSnapshot>(&body) {
            Ok(s) => {
                state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .snapshots
                    .push(s);
                ok(&proto::Ack { ok: true })
            }
            Err(r) => r,
        },
        (Method::POST, ["delta"]) => match parse::<proto::ClusterDelta>(&body) {
            Ok(d) => {
                state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .deltas
                    .push(d);
                ok(&proto::Ack { ok: true })
            }
            Err(r) => r,
        },
        (Method::GET, ["commands"]) => {
            let wait: u64 = uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("wait="))
                .and_then(|w| w.parse().ok())
                .unwrap_or(0);
            let end = tokio::time::Instant::now()
                + Duration::from_secs(wait.min(proto::MAX_POLL_WAIT_SECS));
            loop {
                let batch: Vec<proto::Command> = {
                    let st = state.lock().unwrap_or_else(|p| p.into_inner());
                    st.commands
                        .iter()
                        .filter(|(_, s)| {
                            *s == CmdState::Pending
                                || (st.redeliver_claimed && *s != CmdState::Pending)
                        })
                        .map(|(c, _)| c.clone())
                        .collect()
                };
                if !batch.is_empty() || tokio::time::Instant::now() >= end {
                    return ok(&proto::CommandBatch { commands: batch });
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        (Method::POST, ["commands", id, "start"]) => {
            let Ok(id) = id.parse::<Uuid>() else {
                return err(StatusCode::BAD_REQUEST, "id: not a uuid");
            };
            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
            let found = st
                .commands
                .iter_mut()
                .find(|(c, _)| c.id == id)
                .map(|(c, s)| {
                    if *s == CmdState::Pending {
                        *s = CmdState::Started;
                        Some(c.clone())
                    } else {
                        None
                    }
                });
            match found {
                None => {
                    st.starts.push((id, 404));
                    err(StatusCode::NOT_FOUND, "no such command")
                }
                Some(None) => {
                    st.starts.push((id, 409));
                    err(StatusCode::CONFLICT, "command already started")
                }
                Some(Some(c)) => {
                    st.starts.push((id, 200));
                    ok(&c)
                }
            }
        }
        (Method::POST, ["commands", id, "result"]) => {
            let Ok(id) = id.parse::<Uuid>() else {
                return err(StatusCode::BAD_REQUEST, "id: not a uuid");
            };
            let r: proto::CommandResult = match parse(&body) {
                Ok(r) => r,
                Err(r) => return r,
            };
            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, s)) = st.commands.iter_mut().find(|(c, _)| c.id == id) {
                *s = CmdState::Done;
            }
            st.results.push((id, r));
            ok(&proto::Ack { ok: true })
        }
        _ => err(StatusCode::NOT_FOUND, "not found"),
    }
}

impl FakeControlPlane {
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(CpState {
            token: token.to_string(),
            ..CpState::default()
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            state,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs `f` on the recorded state.
    pub fn with<T>(&self, f: impl FnOnce(&mut CpState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Queues a command with a deadline `deadline_secs` from now; returns its id.
    pub fn push_command(&self, command: proto::CommandKind, deadline_secs: i64) -> Uuid {
        let now = Utc::now();
        let c = proto::Command {
            id: Uuid::new_v4(),
            command,
            created_at: now,
            deadline: now + chrono::Duration::seconds(deadline_secs),
        };
        let id = c.id;
        self.with(|s| s.commands.push((c, CmdState::Pending)));
        id
    }

    pub fn result(&self, id: Uuid) -> Option<proto::CommandResult> {
        self.with(|s| {
            s.results
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, r)| r.clone())
        })
    }

    pub fn starts(&self, id: Uuid) -> Vec<u16> {
        self.with(|s| {
            s.starts
                .iter()
                .filter(|(i, _)| *i == id)
                .map(|(_, c)| *c)
                .collect()
        })
    }
}
