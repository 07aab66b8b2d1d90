use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use poem::web::Data;
use poem_openapi::payload::EventStream;
use poem_openapi::{Object, OpenApi};
use tokio_stream::wrappers::BroadcastStream;

use super::ApiTags;
use crate::auth::AuthCtx;
use crate::error::ApiError;
use crate::state::AppState;

pub struct EventsApi;

/// One live event.
#[derive(Object)]
pub struct LiveEvent {
    /// `scan.progress`, `account.status`, `inventory.changed`, `spot.interruption`,
    /// `spot.rebalance`, `actor.restarting`, ...
    #[oai(rename = "type")]
    pub kind: String,
    pub ts: chrono::DateTime<chrono::Utc>,
    /// Set on the admin stream.
    pub organization_id: Option<String>,
    pub data: serde_json::Value,
}

/// How often a live stream re-checks that its session is still valid.
const SESSION_RECHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// Resolves when the session is revoked (logout, password change, admin action) so the
/// stream ends instead of outliving the credentials it was opened with.
async fn revoked(db: spot_models::Db, session_id: String) {
    loop {
        tokio::time::sleep(SESSION_RECHECK).await;
        if let Ok(None) = spot_models::sessions::principal(&db, &session_id).await {
            return;
        }
    }
}

/// Open live streams (server-sent events) of this server: at most `per_user` per user and
/// `global` in all, so a client cannot hold an unbounded number of connections and
/// broadcast subscriptions open.
pub struct LiveStreamSlots {
    per_user: usize,
    global: usize,
    open: std::sync::Mutex<(usize, std::collections::HashMap<String, usize>)>,
}

/// One open stream's place; given back when the stream is dropped (client gone, session
/// revoked, token expired).
pub struct LiveStreamSlot {
    slots: std::sync::Arc<LiveStreamSlots>,
    user: String,
}

impl LiveStreamSlots {
    pub fn new(per_user: usize, global: usize) -> std::sync::Arc<LiveStreamSlots> {
        std::sync::Arc::new(LiveStreamSlots {
            per_user,
            global,
            open: Default::default(),
        })
    }

    /// Takes a slot for `user`, or says which cap is reached (429).
    pub fn acquire(self: &std::sync::Arc<Self>, user: &str) -> Result<LiveStreamSlot, ApiError> {
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = g.1.get(user).copied().unwrap_or(0);
        if g.0 >= self.global {
            tracing::warn!(
                component = "CORE-API",
                open = g.0,
                "live stream refused: server-wide cap reached"
            );
            return Err(ApiError::RateLimited {
                retry_after_secs: 30,
            });
        }
        if mine >= self.per_user {
            tracing::warn!(
                component = "CORE-API",
                open = mine,
                "live stream refused: per-user cap reached"
            );
            return Err(ApiError::RateLimited {
                retry_after_secs: 10,
            });
        }
        g.0 += 1;
        *g.1.entry(user.to_string()).or_insert(0) += 1;
        Ok(LiveStreamSlot {
            slots: self.clone(),
            user: user.to_string(),
        })
    }

    /// Streams open now (all users).
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

impl Drop for LiveStreamSlot {
    fn drop(&mut self) {
        let mut g = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = g.0.saturating_sub(1);
        if let Some(n) = g.1.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                g.1.remove(&self.user);
            }
        }
    }
}

/// The access token the request authenticated with (header, or `?access_token=` on the
/// stream routes) and its expiry (seconds since the epoch).
fn token_expiry(state: &AppState, req: &poem::Request) -> Option<i64> {
    let header = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let query = || {
        req.uri()
            .query()?
            .split('&')
            .find_map(|kv| kv.strip_prefix("access_token="))
    };
    let token = header.or_else(query)?;
    state.jwt.decode(token.trim()).map(|c| c.exp)
}

/// What bounds a live stream: a slot under the caps, and the moment it must end (the
/// session's revocation or its access token's expiry, whichever comes first; the client
/// reconnects with a fresh token).
pub(crate) fn live_stream_bounds(
    state: &AppState,
    req: &poem::Request,
    auth: &AuthCtx,
) -> Result<(LiveStreamSlot, futures_util::future::BoxFuture<'static, ()>), ApiError> {
    let exp = token_expiry(state, req).ok_or_else(|| {
        ApiError::Unauthorized("authentication required: send a valid access token".into())
    })?;
    let slot = state.live_streams.acquire(&auth.user_id)?;
    let left = (exp - chrono::Utc::now().timestamp()).max(0) as u64;
    let expired = tokio::time::sleep(std::time::Duration::from_secs(left));
    let revoked = revoked(state.db.clone(), auth.session_id.clone());
    let end = Box::pin(async move {
        tokio::select! {
            _ = expired => {}
            _ = revoked => {}
        }
    });
    Ok((slot, end))
}

fn stream(
    state: &AppState,
    org: Option<String>,
    slot: LiveStreamSlot,
    end: futures_util::future::BoxFuture<'static, ()>,
) -> BoxStream<'static, LiveEvent> {
    let rx = state.actors.bus.subscribe();
    let admin = org.is_none();
    BroadcastStream::new(rx)
        .take_until(end)
        // A slow client that lags behind skips the events it missed rather than stalling.
        .filter_map(move |r| {
            let org = org.clone();
            // The slot lives as long as the stream (dropped with it).
            let _held = &slot;
            async move {
                let e = r.ok()?;
                if !admin && e.org_id.as_deref() != org.as_deref() {
                    return None;
                }
                Some(LiveEvent {
                    kind: e.kind,
                    ts: e.ts,
                    organization_id: if admin { e.org_id } else { None },
                    data: e.data,
                })
            }
        })
        .boxed()
}

/// The caller established by the gateway from the `Authorization` header or, for event
/// streams, the `access_token` query parameter.
fn caller(req: &poem::Request) -> Result<AuthCtx, ApiError> {
    req.extensions().get::<AuthCtx>().cloned().ok_or_else(|| {
        ApiError::Unauthorized("authentication required: send a valid access token".into())
    })
}

#[OpenApi(tag = "ApiTags::Events")]
impl EventsApi {
    /// Live events of the caller's organization (server-sent events): discovery progress,
    /// account status, inventory changes, spot signals, risk scores, job progress and
    /// actions, launch decisions. The stream ends within 10 s of the session's revocation
    /// and when its access token expires (reconnect with a fresh one). At most a few
    /// streams per user and a server-wide number are open at once (429 beyond). Browsers'
    /// `EventSource` cannot send headers, so the access token may also be passed as
    /// `?access_token=`.
    #[oai(path = "/events", method = "get", operation_id = "streamEvents")]
    async fn events(
        &self,
        state: Data<&AppState>,
        req: &poem::Request,
    ) -> poem::Result<EventStream<BoxStream<'static, LiveEvent>>> {
        let auth = caller(req)?;
        let (slot, end) = live_stream_bounds(&state, req, &auth)?;
        Ok(
            EventStream::new(stream(&state, Some(auth.org_id), slot, end))
                .keep_alive(std::time::Duration::from_secs(15)),
        )
    }

    /// Live events of every organization (super_admin only).
    #[oai(
        path = "/admin/events",
        method = "get",
        operation_id = "streamAdminEvents"
    )]
    async fn admin_events(
        &self,
        state: Data<&AppState>,
        req: &poem::Request,
    ) -> poem::Result<EventStream<BoxStream<'static, LiveEvent>>> {
        let auth = caller(req)?;
        auth.require_super_admin()?;
        let (slot, end) = live_stream_bounds(&state, req, &auth)?;
        Ok(EventStream::new(stream(&state, None, slot, end))
            .keep_alive(std::time::Duration::from_secs(15)))
    }
}
