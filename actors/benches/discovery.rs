//! Discovery benchmark: links a simulated account of 1,000 and of 10,000 instances (50
//! clusters at 10k) and reports the first scan (everything new) and a steady-state rescan
//! (nothing changed), each = read through the `Cloud` port + diff-apply in one transaction on
//! SQLite. Prints the figures and the rescan/first ratio; no pass/fail thresholds.
//!
//!   cargo bench -p spot-actors --no-default-features --bench discovery

use std::time::Instant;

use spot_actors::connect::{CloudConnector, ConnectTarget, Credentials, SimConnector};
use spot_actors::discovery::discover;
use spot_cloud::sim::SimProfile;
use spot_models::{accounts, inventory, orgs, Db};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!(
        "{:>10} {:>9} {:>12} {:>12} {:>12} {:>14} {:>8}",
        "instances",
        "clusters",
        "read first",
        "apply first",
        "first total",
        "rescan total",
        "ratio"
    );
    for (instances, clusters) in [(1_000usize, 10usize), (10_000, 50)] {
        let dir = std::env::temp_dir().join(format!("spot-bench-{}", uuid_like()));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = Db::connect(&format!("sqlite://{}/bench.db", dir.display()))
            .await
            .expect("db");
        db.migrate().await.expect("migrate");
        let org = orgs::signup(
            &db,
            "Bench",
            &format!("bench-{}@example.com", uuid_like()),
            "x",
        )
        .await
        .expect("org");
        let account_id = org.placeholder_account_id.clone();
        let sim = SimConnector::with_profile(
            42,
            SimProfile::Scale {
                instances,
                clusters,
            },
        );
        let target = ConnectTarget {
            region: "us-east-1".into(),
            credentials: Credentials::Role {
                role_arn: "arn:aws:iam::123456789012:role/SpotOptimizer".into(),
                external_id: "x".into(),
            },
        };
        let cloud = sim.connect(&target).await.expect("connect");
        let noop = |_: &str, _: i64| {};

        let t0 = Instant::now();
        let snap = discover(cloud.as_ref(), &noop).await.expect("discover");
        let read_first = t0.elapsed();
        let t1 = Instant::now();
        let r = inventory::apply(&db, &org.organization.id, &account_id, &snap)
            .await
            .expect("apply");
        let apply_first = t1.elapsed();
        assert_eq!(r.instances.new as usize, snap.instances.len());

        let t2 = Instant::now();
        let mut snap2 = discover(cloud.as_ref(), &noop).await.expect("discover");
        snap2.observed_at = snap.observed_at + 1;
        let r2 = inventory::apply(&db, &org.organization.id, &account_id, &snap2)
            .await
            .expect("apply");
        let rescan = t2.elapsed();
        let first = read_first + apply_first;
        println!(
            "{:>10} {:>9} {:>10.0}ms {:>10.0}ms {:>10.0}ms {:>12.0}ms {:>8.2}   (rescan diff: {} changed, {} new)",
            snap.instances.len(),
            snap.clusters.len(),
            read_first.as_secs_f64() * 1e3,
            apply_first.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e3,
            rescan.as_secs_f64() * 1e3,
            rescan.as_secs_f64() / first.as_secs_f64(),
            r2.instances.changed,
            r2.instances.new,
        );
        let _ = accounts::list(&db, &org.organization.id).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}
