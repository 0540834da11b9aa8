//! Host policy: `jiandu.toml` in the store (or `--config`).
//!
//! ```toml
//! unit = "某某县人民检察院"        # recorded in every ledger entry
//! grant_declared = true           # models may read what they declare unless listed below
//!
//! [defaults]                      # what a run gets when its model asks for nothing
//! memory_mib = 256
//! fuel = 100_000_000_000
//! wall_seconds = 300
//! stack_kib = 1024
//! max_leads = 100_000
//! max_lead_bytes = 16_384
//! max_lead_mib = 1024             # all of a run's leads (spilled to disk past 4 MiB)
//! max_log_lines = 1_000
//!
//! [maximum]                       # caps a model's own [limits] and every default
//! memory_mib = 1024
//! fuel = 200_000_000_000
//! wall_seconds = 3600
//!
//! [models.local-model]            # per-model grants
//! datasets = ["employers"]        # only these; declared but not granted = refused
//! clear_personal = false          # personal fields reach the model masked
//!
//! [models.imported-model]         # a model imported from another unit
//! publisher = "3f2a:91c0:5b7e:0d44:8a21:c3f9:1e60:77ab"  # its publisher's key
//! datasets = ["employers"]
//! ```
//!
//! A grant is bound to who made the model: one with `publisher` (a key
//! fingerprint as `jiandu trust list` shows it, or the key in hex) applies
//! only to a model imported under that key, one without only to a model
//! built here. So a bundle that reuses the name of a granted model inherits
//! nothing. An imported model that no grant names reads no dataset, whatever
//! `grant_declared` says: its runs are refused, naming the grant to add.
//!
//! A value left out of `[maximum]` keeps its built-in maximum; one left out
//! of `[defaults]` keeps its built-in default, lowered to the maximum. A
//! policy whose defaults exceed its maximum, or whose values are outside
//! what the sandbox can enforce (see the `MAX_*` constants), is refused
//! with the key named.

use crate::catalog::{Manifest, Provenance};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use jiandu_sandbox::limits::{
    Limits, MAX_LEAD_BYTES, MAX_LEAD_MIB, MAX_MEMORY_MIB, MAX_STACK_KIB, MAX_WALL_SECONDS,
    MIN_STACK_KIB,
};

/// `[defaults]` or `[maximum]` as written: what is left out is filled in.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    memory_mib: Option<u64>,
    fuel: Option<u64>,
    wall_seconds: Option<u64>,
    stack_kib: Option<u64>,
    max_leads: Option<u64>,
    max_lead_bytes: Option<u64>,
    max_lead_mib: Option<u64>,
    max_log_lines: Option<u64>,
}

impl LimitsFile {
    fn over(&self, base: Limits) -> Limits {
        Limits {
            memory_mib: self.memory_mib.unwrap_or(base.memory_mib),
            fuel: self.fuel.unwrap_or(base.fuel),
            wall_seconds: self.wall_seconds.unwrap_or(base.wall_seconds),
            stack_kib: self.stack_kib.unwrap_or(base.stack_kib),
            max_leads: self.max_leads.unwrap_or(base.max_leads),
            max_lead_bytes: self.max_lead_bytes.unwrap_or(base.max_lead_bytes),
            max_lead_mib: self.max_lead_mib.unwrap_or(base.max_lead_mib),
            max_log_lines: self.max_log_lines.unwrap_or(base.max_log_lines),
        }
    }
}

/// `jiandu.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default = "default_unit")]
    unit: String,
    #[serde(default = "yes")]
    grant_declared: bool,
    #[serde(default)]
    defaults: LimitsFile,
    #[serde(default)]
    maximum: LimitsFile,
    #[serde(default)]
    models: BTreeMap<String, Grant>,
    #[serde(default)]
    allow_untrusted_publishers: bool,
}

impl TryFrom<PolicyFile> for Policy {
    type Error = String;

    fn try_from(file: PolicyFile) -> std::result::Result<Policy, String> {
        let maximum = file.maximum.over(Limits::maximum());
        maximum.check("maximum")?;
        let defaults = file.defaults.over(Limits::default().capped(&maximum));
        defaults.check("defaults")?;
        for ((key, value), (_, max)) in defaults.entries().into_iter().zip(maximum.entries()) {
            if value > max {
                return Err(format!(
                    "[defaults] {key} = {value} is above [maximum] {key} = {max}; raise the maximum or lower the default"
                ));
            }
        }
        for (model, grant) in &file.models {
            crate::catalog::check_name(model).map_err(|e| format!("[models.{model}]: {e}"))?;
            for ds in grant.datasets.iter().flatten() {
                crate::catalog::check_name(ds)
                    .map_err(|e| format!("[models.{model}] datasets: {e}"))?;
            }
            if let Some(p) = &grant.publisher {
                check_publisher(p).map_err(|e| format!("[models.{model}] publisher: {e}"))?;
            }
        }
        Ok(Policy {
            unit: file.unit,
            grant_declared: file.grant_declared,
            defaults,
            maximum,
            models: file.models,
            allow_untrusted_publishers: file.allow_untrusted_publishers,
            path: None,
        })
    }
}

/// What one model is granted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The key of the unit that published the model (fingerprint or hex):
    /// the grant applies to a model imported under this key only. `None`:
    /// to a model built here only.
    #[serde(default)]
    pub publisher: Option<String>,
    /// Datasets the model may read; `None` = what it declares (for a model
    /// built here, only if `grant_declared`).
    #[serde(default)]
    pub datasets: Option<Vec<String>>,
    #[serde(default)]
    pub clear_personal: bool,
}

impl Grant {
    /// Whether this grant is for a model made by `publisher` (`None`: built
    /// here).
    pub fn applies_to(&self, publisher: Option<&Provenance>) -> bool {
        match (&self.publisher, publisher) {
            (None, None) => true,
            (Some(named), Some(p)) => {
                let named = named.trim().to_ascii_lowercase();
                named == p.fingerprint.to_ascii_lowercase() || named == p.key.to_ascii_lowercase()
            }
            _ => false,
        }
    }
}

/// Checks that `publisher` is written as a key fingerprint (hex in groups
/// separated by colons) or a key in hex.
fn check_publisher(publisher: &str) -> std::result::Result<(), String> {
    let p = publisher.trim();
    let hex_digits = p.chars().filter(char::is_ascii_hexdigit).count();
    let well_formed = !p.is_empty()
        && p.chars().all(|c| c.is_ascii_hexdigit() || c == ':')
        && (hex_digits == 32 || (hex_digits == 64 && !p.contains(':')));
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "`{publisher}` is not a key fingerprint (as `jiandu trust list` shows it) or a key in hex"
        ))
    }
}

/// The host policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "PolicyFile")]
pub struct Policy {
    /// Recorded in every ledger entry when the store has no unit identity.
    pub unit: String,
    /// Whether a model without a `[models.<name>]` grant list may read
    /// every dataset it declares.
    pub grant_declared: bool,
    /// What a run gets when its model asks for nothing.
    pub defaults: Limits,
    /// The most a model's own `[limits]` can obtain.
    pub maximum: Limits,
    /// Grants by model name.
    pub models: BTreeMap<String, Grant>,
    /// Whether an imported model whose publisher's key was removed from
    /// the trust store may still run (each such run says so in the
    /// ledger); by default it is refused.
    pub allow_untrusted_publishers: bool,
    /// Where the policy was read from, for messages.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

fn default_unit() -> String {
    "本地单位".to_string()
}

fn yes() -> bool {
    true
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            unit: default_unit(),
            grant_declared: true,
            defaults: Limits::default(),
            maximum: Limits::maximum(),
            models: BTreeMap::new(),
            allow_untrusted_publishers: false,
            path: None,
        }
    }
}

/// What policy decided for one run.
#[derive(Debug, Clone)]
pub struct Decision {
    pub limits: Limits,
    pub clear_personal: bool,
}

impl Policy {
    /// Reads the policy at `path`, or the defaults if it does not exist
    /// (the store's own `jiandu.toml`).
    pub fn load(path: &Path) -> Result<Policy> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Policy::default()),
            _ => Policy::load_required(path),
        }
    }

    /// Reads the policy at `path`, which must exist (a file given with
    /// `--config`: a typo must not silently fall back to the defaults).
    pub fn load_required(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Policy {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut p: Policy = toml::from_str(&text).map_err(|e| Error::Policy {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        p.path = Some(path.to_path_buf());
        Ok(p)
    }

    /// Decides a run of `manifest`, published by `publisher` (`None`: a
    /// model built here): refuses it if it declares a dataset that is not
    /// granted, and caps its limits. Only a grant bound to the same
    /// publisher applies (see the module docs).
    pub fn decide(
        &self,
        manifest: &Manifest,
        publisher: Option<&Provenance>,
    ) -> std::result::Result<Decision, String> {
        let named = self.models.get(&manifest.name);
        let grant = named.filter(|g| g.applies_to(publisher));
        let granted: Option<&Vec<String>> = grant.and_then(|g| g.datasets.as_ref());
        let in_file = self
            .path
            .as_ref()
            .map(|p| format!(" ({})", p.display()))
            .unwrap_or_default();
        if let (Some(p), None) = (publisher, grant) {
            if !manifest.datasets.is_empty() {
                let other = match named.and_then(|g| g.publisher.as_deref()) {
                    Some(key) => format!(
                        "; [models.{}] there names the publisher `{key}`, not this one",
                        manifest.name
                    ),
                    None if named.is_some() => format!(
                        "; [models.{}] there has no `publisher`, so it is for a model built here",
                        manifest.name
                    ),
                    None => String::new(),
                };
                let declared: Vec<String> = manifest
                    .datasets
                    .keys()
                    .map(|d| format!("\"{d}\""))
                    .collect();
                return Err(format!(
                    "{} was imported from {} (key {}) and the host policy{in_file} grants it no dataset{other}; \
                     to let it read what it declares, add:\n[models.{}]\npublisher = \"{}\"\ndatasets = [{}]",
                    manifest.id(),
                    p.publisher_unit,
                    p.fingerprint,
                    manifest.name,
                    p.fingerprint,
                    declared.join(", ")
                ));
            }
        }
        for ds in manifest.datasets.keys() {
            let ok = match granted {
                Some(list) => list.iter().any(|g| g == ds),
                // An imported model's grant names its publisher on purpose:
                // it reads what it declares.
                None => publisher.is_some() || self.grant_declared,
            };
            if !ok {
                let publisher_line = publisher
                    .map(|p| format!(" (with publisher = \"{}\")", p.fingerprint))
                    .unwrap_or_default();
                return Err(format!(
                    "dataset `{ds}` is declared by {} but not granted by the host policy{in_file}; \
                     to allow it, list it in [models.{}]{publisher_line} datasets",
                    manifest.id(),
                    manifest.name
                ));
            }
        }
        let req = &manifest.limits;
        let cap = |asked: Option<u64>, default: u64, max: u64| asked.unwrap_or(default).min(max);
        let limits = Limits {
            memory_mib: cap(
                req.memory_mib,
                self.defaults.memory_mib,
                self.maximum.memory_mib,
            ),
            fuel: cap(req.fuel, self.defaults.fuel, self.maximum.fuel),
            wall_seconds: cap(
                req.wall_seconds,
                self.defaults.wall_seconds,
                self.maximum.wall_seconds,
            ),
            stack_kib: self.defaults.stack_kib.min(self.maximum.stack_kib),
            max_leads: self.defaults.max_leads.min(self.maximum.max_leads),
            max_lead_bytes: self
                .defaults
                .max_lead_bytes
                .min(self.maximum.max_lead_bytes),
            max_lead_mib: self.defaults.max_lead_mib.min(self.maximum.max_lead_mib),
            max_log_lines: self.defaults.max_log_lines.min(self.maximum.max_log_lines),
        };
        Ok(Decision {
            limits,
            clear_personal: grant.is_some_and(|g| g.clear_personal),
        })
    }
}

/// The unit named in entries written outside a run (an ingest): this
/// store's unit, else the `unit` of the store's own policy file.
pub fn store_unit_label(store: &jiandu_store::Store) -> Result<String> {
    unit_label(store, &Policy::load(&store.policy_path())?)
}

/// The unit named in entries: this store's unit, else the policy's `unit`.
pub fn unit_label(store: &jiandu_store::Store, policy: &Policy) -> Result<String> {
    Ok(match crate::unit::current(store)? {
        Some(u) => format!("{} ({})", u.name, u.code),
        None => policy.unit.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            Path::new("model.toml"),
            r#"
name = "m"
version = "1.0.0"
title = "t"
unit = "u"
sdk = "^0.1"
[datasets]
a = {}
b = {}
[limits]
memory_mib = 4096
"#,
        )
        .unwrap()
    }

    #[test]
    fn declared_but_not_granted_is_refused_by_name() {
        let p: Policy = toml::from_str("[models.m]\ndatasets = [\"a\"]\n").unwrap();
        let err = p.decide(&manifest(), None).unwrap_err();
        assert!(err.contains("`b`") && err.contains("not granted"), "{err}");
    }

    #[test]
    fn model_limits_are_capped_by_policy() {
        let d = Policy::default().decide(&manifest(), None).unwrap();
        assert_eq!(d.limits.memory_mib, 1024);
        assert!(!d.clear_personal);
    }

    #[test]
    fn a_partial_maximum_keeps_the_other_built_in_maximums() {
        let p: Policy = toml::from_str("[maximum]\nmemory_mib = 512\n").unwrap();
        assert_eq!(p.maximum.memory_mib, 512);
        assert_eq!(p.maximum.fuel, Limits::maximum().fuel);
        assert_eq!(p.defaults.memory_mib, 256);
        let p: Policy = toml::from_str("[maximum]\nmemory_mib = 128\n").unwrap();
        assert_eq!(
            p.defaults.memory_mib, 128,
            "unset defaults follow a lower maximum"
        );
        let d = p.decide(&manifest(), None).unwrap();
        assert_eq!(d.limits.memory_mib, 128);
    }

    #[test]
    fn defaults_above_the_maximum_are_refused_by_key() {
        let err = toml::from_str::<Policy>("[defaults]\nfuel = 10\n[maximum]\nfuel = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[defaults] fuel = 10") && err.contains("[maximum]"),
            "{err}"
        );
    }

    #[test]
    fn limits_the_sandbox_cannot_enforce_are_refused() {
        for text in [
            "[defaults]\nmemory_mib = 0\n",
            "[maximum]\nstack_kib = 10000000\n",
            "[maximum]\nwall_seconds = 99999999999\n",
            "[defaults]\nfuel = 0\n",
        ] {
            let err = toml::from_str::<Policy>(text).unwrap_err().to_string();
            assert!(
                err.contains("outside what the sandbox enforces"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_bad_names_are_refused() {
        assert!(toml::from_str::<Policy>("[defaults]\nmemory = 1\n").is_err());
        assert!(toml::from_str::<Policy>("[models.Bad]\ndatasets = []\n").is_err());
        assert!(toml::from_str::<Policy>("[models.m]\ndatasets = [\"../x\"]\n").is_err());
    }

    #[test]
    fn a_policy_file_given_by_path_must_exist() {
        let dir = std::env::temp_dir().join(format!("jiandu-policy-{}", std::process::id()));
        let missing = dir.join("no-such.toml");
        assert!(
            Policy::load(&missing).is_ok(),
            "the store's own file is optional"
        );
        let err = Policy::load_required(&missing).unwrap_err().to_string();
        assert!(err.contains("no-such.toml"), "{err}");
    }

    #[test]
    fn grant_declared_false_refuses_unlisted_models() {
        let p: Policy = toml::from_str("grant_declared = false\n").unwrap();
        assert!(p.decide(&manifest(), None).is_err());
    }

    const KEY_A: &str = "3f2a:91c0:5b7e:0d44:8a21:c3f9:1e60:77ab";
    const KEY_B: &str = "0000:1111:2222:3333:4444:5555:6666:7777";

    fn imported_from(fingerprint: &str) -> Provenance {
        Provenance {
            publisher_unit: "阿克苏地区人民检察院".into(),
            publisher_code: "11652900MB0000000A".into(),
            key: "ab".repeat(32),
            fingerprint: fingerprint.into(),
            bundle_sha256: String::new(),
            wasm_sha256: String::new(),
            toml_sha256: String::new(),
            plan_sha256: None,
            source: "/mnt/usb/registry".into(),
            released_at: String::new(),
            imported_at: String::new(),
        }
    }

    #[test]
    fn an_imported_model_no_grant_names_reads_nothing_whatever_grant_declared_says() {
        let a = imported_from(KEY_A);
        for text in ["", "grant_declared = true\n"] {
            let p: Policy = toml::from_str(text).unwrap();
            let err = p.decide(&manifest(), Some(&a)).unwrap_err();
            assert!(
                err.contains("m@1.0.0 was imported from 阿克苏地区人民检察院")
                    && err.contains(&format!(
                        "[models.m]\npublisher = \"{KEY_A}\"\ndatasets = [\"a\", \"b\"]"
                    )),
                "{err}"
            );
        }
        assert!(
            Policy::default().decide(&manifest(), None).is_ok(),
            "a model built here keeps grant_declared"
        );
    }

    #[test]
    fn a_grant_without_publisher_is_not_inherited_by_an_imported_model_of_that_name() {
        let p: Policy =
            toml::from_str("[models.m]\ndatasets = [\"a\", \"b\"]\nclear_personal = true\n")
                .unwrap();
        let d = p.decide(&manifest(), None).unwrap();
        assert!(d.clear_personal);
        let err = p
            .decide(&manifest(), Some(&imported_from(KEY_A)))
            .unwrap_err();
        assert!(
            err.contains("has no `publisher`, so it is for a model built here"),
            "{err}"
        );
    }

    #[test]
    fn a_grant_bound_to_a_publisher_applies_to_its_models_only() {
        let text = format!(
            "[models.m]\npublisher = \"{}\"\ndatasets = [\"a\", \"b\"]\nclear_personal = true\n",
            KEY_A.to_uppercase()
        );
        let p: Policy = toml::from_str(&text).unwrap();
        let d = p.decide(&manifest(), Some(&imported_from(KEY_A))).unwrap();
        assert!(d.clear_personal, "fingerprints compare without case");
        let err = p
            .decide(&manifest(), Some(&imported_from(KEY_B)))
            .unwrap_err();
        assert!(
            err.contains("names the publisher") && err.contains(KEY_B),
            "{err}"
        );
        // A model built here with the same name gets nothing of it: with
        // grant_declared it reads what it declares, in masked form.
        let d = p.decide(&manifest(), None).unwrap();
        assert!(!d.clear_personal);
        let strict: Policy = toml::from_str(&format!("grant_declared = false\n{text}")).unwrap();
        assert!(strict.decide(&manifest(), None).is_err());
    }

    #[test]
    fn a_publisher_grant_may_name_the_key_in_hex_and_limit_the_datasets() {
        let a = imported_from(KEY_A);
        let text = format!(
            "[models.m]\npublisher = \"{}\"\ndatasets = [\"a\"]\n",
            a.key
        );
        let p: Policy = toml::from_str(&text).unwrap();
        let err = p.decide(&manifest(), Some(&a)).unwrap_err();
        assert!(
            err.contains("`b`") && err.contains("not granted") && err.contains(KEY_A),
            "{err}"
        );
        let p: Policy = toml::from_str(&format!(
            "grant_declared = false\n[models.m]\npublisher = \"{KEY_A}\"\n"
        ))
        .unwrap();
        assert!(
            p.decide(&manifest(), Some(&a)).is_ok(),
            "a grant naming the publisher without a list grants what the model declares"
        );
    }

    #[test]
    fn a_publisher_that_is_not_a_key_is_refused() {
        for bad in [
            "",
            "阿克苏",
            "3f2a:91c0",
            "zz2a:91c0:5b7e:0d44:8a21:c3f9:1e60:77ab",
        ] {
            let err = toml::from_str::<Policy>(&format!("[models.m]\npublisher = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("[models.m] publisher"), "{bad}: {err}");
        }
    }
}
