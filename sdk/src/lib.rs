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
//!     entity_type: String,
//! }
//!
//! #[derive(Deserialize)]
//! struct Payment {
//!     credit_code: String,
//!     levy_year: i64,
//!     amount: Decimal,
//! }
//!
//! struct UnpaidFund;
//!
//! impl Model for UnpaidFund {
//!     fn run(ctx: &mut Context) -> Result<()> {
//!         // Typed parameters, declared with defaults in model.toml.
//!         let levy_year: i64 = ctx.param("levy_year")?;
//!         // Both datasets are sorted by credit code, so this is one merge
//!         // pass with flat memory, not one lookup per employer.
//!         let mut payments = ctx.read("fund_payments").into::<Payment>()?.keyed(|p| p.credit_code.clone());
//!         for employer in ctx.read("employers").into::<Employer>()? {
//!             let e = employer?;
//!             if e.entity_type != "企业" {
//!                 continue;
//!             }
//!             let paid: Decimal = payments
//!                 .take(&e.credit_code)?
//!                 .iter()
//!                 .filter(|p| p.levy_year == levy_year)
//!                 .map(|p| p.amount)
//!                 .sum();
//!             if paid.is_zero() {
//!                 ctx.emit(
//!                     Lead::new(&e.credit_code)
//!                         .title(format!("{} 未缴纳 {levy_year} 年度残保金", e.name))
//!                         .evidence("levy_year", levy_year),
//!                 )?;
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_model!(UnpaidFund);
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
//! Money is exact: use [`Decimal`], never `f64`, for amounts, and write it in
//! evidence as [`Yuan`] (rounded half-up to the fen); [`Exact`] writes other
//! decimals. Both write the text `Decimal` would, without its cost.

#![warn(missing_docs)]

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
mod decimal_text;
/// The encoding leads cross the boundary in: for the host, not part of the
/// API a model is written against.
#[doc(hidden)]
pub mod encoded_lead;
mod error;
mod lead;
mod rows;
mod scan;

/// The host side of the boundary, for the host and native baselines: not
/// part of the API a model is written against.
#[doc(hidden)]
pub use backend::{Backend, Batch, EvidenceData, LeadData, Level, ScanOptions};
pub use context::{Context, Read};
pub use decimal_text::{Exact, Yuan};
pub use error::{Error, Result};
pub use lead::Lead;
pub use rows::{Field, JoinKey, KeyedRows, Row, Rows};
pub use scan::{Keyed, Scan};

/// Exact decimal numbers for money, ratios and rates.
///
/// ```
/// use jiandu_sdk::Decimal;
/// // 1.5% of a 1,234,567.80 yuan wage total, to the fen.
/// let wage_total: Decimal = "1234567.80".parse()?;
/// let ratio = Decimal::new(15, 3);
/// assert_eq!((wage_total * ratio).round_dp(2), Decimal::new(1851852, 2));
/// # Ok::<(), jiandu_sdk::Error>(())
/// ```
pub use rust_decimal::Decimal;

/// A calendar date (no time zone, no clock).
///
/// ```
/// use jiandu_sdk::Date;
/// let deadline: Date = "2024-06-30".parse()?;
/// assert_eq!(deadline, Date::from_ymd_opt(2024, 6, 30).unwrap());
/// assert_eq!(deadline.to_string(), "2024-06-30");
/// # Ok::<(), jiandu_sdk::Error>(())
/// ```
pub use chrono::NaiveDate as Date;

/// The contract version this SDK implements; `model.toml`'s `sdk`
/// requirement is checked against it.
///
/// ```
/// // Admitted by `sdk = "^0.2"` in model.toml.
/// assert_eq!(jiandu_sdk::CONTRACT_VERSION, "0.2.1");
/// ```
pub const CONTRACT_VERSION: &str = "0.2.1";

/// A legal supervision model: one function over the datasets it declared.
///
/// ```no_run
/// use jiandu_sdk::{Context, Model, Result};
///
/// struct EmployerCount;
///
/// impl Model for EmployerCount {
///     fn run(ctx: &mut Context) -> Result<()> {
///         let employers = ctx.read("employers").rows()?;
///         ctx.info(format!("fields: {}", employers.names().join(", ")));
///         Ok(())
///     }
/// }
/// jiandu_sdk::export_model!(EmployerCount);
/// ```
pub trait Model {
    /// Runs the model once. Return an error to fail the run: none of its
    /// leads are kept and the ledger records the message.
    ///
    /// ```no_run
    /// # use jiandu_sdk::{Context, Date, Error, Model, Result};
    /// # struct LateFees;
    /// impl Model for LateFees {
    ///     fn run(ctx: &mut Context) -> Result<()> {
    ///         let (deadline, as_of): (Date, Date) = (ctx.param("deadline")?, ctx.param("as_of")?);
    ///         if as_of < deadline {
    ///             return Err(Error::msg(format!("as_of {as_of} is before the deadline {deadline}")));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn run(ctx: &mut Context) -> Result<()>;
}

/// Date helpers that follow the conventions of the domain rules.
///
/// ```
/// use jiandu_sdk::{dates, Date};
/// let as_of = Date::from_ymd_opt(2024, 12, 31).unwrap();
/// assert_eq!(dates::years_before(as_of, 1), Date::from_ymd_opt(2023, 12, 31).unwrap());
/// assert_eq!(dates::days_between(dates::years_before(as_of, 1), as_of), 366);
/// ```
pub mod dates {
    use crate::Date;
    use chrono::Months;

    /// The same calendar day `years` earlier; 29 February maps to 28
    /// February. "Within N years before R" is `years_before(R, N)..=R`.
    ///
    /// ```
    /// use jiandu_sdk::{dates::years_before, Date};
    /// let offence = Date::from_ymd_opt(2024, 2, 29).unwrap();
    /// let since = years_before(offence, 5);
    /// assert_eq!(since, Date::from_ymd_opt(2019, 2, 28).unwrap());
    /// // A prior record decided on 2019-03-01 is within five years.
    /// assert!((since..=offence).contains(&Date::from_ymd_opt(2019, 3, 1).unwrap()));
    /// ```
    pub fn years_before(date: Date, years: u32) -> Date {
        date.checked_sub_months(Months::new(12 * years))
            .unwrap_or(Date::MIN)
    }

    /// Whole days from `from` to `to` (negative when `to` is earlier).
    ///
    /// ```
    /// use jiandu_sdk::{dates::days_between, Date};
    /// let deadline = Date::from_ymd_opt(2024, 6, 30).unwrap();
    /// let paid_on = Date::from_ymd_opt(2024, 7, 15).unwrap();
    /// assert_eq!(days_between(deadline, paid_on), 15);
    /// assert_eq!(days_between(paid_on, deadline), -15);
    /// ```
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
        M::run(&mut ctx).map_err(|e| e.to_string())?;
        // Leads still buffered go to the host before the run ends.
        ctx.flush_leads().map_err(|e| e.to_string())
    }

    #[cfg(target_arch = "wasm32")]
    pub fn run_wasm<M: Model>() -> Result<(), String> {
        crate::backend::wit::install_panic_hook();
        run_model::<M>(Box::new(crate::backend::wit::WitBackend::default()))
    }
}

/// Registers a [`Model`] as the component's entry point. It expands to
/// nothing outside a wasm build, so a model crate still builds and tests
/// natively.
///
/// ```no_run
/// use jiandu_sdk::{export_model, Context, Model, Result};
///
/// struct DisabilityFundArrears;
///
/// impl Model for DisabilityFundArrears {
///     fn run(ctx: &mut Context) -> Result<()> {
///         let levy_year: i64 = ctx.param("levy_year")?;
///         ctx.info(format!("levy year {levy_year}"));
///         Ok(())
///     }
/// }
///
/// export_model!(DisabilityFundArrears);
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
