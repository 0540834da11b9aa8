//! JSON text written by hand where a run writes it once a lead: the same
//! bytes `serde_json` writes, faster.
//!
//! A run that keeps 250,000 leads encodes each one twice (the snapshot's
//! content, the ledger digest's canonical form), about 450 bytes of strings
//! each, nearly all of which need no escaping. [`push_str`] looks for the
//! bytes that do eight at a time and copies the runs between them whole;
//! `serde_json` looks at every byte. What comes out is byte for byte what
//! `serde_json::to_writer` writes for the same value (the snapshot compares
//! contents as bytes across runs, and the digest is part of the record):
//! the tests hold the two side by side.

/// Each byte of a word set to `b`.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

const LOW: u64 = splat(0x01);
const HIGH: u64 = splat(0x80);

/// Whether some byte of `w` is zero.
#[inline]
fn has_zero(w: u64) -> bool {
    w.wrapping_sub(LOW) & !w & HIGH != 0
}

/// Whether some byte of `w` needs an escape in a JSON string: a control
/// character (below 0x20), a quote or a backslash.
#[inline]
fn needs_escape(w: u64) -> bool {
    // A byte below 0x20: subtracting 0x20 borrows into its high bit, which
    // the byte itself did not have set.
    let control = w.wrapping_sub(splat(0x20)) & !w & HIGH != 0;
    control || has_zero(w ^ splat(b'"')) || has_zero(w ^ splat(b'\\'))
}

/// Appends `text` (a `str` or its UTF-8 bytes) as a JSON string, quoted
/// and escaped as `serde_json` does: `\"`, `\\`, `\b \t \n \f \r`, other
/// control characters as `\u00xx` (lowercase hex), everything else as it
/// is. Bytes are written as they are: the caller vouches that they are
/// UTF-8.
pub fn push_str(out: &mut Vec<u8>, text: impl AsRef<[u8]>) {
    let bytes = text.as_ref();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if !any_needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    push_escaped(out, bytes);
    out.push(b'"');
}

/// Whether some byte of `bytes` needs an escape: a word at a time, the
/// last word overlapping the one before it; texts shorter than a word a
/// byte at a time (copying them into a word stalls on the load).
#[inline]
fn any_needs_escape(bytes: &[u8]) -> bool {
    let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    if bytes.len() < 8 {
        return bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
    }
    let mut at = 0;
    while at + 8 < bytes.len() {
        if needs_escape(word(at)) {
            return true;
        }
        at += 8;
    }
    needs_escape(word(bytes.len() - 8))
}

/// The inside of a JSON string for `bytes`, some of which need escapes.
#[cold]
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    // Bytes before `from` are written.
    let mut from = 0;
    let mut at = 0;
    while at < bytes.len() {
        if at + 8 <= bytes.len() {
            let w = u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
            if !needs_escape(w) {
                at += 8;
                continue;
            }
        }
        let b = bytes[at];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0A => b"\\n",
            0x0C => b"\\f",
            0x0D => b"\\r",
            0x00..=0x1F => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&bytes[from..at]);
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xF) as usize],
                ]);
                at += 1;
                from = at;
                continue;
            }
            _ => {
                at += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[from..at]);
        out.extend_from_slice(escape);
        at += 1;
        from = at;
    }
    out.extend_from_slice(&bytes[from..]);
}

/// Appends `text` as a JSON string, or `null`.
pub fn push_opt_str(out: &mut Vec<u8>, text: Option<impl AsRef<[u8]>>) {
    match text {
        Some(t) => push_str(out, t),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `true` or `false`.
pub fn push_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(text: &str) -> String {
        let mut out = Vec::new();
        push_str(&mut out, text);
        String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
    }

    #[test]
    fn every_character_below_0x80_is_written_as_serde_json_writes_it() {
        for b in 0u8..0x80 {
            let c = char::from(b);
            for text in [
                c.to_string(),
                format!("abcdefg{c}"),
                format!("{c}abcdefgh"),
                format!("abcdefgh{c}ijklmnopq"),
                format!("{c}{c}{c}{c}{c}{c}{c}{c}{c}"),
            ] {
                assert_eq!(ours(&text), serde_json::to_string(&text).unwrap(), "{b:#x}");
            }
        }
    }

    #[test]
    fn random_texts_are_written_as_serde_json_writes_them() {
        // A small generator of its own: the same texts on every run.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let pool = [
            'a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{0}',
            '\u{1f}', '\u{7f}', 'é', '阿', '（', '）', '\u{2028}', '😀', '\u{1b}',
        ];
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let text: String = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 3 == 0 {
                        pool[(r / 3 % pool.len() as u64) as usize]
                    } else {
                        char::from(b'a' + (r % 26) as u8)
                    }
                })
                .collect();
            assert_eq!(
                ours(&text),
                serde_json::to_string(&text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn options_and_booleans_are_json() {
        let mut out = Vec::new();
        push_opt_str(&mut out, None::<&str>);
        out.push(b',');
        push_opt_str(&mut out, Some("x"));
        out.push(b',');
        push_bool(&mut out, true);
        out.push(b',');
        push_bool(&mut out, false);
        assert_eq!(out, br#"null,"x",true,false"#);
    }
}
