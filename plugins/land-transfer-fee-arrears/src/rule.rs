//! The land transfer fee rule as pure functions over exact decimals.
//!
//! - Lead A: an instalment whose deadline has passed is (partly) unpaid on
//!   `as_of`; penalty = unpaid × rate × (as_of − deadline) days; flagged when
//!   more than 60 days late and neither a collection notice nor a
//!   cancellation is on record.
//! - Lead B: the property certificate was issued before the price was paid
//!   in full.
//! - Lead C: a winning bidder for the parcel was on the dishonest judgment
//!   debtors list on the bid date.

use chrono::Months;
use jiandu_sdk::dates::days_between;
use jiandu_sdk::{Context, Date, Decimal, Result};
use rust_decimal::RoundingStrategy;

/// The model's parameters (model.toml documents each one).
#[derive(Debug, Clone)]
pub struct Params {
    pub as_of: Date,
    pub penalty_rate: Decimal,
    pub flag_days: i64,
    pub grace_days: i64,
    pub first_share: Decimal,
    pub first_months: u32,
    pub full_months: u32,
}

impl Params {
    pub fn from_context(ctx: &Context) -> Result<Self> {
        Ok(Params {
            as_of: ctx.param("as_of")?,
            penalty_rate: ctx.param("penalty_rate")?,
            flag_days: ctx.param("flag_days")?,
            grace_days: ctx.param("grace_days")?,
            first_share: ctx.param("first_share")?,
            first_months: ctx.param("first_months")?,
            full_months: ctx.param("full_months")?,
        })
    }
}

/// One contract as the rule needs it.
#[derive(Debug, Clone)]
pub struct Contract {
    pub signed_on: Date,
    pub price: Decimal,
    pub certificate_on: Option<Date>,
    pub collection_notice_on: Option<Date>,
    pub cancelled_on: Option<Date>,
}

/// An instalment of the payment plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Instalment {
    pub due_on: Date,
    pub amount: Decimal,
}

/// A treasury payment.
#[derive(Debug, Clone)]
pub struct Payment {
    pub amount: Decimal,
    pub paid_on: Date,
}

/// An entry of the dishonest judgment debtors list.
#[derive(Debug, Clone)]
pub struct Listing {
    pub list_no: String,
    pub listed_on: Date,
    pub removed_on: Option<Date>,
}

/// One instalment unpaid past its deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct Overdue {
    pub due_on: Date,
    pub unpaid: Decimal,
    pub days_late: i64,
    /// Exact; rounded only for output.
    pub penalty: Decimal,
}

/// Lead A's figures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Arrears {
    pub overdue: Vec<Overdue>,
    pub total: Decimal,
    pub penalty: Decimal,
    pub max_days_late: i64,
}

/// Half-up to the fen, for output.
pub fn round2(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn add_months(d: Date, months: u32) -> Date {
    d.checked_add_months(Months::new(months))
        .unwrap_or(Date::MAX)
}

impl Params {
    /// The contract's payment plan by deadline, or, when the file has none,
    /// the statutory one: `first_share` of the price within `first_months`
    /// of signing, the rest within `full_months`.
    pub fn schedule(&self, contract: &Contract, plan: &[Instalment]) -> Vec<Instalment> {
        let mut out = plan.to_vec();
        if out.is_empty() {
            let first = round2(contract.price * self.first_share);
            out.push(Instalment {
                due_on: add_months(contract.signed_on, self.first_months),
                amount: first,
            });
            out.push(Instalment {
                due_on: add_months(contract.signed_on, self.full_months),
                amount: contract.price - first,
            });
        }
        out.sort_by_key(|i| i.due_on);
        out
    }

    /// Whether a plan is within the statutory limits: at least
    /// `first_share` of the price due within `first_months` of signing,
    /// all of it within `full_months`.
    pub fn plan_within_rule(&self, contract: &Contract, schedule: &[Instalment]) -> bool {
        let first_by = add_months(contract.signed_on, self.first_months);
        let full_by = add_months(contract.signed_on, self.full_months);
        let early: Decimal = schedule
            .iter()
            .filter(|i| i.due_on <= first_by)
            .map(|i| i.amount)
            .sum();
        let total: Decimal = schedule.iter().map(|i| i.amount).sum();
        early >= contract.price * self.first_share
            && schedule.iter().all(|i| i.due_on <= full_by)
            && total >= contract.price
    }

    /// What was paid by `as_of`.
    pub fn paid(&self, payments: &[Payment]) -> Decimal {
        payments
            .iter()
            .filter(|p| p.paid_on <= self.as_of)
            .map(|p| p.amount)
            .sum()
    }

    /// Lead A: payments settle instalments in deadline order; what remains
    /// unpaid of an instalment more than `grace_days` past its deadline is
    /// in arrears. Paying on the deadline is on time.
    pub fn arrears(&self, schedule: &[Instalment], payments: &[Payment]) -> Arrears {
        let mut left = self.paid(payments);
        let mut out = Arrears::default();
        for inst in schedule {
            let covered = inst.amount.min(left).max(Decimal::ZERO);
            left -= covered;
            let unpaid = inst.amount - covered;
            let days_late = days_between(inst.due_on, self.as_of);
            if unpaid > Decimal::ZERO && days_late > 0 && days_late > self.grace_days {
                let penalty = unpaid * self.penalty_rate * Decimal::from(days_late);
                out.total += unpaid;
                out.penalty += penalty;
                out.max_days_late = out.max_days_late.max(days_late);
                out.overdue.push(Overdue {
                    due_on: inst.due_on,
                    unpaid,
                    days_late,
                    penalty,
                });
            }
        }
        out
    }

    /// Lead A's flag: more than `flag_days` late and neither a collection
    /// notice nor a cancellation dated on or before `as_of`.
    pub fn no_action_flag(&self, arrears: &Arrears, contract: &Contract) -> bool {
        let acted = |d: Option<Date>| d.is_some_and(|d| d <= self.as_of);
        arrears.max_days_late > self.flag_days
            && !acted(contract.collection_notice_on)
            && !acted(contract.cancelled_on)
    }

    /// The day cumulative payments (up to `as_of`) first reached `price`.
    pub fn fully_paid_on(&self, price: Decimal, payments: &[Payment]) -> Option<Date> {
        let mut ps: Vec<&Payment> = payments
            .iter()
            .filter(|p| p.paid_on <= self.as_of)
            .collect();
        ps.sort_by_key(|p| p.paid_on);
        let mut sum = Decimal::ZERO;
        for p in ps {
            sum += p.amount;
            if sum >= price {
                return Some(p.paid_on);
            }
        }
        None
    }

    /// Lead B: the certificate date, when it was issued (on or before
    /// `as_of`) before the day the price was paid in full. Issued on the
    /// day of the last payment is not before it.
    pub fn certificate_before_payment(
        &self,
        contract: &Contract,
        payments: &[Payment],
    ) -> Option<Date> {
        let cert = contract.certificate_on.filter(|d| *d <= self.as_of)?;
        match self.fully_paid_on(contract.price, payments) {
            Some(paid) if paid <= cert => None,
            _ => Some(cert),
        }
    }

    /// Lead C: the listing that covered `bid_on` (listed on or before it,
    /// not removed on or before it). Bids after `as_of` are ignored.
    pub fn listed_on_bid_date<'l>(
        &self,
        bid_on: Date,
        listings: &'l [Listing],
    ) -> Option<&'l Listing> {
        if bid_on > self.as_of {
            return None;
        }
        listings
            .iter()
            .find(|l| l.listed_on <= bid_on && l.removed_on.is_none_or(|r| r > bid_on))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn params() -> Params {
        Params {
            as_of: d("2024-12-31"),
            penalty_rate: dec("0.001"),
            flag_days: 60,
            grace_days: 0,
            first_share: dec("0.5"),
            first_months: 1,
            full_months: 12,
        }
    }

    fn contract() -> Contract {
        Contract {
            signed_on: d("2024-01-15"),
            price: dec("10000000"),
            certificate_on: None,
            collection_notice_on: None,
            cancelled_on: None,
        }
    }

    fn inst(due: &str, amount: &str) -> Instalment {
        Instalment {
            due_on: d(due),
            amount: dec(amount),
        }
    }

    fn pay(on: &str, amount: &str) -> Payment {
        Payment {
            amount: dec(amount),
            paid_on: d(on),
        }
    }

    #[test]
    fn penalty_is_one_per_mille_per_day_late() {
        let p = params();
        let plan = [inst("2024-02-15", "5000000"), inst("2024-12-01", "5000000")];
        let a = p.arrears(&plan, &[pay("2024-02-10", "5000000")]);
        // 30 days late on 5,000,000: 150,000.
        assert_eq!(a.total, dec("5000000"));
        assert_eq!(a.max_days_late, 30);
        assert_eq!(a.penalty, dec("150000"));
    }

    #[test]
    fn deadline_equal_to_as_of_is_not_late() {
        let p = params();
        let a = p.arrears(&[inst("2024-12-31", "100")], &[]);
        assert_eq!(a, Arrears::default());
        let a = p.arrears(&[inst("2024-12-30", "100")], &[]);
        assert_eq!(a.max_days_late, 1);
        assert_eq!(a.penalty, dec("0.1"));
    }

    #[test]
    fn grace_period_holds_back_a_lead_until_it_has_passed() {
        let mut p = params();
        p.grace_days = 10;
        assert_eq!(p.arrears(&[inst("2024-12-21", "100")], &[]).total, dec("0"));
        let a = p.arrears(&[inst("2024-12-20", "100")], &[]);
        // Past the grace period, days late still count from the deadline.
        assert_eq!(a.max_days_late, 11);
        assert_eq!(a.penalty, dec("1.1"));
    }

    #[test]
    fn payments_settle_the_earliest_deadline_first_and_later_ones_are_ignored() {
        let p = params();
        let plan = [inst("2024-02-15", "600"), inst("2024-06-15", "400")];
        let a = p.arrears(&plan, &[pay("2024-03-01", "700"), pay("2025-01-01", "300")]);
        assert_eq!(a.overdue.len(), 1);
        assert_eq!(a.overdue[0].due_on, d("2024-06-15"));
        assert_eq!(a.overdue[0].unpaid, dec("300"));
        assert_eq!(a.overdue[0].days_late, 199);
    }

    #[test]
    fn paid_in_full_exactly_leaves_no_arrears() {
        let p = params();
        let plan = [
            inst("2024-02-15", "3333333.33"),
            inst("2024-06-15", "6666666.67"),
        ];
        let a = p.arrears(
            &plan,
            &[
                pay("2024-06-15", "6666666.67"),
                pay("2024-02-15", "3333333.33"),
            ],
        );
        assert_eq!(a, Arrears::default());
    }

    #[test]
    fn flag_needs_more_than_sixty_days_and_no_notice_or_cancellation() {
        let p = params();
        let mut c = contract();
        let a60 = p.arrears(&[inst("2024-11-01", "100")], &[]);
        assert_eq!(a60.max_days_late, 60);
        assert!(!p.no_action_flag(&a60, &c));
        let a61 = p.arrears(&[inst("2024-10-31", "100")], &[]);
        assert!(p.no_action_flag(&a61, &c));
        c.collection_notice_on = Some(d("2024-12-01"));
        assert!(!p.no_action_flag(&a61, &c));
        c.collection_notice_on = Some(d("2025-01-02"));
        assert!(
            p.no_action_flag(&a61, &c),
            "a notice after as_of is ignored"
        );
        c.cancelled_on = Some(d("2024-12-31"));
        assert!(!p.no_action_flag(&a61, &c));
    }

    #[test]
    fn certificate_on_the_day_of_full_payment_is_not_early() {
        let p = params();
        let mut c = contract();
        let pays = [pay("2024-02-01", "5000000"), pay("2024-08-01", "5000000")];
        c.certificate_on = Some(d("2024-08-01"));
        assert_eq!(p.certificate_before_payment(&c, &pays), None);
        c.certificate_on = Some(d("2024-07-31"));
        assert_eq!(
            p.certificate_before_payment(&c, &pays),
            Some(d("2024-07-31"))
        );
        // Never paid in full.
        c.certificate_on = Some(d("2024-09-01"));
        assert_eq!(
            p.certificate_before_payment(&c, &pays[..1]),
            Some(d("2024-09-01"))
        );
        // Issued after as_of: ignored.
        c.certificate_on = Some(d("2025-01-01"));
        assert_eq!(p.certificate_before_payment(&c, &pays[..1]), None);
    }

    #[test]
    fn dishonest_listing_covers_the_bid_date_inclusively() {
        let p = params();
        let l = |listed: &str, removed: Option<&str>| Listing {
            list_no: "L".into(),
            listed_on: d(listed),
            removed_on: removed.map(d),
        };
        let bid = d("2024-03-10");
        assert!(p
            .listed_on_bid_date(bid, &[l("2024-03-10", None)])
            .is_some());
        assert!(p
            .listed_on_bid_date(bid, &[l("2024-03-11", None)])
            .is_none());
        assert!(p
            .listed_on_bid_date(bid, &[l("2023-01-01", Some("2024-03-11"))])
            .is_some());
        // Removed on the bid date: no longer listed that day.
        assert!(p
            .listed_on_bid_date(bid, &[l("2023-01-01", Some("2024-03-10"))])
            .is_none());
    }

    #[test]
    fn statutory_schedule_when_the_file_has_no_plan() {
        let p = params();
        let c = contract();
        let s = p.schedule(&c, &[]);
        assert_eq!(
            s,
            vec![
                inst("2024-02-15", "5000000.0"),
                inst("2025-01-15", "5000000.0")
            ]
        );
        assert!(p.plan_within_rule(&c, &s));
        let lax = [inst("2024-03-15", "5000000"), inst("2024-12-01", "5000000")];
        assert!(!p.plan_within_rule(&c, &lax));
    }
}
