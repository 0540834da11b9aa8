//! 残保金漏征监督模型: employers that owe the disability employment security
//! fund. See README.md beside this file for the rule in plain words.

use jiandu_sdk::dates::days_between;
use jiandu_sdk::{export_model, Context, Decimal, Exact, Lead, Model, Result, Yuan};

pub mod rule;

pub struct DisabilityFundArrears;

impl Model for DisabilityFundArrears {
    /// One merge pass over the four datasets, all sorted by credit code.
    /// Records are read field by field from the batches the host sends
    /// (`ctx.read(..).rows()`): at a million employers and six million records,
    /// building a struct per record would be most of the run.
    fn run(ctx: &mut Context) -> Result<()> {
        let p = rule::Params::from_context(ctx)?;
        let data_year = p.levy_year - 1;

        let mut headcounts = ctx.read("social_insurance").rows()?.keyed("credit_code")?;
        let h_year = headcounts.field("year")?;
        let h_staff = headcounts.field("staff")?;
        let h_wages = headcounts.field("wage_total")?;

        let mut disabled = ctx
            .read("disabled_employees")
            .rows()?
            .keyed("employer_credit_code")?;
        let d_year = disabled.field("year")?;
        let d_grade = disabled.field("grade")?;
        let d_insured = disabled.field("insured")?;
        let d_wage = disabled.field("monthly_wage")?;

        let mut payments = ctx.read("fund_payments").rows()?.keyed("credit_code")?;
        let p_year = payments.field("levy_year")?;
        let p_amount = payments.field("amount")?;
        let p_paid_on = payments.field("paid_on")?;

        let mut employers = ctx.read("employers").rows()?;
        let e_code = employers.field("credit_code")?;
        let e_name = employers.field("name")?;
        let e_type = employers.field("entity_type")?;

        let mut leads = 0u64;
        while let Some(e) = employers.next_row()? {
            let code = e.str(e_code)?;
            let mut found = None;
            headcounts.each(code, |h| {
                if found.is_none() && h.i64(h_year)? == data_year {
                    found = Some((h.int::<u32>(h_staff)?, h.decimal(h_wages)?));
                }
                Ok(())
            })?;
            let Some((staff, wage_total)) = found else {
                continue;
            };
            let mut counted = 0u32;
            disabled.each(code, |d| {
                if d.i64(d_year)? == data_year {
                    counted += p.counts_as(d.int(d_grade)?, d.bool(d_insured)?, d.decimal(d_wage)?);
                }
                Ok(())
            })?;
            let mut paid = Decimal::ZERO;
            payments.each(code, |pay| {
                if pay.i64(p_year)? == p.levy_year && pay.date(p_paid_on)? <= p.as_of {
                    paid += pay.decimal(p_amount)?;
                }
                Ok(())
            })?;
            let input = rule::Input {
                enterprise: e.str(e_type)? == "企业",
                staff,
                wage_total,
                disabled: counted,
                paid,
            };
            let Some(a) = p.assess(&input) else { continue };
            let days_late = days_between(p.deadline, p.as_of).max(0);
            let late_fee = p.late_fee(a.gap, days_late);
            let name = e.str(e_name)?;
            ctx.emit(
                Lead::new(code)
                    .title(format!("{name} {}年度残保金未足额缴纳", p.levy_year))
                    .amount(a.gap)
                    .evidence("employer", name)
                    .evidence("levy_year", p.levy_year)
                    .evidence("staff_n", staff)
                    .evidence("disabled_d", counted)
                    .evidence("avg_wage_w", Exact(a.wage))
                    .evidence("ratio", Exact(p.ratio))
                    .evidence("relief", Exact(a.relief))
                    .evidence("due", Yuan(a.due))
                    .evidence("paid", Yuan(paid))
                    .evidence("gap", Yuan(a.gap))
                    .evidence("days_late", days_late)
                    .evidence("late_fee", Yuan(late_fee)),
            )?;
            leads += 1;
        }
        ctx.info(format!("levy year {}: {leads} employers owe", p.levy_year));
        Ok(())
    }
}

export_model!(DisabilityFundArrears);
