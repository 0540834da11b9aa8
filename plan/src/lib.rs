//! Scripted models for Jiandu: rule plans.
//!
//! A unit that does not write Rust writes a *plan*: a file beside
//! model.toml made of named steps, each one typed operator (read, filter,
//! derive, select, join, lookup, group, sort, rank, window, union, emit)
//! with row expressions. This crate owns everything about a plan that is not I/O:
//!
//! - the format and its parser, keeping the line and column of every node
//!   ([`Plan::parse`], [`plan`]);
//! - the expression language ([`expr`]);
//! - the type checker against the model's datasets and parameters
//!   ([`check_plan`], [`Catalog`]), which `jiandu model build` runs;
//! - the streaming executor ([`exec`]) that the one interpreter guest
//!   drives inside the sandbox, over rows the host provides;
//! - the plan's canonical hash for the ledger ([`Plan::hash`]);
//! - the Chinese explanation and diff for sign-off ([`explain()`], [`diff()`]).
//!
//! It must never depend on the host, the store, wasmtime or the SDK, and
//! it does no I/O: it takes text and rows and gives leads. That is what
//! lets the same code check a plan on the host and run it in a
//! `wasm32-unknown-unknown` guest.
//!
//! # Why TOML
//!
//! It is the language of model.toml and of the dataset schemas, so a unit
//! learns one syntax; `toml_edit` keeps the span of every key and value,
//! so errors point at a line and column; and it has no indentation rules,
//! the trap YAML sets for people who do not program. Steps are
//! `[[step]]` tables read top to bottom, like the numbered sentences
//! `model explain` turns them into.
//!
//! # Two ways to pair rows: `join` and `lookup`
//!
//! The spec asks for joins "as Rust models do": a streaming merge on the
//! sorted key, and a keyed lookup where the other side is indexed. The
//! merge is `op = "join"` (both sides sorted on the key, each read once).
//! The lookup is its own operator, `op = "lookup"`, rather than a flavour
//! of `join`, because its other side is not a step but a *dataset and one
//! of its declared indexes*, exactly the arguments of the SDK's
//! `ctx.lookup(dataset, index, value)`:
//!
//! ```toml
//! [[step]]
//! name = "case_priors"
//! op = "lookup"
//! input = "case_keys"          # default: the step before
//! dataset = "prior_records"    # declared in model.toml [datasets]
//! index = "by_person"          # declared in the schema's [indexes]
//! key = "suspect_id"           # an expression of the indexed field's type
//! kind = "inner"               # inner (default), left, semi, anti, as join
//! fields = ["kind", "decided_on"]  # default: declared fields but the indexed one
//! prefix = "prior_"            # renames the added fields, as join's prefix
//! ```
//!
//! - `key` is an expression, not a field list: an index has one field,
//!   and a computed key (`year - 1`, `$kind`) costs nothing more.
//! - `kind`, `prefix` and the added fields follow `join`, so nothing new is
//!   learnt; the indexed field is left out by default as `join` leaves out
//!   the other side's key (its value is the key).
//! - The checker verifies what the host would otherwise refuse at run
//!   time: the dataset is declared, the index exists, its field is
//!   declared, `key` has exactly that field's type, and a pseudonymous
//!   field is looked up by a pseudonymous key (a pseudonym never equals a
//!   clear value); each error at its line and column.
//! - It keeps the input's order (one row per record, the records in the
//!   index's order) and holds one lookup's records: no order is needed on
//!   either side and no `sort` holds a whole dataset, which is what makes
//!   it the better choice for a small input against a large dataset. The
//!   host bounds a lookup (4096 records) and fails beyond it, which stops
//!   the run with [`RunError::Lookup`] rather than give fewer leads.
//!
//! The executor asks [`exec::Input::lookup`]; the interpreter answers with
//! `ctx.lookup`, and [`exec::MemoryInput`] by filtering its rows.
//!
//! # Why an own expression language rather than the `cel` crate
//!
//! The syntax is CEL's (literals, `$param`/`params.x`, arithmetic,
//! comparisons, `&&`, `||`, `!`, `?:`, `in [..]`, calls and method calls),
//! so nothing new is learnt. The implementation is ours because a plan
//! needs what CEL's crate does not give:
//! - type checking *before* a run against the dataset schemas and
//!   model.toml's typed parameters, with errors at the plan's line and
//!   column saying what was expected;
//! - exact decimals as a first-class type, with int/decimal arithmetic
//!   exact and float never mixed in silently (DOMAIN.md: money is exact);
//! - compilation to typed closures with the run's parameters folded in,
//!   with no dynamic values and no allocation per row for numbers, dates
//!   and booleans: the 残保金 plan over a million employers has to stay
//!   within 2× of the Rust model;
//! - personal-data rules in the types (a pseudonym never equals a literal;
//!   evidence showing personal data must be marked);
//! - a closed set of functions with the domain's date rules
//!   (`years_before` with 29 February → 28 February, inclusive windows).
//!
//! # Example
//!
//! ```
//! use jiandu_plan::exec::{Lead, MemoryInput};
//! use jiandu_plan::{check_plan, Catalog, Plan, Value};
//!
//! let model = r#"
//! [datasets]
//! fund_payments = { fields = ["credit_code", "levy_year", "amount"] }
//! [params]
//! levy_year = { type = "int", default = 2024 }
//! "#;
//! let schema = r#"
//! name = "fund_payments"
//! primary_key = ["credit_code", "levy_year"]
//! fields = [
//!   { name = "credit_code", type = "string" },
//!   { name = "levy_year", type = "int" },
//!   { name = "amount", type = "decimal", required = true },
//! ]
//! "#;
//! let plan = Plan::parse("small.plan.toml", r#"
//! [[step]]
//! name = "payments"
//! op = "read"
//! dataset = "fund_payments"
//!
//! [[step]]
//! name = "big"
//! op = "filter"
//! where = "levy_year == $levy_year && amount > 1000.00"
//!
//! [[step]]
//! name = "leads"
//! op = "emit"
//! subject = "credit_code"
//! title = "{credit_code} 缴款 {yuan(amount)} 元"
//! amount = "amount"
//! "#)?;
//! let catalog = Catalog::from_toml(model, &[schema]).unwrap();
//! let program = check_plan(&plan, &catalog)?.bind(&[])?;
//!
//! let mut input = MemoryInput::default();
//! input.add("fund_payments", &["credit_code", "levy_year", "amount"], &["credit_code", "levy_year"], vec![
//!     vec![Value::Str("A".into()), Value::Int(2024), Value::Decimal("1234.565".parse().unwrap())],
//!     vec![Value::Str("B".into()), Value::Int(2024), Value::Decimal("10".parse().unwrap())],
//! ]);
//! let mut leads: Vec<Lead> = Vec::new();
//! program.run(&mut input, &mut leads).unwrap();
//! assert_eq!(leads.len(), 1);
//! assert_eq!(leads[0].title, "A 缴款 1234.57 元");
//! assert_eq!(leads[0].amount.as_deref(), Some("1234.57"));
//! # Ok::<(), jiandu_plan::PlanError>(())
//! ```

#![warn(missing_docs)]

pub mod catalog;
pub mod check;
pub mod date;
pub mod diff;
pub mod error;
pub mod exec;
pub mod explain;
pub mod expr;
pub mod hash;
pub mod parse;
pub mod plan;
pub mod span;
mod split;
pub mod value;

pub use catalog::Catalog;
pub use check::{check_plan, CheckedPlan};
pub use diff::diff;
pub use error::{PlanError, RunError};
pub use exec::{Input, Lead, LeadSink, Program, Scan};
pub use explain::explain;
pub use plan::Plan;
pub use value::{Type, Value};
