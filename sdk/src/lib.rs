//! # jiandu-sdk: write a legal supervision model in plain Rust
//!
//! A Jiandu model (法律监督模型) cross-matches department datasets and emits
//! **leads** (线索) for people to review. You write one function over a
//! [`Context`]; the SDK hides the WebAssembly boundary, the record encoding
//! and the batching.
//!
//! ```no_run
//! use jiandu_sdk::{export_model, Context, Decimal, Lead, Model, Result};
//! use serde::Deserialize;
//!
//! /// Only the fields the model reads; the dataset may have many more.
//! #[derive(Deserialize)]
//! struct Employer {
//!     credit_code: String,
//!     name: String,
//!     staff: u32,
//! }
//!
//! #[derive(Deserialize)]
//! struct Payment {
//!     credit_code: String,
//!     paid: Decimal,
//! }
//!
//! struct LargeUnpaid;
//!
//! impl Model for LargeUnpaid {
//!     fn run(ctx: &mut Context) -> Result<()> {
//!         // Typed parameters, declared with defaults in model.toml.
//!         let min_staff: u32 = ctx.param("min_staff")?;
//!         // Both datasets are sorted by credit code, so this is one merge
//!         // pass with flat memory, not one lookup per employer.
//!         let mut payments = ctx.read("fund_payments").into::<Payment>()?.keyed(|p| p.credit_code.clone());
//!         for employer in ctx.read("employers").into::<Employer>()? {
//!             let e = employer?;
//!             if e.staff < min_staff {
//!                 continue;
//!             }
//!             let paid: Decimal = payments.take(&e.credit_code)?.iter().map(|p| p.paid).sum();
//!             if paid.is_zero() {
//!                 ctx.emit(
//!                     Lead::new(&e.credit_code)
//!                         .title(format!("{} paid nothing", e.name))
//!                         .evidence("staff", e.staff),
//!                 )?;
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_model!(LargeUnpaid);
//! ```
//!
//! Build it with `jiandu model build <crate-dir>`; the crate needs
//! `crate-type = ["cdylib", "rlib"]` and a `model.toml` beside `Cargo.toml`.
//!
//! ## Reading: [`Context::read`]
//! Every read starts with `ctx.read("dataset")`, optionally
//! [`.by("index")`](Read::by) (the order of a declared index) or
//! [`.only_new()`](Read::only_new) (records added since the last successful
//! run), and ends with how the records arrive:
//! [`.into::<T>()`](Read::into) builds a `T` per record through serde;
//! [`.rows()`](Read::rows) is the fast path for joins over millions of
//! records: each record is a [`Row`] borrowed from the batch, read field by
//! field through a [`Field`] resolved once (`row.str(code)?`,
//! `row.i64(year)?`, `row.decimal(amount)?`, `row.date(paid_on)?`), with no
//! allocation per record; [`KeyedRows::each`] merge-joins on a key compared
//! as stored bytes. The 残保金 sample model (`plugins/disability-fund-arrears`)
//! is written this way; the other sample models use structs. Single records
//! come from [`Context::get`] (by primary key) and [`Context::lookup`] (by
//! a declared index).
//!
//! ## What a model can and cannot do
//! It reads only the datasets its `model.toml` declares and the host grants,
//! and sees personal fields masked unless the host's policy allows otherwise.
//! It has no clock (take an `as_of` date parameter), no randomness, no files,
//! no network. Leads it emits are kept only if the whole run succeeds.
//! Money is exact: use [`Decimal`], never `f64`, for amounts.

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod alloc;
mod de;
pub mod record;

mod backend;

/// The wasm build's allocator (see [`alloc`]).
#[cfg(all(target_arch = "wasm32", feature = "small-alloc"))]
#[global_allocator]
static ALLOC: alloc::SmallAlloc = alloc::SmallAlloc::new();
mod context;
mod error;
mod lead;
mod rows;
mod scan;

/// The host side of the boundary, for the host and native baselines: not
/// part of the API a model is written against.
#[doc(hidden)]
pub use backend::{Backend, Batch, EvidenceData, LeadData, Level, ScanOptions};
pub use context::{Context, Read};
pub use error::{Error, Result};
pub use lead::Lead;
pub use rows::{Field, JoinKey, KeyedRows, Row, Rows};
pub use scan::{Keyed, Scan};

/// Exact decimal numbers for money, ratios and rates.
pub use rust_decimal::Decimal;

/// A calendar date (no time zone, no clock).
pub use chrono::NaiveDate as Date;

/// The contract version this SDK implements; `model.toml`'s `sdk`
/// requirement is checked against it.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// A legal supervision model: one function over the datasets it declared.
pub trait Model {
    /// Runs the model once. Return an error to fail the run: none of its
    /// leads are kept and the ledger records the message.
    fn run(ctx: &mut Context) -> Result<()>;
}

/// Date helpers that follow the conventions of the domain rules.
pub mod dates {
    use crate::Date;
    use chrono::Months;

    /// The same calendar day `years` earlier; 29 February maps to 28
    /// February. "Within N years before R" is `years_before(R, N)..=R`.
    pub fn years_before(date: Date, years: u32) -> Date {
        date.checked_sub_months(Months::new(12 * years))
            .unwrap_or(Date::MIN)
    }

    /// Whole days from `from` to `to` (negative when `to` is earlier).
    pub fn days_between(from: Date, to: Date) -> i64 {
        (to - from).num_days()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn leap_day_maps_to_28_february() {
            let d = Date::from_ymd_opt(2024, 2, 29).unwrap();
            assert_eq!(years_before(d, 5), Date::from_ymd_opt(2019, 2, 28).unwrap());
            assert_eq!(years_before(d, 4), Date::from_ymd_opt(2020, 2, 29).unwrap());
        }

        #[test]
        fn paying_on_the_deadline_is_zero_days_late() {
            let d = Date::from_ymd_opt(2024, 3, 1).unwrap();
            assert_eq!(days_between(d, d), 0);
            assert_eq!(days_between(d, d.succ_opt().unwrap()), 1);
        }
    }
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "model",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__jiandu_export_world",
        default_bindings_module: "jiandu_sdk::bindings",
    });
}

/// Entry points used by [`export_model!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    use crate::{Context, Model};

    /// Runs a model against a backend; used by the wasm entry point and by
    /// native baselines.
    pub fn run_model<M: Model>(backend: Box<dyn crate::Backend>) -> Result<(), String> {
        let mut ctx = Context::new(backend);
        M::run(&mut ctx).map_err(|e| e.to_string())
    }

    #[cfg(target_arch = "wasm32")]
    pub fn run_wasm<M: Model>() -> Result<(), String> {
        crate::backend::wit::install_panic_hook();
        run_model::<M>(Box::new(crate::backend::wit::WitBackend::default()))
    }
}

/// Registers a [`Model`] as the component's entry point.
///
/// ```ignore
/// struct MyModel;
/// impl jiandu_sdk::Model for MyModel { /* … */ }
/// jiandu_sdk::export_model!(MyModel);
/// ```
#[macro_export]
macro_rules! export_model {
    ($model:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __JianduEntry;
            impl $crate::bindings::Guest for __JianduEntry {
                fn describe() -> ::std::string::String {
                    ::std::format!("{}@{}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                }
                fn run() -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::run_wasm::<$model>()
                }
            }
    $crate::bindings::__jiandu_export_world!(__JianduEntry with_types_in $crate::bindings);
        };
    };
}
