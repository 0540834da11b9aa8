//! Ingest: department files (CSV in UTF-8, UTF-8 with BOM or GBK; JSON
//! Lines; Excel `.xlsx`, first sheet) validated row by row against the
//! dataset's schema, committed as a new version only if every row is valid.

use super::schema::{Check, Field, FieldType, Schema};
use super::sort::{Merged, Sorter};
use super::split::Splitter;
use super::stream::{read_full, Chunker, Decoding, Utf16, Utf16Reader, UTF16_HEAD};
use super::xlsx_read::{self, Cell as XlsxValue};
use super::{NewVersion, PseudonymEntries, PseudonymRuns, SortedRows, VersionInfo};
use crate::pseudonym::Pseudonymizer;
use crate::{Error, Result, Store};
use jiandu_sdk::record::{encode_into, Value};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// How many bad rows are described in full; the rest are counted.
pub const DEFAULT_MAX_ERRORS: usize = 20;

/// File formats departments send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// CSV with a header row, UTF-8 (with or without BOM) or GBK.
    Csv,
    /// JSON Lines: one object per line, keys are field names or aliases.
    Jsonl,
    /// Excel workbook: the first sheet; the header is its first row naming a
    /// field (title rows above it are skipped); rows are named by their
    /// spreadsheet row numbers.
    Xlsx,
}

impl Format {
    /// The format a file name suggests.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" | "txt" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "xlsx" | "xlsm" => Some(Format::Xlsx),
            _ => None,
        }
    }
}

/// Text encodings of CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// UTF-16 with its byte order mark, UTF-8 with a BOM, else UTF-8 if
    /// valid, else GBK.
    Auto,
    Utf8,
    Gbk,
    /// UTF-16, little-endian (Excel's "Unicode Text" export).
    #[value(name = "utf-16le")]
    Utf16le,
    /// UTF-16, big-endian.
    #[value(name = "utf-16be")]
    Utf16be,
}

/// Ingest settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub format: Option<Format>,
    pub encoding: Encoding,
    pub max_errors: usize,
    pub operator: String,
    /// Add the file as a new segment over the current version (daily
    /// increments) instead of replacing the dataset's content.
    pub append: bool,
    /// A schema to validate the file against and register with the new
    /// version (creating the dataset, or changing its schema), only if the
    /// ingest succeeds; `None`: the dataset's registered schema.
    pub schema: Option<Schema>,
    /// Optional fields whose column this file may lack (`--allow-missing`):
    /// otherwise a header without an optional column is refused.
    pub allow_missing: Vec<String>,
    /// Validate, store and compare, then remove the version instead of
    /// making it current (`--dry-run`).
    pub dry_run: bool,
    /// What separates a CSV file's fields (`--delimiter`); `None`: the
    /// one its header shows ([`super::stream::sniff_delimiter`]).
    pub delimiter: Option<u8>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: None,
            encoding: Encoding::Auto,
            max_errors: DEFAULT_MAX_ERRORS,
            operator: crate::names::default_operator(),
            append: false,
            schema: None,
            allow_missing: Vec::new(),
            dry_run: false,
            delimiter: None,
        }
    }
}

/// A problem with one row (or the header, line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: Option<String>,
    pub reason: String,
}

/// The message of [`Error::IngestRejected`]: rows rejected and problems
/// counted apart (a row can have several), then the problems, then the
/// warnings the rows also have.
pub fn describe_rejection(
    file: &Path,
    errors: &[RowError],
    total: usize,
    rows: usize,
    warnings: &[RowError],
) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut s = if rows == 0 {
        // Only the header's problems: no row was read.
        format!(
            "{}: the header has {total} problem{}; nothing was ingested",
            file.display(),
            plural(total)
        )
    } else {
        format!(
            "{}: {rows} row{} rejected ({total} problem{}); nothing was ingested",
            file.display(),
            plural(rows),
            plural(total)
        )
    };
    let line = |s: &mut String, e: &RowError| {
        let _ = write!(s, "\n  {}:{}", file.display(), e.line);
        if let Some(f) = &e.field {
            let _ = write!(s, ": field `{f}`");
        }
        let _ = write!(s, ": {}", e.reason);
    };
    for e in errors {
        line(&mut s, e);
    }
    if total > errors.len() {
        let _ = write!(s, "\n  … and {} more", total - errors.len());
    }
    if !warnings.is_empty() {
        let _ = write!(
            s,
            "\nwarnings (the rows are kept once the file is accepted):"
        );
        for w in warnings {
            line(&mut s, w);
        }
    }
    s
}

/// What an ingest did.
#[derive(Debug, Clone)]
pub struct Report {
    pub dataset: String,
    pub version: VersionInfo,
    /// Identifier-check warnings (rows are kept).
    pub warnings: Vec<RowError>,
    pub warning_count: usize,
    /// Where every line of a CSV file went.
    pub lines: Option<LineAccount>,
    /// How a CSV file's text was decoded.
    pub encoding: Option<String>,
    /// What the version changes against the version that was current
    /// (by primary key), and which version that was.
    pub change: Option<(Option<u64>, super::compare::Diff)>,
    /// Whether the version was made current (not a dry run).
    pub committed: bool,
    /// The version that compacted the appended segments into one, when
    /// this append made them too many.
    pub compacted: Option<VersionInfo>,
}

/// Every physical line of a CSV file, accounted for: the header, one
/// line per record, the lines a record's quoted fields continue onto, and
/// blank lines. An ingest whose lines do not add up is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LineAccount {
    pub lines: u64,
    pub header: u64,
    pub records: u64,
    /// Line breaks inside quoted fields (the header's included).
    pub continuations: u64,
    pub blank: u64,
}

/// Parses, validates and stores `path` as a new version of dataset `name`,
/// not yet current: the caller makes it current with [`super::Staged::write_in`]
/// in the transaction that puts it on the record.
pub fn stage(
    store: &Store,
    name: &str,
    path: &Path,
    opts: &Options,
) -> Result<(super::Staged, Report)> {
    let registered;
    let schema = match &opts.schema {
        Some(schema) => {
            if schema.name != name {
                return Err(Error::dataset(
                    name,
                    format!("the schema given is for dataset `{}`", schema.name),
                ));
            }
            schema
        }
        None => {
            registered = super::require_head(store, name)?.schema;
            &registered
        }
    };
    let pseudonymizer = super::pseudonymizer_for(store, schema)?;
    let mut file = std::fs::File::open(path).map_err(|e| Error::file(path, e))?;
    let tmp = store.root().join("tmp");
    let read = read(schema, path, &mut file, opts, &tmp, pseudonymizer.as_ref())?;
    let staged = super::stage_version(
        store,
        name,
        read.rows,
        NewVersion {
            append: opts.append,
            schema: opts.schema.as_ref(),
            source: &path.display().to_string(),
            source_sha256: read.sha256,
            operator: &opts.operator,
            warnings: read.warning_count as u64,
        },
    )?;
    let report = Report {
        dataset: name.to_string(),
        version: staged.info.clone(),
        warnings: read.warnings,
        warning_count: read.warning_count,
        lines: read.lines,
        encoding: read.encoding,
        change: None,
        committed: false,
        compacted: None,
    };
    Ok((staged, report))
}

/// A file parsed and validated, its rows in memory ([`parse`]).
#[derive(Debug)]
pub struct Parsed {
    pub rows: SortedRows,
    pub warnings: Vec<RowError>,
    pub warning_count: usize,
    /// Where every line of a CSV file went.
    pub lines: Option<LineAccount>,
}

/// A file read and validated, its rows sorted externally ([`read`]).
pub struct Validated {
    pub rows: Rows,
    pub warnings: Vec<RowError>,
    pub warning_count: usize,
    /// Where every line of a CSV file went.
    pub lines: Option<LineAccount>,
    /// How the text was decoded (CSV).
    pub encoding: Option<String>,
    /// The sha256 of the file's bytes.
    pub sha256: String,
}

/// Collects row problems up to the limit.
struct Problems {
    max: usize,
    errors: Vec<RowError>,
    total: usize,
    /// Rows with at least one problem (a row's problems come together),
    /// and the line of the last.
    rows: usize,
    last_line: Option<u64>,
    warnings: Vec<RowError>,
    warning_count: usize,
    /// The warnings said once a file (a JSON key no field is named by, a
    /// column without a name holding values), by field and reason, shown
    /// or not: each part of a file read apart says them again.
    once: Vec<(Option<String>, String)>,
}

/// Whether a warning is said once a file.
fn once_a_file(reason: &str) -> bool {
    reason.starts_with(ONCE_A_FILE) || reason.starts_with(NAMELESS)
}

impl Problems {
    fn new(max: usize) -> Self {
        Problems {
            max,
            errors: Vec::new(),
            total: 0,
            rows: 0,
            last_line: None,
            warnings: Vec::new(),
            warning_count: 0,
            once: Vec::new(),
        }
    }

    /// Adds the problems of rows that follow, numbered from their own part
    /// of the file: `line_offset` lines precede it.
    fn append(&mut self, other: Problems, line_offset: u64) {
        let shift = |mut e: RowError| {
            e.line += line_offset;
            e
        };
        let room = self.max - self.errors.len();
        self.errors
            .extend(other.errors.into_iter().take(room).map(shift));
        self.total += other.total;
        self.rows += other.rows;
        self.warning_count += other.warning_count;
        // A warning said once a file that an earlier part said already is
        // neither counted again nor shown.
        for said in &other.once {
            if self.once.contains(said) {
                self.warning_count -= 1;
            }
        }
        for w in other.warnings {
            let repeated =
                once_a_file(&w.reason) && self.once.contains(&(w.field.clone(), w.reason.clone()));
            if !repeated && self.warnings.len() < self.max {
                self.warnings.push(shift(w));
            }
        }
        for said in other.once {
            if !self.once.contains(&said) {
                self.once.push(said);
            }
        }
    }

    fn error(&mut self, line: u64, field: Option<&str>, reason: String) {
        if self.last_line != Some(line) {
            self.rows += 1;
            self.last_line = Some(line);
        }
        self.header_error(line, field, reason);
    }

    /// A problem of the header, which is not a row: counted among the
    /// problems, not the rows rejected.
    fn header_error(&mut self, line: u64, field: Option<&str>, reason: String) {
        self.total += 1;
        if self.errors.len() < self.max {
            self.errors.push(RowError {
                line,
                field: field.map(str::to_string),
                reason,
            });
        }
    }

    fn warn(&mut self, line: u64, field: &str, reason: String) {
        if once_a_file(&reason) {
            let said = (Some(field.to_string()), reason.clone());
            if self.once.contains(&said) {
                return;
            }
            self.once.push(said);
        }
        self.warning_count += 1;
        if self.warnings.len() < self.max {
            self.warnings.push(RowError {
                line,
                field: Some(field.to_string()),
                reason,
            });
        }
    }
}

/// Parses and validates a whole file held in memory, its rows read back
/// into memory in key order; any bad row (a repeated key included)
/// rejects the file. Ingest itself streams ([`read`]).
pub fn parse(schema: &Schema, path: &Path, bytes: &[u8], opts: &Options) -> Result<Parsed> {
    let mut input = bytes;
    let read = read(schema, path, &mut input, opts, &std::env::temp_dir(), None)?;
    Ok(Parsed {
        rows: read.rows.collect(schema)?,
        warnings: read.warnings,
        warning_count: read.warning_count,
        lines: read.lines,
    })
}

/// Reads and validates a whole file from `input`, a chunk at a time, its
/// rows sorted externally (runs spilled under `tmp`); any bad row rejects
/// the file, except a repeated key, which writing the rows finds. With a
/// pseudonymizer, the entries of the pseudonym runs are gathered from the
/// rows too ([`super::PseudonymEntries`]), as they are read.
pub fn read(
    schema: &Schema,
    path: &Path,
    input: &mut dyn std::io::Read,
    opts: &Options,
    tmp: &Path,
    pseudonymizer: Option<&Pseudonymizer>,
) -> Result<Validated> {
    let format = opts
        .format
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| Error::file(path, "unknown file type; use --format csv|jsonl|xlsx"))?;
    let mut problems = Problems::new(opts.max_errors);
    let mut builder = RowBuilder::new(schema, tmp, true, pseudonymizer);
    let (mut lines, mut encoding) = (None, None);
    let sha256 = match format {
        Format::Csv | Format::Jsonl => {
            // UTF-16 is told by its first bytes ([`Utf16::of`]), then read
            // through a reader that hands out UTF-8.
            let mut head = [0u8; UTF16_HEAD];
            let got = read_full(input, &mut head).map_err(|e| Error::file(path, e))?;
            let mut whole = (&head[..got]).chain(input);
            let mut text = |input: &mut dyn std::io::Read, encoding: Encoding| {
                read_text(
                    path,
                    format,
                    opts,
                    input,
                    encoding,
                    &mut builder,
                    &mut problems,
                )
            };
            match Utf16::of(opts.encoding, &head[..got]) {
                Some(order) => {
                    let mut utf16 = Utf16Reader::new(whole, order);
                    let read = text(&mut utf16, Encoding::Utf8)?;
                    lines = read.lines;
                    encoding = Some(format!(
                        "{}{}",
                        utf16.describe(opts.encoding == Encoding::Auto),
                        read.delimiter.unwrap_or_default()
                    ));
                    utf16.sha256()
                }
                None => {
                    let read = text(&mut whole, opts.encoding)?;
                    lines = read.lines;
                    encoding = read
                        .delimiter
                        .map(|d| format!("{}{d}", read.decoding.describe()));
                    read.sha256
                }
            }
        }
        Format::Xlsx => {
            // A workbook is a zip, read out of order: it waits in an
            // unlinked file under the store's `tmp/`, not in memory.
            let (spooled, sha256) = spool(input, path, tmp)?;
            read_xlsx(
                schema,
                path,
                spooled,
                tmp,
                &opts.allow_missing,
                &mut builder,
                &mut problems,
            )?;
            sha256
        }
    };
    if problems.total > 0 {
        return Err(Error::IngestRejected {
            file: path.to_path_buf(),
            errors: problems.errors,
            total: problems.total,
            rows: problems.rows,
            warnings: problems.warnings,
        });
    }
    Ok(Validated {
        rows: builder.finish(path, opts.max_errors)?,
        warnings: problems.warnings,
        warning_count: problems.warning_count,
        lines,
        encoding,
        sha256,
    })
}

/// What reading a CSV or JSON Lines file's text found besides its rows.
struct TextRead {
    /// The line account (a CSV file without problems).
    lines: Option<LineAccount>,
    /// How the text was decoded.
    decoding: Decoding,
    /// What separates a CSV file's fields, as the report says it after
    /// the encoding (empty for the comma); `None` for JSON Lines.
    delimiter: Option<String>,
    /// The sha256 of the bytes read from `input`.
    sha256: String,
}

/// Reads a CSV or JSON Lines file's text from `input` as `encoding`.
fn read_text(
    path: &Path,
    format: Format,
    opts: &Options,
    input: &mut dyn std::io::Read,
    encoding: Encoding,
    builder: &mut RowBuilder,
    problems: &mut Problems,
) -> Result<TextRead> {
    if format != Format::Csv {
        let mut chunker = Chunker::new(input, path, false);
        read_jsonl(path, &mut chunker, builder, problems)?;
        return Ok(TextRead {
            lines: None,
            decoding: Decoding::new(Encoding::Utf8),
            delimiter: None,
            sha256: chunker.sha256(),
        });
    }
    let mut chunker = Chunker::csv(input, path, opts.delimiter, encoding);
    let mut decoding = Decoding::new(encoding);
    let (records, spaces) = read_csv(
        path,
        &opts.allow_missing,
        &mut chunker,
        &mut decoding,
        builder,
        problems,
    )?;
    let delimiter = match (chunker.delimiter(), opts.delimiter) {
        (b',', _) => String::new(),
        (d, None) => format!(", {} (detected)", describe_delimiter(d)),
        (d, Some(_)) => format!(", {}", describe_delimiter(d)),
    };
    let lines = if problems.total == 0 {
        Some(
            chunker
                .scanner()
                .account(records, spaces)
                .map_err(|why| Error::file(path, why))?,
        )
    } else {
        None
    };
    Ok(TextRead {
        lines,
        decoding,
        delimiter: Some(delimiter),
        sha256: chunker.sha256(),
    })
}

/// Decodes CSV text held whole: BOM → UTF-8; valid UTF-8 → UTF-8;
/// mostly UTF-8 → refused (damaged UTF-8, named by line); otherwise GBK.
pub fn decode_text<'a>(path: &Path, bytes: &'a [u8], encoding: Encoding) -> Result<Cow<'a, str>> {
    Decoding::new(encoding).decode(path, bytes, true, 0)
}

/// Reads a CSV file chunk by chunk: the header and the first chunk on
/// this thread, then as many chunks at a time as there are cores, each
/// by a thread of its own, their rows appended in file order. Returns the
/// records read (for the line account).
fn read_csv(
    path: &Path,
    allow_missing: &[String],
    chunker: &mut Chunker,
    decoding: &mut Decoding,
    builder: &mut RowBuilder,
    problems: &mut Problems,
) -> Result<(u64, u64)> {
    let schema = builder.schema;
    let first = chunker.next_chunk()?.expect("a file has a first chunk");
    let open_quote = |c: &Chunker, last: bool| if last { c.scanner().open_quote() } else { None };
    let text = decoding.decode(path, &first.bytes, true, 0)?;
    let delimiter = chunker.delimiter();
    let mut reader = csv_reader(&text, delimiter);
    let headers = reader
        .headers()
        .map_err(|e| Error::file(path, format!("cannot read the header row: {e}")))?
        .clone();
    if headers.iter().all(|h| h.trim().is_empty()) {
        let what = if first.last && text.trim().is_empty() {
            "the file is empty"
        } else {
            "the file's first line names no column"
        };
        return Err(Error::file(
            path,
            format!(
                "{what}: a CSV file needs a header line naming its columns; nothing was ingested"
            ),
        ));
    }
    let part = Part {
        text: &text,
        delimiter,
        lines_before: 0,
        open_quote: open_quote(chunker, first.last),
        total_lines: chunker.scanner().lines_seen(),
    };
    if let Some(opened) = part.open_quote {
        if reader.position().byte() as usize >= text.len() {
            // The header itself runs to the end in an open quote.
            never_closed(problems, opened, part.total_lines);
            return Ok((0, 0));
        }
    }
    let columns = map_header(schema, headers.iter(), 1, allow_missing, problems);
    if problems.total > 0 {
        return Ok((0, 0));
    }
    let width = headers.len();
    let columns = Columns {
        fields: columns,
        nameless: (0..width)
            .filter(|&c| headers[c].trim().is_empty())
            .collect(),
    };
    let after_header = reader.position().byte() as usize;
    let reached = read_rows(&part, after_header, width, &columns, builder, problems);
    let mut records = reached.records;
    let mut spaces = reached.spaces;
    drop(reader);
    drop(text);
    if !reached.complete {
        return Ok((records, spaces));
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut last = first.last;
    // While one group of chunks is parsed (a thread per chunk), this thread
    // reads, hashes, scans and decodes the next.
    let read_group = || -> Result<Vec<Text>> {
        let mut group = Vec::with_capacity(threads);
        while group.len() < threads && !last {
            let chunk = chunker.next_chunk()?.expect("chunks until the last");
            last = chunk.last;
            let quote = open_quote(chunker, chunk.last);
            let lines_before = chunk.lines_before;
            group.push(Text {
                text: decoding.decode_owned(path, chunk.bytes, false, lines_before)?,
                lines_before,
                open_quote: quote,
                total_lines: chunker.scanner().lines_seen(),
            });
        }
        Ok(group)
    };
    let parse = |t: &Text, local: &mut RowBuilder, local_problems: &mut Problems| {
        let part = Part {
            text: &t.text,
            delimiter,
            lines_before: t.lines_before,
            open_quote: t.open_quote,
            total_lines: t.total_lines,
        };
        read_rows(&part, 0, width, &columns, local, local_problems)
    };
    // Past a quote that never closes the file is not read, as when one
    // reader reads it all.
    let go_on = |part: Reached| {
        records += part.records;
        spaces += part.spaces;
        part.complete
    };
    parse_in_groups(path, builder, problems, read_group, parse, go_on)?;
    Ok((records, spaces))
}

/// Reads the parts of a file after its first, a group at a time: a group
/// is parsed on threads, a thread per part, while this thread adds the
/// group before to `builder` and `problems` (in file order; sorting and
/// spilling happen there) and reads the group after. `go_on` sees each
/// part's result before its rows are added; `false`: the parts after it
/// are left out (a group parsed meanwhile is dropped) and nothing more is
/// read.
fn parse_in_groups<'s, T: Sync, R: Send>(
    path: &Path,
    builder: &mut RowBuilder<'s>,
    problems: &mut Problems,
    mut read_group: impl FnMut() -> Result<Vec<T>>,
    parse: impl Fn(&T, &mut RowBuilder<'s>, &mut Problems) -> R + Sync,
    mut go_on: impl FnMut(R) -> bool,
) -> Result<()> {
    let (schema, tmp, max, pseudonymizer) = (
        builder.schema,
        builder.records.dir().to_path_buf(),
        problems.max,
        builder.pseudonymizer,
    );
    // Builders emptied by `absorb`, their room kept: growing new ones for
    // every chunk cost copies and page faults.
    let mut spare: Vec<RowBuilder<'s>> = Vec::new();
    // The group parsed last, not yet added.
    let mut parsed = Vec::new();
    let mut group = read_group()?;
    while !group.is_empty() {
        let locals = (0..group.len())
            .map(|_| {
                spare
                    .pop()
                    .unwrap_or_else(|| RowBuilder::new(schema, &tmp, false, pseudonymizer))
            })
            .collect();
        let before = std::mem::take(&mut parsed);
        let (results, next) = parse_on_threads(&group, locals, max, &parse, || {
            if !absorb_all(path, builder, problems, &mut spare, before, &mut go_on)? {
                return Ok(None);
            }
            read_group().map(Some)
        });
        match next? {
            Some(next) => group = next,
            None => return Ok(()),
        }
        parsed = results;
    }
    absorb_all(path, builder, problems, &mut spare, parsed, &mut go_on)?;
    Ok(())
}

/// [`absorb`]s parts in order while `go_on` says so, keeping their emptied
/// builders in `spare`; whether to go on after them.
fn absorb_all<'s, R>(
    path: &Path,
    builder: &mut RowBuilder<'s>,
    problems: &mut Problems,
    spare: &mut Vec<RowBuilder<'s>>,
    parsed: Vec<(R, RowBuilder<'s>, Problems)>,
    go_on: &mut impl FnMut(R) -> bool,
) -> Result<bool> {
    for (said, mut local, local_problems) in parsed {
        let more = go_on(said);
        absorb(path, builder, problems, &mut local, local_problems)?;
        spare.push(local);
        if !more {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Parses each of `group` on a thread of its own into the builder of
/// `locals` at its place and problems of its own, while this thread runs
/// `next`; the results in the order of `group`.
fn parse_on_threads<'s, T: Sync, R: Send, N>(
    group: &[T],
    locals: Vec<RowBuilder<'s>>,
    max_errors: usize,
    parse: &(impl Fn(&T, &mut RowBuilder<'s>, &mut Problems) -> R + Sync),
    next: impl FnOnce() -> N,
) -> (Vec<(R, RowBuilder<'s>, Problems)>, N) {
    std::thread::scope(|scope| {
        let jobs: Vec<_> = group
            .iter()
            .zip(locals)
            .map(|(item, mut local)| {
                scope.spawn(move || {
                    let mut local_problems = Problems::new(max_errors);
                    let said = parse(item, &mut local, &mut local_problems);
                    // Sorted here, side by side, the parts' entries are
                    // merged when the file's sorts spill.
                    local.sort_pieces();
                    (said, local, local_problems)
                })
            })
            .collect();
        let next = next();
        let results = jobs
            .into_iter()
            .map(|j| j.join().expect("reading rows does not panic"))
            .collect();
        (results, next)
    })
}

/// Adds a part's rows and problems (which follow) to the file's, leaving
/// `local` empty.
fn absorb(
    path: &Path,
    builder: &mut RowBuilder,
    problems: &mut Problems,
    local: &mut RowBuilder,
    local_problems: Problems,
) -> Result<()> {
    builder
        .append(local, 0)
        .map_err(|e| Error::file(path, format!("cannot sort the rows: {e}")))?;
    problems.append(local_problems, 0);
    Ok(())
}

/// A chunk of a CSV file, decoded, waiting for its reader.
struct Text {
    text: String,
    lines_before: u64,
    open_quote: Option<u64>,
    total_lines: u64,
}

/// The reader of a CSV file's header row.
fn csv_reader(text: &str, delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes())
}

/// A delimiter as a person reads it.
pub fn describe_delimiter(delimiter: u8) -> String {
    match delimiter {
        b',' => "comma-separated".into(),
        b'\t' => "tab-separated".into(),
        b';' => "semicolon-separated".into(),
        d => format!("separated by `{}`", d.escape_ascii()),
    }
}

/// One chunk of a CSV file as its reader sees it.
struct Part<'t> {
    text: &'t str,
    /// What separates its fields.
    delimiter: u8,
    /// Line ends before it in the file.
    lines_before: u64,
    /// For the last chunk: the line an unclosed quote opened on.
    open_quote: Option<u64>,
    /// Line ends in the file so far.
    total_lines: u64,
}

/// Where a CSV file's columns go: per schema field the file's column
/// holding it, and the file's columns without a name in the header.
struct Columns {
    fields: Vec<Option<usize>>,
    nameless: Vec<usize>,
}

/// How far a reader got: the records it read, and whether it reached the
/// end of its text rather than a quote that never closes.
struct Reached {
    records: u64,
    /// Lines of nothing but spaces (or tabs): blank lines, not records.
    spaces: u64,
    complete: bool,
}

/// Line numbers of records in a text, counted as the scanner counts them
/// (`\r\n`, `\n` or a lone `\r` ends a line): the csv reader's own line
/// count knows only `\n`, and it reports a record as starting on the line
/// end before it (BurntSushi/rust-csv#395).
struct LineCounter {
    /// Bytes counted, and line ends among them.
    pos: usize,
    ends: u64,
}

impl LineCounter {
    fn new() -> LineCounter {
        LineCounter { pos: 0, ends: 0 }
    }

    /// The line (from 1, within `text`) of the record the reader places at
    /// byte `at`: line ends before its first character are counted.
    fn line_of(&mut self, text: &[u8], at: usize) -> u64 {
        let mut start = at.max(self.pos);
        while start < text.len() && matches!(text[start], b'\r' | b'\n') {
            start += 1;
        }
        let mut i = self.pos;
        while let Some(found) = memchr::memchr2(b'\r', b'\n', &text[i..start]) {
            let at = i + found;
            // The `\n` of a `\r\n` ends no line of its own.
            if !(text[at] == b'\n' && at > 0 && text[at - 1] == b'\r') {
                self.ends += 1;
            }
            i = at + 1;
        }
        self.pos = start;
        self.ends + 1
    }
}

/// A quote that opened on line `opened` and never closes.
fn never_closed(problems: &mut Problems, opened: u64, total_lines: u64) {
    let swallowed = total_lines.saturating_sub(opened);
    problems.error(
        opened,
        None,
        format!(
            "a quote opens here and is never closed: the {swallowed} line(s) after it would be read as part of one field; close the quote (a quote inside a quoted field is written \"\")"
        ),
    );
}

/// Reads the records of `part` from byte `from` on, `width` cells each,
/// into `builder`, lines numbered in the whole file.
fn read_rows(
    part: &Part,
    from: usize,
    width: usize,
    columns: &Columns,
    builder: &mut RowBuilder,
    problems: &mut Problems,
) -> Reached {
    let mut nameless_warned = false;
    let nameless = columns.nameless.as_slice();
    let columns = columns.fields.as_slice();
    let mut splitter = Splitter::new(part.text, from, part.delimiter);
    let mut record = Vec::new();
    let mut room: Vec<Option<&str>> = Vec::new();
    let mut records = 0;
    let mut spaces = 0;
    let mut lines = LineCounter::new();
    while let Some(start) = splitter.next_record(&mut record) {
        if let Some(opened) = part.open_quote {
            if splitter.position() >= part.text.len() {
                // The last record runs to the end of the file inside a
                // quote that never closes: refused where the quote opens.
                never_closed(problems, opened, part.total_lines);
                return Reached {
                    records,
                    spaces,
                    complete: false,
                };
            }
        }
        // A line of spaces is a blank line that is not empty, not a record
        // of one field (which a quote would make it).
        if record.len() == 1
            && width > 1
            && is_spaces(&part.text.as_bytes()[start..splitter.position()])
        {
            spaces += 1;
            continue;
        }
        records += 1;
        let line = part.lines_before + lines.line_of(part.text.as_bytes(), start);
        if let Some((column, label)) = totals_label(record.iter().map(|f| &**f)) {
            problems.error(line, None, totals_row(column, label));
            continue;
        }
        if record.len() != width {
            problems.error(
                line,
                None,
                format!("has {} columns, the header has {width}", record.len()),
            );
            continue;
        }
        if let Some((column, after)) = splitter.text_after_quote() {
            // A column read as a personal field is quoted masked.
            let personal = columns
                .iter()
                .position(|&c| c == Some(column))
                .and_then(|f| builder.schema.fields[f].personal);
            text_after_quote(problems, line, column, &record[column], after, personal);
            continue;
        }
        if !nameless.is_empty() && !nameless_warned {
            if let Some(&c) = nameless.iter().find(|&&c| !record[c].trim().is_empty()) {
                // Not quoted: it may be personal.
                nameless_warned = true;
                problems.warn(
                    line,
                    &format!("column {}", c + 1),
                    format!("{NAMELESS} (one on this line): the column is ignored, as a column the schema does not know is; name it in the header, or take it out of the file"),
                );
            }
        }
        let mut cells: Vec<Option<&str>> = reuse(room);
        cells.extend(columns.iter().map(|c| c.map(|c| &*record[c])));
        builder.add(line, &cells, problems);
        room = reuse(cells);
    }
    Reached {
        records,
        spaces,
        complete: true,
    }
}

/// Whether a line's bytes (its line end included) are spaces and tabs
/// only, or the end-of-file mark (0x1A, Ctrl-Z) that DOS-era systems
/// write after a file's last line.
fn is_spaces(line: &[u8]) -> bool {
    line.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x1A))
}

/// The error of a record whose field in `column` (read as `field`) has
/// `after` after its closing quote.
fn text_after_quote(
    problems: &mut Problems,
    line: u64,
    column: usize,
    field: &str,
    after: &str,
    personal: Option<crate::mask::PersonalKind>,
) {
    if let Some(kind) = personal {
        // A personal value is shown masked whole (its two parts masked
        // apart would show more of it than its mask does).
        let masked = crate::mask::mask(kind, field);
        problems.error(
            line,
            None,
            format!(
                "column {}: text after the closing quote of a quoted field (`{}`, personal, masked): a quote inside a field is written `\"\"` inside a quoted field",
                column + 1,
                crate::text::shorten(&masked, 40),
            ),
        );
        return;
    }
    let quoted = crate::text::shorten(&field[..field.len() - after.len()].replace('"', "\"\""), 40);
    problems.error(
        line,
        None,
        format!(
            "column {}: text `{}` after the closing quote of `\"{quoted}\"`: a quote inside a field is written `\"\"` inside a quoted field (`\"\"\"{quoted}\"\"{}\"`)",
            column + 1,
            crate::text::shorten(after, 40),
            crate::text::shorten(&after.replace('"', "\"\""), 40),
        ),
    );
}

/// The field a header cell names: by its name or an alias as written,
/// else without regard to the case of Latin letters (`ID`,
/// `Credit_Code`), the same column as a reader takes it.
fn field_named(schema: &Schema, header: &str) -> Option<usize> {
    let named = |same: &dyn Fn(&str) -> bool| {
        schema
            .fields
            .iter()
            .position(|f| same(&f.name) || f.aliases.iter().any(|a| same(a)))
    };
    named(&|n| n == header).or_else(|| named(&|n| n.eq_ignore_ascii_case(header)))
}

/// Column position of each schema field, from a header row (found on
/// `line`) of field names or aliases.
fn map_header<'h>(
    schema: &Schema,
    headers: impl Iterator<Item = &'h str>,
    line: u64,
    allow_missing: &[String],
    problems: &mut Problems,
) -> Vec<Option<usize>> {
    let mut columns: Vec<Option<usize>> = vec![None; schema.fields.len()];
    let mut found = Vec::new();
    for (col, header) in headers.enumerate() {
        let header = header.trim();
        found.push(format!("`{header}`"));
        if header.is_empty() {
            continue;
        }
        match field_named(schema, header) {
            Some(i) if columns[i].is_some() => {
                problems.header_error(
                    line,
                    Some(header),
                    "column appears twice in the header".into(),
                );
            }
            Some(i) => columns[i] = Some(col),
            None => problems.warn(
                line,
                header,
                format!(
                    "column is not in the schema and is ignored (the schema's columns: {})",
                    schema
                        .fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    for (i, f) in schema.fields.iter().enumerate() {
        if columns[i].is_some() {
            continue;
        }
        let names = std::iter::once(&f.name)
            .chain(&f.aliases)
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if f.required {
            problems.header_error(
                line,
                Some(&f.name),
                format!(
                    "required column is missing from the header (found: {}; accepted names: {names})",
                    found.join(", ")
                ),
            );
        } else if f.may_be_absent || allow_missing.contains(&f.name) {
            problems.warn(
                line,
                &f.name,
                format!(
                    "optional column is missing from the header, as allowed: the field is empty in every record (accepted names: {names})"
                ),
            );
        } else {
            problems.header_error(
                line,
                Some(&f.name),
                format!(
                    "optional column is missing from the header (found: {}; accepted names: {names}): a misspelt header would leave the field empty in every record; name the column in the file, or ingest without it on purpose with --allow-missing {} (or `may_be_absent = true` in the schema)",
                    found.join(", "),
                    f.name
                ),
            );
        }
    }
    columns
}

/// The most an Excel workbook may hold once uncompressed, all its parts
/// together: a department export of tens of millions of cells is far
/// below it; a file that claims more is a zip bomb, refused before any of
/// it is inflated.
pub const MAX_XLSX_UNCOMPRESSED: u64 = 1 << 30;

/// Copies `input` to a file under `tmp` that is unlinked at once (it lives
/// as long as the handle), hashing it on the way: the file and its sha256.
fn spool(
    input: &mut dyn std::io::Read,
    path: &Path,
    tmp: &Path,
) -> Result<(std::fs::File, String)> {
    use std::io::{Seek, Write};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    std::fs::create_dir_all(tmp).map_err(|e| Error::file(tmp, e))?;
    let at = tmp.join(format!(
        "workbook-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&at)
        .map_err(|e| Error::file(&at, e))?;
    std::fs::remove_file(&at).map_err(|e| Error::file(&at, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = input.read(&mut buf).map_err(|e| Error::file(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| Error::file(&at, e))?;
    }
    file.rewind().map_err(|e| Error::file(&at, e))?;
    Ok((file, hex::encode(hasher.finalize())))
}

/// Refuses a workbook whose parts, as its zip directory declares them,
/// add up to more than [`MAX_XLSX_UNCOMPRESSED`].
fn check_xlsx_size(path: &Path, file: &std::fs::File) -> Result<()> {
    let unreadable = |e: zip::result::ZipError| {
        Error::file(path, format!("is not a readable .xlsx workbook: {e}"))
    };
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(unreadable)?;
    let mut total = 0u64;
    for i in 0..archive.len() {
        let part = archive.by_index_raw(i).map_err(unreadable)?;
        total = total.saturating_add(part.size());
    }
    if total > MAX_XLSX_UNCOMPRESSED {
        return Err(Error::file(
            path,
            format!(
                "would take {} MiB once uncompressed ({} MiB on disk), more than the limit of {} MiB for a workbook: split the export, or save it as CSV",
                total >> 20,
                file.metadata().map(|m| m.len()).unwrap_or(0) >> 20,
                MAX_XLSX_UNCOMPRESSED >> 20
            ),
        ));
    }
    Ok(())
}

/// Title rows an Excel export may have above its header row.
const XLSX_TITLE_ROWS: usize = 5;

/// Reads the first visible sheet of an Excel workbook, a row at a time as
/// its XML is inflated ([`xlsx_read`]: memory follows one row, not the
/// sheet, and the shared strings spill under `tmp`): its first row that
/// names a field (after at most [`XLSX_TITLE_ROWS`] title rows) is the
/// header; rows are named by their spreadsheet row numbers.
fn read_xlsx(
    schema: &Schema,
    path: &Path,
    file: std::fs::File,
    tmp: &Path,
    allow_missing: &[String],
    builder: &mut RowBuilder,
    problems: &mut Problems,
) -> Result<()> {
    check_xlsx_size(path, &file)?;
    let refused = |e: xlsx_read::ReadError| Error::file(path, e);
    let mut book =
        xlsx_read::Workbook::open(std::io::BufReader::new(file), tmp).map_err(refused)?;
    let mut cells = book.sheet().map_err(refused)?;
    let mut sheet_rows = XlsxRows {
        pending: None,
        row: Vec::new(),
        done: false,
    };
    let mut next_row = |cells: &mut xlsx_read::Sheet<'_, _>, row: &mut Vec<XlsxValue>| {
        sheet_rows.next(cells, row).map_err(refused)
    };
    // Exports often put a title above the header: the header is the first
    // of the top rows that names a field, else the first row.
    let known = |cell: &XlsxValue| field_named(schema, cell.to_string().trim()).is_some();
    let mut top: Vec<(u64, Vec<XlsxValue>)> = Vec::new();
    let mut row = Vec::new();
    while top.len() <= XLSX_TITLE_ROWS {
        let Some(line) = next_row(&mut cells, &mut row)? else {
            break;
        };
        let names_a_field = row.iter().any(known);
        top.push((line, std::mem::take(&mut row)));
        if names_a_field {
            break;
        }
    }
    if top.is_empty() {
        return Err(Error::file(path, "the first sheet is empty"));
    }
    let header_at = top
        .iter()
        .position(|(_, r)| r.iter().any(known))
        .unwrap_or(0);
    let mut rest = top.split_off(header_at + 1);
    let (header_line, header) = top.pop().expect("the header row");
    let header: Vec<String> = header.iter().map(|c| c.to_string()).collect();
    let columns = map_header(
        schema,
        header.iter().map(String::as_str),
        header_line,
        allow_missing,
        problems,
    );
    if problems.total > 0 {
        return Ok(());
    }
    let mut texts: Vec<Option<String>> = Vec::with_capacity(columns.len());
    let mut add = |line: u64, row: &[XlsxValue]| {
        if row.iter().all(|c| matches!(c, XlsxValue::Empty)) {
            return;
        }
        let texts_of_row = row.iter().map(|c| match c {
            XlsxValue::Text(s) => s.as_str(),
            XlsxValue::Empty => "",
            _ => "0",
        });
        if let Some((column, label)) = totals_label(texts_of_row) {
            problems.error(line, None, totals_row(column, label));
            return;
        }
        texts.clear();
        let mut bad = false;
        for (field, col) in schema.fields.iter().zip(&columns) {
            let cell = col.and_then(|c| row.get(c)).unwrap_or(&XlsxValue::Empty);
            let read = match (field.ty, cell) {
                (FieldType::String, XlsxValue::Number(f)) => number_as_text(*f).map(Some),
                _ => xlsx_cell_text(cell),
            };
            texts.push(match read {
                Ok(t) => t,
                Err(reason) => {
                    // The cell as the message may quote it, masked when
                    // the field is personal.
                    let reason = match cell {
                        XlsxValue::Number(f) => {
                            let whole = shown_masked(field, &format!("{f:.0}"), reason);
                            shown_masked(field, &f.to_string(), whole)
                        }
                        XlsxValue::Text(t) | XlsxValue::IsoDate(t) => {
                            shown_masked(field, t, reason)
                        }
                        _ => reason,
                    };
                    problems.error(line, Some(&field.name), reason);
                    bad = true;
                    None
                }
            });
        }
        if !bad {
            let cells: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
            builder.add(line, &cells, problems);
        }
    };
    // Rows read while looking for the header come first.
    for (line, row) in rest.drain(..) {
        add(line, &row);
    }
    while let Some(line) = next_row(&mut cells, &mut row)? {
        add(line, &row);
    }
    // A merged cell keeps its value in its first cell only: the other
    // rows of a region merged below the header would read as empty. The
    // regions follow the sheet's data, read as they come.
    while let Some(region) = cells.next_merge().map_err(|e| {
        Error::file(
            path,
            format!("cannot read the first sheet's merged cells: {e}"),
        )
    })? {
        let (first, last) = (u64::from(region.first.0) + 1, u64::from(region.last.0) + 1);
        let read = |c: &Option<usize>| {
            c.is_some_and(|c| (region.first.1..=region.last.1).contains(&(c as u32)))
        };
        if last > header_line && columns.iter().any(read) {
            problems.error(first.max(header_line + 1), None, merged_cells(&region));
        }
    }
    Ok(())
}

/// The error of a region of merged cells among a sheet's rows.
#[cold]
fn merged_cells(region: &xlsx_read::Merged) -> String {
    format!(
        "cells {}:{} are merged: a merged cell keeps its value in its first cell only, so the other cells of the region would be read as empty; unmerge them and fill in every cell (取消合并单元格并逐格填写)",
        xlsx_read::cell_name(region.first),
        xlsx_read::cell_name(region.last)
    )
}

/// The rows of a sheet from its cells (which come row by row, left to
/// right, empty cells and rows left out), each as one cell per column.
struct XlsxRows {
    /// The first cell of the next row, read with the row before.
    pending: Option<(u32, u32, XlsxValue)>,
    row: Vec<XlsxValue>,
    /// The sheet's cells are all read (the reader must not be asked again).
    done: bool,
}

impl XlsxRows {
    /// Fills `out` with the next row that has a cell; its spreadsheet row
    /// number (from 1), or `None` at the end.
    fn next<R: std::io::Read + std::io::Seek>(
        &mut self,
        cells: &mut xlsx_read::Sheet<'_, R>,
        out: &mut Vec<XlsxValue>,
    ) -> std::result::Result<Option<u64>, xlsx_read::ReadError> {
        self.row.clear();
        let mut at_row = None;
        let place = |row: &mut Vec<XlsxValue>, col: u32, value: XlsxValue| {
            let col = col as usize;
            if row.len() <= col {
                row.resize(col + 1, XlsxValue::Empty);
            }
            row[col] = value;
        };
        if let Some((r, c, v)) = self.pending.take() {
            at_row = Some(r);
            place(&mut self.row, c, v);
        }
        while !self.done {
            let Some(((r, c), value)) = cells.next_cell()? else {
                self.done = true;
                break;
            };
            match at_row {
                None => at_row = Some(r),
                Some(current) if current != r => {
                    self.pending = Some((r, c, value));
                    break;
                }
                Some(_) => {}
            }
            place(&mut self.row, c, value);
        }
        std::mem::swap(out, &mut self.row);
        Ok(at_row.map(|r| u64::from(r) + 1))
    }
}

/// The text of a spreadsheet cell as the schema's parsers expect it: whole
/// numbers without `.0`, dates as `YYYY-MM-DD`, date-times as
/// `YYYY-MM-DD HH:MM:SS`.
fn xlsx_cell_text(cell: &XlsxValue) -> std::result::Result<Option<String>, String> {
    Ok(match cell {
        XlsxValue::Empty => None,
        XlsxValue::Text(s) | XlsxValue::IsoDate(s) => Some(s.clone()),
        XlsxValue::Number(f) if !f.is_finite() => return Err(format!("`{f}` is not a number")),
        XlsxValue::Number(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
            Some(format!("{}", *f as i64))
        }
        XlsxValue::Number(f) if f.abs() < 1e15 => Some(shown_number(*f)),
        XlsxValue::Number(f) | XlsxValue::Duration(f) => Some(f.to_string()),
        XlsxValue::Bool(b) => Some(b.to_string()),
        XlsxValue::Date { serial, date1904 } => Some(xlsx_read::date_text(*serial, *date1904)),
        XlsxValue::Error(e) => return Err(format!("the cell holds the spreadsheet error {e}")),
    })
}

/// A spreadsheet's number as the spreadsheet shows it: rounded to the 15
/// significant digits it keeps. A cell computed by a formula holds the
/// nearest binary fraction (`=1.1*3` holds 3.3000000000000003 and shows
/// 3.3); read whole, that tail would make an amount differ from the one
/// the department sees by a fraction of a fen, and comparisons with it
/// come out wrong.
fn shown_number(f: f64) -> String {
    Decimal::from_scientific(&format!("{f:.14e}"))
        .map(|d| d.normalize().to_string())
        .unwrap_or_else(|_| f.to_string())
}

/// A text field's cell that the spreadsheet holds as a number: its whole
/// digits, unless it has more than the 15 significant digits a spreadsheet
/// keeps (an 18-digit ID number typed into a number column is stored with
/// its last digits turned to zeros), which is refused rather than stored
/// with digits that were never in the source.
fn number_as_text(f: f64) -> std::result::Result<String, String> {
    if f.is_finite() && f.abs() >= 1e15 {
        return Err(format!(
            "the cell holds the number {f:.0}, which has more digits than the 15 a spreadsheet keeps, so its last digits were lost when it was typed or imported (an ID number or a code in a number column); {KEEP_AS_TEXT}"
        ));
    }
    xlsx_cell_text(&XlsxValue::Number(f)).map(Option::unwrap_or_default)
}

/// How to keep an ID number or a code from becoming a number in a
/// spreadsheet.
const KEEP_AS_TEXT: &str = "format the column as text (设置单元格格式 → 文本) and enter the values again, or export them from the source system as text";

/// Reads JSON Lines (UTF-8), a chunk at a time: one object per line, each
/// field's value under its name (else its first alias present); keys the
/// schema does not know are skipped without building a value for them.
fn read_jsonl(
    path: &Path,
    chunker: &mut Chunker,
    builder: &mut RowBuilder,
    problems: &mut Problems,
) -> Result<()> {
    let schema = builder.schema;
    let mut names: HashMap<&str, (usize, usize)> = HashMap::new();
    for (i, f) in schema.fields.iter().enumerate() {
        for (rank, n) in std::iter::once(&f.name).chain(&f.aliases).enumerate() {
            names.entry(n.as_str()).or_insert((i, rank));
        }
    }
    let fields = schema.fields.len();
    let mut decoding = Decoding::new(Encoding::Utf8);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut last = false;
    // A group of chunks at a time, a thread per chunk (the next group read
    // meanwhile), their rows appended in file order.
    let mut read_group = |last: &mut bool| -> Result<Vec<(String, u64)>> {
        let mut group = Vec::with_capacity(threads);
        while group.len() < threads && !*last {
            let Some(chunk) = chunker.next_chunk()? else {
                *last = true;
                break;
            };
            *last = chunk.last;
            let text = decoding
                .decode_owned(path, chunk.bytes, chunk.first, chunk.lines_before)
                .map_err(|e| match e {
                    Error::File { path, message } => Error::File {
                        path,
                        message: format!("JSON Lines must be UTF-8: {message}"),
                    },
                    other => other,
                })?;
            group.push((text, chunk.lines_before));
        }
        Ok(group)
    };
    let parse =
        |(text, before): &(String, u64), local: &mut RowBuilder, local_problems: &mut Problems| {
            for (i, line) in text.lines().enumerate() {
                if !line.trim().is_empty() {
                    let line_no = before + i as u64 + 1;
                    read_json_line(line, line_no, &names, fields, local, local_problems);
                }
            }
        };
    parse_in_groups(
        path,
        builder,
        problems,
        || read_group(&mut last),
        parse,
        |()| true,
    )
}

fn read_json_line(
    line: &str,
    line_no: u64,
    names: &HashMap<&str, (usize, usize)>,
    fields: usize,
    builder: &mut RowBuilder,
    problems: &mut Problems,
) {
    let mut de = serde_json::Deserializer::from_str(line);
    let unknown = std::cell::RefCell::new(Vec::new());
    let seed = JsonLine {
        names,
        fields,
        unknown: &unknown,
        warned: &builder.unknown_keys,
    };
    let read = serde::de::DeserializeSeed::deserialize(seed, &mut de)
        .and_then(|cells| de.end().map(|()| cells));
    for key in unknown.into_inner() {
        problems.warn(
            line_no,
            &key,
            format!(
                "{ONCE_A_FILE} is ignored (the schema's fields: {})",
                builder
                    .schema
                    .fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        builder.unknown_keys.push(key);
    }
    let mut cells = match read {
        Ok(cells) => cells,
        Err(e) => {
            problems.error(line_no, None, format!("not a JSON object: {e}"));
            return;
        }
    };
    let mut bad = false;
    for (f, cell) in builder.schema.fields.iter().zip(&mut cells) {
        if let Some((_, JsonCell::Nested(kind))) = cell {
            problems.error(
                line_no,
                Some(&f.name),
                format!("a nested {kind} is not allowed"),
            );
            bad = true;
        }
        if let Some((_, JsonCell::Twice(key))) = cell {
            problems.error(
                line_no,
                Some(&f.name),
                format!(
                    "the key `{key}` appears twice on the line: which value is meant is not known"
                ),
            );
            bad = true;
        }
        // A number with an exponent is written out (`1.5e3` as 1500) for
        // every field that does not read floats.
        if let Some((rank, JsonCell::Exponent(text))) = cell {
            if f.ty != FieldType::Float {
                match scientific_number(text) {
                    Some(written) => *cell = Some((*rank, JsonCell::Text(Cow::Owned(written)))),
                    None => {
                        problems.error(
                            line_no,
                            Some(&f.name),
                            format!(
                                "the JSON number {text} does not fit a decimal (at most 28 digits)"
                            ),
                        );
                        bad = true;
                    }
                }
            }
        }
    }
    if bad {
        return;
    }
    let cells: Vec<Option<&str>> = cells
        .iter()
        .map(|c| match c {
            Some((_, JsonCell::Text(t))) => Some(t.as_ref()),
            Some((_, JsonCell::Exponent(t))) => Some(*t),
            _ => None,
        })
        .collect();
    builder.add(line_no, &cells, problems);
}

/// A JSON number with an exponent (`1.2300e-5`, `1E20`) written out as a
/// decimal keeps its digits (`0.000012300`, `100000000000000000000`);
/// `None` when it does not fit a decimal.
fn scientific_number(text: &str) -> Option<String> {
    Decimal::from_scientific(text).ok().map(|d| d.to_string())
}

/// One field's value on a JSON line.
enum JsonCell<'a> {
    /// A string, number or boolean, as text: a number as it is written
    /// on the line (`12.30` keeps its two decimals, a long ID typed as a
    /// number all its digits), never through a binary float.
    Text(Cow<'a, str>),
    /// A number with an exponent (`1e20`), as written.
    Exponent(&'a str),
    Null,
    /// An object or array (refused).
    Nested(&'static str),
    /// A key that appears twice on the line (refused).
    Twice(Cow<'a, str>),
}

/// Reads one JSON object into a cell per schema field: `names` maps each
/// field name and alias to (field, rank: 0 for the name, then the
/// aliases in order); the lowest rank present wins.
struct JsonLine<'n> {
    names: &'n HashMap<&'n str, (usize, usize)>,
    fields: usize,
    /// Keys no field is named by (each once): warned about, as a CSV
    /// header's unknown columns are.
    unknown: &'n std::cell::RefCell<Vec<String>>,
    /// Keys already warned about in this part of the file: passed by
    /// without a copy or a search among the names in any case.
    warned: &'n [String],
}

/// The start of the warning for a JSON key no field is named by, said
/// once a file.
const ONCE_A_FILE: &str = "key is not in the schema and";
/// How a CSV column without a header name that holds values is warned
/// about: once a file, by the first line that holds one.
const NAMELESS: &str = "has no name in the header but holds values";

/// A rank below every name's and alias's: a key matched without regard to
/// the case of Latin letters (`ID` for `id`), as a CSV header is.
const ANY_CASE: usize = 1 << 16;

type JsonCells<'a> = Vec<Option<(usize, JsonCell<'a>)>>;

impl<'de> serde::de::DeserializeSeed<'de> for JsonLine<'_> {
    type Value = JsonCells<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonLine<'_> {
    type Value = JsonCells<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut cells: JsonCells<'de> = (0..self.fields).map(|_| None).collect();
        while let Some(key) = map.next_key_seed(JsonKey)? {
            let exact = self.names.get(key.as_ref()).copied();
            if exact.is_none() && self.warned.iter().any(|k| k == key.as_ref()) {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let named = exact.or_else(|| {
                self.names
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(key.as_ref()))
                    .map(|(_, &(field, rank))| (field, rank + ANY_CASE))
            });
            match named {
                Some((field, rank)) => {
                    let raw: &'de serde_json::value::RawValue = map.next_value()?;
                    let value = json_cell(raw).map_err(serde::de::Error::custom)?;
                    match &cells[field] {
                        // The same key again: which value is meant is not
                        // known, so neither is taken.
                        Some((r, _)) if *r == rank => {
                            cells[field] = Some((rank, JsonCell::Twice(key)));
                        }
                        Some((r, _)) if *r < rank => {}
                        _ => cells[field] = Some((rank, value)),
                    }
                }
                None => {
                    let mut unknown = self.unknown.borrow_mut();
                    if !unknown.iter().any(|k| k == key.as_ref()) {
                        unknown.push(key.into_owned());
                    }
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        for cell in &mut cells {
            if matches!(cell, Some((_, JsonCell::Null))) {
                *cell = None;
            }
        }
        Ok(cells)
    }
}

/// An object's key, borrowed from the line unless it holds escapes.
struct JsonKey;

impl<'de> serde::de::DeserializeSeed<'de> for JsonKey {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonKey {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

/// One value of a known field, from its text on the line: no generic
/// value is built, and a number is taken as written, never through a
/// binary float (a float would turn `12.30` into 12.3, and a long ID or
/// amount typed as a number into its nearest float).
fn json_cell(raw: &serde_json::value::RawValue) -> std::result::Result<JsonCell<'_>, String> {
    let text = raw.get();
    Ok(match text.as_bytes().first() {
        Some(b'"') => {
            let inner = &text[1..text.len() - 1];
            if inner.contains('\\') {
                let unescaped = serde_json::from_str::<String>(text).map_err(|e| e.to_string())?;
                if unescaped.contains('\0') {
                    // As a NUL byte in a CSV file: no text holds one.
                    return Err(
                        "the string holds `\\u0000`, a NUL character, which text does not hold"
                            .into(),
                    );
                }
                JsonCell::Text(Cow::Owned(unescaped))
            } else {
                JsonCell::Text(Cow::Borrowed(inner))
            }
        }
        Some(b'n') => JsonCell::Null,
        Some(b't') => JsonCell::Text(Cow::Borrowed("true")),
        Some(b'f') => JsonCell::Text(Cow::Borrowed("false")),
        Some(b'{') => JsonCell::Nested("object"),
        Some(b'[') => JsonCell::Nested("array"),
        _ if text.bytes().any(|b| b == b'e' || b == b'E') => JsonCell::Exponent(text),
        // Negative zero is zero.
        _ if text == "-0" => JsonCell::Text(Cow::Borrowed("0")),
        _ => JsonCell::Text(Cow::Borrowed(text)),
    })
}

/// Validates cells, encodes records and collects index entries, each
/// into an external sort ([`Sorter`]) so that memory stays bounded.
struct RowBuilder<'s> {
    schema: &'s Schema,
    key_fields: Vec<usize>,
    /// Per schema index: (name, field, its (value, 0, primary key) entries).
    indexes: Vec<(String, usize, Sorter)>,
    /// Valid rows: (primary key, line, encoded record).
    records: Sorter,
    /// The rows' pseudonym runs, when the schema has personal fields.
    pseudonymizer: Option<&'s Pseudonymizer>,
    pseudonyms: Option<PseudonymEntries<'s>>,
    /// Scratch buffers reused from row to row.
    record: Vec<u8>,
    text: String,
    key: String,
    /// The room of a row's cells and values ([`reuse`]).
    cells: Vec<Cell<'static>>,
    values: Vec<Option<Value<'static>>>,
    /// The first failure to spill a sorted run (disk full, say).
    failed: Option<std::io::Error>,
    /// JSON keys no field is named by, warned about once.
    unknown_keys: Vec<String>,
}

/// Memory the records of one ingest may hold before they are sorted and
/// spilled to disk, and the indexes' entries together (with the pseudonym
/// runs' entries, when there are personal fields).
pub(crate) const RECORDS_BUDGET: usize = 64 << 20;
/// [`RECORDS_BUDGET`] and [`INDEXES_BUDGET`] when the schema has personal
/// fields: each chunk parsed at once holds its rows' pseudonym entries
/// too (about as many bytes again as its records), so the sorts hold less
/// to keep the whole ingest in bounded memory.
const RECORDS_BUDGET_PERSONAL: usize = 16 << 20;
const INDEXES_BUDGET_PERSONAL: usize = 16 << 20;
pub(crate) const INDEXES_BUDGET: usize = 32 << 20;

/// Rows read and validated, sorted externally: what a new version is
/// written from ([`super::stage_version`]).
pub struct Rows {
    /// (primary key, line, encoded record); a key may repeat here, which
    /// writing the version reports as duplicate rows.
    pub records: Sorter,
    /// Per index: (value, 0, primary key).
    pub indexes: BTreeMap<String, Sorter>,
    /// The entries of the pseudonym runs, when the schema has personal
    /// fields.
    pub pseudonyms: Option<PseudonymRuns>,
    /// The file the rows came from, and how many bad rows to describe.
    pub file: PathBuf,
    pub max_errors: usize,
}

/// Per part of `schema`'s primary key: its personal kind, if the field is
/// personal (a repeated key's message masks those parts).
pub fn key_personal(schema: &Schema) -> Vec<Option<crate::mask::PersonalKind>> {
    schema
        .primary_key
        .iter()
        .map(|k| {
            schema
                .fields
                .iter()
                .find(|f| &f.name == k)
                .and_then(|f| f.personal)
        })
        .collect()
}

impl Rows {
    /// Rows already sorted in memory, as a source for writing; their
    /// pseudonym runs gathered with `pseudonymizer` when the schema
    /// has personal fields.
    pub fn from_sorted(
        schema: &Schema,
        rows: &SortedRows,
        file: &Path,
        tmp: &Path,
        pseudonymizer: Option<&Pseudonymizer>,
    ) -> Result<Rows> {
        let io = |e: std::io::Error| Error::file(file, e);
        let mut records = Sorter::new(tmp, usize::MAX);
        let mut pseudonyms = pseudonymizer
            .filter(|_| schema.has_personal())
            .map(|p| PseudonymEntries::new(schema, p, tmp, false));
        for (line, (k, r)) in rows.rows.iter().enumerate() {
            records.push(k.as_bytes(), line as u64 + 2, r).map_err(io)?;
            if let Some(p) = &mut pseudonyms {
                p.add(k.as_bytes(), r).map_err(io)?;
            }
        }
        let mut indexes = BTreeMap::new();
        for (name, entries) in &rows.indexes {
            let mut s = Sorter::new(tmp, usize::MAX);
            for (v, k) in entries {
                s.push(v.as_bytes(), 0, k.as_bytes()).map_err(io)?;
            }
            indexes.insert(name.clone(), s);
        }
        Ok(Rows {
            records,
            indexes,
            pseudonyms: pseudonyms.map(PseudonymEntries::finish),
            file: file.to_path_buf(),
            max_errors: DEFAULT_MAX_ERRORS,
        })
    }

    /// Reads every row into memory in key order; a repeated key is a bad
    /// row (what writing a version reports too).
    pub fn collect(self, schema: &Schema) -> Result<SortedRows> {
        let io = |e: std::io::Error| Error::file(&self.file, e);
        let mut problems = Problems::new(self.max_errors);
        let mut rows: Vec<(String, Vec<u8>)> = Vec::new();
        let mut unique = Unique::new(self.records.finish().map_err(io)?, key_personal(schema));
        while let Some(step) = unique.next().map_err(io)? {
            match step {
                Step::Record(e) => rows.push((
                    String::from_utf8_lossy(e.key).into_owned(),
                    e.value.to_vec(),
                )),
                Step::Duplicate { line, message } => problems.error(line, None, message),
            }
        }
        if problems.total > 0 {
            return Err(Error::IngestRejected {
                file: self.file,
                errors: problems.errors,
                total: problems.total,
                rows: problems.rows,
                warnings: Vec::new(),
            });
        }
        let mut indexes = BTreeMap::new();
        for (name, sorter) in self.indexes {
            let mut merged = sorter.finish().map_err(io)?;
            let mut entries = Vec::new();
            while let Some(e) = merged.next().map_err(io)? {
                entries.push((
                    String::from_utf8_lossy(e.key).into_owned(),
                    String::from_utf8_lossy(e.value).into_owned(),
                ));
            }
            indexes.insert(name, entries);
        }
        Ok(SortedRows { rows, indexes })
    }
}

/// One step through records in key order: a record whose key is new, or
/// a row that repeats the key before it.
pub enum Step<'a> {
    Record(super::sort::Entry<'a>),
    Duplicate { line: u64, message: String },
}

/// Records in key order with repeated keys told apart (reported on the
/// later line, naming the first).
pub struct Unique {
    merged: Merged,
    last: Vec<u8>,
    last_line: u64,
    started: bool,
    /// Per part of the primary key: its personal kind, whose values a
    /// repeated key's message shows masked (empty: none is personal).
    personal: Vec<Option<crate::mask::PersonalKind>>,
}

impl Unique {
    /// The records of `merged`, each key once; a repeated key is named
    /// with its personal parts masked (`personal`: [`key_personal`]).
    pub fn new(merged: Merged, personal: Vec<Option<crate::mask::PersonalKind>>) -> Unique {
        Unique {
            merged,
            last: Vec::new(),
            last_line: 0,
            started: false,
            personal,
        }
    }

    /// A key as a repeated key's message shows it: its parts joined by
    /// `+`, personal ones masked (an error goes to whoever reads the
    /// output, as a lead's personal evidence does).
    fn shown_key(personal: &[Option<crate::mask::PersonalKind>], key: &[u8]) -> String {
        let key = String::from_utf8_lossy(key);
        key.split(super::block::KEY_SEP)
            .enumerate()
            .map(|(i, part)| match personal.get(i).copied().flatten() {
                Some(kind) => crate::mask::mask(kind, part),
                None => part.to_string(),
            })
            .collect::<Vec<_>>()
            .join("+")
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> std::io::Result<Option<Step<'_>>> {
        let Some(e) = self.merged.next()? else {
            return Ok(None);
        };
        if self.started && e.key == self.last.as_slice() {
            let key = Self::shown_key(&self.personal, e.key);
            return Ok(Some(Step::Duplicate {
                line: e.tag,
                message: format!(
                    "duplicate primary key `{key}` (also on line {})",
                    self.last_line
                ),
            }));
        }
        self.started = true;
        self.last.clear();
        self.last.extend_from_slice(e.key);
        self.last_line = e.tag;
        Ok(Some(Step::Record(e)))
    }
}

/// An empty vector with the room of `v`, for items of another lifetime: a
/// row's cells borrow its text and cannot outlive it, but their vector's
/// allocation can (collecting into items of the same size and alignment
/// reuses it), instead of a new one per row.
fn reuse<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().map(|_| unreachable!("cleared")).collect()
}

/// A validated cell value.
enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Text: borrowed from the file unless changed (an ID number's check
    /// character `x` stored as `X`).
    Str(Cow<'a, str>),
    /// Canonical text: borrowed when the file already has it.
    Decimal(Cow<'a, str>),
    /// `YYYY-MM-DD`: borrowed when the file already has it.
    Date(Cow<'a, str>),
}

impl<'s> RowBuilder<'s> {
    /// A builder spilling to `tmp` past the ingest's budgets; `budget`
    /// `false`: never spilling (one chunk's rows, appended to one that does).
    /// With a pseudonymizer and personal fields in the schema, it gathers
    /// the pseudonym runs too.
    fn new(
        schema: &'s Schema,
        tmp: &Path,
        budget: bool,
        pseudonymizer: Option<&'s Pseudonymizer>,
    ) -> Self {
        let pseudonymizer = pseudonymizer.filter(|_| schema.has_personal());
        let indexes = schema.indexes.len().max(1);
        // The sorts of the pseudonym runs take their memory out of the
        // indexes' budget.
        let (records_budget, index_budget) = match pseudonymizer {
            Some(_) => (
                RECORDS_BUDGET_PERSONAL,
                INDEXES_BUDGET_PERSONAL - super::PSEUDONYMS_BUDGET,
            ),
            None => (RECORDS_BUDGET, INDEXES_BUDGET),
        };
        let (records, index) = if budget {
            (records_budget, index_budget / indexes)
        } else {
            (usize::MAX, usize::MAX)
        };
        RowBuilder {
            schema,
            key_fields: schema.key_indexes(),
            indexes: schema
                .indexes
                .iter()
                .map(|(name, f)| {
                    (
                        name.clone(),
                        schema.field_index(f).expect("checked at parse"),
                        Sorter::new(tmp, index),
                    )
                })
                .collect(),
            records: Sorter::new(tmp, records),
            pseudonymizer,
            pseudonyms: pseudonymizer.map(|p| PseudonymEntries::new(schema, p, tmp, budget)),
            record: Vec::new(),
            text: String::new(),
            key: String::new(),
            cells: Vec::new(),
            values: Vec::new(),
            failed: None,
            unknown_keys: Vec::new(),
        }
    }

    fn add(&mut self, line: u64, raw: &[Option<&str>], problems: &mut Problems) {
        let mut cells = reuse(std::mem::take(&mut self.cells));
        self.add_cells(line, raw, &mut cells, problems);
        self.cells = reuse(cells);
    }

    /// [`RowBuilder::add`] with a vector for the row's cells.
    fn add_cells<'a>(
        &mut self,
        line: u64,
        raw: &[Option<&'a str>],
        cells: &mut Vec<Cell<'a>>,
        problems: &mut Problems,
    ) {
        let mut ok = true;
        for (field, raw) in self.schema.fields.iter().zip(raw) {
            let text = raw.map(|s| excel_text(s.trim())).filter(|s| !s.is_empty());
            match parse_cell(field, text) {
                Ok(mut cell) => {
                    if let (Some(check), Cell::Str(s)) = (field.check, &mut cell) {
                        // An ID's check character is stored as the
                        // standard writes it: `…x` and `…X` are one person
                        // as a key, in an index and in a clear join.
                        if check == Check::CitizenId && s.ends_with('x') {
                            if let Some(id) = crate::ids::citizen_id_spelt(s, 'X') {
                                *s = Cow::Owned(id);
                            }
                        }
                        if is_scientific(s) {
                            let reason = shown_masked(field, s, lost_digits(s));
                            problems.error(line, Some(&field.name), reason);
                            ok = false;
                            cells.push(Cell::Null);
                            continue;
                        }
                        let problem = match check {
                            Check::CreditCode => crate::ids::credit_code_problem(s),
                            Check::CitizenId => crate::ids::citizen_id_problem(s),
                        };
                        if let Some(p) = problem {
                            problems.warn(line, &field.name, p);
                        }
                    }
                    use crate::mask::PersonalKind;
                    if let (None, Some(PersonalKind::Id | PersonalKind::Phone), Cell::Str(s)) =
                        (field.check, field.personal, &cell)
                    {
                        // An ID number or a phone a spreadsheet held as a
                        // number, its digits lost, unchecked as it is.
                        if is_scientific(s) {
                            let reason = shown_masked(field, s, lost_digits(s));
                            problems.error(line, Some(&field.name), reason);
                            ok = false;
                            cells.push(Cell::Null);
                            continue;
                        }
                    }
                    cells.push(cell)
                }
                Err(reason) => {
                    let reason = match text {
                        Some(text) => shown_masked(field, text, reason),
                        None => reason,
                    };
                    problems.error(line, Some(&field.name), reason);
                    ok = false;
                    cells.push(Cell::Null);
                }
            }
        }
        if !ok {
            return;
        }
        let key = &mut self.key;
        key.clear();
        for (n, &k) in self.key_fields.iter().enumerate() {
            let part = cell_text(&cells[k]).unwrap_or_default();
            if part.bytes().any(|b| b < b' ') {
                problems.error(
                    line,
                    Some(&self.schema.fields[k].name),
                    "key contains control characters".into(),
                );
                return;
            }
            super::push_key_part(key, n, &part);
        }
        let mut values = reuse(std::mem::take(&mut self.values));
        values.extend(cells.iter().map(|c| Some(cell_value(c))));
        self.record.clear();
        let encoded = encode_into(&mut self.record, &values);
        self.values = reuse(values);
        if let Err(e) = encoded {
            // The longest field is the one to look at.
            let longest = cells
                .iter()
                .zip(&self.schema.fields)
                .filter_map(|(c, f)| cell_text(c).map(|t| (t.len(), f.name.as_str())))
                .max();
            let reason = match (&e, longest) {
                (jiandu_sdk::record::EncodeError::TooLarge(_), Some((n, name))) => format!(
                    "{e}: a stored record holds at most 64 KiB of values, and its longest field, `{name}`, has {n} bytes; a value this long is most often a column shifted by a missing delimiter or an unclosed quote"
                ),
                _ => e.to_string(),
            };
            problems.error(line, None, reason);
            return;
        }
        for (_, field, entries) in &mut self.indexes {
            let value = match &cells[*field] {
                Cell::Null => continue,
                Cell::Str(s) | Cell::Decimal(s) | Cell::Date(s) => &**s,
                other => {
                    self.text.clear();
                    self.text
                        .push_str(&cell_text(other).expect("not null, so it has a text"));
                    self.text.as_str()
                }
            };
            if let Err(e) = entries.push(value.as_bytes(), 0, key.as_bytes()) {
                self.failed.get_or_insert(e);
            }
        }
        if let Err(e) = self.records.push(key.as_bytes(), line, &self.record) {
            self.failed.get_or_insert(e);
        }
        if let Some(pseudonyms) = &mut self.pseudonyms {
            // The values' texts, as the encoded record's values print.
            if let Err(e) = pseudonyms.add_texts(key.as_bytes(), |f| cell_text(&cells[f])) {
                self.failed.get_or_insert(e);
            }
        }
    }

    /// Sorts the entries gathered so far in each sort
    /// ([`Sorter::sort_pieces`]).
    fn sort_pieces(&mut self) {
        self.records.sort_pieces();
        for (_, _, entries) in &mut self.indexes {
            entries.sort_pieces();
        }
        if let Some(pseudonyms) = &mut self.pseudonyms {
            pseudonyms.sort_pieces();
        }
    }

    /// Adds the rows of `other`, which follow, numbered from their own
    /// part of the file: `line_offset` lines precede it. `other` is left
    /// empty.
    fn append(&mut self, other: &mut RowBuilder, line_offset: u64) -> std::io::Result<()> {
        if let Some(e) = other.failed.take() {
            return Err(e);
        }
        self.records.append(&mut other.records, line_offset)?;
        for (mine, theirs) in self.indexes.iter_mut().zip(&mut other.indexes) {
            mine.2.append(&mut theirs.2, 0)?;
        }
        if let (Some(mine), Some(theirs)) = (&mut self.pseudonyms, &mut other.pseudonyms) {
            mine.append(theirs)?;
        }
        Ok(())
    }

    fn finish(self, file: &Path, max_errors: usize) -> Result<Rows> {
        if let Some(e) = self.failed {
            return Err(Error::file(file, format!("cannot sort the rows: {e}")));
        }
        Ok(Rows {
            records: self.records,
            indexes: self
                .indexes
                .into_iter()
                .map(|(name, _, entries)| (name, entries))
                .collect(),
            pseudonyms: self.pseudonyms.map(PseudonymEntries::finish),
            file: file.to_path_buf(),
            max_errors,
        })
    }
}

/// The text of a cell's value as the stored value prints (`Display`), the
/// text the pseudonym runs are made from; `None` for an empty cell.
fn cell_text<'a>(cell: &'a Cell<'a>) -> Option<Cow<'a, str>> {
    match cell {
        Cell::Null => None,
        Cell::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Cell::Int(i) => Some(Cow::Owned(i.to_string())),
        Cell::Float(f) => Some(Cow::Owned(f.to_string())),
        Cell::Str(s) | Cell::Decimal(s) | Cell::Date(s) => Some(Cow::Borrowed(s)),
    }
}

fn cell_value<'a>(cell: &'a Cell<'a>) -> Value<'a> {
    match cell {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::Bool(*b),
        Cell::Int(i) => Value::Int(*i),
        Cell::Float(f) => Value::Float(*f),
        Cell::Str(s) => Value::Str(s),
        Cell::Decimal(s) => Value::Decimal(s),
        Cell::Date(s) => Value::Date(s),
    }
}

/// A cell as Excel writes text it must not turn into a number (an ID
/// number, a code with leading zeros) when a sheet is saved as CSV:
/// `="0110"`, its value the text inside (trimmed). Other text as it is,
/// and so is such a cell with a quote inside.
fn excel_text(text: &str) -> &str {
    match text
        .strip_prefix("=\"")
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) if !inner.contains('"') => inner.trim(),
        _ => text,
    }
}

/// Whether `text` is a number as a spreadsheet shows one too long for its
/// column (`1.10105E+17`): what an ID number or a code becomes when a sheet
/// holding it as a number is saved as CSV.
fn is_scientific(text: &str) -> bool {
    let Some((mantissa, exponent)) = text.split_once(['E', 'e']) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, "0"));
    digits(whole)
        && digits(fraction)
        && exponent
            .strip_prefix('+')
            .is_some_and(|e| digits(e) && e.len() <= 3)
}

/// The error of an ID number or code that a spreadsheet wrote as
/// `text` ([`is_scientific`]).
/// `reason`, a message about the cell `text` of `field`, with the text
/// masked wherever it appears when the field is personal: an error goes
/// to whoever ran the ingest and into its report, where an ID number,
/// a phone or a birth date does not belong. (Every cell message quotes
/// the cell whole, never a part of it alone.)
fn shown_masked(field: &Field, text: &str, reason: String) -> String {
    match field.personal {
        Some(kind) if !text.is_empty() && reason.contains(text) => {
            reason.replace(text, &crate::mask::mask(kind, text))
        }
        _ => reason,
    }
}

fn lost_digits(text: &str) -> String {
    format!(
        "`{text}` is a number as a spreadsheet writes one too long for its column: the ID number or code lost its digits when the sheet held it as a number; {KEEP_AS_TEXT}"
    )
}

/// A date written with a time of day that is midnight, as databases and
/// spreadsheets export a date column (`2024-03-01 00:00:00`,
/// `2024/3/1 0:00`): the date. `Err` names a time that is not midnight,
/// which a date field cannot keep.
fn midnight_date(text: &str) -> Option<Result<chrono::NaiveDate, String>> {
    let (date, time) = text.split_once([' ', 'T'])?;
    let date = parse_date(date)?;
    let time = time.trim();
    let midnight = time
        .split([':', '.'])
        .all(|part| !part.is_empty() && part.bytes().all(|b| b == b'0'));
    Some(if midnight && time.contains(':') {
        Ok(date)
    } else {
        Err(format!(
            "`{text}` has a time of day: the field is a date; store the time in a field of its own"
        ))
    })
}

/// The column (counted from 1) and text of a row's first non-empty cell
/// when it labels the row as a sheet's totals (`合计`, `总计`, `小计`,
/// `Total`, also `合 计：` or `合计（元）`): such a row sums the rows above
/// it and is not a record.
fn totals_label<'a>(cells: impl Iterator<Item = &'a str>) -> Option<(usize, &'a str)> {
    const LABELS: [&str; 11] = [
        "合计",
        "总计",
        "小计",
        "累计",
        "共计",
        "总合计",
        "total",
        "totals",
        "grandtotal",
        "subtotal",
        "sum",
    ];
    let (column, text) = cells
        .enumerate()
        .map(|(i, c)| (i + 1, c.trim()))
        .find(|(_, c)| !c.is_empty())?;
    // Most rows start with a code or a number: told apart without
    // building the label (this runs on every row).
    let first = text.chars().next()?;
    if text.len() > 40
        || !matches!(
            first,
            '合' | '总' | '小' | '累' | '共' | 't' | 'T' | 's' | 'S' | 'g' | 'G'
        )
    {
        return None;
    }
    let mut label: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_lowercase();
    // A unit in brackets after the label, then a colon.
    if let Some(open) = label.find(['（', '(']) {
        if label.ends_with(['）', ')']) {
            label.truncate(open);
        }
    }
    let label = label.trim_end_matches([':', '：']);
    LABELS.contains(&label).then_some((column, text))
}

#[cold]
fn totals_row(column: usize, label: &str) -> String {
    format!(
        "`{label}` in column {column}: the row looks like the sheet's totals, which sum the rows above and are not a record; delete the row from the file and ingest it again"
    )
}

/// Parses one trimmed cell by its field's type.
fn parse_cell<'a>(field: &Field, text: Option<&'a str>) -> Result<Cell<'a>, String> {
    let Some(text) = text else {
        return if field.required {
            Err("required value is empty".into())
        } else {
            Ok(Cell::Null)
        };
    };
    if !field.values.is_empty() && !field.values.iter().any(|v| v == text) {
        return Err(format!(
            "`{text}` is not one of {}",
            field.values.join(", ")
        ));
    }
    match field.ty {
        FieldType::String => Ok(Cell::Str(Cow::Borrowed(text))),
        FieldType::Int => whole_number(text).map(Cell::Int),
        FieldType::Float => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Cell::Float(f)),
            _ => Err(format!("`{text}` is not a number")),
        },
        FieldType::Decimal if is_canonical_decimal(text) => Ok(Cell::Decimal(Cow::Borrowed(text))),
        FieldType::Decimal => exact_decimal(text).map(|d| Cell::Decimal(Cow::Owned(d.to_string()))),
        FieldType::Date if is_iso_date(text) => Ok(Cell::Date(Cow::Borrowed(text))),
        FieldType::Date => match parse_date(text).map(Ok).or_else(|| midnight_date(text)) {
            Some(Ok(d)) => Ok(Cell::Date(Cow::Owned(d.format("%Y-%m-%d").to_string()))),
            Some(Err(why)) => Err(why),
            None => Err(not_a_date(text)),
        },
        FieldType::Bool => {
            let any = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(text));
            if any(&["true", "1", "y", "yes", "是", "t"]) {
                Ok(Cell::Bool(true))
            } else if any(&["false", "0", "n", "no", "否", "f"]) {
                Ok(Cell::Bool(false))
            } else {
                Err(format!("`{text}` is not true/false (是/否)"))
            }
        }
    }
}

/// `text` without the commas that group its thousands (`1,234,567.50`).
/// Commas anywhere else are refused rather than dropped: `12,34` may be a
/// decimal comma (12.34), and reading it as 1234 would change the amount
/// a hundredfold without a word.
fn ungrouped(text: &str) -> Result<Cow<'_, str>, String> {
    if let Some(reason) = marked_amount(text) {
        return Err(reason);
    }
    if !text.contains(',') {
        return Ok(Cow::Borrowed(text));
    }
    let unsigned = text.trim_start_matches(['-', '+']);
    let int = unsigned.split_once('.').map_or(unsigned, |(int, _)| int);
    let mut groups = int.split(',');
    let first = groups.next().unwrap_or_default();
    let digits = |g: &str| g.bytes().all(|b| b.is_ascii_digit());
    let grouped = text.len() - unsigned.len() <= 1
        && (1..=3).contains(&first.len())
        && digits(first)
        && groups.all(|g| g.len() == 3 && digits(g))
        && !unsigned[int.len()..].contains(',');
    if grouped {
        Ok(Cow::Owned(text.replace(',', "")))
    } else {
        Err(format!(
            "`{text}`: a comma may only group thousands (1,234.50); write a decimal point, not a decimal comma"
        ))
    }
}

/// Why an amount written with a currency sign or in accounting's
/// parentheses is refused, said as such (rather than as a number that does
/// not read); `None` for anything else. A number starting and ending with a
/// digit is passed at once.
fn marked_amount(text: &str) -> Option<String> {
    let (first, last) = (text.chars().next()?, text.chars().next_back()?);
    if (first.is_ascii_digit() || matches!(first, '-' | '+' | '.')) && last.is_ascii_digit() {
        return None;
    }
    let currency = ['¥', '￥', '$', '€', '元'];
    if currency.contains(&first) || currency.contains(&last) || text.starts_with("RMB") {
        return Some(format!(
            "`{text}`: write the amount without its currency sign (1,234.50)"
        ));
    }
    if matches!(first, '(' | '（') && matches!(last, ')' | '）') {
        return Some(format!(
            "`{text}`: an amount in parentheses (an accounting negative) is not read as one; write it with a minus sign (-1,234.50)"
        ));
    }
    None
}

/// A whole number as departments write one: digits with an optional
/// sign, thousands grouped by commas, or a point followed only by zeros
/// (`7.0`, as some exports write every number).
fn whole_number(text: &str) -> Result<i64, String> {
    let plain = ungrouped(text)?;
    let int = match plain.split_once('.') {
        Some((int, zeros)) if zeros.bytes().all(|b| b == b'0') => int,
        _ => &plain,
    };
    let digits = int.trim_start_matches(['-', '+']);
    match int.parse::<i64>() {
        Ok(n) => Ok(n),
        Err(_) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "`{text}` is too large for a whole number (at most {})",
            i64::MAX
        )),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

/// A decimal read exactly: refused, not rounded, when it has more digits
/// than [`Decimal`] holds (28 after the point, 28 or 29 in all).
fn exact_decimal(text: &str) -> Result<Decimal, String> {
    let plain = ungrouped(text)?;
    let parsed = if plain.contains(['e', 'E']) {
        Decimal::from_scientific(&plain)
    } else {
        Decimal::from_str_exact(&plain)
    };
    parsed.map_err(|e| match e {
        rust_decimal::Error::Underflow
        | rust_decimal::Error::ScaleExceedsMaximumPrecision(_)
        | rust_decimal::Error::ExceedsMaximumPossibleValue
        | rust_decimal::Error::LessThanMinimumPossibleValue => format!(
            "`{text}` has more digits than a decimal field holds exactly (28 after the point, about 28 in all)"
        ),
        _ if plain
            .trim_start_matches(['-', '+'])
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.') =>
        {
            format!(
                "`{text}` has more digits than a decimal field holds exactly (28 after the point, about 28 in all)"
            )
        }
        _ => format!("`{text}` is not a decimal number"),
    })
}

/// Whether `text` is a decimal exactly as [`Decimal`] prints it, so that
/// it can be stored as is: an optional minus (not on zero), no leading
/// zeros, digits after a point if there is one, and few enough digits (at
/// most 18, Decimal holds 28) that parsing could not round.
fn is_canonical_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int)
        && (int == "0" || !int.starts_with('0'))
        && frac.is_none_or(digits)
        && int.len() + frac.map_or(0, str::len) <= 18
        && (unsigned.len() == text.len() || unsigned.bytes().any(|b| matches!(b, b'1'..=b'9')))
}

/// Whether `text` is a valid date written `YYYY-MM-DD`, the form dates are
/// stored in.
fn is_iso_date(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0, |n: u32, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    match (number(&b[..4]), number(&b[5..7]), number(&b[8..])) {
        (Some(y), Some(m), Some(d)) => chrono::NaiveDate::from_ymd_opt(y as i32, m, d).is_some(),
        _ => false,
    }
}

/// Dates as departments write them: 2024-03-01, 2024/03/01, 20240301,
/// 2024年3月1日, always with a four-digit year (`24/3/1` would otherwise
/// be read as the year 24).
pub fn parse_date(text: &str) -> Option<chrono::NaiveDate> {
    if !has_four_digit_year(text) {
        return None;
    }
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日", "%Y.%m.%d"]
        .iter()
        .find_map(|f| chrono::NaiveDate::parse_from_str(text, f).ok())
}

/// Whether `text` starts with a year of four digits: four digits and a
/// separator, or eight digits (`20240301`).
fn has_four_digit_year(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    (b.len() > 4 && digits(&b[..4]) && !b[4].is_ascii_digit()) || (b.len() == 8 && digits(b))
}

/// The reason a date field refuses `text`.
#[cold]
fn not_a_date(text: &str) -> String {
    let lead = text.bytes().take_while(u8::is_ascii_digit).count();
    let separated = text[lead..].starts_with(['-', '/', '.', '年']);
    if (1..4).contains(&lead) && separated {
        format!("`{text}` has a year of {lead} digits: write the year with four (2024-03-01)")
    } else {
        format!("`{text}` is not a date (YYYY-MM-DD)")
    }
}

/// The path where a schema given by name is looked up.
pub fn schema_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::stream::Scanner;

    fn schema() -> Schema {
        Schema::parse(
            "t.toml",
            r#"
name = "people"
department = "公安"
primary_key = ["id"]
[[fields]]
name = "id"
type = "string"
check = "citizen_id"
aliases = ["身份证号"]
[[fields]]
name = "name"
type = "string"
personal = "name"
aliases = ["姓名"]
[[fields]]
name = "paid"
type = "decimal"
[[fields]]
name = "born"
type = "date"
[indexes]
by_name = "name"
"#,
        )
        .unwrap()
    }

    fn opts() -> Options {
        Options {
            operator: "tester".into(),
            ..Options::default()
        }
    }

    fn account_of(text: &str, records: u64) -> std::result::Result<LineAccount, String> {
        let mut s = Scanner::new(true);
        s.scan(text.as_bytes());
        s.account(records, 0)
    }

    fn rejection(text: &[u8], opts: &Options) -> Vec<RowError> {
        rejection_of(&schema(), "p.csv", text, opts)
    }

    /// The message refusing `text`, a file named `file` of [`schema`].
    fn refusal(file: &str, text: &[u8]) -> String {
        parse(&schema(), Path::new(file), text, &opts())
            .unwrap_err()
            .to_string()
    }

    /// The rows' problems of `text`, a file named `file` of `schema`,
    /// which must be refused for them.
    fn rejection_of(schema: &Schema, file: &str, text: &[u8], opts: &Options) -> Vec<RowError> {
        match parse(schema, Path::new(file), text, opts) {
            Err(Error::IngestRejected { errors, .. }) => errors,
            Err(e) => panic!("not a rejection: {e}"),
            Ok(p) => panic!("accepted {} rows", p.rows.rows.len()),
        }
    }

    #[test]
    fn a_quote_that_never_closes_is_refused_at_the_line_it_opens() {
        let text = "id,name,paid,born\n\
                    11010519491231002X,张三,1.50,1949/12/31\n\
                    11010519491231002X,\"李四,2.00,\n\
                    11010519491231002X,王五,3.00,\n\
                    11010519491231002X,赵六,4.00,\n";
        let errors = rejection(text.as_bytes(), &opts());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 3, "{errors:?}");
        assert!(errors[0].reason.contains("never closed"), "{errors:?}");
        assert!(errors[0].reason.contains("2 line(s)"), "{errors:?}");
        // In the header, and in the last field of the last line.
        let errors = rejection(b"id,\"name,paid,born\n1,a,1,\n", &opts());
        assert_eq!(errors[0].line, 1, "{errors:?}");
        let errors = rejection(
            b"id,name,paid,born\n11010519491231002X,a,1.00,\"1949/12/31",
            &opts(),
        );
        assert_eq!(errors[0].line, 2, "{errors:?}");
    }

    #[test]
    fn every_line_of_a_csv_file_is_accounted_for() {
        let text = "\nid,name,paid,born\r\n11010519491231002X,\"多\n行\n字段\",1.50,\n\n110105194912310029,\"a\"\"b\",2,\r\r\n";
        let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap();
        assert_eq!(
            parsed.lines,
            Some(LineAccount {
                lines: 8,
                header: 1,
                records: 2,
                continuations: 2,
                blank: 3,
            })
        );
        // Lines of spaces and tabs are blank, not records of one field;
        // a quoted field of spaces is a record (refused for its width).
        let text = "id,name,paid,born\n   \n11010519491231002X,张三,1.50,\n \t \r\n  ";
        let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap();
        let lines = parsed.lines.unwrap();
        assert_eq!(
            (lines.lines, lines.records, lines.blank),
            (5, 1, 3),
            "{lines:?}"
        );
        assert_eq!(parsed.rows.rows.len(), 1);
        // A DOS end-of-file mark after the last line is not a record.
        let text = "id,name,paid,born\r\n11010519491231002X,张三,1.50,\r\n\x1A";
        let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap();
        let lines = parsed.lines.unwrap();
        assert_eq!(
            (lines.lines, lines.records, lines.blank),
            (3, 1, 1),
            "{lines:?}"
        );
        let errors = rejection(b"id,name,paid,born\n\"  \"\n", &opts());
        assert!(errors[0].reason.contains("has 1 columns"), "{errors:?}");
        // A file without a final line break, and one with a bare CR.
        let account = account_of("h\r1\r2", 2).unwrap();
        assert_eq!((account.lines, account.blank), (3, 0));
        // A count that does not add up is refused, with the counts.
        let err = account_of("h\n1\n2\n", 1).unwrap_err();
        assert!(
            err.contains("the file has 3 lines, but 2 are accounted for"),
            "{err}"
        );
    }

    #[test]
    fn json_lines_take_names_over_aliases_skip_unknown_keys_and_refuse_nested_values() {
        let text = concat!(
            r#"{"姓名":"别名","id":"11010519491231002X","name":"名字","paid":1.5,"extra":{"deep":[1,{"x":2}]},"born":null}"#,
            "\n\n",
            r#"{"\u0069d":"110105194912310029","paid":2,"姓名":"李四","born":"2001-02-03","flag":true}"#,
            "\n",
        );
        let parsed = parse(&schema(), Path::new("p.jsonl"), text.as_bytes(), &opts()).unwrap();
        assert_eq!(parsed.rows.rows.len(), 2);
        let names: Vec<&str> = parsed.rows.indexes["by_name"]
            .iter()
            .map(|(v, _)| v.as_str())
            .collect();
        assert_eq!(names, ["名字", "李四"], "the name wins over its alias");
        // Keys no field is named by are said, once each.
        let unknown: Vec<(u64, &str)> = parsed
            .warnings
            .iter()
            .filter(|w| {
                w.reason
                    .starts_with("key is not in the schema and is ignored")
            })
            .map(|w| (w.line, w.field.as_deref().unwrap()))
            .collect();
        assert_eq!(
            unknown,
            [(1, "extra"), (3, "flag")],
            "{:?}",
            parsed.warnings
        );
        // Keys in another Latin case are the field's, as CSV headers are;
        // the name as written wins over them.
        let text = r#"{"ID":"11010519491231002X","Name":"王五","NAME":"赵六","name":"名字"}
{"Id":"110105194912310029","NAME":"孙七"}
"#;
        let parsed = parse(&schema(), Path::new("p.jsonl"), text.as_bytes(), &opts()).unwrap();
        let names: Vec<&str> = parsed.rows.indexes["by_name"]
            .iter()
            .map(|(v, _)| v.as_str())
            .collect();
        assert_eq!(names, ["名字", "孙七"]);
        let text = r#"{"id":"11010519491231002X","name":["a"]}"#;
        let errors = match parse(&schema(), Path::new("p.jsonl"), text.as_bytes(), &opts()) {
            Err(Error::IngestRejected { errors, .. }) => errors,
            other => panic!("{other:?}"),
        };
        assert_eq!(errors[0].field.as_deref(), Some("name"));
        assert!(
            errors[0].reason.contains("a nested array is not allowed"),
            "{errors:?}"
        );
        // A key twice on a line: neither value is taken. An alias beside
        // the name is not twice (the name wins, as above).
        for text in [
            r#"{"id":"11010519491231002X","name":"甲","name":"乙"}"#,
            r#"{"id":"11010519491231002X","姓名":"甲","姓名":"乙"}"#,
        ] {
            let errors = match parse(&schema(), Path::new("p.jsonl"), text.as_bytes(), &opts()) {
                Err(Error::IngestRejected { errors, .. }) => errors,
                other => panic!("{text}: {other:?}"),
            };
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].field.as_deref(), Some("name"));
            assert!(
                errors[0].reason.contains("appears twice on the line"),
                "{errors:?}"
            );
        }
        for bad in ["[1,2]", r#"{"id":"x"} trailing"#, r#"{"id":"#] {
            let errors = match parse(&schema(), Path::new("p.jsonl"), bad.as_bytes(), &opts()) {
                Err(Error::IngestRejected { errors, .. }) => errors,
                other => panic!("{bad}: {other:?}"),
            };
            assert!(
                errors[0].reason.contains("not a JSON object"),
                "{bad}: {errors:?}"
            );
        }
    }

    #[test]
    fn quotes_that_close_are_not_mistaken_for_open_ones() {
        for text in [
            "id,name,paid,born\n11010519491231002X,\"张\"\"三\",1.50,\"1949/12/31\"\n",
            "id,name,paid,born\n11010519491231002X,\"多\n行\",1.50,\n",
            "id,name,paid,born\n11010519491231002X,张\"三,1.50,\n",
            "id,name,paid,born\r\n11010519491231002X,\"张三\"\r\n",
        ] {
            let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts());
            match parsed {
                Ok(p) => assert_eq!(p.rows.rows.len(), 1, "{text:?}"),
                Err(Error::IngestRejected { errors, .. }) => assert!(
                    errors.iter().all(|e| !e.reason.contains("never closed")),
                    "{text:?}: {errors:?}"
                ),
                Err(e) => panic!("{text:?}: {e}"),
            }
        }
        let open = |text: &[u8]| {
            let mut s = Scanner::new(true);
            s.scan(text);
            s.open_quote()
        };
        assert_eq!(open(b"a,\"b\"\"\",c"), None);
        assert_eq!(open(b"a,\"b\"x\"y,c"), None);
        assert_eq!(open(b"h\na,\"b\"\",c"), Some(2));
        assert_eq!(open(b"\""), Some(1));
    }

    #[test]
    fn utf8_with_a_few_damaged_bytes_is_not_read_as_gbk() {
        let text =
            "id,name,paid,born\n11010519491231002X,张三,1.50,\n11010519491231002X,李四,2.00,\n";
        let at = text.find("2.00").unwrap();
        let bytes = [&text.as_bytes()[..at], b"\xFF\xFE", &text.as_bytes()[at..]].concat();
        let err = parse(&schema(), Path::new("p.csv"), &bytes, &opts())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3: is not valid UTF-8 (byte 27 of the line, 0xFF)"),
            "{err}"
        );
        assert!(err.contains("--encoding gbk"), "{err}");
        // A GBK file is still read as GBK.
        let (gbk, _, _) = encoding_rs::GBK.encode(
            "id,name,paid,born\n11010519491231002X,张三,1.50,\n110105194912310029,李四王五,2.00,\n",
        );
        if let Err(e) = parse(&schema(), Path::new("p.csv"), &gbk, &opts()) {
            panic!("{e}");
        }
    }

    #[test]
    fn header_problems_say_what_was_found_and_what_is_accepted() {
        let text = "id,nmae,paid\n11010519491231002X,张三,1.50\n";
        // A missing optional column is refused, named with its accepted
        // names: `nmae` is a misspelt `name`.
        let errors = rejection(text.as_bytes(), &opts());
        let said: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {:?}: {}", e.line, e.field, e.reason))
            .collect();
        let said = said.join("\n");
        assert!(
            said.contains("1: Some(\"name\"): optional column is missing")
                && said.contains("`姓名`")
                && said.contains("found: `id`, `nmae`, `paid`")
                && said.contains("--allow-missing name"),
            "{said}"
        );
        assert!(
            said.contains("Some(\"born\"): optional column is missing"),
            "{said}"
        );
        // The header is not a row: its problems are counted as its own.
        let msg = refusal("p.csv", text.as_bytes());
        assert!(
            msg.contains("p.csv: the header has 2 problems; nothing was ingested"),
            "{msg}"
        );
        // Allowed on purpose (a flag, or the schema): warned about, ingested.
        let allowed = Options {
            allow_missing: vec!["name".into(), "born".into()],
            ..opts()
        };
        let mut by_schema = schema();
        for f in &mut by_schema.fields {
            f.may_be_absent = true;
        }
        for (schema, opts) in [(schema(), allowed), (by_schema, opts())] {
            let parsed = parse(&schema, Path::new("p.csv"), text.as_bytes(), &opts).unwrap();
            let said: Vec<String> = parsed
                .warnings
                .iter()
                .map(|w| format!("{:?}: {}", w.field, w.reason))
                .collect();
            let said = said.join("\n");
            assert!(
                said.contains("the schema's columns: id, name, paid, born"),
                "{said}"
            );
            assert!(
                said.contains(
                    "Some(\"name\"): optional column is missing from the header, as allowed"
                ),
                "{said}"
            );
            assert_eq!(parsed.rows.rows.len(), 1);
        }
        // Latin letters in any case name the same column; a header naming
        // one field twice that way is refused as twice.
        let text = "ID,Name,PAID,Born\n11010519491231002X,张三,1.50,\n";
        let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap();
        assert_eq!(parsed.rows.indexes["by_name"][0].0, "张三");
        let errors = rejection(b"id,ID,name,paid,born\n", &opts());
        assert!(
            errors
                .iter()
                .any(|e| e.reason.contains("column appears twice")),
            "{errors:?}"
        );
    }

    /// Tab- and semicolon-separated files (a `.txt` export, a spreadsheet
    /// saved where the comma is the decimal mark) are read by the delimiter
    /// their header shows, in UTF-8 and in GBK: a comma is then text, and a
    /// quote after the delimiter opens a field that may span lines.
    #[test]
    fn a_file_separated_by_tabs_or_semicolons_is_read_by_the_delimiter_its_header_shows() {
        for d in ["\t", ";"] {
            let text = format!(
                "身份证号{d}姓名{d}paid{d}born\n\
                 11010519491231002X{d}\"张,{d}三\n续\"{d}1.50{d}1949-12-31\r\n\
                 110105194912310029{d}李,四{d}2{d}\n"
            );
            let (gbk, _, _) = encoding_rs::GBK.encode(&text);
            for bytes in [text.as_bytes(), &gbk[..]] {
                let parsed = parse(&schema(), Path::new("p.txt"), bytes, &opts()).unwrap();
                assert_eq!(parsed.rows.rows.len(), 2, "{d:?}");
                let names: Vec<&str> = parsed.rows.indexes["by_name"]
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect();
                assert_eq!(
                    names,
                    [format!("张,{d}三\n续"), "李,四".to_string()],
                    "{d:?}"
                );
                let lines = parsed.lines.unwrap();
                assert_eq!((lines.lines, lines.records, lines.continuations), (4, 2, 1));
            }
            let mut input = text.as_bytes();
            let read = read(
                &schema(),
                Path::new("p.txt"),
                &mut input,
                &opts(),
                &std::env::temp_dir(),
                None,
            );
            let described = read.map(|r| r.encoding).unwrap().unwrap();
            assert!(described.ends_with("-separated (detected)"), "{described}");
        }
        // Told the delimiter, ingest does not look for it: a semicolon
        // file read as comma-separated has one column, which the schema
        // does not know.
        let text = "id;name;paid;born\n11010519491231002X;a;1;\n";
        let told = Options {
            delimiter: Some(b','),
            ..opts()
        };
        let errors = rejection(text.as_bytes(), &told);
        assert!(
            errors[0].reason.contains("found: `id;name;paid;born`"),
            "{errors:?}"
        );
        // A comma-separated header with a semicolon in a quoted name stays
        // comma-separated.
        let text = "id,\"name;姓名;x\",paid,born\n11010519491231002X,a,1,\n";
        let errors = rejection(text.as_bytes(), &opts());
        assert!(errors[0].reason.contains("`name;姓名;x`"), "{errors:?}");
    }

    /// A `|`-separated file (what systems that export text with `|`
    /// between fields write), in UTF-8 and in GBK: in GBK a character whose
    /// second byte is `|` (墊 is 0x89 0x7C, 億 0x83 0x7C) stays whole, and a
    /// quote after it is text; a quote after a `|` of its own opens a field.
    #[test]
    fn a_pipe_separated_file_is_read_in_utf8_and_in_gbk() {
        let text = "身份证号|姓名|paid|born\n\
                    11010519491231002X|墊\"付|1.50|1949-12-31\n\
                    110105194912310029|\"億|\n元\"|2|\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        let told = Options {
            delimiter: Some(b'|'),
            encoding: Encoding::Gbk,
            ..opts()
        };
        for (bytes, opts) in [
            (text.as_bytes(), opts()),
            (&gbk[..], opts()),
            (&gbk[..], told),
        ] {
            let parsed = parse(&schema(), Path::new("p.txt"), bytes, &opts).unwrap();
            let mut names: Vec<&str> = parsed.rows.indexes["by_name"]
                .iter()
                .map(|(name, _)| name.as_str())
                .collect();
            names.sort_unstable();
            assert_eq!(names, ["億|\n元", "墊\"付"], "{:?}", opts.encoding);
            let lines = parsed.lines.unwrap();
            assert_eq!((lines.lines, lines.records, lines.continuations), (4, 2, 1));
        }
    }

    /// What Excel and databases write when a sheet or a table is saved as
    /// CSV: an ID number kept from becoming a number as `="…"` (quoted for
    /// CSV or not), a date column with a time of day at midnight. The rows
    /// are those of the clean file; a time that is not midnight is refused
    /// by name, and a cell that only looks like it is kept as it is.
    #[test]
    fn excel_text_cells_and_dates_at_midnight_read_as_their_values() {
        let clean = "id,name,paid,born\n\
                     11010519491231002X,张三,1.50,1949-12-31\n\
                     110105194912310029,李四,2,1949-12-30\n";
        let quirky = "id,name,paid,born\n\
                      \"=\"\"11010519491231002X\"\"\",张三,=\"1.50\",1949-12-31 00:00:00\n\
                      =\"110105194912310029\",李四,2,1949/12/30 0:00\n";
        let twin = parse(&schema(), Path::new("c.csv"), clean.as_bytes(), &opts()).unwrap();
        let parsed = parse(&schema(), Path::new("q.csv"), quirky.as_bytes(), &opts()).unwrap();
        assert_eq!(parsed.rows.rows, twin.rows.rows);
        for (text, said) in [
            ("1949-12-31 08:30", "`1949-12-31 08:30` has a time of day"),
            (
                "1949-12-31T00:00:01",
                "`1949-12-31T00:00:01` has a time of day",
            ),
            ("1949-12-31 soon", "`1949-12-31 soon` has a time of day"),
        ] {
            let file = format!("id,name,paid,born\n11010519491231002X,张三,1,{text}\n");
            let errors = rejection(file.as_bytes(), &opts());
            assert!(errors[0].reason.contains(said), "{text}: {errors:?}");
        }
        // Not Excel's form: kept as written (and then not a decimal).
        for paid in ["=\"1\"\"50\"", "=1.50", "=\"1.50"] {
            let file = format!(
                "id,name,paid,born\n11010519491231002X,张三,\"{}\",\n",
                paid.replace('"', "\"\"")
            );
            let errors = rejection(file.as_bytes(), &opts());
            assert!(
                errors[0]
                    .reason
                    .contains(&format!("`{paid}` is not a decimal")),
                "{paid}: {errors:?}"
            );
        }
    }

    /// `text` in UTF-16 of `order`, with its byte order mark or without.
    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for unit in bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16()) {
            let bytes = if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            };
            out.extend_from_slice(&bytes);
        }
        out
    }

    #[test]
    fn a_utf16_file_reads_as_its_utf8_twin_with_its_own_bytes_as_its_source() {
        // Excel's "Unicode Text" export: UTF-16LE with a mark, tabs, CRLF;
        // a quoted name over two lines, a character outside the BMP (a
        // surrogate pair in UTF-16).
        let text = "身份证号\t姓名\tpaid\tborn\r\n\
                    11010519491231002X\t\"张\t三\r\n续𠀀\"\t1.50\t1949-12-31\r\n\
                    110105194912310029\t李四\t2\t\r\n";
        let twin = parse(&schema(), Path::new("p.txt"), text.as_bytes(), &opts()).unwrap();
        assert_eq!(twin.rows.rows.len(), 2);
        for (big_endian, bom, encoding, said) in [
            (false, true, Encoding::Auto, "UTF-16LE (with BOM)"),
            (true, true, Encoding::Auto, "UTF-16BE (with BOM)"),
            (false, false, Encoding::Auto, "UTF-16LE (detected)"),
            (true, false, Encoding::Auto, "UTF-16BE (detected)"),
            (false, false, Encoding::Utf16le, "UTF-16LE"),
            (true, true, Encoding::Utf16be, "UTF-16BE (with BOM)"),
        ] {
            let bytes = utf16(text, big_endian, bom);
            let o = Options { encoding, ..opts() };
            let parsed = parse(&schema(), Path::new("p.txt"), &bytes, &o).unwrap();
            assert_eq!(parsed.rows.rows, twin.rows.rows, "{said}");
            assert_eq!(parsed.rows.indexes, twin.rows.indexes, "{said}");
            let lines = parsed.lines.unwrap();
            assert_eq!((lines.lines, lines.records, lines.continuations), (4, 2, 1));
            let mut input = &bytes[..];
            let read = read(
                &schema(),
                Path::new("p.txt"),
                &mut input,
                &o,
                &std::env::temp_dir(),
                None,
            )
            .unwrap();
            assert_eq!(
                read.encoding.as_deref(),
                Some(format!("{said}, tab-separated (detected)").as_str())
            );
            assert_eq!(read.sha256, hex::encode(Sha256::digest(&bytes)), "{said}");
        }
        // JSON Lines too.
        let line = "{\"id\":\"11010519491231002X\",\"name\":\"张三\",\"paid\":\"1.50\"}\n";
        let jsonl = Options {
            format: Some(Format::Jsonl),
            ..opts()
        };
        let twin = parse(&schema(), Path::new("p.jsonl"), line.as_bytes(), &jsonl).unwrap();
        let parsed = parse(
            &schema(),
            Path::new("p.jsonl"),
            &utf16(line, false, true),
            &jsonl,
        )
        .unwrap();
        assert_eq!(parsed.rows.rows, twin.rows.rows);
    }

    #[test]
    fn text_that_is_not_utf16_is_refused_by_its_line_and_an_empty_file_by_name() {
        let o = Options {
            encoding: Encoding::Utf16le,
            ..opts()
        };
        let mut lone = utf16("id,name\n11010519491231002X,a\n", false, true);
        lone.extend_from_slice(&[0x00, 0xD8]);
        lone.extend_from_slice(&utf16("x,y\n", false, false));
        let mut odd = utf16("id,name\n11010519491231002X,a\n", false, true);
        odd.push(b'1');
        for bytes in [lone, odd] {
            let err = parse(&schema(), Path::new("p.csv"), &bytes, &o).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains("line 3: is not valid UTF-16LE"),
                "{message}"
            );
        }
        for (empty, said) in [
            ("", "the file is empty"),
            ("\u{FEFF}", "the file is empty"),
            ("\r\n\n", "the file's first line names no column"),
            (",,\n1,2,3\n", "the file's first line names no column"),
        ] {
            let err = parse(&schema(), Path::new("p.csv"), empty.as_bytes(), &opts()).unwrap_err();
            assert!(err.to_string().contains(said), "{empty:?}: {err}");
        }
    }

    #[test]
    fn gbk_file_with_chinese_headers_parses() {
        let text = "身份证号,姓名,paid,born\n11010519491231002X,张三,1.50,1949/12/31\n";
        let (bytes, _, _) = encoding_rs::GBK.encode(text);
        let parsed = parse(&schema(), Path::new("p.csv"), &bytes, &opts()).unwrap();
        assert_eq!(parsed.rows.rows.len(), 1);
        assert_eq!(parsed.rows.indexes["by_name"][0].0, "张三");
    }

    #[test]
    fn bad_row_names_line_and_field_and_commits_nothing() {
        let text = "id,name,paid,born\n11010519491231002X,a,1,2020-01-01\n11010519491231003X,b,lots,2020-01-01\n";
        let err = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("p.csv:3: field `paid`"), "{msg}");
        assert!(msg.contains("1 row rejected (1 problem)"), "{msg}");
    }

    #[test]
    fn bad_rows_are_named_by_their_line_whatever_the_line_endings() {
        let rows = [
            "id,name,paid,born",
            "11010519491231002X,a,1,2020-01-01",
            "",
            "11010519491231003X,b,lots,2020-01-01",
            "11010519491231004X,c,1,2020-01-01",
            "11010519491231005X,d,many,2020-01-01",
        ];
        for eol in ["\n", "\r\n"] {
            let text = rows.join(eol) + eol;
            let err = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("p.csv:4: field `paid`"), "{eol:?}: {msg}");
            assert!(msg.contains("p.csv:6: field `paid`"), "{eol:?}: {msg}");
        }
    }

    #[test]
    fn an_id_number_with_a_lowercase_check_character_is_stored_as_the_standard_writes_it() {
        // `…x` is stored `…X`: the same person as `…X` as key, in indexes
        // and in clear joins, as pseudonyms already make them.
        let text = "id,name,paid,born\n11010519491231002x,a,1,\n";
        let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap();
        let rec = jiandu_sdk::record::RecordRef::new(&parsed.rows.rows[0].1).unwrap();
        assert_eq!(
            rec.field(0).unwrap().unwrap().to_string(),
            "11010519491231002X"
        );
        assert_eq!(parsed.rows.rows[0].0, "11010519491231002X");
        // No warning: the check character is right either way.
        assert_eq!(parsed.warnings.len(), 0, "{:?}", parsed.warnings);
        // Written both ways, it is one person twice: a duplicate key.
        let text = "id,name,paid,born\n11010519491231002x,a,1,\n11010519491231002X,b,2,\n";
        let msg = refusal("p.csv", text.as_bytes());
        assert!(msg.contains("duplicate primary key"), "{msg}");
        // Only the 18th character of an 18-character ID: other text is
        // left as written (and warned about by its check).
        let text = "id,name,paid,born\nx,a,1,\n";
        let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap();
        let rec = jiandu_sdk::record::RecordRef::new(&parsed.rows.rows[0].1).unwrap();
        assert_eq!(rec.field(0).unwrap().unwrap().to_string(), "x");
    }

    #[test]
    fn a_repeated_key_of_personal_fields_is_named_masked() {
        let schema = Schema::parse(
            "p.toml",
            r#"
name = "people"
department = "公安"
primary_key = ["region", "id"]
[[fields]]
name = "region"
type = "string"
[[fields]]
name = "id"
type = "string"
personal = "id"
"#,
        )
        .unwrap();
        let text = "region,id\n650100,11010519491231002X\n650100,11010519491231002X\n";
        let msg = parse(&schema, Path::new("p.csv"), text.as_bytes(), &opts())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("duplicate primary key `650100+110105***********X`"),
            "{msg}"
        );
        assert!(!msg.contains("19491231"), "{msg}");
        // Written as a version (staged), the same.
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path().join("s")).unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(&path, text).unwrap();
        let options = Options {
            schema: Some(schema),
            ..Options::default()
        };
        let Err(refused) = stage(&store, "people", &path, &options) else {
            panic!("a repeated key is refused");
        };
        let msg = refused.to_string();
        assert!(msg.contains("650100+110105***********X"), "{msg}");
        assert!(!msg.contains("19491231"), "{msg}");
    }

    /// A personal field of any type: a bad value of it is named masked in
    /// every message about the cell (a date, a number, an enumeration, a
    /// code in scientific notation, text after a closing quote, a number
    /// past a spreadsheet's digits), never in clear.
    #[test]
    fn a_bad_value_of_a_personal_field_is_named_masked() {
        let schema = Schema::parse(
            "p.toml",
            r#"
name = "people"
department = "公安"
primary_key = ["n"]
[[fields]]
name = "n"
type = "int"
[[fields]]
name = "id"
type = "string"
personal = "id"
check = "citizen_id"
[[fields]]
name = "born"
type = "date"
personal = "other"
[[fields]]
name = "phone"
type = "int"
personal = "phone"
[[fields]]
name = "sex"
type = "string"
personal = "other"
values = ["男", "女"]
[[fields]]
name = "mobile"
type = "string"
personal = "phone"
may_be_absent = true
"#,
        )
        .unwrap();
        let text = "n,id,born,phone,sex\n\
            1,11010519491231002X,1949-13-31,13812345678,男\n\
            2,11010519491231002X,1949-12-31,1381234567a,男\n\
            3,11010519491231002X,1949-12-31,13812345678,男性\n\
            4,1.10105194912E+17,1949-12-31,13812345678,男\n\
            5,\"110105194912310029\"7,1949-12-31,13812345678,男\n\
            6,11010519491231002X,1949-12-31 10:30,13812345678,男\n";
        let errors = rejection_of(&schema, "p.csv", text.as_bytes(), &opts());
        let all = format!("{errors:?}");
        assert_eq!(errors.len(), 6, "{all}");
        for clear in [
            "1949-13-31",
            "1381234567a",
            "男性",
            "1.10105194912E+17",
            "110105194912310029",
            "10:30",
        ] {
            assert!(!all.contains(clear), "`{clear}` in {all}");
        }
        // Masked as the field's kind: the ends of a phone and an ID kept.
        assert!(all.contains("`138****567a` is not a whole number"), "{all}");
        assert!(all.contains("`**********` is not a date"), "{all}");
        assert!(all.contains("110105"), "{all}");

        // A phone a spreadsheet wrote as a number too long for its column,
        // refused (its digits are lost) though the field has no check.
        let text = "n,id,born,phone,sex,mobile\n1,11010519491231002X,1949-12-31,13812345678,男,1.38123E+10\n";
        let errors = rejection_of(&schema, "p.csv", text.as_bytes(), &opts());
        let all = format!("{errors:?}");
        assert!(all.contains("lost its digits"), "{all}");
        assert!(!all.contains("1.38123E+10"), "{all}");

        // A workbook's ID typed into a number cell: its digits masked too.
        use rust_xlsxwriter::Workbook;
        let mut book = Workbook::new();
        let ws = book.add_worksheet();
        for (c, h) in ["n", "id", "born", "phone", "sex"].iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        ws.write_number(1, 0, 1).unwrap();
        ws.write_number(1, 1, 110105194912310029.0).unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let errors = rejection_of(&schema, "p.xlsx", &bytes, &opts());
        let all = format!("{errors:?}");
        assert!(all.contains("more digits than the 15"), "{all}");
        assert!(!all.contains("1949123"), "{all}");
    }

    /// A NUL byte is in no UTF-8 or GBK text: a file holding one is
    /// refused by line and byte, as CSV and as JSON Lines, under any
    /// encoding that is not UTF-16, rather than stored inside a value.
    #[test]
    fn a_nul_byte_is_refused_by_line_and_byte() {
        let csv = "id,name,paid,born\n11010519491231002X,张\0三,1,\n";
        let json = "{\"id\":\"11010519491231002X\",\"name\":\"张三\"}\n\
                    {\"id\":\"110105194912310029\",\0\"name\":\"李四\"}\n";
        for (file, text, line, byte) in [("p.csv", csv, 2, 23), ("p.jsonl", json, 2, 28)] {
            for encoding in [Encoding::Auto, Encoding::Utf8, Encoding::Gbk] {
                let options = Options { encoding, ..opts() };
                let msg = parse(&schema(), Path::new(file), text.as_bytes(), &options)
                    .unwrap_err()
                    .to_string();
                assert!(
                    msg.contains(&format!(
                        "line {line}: byte {byte} of the line is a NUL byte (0x00)"
                    )),
                    "{file} {encoding:?}: {msg}"
                );
            }
        }
        // Written as JSON's escape, the same character: refused by line.
        let escaped = "{\"id\":\"11010519491231002X\",\"name\":\"张\\u0000三\"}\n";
        let msg = refusal("p.jsonl", escaped.as_bytes());
        assert!(
            msg.contains("p.jsonl:1") && msg.contains("NUL character"),
            "{msg}"
        );
    }

    /// A column without a name in the header (a trailing delimiter) is
    /// passed by without a word while it is empty; once it holds a value,
    /// a warning says the column is ignored, naming the line and not the
    /// value.
    #[test]
    fn a_nameless_column_holding_values_is_named_in_a_warning() {
        let quiet =
            "id,name,paid,born,\n11010519491231002X,张三,1,,\n110105194912310046,李四,2,, \n";
        let parsed = parse(&schema(), Path::new("p.csv"), quiet.as_bytes(), &opts()).unwrap();
        assert_eq!(parsed.rows.rows.len(), 2);
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        let loud =
            "id,name,paid,born,\n11010519491231002X,张三,1,,\n110105194912310046,李四,2,,秘密\n";
        let parsed = parse(&schema(), Path::new("p.csv"), loud.as_bytes(), &opts()).unwrap();
        assert_eq!(parsed.rows.rows.len(), 2);
        let said = format!("{:?}", parsed.warnings);
        assert_eq!(parsed.warnings.len(), 1, "{said}");
        assert_eq!(parsed.warnings[0].line, 3, "{said}");
        assert_eq!(
            parsed.warnings[0].field.as_deref(),
            Some("column 5"),
            "{said}"
        );
        assert!(
            parsed.warnings[0]
                .reason
                .starts_with("has no name in the header but holds values"),
            "{said}"
        );
        assert!(!said.contains("秘密"), "{said}");
    }

    #[test]
    fn duplicate_key_is_refused_with_both_lines() {
        let text = "id,name,paid,born\nA,a,1,\nA,b,2,\n";
        let msg = refusal("p.csv", text.as_bytes());
        assert!(
            msg.contains("duplicate primary key `A`") && msg.contains("line 2"),
            "{msg}"
        );
    }

    #[test]
    fn rows_are_counted_apart_from_problems_and_warnings_are_shown_with_them() {
        // Line 2: two bad fields, and an ID whose check digit is wrong;
        // line 3: one bad field.
        let text =
            "id,name,paid,born\n110105194912310021,a,lots,never\n11010519491231002X,b,1,never\n";
        let msg = refusal("p.csv", text.as_bytes());
        assert!(msg.contains("2 rows rejected (3 problems)"), "{msg}");
        assert!(
            msg.contains("warnings (the rows are kept once the file is accepted):")
                && msg.contains("p.csv:2: field `id`"),
            "{msg}"
        );
    }

    #[test]
    fn errors_past_the_limit_are_counted() {
        let mut text = String::from("id,name,paid,born\n");
        for i in 0..30 {
            text.push_str(&format!("K{i},n,bad,\n"));
        }
        let err = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("30 rows rejected (30 problems)") && msg.contains("and 10 more"),
            "{msg}"
        );
    }

    #[test]
    fn invalid_id_is_a_warning_not_an_error() {
        let text = "id,name,paid,born\n110105194912310021,a,1,\n";
        let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap();
        assert_eq!(parsed.warning_count, 1);
    }

    #[test]
    fn jsonl_rows_parse_and_bad_json_is_named() {
        let text = "{\"id\":\"A\",\"name\":\"x\",\"paid\":\"2.5\"}\nnot json\n";
        let err = parse(&schema(), Path::new("p.jsonl"), text.as_bytes(), &opts()).unwrap_err();
        assert!(err.to_string().contains("p.jsonl:2"), "{err}");
    }

    fn xlsx(rows: &[Vec<crate::dataset::xlsx::XlsxCell>]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.xlsx");
        crate::dataset::xlsx::write_xlsx(
            &path,
            "Sheet1",
            &["身份证号", "姓名", "paid", "born"],
            rows,
        )
        .unwrap();
        std::fs::read(path).unwrap()
    }

    #[test]
    fn xlsx_first_sheet_reads_with_aliases_numbers_and_date_cells() {
        use crate::dataset::xlsx::XlsxCell::*;
        let bytes = xlsx(&[
            vec![
                Text("11010519491231002X".into()),
                Text("张三".into()),
                Number(1234.5),
                Date(chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()),
            ],
            vec![Empty, Empty, Empty, Empty],
            vec![
                Text("110105194912310037".into()),
                Text("李四".into()),
                Number(7.0),
                Empty,
            ],
        ]);
        let parsed = parse(&schema(), Path::new("p.xlsx"), &bytes, &opts()).unwrap();
        assert_eq!(parsed.rows.rows.len(), 2);
        assert_eq!(parsed.rows.indexes["by_name"][0].0, "张三");
        let rec = jiandu_sdk::record::RecordRef::new(&parsed.rows.rows[0].1).unwrap();
        let text: Vec<String> = (0..4)
            .map(|i| rec.field(i).unwrap().unwrap().to_string())
            .collect();
        assert_eq!(text[2], "1234.5");
        assert_eq!(text[3], "2024-03-01");
    }

    #[test]
    fn a_workbook_claiming_more_than_the_limit_uncompressed_is_refused() {
        use crate::dataset::xlsx::XlsxCell::*;
        let mut bytes = xlsx(&[vec![Text("A".into()), Text("a".into()), Number(1.0), Empty]]);
        // Declare one part 4 GiB large in the zip directory, as a zip bomb
        // does (offset 24 of a central directory header: uncompressed size).
        let at = bytes
            .windows(4)
            .position(|w| w == b"PK\x01\x02")
            .expect("a central directory");
        bytes[at + 24..at + 28].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let err = parse(&schema(), Path::new("bomb.xlsx"), &bytes, &opts())
            .unwrap_err()
            .to_string();
        assert!(err.contains("once uncompressed"), "{err}");
        assert!(err.contains("bomb.xlsx"), "{err}");
    }

    /// Saved as CSV, a sheet whose ID numbers were numbers writes them as
    /// `1.10105E+17`: refused for a field checked as an ID number or a
    /// credit code (the digits are gone), not taken with a warning.
    #[test]
    fn an_id_number_a_spreadsheet_wrote_in_scientific_notation_is_refused() {
        for id in ["1.10105E+17", "1.10105194912E+17", "1E+17", "6.5e+17"] {
            let text = format!("id,name,paid,born\n{id},a,1,\n");
            let errors = rejection(text.as_bytes(), &opts());
            assert_eq!(errors[0].field.as_deref(), Some("id"), "{id}");
            assert!(errors[0].reason.contains("lost its digits"), "{errors:?}");
        }
        for text in ["1.1E17", "E+17", "1.E+17", "1.1E+", "ABE+12", "1.1E+1234"] {
            assert!(!is_scientific(text), "{text}");
        }
    }

    /// An 18-digit ID number typed into a number column keeps 15 digits:
    /// refused, saying why, rather than stored with the zeros the
    /// spreadsheet put in place of its last digits. Numbers that fit are
    /// read as their digits.
    #[test]
    fn xlsx_an_id_number_held_as_a_number_is_refused_as_lost_digits() {
        use crate::dataset::xlsx::XlsxCell::*;
        let bytes = xlsx(&[
            vec![
                Number(110105194912310037.0),
                Text("a".into()),
                Number(1.0),
                Empty,
            ],
            vec![Text("B".into()), Number(42.0), Number(2.0), Empty],
        ]);
        let errors = match parse(&schema(), Path::new("p.xlsx"), &bytes, &opts()) {
            Err(Error::IngestRejected { errors, .. }) => errors,
            other => panic!("{:?}", other.map(|p| p.rows.rows.len())),
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            (errors[0].line, errors[0].field.as_deref()),
            (2, Some("id"))
        );
        assert!(
            errors[0]
                .reason
                .contains("the number 110105194912310032, which has more digits than the 15"),
            "{errors:?}"
        );
        assert_eq!(number_as_text(42.0).unwrap(), "42");
        assert_eq!(number_as_text(350100.5).unwrap(), "350100.5");
        assert_eq!(
            number_as_text(999_999_999_999_999.0).unwrap(),
            "999999999999999"
        );
    }

    #[test]
    fn xlsx_bad_row_is_named_by_its_spreadsheet_row() {
        use crate::dataset::xlsx::XlsxCell::*;
        let bytes = xlsx(&[
            vec![Text("A".into()), Text("a".into()), Number(1.0), Empty],
            vec![
                Text("B".into()),
                Text("b".into()),
                Text("lots".into()),
                Empty,
            ],
        ]);
        let msg = refusal("p.xlsx", &bytes);
        assert!(msg.contains("p.xlsx:3: field `paid`"), "{msg}");
        assert!(msg.contains("nothing was ingested"), "{msg}");
    }

    #[test]
    fn xlsx_title_rows_above_the_header_are_skipped() {
        use crate::dataset::xlsx::XlsxCell::*;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.xlsx");
        crate::dataset::xlsx::write_xlsx(
            &path,
            "Sheet1",
            &["某某局数据导出（2024年）"],
            &[
                vec![Empty],
                vec![
                    Text("身份证号".into()),
                    Text("姓名".into()),
                    Text("paid".into()),
                ],
                vec![Text("A".into()), Text("a".into()), Text("x".into())],
            ],
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let born_absent = Options {
            allow_missing: vec!["born".into()],
            ..opts()
        };
        let msg = parse(&schema(), Path::new("p.xlsx"), &bytes, &born_absent)
            .unwrap_err()
            .to_string();
        // Title on row 1, a blank row 2, the header on row 3: the bad
        // value is on spreadsheet row 4.
        assert!(msg.contains("p.xlsx:4: field `paid`"), "{msg}");
    }

    /// Cells merged among the rows (an employer's name over its three
    /// rows, as report-style sheets have) are refused by their range: the
    /// rows under the first would be read with the field empty. A title
    /// merged above the header, or cells merged in a column no field
    /// reads, are fine.
    #[test]
    fn xlsx_cells_merged_among_the_rows_are_refused_by_their_range() {
        use rust_xlsxwriter::{Format, Workbook};
        let workbook = |merge_data: bool, merge_unread: bool| {
            let mut book = Workbook::new();
            let ws = book.add_worksheet();
            let plain = Format::new();
            ws.merge_range(0, 0, 0, 4, "某某局数据导出", &plain)
                .unwrap();
            for (c, h) in ["身份证号", "姓名", "paid", "born", "备注"]
                .iter()
                .enumerate()
            {
                ws.write_string(1, c as u16, *h).unwrap();
            }
            for (r, id) in [
                "110105194912310037",
                "11010519491231002X",
                "110105194912310029",
            ]
            .iter()
            .enumerate()
            {
                let r = r as u32 + 2;
                ws.write_string(r, 0, *id).unwrap();
                ws.write_number(r, 2, 1.5).unwrap();
                if !merge_data {
                    ws.write_string(r, 1, "张三").unwrap();
                }
            }
            if merge_data {
                ws.merge_range(2, 1, 4, 1, "张三", &plain).unwrap();
            }
            if merge_unread {
                ws.merge_range(2, 4, 4, 4, "同一单位", &plain).unwrap();
            }
            book.save_to_buffer().unwrap()
        };
        for unread in [false, true] {
            let bytes = workbook(false, unread);
            let parsed = parse(&schema(), Path::new("p.xlsx"), &bytes, &opts())
                .unwrap_or_else(|e| panic!("{unread}: {e}"));
            assert_eq!(parsed.rows.rows.len(), 3);
        }
        let errors = match parse(
            &schema(),
            Path::new("p.xlsx"),
            &workbook(true, false),
            &opts(),
        ) {
            Err(Error::IngestRejected { errors, .. }) => errors,
            other => panic!("{other:?}"),
        };
        let merged: Vec<&RowError> = errors
            .iter()
            .filter(|e| e.reason.contains("are merged"))
            .collect();
        assert_eq!(merged.len(), 1, "{errors:?}");
        assert_eq!(merged[0].line, 3);
        assert!(
            merged[0].reason.contains("cells B3:B5 are merged"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_workbook_is_refused_by_name() {
        let msg = parse(&schema(), Path::new("p.xlsx"), b"id,name\n", &opts())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("p.xlsx") && msg.contains(".xlsx workbook"),
            "{msg}"
        );
    }

    /// Everything reading `text` `read_size` bytes at a time gives.
    fn read_in_chunks(text: &str, read_size: usize) -> String {
        let schema = schema();
        let dir = tempfile::tempdir().unwrap();
        let mut builder = RowBuilder::new(&schema, dir.path(), true, None);
        let mut problems = Problems::new(5);
        let mut input = text.as_bytes();
        let path = Path::new("p.csv");
        let mut chunker = Chunker::new(&mut input, path, true).with_read_size(read_size);
        let mut decoding = Decoding::new(Encoding::Auto);
        let (records, spaces) = read_csv(
            path,
            &[],
            &mut chunker,
            &mut decoding,
            &mut builder,
            &mut problems,
        )
        .unwrap();
        let rows = builder.finish(path, 5).unwrap().collect(&schema);
        let account = chunker.scanner().account(records, spaces);
        format!(
            "{:?} {} {:?} {} {rows:?} {account:?}",
            problems.errors, problems.total, problems.warnings, problems.warning_count
        )
    }

    /// A sorted entry: (key, tag, value).
    type Entry = (Vec<u8>, u64, Vec<u8>);

    /// The entries of pseudonym runs, by run, in order, each once (a
    /// `#clear` entry may be gathered more than once).
    fn pseudonym_entries(runs: PseudonymRuns) -> BTreeMap<String, Vec<Entry>> {
        runs.runs
            .into_iter()
            .map(|(run, (_, sorter))| {
                let mut merged = sorter.finish().unwrap();
                let mut entries: Vec<Entry> = Vec::new();
                while let Some(e) = merged.next().unwrap() {
                    entries.push((e.key.to_vec(), e.tag, e.value.to_vec()));
                }
                entries.dedup();
                (run, entries)
            })
            .collect()
    }

    /// The builder hands a row's personal values to the pseudonym runs as
    /// the text of its cells; the entries are those gathered by decoding
    /// the row's record: values of every type (decimals and dates written
    /// as stored, floats and bools as they print), absent values, a
    /// personal key part, and indexes over personal fields.
    #[test]
    fn pseudonym_entries_from_cells_are_those_from_encoded_records() {
        let schema = Schema::parse(
            "p.toml",
            r#"
name = "people"
department = "公安"
primary_key = ["region", "id"]
[[fields]]
name = "region"
type = "string"
[[fields]]
name = "id"
type = "string"
personal = "id"
[[fields]]
name = "name"
type = "string"
personal = "name"
[[fields]]
name = "code"
type = "int"
personal = "other"
[[fields]]
name = "amount"
type = "decimal"
personal = "other"
[[fields]]
name = "born"
type = "date"
personal = "other"
[[fields]]
name = "flag"
type = "bool"
personal = "other"
[[fields]]
name = "ratio"
type = "float"
personal = "other"
[indexes]
by_id = "id"
by_code = "code"
by_region = "region"
"#,
        )
        .unwrap();
        let mut text = String::from("region,id,name,code,amount,born,flag,ratio\n");
        for i in 0..3_000u64 {
            let name = if i % 7 == 0 {
                String::new()
            } else {
                format!("张{}", i % 50)
            };
            let code = if i % 11 == 0 {
                String::new()
            } else {
                (i % 300).to_string()
            };
            let amount = ["1,234.50", "0.10", "7", ""][(i % 4) as usize];
            let born = ["2024/01/02", "20240103", "2024-01-04", ""][(i % 4) as usize];
            let flag = ["是", "否", "TRUE", ""][(i % 4) as usize];
            let ratio = ["0.1", "1e3", "-2.50", ""][(i % 4) as usize];
            text.push_str(&format!(
                "{},6501{i:06}X,{name},{code},\"{amount}\",{born},{flag},{ratio}\n",
                "65".repeat(1 + (i % 3) as usize)
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let p = Pseudonymizer::from_secret(b"test secret");
        let mut builder = RowBuilder::new(&schema, dir.path(), true, Some(&p));
        let mut problems = Problems::new(5);
        let mut input = text.as_bytes();
        let path = Path::new("p.csv");
        // Many chunks, read on threads.
        let mut chunker = Chunker::new(&mut input, path, true).with_read_size(4096);
        let mut decoding = Decoding::new(Encoding::Auto);
        let rows = read_csv(
            path,
            &[],
            &mut chunker,
            &mut decoding,
            &mut builder,
            &mut problems,
        )
        .unwrap();
        assert_eq!((rows, problems.total), ((3_000, 0), 0));
        let rows = builder.finish(path, 5).unwrap();

        let mut decoded = PseudonymEntries::new(&schema, &p, dir.path(), false);
        let mut records = rows.records.finish().unwrap();
        while let Some(e) = records.next().unwrap() {
            decoded.add(e.key, e.value).unwrap();
        }
        let from_cells = pseudonym_entries(rows.pseudonyms.unwrap());
        let from_records = pseudonym_entries(decoded.finish());
        assert_eq!(
            from_cells.keys().collect::<Vec<_>>(),
            ["#by_code", "#by_id", "#clear", "#key"]
        );
        for (run, entries) in &from_records {
            assert!(entries.len() > 2_000, "{run}: {}", entries.len());
            assert!(from_cells[run] == *entries, "{run}");
        }
    }

    #[test]
    fn json_lines_read_in_chunks_on_threads_give_the_same_rows_and_problems() {
        let mut text = String::new();
        for i in 0..200 {
            match i {
                17 => text.push_str("{\"id\": \"K017\", \"paid\": \"lots\"}\n"),
                60 => text.push_str("not json\n"),
                90 => text.push('\n'),
                _ => text.push_str(&format!(
                    "{{\"id\": \"K{i:03}\", \"姓名\": \"n{i}\", \"paid\": \"{i}.5\"}}\n"
                )),
            }
        }
        let read = |read_size: usize| {
            let schema = schema();
            let dir = tempfile::tempdir().unwrap();
            let mut builder = RowBuilder::new(&schema, dir.path(), true, None);
            let mut problems = Problems::new(5);
            let mut input = text.as_bytes();
            let path = Path::new("p.jsonl");
            let mut chunker = Chunker::new(&mut input, path, false).with_read_size(read_size);
            read_jsonl(path, &mut chunker, &mut builder, &mut problems).unwrap();
            let rows = builder.finish(path, 5).unwrap().collect(&schema).unwrap();
            let keys: Vec<String> = rows.rows.iter().map(|r| r.0.clone()).collect();
            let errors: Vec<(u64, Option<String>)> = problems
                .errors
                .iter()
                .map(|e| (e.line, e.field.clone()))
                .collect();
            (keys, errors, problems.total, problems.rows)
        };
        let whole = read(1 << 20);
        assert_eq!(whole.0.len(), 197);
        assert_eq!(whole.1, [(18, Some("paid".to_string())), (61, None)]);
        for size in [1, 7, 64, 300] {
            assert_eq!(read(size), whole, "read {size} bytes at a time");
        }
    }

    #[test]
    fn csv_read_in_chunks_gives_the_same_rows_problems_and_lines() {
        for newline in ["\n", "\r\n", "\r"] {
            for bad in [false, true] {
                // The last column has no name, and now and then a value
                // (warned about once, whatever the parts).
                let mut lines = vec!["id,name,paid,born,extra,".to_string()];
                for i in 0..60 {
                    let nameless = if i % 9 == 4 { "v" } else { "" };
                    lines.push(match i {
                        7 if bad => "K007,a,lots,2024-01-01,x,".into(),
                        23 if bad => "K003,dup,1,,x,".into(),
                        31 if bad => "K031,a,1,,x,y,z".into(),
                        12 | 40 => String::new(),
                        17 => format!("K017,\"two{newline}lines, \"\"quoted\"\"\",1,,x,"),
                        _ => format!(
                            "K{i:03},n{},{i}.5,2024/01/{:02},x,{nameless}",
                            i % 3,
                            i % 28 + 1
                        ),
                    });
                }
                let text = lines.join(newline) + newline;
                let whole = read_in_chunks(&text, 1 << 20);
                assert!(whole.contains("duplicate primary key") == bad, "{whole}");
                assert!(whole.contains("continuations: 1"), "{whole}");
                for read_size in [1, 2, 3, 7, 16, 50, 99, 400] {
                    let chunked = read_in_chunks(&text, read_size);
                    // Compared without printing both (they are long).
                    let differs = chunked
                        .split(' ')
                        .zip(whole.split(' '))
                        .find(|(a, b)| a != b);
                    assert!(chunked == whole, "{newline:?} by {read_size}: {differs:?}");
                }
                // Warnings are numbered by the lines of the file, whatever
                // ends them (line 3 is the second record: K001).
                assert!(
                    whole.contains("line: 3, field: Some(\"id\")"),
                    "{newline:?}"
                );
            }
        }
    }

    /// The names (field 1) of a file's rows, in key order.
    fn names_of(text: &str) -> Vec<String> {
        let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap();
        parsed
            .rows
            .rows
            .iter()
            .map(|(_, r)| {
                let rec = jiandu_sdk::record::RecordRef::new(r).unwrap();
                rec.field(1)
                    .unwrap()
                    .map_or(String::new(), |v| v.to_string())
            })
            .collect()
    }

    #[test]
    fn quoted_fields_are_read_as_the_csv_crate_reads_them() {
        let text = "id,name,paid,born\r\n\
                    A,\"comma, inside\",1,\r\n\
                    B,\"doubled \"\"quote\"\"\",1,\r\n\
                    C,\"closed\"  ,1,\n\
                    D,mid\"quote,1,\r\
                    E,\"line\nbreak\",1,\n\
                    F,\"\",1,\n\
                    G,\"\"\"\",1,";
        assert_eq!(
            names_of(text),
            [
                "comma, inside",
                "doubled \"quote\"",
                "closed",
                "mid\"quote",
                "line\nbreak",
                "",
                "\""
            ]
        );
    }

    /// Text after a field's closing quote (`"王"五`) means the quotes were
    /// text: the csv reader would drop them (`王五`), so the row is refused,
    /// saying how to write it; spaces after the quote are not text.
    #[test]
    fn text_after_a_closing_quote_is_refused_rather_than_its_quotes_dropped() {
        let text = "id,name,paid,born\n\
                    11010519491231002X,\"王\"五,1,\n\
                    110105194912310029,王五,\"1\" ,\"1949-12-31\"x\n";
        let errors = rejection(text.as_bytes(), &opts());
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!((errors[0].line, errors[1].line), (2, 3), "{errors:?}");
        // `name` is personal: shown masked whole.
        assert!(
            errors[0].reason.starts_with(
                "column 2: text after the closing quote of a quoted field (`王*`, personal, masked): a quote inside a field is written `\"\"` inside a quoted field"
            ),
            "{errors:?}"
        );
        assert!(
            errors[1].reason.starts_with("column 4: text `x`"),
            "{errors:?}"
        );
    }

    #[test]
    fn damaged_utf8_in_a_later_chunk_is_named_by_its_line_and_byte() {
        let mut text = String::from("id,name,paid,born\n");
        for i in 0..40 {
            text.push_str(&format!("K{i:03},张三,1.50,\n"));
        }
        let at = text.find("K030,张").unwrap() + 5;
        let bytes = [&text.as_bytes()[..at], b"\xFF", &text.as_bytes()[at..]].concat();
        for read_size in [7, 64, 1 << 20] {
            let schema = schema();
            let dir = tempfile::tempdir().unwrap();
            let mut builder = RowBuilder::new(&schema, dir.path(), true, None);
            let mut input = bytes.as_slice();
            let path = Path::new("p.csv");
            let mut chunker = Chunker::new(&mut input, path, true).with_read_size(read_size);
            let mut decoding = Decoding::new(Encoding::Auto);
            let mut problems = Problems::new(5);
            let err = read_csv(
                path,
                &[],
                &mut chunker,
                &mut decoding,
                &mut builder,
                &mut problems,
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("line 32: is not valid UTF-8 (byte 6 of the line, 0xFF)"),
                "{read_size}: {err}"
            );
        }
    }

    #[test]
    fn a_record_longer_than_ingest_reads_is_refused_by_its_line() {
        use crate::dataset::stream::{CHUNK_BYTES, MAX_RECORD_BYTES};
        // Longer by more than a read: its end is not seen before the limit.
        let long = "x".repeat(MAX_RECORD_BYTES + 2 * CHUNK_BYTES);
        let text = format!("id,name,paid,born\nA,a,1,\nB,{long},1,\n");
        let err = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3: the record starting here runs past 32 MiB"),
            "{err}"
        );
    }

    #[test]
    fn index_entries_are_sorted_by_value_then_key() {
        let text = "id,name,paid,born\nC,b,,\nA,b,,\nB,a,,\nD,,,\nE,b,,\n";
        let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap();
        let keys: Vec<&str> = parsed.rows.rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(keys, ["A", "B", "C", "D", "E"]);
        let entries: Vec<(&str, &str)> = parsed.rows.indexes["by_name"]
            .iter()
            .map(|(v, k)| (v.as_str(), k.as_str()))
            .collect();
        assert_eq!(entries, [("a", "B"), ("b", "A"), ("b", "C"), ("b", "E")]);
    }

    fn decimal_cell(text: &str) -> Option<String> {
        let field = &schema().fields[2];
        match parse_cell(field, Some(text)) {
            Ok(Cell::Decimal(s)) => Some(s.into_owned()),
            Ok(_) => unreachable!("a decimal field gives decimals"),
            Err(_) => None,
        }
    }

    #[test]
    fn decimals_are_stored_as_decimal_prints_them() {
        let general = |text: &str| {
            let exact = if text.contains(['e', 'E']) {
                Decimal::from_scientific(&text.replace(',', ""))
            } else {
                Decimal::from_str_exact(&text.replace(',', ""))
            };
            exact.ok().map(|d| d.to_string())
        };
        for text in [
            "0",
            "-1",
            "12.50",
            "0.00",
            "-0",
            "-0.00",
            "007",
            "1,234.5",
            "+3",
            ".5",
            "5.",
            "1_000",
            "1e5",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "12345678901234567890.5",
            "0.1234567890123456789",
            "--1",
            "-",
            ".",
            "1.2.3",
        ] {
            assert_eq!(decimal_cell(text), general(text), "{text}");
        }
        // Every short text over these characters.
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            texts = texts
                .iter()
                .flat_map(|t| ["-", "0", ".", "1", "9"].map(|c| format!("{t}{c}")))
                .collect();
            for text in &texts {
                assert_eq!(decimal_cell(text), general(text), "{text}");
            }
        }
    }

    /// Thousands separators are read only where they group thousands, a
    /// decimal is never rounded to fit, and a whole number may carry
    /// them too: each either reads as the number written or is refused.
    #[test]
    fn numbers_are_read_as_written_or_refused() {
        for (text, stored) in [
            ("1,234.50", Some("1234.50")),
            ("-1,234,567", Some("-1234567")),
            ("123,456", Some("123456")),
            ("12,34", None),
            ("1,23.4,5", None),
            ("1234,56", None),
            (",123", None),
            ("1,2345", None),
            ("1.234,5", None),
            (
                "0.1234567890123456789012345678",
                Some("0.1234567890123456789012345678"),
            ),
            ("0.12345678901234567890123456789012", None),
            ("1e-30", None),
            ("1.5e3", Some("1500")),
        ] {
            assert_eq!(decimal_cell(text).as_deref(), stored, "{text}");
        }
        let refused = |text: &str| match parse_cell(&schema().fields[2], Some(text)) {
            Err(e) => e,
            Ok(_) => panic!("{text} read"),
        };
        let err = refused("12,34");
        assert!(err.contains("a comma may only group thousands"), "{err}");
        for text in ["¥1,234.50", "￥1,234.50", "1,234.50元", "$12"] {
            let err = refused(text);
            assert!(err.contains("without its currency sign"), "{text}: {err}");
        }
        for text in ["(1,234.50)", "（1,234.50）"] {
            let err = refused(text);
            assert!(err.contains("write it with a minus sign"), "{text}: {err}");
        }
        let err = refused("99999999999999999999999999999");
        assert!(
            err.contains("more digits than a decimal field holds"),
            "{err}"
        );
        let err = refused("0.12345678901234567890123456789012");
        assert!(
            err.contains("more digits than a decimal field holds"),
            "{err}"
        );

        let int = Field {
            ty: FieldType::Int,
            ..schema().fields[2].clone()
        };
        let whole = |text: &str| match parse_cell(&int, Some(text)) {
            Ok(Cell::Int(n)) => Ok(n),
            Ok(_) => unreachable!("an int field gives ints"),
            Err(e) => Err(e),
        };
        for (text, n) in [
            ("1,000", 1000),
            ("-12,345,678", -12345678),
            ("7.0", 7),
            ("7.", 7),
            ("+3", 3),
            ("007", 7),
        ] {
            assert_eq!(whole(text), Ok(n), "{text}");
        }
        for text in ["7.5", "1,00", "12,34", "1e3", "7.0.0", ""] {
            assert!(whole(text).is_err(), "{text}");
        }
        let err = whole("99999999999999999999").expect_err("refused");
        assert!(err.contains("too large for a whole number"), "{err}");
    }

    /// A sheet's totals row at the foot of an export is refused by its
    /// line, in CSV (whatever its column count) and in a workbook, not
    /// stored as one more record; a record merely starting with such
    /// characters is not mistaken for one.
    #[test]
    fn a_totals_row_is_refused_by_its_line_not_stored_as_a_record() {
        let head =
            "id,name,paid,born\n11010519491231002X,张三,1.50,\n110105194912310029,李四,2.00,\n";
        for (totals, column) in [
            ("合计,,3.50,\n", 1),
            (",合 计：,3.50,\n", 2),
            ("合计（元）,3.50\n", 1),
            ("Total,,3.50,\n", 1),
            ("\"总计\",,3.50,", 1),
        ] {
            let text = format!("{head}{totals}");
            let errors = match parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()) {
                Err(Error::IngestRejected { errors, .. }) => errors,
                other => panic!("{totals:?}: {other:?}"),
            };
            assert_eq!(errors.len(), 1, "{totals:?}: {errors:?}");
            assert_eq!(errors[0].line, 4, "{totals:?}");
            assert!(
                errors[0].reason.contains(&format!(
                    "in column {column}: the row looks like the sheet's totals"
                )),
                "{totals:?}: {errors:?}"
            );
        }
        for name in ["合计科技", "小计划", "summary"] {
            let text = format!("id,name,paid,born\n11010519491231002X,{name},1.50,\n");
            let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts());
            assert!(parsed.is_ok(), "{name}");
        }
        use crate::dataset::xlsx::XlsxCell::*;
        let bytes = xlsx(&[
            vec![
                Text("110105194912310037".into()),
                Text("张三".into()),
                Number(1.5),
                Empty,
            ],
            vec![Text("合计".into()), Empty, Number(1.5), Empty],
        ]);
        let errors = match parse(&schema(), Path::new("p.xlsx"), &bytes, &opts()) {
            Err(Error::IngestRejected { errors, .. }) => errors,
            other => panic!("{other:?}"),
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].reason.contains("the sheet's totals"),
            "{errors:?}"
        );
    }

    /// A workbook's number reads as the spreadsheet shows it (15
    /// significant digits), not as the binary fraction a formula left.
    #[test]
    fn workbook_numbers_read_as_the_spreadsheet_shows_them() {
        use crate::dataset::xlsx::XlsxCell::*;
        for (f, shown) in [
            (1.1 * 3.0, "3.3"),
            (0.1 + 0.2, "0.3"),
            (-(0.1 + 0.2), "-0.3"),
            (1234.5, "1234.5"),
            (9084.0 * 0.015, "136.26"),
            (123456789.123456, "123456789.123456"),
            (0.000123, "0.000123"),
            (1e-20, "0.00000000000000000001"),
        ] {
            assert_eq!(shown_number(f), shown, "{f:?}");
        }
        let bytes = xlsx(&[vec![
            Text("110105194912310037".into()),
            Text("张三".into()),
            Number(1.1 * 3.0),
            Empty,
        ]]);
        let parsed = parse(&schema(), Path::new("p.xlsx"), &bytes, &opts()).unwrap();
        let rec = jiandu_sdk::record::RecordRef::new(&parsed.rows.rows[0].1).unwrap();
        assert_eq!(rec.field(2).unwrap().unwrap().to_string(), "3.3");
    }

    /// A hidden first sheet (stale data, a lookup table) is passed by:
    /// the rows are the first visible worksheet's.
    #[test]
    fn a_workbook_is_read_from_its_first_visible_worksheet() {
        use rust_xlsxwriter::Workbook;
        let mut book = Workbook::new();
        for (name, id) in [
            ("旧数据", "110105194912310029"),
            ("导出", "110105194912310037"),
        ] {
            let ws = book.add_worksheet();
            ws.set_name(name).unwrap();
            for (c, h) in ["身份证号", "姓名", "paid", "born"].iter().enumerate() {
                ws.write_string(0, c as u16, *h).unwrap();
            }
            ws.write_string(1, 0, id).unwrap();
        }
        book.worksheet_from_index(1).unwrap().set_active(true);
        book.worksheet_from_index(0).unwrap().set_hidden(true);
        let bytes = book.save_to_buffer().unwrap();
        let parsed = parse(&schema(), Path::new("p.xlsx"), &bytes, &opts()).unwrap();
        let rec = jiandu_sdk::record::RecordRef::new(&parsed.rows.rows[0].1).unwrap();
        assert_eq!(
            rec.field(0).unwrap().unwrap().to_string(),
            "110105194912310037"
        );
    }

    /// A record past what one stored record holds is refused by its
    /// line, naming its longest field.
    #[test]
    fn a_record_too_long_to_store_names_its_longest_field() {
        let text = format!(
            "id,name,paid,born\n110105194912310037,{},1,2000-01-01\n",
            "名".repeat(30_000)
        );
        let errors = match parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()) {
            Err(Error::IngestRejected { errors, .. }) => errors,
            other => panic!("{other:?}"),
        };
        assert_eq!(errors[0].line, 2);
        assert!(
            errors[0].reason.contains(
                "at most 64 KiB of values, and its longest field, `name`, has 90000 bytes"
            ),
            "{errors:?}"
        );
    }

    /// A workbook whose formulas have no saved result (as programs that
    /// write workbooks without computing them leave them) is refused: its
    /// cells would read as empty. One with results is read.
    #[test]
    fn a_workbook_with_formulas_but_no_saved_results_is_refused() {
        use rust_xlsxwriter::{Formula, Workbook};
        let mut book = Workbook::new();
        let ws = book.add_worksheet();
        for (c, h) in ["身份证号", "姓名", "paid", "born", "备注"]
            .iter()
            .enumerate()
        {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        ws.write_string(1, 0, "110105194912310037").unwrap();
        ws.write_formula(1, 1, Formula::new("=\"张\"&\"三\"").set_result("张三"))
            .unwrap();
        ws.write_formula(1, 2, Formula::new("=1+1").set_result("2"))
            .unwrap();
        let with_results = book.save_to_buffer().unwrap();
        let parsed = parse(&schema(), Path::new("p.xlsx"), &with_results, &opts()).unwrap();
        let rec = jiandu_sdk::record::RecordRef::new(&parsed.rows.rows[0].1).unwrap();
        assert_eq!(rec.field(2).unwrap().unwrap().to_string(), "2");

        // The same workbook with each formula's `<v>` taken out, plain
        // and as a self-closing shared formula.
        for shared in [false, true] {
            let bytes = rewrite_sheet(&with_results, |xml| {
                let mut out = String::new();
                let mut rest = xml;
                while let Some(f) = rest.find("<f>") {
                    out.push_str(&rest[..f]);
                    let f_end = rest[f..].find("</f>").unwrap() + f + 4;
                    let after = &rest[f_end..];
                    let v_end = if after.starts_with("<v>") {
                        after.find("</v>").unwrap() + 4
                    } else {
                        0
                    };
                    out.push_str(if shared {
                        "<f t=\"shared\" si=\"0\"/>"
                    } else {
                        &rest[f..f_end]
                    });
                    rest = &after[v_end..];
                }
                out.push_str(rest);
                out
            });
            let e = parse(&schema(), Path::new("p.xlsx"), &bytes, &opts())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("holds formulas without a saved result"),
                "{shared}: {e}"
            );
        }
    }

    /// `bytes`, a workbook, with its first worksheet's XML passed through
    /// `edit` (the parts stored, not deflated).
    fn rewrite_sheet(bytes: &[u8], edit: impl Fn(&str) -> String) -> Vec<u8> {
        use std::io::{Read, Write};
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for i in 0..archive.len() {
            let mut part = archive.by_index(i).unwrap();
            let name = part.name().unwrap().to_string();
            let mut data = Vec::new();
            part.read_to_end(&mut data).unwrap();
            if name == "xl/worksheets/sheet1.xml" {
                data = edit(std::str::from_utf8(&data).unwrap()).into_bytes();
            }
            out.start_file(name, stored).unwrap();
            out.write_all(&data).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    /// A JSON number with a fraction is read as a binary float: one with
    /// more significant digits than a float carries exactly is refused
    /// in a decimal, whole-number or text field, naming the fix.
    #[test]
    fn json_numbers_are_stored_as_written_never_through_a_float() {
        let line = |paid: &str| format!("{{\"id\":\"11010519491231002X\",\"paid\":{paid}}}\n");
        for (paid, stored) in [
            ("1.5", "1.5"),
            // The decimals written are kept, as from CSV.
            ("12.30", "12.30"),
            ("100.00", "100.00"),
            ("1234567.89", "1234567.89"),
            ("123456789012.345", "123456789012.345"),
            // More digits than a float carries: as written, not rounded.
            ("12345678901234567.89", "12345678901234567.89"),
            ("98765432109876.54321", "98765432109876.54321"),
            ("0.10000000000000001", "0.10000000000000001"),
            // An exponent is written out, its digits kept.
            ("1e20", "100000000000000000000"),
            ("1.2300E-5", "0.000012300"),
            ("-0", "0"),
        ] {
            let parsed = parse(
                &schema(),
                Path::new("p.jsonl"),
                line(paid).as_bytes(),
                &opts(),
            )
            .unwrap_or_else(|e| panic!("{paid}: {e}"));
            let rec = jiandu_sdk::record::RecordRef::new(&parsed.rows.rows[0].1).unwrap();
            assert_eq!(rec.field(2).unwrap().unwrap().to_string(), stored, "{paid}");
        }
        // The same rows from CSV and from JSON Lines store the same bytes.
        let csv = parse(
            &schema(),
            Path::new("p.csv"),
            "id,name,paid,born\n11010519491231002X,,12.30,\n".as_bytes(),
            &opts(),
        )
        .unwrap();
        let json = parse(
            &schema(),
            Path::new("p.jsonl"),
            line("12.30").as_bytes(),
            &opts(),
        )
        .unwrap();
        assert_eq!(csv.rows.rows[0].1, json.rows.rows[0].1);
        // Strings with escapes are read as the text they stand for.
        let escaped = parse(
            &schema(),
            Path::new("p.jsonl"),
            "{\"id\":\"11010519491231002X\",\"name\":\"\\u738b\\\"\u{4e94}\",\"paid\":true}\n"
                .as_bytes(),
            &opts(),
        );
        let errors = match escaped {
            Err(Error::IngestRejected { errors, .. }) => errors,
            other => panic!("{other:?}"),
        };
        // (`true` is no decimal: the only problem.)
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field.as_deref(), Some("paid"));
        let parsed = parse(
            &schema(),
            Path::new("p.jsonl"),
            "{\"id\":\"11010519491231002X\",\"name\":\"\\u738b\\\"\u{4e94}\",\"paid\":null}\n"
                .as_bytes(),
            &opts(),
        )
        .unwrap();
        let rec = jiandu_sdk::record::RecordRef::new(&parsed.rows.rows[0].1).unwrap();
        assert_eq!(rec.field(1).unwrap().unwrap().to_string(), "王\"五");
        // A number beyond any decimal is refused by field, not rounded.
        let errors = match parse(
            &schema(),
            Path::new("p.jsonl"),
            line("1e40").as_bytes(),
            &opts(),
        ) {
            Err(Error::IngestRejected { errors, .. }) => errors,
            other => panic!("{other:?}"),
        };
        assert_eq!(errors[0].field.as_deref(), Some("paid"));
        assert!(
            errors[0].reason.contains("does not fit a decimal"),
            "{errors:?}"
        );
    }

    #[test]
    fn dates_are_stored_as_the_general_parser_prints_them() {
        let field = &schema().fields[3];
        for y in ["0000", "0001", "1999", "2024", "2100", "9999", "20x4"] {
            for m in 0..=13 {
                for d in 0..=32 {
                    let text = format!("{y}-{m:02}-{d:02}");
                    let cell = match parse_cell(field, Some(&text)) {
                        Ok(Cell::Date(s)) => Some(s.into_owned()),
                        Ok(_) => unreachable!("a date field gives dates"),
                        Err(_) => None,
                    };
                    let general = parse_date(&text).map(|d| d.format("%Y-%m-%d").to_string());
                    assert_eq!(cell, general, "{text}");
                }
            }
        }
    }

    #[test]
    fn bools_in_any_case_and_in_chinese() {
        let mut field = schema().fields[1].clone();
        field.ty = FieldType::Bool;
        for (text, value) in [
            ("TRUE", true),
            ("Yes", true),
            ("是", true),
            ("F", false),
            ("否", false),
        ] {
            assert!(matches!(parse_cell(&field, Some(text)), Ok(Cell::Bool(b)) if b == value));
        }
        assert!(parse_cell(&field, Some("是的")).is_err());
    }

    #[test]
    fn dates_in_department_formats() {
        for t in [
            "2024-03-01",
            "2024/03/01",
            "20240301",
            "2024年3月1日",
            "2024.3.1",
        ] {
            assert_eq!(parse_date(t).unwrap().to_string(), "2024-03-01", "{t}");
        }
        // A year of fewer than four digits is not read as the year 24.
        let field = &schema().fields[3];
        for t in ["24/3/1", "99-3-1", "124-03-01", "240301", "24年3月1日"] {
            assert_eq!(parse_date(t), None, "{t}");
            let err = match parse_cell(field, Some(t)) {
                Err(e) => e,
                Ok(_) => panic!("{t} read"),
            };
            if t != "240301" {
                assert!(err.contains("write the year with four"), "{t}: {err}");
            }
        }
    }
}
