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
    // Oversized body: the server answers 413 as soon as it knows, and may close the
    // connection before the client has written everything. A raw connection writes the
    // body while reading, so the answer is read whatever happens to the rest of the body.
    let big = format!(
        "{{\"org_name\": \"{}\", \"email\": \"a@example.com\", \"password\": \"{PASSWORD}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (status, body) = raw_post(&app.base, "/api/auth/signup", big.into_bytes()).await;
    assert_eq!(status, 413, "{body}");
    let e: serde_json::Value = serde_json::from_str(&body).expect("json error");
    assert_eq!(e["error"]["code"], "payload_too_large");
}
both!(bad_bodies_get_clear_4xx_errors);

/// POSTs `body` over a plain connection, writing it in a task of its own (write errors
/// ignored: the server may refuse and close early) while reading the answer: (status,
/// response body).
async fn raw_post(base: &str, path: &str, body: Vec<u8>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let writer = tokio::spawn(async move {
        if wr.write_all(head.as_bytes()).await.is_ok() {
            let _ = wr.write_all(&body).await;
        }
    });
    let mut buf = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(20), rd.read_to_end(&mut buf)).await;
    writer.abort();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, raw) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = raw;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        raw.to_string()
    };
    (status, body)
}

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
