//! Downloading an image: a DownloadStarted Event, the Downloading phase
//! and `status.progress` written once the download has run for
//! [`PROGRESS_EVERY`] and then at most that often, then Available or the
//! failure's reason (retried with backoff).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

use super::integrity::available;
use crate::api::hooks::HookEvent;
use crate::api::{DownloadProgress, ImagePhase, ImageSubscription, ImageSubscriptionStatus};
use crate::controller::hooks;
use crate::controller::inputs::transfer_settings;
use crate::controller::{Context, ControllerError};
use crate::imagelist::{self, Image};
use crate::store::{ImageKey, ImageRecord};
use crate::subscription::select::resolve_image_url;
use crate::subscription::status;
use crate::subscription::{DownloadObserver, GoodList, ObjectKey};
use crate::transfer::redact_url;

/// Least time between two progress writes of one download.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Longest wait for a download slot within one reconcile; then it is
/// retried after as long again.
const SLOT_WAIT: Duration = Duration::from_secs(30);

/// Sends the bytes received so far to the reconcile that writes them.
struct Progress(tokio::sync::watch::Sender<(u64, u64)>);

impl DownloadObserver for Progress {
    fn progress(&self, received: u64, total: u64) {
        self.0.send_replace((received, total));
    }
}

fn progress_of(received: u64, total: u64) -> DownloadProgress {
    DownloadProgress {
        bytes: received,
        total,
        percent: u8::try_from(received.saturating_mul(100) / total.max(1)).unwrap_or(100),
    }
}

/// Writes a running download's status; a failure only delays it.
async fn write_progress(
    image: &ImageSubscription,
    before: Option<&ImageSubscriptionStatus>,
    status: &ImageSubscriptionStatus,
    key: &ImageKey,
    context: &Context,
) {
    if let Err(err) = context.apply_status(image, before, status).await {
        tracing::debug!(image = %key, error = %err, "progress not written");
    }
}

/// Downloads, verifies and promotes.
#[allow(clippy::too_many_arguments)]
pub async fn download(
    image: &ImageSubscription,
    status: &mut ImageSubscriptionStatus,
    list_key: &ObjectKey,
    key: &ImageKey,
    good: &GoodList,
    listed: &Image,
    context: &Context,
    now: Timestamp,
) -> Result<Action, ControllerError> {
    let Some(list) = context
        .lists
        .get(&ObjectRef::new(&list_key.name).within(&list_key.namespace))
    else {
        return Ok(Action::requeue(Duration::from_secs(5)));
    };
    // A download slot first, then the Event and the status write: images
    // waiting for a slot cost no API request. The wait is bounded so that
    // a reconcile does not hold one of the controller's slots
    // (`--max-concurrent-reconciles`) behind a long queue of downloads.
    let Ok(Ok(permit)) = tokio::time::timeout(SLOT_WAIT, context.downloads.acquire()).await else {
        return Ok(Action::requeue(SLOT_WAIT));
    };
    let before = status.clone();
    let marker = hooks::marker_of(status);
    if status.phase != ImagePhase::Downloading {
        context.event(
            image,
            EventType::Normal,
            "DownloadStarted",
            "Download",
            format!(
                "{} ({} bytes, sha512:{}) from {}",
                listed.identifier.as_str(),
                listed.size,
                listed.sha512.as_str(),
                redact_url(&resolve_image_url(&list.spec.url, &listed.uri))
            ),
        );
        match ImageRecord::new(
            key.clone(),
            listed,
            &good.parsed.list,
            good.digest.clone(),
            now,
        ) {
            Ok(record) => {
                let path = context.core.store().image_path(key);
                let fired = hooks::Fired {
                    image,
                    list_key,
                    event: HookEvent::AvailablePrefix,
                    record: &record,
                    path: &path,
                    marker: &marker,
                };
                hooks::fire(context, fired).await;
            }
            Err(err) => tracing::warn!(image = %key, error = %err, "no AvailablePrefix hook"),
        }
    }
    // Downloading is written once the download has run for
    // PROGRESS_EVERY, then with its progress at most that often: an image
    // that arrives sooner goes from Pending to Available in one write
    // (10,000 small images: 10,000 writes fewer).
    status::image_downloading(status, progress_of(0, listed.size), now);

    let settings = transfer_settings(&list, list_key, context).await?;
    let (progress_tx, mut progress_rx) = tokio::sync::watch::channel((0u64, listed.size));
    let observer = Progress(progress_tx);
    let started = Instant::now();
    let request = crate::subscription::Download {
        transfer: &settings,
        list_url: &list.spec.url,
        good,
        image: listed,
        key,
        now,
    };
    let transfer = context.core.download(&request, &observer);
    tokio::pin!(transfer);
    let first_write = tokio::time::sleep(PROGRESS_EVERY);
    tokio::pin!(first_write);
    let mut written: Option<(Instant, ImageSubscriptionStatus)> = None;
    let result = loop {
        tokio::select! {
            result = &mut transfer => break result,
            () = &mut first_write, if written.is_none() => {
                let (received, total) = *progress_rx.borrow_and_update();
                status.progress = Some(progress_of(received, total));
                write_progress(image, Some(&before), status, key, context).await;
                written = Some((Instant::now(), status.clone()));
            }
            changed = progress_rx.changed(), if written.is_some() => {
                let due = written
                    .as_ref()
                    .is_some_and(|(at, _)| at.elapsed() >= PROGRESS_EVERY);
                if changed.is_err() || !due {
                    continue;
                }
                let last = written.take().map(|(_, last)| last);
                let (received, total) = *progress_rx.borrow_and_update();
                status.progress = Some(progress_of(received, total));
                write_progress(image, last.as_ref(), status, key, context).await;
                written = Some((Instant::now(), status.clone()));
            }
        }
    };
    drop(permit);
    let elapsed = started.elapsed().as_secs_f64();
    let metrics = &context.metrics;
    match result {
        Ok(path) => {
            metrics.download_bytes.inc_by(listed.size);
            metrics
                .download_duration
                .with_label_values(&["success"])
                .observe(elapsed);
            context.event(
                image,
                EventType::Normal,
                "Available",
                "Download",
                format!(
                    "{} verified (sha512:{}) at {}",
                    listed.identifier.as_str(),
                    listed.sha512.as_str(),
                    path.display()
                ),
            );
            match context.core.store().record(key) {
                Ok(record) => {
                    let fired = hooks::Fired {
                        image,
                        list_key,
                        event: HookEvent::AvailablePostfix,
                        record: &record,
                        path: &path,
                        marker: &marker,
                    };
                    hooks::fire(context, fired).await;
                }
                Err(err) => tracing::warn!(image = %key, error = %err, "no AvailablePostfix hook"),
            }
            status.last_integrity_check = Some(imagelist::format_timestamp(Timestamp::now()));
            available(image, status, key, listed, context, Timestamp::now()).await
        }
        Err(failure) => {
            metrics
                .download_duration
                .with_label_values(&["failure"])
                .observe(elapsed);
            metrics
                .download_failures
                .with_label_values(&[failure.reason.as_ref()])
                .inc();
            context.event(
                image,
                EventType::Warning,
                &failure.condition_reason(),
                "Download",
                failure.message.clone(),
            );
            status::image_failed(status, &failure, now);
            // Against what the server has now: Downloading, if this
            // attempt ran long enough to write it (the object as read may
            // hold the very same failure from the attempt before).
            let on_server = written
                .as_ref()
                .map(|(_, last)| last)
                .or(image.status.as_ref());
            context.apply_status(image, on_server, status).await?;
            Err(ControllerError::Image(failure))
        }
    }
}
