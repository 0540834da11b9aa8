//! `jiandu dataset ingest|list|show|head|diff|compact|rollback|prune`

use super::output::{self, Format};
use super::Ctx;
use anyhow::{bail, Result};
use jiandu::dataset::{self, ingest, Schema};
use jiandu::versions;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Validate a department file and store it as a new dataset version.
    ///
    /// The whole file is committed or nothing is; every bad row is reported
    /// with its file, line, field and reason.
    ///
    /// Example: `jiandu dataset ingest employers employers.csv --schema datasets/employers.toml`
    Ingest(IngestArgs),
    /// List datasets and their current versions.
    ///
    /// Example: `jiandu dataset list --format json`
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show a dataset's schema and versions.
    ///
    /// Example: `jiandu dataset show employers`
    Show {
        name: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Make an earlier version current again (by default the one before
    /// the current), on the record. The later versions stay.
    ///
    /// Example: `jiandu dataset rollback employers --to 3`
    Rollback {
        name: String,
        /// The version to make current (`jiandu dataset show` lists them).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Show stored rows of a version, in key order; personal values are
    /// masked unless --clear (which is recorded in the ledger).
    ///
    /// Example: `jiandu dataset head employers -n 5`
    Head {
        name: String,
        /// The version (default: the current one).
        #[arg(long)]
        version: Option<u64>,
        /// How many rows.
        #[arg(short = 'n', long = "rows", default_value_t = 10)]
        rows: usize,
        /// Show personal values in clear (put on the record first).
        #[arg(long)]
        clear: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// What changed between two versions, by primary key: rows added,
    /// removed and changed, and the first keys of each (personal key
    /// parts masked).
    ///
    /// Example: `jiandu dataset diff employers 3 4`
    Diff {
        name: String,
        /// The older version.
        from: u64,
        /// The newer version (default: the current one).
        to: Option<u64>,
        /// How many changed keys to name.
        #[arg(short = 'n', long = "keys", default_value_t = 10)]
        keys: usize,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Rewrite the current version's appended segments as one, as a new
    /// version with the same records, on the record. Ingest does this by
    /// itself past 16 segments.
    ///
    /// Example: `jiandu dataset compact sightings`
    Compact { name: String },
    /// Remove old versions and their files, on the record. The current
    /// version always stays; a version that a recorded run read is removed
    /// only with --force (that run can then no longer be replayed).
    ///
    /// Example: `jiandu dataset prune employers --keep 3`
    #[command(group(clap::ArgGroup::new("which").required(true).args(["version", "keep"])))]
    Prune {
        name: String,
        /// A version to remove (repeatable).
        #[arg(long)]
        version: Vec<u64>,
        /// Keep the newest N versions (and the current one), remove the rest.
        #[arg(long)]
        keep: Option<usize>,
        /// Remove versions that recorded runs read.
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args)]
pub struct IngestArgs {
    /// Dataset name.
    name: String,
    /// CSV (UTF-8, UTF-8 with BOM, GBK, UTF-16), JSON Lines or Excel (.xlsx) file.
    file: PathBuf,
    /// Schema file; required the first time, replaces the schema after.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// File format (default: from the extension).
    #[arg(long, value_enum)]
    format: Option<ingest::Format>,
    /// Text encoding of a CSV file [auto: UTF-16 told by its byte order
    /// mark or its zero bytes, UTF-8 with a BOM, valid UTF-8, else GBK]
    #[arg(long, value_enum, default_value = "auto")]
    encoding: ingest::Encoding,
    /// What separates a CSV file's fields: `,`, `;`, `|` (or `pipe`) or
    /// `tab` [default: the one of these its header line shows most often
    /// outside quotes, the comma on a tie]
    #[arg(long, value_parser = parse_delimiter, value_name = "CHAR")]
    delimiter: Option<u8>,
    /// How many bad rows to describe before only counting them.
    #[arg(long, default_value_t = ingest::DEFAULT_MAX_ERRORS)]
    max_errors: usize,
    /// Add the rows to the current version as a new segment (a daily
    /// increment) instead of replacing the dataset's content. A row whose
    /// key exists replaces the old row.
    #[arg(long)]
    append: bool,
    /// Optional fields whose column the file may lack (comma-separated):
    /// without this, a header that lacks an optional column is refused,
    /// since a misspelt header would leave the field empty in every row.
    #[arg(long, value_delimiter = ',', value_name = "FIELD")]
    allow_missing: Vec<String>,
    /// Validate the file and say what it would change, without storing it.
    #[arg(long)]
    dry_run: bool,
}

pub fn exec(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        Command::Ingest(a) => ingest_file(ctx, &store, &a)?,
        Command::List { format } => list(&store, format)?,
        Command::Show { name, format } => show(&store, &name, format)?,
        Command::Compact { name } => compact(ctx, &store, &name)?,
        Command::Head {
            name,
            version,
            rows,
            clear,
            format,
        } => head(ctx, &store, &name, version, rows, clear, format)?,
        Command::Diff {
            name,
            from,
            to,
            keys,
            format,
        } => diff(&store, &name, from, to, keys, format)?,
        Command::Rollback { name, to } => rollback(ctx, &store, &name, to)?,
        Command::Prune {
            name,
            version,
            keep,
            force,
        } => prune(ctx, &store, &name, version, keep, force)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A `--delimiter`: `,`, `;`, `|` (or `pipe`), or `tab` (or `\t`) for a
/// tab (`stream::DELIMITERS`).
fn parse_delimiter(text: &str) -> std::result::Result<u8, String> {
    let delimiter = match text {
        "tab" | "\\t" | "\t" => b'\t',
        "pipe" => b'|',
        t if t.len() == 1 => t.as_bytes()[0],
        _ => 0,
    };
    if jiandu::dataset::stream::DELIMITERS.contains(&delimiter) {
        Ok(delimiter)
    } else {
        Err(format!(
            "`{text}` is not a delimiter ingest reads: use `,`, `;`, `|` or `tab`"
        ))
    }
}

/// `dataset ingest`: registers the schema if one is given, ingests the
/// file, and prints its warnings and the new version.
fn ingest_file(ctx: &Ctx, store: &jiandu::Store, a: &IngestArgs) -> Result<()> {
    // A schema given is registered with the new version, only if the
    // ingest succeeds.
    let schema = match &a.schema {
        Some(path) => {
            let schema = Schema::load(path)?;
            if schema.name != a.name {
                bail!(
                    "schema {} is for dataset `{}`, not `{}`",
                    path.display(),
                    schema.name,
                    a.name
                );
            }
            Some(schema)
        }
        None => None,
    };
    let before = dataset::head(store, &a.name)?.and_then(|h| h.current_version().cloned());
    let unit = jiandu::policy::unit_label(store, &ctx.policy(store)?)?;
    let pb = super::spinner(format!("ingesting {}", a.file.display()));
    let report = jiandu::ingest::ingest(
        store,
        &a.name,
        &a.file,
        &ingest::Options {
            format: a.format,
            encoding: a.encoding,
            max_errors: a.max_errors,
            operator: ctx.operator.clone(),
            append: a.append,
            schema,
            allow_missing: a.allow_missing.clone(),
            dry_run: a.dry_run,
            delimiter: a.delimiter,
        },
        unit,
    );
    pb.finish_and_clear();
    let report = report?;
    for w in &report.warnings {
        errln!(
            "warning: {}:{}: field `{}`: {}",
            a.file.display(),
            w.line,
            w.field.as_deref().unwrap_or(""),
            w.reason
        );
    }
    if report.warning_count > report.warnings.len() {
        errln!(
            "warning: … and {} more",
            report.warning_count - report.warnings.len()
        );
    }
    outln!(
        "{} {} into `{}` version {} (digest {})",
        if a.dry_run {
            "would ingest"
        } else {
            "ingested"
        },
        counted(report.version.records, "record", "records"),
        report.dataset,
        report.version.version,
        report.version.digest
    );
    if let Some(l) = &report.lines {
        outln!(
            "  {}: the header, {}, {} inside quoted fields, {} blank",
            counted(l.lines, "line", "lines"),
            counted(l.records, "record", "records"),
            counted(l.continuations, "continuation line", "continuation lines"),
            l.blank
        );
    }
    if let Some(encoding) = &report.encoding {
        outln!("  read as {encoding}");
    }
    if let Some((against, change)) = &report.change {
        // The file's own rows: an appended version's last segment.
        let file_rows = report
            .version
            .segments
            .last()
            .map_or(report.version.records, |s| s.records);
        print_change(*against, change, a.append.then_some(file_rows));
    }
    if let Some(c) = &report.compacted {
        outln!(
            "  {} appended segments compacted into one: version {} (digest {})",
            report.version.segments.len(),
            c.version,
            c.digest
        );
    }
    if !report.committed {
        outln!("dry run: the file is valid; nothing was stored (run again without --dry-run to store it)");
        return Ok(());
    }
    if let (Some(old), false) = (&before, a.append) {
        // A whole file replaces the dataset's content: say what it
        // replaced, and how to get it back.
        let shrank = report.version.records * 2 < old.records;
        let line = format!(
            "{}version {} replaces version {} ({} records, now {}); `jiandu dataset rollback {}` brings version {} back, `--append` adds a file to the current version instead",
            if shrank { "warning: " } else { "" },
            report.version.version,
            old.version,
            old.records,
            report.version.records,
            report.dataset,
            old.version
        );
        if shrank {
            errln!("{line}");
        } else {
            outln!("{line}");
        }
    }
    Ok(())
}

/// `n` with the noun that goes with it: "1 record", "2 records".
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What an ingest changes against the version that was current.
/// `appended`: for an `--append`, the rows of the file, of which those
/// neither added nor changed replaced a row with the same values.
fn print_change(against: Option<u64>, d: &dataset::compare::Diff, appended: Option<u64>) {
    let Some(v) = against else {
        outln!(
            "  {} added (the dataset's first version)",
            counted(d.added, "row", "rows")
        );
        return;
    };
    if let Some(rows) = appended {
        outln!(
            "  against version {v}: +{} rows added, ~{} replaced with other values, {} replaced unchanged",
            d.added,
            d.changed,
            rows.saturating_sub(d.added + d.changed)
        );
    } else {
        outln!("  against version {v}: {}", counts(d));
    }
    print_samples(d, "    ");
}

fn counts(d: &dataset::compare::Diff) -> String {
    format!(
        "+{} added, −{} removed, ~{} changed, {} unchanged",
        d.added, d.removed, d.changed, d.unchanged
    )
}

fn print_samples(d: &dataset::compare::Diff, indent: &str) {
    for (change, key) in &d.samples {
        outln!("{indent}{} {key}", change_sign(*change));
    }
}

fn change_sign(c: dataset::compare::Change) -> &'static str {
    match c {
        dataset::compare::Change::Added => "+",
        dataset::compare::Change::Removed => "−",
        dataset::compare::Change::Changed => "~",
    }
}

/// `dataset compact`: the current version's segments rewritten as one.
fn compact(ctx: &Ctx, store: &jiandu::Store, name: &str) -> Result<()> {
    let unit = jiandu::policy::unit_label(store, &ctx.policy(store)?)?;
    let pb = super::spinner(format!("compacting {name}"));
    let done = jiandu::ingest::compact(store, name, &ctx.operator, unit);
    pb.finish_and_clear();
    match done? {
        Some(v) => outln!(
            "compacted `{name}` into version {} ({} records in one segment, digest {})",
            v.version,
            v.records,
            v.digest
        ),
        None => outln!("`{name}`'s current version is already one segment; nothing to do"),
    }
    Ok(())
}

/// A version of a dataset, or its current one.
fn reader(
    store: &jiandu::Store,
    name: &str,
    version: Option<u64>,
) -> Result<dataset::VersionReader> {
    Ok(match version {
        Some(v) => dataset::VersionReader::version(store, name, v)?,
        None => dataset::VersionReader::current(store, name)?,
    })
}

/// `dataset head`: stored rows, masked unless in clear (on the record).
fn head(
    ctx: &Ctx,
    store: &jiandu::Store,
    name: &str,
    version: Option<u64>,
    rows: usize,
    clear: bool,
    format: Format,
) -> Result<()> {
    let r = reader(store, name, version)?;
    let shown = dataset::compare::head(&r, rows, clear)?;
    if clear {
        let disclosure = jiandu::ledger::Disclosure {
            command: "dataset head".into(),
            model: None,
            status: None,
            output: None,
            dataset: Some(format!("{name}@{}", r.info().version)),
            leads: shown.rows.len() as u64,
            values: shown.clear_values,
        };
        if let Some(seq) = super::leads::record(ctx, store, &disclosure)? {
            errln!("personal data shown in clear; recorded in ledger entry {seq}");
        }
    }
    if format == Format::Json {
        return output::json(&shown);
    }
    outln!(
        "{name} version {} ({} records); the first {}:",
        r.info().version,
        r.info().records,
        shown.rows.len()
    );
    let fields: Vec<&str> = shown.fields.iter().map(String::as_str).collect();
    let table: Vec<Vec<String>> = shown
        .rows
        .iter()
        .map(|row| row.iter().map(|v| v.clone().unwrap_or_default()).collect())
        .collect();
    output::print(format, &fields, &table)?;
    Ok(())
}

/// `dataset diff`: what changed between two versions.
fn diff(
    store: &jiandu::Store,
    name: &str,
    from: u64,
    to: Option<u64>,
    keys: usize,
    format: Format,
) -> Result<()> {
    let old = reader(store, name, Some(from))?;
    let new = reader(store, name, to)?;
    let schema = new.info().schema.clone();
    let show = |k: &[u8]| dataset::compare::display_key(&schema, k, false);
    let d = dataset::compare::diff(Some(&old), &new, keys, &show)?;
    if format == Format::Json {
        return output::json(&d);
    }
    outln!(
        "{name} version {from} → {}: {}",
        new.info().version,
        counts(&d)
    );
    print_samples(&d, "  ");
    Ok(())
}

/// `dataset list`: every dataset with its current version.
fn list(store: &jiandu::Store, format: Format) -> Result<()> {
    let rows: Vec<Vec<String>> = dataset::list(store)?
        .iter()
        .map(|h| {
            let v = h.current_version();
            vec![
                h.schema.name.clone(),
                h.schema.department.clone(),
                v.map(|v| v.version.to_string())
                    .unwrap_or_else(|| "-".into()),
                v.map(|v| v.records.to_string())
                    .unwrap_or_else(|| "0".into()),
                if h.schema.has_personal() { "yes" } else { "no" }.into(),
                v.map(|v| v.digest[..16].to_string()).unwrap_or_default(),
                v.map(|v| v.created_at.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    output::print(
        format,
        &[
            "dataset",
            "department",
            "version",
            "records",
            "personal",
            "digest",
            "ingested_at",
        ],
        &rows,
    )?;
    Ok(())
}

/// `dataset show`: a dataset's schema and versions.
fn show(store: &jiandu::Store, name: &str, format: Format) -> Result<()> {
    let head = dataset::require_head(store, name)?;
    if format == Format::Json {
        output::json(&head)?;
        return Ok(());
    }
    let s = &head.schema;
    outln!("dataset {} — {}", s.name, s.department);
    if let Some(d) = &s.description {
        outln!("  {d}");
    }
    outln!("  primary key: {}", s.primary_key.join(", "));
    for (n, f) in &s.indexes {
        outln!("  index {n} on {f}");
    }
    let rows: Vec<Vec<String>> = s
        .fields
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                format!("{:?}", f.ty).to_lowercase(),
                if f.required { "yes" } else { "" }.into(),
                f.personal
                    .map(|p| format!("{p:?}").to_lowercase())
                    .unwrap_or_default(),
                f.aliases.join(" "),
            ]
        })
        .collect();
    outln!();
    output::print(
        format,
        &["field", "type", "required", "personal", "aliases"],
        &rows,
    )?;
    outln!();
    let rows: Vec<Vec<String>> = head
        .versions
        .iter()
        .map(|v| {
            vec![
                format!(
                    "{}{}",
                    v.version,
                    if head.current == Some(v.version) {
                        " *"
                    } else {
                        ""
                    }
                ),
                v.records.to_string(),
                v.warnings.to_string(),
                v.digest.clone(),
                v.created_at.clone(),
                v.operator.clone(),
                v.source.clone(),
            ]
        })
        .collect();
    output::print(
        format,
        &[
            "version",
            "records",
            "warnings",
            "digest",
            "ingested_at",
            "operator",
            "source",
        ],
        &rows,
    )?;
    Ok(())
}

/// `dataset rollback`: makes an earlier version current again.
fn rollback(ctx: &Ctx, store: &jiandu::Store, name: &str, to: Option<u64>) -> Result<()> {
    let unit = jiandu::policy::unit_label(store, &ctx.policy(store)?)?;
    let r = versions::rollback(store, name, to, unit, &ctx.operator)?;
    outln!(
        "`{name}` is at version {} again ({} records, digest {}), was {}; ledger entry {}",
        r.to.version,
        r.to.records,
        r.to.digest,
        r.from,
        r.seq
    );
    Ok(())
}

/// `dataset prune`: removes old versions.
fn prune(
    ctx: &Ctx,
    store: &jiandu::Store,
    name: &str,
    version: Vec<u64>,
    keep: Option<usize>,
    force: bool,
) -> Result<()> {
    let which = match keep {
        Some(n) => versions::Which::KeepNewest(n),
        None => versions::Which::Versions(version),
    };
    let unit = jiandu::policy::unit_label(store, &ctx.policy(store)?)?;
    let p = versions::prune(store, name, &which, force, unit, &ctx.operator)?;
    outln!(
        "pruned `{name}` version(s) {} ({} folder(s) removed{}); ledger entry {}",
        p.versions
            .iter()
            .map(|v| v.version.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        p.folders_removed,
        if p.runs_read > 0 {
            format!("; {} recorded run(s) had read them", p.runs_read)
        } else {
            String::new()
        },
        p.seq
    );
    Ok(())
}
