//! The committed quickstart example (examples/quickstart), copied into a
//! test directory with its manifest pointed at the copy.

use std::path::{Path, PathBuf};

/// The example's directory in the repository.
pub fn example() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/quickstart"
    ))
    .to_path_buf()
}

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

/// Copies the example's site into `dir/site` and writes its manifest, with
/// the list URL pointing at the copy, to `dir/manifests/quickstart.yaml`.
/// Returns the manifests directory.
pub fn prepare(dir: &Path) -> PathBuf {
    let site = dir.join("site");
    copy_dir(&example().join("site"), &site);
    let manifest = std::fs::read_to_string(example().join("manifests/quickstart.yaml"))
        .unwrap()
        .replace(
            "file:///tmp/vmlisub-quickstart/site/image.list",
            &format!("file://{}", site.join("image.list").display()),
        );
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("quickstart.yaml"), manifest).unwrap();
    manifests
}
