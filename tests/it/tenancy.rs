//! Role and tenant isolation matrices. Keep `mutating_routes` and `tenant_routes` current as
//! routes are added: every mutating route must be in the viewer matrix and every route that
//! takes an id must be in the cross-tenant matrix.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both;
use crate::support::{assert_error, Backend, Session, TestApp};

/// Every mutating organization route with a plausible body, given ids from the org.
fn mutating_routes(ids: &Ids) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/api/org/onboarding".into(),
            Some(json!({"state": "skipped"})),
        ),
        (
            Method::POST,
            "/api/org/invites".into(),
            Some(json!({"email": "x@example.com", "role": "viewer"})),
        ),
        (
            Method::DELETE,
            format!("/api/org/invites/{}", ids.invite),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/org/members/{}", ids.member),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::DELETE,
            format!("/api/org/members/{}", ids.member),
            None,
        ),
        (
            Method::PUT,
            "/api/org/settings".into(),
            Some(json!({"audit_retention_days": 60})),
        ),
        (Method::POST, "/api/accounts/link".into(), Some(json!({}))),
        (
            Method::POST,
            "/api/accounts/verify".into(),
            Some(
                json!({"aws_account_id": "123456789012", "role_arn": "arn:aws:iam::123456789012:role/X", "region": "us-east-1", "name": "n"}),
            ),
        ),
        (
            Method::POST,
            "/api/accounts/keys".into(),
            Some(
                json!({"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "region": "us-east-1", "name": "n"}),
            ),
        ),
        (
            Method::PATCH,
            format!("/api/accounts/{}", ids.account),
            Some(json!({"name": "x"})),
        ),
        (
            Method::POST,
            format!("/api/accounts/{}/resync", ids.account),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/accounts/{}", ids.account),
            None,
        ),
    ]
}

/// Every route that addresses a tenant resource by id.
fn tenant_routes(ids: &Ids) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::DELETE,
            format!("/api/org/invites/{}", ids.invite),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/org/members/{}", ids.member),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::DELETE,
            format!("/api/org/members/{}", ids.member),
            None,
        ),
        (Method::GET, format!("/api/audit-logs/{}", ids.audit), None),
        (
            Method::PATCH,
            format!("/api/accounts/{}", ids.account),
            Some(json!({"name": "x"})),
        ),
        (
            Method::POST,
            format!("/api/accounts/{}/resync", ids.account),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/accounts/{}", ids.account),
            None,
        ),
        (
            Method::GET,
            format!("/api/accounts/{}/scan", ids.account),
            None,
        ),
    ]
}

struct Ids {
    account: String,
    invite: String,
    member: String,
    audit: String,
}

async fn ids_of(app: &TestApp, owner: &Session) -> Ids {
    let (_, inv) = app
        .json(Method::POST, "/api/org/invites", Some(&owner.access), Some(json!({"email": format!("p-{}@example.com", uuid::Uuid::new_v4().simple()), "role": "viewer"})))
        .await;
    let member = app.add_member(owner, "admin").await;
    let logs = app
        .json(
            Method::GET,
            "/api/audit-logs?limit=1",
            Some(&owner.access),
            None,
        )
        .await
        .1;
    let accounts = app
        .json(Method::GET, "/api/accounts", Some(&owner.access), None)
        .await
        .1;
    Ids {
        account: accounts["items"][0]["id"]
            .as_str()
            .expect("account id")
            .to_string(),
        invite: inv["id"].as_str().expect("invite id").to_string(),
        member: member.user_id,
        audit: logs["items"][0]["id"]
            .as_str()
            .expect("audit id")
            .to_string(),
    }
}

async fn viewer_gets_403_on_every_mutation(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Readers").await;
    let viewer = app.add_member(&owner, "viewer").await;
    let ids = ids_of(&app, &owner).await;
    for (m, path, body) in mutating_routes(&ids) {
        let (st, e) = app.json(m.clone(), &path, Some(&viewer.access), body).await;
        assert_error(st, &e, StatusCode::FORBIDDEN);
    }
    // ...and reads everything in its organization.
    for path in [
        "/api/auth/me",
        "/api/accounts",
        "/api/org/members",
        "/api/org/invites",
        "/api/org/settings",
        "/api/audit-logs",
        "/api/audit-logs/verify",
    ] {
        let (st, v) = app
            .json(Method::GET, path, Some(&viewer.access), None)
            .await;
        assert_eq!(st, StatusCode::OK, "viewer read {path}: {v}");
    }
    // Nothing changed.
    let members = app
        .json(Method::GET, "/api/org/members", Some(&owner.access), None)
        .await
        .1;
    assert_eq!(members["items"].as_array().expect("items").len(), 3);
}
both!(viewer_gets_403_on_every_mutation);

async fn foreign_ids_answer_404_like_missing_ones(b: Backend) {
    let app = TestApp::start(b).await;
    let a = app.signup("Tenant A").await;
    let bsess = app.signup("Tenant B").await;
    let ids = ids_of(&app, &a).await;
    let missing = Ids {
        account: uuid::Uuid::new_v4().to_string(),
        invite: uuid::Uuid::new_v4().to_string(),
        member: uuid::Uuid::new_v4().to_string(),
        audit: uuid::Uuid::new_v4().to_string(),
    };
    for ((m, path, body), (_, missing_path, _)) in
        tenant_routes(&ids).into_iter().zip(tenant_routes(&missing))
    {
        let (st, foreign) = app
            .json(m.clone(), &path, Some(&bsess.access), body.clone())
            .await;
        assert_error(st, &foreign, StatusCode::NOT_FOUND);
        let (st2, absent) = app
            .json(m.clone(), &missing_path, Some(&bsess.access), body)
            .await;
        assert_eq!(st2, StatusCode::NOT_FOUND);
        assert_eq!(
            foreign["error"]["code"], absent["error"]["code"],
            "{m} {path}"
        );
        assert_eq!(
            foreign["error"]["message"], absent["error"]["message"],
            "{m} {path}"
        );
    }
    // Lists never show the other tenant's rows.
    let members = app
        .json(Method::GET, "/api/org/members", Some(&bsess.access), None)
        .await
        .1;
    assert!(members["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|m| m["user_id"] != ids.member.as_str()));
    let logs = app
        .json(
            Method::GET,
            "/api/audit-logs?limit=200",
            Some(&bsess.access),
            None,
        )
        .await
        .1;
    assert!(logs["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|e| e["organization_id"] == bsess.org_id.as_str()));
    // Tenant A's resources are intact.
    let (st, _) = app
        .json(
            Method::GET,
            &format!("/api/audit-logs/{}", ids.audit),
            Some(&a.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
}
both!(foreign_ids_answer_404_like_missing_ones);
