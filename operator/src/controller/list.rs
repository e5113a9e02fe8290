//! The ImageListSubscription reconciler: the sync engine's list step
//! (fetch when due, verify, authorise, decide, keep the last good list),
//! then the list's standing is published to the image reconciles,
//! AutoSubscribe's ImageSubscriptions are created or removed, and cached
//! images that no ImageSubscription claims any more are expired.

use kube::runtime::events::EventType;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource as _, ResourceExt as _};

use super::{Context, ControllerError, MANAGER, REQUESTED_AT, key_of};
use crate::api::conditions;
use crate::api::{Endorser, ImageListSubscription, ImageSubscription};
use crate::imagelist::{self, Image};
use crate::reason::Reason as _;
use crate::store::{Desired, ExpireReason, SubscriptionState};
use crate::sync::engine::{GoodList, ListView, auto_selected, cache_list_key, endorsed_state};
use crate::sync::manifest::{Manifests, ObjectKey, SecretData, is_valid_name};

pub const FINALIZER: &str = "vmli.hepix.org/cleanup";
/// Marks the ImageSubscriptions AutoSubscribe created.
pub const LIST_LABEL: &str = "vmli.hepix.org/list";

pub async fn reconcile(
    list: Arc<ImageListSubscription>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    tracing::debug!(list = %list.name_any(), "reconcile: waiting for caches");
    context.wait_for_caches().await;
    tracing::debug!(list = %list.name_any(), "reconcile: start");
    let started = Instant::now();
    let namespace = list
        .namespace()
        .ok_or(ControllerError::MissingField("metadata.namespace"))?;
    let api: Api<ImageListSubscription> = Api::namespaced(context.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, list, |event| async {
        match event {
            Finalizer::Apply(list) => apply(&list, &context).await,
            Finalizer::Cleanup(list) => cleanup(&list, &context).await,
        }
    })
    .await
    .map_err(ControllerError::from);
    context
        .metrics
        .reconciled("ImageListSubscription", started, &result);
    result
}

pub fn error_policy(
    list: Arc<ImageListSubscription>,
    error: &ControllerError,
    context: Arc<Context>,
) -> Action {
    context.backoff(&key_of(&*list), error)
}

/// The lists that name `endorser`: they are re-evaluated when it changes.
pub fn lists_using(
    lists: &Store<ImageListSubscription>,
    endorser: &Endorser,
) -> Vec<ObjectRef<ImageListSubscription>> {
    let namespace = endorser.namespace();
    let name = endorser.name_any();
    lists
        .state()
        .iter()
        .filter(|list| list.namespace() == namespace)
        .filter(|list| {
            list.spec.endorsers.iter().any(|e| e.name == name)
                || (list.spec.auto_endorse && name == auto_endorser_name(&list.name_any()))
        })
        .map(|list| ObjectRef::from_obj(&**list))
        .collect()
}

/// The Endorser that `autoEndorse` records for a list.
pub fn auto_endorser_name(list: &str) -> String {
    let name = format!("{list}-auto");
    if name.len() <= 253 {
        name
    } else {
        format!("auto-{}", short_hash(list))
    }
}

fn short_hash(text: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Everything the engine needs about one list, from the watch caches and
/// (for Secrets and ConfigMaps, which are not watched) from the API.
async fn manifests_for(
    list: &ImageListSubscription,
    key: &ObjectKey,
    context: &Context,
) -> Result<Manifests, ControllerError> {
    let mut manifests = super::inputs::transfer_manifests(list, key, context).await?;
    for endorser in context.endorsers.state() {
        if endorser.namespace().as_deref() == Some(key.namespace.as_str()) {
            manifests
                .endorsers
                .insert(key_of(&*endorser), (*endorser).clone());
        }
    }
    if list.spec.auto_endorse {
        // The recorded first signer counts as one of the list's endorsers.
        let auto = auto_endorser_name(&key.name);
        if manifests
            .endorsers
            .contains_key(&ObjectKey::new(&key.namespace, &auto))
            && !list.spec.endorsers.iter().any(|e| e.name == auto)
        {
            let mut list = list.clone();
            list.spec
                .endorsers
                .push(crate::api::LocalObjectReference { name: auto });
            manifests.lists.insert(key.clone(), list);
        }
    }
    for image in context.images.state() {
        if image.namespace().as_deref() == Some(key.namespace.as_str())
            && image.spec.subscription_ref.name == key.name
            && image.metadata.deletion_timestamp.is_none()
        {
            manifests.images.insert(key_of(&*image), (*image).clone());
        }
    }
    if let Some(reference) = list.spec.trust.as_ref().and_then(|t| t.secret_ref.as_ref()) {
        let secrets: Api<Secret> = Api::namespaced(context.client.clone(), &key.namespace);
        if let Some(data) = super::inputs::secret_data(&secrets, &reference.name).await? {
            manifests
                .secrets
                .insert(ObjectKey::new(&key.namespace, &reference.name), data);
        }
    }
    if let Some(reference) = list
        .spec
        .trust
        .as_ref()
        .and_then(|t| t.config_map_ref.as_ref())
    {
        let config_maps: Api<ConfigMap> = Api::namespaced(context.client.clone(), &key.namespace);
        if let Some(config_map) = config_maps.get_opt(&reference.name).await? {
            let mut values = BTreeMap::new();
            for (k, v) in config_map.data.unwrap_or_default() {
                values.insert(k, v.into_bytes());
            }
            for (k, v) in config_map.binary_data.unwrap_or_default() {
                values.insert(k, v.0);
            }
            manifests.config_maps.insert(
                ObjectKey::new(&key.namespace, &reference.name),
                SecretData { values },
            );
        }
    }
    Ok(manifests)
}

async fn apply(list: &ImageListSubscription, context: &Context) -> Result<Action, ControllerError> {
    let key = key_of(list);
    if list.spec.suspend {
        tracing::debug!(list = %key, "suspended");
        return Ok(Action::await_change());
    }
    let now = Timestamp::now();
    let current = list.status.clone();
    let requested = list.annotations().get(REQUESTED_AT).cloned();
    let handled = current
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.clone());
    let spec_changed =
        current.as_ref().and_then(|s| s.observed_generation) != list.metadata.generation;
    let force = spec_changed || (requested.is_some() && requested != handled);

    let manifests = manifests_for(list, &key, context).await?;
    tracing::debug!(list = %key, force, "refreshing");
    let effective = manifests.lists.get(&key).unwrap_or(list);
    let refresh = context
        .engine
        .refresh_list(&manifests, &key, effective, force, now)
        .await;
    for line in &refresh.lines {
        tracing::info!(list = %key, "{line}");
    }
    if refresh.fetched {
        context.engine.save_state()?;
    }

    // autoEndorse: the first valid signer becomes an Endorser.
    if list.spec.auto_endorse
        && let ListView::Good(_) = &refresh.view
        && let Some(signer) = refresh.status.list.as_ref().map(|l| l.signer.clone())
    {
        record_auto_endorser(list, &key, &signer, &manifests, context).await?;
    }

    let mut status = refresh.status.clone();
    status.observed_generation = list.metadata.generation;
    status.last_handled_reconcile_at = requested.or(handled);
    if list.spec.auto_endorse {
        let auto = auto_endorser_name(&key.name);
        crate::sync::engine::set(
            &mut status.conditions,
            "AutoEndorsed",
            true,
            "TrustOnFirstUse",
            &format!(
                "autoEndorse is on: the first valid signer was recorded as Endorser {auto}; review it"
            ),
            now,
        );
    } else {
        conditions::remove_condition(&mut status.conditions, "AutoEndorsed");
    }
    // Stalled: failures only a spec change can cure; not retried until then.
    let stalled = match &refresh.view {
        ListView::Unavailable(failure) | ListView::Withdrawn(_, failure)
            if failure.is_spec_error() =>
        {
            Some(failure.clone())
        }
        _ => None,
    };
    match (&stalled, refresh.fetched) {
        (Some(failure), _) => crate::sync::engine::set(
            &mut status.conditions,
            "Stalled",
            true,
            &failure.condition_reason(),
            &format!("{} (fix the spec)", failure.message),
            now,
        ),
        // Not fetched: the stored-list check says nothing about the spec.
        (None, false) => {
            if let Some(previous) = current
                .as_ref()
                .and_then(|c| conditions::find(&c.conditions, "Stalled"))
            {
                conditions::set_condition(&mut status.conditions, previous.clone());
            }
        }
        (None, true) => {
            conditions::remove_condition(&mut status.conditions, "Stalled");
        }
    }
    // A fetch alone (same list, 304) is not a change worth a write.
    let mut comparable = status.clone();
    if let Some(current) = &current {
        comparable.last_fetch_time = current.last_fetch_time.clone();
    }
    let changed = current.as_ref() != Some(&comparable);
    // The standing first: the status write below wakes the image
    // reconciles, which must see the new list.
    context.set_view(key.clone(), Some(refresh.view.clone()));
    if changed {
        context
            .apply_status(list, current.as_ref(), &status)
            .await?;
        list_events(list, current.as_ref(), &status, &refresh.view, context).await;
    }
    if let ListView::Withdrawn(_, failure) | ListView::Unavailable(failure) = &refresh.view
        && refresh.fetched
    {
        context
            .metrics
            .verification_failures
            .with_label_values(&[failure.reason.as_ref()])
            .inc();
    }
    if let Some(info) = &status.list {
        let gauge = |value: &str| imagelist::parse_timestamp(value).map(|t| t.as_second() as f64);
        if let Ok(expires) = gauge(&info.expires) {
            context
                .metrics
                .list_expiry
                .with_label_values(&[key.namespace.as_str(), key.name.as_str()])
                .set(expires);
        }
        if let Ok(not_after) = gauge(&info.signer.not_after) {
            context
                .metrics
                .signer_not_after
                .with_label_values(&[key.namespace.as_str(), key.name.as_str()])
                .set(not_after);
        }
    }

    if let ListView::Good(good) = &refresh.view {
        auto_subscribe(list, &key, good, context).await?;
    }
    sweep(list, &key, &manifests, &refresh.view, context, now).await;

    // Next: the next fetch, or the list's expiry if sooner.
    let mut next = refresh.next_fetch.unwrap_or(now + Duration::from_secs(300));
    if let ListView::Good(good) = &refresh.view {
        next = next.min(good.parsed.list.expires);
    }
    let wait = next
        .duration_since(now)
        .try_into()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1));
    context.clear_failures(&key);
    if stalled.is_some() {
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(wait))
}

/// One Event per state change: a new list, a rejection (by its reason),
/// a withdrawal.
async fn list_events(
    list: &ImageListSubscription,
    before: Option<&crate::api::ImageListSubscriptionStatus>,
    after: &crate::api::ImageListSubscriptionStatus,
    view: &ListView,
    context: &Context,
) {
    let old_digest = before
        .and_then(|s| s.list.as_ref())
        .map(|l| l.digest.as_str());
    if let Some(info) = &after.list
        && old_digest != Some(info.digest.as_str())
    {
        context
            .event(
                list,
                EventType::Normal,
                "ListUpdated",
                "Import",
                format!(
                    "list {} version {} with {} images, signed by {}",
                    info.identifier, info.version, after.image_count, info.signer.subject
                ),
            )
            .await;
    }
    let ready = |status: Option<&crate::api::ImageListSubscriptionStatus>| {
        status
            .and_then(|s| conditions::find(&s.conditions, "Ready"))
            .map(|c| (c.status, c.reason.clone()))
    };
    let (old, new) = (ready(before), ready(Some(after)));
    if old != new
        && let Some(condition) = conditions::find(&after.conditions, "Ready")
        && condition.status != conditions::ConditionStatus::True
    {
        let action = match view {
            ListView::Withdrawn(..) => "Withdraw",
            _ => "Reject",
        };
        context
            .event(
                list,
                EventType::Warning,
                &condition.reason,
                action,
                condition.message.clone(),
            )
            .await;
    }
}

/// Records the list's signer as the Endorser `<list>-auto` (once).
async fn record_auto_endorser(
    list: &ImageListSubscription,
    key: &ObjectKey,
    signer: &crate::api::ListSigner,
    manifests: &Manifests,
    context: &Context,
) -> Result<(), ControllerError> {
    let name = auto_endorser_name(&key.name);
    if manifests
        .endorsers
        .contains_key(&ObjectKey::new(&key.namespace, &name))
    {
        return Ok(());
    }
    let api: Api<Endorser> = Api::namespaced(context.client.clone(), &key.namespace);
    let endorser = serde_json::json!({
        "apiVersion": "vmli.hepix.org/v1alpha1",
        "kind": "Endorser",
        "metadata": {"name": name, "labels": {LIST_LABEL: key.name}},
        "spec": {
            "description": format!("recorded by autoEndorse of ImageListSubscription {} (trust on first use)", key.name),
            "credentials": [{"subject": signer.subject, "issuer": signer.issuer}],
        },
    });
    api.patch(
        &name,
        &PatchParams::apply(MANAGER),
        &Patch::Apply(&endorser),
    )
    .await?;
    context
        .event(
            list,
            EventType::Warning,
            "AutoEndorsed",
            "Endorse",
            format!(
                "trusting {} (issuer {}) on first use as Endorser {name}",
                signer.subject, signer.issuer
            ),
        )
        .await;
    Ok(())
}

/// The name of the ImageSubscription AutoSubscribe makes for `image`.
pub fn owned_name(list: &str, image: &Image) -> String {
    let id = image.identifier.as_str().to_ascii_lowercase();
    let candidate = format!("{list}-{id}");
    if candidate.len() <= 253 && is_valid_name(&candidate) {
        candidate
    } else {
        format!("{list}-{}", short_hash(image.identifier.as_str()))
    }
}

/// Creates (server-side apply) the ImageSubscriptions AutoSubscribe
/// selects and deletes owned ones whose image left the selection.
async fn auto_subscribe(
    list: &ImageListSubscription,
    key: &ObjectKey,
    good: &GoodList,
    context: &Context,
) -> Result<(), ControllerError> {
    let uid = list.uid();
    let selected: Vec<&Image> = auto_selected(list, &good.parsed.list.images).collect();
    let wanted: BTreeSet<String> = selected
        .iter()
        .map(|image| owned_name(&key.name, image))
        .collect();
    let api: Api<ImageSubscription> = Api::namespaced(context.client.clone(), &key.namespace);
    let existing: Vec<Arc<ImageSubscription>> = context
        .images
        .state()
        .into_iter()
        .filter(|image| image.namespace().as_deref() == Some(key.namespace.as_str()))
        .filter(|image| {
            image
                .owner_references()
                .iter()
                .any(|owner| Some(&owner.uid) == uid.as_ref())
        })
        .collect();
    let existing_names: BTreeSet<String> = existing.iter().map(|i| i.name_any()).collect();
    let Some(owner) = list.controller_owner_ref(&()) else {
        return Err(ControllerError::MissingField("metadata.uid"));
    };
    for image in selected {
        let name = owned_name(&key.name, image);
        if existing_names.contains(&name) {
            continue;
        }
        let object = serde_json::json!({
            "apiVersion": "vmli.hepix.org/v1alpha1",
            "kind": "ImageSubscription",
            "metadata": {
                "name": name,
                "labels": {LIST_LABEL: key.name},
                "ownerReferences": [owner],
            },
            "spec": {
                "subscriptionRef": {"name": key.name},
                "identifier": image.identifier.as_str(),
            },
        });
        api.patch(&name, &PatchParams::apply(MANAGER), &Patch::Apply(&object))
            .await?;
        tracing::info!(list = %key, image = %name, "AutoSubscribe: created");
    }
    for image in existing {
        let name = image.name_any();
        if !wanted.contains(&name) && image.metadata.deletion_timestamp.is_none() {
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => tracing::info!(list = %key, image = %name, "AutoSubscribe: removed"),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

/// Expires cached images of this subscription that no ImageSubscription
/// claims (their subscriptions were removed while the operator was down,
/// or their finalizer was forced away). Claimed images are left to their
/// own reconciles, which record the expiry and its Events.
async fn sweep(
    list: &ImageListSubscription,
    key: &ObjectKey,
    manifests: &Manifests,
    view: &ListView,
    context: &Context,
    now: Timestamp,
) {
    let Some(subscription) = cache_list_key(key) else {
        return;
    };
    let state = match view {
        ListView::Good(good) => endorsed_state(manifests, key, list, good),
        ListView::Withdrawn(reason, _) => SubscriptionState::Withdrawn(*reason),
        ListView::Unavailable(_) => return,
    };
    let claimed = super::claims::claimed_keys(context, key, view, None, true);
    let Ok(inventory) = context.engine.store().inventory_of(&subscription) else {
        return;
    };
    let plan = crate::store::plan(
        &inventory,
        &[Desired {
            subscription,
            state,
        }],
        now,
    );
    for (image, reason) in plan.expire {
        if claimed.contains(&image) {
            continue;
        }
        match context.engine.store().expire(&image, reason, now) {
            Ok(entry) => {
                tracing::info!(image = %image, reason = reason.code(), archived = %entry.name, "expired unclaimed image")
            }
            Err(err) => {
                tracing::warn!(image = %image, error = %err, reason = err.reason(), "expiry failed")
            }
        }
    }
}

/// Deletion: forget the stored list and expire what no ImageSubscription
/// claims (owned ImageSubscriptions are garbage-collected and archive
/// their own images through their finalizers).
async fn cleanup(
    list: &ImageListSubscription,
    context: &Context,
) -> Result<Action, ControllerError> {
    let key = key_of(list);
    context.engine.forget_list(&key)?;
    context.set_view(key.clone(), None);
    let view = ListView::withdrawn(
        ExpireReason::SubscriptionGone,
        "the ImageListSubscription was deleted",
    );
    sweep(
        list,
        &key,
        &Manifests::default(),
        &view,
        context,
        Timestamp::now(),
    )
    .await;
    tracing::info!(list = %key, "deleted: stored list forgotten");
    Ok(Action::await_change())
}
