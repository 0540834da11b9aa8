//! Synthetic data for the 残保金 model (sample model 1): employers, their
//! social-insurance headcount and wages, certified disabled employees, and
//! fund payments, with planted arrears and near misses.
//!
//! The rule constants match the model's defaults (levy year 2024, ratio
//! 1.5%, local average wage 100,000, cap ×2, minimum wage 2,000/month,
//! relief 2023–2027, deadline 2024-06-30, as of 2024-12-31).

use super::{citizen_id, credit_code, person_name, DataFile, Files};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use std::path::Path;

pub const LEVY_YEAR: i64 = 2024;
pub const DATA_YEAR: i64 = LEVY_YEAR - 1;
const DEADLINE: (i32, u32, u32) = (2024, 6, 30);
const AS_OF: (i32, u32, u32) = (2024, 12, 31);

fn dec(s: &str) -> Decimal {
    s.parse().expect("constant decimal")
}

use super::round2;

/// What the generator planted for one employer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// ≤ 30 staff enterprise: exempt in relief years.
    SmallEnterprise,
    /// Employs enough disabled people.
    Employs,
    /// Paid what was due.
    PaidInFull,
    /// Violation: paid nothing.
    PaidNothing,
    /// Violation: paid part of it.
    PaidPart,
    /// Violation: disabled employees listed who do not count (uninsured or
    /// below the minimum wage).
    CountsDoNotCount,
    /// Violation: a public institution with ≤ 30 staff (not exempt).
    SmallInstitution,
    /// Violation: paid after the assessment date.
    PaidTooLate,
    /// Near miss: an enterprise with exactly 30 staff.
    ExactlyThirty,
    /// Near miss: exactly at the ratio (grade 1–2 counted twice).
    ExactlyAtRatio,
    /// Near miss: paid exactly the due amount, to the fen.
    PaidExactly,
    /// Near miss: no headcount for the data year.
    NoHeadcount,
}

impl Scenario {
    pub fn is_violation(self) -> bool {
        matches!(
            self,
            Scenario::PaidNothing
                | Scenario::PaidPart
                | Scenario::CountsDoNotCount
                | Scenario::SmallInstitution
                | Scenario::PaidTooLate
        )
    }

    pub fn is_near_miss(self) -> bool {
        matches!(
            self,
            Scenario::ExactlyThirty
                | Scenario::ExactlyAtRatio
                | Scenario::PaidExactly
                | Scenario::NoHeadcount
        )
    }
}

/// An expected lead, computed by the generator's own reading of the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub credit_code: String,
    pub scenario: Scenario,
    pub staff: u32,
    pub disabled: u32,
    pub wage: Decimal,
    pub due: Decimal,
    pub paid: Decimal,
    pub gap: Decimal,
    pub late_fee: Decimal,
}

/// The files written and what they should produce.
#[derive(Debug, Clone)]
pub struct Generated {
    pub files: Vec<DataFile>,
    pub expected: Vec<Expected>,
    /// Employers that look close to a violation but are not one.
    pub near_misses: Vec<(String, Scenario)>,
    pub employers: usize,
}

struct Employer {
    code: String,
    enterprise: bool,
    staff: u32,
    wage_total: Decimal,
    /// (grade, insured, monthly wage)
    disabled: Vec<(u8, bool, Decimal)>,
    /// (amount, paid on)
    payments: Vec<(Decimal, chrono::NaiveDate)>,
}

fn counts(grade: u8, insured: bool, wage: Decimal) -> u32 {
    if !insured || wage < dec("2000") {
        0
    } else if grade <= 2 {
        2
    } else {
        1
    }
}

/// (capped wage, due) for an employer, independent of the model's code.
fn assess(e: &Employer) -> (Decimal, Decimal) {
    let n = Decimal::from(e.staff);
    let d = Decimal::from(
        e.disabled
            .iter()
            .map(|&(g, i, w)| counts(g, i, w))
            .sum::<u32>(),
    );
    let wage = round2(e.wage_total / n).min(dec("200000"));
    if e.enterprise && e.staff <= 30 {
        return (wage, Decimal::ZERO);
    }
    let short = n * dec("0.015") - d;
    if short <= Decimal::ZERO {
        return (wage, Decimal::ZERO);
    }
    let relief = if d / n >= dec("0.01") {
        dec("0.5")
    } else {
        dec("0.9")
    };
    (wage, round2(short * wage * relief))
}

fn date(t: (i32, u32, u32)) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(t.0, t.1, t.2).expect("valid date")
}

/// Violations per thousand employers in [`generate`]'s data.
pub const VIOLATIONS_PER_MILLE: u32 = 50;

fn pick_scenario(rng: &mut ChaCha8Rng, i: usize, violations_per_mille: u32) -> Scenario {
    // The first employers cover every near miss and violation at least once.
    const FIXED: [Scenario; 12] = [
        Scenario::ExactlyThirty,
        Scenario::ExactlyAtRatio,
        Scenario::PaidExactly,
        Scenario::NoHeadcount,
        Scenario::PaidNothing,
        Scenario::PaidPart,
        Scenario::CountsDoNotCount,
        Scenario::SmallInstitution,
        Scenario::PaidTooLate,
        Scenario::SmallEnterprise,
        Scenario::Employs,
        Scenario::PaidInFull,
    ];
    if i < FIXED.len() {
        return FIXED[i];
    }
    let roll = rng.gen_range(0..1000);
    if violations_per_mille != VIOLATIONS_PER_MILLE {
        return pick_at_rate(rng, roll, violations_per_mille);
    }
    match roll {
        0..=349 => Scenario::SmallEnterprise,
        350..=599 => Scenario::Employs,
        600..=929 => Scenario::PaidInFull,
        930..=944 => Scenario::PaidNothing,
        945..=959 => Scenario::PaidPart,
        960..=969 => Scenario::CountsDoNotCount,
        970..=974 => Scenario::SmallInstitution,
        975..=979 => Scenario::PaidTooLate,
        980..=984 => Scenario::ExactlyThirty,
        985..=989 => Scenario::ExactlyAtRatio,
        990..=994 => Scenario::PaidExactly,
        _ => Scenario::NoHeadcount,
    }
}

/// A scenario where `violations_per_mille` of the employers are
/// violations, each kind of violation and of the rest in the same
/// proportions as at the default rate.
fn pick_at_rate(rng: &mut ChaCha8Rng, roll: u32, violations_per_mille: u32) -> Scenario {
    if roll < violations_per_mille.min(1000) {
        match rng.gen_range(0..50) {
            0..=14 => Scenario::PaidNothing,
            15..=29 => Scenario::PaidPart,
            30..=39 => Scenario::CountsDoNotCount,
            40..=44 => Scenario::SmallInstitution,
            _ => Scenario::PaidTooLate,
        }
    } else {
        match rng.gen_range(0..950) {
            0..=349 => Scenario::SmallEnterprise,
            350..=599 => Scenario::Employs,
            600..=929 => Scenario::PaidInFull,
            930..=934 => Scenario::ExactlyThirty,
            935..=939 => Scenario::ExactlyAtRatio,
            940..=944 => Scenario::PaidExactly,
            _ => Scenario::NoHeadcount,
        }
    }
}

/// One employer planted for `scenario`, with its payments.
fn make_employer(rng: &mut ChaCha8Rng, i: usize, scenario: Scenario) -> Employer {
    let enterprise = match scenario {
        Scenario::SmallInstitution => false,
        Scenario::SmallEnterprise | Scenario::ExactlyThirty => true,
        _ => rng.gen_bool(0.85),
    };
    let kind = if enterprise { "91" } else { "12" };
    let code = credit_code(rng, kind, i as u64);
    let staff = staff_for(rng, scenario);
    let avg: i64 = if rng.gen_bool(0.1) {
        rng.gen_range(200_000..=400_000)
    } else {
        rng.gen_range(45_000..=180_000)
    };
    let wage_total =
        Decimal::from(avg) * Decimal::from(staff) + Decimal::new(rng.gen_range(0..10_000), 2);
    let disabled = disabled_employees(rng, scenario, staff, avg);
    let mut e = Employer {
        code,
        enterprise,
        staff,
        wage_total,
        disabled,
        payments: Vec::new(),
    };
    let (_, due) = assess(&e);
    e.payments = payments(rng, scenario, due);
    e
}

/// The headcount planted for `scenario`.
fn staff_for(rng: &mut ChaCha8Rng, scenario: Scenario) -> u32 {
    match scenario {
        Scenario::SmallEnterprise => rng.gen_range(1..=30),
        Scenario::SmallInstitution => rng.gen_range(5..=30),
        Scenario::ExactlyThirty => 30,
        Scenario::ExactlyAtRatio => 200,
        _ => {
            if rng.gen_bool(0.7) {
                rng.gen_range(31..=300)
            } else {
                rng.gen_range(301..=3000)
            }
        }
    }
}

/// The disabled employees planted for `scenario` at an employer with
/// `staff` people earning `avg` a year: (grade, insured, monthly wage).
fn disabled_employees(
    rng: &mut ChaCha8Rng,
    scenario: Scenario,
    staff: u32,
    avg: i64,
) -> Vec<(u8, bool, Decimal)> {
    let ok_wage = || Decimal::from(2000 + (avg / 12).min(20_000));
    let mut disabled = Vec::new();
    let required = (Decimal::from(staff) * dec("0.015")).ceil();
    let required: u32 = required.try_into().unwrap_or(0);
    match scenario {
        Scenario::Employs => {
            // Enough counted employees, some severe ones counting twice.
            let mut counted = 0;
            while counted < required {
                let grade = rng.gen_range(1..=4u8);
                disabled.push((grade, true, ok_wage()));
                counted += counts(grade, true, ok_wage());
            }
        }
        Scenario::ExactlyAtRatio => {
            // 200 × 1.5% = 3: one grade-1 (counts 2) and one grade-3.
            disabled.push((1, true, ok_wage()));
            disabled.push((3, true, ok_wage()));
        }
        Scenario::CountsDoNotCount => {
            for _ in 0..required.max(1) {
                if rng.gen_bool(0.5) {
                    disabled.push((3, false, ok_wage()));
                } else {
                    disabled.push((4, true, dec("1999.99")));
                }
            }
        }
        Scenario::PaidInFull
        | Scenario::PaidNothing
        | Scenario::PaidPart
        | Scenario::PaidTooLate
        | Scenario::PaidExactly => {
            // Some disabled employees, fewer than required.
            let k = rng.gen_range(0..required.max(1));
            for _ in 0..k {
                disabled.push((rng.gen_range(3..=4), true, ok_wage()));
            }
        }
        _ => {}
    }
    disabled
}

/// The levy-year payments planted for `scenario` when `due` is due:
/// (amount, paid on).
fn payments(
    rng: &mut ChaCha8Rng,
    scenario: Scenario,
    due: Decimal,
) -> Vec<(Decimal, chrono::NaiveDate)> {
    let in_year =
        |rng: &mut ChaCha8Rng| date((2024, 1, 15)) + chrono::Duration::days(rng.gen_range(0..160));
    let mut payments = Vec::new();
    match scenario {
        // Overpaid by a little, in two instalments.
        Scenario::PaidInFull if due > Decimal::ZERO => {
            let first = round2(due / Decimal::from(2));
            payments.push((first, in_year(rng)));
            payments.push((
                due - first + Decimal::new(rng.gen_range(0..500), 2),
                in_year(rng),
            ));
        }
        Scenario::PaidExactly => {
            payments.push((due, in_year(rng)));
        }
        Scenario::PaidPart => {
            let share = Decimal::new(rng.gen_range(10..90), 2);
            payments.push((round2(due * share), in_year(rng)));
        }
        Scenario::PaidTooLate => {
            payments.push((due, date((2025, 1, 10))));
        }
        _ => {}
    }
    payments
}

const WORDS: &[&str] = &[
    "华信", "天山", "丝路", "红旗", "金穗", "新源", "恒达", "瑞丰", "宏远", "博文", "塔河", "温宿",
];

fn employer_name(rng: &mut ChaCha8Rng, enterprise: bool, i: usize) -> String {
    let a = WORDS[rng.gen_range(0..WORDS.len())];
    let b = WORDS[rng.gen_range(0..WORDS.len())];
    if enterprise {
        let suffix = [
            "有限公司",
            "股份有限公司",
            "商贸有限公司",
            "建筑工程有限公司",
        ][rng.gen_range(0..4)];
        format!("阿克苏{a}{b}{suffix}（{i}）")
    } else {
        let suffix = ["医院", "中学", "研究所", "服务中心"][rng.gen_range(0..4)];
        format!("阿克苏{a}{suffix}（{i}）")
    }
}

/// Generates `employers` employers' data into `dir` from `seed`.
pub fn generate(dir: &Path, employers: usize, seed: u64) -> std::io::Result<Generated> {
    generate_at_rate(dir, employers, seed, VIOLATIONS_PER_MILLE)
}

/// [`generate`] with `violations_per_mille` of the employers in arrears
/// (a county's first sweep can find a quarter of them).
pub fn generate_at_rate(
    dir: &Path,
    employers: usize,
    seed: u64,
    violations_per_mille: u32,
) -> std::io::Result<Generated> {
    std::fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows = Rows::with_capacity(employers);
    let mut expected = Vec::new();
    let mut near_misses = Vec::new();
    for i in 0..employers {
        let scenario = pick_scenario(&mut rng, i, violations_per_mille);
        let e = make_employer(&mut rng, i, scenario);
        rows.add(&mut rng, &e, i, scenario);
        if scenario.is_near_miss() {
            near_misses.push((e.code.clone(), scenario));
        }
        if scenario != Scenario::NoHeadcount {
            expected.extend(expected_lead(&e, scenario));
        }
    }
    let files = rows.write(dir)?;
    expected.sort_by(|a, b| a.credit_code.cmp(&b.credit_code));
    Ok(Generated {
        files,
        expected,
        near_misses,
        employers,
    })
}

/// The lead expected for an employer with a headcount for the data year:
/// what was due and not paid by as_of, and the late fee on it.
fn expected_lead(e: &Employer, scenario: Scenario) -> Option<Expected> {
    let days_late = (date(AS_OF) - date(DEADLINE)).num_days().max(0);
    let (wage, due) = assess(e);
    let paid: Decimal = e
        .payments
        .iter()
        .filter(|p| p.1 <= date(AS_OF))
        .map(|p| p.0)
        .sum();
    let gap = due - paid;
    (gap > Decimal::ZERO).then(|| Expected {
        credit_code: e.code.clone(),
        scenario,
        staff: e.staff,
        disabled: e.disabled.iter().map(|&(g, i, w)| counts(g, i, w)).sum(),
        wage,
        due,
        paid,
        gap,
        late_fee: round2(gap * dec("0.005") * Decimal::from(days_late)),
    })
}

/// The rows of the four department files, added employer by employer.
struct Rows {
    employers: Vec<Vec<String>>,
    social_insurance: Vec<Vec<String>>,
    disabled: Vec<Vec<String>>,
    payments: Vec<serde_json::Value>,
    person_serial: u64,
    payment_serial: u64,
}

impl Rows {
    /// No rows yet, with room for `employers` employers.
    fn with_capacity(employers: usize) -> Rows {
        Rows {
            employers: Vec::with_capacity(employers),
            social_insurance: Vec::with_capacity(employers),
            disabled: Vec::new(),
            payments: Vec::new(),
            person_serial: 0,
            payment_serial: 0,
        }
    }

    /// Adds the rows of employer `i` to every file.
    fn add(&mut self, rng: &mut ChaCha8Rng, e: &Employer, i: usize, scenario: Scenario) {
        self.add_employer(rng, e, i);
        self.add_headcounts(rng, e, scenario);
        self.add_disabled(rng, e);
        self.add_payments(rng, e);
    }

    /// The employer's registration: name, type and legal representative.
    fn add_employer(&mut self, rng: &mut ChaCha8Rng, e: &Employer, i: usize) {
        let entity_type = if e.enterprise {
            "企业"
        } else {
            "事业单位"
        };
        self.employers.push(vec![
            e.code.clone(),
            employer_name(rng, e.enterprise, i),
            entity_type.to_string(),
            "存续".to_string(),
            e.code[2..8].to_string(),
            person_name(rng),
            "true".to_string(),
        ]);
    }

    /// The data year's headcount and wages (none for
    /// [`Scenario::NoHeadcount`]), and sometimes an earlier year's.
    fn add_headcounts(&mut self, rng: &mut ChaCha8Rng, e: &Employer, scenario: Scenario) {
        if scenario != Scenario::NoHeadcount {
            self.social_insurance.push(vec![
                e.code.clone(),
                DATA_YEAR.to_string(),
                e.staff.to_string(),
                e.wage_total.to_string(),
                "true".into(),
            ]);
        }
        // An earlier year's headcount, which must not be used.
        if scenario == Scenario::NoHeadcount || rng.gen_bool(0.3) {
            self.social_insurance.push(vec![
                e.code.clone(),
                (DATA_YEAR - 1).to_string(),
                (e.staff + 7).to_string(),
                (e.wage_total * dec("0.95")).round_dp(2).to_string(),
                "true".into(),
            ]);
        }
    }

    /// The employer's certified disabled employees, each a new person.
    fn add_disabled(&mut self, rng: &mut ChaCha8Rng, e: &Employer) {
        for &(grade, insured, wage) in &e.disabled {
            self.person_serial += 1;
            self.disabled.push(vec![
                e.code.clone(),
                DATA_YEAR.to_string(),
                citizen_id(rng, self.person_serial),
                person_name(rng),
                format!("{}{:08}", 65290, self.person_serial),
                grade.to_string(),
                if insured { "是" } else { "否" }.to_string(),
                wage.to_string(),
                "是".to_string(),
            ]);
        }
    }

    /// The employer's levy-year payments, and sometimes one for the
    /// previous levy year.
    fn add_payments(&mut self, rng: &mut ChaCha8Rng, e: &Employer) {
        for &(amount, paid_on) in &e.payments {
            self.payment_serial += 1;
            self.payments.push(serde_json::json!({
                "credit_code": e.code,
                "levy_year": LEVY_YEAR,
                "payment_id": format!("CJB{LEVY_YEAR}{:08}", self.payment_serial),
                "amount": amount.to_string(),
                "paid_on": paid_on.format("%Y-%m-%d").to_string(),
                "synthetic": true,
            }));
        }
        // A payment for the previous levy year, which must not count.
        if e.staff > 30 && rng.gen_bool(0.2) {
            self.payment_serial += 1;
            self.payments.push(serde_json::json!({
                "credit_code": e.code,
                "levy_year": LEVY_YEAR - 1,
                "payment_id": format!("CJB{}{:08}", LEVY_YEAR - 1, self.payment_serial),
                "amount": "50000.00",
                "paid_on": "2023-05-20",
                "synthetic": true,
            }));
        }
    }

    /// Writes the four files into `dir`.
    fn write(&self, dir: &Path) -> std::io::Result<Vec<DataFile>> {
        let mut files = Files::new(dir);
        files.csv(
            "employers",
            &[
                "统一社会信用代码",
                "单位名称",
                "单位类型",
                "登记状态",
                "行政区划代码",
                "法定代表人",
                "synthetic",
            ],
            &self.employers,
            false,
            true,
        )?;
        files.csv(
            "social_insurance",
            &["credit_code", "year", "staff", "wage_total", "synthetic"],
            &self.social_insurance,
            false,
            false,
        )?;
        files.csv(
            "disabled_employees",
            &[
                "用人单位统一社会信用代码",
                "年度",
                "身份证号",
                "姓名",
                "残疾人证号",
                "残疾等级",
                "是否缴纳社保",
                "月工资",
                "synthetic",
            ],
            &self.disabled,
            true,
            false,
        )?;
        files.jsonl("fund_payments", &self.payments)?;
        Ok(files.into_list())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_planted_violation_is_expected_and_no_near_miss_is() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate(dir.path(), 2000, 42).unwrap();
        assert!(
            g.expected.iter().all(|e| e.scenario.is_violation()),
            "{:?}",
            g.expected.iter().find(|e| !e.scenario.is_violation())
        );
        let codes: std::collections::HashSet<_> =
            g.expected.iter().map(|e| e.credit_code.as_str()).collect();
        assert!(g
            .near_misses
            .iter()
            .all(|(c, _)| !codes.contains(c.as_str())));
        assert!(g.expected.len() > 50, "{}", g.expected.len());
        for s in [
            Scenario::PaidNothing,
            Scenario::PaidPart,
            Scenario::CountsDoNotCount,
            Scenario::SmallInstitution,
            Scenario::PaidTooLate,
        ] {
            assert!(g.expected.iter().any(|e| e.scenario == s), "{s:?} planted");
        }
    }

    #[test]
    fn same_seed_same_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(a.path(), 300, 9).unwrap();
        generate(b.path(), 300, 9).unwrap();
        for f in [
            "employers.csv",
            "social_insurance.csv",
            "disabled_employees.csv",
            "fund_payments.jsonl",
        ] {
            assert_eq!(
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap(),
                "{f}"
            );
        }
    }

    #[test]
    fn the_violation_rate_is_what_was_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        for (per_mille, low, high) in [(10, 0.005, 0.02), (250, 0.22, 0.28)] {
            let g = generate_at_rate(dir.path(), 4000, 3, per_mille).unwrap();
            let rate = g.expected.len() as f64 / 4000.0;
            assert!((low..high).contains(&rate), "{per_mille}‰: {rate}");
            assert!(g.expected.iter().all(|e| e.scenario.is_violation()));
        }
    }
}
