//! Builds the plan interpreter (`plan/interpreter`) for wasm, with the
//! models' profile, so that the host carries it
//! (`catalog::PLAN_INTERPRETER`): a unit that writes plans needs the
//! `jiandu` binary, not a Rust toolchain or this repository.
//!
//! The interpreter is built by a cargo of its own, in the target folder
//! `model build` uses for models (`<target>/jiandu-models`), so the two
//! share what they compiled and never wait on the host build's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

include!("src/model_profile.rs");

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = here.join("..").join("..");
    for watched in [
        "plan/src",
        "plan/Cargo.toml",
        "plan/interpreter/src",
        "plan/interpreter/Cargo.toml",
        "sdk/src",
        "sdk/wit",
        "sdk/Cargo.toml",
        "Cargo.lock",
        "host/sandbox/src/model_profile.rs",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let wasm = build_interpreter(&root, &out_dir).unwrap_or_else(|why| {
        panic!("building the plan interpreter (plan/interpreter) for {WASM_TARGET} failed: {why}")
    });
    std::fs::copy(&wasm, out_dir.join("plan-interpreter.wasm"))
        .unwrap_or_else(|e| panic!("copying {}: {e}", wasm.display()));
}

/// The target folder of this build: the first folder above `OUT_DIR`
/// that cargo marked as one.
fn target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.to_path_buf())
}

/// Installs the wasm target through rustup when it is missing (where
/// there is no rustup, cargo says what is missing).
fn ensure_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == WASM_TARGET)
        });
    if installed == Some(false) {
        println!("cargo:warning=installing the {WASM_TARGET} target through rustup (once)");
        let _ = Command::new("rustup")
            .args(["target", "add", WASM_TARGET])
            .status();
    }
}

fn build_interpreter(root: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    ensure_target();
    let manifest = root.join("plan").join("interpreter").join("Cargo.toml");
    let target = target_dir(out_dir).join("jiandu-models");
    let mut command = model_cargo();
    command
        .args(["build", "--release", "--lib", "--target", WASM_TARGET])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target);
    // The build script's standard output is cargo's to read.
    let status = command
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo exited with {status}"));
    }
    let wasm = target
        .join(WASM_TARGET)
        .join("release")
        .join("jiandu_plan_interpreter.wasm");
    if !wasm.is_file() {
        return Err(format!("cargo built no {}", wasm.display()));
    }
    Ok(wasm)
}
