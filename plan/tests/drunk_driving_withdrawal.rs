//! The 醉驾撤案 sample as a plan, run on hand-made data that walks the
//! rule's boundaries. Expected leads were worked out by hand from DOMAIN.md
//! and plugins/drunk-driving-withdrawal/src/rule.rs and lib.rs. Person
//! IDs are opaque pseudonyms (`S1`…), compared for equality only, as the
//! host gives them to a model without a clear grant.

use jiandu_plan::exec::{Lead, MemoryInput};
use jiandu_plan::{check_plan, Catalog, Plan, Value};

const PLAN: &str = include_str!("../../plugins/drunk-driving-withdrawal/plan/rule.plan.toml");
const MODEL: &str = include_str!("../../plugins/drunk-driving-withdrawal/model.toml");
const SCHEMAS: [&str; 4] = [
    include_str!("../../datasets/police_cases.toml"),
    include_str!("../../datasets/bac_tests.toml"),
    include_str!("../../datasets/driving_licences.toml"),
    include_str!("../../datasets/prior_records.toml"),
];

const FLAGS: [&str; 14] = [
    "hit_and_run",
    "overloaded",
    "speeding",
    "drugs",
    "commercial_passengers",
    "school_bus",
    "expressway",
    "heavy_goods_vehicle",
    "hazardous_goods",
    "evaded_check",
    "obstructed_justice",
    "emergency",
    "short_move",
    "took_over",
];

fn s(x: &str) -> Value {
    Value::Str(x.into())
}
fn d(x: &str) -> Value {
    Value::Decimal(x.parse().unwrap())
}
fn date(x: &str) -> Value {
    if x.is_empty() {
        Value::Null
    } else {
        Value::parse(jiandu_plan::Type::Date, x).unwrap()
    }
}

struct Case {
    id: &'static str,
    suspect: &'static str,
    offence: &'static str,
    filed: &'static str,
    status: &'static str,
    status_on: &'static str,
    flags: &'static [&'static str],
}

fn case(id: &'static str, suspect: &'static str, status: &'static str) -> Case {
    Case {
        id,
        suspect,
        offence: "2024-06-01",
        filed: "2024-06-02",
        status,
        status_on: "",
        flags: &[],
    }
}

fn data() -> MemoryInput {
    let cases = [
        // BAC 149.9 by blood (a breath test of 180 gives way): art. 12(1).
        case("A01", "S1", "立案"),
        // Exactly 150 is not below 150.
        case("A02", "S2", "立案"),
        // An emergency applies at any BAC; filed one day later (211 days).
        Case {
            filed: "2024-06-03",
            flags: &["emergency"],
            ..case("A03", "S3", "立案")
        },
        // On an expressway: an art. 10 factor excludes art. 12.
        Case {
            flags: &["expressway"],
            ..case("A04", "S4", "立案")
        },
        // A drink-driving punishment exactly two years before.
        case("A05", "S5", "立案"),
        // Two years and one day before, and a record of this very case.
        case("A06", "S6", "立案"),
        // Transferred after as_of: still open on as_of.
        Case {
            status_on: "2025-01-01",
            ..case("A07", "S7", "移送起诉")
        },
        // Transferred before as_of: not this model's lead.
        Case {
            status_on: "2024-09-01",
            ..case("A08", "S7", "移送起诉")
        },
        // Offence on 29 Feb 2024: five years back is 28 Feb 2019.
        Case {
            offence: "2024-02-29",
            filed: "2024-02-29",
            ..case("A09", "S9", "立案")
        },
        // No licence on record: art. 10(3).
        case("A10", "S10", "立案"),
        // Filed after as_of: not assessed.
        Case {
            offence: "2024-12-31",
            filed: "2025-01-01",
            ..case("A11", "S11", "立案")
        },
        // Withdrawn, licence not revoked; factors listed.
        Case {
            status_on: "2024-09-01",
            flags: &["hit_and_run"],
            ..case("B01", "SB1", "撤案")
        },
        // Withdrawn, licence revoked on as_of.
        Case {
            status_on: "2024-09-01",
            ..case("B02", "SB2", "撤案")
        },
        // Withdrawn, BAC 79.9: not drunk, nothing to revoke.
        Case {
            status_on: "2024-09-01",
            ..case("B03", "SB3", "撤案")
        },
        // Withdrawn, no test, revoked only after as_of.
        Case {
            status_on: "2024-09-01",
            ..case("B04", "SB4", "撤案")
        },
        // Withdrawn, BAC exactly 80 by breath; licence cancelled (注销,
        // not 吊销) before the offence: art. 10(3) and still lead B.
        Case {
            status_on: "2024-09-01",
            ..case("B05", "SB5", "撤案")
        },
    ];
    let mut columns = vec![
        "case_id",
        "suspect_id",
        "suspect_name",
        "offence_date",
        "filed_on",
        "status",
        "status_on",
        "accident_responsibility",
    ];
    columns.extend(FLAGS);
    let mut input = MemoryInput::default();
    input.add(
        "police_cases",
        &columns,
        &["case_id"],
        cases
            .iter()
            .map(|c| {
                let mut row = vec![
                    s(c.id),
                    s(c.suspect),
                    s(&format!("姓名{}", c.suspect)),
                    date(c.offence),
                    date(c.filed),
                    s(c.status),
                    date(c.status_on),
                    Value::Null,
                ];
                // A flag not recorded is null, not false.
                row.extend(FLAGS.iter().map(|f| {
                    if c.flags.contains(f) {
                        Value::Bool(true)
                    } else {
                        Value::Null
                    }
                }));
                row
            })
            .collect(),
    );
    // (case, test, method, bac, tested on)
    let tests = [
        ("A01", "T1", "呼气", "180", "2024-06-01"),
        ("A01", "T2", "血液", "149.9", "2024-06-01"),
        ("A01", "T3", "血液", "160", "2025-01-02"),
        ("A02", "T1", "血液", "150", "2024-06-01"),
        ("A03", "T1", "呼气", "220", "2024-06-01"),
        ("A04", "T1", "血液", "100", "2024-06-01"),
        ("A05", "T1", "血液", "100", "2024-06-01"),
        ("A06", "T1", "血液", "100", ""),
        ("A07", "T1", "血液", "100", "2024-06-01"),
        ("A08", "T1", "血液", "100", "2024-06-01"),
        ("A09", "T1", "血液", "100", "2024-02-29"),
        ("A10", "T1", "血液", "100", "2024-06-01"),
        ("A11", "T1", "血液", "100", "2024-12-31"),
        ("B01", "T1", "血液", "200", "2024-06-01"),
        ("B02", "T1", "血液", "200", "2024-06-01"),
        ("B03", "T1", "血液", "79.9", "2024-06-01"),
        ("B05", "T1", "呼气", "80", "2024-06-01"),
    ];
    input.add(
        "bac_tests",
        &["case_id", "test_id", "method", "bac", "tested_on"],
        &["case_id", "test_id"],
        tests
            .iter()
            .map(|(c, t, m, b, on)| vec![s(c), s(t), s(m), d(b), date(on)])
            .collect(),
    );
    // (holder, first issued, status, revoked on); S10 has none.
    let mut licences: Vec<(&str, &str, &str)> = [
        "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S9", "S11", "SB1", "SB3",
    ]
    .iter()
    .map(|h| (*h, "正常", ""))
    .collect();
    licences.extend([
        ("SB2", "吊销", "2024-12-31"),
        ("SB4", "吊销", "2025-01-01"),
        ("SB5", "注销", "2024-03-01"),
    ]);
    input.add(
        "driving_licences",
        &["holder_id", "first_issued_on", "status", "revoked_on"],
        &["holder_id"],
        licences
            .iter()
            .map(|(h, st, on)| vec![s(h), date("2010-01-01"), s(st), date(on)])
            .collect(),
    );
    // (record, person, kind, decided on, case ref)
    let priors = [
        ("R1", "S5", "饮酒驾驶", "2022-06-01", ""),
        ("R2", "S6", "饮酒驾驶", "2022-05-31", ""),
        ("R3", "S6", "醉酒驾驶", "2024-06-01", "A06"),
        ("R4", "S9", "危险驾驶有罪判决", "2019-02-28", ""),
        ("R5", "S1", "盗窃", "2024-01-01", ""),
        ("R8", "SB1", "危险驾驶有罪判决", "2019-05-31", ""),
        ("R9", "SB1", "危险驾驶相对不起诉", "2019-06-01", ""),
    ];
    input.add(
        "prior_records",
        &["record_id", "person_id", "kind", "decided_on", "case_ref"],
        &["record_id"],
        priors
            .iter()
            .map(|(r, p, k, on, cr)| {
                vec![
                    s(r),
                    s(p),
                    s(k),
                    date(on),
                    if cr.is_empty() { Value::Null } else { s(cr) },
                ]
            })
            .collect(),
    );
    input
}

fn run(params: &[(&str, Value)]) -> Vec<Lead> {
    let catalog = Catalog::from_toml(MODEL, &SCHEMAS).unwrap();
    let plan = Plan::parse("drunk-driving-withdrawal.plan.toml", PLAN).unwrap();
    let checked = check_plan(&plan, &catalog).unwrap();
    let program = checked.bind(params).unwrap();
    let mut leads = Vec::new();
    program.run(&mut data(), &mut leads).unwrap();
    leads
}

fn evidence(lead: &Lead) -> Vec<(&str, &str, bool)> {
    lead.evidence
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str(), e.personal))
        .collect()
}

fn lead<'a>(leads: &'a [Lead], case: &str) -> &'a Lead {
    leads.iter().find(|l| l.subject == case).unwrap()
}

#[test]
fn exactly_the_cases_the_rust_model_finds_in_case_order() {
    let leads = run(&[]);
    let got: Vec<(&str, &str)> = leads
        .iter()
        .map(|l| (l.subject.as_str(), l.title.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("A01", "醉驾案件A01符合情节显著轻微（第十二条）仍未撤案"),
            ("A03", "醉驾案件A03符合情节显著轻微（第十二条）仍未撤案"),
            ("A06", "醉驾案件A06符合情节显著轻微（第十二条）仍未撤案"),
            ("A07", "醉驾案件A07符合情节显著轻微（第十二条）仍未撤案"),
            ("B01", "醉驾案件B01撤案后未吊销驾驶证"),
            ("B04", "醉驾案件B04撤案后未吊销驾驶证"),
            ("B05", "醉驾案件B05撤案后未吊销驾驶证"),
        ]
    );
    assert!(leads
        .iter()
        .all(|l| l.amount.is_none() && !l.subject_personal));
}

#[test]
fn lead_a_evidence_in_the_rust_order_with_personal_fields_marked() {
    let leads = run(&[]);
    assert_eq!(
        evidence(lead(&leads, "A01")),
        [
            ("suspect_id", "S1", true),
            ("suspect_name", "姓名S1", true),
            ("offence_date", "2024-06-01", false),
            ("filed_on", "2024-06-02", false),
            ("status_as_of", "立案", false),
            ("status_in_file", "立案", false),
            // The blood test after as_of (160) does not count.
            ("bac_mg_100ml", "149.9 (血液)", false),
            ("finding", "A 符合第十二条仍在立案侦查", false),
            ("art12_grounds", "12(1)血液酒精含量不满150", false),
            ("art10_factors", "无", false),
            // 2024-06-02 to 2024-12-31.
            ("days_open", "212", false),
        ]
    );
    let a03 = evidence(lead(&leads, "A03"));
    assert!(a03.contains(&("bac_mg_100ml", "220 (呼气)", false)));
    assert!(a03.contains(&("art12_grounds", "12(2)急救等紧急情况", false)));
    assert!(a03.contains(&("days_open", "211", false)));
    let a07 = evidence(lead(&leads, "A07"));
    assert!(a07.contains(&("status_as_of", "立案", false)));
    assert!(a07.contains(&("status_in_file", "移送起诉 2025-01-01", false)));
    // A test without a date counts.
    assert!(evidence(lead(&leads, "A06")).contains(&("bac_mg_100ml", "100 (血液)", false)));
}

#[test]
fn lead_b_evidence_lists_the_art_10_factors() {
    let leads = run(&[]);
    assert_eq!(
        evidence(lead(&leads, "B01")),
        [
            ("suspect_id", "SB1", true),
            ("suspect_name", "姓名SB1", true),
            ("offence_date", "2024-06-01", false),
            ("filed_on", "2024-06-02", false),
            ("status_as_of", "撤案", false),
            ("status_in_file", "撤案 2024-09-01", false),
            ("bac_mg_100ml", "200 (血液)", false),
            ("finding", "B 撤案后未吊销驾驶证", false),
            ("licence_status", "正常", false),
            ("licence_revoked_on", "", false),
            // R8 is five years and one day old; R9 exactly five years.
            (
                "art10_factors",
                "10(2)肇事逃逸; 10(14)五年内危险驾驶定罪或不起诉[R9]",
                false
            ),
        ]
    );
    let b04 = evidence(lead(&leads, "B04"));
    assert!(b04.contains(&("bac_mg_100ml", "无检测记录", false)));
    assert!(b04.contains(&("licence_status", "吊销", false)));
    assert!(b04.contains(&("licence_revoked_on", "2025-01-01", false)));
    assert!(b04.contains(&("art10_factors", "无", false)));
    let b05 = evidence(lead(&leads, "B05"));
    assert!(b05.contains(&("bac_mg_100ml", "80 (呼气)", false)));
    assert!(b05.contains(&("art10_factors", "10(3)未取得驾驶证", false)));
    assert!(b05.contains(&("licence_revoked_on", "2024-03-01", false)));
}

#[test]
fn min_open_days_and_list_parameters_change_the_leads() {
    // A03 was filed 211 days before as_of, A01 212.
    let leads = run(&[("min_open_days", Value::Int(212))]);
    let subjects: Vec<&str> = leads.iter().map(|l| l.subject.as_str()).collect();
    assert_eq!(subjects, ["A01", "A06", "A07", "B01", "B04", "B05"]);
    // With 注销 counted as revoked (a list written with a full-width
    // comma reads the same), B05 is no longer a lead.
    let leads = run(&[("revoked_statuses", Value::Str("吊销，注销".into()))]);
    assert!(leads.iter().all(|l| l.subject != "B05"));
    // With a one-year drink-driving window, A05's record is too old.
    let leads = run(&[("drink_prior_years", Value::Int(1))]);
    assert!(leads.iter().any(|l| l.subject == "A05"));
}
