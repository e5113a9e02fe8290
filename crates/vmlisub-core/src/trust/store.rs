//! The grid trust store: CA certificates, CRLs and namespace policies.
//!
//! The store is built from `(file name, bytes)` pairs so that parsing stays
//! pure and testable; the `vmlisub` crate's `trust::dir` is the thin I/O layer
//! that reads an IGTF-layout directory such as `/etc/grid-security/certificates`.
//!
//! Files are recognised by extension and content, never by their hash name:
//! IGTF bundles still ship old-style MD5 subject hashes, and a site may add
//! `*.pem` files with any name. A file that cannot be parsed is recorded as a
//! problem and skipped, so one bad CRL does not take the whole site down.

use std::collections::HashSet;

use super::cert::CertInfo;
pub use super::crl::StoredCrl;
use super::name::{CanonicalName, openssl_hash_old};
use super::policy::{PolicySet, PolicyVerdict};
use thiserror::Error;

/// Files larger than this are not CA material (CRLs of big CAs reach a few MiB).
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// More files than this in a CA directory is a misconfiguration.
pub const MAX_FILES: usize = 20_000;

/// Where a CA certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaOrigin {
    /// The operator-wide CA directory.
    Directory,
    /// A per-subscription bundle (ConfigMap or Secret).
    Bundle,
}

/// A CA certificate from the store.
#[derive(Debug, Clone)]
pub struct StoredCa {
    pub info: CertInfo,
    /// OpenSSL one-line subject.
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    /// Self-signed (see [`CertInfo::is_self_signed`]): a trust anchor.
    pub self_signed: bool,
    pub origin: CaOrigin,
    pub source: String,
    /// Where the CA publishes its CRL, in the order to try (from
    /// `HASH.info` / `HASH.crl_url`).
    pub crl_urls: Vec<String>,
}

/// The CRL URLs of a `.info` file (`crl_url = URL[;URL...]`) or a
/// `.crl_url` file (one URL a line). Only http and https URLs are kept.
fn crl_urls(name: &str, text: &str) -> Vec<String> {
    let values: Vec<&str> = if name.ends_with(".info") {
        text.lines()
            .filter_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "crl_url").then_some(value)
            })
            .flat_map(|value| value.split([';', ' ', '\t']))
            .collect()
    } else {
        text.lines().collect()
    };
    values
        .into_iter()
        .map(str::trim)
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
        .map(str::to_string)
        .collect()
}

/// A file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub message: String,
}

/// A parsed, ready-to-use trust store.
#[derive(Debug, Default, Clone)]
pub struct TrustStore {
    pub cas: Vec<StoredCa>,
    pub crls: Vec<StoredCrl>,
    pub policies: PolicySet,
    /// Canonical subjects of CAs whose policy file exists but could not be
    /// parsed: they vouch for nobody.
    pub broken_policies: Vec<CanonicalName>,
    pub problems: Vec<Problem>,
}

/// Why per-subscription trust material was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BundleError {
    #[error(
        "{source_name}: CA {subject} has the subject of a CA of the operator-wide CA directory ({directory_source}); a per-subscription CA may not stand in for it"
    )]
    ShadowsDirectoryCa {
        source_name: String,
        subject: String,
        directory_source: String,
    },
}

/// Whether a file name, by its IGTF-layout extension, may hold CA
/// material (certificates, CRLs, policies, CRL locations): what a
/// directory reader should read.
pub fn is_trust_file(name: &str) -> bool {
    classify(name) != FileKind::Other
}

/// Whether a file name is that of a CRL file (`*.r0`, `*.crl`, `*.crl.pem`).
pub fn is_crl_file(name: &str) -> bool {
    classify(name) == FileKind::Crl
}

impl crate::reason::Reason for BundleError {
    fn reason(&self) -> &'static str {
        match self {
            Self::ShadowsDirectoryCa { .. } => "trust-source-invalid",
        }
    }
}

/// What a file name says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Certificates,
    Crl,
    SigningPolicy,
    Namespaces,
    /// `HASH.info` (`crl_url = ...`) or `HASH.crl_url` (one URL a line).
    CrlLocation,
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
        "info" | "crl_url" => FileKind::CrlLocation,
        _ if ext.len() == 1 && ext.as_bytes()[0].is_ascii_digit() => FileKind::Certificates,
        _ if ext.len() == 2 && ext.as_bytes()[0] == b'r' && ext.as_bytes()[1].is_ascii_digit() => {
            FileKind::Crl
        }
        _ => FileKind::Other,
    }
}

/// PEM blocks in `bytes` (label, DER). DER input is returned as one block
/// with an empty label.
pub fn pem_blocks(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
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

impl TrustStore {
    /// Builds a store from `(file name, contents)` pairs.
    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut store = TrustStore::default();
        let mut seen_certs: HashSet<Vec<u8>> = HashSet::new();
        let mut seen_crls: HashSet<Vec<u8>> = HashSet::new();
        let mut policy_files = Vec::new();
        let mut location_files = Vec::new();
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
                FileKind::CrlLocation => {
                    location_files.push((name, bytes));
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
        for (name, bytes) in location_files {
            let urls = crl_urls(name, &String::from_utf8_lossy(bytes));
            if let Some((_, owner)) = store.ca_for_policy_file(name) {
                for ca in store.cas.iter_mut().filter(|ca| ca.info.subject == owner) {
                    for url in &urls {
                        if !ca.crl_urls.contains(url) {
                            ca.crl_urls.push(url.clone());
                        }
                    }
                }
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
                        (_, Some((owner, _))) => {
                            store.policies.add_namespaces_with_self(text, name, owner)
                        }
                        (_, None) => store.policies.add_namespaces(text, name),
                    };
                    added.map_err(|err| err.to_string())
                });
            if let Err(message) = result {
                // Fail closed: a CA whose policy cannot be read vouches for nobody.
                if let Some((_, owner)) = owner {
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

    /// The CA a policy file belongs to: the CA whose OpenSSL subject hash
    /// (new style, or the old MD5 style IGTF bundles still ship) names the
    /// file, whatever the CA's own file is called; failing that, a CA
    /// loaded from a certificate file with the same stem (`GridKa.0` for
    /// `GridKa.namespaces`). Only CAs of the CA directory qualify.
    fn ca_for_policy_file(&self, name: &str) -> Option<(String, CanonicalName)> {
        let stem = name.split('.').next()?;
        let directory = || {
            self.cas
                .iter()
                .filter(|ca| ca.origin == CaOrigin::Directory)
        };
        let by_hash = u32::from_str_radix(stem, 16)
            .ok()
            .filter(|_| stem.len() == 8)
            .and_then(|hash| {
                directory().find(|ca| {
                    ca.info.subject.openssl_hash() == hash
                        || openssl_hash_old(&ca.info.subject_der) == hash
                })
            });
        by_hash
            .or_else(|| {
                directory().find(|ca| {
                    ca.source
                        .rsplit_once('.')
                        .is_some_and(|(ca_stem, ext)| ca_stem == stem && ext.len() == 1)
                })
            })
            .map(|ca| (ca.subject.clone(), ca.info.subject.clone()))
    }

    /// Whether the CA `issuer` may sign `subject` under its namespace
    /// policy. A CA whose policy file could not be read permits nobody.
    pub fn check_policy(&self, issuer: &CertInfo, subject: &str) -> PolicyVerdict {
        if self.broken_policies.contains(&issuer.subject) {
            return PolicyVerdict::Denied {
                reason: "the CA's namespace policy file cannot be read".into(),
            };
        }
        self.policies.check(&issuer.subject_line, subject)
    }

    /// A certificate file of the CA directory: it must hold a certificate
    /// (CRLs in the same file are taken too).
    fn add_certificates(
        &mut self,
        name: &str,
        bytes: &[u8],
        seen: &mut HashSet<Vec<u8>>,
    ) -> Result<(), String> {
        match self.add_pem_material(name, bytes, seen, CaOrigin::Directory)? {
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
        origin: CaOrigin,
    ) -> Result<usize, String> {
        let mut certificates = 0;
        for (label, der) in pem_blocks(bytes)? {
            match label.as_str() {
                "" | "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE" => {
                    certificates += 1;
                    if seen.insert(der.clone()) {
                        self.add_ca(name, der, origin)?;
                    }
                }
                "X509 CRL" => self.add_crl_der(name, der, &mut HashSet::new())?,
                _ => {}
            }
        }
        Ok(certificates)
    }

    fn add_ca(&mut self, name: &str, der: Vec<u8>, origin: CaOrigin) -> Result<(), String> {
        let info = CertInfo::from_der(&der).map_err(|err| err.to_string())?;
        self.cas.push(StoredCa {
            subject: info.subject_line.clone(),
            not_before: info.not_before,
            not_after: info.not_after,
            self_signed: info.is_self_signed(),
            origin,
            source: name.to_string(),
            crl_urls: Vec::new(),
            info,
        });
        Ok(())
    }

    /// Adds the CRLs of one file (PEM or DER) read from `name`; a file
    /// that cannot be parsed becomes a [`Problem`].
    pub fn add_crl_file(&mut self, name: &str, bytes: &[u8]) {
        if let Err(message) = self.add_crls(name, bytes, &mut HashSet::new()) {
            self.problems.push(Problem {
                file: name.to_string(),
                message,
            });
        }
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
        self.crls.push(StoredCrl::from_der(name, &der)?);
        Ok(())
    }

    /// Adds extra PEM material (CA certificates and CRLs), e.g. from a
    /// per-subscription ConfigMap. A CA certificate whose subject equals
    /// (section 7.1) that of a CA of the CA directory is refused: it could
    /// otherwise satisfy Endorsers that name the real CA, or inherit its
    /// namespace policy. Nothing of a refused bundle is added.
    pub fn add_pem_bundle(&mut self, name: &str, bytes: &[u8]) -> Result<(), BundleError> {
        let mut candidate = TrustStore::default();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        if let Err(message) = candidate.add_pem_material(name, bytes, &mut seen, CaOrigin::Bundle) {
            self.problems.push(Problem {
                file: name.to_string(),
                message,
            });
        }
        for ca in &candidate.cas {
            if let Some(shadowed) = self.cas.iter().find(|own| {
                own.origin == CaOrigin::Directory
                    && own.info.subject == ca.info.subject
                    && own.info.der != ca.info.der
            }) {
                return Err(BundleError::ShadowsDirectoryCa {
                    source_name: name.to_string(),
                    subject: ca.subject.clone(),
                    directory_source: shadowed.source.clone(),
                });
            }
        }
        let known: HashSet<Vec<u8>> = self.cas.iter().map(|ca| ca.info.der.clone()).collect();
        self.cas.extend(
            candidate
                .cas
                .into_iter()
                .filter(|ca| !known.contains(&ca.info.der)),
        );
        self.crls.extend(candidate.crls);
        self.problems.extend(candidate.problems);
        Ok(())
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn real_ca(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/testdata/real-lists/ca")
                .join(name),
        )
        .unwrap()
    }

    const SELF_POLICY: &str = "TO Issuer SELF \\\n  PERMIT Subject \"/C=DE/O=GermanGrid/.*\"\n";

    fn gridka(store: &TrustStore) -> &CertInfo {
        &store
            .cas()
            .iter()
            .find(|ca| ca.subject == "/C=DE/O=GermanGrid/CN=GridKa-CA")
            .unwrap()
            .info
    }

    #[test]
    fn file_kinds_follow_igtf_names() {
        assert_eq!(classify("dd4b34ea.0"), FileKind::Certificates);
        assert_eq!(classify("GridKa-CA.pem"), FileKind::Certificates);
        assert_eq!(classify("dd4b34ea.r0"), FileKind::Crl);
        assert_eq!(classify("dd4b34ea.crl"), FileKind::Crl);
        assert_eq!(classify("dd4b34ea.crl.pem"), FileKind::Crl);
        assert_eq!(classify("dd4b34ea.signing_policy"), FileKind::SigningPolicy);
        assert_eq!(classify("dd4b34ea.namespaces"), FileKind::Namespaces);
        assert_eq!(classify("dd4b34ea.info"), FileKind::CrlLocation);
        assert_eq!(classify("dd4b34ea.crl_url"), FileKind::CrlLocation);
        assert_eq!(classify(".hidden.0"), FileKind::Other);
        assert_eq!(classify("README"), FileKind::Other);
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
    fn policy_files_pair_with_their_ca_by_subject_hash() {
        let pem = real_ca("dd4b34ea.0");
        let new_hash = {
            let store = TrustStore::from_files([("any-name.pem", pem.as_slice())]);
            format!("{:08x}", gridka(&store).subject.openssl_hash())
        };
        // Old-style and new-style hash names, CA file named anything.
        for policy_name in [
            "dd4b34ea.namespaces".to_string(),
            format!("{new_hash}.namespaces"),
        ] {
            let store = TrustStore::from_files([
                ("GridKa-CA.pem", pem.as_slice()),
                (policy_name.as_str(), SELF_POLICY.as_bytes()),
            ]);
            assert!(store.problems.is_empty(), "{:?}", store.problems);
            let ca = gridka(&store);
            assert_eq!(
                store.check_policy(ca, "/C=DE/O=GermanGrid/CN=someone"),
                PolicyVerdict::Permitted,
                "{policy_name}"
            );
            assert!(matches!(
                store.check_policy(ca, "/C=DE/O=Elsewhere/CN=someone"),
                PolicyVerdict::Denied { .. }
            ));
        }
    }

    #[test]
    fn an_unreadable_policy_file_makes_its_ca_vouch_for_nobody() {
        let pem = real_ca("dd4b34ea.0");
        for policy in ["dd4b34ea.namespaces", "dd4b34ea.signing_policy"] {
            let store = TrustStore::from_files([
                ("GridKa-CA.pem", pem.as_slice()),
                (policy, b"TO Issuer \"unterminated".as_slice()),
            ]);
            assert_eq!(store.problems.len(), 1, "{policy}");
            assert!(matches!(
                store.check_policy(gridka(&store), "/C=DE/O=GermanGrid/CN=someone"),
                PolicyVerdict::Denied { .. }
            ));
        }
    }

    #[test]
    fn a_bundle_ca_may_not_shadow_a_directory_ca() {
        let pem = real_ca("dd4b34ea.0");
        let mut store = TrustStore::from_files([("dd4b34ea.0", pem.as_slice())]);
        // The very same certificate again is harmless.
        store.add_pem_bundle("configmap/same.pem", &pem).unwrap();
        assert_eq!(store.cas().len(), 1);
        // Another key under the same subject, spelled in another case and
        // string type, is refused: names compare as RFC 5280 7.1 says.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("twin.pem");
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-days",
                "1",
                "-utf8",
                "-subj",
                "/C=DE/O=germangrid/CN=GRIDKA-CA",
            ])
            .arg("-keyout")
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(&out)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let twin = std::fs::read(&out).unwrap();
        let err = store
            .add_pem_bundle("configmap/twin.pem", &twin)
            .unwrap_err();
        assert!(err.to_string().contains("dd4b34ea.0"), "{err}");
        assert_eq!(store.cas().len(), 1);
        // Without the directory CA, the same bundle is just another CA.
        let mut alone = TrustStore::default();
        alone.add_pem_bundle("configmap/twin.pem", &twin).unwrap();
        assert_eq!(alone.cas().len(), 1);
    }
}
