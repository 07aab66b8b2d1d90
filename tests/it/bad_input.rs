//! Bad input answers 4xx with a JSON error body naming the field, never 500.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::support::{assert_error, Backend, TestApp, PASSWORD};

async fn bad_bodies_get_clear_4xx_errors(b: Backend) {
    let app = TestApp::start(b).await;
    let raw = |body: &'static str, ct: &'static str| {
        let http = app.http.clone();
        let url = app.url("/api/auth/signup");
        async move {
            let r = http
                .post(url)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .expect("send");
            let st = r.status();
            (
                st,
                r.json::<serde_json::Value>()
                    .await
                    .unwrap_or(serde_json::Value::Null),
            )
        }
    };
    let (st, e) = raw("{\"org_name\": \"x\", ", "application/json").await;
    let e = assert_error(st, &e, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "malformed_json");
    let (st, e) = raw("[1,2]", "application/json").await;
    assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, e) = raw("org_name=x", "application/x-www-form-urlencoded").await;
    assert_error(st, &e, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let cases = [
        (
            json!({"org_name": 5, "email": "a@example.com", "password": PASSWORD}),
            "org_name",
        ),
        (
            json!({"org_name": "A", "email": true, "password": PASSWORD}),
            "email",
        ),
        (
            json!({"org_name": "A", "email": "a@example.com", "password": PASSWORD, "is_admin": true}),
            "is_admin",
        ),
        (json!({"org_name": "A", "password": PASSWORD}), "email"),
        (
            json!({"org_name": "A", "email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"org_name": "A", "email": "a@example.com", "password": "short1"}),
            "password",
        ),
        (
            json!({"org_name": "A", "email": "a@example.com", "password": "no digits in here"}),
            "password",
        ),
        (
            json!({"org_name": "", "email": "a@example.com", "password": PASSWORD}),
            "org_name",
        ),
        (
            json!({"org_name": "x".repeat(101), "email": "a@example.com", "password": PASSWORD}),
            "org_name",
        ),
    ];
    for (body, field) in cases {
        let (st, e) = app
            .json(Method::POST, "/api/auth/signup", None, Some(body.clone()))
            .await;
        let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["error"]["field"], field, "body {body} -> {e}");
    }
    // Oversized body.
    let big = format!(
        "{{\"org_name\": \"{}\", \"email\": \"a@example.com\", \"password\": \"{PASSWORD}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let r = app
        .http
        .post(app.url("/api/auth/signup"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let e: serde_json::Value = r.json().await.expect("json error");
    assert_eq!(e["error"]["code"], "payload_too_large");
}
both!(bad_bodies_get_clear_4xx_errors);

async fn bad_parameters_and_unknown_routes_are_4xx_json(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Params").await;
    for (path, field) in [
        ("/api/audit-logs?limit=0", Some("limit")),
        ("/api/audit-logs?limit=abc", None),
        ("/api/audit-logs?from=yesterday", Some("from")),
        ("/api/audit-logs?outcome=maybe", None),
        ("/api/audit-logs?cursor=zzz", Some("cursor")),
        ("/api/no-such-route", None),
    ] {
        let (st, e) = app.json(Method::GET, path, Some(&s.access), None).await;
        assert!(st.is_client_error(), "{path}: {st}");
        assert!(e["error"]["code"].is_string(), "{path}: {e}");
        if let Some(f) = field {
            assert_eq!(e["error"]["field"], f, "{path}: {e}");
        }
    }
    let (st, e) = app
        .json(
            Method::PATCH,
            "/api/org/members/x",
            Some(&s.access),
            Some(json!({"role": "emperor"})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "role");
    let (st, e) = app.json(Method::GET, "/api/org/members", None, None).await;
    assert_error(st, &e, StatusCode::UNAUTHORIZED);
    let (st, e) = app
        .json(Method::GET, "/api/org/members", Some("garbage"), None)
        .await;
    assert_error(st, &e, StatusCode::UNAUTHORIZED);
    // Health endpoints.
    assert_eq!(
        app.json(Method::GET, "/healthz", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.json(Method::GET, "/readyz", None, None).await.0,
        StatusCode::OK
    );
    let (st, spec) = app.json(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        spec["paths"]["/auth/signup"].is_object() || spec["paths"]["/api/auth/signup"].is_object()
    );
}
both!(bad_parameters_and_unknown_routes_are_4xx_json);
