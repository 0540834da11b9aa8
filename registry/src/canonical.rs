//! RFC 8785 canonical JSON (the JSON Canonicalization Scheme) for every
//! document that is signed after being serialized: release statements,
//! registry indexes, and the ledger's checkpoints, heads and export
//! headers. Keys sorted by their UTF-16 code units, no whitespace, numbers
//! and strings in their one ECMAScript spelling: the bytes depend on the
//! values alone, not on field order in a struct or on the serializer, so a
//! verifier in any language can rebuild exactly what was signed.
//!
//! Ledger entries are not re-serialized to be checked: their signature
//! covers the sha256 of their exact stored bytes.

use serde::Serialize;

/// The RFC 8785 bytes of `value`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_jcs::to_vec(value).expect("signed documents serialize as JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Doc {
        zeta: u64,
        alpha: &'static str,
        nested: std::collections::BTreeMap<&'static str, i64>,
    }

    #[test]
    fn keys_are_sorted_and_values_spelt_one_way() {
        let doc = Doc {
            zeta: 10,
            alpha: "温宿\u{1}\"\\/",
            nested: [("b", -1), ("a", 2)].into_iter().collect(),
        };
        assert_eq!(
            String::from_utf8(to_vec(&doc)).unwrap(),
            r#"{"alpha":"温宿\u0001\"\\/","nested":{"a":2,"b":-1},"zeta":10}"#
        );
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // U+FB01 sorts before U+1F600 in UTF-8 byte order and after it in
        // UTF-16 (the surrogate 0xD83D < 0xFB01): RFC 8785 §3.2.3 wants UTF-16.
        let value = serde_json::json!({"\u{fb01}": 1, "\u{1f600}": 2});
        assert_eq!(
            String::from_utf8(to_vec(&value)).unwrap(),
            "{\"\u{1f600}\":2,\"\u{fb01}\":1}"
        );
    }
}
