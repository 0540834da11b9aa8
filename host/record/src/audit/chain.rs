//! The walk over a ledger's entries, in order, that every verification
//! shares: this store's ledger, an export file, an imported ledger.
//!
//! For each entry, in this order (the first that fails is reported):
//! 1. **sequence**: it is the next entry (none missing, repeated, reordered);
//! 2. **parse**: its bytes are a ledger entry that says it is that entry;
//! 3. **hash**: its bytes hash to the hash recorded beside it when it was
//!    written (its seal, or the export line) — an edited entry fails here;
//! 4. **signature**: a signed entry names the expected unit key and carries
//!    that key's signature of its hash; an unsigned entry may only come
//!    before the first signed one;
//! 5. **chain**: its `prev_hash` is the hash of the entry before it.

use super::{check_signature, short, Check, Fault};
use crate::ledger::{entry_message, hash as entry_hash};
use jiandu_registry::keys::PublicKey;
use serde::Deserialize;

/// One entry as the walk sees it.
pub struct Item<'a> {
    /// The sequence number it is stored or listed under.
    pub seq: u64,
    /// The exact stored bytes.
    pub bytes: &'a [u8],
    /// The hash recorded for it when it was written, if any.
    pub recorded_hash: Option<&'a str>,
    pub sig: Option<&'a str>,
    /// `sig` was already found to be the signing key's signature of these
    /// bytes ([`valid_signatures`]): the chain skips that check.
    pub sig_checked: bool,
}

/// Which of `entries` (bytes and signature) carry a valid signature by
/// `key` of their bytes, checked on every core and many at a time: what
/// verifying a long ledger spends most of its time on. `false` means "not
/// shown valid"; [`Chain::push`] then checks that entry on its own,
/// strictly, and says why it fails. A part whose batch check fails is
/// checked one by one (strictly) to tell its good entries from its bad.
pub fn valid_signatures(entries: &[(&[u8], Option<&str>)], key: Option<&PublicKey>) -> Vec<bool> {
    let with_hashes: Vec<(&[u8], Option<&str>, Option<&str>)> =
        entries.iter().map(|(b, sig)| (*b, None, *sig)).collect();
    valid_signatures_of(&with_hashes, key)
}

/// [`valid_signatures`] of entries given with the hash recorded beside
/// each (bytes, recorded hash, signature): a recorded hash is taken for the
/// signed message instead of hashing the bytes again. Sound because
/// [`Chain::push`] checks the bytes against the recorded hash before it
/// trusts a signature found valid here.
pub fn valid_signatures_of(
    entries: &[(&[u8], Option<&str>, Option<&str>)],
    key: Option<&PublicKey>,
) -> Vec<bool> {
    let Some(key) = key else {
        return vec![false; entries.len()];
    };
    on_every_core(entries, |part| {
        let messages: Vec<Vec<u8>> = part
            .iter()
            .map(|(bytes, hash, _)| match hash {
                Some(h) => entry_message(h),
                None => entry_message(&entry_hash(bytes)),
            })
            .collect();
        let part: Vec<(&[u8], Option<&str>)> = part.iter().map(|(b, _, s)| (*b, *s)).collect();
        let part = part.as_slice();
        if part.iter().all(|(_, sig)| sig.is_some()) {
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let sigs: Vec<&str> = part.iter().filter_map(|(_, sig)| *sig).collect();
            if key.verify_batch(&refs, &sigs) {
                return vec![true; part.len()];
            }
        }
        strictly(part, &messages, key)
    })
}

/// Which of `entries` carry a valid signature by `key`, each checked on
/// its own, strictly (what an import at the central office asks of a
/// unit's export), split over every core.
pub fn strict_signatures(entries: &[(&[u8], Option<&str>)], key: Option<&PublicKey>) -> Vec<bool> {
    let Some(key) = key else {
        return vec![false; entries.len()];
    };
    on_every_core(entries, |part| {
        let messages = signed_messages(part);
        strictly(part, &messages, key)
    })
}

/// What each entry's signature signs: its hash, with the entry prefix.
fn signed_messages(part: &[(&[u8], Option<&str>)]) -> Vec<Vec<u8>> {
    part.iter()
        .map(|(bytes, _)| entry_message(&entry_hash(bytes)))
        .collect()
}

fn strictly(part: &[(&[u8], Option<&str>)], messages: &[Vec<u8>], key: &PublicKey) -> Vec<bool> {
    part.iter()
        .zip(messages)
        .map(|((_, sig), message)| {
            sig.is_some_and(|sig| check_signature(key, message, sig).is_ok())
        })
        .collect()
}

/// `check` over `entries` in as many parts as there are cores, side by
/// side; the answers in order.
pub fn on_every_core<T: Sync, R: Send>(
    entries: &[T],
    check: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || entries.len() < 64 {
        return check(entries);
    }
    let chunk = entries.len().div_ceil(threads);
    let check = &check;
    std::thread::scope(|scope| {
        let parts: Vec<_> = entries
            .chunks(chunk)
            .map(|p| scope.spawn(move || check(p)))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("signature checks do not panic"))
            .collect()
    })
}

/// The key entries must be signed with.
#[derive(Clone)]
pub struct Signing {
    pub key: Option<PublicKey>,
    /// Who the key belongs to, for messages (`unit 温宿县人民检察院`).
    pub who: String,
}

impl Signing {
    pub fn new(key: Option<PublicKey>, who: impl Into<String>) -> Signing {
        Signing {
            key,
            who: who.into(),
        }
    }
}

/// What the walk learns of an entry from its bytes alone, independent of
/// every other entry: its hash and its links. A long walk computes these
/// on every core ahead of the (ordered) walk.
pub struct Prepared {
    link: Result<Link, String>,
    hash: String,
}

impl Prepared {
    pub fn of(bytes: &[u8]) -> Prepared {
        Prepared {
            link: serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            hash: entry_hash(bytes),
        }
    }
}

/// The fields of an entry that the chain checks.
#[derive(Deserialize)]
struct Link {
    seq: u64,
    prev_hash: String,
    #[serde(default)]
    unit_key: Option<String>,
}

struct Prev {
    seq: u64,
    hash: String,
    /// Whether the hash was confirmed against a recorded one.
    recorded: bool,
}

/// The state of a walk.
pub struct Chain {
    next_seq: u64,
    /// `prev_hash` the first entry must carry.
    start_prev: String,
    prev: Option<Prev>,
    first_signed: Option<u64>,
    /// Entries that verified with a signature.
    pub signed: u64,
    /// Entries that verified without one.
    pub unsigned: u64,
}

impl Default for Chain {
    fn default() -> Self {
        Chain::new()
    }
}

impl Chain {
    /// A walk from entry 1.
    pub fn new() -> Chain {
        Chain::after(0, crate::ledger::GENESIS)
    }

    /// A walk that starts after entry `size`, whose hash is `head_hash`.
    pub fn after(size: u64, head_hash: &str) -> Chain {
        Chain {
            next_seq: size + 1,
            start_prev: head_hash.to_string(),
            prev: None,
            first_signed: None,
            signed: 0,
            unsigned: 0,
        }
    }

    /// Records that entry `seq`, before the walk, was already signed.
    pub fn signed_since(mut self, seq: Option<u64>) -> Chain {
        self.first_signed = seq;
        self
    }

    /// The sequence number the next entry must have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last entry walked and its hash.
    pub fn last(&self) -> Option<(u64, &str)> {
        self.prev.as_ref().map(|p| (p.seq, p.hash.as_str()))
    }

    /// The first signed entry seen.
    pub fn first_signed(&self) -> Option<u64> {
        self.first_signed
    }

    /// Checks the next entry; returns its hash.
    pub fn push(&mut self, item: &Item, signing: &Signing) -> Result<[u8; 32], Fault> {
        self.push_prepared(item, Prepared::of(item.bytes), signing)
    }

    /// [`Chain::push`] with the entry's bytes already hashed and parsed
    /// ([`Prepared::of`] the same bytes, on another thread).
    pub fn push_prepared(
        &mut self,
        item: &Item,
        prepared: Prepared,
        signing: &Signing,
    ) -> Result<[u8; 32], Fault> {
        let expected = self.next_seq;
        let seq = item.seq;
        if seq != expected {
            let message = if seq > expected {
                if seq == expected + 1 {
                    format!("entry {expected} is missing (the next entry is {seq})")
                } else {
                    format!(
                        "entries {expected}..{} are missing (the next entry is {seq})",
                        seq - 1
                    )
                }
            } else {
                format!(
                    "entry {seq} appears where entry {expected} belongs (repeated or out of order)"
                )
            };
            return Err(Fault::new(expected, Check::Sequence, message));
        }
        let Prepared { link, hash } = prepared;
        let link = link.map_err(|e| {
            Fault::new(
                seq,
                Check::Parse,
                format!("entry {seq} is not a valid ledger entry (edited or damaged): {e}"),
            )
        })?;
        if link.seq != seq {
            return Err(Fault::new(
                seq,
                Check::Sequence,
                format!("the entry in place {seq} says it is entry {}", link.seq),
            ));
        }
        if let Some(recorded) = item.recorded_hash {
            if recorded != hash {
                return Err(Fault::new(
                    seq,
                    Check::Hash,
                    format!(
                        "entry {seq} does not match the hash recorded for it when it was written ({}…, its bytes now hash to {}…): edited after it was written",
                        short(recorded),
                        short(&hash)
                    ),
                ));
            }
        }
        self.check_signature(seq, &link, &hash, item.sig, item.sig_checked, signing)?;
        let expected_prev = self
            .prev
            .as_ref()
            .map(|p| p.hash.as_str())
            .unwrap_or(&self.start_prev);
        if link.prev_hash != expected_prev {
            let fault = match &self.prev {
                // Nothing confirmed the previous entry's bytes but this link:
                // the previous entry is the one that changed.
                Some(p) if !p.recorded => Fault::new(
                    p.seq,
                    Check::Hash,
                    format!(
                        "entry {} does not match the hash that entry {seq} recorded for it (edited after it was written)",
                        p.seq
                    ),
                ),
                Some(p) => Fault::new(
                    seq,
                    Check::Chain,
                    format!(
                        "entry {seq} links to {}… but entry {} hashes to {}…: the link was rewritten or entries were removed",
                        short(&link.prev_hash),
                        p.seq,
                        short(&p.hash)
                    ),
                ),
                None if seq == 1 => Fault::new(
                    seq,
                    Check::Chain,
                    format!("entry 1 does not start the chain (its prev_hash is {}…)", short(&link.prev_hash)),
                ),
                None => Fault::new(
                    seq,
                    Check::Chain,
                    format!(
                        "entry {seq} links to {}… but entry {} hashes to {}…",
                        short(&link.prev_hash),
                        seq - 1,
                        short(&self.start_prev)
                    ),
                ),
            };
            return Err(fault);
        }
        self.prev = Some(Prev {
            seq,
            recorded: item.recorded_hash.is_some(),
            hash: hash.clone(),
        });
        self.next_seq += 1;
        Ok(super::merkle::parse_hash(&hash).expect("sha256 hex"))
    }

    fn check_signature(
        &mut self,
        seq: u64,
        link: &Link,
        hash: &str,
        sig: Option<&str>,
        sig_checked: bool,
        signing: &Signing,
    ) -> Result<(), Fault> {
        let fault = |message: String| Fault::new(seq, Check::Signature, message);
        match &link.unit_key {
            Some(fp) => {
                let Some(key) = &signing.key else {
                    return Err(fault(format!(
                        "entry {seq} is signed with key {fp}, but {} has no key to check it against",
                        signing.who
                    )));
                };
                let expected = key.fingerprint();
                if fp != &expected {
                    return Err(fault(format!(
                        "entry {seq} is signed with key {fp}, not with the key of {} ({expected}): it comes from another unit's ledger or was signed with the wrong key",
                        signing.who
                    )));
                }
                let Some(sig) = sig else {
                    return Err(fault(format!(
                        "entry {seq} names signing key {fp} but carries no signature"
                    )));
                };
                if !sig_checked {
                    check_signature(key, &entry_message(hash), sig).map_err(|why| {
                        fault(format!(
                            "entry {seq}'s signature is not {}'s signature of this entry: {why}",
                            signing.who
                        ))
                    })?;
                }
                self.first_signed.get_or_insert(seq);
                self.signed += 1;
            }
            None => {
                if sig.is_some() {
                    return Err(fault(format!(
                        "entry {seq} names no signing key but carries a signature"
                    )));
                }
                if let Some(first) = self.first_signed {
                    return Err(fault(format!(
                        "entry {seq} is unsigned, but entry {first} before it was signed: only entries written before the unit key existed may be unsigned"
                    )));
                }
                self.unsigned += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiandu_registry::keys::UnitKey;

    #[test]
    fn batched_signature_checks_find_exactly_the_entries_that_fail() {
        let key = UnitKey::generate().unwrap();
        let other = UnitKey::generate().unwrap();
        let bodies: Vec<Vec<u8>> = (0..300)
            .map(|i| format!("{{\"seq\":{i}}}").into_bytes())
            .collect();
        let mut sigs: Vec<Option<String>> = bodies
            .iter()
            .map(|b| Some(key.sign(&entry_message(&entry_hash(b)))))
            .collect();
        // One signed by another key, one of other bytes, one missing, one
        // not hex.
        sigs[7] = Some(other.sign(&entry_message(&entry_hash(&bodies[7]))));
        sigs[150] = Some(key.sign(&entry_message(&entry_hash(b"other bytes"))));
        sigs[151] = None;
        sigs[299] = Some("zz".repeat(64));
        let entries: Vec<(&[u8], Option<&str>)> = bodies
            .iter()
            .zip(&sigs)
            .map(|(b, s)| (b.as_slice(), s.as_deref()))
            .collect();
        for part in [&entries[..], &entries[..20]] {
            let valid = valid_signatures(part, Some(&key.public()));
            let bad: Vec<usize> = (0..part.len()).filter(|i| !valid[*i]).collect();
            let expected: Vec<usize> = [7, 150, 151, 299]
                .into_iter()
                .filter(|i| *i < part.len())
                .collect();
            assert_eq!(bad, expected);
        }
        assert!(valid_signatures(&entries, None).iter().all(|v| !v));
    }
}
