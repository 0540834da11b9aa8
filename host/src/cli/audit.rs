//! `jiandu audit log|report|verify|export|import|checkpoint|unit`

use super::output::{self, Format};
use super::Ctx;
use anyhow::{Context, Result};
use jiandu::audit::query::{self, Filter, ModelText, OutcomeFilter, Scope, TimeBound};
use jiandu::audit::{self, central, export, import, units};
use jiandu::ledger::{self, Verification};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// List ledger entries: this store's own and those imported from other
    /// units, filtered.
    ///
    /// Example: `jiandu audit log --unit 温宿县人民检察院 --model disability-fund-arrears --outcome failed --since 2025-03-01 --format csv`
    Log {
        #[command(flatten)]
        select: Select,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Summarise runs per unit and per model: runs, failures, leads, the
    /// datasets read (personal-data datasets marked PERSONAL) and which
    /// publisher each model came from.
    ///
    /// Example: `jiandu audit report --central --since 2025-01-01 --format json`
    Report {
        #[command(flatten)]
        select: Select,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show one run: its entries (the model's own text beside them, where
    /// kept), its parameters and outcome, and every dataset version it read
    /// with the ingest entries that loaded it (who, when, from which file).
    /// Or one entry, by its sequence number.
    ///
    /// Example: `jiandu audit show 20250301T093000.123-4242-0`
    Show {
        /// A run id (from `jiandu audit log`) or an entry's sequence number.
        run: String,
        /// Only this unit's ledger (fingerprint, name or code).
        #[arg(long)]
        unit: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Remove the text a model chose (a panic message, its error, a
    /// backtrace) kept beside entry SEQ, on the record: a `text-redacted`
    /// entry names the entry, the operator and the reason. The chain is
    /// unchanged and still verifies.
    ///
    /// Example: `jiandu audit redact 42 --reason "panic message quotes an ID number"`
    Redact {
        /// The entry whose model text goes.
        seq: u64,
        /// Why; recorded in the ledger for good.
        #[arg(long)]
        reason: String,
    },
    /// Run a recorded run again: the same model version (by its wasm
    /// digest) over the same dataset versions with the same parameters and
    /// limits, and say whether it ends the same (the same leads digest, or
    /// the same kind of failure). On the record; keeps no leads. Exits 1
    /// when it does not reproduce the run.
    ///
    /// Example: `jiandu audit replay 20250301T093000.123-4242-0`
    Replay {
        /// The run id (from `jiandu audit log`).
        run: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Recompute the hash chain, signatures and checkpoints, and name the
    /// first entry that fails, the check it fails and why.
    ///
    /// Without options: this store's own ledger, then the files it points
    /// at: every leads snapshot against the sha256 and digest its run
    /// recorded, every dataset block against its CRCs and every version
    /// against its digest, each fault named with its entry, file and block.
    /// Exits 1 when anything does not verify.
    ///
    /// Example: `jiandu audit verify --unit 温宿县人民检察院`
    Verify {
        /// Verify the ledger imported from this unit (key fingerprint, name or code).
        #[arg(long, conflicts_with = "central")]
        unit: Option<String>,
        /// Verify every imported ledger.
        #[arg(long)]
        central: bool,
        /// Check leads files and block CRCs only; skip recomputing the
        /// leads and dataset digests (which read every record).
        #[arg(long, conflicts_with_all = ["unit", "central"])]
        quick: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Write this unit's signed ledger (or what follows a checkpoint) and a
    /// fresh signed checkpoint to one file for the central office.
    ///
    /// `--since` takes the entry count of the last checkpoint the central
    /// office accepted (`jiandu audit unit list` there), or a file holding
    /// it (the previous export file, whose last line is its checkpoint).
    ///
    /// Example: `jiandu audit export --since previous.jsonl -o 2025-03.jsonl`
    Export {
        /// Export only what follows this checkpoint: an entry count, or a
        /// file holding the checkpoint (default: the whole ledger).
        #[arg(long)]
        since: Option<String>,
        /// The file to write (JSON Lines).
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Verify units' export files against their registered keys and the last
    /// checkpoint accepted from each, and store them; refuse a file with the
    /// line, entry and check that failed. Exits 1 if any file is refused.
    ///
    /// Example: `jiandu audit import wensu-2025-03.jsonl wushi-2025-03.jsonl`
    Import {
        /// Export files, imported in the order given.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Check only; store nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Verify this unit's ledger and write a signed checkpoint over it now.
    ///
    /// Example: `jiandu audit checkpoint`
    Checkpoint {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// The units whose ledgers this office imports.
    #[command(subcommand)]
    Unit(UnitCommand),
}

#[derive(clap::Subcommand)]
pub enum UnitCommand {
    /// Register a unit by its public key: 64 hex characters, or a file
    /// holding them, or the unit's `jiandu unit show --format json`.
    ///
    /// Example: `jiandu audit unit add 3b6a27bc…e1 --name 温宿县人民检察院 --code 11652922MB1234567X`
    Add {
        /// The unit's public key (hex), or a file holding it.
        key: String,
        /// Defaults to the name in the JSON file, if given one.
        #[arg(long)]
        name: Option<String>,
        /// Defaults to the code in the JSON file, if given one.
        #[arg(long)]
        code: Option<String>,
    },
    /// List registered units with what was imported from each.
    ///
    /// Example: `jiandu audit unit list --format json`
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// Which entries `log` and `report` read.
#[derive(clap::Args)]
pub struct Select {
    /// Only this unit (key fingerprint or its first characters, name, or code).
    #[arg(long)]
    unit: Option<String>,
    /// Model name.
    #[arg(long)]
    model: Option<String>,
    /// Model version, exactly (e.g. 1.2.0).
    #[arg(long)]
    version: Option<String>,
    /// Runs that read this dataset.
    #[arg(long)]
    dataset: Option<String>,
    /// Who ran it, as recorded.
    #[arg(long)]
    operator: Option<String>,
    /// started, succeeded, failed, refused, or unfinished (started, never finished).
    #[arg(long)]
    outcome: Option<OutcomeFilter>,
    /// From this time on: 2025-03-01, 2025-03-01T08:30 (UTC+8) or RFC 3339.
    #[arg(long, value_parser = TimeBound::since)]
    since: Option<TimeBound>,
    /// Up to this time; a date alone includes that whole day.
    #[arg(long, value_parser = TimeBound::until)]
    until: Option<TimeBound>,
    /// Only this store's own ledger.
    #[arg(long, conflicts_with = "central")]
    local: bool,
    /// Only the ledgers imported from other units.
    #[arg(long)]
    central: bool,
}

impl Select {
    fn filter(self) -> Filter {
        Filter {
            scope: if self.local {
                Scope::Local
            } else if self.central {
                Scope::Central
            } else {
                Scope::All
            },
            unit: self.unit,
            model: self.model,
            version: self.version,
            dataset: self.dataset,
            operator: self.operator,
            outcome: self.outcome,
            since: self.since,
            until: self.until,
        }
    }
}

pub fn exec(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        Command::Log { select, format } => log(&store, select.filter(), format),
        Command::Report { select, format } => report(&store, select.filter(), format),
        Command::Show { run, unit, format } => show(&store, &run, unit, format),
        Command::Replay { run, format } => replay(ctx, &store, &run, format),
        Command::Redact { seq, reason } => redact(ctx, &store, seq, &reason),
        Command::Verify {
            unit,
            central,
            quick,
            format,
        } => verify(&store, unit, central, quick, format),
        Command::Export { since, output } => export_ledger(&store, since.as_deref(), &output),
        Command::Import {
            files,
            dry_run,
            format,
        } => import_files(&store, &files, dry_run, format),
        Command::Checkpoint { format } => checkpoint(&store, format),
        Command::Unit(UnitCommand::Add { key, name, code }) => unit_add(&store, &key, name, code),
        Command::Unit(UnitCommand::List { format }) => unit_list(&store, format),
    }
}

/// `audit replay`: runs a recorded run again and says whether it ends as it did.
fn replay(ctx: &Ctx, store: &jiandu::Store, run: &str, format: Format) -> Result<ExitCode> {
    let policy = ctx.policy(store)?;
    let runtime = jiandu::runtime::Runtime::new(policy.defaults.stack_kib)?;
    let unit = jiandu::policy::unit_label(store, &policy)?;
    let pb = super::spinner(format!("replaying run {run}"));
    let r = jiandu::replay::replay(store, &runtime, unit, ctx.operator.clone(), run);
    pb.finish_and_clear();
    let r = r?;
    if format == Format::Json {
        output::json(&r)?;
    } else {
        let ending = |e: &jiandu::replay::Ending| {
            let mut s = e.outcome.clone();
            if let Some(k) = &e.error_kind {
                s.push_str(&format!(" ({k})"));
            }
            if let (Some(n), Some(d)) = (e.leads, &e.leads_digest) {
                s.push_str(&format!(", {n} leads, digest {d}"));
            }
            s
        };
        outln!(
            "replayed run {} of {} (wasm {}) on {}",
            r.run_id,
            r.model,
            r.wasm_sha256.get(..12).unwrap_or(""),
            r.datasets.join(", ")
        );
        outln!("  recorded: {}", ending(&r.recorded));
        outln!("  replay:   {}", ending(&r.replayed));
        outln!(
            "{} (entries {} and {})",
            match r.reproduced {
                Some(true) => "reproduced: the replay ends as the run did",
                Some(false) => "NOT reproduced: the replay ends otherwise than the run did",
                None =>
                    "nothing to compare: the run's record says nothing about the model's result",
            },
            r.entries.0,
            r.entries.1
        );
    }
    Ok(if r.reproduced == Some(false) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `audit redact`: removes a model's text kept beside an entry, on the record.
fn redact(ctx: &Ctx, store: &jiandu::Store, seq: u64, reason: &str) -> Result<ExitCode> {
    let unit = jiandu::policy::unit_label(store, &ctx.policy(store)?)?;
    let e = ledger::aside::redact(store, seq, unit, ctx.operator.clone(), reason)?;
    outln!(
        "redacted the model text of entry {seq}: entry {} records it ({}, {})",
        e.seq,
        e.operator,
        e.at
    );
    Ok(ExitCode::SUCCESS)
}

/// `audit export`: writes the ledger (after `since`) to a file for the central office.
fn export_ledger(
    store: &jiandu::Store,
    since: Option<&str>,
    output: &std::path::Path,
) -> Result<ExitCode> {
    let since = since.map(export::parse_since).transpose()?;
    let e = export::export_file(store, since.as_ref(), output)?;
    let c = &e.checkpoint.checkpoint;
    outln!(
        "exported entries {}..{} ({} entries) of unit {} ({}) to {}",
        e.header.from(),
        e.header.to,
        e.entries,
        e.header.unit,
        e.header.fingerprint,
        output.display()
    );
    outln!("checkpoint {} entries, root {}, {}", c.size, c.root, c.time);
    Ok(ExitCode::SUCCESS)
}

/// `audit checkpoint`: signs a checkpoint of the ledger as it is now.
fn checkpoint(store: &jiandu::Store, format: Format) -> Result<ExitCode> {
    let signer = ledger::Signer::for_store(store)?
        .context("this store has no unit to sign checkpoints; create it with `jiandu unit init`")?;
    let cp = audit::checkpoint::write_local(store, &signer)?;
    match format {
        Format::Json => output::json(&cp)?,
        _ => {
            let c = &cp.checkpoint;
            outln!(
                "checkpoint of unit {} ({}): {} entries, root {}, head {}, {}",
                c.unit,
                c.fingerprint,
                c.size,
                c.root,
                c.head_hash,
                c.time
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit unit add`: registers a unit's key at the central office.
fn unit_add(
    store: &jiandu::Store,
    key: &str,
    name: Option<String>,
    code: Option<String>,
) -> Result<ExitCode> {
    let input = units::parse_key_input(key)?;
    let name = name
        .or(input.name)
        .context("give the unit's name with --name")?;
    let code = code
        .or(input.code)
        .context("give the unit's code with --code")?;
    let u = units::add(store, &input.key, &name, &code)?;
    outln!("registered unit {} with key {}", u.label(), u.fingerprint);
    Ok(ExitCode::SUCCESS)
}

/// `audit unit list`: the registered units and what was last accepted from each.
fn unit_list(store: &jiandu::Store, format: Format) -> Result<ExitCode> {
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for u in units::list(store)? {
        let last = central::last_accepted(store, &u.fingerprint)?;
        let (size, time, accepted_at, source) = match &last {
            Some(a) => (
                a.checkpoint.checkpoint.size.to_string(),
                a.checkpoint.checkpoint.time.clone(),
                a.accepted_at.clone(),
                a.source.clone(),
            ),
            None => ("0".into(), String::new(), String::new(), String::new()),
        };
        rows.push(vec![
            u.name.clone(),
            u.code.clone(),
            u.fingerprint.clone(),
            size,
            time,
            accepted_at,
            source,
        ]);
        json.push(serde_json::json!({"unit": u, "last_accepted": last}));
    }
    match format {
        Format::Json => output::json(&json)?,
        _ => output::print(
            format,
            &[
                "name",
                "code",
                "fingerprint",
                "entries",
                "checkpoint_time",
                "accepted_at",
                "file",
            ],
            &rows,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

fn log(store: &jiandu::Store, filter: Filter, format: Format) -> Result<ExitCode> {
    let rows = query::log(store, &filter)?;
    if format == Format::Json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut v = r.stored.clone();
                if let Some(map) = v.as_object_mut() {
                    map.insert(
                        "ledger".into(),
                        serde_json::json!({
                            "unit": r.unit,
                            "fingerprint": r.fingerprint,
                            "imported": !r.local,
                        }),
                    );
                    map.insert("unfinished".into(), r.unfinished.into());
                    if let Some(text) = &r.text {
                        // The message back where entries written before
                        // model text was kept beside them hold it.
                        if let (ModelText::Present { text }, Some(error)) = (
                            text,
                            map.get_mut("run")
                                .and_then(|run| run.get_mut("error"))
                                .and_then(|e| e.as_object_mut()),
                        ) {
                            error.insert("message".into(), text.clone().into());
                        }
                        map.insert(
                            "model_text".into(),
                            serde_json::to_value(text).expect("model text serializes"),
                        );
                    }
                }
                v
            })
            .collect();
        output::json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let e = &row.entry;
            let r = &e.run;
            if let Some(d) = &e.disclosure {
                return disclosure_row(row, d);
            }
            if let Some(what) = review_or_login(e) {
                let mut cells = vec![String::new(); 15];
                cells[0] = row.unit.clone();
                cells[1] = e.seq.to_string();
                cells[2] = e.at.clone();
                cells[3] = e.kind.clone();
                cells[4] = e.operator.clone();
                cells[5] = e
                    .review
                    .as_ref()
                    .map(|r| r.model.clone())
                    .unwrap_or_default();
                cells[14] = what;
                return cells;
            }
            vec![
                row.unit.clone(),
                e.seq.to_string(),
                e.at.clone(),
                e.kind.clone(),
                e.operator.clone(),
                if r.model.name.is_empty() {
                    String::new()
                } else {
                    format!("{}@{}", r.model.name, r.model.version)
                },
                r.model.wasm_sha256.get(..12).unwrap_or("").to_string(),
                r.model.publisher.clone().unwrap_or_default(),
                r.run_id.clone(),
                if row.unfinished {
                    "unfinished".into()
                } else {
                    r.outcome.clone()
                },
                match (&e.ingest, &e.dataset) {
                    (None, Some(c)) if c.pruned.is_empty() => format!(
                        "{}@{} (was @{})",
                        c.dataset,
                        c.to.map(|v| v.to_string()).unwrap_or_default(),
                        c.from.map(|v| v.to_string()).unwrap_or_default()
                    ),
                    (None, Some(c)) => format!(
                        "{} pruned @{}{}",
                        c.dataset,
                        c.pruned
                            .iter()
                            .map(|p| p.version.to_string())
                            .collect::<Vec<_>>()
                            .join(",@"),
                        if c.forced {
                            format!(" (--force: {} runs had read them)", c.runs_read)
                        } else {
                            String::new()
                        }
                    ),
                    (Some(i), _) => format!(
                        "{}@{}{} ← {} rows from {} (sha256 {}…)",
                        i.dataset,
                        i.version,
                        if i.personal { "[PERSONAL]" } else { "" },
                        i.rows,
                        i.source,
                        i.source_sha256.get(..12).unwrap_or("")
                    ),
                    (None, None) => r
                        .datasets
                        .iter()
                        .map(|d| {
                            let personal = if d.personal || !d.personal_fields.is_empty() {
                                "[PERSONAL]"
                            } else {
                                ""
                            };
                            format!("{}@{}{personal}", d.name, d.version)
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                },
                r.records_read.map(|n| n.to_string()).unwrap_or_default(),
                r.leads_count.map(|n| n.to_string()).unwrap_or_default(),
                match (&r.error, query::error_message(e, row.text.as_ref())) {
                    (Some(f), Some(m)) => format!("{}: {}", f.kind, m.lines().next().unwrap_or("")),
                    _ => e
                        .redaction
                        .as_ref()
                        .map(|r| format!("removes the model text of entry {}: {}", r.seq, r.reason))
                        .unwrap_or_default(),
                },
                String::new(),
            ]
        })
        .collect();
    output::print(
        format,
        &[
            "unit",
            "seq",
            "at",
            "kind",
            "operator",
            "model",
            "wasm",
            "publisher",
            "run",
            "outcome",
            "datasets",
            "records",
            "leads",
            "error",
            "disclosed",
        ],
        &table,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn show(
    store: &jiandu::Store,
    target: &str,
    unit: Option<String>,
    format: Format,
) -> Result<ExitCode> {
    let filter = Filter {
        unit,
        ..Filter::default()
    };
    let shown = query::show(store, &filter, target)?;
    if format == Format::Json {
        output::json(&shown)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (i, s) in shown.iter().enumerate() {
        if i > 0 {
            outln!();
        }
        outln!(
            "{} — {}",
            s.unit,
            if s.local { "this store" } else { "imported" }
        );
        for e in &s.entries {
            show_entry(e);
        }
        if !s.data.is_empty() {
            outln!("  data read:");
        }
        for d in &s.data {
            let personal = match (d.personal_fields.is_empty(), d.clear_personal) {
                (true, _) => String::new(),
                (false, clear) => format!(
                    " [PERSONAL: {}, {}]",
                    d.personal_fields.join(","),
                    if clear { "in clear" } else { "masked" }
                ),
            };
            outln!("    {}@{} digest {}{personal}", d.name, d.version, d.digest);
            if d.loaded.is_empty() {
                outln!("      loaded before ingests were put on the record");
            } else if !d.digest_recorded {
                outln!(
                    "      the ingest below recorded digest {}, not the one the run read",
                    d.loaded[0].ingest.digest
                );
            }
            for l in &d.loaded {
                let i = &l.ingest;
                outln!(
                    "      entry {} {} by {}: {} rows from {} (sha256 {}), version {}{}",
                    l.seq,
                    l.at,
                    l.operator,
                    i.rows,
                    i.source,
                    i.source_sha256,
                    i.version,
                    i.appended_to
                        .map(|b| format!(" appended to {b}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show_entry(e: &query::ShownEntry) {
    let v = &e.view;
    let r = &v.run;
    let mut line = format!("  entry {} {} {} by {}", v.seq, v.at, v.kind, v.operator);
    if !r.run_id.is_empty() {
        line.push_str(&format!(
            ": run {} of {}@{} (wasm {})",
            r.run_id,
            r.model.name,
            r.model.version,
            r.model.wasm_sha256.get(..12).unwrap_or("")
        ));
        if let Some(p) = &r.model.publisher {
            line.push_str(&format!(" from {p}"));
        }
    }
    outln!("{line}");
    if v.kind == "run-started" && !r.params.is_empty() {
        let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        outln!("    params {}", params.join(" "));
    }
    if v.kind == "run-finished" || v.kind == "run-refused" {
        let mut done = format!("    {}", r.outcome);
        if let Some(n) = r.records_read {
            done.push_str(&format!(", {n} records read"));
        }
        if let Some(n) = r.leads_count {
            done.push_str(&format!(", {n} leads"));
        }
        if let Some(d) = &r.leads_digest {
            done.push_str(&format!(" (digest {d})"));
        }
        outln!("{done}");
        if let Some(snap) = &r.leads_snapshot {
            outln!(
                "    leads snapshot {} ({} leads, sha256 {})",
                snap.file,
                snap.leads,
                snap.sha256
            );
        }
    }
    if let (Some(err), Some(message)) = (&r.error, query::error_message(v, e.text.as_ref())) {
        outln!("    {}: {}", err.kind, message.replace('\n', "\n      "));
    }
    if let Some(i) = &v.ingest {
        outln!(
            "    {}@{} ({} records, digest {}): {} rows from {} (sha256 {}){}",
            i.dataset,
            i.version,
            i.records,
            i.digest,
            i.rows,
            i.source,
            i.source_sha256,
            i.appended_to
                .map(|b| format!(", appended to version {b}"))
                .unwrap_or_default()
        );
    }
    if let Some(red) = &v.redaction {
        outln!(
            "    removed the model text of entry {}: {}",
            red.seq,
            red.reason
        );
    }
}

/// What a `lead-reviewed` or login entry says, for the last column of
/// `audit log`. A person's words stay beside the entry: only their
/// length is shown.
fn review_or_login(e: &audit::EntryView) -> Option<String> {
    if let Some(r) = &e.review {
        let mut what = format!("{} {}: {} → {}", r.action, r.subject, r.from, r.to);
        if let Some(reason) = &r.reason {
            what.push_str(&format!(" ({reason})"));
        }
        if let Some(t) = &r.target {
            what.push_str(&format!(" → {t}"));
        }
        if let Some(n) = r.text_len {
            what.push_str(&format!("; {n} bytes of words beside the entry"));
        }
        return Some(what);
    }
    let l = e.login.as_ref()?;
    Some(match &l.refusal {
        None => format!("logged in from {}", l.from),
        Some(why) => {
            let mut what = format!("refused from {}: {why}", l.from);
            if let Some(n) = l.failures {
                what.push_str(&format!(" ({n} in a row)"));
            }
            if let Some(until) = &l.locked_until {
                what.push_str(&format!(", locked until {until}"));
            }
            what
        }
    })
}

/// An `audit log` row for a `personal-data-revealed` entry: who saw how
/// many personal values in clear, through which command.
fn disclosure_row(row: &query::LogRow, d: &audit::DisclosureView) -> Vec<String> {
    let e = &row.entry;
    let mut what = format!(
        "{} personal values in clear in {} leads: {}",
        d.values, d.leads, d.command
    );
    if let Some(m) = &d.model {
        what.push_str(&format!(" --model {m}"));
    }
    if let Some(s) = &d.status {
        what.push_str(&format!(" --status {s}"));
    }
    if let Some(o) = &d.output {
        what.push_str(&format!(" -o {o}"));
    }
    let mut cells = vec![String::new(); 15];
    cells[0] = row.unit.clone();
    cells[1] = e.seq.to_string();
    cells[2] = e.at.clone();
    cells[3] = e.kind.clone();
    cells[4] = e.operator.clone();
    cells[5] = d.model.clone().unwrap_or_default();
    cells[12] = d.leads.to_string();
    cells[14] = what;
    cells
}

fn report(store: &jiandu::Store, filter: Filter, format: Format) -> Result<ExitCode> {
    let units = query::report(store, &filter)?;
    if format == Format::Json {
        output::json(&units)?;
        return Ok(ExitCode::SUCCESS);
    }
    let headers = [
        "unit",
        "model",
        "versions",
        "publisher",
        "runs",
        "succeeded",
        "failed",
        "refused",
        "unfinished",
        "failures",
        "leads",
        "datasets",
        "operators",
    ];
    let row = |unit: &query::UnitSummary,
               model: &str,
               versions: String,
               publishers: String,
               c: &query::Counts,
               datasets: String,
               operators: String| {
        vec![
            unit.unit.clone(),
            model.to_string(),
            versions,
            publishers,
            c.runs.to_string(),
            c.succeeded.to_string(),
            c.failed.to_string(),
            c.refused.to_string(),
            c.unfinished.to_string(),
            c.failures.to_string(),
            c.leads.to_string(),
            datasets,
            operators,
        ]
    };
    let join =
        |s: &std::collections::BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    let model_rows = |u: &query::UnitSummary| -> Vec<Vec<String>> {
        u.models
            .iter()
            .map(|m| {
                row(
                    u,
                    &m.model,
                    join(&m.versions),
                    join(&m.publishers),
                    &m.counts,
                    query::describe_datasets(&m.datasets),
                    join(&m.operators),
                )
            })
            .collect()
    };
    if format == Format::Csv {
        let mut rows = Vec::new();
        for u in &units {
            rows.push(row(
                u,
                "(all models)",
                String::new(),
                String::new(),
                &u.counts,
                query::describe_datasets(&u.datasets),
                String::new(),
            ));
            rows.extend(model_rows(u));
        }
        output::print(format, &headers, &rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (i, u) in units.iter().enumerate() {
        if i > 0 {
            outln!();
        }
        let c = &u.counts;
        outln!(
            "{}{}{} — {}",
            u.unit,
            u.code
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default(),
            u.fingerprint
                .as_deref()
                .map(|f| format!(", key {f}"))
                .unwrap_or_default(),
            if u.local { "this store" } else { "imported" }
        );
        outln!(
            "  {} entries; {} runs: {} succeeded, {} failed, {} refused, {} unfinished ({} failures); {} leads",
            u.entries,
            c.runs,
            c.succeeded,
            c.failed,
            c.refused,
            c.unfinished,
            c.failures,
            c.leads
        );
        if let Some(cp) = &u.checkpoint {
            outln!("  last checkpoint: {} entries, {}", cp.size, cp.time);
        }
        if !u.datasets.is_empty() {
            outln!("  datasets read: {}", query::describe_datasets(&u.datasets));
        }
        if !u.models.is_empty() {
            output::print(
                Format::Table,
                &headers[1..],
                &model_rows(u)
                    .into_iter()
                    .map(|r| r[1..].to_vec())
                    .collect::<Vec<_>>(),
            )?;
        }
    }
    if units.is_empty() {
        outln!("no ledgers to report on");
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(
    store: &jiandu::Store,
    unit: Option<String>,
    all: bool,
    quick: bool,
    format: Format,
) -> Result<ExitCode> {
    let mut results: Vec<(String, Verification)> = Vec::new();
    let local = unit.is_none() && !all;
    if let Some(text) = unit {
        let u = units::find(store, &text)?;
        results.push((
            format!("unit {}'s imported ledger", u.label()),
            audit::verify::central(store, &u)?,
        ));
    } else if all {
        for u in units::list(store)? {
            results.push((
                format!("unit {}'s imported ledger", u.label()),
                audit::verify::central(store, &u)?,
            ));
        }
    }
    let files = if local {
        let pb = super::spinner(if quick {
            "checking the ledger, leads files and block CRCs".to_string()
        } else {
            "checking the ledger, leads files, dataset blocks and digests".to_string()
        });
        let checked = jiandu::stored::verify_with_ledger(store, quick);
        pb.finish_and_clear();
        let (ledger, files) = checked?;
        results.push(("ledger".into(), ledger));
        Some(files)
    } else {
        None
    };
    let failed = results.iter().any(|(_, v)| v.problem.is_some())
        || files.as_ref().is_some_and(|f| !f.faults.is_empty());
    if format == Format::Json {
        let mut list: Vec<serde_json::Value> = results
            .iter()
            .map(|(what, v)| serde_json::json!({"ledger": what, "verified": v.problem.is_none(), "result": v}))
            .collect();
        if let Some(f) = &files {
            list.push(serde_json::json!({"files": "leads and data", "verified": f.faults.is_empty(), "result": f}));
        }
        output::json(&list)?;
    } else {
        for (what, v) in &results {
            match &v.problem {
                None => {
                    let signed = match (&v.fingerprint, v.unsigned) {
                        (Some(fp), 0) => format!("all signed with key {fp}"),
                        (Some(fp), n) => format!(
                            "{} signed with key {fp}, {n} unsigned (written before the unit key existed)",
                            v.signed
                        ),
                        (None, _) => "unsigned: this store has no unit (`jiandu unit init`)".to_string(),
                    };
                    outln!(
                        "{what} verified: {} entries ({signed}), {} checkpoint{} matched, head {}",
                        v.entries,
                        v.checkpoints,
                        if v.checkpoints == 1 { "" } else { "s" },
                        v.head_hash.as_deref().unwrap_or("(empty)")
                    );
                    if let Some(root) = &v.root {
                        outln!("  Merkle root {root}");
                    }
                    for r in &v.redactions {
                        outln!(
                            "  the model text of entry {} was redacted by entry {} ({}, {}): {}",
                            r.target,
                            r.seq,
                            r.operator,
                            r.at,
                            r.reason
                        );
                    }
                }
                Some(p) => {
                    errln!(
                        "{what} does NOT verify: entry {} failed the {} check: {}",
                        p.seq,
                        p.check,
                        p.message
                    );
                }
            }
        }
        if results.is_empty() {
            outln!("no imported ledgers");
        }
        if let Some(f) = &files {
            print_files(f);
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_files(f: &jiandu::stored::Files) {
    let digests = if f.quick {
        "digests not recomputed (--quick)".to_string()
    } else {
        format!(
            "{} leads digest{} and {} version digest{} recomputed, the index and pseudonym runs of {} segment{} built again",
            f.leads_digests,
            if f.leads_digests == 1 { "" } else { "s" },
            f.digests,
            if f.digests == 1 { "" } else { "s" },
            f.derived,
            if f.derived == 1 { "" } else { "s" }
        )
    };
    let summary = format!(
        "{} leads file{}, {} dataset version{} ({} blocks in {} files, {:.1} MiB), {} kept model version{}; {digests}",
        f.leads_files,
        if f.leads_files == 1 { "" } else { "s" },
        f.versions,
        if f.versions == 1 { "" } else { "s" },
        f.blocks,
        f.block_files,
        f.bytes as f64 / (1 << 20) as f64,
        f.models,
        if f.models == 1 { "" } else { "s" }
    );
    if f.faults.is_empty() {
        outln!("files the ledger points at verified: {summary}");
        return;
    }
    errln!(
        "files the ledger points at do NOT verify ({} fault{}): {summary}",
        f.faults.len(),
        if f.faults.len() == 1 { "" } else { "s" }
    );
    for fault in &f.faults {
        errln!("  {fault}");
    }
}

fn import_files(
    store: &jiandu::Store,
    files: &[PathBuf],
    dry_run: bool,
    format: Format,
) -> Result<ExitCode> {
    let mut refused = false;
    let mut json = Vec::new();
    for file in files {
        let input = std::fs::File::open(file)
            .map(|f| std::io::BufReader::with_capacity(1 << 20, f))
            .with_context(|| format!("reading {}", file.display()))?;
        let source = file.display().to_string();
        let outcome = if dry_run {
            import::check_from(store, input, &source)?.map(import::Imported::from)
        } else {
            import::import_from(store, input, &source)?
        };
        match &outcome {
            Ok(done) => {
                if format == Format::Json {
                    json.push(
                        serde_json::json!({"file": source, "accepted": true, "import": done}),
                    );
                } else {
                    outln!(
                        "{}{source}: {} new entries from unit {} (entries {}..{}), checkpoint {} entries, root {}",
                        if dry_run { "would accept " } else { "accepted " },
                        done.added,
                        done.unit.label(),
                        done.previous + 1,
                        done.size,
                        done.size,
                        done.root
                    );
                    for note in &done.notes {
                        outln!("  note: {note}");
                    }
                }
            }
            Err(r) => {
                refused = true;
                if format == Format::Json {
                    json.push(serde_json::json!({"file": source, "accepted": false, "refusal": r}));
                } else {
                    errln!("refused {source}: {r}");
                }
            }
        }
    }
    if format == Format::Json {
        output::json(&json)?;
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
