//! HTTP handlers, grouped by area. Handlers validate, authorize and call the models layer.

pub mod accounts;
pub mod admin;
pub mod agent;
pub mod audit;
pub mod auth;
pub mod console;
pub mod dashboard;
pub mod events;
pub mod health;
pub mod hibernation;
pub mod inventory;
pub mod jobs;
pub mod lab;
pub mod notify;
pub mod org;
pub mod overrides;
pub mod risk;
pub mod templates;
pub mod waste;

use chrono::{DateTime, TimeZone, Utc};
use poem_openapi::Tags;

#[derive(Tags)]
pub enum ApiTags {
    /// Sign up, sign in, token refresh and logout.
    Auth,
    /// The caller's organization: members, invites, settings.
    Organization,
    /// Linked cloud accounts (AWS role or keys, or the simulator).
    Accounts,
    /// Observability dashboard figures.
    Dashboard,
    /// Discovered clusters, instances, volumes and snapshots.
    Inventory,
    /// The tamper-evident audit log.
    Audit,
    /// Platform administration (super_admin only).
    Admin,
    /// Live server-sent event streams.
    Events,
    /// Liveness and readiness.
    Health,
    /// The in-cluster agent: install, status, token rotation, commands, manual registration.
    Agent,
    /// Cluster hibernation: weekly schedule, holidays, overrides, sleep / wake now, savings.
    Hibernation,
}

/// Epoch milliseconds to a UTC timestamp (clamped to the epoch on nonsense).
pub fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Every API group, for the OpenAPI service.
pub type Apis = (
    auth::AuthApi,
    org::OrgApi,
    accounts::AccountsApi,
    inventory::InventoryApi,
    agent::AgentApi,
    (jobs::JobsApi, overrides::OverridesApi),
    hibernation::HibernationApi,
    waste::WasteApi,
    templates::TemplatesApi,
    (
        dashboard::DashboardApi,
        notify::NotificationsApi,
        notify::ReportsApi,
    ),
    audit::AuditApi,
    (admin::AdminApi, console::ConsoleApi),
    (risk::RiskApi, lab::LabApi),
    events::EventsApi,
    health::HealthApi,
);

pub fn apis() -> Apis {
    (
        auth::AuthApi,
        org::OrgApi,
        accounts::AccountsApi,
        inventory::InventoryApi,
        agent::AgentApi,
        (jobs::JobsApi, overrides::OverridesApi),
        hibernation::HibernationApi,
        waste::WasteApi,
        templates::TemplatesApi,
        (
            dashboard::DashboardApi,
            notify::NotificationsApi,
            notify::ReportsApi,
        ),
        audit::AuditApi,
        (admin::AdminApi, console::ConsoleApi),
        (risk::RiskApi, lab::LabApi),
        events::EventsApi,
        health::HealthApi,
    )
}
