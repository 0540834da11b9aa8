//! Synthetic data for the 醉驾撤案 model (sample model 2): police cases, BAC
//! tests, driving licences and prior records, with planted leads and near
//! misses.
//!
//! The rule constants match the model's defaults (as of 2024-12-31, drunk at
//! 80 mg/100ml, art. 12 below 150, drink-driving priors within 2 years,
//! dangerous-driving priors within 5 years). Expected leads are computed
//! here from the generated records, not by the model's code.

use super::{date, person_name, ymd, DataFile, Files, People, XlsxCell};
use chrono::{Datelike, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use std::path::Path;

/// The assessment date the data is built around (the model's default).
pub fn as_of() -> NaiveDate {
    date(2024, 12, 31)
}

/// Where a generator's people start in the shared ID serial space.
const PEOPLE_SERIALS: u64 = 1_000_000;

const AGGRAVATING: [&str; 11] = [
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
];
const GROUNDS: [&str; 3] = ["emergency", "short_move", "took_over"];

/// What the generator planted for one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Transferred for prosecution.
    Transferred,
    /// Open, BAC ≥ 150, no art. 12 ground.
    OpenSerious,
    /// Withdrawn and the licence revoked.
    WithdrawnRevoked,
    /// Lead A: open, BAC below 150, nothing aggravating.
    OpenBelow150,
    /// Lead A: open, BAC ≥ 150, emergency.
    OpenEmergency,
    /// Lead A: open, short move in a compound.
    OpenShortMove,
    /// Lead A: open, took over a car in a car park.
    OpenTookOver,
    /// Lead A: an accident with equal responsibility (not art. 10(1)).
    OpenEqualFault,
    /// Lead A: breath test ≥ 150 but the blood test below 150.
    OpenBloodBelowBreathAbove,
    /// Lead A: transferred, but only after as_of.
    OpenChangedAfterAsOf,
    /// Lead A: dangerous-driving prior 5 years and one day before.
    OpenDangerousPriorFiveYearsOneDay,
    /// Lead A: drink-driving punishment 2 years and one day before.
    OpenDrinkPriorTwoYearsOneDay,
    /// Lead B: withdrawn, licence not revoked.
    WithdrawnNotRevoked,
    /// Lead B: withdrawn, licence revoked only after as_of.
    WithdrawnRevokedAfterAsOf,
    /// Near miss: BAC exactly 150.
    OpenBacExactly150,
    /// Near miss: BAC below 150 but an art. 10 factor.
    OpenAggravated,
    /// Near miss: BAC below 150 but no driving licence.
    OpenNoLicence,
    /// Near miss: drink-driving punishment exactly 2 years before.
    OpenDrinkPriorTwoYears,
    /// Near miss: dangerous-driving conviction exactly 5 years before.
    OpenDangerousPriorFiveYears,
    /// Near miss: withdrawn, BAC below 80 (not drunk).
    WithdrawnNotDrunk,
    /// Near miss: BAC below 150 but transferred for prosecution.
    TransferredBelow150,
    /// Near miss: filed after as_of.
    FiledAfterAsOf,
}

impl Scenario {
    pub fn lead(self) -> Option<char> {
        use Scenario::*;
        match self {
            OpenBelow150
            | OpenEmergency
            | OpenShortMove
            | OpenTookOver
            | OpenEqualFault
            | OpenBloodBelowBreathAbove
            | OpenChangedAfterAsOf
            | OpenDangerousPriorFiveYearsOneDay
            | OpenDrinkPriorTwoYearsOneDay => Some('A'),
            WithdrawnNotRevoked | WithdrawnRevokedAfterAsOf => Some('B'),
            _ => None,
        }
    }

    pub fn is_violation(self) -> bool {
        self.lead().is_some()
    }

    pub fn is_near_miss(self) -> bool {
        use Scenario::*;
        matches!(
            self,
            OpenBacExactly150
                | OpenAggravated
                | OpenNoLicence
                | OpenDrinkPriorTwoYears
                | OpenDangerousPriorFiveYears
                | WithdrawnNotDrunk
                | TransferredBelow150
                | FiledAfterAsOf
        )
    }
}

/// An expected lead, computed by the generator's own reading of the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub case_id: String,
    pub scenario: Scenario,
    /// 'A' (open though art. 12 applies) or 'B' (withdrawn, not revoked).
    pub lead: char,
    /// Lead A: days from filing to as_of.
    pub days_open: Option<i64>,
    /// The BAC the rule uses (blood before breath, highest).
    pub bac: Option<Decimal>,
}

/// The files written and what they should produce.
#[derive(Debug, Clone)]
pub struct Generated {
    pub files: Vec<DataFile>,
    pub expected: Vec<Expected>,
    pub near_misses: Vec<(String, Scenario)>,
    /// Cases planted as leads.
    pub planted: Vec<(String, Scenario)>,
    pub cases: usize,
}

struct Licence {
    first_issued: NaiveDate,
    status: &'static str,
    revoked_on: Option<NaiveDate>,
}

struct Prior {
    kind: &'static str,
    decided_on: NaiveDate,
    case_ref: Option<String>,
}

struct Case {
    id: String,
    suspect_id: String,
    scenario: Scenario,
    offence: NaiveDate,
    filed: NaiveDate,
    status: &'static str,
    status_on: Option<NaiveDate>,
    responsibility: &'static str,
    flags: Vec<&'static str>,
    /// (blood?, BAC, tested on)
    tests: Vec<(bool, Decimal, NaiveDate)>,
    licence: Option<Licence>,
    priors: Vec<Prior>,
}

use super::years_earlier;

fn bac_of(c: &Case) -> Option<Decimal> {
    let usable: Vec<_> = c.tests.iter().filter(|t| t.2 <= as_of()).collect();
    let blood = usable.iter().any(|t| t.0);
    usable.iter().filter(|t| t.0 == blood).map(|t| t.1).max()
}

/// The generator's own reading of the rule (DOMAIN.md, sample model 2).
fn expected_lead(c: &Case) -> Option<Expected> {
    let as_of = as_of();
    if c.offence > as_of || c.filed > as_of {
        return None;
    }
    let status = match c.status_on {
        Some(d) if c.status != "立案" && d > as_of => "立案",
        _ => c.status,
    };
    let bac = bac_of(c);
    let within = |kinds: &[&str], years: i32| {
        let from = years_earlier(c.offence, years);
        c.priors.iter().any(|p| {
            kinds.contains(&p.kind)
                && p.case_ref.as_deref() != Some(c.id.as_str())
                && p.decided_on >= from
                && p.decided_on <= c.offence
        })
    };
    let no_licence = match &c.licence {
        None => true,
        Some(l) => {
            l.first_issued > c.offence
                || (["吊销", "注销", "撤销"].contains(&l.status)
                    && l.revoked_on.is_some_and(|d| d < c.offence))
        }
    };
    let lead = |lead, days_open| Expected {
        case_id: c.id.clone(),
        scenario: c.scenario,
        lead,
        days_open,
        bac,
    };
    match status {
        "立案" => {
            let aggravated = ["全部", "主要"].contains(&c.responsibility)
                || c.flags.iter().any(|f| AGGRAVATING.contains(f))
                || no_licence
                || within(&["饮酒驾驶", "醉酒驾驶"], 2)
                || within(&["危险驾驶有罪判决", "危险驾驶相对不起诉"], 5);
            let minor = bac.is_some_and(|b| b < Decimal::from(150))
                || c.flags.iter().any(|f| GROUNDS.contains(f));
            (!aggravated && minor).then(|| lead('A', Some((as_of - c.filed).num_days())))
        }
        "撤案" => {
            if bac.is_some_and(|b| b < Decimal::from(80)) {
                return None;
            }
            let l = c.licence.as_ref()?;
            let revoked = l.status == "吊销" && l.revoked_on.is_none_or(|d| d <= as_of);
            (!revoked).then(|| lead('B', None))
        }
        _ => None,
    }
}

fn pick_scenario(rng: &mut ChaCha8Rng, i: usize) -> Scenario {
    use Scenario::*;
    const FIXED: [Scenario; 22] = [
        OpenBacExactly150,
        OpenAggravated,
        OpenNoLicence,
        OpenDrinkPriorTwoYears,
        OpenDangerousPriorFiveYears,
        WithdrawnNotDrunk,
        TransferredBelow150,
        FiledAfterAsOf,
        OpenBelow150,
        OpenEmergency,
        OpenShortMove,
        OpenTookOver,
        OpenEqualFault,
        OpenBloodBelowBreathAbove,
        OpenChangedAfterAsOf,
        OpenDangerousPriorFiveYearsOneDay,
        OpenDrinkPriorTwoYearsOneDay,
        WithdrawnNotRevoked,
        WithdrawnRevokedAfterAsOf,
        Transferred,
        OpenSerious,
        WithdrawnRevoked,
    ];
    if i < FIXED.len() {
        return FIXED[i];
    }
    // Per mille: most cases go to prosecution, some stay open, a few are
    // withdrawn.
    const WEIGHTS: [(Scenario, u32); 22] = [
        (Transferred, 540),
        (OpenSerious, 150),
        (WithdrawnRevoked, 80),
        (OpenBelow150, 40),
        (OpenEmergency, 10),
        (OpenShortMove, 10),
        (OpenTookOver, 5),
        (OpenEqualFault, 10),
        (OpenBloodBelowBreathAbove, 5),
        (OpenChangedAfterAsOf, 5),
        (OpenDangerousPriorFiveYearsOneDay, 5),
        (OpenDrinkPriorTwoYearsOneDay, 5),
        (WithdrawnNotRevoked, 20),
        (WithdrawnRevokedAfterAsOf, 5),
        (OpenBacExactly150, 15),
        (OpenAggravated, 30),
        (OpenNoLicence, 10),
        (OpenDrinkPriorTwoYears, 10),
        (OpenDangerousPriorFiveYears, 10),
        (WithdrawnNotDrunk, 10),
        (TransferredBelow150, 10),
        (FiledAfterAsOf, 5),
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

fn bac_between(rng: &mut ChaCha8Rng, lo: i64, hi: i64) -> Decimal {
    // One decimal, as laboratories report it.
    Decimal::new(rng.gen_range(lo * 10..hi * 10), 1)
}

/// One case planted for `scenario`, its suspect the next of `people`.
fn make_case(rng: &mut ChaCha8Rng, people: &mut People, i: usize, scenario: Scenario) -> Case {
    let (offence, filed, decided) = case_dates(rng, scenario);
    let (status, status_on) = case_status(rng, scenario, decided);
    let tests = bac_tests(rng, scenario, offence);
    let (flags, responsibility) = circumstances(rng, scenario);
    let suspect_id = people.next_id(rng);
    let licence = licence(rng, scenario, offence, decided);
    let id = format!(
        "A{}{:04}{}{:05}",
        &suspect_id[..6],
        rng.gen_range(1..60),
        offence.format("%Y%m"),
        i
    );
    let priors = priors(rng, scenario, offence, status, &id);
    Case {
        id,
        suspect_id,
        scenario,
        offence,
        filed,
        status,
        status_on,
        responsibility,
        flags,
        tests,
        licence,
        priors,
    }
}

/// Whether the case stays open (立案): such cases are recent.
fn stays_open(scenario: Scenario) -> bool {
    use Scenario::*;
    matches!(
        scenario,
        OpenSerious
            | OpenBelow150
            | OpenEmergency
            | OpenShortMove
            | OpenTookOver
            | OpenEqualFault
            | OpenBloodBelowBreathAbove
            | OpenDangerousPriorFiveYearsOneDay
            | OpenDrinkPriorTwoYearsOneDay
            | OpenBacExactly150
            | OpenAggravated
            | OpenNoLicence
            | OpenDrinkPriorTwoYears
            | OpenDangerousPriorFiveYears
    )
}

/// (offence, filed, decided): the days of the offence, of the filing and
/// of a decision on the case.
fn case_dates(rng: &mut ChaCha8Rng, scenario: Scenario) -> (NaiveDate, NaiveDate, NaiveDate) {
    let as_of = as_of();
    // Open cases are recent; closed ones spread over two years.
    let offence = if scenario == Scenario::FiledAfterAsOf {
        as_of + chrono::Duration::days(rng.gen_range(1..20))
    } else if stays_open(scenario) {
        date(2024, 6, 1) + chrono::Duration::days(rng.gen_range(0..200))
    } else {
        date(2023, 1, 10) + chrono::Duration::days(rng.gen_range(0..650))
    };
    let filed = offence + chrono::Duration::days(rng.gen_range(0..3));
    let decided = (filed + chrono::Duration::days(rng.gen_range(20..120))).min(as_of);
    (offence, filed, decided)
}

/// The case's status and the day it took it (none while open).
fn case_status(
    rng: &mut ChaCha8Rng,
    scenario: Scenario,
    decided: NaiveDate,
) -> (&'static str, Option<NaiveDate>) {
    use Scenario::*;
    match scenario {
        Transferred | TransferredBelow150 => ("移送起诉", Some(decided)),
        WithdrawnRevoked | WithdrawnNotRevoked | WithdrawnRevokedAfterAsOf | WithdrawnNotDrunk => {
            ("撤案", Some(decided))
        }
        OpenChangedAfterAsOf => (
            "移送起诉",
            Some(as_of() + chrono::Duration::days(rng.gen_range(1..30))),
        ),
        _ => ("立案", None),
    }
}

/// The blood test and sometimes a breath test, on the day of the offence:
/// (blood?, BAC, tested on).
fn bac_tests(
    rng: &mut ChaCha8Rng,
    scenario: Scenario,
    offence: NaiveDate,
) -> Vec<(bool, Decimal, NaiveDate)> {
    use Scenario::*;
    let bac = match scenario {
        OpenBelow150
        | OpenEqualFault
        | OpenChangedAfterAsOf
        | OpenAggravated
        | OpenNoLicence
        | OpenDrinkPriorTwoYears
        | OpenDangerousPriorFiveYears
        | TransferredBelow150
        | OpenDangerousPriorFiveYearsOneDay
        | OpenDrinkPriorTwoYearsOneDay => bac_between(rng, 80, 150),
        OpenBloodBelowBreathAbove => bac_between(rng, 100, 150),
        OpenBacExactly150 => Decimal::new(1500, 1),
        WithdrawnNotDrunk => bac_between(rng, 30, 80),
        _ => bac_between(rng, 150, 280),
    };
    let mut tests = vec![(true, bac, offence)];
    if scenario == OpenBloodBelowBreathAbove {
        tests.push((false, bac_between(rng, 155, 200), offence));
    } else if rng.gen_bool(0.6) {
        // The roadside breath test, close to the blood result.
        let breath = (bac + Decimal::new(rng.gen_range(-150..150), 1)).max(Decimal::new(200, 1));
        tests.push((false, breath, offence));
    }
    tests
}

/// (flags, responsibility): the art. 10 and art. 12 circumstances recorded
/// and the suspect's share of the blame for an accident.
fn circumstances(rng: &mut ChaCha8Rng, scenario: Scenario) -> (Vec<&'static str>, &'static str) {
    use Scenario::*;
    let mut flags = Vec::new();
    let mut responsibility = "无事故";
    match scenario {
        OpenEmergency => flags.push("emergency"),
        OpenShortMove => flags.push("short_move"),
        OpenTookOver => flags.push("took_over"),
        OpenEqualFault => responsibility = ["同等", "次要", "无责"][rng.gen_range(0..3)],
        OpenAggravated => {
            if rng.gen_bool(0.2) {
                responsibility = ["全部", "主要"][rng.gen_range(0..2)];
            } else {
                flags.push(AGGRAVATING[rng.gen_range(0..AGGRAVATING.len())]);
            }
        }
        Transferred | OpenSerious => {
            // Serious cases often carry aggravating circumstances too.
            if rng.gen_bool(0.3) {
                flags.push(AGGRAVATING[rng.gen_range(0..AGGRAVATING.len())]);
            }
            if rng.gen_bool(0.1) {
                responsibility = ["全部", "主要", "同等"][rng.gen_range(0..3)];
            }
        }
        _ => {}
    }
    (flags, responsibility)
}

/// The suspect's driving licence, if any, as it stood after the case.
fn licence(
    rng: &mut ChaCha8Rng,
    scenario: Scenario,
    offence: NaiveDate,
    decided: NaiveDate,
) -> Option<Licence> {
    use Scenario::*;
    let first_issued = offence - chrono::Duration::days(rng.gen_range(400..7000));
    let revoked_at_decision = Licence {
        first_issued,
        status: "吊销",
        revoked_on: Some(decided),
    };
    let valid = |status| Licence {
        first_issued,
        status,
        revoked_on: None,
    };
    match scenario {
        OpenNoLicence | FiledAfterAsOf => None,
        Transferred | TransferredBelow150 | WithdrawnRevoked => Some(revoked_at_decision),
        WithdrawnRevokedAfterAsOf => Some(Licence {
            first_issued,
            status: "吊销",
            revoked_on: Some(as_of() + chrono::Duration::days(rng.gen_range(1..40))),
        }),
        WithdrawnNotRevoked | WithdrawnNotDrunk => {
            Some(valid(["正常", "暂扣"][rng.gen_range(0..2)]))
        }
        _ => Some(valid(["正常", "暂扣"][rng.gen_range(0..2)])),
    }
}

/// The suspect's prior records: the one `scenario` plants, and background
/// records that never count, the record of case `id` itself among them.
fn priors(
    rng: &mut ChaCha8Rng,
    scenario: Scenario,
    offence: NaiveDate,
    status: &str,
    id: &str,
) -> Vec<Prior> {
    use Scenario::*;
    let mut priors = Vec::new();
    let prior = |kind, decided_on| Prior {
        kind,
        decided_on,
        case_ref: None,
    };
    match scenario {
        OpenDrinkPriorTwoYears => priors.push(prior(
            ["饮酒驾驶", "醉酒驾驶"][rng.gen_range(0..2)],
            years_earlier(offence, 2),
        )),
        OpenDrinkPriorTwoYearsOneDay => priors.push(prior(
            "饮酒驾驶",
            years_earlier(offence, 2) - chrono::Duration::days(1),
        )),
        OpenDangerousPriorFiveYears => priors.push(prior(
            ["危险驾驶有罪判决", "危险驾驶相对不起诉"][rng.gen_range(0..2)],
            years_earlier(offence, 5),
        )),
        OpenDangerousPriorFiveYearsOneDay => priors.push(prior(
            "危险驾驶有罪判决",
            years_earlier(offence, 5) - chrono::Duration::days(1),
        )),
        _ => {}
    }
    // Background records that never count: old ones, other kinds, and the
    // record of this very case.
    if rng.gen_bool(0.15) {
        priors.push(prior(
            "饮酒驾驶",
            years_earlier(offence, 3) - chrono::Duration::days(rng.gen_range(1..300)),
        ));
    }
    if rng.gen_bool(0.05) {
        priors.push(prior(
            "其他",
            offence - chrono::Duration::days(rng.gen_range(10..600)),
        ));
    }
    if status == "撤案" && rng.gen_bool(0.5) {
        priors.push(Prior {
            kind: "醉酒驾驶",
            decided_on: offence,
            case_ref: Some(id.to_string()),
        });
    }
    priors
}

fn yes(b: bool) -> String {
    if b { "是" } else { "否" }.to_string()
}

/// The date as the police system exports it: `2024年3月5日`.
fn cn_date(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// Generates `cases` drunk-driving cases' data into `dir` from `seed`.
pub fn generate(dir: &Path, cases: usize, seed: u64) -> std::io::Result<Generated> {
    std::fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut people = People::new(PEOPLE_SERIALS);
    let mut rows = Rows::with_capacity(cases);
    let mut expected = Vec::new();
    let mut near_misses = Vec::new();
    let mut planted = Vec::new();
    for i in 0..cases {
        let scenario = pick_scenario(&mut rng, i);
        let c = make_case(&mut rng, &mut people, i, scenario);
        rows.add(&mut rng, &c);
        if scenario.is_near_miss() {
            near_misses.push((c.id.clone(), scenario));
        }
        if scenario.is_violation() {
            planted.push((c.id.clone(), scenario));
        }
        if let Some(e) = expected_lead(&c) {
            expected.push(e);
        }
    }
    // Licences of people who are in no case.
    for _ in 0..cases / 4 {
        rows.add_unrelated_licence(&mut rng, &mut people);
    }
    let files = rows.write(dir)?;
    expected.sort_by(|a, b| a.case_id.cmp(&b.case_id));
    Ok(Generated {
        files,
        expected,
        near_misses,
        planted,
        cases,
    })
}

/// The columns of the police cases file: the case, then one per art. 10
/// factor ([`AGGRAVATING`]) and art. 12 ground ([`GROUNDS`]), in order.
const CASE_HEADER: [&str; 23] = [
    "案件编号",
    "犯罪嫌疑人身份证号",
    "犯罪嫌疑人姓名",
    "案发日期",
    "立案日期",
    "案件状态",
    "状态日期",
    "事故责任",
    "肇事逃逸",
    "严重超员超载",
    "严重超速",
    "服用管制药品或毒品",
    "从事客运载有乘客",
    "从事校车业务载有师生",
    "高速公路",
    "重型载货汽车",
    "运输危险化学品危险货物",
    "逃避阻碍检查",
    "妨害司法",
    "急救等紧急情况",
    "小区停车场挪车停车短距离驾驶",
    "短距离接替驾驶",
    "synthetic",
];

/// The rows of the four department files, added case by case.
struct Rows {
    cases: Vec<Vec<String>>,
    tests: Vec<serde_json::Value>,
    licences: Vec<Vec<XlsxCell>>,
    priors: Vec<Vec<String>>,
    test_serial: u64,
    prior_serial: u64,
}

impl Rows {
    /// No rows yet, with room for `cases` cases.
    fn with_capacity(cases: usize) -> Rows {
        Rows {
            cases: Vec::with_capacity(cases),
            tests: Vec::new(),
            licences: Vec::new(),
            priors: Vec::new(),
            test_serial: 0,
            prior_serial: 0,
        }
    }

    /// Adds the rows of case `c` to every file, the suspect given a name.
    fn add(&mut self, rng: &mut ChaCha8Rng, c: &Case) {
        let name = person_name(rng);
        self.add_case(rng, c, &name);
        self.add_tests(c);
        self.add_licence(rng, c, &name);
        self.add_priors(c, &name);
    }

    /// The case with its circumstances, most of them left empty.
    fn add_case(&mut self, rng: &mut ChaCha8Rng, c: &Case, name: &str) {
        let mut row = vec![
            c.id.clone(),
            c.suspect_id.clone(),
            name.to_string(),
            cn_date(c.offence),
            cn_date(c.filed),
            c.status.to_string(),
            c.status_on.map(cn_date).unwrap_or_default(),
            c.responsibility.to_string(),
        ];
        for f in AGGRAVATING.iter().chain(GROUNDS.iter()) {
            // Departments leave most circumstance columns empty.
            let on = c.flags.contains(f);
            row.push(if on {
                yes(true)
            } else if rng.gen_bool(0.3) {
                yes(false)
            } else {
                String::new()
            });
        }
        row.push(yes(true));
        self.cases.push(row);
    }

    /// The case's BAC tests.
    fn add_tests(&mut self, c: &Case) {
        for &(blood, bac, on) in &c.tests {
            self.test_serial += 1;
            self.tests.push(serde_json::json!({
                "case_id": c.id,
                "test_id": format!("JD{}{:06}", on.format("%Y"), self.test_serial),
                "method": if blood { "血液" } else { "呼气" },
                "bac": bac.to_string().parse::<f64>().expect("decimal"),
                "tested_on": ymd(on),
                "synthetic": true,
            }));
        }
    }

    /// The suspect's driving licence, if any.
    fn add_licence(&mut self, rng: &mut ChaCha8Rng, c: &Case, name: &str) {
        if let Some(l) = &c.licence {
            self.licences.push(vec![
                XlsxCell::Text(c.suspect_id.clone()),
                XlsxCell::Text(name.to_string()),
                XlsxCell::Text(["C1", "C2", "B2", "A2", "C1E"][rng.gen_range(0..5)].into()),
                XlsxCell::Date(l.first_issued),
                XlsxCell::Text(l.status.to_string()),
                l.revoked_on.map_or(XlsxCell::Empty, XlsxCell::Date),
                XlsxCell::Text("是".into()),
            ]);
        }
    }

    /// The suspect's prior records.
    fn add_priors(&mut self, c: &Case, name: &str) {
        for p in &c.priors {
            self.prior_serial += 1;
            self.priors.push(vec![
                format!("JG{:08}", self.prior_serial),
                c.suspect_id.clone(),
                name.to_string(),
                p.kind.to_string(),
                ymd(p.decided_on),
                if p.kind.starts_with("危险驾驶") {
                    "阿克苏市人民法院"
                } else {
                    "阿克苏地区公安局交通警察支队"
                }
                .to_string(),
                p.case_ref.clone().unwrap_or_default(),
                "true".to_string(),
            ]);
        }
    }

    /// A valid licence of the next of `people`, who is in no case.
    fn add_unrelated_licence(&mut self, rng: &mut ChaCha8Rng, people: &mut People) {
        let id = people.next_id(rng);
        self.licences.push(vec![
            XlsxCell::Text(id),
            XlsxCell::Text(person_name(rng)),
            XlsxCell::Text("C1".into()),
            XlsxCell::Date(date(2005, 1, 1) + chrono::Duration::days(rng.gen_range(0..6000))),
            XlsxCell::Text("正常".into()),
            XlsxCell::Empty,
            XlsxCell::Text("是".into()),
        ]);
    }

    /// Writes the four files into `dir`.
    fn write(&self, dir: &Path) -> std::io::Result<Vec<DataFile>> {
        let mut files = Files::new(dir);
        files.csv("police_cases", &CASE_HEADER, &self.cases, true, false)?;
        files.jsonl("bac_tests", &self.tests)?;
        files.xlsx(
            "driving_licences",
            "驾驶证信息",
            &[
                "驾驶证号",
                "姓名",
                "准驾车型",
                "初次领证日期",
                "驾驶证状态",
                "吊销注销日期",
                "synthetic",
            ],
            &self.licences,
        )?;
        files.csv(
            "prior_records",
            &super::PRIOR_RECORDS_HEADER,
            &self.priors,
            false,
            true,
        )?;
        Ok(files.into_list())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_planted_lead_is_expected_and_no_near_miss_is() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate(dir.path(), 1500, 42).unwrap();
        for e in &g.expected {
            assert_eq!(e.scenario.lead(), Some(e.lead), "{e:?}");
        }
        let ids: std::collections::HashSet<_> =
            g.expected.iter().map(|e| e.case_id.as_str()).collect();
        assert!(g.near_misses.iter().all(|(c, _)| !ids.contains(c.as_str())));
        assert!(g.expected.iter().any(|e| e.lead == 'A'));
        assert!(g.expected.iter().any(|e| e.lead == 'B'));
        let planted: std::collections::HashSet<_> =
            g.planted.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(ids, planted, "expected leads are exactly the planted ones");
        // Every violation scenario appears among the expected leads.
        use Scenario::*;
        for s in [
            OpenBelow150,
            OpenEmergency,
            OpenShortMove,
            OpenTookOver,
            OpenEqualFault,
            OpenBloodBelowBreathAbove,
            OpenChangedAfterAsOf,
            OpenDangerousPriorFiveYearsOneDay,
            OpenDrinkPriorTwoYearsOneDay,
            WithdrawnNotRevoked,
            WithdrawnRevokedAfterAsOf,
        ] {
            assert!(g.expected.iter().any(|e| e.scenario == s), "{s:?}");
        }
    }

    #[test]
    fn leap_day_reaches_back_to_28_february() {
        assert_eq!(years_earlier(date(2024, 2, 29), 5), date(2019, 2, 28));
        assert_eq!(years_earlier(date(2024, 2, 29), 4), date(2020, 2, 29));
    }

    #[test]
    fn same_seed_same_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ga = generate(a.path(), 200, 9).unwrap();
        generate(b.path(), 200, 9).unwrap();
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
