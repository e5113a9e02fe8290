//! The list reconcile's status and Event rules, without a cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use super::*;
use crate::api::conditions::{ConditionStatus, find, types};
use crate::api::{ListSigner, ListStatus};
use crate::store::ExpireReason;
use crate::subscription::status::set;
use crate::subscription::{Failure, GoodList, ListRefresh};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap()
}

fn good() -> GoodList {
    crate::subscription::view::fixture(0)
}

fn refresh(view: ListView, fetched: bool, status: ImageListSubscriptionStatus) -> ListRefresh {
    ListRefresh {
        status,
        view,
        lines: Vec::new(),
        fetched,
        next_fetch: None,
    }
}

fn observed(current: Option<&ImageListSubscriptionStatus>) -> Observed<'_> {
    Observed {
        current,
        generation: Some(2),
        handled_request: None,
        auto_endorser: None,
    }
}

fn ready(status: &mut ImageListSubscriptionStatus, ok: bool, reason: &str) {
    set(&mut status.conditions, types::READY, ok, reason, "m", at(0));
}

#[test]
fn a_spec_error_stalls_and_a_fetch_that_succeeds_clears_it() {
    let refused = Failure::spec("scheme-refused", "ftp is not allowed");
    let mut after = ImageListSubscriptionStatus::default();
    crate::subscription::status::list_failed(&mut after, &refused, None, at(1));
    let published = publish(
        &observed(None),
        &refresh(ListView::Unavailable(refused), true, after),
        at(1),
    );
    assert!(published.stalled);
    let stalled = find(&published.status.conditions, types::STALLED).unwrap();
    assert_eq!(stalled.status, ConditionStatus::True);
    assert_eq!(stalled.reason, "SchemeRefused");
    assert!(stalled.message.ends_with("(fix the spec)"));
    assert!(find(&published.status.conditions, types::RECONCILING).is_none());

    let before = published.status;
    let mut fixed = before.clone();
    crate::subscription::status::list_good(&mut fixed, &good(), at(2));
    let published = publish(
        &observed(Some(&before)),
        &refresh(ListView::Good(Arc::new(good())), true, fixed),
        at(2),
    );
    assert!(!published.stalled);
    assert!(find(&published.status.conditions, types::STALLED).is_none());
    assert!(published.changed);
}

#[test]
fn a_transient_failure_is_reconciling_not_stalled() {
    let failure = Failure::transient("http-status", "HTTP 503");
    let mut after = ImageListSubscriptionStatus::default();
    crate::subscription::status::list_failed(&mut after, &failure, None, at(1));
    let published = publish(
        &observed(None),
        &refresh(ListView::Unavailable(failure), true, after),
        at(1),
    );
    assert!(!published.stalled);
    assert!(find(&published.status.conditions, types::STALLED).is_none());
    let reconciling = find(&published.status.conditions, types::RECONCILING).unwrap();
    assert_eq!(
        (reconciling.status, reconciling.reason.as_str()),
        (ConditionStatus::True, "ProgressingWithRetry")
    );
}

#[test]
fn a_fetch_moves_last_fetch_time_and_a_recheck_writes_nothing() {
    let mut before = ImageListSubscriptionStatus {
        observed_generation: Some(2),
        last_fetch_time: Some("1970-01-01T00:00:00Z".into()),
        ..Default::default()
    };
    ready(&mut before, true, "Succeeded");
    let mut after = before.clone();
    after.last_fetch_time = Some("1970-01-01T01:00:00Z".into());
    let published = publish(
        &observed(Some(&before)),
        &refresh(ListView::Good(Arc::new(good())), true, after),
        at(3600),
    );
    // A 304 of the same list: lastFetchTime says the publisher was asked.
    assert!(published.changed);
    assert_eq!(
        published.status.last_fetch_time.as_deref(),
        Some("1970-01-01T01:00:00Z")
    );
    // The stored list re-checked, nothing fetched: no write.
    let published = publish(
        &observed(Some(&before)),
        &refresh(ListView::Good(Arc::new(good())), false, before.clone()),
        at(3700),
    );
    assert!(!published.changed);
    // A new generation is a change.
    let mut newer = observed(Some(&before));
    newer.generation = Some(3);
    let published = publish(
        &newer,
        &refresh(ListView::Good(Arc::new(good())), true, before.clone()),
        at(3600),
    );
    assert!(published.changed);
}

#[test]
fn auto_endorse_is_announced_while_on() {
    let mut on = observed(None);
    on.auto_endorser = Some("cernvm-auto");
    let published = publish(
        &on,
        &refresh(
            ListView::Good(Arc::new(good())),
            true,
            ImageListSubscriptionStatus::default(),
        ),
        at(0),
    );
    let auto = find(&published.status.conditions, types::AUTO_ENDORSED).unwrap();
    assert_eq!(auto.reason, "TrustOnFirstUse");
    assert!(auto.message.contains("cernvm-auto"));
    let published = publish(
        &observed(Some(&published.status)),
        &refresh(
            ListView::Good(Arc::new(good())),
            true,
            published.status.clone(),
        ),
        at(1),
    );
    assert!(find(&published.status.conditions, types::AUTO_ENDORSED).is_none());
}

fn with_list(digest: &str) -> ImageListSubscriptionStatus {
    let mut status = ImageListSubscriptionStatus {
        list: Some(ListStatus {
            identifier: "id".into(),
            version: "7".into(),
            digest: digest.into(),
            signer: ListSigner {
                subject: "/CN=signer".into(),
                ..ListSigner::default()
            },
            ..ListStatus::default()
        }),
        image_count: 2,
        ..Default::default()
    };
    ready(&mut status, true, "Succeeded");
    status
}

#[test]
fn events_announce_a_new_list_once() {
    let view = ListView::Good(Arc::new(good()));
    let first = events(None, &with_list("sha512:a"), &view);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].reason, "ListUpdated");
    assert_eq!(first[0].type_, EventType::Normal);
    assert!(
        first[0]
            .note
            .contains("version 7 with 2 images, signed by /CN=signer")
    );
    assert!(events(Some(&with_list("sha512:a")), &with_list("sha512:a"), &view).is_empty());
}

#[test]
fn events_warn_once_per_rejection_and_name_a_withdrawal() {
    let before = with_list("sha512:a");
    let mut after = before.clone();
    ready(&mut after, false, "Rollback");
    let failure = Failure::transient("rollback", "older");
    let rejected = events(Some(&before), &after, &ListView::Unavailable(failure));
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].type_, EventType::Warning);
    assert_eq!(
        (rejected[0].reason.as_str(), rejected[0].action),
        ("Rollback", "Reject")
    );
    // The same rejection again: no second Event.
    let again = events(
        Some(&after),
        &after,
        &ListView::Unavailable(Failure::transient("rollback", "older")),
    );
    assert!(again.is_empty());

    let mut revoked = before.clone();
    ready(&mut revoked, false, "CertificateRevoked");
    let withdrawn = events(
        Some(&before),
        &revoked,
        &ListView::withdrawn(ExpireReason::SignerRevoked, "revoked"),
    );
    assert_eq!(withdrawn[0].action, "Withdraw");
}

/// `status.hooks` is the hooks step's: the list reconcile neither counts
/// it as a change (the core's status never has it) nor writes it.
#[test]
fn status_hooks_is_no_change_and_not_written_by_the_list_reconcile() {
    use crate::api::hooks::{HookFailure, HookStatus};
    let mut before = ImageListSubscriptionStatus {
        observed_generation: Some(2),
        ..Default::default()
    };
    ready(&mut before, true, "Succeeded");
    let core_status = before.clone();
    set(
        &mut before.conditions,
        crate::api::hooks::HOOK_JOBS_CONDITION,
        false,
        "HooksDisabled",
        "off",
        at(10),
    );
    ready(&mut before, true, "Succeeded");
    before.hooks = Some(HookStatus {
        last_run: None,
        last_error: Some(HookFailure {
            reason: "HooksDisabled".into(),
            ..HookFailure::default()
        }),
    });
    let published = publish(
        &observed(Some(&before)),
        &refresh(ListView::Good(Arc::new(good())), false, core_status),
        at(3700),
    );
    assert!(!published.changed, "an idle reconcile writes nothing");
    assert_eq!(published.status.hooks, before.hooks);
    assert_eq!(published.status.conditions, before.conditions);
    let written = serde_json::to_value(without_hooks(&published.status)).unwrap();
    assert!(written.get("hooks").is_none(), "{written}");
    assert!(
        !written.to_string().contains("HookJobs"),
        "the hooks step's condition is not the list reconcile's: {written}"
    );
    assert!(written.to_string().contains("Ready"));
}
