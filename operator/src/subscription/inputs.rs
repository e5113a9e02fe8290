//! What one list subscription needs from its surroundings, already
//! dereferenced by the driver: the credentials of the Endorsers it names,
//! the trust bundles of its ConfigMap/Secret, and the transfer settings of
//! its Secrets.
//!
//! Each driver finds the named objects its own way (`vmlisub sync` in its
//! manifests, the operator through the API) and hands them over as
//! [`Sources`]; turning them into [`ListInputs`] is the same code for both,
//! so a missing or malformed Secret fails with the same reason everywhere.

use std::collections::{BTreeMap, BTreeSet};

use super::failure::Failure;
use crate::api::{Endorser, ImageListSubscription};
use crate::decision::Credential;
use crate::transfer::{Auth, ProxyConfig, TransferConfig};

/// A Secret as sync understands it: `stringData`/`data` key-value pairs
/// (for `secretRef`, `certSecretRef`, `proxySecretRef`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretData {
    pub values: BTreeMap<String, Vec<u8>>,
}

/// `namespace/name` of an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The objects a list names, looked up in its namespace.
pub trait Sources {
    fn secret(&self, name: &str) -> Option<&SecretData>;
    fn config_map(&self, name: &str) -> Option<&SecretData>;
    fn endorser(&self, name: &str) -> Option<&Endorser>;
    /// Whether a Secret or ConfigMap (`kind`) exists but was not opted in
    /// to being read ([`crate::api::CREDENTIALS_LABEL`]): its content was
    /// never read.
    fn not_opted_in(&self, _kind: SourceKind, _name: &str) -> bool {
        false
    }
}

/// The kinds of object a list reads data from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SourceKind {
    Secret,
    ConfigMap,
}

/// Named objects fetched for one list (what the operator reads by name).
#[derive(Debug, Default, Clone)]
pub struct Fetched {
    pub secrets: BTreeMap<String, SecretData>,
    pub config_maps: BTreeMap<String, SecretData>,
    pub endorsers: BTreeMap<String, Endorser>,
    /// Objects that exist without the opt-in label (content not read).
    pub not_opted_in: BTreeSet<(SourceKind, String)>,
}

impl Sources for Fetched {
    fn secret(&self, name: &str) -> Option<&SecretData> {
        self.secrets.get(name)
    }
    fn config_map(&self, name: &str) -> Option<&SecretData> {
        self.config_maps.get(name)
    }
    fn endorser(&self, name: &str) -> Option<&Endorser> {
        self.endorsers.get(name)
    }
    fn not_opted_in(&self, kind: SourceKind, name: &str) -> bool {
        self.not_opted_in.contains(&(kind, name.to_string()))
    }
}

/// The failure for an object that was not opted in.
fn not_opted_in(kind: SourceKind, what: &str, key: &ObjectKey, name: &str) -> Failure {
    let (reason, kind) = match kind {
        SourceKind::Secret => ("secret-not-opted-in", "Secret"),
        SourceKind::ConfigMap => ("config-map-not-opted-in", "ConfigMap"),
    };
    Failure::spec(
        reason,
        format!(
            "{what} {kind} {}/{name} does not carry the label {}=\"true\"; the operator reads only {kind}s labelled for it",
            key.namespace,
            crate::api::CREDENTIALS_LABEL
        ),
    )
}

/// The Secrets a list's transfers use (`secretRef`, `certSecretRef`,
/// `proxySecretRef`), by name.
pub fn transfer_secret_names(list: &ImageListSubscription) -> impl Iterator<Item = &str> {
    [
        list.spec.secret_ref.as_ref(),
        list.spec.image_secret_ref.as_ref(),
        list.spec.cert_secret_ref.as_ref(),
        list.spec.proxy_secret_ref.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|reference| reference.name.as_str())
}

/// How the transfers of one list authenticate and reach the publisher.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferSettings {
    /// `secretRef`'s credentials.
    pub auth: Option<Auth>,
    /// `imageSecretRef`'s credentials.
    pub image_auth: Option<Auth>,
    /// Extra transport CAs (`certSecretRef`'s `ca.crt`).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// `proxySecretRef`'s proxy, if it names one.
    pub proxy: Option<ProxyConfig>,
    /// `spec.timeout`: the deadline of one list fetch.
    pub list_timeout: Option<std::time::Duration>,
}

impl TransferSettings {
    /// The transfer configuration these settings give on top of `base`
    /// (the driver's defaults) for the list at `list_url`, to which the
    /// credentials are scoped: what every fetch of a list and its images
    /// uses, in both drivers and in `vmlisub verify URL` / `subscribe`.
    pub fn apply_to(
        &self,
        base: &TransferConfig,
        allow_file_urls: bool,
        list_url: &str,
    ) -> TransferConfig {
        let mut config = base.clone();
        config.allow_file_scheme = allow_file_urls;
        config.credential_scope = Some(list_url.to_string());
        if let Some(auth) = &self.auth {
            config.auth = auth.clone();
        }
        if let Some(auth) = &self.image_auth {
            config.image_auth = auth.clone();
        }
        if let Some(pem) = &self.extra_ca_pem {
            config.extra_ca_pem = pem.clone();
        }
        if let Some(proxy) = &self.proxy {
            config.proxy = proxy.clone();
        }
        if let Some(timeout) = self.list_timeout {
            config.total_timeout = timeout;
        }
        config
    }
}

/// The signing trust a list adds to (or puts in place of) the CA
/// directory: PEM bundles by source name (`configmap/<key>`,
/// `secret/<key>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustBundles {
    /// Only these bundles, not the CA directory.
    pub exclusive: bool,
    pub pems: Vec<(String, Vec<u8>)>,
}

/// Everything a list subscription's refresh needs, dereferenced. Missing
/// or unusable sources are kept as failures: the refresh reports them in
/// the order a reader expects (trust, endorsers, transfer).
#[derive(Debug, Clone)]
pub struct ListInputs {
    pub key: ObjectKey,
    /// The spec as it applies: with `autoEndorse`, the recorded first
    /// signer counts as one of its endorsers.
    pub list: ImageListSubscription,
    pub credentials: Vec<Credential>,
    /// Endorsers the list names that do not exist.
    pub missing_endorsers: Vec<String>,
    /// `None`: the CA directory alone.
    pub trust: Result<Option<TrustBundles>, Failure>,
    pub transfer: Result<TransferSettings, Failure>,
}

impl ListInputs {
    /// Dereferences what `list` names in `sources`.
    pub fn gather(key: &ObjectKey, list: &ImageListSubscription, sources: &impl Sources) -> Self {
        let mut credentials = Vec::new();
        let mut missing_endorsers = Vec::new();
        for reference in &list.spec.endorsers {
            match sources.endorser(&reference.name) {
                Some(endorser) => {
                    credentials.extend(endorser.spec.credentials.iter().map(|c| Credential {
                        subject: c.subject.clone(),
                        issuer: c.issuer.clone(),
                    }))
                }
                None => missing_endorsers.push(reference.name.clone()),
            }
        }
        Self {
            key: key.clone(),
            list: list.clone(),
            credentials,
            missing_endorsers,
            trust: trust_bundles(key, list, sources),
            transfer: transfer_settings(key, list, sources),
        }
    }
}

/// The transfer settings `list`'s Secrets give.
pub fn transfer_settings(
    key: &ObjectKey,
    list: &ImageListSubscription,
    sources: &impl Sources,
) -> Result<TransferSettings, Failure> {
    let mut settings = TransferSettings {
        list_timeout: list
            .spec
            .timeout
            .as_deref()
            .and_then(|t| crate::api::duration::parse_duration(t).ok()),
        ..TransferSettings::default()
    };
    let secret = |what: &str, name: &str| {
        if sources.not_opted_in(SourceKind::Secret, name) {
            return Err(not_opted_in(SourceKind::Secret, what, key, name));
        }
        sources.secret(name).ok_or_else(|| {
            Failure::transient(
                "secret-missing",
                format!("{what} Secret {}/{name} not found", key.namespace),
            )
        })
    };
    let text = |data: &SecretData, k: &str| {
        data.values
            .get(k)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let credentials = |what: &str, name: &str| -> Result<Auth, Failure> {
        let data = secret(what, name)?;
        match (
            text(data, "username"),
            text(data, "password"),
            text(data, "token"),
        ) {
            (Some(user), Some(password), _) => Ok(Auth::Basic { user, password }),
            (_, _, Some(token)) => Ok(Auth::Bearer { token }),
            _ => Err(Failure::spec(
                "secret-invalid",
                format!("{what} Secret {name} needs username and password, or token"),
            )),
        }
    };
    if let Some(reference) = &list.spec.secret_ref {
        settings.auth = Some(credentials("secretRef", &reference.name)?);
    }
    if let Some(reference) = &list.spec.image_secret_ref {
        settings.image_auth = Some(credentials("imageSecretRef", &reference.name)?);
    }
    if let Some(reference) = &list.spec.cert_secret_ref {
        let data = secret("certSecretRef", &reference.name)?;
        settings.extra_ca_pem = Some(data.values.get("ca.crt").cloned().unwrap_or_default());
    }
    if let Some(reference) = &list.spec.proxy_secret_ref {
        let data = secret("proxySecretRef", &reference.name)?;
        if let Some(url) = text(data, "address") {
            settings.proxy = Some(ProxyConfig::Explicit {
                url,
                no_proxy: text(data, "noProxy")
                    .map(|list| list.split(',').map(|s| s.trim().to_string()).collect())
                    .unwrap_or_default(),
            });
        }
    }
    Ok(settings)
}

fn trust_bundles(
    key: &ObjectKey,
    list: &ImageListSubscription,
    sources: &impl Sources,
) -> Result<Option<TrustBundles>, Failure> {
    let Some(source) = &list.spec.trust else {
        return Ok(None);
    };
    let mut bundles = TrustBundles {
        exclusive: source.exclusive,
        pems: Vec::new(),
    };
    let missing = |kind: &str, name: &str| {
        Failure::transient(
            "trust-source-missing",
            format!("{kind} {}/{name} not found", key.namespace),
        )
    };
    if let Some(reference) = &source.config_map_ref {
        if sources.not_opted_in(SourceKind::ConfigMap, &reference.name) {
            return Err(not_opted_in(
                SourceKind::ConfigMap,
                "trust.configMapRef",
                key,
                &reference.name,
            ));
        }
        let data = sources
            .config_map(&reference.name)
            .ok_or_else(|| missing("ConfigMap", &reference.name))?;
        bundles.pems.extend(
            data.values
                .iter()
                .map(|(k, v)| (format!("configmap/{k}"), v.clone())),
        );
    }
    if let Some(reference) = &source.secret_ref {
        if sources.not_opted_in(SourceKind::Secret, &reference.name) {
            return Err(not_opted_in(
                SourceKind::Secret,
                "trust.secretRef",
                key,
                &reference.name,
            ));
        }
        let data = sources
            .secret(&reference.name)
            .ok_or_else(|| missing("Secret", &reference.name))?;
        bundles.pems.extend(
            data.values
                .iter()
                .map(|(k, v)| (format!("secret/{k}"), v.clone())),
        );
    }
    Ok(Some(bundles))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::subscription::failure::FailureClass;

    fn list(spec: serde_json::Value) -> ImageListSubscription {
        ImageListSubscription::new("l", serde_json::from_value(spec).unwrap())
    }

    fn secret(pairs: &[(&str, &str)]) -> SecretData {
        SecretData {
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    fn key() -> ObjectKey {
        ObjectKey::new("grid", "l")
    }

    #[test]
    fn a_secret_without_the_opt_in_label_is_refused_unread() {
        let list = list(serde_json::json!({
            "url": "https://attacker.example/list",
            "secretRef": {"name": "default-token"},
        }));
        let mut fetched = Fetched::default();
        fetched
            .not_opted_in
            .insert((SourceKind::Secret, "default-token".into()));
        let inputs = ListInputs::gather(&key(), &list, &fetched);
        let failure = inputs.transfer.unwrap_err();
        assert_eq!(failure.reason, "secret-not-opted-in");
        assert_eq!(failure.class, FailureClass::SpecError);
        assert!(failure.message.contains("grid/default-token"));
        assert!(failure.message.contains(crate::api::CREDENTIALS_LABEL));
    }

    #[test]
    fn trust_sources_need_the_label_too() {
        let list = list(serde_json::json!({
            "url": "https://example.org/list",
            "trust": {"configMapRef": {"name": "cas"}, "secretRef": {"name": "more"}},
        }));
        let mut fetched = Fetched::default();
        fetched
            .not_opted_in
            .insert((SourceKind::ConfigMap, "cas".into()));
        let failure = ListInputs::gather(&key(), &list, &fetched)
            .trust
            .unwrap_err();
        assert_eq!(failure.reason, "config-map-not-opted-in");
        fetched.not_opted_in.clear();
        fetched
            .config_maps
            .insert("cas".into(), secret(&[("ca.pem", "x")]));
        fetched
            .not_opted_in
            .insert((SourceKind::Secret, "more".into()));
        let failure = ListInputs::gather(&key(), &list, &fetched)
            .trust
            .unwrap_err();
        assert_eq!(failure.reason, "secret-not-opted-in");
    }

    #[test]
    fn secrets_give_credentials_ca_and_proxy() {
        let list = list(serde_json::json!({
            "url": "https://example.org/list",
            "secretRef": {"name": "auth"},
            "certSecretRef": {"name": "ca"},
            "proxySecretRef": {"name": "proxy"},
        }));
        let mut fetched = Fetched::default();
        fetched
            .secrets
            .insert("auth".into(), secret(&[("token", "t0k")]));
        fetched
            .secrets
            .insert("ca".into(), secret(&[("ca.crt", "PEM")]));
        fetched.secrets.insert(
            "proxy".into(),
            secret(&[("address", "http://proxy:3128"), ("noProxy", "a, .b")]),
        );
        let settings = ListInputs::gather(&key(), &list, &fetched)
            .transfer
            .unwrap();
        assert_eq!(
            settings.auth,
            Some(Auth::Bearer {
                token: "t0k".into()
            })
        );
        assert_eq!(settings.extra_ca_pem.as_deref(), Some(b"PEM".as_slice()));
        assert_eq!(
            settings.proxy,
            Some(ProxyConfig::Explicit {
                url: "http://proxy:3128".into(),
                no_proxy: vec!["a".into(), ".b".into()],
            })
        );
        // A missing Secret may still appear: transient.
        fetched.secrets.remove("auth");
        let failure = ListInputs::gather(&key(), &list, &fetched)
            .transfer
            .unwrap_err();
        assert_eq!(
            (failure.reason.as_ref(), failure.class),
            ("secret-missing", FailureClass::Transient)
        );
        // One without usable keys is a spec error.
        fetched
            .secrets
            .insert("auth".into(), secret(&[("user", "x")]));
        let failure = ListInputs::gather(&key(), &list, &fetched)
            .transfer
            .unwrap_err();
        assert_eq!(failure.reason, "secret-invalid");
    }
}
