//! What identifies the content of a file without reading it again.

/// The identity and last-change times of an open file, taken when its
/// bytes were proven (hashed as read back, see [`super::Downloaded`]).
/// Promotion compares it with the file it renames: equal stamps mean the
/// very inode, not written, truncated or otherwise changed since (any
/// write moves mtime, any metadata change ctime), so the digest still
/// holds without hashing the file a second time. A different stamp only
/// costs that second hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub mtime: (i64, u64),
    pub ctime: (i64, u64),
}

impl FileStamp {
    /// The stamp of an open file (`fstat`).
    pub fn of(file: &impl std::os::fd::AsFd) -> std::io::Result<Self> {
        let st = rustix::fs::fstat(file)?;
        Ok(Self::from_stat(&st))
    }

    /// The stamp of a `stat` result.
    pub fn from_stat(st: &rustix::fs::Stat) -> Self {
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
            len: u64::try_from(st.st_size).unwrap_or(0),
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}
