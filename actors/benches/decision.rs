//! Decision latency (CORE-DECIDE, event-driven): from a pending-pod event to a launch
//! decision, on the market of a simulated us-east-1 account scored by the shipped model.
//! Measures the cluster actor's work (pack the pending pods onto new capacity from the
//! cached market) for batches of 1, 10, 100 and 500 pods. The seeds' goal is < 1 s.
//!
//!   cargo bench -p spot-actors --bench decision

use std::time::Instant;

use spot_actors::connect::{CloudConnector, ConnectTarget, Credentials, SimConnector};
use spot_actors::hive::MemoryTracker;
use spot_actors::react;
use spot_actors::risk::{ActiveModel, SHIPPED_ID, SHIPPED_MODEL};
use spot_engine::pack::{CapacityReq, Pod};
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
    println!(
        "{:>6} {:>10} {:>10} {:>10} {:>8} {:>12}",
        "pods", "p50 ms", "p95 ms", "max ms", "nodes", "vs 1 s goal"
    );
    let template = NodeTemplate::default();
    for n in [1usize, 10, 100, 500] {
        let pods: Vec<Pod> = (0..n)
            .map(|i| Pod {
                id: format!("p{i}"),
                cpu_millis: [250, 500, 1000, 2000][i % 4],
                memory_mib: [512, 1024, 4096, 8192][i % 4],
                gpus: 0,
                capacity: CapacityReq::Any,
                arch: None,
                anti_affinity_group: None,
                az_spread_group: None,
            })
            .collect();
        let runs = if n >= 500 { 5 } else { 20 };
        let mut times = Vec::new();
        let mut nodes = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let d =
                react::pending_pods(&market, &template, true, "bench", &pods, 0).expect("decision");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            nodes = d.nodes.len();
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "{n:>6} {:>10.2} {:>10.2} {:>10.2} {nodes:>8} {:>11.3}x",
            p(0.5),
            p(0.95),
            p(1.0),
            p(0.5) / 1000.0
        );
    }
}
