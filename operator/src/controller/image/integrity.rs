//! A cached image: publish it, and re-hash it when its integrity interval
//! has passed (a corrupt file is archived and downloaded again).

use std::time::Duration;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::api::{ImagePhase, ImageSubscription, ImageSubscriptionStatus};
use crate::controller::{Context, ControllerError};
use crate::imagelist::{self, Image};
use crate::reason::camel_case;
use crate::store::{ImageKey, Integrity};
use crate::subscription::status;

/// Default time between integrity re-checks of a cached image.
const DEFAULT_INTEGRITY_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// The image is cached and verified: publish it, re-hash it when due.
pub async fn available(
    image: &ImageSubscription,
    status: &mut ImageSubscriptionStatus,
    key: &ImageKey,
    listed: &Image,
    context: &Context,
    now: Timestamp,
) -> Result<Action, ControllerError> {
    let interval = image
        .spec
        .integrity_interval
        .as_deref()
        .and_then(|i| crate::api::duration::parse_duration(i).ok())
        .unwrap_or(DEFAULT_INTEGRITY_INTERVAL)
        .max(Duration::from_secs(60));
    let last_check = status
        .last_integrity_check
        .as_deref()
        .and_then(|t| imagelist::parse_timestamp(t).ok());
    if last_check.is_some_and(|last| now >= last + interval) {
        let store_key = key.clone();
        let checked = {
            let _permit = context.downloads.acquire().await;
            let store = context.core.store();
            tokio::task::block_in_place(|| store.recheck_at(&store_key, now))
        };
        match checked? {
            Integrity::Intact { .. } => {}
            Integrity::Corrupt {
                reason,
                detail,
                expired,
            } => {
                context
                    .event(
                        image,
                        EventType::Warning,
                        &camel_case(reason.code()),
                        "IntegrityCheck",
                        format!("cached file failed its re-check ({detail}); moved to expired/{}, downloading again", expired.name),
                    );
                status::record_history(status, reason, &expired.name, now);
                status.artifact = None;
                status::image_unavailable(
                    status,
                    ImagePhase::Pending,
                    &camel_case(reason.code()),
                    &detail,
                    now,
                );
                status.last_integrity_check = Some(imagelist::format_timestamp(now));
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
        }
        status.last_integrity_check = Some(imagelist::format_timestamp(now));
    }
    let Some(cached) = context.core.store().cached(key) else {
        return Ok(Action::requeue(Duration::from_secs(1)));
    };
    if status.phase != ImagePhase::Available {
        tracing::info!(image = %key, "available");
    }
    if status.last_integrity_check.is_none() {
        status.last_integrity_check = Some(imagelist::format_timestamp(cached.verified_at));
    }
    let path = context.core.store().image_path(key);
    let artifact = status::artifact(
        context.config.artifact_base_url.as_deref(),
        &path,
        key,
        &cached.sha512,
        cached.size,
        cached.verified_at,
    );
    let disk = crate::subscription::disk::describe(status.artifact.as_ref(), &artifact, &path);
    let artifact = status::with_disk(artifact, disk);
    status::image_available(status, artifact, now);
    Ok(Action::requeue(next_wake(status, listed, interval, now)))
}

/// The next integrity check, or the image's own expiry if sooner.
fn next_wake(
    status: &ImageSubscriptionStatus,
    listed: &Image,
    interval: Duration,
    now: Timestamp,
) -> Duration {
    let mut wait = status
        .last_integrity_check
        .as_deref()
        .and_then(|t| imagelist::parse_timestamp(t).ok())
        .map_or(interval, |last| {
            (last + interval)
                .duration_since(now)
                .try_into()
                .unwrap_or(Duration::ZERO)
        });
    if let Some(expires) = listed.expires {
        let until: Duration = expires
            .duration_since(now)
            .try_into()
            .unwrap_or(Duration::ZERO);
        wait = wait.min(until);
    }
    wait.max(Duration::from_secs(1))
}
