//! The trust store: the public keys of the units whose models this store
//! accepts, with the name and code each unit is known by here. A model is
//! imported only when its bundle is signed by one of these keys (see
//! [`crate::share`]).
//!
//! Keys are kept in the store's `meta` tree under `trust/<fingerprint>`.
//! A key is added by hand, after checking its fingerprint with the unit that
//! owns it (over the phone, on paper): the trust store is the one decision
//! an import cannot make by itself. So it is also where a publisher's
//! identity comes from: the name and code this store records for a model's
//! publisher (provenance, ledger, reports) are the trust store's for that
//! key, never what a bundle says about itself, and a bundle that claims
//! another identity for a trusted key is refused ([`check_identity`]).
//!
//! Adding and removing a key are on the record: each appends a
//! `trust-added` or `trust-removed` ledger entry. A run of an imported model
//! whose publisher is no longer trusted is refused unless the policy says
//! `allow_untrusted_publishers = true` ([`admit_run`]).

use crate::catalog::Installed;
use crate::ledger::{self, Draft, Kind, ModelRef, Outcome, RunRecord};
use crate::policy::Policy;
use crate::{Error, Result, Store};
use jiandu_registry::keys::PublicKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const PREFIX: &str = "trust/";

/// A trusted unit key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    /// The unit's name, as this store knows it.
    pub unit: String,
    /// The unit's organisation code; empty for a key trusted by a release
    /// that did not record codes (such a key must be added again).
    #[serde(default)]
    pub code: String,
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

    /// `unit (code)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.unit, self.code)
    }
}

fn meta_key(fingerprint: &str) -> String {
    format!("{PREFIX}{fingerprint}")
}

/// A public key as given to `trust add`, with the unit's own name and code
/// when it came as the JSON of `jiandu unit show --format json`.
#[derive(Debug, Clone)]
pub struct KeyInput {
    pub key: PublicKey,
    pub unit: Option<String>,
    pub code: Option<String>,
}

/// Reads a public key given as 64 hex characters, or as a file holding
/// them or holding the JSON of `jiandu unit show --format json`.
pub fn parse_key(text_or_path: &str) -> Result<KeyInput> {
    let bare = |key| KeyInput {
        key,
        unit: None,
        code: None,
    };
    let path = std::path::Path::new(text_or_path);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        if let Ok(k) = PublicKey::parse(text.trim()) {
            return Ok(bare(k));
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            let unit = v.get("public_key").map_or_else(|| v.get(0), |_| Some(&v));
            if let Some(unit) = unit {
                if let Some(k) = unit.get("public_key").and_then(|k| k.as_str()) {
                    let field = |f: &str| {
                        unit.get(f)
                            .and_then(|x| x.as_str())
                            .map(|x| x.trim().to_string())
                            .filter(|x| !x.is_empty())
                    };
                    return Ok(KeyInput {
                        key: PublicKey::parse(k).map_err(|e| Error::file(path, e))?,
                        unit: field("name"),
                        code: field("code"),
                    });
                }
            }
        }
        return Err(Error::file(
            path,
            "holds no public key (64 hex characters, or the JSON of `jiandu unit show --format json`)",
        ));
    }
    PublicKey::parse(text_or_path)
        .map(bare)
        .map_err(|e| Error::Other(e.to_string()))
}

/// What `trust add` is asked to record.
#[derive(Debug, Clone)]
pub struct Addition<'a> {
    pub input: &'a KeyInput,
    /// `--unit`; else the name in the key file.
    pub unit: Option<&'a str>,
    /// `--code`; else the code in the key file.
    pub code: Option<&'a str>,
    /// `--fingerprint`: the fingerprint read out by the other unit.
    pub expected_fingerprint: Option<&'a str>,
    pub operator: &'a str,
}

/// Adds a key with the unit's name and code, and puts it on the record.
///
/// The name and code are those the unit gave itself (`unit init`), which
/// its bundles carry: when the key file states them, `--unit` and
/// `--code` must agree. One code is trusted under one key. When
/// `expected_fingerprint` is given, the key's fingerprint must be it.
/// Returns the entry and whether anything changed; adding a key again with
/// another name or code updates them (on the record too).
pub fn add(store: &Store, policy: &Policy, a: &Addition<'_>) -> Result<(TrustedKey, bool)> {
    let key = &a.input.key;
    let fingerprint = key.fingerprint();
    if let Some(expected) = a.expected_fingerprint {
        if expected.trim().to_lowercase() != fingerprint {
            return Err(Error::Other(format!(
                "key {} has fingerprint {fingerprint}, not {}; it is not the key you were given: nothing was added",
                key.to_hex(),
                expected.trim()
            )));
        }
    }
    let pick = |given: Option<&str>, stated: &Option<String>, what: &str, flag: &str| {
        let given = given.map(str::trim).filter(|g| !g.is_empty());
        match (given, stated) {
            (Some(g), Some(s)) if g != s => Err(Error::Other(format!(
                "the key file says the unit's {what} is `{s}`, but {flag} says `{g}`; a unit's bundles carry the {what} it gave itself, so trust it under that one (leave out {flag}), or check whose key this is: nothing was added"
            ))),
            (Some(g), _) => Ok(g.to_string()),
            (None, Some(s)) => Ok(s.clone()),
            (None, None) => Err(Error::Other(format!(
                "name the unit's {what} with {flag} (the key file does not state it): nothing was added"
            ))),
        }
    };
    let unit = pick(a.unit, &a.input.unit, "name", "--unit")?;
    let code = pick(a.code, &a.input.code, "code", "--code")?;
    if let Some(other) = list(store)?
        .into_iter()
        .find(|t| t.code == code && t.key != key.to_hex())
    {
        return Err(Error::Other(format!(
            "unit code {code} is already trusted, as {} with key {}; one unit is trusted under one key: remove that key first (`jiandu trust remove {}`) if the unit has a new one: nothing was added",
            other.label(),
            other.fingerprint,
            other.fingerprint
        )));
    }
    let existing = get(store, key)?;
    if let Some(e) = &existing {
        if e.unit == unit && e.code == code {
            return Ok((e.clone(), false));
        }
    }
    let entry = TrustedKey {
        unit,
        code,
        key: key.to_hex(),
        fingerprint: fingerprint.clone(),
        added_at: existing
            .as_ref()
            .map(|e| e.added_at.clone())
            .unwrap_or_else(crate::time::now_text),
        added_by: existing
            .as_ref()
            .map(|e| e.added_by.clone())
            .unwrap_or_else(|| a.operator.to_string()),
    };
    // On the record first: a key the ledger does not show as trusted is
    // not trusted.
    record(store, policy, Kind::TrustAdded, &entry, a.operator)?;
    store.put_meta(&meta_key(&fingerprint), &entry)?;
    store.flush()?;
    Ok((entry, true))
}

/// Appends the `trust-added` or `trust-removed` entry of `entry`.
fn record(
    store: &Store,
    policy: &Policy,
    kind: Kind,
    entry: &TrustedKey,
    operator: &str,
) -> Result<()> {
    let now = crate::time::now_text();
    let action = match kind {
        Kind::TrustAdded => "trust-added",
        _ => "trust-removed",
    };
    let draft = Draft {
        unit: crate::policy::unit_label(store, policy)?,
        operator: operator.to_string(),
        kind,
        run: RunRecord {
            run_id: format!("{action}-{}-{now}", entry.fingerprint),
            // No model: the entry is about a publisher, named where a
            // run names its model's publisher.
            model: ModelRef {
                name: String::new(),
                version: String::new(),
                wasm_sha256: String::new(),
                publisher: Some(format!("{}, key {}", entry.label(), entry.fingerprint)),
                plan: None,
            },
            datasets: Vec::new(),
            params: BTreeMap::from([
                ("code".to_string(), entry.code.clone()),
                ("fingerprint".to_string(), entry.fingerprint.clone()),
                ("key".to_string(), entry.key.clone()),
                ("unit".to_string(), entry.unit.clone()),
            ]),
            limits: None,
            started_at: now.clone(),
            ended_at: Some(now),
            fuel_used: None,
            peak_memory: None,
            records_read: None,
            leads_count: None,
            leads_digest: None,
            outcome: Outcome::Succeeded,
            ..RunRecord::default()
        },
        ..Draft::run(String::new(), String::new(), kind, RunRecord::default())
    };
    ledger::append(store, &draft)?;
    Ok(())
}

/// The entry of `key`, if trusted.
pub fn get(store: &Store, key: &PublicKey) -> Result<Option<TrustedKey>> {
    get_hex(store, &key.to_hex())
}

/// The entry of the key given as hex, if trusted.
pub fn get_hex(store: &Store, key_hex: &str) -> Result<Option<TrustedKey>> {
    let Ok(key) = PublicKey::parse(key_hex) else {
        return Ok(None);
    };
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

/// Removes a key named by its fingerprint, its hex, the unit name or the
/// unit code (when one key has it), and puts the removal on the record.
pub fn remove(store: &Store, policy: &Policy, which: &str, operator: &str) -> Result<TrustedKey> {
    let which = which.trim();
    let all = list(store)?;
    let matches: Vec<&TrustedKey> = all
        .iter()
        .filter(|e| {
            e.fingerprint == which.to_lowercase()
                || e.key == which.to_lowercase()
                || e.unit == which
                || (!e.code.is_empty() && e.code == which)
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
    record(store, policy, Kind::TrustRemoved, &entry, operator)?;
    store.meta.remove(meta_key(&entry.fingerprint))?;
    store.flush()?;
    Ok(entry)
}

/// Checks the identity a bundle or index claims for a trusted key (`what`
/// names it: "bundle m@1.0.0") against what this store trusts the key as.
pub fn check_identity(trusted: &TrustedKey, unit: &str, code: &str, what: &str) -> Result<()> {
    if trusted.code.is_empty() {
        return Err(Error::Other(format!(
            "key {} is trusted as {} without a unit code (it was added by an earlier release); add it again with its code: `jiandu trust add {} --unit \"{}\" --code …`",
            trusted.fingerprint, trusted.unit, trusted.key, trusted.unit
        )));
    }
    if trusted.unit != unit || trusted.code != code {
        return Err(Error::Other(format!(
            "{what} says it was published by {unit} ({code}), but this store trusts key {} as {}; a publisher's name and code come from the trust store, so a bundle claiming another unit's identity is refused",
            trusted.fingerprint,
            trusted.label()
        )));
    }
    Ok(())
}

/// Whether an installed model may run as far as trust goes, and who its
/// publisher is for the record.
///
/// A model built here has no publisher. An imported model's publisher is
/// named as this store trusts its key now (name and code from the trust
/// store). When the key is no longer trusted the run is refused (the
/// message names the publisher and `jiandu trust add`), unless the policy
/// sets `allow_untrusted_publishers`; such a run records, in the
/// publisher it names, that the key was not trusted.
pub fn admit_run(
    store: &Store,
    policy: &Policy,
    installed: &Installed,
) -> std::result::Result<Option<String>, String> {
    let Some(p) = &installed.provenance else {
        return Ok(None);
    };
    let trusted = get_hex(store, &p.key).map_err(|e| e.to_string())?;
    match trusted {
        Some(t) => Ok(Some(format!(
            "{} ({}), key {}, bundle sha256 {}",
            t.unit,
            // A key trusted before codes were recorded: the code checked
            // against it when the model was imported.
            if t.code.is_empty() {
                &p.publisher_code
            } else {
                &t.code
            },
            t.fingerprint,
            p.bundle_sha256
        ))),
        None if policy.allow_untrusted_publishers => Ok(Some(format!(
            "{} ({}), key {}, bundle sha256 {}; key not trusted, run allowed by allow_untrusted_publishers",
            p.publisher_unit, p.publisher_code, p.fingerprint, p.bundle_sha256
        ))),
        None => Err(format!(
            "{} was published by {} ({}), key {}, which this store no longer trusts; to run it, trust the key again (`jiandu trust add {} --unit \"{}\" --code {}`) or set allow_untrusted_publishers = true in the policy",
            installed.manifest.id(),
            p.publisher_unit,
            p.publisher_code,
            p.fingerprint,
            p.key,
            p.publisher_unit,
            p.publisher_code
        )),
    }
}

/// How a model stands with the trust store: built here, or imported from
/// a key that is or is no longer trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustState {
    /// Built by this unit.
    Local,
    /// Imported; its publisher's key is in the trust store.
    Trusted,
    /// Imported; its publisher's key is not in the trust store.
    Untrusted,
}

impl TrustState {
    pub fn as_str(&self) -> &'static str {
        match self {
            TrustState::Local => "local",
            TrustState::Trusted => "trusted",
            TrustState::Untrusted => "untrusted",
        }
    }
}

/// The trust state of an installed model.
pub fn state(store: &Store, installed: &Installed) -> Result<TrustState> {
    Ok(match &installed.provenance {
        None => TrustState::Local,
        Some(p) => match get_hex(store, &p.key)? {
            Some(_) => TrustState::Trusted,
            None => TrustState::Untrusted,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiandu_registry::keys::UnitKey;

    fn input(key: &PublicKey, unit: Option<&str>, code: Option<&str>) -> KeyInput {
        KeyInput {
            key: *key,
            unit: unit.map(str::to_string),
            code: code.map(str::to_string),
        }
    }

    fn add_as(
        store: &Store,
        input: &KeyInput,
        unit: Option<&str>,
        code: Option<&str>,
    ) -> Result<(TrustedKey, bool)> {
        add(
            store,
            &Policy::default(),
            &Addition {
                input,
                unit,
                code,
                expected_fingerprint: None,
                operator: "op",
            },
        )
    }

    #[test]
    fn keys_are_added_listed_found_and_removed_on_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = UnitKey::generate().unwrap().public();
        let b = UnitKey::generate().unwrap().public();
        assert_eq!(get(&store, &a).unwrap(), None);
        let (entry, new) = add_as(
            &store,
            &input(&a, None, None),
            Some("阿克苏地区人民检察院"),
            Some("A1"),
        )
        .unwrap();
        assert!(new);
        assert_eq!(entry.fingerprint, a.fingerprint());
        assert_eq!(entry.label(), "阿克苏地区人民检察院 (A1)");
        let (_, changed) = add_as(
            &store,
            &input(&a, None, None),
            Some("阿克苏地区人民检察院"),
            Some("A1"),
        )
        .unwrap();
        assert!(!changed, "the same again changes nothing");
        let (_, changed) = add_as(
            &store,
            &input(&a, None, None),
            Some("阿克苏分院"),
            Some("A1"),
        )
        .unwrap();
        assert!(changed, "adding again renames");
        add_as(
            &store,
            &input(&b, Some("温宿县人民检察院"), Some("W1")),
            None,
            None,
        )
        .unwrap();
        assert_eq!(get(&store, &a).unwrap().unwrap().unit, "阿克苏分院");
        assert_eq!(list(&store).unwrap().len(), 2);
        let removed = remove(&store, &Policy::default(), "阿克苏分院", "op2").unwrap();
        assert_eq!(removed.key, a.to_hex());
        assert_eq!(get(&store, &a).unwrap(), None);
        let err = remove(&store, &Policy::default(), &a.fingerprint(), "op")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no trusted key matches") && err.contains("温宿县"),
            "{err}"
        );

        let entries = ledger::read_all(&store).unwrap();
        let kinds: Vec<Kind> = entries.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::TrustAdded,
                Kind::TrustAdded,
                Kind::TrustAdded,
                Kind::TrustRemoved
            ]
        );
        let last = entries.last().unwrap();
        assert_eq!(last.operator, "op2");
        assert_eq!(last.run.params["fingerprint"], a.fingerprint());
        assert_eq!(last.run.params["unit"], "阿克苏分院");
        assert_eq!(last.run.params["code"], "A1");
    }

    #[test]
    fn a_fingerprint_that_does_not_match_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = UnitKey::generate().unwrap().public();
        let b = UnitKey::generate().unwrap().public();
        let i = input(&a, Some("A"), Some("A1"));
        let err = add(
            &store,
            &Policy::default(),
            &Addition {
                input: &i,
                unit: None,
                code: None,
                expected_fingerprint: Some(&b.fingerprint()),
                operator: "op",
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not the key you were given"), "{err}");
        assert!(list(&store).unwrap().is_empty());
        assert!(ledger::read_all(&store).unwrap().is_empty());
    }

    #[test]
    fn a_name_or_code_other_than_the_key_file_states_or_a_second_key_for_a_code_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = UnitKey::generate().unwrap().public();
        let i = input(&a, Some("阿克苏地区人民检察院"), Some("A1"));
        let err = add_as(&store, &i, Some("某某区人民检察院"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("says the unit's name is `阿克苏地区人民检察院`, but --unit says `某某区人民检察院`"),
            "{err}"
        );
        let err = add_as(&store, &input(&a, None, None), Some("A"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("name the unit's code with --code"), "{err}");
        add_as(&store, &i, None, None).unwrap();
        let c = UnitKey::generate().unwrap().public();
        let err = add_as(&store, &input(&c, Some("冒名"), Some("A1")), None, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unit code A1 is already trusted, as 阿克苏地区人民检察院 (A1)"),
            "{err}"
        );
        assert_eq!(list(&store).unwrap().len(), 1);
    }

    #[test]
    fn a_claimed_identity_must_be_the_trusted_one() {
        let key = UnitKey::generate().unwrap().public();
        let trusted = TrustedKey {
            unit: "阿克苏地区人民检察院".into(),
            code: "A1".into(),
            key: key.to_hex(),
            fingerprint: key.fingerprint(),
            added_at: String::new(),
            added_by: String::new(),
        };
        check_identity(&trusted, "阿克苏地区人民检察院", "A1", "bundle m@1.0.0").unwrap();
        let err = check_identity(&trusted, "温宿县人民检察院", "W1", "bundle m@1.0.0")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bundle m@1.0.0 says it was published by 温宿县人民检察院 (W1)")
                && err.contains("trusts key")
                && err.contains("as 阿克苏地区人民检察院 (A1)"),
            "{err}"
        );
        let old = TrustedKey {
            code: String::new(),
            ..trusted
        };
        let err = check_identity(&old, "阿克苏地区人民检察院", "A1", "bundle m@1.0.0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("without a unit code"), "{err}");
    }

    #[test]
    fn keys_are_read_from_hex_a_key_file_or_unit_show_json() {
        let dir = tempfile::tempdir().unwrap();
        let k = UnitKey::generate().unwrap().public();
        assert_eq!(parse_key(&k.to_hex()).unwrap().key, k);
        let hex_file = dir.path().join("a.pub");
        std::fs::write(&hex_file, format!("{}\n", k.to_hex())).unwrap();
        assert_eq!(parse_key(hex_file.to_str().unwrap()).unwrap().key, k);
        let json_file = dir.path().join("a.json");
        std::fs::write(
            &json_file,
            format!(
                "{{\"name\":\"A\",\"code\":\"A1\",\"public_key\":\"{}\"}}",
                k.to_hex()
            ),
        )
        .unwrap();
        let read = parse_key(json_file.to_str().unwrap()).unwrap();
        assert_eq!(read.key, k);
        assert_eq!(read.unit.as_deref(), Some("A"));
        assert_eq!(read.code.as_deref(), Some("A1"));
        assert!(parse_key("nonsense").is_err());
    }
}
