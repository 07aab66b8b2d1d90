use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both;
use crate::inventory::wait_status;
use crate::support::{assert_error, Backend, TestApp};

fn verify_body(id: &str, name: &str) -> Value {
    json!({"aws_account_id": id, "role_arn": format!("arn:aws:iam::{id}:role/SpotOptimizer"), "region": "us-east-1", "name": name})
}

async fn link_verify_scan_rename_resync_disconnect(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Linker").await;
    let (st, link) = app
        .json(
            Method::POST,
            "/api/accounts/link",
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{link}");
    let ext = link["external_id"]
        .as_str()
        .expect("external id")
        .to_string();
    assert!(ext.len() >= 32, "external id must carry >= 128 bits");
    assert!(link["cloudformation_template"]
        .as_str()
        .expect("template")
        .contains("sts:ExternalId"));
    assert!(link["quick_create_url"]
        .as_str()
        .expect("url")
        .contains(&ext));
    // Reused on the next call.
    let again = app
        .json(
            Method::POST,
            "/api/accounts/link",
            Some(&s.access),
            Some(json!({})),
        )
        .await
        .1;
    assert_eq!(again["external_id"], ext.as_str());

    let (st, acc) = app
        .json(
            Method::POST,
            "/api/accounts/verify",
            Some(&s.access),
            Some(verify_body("123456789012", "Acme Prod")),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{acc}");
    assert_eq!(acc["aws_account_id_masked"], "1234-****-****");
    assert_eq!(acc["method"], "role");
    let id = acc["id"].as_str().expect("id").to_string();
    // The pending placeholder was filled, not duplicated.
    let list = app
        .json(Method::GET, "/api/accounts", Some(&s.access), None)
        .await
        .1;
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    let scan = wait_status(&app, &s, &id, "active").await;
    assert_eq!(scan["status"], "active", "{scan}");
    assert_eq!(scan["progress"], 100);
    assert!(scan["counts"]["instances"].as_i64().expect("instances") > 0);
    assert!(scan["counts"]["clusters"].as_i64().expect("clusters") >= 3);
    let me = app
        .json(Method::GET, "/api/auth/me", Some(&s.access), None)
        .await
        .1;
    assert_eq!(me["route"], "dashboard");
    // Verifying the same account again updates it in place.
    let (st, _) = app
        .json(
            Method::POST,
            "/api/accounts/verify",
            Some(&s.access),
            Some(verify_body("123456789012", "Acme Production")),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    wait_status(&app, &s, &id, "active").await;
    assert_eq!(
        app.json(Method::GET, "/api/accounts", Some(&s.access), None)
            .await
            .1["items"]
            .as_array()
            .expect("items")
            .len(),
        1
    );

    let (st, r) = app
        .json(
            Method::PATCH,
            &format!("/api/accounts/{id}"),
            Some(&s.access),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(r["name"], "Renamed");
    let (st, r) = app
        .json(
            Method::POST,
            &format!("/api/accounts/{id}/resync"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        wait_status(&app, &s, &id, "active").await["status"],
        "active"
    );

    let (st, _) = app
        .json(
            Method::DELETE,
            &format!("/api/accounts/{id}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        app.json(Method::GET, "/api/accounts", Some(&s.access), None)
            .await
            .1["items"]
            .as_array()
            .expect("items")
            .len(),
        0
    );
    assert_eq!(
        app.json(
            Method::GET,
            &format!("/api/accounts/{id}/scan"),
            Some(&s.access),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let logs = app
        .json(
            Method::GET,
            "/api/audit-logs?limit=200",
            Some(&s.access),
            None,
        )
        .await
        .1;
    let actions: Vec<&str> = logs["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "account.verify",
        "account.rename",
        "account.resync",
        "account.disconnect",
        "account.discovery",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}
both!(link_verify_scan_rename_resync_disconnect);

async fn an_account_linked_elsewhere_is_refused_with_409(b: Backend) {
    let app = TestApp::start(b).await;
    let a = app.signup("Owner Org").await;
    let other = app.signup("Other Org").await;
    let (st, _) = app
        .json(
            Method::POST,
            "/api/accounts/verify",
            Some(&a.access),
            Some(verify_body("210987654321", "Mine")),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, e) = app
        .json(
            Method::POST,
            "/api/accounts/verify",
            Some(&other.access),
            Some(verify_body("210987654321", "Theirs")),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::CONFLICT);
    let msg = e["error"]["message"].as_str().expect("message");
    assert!(
        !msg.contains("Owner Org") && !msg.contains(&a.org_id),
        "409 must not reveal the other organization"
    );
    // After the owner disconnects, the account can be linked elsewhere.
    let id = app
        .json(Method::GET, "/api/accounts", Some(&a.access), None)
        .await
        .1["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.json(
        Method::DELETE,
        &format!("/api/accounts/{id}"),
        Some(&a.access),
        None,
    )
    .await;
    let (st, _) = app
        .json(
            Method::POST,
            "/api/accounts/verify",
            Some(&other.access),
            Some(verify_body("210987654321", "Theirs")),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
}
both!(an_account_linked_elsewhere_is_refused_with_409);

async fn failed_verification_marks_the_placeholder_error(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Denied").await;
    let body = json!({"aws_account_id": "123456789012", "role_arn": "arn:aws:iam::123456789012:role/NoAccess", "region": "us-east-1", "name": "Nope"});
    let (st, e) = app
        .json(
            Method::POST,
            "/api/accounts/verify",
            Some(&s.access),
            Some(body),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "role_arn");
    let list = app
        .json(Method::GET, "/api/accounts", Some(&s.access), None)
        .await
        .1;
    let acc = &list["items"][0];
    assert_eq!(acc["status"], "error");
    assert!(acc["status_message"]
        .as_str()
        .expect("message")
        .contains("AccessDenied"));
    // A later successful verification fills that same row: no stray placeholder remains.
    let (st, _) = app
        .json(
            Method::POST,
            "/api/accounts/verify",
            Some(&s.access),
            Some(verify_body("123456789012", "Fixed")),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let list = app
        .json(Method::GET, "/api/accounts", Some(&s.access), None)
        .await
        .1;
    assert_eq!(list["items"].as_array().expect("items").len(), 1, "{list}");
    assert_eq!(list["items"][0]["name"], "Fixed");
}
both!(failed_verification_marks_the_placeholder_error);

async fn keys_are_encrypted_at_rest_and_never_returned(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Lab").await;
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let (st, acc) = app
        .json(Method::POST, "/api/accounts/keys", Some(&s.access), Some(json!({"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": secret, "region": "eu-west-1", "name": "Lab"})))
        .await;
    assert_eq!(st, StatusCode::OK, "{acc}");
    assert_eq!(acc["method"], "keys");
    let id = acc["id"].as_str().expect("id").to_string();
    assert_eq!(
        wait_status(&app, &s, &id, "active").await["status"],
        "active"
    );
    let (ct,): (Option<String>,) =
        sqlx::query_as("SELECT credentials_ciphertext FROM accounts WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.db.pool)
            .await
            .expect("row");
    let ct = ct.expect("ciphertext stored");
    assert!(ct.starts_with("v2:") && !ct.contains(secret) && !ct.contains("AKIAIOSFODNN7EXAMPLE"));
    // Nowhere in the audit log or any API answer is the plaintext secret.
    let dump: Vec<(String,)> = sqlx::query_as("SELECT diff FROM audit_logs")
        .fetch_all(&app.db.pool)
        .await
        .expect("audit");
    assert!(
        dump.iter().all(|(d,)| !d.contains(secret)),
        "secret leaked into the audit log"
    );
    for path in [
        "/api/accounts",
        &format!("/api/accounts/{id}/scan"),
        "/api/audit-logs?limit=200",
    ] {
        let body = app
            .json(Method::GET, path, Some(&s.access), None)
            .await
            .1
            .to_string();
        assert!(!body.contains(secret), "{path} leaked the secret");
    }
    let (ct2,): (Option<String>,) =
        sqlx::query_as("SELECT credentials_ciphertext FROM accounts WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.db.pool)
            .await
            .expect("row");
    assert_eq!(ct2.as_deref(), Some(ct.as_str()));
    // Disconnect erases the credentials.
    app.json(
        Method::DELETE,
        &format!("/api/accounts/{id}"),
        Some(&s.access),
        None,
    )
    .await;
    let (gone,): (Option<String>,) =
        sqlx::query_as("SELECT credentials_ciphertext FROM accounts WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.db.pool)
            .await
            .expect("row");
    assert!(gone.is_none());
}
both!(keys_are_encrypted_at_rest_and_never_returned);

async fn bad_account_input_is_rejected_with_the_field(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Inputs").await;
    let cases = [
        (
            json!({"aws_account_id": "12345", "role_arn": "arn:aws:iam::123456789012:role/X", "region": "us-east-1", "name": "n"}),
            "aws_account_id",
        ),
        (
            json!({"aws_account_id": "123456789012", "role_arn": "arn:aws:iam::123456789012:user/X", "region": "us-east-1", "name": "n"}),
            "role_arn",
        ),
        (
            json!({"aws_account_id": "123456789012", "role_arn": "not an arn", "region": "us-east-1", "name": "n"}),
            "role_arn",
        ),
        (
            json!({"aws_account_id": "123456789012", "role_arn": "arn:aws:iam::999999999999:role/X", "region": "us-east-1", "name": "n"}),
            "role_arn",
        ),
        (
            json!({"aws_account_id": "123456789012", "role_arn": "arn:aws:iam::123456789012:role/X", "region": "moon-1", "name": "n"}),
            "region",
        ),
        (
            json!({"aws_account_id": "123456789012", "role_arn": "arn:aws:iam::123456789012:role/X", "region": "us-east-1", "name": ""}),
            "name",
        ),
        (
            json!({"aws_account_id": 123456789012u64, "role_arn": "arn:aws:iam::123456789012:role/X", "region": "us-east-1", "name": "n"}),
            "aws_account_id",
        ),
    ];
    for (body, field) in cases {
        let (st, e) = app
            .json(
                Method::POST,
                "/api/accounts/verify",
                Some(&s.access),
                Some(body.clone()),
            )
            .await;
        let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["error"]["field"], field, "{body}");
    }
    let (st, e) = app
        .json(Method::POST, "/api/accounts/keys", Some(&s.access), Some(json!({"access_key_id": "nope", "secret_access_key": "x", "region": "us-east-1", "name": "n"})))
        .await;
    assert_eq!(
        assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "access_key_id"
    );
}
both!(bad_account_input_is_rejected_with_the_field);
