//! A verification case: who signs what, in which shape, against which trust
//! store, at which time, with which vmlisub options; and running it through
//! `vmlisub verify` and `openssl smime -verify`.

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;

use tempfile::TempDir;

use super::cli::{CrlPolicy, Outcome, Verify};
use super::fixtures::{pki, standard_trust};
use super::list::ListDoc;
use super::openssl;
use super::pki::Pki;
use super::smime::{self, Digest, Mutation, Shape, SignSpec};
use super::time::{self, epoch};
use super::trust::Trust;

/// What gets signed.
#[derive(Clone, Debug)]
pub enum Content {
    /// The default list for the (first) signer.
    Default,
    /// A list document.
    List(Box<ListDoc>),
    /// Arbitrary bytes.
    Raw(Vec<u8>),
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub signers: Vec<String>,
    pub extra_certs: Vec<String>,
    pub content: Content,
    pub shape: Shape,
    pub digest: Digest,
    pub nocerts: bool,
    pub rsa_pss: bool,
    pub sign_args: Vec<String>,
    pub mutation: Mutation,
    pub trust: Trust,
    pub crl_policy: CrlPolicy,
    pub at: String,
    pub allow_sha1: bool,
    pub endorsers: Vec<(String, String)>,
    /// Whether openssl gets `-crl_check_all`; default: unless the policy is `ignore`.
    pub openssl_crl_check: Option<bool>,
    /// The PKI the names refer to (default: the standard one).
    pub source: fn() -> &'static Pki,
}

impl Case {
    /// A good case: `signer` signs its default list, detached, SHA-256,
    /// verified against the standard trust store at [`time::AT`].
    pub fn new(name: &str, signer: &str) -> Self {
        Case {
            name: name.to_owned(),
            signers: vec![signer.to_owned()],
            extra_certs: Vec::new(),
            content: Content::Default,
            shape: Shape::Detached,
            digest: Digest::Sha256,
            nocerts: false,
            rsa_pss: false,
            sign_args: Vec::new(),
            mutation: Mutation::None,
            trust: standard_trust(),
            crl_policy: CrlPolicy::Require,
            at: time::AT.to_owned(),
            allow_sha1: false,
            endorsers: Vec::new(),
            openssl_crl_check: None,
            source: pki,
        }
    }

    pub fn pki(&self) -> &'static Pki {
        (self.source)()
    }

    /// Takes signers, certificates and CRLs from another PKI (built lazily
    /// by `source`); the trust store starts empty.
    pub fn with_pki(mut self, source: fn() -> &'static Pki) -> Self {
        self.source = source;
        self.trust = Trust::new(&[], &[]);
        self
    }

    pub fn shape(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }

    pub fn digest(mut self, digest: Digest) -> Self {
        self.digest = digest;
        self
    }

    pub fn mutation(mut self, mutation: Mutation) -> Self {
        self.mutation = mutation;
        self
    }

    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    pub fn edit_trust(mut self, f: impl FnOnce(Trust) -> Trust) -> Self {
        self.trust = f(self.trust);
        self
    }

    pub fn crl_policy(mut self, policy: CrlPolicy) -> Self {
        self.crl_policy = policy;
        self
    }

    pub fn openssl_crl_check(mut self, on: bool) -> Self {
        self.openssl_crl_check = Some(on);
        self
    }

    pub fn also_signed_by(mut self, signer: &str) -> Self {
        self.signers.push(signer.to_owned());
        self
    }

    pub fn embed(mut self, cert: &str) -> Self {
        self.extra_certs.push(cert.to_owned());
        self
    }

    pub fn nocerts(mut self) -> Self {
        self.nocerts = true;
        self
    }

    pub fn rsa_pss(mut self) -> Self {
        self.rsa_pss = true;
        self
    }

    /// An extra `openssl smime -sign` option.
    pub fn sign_arg(mut self, arg: &str) -> Self {
        self.sign_args.push(arg.to_owned());
        self
    }

    pub fn allow_sha1(mut self) -> Self {
        self.allow_sha1 = true;
        self
    }

    pub fn at(mut self, at: &str) -> Self {
        at.clone_into(&mut self.at);
        self
    }

    pub fn endorser(mut self, subject: &str, issuer: &str) -> Self {
        self.endorsers.push((subject.to_owned(), issuer.to_owned()));
        self
    }

    /// Edits the default list of the first signer.
    pub fn list(mut self, f: impl FnOnce(ListDoc) -> ListDoc) -> Self {
        let doc = ListDoc::for_signer(self.pki().cert(&self.signers[0]));
        self.content = Content::List(Box::new(f(doc)));
        self
    }

    pub fn raw_content(mut self, bytes: &[u8]) -> Self {
        self.content = Content::Raw(bytes.to_vec());
        self
    }

    pub fn content_bytes(&self) -> Vec<u8> {
        match &self.content {
            Content::Default => ListDoc::for_signer(self.pki().cert(&self.signers[0])).to_bytes(),
            Content::List(doc) => doc.to_bytes(),
            Content::Raw(bytes) => bytes.clone(),
        }
    }

    /// Signs, and writes the message, the CA directory and the CA bundle
    /// into a fresh temporary directory.
    pub fn prepare(&self) -> Prepared {
        let pki = self.pki();
        let dir = tempfile::Builder::new()
            .prefix("vmlisub-case-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let sign_dir = dir.path().join("sign");
        fs::create_dir(&sign_dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
        let spec = SignSpec {
            signers: self.signers.iter().map(|s| pki.cert(s)).collect(),
            extra_certs: self.extra_certs.iter().map(|s| pki.cert(s)).collect(),
            content: self.content_bytes(),
            shape: self.shape,
            digest: self.digest,
            nocerts: self.nocerts,
            rsa_pss: self.rsa_pss,
            extra_args: self.sign_args.clone(),
            mutation: self.mutation.clone(),
        };
        let bytes = smime::sign(&sign_dir, &spec);
        let ext = match self.shape.inform() {
            Some("PEM") => "p7.pem",
            Some(_) => "p7m.der",
            None => "smime",
        };
        let message = dir.path().join(format!("image.list.{ext}"));
        fs::write(&message, &bytes).unwrap_or_else(|e| panic!("write message: {e}"));
        let ca_dir = dir.path().join("certificates");
        self.trust.write_dir(pki, &ca_dir);
        let bundle = dir.path().join("ca-bundle.pem");
        fs::write(&bundle, self.trust.bundle(pki)).unwrap_or_else(|e| panic!("write bundle: {e}"));
        Prepared {
            case: self.clone(),
            message,
            ca_dir,
            bundle,
            bytes,
            dir,
        }
    }
}

/// A case written to disk.
pub struct Prepared {
    pub case: Case,
    pub message: PathBuf,
    pub ca_dir: PathBuf,
    pub bundle: PathBuf,
    pub bytes: Vec<u8>,
    pub dir: TempDir,
}

/// What `openssl smime -verify` said.
#[derive(Clone, Debug)]
pub struct OpensslVerdict {
    pub command: String,
    pub accepted: bool,
    pub stderr: String,
}

impl Prepared {
    /// The `vmlisub verify` command for this case (without the message).
    pub fn command(&self) -> Verify {
        let mut v = Verify::new()
            .ca_dir(&self.ca_dir)
            .crl_policy(self.case.crl_policy)
            .at(&self.case.at);
        if self.case.allow_sha1 {
            v = v.allow_sha1();
        }
        for (subject, issuer) in &self.case.endorsers {
            v = v.endorser(subject, issuer);
        }
        v
    }

    pub fn vmlisub(&self) -> Outcome {
        self.command().file(&self.message).run()
    }

    pub fn openssl_crl_check(&self) -> bool {
        self.case
            .openssl_crl_check
            .unwrap_or(self.case.crl_policy != CrlPolicy::Ignore)
    }

    /// `openssl smime -verify -CAfile <bundle> -purpose smimesign -attime <at>`
    /// (+ `-crl_check_all`, `-inform`).
    pub fn openssl(&self) -> OpensslVerdict {
        let out = self.dir.path().join("openssl-verified.out");
        let mut args: Vec<OsString> = vec![
            "smime".into(),
            "-verify".into(),
            "-in".into(),
            self.message.clone().into(),
            "-CAfile".into(),
            self.bundle.clone().into(),
            "-no-CApath".into(),
            "-no-CAstore".into(),
            "-purpose".into(),
            "smimesign".into(),
            "-attime".into(),
            epoch(&self.case.at).to_string().into(),
            "-out".into(),
            out.into(),
        ];
        if self.openssl_crl_check() {
            // What IGTF sites configure: every certificate of the chain,
            // not only the end entity, needs a CRL.
            args.push("-crl_check_all".into());
        }
        if let Some(inform) = self.case.shape.inform() {
            args.extend(["-inform".into(), inform.into()]);
        }
        let result = openssl::try_run(self.dir.path(), &args);
        OpensslVerdict {
            command: format!(
                "openssl {}",
                args.iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            accepted: result.status.success(),
            stderr: String::from_utf8_lossy(&result.stderr).trim().to_owned(),
        }
    }
}
