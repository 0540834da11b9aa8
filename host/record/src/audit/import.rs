//! `jiandu audit import`: take a unit's export file at the central office,
//! or refuse it and say where and why.
//!
//! In file order, the first failure is reported with its line:
//! 1. line 1 is a header in this format, from a registered unit, signed by
//!    that unit's key (**format**, **unit**, **signature**);
//! 2. each entry line: it is the next entry, its bytes are an entry and hash
//!    to its `hash`, it is signed by the unit's key, it links to the entry
//!    before it (**sequence**, **parse**, **hash**, **signature**,
//!    **chain**);
//! 3. the last line is a checkpoint signed by the unit over exactly the
//!    entries the header declares (**checkpoint**; a file that ends early
//!    fails **format** or **sequence** at the first missing line);
//! 4. against what this office already accepted from the unit: the export
//!    must not start after it (**gap**), must extend the same ledger
//!    (**fork**), must repeat accepted entries byte for byte (**rewrite**),
//!    and must bring something newer (**replay**); the checkpoint's Merkle
//!    root must be the root of the accepted entries plus the new ones
//!    (**checkpoint**).
//!
//! The file is read as a stream, one line at a time, so memory does not
//! grow with its length (the hashes of its entries aside: 32 bytes each).
//! Signatures are checked strictly, a few thousand entries at a time on
//! every core. An import stores new entries as they pass their own checks,
//! in batches, past the last checkpoint accepted from the unit, where
//! nothing reads them (see [`central::entries`]); the checkpoint that
//! accepts them is stored only when the whole file has passed. A refused
//! file's entries are removed again, and a crash in between leaves them
//! unread until the next import overwrites them. [`check`] does all of it
//! without storing anything.

use super::central::{self, Accepted};
use super::chain::{self, Chain, Item, Signing};
use super::checkpoint::{self, SignedCheckpoint};
use super::format::{CheckpointLine, EntryLine, Header, HeaderLine, FORMAT};
use super::merkle::{parse_hash, Tree};
use super::units::{self, RegisteredUnit};
use super::{short, Check};
use crate::ledger::check_signature_either;
use crate::ledger::GENESIS;
use crate::{Error, Result, Store};
use jiandu_registry::keys::PublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Read};

/// The longest line an export may hold (an entry with its parameters and
/// counts is a few KiB); a longer one is refused before it is held whole.
pub const MAX_LINE: u64 = 64 << 20;

/// Entries whose signatures are checked together, and stored together.
const CHUNK: usize = 4096;

/// Why an export was refused: the line (1-based), the entry if one is
/// concerned, the check that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub line: usize,
    pub seq: Option<u64>,
    pub check: Check,
    pub message: String,
}

impl Refusal {
    fn new(
        line: usize,
        seq: impl Into<Option<u64>>,
        check: Check,
        message: impl Into<String>,
    ) -> Refusal {
        Refusal {
            line,
            seq: seq.into(),
            check,
            message: message.into(),
        }
    }

    fn format(line: usize, message: impl Into<String>) -> Refusal {
        Refusal::new(line, None, Check::Format, message)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(
                f,
                "line {}: entry {seq} failed the {} check: {}",
                self.line, self.check, self.message
            ),
            None => write!(
                f,
                "line {}: the {} check failed: {}",
                self.line, self.check, self.message
            ),
        }
    }
}

/// An export that passed every check.
#[derive(Debug, Clone)]
pub struct Plan {
    pub unit: RegisteredUnit,
    pub header: Header,
    pub checkpoint: SignedCheckpoint,
    /// Entries after the last accepted checkpoint: to store.
    pub added: u64,
    /// sha256 over those entries' lines as this office stores them: two
    /// exports with the same digest bring the same entries.
    pub added_digest: String,
    /// Entry count of the last checkpoint accepted before this one.
    pub previous: u64,
    /// Things worth saying that do not refuse the export.
    pub notes: Vec<String>,
}

/// What an import stored.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub unit: RegisteredUnit,
    pub previous: u64,
    pub added: u64,
    pub size: u64,
    pub root: String,
    pub notes: Vec<String>,
}

impl From<Plan> for Imported {
    fn from(plan: Plan) -> Imported {
        Imported {
            previous: plan.previous,
            added: plan.added,
            size: plan.checkpoint.checkpoint.size,
            root: plan.checkpoint.checkpoint.root,
            notes: plan.notes,
            unit: plan.unit,
        }
    }
}

/// Why reading an export stopped: the file is refused, or the store (or
/// the file's reading) failed.
enum Stop {
    Refused(Refusal),
    Failed(Error),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Stop {
        Stop::Refused(r)
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e)
    }
}

impl From<sled::Error> for Stop {
    fn from(e: sled::Error) -> Stop {
        Stop::Failed(e.into())
    }
}

type Step<T> = std::result::Result<T, Stop>;

fn outcome<T>(step: Step<T>) -> Result<std::result::Result<T, Refusal>> {
    match step {
        Ok(v) => Ok(Ok(v)),
        Err(Stop::Refused(r)) => Ok(Err(r)),
        Err(Stop::Failed(e)) => Err(e),
    }
}

/// Checks an export held in memory; see [`check_from`].
pub fn check(store: &Store, bytes: &[u8]) -> Result<std::result::Result<Plan, Refusal>> {
    check_from(store, bytes, "the export")
}

/// Checks the export read from `input` (named `source` in messages)
/// against this office's register and what it already accepted, without
/// storing anything. The outer error is a store or read failure; the inner
/// one is the reason the file is refused.
pub fn check_from(
    store: &Store,
    input: impl BufRead,
    source: &str,
) -> Result<std::result::Result<Plan, Refusal>> {
    outcome(read(store, Lines::new(input, source), None))
}

/// Imports an export held in memory; see [`import_from`].
pub fn import(
    store: &Store,
    bytes: &[u8],
    source: &str,
) -> Result<std::result::Result<Imported, Refusal>> {
    import_from(store, bytes, source)
}

/// Checks the export read from `input` and, if it passes, stores its new
/// entries and then the checkpoint that accepts them.
pub fn import_from(
    store: &Store,
    input: impl BufRead,
    source: &str,
) -> Result<std::result::Result<Imported, Refusal>> {
    let mut sink = Sink::new(store);
    let read = read(store, Lines::new(input, source), Some(&mut sink));
    let stored = match read {
        Ok(plan) => sink.accept(&plan, source).map(|()| plan),
        Err(stop) => {
            sink.discard();
            Err(stop)
        }
    };
    outcome(stored.map(Imported::from))
}

/// Reads the whole export: its header, its entries, its checkpoint, then
/// checks it against what this office holds.
fn read<R: BufRead>(store: &Store, mut lines: Lines<R>, sink: Option<&mut Sink<'_>>) -> Step<Plan> {
    if lines.next()?.is_none() {
        return Err(Refusal::format(1, "the file is empty").into());
    }
    let opened = open(store, &lines.buf)?;
    let held = Held::load(store, &opened)?;
    let mut walk = Walk::new(&opened, &held, sink);
    let mut cp: Option<(usize, CheckpointLine)> = None;
    while let Some(n) = lines.next()? {
        if let Some((cn, _)) = &cp {
            walk.flush(store)?;
            return Err(Refusal::format(
                n,
                format!("line {cn} is the checkpoint that ends the export, yet more lines follow (files joined together?)"),
            )
            .into());
        }
        let kind = match kind_of(n, &lines.buf) {
            Ok(kind) => kind,
            Err(r) => {
                walk.flush(store)?;
                return Err(r.into());
            }
        };
        match kind.as_str() {
            "entry" => match parse(n, &lines.buf, "entry") {
                Ok(line) => walk.queue(store, n, line)?,
                Err(r) => {
                    walk.flush(store)?;
                    return Err(r.into());
                }
            },
            other => {
                walk.flush(store)?;
                match other {
                    "checkpoint" => cp = Some((n, parse(n, &lines.buf, "checkpoint")?)),
                    "header" => {
                        return Err(Refusal::format(
                            n,
                            "a second export header (files joined together?)",
                        )
                        .into())
                    }
                    other => {
                        return Err(
                            Refusal::format(n, format!("unknown line type `{other}`")).into()
                        )
                    }
                }
            }
        }
    }
    walk.flush(store)?;
    let Some((cn, cp_line)) = cp else {
        let last = walk.chain.next_seq() - 1;
        let end = lines.last_text;
        return Err(Refusal::new(
            end + 1,
            (last < opened.header.to).then_some(last + 1),
            Check::Format,
            format!(
                "the file ends after line {end} without its checkpoint: it was cut short (the header declares entries up to {}, the last one present is {last})",
                opened.header.to
            ),
        )
        .into());
    };
    let signed = cp_line.signed();
    check_checkpoint(&opened, &walk, cn, &signed)?;
    check_continuity(&opened, &held, walk.rewrite.take(), cn, &signed)?;
    check_root(&held, &opened, &walk.hashes, cn, &signed)?;
    Ok(Plan {
        notes: notes(&opened.unit, &signed),
        unit: opened.unit,
        header: opened.header,
        checkpoint: signed,
        added: walk.added,
        added_digest: hex::encode(walk.digest.finalize()),
        previous: held.accepted_size,
    })
}

/// The lines of an export read one at a time, numbered from 1: a leading
/// UTF-8 byte order mark (some editors add one) dropped, blank lines at the
/// end ignored, a blank line followed by more refused, a line longer than
/// [`MAX_LINE`] refused before it is held whole.
struct Lines<R> {
    input: R,
    source: String,
    /// The current line, without its `\n`.
    buf: Vec<u8>,
    n: usize,
    /// The last line that was not blank.
    last_text: usize,
    /// The first blank line since then.
    blank: Option<usize>,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R, source: &str) -> Lines<R> {
        Lines {
            input,
            source: source.to_string(),
            buf: Vec::new(),
            n: 0,
            last_text: 0,
            blank: None,
        }
    }

    /// Reads the next line that is not blank into `buf`; its number, or
    /// `None` at the end of the file.
    fn next(&mut self) -> Step<Option<usize>> {
        loop {
            self.buf.clear();
            let read = (&mut self.input)
                .take(MAX_LINE + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| Error::File {
                    path: self.source.clone().into(),
                    message: format!("reading line {}: {e}", self.n + 1),
                })?;
            if read == 0 {
                return Ok(None);
            }
            self.n += 1;
            if self.buf.last() == Some(&b'\n') {
                self.buf.pop();
            } else if self.buf.len() as u64 > MAX_LINE {
                return Err(Refusal::format(
                    self.n,
                    format!(
                        "this line is longer than {} MiB: not a line of a ledger export",
                        MAX_LINE >> 20
                    ),
                )
                .into());
            }
            if self.n == 1 && self.buf.starts_with(b"\xef\xbb\xbf") {
                self.buf.drain(..3);
            }
            if self.buf.iter().all(|b| b" \t\r".contains(b)) {
                self.blank.get_or_insert(self.n);
                continue;
            }
            if let Some(b) = self.blank {
                return Err(Refusal::format(b, "blank line inside the export").into());
            }
            self.last_text = self.n;
            return Ok(Some(self.n));
        }
    }
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn parse<'a, T: Deserialize<'a>>(
    line: usize,
    bytes: &'a [u8],
    what: &str,
) -> std::result::Result<T, Refusal> {
    serde_json::from_slice(bytes)
        .map_err(|e| Refusal::format(line, format!("this is not a valid {what} line: {e}")))
}

fn kind_of(line: usize, bytes: &[u8]) -> std::result::Result<String, Refusal> {
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| {
        Refusal::format(
            line,
            format!("this line is not JSON (damaged or cut short): {e}"),
        )
    })?;
    probe
        .kind
        .ok_or_else(|| Refusal::format(line, "this line has no `type`"))
}

/// A header that passed its checks: who the export is from, and where it
/// starts.
struct Opened {
    header: Header,
    key: PublicKey,
    unit: RegisteredUnit,
    /// Entries before the first one in the file, and the hash of the last
    /// of them.
    base_size: u64,
    base_head: String,
    /// `unit NAME`, for messages.
    who: String,
}

/// Step 1: line 1 is a header in this format, from a registered unit,
/// signed by that unit's key.
fn open(store: &Store, first: &[u8]) -> Step<Opened> {
    if kind_of(1, first)? != "header" {
        return Err(Refusal::format(
            1,
            "the file does not start with an export header: not a jiandu ledger export, or its beginning is missing",
        )
        .into());
    }
    let line: HeaderLine = parse(1, first, "header")?;
    let header = line.header;
    if header.format != FORMAT {
        return Err(
            Refusal::format(1, format!("format `{}` is not {FORMAT}", header.format)).into(),
        );
    }
    let key = PublicKey::parse(&header.public_key)
        .map_err(|e| Refusal::format(1, format!("the header's public key is unreadable: {e}")))?;
    if key.fingerprint() != header.fingerprint {
        return Err(Refusal::format(
            1,
            format!(
                "the header's fingerprint {} is not that of its public key ({})",
                header.fingerprint,
                key.fingerprint()
            ),
        )
        .into());
    }
    let unit = match units::get(store, &header.fingerprint)? {
        Some(u) if u.public_key == header.public_key => u,
        _ => return Err(Refusal::new(1, None, Check::Unit, unregistered(store, &header)?).into()),
    };
    if let Err(why) =
        check_signature_either(&key, &header.message(), &header.message_v1(), &line.sig)
    {
        return Err(Refusal::new(
            1,
            None,
            Check::Signature,
            format!(
                "the export header is not signed by {}'s key: {why}",
                unit.label()
            ),
        )
        .into());
    }
    let (base_size, base_head) = match &header.since {
        None => (0, GENESIS.to_string()),
        Some(b) => {
            if parse_hash(&b.root).is_none() || parse_hash(&b.head_hash).is_none() {
                return Err(
                    Refusal::format(1, "the header's `since` hashes are not sha256 hex").into(),
                );
            }
            (b.size, b.head_hash.clone())
        }
    };
    if header.to < base_size {
        return Err(Refusal::format(
            1,
            format!(
                "the header declares entries {}..{}",
                base_size + 1,
                header.to
            ),
        )
        .into());
    }
    Ok(Opened {
        who: format!("unit {}", unit.name),
        header,
        key,
        unit,
        base_size,
        base_head,
    })
}

/// What this office holds for the unit.
struct Held {
    last: Option<Accepted>,
    accepted_size: u64,
    tree: Tree,
    /// The entry before the export, if it was signed (entries after a
    /// signed one must be signed too).
    signed_before: Option<u64>,
}

impl Held {
    fn load(store: &Store, opened: &Opened) -> Step<Held> {
        let fp = &opened.unit.fingerprint;
        let last = central::last_accepted(store, fp)?;
        let tree = held_tree(store, &opened.unit, last.as_ref())?;
        let signed_before = match opened.base_size {
            0 => None,
            n => central::entry(store, fp, n)?
                .and_then(|e| serde_json::from_str::<super::EntryView>(&e.entry).ok())
                .and_then(|e| e.unit_key.map(|_| n)),
        };
        Ok(Held {
            accepted_size: last.as_ref().map_or(0, |a| a.checkpoint.checkpoint.size),
            last,
            tree,
            signed_before,
        })
    }

    fn accepted_at(&self) -> String {
        self.last
            .as_ref()
            .map(|a| a.accepted_at.clone())
            .unwrap_or_default()
    }
}

/// Step 2: the walk over the file's entries, a chunk at a time.
struct Walk<'w, 's> {
    chain: Chain,
    signing: Signing,
    fingerprint: String,
    /// The last entry the header declares.
    to: u64,
    accepted_size: u64,
    accepted_at: String,
    queue: Vec<(usize, EntryLine)>,
    /// Every entry's hash, in order, for the Merkle root.
    hashes: Vec<[u8; 32]>,
    /// The first entry that differs from the accepted one in its place:
    /// reported after the checks of the file itself.
    rewrite: Option<Refusal>,
    added: u64,
    digest: Sha256,
    sink: Option<&'w mut Sink<'s>>,
}

impl<'w, 's> Walk<'w, 's> {
    fn new(opened: &Opened, held: &Held, sink: Option<&'w mut Sink<'s>>) -> Walk<'w, 's> {
        Walk {
            chain: Chain::after(opened.base_size, &opened.base_head)
                .signed_since(held.signed_before),
            signing: Signing::new(Some(opened.key), opened.who.clone()),
            fingerprint: opened.unit.fingerprint.clone(),
            to: opened.header.to,
            accepted_size: held.accepted_size,
            accepted_at: held.accepted_at(),
            queue: Vec::with_capacity(CHUNK),
            hashes: Vec::new(),
            rewrite: None,
            added: 0,
            digest: Sha256::new(),
            sink,
        }
    }

    fn queue(&mut self, store: &Store, n: usize, line: EntryLine) -> Step<()> {
        self.queue.push((n, line));
        if self.queue.len() >= CHUNK {
            self.flush(store)?;
        }
        Ok(())
    }

    /// Walks the queued entries in order, their signatures checked on
    /// every core first.
    fn flush(&mut self, store: &Store) -> Step<()> {
        let queue = std::mem::take(&mut self.queue);
        let signed: Vec<(&[u8], Option<&str>)> = queue
            .iter()
            .map(|(_, l)| (l.entry.as_bytes(), l.sig.as_deref()))
            .collect();
        let valid = chain::strict_signatures(&signed, self.signing.key.as_ref());
        for ((n, line), sig_checked) in queue.iter().zip(valid) {
            self.walk(store, *n, line, sig_checked)?;
        }
        if let Some(sink) = self.sink.as_deref_mut() {
            sink.write()?;
        }
        self.queue = queue;
        self.queue.clear();
        Ok(())
    }

    fn walk(&mut self, store: &Store, n: usize, line: &EntryLine, sig_checked: bool) -> Step<()> {
        if line.seq > self.to && line.seq == self.chain.next_seq() {
            return Err(Refusal::new(
                n,
                line.seq,
                Check::Sequence,
                format!(
                    "the header declares entries up to {}; this one is extra",
                    self.to
                ),
            )
            .into());
        }
        let item = Item {
            seq: line.seq,
            bytes: line.entry.as_bytes(),
            recorded_hash: Some(&line.hash),
            sig: line.sig.as_deref(),
            sig_checked,
        };
        let hash = self
            .chain
            .push(&item, &self.signing)
            .map_err(|f| Refusal::new(n, f.seq, f.check, f.message))?;
        self.hashes.push(hash);
        if line.seq <= self.accepted_size {
            if self.rewrite.is_none() {
                let stored = central::entry(store, &self.fingerprint, line.seq)?;
                if stored.as_ref().map(|s| s.entry.as_str()) != Some(line.entry.as_str()) {
                    self.rewrite = Some(Refusal::new(
                        n,
                        line.seq,
                        Check::Rewrite,
                        format!(
                            "entry {} differs from the entry {} accepted from {} on {}: the unit's past has been rewritten",
                            line.seq, line.seq, self.signing.who, self.accepted_at
                        ),
                    ));
                }
            }
            return Ok(());
        }
        let stored = serde_json::to_vec(line).expect("entry lines serialize");
        self.digest.update(&stored);
        self.digest.update(b"\n");
        self.added += 1;
        if let Some(sink) = self.sink.as_deref_mut() {
            sink.add(&self.fingerprint, self.accepted_size, line.seq, stored);
        }
        Ok(())
    }
}

/// Step 3: the last line is a checkpoint signed by the unit over exactly
/// the entries the header declares.
fn check_checkpoint(
    opened: &Opened,
    walk: &Walk<'_, '_>,
    cn: usize,
    signed: &SignedCheckpoint,
) -> Step<()> {
    let to = opened.header.to;
    let last_seq = walk.chain.next_seq() - 1;
    if last_seq < to {
        return Err(Refusal::new(
            cn,
            last_seq + 1,
            Check::Sequence,
            format!(
                "entry {} is missing: the header declares entries up to {to}, but they end at {last_seq}",
                last_seq + 1
            ),
        )
        .into());
    }
    let c = &signed.checkpoint;
    let refuse = |message: String| Stop::from(Refusal::new(cn, None, Check::Checkpoint, message));
    if let Err(why) = signed.check_signature(&opened.key) {
        return Err(refuse(format!("{why} ({})", opened.who)));
    }
    if c.size != to {
        return Err(refuse(format!(
            "the checkpoint covers {} entries but the header declares {to}",
            c.size
        )));
    }
    let head = walk
        .chain
        .last()
        .map_or(opened.base_head.clone(), |(_, h)| h.to_string());
    if c.head_hash != head {
        return Err(refuse(format!(
            "the checkpoint names {}… as the hash of entry {}, but that entry hashes to {}…",
            short(&c.head_hash),
            c.size,
            short(&head)
        )));
    }
    Ok(())
}

/// Step 4: the export continues what this office accepted from the unit:
/// no gap, no fork, no rewritten entry, and something newer.
fn check_continuity(
    opened: &Opened,
    held: &Held,
    rewrite: Option<Refusal>,
    cn: usize,
    signed: &SignedCheckpoint,
) -> Step<()> {
    let (base_size, accepted_size, who) = (opened.base_size, held.accepted_size, &opened.who);
    if base_size > accepted_size {
        return Err(Refusal::new(
            1,
            None,
            Check::Gap,
            format!(
                "this export starts after entry {base_size}, but this office holds {accepted_size} entries of {who}: entries {}..{base_size} are missing; export again with `jiandu audit export --since {accepted_size}`",
                accepted_size + 1
            ),
        )
        .into());
    }
    if let Some(b) = &opened.header.since {
        let prefix = checkpoint::prefix(&held.tree, b.size);
        if prefix.root() != b.root || checkpoint::head_of(&prefix) != b.head_hash {
            return Err(Refusal::new(
                1,
                None,
                Check::Fork,
                format!(
                    "this export extends a ledger whose first {} entries differ from those accepted from {who} (root {}… here, {}… accepted on {}): the unit's ledger has forked or been rewritten",
                    b.size,
                    short(&b.root),
                    short(&prefix.root()),
                    held.accepted_at()
                ),
            )
            .into());
        }
    }
    if let Some(r) = rewrite {
        return Err(r.into());
    }
    if let Some(a) = &held.last {
        let c = &signed.checkpoint;
        let newer = match (
            parse_time(&c.time),
            parse_time(&a.checkpoint.checkpoint.time),
        ) {
            (Some(new), Some(old)) => new > old,
            _ => false,
        };
        if c.size < accepted_size || (c.size == accepted_size && !newer) {
            return Err(Refusal::new(
                cn,
                None,
                Check::Replay,
                format!(
                    "this export's checkpoint ({} entries, {}) is not newer than the one accepted from {who} on {} ({accepted_size} entries, {}): an old export replayed",
                    c.size, c.time, a.accepted_at, a.checkpoint.checkpoint.time
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// The checkpoint's Merkle root is the root of the accepted entries plus
/// the file's.
fn check_root(
    held: &Held,
    opened: &Opened,
    hashes: &[[u8; 32]],
    cn: usize,
    signed: &SignedCheckpoint,
) -> Step<()> {
    let c = &signed.checkpoint;
    let mut tree = checkpoint::prefix(&held.tree, opened.base_size);
    for h in hashes {
        tree.push(*h);
    }
    if tree.root() != c.root {
        return Err(Refusal::new(
            cn,
            None,
            Check::Checkpoint,
            format!(
                "the checkpoint's Merkle root {}… is not the root of entries 1..{} ({}…)",
                short(&c.root),
                c.size,
                short(&tree.root())
            ),
        )
        .into());
    }
    Ok(())
}

fn notes(unit: &RegisteredUnit, signed: &SignedCheckpoint) -> Vec<String> {
    let c = &signed.checkpoint;
    let mut notes = Vec::new();
    if c.unit != unit.name || c.code != unit.code {
        notes.push(format!(
            "the unit calls itself {} ({}); it is registered here as {}",
            c.unit,
            c.code,
            unit.label()
        ));
    }
    notes
}

/// Where an import puts the entries it reads: sled batches of the new
/// entries, stored past the last accepted checkpoint as the walk goes.
struct Sink<'a> {
    store: &'a Store,
    batch: sled::Batch,
    queued: usize,
    /// The unit and its accepted size, once an entry was added.
    unit: Option<(String, u64)>,
}

impl<'a> Sink<'a> {
    fn new(store: &'a Store) -> Sink<'a> {
        Sink {
            store,
            batch: sled::Batch::default(),
            queued: 0,
            unit: None,
        }
    }

    fn add(&mut self, fingerprint: &str, accepted_size: u64, seq: u64, line: Vec<u8>) {
        self.unit
            .get_or_insert_with(|| (fingerprint.to_string(), accepted_size));
        self.batch.insert(central::key(fingerprint, seq), line);
        self.queued += 1;
    }

    /// Stores what was added since the last write, in one atomic batch.
    fn write(&mut self) -> Step<()> {
        if self.queued > 0 {
            self.store
                .central
                .apply_batch(std::mem::take(&mut self.batch))?;
            self.queued = 0;
        }
        Ok(())
    }

    /// The whole file passed: its entries made durable, then the
    /// checkpoint that accepts them.
    fn accept(mut self, plan: &Plan, source: &str) -> Step<()> {
        self.write()?;
        self.store.central.flush()?;
        let accepted = Accepted {
            checkpoint: plan.checkpoint.clone(),
            accepted_at: crate::time::now_text(),
            source: source.to_string(),
            added: plan.added,
        };
        self.store.central_checkpoints.insert(
            central::key(&plan.unit.fingerprint, plan.checkpoint.checkpoint.size),
            serde_json::to_vec(&accepted).expect("checkpoints serialize"),
        )?;
        self.store.flush()?;
        Ok(())
    }

    /// The file was refused: the entries stored for it are removed (they
    /// are past the last accepted checkpoint, so nothing read them; if
    /// removing fails they stay unread until the next import).
    fn discard(self) {
        let Some((fingerprint, accepted_size)) = self.unit else {
            return;
        };
        let from = central::key(&fingerprint, accepted_size + 1);
        let to = central::key(&fingerprint, u64::MAX);
        let mut batch = sled::Batch::default();
        for key in self.store.central.range(from..=to).keys() {
            match key {
                Ok(k) => batch.remove(k),
                Err(e) => {
                    tracing::warn!("entries of a refused import were left unread: {e}");
                    return;
                }
            }
        }
        if let Err(e) = self.store.central.apply_batch(batch) {
            tracing::warn!("entries of a refused import were left unread: {e}");
        }
    }
}

/// The tree of a unit's stored entries, checked against the last accepted
/// checkpoint: a damaged central copy stops the import rather than being
/// built upon.
fn held_tree(store: &Store, unit: &RegisteredUnit, last: Option<&Accepted>) -> Result<Tree> {
    let mut tree = Tree::new();
    for item in central::entries(store, &unit.fingerprint) {
        let (seq, line) = item?;
        let hash = line
            .ok()
            .filter(|l| l.seq == seq && seq == tree.len() + 1)
            .and_then(|l| parse_hash(&crate::ledger::hash(l.entry.as_bytes())));
        match hash {
            Some(h) => tree.push(h),
            None => return Err(damaged(unit, seq)),
        }
    }
    let expected = last.map(|a| {
        (
            a.checkpoint.checkpoint.size,
            a.checkpoint.checkpoint.root.clone(),
        )
    });
    match expected {
        None if tree.is_empty() => Ok(tree),
        Some((size, root)) if size == tree.len() && root == tree.root() => Ok(tree),
        _ => Err(damaged(unit, tree.len())),
    }
}

fn damaged(unit: &RegisteredUnit, seq: u64) -> Error {
    Error::Ledger(format!(
        "this office's copy of {}'s ledger does not match the last checkpoint accepted from it (near entry {seq}); nothing was imported: run `jiandu audit verify --unit {}`",
        unit.label(),
        unit.fingerprint
    ))
}

/// Why the unit of `header` is not registered, said as helpfully as
/// possible.
fn unregistered(store: &Store, header: &Header) -> Result<String> {
    let same = units::list(store)?
        .into_iter()
        .find(|u| u.code == header.code || u.name == header.unit);
    Ok(match same {
        Some(u) => format!(
            "this export is signed with key {}, but {} is registered with key {}: signed with the wrong key (if the unit really has a new key, register it with `jiandu audit unit add`)",
            header.fingerprint,
            u.label(),
            u.fingerprint
        ),
        None => format!(
            "unit {} ({}) with key {} is not registered at this office; register it first: `jiandu audit unit add {} --name … --code …`",
            header.unit, header.code, header.fingerprint, header.public_key
        ),
    })
}

fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(text).ok()
}
