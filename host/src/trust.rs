//! The trust store: the public keys of the units whose models this store
//! accepts. A model is imported only when its bundle is signed by one of
//! these keys (see [`crate::share`]).
//!
//! Keys are kept in the store's `meta` tree under `trust/<fingerprint>`.
//! A key is added by hand, after checking its fingerprint with the unit that
//! owns it (over the phone, on paper): the trust store is the one decision
//! an import cannot make by itself.

use crate::{Error, Result, Store};
use jiandu_registry::keys::PublicKey;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "trust/";

/// A trusted unit key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    /// The unit, as this store's operator named it when adding the key.
    pub unit: String,
    /// Ed25519 public key, hex.
    pub key: String,
    pub fingerprint: String,
    pub added_at: String,
    /// Who added it.
    pub added_by: String,
}

impl TrustedKey {
    /// The key.
    pub fn public_key(&self) -> Result<PublicKey> {
        PublicKey::parse(&self.key).map_err(|e| Error::Other(format!("trust store: {e}")))
    }
}

fn meta_key(fingerprint: &str) -> String {
    format!("{PREFIX}{fingerprint}")
}

/// Reads a public key given as 64 hex characters, or as a file holding
/// them or holding the JSON of `jiandu unit show --format json`.
pub fn parse_key(text_or_path: &str) -> Result<PublicKey> {
    let path = std::path::Path::new(text_or_path);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        if let Ok(k) = PublicKey::parse(text.trim()) {
            return Ok(k);
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            let field = v
                .get("public_key")
                .or_else(|| v.get(0).and_then(|u| u.get("public_key")));
            if let Some(k) = field.and_then(|k| k.as_str()) {
                return PublicKey::parse(k).map_err(|e| Error::file(path, e));
            }
        }
        return Err(Error::file(
            path,
            "holds no public key (64 hex characters, or the JSON of `jiandu unit show --format json`)",
        ));
    }
    PublicKey::parse(text_or_path).map_err(|e| Error::Other(e.to_string()))
}

/// Adds `key` as the key of `unit`. When `expected_fingerprint` is given,
/// the key's fingerprint must be it (the check read out by the other unit).
/// Returns the entry and whether it was new; adding a key again updates the
/// unit name.
pub fn add(
    store: &Store,
    key: &PublicKey,
    unit: &str,
    expected_fingerprint: Option<&str>,
    added_by: &str,
) -> Result<(TrustedKey, bool)> {
    let unit = unit.trim();
    if unit.is_empty() {
        return Err(Error::Other(
            "name the unit the key belongs to with --unit".into(),
        ));
    }
    let fingerprint = key.fingerprint();
    if let Some(expected) = expected_fingerprint {
        if expected.trim().to_lowercase() != fingerprint {
            return Err(Error::Other(format!(
                "key {} has fingerprint {fingerprint}, not {}; it is not the key you were given: nothing was added",
                key.to_hex(),
                expected.trim()
            )));
        }
    }
    let existing = get(store, key)?;
    let entry = TrustedKey {
        unit: unit.to_string(),
        key: key.to_hex(),
        fingerprint: fingerprint.clone(),
        added_at: existing
            .as_ref()
            .map(|e| e.added_at.clone())
            .unwrap_or_else(crate::time::now_text),
        added_by: existing
            .as_ref()
            .map(|e| e.added_by.clone())
            .unwrap_or_else(|| added_by.to_string()),
    };
    store.put_meta(&meta_key(&fingerprint), &entry)?;
    store.flush()?;
    Ok((entry, existing.is_none()))
}

/// The entry of `key`, if trusted.
pub fn get(store: &Store, key: &PublicKey) -> Result<Option<TrustedKey>> {
    let entry: Option<TrustedKey> = store.get_meta(&meta_key(&key.fingerprint()))?;
    // The fingerprint is the lookup key; the full key must match as well.
    Ok(entry.filter(|e| e.key == key.to_hex()))
}

/// Every trusted key, by unit name.
pub fn list(store: &Store) -> Result<Vec<TrustedKey>> {
    let mut out = Vec::new();
    for item in store.meta.scan_prefix(PREFIX) {
        let (k, v) = item?;
        let entry: TrustedKey = serde_json::from_slice(&v).map_err(|e| Error::Store {
            path: store.root().to_path_buf(),
            message: format!("meta `{}` is unreadable: {e}", String::from_utf8_lossy(&k)),
        })?;
        out.push(entry);
    }
    out.sort_by(|a, b| a.unit.cmp(&b.unit).then(a.fingerprint.cmp(&b.fingerprint)));
    Ok(out)
}

/// Removes a key named by its fingerprint, its hex, or the unit name (when
/// one key has it).
pub fn remove(store: &Store, which: &str) -> Result<TrustedKey> {
    let which = which.trim();
    let all = list(store)?;
    let matches: Vec<&TrustedKey> = all
        .iter()
        .filter(|e| {
            e.fingerprint == which.to_lowercase()
                || e.key == which.to_lowercase()
                || e.unit == which
        })
        .collect();
    let entry = match matches.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(Error::Other(format!(
                "no trusted key matches `{which}`; trusted: {}",
                if all.is_empty() {
                    "none".to_string()
                } else {
                    all.iter()
                        .map(|e| format!("{} ({})", e.fingerprint, e.unit))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )))
        }
        many => {
            return Err(Error::Other(format!(
                "`{which}` matches {} keys ({}); name one by its fingerprint",
                many.len(),
                many.iter()
                    .map(|e| e.fingerprint.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    store.meta.remove(meta_key(&entry.fingerprint))?;
    store.flush()?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiandu_registry::keys::UnitKey;

    #[test]
    fn keys_are_added_listed_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = UnitKey::generate().unwrap().public();
        let b = UnitKey::generate().unwrap().public();
        assert_eq!(get(&store, &a).unwrap(), None);
        let (entry, new) = add(&store, &a, "阿克苏地区人民检察院", None, "op").unwrap();
        assert!(new);
        assert_eq!(entry.fingerprint, a.fingerprint());
        let (_, new) = add(&store, &a, "阿克苏分院", Some(&a.fingerprint()), "op").unwrap();
        assert!(!new, "adding again only renames");
        add(&store, &b, "温宿县人民检察院", None, "op").unwrap();
        assert_eq!(get(&store, &a).unwrap().unwrap().unit, "阿克苏分院");
        assert_eq!(list(&store).unwrap().len(), 2);
        assert_eq!(remove(&store, "阿克苏分院").unwrap().key, a.to_hex());
        assert_eq!(get(&store, &a).unwrap(), None);
        let err = remove(&store, &a.fingerprint()).unwrap_err().to_string();
        assert!(
            err.contains("no trusted key matches") && err.contains("温宿县"),
            "{err}"
        );
    }

    #[test]
    fn a_fingerprint_that_does_not_match_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = UnitKey::generate().unwrap().public();
        let b = UnitKey::generate().unwrap().public();
        let err = add(&store, &a, "A", Some(&b.fingerprint()), "op")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not the key you were given"), "{err}");
        assert!(list(&store).unwrap().is_empty());
    }

    #[test]
    fn keys_are_read_from_hex_a_key_file_or_unit_show_json() {
        let dir = tempfile::tempdir().unwrap();
        let k = UnitKey::generate().unwrap().public();
        assert_eq!(parse_key(&k.to_hex()).unwrap(), k);
        let hex_file = dir.path().join("a.pub");
        std::fs::write(&hex_file, format!("{}\n", k.to_hex())).unwrap();
        assert_eq!(parse_key(hex_file.to_str().unwrap()).unwrap(), k);
        let json_file = dir.path().join("a.json");
        std::fs::write(
            &json_file,
            format!("{{\"name\":\"A\",\"public_key\":\"{}\"}}", k.to_hex()),
        )
        .unwrap();
        assert_eq!(parse_key(json_file.to_str().unwrap()).unwrap(), k);
        assert!(parse_key("nonsense").is_err());
    }
}
