//! Per-client rate limits for login and signup. In-process (governor) on the embedded
//! default; Redis fixed windows when `REDIS_URL` is set, so every replica shares one budget.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Which budget a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Login,
    Signup,
}

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Bucket::Login => "login",
            Bucket::Signup => "signup",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub login_per_minute: u32,
    pub signup_per_hour: u32,
}

impl Limits {
    /// (allowed requests, window seconds)
    fn of(&self, b: Bucket) -> (u32, u64) {
        match b {
            Bucket::Login => (self.login_per_minute, 60),
            Bucket::Signup => (self.signup_per_hour, 3600),
        }
    }
}

#[derive(Clone)]
pub enum Limiter {
    Local {
        login: Arc<DefaultKeyedRateLimiter<IpAddr>>,
        signup: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    },
    Redis {
        conn: redis::aio::ConnectionManager,
        limits: Limits,
    },
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Limiter {
    pub fn local(l: Limits) -> Self {
        Limiter::Local {
            login: Arc::new(RateLimiter::keyed(Quota::per_minute(
                nz(l.login_per_minute),
            ))),
            signup: Arc::new(RateLimiter::keyed(Quota::per_hour(nz(l.signup_per_hour)))),
        }
    }

    /// Connects to Redis; fails when it is unreachable so a misconfiguration shows at start.
    pub async fn redis(url: &str, limits: Limits) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client).await?;
        Ok(Limiter::Redis { conn, limits })
    }

    pub async fn check(&self, bucket: Bucket, ip: IpAddr) -> Result<(), ApiError> {
        match self {
            Limiter::Local { login, signup } => {
                let l = if bucket == Bucket::Login {
                    login
                } else {
                    signup
                };
                l.check_key(&ip).map_err(|not_until| {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    ApiError::RateLimited {
                        retry_after_secs: wait.as_secs().max(1),
                    }
                })
            }
            Limiter::Redis { conn, limits } => {
                let (allowed, window) = limits.of(bucket);
                let now = chrono::Utc::now().timestamp().max(0) as u64;
                let slot = now / window;
                let key = format!("spot:ratelimit:{}:{}:{}", bucket.name(), ip, slot);
                let mut c = conn.clone();
                let count: Result<(u64, bool), redis::RedisError> = redis::pipe()
                    .atomic()
                    .incr(&key, 1u64)
                    .expire(&key, window as i64)
                    .query_async(&mut c)
                    .await;
                match count {
                    Ok((n, _)) if n > u64::from(allowed) => Err(ApiError::RateLimited {
                        retry_after_secs: ((slot + 1) * window).saturating_sub(now).max(1),
                    }),
                    Ok(_) => Ok(()),
                    Err(e) => {
                        // Failing open keeps sign-in available during a Redis outage; the event
                        // is loud in the logs.
                        tracing::error!(component = "CORE-AUTH", error = %e, "rate limiter unavailable");
                        Ok(())
                    }
                }
            }
        }
    }
}
