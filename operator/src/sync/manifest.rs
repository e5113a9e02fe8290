//! Reading the manifests `vmlisub sync` works from: the same YAML a user
//! would `kubectl apply` (apiVersion, kind, metadata, spec), so that a site
//! can move from cron to the operator without rewriting anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

pub use crate::api::names::{is_valid_name, is_valid_namespace};
use crate::api::{API_VERSION, Endorser, ImageListSubscription, ImageSubscription};
use crate::reason::Reason;
pub use crate::subscription::{ObjectKey, SecretData};

/// Manifest files larger than this are refused.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// More objects than this across all files is a mistake.
pub const MAX_OBJECTS: usize = 10_000;

/// The namespace of objects that name none, as kubectl does.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Everything the manifests declared, keyed by `namespace/name`.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    pub endorsers: BTreeMap<ObjectKey, Endorser>,
    pub lists: BTreeMap<ObjectKey, ImageListSubscription>,
    pub images: BTreeMap<ObjectKey, ImageSubscription>,
    pub secrets: BTreeMap<ObjectKey, SecretData>,
    pub config_maps: BTreeMap<ObjectKey, SecretData>,
    /// Documents that were skipped, and why (other kinds, for instance).
    pub warnings: Vec<String>,
}

/// Why the manifests could not be read.
#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{path}: document {index}: {message}")]
    Invalid {
        path: PathBuf,
        index: usize,
        message: String,
    },
    #[error("{kind} {key} is declared twice ({path})")]
    Duplicate {
        kind: String,
        key: ObjectKey,
        path: PathBuf,
    },
    #[error("more than {MAX_OBJECTS} objects")]
    TooMany,
}

impl Reason for ManifestError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Read { .. } => "manifest-unreadable",
            _ => "manifest-invalid",
        }
    }
}

/// The YAML and JSON files named by `paths` (directories are read one level
/// deep, in name order).
pub fn manifest_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ManifestError> {
    let mut files = Vec::new();
    for path in paths {
        let read_err = |source| ManifestError::Read {
            path: path.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(read_err)?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|entry| {
                    entry
                        .extension()
                        .and_then(|ext| ext.to_str())
                        .is_some_and(|ext| matches!(ext, "yaml" | "yml" | "json"))
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Reads and validates all manifests.
pub fn load(paths: &[PathBuf]) -> Result<Manifests, ManifestError> {
    let mut manifests = Manifests::default();
    let mut count = 0;
    for file in manifest_files(paths)? {
        let meta = std::fs::metadata(&file).map_err(|source| ManifestError::Read {
            path: file.clone(),
            source,
        })?;
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge { path: file });
        }
        let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Read {
            path: file.clone(),
            source,
        })?;
        add_text(&mut manifests, &mut count, &file, &text)?;
    }
    Ok(manifests)
}

/// Reads and validates the manifests of one YAML text, as [`load`] reads
/// a file (`origin` names it in messages): what `vmlisub subscribe` checks
/// its own output with.
pub fn load_text(text: &str, origin: &Path) -> Result<Manifests, ManifestError> {
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            path: origin.to_path_buf(),
        });
    }
    let mut manifests = Manifests::default();
    add_text(&mut manifests, &mut 0, origin, text)?;
    Ok(manifests)
}

fn add_text(
    manifests: &mut Manifests,
    count: &mut usize,
    file: &Path,
    text: &str,
) -> Result<(), ManifestError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|err| ManifestError::Yaml {
            path: file.to_path_buf(),
            message: err.to_string(),
        })?;
    for (index, document) in documents.into_iter().enumerate() {
        if document.is_null() {
            continue;
        }
        *count += 1;
        if *count > MAX_OBJECTS {
            return Err(ManifestError::TooMany);
        }
        add_document(manifests, file, index, document)?;
    }
    Ok(())
}

fn add_document(
    manifests: &mut Manifests,
    path: &Path,
    index: usize,
    mut document: Value,
) -> Result<(), ManifestError> {
    let invalid = |message: String| ManifestError::Invalid {
        path: path.to_path_buf(),
        index,
        message,
    };
    let kind = document
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("no kind".into()))?
        .to_string();
    let api_version = document
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{kind} without metadata.name")))?
        .to_string();
    if !is_valid_name(&name) {
        return Err(invalid(format!(
            "{kind} name {name:?} is not a valid Kubernetes name (lowercase RFC 1123)"
        )));
    }
    let namespace = match document
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
    {
        Some(namespace) => namespace.to_string(),
        None => {
            if let Some(metadata) = document.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.insert("namespace".into(), Value::String(DEFAULT_NAMESPACE.into()));
            }
            DEFAULT_NAMESPACE.to_string()
        }
    };
    if !is_valid_namespace(&namespace) {
        return Err(invalid(format!("namespace {namespace:?} is not valid")));
    }
    let key = ObjectKey::new(&namespace, &name);
    let duplicate = |kind: &str| ManifestError::Duplicate {
        kind: kind.to_string(),
        key: key.clone(),
        path: path.to_path_buf(),
    };
    let is_ours = api_version == API_VERSION;
    match (kind.as_str(), is_ours) {
        ("Endorser", true) => {
            let object: Endorser = serde_json::from_value(document)
                .map_err(|err| invalid(format!("Endorser {key}: {err}")))?;
            if object.spec.credentials.is_empty() {
                return Err(invalid(format!("Endorser {key}: no credentials")));
            }
            if manifests.endorsers.insert(key.clone(), object).is_some() {
                return Err(duplicate("Endorser"));
            }
        }
        ("ImageListSubscription", true) => {
            let object: ImageListSubscription = serde_json::from_value(document)
                .map_err(|err| invalid(format!("ImageListSubscription {key}: {err}")))?;
            crate::api::duration::parse_duration(&object.spec.interval)
                .map_err(|err| invalid(format!("ImageListSubscription {key}: {err}")))?;
            if manifests.lists.insert(key.clone(), object).is_some() {
                return Err(duplicate("ImageListSubscription"));
            }
        }
        ("ImageSubscription", true) => {
            let object: ImageSubscription = serde_json::from_value(document)
                .map_err(|err| invalid(format!("ImageSubscription {key}: {err}")))?;
            if object.spec.identifier.is_some() == object.spec.sha512.is_some() {
                return Err(invalid(format!(
                    "ImageSubscription {key}: exactly one of identifier and sha512 must be set"
                )));
            }
            if manifests.images.insert(key.clone(), object).is_some() {
                return Err(duplicate("ImageSubscription"));
            }
        }
        ("Secret", _) | ("ConfigMap", _) if api_version == "v1" => {
            let data = key_values(&document).map_err(invalid)?;
            let map = if kind == "Secret" {
                &mut manifests.secrets
            } else {
                &mut manifests.config_maps
            };
            if map.insert(key.clone(), data).is_some() {
                return Err(duplicate(&kind));
            }
        }
        _ => manifests.warnings.push(format!(
            "{}: document {index}: {api_version} {kind} {key} ignored",
            path.display()
        )),
    }
    Ok(())
}

/// `data` (base64) and `stringData` of a Secret or ConfigMap.
fn key_values(document: &Value) -> Result<SecretData, String> {
    use base64ct::Encoding as _;
    let mut values = BTreeMap::new();
    if let Some(data) = document.get("data").and_then(Value::as_object) {
        for (key, value) in data {
            let text = value
                .as_str()
                .ok_or_else(|| format!("data.{key} is not a string"))?;
            // ConfigMap data is plain text; Secret data is base64.
            let bytes = if document.get("kind").and_then(Value::as_str) == Some("Secret") {
                base64ct::Base64::decode_vec(text.trim())
                    .map_err(|_| format!("data.{key} is not base64"))?
            } else {
                text.as_bytes().to_vec()
            };
            values.insert(key.clone(), bytes);
        }
    }
    if let Some(data) = document.get("stringData").and_then(Value::as_object) {
        for (key, value) in data {
            let text = value
                .as_str()
                .ok_or_else(|| format!("stringData.{key} is not a string"))?;
            values.insert(key.clone(), text.as_bytes().to_vec());
        }
    }
    Ok(SecretData { values })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Manifests, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, text).unwrap();
        load(&[dir.path().to_path_buf()])
    }

    const GOOD: &str = r#"
apiVersion: vmli.hepix.org/v1alpha1
kind: Endorser
metadata: {name: cernvm}
spec:
  description: CernVM release team
  credentials:
    - subject: "/DC=ch/DC=cern/CN=Predrag Buncic"
      issuer: "/DC=ch/DC=cern/CN=CERN Trusted Certification Authority"
---
apiVersion: vmli.hepix.org/v1alpha1
kind: ImageListSubscription
metadata: {name: cernvm, namespace: grid}
spec:
  url: https://cernvm.cern.ch/releases/image.list
  endorsers: [{name: cernvm}]
---
apiVersion: vmli.hepix.org/v1alpha1
kind: ImageSubscription
metadata: {name: cernvm-4}
spec:
  subscriptionRef: {name: cernvm}
  identifier: 858a817e-0ca2-473f-89d3-d5bdfc51968e
---
apiVersion: v1
kind: Secret
metadata: {name: appdb-token}
stringData: {username: abc, password: x-oauth-basic}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: other}
"#;

    #[test]
    fn reads_the_kubectl_manifests() {
        let manifests = load_text(GOOD).unwrap();
        assert_eq!(manifests.endorsers.len(), 1);
        let list = &manifests.lists[&ObjectKey::new("grid", "cernvm")];
        assert_eq!(list.spec.interval, "6h");
        assert!(
            manifests
                .images
                .contains_key(&ObjectKey::new("default", "cernvm-4"))
        );
        assert_eq!(
            manifests.secrets[&ObjectKey::new("default", "appdb-token")].values["password"],
            b"x-oauth-basic"
        );
        assert_eq!(manifests.warnings.len(), 1, "{:?}", manifests.warnings);
    }

    #[test]
    fn refuses_unsafe_or_inconsistent_manifests() {
        for bad in [
            "apiVersion: vmli.hepix.org/v1alpha1\nkind: Endorser\nmetadata: {name: ../x}\nspec: {credentials: [{subject: /CN=a, issuer: /CN=b}]}\n",
            "apiVersion: vmli.hepix.org/v1alpha1\nkind: Endorser\nmetadata: {name: Upper}\nspec: {credentials: [{subject: /CN=a, issuer: /CN=b}]}\n",
            "apiVersion: vmli.hepix.org/v1alpha1\nkind: ImageSubscription\nmetadata: {name: x}\nspec: {subscriptionRef: {name: y}}\n",
            "apiVersion: vmli.hepix.org/v1alpha1\nkind: ImageListSubscription\nmetadata: {name: x}\nspec: {url: 'https://x', interval: forever}\n",
            "apiVersion: vmli.hepix.org/v1alpha1\nkind: Endorser\nmetadata: {name: a, namespace: 'b/c'}\nspec: {credentials: [{subject: /CN=a, issuer: /CN=b}]}\n",
            "kind: [unclosed\n",
        ] {
            assert!(load_text(bad).is_err(), "{bad}");
        }
        let twice = format!("{GOOD}\n---\n{}", GOOD.split("---").next().unwrap());
        assert!(matches!(
            load_text(&twice),
            Err(ManifestError::Duplicate { .. })
        ));
    }

    #[test]
    fn names_follow_kubernetes_rules() {
        assert!(is_valid_name("cernvm-4"));
        assert!(is_valid_name("a.b-c"));
        for bad in ["", "A", "-a", "a-", "a_b", "a/b", "..", &"a".repeat(254)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(!is_valid_namespace("a.b"));
    }
}
