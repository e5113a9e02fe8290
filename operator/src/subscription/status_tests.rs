//! The status builders, against the rules of the API reference
//! (docs/operator.md, docs/reason-codes.md): which conditions a failure
//! falsifies, what a withdrawal clears, how history is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::api::conditions::{ConditionStatus, find, types};
use crate::api::{
    EndorserCredential, EndorserSpec, ImageListSubscriptionSpec, LocalObjectReference,
};
use crate::imagelist::Sha512Hex;
use crate::store::{ImageKey, ListKey, Namespace, SubscriptionName};
use crate::subscription::failure::Failure;
use crate::subscription::view::GoodList;
use crate::trust::VerifyError;
use serde_json::json;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap()
}

fn good(images: usize) -> GoodList {
    crate::subscription::view::fixture(images)
}

fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    find(conditions, type_)
}

fn is(conditions: &[Condition], type_: &str, status: ConditionStatus, reason: &str) {
    let found = condition(conditions, type_).unwrap_or_else(|| panic!("no {type_}"));
    assert_eq!(
        (found.status, found.reason.as_str()),
        (status, reason),
        "{type_}"
    );
}

#[test]
fn a_good_list_sets_every_condition_and_lists_its_images() {
    let mut status = ImageListSubscriptionStatus::default();
    set(
        &mut status.conditions,
        types::STALLED,
        true,
        "UrlInvalid",
        "x",
        at(0),
    );
    list_good(&mut status, &good(3), at(10));
    is(
        &status.conditions,
        types::READY,
        ConditionStatus::True,
        "Succeeded",
    );
    is(
        &status.conditions,
        types::SIGNATURE_VERIFIED,
        ConditionStatus::True,
        "Verified",
    );
    is(
        &status.conditions,
        types::ENDORSED,
        ConditionStatus::True,
        "Endorsed",
    );
    assert!(condition(&status.conditions, types::STALLED).is_none());
    assert_eq!(status.image_count, 3);
    assert_eq!(
        condition(&status.conditions, types::READY).unwrap().message,
        "list version 7 with 3 images"
    );
}

#[test]
fn a_refused_signature_falsifies_signature_verified_only() {
    let mut status = ImageListSubscriptionStatus::default();
    list_good(&mut status, &good(1), at(0));
    let failure = Failure::of(&VerifyError::SignatureInvalid);
    list_failed(&mut status, &failure, Some(Refused::Signature), at(5));
    is(
        &status.conditions,
        types::READY,
        ConditionStatus::False,
        "SignatureInvalid",
    );
    is(
        &status.conditions,
        types::SIGNATURE_VERIFIED,
        ConditionStatus::False,
        "SignatureInvalid",
    );
    is(
        &status.conditions,
        types::ENDORSED,
        ConditionStatus::True,
        "Endorsed",
    );
    // Not withdrawing: the last good list's images stay listed.
    assert_eq!(status.image_count, 1);
}

#[test]
fn refused_content_keeps_the_signature_verified() {
    let mut status = ImageListSubscriptionStatus::default();
    let failure = Failure::transient("rollback", "version 6 is older than 7");
    list_failed(&mut status, &failure, Some(Refused::Content), at(5));
    is(
        &status.conditions,
        types::READY,
        ConditionStatus::False,
        "Rollback",
    );
    is(
        &status.conditions,
        types::SIGNATURE_VERIFIED,
        ConditionStatus::True,
        "Verified",
    );
    is(
        &status.conditions,
        types::ENDORSED,
        ConditionStatus::True,
        "Endorsed",
    );
}

#[test]
fn an_unauthorised_signer_falsifies_endorsed() {
    let mut status = ImageListSubscriptionStatus::default();
    let failure = Failure::endorsement("endorser-not-authorised", "/CN=x is not an endorser");
    list_failed(&mut status, &failure, Some(Refused::Content), at(5));
    is(
        &status.conditions,
        types::SIGNATURE_VERIFIED,
        ConditionStatus::True,
        "Verified",
    );
    is(
        &status.conditions,
        types::ENDORSED,
        ConditionStatus::False,
        "EndorserNotAuthorised",
    );
}

#[test]
fn a_fetch_failure_leaves_the_domain_conditions_alone() {
    let mut status = ImageListSubscriptionStatus::default();
    list_good(&mut status, &good(2), at(0));
    let failure = Failure::transient("http-status", "HTTP 503 from https://example.org/list");
    list_failed(&mut status, &failure, None, at(5));
    is(
        &status.conditions,
        types::READY,
        ConditionStatus::False,
        &failure.condition_reason(),
    );
    is(
        &status.conditions,
        types::SIGNATURE_VERIFIED,
        ConditionStatus::True,
        "Verified",
    );
    assert_eq!(status.image_count, 2);
}

#[test]
fn a_withdrawal_clears_the_image_listing() {
    let mut status = ImageListSubscriptionStatus::default();
    list_good(&mut status, &good(2), at(0));
    let failure =
        Failure::of(&VerifyError::SignatureInvalid).withdrawing(ExpireReason::SignerRevoked);
    // Nothing fetched: the stored list's own failure.
    list_failed(&mut status, &failure, None, at(5));
    is(
        &status.conditions,
        types::SIGNATURE_VERIFIED,
        ConditionStatus::False,
        "SignatureInvalid",
    );
    assert_eq!(status.image_count, 0);
}

#[test]
fn transition_times_move_only_when_the_status_flips() {
    let mut status = ImageListSubscriptionStatus::default();
    list_good(&mut status, &good(1), at(0));
    list_good(&mut status, &good(2), at(100));
    let ready = condition(&status.conditions, types::READY).unwrap();
    assert_eq!(ready.last_transition_time, "1970-01-01T00:00:00Z");
    assert_eq!(ready.message, "list version 7 with 2 images");
}

fn image_key() -> ImageKey {
    ListKey::new(
        Namespace::new("grid").unwrap(),
        SubscriptionName::new("cernvm").unwrap(),
    )
    .image(crate::imagelist::ImageId::new("img-0").unwrap())
}

#[test]
fn artifact_urls_name_the_cache_key_under_the_base() {
    let sha = Sha512Hex::from_digest(&[1; 64]);
    let artifact = artifact(
        Some("http://vmlisub.vmlisub.svc:8080/"),
        Path::new("/cache/endorsed/grid/cernvm/img-0/image"),
        &image_key(),
        &sha,
        42,
        at(60),
    );
    assert_eq!(
        artifact.url,
        "http://vmlisub.vmlisub.svc:8080/images/grid/cernvm/img-0"
    );
    assert_eq!(artifact.digest, format!("sha512:{}", sha.as_str()));
    assert_eq!(artifact.last_update_time, "1970-01-01T00:01:00Z");
    let without = super::artifact(None, Path::new("/x"), &image_key(), &sha, 1, at(0));
    assert_eq!(without.url, "");
}

#[test]
fn available_then_failed_then_withdrawn() {
    let mut status = ImageSubscriptionStatus::default();
    set(
        &mut status.conditions,
        types::RECONCILING,
        true,
        "Downloading",
        "",
        at(0),
    );
    let sha = Sha512Hex::from_digest(&[1; 64]);
    let art = artifact(None, Path::new("/x"), &image_key(), &sha, 1, at(0));
    image_available(&mut status, art, at(1));
    assert_eq!(status.phase, ImagePhase::Available);
    assert!(condition(&status.conditions, types::RECONCILING).is_none());
    is(
        &status.conditions,
        types::READY,
        ConditionStatus::True,
        "Available",
    );
    is(
        &status.conditions,
        types::AVAILABLE,
        ConditionStatus::True,
        "Verified",
    );

    let failure = Failure::transient("digest-mismatch", "sha512 differs");
    image_failed(&mut status, &failure, at(2));
    assert_eq!(status.phase, ImagePhase::Failed);
    is(
        &status.conditions,
        types::READY,
        ConditionStatus::False,
        "DigestMismatch",
    );
    is(
        &status.conditions,
        types::AVAILABLE,
        ConditionStatus::False,
        "DigestMismatch",
    );

    // It had an artifact: the withdrawal is an expiry.
    status.image = Some(summary_of(&good(1).parsed.list.images[0]));
    image_withdrawn(&mut status, "RemovedFromList", "gone", at(3));
    assert_eq!(status.phase, ImagePhase::Expired);
    assert!(status.artifact.is_none());
    is(
        &status.conditions,
        types::READY,
        ConditionStatus::False,
        "RemovedFromList",
    );
}

#[test]
fn a_subscription_that_never_matched_stays_pending_when_withdrawn() {
    let mut status = ImageSubscriptionStatus::default();
    image_withdrawn(&mut status, "ListExpired", "the list expired", at(0));
    assert_eq!(status.phase, ImagePhase::Pending);
}

#[test]
fn history_is_newest_first_and_bounded() {
    let mut status = ImageSubscriptionStatus::default();
    for i in 0..(MAX_HISTORY as i64 + 5) {
        status.artifact = Some(Artifact {
            digest: format!("sha512:{i}"),
            ..Artifact::default()
        });
        record_history(
            &mut status,
            ExpireReason::RemovedFromList,
            &format!("e{i}"),
            at(i),
        );
    }
    assert_eq!(status.history.len(), MAX_HISTORY);
    assert_eq!(
        status.history[0].archived_path,
        format!("e{}", MAX_HISTORY + 4)
    );
    assert_eq!(status.history[0].reason, "removed-from-list");
    assert_eq!(
        status.history[0].sha512,
        format!("sha512:{}", MAX_HISTORY + 4)
    );
}

fn endorser(credentials: &[(&str, &str)]) -> Endorser {
    Endorser::new(
        "cernvm",
        EndorserSpec {
            credentials: credentials
                .iter()
                .map(|(subject, issuer)| EndorserCredential {
                    subject: subject.to_string(),
                    issuer: issuer.to_string(),
                })
                .collect(),
            description: None,
        },
    )
}

#[test]
fn endorser_readiness_follows_its_credentials() {
    let ok = endorser(&[("/DC=ch/DC=cern/CN=signer", "/DC=ch/DC=cern/CN=CA")]);
    let status = endorser_status(None, &ok, vec!["a".into()], at(0));
    is(
        &status.conditions,
        types::READY,
        ConditionStatus::True,
        "CredentialsValid",
    );
    assert_eq!(status.credential_count, 1);
    assert_eq!(status.authorises, ["a"]);

    let empty = endorser(&[]);
    let status = endorser_status(None, &empty, Vec::new(), at(0));
    is(
        &status.conditions,
        types::READY,
        ConditionStatus::False,
        "NoCredentials",
    );

    // A comma-separated RFC 4514 name is not the one-line form lists use.
    let rfc = endorser(&[("CN=signer,DC=cern,DC=ch", "/CN=CA")]);
    let status = endorser_status(None, &rfc, Vec::new(), at(0));
    is(
        &status.conditions,
        types::READY,
        ConditionStatus::False,
        "CredentialsInvalid",
    );
    // A value may contain `/` (a DN shape, not `starts_with('/')`).
    let slash = endorser(&[("/DC=ch/CN=host/node.cern.ch", "/CN=CA")]);
    let status = endorser_status(None, &slash, Vec::new(), at(0));
    is(
        &status.conditions,
        types::READY,
        ConditionStatus::True,
        "CredentialsValid",
    );
}

fn list(endorsers: &[&str], auto_endorse: bool) -> ImageListSubscription {
    ImageListSubscription::new(
        "l",
        ImageListSubscriptionSpec {
            url: "https://example.org/list".into(),
            endorsers: endorsers
                .iter()
                .map(|name| LocalObjectReference {
                    name: name.to_string(),
                })
                .collect(),
            auto_endorse,
            ..serde_json::from_value(json!({"url": "https://example.org/list"})).unwrap()
        },
    )
}

#[test]
fn an_endorser_authorises_the_lists_that_name_it_and_its_auto_list() {
    let (a, b, c) = (
        list(&["cernvm"], false),
        list(&["other"], false),
        list(&[], true),
    );
    let lists = [("b-list", &b), ("a-list", &a), ("c-list", &c)];
    assert_eq!(authorises("cernvm", None, lists), ["a-list"]);
    assert_eq!(
        authorises("cernvm", Some("c-list"), lists),
        ["a-list", "c-list"]
    );
    // The label alone does not authorise a list without autoEndorse.
    assert_eq!(authorises("x", Some("b-list"), lists), Vec::<String>::new());
}

#[test]
fn kstatus_stalled_for_spec_errors_reconciling_while_retrying() {
    let mut status = ImageListSubscriptionStatus::default();
    list_failed(
        &mut status,
        &Failure::spec("invalid-selector", "bad"),
        None,
        at(0),
    );
    is(
        &status.conditions,
        types::STALLED,
        ConditionStatus::True,
        "InvalidSelector",
    );
    assert!(condition(&status.conditions, types::RECONCILING).is_none());
    list_failed(
        &mut status,
        &Failure::transient("http-status", "503"),
        None,
        at(1),
    );
    is(
        &status.conditions,
        types::RECONCILING,
        ConditionStatus::True,
        "ProgressingWithRetry",
    );
    assert!(condition(&status.conditions, types::STALLED).is_none());
    list_good(&mut status, &good(1), at(2));
    assert!(condition(&status.conditions, types::RECONCILING).is_none());
    assert!(condition(&status.conditions, types::STALLED).is_none());
}

#[test]
fn image_and_list_uris_are_shown_without_credentials() {
    let good = good(1);
    let mut image = good.parsed.list.images[0].clone();
    image.uri = "https://alice:s3cret@mirror.example.org/img?token=abc&x=1".into();
    let summary = summary_of(&image);
    assert!(!summary.uri.contains("s3cret"), "{}", summary.uri);
    assert!(!summary.uri.contains("abc"), "{}", summary.uri);
    assert!(
        summary.uri.contains("mirror.example.org/img"),
        "{}",
        summary.uri
    );
}

#[test]
fn the_status_counts_images_and_caps_the_refused_ones() {
    let mut good = good(2);
    for index in 0..(MAX_REJECTED_SHOWN + 7) {
        good.parsed.rejected.push(crate::imagelist::RejectedImage {
            index,
            identifier: Some(format!("bad-{index}")),
            reason: "missing-field".into(),
            message: "no sha512".into(),
        });
    }
    let mut status = ImageListSubscriptionStatus::default();
    list_good(&mut status, &good, at(0));
    assert_eq!(status.image_count, 2);
    assert_eq!(status.rejected_images.len(), MAX_REJECTED_SHOWN);
    assert_eq!(status.rejected_image_count, MAX_REJECTED_SHOWN as i64 + 7);
    assert_eq!(
        status.rejected_images[0].identifier.as_deref(),
        Some("bad-0")
    );
    // Even 10,000 images keep the status to a few hundred bytes.
    let big = crate::subscription::view::fixture(10_000);
    let mut status = ImageListSubscriptionStatus::default();
    list_good(&mut status, &big, at(0));
    assert_eq!(status.image_count, 10_000);
    assert!(serde_json::to_vec(&status).unwrap().len() < 2_000);
}

#[test]
fn the_list_artifact_names_the_served_json() {
    let key = crate::subscription::ObjectKey::new("grid", "cernvm");
    let content = br#"{"hv:imagelist": {}}"#;
    let artifact = list_artifact(
        Some("http://vmlisub.svc:8080"),
        Path::new("/cache/state/lists/grid/cernvm.json"),
        &key,
        content,
        at(0),
    );
    assert_eq!(
        artifact.url,
        "http://vmlisub.svc:8080/lists/grid/cernvm.json"
    );
    assert_eq!(artifact.size, content.len() as u64);
    assert_eq!(
        artifact.digest,
        format!(
            "sha512:{}",
            crate::imagelist::Sha512Hex::from_digest(&{
                use sha2::Digest as _;
                let d: [u8; 64] = sha2::Sha512::digest(content).into();
                d
            })
            .as_str()
        )
    );
}
