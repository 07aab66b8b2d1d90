//! Shared application state handed to every handler.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use spot_models::Db;

use crate::auth::JwtKeys;
use crate::cloud_connect::{CloudConnector, SimConnector};
use crate::crypto::Keyring;
use crate::config::ServerConfig;
use crate::error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub cfg: Arc<ServerConfig>,
    pub jwt: JwtKeys,
    pub keyring: Keyring,
    pub connector: Arc<dyn CloudConnector>,
    login_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    signup_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
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
        let login_limiter = Arc::new(RateLimiter::keyed(Quota::per_minute(nz(cfg.login_per_minute))));
        let signup_limiter = Arc::new(RateLimiter::keyed(Quota::per_hour(nz(cfg.signup_per_hour))));
        Ok(AppState { db, cfg: Arc::new(cfg), jwt, keyring, connector, login_limiter, signup_limiter })
    }

    pub fn check_login_rate(&self, ip: IpAddr) -> Result<(), ApiError> {
        check(&self.login_limiter, ip)
    }

    pub fn check_signup_rate(&self, ip: IpAddr) -> Result<(), ApiError> {
        check(&self.signup_limiter, ip)
    }
}

fn check(limiter: &DefaultKeyedRateLimiter<IpAddr>, ip: IpAddr) -> Result<(), ApiError> {
    limiter.check_key(&ip).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::RateLimited { retry_after_secs: wait.as_secs().max(1) }
    })
}
