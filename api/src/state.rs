//! Shared application state handed to every handler.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use spot_actors::bus::Bus;
use spot_actors::connect::{CloudConnector, SimConnector};
use spot_actors::hive::{MemoryTracker, RedisTracker, RiskTracker};
use spot_actors::system::{Actors, Deps};
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
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid SPOT_SECRET_KEY: {0}")]
    Key(#[from] spot_models::crypto::CryptoError),
    #[error("invalid REDIS_URL: cannot connect: {0}")]
    Redis(String),
    #[error("{0}")]
    Actors(#[from] spot_actors::system::ActorError),
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
        let deps = Deps {
            db: db.clone(),
            connector: connector.clone(),
            keyring: keyring.clone(),
            bus: Bus::default(),
            hive: hive.clone(),
            interval: Duration::from_secs(cfg.discovery_interval_secs.max(1)),
        };
        let actors = Actors::start(deps).await?;
        Ok(AppState {
            db,
            cfg: Arc::new(cfg),
            jwt,
            keyring,
            connector,
            limiter,
            hive,
            actors,
        })
    }

    pub async fn check_login_rate(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.limiter.check(Bucket::Login, ip).await
    }

    pub async fn check_signup_rate(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.limiter.check(Bucket::Signup, ip).await
    }
}
