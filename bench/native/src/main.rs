//! The benchmarks' native baseline: one of the benchmark models compiled
//! for the host and run over a store through `jiandu_native`, as often as
//! asked, each run timed alone (the backend is prepared before the clock
//! starts, as the sandboxed side's session is).
//!
//! The harness (`jiandu-bench`) builds this binary with the models' profile
//! (`jiandu::catalog::MODEL_PROFILE` and `MODEL_RUSTFLAGS`: fat LTO, one
//! codegen unit, the inline threshold of a model build) so that the
//! baseline is compiled as the sandboxed module is; it depends on no part
//! of the sandbox, so that build does not compile wasmtime. What the run
//! may read is resolved by the harness as `jiandu run` resolves it and
//! passed on the command line:
//!
//! ```text
//! jiandu-bench-native --store DIR --model NAME [--reps N] [--clear]
//!                     [--read DATASET[=FIELD,FIELD…]]… [--param NAME=VALUE]…
//! ```
//!
//! It prints one JSON object: each run's seconds, the records the last run
//! read, and its leads (subject → amount, `null` without one). Exit code 2
//! for a bad command line, 1 when the run fails.

use jiandu_native::{NativeBackend, NativeOutput};
use jiandu_store::dataset::access::Access;
use jiandu_store::Store;
use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::Instant;

/// The models this baseline carries, by their model.toml names.
const MODELS: &[&str] = &["scan-one-percent", "disability-fund-arrears"];

/// What the command line asks for.
#[derive(Debug, Default, PartialEq)]
struct Args {
    store: String,
    model: String,
    reps: usize,
    clear: bool,
    /// Datasets and their declared fields (`None`: every field).
    reads: Vec<(String, Option<Vec<String>>)>,
    params: BTreeMap<String, String>,
}

const USAGE: &str = "usage: jiandu-bench-native --store DIR --model NAME [--reps N] [--clear] \
[--read DATASET[=FIELD,FIELD…]]… [--param NAME=VALUE]…";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        reps: 1,
        ..Args::default()
    };
    while let Some(flag) = args.next() {
        if flag == "--clear" {
            out.clear = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--store" => out.store = value,
            "--model" => out.model = value,
            "--reps" => {
                out.reps = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--reps takes a positive count, not `{value}`"))?
            }
            "--read" => out.reads.push(match value.split_once('=') {
                None => (value, None),
                Some((name, fields)) => (
                    name.to_string(),
                    Some(
                        fields
                            .split(',')
                            .filter(|f| !f.is_empty())
                            .map(str::to_string)
                            .collect(),
                    ),
                ),
            }),
            "--param" => {
                let (name, v) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--param takes NAME=VALUE, not `{value}`"))?;
                out.params.insert(name.to_string(), v.to_string());
            }
            _ => return Err(format!("unknown argument `{flag}`")),
        }
    }
    if out.store.is_empty() || out.model.is_empty() {
        return Err("--store and --model are required".into());
    }
    if !MODELS.contains(&out.model.as_str()) {
        return Err(format!(
            "no native build of model `{}` here (this baseline carries {})",
            out.model,
            MODELS.join(", ")
        ));
    }
    Ok(out)
}

/// A backend over `store` with what `args` says the run may read.
fn backend(store: &Store, args: &Args) -> Result<NativeBackend, String> {
    let mut datasets = HashMap::new();
    for (name, fields) in &args.reads {
        let access = Access::current(store, name, fields.as_deref(), args.clear)
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("dataset `{name}` {e}"))?;
        datasets.insert(name.clone(), access);
    }
    Ok(NativeBackend::new(args.params.clone(), datasets))
}

fn run_once(model: &str, backend: NativeBackend) -> Result<NativeOutput, String> {
    match model {
        "scan-one-percent" => jiandu_native::run::<scan_one_percent::ScanOnePercent>(backend),
        "disability-fund-arrears" => {
            jiandu_native::run::<disability_fund_arrears::DisabilityFundArrears>(backend)
        }
        other => Err(format!("no native build of model `{other}`")),
    }
}

/// The runs `args` asks for, as the JSON object printed.
fn measure(args: &Args) -> Result<serde_json::Value, String> {
    let store = Store::open(&args.store).map_err(|e| e.to_string())?;
    let mut seconds = Vec::new();
    let mut last = None;
    for _ in 0..args.reps {
        let backend = backend(&store, args)?;
        let started = Instant::now();
        let out = run_once(&args.model, backend)?;
        seconds.push(started.elapsed().as_secs_f64());
        last = Some(out);
    }
    let out = last.expect("at least one run");
    let leads: serde_json::Map<String, serde_json::Value> = out
        .leads
        .iter()
        .map(|(subject, lead)| (subject.clone(), lead.amount.clone().into()))
        .collect();
    Ok(serde_json::json!({
        "seconds": seconds,
        "records_read": out.records_read,
        "leads": leads,
    }))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("jiandu-bench-native: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match measure(&args) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jiandu-bench-native: {} failed natively: {e}", args.model);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn reads_fields_params_and_reps_are_taken_from_the_command_line() {
        let args = parse(&[
            "--store",
            "/s",
            "--model",
            "scan-one-percent",
            "--read",
            "tax_declarations=taxpayer_id,revenue",
            "--read",
            "employers",
            "--param",
            "min_rate=0.01",
            "--reps",
            "3",
            "--clear",
        ])
        .unwrap();
        assert_eq!(args.store, "/s");
        assert_eq!(args.reps, 3);
        assert!(args.clear);
        assert_eq!(
            args.reads,
            vec![
                (
                    "tax_declarations".to_string(),
                    Some(vec!["taxpayer_id".to_string(), "revenue".to_string()])
                ),
                ("employers".to_string(), None),
            ]
        );
        assert_eq!(args.params["min_rate"], "0.01");
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let err = |a: &[&str]| parse(a).unwrap_err();
        assert!(err(&["--store", "/s"]).contains("required"));
        assert!(err(&["--store", "/s", "--model", "other"]).contains("no native build"));
        assert!(err(&[
            "--store",
            "/s",
            "--model",
            "scan-one-percent",
            "--reps",
            "0"
        ])
        .contains("positive"));
        assert!(err(&["--store"]).contains("needs a value"));
        assert!(err(&["--param", "x"]).contains("NAME=VALUE"));
        assert!(err(&["--frob", "1"]).contains("unknown argument"));
    }
}
