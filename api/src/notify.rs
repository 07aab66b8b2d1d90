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
//!
//! Server-side request forgery: unless the operator allows private webhooks
//! (`--allow-private-webhooks`), a webhook whose host is, or resolves to, a loopback,
//! private, link-local (cloud metadata `169.254.169.254`), carrier-grade NAT, unique-local
//! IPv6 or other non-public address is refused when it is saved ([`check_target`]) and
//! again when each notification is sent: the host is resolved and checked first (a refusal
//! is recorded as a failed, not retried, attempt naming the address), and the connection
//! itself goes through [`GuardedResolver`], which refuses every name with a forbidden
//! address, so a name re-pointed between the check and the connection (DNS rebinding)
//! still cannot reach them. Redirects are never followed and no proxy is used then.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
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

/// Timeout of one DNS resolution of a webhook host.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an address may not receive webhooks (`None`: a public address).
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if o == [169, 254, 169, 254] || o == [169, 254, 170, 2] {
        Some("cloud metadata service")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private network")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 0 {
        Some("unspecified (\"this network\")")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared address space (carrier-grade NAT)")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("broadcast or multicast")
    } else if (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || o[0] >= 240
    {
        Some("reserved")
    } else if ip.is_documentation() {
        Some("documentation")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some("cloud metadata service")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if let Some(v4) = ip.to_ipv4_mapped() {
        forbidden_v4(v4)
    } else if s[..6] == [0; 6] {
        // IPv4-compatible (deprecated) `::a.b.c.d`.
        forbidden_v4(embedded(s[6], s[7])).or(Some("reserved"))
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        // NAT64: reaches the embedded IPv4 address.
        forbidden_v4(embedded(s[6], s[7]))
    } else if s[0] == 0x2002 {
        // 6to4: reaches the embedded IPv4 address.
        forbidden_v4(embedded(s[1], s[2]))
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("unique-local")
    } else if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Some("documentation")
    } else {
        None
    }
}

/// A webhook target refused because of where it points.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} {detail}, which may not receive webhooks (an operator can allow private webhooks with --allow-private-webhooks)")]
pub struct Refused {
    pub host: String,
    /// e.g. `resolves to 127.0.0.1 (loopback)`.
    pub detail: String,
}

/// What [`check_target`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every address the host has now is public.
    Public(Vec<IpAddr>),
    /// The host is, or resolves to, a forbidden address.
    Refused(Refused),
    /// The name does not resolve now (checked again at every send).
    Unresolved(String),
}

fn refused_ip(host: &str, ip: IpAddr, why: &str) -> Refused {
    Refused {
        host: host.to_string(),
        detail: if host == ip.to_string() || host.trim_matches(['[', ']']) == ip.to_string() {
            format!("is a {why} address")
        } else {
            format!("resolves to {ip} ({why})")
        },
    }
}

/// Checks where a webhook URL points: an IP literal directly, a name by resolving it (every
/// address must be public). Names under `.localhost` are refused without a lookup.
pub async fn check_target(url: &reqwest::Url) -> Target {
    let port = url.port_or_known_default().unwrap_or(443);
    let Some(raw) = url.host_str() else {
        return Target::Unresolved("no host".into());
    };
    // The URL parser normalizes IP literals (`0x7f.1` is `127.0.0.1`; IPv6 in brackets).
    if let Ok(ip) = raw
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return match forbidden_ip(ip) {
            Some(why) => Target::Refused(refused_ip(raw, ip, why)),
            None => Target::Public(vec![ip]),
        };
    }
    let host = raw.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return Target::Refused(Refused {
            host,
            detail: "is a loopback name".into(),
        });
    }
    match resolve_checked(&host, port).await {
        Ok(addrs) => Target::Public(addrs.iter().map(SocketAddr::ip).collect()),
        Err(ResolveError::Refused(r)) => Target::Refused(r),
        Err(ResolveError::Lookup(e)) => Target::Unresolved(e),
    }
}

#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("{0}")]
    Refused(Refused),
    #[error("{0}")]
    Lookup(String),
}

/// Resolves `host`; any forbidden address refuses the whole name.
async fn resolve_checked(host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    let addrs: Vec<SocketAddr> =
        tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| ResolveError::Lookup(format!("resolving {host} timed out")))?
            .map_err(|e| ResolveError::Lookup(format!("{host} does not resolve: {e}")))?
            .collect();
    if addrs.is_empty() {
        return Err(ResolveError::Lookup(format!("{host} has no address")));
    }
    for a in &addrs {
        if let Some(why) = forbidden_ip(a.ip()) {
            return Err(ResolveError::Refused(refused_ip(host, a.ip(), why)));
        }
    }
    Ok(addrs)
}

/// The webhook client's resolver while private webhooks are not allowed: a name with any
/// forbidden address does not resolve at all, so the connection can only go to addresses
/// checked at connection time (not only at save or pre-send time).
#[derive(Debug, Default)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            if host == "localhost" || host.ends_with(".localhost") {
                return Err(Box::new(Refused {
                    host,
                    detail: "is a loopback name".into(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            match resolve_checked(&host, 0).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(ResolveError::Refused(r)) => Err(Box::new(r) as _),
                Err(ResolveError::Lookup(e)) => Err(e.into()),
            }
        })
    }
}

/// A failed request in words, with its causes, without the URL (a Slack-style webhook
/// carries its secret in the path; the record names only scheme and host).
/// What went wrong with a delivery, for the history: the kind of failure, then the two
/// innermost causes (the outer layers of the HTTP stack only repeat "error sending
/// request"), e.g. "could not connect: hooks.example does not resolve: Name or service
/// not known". Never the URL (it may carry a secret path).
fn describe_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut chain: Vec<String> = vec![e.to_string()];
    let mut cur = std::error::Error::source(&e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !text.is_empty() && !chain.iter().any(|c| c.contains(&text)) {
            chain.push(text);
        }
        cur = err.source();
    }
    // The two innermost causes; when the outer one already ends with the inner one
    // (hyper's "dns error: X" before X), the outer one alone.
    let why = match chain.as_slice() {
        [.., outer, inner] if outer.ends_with(inner.as_str()) => outer.clone(),
        [.., outer, inner] => format!("{outer}: {inner}"),
        [only] => only.clone(),
        [] => String::new(),
    };
    format!("{kind}: {why}")
}

/// The [`Refused`] in an error's source chain, if the guard refused the connection.
fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

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
    /// Webhooks may point at private / loopback / link-local addresses (tests, on-prem).
    allow_private: bool,
}

/// How one channel went.
struct ChannelResult {
    channel: &'static str,
    ok: bool,
    summary: String,
}

impl Notifier {
    pub fn new(db: Db, cfg: &ServerConfig, replica: &str) -> Result<Notifier, MailerError> {
        let mut builder = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if !cfg.allow_private_webhooks {
            // Connect only to addresses the guard checked, directly (a proxy would resolve
            // the name itself).
            builder = builder.dns_resolver(Arc::new(GuardedResolver)).no_proxy();
        }
        let http = builder.build().map_err(|e| MailerError {
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
            allow_private: cfg.allow_private_webhooks,
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
            if !self.allow_private {
                // Checked again at every attempt: the name may have been re-pointed.
                let refused = match reqwest::Url::parse(url) {
                    Ok(u) => match check_target(&u).await {
                        Target::Refused(r) => Some(r.to_string()),
                        Target::Public(_) | Target::Unresolved(_) => None,
                    },
                    Err(e) => Some(format!("the stored URL is invalid: {e}")),
                };
                if let Some(reason) = refused {
                    return self.refuse(n, &target, attempt, &reason, started).await;
                }
            }
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
                Err(e) => {
                    if let Some(r) = refusal_in(&e) {
                        // The name changed between the check and the connection.
                        return self
                            .refuse(n, &target, attempt, &r.to_string(), started)
                            .await;
                    }
                    (true, None, describe_error(e))
                }
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

    /// A webhook attempt refused by the address guard: recorded as failed, not retried.
    async fn refuse(
        &self,
        n: &NotificationRow,
        target: &str,
        attempt: u32,
        reason: &str,
        started: Instant,
    ) -> ChannelResult {
        let error = format!("refused: {reason}");
        self.record(
            n,
            "webhook",
            target,
            attempt,
            "failed",
            None,
            Some(&error),
            started,
        )
        .await;
        tracing::warn!(component = COMPONENT, notification = %n.id, %target, %reason, "webhook refused by the address guard");
        ChannelResult {
            channel: "webhook",
            ok: false,
            summary: format!("failed permanently (not sent): {error}"),
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

    #[tokio::test]
    async fn a_receiver_that_never_answers_is_described_as_a_timeout() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let e = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(300))
            .build()
            .expect("client")
            .post(format!("http://{addr}/secret-path"))
            .send()
            .await
            .expect_err("timeout");
        let m = describe_error(e);
        hold.abort();
        assert!(m.starts_with("timed out"), "{m}");
        assert!(!m.contains("secret-path"), "{m}");
    }

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
    fn forbidden_addresses_are_classified() {
        let bad = [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::1",
        ];
        for a in bad {
            let ip: IpAddr = a.parse().expect("ip");
            assert!(forbidden_ip(ip).is_some(), "{a} should be refused");
        }
        assert_eq!(
            forbidden_ip("169.254.169.254".parse().expect("ip")),
            Some("cloud metadata service")
        );
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = a.parse().expect("ip");
            assert_eq!(forbidden_ip(ip), None, "{a} is public");
        }
    }

    #[tokio::test]
    async fn targets_are_checked_by_address_and_by_resolution() {
        let check = |u: &str| {
            let u = reqwest::Url::parse(u).expect("url");
            async move { check_target(&u).await }
        };
        let Target::Refused(r) = check("http://169.254.169.254/latest/meta-data").await else {
            panic!("metadata allowed");
        };
        assert!(r.to_string().contains("cloud metadata"), "{r}");
        assert!(matches!(
            check("http://[::1]:8080/x").await,
            Target::Refused(_)
        ));
        assert!(matches!(
            check("http://[fd00::5]/x").await,
            Target::Refused(_)
        ));
        assert!(matches!(
            check("http://api.localhost/x").await,
            Target::Refused(_)
        ));
        // `localhost` is refused through its resolution (to 127.0.0.1 / ::1).
        assert!(matches!(
            check("http://localhost:9/x").await,
            Target::Refused(_)
        ));
        assert!(matches!(
            check("https://8.8.8.8/x").await,
            Target::Public(_)
        ));
    }

    #[tokio::test]
    async fn the_guarded_resolver_never_hands_out_a_forbidden_address() {
        use reqwest::dns::Resolve;
        for name in ["localhost", "localhost.", "x.localhost"] {
            let n: reqwest::dns::Name = name.parse().expect("name");
            let err = match GuardedResolver.resolve(n).await {
                Ok(a) => panic!("{name} resolved to {:?}", a.collect::<Vec<_>>()),
                Err(e) => e,
            };
            assert!(refusal_in(err.as_ref()).is_some(), "{err}");
        }
    }

    #[tokio::test]
    async fn the_guarded_client_refuses_a_name_pointing_at_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver))
            .no_proxy()
            .build()
            .expect("client");
        let err = client
            .post(format!("http://localhost:{port}/hook"))
            .send()
            .await
            .expect_err("refused");
        assert!(refusal_in(&err).is_some(), "{err:?}");
    }

    #[tokio::test]
    async fn a_failed_request_is_described_without_its_secret_path() {
        // Nothing listens on port 9 of loopback: the connection is refused.
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let err = client
            .post("http://127.0.0.1:9/services/T0/B0/topsecret")
            .send()
            .await
            .expect_err("refused");
        let text = describe_error(err);
        assert!(!text.contains("topsecret"), "{text}");
        // The kind of failure, then why, without the HTTP stack's "error sending request".
        assert!(text.starts_with("could not connect: "), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert!(!text.contains("error sending request"), "{text}");
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
