//! Shared application state handed to every handler.

use std::net::IpAddr;
use std::sync::Arc;

use spot_models::Db;

use crate::auth::JwtKeys;
use crate::cloud_connect::{CloudConnector, SimConnector};
use crate::crypto::Keyring;
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
}

impl AppState {
    /// State with the simulator as the cloud (the embedded default).
    pub fn new(db: Db, cfg: ServerConfig) -> Result<Self, crate::crypto::CryptoError> {
        let seed = cfg.sim_seed;
        Self::with_connector(db, cfg, Arc::new(SimConnector::new(seed)))
    }

    pub fn with_connector(db: Db, cfg: ServerConfig, connector: Arc<dyn CloudConnector>) -> Result<Self, crate::crypto::CryptoError> {
        let keyring = Keyring::new(&cfg.secret_key.0, &cfg.previous_secret_keys)?;
        let jwt = JwtKeys::new(&cfg.jwt_secret.0);
        let limiter = Limiter::local(cfg.limits());
        Ok(AppState { db, cfg: Arc::new(cfg), jwt, keyring, connector, limiter })
    }

    /// Shares rate limits across replicas through Redis.
    pub async fn use_redis(mut self, url: &str) -> Result<Self, redis::RedisError> {
        self.limiter = Limiter::redis(url, self.cfg.limits()).await?;
        Ok(self)
    }

    pub async fn check_login_rate(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.limiter.check(Bucket::Login, ip).await
    }

    pub async fn check_signup_rate(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.limiter.check(Bucket::Signup, ip).await
    }
}
