//! Start-up: connect and migrate the database, seed the platform admin, start background
//! duties and serve HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::Server;
use spot_models::{orgs, Db};

use crate::auth::{
    check_password_policy, hash_password_async, normalize_email, verify_password_async,
};
use crate::error::ApiError;
use crate::{app, retention, AppState};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid {setting}: {reason}")]
    Config {
        setting: &'static str,
        reason: String,
    },
    #[error("database: {0}")]
    Db(#[from] spot_models::DbError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
}

/// Creates the platform super-admin from configuration, or brings the existing one's password
/// in line with it (a changed `SPOT_ADMIN_PASSWORD` takes effect and signs the admin's
/// sessions out). A user with that e-mail who is not already the platform admin is never
/// promoted: start-up stops with that message. There is no default password: without both
/// settings no super-admin is seeded.
pub async fn seed_super_admin(db: &Db, email: &str, password: &str) -> Result<(), StartError> {
    let email = normalize_email(email).map_err(|e| StartError::Config {
        setting: "SPOT_ADMIN_EMAIL",
        reason: e.to_string(),
    })?;
    check_password_policy(password, &email).map_err(|e| StartError::Config {
        setting: "SPOT_ADMIN_PASSWORD",
        reason: e.to_string(),
    })?;
    let hashing = |e: ApiError| StartError::Config {
        setting: "SPOT_ADMIN_PASSWORD",
        reason: e.to_string(),
    };
    let hash = hash_password_async(password.to_string())
        .await
        .map_err(hashing)?;
    match orgs::ensure_super_admin(db, &email, &hash).await? {
        orgs::SuperAdminSeed::Created(u) => {
            audit_admin_seed(db, "platform.admin_created", &u.id, &email).await?;
            tracing::info!(component = "CORE-AUTH", %email, "platform super-admin created");
        }
        orgs::SuperAdminSeed::Existing(u) => {
            let same = verify_password_async(password.to_string(), u.password_hash.clone())
                .await
                .map_err(hashing)?;
            if !same {
                orgs::set_password(db, &u.id, &hash).await?;
                let ended =
                    spot_models::sessions::revoke_all_for_user(db, &u.id, "password_changed")
                        .await?;
                audit_admin_seed(db, "platform.admin_password_changed", &u.id, &email).await?;
                tracing::info!(component = "CORE-AUTH", %email, sessions_revoked = ended, "platform super-admin password changed from configuration");
            } else {
                tracing::info!(component = "CORE-AUTH", %email, "platform super-admin ready");
            }
        }
        orgs::SuperAdminSeed::NotPlatformAdmin => {
            return Err(StartError::Config {
                setting: "SPOT_ADMIN_EMAIL",
                reason: format!(
                    "{email} belongs to an existing user who is not the platform admin; refusing to promote it (configure another e-mail)"
                ),
            })
        }
    }
    Ok(())
}

/// Start-up changes to the platform admin are recorded on the platform chain as `system`.
async fn audit_admin_seed(
    db: &Db,
    action: &str,
    user_id: &str,
    email: &str,
) -> Result<(), StartError> {
    spot_models::audit::append(
        db,
        spot_models::audit::NewAuditRecord {
            organization_id: None,
            actor_kind: "system".into(),
            actor_component: Some("CORE-AUTH".into()),
            action: action.into(),
            resource_type: "user".into(),
            resource_id: Some(user_id.into()),
            outcome: "success".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            after: Some(serde_json::json!({"email": email, "source": "SPOT_ADMIN_EMAIL / SPOT_ADMIN_PASSWORD"})),
            ..Default::default()
        },
    )
    .await?;
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
        .map_err(|e| StartError::Listen {
            addr: addr.into(),
            reason: e.to_string(),
        })?;
    let bound = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .ok_or_else(|| StartError::Listen {
            addr: addr.into(),
            reason: "no socket address".into(),
        })?;
    let interval = Duration::from_secs(state.cfg.retention_interval_secs.max(1));
    tokio::spawn(retention::run(state.db.clone(), interval));
    tokio::spawn(crate::sweep::run(state.db.clone(), Duration::from_secs(30)));
    // The Lab's A/B tests tick on every replica (each tick is claimed by one).
    tokio::spawn(spot_jobs::lab::drive_ab_tests(state.deps.clone()));
    // Outbound notifications (webhook, SMTP) and the weekly report job.
    let notifier = crate::notify::Notifier::new(state.db.clone(), &state.cfg, &state.replica_id)
        .map_err(|e| StartError::Config {
            setting: e.setting,
            reason: e.reason,
        })?;
    tokio::spawn(notifier.run(Duration::from_millis(state.cfg.notify_poll_ms.max(50))));
    tokio::spawn(crate::report::run(
        state.db.clone(),
        Duration::from_secs(state.cfg.weekly_report_check_secs.max(1)),
    ));
    tokio::spawn(crate::console::run_purge(
        state.db.clone(),
        state.cfg.deleted_org_retention_days,
        interval,
    ));
    tokio::spawn(crate::console::run_monitor(
        state.clone(),
        Duration::from_secs(10),
    ));
    tokio::spawn(crate::routes::overrides::run_sweep(
        state.clone(),
        Duration::from_secs(30),
    ));
    if let Some(sim_agents) = &state.sim_agents {
        // Simulated agents reach this server over loopback, as a real agent would over HTTPS.
        let mut target = bound;
        if target.ip().is_unspecified() {
            target.set_ip(match target {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        sim_agents.start(format!("http://{target}"));
    }
    let endpoint = app(state);
    let handle = tokio::spawn(async move {
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(endpoint, shutdown, Some(Duration::from_secs(10)))
            .await
    });
    Ok(Running {
        addr: bound,
        handle,
    })
}

/// The demo organization's login, printed at start.
pub struct DemoLogin {
    pub email: String,
    pub password: String,
}

pub const DEMO_EMAIL: &str = "demo@acme.example.com";
/// Simulated AWS accounts of the demo organization (distinct from the ids a new user might
/// try in the onboarding wizard).
pub const DEMO_ACCOUNTS: &[(&str, &str, &str)] = &[
    ("Acme Prod", "111122223333", "us-east-1"),
    ("Acme Lab", "444455556666", "us-west-2"),
];

/// The demo's Lab-ready account (super-admins run live switches and A/B tests on it).
pub const DEMO_LAB_ACCOUNT: &str = "444455556666";

/// Seeds (or refreshes) the demo organization: an owner with a fresh random password and two
/// linked simulator accounts, scanned before this returns.
pub async fn seed_demo(state: &AppState) -> Result<DemoLogin, StartError> {
    use rand::Rng;
    let password: String = {
        let mut rng = rand::thread_rng();
        let word: String = (0..10)
            .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
            .collect();
        format!("demo-{word}-{}", rng.gen_range(10..99))
    };
    let hash = hash_password_async(password.clone())
        .await
        .map_err(|e: ApiError| StartError::Config {
            setting: "--demo",
            reason: e.to_string(),
        })?;
    let org_id = match orgs::user_by_email(&state.db, DEMO_EMAIL).await? {
        Some(u) => {
            orgs::set_password(&state.db, &u.id, &hash).await?;
            orgs::membership_of(&state.db, &u.id)
                .await?
                .map(|m| m.0)
                .ok_or_else(|| StartError::Config {
                    setting: "--demo",
                    reason: "demo user has no organization".into(),
                })?
        }
        None => {
            orgs::signup(&state.db, "Acme Corp", DEMO_EMAIL, &hash)
                .await?
                .organization
                .id
        }
    };
    orgs::set_onboarding_state(&state.db, &org_id, "completed").await?;
    if let Some(sim_agents) = &state.sim_agents {
        // Every demo cluster runs a (simulated) agent, installed as soon as it is found.
        sim_agents.auto_install(&org_id);
    }
    let org = orgs::org_by_id(&state.db, &org_id)
        .await?
        .ok_or_else(|| StartError::Config {
            setting: "--demo",
            reason: "demo organization vanished".into(),
        })?;
    for (name, account_id, region) in DEMO_ACCOUNTS {
        if let Some(existing) = spot_models::accounts::live_by_aws_id(&state.db, account_id).await?
        {
            if existing.organization_id != org_id {
                continue;
            }
        }
        let role_arn = format!("arn:aws:iam::{account_id}:role/SpotOptimizer");
        let acc = spot_models::accounts::upsert_linked(
            &state.db,
            &org_id,
            &spot_models::accounts::LinkedAccount {
                name,
                provider: state.connector.provider(),
                aws_account_id: account_id,
                method: "role",
                role_arn: Some(&role_arn),
                external_id: Some(&org.external_id),
                region,
                credentials: None,
            },
        )
        .await?;
        if *account_id == DEMO_LAB_ACCOUNT {
            crate::routes::lab::prepare_demo_lab(state, account_id, region).await;
        }
        state.actors.ensure(&acc.id);
    }
    Ok(DemoLogin {
        email: DEMO_EMAIL.into(),
        password,
    })
}
