//! Start-up: connect and migrate the database, seed the platform admin, start background
//! duties and serve HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::Server;
use spot_models::{orgs, Db};

use crate::auth::{check_password_policy, hash_password_async, normalize_email};
use crate::error::ApiError;
use crate::{app, retention, AppState};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid {setting}: {reason}")]
    Config { setting: &'static str, reason: String },
    #[error("database: {0}")]
    Db(#[from] spot_models::DbError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
}

/// Creates or updates the platform super-admin from configuration. There is no default
/// password: without both settings no super-admin is seeded.
pub async fn seed_super_admin(db: &Db, email: &str, password: &str) -> Result<(), StartError> {
    let email = normalize_email(email).map_err(|e| StartError::Config { setting: "SPOT_ADMIN_EMAIL", reason: e.to_string() })?;
    check_password_policy(password, &email).map_err(|e| StartError::Config { setting: "SPOT_ADMIN_PASSWORD", reason: e.to_string() })?;
    let hash = hash_password_async(password.to_string())
        .await
        .map_err(|e: ApiError| StartError::Config { setting: "SPOT_ADMIN_PASSWORD", reason: e.to_string() })?;
    orgs::ensure_super_admin(db, &email, &hash).await?;
    tracing::info!(component = "CORE-AUTH", %email, "platform super-admin ready");
    Ok(())
}

/// A bound server: its address and the task serving it.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `addr` (port 0 picks a free port) and serves the app until the task is dropped or
/// `shutdown` resolves. Also starts the audit retention purge.
pub async fn start(
    state: AppState,
    addr: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let acceptor = TcpListener::bind(addr.to_string())
        .into_acceptor()
        .await
        .map_err(|e| StartError::Listen { addr: addr.into(), reason: e.to_string() })?;
    let bound = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .ok_or_else(|| StartError::Listen { addr: addr.into(), reason: "no socket address".into() })?;
    let interval = Duration::from_secs(state.cfg.retention_interval_secs.max(1));
    tokio::spawn(retention::run(state.db.clone(), interval));
    let endpoint = app(state);
    let handle = tokio::spawn(async move {
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(endpoint, shutdown, Some(Duration::from_secs(10)))
            .await
    });
    Ok(Running { addr: bound, handle })
}
