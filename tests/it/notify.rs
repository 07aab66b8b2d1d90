//! Outbound notifications and weekly reports over real HTTP, against a local webhook
//! receiver that fails on demand and a local SMTP sink (both written here): webhook retries
//! with backoff then success, a permanent failure recorded and not retried, the test
//! notification, the weekly report's figures (the dashboard's) in the e-mail, the weekly
//! job making one report per week, the pre-sleep notice sent exactly once across ticks and
//! a restart, viewer 403 on every write, cross-tenant 404 and field-named 422s. Without
//! `allow_private_webhooks`, webhooks to loopback / private / metadata addresses are
//! refused when saved and when sent (a receiver on loopback is never reached).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_actors::connect::SimConnector;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::both;
use crate::inventory::link_sim;
use crate::support::{assert_error, test_config, Backend, Session, TestApp};

// ---------------------------------------------------------------------------------------
// A webhook receiver: answers the queued statuses in order (then `fallback`), records
// every request body.

#[derive(Clone)]
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start(statuses: &[u16], fallback: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/services/T0/B0/secret",
            listener.local_addr().expect("addr")
        );
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let queue = Arc::new(Mutex::new(
            statuses.iter().copied().collect::<VecDeque<u16>>(),
        ));
        let b = bodies.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (b, q) = (b.clone(), queue.clone());
                tokio::spawn(async move {
                    let mut r = BufReader::new(sock);
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    b.lock()
                        .expect("lock")
                        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    let code = q.lock().expect("lock").pop_front().unwrap_or(fallback);
                    let resp = format!(
                        "HTTP/1.1 {code} X\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
                    );
                    let _ = r.get_mut().write_all(resp.as_bytes()).await;
                });
            }
        });
        Receiver { url, bodies }
    }

    fn count(&self) -> usize {
        self.bodies.lock().expect("lock").len()
    }
}

// ---------------------------------------------------------------------------------------
// An SMTP sink speaking just enough SMTP; records (recipients, message) per DATA.

#[derive(Clone)]
struct SmtpSink {
    url: String,
    messages: Arc<Mutex<Vec<(Vec<String>, String)>>>,
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("smtp://{}", listener.local_addr().expect("addr"));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let m = messages.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let m = m.clone();
                tokio::spawn(async move {
                    let mut r = BufReader::new(sock);
                    let _ = r.get_mut().write_all(b"220 sink ESMTP ready\r\n").await;
                    let mut rcpt = Vec::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let cmd = line.trim_end().to_string();
                        let upper = cmd.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO")
                        {
                            b"250 sink\r\n"
                        } else if upper.starts_with("MAIL FROM") {
                            rcpt.clear();
                            b"250 ok\r\n"
                        } else if upper.starts_with("RCPT TO") {
                            rcpt.push(
                                cmd[8..]
                                    .trim()
                                    .trim_matches(|c| c == '<' || c == '>')
                                    .to_string(),
                            );
                            b"250 ok\r\n"
                        } else if upper == "DATA" {
                            let _ = r.get_mut().write_all(b"354 go ahead\r\n").await;
                            let mut data = String::new();
                            loop {
                                let mut l = String::new();
                                if r.read_line(&mut l).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if l == ".\r\n" || l == ".\n" {
                                    break;
                                }
                                data.push_str(if l.starts_with("..") { &l[1..] } else { &l });
                            }
                            m.lock().expect("lock").push((rcpt.clone(), data));
                            b"250 queued\r\n"
                        } else if upper == "QUIT" {
                            let _ = r.get_mut().write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"250 ok\r\n"
                        };
                        if r.get_mut().write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SmtpSink { url, messages }
    }

    fn messages(&self) -> Vec<(Vec<String>, String)> {
        self.messages.lock().expect("lock").clone()
    }
}

/// Quoted-printable soft breaks and escapes undone (what a mail reader shows).
fn decode_qp(s: &str) -> String {
    let joined = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            if let Ok(v) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fast_config() -> spot_api::ServerConfig {
    let mut cfg = test_config();
    cfg.notify_poll_ms = 100;
    cfg.notify_retry_base_ms = 20;
    cfg.notify_max_attempts = 4;
    // The receivers here listen on loopback: an on-premises setup.
    cfg.allow_private_webhooks = true;
    cfg
}

async fn put_settings(app: &TestApp, s: &Session, body: Value) -> (StatusCode, Value) {
    app.json(
        Method::PUT,
        "/api/org/notifications",
        Some(&s.access),
        Some(body),
    )
    .await
}

/// Polls a notification until it is closed.
async fn wait_closed(app: &TestApp, s: &Session, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = app
            .json(
                Method::GET,
                &format!("/api/org/notifications/deliveries/{id}"),
                Some(&s.access),
                None,
            )
            .await
            .1;
        if !matches!(last["status"].as_str(), Some("pending" | "sending") | None) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("notification {id} never closed: {last}");
}

async fn send_test(app: &TestApp, s: &Session) -> Value {
    let (st, n) = app
        .json(
            Method::POST,
            "/api/org/notifications/test",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{n}");
    assert_eq!(n["kind"], "test");
    wait_closed(app, s, n["id"].as_str().expect("id")).await
}

async fn audit_actions(app: &TestApp, org: &str, action: &str) -> Vec<(String, String)> {
    sqlx::query_as::<_, (String, String)>(
        "SELECT actor_kind, COALESCE(resource_id, '') FROM audit_logs WHERE organization_id = $1 AND action = $2",
    )
    .bind(org)
    .bind(action)
    .fetch_all(&app.db.pool)
    .await
    .expect("audit rows")
}

async fn webhook_retries_then_succeeds_and_failures_are_recorded(b: Backend) {
    let app = TestApp::start_with(b, fast_config()).await;
    let s = app.signup("Hooks").await;
    // Two transient failures, then success: three attempts, each recorded.
    let flaky = Receiver::start(&[503, 500], 200).await;
    let (st, v) = put_settings(&app, &s, json!({"webhook_url": flaky.url})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["webhook_url"], flaky.url.as_str());
    assert_eq!(v["email_configured"], false);
    let n = send_test(&app, &s).await;
    assert_eq!(n["status"], "delivered", "{n}");
    let a = n["attempts"].as_array().expect("attempts");
    let seen: Vec<(String, i64)> = a
        .iter()
        .map(|x| {
            (
                x["outcome"].as_str().unwrap_or("").to_string(),
                x["status_code"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("retry".into(), 503),
            ("retry".into(), 500),
            ("success".into(), 200)
        ],
        "{n}"
    );
    assert!(a.iter().all(|x| x["channel"] == "webhook"));
    // The recorded target hides the secret path.
    assert!(
        !a[0]["target"].as_str().unwrap_or("").contains("secret"),
        "{n}"
    );
    assert_eq!(flaky.count(), 3);
    let body = flaky.bodies.lock().expect("lock")[2].clone();
    assert!(
        body["text"]
            .as_str()
            .unwrap_or("")
            .contains("test notification"),
        "{body}"
    );
    assert_eq!(body["spot_optimizer"]["kind"], "test");
    // A permanent answer (404) is recorded once and not retried.
    let gone = Receiver::start(&[], 404).await;
    put_settings(&app, &s, json!({"webhook_url": gone.url})).await;
    let n = send_test(&app, &s).await;
    assert_eq!(n["status"], "failed", "{n}");
    assert_eq!(n["attempts"].as_array().map(Vec::len), Some(1), "{n}");
    assert_eq!(n["attempts"][0]["outcome"], "failed");
    assert_eq!(n["attempts"][0]["status_code"], 404);
    assert!(
        n["summary"].as_str().unwrap_or("").contains("permanently"),
        "{n}"
    );
    assert_eq!(gone.count(), 1);
    // A receiver that keeps failing: the bounded attempts, then failed.
    let down = Receiver::start(&[], 503).await;
    put_settings(&app, &s, json!({"webhook_url": down.url})).await;
    let n = send_test(&app, &s).await;
    assert_eq!(n["status"], "failed", "{n}");
    let outcomes: Vec<&str> = n["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|x| x["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(outcomes, vec!["retry", "retry", "retry", "failed"], "{n}");
    assert_eq!(down.count(), 4);
    // E-mail recipients without SMTP on the server: recorded as skipped, nothing sent.
    put_settings(&app, &s, json!({"email_recipients": ["ops@example.com"]})).await;
    let n = send_test(&app, &s).await;
    assert_eq!(n["status"], "failed", "{n}");
    assert_eq!(n["attempts"][0]["outcome"], "skipped");
    assert!(
        n["summary"]
            .as_str()
            .unwrap_or("")
            .contains("not configured"),
        "{n}"
    );
    // The list shows all four, newest first; every send is audited as `system`.
    let (_, list) = app
        .json(
            Method::GET,
            "/api/org/notifications/deliveries?kind=test",
            Some(&s.access),
            None,
        )
        .await;
    let statuses: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|x| x["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        vec!["failed", "failed", "failed", "delivered"],
        "{list}"
    );
    let delivered = audit_actions(&app, &s.org_id, "notification.delivered").await;
    let failed = audit_actions(&app, &s.org_id, "notification.failed").await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(failed.len(), 3);
    assert!(delivered.iter().chain(&failed).all(|(k, _)| k == "system"));
}
both!(webhook_retries_then_succeeds_and_failures_are_recorded);

async fn settings_are_validated_and_scoped(b: Backend) {
    let app = TestApp::start_with(b, fast_config()).await;
    let s = app.signup("Scoped").await;
    let viewer = app.add_member(&s, "viewer").await;
    let other = app.signup("Other").await;
    // Defaults.
    let (st, v) = app
        .json(
            Method::GET,
            "/api/org/notifications",
            Some(&viewer.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["webhook_configured"], false);
    assert_eq!(v["pre_sleep_enabled"], true);
    assert_eq!(v["weekly_report_enabled"], true);
    // Field-named 422s.
    for (body, field) in [
        (json!({"webhook_url": "ftp://example.com/x"}), "webhook_url"),
        (json!({"webhook_url": "not a url"}), "webhook_url"),
        (
            json!({"webhook_url": "https://user:pw@example.com/x"}),
            "webhook_url",
        ),
        (
            json!({"webhook_url": format!("https://example.com/{}", "a".repeat(2100))}),
            "webhook_url",
        ),
        (
            json!({"email_recipients": ["ops@example.com", "nope"]}),
            "email_recipients",
        ),
        (
            json!({"email_recipients": (0..21).map(|i| format!("u{i}@example.com")).collect::<Vec<_>>()}),
            "email_recipients",
        ),
        (json!({"pre_sleep_enabled": "yes"}), "pre_sleep_enabled"),
        (json!({"webhook": "https://example.com"}), "webhook"),
    ] {
        let (st, v) = put_settings(&app, &s, body.clone()).await;
        let e = assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["error"]["field"], field, "{body} -> {v}");
    }
    let (st, v) = put_settings(
        &app,
        &s,
        json!({"webhook_url": "https://hooks.example.com/services/T/B/secret", "email_recipients": ["Ops@Example.com", "ops@example.com"], "pre_sleep_enabled": false}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["email_recipients"], json!(["ops@example.com"]));
    assert_eq!(v["pre_sleep_enabled"], false);
    // Viewers read the settings (the webhook's secret path hidden) and change nothing.
    let (_, v) = app
        .json(
            Method::GET,
            "/api/org/notifications",
            Some(&viewer.access),
            None,
        )
        .await;
    assert_eq!(v["webhook_url"], "https://hooks.example.com/…");
    for (m, path, body) in [
        (Method::PUT, "/api/org/notifications", Some(json!({}))),
        (Method::POST, "/api/org/notifications/test", None),
        (Method::POST, "/api/reports", None),
    ] {
        let (st, v) = app.json(m, path, Some(&viewer.access), body).await;
        assert_error(st, &v, StatusCode::FORBIDDEN);
    }
    // Another organization sees none of it.
    let (st, n) = app
        .json(
            Method::POST,
            "/api/org/notifications/test",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, r) = app
        .json(Method::POST, "/api/reports", Some(&s.access), None)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    for path in [
        format!(
            "/api/org/notifications/deliveries/{}",
            n["id"].as_str().expect("id")
        ),
        format!("/api/reports/{}", r["id"].as_str().expect("id")),
    ] {
        let (st, v) = app
            .json(Method::GET, &path, Some(&other.access), None)
            .await;
        assert_error(st, &v, StatusCode::NOT_FOUND);
    }
    let (_, v) = app
        .json(
            Method::GET,
            "/api/org/notifications/deliveries",
            Some(&other.access),
            None,
        )
        .await;
    assert_eq!(v["items"], json!([]));
    let (_, v) = app
        .json(Method::GET, "/api/reports", Some(&other.access), None)
        .await;
    assert_eq!(v["items"], json!([]));
    let (_, v) = app
        .json(
            Method::GET,
            "/api/org/notifications",
            Some(&other.access),
            None,
        )
        .await;
    assert_eq!(v["webhook_configured"], false);
    // Bad query values are named too.
    let (st, v) = app
        .json(
            Method::GET,
            "/api/org/notifications/deliveries?kind=spam",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "kind"
    );
}
both!(settings_are_validated_and_scoped);

fn money(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let mut s = (cents / 100).to_string();
    let mut i = s.len() as i64 - 3;
    while i > 0 {
        s.insert(i as usize, ',');
        i -= 3;
    }
    format!("${s}.{:02}", cents % 100)
}

async fn wait_messages(sink: &SmtpSink, n: usize) -> Vec<(Vec<String>, String)> {
    for _ in 0..150 {
        let m = sink.messages();
        if m.len() >= n {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the SMTP sink received {} messages, wanted {n}",
        sink.messages().len()
    );
}

async fn the_weekly_report_carries_the_dashboard_figures_by_email(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut cfg = fast_config();
    cfg.smtp_url = Some(sink.url.clone());
    let app = TestApp::start_with(b, cfg).await;
    let s = app.signup("Reporting").await;
    link_sim(&app, &s, "210987654321", "Prod").await;
    let (st, v) = put_settings(
        &app,
        &s,
        json!({"email_recipients": ["finops@example.com", "cto@example.com"]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["email_configured"], true);
    // A grade stored for last week makes a trend.
    let this_week = spot_api::report::week_start(chrono::Utc::now());
    let last_week = (this_week - chrono::Duration::days(7)).timestamp_millis();
    spot_models::notify::record_grade(&app.db, &s.org_id, last_week, Some(0.0), Some("F"))
        .await
        .expect("grade");
    let (_, kpis) = app
        .json(Method::GET, "/api/dashboard/kpis", Some(&s.access), None)
        .await;
    let (st, r) = app
        .json(Method::POST, "/api/reports", Some(&s.access), None)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let f = &r["figures"];
    assert_eq!(r["kind"], "manual");
    assert!(
        kpis["monthly_spend"].as_f64().unwrap_or(0.0) > 0.0,
        "{kpis}"
    );
    let close = |a: &Value, b: &Value| {
        (a.as_f64().unwrap_or(-1.0) - b.as_f64().unwrap_or(-2.0)).abs() < 0.01
    };
    assert!(
        close(&f["monthly_spend"], &kpis["monthly_spend"]),
        "{f} vs {kpis}"
    );
    assert!(
        close(&f["potential_savings"], &kpis["potential_savings"]),
        "{f} vs {kpis}"
    );
    assert_eq!(f["efficiency_grade"], kpis["efficiency_grade"]);
    assert_eq!(f["clusters"], kpis["clusters"]);
    // Spend and savings are the dashboard's hourly series summed over the week.
    let (_, series) = app
        .json(
            Method::GET,
            "/api/dashboard/savings?days=7",
            Some(&s.access),
            None,
        )
        .await;
    let pts = series["points"].as_array().expect("points");
    let spend: f64 = pts
        .iter()
        .map(|p| p["actual_hourly"].as_f64().unwrap_or(0.0))
        .sum();
    assert!(spend > 0.0, "{series}");
    assert!(
        (f["spend"].as_f64().unwrap_or(0.0) - spend).abs() < 0.01,
        "{f} vs {spend}"
    );
    // The trend: last week's F, this week's grade.
    let trend = f["grade_trend"].as_array().expect("trend");
    assert_eq!(trend.len(), 2, "{f}");
    assert_eq!(trend[0]["grade"], "F");
    assert_eq!(trend[1]["grade"], kpis["efficiency_grade"]);
    let want_trend = if kpis["efficiency_grade"] == "F" {
        "steady"
    } else {
        "improving"
    };
    if kpis["efficiency_score"].as_f64().is_some() {
        assert_eq!(f["trend"], want_trend, "{f}");
    }
    // The e-mail: both recipients, the figures in the text part.
    let msgs = wait_messages(&sink, 1).await;
    let (to, data) = &msgs[0];
    assert_eq!(to.len(), 2, "{to:?}");
    assert!(to.contains(&"finops@example.com".to_string()));
    let text = decode_qp(data);
    for want in [
        money(f["monthly_spend"].as_f64().unwrap_or(0.0)),
        money(f["spend"].as_f64().unwrap_or(0.0)),
        money(f["savings"].as_f64().unwrap_or(0.0)),
        format!(
            "Efficiency grade: {}",
            f["efficiency_grade"].as_str().unwrap_or("-")
        ),
    ] {
        assert!(text.contains(&want), "{want} not in the e-mail:\n{text}");
    }
    assert!(text.contains("text/html"), "no HTML part:\n{text}");
    // Stored and listed; the delivery is recorded.
    let id = r["id"].as_str().expect("id");
    let n = wait_closed(
        &app,
        &s,
        r["notification_id"].as_str().expect("notification"),
    )
    .await;
    assert_eq!(n["status"], "delivered", "{n}");
    assert_eq!(n["attempts"][0]["channel"], "email");
    let (_, one) = app
        .json(
            Method::GET,
            &format!("/api/reports/{id}"),
            Some(&s.access),
            None,
        )
        .await;
    assert!(one["html"]
        .as_str()
        .unwrap_or("")
        .contains("Weekly report for Reporting"));
    assert_eq!(one["delivery_status"], "delivered");
    // The weekly job: once per organization and week, audited as `system`.
    let next_week = chrono::Utc::now() + chrono::Duration::days(7);
    let made = spot_api::report::schedule_once(&app.db, next_week)
        .await
        .expect("schedule");
    assert_eq!(made, 1);
    let again = spot_api::report::schedule_once(&app.db, next_week)
        .await
        .expect("schedule");
    assert_eq!(again, 0);
    let (_, list) = app
        .json(Method::GET, "/api/reports", Some(&s.access), None)
        .await;
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|x| x["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, vec!["scheduled", "manual"], "{list}");
    let audited = audit_actions(&app, &s.org_id, "report.weekly_generated").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].0, "system");
    wait_messages(&sink, 2).await;
    assert_eq!(sink.messages().len(), 2);
}
both!(the_weekly_report_carries_the_dashboard_figures_by_email);

async fn the_pre_sleep_notice_is_sent_once(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let cfg = fast_config();
    let app = TestApp::start_with_connector_config(b, sim.clone(), cfg.clone()).await;
    let s = app.signup("Sleepy").await;
    link_sim(&app, &s, "123456789012", "Dev").await;
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    let c = clusters["items"][0].clone();
    let (id, name, account) = (
        c["id"].as_str().expect("id").to_string(),
        c["name"].as_str().expect("name").to_string(),
        c["account_id"].as_str().expect("account").to_string(),
    );
    let hook = Receiver::start(&[], 200).await;
    put_settings(&app, &s, json!({"webhook_url": hook.url})).await;
    // Asleep around the clock, but awake by hand for ten more minutes: the sleep at the end
    // of the manual wake is 10 minutes away.
    let sleep_at = chrono::Utc::now() + chrono::Duration::minutes(10);
    let default = spot_models::hibernation::NewSchedule {
        enabled: true,
        slots: &"0".repeat(168),
        timezone: "Europe/Berlin",
        prewarm_minutes: 0,
        holidays: "[]",
        overrides: "[]",
        node_groups: "[]",
        protected_namespaces: "[]",
        updated_by: None,
    };
    spot_models::hibernation::save_schedule(&app.db, &s.org_id, &id, &default)
        .await
        .expect("schedule");
    spot_models::hibernation::set_manual(
        &app.db,
        &s.org_id,
        &id,
        Some("awake"),
        Some(sleep_at.timestamp_millis()),
        Some(&s.user_id),
        &default,
    )
    .await
    .expect("manual");
    app.state.actors.hibernate_soon(&account, &name);
    let mut notice = Value::Null;
    for _ in 0..150 {
        let (_, v) = app
            .json(
                Method::GET,
                "/api/org/notifications/deliveries?kind=pre_sleep",
                Some(&s.access),
                None,
            )
            .await;
        if v["items"][0]["status"] == "delivered" {
            notice = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        notice["items"].as_array().map(Vec::len),
        Some(1),
        "{notice}"
    );
    let n = &notice["items"][0];
    assert_eq!(n["created_by"], "system");
    assert!(n["subject"].as_str().unwrap_or("").contains(&name), "{n}");
    let body = hook.bodies.lock().expect("lock")[0].clone();
    assert_eq!(body["spot_optimizer"]["kind"], "pre_sleep");
    assert_eq!(body["spot_optimizer"]["data"]["cluster_id"], id.as_str());
    let at: chrono::DateTime<chrono::Utc> = body["spot_optimizer"]["data"]["sleep_at"]
        .as_str()
        .expect("sleep_at")
        .parse()
        .expect("time");
    assert_eq!(at.timestamp_millis(), sleep_at.timestamp_millis());
    // Further ticks, and a restart on another replica, do not repeat it.
    app.state.actors.hibernate_soon(&account, &name);
    tokio::time::sleep(spot_actors::hibernation::TICK + Duration::from_secs(2)).await;
    app.state
        .actors
        .shutdown_and_release(Duration::from_secs(5))
        .await;
    let replica = spot_api::AppState::build(
        app.db.clone(),
        cfg,
        spot_api::state::StateOptions {
            connector: Some(sim.clone() as Arc<dyn spot_actors::connect::CloudConnector>),
            redis_url: None,
        },
    )
    .await
    .expect("replica");
    replica.actors.hibernate_soon(&account, &name);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, v) = app
        .json(
            Method::GET,
            "/api/org/notifications/deliveries?kind=pre_sleep",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(hook.count(), 1);
    let queued = audit_actions(&app, &s.org_id, "notification.pre_sleep_queued").await;
    assert_eq!(queued, vec![("system".to_string(), id.clone())]);
    // The cluster is still awake (the notice changes nothing).
    let (_, st) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{id}/hibernation/state"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st["state"], "awake", "{st}");
    replica.actors.shutdown();
}
both!(the_pre_sleep_notice_is_sent_once);

async fn private_webhooks_are_refused_when_saved_and_when_sent(b: Backend) {
    // The default server: private webhooks are not allowed.
    let mut cfg = fast_config();
    cfg.allow_private_webhooks = false;
    let app = TestApp::start_with(b, cfg).await;
    let s = app.signup("Guarded").await;
    let receiver = Receiver::start(&[], 200).await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .and_then(|r| r.split('/').next())
        .expect("port")
        .to_string();
    for url in [
        receiver.url.clone(),
        format!("http://localhost:{port}/services/T0/B0/secret"),
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_string(),
        "http://10.0.0.8/hook".to_string(),
        "http://192.168.1.20:8080/hook".to_string(),
        "http://172.20.0.1/hook".to_string(),
        "http://[::1]:8080/hook".to_string(),
        "http://[fd00:ec2::254]/latest".to_string(),
        "http://[fe80::1]/hook".to_string(),
        "http://[::ffff:127.0.0.1]/hook".to_string(),
        "http://0x7f.1/hook".to_string(),
        "http://api.localhost/hook".to_string(),
    ] {
        let (st, v) = put_settings(&app, &s, json!({ "webhook_url": url })).await;
        let e = assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["error"]["field"], "webhook_url", "{url} -> {v}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("public address"),
            "{url} -> {v}"
        );
    }
    let (_, v) = app
        .json(Method::GET, "/api/org/notifications", Some(&s.access), None)
        .await;
    assert_eq!(v["webhook_configured"], false, "{v}");
    // A public address is accepted.
    let (st, v) = put_settings(
        &app,
        &s,
        json!({"webhook_url": "https://93.184.215.14/services/T/B/secret"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // A webhook stored before (or re-pointed since) is checked again at send time: the
    // loopback receiver is never contacted and the failure says why, once (not retried).
    for url in [
        receiver.url.clone(),
        format!("http://localhost:{port}/services/T0/B0/secret"),
    ] {
        spot_models::notify::save_settings(
            &app.db,
            &s.org_id,
            &spot_models::notify::NewSettings {
                webhook_url: Some(&url),
                email_recipients: "[]",
                pre_sleep_enabled: true,
                weekly_report_enabled: true,
                updated_by: None,
            },
        )
        .await
        .expect("stored");
        let n = send_test(&app, &s).await;
        assert_eq!(n["status"], "failed", "{n}");
        let a = n["attempts"].as_array().expect("attempts");
        assert_eq!(a.len(), 1, "{n}");
        assert_eq!(a[0]["outcome"], "failed");
        let err = a[0]["error"].as_str().unwrap_or("");
        assert!(err.starts_with("refused:"), "{n}");
        assert!(err.contains("loopback"), "{n}");
        assert!(
            n["summary"].as_str().unwrap_or("").contains("refused"),
            "{n}"
        );
    }
    assert_eq!(receiver.count(), 0, "the private receiver was reached");
    assert_eq!(
        audit_actions(&app, &s.org_id, "notification.failed")
            .await
            .len(),
        2
    );
}
both!(private_webhooks_are_refused_when_saved_and_when_sent);
