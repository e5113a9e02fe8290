//! The Glance export of `vmlisub sync` against a real Keystone and a real
//! Glance (PyPI's, on loopback; support/openstack.rs): an image is created
//! once per (list, identifier, digest) with the list's metadata mapped,
//! a rerun creates nothing, a new version hides the old image, expiry
//! deactivates or deletes, data arrives by streamed upload or by Glance's
//! web-download from the artifact URL, and data whose sha512 differs from
//! the verified image is deleted and reported. Authentication: a Keystone
//! application credential with the endpoint from the catalog, and a token
//! with an explicit endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};
use sha2::Digest as _;

use support::live::{LivePki, list_time};
use support::openstack::{OpenStack, TlsProxy, venv};
use support::process::text;
use support::transport_pki::TransportPki;
use support::web::Web;

struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pki: LivePki,
}

fn sha512_hex(bytes: &[u8]) -> String {
    sha2::Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for sub in ["pki", "site/images", "manifests"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let pki = LivePki::new(&root.join("pki"));
        Self {
            _dir: dir,
            root,
            pki,
        }
    }

    /// Publishes version `version` of list `list` with `images` as
    /// `(identifier, bytes)`, carrying HEPiX OS metadata.
    fn publish(&self, list: &str, version: &str, images: &[(&str, &[u8])]) {
        let now = jiff::Timestamp::now();
        let images: Vec<Value> = images
            .iter()
            .map(|(id, bytes)| {
                let path = self
                    .root
                    .join("site/images")
                    .join(format!("{list}-{id}-{version}"));
                std::fs::write(&path, bytes).unwrap();
                json!({"hv:image": {
                    "dc:identifier": id, "dc:title": format!("Image {id}"),
                    "dc:description": "test image", "hv:uri": format!("file://{}", path.display()),
                    "hv:size": bytes.len(), "sl:checksum:sha512": sha512_hex(bytes),
                    "sl:arch": "amd64", "sl:os": "Linux", "sl:osname": "CentOS",
                    "sl:osversion": "7", "sl:comments": "", "hv:hypervisor": "QEMU,KVM",
                    "hv:version": version, "hv:format": "raw", "hv:ram_minimum": 1024
                }})
            })
            .collect();
        let document = json!({"hv:imagelist": {
            "dc:identifier": format!("0b5c8e1a-1f2d-4c3b-9a8e-{:012}", list.len()),
            "dc:title": "Glance test list", "dc:description": "generated",
            "dc:source": "https://example.org/",
            "dc:date:created": list_time(now - jiff::SignedDuration::from_hours(1)),
            "dc:date:expires": list_time(now + jiff::SignedDuration::from_hours(24 * 30)),
            "hv:version": version, "hv:uri": "https://example.org/image.list",
            "hv:endorser": {"hv:x509": {"hv:dn": self.pki.subject, "hv:ca": self.pki.issuer,
                "hv:email": "signer@example.org", "dc:creator": "test"}},
            "hv:images": images
        }});
        let signed = self
            .pki
            .sign(&serde_json::to_vec_pretty(&document).unwrap());
        std::fs::write(self.root.join(format!("site/{list}.list")), signed).unwrap();
    }

    /// The manifests: an Endorser, the list, one ImageSubscription with
    /// `export` (YAML, indented under `spec:`), and `secret` (stringData).
    fn manifests(
        &self,
        list: &str,
        image: &str,
        identifier: &str,
        export: &str,
        secret: &[(&str, &str)],
    ) {
        let data: Vec<String> = secret
            .iter()
            .map(|(k, v)| format!("  {k}: \"{v}\""))
            .collect();
        let manifest = format!(
            r#"apiVersion: vmli.hepix.org/v1alpha1
kind: Endorser
metadata: {{name: signer}}
spec:
  credentials:
    - subject: "{subject}"
      issuer: "{issuer}"
---
apiVersion: vmli.hepix.org/v1alpha1
kind: ImageListSubscription
metadata: {{name: {list}}}
spec:
  url: "file://{path}"
  endorsers: [{{name: signer}}]
---
apiVersion: vmli.hepix.org/v1alpha1
kind: ImageSubscription
metadata: {{name: {image}}}
spec:
  subscriptionRef: {{name: {list}}}
  identifier: {identifier}
  export:
{export}
---
apiVersion: v1
kind: Secret
metadata: {{name: glance-credentials}}
stringData:
{data}
"#,
            subject = self.pki.subject,
            issuer = self.pki.issuer,
            path = self.root.join(format!("site/{list}.list")).display(),
            data = data.join("\n"),
        );
        std::fs::write(self.root.join("manifests/site.yaml"), manifest).unwrap();
    }

    fn sync(&self, artifact_base_url: Option<&str>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vmlisub"));
        command
            .args(["sync", "--once", "--allow-file-urls", "-f"])
            .arg(self.root.join("manifests"))
            .arg("--cache-dir")
            .arg(self.root.join("cache"))
            .arg("--ca-dir")
            .arg(&self.pki.ca_dir)
            .arg("--state")
            .arg(self.root.join("state/state.json"));
        if let Some(base) = artifact_base_url {
            command.args(["--artifact-base-url", base]);
        }
        command.output().unwrap()
    }

    fn status(&self, image: &str) -> Value {
        let state: Value =
            serde_json::from_slice(&std::fs::read(self.root.join("state/state.json")).unwrap())
                .unwrap();
        state["images"][format!("default/{image}")].clone()
    }

    fn status_json(&self) -> Value {
        let output = Command::new(env!("CARGO_BIN_EXE_vmlisub"))
            .args(["sync", "--status", "-o", "json", "--state"])
            .arg(self.root.join("state/state.json"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

fn by_sha<'a>(images: &'a [Value], bytes: &[u8]) -> Vec<&'a Value> {
    let sha = sha512_hex(bytes);
    images
        .iter()
        .filter(|i| i["vmli_sha512"] == sha.as_str())
        .collect()
}

fn exported_condition(status: &Value) -> Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Exported")
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn glance_export_against_real_keystone_and_glance() {
    let Some(venv) = venv() else {
        return;
    };
    let started = std::time::Instant::now();
    let stack = OpenStack::start(&venv);
    eprintln!("Keystone and Glance ready in {:?}", started.elapsed());
    upload_path_with_application_credential(&stack);
    web_download_path_with_token(&stack);
    failed_web_download_falls_back_to_upload(&stack);
    glance_behind_tls_is_verified_with_the_ca_of_a_secret(&stack, &venv);
    eprintln!("Glance export scenarios done in {:?}", started.elapsed());
}

/// Application credential, endpoint from the catalog, streamed upload,
/// metadata, idempotent rerun, new version hides the old, expiry
/// deactivates.
fn upload_path_with_application_credential(stack: &OpenStack) {
    let site = Site::new();
    let v1: &[u8] = b"version 1 of the uploaded image, raw bytes";
    let v2: &[u8] = b"version 2 of the uploaded image, other raw bytes";
    site.publish(
        "up-list",
        "1",
        &[("img-a", v1), ("img-b", b"another image")],
    );
    let export = format!(
        r#"    glance:
      authUrl: "{keystone}"
      credentialsSecretRef: {{name: glance-credentials}}
      method: Upload
      properties: {{hw_firmware_type: bios, vmli_sha512: forged}}"#,
        keystone = stack.keystone
    );
    site.manifests(
        "up-list",
        "a",
        "img-a",
        &export,
        &[
            ("application_credential_id", &stack.app_credential.0),
            ("application_credential_secret", &stack.app_credential.1),
        ],
    );

    let first = site.sync(None);
    assert!(
        first.status.success(),
        "{}\n{}",
        text(&first),
        stack.glance_log()
    );
    let status = site.status("a");
    let glance = &status["export"]["glance"];
    assert_eq!(glance["state"], "Exported", "{status:#}");
    assert_eq!(glance["method"], "upload");
    assert_eq!(exported_condition(&status)["status"], "True", "{status:#}");
    let images = stack.images_of("default/up-list");
    assert_eq!(
        images.len(),
        1,
        "exactly one image (img-b has no export): {images:#?}"
    );
    let image = &images[0];
    assert_eq!(glance["imageId"], image["id"]);
    assert_eq!(image["status"], "active");
    assert_eq!(image["os_hash_algo"], "sha512");
    assert_eq!(image["os_hash_value"], sha512_hex(v1).as_str());
    assert_eq!(
        image["vmli_sha512"],
        sha512_hex(v1).as_str(),
        "spec.properties cannot forge it"
    );
    assert_eq!(image["vmli_identifier"], "img-a");
    assert_eq!(image["name"], "Image img-a");
    assert_eq!(image["os_distro"], "centos");
    assert_eq!(image["os_type"], "linux");
    assert_eq!(image["os_version"], "7");
    assert_eq!(image["architecture"], "x86_64");
    assert_eq!(image["min_ram"], 1024);
    assert_eq!(image["disk_format"], "raw");
    assert_eq!(image["container_format"], "bare");
    assert_eq!(image["visibility"], "private");
    assert_eq!(image["hw_firmware_type"], "bios");
    assert_eq!(image["vmli_hypervisor"], "QEMU,KVM");
    assert_eq!(image["size"], v1.len());

    // A rerun finds the same image and creates nothing.
    let second = site.sync(None);
    assert!(second.status.success(), "{}", text(&second));
    let again = stack.images_of("default/up-list");
    assert_eq!(again.len(), 1, "{again:#?}");
    assert_eq!(again[0]["id"], image["id"]);
    assert_eq!(
        again[0]["updated_at"], image["updated_at"],
        "nothing was patched"
    );
    // --status -o json carries it.
    let json = site.status_json();
    let listed = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "a")
        .cloned()
        .unwrap();
    assert_eq!(listed["glance"]["imageId"], image["id"], "{listed:#}");
    assert_eq!(listed["glance"]["state"], "Exported", "{listed:#}");

    // Version 2: a new image; the old one is hidden only once the new is
    // active.
    site.publish("up-list", "2", &[("img-a", v2)]);
    let third = site.sync(None);
    assert!(
        third.status.success(),
        "{}\n{}",
        text(&third),
        stack.glance_log()
    );
    let images = stack.images_of("default/up-list");
    assert_eq!(images.len(), 2, "{images:#?}");
    let new = by_sha(&images, v2)[0];
    let old = by_sha(&images, v1)[0];
    assert_eq!(new["status"], "active");
    assert_eq!(new["os_hidden"], false);
    assert_eq!(new["os_hash_value"], sha512_hex(v2).as_str());
    assert_eq!(old["os_hidden"], true, "the previous version is hidden");
    assert_eq!(old["status"], "active");
    let status = site.status("a");
    assert_eq!(status["export"]["glance"]["imageId"], new["id"]);
    assert!(
        status["export"]["glance"]["retired"]
            .as_str()
            .unwrap()
            .contains(old["id"].as_str().unwrap()),
        "{status:#}"
    );

    // Withdrawn from the list: every image of it is deactivated.
    site.publish("up-list", "3", &[("img-b", b"another image")]);
    let fourth = site.sync(None);
    let out = text(&fourth);
    let images = stack.images_of("default/up-list");
    assert_eq!(images.len(), 2, "{out}\n{images:#?}");
    for image in &images {
        assert_eq!(image["status"], "deactivated", "{out}\n{image:#}");
    }
    let status = site.status("a");
    assert_eq!(status["export"]["glance"]["state"], "Retired", "{status:#}");
    // And that too is idempotent.
    site.sync(None);
    assert_eq!(stack.images_of("default/up-list").len(), 2);
}

/// A token with an explicit endpoint, web-download from the artifact URL,
/// a hash mismatch deleted and reported, delete on expiry.
fn web_download_path_with_token(stack: &OpenStack) {
    let site = Site::new();
    let web = Web::http();
    let base = web.url("");
    let artifact = "/images/default/web-list/img-w";
    let v1: &[u8] = b"web-downloaded image, version 1";
    let v2: &[u8] = b"web-downloaded image, version 2";
    site.publish("web-list", "1", &[("img-w", v1)]);
    web.serve(artifact, v1);
    let export = format!(
        r#"    glance:
      endpoint: "{glance}/v2/"
      credentialsSecretRef: {{name: glance-credentials}}
      visibility: community
      onExpiry: Delete"#,
        glance = stack.glance
    );
    site.manifests(
        "web-list",
        "w",
        "img-w",
        &export,
        &[("token", &stack.admin_token)],
    );

    let first = site.sync(Some(&base));
    assert!(
        first.status.success(),
        "{}\n{}",
        text(&first),
        stack.glance_log()
    );
    let status = site.status("w");
    assert_eq!(
        status["export"]["glance"]["state"], "Exported",
        "{status:#}"
    );
    assert_eq!(status["export"]["glance"]["method"], "web-download");
    let images = stack.images_of("default/web-list");
    assert_eq!(images.len(), 1, "{images:#?}");
    assert_eq!(images[0]["os_hash_value"], sha512_hex(v1).as_str());
    assert_eq!(images[0]["visibility"], "community");
    let first_id = images[0]["id"].clone();

    // Version 2, but the artifact URL serves other bytes: Glance imports
    // them, the export sees os_hash_value differ, deletes the image and
    // fails; version 1 stays published.
    site.publish("web-list", "2", &[("img-w", v2)]);
    web.serve(artifact, b"not the verified bytes of version 2");
    let mismatch = site.sync(Some(&base));
    assert!(!mismatch.status.success(), "a failed export fails the pass");
    let status = site.status("w");
    let glance = &status["export"]["glance"];
    assert_eq!(glance["state"], "Failed", "{status:#}");
    assert!(
        glance["lastError"]
            .as_str()
            .unwrap()
            .starts_with("glance-hash-mismatch"),
        "{status:#}"
    );
    assert_eq!(exported_condition(&status)["reason"], "ExportFailed");
    let images = stack.images_of("default/web-list");
    assert!(
        by_sha(&images, v2).is_empty(),
        "the bad image is gone: {images:#?}"
    );
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["id"], first_id);
    assert_eq!(images[0]["os_hidden"], false, "v1 stays visible");

    // The right bytes: exported, v1 hidden.
    web.serve(artifact, v2);
    let fixed = site.sync(Some(&base));
    assert!(
        fixed.status.success(),
        "{}\n{}",
        text(&fixed),
        stack.glance_log()
    );
    let images = stack.images_of("default/web-list");
    assert_eq!(images.len(), 2, "{images:#?}");
    assert_eq!(by_sha(&images, v2)[0]["status"], "active");
    assert_eq!(by_sha(&images, v1)[0]["os_hidden"], true);

    // Withdrawn, onExpiry: Delete: no image of the list is left.
    site.publish("web-list", "3", &[]);
    let _ = site.sync(Some(&base));
    let images = stack.images_of("default/web-list");
    assert!(images.is_empty(), "{images:#?}");
    assert_eq!(site.status("w")["export"]["glance"]["state"], "Retired");
}

/// The artifact URL answers 404: Glance's web-download fails, marks the
/// image (`os_glance_failed_import`), and the same run uploads instead.
fn failed_web_download_falls_back_to_upload(stack: &OpenStack) {
    let site = Site::new();
    let web = Web::http();
    let bytes: &[u8] = b"an image whose artifact URL is not served";
    site.publish("fallback-list", "1", &[("img-f", bytes)]);
    let export = format!(
        r#"    glance:
      endpoint: "{glance}"
      credentialsSecretRef: {{name: glance-credentials}}"#,
        glance = stack.glance
    );
    site.manifests(
        "fallback-list",
        "f",
        "img-f",
        &export,
        &[("token", &stack.admin_token)],
    );
    let run = site.sync(Some(&web.url("")));
    assert!(
        run.status.success(),
        "{}\n{}",
        text(&run),
        stack.glance_log()
    );
    let status = site.status("f");
    assert_eq!(
        status["export"]["glance"]["state"], "Exported",
        "{status:#}"
    );
    assert_eq!(status["export"]["glance"]["method"], "upload", "{status:#}");
    let images = stack.images_of("default/fallback-list");
    assert_eq!(images.len(), 1, "{images:#?}");
    assert_eq!(images[0]["os_hash_value"], sha512_hex(bytes).as_str());
    assert!(
        web.take_seen()
            .iter()
            .any(|seen| seen.path == "/images/default/fallback-list/img-f" && seen.status == 404),
        "Glance tried the artifact URL first"
    );
}

/// Glance, then Keystone, behind TLS (proxies with a certificate of a test
/// CA): without the CA the export fails on the certificate and nothing
/// reaches Glance (TLS is never skipped); with `caSecretRef` naming a
/// Secret whose `ca.crt` is that CA, the image is uploaded and Glance's
/// sha512 matches.
fn glance_behind_tls_is_verified_with_the_ca_of_a_secret(
    stack: &OpenStack,
    venv: &std::path::Path,
) {
    let pki = TransportPki::new("glance");
    let (cert, key) = &pki.server_files;
    let ca = String::from_utf8(pki.ca_pem.clone())
        .unwrap()
        .replace('\n', "\\n");

    let glance = TlsProxy::start(venv, cert, key, &stack.glance);
    refused_then_exported_over_tls(
        stack,
        "tls-list",
        &format!(r#"endpoint: "{}/v2/""#, glance.url),
        &[("token", &stack.admin_token), ("ca.crt", &ca)],
    );

    // Keystone behind TLS: application credential, Glance found in the
    // catalog.
    let keystone = TlsProxy::start(venv, cert, key, &stack.keystone);
    refused_then_exported_over_tls(
        stack,
        "tls-ks-list",
        &format!(r#"authUrl: "{}/v3""#, keystone.url),
        &[
            ("application_credential_id", &stack.app_credential.0),
            ("application_credential_secret", &stack.app_credential.1),
            ("ca.crt", &ca),
        ],
    );
}

/// One image of `list` exported with `location` (the `endpoint` or
/// `authUrl` line) behind TLS and `secret` (credentials and `ca.crt`):
/// refused on the certificate without `caSecretRef`, exported with it.
fn refused_then_exported_over_tls(
    stack: &OpenStack,
    list: &str,
    location: &str,
    secret: &[(&str, &str)],
) {
    let site = Site::new();
    let bytes: &[u8] = b"an image exported to Glance over verified TLS";
    site.publish(list, "1", &[("img-t", bytes)]);
    let export = |ca: &str| {
        format!(
            "    glance:\n      {location}\n      credentialsSecretRef: {{name: glance-credentials}}\n      method: Upload{ca}"
        )
    };

    site.manifests(list, "t", "img-t", &export(""), secret);
    let refused = site.sync(None);
    assert!(!refused.status.success(), "{}", text(&refused));
    let status = site.status("t");
    let glance = &status["export"]["glance"];
    assert_eq!(glance["state"], "Failed", "{status:#}");
    let error = glance["lastError"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("tls"),
        "a TLS verification failure: {status:#}"
    );
    let published = format!("default/{list}");
    assert!(stack.images_of(&published).is_empty());

    let with_ca = export("\n      caSecretRef: {name: glance-credentials}");
    site.manifests(list, "t", "img-t", &with_ca, secret);
    let exported = site.sync(None);
    assert!(
        exported.status.success(),
        "{}\n{}",
        text(&exported),
        stack.glance_log()
    );
    let status = site.status("t");
    assert_eq!(
        status["export"]["glance"]["state"], "Exported",
        "{status:#}"
    );
    assert_eq!(status["export"]["glance"]["method"], "upload");
    let images = stack.images_of(&published);
    assert_eq!(images.len(), 1, "{images:#?}");
    assert_eq!(images[0]["os_hash_value"], sha512_hex(bytes).as_str());
    assert_eq!(images[0]["status"], "active");
}
