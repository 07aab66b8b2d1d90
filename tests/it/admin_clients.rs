//! The super-admin console: the client registry (figures, create, block, unblock, soft
//! delete, restore) and impersonation (owner rights only, audited, ended explicitly or by
//! expiry).

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both;
use crate::inventory::link_sim;
use crate::risk::super_admin;
use crate::support::{assert_error, Backend, TestApp, PASSWORD};

/// The super-admin seeded by `crate::risk::super_admin`.
const ADMIN_EMAIL: &str = "root@platform.example.com";

async fn clients(app: &TestApp, admin: &str, include_deleted: bool) -> Vec<Value> {
    let path = if include_deleted {
        "/api/admin/clients?include_deleted=true"
    } else {
        "/api/admin/clients"
    };
    let (st, v) = app.json(Method::GET, path, Some(admin), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["items"].as_array().expect("items").clone()
}

fn find<'a>(items: &'a [Value], id: &str) -> Option<&'a Value> {
    items.iter().find(|c| c["id"] == id)
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

/// Records of `action` in a chain, read straight from the log.
async fn chain_actions(app: &TestApp, chain: &str, action: &str, resource: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE chain_key = $1 AND action = $2 AND resource_id = $3",
    )
    .bind(chain)
    .bind(action)
    .bind(resource)
    .fetch_one(&app.db.pool)
    .await
    .expect("count");
    n
}

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("jwt payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("claims json")
}

async fn registry_figures_come_from_the_inventory(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;
    let acme = app.signup("Acme").await;
    link_sim(&app, &acme, "123456789012", "Prod").await;
    let empty = app.signup("Empty").await;

    let items = clients(&app, &admin, false).await;
    let a = find(&items, &acme.org_id).expect("acme listed");
    let kpis = app
        .json(Method::GET, "/api/dashboard/kpis", Some(&acme.access), None)
        .await
        .1;
    let cl = app
        .json(Method::GET, "/api/clusters", Some(&acme.access), None)
        .await
        .1;
    assert_eq!(a["status"], "active");
    assert_eq!(a["name"], "Acme");
    assert_eq!(a["owner_email"], acme.email.as_str());
    assert_eq!(a["members"], 1);
    assert_eq!(
        a["accounts"], 1,
        "the signup placeholder is not counted: {a}"
    );
    let n_clusters = cl["items"].as_array().expect("clusters").len() as i64;
    assert!(n_clusters >= 3);
    assert_eq!(a["clusters"].as_i64(), Some(n_clusters), "{a}");
    assert_eq!(a["nodes"], kpis["nodes"], "{a} vs {kpis}");
    let spend = a["monthly_spend"].as_f64().expect("spend");
    assert!(spend > 0.0);
    assert!(
        (spend - kpis["monthly_spend"].as_f64().expect("kpi spend")).abs() < 1e-6,
        "{spend} vs {kpis}"
    );
    // Savings against on-demand, recomputed here from the stored instances.
    let rows: Vec<(f64, f64)> = sqlx::query_as(
        "SELECT i.hourly_price, i.on_demand_hourly FROM instances i JOIN accounts a ON a.id = i.account_id \
         WHERE i.organization_id = $1 AND i.gone_at IS NULL AND a.status <> 'disconnected' AND i.state IN ('running', 'pending')",
    )
    .bind(&acme.org_id)
    .fetch_all(&app.db.pool)
    .await
    .expect("instances");
    let expected: f64 = rows.iter().map(|(p, od)| (od - p).max(0.0)).sum::<f64>() * 730.0;
    assert!(expected > 0.0, "the simulated fleet runs spot instances");
    let savings = a["monthly_savings"].as_f64().expect("savings");
    assert!((savings - expected).abs() < 1e-6, "{savings} vs {expected}");
    assert!(a["agents_connected"].as_i64().expect("agents") <= n_clusters);
    assert_eq!(a["agents_connected"], 0, "no agent was installed");
    // Last activity: the newest record of the organization's own audit chain.
    let logs = app
        .json(Method::GET, "/api/audit-logs", Some(&acme.access), None)
        .await
        .1;
    let newest = logs["items"][0]["timestamp"].as_str().expect("ts");
    let newest = chrono::DateTime::parse_from_rfc3339(newest).expect("rfc3339");
    let last = chrono::DateTime::parse_from_rfc3339(a["last_activity_at"].as_str().expect("last"))
        .expect("rfc3339");
    assert!(last >= newest, "{last} < {newest}");

    let e = find(&items, &empty.org_id).expect("empty listed");
    for k in ["accounts", "clusters", "nodes", "agents_connected"] {
        assert_eq!(e[k], 0, "{k}: {e}");
    }
    assert_eq!(e["monthly_spend"].as_f64(), Some(0.0));
    assert_eq!(e["monthly_savings"].as_f64(), Some(0.0));
    assert!(e["last_activity_at"].is_string(), "the signup is audited");
    // The admin's own organization is marked and protected.
    let platform: Vec<_> = items.iter().filter(|c| c["platform"] == true).collect();
    assert_eq!(platform.len(), 1, "{items:?}");
    assert_eq!(a["platform"], false);
}
both!(registry_figures_come_from_the_inventory);

async fn lifecycle_create_block_unblock_delete_restore(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;

    // Create: the generated password works once shown.
    let (st, created) = app
        .json(
            Method::POST,
            "/api/admin/clients",
            Some(&admin),
            Some(json!({"name": "Globex", "owner_email": "Owner@Globex.example.com"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let org_id = created["client"]["id"].as_str().expect("id").to_string();
    assert_eq!(created["client"]["status"], "active");
    assert_eq!(created["owner_email"], "owner@globex.example.com");
    let password = created["password"].as_str().expect("password").to_string();
    assert!(password.len() >= 16);
    let (st, t) = login(&app, "owner@globex.example.com", &password).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let owner_access = t["access_token"].as_str().expect("access").to_string();
    let owner_refresh = t["refresh_token"].as_str().expect("refresh").to_string();
    let me = app
        .json(Method::GET, "/api/auth/me", Some(&owner_access), None)
        .await
        .1;
    assert_eq!(me["organization"]["id"], org_id.as_str());
    assert_eq!(me["role"], "owner");
    let owner = crate::support::Session {
        access: owner_access.clone(),
        email: "owner@globex.example.com".into(),
        org_id: org_id.clone(),
        user_id: me["user"]["id"].as_str().expect("uid").to_string(),
    };
    let member = app.add_member(&owner, "viewer").await;
    // Bad input names the field; a taken e-mail is a conflict.
    let (st, e) = app
        .json(
            Method::POST,
            "/api/admin/clients",
            Some(&admin),
            Some(json!({"name": "X", "owner_email": "not-an-email"})),
        )
        .await;
    assert_eq!(
        assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "owner_email"
    );
    let (st, e) = app
        .json(
            Method::POST,
            "/api/admin/clients",
            Some(&admin),
            Some(json!({"name": " ", "owner_email": "new@globex.example.com"})),
        )
        .await;
    assert_eq!(
        assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "name"
    );
    let (st, e) = app
        .json(
            Method::POST,
            "/api/admin/clients",
            Some(&admin),
            Some(json!({"name": "Again", "owner_email": "owner@globex.example.com"})),
        )
        .await;
    assert_eq!(
        assert_error(st, &e, StatusCode::CONFLICT)["error"]["field"],
        "owner_email"
    );
    assert_eq!(
        chain_actions(&app, "platform", "admin.client.create", &org_id).await,
        1
    );
    assert_eq!(
        chain_actions(&app, &org_id, "admin.client.create", &org_id).await,
        1
    );

    // Block: every session dies at once and sign-ins are refused with the reason.
    let (st, blocked) = app
        .json(
            Method::POST,
            &format!("/api/admin/clients/{org_id}/block"),
            Some(&admin),
            Some(json!({"reason": "unpaid invoices"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{blocked}");
    assert_eq!(blocked["status"], "blocked");
    assert_eq!(blocked["blocked_reason"], "unpaid invoices");
    for token in [&owner_access, &member.access] {
        let (st, _) = app
            .json(Method::GET, "/api/auth/me", Some(token), None)
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": owner_refresh})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, e) = login(&app, "owner@globex.example.com", &password).await;
    let e = assert_error(st, &e, StatusCode::FORBIDDEN);
    assert_eq!(e["error"]["message"], "this organization is blocked");
    let (st, e) = login(&app, &member.email, PASSWORD).await;
    assert_eq!(
        assert_error(st, &e, StatusCode::FORBIDDEN)["error"]["message"],
        "this organization is blocked"
    );
    // A wrong password still answers the generic 401 (the block is not revealed).
    let (st, _) = login(&app, &member.email, "wrong password 1").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, e) = app
        .json(
            Method::POST,
            &format!("/api/admin/clients/{org_id}/block"),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_error(st, &e, StatusCode::CONFLICT);
    assert_eq!(
        chain_actions(&app, "platform", "admin.client.block", &org_id).await,
        1
    );
    assert_eq!(
        chain_actions(&app, &org_id, "admin.client.block", &org_id).await,
        1
    );

    // Unblock: sign-ins work again.
    let (st, v) = app
        .json(
            Method::POST,
            &format!("/api/admin/clients/{org_id}/unblock"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "active");
    assert!(v["blocked_at"].is_null());
    let (st, t) = login(&app, "owner@globex.example.com", &password).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let owner_access = t["access_token"].as_str().expect("access").to_string();
    // The organization's own chain shows the admin's actions to its owner.
    let logs = app
        .json(
            Method::GET,
            "/api/audit-logs?action=admin.client",
            Some(&owner_access),
            None,
        )
        .await
        .1;
    let actions: Vec<&str> = logs["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec![
            "admin.client.unblock",
            "admin.client.block",
            "admin.client.create"
        ],
        "{logs}"
    );
    assert_eq!(logs["items"][0]["actor"]["email"], ADMIN_EMAIL);
    let (st, e) = app
        .json(
            Method::POST,
            &format!("/api/admin/clients/{org_id}/unblock"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(st, &e, StatusCode::CONFLICT);

    // Soft delete: hidden, sessions revoked, sign-ins refused, data kept; restore undoes it.
    let (st, v) = app
        .json(
            Method::DELETE,
            &format!("/api/admin/clients/{org_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "deleted");
    assert!(v["purge_after"].is_string());
    assert!(find(&clients(&app, &admin, false).await, &org_id).is_none());
    let listed = clients(&app, &admin, true).await;
    assert_eq!(find(&listed, &org_id).expect("listed")["status"], "deleted");
    // Its members' tokens answer 404: their organization is gone.
    let (st, e) = app
        .json(Method::GET, "/api/auth/me", Some(&owner_access), None)
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let (st, e) = login(&app, "owner@globex.example.com", &password).await;
    assert_eq!(
        assert_error(st, &e, StatusCode::FORBIDDEN)["error"]["message"],
        "this organization has been deleted"
    );
    let (kept,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE organization_id = $1")
            .bind(&org_id)
            .fetch_one(&app.db.pool)
            .await
            .expect("count");
    assert_eq!(kept, 2, "data is kept");
    // A deleted organization can be neither blocked nor impersonated.
    let (st, e) = app
        .json(
            Method::POST,
            &format!("/api/admin/clients/{org_id}/block"),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let (st, e) = app
        .json(
            Method::POST,
            "/api/admin/impersonate",
            Some(&admin),
            Some(json!({"organization_id": org_id})),
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let (st, v) = app
        .json(
            Method::POST,
            &format!("/api/admin/clients/{org_id}/restore"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "active");
    assert!(v["deleted_at"].is_null());
    assert!(find(&clients(&app, &admin, false).await, &org_id).is_some());
    let (st, t) = login(&app, &member.email, PASSWORD).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let (st, e) = app
        .json(
            Method::POST,
            &format!("/api/admin/clients/{org_id}/restore"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(st, &e, StatusCode::CONFLICT);
    for action in ["admin.client.delete", "admin.client.restore"] {
        assert_eq!(chain_actions(&app, "platform", action, &org_id).await, 1);
        assert_eq!(chain_actions(&app, &org_id, action, &org_id).await, 1);
    }
    // The platform operators' own organization is protected.
    let platform_id = clients(&app, &admin, false)
        .await
        .into_iter()
        .find(|c| c["platform"] == true)
        .expect("platform org")["id"]
        .as_str()
        .expect("id")
        .to_string();
    for (method, path) in [
        (
            Method::POST,
            format!("/api/admin/clients/{platform_id}/block"),
        ),
        (Method::DELETE, format!("/api/admin/clients/{platform_id}")),
    ] {
        let (st, e) = app.json(method, &path, Some(&admin), Some(json!({}))).await;
        assert_error(st, &e, StatusCode::CONFLICT);
    }
    // Both chains still verify.
    for chain in ["platform", org_id.as_str()] {
        let report = spot_models::audit::verify(&app.db, chain)
            .await
            .expect("verify");
        assert!(report.ok, "{chain}: {report:?}");
    }
}
both!(lifecycle_create_block_unblock_delete_restore);

async fn only_super_admins_reach_the_console(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;
    let customer = app.signup("Customer").await;
    let other = app.signup("Other").await;
    let (st, imp) = app
        .json(
            Method::POST,
            "/api/admin/impersonate",
            Some(&admin),
            Some(json!({"organization_id": customer.org_id})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{imp}");
    let impersonating = imp["access_token"].as_str().expect("token").to_string();
    let id = &other.org_id;
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/admin/clients".into(), None),
        (
            Method::POST,
            "/api/admin/clients".into(),
            Some(json!({"name": "X", "owner_email": "x@example.com"})),
        ),
        (
            Method::POST,
            format!("/api/admin/clients/{id}/block"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/admin/clients/{id}/unblock"),
            None,
        ),
        (Method::DELETE, format!("/api/admin/clients/{id}"), None),
        (
            Method::POST,
            format!("/api/admin/clients/{id}/restore"),
            None,
        ),
        (
            Method::POST,
            "/api/admin/impersonate".into(),
            Some(json!({"organization_id": id})),
        ),
        (Method::GET, "/api/admin/health".into(), None),
        (Method::GET, "/api/admin/organizations".into(), None),
    ];
    // A customer owner, and a super-admin acting as one: never more than owner.
    for token in [&customer.access, &impersonating] {
        for (m, path, body) in &routes {
            let (st, e) = app.json(m.clone(), path, Some(token), body.clone()).await;
            assert_error(st, &e, StatusCode::FORBIDDEN);
        }
    }
    // Ending an impersonation needs an impersonation session.
    for token in [&customer.access, &admin] {
        let (st, e) = app
            .json(
                Method::POST,
                "/api/admin/impersonation/end",
                Some(token),
                None,
            )
            .await;
        assert_error(st, &e, StatusCode::FORBIDDEN);
    }
    let (st, _) = app
        .json(Method::GET, "/api/admin/impersonation", Some(&admin), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Nothing changed.
    let other_row = find(&clients(&app, &admin, true).await, id)
        .expect("other")
        .clone();
    assert_eq!(other_row["status"], "active");
    let (st, _) = app
        .json(Method::GET, "/api/admin/clients", None, None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}
both!(only_super_admins_reach_the_console);

async fn impersonation_is_owner_only_audited_and_ends(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;
    let admin_me = app
        .json(Method::GET, "/api/auth/me", Some(&admin), None)
        .await
        .1;
    let admin_id = admin_me["user"]["id"]
        .as_str()
        .expect("admin id")
        .to_string();
    let customer = app.signup("Initech").await;
    let other = app.signup("Hooli").await;
    let other_accounts = app
        .json(Method::GET, "/api/accounts", Some(&other.access), None)
        .await
        .1;
    let other_account = other_accounts["items"][0]["id"]
        .as_str()
        .expect("placeholder account")
        .to_string();

    let (st, imp) = app
        .json(
            Method::POST,
            "/api/admin/impersonate",
            Some(&admin),
            Some(json!({"organization_id": customer.org_id})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{imp}");
    let token = imp["access_token"].as_str().expect("token").to_string();
    let refresh = imp["refresh_token"].as_str().expect("refresh").to_string();
    let claims = jwt_claims(&token);
    assert_eq!(claims["org"], customer.org_id.as_str());
    assert_eq!(claims["sub"], customer.user_id.as_str());
    assert_eq!(claims["act"]["sub"], admin_id.as_str());
    assert!(jwt_claims(&customer.access).get("act").is_none());

    let me = app
        .json(Method::GET, "/api/auth/me", Some(&token), None)
        .await
        .1;
    assert_eq!(me["organization"]["id"], customer.org_id.as_str());
    assert_eq!(me["role"], "owner");
    assert!(me["platform_role"].is_null(), "{me}");
    assert_eq!(me["impersonated_by"], admin_id.as_str());
    let (st, cur) = app
        .json(Method::GET, "/api/admin/impersonation", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{cur}");
    assert_eq!(cur["organization_name"], "Initech");
    assert_eq!(cur["admin_email"], ADMIN_EMAIL);
    assert_eq!(cur["role"], "owner");
    let started = chrono::DateTime::parse_from_rfc3339(cur["started_at"].as_str().expect("s"))
        .expect("rfc3339");
    let expires = chrono::DateTime::parse_from_rfc3339(cur["expires_at"].as_str().expect("e"))
        .expect("rfc3339");
    assert_eq!((expires - started).num_seconds(), 30 * 60, "short-lived");

    // Owner rights in that organization, nothing elsewhere.
    let (st, v) = app
        .json(
            Method::PUT,
            "/api/org/settings",
            Some(&token),
            Some(json!({"audit_retention_days": 90})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _) = app
        .json(
            Method::PATCH,
            &format!("/api/accounts/{other_account}"),
            Some(&token),
            Some(json!({"name": "Taken over"})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = app
        .json(Method::GET, "/api/clusters", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::OK);

    // Reads and writes are in the customer's chain with both identities.
    for action in ["GET /api/clusters", "org.settings"] {
        let logs = app
            .json(
                Method::GET,
                &format!("/api/audit-logs?action={}", action.replace(' ', "%20")),
                Some(&customer.access),
                None,
            )
            .await
            .1;
        let entry = &logs["items"][0];
        assert_eq!(entry["actor"]["kind"], "impersonation", "{action}: {logs}");
        assert_eq!(entry["actor"]["user_id"], customer.user_id.as_str());
        assert_eq!(entry["actor"]["admin_id"], admin_id.as_str());
    }
    assert_eq!(
        chain_actions(&app, &customer.org_id, "admin.impersonate.start", &{
            let (sid,): (String,) = sqlx::query_as(
                "SELECT id FROM sessions WHERE impersonator_id = $1 AND organization_id = $2",
            )
            .bind(&admin_id)
            .bind(&customer.org_id)
            .fetch_one(&app.db.pool)
            .await
            .expect("session");
            sid
        })
        .await,
        1
    );

    // A token of that session without the `act` claim is refused.
    let sid = claims["sid"].as_str().expect("sid");
    let stripped = app
        .state
        .jwt
        .issue(&customer.user_id, &customer.org_id, sid, 60)
        .expect("issue");
    let (st, _) = app
        .json(Method::GET, "/api/auth/me", Some(&stripped), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Refreshing keeps the admin's identity in the token.
    let (st, r) = app
        .json(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let token = r["access_token"].as_str().expect("token").to_string();
    let refresh = r["refresh_token"].as_str().expect("refresh").to_string();
    assert_eq!(jwt_claims(&token)["act"]["sub"], admin_id.as_str());
    let me = app
        .json(Method::GET, "/api/auth/me", Some(&token), None)
        .await
        .1;
    assert_eq!(me["impersonated_by"], admin_id.as_str());

    // Ending it revokes the session at once.
    let (st, v) = app
        .json(
            Method::POST,
            "/api/admin/impersonation/end",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, _) = app
        .json(Method::GET, "/api/auth/me", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(
        chain_actions(&app, "platform", "admin.impersonate.end", sid).await,
        1
    );
    let ended = app
        .json(
            Method::GET,
            "/api/audit-logs?action=admin.impersonate.end",
            Some(&customer.access),
            None,
        )
        .await
        .1;
    assert_eq!(
        ended["items"][0]["actor"]["kind"], "impersonation",
        "{ended}"
    );
    assert_eq!(ended["items"][0]["actor"]["admin_id"], admin_id.as_str());
    // The admin's own session and the customer's are untouched.
    for t in [&admin, &customer.access] {
        let (st, _) = app.json(Method::GET, "/api/auth/me", Some(t), None).await;
        assert_eq!(st, StatusCode::OK);
    }

    // Or by expiry.
    let (st, imp) = app
        .json(
            Method::POST,
            "/api/admin/impersonate",
            Some(&admin),
            Some(json!({"organization_id": customer.org_id})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{imp}");
    let token = imp["access_token"].as_str().expect("token").to_string();
    let (st, _) = app
        .json(Method::GET, "/api/auth/me", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    sqlx::query("UPDATE sessions SET expires_at = $1 WHERE impersonator_id IS NOT NULL")
        .bind(chrono::Utc::now().timestamp_millis() - 1)
        .execute(&app.db.pool)
        .await
        .expect("expire");
    let (st, _) = app
        .json(Method::GET, "/api/auth/me", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Blocking the customer ends any impersonation of it and forbids new ones.
    let (st, imp) = app
        .json(
            Method::POST,
            "/api/admin/impersonate",
            Some(&admin),
            Some(json!({"organization_id": customer.org_id})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{imp}");
    let token = imp["access_token"].as_str().expect("token").to_string();
    let (st, _) = app
        .json(
            Method::POST,
            &format!("/api/admin/clients/{}/block", customer.org_id),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = app
        .json(Method::GET, "/api/auth/me", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, e) = app
        .json(
            Method::POST,
            "/api/admin/impersonate",
            Some(&admin),
            Some(json!({"organization_id": customer.org_id})),
        )
        .await;
    assert_error(st, &e, StatusCode::CONFLICT);
    // The platform operators' organization cannot be impersonated.
    let platform_id = admin_me["organization"]["id"].as_str().expect("org");
    let (st, e) = app
        .json(
            Method::POST,
            "/api/admin/impersonate",
            Some(&admin),
            Some(json!({"organization_id": platform_id})),
        )
        .await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let report = spot_models::audit::verify(&app.db, &customer.org_id)
        .await
        .expect("verify");
    assert!(report.ok, "{report:?}");
}
both!(impersonation_is_owner_only_audited_and_ends);
