//! An external sort with bounded memory: what lets ingest take a file of
//! any size.
//!
//! Entries (key, tag, value) are packed into one buffer; when the buffer
//! holds half its budget, it is sorted by (key, tag) and written out as a
//! run to an unlinked file under the store's `tmp/` (gone when closed,
//! even after a crash), on a thread of its own while a second buffer
//! fills (the two hold at most the budget together). [`Sorter::finish`]
//! then merges the runs with a tree of losers ([`Merged`], O(log runs) per
//! entry, each entry compared where it was read); a sorter that never
//! spilled is read straight from its buffer. The tag orders entries with equal keys (ingest uses
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
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
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
    /// Where each sorted piece of `items` ends: the items past the last
    /// are in the order they were pushed. A sorter filled from others
    /// that sorted their own entries ([`Sorter::sort_pieces`], each on
    /// the thread that gathered them) merges their pieces when it spills
    /// or finishes, rather than sorting them all again.
    pieces: Vec<usize>,
    runs: Vec<File>,
    /// The run being written on a thread of its own while entries go on
    /// filling the buffer: at most one, so that the two buffers hold at
    /// most the budget together.
    writing: Option<std::thread::JoinHandle<io::Result<Written>>>,
    /// The buffers of the last run written, kept to be filled again.
    spare: Option<(Vec<u8>, Vec<Item>, Vec<usize>)>,
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
/// first 16 but while it is being sorted) and how much of the string is
/// left from there.
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
        let len = e.key.len() + 1 + 8 + e.value.len();
        if let Some(window) = e.key.get(from..from + 16) {
            // Within the key, as the first window of most entries is.
            return Item {
                high: u64::from_be_bytes(window[..8].try_into().expect("8 bytes")),
                low: u64::from_be_bytes(window[8..].try_into().expect("8 bytes")),
                at,
                rest: (len - from).min(17) as u8,
            };
        }
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
///
/// The items' windows are at the start of their sort strings again once
/// sorted (pieces sorted apart are merged by them).
fn sort_items(buf: &[u8], items: &mut [Item]) {
    // Ranges of items whose windows at `from` are yet to be sorted.
    let mut pending = vec![(0, items.len(), 0usize)];
    // The ranges whose windows moved on.
    let mut moved = Vec::new();
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
                if from == 0 {
                    moved.push(start + first..start + last);
                }
            }
            first = last;
        }
    }
    for range in moved {
        for i in &mut items[range] {
            *i = Item::new(&entry_at(buf, i.at), i.at, 0);
        }
    }
}

/// Whether item `x` (over `buf`) comes before item `y`, their windows at
/// the start of their sort strings; `None` when their entries are equal.
fn item_less(buf: &[u8], x: &Item, y: &Item, zero_in_key: bool) -> Option<bool> {
    let whole = || {
        let (x, y) = (entry_at(buf, x.at), entry_at(buf, y.at));
        (x.key, x.tag, x.value).cmp(&(y.key, y.tag, y.value))
    };
    let order = match x.order().cmp(&y.order()) {
        _ if zero_in_key => whole(),
        Ordering::Equal if x.rest > 16 => whole(),
        order => order,
    };
    match order {
        Ordering::Less => Some(true),
        Ordering::Greater => Some(false),
        Ordering::Equal => None,
    }
}

/// A tree of losers over `k` sources, each with a current item (or none,
/// after every item): it finds the smallest in O(log k) comparisons after
/// its source moves on.
///
/// The sources' current items play off in pairs: each inner node keeps
/// the loser of the match below it, the winner goes up, and the overall
/// winner is the smallest. When its source moves on, only the matches on
/// the way from its leaf to the root are played again.
struct Losers {
    /// `tree[0]`: the winning source; `tree[n]` for `n` in `1..k`: the
    /// loser at inner node `n`, whose children are nodes `2n` and `2n+1`,
    /// source `i` being node `k + i`.
    tree: Vec<usize>,
}

impl Losers {
    /// Plays every match, `less(a, b)` saying whether source `a`'s current
    /// item comes before source `b`'s (a strict order: ties go to one).
    fn new(k: usize, less: impl Fn(usize, usize) -> bool) -> Losers {
        let mut tree = vec![0; k.max(1)];
        if k > 1 {
            // Winners of each node, leaves at `k..2k`.
            let mut winners: Vec<usize> = (0..2 * k).map(|n| n.saturating_sub(k)).collect();
            for n in (1..k).rev() {
                let (a, b) = (winners[2 * n], winners[2 * n + 1]);
                let (win, lose) = if less(b, a) { (b, a) } else { (a, b) };
                winners[n] = win;
                tree[n] = lose;
            }
            tree[0] = winners[1];
        }
        Losers { tree }
    }

    /// The source whose current item is the smallest.
    fn winner(&self) -> usize {
        self.tree[0]
    }

    /// Plays again the matches of the winner, whose source has moved on.
    fn replay(&mut self, less: impl Fn(usize, usize) -> bool) {
        let k = self.tree.len();
        let mut winner = self.tree[0];
        let mut node = (winner + k) / 2;
        while node > 0 {
            if less(self.tree[node], winner) {
                std::mem::swap(&mut self.tree[node], &mut winner);
            }
            node /= 2;
        }
        self.tree[0] = winner;
    }
}

/// The items of sorted pieces of one buffer, merged in entry order (ties
/// in the order of the pieces).
struct Pieces<'a> {
    heads: PieceHeads<'a>,
    losers: Losers,
}

/// The next item of each piece being merged.
struct PieceHeads<'a> {
    buf: &'a [u8],
    items: &'a [Item],
    /// Per piece, its next item and its end.
    next: Vec<usize>,
    ends: &'a [usize],
    zero_in_key: bool,
}

impl PieceHeads<'_> {
    fn less(&self, a: usize, b: usize) -> bool {
        match (self.next[a] < self.ends[a], self.next[b] < self.ends[b]) {
            (true, true) => {
                let (x, y) = (&self.items[self.next[a]], &self.items[self.next[b]]);
                item_less(self.buf, x, y, self.zero_in_key).unwrap_or(a < b)
            }
            (true, false) => true,
            (false, true) => false,
            (false, false) => a < b,
        }
    }
}

impl<'a> Pieces<'a> {
    /// The pieces of `items` that end at `ends`.
    fn new(buf: &'a [u8], items: &'a [Item], ends: &'a [usize], zero_in_key: bool) -> Pieces<'a> {
        let mut next = vec![0];
        next.extend_from_slice(&ends[..ends.len().saturating_sub(1)]);
        let heads = PieceHeads {
            buf,
            items,
            next,
            ends,
            zero_in_key,
        };
        let losers = Losers::new(ends.len(), |a, b| heads.less(a, b));
        Pieces { heads, losers }
    }
}

impl Iterator for Pieces<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        let heads = &mut self.heads;
        let w = self.losers.winner();
        if heads.ends.is_empty() || heads.next[w] == heads.ends[w] {
            return None;
        }
        let item = heads.items[heads.next[w]];
        heads.next[w] += 1;
        self.losers.replay(|a, b| self.heads.less(a, b));
        Some(item)
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
            pieces: Vec::new(),
            runs: Vec::new(),
            writing: None,
            spare: None,
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

    /// How many runs were written to disk (or are being written).
    pub fn spilled(&self) -> usize {
        self.runs.len() + usize::from(self.writing.is_some())
    }

    /// Whether the buffer holds its half of the budget (the other half is
    /// the run being written meanwhile).
    fn full(&self) -> bool {
        self.buf.len() + self.items.len() * ITEM_BYTES >= self.budget / 2
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
        if other.spilled() == 0 && tag_offset == 0 && fits {
            // Its buffer is copied whole, its entries' places moved along,
            // its sorted pieces kept.
            if !other.pieces.is_empty() {
                self.sort_pieces();
            }
            let (base, first) = (self.buf.len() as u32, self.items.len());
            self.buf.extend_from_slice(&other.buf);
            self.items.extend(other.items.iter().map(|&i| Item {
                at: i.at + base,
                ..i
            }));
            self.pieces
                .extend(other.pieces.iter().map(|&end| first + end));
            self.entries += other.entries;
            self.zero_in_key |= other.zero_in_key;
            other.buf.clear();
            other.items.clear();
            other.pieces.clear();
            other.entries = 0;
            other.zero_in_key = false;
            if self.full() {
                self.spill()?;
            }
            return Ok(());
        }
        let other = std::mem::replace(other, Sorter::new(&other.dir, other.budget));
        if other.spilled() == 0 {
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

    /// Sorts the entries pushed since the last call, as a piece of their
    /// own: the sorter of a part of the input sorts its entries on the
    /// thread that gathered them, and the sorter they are appended to
    /// merges the pieces.
    pub fn sort_pieces(&mut self) {
        let start = self.pieces.last().copied().unwrap_or(0);
        if start < self.items.len() {
            sort_entries(&self.buf, &mut self.items[start..], self.zero_in_key);
            self.pieces.push(self.items.len());
        }
    }

    /// The items in entry order, once every piece is sorted.
    fn sorted(&self) -> Pieces<'_> {
        Pieces::new(&self.buf, &self.items, &self.pieces, self.zero_in_key)
    }

    /// Writes the buffer's entries out as a sorted run, on a thread of its
    /// own, and goes on with the other buffer: the thread that fills the
    /// sorter (ingest's reader) does not wait for the merge of the pieces
    /// and the write, but for the run before, if it is still being
    /// written.
    fn spill(&mut self) -> io::Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        self.wait_for_run()?;
        std::fs::create_dir_all(&self.dir)?;
        let file = tempfile::tempfile_in(&self.dir)?;
        let zero_in_key = self.zero_in_key;
        let held = self.buf.len() + self.items.len() * ITEM_BYTES;
        if held > self.budget / 4 * 3 {
            // Entries came in pieces larger than half the budget (a
            // sorter with a small budget, filled a parsed chunk at a
            // time): a second buffer would hold as much again, so the
            // run is written here, from the one buffer, which is kept.
            self.spare = None;
            let buffers = (
                std::mem::take(&mut self.buf),
                std::mem::take(&mut self.items),
                std::mem::take(&mut self.pieces),
            );
            (self.buf, self.items, self.pieces) = self.keep(write_run(file, buffers, zero_in_key)?);
            return Ok(());
        }
        let mut buffers = self.spare.take().unwrap_or_default();
        std::mem::swap(&mut buffers.0, &mut self.buf);
        std::mem::swap(&mut buffers.1, &mut self.items);
        std::mem::swap(&mut buffers.2, &mut self.pieces);
        let thread = std::thread::Builder::new()
            .name("sort-spill".into())
            .spawn(move || write_run(file, buffers, zero_in_key))?;
        self.writing = Some(thread);
        Ok(())
    }

    /// Keeps a run written; its buffers, emptied, to be filled again.
    fn keep(&mut self, written: Written) -> (Vec<u8>, Vec<Item>, Vec<usize>) {
        self.runs.push(written.file);
        let (mut buf, mut items, mut pieces) = written.buffers;
        buf.clear();
        items.clear();
        pieces.clear();
        (buf, items, pieces)
    }

    /// Waits for the run being written, if any, and keeps it.
    fn wait_for_run(&mut self) -> io::Result<()> {
        let Some(thread) = self.writing.take() else {
            return Ok(());
        };
        let written = thread
            .join()
            .map_err(|_| io::Error::other("the thread writing a sorted run panicked"))??;
        self.spare = Some(self.keep(written));
        Ok(())
    }

    /// Every entry, in (key, tag) order.
    pub fn finish(mut self) -> io::Result<Merged> {
        self.wait_for_run()?;
        self.spare = None;
        self.sort_pieces();
        let items = if self.pieces.len() > 1 {
            self.sorted().collect()
        } else {
            std::mem::take(&mut self.items)
        };
        // The entries still in memory are merged from there, as one more
        // run, rather than written out and read back.
        let memory = Run::Memory(Gather::new(std::mem::take(&mut self.buf), items));
        // The runs' read buffers take at most the budget together (a
        // sorter that spilled many runs reads each through a smaller one).
        let read_buffer =
            (self.budget / self.runs.len().max(1)).clamp(MIN_READ_BUFFER, MAX_READ_BUFFER);
        let mut runs = Vec::with_capacity(self.runs.len() + 1);
        for file in std::mem::take(&mut self.runs) {
            runs.push(Run::File(FileRun::new(file, read_buffer)?));
        }
        runs.push(memory);
        Ok(Merged::new(runs, self.zero_in_key))
    }
}

impl Drop for Sorter {
    /// A sorter given up (an ingest refused or failed) waits for the run
    /// it is writing, so that no thread outlives it holding its buffer.
    fn drop(&mut self) {
        if let Some(thread) = self.writing.take() {
            let _ = thread.join();
        }
    }
}

/// A run written out, and the buffers it was written from.
struct Written {
    file: File,
    buffers: (Vec<u8>, Vec<Item>, Vec<usize>),
}

/// Writes the entries of `buf` (placed by `items`, sorted in `pieces`
/// but for those past the last piece) to `file` in entry order, and
/// rewinds it to be read back.
fn write_run(
    file: File,
    (buf, mut items, mut pieces): (Vec<u8>, Vec<Item>, Vec<usize>),
    zero_in_key: bool,
) -> io::Result<Written> {
    let start = pieces.last().copied().unwrap_or(0);
    if start < items.len() {
        sort_entries(&buf, &mut items[start..], zero_in_key);
        pieces.push(items.len());
    }
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for i in Pieces::new(&buf, &items, &pieces, zero_in_key) {
        let at = i.at as usize;
        out.write_all(&buf[at..at + entry_len(&buf, at)])?;
    }
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.rewind()?;
    Ok(Written {
        file,
        buffers: (buf, items, pieces),
    })
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
    /// Entries copied, in order, and where the current one starts.
    batch: Vec<u8>,
    read: usize,
}

impl Gather {
    fn new(buf: Vec<u8>, items: Vec<Item>) -> Gather {
        let mut gather = Gather {
            buf,
            items,
            next: 0,
            batch: Vec::new(),
            read: 0,
        };
        gather.refill();
        gather
    }

    /// The current entry; `None` past the last.
    fn head(&self) -> Option<Entry<'_>> {
        (self.read < self.batch.len()).then(|| entry_at(&self.batch, self.read as u32))
    }

    /// Moves past the current entry.
    fn advance(&mut self) {
        self.read += entry_len(&self.batch, self.read);
        if self.read == self.batch.len() {
            self.refill();
        }
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

/// A spilled run being merged, read a buffer at a time: its current entry
/// is compared and handed out where it lies in the buffer.
pub struct FileRun {
    file: File,
    /// Bytes read, `start..end` not yet consumed; its length is the read
    /// size (more only for an entry that does not fit).
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FileRun {
    fn new(file: File, read_buffer: usize) -> io::Result<FileRun> {
        let mut run = FileRun {
            file,
            buf: vec![0; read_buffer],
            start: 0,
            end: 0,
        };
        run.fill()?;
        Ok(run)
    }

    /// Bytes of the current entry, once its header is in the buffer.
    fn current_len(&self) -> Option<usize> {
        (self.end - self.start >= HEADER).then(|| entry_len(&self.buf, self.start))
    }

    /// The current entry; `None` past the last.
    fn head(&self) -> Option<Entry<'_>> {
        (self.start < self.end).then(|| entry_at(&self.buf, self.start as u32))
    }

    /// Moves past the current entry.
    fn advance(&mut self) -> io::Result<()> {
        self.start += self.current_len().expect("a current entry");
        self.fill()
    }

    /// Reads until the current entry is whole in the buffer (or the run
    /// has ended), moving what is left of the buffer to its front first.
    fn fill(&mut self) -> io::Result<()> {
        loop {
            let whole = self
                .current_len()
                .is_some_and(|len| self.end - self.start >= len);
            if whole {
                return Ok(());
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let needed = self.current_len().unwrap_or(HEADER);
            if needed > self.buf.len() {
                self.buf.resize(needed, 0);
            }
            let read = self.file.read(&mut self.buf[self.end..])?;
            if read == 0 {
                if self.end == 0 {
                    return Ok(());
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a sorted run ends within an entry",
                ));
            }
            self.end += read;
        }
    }
}

/// One run being merged: spilled to a file, or the last still in memory.
pub enum Run {
    File(FileRun),
    Memory(Gather),
}

impl Run {
    fn head(&self) -> Option<Entry<'_>> {
        match self {
            Run::File(run) => run.head(),
            Run::Memory(run) => run.head(),
        }
    }

    fn advance(&mut self) -> io::Result<()> {
        match self {
            Run::File(run) => run.advance(),
            Run::Memory(run) => {
                run.advance();
                Ok(())
            }
        }
    }
}

/// A sorter's entries in order: its runs merged by a tree of losers
/// ([`Losers`]), each run's current entry compared where it lies (a heap
/// of heads copied out of their runs spent most of a merge copying and
/// comparing them again). Entries that tie come out in the order of
/// their runs.
pub struct Merged {
    heads: RunHeads,
    losers: Losers,
    /// The winner was handed out: its run moves on at the next call.
    started: bool,
}

/// The runs being merged and their current entries.
struct RunHeads {
    runs: Vec<Run>,
    /// Per run, the window of its current entry's sort string ([`Item`]),
    /// [`ENDED`] once the run has ended.
    windows: Vec<(u64, u64, u8)>,
    /// Sort strings do not order the entries (a key holds a zero byte):
    /// entries are compared whole.
    zero_in_key: bool,
}

impl RunHeads {
    /// Whether run `a`'s current entry comes before run `b`'s (an ended
    /// run's after every entry; ties go to the earlier run).
    #[inline]
    fn less(&self, a: usize, b: usize) -> bool {
        let (wa, wb) = (self.windows[a], self.windows[b]);
        match wa.cmp(&wb) {
            Ordering::Less => true,
            Ordering::Greater => false,
            // Windows that hold the rest of the sort string, or runs that
            // have ended.
            Ordering::Equal if wa.2 <= 16 || wa == ENDED => a < b,
            Ordering::Equal => {
                let (x, y) = (
                    self.runs[a]
                        .head()
                        .expect("a run with a window has an entry"),
                    self.runs[b]
                        .head()
                        .expect("a run with a window has an entry"),
                );
                (x.key, x.tag, x.value)
                    .cmp(&(y.key, y.tag, y.value))
                    .then(a.cmp(&b))
                    == Ordering::Less
            }
        }
    }
}

impl Merged {
    fn new(runs: Vec<Run>, zero_in_key: bool) -> Merged {
        let windows = runs.iter().map(|run| window(run, zero_in_key)).collect();
        let heads = RunHeads {
            runs,
            windows,
            zero_in_key,
        };
        let losers = Losers::new(heads.runs.len(), |a, b| heads.less(a, b));
        Merged {
            heads,
            losers,
            started: false,
        }
    }

    /// The next entry, borrowed until the next call.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> io::Result<Option<Entry<'_>>> {
        let heads = &mut self.heads;
        if heads.runs.is_empty() {
            return Ok(None);
        }
        if self.started {
            let w = self.losers.winner();
            heads.runs[w].advance()?;
            if heads.runs.len() > 1 {
                heads.windows[w] = window(&heads.runs[w], heads.zero_in_key);
                self.losers.replay(|a, b| self.heads.less(a, b));
            }
        }
        self.started = true;
        Ok(self.heads.runs[self.losers.winner()].head())
    }
}

/// The window of a merge's run that has ended: after every entry's
/// (whose `rest` is at most 17).
const ENDED: (u64, u64, u8) = (u64::MAX, u64::MAX, u8::MAX);

/// The window a run's current entry is first compared by: when sort
/// strings do not order the entries (`zero_in_key`), one that ties with
/// every other and sends the comparison to the entries.
fn window(run: &Run, zero_in_key: bool) -> (u64, u64, u8) {
    match run.head() {
        None => ENDED,
        Some(_) if zero_in_key => (0, 0, 17),
        Some(e) => Item::new(&e, 0, 0).order(),
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

    /// The tree of losers takes the smallest current item of its sources,
    /// ties going to the earlier source (as the merge of runs does, where
    /// a heap of heads ordered ties by run), for any number of sources,
    /// some empty.
    #[test]
    fn losers_take_the_smallest_and_ties_in_source_order() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for k in 1..=13usize {
            let sources: Vec<Vec<(u64, usize)>> = (0..k)
                .map(|source| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let len = if source % 4 == 3 { 0 } else { x % 60 };
                    let mut items: Vec<(u64, usize)> =
                        (0..len).map(|i| ((x >> (i % 50)) % 9, source)).collect();
                    items.sort();
                    items
                })
                .collect();
            let mut expected: Vec<(u64, usize)> = sources.concat();
            expected.sort();
            let mut next = vec![0; k];
            let less = |next: &[usize], sources: &[Vec<(u64, usize)>], a: usize, b: usize| match (
                sources[a].get(next[a]),
                sources[b].get(next[b]),
            ) {
                (Some(x), Some(y)) => x.0 < y.0 || x.0 == y.0 && a < b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => a < b,
            };
            let mut losers = Losers::new(k, |a, b| less(&next, &sources, a, b));
            let mut got = Vec::new();
            while let Some(&item) = sources[losers.winner()].get(next[losers.winner()]) {
                got.push(item);
                next[losers.winner()] += 1;
                losers.replay(|a, b| less(&next, &sources, a, b));
            }
            assert_eq!(got, expected, "{k} sources");
        }
    }

    /// Many spilled runs (entries with long shared prefixes, repeated
    /// entries, keys with zero bytes) merge into the order of a full sort.
    #[test]
    fn many_runs_merge_into_the_order_of_a_full_sort() {
        let dir = tempfile::tempdir().unwrap();
        for zero_in_keys in [false, true] {
            let mut input = tricky_entries(30_000, zero_in_keys);
            input.extend(tricky_entries(3_000, zero_in_keys));
            let mut expected = input.clone();
            expected.sort();
            let mut s = Sorter::new(dir.path(), 1 << 16);
            for (k, t, v) in &input {
                s.push(k, *t, v).unwrap();
            }
            assert!(s.spilled() > 30, "{} runs", s.spilled());
            assert!(
                drain(s.finish().unwrap()) == expected,
                "zeros {zero_in_keys}"
            );
        }
    }

    /// Entries sorted in pieces (each by the sorter that gathered them),
    /// then appended to a sorter that merges the pieces when it spills and
    /// when it finishes, come out as one sort of them all would give.
    #[test]
    fn pieces_sorted_apart_merge_as_one_sort() {
        let dir = tempfile::tempdir().unwrap();
        for zero_in_keys in [false, true] {
            let input = tricky_entries(20_000, zero_in_keys);
            let mut expected = input.clone();
            expected.sort();
            // 200,000: each piece spills as a run written on a thread of
            // its own; 65,536: pieces past three quarters of the budget,
            // written by the appending thread from its one buffer.
            for budget in [usize::MAX, 200_000, 1 << 16] {
                let mut all = Sorter::new(dir.path(), budget);
                let mut part = Sorter::new(dir.path(), usize::MAX);
                for (n, chunk) in input.chunks(1_500).enumerate() {
                    for (i, (k, t, v)) in chunk.iter().enumerate() {
                        part.push(k, *t, v).unwrap();
                        if n % 3 == 1 && i == 700 {
                            part.sort_pieces();
                        }
                    }
                    if n % 4 != 3 {
                        // The last of every four is appended unsorted.
                        part.sort_pieces();
                    }
                    all.append(&mut part, 0).unwrap();
                }
                assert_eq!(all.spilled() > 0, budget != usize::MAX);
                let got = drain(all.finish().unwrap());
                assert!(got == expected, "zeros {zero_in_keys}, budget {budget}");
            }
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
