//! The spot market as the engine sees it: the region's instance types with on-demand
//! prices, every spot pool with its latest price and the risk model's probability, and the
//! pools the global risk tracker flags. Built through the Cloud port; used by "Optimize
//! Now" and by cluster actors reacting to events between discoveries.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use spot_cloud::{Cloud, CloudError};
use spot_engine::catalog::{Arch, Catalog, InstanceType, PoolKey, SpotPool};
use spot_models::risk::PoolRisk;

use crate::hive::{Flags, RiskTracker};
use crate::risk::{score_pools, ActiveModel};

/// Probability used for a pool the model could not score (CAUTION band).
pub const UNSCORED_RISK: f64 = 0.3;

#[derive(Debug, Clone)]
pub struct Market {
    pub catalog: Catalog,
    pub pool_risk: BTreeMap<PoolKey, f64>,
    pub risk_flags: BTreeSet<PoolKey>,
    /// On-demand price per type and latest spot price per (type, AZ).
    pub on_demand: HashMap<String, f64>,
    pub spot: HashMap<(String, String), f64>,
    /// The scores, to store.
    pub scores: Vec<PoolRisk>,
    /// Which model scored the pools.
    pub model: String,
    /// When the market was read (the cloud's clock).
    pub read_at: chrono::DateTime<chrono::Utc>,
    /// Set (with the reason) when the global risk tracker could not be read: every spot
    /// pool is then in `risk_flags`.
    pub flags_unknown: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("market data is inconsistent: {0}")]
    Engine(#[from] spot_engine::EngineError),
}

/// Reads the market of `cloud`'s region and scores every pool with `model`.
pub async fn read(
    cloud: &dyn Cloud,
    model: &ActiveModel,
    hive: &dyn RiskTracker,
) -> Result<Market, MarketError> {
    let info = cloud.instance_type_catalog().await?;
    let names: Vec<String> = info.iter().map(|t| t.name.clone()).collect();
    let on_demand: HashMap<String, f64> = cloud
        .on_demand_prices(&names)
        .await?
        .into_iter()
        .map(|p| (p.instance_type, p.usd_per_hour))
        .collect();
    let spot = crate::discovery::latest_spot_prices(cloud, &names).await?;
    let pools: HashSet<(String, String)> = spot.keys().cloned().collect();
    let scores = score_pools(cloud, model, hive, &pools).await?;
    let pool_risk: BTreeMap<PoolKey, f64> = scores
        .iter()
        .map(|r| (PoolKey::new(&r.instance_type, &r.az), r.probability))
        .collect();
    // Unknown flags (the tracker is down) are not "no flags": every spot pool is then held
    // as flagged, so no new capacity is placed in a pool that may be being interrupted;
    // nodes already running stay where they are.
    let region = cloud.region().to_string();
    let (risk_flags, flags_unknown): (BTreeSet<PoolKey>, Option<String>) =
        match hive.flags(cloud.now()).await {
            Flags::Known(flags) => (
                flags
                    .into_iter()
                    .filter(|f| f.pool.region == region)
                    .map(|f| PoolKey::new(&f.pool.instance_type, &f.pool.az))
                    .collect(),
                None,
            ),
            Flags::Unknown { reason } => (
                spot.keys().map(|(ty, az)| PoolKey::new(ty, az)).collect(),
                Some(reason),
            ),
        };
    let types: Vec<InstanceType> = info
        .iter()
        .filter_map(|t| {
            Some(InstanceType {
                name: t.name.clone(),
                family: t.family.clone(),
                vcpu: t.vcpu,
                memory_mib: t.memory_mib,
                gpus: t.gpus,
                arch: match t.architecture {
                    spot_cloud::Architecture::Arm64 => Arch::Arm64,
                    spot_cloud::Architecture::X86_64 => Arch::X86_64,
                },
                burstable: t.burstable,
                on_demand_hourly: *on_demand.get(&t.name)?,
            })
        })
        .collect();
    let known: HashSet<&str> = types.iter().map(|t| t.name.as_str()).collect();
    let spot_pools: Vec<SpotPool> = spot
        .iter()
        .filter(|((ty, _), _)| known.contains(ty.as_str()))
        .map(|((ty, az), price)| SpotPool {
            instance_type: ty.clone(),
            az: az.clone(),
            spot_price: *price,
            interruption_probability: pool_risk
                .get(&PoolKey::new(ty, az))
                .copied()
                .unwrap_or(UNSCORED_RISK),
        })
        .collect();
    let catalog = Catalog::new(types, spot_pools)?;
    Ok(Market {
        catalog,
        pool_risk,
        risk_flags,
        on_demand,
        spot,
        scores,
        model: model.id.clone(),
        read_at: cloud.now(),
        flags_unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hive::{HiveError, MemoryTracker, PoolFlag, PoolId, RiskSignal};
    use crate::risk::RiskService;
    use chrono::{DateTime, Utc};
    use spot_engine::risk::Runtime;

    /// A tracker that cannot be read (Redis down).
    struct DownTracker;

    #[async_trait::async_trait]
    impl RiskTracker for DownTracker {
        async fn flag(
            &self,
            _pool: &PoolId,
            _signal: RiskSignal,
            _at: DateTime<Utc>,
        ) -> Result<PoolFlag, HiveError> {
            Err(HiveError::InvalidConfig("down".into()))
        }
        async fn get(
            &self,
            _pool: &PoolId,
            _now: DateTime<Utc>,
        ) -> Result<Option<PoolFlag>, HiveError> {
            Err(HiveError::InvalidConfig("down".into()))
        }
        async fn flagged(&self, _now: DateTime<Utc>) -> Result<Vec<PoolFlag>, HiveError> {
            Err(HiveError::InvalidConfig("tracker unreachable".into()))
        }
    }

    #[tokio::test]
    async fn an_unreadable_tracker_is_unknown_not_clean() {
        let cloud = spot_cloud::sim::SimCloud::for_account("123456789012", 7).expect("sim");
        let model = RiskService::new(Runtime::Tract).current();

        let known = read(&cloud, &model, &MemoryTracker::default())
            .await
            .expect("market");
        assert!(known.flags_unknown.is_none());
        assert!(
            known.risk_flags.is_empty(),
            "nothing flagged in a fresh tracker"
        );
        assert!(known
            .scores
            .iter()
            .all(|s| s.degraded == 0 || s.model == "heuristic"));

        let down = read(&cloud, &model, &DownTracker).await.expect("market");
        assert!(
            down.flags_unknown
                .as_deref()
                .is_some_and(|r| r.contains("unreachable")),
            "{:?}",
            down.flags_unknown
        );
        // Every spot pool is held as flagged: no new capacity goes where interruptions may be
        // under way, and the engine's pools all carry the block.
        assert_eq!(down.risk_flags.len(), down.spot.len());
        assert!(down
            .catalog
            .pools()
            .iter()
            .all(|p| down.risk_flags.contains(&p.key())));
        // The scores are kept but say they were made without the tracker.
        assert!(!down.scores.is_empty());
        assert!(down.scores.iter().all(|s| s.degraded == 1));
    }
}
