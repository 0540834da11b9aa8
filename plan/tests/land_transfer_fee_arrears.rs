//! The 国有土地出让金 sample as a plan, run on hand-made data that walks
//! the rule's boundaries. Expected values were computed by hand from
//! DOMAIN.md and plugins/land-transfer-fee-arrears/src/rule.rs and lib.rs
//! (payments settle instalments in deadline order; paying on the deadline
//! is on time; penalty = unpaid × 1‰ × days late, exact, rounded half-up
//! to the fen only for output).

use jiandu_plan::exec::{Lead, MemoryInput};
use jiandu_plan::{check_plan, Catalog, Plan, Value};

const PLAN: &str = include_str!("../../plugins/land-transfer-fee-arrears/plan/rule.plan.toml");
const MODEL: &str = include_str!("../../plugins/land-transfer-fee-arrears/model.toml");
const SCHEMAS: [&str; 5] = [
    include_str!("../../datasets/land_contracts.toml"),
    include_str!("../../datasets/land_instalments.toml"),
    include_str!("../../datasets/land_payments.toml"),
    include_str!("../../datasets/land_bids.toml"),
    include_str!("../../datasets/dishonest_debtors.toml"),
];

fn s(x: &str) -> Value {
    Value::Str(x.into())
}
fn d(x: &str) -> Value {
    Value::Decimal(x.parse().unwrap())
}
fn date(x: &str) -> Value {
    Value::parse(jiandu_plan::Type::Date, x).unwrap()
}
fn opt_date(x: &str) -> Value {
    if x.is_empty() {
        Value::Null
    } else {
        date(x)
    }
}

fn data() -> MemoryInput {
    let mut input = MemoryInput::default();
    // (contract, parcel, transferee code, name, signed, price, certificate, notice, cancelled)
    let contracts = [
        (
            "C1",
            "P1",
            "91350100M000100Y43",
            "甲公司",
            "2024-02-01",
            "10000000",
            "2024-11-01",
            "",
            "",
        ),
        (
            "C2",
            "P2",
            "91110108551385082Q",
            "乙公司",
            "2024-01-31",
            "2000000.01",
            "",
            "2024-06-01",
            "",
        ),
        (
            "C3",
            "P3",
            "91350100M000100Y43",
            "甲公司",
            "2024-03-01",
            "3000000",
            "2024-05-01",
            "",
            "",
        ),
        (
            "C4",
            "P4",
            "91110108551385082Q",
            "戊公司",
            "2024-04-20",
            "1000000",
            "",
            "",
            "",
        ),
        (
            "C5",
            "P5",
            "91110108551385082Q",
            "己公司",
            "2025-01-02",
            "500000",
            "2025-01-02",
            "",
            "",
        ),
        (
            "C6",
            "P6",
            "91350100M000100Y43",
            "庚公司",
            "2024-06-01",
            "150",
            "",
            "",
            "2024-12-31",
        ),
    ];
    input.add(
        "land_contracts",
        &[
            "contract_no",
            "parcel_no",
            "transferee_credit_code",
            "transferee_name",
            "signed_on",
            "price",
            "certificate_on",
            "collection_notice_on",
            "cancelled_on",
        ],
        &["contract_no"],
        contracts
            .iter()
            .map(|(c, p, code, n, signed, price, cert, notice, cancel)| {
                vec![
                    s(c),
                    s(p),
                    s(code),
                    s(n),
                    date(signed),
                    d(price),
                    opt_date(cert),
                    opt_date(notice),
                    opt_date(cancel),
                ]
            })
            .collect(),
    );
    // (contract, seq, due on, amount): C1's plan is written out of
    // deadline order; C6 has two instalments on one day; C2 has none.
    let instalments = [
        ("C1", 1, "2024-09-30", "5000000"),
        ("C1", 2, "2024-03-01", "5000000"),
        ("C3", 1, "2024-05-01", "3000000"),
        ("C4", 1, "2025-03-01", "1000000"),
        ("C5", 1, "2025-01-03", "500000"),
        ("C6", 1, "2024-06-30", "100"),
        ("C6", 2, "2024-06-30", "50"),
    ];
    input.add(
        "land_instalments",
        &["contract_no", "seq", "due_on", "amount"],
        &["contract_no", "seq"],
        instalments
            .iter()
            .map(|(c, q, due, a)| vec![s(c), Value::Int(*q), date(due), d(a)])
            .collect(),
    );
    let payments = [
        ("C1", "R1", "5000000", "2024-02-20"),
        ("C1", "R2", "1000000", "2024-10-15"),
        ("C2", "R3", "1000000.00", "2024-02-29"),
        ("C3", "R4", "1000000", "2024-04-01"),
        ("C3", "R5", "2000000", "2024-05-01"),
        ("C6", "R6", "20", "2024-07-01"),
        ("C6", "R7", "130", "2025-01-05"),
    ];
    input.add(
        "land_payments",
        &["contract_no", "payment_id", "amount", "paid_on"],
        &["contract_no", "payment_id"],
        payments
            .iter()
            .map(|(c, id, a, on)| vec![s(c), s(id), d(a), date(on)])
            .collect(),
    );
    // (parcel, bid, bidder, name, bid on, won)
    let bids = [
        ("P3", "B1", "D1", "失信甲", "2024-03-01", true),
        ("P4", "B1", "X", "某甲", "2024-04-10", false),
        ("P4", "B2", "Y", "丙公司", "2024-04-10", true),
        ("P4", "B3", "Z", "丁公司", "2024-05-01", true),
        ("P5", "B1", "Z", "丁公司", "2025-01-01", true),
    ];
    input.add(
        "land_bids",
        &[
            "parcel_no",
            "bid_id",
            "bidder_credit_code",
            "bidder_name",
            "bid_on",
            "won",
        ],
        &["parcel_no", "bid_id"],
        bids.iter()
            .map(|(p, b, code, n, on, won)| {
                vec![s(p), s(b), s(code), s(n), date(on), Value::Bool(*won)]
            })
            .collect(),
    );
    // (list no, debtor code, listed, removed)
    let debtors = [
        ("L1", "D1", "2024-01-01", "2024-03-01"),
        ("L2", "D1", "2024-03-02", ""),
        ("LX", "X", "2020-01-01", ""),
        ("LY1", "Y", "2023-01-01", "2024-04-10"),
        ("LY2", "Y", "2024-04-10", "2024-06-01"),
        ("ZL", "Z", "2024-01-01", ""),
    ];
    input.add(
        "dishonest_debtors",
        &["list_no", "debtor_credit_code", "listed_on", "removed_on"],
        &["list_no"],
        debtors
            .iter()
            .map(|(l, code, on, off)| vec![s(l), s(code), date(on), opt_date(off)])
            .collect(),
    );
    input
}

fn run(params: &[(&str, Value)]) -> Vec<Lead> {
    let catalog = Catalog::from_toml(MODEL, &SCHEMAS).unwrap();
    let plan = Plan::parse("land-transfer-fee-arrears.plan.toml", PLAN).unwrap();
    let checked = check_plan(&plan, &catalog).unwrap();
    let program = checked.bind(params).unwrap();
    let mut leads = Vec::new();
    program.run(&mut data(), &mut leads).unwrap();
    leads
}

fn evidence(lead: &Lead) -> Vec<(&str, &str)> {
    lead.evidence
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect()
}

#[test]
fn contracts_with_findings_in_contract_order() {
    let leads = run(&[]);
    let got: Vec<(&str, Option<&str>)> = leads
        .iter()
        .map(|l| (l.subject.as_str(), l.amount.as_deref()))
        .collect();
    // C3: paid in full by its deadline, certificate issued on the day of
    // the last payment, winner's listing removed on the bid date.
    // C5: signed after as_of.
    assert_eq!(
        got,
        [
            ("C1", Some("4000000.00")),
            ("C2", Some("0.01")),
            ("C4", None),
            ("C6", Some("130.00")),
        ]
    );
    assert!(leads.iter().all(|l| !l.subject_personal));
    assert!(leads.iter().all(|l| l.evidence.iter().all(|e| !e.personal)));
}

#[test]
fn arrears_and_certificate_before_payment_match_the_rust_model() {
    let leads = run(&[]);
    let c1 = &leads[0];
    assert_eq!(
        c1.title,
        "甲公司 土地出让合同C1：欠缴出让价款、未缴清即发证"
    );
    // Plan written out of deadline order: the 2024-03-01 instalment is
    // settled first by the 5,000,000 paid; 1,000,000 of the 2024-09-30
    // one: 4,000,000 unpaid for 92 days, 4,000,000 × 0.001 × 92.
    assert_eq!(
        evidence(c1),
        [
            ("findings", "A 逾期欠缴出让价款; B 未缴清价款即发证"),
            ("transferee", "甲公司"),
            ("transferee_credit_code", "91350100M000100Y43"),
            ("parcel_no", "P1"),
            ("signed_on", "2024-02-01"),
            ("price", "10000000.00"),
            ("paid", "6000000.00"),
            ("outstanding", "4000000.00"),
            ("plan_within_rule", "true"),
            ("overdue_arrears", "4000000.00"),
            (
                "overdue_instalments",
                "2024-09-30 欠4000000.00 逾期92天 违约金368000.00"
            ),
            ("max_days_late", "92"),
            ("penalty", "368000.00"),
            ("overdue_no_action_flag", "true"),
            ("collection_notice_on", ""),
            ("cancelled_on", ""),
            ("certificate_on", "2024-11-01"),
            ("fully_paid_on", ""),
        ]
    );
}

#[test]
fn statutory_schedule_when_the_contract_has_none() {
    let leads = run(&[]);
    let c2 = &leads[1];
    assert_eq!(c2.title, "乙公司 土地出让合同C2：欠缴出让价款");
    // First instalment: 2,000,000.01 × 0.5 = 1,000,000.005 → 1,000,000.01,
    // due one month after 2024-01-31, i.e. 2024-02-29; 1,000,000.00 paid
    // on that day leaves 0.01 unpaid for 306 days (penalty 0.00306). The
    // rest, due 2025-01-31, is not yet due.
    assert_eq!(
        evidence(c2),
        [
            ("findings", "A 逾期欠缴出让价款"),
            ("transferee", "乙公司"),
            ("transferee_credit_code", "91110108551385082Q"),
            ("parcel_no", "P2"),
            ("signed_on", "2024-01-31"),
            ("price", "2000000.01"),
            ("paid", "1000000.00"),
            ("outstanding", "1000000.01"),
            ("plan_within_rule", "true"),
            ("overdue_arrears", "0.01"),
            (
                "overdue_instalments",
                "2024-02-29 欠0.01 逾期306天 违约金0.00"
            ),
            ("max_days_late", "306"),
            ("penalty", "0.00"),
            // A collection notice was sent.
            ("overdue_no_action_flag", "false"),
            ("collection_notice_on", "2024-06-01"),
            ("cancelled_on", ""),
        ]
    );
}

#[test]
fn dishonest_winners_listed_on_the_bid_date() {
    let leads = run(&[]);
    let c4 = &leads[2];
    assert_eq!(c4.title, "戊公司 土地出让合同C4：失信被执行人竞得");
    assert_eq!(
        evidence(c4),
        [
            ("findings", "C 失信被执行人竞得"),
            ("transferee", "戊公司"),
            ("transferee_credit_code", "91110108551385082Q"),
            ("parcel_no", "P4"),
            ("signed_on", "2024-04-20"),
            ("price", "1000000.00"),
            ("paid", "0.00"),
            ("outstanding", "1000000.00"),
            // Nothing due within a month of signing.
            ("plan_within_rule", "false"),
            // X did not win; Y's first listing was removed on the bid
            // date, the second listed on it; Z has no removal.
            (
                "dishonest_winner",
                "Y 丙公司 竞得于2024-04-10，名单LY2（2024-04-10列入，2024-06-01移出）; Z 丁公司 竞得于2024-05-01，名单ZL（2024-01-01列入）"
            ),
        ]
    );
}

#[test]
fn instalments_due_the_same_day_are_settled_in_plan_order() {
    let leads = run(&[]);
    let c6 = &leads[3];
    let ev = evidence(c6);
    // 20 paid by as_of settles 20 of the first 100; 80 × 0.001 × 184 =
    // 14.72 and 50 × 0.001 × 184 = 9.20. The 130 paid after as_of does
    // not count; the contract was cancelled on as_of, so no flag.
    assert!(ev.contains(&(
        "overdue_instalments",
        "2024-06-30 欠80.00 逾期184天 违约金14.72; 2024-06-30 欠50.00 逾期184天 违约金9.20"
    )));
    assert!(ev.contains(&("penalty", "23.92")));
    assert!(ev.contains(&("overdue_no_action_flag", "false")));
    assert!(ev.contains(&("cancelled_on", "2024-12-31")));
    assert!(ev.contains(&("paid", "20.00")));
}

#[test]
fn grace_days_delay_lead_a_but_days_late_count_from_the_deadline() {
    let leads = run(&[("grace_days", Value::Int(200))]);
    let got: Vec<(&str, &str)> = leads
        .iter()
        .map(|l| (l.subject.as_str(), l.title.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("C1", "甲公司 土地出让合同C1：未缴清即发证"),
            ("C2", "乙公司 土地出让合同C2：欠缴出让价款"),
            ("C4", "戊公司 土地出让合同C4：失信被执行人竞得"),
        ]
    );
    assert_eq!(leads[0].amount, None);
    assert!(evidence(&leads[1]).contains(&("max_days_late", "306")));
}
