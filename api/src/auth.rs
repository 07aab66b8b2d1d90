//! Credentials: argon2id password hashes, the password policy, access JWTs and opaque
//! refresh/invite tokens.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use jsonwebtoken::{Algorithm as JwtAlg, DecodingKey, EncodingKey, Header, Validation};
use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub const ISSUER: &str = "spot-optimizer";
pub const AUDIENCE: &str = "spot-optimizer-api";

/// OWASP's argon2id minimum: m = 19 MiB, t = 2, p = 1.
fn argon() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    argon()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Bounds concurrent argon2id work: each hash holds 19 MiB and a core for tens of
/// milliseconds, so a login flood must not start thousands of hashes at once. Requests wait
/// for a slot in a bounded queue for a short while; beyond the queue, or after the wait, they
/// are answered 503.
pub struct HashLimiter {
    permits: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
    /// How long a request waits for a free slot before it is answered 503.
    wait: std::time::Duration,
}

/// Decrements the waiting count however the wait ends.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

fn saturated() -> ApiError {
    ApiError::Unavailable("too many sign-in requests are being processed; retry in a moment".into())
}

impl HashLimiter {
    pub fn new(slots: usize, max_waiting: usize, wait: std::time::Duration) -> Self {
        HashLimiter {
            permits: tokio::sync::Semaphore::new(slots.max(1)),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            max_waiting,
            wait,
        }
    }

    /// Runs `f` on the blocking pool once a slot is free; 503 when the queue is full or the
    /// wait is over.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = match self.permits.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                let queued = self
                    .waiting
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                let _waiting = Waiting(&self.waiting);
                if queued >= self.max_waiting {
                    return Err(saturated());
                }
                match tokio::time::timeout(self.wait, self.permits.acquire()).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) | Err(_) => return Err(saturated()),
                }
            }
        };
        let out = tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()));
        drop(permit);
        out
    }
}

/// One slot per core (1 to 64); up to 32 requests per slot wait, each at most 5 s.
fn hashing() -> &'static HashLimiter {
    static LIMITER: std::sync::OnceLock<HashLimiter> = std::sync::OnceLock::new();
    LIMITER.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 64);
        HashLimiter::new(cores, cores * 32, std::time::Duration::from_secs(5))
    })
}

/// Hashes off the async executor, bounded by the hashing slots (503 when saturated).
pub async fn hash_password_async(password: String) -> Result<String, ApiError> {
    hashing().run(move || hash_password(&password)).await?
}

/// Verifies off the async executor, bounded by the hashing slots (503 when saturated).
pub async fn verify_password_async(password: String, hash: String) -> Result<bool, ApiError> {
    hashing()
        .run(move || verify_password(&password, &hash))
        .await
}

/// Password policy: 10–128 characters, at least one letter and one digit, not the e-mail.
pub fn check_password_policy(password: &str, email: &str) -> Result<(), ApiError> {
    let len = password.chars().count();
    if len < 10 {
        return Err(ApiError::field(
            "password",
            "password must be at least 10 characters long",
        ));
    }
    if len > 128 {
        return Err(ApiError::field(
            "password",
            "password must be at most 128 characters long",
        ));
    }
    if !password.chars().any(|c| c.is_alphabetic()) || !password.chars().any(|c| c.is_ascii_digit())
    {
        return Err(ApiError::field(
            "password",
            "password must contain at least one letter and one digit",
        ));
    }
    if password.eq_ignore_ascii_case(email) {
        return Err(ApiError::field(
            "password",
            "password must not be your e-mail address",
        ));
    }
    Ok(())
}

/// Trims and lower-cases an e-mail address and checks its syntax.
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let e = raw.trim().to_lowercase();
    if e.len() > 254 || !email_address::EmailAddress::is_valid(&e) || !e.contains('.') {
        return Err(ApiError::field(
            "email",
            "email must be a valid e-mail address",
        ));
    }
    Ok(e)
}

/// A random opaque token (256 bits, URL-safe) and its SHA-256 hex digest for storage.
pub fn new_opaque_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = sha256_hex(token.as_bytes());
    (token, hash)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub org: String,
    pub sid: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    /// RFC 8693 actor claim: the platform admin acting as `sub` (impersonation tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// The `act` claim of an impersonation token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// User id of the platform admin.
    pub sub: String,
}

#[derive(Clone)]
pub struct JwtKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        // The algorithm is pinned: tokens declaring anything but HS256 are rejected.
        let mut validation = Validation::new(JwtAlg::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        JwtKeys {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn issue(
        &self,
        user_id: &str,
        org_id: &str,
        session_id: &str,
        ttl_secs: i64,
    ) -> Result<String, ApiError> {
        self.issue_as(user_id, org_id, session_id, ttl_secs, None)
    }

    /// Like [`JwtKeys::issue`], with the `act` claim of an impersonation session.
    pub fn issue_as(
        &self,
        user_id: &str,
        org_id: &str,
        session_id: &str,
        ttl_secs: i64,
        actor: Option<&str>,
    ) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user_id.into(),
            org: org_id.into(),
            sid: session_id.into(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + ttl_secs,
            act: actor.map(|a| Actor { sub: a.into() }),
        };
        jsonwebtoken::encode(&Header::new(JwtAlg::HS256), &claims, &self.enc)
            .map_err(|e| ApiError::Internal(format!("jwt encode: {e}")))
    }

    pub fn decode(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.dec, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}

/// Organization role of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Admin,
    Owner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

/// The authenticated caller, established by the gateway middleware from a valid access token
/// whose session is live.
#[derive(Debug, Clone)]
pub struct AuthCtx {
    pub user_id: String,
    pub email: String,
    pub org_id: String,
    pub role: Role,
    pub super_admin: bool,
    pub session_id: String,
    pub impersonator_id: Option<String>,
}

impl AuthCtx {
    /// Owners and admins may change organization resources.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role >= Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this action needs the admin or owner role".into(),
            ))
        }
    }

    pub fn require_super_admin(&self) -> Result<(), ApiError> {
        if self.super_admin && self.impersonator_id.is_none() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this action needs the platform super_admin role".into(),
            ))
        }
    }
}

/// Bearer access token (`Authorization: Bearer <jwt>`), obtained from `POST /api/auth/token`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub AuthCtx);

async fn check_bearer(req: &Request, _bearer: Bearer) -> Option<AuthCtx> {
    req.extensions().get::<AuthCtx>().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy_messages_name_the_field() {
        for bad in ["short1", "onlyletterslong", "1234567890123"] {
            match check_password_policy(bad, "a@b.co") {
                Err(ApiError::Validation { field, .. }) => {
                    assert_eq!(field.as_deref(), Some("password"))
                }
                other => panic!("expected validation error for {bad}, got {other:?}"),
            }
        }
        assert!(check_password_policy("correct horse 42", "a@b.co").is_ok());
    }

    #[test]
    fn email_is_normalized() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").ok().as_deref(),
            Some("alice@example.com")
        );
        assert!(normalize_email("not-an-email").is_err());
        assert!(normalize_email("a@localhost").is_err());
    }

    #[test]
    fn hash_round_trip_uses_argon2id() {
        let h = hash_password("correct horse 42").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse 42", &h));
        assert!(!verify_password("wrong horse 42", &h));
    }

    #[tokio::test]
    async fn hashing_is_bounded_and_answers_503_when_saturated() {
        let limiter = std::sync::Arc::new(HashLimiter::new(
            1,
            1,
            std::time::Duration::from_millis(100),
        ));
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = {
            let l = limiter.clone();
            tokio::spawn(async move {
                l.run(move || {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    1
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv())
            .await
            .expect("join")
            .expect("started");
        // The only slot is taken: the next request waits briefly, then is turned away.
        let t0 = std::time::Instant::now();
        match limiter.run(|| 2).await {
            Err(ApiError::Unavailable(_)) => {}
            other => panic!("expected 503, got {other:?}"),
        }
        assert!(t0.elapsed() >= std::time::Duration::from_millis(90));
        // With the queue full, the next one is turned away at once.
        let queued = {
            let l = limiter.clone();
            tokio::spawn(async move { l.run(|| 4).await })
        };
        while limiter.waiting.load(std::sync::atomic::Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        let t0 = std::time::Instant::now();
        assert!(matches!(
            limiter.run(|| 5).await,
            Err(ApiError::Unavailable(_))
        ));
        assert!(t0.elapsed() < std::time::Duration::from_millis(90));
        assert!(matches!(
            queued.await.expect("join"),
            Err(ApiError::Unavailable(_))
        ));
        release_tx.send(()).expect("release");
        assert_eq!(busy.await.expect("join").expect("ran"), 1);
        // The slot is free again.
        assert_eq!(limiter.run(|| 3).await.expect("ran"), 3);
    }

    #[test]
    fn jwt_rejects_other_algorithms_and_wrong_audience() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let t = keys.issue("u", "o", "s", 60).expect("issue");
        assert!(keys.decode(&t).is_some());
        let other = JwtKeys::new(b"another-secret-another-secret-xx");
        assert!(other.decode(&t).is_none());
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: "someone-else".into(),
            sub: "u".into(),
            org: "o".into(),
            sid: "s".into(),
            jti: "j".into(),
            iat: now,
            exp: now + 60,
            act: None,
        };
        let forged = jsonwebtoken::encode(
            &Header::new(JwtAlg::HS256),
            &claims,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .expect("encode");
        assert!(keys.decode(&forged).is_none());
        let hs512 = jsonwebtoken::encode(
            &Header::new(JwtAlg::HS512),
            &Claims {
                aud: AUDIENCE.into(),
                ..claims
            },
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .expect("encode");
        assert!(keys.decode(&hs512).is_none());
    }
}
