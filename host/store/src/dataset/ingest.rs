//! Ingest: department files (CSV in UTF-8, UTF-8 with BOM or GBK; JSON
//! Lines; Excel `.xlsx`, first sheet) validated row by row against the
//! dataset's schema, committed as a new version only if every row is valid.

use super::schema::{Check, Field, FieldType, Schema};
use super::{join_key, NewVersion, SortedRows, VersionInfo};
use crate::{Error, Result, Store};
use jiandu_sdk::record::{encode_into, Value};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

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
    /// UTF-8 with a BOM, else UTF-8 if valid, else GBK.
    Auto,
    Utf8,
    Gbk,
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

/// The message of [`Error::IngestRejected`].
pub fn describe_rejection(file: &Path, errors: &[RowError], total: usize) -> String {
    let mut s = format!(
        "{}: {total} bad row{}; nothing was ingested",
        file.display(),
        if total == 1 { "" } else { "s" }
    );
    for e in errors {
        let _ = write!(s, "\n  {}:{}", file.display(), e.line);
        if let Some(f) = &e.field {
            let _ = write!(s, ": field `{f}`");
        }
        let _ = write!(s, ": {}", e.reason);
    }
    if total > errors.len() {
        let _ = write!(s, "\n  … and {} more", total - errors.len());
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

impl LineAccount {
    /// Counts the lines of CSV `text` as the csv reader splits them (`\r\n`,
    /// `\n` or a lone `\r` ends a line), with `records` records read after
    /// a one-line header; why not, if they do not add up.
    pub fn of(text: &str, records: u64) -> std::result::Result<LineAccount, String> {
        let mut account = LineAccount {
            lines: 0,
            header: 1,
            records,
            continuations: 0,
            blank: 0,
        };
        let bytes = text.as_bytes();
        let (mut quoted, mut field_start, mut line_empty) = (false, true, true);
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'\r' || b == b'\n' {
                if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                account.lines += 1;
                if quoted {
                    account.continuations += 1;
                } else {
                    if line_empty {
                        account.blank += 1;
                    }
                    field_start = true;
                }
                line_empty = true;
                i += 1;
                continue;
            }
            line_empty = false;
            if b == b'"' {
                if quoted && bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                if quoted || field_start {
                    quoted = !quoted;
                }
            }
            field_start = !quoted && b == b',';
            i += 1;
        }
        if !line_empty {
            account.lines += 1;
        }
        let counted = account.header + account.records + account.continuations + account.blank;
        if counted == account.lines {
            Ok(account)
        } else {
            Err(format!(
                "the file has {} lines, but {counted} are accounted for (the header, {} records, {} continuation lines inside quoted fields, {} blank lines): lines would be lost; nothing was ingested",
                account.lines, account.records, account.continuations, account.blank
            ))
        }
    }
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
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    // Hashing a large file takes a while: do it beside the parse.
    let (parsed, source_sha256) = std::thread::scope(|scope| {
        let sha256 = scope.spawn(|| hex::encode(Sha256::digest(&bytes)));
        let parsed = parse(schema, path, &bytes, opts);
        (parsed, sha256.join().expect("hashing does not panic"))
    });
    let parsed = parsed?;
    let staged = super::stage_version(
        store,
        name,
        parsed.rows,
        NewVersion {
            append: opts.append,
            schema: opts.schema.as_ref(),
            source: &path.display().to_string(),
            source_sha256,
            operator: &opts.operator,
            warnings: parsed.warning_count as u64,
        },
    )?;
    let report = Report {
        dataset: name.to_string(),
        version: staged.info.clone(),
        warnings: parsed.warnings,
        warning_count: parsed.warning_count,
        lines: parsed.lines,
    };
    Ok((staged, report))
}

/// A file parsed and validated, not yet stored.
#[derive(Debug)]
pub struct Parsed {
    pub rows: SortedRows,
    pub warnings: Vec<RowError>,
    pub warning_count: usize,
    /// Where every line of a CSV file went.
    pub lines: Option<LineAccount>,
}

/// Collects row problems up to the limit.
struct Problems {
    max: usize,
    errors: Vec<RowError>,
    total: usize,
    warnings: Vec<RowError>,
    warning_count: usize,
}

impl Problems {
    fn new(max: usize) -> Self {
        Problems {
            max,
            errors: Vec::new(),
            total: 0,
            warnings: Vec::new(),
            warning_count: 0,
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
        let room = self.max - self.warnings.len();
        self.warnings
            .extend(other.warnings.into_iter().take(room).map(shift));
        self.warning_count += other.warning_count;
    }

    fn error(&mut self, line: u64, field: Option<&str>, reason: String) {
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

/// Parses and validates a whole file; any bad row rejects the file.
pub fn parse(schema: &Schema, path: &Path, bytes: &[u8], opts: &Options) -> Result<Parsed> {
    let format = opts
        .format
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| Error::file(path, "unknown file type; use --format csv|jsonl|xlsx"))?;
    let mut problems = Problems::new(opts.max_errors);
    let mut builder = RowBuilder::new(schema);
    let mut csv_text = None;
    match format {
        Format::Csv => {
            let text = decode_text(path, bytes, opts.encoding)?;
            let parts = if text.len() < PARALLEL_CSV_BYTES {
                1
            } else {
                std::thread::available_parallelism().map_or(1, usize::from)
            };
            read_csv(schema, path, &text, parts, &mut builder, &mut problems)?;
            csv_text = Some(text);
        }
        Format::Jsonl => {
            let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
                .map_err(|e| Error::file(path, format!("JSON Lines must be UTF-8: {e}")))?;
            read_jsonl(path, text, &mut builder, &mut problems)?;
        }
        Format::Xlsx => read_xlsx(schema, path, bytes, &mut builder, &mut problems)?,
    }
    let rows = builder.finish(&mut problems);
    if problems.total > 0 {
        return Err(Error::IngestRejected {
            file: path.to_path_buf(),
            errors: problems.errors,
            total: problems.total,
        });
    }
    let lines = csv_text
        .map(|text| LineAccount::of(&text, rows.rows.len() as u64))
        .transpose()
        .map_err(|why| Error::file(path, why))?;
    Ok(Parsed {
        rows,
        warnings: problems.warnings,
        warning_count: problems.warning_count,
        lines,
    })
}

/// Decodes CSV text: BOM → UTF-8; valid UTF-8 → UTF-8; otherwise GBK.
pub fn decode_text<'a>(path: &Path, bytes: &'a [u8], encoding: Encoding) -> Result<Cow<'a, str>> {
    let gbk = |bytes: &'a [u8]| -> Result<Cow<'a, str>> {
        let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(bytes);
        if had_errors {
            return Err(Error::file(
                path,
                "is neither valid UTF-8 nor valid GBK; use --encoding",
            ));
        }
        Ok(text)
    };
    match encoding {
        Encoding::Gbk => gbk(bytes),
        Encoding::Utf8 | Encoding::Auto => {
            let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            match std::str::from_utf8(body) {
                Ok(s) => Ok(Cow::Borrowed(s)),
                Err(e) if encoding == Encoding::Utf8 || mostly_utf8(body) => {
                    Err(not_utf8(path, body, &e))
                }
                Err(_) => gbk(bytes),
            }
        }
    }
}

/// Whether text that is not valid UTF-8 is still mostly UTF-8: most of its
/// non-ASCII bytes form valid UTF-8 characters. Such a file is UTF-8 with
/// a few damaged bytes, not GBK (whose bytes seldom happen to be valid
/// UTF-8), and reading it as GBK would turn every character into another.
fn mostly_utf8(bytes: &[u8]) -> bool {
    let (mut valid, mut invalid) = (0usize, 0usize);
    for chunk in bytes.utf8_chunks() {
        valid += chunk.valid().bytes().filter(|b| !b.is_ascii()).count();
        invalid += chunk.invalid().len();
    }
    valid > 0 && valid >= invalid * 4
}

/// An invalid UTF-8 sequence, named by line and byte of the line.
fn not_utf8(path: &Path, body: &[u8], e: &std::str::Utf8Error) -> Error {
    let at = e.valid_up_to();
    let before = &body[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    Error::file(
        path,
        format!(
            "line {line}: is not valid UTF-8 (byte {} of the line, 0x{:02X}); fix the file, or if it is GBK, ingest it with --encoding gbk",
            at - line_start + 1,
            body[at]
        ),
    )
}

/// Where a quoted field that is never closed opens in `text`, read as the
/// csv reader reads it: a field is quoted when it starts with `"`, `""`
/// inside it is a quote, and anything after its closing quote belongs to
/// it. Such a field runs to the end of the file, swallowing every line
/// after it.
fn unclosed_quote(text: &[u8]) -> Option<usize> {
    #[derive(Clone, Copy)]
    enum State {
        FieldStart,
        Plain,
        Quoted(usize),
        QuoteInQuoted(usize),
    }
    let ends_field = |b: u8| matches!(b, b',' | b'\n' | b'\r');
    let mut state = State::FieldStart;
    for (i, &b) in text.iter().enumerate() {
        state = match state {
            State::FieldStart if b == b'"' => State::Quoted(i),
            State::FieldStart | State::Plain | State::QuoteInQuoted(_) if ends_field(b) => {
                State::FieldStart
            }
            State::QuoteInQuoted(at) if b == b'"' => State::Quoted(at),
            State::FieldStart | State::Plain | State::QuoteInQuoted(_) => State::Plain,
            State::Quoted(at) if b == b'"' => State::QuoteInQuoted(at),
            State::Quoted(at) => State::Quoted(at),
        };
    }
    match state {
        State::Quoted(at) => Some(at),
        _ => None,
    }
}

/// CSV text at least this large is read by a thread per core.
const PARALLEL_CSV_BYTES: usize = 4 << 20;

/// Reads CSV text, in up to `parts` parts read by threads of their own
/// (see [`split_lines`]); rows, problems and line numbers are the same as
/// from one reader.
fn read_csv(
    schema: &Schema,
    path: &Path,
    text: &str,
    parts: usize,
    builder: &mut RowBuilder,
    problems: &mut Problems,
) -> Result<()> {
    let parts = split_lines(text, parts);
    let mut reader = csv_reader(parts[0], true);
    let headers = reader
        .headers()
        .map_err(|e| Error::file(path, format!("cannot read the header row: {e}")))?
        .clone();
    let columns = map_header(schema, headers.iter(), 1, problems);
    if problems.total > 0 {
        return Ok(());
    }
    let (width, max_errors) = (headers.len(), problems.max);
    std::thread::scope(|scope| {
        let others: Vec<_> = parts[1..]
            .iter()
            .map(|part| {
                let columns = &columns;
                scope.spawn(move || {
                    let mut builder = RowBuilder::new(schema);
                    let mut problems = Problems::new(max_errors);
                    let mut reader = csv_reader(part, false);
                    let read = read_rows(
                        part,
                        &mut reader,
                        width,
                        columns,
                        &mut builder,
                        &mut problems,
                    );
                    (read, builder, problems)
                })
            })
            .collect();
        let mut read = read_rows(parts[0], &mut reader, width, &columns, builder, problems);
        for other in others {
            let (other_read, other_builder, other_problems) =
                other.join().expect("reading rows does not panic");
            // Past an unreadable record the file is not read, as when one
            // reader reads it all.
            if read.complete {
                let line_offset = read.lines - 1;
                builder.append(other_builder, line_offset);
                problems.append(other_problems, line_offset);
                read = Read {
                    lines: line_offset + other_read.lines,
                    complete: other_read.complete,
                };
            }
        }
    });
    Ok(())
}

/// Splits CSV text into up to `parts` parts of about the same size, if it
/// has no quotes (then every line end ends a record; else it is one part).
/// A part starts right after the byte that ends a record (the `\r` of
/// `\r\n`), where a reader of the whole text would start reading its next
/// record, so that the lines a reader of the part counts add up to the
/// same numbers.
fn split_lines(text: &str, parts: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    if parts <= 1 || bytes.contains(&b'"') {
        return vec![text];
    }
    let line_end = |b: u8| b == b'\n' || b == b'\r';
    let mut chunks = Vec::with_capacity(parts);
    let mut start = 0;
    for i in 1..parts {
        let target = (bytes.len() * i / parts).max(start + 1);
        if target >= bytes.len() {
            break;
        }
        let Some(found) = bytes[target..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let mut end = target + found;
        while end > start && line_end(bytes[end - 1]) {
            end -= 1;
        }
        if end == start {
            break;
        }
        chunks.push(&text[start..=end]);
        start = end + 1;
    }
    chunks.push(&text[start..]);
    chunks
}

fn csv_reader(text: &str, has_headers: bool) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(has_headers)
        .flexible(true)
        .from_reader(text.as_bytes())
}

/// How far a reader got: the line it stopped on, and whether that is the
/// end of its text rather than an unreadable record.
struct Read {
    lines: u64,
    complete: bool,
}

/// The line a record starts on, from the reader's position of it in
/// `text`. The csv reader counts a line when it consumes a `\n`, but it
/// ends a record on the `\r` of a `\r\n` and starts the next one on the
/// `\n` (BurntSushi/rust-csv#395); so do blank lines. Line breaks between
/// the reported position and the record's first character are counted here.
fn record_line(text: &str, pos: &csv::Position) -> u64 {
    let rest = text
        .as_bytes()
        .get(pos.byte() as usize..)
        .unwrap_or_default();
    let skipped = rest
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .filter(|b| **b == b'\n')
        .count();
    pos.line() + skipped as u64
}

/// Reads the records of `reader` (over `text`), `width` cells each, into
/// `builder`.
fn read_rows(
    text: &str,
    reader: &mut csv::Reader<&[u8]>,
    width: usize,
    columns: &[Option<usize>],
    builder: &mut RowBuilder,
    problems: &mut Problems,
) -> Read {
    let mut record = csv::StringRecord::new();
    let mut last_start = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                problems.error(line, None, format!("unreadable CSV: {e}"));
                return Read {
                    lines: line,
                    complete: false,
                };
            }
        }
        last_start = record.position().map_or(0, |p| p.byte() as usize);
        if reader.position().byte() as usize >= text.len() {
            if let Some(read) = refuse_unclosed_quote(text, last_start, problems) {
                return read;
            }
        }
        let line = record.position().map_or(0, |p| record_line(text, p));
        if record.len() != width {
            problems.error(
                line,
                None,
                format!("has {} columns, the header has {width}", record.len()),
            );
            continue;
        }
        let cells: Vec<Option<&str>> = columns.iter().map(|c| c.map(|c| &record[c])).collect();
        builder.add(line, &cells, problems);
    }
    if let Some(read) = refuse_unclosed_quote(text, last_start, problems) {
        return read;
    }
    Read {
        lines: reader.position().line(),
        complete: true,
    }
}

/// A quote that never closes makes the rest of the file one field of the
/// last record (the one starting at byte `start`): refused at the line the
/// quote opens on, not stored as one long value.
fn refuse_unclosed_quote(text: &str, start: usize, problems: &mut Problems) -> Option<Read> {
    let at = start + unclosed_quote(&text.as_bytes()[start..])?;
    let line = text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1;
    let swallowed = text[at..]
        .trim_end_matches(['\r', '\n'])
        .bytes()
        .filter(|&b| b == b'\n')
        .count();
    problems.error(
        line,
        None,
        format!(
            "a quote opens here and is never closed: the {swallowed} line(s) after it would be read as part of one field; close the quote (a quote inside a quoted field is written \"\")"
        ),
    );
    Some(Read {
        lines: line,
        complete: false,
    })
}

/// Column position of each schema field, from a header row (found on
/// `line`) of field names or aliases.
fn map_header<'h>(
    schema: &Schema,
    headers: impl Iterator<Item = &'h str>,
    line: u64,
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
        match schema
            .fields
            .iter()
            .position(|f| f.name == header || f.aliases.iter().any(|a| a == header))
        {
            Some(i) if columns[i].is_some() => {
                problems.error(
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
            problems.error(
                line,
                Some(&f.name),
                format!(
                    "required column is missing from the header (found: {}; accepted names: {names})",
                    found.join(", ")
                ),
            );
        } else {
            problems.warn(
                line,
                &f.name,
                format!(
                    "optional column is missing from the header, so the field is empty in every record (accepted names: {names}); a misspelt header leaves it empty too"
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

/// Refuses a workbook whose parts, as its zip directory declares them,
/// add up to more than [`MAX_XLSX_UNCOMPRESSED`].
fn check_xlsx_size(path: &Path, bytes: &[u8]) -> Result<()> {
    let unreadable = |e: zip::result::ZipError| {
        Error::file(path, format!("is not a readable .xlsx workbook: {e}"))
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(unreadable)?;
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
                bytes.len() >> 20,
                MAX_XLSX_UNCOMPRESSED >> 20
            ),
        ));
    }
    Ok(())
}

/// Title rows an Excel export may have above its header row.
const XLSX_TITLE_ROWS: usize = 5;

/// Reads the first sheet of an Excel workbook: its first row that names a
/// field (after at most [`XLSX_TITLE_ROWS`] title rows) is the header; rows
/// are named by their spreadsheet row numbers.
fn read_xlsx(
    schema: &Schema,
    path: &Path,
    bytes: &[u8],
    builder: &mut RowBuilder,
    problems: &mut Problems,
) -> Result<()> {
    use calamine::{Data, Reader};
    check_xlsx_size(path, bytes)?;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| Error::file(path, format!("is not a readable .xlsx workbook: {e}")))?;
    let range = match book.worksheet_range_at(0) {
        None => return Err(Error::file(path, "the workbook has no sheet")),
        Some(r) => r.map_err(|e| Error::file(path, format!("cannot read the first sheet: {e}")))?,
    };
    let Some((first_row, _)) = range.start() else {
        return Err(Error::file(path, "the first sheet is empty"));
    };
    // Exports often put a title above the header: the header is the first
    // of the top rows that names a field, else the first row.
    let known = |cell: &Data| {
        let text = cell.to_string();
        let text = text.trim();
        schema
            .fields
            .iter()
            .any(|f| f.name == text || f.aliases.iter().any(|a| a == text))
    };
    let skip = range
        .rows()
        .take(XLSX_TITLE_ROWS + 1)
        .position(|r| r.iter().any(known))
        .unwrap_or(0);
    let mut rows = range.rows().skip(skip);
    let header_line = u64::from(first_row) + 1 + skip as u64;
    let Some(header) = rows.next() else {
        return Err(Error::file(path, "the first sheet is empty"));
    };
    let header: Vec<String> = header.iter().map(|c| c.to_string()).collect();
    let columns = map_header(
        schema,
        header.iter().map(String::as_str),
        header_line,
        problems,
    );
    if problems.total > 0 {
        return Ok(());
    }
    let mut texts: Vec<Option<String>> = Vec::with_capacity(columns.len());
    for (i, row) in rows.enumerate() {
        let line = header_line + 1 + i as u64;
        if row.iter().all(|c| matches!(c, Data::Empty)) {
            continue;
        }
        texts.clear();
        let mut bad = false;
        for (field, col) in schema.fields.iter().zip(&columns) {
            let cell = col.and_then(|c| row.get(c)).unwrap_or(&Data::Empty);
            texts.push(match xlsx_cell_text(cell) {
                Ok(t) => t,
                Err(reason) => {
                    problems.error(line, Some(&field.name), reason);
                    bad = true;
                    None
                }
            });
        }
        if bad {
            continue;
        }
        let cells: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
        builder.add(line, &cells, problems);
    }
    Ok(())
}

/// The text of a spreadsheet cell as the schema's parsers expect it: whole
/// numbers without `.0`, dates as `YYYY-MM-DD`, date-times as
/// `YYYY-MM-DD HH:MM:SS`.
fn xlsx_cell_text(cell: &calamine::Data) -> std::result::Result<Option<String>, String> {
    use calamine::Data;
    Ok(match cell {
        Data::Empty => None,
        Data::String(s) => Some(s.clone()),
        Data::Int(i) => Some(i.to_string()),
        Data::Float(f) if !f.is_finite() => return Err(format!("`{f}` is not a number")),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
        Data::Float(f) => Some(f.to_string()),
        Data::Bool(b) => Some(b.to_string()),
        Data::DateTime(dt) if dt.is_datetime() => {
            let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
            if (h, mi, s) == (0, 0, 0) {
                Some(format!("{y:04}-{mo:02}-{d:02}"))
            } else {
                Some(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
            }
        }
        Data::DateTime(dt) => Some(dt.as_f64().to_string()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Some(s.clone()),
        Data::Error(e) => return Err(format!("the cell holds the spreadsheet error {e}")),
    })
}

/// Reads JSON Lines: one object per line, each field's value under its
/// name (else its first alias present); keys the schema does not know are
/// skipped without building a value for them.
fn read_jsonl(
    path: &Path,
    text: &str,
    builder: &mut RowBuilder,
    problems: &mut Problems,
) -> Result<()> {
    let mut names: HashMap<&str, (usize, usize)> = HashMap::new();
    for (i, f) in builder.schema.fields.iter().enumerate() {
        for (rank, n) in std::iter::once(&f.name).chain(&f.aliases).enumerate() {
            names.entry(n.as_str()).or_insert((i, rank));
        }
    }
    let fields = builder.schema.fields.len();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let read = serde::de::DeserializeSeed::deserialize(
            JsonLine {
                names: &names,
                fields,
            },
            &mut de,
        )
        .and_then(|cells| de.end().map(|()| cells));
        let cells = match read {
            Ok(cells) => cells,
            Err(e) => {
                problems.error(line_no, None, format!("not a JSON object: {e}"));
                continue;
            }
        };
        let mut bad = false;
        for (f, cell) in builder.schema.fields.iter().zip(&cells) {
            if let Some((_, JsonCell::Nested(kind))) = cell {
                problems.error(
                    line_no,
                    Some(&f.name),
                    format!("a nested {kind} is not allowed"),
                );
                bad = true;
            }
        }
        if bad {
            continue;
        }
        let cells: Vec<Option<&str>> = cells
            .iter()
            .map(|c| match c {
                Some((_, JsonCell::Text(t))) => Some(t.as_ref()),
                _ => None,
            })
            .collect();
        builder.add(line_no, &cells, problems);
    }
    let _ = path;
    Ok(())
}

/// One field's value on a JSON line.
enum JsonCell<'a> {
    /// A string, number or boolean, as text.
    Text(Cow<'a, str>),
    Null,
    /// An object or array (refused).
    Nested(&'static str),
}

/// Reads one JSON object into a cell per schema field: `names` maps each
/// field name and alias to (field, rank: 0 for the name, then the
/// aliases in order); the lowest rank present wins.
struct JsonLine<'n> {
    names: &'n HashMap<&'n str, (usize, usize)>,
    fields: usize,
}

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
            match self.names.get(key.as_ref()) {
                Some(&(field, rank)) => {
                    let value = map.next_value_seed(JsonScalar)?;
                    if cells[field].as_ref().is_none_or(|(r, _)| rank <= *r) {
                        cells[field] = Some((rank, value));
                    }
                }
                None => {
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

/// One value of a known field: a scalar as text, without building a
/// generic value.
struct JsonScalar;

impl<'de> serde::de::DeserializeSeed<'de> for JsonScalar {
    type Value = JsonCell<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonScalar {
    type Value = JsonCell<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string, number, boolean or null")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(JsonCell::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(JsonCell::Text(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Self::Value, E> {
        Ok(JsonCell::Text(Cow::Owned(v)))
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Self::Value, E> {
        Ok(JsonCell::Text(Cow::Borrowed(if v {
            "true"
        } else {
            "false"
        })))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(JsonCell::Text(Cow::Owned(v.to_string())))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Ok(JsonCell::Text(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Self::Value, E> {
        // Spelt as serde_json spells a number it parsed.
        Ok(JsonCell::Text(Cow::Owned(
            serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()),
        )))
    }

    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(JsonCell::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(JsonCell::Null)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(JsonCell::Nested("object"))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(JsonCell::Nested("array"))
    }
}

/// Validates cells, encodes records and collects index entries.
struct RowBuilder<'s> {
    schema: &'s Schema,
    key_fields: Vec<usize>,
    indexes: Vec<IndexBuilder>,
    /// Valid rows in file order: (primary key, encoded record).
    rows: Vec<(String, Vec<u8>)>,
    /// The line each of `rows` came from.
    lines: Vec<u64>,
    /// Scratch buffers reused from row to row.
    record: Vec<u8>,
    text: String,
}

/// The entries of one secondary index while rows are added. Values are
/// interned: an indexed field often has a handful of distinct values over
/// millions of rows, and sorting by a value's rank and the row's position
/// is far cheaper than sorting (value, key) string pairs.
struct IndexBuilder {
    name: String,
    field: usize,
    ids: HashMap<Box<str>, u32>,
    /// Per row of [`RowBuilder::rows`]: the id of its value, if it has one,
    /// and a copy of its key (empty without a value). The copy is made as
    /// the row is added, while the key is in the cache; copying it in key
    /// order later means a cache miss per row.
    row_values: Vec<Option<u32>>,
    keys: Vec<String>,
}

impl IndexBuilder {
    fn intern(&mut self, value: &str) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = u32::try_from(self.ids.len())
            .expect("fewer than 2³² distinct values: each is a row held in memory");
        self.ids.insert(value.into(), id);
        id
    }

    fn push(&mut self, value: Option<&str>, key: &str) {
        let id = value.map(|v| self.intern(v));
        self.row_values.push(id);
        self.keys
            .push(id.map_or_else(String::new, |_| key.to_string()));
    }

    /// Adds the rows of `other`, which follow.
    fn append(&mut self, other: IndexBuilder) {
        let mut ids = vec![0; other.ids.len()];
        for (value, id) in &other.ids {
            ids[*id as usize] = self.intern(value);
        }
        self.row_values.extend(
            other
                .row_values
                .into_iter()
                .map(|v| v.map(|id| ids[id as usize])),
        );
        self.keys.extend(other.keys);
    }

    /// The (value, primary key) entries, sorted, given the rows' positions
    /// in key order (`order[p]` is the row at sorted position `p`).
    fn finish(mut self, order: &[usize]) -> Vec<(String, String)> {
        let mut values: Vec<(Box<str>, u32)> = self.ids.into_iter().collect();
        values.sort_unstable();
        let mut rank = vec![0; values.len()];
        for (r, (_, id)) in values.iter().enumerate() {
            rank[*id as usize] = r;
        }
        // The rows' ranks and keys in key order, each gathered by a loop of
        // its own so that its cache misses overlap.
        let ranks: Vec<Option<usize>> = order
            .iter()
            .map(|&row| self.row_values[row].map(|id| rank[id as usize]))
            .collect();
        let mut keys: Vec<String> = order
            .iter()
            .map(|&row| std::mem::take(&mut self.keys[row]))
            .collect();
        // A counting sort by rank keeps each value's keys in key order.
        let mut start = vec![0; values.len() + 1];
        for r in ranks.iter().flatten() {
            start[r + 1] += 1;
        }
        for r in 1..start.len() {
            start[r] += start[r - 1];
        }
        let mut next = start.clone();
        let mut positions = vec![0; start[values.len()]];
        for (p, r) in ranks.iter().enumerate() {
            if let Some(r) = *r {
                positions[next[r]] = p;
                next[r] += 1;
            }
        }
        let mut entries = Vec::with_capacity(positions.len());
        for (r, (value, _)) in values.iter().enumerate() {
            for &p in &positions[start[r]..start[r + 1]] {
                entries.push((value.to_string(), std::mem::take(&mut keys[p])));
            }
        }
        entries
    }
}

/// A validated cell value.
enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    /// Canonical text: borrowed when the file already has it.
    Decimal(Cow<'a, str>),
    /// `YYYY-MM-DD`: borrowed when the file already has it.
    Date(Cow<'a, str>),
}

impl<'s> RowBuilder<'s> {
    fn new(schema: &'s Schema) -> Self {
        RowBuilder {
            schema,
            key_fields: schema.key_indexes(),
            indexes: schema
                .indexes
                .iter()
                .map(|(name, f)| IndexBuilder {
                    name: name.clone(),
                    field: schema.field_index(f).expect("checked at parse"),
                    ids: HashMap::new(),
                    row_values: Vec::new(),
                    keys: Vec::new(),
                })
                .collect(),
            rows: Vec::new(),
            lines: Vec::new(),
            record: Vec::new(),
            text: String::new(),
        }
    }

    fn add(&mut self, line: u64, raw: &[Option<&str>], problems: &mut Problems) {
        let mut cells: Vec<Cell<'_>> = Vec::with_capacity(raw.len());
        let mut ok = true;
        for (field, raw) in self.schema.fields.iter().zip(raw) {
            let text = raw.map(str::trim).filter(|s| !s.is_empty());
            match parse_cell(field, text) {
                Ok(cell) => {
                    if let (Some(check), Cell::Str(s)) = (field.check, &cell) {
                        let problem = match check {
                            Check::CreditCode => crate::ids::credit_code_problem(s),
                            Check::CitizenId => crate::ids::citizen_id_problem(s),
                        };
                        if let Some(p) = problem {
                            problems.warn(line, &field.name, p);
                        }
                    }
                    cells.push(cell)
                }
                Err(reason) => {
                    problems.error(line, Some(&field.name), reason);
                    ok = false;
                    cells.push(Cell::Null);
                }
            }
        }
        if !ok {
            return;
        }
        let mut key_parts = Vec::with_capacity(self.key_fields.len());
        for &k in &self.key_fields {
            let part = cell_text(&cells[k]).unwrap_or_default();
            if part.bytes().any(|b| b < b' ') {
                problems.error(
                    line,
                    Some(&self.schema.fields[k].name),
                    "key contains control characters".into(),
                );
                return;
            }
            key_parts.push(part);
        }
        let key = join_key(&key_parts);
        let values: Vec<Option<Value<'_>>> = cells.iter().map(|c| Some(cell_value(c))).collect();
        self.record.clear();
        if let Err(e) = encode_into(&mut self.record, &values) {
            problems.error(line, None, e.to_string());
            return;
        }
        for index in &mut self.indexes {
            let value = match &cells[index.field] {
                Cell::Null => None,
                Cell::Str(s) => Some(*s),
                Cell::Decimal(s) | Cell::Date(s) => Some(&**s),
                other => {
                    self.text.clear();
                    self.text
                        .push_str(&cell_text(other).expect("not null, so it has a text"));
                    Some(self.text.as_str())
                }
            };
            index.push(value, &key);
        }
        self.rows.push((key, self.record.clone()));
        self.lines.push(line);
    }

    /// Adds the rows of `other`, which follow, numbered from their own
    /// part of the file: `line_offset` lines precede it.
    fn append(&mut self, other: RowBuilder, line_offset: u64) {
        self.rows.extend(other.rows);
        self.lines
            .extend(other.lines.into_iter().map(|l| l + line_offset));
        for (index, other) in self.indexes.iter_mut().zip(other.indexes) {
            index.append(other);
        }
    }

    fn finish(self, problems: &mut Problems) -> SortedRows {
        let RowBuilder {
            schema,
            indexes,
            mut rows,
            lines,
            ..
        } = self;
        // Sort row numbers by key, comparing a big-endian prefix of the key
        // first; the file order breaks ties so that duplicates are reported
        // in the order of their lines.
        let mut by_key: Vec<(u128, usize)> = rows
            .iter()
            .enumerate()
            .map(|(i, (key, _))| (key_prefix(key), i))
            .collect();
        by_key.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| rows[a.1].0.cmp(&rows[b.1].0))
                .then(a.1.cmp(&b.1))
        });
        for pair in by_key.windows(2) {
            let ((prefix, first), (next_prefix, second)) = (pair[0], pair[1]);
            if prefix == next_prefix && rows[first].0 == rows[second].0 {
                problems.error(
                    lines[second],
                    Some(&schema.primary_key.join("+")),
                    format!(
                        "duplicate primary key `{}` (also on line {})",
                        rows[second].0.replace(super::block::KEY_SEP, "+"),
                        lines[first]
                    ),
                );
            }
        }
        let order: Vec<usize> = by_key.into_iter().map(|(_, i)| i).collect();
        if problems.total > 0 {
            // The file is refused: nothing to sort for.
            return SortedRows {
                rows: Vec::new(),
                indexes: BTreeMap::new(),
            };
        }
        // Each index is built by a thread of its own beside the rows.
        std::thread::scope(|scope| {
            let indexes: Vec<_> = indexes
                .into_iter()
                .filter(|index| index.row_values.iter().any(Option::is_some))
                .map(|index| {
                    let order = &order;
                    scope.spawn(move || (index.name.clone(), index.finish(order)))
                })
                .collect();
            let rows = order
                .iter()
                .map(|&i| std::mem::take(&mut rows[i]))
                .collect();
            let indexes = indexes
                .into_iter()
                .map(|index| index.join().expect("building an index does not panic"))
                .collect();
            SortedRows { rows, indexes }
        })
    }
}

/// The first 16 bytes of `key`, zero-padded, as a big-endian number: keys
/// whose prefixes differ compare as their prefixes do.
fn key_prefix(key: &str) -> u128 {
    let mut prefix = [0; 16];
    let n = key.len().min(16);
    prefix[..n].copy_from_slice(&key.as_bytes()[..n]);
    u128::from_be_bytes(prefix)
}

fn cell_text<'a>(cell: &'a Cell<'a>) -> Option<Cow<'a, str>> {
    match cell {
        Cell::Null => None,
        Cell::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Cell::Int(i) => Some(Cow::Owned(i.to_string())),
        Cell::Float(f) => Some(Cow::Owned(f.to_string())),
        Cell::Str(s) => Some(Cow::Borrowed(s)),
        Cell::Decimal(s) | Cell::Date(s) => Some(Cow::Borrowed(s)),
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
        FieldType::String => Ok(Cell::Str(text)),
        FieldType::Int => text
            .parse::<i64>()
            .map(Cell::Int)
            .map_err(|_| format!("`{text}` is not a whole number")),
        FieldType::Float => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Cell::Float(f)),
            _ => Err(format!("`{text}` is not a number")),
        },
        FieldType::Decimal if is_canonical_decimal(text) => Ok(Cell::Decimal(Cow::Borrowed(text))),
        FieldType::Decimal => {
            let plain: Cow<'_, str> = if text.contains(',') {
                Cow::Owned(text.replace(',', ""))
            } else {
                Cow::Borrowed(text)
            };
            Decimal::from_str(&plain)
                .map(|d| Cell::Decimal(Cow::Owned(d.to_string())))
                .map_err(|_| format!("`{text}` is not a decimal number"))
        }
        FieldType::Date if is_iso_date(text) => Ok(Cell::Date(Cow::Borrowed(text))),
        FieldType::Date => parse_date(text)
            .map(|d| Cell::Date(Cow::Owned(d.format("%Y-%m-%d").to_string())))
            .ok_or_else(|| format!("`{text}` is not a date (YYYY-MM-DD)")),
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
/// 2024年3月1日.
pub fn parse_date(text: &str) -> Option<chrono::NaiveDate> {
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日", "%Y.%m.%d"]
        .iter()
        .find_map(|f| chrono::NaiveDate::parse_from_str(text, f).ok())
}

/// The path where a schema given by name is looked up.
pub fn schema_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn rejection(text: &[u8], opts: &Options) -> Vec<RowError> {
        match parse(&schema(), Path::new("p.csv"), text, opts) {
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
        // A file without a final line break, and one with a bare CR.
        let account = LineAccount::of("h\r1\r2", 2).unwrap();
        assert_eq!((account.lines, account.blank), (3, 0));
        // A count that does not add up is refused, with the counts.
        let err = LineAccount::of("h\n1\n2\n", 1).unwrap_err();
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
        assert_eq!(unclosed_quote(b"a,\"b\"\"\",c"), None);
        assert_eq!(unclosed_quote(b"a,\"b\"x\"y,c"), None);
        assert_eq!(unclosed_quote(b"a,\"b\"\",c"), Some(2));
        assert_eq!(unclosed_quote(b"\""), Some(0));
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
        let parsed = parse(
            &schema(),
            Path::new("p.csv"),
            "id,nmae,paid\n11010519491231002X,张三,1.50\n".as_bytes(),
            &opts(),
        )
        .unwrap();
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
            said.contains("Some(\"name\"): optional column is missing") && said.contains("`姓名`"),
            "{said}"
        );
        assert!(
            said.contains("Some(\"born\"): optional column is missing"),
            "{said}"
        );
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
        assert!(msg.contains("1 bad row"), "{msg}");
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
    fn duplicate_key_is_refused_with_both_lines() {
        let text = "id,name,paid,born\nA,a,1,\nA,b,2,\n";
        let msg = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("duplicate primary key `A`") && msg.contains("line 2"),
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
            msg.contains("30 bad rows") && msg.contains("and 10 more"),
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
        let msg = parse(&schema(), Path::new("p.xlsx"), &bytes, &opts())
            .unwrap_err()
            .to_string();
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
        let msg = parse(&schema(), Path::new("p.xlsx"), &bytes, &opts())
            .unwrap_err()
            .to_string();
        // Title on row 1, a blank row 2, the header on row 3: the bad
        // value is on spreadsheet row 4.
        assert!(msg.contains("p.xlsx:4: field `paid`"), "{msg}");
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

    /// Everything reading `text` in `parts` parts gives.
    fn read_in_parts(text: &str, parts: usize) -> String {
        let schema = schema();
        let mut builder = RowBuilder::new(&schema);
        let mut problems = Problems::new(5);
        read_csv(
            &schema,
            Path::new("p.csv"),
            text,
            parts,
            &mut builder,
            &mut problems,
        )
        .unwrap();
        let rows = builder.finish(&mut problems);
        format!(
            "{:?} {} {:?} {} {rows:?}",
            problems.errors, problems.total, problems.warnings, problems.warning_count
        )
    }

    #[test]
    fn csv_read_in_parts_gives_the_same_rows_problems_and_lines() {
        for newline in ["\n", "\r\n"] {
            for bad in [false, true] {
                let mut lines = vec!["id,name,paid,born,extra".to_string()];
                for i in 0..60 {
                    lines.push(match i {
                        7 if bad => "K007,a,lots,2024-01-01,x".into(),
                        23 if bad => "K003,dup,1,,x".into(),
                        31 if bad => "K031,a,1,,x,y".into(),
                        12 | 40 => String::new(),
                        _ => format!("K{i:03},n{},{i}.5,2024/01/{:02},x", i % 3, i % 28 + 1),
                    });
                }
                let text = lines.join(newline) + newline;
                assert_eq!(split_lines(&text, 4).len(), 4);
                let whole = read_in_parts(&text, 1);
                assert!(whole.contains("duplicate primary key") == bad, "{whole}");
                for parts in 2..=7 {
                    assert_eq!(read_in_parts(&text, parts), whole, "{parts} parts");
                }
            }
        }
    }

    #[test]
    fn csv_with_quotes_is_read_in_one_part() {
        assert_eq!(split_lines("id,name\n\"A\nB\",x\nC,y\n", 2).len(), 1);
    }

    #[test]
    fn index_entries_are_sorted_by_value_then_key() {
        let text = "id,name\nC,b\nA,b\nB,a\nD,\nE,b\n";
        let parsed = parse(&schema(), Path::new("p.csv"), text.as_bytes(), &opts()).unwrap();
        let keys: Vec<&str> = parsed.rows.rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(keys, ["A", "B", "C", "D", "E"]);
        let entries: Vec<(&str, &str)> = parsed.rows.indexes["by_name"]
            .iter()
            .map(|(v, k)| (v.as_str(), k.as_str()))
            .collect();
        assert_eq!(entries, [("a", "B"), ("b", "A"), ("b", "C"), ("b", "E")]);
    }

    #[test]
    fn keys_sort_by_prefix_as_by_text() {
        let mut keys = vec![
            "",
            "a",
            "a\u{1f}b",
            "aaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaab",
            "aaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaab",
            "b",
            "张三",
            "张三\u{1f}1",
            "91652922YMW0000001",
            "91652922YMW0000001X",
            "91652922YMW000000",
        ];
        let mut by_prefix = keys.clone();
        by_prefix.sort_by(|a, b| key_prefix(a).cmp(&key_prefix(b)).then(a.cmp(b)));
        keys.sort();
        assert_eq!(by_prefix, keys);
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
            Decimal::from_str(&text.replace(',', ""))
                .ok()
                .map(|d| d.to_string())
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
        for t in ["2024-03-01", "2024/03/01", "20240301", "2024年3月1日"] {
            assert_eq!(parse_date(t).unwrap().to_string(), "2024-03-01", "{t}");
        }
    }
}
