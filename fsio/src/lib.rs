//! # jiandu-fsio: the one way files are made durable
//!
//! Owns durable file writes for every crate of the workspace (the store,
//! the record, the registry); depends on nothing but `std` (and `libc`, on
//! Linux, to start writing back a stream early: [`Writeback`]).
//!
//! A file that must survive a crash is written to a temporary file in the
//! same folder, synced, renamed over its final name, and the folder synced:
//! after a crash the name holds either the old bytes or the new, never a
//! part. Files written as streams (dataset runs, leads snapshots) are new
//! files under fresh names: they are synced with their folder by
//! [`sync_new_file`] before anything points at them.
//!
//! It also owns the one way a file named by someone else (a model's
//! manifest, a bundle to import) is read: [`read_regular`], which refuses a
//! FIFO, a device or a file over a limit before reading it whole, and
//! never waits on a FIFO that has no writer.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` all or nothing, readable by the owner only.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |out| out.write_all(bytes))
}

/// Writes `bytes` to `path` all or nothing, readable by others as the
/// umask allows (mode 0644 before it): files meant to be shared, such as a
/// registry's on a shared folder.
pub fn write_atomic_shared(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_durably(path, 0o644, |out| out.write_all(bytes))
}

/// Writes what `write` writes to `path` all or nothing, readable by the
/// owner only: through a buffered temporary file in the same folder,
/// synced and renamed over `path`. If `write` fails, `path` is untouched
/// and the temporary file removed.
pub fn write_atomic_with<T>(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<T>,
) -> std::io::Result<T> {
    write_durably(path, 0o600, write)
}

fn write_durably<T>(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<T>,
) -> std::io::Result<T> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = parent(path);
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("a file path has a file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> std::io::Result<T> {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, create(&tmp, mode)?);
        let value = write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(value)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let value = written?;
    sync_dir(dir)?;
    Ok(value)
}

/// Creates (or truncates) `path` for writing, mode 0600.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    create(path, 0o600)
}

fn create(path: &Path, mode: u32) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Makes a newly written file durable: its bytes, then its name in its
/// folder.
pub fn sync_new_file(file: &File, path: &Path) -> std::io::Result<()> {
    file.sync_all()?;
    sync_dir(parent(path))
}

/// Starts writing a file written as a stream to disk while it is still
/// being written, so that its final sync ([`sync_new_file`]) waits for the
/// last part only: a 180 MB leads snapshot synced at the end waited about
/// 0.1 s. Advisory (Linux's `sync_file_range` with `SYNC_FILE_RANGE_WRITE`,
/// which neither waits nor makes anything durable); a no-op elsewhere.
#[derive(Debug, Default)]
pub struct Writeback {
    /// Bytes from the start of the file already handed to the kernel.
    started: u64,
}

/// Bytes written before the kernel is asked to start on them.
const WRITEBACK_STEP: u64 = 8 << 20;

impl Writeback {
    /// Says that the first `written` bytes of `file` have been written
    /// (not merely buffered): past a few MiB since the last time, the
    /// kernel is asked to start writing them to disk.
    pub fn written(&mut self, file: &File, written: u64) {
        if written < self.started + WRITEBACK_STEP {
            return;
        }
        start_writeback(file, self.started, written - self.started);
        self.started = written;
    }
}

#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed;
    // the call reads nothing from this process's memory.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// Makes the entries of folder `dir` durable (files created, renamed or
/// removed in it).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_back_early_reads_and_syncs_as_any_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream");
        let mut file = create_private(&path).unwrap();
        let mut writeback = Writeback::default();
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let mut written = 0u64;
        for _ in 0..20 {
            file.write_all(&chunk).unwrap();
            written += chunk.len() as u64;
            writeback.written(&file, written);
        }
        assert_eq!(writeback.started, 16 << 20, "started twice, 8 MiB each");
        sync_new_file(&file, &path).unwrap();
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len(), 20 << 20);
        assert!(back.chunks(1 << 20).all(|c| c == chunk.as_slice()));
    }

    #[test]
    fn write_atomic_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        write_atomic(&path, b"first, longer content").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f.toml"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_write_into_a_missing_folder_fails_and_names_nothing_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("f");
        assert!(write_atomic(&path, b"x").is_err());
        assert!(!path.exists());
    }
}

/// Why [`read_regular`] refused a file.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// A folder, FIFO, socket or device: not a plain file.
    NotRegular,
    /// Longer than the limit: its length when known (a file that grew
    /// while read has none).
    TooLarge(Option<u64>),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular => {
                f.write_str("is not a regular file (a folder, FIFO or device)")
            }
            ReadError::TooLarge(Some(n)) => write!(f, "is {n} bytes long, over the limit"),
            ReadError::TooLarge(None) => f.write_str("grew over the limit while it was read"),
        }
    }
}

/// Reads the regular file at `path` (a link is followed), of at most
/// `limit` bytes, refused before it is read whole. The kind and length
/// are checked before the file is opened, and the file is opened without
/// waiting (`O_NONBLOCK`), so a FIFO put in its place meanwhile is refused
/// too, not waited on; then checked again on the open handle.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let check = |meta: &std::fs::Metadata| {
        if !meta.is_file() {
            Err(ReadError::NotRegular)
        } else if meta.len() > limit {
            Err(ReadError::TooLarge(Some(meta.len())))
        } else {
            Ok(())
        }
    };
    check(&std::fs::metadata(path).map_err(ReadError::Io)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    check(&meta)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(None));
    }
    Ok(bytes)
}

#[cfg(test)]
mod read_tests {
    use super::*;

    #[test]
    fn a_plain_file_within_the_limit_is_read_and_one_over_it_refused_by_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_regular(&path, 5).unwrap(), b"12345");
        assert!(matches!(
            read_regular(&path, 4),
            Err(ReadError::TooLarge(Some(5)))
        ));
        assert!(matches!(
            read_regular(dir.path(), 1 << 20),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_regular(&dir.path().join("missing"), 1),
            Err(ReadError::Io(_))
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_or_a_device_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        // No writer ever opens it: a plain open would block this test.
        assert!(matches!(
            read_regular(&fifo, 1 << 20),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 1 << 20),
            Err(ReadError::NotRegular)
        ));
    }
}
