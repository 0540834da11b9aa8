//! Checkpoints: a unit's signed statement that its ledger held `size`
//! entries with this RFC 6962 Merkle root and this last-entry hash, at this
//! time. The host writes one with every [`EVERY`]th entry (in the entry's
//! transaction, from the Merkle frontier the head keeps: see
//! [`crate::ledger::head`]), on `audit checkpoint` and on every export;
//! a central office keeps the last one it accepted from each unit and
//! takes from that unit only ledgers that extend it.

use super::merkle::Tree;
use super::{short, signed_message};
use crate::ledger::{Signer, GENESIS};
use crate::{Error, Result, Store};
use jiandu_registry::keys::PublicKey;
use serde::{Deserialize, Serialize};

/// A checkpoint is written with every entry whose number is a multiple of
/// this.
pub const EVERY: u64 = 64;

/// What a unit signs for a checkpoint, before its RFC 8785 canonical JSON.
pub const CHECKPOINT_SIGNATURE_PREFIX: &str = "jiandu ledger checkpoint v2\n";

/// What earlier versions signed for a checkpoint, before its JSON in field
/// order: still accepted.
pub const CHECKPOINT_SIGNATURE_PREFIX_V1: &str = "jiandu ledger checkpoint v1\n";

/// The statement a checkpoint makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The unit's name and code as the unit itself records them.
    pub unit: String,
    pub code: String,
    /// Fingerprint of the key that signs it.
    pub fingerprint: String,
    /// Number of entries covered: entries `1..=size`.
    pub size: u64,
    /// RFC 6962 Merkle Tree Hash over the entry hashes, hex.
    pub root: String,
    /// Hash of entry `size` (the genesis hash when `size` is 0).
    pub head_hash: String,
    pub time: String,
}

impl Checkpoint {
    /// The exact bytes signed.
    pub fn message(&self) -> Vec<u8> {
        signed_message(CHECKPOINT_SIGNATURE_PREFIX, &super::canonical_json(self))
    }

    /// The bytes earlier versions signed.
    pub fn message_v1(&self) -> Vec<u8> {
        signed_message(
            CHECKPOINT_SIGNATURE_PREFIX_V1,
            &serde_json::to_vec(self).expect("checkpoints serialize"),
        )
    }

    pub fn sign(self, signer: &Signer) -> SignedCheckpoint {
        let sig = signer.sign(&self.message());
        SignedCheckpoint {
            checkpoint: self,
            sig,
        }
    }
}

/// A checkpoint and the unit's signature of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub sig: String,
}

impl SignedCheckpoint {
    /// Checks that `key` signed it.
    pub fn check_signature(&self, key: &PublicKey) -> std::result::Result<(), String> {
        let fp = key.fingerprint();
        if self.checkpoint.fingerprint != fp {
            return Err(format!(
                "the checkpoint names key {}, not {fp}",
                self.checkpoint.fingerprint
            ));
        }
        super::check_signature_either(
            key,
            &self.checkpoint.message(),
            &self.checkpoint.message_v1(),
            &self.sig,
        )
        .map_err(|why| format!("the checkpoint's signature is not valid: {why}"))
    }

    /// Checks the signature and that the checkpoint describes `tree`, which
    /// holds exactly `size` entries.
    pub fn check(&self, key: &PublicKey, tree: &Tree) -> std::result::Result<(), String> {
        self.check_signature(key)?;
        let cp = &self.checkpoint;
        if tree.len() != cp.size {
            return Err(format!(
                "the checkpoint covers {} entries, compared with {}",
                cp.size,
                tree.len()
            ));
        }
        let root = tree.root();
        if cp.root != root {
            return Err(format!(
                "the checkpoint signed root {}… for entries 1..{}, but those entries now give root {}…: an entry it covers was changed, removed or reordered",
                short(&cp.root),
                cp.size,
                short(&root)
            ));
        }
        let head = head_of(tree);
        if cp.head_hash != head {
            return Err(format!(
                "the checkpoint names {}… as the hash of entry {}, but it is {}…",
                short(&cp.head_hash),
                cp.size,
                short(&head)
            ));
        }
        Ok(())
    }
}

/// Hash of the last entry in `tree` (the genesis hash when empty).
pub fn head_of(tree: &Tree) -> String {
    tree.entry_hash(tree.len())
        .map(hex::encode)
        .unwrap_or_else(|| GENESIS.to_string())
}

/// The tree over the first `size` entries of `tree`.
pub fn prefix(tree: &Tree, size: u64) -> Tree {
    let mut t = Tree::new();
    for seq in 1..=size.min(tree.len()) {
        t.push(tree.entry_hash(seq).expect("within the tree"));
    }
    t
}

/// This store's checkpoints by size; an unreadable one is kept as the
/// reason it cannot be read.
pub fn local_all(
    store: &Store,
) -> Result<std::collections::BTreeMap<u64, std::result::Result<SignedCheckpoint, String>>> {
    let mut all = std::collections::BTreeMap::new();
    for item in store.checkpoints.iter() {
        let (k, v) = item?;
        let size = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| {
            Error::Ledger(format!(
                "a checkpoint key of {} bytes is not an entry count",
                k.len()
            ))
        })?);
        all.insert(
            size,
            serde_json::from_slice(&v)
                .map_err(|e| format!("the checkpoint at {size} entries is unreadable: {e}")),
        );
    }
    Ok(all)
}

/// This store's latest checkpoint.
pub fn latest_local(store: &Store) -> Result<Option<SignedCheckpoint>> {
    match store.checkpoints.last()? {
        None => Ok(None),
        Some((_, v)) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| Error::Ledger(format!("the latest checkpoint is unreadable: {e}"))),
    }
}

/// Signs and stores a checkpoint over `tree`, the verified ledger.
pub fn write_over(store: &Store, signer: &Signer, tree: &Tree) -> Result<SignedCheckpoint> {
    let unit = crate::unit::current(store)?
        .ok_or_else(|| Error::Ledger("this store has no unit to sign checkpoints".into()))?;
    if unit.fingerprint != signer.fingerprint() {
        return Err(Error::Ledger(format!(
            "the signing key {} is not the key of unit {} ({})",
            signer.fingerprint(),
            unit.name,
            unit.fingerprint
        )));
    }
    let cp = Checkpoint {
        unit: unit.name,
        code: unit.code,
        fingerprint: unit.fingerprint,
        size: tree.len(),
        root: tree.root(),
        head_hash: head_of(tree),
        time: crate::time::now_text(),
    }
    .sign(signer);
    store.checkpoints.insert(
        cp.checkpoint.size.to_be_bytes(),
        serde_json::to_vec(&cp).expect("checkpoints serialize"),
    )?;
    store.flush()?;
    Ok(cp)
}
