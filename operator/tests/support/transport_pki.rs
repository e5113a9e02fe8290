//! A transport (web) PKI made at test time with the `openssl` CLI: a CA
//! and a server certificate for 127.0.0.1 signed by it. Web trust only,
//! unrelated to the grid PKI that signs lists.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tempfile::TempDir;

pub struct TransportPki {
    _dir: TempDir,
    /// The CA certificate (PEM) and its file, for `extra_ca_pem`,
    /// `--transport-ca` or `ca.crt`.
    pub ca_pem: Vec<u8>,
    pub ca_file: PathBuf,
    /// The server's certificate and key files (PEM), for servers that are
    /// not ours (a TLS proxy in front of Glance).
    pub server_files: (PathBuf, PathBuf),
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

fn openssl(dir: &Path, args: &[&str]) {
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
}

impl TransportPki {
    /// A CA named after `name` and its server certificate for 127.0.0.1.
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new().unwrap();
        let d = dir.path();
        let ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
        openssl(d, &[&["genpkey"][..], &ec, &["-out", "ca.key"]].concat());
        let subject = format!("/CN=vmlisub test transport CA {name}");
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-subj",
                &subject,
                "-days",
                "2",
                "-sha256",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                "ca.pem",
            ],
        );
        openssl(
            d,
            &[&["genpkey"][..], &ec, &["-out", "server.key"]].concat(),
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                "server.key",
                "-subj",
                "/CN=127.0.0.1",
                "-out",
                "server.csr",
            ],
        );
        std::fs::write(
            d.join("server.ext"),
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-sha256",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        let read = |f: &str| std::fs::read(d.join(f)).unwrap();
        Self {
            ca_pem: read("ca.pem"),
            ca_file: d.join("ca.pem"),
            server_files: (d.join("server.pem"), d.join("server.key")),
            cert_pem: read("server.pem"),
            key_pem: read("server.key"),
            _dir: dir,
        }
    }

    /// A rustls server configuration with the server certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let certs = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Arc::new(config)
    }
}
