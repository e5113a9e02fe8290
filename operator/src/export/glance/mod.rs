//! The Glance export: one Glance image per (list, image identifier,
//! digest), found again by its `vmli_list`, `vmli_identifier` and
//! `vmli_sha512` properties, filled by `web-download` from the artifact URL
//! or by a streamed upload from the cache, verified by Glance's own sha512
//! (`os_hash_value`), and retired (hidden, deactivated or deleted) when a
//! new version replaces it or the image expires.
//!
//! The decisions are [`plan::plan`]'s (pure); [`export`] executes them and
//! plans again with what Glance then shows, until nothing is left to do.
//! Both drivers call [`export`]: `vmlisub sync` with the Secrets of its
//! manifests, the operator with Secrets read through the API.

pub mod client;
pub mod error;
pub mod metadata;
pub mod plan;

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use tokio::io::AsyncReadExt as _;

pub use client::{Connection, Credentials, Glance};
pub use error::GlanceError;
use plan::{Action, Desired, Fill};

use crate::api::export::{GlanceExport, GlanceExportState, GlanceExportStatus, GlanceImportMethod};
use crate::imagelist::Image;
use crate::reason::Reason as _;
use crate::subscription::SecretData;

/// Rounds of plan-and-act in one run (create, fill, verify, retire take
/// three; more means Glance is not doing what it says).
const MAX_ROUNDS: usize = 6;
const WEB_DOWNLOAD_FAILED: &str = "web-download failed";

/// What to export for one ImageSubscription.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// The list, `namespace/name`.
    pub list: &'a str,
    /// The image's `dc:identifier`.
    pub identifier: &'a str,
    pub target: Target<'a>,
}

/// The state of the image in the cache.
#[derive(Debug, Clone)]
pub enum Target<'a> {
    /// Verified and cached.
    Available {
        image: &'a Image,
        /// sha512, hex.
        sha512: &'a str,
        path: &'a Path,
        size: u64,
        /// `status.artifact.url`, if the artifact server is configured.
        url: Option<&'a str>,
    },
    /// Not verified yet (a new version downloading, say).
    Wait,
    /// Expired or withdrawn.
    Retire,
}

/// Timing of a run.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How long a `web-download` import may take.
    pub import_timeout: Duration,
    /// How often to look at an import.
    pub poll_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            import_timeout: Duration::from_secs(3600),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// The Secret keys of `credentialsSecretRef`.
pub const KEY_APP_CRED_ID: &str = "application_credential_id";
pub const KEY_APP_CRED_SECRET: &str = "application_credential_secret";
pub const KEY_TOKEN: &str = "token";

/// The connection `export` describes, with its Secrets' values.
pub fn connection(
    export: &GlanceExport,
    credentials: &SecretData,
    ca: Option<&SecretData>,
) -> Result<Connection, GlanceError> {
    let value = |key: &str| -> Result<Option<String>, GlanceError> {
        credentials
            .values
            .get(key)
            .map(|bytes| {
                String::from_utf8(bytes.clone())
                    .map(|text| text.trim().to_string())
                    .map_err(|_| GlanceError::Config {
                        detail: format!("Secret key {key} is not UTF-8"),
                    })
            })
            .transpose()
    };
    let credentials = match (
        value(KEY_APP_CRED_ID)?,
        value(KEY_APP_CRED_SECRET)?,
        value(KEY_TOKEN)?,
    ) {
        (Some(id), Some(secret), _) if !id.is_empty() && !secret.is_empty() => {
            Credentials::ApplicationCredential { id, secret }
        }
        (_, _, Some(token)) if !token.is_empty() => Credentials::Token(token),
        _ => {
            return Err(GlanceError::Config {
                detail: format!(
                    "Secret {} needs {KEY_APP_CRED_ID} and {KEY_APP_CRED_SECRET}, or {KEY_TOKEN}",
                    export.credentials_secret_ref.name
                ),
            });
        }
    };
    if export.endpoint.is_none() && export.auth_url.is_none() {
        return Err(GlanceError::Config {
            detail: "set endpoint (the Glance URL), or authUrl to find it in the Keystone catalog"
                .into(),
        });
    }
    let ca_pem = match (ca, &export.ca_secret_ref) {
        (Some(ca), _) => ca
            .values
            .get("ca.crt")
            .cloned()
            .ok_or_else(|| GlanceError::Config {
                detail: "the CA Secret has no ca.crt".into(),
            })?,
        (None, Some(reference)) => {
            return Err(GlanceError::Config {
                detail: format!("the CA Secret {} is missing", reference.name),
            });
        }
        (None, None) => Vec::new(),
    };
    Ok(Connection {
        endpoint: export.endpoint.clone(),
        auth_url: export.auth_url.clone(),
        region: export.region.clone(),
        interface: export
            .interface
            .clone()
            .unwrap_or_else(|| "public".to_string()),
        credentials,
        ca_pem,
    })
}

/// A failed export's status (configuration or connection trouble before
/// any image was looked at), keeping what was known of the image.
pub fn failed_status(
    previous: Option<&GlanceExportStatus>,
    error: &GlanceError,
    now: Timestamp,
) -> GlanceExportStatus {
    GlanceExportStatus {
        state: GlanceExportState::Failed,
        last_error: Some(format!("{}: {error}", error.reason())),
        last_sync_time: crate::imagelist::format_timestamp(now),
        ..previous.cloned().unwrap_or_default()
    }
}

/// Brings Glance in line with `source`; returns the export's status (a
/// failure is reported there, with its reason code).
pub async fn export(
    glance: &Glance,
    spec: &GlanceExport,
    source: &Source<'_>,
    previous: Option<&GlanceExportStatus>,
    timing: &Timing,
    now: Timestamp,
) -> GlanceExportStatus {
    match run(glance, spec, source, previous, timing).await {
        Ok(mut status) => {
            status.last_sync_time = crate::imagelist::format_timestamp(now);
            status
        }
        Err(error) => {
            tracing::warn!(list = source.list, identifier = source.identifier, reason = error.reason(), %error, "Glance export failed");
            let mut status = failed_status(previous, &error, now);
            if let Target::Available { sha512, .. } = &source.target {
                status.digest = Some(format!("sha512:{sha512}"));
            }
            status
        }
    }
}

async fn run(
    glance: &Glance,
    spec: &GlanceExport,
    source: &Source<'_>,
    previous: Option<&GlanceExportStatus>,
    timing: &Timing,
) -> Result<GlanceExportStatus, GlanceError> {
    let ignored = metadata::reserved_properties(spec);
    if !ignored.is_empty() {
        tracing::warn!(
            ?ignored,
            "spec.export.glance.properties: these properties are vmlisub's and are ignored"
        );
    }
    let (fields, formats, web_download_uri) = match &source.target {
        Target::Available {
            image, path, url, ..
        } => {
            let fields = metadata::mutable_fields(image, spec, source.identifier);
            let formats = metadata::formats(image.format.as_deref(), &read_magic(path).await?);
            let uri = match (spec.method, url) {
                (GlanceImportMethod::Upload, _) | (_, None) => None,
                (_, Some("")) => None,
                (_, Some(url)) => {
                    if glance
                        .import_methods()
                        .await?
                        .iter()
                        .any(|m| m == "web-download")
                    {
                        Some(*url)
                    } else {
                        None
                    }
                }
            };
            if spec.method == GlanceImportMethod::WebDownload && uri.is_none() {
                return Err(GlanceError::Config {
                    detail: "method WebDownload needs an artifact URL (status.artifact.url) and Glance's web-download import method".into(),
                });
            }
            (fields, formats, uri)
        }
        _ => (Default::default(), ("raw", "bare"), None),
    };
    let desired = match &source.target {
        Target::Available { sha512, .. } => Desired::Current {
            sha512,
            fields: &fields,
            web_download: web_download_uri.is_some(),
        },
        Target::Wait => Desired::Wait,
        Target::Retire => Desired::Retire,
    };
    let mut method = previous.and_then(|p| p.method.clone());
    let mut retired = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let found = glance.find(source.list, source.identifier).await?;
        let plan = plan::plan(&desired, &found, spec.on_new_version, spec.on_expiry);
        let done = plan.actions.is_empty();
        for action in &plan.actions {
            tracing::info!(
                list = source.list,
                identifier = source.identifier,
                ?action,
                "Glance export step"
            );
            match action {
                Action::Create => {
                    let Target::Available { sha512, .. } = &source.target else {
                        continue;
                    };
                    let body = metadata::create_body(
                        source.list,
                        source.identifier,
                        sha512,
                        formats,
                        &fields,
                    );
                    let created = glance.create(&body).await?;
                    tracing::info!(id = %created.id, "Glance image created");
                }
                Action::Fill { id, how } => match (how, &source.target, web_download_uri) {
                    (Fill::WebDownload, _, Some(uri)) => {
                        glance.web_download(id, uri).await?;
                        method = Some("web-download".into());
                        match await_import(glance, id, true, timing).await {
                            // Glance marked the import failed: the next
                            // round uploads instead.
                            Err(GlanceError::Import { detail, .. })
                                if detail.starts_with(WEB_DOWNLOAD_FAILED) =>
                            {
                                tracing::warn!(%id, "web-download import failed; uploading from the cache instead");
                            }
                            other => other?,
                        }
                    }
                    (_, Target::Available { path, size, .. }, _) => {
                        glance.upload(id, path, *size).await?;
                        method = Some("upload".into());
                    }
                    _ => {}
                },
                Action::AwaitImport { id } => await_import(glance, id, false, timing).await?,
                Action::Update { id, set } => glance.update(id, set).await?,
                Action::Reactivate { id } => glance.action(id, "reactivate").await?,
                Action::Hide { id } => {
                    glance
                        .update(id, &[("os_hidden".into(), true.into(), true)])
                        .await?;
                    retired.push(format!("hid {id}"));
                }
                Action::Deactivate { id } => {
                    glance.action(id, "deactivate").await?;
                    retired.push(format!("deactivated {id}"));
                }
                Action::Delete { id } => {
                    glance.delete(id).await?;
                    if plan.current.as_deref() != Some(id.as_str()) {
                        retired.push(format!("deleted {id}"));
                    }
                }
            }
        }
        if let Some(detail) = plan.error {
            return Err(GlanceError::HashMismatch { detail });
        }
        // Exported: the updates and retirements above were the last
        // steps; Retired: so were the retirements.
        let finished = done
            || matches!(
                plan.state,
                GlanceExportState::Retired | GlanceExportState::Exported
            );
        if finished {
            let image_id = plan.current.clone().or_else(|| match plan.state {
                GlanceExportState::Retired => previous.and_then(|p| p.image_id.clone()),
                _ => None,
            });
            if plan.state == GlanceExportState::Pending {
                // Nothing to do until the new version is verified.
                return Ok(GlanceExportStatus {
                    state: previous.map_or(GlanceExportState::Pending, |p| p.state),
                    last_error: None,
                    ..previous.cloned().unwrap_or_default()
                });
            }
            return Ok(GlanceExportStatus {
                image_id,
                state: plan.state,
                digest: match &source.target {
                    Target::Available { sha512, .. } => Some(format!("sha512:{sha512}")),
                    _ => previous.and_then(|p| p.digest.clone()),
                },
                method,
                retired: (!retired.is_empty()).then(|| retired.join(", ")),
                last_error: None,
                last_sync_time: String::new(),
            });
        }
    }
    Err(GlanceError::Protocol {
        op: "export",
        detail: format!("not settled after {MAX_ROUNDS} rounds"),
    })
}

/// The first bytes of the cached file (format sniffing).
async fn read_magic(path: &Path) -> Result<Vec<u8>, GlanceError> {
    let cache = |source| GlanceError::Cache {
        path: path.display().to_string(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(cache)?;
    let mut magic = vec![0u8; 8];
    let mut read = 0;
    while read < magic.len() {
        let n = file.read(&mut magic[read..]).await.map_err(cache)?;
        if n == 0 {
            break;
        }
        read += n;
    }
    magic.truncate(read);
    Ok(magic)
}

/// Waits until Glance has finished storing an image's data (or gave up).
/// `just_started`: a `queued` image is waited for too (the import task
/// has not picked it up yet), unless the import is marked failed.
async fn await_import(
    glance: &Glance,
    id: &str,
    just_started: bool,
    timing: &Timing,
) -> Result<(), GlanceError> {
    let deadline = tokio::time::Instant::now() + timing.import_timeout;
    loop {
        let image = glance.get(id).await?;
        let failed = image
            .text("os_glance_failed_import")
            .is_some_and(|stores| !stores.trim().is_empty());
        let busy = matches!(image.status.as_str(), "saving" | "uploading" | "importing")
            || (just_started && image.status == "queued" && !failed);
        if failed && image.status == "queued" {
            return Err(GlanceError::Import {
                id: id.to_string(),
                detail: format!("{WEB_DOWNLOAD_FAILED} (os_glance_failed_import is set)"),
            });
        }
        if !busy {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(GlanceError::Import {
                id: id.to_string(),
                detail: format!("still {} after {:?}", image.status, timing.import_timeout),
            });
        }
        tokio::time::sleep(timing.poll_interval).await;
    }
}

/// The `Exported` condition for a Glance export's status.
pub fn exported_condition(status: &GlanceExportStatus, now: Timestamp) -> crate::api::Condition {
    use crate::api::ConditionStatus;
    let image = status.image_id.as_deref().unwrap_or("-");
    let (condition, reason, message) = match status.state {
        GlanceExportState::Exported => (
            ConditionStatus::True,
            "Exported",
            format!("Glance image {image} is active with the verified sha512"),
        ),
        GlanceExportState::Importing => (
            ConditionStatus::False,
            "Importing",
            format!("Glance is importing image {image}"),
        ),
        GlanceExportState::Pending => (
            ConditionStatus::False,
            "Pending",
            "waiting for a verified image".to_string(),
        ),
        GlanceExportState::Retired => (
            ConditionStatus::False,
            "Retired",
            "the image expired or was withdrawn; its Glance images were retired".to_string(),
        ),
        GlanceExportState::Failed => (
            ConditionStatus::False,
            "ExportFailed",
            status.last_error.clone().unwrap_or_default(),
        ),
    };
    crate::api::Condition::new(
        crate::api::export::EXPORTED_CONDITION,
        condition,
        reason,
        message,
        now,
    )
}

/// What the driver knows of one ImageSubscription, turned into what to
/// export: the identifier it follows, and the cache's state of it.
pub fn target_of<'a>(
    status: &'a crate::api::ImageSubscriptionStatus,
    image: Option<&'a Image>,
) -> Option<(&'a str, Target<'a>)> {
    use crate::api::ImagePhase;
    let identifier = status.image.as_ref().map(|i| i.identifier.as_str())?;
    let target = match (status.phase, &status.artifact, image) {
        (ImagePhase::Available, Some(artifact), Some(image)) => Target::Available {
            image,
            sha512: artifact
                .digest
                .strip_prefix("sha512:")
                .unwrap_or(&artifact.digest),
            path: Path::new(&artifact.path),
            size: artifact.size,
            url: Some(artifact.url.as_str()).filter(|u| !u.is_empty()),
        },
        (ImagePhase::Expired, _, _) => Target::Retire,
        _ => Target::Wait,
    };
    Some((identifier, target))
}
