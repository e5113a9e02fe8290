//! Built-in CRL refresh with `vmlisub sync` (issue #16), with real parts:
//! the test's own CA (`LivePki`) issues CRLs with chosen times, numbers
//! and revocations; a loopback web server publishes them at the URL an
//! IGTF-style `HASH.info` names; `vmlisub sync --once` runs as a process.
//!
//! One site goes through the life of a CRL: the directory's CRL is stale
//! (lists fail under `require` without the refresh), a fresh one is
//! fetched, then a forged one, an older one and an unreachable URL all
//! leave it in place, and finally a CRL that revokes the signer expires
//! the images as `signer-revoked`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jiff::{SignedDuration, Timestamp};

use support::live::LivePki;
use support::process::text;
use support::publisher::Publisher;

const LIST_ID: &str = "5b8e2c1a-7d4f-4e3a-9b6c-1f2e3d4c5b6a";
const IMAGE_ID: &str = "img-one";
const CRL_PATH: &str = "/live-ca.crl";

struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pki: LivePki,
    publisher: Publisher,
}

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for sub in ["pki", "site", "manifests"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let pki = LivePki::new(&root.join("pki"));
        let publisher = Publisher::start();
        // The CA directory: the CA, a CRL that went stale ten days ago, and
        // where the CA publishes its CRL.
        let now = Timestamp::now();
        let stale = pki.crl(now - hours(40 * 24), now - hours(10 * 24), 1, &[], false);
        std::fs::write(pki.ca_dir.join("livetest.r0"), stale).unwrap();
        std::fs::write(
            pki.ca_dir.join("livetest.info"),
            format!(
                "alias = live-test\ncrl_url = {}\nemail = ca@example.org\n",
                publisher.url_of(CRL_PATH)
            ),
        )
        .unwrap();
        let image = b"the one image of the list";
        let path = root.join("site/one.img");
        std::fs::write(&path, image).unwrap();
        let url = format!("file://{}", path.display());
        publisher.publish(&pki.list(LIST_ID, "1", &[(IMAGE_ID, url.as_str(), image)]));
        let manifest = format!(
            r#"apiVersion: vmli.hepix.org/v1alpha1
kind: Endorser
metadata: {{name: publisher}}
spec:
  credentials:
    - subject: "{subject}"
      issuer: "{issuer}"
---
apiVersion: vmli.hepix.org/v1alpha1
kind: ImageListSubscription
metadata: {{name: vo-list}}
spec:
  url: "{url}"
  endorsers: [{{name: publisher}}]
  imagePolicy: AutoSubscribe
"#,
            subject = pki.subject,
            issuer = pki.issuer,
            url = publisher.url(),
        );
        std::fs::write(root.join("manifests/site.yaml"), manifest).unwrap();
        Self {
            _dir: dir,
            root,
            pki,
            publisher,
        }
    }

    fn sync(&self, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vmlisub"))
            .args(["sync", "--once", "--allow-file-urls", "-f"])
            .arg(self.root.join("manifests"))
            .arg("--cache-dir")
            .arg(self.root.join("cache"))
            .arg("--ca-dir")
            .arg(&self.pki.ca_dir)
            .arg("--state")
            .arg(self.root.join("state/state.json"))
            .args(["--crl-refresh-interval", "1h"])
            .args(extra)
            .output()
            .unwrap()
    }

    fn crl_dir(&self) -> PathBuf {
        self.root.join("state/crls")
    }

    /// Makes the next pass refresh (the interval has not passed).
    fn due(&self) {
        let _ = std::fs::remove_file(self.crl_dir().join(".refreshed"));
    }

    /// The refreshed CRL file (there is one CA, so at most one).
    fn refreshed(&self) -> Option<Vec<u8>> {
        let entries = std::fs::read_dir(self.crl_dir()).ok()?;
        let files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "r0"))
            .collect();
        assert!(files.len() <= 1, "{files:?}");
        files.first().map(|path| std::fs::read(path).unwrap())
    }

    fn endorsed(&self) -> bool {
        self.root
            .join("cache/endorsed/default/vo-list")
            .join(IMAGE_ID)
            .join("image")
            .exists()
    }

    fn publish_crl(&self, crl: &[u8]) {
        self.publisher.publish_at(CRL_PATH, crl);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a file under `dir` mentions `needle` (expired-image records).
fn mentions(dir: &Path, needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            mentions(&path, needle)
        } else {
            std::fs::read(&path)
                .map(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
                .unwrap_or(false)
        }
    })
}

#[test]
fn a_crl_is_refreshed_only_when_genuine_and_newer_and_a_revocation_expires_the_images() {
    let site = Site::new();
    let now = Timestamp::now();

    // Without the refresh, the stale CRL of the CA directory fails the list.
    let out = site.sync(&["--no-crl-refresh"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("crl-stale"), "{}", text(&out));
    assert!(site.refreshed().is_none());

    // 1. A fresh CRL is published: it is fetched, and the list verifies.
    let fresh = site
        .pki
        .crl(now - hours(1), now + hours(7 * 24), 2, &[], false);
    site.publish_crl(&fresh);
    let out = site.sync(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("refreshed into"), "{}", text(&out));
    assert_eq!(site.refreshed().as_deref(), Some(fresh.as_slice()));
    assert!(site.endorsed());

    // Not due again within the interval: the CRL is not even fetched.
    site.publisher.take_seen();
    let out = site.sync(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !site
            .publisher
            .take_seen()
            .iter()
            .any(|seen| seen.path == CRL_PATH),
        "fetched although not due"
    );

    // 2. A forged CRL (another key under the CA's name) is refused; the
    //    fresh one stays in use.
    site.publish_crl(
        &site
            .pki
            .crl(now - hours(0), now + hours(30 * 24), 9, &[], true),
    );
    site.due();
    let out = site.sync(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("refresh failed (crl-invalid)"),
        "{}",
        text(&out)
    );
    assert_eq!(site.refreshed().as_deref(), Some(fresh.as_slice()));

    // 3. An older genuine CRL (a replay) is not taken.
    site.publish_crl(
        &site
            .pki
            .crl(now - hours(2), now + hours(7 * 24), 1, &[], false),
    );
    site.due();
    let out = site.sync(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("unchanged"), "{}", text(&out));
    assert_eq!(site.refreshed().as_deref(), Some(fresh.as_slice()));

    // 4. A newer thisUpdate with a lower cRLNumber is not taken either.
    site.publish_crl(
        &site
            .pki
            .crl(now - hours(0), now + hours(7 * 24), 1, &[], false),
    );
    site.due();
    let out = site.sync(&[]);
    assert!(stdout(&out).contains("unchanged"), "{}", text(&out));
    assert_eq!(site.refreshed().as_deref(), Some(fresh.as_slice()));

    // 5. The CRL URL is unreachable (404): the fresh CRL stays.
    site.publisher.withdraw(CRL_PATH);
    site.due();
    let out = site.sync(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("refresh failed (fetch-failed)"),
        "{}",
        text(&out)
    );
    assert_eq!(site.refreshed().as_deref(), Some(fresh.as_slice()));
    assert!(site.endorsed());

    // 6. The CA revokes the signer: the refreshed CRL takes effect in the
    //    same pass, the list no longer verifies and its image expires.
    let revoking = site.pki.crl(
        now - SignedDuration::from_mins(5),
        now + hours(7 * 24),
        10,
        &[LivePki::SIGNER_SERIAL_HEX],
        false,
    );
    site.publish_crl(&revoking);
    site.due();
    let out = site.sync(&[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("refreshed into"), "{}", text(&out));
    assert!(
        stdout(&out).contains("certificate-revoked"),
        "{}",
        text(&out)
    );
    assert_eq!(site.refreshed().as_deref(), Some(revoking.as_slice()));
    assert!(!site.endorsed());
    assert!(
        mentions(&site.root.join("cache/expired"), "signer-revoked"),
        "no expired record says signer-revoked\n{}",
        text(&out)
    );
}
