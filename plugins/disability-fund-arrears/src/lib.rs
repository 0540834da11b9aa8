//! 残保金漏征监督模型: employers that owe the disability employment security
//! fund. See README.md beside this file for the rule in plain words.

use jiandu_sdk::dates::days_between;
use jiandu_sdk::{export_model, Context, Date, Decimal, Lead, Model, Result};
use serde::Deserialize;

pub mod rule;

#[derive(Deserialize)]
struct Employer {
    credit_code: String,
    name: String,
    entity_type: String,
}

#[derive(Deserialize)]
struct Headcount {
    credit_code: String,
    year: i64,
    staff: u32,
    wage_total: Decimal,
}

#[derive(Deserialize)]
struct Disabled {
    employer_credit_code: String,
    year: i64,
    grade: u8,
    insured: bool,
    monthly_wage: Decimal,
}

#[derive(Deserialize)]
struct Payment {
    credit_code: String,
    levy_year: i64,
    amount: Decimal,
    paid_on: Date,
}

pub struct DisabilityFundArrears;

impl Model for DisabilityFundArrears {
    fn run(ctx: &mut Context) -> Result<()> {
        let p = rule::Params::from_context(ctx)?;
        let data_year = p.levy_year - 1;
        let mut headcounts = ctx
            .scan::<Headcount>("social_insurance")?
            .keyed(|h| h.credit_code.clone());
        let mut disabled = ctx
            .scan::<Disabled>("disabled_employees")?
            .keyed(|d| d.employer_credit_code.clone());
        let mut payments = ctx
            .scan::<Payment>("fund_payments")?
            .keyed(|p| p.credit_code.clone());
        let mut leads = 0u64;
        for employer in ctx.scan::<Employer>("employers")? {
            let e = employer?;
            let Some(h) = headcounts
                .take(&e.credit_code)?
                .into_iter()
                .find(|h| h.year == data_year)
            else {
                continue;
            };
            let counted: u32 = disabled
                .take(&e.credit_code)?
                .iter()
                .filter(|d| d.year == data_year)
                .map(|d| p.counts_as(d.grade, d.insured, d.monthly_wage))
                .sum();
            let paid: Decimal = payments
                .take(&e.credit_code)?
                .iter()
                .filter(|pay| pay.levy_year == p.levy_year && pay.paid_on <= p.as_of)
                .map(|pay| pay.amount)
                .sum();
            let input = rule::Input {
                enterprise: e.entity_type == "企业",
                staff: h.staff,
                wage_total: h.wage_total,
                disabled: counted,
                paid,
            };
            let Some(a) = p.assess(&input) else { continue };
            let days_late = days_between(p.deadline, p.as_of).max(0);
            let late_fee = p.late_fee(a.gap, days_late);
            ctx.emit(
                Lead::new(&e.credit_code)
                    .title(format!("{} {}年度残保金未足额缴纳", e.name, p.levy_year))
                    .amount(a.gap)
                    .evidence("employer", &e.name)
                    .evidence("levy_year", p.levy_year)
                    .evidence("staff_n", h.staff)
                    .evidence("disabled_d", counted)
                    .evidence("avg_wage_w", a.wage)
                    .evidence("ratio", p.ratio)
                    .evidence("relief", a.relief)
                    .evidence("due", rule::yuan(a.due))
                    .evidence("paid", rule::yuan(paid))
                    .evidence("gap", rule::yuan(a.gap))
                    .evidence("days_late", days_late)
                    .evidence("late_fee", rule::yuan(late_fee)),
            )?;
            leads += 1;
        }
        ctx.info(format!("levy year {}: {leads} employers owe", p.levy_year));
        Ok(())
    }
}

export_model!(DisabilityFundArrears);
