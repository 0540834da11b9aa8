//! The leads a run has emitted so far, by subject, with memory that does
//! not grow with their number.
//!
//! A run's leads are kept only if the whole run succeeds, so the host holds
//! them until the commit. They stay as the model encoded them
//! ([`jiandu_sdk::encoded_lead`]): up to a budget in one buffer in memory,
//! in the order they were emitted; past it the buffer is written out, in
//! subject order, as a sorted run to a spill file and emptied. Reading them
//! back ([`Emitted::iter`]) merges the spill files and the buffer by
//! subject, the latest emit of a subject winning, and lends each lead as a
//! [`LeadView`] over the bytes where they lie: no field is copied into an
//! allocation of its own anywhere between the model and the snapshot.
//!
//! Spill files are unlinked as soon as they are created: they live as long
//! as the run holds them, a crash leaves nothing behind, and no other
//! process can open them. They hold what the model emitted, in the store's
//! own folder (owner-only).
//!
//! What stays in memory per lead past the budget is its subject's 64-bit
//! hash and its size: what the policy's limits on the number of leads and
//! their bytes need to tell a new subject from a replaced one.

use crate::{Error, Result};
use jiandu_sdk::encoded_lead::{self, DecodeError, LeadBytes, LeadView};
use jiandu_sdk::LeadData;
use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

/// Memory held for emitted leads before they spill: a few MiB, so that a
/// run's footprint does not depend on how many leads it finds.
pub const SPILL_BUDGET: u64 = 4 << 20;

/// Bytes of text in a lead: what the policy's `lead-volume` limit counts.
pub fn text_size(lead: &LeadData) -> u64 {
    let evidence: usize = lead
        .evidence
        .iter()
        .map(|e| e.name.len() + e.value.len())
        .sum();
    (lead.subject.len() + lead.title.len() + lead.amount.as_ref().map_or(0, String::len) + evidence)
        as u64
}

/// A subject's hash in an [`Emitted`] (and its siblings): made by
/// [`Emitted::key_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectKey(u64);

/// Subject keys to the sizes of their leads. A key is already a hash of
/// its subject under a secret random key ([`Emitted::key_of`]), spread over
/// all its bits, so the map takes it as its own hash rather than hashing
/// it again (a second SipHash per lead emitted and per lead merged).
type Sizes = HashMap<u64, u64, std::hash::BuildHasherDefault<KeyHasher>>;

/// The [`std::hash::Hasher`] of [`Sizes`]: a `u64` key is its own hash.
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }

    /// Not used by `u64` keys; folds bytes in so that it is still a hash.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

/// The emitted leads of one run.
pub struct Emitted {
    /// Leads since the last spill, encoded (each its length first), in the
    /// order they were emitted (a subject may be there more than once: the
    /// last one counts).
    memory: Vec<u8>,
    /// Where each lead of `memory` starts.
    starts: Vec<usize>,
    /// Whether `memory` is in strictly ascending subject order, as a model
    /// that walks its data in key order emits: then it needs no sorting.
    ascending: bool,
    /// Every subject emitted, by hash: the size of its latest lead.
    sizes: Sizes,
    hasher: std::hash::RandomState,
    /// Sorted runs written out, oldest first.
    spills: Vec<Spill>,
    /// Where spills go; `None`: everything stays in memory.
    spill_dir: Option<PathBuf>,
    budget: u64,
}

impl Default for Emitted {
    fn default() -> Self {
        Emitted::new()
    }
}

/// The lead at `start` of `memory`, with its length.
fn lead_at(memory: &[u8], start: usize) -> &[u8] {
    let len = u32::from_le_bytes(memory[start..start + 4].try_into().expect("4 bytes")) as usize;
    &memory[start..start + 4 + len]
}

impl Emitted {
    /// Leads held in memory only.
    pub fn new() -> Emitted {
        Emitted {
            memory: Vec::new(),
            starts: Vec::new(),
            ascending: true,
            sizes: Sizes::default(),
            hasher: std::hash::RandomState::new(),
            spills: Vec::new(),
            spill_dir: None,
            budget: u64::MAX,
        }
    }

    /// An empty set of leads for another part of the same partitioned
    /// run: the same subject hashing and spill settings, so that
    /// [`Emitted::absorb`] can tell whether two parts emitted one subject.
    pub fn sibling(&self) -> Emitted {
        Emitted {
            hasher: self.hasher.clone(),
            spill_dir: self.spill_dir.clone(),
            budget: self.budget,
            ..Emitted::new()
        }
    }

    /// Takes in the leads of another part of a partitioned run (made by
    /// [`Emitted::sibling`]). The parts cover disjoint keys, so they must
    /// have emitted disjoint subjects: a subject emitted by both is an
    /// error, and nothing of `other` is taken.
    pub fn absorb(&mut self, mut other: Emitted) -> Result<()> {
        if let Some(k) = other.sizes.keys().find(|k| self.sizes.contains_key(k)) {
            let subject = other
                .starts
                .iter()
                .map(|&s| encoded_lead::subject_bytes(lead_at(&other.memory, s)))
                .find(|s| self.key(s) == *k)
                .map(|s| {
                    format!(
                        " (`{}`)",
                        crate::text::shorten(&String::from_utf8_lossy(s), 64)
                    )
                })
                .unwrap_or_default();
            return Err(Error::Leads(format!(
                "two parts of a partitioned run emitted the same subject{subject}: the model's leads do not follow the key it is split on"
            )));
        }
        if !other.starts.is_empty() {
            if other.spill_dir.is_some() {
                other.spill()?;
            } else {
                self.ascending = false;
                let base = self.memory.len();
                self.starts.extend(other.starts.iter().map(|s| s + base));
                self.memory.append(&mut other.memory);
            }
        }
        self.sizes.reserve(other.sizes.len());
        self.sizes.extend(other.sizes.drain());
        self.spills.append(&mut other.spills);
        Ok(())
    }

    /// Leads beyond `budget` bytes of memory spill to files in `dir`.
    pub fn spill_to(&mut self, dir: PathBuf, budget: u64) {
        self.spill_dir = Some(dir);
        self.budget = budget;
    }

    fn key(&self, subject: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(subject);
        h.finish()
    }

    /// The size recorded for `subject`'s latest lead, if it was emitted.
    pub fn size_of(&self, subject: &str) -> Option<u64> {
        self.size_of_key(self.key_of(subject))
    }

    /// `subject`'s key, to look it up and insert its lead with one hash.
    pub fn key_of(&self, subject: &str) -> SubjectKey {
        SubjectKey(self.key(subject.as_bytes()))
    }

    /// [`Emitted::size_of`] by key.
    pub fn size_of_key(&self, key: SubjectKey) -> Option<u64> {
        self.sizes.get(&key.0).copied()
    }

    /// Number of distinct subjects.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Whether some leads are in spill files.
    pub fn spilled(&self) -> bool {
        !self.spills.is_empty()
    }

    /// Number of spill files.
    pub fn spills(&self) -> usize {
        self.spills.len()
    }

    /// Whether a lead with `subject` was emitted: the leads in memory and
    /// in spill files compared byte for byte. For when its key
    /// ([`Emitted::key_of`]) was seen, to tell a second lead for the
    /// subject from two subjects whose keys collide.
    pub fn holds_subject(&self, subject: &[u8]) -> Result<bool> {
        if self
            .starts
            .iter()
            .any(|&s| encoded_lead::subject_bytes(lead_at(&self.memory, s)) == subject)
        {
            return Ok(true);
        }
        for spill in &self.spills {
            let mut reader = SpillReader::new(spill);
            while reader.advance()? {
                let lead = reader.head().expect("advanced to a lead");
                if encoded_lead::subject_bytes(lead) == subject {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Leads emitted since the last spill (some may replace spilled ones,
    /// or each other).
    pub fn in_memory(&self) -> usize {
        self.starts.len()
    }

    /// Adds `lead` (of `size` bytes, as the policy counts them), replacing
    /// an earlier lead with its subject.
    pub fn insert(&mut self, lead: &LeadData, size: u64) -> Result<()> {
        let mut encoded = Vec::new();
        encoded_lead::put_data(&mut encoded, lead);
        self.insert_encoded(&encoded, size)
    }

    /// Adds a lead as [`encoded_lead`] encodes it, its length first, and
    /// already checked ([`encoded_lead::decode`]); `size` as the policy
    /// counts it.
    pub fn insert_encoded(&mut self, lead: &[u8], size: u64) -> Result<()> {
        let key = SubjectKey(self.key(encoded_lead::subject_bytes(lead)));
        self.insert_keyed(key, lead, size)
    }

    /// [`Emitted::insert_encoded`] with the subject's key already made
    /// ([`Emitted::key_of`]).
    pub fn insert_keyed(&mut self, key: SubjectKey, lead: &[u8], size: u64) -> Result<()> {
        let subject = encoded_lead::subject_bytes(lead);
        self.sizes.insert(key.0, size);
        if let Some(&last) = self.starts.last() {
            self.ascending &= encoded_lead::subject_bytes(lead_at(&self.memory, last)) < subject;
        }
        self.starts.push(self.memory.len());
        self.memory.extend_from_slice(lead);
        if self.memory_cost() > self.budget && self.spill_dir.is_some() {
            self.spill()?;
        }
        Ok(())
    }

    /// What the leads in memory cost: their bytes and their places.
    fn memory_cost(&self) -> u64 {
        (self.memory.len() + self.starts.len() * std::mem::size_of::<usize>()) as u64
    }

    /// The leads in memory in subject order, the last emit of a subject
    /// only, as their starts in `memory`.
    fn memory_order(&self) -> Option<Vec<usize>> {
        if self.ascending {
            return None;
        }
        let subject = |start: usize| encoded_lead::subject_bytes(lead_at(&self.memory, start));
        let mut order = self.starts.clone();
        // Stable: of equal subjects, the last emitted ends up last.
        order.sort_by(|&a, &b| subject(a).cmp(subject(b)));
        let mut kept: Vec<usize> = Vec::with_capacity(order.len());
        for start in order {
            match kept.last_mut() {
                Some(last) if subject(*last) == subject(start) => *last = start,
                _ => kept.push(start),
            }
        }
        Some(kept)
    }

    fn memory_leads(&self) -> MemoryLeads<'_> {
        MemoryLeads {
            memory: &self.memory,
            order: self.memory_order().unwrap_or_else(|| self.starts.clone()),
            next: 0,
        }
    }

    /// Writes the leads held in memory to a spill file, when leads spill
    /// at all ([`Emitted::spill_to`]) and some are held, and gives the
    /// buffer's memory back: what a finished part of a partitioned run
    /// does while other parts still run.
    pub fn settle(&mut self) -> Result<()> {
        if self.spill_dir.is_some() && !self.starts.is_empty() {
            self.spill()?;
            self.memory = Vec::new();
            self.starts = Vec::new();
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        let dir = self.spill_dir.as_ref().expect("a spill folder");
        std::fs::create_dir_all(dir).map_err(|e| io(dir, "create", e))?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = dir.join(format!(
            "spill-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, AtomicOrdering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io(&path, "create", e))?;
        // Unlinked at once: the open handle is all that keeps it.
        std::fs::remove_file(&path).map_err(|e| io(&path, "remove", e))?;
        let len = if self.ascending {
            // In order already: the buffer is the sorted run.
            file.write_all_at(&self.memory, 0)
                .map_err(|e| io(&path, "write", e))?;
            self.memory.len() as u64
        } else {
            let mut out = BufWriter::with_capacity(1 << 16, &file);
            let mut leads = self.memory_leads();
            let mut len = 0u64;
            while let Some(lead) = leads.next_lead() {
                out.write_all(lead).map_err(|e| io(&path, "write", e))?;
                len += lead.len() as u64;
            }
            out.flush().map_err(|e| io(&path, "write", e))?;
            len
        };
        self.spills.push(Spill {
            file: Arc::new(file),
            len,
            path,
        });
        self.memory.clear();
        self.starts.clear();
        self.ascending = true;
        Ok(())
    }

    /// Every lead, in subject order, the latest emit of a subject only.
    /// Each call reads the spill files afresh, so that several passes can
    /// run at once.
    pub fn iter(&self) -> Merge<'_> {
        let mut sources: Vec<Source<'_>> = self
            .spills
            .iter()
            .map(|s| Source::Spill(SpillReader::new(s)))
            .collect();
        sources.push(Source::Memory {
            leads: self.memory_leads(),
            head: None,
        });
        Merge {
            sources,
            heap: jiandu_store::heap::IndexHeap::new(),
            taken: Vec::new(),
            started: false,
            failed: false,
        }
    }
}

/// A sorted run of leads written out.
struct Spill {
    file: Arc<File>,
    len: u64,
    /// The name it had, for messages.
    path: PathBuf,
}

fn io(path: &std::path::Path, what: &str, e: std::io::Error) -> Error {
    Error::Leads(format!(
        "cannot {what} the spill file {}: {e}",
        path.display()
    ))
}

/// Reads one spill file back, a buffer at a time; the lead at hand stays
/// in the buffer until the reader moves on.
struct SpillReader<'a> {
    spill: &'a Spill,
    /// File offset of `buf[0]`.
    at: u64,
    buf: Vec<u8>,
    /// The lead at hand: `buf[head.0..head.1]`, its length first.
    head: Option<(usize, usize)>,
    /// Where the next lead starts in `buf`.
    pos: usize,
}

const READ_CHUNK: usize = 1 << 16;

impl<'a> SpillReader<'a> {
    fn new(spill: &'a Spill) -> Self {
        SpillReader {
            spill,
            at: 0,
            buf: Vec::new(),
            head: None,
            pos: 0,
        }
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::Leads(format!("spill file {}: {what}", self.spill.path.display()))
    }

    /// Makes sure `buf[pos..pos + n]` is read, moving what is left of the
    /// buffer to its front first; false at the end of the file.
    fn fill(&mut self, n: usize) -> Result<bool> {
        if self.pos + n <= self.buf.len() {
            return Ok(true);
        }
        let start = self.at + self.pos as u64;
        let left = self.spill.len.saturating_sub(start);
        if left == 0 {
            return Ok(false);
        }
        if (left as usize) < n {
            return Err(self.corrupt("ends inside a lead"));
        }
        let want = (n.max(READ_CHUNK) as u64).min(left) as usize;
        // Zeroed only where it grows: the bytes are read over anyway.
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        self.buf.truncate(want);
        self.spill
            .file
            .read_exact_at(&mut self.buf, start)
            .map_err(|e| io(&self.spill.path, "read", e))?;
        self.at = start;
        self.pos = 0;
        Ok(true)
    }

    /// Moves to the next lead; false at the end.
    fn advance(&mut self) -> Result<bool> {
        self.head = None;
        if !self.fill(4)? {
            return Ok(false);
        }
        let len = u32::from_le_bytes(
            self.buf[self.pos..self.pos + 4]
                .try_into()
                .expect("4 bytes"),
        ) as usize;
        if !self.fill(4 + len)? {
            return Err(self.corrupt("ends inside a lead"));
        }
        self.head = Some((self.pos, self.pos + 4 + len));
        self.pos += 4 + len;
        Ok(true)
    }

    fn head(&self) -> Option<&[u8]> {
        self.head.map(|(a, b)| &self.buf[a..b])
    }
}

/// The leads in memory in subject order, the last emit of each subject.
struct MemoryLeads<'a> {
    memory: &'a [u8],
    /// Starts of the leads, in the order they come out.
    order: Vec<usize>,
    next: usize,
}

impl<'a> MemoryLeads<'a> {
    fn next_lead(&mut self) -> Option<&'a [u8]> {
        let start = *self.order.get(self.next)?;
        self.next += 1;
        Some(lead_at(self.memory, start))
    }
}

enum Source<'a> {
    Spill(SpillReader<'a>),
    Memory {
        leads: MemoryLeads<'a>,
        head: Option<&'a [u8]>,
    },
}

impl<'a> Source<'a> {
    fn advance(&mut self) -> Result<bool> {
        match self {
            Source::Spill(r) => r.advance(),
            Source::Memory { leads, head } => {
                *head = leads.next_lead();
                Ok(head.is_some())
            }
        }
    }

    /// The lead at hand, encoded, its length first.
    fn head(&self) -> &[u8] {
        match self {
            Source::Spill(r) => r.head(),
            Source::Memory { head, .. } => *head,
        }
        .expect("a source in the heap has a lead at hand")
    }
}

/// [`Emitted::iter`]: a merge of sorted runs, newest winning. A binary
/// heap of the sources by their next subject (the newest source first among
/// equal ones) makes each lead cost O(log sources), however many spills a
/// run made. It lends each lead ([`Merge::next_lead`]) until the next call.
pub struct Merge<'a> {
    /// Oldest first; the memory last.
    sources: Vec<Source<'a>>,
    /// Sources that have a lead at hand, as a min-heap by [`Merge::before`].
    heap: jiandu_store::heap::IndexHeap,
    /// Sources whose lead at hand was lent or replaced: they move on before
    /// the next lead is chosen.
    taken: Vec<usize>,
    started: bool,
    failed: bool,
}

impl<'a> Merge<'a> {
    fn subject(&self, source: usize) -> &[u8] {
        encoded_lead::subject_bytes(self.sources[source].head())
    }

    /// Whether source `a`'s head comes out before source `b`'s.
    fn before(sources: &[Source<'a>], a: usize, b: usize) -> bool {
        let subject = |s: usize| encoded_lead::subject_bytes(sources[s].head());
        match subject(a).cmp(subject(b)) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            // The newest (highest) source wins a subject.
            std::cmp::Ordering::Equal => a > b,
        }
    }

    /// Moves source `i` to its next lead and puts it back in the heap if
    /// it has one; `i` must not be in the heap.
    fn refill(&mut self, i: usize) -> Result<()> {
        if self.sources[i].advance()? {
            let sources = &self.sources;
            self.heap.push(i, |a, b| Merge::before(sources, a, b));
        }
        Ok(())
    }

    /// Takes the heap's first source out of it.
    fn pop(&mut self) -> Option<usize> {
        let sources = &self.sources;
        self.heap.pop(|a, b| Merge::before(sources, a, b))
    }

    fn step(&mut self) -> Result<Option<usize>> {
        if !self.started {
            self.started = true;
            for i in 0..self.sources.len() {
                self.refill(i)?;
            }
        }
        for i in std::mem::take(&mut self.taken) {
            self.refill(i)?;
        }
        let Some(best) = self.pop() else {
            return Ok(None);
        };
        self.taken.push(best);
        // Older leads of the same subject are replaced: they move on too.
        while let Some(top) = self.heap.first() {
            if self.subject(top) != self.subject(best) {
                break;
            }
            self.pop();
            self.taken.push(top);
        }
        Ok(Some(best))
    }

    /// The next lead, lent until the next call; `None` at the end and
    /// after an error.
    pub fn next_lead(&mut self) -> Result<Option<LeadView<'_>>> {
        self.next_decoded(encoded_lead::decode)
    }

    /// [`Merge::next_lead`] as bytes: its structure checked again, its
    /// texts not checked for UTF-8 a second time. Every lead was checked
    /// whole when the model emitted it (`emit-leads`); what is read back is
    /// the bytes this process kept in memory or wrote to a spill file only
    /// it holds open. Checking the UTF-8 of every text again was a third of
    /// the time spent planning a run's snapshot.
    pub fn next_bytes(&mut self) -> Result<Option<LeadBytes<'_>>> {
        self.next_decoded(encoded_lead::decode_bytes)
    }

    fn next_decoded<'s, T>(
        &'s mut self,
        decode: impl FnOnce(&'s [u8]) -> std::result::Result<(T, usize), DecodeError>,
    ) -> Result<Option<T>> {
        if self.failed {
            return Ok(None);
        }
        let lead = match self.step() {
            Ok(Some(source)) => source,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.failed = true;
                return Err(e);
            }
        };
        match decode(self.sources[lead].head()) {
            Ok((view, _)) => Ok(Some(view)),
            Err(e) => {
                self.failed = true;
                Err(match &self.sources[lead] {
                    Source::Spill(r) => r.corrupt(&format!("a lead that {e}")),
                    Source::Memory { .. } => Error::Leads(format!("a lead in memory that {e}")),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiandu_sdk::EvidenceData;
    use std::collections::BTreeMap;

    fn lead(subject: &str, title: &str, n: usize) -> LeadData {
        LeadData {
            subject: subject.into(),
            subject_personal: subject.starts_with('P'),
            title: title.into(),
            amount: n.is_multiple_of(2).then(|| format!("{n}.50")),
            evidence: (0..n % 4)
                .map(|i| EvidenceData {
                    name: format!("e{i}"),
                    value: format!("值{i}"),
                    personal: i == 1,
                })
                .collect(),
        }
    }

    fn collect(e: &Emitted) -> Vec<LeadData> {
        read(e).map_err(|e| e.to_string()).unwrap()
    }

    /// Every lead, or the first error.
    fn read(e: &Emitted) -> Result<Vec<LeadData>> {
        let mut out = Vec::new();
        let mut leads = e.iter();
        while let Some(l) = leads.next_lead()? {
            out.push(l.to_data());
        }
        assert!(leads.next_lead().unwrap().is_none(), "stays at its end");
        Ok(out)
    }

    #[test]
    fn spilled_leads_read_back_like_the_map_with_the_latest_emit_winning() {
        let dir = tempfile::tempdir().unwrap();
        let mut spilling = Emitted::new();
        spilling.spill_to(dir.path().to_path_buf(), 2_000);
        let mut plain = BTreeMap::new();
        // Subjects revisited across spills, in no order.
        for round in 0..5 {
            for i in 0..40usize {
                let subject = format!("{}{:03}", if i % 3 == 0 { "P" } else { "C" }, (i * 7) % 50);
                let l = lead(&subject, &format!("round {round}"), i + round);
                plain.insert(subject.clone(), l.clone());
                spilling.insert(&l, 1).unwrap();
            }
        }
        assert!(spilling.spilled(), "the budget makes it spill");
        let expect: Vec<LeadData> = plain.into_values().collect();
        assert_eq!(spilling.len(), expect.len());
        assert_eq!(collect(&spilling), expect);
        // A second pass reads the same.
        assert_eq!(collect(&spilling), expect);
        // Nothing is left in the folder: spill files are unlinked at once.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn without_a_spill_folder_everything_stays_in_memory() {
        let mut e = Emitted::new();
        e.insert(&lead("B", "t", 2), 5).unwrap();
        e.insert(&lead("A", "t", 3), 7).unwrap();
        e.insert(&lead("B", "u", 4), 9).unwrap();
        assert!(!e.spilled());
        assert_eq!(
            (e.len(), e.size_of("B"), e.size_of("C")),
            (2, Some(9), None)
        );
        let subjects: Vec<String> = collect(&e).into_iter().map(|l| l.subject).collect();
        assert_eq!(subjects, ["A", "B"]);
        assert_eq!(collect(&e)[1].title, "u");
    }

    #[test]
    fn a_damaged_spill_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Emitted::new();
        e.spill_to(dir.path().to_path_buf(), 1);
        e.insert(&lead("A", "t", 3), 1).unwrap();
        assert!(e.spilled());
        e.insert(&lead("B", "t", 2), 1).unwrap();
        assert_eq!(e.spills(), 2);
        // The first file cut short, the second claiming bytes it lacks.
        let len = e.spills[0].len;
        e.spills[0].file.set_len(len - 3).unwrap();
        e.spills[1].len += 10;
        let mut leads = e.iter();
        let err = leads.next_lead().unwrap_err().to_string();
        assert!(err.contains("spill file"), "{err}");
        assert!(
            leads.next_lead().unwrap().is_none(),
            "stops at the first error"
        );
        e.spills[0].file.set_len(len).unwrap();
        let err = read(&e).unwrap_err().to_string();
        assert!(err.contains("spill file"), "{err}");
    }

    #[test]
    fn many_spills_merge_in_subject_order_whether_emitted_in_order_or_not() {
        let dir = tempfile::tempdir().unwrap();
        for shuffled in [false, true] {
            let mut e = Emitted::new();
            e.spill_to(dir.path().to_path_buf(), 3_000);
            let mut plain = BTreeMap::new();
            for i in 0..2_000usize {
                let n = if shuffled { (i * 7919) % 2_000 } else { i };
                // Every tenth subject emitted again later, with a new title.
                for (round, m) in [(0, n), (1, n / 10 * 10)] {
                    if round == 1 && n % 10 != 0 {
                        continue;
                    }
                    let subject = format!("S{m:05}");
                    let l = lead(&subject, &format!("{round}-{i}"), i);
                    plain.insert(subject, l.clone());
                    e.insert(&l, 1).unwrap();
                }
            }
            assert!(e.spills() > 20, "{} spills", e.spills());
            let expect: Vec<LeadData> = plain.into_values().collect();
            assert_eq!(collect(&e), expect, "shuffled: {shuffled}");
        }
    }

    #[test]
    fn parts_are_merged_by_subject_and_a_subject_two_parts_emitted_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Emitted::new();
        first.spill_to(dir.path().to_path_buf(), 2_000);
        let mut second = first.sibling();
        for i in 0..60usize {
            let part = if i % 2 == 0 { &mut first } else { &mut second };
            part.insert(&lead(&format!("S{i:03}"), "t", i), 1).unwrap();
        }
        first.absorb(second).unwrap();
        let subjects: Vec<String> = collect(&first).into_iter().map(|l| l.subject).collect();
        let expect: Vec<String> = (0..60).map(|i| format!("S{i:03}")).collect();
        assert_eq!((first.len(), subjects), (60, expect));
        let mut third = first.sibling();
        third.insert(&lead("S007", "again", 1), 1).unwrap();
        let err = first.absorb(third).unwrap_err().to_string();
        assert!(
            err.contains("S007") && err.contains("partitioned run"),
            "{err}"
        );
        assert_eq!(first.len(), 60);
    }

    #[test]
    fn a_settled_part_holds_its_leads_in_files_and_gives_its_buffer_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Emitted::new();
        run.spill_to(dir.path().to_path_buf(), 1 << 20);
        let mut parts: Vec<Emitted> = (0..3).map(|_| run.sibling()).collect();
        for (p, part) in parts.iter_mut().enumerate() {
            for i in 0..20usize {
                let l = lead(&format!("S{p}{i:02}"), "t", i);
                part.insert(&l, 1).unwrap();
            }
            assert!(!part.spilled() && part.in_memory() == 20);
            part.settle().unwrap();
            assert!(part.spilled() && part.in_memory() == 0);
            assert_eq!((part.memory.capacity(), part.starts.capacity()), (0, 0));
            // Nothing held: settling again writes no file.
            part.settle().unwrap();
            assert_eq!(part.spills(), 1);
        }
        for part in parts {
            run.absorb(part).unwrap();
        }
        let subjects: Vec<String> = collect(&run).into_iter().map(|l| l.subject).collect();
        let expect: Vec<String> = (0..3)
            .flat_map(|p| (0..20).map(move |i| format!("S{p}{i:02}")))
            .collect();
        assert_eq!(subjects, expect);
        // Without a spill folder there is nowhere to settle to: kept.
        let mut plain = Emitted::new();
        plain.insert(&lead("A", "t", 1), 1).unwrap();
        plain.settle().unwrap();
        assert_eq!((plain.spilled(), plain.in_memory()), (false, 1));
    }
}
