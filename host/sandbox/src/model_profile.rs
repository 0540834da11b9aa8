// How every model is compiled: by `model build` for a model crate, and by
// this crate's build script for the plan interpreter it carries (and, through
// `catalog::model_cargo`, the benchmarks' native baseline). Kept in one file
// that both include, so that they cannot drift apart.

/// The wasm target models are built for: no WASI, nothing ambient.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The compiler flags of a model build (and only these: the caller's
/// `RUSTFLAGS` are not passed on). LLVM is told to inline more than it
/// would for a native build, because a call costs more in the sandbox
/// than on the host: each one flushes and reloads the fuel counter,
/// checks the epoch and the stack limit, and passes any struct (a
/// `Decimal`, a `Result`) through memory. On the scan benchmark this cut
/// 4% of the fuel with `Rows` and 11% with serde structs, for modules
/// about a tenth larger (BENCHMARKS.md).
pub const MODEL_RUSTFLAGS: &str = "-Cllvm-args=-inline-threshold=1000";

/// The release profile of a model build, whatever the crate's own says:
/// small, fast, self-contained modules.
pub const MODEL_PROFILE: &[(&str, &str)] = &[
    ("CARGO_PROFILE_RELEASE_LTO", "true"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
    ("CARGO_PROFILE_RELEASE_DEBUG", "false"),
    ("CARGO_PROFILE_RELEASE_INCREMENTAL", "false"),
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3"),
    ("CARGO_PROFILE_RELEASE_PANIC", "abort"),
];

/// Environment a nested cargo must not inherit from the build that runs
/// it: flags and wrappers meant for the host's own compilation.
pub const NOT_INHERITED: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
];

/// A `cargo` command (the one running this build, else the one on the
/// path) that compiles with the models' profile and flags alone: what
/// `model build`, the plan interpreter's build and the benchmarks' native
/// baseline run.
pub fn model_cargo() -> std::process::Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .envs(MODEL_PROFILE.iter().copied())
        .env("CARGO_ENCODED_RUSTFLAGS", MODEL_RUSTFLAGS);
    for name in NOT_INHERITED {
        command.env_remove(name);
    }
    command
}
