//! A throwaway grid PKI generated with the `openssl` CLI.
//!
//! Keys are generated once (concurrently, one `openssl genpkey` each) and may
//! be shared by several certificates; certificates and CRLs are issued with
//! `openssl ca` so that every validity window is explicit (`-startdate`,
//! `-enddate`, `-crl_lastupdate`, `-crl_nextupdate`) and nothing depends on
//! the wall clock. Revocations are written straight into a throwaway
//! `index.txt`, with a fixed revocation date.
//!
//! Building happens in a [`TempDir`] that is removed afterwards: a [`Pki`]
//! holds only PEM text, and tests write what they need into their own
//! temporary directories.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;

use tempfile::TempDir;

use super::der;
use super::openssl;
use super::time::{self, asn1time};

/// Key algorithms the generator supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    Rsa3072,
    EcP256,
    EcP384,
}

impl KeyKind {
    fn genpkey_args(self) -> [&'static str; 4] {
        match self {
            KeyKind::Rsa2048 => ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            KeyKind::Rsa3072 => ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
            KeyKind::EcP256 => ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyKind::EcP384 => ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        }
    }
}

/// A private key (PEM, PKCS#8).
#[derive(Clone, Debug)]
pub struct Key {
    pub name: String,
    pub kind: KeyKind,
    pub pem: String,
}

/// Certificate profiles (the X.509v3 extensions written into the certificate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Self-signed root CA: CA:TRUE, keyCertSign + cRLSign.
    Root,
    /// Intermediate CA: CA:TRUE pathlen 0, keyCertSign + cRLSign.
    Intermediate,
    /// A grid user certificate: digitalSignature, nonRepudiation,
    /// keyEncipherment; EKU clientAuth + emailProtection.
    Signer,
    /// keyUsage keyEncipherment only (cannot sign).
    KeyEnciphermentOnly,
    /// keyUsage nonRepudiation only (may sign S/MIME).
    NonRepudiationOnly,
    /// EKU serverAuth only.
    EkuServerAuthOnly,
    /// A grid host certificate: EKU serverAuth + clientAuth, no emailProtection.
    HostCert,
    /// A v3 certificate without keyUsage and extendedKeyUsage (unrestricted).
    NoKeyUsage,
    /// [`Profile::Signer`] plus a critical extension nobody understands.
    CriticalUnknownExtension,
    /// CA:TRUE, but keyUsage without keyCertSign.
    IntermediateWithoutCertSign,
    /// keyCertSign, but no basicConstraints at all.
    IntermediateWithoutBasicConstraints,
    /// CA:TRUE and keyCertSign, but no cRLSign: its CRLs are not to be trusted.
    IntermediateWithoutCrlSign,
}

impl Profile {
    fn extensions(self) -> &'static str {
        match self {
            Profile::Root => {
                "basicConstraints = critical,CA:TRUE\n\
                 keyUsage = critical,keyCertSign,cRLSign\n"
            }
            Profile::Intermediate => {
                "basicConstraints = critical,CA:TRUE,pathlen:0\n\
                 keyUsage = critical,keyCertSign,cRLSign\n\
                 authorityKeyIdentifier = keyid:always\n"
            }
            Profile::Signer => {
                "basicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature,nonRepudiation,keyEncipherment\n\
                 extendedKeyUsage = clientAuth,emailProtection\n\
                 authorityKeyIdentifier = keyid:always\n"
            }
            Profile::KeyEnciphermentOnly => {
                "basicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,keyEncipherment\n\
                 extendedKeyUsage = emailProtection\n\
                 authorityKeyIdentifier = keyid:always\n"
            }
            Profile::NonRepudiationOnly => {
                "basicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,nonRepudiation\n\
                 extendedKeyUsage = emailProtection\n\
                 authorityKeyIdentifier = keyid:always\n"
            }
            Profile::EkuServerAuthOnly => {
                "basicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage = serverAuth\n\
                 authorityKeyIdentifier = keyid:always\n"
            }
            Profile::HostCert => {
                "basicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage = serverAuth,clientAuth\n\
                 authorityKeyIdentifier = keyid:always\n"
            }
            Profile::NoKeyUsage => {
                "basicConstraints = critical,CA:FALSE\n\
                 authorityKeyIdentifier = keyid:always\n"
            }
            Profile::CriticalUnknownExtension => {
                "basicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature,nonRepudiation,keyEncipherment\n\
                 extendedKeyUsage = clientAuth,emailProtection\n\
                 authorityKeyIdentifier = keyid:always\n\
                 1.3.6.1.4.1.55555.1.1 = critical,ASN1:UTF8String:vmlisub test\n"
            }
            Profile::IntermediateWithoutBasicConstraints => {
                "keyUsage = critical,keyCertSign,cRLSign\n\
                 authorityKeyIdentifier = keyid:always\n"
            }
            Profile::IntermediateWithoutCrlSign => {
                "basicConstraints = critical,CA:TRUE\n\
                 keyUsage = critical,keyCertSign\n\
                 authorityKeyIdentifier = keyid:always\n"
            }
            Profile::IntermediateWithoutCertSign => {
                "basicConstraints = critical,CA:TRUE\n\
                 keyUsage = critical,digitalSignature,cRLSign\n\
                 authorityKeyIdentifier = keyid:always\n"
            }
        }
    }

    fn is_ca(self) -> bool {
        matches!(
            self,
            Profile::Root
                | Profile::Intermediate
                | Profile::IntermediateWithoutCertSign
                | Profile::IntermediateWithoutBasicConstraints
                | Profile::IntermediateWithoutCrlSign
        )
    }
}

/// What to issue.
#[derive(Clone, Debug)]
pub struct CertSpec {
    pub name: String,
    /// Slash form, e.g. `/DC=org/DC=example/OU=People/CN=alice/CN=12345`.
    pub subject: String,
    pub key: String,
    /// Name of the issuing CA certificate; `None` for self-signed.
    pub issuer: Option<String>,
    pub not_before: String,
    pub not_after: String,
    pub profile: Profile,
    /// Signature digest of the certificate (`sha256`, `sha1`, ...).
    pub md: String,
    /// Explicit subjectKeyIdentifier (hex); default: hash of the key.
    pub ski: Option<String>,
    /// openssl `string_mask` for the subject: `utf8only` (default) or
    /// `nombstr` (PrintableString/T61String, as in many old grid certificates).
    pub string_mask: String,
    /// Serial number (hex); default: the next free one.
    pub serial: Option<String>,
    /// Replaces the profile's extension lines (openssl config syntax).
    pub extensions: Option<String>,
    /// Whether the certificate is a CA (default: from the profile).
    pub ca: Option<bool>,
    /// Extension lines added to the profile's (or [`CertSpec::extensions`]).
    pub extra_ext: String,
    /// Further openssl config sections the extension lines refer to
    /// (`[name]` headers included).
    pub sections: String,
}

impl CertSpec {
    pub fn new(
        name: &str,
        subject: &str,
        key: &str,
        issuer: Option<&str>,
        profile: Profile,
    ) -> Self {
        let (not_before, not_after) = match profile {
            Profile::Root => (time::ROOT_FROM, time::ROOT_UNTIL),
            Profile::Intermediate => (time::INTER_FROM, time::INTER_UNTIL),
            _ => (time::SIGNER_FROM, time::SIGNER_UNTIL),
        };
        CertSpec {
            name: name.to_owned(),
            subject: subject.to_owned(),
            key: key.to_owned(),
            issuer: issuer.map(str::to_owned),
            not_before: not_before.to_owned(),
            not_after: not_after.to_owned(),
            profile,
            md: "sha256".to_owned(),
            ski: None,
            string_mask: "utf8only".to_owned(),
            serial: None,
            extensions: None,
            ca: None,
            extra_ext: String::new(),
            sections: String::new(),
        }
    }

    pub fn valid(mut self, from: &str, until: &str) -> Self {
        from.clone_into(&mut self.not_before);
        until.clone_into(&mut self.not_after);
        self
    }

    pub fn md(mut self, md: &str) -> Self {
        md.clone_into(&mut self.md);
        self
    }

    pub fn serial(mut self, serial: &str) -> Self {
        self.serial = Some(serial.to_owned());
        self
    }

    pub fn string_mask(mut self, mask: &str) -> Self {
        mask.clone_into(&mut self.string_mask);
        self
    }

    pub fn ski(mut self, ski: &str) -> Self {
        self.ski = Some(ski.to_owned());
        self
    }

    /// Replaces the profile's extensions; `ca` says whether this makes a CA.
    pub fn extensions(mut self, lines: &str, ca: bool) -> Self {
        self.extensions = Some(lines.to_owned());
        self.ca = Some(ca);
        self
    }

    /// One more extension line (e.g. `subjectAltName = email:a@example.org`).
    pub fn ext(mut self, line: &str) -> Self {
        self.extra_ext.push_str(line);
        self.extra_ext.push('\n');
        self
    }

    /// More configuration sections (for extension values like `@dir`).
    pub fn sections(mut self, text: &str) -> Self {
        self.sections.push_str(text);
        self.sections.push('\n');
        self
    }
}

/// An issued certificate with everything a test needs to know about it.
#[derive(Clone, Debug)]
pub struct Cert {
    pub name: String,
    pub pem: String,
    pub key: String,
    pub key_pem: String,
    /// One-line subject (`openssl x509 -nameopt compat`), e.g. `/DC=org/.../CN=alice`.
    pub subject: String,
    /// One-line issuer.
    pub issuer: String,
    /// Serial number, upper-case hex as openssl prints it.
    pub serial: String,
    /// `openssl x509 -subject_hash`.
    pub hash: String,
    pub not_before: String,
    pub not_after: String,
    pub is_ca: bool,
    /// subjectKeyIdentifier as colon-less upper-case hex, if any.
    pub ski: Option<String>,
}

/// A CRL.
#[derive(Clone, Debug)]
pub struct Crl {
    pub name: String,
    pub pem: String,
    /// One-line issuer DN (the CA it claims to come from).
    pub issuer: String,
    /// `openssl crl -hash` (the issuer's subject hash).
    pub issuer_hash: String,
    pub this_update: String,
    pub next_update: String,
    /// Serials (hex) listed as revoked.
    pub revoked: Vec<String>,
}

/// All generated material, by name.
#[derive(Debug, Default)]
pub struct Pki {
    pub keys: BTreeMap<String, Key>,
    pub certs: BTreeMap<String, Cert>,
    pub crls: BTreeMap<String, Crl>,
}

impl Pki {
    pub fn key(&self, name: &str) -> &Key {
        self.keys
            .get(name)
            .unwrap_or_else(|| panic!("no key named {name}"))
    }

    pub fn cert(&self, name: &str) -> &Cert {
        self.certs
            .get(name)
            .unwrap_or_else(|| panic!("no certificate named {name}"))
    }

    pub fn crl(&self, name: &str) -> &Crl {
        self.crls
            .get(name)
            .unwrap_or_else(|| panic!("no CRL named {name}"))
    }
}

/// Attribute types openssl does not know, for exotic DNs (printed as
/// dotted OIDs by every process that does not load this configuration).
const NEW_OIDS: &str = "vmlisubTestAttr = 1.3.6.1.4.1.55555.7";

/// Builds a [`Pki`] step by step in a scratch directory.
pub struct PkiBuilder {
    dir: TempDir,
    pki: Pki,
    next_serial: u32,
    crl_number: Option<String>,
}

impl Default for PkiBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PkiBuilder {
    pub fn new() -> Self {
        openssl::ensure_available();
        let dir = tempfile::Builder::new()
            .prefix("vmlisub-pki-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        PkiBuilder {
            dir,
            pki: Pki::default(),
            next_serial: 0x1001,
            crl_number: None,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Generates keys, all at once (one `openssl genpkey` process each).
    pub fn keys(&mut self, keys: &[(&str, KeyKind)]) -> &mut Self {
        let children: Vec<(&str, KeyKind, PathBuf, Child)> = keys
            .iter()
            .map(|&(name, kind)| {
                let out = self.path(&format!("key-{name}.pem"));
                let child = openssl::command(self.dir.path())
                    .arg("genpkey")
                    .args(kind.genpkey_args())
                    .arg("-out")
                    .arg(&out)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap_or_else(|e| {
                        panic!(
                            "cannot start `{} genpkey` ({e}): is OpenSSL installed?",
                            openssl::program()
                        )
                    });
                (name, kind, out, child)
            })
            .collect();
        for (name, kind, out, child) in children {
            let result = child
                .wait_with_output()
                .unwrap_or_else(|e| panic!("openssl genpkey: {e}"));
            assert!(
                result.status.success(),
                "openssl genpkey {kind:?} failed: {}",
                String::from_utf8_lossy(&result.stderr)
            );
            let pem = read(&out);
            self.pki.keys.insert(
                name.to_owned(),
                Key {
                    name: name.to_owned(),
                    kind,
                    pem,
                },
            );
        }
        self
    }

    /// A minimal `openssl ca` configuration. `database` is the index file.
    fn ca_config(
        &self,
        tag: &str,
        database: &Path,
        extensions: &str,
        string_mask: &str,
        crl_extensions: &str,
    ) -> PathBuf {
        let newcerts = self.path("newcerts");
        fs::create_dir_all(&newcerts).unwrap_or_else(|e| panic!("mkdir newcerts: {e}"));
        let mut cnf = String::new();
        let _ = write!(
            cnf,
            "oid_section = new_oids\n\
             [new_oids]\n{NEW_OIDS}\n\
             [ca]\ndefault_ca = ca_default\n\n\
             [ca_default]\n\
             database = {db}\n\
             new_certs_dir = {newcerts}\n\
             serial = {serial}\n\
             crlnumber = {crlnumber}\n\
             default_md = sha256\n\
             policy = policy_any\n\
             unique_subject = no\n\
             string_mask = {string_mask}\n\
             copy_extensions = none\n\
             crl_extensions = crl_ext\n\n\
             [policy_any]\n\n\
             [crl_ext]\n\
             authorityKeyIdentifier = keyid:always\n\
             {crl_extensions}\n\n\
             [ext]\n{extensions}",
            db = database.display(),
            newcerts = newcerts.display(),
            serial = self.path("serial").display(),
            crlnumber = self.path("crlnumber").display(),
        );
        self.write(&format!("{tag}.cnf"), &cnf)
    }

    /// Issues a certificate (self-signed when `spec.issuer` is `None`).
    pub fn cert(&mut self, spec: CertSpec) -> &mut Self {
        let key = self.pki.key(&spec.key).clone();
        let key_path = self.write(&format!("key-{}.pem", key.name), &key.pem);
        let csr = self.path(&format!("{}.csr", spec.name));
        let req_cnf = self.write(
            &format!("{}.req.cnf", spec.name),
            &format!(
                "oid_section = new_oids\n[new_oids]\n{NEW_OIDS}\n\
                 [req]\ndistinguished_name = dn\nstring_mask = {}\n[dn]\n",
                spec.string_mask
            ),
        );
        let req_args: Vec<std::ffi::OsString> = vec![
            "req".into(),
            "-config".into(),
            req_cnf.into(),
            "-new".into(),
            "-utf8".into(),
            "-multivalue-rdn".into(),
            "-key".into(),
            key_path.clone().into(),
            "-subj".into(),
            spec.subject.clone().into(),
            "-out".into(),
            csr.clone().into(),
        ];
        openssl::run(self.dir.path(), &req_args);

        let mut extensions = spec
            .extensions
            .clone()
            .unwrap_or_else(|| spec.profile.extensions().to_owned());
        extensions.push_str(&spec.extra_ext);
        match &spec.ski {
            Some(ski) => {
                let _ = writeln!(extensions, "subjectKeyIdentifier = {ski}");
            }
            None => extensions.push_str("subjectKeyIdentifier = hash\n"),
        }
        if spec.issuer.is_none() {
            // Self-signed: there is no separate authority key to point to.
            extensions = extensions
                .lines()
                .filter(|l| !l.starts_with("authorityKeyIdentifier"))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        extensions.push_str(&spec.sections);
        let index = self.write("index.txt", "");
        let cnf = self.ca_config(&spec.name, &index, &extensions, &spec.string_mask, "");
        let serial = match &spec.serial {
            Some(serial) => serial.clone(),
            None => {
                self.next_serial += 1;
                format!("{:04X}", self.next_serial - 1)
            }
        };
        self.write("serial", &format!("{serial}\n"));
        let out = self.path(&format!("{}.pem", spec.name));

        let mut args: Vec<std::ffi::OsString> =
            ["ca", "-batch", "-notext", "-utf8", "-preserveDN", "-config"]
                .iter()
                .map(Into::into)
                .collect();
        args.push(cnf.into());
        args.extend(["-in".into(), csr.into(), "-out".into(), out.clone().into()]);
        args.extend([
            "-startdate".into(),
            asn1time(&spec.not_before).into(),
            "-enddate".into(),
            asn1time(&spec.not_after).into(),
            "-md".into(),
            spec.md.clone().into(),
        ]);
        args.extend(["-extensions".into(), "ext".into()]);
        match &spec.issuer {
            None => args.extend(["-selfsign".into(), "-keyfile".into(), key_path.into()]),
            Some(issuer) => {
                let ca = self.pki.cert(issuer).clone();
                let ca_cert = self.write(&format!("{}.pem", ca.name), &ca.pem);
                let ca_key = self.write(&format!("key-{}.pem", ca.key), &ca.key_pem);
                args.extend([
                    "-cert".into(),
                    ca_cert.into(),
                    "-keyfile".into(),
                    ca_key.into(),
                ]);
            }
        }
        openssl::run(self.dir.path(), &args);
        let pem = read(&out);
        let cert = describe(self.dir.path(), &spec, &key, pem);
        assert_eq!(
            cert.serial, serial,
            "openssl ca did not use the serial we set"
        );
        self.pki.certs.insert(spec.name.clone(), cert);
        self
    }

    /// Re-issues certificate `from` (same subject, key, validity and
    /// extensions, same issuer `issuer`) with the serial number `serial`,
    /// e.g. a negative one, which neither `openssl ca` nor `openssl x509`
    /// writes: the DER serial is replaced and the TBSCertificate signed
    /// again with `openssl dgst` (same signature algorithm: `from` must have
    /// been issued with SHA-256 by an EC key).
    pub fn reserial(&mut self, name: &str, from: &str, issuer: &str, serial: i128) -> &mut Self {
        let original = self.pki.cert(from).clone();
        let ca = self.pki.cert(issuer).clone();
        let input = self.write(&format!("{name}.in.pem"), &original.pem);
        let cert = openssl::run(
            self.dir.path(),
            [
                "x509".as_ref(),
                "-in".as_ref(),
                input.as_os_str(),
                "-outform".as_ref(),
                "DER".as_ref(),
            ] as [&std::ffi::OsStr; 5],
        );
        let outer = der::read(&cert, 0);
        let [tbs, alg, _sig] = der::children(&cert, &outer)[..] else {
            panic!("{from}: not a Certificate")
        };
        let mut tbs_content = Vec::new();
        for (i, part) in der::children(&cert, &tbs).into_iter().enumerate() {
            if i == 1 {
                assert_eq!(part.tag, 0x02, "{from}: no serial after the version");
                tbs_content.extend(der::tlv(0x02, &der::integer(serial)));
            } else {
                tbs_content.extend_from_slice(&cert[part.start..part.end]);
            }
        }
        let new_tbs = der::tlv(0x30, &tbs_content);
        let tbs_path = self.path(&format!("{name}.tbs.der"));
        fs::write(&tbs_path, &new_tbs).unwrap_or_else(|e| panic!("write tbs: {e}"));
        let ca_key = self.write(&format!("key-{}.pem", ca.key), &ca.key_pem);
        let sig = openssl::run(
            self.dir.path(),
            [
                "dgst".as_ref(),
                "-sha256".as_ref(),
                "-sign".as_ref(),
                ca_key.as_os_str(),
                tbs_path.as_os_str(),
            ] as [&std::ffi::OsStr; 5],
        );
        let mut bits = vec![0u8];
        bits.extend(sig);
        let mut body = new_tbs;
        body.extend_from_slice(&cert[alg.start..alg.end]);
        body.extend(der::tlv(0x03, &bits));
        let der_path = self.path(&format!("{name}.der"));
        fs::write(&der_path, der::tlv(0x30, &body)).unwrap_or_else(|e| panic!("write der: {e}"));
        let pem = String::from_utf8(openssl::run(
            self.dir.path(),
            [
                "x509".as_ref(),
                "-inform".as_ref(),
                "DER".as_ref(),
                "-in".as_ref(),
                der_path.as_os_str(),
            ] as [&std::ffi::OsStr; 5],
        ))
        .unwrap_or_else(|e| panic!("PEM is not UTF-8: {e}"));
        let key = self.pki.key(&original.key).clone();
        let mut spec = CertSpec::new(
            name,
            &original.subject,
            &original.key,
            Some(issuer),
            Profile::Signer,
        )
        .valid(&original.not_before, &original.not_after);
        spec.ca = Some(original.is_ca);
        let cert = describe(self.dir.path(), &spec, &key, pem);
        self.pki.certs.insert(name.to_owned(), cert);
        self
    }

    /// The crlNumber of the next CRL (default `01`).
    pub fn crl_number(&mut self, number: &str) -> &mut Self {
        self.crl_number = Some(number.to_owned());
        self
    }

    /// Issues a CRL for `ca` listing `revoked` (certificate names), signed by
    /// `ca`'s key, or by `forger`'s key and certificate when given (a CA with
    /// the same name but another key: a forged CRL).
    pub fn crl(
        &mut self,
        name: &str,
        ca: &str,
        window: (&str, &str),
        revoked: &[&str],
        forger: Option<&str>,
    ) -> &mut Self {
        self.crl_with_extensions(name, ca, window, revoked, forger, "")
    }

    /// [`PkiBuilder::crl`] with more CRL extensions (openssl config lines
    /// for the `crl_extensions` section; they may open further sections).
    pub fn crl_with_extensions(
        &mut self,
        name: &str,
        ca: &str,
        window: (&str, &str),
        revoked: &[&str],
        forger: Option<&str>,
        crl_extensions: &str,
    ) -> &mut Self {
        let serials: Vec<String> = revoked
            .iter()
            .map(|r| self.pki.cert(r).serial.clone())
            .collect();
        let serials: Vec<&str> = serials.iter().map(String::as_str).collect();
        self.crl_serials(name, ca, window, &serials, forger, crl_extensions)
    }

    /// [`PkiBuilder::crl_with_extensions`] listing raw serial numbers (hex,
    /// `-` for a negative one) rather than certificates.
    pub fn crl_serials(
        &mut self,
        name: &str,
        ca: &str,
        window: (&str, &str),
        revoked: &[&str],
        forger: Option<&str>,
        crl_extensions: &str,
    ) -> &mut Self {
        let signer = self.pki.cert(forger.unwrap_or(ca)).clone();
        let mut index = String::new();
        let mut serials = Vec::new();
        for (i, serial) in revoked.iter().enumerate() {
            let _ = writeln!(
                index,
                "R\t{}\t{}\t{serial}\tunknown\t/CN=revoked {i}",
                asn1time(time::ROOT_UNTIL),
                asn1time(time::REVOKED_AT),
            );
            serials.push((*serial).to_owned());
        }
        let index_path = self.write(&format!("crl-{name}-index.txt"), &index);
        let cnf = self.ca_config(
            &format!("crl-{name}"),
            &index_path,
            "",
            "utf8only",
            crl_extensions,
        );
        let number = self.crl_number.take().unwrap_or_else(|| "01".to_owned());
        self.write("crlnumber", &format!("{number}\n"));
        let ca_cert = self.write(&format!("{}.pem", signer.name), &signer.pem);
        let ca_key = self.write(&format!("key-{}.pem", signer.key), &signer.key_pem);
        let out = self.path(&format!("crl-{name}.pem"));
        let args: Vec<std::ffi::OsString> = vec![
            "ca".into(),
            "-batch".into(),
            "-gencrl".into(),
            "-config".into(),
            cnf.into(),
            "-cert".into(),
            ca_cert.into(),
            "-keyfile".into(),
            ca_key.into(),
            "-md".into(),
            "sha256".into(),
            "-crl_lastupdate".into(),
            asn1time(window.0).into(),
            "-crl_nextupdate".into(),
            asn1time(window.1).into(),
            "-out".into(),
            out.clone().into(),
        ];
        openssl::run(self.dir.path(), &args);
        let pem = read(&out);
        let issuer_hash = openssl::run_text(
            self.dir.path(),
            [
                "crl".as_ref(),
                "-noout".as_ref(),
                "-hash".as_ref(),
                "-in".as_ref(),
                out.as_os_str(),
            ] as [&std::ffi::OsStr; 5],
        );
        let issuer = self.pki.cert(ca).subject.clone();
        self.pki.crls.insert(
            name.to_owned(),
            Crl {
                name: name.to_owned(),
                pem,
                issuer,
                issuer_hash,
                this_update: window.0.to_owned(),
                next_update: window.1.to_owned(),
                revoked: serials,
            },
        );
        self
    }

    /// What has been built so far.
    pub fn peek(&self) -> &Pki {
        &self.pki
    }

    pub fn finish(self) -> Pki {
        self.pki
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Reads back what openssl actually put into a certificate.
fn describe(dir: &Path, spec: &CertSpec, key: &Key, pem: String) -> Cert {
    let file = dir.join(format!("{}.describe.pem", spec.name));
    fs::write(&file, &pem).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    let text = openssl::run_text(
        dir,
        [
            "x509".as_ref(),
            "-noout".as_ref(),
            "-nameopt".as_ref(),
            "compat".as_ref(),
            "-subject".as_ref(),
            "-issuer".as_ref(),
            "-serial".as_ref(),
            "-subject_hash".as_ref(),
            "-ext".as_ref(),
            "subjectKeyIdentifier".as_ref(),
            "-in".as_ref(),
            file.as_os_str(),
        ] as [&std::ffi::OsStr; 12],
    );
    let mut subject = None;
    let mut issuer = None;
    let mut serial = None;
    let mut hash = None;
    let mut ski = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(v) = line.strip_prefix("subject=") {
            subject = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("issuer=") {
            issuer = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("serial=") {
            serial = Some(v.trim().to_owned());
        } else if line.contains("Subject Key Identifier") {
            ski = lines.next().map(|l| l.trim().replace(':', ""));
        } else if line.len() == 8 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
            hash = Some(line.to_owned());
        }
    }
    let missing = |what: &str| -> String { panic!("no {what} in openssl x509 output:\n{text}") };
    Cert {
        name: spec.name.clone(),
        pem,
        key: key.name.clone(),
        key_pem: key.pem.clone(),
        subject: subject.unwrap_or_else(|| missing("subject")),
        issuer: issuer.unwrap_or_else(|| missing("issuer")),
        serial: serial.unwrap_or_else(|| missing("serial")),
        hash: hash.unwrap_or_else(|| missing("hash")),
        not_before: spec.not_before.clone(),
        not_after: spec.not_after.clone(),
        is_ca: spec.ca.unwrap_or_else(|| spec.profile.is_ca()),
        ski,
    }
}
