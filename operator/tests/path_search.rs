//! Hostile certificate material for the path builder, made with the
//! `openssl` CLI at test time: a mesh of self-issued cross-certificates
//! among many keys of one CA subject (every ordering of the keys is a
//! chain, so an unbounded depth-first search would walk n! paths), and a
//! name whose OpenSSL one-line form is ambiguous.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const VMLISUB: &str = env!("CARGO_BIN_EXE_vmlisub");
const CA_EXT: &str = "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";
const LEAF_EXT: &str = "[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn key(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ],
    );
}

/// A self-signed certificate for `name.key` (also the `-CA` handle that
/// lets openssl issue under that key).
fn self_signed(dir: &Path, name: &str, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            subject,
            "-days",
            "3650",
            "-config",
            "ext.cnf",
            "-extensions",
            "ca",
            "-out",
            &format!("{name}.self.pem"),
        ],
    );
}

/// Issues `subject` for `key` under `issuer` (its key and self-signed handle).
fn issue(
    dir: &Path,
    out: &str,
    key: &str,
    subject: &str,
    issuer: &str,
    extensions: &str,
    serial: u32,
) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{key}.key"),
            "-subj",
            subject,
            "-out",
            &format!("{out}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{out}.csr"),
            "-CA",
            &format!("{issuer}.self.pem"),
            "-CAkey",
            &format!("{issuer}.key"),
            "-set_serial",
            &serial.to_string(),
            "-days",
            "3650",
            "-extfile",
            "ext.cnf",
            "-extensions",
            extensions,
            "-out",
            &format!("{out}.pem"),
        ],
    );
}

fn sign(dir: &Path, signer: &str) -> PathBuf {
    fs::write(dir.join("content.json"), b"{}").unwrap();
    openssl(
        dir,
        &[
            "smime",
            "-sign",
            "-in",
            "content.json",
            "-signer",
            &format!("{signer}.pem"),
            "-inkey",
            &format!("{signer}.key"),
            "-out",
            "message.smime",
        ],
    );
    dir.join("message.smime")
}

fn verify(ca_dir: &Path, message: &Path) -> Output {
    Command::new(VMLISUB)
        .args(["verify", "--crl-policy", "ignore", "--ca-dir"])
        .arg(ca_dir)
        .arg(message)
        .output()
        .unwrap()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("ext.cnf"), format!("{CA_EXT}{LEAF_EXT}")).unwrap();
    fs::create_dir(dir.path().join("ca")).unwrap();
    dir
}

#[test]
fn a_mesh_of_cross_certificates_ends_the_search_quickly() {
    const KEYS: usize = 8;
    let dir = setup();
    let d = dir.path();
    key(d, "root");
    self_signed(d, "root", "/CN=Mesh Root");
    fs::copy(d.join("root.self.pem"), d.join("ca/root.pem")).unwrap();
    for i in 0..KEYS {
        key(d, &format!("k{i}"));
        self_signed(d, &format!("k{i}"), "/CN=Mesh CA");
    }
    // Every key certifies every other key under the same subject: 56
    // self-issued certificates, none of them reaching the root.
    let mut serial = 100;
    for i in 0..KEYS {
        for j in 0..KEYS {
            if i != j {
                let name = format!("x{j}by{i}");
                issue(
                    d,
                    &name,
                    &format!("k{j}"),
                    "/CN=Mesh CA",
                    &format!("k{i}"),
                    "ca",
                    serial,
                );
                fs::copy(
                    d.join(format!("{name}.pem")),
                    d.join(format!("ca/{name}.pem")),
                )
                .unwrap();
                serial += 1;
            }
        }
    }
    key(d, "leaf");
    issue(d, "leaf", "leaf", "/CN=Mesh Leaf", "k0", "leaf", 7);
    let message = sign(d, "leaf");

    let output = verify(&d.join("ca"), &message);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("untrusted-signer"), "{stderr}");

    // With one key certified by the root, a path exists and is found.
    issue(d, "k5byroot", "k5", "/CN=Mesh CA", "root", "ca", 9);
    fs::copy(d.join("k5byroot.pem"), d.join("ca/k5byroot.pem")).unwrap();
    // The signature and path now verify: what remains is that `{}` is no
    // image list.
    let output = verify(&d.join("ca"), &message);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("malformed-list"), "{stderr}");
}

#[test]
fn a_name_with_a_literal_backslash_is_refused() {
    let dir = setup();
    let d = dir.path();
    key(d, "root");
    self_signed(d, "root", "/CN=Plain Root");
    fs::copy(d.join("root.self.pem"), d.join("ca/root.pem")).unwrap();
    key(d, "signer");
    // `\xC3\xBC` typed out: its one-line form equals that of `ü` in UTF-8.
    issue(
        d,
        "signer",
        "signer",
        "/CN=J\\\\xC3\\\\xBCrgen",
        "root",
        "leaf",
        5,
    );
    let message = sign(d, "signer");
    let output = verify(&d.join("ca"), &message);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("certificate-invalid") && stderr.contains("ambiguous"),
        "{stderr}"
    );
}
