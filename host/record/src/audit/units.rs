//! The central office's register of units whose ledgers it imports: name,
//! code and Ed25519 public key, kept in meta under
//! `audit/units/<fingerprint>`. It is separate from the trust store of
//! model publishers: trusting a unit's models and auditing its runs are
//! different decisions.

use crate::{Error, Result, Store};
use jiandu_registry::keys::PublicKey;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "audit/units/";

/// A unit registered at this office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredUnit {
    pub name: String,
    pub code: String,
    /// Ed25519 public key, hex.
    pub public_key: String,
    pub fingerprint: String,
    pub added_at: String,
}

impl RegisteredUnit {
    pub fn key(&self) -> Result<PublicKey> {
        PublicKey::parse(&self.public_key).map_err(|e| {
            Error::Other(format!(
                "the key registered for unit {} is unreadable: {e}",
                self.name
            ))
        })
    }

    /// `name (code)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.code)
    }
}

/// What `audit unit add` was given: a public key and, when it came from
/// `jiandu unit show --format json` or an export file, the unit's own name
/// and code.
#[derive(Debug, Clone)]
pub struct KeyInput {
    pub key: PublicKey,
    pub name: Option<String>,
    pub code: Option<String>,
}

/// Reads a public key given as 64 hex characters, or a file holding hex,
/// the JSON of `jiandu unit show --format json`, or an export file.
pub fn parse_key_input(text_or_path: &str) -> Result<KeyInput> {
    let text = match std::fs::read_to_string(text_or_path) {
        Ok(t) => t,
        Err(_) => text_or_path.to_string(),
    };
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(first)
        .or_else(|_| serde_json::from_str::<serde_json::Value>(text.trim()))
    {
        // An export's header line nests the unit under "header".
        let obj = value.get("header").unwrap_or(&value);
        if let Some(hex) = obj.get("public_key").and_then(|v| v.as_str()) {
            let key = PublicKey::parse(hex).map_err(|e| Error::Other(e.to_string()))?;
            let field = |k: &str| obj.get(k).and_then(|v| v.as_str()).map(str::to_string);
            return Ok(KeyInput {
                key,
                name: field("name").or_else(|| field("unit")),
                code: field("code"),
            });
        }
        return Err(Error::Other(format!(
            "{text_or_path}: JSON without a `public_key` field"
        )));
    }
    let key = PublicKey::parse(text.trim()).map_err(|e| Error::Other(e.to_string()))?;
    Ok(KeyInput {
        key,
        name: None,
        code: None,
    })
}

fn meta_key(fingerprint: &str) -> String {
    format!("{PREFIX}{fingerprint}")
}

/// Registers a unit. Registering the same key with the same name and code
/// again changes nothing; a key or a code already registered otherwise is
/// refused, so one unit cannot end up with two ledgers under two keys.
pub fn add(store: &Store, key: &PublicKey, name: &str, code: &str) -> Result<RegisteredUnit> {
    let (name, code) = (name.trim(), code.trim());
    if name.is_empty() || code.is_empty() {
        return Err(Error::Other("a unit needs a name and a code".into()));
    }
    let fingerprint = key.fingerprint();
    if let Some(u) = get(store, &fingerprint)? {
        if u.name == name && u.code == code {
            return Ok(u);
        }
        return Err(Error::Other(format!(
            "key {fingerprint} is already registered for unit {}",
            u.label()
        )));
    }
    if let Some(u) = list(store)?.into_iter().find(|u| u.code == code) {
        return Err(Error::Other(format!(
            "unit code {code} is already registered, as {} with key {}",
            u.label(),
            u.fingerprint
        )));
    }
    let unit = RegisteredUnit {
        name: name.to_string(),
        code: code.to_string(),
        public_key: key.to_hex(),
        fingerprint: fingerprint.clone(),
        added_at: crate::time::now_text(),
    };
    store.put_meta(&meta_key(&fingerprint), &unit)?;
    store.flush()?;
    Ok(unit)
}

/// The unit registered with this key fingerprint.
pub fn get(store: &Store, fingerprint: &str) -> Result<Option<RegisteredUnit>> {
    store.get_meta(&meta_key(fingerprint))
}

/// All registered units, by fingerprint.
pub fn list(store: &Store) -> Result<Vec<RegisteredUnit>> {
    store
        .meta
        .scan_prefix(PREFIX)
        .map(|item| {
            let (k, v) = item?;
            serde_json::from_slice(&v).map_err(|e| {
                Error::Other(format!(
                    "meta `{}` is unreadable: {e}",
                    String::from_utf8_lossy(&k)
                ))
            })
        })
        .collect()
}

/// Whether `text` names `unit`: its fingerprint (or a prefix of at least
/// four characters), its name or its code.
pub fn names(unit: &RegisteredUnit, text: &str) -> bool {
    let t = text.trim();
    t == unit.name
        || t == unit.code
        || t == unit.fingerprint
        || (t.len() >= 4 && unit.fingerprint.starts_with(t))
}

/// The one registered unit `text` names.
pub fn find(store: &Store, text: &str) -> Result<RegisteredUnit> {
    let all = list(store)?;
    let mut found: Vec<RegisteredUnit> = all.iter().filter(|u| names(u, text)).cloned().collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::Other(format!(
            "no registered unit is named `{text}` (by fingerprint, name or code); registered: {}",
            if all.is_empty() {
                "none".to_string()
            } else {
                all.iter().map(|u| u.label()).collect::<Vec<_>>().join(", ")
            }
        ))),
        _ => Err(Error::Other(format!(
            "`{text}` names several units ({}); use the key fingerprint",
            found
                .iter()
                .map(|u| u.label())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiandu_registry::keys::UnitKey;

    #[test]
    fn units_register_once_and_are_found_by_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = UnitKey::generate().unwrap().public();
        let u = add(&store, &key, "温宿县人民检察院", "11652922MB1234567X").unwrap();
        assert_eq!(
            add(&store, &key, "温宿县人民检察院", "11652922MB1234567X").unwrap(),
            u
        );
        assert!(add(&store, &key, "别的院", "11652922MB1234567X").is_err());
        let other = UnitKey::generate().unwrap().public();
        let err = add(&store, &other, "冒名", "11652922MB1234567X").unwrap_err();
        assert!(err.to_string().contains("already registered"), "{err}");
        for text in [
            "温宿县人民检察院",
            "11652922MB1234567X",
            &u.fingerprint,
            &u.fingerprint[..9],
        ] {
            assert_eq!(find(&store, text).unwrap(), u, "{text}");
        }
        assert!(find(&store, "nobody").is_err());
    }

    #[test]
    fn key_input_reads_hex_and_unit_show_json() {
        let key = UnitKey::generate().unwrap().public();
        assert_eq!(parse_key_input(&key.to_hex()).unwrap().key, key);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unit.json");
        std::fs::write(
            &path,
            serde_json::json!({"name": "乌什县人民检察院", "code": "C1", "public_key": key.to_hex()}).to_string(),
        )
        .unwrap();
        let input = parse_key_input(path.to_str().unwrap()).unwrap();
        assert_eq!(input.key, key);
        assert_eq!(input.name.as_deref(), Some("乌什县人民检察院"));
        assert_eq!(input.code.as_deref(), Some("C1"));
        assert!(parse_key_input("not a key").is_err());
    }
}
