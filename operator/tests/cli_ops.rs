//! The commands vmcatcher users reach for, as a process against real
//! loopback servers and a PKI made now: `verify URL`, `subscribe URL`
//! (whose YAML `sync` then runs), `images`, `cache ls [--expired]` and
//! `sync --status -o json`; and the hostile cases (a tampered list, an
//! endless or lying body, file:// without permission, credentials on the
//! command line, a title that tries to smuggle YAML).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
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

fn stdout(outcome: &Outcome) -> String {
    String::from_utf8_lossy(&outcome.stdout).into_owned()
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

    fn state(&self) -> OsString {
        self.root.join("state/state.json").into()
    }

    fn cache(&self) -> OsString {
        self.root.join("cache").into()
    }

    fn sync(&self) -> Outcome {
        run(args![
            "sync",
            "--once",
            "--no-crl-refresh",
            "-f",
            self.root.join("manifests"),
            "--ca-dir",
            self.ca_dir(),
            "--cache-dir",
            self.cache(),
            "--state",
            self.state(),
        ])
    }

    fn json(&self, args: Vec<OsString>) -> Value {
        let outcome = run(args);
        outcome.assert_ok();
        outcome.json()
    }
}

// ---------------------------------------------------------------------------
// vmlisub verify URL

#[test]
fn verify_by_url_is_verify_by_file() {
    let site = Site::new();
    let tls = TransportPki::new("cli");
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
    // A huge Content-Length is refused before the body is read. The
    // endless route's server thread may still count its last write: start
    // once the count has settled.
    let mut before = web.body_bytes_sent();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = web.body_bytes_sent();
        if now == before {
            break;
        }
        before = now;
    }
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

// ---------------------------------------------------------------------------
// vmlisub subscribe URL, then sync, images, cache ls, sync --status -o json

/// Checks `object` against the CRD schema of its kind (`vmlisub crds`):
/// every field known, required fields present, string patterns and length
/// limits kept: what the API server would check on `kubectl apply`.
fn assert_valid_for_the_api_server(object: &Value) {
    let crds = run(args!["crds"]);
    crds.assert_ok();
    let crds: Vec<Value> = serde_saphyr::from_multiple(&stdout(&crds)).unwrap();
    let kind = object["kind"].as_str().unwrap();
    let crd = crds
        .iter()
        .find(|crd| crd["spec"]["names"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    assert_eq!(
        object["apiVersion"],
        format!(
            "{}/{}",
            crd["spec"]["group"].as_str().unwrap(),
            crd["spec"]["versions"][0]["name"].as_str().unwrap()
        )
    );
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut errors = Vec::new();
    check_schema(schema, object, kind, &mut errors);
    assert!(errors.is_empty(), "{errors:#?}\n{object:#}");
}

fn check_schema(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    match schema["type"].as_str() {
        Some("object") => {
            let Some(map) = value.as_object() else {
                errors.push(format!("{at}: not an object"));
                return;
            };
            if let Some(properties) = schema["properties"].as_object() {
                for (key, child) in map {
                    // The API server knows these of every object.
                    let root = !at.contains('.');
                    match properties.get(key) {
                        None if root
                            && ["apiVersion", "kind", "metadata"].contains(&key.as_str()) => {}
                        Some(child_schema) => {
                            check_schema(child_schema, child, &format!("{at}.{key}"), errors)
                        }
                        None if schema["x-kubernetes-preserve-unknown-fields"] == true => {}
                        None => errors.push(format!("{at}.{key}: unknown field")),
                    }
                }
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                if !map.contains_key(required.as_str().unwrap()) {
                    errors.push(format!("{at}: {required} is required"));
                }
            }
        }
        Some("array") => match value.as_array() {
            Some(items) => {
                if let Some(min) = schema["minItems"].as_u64()
                    && (items.len() as u64) < min
                {
                    errors.push(format!("{at}: fewer than {min} items"));
                }
                for (index, item) in items.iter().enumerate() {
                    check_schema(&schema["items"], item, &format!("{at}[{index}]"), errors);
                }
            }
            None => errors.push(format!("{at}: not an array")),
        },
        Some("string") => match value.as_str() {
            Some(text) => {
                if let Some(pattern) = schema["pattern"].as_str()
                    && !regex::Regex::new(pattern).unwrap().is_match(text)
                {
                    errors.push(format!("{at}: {text:?} does not match {pattern}"));
                }
                if let Some(max) = schema["maxLength"].as_u64()
                    && text.chars().count() as u64 > max
                {
                    errors.push(format!("{at}: longer than {max}"));
                }
                if let Some(allowed) = schema["enum"].as_array()
                    && !allowed.iter().any(|a| a == value)
                {
                    errors.push(format!("{at}: {text:?} not one of {allowed:?}"));
                }
            }
            None => errors.push(format!("{at}: not a string")),
        },
        Some("boolean") if !value.is_boolean() => errors.push(format!("{at}: not a boolean")),
        Some("integer") if !value.is_i64() && !value.is_u64() => {
            errors.push(format!("{at}: not an integer"))
        }
        _ => {}
    }
}

fn image_states(document: &Value, list: &str) -> Vec<(String, String)> {
    let list = document["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == list)
        .unwrap_or_else(|| panic!("no list {list} in {document:#}"));
    list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["identifier"].as_str().unwrap().to_string(),
                i["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn subscribe_prints_what_sync_then_runs_and_the_listings_follow() {
    let site = Site::new();
    let tls = TransportPki::new("cli");
    let web = Web::https(&tls);
    let (a, b) = (
        b"image A bytes".as_slice(),
        b"image B, never served".as_slice(),
    );
    web.serve("/images/a.img", a);
    // Image B is listed but its URL answers 404: it stays subscribed, not available.
    let v1 = signed_list(
        &site.pki,
        "Live test list",
        "1",
        &[("img-a", "images/a.img", a), ("img-b", "images/b.img", b)],
    );
    web.serve("/image.list", &v1);
    let url = web.url("/image.list");

    let subscribed = run(args![
        "subscribe",
        "--ca-dir",
        site.ca_dir(),
        "--transport-ca",
        &tls.ca_file,
        &url
    ]);
    subscribed.assert_ok();
    let yaml = stdout(&subscribed);
    assert!(
        yaml.starts_with("# Review before applying: this trusts\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains(&format!("#   {}\n", site.pki.subject)),
        "{yaml}"
    );
    assert!(yaml.contains(LIST_ID), "{yaml}");
    let objects: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
    let objects: Vec<&Value> = objects.iter().filter(|o| !o.is_null()).collect();
    assert_eq!(objects.len(), 2, "{yaml}");
    let (endorser, list) = (objects[0], objects[1]);
    assert_eq!(endorser["kind"], "Endorser");
    assert_eq!(endorser["metadata"]["name"], "live-test-list");
    assert_eq!(
        endorser["spec"]["credentials"],
        serde_json::json!([{"subject": site.pki.subject, "issuer": site.pki.issuer}])
    );
    assert_eq!(list["kind"], "ImageListSubscription");
    assert_eq!(list["metadata"]["name"], "live-test-list");
    assert_eq!(list["spec"]["url"], url.as_str());
    assert_eq!(list["spec"]["identifier"], LIST_ID);
    assert_eq!(list["spec"]["interval"], "6h");
    assert_eq!(
        list["spec"]["endorsers"],
        serde_json::json!([{"name": "live-test-list"}])
    );
    assert_eq!(
        list["spec"]["certSecretRef"]["name"],
        "live-test-list-transport-ca"
    );
    for object in &objects {
        assert_valid_for_the_api_server(object);
    }

    // The output, as it is, plus the Secret it asks for and two
    // ImageSubscriptions, is what sync runs.
    std::fs::write(site.root.join("manifests/subscription.yaml"), &yaml).unwrap();
    let ca_pem = std::fs::read_to_string(&tls.ca_file).unwrap();
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "live-test-list-transport-ca",
                     "labels": {"vmli.hepix.org/credentials": "true"}},
        "stringData": {"ca.crt": ca_pem},
    });
    std::fs::write(
        site.root.join("manifests/secret.json"),
        serde_json::to_vec(&secret).unwrap(),
    )
    .unwrap();
    let image_subscription = |id: &str| {
        format!(
            "apiVersion: vmli.hepix.org/v1alpha1\nkind: ImageSubscription\nmetadata: {{name: {id}}}\nspec:\n  subscriptionRef: {{name: live-test-list}}\n  identifier: {id}\n"
        )
    };
    std::fs::write(
        site.root.join("manifests/images.yaml"),
        image_subscription("img-a") + "---\n" + &image_subscription("img-b"),
    )
    .unwrap();
    let first = site.sync();
    // Image B cannot be downloaded, so the pass is not all Ready.
    assert_eq!(first.code, Some(1), "{}", first.describe());
    let endorsed = site
        .root
        .join("cache/endorsed/default/live-test-list/img-a/image");
    assert_eq!(std::fs::read(&endorsed).unwrap(), a, "{}", first.describe());

    // images, with the manifests and without.
    let images_args = |with_manifests: bool| {
        let mut args = args![
            "images",
            "--state",
            site.state(),
            "--cache-dir",
            site.cache(),
            "-o",
            "json"
        ];
        if with_manifests {
            args.extend(args!["-f", site.root.join("manifests")]);
        }
        args
    };
    for with_manifests in [true, false] {
        let document = site.json(images_args(with_manifests));
        assert_eq!(document["schemaVersion"], 1);
        assert_eq!(
            image_states(&document, "live-test-list"),
            [
                ("img-a".into(), "available".into()),
                ("img-b".into(), "subscribed".into())
            ],
            "{document:#}"
        );
    }
    let table = run(args![
        "images",
        "--state",
        site.state(),
        "--cache-dir",
        site.cache()
    ]);
    table.assert_ok();
    let table = stdout(&table);
    assert!(table.starts_with("LIST"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("default/live-test-list")
                && l.contains("img-a")
                && l.contains("Image img-a")
                && l.contains("img-a-v1")
                && l.contains(&a.len().to_string())
                && l.trim_end().ends_with("available")),
        "{table}"
    );

    // cache ls: the verified image, with its digest.
    let cached = site.json(args![
        "cache",
        "ls",
        "--cache-dir",
        site.cache(),
        "-o",
        "json"
    ]);
    let entries = cached["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{cached:#}");
    assert_eq!(entries[0]["namespace"], "default");
    assert_eq!(entries[0]["list"], "live-test-list");
    assert_eq!(entries[0]["image"], "img-a");
    assert_eq!(entries[0]["size"], a.len());
    let sha_a: String = {
        use sha2::Digest as _;
        sha2::Sha512::digest(a)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(entries[0]["sha512"], sha_a.as_str());
    assert!(entries[0]["verifiedAt"].as_str().unwrap().ends_with('Z'));

    // sync --status -o json: the documented summary.
    let status = site.json(args![
        "sync",
        "--status",
        "--state",
        site.state(),
        "-o",
        "json"
    ]);
    assert_eq!(status["schemaVersion"], 1);
    let lists = status["lists"].as_array().unwrap();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0]["namespace"], "default");
    assert_eq!(lists[0]["name"], "live-test-list");
    assert_eq!(lists[0]["ready"]["status"], "True");
    assert_eq!(lists[0]["list"]["identifier"], LIST_ID);
    assert_eq!(lists[0]["list"]["version"], "1");
    assert_eq!(
        lists[0]["list"]["signer"]["subject"],
        site.pki.subject.as_str()
    );
    assert!(lists[0]["nextFetch"].is_string());
    let images = status["images"].as_array().unwrap();
    let image = |name: &str| images.iter().find(|i| i["name"] == name).unwrap();
    assert_eq!(image("img-a")["phase"], "Available");
    assert_eq!(image("img-a")["ready"]["status"], "True");
    assert_eq!(
        image("img-a")["artifact"]["digest"],
        format!("sha512:{sha_a}")
    );
    // The disk format and virtual size, read from the verified file's
    // header (no magic number: raw, its virtual size is its size).
    assert_eq!(image("img-a")["artifact"]["format"], "raw");
    assert_eq!(image("img-a")["artifact"]["virtualSize"], a.len());
    assert_eq!(image("img-b")["ready"]["status"], "False");
    assert_eq!(status["endorsers"][0]["name"], "live-test-list");
    assert!(status["lists"][0]["status"]["conditions"].is_array());

    // Version 2 drops image A: it expires into the archive.
    let v2 = signed_list(
        &site.pki,
        "Live test list",
        "2",
        &[("img-b", "images/b.img", b)],
    );
    web.serve("/image.list", &v2);
    let second = site.sync();
    assert_eq!(second.code, Some(1), "{}", second.describe());
    assert!(!endorsed.exists(), "{}", second.describe());
    let document = site.json(images_args(true));
    assert_eq!(
        image_states(&document, "live-test-list"),
        [
            ("img-b".into(), "subscribed".into()),
            ("img-a".into(), "expired".into())
        ],
        "{document:#}"
    );
    let gone = &document["lists"][0]["images"][1];
    assert_eq!(gone["reason"], "removed-from-list");
    assert_eq!(gone["inList"], false);
    assert_eq!(gone["title"], "Image img-a");
    assert_eq!(
        site.json(args![
            "cache",
            "ls",
            "--cache-dir",
            site.cache(),
            "-o",
            "json"
        ])["entries"],
        serde_json::json!([])
    );
    let archive = site.json(args![
        "cache",
        "ls",
        "--expired",
        "--cache-dir",
        site.cache(),
        "-o",
        "json"
    ]);
    let entries = archive["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{archive:#}");
    assert_eq!(entries[0]["image"], "img-a");
    assert_eq!(entries[0]["reason"], "removed-from-list");
    assert_eq!(entries[0]["sha512"], sha_a.as_str());
    assert_eq!(entries[0]["size"], a.len());
    assert!(
        Path::new(entries[0]["path"].as_str().unwrap())
            .join("image")
            .exists()
    );
    let table = run(args![
        "cache",
        "ls",
        "--expired",
        "--cache-dir",
        site.cache()
    ]);
    table.assert_ok();
    assert!(
        stdout(&table)
            .lines()
            .any(|l| l.contains("img-a") && l.contains("removed-from-list")),
        "{}",
        stdout(&table)
    );
}

#[test]
fn subscribe_refuses_what_it_cannot_vouch_for() {
    let site = Site::new();
    let web = Web::http();
    // A title that tries to end the comment header and add an object.
    let hostile = "Nice list\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: evil}";
    web.serve("/hostile.list", &signed_list(&site.pki, hostile, "1", &[]));
    let signed = signed_list(&site.pki, "Live test list", "1", &[]);
    let tampered =
        String::from_utf8(signed.clone())
            .unwrap()
            .replacen("Live test list", "Evil test list", 1);
    web.serve("/tampered.list", tampered.as_bytes());
    web.serve_endless("/endless.list");
    let subscribe = |extra: Vec<OsString>, url: &str| {
        let mut args = args!["subscribe", "--ca-dir", site.ca_dir()];
        args.extend(extra);
        args.push(url.into());
        run(args)
    };

    let out = subscribe(
        args!["--name", "vo-list", "-n", "grid"],
        &web.url("/hostile.list"),
    );
    out.assert_ok();
    let yaml = stdout(&out);
    let objects: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(kinds, ["Endorser", "ImageListSubscription"], "{yaml}");
    assert!(objects.iter().all(|o| o["metadata"]["namespace"] == "grid"));
    assert!(objects.iter().all(|o| o["metadata"]["name"] == "vo-list"));
    assert_eq!(yaml.lines().filter(|l| *l == "---").count(), 2, "{yaml}");
    assert!(
        !yaml.lines().any(|l| l.starts_with("kind: Secret")),
        "{yaml}"
    );

    subscribe(vec![], &web.url("/tampered.list")).assert_reason("digest-mismatch");
    subscribe(vec![], &web.url("/endless.list")).assert_reason("too-large");
    let file = site.root.join("image.list");
    std::fs::write(&file, &signed).unwrap();
    subscribe(vec![], &format!("file://{}", file.display())).assert_reason("scheme-refused");
    subscribe(vec![], file.to_str().unwrap()).assert_reason("usage");
    subscribe(args!["--name", "Not_A_Name"], &web.url("/hostile.list")).assert_reason("usage");
    // Local files only when asked for; the output then subscribes to it.
    let local = subscribe(
        args!["--allow-file-urls"],
        &format!("file://{}", file.display()),
    );
    local.assert_ok();
    assert!(
        stdout(&local).contains("name: live-test-list"),
        "{}",
        stdout(&local)
    );
}

#[test]
fn listings_only_read() {
    let site = Site::new();
    let missing = site.root.join("no-cache-here");
    run(args!["cache", "ls", "--cache-dir", &missing]).assert_reason("cache-unavailable");
    run(args!["cache", "ls", "--expired", "--cache-dir", &missing])
        .assert_reason("cache-unavailable");
    assert!(!missing.exists(), "a listing created the cache");
    // No state, no cache: nothing to list, and nothing written.
    let state = site.root.join("state/state.json");
    let out = run(args![
        "images",
        "--state",
        &state,
        "--cache-dir",
        &missing,
        "-o",
        "json"
    ]);
    out.assert_ok();
    assert_eq!(out.json()["lists"], serde_json::json!([]));
    assert!(!missing.exists() && !state.exists());
    let status = run(args!["sync", "--status", "--state", &state, "-o", "json"]);
    status.assert_ok();
    assert_eq!(status.json()["lists"], serde_json::json!([]));
    assert!(!state.exists());
    // -o is for --status.
    assert_eq!(run(args!["sync", "-f", &state, "-o", "json"]).code, Some(2));
}
