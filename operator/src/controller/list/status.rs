//! The list's status after a refresh: pure, so every rule (Stalled only
//! for spec errors, a fetch alone is no change, the AutoEndorsed notice)
//! is unit-tested without a cluster.

use jiff::Timestamp;
use kube::runtime::events::EventType;

use crate::api::ImageListSubscriptionStatus;
use crate::api::conditions::{self, types};
use crate::api::hooks::HOOK_JOBS_CONDITION;
use crate::subscription::status::set;
use crate::subscription::{ListRefresh, ListView};

/// What the reconcile knows besides the refresh.
pub struct Observed<'a> {
    /// The status on the object now.
    pub current: Option<&'a ImageListSubscriptionStatus>,
    pub generation: Option<i64>,
    /// The `requestedAt` annotation handled by this reconcile.
    pub handled_request: Option<String>,
    /// `autoEndorse`'s Endorser name, when it is on.
    pub auto_endorser: Option<&'a str>,
}

/// The status to publish.
pub struct Published {
    pub status: ImageListSubscriptionStatus,
    /// Only a spec change (or a fix outside the spec) cures the failure:
    /// retried slowly.
    pub stalled: bool,
    /// Whether the status changed (a fetch always moves `lastFetchTime`;
    /// a reconcile that only re-checked the stored list writes nothing).
    pub changed: bool,
}

/// Builds the status from a refresh.
pub fn publish(observed: &Observed<'_>, refresh: &ListRefresh, now: Timestamp) -> Published {
    let mut status = refresh.status.clone();
    status.observed_generation = observed.generation;
    status.last_handled_reconcile_at = observed.handled_request.clone();
    match observed.auto_endorser {
        Some(auto) => set(
            &mut status.conditions,
            types::AUTO_ENDORSED,
            true,
            "TrustOnFirstUse",
            &format!(
                "autoEndorse is on: the first valid signer was recorded as Endorser {auto}; review it"
            ),
            now,
        ),
        None => {
            conditions::remove_condition(&mut status.conditions, types::AUTO_ENDORSED);
        }
    }
    // Stalled and Reconciling come with the refresh (kstatus, the same in
    // both drivers).
    let stalled = conditions::find(&status.conditions, types::STALLED).is_some();
    // A fetch is worth a write (lastFetchTime tells when the publisher was
    // last asked, 304 or not); a re-check of the stored list alone is not.
    // `status.hooks` is the hooks step's (its own field manager): carried
    // over so that it is no change here, and left out of the write (see
    // `without_hooks`).
    status.hooks = observed.current.and_then(|s| s.hooks.clone());
    if let Some(hook_jobs) = observed
        .current
        .and_then(|s| conditions::find(&s.conditions, HOOK_JOBS_CONDITION))
        && conditions::find(&status.conditions, HOOK_JOBS_CONDITION).is_none()
    {
        let at = observed
            .current
            .and_then(|s| {
                s.conditions
                    .iter()
                    .position(|c| c.type_ == HOOK_JOBS_CONDITION)
            })
            .unwrap_or(status.conditions.len())
            .min(status.conditions.len());
        status.conditions.insert(at, hook_jobs.clone());
    }
    let changed = observed.current != Some(&status);
    Published {
        status,
        stalled,
        changed,
    }
}

/// The status the list reconcile writes: everything but `hooks`, which
/// the hooks step writes under its own field manager (a server-side apply
/// without the field leaves it to its owner).
pub fn without_hooks(status: &ImageListSubscriptionStatus) -> ImageListSubscriptionStatus {
    let mut written = ImageListSubscriptionStatus {
        hooks: None,
        ..status.clone()
    };
    conditions::remove_condition(&mut written.conditions, HOOK_JOBS_CONDITION);
    written
}

/// An Event to emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEvent {
    pub type_: EventType,
    pub reason: String,
    pub action: &'static str,
    pub note: String,
}

/// One Event per state change: a new list, a rejection (by its reason),
/// a withdrawal.
pub fn events(
    before: Option<&ImageListSubscriptionStatus>,
    after: &ImageListSubscriptionStatus,
    view: &ListView,
) -> Vec<ListEvent> {
    let mut events = Vec::new();
    let old_digest = before
        .and_then(|s| s.list.as_ref())
        .map(|l| l.digest.as_str());
    if let Some(info) = &after.list
        && old_digest != Some(info.digest.as_str())
    {
        events.push(ListEvent {
            type_: EventType::Normal,
            reason: "ListUpdated".into(),
            action: "Import",
            note: format!(
                "list {} version {} with {} images, signed by {}",
                info.identifier, info.version, after.image_count, info.signer.subject
            ),
        });
    }
    let ready = |status: Option<&ImageListSubscriptionStatus>| {
        status
            .and_then(|s| conditions::find(&s.conditions, types::READY))
            .map(|c| (c.status, c.reason.clone()))
    };
    if ready(before) != ready(Some(after))
        && let Some(condition) = conditions::find(&after.conditions, types::READY)
        && condition.status != conditions::ConditionStatus::True
    {
        events.push(ListEvent {
            type_: EventType::Warning,
            reason: condition.reason.clone(),
            action: match view {
                ListView::Withdrawn(..) => "Withdraw",
                _ => "Reject",
            },
            note: condition.message.clone(),
        });
    }
    events
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
