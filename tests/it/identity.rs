//! Identity hardening: forged and replayed tokens, client addresses behind proxies, the
//! per-account login throttle, the Redis limiter's outage behaviour, super-admin seeding and
//! secret key rotation.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_models::accounts;
use spot_models::crypto::{CryptoError, Keyring};

use crate::both;
use crate::support::{assert_error, test_config, Backend, TestApp, PASSWORD};

/// The JWT secret of `test_config()`.
const JWT_SECRET: [u8; 32] = [7u8; 32];
/// The credential key of `test_config()`.
const KEY_1: [u8; 32] = [9u8; 32];

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A JWT with any header, HMAC-SHA256-signed with `key` whatever the header claims.
fn forge(header: Value, claims: &Value, key: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = b64(&hmac_sha256(key, signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("b64");
    serde_json::from_slice(&bytes).expect("json")
}

async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    app.json(
        Method::POST,
        "/api/auth/token",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

async fn refresh(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.json(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

async fn me(app: &TestApp, access: &str) -> StatusCode {
    app.json(Method::GET, "/api/auth/me", Some(access), None)
        .await
        .0
}

async fn jwt_negatives_are_all_401(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Forgery").await;
    let valid = claims_of(&s.access);
    let now = chrono::Utc::now().timestamp();
    let with = |k: &str, v: Value| {
        let mut c = valid.clone();
        c[k] = v;
        c
    };
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    // Control: the forging itself is sound (the server's own key and claims).
    assert_eq!(
        me(&app, &forge(hs256.clone(), &valid, &JWT_SECRET)).await,
        StatusCode::OK,
        "control token must pass"
    );
    let payload = s.access.split('.').nth(1).expect("payload").to_string();
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "alg None, signature kept",
            format!(
                "{}.{payload}.{}",
                b64(br#"{"alg":"None","typ":"JWT"}"#),
                s.access.split('.').nth(2).expect("sig")
            ),
        ),
        (
            "HS/RS confusion: RS256 header, HMAC signature",
            forge(json!({"alg": "RS256", "typ": "JWT"}), &valid, &JWT_SECRET),
        ),
        (
            "RS256 header, HMAC keyed with a would-be public key",
            forge(
                json!({"alg": "RS256", "typ": "JWT"}),
                &valid,
                b"-----BEGIN PUBLIC KEY-----MIIBIjAN",
            ),
        ),
        (
            "HS512 header",
            forge(json!({"alg": "HS512", "typ": "JWT"}), &valid, &JWT_SECRET),
        ),
        (
            "wrong key",
            forge(hs256.clone(), &valid, b"another-secret-another-secret-xx"),
        ),
        (
            "wrong audience",
            forge(
                hs256.clone(),
                &with("aud", json!("someone-else")),
                &JWT_SECRET,
            ),
        ),
        (
            "wrong issuer",
            forge(
                hs256.clone(),
                &with("iss", json!("evil-issuer")),
                &JWT_SECRET,
            ),
        ),
        (
            "expired",
            forge(hs256.clone(), &with("exp", json!(now - 60)), &JWT_SECRET),
        ),
        (
            "unknown session",
            forge(
                hs256.clone(),
                &with("sid", json!(uuid::Uuid::new_v4().to_string())),
                &JWT_SECRET,
            ),
        ),
        ("not a JWT", "garbage".to_string()),
    ];
    for (name, token) in &cases {
        let (st, body) = app
            .json(Method::GET, "/api/auth/me", Some(token), None)
            .await;
        assert_eq!(
            st,
            StatusCode::UNAUTHORIZED,
            "{name} must answer 401: {body}"
        );
    }

    // Revoked session: logout, then the access token is dead.
    let (st, t) = login(&app, &s.email, PASSWORD).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let access = t["access_token"].as_str().expect("access").to_string();
    assert_eq!(me(&app, &access).await, StatusCode::OK);
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/logout",
            Some(&access),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &access).await, StatusCode::UNAUTHORIZED, "revoked");

    // Rotated-and-replayed refresh token: a thief copied R1, the user rotated it to R2.
    let (st, t) = login(&app, &s.email, PASSWORD).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let a1 = t["access_token"].as_str().expect("access").to_string();
    let r1 = t["refresh_token"].as_str().expect("refresh").to_string();
    let (st, t2) = refresh(&app, &r1).await;
    assert_eq!(st, StatusCode::OK, "{t2}");
    let a2 = t2["access_token"].as_str().expect("access").to_string();
    let r2 = t2["refresh_token"].as_str().expect("refresh").to_string();
    assert_eq!(me(&app, &a2).await, StatusCode::OK);
    let (st, e) = refresh(&app, &r1).await;
    assert_error(st, &e, StatusCode::UNAUTHORIZED);
    // Every holder of that session is out: the other holder's refresh token and both
    // access tokens.
    let (st, e) = refresh(&app, &r2).await;
    assert_error(st, &e, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &a2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &a1).await, StatusCode::UNAUTHORIZED);
    // Other sessions of the user are not part of that family.
    assert_eq!(me(&app, &s.access).await, StatusCode::OK);
    let sid = claims_of(&a1)["sid"].as_str().expect("sid").to_string();
    let (reason,): (Option<String>,) =
        sqlx::query_as("SELECT revoked_reason FROM sessions WHERE id = $1")
            .bind(&sid)
            .fetch_one(&app.db.pool)
            .await
            .expect("session");
    assert_eq!(reason.as_deref(), Some("refresh_reuse"));
    let logs = app
        .json(
            Method::GET,
            "/api/audit-logs?action=auth.refresh_reuse",
            Some(&s.access),
            None,
        )
        .await
        .1;
    assert_eq!(
        logs["items"][0]["resource_id"],
        sid.as_str(),
        "the reuse is audited: {logs}"
    );
    // A token nobody ever issued is just invalid.
    let (st, _) = refresh(&app, "never-issued-token").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}
both!(jwt_negatives_are_all_401);

async fn login_via(app: &TestApp, xff: &str, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/auth/token"))
        .header("x-forwarded-for", xff)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request")
}

fn random_v4() -> String {
    let b = uuid::Uuid::new_v4();
    let b = b.as_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

async fn forwarded_for_spoofing_and_ipv6_prefixes(b: Backend) {
    let mut cfg = test_config();
    cfg.trust_forwarded_for = true;
    cfg.trusted_proxy_hops = 1;
    cfg.login_per_minute = 3;
    let app = TestApp::start_with(b, cfg).await;
    let s = app.signup("Proxied").await;
    // Behind one appending proxy the client controls everything left of the last entry:
    // varying it must not buy more attempts.
    for i in 0..3 {
        let xff = format!("{}, {}, 203.0.113.9", random_v4(), random_v4());
        let r = login_via(&app, &xff, &s.email, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK, "attempt {i}");
    }
    let r = login_via(
        &app,
        &format!("{}, 203.0.113.9", random_v4()),
        &s.email,
        PASSWORD,
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "spoofed entries raised the budget"
    );
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    // A separate header line from the client is just more client-controlled entries.
    let r = app
        .http
        .post(app.url("/api/auth/token"))
        .header("x-forwarded-for", random_v4())
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({"email": s.email, "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // The budget is per real client, not global.
    let r = login_via(&app, "203.0.113.9, 198.51.100.4", &s.email, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);

    // IPv6: addresses of one /64 share a budget; the next /64 has its own.
    for addr in [
        "2001:db8:aa:bb::1",
        "2001:db8:aa:bb::2",
        "2001:db8:aa:bb:dead:beef:0:1",
    ] {
        let r = login_via(&app, addr, &s.email, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK, "{addr}");
    }
    let r = login_via(
        &app,
        "2001:db8:aa:bb:ffff:ffff:ffff:ffff",
        &s.email,
        PASSWORD,
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "same /64");
    let r = login_via(&app, "[2001:db8:aa:bc::1]:51000", &s.email, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK, "another /64");
}
both!(forwarded_for_spoofing_and_ipv6_prefixes);

async fn failed_logins_are_throttled_per_account_across_addresses(b: Backend) {
    let mut cfg = test_config();
    cfg.trust_forwarded_for = true;
    cfg.login_failures_per_account = 3;
    let app = TestApp::start_with(b, cfg).await;
    let victim = app.signup("Victim").await;
    let bystander = app.signup("Bystander").await;
    for (i, email) in [
        victim.email.clone(),
        victim.email.to_uppercase(),
        format!("  {}  ", victim.email),
    ]
    .iter()
    .enumerate()
    {
        let r = login_via(&app, &random_v4(), email, "wrong password 1").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    // Even the right password from a fresh address waits now.
    let r = login_via(&app, &random_v4(), &victim.email, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!((1..=900).contains(&retry), "{retry}");
    // Other accounts, from the same addresses, are unaffected; so are live sessions.
    let r = login_via(&app, &random_v4(), &bystander.email, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(me(&app, &victim.access).await, StatusCode::OK);
    // Unknown e-mails are throttled the same way (no hint whether an account exists).
    for _ in 0..3 {
        let r = login_via(&app, &random_v4(), "nobody@example.com", "wrong password 1").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login_via(&app, &random_v4(), "nobody@example.com", "wrong password 1").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}
both!(failed_logins_are_throttled_per_account_across_addresses);

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

/// A TCP proxy to Redis that can be cut, to take Redis away from a running server.
struct RedisProxy {
    url: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RedisProxy {
    async fn start() -> RedisProxy {
        let target = std::env::var("SPOT_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut stopped = stop_rx.clone();
            loop {
                let accepted = tokio::select! {
                    _ = stopped.changed() => break,
                    a = listener.accept() => a,
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
        RedisProxy {
            url: format!("redis://{addr}"),
            stop,
            task,
        }
    }

    /// Closes the listener and every proxied connection.
    async fn cut(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn redis_outage_still_limits(b: Backend) {
    let mut cfg = test_config();
    cfg.login_per_minute = 3;
    cfg.login_failures_per_account = 2;
    let proxy = RedisProxy::start().await;
    let app = TestApp::start_with_redis(b, cfg, &proxy.url).await;
    let s = app.signup("Outage").await;
    proxy.cut().await;
    let t0 = Instant::now();
    for i in 0..3 {
        let (st, body) = login(&app, &s.email, PASSWORD).await;
        assert_eq!(st, StatusCode::OK, "attempt {i}: {body}");
    }
    let (st, body) = login(&app, &s.email, PASSWORD).await;
    assert_eq!(
        st,
        StatusCode::TOO_MANY_REQUESTS,
        "Redis down must not lift the limit: {body}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "Redis outage stalls requests"
    );
}
both!(redis_outage_still_limits);

const ADMIN_PW_1: &str = "platform admin 99";
const ADMIN_PW_2: &str = "rotated admin 2024";

async fn seeding_refuses_strangers_and_applies_a_changed_password(b: Backend) {
    let app = TestApp::start(b).await;
    // Someone signs up first with the e-mail the operator will configure.
    let squatter = app.signup("Squatter").await;
    let err = spot_api::server::seed_super_admin(&app.db, &squatter.email, ADMIN_PW_1)
        .await
        .expect_err("must refuse to promote");
    let msg = err.to_string();
    assert!(
        msg.contains("SPOT_ADMIN_EMAIL") && msg.contains("not the platform admin"),
        "{msg}"
    );
    let me_now = app
        .json(Method::GET, "/api/auth/me", Some(&squatter.access), None)
        .await
        .1;
    assert!(me_now["platform_role"].is_null(), "promoted: {me_now}");
    // The binary stops with one line and a non-zero exit.
    let (code, stderr) = run_binary(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-email",
            &squatter.email,
        ],
        &[
            ("DATABASE_URL", app.db.url.as_str()),
            ("SPOT_ADMIN_PASSWORD", ADMIN_PW_1),
            ("SPOT_JWT_SECRET", &hex::encode(JWT_SECRET)),
            ("SPOT_SECRET_KEY", &hex::encode(KEY_1)),
        ],
    );
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("SPOT_ADMIN_EMAIL"), "{stderr}");

    // The platform admin: created, then its password follows the configuration.
    let admin = format!(
        "root-{}@platform.example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    spot_api::server::seed_super_admin(&app.db, &admin, ADMIN_PW_1)
        .await
        .expect("create");
    let (st, t) = login(&app, &admin, ADMIN_PW_1).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let old_access = t["access_token"].as_str().expect("access").to_string();
    // Same password again: nothing changes.
    spot_api::server::seed_super_admin(&app.db, &admin, ADMIN_PW_1)
        .await
        .expect("unchanged");
    assert_eq!(me(&app, &old_access).await, StatusCode::OK);
    spot_api::server::seed_super_admin(&app.db, &admin, ADMIN_PW_2)
        .await
        .expect("changed");
    assert_eq!(
        login(&app, &admin, ADMIN_PW_1).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (st, t) = login(&app, &admin, ADMIN_PW_2).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(
        me(&app, &old_access).await,
        StatusCode::UNAUTHORIZED,
        "sessions from the old password end"
    );
    let new_access = t["access_token"].as_str().expect("access");
    let who = app
        .json(Method::GET, "/api/auth/me", Some(new_access), None)
        .await
        .1;
    assert_eq!(who["platform_role"], "super_admin");
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'platform.admin_password_changed' AND actor_kind = 'system'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("audit");
    assert_eq!(n, 1);
}
both!(seeding_refuses_strangers_and_applies_a_changed_password);

/// Runs the binary to completion (at most 60 s); returns the exit code and stderr (stdout
/// too with `with_stdout`).
fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    run_binary_inner(args, env, false)
}

fn run_binary_with_stdout(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    run_binary_inner(args, env, true)
}

fn run_binary_inner(args: &[&str], env: &[(&str, &str)], with_stdout: bool) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("spot-id-{}", uuid::Uuid::new_v4().simple()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_spot-optimizer"));
    c.args(args)
        .arg("--data-dir")
        .arg(&dir)
        .env_remove("DATABASE_URL")
        .env_remove("SPOT_SECRET_KEY")
        .env_remove("SPOT_PREVIOUS_SECRET_KEYS")
        .env_remove("SPOT_JWT_SECRET")
        .env_remove("SPOT_ADMIN_EMAIL")
        .env_remove("SPOT_ADMIN_PASSWORD")
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("run binary");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            let _ = std::fs::remove_dir_all(&dir);
            return (
                status.code().unwrap_or(-1),
                format!(
                    "{}{}",
                    if with_stdout {
                        String::from_utf8_lossy(&out.stdout).to_string()
                    } else {
                        String::new()
                    },
                    String::from_utf8_lossy(&out.stderr)
                )
                .trim()
                .to_string(),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the binary did not exit: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn stored_credentials(app: &TestApp, id: &str) -> Option<String> {
    accounts::credentials(&app.db, id).await.expect("row")
}

async fn link_keys(app: &TestApp, access: &str) -> String {
    let (st, acc) = app
        .json(
            Method::POST,
            "/api/accounts/keys",
            Some(access),
            Some(json!({"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "region": "eu-west-1", "name": "Lab"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{acc}");
    acc["id"].as_str().expect("id").to_string()
}

async fn rotate_secrets_reencrypts_and_binds_to_the_account(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Rotation").await;
    let other = app.signup("Other").await;
    let linked = link_keys(&app, &owner.access).await;
    let stored = stored_credentials(&app, &linked).await.expect("stored");
    assert!(stored.starts_with("v2:"), "{stored}");
    let k1 = Keyring::new(&KEY_1, &[]).expect("k1");
    let plain = accounts::open_credentials(&k1, &linked, &stored).expect("opens");
    assert!(String::from_utf8_lossy(&plain).contains("AKIAIOSFODNN7EXAMPLE"));

    // A ciphertext moved to another account's row does not open there.
    let other_acc = accounts::list(&app.db, &other.org_id).await.expect("list")[0]
        .id
        .clone();
    assert_eq!(
        accounts::open_credentials(&k1, &other_acc, &stored),
        Err(CryptoError::Tampered)
    );
    sqlx::query("UPDATE accounts SET credentials_ciphertext = $1 WHERE id = $2")
        .bind(&stored)
        .bind(&other_acc)
        .execute(&app.db.pool)
        .await
        .expect("move");
    let report = accounts::reencrypt_all(&app.db, &k1).await.expect("report");
    assert_eq!(report.current, 1);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].0, other_acc);

    // That row now holds a value written before associated data existed (no binding).
    let legacy = k1
        .encrypt_legacy_v1(br#"{"access_key_id":"AKIALEGACY"}"#)
        .expect("v1");
    sqlx::query("UPDATE accounts SET credentials_ciphertext = $1 WHERE id = $2")
        .bind(&legacy)
        .bind(&other_acc)
        .execute(&app.db.pool)
        .await
        .expect("legacy");

    // New key in front, old key as previous: everything still reads before rotation.
    let key_2 = [42u8; 32];
    let both_keys = Keyring::new(&key_2, &[KEY_1.to_vec()]).expect("k2+k1");
    let only_new = Keyring::new(&key_2, &[]).expect("k2");
    assert!(accounts::open_credentials(&both_keys, &linked, &stored).is_ok());
    assert!(accounts::open_credentials(&both_keys, &other_acc, &legacy).is_ok());
    assert_eq!(
        accounts::open_credentials(&only_new, &linked, &stored),
        Err(CryptoError::UnknownKey)
    );

    // A keyring that opens nothing: the command fails, names the setting, changes nothing.
    let env_with = |current: [u8; 32], previous: Option<[u8; 32]>| {
        let mut v = vec![
            ("DATABASE_URL".to_string(), app.db.url.clone()),
            ("SPOT_SECRET_KEY".to_string(), hex::encode(current)),
        ];
        if let Some(p) = previous {
            v.push(("SPOT_PREVIOUS_SECRET_KEYS".to_string(), hex::encode(p)));
        }
        v
    };
    let run = |env: Vec<(String, String)>| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_binary_with_stdout(&["rotate-secrets"], &env)
    };
    let (code, out) = run(env_with([43u8; 32], None));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("SPOT_PREVIOUS_SECRET_KEYS"), "{out}");
    assert_eq!(
        stored_credentials(&app, &linked).await.as_deref(),
        Some(stored.as_str())
    );

    let (code, out) = run(env_with(key_2, Some(KEY_1)));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("re-encrypted 2 credential(s)"), "{out}");
    let rotated = stored_credentials(&app, &linked).await.expect("stored");
    let upgraded = stored_credentials(&app, &other_acc).await.expect("stored");
    for (id, v) in [(&linked, &rotated), (&other_acc, &upgraded)] {
        assert!(v.starts_with("v2:"), "{v}");
        assert!(only_new.is_current(v));
        assert!(
            accounts::open_credentials(&only_new, id, v).is_ok(),
            "the new key alone opens {id}"
        );
        assert_eq!(
            accounts::open_credentials(&k1, id, v),
            Err(CryptoError::UnknownKey),
            "the old key no longer does"
        );
    }
    assert_eq!(
        accounts::open_credentials(&only_new, &linked, &rotated).expect("opens"),
        plain
    );
    // The upgraded legacy value is now bound to its account too.
    assert_eq!(
        accounts::open_credentials(&only_new, &linked, &upgraded),
        Err(CryptoError::Tampered)
    );
    // Idempotent, and audited each time.
    let (code, out) = run(env_with(key_2, Some(KEY_1)));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("re-encrypted 0 credential(s); 2 already current"),
        "{out}"
    );
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'secrets.rotate' AND actor_kind = 'system'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("audit");
    assert_eq!(n, 3);
}
both!(rotate_secrets_reencrypts_and_binds_to_the_account);
