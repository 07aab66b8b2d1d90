//! `sim`: a deterministic simulator of one AWS region behind the [`Cloud`] port.
//!
//! It is the product's embedded default (demo mode needs no AWS account), the recording
//! fake for tests (injectable faults, call counts, a manual clock) and the load generator
//! for benchmarks (a scalable profile). Given the same seed, profile and clock readings it
//! produces the same inventory, prices and events.
//!
//! ```
//! use spot_cloud::sim::{SimClock, SimCloud, SimConfig};
//! use spot_cloud::Cloud;
//! # tokio_test_block_on(async {
//! let clock = SimClock::manual(SimClock::default_start());
//! let sim = SimCloud::new(SimConfig {
//!     clock: clock.clone(),
//!     ..SimConfig::for_account("123456789012", 42)
//! })?;
//! let instances = sim.describe_instances().await?;
//! assert!(!instances.is_empty());
//! clock.advance(std::time::Duration::from_secs(3600));
//! let _events = sim.poll_events(clock.now() - chrono::Duration::hours(1)).await?;
//! # Ok::<(), spot_cloud::CloudError>(())
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().map(|rt| rt.block_on(f)).unwrap()
//! # }
//! ```

pub mod catalog;
pub mod clock;
pub mod history;
pub mod journal;
pub mod kube;
pub mod market;
mod noise;
mod templates;
pub mod usage;
pub mod world;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use self::catalog::Catalog;
pub use self::clock::SimClock;
pub use self::market::{Market, PoolHour};
use self::noise::{mix, str_key};
use self::world::World;
use crate::error::{CloudError, Result};
use crate::types::*;
use crate::Cloud;

/// What kind of account to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimProfile {
    /// A small, realistic account for demos: `clusters` EKS clusters of 5–12 nodes
    /// (production, staging, dev, data pipeline, ML inference, repeating) plus
    /// `unregistered_instances` instances in no cluster.
    Demo {
        clusters: usize,
        unregistered_instances: usize,
    },
    /// A large account for benchmarks: `instances` instances in total, 95% of them nodes
    /// spread over `clusters` clusters.
    Scale { instances: usize, clusters: usize },
    /// No resources at all (the account exists; the region is empty).
    Empty,
    /// An account full of leftovers, the load of the clean-up batches: `volumes`
    /// unattached volumes, `snapshots` snapshots whose volume is gone and `instances`
    /// instances in no cluster; no clusters. Snapshots taken here complete at once.
    Cleanup {
        volumes: usize,
        snapshots: usize,
        instances: usize,
    },
}

impl SimProfile {
    /// A profile from its command-line form: `demo` (the default, `None`: each account's
    /// own demo size), `empty`, `scale:N` (N instances, one cluster per 200) or
    /// `cleanup:N` (N unattached volumes, N orphaned snapshots, N/10 stray instances).
    pub fn parse(spec: &str) -> std::result::Result<Option<SimProfile>, String> {
        let (name, n) = match spec.split_once(':') {
            Some((name, n)) => {
                let n: usize = n
                    .parse()
                    .map_err(|_| format!("{n:?} is not a count in {spec:?}"))?;
                if n == 0 || n > 100_000 {
                    return Err(format!("the count in {spec:?} must be 1 to 100000"));
                }
                (name, Some(n))
            }
            None => (spec, None),
        };
        match (name, n) {
            ("demo", None) => Ok(None),
            ("empty", None) => Ok(Some(SimProfile::Empty)),
            ("scale", Some(n)) => Ok(Some(SimProfile::Scale {
                instances: n,
                clusters: (n / 200).max(1),
            })),
            ("cleanup", Some(n)) => Ok(Some(SimProfile::Cleanup {
                volumes: n,
                snapshots: n,
                instances: (n / 10).max(1),
            })),
            _ => Err(format!(
                "{spec:?}: expected demo, empty, scale:N or cleanup:N"
            )),
        }
    }

    /// Four clusters and six unregistered instances (~40 instances).
    pub fn demo() -> Self {
        SimProfile::Demo {
            clusters: 4,
            unregistered_instances: 6,
        }
    }

    /// 10,000 instances in 50 clusters.
    pub fn benchmark() -> Self {
        SimProfile::Scale {
            instances: 10_000,
            clusters: 50,
        }
    }
}

/// Everything that determines a simulated account.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// 12-digit account id.
    pub account_id: String,
    /// Region name; AZs are `<region>a`, `b`, `c`. Prices are us-east-1's whatever the
    /// region.
    pub region: Region,
    pub profile: SimProfile,
    /// Source of all simulated time.
    pub clock: SimClock,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            profile: SimProfile::demo(),
            clock: SimClock::default(),
        }
    }
}

impl SimConfig {
    /// The stable world of a linked account: the seed and the demo profile's size derive
    /// from the account id, so linking "123456789012" always yields the same inventory
    /// (for the same `seed`), and different accounts look different.
    pub fn for_account(account_id: &str, seed: u64) -> Self {
        let key = mix(seed, str_key(account_id));
        SimConfig {
            seed: key,
            account_id: account_id.to_string(),
            region: "us-east-1".into(),
            profile: SimProfile::Demo {
                clusters: 3 + (key % 3) as usize,
                unregistered_instances: 4 + ((key >> 8) % 5) as usize,
            },
            clock: SimClock::default(),
        }
    }
}

/// Calls of the port, for per-method fault injection and call counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    CallerIdentity,
    DescribeInstances,
    DescribeVolumes,
    DescribeSnapshots,
    DescribeSecurityGroups,
    InstanceTypeCatalog,
    OnDemandPrices,
    SpotPriceHistory,
    DescribeAutoScalingGroups,
    UpdateAutoScalingGroup,
    DetachInstances,
    ListEksClusters,
    DescribeEksCluster,
    LaunchCapacity,
    TerminateInstances,
    CreateSnapshot,
    DeleteVolume,
    DeleteSnapshot,
    DetachVolume,
    AttachVolume,
    PollEvents,
    PodInventory,
    PodUsage,
    /// The simulated cluster's Kubernetes API (the agent's view and its commands).
    KubeRead,
    /// Kubernetes writes: cordon, labels, taints, evictions, request patches, node deletion.
    KubeWrite,
}

/// A failure to inject. Faults are checked before the call touches any state, so a
/// faulted mutation changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The next `calls` matching calls fail with `Throttled { retry_after: 1 s }`.
    Throttle { calls: u32 },
    /// Every matching call fails with `Other(msg)` until [`SimCloud::clear_faults`].
    FailAll(String),
    /// The next `calls` matching calls fail with `error`.
    Fail { calls: u32, error: CloudError },
}

#[derive(Debug)]
struct FaultEntry {
    method: Option<Method>,
    fault: Fault,
}

struct State {
    world: World,
    market: Market,
    faults: Vec<FaultEntry>,
    calls: BTreeMap<Method, u64>,
    journal: Option<journal::Journal>,
}

impl State {
    /// Records an applied change in the journal, if there is one. The change is already
    /// in the world; a journal that cannot be written is reported as the call's failure
    /// (a restart would not see the change).
    fn record(&mut self, entry: journal::Entry) -> Result<()> {
        if let Some(j) = &mut self.journal {
            j.append(&entry).map_err(|e| {
                CloudError::Other(format!(
                    "simulator journal {} not written: {e}",
                    j.path().display()
                ))
            })?;
        }
        Ok(())
    }
}

/// The simulated region. Cheap to share behind an `Arc<dyn Cloud>`.
pub struct SimCloud {
    account_id: String,
    region: String,
    clock: SimClock,
    state: Mutex<State>,
}

impl std::fmt::Debug for SimCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCloud")
            .field("account_id", &self.account_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

fn valid_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && r.bytes().last().is_some_and(|b| b.is_ascii_digit())
}

impl SimCloud {
    /// Builds the simulated account. Fails with `Invalid` for a malformed account id or
    /// region.
    pub fn new(config: SimConfig) -> Result<Self> {
        if !valid_account_id(&config.account_id) {
            return Err(CloudError::invalid(
                "account_id",
                "an AWS account id is 12 digits",
            ));
        }
        if !valid_region(&config.region) {
            return Err(CloudError::invalid(
                "region",
                format!("{:?} is not a region name", config.region),
            ));
        }
        let now = config.clock.now();
        let mut market = Market::new(config.seed, &config.region);
        let world = World::generate(
            config.seed,
            &config.account_id,
            &config.region,
            &config.profile,
            now,
            &mut market,
        );
        Ok(SimCloud {
            account_id: config.account_id,
            region: config.region,
            clock: config.clock,
            state: Mutex::new(State {
                world,
                market,
                faults: Vec::new(),
                calls: BTreeMap::new(),
                journal: None,
            }),
        })
    }

    /// [`SimCloud::new`] whose changes survive the process: the changes recorded in the
    /// journal at `path` are replayed onto the generated world, and every new one is
    /// appended (see [`journal`]).
    pub fn with_journal(config: SimConfig, path: &std::path::Path) -> Result<Self> {
        let sim = Self::new(config)?;
        let (j, entries) = journal::Journal::open(path)
            .map_err(|e| CloudError::Other(format!("simulator journal {}: {e}", path.display())))?;
        let now = sim.clock.now();
        {
            let mut s = sim.lock()?;
            let st = &mut *s;
            for e in &entries {
                // Each entry applied once before; one that no longer applies (the
                // generated world changed with a new version) is skipped.
                let _ = match e {
                    journal::Entry::CreateSnapshot {
                        volume_id,
                        snapshot_id,
                        client_token,
                        at,
                    } => st
                        .world
                        .restore_snapshot(volume_id, snapshot_id, client_token, *at, now)
                        .map(|_| ()),
                    journal::Entry::DeleteVolume { volume_id, .. } => {
                        st.world.delete_volume(volume_id, false).map(|_| ())
                    }
                    journal::Entry::DeleteSnapshot { snapshot_id, .. } => {
                        st.world.delete_snapshot(snapshot_id, false).map(|_| ())
                    }
                    journal::Entry::Terminate { instance_ids, .. } => st
                        .world
                        .terminate(instance_ids, false, now, &mut st.market)
                        .map(|_| ()),
                };
            }
            st.journal = Some(j);
        }
        Ok(sim)
    }

    /// [`SimConfig::for_account`] with a real-time clock.
    pub fn for_account(account_id: &str, seed: u64) -> Result<Self> {
        Self::new(SimConfig::for_account(account_id, seed))
    }

    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        // A panic while holding the lock leaves the world in an unknown state; report it
        // instead of propagating the panic into every caller.
        self.state
            .lock()
            .map_err(|_| CloudError::Other("simulator state poisoned by an earlier panic".into()))
    }

    /// Injects a fault into every method.
    pub fn inject_fault(&self, fault: Fault) {
        self.push_fault(None, fault);
    }

    /// Injects a fault into one method.
    pub fn inject_fault_on(&self, method: Method, fault: Fault) {
        self.push_fault(Some(method), fault);
    }

    fn push_fault(&self, method: Option<Method>, fault: Fault) {
        if let Ok(mut s) = self.lock() {
            s.faults.push(FaultEntry { method, fault });
        }
    }

    /// Removes all injected faults.
    pub fn clear_faults(&self) {
        if let Ok(mut s) = self.lock() {
            s.faults.clear();
        }
    }

    /// How many times `method` was called (faulted calls included).
    pub fn call_count(&self, method: Method) -> u64 {
        self.lock()
            .map(|s| s.calls.get(&method).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Pins the capacity of one pool (test hook: `Some(0.0)` exhausts it; `None` restores
    /// the market walk). Fails with `Invalid` for an unknown type or AZ.
    pub fn set_pool_capacity(
        &self,
        instance_type: &str,
        az: &str,
        capacity: Option<f64>,
    ) -> Result<()> {
        let mut s = self.lock()?;
        let pool = s.market.pool_of(instance_type, az).ok_or_else(|| {
            CloudError::invalid("pool", format!("no pool {instance_type} in {az}"))
        })?;
        s.market.set_capacity_override(pool, capacity);
        Ok(())
    }

    /// Sends an interruption notice for a running spot instance now (test and Lab hook:
    /// the two-minute warning EC2 gives before it reclaims the instance). Fails with
    /// `Invalid` when `instance_id` is not a running spot instance.
    pub fn send_interruption_notice(&self, instance_id: &str) -> Result<()> {
        let now = self.clock.now();
        let mut guard = self.lock()?;
        let s = &mut *guard;
        if s.world.interrupt_now(instance_id, now, &mut s.market) {
            Ok(())
        } else {
            Err(CloudError::invalid(
                "instance_id",
                format!("{instance_id} is not a running spot instance"),
            ))
        }
    }

    /// How long snapshots taken through the port stay `pending` (simulated time; zero:
    /// they complete at once). Default [`world::SNAPSHOT_COMPLETION_SECS`].
    pub fn set_snapshot_completion(&self, d: Duration) -> Result<()> {
        let mut s = self.lock()?;
        s.world.snapshot_completion = chrono::Duration::from_std(d)
            .map_err(|_| CloudError::invalid("completion", "duration out of range"))?;
        Ok(())
    }

    /// Attaches an available volume to an instance (test and Lab hook: someone attached
    /// it outside the control plane). Not counted as a port call.
    pub fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<()> {
        let now = self.clock.now();
        let mut s = self.lock()?;
        s.world.attach_volume(volume_id, instance_id, None, now)
    }

    /// Sets a tag on an instance (test and Lab hook). Not counted as a port call.
    pub fn tag_instance(&self, instance_id: &str, key: &str, value: &str) -> Result<()> {
        let mut s = self.lock()?;
        s.world.tag_instance(instance_id, key, value)
    }

    /// Market state of a pool now (for tests, dashboards and the Lab).
    pub fn pool_state(&self, instance_type: &str, az: &str) -> Result<PoolHour> {
        let now = self.clock.now();
        let mut s = self.lock()?;
        let pool = s.market.pool_of(instance_type, az).ok_or_else(|| {
            CloudError::invalid("pool", format!("no pool {instance_type} in {az}"))
        })?;
        Ok(s.market.at(pool, now))
    }

    /// Long-run capacity level of a pool: which pools are structurally tight.
    pub fn pool_mean_capacity(&self, instance_type: &str, az: &str) -> Result<f64> {
        let s = self.lock()?;
        let pool = s.market.pool_of(instance_type, az).ok_or_else(|| {
            CloudError::invalid("pool", format!("no pool {instance_type} in {az}"))
        })?;
        s.market
            .pools()
            .get(pool)
            .map(|p| p.mean_capacity)
            .ok_or_else(|| CloudError::invalid("pool", "unknown pool"))
    }

    /// Counts the call, applies faults, and brings the world up to the clock.
    fn enter(&self, method: Method) -> Result<(MutexGuard<'_, State>, DateTime<Utc>)> {
        let now = self.clock.now();
        let mut s = self.lock()?;
        *s.calls.entry(method).or_insert(0) += 1;
        let hit = s
            .faults
            .iter()
            .position(|f| f.method.is_none_or(|m| m == method));
        if let Some(i) = hit {
            let (err, exhausted) = match &mut s.faults[i].fault {
                Fault::Throttle { calls } => {
                    *calls = calls.saturating_sub(1);
                    (
                        CloudError::Throttled {
                            retry_after: Some(Duration::from_secs(1)),
                        },
                        *calls == 0,
                    )
                }
                Fault::FailAll(msg) => (CloudError::Other(msg.clone()), false),
                Fault::Fail { calls, error } => {
                    *calls = calls.saturating_sub(1);
                    (error.clone(), *calls == 0)
                }
            };
            if exhausted {
                s.faults.remove(i);
            }
            return Err(err);
        }
        let st = &mut *s;
        st.world.advance_to(now, &mut st.market);
        st.world.complete_snapshots(now);
        Ok((s, now))
    }
}

#[async_trait]
impl Cloud for SimCloud {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn region(&self) -> &str {
        &self.region
    }

    async fn caller_identity(&self) -> Result<CallerIdentity> {
        let _ = self.enter(Method::CallerIdentity)?;
        Ok(CallerIdentity {
            account_id: self.account_id.clone(),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/SpotOptimizerRole/spot-optimizer",
                self.account_id
            ),
            user_id: format!("AROASIM{}:spot-optimizer", &self.account_id[..6]),
        })
    }

    async fn describe_instances(&self) -> Result<Vec<Instance>> {
        let (s, _) = self.enter(Method::DescribeInstances)?;
        Ok(s.world.instances())
    }

    async fn describe_volumes(&self) -> Result<Vec<Volume>> {
        let (s, _) = self.enter(Method::DescribeVolumes)?;
        Ok(s.world.volumes())
    }

    async fn describe_snapshots(&self) -> Result<Vec<Snapshot>> {
        let (s, _) = self.enter(Method::DescribeSnapshots)?;
        Ok(s.world.snapshots())
    }

    async fn describe_security_groups(&self) -> Result<Vec<SecurityGroup>> {
        let (s, _) = self.enter(Method::DescribeSecurityGroups)?;
        Ok(s.world.security_groups())
    }

    async fn instance_type_catalog(&self) -> Result<Vec<InstanceTypeInfo>> {
        let _ = self.enter(Method::InstanceTypeCatalog)?;
        Ok(Catalog::embedded()
            .types()
            .iter()
            .map(|t| t.info(&self.region))
            .collect())
    }

    async fn on_demand_prices(&self, instance_types: &[String]) -> Result<Vec<OnDemandPrice>> {
        let _ = self.enter(Method::OnDemandPrices)?;
        let catalog = Catalog::embedded();
        let price = |t: &catalog::CatalogType| OnDemandPrice {
            instance_type: t.name.clone(),
            usd_per_hour: t.on_demand_usd_per_hour,
        };
        Ok(if instance_types.is_empty() {
            catalog.types().iter().map(price).collect()
        } else {
            instance_types
                .iter()
                .filter_map(|n| catalog.get(n))
                .map(price)
                .collect()
        })
    }

    async fn spot_price_history(
        &self,
        instance_types: &[String],
        azs: &[Az],
        since: DateTime<Utc>,
    ) -> Result<Vec<SpotPricePoint>> {
        let (mut s, now) = self.enter(Method::SpotPriceHistory)?;
        // EC2 keeps 90 days of spot price history.
        let since = since.max(now - chrono::Duration::days(90));
        let catalog = Catalog::embedded();
        let type_indexes: Vec<usize> = if instance_types.is_empty() {
            (0..catalog.len()).collect()
        } else {
            instance_types
                .iter()
                .filter_map(|n| catalog.index_of(n))
                .collect()
        };
        let az_indexes: Vec<usize> = if azs.is_empty() {
            vec![0, 1, 2]
        } else {
            azs.iter()
                .filter_map(|a| catalog::az_index(&self.region, a))
                .collect()
        };
        let (h0, h1) = (market::hour_of(since), market::hour_of(now));
        let mut out = Vec::new();
        for &ti in &type_indexes {
            let Some(t) = catalog.types().get(ti) else {
                continue;
            };
            for &ai in az_indexes.iter().filter(|&&a| t.offered_in(a)) {
                let pool = s.market.pool_index(ti, ai);
                let az = catalog::az_name(&self.region, ai);
                let mut last: Option<f64> = None;
                for h in h0..=h1 {
                    let price = s.market.at_hour(pool, h).spot_price;
                    if last != Some(price) {
                        out.push(SpotPricePoint {
                            instance_type: t.name.clone(),
                            az: az.clone(),
                            usd_per_hour: price,
                            timestamp: market::hour_start(h),
                        });
                        last = Some(price);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn describe_auto_scaling_groups(&self) -> Result<Vec<AutoScalingGroup>> {
        let (s, _) = self.enter(Method::DescribeAutoScalingGroups)?;
        Ok(s.world.asgs())
    }

    async fn update_auto_scaling_group(
        &self,
        update: &AsgUpdate,
        dry_run: bool,
    ) -> Result<Mutation<AutoScalingGroup>> {
        let (mut s, now) = self.enter(Method::UpdateAutoScalingGroup)?;
        let st = &mut *s;
        st.world.update_asg(update, dry_run, now, &mut st.market)
    }

    async fn detach_from_auto_scaling_group(
        &self,
        group: &str,
        instance_ids: &[String],
        dry_run: bool,
    ) -> Result<Mutation<AutoScalingGroup>> {
        let (mut s, _) = self.enter(Method::DetachInstances)?;
        s.world.detach(group, instance_ids, dry_run)
    }

    async fn list_eks_clusters(&self) -> Result<Vec<String>> {
        let (s, _) = self.enter(Method::ListEksClusters)?;
        Ok(s.world.cluster_names())
    }

    async fn describe_eks_cluster(&self, name: &str) -> Result<EksCluster> {
        let (s, _) = self.enter(Method::DescribeEksCluster)?;
        s.world.describe_cluster(name)
    }

    async fn launch_capacity(
        &self,
        request: &LaunchRequest,
        dry_run: bool,
    ) -> Result<Mutation<LaunchResult>> {
        let (mut s, now) = self.enter(Method::LaunchCapacity)?;
        let st = &mut *s;
        st.world.launch(request, dry_run, now, &mut st.market)
    }

    async fn terminate_instances(
        &self,
        instance_ids: &[String],
        dry_run: bool,
    ) -> Result<Mutation<Vec<InstanceStateChange>>> {
        let (mut s, now) = self.enter(Method::TerminateInstances)?;
        let st = &mut *s;
        let out = st
            .world
            .terminate(instance_ids, dry_run, now, &mut st.market)?;
        if let Mutation::Applied(changes) = &out {
            if !changes.is_empty() {
                st.record(journal::Entry::Terminate {
                    instance_ids: changes.iter().map(|c| c.instance_id.clone()).collect(),
                    at: now,
                })?;
            }
        }
        Ok(out)
    }

    async fn create_snapshot(
        &self,
        volume_id: &str,
        client_token: &str,
        dry_run: bool,
    ) -> Result<Mutation<Snapshot>> {
        let (mut s, now) = self.enter(Method::CreateSnapshot)?;
        let before = s.world.snapshots_len();
        let out = s
            .world
            .create_snapshot(volume_id, client_token, dry_run, now)?;
        if let Mutation::Applied(snap) = &out {
            // A repeat of the token returned the first snapshot: nothing changed.
            if s.world.snapshots_len() > before {
                s.record(journal::Entry::CreateSnapshot {
                    volume_id: volume_id.to_string(),
                    snapshot_id: snap.id.clone(),
                    client_token: client_token.to_string(),
                    at: now,
                })?;
            }
        }
        Ok(out)
    }

    async fn delete_volume(&self, volume_id: &str, dry_run: bool) -> Result<Mutation<()>> {
        let (mut s, now) = self.enter(Method::DeleteVolume)?;
        let out = s.world.delete_volume(volume_id, dry_run)?;
        if let Mutation::Applied(()) = &out {
            s.record(journal::Entry::DeleteVolume {
                volume_id: volume_id.to_string(),
                at: now,
            })?;
        }
        Ok(out)
    }

    async fn delete_snapshot(&self, snapshot_id: &str, dry_run: bool) -> Result<Mutation<()>> {
        let (mut s, now) = self.enter(Method::DeleteSnapshot)?;
        let out = s.world.delete_snapshot(snapshot_id, dry_run)?;
        if let Mutation::Applied(()) = &out {
            s.record(journal::Entry::DeleteSnapshot {
                snapshot_id: snapshot_id.to_string(),
                at: now,
            })?;
        }
        Ok(out)
    }

    async fn detach_volume(&self, volume_id: &str, dry_run: bool) -> Result<Mutation<Volume>> {
        let (mut s, now) = self.enter(Method::DetachVolume)?;
        s.world.detach_volume(volume_id, dry_run, now)
    }

    async fn attach_volume_to(
        &self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
        dry_run: bool,
    ) -> Result<Mutation<Volume>> {
        let (mut s, now) = self.enter(Method::AttachVolume)?;
        s.world
            .attach_volume_to(volume_id, instance_id, device, dry_run, now)
    }

    async fn poll_events(&self, since: DateTime<Utc>) -> Result<Vec<SpotEvent>> {
        let (s, _) = self.enter(Method::PollEvents)?;
        Ok(s.world.events_since(since))
    }
}

/// The simulated clusters' Kubernetes side, read by the simulated agents (never by the
/// control plane, which sees clusters only through the agent API).
impl SimCloud {
    /// Nodes and pods of a simulated cluster.
    pub async fn pod_inventory(&self, cluster: &str) -> Result<PodInventory> {
        let (s, now) = self.enter(Method::PodInventory)?;
        s.world.pod_inventory(cluster, now)
    }

    /// Usage of one pod sampled every `step` over `[from, to)`: what a metrics store
    /// holds (the metrics API's latest reading is the last sample).
    pub async fn pod_usage(
        &self,
        cluster: &str,
        pod: &PodRef,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<UsageSample>> {
        let (s, _) = self.enter(Method::PodUsage)?;
        s.world.pod_usage(cluster, pod, from, to, step)
    }
}

#[cfg(test)]
mod tests;
