//! Block files: the immutable runs of a dataset version, kept beside sled.
//!
//! ```text
//! <store>/data/<dataset>/<version>/<segment>-<run>.blk
//! file  := frame*
//! frame := n: u32 | front_len: u32 | keys_len: u32 | crc_front: u32 | crc_keys: u32 | block
//! ```
//!
//! `block` is a [`super::block`] block; its "front" is the header and the
//! records area, checked by `crc_front`, so a scan reads and checks exactly
//! the bytes a model receives and skips the keys (checked by `crc_keys` when
//! a get or a merge reads them). The end offset of each frame is kept in the
//! version's metadata in sled, which is written only after every file of the
//! version is durable: a version whose metadata exists has all its blocks.
//!
//! Why not in sled: blocks are written once and read in order, and sled
//! 0.34 keeps every value above its blob threshold that a process reads in
//! memory until the process exits (its cache charges a blob by the size of
//! the pointer), so a scan's memory grew with the data. Here a scan reads
//! each block into a buffer of its own and lets it go; point reads go
//! through a [`BlockCache`] of bounded size.

use super::block::Block;
use crate::{Error, Result};
use lru::LruCache;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const FRAME_HEADER: usize = 20;

/// Bytes of blocks kept for point reads (gets and lookups), per store.
pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

/// The folder of one dataset version's files.
pub fn version_dir(data: &Path, dataset: &str, version: u64) -> PathBuf {
    data.join(dataset).join(version.to_string())
}

/// The file of one run (0 = records, 1.. = indexes) of a segment.
pub fn run_path(data: &Path, dataset: &str, version: u64, segment: u32, run: u16) -> PathBuf {
    version_dir(data, dataset, version).join(format!("{segment}-{run}.blk"))
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        message: format!("cannot {what}: {e}"),
    }
}

/// Writes the blocks of one run, in order.
pub struct RunWriter {
    out: BufWriter<File>,
    path: PathBuf,
    ends: Vec<u64>,
    pos: u64,
    /// Writing back to disk what has left the buffer, before the sync.
    writeback: crate::fsio::Writeback,
}

impl RunWriter {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: PathBuf) -> Result<RunWriter> {
        let file = crate::fsio::create_private(&path).map_err(|e| io_error(&path, "create", e))?;
        Ok(RunWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            ends: Vec::new(),
            pos: 0,
            writeback: Default::default(),
        })
    }

    /// Appends one encoded block (from [`super::block::BlockBuilder::finish`]).
    pub fn push(&mut self, block: &[u8]) -> Result<()> {
        let parsed = Block::parse(block)?;
        let front = parsed.front_len();
        let mut header = [0u8; FRAME_HEADER];
        let fields = [
            parsed.len() as u32,
            front as u32,
            (block.len() - front) as u32,
            crc32fast::hash(&block[..front]),
            crc32fast::hash(&block[front..]),
        ];
        for (i, f) in fields.iter().enumerate() {
            header[4 * i..4 * i + 4].copy_from_slice(&f.to_le_bytes());
        }
        self.out
            .write_all(&header)
            .and_then(|_| self.out.write_all(block))
            .map_err(|e| io_error(&self.path, "write", e))?;
        self.pos += (FRAME_HEADER + block.len()) as u64;
        self.ends.push(self.pos);
        let flushed = self.pos - self.out.buffer().len() as u64;
        self.writeback.written(self.out.get_ref(), flushed);
        Ok(())
    }

    /// Makes the file durable; returns the end offset of each frame.
    pub fn finish(self) -> Result<Vec<u64>> {
        let path = self.path;
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_error(&path, "write", e.into_error()))?;
        file.sync_all().map_err(|e| io_error(&path, "sync", e))?;
        Ok(self.ends)
    }
}

/// Makes the entries of folder `dir` durable (new files in it).
pub fn sync_dir(dir: &Path) -> Result<()> {
    crate::fsio::sync_dir(dir).map_err(|e| io_error(dir, "sync", e))
}

/// One run's file, open for reading.
pub struct RunFile {
    file: File,
    path: PathBuf,
    ends: Vec<u64>,
}

struct Frame {
    start: u64,
    n: usize,
    front: usize,
    keys: usize,
    crc_front: u32,
    crc_keys: u32,
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

impl RunFile {
    /// Opens `path`, whose frames end at `ends` (from the version's metadata).
    pub fn open(path: PathBuf, ends: Vec<u64>) -> Result<RunFile> {
        let file = File::open(&path).map_err(|e| io_error(&path, "open", e))?;
        Ok(RunFile { file, path, ends })
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn corrupt(&self, n: usize, why: &str) -> Error {
        Error::Store {
            path: self.path.clone(),
            message: format!("block {n} is corrupt ({why}); re-ingest the dataset"),
        }
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<()> {
        self.file
            .read_exact_at(buf, at)
            .map_err(|e| io_error(&self.path, "read", e))
    }

    fn frame(&self, n: usize) -> Result<Frame> {
        let start = if n == 0 { 0 } else { self.ends[n - 1] };
        let mut h = [0u8; FRAME_HEADER];
        self.read_at(&mut h, start)?;
        let frame = Frame {
            start,
            n: le32(&h, 0) as usize,
            front: le32(&h, 4) as usize,
            keys: le32(&h, 8) as usize,
            crc_front: le32(&h, 12),
            crc_keys: le32(&h, 16),
        };
        let header = 4 + 8 * (frame.n as u64 + 1);
        if start + (FRAME_HEADER + frame.front + frame.keys) as u64 != self.ends[n]
            || (frame.front as u64) < header
        {
            return Err(self.corrupt(n, "its length does not match the version"));
        }
        Ok(frame)
    }

    /// Block `n` whole (records and keys), checked.
    pub fn read_block(&self, n: usize) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_block_into(n, &mut buf)?;
        Ok(buf)
    }

    /// [`RunFile::read_block`] into `buf`, whatever it held: a buffer
    /// reused from block to block is only zeroed where it grows.
    pub fn read_block_into(&self, n: usize, buf: &mut Vec<u8>) -> Result<()> {
        let f = self.frame(n)?;
        buf.resize(f.front + f.keys, 0);
        self.read_at(buf, f.start + FRAME_HEADER as u64)?;
        if crc32fast::hash(&buf[..f.front]) != f.crc_front
            || crc32fast::hash(&buf[f.front..]) != f.crc_keys
        {
            return Err(self.corrupt(n, "checksum mismatch"));
        }
        Block::parse(buf)?;
        Ok(())
    }

    /// The header and records area of block `n` into `buf`, checked: a
    /// block without its keys ([`Block::parse_front`]).
    pub fn read_front_into(&self, n: usize, buf: &mut Vec<u8>) -> Result<()> {
        let f = self.frame(n)?;
        buf.resize(f.front, 0);
        self.read_at(buf, f.start + FRAME_HEADER as u64)?;
        if crc32fast::hash(buf) != f.crc_front {
            return Err(self.corrupt(n, "checksum mismatch"));
        }
        Block::parse_front(buf)?;
        Ok(())
    }

    /// The records area of block `n` and its record offsets (n + 1, from
    /// 0), checked; the keys are not read.
    pub fn read_records(&self, n: usize) -> Result<(Vec<u8>, Vec<u32>)> {
        let mut data = Vec::new();
        let offsets = self.read_records_into(n, &mut data)?;
        Ok((data, offsets))
    }

    /// [`RunFile::read_records`] into `data` (resized to fit; a buffer
    /// reused from block to block is not cleared first).
    pub fn read_records_into(&self, n: usize, data: &mut Vec<u8>) -> Result<Vec<u32>> {
        let f = self.frame(n)?;
        let header_len = 4 + 8 * (f.n + 1);
        let mut header = vec![0u8; header_len];
        data.resize(f.front - header_len, 0);
        let at = f.start + FRAME_HEADER as u64;
        self.read_at(&mut header, at)?;
        self.read_at(data, at + header_len as u64)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(data);
        if crc.finalize() != f.crc_front || le32(&header, 0) as usize != f.n {
            return Err(self.corrupt(n, "checksum mismatch"));
        }
        let offsets: Vec<u32> = (0..=f.n).map(|i| le32(&header, 4 + 4 * i)).collect();
        if offsets[0] != 0
            || offsets.windows(2).any(|w| w[0] > w[1])
            || offsets[f.n] as usize != data.len()
        {
            return Err(self.corrupt(n, "record offsets out of order"));
        }
        Ok(offsets)
    }
}

/// Open run files, by path, shared by the clones of one reader.
#[derive(Default)]
pub struct OpenFiles {
    files: Mutex<HashMap<PathBuf, Arc<RunFile>>>,
}

impl OpenFiles {
    /// The open file at `path`, opening it on first use.
    pub fn get(&self, path: PathBuf, ends: &[u64]) -> Result<Arc<RunFile>> {
        let mut files = self.files.lock().expect("open files lock");
        if let Some(f) = files.get(&path) {
            return Ok(f.clone());
        }
        let f = Arc::new(RunFile::open(path.clone(), ends.to_vec())?);
        files.insert(path, f.clone());
        Ok(f)
    }
}

/// Whole blocks kept for point reads, least recently used evicted first,
/// at most `capacity` bytes (a block larger than that is not kept). The
/// recency order is an [`LruCache`] without a count bound; the bytes are
/// counted here.
pub struct BlockCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
}

struct CacheInner {
    blocks: LruCache<(PathBuf, usize), Arc<Vec<u8>>>,
    bytes: usize,
}

impl BlockCache {
    pub fn new(capacity: usize) -> BlockCache {
        BlockCache {
            capacity,
            inner: Mutex::new(CacheInner {
                blocks: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    /// Block `n` of `file`, from the cache or read (and kept).
    pub fn block(&self, file: &RunFile, n: usize) -> Result<Arc<Vec<u8>>> {
        let key = (file.path.clone(), n);
        if let Some(block) = self
            .inner
            .lock()
            .expect("block cache lock")
            .blocks
            .get(&key)
        {
            return Ok(block.clone());
        }
        let block = Arc::new(file.read_block(n)?);
        if block.len() > self.capacity {
            return Ok(block);
        }
        let mut inner = self.inner.lock().expect("block cache lock");
        if let Some(old) = inner.blocks.put(key, block.clone()) {
            inner.bytes -= old.len();
        }
        inner.bytes += block.len();
        // The new block is the most recent and fits alone: it stays.
        while inner.bytes > self.capacity {
            let Some((_, oldest)) = inner.blocks.pop_lru() else {
                break;
            };
            inner.bytes -= oldest.len();
        }
        Ok(block)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.inner.lock().expect("block cache lock").bytes
    }
}

#[cfg(test)]
mod tests {
    use super::super::block::BlockBuilder;
    use super::*;

    fn block(keys: &[&str]) -> Vec<u8> {
        let mut b = BlockBuilder::new();
        for k in keys {
            b.push(k.as_bytes(), format!("rec-{k}").as_bytes());
        }
        b.finish()
    }

    fn written(dir: &Path) -> (PathBuf, Vec<u64>, Vec<Vec<u8>>) {
        let path = dir.join("0-0.blk");
        let blocks = vec![block(&["a", "b"]), block(&["c"]), block(&["d", "e", "f"])];
        let mut w = RunWriter::create(path.clone()).unwrap();
        for b in &blocks {
            w.push(b).unwrap();
        }
        (path, w.finish().unwrap(), blocks)
    }

    #[test]
    fn blocks_read_back_whole_and_as_records() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ends, blocks) = written(dir.path());
        let f = RunFile::open(path, ends).unwrap();
        assert_eq!(f.len(), 3);
        for (n, b) in blocks.iter().enumerate() {
            assert_eq!(&f.read_block(n).unwrap(), b);
            let parsed = Block::parse(b).unwrap();
            let (data, offsets) = f.read_records(n).unwrap();
            assert_eq!(data, parsed.data());
            assert_eq!(offsets, parsed.offsets());
        }
    }

    #[test]
    fn a_flipped_byte_or_a_short_file_is_named_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ends, _) = written(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        for at in [3usize, 25, 30, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            let f = RunFile::open(path.clone(), ends.clone()).unwrap();
            let whole: Vec<_> = (0..3).map(|n| f.read_block(n)).collect();
            assert!(whole.iter().any(|r| r.is_err()), "byte {at}");
            let err = whole.into_iter().find_map(|r| r.err()).unwrap().to_string();
            assert!(err.contains("0-0.blk"), "{err}");
        }
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let f = RunFile::open(path, ends).unwrap();
        assert!(f.read_records(2).is_err());
    }

    #[test]
    fn cache_keeps_recent_blocks_within_its_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ends, blocks) = written(dir.path());
        let f = RunFile::open(path, ends).unwrap();
        let cap = blocks[0].len() + blocks[1].len();
        let cache = BlockCache::new(cap);
        assert_eq!(*cache.block(&f, 0).unwrap(), blocks[0]);
        assert_eq!(*cache.block(&f, 1).unwrap(), blocks[1]);
        assert_eq!(cache.bytes(), cap);
        cache.block(&f, 0).unwrap();
        assert_eq!(*cache.block(&f, 2).unwrap(), blocks[2]);
        assert!(cache.bytes() <= cap);
        // Block 1 was the least recently used: it went first; block 2 is
        // larger than block 1, so block 0 went too.
        {
            let inner = cache.inner.lock().unwrap();
            let kept: Vec<usize> = inner.blocks.iter().map(|((_, n), _)| *n).collect();
            assert_eq!(kept, [2]);
        }
        assert_eq!(cache.bytes(), blocks[2].len());

        // A block larger than the whole cache is read, not kept.
        let small = BlockCache::new(blocks[2].len() - 1);
        assert_eq!(*small.block(&f, 2).unwrap(), blocks[2]);
        assert_eq!(small.bytes(), 0);
    }
}
