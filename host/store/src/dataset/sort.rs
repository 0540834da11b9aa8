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

/// Bytes of an entry's header in the buffer and in runs: key length,
/// value length, tag.
const HEADER: usize = 4 + 4 + 8;

/// Sorts (key, tag, value) entries (in that order of comparison) in at most about `budget` bytes of
/// memory, spilling sorted runs to `dir`.
pub struct Sorter {
    dir: PathBuf,
    budget: usize,
    buf: Vec<u8>,
    /// Per entry: the first 8 bytes of its key (big-endian, zero-padded)
    /// and where it starts in `buf`. Sorting these compares most keys
    /// without touching `buf`.
    items: Vec<(u64, usize)>,
    runs: Vec<File>,
    entries: u64,
}

/// One entry, borrowed from a sorter's buffer or a merge's.
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub tag: u64,
    pub value: &'a [u8],
}

fn prefix(key: &[u8]) -> u64 {
    let mut p = [0; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

fn entry_at(buf: &[u8], at: usize) -> Entry<'_> {
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

    /// Entries pushed so far.
    pub fn len(&self) -> u64 {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Whether runs were written to disk.
    pub fn spilled(&self) -> usize {
        self.runs.len()
    }

    pub fn push(&mut self, key: &[u8], tag: u64, value: &[u8]) -> io::Result<()> {
        let klen = u32::try_from(key.len()).map_err(|_| too_large())?;
        let vlen = u32::try_from(value.len()).map_err(|_| too_large())?;
        let at = self.buf.len();
        self.buf.extend_from_slice(&klen.to_le_bytes());
        self.buf.extend_from_slice(&vlen.to_le_bytes());
        self.buf.extend_from_slice(&tag.to_le_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        self.items.push((prefix(key), at));
        self.entries += 1;
        if self.buf.len() + self.items.len() * 16 >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Adds every entry of `other`, its tags shifted by `tag_offset`.
    pub fn append(&mut self, other: Sorter, tag_offset: u64) -> io::Result<()> {
        if other.runs.is_empty() && tag_offset == 0 {
            // Its buffer is copied whole, its entries' places moved along.
            let base = self.buf.len();
            self.buf.extend_from_slice(&other.buf);
            self.items
                .extend(other.items.iter().map(|&(p, at)| (p, at + base)));
            self.entries += other.entries;
            if self.buf.len() + self.items.len() * 16 >= self.budget {
                self.spill()?;
            }
            return Ok(());
        }
        if other.runs.is_empty() {
            for &(_, at) in &other.items {
                let e = entry_at(&other.buf, at);
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
            a.0.cmp(&b.0).then_with(|| {
                let (x, y) = (entry_at(buf, a.1), entry_at(buf, b.1));
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
        for &(_, at) in &self.items {
            let e = entry_at(&self.buf, at);
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
        self.spill()?;
        self.buf = Vec::new();
        self.items = Vec::new();
        let mut runs = Vec::with_capacity(self.runs.len());
        let mut heap = BinaryHeap::with_capacity(self.runs.len());
        for (i, file) in self.runs.into_iter().enumerate() {
            let mut run = Run {
                input: BufReader::with_capacity(256 << 10, file),
            };
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

/// One run being merged.
pub struct Run {
    input: BufReader<File>,
}

impl Run {
    /// Reads the run's next entry into `head`; `false` at its end.
    fn read_into(&mut self, head: &mut Head) -> io::Result<bool> {
        let mut header = [0u8; HEADER];
        match self.input.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
        let klen = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
        let vlen = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        head.tag = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        head.key.resize(klen, 0);
        self.input.read_exact(&mut head.key)?;
        head.value.resize(vlen, 0);
        self.input.read_exact(&mut head.value)?;
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
        items: Vec<(u64, usize)>,
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
                let Some(&(_, at)) = items.get(*next) else {
                    return Ok(None);
                };
                *next += 1;
                Ok(Some(entry_at(buf, at)))
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
