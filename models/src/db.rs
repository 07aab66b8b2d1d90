use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;

use crate::error::{DbError, Result};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which engine sits behind the pool. A few statements differ (row locks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How long a SQLite connection waits for another connection's write lock before giving up
/// with `SQLITE_BUSY` (set on every connection).
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// The keys that authenticate the audit chains (derived from the server's secret key, which
/// the database never holds). Shared by every clone of a [`Db`], so installing them once at
/// start-up covers every component.
#[derive(Clone, Default)]
pub struct AuditKeys(Arc<RwLock<Option<Arc<crate::audit::MacKeys>>>>);

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKeys(..)")
    }
}

/// The database handle shared by every repository.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// The URL it was opened with (other components, e.g. the job queue, connect next to it).
    pub url: String,
    audit_keys: AuditKeys,
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://...`). SQLite files are created when
    /// missing.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DbError::InvalidUrl(
                "must start with sqlite:// or postgres://".into(),
            ));
        };
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_string()
        };
        let opts =
            AnyConnectOptions::from_str(&url).map_err(|e| DbError::InvalidUrl(e.to_string()))?;
        let max = if backend == Backend::Sqlite { 8 } else { 16 };
        let mut pool_opts = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            // Every connection waits for a busy writer instead of failing at once.
            pool_opts = pool_opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    let ms = SQLITE_BUSY_TIMEOUT.as_millis();
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout = {ms}")))
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = pool_opts.connect_with(opts).await?;
        if backend == Backend::Sqlite {
            // WAL lets readers proceed while one writer commits; it is a property of the file.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Db {
            pool,
            backend,
            url,
            audit_keys: AuditKeys::default(),
        })
    }

    /// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write lock
    /// is taken (waiting up to the busy timeout) before the first read, so two writers that
    /// both read first cannot deadlock into `SQLITE_BUSY`. On PostgreSQL it is a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Installs the audit MAC keys (the server does this once at start). Every clone of this
    /// handle sees them.
    pub fn set_audit_keys(&self, keys: crate::audit::MacKeys) {
        let mut g = self.audit_keys.0.write().unwrap_or_else(|e| e.into_inner());
        *g = Some(Arc::new(keys));
    }

    /// The audit MAC keys, when installed.
    pub fn audit_keys(&self) -> Option<Arc<crate::audit::MacKeys>> {
        self.audit_keys
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies the migrations for this backend (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATOR.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Cheap liveness query for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// `FOR UPDATE` where the engine supports row locks; SQLite serializes writers instead.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }
}

/// True for errors that a retry can cure: SQLite busy/locked, PostgreSQL serialization
/// failures, deadlocks and lock timeouts, and a pool that timed out.
pub fn is_transient(e: &DbError) -> bool {
    let DbError::Sqlx(e) = e else {
        return false;
    };
    match e {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(d) => {
            let code = d.code();
            let code = code.as_deref().unwrap_or("");
            // SQLite primary codes 5 (BUSY) and 6 (LOCKED), as extended codes (low byte).
            let sqlite_busy = code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            sqlite_busy || matches!(code, "40001" | "40P01" | "55P03")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_connections_wait_for_a_busy_writer() {
        let dir = std::env::temp_dir().join(format!("spot-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.display()))
            .await
            .expect("connect");
        let (t,): (i64,) = sqlx::query_as("PRAGMA busy_timeout")
            .fetch_one(&db.pool)
            .await
            .expect("pragma");
        assert_eq!(t, SQLITE_BUSY_TIMEOUT.as_millis() as i64);
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&db.pool)
            .await
            .expect("pragma");
        assert_eq!(mode.to_lowercase(), "wal");
        sqlx::query("CREATE TABLE t (n BIGINT)")
            .execute(&db.pool)
            .await
            .expect("table");
        // Two writers that both read before writing: with BEGIN IMMEDIATE the second waits
        // for the first instead of failing with SQLITE_BUSY.
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = db.begin_write().await?;
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t")
                    .fetch_one(&mut *tx)
                    .await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                sqlx::query("INSERT INTO t (n) VALUES ($1)")
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, DbError>(())
            }));
        }
        for t in tasks {
            t.await.expect("join").expect("writer");
        }
        let (rows, distinct): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT n) FROM t")
                .fetch_one(&db.pool)
                .await
                .expect("count");
        // Each writer saw every earlier commit: the counts it read are 0..5, all distinct.
        assert_eq!((rows, distinct), (6, 6));
    }
}
