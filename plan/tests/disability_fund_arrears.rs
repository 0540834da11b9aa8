//! The 残保金 sample as a plan, run on a hand-made data set that walks the
//! rule's boundaries. Expected amounts were computed by hand from
//! DOMAIN.md and plugins/disability-fund-arrears/src/rule.rs (W rounded
//! half-up to the fen before the cap, due rounded half-up to the fen
//! before it is compared with what was paid).

use jiandu_plan::exec::{Lead, MemoryInput};
use jiandu_plan::{check_plan, Catalog, Plan, Value};

const PLAN: &str = include_str!("../../plugins/disability-fund-arrears/plan/rule.plan.toml");
const MODEL: &str = include_str!("../../plugins/disability-fund-arrears/model.toml");
const SCHEMAS: [&str; 4] = [
    include_str!("../../datasets/employers.toml"),
    include_str!("../../datasets/social_insurance.toml"),
    include_str!("../../datasets/disabled_employees.toml"),
    include_str!("../../datasets/fund_payments.toml"),
];

fn s(x: &str) -> Value {
    Value::Str(x.into())
}
fn i(x: i64) -> Value {
    Value::Int(x)
}
fn d(x: &str) -> Value {
    Value::Decimal(x.parse().unwrap())
}
fn date(x: &str) -> Value {
    Value::parse(jiandu_plan::Type::Date, x).unwrap()
}

fn data() -> MemoryInput {
    let mut input = MemoryInput::default();
    let employers = [
        ("E01", "甲公司", "企业"),
        ("E02", "乙公司", "企业"),
        ("E03", "丙公司", "企业"),
        ("E04", "丁医院", "事业单位"),
        ("E05", "戊公司", "企业"),
        ("E06", "己公司", "企业"),
        ("E07", "庚公司", "企业"),
        ("E08", "辛公司", "企业"),
        ("E09", "壬公司", "企业"),
        ("E10", "癸公司", "企业"),
    ];
    input.add(
        "employers",
        &["credit_code", "name", "entity_type"],
        &["credit_code"],
        employers
            .iter()
            .map(|(c, n, t)| vec![s(c), s(n), s(t)])
            .collect(),
    );
    let headcount = [
        ("E01", 2023, 200, "16000000"),
        ("E01", 2022, 999, "1"),
        ("E02", 2023, 200, "16000000"),
        ("E03", 2023, 30, "2400000"),
        ("E04", 2023, 30, "2400000"),
        ("E05", 2023, 31, "2480000"),
        ("E06", 2023, 100, "50000000"),
        ("E07", 2023, 200, "16000000"),
        ("E08", 2022, 200, "16000000"),
        ("E09", 2023, 0, "0"),
        ("E10", 2023, 40, "2000000.20"),
        ("E10", 2021, 200, "16000000"),
    ];
    input.add(
        "social_insurance",
        &["credit_code", "year", "staff", "wage_total"],
        &["credit_code", "year"],
        headcount
            .iter()
            .map(|(c, y, n, w)| vec![s(c), i(*y), i(*n), d(w)])
            .collect(),
    );
    // (employer, year, person, grade, insured, monthly wage)
    let disabled = [
        ("E01", 2023, "P1", 3, true, "3000"),
        ("E02", 2023, "P2", 1, true, "2500"),
        ("E06", 2023, "P3", 2, false, "5000"),
        ("E06", 2023, "P4", 4, true, "1999.99"),
        ("E06", 2022, "P5", 3, true, "2000"),
        ("E07", 2023, "P6", 3, true, "2000"),
        ("E07", 2023, "P7", 3, true, "2000"),
        ("E07", 2023, "P8", 3, true, "2000"),
        ("E10", 2021, "P9", 3, true, "2000"),
        ("E10", 2021, "PA", 4, true, "2000"),
    ];
    input.add(
        "disabled_employees",
        &[
            "employer_credit_code",
            "year",
            "person_id",
            "grade",
            "insured",
            "monthly_wage",
        ],
        &["employer_credit_code", "year", "person_id"],
        disabled
            .iter()
            .map(|(c, y, p, g, ins, w)| vec![s(c), i(*y), s(p), i(*g), Value::Bool(*ins), d(w)])
            .collect(),
    );
    // (employer, levy year, payment id, amount, paid on)
    let payments = [
        ("E01", 2024, "A", "10000", "2024-05-01"),
        ("E01", 2024, "B", "5000", "2025-01-05"),
        ("E01", 2023, "C", "3000", "2023-05-01"),
        ("E02", 2024, "D", "40000", "2024-06-30"),
        ("E05", 2024, "E", "1000", "2024-12-31"),
    ];
    input.add(
        "fund_payments",
        &[
            "credit_code",
            "levy_year",
            "payment_id",
            "amount",
            "paid_on",
        ],
        &["credit_code", "levy_year", "payment_id"],
        payments
            .iter()
            .map(|(c, y, p, a, on)| vec![s(c), i(*y), s(p), d(a), date(on)])
            .collect(),
    );
    input
}

fn run(params: &[(&str, Value)]) -> Vec<Lead> {
    let catalog = Catalog::from_toml(MODEL, &SCHEMAS).unwrap();
    let plan = Plan::parse("disability-fund-arrears.plan.toml", PLAN).unwrap();
    let checked = check_plan(&plan, &catalog).unwrap();
    let program = checked.bind(params).unwrap();
    let mut leads = Vec::new();
    program.run(&mut data(), &mut leads).unwrap();
    leads
}

fn evidence<'a>(lead: &'a Lead, name: &str) -> &'a str {
    &lead
        .evidence
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no evidence {name}"))
        .value
}

#[test]
fn plan_finds_exactly_the_employers_that_owe_with_amounts_to_the_fen() {
    let leads = run(&[]);
    let got: Vec<(&str, &str)> = leads
        .iter()
        .map(|l| (l.subject.as_str(), l.amount.as_deref().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            // D = 1 of 200 (below 1%): (3 − 1) × 80,000 × 0.9 = 144,000; paid
            // 10,000 (a payment after as_of and one for 2023 do not count).
            ("E01", "134000.00"),
            // A public institution with 30 staff is not exempt.
            ("E04", "32400.00"),
            // 31 staff: not a small enterprise; 1,000 paid on as_of counts.
            ("E05", "32480.00"),
            // W capped at 2 × 100,000; uninsured, below-minimum-wage and
            // other-year disabled employees do not count.
            ("E06", "270000.00"),
            // W = 2,000,000.20 / 40 = 50,000.005 → 50,000.01 (half-up).
            ("E10", "27000.01"),
        ]
    );
}

#[test]
fn evidence_matches_the_rust_model() {
    let leads = run(&[]);
    let e01 = &leads[0];
    assert_eq!(e01.title, "甲公司 2024年度残保金未足额缴纳");
    assert_eq!(evidence(e01, "employer"), "甲公司");
    assert_eq!(evidence(e01, "staff_n"), "200");
    assert_eq!(evidence(e01, "disabled_d"), "1");
    assert_eq!(evidence(e01, "ratio"), "0.015");
    assert_eq!(evidence(e01, "relief"), "0.9");
    assert_eq!(evidence(e01, "due"), "144000.00");
    assert_eq!(evidence(e01, "paid"), "10000.00");
    assert_eq!(evidence(e01, "gap"), "134000.00");
    assert_eq!(evidence(e01, "days_late"), "184");
    // 134,000 × 5‰ × 184 days.
    assert_eq!(evidence(e01, "late_fee"), "123280.00");
    let e06 = &leads[3];
    assert_eq!(evidence(e06, "avg_wage_w"), "200000");
    assert_eq!(evidence(e06, "disabled_d"), "0");
    assert_eq!(evidence(e06, "late_fee"), "248400.00");
    let e10 = &leads[4];
    assert_eq!(evidence(e10, "avg_wage_w"), "50000.01");
    assert_eq!(evidence(e10, "late_fee"), "24840.01");
    assert!(leads.iter().all(|l| l.evidence.iter().all(|e| !e.personal)));
}

#[test]
fn grade_one_counts_twice_and_due_equal_to_paid_is_not_a_lead() {
    // E02: one grade-1 employee counts as 2 of 200 = 1%: half of
    // (3 − 2) × 80,000 = 40,000, paid in full on the deadline.
    let leads = run(&[]);
    assert!(leads.iter().all(|l| l.subject != "E02"));
    // E07 is exactly at the ratio, E03 is a small enterprise, E08 has no
    // headcount for the data year, E09 has no staff.
    for none in ["E03", "E07", "E08", "E09"] {
        assert!(leads.iter().all(|l| l.subject != none), "{none}");
    }
}

#[test]
fn outside_the_relief_years_the_full_amount_is_due() {
    let leads = run(&[
        ("levy_year", Value::Int(2022)),
        ("deadline", date("2022-06-30")),
        ("as_of", date("2022-12-31")),
    ]);
    // Data year 2021: E10 has 200 staff and two grade-3 employees:
    // (3 − 2) × 80,000 with no relief.
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0].subject, "E10");
    assert_eq!(leads[0].amount.as_deref(), Some("80000.00"));
    assert_eq!(evidence(&leads[0], "relief"), "1");
    assert_eq!(evidence(&leads[0], "late_fee"), "73600.00");
}
