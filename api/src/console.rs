//! Background work of the super-admin console: the purge of soft-deleted organizations after
//! the retention period (audited in the platform chain as the `system` actor
//! `CORE-CLIENT-PURGE`), and the component monitor that records state changes with the log
//! lines around them.

use std::collections::BTreeMap;
use std::time::Duration;

use spot_models::audit::{self, NewAuditRecord};
use spot_models::clients::{self, ClientStatus};
use spot_models::console::{self, PurgedOrg};
use spot_models::{now_ms, Db, DbError};

use crate::state::AppState;

pub const PURGE_COMPONENT: &str = "CORE-CLIENT-PURGE";
pub const MONITOR_COMPONENT: &str = "CORE-MONITOR";

const DAY_MS: i64 = 24 * 3600 * 1000;

/// One purge pass as if the clock read `now` (epoch ms): every organization soft-deleted at
/// least `retention_days` ago is removed, each purge audited in the platform chain.
pub async fn purge_once_at(
    db: &Db,
    now: i64,
    retention_days: i64,
) -> Result<Vec<PurgedOrg>, DbError> {
    let cutoff = now - retention_days.max(0) * DAY_MS;
    let mut out = Vec::new();
    for (id, _, _) in console::purge_due(db, cutoff).await? {
        let Some(p) = console::purge_org(db, &id, cutoff).await? else {
            continue;
        };
        tracing::info!(
            component = PURGE_COMPONENT,
            org_id = %p.id,
            users_removed = p.users_removed,
            "soft-deleted organization purged after the retention period"
        );
        let rec = NewAuditRecord {
            organization_id: None,
            actor_kind: "system".into(),
            actor_component: Some(PURGE_COMPONENT.into()),
            action: "admin.client.purge".into(),
            resource_type: "organization".into(),
            resource_id: Some(p.id.clone()),
            outcome: "success".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            before: Some(
                serde_json::json!({"status": "deleted", "name": p.name, "deleted_at": p.deleted_at}),
            ),
            after: Some(serde_json::json!({
                "status": "purged",
                "retention_days": retention_days,
                "rows": p.rows,
                "users_removed": p.users_removed,
            })),
            ..Default::default()
        };
        if let Err(e) = audit::append(db, rec).await {
            tracing::error!(component = PURGE_COMPONENT, error = %e, org_id = %p.id, "audit append failed after a purge");
        }
        out.push(p);
    }
    Ok(out)
}

/// Runs the purge forever at `interval`; errors are logged and the next pass retries.
pub async fn run_purge(db: Db, retention_days: i64, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        if let Err(e) = purge_once_at(&db, now_ms(), retention_days).await {
            tracing::error!(component = PURGE_COMPONENT, error = %e, "organization purge failed");
        }
    }
}

/// Whether the request carries a well-signed access token of a soft-deleted organization
/// (its members are answered 404 rather than 401).
pub async fn token_of_deleted_org(state: &AppState, req: &poem::Request) -> bool {
    let Some(token) = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let Some(claims) = state.jwt.decode(token.trim()) else {
        return false;
    };
    matches!(
        clients::status(&state.db, &claims.org).await,
        Ok(Some(ClientStatus::Deleted))
    )
}

/// The state of each monitored component (name → state word).
pub async fn component_states(state: &AppState) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert(
        "database".to_string(),
        match state.db.ping().await {
            Ok(()) => "ok".to_string(),
            Err(_) => "unreachable".to_string(),
        },
    );
    let queue = state.jobs.runtime().health();
    out.insert(
        "job_queue".to_string(),
        if queue.alive { "running" } else { "stopped" }.to_string(),
    );
    let model = crate::routes::risk::active_view(state);
    out.insert(
        "risk_model".to_string(),
        if model.degraded { "degraded" } else { "ok" }.to_string(),
    );
    if let Ok(actors) = state.actors.health().await {
        for a in actors {
            out.insert(format!("actor:{}", a.account_id), a.state);
        }
    }
    out
}

/// Components whose state differs between two observations: `(component, from, to)`. A
/// component that appears is `absent → state`; one that disappears is `state → absent`.
pub fn state_changes(
    prev: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (k, v) in now {
        match prev.get(k) {
            Some(p) if p == v => {}
            Some(p) => out.push((k.clone(), p.clone(), v.clone())),
            None => out.push((k.clone(), "absent".into(), v.clone())),
        }
    }
    for (k, p) in prev {
        if !now.contains_key(k) {
            out.push((k.clone(), p.clone(), "absent".into()));
        }
    }
    out
}

/// Watches the components every `interval`; each change is logged (WARN when a component
/// leaves a healthy state) and recorded with the lines around it. The first observation is
/// the baseline.
pub async fn run_monitor(state: AppState, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    let mut prev: Option<BTreeMap<String, String>> = None;
    loop {
        tick.tick().await;
        let now = component_states(&state).await;
        if let Some(p) = &prev {
            for (component, from, to) in state_changes(p, &now) {
                let healthy = matches!(to.as_str(), "ok" | "running" | "absent");
                if healthy {
                    tracing::info!(component = MONITOR_COMPONENT, target_component = %component, %from, %to, "component state change");
                } else {
                    tracing::warn!(component = MONITOR_COMPONENT, target_component = %component, %from, %to, "component state change");
                }
                crate::logs::hub().record_change(&component, &from, &to, None);
            }
        }
        prev = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn changes_are_found_per_component() {
        let a = m(&[
            ("database", "ok"),
            ("job_queue", "running"),
            ("actor:x", "running"),
        ]);
        let b = m(&[
            ("database", "unreachable"),
            ("job_queue", "running"),
            ("actor:y", "running"),
        ]);
        let mut c = state_changes(&a, &b);
        c.sort();
        assert_eq!(
            c,
            vec![
                ("actor:x".into(), "running".into(), "absent".into()),
                ("actor:y".into(), "absent".into(), "running".into()),
                ("database".into(), "ok".into(), "unreachable".into()),
            ]
        );
        assert!(state_changes(&a, &a).is_empty());
    }
}
