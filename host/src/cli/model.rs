//! `jiandu model build|new|test|list|show|explain|diff|pack|import`

use super::output::{self, Format};
use super::Ctx;
use anyhow::Result;
use jiandu::catalog;
use jiandu::runtime::Runtime;
use jiandu::share;
use jiandu_registry::source::Source;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Build a model crate to WebAssembly and install it into the store.
    ///
    /// Installs the wasm32-unknown-unknown target through rustup if it is
    /// missing, builds the crate, turns the module into a component, checks
    /// it against the contract and writes model.wasm + model.toml into the
    /// store's models folder.
    ///
    /// A scripted model's folder (model.toml saying `plan = "…"` beside
    /// that plan file) is checked against the store's schemas and installed
    /// with the plan interpreter built from this repository.
    ///
    /// Example: `jiandu model build plugins/disability-fund-arrears`
    /// (`plugins/disability-fund-arrears/plan` for its plan version)
    Build {
        /// Folder of the model crate (Cargo.toml + model.toml), or of a
        /// scripted model (model.toml + its plan).
        crate_dir: PathBuf,
    },
    /// Start a new model crate in a new folder NAME: Cargo.toml and
    /// model.toml with the same name and version, the SDK glue in
    /// src/lib.rs, a pure rule with a test in src/rule.rs, a README for
    /// prosecutors, a copy of the SDK this host was built with, and the
    /// schemas of the --datasets this store has. It builds as it is.
    ///
    /// Example: `jiandu model new overdue-fees --datasets land_contracts,land_payments`
    /// (`--plan` for a scripted model)
    New {
        /// The model's name (lowercase letters, digits, - and _): also the folder.
        name: String,
        /// Datasets the model reads, comma-separated.
        #[arg(long, value_delimiter = ',')]
        datasets: Vec<String>,
        /// A scripted model instead of a crate: model.toml, a rule plan
        /// (rule.plan.toml) reading the first dataset, and a README. The
        /// datasets must be in the store (a plan is checked against them).
        #[arg(long)]
        plan: bool,
    },
    /// Try a model crate on sample files in a throwaway store: build it,
    /// load the files, run it and print its leads. Nothing touches the
    /// store (or creates one).
    ///
    /// Each --data names a dataset and a file; its schema is --schema
    /// DATASET=FILE, else the schema this store registered for it. With
    /// --expect FILE (a file `--format json` wrote), the leads are compared
    /// with it and any difference exits 1: usable in a model's own CI.
    ///
    /// Example: `jiandu model test ./my-model --data employers=e.csv --schema employers=datasets/employers.toml --expect expected.json`
    Test {
        /// Folder of the model crate (Cargo.toml + model.toml), or of a
        /// scripted model (model.toml + its plan).
        crate_dir: PathBuf,
        /// A sample file for a dataset the model reads, as DATASET=FILE (repeatable).
        #[arg(long = "data", value_parser = parse_path_pair, required = true)]
        data: Vec<(String, PathBuf)>,
        /// The schema of a sample dataset, as DATASET=FILE (repeatable).
        #[arg(long = "schema", value_parser = parse_path_pair)]
        schema: Vec<(String, PathBuf)>,
        /// A model parameter, as name=value (repeatable).
        #[arg(long = "param", short = 'p', value_parser = super::run::parse_param)]
        params: Vec<(String, String)>,
        /// Compare the leads with this file and exit 1 on a difference.
        #[arg(long)]
        expect: Option<PathBuf>,
        /// Show personal values in clear (masked by default).
        #[arg(long)]
        clear: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// List installed models.
    ///
    /// Example: `jiandu model list --format csv`
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show what an installed model reads, its parameters and its limits.
    ///
    /// Example: `jiandu model show disability-fund-arrears --format json`
    Show {
        name: String,
        /// `json` prints the manifest, digest, provenance and trust state.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Explain a scripted model's rule plan as numbered sentences in
    /// Chinese, one per step, with parameter values and units and the
    /// legal basis: what the person who signs off on the model reads.
    ///
    /// Example: `jiandu model explain arrears-plan` (or `arrears-plan@1.0.0` for a kept version)
    Explain {
        /// `name`, or `name@version` for an earlier version kept in the store.
        model: String,
        /// `json` prints the sentences as a list.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// What changed between two versions of a scripted model, in the words
    /// of `model explain`: steps added, removed or changed, parameter
    /// defaults changed.
    ///
    /// Example: `jiandu model diff arrears-plan@1.0.0 arrears-plan@1.1.0`
    Diff {
        /// The earlier version, `name@version` (or `name`: the installed one).
        old: String,
        /// The later version, `name@version` (or `name`: the installed one).
        new: String,
        /// `json` prints the sentences as a list.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Pack an installed model into one bundle file signed with this
    /// store's unit key, for `jiandu registry publish` or to hand over.
    ///
    /// Writes <name>-<version>.jiandu in the current folder unless -o says
    /// otherwise. Needs a unit (`jiandu unit init`).
    ///
    /// Example: `jiandu model pack disability-fund-arrears -o /mnt/usb/`
    Pack {
        name: String,
        /// Output file, or a folder to write <name>-<version>.jiandu into.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Import a model from a registry (folder or URL) or a bundle file.
    ///
    /// Picks the highest version that matches and is not yanked (a bare
    /// version means exactly that version), verifies the signature against
    /// the trust store and every digest, checks the contract version and
    /// that the model loads, shows what it will read and its parameters,
    /// and asks before installing. Re-importing the installed version does
    /// nothing; a higher version upgrades; a lower one is refused.
    ///
    /// Example: `jiandu model import disability-fund-arrears@^1 --from /mnt/usb/registry`
    Import {
        /// `name`, `name@1.2.0` or `name@<semver requirement>`.
        spec: String,
        /// Registry folder, registry URL, or bundle file.
        #[arg(long)]
        from: String,
        /// Install without asking.
        #[arg(long, short)]
        yes: bool,
    },
}

fn parse_path_pair(s: &str) -> Result<(String, PathBuf)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("`{s}` is not DATASET=FILE"))?;
    Ok((k.trim().to_string(), PathBuf::from(v)))
}

pub fn exec(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    if let Command::New {
        name,
        datasets,
        plan,
    } = &cmd
    {
        return new_model(ctx, name, datasets, *plan);
    }
    if let Command::Test {
        crate_dir,
        data,
        schema,
        params,
        expect,
        clear,
        format,
    } = cmd
    {
        return test(
            ctx,
            &ctx.path(crate_dir),
            &data,
            &schema,
            params,
            expect.map(|e| ctx.path(e)).as_deref(),
            clear,
            format,
        );
    }
    let store = ctx.open()?;
    match cmd {
        Command::Build { crate_dir } => {
            let before = catalog::read_manifest(&ctx.path(&crate_dir))
                .ok()
                .and_then(|(_, m)| catalog::load(&store.models_dir(), &m.name).ok());
            let built = build_checked(ctx, &store, &crate_dir)?;
            outln!(
                "installed {} into {} (model.wasm sha256 {})",
                built.manifest.id(),
                built.dir.display(),
                built.wasm_sha256
            );
            if let Some(note) = before.and_then(|b| same_version_other_rule(&b, &built)) {
                errln!("warning: {note}");
            }
        }
        Command::List { format } => list(&store, format)?,
        Command::Test { .. } | Command::New { .. } => {
            unreachable!("handled before the store is opened")
        }
        Command::Pack { name, output } => pack(ctx, &store, &name, output)?,
        Command::Import { spec, from, yes } => return import(ctx, &store, &spec, &from, yes),
        Command::Show { name, format } => show(&store, &name, format)?,
        Command::Explain { model, format } => {
            let installed = plan_version(&store, &model)?;
            let sentences = jiandu::plans::explain(&store, &installed)?;
            print_sentences(&installed.manifest.id(), &sentences, format)?;
        }
        Command::Diff { old, new, format } => {
            let (old, new) = (plan_version(&store, &old)?, plan_version(&store, &new)?);
            let sentences = jiandu::plans::diff(&store, &old, &new)?;
            let title = format!("{} → {}", old.manifest.id(), new.manifest.id());
            print_sentences(&title, &sentences, format)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `name` or `name@version` as an installed or kept version.
fn plan_version(store: &jiandu::Store, spec: &str) -> Result<catalog::Installed> {
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    Ok(jiandu::plans::version(store, name, version)?)
}

/// Sentences under a title, or as a JSON list. A sentence is one line:
/// a newline in a plan's note (or any text the plan's author wrote) is
/// shown escaped, so it cannot start a sentence of its own that the
/// reader would take for the plan's.
fn print_sentences(title: &str, sentences: &[String], format: Format) -> Result<()> {
    match format {
        Format::Json => output::json(&serde_json::json!({
            "model": title,
            "sentences": sentences,
        }))?,
        _ => {
            outln!("{}", jiandu::text::printable(title));
            for s in sentences {
                outln!("{}", jiandu::text::printable(s));
            }
        }
    }
    Ok(())
}

/// `model list`: the installed models with their trust state.
fn list(store: &jiandu::Store, format: Format) -> Result<()> {
    let mut rows = Vec::new();
    for name in catalog::list_names(&store.models_dir())? {
        match catalog::load(&store.models_dir(), &name) {
            Ok(m) => rows.push(vec![
                m.manifest.name.clone(),
                m.manifest.version.clone(),
                m.manifest.title.clone(),
                m.manifest.unit.clone(),
                jiandu::trust::state(store, &m)?.as_str().to_string(),
                m.manifest
                    .datasets
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" "),
                m.wasm_sha256[..16].to_string(),
            ]),
            Err(e) => rows.push(vec![
                name,
                "?".into(),
                format!("unreadable: {e}"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]),
        }
    }
    output::print(
        format,
        &[
            "model",
            "version",
            "title",
            "unit",
            "trust",
            "datasets",
            "wasm_sha256",
        ],
        &rows,
    )?;
    Ok(())
}

/// `model show`: what a model is, where it came from, what it reads and its parameters.
fn show(store: &jiandu::Store, name: &str, format: Format) -> Result<()> {
    if format == Format::Json {
        let m = catalog::load(&store.models_dir(), name)?;
        return output::json(&serde_json::json!({
            "manifest": m.manifest,
            "wasm_sha256": m.wasm_sha256,
            "contract": jiandu::contract::built_for(&m.wasm),
            "provenance": m.provenance,
            "trust": jiandu::trust::state(store, &m)?.as_str(),
        }));
    }
    let m = catalog::load(&store.models_dir(), name)?;
    let man = &m.manifest;
    outln!("{} — {}", man.id(), man.title);
    if let Some(t) = &man.title_en {
        outln!("  {t}");
    }
    outln!("  unit: {}", man.unit);
    outln!(
        "  contract: {} (model.toml requires {})",
        jiandu::contract::built_for(&m.wasm)
            .as_deref()
            .unwrap_or("unknown"),
        man.sdk
    );
    outln!("  wasm sha256: {}", m.wasm_sha256);
    if let Some(p) = &m.provenance {
        outln!(
            "  imported: published by {}, from {} ({})",
            p.publisher(),
            p.source,
            match jiandu::trust::state(store, &m)? {
                jiandu::trust::TrustState::Untrusted => {
                    "its key is no longer trusted: runs are refused unless the policy allows untrusted publishers"
                }
                _ => "its key is trusted",
            }
        );
    }
    for b in &man.legal_basis {
        outln!("  legal basis: {b}");
    }
    print_partition(man);
    outln!("  reads:");
    for (ds, decl) in &man.datasets {
        let personal: Vec<String> = jiandu::dataset::head(store, ds)?
            .map(|h| {
                h.schema
                    .fields
                    .iter()
                    .filter(|f| f.personal.is_some())
                    .filter(|f| decl.fields.as_ref().is_none_or(|l| l.contains(&f.name)))
                    .map(|f| f.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        outln!(
            "    {ds}: {}{}",
            decl.fields
                .as_ref()
                .map(|f| f.join(", "))
                .unwrap_or_else(|| "all fields".into()),
            if personal.is_empty() {
                String::new()
            } else {
                format!("  [personal: {}]", personal.join(", "))
            }
        );
    }
    outln!("  parameters:");
    print_params(man);
    Ok(())
}

/// What to say when a build installs another rule under the version
/// that was installed: the runs recorded so far name the earlier one by
/// its hashes (it stays kept for replay), but a person reading
/// `name@version` cannot tell the two apart.
fn same_version_other_rule(
    before: &catalog::Installed,
    built: &catalog::Installed,
) -> Option<String> {
    if before.manifest.version != built.manifest.version {
        return None;
    }
    // A scripted model's rule is its plan: the interpreter under it is the
    // host's, and a new host's interpreter is no new rule.
    let what = if before.plan_sha256 != built.plan_sha256 {
        "plan"
    } else if built.plan_sha256.is_none() && before.wasm_sha256 != built.wasm_sha256 {
        "code"
    } else {
        return None;
    };
    Some(format!(
        "{} was already installed with another {what}; runs on the record name each by its hashes, but `{}` now stands for two rules: raise `version` in model.toml when the rule changes",
        built.manifest.id(),
        built.manifest.id()
    ))
}

/// Builds, checks and installs, showing each step.
fn build_checked(
    ctx: &Ctx,
    store: &jiandu::Store,
    crate_dir: &std::path::Path,
) -> Result<catalog::Installed> {
    let runtime = Runtime::new(ctx.policy(store)?.defaults.stack_kib)?;
    let pb = super::spinner(format!("building {}", crate_dir.display()));
    let built = jiandu::models::build_and_install(store, &runtime, crate_dir, &mut Progress(&pb));
    pb.finish_and_clear();
    Ok(built?)
}

/// A build's steps on the spinner; the compiler's own lines on standard
/// error (through the server to its client, when a server runs the build).
struct Progress<'a>(&'a indicatif::ProgressBar);

impl catalog::BuildObserver for Progress<'_> {
    fn step(&mut self, message: &str) {
        self.0.println(format!("• {message}"));
        self.0.set_message(message.to_string());
    }

    fn compiler(&mut self, line: &str) {
        self.0.suspend(|| errln!("{line}"));
    }
}

/// `model new`: a new model crate in the folder `name`.
fn new_model(ctx: &Ctx, name: &str, datasets: &[String], plan: bool) -> Result<ExitCode> {
    // The store, only if there is one: for the datasets' schemas and the unit.
    let store = ctx.open_existing()?;
    let mut reads = Vec::new();
    for d in datasets {
        let schema = match &store {
            Some(s) => jiandu::dataset::head(s, d)?.map(|h| h.schema),
            None => None,
        };
        reads.push(jiandu::scaffold::Reads {
            dataset: d.clone(),
            schema,
        });
    }
    let unit = match &store {
        Some(s) => jiandu::policy::unit_label(s, &ctx.policy(s)?)?,
        None => "某某县人民检察院".to_string(),
    };
    let dir = ctx.path(name);
    if plan {
        let files = jiandu::scaffold::new_plan_model(&dir, name, &unit, &reads)?;
        outln!("created {} ({} files):", dir.display(), files.len());
        for f in &files {
            outln!("  {}", f.display());
        }
        outln!(
            "next: edit {name}/rule.plan.toml (docs/plans.md), then `jiandu model test {name} --data DATASET=FILE …`, `jiandu model build {name}` and `jiandu model explain {name}`"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let files = jiandu::scaffold::new_model(&dir, name, &unit, &reads)?;
    outln!("created {} ({} files):", dir.display(), files.len());
    for f in files.iter().filter(|f| !f.starts_with("sdk")) {
        outln!("  {}", f.display());
    }
    outln!("  sdk/ (the SDK this host was built with)");
    for r in reads.iter().filter(|r| r.schema.is_none()) {
        errln!(
            "note: this store has no dataset `{}`: its fields are not listed in model.toml and no schema was written",
            r.dataset
        );
    }
    outln!(
        "next: `cd {name} && cargo test`, then `jiandu model test {name} --data DATASET=FILE …`, then `jiandu model build {name}`"
    );
    Ok(ExitCode::SUCCESS)
}

/// `model test`: the model on sample files in a throwaway store.
#[allow(clippy::too_many_arguments)]
fn test(
    ctx: &Ctx,
    crate_dir: &std::path::Path,
    data: &[(String, PathBuf)],
    schemas: &[(String, PathBuf)],
    params: Vec<(String, String)>,
    expect: Option<&std::path::Path>,
    clear: bool,
    format: Format,
) -> Result<ExitCode> {
    use jiandu::dataset::resolve::Reveal;
    use jiandu::trial;
    // The store, only if there is one: for schemas and the policy's limits.
    let store = ctx.open_existing()?;
    let mut samples = Vec::new();
    for (dataset, file) in data {
        let schema = match schemas.iter().find(|(d, _)| d == dataset) {
            Some((_, path)) => jiandu::dataset::Schema::load(&ctx.path(path))?,
            None => store
                .as_ref()
                .map(|s| jiandu::dataset::head(s, dataset))
                .transpose()?
                .flatten()
                .map(|h| h.schema)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no schema for `{dataset}`: give --schema {dataset}=FILE (the store has no dataset of that name)"
                    )
                })?,
        };
        samples.push(trial::Sample {
            dataset: dataset.clone(),
            file: ctx.path(file),
            schema,
        });
    }
    let policy = match &store {
        Some(s) => ctx.policy(s)?,
        None => jiandu::policy::Policy::default(),
    };
    let expected = expect.map(trial::read_expected).transpose()?;
    let reveal = if clear { Reveal::Clear } else { Reveal::Masked };
    let pb = super::spinner(format!("trying {}", crate_dir.display()));
    let tried = trial::run(
        crate_dir,
        &samples,
        params,
        &policy,
        reveal,
        &mut |m: &str| {
            pb.println(format!("• {m}"));
            pb.set_message(m.to_string());
        },
    );
    pb.finish_and_clear();
    let t = tried?;
    if let Some(f) = &t.run.failure {
        errln!(
            "{}@{} failed on the sample data: {} — {}",
            t.model,
            t.version,
            f.kind,
            f.message
        );
        return Ok(ExitCode::FAILURE);
    }
    if format == Format::Json {
        output::json(&t.leads)?;
    } else {
        let rows: Vec<Vec<String>> = t
            .leads
            .iter()
            .map(|l| {
                vec![
                    l.subject.clone(),
                    l.title.clone(),
                    l.amount.clone().unwrap_or_default(),
                    l.evidence
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                ]
            })
            .collect();
        output::print(format, &["subject", "title", "amount", "evidence"], &rows)?;
        errln!(
            "{}@{} on {}: {} leads, {} records read",
            t.model,
            t.version,
            t.records
                .iter()
                .map(|(d, n)| format!("{d} ({n} records)"))
                .collect::<Vec<_>>()
                .join(", "),
            t.leads.len(),
            t.run.records_read
        );
    }
    let Some(expected) = expected else {
        return Ok(ExitCode::SUCCESS);
    };
    let d = trial::compare(&expected, &t.leads);
    if d.is_empty() {
        errln!("the leads are the {} expected", expected.len());
        return Ok(ExitCode::SUCCESS);
    }
    for l in &d.missing {
        errln!("missing: {} ({})", l.subject, l.title);
    }
    for l in &d.unexpected {
        errln!("not expected: {} ({})", l.subject, l.title);
    }
    for (e, f) in &d.changed {
        errln!("changed: {} ({})", e.subject, e.title);
        for line in trial::what_changed(e, f) {
            errln!("  {line}");
        }
    }
    errln!(
        "{} missing, {} not expected, {} changed",
        d.missing.len(),
        d.unexpected.len(),
        d.changed.len()
    );
    Ok(ExitCode::FAILURE)
}

/// A model's parameters, one a line: type, default, unit, description.
fn print_params(man: &catalog::Manifest) {
    for (n, p) in &man.params {
        outln!(
            "    {n} ({:?}) = {}{}{}",
            p.ty,
            p.default
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_else(|| "(required)".into()),
            p.unit.as_ref().map(|u| format!(" {u}")).unwrap_or_default(),
            p.description
                .as_ref()
                .map(|d| format!(" — {d}"))
                .unwrap_or_default()
        );
    }
}

/// `model pack`.
fn pack(ctx: &Ctx, store: &jiandu::Store, name: &str, output: Option<PathBuf>) -> Result<()> {
    let installed = catalog::load(&store.models_dir(), name)?;
    let file_name = jiandu_registry::dir::bundle_file_name(name, &installed.manifest.version);
    let out = match output {
        Some(p) if p.is_dir() => p.join(file_name),
        Some(p) => p,
        None => ctx.path(file_name),
    };
    let policy = ctx.policy(store)?;
    let runtime = Runtime::new(policy.defaults.stack_kib)?;
    let packed = share::pack(store, &runtime, name, &out)?;
    outln!(
        "packed {} into {} ({} bytes, sha256 {}), signed by key {}",
        packed.id,
        packed.path.display(),
        packed.size,
        packed.sha256,
        packed.fingerprint
    );
    Ok(())
}

/// `model import`.
fn import(ctx: &Ctx, store: &jiandu::Store, spec: &str, from: &str, yes: bool) -> Result<ExitCode> {
    let (name, req) = jiandu_registry::index::parse_spec(spec).map_err(anyhow::Error::msg)?;
    let source = Source::parse(from)?;
    let policy = ctx.policy(store)?;
    let runtime = Runtime::new(policy.defaults.stack_kib)?;
    let pb = super::spinner(format!("verifying {spec} from {}", source.describe()));
    let plan = share::plan_import(store, &runtime, &source, &name, &req);
    pb.finish_and_clear();
    let plan = plan.map_err(|e| anyhow::anyhow!("{e}; nothing was installed"))?;
    if plan.action == share::Action::AlreadyInstalled {
        // Nothing to install; the index it was checked against is still
        // remembered, so an older one is refused from now on.
        share::commit_import(store, &plan)?;
        outln!(
            "{} is already installed from this bundle (sha256 {}); nothing to do",
            plan.id(),
            plan.fetched.bundle.sha256()
        );
        return Ok(ExitCode::SUCCESS);
    }
    print_plan(store, &plan)?;
    if !yes {
        use std::io::IsTerminal;
        if ctx.server.is_some() || !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "{} was not installed: there is no terminal to ask on; read the summary above and add --yes to install",
                plan.id()
            );
        }
        errln!("Install {}? [y/N] ", plan.id());
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            anyhow::bail!("{} was not installed (declined)", plan.id());
        }
    }
    let installed = share::commit_import(store, &plan)?;
    outln!(
        "{} {} into {} (publisher {})",
        match &plan.action {
            share::Action::Upgrade { from } => format!("upgraded {name} from {from} to"),
            _ => "installed".to_string(),
        },
        installed.manifest.id(),
        installed.dir.display(),
        installed
            .provenance
            .as_ref()
            .map(|p| p.publisher())
            .unwrap_or_default()
    );
    // Grants are bound to publisher keys: say now what its runs will need.
    if let Err(why) = policy.decide(&installed.manifest, installed.provenance.as_ref()) {
        errln!("note: its runs will be refused until the policy changes: {why}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What an import brings: who published it and what it will read.
fn print_plan(store: &jiandu::Store, plan: &share::Plan) -> Result<()> {
    let man = &plan.manifest;
    let release = plan.fetched.bundle.release();
    outln!("{} — {}", man.id(), man.title);
    if let Some(t) = &man.title_en {
        outln!("  {t}");
    }
    outln!("  from:        {}", plan.source);
    outln!(
        "  publisher:   {}, key {} (as this store trusts the key)",
        plan.trusted.label(),
        release.publisher.fingerprint,
    );
    outln!(
        "  bundle:      sha256 {}, packed {}; signature and digests verified",
        plan.fetched.bundle.sha256(),
        release.created_at
    );
    match &plan.fetched.index {
        Some(index) => outln!(
            "  index:       version {} of registry {}, signed {}, valid until {}",
            index.signed.version,
            index.signed.registry,
            index.signed.signed_at,
            index.signed.expires
        ),
        None => {
            outln!("  index:       none (a bundle file: no registry index to check yanks against)")
        }
    }
    outln!(
        "  contract:    {} (this host: {})",
        man.sdk,
        jiandu_sdk::CONTRACT_VERSION
    );
    match &plan.action {
        share::Action::Upgrade { from } => outln!("  action:      upgrade from {from}"),
        _ => outln!("  action:      install"),
    }
    for b in &man.legal_basis {
        outln!("  legal basis: {b}");
    }
    print_partition(man);
    outln!("  reads:");
    for r in share::reads(store, man)? {
        let fields = r
            .fields
            .as_ref()
            .map(|f| f.join(", "))
            .unwrap_or_else(|| "ALL fields".into());
        let personal = match &r.personal {
            None => "  [dataset not in this store yet: personal fields unknown]".to_string(),
            Some(p) if p.is_empty() => String::new(),
            Some(p) => format!("  [personal: {}]", p.join(", ")),
        };
        outln!("    {}: {fields}{personal}", r.dataset);
    }
    outln!("  parameters:");
    if man.params.is_empty() {
        outln!("    none");
    }
    print_params(man);
    let l = &man.limits;
    if l.memory_mib.is_some() || l.fuel.is_some() || l.wall_seconds.is_some() {
        outln!(
            "  limits:      {} (capped by this host's policy)",
            [
                l.memory_mib.map(|m| format!("memory {m} MiB")),
                l.fuel.map(|f| format!("fuel {f}")),
                l.wall_seconds.map(|w| format!("wall {w} s")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
        );
    }
    Ok(())
}

/// A model's `[partition]`, as `model show` and an import's preview say it.
fn print_partition(man: &jiandu::catalog::Manifest) {
    if let Some(p) = &man.partition {
        let renamed: Vec<String> = p.fields.iter().map(|(ds, f)| format!("{ds}.{f}")).collect();
        outln!(
            "  runs split by {}{}: one instance per key range, all at once",
            p.key,
            if renamed.is_empty() {
                String::new()
            } else {
                format!(" ({})", renamed.join(", "))
            }
        );
    }
}
