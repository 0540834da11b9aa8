//! `jiandu demo`: the whole loop on synthetic data for the four sample
//! models — generate department files, ingest them, build each model, run
//! it in the sandbox, check its leads against the planted answers, simulate
//! a rectification (整改: some employers pay) and re-run to show those leads
//! resolved, and verify the ledger.

use crate::generate::{self, disability, drunk, land, theft, DataFile};
use crate::leads::{Lead, Status};
use crate::ledger::Verification;
use crate::policy::Policy;
use crate::run::{Report as RunReport, Request};
use crate::runtime::Runtime;
use crate::{catalog, dataset, leads, plans, Error, Result, Store};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Runs a model as `jiandu run` does, its compiled code taken from the
/// store's module cache (written on a miss): the four plans share one
/// interpreter, compiled once, and a `jiandu run` after the demo starts at
/// once.
fn run_cached(
    store: &Store,
    runtime: &Runtime,
    policy: &Policy,
    req: &Request,
) -> Result<RunReport> {
    // Without a cache (a read-only store, say) the model compiles.
    let cache = crate::cache::ModuleCache::open(store, runtime).ok();
    crate::run::execute_cached(store, runtime, policy, cache.as_ref(), req)
}

/// The sample model the demo rectifies.
pub const MODEL: &str = "disability-fund-arrears";

/// The four sample models, in the order the demo runs them.
pub const MODELS: [&str; 4] = [
    "disability-fund-arrears",
    "drunk-driving-withdrawal",
    "land-transfer-fee-arrears",
    "repeat-theft-warning",
];

/// How much synthetic data to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub employers: usize,
    pub cases: usize,
    pub contracts: usize,
    pub persons: usize,
}

impl Sizes {
    /// `scale` × (10,000 employers, 2,000 drunk-driving cases, 1,000 land
    /// contracts, 3,000 persons), at least enough for every planted case.
    pub fn scaled(scale: f64) -> Sizes {
        let n = |base: f64, min: usize| ((base * scale).round() as usize).max(min);
        Sizes {
            employers: n(10_000.0, 20),
            cases: n(2_000.0, 50),
            contracts: n(1_000.0, 50),
            persons: n(3_000.0, 50),
        }
    }
}

/// Demo settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub sizes: Sizes,
    pub seed: u64,
    /// Folder holding the sample model crates.
    pub plugins_dir: PathBuf,
    pub operator: String,
    /// Simulate a rectification and re-run the 残保金 model.
    pub rectify: bool,
}

impl Options {
    /// The plugins folder of this source tree.
    pub fn default_plugins_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("..")
            .join("plugins")
    }
}

/// One model's run and how its leads compare with the planted answers.
pub struct ModelReport {
    pub model: String,
    pub title: String,
    pub run: RunReport,
    /// Leads the generator expects.
    pub planted: usize,
    pub near_misses: usize,
    /// Near misses that became leads.
    pub near_miss_leads: Vec<String>,
    /// Planted leads the model did not report.
    pub missing: Vec<String>,
    /// Leads that were not planted.
    pub unexpected: Vec<String>,
    /// (subject, expected, reported): amounts, findings or scores that differ.
    pub wrong: Vec<(String, String, String)>,
    /// The independently computed total amount, for models with amounts.
    pub expected_total: Option<Decimal>,
    /// The same model written as a rule plan (`plugins/<model>/plan`), run
    /// with the same parameters and compared lead for lead.
    pub plan: Option<PlanAgreement>,
}

impl ModelReport {
    /// Whether the run succeeded and found exactly the planted leads, and
    /// its plan version found exactly the same leads.
    pub fn all_good(&self) -> bool {
        self.run.failure.is_none()
            && self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.wrong.is_empty()
            && self.near_miss_leads.is_empty()
            && self.plan.as_ref().is_none_or(PlanAgreement::all_good)
    }
}

/// A model's plan version against the model.
pub struct PlanAgreement {
    /// The plan version's name (`<model>-plan`).
    pub model: String,
    /// The plan's hash, as the ledger records it.
    pub plan_sha256: String,
    pub run: RunReport,
    /// Subjects whose lead differs (subject, title, amount or evidence),
    /// or that only one of the two reported.
    pub differences: Vec<String>,
}

impl PlanAgreement {
    /// Whether the plan ran and found the model's leads exactly.
    pub fn all_good(&self) -> bool {
        self.run.failure.is_none() && self.differences.is_empty()
    }
}

/// The rectification phase: employers paid, the model re-ran.
pub struct Rectification {
    /// Employers whose gap was paid.
    pub paid: Vec<String>,
    pub run: RunReport,
    /// Leads the re-run resolved.
    pub resolved: Vec<String>,
    /// Leads still open after the re-run.
    pub still_open: usize,
}

impl Rectification {
    /// Whether exactly the employers that paid were resolved.
    pub fn all_good(&self) -> bool {
        self.run.failure.is_none()
            && self.paid.iter().collect::<BTreeSet<_>>()
                == self.resolved.iter().collect::<BTreeSet<_>>()
    }
}

/// What the demo did and found.
pub struct Report {
    pub sizes: Sizes,
    pub ingested: Vec<dataset::ingest::Report>,
    pub models: Vec<ModelReport>,
    pub rectification: Option<Rectification>,
    pub verification: Verification,
}

impl Report {
    /// Whether every model found exactly its planted leads, the
    /// rectification resolved exactly the rectified leads, and the ledger
    /// verifies.
    pub fn all_good(&self) -> bool {
        self.models.iter().all(ModelReport::all_good)
            && self
                .rectification
                .as_ref()
                .is_none_or(Rectification::all_good)
            && self.verification.problem.is_none()
    }
}

fn evidence<'l>(lead: &'l Lead, name: &str) -> &'l str {
    lead.evidence
        .iter()
        .find(|e| e.name == name)
        .map_or("", |e| e.value.as_str())
}

/// What one model's generator planted, in comparable form.
struct Planted {
    /// subject → what the lead must show
    expected: BTreeMap<String, String>,
    near_misses: Vec<String>,
    /// What a lead shows, in the same form.
    shows: fn(&Lead) -> String,
    expected_total: Option<Decimal>,
    params: Vec<(String, String)>,
}

fn compare(model: &str, title: String, run: RunReport, found: &[Lead], p: Planted) -> ModelReport {
    let found: BTreeMap<&str, &Lead> = found.iter().map(|l| (l.subject.as_str(), l)).collect();
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for (subject, want) in &p.expected {
        match found.get(subject.as_str()) {
            None => missing.push(subject.clone()),
            Some(l) => {
                let got = (p.shows)(l);
                if &got != want {
                    wrong.push((subject.clone(), want.clone(), got));
                }
            }
        }
    }
    let unexpected = found
        .keys()
        .filter(|s| !p.expected.contains_key(**s))
        .map(|s| s.to_string())
        .collect();
    let near_miss_leads = p
        .near_misses
        .iter()
        .filter(|s| found.contains_key(s.as_str()))
        .cloned()
        .collect();
    ModelReport {
        model: model.to_string(),
        title,
        run,
        planted: p.expected.len(),
        near_misses: p.near_misses.len(),
        near_miss_leads,
        missing,
        unexpected,
        wrong,
        expected_total: p.expected_total,
        plan: None,
    }
}

fn money(x: Decimal) -> String {
    format!(
        "{:.2}",
        x.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    )
}

/// The host policy the demo writes when the store has none: no model is
/// granted clear personal values. The two models that join people's
/// records on citizen ID numbers join on keyed pseudonyms instead, and
/// their leads are resolved for readers (masked unless `--clear`).
pub fn demo_policy() -> String {
    "# Host policy written by `jiandu demo`.\n\
     # No model sees personal values in clear: models that join people on\n\
     # ID numbers receive keyed pseudonyms, which join the same way. Leads\n\
     # are shown masked; `--clear` shows them in clear and is on the record.\n"
        .to_string()
}

/// The four generators' data of one demo.
struct Data {
    disability: disability::Generated,
    drunk: drunk::Generated,
    land: land::Generated,
    theft: theft::Generated,
}

/// Runs the demo on `store`, telling `step` what it is doing.
pub fn run(store: &Store, opts: &Options, step: &mut dyn FnMut(&str)) -> Result<Report> {
    let root = store.root().join("demo-data");
    step(&format!(
        "generating synthetic department files (seed {}) in {}",
        opts.seed,
        root.display()
    ));
    let data = generate_all(&root, opts)?;
    let files = department_files(&root, &data)?;
    let ingested = ingest_all(store, &files, opts, step)?;
    let policy = demo_policy_of(store, step)?;
    let runtime = Runtime::new(policy.defaults.stack_kib)?;
    let mut models = Vec::new();
    for (model, p) in MODELS.iter().zip(planted(&data)) {
        models.push(build_and_check(
            store, opts, &runtime, &policy, model, p, step,
        )?);
    }
    let rectification = if opts.rectify {
        Some(rectify(
            store,
            opts,
            &runtime,
            &policy,
            &data.disability,
            step,
        )?)
    } else {
        None
    };
    let verification = jiandu_record::audit::verify::local(store)?;
    Ok(Report {
        sizes: opts.sizes,
        ingested,
        models,
        rectification,
        verification,
    })
}

/// Each model's department files, generated under `root/<model>`.
fn generate_all(root: &std::path::Path, opts: &Options) -> Result<Data> {
    let sizes = opts.sizes;
    let dir = |m: &str| root.join(m);
    let io = |m: &str| {
        let dir = dir(m);
        move |e: std::io::Error| Error::file(&dir, e)
    };
    Ok(Data {
        disability: disability::generate(&dir(MODELS[0]), sizes.employers, opts.seed)
            .map_err(io(MODELS[0]))?,
        drunk: drunk::generate(&dir(MODELS[1]), sizes.cases, opts.seed + 1)
            .map_err(io(MODELS[1]))?,
        land: land::generate(&dir(MODELS[2]), sizes.contracts, opts.seed + 2)
            .map_err(io(MODELS[2]))?,
        theft: theft::generate(&dir(MODELS[3]), sizes.persons, opts.seed + 3)
            .map_err(io(MODELS[3]))?,
    })
}

/// The files to ingest, one per dataset: prior records come from one
/// department file that both the 醉驾 and the 盗窃 model read, so the
/// generators' parts of it are merged.
fn department_files(root: &std::path::Path, data: &Data) -> Result<Vec<DataFile>> {
    let mut files: Vec<DataFile> = Vec::new();
    let mut priors = Vec::new();
    for f in data
        .disability
        .files
        .iter()
        .chain(&data.drunk.files)
        .chain(&data.land.files)
        .chain(&data.theft.files)
    {
        if f.dataset == "prior_records" {
            priors.push(f.path.clone());
        } else {
            files.push(f.clone());
        }
    }
    let merged = root.join("prior_records.csv");
    let rows = generate::merge_csv(&priors, &merged).map_err(|e| Error::file(&merged, e))?;
    files.push(DataFile {
        dataset: "prior_records".into(),
        path: merged,
        rows,
    });
    Ok(files)
}

/// Registers each dataset's shipped schema and ingests its file.
fn ingest_all(
    store: &Store,
    files: &[DataFile],
    opts: &Options,
    step: &mut dyn FnMut(&str),
) -> Result<Vec<dataset::ingest::Report>> {
    let mut ingested = Vec::new();
    for file in files {
        let schema =
            generate::schema(&file.dataset).expect("generator datasets have shipped schemas");
        step(&format!(
            "ingesting {} ({} rows) into `{}`",
            file.path.display(),
            file.rows,
            file.dataset
        ));
        ingested.push(jiandu_runs::ingest::ingest(
            store,
            &file.dataset,
            &file.path,
            &dataset::ingest::Options {
                operator: opts.operator.clone(),
                schema: Some(schema),
                ..Default::default()
            },
            crate::policy::store_unit_label(store)?,
        )?);
    }
    Ok(ingested)
}

/// The store's policy; a store without one gets the demo's (no clear
/// personal values for any model).
fn demo_policy_of(store: &Store, step: &mut dyn FnMut(&str)) -> Result<Policy> {
    let policy_path = store.policy_path();
    if !policy_path.exists() {
        step(&format!(
            "writing {} (no clear personal values for any model)",
            policy_path.display()
        ));
        crate::fsio::write_atomic(&policy_path, demo_policy().as_bytes())
            .map_err(|e| Error::file(&policy_path, e))?;
    }
    Policy::load(&policy_path)
}

/// What each model must find, in [`MODELS`] order: the planted leads and
/// what each shows, the near misses, the total and the parameters.
fn planted(data: &Data) -> [Planted; 4] {
    let (g1, g2, g3, g4) = (&data.disability, &data.drunk, &data.land, &data.theft);
    [
        Planted {
            expected: g1
                .expected
                .iter()
                .map(|e| (e.credit_code.clone(), money(e.gap)))
                .collect(),
            near_misses: g1.near_misses.iter().map(|n| n.0.clone()).collect(),
            shows: |l| l.amount.clone().unwrap_or_default(),
            expected_total: Some(g1.expected.iter().map(|e| e.gap).sum()),
            params: Vec::new(),
        },
        Planted {
            expected: g2
                .expected
                .iter()
                .map(|e| (e.case_id.clone(), e.lead.to_string()))
                .collect(),
            near_misses: g2.near_misses.iter().map(|n| n.0.clone()).collect(),
            shows: |l| evidence(l, "finding").chars().take(1).collect(),
            expected_total: None,
            params: Vec::new(),
        },
        Planted {
            expected: g3
                .expected
                .iter()
                .map(|e| {
                    let amount = if e.findings.contains('A') {
                        money(e.arrears)
                    } else {
                        String::new()
                    };
                    (e.contract_no.clone(), format!("{} {amount}", e.findings))
                })
                .collect(),
            near_misses: g3.near_misses.iter().map(|n| n.0.clone()).collect(),
            shows: |l| {
                let letters: String = evidence(l, "findings")
                    .split("; ")
                    .filter_map(|f| f.chars().next())
                    .collect();
                format!("{letters} {}", l.amount.clone().unwrap_or_default())
            },
            expected_total: Some(g3.expected.iter().map(|e| money_exact(e.arrears)).sum()),
            params: g3.params.clone(),
        },
        Planted {
            expected: g4
                .expected
                .iter()
                .map(|e| (e.person_id.clone(), e.score.to_string()))
                .collect(),
            near_misses: g4.near_misses.iter().map(|n| n.0.clone()).collect(),
            shows: |l| evidence(l, "score").to_string(),
            expected_total: None,
            params: Vec::new(),
        },
    ]
}

/// Builds a sample model, runs it and checks its leads against what was
/// planted.
fn build_and_check(
    store: &Store,
    opts: &Options,
    runtime: &Runtime,
    policy: &Policy,
    model: &str,
    planted: Planted,
    step: &mut dyn FnMut(&str),
) -> Result<ModelReport> {
    let crate_dir = opts.plugins_dir.join(model);
    step(&format!("building {model} from {}", crate_dir.display()));
    let mut build_step = |m: &str| step(m);
    let installed = catalog::build(&crate_dir, &store.models_dir(), &mut build_step)?;
    step(&format!("running {model} in the sandbox"));
    let run = run_cached(
        store,
        runtime,
        policy,
        &Request {
            model: model.to_string(),
            params: planted.params.clone(),
            operator: opts.operator.clone(),
            partitions: None,
        },
    )?;
    let found = current_leads(store, model, &run.run_id)?;
    let params = planted.params.clone();
    let mut report = compare(model, installed.manifest.title, run, &found, planted);
    let plan_dir = crate_dir.join("plan");
    if plan_dir.join("model.toml").is_file() {
        report.plan = Some(run_plan_version(
            store, opts, runtime, policy, &plan_dir, params, &found, step,
        )?);
    }
    Ok(report)
}

/// Builds the plan version of a model from `plan_dir`, runs it with the
/// model's parameters and compares its leads with `model_leads`.
#[allow(clippy::too_many_arguments)]
fn run_plan_version(
    store: &Store,
    opts: &Options,
    runtime: &Runtime,
    policy: &Policy,
    plan_dir: &std::path::Path,
    params: Vec<(String, String)>,
    model_leads: &[Lead],
    step: &mut dyn FnMut(&str),
) -> Result<PlanAgreement> {
    let manifest_path = plan_dir.join("model.toml");
    let text =
        std::fs::read_to_string(&manifest_path).map_err(|e| Error::file(&manifest_path, e))?;
    let manifest = catalog::Manifest::parse(&manifest_path, &text)?;
    let file = manifest.plan.clone().unwrap_or_default();
    let plan_path = plan_dir.join(&file);
    let plan = std::fs::read_to_string(&plan_path).map_err(|e| Error::file(&plan_path, e))?;
    step(&format!("checking the plan {}", plan_path.display()));
    let plan_sha256 = plans::check(store, &manifest, &plan_path, &plan)?;
    let mut build_step = |m: &str| step(m);
    catalog::build_plan(plan_dir, &store.models_dir(), &mut build_step)?;
    step(&format!("running {} in the sandbox", manifest.name));
    let run = run_cached(
        store,
        runtime,
        policy,
        &Request {
            model: manifest.name.clone(),
            params,
            operator: opts.operator.clone(),
            partitions: None,
        },
    )?;
    let found = current_leads(store, &manifest.name, &run.run_id)?;
    Ok(PlanAgreement {
        model: manifest.name,
        plan_sha256,
        run,
        differences: lead_differences(model_leads, &found),
    })
}

/// Subjects whose leads differ between two runs: subject, title, amount
/// and evidence (names, values, order, personal markings).
fn lead_differences(a: &[Lead], b: &[Lead]) -> Vec<String> {
    let by_subject = |leads: &[Lead]| -> BTreeMap<String, String> {
        leads
            .iter()
            .map(|l| {
                let evidence: Vec<String> = l
                    .evidence
                    .iter()
                    .map(|e| {
                        format!(
                            "{}={}{}",
                            e.name,
                            e.value,
                            if e.personal { "*" } else { "" }
                        )
                    })
                    .collect();
                (
                    l.subject.clone(),
                    format!("{} | {:?} | {}", l.title, l.amount, evidence.join("; ")),
                )
            })
            .collect()
    };
    let (a, b) = (by_subject(a), by_subject(b));
    let mut out = Vec::new();
    for (subject, lead) in &a {
        match b.get(subject) {
            None => out.push(format!("{subject}: only the model reported it")),
            Some(other) if other != lead => out.push(format!(
                "{subject}: the model says `{lead}`, the plan `{other}`"
            )),
            Some(_) => {}
        }
    }
    for subject in b.keys().filter(|s| !a.contains_key(*s)) {
        out.push(format!("{subject}: only the plan reported it"));
    }
    out
}

/// The exact amount a lead shows: rounded half-up to the fen.
fn money_exact(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// Leads of `model` produced by run `run_id`, with pseudonyms resolved so
/// that they compare with the generator's answers (synthetic people).
fn current_leads(store: &Store, model: &str, run_id: &str) -> Result<Vec<Lead>> {
    let produced: Vec<Lead> = leads::list(
        store,
        &leads::Filter {
            model: Some(model.to_string()),
            status: None,
        },
    )?
    .into_iter()
    .filter(|l| l.last_run == run_id && l.status != Status::Resolved)
    .collect();
    Ok(leads::for_people(store, &produced, crate::dataset::resolve::Reveal::Clear)?.0)
}

/// Every third employer with a lead pays its gap before the assessment
/// date; the payments file is sent again and the model re-runs.
fn rectify(
    store: &Store,
    opts: &Options,
    runtime: &Runtime,
    policy: &Policy,
    g: &disability::Generated,
    step: &mut dyn FnMut(&str),
) -> Result<Rectification> {
    let original = g
        .files
        .iter()
        .find(|f| f.dataset == "fund_payments")
        .expect("the generator writes fund payments");
    let mut text =
        std::fs::read_to_string(&original.path).map_err(|e| Error::file(&original.path, e))?;
    let mut paid = Vec::new();
    for e in g.expected.iter().step_by(3) {
        let row = serde_json::json!({
            "credit_code": e.credit_code,
            "levy_year": disability::LEVY_YEAR,
            "payment_id": format!("ZG{}{}", disability::LEVY_YEAR, &e.credit_code[8..17]),
            "amount": e.gap.to_string(),
            "paid_on": "2024-12-20",
            "synthetic": true,
        });
        text.push_str(&row.to_string());
        text.push('\n');
        paid.push(e.credit_code.clone());
    }
    let path = original
        .path
        .with_file_name("fund_payments_rectified.jsonl");
    std::fs::write(&path, text).map_err(|e| Error::file(&path, e))?;
    step(&format!(
        "rectification: {} employers pay their gap; ingesting {}",
        paid.len(),
        path.display()
    ));
    jiandu_runs::ingest::ingest(
        store,
        "fund_payments",
        &path,
        &dataset::ingest::Options {
            operator: opts.operator.clone(),
            ..Default::default()
        },
        crate::policy::store_unit_label(store)?,
    )?;
    step(&format!("re-running {MODEL}"));
    let run = run_cached(
        store,
        runtime,
        policy,
        &Request {
            model: MODEL.to_string(),
            params: Vec::new(),
            operator: opts.operator.clone(),
            partitions: None,
        },
    )?;
    let all = leads::list(
        store,
        &leads::Filter {
            model: Some(MODEL.to_string()),
            status: None,
        },
    )?;
    let resolved = all
        .iter()
        .filter(|l| l.resolved_by.as_deref() == Some(run.run_id.as_str()))
        .map(|l| l.subject.clone())
        .collect();
    let still_open = all.iter().filter(|l| l.status != Status::Resolved).count();
    Ok(Rectification {
        paid,
        run,
        resolved,
        still_open,
    })
}
