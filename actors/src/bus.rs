//! The in-process event bus behind the live event streams. Every event names its
//! organization; subscribers filter by it, so a client never receives another tenant's
//! events (super-admins may subscribe to all).

use serde::Serialize;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `None` for platform-level events (only the admin stream sees them).
    #[serde(skip)]
    pub org_id: Option<String>,
    /// e.g. `scan.progress`, `account.status`, `inventory.changed`, `spot.interruption`.
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: chrono::DateTime<chrono::Utc>,
    pub data: serde_json::Value,
}

#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Event>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl Bus {
    pub fn new(capacity: usize) -> Self {
        Bus {
            tx: broadcast::channel(capacity).0,
        }
    }

    pub fn publish(&self, org_id: Option<&str>, kind: &str, data: serde_json::Value) {
        // No subscribers is normal (nobody has the app open).
        let _ = self.tx.send(Event {
            org_id: org_id.map(str::to_string),
            kind: kind.to_string(),
            ts: chrono::Utc::now(),
            data,
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
