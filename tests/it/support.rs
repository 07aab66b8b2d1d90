//! Test harness: an in-process server on a free port over a fresh database — a temporary
//! SQLite file, or a fresh schema in the PostgreSQL at 127.0.0.1:5432 (database `test`).

use std::time::Duration;

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use spot_api::{server, AppState, ServerConfig};
use spot_models::Db;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body against both databases.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    };
}

pub fn pg_base_url() -> String {
    std::env::var("SPOT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database URL for a fresh, empty database of the given backend.
pub async fn fresh_database_url(backend: Backend) -> String {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("spot-it-{tag}"));
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!("sqlite://{}/spot.db", dir.display())
        }
        Backend::Postgres => {
            let base = pg_base_url();
            let admin = Db::connect(&base).await.unwrap_or_else(|e| {
                panic!("PostgreSQL is required by the test suite and is unreachable at {base}: {e}. Start PostgreSQL (trust auth, database `test`) or set SPOT_TEST_PG_URL.")
            });
            let schema = format!("it_{tag}");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&admin.pool)
                .await
                .expect("create schema");
            admin.pool.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}options=-csearch_path%3D{schema}")
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub http: Client,
    pub db: Db,
    pub state: AppState,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub fn test_config() -> ServerConfig {
    let mut cfg = ServerConfig::with_secrets(vec![7u8; 32], vec![9u8; 32]);
    cfg.login_per_minute = 1000;
    cfg.signup_per_hour = 1000;
    // Tests share one PostgreSQL apalis schema: each app gets its own queue.
    cfg.job_queue = format!("it-{}", uuid::Uuid::new_v4());
    // The server runs in-process; uploads are validated by the real binary.
    cfg.model_validator = Some(env!("CARGO_BIN_EXE_spot-optimizer").into());
    cfg
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, test_config()).await
    }

    pub async fn start_with(backend: Backend, cfg: ServerConfig) -> TestApp {
        Self::start_inner(backend, cfg, None).await
    }

    /// Rate limits in Redis. Each run presents a random client address (trusted
    /// `X-Forwarded-For`), so runs never share a budget in the shared Redis.
    pub async fn start_with_redis(backend: Backend, cfg: ServerConfig, redis_url: &str) -> TestApp {
        Self::start_inner(backend, cfg, Some(redis_url)).await
    }

    /// A server whose accounts live behind `connector` (e.g. AWS pointed at moto).
    pub async fn start_with_connector(
        backend: Backend,
        connector: std::sync::Arc<dyn spot_actors::connect::CloudConnector>,
    ) -> TestApp {
        Self::start_inner_with(backend, test_config(), None, Some(connector)).await
    }

    pub async fn start_with_connector_config(
        backend: Backend,
        connector: std::sync::Arc<dyn spot_actors::connect::CloudConnector>,
        cfg: ServerConfig,
    ) -> TestApp {
        Self::start_inner_with(backend, cfg, None, Some(connector)).await
    }

    async fn start_inner(backend: Backend, cfg: ServerConfig, redis_url: Option<&str>) -> TestApp {
        Self::start_inner_with(backend, cfg, redis_url, None).await
    }

    async fn start_inner_with(
        backend: Backend,
        mut cfg: ServerConfig,
        redis_url: Option<&str>,
        connector: Option<std::sync::Arc<dyn spot_actors::connect::CloudConnector>>,
    ) -> TestApp {
        let url = fresh_database_url(backend).await;
        let db = Db::connect(&url).await.expect("connect");
        db.migrate().await.expect("migrate");
        if redis_url.is_some() {
            // Every run is a different client as far as the shared budget is concerned.
            cfg.trust_forwarded_for = true;
        }
        let state = AppState::build(
            db.clone(),
            cfg,
            spot_api::state::StateOptions {
                connector,
                redis_url: redis_url.map(str::to_string),
            },
        )
        .await
        .unwrap_or_else(|e| {
            panic!("state: {e} (Redis at 127.0.0.1:6379 is required by the Redis tests)")
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = server::start(state.clone(), "127.0.0.1:0", async {
            let _ = rx.await;
        })
        .await
        .expect("start server");
        let mut headers = reqwest::header::HeaderMap::new();
        if redis_url.is_some() {
            let fake_ip = format!("10.{}.{}.{}", rand_octet(), rand_octet(), rand_octet());
            headers.insert("x-forwarded-for", fake_ip.parse().expect("header"));
        }
        let http = Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(headers)
            .build()
            .expect("client");
        TestApp {
            base: format!("http://{}", running.addr),
            http,
            db,
            state,
            _shutdown: tx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().await.expect("request")
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let r = self.call(method, path, token, body).await;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    /// Signs up a new organization; returns (access, refresh, email).
    pub async fn signup(&self, org: &str) -> Session {
        let email = format!(
            "{}-{}@example.com",
            org.to_lowercase().replace(' ', "-"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let (s, v) = self
            .json(
                Method::POST,
                "/api/auth/signup",
                None,
                Some(json!({"org_name": org, "email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "signup failed: {v}");
        let me = self
            .json(
                Method::GET,
                "/api/auth/me",
                v["access_token"].as_str(),
                None,
            )
            .await
            .1;
        Session {
            access: v["access_token"].as_str().expect("access").to_string(),
            email,
            org_id: me["organization"]["id"]
                .as_str()
                .expect("org id")
                .to_string(),
            user_id: me["user"]["id"].as_str().expect("user id").to_string(),
        }
    }

    /// Invites `role` into the session's org and accepts the invite; returns the new member.
    pub async fn add_member(&self, owner: &Session, role: &str) -> Session {
        let email = format!(
            "{role}-{}@example.com",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let (s, inv) = self
            .json(
                Method::POST,
                "/api/org/invites",
                Some(&owner.access),
                Some(json!({"email": email, "role": role})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "invite failed: {inv}");
        let (s, t) = self
            .json(
                Method::POST,
                "/api/auth/invites/accept",
                None,
                Some(json!({"token": inv["token"], "password": PASSWORD})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "accept failed: {t}");
        let me = self
            .json(
                Method::GET,
                "/api/auth/me",
                t["access_token"].as_str(),
                None,
            )
            .await
            .1;
        Session {
            access: t["access_token"].as_str().expect("access").to_string(),
            email,
            org_id: me["organization"]["id"].as_str().expect("org").to_string(),
            user_id: me["user"]["id"].as_str().expect("user").to_string(),
        }
    }
}

fn rand_octet() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

pub const PASSWORD: &str = "correct horse 42";

#[derive(Debug, Clone)]
pub struct Session {
    pub access: String,
    pub email: String,
    pub org_id: String,
    pub user_id: String,
}

/// Asserts the JSON error shape and returns the body.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) -> Value {
    assert_eq!(status, expected, "unexpected status, body: {body}");
    assert!(
        body["error"]["code"].is_string(),
        "error body lacks code: {body}"
    );
    assert!(
        body["error"]["message"].is_string(),
        "error body lacks message: {body}"
    );
    body.clone()
}
