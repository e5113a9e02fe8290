//! The list's automations: `autoEndorse` records the first valid signer
//! as an Endorser (trust on first use), and AutoSubscribe keeps one owned
//! ImageSubscription per selected image.

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource as _, ResourceExt as _};

use crate::api::names::is_valid_name;
use crate::api::{Endorser, ImageListSubscription, ImageSubscription, LIST_LABEL, ListSigner};
use crate::controller::{Context, ControllerError, MANAGER};
use crate::imagelist::Image;
use crate::subscription::select::auto_selected;
use crate::subscription::{GoodList, ObjectKey};

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

/// Records the list's signer as the Endorser `<list>-auto` (once).
pub async fn record_auto_endorser(
    list: &ImageListSubscription,
    key: &ObjectKey,
    signer: &ListSigner,
    context: &Context,
) -> Result<(), ControllerError> {
    let name = auto_endorser_name(&key.name);
    let exists = context.endorsers.state().iter().any(|endorser| {
        endorser.namespace().as_deref() == Some(key.namespace.as_str())
            && endorser.name_any() == name
    });
    if exists {
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
    context.event(
        list,
        EventType::Warning,
        "AutoEndorsed",
        "Endorse",
        format!(
            "trusting {} (issuer {}) on first use as Endorser {name}",
            signer.subject, signer.issuer
        ),
    );
    Ok(())
}

/// Creates (server-side apply) the ImageSubscriptions AutoSubscribe
/// selects, with the list's `imageExport` as their `spec.export`, and
/// deletes owned ones whose image left the selection.
pub async fn auto_subscribe(
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
    // An owned ImageSubscription is (re-)applied when it is missing or
    // its export differs from the list's `imageExport`; never while it is
    // being deleted (the apply would add the finalizer back, which the
    // API server refuses, and fail the whole pass).
    let export = list.spec.image_export.as_ref();
    let existing_names: BTreeSet<String> = existing
        .iter()
        .filter(|i| i.metadata.deletion_timestamp.is_some() || i.spec.export.as_ref() == export)
        .map(|i| i.name_any())
        .collect();
    let Some(owner) = list.controller_owner_ref(&()) else {
        return Err(ControllerError::MissingField("metadata.uid"));
    };
    for image in selected {
        let name = owned_name(&key.name, image);
        if existing_names.contains(&name) {
            continue;
        }
        let mut object = serde_json::json!({
            "apiVersion": "vmli.hepix.org/v1alpha1",
            "kind": "ImageSubscription",
            "metadata": {
                "name": name,
                "labels": {LIST_LABEL: key.name},
                "ownerReferences": [owner],
                // Born with the image reconciler's finalizer: adding it
                // afterwards would cost every new image one more write and
                // one more reconcile.
                "finalizers": [crate::controller::image::FINALIZER],
            },
            "spec": {
                "subscriptionRef": {"name": key.name},
                "identifier": image.identifier.as_str(),
            },
        });
        if let Some(export) = export {
            object["spec"]["export"] = serde_json::to_value(export)
                .map_err(|_| ControllerError::MissingField("spec.imageExport"))?;
        }
        api.patch(&name, &PatchParams::apply(MANAGER), &Patch::Apply(&object))
            .await?;
        tracing::info!(list = %key, image = %name, "AutoSubscribe: applied");
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
