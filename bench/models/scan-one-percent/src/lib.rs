//! Benchmark model: one pass over every record of a dataset, a little
//! exact arithmetic per record, a lead for about 1% of them.
//!
//! The rule is a plain function ([`is_low`]) so a benchmark can check it
//! natively; the model itself runs unchanged in the sandbox and natively
//! (`jiandu::native`).

use jiandu_sdk::{export_model, Context, Decimal, Lead, Model, Result};
use serde::Deserialize;

/// The fields the rule reads (3 of the dataset's 10).
#[derive(Debug, Deserialize)]
pub struct Declaration {
    pub credit_code: String,
    pub revenue: Decimal,
    pub tax_paid: Decimal,
}

/// Whether tax paid is below `min_rate` of revenue, and by how much.
pub fn is_low(d: &Declaration, min_rate: Decimal) -> Option<Decimal> {
    let floor = d.revenue * min_rate;
    (d.tax_paid < floor).then(|| floor - d.tax_paid)
}

pub struct ScanOnePercent;

impl Model for ScanOnePercent {
    fn run(ctx: &mut Context) -> Result<()> {
        let min_rate: Decimal = ctx.param("min_rate")?;
        for d in ctx.scan::<Declaration>("tax_declarations")? {
            let d = d?;
            if let Some(short) = is_low(&d, min_rate) {
                ctx.emit(
                    Lead::new(&d.credit_code)
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
        let d = |tax: &str| Declaration {
            credit_code: "X".into(),
            revenue: "1000".parse().unwrap(),
            tax_paid: tax.parse().unwrap(),
        };
        let rate: Decimal = "0.01".parse().unwrap();
        assert_eq!(is_low(&d("9.99"), rate), Some("0.01".parse().unwrap()));
        assert_eq!(is_low(&d("10"), rate), None);
    }
}
