//! The committed quickstart example (examples/quickstart) works: its signed
//! lists verify against its CA, version 1 caches the two subscribed images
//! and version 2 expires the one it dropped. Run on a copy of the site, with
//! the manifest's URL pointed at the copy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn quickstart_caches_then_expires() {
    let example = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/quickstart"
    ));
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    copy_dir(&example.join("site"), &site);
    let manifest = std::fs::read_to_string(example.join("manifests/quickstart.yaml"))
        .unwrap()
        .replace(
            "file:///tmp/vmlisub-quickstart/site/image.list",
            &format!("file://{}", site.join("image.list").display()),
        );
    std::fs::create_dir_all(dir.path().join("manifests")).unwrap();
    std::fs::write(dir.path().join("manifests/quickstart.yaml"), manifest).unwrap();
    let sync = || {
        Command::new(env!("CARGO_BIN_EXE_vmlisub"))
            .args(["sync", "--once", "--allow-file-urls", "-f"])
            .arg(dir.path().join("manifests"))
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
}
