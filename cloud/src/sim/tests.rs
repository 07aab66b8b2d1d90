//! Behaviour of the simulator through the `Cloud` port.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;
use crate::ResourceKind;

const ACCOUNT: &str = "123456789012";

fn manual_clock() -> SimClock {
    SimClock::manual(SimClock::default_start())
}

fn sim_with(seed: u64, profile: SimProfile, clock: &SimClock) -> SimCloud {
    SimCloud::new(SimConfig {
        seed,
        account_id: ACCOUNT.into(),
        region: "us-east-1".into(),
        profile,
        clock: clock.clone(),
    })
    .expect("valid config")
}

fn demo(seed: u64) -> (SimCloud, SimClock) {
    let clock = manual_clock();
    (sim_with(seed, SimProfile::demo(), &clock), clock)
}

#[derive(Debug, PartialEq)]
struct WorldView {
    instances: Vec<Instance>,
    volumes: Vec<Volume>,
    snapshots: Vec<crate::types::Snapshot>,
    asgs: Vec<AutoScalingGroup>,
    clusters: Vec<EksCluster>,
    pods: Vec<PodInventory>,
}

async fn snapshot(sim: &SimCloud) -> WorldView {
    let mut clusters = Vec::new();
    let mut pods = Vec::new();
    for name in sim.list_eks_clusters().await.expect("clusters") {
        clusters.push(sim.describe_eks_cluster(&name).await.expect("cluster"));
        pods.push(sim.pod_inventory(&name).await.expect("pods"));
    }
    WorldView {
        instances: sim.describe_instances().await.expect("instances"),
        volumes: sim.describe_volumes().await.expect("volumes"),
        snapshots: sim.describe_snapshots().await.expect("snapshots"),
        asgs: sim.describe_auto_scaling_groups().await.expect("asgs"),
        clusters,
        pods,
    }
}

async fn prices(sim: &SimCloud) -> Vec<SpotPricePoint> {
    let since = sim.now() - chrono::Duration::days(3);
    sim.spot_price_history(&[], &[], since)
        .await
        .expect("history")
}

fn launch_req(ty: &str, az: &str, lifecycle: Lifecycle, count: u32, token: &str) -> LaunchRequest {
    LaunchRequest {
        instance_type: ty.into(),
        az: Some(az.into()),
        subnet_id: None,
        lifecycle,
        count,
        tags: Tags::new(),
        client_token: token.into(),
        asg_name: None,
    }
}

#[tokio::test]
async fn same_seed_gives_identical_inventory_and_prices() {
    let (a, _) = demo(7);
    let (b, _) = demo(7);
    assert_eq!(snapshot(&a).await, snapshot(&b).await);
    assert_eq!(prices(&a).await, prices(&b).await);
}

#[tokio::test]
async fn different_seeds_give_different_worlds() {
    let (a, _) = demo(7);
    let (b, _) = demo(8);
    let ids = |s: WorldView| s.instances.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_ne!(ids(snapshot(&a).await), ids(snapshot(&b).await));
    assert_ne!(prices(&a).await, prices(&b).await);
}

#[tokio::test]
async fn linking_the_same_account_yields_the_same_world() {
    let clock = manual_clock();
    let make = |acct: &str| {
        SimCloud::new(SimConfig {
            clock: clock.clone(),
            ..SimConfig::for_account(acct, 1)
        })
        .expect("valid")
    };
    let a = make(ACCOUNT);
    let b = make(ACCOUNT);
    let c = make("210987654321");
    assert_eq!(snapshot(&a).await, snapshot(&b).await);
    assert_ne!(
        snapshot(&a).await.instances[0].id,
        snapshot(&c).await.instances[0].id
    );
    let id = a.caller_identity().await.expect("identity");
    assert_eq!(id.account_id, ACCOUNT);
}

#[tokio::test]
async fn malformed_account_ids_are_rejected() {
    for bad in ["12345", "12345678901a", "1234567890123"] {
        let r = SimCloud::new(SimConfig {
            account_id: bad.into(),
            ..SimConfig::default()
        });
        assert!(matches!(r, Err(CloudError::Invalid { .. })), "{bad}");
    }
}

#[tokio::test]
async fn catalog_and_on_demand_prices_come_through_the_port() {
    let (sim, _) = demo(1);
    let catalog = sim.instance_type_catalog().await.expect("catalog");
    assert!(catalog.len() >= 150);
    assert!(catalog
        .iter()
        .any(|t| t.architecture == Architecture::Arm64));
    assert!(catalog.iter().any(|t| t.gpus > 0));
    let all = sim.on_demand_prices(&[]).await.expect("prices");
    assert_eq!(all.len(), catalog.len());
    assert!(all.iter().all(|p| p.usd_per_hour > 0.0));
    let some = sim
        .on_demand_prices(&["m5.large".into(), "nope.large".into()])
        .await
        .expect("prices");
    assert_eq!(some.len(), 1);
    assert_eq!(some[0].usd_per_hour, 0.096);
}

#[tokio::test]
async fn spot_is_well_below_on_demand_on_average() {
    let (sim, _) = demo(3);
    let od: HashMap<String, f64> = sim
        .on_demand_prices(&[])
        .await
        .expect("prices")
        .into_iter()
        .map(|p| (p.instance_type, p.usd_per_hour))
        .collect();
    let points = prices(&sim).await;
    assert!(points.len() > 1000);
    let ratios: Vec<f64> = points
        .iter()
        .filter_map(|p| od.get(&p.instance_type).map(|o| p.usd_per_hour / o))
        .collect();
    assert!(ratios.iter().all(|r| *r > 0.0 && *r <= 1.0 + 1e-9));
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    assert!((0.25..0.50).contains(&mean), "mean spot/on-demand {mean}");
    // History is filtered by type and AZ, and reports price changes only.
    let filtered = sim
        .spot_price_history(
            &["m5.large".into()],
            &["us-east-1a".into()],
            sim.now() - chrono::Duration::days(2),
        )
        .await
        .expect("history");
    assert!(!filtered.is_empty() && filtered.len() <= 49);
    assert!(filtered
        .iter()
        .all(|p| p.instance_type == "m5.large" && p.az == "us-east-1a"));
}

#[tokio::test]
async fn interruptions_concentrate_in_low_capacity_pools() {
    let clock = manual_clock();
    let sim = sim_with(5, SimProfile::Empty, &clock);
    // Rank healthy (x86, non-GPU, small) pools by their long-run capacity.
    let catalog = Catalog::embedded();
    let mut pools: Vec<(f64, String, String)> = Vec::new();
    for t in catalog
        .types()
        .iter()
        .filter(|t| t.gpus == 0 && t.vcpu <= 16)
    {
        for az in ["us-east-1a", "us-east-1b", "us-east-1c"] {
            if let Ok(c) = sim.pool_mean_capacity(&t.name, az) {
                pools.push((c, t.name.clone(), az.to_string()));
            }
        }
    }
    pools.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut launched: Vec<(String, f64)> = Vec::new();
    let mut token = 0;
    let groups = [
        pools.iter().take(60).collect::<Vec<_>>(),
        pools.iter().rev().take(60).collect::<Vec<_>>(),
    ];
    for group in groups {
        for (mean, ty, az) in group {
            token += 1;
            let req = launch_req(ty, az, Lifecycle::Spot, 2, &format!("t{token}"));
            if let Ok(Mutation::Applied(r)) = sim.launch_capacity(&req, false).await {
                launched.extend(r.instances.into_iter().map(|i| (i.id, *mean)));
            }
        }
    }
    assert!(launched.len() > 150, "only {} launched", launched.len());
    let start = clock.now();
    let mut notices: HashSet<String> = HashSet::new();
    let mut rebalances: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut lead_minutes = Vec::new();
    let mut since = start;
    for _ in 0..(7 * 24) {
        clock.advance(Duration::from_secs(3600));
        for e in sim.poll_events(since).await.expect("events") {
            match e.kind {
                SpotEventKind::RebalanceRecommendation => {
                    rebalances.insert(e.instance_id.clone(), e.time);
                }
                SpotEventKind::InterruptionNotice => {
                    assert_eq!(e.action_time, Some(e.time + chrono::Duration::minutes(2)));
                    if let Some(r) = rebalances.get(&e.instance_id) {
                        lead_minutes.push((e.time - *r).num_minutes());
                    }
                    notices.insert(e.instance_id.clone());
                }
                other => panic!("the simulator emits only spot market signals, got {other:?}"),
            }
        }
        since = clock.now();
    }
    // Interrupted instances are gone.
    let live: HashSet<String> = sim
        .describe_instances()
        .await
        .expect("instances")
        .into_iter()
        .filter(|i| i.state == InstanceState::Running)
        .map(|i| i.id)
        .collect();
    assert!(notices.iter().all(|id| !live.contains(id)));

    let xs: Vec<f64> = launched.iter().map(|(_, c)| *c).collect();
    let ys: Vec<f64> = launched
        .iter()
        .map(|(id, _)| f64::from(u8::from(notices.contains(id))))
        .collect();
    let rate = |low: bool| {
        let sel: Vec<f64> = launched
            .iter()
            .zip(&ys)
            .filter(|((_, c), _)| (*c < 0.5) == low)
            .map(|(_, y)| *y)
            .collect();
        sel.iter().sum::<f64>() / sel.len().max(1) as f64
    };
    let (low, high) = (rate(true), rate(false));
    assert!(!notices.is_empty(), "no interruptions in a week");
    assert!(
        low > 5.0 * high.max(0.01),
        "low-capacity {low} vs high {high}"
    );
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sx = xs.iter().map(|x| (x - mx).powi(2)).sum::<f64>().sqrt();
    let sy = ys.iter().map(|y| (y - my).powi(2)).sum::<f64>().sqrt();
    let r = cov / (sx * sy);
    assert!(r < -0.4, "capacity vs interruption correlation {r}");
    // Rebalance recommendations usually lead the notice by 10–20 minutes.
    let typical = lead_minutes
        .iter()
        .filter(|m| (10..=20).contains(*m))
        .count();
    assert!(
        typical * 2 > lead_minutes.len(),
        "rebalance lead times {lead_minutes:?}"
    );
}

#[tokio::test]
async fn spot_launch_into_an_exhausted_pool_is_insufficient_capacity() {
    let (sim, _) = demo(2);
    sim.set_pool_capacity("m5.large", "us-east-1a", Some(0.0))
        .expect("pool");
    let req = launch_req("m5.large", "us-east-1a", Lifecycle::Spot, 1, "a");
    let err = sim.launch_capacity(&req, false).await.err();
    assert_eq!(
        err,
        Some(CloudError::InsufficientCapacity {
            instance_type: "m5.large".into(),
            az: "us-east-1a".into()
        })
    );
    // Falling back to on-demand in the same pool works.
    let od = launch_req("m5.large", "us-east-1a", Lifecycle::OnDemand, 1, "b");
    let r = sim.launch_capacity(&od, false).await.expect("on-demand");
    assert_eq!(r.applied().map(|r| r.instances.len()), Some(1));
    // A tight pool cannot serve a large request.
    sim.set_pool_capacity("c5.large", "us-east-1b", Some(0.1))
        .expect("pool");
    let big = launch_req("c5.large", "us-east-1b", Lifecycle::Spot, 50, "c");
    assert!(sim
        .launch_capacity(&big, false)
        .await
        .is_err_and(|e| e.is_capacity()));
}

#[tokio::test]
async fn dry_runs_change_nothing() {
    let (sim, _) = demo(4);
    let before = snapshot(&sim).await;
    let instance = before.instances[0].id.clone();
    let free_volume = before
        .volumes
        .iter()
        .find(|v| v.attached_instance_id.is_none())
        .map(|v| v.id.clone())
        .expect("an unattached volume");
    let snap = before.snapshots[0].id.clone();
    let asg = before.asgs[0].clone();

    let t = sim
        .terminate_instances(std::slice::from_ref(&instance), true)
        .await
        .expect("dry terminate");
    assert!(t.is_dry_run());
    let l = sim
        .launch_capacity(
            &launch_req("m5.large", "us-east-1a", Lifecycle::Spot, 3, "dry"),
            true,
        )
        .await
        .expect("dry launch");
    assert!(l.is_dry_run());
    let u = sim
        .update_auto_scaling_group(
            &AsgUpdate {
                name: asg.name.clone(),
                desired_capacity: Some(asg.max_size),
                ..AsgUpdate::default()
            },
            true,
        )
        .await
        .expect("dry update");
    assert!(u.is_dry_run());
    assert!(sim
        .create_snapshot(&free_volume, "t-dry", true)
        .await
        .expect("dry snapshot")
        .is_dry_run());
    assert!(sim
        .delete_volume(&free_volume, true)
        .await
        .expect("dry delete")
        .is_dry_run());
    let ds = sim.delete_snapshot(&snap, true).await;
    assert!(ds.is_ok_and(|m| m.is_dry_run()) || before.snapshots[0].source_ami.is_some());

    assert_eq!(snapshot(&sim).await, before);
    // A dry run still validates.
    let missing = sim.terminate_instances(&["i-0missing".into()], true).await;
    assert!(matches!(missing, Err(CloudError::NotFound { .. })));
    // And a dry run's client token is not consumed.
    let real = sim
        .launch_capacity(
            &launch_req("m5.large", "us-east-1a", Lifecycle::OnDemand, 3, "dry"),
            false,
        )
        .await;
    assert!(matches!(real, Ok(Mutation::Applied(_))));
}

#[tokio::test]
async fn injected_throttling_returns_throttled_then_recovers() {
    let (sim, _) = demo(6);
    sim.inject_fault_on(Method::DescribeInstances, Fault::Throttle { calls: 2 });
    for _ in 0..2 {
        let e = sim.describe_instances().await.err();
        assert!(
            matches!(
                e,
                Some(CloudError::Throttled {
                    retry_after: Some(_)
                })
            ),
            "{e:?}"
        );
    }
    assert!(sim.describe_instances().await.is_ok());
    assert!(
        sim.describe_volumes().await.is_ok(),
        "other methods unaffected"
    );
    assert_eq!(sim.call_count(Method::DescribeInstances), 3);

    sim.inject_fault(Fault::FailAll("region outage".into()));
    assert_eq!(
        sim.list_eks_clusters().await.err(),
        Some(CloudError::Other("region outage".into()))
    );
    // A faulted mutation changes nothing.
    let before = sim.clock().now();
    sim.clear_faults();
    let snap_before = snapshot(&sim).await;
    sim.inject_fault_on(
        Method::TerminateInstances,
        Fault::Fail {
            calls: 1,
            error: CloudError::Unauthorized("AccessDenied".into()),
        },
    );
    let id = snap_before.instances[0].id.clone();
    let e = sim.terminate_instances(&[id], false).await.err();
    assert_eq!(e, Some(CloudError::Unauthorized("AccessDenied".into())));
    assert_eq!(snapshot(&sim).await, snap_before);
    assert_eq!(sim.clock().now(), before);
}

#[tokio::test]
async fn mutations_change_the_world() {
    let (sim, _) = demo(9);
    let before = snapshot(&sim).await;

    // Terminate an unregistered on-demand instance.
    let target = before
        .instances
        .iter()
        .find(|i| i.cluster.is_none() && i.asg_name.is_none() && i.state == InstanceState::Running)
        .expect("an unregistered instance")
        .id
        .clone();
    let changes = sim
        .terminate_instances(std::slice::from_ref(&target), false)
        .await
        .expect("terminate")
        .applied()
        .expect("applied");
    assert_eq!(changes[0].previous, InstanceState::Running);
    let after = sim.describe_instances().await.expect("instances");
    let t = after
        .iter()
        .find(|i| i.id == target)
        .expect("still visible");
    assert_eq!(t.state, InstanceState::Terminated);
    // Terminating again is fine (idempotent).
    assert!(sim.terminate_instances(&[target], false).await.is_ok());

    // Launch, idempotently.
    let req = launch_req("m6g.large", "us-east-1b", Lifecycle::OnDemand, 2, "job-1-0");
    let first = sim
        .launch_capacity(&req, false)
        .await
        .expect("launch")
        .applied()
        .expect("applied");
    assert_eq!(first.instances.len(), 2);
    assert!(!first.replayed);
    let again = sim
        .launch_capacity(&req, false)
        .await
        .expect("replay")
        .applied()
        .expect("applied");
    assert!(again.replayed);
    assert_eq!(again.instances, first.instances);
    let mismatch = LaunchRequest {
        count: 3,
        ..req.clone()
    };
    assert!(matches!(
        sim.launch_capacity(&mismatch, false).await,
        Err(CloudError::Invalid { .. })
    ));

    // Scale an Auto Scaling group down and up.
    let asg = before
        .asgs
        .iter()
        .find(|a| a.desired_capacity >= 2)
        .expect("an asg")
        .clone();
    let down = sim
        .update_auto_scaling_group(
            &AsgUpdate {
                name: asg.name.clone(),
                min_size: Some(0),
                desired_capacity: Some(0),
                ..AsgUpdate::default()
            },
            false,
        )
        .await
        .expect("scale down")
        .applied()
        .expect("applied");
    assert_eq!(down.desired_capacity, 0);
    assert!(down.instance_ids.is_empty());
    let up = sim
        .update_auto_scaling_group(
            &AsgUpdate {
                name: asg.name.clone(),
                desired_capacity: Some(asg.desired_capacity),
                ..AsgUpdate::default()
            },
            false,
        )
        .await
        .expect("scale up")
        .applied()
        .expect("applied");
    assert_eq!(up.instance_ids.len() as u32, asg.desired_capacity);
    let bad = sim
        .update_auto_scaling_group(
            &AsgUpdate {
                name: asg.name.clone(),
                desired_capacity: Some(asg.max_size + 1),
                ..AsgUpdate::default()
            },
            false,
        )
        .await;
    assert!(matches!(bad, Err(CloudError::Invalid { .. })));

    // Detach one member with the desired capacity lowered, then terminate it: the group
    // launches no replacement and keeps its other members.
    let member = up.instance_ids[0].clone();
    let others: Vec<String> = up.instance_ids[1..].to_vec();
    let dry = sim
        .detach_from_auto_scaling_group(&asg.name, std::slice::from_ref(&member), true)
        .await
        .expect("dry detach");
    assert!(dry.is_dry_run());
    let detached = sim
        .detach_from_auto_scaling_group(&asg.name, std::slice::from_ref(&member), false)
        .await
        .expect("detach")
        .applied()
        .expect("applied");
    assert_eq!(detached.desired_capacity, asg.desired_capacity - 1);
    assert_eq!(detached.instance_ids, others);
    assert!(matches!(
        sim.detach_from_auto_scaling_group(&asg.name, std::slice::from_ref(&member), false)
            .await,
        Err(CloudError::Invalid { .. })
    ));
    sim.terminate_instances(std::slice::from_ref(&member), false)
        .await
        .expect("terminate");
    let after = sim.describe_auto_scaling_groups().await.expect("groups");
    let g = after.iter().find(|g| g.name == asg.name).expect("group");
    assert_eq!(g.instance_ids, others, "no replacement was launched");

    // Volume and snapshot cleanup.
    let free = before
        .volumes
        .iter()
        .find(|v| v.state == VolumeState::Available)
        .expect("free volume")
        .id
        .clone();
    let attached = before
        .volumes
        .iter()
        .find(|v| v.state == VolumeState::InUse)
        .expect("attached volume")
        .id
        .clone();
    let snap = sim
        .create_snapshot(&free, "t-1", false)
        .await
        .expect("snapshot")
        .applied()
        .expect("applied");
    assert_eq!(snap.volume_id.as_deref(), Some(free.as_str()));
    assert_eq!(
        snap.tags.get(crate::TAG_CLIENT_TOKEN).map(String::as_str),
        Some("t-1")
    );
    assert!(sim.delete_volume(&free, false).await.is_ok());
    assert!(matches!(
        sim.delete_volume(&free, false).await,
        Err(CloudError::NotFound { .. })
    ));
    assert!(matches!(
        sim.delete_volume(&attached, false).await,
        Err(CloudError::Invalid { .. })
    ));
    assert!(sim.delete_snapshot(&snap.id, false).await.is_ok());
    let snaps = sim.describe_snapshots().await.expect("snapshots");
    assert!(snaps.iter().all(|s| s.id != snap.id));
    let in_use = snaps
        .iter()
        .filter(|s| s.source_ami.is_some())
        .map(|s| s.id.clone())
        .collect::<Vec<_>>();
    let results: Vec<bool> = futures_lite_all(&sim, &in_use).await;
    assert!(
        results.contains(&false),
        "a snapshot of a registered AMI refuses deletion"
    );
}

async fn futures_lite_all(sim: &SimCloud, ids: &[String]) -> Vec<bool> {
    let mut out = Vec::new();
    for id in ids {
        out.push(sim.delete_snapshot(id, true).await.is_ok());
    }
    out
}

#[tokio::test]
async fn dev_and_staging_clusters_idle_at_night() {
    let (sim, _) = demo(10);
    // Wednesday 2025-03-05, local (UTC-5) 03:00 and 14:00.
    let day = SimClock::default_start() + chrono::Duration::days(2);
    let local = |h: i64| day + chrono::Duration::hours(h - market::SIM_UTC_OFFSET_HOURS);
    let mut checked = 0;
    for name in sim.list_eks_clusters().await.expect("clusters") {
        let c = sim.describe_eks_cluster(&name).await.expect("cluster");
        let env = c.tags.get("environment").cloned().unwrap_or_default();
        if env != "development" && env != "staging" {
            continue;
        }
        let inv = sim.pod_inventory(&name).await.expect("inventory");
        let total = |t: DateTime<Utc>| {
            let sim = &sim;
            let name = name.clone();
            let pods = inv.pods.clone();
            async move {
                let mut sum = 0u64;
                for p in pods.iter().filter(|p| p.namespace != "kube-system") {
                    let r = PodRef {
                        namespace: p.namespace.clone(),
                        name: p.name.clone(),
                    };
                    let s = sim
                        .pod_usage(
                            &name,
                            &r,
                            t,
                            t + chrono::Duration::minutes(5),
                            Duration::from_secs(300),
                        )
                        .await
                        .expect("usage");
                    sum += s.iter().map(|s| u64::from(s.cpu_millicores)).sum::<u64>();
                }
                sum
            }
        };
        let night = total(local(3)).await;
        let afternoon = total(local(14)).await;
        assert!(
            night * 5 < afternoon,
            "{name}: 03:00 {night}m vs 14:00 {afternoon}m"
        );
        checked += 1;
    }
    assert!(checked >= 2, "demo has dev and staging clusters");
}

#[tokio::test]
async fn some_clusters_request_far_more_than_they_use() {
    let (sim, clock) = demo(12);
    let peak = SimClock::default_start()
        + chrono::Duration::days(2)
        + chrono::Duration::hours(14 - market::SIM_UTC_OFFSET_HOURS);
    let _ = clock;
    let mut ratios = Vec::new();
    for name in sim.list_eks_clusters().await.expect("clusters") {
        let inv = sim.pod_inventory(&name).await.expect("inventory");
        let (mut req, mut used) = (0u64, 0u64);
        for p in inv.pods.iter().filter(|p| p.namespace != "kube-system") {
            let r = PodRef {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
            };
            let s = sim
                .pod_usage(
                    &name,
                    &r,
                    peak,
                    peak + chrono::Duration::hours(1),
                    Duration::from_secs(600),
                )
                .await
                .expect("usage");
            req += u64::from(p.cpu_request_millicores) * s.len() as u64;
            used += s.iter().map(|s| u64::from(s.cpu_millicores)).sum::<u64>();
        }
        ratios.push((name, used as f64 / req.max(1) as f64));
    }
    assert!(ratios.iter().any(|(_, r)| *r < 0.25), "{ratios:?}");
    assert!(ratios.iter().any(|(_, r)| *r > 0.35), "{ratios:?}");
}

#[tokio::test]
async fn inventory_contains_the_waste_the_product_finds() {
    let (sim, _) = demo(13);
    let s = snapshot(&sim).await;
    let unregistered = s.instances.iter().filter(|i| i.cluster.is_none()).count();
    assert!(unregistered >= 3, "unregistered instances: {unregistered}");
    assert!(s.instances.iter().any(|i| i.lifecycle == Lifecycle::Spot));
    assert!(s
        .instances
        .iter()
        .any(|i| i.lifecycle == Lifecycle::OnDemand && i.cluster.is_some()));
    let unattached: Vec<&Volume> = s
        .volumes
        .iter()
        .filter(|v| v.state == VolumeState::Available && v.attached_instance_id.is_none())
        .collect();
    assert!(unattached.len() >= 3);
    let volume_ids: HashSet<&str> = s.volumes.iter().map(|v| v.id.as_str()).collect();
    let orphaned = s
        .snapshots
        .iter()
        .filter(|sn| sn.source_ami.is_none())
        .filter(|sn| {
            sn.volume_id
                .as_deref()
                .is_some_and(|v| !volume_ids.contains(v))
        })
        .count();
    assert!(orphaned >= 3, "orphaned snapshots: {orphaned}");
    // Nodes, pods and clusters line up.
    for inv in &s.pods {
        assert!(!inv.nodes.is_empty());
        let nodes: HashSet<&str> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
        assert!(inv
            .pods
            .iter()
            .filter_map(|p| p.node_name.as_deref())
            .all(|n| nodes.contains(n)));
        for n in &inv.nodes {
            let on_node = inv
                .pods
                .iter()
                .filter(|p| p.node_name.as_deref() == Some(&n.name));
            let cpu: u32 = on_node.map(|p| p.cpu_request_millicores).sum();
            assert!(
                cpu <= n.allocatable_cpu_millicores,
                "{} overcommitted",
                n.name
            );
        }
    }
    for c in &s.clusters {
        assert!(!c.node_groups.is_empty());
        for ng in &c.node_groups {
            let asg = s
                .asgs
                .iter()
                .find(|a| Some(&a.name) == ng.asg_name.as_ref())
                .expect("node group asg");
            assert_eq!(asg.desired_capacity, ng.scaling.desired_size);
            assert!(s
                .instances
                .iter()
                .filter(|i| i.asg_name.as_ref() == Some(&asg.name))
                .all(|i| i.cluster.as_deref() == Some(c.name.as_str())));
        }
    }
}

#[tokio::test]
async fn interrupted_nodes_are_replaced_and_pods_rescheduled() {
    let (sim, clock) = demo(14);
    let spot_asgs: Vec<AutoScalingGroup> = sim
        .describe_auto_scaling_groups()
        .await
        .expect("asgs")
        .into_iter()
        .filter(|a| a.on_demand_percentage_above_base == 0)
        .collect();
    assert!(!spot_asgs.is_empty());
    // Exhaust nothing; force interruptions by making every pool of the groups tight.
    for a in &spot_asgs {
        for t in &a.instance_types {
            for az in ["us-east-1a", "us-east-1b", "us-east-1c"] {
                let _ = sim.set_pool_capacity(t, az, Some(0.2));
            }
        }
    }
    let since = clock.now();
    clock.advance(Duration::from_secs(3 * 24 * 3600));
    let events = sim.poll_events(since).await.expect("events");
    assert!(events
        .iter()
        .any(|e| e.kind == SpotEventKind::InterruptionNotice));
    for a in sim.describe_auto_scaling_groups().await.expect("asgs") {
        assert_eq!(
            a.instance_ids.len() as u32,
            a.desired_capacity,
            "{}",
            a.name
        );
    }
    for name in sim.list_eks_clusters().await.expect("clusters") {
        let inv = sim.pod_inventory(&name).await.expect("inventory");
        let pending = inv
            .pods
            .iter()
            .filter(|p| p.phase == PodPhase::Pending)
            .count();
        assert!(pending * 10 <= inv.pods.len(), "{name}: {pending} pending");
    }
}

#[tokio::test]
async fn unknown_resources_are_not_found() {
    let (sim, _) = demo(15);
    assert!(matches!(
        sim.describe_eks_cluster("nope").await,
        Err(CloudError::NotFound {
            kind: ResourceKind::EksCluster,
            ..
        })
    ));
    assert!(matches!(
        sim.delete_snapshot("snap-0nope", false).await,
        Err(CloudError::NotFound {
            kind: ResourceKind::Snapshot,
            ..
        })
    ));
    assert!(matches!(
        sim.pod_inventory("nope").await,
        Err(CloudError::NotFound { .. })
    ));
    let bad_type = launch_req("m99.huge", "us-east-1a", Lifecycle::OnDemand, 1, "x");
    assert!(matches!(
        sim.launch_capacity(&bad_type, false).await,
        Err(CloudError::Invalid { .. })
    ));
}

#[tokio::test]
async fn benchmark_profile_scales_to_ten_thousand_instances() {
    let clock = manual_clock();
    let started = std::time::Instant::now();
    let sim = sim_with(16, SimProfile::benchmark(), &clock);
    let instances = sim.describe_instances().await.expect("instances");
    assert_eq!(instances.len(), 10_000);
    assert_eq!(sim.list_eks_clusters().await.expect("clusters").len(), 50);
    clock.advance(Duration::from_secs(6 * 3600));
    let events = sim
        .poll_events(SimClock::default_start())
        .await
        .expect("events");
    assert!(!events.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn create_snapshot_is_idempotent_per_client_token() {
    let (sim, _clock) = demo(21);
    let vols = sim.describe_volumes().await.expect("volumes");
    let free: Vec<String> = vols
        .iter()
        .filter(|v| v.state == VolumeState::Available)
        .map(|v| v.id.clone())
        .collect();
    assert!(free.len() >= 2);
    let n0 = sim.describe_snapshots().await.expect("snapshots").len();
    let a = sim
        .create_snapshot(&free[0], "job1-item1", false)
        .await
        .expect("first")
        .applied()
        .expect("applied");
    let again = sim
        .create_snapshot(&free[0], "job1-item1", false)
        .await
        .expect("repeat")
        .applied()
        .expect("applied");
    assert_eq!(a.id, again.id, "the same token returns the same snapshot");
    assert_eq!(
        sim.describe_snapshots().await.expect("snapshots").len(),
        n0 + 1
    );
    // The token of another volume's snapshot is a mismatch, as in EC2.
    assert!(matches!(
        sim.create_snapshot(&free[1], "job1-item1", false).await,
        Err(CloudError::Invalid { .. })
    ));
    for bad in ["", &"x".repeat(65), "ü"] {
        assert!(matches!(
            sim.create_snapshot(&free[1], bad, false).await,
            Err(CloudError::Invalid { .. })
        ));
    }
    let b = sim
        .create_snapshot(&free[1], "job1-item2", false)
        .await
        .expect("second")
        .applied()
        .expect("applied");
    assert_ne!(a.id, b.id);
    assert_eq!(sim.call_count(Method::CreateSnapshot), 7);
}

#[tokio::test]
async fn a_journaled_world_keeps_its_changes_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("sim-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = journal::path_for(&dir, ACCOUNT, "us-east-1");
    let config = || SimConfig {
        seed: 8,
        account_id: ACCOUNT.into(),
        region: "us-east-1".into(),
        profile: SimProfile::Cleanup {
            volumes: 6,
            snapshots: 4,
            instances: 3,
        },
        clock: SimClock::real_time(),
    };
    let sim = SimCloud::with_journal(config(), &path).expect("sim");
    let vols = sim.describe_volumes().await.expect("volumes");
    assert_eq!(
        vols.iter()
            .filter(|v| v.state == VolumeState::Available)
            .count(),
        6
    );
    let orphan = sim
        .describe_snapshots()
        .await
        .expect("snapshots")
        .into_iter()
        .find(|s| s.description == "pre-migration backup")
        .expect("orphaned snapshot");
    let stray = sim
        .describe_instances()
        .await
        .expect("instances")
        .into_iter()
        .find(|i| i.cluster.is_none() && i.state == InstanceState::Running)
        .expect("stray instance");
    let free: Vec<&Volume> = vols
        .iter()
        .filter(|v| v.state == VolumeState::Available)
        .collect();
    let (v0, v1) = (free[0].id.clone(), free[1].id.clone());
    let snap = sim
        .create_snapshot(&v0, "tok-0", false)
        .await
        .expect("snapshot")
        .applied()
        .expect("applied");
    // The clean-up profile's snapshots complete at once.
    let listed = sim.describe_snapshots().await.expect("snapshots");
    assert!(listed
        .iter()
        .any(|s| s.id == snap.id && s.state == SnapshotState::Completed));
    sim.delete_volume(&v0, false).await.expect("delete");
    sim.delete_snapshot(&orphan.id, false)
        .await
        .expect("delete");
    sim.terminate_instances(std::slice::from_ref(&stray.id), false)
        .await
        .expect("terminate");
    sim.create_snapshot(&v1, "tok-1", true).await.expect("dry");
    drop(sim);

    let again = SimCloud::with_journal(config(), &path).expect("restart");
    let vols = again.describe_volumes().await.expect("volumes");
    assert!(
        vols.iter().all(|v| v.id != v0),
        "deleted volume stays deleted"
    );
    assert!(vols.iter().any(|v| v.id == v1));
    let snaps = again.describe_snapshots().await.expect("snapshots");
    assert!(snaps.iter().all(|s| s.id != orphan.id));
    let kept = snaps
        .iter()
        .find(|s| s.id == snap.id)
        .expect("taken snapshot kept");
    assert_eq!(kept.volume_id.as_deref(), Some(v0.as_str()));
    let inst = again.describe_instances().await.expect("instances");
    assert!(inst
        .iter()
        .any(|i| i.id == stray.id && i.state == InstanceState::Terminated));
    // The token still finds its snapshot after the restart.
    let repeat = again.create_snapshot(&v1, "tok-0", false).await;
    assert!(
        matches!(repeat, Err(CloudError::Invalid { .. })),
        "{repeat:?}"
    );
    let fresh = again
        .create_snapshot(&v1, "tok-1", false)
        .await
        .expect("snapshot")
        .applied()
        .expect("applied");
    assert_ne!(
        fresh.id, snap.id,
        "a restarted world never reuses a snapshot id"
    );
    let entries = journal::read(&path).expect("journal");
    let ops: Vec<&str> = entries
        .iter()
        .map(|e| match e {
            journal::Entry::CreateSnapshot { .. } => "create_snapshot",
            journal::Entry::DeleteVolume { .. } => "delete_volume",
            journal::Entry::DeleteSnapshot { .. } => "delete_snapshot",
            journal::Entry::Terminate { .. } => "terminate",
        })
        .collect();
    assert_eq!(
        ops,
        [
            "create_snapshot",
            "delete_volume",
            "delete_snapshot",
            "terminate",
            "create_snapshot"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn profiles_parse_from_their_command_line_form() {
    assert_eq!(SimProfile::parse("demo"), Ok(None));
    assert_eq!(SimProfile::parse("empty"), Ok(Some(SimProfile::Empty)));
    assert_eq!(
        SimProfile::parse("cleanup:1000"),
        Ok(Some(SimProfile::Cleanup {
            volumes: 1000,
            snapshots: 1000,
            instances: 100
        }))
    );
    assert_eq!(
        SimProfile::parse("scale:400"),
        Ok(Some(SimProfile::Scale {
            instances: 400,
            clusters: 2
        }))
    );
    for bad in ["cleanup", "cleanup:0", "scale:x", "huge:3", ""] {
        assert!(SimProfile::parse(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn security_groups_are_stable_per_world_and_cover_each_cluster() {
    let (a, _) = demo(7);
    let (b, _) = demo(7);
    let (c, _) = demo(8);
    let groups = a.describe_security_groups().await.expect("groups");
    assert_eq!(groups, b.describe_security_groups().await.expect("groups"));
    let other = c.describe_security_groups().await.expect("groups");
    assert_ne!(
        groups.iter().map(|g| &g.id).collect::<Vec<_>>(),
        other.iter().map(|g| &g.id).collect::<Vec<_>>()
    );
    let clusters = a.list_eks_clusters().await.expect("clusters");
    assert_eq!(groups.len(), 1 + 2 * clusters.len());
    for name in &clusters {
        for sg in [format!("eks-cluster-sg-{name}"), format!("{name}-nodes")] {
            let g = groups
                .iter()
                .find(|g| g.name == sg)
                .unwrap_or_else(|| panic!("{sg} missing"));
            assert_eq!(g.tags.get(TAG_EKS_CLUSTER), Some(name));
        }
    }
    let vpcs: HashSet<_> = groups.iter().map(|g| g.vpc_id.clone()).collect();
    assert_eq!(vpcs.len(), 1);
    for g in &groups {
        // The template validation's format: sg- and 17 hex digits.
        assert!(
            g.id.len() == 20 && g.id[3..].chars().all(|ch| ch.is_ascii_hexdigit()),
            "{}",
            g.id
        );
    }
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    // Listing does not disturb the world's random sequence.
    let (d, _) = demo(7);
    assert_eq!(snapshot(&a).await, snapshot(&d).await);
}
