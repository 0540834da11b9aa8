//! Text a model chose, kept beside the ledger entry it belongs to.
//!
//! A panic message, a model's error text, a wasm backtrace naming its
//! functions, what its `describe` said: the model chose these words, and
//! they can quote the data it read (an ID number in a panic message). The
//! hash chain cannot forget anything, so such text is not in the entry. The
//! entry records `message_sha256` and `message_len`; the text and a random
//! 16-byte salt sit in the `ledger_text` tree under the entry's key:
//!
//! ```text
//! ledger_text[seq] = {"salt":"<32 hex>","text":"…"}
//! message_sha256   = sha256(salt bytes ‖ text bytes)
//! ```
//!
//! The salt makes the hash useless for confirming a guess once the text is
//! gone: without it, trying every ID number of a county against the hash
//! would find the one a panic message held. `audit verify` checks that
//! each text beside an entry matches the hash the entry records, and that
//! a text is missing only where a `text-redacted` entry removed it.
//!
//! [`redact`] removes the text of one entry, on the record: a
//! `text-redacted` entry naming the entry, the operator and the reason is
//! appended in the same transaction that deletes the text. The chain is
//! unchanged, so `audit verify` still passes, and reports the redaction;
//! exports never carry the text, only the entries (the redaction among
//! them).

use super::{append, Draft, Entry, Kind, Redaction, RunRecord};
use crate::{Error, Result, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The text kept beside one entry, and its salt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aside {
    /// 16 random bytes, hex.
    pub salt: String,
    pub text: String,
}

impl Aside {
    /// `text` with a fresh salt.
    pub fn new(text: String) -> Result<Aside> {
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).map_err(|e| {
            Error::Ledger(format!("no randomness for the salt of a model's text: {e}"))
        })?;
        Ok(Aside {
            salt: hex::encode(salt),
            text,
        })
    }

    /// What the entry records for it: `sha256(salt ‖ text)`, hex.
    pub fn commitment(&self) -> String {
        commitment(&self.salt, &self.text)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("asides serialize")
    }
}

/// `sha256(salt bytes ‖ text bytes)`, hex; a salt that is not hex counts as
/// its own bytes (and then matches nothing the host wrote).
pub fn commitment(salt: &str, text: &str) -> String {
    let mut h = Sha256::new();
    match hex::decode(salt) {
        Ok(bytes) => h.update(bytes),
        Err(_) => h.update(salt.as_bytes()),
    }
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

/// The text kept beside entry `seq`: `None` when there is none (never
/// written, or redacted), else the text or why it cannot be read.
pub fn read(store: &Store, seq: u64) -> Result<Option<std::result::Result<Aside, String>>> {
    Ok(store.ledger_text.get(seq.to_be_bytes())?.map(|v| {
        serde_json::from_slice(&v)
            .map_err(|e| format!("the model text kept beside entry {seq} is unreadable: {e}"))
    }))
}

/// Every entry that has text beside it, in order (for `audit verify`).
pub fn all(
    store: &Store,
) -> impl Iterator<Item = Result<(u64, std::result::Result<Aside, String>)>> + '_ {
    store.ledger_text.iter().map(|item| {
        let (k, v) = item?;
        let seq = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| {
            Error::Ledger(format!(
                "a key of {} bytes beside the ledger is not a sequence number",
                k.len()
            ))
        })?);
        Ok((
            seq,
            serde_json::from_slice(&v)
                .map_err(|e| format!("the model text kept beside entry {seq} is unreadable: {e}")),
        ))
    })
}

/// Removes the model text kept beside entry `seq`, on the record: appends a
/// `text-redacted` entry by `operator` with `reason`, in the transaction
/// that deletes the text. Refuses an entry without such text, or whose text
/// was redacted already (naming the redaction).
pub fn redact(
    store: &Store,
    seq: u64,
    unit: String,
    operator: String,
    reason: &str,
) -> Result<Entry> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::Ledger(
            "a redaction needs a reason (--reason), which goes on the record".into(),
        ));
    }
    let Some(bytes) = store.ledger.get(seq.to_be_bytes())? else {
        return Err(Error::Ledger(format!(
            "there is no entry {seq} in this store's ledger"
        )));
    };
    let entry: crate::ledger::view::EntryView = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Ledger(format!("entry {seq} is unreadable: {e}")))?;
    let committed = entry
        .run
        .error
        .as_ref()
        .is_some_and(|e| e.message_sha256.is_some())
        || entry
            .review
            .as_ref()
            .is_some_and(|r| r.text_sha256.is_some());
    if !committed {
        return Err(Error::Ledger(format!(
            "entry {seq} ({}) keeps no model text beside it: nothing to redact",
            entry.kind
        )));
    }
    if read(store, seq)?.is_none() {
        let by = super::entries(store, seq + 1)
            .filter_map(|item| item.ok())
            .find_map(|(n, bytes)| {
                let e: crate::ledger::view::EntryView = serde_json::from_slice(&bytes).ok()?;
                (e.redaction.as_ref()?.seq == seq).then_some(n)
            });
        return Err(Error::Ledger(match by {
            Some(n) => format!("the model text of entry {seq} was redacted already, by entry {n}"),
            None => format!(
                "the model text of entry {seq} is missing, with no redaction on the record: run `jiandu audit verify`"
            ),
        }));
    }
    let draft = Draft {
        redaction: Some(Redaction {
            seq,
            reason: reason.to_string(),
        }),
        ..Draft::run(unit, operator, Kind::TextRedacted, RunRecord::default())
    };
    append(store, &draft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commitment_is_salted_and_pins_salt_and_text() {
        let a = Aside::new("panicked: 110105194912310021".into()).unwrap();
        let b = Aside::new(a.text.clone()).unwrap();
        assert_ne!(a.salt, b.salt, "a fresh salt each time");
        assert_ne!(a.commitment(), b.commitment());
        let plain = hex::encode(Sha256::digest(a.text.as_bytes()));
        assert_ne!(a.commitment(), plain, "not the bare sha256 of the text");
        assert_eq!(a.commitment(), commitment(&a.salt, &a.text));
        assert_ne!(
            a.commitment(),
            commitment(&a.salt, "panicked: 110105194912310022")
        );
    }
}
