//! Image downloads: streamed through sha512 into a partial file, capped at
//! `hv:size` while bytes arrive, resumable, verified before success.

use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_RANGE, ETAG, HeaderMap, IF_RANGE, LAST_MODIFIED, RANGE};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::error::TransferError;
use super::local::{self, io_error};
use super::sha512::Sha512;
use super::stamp::FileStamp;
use super::{Target, Transfer, next_chunk};

/// Bytes are handed to the hashing and writing threads in buffers of at
/// least this size: a buffer per small network chunk would cost a thread
/// wake-up per chunk. Chunks this large or larger (hyper hands over a few
/// hundred KiB at a time from a fast link) go as they are, without a copy.
/// With [`QUEUE_DEPTH`] and hyper's bounded read buffer this bounds the
/// memory a download holds.
const WRITE_BUFFER: usize = 256 * 1024;

/// Progress is reported at most once per this many bytes (and at the end),
/// so callers can update a status without throttling on their side.
const PROGRESS_STEP: u64 = 4 << 20;

/// The sidecar is tiny; a larger one is not ours and is ignored.
const SIDECAR_MAX: u64 = 64 * 1024;

/// How far a download has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes in the partial file (resumed part included).
    pub received: u64,
    /// The expected size (`hv:size`).
    pub total: u64,
    /// Bytes that were already in the partial file when this attempt
    /// started (0 when it started from scratch).
    pub resumed_from: u64,
}

/// A download whose size and sha512 match what was asked for. The digest
/// is of the partial file's bytes as read back from it (not of the bytes
/// received), and the file is complete and fsynced; the caller promotes
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// The digest (equal to the expected one).
    pub sha512: [u8; 64],
    /// The size in bytes (equal to the expected one).
    pub size: u64,
    /// Bytes reused from an earlier attempt.
    pub resumed_from: u64,
    /// The partial file as it was when its bytes, read back from it, gave
    /// `sha512`: promotion proves with it that the file is unchanged.
    pub stamp: FileStamp,
}

/// The sidecar that remembers how to resume `partial`: `.<name>.meta` in
/// the same directory. The leading dot keeps it out of the image-identifier
/// namespace (no valid identifier starts with a dot), so it can never be
/// mistaken for the partial of another image. The store removes it together
/// with a partial it discards.
pub fn sidecar_path(partial: &Path) -> PathBuf {
    let name = partial
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    partial.with_file_name(format!(".{name}.meta"))
}

/// What the sidecar records: which image the partial belongs to (so a
/// partial is never resumed into another image) and the server's
/// validator (so `If-Range` makes the server restart us when the file
/// changed).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sidecar {
    /// Credential-free URL the validators came from.
    url: String,
    size: u64,
    /// Expected sha512, hex.
    sha512: String,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
}

impl Sidecar {
    async fn load(path: &Path) -> Option<Self> {
        let file = File::open(path).await.ok()?;
        let mut bytes = Vec::new();
        file.take(SIDECAR_MAX).read_to_end(&mut bytes).await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Written to a temporary name and renamed, so a crash leaves either
    /// the old or the new sidecar, never half of one.
    async fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        tokio::fs::write(&tmp, json).await?;
        tokio::fs::rename(&tmp, path).await
    }

    /// The `If-Range` value: a strong ETag, else Last-Modified. (A weak
    /// ETag must not be used for ranges.)
    fn if_range(&self) -> Option<String> {
        self.etag
            .clone()
            .filter(|e| !e.starts_with("W/"))
            .or_else(|| self.last_modified.clone())
    }
}

/// Takes the partial file for this download: an exclusive `flock`, held
/// as long as a descriptor of this opening is open (the writing, hashing
/// and syncing threads share it), refused at once if another process
/// holds it. Within a process one download per image runs at a time (the
/// subscription core's gate); the lock extends that to every vmlisub
/// process on the same cache (a `vmlisub sync` from cron beside the
/// operator, an old leader still downloading on a shared volume), whose
/// writes would otherwise land in bytes this download has already read
/// back and hashed.
fn lock_partial(file: &File) -> std::io::Result<()> {
    match rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            "another process is downloading into this partial file",
        )),
        Err(errno) => Err(errno.into()),
    }
}

async fn remove_sidecar(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove sidecar"),
    }
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]])
        .map(char::from)
        .collect()
}

/// Parses `Content-Range: bytes <first>-<last>/<total|*>`.
fn parse_content_range(headers: &HeaderMap) -> Option<(u64, u64, Option<u64>)> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?, total))
}

/// What one download is asked to produce.
struct Job<'a, P> {
    partial: &'a Path,
    sidecar: PathBuf,
    shown: &'a str,
    size: u64,
    sha512: &'a [u8; 64],
    progress: &'a P,
}

impl<P: Fn(Progress)> Job<'_, P> {
    fn io(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> TransferError {
        io_error(self.shown, self.partial, action)
    }

    fn too_large(&self, seen: u64) -> TransferError {
        TransferError::TooLarge {
            url: self.shown.to_string(),
            limit: self.size,
            seen,
        }
    }

    fn size_mismatch(&self, actual: u64) -> TransferError {
        TransferError::SizeMismatch {
            url: self.shown.to_string(),
            expected: self.size,
            actual,
        }
    }

    /// An announced total size (Content-Length of a 200, total of a
    /// Content-Range) that is not `hv:size` fails before any byte is read.
    fn check_announced(&self, total: u64) -> Result<(), TransferError> {
        if total > self.size {
            Err(self.too_large(total))
        } else if total < self.size {
            Err(self.size_mismatch(total))
        } else {
            Ok(())
        }
    }

    async fn open_partial(&self) -> Result<File, TransferError> {
        if let Some(dir) = self.partial.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(io_error(
                self.shown,
                dir,
                "create directory",
            ))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.partial)
            .await
            .map_err(self.io("open"))?;
        lock_partial(&file).map_err(self.io("lock"))?;
        Ok(file)
    }

    /// Empties the partial file to start from zero.
    async fn truncate(&self, file: &mut File) -> Result<(), TransferError> {
        file.set_len(0).await.map_err(self.io("truncate"))?;
        file.seek(SeekFrom::Start(0))
            .await
            .map_err(self.io("seek"))?;
        Ok(())
    }

    /// Hashes the first `length` bytes of the partial file: resuming must
    /// not trust bytes written by an earlier process, so they go through
    /// the same hasher as new ones. The file is read and hashed on a
    /// blocking thread (a re-hash of gigabytes would otherwise hold an
    /// async worker for seconds); it comes back positioned at `length`.
    async fn hash_prefix(
        &self,
        file: File,
        length: u64,
        mut hasher: Sha512,
    ) -> Result<(File, Sha512), TransferError> {
        let mut file = file.into_std().await;
        let hashed = tokio::task::spawn_blocking(move || {
            file.seek(SeekFrom::Start(0))?;
            let read = hasher.update_from_reader(&mut file, length)?;
            if read < length {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            Ok((file, hasher))
        })
        .await
        .unwrap_or_else(joined);
        let (file, hasher) = hashed.map_err(self.io("read"))?;
        Ok((File::from_std(file), hasher))
    }

    /// A content failure: the partial holds wrong bytes, so forget how to
    /// resume it (the caller moves it aside).
    async fn fail_content(&self, error: TransferError) -> TransferError {
        remove_sidecar(&self.sidecar).await;
        error
    }
}

/// Streams bytes into the partial file and hashes what the file then
/// holds, refusing to go past the expected size.
///
/// Hashing is the bottleneck (sha512 runs at 0.7-1 GiB/s on one core,
/// below what loopback or a fast link delivers), so the three jobs run on
/// different threads: the caller's task receives bytes, passes chunks of
/// [`WRITE_BUFFER`] bytes or more on as they are and gathers smaller ones
/// into [`WRITE_BUFFER`]-sized buffers; a writing thread writes them to the
/// partial file and tells a hashing thread how far the file is written; the
/// hashing thread reads that part back (from the page cache) and hashes it.
///
/// Hashing the bytes read back rather than the bytes received is what
/// makes the digest a proof of the file: a file that another writer
/// changed under us (a second process on the same cache, a truncation)
/// fails here, so promotion need not hash it a second time (it checks with
/// [`FileStamp`] that the file is still the one hashed). The read back
/// costs one copy from the page cache, the same as `openssl dgst` of a
/// file, and no network buffer outlives its write.
///
/// Both queues are bounded ([`QUEUE_DEPTH`]): the hasher is at most that
/// many buffers behind the writer, so what it reads is still in the page
/// cache, and when the disk or the hasher falls behind, the network is no
/// longer read. (Measured on 2 cores, docs/benchmarks.md.)
struct Sink<'j, 'a, P> {
    job: &'j Job<'a, P>,
    /// Bytes not yet handed to the threads.
    pending: BytesMut,
    /// `None` once shut down (after a write error).
    pipeline: Option<Pipeline>,
    written: u64,
    resumed_from: u64,
    next_report: u64,
}

/// Buffers waiting for each thread, at most.
const QUEUE_DEPTH: usize = 8;

/// Bytes the hashing thread reads back at a time.
const READ_BACK: usize = 1 << 20;

/// Every this many bytes written, a syncing thread is asked to fdatasync
/// the file: the disk then works while the download goes on, instead of
/// all at once in the final fsync (0.4 s of a 1 GiB loopback download in
/// `operator/benches/download.sh`, more on slower disks). It runs beside
/// the writer, so a slow disk does not stop the network in the meantime.
const SYNC_STEP: u64 = 64 << 20;

/// The writing, hashing and syncing threads.
struct Pipeline {
    to_writer: mpsc::Sender<Bytes>,
    hasher: JoinHandle<std::io::Result<Sha512>>,
    writer: JoinHandle<std::io::Result<std::fs::File>>,
    /// `None` if the descriptor could not be duplicated (then only the
    /// final fsync writes the file out).
    syncer: Option<JoinHandle<std::io::Result<()>>>,
}

/// The syncing thread: fdatasync on each request. Its descriptor shares
/// the writer's open file description, so a writeback error it sees is
/// not reported again to the final fsync: it is returned, and
/// [`Pipeline::close`] fails with it.
fn start_syncer(
    file: &std::fs::File,
) -> Option<(mpsc::Sender<()>, JoinHandle<std::io::Result<()>>)> {
    let file = file.try_clone().ok()?;
    // One pending request is enough: a sync covers everything before it.
    let (requests, mut queue) = mpsc::channel::<()>(1);
    let syncer = tokio::task::spawn_blocking(move || {
        while queue.blocking_recv().is_some() {
            file.sync_data()?;
        }
        Ok(())
    });
    Some((requests, syncer))
}

/// A thread that panicked, as an I/O error.
fn joined<T>(error: tokio::task::JoinError) -> std::io::Result<T> {
    Err(std::io::Error::other(error))
}

/// The hashing thread's loop: for each offset the writer reports, reads
/// the file from where it got to up to that offset and hashes it. Ends
/// when the writer is done (the queue closes) or on a read error; a file
/// shorter than what was written (truncated by someone else) is an error.
fn hash_written(
    file: &std::fs::File,
    mut position: u64,
    mut hasher: Sha512,
    written: &mut mpsc::Receiver<u64>,
) -> std::io::Result<Sha512> {
    use std::os::unix::fs::FileExt as _;
    let mut buffer = vec![0u8; READ_BACK];
    while let Some(end) = written.blocking_recv() {
        while position < end {
            let want = usize::try_from(end - position).map_or(READ_BACK, |n| n.min(READ_BACK));
            let slice = buffer.get_mut(..want).unwrap_or_default();
            let n = match file.read_at(slice, position) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(buffer.get(..n).unwrap_or_default());
            position += n as u64;
        }
    }
    Ok(hasher)
}

impl Pipeline {
    /// Starts the threads on `file`, positioned at `position` where new
    /// bytes go, with `hasher` holding the digest of the bytes before.
    fn start(file: std::fs::File, position: u64, hasher: Sha512) -> std::io::Result<Self> {
        let reader = file.try_clone()?;
        let (to_writer, mut write_queue) = mpsc::channel::<Bytes>(QUEUE_DEPTH);
        let (to_hasher, mut hash_queue) = mpsc::channel::<u64>(QUEUE_DEPTH);
        // On an error the thread ends and drops its queue, so the writer
        // never blocks on a queue nobody reads.
        let hasher = tokio::task::spawn_blocking(move || {
            hash_written(&reader, position, hasher, &mut hash_queue)
        });
        let (sync_requests, syncer) = start_syncer(&file).unzip();
        let writer = tokio::task::spawn_blocking(move || {
            let mut file = file;
            let mut end = position;
            let mut unsynced = 0u64;
            // An error ends the thread and drops the queue, which the
            // sender notices at its next buffer.
            while let Some(buffer) = write_queue.blocking_recv() {
                file.write_all(&buffer)?;
                end += buffer.len() as u64;
                if to_hasher.blocking_send(end).is_err() {
                    return Err(std::io::Error::other("the hashing thread stopped"));
                }
                unsynced += buffer.len() as u64;
                if unsynced >= SYNC_STEP {
                    if let Some(requests) = &sync_requests {
                        // Full: a sync is running and another is queued.
                        // Closed: it failed, and `close` reports why.
                        let _ = requests.try_send(());
                    }
                    unsynced = 0;
                }
            }
            Ok(file)
        });
        Ok(Self {
            to_writer,
            hasher,
            writer,
            syncer,
        })
    }

    /// Hands a buffer to the writer; `false` if a thread has stopped.
    async fn send(&self, buffer: Bytes) -> bool {
        self.to_writer.send(buffer).await.is_ok()
    }

    /// Closes the queue and waits until the threads have consumed it: every
    /// byte sent is then in the file (not yet fsynced) and read back into
    /// the hasher. The file is an error if writing, hashing or an
    /// intermediate sync failed.
    async fn close(self) -> (std::io::Result<std::fs::File>, Option<Sha512>) {
        let Self {
            to_writer,
            hasher,
            writer,
            syncer,
        } = self;
        drop(to_writer);
        let mut file = writer.await.unwrap_or_else(joined);
        // The writer has dropped the sync requests and the hashing queue:
        // both threads end after the work in progress.
        if let Some(syncer) = syncer
            && let Err(error) = syncer.await.unwrap_or_else(joined)
            && file.is_ok()
        {
            file = Err(error);
        }
        let hasher = match hasher.await.unwrap_or_else(joined) {
            Ok(hasher) => Some(hasher),
            Err(error) => {
                // The hashing thread's error is the cause; the writer only
                // saw that thread stop.
                file = Err(error);
                None
            }
        };
        (file, hasher)
    }
}

impl<'j, 'a, P: Fn(Progress)> Sink<'j, 'a, P> {
    /// Starts the threads on `file`, positioned where new bytes go, with
    /// `hasher` holding the digest of the `resumed_from` bytes before.
    async fn new(
        job: &'j Job<'a, P>,
        file: File,
        hasher: Sha512,
        resumed_from: u64,
    ) -> Result<Self, TransferError> {
        let file = file.into_std().await;
        let pipeline = Pipeline::start(file, resumed_from, hasher).map_err(job.io("open"))?;
        let sink = Self {
            job,
            pending: BytesMut::with_capacity(WRITE_BUFFER),
            pipeline: Some(pipeline),
            written: resumed_from,
            resumed_from,
            next_report: resumed_from + PROGRESS_STEP,
        };
        sink.report();
        Ok(sink)
    }

    fn report(&self) {
        (self.job.progress)(Progress {
            received: self.written,
            total: self.job.size,
            resumed_from: self.resumed_from,
        });
    }

    /// Accepts `data`. On an error the threads have been stopped and
    /// joined: nothing writes to the partial file any more.
    ///
    /// A chunk of at least [`WRITE_BUFFER`] bytes (hyper's chunks from a
    /// fast link are a few hundred KiB) goes to the threads as it is, not
    /// copied; smaller ones are gathered into a buffer first.
    async fn push(&mut self, data: Bytes) -> Result<(), TransferError> {
        let seen = self.written + data.len() as u64;
        if seen > self.job.size {
            // Stop here: the rest of the body is never read.
            self.pending.clear();
            let _ = self.shut_down().await;
            return Err(self.job.too_large(seen));
        }
        self.written = seen;
        if data.len() >= WRITE_BUFFER {
            self.hand_over().await?;
            self.send(data).await?;
        } else {
            self.pending.extend_from_slice(&data);
            if self.pending.len() >= WRITE_BUFFER {
                self.hand_over().await?;
            }
        }
        if seen >= self.next_report {
            self.report();
            self.next_report = seen + PROGRESS_STEP;
        }
        Ok(())
    }

    /// Sends the pending bytes to the threads.
    async fn hand_over(&mut self) -> Result<(), TransferError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let buffer =
            std::mem::replace(&mut self.pending, BytesMut::with_capacity(WRITE_BUFFER)).freeze();
        self.send(buffer).await
    }

    /// Sends `buffer` to the threads.
    async fn send(&mut self, buffer: Bytes) -> Result<(), TransferError> {
        let sent = match &self.pipeline {
            Some(pipeline) => pipeline.send(buffer).await,
            None => false,
        };
        if sent {
            return Ok(());
        }
        // A thread stopped: the writer, on an I/O error, which is the one
        // to report.
        let error = match self.shut_down().await {
            (Err(error), _) => error,
            (Ok(_), _) => std::io::Error::other("the hashing thread stopped"),
        };
        Err(self.job.io("write")(error))
    }

    /// Stops the threads after what was sent; `Err` if the writer failed
    /// (or was already shut down).
    async fn shut_down(&mut self) -> (std::io::Result<std::fs::File>, Option<Sha512>) {
        match self.pipeline.take() {
            Some(pipeline) => pipeline.close().await,
            None => (
                Err(std::io::Error::other(
                    "the download pipeline already stopped",
                )),
                None,
            ),
        }
    }

    /// Keeps what was received so far (for resuming) after a failure.
    async fn flush_after_failure(mut self) {
        let handed = self.hand_over().await;
        let (file, _) = self.shut_down().await;
        if let Err(e) = handed
            .map_err(|e| e.to_string())
            .and(file.map_err(|e| e.to_string()))
        {
            tracing::warn!(path = %self.job.partial.display(), error = %e, "cannot flush partial download");
        }
    }

    /// Writes out and fsyncs, then proves size and digest.
    async fn finish(mut self) -> Result<Downloaded, TransferError> {
        self.hand_over().await?;
        let (file, hasher) = self.shut_down().await;
        let file = File::from_std(file.map_err(self.job.io("write"))?);
        let hasher = hasher.ok_or_else(|| {
            self.job.io("hash")(std::io::Error::other("the hashing thread failed"))
        })?;
        file.sync_all().await.map_err(self.job.io("sync"))?;
        let stamp = FileStamp::of(&file).map_err(self.job.io("stat"))?;
        self.report();
        if self.written != self.job.size {
            return Err(self
                .job
                .fail_content(self.job.size_mismatch(self.written))
                .await);
        }
        let digest = hasher.finish();
        if &digest != self.job.sha512 {
            let error = TransferError::ChecksumMismatch {
                url: self.job.shown.to_string(),
                expected: hex(self.job.sha512),
                actual: hex(&digest),
            };
            return Err(self.job.fail_content(error).await);
        }
        remove_sidecar(&self.job.sidecar).await;
        Ok(Downloaded {
            sha512: digest,
            size: self.written,
            resumed_from: self.resumed_from,
            stamp,
        })
    }
}

impl Transfer {
    /// Downloads an image into `partial_path`, proving it by size and
    /// sha512; success means the file is complete, correct and fsynced.
    ///
    /// * Waits for a permit of the [`DownloadLimiter`](super::DownloadLimiter).
    /// * Streams to disk while hashing; memory stays bounded whatever the
    ///   image size. More bytes than `expected_size` abort the transfer at
    ///   once (`too-large`); an announced size that differs fails before
    ///   the body is read.
    /// * Resumes: an existing partial file is re-hashed, then the rest is
    ///   requested with `Range: bytes=N-` and `If-Range` (validator from the
    ///   sidecar [`sidecar_path`]). A server that answers 200 (no range
    ///   support, or the file changed) restarts the download from zero; a
    ///   416 also restarts it once. A partial that already has the full
    ///   size is verified locally without contacting the server, and
    ///   downloaded afresh if it does not verify.
    /// * On `size-mismatch`, `checksum-mismatch` or `too-large` the partial
    ///   file is left for the caller to move aside (its sidecar is removed
    ///   so it will not be resumed). On interruptions (`truncated`,
    ///   `timeout`, ...) it is kept for the next attempt.
    ///
    /// `progress` is called when the body starts, every few MiB and at the
    /// end. The caller must not run two downloads into the same partial
    /// path at once.
    pub async fn download(
        &self,
        url: &str,
        partial_path: &Path,
        expected_size: u64,
        expected_sha512: &[u8; 64],
        progress: impl Fn(Progress),
    ) -> Result<Downloaded, TransferError> {
        let target = self.target(url)?;
        let _permit =
            self.limiter
                .semaphore
                .acquire()
                .await
                .map_err(|_| TransferError::Config {
                    detail: "download limiter closed".to_string(),
                })?;
        let started = std::time::Instant::now();
        let (result, shown) = match target {
            Target::File { path, shown } => {
                let job = Job {
                    partial: partial_path,
                    sidecar: sidecar_path(partial_path),
                    shown: &shown,
                    size: expected_size,
                    sha512: expected_sha512,
                    progress: &progress,
                };
                (self.download_file(&job, &path).await, shown.clone())
            }
            Target::Http {
                url,
                credentials,
                shown,
            } => {
                let job = Job {
                    partial: partial_path,
                    sidecar: sidecar_path(partial_path),
                    shown: &shown,
                    size: expected_size,
                    sha512: expected_sha512,
                    progress: &progress,
                };
                let result = self.download_http(&job, &url, credentials.as_ref()).await;
                (result, shown.clone())
            }
        };
        match &result {
            Ok(done) => tracing::info!(
                url = %shown,
                size = done.size,
                resumed_from = done.resumed_from,
                seconds = started.elapsed().as_secs_f64(),
                "image downloaded and verified"
            ),
            // The caller reports failures (event, condition); keep the
            // detail for debugging only.
            Err(error) => tracing::debug!(url = %shown, %error, "image download failed"),
        }
        result
    }

    async fn download_file<P: Fn(Progress)>(
        &self,
        job: &Job<'_, P>,
        source: &Path,
    ) -> Result<Downloaded, TransferError> {
        let mut input = local::open(source, job.shown).await?;
        // Local copies are cheap: always start from zero.
        remove_sidecar(&job.sidecar).await;
        let mut file = job.open_partial().await?;
        job.truncate(&mut file).await?;
        let mut sink = Sink::new(job, file, Sha512::new(), 0).await?;
        let mut buffer = vec![0u8; WRITE_BUFFER];
        loop {
            let n = input
                .read(&mut buffer)
                .await
                .map_err(io_error(job.shown, source, "read"))?;
            if n == 0 {
                break;
            }
            if let Err(error) = sink.push(Bytes::copy_from_slice(&buffer[..n])).await {
                return Err(job.fail_content(error).await);
            }
        }
        sink.finish().await
    }

    async fn download_http<P: Fn(Progress)>(
        &self,
        job: &Job<'_, P>,
        url: &Url,
        credentials: Option<&(String, String)>,
    ) -> Result<Downloaded, TransferError> {
        let deadline = self.settings.download_timeout.map(|d| Instant::now() + d);
        let expected_hex = hex(job.sha512);
        let mut file = job.open_partial().await?;
        let mut have = file.metadata().await.map_err(job.io("stat"))?.len();
        let sidecar = Sidecar::load(&job.sidecar)
            .await
            .filter(|s| s.size == job.size && s.sha512 == expected_hex);
        let mut hasher = Sha512::new();

        // A partial of full size is checked whatever its sidecar says (the
        // digest decides); a shorter one only resumes if the sidecar proves
        // it belongs to this image.
        let full = have == job.size && have > 0;
        if have > job.size || (have > 0 && !full && sidecar.is_none()) {
            tracing::info!(url = %job.shown, bytes = have, "discarding a partial file of another download");
            job.truncate(&mut file).await?;
            have = 0;
        }
        if have > 0 {
            (file, hasher) = job.hash_prefix(file, have, hasher).await?;
        }
        if full {
            let digest = hasher.clone().finish();
            if &digest == job.sha512 {
                tracing::debug!(url = %job.shown, "partial file already complete");
                return Sink::new(job, file, hasher, have).await?.finish().await;
            }
            tracing::info!(url = %job.shown, "complete partial file does not verify, downloading again");
            job.truncate(&mut file).await?;
            have = 0;
            hasher = Sha512::new();
        }

        let mut validator = sidecar
            .as_ref()
            .filter(|s| have > 0 && s.url == job.shown)
            .and_then(Sidecar::if_range);
        let mut restarted = false;
        let mut response = loop {
            let mut request = self.get(url, credentials);
            if have > 0 {
                request = request.header(RANGE, format!("bytes={have}-"));
                if let Some(validator) = &validator {
                    request = request.header(IF_RANGE, validator);
                }
            }
            tracing::debug!(url = %job.shown, from = have, "requesting image");
            let response = self.send(request, job.shown, deadline).await?;
            let status = response.status();
            match status {
                StatusCode::OK => {
                    if have > 0 {
                        tracing::info!(url = %job.shown, bytes = have, "server sent the whole image (no range support or file changed): restarting from zero");
                        job.truncate(&mut file).await?;
                        have = 0;
                        hasher = Sha512::new();
                    }
                    if let Some(length) = response.content_length() {
                        job.check_announced(length)?;
                    }
                    break response;
                }
                StatusCode::PARTIAL_CONTENT if have > 0 => {
                    let Some((first, _last, total)) = parse_content_range(response.headers())
                    else {
                        return Err(TransferError::Protocol {
                            url: job.shown.to_string(),
                            detail: "206 response without a valid Content-Range".to_string(),
                        });
                    };
                    if first != have {
                        return Err(TransferError::Protocol {
                            url: job.shown.to_string(),
                            detail: format!("asked for bytes from {have}, got from {first}"),
                        });
                    }
                    if let Some(total) = total {
                        job.check_announced(total)?;
                    }
                    if let Some(length) = response.content_length()
                        && have + length > job.size
                    {
                        return Err(job.too_large(have + length));
                    }
                    tracing::info!(url = %job.shown, from = have, "resuming download");
                    break response;
                }
                StatusCode::RANGE_NOT_SATISFIABLE if have > 0 && !restarted => {
                    tracing::info!(url = %job.shown, bytes = have, "range not satisfiable: restarting from zero");
                    job.truncate(&mut file).await?;
                    have = 0;
                    hasher = Sha512::new();
                    validator = None;
                    restarted = true;
                }
                _ => {
                    return Err(TransferError::HttpStatus {
                        url: job.shown.to_string(),
                        status: status.as_u16(),
                    });
                }
            }
        };

        // Remember the validator before the first byte, so that an
        // interruption at any point can be resumed.
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let mut record = Sidecar {
            url: job.shown.to_string(),
            size: job.size,
            sha512: expected_hex,
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        if have > 0
            && record.etag.is_none()
            && record.last_modified.is_none()
            && let Some(old) = &sidecar
        {
            record.etag.clone_from(&old.etag);
            record.last_modified.clone_from(&old.last_modified);
        }
        if let Err(e) = record.save(&job.sidecar).await {
            tracing::warn!(path = %job.sidecar.display(), error = %e, "cannot write download sidecar: an interruption will restart from zero");
        }

        file.seek(SeekFrom::Start(have))
            .await
            .map_err(job.io("seek"))?;
        let mut sink = Sink::new(job, file, hasher, have).await?;
        loop {
            let chunk = next_chunk(
                &mut response,
                self.settings.idle_timeout,
                deadline,
                job.shown,
                sink.written - have,
            )
            .await;
            match chunk {
                Ok(Some(chunk)) => {
                    if let Err(error) = sink.push(chunk).await {
                        return Err(match error {
                            TransferError::TooLarge { .. } => job.fail_content(error).await,
                            other => other,
                        });
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    sink.flush_after_failure().await;
                    return Err(error);
                }
            }
        }
        drop(response);
        sink.finish().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn content_range_parsing() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 100-199/200"));
        assert_eq!(parse_content_range(&headers), Some((100, 199, Some(200))));
        headers.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 5-9/*"));
        assert_eq!(parse_content_range(&headers), Some((5, 9, None)));
        headers.insert(CONTENT_RANGE, HeaderValue::from_static("bytes */200"));
        assert_eq!(parse_content_range(&headers), None);
    }

    #[test]
    fn sidecar_next_to_partial() {
        assert_eq!(
            sidecar_path(Path::new("/c/partial/img")),
            PathBuf::from("/c/partial/.img.meta")
        );
    }

    /// Feeds `ends` to [`hash_written`] as the writer would.
    fn hash_back(file: &std::fs::File, ends: &[u64]) -> std::io::Result<[u8; 64]> {
        let (to_hasher, mut queue) = mpsc::channel(ends.len().max(1));
        for end in ends {
            to_hasher.try_send(*end).unwrap();
        }
        drop(to_hasher);
        hash_written(file, 0, Sha512::new(), &mut queue).map(Sha512::finish)
    }

    #[test]
    fn the_digest_is_of_the_bytes_read_back_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partial");
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // Whatever the steps the writer reports, the file's bytes are hashed.
        let digest = hash_back(&file, &[1, 1, 700_000, 2_999_999, 3_000_000]).unwrap();
        assert_eq!(digest, Sha512::digest(&content));
        // A file shorter than what was written (truncated by someone else)
        // is an error, not a digest of less.
        let err = hash_back(&file, &[3_000_001]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_partial_file_is_locked_for_one_opening_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partial");
        std::fs::write(&path, b"x").unwrap();
        let first = File::open(&path).await.unwrap();
        let second = File::open(&path).await.unwrap();
        lock_partial(&first).unwrap();
        let err = lock_partial(&second).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        drop(first);
        lock_partial(&second).unwrap();
    }

    #[test]
    fn hex_digits() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }

    #[test]
    fn if_range_prefers_strong_etag() {
        let mut s = Sidecar {
            url: String::new(),
            size: 1,
            sha512: String::new(),
            etag: Some("W/\"x\"".into()),
            last_modified: Some("Tue, 01 Jan 2030 00:00:00 GMT".into()),
        };
        assert_eq!(
            s.if_range().as_deref(),
            Some("Tue, 01 Jan 2030 00:00:00 GMT")
        );
        s.etag = Some("\"x\"".into());
        assert_eq!(s.if_range().as_deref(), Some("\"x\""));
    }
}
