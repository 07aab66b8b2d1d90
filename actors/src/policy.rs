//! The optimization policy of a cluster lives in the engine (it is the planner's input);
//! re-exported here for the actors and jobs that load and store it.

pub use spot_engine::policy::{
    ClusterPolicy, DisruptionBudget, OnDemandMinimum, DEFAULT_DRAIN_TIMEOUT_SECS,
};
