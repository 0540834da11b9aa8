//! Keyed pseudonyms: how a model that is not granted clear values sees
//! personal data, and how people read it back.
//!
//! Masking (`110105***********X`) is for human eyes: it keeps 7 of an ID's
//! 18 characters, so a model that can ask the host "does this value
//! exist?" would recover the rest by enumeration. A model without a clear
//! grant therefore never receives a personal value in any form. It gets a
//! **pseudonym** instead: `P-` and 32 lowercase hex digits, the first 128
//! bits of HMAC-SHA256 over the normalized value, under a secret created
//! with the store that never leaves it (it is in no export). Equal values
//! give equal pseudonyms in every dataset of the store, so people still
//! join; without the secret a pseudonym says nothing about its value.
//!
//! At ingest the store records, beside each dataset version, the orders and
//! maps a pseudonymous model needs ([`crate::dataset`]): its records in
//! pseudonym order when the primary key is personal, each index over a
//! personal field in pseudonym order, and each pseudonym's clear value for
//! [`crate::dataset::resolve::Resolver`], which turns pseudonyms in leads back into what a person may
//! see (masked, or clear on the record).

use crate::mask::PersonalKind;
use crate::{Error, Result, Store};
use sha2::{Digest, Sha256};

/// What every pseudonym starts with.
pub const PREFIX: &str = "P-";
/// Hex digits after the prefix.
const HEX_DIGITS: usize = 32;
/// Length of every pseudonym, in bytes.
pub const LEN: usize = PREFIX.len() + HEX_DIGITS;
/// Where the store's secret is kept in `meta`.
const SECRET_KEY: &str = "pseudonym/secret";

/// Bytes of a pseudonym's binary form, the HMAC's first 128 bits: what
/// its hex digits write.
pub const BYTES: usize = HEX_DIGITS / 2;

/// Computes pseudonyms under one store's secret.
///
/// HMAC-SHA256 hashes the secret's inner pad block, then the value, and
/// hashes that digest after the secret's outer pad block: both pad blocks
/// are hashed here once, so that a pseudonym costs only the blocks of its
/// value and one block of the outer hash.
#[derive(Clone)]
pub struct Pseudonymizer {
    /// Boxed: a pseudonymizer is passed around by value (views hold one).
    pads: Box<Pads>,
}

/// HMAC's two hashes, each having hashed its pad block.
#[derive(Clone)]
struct Pads {
    /// SHA-256 having hashed the inner pad block (`key ^ 0x36`).
    inner: Sha256,
    /// SHA-256 having hashed the outer pad block (`key ^ 0x5c`).
    outer: Sha256,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(<secret>)")
    }
}

impl Pseudonymizer {
    /// The pseudonymizer of `store`, creating its secret the first time.
    pub fn for_store(store: &Store) -> Result<Pseudonymizer> {
        if let Some(secret) = store.meta.get(SECRET_KEY)? {
            return Ok(Pseudonymizer::from_secret(&secret));
        }
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret)
            .map_err(|e| Error::Other(format!("no randomness for the store's secret: {e}")))?;
        // Two processes creating it at once: the first one written wins.
        let _ =
            store
                .meta
                .compare_and_swap(SECRET_KEY, None as Option<&[u8]>, Some(&secret[..]))?;
        let secret = store
            .meta
            .get(SECRET_KEY)?
            .expect("the secret was just written");
        store.flush()?;
        Ok(Pseudonymizer::from_secret(&secret))
    }

    /// A pseudonymizer under `secret` (tests, and the store's own).
    pub fn from_secret(secret: &[u8]) -> Pseudonymizer {
        // HMAC's key block: a secret longer than a block is hashed first.
        let mut key = [0u8; 64];
        if secret.len() > key.len() {
            key[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            key[..secret.len()].copy_from_slice(secret);
        }
        let after_pad = |pad: u8| {
            let mut h = Sha256::new();
            h.update(key.map(|k| k ^ pad));
            h
        };
        Pseudonymizer {
            pads: Box::new(Pads {
                inner: after_pad(0x36),
                outer: after_pad(0x5c),
            }),
        }
    }

    /// The pseudonym of `value`, a personal value of `kind`.
    pub fn pseudonym(&self, kind: PersonalKind, value: &str) -> String {
        let mut out = String::with_capacity(LEN);
        self.pseudonym_into(kind, value, &mut out);
        out
    }

    /// Appends the pseudonym of `value` to `out`.
    pub fn pseudonym_into(&self, kind: PersonalKind, value: &str, out: &mut String) {
        push_text(&self.pseudonym_bytes(kind, value), out);
    }

    /// The pseudonym of `value` in binary: [`push_text`] writes it as
    /// [`Pseudonymizer::pseudonym`] does.
    pub fn pseudonym_bytes(&self, kind: PersonalKind, value: &str) -> [u8; BYTES] {
        let mut inner = self.pads.inner.clone();
        let value = value.trim();
        if kind == PersonalKind::Id && value.bytes().any(|b| b.is_ascii_lowercase()) {
            // An ID's check character `x` and `X` are the same ID.
            inner.update(value.to_ascii_uppercase().as_bytes());
        } else {
            inner.update(value.as_bytes());
        }
        let mut digest = Default::default();
        inner.finalize_into(&mut digest);
        let mut outer = self.pads.outer.clone();
        outer.update(digest);
        outer.finalize_into(&mut digest);
        digest[..BYTES].try_into().expect("a digest is longer")
    }
}

/// Appends the text of the binary pseudonym `bytes`: [`PREFIX`], then
/// its bytes in lowercase hex.
pub fn push_text(bytes: &[u8; BYTES], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; LEN];
    text[..PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
    for (digits, b) in text[PREFIX.len()..].chunks_exact_mut(2).zip(bytes) {
        digits[0] = HEX[(b >> 4) as usize];
        digits[1] = HEX[(b & 15) as usize];
    }
    out.push_str(std::str::from_utf8(&text).expect("ASCII"));
}

/// Whether `text` is shaped like a pseudonym.
pub fn is_pseudonym(text: &str) -> bool {
    text.len() == LEN
        && text.starts_with(PREFIX)
        && text.as_bytes()[PREFIX.len()..]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Byte ranges of the pseudonym-shaped tokens in `text`, in order.
pub fn tokens(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(PREFIX) {
        let start = from + at;
        let end = start + LEN;
        if end <= text.len() && is_pseudonym(&text[start..end]) {
            // A token glued to more hex digits is not one.
            let more = text.as_bytes().get(end).is_some_and(u8::is_ascii_hexdigit);
            if !more {
                out.push(start..end);
                from = end;
                continue;
            }
        }
        from = start + PREFIX.len();
    }
    out
}

/// One entry of the map from pseudonyms back to clear values, as stored
/// beside a dataset version: the kind as one letter, then the value.
pub fn clear_entry(kind: PersonalKind, value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 1);
    push_clear_entry(kind, value, &mut out);
    out
}

/// Appends the [`clear_entry`] of `value` to `out`.
pub fn push_clear_entry(kind: PersonalKind, value: &str, out: &mut String) {
    let letter = match kind {
        PersonalKind::Id => 'i',
        PersonalKind::Phone => 'p',
        PersonalKind::Name => 'n',
        PersonalKind::Other => 'o',
    };
    out.push(letter);
    out.push_str(value.trim());
}

/// Reads an entry written by [`clear_entry`].
pub fn parse_clear_entry(entry: &str) -> Option<(PersonalKind, &str)> {
    let mut chars = entry.chars();
    let kind = match chars.next()? {
        'i' => PersonalKind::Id,
        'p' => PersonalKind::Phone,
        'n' => PersonalKind::Name,
        'o' => PersonalKind::Other,
        _ => return None,
    };
    Some((kind, chars.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_fixed_width_keyed_and_equal_for_equal_values() {
        let p = Pseudonymizer::from_secret(b"one store");
        let q = Pseudonymizer::from_secret(b"another store");
        let a = p.pseudonym(PersonalKind::Id, "11010519491231002X");
        assert_eq!(a.len(), LEN);
        assert!(is_pseudonym(&a), "{a}");
        assert_eq!(a, p.pseudonym(PersonalKind::Id, " 11010519491231002x "));
        assert_ne!(a, q.pseudonym(PersonalKind::Id, "11010519491231002X"));
        assert_ne!(a, p.pseudonym(PersonalKind::Id, "110105194912310038"));
        // The same value joins whatever kind the field is marked.
        assert_eq!(
            p.pseudonym(PersonalKind::Name, "张三"),
            p.pseudonym(PersonalKind::Other, "张三")
        );
    }

    #[test]
    fn pseudonyms_are_the_first_bytes_of_hmac_sha256_in_hex() {
        use hmac::{Hmac, Mac};
        let long_secret = [7u8; 100];
        for secret in [&b"k"[..], &[0x5a; 64][..], &long_secret[..]] {
            let p = Pseudonymizer::from_secret(secret);
            let long_value = "长".repeat(40);
            for value in ["", "张三", "11010519491231002X", &long_value] {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
                mac.update(value.as_bytes());
                let tag = mac.finalize().into_bytes();
                let expected = format!("{PREFIX}{}", hex::encode(&tag[..BYTES]));
                assert_eq!(p.pseudonym(PersonalKind::Name, value), expected);
                assert_eq!(p.pseudonym_bytes(PersonalKind::Name, value), tag[..BYTES]);
            }
        }
    }

    #[test]
    fn tokens_are_found_inside_text_and_lookalikes_are_not() {
        let p = Pseudonymizer::from_secret(b"k").pseudonym(PersonalKind::Name, "李四");
        let text = format!("嫌疑人{p}，另见 {p}。");
        let found = tokens(&text);
        assert_eq!(found.len(), 2);
        assert_eq!(&text[found[0].clone()], p);
        assert!(tokens("P-0123").is_empty());
        assert!(tokens(&format!("{p}0")).is_empty(), "glued to more hex");
        assert!(tokens(&p.to_uppercase()).is_empty());
        assert!(!is_pseudonym("P-0123456789abcdef0123456789abcdeg"));
    }

    #[test]
    fn clear_entries_round_trip() {
        let e = clear_entry(PersonalKind::Phone, " 13812345678 ");
        assert_eq!(
            parse_clear_entry(&e),
            Some((PersonalKind::Phone, "13812345678"))
        );
        assert_eq!(parse_clear_entry("zoops"), None);
        assert_eq!(parse_clear_entry(""), None);
    }
}
