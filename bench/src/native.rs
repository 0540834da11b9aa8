//! The native baseline: the benchmark models compiled for the host with
//! the models' profile, run by `jiandu-bench-native` (`bench/native`) in a
//! process of its own over the same store.
//!
//! A model's wasm module is built with fat LTO, one codegen unit and a
//! higher inline threshold (`jiandu::catalog::model_cargo`); this binary
//! is built with the workspace's release profile, so the same model
//! compiled into it would be a slower baseline than the sandboxed
//! module's and flatter the sandbox. The runner depends on the store and
//! the SDK only, so building it with the models' profile does not compile
//! wasmtime; it is built once per harness run (cargo reuses it when
//! nothing changed) under `target/bench-native`.
//!
//! The runner opens the store itself: sled locks a store to one process,
//! so callers hold no [`jiandu::Store`] (nor a session's readers) of it
//! while [`Runner::run`] runs.

use crate::runs::{amount, LeadSet};
use anyhow::{bail, Context as _, Result};
use jiandu::catalog::{model_cargo, Installed};
use jiandu::native;
use jiandu::policy::Policy;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The runner's package and binary.
const PACKAGE: &str = "jiandu-bench-native";

/// The built runner.
#[derive(Debug, Clone)]
pub struct Runner {
    exe: PathBuf,
}

/// What one call of the runner measured.
#[derive(Debug)]
pub struct NativeRun {
    /// Each run's time, the backend prepared before its clock started.
    pub times: Vec<Duration>,
    /// Records the last run read.
    pub records_read: u64,
    /// The last run's leads.
    pub leads: LeadSet,
}

impl Runner {
    /// Builds the runner with the models' profile under `target_dir`, or
    /// `quick`ly (no LTO, 16 codegen units, `opt-level` 1: a runner whose
    /// leads are the same, whose times mean nothing).
    pub fn build(target_dir: &Path, quick: bool, progress: &mut dyn FnMut(&str)) -> Result<Runner> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("the bench crate is in the workspace")?;
        progress(&format!(
            "building the native baseline with {} into {}",
            if quick {
                "a quick profile (for checking, not timing)"
            } else {
                "the models' profile (fat LTO; minutes the first time)"
            },
            target_dir.display()
        ));
        let mut cargo = model_cargo();
        if quick {
            cargo.envs([
                ("CARGO_PROFILE_RELEASE_LTO", "false"),
                ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
                ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1"),
            ]);
        }
        let status = cargo
            .args(["build", "--release", "--quiet", "--bin", PACKAGE])
            .arg("--manifest-path")
            .arg(workspace.join("bench/native/Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .context("running cargo to build the native baseline")?;
        if !status.success() {
            bail!("building {PACKAGE} failed ({status}); its messages are above");
        }
        let exe = target_dir.join("release").join(PACKAGE);
        if !exe.is_file() {
            bail!("cargo built {PACKAGE} but {} is not there", exe.display());
        }
        Ok(Runner { exe })
    }

    /// Runs `model` natively `reps` times over the store at `store_dir`,
    /// reading what `policy` lets a `jiandu run` of it read.
    pub fn run(
        &self,
        store_dir: &Path,
        policy: &Policy,
        model: &Installed,
        params: &[(String, String)],
        reps: usize,
    ) -> Result<NativeRun> {
        let resolved = native::resolve(policy, &model.manifest, params)?;
        let mut command = Command::new(&self.exe);
        command
            .arg("--store")
            .arg(store_dir)
            .args(["--model", &model.manifest.name])
            .args(["--reps", &reps.max(1).to_string()]);
        if resolved.clear_personal {
            command.arg("--clear");
        }
        for (name, fields) in &resolved.reads {
            let read = match fields {
                None => name.clone(),
                Some(fields) => format!("{name}={}", fields.join(",")),
            };
            command.args(["--read", &read]);
        }
        for (name, value) in &resolved.params {
            command.args(["--param", &format!("{name}={value}")]);
        }
        let output = command
            .output()
            .with_context(|| format!("running {}", self.exe.display()))?;
        if !output.status.success() {
            bail!(
                "the native baseline failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        parse_output(&output.stdout)
    }
}

/// Reads what the runner printed.
fn parse_output(stdout: &[u8]) -> Result<NativeRun> {
    let json: serde_json::Value =
        serde_json::from_slice(stdout).context("the native baseline's output is not JSON")?;
    let times = json["seconds"]
        .as_array()
        .context("no `seconds` in the native baseline's output")?
        .iter()
        .map(|s| {
            s.as_f64()
                .map(Duration::from_secs_f64)
                .context("a time that is not a number")
        })
        .collect::<Result<Vec<_>>>()?;
    let records_read = json["records_read"]
        .as_u64()
        .context("no `records_read` in the native baseline's output")?;
    let leads = json["leads"]
        .as_object()
        .context("no `leads` in the native baseline's output")?
        .iter()
        .map(|(subject, a)| Ok((subject.clone(), amount(a.as_str())?)))
        .collect::<Result<LeadSet>>()?;
    Ok(NativeRun {
        times,
        records_read,
        leads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runners_output_is_read_to_the_fen_and_bad_output_is_refused() {
        let run = parse_output(
            br#"{"seconds":[0.5,0.25],"records_read":12,"leads":{"A":"10.05","B":null}}"#,
        )
        .unwrap();
        assert_eq!(
            run.times,
            [Duration::from_millis(500), Duration::from_millis(250)]
        );
        assert_eq!(run.records_read, 12);
        assert_eq!(run.leads["A"], Some("10.05".parse().unwrap()));
        assert_eq!(run.leads["B"], None);
        assert!(parse_output(b"not json").is_err());
        assert!(parse_output(br#"{"seconds":[],"leads":{}}"#).is_err());
        assert!(parse_output(br#"{"seconds":[],"records_read":1,"leads":{"A":"x"}}"#).is_err());
    }
}
