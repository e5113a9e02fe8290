//! The commands vmcatcher users reach for, as a process against real
//! loopback servers and a PKI made now: `verify URL`; and the hostile
//! cases (a tampered list, an endless or lying body, file:// without
//! permission, credentials on the command line).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use support::cli::{Outcome, VMLISUB};
use support::live::{LivePki, list_time};
use support::web::{TransportPki, Web};

const LIST_ID: &str = "5d2f3c1e-8a7b-4c6d-9e0f-1a2b3c4d5e6f";

fn run(args: Vec<OsString>) -> Outcome {
    let out = Command::new(VMLISUB)
        .args(&args)
        .env_remove("RUST_LOG")
        .env_remove("VMLISUB_CA_DIR")
        .env_remove("VMLISUB_CACHE_DIR")
        .env_remove("VMLISUB_STATE")
        // The servers are on loopback: no proxy from the environment.
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Outcome {
        command: format!(
            "vmlisub {}",
            args.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        vec![$(OsString::from($arg)),*]
    };
}

/// A list document like [`LivePki::list`]'s, with a chosen title, signed.
fn signed_list(
    pki: &LivePki,
    title: &str,
    version: &str,
    images: &[(&str, &str, &[u8])],
) -> Vec<u8> {
    use sha2::Digest as _;
    let now = Timestamp::now();
    let images: Vec<Value> = images
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
                "hv:version": format!("{id}-v1"), "hv:format": "raw"
            }})
        })
        .collect();
    let document = serde_json::json!({"hv:imagelist": {
        "dc:identifier": LIST_ID, "dc:title": title,
        "dc:description": "generated", "dc:source": "https://example.org/",
        "dc:date:created": list_time(now - SignedDuration::from_hours(1)),
        "dc:date:expires": list_time(now + SignedDuration::from_hours(24 * 30)),
        "hv:version": version, "hv:uri": "https://example.org/image.list",
        "hv:endorser": {"hv:x509": {"hv:dn": pki.subject, "hv:ca": pki.issuer,
            "hv:email": "signer@example.org", "dc:creator": "test"}},
        "hv:images": images
    }});
    pki.sign(&serde_json::to_vec_pretty(&document).unwrap())
}

struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pki: LivePki,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for sub in ["pki", "manifests", "secrets"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let pki = LivePki::new(&root.join("pki"));
        Self {
            _dir: dir,
            root,
            pki,
        }
    }

    fn ca_dir(&self) -> OsString {
        self.pki.ca_dir.clone().into()
    }

    /// A credential file, mode 0600.
    fn secret(&self, name: &str, content: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.root.join("secrets").join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }
}

// ---------------------------------------------------------------------------
// vmlisub verify URL

#[test]
fn verify_by_url_is_verify_by_file() {
    let site = Site::new();
    let tls = TransportPki::new();
    let web = Web::https(&tls);
    let signed = signed_list(
        &site.pki,
        "Live test list",
        "1",
        &[("img-a", "a.img", b"A")],
    );
    web.serve("/image.list", &signed);
    web.require_authorization("Bearer t0ken-for-the-list");
    let token = site.secret("token", "t0ken-for-the-list\n");
    let file = site.root.join("downloaded.list");
    std::fs::write(&file, &signed).unwrap();
    let url = web.url("/image.list");

    let by_url = |format: &str| {
        run(args![
            "verify",
            "--ca-dir",
            site.ca_dir(),
            "--transport-ca",
            &tls.ca_file,
            "--token-file",
            &token,
            "-f",
            format,
            &url,
        ])
    };
    let by_file = |format: &str| {
        run(args![
            "verify",
            "--ca-dir",
            site.ca_dir(),
            "-f",
            format,
            &file
        ])
    };

    // The same bytes, the same verdict and report; the URL adds only the
    // hv:uri warning sync gives too.
    let smime = by_url("smime");
    smime.assert_ok();
    assert_eq!(smime.stdout, signed);
    let (mut url_json, mut file_json) = (by_url("json").json(), by_file("json").json());
    let url_warnings = url_json["warnings"].as_array().unwrap().clone();
    assert!(
        url_warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("differs from the subscription URL")),
        "{url_warnings:?}"
    );
    url_json["warnings"] = Value::Null;
    file_json["warnings"] = Value::Null;
    assert_eq!(url_json, file_json);
    assert_eq!(url_json["signer"]["subject"], site.pki.subject.as_str());
    let seen = web.take_seen();
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer t0ken-for-the-list")),
        "{seen:?}"
    );

    // TLS is always verified: without the transport CA the server is unknown.
    run(args![
        "verify",
        "--ca-dir",
        site.ca_dir(),
        "--token-file",
        &token,
        &url
    ])
    .assert_reason("tls");
    // Without the token, the server says no.
    run(args![
        "verify",
        "--ca-dir",
        site.ca_dir(),
        "--transport-ca",
        &tls.ca_file,
        &url
    ])
    .assert_reason("http-status");
    // Credentials never on the command line, not even inside the URL.
    let with_user = url.replace("https://", "https://user:t0ken@");
    let refused = run(args![
        "verify",
        "--ca-dir",
        site.ca_dir(),
        "--transport-ca",
        &tls.ca_file,
        &with_user
    ]);
    refused.assert_reason("usage");
    assert!(!refused.stderr.contains("t0ken"), "{}", refused.describe());
    // A token file of two lines is not a token.
    let bad = site.secret("bad-token", "one\ntwo\n");
    let bad = run(args![
        "verify",
        "--ca-dir",
        site.ca_dir(),
        "--transport-ca",
        &tls.ca_file,
        "--token-file",
        &bad,
        &url
    ]);
    bad.assert_reason("credentials-invalid");
    assert!(!bad.stderr.contains("two"), "{}", bad.describe());
}

#[test]
fn verify_by_url_refuses_hostile_answers() {
    let site = Site::new();
    let web = Web::http();
    let signed = signed_list(
        &site.pki,
        "Live test list",
        "1",
        &[("img-a", "a.img", b"A")],
    );
    let tampered =
        String::from_utf8(signed.clone())
            .unwrap()
            .replacen("Live test list", "Evil test list", 1);
    web.serve("/tampered.list", tampered.as_bytes());
    web.serve_endless("/endless.list");
    web.serve_claiming("/liar.list", 1 << 40);
    let verify = |url: &str| run(args!["verify", "--ca-dir", site.ca_dir(), url]);

    // A bad signature: the reason code and exit 1, as for a file.
    verify(&web.url("/tampered.list")).assert_reason("digest-mismatch");

    // An endless body is cut at the list size cap (64 MiB), quickly.
    let started = Instant::now();
    let before = web.body_bytes_sent();
    verify(&web.url("/endless.list")).assert_reason("too-large");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    // What the server got rid of: the cap plus what the socket buffers held.
    let sent = web.body_bytes_sent() - before;
    assert!(sent <= (64 << 20) + (32 << 20), "{sent} bytes sent");
    // A huge Content-Length is refused before the body is read.
    let before = web.body_bytes_sent();
    verify(&web.url("/liar.list")).assert_reason("too-large");
    assert!(web.body_bytes_sent() - before < 1024);

    // Nothing there.
    verify(&web.url("/missing.list")).assert_reason("http-status");

    // file:// stays refused unless asked for.
    let file = site.root.join("image.list");
    std::fs::write(&file, &signed).unwrap();
    let file_url = format!("file://{}", file.display());
    verify(&file_url).assert_reason("scheme-refused");
    run(args![
        "verify",
        "--ca-dir",
        site.ca_dir(),
        "--allow-file-urls",
        &file_url
    ])
    .assert_ok();
}
