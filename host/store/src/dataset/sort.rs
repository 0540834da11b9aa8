//! An external sort with bounded memory: what lets ingest take a file of
//! any size.
//!
//! Entries (key, tag, value) are packed into one buffer; when the buffer
//! holds its budget, it is sorted by (key, tag) and written out as a run
//! to an unlinked file under the store's `tmp/` (gone when closed, even
//! after a crash). [`Sorter::finish`] then merges the runs with a heap
//! (O(log runs) per entry); a sorter that never spilled is read straight
//! from its buffer. The tag orders entries with equal keys (ingest uses
//! the line an entry came from, so duplicates are reported in file order).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Bytes each entry costs beside its bytes in the buffer.
const ITEM_BYTES: usize = std::mem::size_of::<Item>();

/// Bytes of an entry's header in the buffer and in runs: key length,
/// value length, tag.
const HEADER: usize = 4 + 4 + 8;

/// Sorts (key, tag, value) entries (in that order of comparison) in at most about `budget` bytes of
/// memory, spilling sorted runs to `dir`.
pub struct Sorter {
    dir: PathBuf,
    budget: usize,
    buf: Vec<u8>,
    /// Per entry: the first 16 bytes of its key (big-endian, zero-padded)
    /// and where it starts in `buf`. Sorting these compares most keys
    /// without touching `buf`.
    items: Vec<Item>,
    runs: Vec<File>,
    entries: u64,
}

/// One entry, borrowed from a sorter's buffer or a merge's.
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub tag: u64,
    pub value: &'a [u8],
}

/// An entry's place in the buffer, with its key's first 16 bytes (keys
/// such as credit codes share their first eight: a region).
#[derive(Clone, Copy)]
pub struct Item {
    high: u64,
    low: u64,
    at: u32,
}

impl Item {
    fn new(key: &[u8], at: u32) -> Item {
        let mut p = [0; 16];
        let n = key.len().min(16);
        p[..n].copy_from_slice(&key[..n]);
        Item {
            high: u64::from_be_bytes(p[..8].try_into().expect("8 bytes")),
            low: u64::from_be_bytes(p[8..].try_into().expect("8 bytes")),
            at,
        }
    }
}

fn entry_at(buf: &[u8], at: u32) -> Entry<'_> {
    let at = at as usize;
    let klen = u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
    let vlen = u32::from_le_bytes(buf[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
    let tag = u64::from_le_bytes(buf[at + 8..at + 16].try_into().expect("8 bytes"));
    let key = &buf[at + HEADER..at + HEADER + klen];
    let value = &buf[at + HEADER + klen..at + HEADER + klen + vlen];
    Entry { key, tag, value }
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "an entry of 4 GiB or more cannot be sorted",
    )
}

impl Sorter {
    /// A sorter spilling to `dir` (created if missing) past `budget` bytes.
    pub fn new(dir: &Path, budget: usize) -> Sorter {
        Sorter {
            dir: dir.to_path_buf(),
            budget: budget.max(1 << 16),
            buf: Vec::new(),
            items: Vec::new(),
            runs: Vec::new(),
            entries: 0,
        }
    }

    /// Where runs spill.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Entries pushed so far.
    pub fn len(&self) -> u64 {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// How many runs were written to disk.
    pub fn spilled(&self) -> usize {
        self.runs.len()
    }

    pub fn push(&mut self, key: &[u8], tag: u64, value: &[u8]) -> io::Result<()> {
        let klen = u32::try_from(key.len()).map_err(|_| too_large())?;
        let vlen = u32::try_from(value.len()).map_err(|_| too_large())?;
        if self.buf.len() + HEADER + key.len() + value.len() > u32::MAX as usize {
            self.spill()?;
        }
        let at = self.buf.len() as u32;
        self.buf.extend_from_slice(&klen.to_le_bytes());
        self.buf.extend_from_slice(&vlen.to_le_bytes());
        self.buf.extend_from_slice(&tag.to_le_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        self.items.push(Item::new(key, at));
        self.entries += 1;
        if self.buf.len() + self.items.len() * ITEM_BYTES >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Adds every entry of `other`, its tags shifted by `tag_offset`.
    pub fn append(&mut self, other: Sorter, tag_offset: u64) -> io::Result<()> {
        let fits = self.buf.len() + other.buf.len() <= u32::MAX as usize;
        if other.runs.is_empty() && tag_offset == 0 && fits {
            // Its buffer is copied whole, its entries' places moved along.
            let base = self.buf.len() as u32;
            self.buf.extend_from_slice(&other.buf);
            self.items.extend(other.items.iter().map(|&i| Item {
                at: i.at + base,
                ..i
            }));
            self.entries += other.entries;
            if self.buf.len() + self.items.len() * ITEM_BYTES >= self.budget {
                self.spill()?;
            }
            return Ok(());
        }
        if other.runs.is_empty() {
            for i in &other.items {
                let e = entry_at(&other.buf, i.at);
                self.push(e.key, e.tag + tag_offset, e.value)?;
            }
            return Ok(());
        }
        let mut merged = other.finish()?;
        while let Some(e) = merged.next()? {
            let (key, value) = (e.key.to_vec(), e.value.to_vec());
            self.push(&key, e.tag + tag_offset, &value)?;
        }
        Ok(())
    }

    fn sort(&mut self) {
        let buf = &self.buf;
        self.items.sort_unstable_by(|a, b| {
            (a.high, a.low).cmp(&(b.high, b.low)).then_with(|| {
                let (x, y) = (entry_at(buf, a.at), entry_at(buf, b.at));
                (x.key, x.tag, x.value).cmp(&(y.key, y.tag, y.value))
            })
        });
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        self.sort();
        std::fs::create_dir_all(&self.dir)?;
        let file = tempfile::tempfile_in(&self.dir)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        for i in &self.items {
            let e = entry_at(&self.buf, i.at);
            let at = i.at as usize;
            out.write_all(&self.buf[at..at + HEADER + e.key.len() + e.value.len()])?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        self.runs.push(file);
        self.buf.clear();
        self.items.clear();
        Ok(())
    }

    /// Every entry, in (key, tag) order.
    pub fn finish(mut self) -> io::Result<Merged> {
        if self.runs.is_empty() {
            self.sort();
            return Ok(Merged::Memory {
                buf: self.buf,
                items: self.items,
                next: 0,
            });
        }
        // The entries still in memory are merged from there, as one more
        // run, rather than written out and read back.
        self.sort();
        let memory = Run::Memory {
            buf: std::mem::take(&mut self.buf),
            items: std::mem::take(&mut self.items),
            next: 0,
        };
        let files = self
            .runs
            .into_iter()
            .map(|file| Run::File(BufReader::with_capacity(256 << 10, file)));
        let mut runs = Vec::new();
        let mut heap = BinaryHeap::new();
        for (i, mut run) in files.chain([memory]).enumerate() {
            let mut head = Head {
                key: Vec::new(),
                tag: 0,
                value: Vec::new(),
                run: i,
            };
            if run.read_into(&mut head)? {
                heap.push(head);
            }
            runs.push(run);
        }
        Ok(Merged::Runs {
            runs,
            heap,
            current: None,
        })
    }
}

/// One run being merged: spilled to a file, or the last still in memory.
pub enum Run {
    File(BufReader<File>),
    Memory {
        buf: Vec<u8>,
        items: Vec<Item>,
        next: usize,
    },
}

impl Run {
    /// Reads the run's next entry into `head`; `false` at its end.
    fn read_into(&mut self, head: &mut Head) -> io::Result<bool> {
        let input = match self {
            Run::File(input) => input,
            Run::Memory { buf, items, next } => {
                let Some(item) = items.get(*next) else {
                    return Ok(false);
                };
                *next += 1;
                let e = entry_at(buf, item.at);
                head.tag = e.tag;
                head.key.clear();
                head.key.extend_from_slice(e.key);
                head.value.clear();
                head.value.extend_from_slice(e.value);
                return Ok(true);
            }
        };
        let mut header = [0u8; HEADER];
        match input.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
        let klen = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
        let vlen = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        head.tag = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        head.key.resize(klen, 0);
        input.read_exact(&mut head.key)?;
        head.value.resize(vlen, 0);
        input.read_exact(&mut head.value)?;
        Ok(true)
    }
}

/// A run's next entry in the merge heap (smallest first).
pub struct Head {
    key: Vec<u8>,
    tag: u64,
    value: Vec<u8>,
    run: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (&other.key, other.tag, &other.value, other.run).cmp(&(
            &self.key,
            self.tag,
            &self.value,
            self.run,
        ))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// A sorter's entries in order.
pub enum Merged {
    Memory {
        buf: Vec<u8>,
        items: Vec<Item>,
        next: usize,
    },
    Runs {
        runs: Vec<Run>,
        heap: BinaryHeap<Head>,
        /// The entry returned last: its run moves on at the next call.
        current: Option<Head>,
    },
}

impl Merged {
    /// The next entry, borrowed until the next call.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> io::Result<Option<Entry<'_>>> {
        match self {
            Merged::Memory { buf, items, next } => {
                let Some(item) = items.get(*next) else {
                    return Ok(None);
                };
                *next += 1;
                Ok(Some(entry_at(buf, item.at)))
            }
            Merged::Runs {
                runs,
                heap,
                current,
            } => {
                if let Some(mut head) = current.take() {
                    if runs[head.run].read_into(&mut head)? {
                        heap.push(head);
                    }
                }
                *current = heap.pop();
                Ok(current.as_ref().map(|h| Entry {
                    key: &h.key,
                    tag: h.tag,
                    value: &h.value,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut m: Merged) -> Vec<(Vec<u8>, u64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(e) = m.next().unwrap() {
            out.push((e.key.to_vec(), e.tag, e.value.to_vec()));
        }
        out
    }

    /// Pseudo-random entries with many equal keys and long shared prefixes.
    fn entries(n: u64) -> Vec<(Vec<u8>, u64, Vec<u8>)> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let key = format!("91650000{:06}", x % 5_000).into_bytes();
                let value = vec![(i % 251) as u8; (x % 40) as usize];
                (key, i, value)
            })
            .collect()
    }

    #[test]
    fn spilled_and_in_memory_sorts_give_the_same_order_as_a_full_sort() {
        let input = entries(30_000);
        let mut expected = input.clone();
        expected.sort();
        let dir = tempfile::tempdir().unwrap();
        for budget in [usize::MAX, 1 << 16, 200_000] {
            let mut s = Sorter::new(dir.path(), budget);
            for (k, t, v) in &input {
                s.push(k, *t, v).unwrap();
            }
            let spilled = s.spilled();
            assert_eq!(spilled > 0, budget != usize::MAX, "budget {budget}");
            assert_eq!(drain(s.finish().unwrap()), expected, "budget {budget}");
        }
        // Runs are unlinked: nothing is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn appending_shifts_tags_and_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Sorter::new(dir.path(), 1 << 16);
        let mut b = Sorter::new(dir.path(), usize::MAX);
        a.push(b"k", 5, b"a5").unwrap();
        b.push(b"k", 1, b"b1").unwrap();
        b.push(b"j", 2, b"b2").unwrap();
        a.append(b, 10).unwrap();
        let got = drain(a.finish().unwrap());
        let tags: Vec<u64> = got.iter().map(|e| e.1).collect();
        assert_eq!(tags, [12, 5, 11]);
    }

    #[test]
    fn an_empty_sorter_yields_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sorter::new(dir.path(), 1 << 16);
        assert!(s.is_empty());
        assert!(drain(s.finish().unwrap()).is_empty());
    }
}
