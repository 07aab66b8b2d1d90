//! Golden test of the what-if entry point on the committed example workload.
//!
//! Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test -p spot-engine --test it whatif` and review the diff.

use spot_engine::whatif;

const EXAMPLE: &str = include_str!("../../whatif/example.json");
const GOLDEN: &str = "whatif/example.golden.json";

#[test]
fn example_matches_the_golden_output() {
    let report = whatif::run_json(EXAMPLE).expect("the example plans");
    let got = serde_json::to_string_pretty(&report).expect("json") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).expect("golden file exists");
    assert_eq!(got, want, "what-if output differs from {GOLDEN}");
}

#[test]
fn example_report_is_consistent() {
    let r = whatif::run_json(EXAMPLE).expect("plans");
    assert!(r.lower_bound_hourly <= r.objective_hourly + 1e-12);
    assert!(r.objective_hourly <= r.ffd_baseline_hourly + 1e-9);
    let cost: f64 = r.nodes.iter().map(|n| n.hourly_price).sum();
    assert!((cost - r.cost_hourly).abs() < 1e-9);
    // Every current node and every pod to place has a reason.
    assert_eq!(r.node_reasons.len(), 7);
    assert_eq!(r.pod_reasons.len(), 10);
    // The do-not-disrupt and unmanaged nodes are kept as they are.
    for name in ["ip-10-0-1-15", "ip-10-0-1-16"] {
        let n = r.nodes.iter().find(|n| n.name == name).expect("kept");
        assert!(!n.new);
    }
}
