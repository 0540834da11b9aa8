//! The leads a run has emitted so far, by subject, with memory that does
//! not grow with their number.
//!
//! A run's leads are kept only if the whole run succeeds, so the host holds
//! them until the commit. Up to a budget they stay in a map in memory; past
//! it the map is written out as a sorted run to a spill file and emptied.
//! Reading them back ([`Emitted::iter`]) merges the spill files and the map
//! by subject, the latest emit of a subject winning, as the map alone did.
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
use jiandu_sdk::{EvidenceData, LeadData};
use std::borrow::Cow;
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

/// What one lead costs in memory: its text, the map entry and the
/// `String` headers.
fn memory_cost(lead: &LeadData) -> u64 {
    text_size(lead) + 160 + 56 * lead.evidence.len() as u64
}

/// The emitted leads of one run.
pub struct Emitted {
    /// Leads since the last spill, in the order they were emitted (a
    /// subject may be there more than once: the last one counts).
    memory: Vec<LeadData>,
    /// Whether `memory` is in strictly ascending subject order, as a model
    /// that walks its data in key order emits: then it needs no sorting.
    ascending: bool,
    /// What `memory` costs, by [`memory_cost`].
    memory_cost: u64,
    /// Every subject emitted, by hash: the size of its latest lead.
    sizes: HashMap<u64, u64>,
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

impl Emitted {
    /// Leads held in memory only.
    pub fn new() -> Emitted {
        Emitted {
            memory: Vec::new(),
            ascending: true,
            memory_cost: 0,
            sizes: HashMap::new(),
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
                .memory
                .iter()
                .find(|l| self.key(&l.subject) == *k)
                .map(|l| format!(" (`{}`)", crate::text::shorten(&l.subject, 64)))
                .unwrap_or_default();
            return Err(Error::Leads(format!(
                "two parts of a partitioned run emitted the same subject{subject}: the model's leads do not follow the key it is split on"
            )));
        }
        if !other.memory.is_empty() {
            if other.spill_dir.is_some() {
                other.spill()?;
            } else {
                self.ascending = false;
                self.memory_cost += other.memory_cost;
                self.memory.append(&mut other.memory);
            }
        }
        self.sizes.extend(other.sizes.drain());
        self.spills.append(&mut other.spills);
        Ok(())
    }

    /// Leads beyond `budget` bytes of memory spill to files in `dir`.
    pub fn spill_to(&mut self, dir: PathBuf, budget: u64) {
        self.spill_dir = Some(dir);
        self.budget = budget;
    }

    fn key(&self, subject: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(subject.as_bytes());
        h.finish()
    }

    /// The size recorded for `subject`'s latest lead, if it was emitted.
    pub fn size_of(&self, subject: &str) -> Option<u64> {
        self.sizes.get(&self.key(subject)).copied()
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

    /// Leads emitted since the last spill (some may replace spilled ones,
    /// or each other).
    pub fn in_memory(&self) -> usize {
        self.memory.len()
    }

    /// Adds `lead` (of `size` bytes, as the policy counts them), replacing
    /// an earlier lead with its subject.
    pub fn insert(&mut self, lead: LeadData, size: u64) -> Result<()> {
        let key = self.key(&lead.subject);
        self.sizes.insert(key, size);
        if let Some(last) = self.memory.last() {
            self.ascending &= last.subject < lead.subject;
        }
        self.memory_cost += memory_cost(&lead);
        self.memory.push(lead);
        if self.memory_cost > self.budget && self.spill_dir.is_some() {
            self.spill()?;
        }
        Ok(())
    }

    /// The leads in memory in subject order, the last emit of a subject
    /// only, as positions in `memory`.
    fn memory_order(&self) -> Option<Vec<u32>> {
        if self.ascending {
            return None;
        }
        let mut order: Vec<u32> = (0..self.memory.len() as u32).collect();
        // Stable: of equal subjects, the last emitted ends up last.
        order.sort_by(|&a, &b| {
            self.memory[a as usize]
                .subject
                .cmp(&self.memory[b as usize].subject)
        });
        let mut kept: Vec<u32> = Vec::with_capacity(order.len());
        for i in order {
            match kept.last_mut() {
                Some(last)
                    if self.memory[*last as usize].subject == self.memory[i as usize].subject =>
                {
                    *last = i
                }
                _ => kept.push(i),
            }
        }
        Some(kept)
    }

    fn memory_leads(&self) -> MemoryLeads<'_> {
        MemoryLeads {
            leads: &self.memory,
            order: self.memory_order(),
            next: 0,
        }
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
        let mut out = BufWriter::with_capacity(1 << 16, &file);
        let mut buf = Vec::new();
        for lead in self.memory_leads() {
            buf.clear();
            encode(lead, &mut buf);
            out.write_all(&buf).map_err(|e| io(&path, "write", e))?;
        }
        out.flush().map_err(|e| io(&path, "write", e))?;
        drop(out);
        let len = file
            .metadata()
            .map_err(|e| io(&path, "read the size of", e))?
            .len();
        self.spills.push(Spill {
            file: Arc::new(file),
            len,
            path,
        });
        self.memory.clear();
        self.ascending = true;
        self.memory_cost = 0;
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
        sources.push(Source::Memory(self.memory_leads()));
        let heads = sources.iter().map(|_| None).collect();
        Merge {
            sources,
            heads,
            heap: Vec::new(),
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

// A lead in a spill file: each text as a u32 length and its bytes, each
// flag as a byte.
fn put_text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode(lead: &LeadData, out: &mut Vec<u8>) {
    put_text(out, &lead.subject);
    out.push(lead.subject_personal as u8);
    put_text(out, &lead.title);
    match &lead.amount {
        Some(a) => {
            out.push(1);
            put_text(out, a);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(lead.evidence.len() as u32).to_le_bytes());
    for e in &lead.evidence {
        put_text(out, &e.name);
        put_text(out, &e.value);
        out.push(e.personal as u8);
    }
}

/// Reads one spill file back, a buffer at a time.
struct SpillReader<'a> {
    spill: &'a Spill,
    /// File offset of `buf[0]`.
    at: u64,
    buf: Vec<u8>,
    /// Read position in `buf`.
    pos: usize,
}

const READ_CHUNK: usize = 1 << 16;

impl<'a> SpillReader<'a> {
    fn new(spill: &'a Spill) -> Self {
        SpillReader {
            spill,
            at: 0,
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::Leads(format!("spill file {}: {what}", self.spill.path.display()))
    }

    /// The next `n` bytes, reading more of the file as needed.
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.pos + n > self.buf.len() {
            let start = self.at + self.pos as u64;
            let left = self.spill.len.saturating_sub(start);
            let want = (n.max(READ_CHUNK) as u64).min(left) as usize;
            if want < n {
                return Err(self.corrupt("ends inside a lead"));
            }
            self.buf.resize(want, 0);
            self.spill
                .file
                .read_exact_at(&mut self.buf, start)
                .map_err(|e| io(&self.spill.path, "read", e))?;
            self.at = start;
            self.pos = 0;
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn flag(&mut self) -> Result<bool> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.corrupt("bad flag")),
        }
    }

    fn text(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        let bytes = self.take(n)?.to_vec();
        String::from_utf8(bytes).map_err(|_| self.corrupt("text is not UTF-8"))
    }

    fn next(&mut self) -> Result<Option<LeadData>> {
        if self.at + self.pos as u64 >= self.spill.len {
            return Ok(None);
        }
        let subject = self.text()?;
        let subject_personal = self.flag()?;
        let title = self.text()?;
        let amount = if self.flag()? {
            Some(self.text()?)
        } else {
            None
        };
        let n = self.u32()? as usize;
        let mut evidence = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            evidence.push(EvidenceData {
                name: self.text()?,
                value: self.text()?,
                personal: self.flag()?,
            });
        }
        Ok(Some(LeadData {
            subject,
            subject_personal,
            title,
            amount,
            evidence,
        }))
    }
}

/// The leads in memory in subject order, the last emit of each subject.
struct MemoryLeads<'a> {
    leads: &'a [LeadData],
    /// `None`: `leads` is in order as it is.
    order: Option<Vec<u32>>,
    next: usize,
}

impl<'a> Iterator for MemoryLeads<'a> {
    type Item = &'a LeadData;

    fn next(&mut self) -> Option<&'a LeadData> {
        let i = match &self.order {
            Some(order) => *order.get(self.next)? as usize,
            None => self.next,
        };
        self.next += 1;
        self.leads.get(i)
    }
}

enum Source<'a> {
    Spill(SpillReader<'a>),
    Memory(MemoryLeads<'a>),
}

impl<'a> Source<'a> {
    fn next(&mut self) -> Result<Option<Cow<'a, LeadData>>> {
        match self {
            Source::Spill(r) => Ok(r.next()?.map(Cow::Owned)),
            Source::Memory(m) => Ok(m.next().map(Cow::Borrowed)),
        }
    }
}

/// [`Emitted::iter`]: a merge of sorted runs, newest winning. A binary
/// heap of the sources by their next subject (the newest source first among
/// equal ones) makes each lead cost O(log sources), however many spills a
/// run made.
pub struct Merge<'a> {
    /// Oldest first; the memory last.
    sources: Vec<Source<'a>>,
    heads: Vec<Option<Cow<'a, LeadData>>>,
    /// Sources that have a head, as a min-heap by [`Merge::before`].
    heap: Vec<usize>,
    started: bool,
    failed: bool,
}

impl<'a> Merge<'a> {
    /// Whether source `a`'s head comes out before source `b`'s.
    fn before(&self, a: usize, b: usize) -> bool {
        let (ha, hb) = (
            self.heads[a].as_ref().expect("a head"),
            self.heads[b].as_ref().expect("a head"),
        );
        match ha.subject.cmp(&hb.subject) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            // The newest (highest) source wins a subject.
            std::cmp::Ordering::Equal => a > b,
        }
    }

    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if !self.before(self.heap[at], self.heap[parent]) {
                break;
            }
            self.heap.swap(at, parent);
            at = parent;
        }
    }

    fn sift_down(&mut self, mut at: usize) {
        loop {
            let (l, r) = (2 * at + 1, 2 * at + 2);
            let mut first = at;
            if l < self.heap.len() && self.before(self.heap[l], self.heap[first]) {
                first = l;
            }
            if r < self.heap.len() && self.before(self.heap[r], self.heap[first]) {
                first = r;
            }
            if first == at {
                return;
            }
            self.heap.swap(at, first);
            at = first;
        }
    }

    /// Reads source `i`'s next head and puts it back in the heap if it has
    /// one; `i` must not be in the heap.
    fn refill(&mut self, i: usize) -> Result<()> {
        self.heads[i] = self.sources[i].next()?;
        if self.heads[i].is_some() {
            self.heap.push(i);
            let last = self.heap.len() - 1;
            self.sift_up(last);
        }
        Ok(())
    }

    /// Takes the heap's first source out of it.
    fn pop(&mut self) -> Option<usize> {
        let top = *self.heap.first()?;
        let last = self.heap.pop().expect("not empty");
        if !self.heap.is_empty() {
            self.heap[0] = last;
            self.sift_down(0);
        }
        Some(top)
    }

    fn step(&mut self) -> Result<Option<Cow<'a, LeadData>>> {
        if !self.started {
            self.started = true;
            for i in 0..self.sources.len() {
                self.refill(i)?;
            }
        }
        let Some(best) = self.pop() else {
            return Ok(None);
        };
        let lead = self.heads[best].take().expect("the chosen head");
        self.refill(best)?;
        // Older leads of the same subject are replaced: drop them.
        while let Some(&top) = self.heap.first() {
            if self.heads[top].as_ref().expect("a head").subject != lead.subject {
                break;
            }
            self.pop();
            self.heads[top] = None;
            self.refill(top)?;
        }
        Ok(Some(lead))
    }
}

impl<'a> Iterator for Merge<'a> {
    type Item = Result<Cow<'a, LeadData>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(Some(lead)) => Some(Ok(lead)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        e.iter().map(|l| l.unwrap().into_owned()).collect()
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
                spilling.insert(l, 1).unwrap();
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
        e.insert(lead("B", "t", 2), 5).unwrap();
        e.insert(lead("A", "t", 3), 7).unwrap();
        e.insert(lead("B", "u", 4), 9).unwrap();
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
        e.insert(lead("A", "t", 3), 1).unwrap();
        assert!(e.spilled());
        e.insert(lead("B", "t", 2), 1).unwrap();
        assert_eq!(e.spills(), 2);
        // The first file cut short, the second claiming bytes it lacks.
        let len = e.spills[0].len;
        e.spills[0].file.set_len(len - 3).unwrap();
        e.spills[1].len += 10;
        let results: Vec<_> = e.iter().collect();
        assert_eq!(results.len(), 1, "stops at the first error");
        let err = results[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("cannot read the spill file"), "{err}");
        e.spills[0].file.set_len(len).unwrap();
        let results: Vec<_> = e.iter().collect();
        let err = results.last().unwrap().as_ref().unwrap_err().to_string();
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
                    e.insert(l, 1).unwrap();
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
            part.insert(lead(&format!("S{i:03}"), "t", i), 1).unwrap();
        }
        first.absorb(second).unwrap();
        let subjects: Vec<String> = collect(&first).into_iter().map(|l| l.subject).collect();
        let expect: Vec<String> = (0..60).map(|i| format!("S{i:03}")).collect();
        assert_eq!((first.len(), subjects), (60, expect));
        let mut third = first.sibling();
        third.insert(lead("S007", "again", 1), 1).unwrap();
        let err = first.absorb(third).unwrap_err().to_string();
        assert!(
            err.contains("S007") && err.contains("partitioned run"),
            "{err}"
        );
        assert_eq!(first.len(), 60);
    }
}
