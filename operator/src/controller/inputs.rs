//! What a list names, read from the API by name when needed (Secrets and
//! ConfigMaps are never listed or watched), as the subscription core's
//! typed inputs. Shared by the list and image reconcilers.
//!
//! Only objects labelled `vmli.hepix.org/credentials: "true"` are read:
//! the operator may get any Secret of a watched namespace, and must not
//! become a deputy that sends one (a ServiceAccount token, say) to a URL
//! chosen by someone who may create ImageListSubscriptions but not read
//! Secrets. An object without the label is refused by name only; its
//! content never reaches a message.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use super::{Context, ControllerError};
use crate::api::{CREDENTIALS_LABEL, ImageListSubscription};
use crate::subscription::inputs::{self, SourceKind, transfer_secret_names};
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
        let Some(secret) = secrets.get_opt(&name).await? else {
            continue;
        };
        if opted_in(secret.metadata.labels.as_ref()) {
            fetched.secrets.insert(name, secret_data(secret));
        } else {
            tracing::warn!(namespace = %key.namespace, secret = %name, label = CREDENTIALS_LABEL, "Secret not opted in: not read");
            fetched.not_opted_in.insert((SourceKind::Secret, name));
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
        if !opted_in(config_map.metadata.labels.as_ref()) {
            tracing::warn!(namespace = %key.namespace, config_map = %name, label = CREDENTIALS_LABEL, "ConfigMap not opted in: not read");
            fetched
                .not_opted_in
                .insert((SourceKind::ConfigMap, name.to_string()));
            return Ok(());
        }
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

/// Whether an object carries `vmli.hepix.org/credentials: "true"`.
fn opted_in(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|labels| labels.get(CREDENTIALS_LABEL))
        .is_some_and(|value| value == "true")
}

/// A Secret's `data` and `stringData`.
fn secret_data(secret: Secret) -> SecretData {
    let mut values = BTreeMap::new();
    for (k, v) in secret.data.unwrap_or_default() {
        values.insert(k, v.0);
    }
    for (k, v) in secret.string_data.unwrap_or_default() {
        values.insert(k, v.into_bytes());
    }
    SecretData { values }
}
