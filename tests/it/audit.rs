use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::Digest;

use crate::both;
use crate::support::{Backend, TestApp};

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
    sqlx::query("UPDATE audit_logs SET diff = $1 WHERE id = $2")
        .bind("{\"before\":null,\"after\":{\"email\":\"mallory@example.com\"}}")
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
    // Age the two oldest records by 40 days (this breaks their hashes, which the purge removes).
    let old = chrono::Utc::now().timestamp_millis() - 40 * 24 * 3600 * 1000;
    sqlx::query("UPDATE audit_logs SET ts = $1 WHERE chain_key = $2 AND seq <= 2")
        .bind(old)
        .bind(&owner.org_id)
        .execute(&app.db.pool)
        .await
        .expect("age rows");
    let purged = spot_api::retention::purge_once(&app.db)
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
    let v = app
        .json(
            Method::GET,
            "/api/audit-logs/verify",
            Some(&owner.access),
            None,
        )
        .await
        .1;
    assert_eq!(v["ok"], true, "chain after purge: {v}");
}
both!(retention_purge_removes_old_rows_and_is_audited);
