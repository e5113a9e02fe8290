//! The file-system layer: directory handles with `openat` discipline.
//!
//! Every operation below the cache root goes through a directory file
//! descriptor and a single validated name (`openat`, `renameat`,
//! `unlinkat`, `statat` with `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`). A
//! symbolic link planted anywhere inside the cache therefore cannot redirect
//! a read, a write or a rename: opening it fails (`ELOOP`) and is reported as
//! [`StoreError::SymlinkRefused`]. Only the cache root itself is resolved
//! normally, because the administrator chooses it (it may well be a mount
//! point reached through a link).
//!
//! Paths are still carried along, but only for error messages and for the
//! path-based consumers (the downloader, the artifact server).

use super::error::StoreError;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// [`StoreError::io`] for a raw `errno` from rustix.
fn errno_error(
    op: &'static str,
    path: impl Into<std::path::PathBuf>,
    errno: rustix::io::Errno,
) -> StoreError {
    StoreError::io(op, path, std::io::Error::from(errno))
}

/// Flags for opening a directory without following a final symlink.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// What a name in a directory is (never following symlinks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Kind {
    fn from_file_type(t: FileType) -> Self {
        match t {
            FileType::RegularFile => Self::File,
            FileType::Directory => Self::Dir,
            FileType::Symlink => Self::Symlink,
            _ => Self::Other,
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::File => "regular file",
            Self::Dir => "directory",
            Self::Symlink => "symbolic link",
            Self::Other => "special file",
        }
    }
}

/// `lstat`-like facts about one name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryStat {
    pub kind: Kind,
    pub len: u64,
    pub dev: u64,
    pub ino: u64,
    pub mtime: i64,
}

fn entry_stat(st: &rustix::fs::Stat) -> EntryStat {
    EntryStat {
        kind: Kind::from_file_type(FileType::from_raw_mode(st.st_mode)),
        len: u64::try_from(st.st_size).unwrap_or(0),
        dev: st.st_dev,
        ino: st.st_ino,
        mtime: st.st_mtime,
    }
}

/// `fstat` of an open file, as [`EntryStat`].
pub(crate) fn fstat(file: &File, path: &Path) -> Result<EntryStat, StoreError> {
    rustix::fs::fstat(file)
        .map(|st| entry_stat(&st))
        .map_err(|e| errno_error("stat", path, e))
}

/// One name found while listing a directory.
#[derive(Clone, Debug)]
pub(crate) struct Listed {
    /// The name, when it is UTF-8.
    pub name: Option<String>,
    /// The name, lossily converted, for reports.
    pub display: String,
    pub kind: Kind,
}

/// An open directory inside the cache.
#[derive(Debug)]
pub(crate) struct DirHandle {
    fd: OwnedFd,
    path: PathBuf,
}

impl DirHandle {
    /// Opens (creating if needed, with `mode`) the cache root. The root is
    /// resolved normally (see the module documentation).
    pub(crate) fn open_root(path: &Path, mode: u32) -> Result<Self, StoreError> {
        use std::os::unix::fs::DirBuilderExt as _;
        // Only directories created here get the mode; an existing root is
        // the administrator's business.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
            .map_err(|e| StoreError::io("create directory", path, e))?;
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno_error("open directory", path, e))?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The directory's path (for messages and path-based consumers).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside this directory.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// `lstat` of `name`; `None` when it does not exist.
    pub(crate) fn stat(&self, name: &str) -> Result<Option<EntryStat>, StoreError> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(entry_stat(&st))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(errno_error("stat", self.join(name), e)),
        }
    }

    /// Turns an open failure into the most useful error: a symlink (or other
    /// wrong type) is named as such rather than as `ELOOP`/`ENOTDIR`.
    fn classify_open_error(
        &self,
        name: &str,
        expected: Kind,
        errno: Errno,
        op: &'static str,
    ) -> StoreError {
        if matches!(
            errno,
            Errno::LOOP | Errno::NOTDIR | Errno::ISDIR | Errno::NXIO
        ) && let Ok(Some(st)) = self.stat(name)
        {
            if st.kind == Kind::Symlink {
                return StoreError::SymlinkRefused {
                    path: self.join(name),
                };
            }
            if st.kind != expected {
                return StoreError::UnexpectedFileType {
                    path: self.join(name),
                    expected: expected.describe(),
                    found: st.kind.describe(),
                };
            }
        }
        errno_error(op, self.join(name), errno)
    }

    /// Opens the subdirectory `name`; `None` when it does not exist.
    pub(crate) fn open_dir(&self, name: &str) -> Result<Option<DirHandle>, StoreError> {
        match rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Some(DirHandle {
                fd,
                path: self.join(name),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.classify_open_error(name, Kind::Dir, e, "open directory")),
        }
    }

    /// Opens the subdirectory `name`, failing with `not-found` if absent.
    pub(crate) fn require_dir(
        &self,
        name: &str,
        what: &'static str,
    ) -> Result<DirHandle, StoreError> {
        self.open_dir(name)?.ok_or_else(|| StoreError::NotFound {
            what,
            path: self.join(name),
        })
    }

    /// Opens the subdirectory `name`, creating it with `mode` if absent.
    pub(crate) fn ensure_dir(&self, name: &str, mode: u32) -> Result<DirHandle, StoreError> {
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_bits_truncate(mode)) {
            Ok(()) => self.sync()?,
            Err(Errno::EXIST) => {}
            Err(e) => return Err(errno_error("create directory", self.join(name), e)),
        }
        self.require_dir(name, "directory")
    }

    /// Opens the regular file `name` for reading; `None` when absent.
    pub(crate) fn open_read(&self, name: &str) -> Result<Option<File>, StoreError> {
        self.open_file(name, OFlags::RDONLY, Mode::empty())
    }

    /// Opens (creating with mode 0600 if absent, never truncating) the
    /// regular file `name` for reading and writing.
    pub(crate) fn open_or_create(&self, name: &str) -> Result<File, StoreError> {
        self.open_file(
            name,
            OFlags::RDWR | OFlags::CREATE,
            Mode::from_bits_truncate(0o600),
        )?
        .ok_or_else(|| StoreError::NotFound {
            what: "file",
            path: self.join(name),
        })
    }

    fn open_file(&self, name: &str, flags: OFlags, mode: Mode) -> Result<Option<File>, StoreError> {
        // NONBLOCK: opening a planted FIFO must not hang; it is rejected below.
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = match rustix::fs::openat(&self.fd, name, flags, mode) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.classify_open_error(name, Kind::File, e, "open")),
        };
        let file = File::from(fd);
        let st = fstat(&file, &self.join(name))?;
        if st.kind != Kind::File {
            return Err(StoreError::UnexpectedFileType {
                path: self.join(name),
                expected: Kind::File.describe(),
                found: st.kind.describe(),
            });
        }
        // Regular files ignore O_NONBLOCK for I/O, but clear it anyway so
        // that callers get ordinary blocking semantics.
        rustix::fs::fcntl_setfl(&file, OFlags::empty())
            .map_err(|e| errno_error("fcntl", self.join(name), e))?;
        Ok(Some(file))
    }

    /// Reads a small file completely (records), refusing more than `max`
    /// bytes so that a planted huge file cannot exhaust memory.
    pub(crate) fn read_small(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(file) = self.open_read(name)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io("read", self.join(name), e))?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
            return Err(StoreError::RecordInvalid {
                path: self.join(name),
                detail: format!("larger than {max} bytes"),
            });
        }
        Ok(Some(bytes))
    }

    /// Writes `name` atomically: a temporary file (`.<name>.tmp`, a name no
    /// validated identifier can take) is written, fsynced and renamed over
    /// `name`, then the directory is fsynced. Readers see the old or the new
    /// content, never a mix, even after a crash.
    pub(crate) fn write_atomic(
        &self,
        name: &str,
        bytes: &[u8],
        mode: u32,
    ) -> Result<(), StoreError> {
        let tmp = temp_name(name);
        let tmp_path = self.join(&tmp);
        let fd = rustix::fs::openat(
            &self.fd,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| self.classify_open_error(&tmp, Kind::File, e, "create"))?;
        let mut file = File::from(fd);
        let written = file
            .write_all(bytes)
            .map_err(|e| StoreError::io("write", &tmp_path, e))
            .and_then(|()| {
                file.sync_all()
                    .map_err(|e| StoreError::io("fsync", &tmp_path, e))
            });
        drop(file);
        if let Err(e) = written {
            let _ = self.unlink(&tmp);
            return Err(e);
        }
        if let Err(e) = rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, name) {
            let _ = self.unlink(&tmp);
            return Err(errno_error("rename", self.join(name), e));
        }
        self.sync()
    }

    /// Renames `name` to `to/to_name`, refusing to replace an existing
    /// destination (`RENAME_NOREPLACE` where the file system supports it,
    /// else a check just before a plain rename).
    pub(crate) fn rename_noreplace(
        &self,
        name: &str,
        to: &DirHandle,
        to_name: &str,
    ) -> Result<(), StoreError> {
        match rustix::fs::renameat_with(&self.fd, name, &to.fd, to_name, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Err(StoreError::AlreadyExists {
                path: to.join(to_name),
            }),
            Err(Errno::INVAL) | Err(Errno::NOSYS) | Err(Errno::NOTSUP) => {
                if to.stat(to_name)?.is_some() {
                    return Err(StoreError::AlreadyExists {
                        path: to.join(to_name),
                    });
                }
                rustix::fs::renameat(&self.fd, name, &to.fd, to_name)
                    .map_err(|e| errno_error("rename", self.join(name), e))
            }
            Err(e) => Err(errno_error("rename", self.join(name), e)),
        }
    }

    /// Removes the file (or symlink: `unlinkat` never follows) `name`;
    /// returns whether something was removed.
    pub(crate) fn unlink(&self, name: &str) -> Result<bool, StoreError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(errno_error("remove", self.join(name), e)),
        }
    }

    /// Removes the empty directory `name`; returns whether it was removed.
    pub(crate) fn rmdir(&self, name: &str) -> Result<bool, StoreError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(errno_error("remove directory", self.join(name), e)),
        }
    }

    /// fsyncs the directory, making renames and creations in it durable.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        rustix::fs::fsync(&self.fd).map_err(|e| errno_error("fsync", &self.path, e))
    }

    /// Lists the directory (without `.` and `..`), never following links.
    pub(crate) fn list(&self) -> Result<Vec<Listed>, StoreError> {
        let mut dir = rustix::fs::Dir::read_from(self.fd.as_fd())
            .map_err(|e| errno_error("list", &self.path, e))?;
        let mut out = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| errno_error("list", &self.path, e))?;
            let raw = entry.file_name().to_bytes();
            if raw == b"." || raw == b".." {
                continue;
            }
            let name = std::str::from_utf8(raw).ok().map(str::to_owned);
            let display = String::from_utf8_lossy(raw).into_owned();
            let mut kind = Kind::from_file_type(entry.file_type());
            if entry.file_type() == FileType::Unknown {
                // Some file systems do not report types in directory
                // entries; ask (without following) instead.
                kind = match &name {
                    Some(n) => self.stat(n)?.map_or(Kind::Other, |s| s.kind),
                    None => Kind::Other,
                };
            }
            out.push(Listed {
                name,
                display,
                kind,
            });
        }
        out.sort_by(|a, b| a.display.cmp(&b.display));
        Ok(out)
    }

    /// Bytes available to unprivileged writers on this file system.
    pub(crate) fn available_bytes(&self) -> Result<u64, StoreError> {
        let st =
            rustix::fs::fstatvfs(&self.fd).map_err(|e| errno_error("statvfs", &self.path, e))?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }
}

/// The temporary name used by [`DirHandle::write_atomic`] for `name`. It
/// starts with a dot, which no validated name does, so it can never collide
/// with an entry.
pub(crate) fn temp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Hashes a reader with SHA-512 (ring's assembly, as the downloader) in
/// fixed-size chunks (bounded memory, whatever the image size); returns the
/// digest and the number of bytes. Used for the promotion re-hash and the
/// integrity checks, so they run at the same speed as a download's hash.
pub fn sha512_reader<R: Read>(reader: R) -> std::io::Result<(crate::imagelist::Sha512Hex, u64)> {
    let mut hasher = crate::transfer::Sha512::new();
    let total = hasher.update_from_reader(reader, u64::MAX)?;
    Ok((
        crate::imagelist::Sha512Hex::from_digest(&hasher.finish()),
        total,
    ))
}

/// Replaces `path` with `bytes` so that readers see the old or the new
/// content, never a mix: temp file in the same directory, fsync, rename,
/// fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    if let Err(err) = std::fs::rename(&temp, path) {
        let _ = std::fs::remove_file(&temp);
        return Err(err);
    }
    std::fs::File::open(&dir)?.sync_all()
}
