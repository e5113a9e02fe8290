//! `vmlisub sync` and issue #10: the rollback guard holds when the stored
//! list stops verifying (its signer expired, its credential was removed),
//! and a refused list is refused again on the next pass instead of being
//! answered 304 Not Modified and passed off as the stored one.
//!
//! The list is published by a few lines of `std::net` on loopback that
//! answer `If-None-Match` with 304 like any web server, and record every
//! request; images are `file://` URLs. Signers are issued now by the
//! test's own CA (`LivePki`), one of them expiring seconds after issue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::live::{LivePki, LiveSigner};
use support::process::text;
use support::publisher::{Publisher, etag_of};

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

const LIST_ID: &str = "9c1d7e2f-4a3b-4c5d-8e6f-0a1b2c3d4e5f";
// ----- the site --------------------------------------------------------------

struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pki: LivePki,
    publisher: Publisher,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for sub in ["pki", "site", "manifests"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let pki = LivePki::new(&root.join("pki"));
        Self {
            _dir: dir,
            root,
            pki,
            publisher: Publisher::start(),
        }
    }

    fn image(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.root.join("site").join(name);
        std::fs::write(&path, bytes).unwrap();
        format!("file://{}", path.display())
    }

    /// One Endorser with `credentials` (subject, issuer), one subscription.
    fn manifests(&self, credentials: &[(&str, &str)]) {
        let credentials: String = credentials
            .iter()
            .map(|(subject, issuer)| {
                format!("    - subject: \"{subject}\"\n      issuer: \"{issuer}\"\n")
            })
            .collect();
        let manifest = format!(
            r#"apiVersion: vmli.hepix.org/v1alpha1
kind: Endorser
metadata: {{name: publisher}}
spec:
  credentials:
{credentials}---
apiVersion: vmli.hepix.org/v1alpha1
kind: ImageListSubscription
metadata: {{name: vo-list}}
spec:
  url: "{url}"
  endorsers: [{{name: publisher}}]
  imagePolicy: AutoSubscribe
"#,
            url = self.publisher.url(),
        );
        std::fs::write(self.root.join("manifests/site.yaml"), manifest).unwrap();
    }

    fn sync(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vmlisub"))
            .args(["sync", "--once", "--allow-file-urls", "-f"])
            .arg(self.root.join("manifests"))
            .arg("--cache-dir")
            .arg(self.root.join("cache"))
            .arg("--ca-dir")
            .arg(&self.pki.ca_dir)
            .arg("--state")
            .arg(self.root.join("state/state.json"))
            .output()
            .unwrap()
    }

    fn endorsed(&self, id: &str) -> bool {
        self.root
            .join("cache/endorsed/default/vo-list")
            .join(id)
            .join("image")
            .exists()
    }

    fn entry(&self) -> serde_json::Value {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.root.join("state/state.json")).unwrap())
                .unwrap();
        state["lists"]["default/vo-list"].clone()
    }

    /// (status, reason) of a condition of the list.
    fn condition(&self, type_: &str) -> (String, String) {
        let entry = self.entry();
        let condition = entry["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == type_)
            .unwrap_or_else(|| panic!("no {type_} condition in {entry:#}"))
            .clone();
        (
            condition["status"].as_str().unwrap().to_string(),
            condition["reason"].as_str().unwrap().to_string(),
        )
    }

    fn signed_by(
        &self,
        signer: &LiveSigner,
        version: &str,
        images: &[(&str, &str, &[u8])],
        created: Timestamp,
    ) -> Vec<u8> {
        self.pki.list_signed_by(
            signer,
            LIST_ID,
            version,
            images,
            created,
            Timestamp::now() + SignedDuration::from_hours(24 * 30),
        )
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hours_ago(hours: i64) -> Timestamp {
    Timestamp::now() - SignedDuration::from_hours(hours)
}

// ----- the rollback guard ----------------------------------------------------

/// v2, signed by credential A, is accepted; A expires; the publisher then
/// serves the older v1, validly signed by credential B of the same
/// Endorser. The stored v2 no longer verifies, yet v1 is a rollback.
#[test]
fn an_older_list_by_another_credential_is_a_rollback_after_the_signer_expired() {
    let site = Site::new();
    // 25 s: two signers, two signed lists and two syncs fit before A
    // expires on a loaded machine; the wait below ends just after it.
    let a_expires = Timestamp::now() + SignedDuration::from_secs(25);
    let a = site.pki.issue_signer("signer a", a_expires);
    let b = site.pki.issue_signer(
        "signer b",
        Timestamp::now() + SignedDuration::from_hours(24),
    );
    site.manifests(&[(&a.subject, &a.issuer), (&b.subject, &b.issuer)]);
    let retired = site.image("retired.img", b"an image v2 retired");
    let kept = site.image("kept.img", b"an image both lists carry");
    let current = site.image("current.img", b"the image v2 brought");

    // v1 (B) is imported, then v2 (A) retires one of its images.
    let v1 = site.signed_by(
        &b,
        "1",
        &[
            ("img-retired", &retired, b"an image v2 retired"),
            ("img-kept", &kept, b"an image both lists carry"),
        ],
        hours_ago(3),
    );
    site.publisher.publish(&v1);
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));
    site.publisher.publish(&site.signed_by(
        &a,
        "2",
        &[
            ("img-kept", &kept, b"an image both lists carry"),
            ("img-current", &current, b"the image v2 brought"),
        ],
        hours_ago(1),
    ));
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));
    assert!(site.endorsed("img-current") && !site.endorsed("img-retired"));
    assert_eq!(site.entry()["status"]["list"]["version"], "2");
    assert_eq!(site.entry()["highWater"][0]["version"], "2");

    // A expires. The publisher (or someone between it and us) serves v1
    // again, byte for byte, still within its validity and signed by B.
    site.publisher.publish(&v1);
    while Timestamp::now() <= a_expires + SignedDuration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = site.sync();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("rollback"), "{}", text(&out));
    // The retired image does not come back; v2's images are withdrawn,
    // since nothing that verifies endorses them any more.
    assert!(!site.endorsed("img-retired"), "{}", text(&out));
    assert!(!site.endorsed("img-current"), "{}", text(&out));
    assert_eq!(site.condition("Ready"), ("False".into(), "Rollback".into()));
    // The served list verifies; its version is what is wrong.
    assert_eq!(
        site.condition("SignatureVerified"),
        ("True".into(), "Verified".into())
    );
    let entry = site.entry();
    assert_eq!(entry["status"]["list"]["version"], "2");
    assert_eq!(entry["highWater"][0]["version"], "2");
    // The same on the next pass: the refusal is not forgotten.
    let out = site.sync();
    assert!(!out.status.success());
    assert!(stdout(&out).contains("rollback"), "{}", text(&out));
    assert!(!site.endorsed("img-retired"));

    // Progress is still possible: v3 by B is accepted.
    site.publisher.publish(&site.signed_by(
        &b,
        "3",
        &[("img-kept", &kept, b"an image both lists carry")],
        Timestamp::now() - SignedDuration::from_secs(10),
    ));
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));
    assert!(site.endorsed("img-kept"));
    assert!(!site.endorsed("img-retired"));
    assert_eq!(site.entry()["highWater"][0]["version"], "3");
    assert_eq!(site.condition("Ready").0, "True");
}

/// The same bypass through the Endorser: A's credential is removed from it
/// (the stored v2 stops standing), and an older v1 signed by B follows.
#[test]
fn an_older_list_by_another_credential_is_a_rollback_after_a_credential_was_removed() {
    let site = Site::new();
    let year = Timestamp::now() + SignedDuration::from_hours(24 * 365);
    let a = site.pki.issue_signer("signer a", year);
    let b = site.pki.issue_signer("signer b", year);
    site.manifests(&[(&a.subject, &a.issuer), (&b.subject, &b.issuer)]);
    let old = site.image("old.img", b"old image");
    site.publisher.publish(&site.signed_by(
        &a,
        "2",
        &[("img-old", &old, b"old image")],
        hours_ago(1),
    ));
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));

    site.manifests(&[(&b.subject, &b.issuer)]);
    site.publisher.publish(&site.signed_by(
        &b,
        "1",
        &[("img-old", &old, b"old image")],
        hours_ago(2),
    ));
    let out = site.sync();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("rollback"), "{}", text(&out));
    assert!(!site.endorsed("img-old"));
    assert_eq!(site.condition("Ready"), ("False".into(), "Rollback".into()));

    // Equal version, other bytes, not created later: a replay.
    site.publisher.publish(&site.signed_by(
        &b,
        "2",
        &[("img-old", &old, b"old image")],
        hours_ago(2),
    ));
    let out = site.sync();
    assert!(!out.status.success());
    assert!(stdout(&out).contains("replay"), "{}", text(&out));
}

// ----- a refusal survives a 304 ----------------------------------------------

/// A tampered list is refused; on the next pass the publisher would answer
/// 304 to the validators of that refused response, so they must not be
/// sent: the list is fetched, and refused, again. The validators of the
/// accepted list are used, and answered 304, while it is what is served.
#[test]
fn a_refused_list_is_refused_again_not_answered_not_modified() {
    let site = Site::new();
    let signer = site
        .pki
        .issue_signer("signer", Timestamp::now() + SignedDuration::from_hours(24));
    site.manifests(&[(&signer.subject, &signer.issuer)]);
    let img = site.image("a.img", b"image A bytes");
    let good = site.signed_by(
        &signer,
        "2",
        &[("img-a", &img, b"image A bytes")],
        hours_ago(1),
    );
    site.publisher.publish(&good);
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));
    let first = site.publisher.take_seen();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].status, first[0].if_none_match.as_deref()),
        (200, None)
    );

    // Unchanged: the stored list's validators, answered 304.
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));
    let seen = site.publisher.take_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].status, 304, "{seen:?}");
    assert_eq!(
        seen[0].if_none_match.as_deref(),
        Some(etag_of(&good).as_str())
    );

    // Tampered: refused, the last good list and its image stay.
    let tampered =
        String::from_utf8(good.clone())
            .unwrap()
            .replacen("Live test list", "Evil test list", 1);
    site.publisher.publish(tampered.as_bytes());
    for pass in 0..3 {
        let out = site.sync();
        assert!(!out.status.success(), "pass {pass}: {}", text(&out));
        assert!(
            stdout(&out).contains("digest-mismatch"),
            "pass {pass}: {}",
            text(&out)
        );
        let seen = site.publisher.take_seen();
        assert_eq!(seen.len(), 1, "pass {pass}: {seen:?}");
        assert_eq!(seen[0].status, 200, "pass {pass}: {seen:?}");
        assert_ne!(
            seen[0].if_none_match.as_deref(),
            Some(etag_of(tampered.as_bytes()).as_str()),
            "pass {pass}: the refused response's validators were sent"
        );
        assert_eq!(
            site.condition("Ready"),
            ("False".into(), "DigestMismatch".into()),
            "pass {pass}"
        );
        assert_eq!(
            site.condition("SignatureVerified"),
            ("False".into(), "DigestMismatch".into()),
            "pass {pass}"
        );
        assert_eq!(site.entry()["status"]["list"]["version"], "2");
        assert!(site.endorsed("img-a"), "pass {pass}");
    }

    // A validly signed rollback next: the conditions follow the served
    // list (its signature verifies, its version does not pass).
    site.publisher.publish(&site.signed_by(
        &signer,
        "1",
        &[("img-a", &img, b"image A bytes")],
        hours_ago(2),
    ));
    let out = site.sync();
    assert!(!out.status.success());
    assert_eq!(site.condition("Ready"), ("False".into(), "Rollback".into()));
    assert_eq!(site.condition("SignatureVerified").0, "True");
    assert!(site.endorsed("img-a"));

    // The good list is served again: accepted (unchanged), and from then on
    // its validators are sent and answered 304.
    site.publisher.publish(&good);
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(site.condition("Ready").0, "True");
    assert_eq!(site.condition("SignatureVerified").0, "True");
    site.publisher.take_seen();
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));
    let seen = site.publisher.take_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].status, 304, "{seen:?}");
}
