//! The live log stream of the super-admin console: a `tracing` layer turns every event into a
//! structured line, redacts secrets from it, keeps the newest lines in a bounded ring buffer
//! and broadcasts them to live subscribers (the SSE stream). Component state changes seen by
//! the monitor keep the lines logged around them, for the system health page.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Serialize;
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Lines kept in the ring buffer (older ones are dropped).
pub const RING_CAPACITY: usize = 2000;
/// Lines kept from before a component state change.
pub const CHANGE_LINES_BEFORE: usize = 20;
/// Lines kept from after a component state change.
pub const CHANGE_LINES_AFTER: usize = 10;
/// Component state changes kept.
pub const CHANGES_KEPT: usize = 50;
/// Longest field value or message kept in a line (characters).
const MAX_VALUE_CHARS: usize = 2000;

/// One structured log line, secrets already redacted.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogLine {
    /// Increasing number of the line in this process.
    pub seq: u64,
    pub ts: DateTime<Utc>,
    /// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub level: String,
    pub target: String,
    /// The `component` field of the event or of an enclosing span.
    pub component: Option<String>,
    pub message: String,
    /// The other fields of the event and its spans (innermost wins).
    pub fields: BTreeMap<String, String>,
}

/// A component that changed state, with the lines logged around the change.
#[derive(Debug, Clone, Serialize)]
pub struct StateChange {
    pub id: u64,
    pub ts: DateTime<Utc>,
    pub component: String,
    pub from: String,
    pub to: String,
    pub detail: Option<String>,
    pub before: Vec<LogLine>,
    pub after: Vec<LogLine>,
}

/// Severity rank (higher is more severe).
pub fn severity(level: &str) -> Option<u8> {
    match level.to_ascii_uppercase().as_str() {
        "TRACE" => Some(0),
        "DEBUG" => Some(1),
        "INFO" => Some(2),
        "WARN" | "WARNING" => Some(3),
        "ERROR" => Some(4),
        _ => None,
    }
}

impl LogLine {
    /// Whether the line is at `min` severity or above.
    pub fn at_least(&self, min: u8) -> bool {
        severity(&self.level).unwrap_or(0) >= min
    }
}

struct Inner {
    ring: VecDeque<LogLine>,
    changes: VecDeque<StateChange>,
}

/// The ring buffer, the live broadcast and the recorded state changes.
pub struct LogHub {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<LogLine>,
    seq: AtomicU64,
    capacity: usize,
}

impl LogHub {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(1024);
        LogHub {
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(capacity.min(RING_CAPACITY)),
                changes: VecDeque::new(),
            }),
            tx,
            seq: AtomicU64::new(0),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a line (redacting it), feeding state changes still collecting their "after"
    /// lines, and broadcasts it.
    pub fn push(
        &self,
        level: &str,
        target: &str,
        message: &str,
        fields: BTreeMap<String, String>,
    ) -> LogLine {
        let mut component = None;
        let mut clean = BTreeMap::new();
        for (k, v) in fields {
            let v = if is_sensitive_key(&k) {
                REDACTED.to_string()
            } else {
                truncate(&redact(&v))
            };
            if k == "component" {
                component = Some(v);
            } else {
                clean.insert(k, v);
            }
        }
        let line = LogLine {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            ts: Utc::now(),
            level: level.to_string(),
            target: target.to_string(),
            component,
            message: truncate(&redact(message)),
            fields: clean,
        };
        {
            let mut g = self.lock();
            if g.ring.len() >= self.capacity {
                g.ring.pop_front();
            }
            g.ring.push_back(line.clone());
            for c in g.changes.iter_mut() {
                if c.after.len() < CHANGE_LINES_AFTER {
                    c.after.push(line.clone());
                }
            }
        }
        // No receiver is fine.
        let _ = self.tx.send(line.clone());
        line
    }

    /// The newest `limit` lines at `min` severity or above, oldest first.
    pub fn recent(&self, min: u8, limit: usize) -> Vec<LogLine> {
        let g = self.lock();
        let mut out: Vec<LogLine> = g
            .ring
            .iter()
            .rev()
            .filter(|l| l.at_least(min))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.tx.subscribe()
    }

    /// Records a component state change with the last lines logged before it; the next
    /// [`CHANGE_LINES_AFTER`] lines are added as they arrive.
    pub fn record_change(
        &self,
        component: &str,
        from: &str,
        to: &str,
        detail: Option<String>,
    ) -> u64 {
        let mut g = self.lock();
        let start = g.ring.len().saturating_sub(CHANGE_LINES_BEFORE);
        let before: Vec<LogLine> = g.ring.iter().skip(start).cloned().collect();
        let id = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if g.changes.len() >= CHANGES_KEPT {
            g.changes.pop_front();
        }
        g.changes.push_back(StateChange {
            id,
            ts: Utc::now(),
            component: component.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            detail: detail.map(|d| truncate(&redact(&d))),
            before,
            after: Vec::new(),
        });
        id
    }

    /// Recorded state changes, newest first.
    pub fn changes(&self) -> Vec<StateChange> {
        self.lock().changes.iter().rev().cloned().collect()
    }
}

/// The process-wide hub the tracing layer writes into.
pub fn hub() -> &'static LogHub {
    static HUB: OnceLock<LogHub> = OnceLock::new();
    HUB.get_or_init(|| LogHub::new(RING_CAPACITY))
}

/// The layer to add to the process's subscriber.
pub fn layer() -> LogLayer {
    LogLayer
}

/// Installs a subscriber with only the log layer when none is installed yet (tests, tools);
/// returns whether it did.
pub fn try_init_global() -> bool {
    use tracing_subscriber::layer::SubscriberExt;
    let sub = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(LogLayer);
    tracing::subscriber::set_global_default(sub).is_ok()
}

/// Writes every event into [`hub()`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LogLayer;

/// Fields recorded on a span, kept in its extensions.
struct SpanFields(BTreeMap<String, String>);

#[derive(Default)]
struct Collect {
    message: Option<String>,
    fields: BTreeMap<String, String>,
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Collect {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

impl<S> Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut c = Collect::default();
        attrs.record(&mut c);
        span.extensions_mut().insert(SpanFields(c.fields));
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut c = Collect::default();
        values.record(&mut c);
        let mut ext = span.extensions_mut();
        if let Some(f) = ext.get_mut::<SpanFields>() {
            f.0.extend(c.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    fields.extend(f.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut c = Collect::default();
        event.record(&mut c);
        fields.extend(c.fields);
        let meta = event.metadata();
        hub().push(
            level_name(*meta.level()),
            meta.target(),
            c.message.as_deref().unwrap_or(""),
            fields,
        );
    }
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

// ---------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------

pub const REDACTED: &str = "[REDACTED]";

/// Field names whose values are never shown.
pub fn is_sensitive_key(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "authorization",
        "api_key",
        "apikey",
        "private_key",
        "credential",
        "cookie",
    ]
    .iter()
    .any(|s| n.contains(s))
}

fn patterns() -> &'static [(Regex, &'static str)] {
    static P: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    P.get_or_init(|| {
        let build = |re: &str| Regex::new(re).expect("static redaction pattern");
        vec![
            // Authorization headers and bearer tokens.
            (
                build(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
                "$1 [REDACTED]",
            ),
            // JWTs anywhere (header.payload.signature, base64url).
            (
                build(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
                "[REDACTED_JWT]",
            ),
            // AWS access key ids (long-term AKIA, temporary ASIA).
            (
                build(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b"),
                "[REDACTED_AWS_KEY]",
            ),
            // key=value / key: value with a sensitive key (quoted or bare values).
            (
                build(
                    r#"(?i)\b([A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|session[_-]?key|credential)[A-Za-z0-9_.-]*)("?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s"',;&}]+)"#,
                ),
                "$1$2[REDACTED]",
            ),
            // Credentials in URLs (scheme://user:password@host).
            (
                build(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^@\s/]+@"),
                "$1:[REDACTED]@",
            ),
            // AWS secret access keys standing alone (40 base64 characters with a slash or
            // plus, which ids and hashes do not have).
            (
                build(r"\b[A-Za-z0-9/+]{40}\b"),
                "$0",
            ),
        ]
    })
}

/// Removes secrets from free text: bearer tokens, JWTs, AWS access keys, passwords and
/// `secret=` / `token=` style assignments, and credentials in URLs.
pub fn redact(input: &str) -> String {
    let mut s = input.to_string();
    for (re, with) in patterns() {
        if *with == "$0" {
            // Stand-alone secret keys: only 40-character runs mixing cases, digits and `/` or
            // `+` (an AWS secret access key's shape).
            s = re
                .replace_all(&s, |c: &regex::Captures<'_>| {
                    let m = &c[0];
                    let mixed = m.chars().any(|ch| ch.is_ascii_lowercase())
                        && m.chars().any(|ch| ch.is_ascii_uppercase())
                        && m.chars().any(|ch| ch.is_ascii_digit())
                        && m.chars().any(|ch| ch == '/' || ch == '+');
                    if mixed {
                        "[REDACTED_AWS_SECRET]".to_string()
                    } else {
                        m.to_string()
                    }
                })
                .into_owned();
        } else {
            s = re.replace_all(&s, *with).into_owned();
        }
    }
    s
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_VALUE_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX_VALUE_CHARS).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEiLCJvcmciOiJvIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";

    #[test]
    fn bearer_tokens_and_jwts_are_redacted() {
        let out = redact(&format!("Authorization: Bearer {JWT} from 10.0.0.1"));
        assert!(!out.contains("eyJhbGci"), "{out}");
        assert!(!out.contains("c2lnbmF0dXJl"), "{out}");
        assert!(out.contains("from 10.0.0.1"), "{out}");
        let out = redact(&format!("token {JWT} in a query"));
        assert!(out.contains("[REDACTED_JWT]"), "{out}");
        assert!(!out.contains("eyJzdWIi"), "{out}");
        let out = redact("bearer abcdefghijklmnop1234");
        assert_eq!(out, "bearer [REDACTED]");
    }

    #[test]
    fn aws_keys_are_redacted() {
        let out = redact("using key AKIAIOSFODNN7EXAMPLE for account 111122223333");
        assert!(!out.contains("AKIAIOSFODNN7EXAMPLE"), "{out}");
        assert!(out.contains("[REDACTED_AWS_KEY]"), "{out}");
        assert!(out.contains("111122223333"), "account ids stay: {out}");
        let out = redact("ASIAQWERTYUIOPASDFGH temporary");
        assert!(out.starts_with("[REDACTED_AWS_KEY]"), "{out}");
        let out = redact("secret key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY done");
        assert!(!out.contains("wJalrXUtnFEMI"), "{out}");
        let out = redact("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert!(!out.contains("wJalrXUtnFEMI"), "{out}");
    }

    #[test]
    fn password_and_secret_assignments_are_redacted() {
        for (input, gone) in [
            ("login password=hunter2hunter2 ok", "hunter2"),
            ("secret=s3cr3t-value&x=1", "s3cr3t"),
            (r#"{"password": "p@ss w0rd", "user": "a"}"#, "p@ss"),
            ("client_secret: abc123def", "abc123def"),
            ("refresh_token=opaque-token-value", "opaque-token-value"),
            ("DB_PASSWORD='quoted secret'", "quoted secret"),
            ("postgres://app:sup3rpass@db:5432/spot", "sup3rpass"),
            ("api_key=KEY-123456", "KEY-123456"),
        ] {
            let out = redact(input);
            assert!(!out.contains(gone), "{input} -> {out}");
            assert!(out.contains("[REDACTED]"), "{input} -> {out}");
        }
        let out = redact(r#"{"password": "p@ss w0rd", "user": "a"}"#);
        assert!(out.contains(r#""user": "a""#), "{out}");
    }

    #[test]
    fn harmless_text_is_untouched() {
        for s in [
            "request status=200 path=/api/admin/clients",
            "discovered 12 instances in us-east-1 (m5.large, c5.xlarge)",
            "job 5b0c7a52-8f53-4a4e-9a57-6b0b0f8e8c11 finished",
            "sha256 9807af0e638c12e753aa1b4e601791bf2a8f71274023c8bbeec12fc149950857",
        ] {
            assert_eq!(redact(s), s);
        }
    }

    #[test]
    fn sensitive_fields_are_hidden_whole() {
        let hub = LogHub::new(10);
        let mut f = BTreeMap::new();
        f.insert("password".to_string(), "anything at all".to_string());
        f.insert("access_token".to_string(), "abc".to_string());
        f.insert("path".to_string(), "/api/auth/token".to_string());
        f.insert("component".to_string(), "CORE-AUTH".to_string());
        f.insert("header".to_string(), format!("Bearer {JWT}"));
        let line = hub.push("INFO", "t", "login with password=hunter22", f);
        assert_eq!(line.fields["password"], REDACTED);
        assert_eq!(line.fields["access_token"], REDACTED);
        assert_eq!(line.fields["path"], "/api/auth/token");
        assert!(!line.fields["header"].contains("eyJ"));
        assert_eq!(line.component.as_deref(), Some("CORE-AUTH"));
        assert!(!line.message.contains("hunter22"));
    }

    #[test]
    fn ring_is_bounded_and_filters_by_level() {
        let hub = LogHub::new(5);
        for i in 0..8 {
            let level = if i % 2 == 0 { "INFO" } else { "ERROR" };
            hub.push(level, "t", &format!("line {i}"), BTreeMap::new());
        }
        let all = hub.recent(0, 100);
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].message, "line 3");
        assert_eq!(all[4].message, "line 7");
        let errors = hub.recent(severity("error").unwrap_or(4), 100);
        assert!(errors.iter().all(|l| l.level == "ERROR"));
        assert_eq!(errors.len(), 3);
        assert_eq!(hub.recent(0, 2).len(), 2);
    }

    #[test]
    fn state_changes_keep_lines_before_and_after() {
        let hub = LogHub::new(100);
        for i in 0..30 {
            hub.push("INFO", "t", &format!("before {i}"), BTreeMap::new());
        }
        hub.record_change("database", "ok", "unreachable", Some("password=x".into()));
        for i in 0..15 {
            hub.push("WARN", "t", &format!("after {i}"), BTreeMap::new());
        }
        let changes = hub.changes();
        assert_eq!(changes.len(), 1);
        let c = &changes[0];
        assert_eq!(c.before.len(), CHANGE_LINES_BEFORE);
        assert_eq!(
            c.before.last().map(|l| l.message.as_str()),
            Some("before 29")
        );
        assert_eq!(c.after.len(), CHANGE_LINES_AFTER);
        assert_eq!(c.after[0].message, "after 0");
        assert!(!c.detail.clone().unwrap_or_default().contains("=x"));
    }

    #[test]
    fn the_layer_captures_events_with_span_fields() {
        use tracing_subscriber::layer::SubscriberExt;
        let sub = tracing_subscriber::registry().with(LogLayer);
        let marker = uuid::Uuid::new_v4().to_string();
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("request", component = "CORE-API", request_id = %marker);
            let _g = span.enter();
            tracing::warn!(
                token = "abc",
                status = 401,
                "denied with Bearer abcdefghijklmnopqrstu"
            );
        });
        let line = hub()
            .recent(0, RING_CAPACITY)
            .into_iter()
            .find(|l| l.fields.get("request_id") == Some(&marker))
            .expect("captured");
        assert_eq!(line.level, "WARN");
        assert_eq!(line.component.as_deref(), Some("CORE-API"));
        assert_eq!(line.fields["token"], REDACTED);
        assert_eq!(line.fields["status"], "401");
        assert_eq!(line.message, "denied with Bearer [REDACTED]");
    }
}
