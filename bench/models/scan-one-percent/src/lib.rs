//! Benchmark model: one pass over every record of a dataset, a little
//! exact arithmetic per record, a lead for about 1% of them.
//!
//! The rule is a plain function ([`is_low`]) so a benchmark can check it
//! natively; the model itself runs unchanged in the sandbox and natively
//! (`jiandu::native`).

use jiandu_sdk::{export_model, Context, Decimal, Lead, Model, Result};

/// Whether tax paid is below `min_rate` of revenue, and by how much.
pub fn is_low(revenue: Decimal, tax_paid: Decimal, min_rate: Decimal) -> Option<Decimal> {
    let floor = revenue * min_rate;
    (tax_paid < floor).then(|| floor - tax_paid)
}

pub struct ScanOnePercent;

impl Model for ScanOnePercent {
    /// Reads 3 of the dataset's 10 fields, field by field from the batch
    /// (`Context::rows`), as a model over a large dataset would.
    fn run(ctx: &mut Context) -> Result<()> {
        let min_rate: Decimal = ctx.param("min_rate")?;
        let mut rows = ctx.rows("tax_declarations")?;
        let code = rows.field("credit_code")?;
        let revenue = rows.field("revenue")?;
        let tax_paid = rows.field("tax_paid")?;
        while let Some(d) = rows.next_row()? {
            if let Some(short) = is_low(d.decimal(revenue)?, d.decimal(tax_paid)?, min_rate) {
                ctx.emit(
                    Lead::new(d.str(code)?)
                        .title("tax paid below the minimum rate")
                        .amount(short),
                )?;
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
