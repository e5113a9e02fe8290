//! The KubeVirt (CDI) export's decisions, pure: given the image's state,
//! the export's configuration and the DataVolumes and DataSource that
//! exist, which objects to create, repoint or delete, and what to report.
//!
//! The lifecycle, per ImageSubscription:
//!
//! 1. each verified digest gets one DataVolume (named by
//!    [`data_volume_name`]), imported by CDI from the artifact server with
//!    CDI's own sha512 check;
//! 2. once it has `Succeeded`, the DataSource points at its PVC;
//! 3. then DataVolumes beyond `importsToKeep` go, oldest first, never the
//!    one the DataSource points at nor the one being imported;
//! 4. when the image is withdrawn or expires: `Unpublish` clears the
//!    DataSource's source, `Delete` deletes the DataSource and every
//!    DataVolume.
//!
//! While a new version downloads or imports, the DataSource keeps serving
//! the previous one (a new version is not a withdrawal).

use serde_json::{Value, json};

use crate::api::export::{KubeVirtExport, KubeVirtExportStatus, OnWithdraw};

/// CDI's API group and version.
pub const CDI_API_VERSION: &str = "cdi.kubevirt.io/v1beta1";
/// Marks the objects the export creates (the operator watches only these).
pub const EXPORT_LABEL: &str = "vmli.hepix.org/export";
/// [`EXPORT_LABEL`]'s value.
pub const EXPORT_LABEL_VALUE: &str = "kubevirt";
/// The full digest a DataVolume imports (a label value cannot hold it).
pub const SHA512_ANNOTATION: &str = "vmli.hepix.org/sha512";
/// When the operator created a DataVolume (nanoseconds since the Unix
/// epoch, zero-padded to 24 digits): the age order of imports, finer than
/// `creationTimestamp`'s seconds.
pub const CREATED_ANNOTATION: &str = "vmli.hepix.org/created-at";
/// The list's `hv:version` of the imported image, verbatim.
pub const VERSION_ANNOTATION: &str = "vmli.hepix.org/version";
/// Labels (values shortened to label syntax) for `kubectl get -l`.
pub const IMAGE_LABEL: &str = "vmli.hepix.org/image-subscription";
pub const LIST_LABEL: &str = crate::api::LIST_LABEL;
pub const VERSION_LABEL: &str = "vmli.hepix.org/version";
pub const DIGEST_LABEL: &str = "vmli.hepix.org/sha512-prefix";
/// CDI's annotation that keeps a DataVolume after its import (CDI's
/// DataVolume garbage collection would otherwise be allowed to remove it).
pub const CDI_KEEP_ANNOTATION: &str = "cdi.kubevirt.io/storage.deleteAfterCompletion";

/// The default of `importsToKeep`.
pub const DEFAULT_IMPORTS_TO_KEEP: u32 = 2;

const MIB: u64 = 1024 * 1024;

/// The largest virtual size a DataVolume is sized from by default (1 PiB):
/// a header claiming more is not believed (set `storage.size` to import
/// it anyway).
pub const MAX_DEFAULT_VIRTUAL_SIZE: u64 = 1 << 50;

/// The image, as the export sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageState {
    /// Verified and served from the artifact server.
    Available(Verified),
    /// Not (yet) available: waiting for its list, downloading, retrying,
    /// or suspended. `sha512` is the listed digest when known.
    Pending { sha512: Option<String> },
    /// Withdrawn or expired (`reason` is the condition reason).
    Withdrawn { reason: String, message: String },
}

/// A verified image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// 128 lowercase hex digits.
    pub sha512: String,
    /// `status.artifact.url` (empty without `--artifact-base-url`).
    pub url: String,
    /// The list's `hv:version` of the image.
    pub version: String,
    /// `status.artifact.virtualSize`.
    pub virtual_size: Option<u64>,
}

/// A DataVolume this export created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedDataVolume {
    pub name: String,
    /// The digest it imports ([`SHA512_ANNOTATION`]).
    pub sha512: String,
    /// [`CREATED_ANNOTATION`], or `creationTimestamp` without it.
    pub created: String,
    /// CDI's `status.phase` (empty before CDI saw it).
    pub phase: String,
    /// CDI's `status.claimName`.
    pub claim_name: Option<String>,
    /// A deletion is under way.
    pub deleting: bool,
    /// The message of CDI's `Running` or `Ready` condition, for a failure.
    pub message: String,
}

impl ObservedDataVolume {
    fn succeeded(&self) -> bool {
        self.phase == "Succeeded" && !self.deleting
    }

    /// The PVC it fills (CDI names it after the DataVolume).
    fn claim(&self) -> &str {
        self.claim_name.as_deref().unwrap_or(&self.name)
    }
}

/// The DataSource, when it exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedDataSource {
    /// Owned by this ImageSubscription (else it is someone else's).
    pub ours: bool,
    /// `spec.source.pvc` as (namespace, name).
    pub pvc: Option<(String, String)>,
}

/// Everything the decision needs.
#[derive(Clone, Debug)]
pub struct ExportInput<'a> {
    /// CDI's DataVolume and DataSource CRDs are served.
    pub cdi_installed: bool,
    pub config: &'a KubeVirtExport,
    pub namespace: &'a str,
    /// The ImageSubscription's name.
    pub image_name: &'a str,
    pub image: ImageState,
    /// The artifact server wants a token for this image (token access and
    /// the list is not `publicArtifacts`).
    pub needs_token: bool,
    /// The DataVolumes this ImageSubscription owns.
    pub data_volumes: Vec<ObservedDataVolume>,
    pub data_source: Option<ObservedDataSource>,
}

/// A change to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportAction {
    /// Create this DataVolume.
    CreateDataVolume(NewDataVolume),
    /// Create the DataSource (it does not exist) pointing at `pvc`, or at
    /// nothing.
    CreateDataSource {
        pvc: Option<String>,
    },
    /// Point the existing DataSource at `pvc`, or clear its source.
    PointDataSource {
        pvc: Option<String>,
    },
    DeleteDataVolume(String),
    DeleteDataSource,
}

/// A DataVolume to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDataVolume {
    pub name: String,
    pub sha512: String,
    pub url: String,
    pub version: String,
    /// The storage request (a quantity).
    pub size: String,
}

/// The `Exported` condition to set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportCondition {
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

/// What to do and what to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportPlan {
    pub actions: Vec<ExportAction>,
    pub status: KubeVirtExportStatus,
    pub condition: ExportCondition,
}

/// The DataSource's name: `spec.export.kubevirt.dataSource`, or the
/// ImageSubscription's.
pub fn data_source_name(config: &KubeVirtExport, image_name: &str) -> String {
    config
        .data_source
        .clone()
        .unwrap_or_else(|| image_name.to_string())
}

/// `importsToKeep`, at least 1.
pub fn imports_to_keep(config: &KubeVirtExport) -> usize {
    config
        .imports_to_keep
        .unwrap_or(DEFAULT_IMPORTS_TO_KEEP)
        .max(1) as usize
}

/// The DataVolume of `sha512` for ImageSubscription `image_name`: a DNS
/// label (at most 63 characters, so that CDI's importer pod and PVC names
/// derived from it stay valid): `<image>-<first 12 hex>`, the image name
/// shortened and given a hash of itself when it is too long.
pub fn data_volume_name(image_name: &str, sha512: &str) -> String {
    let suffix: String = sha512
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    let base: String = image_name
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let base = base.trim_matches('-');
    if base.len() + 1 + suffix.len() <= 63 && !base.is_empty() {
        return format!("{base}-{suffix}");
    }
    use sha2::Digest as _;
    let hash: String = sha2::Sha256::digest(image_name.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let short = base.get(..41).unwrap_or(base).trim_end_matches('-');
    if short.is_empty() {
        format!("img-{hash}-{suffix}")
    } else {
        format!("{short}-{hash}-{suffix}")
    }
}

/// `text` as a label value: at most 63 characters of `[A-Za-z0-9._-]`
/// (others become `_`), beginning and ending alphanumeric; `None` when
/// nothing is left.
pub fn label_value(text: &str) -> Option<String> {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// The storage request: `storage.size`, else the virtual size rounded up
/// to a whole MiB (at least 1 MiB; none above
/// [`MAX_DEFAULT_VIRTUAL_SIZE`]).
pub fn storage_size(config: &KubeVirtExport, virtual_size: Option<u64>) -> Option<String> {
    if let Some(size) = &config.storage.size {
        return Some(size.clone());
    }
    let bytes = virtual_size.filter(|bytes| *bytes <= MAX_DEFAULT_VIRTUAL_SIZE)?;
    let mib = bytes.div_ceil(MIB).max(1);
    Some(format!("{mib}Mi"))
}

/// The decision.
pub fn plan(input: &ExportInput<'_>) -> ExportPlan {
    let data_source = data_source_name(input.config, input.image_name);
    let mut status = KubeVirtExportStatus {
        phase: String::new(),
        data_source: data_source.clone(),
        ..KubeVirtExportStatus::default()
    };
    let fail = |mut status: KubeVirtExportStatus, phase: &str, reason: &str, message: String| {
        status.phase = phase.to_string();
        ExportPlan {
            actions: Vec::new(),
            status,
            condition: ExportCondition {
                ok: false,
                reason: reason.to_string(),
                message,
            },
        }
    };
    if !input.cdi_installed {
        return fail(
            status,
            "Unavailable",
            "CDINotInstalled",
            "KubeVirt CDI's DataVolume and DataSource CRDs (cdi.kubevirt.io/v1beta1) were not served when the operator started".into(),
        );
    }
    if input.data_source.as_ref().is_some_and(|ds| !ds.ours) {
        return fail(
            status,
            "Unavailable",
            "DataSourceConflict",
            format!(
                "DataSource {data_source} exists and is not owned by this ImageSubscription; choose another spec.export.kubevirt.dataSource"
            ),
        );
    }
    let published = pointed_now(input).and_then(|claim| {
        input
            .data_volumes
            .iter()
            .find(|dv| dv.claim() == claim && dv.succeeded())
    });
    let describe = |status: &mut KubeVirtExportStatus, dv: Option<&ObservedDataVolume>| {
        if let Some(dv) = dv {
            status.data_volume = dv.name.clone();
            status.pvc = dv.claim().to_string();
            status.digest = format!("sha512:{}", dv.sha512);
        }
    };

    match &input.image {
        ImageState::Withdrawn { reason, message } => {
            let mut actions = Vec::new();
            let reason = if reason.is_empty() {
                "Withdrawn".to_string()
            } else {
                reason.clone()
            };
            match input.config.on_withdraw {
                OnWithdraw::Unpublish => {
                    if input
                        .data_source
                        .as_ref()
                        .is_some_and(|ds| ds.pvc.is_some())
                    {
                        actions.push(ExportAction::PointDataSource { pvc: None });
                    }
                    status.phase = "Unpublished".into();
                }
                OnWithdraw::Delete => {
                    if input.data_source.is_some() {
                        actions.push(ExportAction::DeleteDataSource);
                    }
                    actions.extend(
                        input
                            .data_volumes
                            .iter()
                            .filter(|dv| !dv.deleting)
                            .map(|dv| ExportAction::DeleteDataVolume(dv.name.clone())),
                    );
                    status.phase = "Deleted".into();
                }
            }
            let done = match input.config.on_withdraw {
                OnWithdraw::Unpublish => format!("DataSource {data_source} unpublished"),
                OnWithdraw::Delete => {
                    format!("DataSource {data_source} and its DataVolumes deleted")
                }
            };
            ExportPlan {
                actions,
                status,
                condition: ExportCondition {
                    ok: false,
                    reason,
                    message: format!("{done}: {message}"),
                },
            }
        }
        ImageState::Pending { sha512 } => {
            describe(&mut status, published);
            let current = published.is_some_and(|dv| Some(&dv.sha512) == sha512.as_ref());
            status.phase = if current { "Published" } else { "Pending" }.into();
            let condition = if current {
                ExportCondition {
                    ok: true,
                    reason: "Exported".into(),
                    message: format!("DataSource {data_source} serves the current version"),
                }
            } else {
                ExportCondition {
                    ok: false,
                    reason: "WaitingForImage".into(),
                    message: match published {
                        Some(dv) => format!(
                            "the image is not available yet; DataSource {data_source} still serves {}",
                            dv.name
                        ),
                        None => "the image is not available yet".into(),
                    },
                }
            };
            ExportPlan {
                actions: Vec::new(),
                status,
                condition,
            }
        }
        ImageState::Available(verified) => available(input, verified, published, status),
    }
}

fn available(
    input: &ExportInput<'_>,
    verified: &Verified,
    published: Option<&ObservedDataVolume>,
    mut status: KubeVirtExportStatus,
) -> ExportPlan {
    let data_source = status.data_source.clone();
    let mut actions = Vec::new();
    let name = data_volume_name(input.image_name, &verified.sha512);
    let target = input
        .data_volumes
        .iter()
        .find(|dv| dv.sha512 == verified.sha512 && !dv.deleting);
    let mut blocked: Option<ExportCondition> = None;
    if target.is_none() {
        let clearing = input
            .data_volumes
            .iter()
            .any(|dv| dv.name == name && dv.deleting);
        let size = storage_size(input.config, verified.virtual_size);
        if clearing {
            blocked = Some(ExportCondition {
                ok: false,
                reason: "Importing".into(),
                message: format!("waiting for the deletion of DataVolume {name} to finish"),
            });
        } else if verified.url.is_empty() {
            blocked = Some(ExportCondition {
                ok: false,
                reason: "NoArtifactURL".into(),
                message:
                    "the operator has no --artifact-base-url, so CDI has nothing to import from"
                        .into(),
            });
        } else if input.needs_token && input.config.secret_extra_headers.is_empty() {
            blocked = Some(ExportCondition {
                ok: false,
                reason: "ArtifactTokenMissing".into(),
                message: "the artifact server wants a token for this list: name a Secret with the header line `Authorization: Bearer <token>` in spec.export.kubevirt.secretExtraHeaders (or set publicArtifacts on the list)".into(),
            });
        } else if let Some(size) = size {
            actions.push(ExportAction::CreateDataVolume(NewDataVolume {
                name: name.clone(),
                sha512: verified.sha512.clone(),
                url: verified.url.clone(),
                version: verified.version.clone(),
                size,
            }));
        } else {
            blocked = Some(ExportCondition {
                ok: false,
                reason: "SizeUnknown".into(),
                message: match verified.virtual_size {
                    Some(bytes) => format!("the image's header claims a virtual size of {bytes} bytes, more than the {MAX_DEFAULT_VIRTUAL_SIZE} believed by default: set spec.export.kubevirt.storage.size"),
                    None => "the image's format does not define its virtual size: set spec.export.kubevirt.storage.size".into(),
                },
            });
        }
    }

    // What the DataSource serves after this plan.
    let serving = match target {
        Some(dv) if dv.succeeded() => Some(dv),
        _ => published,
    };
    let serving_claim = serving.map(|dv| dv.claim().to_string());
    match &input.data_source {
        None => actions.push(ExportAction::CreateDataSource {
            pvc: serving_claim.clone(),
        }),
        Some(ds) => {
            let now = ds
                .pvc
                .as_ref()
                .filter(|(namespace, _)| namespace == input.namespace)
                .map(|(_, name)| name.clone());
            if serving.is_some() && now != serving_claim {
                actions.push(ExportAction::PointDataSource {
                    pvc: serving_claim.clone(),
                });
            }
        }
    }

    // Keep-N: the served and the importing DataVolumes always stay, and
    // so does whatever the DataSource still points at.
    let pointed_after = match serving {
        Some(dv) => Some(dv.claim()),
        None => pointed_now(input),
    };
    let pointed_dv =
        pointed_after.and_then(|claim| input.data_volumes.iter().find(|dv| dv.claim() == claim));
    let protected: Vec<&str> = [target, serving, pointed_dv]
        .into_iter()
        .flatten()
        .map(|dv| dv.name.as_str())
        .chain(actions.iter().filter_map(|action| match action {
            ExportAction::CreateDataVolume(new) => Some(new.name.as_str()),
            _ => None,
        }))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut others: Vec<&ObservedDataVolume> = input
        .data_volumes
        .iter()
        .filter(|dv| !dv.deleting && !protected.contains(&dv.name.as_str()))
        .collect();
    // Newest first.
    others.sort_by(|a, b| (&b.created, &b.name).cmp(&(&a.created, &a.name)));
    let budget = imports_to_keep(input.config).saturating_sub(protected.len());
    actions.extend(
        others
            .iter()
            .skip(budget)
            .map(|dv| ExportAction::DeleteDataVolume(dv.name.clone())),
    );

    if let Some(dv) = serving {
        status.data_volume = dv.name.clone();
        status.pvc = dv.claim().to_string();
        status.digest = format!("sha512:{}", dv.sha512);
    }
    let current = serving.is_some_and(|dv| dv.sha512 == verified.sha512);
    if !current {
        status.importing = name.clone();
    }
    let condition = if current {
        status.phase = "Published".into();
        ExportCondition {
            ok: true,
            reason: "Exported".into(),
            message: format!(
                "DataSource {data_source} serves PVC {} (sha512:{})",
                status.pvc,
                short(&verified.sha512)
            ),
        }
    } else if let Some(blocked) = blocked {
        status.phase = if blocked.reason == "Importing" {
            "Importing"
        } else {
            "Unavailable"
        }
        .into();
        blocked
    } else if let Some(dv) = target.filter(|dv| dv.phase == "Failed") {
        status.phase = "Failed".into();
        ExportCondition {
            ok: false,
            reason: "ImportFailed".into(),
            message: format!("CDI reports DataVolume {} Failed: {}", dv.name, dv.message),
        }
    } else {
        status.phase = "Importing".into();
        let phase = target
            .map(|dv| dv.phase.as_str())
            .filter(|phase| !phase.is_empty())
            .unwrap_or("Pending");
        ExportCondition {
            ok: false,
            reason: "Importing".into(),
            message: match published {
                Some(old) => format!(
                    "DataVolume {name} is {phase}; DataSource {data_source} still serves {}",
                    old.name
                ),
                None => format!("DataVolume {name} is {phase}"),
            },
        }
    };
    ExportPlan {
        actions,
        status,
        condition,
    }
}

/// The PVC the DataSource points at now, in this namespace.
fn pointed_now<'a>(input: &'a ExportInput<'_>) -> Option<&'a str> {
    input
        .data_source
        .as_ref()
        .and_then(|ds| ds.pvc.as_ref())
        .filter(|(namespace, _)| namespace == input.namespace)
        .map(|(_, name)| name.as_str())
}

fn short(sha512: &str) -> &str {
    sha512.get(..16).unwrap_or(sha512)
}

/// The DataVolume manifest of `new` for ImageSubscription `image_name` of
/// list `list`, owned by `owner` (an ownerReference), created at `now`
/// (see [`CREATED_ANNOTATION`]).
pub fn data_volume_manifest(
    new: &NewDataVolume,
    config: &KubeVirtExport,
    namespace: &str,
    image_name: &str,
    list: &str,
    owner: &Value,
    now: &str,
) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert(EXPORT_LABEL.into(), EXPORT_LABEL_VALUE.into());
    labels.insert("app.kubernetes.io/managed-by".into(), "vmlisub".into());
    for (key, value) in [
        (IMAGE_LABEL, image_name),
        (LIST_LABEL, list),
        (VERSION_LABEL, new.version.as_str()),
        (DIGEST_LABEL, short(&new.sha512)),
    ] {
        if let Some(value) = label_value(value) {
            labels.insert(key.into(), value.into());
        }
    }
    let mut http = json!({
        "url": new.url,
        "checksum": format!("sha512:{}", new.sha512),
    });
    if !config.secret_extra_headers.is_empty() {
        http["secretExtraHeaders"] = json!(config.secret_extra_headers);
    }
    if let Some(cert) = &config.cert_config_map {
        http["certConfigMap"] = json!(cert);
    }
    let mut storage = json!({"resources": {"requests": {"storage": new.size}}});
    if let Some(class) = &config.storage.storage_class_name {
        storage["storageClassName"] = json!(class);
    }
    if !config.storage.access_modes.is_empty() {
        storage["accessModes"] = json!(config.storage.access_modes);
    }
    json!({
        "apiVersion": CDI_API_VERSION,
        "kind": "DataVolume",
        "metadata": {
            "name": new.name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                SHA512_ANNOTATION: new.sha512,
                CREATED_ANNOTATION: now,
                VERSION_ANNOTATION: new.version,
                CDI_KEEP_ANNOTATION: "false",
            },
            "ownerReferences": [owner],
        },
        "spec": {
            "source": {"http": http},
            "storage": storage,
        },
    })
}

/// The DataSource manifest: `spec.source.pvc` at `pvc` in `namespace`, or
/// an empty source (unpublished).
pub fn data_source_manifest(
    name: &str,
    namespace: &str,
    image_name: &str,
    pvc: Option<&str>,
    owner: &Value,
) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert(EXPORT_LABEL.into(), EXPORT_LABEL_VALUE.into());
    labels.insert("app.kubernetes.io/managed-by".into(), "vmlisub".into());
    if let Some(value) = label_value(image_name) {
        labels.insert(IMAGE_LABEL.into(), value.into());
    }
    let source = match pvc {
        Some(pvc) => json!({"pvc": {"namespace": namespace, "name": pvc}}),
        None => json!({}),
    };
    json!({
        "apiVersion": CDI_API_VERSION,
        "kind": "DataSource",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": {"source": source},
    })
}

#[cfg(test)]
#[path = "kubevirt_tests.rs"]
mod tests;
