use reqwest::{Method, StatusCode};
use serde_json::json;
use spot_models::orgs;

use crate::both;
use crate::support::{assert_error, test_config, Backend, TestApp, PASSWORD};

async fn signup_creates_owner_org_and_pending_placeholder(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Acme").await;
    let (st, me) = app
        .json(Method::GET, "/api/auth/me", Some(&s.access), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["role"], "owner");
    assert_eq!(me["route"], "onboarding");
    assert_eq!(me["organization"]["name"], "Acme");
    let accounts = spot_models::accounts::list(&app.db, &s.org_id)
        .await
        .expect("accounts");
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].status, "pending");
    // Skipping the wizard sends the user to the dashboard from then on.
    let (st, _) = app
        .json(
            Method::POST,
            "/api/org/onboarding",
            Some(&s.access),
            Some(json!({"state": "skipped"})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let me = app
        .json(Method::GET, "/api/auth/me", Some(&s.access), None)
        .await
        .1;
    assert_eq!(me["route"], "dashboard");
    assert_eq!(me["onboarding_dismissed"], true);
}
both!(signup_creates_owner_org_and_pending_placeholder);

async fn signup_is_atomic(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("First").await;
    let before: Vec<i64> = count_all(&app).await;
    // The organization row is written before the user; the duplicate e-mail fails the user
    // insert and the whole transaction must roll back.
    let err = orgs::signup(
        &app.db,
        "Second",
        &s.email,
        "$argon2id$v=19$m=19456,t=2,p=1$x$y",
    )
    .await;
    assert!(err.is_err(), "duplicate e-mail must fail");
    assert_eq!(
        count_all(&app).await,
        before,
        "a failed signup left rows behind"
    );

    // Concurrent signups with one e-mail: exactly one wins, no orphans.
    let email = format!("race-{}@example.com", uuid::Uuid::new_v4().simple());
    let mut tasks = Vec::new();
    for i in 0..4 {
        let http = app.http.clone();
        let url = app.url("/api/auth/signup");
        let email = email.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .json(
                    &json!({"org_name": format!("Race {i}"), "email": email, "password": PASSWORD}),
                )
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    let mut created = 0;
    for t in tasks {
        let st = t.await.expect("join").expect("send");
        assert!(
            st == StatusCode::CREATED || st == StatusCode::CONFLICT,
            "unexpected {st}"
        );
        if st == StatusCode::CREATED {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    let after = count_all(&app).await;
    assert_eq!(after[0], before[0] + 1, "organizations");
    assert_eq!(after[1], before[1] + 1, "users");
    assert_eq!(after[2], before[2] + 1, "accounts");
}
both!(signup_is_atomic);

async fn count_all(app: &TestApp) -> Vec<i64> {
    let mut v = Vec::new();
    for t in ["organizations", "users", "accounts", "memberships"] {
        v.push(orgs::count_rows(&app.db, t).await.expect("count"));
    }
    v
}

async fn login_refresh_logout_and_revocation(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Tokens").await;
    let (st, bad) = app
        .json(
            Method::POST,
            "/api/auth/token",
            None,
            Some(json!({"email": s.email, "password": "wrong password 1"})),
        )
        .await;
    assert_error(st, &bad, StatusCode::UNAUTHORIZED);
    // E-mail is normalized at login too.
    let (st, t) = app
        .json(
            Method::POST,
            "/api/auth/token",
            None,
            Some(json!({"email": format!("  {}  ", s.email.to_uppercase()), "password": PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let access = t["access_token"].as_str().expect("access").to_string();
    let refresh = t["refresh_token"].as_str().expect("refresh").to_string();
    assert!(t["expires_in"].as_i64().expect("expires") <= 3600);

    let (st, r) = app
        .json(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let access2 = r["access_token"].as_str().expect("access").to_string();
    let refresh2 = r["refresh_token"].as_str().expect("refresh").to_string();
    assert_eq!(
        app.json(Method::GET, "/api/auth/me", Some(&access2), None)
            .await
            .0,
        StatusCode::OK
    );
    // The used refresh token is consumed: replaying it answers 401 and revokes the session
    // (identity::jwt_negatives_are_all_401 covers the other holders).
    let (st, e) = app
        .json(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_error(st, &e, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.json(Method::GET, "/api/auth/me", Some(&access2), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "replay revoked the session"
    );
    // Every token of that session is dead: the first access token and the rotated refresh.
    assert_eq!(
        app.json(Method::GET, "/api/auth/me", Some(&access), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (st, e) = app
        .json(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh2})),
        )
        .await;
    assert_error(st, &e, StatusCode::UNAUTHORIZED);
    // A fresh session for the logout checks.
    let (st, t) = app
        .json(
            Method::POST,
            "/api/auth/token",
            None,
            Some(json!({"email": s.email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let access = t["access_token"].as_str().expect("access").to_string();
    let (st, r) = app
        .json(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": t["refresh_token"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let access2 = r["access_token"].as_str().expect("access").to_string();
    let refresh2 = r["refresh_token"].as_str().expect("refresh").to_string();

    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/logout",
            Some(&access2),
            Some(json!({"refresh_token": refresh2})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, e) = app
        .json(Method::GET, "/api/auth/me", Some(&access2), None)
        .await;
    assert_error(st, &e, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.json(Method::GET, "/api/auth/me", Some(&access), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "same session, revoked"
    );
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh2})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // The other session (from signup) is unaffected.
    assert_eq!(
        app.json(Method::GET, "/api/auth/me", Some(&s.access), None)
            .await
            .0,
        StatusCode::OK
    );
}
both!(login_refresh_logout_and_revocation);

async fn expired_and_forged_tokens_are_rejected(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Expiry").await;
    let claims = |exp_offset: i64, aud: &str| {
        let now = chrono::Utc::now().timestamp();
        let payload = json!({"iss": "spot-optimizer", "aud": aud, "sub": s.user_id, "org": s.org_id, "sid": sid_of(&s.access), "jti": "x", "iat": now - 100, "exp": now + exp_offset});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &payload,
            &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32]),
        )
        .expect("encode")
    };
    assert_eq!(
        app.json(
            Method::GET,
            "/api/auth/me",
            Some(&claims(60, "spot-optimizer-api")),
            None
        )
        .await
        .0,
        StatusCode::OK,
        "control"
    );
    assert_eq!(
        app.json(
            Method::GET,
            "/api/auth/me",
            Some(&claims(-60, "spot-optimizer-api")),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED,
        "expired"
    );
    assert_eq!(
        app.json(
            Method::GET,
            "/api/auth/me",
            Some(&claims(60, "other")),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED,
        "audience"
    );
    let none_alg = format!(
        "{}.{}.",
        b64("{\"alg\":\"none\",\"typ\":\"JWT\"}"),
        s.access.split('.').nth(1).unwrap_or("")
    );
    assert_eq!(
        app.json(Method::GET, "/api/auth/me", Some(&none_alg), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "alg none"
    );
}
both!(expired_and_forged_tokens_are_rejected);

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn sid_of(jwt: &str) -> String {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("b64");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    v["sid"].as_str().expect("sid").to_string()
}

async fn login_and_signup_are_rate_limited(b: Backend) {
    let mut cfg = test_config();
    cfg.login_per_minute = 3;
    cfg.signup_per_hour = 2;
    let app = TestApp::start_with(b, cfg).await;
    rate_limits_hold(&app).await;
}
both!(login_and_signup_are_rate_limited);

/// The same limits shared through Redis (what replicas use in production).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_shared_through_redis() {
    let mut cfg = test_config();
    cfg.login_per_minute = 3;
    cfg.signup_per_hour = 2;
    let url =
        std::env::var("SPOT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let app = TestApp::start_with_redis(Backend::Sqlite, cfg, &url).await;
    rate_limits_hold(&app).await;
}

async fn rate_limits_hold(app: &TestApp) {
    let s = app.signup("Limited").await;
    let _ = app.signup("Limited Two").await;
    let r = app
        .call(
            Method::POST,
            "/api/auth/signup",
            None,
            Some(json!({"org_name": "Three", "email": "three@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers().get("retry-after").is_some(),
        "Retry-After missing"
    );
    for _ in 0..3 {
        let (st, _) = app
            .json(
                Method::POST,
                "/api/auth/token",
                None,
                Some(json!({"email": s.email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
    }
    let r = app
        .call(
            Method::POST,
            "/api/auth/token",
            None,
            Some(json!({"email": s.email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!((1..=60).contains(&retry));
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
}

async fn duplicate_email_is_refused_case_insensitively(b: Backend) {
    let app = TestApp::start(b).await;
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/signup",
            None,
            Some(json!({"org_name": "A", "email": "  MiXed@Example.com ", "password": PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, e) = app
        .json(
            Method::POST,
            "/api/auth/signup",
            None,
            Some(json!({"org_name": "B", "email": "mixed@example.com", "password": PASSWORD})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::CONFLICT);
    assert_eq!(e["error"]["field"], "email");
}
both!(duplicate_email_is_refused_case_insensitively);

async fn super_admin_is_seeded_from_configuration(b: Backend) {
    let app = TestApp::start(b).await;
    spot_api::server::seed_super_admin(&app.db, "root@platform.example.com", "platform admin 99")
        .await
        .expect("seed");
    assert!(
        spot_api::server::seed_super_admin(&app.db, "root@platform.example.com", "weak")
            .await
            .is_err(),
        "policy applies"
    );
    let (st, t) = app
        .json(
            Method::POST,
            "/api/auth/token",
            None,
            Some(json!({"email": "root@platform.example.com", "password": "platform admin 99"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let admin = t["access_token"].as_str().expect("token");
    let me = app
        .json(Method::GET, "/api/auth/me", Some(admin), None)
        .await
        .1;
    assert_eq!(me["platform_role"], "super_admin");
    let customer = app.signup("Customer").await;
    let (st, orgs) = app
        .json(Method::GET, "/api/admin/organizations", Some(admin), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(orgs["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|o| o["id"] == customer.org_id.as_str()));
    let (st, _) = app
        .json(
            Method::GET,
            "/api/admin/organizations",
            Some(&customer.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Impersonation acts in the customer's org but the audit keeps the admin's identity.
    let (st, imp) = app
        .json(
            Method::POST,
            "/api/admin/impersonate",
            Some(admin),
            Some(json!({"organization_id": customer.org_id})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{imp}");
    let as_customer = imp["access_token"].as_str().expect("token");
    let me = app
        .json(Method::GET, "/api/auth/me", Some(as_customer), None)
        .await
        .1;
    assert_eq!(me["organization"]["id"], customer.org_id.as_str());
    assert!(me["impersonated_by"].is_string());
    let (st, _) = app
        .json(
            Method::PUT,
            "/api/org/settings",
            Some(as_customer),
            Some(json!({"audit_retention_days": 90})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let logs = app
        .json(
            Method::GET,
            "/api/audit-logs?action=org.settings",
            Some(&customer.access),
            None,
        )
        .await
        .1;
    let entry = &logs["items"][0];
    assert_eq!(entry["actor"]["kind"], "impersonation");
    assert_eq!(entry["actor"]["admin_id"], me["impersonated_by"]);
}
both!(super_admin_is_seeded_from_configuration);

async fn invites_create_members_with_the_invited_role(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Team").await;
    let admin = app.add_member(&owner, "admin").await;
    let me = app
        .json(Method::GET, "/api/auth/me", Some(&admin.access), None)
        .await
        .1;
    assert_eq!(me["role"], "admin");
    assert_eq!(me["organization"]["id"], owner.org_id.as_str());
    let members = app
        .json(Method::GET, "/api/org/members", Some(&owner.access), None)
        .await
        .1;
    assert_eq!(members["items"].as_array().expect("items").len(), 2);
    // An admin cannot promote to owner; the owner can; the last owner cannot be demoted.
    let (st, _) = app
        .json(
            Method::PATCH,
            &format!("/api/org/members/{}", admin.user_id),
            Some(&admin.access),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, e) = app
        .json(
            Method::PATCH,
            &format!("/api/org/members/{}", owner.user_id),
            Some(&owner.access),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_error(st, &e, StatusCode::CONFLICT);
    // An invite token is single-use.
    let (_, inv) = app
        .json(
            Method::POST,
            "/api/org/invites",
            Some(&owner.access),
            Some(json!({"email": "once@example.com", "role": "viewer"})),
        )
        .await;
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/invites/accept",
            None,
            Some(json!({"token": inv["token"], "password": PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/invites/accept",
            None,
            Some(json!({"token": inv["token"], "password": PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    // Removing a member ends their sessions.
    let (st, _) = app
        .json(
            Method::DELETE,
            &format!("/api/org/members/{}", admin.user_id),
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        app.json(Method::GET, "/api/auth/me", Some(&admin.access), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}
both!(invites_create_members_with_the_invited_role);
