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

/// The `VALUES` list of a multi-row statement: `rows` tuples of `cols` numbered placeholders
/// (`($1, $2), ($3, $4)`), bound row after row.
pub(crate) fn values_rows(rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * cols + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod values_rows_tests {
    #[test]
    fn numbers_placeholders_row_after_row() {
        assert_eq!(super::values_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::values_rows(1, 1), "($1)");
    }
}

/// A fresh random (v4) identifier as text.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
