//! The KubeVirt (CDI) export step of the image reconciler: it reads the
//! DataVolumes and DataSources the export owns from watched stores, asks
//! the pure planner ([`crate::export::kubevirt::plan`]) what to do, and
//! applies exactly that: create a DataVolume, create or repoint the
//! DataSource, delete DataVolumes or the DataSource.
//!
//! The step runs only when CDI's CRDs (`cdi.kubevirt.io/v1beta1`
//! DataVolume and DataSource) are served when the operator starts
//! ([`discover`]); otherwise an ImageSubscription with
//! `spec.export.kubevirt` reports `Exported=False` (`CDINotInstalled`).

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};

use futures_util::StreamExt as _;
use jiff::Timestamp;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::discovery::ApiResource;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource as _, ResourceExt as _};

use super::{Context, ControllerError};
use crate::api::conditions::{self, Condition, ConditionStatus, types};
use crate::api::export::ExportStatus;
use crate::api::{ImageListSubscription, ImagePhase, ImageSubscription, ImageSubscriptionStatus};
use crate::export::kubevirt::{
    self, CREATED_ANNOTATION, EXPORT_LABEL, EXPORT_LABEL_VALUE, ExportAction, ExportInput,
    ImageState, ObservedDataSource, ObservedDataVolume, SHA512_ANNOTATION, Verified,
};
use crate::server::access::AccessMode;

/// CDI's DataVolume and DataSource kinds as the API server serves them,
/// with stores of the objects the export made.
pub struct Cdi {
    pub data_volume: ApiResource,
    pub data_source: ApiResource,
    pub data_volumes: Store<DynamicObject>,
    pub data_sources: Store<DynamicObject>,
    /// The two stores have listed once.
    pub ready: [tokio::sync::watch::Receiver<bool>; 2],
}

/// Looks CDI's DataVolume and DataSource up by API discovery; logs whether
/// the KubeVirt export is on.
pub async fn discover(client: &Client) -> Option<(ApiResource, ApiResource)> {
    let find = |kind: &'static str| async move {
        let gvk = GroupVersionKind::gvk("cdi.kubevirt.io", "v1beta1", kind);
        kube::discovery::pinned_kind(client, &gvk)
            .await
            .map(|(resource, _)| resource)
    };
    match (find("DataVolume").await, find("DataSource").await) {
        (Ok(data_volume), Ok(data_source)) => {
            tracing::info!(
                "KubeVirt export: on (CDI's cdi.kubevirt.io/v1beta1 DataVolume and DataSource are served)"
            );
            Some((data_volume, data_source))
        }
        (dv, ds) => {
            let why = [dv.err(), ds.err()]
                .into_iter()
                .flatten()
                .map(|err| err.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            tracing::info!(
                reason = %why,
                "KubeVirt export: off (CDI's CRDs are not installed; ImageSubscriptions with spec.export.kubevirt report Exported=False, reason CDINotInstalled; restart the operator after installing CDI)"
            );
            None
        }
    }
}

/// A store of the export's objects of `resource` (label
/// `vmli.hepix.org/export=kubevirt`), a flag that turns true once it has
/// listed, and a stream of the ImageSubscriptions to reconcile when one of
/// them changes in a way that matters (CDI's phase or claim, the spec, a
/// deletion).
pub fn watch(
    client: &Client,
    namespace: Option<&str>,
    resource: &ApiResource,
) -> (
    Store<DynamicObject>,
    tokio::sync::watch::Receiver<bool>,
    impl futures_util::Stream<Item = ObjectRef<ImageSubscription>> + Send + 'static,
) {
    let api: Api<DynamicObject> = match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
        None => Api::all_with(client.clone(), resource),
    };
    let writer = reflector::store::Writer::new(resource.clone());
    let reader = writer.as_reader();
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
    let selector = format!("{EXPORT_LABEL}={EXPORT_LABEL_VALUE}");
    let mut seen: HashMap<String, u64> = HashMap::new();
    let stream = watcher(
        api,
        watcher::Config::default().labels(&selector).any_semantic(),
    )
    .default_backoff()
    .reflect(writer)
    .filter_map(move |event| {
        let owners = match event {
            Ok(watcher::Event::InitDone) => {
                ready_tx.send_replace(true);
                Vec::new()
            }
            Ok(watcher::Event::Apply(object)) => {
                let uid = object.uid().unwrap_or_default();
                let hash = trigger_hash(&object);
                if seen.insert(uid, hash) == Some(hash) {
                    Vec::new()
                } else {
                    owners_of(&object)
                }
            }
            Ok(watcher::Event::Delete(object)) => {
                seen.remove(&object.uid().unwrap_or_default());
                owners_of(&object)
            }
            Ok(watcher::Event::InitApply(object)) => {
                seen.insert(object.uid().unwrap_or_default(), trigger_hash(&object));
                Vec::new()
            }
            _ => Vec::new(),
        };
        std::future::ready(Some(futures_util::stream::iter(owners)))
    })
    .flatten();
    (reader, ready_rx, stream)
}

/// What a change must touch to matter: CDI's phase and claim, the spec,
/// the deletion mark.
fn trigger_hash(object: &DynamicObject) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let status = object.data.get("status");
    for field in ["phase", "claimName"] {
        status
            .and_then(|s| s.get(field))
            .map(|v| v.to_string())
            .hash(&mut hasher);
    }
    object
        .data
        .get("spec")
        .map(|v| v.to_string())
        .hash(&mut hasher);
    object
        .metadata
        .deletion_timestamp
        .is_some()
        .hash(&mut hasher);
    hasher.finish()
}

fn owners_of(object: &DynamicObject) -> Vec<ObjectRef<ImageSubscription>> {
    let Some(namespace) = object.namespace() else {
        return Vec::new();
    };
    object
        .owner_references()
        .iter()
        .filter(|owner| {
            owner.kind == "ImageSubscription" && owner.api_version == crate::api::API_VERSION
        })
        .map(|owner| ObjectRef::new(&owner.name).within(&namespace))
        .collect()
}

/// The image as the export sees it, from the status this reconcile made.
fn image_state(status: &ImageSubscriptionStatus) -> ImageState {
    match (&status.phase, &status.artifact) {
        (ImagePhase::Available, Some(artifact)) => ImageState::Available(Verified {
            sha512: artifact
                .digest
                .strip_prefix("sha512:")
                .unwrap_or(&artifact.digest)
                .to_ascii_lowercase(),
            url: artifact.url.clone(),
            version: status
                .image
                .as_ref()
                .map(|image| image.version.clone())
                .unwrap_or_default(),
            virtual_size: artifact.virtual_size,
        }),
        (ImagePhase::Expired, _) => {
            let ready = conditions::find(&status.conditions, types::READY);
            ImageState::Withdrawn {
                reason: ready.map(|c| c.reason.clone()).unwrap_or_default(),
                message: ready.map(|c| c.message.clone()).unwrap_or_default(),
            }
        }
        _ => ImageState::Pending {
            sha512: status
                .image
                .as_ref()
                .map(|image| image.sha512.to_ascii_lowercase()),
        },
    }
}

/// A DataVolume's age key: nanoseconds since the epoch, zero-padded, so
/// that text order is time order.
fn created_at(at: Timestamp) -> String {
    format!("{:024}", at.as_nanosecond().max(0))
}

fn owned_by(object: &DynamicObject, uid: &str) -> bool {
    object
        .owner_references()
        .iter()
        .any(|owner| owner.uid == uid)
}

fn observed_data_volume(object: &DynamicObject) -> Option<ObservedDataVolume> {
    let annotations = object.annotations();
    let sha512 = annotations.get(SHA512_ANNOTATION)?.to_ascii_lowercase();
    let created = annotations
        .get(CREATED_ANNOTATION)
        .cloned()
        .unwrap_or_else(|| {
            object
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| created_at(t.0))
                .unwrap_or_default()
        });
    let status = object.data.get("status");
    let text = |field: &str| {
        status
            .and_then(|s| s.get(field))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let message = status
        .and_then(|s| s.get("conditions"))
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "Running" || c["type"] == "Ready")
        .filter_map(|c| c["message"].as_str())
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    Some(ObservedDataVolume {
        name: object.name_any(),
        sha512,
        created,
        phase: text("phase").unwrap_or_default(),
        claim_name: text("claimName").filter(|c| !c.is_empty()),
        deleting: object.metadata.deletion_timestamp.is_some(),
        message,
    })
}

fn observed_data_source(object: &DynamicObject, uid: &str) -> ObservedDataSource {
    let pvc = object
        .data
        .get("spec")
        .and_then(|s| s.get("source"))
        .and_then(|s| s.get("pvc"))
        .and_then(|pvc| {
            Some((
                pvc.get("namespace")?.as_str()?.to_string(),
                pvc.get("name")?.as_str()?.to_string(),
            ))
        });
    ObservedDataSource {
        ours: owned_by(object, uid),
        pvc,
    }
}

/// Without `spec.export.kubevirt`: forgets its status, and the `Exported`
/// condition, which the Glance export reports in too, when no export is
/// configured at all.
fn clear(image: &ImageSubscription, status: &mut ImageSubscriptionStatus) {
    if let Some(export) = status.export.as_mut() {
        export.kubevirt = None;
        if *export == ExportStatus::default() {
            status.export = None;
        }
    }
    if image
        .spec
        .export
        .as_ref()
        .is_none_or(|e| e.glance.is_none())
    {
        conditions::remove_condition(&mut status.conditions, types::EXPORTED);
    }
}

/// The export step: plans from the stores and applies the plan; records
/// `status.export.kubevirt` and the `Exported` condition (an Event when it
/// changes). Without `spec.export.kubevirt` it clears its status, and the
/// condition unless a Glance export reports in it.
pub async fn export(
    image: &ImageSubscription,
    status: &mut ImageSubscriptionStatus,
    list: Option<&ImageListSubscription>,
    context: &Context,
    now: Timestamp,
) -> Result<(), ControllerError> {
    let Some(config) = image.spec.export.as_ref().and_then(|e| e.kubevirt.as_ref()) else {
        clear(image, status);
        return Ok(());
    };
    let namespace = image
        .namespace()
        .ok_or(ControllerError::MissingField("metadata.namespace"))?;
    let uid = image
        .uid()
        .ok_or(ControllerError::MissingField("metadata.uid"))?;
    let name = image.name_any();
    let data_source_name = kubevirt::data_source_name(config, &name);
    let (data_volumes, data_source) = match &context.cdi {
        Some(cdi) => (
            cdi.data_volumes
                .state()
                .iter()
                .filter(|dv| dv.namespace().as_deref() == Some(namespace.as_str()))
                .filter(|dv| owned_by(dv, &uid))
                .filter_map(|dv| observed_data_volume(dv))
                .collect(),
            cdi.data_sources
                .state()
                .iter()
                .find(|ds| {
                    ds.namespace().as_deref() == Some(namespace.as_str())
                        && ds.name_any() == data_source_name
                })
                .map(|ds| observed_data_source(ds, &uid)),
        ),
        None => (Vec::new(), None),
    };
    let needs_token = matches!(context.config.artifact_access, AccessMode::Token(_))
        && !list.is_some_and(|list| list.spec.public_artifacts);
    let input = ExportInput {
        cdi_installed: context.cdi.is_some(),
        config,
        namespace: &namespace,
        image_name: &name,
        image: image_state(status),
        needs_token,
        data_volumes,
        data_source,
    };
    let mut plan = kubevirt::plan(&input);
    let mut failure = None;
    if let Some(cdi) = &context.cdi {
        let list_name = image.spec.subscription_ref.name.as_str();
        let applied = apply(
            image,
            &plan.actions,
            cdi,
            config,
            &namespace,
            &data_source_name,
            list_name,
            context,
        )
        .await;
        match applied {
            Ok(Applied::Done) => {}
            Ok(Applied::DataSourceTaken) => {
                plan.status.phase = "Unavailable".into();
                plan.condition = kubevirt::ExportCondition {
                    ok: false,
                    reason: "DataSourceConflict".into(),
                    message: format!(
                        "DataSource {data_source_name} exists and is not owned by this ImageSubscription; choose another spec.export.kubevirt.dataSource"
                    ),
                };
            }
            Err(err) => {
                plan.condition = kubevirt::ExportCondition {
                    ok: false,
                    reason: "KubeApiError".into(),
                    message: format!("applying the KubeVirt export: {err}"),
                };
                failure = Some(err);
            }
        }
    }
    status
        .export
        .get_or_insert_with(ExportStatus::default)
        .kubevirt = Some(plan.status);
    let condition = Condition::new(
        types::EXPORTED,
        if plan.condition.ok {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        &plan.condition.reason,
        plan.condition.message.clone(),
        now,
    );
    if conditions::set_condition(&mut status.conditions, condition) {
        let type_ = if plan.condition.ok
            || matches!(
                plan.condition.reason.as_str(),
                "Importing" | "WaitingForImage"
            ) {
            EventType::Normal
        } else {
            EventType::Warning
        };
        context.event(
            image,
            type_,
            &plan.condition.reason,
            "Export",
            plan.condition.message,
        );
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

enum Applied {
    Done,
    /// The DataSource exists but is someone else's.
    DataSourceTaken,
}

#[allow(clippy::too_many_arguments)]
async fn apply(
    image: &ImageSubscription,
    actions: &[ExportAction],
    cdi: &Cdi,
    config: &crate::api::export::KubeVirtExport,
    namespace: &str,
    data_source_name: &str,
    list_name: &str,
    context: &Context,
) -> Result<Applied, ControllerError> {
    if actions.is_empty() {
        return Ok(Applied::Done);
    }
    let owner = serde_json::to_value(
        image
            .controller_owner_ref(&())
            .ok_or(ControllerError::MissingField("metadata.uid"))?,
    )
    .map_err(|_| ControllerError::MissingField("ownerReference"))?;
    let name = image.name_any();
    let data_volumes: Api<DynamicObject> =
        Api::namespaced_with(context.client.clone(), namespace, &cdi.data_volume);
    let data_sources: Api<DynamicObject> =
        Api::namespaced_with(context.client.clone(), namespace, &cdi.data_source);
    for action in actions {
        match action {
            ExportAction::CreateDataVolume(new) => {
                let now = created_at(Timestamp::now());
                let manifest = kubevirt::data_volume_manifest(
                    new, config, namespace, &name, list_name, &owner, &now,
                );
                let object: DynamicObject = serde_json::from_value(manifest)
                    .map_err(|_| ControllerError::MissingField("DataVolume manifest"))?;
                match data_volumes.create(&PostParams::default(), &object).await {
                    Ok(_) => {
                        tracing::info!(image = %name, data_volume = %new.name, "KubeVirt export: DataVolume created");
                        context.event(
                            image,
                            EventType::Normal,
                            "DataVolumeCreated",
                            "Export",
                            format!(
                                "DataVolume {} imports sha512:{} ({}) from {}",
                                new.name, new.sha512, new.size, new.url
                            ),
                        );
                    }
                    // The store had not seen it yet.
                    Err(kube::Error::Api(status)) if status.code == 409 => {}
                    Err(err) => return Err(err.into()),
                }
            }
            ExportAction::CreateDataSource { pvc } => {
                let manifest = kubevirt::data_source_manifest(
                    data_source_name,
                    namespace,
                    &name,
                    pvc.as_deref(),
                    &owner,
                );
                let object: DynamicObject = serde_json::from_value(manifest)
                    .map_err(|_| ControllerError::MissingField("DataSource manifest"))?;
                match data_sources.create(&PostParams::default(), &object).await {
                    Ok(_) => {
                        tracing::info!(image = %name, data_source = %data_source_name, pvc = ?pvc, "KubeVirt export: DataSource created");
                        if let Some(pvc) = pvc {
                            published(image, data_source_name, pvc, context).await;
                        }
                    }
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        // Ours, and the store is behind: repoint it; else
                        // someone else's.
                        let existing = data_sources.get(data_source_name).await?;
                        let uid = image.uid().unwrap_or_default();
                        if !owned_by(&existing, &uid) {
                            return Ok(Applied::DataSourceTaken);
                        }
                        point(&data_sources, data_source_name, namespace, pvc.as_deref()).await?;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            ExportAction::PointDataSource { pvc } => {
                point(&data_sources, data_source_name, namespace, pvc.as_deref()).await?;
                match pvc {
                    Some(pvc) => published(image, data_source_name, pvc, context).await,
                    None => {
                        tracing::info!(image = %name, data_source = %data_source_name, "KubeVirt export: DataSource unpublished");
                        context.event(
                            image,
                            EventType::Warning,
                            "DataSourceUnpublished",
                            "Export",
                            format!("DataSource {data_source_name} no longer points at a PVC"),
                        );
                    }
                }
            }
            ExportAction::DeleteDataVolume(dv) => {
                match data_volumes.delete(dv, &DeleteParams::background()).await {
                    Ok(_) => {
                        tracing::info!(image = %name, data_volume = %dv, "KubeVirt export: DataVolume deleted");
                        context
                            .event(
                                image,
                                EventType::Normal,
                                "DataVolumeDeleted",
                                "Export",
                                format!("DataVolume {dv} deleted (importsToKeep, or the image was withdrawn)"),
                            );
                    }
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(err) => return Err(err.into()),
                }
            }
            ExportAction::DeleteDataSource => {
                match data_sources
                    .delete(data_source_name, &DeleteParams::background())
                    .await
                {
                    Ok(_) => {
                        tracing::info!(image = %name, data_source = %data_source_name, "KubeVirt export: DataSource deleted");
                        context.event(
                            image,
                            EventType::Warning,
                            "DataSourceDeleted",
                            "Export",
                            format!(
                                "DataSource {data_source_name} deleted: the image was withdrawn"
                            ),
                        );
                    }
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
    }
    Ok(Applied::Done)
}

/// Points the DataSource at `pvc`, or clears its source (a merge patch of
/// `spec.source` only: whoever created the DataSource, the other sources
/// and `pvc` end up exactly as asked).
async fn point(
    api: &Api<DynamicObject>,
    name: &str,
    namespace: &str,
    pvc: Option<&str>,
) -> Result<(), ControllerError> {
    let pvc = pvc.map(|pvc| serde_json::json!({"namespace": namespace, "name": pvc}));
    let patch = serde_json::json!({
        "spec": {"source": {"pvc": pvc, "snapshot": null, "dataSource": null}},
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn published(image: &ImageSubscription, data_source: &str, pvc: &str, context: &Context) {
    tracing::info!(image = %image.name_any(), data_source, pvc, "KubeVirt export: DataSource points at the new import");
    context.event(
        image,
        EventType::Normal,
        "DataSourcePublished",
        "Export",
        format!("DataSource {data_source} points at PVC {pvc}"),
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api::conditions::Condition;
    use crate::api::{Artifact, ImageSummary};
    use serde_json::json;

    fn object(value: serde_json::Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn without_kubevirt_the_glance_exports_condition_stays() {
        let at = Timestamp::from_second(0).unwrap();
        let image = |export: serde_json::Value| -> ImageSubscription {
            serde_json::from_value(json!({
                "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
                "metadata": {"name": "a", "namespace": "n"},
                "spec": {"subscriptionRef": {"name": "l"}, "identifier": "x", "export": export},
            }))
            .unwrap()
        };
        let exported = || ImageSubscriptionStatus {
            conditions: vec![Condition::new(
                types::EXPORTED,
                ConditionStatus::True,
                "Exported",
                "Glance image g is active".to_string(),
                at,
            )],
            export: Some(ExportStatus {
                kubevirt: Some(Default::default()),
                glance: None,
            }),
            ..Default::default()
        };
        let glance = image(json!({"glance": {
            "endpoint": "https://glance.example", "credentialsSecretRef": {"name": "s"}}}));
        let mut status = exported();
        clear(&glance, &mut status);
        assert!(conditions::find(&status.conditions, types::EXPORTED).is_some());
        assert_eq!(status.export, None, "the KubeVirt status goes");

        let mut status = exported();
        clear(&image(json!({})), &mut status);
        assert!(conditions::find(&status.conditions, types::EXPORTED).is_none());
    }

    #[test]
    fn the_image_state_follows_phase_artifact_and_ready() {
        let at = Timestamp::from_second(0).unwrap();
        let mut status = ImageSubscriptionStatus {
            phase: ImagePhase::Available,
            image: Some(ImageSummary {
                version: "4.7".into(),
                sha512: "AB".repeat(64),
                ..ImageSummary::default()
            }),
            artifact: Some(Artifact {
                digest: format!("sha512:{}", "AB".repeat(64)),
                url: "http://x/images/ns/l/i".into(),
                virtual_size: Some(5),
                ..Artifact::default()
            }),
            ..ImageSubscriptionStatus::default()
        };
        assert_eq!(
            image_state(&status),
            ImageState::Available(Verified {
                sha512: "ab".repeat(64),
                url: "http://x/images/ns/l/i".into(),
                version: "4.7".into(),
                virtual_size: Some(5),
            })
        );
        status.phase = ImagePhase::Downloading;
        assert_eq!(
            image_state(&status),
            ImageState::Pending {
                sha512: Some("ab".repeat(64))
            }
        );
        status.phase = ImagePhase::Expired;
        status.artifact = None;
        status.conditions.push(Condition::new(
            types::READY,
            ConditionStatus::False,
            "RemovedFromList",
            "gone",
            at,
        ));
        assert_eq!(
            image_state(&status),
            ImageState::Withdrawn {
                reason: "RemovedFromList".into(),
                message: "gone".into()
            }
        );
        // Available without an artifact is not something to export.
        status.phase = ImagePhase::Available;
        assert!(matches!(image_state(&status), ImageState::Pending { .. }));
    }

    #[test]
    fn data_volumes_and_data_sources_are_read_as_cdi_writes_them() {
        let dv = object(json!({
            "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": "one-aaaa", "namespace": "ns",
                         "annotations": {SHA512_ANNOTATION: "AA", CREATED_ANNOTATION: "000000000000000000000007"},
                         "ownerReferences": [{"apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription", "name": "one", "uid": "u1"}]},
            "status": {"phase": "Failed", "claimName": "pvc-x",
                       "conditions": [{"type": "Running", "status": "False", "message": "checksum mismatch"},
                                      {"type": "Bound", "status": "True", "message": "bound"}]},
        }));
        let observed = observed_data_volume(&dv).unwrap();
        assert_eq!(
            observed,
            ObservedDataVolume {
                name: "one-aaaa".into(),
                sha512: "aa".into(),
                created: "000000000000000000000007".into(),
                phase: "Failed".into(),
                claim_name: Some("pvc-x".into()),
                deleting: false,
                message: "checksum mismatch".into(),
            }
        );
        assert!(owned_by(&dv, "u1"));
        assert!(!owned_by(&dv, "u2"));
        assert_eq!(
            owners_of(&dv),
            vec![ObjectRef::<ImageSubscription>::new("one").within("ns")]
        );
        // Without the digest annotation it is not one of the export's.
        let foreign = object(json!({
            "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": "x", "namespace": "ns"},
        }));
        assert!(observed_data_volume(&foreign).is_none());
        assert!(owners_of(&foreign).is_empty());

        let ds = object(json!({
            "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataSource",
            "metadata": {"name": "cernvm", "namespace": "ns",
                         "ownerReferences": [{"apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription", "name": "one", "uid": "u1"}]},
            "spec": {"source": {"pvc": {"namespace": "ns", "name": "pvc-x"}}},
        }));
        assert_eq!(
            observed_data_source(&ds, "u1"),
            ObservedDataSource {
                ours: true,
                pvc: Some(("ns".into(), "pvc-x".into()))
            }
        );
        let empty = object(json!({
            "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataSource",
            "metadata": {"name": "cernvm", "namespace": "ns"},
            "spec": {"source": {}},
        }));
        assert_eq!(
            observed_data_source(&empty, "u1"),
            ObservedDataSource {
                ours: false,
                pvc: None
            }
        );
    }

    #[test]
    fn only_changes_that_matter_trigger() {
        let base = json!({
            "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": "d", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"source": {}},
            "status": {"phase": "ImportInProgress", "progress": "10%"},
        });
        let mut progressed = base.clone();
        progressed["status"]["progress"] = json!("50%");
        progressed["metadata"]["resourceVersion"] = json!("2");
        let mut succeeded = base.clone();
        succeeded["status"]["phase"] = json!("Succeeded");
        let hash = |v: &serde_json::Value| trigger_hash(&object(v.clone()));
        assert_eq!(hash(&base), hash(&progressed));
        assert_ne!(hash(&base), hash(&succeeded));
        let mut claimed = base.clone();
        claimed["status"]["claimName"] = json!("pvc");
        assert_ne!(hash(&base), hash(&claimed));
    }

    #[test]
    fn created_at_sorts_as_time() {
        let early = created_at(Timestamp::from_second(9).unwrap());
        let late = created_at(Timestamp::from_second(10).unwrap());
        assert_eq!(early.len(), 24);
        assert!(early < late);
    }
}
