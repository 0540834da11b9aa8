//! `jiandu audit verify`: walk a ledger — this store's, or a unit's ledger
//! imported at a central office — and name the first entry that fails, the
//! check it fails (sequence, parse, hash, signature, chain, head,
//! checkpoint, text) and why.
//!
//! For this store's ledger the walk also checks the model text kept beside
//! entries ([`crate::ledger::aside`]): each text matches the salted hash its
//! entry records, and a text is missing only where a `text-redacted` entry
//! removed it. Redactions are reported, not faults.

use super::central;
use super::chain::{on_every_core, valid_signatures_of, Chain, Item, Prepared, Signing};
use super::merkle::Tree;
use super::units::RegisteredUnit;
use super::{short, Check, Fault};
use crate::ledger::checkpoint::SignedCheckpoint;
use crate::ledger::head::Head;
use crate::ledger::{self, aside, Problem, RedactionNote, Verification};
use crate::{Error, Result, Store};
use jiandu_registry::keys::PublicKey;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A verification and the tree of the entries that verified.
pub(crate) struct Walk {
    pub verification: Verification,
    pub tree: Tree,
}

/// One stored entry, as read for the walk.
struct Stored {
    bytes: Vec<u8>,
    recorded_hash: Option<String>,
    sig: Option<String>,
}

type Checkpoints = BTreeMap<u64, std::result::Result<SignedCheckpoint, String>>;

/// What an entry says about model text: the hash of its own, kept beside
/// it, and the entry whose text it redacts.
#[derive(Deserialize, Default)]
#[serde(default)]
struct TextLink {
    at: String,
    operator: String,
    run: Option<TextRun>,
    review: Option<TextReview>,
    redaction: Option<TextRedaction>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TextReview {
    text_sha256: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TextRun {
    error: Option<TextError>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TextError {
    message_sha256: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TextRedaction {
    seq: u64,
    reason: String,
}

/// Model text on the record, gathered during a walk.
#[derive(Default)]
struct Texts {
    /// Entries whose text is beside them, with the hash they record.
    committed: BTreeMap<u64, String>,
    redactions: Vec<RedactionNote>,
}

impl Texts {
    fn add(&mut self, seq: u64, bytes: &[u8]) {
        // Most entries say nothing about model text: looking for the two
        // keys first spares parsing them again.
        let says = |key: &[u8]| memchr::memmem::find(bytes, key).is_some();
        if !says(b"\"message_sha256\"") && !says(b"\"text_sha256\"") && !says(b"\"redaction\"") {
            return;
        }
        let Ok(link) = serde_json::from_slice::<TextLink>(bytes) else {
            return;
        };
        let person = link.review.and_then(|r| r.text_sha256);
        if let Some(h) = link.run.and_then(|r| r.error?.message_sha256).or(person) {
            self.committed.insert(seq, h);
        }
        if let Some(r) = link.redaction {
            self.redactions.push(RedactionNote {
                seq,
                target: r.seq,
                operator: link.operator,
                at: link.at,
                reason: r.reason,
            });
        }
    }

    /// The first fault of the texts beside this store's entries.
    fn check(&self, store: &Store) -> Result<Option<Fault>> {
        let redacted: BTreeMap<u64, u64> =
            self.redactions.iter().map(|r| (r.target, r.seq)).collect();
        let mut faults = BTreeMap::new();
        let mut present = std::collections::BTreeSet::new();
        for item in aside::all(store) {
            let (seq, stored) = item?;
            present.insert(seq);
            let why = match (stored, self.committed.get(&seq), redacted.get(&seq)) {
                (Err(why), _, _) => why,
                (Ok(_), None, _) => format!(
                    "model text is kept beside entry {seq}, which records none: it was put there around the ledger"
                ),
                (Ok(_), Some(_), Some(by)) => format!(
                    "the model text of entry {seq} was redacted by entry {by}, yet it is beside the entry again"
                ),
                (Ok(a), Some(h), None) if &a.commitment() != h => format!(
                    "the model text kept beside entry {seq} does not match the hash the entry records ({}…): edited after it was written",
                    short(h)
                ),
                (Ok(_), Some(_), None) => continue,
            };
            faults.entry(seq).or_insert(why);
        }
        for seq in self.committed.keys() {
            if !present.contains(seq) && !redacted.contains_key(seq) {
                faults.entry(*seq).or_insert_with(|| {
                    format!(
                        "the model text of entry {seq} is gone, and no redaction on the record removed it"
                    )
                });
            }
        }
        Ok(faults
            .into_iter()
            .next()
            .map(|(seq, why)| Fault::new(seq, Check::Text, why)))
    }
}

/// Entries whose signatures are checked together, ahead of the walk.
const BATCH: usize = 4096;

/// Reads an entry's bytes (with its sequence number) beside the walk, on
/// its worker threads, for a caller that wants something of every entry
/// the walk reaches: one pass over the ledger instead of two.
pub type Observe<'o, T> = &'o (dyn Fn(u64, &[u8]) -> Option<T> + Sync);

/// What a walk found, and what its observer kept of each entry it passed
/// (in order).
type Walked<T> = (Chain, Tree, u64, u64, Option<Fault>, Vec<(u64, T)>);

/// Walks `items` (entries from 1, in stored order) and the checkpoints
/// that cover them; stops at the first fault.
fn walk<T: Send>(
    items: impl Iterator<Item = Result<(u64, std::result::Result<Stored, Fault>)>>,
    checkpoints: &Checkpoints,
    signing: &Signing,
    texts: &mut Texts,
    observe: Observe<'_, T>,
) -> Result<Walked<T>> {
    let mut observed = Vec::new();
    let mut chain = Chain::new();
    let mut tree = Tree::new();
    let mut count = 0u64;
    let mut good = 0u64;
    let check_at = |size: u64, tree: &Tree| -> Option<Fault> {
        let cp = checkpoints.get(&size)?;
        let why = match (cp, &signing.key) {
            (Err(why), _) => why.clone(),
            (Ok(_), None) => format!(
                "a checkpoint covering {size} entries is stored, but {} has no key to check it with",
                signing.who
            ),
            (Ok(cp), Some(key)) => cp.check(key, tree).err()?,
        };
        Some(Fault::new(size, Check::Checkpoint, why))
    };
    if let Some(f) = check_at(0, &tree) {
        return Ok((chain, tree, count, good, Some(f), observed));
    }
    good += u64::from(checkpoints.contains_key(&0));
    // Signatures are checked ahead on other threads, a batch at a time,
    // while the walk (in order) goes through the batch before.
    type Batch = Vec<(u64, std::result::Result<Stored, Fault>)>;
    let key = signing.key.as_ref();
    type Ahead<T> = (Prepared, Option<T>);
    let check = |batch: Batch| -> (Batch, Vec<Ahead<T>>, Vec<bool>) {
        let signed: Vec<(&[u8], Option<&str>, Option<&str>)> = batch
            .iter()
            .map(|(_, s)| match s {
                Ok(s) => (
                    s.bytes.as_slice(),
                    s.recorded_hash.as_deref(),
                    s.sig.as_deref(),
                ),
                Err(_) => (&[][..], None, None),
            })
            .collect();
        let checked = valid_signatures_of(&signed, key);
        let prepared = on_every_core(&batch, |part| {
            part.iter()
                .map(|(seq, stored)| match stored {
                    Ok(s) => (Prepared::of(&s.bytes), observe(*seq, &s.bytes)),
                    Err(_) => (Prepared::of(&[]), None),
                })
                .collect()
        });
        (batch, prepared, checked)
    };
    let mut items = items;
    let mut read = |n: usize| -> Result<Batch> { items.by_ref().take(n).collect() };
    std::thread::scope(|scope| -> Result<_> {
        let first = read(BATCH)?;
        let mut ahead = (!first.is_empty()).then(|| scope.spawn(move || check(first)));
        while let Some(job) = ahead.take() {
            let next = read(BATCH)?;
            if !next.is_empty() {
                ahead = Some(scope.spawn(move || check(next)));
            }
            let (batch, prepared, checked) = job.join().expect("signature checks do not panic");
            for (((seq, stored), (prepared, seen)), sig_checked) in
                batch.into_iter().zip(prepared).zip(checked)
            {
                count += 1;
                let stored = match stored {
                    Ok(s) => s,
                    Err(f) => return Ok((chain, tree, count, good, Some(f), observed)),
                };
                let pushed = chain.push_prepared(
                    &Item {
                        seq,
                        bytes: &stored.bytes,
                        recorded_hash: stored.recorded_hash.as_deref(),
                        sig: stored.sig.as_deref(),
                        sig_checked,
                    },
                    prepared,
                    signing,
                );
                match pushed {
                    Ok(hash) => tree.push(hash),
                    Err(f) => return Ok((chain, tree, count, good, Some(f), observed)),
                }
                observed.extend(seen.map(|t| (seq, t)));
                texts.add(seq, &stored.bytes);
                if let Some(f) = check_at(seq, &tree) {
                    return Ok((chain, tree, count, good, Some(f), observed));
                }
                good += u64::from(checkpoints.contains_key(&seq));
            }
        }
        Ok((chain, tree, count, good, None, observed))
    })
}

/// The fault of a checkpoint that covers more entries than `held`.
fn checkpoint_beyond(size: u64, held: u64) -> Fault {
    Fault::new(
        size,
        Check::Checkpoint,
        format!(
            "a signed checkpoint covers {size} entries, but the ledger holds only {held}: entries {}..{size} were removed",
            held + 1
        ),
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    chain: &Chain,
    tree: Tree,
    count: u64,
    checkpoints: u64,
    fingerprint: Option<String>,
    head_hash: Option<String>,
    fault: Option<Fault>,
    texts: Texts,
) -> Walk {
    let ok = fault.is_none();
    Walk {
        verification: Verification {
            entries: count,
            head_hash,
            problem: fault.map(|f| Problem {
                seq: f.seq.unwrap_or(0),
                check: f.check.as_str(),
                message: f.message,
            }),
            signed: chain.signed,
            unsigned: chain.unsigned,
            checkpoints,
            fingerprint,
            root: ok.then(|| tree.root()),
            redactions: texts.redactions,
        },
        tree,
    }
}

/// Verifies this store's ledger.
pub fn local(store: &Store) -> Result<Verification> {
    Ok(local_walk(store)?.verification)
}

/// [`local`], with `observe` reading every entry the walk verifies (beside
/// the walk, on its worker threads); what it returned, by entry, in order.
/// Entries after a fault are not observed.
pub fn local_observed<T: Send>(
    store: &Store,
    observe: Observe<'_, T>,
) -> Result<(Verification, Vec<(u64, T)>)> {
    let (walk, observed) = local_walk_observed(store, observe)?;
    Ok((walk.verification, observed))
}

pub(crate) fn local_walk(store: &Store) -> Result<Walk> {
    Ok(local_walk_observed(store, &|_, _| None::<()>)?.0)
}

fn local_walk_observed<T: Send>(
    store: &Store,
    observe: Observe<'_, T>,
) -> Result<(Walk, Vec<(u64, T)>)> {
    let unit = crate::unit::current(store)?;
    let key = match &unit {
        Some(u) => Some(PublicKey::parse(&u.public_key).map_err(|e| {
            Error::Ledger(format!(
                "the public key recorded for unit {} is unreadable: {e}",
                u.name
            ))
        })?),
        None => None,
    };
    let fingerprint = unit.as_ref().map(|u| u.fingerprint.clone());
    let signing = Signing::new(
        key,
        unit.as_ref()
            .map(|u| format!("unit {}", u.name))
            .unwrap_or_else(|| "this store (it has no unit)".into()),
    );
    let checkpoints = crate::ledger::checkpoint::local_all(store)?;
    // Entries and their head are written in one transaction, so the head
    // read now bounds the entries to check; entries after it were either
    // appended since (the head has moved on) or written around the ledger.
    let full_head = ledger::head::read(store)?;
    let head = full_head.as_ref().map(|h| (h.seq, h.hash.clone()));
    let head_hash = head.as_ref().map(|h| h.1.clone());
    let limit = head.as_ref().map_or(0, |h| h.0);
    // Seals are read beside the entries, in the same key order, rather
    // than looked up one by one.
    let mut seals = ledger::seals(store).peekable();
    let items = ledger::entries(store, 1)
        .take_while(|item| item.as_ref().map_or(true, |(seq, _)| *seq <= limit))
        .map(move |item| {
            let (seq, bytes) = item?;
            while seals
                .peek()
                .is_some_and(|s| s.as_ref().is_ok_and(|(at, _)| *at < seq))
            {
                seals.next();
            }
            let sealed = match seals.peek() {
                Some(Ok((at, _))) if *at == seq => seals.next().transpose()?.map(|(_, raw)| raw),
                Some(Err(_)) => return Err(seals.next().and_then(|s| s.err()).expect("an error")),
                _ => None,
            };
            Ok((
                seq,
                match ledger::parse_seal(seq, sealed.as_deref()) {
                    Ok(seal) => Ok(Stored {
                        bytes,
                        recorded_hash: seal.as_ref().map(|s| s.hash.clone()),
                        sig: seal.and_then(|s| s.sig),
                    }),
                    Err(why) => Err(Fault::new(seq, Check::Signature, why)),
                },
            ))
        });
    let mut texts = Texts::default();
    let (chain, tree, count, good, fault, observed) =
        walk(items, &checkpoints, &signing, &mut texts, observe)?;
    let moved_past =
        |n: u64| -> Result<bool> { Ok(ledger::head(store)?.is_some_and(|(seq, _)| seq >= n)) };
    let mut fault = fault;
    if fault.is_none() {
        if let Some((&size, _)) = checkpoints.range(tree.len() + 1..).next() {
            if !moved_past(size)? {
                fault = Some(checkpoint_beyond(size, tree.len()));
            }
        }
    }
    if fault.is_none() {
        let last = chain.last();
        fault = match (&head, last) {
            (None, _) => None,
            (Some((hs, hh)), Some((seq, hash))) if *hs == seq && hh == hash => None,
            (Some((hs, _)), Some((seq, _))) if *hs == seq => Some(Fault::new(
                seq,
                Check::Hash,
                format!("entry {seq} does not match the ledger head's hash (edited after it was written)"),
            )),
            (Some((hs, _)), _) => Some(Fault::new(
                *hs,
                Check::Head,
                format!(
                    "the ledger head names entry {hs} but the last entry is {}",
                    last.map_or(0, |l| l.0)
                ),
            )),
        };
    }
    if fault.is_none() {
        if let Some((seq, _)) = ledger::entries(store, limit + 1).next().transpose()? {
            if !moved_past(seq)? {
                fault = Some(Fault::new(
                    seq,
                    Check::Head,
                    match &head {
                        None => "entries exist but the ledger head is missing".to_string(),
                        Some((hs, _)) => format!(
                            "entry {seq} follows entry {hs}, the last one the ledger head names: it was written around the ledger, or the head was rolled back"
                        ),
                    },
                ));
            }
        }
    }
    if let (None, Some(h)) = (&fault, &full_head) {
        fault = check_head(h, &tree, &signing, chain.first_signed().is_some());
    }
    if fault.is_none() {
        fault = texts.check(store)?;
    }
    let walk = finish(
        &chain,
        tree,
        count,
        good,
        fingerprint,
        head_hash,
        fault,
        texts,
    );
    Ok((walk, observed))
}

/// Checks the head of a ledger whose entries verified up to the one it
/// names: its Merkle frontier gives the entries' root, and its signature is
/// the unit's (required once entries are signed; a head written by an
/// earlier version has neither).
fn check_head(head: &Head, tree: &Tree, signing: &Signing, signed: bool) -> Option<Fault> {
    let fault = |message: String| Some(Fault::new(head.seq, Check::Head, message));
    match head.frontier() {
        Err(why) => return fault(why),
        Ok(Some(f)) => {
            let root = tree.root();
            if f.root() != root || head.root.as_deref() != Some(f.root().as_str()) {
                return fault(format!(
                    "the ledger head's Merkle frontier gives root {}…, but entries 1..{} give {}…: the head was rewritten",
                    short(&f.root()),
                    head.seq,
                    short(&root)
                ));
            }
        }
        Ok(None) => {}
    }
    match (&head.sig, &signing.key) {
        (Some(sig), Some(key)) => {
            if let Err(why) = crate::ledger::check_signature_either(
                key,
                &head.message(),
                &head.message_v1(),
                sig,
            ) {
                return fault(format!(
                    "the ledger head is not signed by {}: {why}; entries were cut off the end, or the head was rewritten",
                    signing.who
                ));
            }
        }
        (Some(_), None) => {
            return fault(format!(
                "the ledger head is signed, but {} has no key to check it",
                signing.who
            ))
        }
        (None, _) if signed && head.frontier.is_some() => {
            return fault(format!(
                "the ledger head is not signed, though entry {} is: entries were cut off the end, or the head was rewritten",
                head.seq
            ))
        }
        (None, _) => {}
    }
    None
}

/// Verifies the ledger imported from `unit`: every entry against the
/// unit's registered key, the chain, and every checkpoint accepted from it.
pub fn central(store: &Store, unit: &RegisteredUnit) -> Result<Verification> {
    let key = unit.key()?;
    let fp = unit.fingerprint.as_str();
    let signing = Signing::new(Some(key), format!("unit {}", unit.name));
    let accepted = central::accepted(store, fp)?;
    let checkpoints: Checkpoints = accepted
        .iter()
        .map(|(size, a)| {
            (
                *size,
                a.as_ref()
                    .map(|a| a.checkpoint.clone())
                    .map_err(Clone::clone),
            )
        })
        .collect();
    let items = central::entries(store, fp).map(|item| {
        let (seq, line) = item?;
        Ok((
            seq,
            match line {
                Err(why) => Err(Fault::new(seq, Check::Parse, why)),
                Ok(l) if l.seq != seq => Err(Fault::new(
                    seq,
                    Check::Sequence,
                    format!("the entry stored as {seq} says it is entry {}", l.seq),
                )),
                Ok(l) => Ok(Stored {
                    bytes: l.entry.into_bytes(),
                    recorded_hash: Some(l.hash),
                    sig: l.sig,
                }),
            },
        ))
    });
    // Imports carry entries, not the text beside them: only redactions
    // are gathered here.
    let mut texts = Texts::default();
    let (chain, tree, count, good, fault, _) = walk(
        items,
        &checkpoints,
        &signing,
        &mut texts,
        &|_, _| None::<()>,
    )?;
    let covered = checkpoints.keys().next_back().copied().unwrap_or(0);
    let fault = fault
        .or_else(|| {
            checkpoints
                .range(tree.len() + 1..)
                .next()
                .map(|(&size, _)| checkpoint_beyond(size, tree.len()))
        })
        .or_else(|| {
            (tree.len() > covered).then(|| {
                Fault::new(
                    covered + 1,
                    Check::Checkpoint,
                    format!(
                        "entries {}..{} are stored, but no checkpoint accepted from {} covers them",
                        covered + 1,
                        tree.len(),
                        unit.label()
                    ),
                )
            })
        });
    let head_hash = chain.last().map(|(_, h)| h.to_string());
    Ok(finish(
        &chain,
        tree,
        count,
        good,
        Some(unit.fingerprint.clone()),
        head_hash,
        fault,
        texts,
    )
    .verification)
}
