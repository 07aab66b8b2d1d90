//! The super-admin console beyond the registry: live operations (KPIs and the decision
//! funnel from stored data), the live log stream (redaction, level filter, SSE), the purge of
//! soft-deleted organizations after the retention period, organizations created by invite,
//! the profile with re-authentication, password reset, and 403 for customers everywhere.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_models::audit::{self, NewAuditRecord};
use spot_models::now_ms;

use crate::both;
use crate::inventory::link_sim;
use crate::risk::super_admin;
use crate::support::{assert_error, test_config, Backend, TestApp, PASSWORD};

const DAY_MS: i64 = 24 * 3600 * 1000;
const ADMIN_EMAIL: &str = "root@platform.example.com";

async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    app.json(
        Method::POST,
        "/api/auth/token",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

async fn token(app: &TestApp, email: &str, password: &str) -> String {
    let (st, t) = login(app, email, password).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    t["access_token"].as_str().expect("token").to_string()
}

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.json(Method::GET, "/api/auth/me", Some(token), None)
        .await
        .0
}

#[allow(clippy::too_many_arguments)]
async fn insert_job(
    app: &TestApp,
    org: &str,
    kind: &str,
    status: &str,
    message: &str,
    plan: Option<Value>,
    created_at: i64,
) {
    sqlx::query(
        "INSERT INTO jobs (id, organization_id, kind, target_id, status, progress, message, dry_run, plan, created_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, 0, $7, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(org)
    .bind(kind)
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(status)
    .bind(message)
    .bind(plan.map(|p| p.to_string()))
    .bind(created_at)
    .execute(&app.db.pool)
    .await
    .expect("insert job");
}

fn action(kind: &str, target: &str) -> Value {
    json!({"kind": kind, "target": target, "reason": "cheaper", "expected_monthly_savings": 10.0})
}

fn plan(actions: usize, blocked: &[&str]) -> Value {
    json!({
        "version": 1,
        "generated_at": 0,
        "actions": (0..actions).map(|i| action("ReplaceWithSpot", &format!("node-{i}"))).collect::<Vec<_>>(),
        "blocked": blocked.iter().enumerate().map(|(i, r)| json!({"action": action("Drain", &format!("b-{i}")), "reason": r})).collect::<Vec<_>>(),
        "expected_monthly_savings": 10.0 * actions as f64,
    })
}

async fn executor_record(app: &TestApp, org: &str, action: &str, outcome: &str, detail: Value) {
    audit::append(
        &app.db,
        NewAuditRecord {
            organization_id: Some(org.to_string()),
            actor_kind: "system".into(),
            actor_component: Some("CORE-JOBS".into()),
            action: action.into(),
            resource_type: "job".into(),
            resource_id: Some("job-1".into()),
            outcome: outcome.into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            after: Some(json!({"job_id": "job-1", "target_id": "c", "detail": detail})),
            ..Default::default()
        },
    )
    .await
    .expect("audit");
}

async fn pool(app: &TestApp, az: &str, degraded: bool, scored_at: i64) {
    sqlx::query(
        "INSERT INTO pool_risk (region, az, instance_type, probability, confidence, action, model, degraded, scored_at) \
         VALUES ('us-east-1', $1, 'm5.large', 0.1, 0.9, 'keep', 'test', $2, $3)",
    )
    .bind(az)
    .bind(i64::from(degraded))
    .bind(scored_at)
    .execute(&app.db.pool)
    .await
    .expect("pool");
}

fn reasons(v: &Value) -> Vec<(String, i64)> {
    v.as_array()
        .expect("reasons")
        .iter()
        .map(|r| {
            (
                r["reason"].as_str().expect("reason").to_string(),
                r["count"].as_i64().expect("count"),
            )
        })
        .collect()
}

async fn funnel_counts_come_from_jobs_plans_and_audit(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;
    let org = app.signup("Funnel").await;
    let now = now_ms();
    // Scored pools: three in the window (one by the static fallback), one two days ago.
    pool(&app, "us-east-1a", false, now - 60_000).await;
    pool(&app, "us-east-1b", false, now - 120_000).await;
    pool(&app, "us-east-1c", true, now - 180_000).await;
    pool(&app, "us-east-1d", false, now - 2 * DAY_MS).await;
    // Decision jobs: two plans, one failure before planning, one queued, one out of window.
    let pdb = "PodDisruptionBudget allows no eviction";
    let maint = "maintenance mode: automated actions are paused";
    insert_job(
        &app,
        &org.org_id,
        "optimize",
        "succeeded",
        "done",
        Some(plan(3, &[pdb, pdb])),
        now - 1000,
    )
    .await;
    insert_job(
        &app,
        &org.org_id,
        "force_on_demand",
        "succeeded",
        "done",
        Some(plan(1, &[maint])),
        now - 2000,
    )
    .await;
    insert_job(
        &app,
        &org.org_id,
        "optimize",
        "failed",
        "cloud unreachable",
        None,
        now - 3000,
    )
    .await;
    insert_job(
        &app,
        &org.org_id,
        "optimize",
        "queued",
        "queued",
        None,
        now - 500,
    )
    .await;
    insert_job(
        &app,
        &org.org_id,
        "optimize",
        "succeeded",
        "old",
        Some(plan(5, &[pdb])),
        now - 2 * DAY_MS,
    )
    .await;
    // A job of another kind never counts.
    insert_job(
        &app,
        &org.org_id,
        "waste_cleanup",
        "succeeded",
        "x",
        Some(plan(9, &[pdb])),
        now,
    )
    .await;
    // The executor's records.
    for status in ["applied", "applied", "would_execute", "skipped"] {
        executor_record(
            &app,
            &org.org_id,
            "optimize.action",
            "success",
            json!({"status": status}),
        )
        .await;
    }
    executor_record(
        &app,
        &org.org_id,
        "force_on_demand.action",
        "failed",
        json!({"error": "no spot capacity in us-east-1a"}),
    )
    .await;

    let (st, v) = app
        .json(Method::GET, "/api/admin/operations", Some(&admin), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["window_hours"], 24);
    let f = &v["funnel"];
    assert_eq!(f["pools_scored"], 3, "{f}");
    assert_eq!(f["pools_degraded"], 1);
    assert_eq!(
        f["jobs"], 4,
        "optimize + force on-demand jobs created in the window: {f}"
    );
    assert_eq!(f["candidates"], 7, "{f}");
    assert_eq!(f["planned"], 4);
    assert_eq!(f["blocked"], 3);
    assert_eq!(f["executed"], 2);
    assert_eq!(f["dry_run"], 1);
    assert_eq!(f["skipped"], 1);
    assert_eq!(
        f["failed"], 2,
        "one failed action, one job failed before planning"
    );
    assert_eq!(
        reasons(&f["blocked_reasons"]),
        vec![(pdb.to_string(), 2), (maint.to_string(), 1)]
    );
    let failed = reasons(&f["failed_reasons"]);
    assert!(
        failed.contains(&("no spot capacity in us-east-1a".to_string(), 1)),
        "{failed:?}"
    );
    assert!(
        failed.contains(&(
            "job failed before planning: cloud unreachable".to_string(),
            1
        )),
        "{failed:?}"
    );
    let steps: Vec<(String, i64)> = f["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["step"].as_str().expect("step").to_string(),
                s["count"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("pools_scored".into(), 3),
            ("candidates".into(), 7),
            ("planned".into(), 4),
            ("executed".into(), 2),
            ("failed".into(), 2),
            ("blocked".into(), 3),
        ]
    );
    let k = &v["kpis"];
    assert!(
        (k["decisions_per_hour"].as_f64().expect("rate") - 7.0 / 24.0).abs() < 1e-9,
        "{k}"
    );
    assert_eq!(k["decisions_last_hour"], 7);
    // Stages.
    let stage = |name: &str| {
        v["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .find(|s| s["stage"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("stage {name} in {v}"))
    };
    let planning = stage("planning");
    assert_eq!(planning["queued"], 1, "{planning}");
    assert_eq!(planning["processed"], 2);
    assert_eq!(planning["failed"], 1);
    assert_eq!(planning["status"], "ok");
    let scoring = stage("scoring");
    assert_eq!(scoring["processed"], 3);
    assert_eq!(scoring["failed"], 1);
    let execution = stage("execution");
    assert_eq!(execution["processed"], 4);
    assert_eq!(execution["failed"], 1);
    for s in v["stages"].as_array().expect("stages") {
        assert!(
            ["green", "yellow", "red"].contains(&s["light"].as_str().unwrap_or("")),
            "{s}"
        );
    }

    // A wider window reaches the old job and pool.
    let (_, wide) = app
        .json(
            Method::GET,
            "/api/admin/operations?hours=72",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(wide["funnel"]["pools_scored"], 4);
    assert_eq!(wide["funnel"]["candidates"], 13);
    assert_eq!(wide["funnel"]["blocked_reasons"][0]["count"], 3);
    for bad in ["0", "721", "x"] {
        let (st, e) = app
            .json(
                Method::GET,
                &format!("/api/admin/operations?hours={bad}"),
                Some(&admin),
                None,
            )
            .await;
        assert!(
            st == StatusCode::UNPROCESSABLE_ENTITY || st == StatusCode::BAD_REQUEST,
            "{bad}: {st} {e}"
        );
        assert!(e.to_string().contains("hours"), "{e}");
    }
}
both!(funnel_counts_come_from_jobs_plans_and_audit);

async fn kpis_sum_the_live_organizations(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;
    let acme = app.signup("Acme").await;
    link_sim(&app, &acme, "123456789012", "Prod").await;
    let blocked = app.signup("Blocked").await;
    let gone = app.signup("Gone").await;
    link_sim(&app, &gone, "210987654321", "Gone prod").await;
    let (st, _) = app
        .json(
            Method::POST,
            &format!("/api/admin/clients/{}/block", blocked.org_id),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = app
        .json(
            Method::DELETE,
            &format!("/api/admin/clients/{}", gone.org_id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);

    let (_, reg) = app
        .json(Method::GET, "/api/admin/clients", Some(&admin), None)
        .await;
    let items = reg["items"].as_array().expect("items").clone();
    let (st, v) = app
        .json(Method::GET, "/api/admin/operations", Some(&admin), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let k = &v["kpis"];
    // The platform's own organization, Acme and Blocked; Gone is soft-deleted.
    assert_eq!(k["organizations"], 3, "{k}");
    assert_eq!(k["blocked_organizations"], 1);
    assert_eq!(k["deleted_organizations"], 1);
    assert_eq!(items.len(), 3);
    for key in ["accounts", "clusters", "nodes"] {
        let sum: i64 = items.iter().map(|c| c[key].as_i64().expect("n")).sum();
        assert_eq!(k[key].as_i64(), Some(sum), "{key}: {k}");
    }
    assert_eq!(k["accounts"], 1, "Gone's account is not counted: {k}");
    assert!(k["clusters"].as_i64().expect("clusters") >= 3);
    assert!(k["nodes"].as_i64().expect("nodes") > 0);
    for key in ["monthly_spend", "monthly_savings"] {
        let sum: f64 = items.iter().map(|c| c[key].as_f64().expect("x")).sum();
        let got = k[key].as_f64().expect("kpi");
        assert!(
            sum > 0.0 && (got - sum).abs() < 1e-6,
            "{key}: {got} vs {sum}"
        );
    }
}
both!(kpis_sum_the_live_organizations);

/// Reads server-sent events until one whose data contains `needle` (or the deadline).
async fn sse_until(mut resp: reqwest::Response, needle: &str) -> Option<Value> {
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .ok()?
            .ok()??;
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            for line in event.lines() {
                if let Some(data) = line.strip_prefix("data: ") {
                    if data.contains(needle) {
                        return serde_json::from_str(data).ok();
                    }
                }
            }
        }
    }
}

async fn log_stream_redacts_secrets_and_filters_levels(b: Backend) {
    spot_api::logs::try_init_global();
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;
    let customer = app.signup("Customer").await;
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let jwt = customer.access.clone();
    tracing::info!(component = "TEST", "info {marker} plain");
    tracing::warn!(
        component = "TEST",
        password = "hunter2hunter2",
        "warn {marker} Authorization: Bearer {jwt} key AKIAIOSFODNN7EXAMPLE secret=s3cr3tvalue"
    );

    let (st, v) = app
        .json(
            Method::GET,
            "/api/admin/logs?level=warn&limit=2000",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let mine: Vec<&Value> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|l| l["message"].as_str().unwrap_or("").contains(&marker))
        .collect();
    assert_eq!(
        mine.len(),
        1,
        "only the WARN line passes level=warn: {mine:?}"
    );
    let line = mine[0];
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["component"], "TEST");
    let text = line.to_string();
    for secret in [
        &jwt[..],
        "AKIAIOSFODNN7EXAMPLE",
        "s3cr3tvalue",
        "hunter2hunter2",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(line["fields"]["password"], "[REDACTED]");
    let (_, all) = app
        .json(
            Method::GET,
            "/api/admin/logs?level=debug&limit=2000",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        all["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|l| l["message"].as_str().unwrap_or("").contains(&marker))
            .count(),
        2
    );
    // The server's own request lines are captured with their span fields.
    assert!(all["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|l| l["component"] == "CORE-API" && l["fields"]["path"] == "/api/admin/logs"));

    // Live: the stream delivers new lines, redacted, at the chosen level.
    let resp = app
        .http
        .get(app.url(&format!(
            "/api/admin/logs/stream?level=warn&access_token={admin}"
        )))
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status(), StatusCode::OK);
    let live = format!("live-{marker}");
    let emitter = {
        let live = live.clone();
        let jwt = jwt.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                tracing::info!("{live} info-level");
                tracing::error!("{live} error Bearer {jwt} password: topsecret99");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        })
    };
    let got = sse_until(resp, &live).await.expect("a live line");
    emitter.abort();
    assert_eq!(got["level"], "ERROR", "{got}");
    let text = got.to_string();
    assert!(
        !text.contains(&jwt[..]) && !text.contains("topsecret99"),
        "{text}"
    );

    // A reset link printed to the log keeps its token out of the stream.
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/password-reset",
            None,
            Some(json!({"email": customer.email})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, v) = app
        .json(
            Method::GET,
            "/api/admin/logs?level=info&limit=2000",
            Some(&admin),
            None,
        )
        .await;
    let reset = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .rev()
        .find(|l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("password reset link for {}", customer.email))
        })
        .cloned()
        .expect("reset line");
    let msg = reset["message"].as_str().expect("message");
    assert!(msg.contains("token=[REDACTED]"), "{msg}");

    // Bad filters are named; customers are refused.
    for path in ["/api/admin/logs?level=loud", "/api/admin/logs?limit=0"] {
        let (st, e) = app.json(Method::GET, path, Some(&admin), None).await;
        assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = app
        .http
        .get(app.url(&format!(
            "/api/admin/logs/stream?access_token={}",
            customer.access
        )))
        .send()
        .await
        .expect("stream");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (st, _) = app
        .json(Method::GET, "/api/admin/logs/changes", Some(&admin), None)
        .await;
    assert_eq!(st, StatusCode::OK);
}
both!(log_stream_redacts_secrets_and_filters_levels);

async fn deleted_organizations_are_purged_after_retention(b: Backend) {
    let mut cfg = test_config();
    cfg.deleted_org_retention_days = 5;
    let app = TestApp::start_with(b, cfg).await;
    let admin = super_admin(&app).await;
    let doomed = app.signup("Doomed").await;
    let member = app.add_member(&doomed, "viewer").await;
    // Rows in tables without a cascading reference to the organization go too.
    insert_job(
        &app,
        &doomed.org_id,
        "optimize",
        "succeeded",
        "done",
        Some(plan(1, &[])),
        now_ms(),
    )
    .await;
    let kept = app.signup("Kept").await;
    let restored = app.signup("Restored").await;

    let (st, v) = app
        .json(
            Method::DELETE,
            &format!("/api/admin/clients/{}", doomed.org_id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let deleted_at =
        chrono::DateTime::parse_from_rfc3339(v["deleted_at"].as_str().expect("deleted_at"))
            .expect("ts");
    let purge_after =
        chrono::DateTime::parse_from_rfc3339(v["purge_after"].as_str().expect("purge_after"))
            .expect("ts");
    assert_eq!(
        (purge_after - deleted_at).num_days(),
        5,
        "the configured retention"
    );
    // Its members get 404: the organization is gone for them.
    for t in [&doomed.access, &member.access] {
        let (st, e) = app.json(Method::GET, "/api/auth/me", Some(t), None).await;
        assert_error(st, &e, StatusCode::NOT_FOUND);
        let (st, e) = app.json(Method::GET, "/api/clusters", Some(t), None).await;
        assert_error(st, &e, StatusCode::NOT_FOUND);
    }
    assert_eq!(me_status(&app, &kept.access).await, StatusCode::OK);
    let (st, _) = app
        .json(
            Method::DELETE,
            &format!("/api/admin/clients/{}", restored.org_id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = app
        .json(
            Method::POST,
            &format!("/api/admin/clients/{}/restore", restored.org_id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);

    let count = |table: &'static str, org: String| {
        let db = app.db.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table} WHERE organization_id = $1"
            )))
            .bind(org)
            .fetch_one(&db.pool)
            .await
            .expect("count");
            n
        }
    };
    assert_eq!(count("jobs", doomed.org_id.clone()).await, 1);
    assert_eq!(
        count("accounts", doomed.org_id.clone()).await,
        1,
        "the signup placeholder"
    );
    let now = now_ms();
    // Within the retention period nothing goes.
    let purged = spot_api::console::purge_once_at(&app.db, now + 4 * DAY_MS, 5)
        .await
        .expect("purge");
    assert!(purged.is_empty(), "{purged:?}");
    assert!(
        count("memberships", doomed.org_id.clone()).await > 0,
        "kept until then"
    );
    // After it, the organization and its data are removed, its users too.
    let purged = spot_api::console::purge_once_at(&app.db, now + 5 * DAY_MS + 60_000, 5)
        .await
        .expect("purge");
    assert_eq!(purged.len(), 1, "{purged:?}");
    assert_eq!(purged[0].id, doomed.org_id);
    assert_eq!(purged[0].users_removed, 2);
    assert_eq!(purged[0].rows.get("jobs"), Some(&1), "{:?}", purged[0].rows);
    let (orgs,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM organizations WHERE id = $1")
        .bind(&doomed.org_id)
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(orgs, 0);
    for table in ["memberships", "accounts", "jobs", "sessions"] {
        assert_eq!(count(table, doomed.org_id.clone()).await, 0, "{table}");
    }
    let (users,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE email = $1 OR email = $2")
            .bind(&doomed.email)
            .bind(&member.email)
            .fetch_one(&app.db.pool)
            .await
            .expect("users");
    assert_eq!(users, 0);
    // The other organizations are untouched, the purge is in the platform chain, and the
    // organization's own audit chain is kept.
    assert_eq!(me_status(&app, &kept.access).await, StatusCode::OK);
    assert_eq!(
        me_status(&app, &restored.access).await,
        StatusCode::UNAUTHORIZED,
        "deleting revoked its sessions"
    );
    let (st, _) = login(&app, &restored.email, PASSWORD).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "a restored organization is never purged"
    );
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE chain_key = 'platform' AND action = 'admin.client.purge' \
         AND resource_id = $1 AND actor_kind = 'system'",
    )
    .bind(&doomed.org_id)
    .fetch_one(&app.db.pool)
    .await
    .expect("audit");
    assert_eq!(n, 1);
    assert!(
        count("audit_logs", doomed.org_id.clone()).await > 0,
        "the chain is evidence and stays"
    );
    // A second pass finds nothing; the member's old token is simply invalid now.
    assert!(
        spot_api::console::purge_once_at(&app.db, now + 10 * DAY_MS, 5)
            .await
            .expect("purge")
            .is_empty()
    );
    assert_eq!(
        me_status(&app, &member.access).await,
        StatusCode::UNAUTHORIZED
    );
}
both!(deleted_organizations_are_purged_after_retention);

async fn organizations_can_be_created_by_invite(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;
    let customer = app.signup("Customer").await;
    let (st, v) = app
        .json(
            Method::POST,
            "/api/admin/clients/invite",
            Some(&admin),
            Some(json!({"name": "Initech", "owner_email": "Owner@Initech.example.com"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let org_id = v["client"]["id"].as_str().expect("id").to_string();
    assert_eq!(v["client"]["name"], "Initech");
    assert_eq!(
        v["client"]["members"], 0,
        "no owner until the invite is accepted"
    );
    assert_eq!(v["owner_email"], "owner@initech.example.com");
    assert!(v.get("password").is_none(), "no generated password: {v}");
    let url = v["invite_url"].as_str().expect("url");
    assert!(url.contains("/accept-owner-invite?token="), "{url}");
    let invite_token = url.rsplit("token=").next().expect("token").to_string();
    for chain in [org_id.as_str(), "platform"] {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_logs WHERE chain_key = $1 AND action = 'admin.client.invite' AND resource_id = $2",
        )
        .bind(chain)
        .bind(&org_id)
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
        assert_eq!(n, 1, "{chain}");
    }
    // The same address again, or an existing user's, is refused.
    for email in ["owner@initech.example.com", customer.email.as_str()] {
        let body = json!({"name": "Again", "owner_email": email});
        let (st, e) = app
            .json(
                Method::POST,
                "/api/admin/clients/invite",
                Some(&admin),
                Some(body),
            )
            .await;
        if email == customer.email {
            assert_eq!(
                assert_error(st, &e, StatusCode::CONFLICT)["error"]["field"],
                "owner_email"
            );
        } else {
            // A pending invite does not reserve the address; a second organization may be invited.
            assert_eq!(st, StatusCode::CREATED, "{e}");
        }
    }
    for (body, field) in [
        (
            json!({"name": "", "owner_email": "a@b.example.com"}),
            "name",
        ),
        (json!({"name": "X", "owner_email": "nope"}), "owner_email"),
    ] {
        let (st, e) = app
            .json(
                Method::POST,
                "/api/admin/clients/invite",
                Some(&admin),
                Some(body),
            )
            .await;
        assert_eq!(
            assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
            field
        );
    }

    let accept = |token: String, password: &'static str| {
        let app = &app;
        async move {
            app.json(
                Method::POST,
                "/api/auth/owner-invites/accept",
                None,
                Some(json!({"token": token, "password": password})),
            )
            .await
        }
    };
    let (st, e) = accept(invite_token.clone(), "short").await;
    assert_eq!(
        assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "password"
    );
    let (st, e) = accept("not-a-token".into(), PASSWORD).await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let (st, t) = accept(invite_token.clone(), PASSWORD).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let access = t["access_token"].as_str().expect("access");
    let (_, me) = app
        .json(Method::GET, "/api/auth/me", Some(access), None)
        .await;
    assert_eq!(me["organization"]["id"], org_id.as_str());
    assert_eq!(me["role"], "owner");
    assert_eq!(me["user"]["email"], "owner@initech.example.com");
    let (st, e) = accept(invite_token.clone(), PASSWORD).await;
    assert_error(st, &e, StatusCode::CONFLICT);
    let (st, _) = login(&app, "owner@initech.example.com", PASSWORD).await;
    assert_eq!(st, StatusCode::OK);

    // An expired invite is refused with the field named.
    let (st, v) = app
        .json(
            Method::POST,
            "/api/admin/clients/invite",
            Some(&admin),
            Some(json!({"name": "Late", "owner_email": "late@late.example.com"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let late = v["invite_url"]
        .as_str()
        .expect("url")
        .rsplit("token=")
        .next()
        .expect("t")
        .to_string();
    let late_org = v["client"]["id"].as_str().expect("id").to_string();
    sqlx::query("UPDATE client_invites SET expires_at = $1 WHERE organization_id = $2")
        .bind(now_ms() - 1)
        .bind(&late_org)
        .execute(&app.db.pool)
        .await
        .expect("expire");
    let (st, e) = accept(late, PASSWORD).await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "token");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("expired"),
        "{e}"
    );
    let (st, _) = login(&app, "late@late.example.com", PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}
both!(organizations_can_be_created_by_invite);

async fn password_change_needs_the_current_password_and_revokes_sessions(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;
    let admin_pw = "platform admin 99";
    let other = token(&app, ADMIN_EMAIL, admin_pw).await;
    let (st, p) = app
        .json(Method::GET, "/api/auth/profile", Some(&admin), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["email"], ADMIN_EMAIL);
    assert_eq!(p["platform_role"], "super_admin");
    assert!(p["name"].is_null());

    // Name and e-mail: re-authentication first.
    let (st, e) = app
        .json(
            Method::PUT,
            "/api/auth/profile",
            Some(&admin),
            Some(json!({"name": "Root", "current_password": "wrong password 1"})),
        )
        .await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let (st, e) = app
        .json(
            Method::PUT,
            "/api/auth/profile",
            Some(&admin),
            Some(json!({"email": "bad", "current_password": admin_pw})),
        )
        .await;
    assert_eq!(
        assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "email"
    );
    let customer = app.signup("Customer").await;
    let (st, e) = app
        .json(
            Method::PUT,
            "/api/auth/profile",
            Some(&admin),
            Some(json!({"email": customer.email, "current_password": admin_pw})),
        )
        .await;
    assert_eq!(
        assert_error(st, &e, StatusCode::CONFLICT)["error"]["field"],
        "email"
    );
    let (st, p) = app
        .json(
            Method::PUT,
            "/api/auth/profile",
            Some(&admin),
            Some(json!({"name": "  Root Operator ", "email": "Ops@Platform.example.com", "current_password": admin_pw})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["name"], "Root Operator");
    assert_eq!(p["email"], "ops@platform.example.com");
    let (st, _) = login(&app, ADMIN_EMAIL, admin_pw).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let third = token(&app, "ops@platform.example.com", admin_pw).await;

    // Password: wrong current → 403, weak new → 422 naming new_password.
    let new_pw = "brand new pass 77";
    let (st, e) = app
        .json(
            Method::POST,
            "/api/auth/password",
            Some(&admin),
            Some(json!({"current_password": "nope nope 1", "new_password": new_pw})),
        )
        .await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let (st, e) = app
        .json(
            Method::POST,
            "/api/auth/password",
            Some(&admin),
            Some(json!({"current_password": admin_pw, "new_password": "short"})),
        )
        .await;
    assert_eq!(
        assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "new_password"
    );
    assert_eq!(
        me_status(&app, &other).await,
        StatusCode::OK,
        "nothing changed yet"
    );
    let (st, v) = app
        .json(
            Method::POST,
            "/api/auth/password",
            Some(&admin),
            Some(json!({"current_password": admin_pw, "new_password": new_pw})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["sessions_revoked"], 2, "{v}");
    // Every other session is signed out at once; this one stays.
    assert_eq!(me_status(&app, &other).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &third).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &admin).await, StatusCode::OK);
    let (st, _) = login(&app, "ops@platform.example.com", admin_pw).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    token(&app, "ops@platform.example.com", new_pw).await;
    let (reason,): (Option<String>,) = sqlx::query_as(
        "SELECT s.revoked_reason FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE u.email = 'ops@platform.example.com' AND s.revoked_at IS NOT NULL LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("reason");
    assert_eq!(reason.as_deref(), Some("password_changed"));

    // An impersonation session cannot change the customer's credentials.
    let (st, imp) = app
        .json(
            Method::POST,
            "/api/admin/impersonate",
            Some(&admin),
            Some(json!({"organization_id": customer.org_id})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{imp}");
    let imp = imp["access_token"].as_str().expect("token");
    let (st, e) = app
        .json(
            Method::POST,
            "/api/auth/password",
            Some(imp),
            Some(json!({"current_password": PASSWORD, "new_password": new_pw})),
        )
        .await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let (st, e) = app
        .json(
            Method::PUT,
            "/api/auth/profile",
            Some(imp),
            Some(json!({"name": "x", "current_password": PASSWORD})),
        )
        .await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    // Customers use the same endpoints for themselves.
    let (st, v) = app
        .json(
            Method::POST,
            "/api/auth/password",
            Some(&customer.access),
            Some(json!({"current_password": PASSWORD, "new_password": new_pw})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Its other sessions end, the admin's impersonation of it included.
    assert_eq!(v["sessions_revoked"], 1);
    assert_eq!(me_status(&app, imp).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &customer.access).await, StatusCode::OK);
}
both!(password_change_needs_the_current_password_and_revokes_sessions);

async fn password_reset_tokens_are_single_use_and_expire(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.signup("Resetting").await;
    let second = token(&app, &user.email, PASSWORD).await;
    // Unknown addresses answer the same as known ones.
    for email in ["nobody@nowhere.example.com", user.email.as_str()] {
        let (st, v) = app
            .json(
                Method::POST,
                "/api/auth/password-reset",
                None,
                Some(json!({"email": email})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    }
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM password_resets WHERE user_id = $1")
        .bind(&user.user_id)
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(n, 1, "one token, for the registered user only");
    let (st, e) = app
        .json(
            Method::POST,
            "/api/auth/password-reset",
            None,
            Some(json!({"email": "bad"})),
        )
        .await;
    assert_eq!(
        assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "email"
    );

    // The link's token (only its hash is stored): issue one whose value the test knows.
    let (tok, hash) = spot_api::auth::new_opaque_token();
    spot_models::console::create_password_reset(&app.db, &user.user_id, &hash, 3_600_000)
        .await
        .expect("reset");
    let confirm = |token: String, password: &'static str| {
        let app = &app;
        async move {
            app.json(
                Method::POST,
                "/api/auth/password-reset/confirm",
                None,
                Some(json!({"token": token, "password": password})),
            )
            .await
        }
    };
    let (st, e) = confirm(tok.clone(), "weak").await;
    assert_eq!(
        assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "password"
    );
    let (st, e) = confirm("unknown".into(), "a fine password 9").await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let (st, e) = confirm(tok.clone(), "a fine password 9").await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{e}");
    // Every session is signed out; the new password works, the old one does not.
    assert_eq!(
        me_status(&app, &user.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me_status(&app, &second).await, StatusCode::UNAUTHORIZED);
    let (st, _) = login(&app, &user.email, PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    token(&app, &user.email, "a fine password 9").await;
    let (st, e) = confirm(tok, "another password 9").await;
    assert_error(st, &e, StatusCode::CONFLICT);
    // Every open token of the user was used up by the reset.
    let (open,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM password_resets WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(&user.user_id)
    .fetch_one(&app.db.pool)
    .await
    .expect("count");
    assert_eq!(open, 0);
    // Expired.
    let (tok, hash) = spot_api::auth::new_opaque_token();
    spot_models::console::create_password_reset(&app.db, &user.user_id, &hash, -1)
        .await
        .expect("reset");
    let (st, e) = confirm(tok, "another password 9").await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "token");
    // Audited in the user's organization.
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE organization_id = $1 AND action = 'auth.password_reset.confirm' AND outcome = 'success'",
    )
    .bind(&user.org_id)
    .fetch_one(&app.db.pool)
    .await
    .expect("audit");
    assert_eq!(n, 1);
}
both!(password_reset_tokens_are_single_use_and_expire);

async fn customers_get_403_on_every_admin_route(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;
    let customer = app.signup("Customer").await;
    let viewer = app.add_member(&customer, "viewer").await;
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
    // Valid requests: only the caller's rights can refuse them.
    let known: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/admin/operations".into(), None),
        (Method::GET, "/api/admin/logs".into(), None),
        (Method::GET, "/api/admin/logs/stream".into(), None),
        (Method::GET, "/api/admin/logs/changes".into(), None),
        (
            Method::POST,
            "/api/admin/clients/invite".into(),
            Some(json!({"name": "X", "owner_email": "x@x.example.com"})),
        ),
        (Method::GET, "/api/admin/clients".into(), None),
        (
            Method::POST,
            "/api/admin/clients".into(),
            Some(json!({"name": "X", "owner_email": "y@x.example.com"})),
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
    for token in [&customer.access, &viewer.access, &impersonating] {
        for (m, path, body) in &known {
            let (st, e) = app.json(m.clone(), path, Some(token), body.clone()).await;
            assert_error(st, &e, StatusCode::FORBIDDEN);
        }
    }
    // Every operation under /api/admin in the published document: never a success for a
    // customer (403, or 422 when the empty body fails the schema first; 404 where the
    // route needs an existing resource of the platform).
    let (st, spec) = app.json(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    let mut checked = 0;
    for (path, ops) in spec["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/admin")
            || path == "/api/admin/impersonation"
            || path == "/api/admin/impersonation/end"
        {
            continue;
        }
        let concrete = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "00000000-0000-0000-0000-000000000000"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().expect("ops").keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
            let (st, e) = app
                .json(m.clone(), &concrete, Some(&customer.access), body)
                .await;
            assert!(
                st == StatusCode::FORBIDDEN
                    || st == StatusCode::UNPROCESSABLE_ENTITY
                    || st == StatusCode::BAD_REQUEST
                    || st == StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{method} {path}: {st} {e}"
            );
            checked += 1;
        }
    }
    assert!(checked >= known.len(), "{checked}");
    // No admin route answers an anonymous caller.
    let (st, _) = app
        .json(Method::GET, "/api/admin/operations", None, None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}
both!(customers_get_403_on_every_admin_route);
