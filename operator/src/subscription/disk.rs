//! The disk format and virtual size of a verified image on disk: the I/O
//! half of [`crate::disk::inspect`], called by both drivers where they
//! publish `status.artifact`.

use std::io::Read as _;
use std::path::Path;

use crate::api::Artifact;
use crate::disk::{DiskInfo, HEADER_BYTES, inspect};

/// Reads the first [`HEADER_BYTES`] of `path` and inspects them.
pub fn read_disk_info(path: &Path) -> std::io::Result<DiskInfo> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut header = Vec::with_capacity(HEADER_BYTES);
    file.take(HEADER_BYTES as u64).read_to_end(&mut header)?;
    Ok(inspect(&header, size))
}

/// The disk description for `artifact`: carried over from `previous` when
/// that described the same verified digest (the header is read once per
/// version, not on every reconcile), else read from `path`. An unreadable
/// file is logged and left undescribed.
pub fn describe(previous: Option<&Artifact>, artifact: &Artifact, path: &Path) -> Option<DiskInfo> {
    if let Some(previous) = previous
        && previous.digest == artifact.digest
        && !previous.format.is_empty()
    {
        return Some(DiskInfo {
            format: known_format(&previous.format)?,
            virtual_size: previous.virtual_size,
        });
    }
    match read_disk_info(path) {
        Ok(info) => Some(info),
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "cannot read the image header");
            None
        }
    }
}

fn known_format(name: &str) -> Option<crate::disk::DiskFormat> {
    use crate::disk::DiskFormat::*;
    [Raw, Qcow, Qcow2, Vmdk, Vhd, Vhdx, Vdi, Iso, Gzip, Xz, Zstd]
        .into_iter()
        .find(|format| format.as_str() == name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_qcow2_header_from_disk_and_reuses_a_previous_description() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image");
        let mut header = vec![0u8; 1024];
        header[..4].copy_from_slice(b"QFI\xfb");
        header[4..8].copy_from_slice(&3u32.to_be_bytes());
        header[24..32].copy_from_slice(&(3u64 << 30).to_be_bytes());
        std::fs::write(&path, &header).unwrap();
        let info = read_disk_info(&path).unwrap();
        assert_eq!(info.format.as_str(), "qcow2");
        assert_eq!(info.virtual_size, Some(3 << 30));

        let artifact = Artifact {
            digest: "sha512:aa".into(),
            ..Artifact::default()
        };
        let described = describe(None, &artifact, &path).unwrap();
        assert_eq!(described, info);
        // Same digest: taken from the previous status, not re-read (the
        // path no longer exists).
        let previous = Artifact {
            format: "raw".into(),
            virtual_size: Some(5),
            ..artifact.clone()
        };
        let gone = dir.path().join("gone");
        let reused = describe(Some(&previous), &artifact, &gone).unwrap();
        assert_eq!(
            (reused.format.as_str(), reused.virtual_size),
            ("raw", Some(5))
        );
        // Another digest: read again (missing file: undescribed).
        let other = Artifact {
            digest: "sha512:bb".into(),
            ..Artifact::default()
        };
        assert_eq!(describe(Some(&previous), &other, &gone), None);
    }
}
