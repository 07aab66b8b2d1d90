//! MOD-AI-01 in the running product: the active risk model (shipped, graduated from the
//! registry, or the degraded heuristic), hot-swapped by graduation, and the scoring of the
//! spot pools an account uses.
//!
//! The service holds the *current* model for request handlers; every account and cluster
//! actor holds its own `Arc` of the model it decides with and swaps it when the graduation
//! broadcast reaches it (between two messages), so a decision in flight always finishes on
//! the model it started with.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use chrono::{Datelike, Duration, Timelike};
use serde::Serialize;
use spot_cloud::{Cloud, CloudError, InstanceCategory};
use spot_engine::risk::{self, FamilyCategory, PoolObservation, RiskModel, Runtime};
use spot_models::{risk as store, Db};

use crate::hive::{PoolId, RiskTracker};

pub const COMPONENT: &str = "MOD-AI-01";

/// The model shipped in the binary (`onnx/risk-v1.onnx`, contract v1).
pub const SHIPPED_MODEL: &[u8] = include_bytes!("../../onnx/risk-v1.onnx");
pub const SHIPPED_ID: &str = "shipped:risk-v1";

/// A loaded model and where it came from.
pub struct ActiveModel {
    /// Registry id, [`SHIPPED_ID`], or `heuristic`.
    pub id: String,
    pub name: String,
    pub model: Box<dyn RiskModel>,
    /// Why the intended model is not running (the heuristic took over).
    pub load_error: Option<String>,
}

impl ActiveModel {
    pub fn degraded(&self) -> bool {
        self.model.is_degraded()
    }

    /// Loads `bytes` on `runtime`; the documented heuristic takes over if it fails.
    pub fn load(id: &str, name: &str, bytes: &[u8], runtime: &Runtime) -> ActiveModel {
        let (model, err) = risk::load_or_heuristic(Some(bytes), runtime);
        if let Some(e) = &err {
            tracing::error!(component = COMPONENT, model = %id, error = %e, "risk model failed to load; static heuristic in use (degraded)");
        }
        ActiveModel {
            id: if err.is_some() {
                "heuristic".into()
            } else {
                id.into()
            },
            name: if err.is_some() {
                format!("heuristic (instead of {name})")
            } else {
                name.into()
            },
            model,
            load_error: err.map(|e| e.to_string()),
        }
    }
}

/// Health and identity of the active model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub id: String,
    pub name: String,
    pub runtime: String,
    pub degraded: bool,
    pub load_error: Option<String>,
}

/// The process-wide current model (request handlers read it; actors get it by broadcast).
pub struct RiskService {
    runtime: Runtime,
    current: RwLock<Arc<ActiveModel>>,
    /// The scored market each account actor of this replica read at its last discovery,
    /// by account id: what read-only views (an instance's cheaper alternatives) serve from
    /// instead of calling the cloud per request.
    markets: RwLock<std::collections::HashMap<String, Arc<crate::market::Market>>>,
}

impl RiskService {
    /// Starts on the shipped model.
    pub fn new(runtime: Runtime) -> RiskService {
        let m = ActiveModel::load(SHIPPED_ID, "risk-v1 (shipped)", SHIPPED_MODEL, &runtime);
        RiskService {
            runtime,
            current: RwLock::new(Arc::new(m)),
            markets: RwLock::new(Default::default()),
        }
    }

    /// Records (or, with `None`, forgets) the scored market of an account.
    pub fn set_market(&self, account_id: &str, market: Option<Arc<crate::market::Market>>) {
        let mut g = self.markets.write().unwrap_or_else(|e| e.into_inner());
        match market {
            Some(m) => {
                g.insert(account_id.to_string(), m);
            }
            None => {
                g.remove(account_id);
            }
        }
    }

    /// The scored market the account's actor last read on this replica, if any.
    pub fn market(&self, account_id: &str) -> Option<Arc<crate::market::Market>> {
        self.markets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(account_id)
            .cloned()
    }

    /// The runtime from the environment: onnxruntime when `ORT_DYLIB_PATH` names a library,
    /// else tract (pure Rust).
    pub fn runtime_from_env() -> Runtime {
        match std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
            Some(p) => Runtime::OnnxRuntime {
                dylib_path: p.into(),
            },
            None => Runtime::Tract,
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn current(&self) -> Arc<ActiveModel> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set(&self, m: Arc<ActiveModel>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = m;
    }

    pub fn status(&self) -> ModelStatus {
        let m = self.current();
        ModelStatus {
            id: m.id.clone(),
            name: m.name.clone(),
            runtime: m.model.describe(),
            degraded: m.degraded(),
            load_error: m.load_error.clone(),
        }
    }

    /// The model the registry says should run: the graduated one, else the shipped one.
    pub async fn load_from_registry(
        &self,
        db: &Db,
    ) -> Result<Arc<ActiveModel>, spot_models::DbError> {
        let Some(row) = store::graduated(db).await? else {
            return Ok(Arc::new(ActiveModel::load(
                SHIPPED_ID,
                "risk-v1 (shipped)",
                SHIPPED_MODEL,
                &self.runtime,
            )));
        };
        let bytes = store::model_bytes(db, &row.id).await?.unwrap_or_default();
        let runtime = self.runtime.clone();
        let (id, name) = (row.id.clone(), row.name.clone());
        // Loading runs the contract vectors: keep it off the async workers.
        let m =
            tokio::task::spawn_blocking(move || ActiveModel::load(&id, &name, &bytes, &runtime))
                .await
                .map_err(|e| {
                    spot_models::DbError::Corrupt(format!("model load task failed: {e}"))
                })?;
        Ok(Arc::new(m))
    }
}

fn family_category(c: InstanceCategory) -> FamilyCategory {
    match c {
        InstanceCategory::General => FamilyCategory::General,
        InstanceCategory::Compute => FamilyCategory::Compute,
        InstanceCategory::Memory => FamilyCategory::Memory,
        InstanceCategory::Burstable => FamilyCategory::Burstable,
        InstanceCategory::Accelerated => FamilyCategory::Gpu,
        InstanceCategory::Storage | InstanceCategory::Other => FamilyCategory::Other,
    }
}

/// Scores the given pools of `cloud`'s region with `model` and returns the rows to store.
/// Prices: the last 24 hours of spot price history (one price per hour in force at the hour
/// boundary); the hive mind's current count for the pool feeds `hive_flags_24h`.
pub async fn score_pools(
    cloud: &dyn Cloud,
    model: &ActiveModel,
    hive: &dyn RiskTracker,
    pools: &HashSet<(String, String)>,
) -> Result<Vec<store::PoolRisk>, CloudError> {
    if pools.is_empty() {
        return Ok(Vec::new());
    }
    let region = cloud.region().to_string();
    let now = cloud.now();
    let types: Vec<String> = pools
        .iter()
        .map(|p| p.0.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let catalog: HashMap<String, spot_cloud::InstanceTypeInfo> = cloud
        .instance_type_catalog()
        .await?
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    let od: HashMap<String, f64> = cloud
        .on_demand_prices(&types)
        .await?
        .into_iter()
        .map(|p| (p.instance_type, p.usd_per_hour))
        .collect();
    // Points per pool, oldest first; the window starts a day earlier so the price in force
    // at the first hour boundary is known.
    let mut history: HashMap<(String, String), BTreeMap<i64, f64>> = HashMap::new();
    for p in cloud
        .spot_price_history(&types, &[], now - Duration::hours(48))
        .await?
    {
        history
            .entry((p.instance_type.clone(), p.az.to_string()))
            .or_default()
            .insert(p.timestamp.timestamp(), p.usd_per_hour);
    }
    // Unknown flags (tracker down): the feature cannot be filled in; the scores are kept but
    // marked degraded (scored without the global tracker), never passed off as "no flags".
    let tracker = hive.flags(now).await;
    let flags_unknown = tracker.is_unknown();
    let flags: HashMap<PoolId, u64> = tracker
        .known()
        .unwrap_or(&[])
        .iter()
        .map(|f| (f.pool.clone(), f.count))
        .collect();
    let mut observations = Vec::new();
    let mut keys = Vec::new();
    let mut sorted: Vec<&(String, String)> = pools.iter().collect();
    sorted.sort();
    for (ty, az) in sorted {
        let (Some(info), Some(&od_price), Some(points)) = (
            catalog.get(ty),
            od.get(ty),
            history.get(&(ty.clone(), az.clone())),
        ) else {
            continue;
        };
        let mut prices = Vec::with_capacity(24);
        for h in (0..24).rev() {
            let t = (now - Duration::hours(h)).timestamp();
            if let Some((_, p)) = points.range(..=t).next_back() {
                prices.push(*p);
            }
        }
        if prices.is_empty() {
            continue;
        }
        let pool = PoolId {
            region: region.clone(),
            az: az.clone(),
            instance_type: ty.clone(),
        };
        observations.push(PoolObservation {
            instance_type: ty.clone(),
            category: family_category(info.category),
            vcpu: info.vcpu.max(1),
            az: az.clone(),
            spot_prices: prices,
            on_demand_price: od_price,
            placement_score: None,
            hour_utc: now.hour() as u8,
            weekday: now.weekday().num_days_from_monday() as u8,
            hive_flags_24h: flags
                .get(&pool)
                .copied()
                .unwrap_or(0)
                .min(u64::from(u32::MAX)) as u32,
        });
        keys.push((ty.clone(), az.clone()));
    }
    let mut features = Vec::with_capacity(observations.len());
    let mut kept = Vec::with_capacity(observations.len());
    for (obs, key) in observations.iter().zip(keys) {
        match risk::extract(obs) {
            Ok(f) => {
                features.push(f);
                kept.push(key);
            }
            Err(e) => {
                tracing::warn!(component = COMPONENT, pool = ?key, error = %e, "pool not scored")
            }
        }
    }
    let scores = match model.model.score(&features) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(component = COMPONENT, error = %e, "model failed at scoring time; heuristic used for this batch");
            risk::HeuristicModel.score(&features).unwrap_or_default()
        }
    };
    let at = now.timestamp_millis();
    let model_id = if scores.first().is_some_and(|s| s.degraded) {
        "heuristic".to_string()
    } else {
        model.id.clone()
    };
    Ok(kept
        .into_iter()
        .zip(scores)
        .map(|((ty, az), s)| store::PoolRisk {
            region: region.clone(),
            az,
            instance_type: ty,
            probability: s.probability,
            confidence: s.confidence,
            action: action_str(s.action).to_string(),
            model: model_id.clone(),
            degraded: i64::from(s.degraded || flags_unknown),
            scored_at: at,
        })
        .collect())
}

/// The contract's spelling of an action.
pub fn action_str(a: risk::Action) -> &'static str {
    match a {
        risk::Action::Safe => "SAFE",
        risk::Action::Caution => "CAUTION",
        risk::Action::Avoid => "AVOID",
    }
}

/// The sandboxed half of upload validation (run by `spot-optimizer validate-model` in a
/// child process with memory and CPU limits): loads the bytes on tract and runs the
/// contract checks (`OnnxModel::from_bytes`), then scores a batch to prove the model is
/// usable. Returns a JSON report or the reason for rejection.
pub fn validate_bytes(bytes: &[u8]) -> Result<serde_json::Value, String> {
    let started = std::time::Instant::now();
    let model = risk::OnnxModel::from_bytes(bytes, Runtime::Tract).map_err(|e| e.to_string())?;
    // Two probes beyond the contract vectors: a single row and a batch of them must give
    // one in-range value per row.
    let row = [0.5f32; risk::features::FEATURE_COUNT];
    for n in [1usize, 64] {
        let out = model
            .probabilities(&vec![row; n])
            .map_err(|e| e.to_string())?;
        if out.len() != n {
            return Err(format!(
                "model returned {} values for a batch of {n}",
                out.len()
            ));
        }
        if let Some(v) = out
            .iter()
            .find(|p| !(p.is_finite() && (0.0..=1.0).contains(*p)))
        {
            return Err(format!(
                "model output {v} for a probe row is outside [0, 1]"
            ));
        }
    }
    Ok(serde_json::json!({
        "runtime": "tract",
        "contract": "v1",
        "checks": ["loads", "input `features` float32 [N, 22]", "output `interruption_probability` [N]", "contract vectors in [0, 1]", "batch probes 1 and 64"],
        "duration_ms": started.elapsed().as_millis() as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_that_cannot_load_falls_back_to_the_degraded_heuristic() {
        let m = ActiveModel::load(
            "bad",
            "broken upload",
            b"not an onnx model",
            &Runtime::Tract,
        );
        assert!(m.degraded());
        assert_eq!(m.id, "heuristic");
        assert!(
            m.load_error
                .as_deref()
                .is_some_and(|e| e.contains("does not load")),
            "{:?}",
            m.load_error
        );
        let svc = RiskService::new(Runtime::Tract);
        assert!(!svc.status().degraded, "the shipped model loads on tract");
        svc.set(std::sync::Arc::new(m));
        let st = svc.status();
        assert!(st.degraded);
        assert_eq!(st.runtime, "heuristic (degraded)");
    }

    #[test]
    fn actions_use_the_contract_spelling() {
        assert_eq!(action_str(risk::Action::Safe), "SAFE");
        assert_eq!(action_str(risk::Action::Caution), "CAUTION");
        assert_eq!(action_str(risk::Action::Avoid), "AVOID");
    }
}
