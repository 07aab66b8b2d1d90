//! Decision latency (CORE-DECIDE, event-driven): from a pending-pod event to a launch
//! decision, on the market of a simulated us-east-1 account scored by the shipped model.
//! Batches of 1, 10, 100 and 500 pods, p50 / p95 / p99 over 300 / 300 / 150 / 60 runs,
//! measured twice: the cluster actor's work alone (pack the pending pods onto new capacity
//! from the cached market), then end to end through a running actor system (SQLite, the
//! simulated account discovered, `Actors::pending_pods` from call to reply). The seeds'
//! goal is < 1 s; the planner issue's, p99 < 50 ms through the cluster actor.
//!
//!   cargo bench -p spot-actors --no-default-features --bench decision

use std::time::Instant;

use spot_actors::connect::{CloudConnector, ConnectTarget, Credentials, SimConnector};
use spot_actors::hive::MemoryTracker;
use spot_actors::react;
use spot_actors::risk::{ActiveModel, SHIPPED_ID, SHIPPED_MODEL};
use spot_engine::pack::Pod;
use spot_engine::risk::Runtime;
use spot_engine::spot::NodeTemplate;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sim = SimConnector::new(42);
    let target = ConnectTarget {
        region: "us-east-1".into(),
        credentials: Credentials::Role {
            role_arn: "arn:aws:iam::123456789012:role/SpotOptimizer".into(),
            external_id: "x".into(),
        },
    };
    let cloud = sim.connect(&target).await.expect("connect");
    let model = ActiveModel::load(SHIPPED_ID, "risk-v1", SHIPPED_MODEL, &Runtime::Tract);
    let t0 = Instant::now();
    let market = spot_actors::market::read(cloud.as_ref(), &model, &MemoryTracker::default())
        .await
        .expect("market");
    let read_ms = t0.elapsed().as_secs_f64() * 1000.0;
    println!(
        "market: {} types, {} pools scored by {} in {read_ms:.1} ms (once per discovery)",
        market.catalog.types().len(),
        market.scores.len(),
        market.model
    );
    println!("the planner on the cached market (react::pending_pods, the actor's work):");
    header();
    let template = NodeTemplate::default();
    let batches: Vec<(usize, Vec<Pod>, usize)> = [1usize, 10, 100, 500]
        .into_iter()
        .map(|n| {
            let pods: Vec<Pod> = (0..n)
                .map(|i| {
                    Pod::simple(
                        format!("p{i}"),
                        [250, 500, 1000, 2000][i % 4],
                        [512, 1024, 4096, 8192][i % 4],
                    )
                })
                .collect();
            // Enough samples for a p99 that is not just the maximum.
            let runs = match n {
                0..=10 => 300,
                11..=100 => 150,
                _ => 60,
            };
            (n, pods, runs)
        })
        .collect();
    for (n, pods, runs) in &batches {
        let mut times = Vec::new();
        let mut nodes = 0;
        for _ in 0..*runs {
            let t = Instant::now();
            let d =
                react::pending_pods(&market, &template, true, "bench", pods, 0).expect("decision");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            nodes = d.nodes.len();
        }
        row(*n, &mut times, nodes);
    }
    through_the_actor(&batches).await;
}

fn header() {
    println!(
        "{:>6} {:>6} {:>10} {:>10} {:>10} {:>10} {:>8} {:>12}",
        "pods", "runs", "p50 ms", "p95 ms", "p99 ms", "max ms", "nodes", "vs 1 s goal"
    );
}

fn row(n: usize, times: &mut [f64], nodes: usize) {
    times.sort_by(f64::total_cmp);
    let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{n:>6} {:>6} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {nodes:>8} {:>11.3}x",
        times.len(),
        p(0.5),
        p(0.95),
        p(0.99),
        p(1.0),
        p(0.5) / 1000.0
    );
}

/// Through the cluster actor: the same batches as pending-pod messages to a running actor
/// system (SQLite, the simulated account discovered, its cluster actors holding the scored
/// market), timed from the call to the decision's reply; prints one row per batch.
async fn through_the_actor(batches: &[(usize, Vec<Pod>, usize)]) {
    use spot_actors::bus::Bus;
    use spot_actors::risk::RiskService;
    use spot_actors::system::{Actors, Deps};
    use std::sync::Arc;
    use std::time::Duration;

    let dir = std::env::temp_dir().join(format!("spot-decision-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = spot_models::Db::connect(&format!("sqlite://{}/bench.db", dir.display()))
        .await
        .expect("sqlite");
    db.migrate().await.expect("migrate");
    let org = spot_models::orgs::signup(&db, "Bench", "bench@example.com", "x")
        .await
        .expect("org")
        .organization;
    let connector: Arc<dyn CloudConnector> = Arc::new(SimConnector::new(42));
    let account = spot_models::accounts::upsert_linked(
        &db,
        &org.id,
        &spot_models::accounts::LinkedAccount {
            name: "bench",
            provider: connector.provider(),
            aws_account_id: "111122223333",
            method: "role",
            role_arn: Some("arn:aws:iam::111122223333:role/SpotOptimizer"),
            external_id: Some(&org.external_id),
            region: "us-east-1",
            credentials: None,
        },
    )
    .await
    .expect("account");
    let deps = Deps {
        db: db.clone(),
        connector,
        keyring: spot_models::crypto::Keyring::new(&[7u8; 32], &[]).expect("keyring"),
        bus: Bus::default(),
        hive: Arc::new(MemoryTracker::default()),
        risk: Arc::new(RiskService::new(Runtime::Tract)),
        interval: Duration::from_secs(300),
        replica_id: "bench".into(),
        lease: Duration::from_secs(30),
    };
    let actors = Actors::start(deps).await.expect("actors");
    actors.ensure(&account.id);
    // Discovery finds the account's clusters; their actors get the market right after.
    let mut cluster = None;
    for _ in 0..600 {
        let cs = spot_models::inventory::list_clusters(&db, &org.id, Some(&account.id))
            .await
            .expect("clusters");
        if let Some(c) = cs.first() {
            let probe = batches[0].1.clone();
            if matches!(
                actors.pending_pods(&account.id, &c.name, probe).await,
                Ok(Ok(_))
            ) {
                cluster = Some(c.name.clone());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cluster = cluster.expect("a cluster actor with a market within 60 s");
    println!("through the cluster actor `{cluster}` (ActorSystem::pending_pods, call to reply):");
    header();
    for (n, pods, runs) in batches {
        let mut times = Vec::new();
        let mut nodes = 0;
        for _ in 0..*runs {
            let t = Instant::now();
            let d = actors
                .pending_pods(&account.id, &cluster, pods.clone())
                .await
                .expect("actor answers")
                .expect("decision");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            nodes = d.nodes.len();
        }
        row(*n, &mut times, nodes);
    }
    actors.shutdown_and_release(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
