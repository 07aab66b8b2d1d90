//! Delivery of queued notifications (pre-sleep notices, weekly reports, test messages) to
//! each organization's Slack-compatible webhook and, when SMTP is configured, to its e-mail
//! recipients.
//!
//! The dispatcher claims pending notifications from the outbox (one replica each), sends
//! each on every configured channel with bounded exponential backoff, records every attempt
//! (status code or error, duration) and closes the notification as `delivered`, `partial`,
//! `failed` or `skipped` (nothing configured). Each closed notification is audited as the
//! `system` actor `CORE-NOTIFY`.
//!
//! Retry policy: a webhook answering 2xx is done; 408, 429 and 5xx, connection errors and
//! timeouts are retried; any other answer is permanent (the URL is wrong or revoked). SMTP
//! errors are retried unless the server refused permanently (5xx) or the message itself is
//! invalid.

use std::time::{Duration, Instant};

use lettre::message::{header::ContentType, Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use spot_models::audit::{self, NewAuditRecord};
use spot_models::notify::{self, NotificationRow};
use spot_models::Db;

use crate::config::ServerConfig;

pub const COMPONENT: &str = "CORE-NOTIFY";
/// Longest wait between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// A notification left `sending` this long by a stopped replica is closed as failed.
pub const CLAIM_STALE_MS: i64 = 15 * 60 * 1000;
/// Timeout of one webhook request.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one SMTP conversation step.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Outbound e-mail: an SMTP transport and the sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port` for the record (no credentials).
    pub target: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer({})", self.target)
    }
}

/// An invalid SMTP setting; `setting` names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid {setting}: {reason}")]
pub struct MailerError {
    pub setting: &'static str,
    pub reason: String,
}

impl Mailer {
    /// The mailer of the configuration, or `None` when no SMTP URL is set.
    pub fn from_config(cfg: &ServerConfig) -> Result<Option<Mailer>, MailerError> {
        let Some(url) = cfg.smtp_url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| MailerError {
            setting: "SPOT_SMTP_URL",
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") {
            return Err(MailerError {
                setting: "SPOT_SMTP_URL",
                reason: "must start with smtp:// or smtps://".into(),
            });
        }
        let host = parsed.host_str().ok_or_else(|| MailerError {
            setting: "SPOT_SMTP_URL",
            reason: "no host".into(),
        })?;
        let target = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailerError {
                setting: "SPOT_SMTP_URL",
                reason: e.to_string(),
            })?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from: Mailbox = cfg.smtp_from.parse().map_err(|e| MailerError {
            setting: "SPOT_SMTP_FROM",
            reason: format!("{e}"),
        })?;
        Ok(Some(Mailer {
            transport,
            from,
            target,
        }))
    }

    async fn send(
        &self,
        to: &[String],
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Result<(), (bool, String)> {
        let mut b = Message::builder().from(self.from.clone()).subject(subject);
        for r in to {
            let mb: Mailbox = r
                .parse()
                .map_err(|e| (false, format!("recipient {r}: {e}")))?;
            b = b.to(mb);
        }
        let msg = match html {
            Some(h) => b.multipart(MultiPart::alternative_plain_html(
                text.to_string(),
                h.to_string(),
            )),
            None => b.header(ContentType::TEXT_PLAIN).body(text.to_string()),
        }
        .map_err(|e| (false, format!("message not built: {e}")))?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) => Err((!(e.is_permanent() || e.is_client()), e.to_string())),
        }
    }
}

/// The webhook's address as recorded: scheme, host and port only (Slack-style URLs carry
/// their secret in the path).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            match u.port() {
                Some(p) => format!("{}://{host}:{p}/…", u.scheme()),
                None => format!("{}://{host}/…", u.scheme()),
            }
        }
        Err(_) => "(invalid URL)".into(),
    }
}

/// The delay before retry number `retry` (1-based): `base · 2^(retry-1)`, at most
/// [`MAX_RETRY_DELAY`].
pub fn backoff(base: Duration, retry: u32) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    base.saturating_mul(factor).min(MAX_RETRY_DELAY)
}

/// Whether a webhook answer is worth retrying.
pub fn retryable_status(code: u16) -> bool {
    code == 408 || code == 429 || code >= 500
}

/// Delivers notifications.
#[derive(Clone)]
pub struct Notifier {
    db: Db,
    http: reqwest::Client,
    mailer: Option<Mailer>,
    retry_base: Duration,
    max_attempts: u32,
    replica: String,
}

/// How one channel went.
struct ChannelResult {
    channel: &'static str,
    ok: bool,
    summary: String,
}

impl Notifier {
    pub fn new(db: Db, cfg: &ServerConfig, replica: &str) -> Result<Notifier, MailerError> {
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| MailerError {
                setting: "webhook client",
                reason: e.to_string(),
            })?;
        Ok(Notifier {
            db,
            http,
            mailer: Mailer::from_config(cfg)?,
            retry_base: Duration::from_millis(cfg.notify_retry_base_ms),
            max_attempts: cfg.notify_max_attempts.max(1),
            replica: replica.to_string(),
        })
    }

    /// Claims and delivers queued notifications every `interval`, each in its own task (a
    /// slow webhook does not hold the others up).
    pub async fn run(self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match notify::claim_pending(&self.db, &self.replica, 20, CLAIM_STALE_MS).await {
                Ok(batch) => {
                    for n in batch {
                        let me = self.clone();
                        tokio::spawn(async move { me.deliver(n).await });
                    }
                }
                Err(e) => {
                    tracing::warn!(component = COMPONENT, error = %e, "notification outbox unreadable")
                }
            }
        }
    }

    /// Sends one claimed notification on every configured channel and closes it.
    pub async fn deliver(&self, n: NotificationRow) {
        let settings = match notify::settings_or_default(&self.db, &n.organization_id).await {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("notification settings unreadable: {e}");
                let _ = notify::finish(&self.db, &n.id, "failed", Some(&msg)).await;
                return;
            }
        };
        let mut results = Vec::new();
        if let Some(url) = settings.webhook_url.as_deref() {
            results.push(self.webhook(&n, url).await);
        }
        let recipients = settings.recipients();
        if !recipients.is_empty() {
            results.push(self.email(&n, &recipients).await);
        }
        let (status, summary) = if results.is_empty() {
            (
                "skipped",
                "no webhook and no e-mail recipients are configured".to_string(),
            )
        } else {
            let ok = results.iter().filter(|r| r.ok).count();
            let status = if ok == results.len() {
                "delivered"
            } else if ok == 0 {
                "failed"
            } else {
                "partial"
            };
            (
                status,
                results
                    .iter()
                    .map(|r| format!("{}: {}", r.channel, r.summary))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        };
        if let Err(e) = notify::finish(&self.db, &n.id, status, Some(&summary)).await {
            tracing::error!(component = COMPONENT, error = %e, notification = %n.id, "notification not closed");
        }
        tracing::info!(component = COMPONENT, notification = %n.id, kind = %n.kind, status, %summary, "notification processed");
        let rec = NewAuditRecord {
            organization_id: Some(n.organization_id.clone()),
            actor_kind: "system".into(),
            actor_component: Some(COMPONENT.into()),
            action: format!("notification.{status}"),
            resource_type: "notification".into(),
            resource_id: Some(n.id.clone()),
            outcome: if status == "failed" {
                "failed".into()
            } else {
                "success".into()
            },
            request_id: uuid::Uuid::new_v4().to_string(),
            after: Some(json!({
                "kind": n.kind,
                "subject": n.subject,
                "status": status,
                "summary": summary,
                "channels": results.iter().map(|r| json!({"channel": r.channel, "ok": r.ok})).collect::<Vec<_>>(),
            })),
            ..Default::default()
        };
        if let Err(e) = audit::append(&self.db, rec).await {
            tracing::error!(component = "CORE-AUDIT", error = %e, "audit append failed");
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        n: &NotificationRow,
        channel: &str,
        target: &str,
        attempt: u32,
        outcome: &str,
        status_code: Option<u16>,
        error: Option<&str>,
        started: Instant,
    ) {
        let a = notify::NewAttempt {
            notification_id: &n.id,
            organization_id: &n.organization_id,
            channel,
            target,
            attempt: i64::from(attempt),
            outcome,
            status_code: status_code.map(i64::from),
            error,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        if let Err(e) = notify::record_attempt(&self.db, &a).await {
            tracing::error!(component = COMPONENT, error = %e, "delivery attempt not recorded");
        }
    }

    async fn webhook(&self, n: &NotificationRow, url: &str) -> ChannelResult {
        let data: serde_json::Value = serde_json::from_str(&n.payload).unwrap_or(json!({}));
        let body = json!({
            "text": format!("*{}*\n{}", n.subject, n.text_body),
            "spot_optimizer": {
                "notification_id": n.id,
                "organization_id": n.organization_id,
                "kind": n.kind,
                "subject": n.subject,
                "data": data,
            },
        });
        let target = redact_url(url);
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            let started = Instant::now();
            let res = self.http.post(url).json(&body).send().await;
            let (retry, code, error) = match res {
                Ok(r) if r.status().is_success() => {
                    self.record(
                        n,
                        "webhook",
                        &target,
                        attempt,
                        "success",
                        Some(r.status().as_u16()),
                        None,
                        started,
                    )
                    .await;
                    return ChannelResult {
                        channel: "webhook",
                        ok: true,
                        summary: format!(
                            "delivered (HTTP {}, attempt {attempt})",
                            r.status().as_u16()
                        ),
                    };
                }
                Ok(r) => {
                    let code = r.status().as_u16();
                    let text: String = r
                        .text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect();
                    (
                        retryable_status(code),
                        Some(code),
                        format!(
                            "HTTP {code}{}",
                            if text.is_empty() {
                                String::new()
                            } else {
                                format!(": {text}")
                            }
                        ),
                    )
                }
                Err(e) => (true, None, format!("request failed: {e}")),
            };
            let last_try = attempt == self.max_attempts;
            let outcome = if retry && !last_try {
                "retry"
            } else {
                "failed"
            };
            self.record(
                n,
                "webhook",
                &target,
                attempt,
                outcome,
                code,
                Some(&error),
                started,
            )
            .await;
            last = error;
            if outcome == "failed" {
                return ChannelResult {
                    channel: "webhook",
                    ok: false,
                    summary: if retry {
                        format!("failed after {attempt} attempts: {last}")
                    } else {
                        format!("failed permanently (not retried): {last}")
                    },
                };
            }
            tokio::time::sleep(backoff(self.retry_base, attempt)).await;
        }
        ChannelResult {
            channel: "webhook",
            ok: false,
            summary: format!("failed: {last}"),
        }
    }

    async fn email(&self, n: &NotificationRow, to: &[String]) -> ChannelResult {
        let target = to.join(", ");
        let Some(mailer) = &self.mailer else {
            self.record(
                n,
                "email",
                &target,
                1,
                "skipped",
                None,
                Some("e-mail is not configured on this server (set SPOT_SMTP_URL)"),
                Instant::now(),
            )
            .await;
            return ChannelResult {
                channel: "email",
                ok: false,
                summary: "not sent: e-mail is not configured on this server".into(),
            };
        };
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            let started = Instant::now();
            match mailer
                .send(to, &n.subject, &n.text_body, n.html_body.as_deref())
                .await
            {
                Ok(()) => {
                    self.record(n, "email", &target, attempt, "success", None, None, started)
                        .await;
                    return ChannelResult {
                        channel: "email",
                        ok: true,
                        summary: format!("sent via {} (attempt {attempt})", mailer.target),
                    };
                }
                Err((retry, error)) => {
                    let last_try = attempt == self.max_attempts;
                    let outcome = if retry && !last_try {
                        "retry"
                    } else {
                        "failed"
                    };
                    self.record(
                        n,
                        "email",
                        &target,
                        attempt,
                        outcome,
                        None,
                        Some(&error),
                        started,
                    )
                    .await;
                    last = error;
                    if outcome == "failed" {
                        return ChannelResult {
                            channel: "email",
                            ok: false,
                            summary: format!("failed after {attempt} attempts: {last}"),
                        };
                    }
                    tokio::time::sleep(backoff(self.retry_base, attempt)).await;
                }
            }
        }
        ChannelResult {
            channel: "email",
            ok: false,
            summary: format!("failed: {last}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let base = Duration::from_millis(500);
        assert_eq!(backoff(base, 1), Duration::from_millis(500));
        assert_eq!(backoff(base, 2), Duration::from_millis(1000));
        assert_eq!(backoff(base, 3), Duration::from_millis(2000));
        assert_eq!(backoff(base, 40), MAX_RETRY_DELAY);
    }

    #[test]
    fn only_transient_answers_are_retried() {
        for c in [408, 429, 500, 502, 503] {
            assert!(retryable_status(c), "{c}");
        }
        for c in [400, 401, 403, 404, 410] {
            assert!(!retryable_status(c), "{c}");
        }
    }

    #[test]
    fn the_recorded_target_hides_the_webhook_secret() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact_url("http://127.0.0.1:9/x"), "http://127.0.0.1:9/…");
    }

    #[test]
    fn smtp_settings_are_checked() {
        let mut cfg = ServerConfig::with_secrets(vec![1; 32], vec![2; 32]);
        assert!(Mailer::from_config(&cfg).expect("none").is_none());
        cfg.smtp_url = Some("http://mail.example.com".into());
        assert_eq!(
            Mailer::from_config(&cfg).expect_err("scheme").setting,
            "SPOT_SMTP_URL"
        );
        cfg.smtp_url = Some("smtp://127.0.0.1:2525".into());
        assert!(Mailer::from_config(&cfg).expect("plain").is_some());
        cfg.smtp_from = "not an address".into();
        assert_eq!(
            Mailer::from_config(&cfg).expect_err("from").setting,
            "SPOT_SMTP_FROM"
        );
    }
}
