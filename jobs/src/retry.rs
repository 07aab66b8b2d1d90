//! Errors classified as *retry* versus *abort*.
//!
//! A batch item calls the cloud and the database several times. What a failure means
//! decides what the job does next:
//!
//! - [`Class::Transient`]: the same call may succeed in a moment — throttling, an
//!   unexplained provider error (a 5xx, a timeout, a dropped connection), a database
//!   connection that was terminated or a busy SQLite file. The call is retried with
//!   exponential backoff ([`ATTEMPTS`] attempts in all, honouring the provider's
//!   `retry_after`); every batch call is idempotent (client tokens, deletes and terminates
//!   that treat "already gone" as done), so a retry never acts twice.
//! - [`Class::Item`]: this item cannot succeed as asked — a resource that is gone or in
//!   use, a rejected parameter, no capacity. The item ends (`skipped` or `failed`) and the
//!   batch goes on.
//! - [`Class::Job`]: no item of the account can succeed — the credentials are invalid or
//!   lack a permission. The batch is aborted: the items not yet started are `skipped`
//!   with the reason, and the job fails saying so.
//!
//! The class, and how many retries a call needed, are recorded on the item's result and
//! summed on the job's (`retries`, `aborted`), so they are visible in the web app.

use std::future::Future;
use std::time::Duration;

use spot_cloud::CloudError;
use spot_models::DbError;

/// Attempts of one call before a transient failure is given up on.
pub const ATTEMPTS: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// What a failure means for the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Retry the call with backoff.
    Transient,
    /// End this item; go on with the others.
    Item,
    /// Abort the job: the other items would fail the same way.
    Job,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Transient => "transient",
            Class::Item => "item",
            Class::Job => "job",
        }
    }
}

/// The class of a Cloud port error.
pub fn of_cloud(e: &CloudError) -> Class {
    match e {
        CloudError::Throttled { .. } | CloudError::Other(_) => Class::Transient,
        CloudError::Unauthorized(_) => Class::Job,
        CloudError::InsufficientCapacity { .. }
        | CloudError::NotFound { .. }
        | CloudError::Invalid { .. }
        | CloudError::Unsupported(_) => Class::Item,
    }
}

/// The class of a database error: an outage is transient, anything else (a constraint, a
/// corrupt row) ends the item.
pub fn of_db(e: &DbError) -> Class {
    if e.is_transient() {
        Class::Transient
    } else {
        Class::Item
    }
}

fn pause(attempt: u32, hint: Option<Duration>) -> Duration {
    let backoff = FIRST_PAUSE
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_PAUSE);
    hint.map_or(backoff, |h| h.min(MAX_PAUSE).max(backoff))
}

/// Runs a cloud call, retrying transient failures with backoff; `retries` counts the
/// retries made. The error returned is the last one.
pub async fn cloud<T, F, Fut>(retries: &mut u32, mut call: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if of_cloud(&e) == Class::Transient && attempt < ATTEMPTS => {
                let hint = match &e {
                    CloudError::Throttled { retry_after } => *retry_after,
                    _ => None,
                };
                tracing::info!(component = crate::COMPONENT, error = %e, attempt, "transient cloud error; retrying");
                tokio::time::sleep(pause(attempt, hint)).await;
                attempt += 1;
                *retries += 1;
            }
            other => return other,
        }
    }
}

/// Runs a database call, retrying transient failures (a terminated connection, a busy
/// file) with backoff; `retries` counts the retries made.
pub async fn db<T, F, Fut>(retries: &mut u32, mut call: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.is_transient() && attempt < ATTEMPTS + 2 => {
                tracing::info!(component = crate::COMPONENT, error = %e, attempt, "transient database error; retrying");
                tokio::time::sleep(pause(attempt, None)).await;
                attempt += 1;
                *retries += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn throttling_and_outages_are_retried_permissions_abort_the_job() {
        assert_eq!(
            of_cloud(&CloudError::Throttled { retry_after: None }),
            Class::Transient
        );
        assert_eq!(of_cloud(&CloudError::Other("503".into())), Class::Transient);
        assert_eq!(of_cloud(&CloudError::Unauthorized("x".into())), Class::Job);
        assert_eq!(of_cloud(&CloudError::invalid("f", "m")), Class::Item);
        assert_eq!(
            of_cloud(&CloudError::not_found(
                spot_cloud::ResourceKind::Volume,
                "v"
            )),
            Class::Item
        );
        assert_eq!(of_db(&DbError::Conflict("dup".into())), Class::Item);
        assert_eq!(
            of_db(&DbError::Sqlx(sqlx::Error::PoolTimedOut)),
            Class::Transient
        );
    }

    #[test]
    fn backoff_doubles_up_to_a_cap_and_honours_the_hint() {
        assert_eq!(pause(1, None), Duration::from_millis(200));
        assert_eq!(pause(3, None), Duration::from_millis(800));
        assert_eq!(pause(30, None), MAX_PAUSE);
        assert_eq!(
            pause(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(pause(1, Some(Duration::from_secs(60))), MAX_PAUSE);
    }

    #[tokio::test]
    async fn a_transient_error_is_retried_until_it_passes_and_counted() {
        let calls = &AtomicU32::new(0);
        let mut retries = 0;
        let out = cloud(&mut retries, || async move {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(CloudError::Throttled { retry_after: None })
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out, Ok(7));
        assert_eq!(retries, 2);

        let calls = &AtomicU32::new(0);
        let mut retries = 0;
        let out: Result<(), _> = cloud(&mut retries, || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(CloudError::Other("down".into()))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);

        let calls = &AtomicU32::new(0);
        let mut retries = 0;
        let out: Result<(), _> = cloud(&mut retries, || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(CloudError::Unauthorized("denied".into()))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "an abort is never retried");
        assert_eq!(retries, 0);
    }
}
