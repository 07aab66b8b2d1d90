//! Shared application state handed to every handler.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use spot_models::Db;

use crate::auth::JwtKeys;
use crate::config::ServerConfig;
use crate::error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub cfg: Arc<ServerConfig>,
    pub jwt: JwtKeys,
    login_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    signup_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl AppState {
    pub fn new(db: Db, cfg: ServerConfig) -> Self {
        let jwt = JwtKeys::new(&cfg.jwt_secret.0);
        let login_limiter = Arc::new(RateLimiter::keyed(Quota::per_minute(nz(cfg.login_per_minute))));
        let signup_limiter = Arc::new(RateLimiter::keyed(Quota::per_hour(nz(cfg.signup_per_hour))));
        AppState { db, cfg: Arc::new(cfg), jwt, login_limiter, signup_limiter }
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
