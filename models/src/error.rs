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

pub type Result<T, E = DbError> = std::result::Result<T, E>;
