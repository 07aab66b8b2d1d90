//! Rate limits for login and signup. Per client address: in-process (governor) on the
//! embedded default; Redis fixed windows when `REDIS_URL` is set, so every replica shares one
//! budget. Per account (normalised e-mail, from any address): failed sign-ins in a sliding
//! window. A Redis error or timeout never lets a request through unlimited: that request is
//! counted by the in-process limiter instead.
//!
//! Client addresses are keyed as they are for IPv4 and by their /64 for IPv6 (one
//! subscriber's allocation: rotating through it must not multiply the budget).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Failed sign-ins allowed per account (normalised e-mail) within `account_window_secs`,
    /// whatever the client address; 0 disables the per-account throttle.
    pub login_failures_per_account: u32,
    pub account_window_secs: u64,
}

impl Limits {
    /// (allowed requests, window seconds)
    fn of(&self, b: Bucket) -> (u32, u64) {
        match b {
            Bucket::Login => (self.login_per_minute, 60),
            Bucket::Signup => (self.signup_per_hour, 3600),
        }
    }

    fn account_window_ms(&self) -> i64 {
        (self.account_window_secs.max(1) as i64).saturating_mul(1000)
    }
}

/// The key a client address is limited by: IPv4 (and IPv4-mapped IPv6) as is, other IPv6
/// addresses by their /64 prefix.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn parse_forwarded_entry(raw: &str) -> Option<IpAddr> {
    let e = raw.trim().trim_matches('"');
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = e.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    e.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse().ok())
}

/// The client address from `X-Forwarded-For` behind `hops` trusted proxies: each proxy
/// appends the address it received the connection from, so the entry `hops` places from the
/// right was written by the outermost trusted proxy; everything left of it is whatever the
/// client sent and is ignored. `values` are the header's lines in order (a proxy may add a
/// line instead of extending one). With fewer entries than `hops` the leftmost is used (every
/// entry was written by a trusted proxy). `None` when that entry is not an address.
pub fn forwarded_client<'a>(
    values: impl IntoIterator<Item = &'a str>,
    hops: usize,
) -> Option<IpAddr> {
    let entries: Vec<&str> = values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return None;
    }
    let idx = entries.len().saturating_sub(hops.max(1));
    parse_forwarded_entry(entries[idx])
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Prune the in-process state every this many checks.
const PRUNE_EVERY: u64 = 1024;
/// Redis round trips longer than this count as an outage for the request at hand.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Failure times of one account (milliseconds, oldest first, at most `allowed` of them).
type Failures = VecDeque<i64>;

/// Drops failures older than the window; returns the seconds until the account may try
/// again when `allowed` failures are within the window.
fn account_blocked(f: &mut Failures, now: i64, allowed: u32, window_ms: i64) -> Option<u64> {
    while f.front().is_some_and(|t| *t <= now - window_ms) {
        f.pop_front();
    }
    if allowed == 0 || f.len() < allowed as usize {
        return None;
    }
    let oldest = f.front().copied().unwrap_or(now);
    let wait_ms = (oldest + window_ms - now).max(1000);
    Some((wait_ms as u64).div_ceil(1000))
}

fn record_failure(f: &mut Failures, now: i64, allowed: u32, window_ms: i64) {
    while f.front().is_some_and(|t| *t <= now - window_ms) {
        f.pop_front();
    }
    f.push_back(now);
    while f.len() > allowed.max(1) as usize {
        f.pop_front();
    }
}

/// In-process state: used alone on the embedded default, and as the fallback of Redis.
struct Local {
    limits: Limits,
    login: DefaultKeyedRateLimiter<IpAddr>,
    signup: DefaultKeyedRateLimiter<IpAddr>,
    failures: Mutex<HashMap<String, Failures>>,
    checks: AtomicU64,
}

impl Local {
    fn new(limits: Limits) -> Self {
        Local {
            limits,
            login: RateLimiter::keyed(Quota::per_minute(nz(limits.login_per_minute))),
            signup: RateLimiter::keyed(Quota::per_hour(nz(limits.signup_per_hour))),
            failures: Mutex::new(HashMap::new()),
            checks: AtomicU64::new(0),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets budgets nobody is drawing on, so a flood of distinct addresses or e-mails
    /// costs memory only for as long as their window lasts.
    fn maybe_prune(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY != PRUNE_EVERY - 1 {
            return;
        }
        self.prune(now_ms());
    }

    fn prune(&self, now: i64) {
        self.login.retain_recent();
        self.login.shrink_to_fit();
        self.signup.retain_recent();
        self.signup.shrink_to_fit();
        let window = self.limits.account_window_ms();
        let mut f = self.failures();
        f.retain(|_, times| times.back().is_some_and(|t| *t > now - window));
        f.shrink_to_fit();
    }

    fn check(&self, bucket: Bucket, key: IpAddr) -> Result<(), ApiError> {
        self.maybe_prune();
        let l = match bucket {
            Bucket::Login => &self.login,
            Bucket::Signup => &self.signup,
        };
        l.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }

    fn account_check(&self, account: &str, now: i64) -> Result<(), ApiError> {
        self.maybe_prune();
        let mut map = self.failures();
        let Some(f) = map.get_mut(account) else {
            return Ok(());
        };
        match account_blocked(
            f,
            now,
            self.limits.login_failures_per_account,
            self.limits.account_window_ms(),
        ) {
            Some(retry_after_secs) => Err(ApiError::RateLimited { retry_after_secs }),
            None => Ok(()),
        }
    }

    fn account_failure(&self, account: &str, now: i64) {
        let mut map = self.failures();
        let f = map.entry(account.to_string()).or_default();
        record_failure(
            f,
            now,
            self.limits.login_failures_per_account,
            self.limits.account_window_ms(),
        );
    }

    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        (self.login.len(), self.failures().len())
    }
}

#[derive(Clone)]
pub struct Limiter {
    local: Arc<Local>,
    redis: Option<redis::aio::ConnectionManager>,
}

/// Logs a Redis failure at most once per 10 seconds (a flood must not flood the logs).
fn redis_unavailable(what: &str, e: &dyn std::fmt::Display) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = chrono::Utc::now().timestamp();
    let last = LAST.load(Ordering::Relaxed);
    if now - last >= 10
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::error!(component = "CORE-AUTH", error = %e, what, "Redis rate limiter unavailable; limiting in process");
    }
}

/// The key of an account's failure budget: a digest, so no address is stored in Redis.
fn account_key(email: &str) -> String {
    crate::auth::sha256_hex(email.trim().to_lowercase().as_bytes())
}

impl Limiter {
    pub fn local(l: Limits) -> Self {
        Limiter {
            local: Arc::new(Local::new(l)),
            redis: None,
        }
    }

    /// Connects to Redis; fails when it is unreachable so a misconfiguration shows at start.
    pub async fn redis(url: &str, limits: Limits) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client).await?;
        Ok(Limiter {
            local: Arc::new(Local::new(limits)),
            redis: Some(conn),
        })
    }

    /// Draws one request from the client's budget (`ip` is keyed by [`client_key`]).
    pub async fn check(&self, bucket: Bucket, ip: IpAddr) -> Result<(), ApiError> {
        let key = client_key(ip);
        let Some(conn) = &self.redis else {
            return self.local.check(bucket, key);
        };
        let (allowed, window) = self.local.limits.of(bucket);
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let slot = now / window;
        let rkey = format!("spot:ratelimit:{}:{}:{}", bucket.name(), key, slot);
        let mut c = conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic().incr(&rkey, 1u64).expire(&rkey, window as i64);
        let fut = pipe.query_async::<(u64, bool)>(&mut c);
        match tokio::time::timeout(REDIS_TIMEOUT, fut).await {
            Ok(Ok((n, _))) if n > u64::from(allowed) => Err(ApiError::RateLimited {
                retry_after_secs: ((slot + 1) * window).saturating_sub(now).max(1),
            }),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                redis_unavailable(bucket.name(), &e);
                self.local.check(bucket, key)
            }
            Err(_) => {
                redis_unavailable(bucket.name(), &"timed out");
                self.local.check(bucket, key)
            }
        }
    }

    /// Refuses (429) a sign-in to an account that had too many failed sign-ins in the window,
    /// from whatever addresses. Counts nothing itself.
    pub async fn check_account(&self, email: &str) -> Result<(), ApiError> {
        let limits = self.local.limits;
        if limits.login_failures_per_account == 0 {
            return Ok(());
        }
        let account = account_key(email);
        let now = now_ms();
        let Some(conn) = &self.redis else {
            return self.local.account_check(&account, now);
        };
        let window = limits.account_window_ms();
        let rkey = format!("spot:login-failures:{account}");
        let mut c = conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zrembyscore(&rkey, "-inf", now - window)
            .ignore()
            .zcard(&rkey)
            .zrange_withscores(&rkey, 0, 0);
        let fut = pipe.query_async::<(u64, Vec<(String, f64)>)>(&mut c);
        match tokio::time::timeout(REDIS_TIMEOUT, fut).await {
            Ok(Ok((n, oldest))) => {
                if n < u64::from(limits.login_failures_per_account) {
                    return Ok(());
                }
                let oldest = oldest.first().map(|(_, t)| *t as i64).unwrap_or(now);
                let wait_ms = (oldest + window - now).max(1000);
                Err(ApiError::RateLimited {
                    retry_after_secs: (wait_ms as u64).div_ceil(1000),
                })
            }
            Ok(Err(e)) => {
                redis_unavailable("login-failures", &e);
                self.local.account_check(&account, now)
            }
            Err(_) => {
                redis_unavailable("login-failures", &"timed out");
                self.local.account_check(&account, now)
            }
        }
    }

    /// Counts a failed sign-in against the account.
    pub async fn record_login_failure(&self, email: &str) {
        let limits = self.local.limits;
        if limits.login_failures_per_account == 0 {
            return;
        }
        let account = account_key(email);
        let now = now_ms();
        let Some(conn) = &self.redis else {
            self.local.account_failure(&account, now);
            return;
        };
        let window = limits.account_window_ms();
        let keep = i64::from(limits.login_failures_per_account);
        let rkey = format!("spot:login-failures:{account}");
        let mut c = conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zadd(&rkey, uuid::Uuid::new_v4().to_string(), now)
            .ignore()
            .zrembyscore(&rkey, "-inf", now - window)
            .ignore()
            .zremrangebyrank(&rkey, 0, -(keep + 1) as isize)
            .ignore()
            .pexpire(&rkey, window)
            .ignore();
        let fut = pipe.query_async::<()>(&mut c);
        match tokio::time::timeout(REDIS_TIMEOUT, fut).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                redis_unavailable("login-failures", &e);
                self.local.account_failure(&account, now);
            }
            Err(_) => {
                redis_unavailable("login-failures", &"timed out");
                self.local.account_failure(&account, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn limits() -> Limits {
        Limits {
            login_per_minute: 3,
            signup_per_hour: 2,
            login_failures_per_account: 3,
            account_window_secs: 900,
        }
    }

    #[test]
    fn the_entry_written_by_the_trusted_proxy_is_taken() {
        // One proxy: the rightmost entry; whatever the client prepended is ignored.
        assert_eq!(
            forwarded_client(["1.1.1.1, 203.0.113.7"], 1),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(
            forwarded_client(["6.6.6.6,7.7.7.7", "203.0.113.7"], 1),
            Some(ip("203.0.113.7")),
            "separate header lines are one list"
        );
        // Two proxies: the second from the right.
        assert_eq!(
            forwarded_client(["spoof, 203.0.113.7, 10.0.0.2"], 2),
            Some(ip("203.0.113.7"))
        );
        // Fewer entries than hops: the leftmost (all written by trusted proxies).
        assert_eq!(
            forwarded_client(["203.0.113.7"], 3),
            Some(ip("203.0.113.7"))
        );
        // Ports and brackets.
        assert_eq!(
            forwarded_client(["x, 203.0.113.7:4711"], 1),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(
            forwarded_client(["[2001:db8::1]:443"], 1),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            forwarded_client(["[2001:db8::1]"], 1),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(forwarded_client(["1.2.3.4, garbage"], 1), None);
        assert_eq!(forwarded_client([" , "], 1), None);
        assert_eq!(forwarded_client(Vec::<&str>::new(), 1), None);
        // hops 0 behaves as 1.
        assert_eq!(
            forwarded_client(["a, 203.0.113.7"], 0),
            Some(ip("203.0.113.7"))
        );
    }

    #[test]
    fn ipv6_is_keyed_by_its_64() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(client_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[tokio::test]
    async fn one_64_shares_a_budget() {
        let l = Limiter::local(limits());
        for i in 1..=3 {
            l.check(Bucket::Login, ip(&format!("2001:db8:0:1::{i}")))
                .await
                .expect("within budget");
        }
        assert!(matches!(
            l.check(Bucket::Login, ip("2001:db8:0:1:dead:beef::1"))
                .await,
            Err(ApiError::RateLimited { .. })
        ));
        l.check(Bucket::Login, ip("2001:db8:0:2::1"))
            .await
            .expect("another /64 has its own budget");
    }

    #[test]
    fn account_failures_slide() {
        let window = 900_000;
        let mut f = Failures::new();
        for t in [0, 1000, 2000] {
            assert_eq!(account_blocked(&mut f, t, 3, window), None);
            record_failure(&mut f, t, 3, window);
        }
        // Blocked until the oldest failure leaves the window.
        assert_eq!(account_blocked(&mut f, 3000, 3, window), Some(897));
        assert_eq!(account_blocked(&mut f, window - 1, 3, window), Some(1));
        assert_eq!(account_blocked(&mut f, window, 3, window), None);
        // Never more entries than the budget.
        for t in 0..100 {
            record_failure(&mut f, window + t, 3, window);
        }
        assert_eq!(f.len(), 3);
        assert_eq!(
            account_blocked(&mut f, window + 100, 0, window),
            None,
            "0 disables"
        );
    }

    #[tokio::test]
    async fn account_throttle_is_independent_of_the_address() {
        let l = Limiter::local(limits());
        for _ in 0..3 {
            l.check_account("Victim@Example.com ").await.expect("open");
            l.record_login_failure("victim@example.com").await;
        }
        match l.check_account("victim@example.com").await {
            Err(ApiError::RateLimited { retry_after_secs }) => {
                assert!((1..=900).contains(&retry_after_secs))
            }
            other => panic!("expected 429, got {other:?}"),
        }
        l.check_account("other@example.com")
            .await
            .expect("others unaffected");
    }

    #[test]
    fn stale_state_is_pruned() {
        let local = Local::new(limits());
        let now = now_ms();
        for i in 0..50 {
            local.account_failure(&format!("a{i}"), now - 1_000_000);
        }
        local.account_failure("recent", now);
        assert_eq!(local.sizes().1, 51);
        local.prune(now);
        assert_eq!(
            local.sizes().1,
            1,
            "only the account inside its window stays"
        );
        // Addresses still inside their budget period stay in the store.
        for i in 0..20u8 {
            let _ = local.check(Bucket::Login, IpAddr::from([10, 0, 0, i]));
        }
        local.prune(now);
        assert_eq!(local.sizes().0, 20);
        // Addresses whose budget is full again are dropped (1 ms replenish period here).
        let fast = Local::new(Limits {
            login_per_minute: 60_000,
            ..limits()
        });
        for i in 0..20u8 {
            fast.check(Bucket::Login, IpAddr::from([10, 0, 1, i]))
                .expect("within budget");
        }
        assert_eq!(fast.sizes().0, 20);
        std::thread::sleep(Duration::from_millis(20));
        fast.prune(now_ms());
        assert_eq!(fast.sizes().0, 0, "stale addresses are pruned");
    }

    /// Copies bytes one way until either side closes (tokio's `net` feature only).
    async fn pump(from: &tokio::net::TcpStream, to: &tokio::net::TcpStream) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if from.readable().await.is_err() {
                return;
            }
            let n = match from.try_read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            };
            let mut off = 0;
            while off < n {
                if to.writable().await.is_err() {
                    return;
                }
                match to.try_write(&buf[off..n]) {
                    Ok(w) => off += w,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => return,
                }
            }
        }
    }

    /// Redis that accepts the connection and then goes away: requests are limited in process.
    #[tokio::test]
    async fn a_redis_outage_falls_back_to_the_in_process_limiter() {
        let url = std::env::var("SPOT_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let target = url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let proxy = tokio::spawn(async move {
            let mut stop = stop_rx.clone();
            loop {
                let accepted = tokio::select! {
                    _ = stop.changed() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((inbound, _)) = accepted else { break };
                let target = target.clone();
                let mut conn_stop = stop_rx.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = pump(&inbound, &outbound) => {}
                        _ = pump(&outbound, &inbound) => {}
                        _ = conn_stop.changed() => {}
                    }
                });
            }
        });
        let l = Limiter::redis(&format!("redis://{addr}"), limits())
            .await
            .unwrap_or_else(|e| panic!("Redis at {url} is required by this test: {e}"));
        let client = ip(&format!("192.0.2.{}", uuid::Uuid::new_v4().as_bytes()[0]));
        let _ = stop_tx.send(true);
        let _ = proxy.await;
        let t0 = std::time::Instant::now();
        for _ in 0..3 {
            l.check(Bucket::Login, client).await.expect("within budget");
        }
        assert!(
            matches!(
                l.check(Bucket::Login, client).await,
                Err(ApiError::RateLimited { .. })
            ),
            "an unreachable Redis must not disable the limit"
        );
        for _ in 0..3 {
            l.record_login_failure("down@example.com").await;
        }
        assert!(matches!(
            l.check_account("down@example.com").await,
            Err(ApiError::RateLimited { .. })
        ));
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "each request waits at most the Redis timeout"
        );
    }
}
