//! Spot signals from the interruption queue, as Karpenter reads them.
//!
//! The customer's CloudFormation stack (`deploy/cloudformation/spot-optimizer-role.yaml`)
//! creates an SQS queue named [`DEFAULT_INTERRUPTION_QUEUE`] and four EventBridge rules
//! that deliver into it: "EC2 Spot Instance Interruption Warning", "EC2 Instance
//! Rebalance Recommendation", "EC2 Instance State-change Notification" and AWS Health
//! scheduled changes for EC2. [`Cloud::poll_events`](crate::Cloud::poll_events) on
//! [`AwsCloud`] long-polls that queue, parses each EventBridge envelope
//! ([`parse_envelope`]), resolves the capacity pool (instance type, AZ) of every instance
//! named with one batched DescribeInstances, and deletes what it handled:
//!
//! - a message that is not an EventBridge envelope, or one whose `detail-type` or
//!   `detail` is not understood, is a poison message: logged at warn and deleted, so it
//!   cannot come back forever;
//! - a well-formed event with nothing to act on (an instance entering `running`, a Health
//!   event for another service) is deleted quietly;
//! - signals are deleted once their instances were looked up. When that lookup fails
//!   (throttling, network) the call fails and the messages stay: SQS hands them out
//!   again after their visibility timeout, within the queue's retention.
//!
//! The queue URL is resolved with GetQueueUrl and cached. A missing queue (a stack from
//! before this feature, or none yet) or a role without SQS permissions is not an error:
//! `poll_events` answers empty, says so once at info, and looks again every
//! [`MISSING_QUEUE_RECHECK`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types as sqs_types;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::error::{map_sdk_err, ErrCtx};
use super::{filter, AwsCloud};
use crate::error::{CloudError, Result};
use crate::types::{InstanceState, SpotEvent, SpotEventKind};

/// Name of the queue the CloudFormation stack creates (its `InterruptionQueueName`
/// default). Change it per adapter with [`AwsCloud::with_interruption_queue`].
pub const DEFAULT_INTERRUPTION_QUEUE: &str = "spot-optimizer-interruptions";

/// Upper bound of the long-poll wait of one receive: the account actor calls
/// `poll_events` inline and must not stall.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(10);

/// Long-poll wait of the first receive of a `poll_events` call (an empty queue costs
/// this much; messages end the wait at once).
pub const DEFAULT_POLL_WAIT: Duration = Duration::from_secs(5);

/// Receives per `poll_events` call (each at most 10 messages, the SQS maximum).
pub const MAX_BATCHES: usize = 5;

/// How often a missing queue (or a role that may not read it) is looked up again.
pub const MISSING_QUEUE_RECHECK: Duration = Duration::from_secs(300);

/// Lead time of a spot interruption notice: the instance is reclaimed two minutes
/// after the warning.
const INTERRUPTION_LEAD: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// EventBridge `detail-type`s the stack's rules deliver.
pub const DETAIL_SPOT_INTERRUPTION: &str = "EC2 Spot Instance Interruption Warning";
pub const DETAIL_REBALANCE: &str = "EC2 Instance Rebalance Recommendation";
pub const DETAIL_STATE_CHANGE: &str = "EC2 Instance State-change Notification";
pub const DETAIL_HEALTH: &str = "AWS Health Event";

/// Where the adapter stands with the queue URL.
#[derive(Debug)]
enum UrlState {
    Unresolved,
    Found(String),
    /// Missing or not readable; looked up again after [`MISSING_QUEUE_RECHECK`].
    Unavailable {
        checked: Instant,
    },
}

/// The interruption queue settings and cached URL of one [`AwsCloud`].
#[derive(Debug)]
pub(crate) struct InterruptionQueue {
    name: String,
    wait: Duration,
    url: Mutex<UrlState>,
    /// Whether the "no queue" info line was written (once per adapter).
    told_unavailable: Mutex<bool>,
}

impl InterruptionQueue {
    pub(crate) fn new(name: String, wait: Duration) -> Self {
        InterruptionQueue {
            name,
            wait,
            url: Mutex::new(UrlState::Unresolved),
            told_unavailable: Mutex::new(false),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn wait(&self) -> Duration {
        self.wait
    }

    fn set(&self, state: UrlState) {
        if let Ok(mut s) = self.url.lock() {
            *s = state;
        }
    }

    /// `Some(Some(url))` cached, `Some(None)` known unavailable (not due for a recheck),
    /// `None` to be looked up.
    fn cached(&self) -> Option<Option<String>> {
        let state = self.url.lock().ok()?;
        match &*state {
            UrlState::Found(url) => Some(Some(url.clone())),
            UrlState::Unavailable { checked } if checked.elapsed() < MISSING_QUEUE_RECHECK => {
                Some(None)
            }
            _ => None,
        }
    }

    fn tell_unavailable(&self, why: &str) {
        let first = match self.told_unavailable.lock() {
            Ok(mut told) => !std::mem::replace(&mut *told, true),
            Err(_) => false,
        };
        if first {
            tracing::info!(
                queue = %self.name,
                reason = why,
                "no spot interruption queue: spot signals on AWS need the queue and rules of the Spot Optimizer CloudFormation stack (deploy/cloudformation/spot-optimizer-role.yaml)"
            );
        }
    }
}

/// Checks an SQS queue name: 1–80 characters of letters, digits, `-` and `_`.
pub(crate) fn validate_queue_name(name: &str) -> Result<()> {
    let ok = (1..=80).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(CloudError::invalid(
            "interruption_queue",
            "must be 1 to 80 characters of letters, digits, - and _",
        ))
    }
}

/// One signal for one instance, before its pool is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub kind: SpotEventKind,
    pub instance_id: String,
    pub time: DateTime<Utc>,
    pub action_time: Option<DateTime<Utc>>,
}

/// What one queue message holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// One or more signals (a Health event can name several instances).
    Signals(Vec<Signal>),
    /// A well-formed event with nothing to act on; the reason is for debug logs.
    Ignored(String),
    /// Not an event this queue should carry; the reason is logged at warn.
    Poison(String),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    detail: serde_json::Value,
}

#[derive(Deserialize)]
struct Ec2Detail {
    #[serde(rename = "instance-id")]
    instance_id: String,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthDetail {
    #[serde(default)]
    service: String,
    #[serde(default)]
    event_type_category: String,
    #[serde(default)]
    event_type_code: String,
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    affected_entities: Vec<HealthEntity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthEntity {
    #[serde(default)]
    entity_value: String,
}

/// An EventBridge timestamp (RFC 3339) or an AWS Health one (RFC 2822, e.g.
/// `Sat, 05 Jun 2021 15:10:09 GMT`).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_rfc2822(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn is_instance_id(s: &str) -> bool {
    s.len() > 2 && s.starts_with("i-") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn ec2_state(name: &str) -> Option<InstanceState> {
    Some(match name {
        "pending" => InstanceState::Pending,
        "running" => InstanceState::Running,
        "stopping" => InstanceState::Stopping,
        "stopped" => InstanceState::Stopped,
        "shutting-down" => InstanceState::ShuttingDown,
        "terminated" => InstanceState::Terminated,
        _ => return None,
    })
}

/// Parses one queue message body (an EventBridge envelope). `received` stands in for
/// an envelope without a readable `time`.
pub fn parse_envelope(body: &str, received: DateTime<Utc>) -> Parsed {
    let envelope: Envelope = match serde_json::from_str(body) {
        Ok(e) => e,
        Err(e) => return Parsed::Poison(format!("not an EventBridge event: {e}")),
    };
    let time = envelope
        .time
        .as_deref()
        .and_then(parse_time)
        .unwrap_or(received);
    let ec2_detail = || -> std::result::Result<Ec2Detail, Parsed> {
        let d: Ec2Detail = serde_json::from_value(envelope.detail.clone()).map_err(|e| {
            Parsed::Poison(format!("{}: unreadable detail: {e}", envelope.detail_type))
        })?;
        if !is_instance_id(&d.instance_id) {
            return Err(Parsed::Poison(format!(
                "{}: {:?} is not an instance id",
                envelope.detail_type, d.instance_id
            )));
        }
        Ok(d)
    };
    let one = |kind, instance_id: String, action_time| {
        Parsed::Signals(vec![Signal {
            kind,
            instance_id,
            time,
            action_time,
        }])
    };
    match envelope.detail_type.as_str() {
        DETAIL_SPOT_INTERRUPTION => match ec2_detail() {
            Ok(d) => one(
                SpotEventKind::InterruptionNotice,
                d.instance_id,
                Some(time + INTERRUPTION_LEAD),
            ),
            Err(p) => p,
        },
        DETAIL_REBALANCE => match ec2_detail() {
            Ok(d) => one(SpotEventKind::RebalanceRecommendation, d.instance_id, None),
            Err(p) => p,
        },
        DETAIL_STATE_CHANGE => match ec2_detail() {
            Ok(d) => {
                let name = d.state.unwrap_or_default();
                match ec2_state(&name) {
                    None => {
                        Parsed::Poison(format!("{DETAIL_STATE_CHANGE}: unknown state {name:?}"))
                    }
                    Some(InstanceState::Pending | InstanceState::Running) => {
                        Parsed::Ignored(format!("{} entered {name}", d.instance_id))
                    }
                    Some(state) => one(
                        SpotEventKind::InstanceStateChange { state },
                        d.instance_id,
                        None,
                    ),
                }
            }
            Err(p) => p,
        },
        DETAIL_HEALTH => {
            let d: HealthDetail = match serde_json::from_value(envelope.detail.clone()) {
                Ok(d) => d,
                Err(e) => {
                    return Parsed::Poison(format!("{DETAIL_HEALTH}: unreadable detail: {e}"))
                }
            };
            if d.service != "EC2" || d.event_type_category != "scheduledChange" {
                return Parsed::Ignored(format!(
                    "Health event {} ({}, {}) is not an EC2 scheduled change",
                    d.event_type_code, d.service, d.event_type_category
                ));
            }
            let start = d.start_time.as_deref().and_then(parse_time);
            let mut ids: Vec<String> = d
                .affected_entities
                .into_iter()
                .map(|e| e.entity_value)
                .filter(|v| is_instance_id(v))
                .collect();
            ids.sort();
            ids.dedup();
            if ids.is_empty() {
                return Parsed::Ignored(format!(
                    "Health event {} names no instance",
                    d.event_type_code
                ));
            }
            Parsed::Signals(
                ids.into_iter()
                    .map(|instance_id| Signal {
                        kind: SpotEventKind::ScheduledChange,
                        instance_id,
                        time,
                        action_time: start,
                    })
                    .collect(),
            )
        }
        other => Parsed::Poison(format!(
            "unknown detail-type {other:?} (source {:?})",
            envelope.source
        )),
    }
}

/// Whether an SQS error says the queue does not exist (typed in the JSON protocol,
/// a query-compatible code otherwise).
fn queue_missing(code: Option<&str>, typed: bool) -> bool {
    typed
        || matches!(
            code,
            Some("QueueDoesNotExist" | "AWS.SimpleQueueService.NonExistentQueue")
        )
}

impl AwsCloud {
    /// The queue URL, resolved once and cached; `None` when the queue is missing or the
    /// role may not look it up (logged once, never an error).
    async fn interruption_queue_url(&self) -> Result<Option<String>> {
        if let Some(cached) = self.interruptions.cached() {
            return Ok(cached);
        }
        let ctx = ErrCtx::new("sqs:GetQueueUrl");
        let sent = self
            .sqs
            .get_queue_url()
            .queue_name(self.interruptions.name())
            .send()
            .await;
        match sent {
            Ok(out) => match out.queue_url() {
                Some(url) => {
                    self.interruptions.set(UrlState::Found(url.to_string()));
                    tracing::info!(queue = %self.interruptions.name(), "reading spot signals from the interruption queue");
                    Ok(Some(url.to_string()))
                }
                None => Err(CloudError::Other("GetQueueUrl returned no URL".into())),
            },
            Err(e) => {
                let typed = e
                    .as_service_error()
                    .is_some_and(|s| s.is_queue_does_not_exist());
                let missing = queue_missing(
                    aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&e),
                    typed,
                );
                let err = map_sdk_err(e, &ctx);
                if missing || matches!(err, CloudError::Unauthorized(_)) {
                    self.interruptions.set(UrlState::Unavailable {
                        checked: Instant::now(),
                    });
                    let why = if missing {
                        "the queue does not exist".to_string()
                    } else {
                        format!("the role may not read it: {err}")
                    };
                    self.interruptions.tell_unavailable(&why);
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Deletes messages by receipt handle, ten per call; failures are logged (the
    /// message then comes back once more and is handled again).
    async fn delete_messages(&self, url: &str, receipts: &[String]) {
        for chunk in receipts.chunks(10) {
            let entries: Vec<sqs_types::DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    sqs_types::DeleteMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .receipt_handle(r)
                        .build()
                        .ok()
                })
                .collect();
            let sent = self
                .sqs
                .delete_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await;
            match sent {
                Ok(out) => {
                    for f in out.failed() {
                        tracing::warn!(queue = %self.interruptions.name(), code = f.code(), detail = f.message().unwrap_or(""), "interruption message not deleted");
                    }
                }
                Err(e) => {
                    let err = map_sdk_err(e, &ErrCtx::new("sqs:DeleteMessage"));
                    tracing::warn!(queue = %self.interruptions.name(), error = %err, "interruption messages not deleted");
                }
            }
        }
    }

    /// Reads up to [`MAX_BATCHES`] batches from the interruption queue and turns them
    /// into spot events with their pools, oldest first (see the module docs).
    pub(crate) async fn poll_interruption_queue(&self) -> Result<Vec<SpotEvent>> {
        let Some(url) = self.interruption_queue_url().await? else {
            return Ok(Vec::new());
        };
        let ctx = ErrCtx::new("sqs:ReceiveMessage");
        let first_wait = self.interruptions.wait();
        let mut signals: Vec<Signal> = Vec::new();
        let mut handled: Vec<String> = Vec::new();
        for batch in 0..MAX_BATCHES {
            // Long-poll once; later batches only drain what is already there.
            let wait = if batch == 0 {
                first_wait
            } else {
                first_wait.min(Duration::from_secs(1))
            };
            let sent = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(wait.as_secs().min(MAX_POLL_WAIT.as_secs()) as i32)
                .send()
                .await;
            let out = match sent {
                Ok(out) => out,
                Err(e) => {
                    let typed = e
                        .as_service_error()
                        .is_some_and(|s| s.is_queue_does_not_exist());
                    let code = aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&e);
                    if queue_missing(code, typed) {
                        // Deleted since it was resolved: forget the URL, look again later.
                        self.interruptions.set(UrlState::Unavailable {
                            checked: Instant::now(),
                        });
                        self.interruptions.tell_unavailable("the queue was deleted");
                        return Ok(Vec::new());
                    }
                    return Err(map_sdk_err(e, &ctx));
                }
            };
            let messages = out.messages();
            if messages.is_empty() {
                break;
            }
            let mut dropped = Vec::new();
            let received = Utc::now();
            for m in messages {
                let Some(receipt) = m.receipt_handle() else {
                    continue;
                };
                match parse_envelope(m.body().unwrap_or(""), received) {
                    Parsed::Signals(s) => {
                        signals.extend(s);
                        handled.push(receipt.to_string());
                    }
                    Parsed::Ignored(why) => {
                        tracing::debug!(queue = %self.interruptions.name(), reason = %why, "interruption queue message ignored");
                        dropped.push(receipt.to_string());
                    }
                    Parsed::Poison(why) => {
                        tracing::warn!(queue = %self.interruptions.name(), message_id = m.message_id().unwrap_or(""), reason = %why, "poison message dropped from the interruption queue");
                        dropped.push(receipt.to_string());
                    }
                }
            }
            self.delete_messages(&url, &dropped).await;
        }
        if signals.is_empty() {
            return Ok(Vec::new());
        }
        // The events carry only instance ids: one batched lookup for the pools. A
        // filter (not InstanceIds) so that an instance that is gone does not fail the
        // whole call; EC2 allows 200 values per filter.
        let mut ids: Vec<String> = signals.iter().map(|s| s.instance_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let mut pools = std::collections::HashMap::new();
        for chunk in ids.chunks(200) {
            for i in self
                .instances_where(vec![filter("instance-id", chunk.iter().cloned())])
                .await?
            {
                pools.insert(i.id.clone(), (i.instance_type, i.az));
            }
        }
        let mut events = Vec::with_capacity(signals.len());
        for s in signals {
            match pools.get(&s.instance_id) {
                Some((instance_type, az)) => events.push(SpotEvent {
                    kind: s.kind,
                    instance_id: s.instance_id,
                    instance_type: instance_type.clone(),
                    az: az.clone(),
                    time: s.time,
                    action_time: s.action_time,
                }),
                None => {
                    tracing::info!(instance_id = %s.instance_id, kind = ?s.kind, "spot signal for an instance EC2 no longer shows; dropped")
                }
            }
        }
        self.delete_messages(&url, &handled).await;
        events.sort_by(|a, b| (a.time, &a.instance_id).cmp(&(b.time, &b.instance_id)));
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn received() -> DateTime<Utc> {
        at("2030-01-01T00:00:00Z")
    }

    /// From the EC2 user guide, "EC2 Spot Instance interruption notices".
    const INTERRUPTION: &str = r#"{
        "version": "0",
        "id": "12345678-1234-1234-1234-123456789012",
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2021-02-25T14:58:17Z",
        "region": "us-east-2",
        "resources": ["arn:aws:ec2:us-east-2a:instance/i-1234567890abcdef0"],
        "detail": {"instance-id": "i-1234567890abcdef0", "instance-action": "terminate"}
    }"#;

    /// From the EC2 user guide, "EC2 instance rebalance recommendations".
    const REBALANCE: &str = r#"{
        "version": "0",
        "id": "12345678-1234-1234-1234-123456789012",
        "detail-type": "EC2 Instance Rebalance Recommendation",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2021-02-25T14:50:00Z",
        "region": "us-east-2",
        "resources": ["arn:aws:ec2:us-east-2:123456789012:instance/i-1234567890abcdef0"],
        "detail": {"instance-id": "i-1234567890abcdef0"}
    }"#;

    fn state_change(state: &str) -> String {
        format!(
            r#"{{
            "version": "0",
            "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "account": "123456789012",
            "time": "2021-11-11T21:29:54Z",
            "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
            "detail": {{"instance-id": "i-abcd1111", "state": "{state}"}}
        }}"#
        )
    }

    fn health(service: &str, category: &str) -> String {
        format!(
            r#"{{
            "version": "0",
            "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "AWS Health Event",
            "source": "aws.health",
            "account": "123456789012",
            "time": "2023-01-27T01:43:21Z",
            "region": "us-east-1",
            "resources": ["i-abcd1111", "i-abcd2222"],
            "detail": {{
                "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_ABC123",
                "service": "{service}",
                "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
                "eventTypeCategory": "{category}",
                "eventScopeCode": "ACCOUNT_SPECIFIC",
                "startTime": "Sat, 28 Jan 2023 01:43:21 GMT",
                "endTime": "Sat, 28 Jan 2023 02:43:21 GMT",
                "eventDescription": [{{"language": "en_US", "latestDescription": "The instance is scheduled for retirement."}}],
                "affectedEntities": [
                    {{"entityValue": "i-abcd2222"}},
                    {{"entityValue": "i-abcd1111"}},
                    {{"entityValue": "vol-0123456789abcdef0"}}
                ]
            }}
        }}"#
        )
    }

    #[test]
    fn interruption_warning_gives_the_instance_and_a_two_minute_deadline() {
        let Parsed::Signals(s) = parse_envelope(INTERRUPTION, received()) else {
            panic!("not parsed");
        };
        assert_eq!(
            s,
            vec![Signal {
                kind: SpotEventKind::InterruptionNotice,
                instance_id: "i-1234567890abcdef0".into(),
                time: at("2021-02-25T14:58:17Z"),
                action_time: Some(at("2021-02-25T15:00:17Z")),
            }]
        );
    }

    #[test]
    fn rebalance_recommendation_has_no_deadline() {
        let Parsed::Signals(s) = parse_envelope(REBALANCE, received()) else {
            panic!("not parsed");
        };
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, SpotEventKind::RebalanceRecommendation);
        assert_eq!(s[0].instance_id, "i-1234567890abcdef0");
        assert_eq!(s[0].time, at("2021-02-25T14:50:00Z"));
        assert_eq!(s[0].action_time, None);
    }

    #[test]
    fn state_changes_out_of_running_are_signals_and_into_running_are_ignored() {
        for (name, state) in [
            ("stopping", InstanceState::Stopping),
            ("stopped", InstanceState::Stopped),
            ("shutting-down", InstanceState::ShuttingDown),
            ("terminated", InstanceState::Terminated),
        ] {
            let Parsed::Signals(s) = parse_envelope(&state_change(name), received()) else {
                panic!("{name} not parsed");
            };
            assert_eq!(s[0].kind, SpotEventKind::InstanceStateChange { state });
            assert_eq!(s[0].instance_id, "i-abcd1111");
        }
        for name in ["pending", "running"] {
            assert!(matches!(
                parse_envelope(&state_change(name), received()),
                Parsed::Ignored(_)
            ));
        }
        assert!(matches!(
            parse_envelope(&state_change("melting"), received()),
            Parsed::Poison(_)
        ));
    }

    #[test]
    fn health_scheduled_change_names_every_affected_instance() {
        let Parsed::Signals(s) = parse_envelope(&health("EC2", "scheduledChange"), received())
        else {
            panic!("not parsed");
        };
        let ids: Vec<&str> = s.iter().map(|s| s.instance_id.as_str()).collect();
        assert_eq!(
            ids,
            ["i-abcd1111", "i-abcd2222"],
            "volumes are not instances"
        );
        assert!(s.iter().all(|s| s.kind == SpotEventKind::ScheduledChange
            && s.time == at("2023-01-27T01:43:21Z")
            && s.action_time == Some(at("2023-01-28T01:43:21Z"))));
        // Other services and categories reach the queue only if the rule is widened.
        assert!(matches!(
            parse_envelope(&health("RDS", "scheduledChange"), received()),
            Parsed::Ignored(_)
        ));
        assert!(matches!(
            parse_envelope(&health("EC2", "issue"), received()),
            Parsed::Ignored(_)
        ));
    }

    #[test]
    fn poison_messages_are_recognised() {
        for body in [
            "",
            "not json",
            "{\"hello\": 1}",
            r#"{"detail-type": "Object Created", "source": "aws.s3", "detail": {}}"#,
            r#"{"detail-type": "EC2 Spot Instance Interruption Warning", "detail": {}}"#,
            r#"{"detail-type": "EC2 Spot Instance Interruption Warning", "detail": {"instance-id": "vol-1"}}"#,
            r#"{"detail-type": "AWS Health Event", "detail": {"affectedEntities": 3}}"#,
        ] {
            assert!(
                matches!(parse_envelope(body, received()), Parsed::Poison(_)),
                "{body}"
            );
        }
    }

    #[test]
    fn a_missing_time_falls_back_to_the_receive_time() {
        let body = r#"{"detail-type": "EC2 Instance Rebalance Recommendation", "detail": {"instance-id": "i-0abc"}}"#;
        let Parsed::Signals(s) = parse_envelope(body, received()) else {
            panic!("not parsed");
        };
        assert_eq!(s[0].time, received());
    }

    #[test]
    fn queue_names_are_checked() {
        assert!(validate_queue_name(DEFAULT_INTERRUPTION_QUEUE).is_ok());
        assert!(validate_queue_name("a_b-1").is_ok());
        assert!(validate_queue_name("").is_err());
        assert!(validate_queue_name("has space").is_err());
        assert!(validate_queue_name(&"q".repeat(81)).is_err());
    }

    #[test]
    fn both_spellings_of_a_missing_queue_are_recognised() {
        assert!(queue_missing(Some("QueueDoesNotExist"), false));
        assert!(queue_missing(
            Some("AWS.SimpleQueueService.NonExistentQueue"),
            false
        ));
        assert!(queue_missing(None, true));
        assert!(!queue_missing(Some("AccessDenied"), false));
        assert!(!queue_missing(None, false));
    }
}
