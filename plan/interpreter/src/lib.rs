//! # jiandu-plan-interpreter: scripted models in the sandbox
//!
//! One model component, built from this repository, runs every rule plan.
//! The host installs it as the `model.wasm` of each plan model and, through
//! the contract's `plan` call, gives it the plan's file name and text, the
//! model's `model.toml` and the schemas of the datasets it declares. The
//! interpreter parses and checks the plan (`jiandu-plan`), binds the
//! parameters the host resolved, reads the datasets through the SDK and
//! emits the plan's leads: a plan can do nothing a Rust model could not,
//! under the same limits, grants, pseudonyms and masking, and the ledger
//! records both the interpreter's digest (the model's wasm) and the plan's
//! hash.
//!
//! Owns the adapters between the plan executor and the SDK; must never
//! depend on the host.

use jiandu_plan::error::HostError;
use jiandu_plan::exec::Next;
use jiandu_plan::value::{Type, Value};
use jiandu_plan::{check_plan, Catalog, Input, Lead as PlanLead, LeadSink, Plan, Scan};
use jiandu_sdk::record::{Kind, RecordRef, Value as Stored};
use jiandu_sdk::{Context, Decimal, Error, Lead, Model, Result, Rows};
use serde::Deserialize;

/// What the host's `plan` call returns.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Source {
    /// The plan file's name, for messages (`rule.plan.toml`).
    pub file: String,
    /// Its text.
    pub plan: String,
    /// The model's `model.toml`.
    pub model_toml: String,
    /// The schema files of the datasets the model declares.
    pub schemas: Vec<String>,
}

/// The interpreter, as a model.
pub struct Interpreter;

impl Model for Interpreter {
    fn run(ctx: &mut Context) -> Result<()> {
        let source = ctx.plan_source().ok_or_else(|| {
            Error::msg("this component runs rule plans, and the host gave it none")
        })?;
        let source: Source = serde_json::from_str(&source)
            .map_err(|e| Error::msg(format!("the host's plan is not readable: {e}")))?;
        run_plan(ctx, &source)
    }
}

jiandu_sdk::export_model!(Interpreter);

/// Checks `source`'s plan and runs it over the context's datasets.
pub fn run_plan(ctx: &Context, source: &Source) -> Result<()> {
    let plan = Plan::parse(&source.file, &source.plan).map_err(Error::msg)?;
    let schemas: Vec<&str> = source.schemas.iter().map(String::as_str).collect();
    let catalog = Catalog::from_toml(&source.model_toml, &schemas).map_err(Error::msg)?;
    let checked = check_plan(&plan, &catalog).map_err(Error::msg)?;
    // The host has applied defaults and checked each value's type.
    let mut values = Vec::new();
    for p in &catalog.params {
        let text: String = ctx.param(&p.name)?;
        let value = Value::parse(p.ty, &text).ok_or_else(|| {
            Error::msg(format!(
                "parameter `{}`: `{text}` is not a {:?}",
                p.name, p.ty
            ))
        })?;
        values.push((p.name.as_str(), value));
    }
    let program = checked.bind(&values).map_err(Error::msg)?;
    let mut input = SdkInput {
        ctx,
        catalog: &catalog,
    };
    let mut sink = SdkSink { ctx };
    let stats = program.run(&mut input, &mut sink).map_err(Error::msg)?;
    if stats.without_subject > 0 {
        ctx.warn(format!(
            "{} rows reached an emit step without a subject and were not leads",
            stats.without_subject
        ));
    }
    ctx.info(format!(
        "plan {} (sha256 {}): {} leads",
        source.file,
        plan.hash(),
        stats.leads
    ));
    Ok(())
}

/// Datasets read through the SDK.
struct SdkInput<'a> {
    ctx: &'a Context,
    catalog: &'a Catalog,
}

impl Input for SdkInput<'_> {
    fn scan(
        &mut self,
        dataset: &str,
        fields: &[&str],
    ) -> std::result::Result<Box<dyn Scan>, HostError> {
        let host = |e: Error| HostError(e.to_string());
        let rows = self.ctx.read(dataset).rows().map_err(host)?;
        let decl = self.catalog.datasets.get(dataset);
        let columns = fields
            .iter()
            .map(|name| {
                let ty = decl
                    .and_then(|d| d.fields.iter().find(|f| f.name == *name))
                    .map(|f| f.ty);
                rows.field(name).map_err(host)?;
                let at = rows
                    .names()
                    .iter()
                    .position(|n| n == name)
                    .expect("the scan has the field");
                Ok(Column {
                    at,
                    name: (*name).to_owned(),
                    ty,
                })
            })
            .collect::<std::result::Result<Vec<_>, HostError>>()?;
        Ok(Box::new(SdkScan {
            rows,
            columns: Columns {
                dataset: dataset.to_string(),
                columns,
            },
            rest: Vec::new(),
            now: Vec::new(),
        }))
    }

    /// Through `ctx.lookup`, with the key as text (dates `YYYY-MM-DD`,
    /// numbers as written, pseudonyms as given), as a Rust model calls it.
    fn lookup(
        &mut self,
        dataset: &str,
        index: &str,
        value: &Value,
        fields: &[&str],
        rows: &mut Vec<Vec<Value>>,
    ) -> std::result::Result<usize, HostError> {
        let records: Vec<Record> = self
            .ctx
            .lookup(dataset, index, &value.to_string())
            .map_err(|e| HostError(e.to_string()))?;
        let decl = self.catalog.datasets.get(dataset);
        let types: Vec<Option<Type>> = fields
            .iter()
            .map(|name| {
                decl.and_then(|d| d.fields.iter().find(|f| f.name == *name))
                    .map(|f| f.ty)
            })
            .collect();
        for (j, record) in records.iter().enumerate() {
            if j == rows.len() {
                rows.push(Vec::new());
            }
            let row = &mut rows[j];
            row.resize(fields.len(), Value::Null);
            for ((slot, name), ty) in row.iter_mut().zip(fields).zip(&types) {
                let cell = record
                    .0
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(&Cell::Null, |(_, c)| c);
                cell.store(slot, *ty, dataset)?;
            }
        }
        Ok(records.len())
    }
}

/// A record found by a lookup, its fields by name: `ctx.lookup` hands
/// records over through serde, the only way the SDK gives them.
struct Record(Vec<(String, Cell)>);

/// A field value of a [`Record`]. serde carries decimals and dates as
/// text, so the field's declared type says how to read a [`Cell::Text`].
enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Cell {
    /// Writes the value into `slot` as [`SdkScan`] reads a stored value of
    /// a field declared `ty`.
    fn store(
        &self,
        slot: &mut Value,
        ty: Option<Type>,
        dataset: &str,
    ) -> std::result::Result<(), HostError> {
        let bad = |what: &str| HostError(format!("{dataset}: a value that is not {what}"));
        match self {
            Cell::Null => *slot = Value::Null,
            Cell::Bool(b) => *slot = Value::Bool(*b),
            Cell::Int(i) => *slot = Value::Int(*i),
            Cell::Float(x) => *slot = Value::Float(*x),
            Cell::Text(text) => match ty {
                Some(Type::Decimal) => {
                    let d = short_decimal(text.as_bytes())
                        .or_else(|| jiandu_plan::value::parse_decimal(text))
                        .ok_or_else(|| bad("a decimal"))?;
                    *slot = Value::Decimal(d);
                }
                Some(Type::Date) => {
                    let d = jiandu_plan::date::Date::parse(text).ok_or_else(|| bad("a date"))?;
                    *slot = Value::Date(d);
                }
                _ => slot.set_str(text),
            },
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Cell;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field value")
            }
            fn visit_unit<E>(self) -> std::result::Result<Cell, E> {
                Ok(Cell::Null)
            }
            fn visit_none<E>(self) -> std::result::Result<Cell, E> {
                Ok(Cell::Null)
            }
            fn visit_bool<E>(self, b: bool) -> std::result::Result<Cell, E> {
                Ok(Cell::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> std::result::Result<Cell, E> {
                Ok(Cell::Int(i))
            }
            fn visit_u64<E: serde::de::Error>(self, u: u64) -> std::result::Result<Cell, E> {
                i64::try_from(u)
                    .map(Cell::Int)
                    .map_err(|_| E::custom(format!("{u} is too large for an int")))
            }
            fn visit_f64<E>(self, x: f64) -> std::result::Result<Cell, E> {
                Ok(Cell::Float(x))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<Cell, E> {
                Ok(Cell::Text(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<Cell, E> {
                Ok(Cell::Text(s))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Record;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a record")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Record, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<String, Cell>()? {
                    fields.push(entry);
                }
                Ok(Record(fields))
            }
        }
        d.deserialize_map(V)
    }
}

/// One dataset's rows, field by field from the batches.
///
/// Values are decoded from the stored record straight into the row's
/// slots, by the column's declared type: an int read as an int, a
/// decimal's text parsed from its bytes, text copied into the slot's
/// buffer. Anything else (null, another kind, text not in the store's own
/// form) goes through [`Columns::general`], the one reading of every
/// stored value.
///
/// Rows may be decoded lazily ([`Scan::next_some`]): the columns asked
/// for are decoded when the scan moves, and the stored kinds of the
/// others are checked against their types (a tag byte, not a decoding):
/// a row with a value of another kind is written whole for the executor
/// to refuse, so that a type error is the same error whether or not its
/// column is read. The other columns are decoded from the same record,
/// read again, when asked for ([`Scan::fill`]).
struct SdkScan {
    rows: Rows,
    columns: Columns,
    /// The columns not in the last `now` of [`Scan::next_some`] (which
    /// is the same from row to row), and that `now`.
    rest: Vec<usize>,
    now: Vec<usize>,
}

/// The columns an [`SdkScan`] reads, and how.
struct Columns {
    dataset: String,
    columns: Vec<Column>,
}

/// A column of an [`SdkScan`].
struct Column {
    /// Its place in the dataset's records.
    at: usize,
    name: String,
    /// Its declared type.
    ty: Option<Type>,
}

impl Column {
    /// Whether the stored value reads as a value of the column's type (or
    /// null), as [`Columns::general`] reads it. A field absent from the
    /// record is null; a malformed one does not fit (its reading then
    /// reports it).
    #[inline]
    fn fits(&self, rec: &RecordRef<'_>) -> bool {
        let kind = match rec.kind(self.at) {
            Ok(None) => return true,
            Ok(Some(kind)) => kind,
            Err(_) => return false,
        };
        matches!(
            (kind, self.ty),
            (Kind::Null, _)
                | (Kind::Bool, Some(Type::Bool))
                | (Kind::Int, Some(Type::Int))
                | (Kind::Float, Some(Type::Float))
                | (Kind::Str | Kind::Date, Some(Type::Str))
                | (Kind::Decimal, Some(Type::Decimal))
                | (Kind::Date, Some(Type::Date))
        )
    }
}

impl Columns {
    /// Writes column `c` of `rec` into `slot`: through the SDK's accessor
    /// for the column's type (one look-up of the field) when the value is
    /// stored as that type, else as [`Columns::general`] reads it.
    #[inline(always)]
    fn decode(
        &self,
        rec: &RecordRef<'_>,
        c: usize,
        slot: &mut Value,
    ) -> std::result::Result<(), HostError> {
        let col = &self.columns[c];
        let at = col.at;
        match col.ty {
            Some(Type::Int) => {
                if let Some(i) = rec.int(at) {
                    *slot = Value::Int(i);
                    return Ok(());
                }
            }
            Some(Type::Bool) => {
                if let Some(b) = rec.bool(at) {
                    *slot = Value::Bool(b);
                    return Ok(());
                }
            }
            Some(Type::Decimal) => {
                if let Some(d) = rec.decimal(at) {
                    match slot {
                        Value::Decimal(x) => *x = d,
                        _ => *slot = Value::Decimal(d),
                    }
                    return Ok(());
                }
            }
            Some(Type::Str) => {
                if let Some(text) = rec.str(at) {
                    slot.set_str(text);
                    return Ok(());
                }
            }
            Some(Type::Date) if rec.kind(at) == Ok(Some(Kind::Date)) => {
                let date = rec.str(at).and_then(jiandu_plan::date::Date::parse);
                if let Some(d) = date {
                    *slot = Value::Date(d);
                    return Ok(());
                }
            }
            _ => {}
        }
        self.general(rec, c, slot)
    }

    /// Writes column `c` of `rec` into `slot` as its stored kind reads:
    /// the value of another type than the column's, if it is one, for the
    /// executor to refuse.
    #[cold]
    #[inline(never)]
    fn general(
        &self,
        rec: &RecordRef<'_>,
        c: usize,
        slot: &mut Value,
    ) -> std::result::Result<(), HostError> {
        let col = &self.columns[c];
        let stored = rec
            .field(col.at)
            .map_err(|e| HostError(format!("`{}` field `{}`: {e}", self.dataset, col.name)))?
            .unwrap_or(Stored::Null);
        let bad = |what: &str| HostError(format!("{}: a value that is not {what}", self.dataset));
        match stored {
            Stored::Null => *slot = Value::Null,
            Stored::Bool(b) => *slot = Value::Bool(b),
            Stored::Int(i) => *slot = Value::Int(i),
            Stored::Float(x) => *slot = Value::Float(x),
            Stored::Str(s) => slot.set_str(s),
            Stored::Decimal(text) => {
                let d = short_decimal(text.as_bytes())
                    .or_else(|| jiandu_plan::value::parse_decimal(text))
                    .ok_or_else(|| bad("a decimal"))?;
                *slot = Value::Decimal(d);
            }
            Stored::Date(text) => {
                // A date read as text by a plan that declared text.
                if col.ty == Some(Type::Str) {
                    slot.set_str(text);
                } else {
                    let d = jiandu_plan::date::Date::parse(text).ok_or_else(|| bad("a date"))?;
                    *slot = Value::Date(d);
                }
            }
        }
        Ok(())
    }

    /// Writes every column of `rec` into `row`.
    fn whole(&self, rec: &RecordRef<'_>, row: &mut [Value]) -> std::result::Result<(), HostError> {
        for (c, slot) in row.iter_mut().enumerate() {
            self.decode(rec, c, slot)?;
        }
        Ok(())
    }
}

impl Scan for SdkScan {
    fn next_row(&mut self, row: &mut [Value]) -> std::result::Result<bool, HostError> {
        let Some(record) = self.rows.next_row().map_err(|e| HostError(e.to_string()))? else {
            return Ok(false);
        };
        self.columns.whole(&record.record(), row)?;
        Ok(true)
    }

    fn next_some(
        &mut self,
        row: &mut [Value],
        now: &[usize],
    ) -> std::result::Result<Next, HostError> {
        let Some(record) = self.rows.next_row().map_err(|e| HostError(e.to_string()))? else {
            return Ok(Next::End);
        };
        if !same(&self.now, now) {
            self.now = now.to_vec();
            self.rest = (0..self.columns.columns.len())
                .filter(|c| !now.contains(c))
                .collect();
        }
        let rec = record.record();
        let columns = &self.columns;
        // A value of another kind in a column not decoded now: the whole
        // row, for the executor to refuse. (One in a column decoded now
        // is decoded as what it is, and refused just the same.)
        if !self.rest.iter().all(|&c| columns.columns[c].fits(&rec)) {
            columns.whole(&rec, row)?;
            return Ok(Next::Row);
        }
        for &c in now {
            columns.decode(&rec, c, &mut row[c])?;
        }
        Ok(Next::Some)
    }

    fn fill(&mut self, row: &mut [Value], cols: &[usize]) -> std::result::Result<(), HostError> {
        let record = self.rows.current().map_err(|e| HostError(e.to_string()))?;
        let record = record.ok_or_else(|| {
            HostError(format!(
                "scan `{}`: no current record to fill columns from",
                self.columns.dataset
            ))
        })?;
        let rec = record.record();
        for &c in cols {
            self.columns.decode(&rec, c, &mut row[c])?;
        }
        Ok(())
    }
}

/// Whether `a` and `b` hold the same columns, compared in line: a few
/// columns, checked once a row (`==` on slices calls `memcmp`).
#[inline(always)]
fn same(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// A stored decimal of at most 18 digits, `[-]digits[.digits]` (how the
/// store writes amounts), read in one pass without the general parser;
/// `None` for anything else, which [`jiandu_plan::value::parse_decimal`]
/// then reads (the same value, or the same refusal).
#[inline]
fn short_decimal(text: &[u8]) -> Option<Decimal> {
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if body.len() > 19 || body.first() == Some(&b'.') || body.last() == Some(&b'.') {
        return None;
    }
    let (mut mantissa, mut point, mut digits) = (0u64, None, 0usize);
    for (i, &b) in body.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
            }
            b'.' if point.is_none() => point = Some(body.len() - i - 1),
            _ => return None,
        }
    }
    if digits == 0 || digits > 18 {
        return None;
    }
    Some(Decimal::from_parts(
        mantissa as u32,
        (mantissa >> 32) as u32,
        0,
        negative,
        point.unwrap_or(0) as u32,
    ))
}

/// Leads emitted through the SDK.
struct SdkSink<'a> {
    ctx: &'a Context,
}

impl LeadSink for SdkSink<'_> {
    fn emit(&mut self, lead: &PlanLead) -> std::result::Result<(), HostError> {
        let mut out = Lead::new(lead.subject.as_str()).title(lead.title.as_str());
        if lead.subject_personal {
            out = out.personal_subject();
        }
        if let Some(amount) = &lead.amount {
            let yuan: Decimal = amount
                .parse()
                .map_err(|_| HostError(format!("amount `{amount}` is not a decimal")))?;
            out = out.amount(yuan);
        }
        for e in &lead.evidence {
            // Already text: copied, not formatted again.
            out = if e.personal {
                out.personal_evidence_text(&e.name, &e.value)
            } else {
                out.evidence_text(&e.name, &e.value)
            };
        }
        self.ctx.emit(out).map_err(|e| HostError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::short_decimal;
    use jiandu_plan::value::parse_decimal;
    use jiandu_sdk::record::{encode, Value as Stored};
    use jiandu_sdk::{encoded_lead, Backend, Batch, Level, ScanOptions};
    use std::cell::RefCell;
    use std::rc::Rc;

    const MODEL: &str = r#"
[datasets]
cases = { fields = ["case_id", "suspect_id"] }
priors = { fields = ["record_id", "person_id", "decided_on", "fine", "kind"] }
"#;
    const CASES: &str = r#"
name = "cases"
primary_key = ["case_id"]
fields = [
  { name = "case_id", type = "string" },
  { name = "suspect_id", type = "string", personal = "id" },
]
"#;
    const PRIORS: &str = r#"
name = "priors"
primary_key = ["record_id"]
fields = [
  { name = "record_id", type = "string" },
  { name = "person_id", type = "string", personal = "id" },
  { name = "decided_on", type = "date", required = true },
  { name = "fine", type = "decimal" },
  { name = "kind", type = "string" },
]
[indexes]
by_person = "person_id"
"#;
    const PLAN: &str = r#"
[[step]]
name = "cases"
op = "read"
dataset = "cases"

[[step]]
name = "priors"
op = "lookup"
kind = "left"
dataset = "priors"
index = "by_person"
key = "suspect_id"

[[step]]
name = "leads"
op = "emit"
subject = "case_id"
title = "{case_id} {record_id} {decided_on} {fine} {kind}"
"#;

    /// A host with two cases and the priors of `p1`; a lookup of `p9`
    /// fails as the host's bound does.
    struct Host {
        plan: String,
        /// How many of the three cases the scan gives.
        cases: usize,
        scanned: bool,
        lookups: Rc<RefCell<Vec<String>>>,
        titles: Rc<RefCell<Vec<String>>>,
    }

    impl Backend for Host {
        fn fields(&mut self, dataset: &str) -> Result<Vec<String>, String> {
            let names: &[&str] = match dataset {
                "cases" => &["case_id", "suspect_id"],
                "priors" => &["record_id", "person_id", "decided_on", "fine", "kind"],
                _ => return Err(format!("no dataset `{dataset}`")),
            };
            Ok(names.iter().map(|n| n.to_string()).collect())
        }
        fn open_scan(&mut self, _: &str, _: ScanOptions) -> Result<u32, String> {
            Ok(0)
        }
        fn next_batch(&mut self, _: u32) -> Result<Option<Batch>, String> {
            if std::mem::replace(&mut self.scanned, true) {
                return Ok(None);
            }
            Ok(Some(batch(
                &[
                    vec![Some(Stored::Str("c1")), Some(Stored::Str("p1"))],
                    vec![Some(Stored::Str("c2")), Some(Stored::Str("p2"))],
                    vec![Some(Stored::Str("c3")), Some(Stored::Str("p9"))],
                ][..self.cases],
            )))
        }
        fn close_scan(&mut self, _: u32) {}
        fn get(&mut self, _: &str, _: &[String]) -> Result<Option<Vec<u8>>, String> {
            Err("no get here".into())
        }
        fn lookup(&mut self, dataset: &str, index: &str, value: &str) -> Result<Batch, String> {
            self.lookups
                .borrow_mut()
                .push(format!("{dataset}/{index}/{value}"));
            match value {
                "p1" => Ok(batch(&[
                    vec![
                        Some(Stored::Str("r1")),
                        Some(Stored::Str("p1")),
                        Some(Stored::Date("2020-01-15")),
                        Some(Stored::Decimal("500.50")),
                        None,
                    ],
                    vec![
                        Some(Stored::Str("r2")),
                        Some(Stored::Str("p1")),
                        Some(Stored::Date("2021-06-01")),
                        Some(Stored::Null),
                        Some(Stored::Str("醉驾")),
                    ],
                ])),
                "p9" => Err(
                    "5000 records match; a lookup returns at most 4096 (scan by the index instead)"
                        .into(),
                ),
                _ => Ok(batch(&[])),
            }
        }
        fn param(&mut self, _: &str) -> Option<String> {
            None
        }
        fn emit_leads(&mut self, mut leads: &[u8]) -> Result<(), String> {
            while !leads.is_empty() {
                let (lead, used) = encoded_lead::decode(leads).map_err(|e| e.0.to_string())?;
                self.titles.borrow_mut().push(lead.title.to_string());
                leads = &leads[used..];
            }
            Ok(())
        }
        fn log(&mut self, _: Level, _: &str) {}
        fn plan(&mut self) -> Option<String> {
            Some(
                serde_json::json!({
                    "file": "rule.plan.toml",
                    "plan": self.plan,
                    "model-toml": MODEL,
                    "schemas": [CASES, PRIORS],
                })
                .to_string(),
            )
        }
    }

    fn batch(records: &[Vec<Option<Stored<'_>>>]) -> Batch {
        let mut b = Batch {
            data: Vec::new(),
            offsets: vec![0],
        };
        for r in records {
            b.data.extend(encode(r).unwrap());
            b.offsets.push(b.data.len() as u32);
        }
        b
    }

    /// Lookups go through `ctx.lookup` with the key as text; decimals and
    /// dates come back typed, absent fields null; a host error stops the
    /// run naming the step.
    #[test]
    fn lookups_go_through_the_sdk_and_host_errors_stop_the_run() {
        let lookups = Rc::new(RefCell::new(Vec::new()));
        let titles = Rc::new(RefCell::new(Vec::new()));
        let host = Host {
            plan: PLAN.into(),
            cases: 3,
            scanned: false,
            lookups: lookups.clone(),
            titles: titles.clone(),
        };
        let err =
            jiandu_sdk::__private::run_model::<super::Interpreter>(Box::new(host)).unwrap_err();
        assert_eq!(
            err,
            "rule.plan.toml:13:8: step `priors`: looking up `priors` by index `by_person` for a personal key (not shown): lookup in `priors` by `by_person`: 5000 records match; a lookup returns at most 4096 (scan by the index instead)"
        );
        assert_eq!(
            *lookups.borrow(),
            [
                "priors/by_person/p1",
                "priors/by_person/p2",
                "priors/by_person/p9"
            ]
        );
        // Leads emitted before the failure are discarded by the host (a
        // run keeps its leads only if it succeeds); those buffered are not
        // even sent. The conversions are checked directly:
        let mut slot = jiandu_plan::Value::Null;
        super::Cell::Text("500.50".into())
            .store(&mut slot, Some(jiandu_plan::Type::Decimal), "priors")
            .unwrap();
        assert_eq!(slot.to_string(), "500.50");
        super::Cell::Text("2020-01-15".into())
            .store(&mut slot, Some(jiandu_plan::Type::Date), "priors")
            .unwrap();
        assert_eq!(slot.ty(), Some(jiandu_plan::Type::Date));
        let e = super::Cell::Text("soon".into())
            .store(&mut slot, Some(jiandu_plan::Type::Date), "priors")
            .unwrap_err();
        assert_eq!(e.to_string(), "priors: a value that is not a date");
        assert!(titles.borrow().is_empty());
    }

    #[test]
    fn looked_up_records_become_typed_rows() {
        let titles = Rc::new(RefCell::new(Vec::new()));
        let host = Host {
            plan: PLAN.replace(
                "key = \"suspect_id\"",
                "key = \"suspect_id\"\nfields = [\"record_id\", \"decided_on\", \"fine\", \"kind\"]",
            ),
            // c3's lookup would fail.
            cases: 2,
            scanned: false,
            lookups: Rc::default(),
            titles: titles.clone(),
        };
        jiandu_sdk::__private::run_model::<super::Interpreter>(Box::new(host)).unwrap();
        assert_eq!(
            *titles.borrow(),
            [
                "c1 r1 2020-01-15 500.50 ",
                "c1 r2 2021-06-01  醉驾",
                "c2    ",
            ]
        );
    }

    /// Every stored kind against every declared type: the typed reading
    /// is the general one (nulls, absent fields, values of another kind
    /// and text not in the store's form included), and whether a value
    /// fits its column is seen without decoding it.
    #[test]
    fn typed_reading_is_the_general_reading_for_values_that_fit() {
        use super::{Column, Columns};
        use jiandu_plan::{Type, Value};
        use jiandu_sdk::record::RecordRef;
        let stored = [
            None,
            Some(Stored::Null),
            Some(Stored::Bool(true)),
            Some(Stored::Int(-7)),
            Some(Stored::Float(0.5)),
            Some(Stored::Str("甲公司")),
            Some(Stored::Str("")),
            Some(Stored::Decimal("-1234.565")),
            Some(Stored::Decimal("9084")),
            Some(Stored::Decimal("-0")),
            Some(Stored::Decimal("12345678901234567890.5")),
            Some(Stored::Decimal("1e5")),
            Some(Stored::Date("2024-02-29")),
            Some(Stored::Date("2024-02-30")),
        ];
        let bytes = encode(&stored).unwrap();
        let rec = RecordRef::new(&bytes).unwrap();
        for ty in Type::ALL {
            let columns = Columns {
                dataset: "d".into(),
                columns: (0..stored.len())
                    .map(|at| Column {
                        at,
                        name: format!("f{at}"),
                        ty: Some(ty),
                    })
                    .collect(),
            };
            for (c, col) in columns.columns.iter().enumerate() {
                let mut general = Value::Str("stale".into());
                let read = columns.general(&rec, c, &mut general);
                let fits = col.fits(&rec);
                if read.is_ok() {
                    assert_eq!(fits, general.fits(ty), "{ty} {:?}", stored[c]);
                }
                let mut typed = Value::Str("stale".into());
                let decoded = columns.decode(&rec, c, &mut typed);
                assert_eq!(
                    decoded.map_err(|e| e.to_string()),
                    read.map_err(|e| e.to_string()),
                    "{ty} {:?}",
                    stored[c]
                );
                assert_eq!(typed, general, "{ty} {:?}", stored[c]);
            }
        }
    }

    #[test]
    fn short_decimals_read_as_the_general_parser_reads_them() {
        for text in [
            "0",
            "-0",
            "-0.00",
            "12345.68",
            "-12345.675",
            "0.015",
            "007.50",
            "999999999999999999",
            "99999999999999999.9",
            "1e5",
            ".5",
            "5.",
            ".",
            "-",
            "",
            "1.2.3",
            "+1",
            "--1",
            "1234567890123456789",
            "12345678901234567890.5",
            "１２",
            "+7.25",
            "-0.5",
            "100000000.00",
            "-99999999999999.99",
            "0.00",
            "12.3456",
            "9084",
            "000",
            "-7",
            "-000",
            "123456789012345678",
            "-123456789012345678",
            "12a4",
        ] {
            let general = parse_decimal(text);
            if let Some(d) = short_decimal(text.as_bytes()) {
                assert_eq!(Some(d), general, "{text}");
            }
            // The SDK's reading of a stored decimal, which the scan takes
            // first, reads the same value, sign and scale, or leaves it to
            // the general path.
            if let Ok(bytes) = encode(&[Some(Stored::Decimal(text))]) {
                let stored = jiandu_sdk::record::RecordRef::new(&bytes)
                    .unwrap()
                    .decimal(0);
                if let Some(d) = stored {
                    assert_eq!(
                        Some(d.to_string()),
                        general.map(|g| g.to_string()),
                        "{text}"
                    );
                }
            }
            let read = short_decimal(text.as_bytes()).or_else(|| parse_decimal(text));
            assert_eq!(
                read.map(|d| d.to_string()),
                general.map(|d| d.to_string()),
                "{text}"
            );
        }
    }
}
