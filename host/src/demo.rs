//! `jiandu demo`: the whole loop on synthetic data — generate department
//! files, ingest them, build the sample model, run it in the sandbox, check
//! its leads against the planted violations, and verify the ledger.

use crate::generate::{self, disability};
use crate::ledger::Verification;
use crate::policy::Policy;
use crate::run::{Report as RunReport, Request};
use crate::runtime::Runtime;
use crate::{catalog, dataset, leads, ledger, Error, Result, Store};
use rust_decimal::Decimal;
use std::path::PathBuf;

/// The sample model the demo runs.
pub const MODEL: &str = "disability-fund-arrears";

/// Demo settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub employers: usize,
    pub seed: u64,
    /// Folder holding the sample model crates.
    pub plugins_dir: PathBuf,
    pub operator: String,
}

impl Options {
    /// The plugins folder of this source tree.
    pub fn default_plugins_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("plugins")
    }
}

/// What the demo did and found.
pub struct Report {
    pub generated: disability::Generated,
    pub ingested: Vec<dataset::ingest::Report>,
    pub run: RunReport,
    /// Planted violations the model did not report.
    pub missing: Vec<String>,
    /// Leads that are not planted violations.
    pub unexpected: Vec<String>,
    /// Leads whose amount differs from the independent computation.
    pub wrong_amounts: Vec<(String, String, String)>,
    pub expected_total: Decimal,
    pub verification: Verification,
}

impl Report {
    /// Whether the model found exactly the planted violations, with the
    /// right amounts, and the ledger verifies.
    pub fn all_good(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.wrong_amounts.is_empty()
            && self.verification.problem.is_none()
    }
}

/// Runs the demo on `store`, telling `step` what it is doing.
pub fn run(store: &Store, opts: &Options, step: &mut dyn FnMut(&str)) -> Result<Report> {
    let data_dir = store.root().join("demo-data").join(MODEL);
    step(&format!(
        "generating synthetic data for {} employers (seed {}) in {}",
        opts.employers,
        opts.seed,
        data_dir.display()
    ));
    let generated = disability::generate(&data_dir, opts.employers, opts.seed)
        .map_err(|e| Error::file(&data_dir, e))?;
    let mut ingested = Vec::new();
    for file in &generated.files {
        let schema =
            generate::schema(&file.dataset).expect("generator datasets have shipped schemas");
        dataset::register_schema(store, schema)?;
        step(&format!(
            "ingesting {} ({} rows) into `{}`",
            file.path.display(),
            file.rows,
            file.dataset
        ));
        let report = dataset::ingest::ingest(
            store,
            &file.dataset,
            &file.path,
            &dataset::ingest::Options {
                operator: opts.operator.clone(),
                ..Default::default()
            },
        )?;
        ingested.push(report);
    }
    let crate_dir = opts.plugins_dir.join(MODEL);
    step(&format!("building the model in {}", crate_dir.display()));
    let mut build_step = |m: &str| step(m);
    catalog::build(&crate_dir, &store.models_dir(), &mut build_step)?;
    let policy = Policy::load(&store.policy_path())?;
    let runtime = Runtime::new(policy.defaults.stack_kib)?;
    step(&format!("running {MODEL} in the sandbox"));
    let run = crate::run::execute(
        store,
        &runtime,
        &policy,
        &Request {
            model: MODEL.to_string(),
            params: Vec::new(),
            operator: opts.operator.clone(),
        },
    )?;
    let found = leads::list(
        store,
        &leads::Filter {
            model: Some(MODEL.to_string()),
            status: None,
        },
    )?
    .into_iter()
    .filter(|l| l.last_run == run.run_id)
    .collect::<Vec<_>>();
    let mut missing = Vec::new();
    let mut wrong_amounts = Vec::new();
    for e in &generated.expected {
        match found.iter().find(|l| l.subject == e.credit_code) {
            None => missing.push(e.credit_code.clone()),
            Some(l) => {
                let want = format!("{:.2}", e.gap);
                if l.amount.as_deref() != Some(want.as_str()) {
                    wrong_amounts.push((
                        e.credit_code.clone(),
                        want,
                        l.amount.clone().unwrap_or_default(),
                    ));
                }
            }
        }
    }
    let unexpected = found
        .iter()
        .filter(|l| {
            !generated
                .expected
                .iter()
                .any(|e| e.credit_code == l.subject)
        })
        .map(|l| l.subject.clone())
        .collect();
    let expected_total = generated.expected.iter().map(|e| e.gap).sum();
    let verification = ledger::verify(store)?;
    Ok(Report {
        generated,
        ingested,
        run,
        missing,
        unexpected,
        wrong_amounts,
        expected_total,
        verification,
    })
}
