//! Synthetic data for the 国有土地出让金 model (sample model 3): land
//! transfer contracts, instalment plans, treasury payments, bids and the
//! dishonest judgment debtors list, with planted leads and near misses.
//!
//! The rule constants match the model's defaults (as of 2024-12-31, 1‰ per
//! day, flag after 60 days, statutory plan 50% within a month and the rest
//! within a year) except the grace period: the data is made for a unit
//! whose contracts allow [`GRACE_DAYS`] days, passed to the run as
//! `grace_days` (see [`Generated::params`]), so that an instalment a day
//! late but within the grace period is a planted near miss.
//! [`Generated::expected_for`] gives the leads for any other grace period.

use super::{credit_code, date, person_name, ymd, DataFile, Files, People, XlsxCell};
use chrono::{Datelike, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use std::path::Path;

/// The assessment date the data is built around (the model's default).
pub fn as_of() -> NaiveDate {
    date(2024, 12, 31)
}

/// The grace period the generated contracts allow.
pub const GRACE_DAYS: i64 = 15;

const CODE_SERIALS: u64 = 5_000_000;
const PEOPLE_SERIALS: u64 = 3_000_000;

use super::round2;

/// What the generator planted for one contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Paid on time, certificate after full payment.
    PaidOnTime,
    /// Second instalment not yet due.
    NotYetDue,
    /// A: second instalment 16–60 days late.
    ArrearsRecent,
    /// A: exactly 60 days late, so not flagged.
    ArrearsSixtyDays,
    /// A, flagged: 61 days late, no notice.
    ArrearsSixtyOneDays,
    /// A, flagged: long overdue, no notice, not cancelled.
    ArrearsLongNoAction,
    /// A: long overdue, collection notice sent.
    ArrearsLongNotified,
    /// A: long overdue, contract cancelled.
    ArrearsCancelled,
    /// A: second instalment partly paid.
    ArrearsPartial,
    /// A: paid only after as_of.
    PaidAfterAsOf,
    /// A: no plan on file; the statutory one applies.
    NoPlanArrears,
    /// B: certificate a few days before the last payment.
    EarlyCertificate,
    /// B: certificate issued, balance not yet due nor paid.
    CertificateUnpaid,
    /// A and B.
    ArrearsAndCertificate,
    /// C: winner listed on the bid date.
    DishonestWinner,
    /// C: winner removed from the list only after the bid.
    DishonestRemovedAfterBid,
    /// Near miss: paid exactly on the deadlines.
    PaidOnDeadline,
    /// Near miss: balance due on as_of itself, unpaid.
    DueOnAsOf,
    /// Near miss: unpaid 1–15 days after the deadline, within the grace.
    WithinGrace,
    /// Near miss: paid one day late, before as_of.
    PaidOneDayLate,
    /// Near miss: certificate on the day of the last payment.
    CertificateSameDay,
    /// Near miss: winner listed the day after the bid.
    DishonestListedAfterBid,
    /// Near miss: winner removed on the bid date.
    DishonestRemovedOnBidDate,
    /// Near miss: a listed bidder who lost.
    DishonestLoser,
    /// Near miss: signed after as_of.
    SignedAfterAsOf,
}

impl Scenario {
    /// The findings planted (A, B, C) under the generator's grace period.
    pub fn findings(self) -> &'static str {
        use Scenario::*;
        match self {
            ArrearsRecent | ArrearsSixtyDays | ArrearsSixtyOneDays | ArrearsLongNoAction
            | ArrearsLongNotified | ArrearsCancelled | ArrearsPartial | PaidAfterAsOf
            | NoPlanArrears => "A",
            EarlyCertificate | CertificateUnpaid => "B",
            ArrearsAndCertificate => "AB",
            DishonestWinner | DishonestRemovedAfterBid => "C",
            _ => "",
        }
    }

    pub fn is_violation(self) -> bool {
        !self.findings().is_empty()
    }

    pub fn is_near_miss(self) -> bool {
        use Scenario::*;
        matches!(
            self,
            PaidOnDeadline
                | DueOnAsOf
                | WithinGrace
                | PaidOneDayLate
                | CertificateSameDay
                | DishonestListedAfterBid
                | DishonestRemovedOnBidDate
                | DishonestLoser
                | SignedAfterAsOf
        )
    }
}

/// An expected lead, computed by the generator's own reading of the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub contract_no: String,
    pub scenario: Scenario,
    /// Which findings apply, in order: "A", "AB", "C"…
    pub findings: String,
    /// Unpaid amount past its deadline (lead A), exact.
    pub arrears: Decimal,
    /// 1‰ per day on it, exact.
    pub penalty: Decimal,
    /// More than 60 days late with no notice or cancellation.
    pub flag: bool,
}

struct Bid {
    code: String,
    name: String,
    bid_on: NaiveDate,
    won: bool,
    price: Decimal,
}

struct Listing {
    code: String,
    listed_on: NaiveDate,
    removed_on: Option<NaiveDate>,
}

/// One contract and everything about it.
pub struct Contract {
    no: String,
    parcel: String,
    code: String,
    name: String,
    signed: NaiveDate,
    price: Decimal,
    certificate_on: Option<NaiveDate>,
    notice_on: Option<NaiveDate>,
    cancelled_on: Option<NaiveDate>,
    /// (due on, amount); empty when the file has no plan.
    plan: Vec<(NaiveDate, Decimal)>,
    /// (amount, paid on)
    payments: Vec<(Decimal, NaiveDate)>,
    bids: Vec<Bid>,
    listings: Vec<Listing>,
    scenario: Scenario,
}

/// The files written and what they should produce.
pub struct Generated {
    pub files: Vec<DataFile>,
    /// Expected leads with `grace_days` = [`GRACE_DAYS`].
    pub expected: Vec<Expected>,
    pub near_misses: Vec<(String, Scenario)>,
    pub planted: Vec<(String, Scenario)>,
    /// Parameters the run must be given for `expected`.
    pub params: Vec<(String, String)>,
    pub contracts: Vec<Contract>,
}

impl Generated {
    /// The expected leads under another grace period.
    pub fn expected_for(&self, grace_days: i64) -> Vec<Expected> {
        let mut out: Vec<Expected> = self
            .contracts
            .iter()
            .filter_map(|c| assess(c, grace_days))
            .collect();
        out.sort_by(|a, b| a.contract_no.cmp(&b.contract_no));
        out
    }
}

fn days_in_month(y: i32, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (date(ny, nm, 1) - date(y, m, 1)).num_days() as u32
}

/// `n` months after `d`, the day clamped to the month's length.
fn months_after(d: NaiveDate, n: u32) -> NaiveDate {
    let total = d.month0() + n;
    let y = d.year() + (total / 12) as i32;
    let m = total % 12 + 1;
    date(y, m, d.day().min(days_in_month(y, m)))
}

/// The generator's own reading of the rule (DOMAIN.md, sample model 3).
fn assess(c: &Contract, grace: i64) -> Option<Expected> {
    let as_of = as_of();
    if c.signed > as_of {
        return None;
    }
    let mut plan = c.plan.clone();
    if plan.is_empty() {
        let first = round2(c.price / Decimal::from(2));
        plan = vec![
            (months_after(c.signed, 1), first),
            (months_after(c.signed, 12), c.price - first),
        ];
    }
    plan.sort();
    let mut pays: Vec<(NaiveDate, Decimal)> = c
        .payments
        .iter()
        .filter(|p| p.1 <= as_of)
        .map(|p| (p.1, p.0))
        .collect();
    pays.sort();
    let mut left: Decimal = pays.iter().map(|p| p.1).sum();
    let (mut arrears, mut penalty, mut worst) = (Decimal::ZERO, Decimal::ZERO, 0);
    for (due, amount) in plan {
        let covered = amount.min(left);
        left -= covered;
        let unpaid = amount - covered;
        let late = (as_of - due).num_days();
        if unpaid > Decimal::ZERO && late > grace.max(0) {
            arrears += unpaid;
            penalty += unpaid * Decimal::new(1, 3) * Decimal::from(late);
            worst = worst.max(late);
        }
    }
    let acted = |d: Option<NaiveDate>| d.is_some_and(|d| d <= as_of);
    let flag = worst > 60 && !acted(c.notice_on) && !acted(c.cancelled_on);
    let mut running = Decimal::ZERO;
    let fully_paid = pays.iter().find_map(|(on, amount)| {
        running += amount;
        (running >= c.price).then_some(*on)
    });
    let early_certificate = c
        .certificate_on
        .is_some_and(|cert| cert <= as_of && fully_paid.is_none_or(|paid| cert < paid));
    let dishonest = c.bids.iter().any(|b| {
        b.won
            && b.bid_on <= as_of
            && c.listings.iter().any(|l| {
                l.code == b.code
                    && l.listed_on <= b.bid_on
                    && l.removed_on.is_none_or(|r| r > b.bid_on)
            })
    });
    let mut findings = String::new();
    if arrears > Decimal::ZERO {
        findings.push('A');
    }
    if early_certificate {
        findings.push('B');
    }
    if dishonest {
        findings.push('C');
    }
    (!findings.is_empty()).then(|| Expected {
        contract_no: c.no.clone(),
        scenario: c.scenario,
        findings,
        arrears,
        penalty,
        flag: arrears > Decimal::ZERO && flag,
    })
}

fn pick_scenario(rng: &mut ChaCha8Rng, i: usize) -> Scenario {
    use Scenario::*;
    const FIXED: [Scenario; 25] = [
        PaidOnDeadline,
        DueOnAsOf,
        WithinGrace,
        PaidOneDayLate,
        CertificateSameDay,
        DishonestListedAfterBid,
        DishonestRemovedOnBidDate,
        DishonestLoser,
        SignedAfterAsOf,
        ArrearsRecent,
        ArrearsSixtyDays,
        ArrearsSixtyOneDays,
        ArrearsLongNoAction,
        ArrearsLongNotified,
        ArrearsCancelled,
        ArrearsPartial,
        PaidAfterAsOf,
        NoPlanArrears,
        EarlyCertificate,
        CertificateUnpaid,
        ArrearsAndCertificate,
        DishonestWinner,
        DishonestRemovedAfterBid,
        PaidOnTime,
        NotYetDue,
    ];
    if i < FIXED.len() {
        return FIXED[i];
    }
    const WEIGHTS: [(Scenario, u32); 25] = [
        (PaidOnTime, 560),
        (NotYetDue, 150),
        (ArrearsRecent, 25),
        (ArrearsSixtyDays, 3),
        (ArrearsSixtyOneDays, 3),
        (ArrearsLongNoAction, 25),
        (ArrearsLongNotified, 20),
        (ArrearsCancelled, 8),
        (ArrearsPartial, 20),
        (PaidAfterAsOf, 10),
        (NoPlanArrears, 10),
        (EarlyCertificate, 15),
        (CertificateUnpaid, 10),
        (ArrearsAndCertificate, 6),
        (DishonestWinner, 8),
        (DishonestRemovedAfterBid, 5),
        (PaidOnDeadline, 30),
        (DueOnAsOf, 5),
        (WithinGrace, 15),
        (PaidOneDayLate, 20),
        (CertificateSameDay, 15),
        (DishonestListedAfterBid, 5),
        (DishonestRemovedOnBidDate, 5),
        (DishonestLoser, 10),
        (SignedAfterAsOf, 10),
    ];
    let mut roll = rng.gen_range(0..WEIGHTS.iter().map(|w| w.1).sum::<u32>());
    for (s, w) in WEIGHTS {
        if roll < w {
            return s;
        }
        roll -= w;
    }
    unreachable!("the roll is below the sum of the weights")
}

const WORDS: &[&str] = &[
    "天山", "丝路", "金穗", "新源", "恒达", "瑞丰", "宏远", "塔河", "温宿", "多浪", "雪莲", "胡杨",
];

fn company_name(rng: &mut ChaCha8Rng, i: u64) -> String {
    let a = WORDS[rng.gen_range(0..WORDS.len())];
    let b = WORDS[rng.gen_range(0..WORDS.len())];
    let kind = [
        "房地产开发有限公司",
        "置业有限公司",
        "实业有限公司",
        "投资有限公司",
    ][rng.gen_range(0..4)];
    format!("新疆{a}{b}{kind}（{i}）")
}

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

/// Contract `i`, planted for `scenario`.
fn make_contract(rng: &mut ChaCha8Rng, i: usize, scenario: Scenario) -> Contract {
    let serial = CODE_SERIALS + i as u64;
    let code = credit_code(rng, "91", serial);
    let name = company_name(rng, serial);
    let region = &code[2..8];
    let price = contract_price(rng);
    let terms = make_terms(rng, i, scenario, price);
    let certificate_on = certificate_date(rng, scenario, &terms);
    let (notice_on, cancelled_on) = collection(rng, scenario, terms.due2);
    let bid_on = terms.signed - days(rng.gen_range(5..40));
    let winner = Bid {
        code: code.clone(),
        name: name.clone(),
        bid_on,
        won: true,
        price,
    };
    let bids = make_bids(rng, i, scenario, winner);
    let listings = make_listings(rng, scenario, &bids);
    Contract {
        no: format!("{region}{}B{:05}", terms.signed.year(), i),
        parcel: format!("{region}{}G{:05}", bid_on.year(), i),
        code,
        name,
        signed: terms.signed,
        price,
        certificate_on,
        notice_on,
        cancelled_on,
        plan: terms.plan,
        payments: terms.payments,
        bids,
        listings,
        scenario,
    }
}

/// A price from one million to a hundred million yuan (a few larger), some
/// to the fen.
fn contract_price(rng: &mut ChaCha8Rng) -> Decimal {
    let wan = if rng.gen_bool(0.05) {
        rng.gen_range(10_000..50_000)
    } else {
        rng.gen_range(100..10_000)
    };
    let mut price = Decimal::from(wan * 10_000);
    if rng.gen_bool(0.3) {
        price += Decimal::new(rng.gen_range(1..1_000_000), 2);
    }
    price
}

/// When a contract was signed, what it says is due when, and what was paid.
struct Terms {
    signed: NaiveDate,
    /// When the balance falls due.
    due2: NaiveDate,
    /// (due on, amount); empty when the file has no plan.
    plan: Vec<(NaiveDate, Decimal)>,
    /// (amount, paid on)
    payments: Vec<(Decimal, NaiveDate)>,
}

/// The terms `scenario` plants on contract `i` of `price`: a first
/// instalment of 50–60% and the balance.
fn make_terms(rng: &mut ChaCha8Rng, i: usize, scenario: Scenario, price: Decimal) -> Terms {
    let (mut signed, due2) = signing_and_balance_due(rng, i, scenario);
    let first = round2(price * Decimal::new(rng.gen_range(50..=60), 2));
    let due1 = signed + days(rng.gen_range(10..=28));
    let mut plan = vec![(due1, first), (due2, price - first)];
    let mut payments = if scenario == Scenario::SignedAfterAsOf {
        Vec::new()
    } else {
        first_payments(rng, due1, first)
    };
    payments.extend(balance_payment(rng, scenario, due2, price - first));
    if scenario == Scenario::NoPlanArrears {
        // No plan on file: the statutory one governs (half within a
        // month, the rest within a year), and only the first half came.
        plan.clear();
        signed = as_of() - days(rng.gen_range(400..700));
        let half = round2(price / Decimal::from(2));
        payments.clear();
        payments.push((half, signed + days(rng.gen_range(5..25))));
    }
    Terms {
        signed,
        due2,
        plan,
        payments,
    }
}

/// (signed, balance due) for contract `i`: when the balance falls due
/// decides the scenario; the contract is signed 6 to 12 months before that.
fn signing_and_balance_due(
    rng: &mut ChaCha8Rng,
    i: usize,
    scenario: Scenario,
) -> (NaiveDate, NaiveDate) {
    use Scenario::*;
    let as_of = as_of();
    let late = |rng: &mut ChaCha8Rng, lo: i64, hi: i64| as_of - days(rng.gen_range(lo..=hi));
    let mut due2 = match scenario {
        NotYetDue | CertificateUnpaid => as_of + days(180),
        ArrearsRecent => late(rng, GRACE_DAYS + 1, 60),
        ArrearsSixtyDays => as_of - days(60),
        ArrearsSixtyOneDays => as_of - days(61),
        ArrearsLongNoAction | ArrearsLongNotified | ArrearsAndCertificate => late(rng, 61, 400),
        ArrearsCancelled => late(rng, 120, 400),
        ArrearsPartial | PaidAfterAsOf => late(rng, GRACE_DAYS + 1, 300),
        DueOnAsOf => as_of,
        WithinGrace if i < 25 => as_of - days(1),
        WithinGrace => late(rng, 1, GRACE_DAYS),
        SignedAfterAsOf => as_of + days(rng.gen_range(200..300)),
        _ => date(2022, 3, 1) + days(rng.gen_range(0..900)),
    };
    let months = rng.gen_range(6..=12);
    let mut signed = due2 - days(30 * months);
    match scenario {
        SignedAfterAsOf => signed = as_of + days(rng.gen_range(1..30)),
        NotYetDue | CertificateUnpaid => {
            signed = as_of - days(rng.gen_range(60..150));
            due2 = signed + days(30 * months);
        }
        _ => {}
    }
    (signed, due2)
}

/// A day up to nine days before `d`.
fn on_or_before(rng: &mut ChaCha8Rng, d: NaiveDate) -> NaiveDate {
    d - days(rng.gen_range(0..10))
}

/// The payment of the `first` instalment, due `due1`: on time, and when
/// large sometimes in two transfers.
fn first_payments(
    rng: &mut ChaCha8Rng,
    due1: NaiveDate,
    first: Decimal,
) -> Vec<(Decimal, NaiveDate)> {
    let p1 = on_or_before(rng, due1);
    // Large first payments sometimes come in two transfers.
    if rng.gen_bool(0.3) {
        let part = round2(first * Decimal::new(rng.gen_range(30..70), 2));
        vec![(part, p1 - days(rng.gen_range(0..5))), (first - part, p1)]
    } else {
        vec![(first, p1)]
    }
}

/// The payment `scenario` plants against the `balance` due `due2`, if any.
fn balance_payment(
    rng: &mut ChaCha8Rng,
    scenario: Scenario,
    due2: NaiveDate,
    balance: Decimal,
) -> Option<(Decimal, NaiveDate)> {
    use Scenario::*;
    let as_of = as_of();
    match scenario {
        PaidOnTime
        | EarlyCertificate
        | DishonestWinner
        | DishonestRemovedAfterBid
        | DishonestListedAfterBid
        | DishonestRemovedOnBidDate
        | DishonestLoser => Some((balance, on_or_before(rng, due2))),
        PaidOnDeadline | CertificateSameDay => Some((balance, due2)),
        PaidOneDayLate => Some((balance, due2 + days(1))),
        ArrearsPartial => {
            let part = round2(balance * Decimal::new(rng.gen_range(20..90), 2));
            Some((part, due2 + days(rng.gen_range(0..10)).min(as_of - due2)))
        }
        PaidAfterAsOf => Some((balance, as_of + days(rng.gen_range(1..40)))),
        _ => None,
    }
}

/// The day the property certificate was issued, if it was.
fn certificate_date(rng: &mut ChaCha8Rng, scenario: Scenario, t: &Terms) -> Option<NaiveDate> {
    use Scenario::*;
    let as_of = as_of();
    let last_payment = t.payments.iter().map(|p| p.1).max();
    match scenario {
        PaidOnTime if rng.gen_bool(0.7) => last_payment
            .map(|d| d + days(rng.gen_range(10..90)))
            .filter(|d| *d <= as_of),
        EarlyCertificate => last_payment.map(|d| d - days(rng.gen_range(1..30))),
        CertificateSameDay => last_payment,
        CertificateUnpaid => Some(t.signed + days(rng.gen_range(40..90)).min(as_of - t.signed)),
        ArrearsAndCertificate => Some(t.due2 - days(rng.gen_range(1..40))),
        _ => None,
    }
}

/// (notice, cancellation): the days the unit sent a collection notice and
/// cancelled the contract, if it did, after the balance fell due `due2`.
fn collection(
    rng: &mut ChaCha8Rng,
    scenario: Scenario,
    due2: NaiveDate,
) -> (Option<NaiveDate>, Option<NaiveDate>) {
    use Scenario::*;
    let notice_on = match scenario {
        ArrearsLongNotified => Some(due2 + days(rng.gen_range(20..60))),
        ArrearsCancelled => Some(due2 + days(rng.gen_range(20..60))),
        _ => None,
    };
    let cancelled_on = (scenario == ArrearsCancelled).then(|| due2 + days(rng.gen_range(90..120)));
    (notice_on, cancelled_on)
}

/// The bids for contract `i`'s parcel: the `winner`'s and up to three
/// losing ones (at least one for [`Scenario::DishonestLoser`]).
fn make_bids(rng: &mut ChaCha8Rng, i: usize, scenario: Scenario, winner: Bid) -> Vec<Bid> {
    let (bid_on, price) = (winner.bid_on, winner.price);
    let mut bids = vec![winner];
    let losers = rng.gen_range(0..4);
    for k in 0..losers {
        let serial = CODE_SERIALS + 500_000 + i as u64 * 4 + k;
        bids.push(Bid {
            code: credit_code(rng, "91", serial),
            name: company_name(rng, serial),
            bid_on,
            won: false,
            price: round2(price * Decimal::new(rng.gen_range(80..100), 2)),
        });
    }
    if scenario == Scenario::DishonestLoser && bids.len() == 1 {
        let serial = CODE_SERIALS + 500_000 + i as u64 * 4;
        bids.push(Bid {
            code: credit_code(rng, "91", serial),
            name: company_name(rng, serial),
            bid_on,
            won: false,
            price: round2(price * Decimal::new(95, 2)),
        });
    }
    bids
}

/// The bidders' entries on the dishonest debtors list that `scenario`
/// plants; the winner's bid comes first in `bids`.
fn make_listings(rng: &mut ChaCha8Rng, scenario: Scenario, bids: &[Bid]) -> Vec<Listing> {
    use Scenario::*;
    let (code, bid_on) = (&bids[0].code, bids[0].bid_on);
    let listing = |code: &str, listed_on, removed_on| Listing {
        code: code.to_string(),
        listed_on,
        removed_on,
    };
    match scenario {
        DishonestWinner => vec![listing(code, bid_on - days(rng.gen_range(0..500)), None)],
        DishonestRemovedAfterBid => vec![listing(
            code,
            bid_on - days(rng.gen_range(30..500)),
            Some(bid_on + days(rng.gen_range(1..200))),
        )],
        DishonestListedAfterBid => vec![listing(code, bid_on + days(1), None)],
        DishonestRemovedOnBidDate => vec![listing(
            code,
            bid_on - days(rng.gen_range(30..500)),
            Some(bid_on),
        )],
        DishonestLoser => vec![listing(
            &bids[1].code,
            bid_on - days(rng.gen_range(0..300)),
            None,
        )],
        _ => Vec::new(),
    }
}

fn money(x: Decimal) -> f64 {
    x.to_string().parse().expect("decimal text is a number")
}

/// Generates `contracts` land transfer contracts' data into `dir` from
/// `seed`.
pub fn generate(dir: &Path, contracts: usize, seed: u64) -> std::io::Result<Generated> {
    std::fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut all = Vec::with_capacity(contracts);
    for i in 0..contracts {
        let scenario = pick_scenario(&mut rng, i);
        all.push(make_contract(&mut rng, i, scenario));
    }
    let mut rows = Rows::default();
    for c in &all {
        rows.add(&mut rng, c);
    }
    // The rest of the list: organisations and people who never bid here.
    let mut people = People::new(PEOPLE_SERIALS);
    for k in 0..(contracts / 5).max(10) as u64 {
        rows.add_unrelated_debtor(&mut rng, &mut people, k);
    }
    let files = rows.write(dir)?;
    let near_misses = all
        .iter()
        .filter(|c| c.scenario.is_near_miss())
        .map(|c| (c.no.clone(), c.scenario))
        .collect();
    let planted = all
        .iter()
        .filter(|c| c.scenario.is_violation())
        .map(|c| (c.no.clone(), c.scenario))
        .collect();
    let mut g = Generated {
        files,
        expected: Vec::new(),
        near_misses,
        planted,
        params: vec![("grace_days".to_string(), GRACE_DAYS.to_string())],
        contracts: all,
    };
    g.expected = g.expected_for(GRACE_DAYS);
    Ok(g)
}

/// The rows of the five department files, added contract by contract.
#[derive(Default)]
struct Rows {
    contracts: Vec<Vec<XlsxCell>>,
    instalments: Vec<Vec<String>>,
    payments: Vec<serde_json::Value>,
    bids: Vec<Vec<String>>,
    debtors: Vec<Vec<String>>,
    payment_serial: u64,
    debtor_serial: u64,
}

impl Rows {
    /// Adds the rows of contract `c` to every file.
    fn add(&mut self, rng: &mut ChaCha8Rng, c: &Contract) {
        self.add_contract(rng, c);
        self.add_instalments(c);
        self.add_payments(c);
        self.add_bids(c);
        for l in &c.listings {
            let name = c
                .bids
                .iter()
                .find(|b| b.code == l.code)
                .map(|b| b.name.clone())
                .unwrap_or_default();
            self.add_debtor(rng, l, None, &name);
        }
    }

    /// The contract with its land use, area and certificate.
    fn add_contract(&mut self, rng: &mut ChaCha8Rng, c: &Contract) {
        let uses = ["住宅用地", "商服用地", "工业用地", "商住用地"];
        self.contracts.push(vec![
            XlsxCell::Text(c.no.clone()),
            XlsxCell::Text(c.parcel.clone()),
            XlsxCell::Text(c.code.clone()),
            XlsxCell::Text(c.name.clone()),
            XlsxCell::Text(uses[rng.gen_range(0..uses.len())].to_string()),
            XlsxCell::Number(rng.gen_range(2_000..120_000) as f64),
            XlsxCell::Date(c.signed),
            XlsxCell::Number(money(c.price)),
            match c.certificate_on {
                Some(d) => XlsxCell::Text(format!(
                    "新({})阿克苏市不动产权第{:07}号",
                    d.year(),
                    rng.gen_range(1..9_999_999)
                )),
                None => XlsxCell::Empty,
            },
            c.certificate_on.map_or(XlsxCell::Empty, XlsxCell::Date),
            c.notice_on.map_or(XlsxCell::Empty, XlsxCell::Date),
            c.cancelled_on.map_or(XlsxCell::Empty, XlsxCell::Date),
            XlsxCell::Text("是".to_string()),
        ]);
    }

    /// The contract's instalment plan, if on file.
    fn add_instalments(&mut self, c: &Contract) {
        for (seq, (due, amount)) in c.plan.iter().enumerate() {
            self.instalments.push(vec![
                c.no.clone(),
                (seq + 1).to_string(),
                ymd(*due),
                amount.to_string(),
                "true".to_string(),
            ]);
        }
    }

    /// The payments the treasury received for the contract.
    fn add_payments(&mut self, c: &Contract) {
        for (amount, on) in &c.payments {
            self.payment_serial += 1;
            self.payments.push(serde_json::json!({
                "contract_no": c.no,
                "payment_id": format!("FS{}{:08}", on.year(), self.payment_serial),
                "payer_credit_code": c.code,
                "amount": amount.to_string(),
                "paid_on": ymd(*on),
                "synthetic": true,
            }));
        }
    }

    /// The bids for the contract's parcel.
    fn add_bids(&mut self, c: &Contract) {
        for (k, b) in c.bids.iter().enumerate() {
            self.bids.push(vec![
                c.parcel.clone(),
                format!("JM{}{:02}", &c.parcel[c.parcel.len() - 5..], k + 1),
                b.code.clone(),
                b.name.clone(),
                ymd(b.bid_on),
                b.price.to_string(),
                if b.won { "是" } else { "否" }.to_string(),
                "true".to_string(),
            ]);
        }
    }

    /// A listed organisation (serial `k`) or person who never bid here.
    fn add_unrelated_debtor(&mut self, rng: &mut ChaCha8Rng, people: &mut People, k: u64) {
        let listed_on = date(2019, 1, 1) + days(rng.gen_range(0..2100));
        let removed_on = rng
            .gen_bool(0.3)
            .then(|| listed_on + days(rng.gen_range(30..700)));
        if rng.gen_bool(0.6) {
            let serial = CODE_SERIALS + 900_000 + k;
            let code = credit_code(rng, "91", serial);
            let name = company_name(rng, serial);
            let l = Listing {
                code,
                listed_on,
                removed_on,
            };
            self.add_debtor(rng, &l, None, &name);
        } else {
            let id = people.next_id(rng);
            let name = person_name(rng);
            let l = Listing {
                code: String::new(),
                listed_on,
                removed_on,
            };
            self.add_debtor(rng, &l, Some(&id), &name);
        }
    }

    /// The list entry `l` for `name`: an organisation by its credit code, or
    /// a person by `person`'s ID.
    fn add_debtor(&mut self, rng: &mut ChaCha8Rng, l: &Listing, person: Option<&str>, name: &str) {
        self.debtor_serial += 1;
        let year = l.listed_on.year();
        self.debtors.push(vec![
            format!("SX{year}{:07}", self.debtor_serial),
            l.code.clone(),
            person.unwrap_or_default().to_string(),
            name.to_string(),
            "阿克苏市人民法院".to_string(),
            format!("（{year}）新2901执{}号", rng.gen_range(100..3000)),
            ymd(l.listed_on),
            l.removed_on.map(ymd).unwrap_or_default(),
            "是".to_string(),
        ]);
    }

    /// Writes the five files into `dir`.
    fn write(&self, dir: &Path) -> std::io::Result<Vec<DataFile>> {
        let mut files = Files::new(dir);
        files.xlsx(
            "land_contracts",
            "出让合同",
            &[
                "电子监管号",
                "宗地编号",
                "受让人统一社会信用代码",
                "受让人",
                "土地用途",
                "出让面积",
                "签订日期",
                "出让价款",
                "不动产权证书号",
                "发证日期",
                "催缴通知日期",
                "解除合同日期",
                "synthetic",
            ],
            &self.contracts,
        )?;
        files.csv(
            "land_instalments",
            &["contract_no", "seq", "due_on", "amount", "synthetic"],
            &self.instalments,
            false,
            false,
        )?;
        files.jsonl("land_payments", &self.payments)?;
        files.csv(
            "land_bids",
            &[
                "宗地编号",
                "竞买号",
                "竞买人统一社会信用代码",
                "竞买人",
                "竞买日期",
                "报价",
                "是否竞得",
                "synthetic",
            ],
            &self.bids,
            false,
            true,
        )?;
        files.csv(
            "dishonest_debtors",
            &[
                "失信决定文书号",
                "统一社会信用代码",
                "身份证号",
                "被执行人",
                "执行法院",
                "执行案号",
                "发布日期",
                "移出日期",
                "synthetic",
            ],
            &self.debtors,
            true,
            false,
        )?;
        Ok(files.into_list())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_leads_are_exactly_the_planted_findings_and_no_near_miss() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate(dir.path(), 800, 42).unwrap();
        for e in &g.expected {
            assert_eq!(e.findings, e.scenario.findings(), "{e:?}");
        }
        assert_eq!(g.expected.len(), g.planted.len());
        let flagged: Vec<_> = g.expected.iter().filter(|e| e.flag).collect();
        assert!(flagged
            .iter()
            .any(|e| e.scenario == Scenario::ArrearsSixtyOneDays));
        assert!(g
            .expected
            .iter()
            .any(|e| e.scenario == Scenario::ArrearsSixtyDays && !e.flag));
        for e in &g.expected {
            if matches!(
                e.scenario,
                Scenario::ArrearsLongNotified | Scenario::ArrearsCancelled
            ) {
                assert!(!e.flag, "{e:?}");
            }
        }
    }

    #[test]
    fn without_the_grace_period_the_within_grace_contracts_become_leads() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate(dir.path(), 300, 5).unwrap();
        let strict = g.expected_for(0);
        let extra: Vec<_> = strict
            .iter()
            .filter(|e| !g.expected.iter().any(|x| x.contract_no == e.contract_no))
            .collect();
        assert!(!extra.is_empty());
        assert!(extra
            .iter()
            .all(|e| e.scenario == Scenario::WithinGrace && e.findings == "A"));
    }

    #[test]
    fn months_clamp_to_the_end_of_the_month() {
        assert_eq!(months_after(date(2024, 1, 31), 1), date(2024, 2, 29));
        assert_eq!(months_after(date(2023, 3, 15), 12), date(2024, 3, 15));
    }

    #[test]
    fn same_seed_same_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ga = generate(a.path(), 120, 9).unwrap();
        generate(b.path(), 120, 9).unwrap();
        for f in &ga.files {
            let name = f.path.file_name().unwrap();
            assert_eq!(
                std::fs::read(&f.path).unwrap(),
                std::fs::read(b.path().join(name)).unwrap(),
                "{name:?}"
            );
        }
    }
}
