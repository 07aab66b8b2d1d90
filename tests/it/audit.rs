use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::Digest;

use crate::both;
use crate::support::{Backend, Session, TestApp};

async fn denied_and_successful_mutations_are_captured(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Audited").await;
    let viewer = app.add_member(&owner, "viewer").await;
    let (st, _) = app
        .json(
            Method::POST,
            "/api/org/invites",
            Some(&viewer.access),
            Some(json!({"email": "n@example.com", "role": "admin"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, page) = app
        .json(
            Method::GET,
            "/api/audit-logs?outcome=denied",
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let denied = &page["items"][0];
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["actor"]["user_id"], viewer.user_id.as_str());
    assert_eq!(denied["resource_type"], "org.invites");
    assert!(denied["source_ip"].is_string() && denied["request_id"].is_string());
    // A successful mutation carries its diff.
    let (_, inv) = app
        .json(
            Method::POST,
            "/api/org/invites",
            Some(&owner.access),
            Some(json!({"email": "diff@example.com", "role": "viewer"})),
        )
        .await;
    let page = app
        .json(
            Method::GET,
            "/api/audit-logs?action=invite.create&outcome=success",
            Some(&owner.access),
            None,
        )
        .await
        .1;
    let e = &page["items"][0];
    assert_eq!(e["resource_id"], inv["id"]);
    assert_eq!(e["diff"]["after"]["email"], "diff@example.com");
    let one = app
        .json(
            Method::GET,
            &format!("/api/audit-logs/{}", e["id"].as_str().expect("id")),
            Some(&owner.access),
            None,
        )
        .await
        .1;
    assert_eq!(one["diff"]["after"]["role"], "viewer");
    // The signup itself is in the organization's chain, and no secret appears anywhere.
    let all = app
        .json(
            Method::GET,
            "/api/audit-logs?limit=200",
            Some(&owner.access),
            None,
        )
        .await
        .1;
    assert!(all["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|e| e["action"] == "auth.signup"));
    assert!(
        !all.to_string().contains("correct horse"),
        "password leaked into the audit log"
    );
    // Audit rows cannot be changed through the API.
    let id = e["id"].as_str().expect("id");
    for m in [Method::PUT, Method::PATCH, Method::DELETE] {
        let st = app
            .call(
                m,
                &format!("/api/audit-logs/{id}"),
                Some(&owner.access),
                Some(json!({})),
            )
            .await
            .status();
        assert!(
            st == StatusCode::METHOD_NOT_ALLOWED || st == StatusCode::NOT_FOUND,
            "{st}"
        );
    }
}
both!(denied_and_successful_mutations_are_captured);

async fn cursor_pagination_and_filters(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Pages").await;
    for i in 0..7 {
        app.json(
            Method::POST,
            "/api/org/invites",
            Some(&owner.access),
            Some(json!({"email": format!("p{i}@example.com"), "role": "viewer"})),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/audit-logs?action=invite.create&limit=3&cursor={c}"),
            None => "/api/audit-logs?action=invite.create&limit=3".to_string(),
        };
        let page = app.json(Method::GET, &q, Some(&owner.access), None).await.1;
        for e in page["items"].as_array().expect("items") {
            seen.push(e["seq"].as_i64().expect("seq"));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {seen:?}"
    );
    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let q = format!("/api/audit-logs?from={}", future.replace('+', "%2B"));
    let page = app.json(Method::GET, &q, Some(&owner.access), None).await.1;
    assert_eq!(page["items"].as_array().expect("items").len(), 0);
    let page = app
        .json(
            Method::GET,
            &format!("/api/audit-logs?actor={}", owner.email),
            Some(&owner.access),
            None,
        )
        .await
        .1;
    assert!(page["items"].as_array().expect("items").len() >= 7);
}
both!(cursor_pagination_and_filters);

async fn verify_detects_a_row_altered_in_the_database(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Chain").await;
    for i in 0..4 {
        app.json(
            Method::POST,
            "/api/org/invites",
            Some(&owner.access),
            Some(json!({"email": format!("c{i}@example.com"), "role": "viewer"})),
        )
        .await;
    }
    let (st, v) = app
        .json(
            Method::GET,
            "/api/audit-logs/verify",
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["checked"].as_i64().expect("checked") >= 5);
    let page = app
        .json(
            Method::GET,
            "/api/audit-logs?action=invite.create&limit=10",
            Some(&owner.access),
            None,
        )
        .await
        .1;
    let victim = page["items"][2]["id"].as_str().expect("id").to_string();
    let forged = "{\"before\":null,\"after\":{\"email\":\"mallory@example.com\"}}";
    // The database itself refuses the change...
    let refused = sqlx::query("UPDATE audit_logs SET diff = $1 WHERE id = $2")
        .bind(forged)
        .bind(&victim)
        .execute(&app.db.pool)
        .await;
    assert!(refused.is_err(), "UPDATE on audit_logs was allowed");
    // ...and an intruder who removes the guard is still caught by verify.
    drop_update_guard(&app, b).await;
    sqlx::query("UPDATE audit_logs SET diff = $1 WHERE id = $2")
        .bind(forged)
        .bind(&victim)
        .execute(&app.db.pool)
        .await
        .expect("tamper");
    let v = app
        .json(
            Method::GET,
            "/api/audit-logs/verify",
            Some(&owner.access),
            None,
        )
        .await
        .1;
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken"]["id"], victim.as_str());
}
both!(verify_detects_a_row_altered_in_the_database);

async fn export_checksum_matches_the_bytes(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Export").await;
    app.json(
        Method::POST,
        "/api/org/invites",
        Some(&owner.access),
        Some(json!({"email": "e@example.com", "role": "viewer"})),
    )
    .await;
    for fmt in ["csv", "json"] {
        let r = app
            .call(
                Method::GET,
                &format!("/api/audit-logs/export?format={fmt}"),
                Some(&owner.access),
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let sum = r
            .headers()
            .get("x-content-sha256")
            .and_then(|v| v.to_str().ok())
            .expect("checksum header")
            .to_string();
        assert!(r.headers().get("content-disposition").is_some());
        let bytes = r.bytes().await.expect("body");
        assert_eq!(sum, hex::encode(sha2::Sha256::digest(&bytes)), "{fmt}");
        let text = String::from_utf8(bytes.to_vec()).expect("utf8");
        assert!(
            text.contains("invite.create"),
            "{fmt} export lacks the invite"
        );
        if fmt == "json" {
            let v: serde_json::Value = serde_json::from_str(&text).expect("json export parses");
            assert!(v.as_array().expect("array").len() >= 2);
        } else {
            assert!(text.starts_with("id,seq,timestamp"));
        }
    }
    let r = app
        .call(
            Method::GET,
            "/api/audit-logs/export?format=xml",
            Some(&owner.access),
            None,
        )
        .await;
    assert!(r.status().is_client_error());
}
both!(export_checksum_matches_the_bytes);

async fn retention_purge_removes_old_rows_and_is_audited(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Retention").await;
    for i in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        app.json(
            Method::POST,
            "/api/org/invites",
            Some(&owner.access),
            Some(json!({"email": format!("r{i}@example.com"), "role": "viewer"})),
        )
        .await;
    }
    let (st, _) = app
        .json(
            Method::PUT,
            "/api/org/settings",
            Some(&owner.access),
            Some(json!({"audit_retention_days": 30})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, e) = app
        .json(
            Method::PUT,
            "/api/org/settings",
            Some(&owner.access),
            Some(json!({"audit_retention_days": 5})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "audit_retention_days");
    // Thirty days after record 3 was written, records 1 and 2 are past retention.
    let (ts3,): (i64,) =
        sqlx::query_as("SELECT ts FROM audit_logs WHERE chain_key = $1 AND seq = 3")
            .bind(&owner.org_id)
            .fetch_one(&app.db.pool)
            .await
            .expect("record 3");
    let later = ts3 + 30 * 24 * 3600 * 1000;
    let purged = spot_api::retention::purge_once_at(&app.db, later)
        .await
        .expect("purge");
    assert_eq!(purged, 2);
    let page = app
        .json(
            Method::GET,
            "/api/audit-logs?action=audit.retention_purge",
            Some(&owner.access),
            None,
        )
        .await
        .1;
    let e = &page["items"][0];
    assert_eq!(e["actor"]["kind"], "system");
    assert_eq!(e["actor"]["component"], "CORE-AUDIT-RETENTION");
    assert_eq!(e["diff"]["after"]["purged"], 2);
    assert_eq!(e["diff"]["after"]["watermark_seq"], 2);
    let v = verify(&app, &owner).await;
    assert_eq!(v["ok"], true, "chain after purge: {v}");
    // A second pass finds nothing more; the chain still verifies and keeps growing.
    assert_eq!(
        spot_api::retention::purge_once_at(&app.db, later)
            .await
            .expect("purge"),
        0
    );
    app.json(
        Method::POST,
        "/api/org/invites",
        Some(&owner.access),
        Some(json!({"email": "after@example.com", "role": "viewer"})),
    )
    .await;
    let v = verify(&app, &owner).await;
    assert_eq!(v["ok"], true, "chain after purge and append: {v}");
    // Deleting the purged range's successor now (not through the purge) is caught.
    intruder_delete(&app, b, &owner.org_id, "seq = 3").await;
    let v = verify(&app, &owner).await;
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken"]["seq"], 3, "{v}");
}
both!(retention_purge_removes_old_rows_and_is_audited);

async fn verify(app: &TestApp, s: &Session) -> serde_json::Value {
    let (st, v) = app
        .json(Method::GET, "/api/audit-logs/verify", Some(&s.access), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

/// What an intruder with database access does to get past the UPDATE guard.
async fn drop_update_guard(app: &TestApp, b: Backend) {
    let sql = match b {
        Backend::Sqlite => "DROP TRIGGER audit_logs_no_update",
        Backend::Postgres => "ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only",
    };
    sqlx::query(sql)
        .execute(&app.db.pool)
        .await
        .expect("drop guard");
}

/// Deletes audit rows the way an intruder would: flipping the purge switch, but without the
/// purge's watermark (which only the server can authenticate).
async fn intruder_delete(app: &TestApp, b: Backend, chain: &str, cond: &str) {
    let mut tx = app.db.pool.begin().await.expect("tx");
    let (on, off) = match b {
        Backend::Sqlite => (
            "UPDATE audit_control SET purging = 1",
            "UPDATE audit_control SET purging = 0",
        ),
        Backend::Postgres => (
            "SELECT set_config('spot.audit_purge', 'on', true)",
            "SELECT set_config('spot.audit_purge', 'off', true)",
        ),
    };
    sqlx::query(on).execute(&mut *tx).await.expect("switch on");
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM audit_logs WHERE chain_key = $1 AND {cond}"
    )))
    .bind(chain)
    .execute(&mut *tx)
    .await
    .expect("delete")
    .rows_affected();
    assert!(n > 0, "nothing deleted for {cond}");
    sqlx::query(off)
        .execute(&mut *tx)
        .await
        .expect("switch off");
    tx.commit().await.expect("commit");
}

async fn audited_org(app: &TestApp, name: &str, invites: usize) -> Session {
    let owner = app.signup(name).await;
    for i in 0..invites {
        let (st, _) = app
            .json(
                Method::POST,
                "/api/org/invites",
                Some(&owner.access),
                Some(json!({"email": format!("t{i}@example.com"), "role": "viewer"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let v = verify(app, &owner).await;
    assert_eq!(v["ok"], true, "{v}");
    owner
}

async fn last_seq(app: &TestApp, chain: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT seq FROM audit_chain_heads WHERE chain_key = $1")
        .bind(chain)
        .fetch_one(&app.db.pool)
        .await
        .expect("head");
    n
}

async fn an_emptied_or_truncated_chain_fails_verify(b: Backend) {
    let app = TestApp::start(b).await;
    // Every record gone.
    let emptied = audited_org(&app, "Emptied", 3).await;
    intruder_delete(&app, b, &emptied.org_id, "seq > 0").await;
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_logs WHERE chain_key = $1")
        .bind(&emptied.org_id)
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(n, 0);
    let v = verify(&app, &emptied).await;
    assert_eq!(v["ok"], false, "an emptied chain verified: {v}");
    assert_eq!(v["first_broken"]["seq"], 1, "{v}");
    assert!(
        v["first_broken"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("emptied")),
        "{v}"
    );

    // The oldest records gone.
    let prefix = audited_org(&app, "Prefix", 4).await;
    intruder_delete(&app, b, &prefix.org_id, "seq <= 2").await;
    let v = verify(&app, &prefix).await;
    assert_eq!(v["ok"], false, "a chain without its prefix verified: {v}");
    assert_eq!(v["first_broken"]["seq"], 1, "{v}");
    assert!(
        v["first_broken"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("deleted")),
        "{v}"
    );

    // The newest records gone.
    let tail = audited_org(&app, "Tail", 4).await;
    let head = last_seq(&app, &tail.org_id).await;
    intruder_delete(&app, b, &tail.org_id, &format!("seq >= {}", head - 1)).await;
    let v = verify(&app, &tail).await;
    assert_eq!(v["ok"], false, "a truncated chain verified: {v}");
    assert_eq!(v["first_broken"]["seq"], head - 1, "{v}");
    assert!(
        v["first_broken"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("truncated")),
        "{v}"
    );

    // A record in the middle gone.
    let middle = audited_org(&app, "Middle", 4).await;
    intruder_delete(&app, b, &middle.org_id, "seq = 3").await;
    let v = verify(&app, &middle).await;
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken"]["seq"], 3, "{v}");

    // The other organizations' chains are untouched.
    let fine = audited_org(&app, "Fine", 1).await;
    assert_eq!(verify(&app, &fine).await["ok"], true);
}
both!(an_emptied_or_truncated_chain_fails_verify);

async fn the_database_refuses_to_change_audit_rows(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = audited_org(&app, "Guarded", 2).await;
    let before: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_logs")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    let mut statements = vec![
        "UPDATE audit_logs SET outcome = 'success' WHERE chain_key = $1".to_string(),
        "UPDATE audit_logs SET diff = '{}' WHERE chain_key = $1 AND seq = 1".to_string(),
        "DELETE FROM audit_logs WHERE chain_key = $1 AND seq = 1".to_string(),
        "DELETE FROM audit_logs WHERE chain_key = $1".to_string(),
        "DELETE FROM audit_chain_heads WHERE chain_key = $1".to_string(),
        "UPDATE audit_chain_heads SET seq = 1 WHERE chain_key = $1".to_string(),
        "UPDATE audit_chain_heads SET purged_seq = 2 WHERE chain_key = $1".to_string(),
    ];
    if b == Backend::Postgres {
        statements.push("TRUNCATE audit_logs".into());
    }
    for sql in &statements {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
        if sql.contains("$1") {
            q = q.bind(&owner.org_id);
        }
        let r = q.execute(&app.db.pool).await;
        assert!(r.is_err(), "the database allowed: {sql}");
    }
    let after: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_logs")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(before, after);
    assert_eq!(verify(&app, &owner).await["ok"], true);
}
both!(the_database_refuses_to_change_audit_rows);

async fn audit_rows(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM audit_logs), (SELECT COUNT(*) FROM audit_chain_heads)",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("count")
}

async fn anonymous_requests_add_nothing_to_any_chain(b: Backend) {
    use futures_util::StreamExt;
    let app = TestApp::start(b).await;
    assert_eq!(audit_rows(&app).await, (0, 0));
    let statuses: Vec<StatusCode> = futures_util::stream::iter(0..1000)
        .map(|i| {
            let app = &app;
            async move {
                let path = match i % 4 {
                    0 => format!("/api/nope-{i}"),
                    1 => format!("/api/accounts/{}/nothing", uuid::Uuid::new_v4()),
                    2 => "/api/audit-logs".to_string(),
                    _ => format!("/api/v2/{i}/x"),
                };
                let mut rb = app.http.post(app.url(&path)).json(&json!({"i": i}));
                if i % 5 == 0 {
                    rb = rb.bearer_auth("not-a-token");
                }
                rb.send().await.expect("request").status()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| s.is_client_error()), "{statuses:?}");
    // Other anonymous failures: a bad refresh token, an invalid signup, a bad invite token.
    for (path, body) in [
        ("/api/auth/refresh", json!({"refresh_token": "nope"})),
        (
            "/api/auth/signup",
            json!({"org_name": "", "email": "x@example.com", "password": "correct horse 42"}),
        ),
        (
            "/api/auth/invites/accept",
            json!({"token": "nope", "password": "correct horse 42"}),
        ),
    ] {
        let (st, _) = app.json(Method::POST, path, None, Some(body)).await;
        assert!(st.is_client_error(), "{path}: {st}");
    }
    assert_eq!(
        audit_rows(&app).await,
        (0, 0),
        "anonymous requests reached an audit chain"
    );
}
both!(anonymous_requests_add_nothing_to_any_chain);

async fn failed_logins_are_recorded_rate_limited(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Logins").await;
    let platform = |app: &TestApp| {
        let pool = app.db.pool.clone();
        async move {
            let rows: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
                "SELECT action, actor_email, outcome, diff FROM audit_logs WHERE chain_key = 'platform' ORDER BY seq",
            )
            .fetch_all(&pool)
            .await
            .expect("platform chain");
            rows
        }
    };
    for _ in 0..6 {
        let (st, _) = app
            .json(
                Method::POST,
                "/api/auth/token",
                None,
                Some(json!({"email": owner.email, "password": "wrong password 1"})),
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let rows = platform(&app).await;
    assert_eq!(
        rows.len(),
        1,
        "one entry per address and e-mail a minute: {rows:?}"
    );
    let (action, email, outcome, diff) = &rows[0];
    assert_eq!(action, "auth.login");
    assert_eq!(email.as_deref(), Some(owner.email.as_str()));
    assert_eq!(outcome, "denied");
    let diff: serde_json::Value = serde_json::from_str(diff).expect("diff");
    assert_eq!(diff["after"]["attempts"], 1);
    // Another e-mail gets its own entry; a successful login lands in the organization's chain.
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/token",
            None,
            Some(json!({"email": format!("nobody-{}@example.com", uuid::Uuid::new_v4().simple()), "password": "wrong password 1"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/token",
            None,
            Some(json!({"email": owner.email, "password": crate::support::PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(platform(&app).await.len(), 2);
    let page = app
        .json(
            Method::GET,
            "/api/audit-logs?action=auth.login",
            Some(&owner.access),
            None,
        )
        .await
        .1;
    assert_eq!(page["items"][0]["outcome"], "success", "{page}");
    let v = spot_models::audit::verify(&app.db, spot_models::audit::PLATFORM_CHAIN)
        .await
        .expect("verify");
    assert!(v.ok && v.checked == 2, "{v:?}");
}
both!(failed_logins_are_recorded_rate_limited);

async fn a_mutation_whose_audit_record_cannot_be_written_does_not_succeed(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Unaudited").await;
    // Make every invite record unwritable (a permanent failure, not a busy database).
    let sql = match b {
        Backend::Sqlite => {
            "CREATE TRIGGER refuse_invite_audit BEFORE INSERT ON audit_logs WHEN NEW.action = 'invite.create' BEGIN SELECT RAISE(ABORT, 'audit store failure'); END"
        }
        Backend::Postgres => {
            "ALTER TABLE audit_logs ADD CONSTRAINT refuse_invite_audit CHECK (action <> 'invite.create') NOT VALID"
        }
    };
    sqlx::query(sql)
        .execute(&app.db.pool)
        .await
        .expect("sabotage");
    let (st, body) = app
        .json(
            Method::POST,
            "/api/org/invites",
            Some(&owner.access),
            Some(json!({"email": "lost@example.com", "role": "viewer"})),
        )
        .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    // Other mutations are still recorded and the chain is intact.
    let (st, _) = app
        .json(
            Method::PUT,
            "/api/org/settings",
            Some(&owner.access),
            Some(json!({"audit_retention_days": 30})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(verify(&app, &owner).await["ok"], true);
}
both!(a_mutation_whose_audit_record_cannot_be_written_does_not_succeed);

async fn csv_export_neutralizes_formula_cells(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Formulas").await;
    let r = app
        .http
        .post(app.url("/api/org/invites"))
        .bearer_auth(&owner.access)
        .header("user-agent", "=1+2")
        .header("x-request-id", "-cmd")
        .json(&json!({"email": "f@example.com", "role": "viewer"}))
        .send()
        .await
        .expect("invite");
    assert_eq!(r.status(), StatusCode::CREATED);
    let text = app
        .call(
            Method::GET,
            "/api/audit-logs/export?format=csv",
            Some(&owner.access),
            None,
        )
        .await
        .text()
        .await
        .expect("csv");
    let line = text
        .lines()
        .find(|l| l.contains("invite.create"))
        .expect("invite row");
    assert!(line.contains(",'=1+2,"), "{line}");
    assert!(line.contains(",'-cmd,"), "{line}");
    assert!(
        !line.contains(",=1+2,") && !line.contains(",-cmd,"),
        "{line}"
    );
    // The JSON export keeps the values verbatim.
    let json_text = app
        .call(
            Method::GET,
            "/api/audit-logs/export?format=json",
            Some(&owner.access),
            None,
        )
        .await
        .text()
        .await
        .expect("json");
    let v: serde_json::Value = serde_json::from_str(&json_text).expect("json");
    assert!(v
        .as_array()
        .expect("array")
        .iter()
        .any(|e| e["user_agent"] == "=1+2" && e["request_id"] == "-cmd"));
}
both!(csv_export_neutralizes_formula_cells);
