//! The 盗窃高危预警 sample as a plan, run on hand-made data that walks the
//! score's boundaries. Expected scores were worked out by hand from
//! DOMAIN.md and plugins/repeat-theft-warning/src/rule.rs and lib.rs.
//! Person IDs are opaque pseudonyms (`U1`…), compared for equality only.

use jiandu_plan::exec::{Lead, MemoryInput};
use jiandu_plan::{check_plan, Catalog, Plan, Value};

const PLAN: &str = include_str!("../../plugins/repeat-theft-warning/plan/rule.plan.toml");
const MODEL: &str = include_str!("../../plugins/repeat-theft-warning/model.toml");
const SCHEMAS: [&str; 4] = [
    include_str!("../../datasets/prior_records.toml"),
    include_str!("../../datasets/theft_incidents.toml"),
    include_str!("../../datasets/sightings.toml"),
    include_str!("../../datasets/addresses.toml"),
];

fn s(x: &str) -> Value {
    Value::Str(x.into())
}
fn date(x: &str) -> Value {
    if x.is_empty() {
        Value::Null
    } else {
        Value::parse(jiandu_plan::Type::Date, x).unwrap()
    }
}

fn data() -> MemoryInput {
    let mut input = MemoryInput::default();
    // Ten places with thefts in the 90 days: H with 10 (5 at 22h), P0–P8
    // with one each. Q's thefts are 91 days old, after as_of or unreadable.
    let mut incidents: Vec<(String, &str, String)> = Vec::new();
    for i in 0..10 {
        let t = if i < 5 {
            "2024-12-01 22:00".to_string()
        } else {
            format!("2024-12-01 0{i}:00")
        };
        incidents.push((format!("H{i}"), "H", t));
    }
    for (i, p) in ["P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8"]
        .iter()
        .enumerate()
    {
        incidents.push((format!("I{i}"), p, "2024/12/01 10:00".into()));
    }
    incidents.push(("Q1".into(), "Q", "2024-10-01 10:00".into()));
    incidents.push(("Q2".into(), "Q", "2025-01-01 10:00".into()));
    incidents.push(("Q3".into(), "Q", "2024-12-01".into()));
    input.add(
        "theft_incidents",
        &["incident_id", "place_id", "occurred_at"],
        &["incident_id"],
        incidents
            .iter()
            .map(|(id, p, t)| vec![s(id), s(p), s(t)])
            .collect(),
    );
    // (person, sighting, place, seen at, tags)
    let sightings = [
        ("U1", "s1", "H", "2024-12-24 21:00:00", ""),
        ("U1", "s2", "H", "2024-12-27 10:00:00", ""),
        ("U1", "s3", "H", "2024-12-31 22:15:00", "口罩;伪装"),
        ("U2", "s1", "H", "2024-12-30 10:00", ""),
        ("U3", "s1", "P1", "2024-12-30 10:00", "伪装"),
        ("U4", "s1", "H", "2024-12-24 10:00", ""),
        ("U4", "s2", "H", "2024-12-27 10:00", ""),
        ("U4", "s3", "H", "2024-12-31 10:00", ""),
        ("U5", "s1", "H", "2024-12-23 22:00", ""),
        ("U5", "s2", "H", "2025-01-01 22:00", ""),
        ("U6", "s1", "H", "2024-12-31", ""),
        ("U7", "s1", "P2", "2024-12-31 09:00", "帽子|伪装"),
    ];
    input.add(
        "sightings",
        &["person_id", "sighting_id", "place_id", "seen_at", "tags"],
        &["person_id", "sighting_id"],
        sightings
            .iter()
            .map(|(p, id, pl, t, tags)| {
                vec![
                    s(p),
                    s(id),
                    s(pl),
                    s(t),
                    if tags.is_empty() {
                        Value::Null
                    } else {
                        s(tags)
                    },
                ]
            })
            .collect(),
    );
    // (record, person, kind, decided on)
    let priors = [
        ("R01", "U1", "盗窃", "2023-01-01"),
        ("R02", "U2", "盗窃", "2023-01-01"),
        ("R03", "U3", "盗窃", "2023-01-01"),
        ("R04", "U4", "盗窃", "2019-12-30"),
        ("R05", "U4", "盗窃", "2020-03-01"),
        ("R06", "U4", "盗窃", "2021-03-01"),
        ("R07", "U4", "盗窃", "2022-03-01"),
        ("R08", "U4", "盗窃", "2023-03-01"),
        ("R09", "U4", "盗窃", "2024-12-28"),
        ("R10", "U4", "饮酒驾驶", "2024-01-01"),
        ("R11", "U5", "盗窃", "2023-01-01"),
        ("R12", "U5", "盗窃", "2023-02-01"),
        ("R13", "U6", "盗窃", "2023-01-01"),
        ("R14", "U6", "盗窃", "2023-02-01"),
        ("R15", "U7", "盗窃", "2023-01-01"),
        ("R16", "U7", "盗窃", "2023-02-01"),
    ];
    input.add(
        "prior_records",
        &["record_id", "person_id", "kind", "decided_on"],
        &["record_id"],
        priors
            .iter()
            .map(|(r, p, k, on)| vec![s(r), s(p), s(k), date(on)])
            .collect(),
    );
    // (person, kind, place, since): U1's work address there starts after
    // as_of; U4 lives at H.
    let addresses = [
        ("U1", "工作", "H", "2025-01-01"),
        ("U4", "居住", "H", "2020-01-01"),
    ];
    input.add(
        "addresses",
        &["person_id", "kind", "place_id", "since"],
        &["person_id", "kind", "place_id"],
        addresses
            .iter()
            .map(|(p, k, pl, since)| vec![s(p), s(k), s(pl), date(since)])
            .collect(),
    );
    input
}

fn run(params: &[(&str, Value)]) -> Vec<Lead> {
    let catalog = Catalog::from_toml(MODEL, &SCHEMAS).unwrap();
    let plan = Plan::parse("repeat-theft-warning.plan.toml", PLAN).unwrap();
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
fn alerts_in_person_order_with_personal_subjects() {
    let leads = run(&[]);
    let got: Vec<(&str, &str)> = leads
        .iter()
        .map(|l| (l.subject.as_str(), l.title.as_str()))
        .collect();
    // U3 scores 50 (40 + 10 away from a hotspot); U5's sightings are 8
    // days old or after as_of; U6's time cannot be read.
    assert_eq!(
        got,
        [
            ("U1", "盗窃高危预警：评分100（H出现）"),
            ("U2", "盗窃高危预警：评分60（H出现）"),
            ("U4", "盗窃高危预警：评分90（H出现）"),
            ("U7", "盗窃高危预警：评分60（P2出现）"),
        ]
    );
    assert!(leads
        .iter()
        .all(|l| l.subject_personal && l.amount.is_none()));
    assert!(leads.iter().all(|l| l.evidence.iter().all(|e| !e.personal)));
}

#[test]
fn a_full_profile_scores_every_part() {
    let leads = run(&[]);
    // 12-24 is exactly 7 days before 12-31: three appearances; the work
    // address at H starts after as_of, so it is no link.
    assert_eq!(
        evidence(&leads[0]),
        [
            ("score", "100"),
            (
                "score_parts",
                "前科40 + 热点20 + 高发时段15 + 反复出现15 + 伪装10"
            ),
            ("theft_priors_in_window", "1"),
            ("sighting_id", "s3"),
            ("seen_at", "2024-12-31 22:15:00"),
            ("place_id", "H"),
            ("place_thefts_in_window", "10"),
            ("place_is_hotspot", "true"),
            ("hotspot_min_thefts", "10"),
            ("place_high_risk_hours", "22时"),
            ("appearances_in_window", "3"),
            ("tags", "口罩;伪装"),
            ("alert_score", "60"),
        ]
    );
    // Exactly 60: alert.
    assert!(evidence(&leads[1]).contains(&(
        "score_parts",
        "前科40 + 热点20 + 高发时段0 + 反复出现0 + 伪装0"
    )));
}

#[test]
fn further_priors_are_capped_and_a_home_there_is_no_repeat() {
    let leads = run(&[]);
    let u4 = evidence(&leads[2]);
    // Five theft priors in each sighting's window (the 2019-12-30 one
    // counts for 12-24 and 12-27, the 2024-12-28 one only for 12-31):
    // 40 + 10 × min(4, 3) = 70, + 20 at H; all three score 90, the latest
    // is taken. Living at H: no repeat points.
    assert!(u4.contains(&(
        "score_parts",
        "前科70 + 热点20 + 高发时段0 + 反复出现0 + 伪装0"
    )));
    assert!(u4.contains(&("theft_priors_in_window", "5")));
    assert!(u4.contains(&("sighting_id", "s3")));
    assert!(u4.contains(&("appearances_in_window", "3")));
    // When only 户籍 links a person to a place, living there does not.
    let leads = run(&[("link_kinds", Value::Str("户籍".into()))]);
    let u4 = leads.iter().find(|l| l.subject == "U4").unwrap();
    assert_eq!(u4.title, "盗窃高危预警：评分105（H出现）");
}

#[test]
fn away_from_hotspots_only_priors_and_disguise_score() {
    let leads = run(&[]);
    assert_eq!(
        evidence(&leads[3]),
        [
            ("score", "60"),
            (
                "score_parts",
                "前科50 + 热点0 + 高发时段0 + 反复出现0 + 伪装10"
            ),
            ("theft_priors_in_window", "2"),
            ("sighting_id", "s1"),
            ("seen_at", "2024-12-31 09:00"),
            ("place_id", "P2"),
            ("place_thefts_in_window", "1"),
            ("place_is_hotspot", "false"),
            ("hotspot_min_thefts", "10"),
            ("place_high_risk_hours", ""),
            ("appearances_in_window", "0"),
            ("tags", "帽子|伪装"),
            ("alert_score", "60"),
        ]
    );
}

#[test]
fn a_larger_hotspot_share_takes_in_the_ties() {
    // 20% of 10 places: k = 2; the second largest count is 1, so every
    // place is a hotspot, and U3 (at P1, 10h being P1's peak) scores
    // 40 + 20 + 15 + 10 = 85.
    let leads = run(&[("hotspot_share", Value::Decimal("0.2".parse().unwrap()))]);
    let u3 = leads.iter().find(|l| l.subject == "U3").unwrap();
    assert_eq!(u3.title, "盗窃高危预警：评分85（P1出现）");
    assert!(evidence(u3).contains(&("hotspot_min_thefts", "1")));
    assert!(evidence(u3).contains(&("place_high_risk_hours", "10时")));
}
