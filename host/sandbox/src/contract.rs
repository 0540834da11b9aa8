//! The versions of the contract between host and models, bound side by
//! side.
//!
//! The current contract is `sdk/wit/model.wit`; every earlier version a
//! model may still be built against is frozen beside it (0.1.0 in
//! `sdk/contract-0.1/model.wit`). Each version's host interface is added to
//! the one linker under its own versioned name (`jiandu:model/host@0.1.0`,
//! `…@0.2.1`), so a component is served the version it imports, unchanged.
//! Versions that only add functions share a name up to the patch number
//! (0.2.0 and 0.2.1): the Component Model serves an import of 0.2.0 with
//! the 0.2.1 the linker defines, which holds every function of 0.2.0.
//! Earlier versions are adapters over the current one: the sandbox, its
//! limits and its checks are written once.
//!
//! The exports (`describe`, `run`) are the same in every version so far, so
//! one pre-instantiated world serves them all.

use crate::runtime::Session;
use wasmtime::component::{HasSelf, Linker};

/// The current contract.
pub(crate) mod current {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "model",
        imports: { default: trappable },
    });
}

/// Contract 0.1.0, frozen.
mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../sdk/contract-0.1",
        world: "model",
        imports: { default: trappable },
    });
}

use current::jiandu::model::{host as now, types as now_types};
use v0_1::jiandu::model::{host as old, types as old_types};

/// Every contract version this host loads, oldest first; the last is the
/// one the SDK builds against ([`jiandu_sdk::CONTRACT_VERSION`]).
pub const SUPPORTED: [&str; 3] = ["0.1.0", "0.2.0", "0.2.1"];

/// The contract version a component's imports name, when they name one
/// this host loads.
pub fn supported(version: &str) -> bool {
    SUPPORTED.contains(&version)
}

/// Whether a `model.toml` requirement (`sdk = "^0.1"`) admits a contract
/// version this host loads.
pub fn admits(req: &semver::VersionReq) -> bool {
    SUPPORTED
        .iter()
        .any(|v| req.matches(&semver::Version::parse(v).expect("contract versions are semver")))
}

/// The supported versions as a person reads them: `0.1.0, 0.2.0 and 0.2.1`.
pub fn supported_text() -> String {
    match SUPPORTED.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The contract version a component imports (`0.1.0` for a component
/// importing `jiandu:model/host@0.1.0`), read from its import section
/// without compiling it; `None` when it imports no contract interface or
/// cannot be parsed.
pub fn built_for(wasm: &[u8]) -> Option<String> {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let Ok(wasmparser::Payload::ComponentImportSection(imports)) = payload else {
            continue;
        };
        for import in imports.into_iter().flatten() {
            if let Some((_, version)) = import
                .name
                .name
                .strip_prefix("jiandu:model/")
                .and_then(|rest| rest.split_once('@'))
            {
                return Some(version.to_string());
            }
        }
    }
    None
}

/// Adds every supported version's host interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<Session>) -> wasmtime::Result<()> {
    current::Model::add_to_linker::<Session, HasSelf<Session>>(linker, |s| s)?;
    v0_1::Model::add_to_linker::<Session, HasSelf<Session>>(linker, |s| s)?;
    Ok(())
}

impl old_types::Host for Session {}

/// Contract 0.1.0: the current host interface without `close-scan` (its
/// scans close when exhausted or at the end of the run).
impl old::Host for Session {
    fn fields(&mut self, dataset: String) -> wasmtime::Result<Result<Vec<String>, String>> {
        now::Host::fields(self, dataset)
    }

    fn open_scan(
        &mut self,
        dataset: String,
        options: old_types::ScanOptions,
    ) -> wasmtime::Result<Result<u32, String>> {
        let options = now_types::ScanOptions {
            index: options.index,
            only_new: options.only_new,
        };
        now::Host::open_scan(self, dataset, options)
    }

    fn next_batch(
        &mut self,
        scan: u32,
    ) -> wasmtime::Result<Result<Option<old_types::Batch>, String>> {
        Ok(now::Host::next_batch(self, scan)?.map(|b| b.map(old_batch)))
    }

    fn get(
        &mut self,
        dataset: String,
        key: Vec<String>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        now::Host::get(self, dataset, key)
    }

    fn lookup(
        &mut self,
        dataset: String,
        index: String,
        value: String,
    ) -> wasmtime::Result<Result<old_types::Batch, String>> {
        Ok(now::Host::lookup(self, dataset, index, value)?.map(old_batch))
    }

    fn param(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        now::Host::param(self, name)
    }

    fn emit(&mut self, lead: old_types::Lead) -> wasmtime::Result<Result<(), String>> {
        let lead = now_types::Lead {
            subject: lead.subject,
            subject_personal: lead.subject_personal,
            title: lead.title,
            amount: lead.amount,
            evidence: lead
                .evidence
                .into_iter()
                .map(|e| now_types::Evidence {
                    name: e.name,
                    value: e.value,
                    personal: e.personal,
                })
                .collect(),
        };
        now::Host::emit(self, lead)
    }

    fn log(&mut self, level: old_types::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            old_types::Level::Debug => now_types::Level::Debug,
            old_types::Level::Info => now_types::Level::Info,
            old_types::Level::Warn => now_types::Level::Warn,
            old_types::Level::Error => now_types::Level::Error,
        };
        now::Host::log(self, level, message)
    }

    fn panicked(&mut self, message: String) -> wasmtime::Result<()> {
        now::Host::panicked(self, message)
    }
}

fn old_batch(b: now_types::Batch) -> old_types::Batch {
    old_types::Batch {
        data: b.data,
        offsets: b.offsets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_are_admitted_by_any_supported_version() {
        let req = |s: &str| semver::VersionReq::parse(s).unwrap();
        assert!(admits(&req("^0.1")));
        assert!(admits(&req("^0.2")));
        assert!(admits(&req(">=0.1, <0.3")));
        assert!(!admits(&req("^0.3")));
        assert!(!admits(&req("^1")));
        assert_eq!(SUPPORTED.last(), Some(&jiandu_sdk::CONTRACT_VERSION));
        assert!(supported("0.1.0") && supported("0.2.0") && supported("0.2.1"));
        assert!(!supported("0.3.0"));
        assert_eq!(supported_text(), "0.1.0, 0.2.0 and 0.2.1");
    }
}
