//! The ledger head: which entry is last, its hash, and the Merkle frontier
//! of the entries so far, signed by the unit.
//!
//! ```text
//! meta["ledger/head"] = {"seq":N,"hash":"<entry N>","root":"<RFC 6962 root of 1..=N>",
//!                        "frontier":["<subtree root>",…],"sig":"<unit's signature>"}
//! ```
//!
//! It is written in the transaction of every entry. The frontier (one hash
//! per set bit of N, see [`Frontier`]) makes the next root, and so a
//! checkpoint, O(log N) to compute: appending never reads the ledger back.
//! The signature (prefix `jiandu ledger head v1\n` and `{"seq","hash",
//! "root"}`) means cutting entries off the end of the ledger and rewriting
//! the head to match needs the unit's key; `audit verify` checks it, and
//! checks the frontier's root against the entries.
//!
//! Heads written by earlier versions hold only `seq` and `hash`. The first
//! append after an upgrade builds the frontier once from the hashes sealed
//! with the entries when they were written (not from their bytes now, so an
//! entry edited since is not absorbed into later checkpoints).

use super::{seal, Signer, GENESIS};
use crate::ledger::merkle::{parse_hash, Frontier};
use crate::{Error, Result, Store};
use serde::{Deserialize, Serialize};

pub(super) const HEAD_KEY: &str = "ledger/head";

/// What a unit signs for the ledger head, before the statement's RFC 8785
/// canonical JSON.
pub const HEAD_SIGNATURE_PREFIX: &str = "jiandu ledger head v2\n";

/// What earlier versions signed for the ledger head, before the
/// statement's JSON in field order: still accepted.
pub const HEAD_SIGNATURE_PREFIX_V1: &str = "jiandu ledger head v1\n";

/// `meta["ledger/head"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    /// Hash of entry `seq`.
    pub hash: String,
    /// RFC 6962 root over entries `1..=seq`; `None` in heads written by
    /// earlier versions, like the rest below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The tree's subtree roots, largest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontier: Option<Vec<String>>,
    /// The unit's signature of [`Head::message`]; `None` while the store
    /// has no unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// What the signature covers.
#[derive(Serialize)]
struct Statement<'a> {
    seq: u64,
    hash: &'a str,
    root: &'a str,
}

impl Head {
    /// The head after entry `seq` with `hash`, over the tree `frontier`,
    /// signed when there is a signer.
    pub(super) fn new(
        seq: u64,
        hash: String,
        frontier: &Frontier,
        signer: Option<&Signer>,
    ) -> Head {
        let mut head = Head {
            seq,
            hash,
            root: Some(frontier.root()),
            frontier: Some(frontier.to_hex()),
            sig: None,
        };
        head.sig = signer.map(|s| s.sign(&head.message()));
        head
    }

    fn statement(&self) -> Statement<'_> {
        Statement {
            seq: self.seq,
            hash: &self.hash,
            root: self.root.as_deref().unwrap_or(""),
        }
    }

    /// The exact bytes signed.
    pub fn message(&self) -> Vec<u8> {
        crate::ledger::signed_message(
            HEAD_SIGNATURE_PREFIX,
            &crate::ledger::canonical_json(&self.statement()),
        )
    }

    /// The bytes earlier versions signed.
    pub fn message_v1(&self) -> Vec<u8> {
        crate::ledger::signed_message(
            HEAD_SIGNATURE_PREFIX_V1,
            &serde_json::to_vec(&self.statement()).expect("head statements serialize"),
        )
    }

    /// The frontier it records, checked against its size.
    pub fn frontier(&self) -> std::result::Result<Option<Frontier>, String> {
        self.frontier
            .as_ref()
            .map(|roots| Frontier::from_hex(self.seq, roots))
            .transpose()
            .map_err(|why| format!("the ledger head's Merkle frontier is unreadable: {why}"))
    }

    pub(super) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("heads serialize")
    }
}

/// The head as stored.
pub fn read(store: &Store) -> Result<Option<Head>> {
    store.get_meta::<Head>(HEAD_KEY)
}

/// Gives a head written by an earlier version its frontier (and signature),
/// built once from the hashes sealed with entries `1..=seq`. Nothing to do
/// for an empty ledger or a head that has one.
pub(super) fn ensure_frontier(store: &Store, signer: Option<&Signer>) -> Result<()> {
    loop {
        let Some(raw) = store.meta.get(HEAD_KEY)? else {
            return Ok(());
        };
        let old: Head = serde_json::from_slice(&raw)
            .map_err(|e| Error::Ledger(format!("the ledger head is unreadable: {e}")))?;
        if old.frontier.is_some() {
            return Ok(());
        }
        tracing::info!(
            "building the Merkle frontier of the ledger's {} entries (once)",
            old.seq
        );
        let mut frontier = Frontier::new();
        for seq in 1..=old.seq {
            let recorded = match seal(store, seq)? {
                Ok(Some(s)) => Some(s.hash),
                _ => None,
            };
            let hash = match recorded {
                Some(h) => h,
                None => match store.ledger.get(seq.to_be_bytes())? {
                    Some(bytes) => super::hash(&bytes),
                    None => {
                        return Err(Error::Ledger(format!(
                            "entry {seq} is missing, so the ledger head cannot be brought up to date; run `jiandu audit verify`"
                        )))
                    }
                },
            };
            frontier.push(parse_hash(&hash).ok_or_else(|| {
                Error::Ledger(format!("the hash sealed with entry {seq} is not a sha256"))
            })?);
        }
        let head = Head::new(old.seq, old.hash, &frontier, signer);
        // Another append may have moved the head meanwhile: start over.
        if store
            .meta
            .compare_and_swap(HEAD_KEY, Some(raw), Some(head.to_bytes()))?
            .is_ok()
        {
            return Ok(());
        }
    }
}

/// The frontier and hash an append continues from.
pub(super) fn parse_for_append(
    raw: Option<&[u8]>,
) -> std::result::Result<(u64, String, Frontier), String> {
    let Some(raw) = raw else {
        return Ok((0, GENESIS.to_string(), Frontier::new()));
    };
    let head: Head =
        serde_json::from_slice(raw).map_err(|e| format!("the ledger head is unreadable: {e}"))?;
    let frontier = head.frontier()?.ok_or_else(|| {
        "the ledger head has no Merkle frontier (written by an earlier version while this append ran); try again".to_string()
    })?;
    Ok((head.seq, head.hash, frontier))
}
