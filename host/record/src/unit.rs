//! This store's unit (单位): its name, organisation code and Ed25519 key
//! pair. The key signs the unit's model bundles and ledger entries; the
//! private key file sits in `<store>/unit/unit.key` with owner-only
//! permissions and is never printed.

use crate::{Error, Result, Store};
use jiandu_registry::keys::{PublicKey, UnitKey};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

const META_KEY: &str = "unit";

/// The unit as recorded in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub name: String,
    /// The unit's organisation code (e.g. its unified social credit code).
    pub code: String,
    /// Ed25519 public key, hex.
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: String,
}

/// Where the private key lives.
pub fn key_path(store: &Store) -> PathBuf {
    store.root().join("unit").join("unit.key")
}

/// The unit of this store, if `unit init` was run.
pub fn current(store: &Store) -> Result<Option<Unit>> {
    store.get_meta(META_KEY)
}

/// Creates the unit's key pair and records the unit. Refuses when the store
/// already has a unit.
pub fn init(store: &Store, name: &str, code: &str) -> Result<Unit> {
    if let Some(u) = current(store)? {
        return Err(Error::Other(format!(
            "this store already belongs to unit {} ({}), key {}",
            u.name, u.code, u.fingerprint
        )));
    }
    if name.trim().is_empty() || code.trim().is_empty() {
        return Err(Error::Other("a unit needs a name and a code".into()));
    }
    let key = UnitKey::generate().map_err(|e| Error::Other(e.to_string()))?;
    let path = key_path(store);
    key.save(&path).map_err(|e| Error::Other(e.to_string()))?;
    let public = key.public();
    let unit = Unit {
        name: name.trim().to_string(),
        code: code.trim().to_string(),
        public_key: public.to_hex(),
        fingerprint: public.fingerprint(),
        created_at: crate::time::now_text(),
    };
    store.put_meta(META_KEY, &unit)?;
    store.flush()?;
    Ok(unit)
}

/// The unit's signing key, checked against the recorded public key.
pub fn signing_key(store: &Store) -> Result<Option<UnitKey>> {
    let Some(unit) = current(store)? else {
        return Ok(None);
    };
    let key = UnitKey::load(&key_path(store)).map_err(|e| Error::Other(e.to_string()))?;
    if key.public().to_hex() != unit.public_key {
        return Err(Error::Other(format!(
            "{} does not hold the key of unit {} ({})",
            key_path(store).display(),
            unit.name,
            unit.fingerprint
        )));
    }
    Ok(Some(key))
}

/// Parses a public key given as hex text or as a file holding it.
pub fn parse_public_key(text_or_path: &str) -> Result<PublicKey> {
    let text = match std::fs::read_to_string(text_or_path) {
        Ok(t) => t,
        Err(_) => text_or_path.to_string(),
    };
    PublicKey::parse(text.trim()).map_err(|e| Error::Other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_records_the_unit_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(current(&store).unwrap(), None);
        let u = init(&store, "温宿县人民检察院", "11652922MB1234567X").unwrap();
        assert_eq!(current(&store).unwrap(), Some(u.clone()));
        assert!(init(&store, "x", "y").is_err());
        let key = signing_key(&store).unwrap().unwrap();
        assert_eq!(key.public().to_hex(), u.public_key);
    }
}
