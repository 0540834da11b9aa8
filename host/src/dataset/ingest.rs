//! Ingest: department files (CSV in UTF-8, UTF-8 with BOM or GBK; JSON
//! Lines; Excel `.xlsx`, first sheet) validated row by row against the
//! dataset's schema, committed as a new version only if every row is valid.

use super::schema::{Check, Field, FieldType, Schema};
use super::{join_key, NewVersion, SortedRows, VersionInfo};
use crate::{Error, Result, Store};
use jiandu_sdk::record::{encode_into, Value};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::BTreeMap;
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: None,
            encoding: Encoding::Auto,
            max_errors: DEFAULT_MAX_ERRORS,
            operator: crate::run::default_operator(),
            append: false,
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
}

/// Ingests `path` into dataset `name` as a new version.
pub fn ingest(store: &Store, name: &str, path: &Path, opts: &Options) -> Result<Report> {
    let head = super::require_head(store, name)?;
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    let parsed = parse(&head.schema, path, &bytes, opts)?;
    let source_sha256 = hex::encode(Sha256::digest(&bytes));
    let version = super::write_version(
        store,
        name,
        parsed.rows,
        NewVersion {
            append: opts.append,
            source: &path.display().to_string(),
            source_sha256,
            operator: &opts.operator,
            warnings: parsed.warning_count as u64,
        },
    )?;
    Ok(Report {
        dataset: name.to_string(),
        version,
        warnings: parsed.warnings,
        warning_count: parsed.warning_count,
    })
}

/// A file parsed and validated, not yet stored.
#[derive(Debug)]
pub struct Parsed {
    pub rows: SortedRows,
    pub warnings: Vec<RowError>,
    pub warning_count: usize,
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
    let mut problems = Problems {
        max: opts.max_errors,
        errors: Vec::new(),
        total: 0,
        warnings: Vec::new(),
        warning_count: 0,
    };
    let mut builder = RowBuilder::new(schema);
    match format {
        Format::Csv => {
            let text = decode_text(path, bytes, opts.encoding)?;
            read_csv(schema, path, &text, &mut builder, &mut problems)?;
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
    Ok(Parsed {
        rows,
        warnings: problems.warnings,
        warning_count: problems.warning_count,
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
                Err(e) if encoding == Encoding::Utf8 => {
                    Err(Error::file(path, format!("is not valid UTF-8: {e}")))
                }
                Err(_) => gbk(bytes),
            }
        }
    }
}

fn read_csv(
    schema: &Schema,
    path: &Path,
    text: &str,
    builder: &mut RowBuilder,
    problems: &mut Problems,
) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Error::file(path, format!("cannot read the header row: {e}")))?
        .clone();
    let columns = map_header(schema, headers.iter(), 1, problems);
    if problems.total > 0 {
        return Ok(());
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                problems.error(line, None, format!("unreadable CSV: {e}"));
                break;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != headers.len() {
            problems.error(
                line,
                None,
                format!(
                    "has {} columns, the header has {}",
                    record.len(),
                    headers.len()
                ),
            );
            continue;
        }
        let cells: Vec<Option<&str>> = columns.iter().map(|c| c.map(|c| &record[c])).collect();
        builder.add(line, &cells, problems);
    }
    Ok(())
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
    for (col, header) in headers.enumerate() {
        let header = header.trim();
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
                "column is not in the schema and is ignored".into(),
            ),
        }
    }
    for (i, f) in schema.fields.iter().enumerate() {
        if columns[i].is_none() && f.required {
            problems.error(
                line,
                Some(&f.name),
                "required column is missing from the header".into(),
            );
        }
    }
    columns
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

fn read_jsonl(
    path: &Path,
    text: &str,
    builder: &mut RowBuilder,
    problems: &mut Problems,
) -> Result<()> {
    let names: Vec<&Field> = builder.schema.fields.iter().collect();
    let mut texts: Vec<Option<String>> = Vec::with_capacity(names.len());
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(line) {
            Ok(o) => o,
            Err(e) => {
                problems.error(line_no, None, format!("not a JSON object: {e}"));
                continue;
            }
        };
        texts.clear();
        let mut bad = false;
        for f in &names {
            let value = std::iter::once(&f.name)
                .chain(f.aliases.iter())
                .find_map(|n| object.get(n.as_str()));
            texts.push(match value {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                Some(other) => {
                    problems.error(
                        line_no,
                        Some(&f.name),
                        format!("nested value {other} is not allowed"),
                    );
                    bad = true;
                    None
                }
            });
        }
        if bad {
            continue;
        }
        let cells: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
        builder.add(line_no, &cells, problems);
    }
    let _ = path;
    Ok(())
}

/// Validates cells, encodes records and collects index entries.
struct RowBuilder<'s> {
    schema: &'s Schema,
    key_fields: Vec<usize>,
    index_fields: Vec<(String, usize)>,
    rows: Vec<(String, Vec<u8>, u64)>,
    indexes: BTreeMap<String, Vec<(String, String)>>,
}

/// A validated cell value.
enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Owned(FieldType, String),
}

impl<'s> RowBuilder<'s> {
    fn new(schema: &'s Schema) -> Self {
        RowBuilder {
            schema,
            key_fields: schema.key_indexes(),
            index_fields: schema
                .indexes
                .iter()
                .map(|(n, f)| (n.clone(), schema.field_index(f).expect("checked at parse")))
                .collect(),
            rows: Vec::new(),
            indexes: BTreeMap::new(),
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
        let texts: Vec<Option<Cow<'_, str>>> = cells.iter().map(cell_text).collect();
        let mut key_parts = Vec::with_capacity(self.key_fields.len());
        for &k in &self.key_fields {
            let part = texts[k].as_deref().unwrap_or("");
            if part.chars().any(|c| c < ' ') {
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
        let mut record = Vec::new();
        if let Err(e) = encode_into(&mut record, &values) {
            problems.error(line, None, e.to_string());
            return;
        }
        for (index, f) in &self.index_fields {
            if let Some(v) = &texts[*f] {
                self.indexes
                    .entry(index.clone())
                    .or_default()
                    .push((v.to_string(), key.clone()));
            }
        }
        self.rows.push((key, record, line));
    }

    fn finish(mut self, problems: &mut Problems) -> SortedRows {
        self.rows.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in self.rows.windows(2) {
            if pair[0].0 == pair[1].0 {
                problems.error(
                    pair[1].2,
                    Some(&self.schema.primary_key.join("+")),
                    format!(
                        "duplicate primary key `{}` (also on line {})",
                        pair[1].0.replace(super::block::KEY_SEP, "+"),
                        pair[0].2
                    ),
                );
            }
        }
        for entries in self.indexes.values_mut() {
            entries.sort();
        }
        SortedRows {
            rows: self.rows.into_iter().map(|(k, r, _)| (k, r)).collect(),
            indexes: self.indexes,
        }
    }
}

fn cell_text<'a>(cell: &'a Cell<'a>) -> Option<Cow<'a, str>> {
    match cell {
        Cell::Null => None,
        Cell::Bool(b) => Some(Cow::Owned(b.to_string())),
        Cell::Int(i) => Some(Cow::Owned(i.to_string())),
        Cell::Float(f) => Some(Cow::Owned(f.to_string())),
        Cell::Str(s) => Some(Cow::Borrowed(s)),
        Cell::Owned(_, s) => Some(Cow::Borrowed(s)),
    }
}

fn cell_value<'a>(cell: &'a Cell<'a>) -> Value<'a> {
    match cell {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::Bool(*b),
        Cell::Int(i) => Value::Int(*i),
        Cell::Float(f) => Value::Float(*f),
        Cell::Str(s) => Value::Str(s),
        Cell::Owned(FieldType::Date, s) => Value::Date(s),
        Cell::Owned(_, s) => Value::Decimal(s),
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
        FieldType::Decimal => {
            let plain: Cow<'_, str> = if text.contains(',') {
                Cow::Owned(text.replace(',', ""))
            } else {
                Cow::Borrowed(text)
            };
            Decimal::from_str(&plain)
                .map(|d| Cell::Owned(FieldType::Decimal, d.to_string()))
                .map_err(|_| format!("`{text}` is not a decimal number"))
        }
        FieldType::Date => parse_date(text)
            .map(|d| Cell::Owned(FieldType::Date, d.format("%Y-%m-%d").to_string()))
            .ok_or_else(|| format!("`{text}` is not a date (YYYY-MM-DD)")),
        FieldType::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "y" | "yes" | "是" | "t" => Ok(Cell::Bool(true)),
            "false" | "0" | "n" | "no" | "否" | "f" => Ok(Cell::Bool(false)),
            _ => Err(format!("`{text}` is not true/false (是/否)")),
        },
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

    fn xlsx(rows: &[Vec<crate::generate::XlsxCell>]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.xlsx");
        crate::generate::write_xlsx(&path, "Sheet1", &["身份证号", "姓名", "paid", "born"], rows)
            .unwrap();
        std::fs::read(path).unwrap()
    }

    #[test]
    fn xlsx_first_sheet_reads_with_aliases_numbers_and_date_cells() {
        use crate::generate::XlsxCell::*;
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
    fn xlsx_bad_row_is_named_by_its_spreadsheet_row() {
        use crate::generate::XlsxCell::*;
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
        use crate::generate::XlsxCell::*;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.xlsx");
        crate::generate::write_xlsx(
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

    #[test]
    fn dates_in_department_formats() {
        for t in ["2024-03-01", "2024/03/01", "20240301", "2024年3月1日"] {
            assert_eq!(parse_date(t).unwrap().to_string(), "2024-03-01", "{t}");
        }
    }
}
