//! Node templates over HTTP: CRUD with clone and an atomic default, validation naming the
//! field, the live cost estimate from a linked account's market, and the link with cluster
//! policies (the policy follows the template; a used template cannot be deleted).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both;
use crate::inventory::link_sim;
use crate::support::{assert_error, Backend, Session, TestApp};

fn web_template(name: &str) -> Value {
    json!({
        "name": name,
        "description": "stateless web tier",
        "spec": {
            "families": ["m6i", "m6g", "c6i"],
            "excluded_sizes": ["nano", "micro"],
            "storage": {"volume_type": "gp3", "size_gib": 80, "iops": 4000},
            "security_groups": ["sg-0123456789abcdef0"],
            "labels": {"team": "web", "example.com/tier": "frontend"},
            "taints": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}]
        }
    })
}

async fn create(app: &TestApp, s: &Session, body: Value) -> (StatusCode, Value) {
    app.json(Method::POST, "/api/templates", Some(&s.access), Some(body))
        .await
}

async fn defaults(app: &TestApp, org: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM node_templates WHERE organization_id = $1 AND is_default = 1",
    )
    .bind(org)
    .fetch_one(&app.db.pool)
    .await
    .expect("count");
    n
}

async fn templates_crud_clone_and_one_default(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Templates").await;
    let (st, web) = create(&app, &s, web_template("web")).await;
    assert_eq!(st, StatusCode::CREATED, "{web}");
    assert_eq!(web["is_default"], true, "the first template is the default");
    assert_eq!(
        web["spec"]["capacity_type"], "spot",
        "defaults fill the rest"
    );
    assert_eq!(web["spec"]["strategy"], "capacity_optimized");
    assert_eq!(web["spec"]["on_demand_fallback"], true);
    assert_eq!(web["spec"]["storage"]["size_gib"], 80);
    assert_eq!(web["spec"]["labels"]["team"], "web");
    let web_id = web["id"].as_str().expect("id").to_string();

    let mut batch = web_template("batch");
    batch["spec"] = json!({"families": ["c7g"], "architectures": ["arm64"], "capacity_type": "spot", "strategy": "lowest_price"});
    let (st, batch) = create(&app, &s, batch).await;
    assert_eq!(st, StatusCode::CREATED, "{batch}");
    assert_eq!(batch["is_default"], false);
    let batch_id = batch["id"].as_str().expect("id").to_string();

    // The default moves atomically: exactly one at every moment.
    let (st, d) = app
        .json(
            Method::POST,
            &format!("/api/templates/{batch_id}/default"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["is_default"], true);
    assert_eq!(defaults(&app, &s.org_id).await, 1);
    let (_, list) = app
        .json(Method::GET, "/api/templates", Some(&s.access), None)
        .await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], batch_id.as_str(), "the default first");

    // Clone: a new name, never the default; again gets "(copy 2)".
    let (st, copy) = app
        .json(
            Method::POST,
            &format!("/api/templates/{web_id}/clone"),
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{copy}");
    assert_eq!(copy["name"], "web (copy)");
    assert_eq!(copy["is_default"], false);
    assert_eq!(copy["spec"], web["spec"]);
    let (_, copy2) = app
        .json(
            Method::POST,
            &format!("/api/templates/{web_id}/clone"),
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(copy2["name"], "web (copy 2)");

    // PATCH changes only what it names.
    let (st, p) = app
        .json(
            Method::PATCH,
            &format!("/api/templates/{web_id}"),
            Some(&s.access),
            Some(json!({"spec": {"families": ["m7i"], "capacity_type": "hybrid"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["spec"]["families"], json!(["m7i"]));
    assert_eq!(p["spec"]["capacity_type"], "hybrid");
    assert_eq!(p["spec"]["storage"]["size_gib"], 80);
    assert_eq!(p["name"], "web");
    let (st, e) = app
        .json(
            Method::PATCH,
            &format!("/api/templates/{web_id}"),
            Some(&s.access),
            Some(json!({"name": "batch"})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "name");

    // Deleting the default hands the default to the oldest remaining template.
    let (st, _) = app
        .json(
            Method::DELETE,
            &format!("/api/templates/{batch_id}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(defaults(&app, &s.org_id).await, 1);
    let (_, w) = app
        .json(
            Method::GET,
            &format!("/api/templates/{web_id}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(w["is_default"], true, "{w}");

    // Tenancy and roles.
    let other = app.signup("Elsewhere").await;
    for (m, path) in [
        (Method::GET, format!("/api/templates/{web_id}")),
        (Method::DELETE, format!("/api/templates/{web_id}")),
        (Method::POST, format!("/api/templates/{web_id}/default")),
    ] {
        let (st, e) = app.json(m, &path, Some(&other.access), None).await;
        assert_error(st, &e, StatusCode::NOT_FOUND);
    }
    let viewer = app.add_member(&s, "viewer").await;
    let (st, e) = create(&app, &viewer, web_template("nope")).await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let (st, e) = app
        .json(
            Method::PATCH,
            &format!("/api/templates/{web_id}"),
            Some(&viewer.access),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let (st, l) = app
        .json(Method::GET, "/api/templates", Some(&viewer.access), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");

    let actions: Vec<(String,)> = sqlx::query_as(
        "SELECT action FROM audit_logs WHERE organization_id = $1 AND action LIKE 'template.%' ORDER BY seq",
    )
    .bind(&s.org_id)
    .fetch_all(&app.db.pool)
    .await
    .expect("audit");
    let actions: Vec<&str> = actions.iter().map(|a| a.0.as_str()).collect();
    for a in [
        "template.create",
        "template.default",
        "template.clone",
        "template.update",
        "template.delete",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}
both!(templates_crud_clone_and_one_default);

async fn invalid_templates_name_the_field(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Validation").await;
    let (st, _) = create(&app, &s, web_template("taken")).await;
    assert_eq!(st, StatusCode::CREATED);
    let cases = [
        (
            json!({"name": "taken", "spec": {"families": ["m6i"]}}),
            "name",
        ),
        (json!({"name": "  ", "spec": {"families": ["m6i"]}}), "name"),
        (json!({"name": "a", "spec": {"families": []}}), "families"),
        (json!({"name": "a", "spec": {}}), "families"),
        (
            json!({"name": "a", "spec": {"families": ["zz9"]}}),
            "families",
        ),
        (
            json!({"name": "a", "spec": {"families": ["g4dn"], "architectures": ["arm64"]}}),
            "architectures",
        ),
        (
            json!({"name": "a", "spec": {"families": ["m6g"], "architectures": ["x86_64"]}}),
            "architectures",
        ),
        (
            json!({"name": "a", "spec": {"families": ["m6i"], "storage": {"volume_type": "gp3", "size_gib": 10}}}),
            "storage.size_gib",
        ),
        (
            json!({"name": "a", "spec": {"families": ["m6i"], "storage": {"volume_type": "gp2", "size_gib": 50, "iops": 3000}}}),
            "storage.iops",
        ),
        (
            json!({"name": "a", "spec": {"families": ["m6i"], "security_groups": ["default"]}}),
            "security_groups",
        ),
        (
            json!({"name": "a", "spec": {"families": ["m6i"], "taints": [{"key": "k", "effect": "Never"}]}}),
            "taints",
        ),
        (
            json!({"name": "a", "spec": {"families": ["m6i"], "bogus": 1}}),
            "bogus",
        ),
    ];
    for (body, field) in cases {
        let (st, e) = create(&app, &s, body.clone()).await;
        let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            e["error"]["field"].as_str().unwrap_or("").ends_with(field),
            "{body} → {e}"
        );
    }
    // Mixed architectures admit both kinds of family.
    let (st, t) = create(
        &app,
        &s,
        json!({"name": "mixed", "spec": {"families": ["m6i", "m6g"], "architectures": ["x86_64", "arm64"]}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
}
both!(invalid_templates_name_the_field);

async fn policies_use_templates_and_protect_them(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Linked").await;
    // No account yet: nothing to price the estimate with.
    let (st, e) = app
        .json(
            Method::POST,
            "/api/templates/estimate",
            Some(&s.access),
            Some(json!({"families": ["m5"]})),
        )
        .await;
    assert_error(st, &e, StatusCode::CONFLICT);
    link_sim(&app, &s, "123456789012", "Prod").await;
    let (st, est) = app
        .json(
            Method::POST,
            "/api/templates/estimate",
            Some(&s.access),
            Some(json!({"families": ["m5", "c5"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{est}");
    assert!(est["pools"].as_u64().unwrap_or(0) > 0, "{est}");
    let spot = est["avg_spot_hourly"].as_f64().expect("spot");
    let od = est["avg_on_demand_hourly"].as_f64().expect("od");
    assert!(spot > 0.0 && spot < od, "{est}");
    assert_eq!(est["region"], "us-east-1");
    // Narrower templates admit fewer pools.
    let (_, narrow) = app
        .json(
            Method::POST,
            "/api/templates/estimate",
            Some(&s.access),
            Some(json!({"families": ["m5"], "excluded_sizes": ["large", "xlarge"]})),
        )
        .await;
    assert!(
        narrow["pools"].as_u64() < est["pools"].as_u64(),
        "{narrow} vs {est}"
    );

    let (_, t) = create(
        &app,
        &s,
        json!({"name": "general", "spec": {"families": ["m5", "m6i"]}}),
    )
    .await;
    let tid = t["id"].as_str().expect("id").to_string();
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    let cluster = clusters["items"][0]["id"]
        .as_str()
        .expect("cluster")
        .to_string();
    let cname = clusters["items"][0]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let (st, p) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            Some(json!({"aggressiveness": "balanced", "template_id": tid})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["template_id"], tid.as_str());
    assert_eq!(p["template_name"], "general");
    assert_eq!(p["template"]["allowed_families"], json!(["m5", "m6i"]));
    let (st, e) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            Some(json!({"template_id": "no-such-template"})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "template_id");

    // A used template cannot be deleted; the 409 names the cluster.
    let (st, e) = app
        .json(
            Method::DELETE,
            &format!("/api/templates/{tid}"),
            Some(&s.access),
            None,
        )
        .await;
    let e = assert_error(st, &e, StatusCode::CONFLICT);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(&cname),
        "{e}"
    );
    let (_, t) = app
        .json(
            Method::GET,
            &format!("/api/templates/{tid}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(t["used_by"][0]["cluster_name"], cname.as_str());

    // The policy follows the template.
    let (st, _) = app
        .json(
            Method::PATCH,
            &format!("/api/templates/{tid}"),
            Some(&s.access),
            Some(json!({"spec": {"families": ["c6i"]}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, p) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(p["template"]["allowed_families"], json!(["c6i"]), "{p}");
    assert_eq!(p["aggressiveness"], "balanced");

    // Unlinked (a policy without template_id), it can go.
    let (st, p) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            Some(json!({"aggressiveness": "balanced"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert!(p["template_id"].is_null(), "{p}");
    let (st, _) = app
        .json(
            Method::DELETE,
            &format!("/api/templates/{tid}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
}
both!(policies_use_templates_and_protect_them);

/// Optimize Now on a cluster whose policy uses a template: every node it launches carries
/// the template's labels and taints (put on by the agent once the node is Ready, before
/// any pod moves).
async fn launched_nodes_carry_the_template_labels_and_taints(b: Backend) {
    let sim = std::sync::Arc::new(spot_actors::connect::SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, name) = crate::optimize::setup(&app).await;
    let families: std::collections::BTreeSet<String> = spot_cloud::sim::Catalog::embedded()
        .types()
        .iter()
        .map(|t| t.family.clone())
        .collect();
    let (st, t) = create(
        &app,
        &s,
        json!({"name": "tagged", "spec": {
            "families": families,
            "labels": {"example.com/pool": "general"},
            "taints": [{"key": "example.com/preferred", "value": "general", "effect": "PreferNoSchedule"}]
        }}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let (st, p) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            Some(json!({"aggressiveness": "aggressive", "stabilization_window_secs": 0, "template_id": t["id"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let (st, j) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/optimize"),
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{j}");
    let job = crate::risk::wait_job(
        &app,
        &s.access,
        &format!("/api/jobs/{}", j["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let steps: Vec<Value> = job["result"]["executed"]
        .as_array()
        .expect("executed")
        .iter()
        .flat_map(|a| a["steps"].as_array().cloned().unwrap_or_default())
        .collect();
    let ready: Vec<String> = steps
        .iter()
        .filter(|s| s["step"] == "ready")
        .flat_map(|s| s["nodes"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    assert!(!ready.is_empty(), "the plan launches replacements: {job}");
    assert!(
        steps
            .iter()
            .any(|s| s["step"] == "label" && s["template"] == "tagged"),
        "{job}"
    );
    let world = sim.world("123456789012", "us-east-1").expect("world");
    let view = world.kube_view(&name).expect("view");
    for n in &ready {
        let node = view
            .nodes
            .iter()
            .find(|v| &v.name == n)
            .expect("launched node");
        assert_eq!(
            node.labels.get("example.com/pool").map(String::as_str),
            Some("general"),
            "{n}: {:?}",
            node.labels
        );
        assert!(
            node.taints
                .iter()
                .any(|t| t.key == "example.com/preferred" && t.effect == "PreferNoSchedule"),
            "{n}: {:?}",
            node.taints
        );
    }
}
both!(launched_nodes_carry_the_template_labels_and_taints);

/// Every policy change is a version: who and when, listed newest first; PATCH changes
/// only what it names (the template link included); any version can be restored.
async fn policy_versions_patch_and_revert(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Versions").await;
    link_sim(&app, &s, "123456789012", "Prod").await;
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    let cluster = clusters["items"][0]["id"]
        .as_str()
        .expect("cluster")
        .to_string();
    let path = format!("/api/clusters/{cluster}/policy");
    let (_, p) = app.json(Method::GET, &path, Some(&s.access), None).await;
    assert!(p["version"].is_null(), "never saved: {p}");

    let (st, v1) = app
        .json(
            Method::PUT,
            &path,
            Some(&s.access),
            Some(json!({"aggressiveness": "conservative", "stabilization_window_secs": 900})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v1}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["updated_by"], s.email.as_str());
    let (_, t) = create(
        &app,
        &s,
        json!({"name": "general", "spec": {"families": ["m5"]}}),
    )
    .await;
    // PATCH keeps everything it does not name.
    let (st, v2) = app
        .json(
            Method::PATCH,
            &path,
            Some(&s.access),
            Some(json!({"disruption_budget": {"max_nodes": 2}, "template_id": t["id"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["aggressiveness"], "conservative");
    assert_eq!(v2["stabilization_window_secs"], 900);
    assert_eq!(v2["disruption_budget"]["max_nodes"], 2);
    assert_eq!(v2["disruption_budget"]["max_percent"], 10.0);
    assert_eq!(v2["template_name"], "general");
    let (st, v3) = app
        .json(
            Method::PATCH,
            &path,
            Some(&s.access),
            Some(json!({"aggressiveness": "aggressive"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v3}");
    assert_eq!(v3["template_id"], t["id"], "the link stays: {v3}");
    let (st, e) = app
        .json(
            Method::PATCH,
            &path,
            Some(&s.access),
            Some(json!({"rightsize_headroom": 7})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "rightsize_headroom");

    let (st, list) = app
        .json(
            Method::GET,
            &format!("{path}/versions"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let versions: Vec<i64> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|v| v["version"].as_i64())
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    assert_eq!(list["items"][2]["policy"]["aggressiveness"], "conservative");
    assert_eq!(list["items"][0]["created_by"], s.email.as_str());

    // Revert to version 1: a new version 4 equal to version 1 (no template link).
    let (st, v4) = app
        .json(
            Method::POST,
            &format!("{path}/revert"),
            Some(&s.access),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v4}");
    assert_eq!(v4["version"], 4);
    assert_eq!(v4["aggressiveness"], "conservative");
    assert_eq!(v4["disruption_budget"]["max_nodes"], Value::Null);
    assert!(v4["template_id"].is_null(), "{v4}");
    let (_, list) = app
        .json(
            Method::GET,
            &format!("{path}/versions"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(list["items"][0]["note"], "revert to version 1");
    let (st, e) = app
        .json(
            Method::POST,
            &format!("{path}/revert"),
            Some(&s.access),
            Some(json!({"version": 99})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "version");

    // Viewers read the history but change nothing; other organizations see nothing.
    let viewer = app.add_member(&s, "viewer").await;
    let (st, _) = app
        .json(
            Method::GET,
            &format!("{path}/versions"),
            Some(&viewer.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    for (m, p, body) in [
        (Method::PATCH, path.clone(), json!({"dry_run": true})),
        (
            Method::POST,
            format!("{path}/revert"),
            json!({"version": 1}),
        ),
    ] {
        let (st, e) = app.json(m, &p, Some(&viewer.access), Some(body)).await;
        assert_error(st, &e, StatusCode::FORBIDDEN);
    }
    let other = app.signup("Other").await;
    let (st, e) = app
        .json(
            Method::GET,
            &format!("{path}/versions"),
            Some(&other.access),
            None,
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let (st, e) = app
        .json(
            Method::POST,
            &format!("{path}/revert"),
            Some(&other.access),
            Some(json!({"version": 1})),
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let revert_audited: Vec<(String,)> = sqlx::query_as(
        "SELECT action FROM audit_logs WHERE organization_id = $1 AND action = 'cluster.policy.revert' AND outcome = 'success'",
    )
    .bind(&s.org_id)
    .fetch_all(&app.db.pool)
    .await
    .expect("audit");
    assert_eq!(revert_audited.len(), 1);
}
both!(policy_versions_patch_and_revert);
