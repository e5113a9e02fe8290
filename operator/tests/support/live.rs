//! A small PKI valid *now* (wall clock), for tests and benchmarks of code
//! that verifies at the current time (`vmlisub sync`, the operator): a CA
//! with a fresh CRL in an IGTF directory, and a signer that signs lists with
//! `openssl smime -sign`.

use std::path::{Path, PathBuf};
use std::process::Command;

use jiff::{SignedDuration, Timestamp};

/// A further signing credential issued by a [`LivePki`]'s CA.
pub struct LiveSigner {
    /// One-line subject DN.
    pub subject: String,
    /// One-line issuer DN (the CA's).
    pub issuer: String,
    /// File names (in the PKI directory) of the certificate and its key.
    cert: String,
    key: String,
}

pub struct LivePki {
    pub dir: PathBuf,
    /// IGTF-layout directory with the CA and its CRL.
    pub ca_dir: PathBuf,
    pub subject: String,
    pub issuer: String,
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| panic!("openssl CLI is required for these tests: {err}"));
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn one_line(dir: &Path, cert: &str) -> String {
    let out = openssl(
        dir,
        &[
            "x509", "-noout", "-subject", "-nameopt", "compat", "-in", cert,
        ],
    );
    String::from_utf8_lossy(&out)
        .trim()
        .trim_start_matches("subject=")
        .to_string()
}

/// Formats a time the way lists need it.
pub fn list_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl LivePki {
    /// Generates the PKI in `dir`, with EC P-256 keys.
    pub fn new(dir: &Path) -> Self {
        Self::generate(
            dir,
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        )
    }

    /// Generates the PKI in `dir`, with RSA-2048 keys (what most grid
    /// certificates are).
    pub fn new_rsa(dir: &Path) -> Self {
        Self::generate(dir, &["-newkey", "rsa:2048"])
    }

    fn generate(dir: &Path, key: &[&str]) -> Self {
        std::fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = live\n[live]\ndatabase = index.txt\ndefault_md = sha256\ndefault_crl_days = 30\n",
        )
        .unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(
            dir.join("signer.ext"),
            "keyUsage = critical, digitalSignature, nonRepudiation\nextendedKeyUsage = emailProtection\n",
        )
        .unwrap();
        let ca_subject = "/DC=org/DC=example/CN=Live Test CA";
        let ca_args = [&["req", "-x509"][..], key, &["-nodes", "-keyout", "ca.key"]].concat();
        let ca_tail = ["-out", "ca.pem", "-days", "3650", "-subj", ca_subject];
        openssl(dir, &[&ca_args[..], &ca_tail[..]].concat());
        let signer_subject = "/DC=org/DC=example/OU=People/CN=list signer/CN=4242";
        let signer_args = [&["req"][..], key, &["-nodes", "-keyout", "signer.key"]].concat();
        let signer_tail = ["-out", "signer.csr", "-subj", signer_subject];
        openssl(dir, &[&signer_args[..], &signer_tail[..]].concat());
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "signer.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "4242",
                "-days",
                "365",
                "-extfile",
                "signer.ext",
                "-out",
                "signer.pem",
            ],
        );
        openssl(
            dir,
            &[
                "ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "ca.key", "-cert", "ca.pem",
                "-out", "ca.crl",
            ],
        );
        let ca_dir = dir.join("certificates");
        std::fs::create_dir_all(&ca_dir).unwrap();
        std::fs::copy(dir.join("ca.pem"), ca_dir.join("livetest.0")).unwrap();
        std::fs::copy(dir.join("ca.crl"), ca_dir.join("livetest.r0")).unwrap();
        Self {
            subject: one_line(dir, "signer.pem"),
            issuer: one_line(dir, "ca.pem"),
            dir: dir.to_path_buf(),
            ca_dir,
        }
    }

    /// Issues another signer certificate, `CN=<name>` next to the default
    /// signer's OU, valid from a day ago until `not_after` (seconds
    /// precision: a credential that expires during a test).
    pub fn issue_signer(&self, name: &str, not_after: Timestamp) -> LiveSigner {
        let dir = &self.dir;
        if !dir.join("issue.cnf").exists() {
            std::fs::write(
                dir.join("issue.cnf"),
                "[ca]\ndefault_ca = issue\n[issue]\ndatabase = issued.txt\nserial = issued.srl\nnew_certs_dir = issued\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n",
            )
            .unwrap();
            std::fs::write(dir.join("issued.txt"), "").unwrap();
            std::fs::write(dir.join("issued.srl"), "5000\n").unwrap();
            std::fs::create_dir_all(dir.join("issued")).unwrap();
        }
        let (cert, key, csr) = (
            format!("{name}.pem"),
            format!("{name}.key"),
            format!("{name}.csr"),
        );
        let subject = format!("/DC=org/DC=example/OU=People/CN={name}");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &subject,
            ],
        );
        let asn1 = |at: Timestamp| at.strftime("%Y%m%d%H%M%SZ").to_string();
        let start = asn1(Timestamp::now() - SignedDuration::from_hours(24));
        let end = asn1(not_after);
        openssl(
            dir,
            &[
                "ca",
                "-batch",
                "-config",
                "issue.cnf",
                "-cert",
                "ca.pem",
                "-keyfile",
                "ca.key",
                "-in",
                &csr,
                "-out",
                &cert,
                "-notext",
                "-preserveDN",
                "-startdate",
                &start,
                "-enddate",
                &end,
                "-extfile",
                "signer.ext",
            ],
        );
        LiveSigner {
            subject: one_line(dir, &cert),
            issuer: self.issuer.clone(),
            cert,
            key,
        }
    }

    /// Signs `content` as a clear-signed S/MIME message.
    pub fn sign(&self, content: &[u8]) -> Vec<u8> {
        self.sign_with("signer.pem", "signer.key", content)
    }

    fn sign_with(&self, cert: &str, key: &str, content: &[u8]) -> Vec<u8> {
        let input = self.dir.join("to-sign.json");
        std::fs::write(&input, content).unwrap();
        openssl(
            &self.dir,
            &[
                "smime",
                "-sign",
                "-signer",
                cert,
                "-inkey",
                key,
                "-md",
                "sha256",
                "-in",
                "to-sign.json",
            ],
        )
    }

    /// A list document signed by this PKI's signer, valid from an hour ago
    /// for 30 days, with `images` as `(identifier, uri, bytes)`.
    pub fn list(&self, identifier: &str, version: &str, images: &[(&str, &str, &[u8])]) -> Vec<u8> {
        let now = Timestamp::now();
        let created = now - SignedDuration::from_hours(1);
        let expires = now + SignedDuration::from_hours(24 * 30);
        self.list_with_times(identifier, version, images, created, expires)
    }

    pub fn list_with_times(
        &self,
        identifier: &str,
        version: &str,
        images: &[(&str, &str, &[u8])],
        created: Timestamp,
        expires: Timestamp,
    ) -> Vec<u8> {
        let document = self.document(
            (&self.subject, &self.issuer),
            identifier,
            version,
            images,
            created,
            expires,
        );
        self.sign(&document)
    }

    /// A list document naming and signed by `signer`.
    pub fn list_signed_by(
        &self,
        signer: &LiveSigner,
        identifier: &str,
        version: &str,
        images: &[(&str, &str, &[u8])],
        created: Timestamp,
        expires: Timestamp,
    ) -> Vec<u8> {
        let document = self.document(
            (&signer.subject, &signer.issuer),
            identifier,
            version,
            images,
            created,
            expires,
        );
        self.sign_with(&signer.cert, &signer.key, &document)
    }

    fn document(
        &self,
        (subject, issuer): (&str, &str),
        identifier: &str,
        version: &str,
        images: &[(&str, &str, &[u8])],
        created: Timestamp,
        expires: Timestamp,
    ) -> Vec<u8> {
        use sha2::Digest as _;
        let images: Vec<serde_json::Value> = images
            .iter()
            .map(|(id, uri, bytes)| {
                let sum: String = sha2::Sha512::digest(bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                serde_json::json!({"hv:image": {
                    "dc:identifier": id, "dc:title": format!("Image {id}"),
                    "dc:description": "test image", "hv:uri": uri, "hv:size": bytes.len(),
                    "sl:checksum:sha512": sum, "sl:arch": "x86_64", "sl:os": "Linux",
                    "sl:osversion": "test", "sl:comments": "", "hv:hypervisor": "KVM",
                    "hv:version": "1", "hv:format": "raw"
                }})
            })
            .collect();
        let document = serde_json::json!({"hv:imagelist": {
            "dc:identifier": identifier, "dc:title": "Live test list",
            "dc:description": "generated", "dc:source": "https://example.org/",
            "dc:date:created": list_time(created), "dc:date:expires": list_time(expires),
            "hv:version": version, "hv:uri": "https://example.org/image.list",
            "hv:endorser": {"hv:x509": {"hv:dn": subject, "hv:ca": issuer,
                "hv:email": "signer@example.org", "dc:creator": "test"}},
            "hv:images": images
        }});
        serde_json::to_vec_pretty(&document).unwrap()
    }

    /// The serial of the default signer (`signer.pem`), in hex.
    pub const SIGNER_SERIAL_HEX: &'static str = "1092";

    /// A CRL (PEM) of the CA for `this_update`..`next_update` with cRLNumber
    /// `number`, revoking the certificates with the `revoked` hex serials.
    /// Signed by the CA's key, or with `forged` by another key under the
    /// CA's name (what a forger without the CA key can make).
    pub fn crl(
        &self,
        this_update: Timestamp,
        next_update: Timestamp,
        number: u32,
        revoked: &[&str],
        forged: bool,
    ) -> Vec<u8> {
        let dir = &self.dir;
        let utc = |at: Timestamp| at.strftime("%y%m%d%H%M%SZ").to_string();
        let tag = format!("crl-{number}-{}", if forged { "forged" } else { "ca" });
        let index: String = revoked
            .iter()
            .map(|serial| {
                format!(
                    "R\t{}\t{}\t{serial}\tunknown\t/CN=revoked\n",
                    utc(next_update + SignedDuration::from_hours(24 * 365)),
                    utc(this_update - SignedDuration::from_secs(60)),
                )
            })
            .collect();
        std::fs::write(dir.join(format!("{tag}.idx")), index).unwrap();
        std::fs::write(dir.join(format!("{tag}.num")), format!("{number:04X}\n")).unwrap();
        std::fs::write(
            dir.join(format!("{tag}.cnf")),
            format!(
                "[ca]\ndefault_ca = c\n[c]\ndatabase = {tag}.idx\ncrlnumber = {tag}.num\ndefault_md = sha256\n"
            ),
        )
        .unwrap();
        let (cert, key) = if forged {
            if !dir.join("forger.pem").exists() {
                let subject = openssl(
                    dir,
                    &[
                        "x509", "-noout", "-subject", "-nameopt", "compat", "-in", "ca.pem",
                    ],
                );
                let subject = String::from_utf8_lossy(&subject)
                    .trim()
                    .trim_start_matches("subject=")
                    .to_string();
                openssl(
                    dir,
                    &[
                        "req",
                        "-x509",
                        "-newkey",
                        "ec",
                        "-pkeyopt",
                        "ec_paramgen_curve:P-256",
                        "-nodes",
                        "-keyout",
                        "forger.key",
                        "-out",
                        "forger.pem",
                        "-days",
                        "30",
                        "-subj",
                        &subject,
                    ],
                );
            }
            ("forger.pem", "forger.key")
        } else {
            ("ca.pem", "ca.key")
        };
        let out = format!("{tag}.crl");
        openssl(
            dir,
            &[
                "ca",
                "-config",
                &format!("{tag}.cnf"),
                "-gencrl",
                "-cert",
                cert,
                "-keyfile",
                key,
                "-crl_lastupdate",
                &utc(this_update),
                "-crl_nextupdate",
                &utc(next_update),
                "-out",
                &out,
            ],
        );
        std::fs::read(dir.join(out)).unwrap()
    }
}
