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

fn stream(
    state: &AppState,
    org: Option<String>,
    session_id: &str,
) -> BoxStream<'static, LiveEvent> {
    let rx = state.actors.bus.subscribe();
    let admin = org.is_none();
    let until = Box::pin(revoked(state.db.clone(), session_id.to_string()));
    BroadcastStream::new(rx)
        .take_until(until)
        // A slow client that lags behind skips the events it missed rather than stalling.
        .filter_map(move |r| {
            let org = org.clone();
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
    /// actions, launch decisions. The stream ends within 10 s of the session's revocation. Browsers' `EventSource` cannot send
    /// headers, so the access token may also be passed as `?access_token=`.
    #[oai(path = "/events", method = "get", operation_id = "streamEvents")]
    async fn events(
        &self,
        state: Data<&AppState>,
        req: &poem::Request,
    ) -> poem::Result<EventStream<BoxStream<'static, LiveEvent>>> {
        let auth = caller(req)?;
        Ok(
            EventStream::new(stream(&state, Some(auth.org_id), &auth.session_id))
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
        Ok(EventStream::new(stream(&state, None, &auth.session_id))
            .keep_alive(std::time::Duration::from_secs(15)))
    }
}
