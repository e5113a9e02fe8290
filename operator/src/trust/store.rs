//! The grid trust store: CA certificates, CRLs and namespace policies.
//!
//! The store is built from `(file name, bytes)` pairs so that parsing stays
//! pure and testable; [`load_dir`] and [`CaDirCache`] are the thin I/O layer
//! that reads an IGTF-layout directory such as `/etc/grid-security/certificates`.
//!
//! Files are recognised by extension and content, never by their hash name:
//! IGTF bundles still ship old-style MD5 subject hashes, and a site may add
//! `*.pem` files with any name. A file that cannot be parsed is recorded as a
//! problem and skipped, so one bad CRL does not take the whole site down.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use der::{Decode, Encode};
use pki_types::{CertificateDer, TrustAnchor};
use thiserror::Error;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

use super::dn;
use super::policy::{PolicySet, PolicyVerdict};

/// Files larger than this are not CA material (CRLs of big CAs reach a few MiB).
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// More files than this in a CA directory is a misconfiguration.
pub const MAX_FILES: usize = 20_000;

/// A CA certificate from the store.
#[derive(Debug, Clone)]
pub struct StoredCa {
    pub der: CertificateDer<'static>,
    pub subject: String,
    /// The raw DER of the subject Name, to match issuers byte-for-byte.
    pub subject_der: Vec<u8>,
    pub spki_der: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub self_signed: bool,
    pub source: String,
}

/// A CRL from the store, pre-digested for fast revocation checks.
#[derive(Debug, Clone)]
pub struct StoredCrl {
    pub issuer: String,
    pub issuer_der: Vec<u8>,
    pub this_update: i64,
    pub next_update: Option<i64>,
    /// DER of the signed part (tbsCertList).
    pub(crate) tbs_der: Vec<u8>,
    /// The signature AlgorithmIdentifier, as DER contents.
    pub(crate) signature_algorithm: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    /// Revoked serial numbers, without leading zero octets.
    pub(crate) revoked: HashSet<Vec<u8>>,
    /// A critical extension vmlisub does not understand (delta CRLs,
    /// partitioned CRLs): such a CRL cannot be relied on.
    pub(crate) unsupported_critical: Option<String>,
    pub source: String,
}

/// Serial numbers compare without the sign-padding zero octet.
pub(crate) fn normalise_serial(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|byte| **byte == 0).count();
    &bytes[zeros.min(bytes.len().saturating_sub(1))..]
}

/// An AlgorithmIdentifier as DER contents (OID and parameters, no tag).
pub(crate) fn algorithm_contents(
    algorithm: &spki::AlgorithmIdentifierOwned,
) -> Result<Vec<u8>, der::Error> {
    let mut contents = algorithm.oid.to_der()?;
    if let Some(parameters) = &algorithm.parameters {
        contents.extend(parameters.to_der()?);
    }
    Ok(contents)
}

/// The exact bytes of the first element inside a DER SEQUENCE (the signed
/// part of a CRL), without re-encoding anything.
fn first_element(der: &[u8]) -> Result<Vec<u8>, der::Error> {
    let outer = der::asn1::AnyRef::from_der(der)?;
    let (inner, _) = der::asn1::AnyRef::from_der_partial(outer.value())?;
    inner.to_der()
}

/// x509-cert cannot read v1 CRLs (no version field), which `openssl ca
/// -gencrl` still writes without a crlnumber file. For parsing only, such a
/// CRL gets an explicit `version v1`; the signature is checked over the
/// original bytes ([`first_element`]).
fn with_explicit_version(der: &[u8]) -> Result<Vec<u8>, der::Error> {
    use der::asn1::AnyRef;
    let outer = AnyRef::from_der(der)?;
    let (tbs, rest) = AnyRef::from_der_partial(outer.value())?;
    if tbs.value().first() == Some(&0x02) {
        return Ok(der.to_vec());
    }
    let mut tbs_value = vec![0x02, 0x01, 0x00];
    tbs_value.extend_from_slice(tbs.value());
    let new_tbs = AnyRef::new(der::Tag::Sequence, &tbs_value)?.to_der()?;
    let mut outer_value = new_tbs;
    outer_value.extend_from_slice(rest);
    AnyRef::new(der::Tag::Sequence, &outer_value)?.to_der()
}

/// CRL extensions that do not change which certificates a full CRL covers.
const UNDERSTOOD_CRL_EXTENSIONS: &[&str] = &[
    "2.5.29.20", // cRLNumber
    "2.5.29.35", // authorityKeyIdentifier
    "2.5.29.18", // issuerAltName
];

/// A file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub message: String,
}

/// A parsed, ready-to-use trust store.
#[derive(Debug, Default, Clone)]
pub struct TrustStore {
    pub(crate) cas: Vec<StoredCa>,
    /// Trust anchors built from the self-signed CAs, in the order of `cas`.
    pub(crate) anchors: Vec<TrustAnchor<'static>>,
    /// Index into `cas` for each entry of `anchors`.
    pub(crate) anchor_ca: Vec<usize>,
    /// DER of CA certificates that are not self-signed: path candidates.
    pub(crate) intermediates: Vec<CertificateDer<'static>>,
    pub(crate) crls: Vec<StoredCrl>,
    pub(crate) policies: PolicySet,
    /// CAs whose policy file exists but could not be parsed.
    pub(crate) broken_policies: Vec<String>,
    pub problems: Vec<Problem>,
}

/// Why a CA directory could not be read at all.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot read CA directory {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA directory {path} has more than {MAX_FILES} files")]
    TooManyFiles { path: PathBuf },
    #[error("CA directory {path} holds no CA certificate")]
    Empty { path: PathBuf },
}

/// What a file name says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Certificates,
    Crl,
    SigningPolicy,
    Namespaces,
    Other,
}

fn classify(name: &str) -> FileKind {
    if name.starts_with('.') {
        return FileKind::Other;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some(split) => split,
        None => return FileKind::Other,
    };
    match ext {
        "pem" if stem.ends_with(".crl") => FileKind::Crl,
        "pem" | "crt" | "cer" => FileKind::Certificates,
        "crl" => FileKind::Crl,
        "signing_policy" => FileKind::SigningPolicy,
        "namespaces" => FileKind::Namespaces,
        _ if ext.len() == 1 && ext.as_bytes()[0].is_ascii_digit() => FileKind::Certificates,
        _ if ext.len() == 2 && ext.as_bytes()[0] == b'r' && ext.as_bytes()[1].is_ascii_digit() => {
            FileKind::Crl
        }
        _ => FileKind::Other,
    }
}

/// PEM blocks in `bytes` (label, DER). DER input is returned as one block
/// with an empty label.
fn pem_blocks(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    if bytes.first() == Some(&0x30) {
        return Ok(vec![(String::new(), bytes.to_vec())]);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "neither PEM nor DER".to_string())?;
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start..];
        let end_marker = after.find("-----END ").ok_or("unterminated PEM block")?;
        let end_line = after[end_marker..]
            .find('\n')
            .map_or(after.len(), |n| end_marker + n + 1);
        let block = &after[..end_line];
        let (label, der) =
            pem_rfc7468::decode_vec(block.as_bytes()).map_err(|err| format!("bad PEM: {err}"))?;
        blocks.push((label.to_string(), der));
        rest = &after[end_line..];
    }
    Ok(blocks)
}

fn unix(time: &x509_cert::time::Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

impl TrustStore {
    /// Builds a store from `(file name, contents)` pairs.
    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut store = TrustStore::default();
        let mut seen_certs: HashSet<Vec<u8>> = HashSet::new();
        let mut seen_crls: HashSet<Vec<u8>> = HashSet::new();
        let mut policy_files = Vec::new();
        // Certificates first: namespace files may say `SELF`, which means the
        // CA whose hash names the file, so the CAs must be known.
        for (name, bytes) in files {
            let result = match classify(name) {
                FileKind::Certificates => store.add_certificates(name, bytes, &mut seen_certs),
                FileKind::Crl => store.add_crls(name, bytes, &mut seen_crls),
                kind @ (FileKind::SigningPolicy | FileKind::Namespaces) => {
                    policy_files.push((kind, name, bytes));
                    Ok(())
                }
                FileKind::Other => Ok(()),
            };
            if let Err(message) = result {
                store.problems.push(Problem {
                    file: name.to_string(),
                    message,
                });
            }
        }
        for (kind, name, bytes) in policy_files {
            let owner = store.ca_for_policy_file(name);
            let result = std::str::from_utf8(bytes)
                .map_err(|_| "not UTF-8".to_string())
                .and_then(|text| {
                    let added = match (kind, &owner) {
                        (FileKind::SigningPolicy, _) => {
                            store.policies.add_signing_policy(text, name)
                        }
                        (_, Some(owner)) => {
                            store.policies.add_namespaces_with_self(text, name, owner)
                        }
                        (_, None) => store.policies.add_namespaces(text, name),
                    };
                    added.map_err(|err| err.to_string())
                });
            if let Err(message) = result {
                // Fail closed: a CA whose policy cannot be read vouches for nobody.
                if let Some(owner) = owner {
                    store.broken_policies.push(owner);
                }
                store.problems.push(Problem {
                    file: name.to_string(),
                    message,
                });
            }
        }
        store
    }

    /// The subject of the CA that a policy file belongs to: the one loaded
    /// from a certificate file with the same hash stem (`dd4b34ea.0` for
    /// `dd4b34ea.namespaces`).
    fn ca_for_policy_file(&self, name: &str) -> Option<String> {
        let stem = name.split('.').next()?;
        self.cas
            .iter()
            .find(|ca| {
                ca.source
                    .rsplit_once('.')
                    .is_some_and(|(ca_stem, ext)| ca_stem == stem && ext.len() == 1)
            })
            .map(|ca| ca.subject.clone())
    }

    /// Whether `issuer` may sign `subject` under its namespace policy. A CA
    /// whose policy file could not be read permits nobody.
    pub fn check_policy(&self, issuer: &str, subject: &str) -> PolicyVerdict {
        if self.broken_policies.iter().any(|broken| broken == issuer) {
            return PolicyVerdict::Denied {
                reason: "the CA's namespace policy file cannot be read".into(),
            };
        }
        self.policies.check(issuer, subject)
    }

    /// A certificate file of the CA directory: it must hold a certificate
    /// (CRLs in the same file are taken too).
    fn add_certificates(
        &mut self,
        name: &str,
        bytes: &[u8],
        seen: &mut HashSet<Vec<u8>>,
    ) -> Result<(), String> {
        match self.add_pem_material(name, bytes, seen)? {
            0 => Err("no certificate in file".into()),
            _ => Ok(()),
        }
    }

    /// Adds the certificates and CRLs of a PEM (or single DER certificate)
    /// file; returns how many certificates it held.
    fn add_pem_material(
        &mut self,
        name: &str,
        bytes: &[u8],
        seen: &mut HashSet<Vec<u8>>,
    ) -> Result<usize, String> {
        let mut certificates = 0;
        for (label, der) in pem_blocks(bytes)? {
            match label.as_str() {
                "" | "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE" => {
                    certificates += 1;
                    if seen.insert(der.clone()) {
                        self.add_ca(name, der)?;
                    }
                }
                "X509 CRL" => self.add_crl_der(name, der, &mut HashSet::new())?,
                _ => {}
            }
        }
        Ok(certificates)
    }

    fn add_ca(&mut self, name: &str, der: Vec<u8>) -> Result<(), String> {
        let cert = Certificate::from_der(&der).map_err(|err| format!("bad certificate: {err}"))?;
        let tbs = cert.tbs_certificate();
        let subject_der = tbs.subject().to_der().map_err(|err| err.to_string())?;
        let issuer_der = tbs.issuer().to_der().map_err(|err| err.to_string())?;
        let spki_der = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|err| err.to_string())?;
        let self_signed = subject_der == issuer_der;
        let subject = dn::cert_names(&der)
            .map(|names| names.subject)
            .unwrap_or_else(|_| dn::one_line(tbs.subject()));
        let ca = StoredCa {
            der: CertificateDer::from(der),
            subject,
            subject_der,
            spki_der,
            not_before: unix(&tbs.validity().not_before),
            not_after: unix(&tbs.validity().not_after),
            self_signed,
            source: name.to_string(),
        };
        if self_signed {
            let anchor = webpki::anchor_from_trusted_cert(&ca.der)
                .map_err(|err| format!("unusable trust anchor: {err}"))?
                .to_owned();
            self.anchors.push(anchor);
            self.anchor_ca.push(self.cas.len());
        } else {
            self.intermediates.push(ca.der.clone());
        }
        self.cas.push(ca);
        Ok(())
    }

    fn add_crls(
        &mut self,
        name: &str,
        bytes: &[u8],
        seen: &mut HashSet<Vec<u8>>,
    ) -> Result<(), String> {
        let mut found = false;
        for (label, der) in pem_blocks(bytes)? {
            if label.is_empty() || label == "X509 CRL" {
                found = true;
                self.add_crl_der(name, der, seen)?;
            }
        }
        if found {
            Ok(())
        } else {
            Err("no CRL in file".into())
        }
    }

    fn add_crl_der(
        &mut self,
        name: &str,
        der: Vec<u8>,
        seen: &mut HashSet<Vec<u8>>,
    ) -> Result<(), String> {
        if !seen.insert(der.clone()) {
            return Ok(());
        }
        let parseable = with_explicit_version(&der).map_err(|err| format!("bad CRL: {err}"))?;
        let crl = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&parseable)
            .map_err(|err| format!("bad CRL: {err}"))?;
        let tbs = &crl.tbs_cert_list;
        let revoked = tbs
            .revoked_certificates
            .iter()
            .flatten()
            .map(|entry| normalise_serial(entry.serial_number.as_bytes()).to_vec())
            .collect();
        let unsupported_critical = tbs
            .crl_extensions
            .iter()
            .flatten()
            .find(|ext| {
                ext.critical
                    && !UNDERSTOOD_CRL_EXTENSIONS.contains(&ext.extn_id.to_string().as_str())
            })
            .map(|ext| ext.extn_id.to_string());
        let signature = crl
            .signature
            .as_bytes()
            .ok_or("CRL signature has unused bits")?
            .to_vec();
        self.crls.push(StoredCrl {
            issuer: dn::one_line_from_der(&tbs.issuer.to_der().map_err(|err| err.to_string())?)
                .unwrap_or_else(|_| dn::one_line(&tbs.issuer)),
            issuer_der: tbs.issuer.to_der().map_err(|err| err.to_string())?,
            this_update: unix(&tbs.this_update),
            next_update: tbs.next_update.as_ref().map(unix),
            tbs_der: first_element(&der).map_err(|err| format!("bad CRL: {err}"))?,
            signature_algorithm: algorithm_contents(&crl.signature_algorithm)
                .map_err(|err| err.to_string())?,
            signature,
            revoked,
            unsupported_critical,
            source: name.to_string(),
        });
        Ok(())
    }

    /// Adds extra PEM material (CA certificates and CRLs), e.g. from a
    /// per-subscription ConfigMap.
    pub fn add_pem_bundle(&mut self, name: &str, bytes: &[u8]) {
        let mut seen: HashSet<Vec<u8>> =
            self.cas.iter().map(|ca| ca.der.as_ref().to_vec()).collect();
        if let Err(message) = self.add_pem_material(name, bytes, &mut seen) {
            self.problems.push(Problem {
                file: name.to_string(),
                message,
            });
        }
    }

    /// The CA certificates in the store.
    pub fn cas(&self) -> &[StoredCa] {
        &self.cas
    }

    /// The CRLs in the store.
    pub fn crls(&self) -> &[StoredCrl] {
        &self.crls
    }

    /// The namespace policies in the store.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// CRLs issued under the Name with this DER encoding.
    pub(crate) fn crls_for(&self, issuer_der: &[u8]) -> impl Iterator<Item = &StoredCrl> {
        self.crls
            .iter()
            .filter(move |crl| crl.issuer_der == issuer_der)
    }
}

/// Reads a CA directory into a [`TrustStore`].
pub fn load_dir(path: &Path) -> Result<TrustStore, StoreError> {
    let files = read_dir_files(path)?;
    let store = TrustStore::from_files(
        files
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice())),
    );
    if store.cas.is_empty() {
        return Err(StoreError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(store)
}

fn read_dir_files(path: &Path) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let read_err = |source| StoreError::ReadDir {
        path: path.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        if let Some(name) = entry.file_name().to_str()
            && classify(name) != FileKind::Other
        {
            names.push(name.to_string());
        }
        if names.len() > MAX_FILES {
            return Err(StoreError::TooManyFiles {
                path: path.to_path_buf(),
            });
        }
    }
    // Sorted, so that the store (and any tie between equal CAs) is deterministic.
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let full = path.join(&name);
        // Follows symlinks: IGTF directories link hash names to CA files.
        match std::fs::metadata(&full) {
            Ok(meta) if meta.is_file() && meta.len() <= MAX_FILE_BYTES => {}
            _ => continue,
        }
        if let Ok(bytes) = std::fs::read(&full) {
            files.push((name, bytes));
        }
    }
    Ok(files)
}

/// A cheap summary of a directory's state: names, sizes and mtimes.
fn fingerprint(path: &Path) -> std::io::Result<Vec<(String, u64, Option<SystemTime>)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if classify(&name) == FileKind::Other {
            continue;
        }
        let meta = std::fs::metadata(entry.path());
        let (len, modified) = match meta {
            Ok(meta) => (meta.len(), meta.modified().ok()),
            Err(_) => (0, None),
        };
        entries.push((name, len, modified));
        if entries.len() > MAX_FILES {
            break;
        }
    }
    entries.sort();
    Ok(entries)
}

/// Keeps a CA directory's parsed store warm and reloads it only when the
/// directory changed (fetch-crl rewrites CRLs several times a day).
#[derive(Debug)]
pub struct CaDirCache {
    path: PathBuf,
    fingerprint: Vec<(String, u64, Option<SystemTime>)>,
    store: Arc<TrustStore>,
}

impl CaDirCache {
    /// Loads the directory for the first time.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let fingerprint = fingerprint(&path).map_err(|source| StoreError::ReadDir {
            path: path.clone(),
            source,
        })?;
        let store = Arc::new(load_dir(&path)?);
        Ok(Self {
            path,
            fingerprint,
            store,
        })
    }

    /// The current store.
    pub fn store(&self) -> Arc<TrustStore> {
        Arc::clone(&self.store)
    }

    /// Reloads when the directory changed. Returns whether it did. On a
    /// failed reload the previous store stays in place.
    pub fn refresh(&mut self) -> Result<bool, StoreError> {
        let current = fingerprint(&self.path).map_err(|source| StoreError::ReadDir {
            path: self.path.clone(),
            source,
        })?;
        if current == self.fingerprint {
            return Ok(false);
        }
        let store = load_dir(&self.path)?;
        self.store = Arc::new(store);
        self.fingerprint = current;
        Ok(true)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds_follow_igtf_names() {
        assert_eq!(classify("dd4b34ea.0"), FileKind::Certificates);
        assert_eq!(classify("GridKa-CA.pem"), FileKind::Certificates);
        assert_eq!(classify("dd4b34ea.r0"), FileKind::Crl);
        assert_eq!(classify("dd4b34ea.crl"), FileKind::Crl);
        assert_eq!(classify("dd4b34ea.crl.pem"), FileKind::Crl);
        assert_eq!(classify("dd4b34ea.signing_policy"), FileKind::SigningPolicy);
        assert_eq!(classify("dd4b34ea.namespaces"), FileKind::Namespaces);
        assert_eq!(classify("dd4b34ea.info"), FileKind::Other);
        assert_eq!(classify("dd4b34ea.crl_url"), FileKind::Other);
        assert_eq!(classify(".hidden.0"), FileKind::Other);
        assert_eq!(classify("README"), FileKind::Other);
    }

    #[test]
    fn real_igtf_directory_loads_with_policies() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/real-lists/ca");
        let store = load_dir(&dir).unwrap();
        assert!(store.problems.is_empty(), "{:?}", store.problems);
        let subjects: Vec<&str> = store.cas().iter().map(|ca| ca.subject.as_str()).collect();
        assert!(subjects.contains(&"/C=DE/O=GermanGrid/CN=GridKa-CA"));
        assert!(subjects.contains(&"/DC=ORG/DC=SEE-GRID/CN=SEE-GRID CA 2013"));
        assert_eq!(store.anchors.len(), 2);
    }

    #[test]
    fn garbage_files_become_problems_not_failures() {
        let store = TrustStore::from_files([
            ("bad.0", &b"not a certificate"[..]),
            (
                "bad.r0",
                &b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"[..],
            ),
        ]);
        assert_eq!(store.problems.len(), 2);
        assert!(store.cas().is_empty());
    }

    #[test]
    fn cache_reloads_only_on_change() {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/testdata/real-lists/ca/dd4b34ea.0");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&source, dir.path().join("dd4b34ea.0")).unwrap();
        let mut cache = CaDirCache::open(dir.path()).unwrap();
        assert!(!cache.refresh().unwrap());
        std::fs::write(dir.path().join("dd4b34ea.namespaces"), "# empty\n").unwrap();
        assert!(cache.refresh().unwrap());
        assert!(!cache.refresh().unwrap());
    }
}
