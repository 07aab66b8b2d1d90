//! Shared application state handed to every handler.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use spot_actors::bus::Bus;
use spot_actors::connect::{CloudConnector, SimConnector};
use spot_actors::hive::{MemoryTracker, RedisTracker, RiskTracker};
use spot_actors::risk::RiskService;
use spot_actors::system::{Actors, Deps};
use spot_jobs::{JobContext, JobQueue};
use spot_models::crypto::Keyring;
use spot_models::Db;

use crate::auth::JwtKeys;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::ratelimit::{Bucket, Limiter};

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub cfg: Arc<ServerConfig>,
    pub jwt: JwtKeys,
    pub keyring: Keyring,
    pub connector: Arc<dyn CloudConnector>,
    pub limiter: Limiter,
    pub hive: Arc<dyn RiskTracker>,
    pub actors: Actors,
    /// The active risk model (MOD-AI-01).
    pub risk: Arc<RiskService>,
    /// apalis queue of user-triggered jobs.
    pub jobs: JobQueue,
    /// Identifies this replica in cross-replica broadcasts.
    pub replica_id: String,
    /// Simulated in-cluster agents (only when the cloud is the simulator).
    pub sim_agents: Option<Arc<spot_actors::sim_agent::SimAgents>>,
    /// What the actors and jobs share (for read-only planning from a request).
    pub deps: Deps,
    /// Open live streams (SSE) under the per-user and server-wide caps.
    pub live_streams: Arc<crate::routes::events::LiveStreamSlots>,
    redis: Option<redis::Client>,
}

/// Redis channel on which graduations and rollbacks are broadcast to every replica.
pub const MODEL_CHANNEL: &str = "spot-optimizer:risk-model";

/// Backoff between attempts to subscribe again after the Redis connection dropped.
const RESUBSCRIBE_BACKOFF_MIN: Duration = Duration::from_millis(200);
const RESUBSCRIBE_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// A pub/sub connection subscribed to [`MODEL_CHANNEL`].
async fn model_subscription(
    client: &redis::Client,
) -> Result<redis::aio::PubSub, redis::RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(MODEL_CHANNEL).await?;
    Ok(pubsub)
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid SPOT_SECRET_KEY: {0}")]
    Key(#[from] spot_models::crypto::CryptoError),
    #[error("invalid REDIS_URL: cannot connect: {0}")]
    Redis(String),
    #[error("{0}")]
    Actors(#[from] spot_actors::system::ActorError),
    #[error("risk model registry: {0}")]
    Registry(#[from] spot_models::DbError),
    #[error("{0}")]
    Jobs(#[from] spot_jobs::JobError),
}

/// What to build the state from; `connector` defaults to the simulator and `redis_url` to
/// in-process state.
pub struct StateOptions {
    pub connector: Option<Arc<dyn CloudConnector>>,
    pub redis_url: Option<String>,
}

impl AppState {
    /// Builds the state and starts the actor system (one actor per linked account).
    pub async fn build(db: Db, cfg: ServerConfig, opts: StateOptions) -> Result<Self, StateError> {
        let keyring = Keyring::new(&cfg.secret_key.0, &cfg.previous_secret_keys)?;
        // Audit records and chain heads are MAC'd under a key the database does not hold.
        db.set_audit_keys(spot_models::audit::MacKeys::derive(
            &cfg.secret_key.0,
            &cfg.previous_secret_keys,
        ));
        let jwt = JwtKeys::new(&cfg.jwt_secret.0);
        let connector = opts
            .connector
            .unwrap_or_else(|| Arc::new(SimConnector::new(cfg.sim_seed)));
        let (limiter, hive): (Limiter, Arc<dyn RiskTracker>) = match &opts.redis_url {
            Some(url) => {
                let limiter = Limiter::redis(url, cfg.limits())
                    .await
                    .map_err(|e| StateError::Redis(e.to_string()))?;
                let hive = RedisTracker::connect(
                    url,
                    spot_actors::hive::DEFAULT_KEY_PREFIX,
                    spot_actors::hive::HIVE_TTL,
                )
                .await
                .map_err(|e| StateError::Redis(e.to_string()))?;
                (limiter, Arc::new(hive))
            }
            None => (
                Limiter::local(cfg.limits()),
                Arc::new(MemoryTracker::default()),
            ),
        };
        // The graduated model (or the shipped one) before any actor starts deciding.
        let risk = Arc::new(RiskService::new(RiskService::runtime_from_env()));
        risk.set(risk.load_from_registry(&db).await?);
        let deps = Deps {
            db: db.clone(),
            connector: connector.clone(),
            keyring: keyring.clone(),
            bus: Bus::default(),
            hive: hive.clone(),
            risk: risk.clone(),
            interval: Duration::from_secs(cfg.discovery_interval_secs.max(1)),
            replica_id: uuid::Uuid::new_v4().to_string(),
            lease: Duration::from_secs(cfg.lease_secs.max(1)),
        };
        let replica_id = deps.replica_id.clone();
        let actors = Actors::start(deps.clone()).await?;
        let jobs = JobQueue::start(
            &db.url,
            db.backend,
            &cfg.job_queue,
            JobContext {
                deps: deps.clone(),
                actors: actors.clone(),
                safe_mode: cfg.safe_mode,
            },
        )
        .await?;
        let redis = match &opts.redis_url {
            Some(url) => Some(
                redis::Client::open(url.as_str()).map_err(|e| StateError::Redis(e.to_string()))?,
            ),
            None => None,
        };
        let sim_agents = spot_actors::sim_agent::SimAgents::new(
            db.clone(),
            connector.clone(),
            actors.bus.clone(),
        );
        let live_streams = crate::routes::events::LiveStreamSlots::new(
            cfg.live_streams_per_user.max(1),
            cfg.live_streams_max.max(1),
        );
        let state = AppState {
            live_streams,
            sim_agents,
            db,
            cfg: Arc::new(cfg),
            jwt,
            keyring,
            connector,
            limiter,
            hive,
            actors,
            risk,
            jobs,
            replica_id,
            deps,
            redis,
        };
        state.subscribe_model_broadcasts().await?;
        Ok(state)
    }

    /// Loads the model the registry says is active, swaps it into every actor, and (when
    /// `broadcast`) tells the other replicas through Redis to do the same.
    pub async fn reload_risk_model(&self, broadcast: bool) -> Result<(), ApiError> {
        let m = self.risk.load_from_registry(&self.db).await?;
        tracing::info!(component = spot_actors::risk::COMPONENT, model = %m.id, degraded = m.degraded(), "risk model activated");
        self.actors.swap_model(&self.risk, m);
        if broadcast {
            if let Some(client) = &self.redis {
                let msg = serde_json::json!({"replica": self.replica_id}).to_string();
                let published: Result<i64, redis::RedisError> = async {
                    let mut conn = client.get_multiplexed_async_connection().await?;
                    redis::cmd("PUBLISH")
                        .arg(MODEL_CHANNEL)
                        .arg(msg)
                        .query_async(&mut conn)
                        .await
                }
                .await;
                if let Err(e) = published {
                    tracing::error!(component = spot_actors::risk::COMPONENT, error = %e, "model broadcast to other replicas failed");
                    return Err(ApiError::Unavailable(format!(
                        "model activated here, but the broadcast to other replicas failed: {e}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Other replicas' graduations: reload from the shared registry. The subscription is
    /// kept for the life of the process: when the Redis connection drops (Redis restarted, the
    /// connection killed), it resubscribes with backoff and, once subscribed again, re-reads
    /// the active model, since a graduation may have been broadcast while it was away.
    async fn subscribe_model_broadcasts(&self) -> Result<(), StateError> {
        let Some(client) = self.redis.clone() else {
            return Ok(());
        };
        // The first subscription is part of starting: Redis must be reachable.
        let first = model_subscription(&client)
            .await
            .map_err(|e| StateError::Redis(e.to_string()))?;
        let me = self.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut pubsub = Some(first);
            let mut backoff = RESUBSCRIBE_BACKOFF_MIN;
            loop {
                let ps = match pubsub.take() {
                    Some(ps) => ps,
                    None => {
                        match model_subscription(&client).await {
                            Ok(ps) => {
                                backoff = RESUBSCRIBE_BACKOFF_MIN;
                                tracing::info!(component = spot_actors::risk::COMPONENT, "model broadcasts: subscribed again; re-reading the active model");
                                if let Err(e) = me.reload_risk_model(false).await {
                                    tracing::error!(component = spot_actors::risk::COMPONENT, error = %e, "model reload after resubscribing failed");
                                }
                                ps
                            }
                            Err(e) => {
                                tracing::warn!(component = spot_actors::risk::COMPONENT, error = %e, retry_in_ms = backoff.as_millis() as u64, "model broadcasts: cannot subscribe; retrying");
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(RESUBSCRIBE_BACKOFF_MAX);
                                continue;
                            }
                        }
                    }
                };
                let mut stream = ps.into_on_message();
                while let Some(msg) = stream.next().await {
                    let payload: String = msg.get_payload().unwrap_or_default();
                    let from = serde_json::from_str::<serde_json::Value>(&payload)
                        .ok()
                        .and_then(|v| v["replica"].as_str().map(str::to_string));
                    if from.as_deref() == Some(me.replica_id.as_str()) {
                        continue;
                    }
                    if let Err(e) = me.reload_risk_model(false).await {
                        tracing::error!(component = spot_actors::risk::COMPONENT, error = %e, "model reload after broadcast failed");
                    }
                }
                // The stream ends when the connection does.
                tracing::warn!(
                    component = spot_actors::risk::COMPONENT,
                    "model broadcasts: Redis connection lost; resubscribing"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RESUBSCRIBE_BACKOFF_MAX);
            }
        });
        Ok(())
    }

    pub async fn check_login_rate(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.limiter.check(Bucket::Login, ip).await
    }

    pub async fn check_signup_rate(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.limiter.check(Bucket::Signup, ip).await
    }
}
