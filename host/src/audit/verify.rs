//! `jiandu audit verify`: walk a ledger — this store's, or a unit's ledger
//! imported at a central office — and name the first entry that fails, the
//! check it fails (sequence, parse, hash, signature, chain, head,
//! checkpoint) and why.

use super::central;
use super::chain::{Chain, Item, Signing};
use super::checkpoint::SignedCheckpoint;
use super::merkle::Tree;
use super::units::RegisteredUnit;
use super::{Check, Fault};
use crate::ledger::{self, Problem, Verification};
use crate::{Error, Result, Store};
use jiandu_registry::keys::PublicKey;
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

/// Walks `items` (entries from 1, in stored order) and the checkpoints
/// that cover them; stops at the first fault.
fn walk(
    items: impl Iterator<Item = Result<(u64, std::result::Result<Stored, Fault>)>>,
    checkpoints: &Checkpoints,
    signing: &Signing,
) -> Result<(Chain, Tree, u64, u64, Option<Fault>)> {
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
        return Ok((chain, tree, count, good, Some(f)));
    }
    good += u64::from(checkpoints.contains_key(&0));
    for item in items {
        let (seq, stored) = item?;
        count += 1;
        let stored = match stored {
            Ok(s) => s,
            Err(f) => return Ok((chain, tree, count, good, Some(f))),
        };
        let pushed = chain.push(
            &Item {
                seq,
                bytes: &stored.bytes,
                recorded_hash: stored.recorded_hash.as_deref(),
                sig: stored.sig.as_deref(),
            },
            signing,
        );
        match pushed {
            Ok(hash) => tree.push(hash),
            Err(f) => return Ok((chain, tree, count, good, Some(f))),
        }
        if let Some(f) = check_at(seq, &tree) {
            return Ok((chain, tree, count, good, Some(f)));
        }
        good += u64::from(checkpoints.contains_key(&seq));
    }
    Ok((chain, tree, count, good, None))
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

fn finish(
    chain: &Chain,
    tree: Tree,
    count: u64,
    checkpoints: u64,
    fingerprint: Option<String>,
    head_hash: Option<String>,
    fault: Option<Fault>,
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
        },
        tree,
    }
}

/// Verifies this store's ledger.
pub fn local(store: &Store) -> Result<Verification> {
    Ok(local_walk(store)?.verification)
}

pub(crate) fn local_walk(store: &Store) -> Result<Walk> {
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
    let checkpoints = super::checkpoint::local_all(store)?;
    // Entries and their head are written in one transaction, so the head
    // read now bounds the entries to check; entries after it were either
    // appended since (the head has moved on) or written around the ledger.
    let head = ledger::head(store)?;
    let head_hash = head.as_ref().map(|h| h.1.clone());
    let limit = head.as_ref().map_or(0, |h| h.0);
    let items = ledger::entries(store, 1)
        .take_while(|item| item.as_ref().map_or(true, |(seq, _)| *seq <= limit))
        .map(|item| {
            let (seq, bytes) = item?;
            Ok((
                seq,
                match ledger::seal(store, seq)? {
                    Ok(seal) => Ok(Stored {
                        bytes,
                        recorded_hash: seal.as_ref().map(|s| s.hash.clone()),
                        sig: seal.and_then(|s| s.sig),
                    }),
                    Err(why) => Err(Fault::new(seq, Check::Signature, why)),
                },
            ))
        });
    let (chain, tree, count, good, fault) = walk(items, &checkpoints, &signing)?;
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
    Ok(finish(
        &chain,
        tree,
        count,
        good,
        fingerprint,
        head_hash,
        fault,
    ))
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
    let (chain, tree, count, good, fault) = walk(items, &checkpoints, &signing)?;
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
    )
    .verification)
}
