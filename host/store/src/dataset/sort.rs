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
//!
//! Sorting compares 16 bytes at a time of each entry's sort string,
//! `key ++ 0x00 ++ tag (big-endian) ++ value`, which orders as the entries
//! do when no key holds a zero byte: the entries are sorted by their first
//! 16 bytes, held beside their places, and only entries that tie read their
//! next 16 (an index's entries share their values and differ in their
//! primary keys; comparing them whole, entry by entry, was most of the
//! time an ingest spent sorting).

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

/// Bounds of the read buffer of each spilled run while runs are merged.
const MIN_READ_BUFFER: usize = 16 << 10;
const MAX_READ_BUFFER: usize = 256 << 10;

/// Sorts (key, tag, value) entries (in that order of comparison) in at
/// most about `budget` bytes of memory, spilling sorted runs to `dir`.
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
    /// Some key pushed holds a zero byte: sort strings do not order such
    /// entries, which are then compared whole.
    zero_in_key: bool,
}

/// Sorts `items` (over `buf`) in entry order.
fn sort_entries(buf: &[u8], items: &mut [Item], zero_in_key: bool) {
    if zero_in_key {
        items.sort_unstable_by(|a, b| {
            let (x, y) = (entry_at(buf, a.at), entry_at(buf, b.at));
            (x.key, x.tag, x.value).cmp(&(y.key, y.tag, y.value))
        });
    } else {
        sort_items(buf, items);
    }
}

/// One entry, borrowed from a sorter's buffer or a merge's.
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub tag: u64,
    pub value: &'a [u8],
}

/// An entry's place in the buffer, with 16 bytes of its sort string (the
/// first 16 until it is sorted) and how much of the string is left from
/// there.
#[derive(Clone, Copy)]
pub struct Item {
    high: u64,
    low: u64,
    at: u32,
    /// Bytes of the sort string from the window's start on, at most 17
    /// (more than the window holds).
    rest: u8,
}

impl Item {
    /// The item of the entry at `at`, its window `from` bytes into the
    /// entry's sort string.
    fn new(e: &Entry<'_>, at: u32, from: usize) -> Item {
        let tag = e.tag.to_be_bytes();
        let parts: [&[u8]; 4] = [e.key, &[0], &tag, e.value];
        let mut window = [0u8; 16];
        let (mut skip, mut filled) = (from, 0);
        for part in parts {
            if filled == window.len() {
                break;
            }
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            let take = (part.len() - skip).min(window.len() - filled);
            window[filled..filled + take].copy_from_slice(&part[skip..skip + take]);
            filled += take;
            skip = 0;
        }
        let len = e.key.len() + 1 + tag.len() + e.value.len();
        Item {
            high: u64::from_be_bytes(window[..8].try_into().expect("8 bytes")),
            low: u64::from_be_bytes(window[8..].try_into().expect("8 bytes")),
            at,
            rest: len.saturating_sub(from).min(17) as u8,
        }
    }

    fn order(&self) -> (u64, u64, u8) {
        (self.high, self.low, self.rest)
    }
}

/// Sorts `items` (windows at the start of their sort strings) in entry
/// order: by window, then the entries whose windows tie by their next 16
/// bytes, and so on. A window that holds the rest of its string (`rest`
/// up to 16) ends the comparison: equal windows then differ only in zero
/// bytes past the shorter string, which `rest` orders.
fn sort_items(buf: &[u8], items: &mut [Item]) {
    // Ranges of items whose windows at `from` are yet to be sorted.
    let mut pending = vec![(0, items.len(), 0usize)];
    while let Some((start, end, from)) = pending.pop() {
        let group = &mut items[start..end];
        if from > 0 {
            for i in group.iter_mut() {
                *i = Item::new(&entry_at(buf, i.at), i.at, from);
            }
        }
        group.sort_unstable_by_key(Item::order);
        let mut first = 0;
        while first < group.len() {
            let tie = group[first].order();
            // Most groups are one item: a scan finds their ends in one pass
            // (a binary search over the rest, per group, did not).
            let same = group[first + 1..].iter().take_while(|i| i.order() == tie);
            let last = first + 1 + same.count();
            if last - first > 1 && tie.2 > 16 {
                pending.push((start + first, start + last, from + 16));
            }
            first = last;
        }
    }
}

/// Bytes of the entry at `at` in `buf`, its header included.
fn entry_len(buf: &[u8], at: usize) -> usize {
    let klen = u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
    let vlen = u32::from_le_bytes(buf[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
    HEADER + klen + vlen
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
            zero_in_key: false,
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

    /// Whether the buffer holds its budget.
    fn full(&self) -> bool {
        self.buf.len() + self.items.len() * ITEM_BYTES >= self.budget
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
        self.items
            .push(Item::new(&Entry { key, tag, value }, at, 0));
        self.zero_in_key |= memchr::memchr(0, key).is_some();
        self.entries += 1;
        if self.full() {
            self.spill()?;
        }
        Ok(())
    }

    /// Adds every entry of `other`, its tags shifted by `tag_offset`,
    /// leaving `other` empty (its buffers' room kept, to be filled again).
    pub fn append(&mut self, other: &mut Sorter, tag_offset: u64) -> io::Result<()> {
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
            self.zero_in_key |= other.zero_in_key;
            other.buf.clear();
            other.items.clear();
            other.entries = 0;
            other.zero_in_key = false;
            if self.full() {
                self.spill()?;
            }
            return Ok(());
        }
        let other = std::mem::replace(other, Sorter::new(&other.dir, other.budget));
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
        sort_entries(&self.buf, &mut self.items, self.zero_in_key);
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
            let at = i.at as usize;
            out.write_all(&self.buf[at..at + entry_len(&self.buf, at)])?;
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
        self.sort();
        let memory = Gather::new(
            std::mem::take(&mut self.buf),
            std::mem::take(&mut self.items),
        );
        if self.runs.is_empty() {
            return Ok(Merged::Memory(memory));
        }
        // The entries still in memory are merged from there, as one more
        // run, rather than written out and read back.
        let memory = Run::Memory(memory);
        // The runs' read buffers take at most the budget together (a
        // sorter that spilled many runs reads each through a smaller one).
        let read_buffer = (self.budget / self.runs.len()).clamp(MIN_READ_BUFFER, MAX_READ_BUFFER);
        let files = self
            .runs
            .into_iter()
            .map(|file| Run::File(BufReader::with_capacity(read_buffer, file)));
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

/// Bytes of entries [`Gather`] copies at a time.
const GATHER_BYTES: usize = 64 << 10;

/// A sorted buffer's entries in order, copied out a batch at a time: the
/// entries lie scattered over the buffer, and a tight loop copying a batch
/// waits for many of them at once, where reading them one by one between
/// the steps of a merge waited for each in turn.
pub struct Gather {
    buf: Vec<u8>,
    items: Vec<Item>,
    /// The first item not yet copied.
    next: usize,
    /// Entries copied, in order, and where the next one to read starts.
    batch: Vec<u8>,
    read: usize,
}

impl Gather {
    fn new(buf: Vec<u8>, items: Vec<Item>) -> Gather {
        Gather {
            buf,
            items,
            next: 0,
            batch: Vec::new(),
            read: 0,
        }
    }

    fn next(&mut self) -> Option<Entry<'_>> {
        if self.read == self.batch.len() {
            self.refill();
        }
        if self.read == self.batch.len() {
            return None;
        }
        let at = self.read;
        self.read += entry_len(&self.batch, at);
        Some(entry_at(&self.batch, at as u32))
    }

    fn refill(&mut self) {
        self.batch.clear();
        self.read = 0;
        for i in &self.items[self.next..] {
            if self.batch.len() >= GATHER_BYTES {
                break;
            }
            let at = i.at as usize;
            self.batch
                .extend_from_slice(&self.buf[at..at + entry_len(&self.buf, at)]);
            self.next += 1;
        }
    }
}

/// One run being merged: spilled to a file, or the last still in memory.
pub enum Run {
    File(BufReader<File>),
    Memory(Gather),
}

impl Run {
    /// Reads the run's next entry into `head`; `false` at its end.
    fn read_into(&mut self, head: &mut Head) -> io::Result<bool> {
        let input = match self {
            Run::File(input) => input,
            Run::Memory(memory) => {
                let Some(e) = memory.next() else {
                    return Ok(false);
                };
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
    Memory(Gather),
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
            Merged::Memory(memory) => Ok(memory.next()),
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

    /// Entries over a two-letter alphabet with zero bytes, of lengths up
    /// to 40: long shared prefixes, keys that are prefixes of others,
    /// strings that differ only in trailing zeros, equal keys and tags.
    fn tricky_entries(n: u64, zero_in_keys: bool) -> Vec<(Vec<u8>, u64, Vec<u8>)> {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut text = |len: u64, zeros: bool| -> Vec<u8> {
            let alphabet: &[u8] = if zeros { b"\0ab" } else { b"ab" };
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        };
        (0..n)
            .map(|i| {
                let key = text(i % 23 + (i % 3) * 9, zero_in_keys);
                let value = text(i % 41, true);
                (key, i % 3, value)
            })
            .collect()
    }

    #[test]
    fn sort_strings_order_entries_as_their_fields_do() {
        let dir = tempfile::tempdir().unwrap();
        for zero_in_keys in [false, true] {
            let input = tricky_entries(20_000, zero_in_keys);
            let mut expected = input.clone();
            expected.sort();
            for budget in [usize::MAX, 1 << 16] {
                let mut s = Sorter::new(dir.path(), budget);
                for (k, t, v) in &input {
                    s.push(k, *t, v).unwrap();
                }
                assert_eq!(s.zero_in_key, zero_in_keys);
                let got = drain(s.finish().unwrap());
                assert!(
                    got == expected,
                    "zeros in keys {zero_in_keys}, budget {budget}"
                );
            }
        }
    }

    #[test]
    fn index_entries_sharing_their_values_sort_by_primary_key() {
        // An index over a field of few values: every window of the first
        // 16 bytes ties within a value.
        let dir = tempfile::tempdir().unwrap();
        let input: Vec<(Vec<u8>, u64, Vec<u8>)> = (0..10_000u64)
            .map(|i| {
                let value = format!("65{:04}", i % 7).into_bytes();
                let key = format!("91{:04}{:012}", i % 7, (i * 7_919) % 10_007).into_bytes();
                (value, 0, key)
            })
            .collect();
        let mut expected = input.clone();
        expected.sort();
        let mut s = Sorter::new(dir.path(), usize::MAX);
        for (k, t, v) in &input {
            s.push(k, *t, v).unwrap();
        }
        assert_eq!(drain(s.finish().unwrap()), expected);
    }

    #[test]
    fn entries_larger_than_a_gathered_batch_come_out_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let big = |n: u8| vec![n; GATHER_BYTES + 1000 * n as usize];
        let input: Vec<_> = [3u8, 1, 2, 5, 4]
            .iter()
            .map(|&n| (vec![b'k', n], u64::from(n), big(n)))
            .collect();
        let mut expected = input.clone();
        expected.sort();
        // In memory, then with a run spilled and the rest merged from memory.
        for budget in [usize::MAX, 3 * GATHER_BYTES] {
            let mut s = Sorter::new(dir.path(), budget);
            for (k, t, v) in &input {
                s.push(k, *t, v).unwrap();
            }
            assert_eq!(s.spilled() > 0, budget != usize::MAX);
            assert!(drain(s.finish().unwrap()) == expected);
        }
    }

    #[test]
    fn appending_shifts_tags_and_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Sorter::new(dir.path(), 1 << 16);
        let mut b = Sorter::new(dir.path(), usize::MAX);
        a.push(b"k", 5, b"a5").unwrap();
        b.push(b"k", 1, b"b1").unwrap();
        b.push(b"j", 2, b"b2").unwrap();
        a.append(&mut b, 10).unwrap();
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
