//! Benchmark model: one pass over every record of a dataset, a little
//! exact arithmetic per record, a lead for about 1% of them.
//!
//! The rule is a plain function ([`is_low`]) so a benchmark can check it
//! natively; the model itself runs unchanged in the sandbox and natively
//! (`jiandu::native`).

use jiandu_sdk::{export_model, Context, Decimal, Lead, Model, Result};
use serde::Deserialize;

/// Whether tax paid is below `min_rate` of revenue, and by how much.
pub fn is_low(revenue: Decimal, tax_paid: Decimal, min_rate: Decimal) -> Option<Decimal> {
    let floor = revenue * min_rate;
    (tax_paid < floor).then(|| floor - tax_paid)
}

/// The fields the rule reads (3 of the dataset's 10), for `reader=structs`.
#[derive(Debug, Deserialize)]
struct Declaration {
    credit_code: String,
    revenue: Decimal,
    tax_paid: Decimal,
}

pub struct ScanOnePercent;

impl Model for ScanOnePercent {
    /// The same rule read two ways (parameter `reader`): field by field
    /// from the batch (`ctx.read(..).rows()`, the default) or into a struct
    /// through serde (`ctx.read(..).into::<T>()`).
    fn run(ctx: &mut Context) -> Result<()> {
        let min_rate: Decimal = ctx.param("min_rate")?;
        let reader: String = ctx.param("reader")?;
        let emit = |code: &str, short: Decimal| {
            ctx.emit(
                Lead::new(code)
                    .title("tax paid below the minimum rate")
                    .amount(short),
            )
        };
        match reader.as_str() {
            "rows" => {
                let mut rows = ctx.read("tax_declarations").rows()?;
                let code = rows.field("credit_code")?;
                let revenue = rows.field("revenue")?;
                let tax_paid = rows.field("tax_paid")?;
                while let Some(d) = rows.next_row()? {
                    if let Some(short) = is_low(d.decimal(revenue)?, d.decimal(tax_paid)?, min_rate)
                    {
                        emit(d.str(code)?, short)?;
                    }
                }
            }
            "structs" => {
                for d in ctx.read("tax_declarations").into::<Declaration>()? {
                    let d = d?;
                    if let Some(short) = is_low(d.revenue, d.tax_paid, min_rate) {
                        emit(&d.credit_code, short)?;
                    }
                }
            }
            other => {
                return Err(jiandu_sdk::Error::msg(format!(
                    "reader `{other}`: expected rows or structs"
                )))
            }
        }
        Ok(())
    }
}

export_model!(ScanOnePercent);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tax_below_the_rate_is_low_and_at_the_rate_is_not() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let rate = d("0.01");
        assert_eq!(is_low(d("1000"), d("9.99"), rate), Some(d("0.01")));
        assert_eq!(is_low(d("1000"), d("10"), rate), None);
    }
}
