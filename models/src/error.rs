use thiserror::Error;

/// Persistence errors. Callers map them to their own domain errors; a unique-constraint
/// violation is surfaced separately because it is an expected outcome (duplicate e-mail,
/// account already linked), not an outage.
#[derive(Debug, Error)]
pub enum DbError {
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Sqlx(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(ref d) = e {
            if d.is_unique_violation() {
                return DbError::Conflict(d.message().to_string());
            }
        }
        DbError::Sqlx(e)
    }
}

impl DbError {
    /// True for an outage that a retry can outlive: the connection dropped or was
    /// terminated (PostgreSQL class 08, `57P01`–`57P03`), the pool timed out, a serialization
    /// failure or deadlock (`40001`, `40P01`), or SQLite busy/locked.
    pub fn is_transient(&self) -> bool {
        let DbError::Sqlx(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(d) => {
                let code = d.code().map(|c| c.to_string()).unwrap_or_default();
                code.starts_with("08")
                    || matches!(
                        code.as_str(),
                        "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "5" | "6" | "517" | "262"
                    )
            }
            _ => false,
        }
    }
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;
