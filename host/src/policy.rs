//! Host policy: `jiandu.toml` in the store (or `--config`).
//!
//! ```toml
//! unit = "某某县人民检察院"        # recorded in every ledger entry
//! grant_declared = true           # models may read what they declare unless listed below
//!
//! [defaults]                      # what a run gets when its model asks for nothing
//! memory_mib = 256
//! fuel = 20_000_000_000
//! wall_seconds = 300
//! stack_kib = 1024
//! max_leads = 100_000
//! max_lead_bytes = 16_384
//! max_log_lines = 1_000
//!
//! [maximum]                       # a model's own [limits] are capped here
//! memory_mib = 1024
//! fuel = 200_000_000_000
//! wall_seconds = 3600
//!
//! [models.imported-model]         # per-model grants
//! datasets = ["employers"]        # only these; declared but not granted = refused
//! clear_personal = false          # personal fields reach the model masked
//! ```

use crate::catalog::Manifest;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Resource limits of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub memory_mib: u64,
    pub fuel: u64,
    pub wall_seconds: u64,
    pub stack_kib: u64,
    pub max_leads: u64,
    pub max_lead_bytes: u64,
    pub max_log_lines: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 256,
            fuel: 20_000_000_000,
            wall_seconds: 300,
            stack_kib: 1024,
            max_leads: 100_000,
            max_lead_bytes: 16 * 1024,
            max_log_lines: 1_000,
        }
    }
}

impl Limits {
    fn maximum() -> Self {
        Limits {
            memory_mib: 1024,
            fuel: 200_000_000_000,
            wall_seconds: 3600,
            stack_kib: 1024,
            max_leads: 1_000_000,
            max_lead_bytes: 64 * 1024,
            max_log_lines: 10_000,
        }
    }
}

/// What one model is granted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Datasets the model may read; `None` = what it declares (if
    /// `grant_declared`).
    #[serde(default)]
    pub datasets: Option<Vec<String>>,
    #[serde(default)]
    pub clear_personal: bool,
}

/// The host policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default = "default_unit")]
    pub unit: String,
    #[serde(default = "yes")]
    pub grant_declared: bool,
    #[serde(default)]
    pub defaults: Limits,
    #[serde(default = "Limits::maximum")]
    pub maximum: Limits,
    #[serde(default)]
    pub models: BTreeMap<String, Grant>,
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
    /// Reads the policy at `path`, or the defaults if it does not exist.
    pub fn load(path: &Path) -> Result<Policy> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Policy::default()),
            Err(e) => return Err(Error::file(path, e)),
        };
        let mut p: Policy = toml::from_str(&text).map_err(|e| Error::Policy {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        p.path = Some(path.to_path_buf());
        Ok(p)
    }

    /// Decides a run of `manifest`: refuses it if it declares a dataset
    /// that is not granted, and caps its limits.
    pub fn decide(&self, manifest: &Manifest) -> std::result::Result<Decision, String> {
        let grant = self.models.get(&manifest.name);
        let granted: Option<&Vec<String>> = grant.and_then(|g| g.datasets.as_ref());
        for ds in manifest.datasets.keys() {
            let ok = match granted {
                Some(list) => list.iter().any(|g| g == ds),
                None => self.grant_declared,
            };
            if !ok {
                return Err(format!(
                    "dataset `{ds}` is declared by {} but not granted by the host policy{}",
                    manifest.id(),
                    self.path
                        .as_ref()
                        .map(|p| format!(" ({})", p.display()))
                        .unwrap_or_default()
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
            max_log_lines: self.defaults.max_log_lines.min(self.maximum.max_log_lines),
        };
        Ok(Decision {
            limits,
            clear_personal: grant.is_some_and(|g| g.clear_personal),
        })
    }
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
        let err = p.decide(&manifest()).unwrap_err();
        assert!(err.contains("`b`") && err.contains("not granted"), "{err}");
    }

    #[test]
    fn model_limits_are_capped_by_policy() {
        let d = Policy::default().decide(&manifest()).unwrap();
        assert_eq!(d.limits.memory_mib, 1024);
        assert!(!d.clear_personal);
    }

    #[test]
    fn grant_declared_false_refuses_unlisted_models() {
        let p: Policy = toml::from_str("grant_declared = false\n").unwrap();
        assert!(p.decide(&manifest()).is_err());
    }
}
