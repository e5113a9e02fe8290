//! The list's typed inputs: its Endorsers from the watch cache (with
//! `autoEndorse`'s recorded signer), its Secrets and trust ConfigMap read
//! by name from the API.

use kube::ResourceExt as _;

use super::auto::auto_endorser_name;
use crate::api::{ImageListSubscription, LocalObjectReference};
use crate::controller::inputs::{fetch_config_map, fetch_secrets};
use crate::controller::{Context, ControllerError};
use crate::subscription::inputs::transfer_secret_names;
use crate::subscription::{Fetched, ListInputs, ObjectKey};

/// Everything the subscription core needs about one list.
pub async fn gather(
    list: &ImageListSubscription,
    key: &ObjectKey,
    context: &Context,
) -> Result<ListInputs, ControllerError> {
    let mut fetched = Fetched::default();
    for endorser in context.endorsers.state() {
        if endorser.namespace().as_deref() == Some(key.namespace.as_str()) {
            fetched
                .endorsers
                .insert(endorser.name_any(), (*endorser).clone());
        }
    }
    let trust = list.spec.trust.as_ref();
    let trust_secret = trust
        .and_then(|t| t.secret_ref.as_ref())
        .map(|r| r.name.as_str());
    let names = transfer_secret_names(list)
        .chain(trust_secret)
        .map(str::to_string)
        .collect();
    fetch_secrets(&mut fetched, names, key, context).await?;
    if let Some(reference) = trust.and_then(|t| t.config_map_ref.as_ref()) {
        fetch_config_map(&mut fetched, &reference.name, key, context).await?;
    }
    Ok(ListInputs::gather(
        key,
        &effective(list, key, &fetched),
        &fetched,
    ))
}

/// The spec as it applies: with `autoEndorse`, the recorded first signer
/// counts as one of the list's endorsers.
fn effective(
    list: &ImageListSubscription,
    key: &ObjectKey,
    fetched: &Fetched,
) -> ImageListSubscription {
    let mut effective = list.clone();
    if list.spec.auto_endorse {
        let auto = auto_endorser_name(&key.name);
        if fetched.endorsers.contains_key(&auto)
            && !list.spec.endorsers.iter().any(|e| e.name == auto)
        {
            effective
                .spec
                .endorsers
                .push(LocalObjectReference { name: auto });
        }
    }
    effective
}
