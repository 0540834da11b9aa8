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
//! Only then are the new entries and the checkpoint stored, in one
//! transaction. [`check`] does all of it without storing anything.

use super::central::{self, Accepted};
use super::chain::{Chain, Item, Signing};
use super::checkpoint::{self, SignedCheckpoint};
use super::export::{CheckpointLine, EntryLine, Header, HeaderLine, FORMAT};
use super::merkle::{parse_hash, Tree};
use super::units::{self, RegisteredUnit};
use super::{check_signature, short, Check};
use crate::ledger::GENESIS;
use crate::{Error, Result, Store};
use jiandu_registry::keys::PublicKey;
use serde::{Deserialize, Serialize};

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

/// An export that passed every check, ready to store.
#[derive(Debug, Clone)]
pub struct Plan {
    pub unit: RegisteredUnit,
    pub header: Header,
    pub checkpoint: SignedCheckpoint,
    /// Entries after the last accepted checkpoint, to store.
    pub new_entries: Vec<EntryLine>,
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

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The lines of a file, numbered from 1, without a leading UTF-8 byte
/// order mark (some editors add one) and without trailing blank lines.
fn lines(bytes: &[u8]) -> Vec<(usize, &[u8])> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut lines: Vec<(usize, &[u8])> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .collect();
    while lines
        .last()
        .is_some_and(|(_, l)| l.iter().all(|b| b" \t\r".contains(b)))
    {
        lines.pop();
    }
    lines
}

fn parse<'a, T: Deserialize<'a>>(
    line: usize,
    bytes: &'a [u8],
    what: &str,
) -> std::result::Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|e| {
        Refusal::new(
            line,
            None,
            Check::Format,
            format!("this is not a valid {what} line: {e}"),
        )
    })
}

fn kind_of(line: usize, bytes: &[u8]) -> std::result::Result<String, Refusal> {
    if bytes.iter().all(|b| b" \t\r".contains(b)) {
        return Err(Refusal::new(
            line,
            None,
            Check::Format,
            "blank line inside the export",
        ));
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| {
        Refusal::new(
            line,
            None,
            Check::Format,
            format!("this line is not JSON (damaged or cut short): {e}"),
        )
    })?;
    probe
        .kind
        .ok_or_else(|| Refusal::new(line, None, Check::Format, "this line has no `type`"))
}

/// Checks an export file against this office's register and what it
/// already accepted, without storing anything. The outer error is a store
/// failure; the inner one is the reason the file is refused.
pub fn check(store: &Store, bytes: &[u8]) -> Result<std::result::Result<Plan, Refusal>> {
    let lines = lines(bytes);
    let Some(&(_, first)) = lines.first() else {
        return Ok(Err(Refusal::new(
            1,
            None,
            Check::Format,
            "the file is empty",
        )));
    };

    // 1. The header.
    macro_rules! refuse {
        ($r:expr) => {
            return Ok(Err($r))
        };
    }
    macro_rules! tryr {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(r) => refuse!(r),
            }
        };
    }
    if tryr!(kind_of(1, first)) != "header" {
        refuse!(Refusal::new(
            1,
            None,
            Check::Format,
            "the file does not start with an export header: not a jiandu ledger export, or its beginning is missing"
        ));
    }
    let header_line: HeaderLine = tryr!(parse(1, first, "header"));
    let header = header_line.header.clone();
    if header.format != FORMAT {
        refuse!(Refusal::new(
            1,
            None,
            Check::Format,
            format!("format `{}` is not {FORMAT}", header.format)
        ));
    }
    let key = tryr!(
        PublicKey::parse(&header.public_key).map_err(|e| Refusal::new(
            1,
            None,
            Check::Format,
            format!("the header's public key is unreadable: {e}")
        ))
    );
    if key.fingerprint() != header.fingerprint {
        refuse!(Refusal::new(
            1,
            None,
            Check::Format,
            format!(
                "the header's fingerprint {} is not that of its public key ({})",
                header.fingerprint,
                key.fingerprint()
            )
        ));
    }
    let unit = match units::get(store, &header.fingerprint)? {
        Some(u) if u.public_key == header.public_key => u,
        _ => refuse!(Refusal::new(
            1,
            None,
            Check::Unit,
            unregistered(store, &header)?
        )),
    };
    if let Err(why) = check_signature(&key, &header.message(), &header_line.sig) {
        refuse!(Refusal::new(
            1,
            None,
            Check::Signature,
            format!(
                "the export header is not signed by {}'s key: {why}",
                unit.label()
            )
        ));
    }
    let (base_size, base_head) = match &header.since {
        None => (0, GENESIS.to_string()),
        Some(b) => {
            if parse_hash(&b.root).is_none() || parse_hash(&b.head_hash).is_none() {
                refuse!(Refusal::new(
                    1,
                    None,
                    Check::Format,
                    "the header's `since` hashes are not sha256 hex"
                ));
            }
            (b.size, b.head_hash.clone())
        }
    };
    if header.to < base_size {
        refuse!(Refusal::new(
            1,
            None,
            Check::Format,
            format!(
                "the header declares entries {}..{}",
                base_size + 1,
                header.to
            )
        ));
    }
    let who = format!("unit {}", unit.name);

    // What this office holds for the unit.
    let last = central::last_accepted(store, &unit.fingerprint)?;
    let accepted_size = last.as_ref().map_or(0, |a| a.checkpoint.checkpoint.size);
    let held = held_tree(store, &unit, last.as_ref())?;
    let signed_before = match base_size {
        0 => None,
        n => central::entry(store, &unit.fingerprint, n)?
            .and_then(|e| serde_json::from_str::<super::EntryView>(&e.entry).ok())
            .and_then(|e| e.unit_key.map(|_| n)),
    };

    // 2. Entries, 3. the checkpoint.
    let signing = Signing::new(Some(key), who.clone());
    let mut chain = Chain::after(base_size, &base_head).signed_since(signed_before);
    let mut entries: Vec<(usize, EntryLine, [u8; 32])> = Vec::new();
    let mut cp: Option<(usize, CheckpointLine)> = None;
    for &(n, bytes) in &lines[1..] {
        if let Some((cn, _)) = &cp {
            refuse!(Refusal::new(
                n,
                None,
                Check::Format,
                format!("line {cn} is the checkpoint that ends the export, yet more lines follow (files joined together?)")
            ));
        }
        match tryr!(kind_of(n, bytes)).as_str() {
            "entry" => {
                let line: EntryLine = tryr!(parse(n, bytes, "entry"));
                if line.seq > header.to && line.seq == chain.next_seq() {
                    refuse!(Refusal::new(
                        n,
                        line.seq,
                        Check::Sequence,
                        format!(
                            "the header declares entries up to {}; this one is extra",
                            header.to
                        )
                    ));
                }
                let hash = tryr!(chain
                    .push(
                        &Item {
                            seq: line.seq,
                            bytes: line.entry.as_bytes(),
                            recorded_hash: Some(&line.hash),
                            sig: line.sig.as_deref(),
                            sig_checked: false,
                        },
                        &signing,
                    )
                    .map_err(|f| Refusal::new(n, f.seq, f.check, f.message)));
                entries.push((n, line, hash));
            }
            "checkpoint" => cp = Some((n, tryr!(parse(n, bytes, "checkpoint")))),
            "header" => refuse!(Refusal::new(
                n,
                None,
                Check::Format,
                "a second export header (files joined together?)"
            )),
            other => refuse!(Refusal::new(
                n,
                None,
                Check::Format,
                format!("unknown line type `{other}`")
            )),
        }
    }
    let end = lines.last().map_or(1, |l| l.0);
    let last_seq = chain.next_seq() - 1;
    let Some((cn, cp_line)) = cp else {
        refuse!(Refusal::new(
            end + 1,
            (last_seq < header.to).then_some(last_seq + 1),
            Check::Format,
            format!(
                "the file ends after line {end} without its checkpoint: it was cut short (the header declares entries up to {}, the last one present is {})",
                header.to, last_seq
            )
        ));
    };
    if last_seq < header.to {
        refuse!(Refusal::new(
            cn,
            last_seq + 1,
            Check::Sequence,
            format!(
                "entry {} is missing: the header declares entries up to {}, but they end at {last_seq}",
                last_seq + 1,
                header.to
            )
        ));
    }
    let signed_cp = cp_line.signed();
    let c = &signed_cp.checkpoint;
    if let Err(why) = signed_cp.check_signature(&key) {
        refuse!(Refusal::new(
            cn,
            None,
            Check::Checkpoint,
            format!("{why} ({who})")
        ));
    }
    if c.size != header.to {
        refuse!(Refusal::new(
            cn,
            None,
            Check::Checkpoint,
            format!(
                "the checkpoint covers {} entries but the header declares {}",
                c.size, header.to
            )
        ));
    }
    let head = chain
        .last()
        .map_or(base_head.clone(), |(_, h)| h.to_string());
    if c.head_hash != head {
        refuse!(Refusal::new(
            cn,
            None,
            Check::Checkpoint,
            format!(
                "the checkpoint names {}… as the hash of entry {}, but that entry hashes to {}…",
                short(&c.head_hash),
                c.size,
                short(&head)
            )
        ));
    }

    // 4. Continuity with what was accepted.
    let accepted_at = last
        .as_ref()
        .map(|a| a.accepted_at.clone())
        .unwrap_or_default();
    if base_size > accepted_size {
        refuse!(Refusal::new(
            1,
            None,
            Check::Gap,
            format!(
                "this export starts after entry {base_size}, but this office holds {} entries of {who}: entries {}..{base_size} are missing; export again with `jiandu audit export --since {accepted_size}`",
                accepted_size,
                accepted_size + 1
            )
        ));
    }
    if let Some(b) = &header.since {
        let prefix = checkpoint::prefix(&held, b.size);
        if prefix.root() != b.root || checkpoint::head_of(&prefix) != b.head_hash {
            refuse!(Refusal::new(
                1,
                None,
                Check::Fork,
                format!(
                    "this export extends a ledger whose first {} entries differ from those accepted from {who} (root {}… here, {}… accepted on {accepted_at}): the unit's ledger has forked or been rewritten",
                    b.size,
                    short(&b.root),
                    short(&prefix.root())
                )
            ));
        }
    }
    for (n, line, _) in &entries {
        if line.seq > accepted_size {
            break;
        }
        let stored = central::entry(store, &unit.fingerprint, line.seq)?;
        if stored.as_ref().map(|s| s.entry.as_str()) != Some(line.entry.as_str()) {
            refuse!(Refusal::new(
                *n,
                line.seq,
                Check::Rewrite,
                format!(
                    "entry {} differs from the entry {} accepted from {who} on {accepted_at}: the unit's past has been rewritten",
                    line.seq, line.seq
                )
            ));
        }
    }
    let mut tree = checkpoint::prefix(&held, base_size);
    for (_, _, h) in &entries {
        tree.push(*h);
    }
    if tree.root() != c.root {
        refuse!(Refusal::new(
            cn,
            None,
            Check::Checkpoint,
            format!(
                "the checkpoint's Merkle root {}… is not the root of entries 1..{} ({}…)",
                short(&c.root),
                c.size,
                short(&tree.root())
            )
        ));
    }
    if let Some(a) = &last {
        let newer = match (
            parse_time(&c.time),
            parse_time(&a.checkpoint.checkpoint.time),
        ) {
            (Some(new), Some(old)) => new > old,
            _ => false,
        };
        if c.size < accepted_size || (c.size == accepted_size && !newer) {
            refuse!(Refusal::new(
                cn,
                None,
                Check::Replay,
                format!(
                    "this export's checkpoint ({} entries, {}) is not newer than the one accepted from {who} on {} ({} entries, {}): an old export replayed",
                    c.size, c.time, a.accepted_at, accepted_size, a.checkpoint.checkpoint.time
                )
            ));
        }
    }

    let mut notes = Vec::new();
    if c.unit != unit.name || c.code != unit.code {
        notes.push(format!(
            "the unit calls itself {} ({}); it is registered here as {}",
            c.unit,
            c.code,
            unit.label()
        ));
    }
    Ok(Ok(Plan {
        unit,
        header,
        checkpoint: signed_cp,
        new_entries: entries
            .into_iter()
            .filter(|(_, l, _)| l.seq > accepted_size)
            .map(|(_, l, _)| l)
            .collect(),
        previous: accepted_size,
        notes,
    }))
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

/// Checks an export and, if it passes, stores its new entries and its
/// checkpoint in one transaction.
pub fn import(
    store: &Store,
    bytes: &[u8],
    source: &str,
) -> Result<std::result::Result<Imported, Refusal>> {
    let plan = match check(store, bytes)? {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    let fp = plan.unit.fingerprint.clone();
    let accepted = Accepted {
        checkpoint: plan.checkpoint.clone(),
        accepted_at: crate::time::now_text(),
        source: source.to_string(),
        added: plan.new_entries.len() as u64,
    };
    // The entries in one atomic batch, then the checkpoint that accepts
    // them: until it is stored, entries past the last accepted checkpoint
    // are not read (see [`central::entries`]), so a crash in between
    // accepts nothing. A batch keeps a large import's memory to its
    // entries (a transaction over a million writes took gigabytes).
    let mut batch = sled::Batch::default();
    for line in &plan.new_entries {
        batch.insert(
            central::key(&fp, line.seq),
            serde_json::to_vec(line).expect("entry lines serialize"),
        );
    }
    store.central.apply_batch(batch)?;
    store.central.flush()?;
    store.central_checkpoints.insert(
        central::key(&fp, accepted.checkpoint.checkpoint.size),
        serde_json::to_vec(&accepted).expect("checkpoints serialize"),
    )?;
    store.flush()?;
    Ok(Ok(Imported {
        unit: plan.unit,
        previous: plan.previous,
        added: accepted.added,
        size: accepted.checkpoint.checkpoint.size,
        root: accepted.checkpoint.checkpoint.root,
        notes: plan.notes,
    }))
}
