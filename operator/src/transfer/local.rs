//! `file://` sources, with the same limits as HTTP ones.

use std::path::Path;

use tokio::io::AsyncReadExt;

use super::error::TransferError;

pub(crate) fn io_error(
    shown: &str,
    path: &Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> TransferError {
    move |source| TransferError::Io {
        url: shown.to_string(),
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Reads a whole file of at most `max_bytes`. The cap is applied while
/// reading, not only to the size on disk, since the file may be a FIFO or
/// grow meanwhile.
pub(crate) async fn read_capped(
    path: &Path,
    shown: &str,
    max_bytes: u64,
) -> Result<Vec<u8>, TransferError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(io_error(shown, path, "open"))?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .await
        .map_err(io_error(shown, path, "read"))?;
    let seen = bytes.len() as u64;
    if seen > max_bytes {
        return Err(TransferError::TooLarge {
            url: shown.to_string(),
            limit: max_bytes,
            seen,
        });
    }
    Ok(bytes)
}

/// Opens a local source for an image download.
pub(crate) async fn open(path: &Path, shown: &str) -> Result<tokio::fs::File, TransferError> {
    tokio::fs::File::open(path)
        .await
        .map_err(io_error(shown, path, "open"))
}
