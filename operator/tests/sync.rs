//! `vmlisub sync` end to end, as a process, on a PKI valid now: images
//! become available, a list rotation expires what left the list with hook
//! events in order, and tampered, rolled-back or unauthorised lists keep the
//! last good state and the cached images.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::process::{files_under, text};

use std::path::PathBuf;
use std::process::{Command, Output};

use support::live::LivePki;

struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pki: LivePki,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("pki")).unwrap();
        std::fs::create_dir_all(root.join("site/images")).unwrap();
        std::fs::create_dir_all(root.join("manifests")).unwrap();
        let pki = LivePki::new(&root.join("pki"));
        Self {
            _dir: dir,
            root,
            pki,
        }
    }

    fn image(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.root.join("site/images").join(name);
        std::fs::write(&path, bytes).unwrap();
        format!("file://{}", path.display())
    }

    fn publish(&self, signed: &[u8]) {
        std::fs::write(self.root.join("site/image.list"), signed).unwrap();
    }

    fn manifests(&self, policy: &str, endorser_subject: &str) {
        let manifest = format!(
            r#"apiVersion: vmli.hepix.org/v1alpha1
kind: Endorser
metadata: {{name: signer}}
spec:
  credentials:
    - subject: "{endorser_subject}"
      issuer: "{issuer}"
---
apiVersion: vmli.hepix.org/v1alpha1
kind: ImageListSubscription
metadata: {{name: vo-list}}
spec:
  url: "file://{list}"
  endorsers: [{{name: signer}}]
  imagePolicy: {policy}
"#,
            issuer = self.pki.issuer,
            list = self.root.join("site/image.list").display(),
        );
        std::fs::write(self.root.join("manifests/site.yaml"), manifest).unwrap();
    }

    fn sync(&self) -> Output {
        let log = self.root.join("events.log");
        self.sync_with_hook(
            &format!(
                "sh -c 'echo \"$VMILS_EVENT_TYPE $VMILS_EVENT_DC_IDENTIFIER\" >> {}'",
                log.display()
            ),
            &[],
        )
    }

    /// One pass with `hook` as the event command, `env` added to the
    /// environment vmlisub (and so the hook) inherits.
    fn sync_with_hook(&self, hook: &str, env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vmlisub"))
            .envs(env.iter().copied())
            .args(["sync", "--once", "--allow-file-urls", "-f"])
            .arg(self.root.join("manifests"))
            .arg("--cache-dir")
            .arg(self.root.join("cache"))
            .arg("--ca-dir")
            .arg(&self.pki.ca_dir)
            .arg("--state")
            .arg(self.root.join("state/state.json"))
            .arg("--event-command")
            .arg(hook)
            .output()
            .unwrap()
    }

    fn endorsed(&self, id: &str) -> PathBuf {
        self.root
            .join("cache/endorsed/default/vo-list")
            .join(id)
            .join("image")
    }

    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("events.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.root.join("state/state.json")).unwrap()).unwrap()
    }
}

const LIST_ID: &str = "6b0c8e1a-1f2d-4c3b-9a8e-7d6c5b4a3f21";

#[test]
fn images_become_available_then_rotate_out_with_events_in_order() {
    let site = Site::new();
    let a = site.image("a.img", b"image A bytes");
    let b = site.image("b.img", b"image B bytes, a little longer");
    site.publish(&site.pki.list(
        LIST_ID,
        "1",
        &[
            ("img-a", &a, b"image A bytes"),
            ("img-b", &b, b"image B bytes, a little longer"),
        ],
    ));
    site.manifests("AutoSubscribe", &site.pki.subject);

    let first = site.sync();
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(
        std::fs::read(site.endorsed("img-a")).unwrap(),
        b"image A bytes"
    );
    assert!(site.endorsed("img-b").exists());
    let state = site.state();
    let list = &state["lists"]["default/vo-list"]["status"];
    assert_eq!(list["list"]["version"], "1");
    assert_eq!(list["imageCount"], 2);
    assert_eq!(
        site.events(),
        vec![
            "ProcessPrefix ",
            "AvailablePrefix img-a",
            "AvailablePostfix img-a",
            "AvailablePrefix img-b",
            "AvailablePostfix img-b",
            "ProcessPostfix "
        ]
    );

    // Version 2 drops image B: it expires into the archive, A stays.
    site.publish(
        &site
            .pki
            .list(LIST_ID, "2", &[("img-a", &a, b"image A bytes")]),
    );
    let second = site.sync();
    assert!(second.status.success(), "{}", text(&second));
    assert!(site.endorsed("img-a").exists());
    assert!(!site.endorsed("img-b").exists());
    let archived = files_under(&site.root.join("cache/expired"));
    assert!(
        archived
            .iter()
            .any(|p| p.ends_with("image") && p.to_string_lossy().contains("img-b")),
        "{archived:?}"
    );
    let events = site.events();
    assert_eq!(
        &events[6..],
        &[
            "ProcessPrefix ",
            "ExpirePrefix img-b",
            "ExpirePostfix img-b",
            "ProcessPostfix "
        ]
    );
    assert_eq!(
        site.state()["lists"]["default/vo-list"]["status"]["list"]["version"],
        "2"
    );
}

#[test]
fn bad_updates_keep_the_last_good_list_and_images() {
    let site = Site::new();
    let a = site.image("a.img", b"image A bytes");
    let v2 = site
        .pki
        .list(LIST_ID, "2", &[("img-a", &a, b"image A bytes")]);
    site.publish(&v2);
    site.manifests("AutoSubscribe", &site.pki.subject);
    assert!(site.sync().status.success());

    // Tampered content: the signature no longer covers it.
    let tampered =
        String::from_utf8(v2.clone())
            .unwrap()
            .replacen("Live test list", "Evil test list", 1);
    site.publish(tampered.as_bytes());
    let out = site.sync();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("digest-mismatch"),
        "{}",
        text(&out)
    );
    assert!(site.endorsed("img-a").exists());
    let status = &site.state()["lists"]["default/vo-list"]["status"];
    assert_eq!(status["list"]["version"], "2");
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "DigestMismatch");

    // Rollback to a lower version.
    site.publish(
        &site
            .pki
            .list(LIST_ID, "1", &[("img-a", &a, b"image A bytes")]),
    );
    let out = site.sync();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rollback"),
        "{}",
        text(&out)
    );
    assert!(site.endorsed("img-a").exists());

    // A newer list that has already expired is refused too.
    let now = jiff::Timestamp::now();
    site.publish(&site.pki.list_with_times(
        LIST_ID,
        "3",
        &[("img-a", &a, b"image A bytes")],
        now - jiff::SignedDuration::from_hours(48),
        now - jiff::SignedDuration::from_hours(1),
    ));
    let out = site.sync();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("list-expired"),
        "{}",
        text(&out)
    );
    assert!(site.endorsed("img-a").exists());
    assert_eq!(
        site.state()["lists"]["default/vo-list"]["status"]["list"]["version"],
        "2"
    );

    // The signer is no longer an authorised endorser: the cached images of
    // its list are withdrawn.
    site.publish(&v2);
    site.manifests("AutoSubscribe", "/DC=org/DC=example/CN=someone else");
    let out = site.sync();
    assert!(!out.status.success());
    assert!(!site.endorsed("img-a").exists(), "{}", text(&out));
}

#[test]
fn corrupt_downloads_and_unsafe_identifiers_never_reach_the_cache() {
    let site = Site::new();
    let good = site.image("good.img", b"good bytes");
    let bad = site.image("bad.img", b"these are not the bytes the list promised");
    site.publish(&site.pki.list(
        LIST_ID,
        "1",
        &[
            ("good", &good, b"good bytes"),
            (
                "bad",
                &bad,
                b"the promised bytes, same length as the file? no",
            ),
            ("../escape", &good, b"good bytes"),
        ],
    ));
    site.manifests("AutoSubscribe", &site.pki.subject);
    let out = site.sync();
    assert!(!out.status.success(), "the corrupt image fails the pass");
    assert!(site.endorsed("good").exists(), "{}", text(&out));
    assert!(!site.endorsed("bad").exists());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("unsafe-identifier"), "{}", text(&out));
    // Nothing outside the cache's own areas was written.
    for path in files_under(&site.root.join("cache")) {
        let relative = path.strip_prefix(site.root.join("cache")).unwrap();
        assert!(!relative.to_string_lossy().contains(".."), "{path:?}");
    }
    assert!(!site.root.join("cache/endorsed/default/escape").exists());
}

#[test]
fn images_expire_when_their_stored_list_expires() {
    let site = Site::new();
    let a = site.image("a.img", b"image A bytes");
    // 15 s: signing and the first sync fit on a loaded machine (the
    // validity is cut to whole seconds); then wait until just past it.
    let now = jiff::Timestamp::now();
    let expires = now + jiff::SignedDuration::from_secs(15);
    site.publish(&site.pki.list_with_times(
        LIST_ID,
        "1",
        &[("img-a", &a, b"image A bytes")],
        now - jiff::SignedDuration::from_hours(1),
        expires,
    ));
    site.manifests("AutoSubscribe", &site.pki.subject);
    let first = site.sync();
    assert!(first.status.success(), "{}", text(&first));
    assert!(site.endorsed("img-a").exists());
    while jiff::Timestamp::now() <= expires + jiff::SignedDuration::from_secs(1) {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let second = site.sync();
    assert!(!second.status.success());
    assert!(!site.endorsed("img-a").exists(), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("expired (list-expired)"),
        "{}",
        text(&second)
    );
}

/// `autoEndorse: true` with no Endorser: the first valid signer is trusted
/// on first use, once, recorded in the state and reported; a list signed by
/// anyone else afterwards is refused, and switching autoEndorse off
/// withdraws the trust.
#[test]
fn auto_endorse_trusts_the_first_signer_once() {
    let site = Site::new();
    let a = site.image("a.img", b"image A bytes");
    site.publish(
        &site
            .pki
            .list(LIST_ID, "1", &[("img-a", &a, b"image A bytes")]),
    );
    let manifest = |auto: bool| {
        format!(
            r#"apiVersion: vmli.hepix.org/v1alpha1
kind: ImageListSubscription
metadata: {{name: vo-list}}
spec:
  url: "file://{list}"
  autoEndorse: {auto}
  imagePolicy: AutoSubscribe
"#,
            list = site.root.join("site/image.list").display(),
        )
    };
    std::fs::write(site.root.join("manifests/site.yaml"), manifest(true)).unwrap();
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("trusting"),
        "{}",
        text(&out)
    );
    assert!(site.endorsed("img-a").exists());
    let entry = &site.state()["lists"]["default/vo-list"];
    assert_eq!(entry["autoEndorsed"]["subject"], site.pki.subject.as_str());

    // Another signer of the same CA publishes version 2: not the one
    // trusted on first use.
    let now = jiff::Timestamp::now();
    let other = site
        .pki
        .issue_signer("intruder", now + jiff::SignedDuration::from_hours(24));
    site.publish(&site.pki.list_signed_by(
        &other,
        LIST_ID,
        "2",
        &[("img-a", &a, b"image A bytes")],
        now - jiff::SignedDuration::from_hours(1),
        now + jiff::SignedDuration::from_hours(24),
    ));
    let out = site.sync();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("endorser-not-authorised"),
        "{}",
        text(&out)
    );
    assert!(site.endorsed("img-a").exists(), "the first list stays good");
    let entry = &site.state()["lists"]["default/vo-list"];
    assert_eq!(entry["autoEndorsed"]["subject"], site.pki.subject.as_str());

    // autoEndorse off, no Endorser: nobody authorises the list any more.
    std::fs::write(site.root.join("manifests/site.yaml"), manifest(false)).unwrap();
    let out = site.sync();
    assert!(!out.status.success());
    assert!(!site.endorsed("img-a").exists(), "{}", text(&out));
}

/// The issue's hook, `sh -c 'logger "new: $VMILS_EVENT_DC_TITLE"'` (with
/// printf for logger), on a signed list whose image fields and keys are
/// hostile: nothing they hold runs, the values arrive byte for byte, the
/// image's `type` key does not change the event type, and a value with a
/// NUL stays unset even when vmlisub itself inherited that variable.
#[test]
fn hostile_image_fields_reach_event_hooks_as_data_only() {
    let site = Site::new();
    let bytes = b"image bytes";
    let uri = site.image("a.img", bytes);
    let marker = site.root.join("pwned");
    let m = marker.display();
    let title = format!("x\"; touch {m}; \"");
    let description = format!("$(touch {m})`touch {m}`\n'; touch {m}; '");
    let sum: String = {
        use sha2::Digest as _;
        sha2::Sha512::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let now = jiff::Timestamp::now();
    let document = serde_json::json!({"hv:imagelist": {
        "dc:identifier": LIST_ID, "dc:title": "Live test list",
        "dc:description": "generated", "dc:source": "https://example.org/",
        "dc:date:created": support::live::list_time(now - jiff::SignedDuration::from_hours(1)),
        "dc:date:expires": support::live::list_time(now + jiff::SignedDuration::from_hours(24)),
        "hv:version": "1", "hv:uri": "https://example.org/image.list",
        "hv:endorser": {"hv:x509": {"hv:dn": site.pki.subject, "hv:ca": site.pki.issuer,
            "hv:email": "signer@example.org", "dc:creator": "test"}},
        "hv:images": [{"hv:image": {
            "dc:identifier": "img-a", "dc:title": title, "dc:description": description,
            "hv:uri": uri, "hv:size": bytes.len(), "sl:checksum:sha512": sum,
            "sl:arch": "x86_64", "sl:os": "Linux", "sl:osversion": "test",
            "sl:comments": "before\u{0}after", "hv:hypervisor": "KVM", "hv:version": "1",
            "hv:format": "raw", "type": "ExpirePostfix", "x; touch pwned": "y"
        }}]
    }});
    site.publish(
        &site
            .pki
            .sign(&serde_json::to_vec_pretty(&document).unwrap()),
    );
    site.manifests("AutoSubscribe", &site.pki.subject);

    let out = site.root.join("hook");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.display();
    let hook = format!(
        r#"sh -c 'printf "%s\n" "new: $VMILS_EVENT_DC_TITLE" >> {o}/log; printf "%s\n" "$VMILS_EVENT_TYPE" >> {o}/types; if [ -n "$VMILS_EVENT_DC_IDENTIFIER" ]; then printf %s "$VMILS_EVENT_DC_TITLE" > {o}/title; printf %s "$VMILS_EVENT_DC_DESCRIPTION" > {o}/description; printf %s "${{VMILS_EVENT_SL_COMMENTS-unset}}" > {o}/comments; fi'"#
    );
    let result = site.sync_with_hook(&hook, &[("VMILS_EVENT_SL_COMMENTS", "inherited")]);
    assert!(result.status.success(), "{}", text(&result));
    assert!(site.endorsed("img-a").exists());
    assert!(!marker.exists(), "a hostile value ran: {}", text(&result));
    assert_eq!(std::fs::read_to_string(out.join("title")).unwrap(), title);
    assert_eq!(
        std::fs::read_to_string(out.join("description")).unwrap(),
        description
    );
    assert_eq!(
        std::fs::read_to_string(out.join("comments")).unwrap(),
        "unset"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("types")).unwrap(),
        "ProcessPrefix\nAvailablePrefix\nAvailablePostfix\nProcessPostfix\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("log")).unwrap(),
        format!("new: \nnew: {title}\nnew: {title}\nnew: \n")
    );
}
