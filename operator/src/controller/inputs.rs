//! What a list's transfers need from the API: the list and the Secrets it
//! names (`secretRef`, `certSecretRef`, `proxySecretRef`), read by name
//! when needed, never listed or watched. Shared by the list and image
//! reconcilers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::{Context, ControllerError};
use crate::api::ImageListSubscription;
use crate::sync::manifest::{Manifests, ObjectKey, SecretData};

/// The list and the Secrets its transfers use (`secretRef`,
/// `certSecretRef`, `proxySecretRef`): all an image download needs.
pub async fn transfer_manifests(
    list: &ImageListSubscription,
    key: &ObjectKey,
    context: &Context,
) -> Result<Manifests, ControllerError> {
    let mut manifests = Manifests::default();
    manifests.lists.insert(key.clone(), list.clone());
    let secrets: Api<Secret> = Api::namespaced(context.client.clone(), &key.namespace);
    let references = [
        list.spec.secret_ref.as_ref(),
        list.spec.cert_secret_ref.as_ref(),
        list.spec.proxy_secret_ref.as_ref(),
    ];
    for reference in references.into_iter().flatten() {
        if let Some(data) = secret_data(&secrets, &reference.name).await? {
            manifests
                .secrets
                .insert(ObjectKey::new(&key.namespace, &reference.name), data);
        }
    }
    Ok(manifests)
}

/// A Secret's `data` and `stringData`, if it exists (Secrets are read by
/// name when needed, never listed or watched).
pub async fn secret_data(
    secrets: &Api<Secret>,
    name: &str,
) -> Result<Option<SecretData>, ControllerError> {
    let Some(secret) = secrets.get_opt(name).await? else {
        return Ok(None);
    };
    let mut values = BTreeMap::new();
    for (k, v) in secret.data.unwrap_or_default() {
        values.insert(k, v.0);
    }
    for (k, v) in secret.string_data.unwrap_or_default() {
        values.insert(k, v.into_bytes());
    }
    Ok(Some(SecretData { values }))
}
