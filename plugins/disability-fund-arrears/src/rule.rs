//! The 残保金 rule as pure functions over exact decimals, so that it can be
//! tested on its own and reused by native baselines.

use jiandu_sdk::{Context, Date, Decimal, Result};
use rust_decimal::RoundingStrategy;

/// The model's parameters (model.toml documents each one).
#[derive(Debug, Clone)]
pub struct Params {
    pub levy_year: i64,
    pub ratio: Decimal,
    pub local_avg_wage: Decimal,
    pub wage_cap_multiple: Decimal,
    pub min_monthly_wage: Decimal,
    pub small_enterprise_staff: u32,
    pub relief_first_year: i64,
    pub relief_last_year: i64,
    pub relief_low_ratio: Decimal,
    pub late_fee_rate: Decimal,
    pub deadline: Date,
    pub as_of: Date,
}

impl Params {
    pub fn from_context(ctx: &Context) -> Result<Self> {
        Ok(Params {
            levy_year: ctx.param("levy_year")?,
            ratio: ctx.param("ratio")?,
            local_avg_wage: ctx.param("local_avg_wage")?,
            wage_cap_multiple: ctx.param("wage_cap_multiple")?,
            min_monthly_wage: ctx.param("min_monthly_wage")?,
            small_enterprise_staff: ctx.param("small_enterprise_staff")?,
            relief_first_year: ctx.param("relief_first_year")?,
            relief_last_year: ctx.param("relief_last_year")?,
            relief_low_ratio: ctx.param("relief_low_ratio")?,
            late_fee_rate: ctx.param("late_fee_rate")?,
            deadline: ctx.param("deadline")?,
            as_of: ctx.param("as_of")?,
        })
    }

    /// How many employees a disabled employee counts as: grade 1–2
    /// certificates count twice; none count without social insurance and at
    /// least the minimum wage.
    pub fn counts_as(&self, grade: u8, insured: bool, monthly_wage: Decimal) -> u32 {
        if !insured || monthly_wage < self.min_monthly_wage {
            0
        } else if grade <= 2 {
            2
        } else {
            1
        }
    }

    fn relief_applies(&self) -> bool {
        (self.relief_first_year..=self.relief_last_year).contains(&self.levy_year)
    }

    /// The assessment for one employer, or `None` when nothing is owed
    /// beyond what was paid.
    pub fn assess(&self, i: &Input) -> Option<Assessment> {
        if i.staff == 0 {
            return None;
        }
        let n = Decimal::from(i.staff);
        let d = Decimal::from(i.disabled);
        if self.relief_applies() && i.enterprise && i.staff <= self.small_enterprise_staff {
            return None;
        }
        let shortfall = n * self.ratio - d;
        if shortfall <= Decimal::ZERO {
            return None;
        }
        let own =
            (i.wage_total / n).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        let cap = self.local_avg_wage * self.wage_cap_multiple;
        let wage = own.min(cap);
        let mut relief = Decimal::ONE;
        if self.relief_applies() {
            // D/N ≥ low ratio, without the division's rounding.
            relief = if d >= self.relief_low_ratio * n {
                Decimal::new(5, 1)
            } else {
                Decimal::new(9, 1)
            };
        }
        // The amount payable is money: rounded half-up to the fen before it
        // is compared with what was paid.
        let due = (shortfall * wage * relief)
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        let gap = due - i.paid;
        if gap <= Decimal::ZERO {
            return None;
        }
        Some(Assessment {
            wage,
            relief,
            due,
            gap,
        })
    }

    /// Late fee on the overdue amount for `days_late` days, rounded
    /// half-up to the fen.
    pub fn late_fee(&self, gap: Decimal, days_late: i64) -> Decimal {
        (gap * self.late_fee_rate * Decimal::from(days_late))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    }
}

/// One employer's figures for the data year.
#[derive(Debug, Clone)]
pub struct Input {
    pub enterprise: bool,
    pub staff: u32,
    pub wage_total: Decimal,
    pub disabled: u32,
    pub paid: Decimal,
}

/// What an employer owes.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Average annual wage W after the cap.
    pub wage: Decimal,
    /// Share of the full amount due after relief (1, 0.9 or 0.5).
    pub relief: Decimal,
    pub due: Decimal,
    pub gap: Decimal,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(levy_year: i64) -> Params {
        Params {
            levy_year,
            ratio: "0.015".parse().unwrap(),
            local_avg_wage: "100000".parse().unwrap(),
            wage_cap_multiple: "2".parse().unwrap(),
            min_monthly_wage: "2000".parse().unwrap(),
            small_enterprise_staff: 30,
            relief_first_year: 2023,
            relief_last_year: 2027,
            relief_low_ratio: "0.01".parse().unwrap(),
            late_fee_rate: "0.005".parse().unwrap(),
            deadline: Date::from_ymd_opt(levy_year as i32, 6, 30).unwrap(),
            as_of: Date::from_ymd_opt(levy_year as i32, 12, 31).unwrap(),
        }
    }

    fn input(staff: u32, disabled: u32, wage_total: &str, paid: &str) -> Input {
        Input {
            enterprise: true,
            staff,
            wage_total: wage_total.parse().unwrap(),
            disabled,
            paid: paid.parse().unwrap(),
        }
    }

    #[test]
    fn employer_exactly_at_the_ratio_owes_nothing() {
        // 200 × 1.5% = 3 disabled employees: exactly at the ratio.
        assert_eq!(params(2024).assess(&input(200, 3, "16000000", "0")), None);
    }

    #[test]
    fn below_one_percent_pays_ninety_percent_in_relief_years() {
        // N=200, D=1: (3 − 1) × 80,000 × 0.9 = 144,000.
        let a = params(2024)
            .assess(&input(200, 1, "16000000", "0"))
            .unwrap();
        assert_eq!(a.due, Decimal::from(144_000));
        assert_eq!(a.relief, "0.9".parse().unwrap());
    }

    #[test]
    fn between_one_percent_and_ratio_pays_half() {
        // N=200, D=2 → 1%: (3 − 2) × 80,000 × 0.5 = 40,000.
        let a = params(2024)
            .assess(&input(200, 2, "16000000", "0"))
            .unwrap();
        assert_eq!(a.due, Decimal::from(40_000));
    }

    #[test]
    fn exactly_at_the_low_ratio_pays_half() {
        // N=300, D=3 is exactly 1%: (4.5 − 3) × 80,000 × 0.5 = 60,000.
        let a = params(2024)
            .assess(&input(300, 3, "24000000", "0"))
            .unwrap();
        assert_eq!(a.relief, "0.5".parse().unwrap());
        assert_eq!(a.due, Decimal::from(60_000));
    }

    #[test]
    fn no_relief_outside_the_relief_years() {
        let a = params(2022)
            .assess(&input(200, 2, "16000000", "0"))
            .unwrap();
        assert_eq!(a.due, Decimal::from(80_000));
    }

    #[test]
    fn small_enterprise_is_exempt_but_not_a_public_institution() {
        let p = params(2024);
        assert_eq!(p.assess(&input(30, 0, "2400000", "0")), None);
        let mut i = input(30, 0, "2400000", "0");
        i.enterprise = false;
        // 30 × 0.015 = 0.45 × 80,000 × 0.9 = 32,400.
        assert_eq!(p.assess(&i).unwrap().due, Decimal::from(32_400));
        assert!(p.assess(&input(31, 0, "2480000", "0")).is_some());
    }

    #[test]
    fn wage_is_capped_at_twice_the_local_average() {
        let a = params(2022)
            .assess(&input(100, 0, "50000000", "0"))
            .unwrap();
        assert_eq!(a.wage, Decimal::from(200_000));
        assert_eq!(a.due, Decimal::from(300_000));
    }

    #[test]
    fn paid_in_full_is_not_a_lead_and_exact_money_has_no_residue() {
        // W = 30,000,000.03 / 300 = 100,000.0001 → 100,000.00; due has no
        // residue below the fen, so paying it exactly closes the gap.
        let p = params(2022);
        let i = input(300, 0, "30000000.03", "0");
        let due = p.assess(&i).unwrap().due;
        assert_eq!(
            p.assess(&input(300, 0, "30000000.03", &due.to_string())),
            None
        );
    }

    #[test]
    fn grade_one_and_two_count_twice_and_uninsured_do_not_count() {
        let p = params(2024);
        let min: Decimal = "2000".parse().unwrap();
        assert_eq!(p.counts_as(1, true, min), 2);
        assert_eq!(p.counts_as(3, true, min), 1);
        assert_eq!(p.counts_as(1, false, min), 0);
        assert_eq!(p.counts_as(4, true, "1999.99".parse().unwrap()), 0);
    }

    #[test]
    fn lead_figures_read_as_they_did_through_format() {
        use jiandu_sdk::{Exact, Yuan};
        let p = params(2024);
        let a = p.assess(&input(317, 1, "23456789.01", "1234.565")).unwrap();
        let fee = p.late_fee(a.gap, 184);
        for money in [a.due, a.gap, fee, "1234.565".parse().unwrap()] {
            let by_format = format!(
                "{:.2}",
                money.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
            );
            assert_eq!(Yuan(money).to_string(), by_format);
        }
        for figure in [a.wage, a.relief, p.ratio] {
            assert_eq!(Exact(figure).to_string(), figure.to_string());
        }
        assert_eq!(Yuan("1234.565".parse().unwrap()).to_string(), "1234.57");
    }

    #[test]
    fn late_fee_is_five_per_mille_per_day() {
        let fee = params(2024).late_fee(Decimal::from(10_000), 10);
        assert_eq!(fee, Decimal::from(500));
    }
}
