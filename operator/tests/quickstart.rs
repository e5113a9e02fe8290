//! The committed quickstart example (examples/quickstart) works: its signed
//! lists verify against its CA, version 1 caches the two subscribed images
//! and version 2 expires the one it dropped. Run on a copy of the site, with
//! the manifest's URL pointed at the copy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

#[test]
fn quickstart_caches_then_expires() {
    let example = support::quickstart::example();
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let manifests = support::quickstart::prepare(dir.path());
    let sync = || {
        Command::new(env!("CARGO_BIN_EXE_vmlisub"))
            .args(["sync", "--once", "--allow-file-urls", "-f"])
            .arg(&manifests)
            .arg("--ca-dir")
            .arg(example.join("ca"))
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .arg("--state")
            .arg(dir.path().join("state.json"))
            .output()
            .unwrap()
    };
    let endorsed = dir.path().join("cache/endorsed/default/example");
    let first = sync();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout.contains("all 4 objects Ready"), "{stdout}");
    for id in ["111111111111", "333333333333"] {
        assert!(
            endorsed
                .join(format!("5b1d8a30-0c4e-4b5f-8e2a-{id}/image"))
                .exists()
        );
    }
    assert!(
        !endorsed
            .join("5b1d8a30-0c4e-4b5f-8e2a-222222222222")
            .exists()
    );

    std::fs::copy(example.join("site-v2/image.list"), site.join("image.list")).unwrap();
    let second = sync();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("expired (removed-from-list)"), "{stdout}");
    assert!(
        !second.status.success(),
        "the withdrawn image's subscription is not Ready"
    );
    assert!(
        endorsed
            .join("5b1d8a30-0c4e-4b5f-8e2a-111111111111/image")
            .exists()
    );
    assert!(
        !endorsed
            .join("5b1d8a30-0c4e-4b5f-8e2a-333333333333")
            .exists()
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).unwrap()).unwrap();
    let image = &state["images"]["default/example-linux-3"];
    assert_eq!(image["phase"], "Expired");
    assert_eq!(image["history"][0]["reason"], "removed-from-list");
}
