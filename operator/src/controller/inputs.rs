//! What a list names, read from the API by name when needed (Secrets and
//! ConfigMaps are never listed or watched), as the subscription core's
//! typed inputs. Shared by the list and image reconcilers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use super::{Context, ControllerError};
use crate::api::ImageListSubscription;
use crate::subscription::inputs::{self, transfer_secret_names};
use crate::subscription::{Failure, Fetched, ObjectKey, SecretData, TransferSettings};

/// The transfer settings of `list` (its `secretRef`, `certSecretRef` and
/// `proxySecretRef`): all an image download needs.
pub async fn transfer_settings(
    list: &ImageListSubscription,
    key: &ObjectKey,
    context: &Context,
) -> Result<Result<TransferSettings, Failure>, ControllerError> {
    let mut fetched = Fetched::default();
    let names = transfer_secret_names(list).map(str::to_string).collect();
    fetch_secrets(&mut fetched, names, key, context).await?;
    Ok(inputs::transfer_settings(key, list, &fetched))
}

/// Reads the named Secrets of `key`'s namespace into `fetched`.
pub async fn fetch_secrets(
    fetched: &mut Fetched,
    names: Vec<String>,
    key: &ObjectKey,
    context: &Context,
) -> Result<(), ControllerError> {
    let secrets: Api<Secret> = Api::namespaced(context.client.clone(), &key.namespace);
    for name in names {
        if fetched.secrets.contains_key(&name) {
            continue;
        }
        if let Some(data) = secret_data(&secrets, &name).await? {
            fetched.secrets.insert(name, data);
        }
    }
    Ok(())
}

/// Reads a ConfigMap of `key`'s namespace into `fetched`.
pub async fn fetch_config_map(
    fetched: &mut Fetched,
    name: &str,
    key: &ObjectKey,
    context: &Context,
) -> Result<(), ControllerError> {
    let config_maps: Api<ConfigMap> = Api::namespaced(context.client.clone(), &key.namespace);
    if let Some(config_map) = config_maps.get_opt(name).await? {
        let mut values = BTreeMap::new();
        for (k, v) in config_map.data.unwrap_or_default() {
            values.insert(k, v.into_bytes());
        }
        for (k, v) in config_map.binary_data.unwrap_or_default() {
            values.insert(k, v.0);
        }
        fetched
            .config_maps
            .insert(name.to_string(), SecretData { values });
    }
    Ok(())
}

/// A Secret's `data` and `stringData`, if it exists.
async fn secret_data(
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
