//! The notice sent before a scheduled sleep: when a cluster is awake and its schedule puts
//! it to sleep within [`NOTICE_BEFORE`], one notification is queued in the organization's
//! outbox (delivered to its webhook and e-mail recipients by the API's dispatcher). The
//! notification's key is the cluster and the sleep's instant, and the database keeps it
//! unique: however many ticks, replicas or restarts see the same upcoming sleep, it is
//! queued once. Each queued notice is audited as `system`.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::json;
use spot_engine::hibernate::{Evaluation, Power};
use spot_models::audit::{self, NewAuditRecord};
use spot_models::notify;

use crate::hibernation::Target;

pub const COMPONENT: &str = "CORE-NOTIFY";
/// How long before a scheduled sleep the notice goes out.
pub const NOTICE_BEFORE: Duration = Duration::minutes(30);

/// The upcoming sleep that warrants a notice now, if any: the cluster is awake, wants to
/// stay awake now, and the schedule's next change (a scheduled sleep, or the end of a
/// "wake now") puts it to sleep within [`NOTICE_BEFORE`].
pub fn due(current: &str, eval: &Evaluation, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if current != "awake" || eval.power != Power::Awake {
        return None;
    }
    let next = eval.next?;
    (next.to == Power::Asleep && next.at > now && next.at - now <= NOTICE_BEFORE).then_some(next.at)
}

/// The deduplication key of the notice for one sleep of one cluster.
pub fn key(cluster_id: &str, at: DateTime<Utc>) -> String {
    format!("pre_sleep:{cluster_id}:{}", at.timestamp_millis())
}

/// Queues the notice for the sleep at `at` unless it was queued before (or the
/// organization turned pre-sleep notices off). Errors are logged: a notice never stops a
/// transition.
pub async fn notify(t: &Target<'_>, at: DateTime<Utc>, tz: Tz, now: DateTime<Utc>) {
    let db = &t.deps.db;
    match notify::settings_or_default(db, t.org_id).await {
        Ok(s) if s.pre_sleep_enabled == 0 => return,
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(component = COMPONENT, error = %e, "notification settings unreadable");
            return;
        }
    }
    let minutes = ((at - now).num_seconds() + 59) / 60;
    let local = at.with_timezone(&tz);
    let subject = format!(
        "Cluster {} hibernates in {minutes} min ({})",
        t.cluster,
        local.format("%a %H:%M %Z")
    );
    let text = format!(
        "Cluster {cluster} will hibernate at {local} ({utc} UTC), in about {minutes} minutes, as its hibernation schedule says.\n\
         Its node groups will be scaled to zero after their sizes are remembered; they come back exactly when it wakes.\n\
         To keep it running, use \"Wake now\" on the cluster's Hibernation page.",
        cluster = t.cluster,
        local = local.format("%Y-%m-%d %H:%M %Z"),
        utc = at.format("%Y-%m-%d %H:%M"),
    );
    let html = format!(
        "<p>Cluster <strong>{cluster}</strong> will hibernate at <strong>{local}</strong> ({utc} UTC), in about {minutes} minutes, as its hibernation schedule says.</p>\
         <p>Its node groups will be scaled to zero after their sizes are remembered; they come back exactly when it wakes.</p>\
         <p>To keep it running, use <em>Wake now</em> on the cluster's Hibernation page.</p>",
        cluster = escape(t.cluster),
        local = local.format("%Y-%m-%d %H:%M %Z"),
        utc = at.format("%Y-%m-%d %H:%M"),
    );
    let payload = json!({
        "cluster_id": t.cluster_id,
        "cluster": t.cluster,
        "account_id": t.account_id,
        "sleep_at": at,
        "timezone": tz.name(),
        "minutes_before": minutes,
    });
    let dedup = key(t.cluster_id, at);
    let queued = notify::enqueue(
        db,
        t.org_id,
        &notify::NewNotification {
            kind: "pre_sleep",
            dedup_key: Some(&dedup),
            subject: &subject,
            text_body: &text,
            html_body: Some(&html),
            payload: &payload.to_string(),
            created_by: "system",
        },
    )
    .await;
    match queued {
        Ok(Some(n)) => {
            tracing::info!(component = COMPONENT, cluster = %t.cluster, sleep_at = %at, notification = %n.id, "pre-sleep notice queued");
            let rec = NewAuditRecord {
                organization_id: Some(t.org_id.to_string()),
                actor_kind: "system".into(),
                actor_component: Some(COMPONENT.into()),
                action: "notification.pre_sleep_queued".into(),
                resource_type: "cluster".into(),
                resource_id: Some(t.cluster_id.to_string()),
                outcome: "success".into(),
                request_id: uuid::Uuid::new_v4().to_string(),
                after: Some(json!({"notification_id": n.id, "sleep_at": at, "cluster": t.cluster})),
                ..Default::default()
            };
            if let Err(e) = audit::append(db, rec).await {
                tracing::error!(component = "CORE-AUDIT", error = %e, "audit append failed");
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(component = COMPONENT, cluster = %t.cluster, error = %e, "pre-sleep notice not queued")
        }
    }
}

/// Minimal HTML escaping for names placed in a message.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use spot_engine::hibernate::{Reason, Transition};

    fn eval(power: Power, next: Option<(i64, Power)>, now: DateTime<Utc>) -> Evaluation {
        Evaluation {
            power,
            reason: Reason::Schedule,
            next: next.map(|(mins, to)| Transition {
                at: now + Duration::minutes(mins),
                to,
            }),
        }
    }

    #[test]
    fn a_notice_is_due_only_within_thirty_minutes_of_a_sleep_while_awake() {
        let now = Utc::now();
        let at = |m| now + Duration::minutes(m);
        assert_eq!(
            due(
                "awake",
                &eval(Power::Awake, Some((30, Power::Asleep)), now),
                now
            ),
            Some(at(30))
        );
        assert_eq!(
            due(
                "awake",
                &eval(Power::Awake, Some((5, Power::Asleep)), now),
                now
            ),
            Some(at(5))
        );
        assert_eq!(
            due(
                "awake",
                &eval(Power::Awake, Some((31, Power::Asleep)), now),
                now
            ),
            None
        );
        assert_eq!(due("awake", &eval(Power::Awake, None, now), now), None);
        // Already asleep, or asleep and waking next: nothing to announce.
        assert_eq!(
            due(
                "asleep",
                &eval(Power::Asleep, Some((10, Power::Awake)), now),
                now
            ),
            None
        );
        assert_eq!(
            due(
                "transitioning",
                &eval(Power::Awake, Some((10, Power::Asleep)), now),
                now
            ),
            None
        );
    }

    #[test]
    fn the_key_names_the_cluster_and_the_instant() {
        let at = DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000).expect("ts");
        assert_eq!(key("c1", at), "pre_sleep:c1:1700000000000");
        assert_ne!(key("c1", at), key("c2", at));
        assert_ne!(key("c1", at), key("c1", at + Duration::hours(24)));
    }
}
