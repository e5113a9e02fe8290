//! `crds/vmlisub.yaml` must be exactly what `vmlisub crds` prints: the
//! CRDs are generated from the Rust types and never edited by hand.
//! Regenerate with `cargo run -p vmlisub -- crds > crds/vmlisub.yaml`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn committed_crds_match_the_code() {
    let output = Command::new(env!("CARGO_BIN_EXE_vmlisub"))
        .arg("crds")
        .output()
        .expect("run vmlisub crds");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = String::from_utf8(output.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/vmlisub.yaml");
    let committed = std::fs::read_to_string(path).expect("crds/vmlisub.yaml");
    assert!(
        generated == committed,
        "crds/vmlisub.yaml is stale: run `cargo run -p vmlisub -- crds > crds/vmlisub.yaml`"
    );
}

#[test]
fn crds_declare_the_three_kinds_with_status_and_category() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/vmlisub.yaml"))
            .unwrap();
    for kind in ["Endorser", "ImageListSubscription", "ImageSubscription"] {
        assert!(committed.contains(&format!("kind: {kind}\n")), "{kind}");
    }
    assert_eq!(
        committed.matches("status: {}").count(),
        3,
        "status subresource on each"
    );
    assert_eq!(
        committed.matches("- vmli\n").count(),
        3,
        "vmli category on each"
    );
}
