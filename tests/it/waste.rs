//! Waste clean-up batches on the simulator: orphaned volumes are snapshotted (and the
//! snapshot waited for) before they are deleted, unused snapshots and unregistered
//! instances are re-verified against the cloud when their turn comes, authorized,
//! protected and cluster instances are never terminated, a cancel leaves the items not yet
//! started skipped, and a redelivered batch never acts twice (counted on the simulator).

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_actors::connect::SimConnector;
use spot_cloud::sim::{Method as Call, SimCloud};
use spot_cloud::{Cloud, InstanceState, SnapshotState};
use spot_models::batches;

use crate::both;
use crate::inventory::link_sim;
use crate::risk::wait_job;
use crate::support::{assert_error, Backend, Session, TestApp};

const ACCOUNT: &str = "123456789012";

struct World {
    app: TestApp,
    s: Session,
    sim: Arc<SimCloud>,
}

async fn world(b: Backend) -> World {
    let connector = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, connector.clone()).await;
    let s = app.signup("Waste").await;
    link_sim(&app, &s, ACCOUNT, "Prod").await;
    let sim = connector.world(ACCOUNT, "us-east-1").expect("sim world");
    World { app, s, sim }
}

impl World {
    async fn get(&self, path: &str) -> Value {
        let (st, v) = self
            .app
            .json(Method::GET, path, Some(&self.s.access), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.app
            .json(Method::POST, path, Some(&self.s.access), Some(body))
            .await
    }

    /// Queues a batch and waits for it to end; returns (job, items).
    async fn run(&self, path: &str, ids: &[&str], dry_run: bool) -> (Value, Value) {
        let (st, job) = self
            .post(path, json!({"ids": ids, "dry_run": dry_run}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{job}");
        let id = job["id"].as_str().expect("job id").to_string();
        let done = wait_job(&self.app, &self.s.access, &format!("/api/jobs/{id}")).await;
        (done, self.items(&id).await)
    }

    async fn items(&self, job_id: &str) -> Value {
        self.get(&format!("/api/jobs/{job_id}/items")).await
    }

    /// The waste list at `path`: (row id, cloud id) of each entry.
    async fn listed(&self, path: &str, cloud_field: &str) -> Vec<(String, String)> {
        self.get(path).await["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| {
                (
                    e["id"].as_str().expect("id").to_string(),
                    e[cloud_field].as_str().expect("cloud id").to_string(),
                )
            })
            .collect()
    }

    /// Audit entries of the batch items: (action, actor kind, outcome, resource id).
    async fn item_audit(&self) -> Vec<(String, String, String, Option<String>)> {
        sqlx::query_as(
            "SELECT action, actor_kind, outcome, resource_id FROM audit_logs WHERE organization_id = $1 AND action LIKE 'waste.%.%' AND actor_kind = 'system' ORDER BY seq",
        )
        .bind(&self.s.org_id)
        .fetch_all(&self.app.db.pool)
        .await
        .expect("audit")
    }
}

fn item<'a>(items: &'a Value, key: &str) -> &'a Value {
    items["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["key"] == key)
        .unwrap_or_else(|| panic!("no item {key} in {items}"))
}

async fn running_instance(sim: &SimCloud) -> String {
    sim.describe_instances()
        .await
        .expect("instances")
        .into_iter()
        .find(|i| i.state == InstanceState::Running)
        .expect("a running instance")
        .id
}

async fn orphaned_volumes_are_snapshotted_then_deleted_and_attached_ones_kept(b: Backend) {
    let w = world(b).await;
    let listed = w.listed("/api/volumes/orphaned", "volume_id").await;
    assert!(listed.len() >= 2, "{listed:?}");
    let (keep_row, keep_vol) = listed[0].clone();
    let (del_row, del_vol) = listed[1].clone();
    // Someone attaches the first volume after it was listed and before the batch runs.
    w.sim
        .attach_volume(&keep_vol, &running_instance(&w.sim).await)
        .expect("attach");

    let (job, items) = w
        .run(
            "/api/volumes/orphaned/cleanup",
            &[&keep_row, &del_row],
            false,
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["kind"], "cleanup_volumes");
    assert_eq!(
        (items["done"].as_u64(), items["skipped"].as_u64()),
        (Some(1), Some(1)),
        "{items}"
    );

    let kept = item(&items, &keep_vol);
    assert_eq!(kept["status"], "skipped", "{kept}");
    assert!(
        kept["error"].as_str().unwrap_or("").contains("attached"),
        "{kept}"
    );

    let done = item(&items, &del_vol);
    assert_eq!(done["status"], "done", "{done}");
    let snap_id = done["result"]["snapshot_id"].as_str().expect("snapshot id");
    assert_eq!(done["result"]["snapshot_completed"], true, "{done}");
    // The saving is the volume's cost less the snapshot's storage.
    let expected = done["expected_monthly_saving"].as_f64().expect("expected");
    let snapshot_cost = done["result"]["snapshot_monthly_cost"]
        .as_f64()
        .expect("snapshot cost");
    assert!(snapshot_cost > 0.0, "{done}");
    let saving = done["monthly_saving"].as_f64().expect("saving");
    assert!(
        (saving - (expected - snapshot_cost).max(0.0)).abs() < 1e-9,
        "{done}"
    );
    assert!((items["monthly_saving"].as_f64().unwrap_or(-1.0) - saving).abs() < 1e-9);
    assert_eq!(job["result"]["done"], 1, "{job}");

    // In the cloud: the deleted volume is gone and its snapshot completed; the attached
    // volume is still there and was never snapshotted.
    let volumes = w.sim.describe_volumes().await.expect("volumes");
    assert!(volumes.iter().all(|v| v.id != del_vol));
    assert!(volumes.iter().any(|v| v.id == keep_vol));
    let snaps = w.sim.describe_snapshots().await.expect("snapshots");
    let snap = snaps
        .iter()
        .find(|s| s.id == snap_id)
        .expect("snapshot exists");
    assert_eq!(snap.volume_id.as_deref(), Some(del_vol.as_str()));
    assert_eq!(snap.state, SnapshotState::Completed);
    assert_eq!(w.sim.call_count(Call::CreateSnapshot), 1);
    assert_eq!(w.sim.call_count(Call::DeleteVolume), 1);

    // The waste list drops the deleted volume at once.
    let after = w.listed("/api/volumes/orphaned", "volume_id").await;
    assert!(after.iter().all(|(_, v)| *v != del_vol), "{after:?}");
    // Each item is audited as the system with the job id (the skip too; its detail says so).
    let audit = w.item_audit().await;
    let job_id = job["id"].as_str().map(str::to_string);
    let entries = audit
        .iter()
        .filter(|a| {
            a.0 == "waste.volume.delete" && a.1 == "system" && a.2 == "success" && a.3 == job_id
        })
        .count();
    assert_eq!(entries, 2, "{audit:?}");
}
both!(orphaned_volumes_are_snapshotted_then_deleted_and_attached_ones_kept);

async fn unused_snapshots_are_reverified_before_deletion(b: Backend) {
    let w = world(b).await;
    let listed = w.listed("/api/snapshots/unused", "snapshot_id").await;
    assert!(!listed.is_empty(), "{listed:?}");
    let (unused_row, unused_snap) = listed[0].clone();
    // Stale inventory: a backup of a live volume that the database believes is gone
    // (discovery has not seen the volume yet). The cloud says otherwise.
    let volumes = w.sim.describe_volumes().await.expect("volumes");
    let backup = w
        .sim
        .describe_snapshots()
        .await
        .expect("snapshots")
        .into_iter()
        .find(|s| {
            s.source_ami.is_none()
                && s.volume_id
                    .as_ref()
                    .is_some_and(|v| volumes.iter().any(|x| &x.id == v))
        })
        .expect("a backup of a live volume");
    sqlx::query("UPDATE volumes SET gone_at = 1 WHERE volume_id = $1")
        .bind(backup.volume_id.as_deref())
        .execute(&w.app.db.pool)
        .await
        .expect("stale volume row");
    let backup_row = w
        .listed("/api/snapshots/unused", "snapshot_id")
        .await
        .into_iter()
        .find(|(_, s)| *s == backup.id)
        .expect("the backup now looks unused")
        .0;

    // A dry run validates and changes nothing.
    let (job, items) = w
        .run("/api/snapshots/unused/cleanup", &[&unused_row], true)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["dry_run"].as_bool().unwrap_or(false));
    let dry = item(&items, &unused_snap);
    assert_eq!(dry["status"], "done", "{dry}");
    assert_eq!(dry["result"]["mode"], "dry_run", "{dry}");
    assert_eq!(dry["monthly_saving"], 0.0, "{dry}");
    assert!(
        dry["result"]["would_save"].as_f64().unwrap_or(0.0) > 0.0,
        "{dry}"
    );
    let exists = |id: String| {
        let sim = w.sim.clone();
        async move {
            sim.describe_snapshots()
                .await
                .expect("snapshots")
                .iter()
                .any(|s| s.id == id)
        }
    };
    assert!(
        exists(unused_snap.clone()).await,
        "a dry run deletes nothing"
    );

    let (job, items) = w
        .run(
            "/api/snapshots/unused/cleanup",
            &[&backup_row, &unused_row],
            false,
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let kept = item(&items, &backup.id);
    assert_eq!(kept["status"], "skipped", "{kept}");
    assert!(
        kept["error"]
            .as_str()
            .unwrap_or("")
            .contains("source volume"),
        "{kept}"
    );
    let done = item(&items, &unused_snap);
    assert_eq!(done["status"], "done", "{done}");
    let size = done["result"]["size_gib"].as_f64().expect("size");
    assert!(
        (done["monthly_saving"].as_f64().unwrap_or(0.0) - size * 0.05).abs() < 1e-9,
        "{done}"
    );
    assert!(!exists(unused_snap).await, "the unused snapshot is deleted");
    assert!(exists(backup.id.clone()).await, "the backup is kept");
    // One real deletion (the dry run's call and the real one for the unused snapshot).
    assert_eq!(w.sim.call_count(Call::DeleteSnapshot), 2);
}
both!(unused_snapshots_are_reverified_before_deletion);

async fn unregistered_instances_are_authorized_or_terminated_but_never_protected_or_cluster_nodes(
    b: Backend,
) {
    let w = world(b).await;
    let listed = w.listed("/api/instances/unregistered", "instance_id").await;
    let running: Vec<String> = w
        .sim
        .describe_instances()
        .await
        .expect("instances")
        .into_iter()
        .filter(|i| {
            i.state == InstanceState::Running && i.cluster.is_none() && i.asg_name.is_none()
        })
        .map(|i| i.id)
        .collect();
    let candidates: Vec<(String, String)> = listed
        .into_iter()
        .filter(|(_, i)| running.contains(i))
        .collect();
    assert!(candidates.len() >= 4, "{candidates:?}");
    let [(auth_row, auth_id), (prot_row, prot_id), (node_row, node_id), (term_row, term_id)] =
        [0, 1, 2, 3].map(|k| candidates[k].clone());

    // Authorize: kept, remembered, off the list.
    let (st, r) = w
        .post(
            "/api/instances/unregistered/authorize",
            json!({"ids": [auth_row]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["authorized"], 1);
    let after = w.listed("/api/instances/unregistered", "instance_id").await;
    assert!(after.iter().all(|(_, i)| *i != auth_id), "{after:?}");
    // It can be neither authorized again nor terminated: no longer on the list (422 names it).
    let (st, e) = w
        .post(
            "/api/instances/unregistered/terminate",
            json!({"ids": [term_row, auth_row]}),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "ids[1]", "{e}");

    // Between listing and execution one instance gets the protect tag and one joins a
    // cluster (its cluster tag appears).
    w.sim
        .tag_instance(&prot_id, spot_jobs::waste::TAG_PROTECT, "true")
        .expect("tag");
    w.sim
        .tag_instance(&node_id, "kubernetes.io/cluster/shop", "owned")
        .expect("tag");
    let (job, items) = w
        .run(
            "/api/instances/unregistered/terminate",
            &[&prot_row, &node_row, &term_row],
            false,
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let prot = item(&items, &prot_id);
    assert_eq!(prot["status"], "skipped", "{prot}");
    assert!(
        prot["error"].as_str().unwrap_or("").contains("protect"),
        "{prot}"
    );
    let node = item(&items, &node_id);
    assert_eq!(node["status"], "skipped", "{node}");
    assert!(
        node["error"]
            .as_str()
            .unwrap_or("")
            .contains("cluster shop"),
        "{node}"
    );
    let term = item(&items, &term_id);
    assert_eq!(term["status"], "done", "{term}");
    assert!(
        term["monthly_saving"].as_f64().unwrap_or(0.0) > 0.0,
        "{term}"
    );

    let states: std::collections::HashMap<String, InstanceState> = w
        .sim
        .describe_instances()
        .await
        .expect("instances")
        .into_iter()
        .map(|i| (i.id, i.state))
        .collect();
    assert_eq!(states[&term_id], InstanceState::Terminated);
    for kept in [&auth_id, &prot_id, &node_id] {
        assert_eq!(states[kept], InstanceState::Running, "{kept}");
    }
    assert_eq!(w.sim.call_count(Call::TerminateInstances), 1);
    let after = w.listed("/api/instances/unregistered", "instance_id").await;
    assert!(after.iter().all(|(_, i)| *i != term_id), "{after:?}");
}
both!(unregistered_instances_are_authorized_or_terminated_but_never_protected_or_cluster_nodes);

async fn a_cancel_leaves_the_items_not_yet_started_skipped(b: Backend) {
    let w = world(b).await;
    // Long enough to cancel while the second volume's snapshot completes.
    w.sim
        .set_snapshot_completion(Duration::from_millis(1500))
        .expect("completion");
    let listed = w.listed("/api/volumes/orphaned", "volume_id").await;
    assert!(listed.len() >= 3, "{listed:?}");
    let rows: Vec<&str> = listed[..3].iter().map(|(r, _)| r.as_str()).collect();
    let vols: Vec<&str> = listed[..3].iter().map(|(_, v)| v.as_str()).collect();
    let (st, job) = w
        .post("/api/volumes/orphaned/cleanup", json!({"ids": rows}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().expect("id").to_string();
    // Wait until the first volume is done and the second one is running.
    let mut seen = Value::Null;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        seen = w.items(&id).await;
        if item(&seen, vols[0])["status"] == "done" && item(&seen, vols[1])["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(item(&seen, vols[1])["status"], "running", "{seen}");
    let (st, c) = w.post(&format!("/api/jobs/{id}/cancel"), json!({})).await;
    assert_eq!(st, StatusCode::OK, "{c}");
    let done = wait_job(&w.app, &w.s.access, &format!("/api/jobs/{id}")).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let items = w.items(&id).await;
    assert_eq!(item(&items, vols[0])["status"], "done", "{items}");
    let second = item(&items, vols[1]);
    assert_eq!(second["status"], "skipped", "{second}");
    assert!(
        second["error"].as_str().unwrap_or("").contains("was kept"),
        "{second}"
    );
    let third = item(&items, vols[2]);
    assert_eq!(third["status"], "skipped", "{third}");
    assert!(
        third["error"]
            .as_str()
            .unwrap_or("")
            .contains("not started"),
        "{third}"
    );
    // The first volume is gone; the second (snapshotted, not deleted) and third are not.
    let volumes = w.sim.describe_volumes().await.expect("volumes");
    assert!(volumes.iter().all(|v| v.id != vols[0]));
    assert!(volumes.iter().any(|v| v.id == vols[1]));
    assert!(volumes.iter().any(|v| v.id == vols[2]));
    assert_eq!(w.sim.call_count(Call::CreateSnapshot), 2);
    assert_eq!(w.sim.call_count(Call::DeleteVolume), 1);
}
both!(a_cancel_leaves_the_items_not_yet_started_skipped);

async fn viewers_are_refused_and_other_tenants_ids_are_not_found(b: Backend) {
    let w = world(b).await;
    let listed = w.listed("/api/volumes/orphaned", "volume_id").await;
    let row = listed[0].0.clone();
    let viewer = w.app.add_member(&w.s, "viewer").await;
    for path in [
        "/api/volumes/orphaned/cleanup",
        "/api/snapshots/unused/cleanup",
        "/api/instances/unregistered/terminate",
        "/api/instances/unregistered/authorize",
    ] {
        let (st, e) = w
            .app
            .json(
                Method::POST,
                path,
                Some(&viewer.access),
                Some(json!({"ids": [row]})),
            )
            .await;
        assert_error(st, &e, StatusCode::FORBIDDEN);
    }
    // Another organization, with its own account, cannot name this one's volume.
    let other = w.app.signup("Other").await;
    link_sim(&w.app, &other, "210987654321", "Theirs").await;
    let (st, e) = w
        .app
        .json(
            Method::POST,
            "/api/volumes/orphaned/cleanup",
            Some(&other.access),
            Some(json!({"ids": [row]})),
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    // Bad bodies name the field.
    for (body, field) in [
        (json!({"ids": []}), "ids"),
        (json!({"ids": [row, row]}), "ids[1]"),
        (json!({"ids": [row], "force": true}), "force"),
    ] {
        let (st, e) = w.post("/api/volumes/orphaned/cleanup", body).await;
        let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    // A batch's items are visible to its organization only (viewers included).
    let (job, _) = w.run("/api/volumes/orphaned/cleanup", &[&row], true).await;
    let path = format!("/api/jobs/{}/items", job["id"].as_str().expect("id"));
    let (st, v) = w
        .app
        .json(Method::GET, &path, Some(&viewer.access), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{v}");
    let (st, e) = w
        .app
        .json(Method::GET, &path, Some(&other.access), None)
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    assert_eq!(
        w.sim.call_count(Call::DeleteVolume),
        1,
        "only the dry run's validation"
    );
}
both!(viewers_are_refused_and_other_tenants_ids_are_not_found);

async fn a_redelivered_batch_never_acts_twice(b: Backend) {
    let w = world(b).await;
    w.sim
        .set_snapshot_completion(Duration::ZERO)
        .expect("completion");
    let listed = w.listed("/api/snapshots/unused", "snapshot_id").await;
    assert!(listed.len() >= 2, "{listed:?}");
    let rows: Vec<&str> = listed[..2].iter().map(|(r, _)| r.as_str()).collect();
    let (job, _) = w.run("/api/snapshots/unused/cleanup", &rows, false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let id = job["id"].as_str().expect("id").to_string();
    assert_eq!(w.sim.call_count(Call::DeleteSnapshot), 2);
    let reads = w.sim.call_count(Call::DescribeSnapshots);

    // apalis delivers again (twice), and the job even gets claimed again, as after a
    // worker that died between finishing its items and closing the job.
    sqlx::query(
        "UPDATE jobs SET status = 'queued', worker_id = NULL, finished_at = NULL WHERE id = $1",
    )
    .bind(&id)
    .execute(&w.app.db.pool)
    .await
    .expect("requeue");
    w.app.state.jobs.enqueue_id(&id).await.expect("enqueue");
    w.app.state.jobs.enqueue_id(&id).await.expect("enqueue");
    let again = wait_job(&w.app, &w.s.access, &format!("/api/jobs/{id}")).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["result"]["done"], 2, "{again}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        w.sim.call_count(Call::DeleteSnapshot),
        2,
        "no item acted on twice"
    );
    assert_eq!(
        w.sim.call_count(Call::DescribeSnapshots),
        reads,
        "done items are not even re-read"
    );

    // A volume whose snapshot was requested by a delivery that died before storing the
    // answer: the resumed item adopts that snapshot instead of taking a second one.
    let (row, vol) = w.listed("/api/volumes/orphaned", "volume_id").await[0].clone();
    let volume = w
        .sim
        .describe_volumes()
        .await
        .expect("volumes")
        .into_iter()
        .find(|v| v.id == vol)
        .expect("volume");
    let job = batches::create(
        &w.app.db,
        spot_models::jobs::NewJob {
            organization_id: Some(&w.s.org_id),
            kind: spot_jobs::waste::CLEANUP_VOLUMES,
            target_id: None,
            dry_run: false,
            requested_by: Some(&w.s.user_id),
            safe_mode: false,
        },
        &[batches::NewItem {
            item_key: vol.clone(),
            kind: batches::VOLUME,
            resource_row_id: row,
            account_id: sqlx::query_as::<_, (String,)>(
                "SELECT id FROM accounts WHERE organization_id = $1 AND status = 'active'",
            )
            .bind(&w.s.org_id)
            .fetch_one(&w.app.db.pool)
            .await
            .expect("account")
            .0,
            expected_monthly_saving: f64::from(volume.size_gib) * 0.08,
        }],
    )
    .await
    .expect("batch");
    assert!(batches::start(&w.app.db, &job.id, &vol)
        .await
        .expect("start"));
    // The first delivery's CreateSnapshot reached the cloud with the item's client token;
    // its answer was lost with the worker.
    let key = batches::item(&w.app.db, &job.id, &vol)
        .await
        .expect("item")
        .expect("item row")
        .idempotency_key;
    let taken = w
        .sim
        .create_snapshot(&vol, &key, false)
        .await
        .expect("snapshot")
        .applied()
        .expect("applied");
    let snapshots_of = |snaps: Vec<spot_cloud::Snapshot>| {
        snaps
            .iter()
            .filter(|s| s.volume_id.as_deref() == Some(vol.as_str()))
            .count()
    };
    let taken_before = snapshots_of(w.sim.describe_snapshots().await.expect("snapshots"));
    w.app.state.jobs.enqueue_id(&job.id).await.expect("enqueue");
    let done = wait_job(&w.app, &w.s.access, &format!("/api/jobs/{}", job.id)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let items = w.items(&job.id).await;
    let it = item(&items, &vol);
    assert_eq!(it["status"], "done", "{it}");
    assert_eq!(it["result"]["snapshot_id"], taken.id.as_str(), "{it}");
    assert_eq!(it["result"]["client_token"], key.as_str(), "{it}");
    assert_eq!(
        snapshots_of(w.sim.describe_snapshots().await.expect("snapshots")),
        taken_before,
        "the repeated request (same client token) took no second snapshot"
    );
    assert!(w
        .sim
        .describe_volumes()
        .await
        .expect("volumes")
        .iter()
        .all(|v| v.id != vol));
}
both!(a_redelivered_batch_never_acts_twice);
