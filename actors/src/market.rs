//! The spot market as the engine sees it: the region's instance types with on-demand
//! prices, every spot pool with its latest price and the risk model's probability, and the
//! pools the global risk tracker flags. Built through the Cloud port; used by "Optimize
//! Now" and by cluster actors reacting to events between discoveries.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use spot_cloud::{Cloud, CloudError};
use spot_engine::catalog::{Arch, Catalog, InstanceType, PoolKey, SpotPool};
use spot_models::risk::PoolRisk;

use crate::hive::RiskTracker;
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
    let risk_flags: BTreeSet<PoolKey> = hive
        .flagged_set(cloud.region(), cloud.now())
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| PoolKey::new(&p.instance_type, &p.az))
        .collect();
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
    })
}
