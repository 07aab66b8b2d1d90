//! Domain records and persistence for Spot Optimizer.
//!
//! One code path serves SQLite (the embedded default) and PostgreSQL (production) through
//! sqlx's `Any` driver. Identifiers are UUIDs stored as text and timestamps are UTC epoch
//! milliseconds stored as `BIGINT`, so both engines hold exactly the same values (the audit
//! hash chain depends on that). Every repository function that reads tenant data takes the
//! organization id.

pub mod accounts;
pub mod agent_targets;
pub mod agents;
pub mod audit;
pub mod batches;
pub mod clients;
pub mod console;
pub mod crypto;
pub mod db;
pub mod error;
pub mod hibernation;
pub mod inventory;
pub mod jobs;
pub mod lab;
pub mod leases;
pub mod notify;
pub mod orgs;
pub mod overrides;
pub mod risk;
pub mod sessions;
pub mod templates;

pub use db::{Backend, Db};
pub use error::{DbError, Result};

/// Current UTC time in epoch milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A fresh random (v4) identifier as text.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
