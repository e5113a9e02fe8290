//! Pure status builders shared by both drivers: what a list, an image or
//! an Endorser reports, given what happened. No I/O and no clock: the
//! callers pass `now`, so the same event gives the same status from
//! `vmlisub sync` and from the operator.

use std::path::Path;

use jiff::Timestamp;

use super::failure::{Concern, Failure};
use super::inputs::ObjectKey;
use super::view::GoodList;
use crate::api::conditions::{self, Condition, ConditionStatus, types};
use crate::api::{
    Artifact, DownloadProgress, Endorser, EndorserStatus, ExpiredRecord, ImageListSubscription,
    ImageListSubscriptionStatus, ImagePhase, ImageSubscriptionStatus, ImageSummary, ListSigner,
    ListStatus, MAX_HISTORY, RejectedImageReport,
};
use crate::imagelist::{self, Image, Sha512Hex};
use crate::store::{ExpireReason, ImageKey};
use crate::transfer::redact_url;
use crate::trust;

fn rfc3339(at: Timestamp) -> String {
    imagelist::format_timestamp(at)
}

/// Sets condition `type_` to True or False (the transition time moves
/// only when the status flips).
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let status = if ok {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    conditions::set_condition(
        conditions,
        Condition::new(type_, status, reason, message, now),
    );
}

/// The informational fields of an image, by their list keys.
pub fn summary_of(image: &Image) -> ImageSummary {
    // One serialisation gives every key the list used.
    let value = serde_json::to_value(image).unwrap_or_default();
    let text = |key: &str| -> String {
        value
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_default()
    };
    ImageSummary {
        identifier: image.identifier.as_str().to_string(),
        title: image.title.clone(),
        version: text("hv:version"),
        // Shown to everyone who may read the object: no credentials.
        uri: redact_url(&image.uri),
        size: image.size,
        sha512: image.sha512.as_str().to_string(),
        os: text("sl:os"),
        os_version: text("sl:osversion"),
        arch: text("sl:arch"),
        hypervisor: text("hv:hypervisor"),
        format: text("hv:format"),
        expires: image.expires.map(rfc3339),
    }
}

/// `status.list` of a newly accepted list.
pub fn list_status(good: &GoodList, signer: &trust::Signer, now: Timestamp) -> ListStatus {
    let list = &good.parsed.list;
    ListStatus {
        identifier: list.identifier.as_str().to_string(),
        title: list.title.clone(),
        version: list.version.clone(),
        created: rfc3339(list.created),
        expires: rfc3339(list.expires),
        uri: redact_url(&list.uri),
        vo: list.vo.clone(),
        signer: ListSigner {
            subject: signer.subject.clone(),
            issuer: signer.issuer.clone(),
            serial: signer.serial.clone(),
            not_after: rfc3339(signer.not_after),
        },
        digest: format!("sha512:{}", good.digest.as_str()),
        imported_at: rfc3339(now),
    }
}

/// Refused images listed in a list's status (the rest are counted).
pub const MAX_REJECTED_SHOWN: usize = 20;

/// Where a stored list's content is kept and served.
pub fn list_artifact(
    base_url: Option<&str>,
    path: &Path,
    key: &ObjectKey,
    content: &[u8],
    now: Timestamp,
) -> Artifact {
    use sha2::Digest as _;
    let digest: [u8; 64] = sha2::Sha512::digest(content).into();
    Artifact {
        path: path.display().to_string(),
        url: base_url
            .map(|base| {
                format!(
                    "{}/lists/{}/{}.json",
                    base.trim_end_matches('/'),
                    key.namespace,
                    key.name
                )
            })
            .unwrap_or_default(),
        digest: format!("sha512:{}", Sha512Hex::from_digest(&digest).as_str()),
        size: content.len() as u64,
        last_update_time: rfc3339(now),
        format: String::new(),
        virtual_size: None,
    }
}

/// How far a fetched list got before it was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its signature, certificate chain or CRL check failed.
    Signature,
    /// It verifies, but its content was refused (unparseable, or by the
    /// update rules).
    Content,
}

/// A list stands (accepted now, or the stored one still good): every
/// condition True, its images listed.
pub fn list_good(status: &mut ImageListSubscriptionStatus, good: &GoodList, now: Timestamp) {
    let conditions = &mut status.conditions;
    set(
        conditions,
        types::SIGNATURE_VERIFIED,
        true,
        "Verified",
        "",
        now,
    );
    set(conditions, types::ENDORSED, true, "Endorsed", "", now);
    set(
        conditions,
        types::READY,
        true,
        "Succeeded",
        &format!(
            "list version {} with {} images",
            good.parsed.list.version,
            good.parsed.list.images.len()
        ),
        now,
    );
    conditions::remove_condition(conditions, types::STALLED);
    conditions::remove_condition(conditions, types::RECONCILING);
    status.image_count = good.parsed.list.images.len() as i64;
    status.rejected_image_count = good.parsed.rejected.len() as i64;
    status.rejected_images = good
        .parsed
        .rejected
        .iter()
        .take(MAX_REJECTED_SHOWN)
        .map(|r| RejectedImageReport {
            index: r.index as u64,
            identifier: r.identifier.clone(),
            reason: r.reason.clone(),
            message: r.message.clone(),
        })
        .collect();
}

/// A list failed: Ready False with the failure's reason; the domain
/// condition it falsifies follows it. `refused` says how far a fetched
/// list got (`None`: nothing was fetched, so the failure is the stored
/// list's). A withdrawing failure empties the image listing.
pub fn list_failed(
    status: &mut ImageListSubscriptionStatus,
    failure: &Failure,
    refused: Option<Refused>,
    now: Timestamp,
) {
    let reason = failure.condition_reason();
    let conditions = &mut status.conditions;
    set(
        conditions,
        types::READY,
        false,
        &reason,
        &failure.message,
        now,
    );
    let endorsement_failed = failure.concern == Concern::Endorsement;
    let signature_failed = match refused {
        // The served list's signature verifies; its content was refused
        // (rollback, replay, expired, unauthorised...).
        Some(Refused::Content) => {
            set(
                conditions,
                types::SIGNATURE_VERIFIED,
                true,
                "Verified",
                "",
                now,
            );
            if !endorsement_failed {
                set(conditions, types::ENDORSED, true, "Endorsed", "", now);
            }
            false
        }
        Some(Refused::Signature) => true,
        None => failure.concern == Concern::Signature,
    };
    if signature_failed {
        set(
            conditions,
            types::SIGNATURE_VERIFIED,
            false,
            &reason,
            &failure.message,
            now,
        );
    }
    if endorsement_failed {
        set(
            conditions,
            types::ENDORSED,
            false,
            &reason,
            &failure.message,
            now,
        );
    }
    if failure.withdraws().is_some() {
        status.image_count = 0;
    }
    // kstatus: Stalled when only a spec change can help, otherwise
    // Reconciling while the list is retried.
    if failure.is_spec_error() {
        set(
            conditions,
            types::STALLED,
            true,
            &reason,
            &format!("{} (fix the spec)", failure.message),
            now,
        );
        conditions::remove_condition(conditions, types::RECONCILING);
    } else {
        set(
            conditions,
            types::RECONCILING,
            true,
            "ProgressingWithRetry",
            &failure.message,
            now,
        );
        conditions::remove_condition(conditions, types::STALLED);
    }
}

/// Where clients fetch a cached image: its path on the volume and, with
/// an artifact server, its URL.
pub fn artifact(
    base_url: Option<&str>,
    path: &Path,
    key: &ImageKey,
    sha512: &Sha512Hex,
    size: u64,
    verified_at: Timestamp,
) -> Artifact {
    Artifact {
        path: path.display().to_string(),
        url: base_url
            .map(|base| {
                format!(
                    "{}/images/{}/{}/{}",
                    base.trim_end_matches('/'),
                    key.namespace,
                    key.subscription,
                    key.image
                )
            })
            .unwrap_or_default(),
        digest: format!("sha512:{}", sha512.as_str()),
        size,
        last_update_time: rfc3339(verified_at),
        format: String::new(),
        virtual_size: None,
    }
}

/// `artifact` with the disk format and virtual size of `disk` (see
/// [`crate::disk::inspect`]).
pub fn with_disk(mut artifact: Artifact, disk: Option<crate::disk::DiskInfo>) -> Artifact {
    if let Some(disk) = disk {
        artifact.format = disk.format.as_str().to_string();
        artifact.virtual_size = disk.virtual_size;
    }
    artifact
}

/// The image is cached and verified.
pub fn image_available(status: &mut ImageSubscriptionStatus, artifact: Artifact, now: Timestamp) {
    status.phase = ImagePhase::Available;
    status.progress = None;
    status.artifact = Some(artifact);
    set(
        &mut status.conditions,
        types::AVAILABLE,
        true,
        "Verified",
        "",
        now,
    );
    conditions::remove_condition(&mut status.conditions, types::RECONCILING);
    summarize(status, now);
}

/// Ready follows Available (or an ongoing download).
fn summarize(status: &mut ImageSubscriptionStatus, now: Timestamp) {
    conditions::summarize_ready(&mut status.conditions, types::AVAILABLE, "Available", now);
}

/// The image is not available (`phase` says how), for `reason`; Ready
/// says so too, unless a download is in progress (`Reconciling`).
pub fn image_unavailable(
    status: &mut ImageSubscriptionStatus,
    phase: ImagePhase,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    status.phase = phase;
    set(
        &mut status.conditions,
        types::AVAILABLE,
        false,
        reason,
        message,
        now,
    );
    summarize(status, now);
}

/// A download is in progress.
pub fn image_downloading(
    status: &mut ImageSubscriptionStatus,
    progress: DownloadProgress,
    now: Timestamp,
) {
    status.phase = ImagePhase::Downloading;
    status.progress = Some(progress);
    set(
        &mut status.conditions,
        types::RECONCILING,
        true,
        "Downloading",
        "downloading the image",
        now,
    );
    summarize(status, now);
}

/// A download failed.
pub fn image_failed(status: &mut ImageSubscriptionStatus, failure: &Failure, now: Timestamp) {
    status.progress = None;
    conditions::remove_condition(&mut status.conditions, types::RECONCILING);
    image_unavailable(
        status,
        ImagePhase::Failed,
        &failure.condition_reason(),
        &failure.message,
        now,
    );
}

/// The image left the endorsed area: no artifact any more; Expired once
/// it had an image, Pending if it never matched anything.
pub fn image_withdrawn(
    status: &mut ImageSubscriptionStatus,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    status.artifact = None;
    status.progress = None;
    let phase = if status.history.is_empty() && status.image.is_none() {
        ImagePhase::Pending
    } else {
        ImagePhase::Expired
    };
    conditions::remove_condition(&mut status.conditions, types::RECONCILING);
    image_unavailable(status, phase, reason, message, now);
}

/// Records an expired version (newest first, at most [`MAX_HISTORY`]).
pub fn record_history(
    status: &mut ImageSubscriptionStatus,
    reason: ExpireReason,
    archived: &str,
    now: Timestamp,
) {
    let sha512 = status
        .artifact
        .as_ref()
        .map(|a| a.digest.clone())
        .unwrap_or_default();
    status.history.insert(
        0,
        ExpiredRecord {
            sha512,
            reason: reason.code().into(),
            expired_at: rfc3339(now),
            archived_path: archived.to_string(),
        },
    );
    status.history.truncate(MAX_HISTORY);
}

/// The lists (by name, sorted) an Endorser authorises: those that name it,
/// and the `autoEndorse` list it was recorded for (`auto_for`). `lists`
/// are the lists of its namespace.
pub fn authorises<'l>(
    endorser: &str,
    auto_for: Option<&str>,
    lists: impl IntoIterator<Item = (&'l str, &'l ImageListSubscription)>,
) -> Vec<String> {
    let mut names: Vec<String> = lists
        .into_iter()
        .filter(|(name, list)| {
            list.spec.endorsers.iter().any(|e| e.name == endorser)
                || (list.spec.auto_endorse && auto_for == Some(*name))
        })
        .map(|(name, _)| name.to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// An Endorser's status: Ready when it has credentials and every one is
/// a one-line DN pair.
pub fn endorser_status(
    previous: Option<&EndorserStatus>,
    endorser: &Endorser,
    authorises: Vec<String>,
    now: Timestamp,
) -> EndorserStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = endorser.metadata.generation;
    status.credential_count = endorser.spec.credentials.len() as i64;
    status.authorises = authorises;
    let malformed: Vec<&str> = endorser
        .spec
        .credentials
        .iter()
        .filter(|c| !trust::dn::is_one_line_dn(&c.subject) || !trust::dn::is_one_line_dn(&c.issuer))
        .map(|c| c.subject.as_str())
        .collect();
    let (ok, reason, message) = if endorser.spec.credentials.is_empty() {
        (
            false,
            "NoCredentials",
            "no credentials: this Endorser authorises nobody".to_string(),
        )
    } else if malformed.is_empty() {
        (true, "CredentialsValid", String::new())
    } else {
        (
            false,
            "CredentialsInvalid",
            format!("not one-line DNs: {}", malformed.join(", ")),
        )
    };
    set(
        &mut status.conditions,
        types::READY,
        ok,
        reason,
        &message,
        now,
    );
    status
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
