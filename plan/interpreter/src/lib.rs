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
use jiandu_plan::value::{Type, Value};
use jiandu_plan::{check_plan, Catalog, Input, Lead as PlanLead, LeadSink, Plan, Scan};
use jiandu_sdk::record::Value as Stored;
use jiandu_sdk::{Context, Decimal, Error, Field, Lead, Model, Result, Rows};
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
                Ok((rows.field(name).map_err(host)?, ty))
            })
            .collect::<std::result::Result<Vec<_>, HostError>>()?;
        Ok(Box::new(SdkScan {
            dataset: dataset.to_string(),
            rows,
            columns,
        }))
    }
}

/// One dataset's rows, field by field from the batches.
struct SdkScan {
    dataset: String,
    rows: Rows,
    columns: Vec<(Field, Option<Type>)>,
}

impl Scan for SdkScan {
    fn next_row(&mut self, row: &mut [Value]) -> std::result::Result<bool, HostError> {
        let Some(record) = self.rows.next_row().map_err(|e| HostError(e.to_string()))? else {
            return Ok(false);
        };
        for (slot, (field, ty)) in row.iter_mut().zip(&self.columns) {
            let stored = record.value(*field).map_err(|e| HostError(e.to_string()))?;
            let bad =
                |what: &str| HostError(format!("{}: a value that is not {what}", self.dataset));
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
                    if *ty == Some(Type::Str) {
                        slot.set_str(text);
                    } else {
                        let d =
                            jiandu_plan::date::Date::parse(text).ok_or_else(|| bad("a date"))?;
                        *slot = Value::Date(d);
                    }
                }
            }
        }
        Ok(true)
    }
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
            out = if e.personal {
                out.personal_evidence(&e.name, &e.value)
            } else {
                out.evidence(&e.name, &e.value)
            };
        }
        self.ctx.emit(out).map_err(|e| HostError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::short_decimal;
    use jiandu_plan::value::parse_decimal;

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
        ] {
            let general = parse_decimal(text);
            if let Some(d) = short_decimal(text.as_bytes()) {
                assert_eq!(Some(d), general, "{text}");
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
