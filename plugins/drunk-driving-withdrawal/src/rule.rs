//! The 醉驾 rule of the 2023 Opinion (《关于办理醉酒危险驾驶刑事案件的意见》)
//! as pure functions, so that every boundary can be tested on its own.
//!
//! - Art. 12 (情节显著轻微): a drunk-driving case is not a crime when at
//!   least one of its grounds holds (BAC below 150; an emergency; a short
//!   move inside a compound or car park; taking over such a move) **and**
//!   none of the art. 10 aggravating factors holds.
//! - Lead A: the case is still 立案 on `as_of` and art. 12 applies.
//! - Lead B: the case was withdrawn (撤案) and the suspect's driving licence
//!   was not revoked by `as_of`, as 道路交通安全法 art. 91 still requires for
//!   a drunk driver.

use jiandu_sdk::dates::{days_between, years_before};
use jiandu_sdk::{Context, Date, Decimal, Result};

/// The model's parameters (model.toml documents each one).
#[derive(Debug, Clone)]
pub struct Params {
    pub as_of: Date,
    pub drunk_bac: Decimal,
    pub minor_bac: Decimal,
    pub drink_prior_years: u32,
    pub drink_prior_kinds: Vec<String>,
    pub dangerous_prior_years: u32,
    pub dangerous_prior_kinds: Vec<String>,
    pub main_responsibility: Vec<String>,
    pub revoked_statuses: Vec<String>,
    pub no_licence_statuses: Vec<String>,
    pub min_open_days: i64,
}

/// Splits a comma-separated list parameter (`,` or `，`).
pub fn list(text: &str) -> Vec<String> {
    text.split([',', '，'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl Params {
    pub fn from_context(ctx: &Context) -> Result<Self> {
        Ok(Params {
            as_of: ctx.param("as_of")?,
            drunk_bac: ctx.param("drunk_bac")?,
            minor_bac: ctx.param("minor_bac")?,
            drink_prior_years: ctx.param("drink_prior_years")?,
            drink_prior_kinds: list(&ctx.param::<String>("drink_prior_kinds")?),
            dangerous_prior_years: ctx.param("dangerous_prior_years")?,
            dangerous_prior_kinds: list(&ctx.param::<String>("dangerous_prior_kinds")?),
            main_responsibility: list(&ctx.param::<String>("main_responsibility")?),
            revoked_statuses: list(&ctx.param::<String>("revoked_statuses")?),
            no_licence_statuses: list(&ctx.param::<String>("no_licence_statuses")?),
            min_open_days: ctx.param("min_open_days")?,
        })
    }
}

/// Where a case stands (police_cases.status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 立案: under investigation.
    Filed,
    /// 移送起诉: transferred for prosecution.
    Transferred,
    /// 撤案: withdrawn.
    Withdrawn,
}

impl Status {
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "立案" => Some(Status::Filed),
            "移送起诉" => Some(Status::Transferred),
            "撤案" => Some(Status::Withdrawn),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Filed => "立案",
            Status::Transferred => "移送起诉",
            Status::Withdrawn => "撤案",
        }
    }
}

/// Circumstances recorded in the case file; absent = not recorded = false.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub accident_responsibility: Option<String>,
    pub hit_and_run: bool,
    pub overloaded: bool,
    pub speeding: bool,
    pub drugs: bool,
    pub commercial_passengers: bool,
    pub school_bus: bool,
    pub expressway: bool,
    pub heavy_goods_vehicle: bool,
    pub hazardous_goods: bool,
    pub evaded_check: bool,
    pub obstructed_justice: bool,
    pub emergency: bool,
    pub short_move: bool,
    pub took_over: bool,
}

/// One case as the rule needs it.
#[derive(Debug, Clone)]
pub struct Case {
    pub case_id: String,
    pub offence_date: Date,
    pub filed_on: Date,
    pub status: Status,
    pub status_on: Option<Date>,
    pub facts: Facts,
}

/// A blood or breath alcohol test.
#[derive(Debug, Clone)]
pub struct Test {
    pub blood: bool,
    pub bac: Decimal,
    pub tested_on: Option<Date>,
}

/// The suspect's driving licence (车管所).
#[derive(Debug, Clone)]
pub struct Licence {
    pub first_issued_on: Option<Date>,
    pub status: String,
    pub revoked_on: Option<Date>,
}

/// A prior record of the suspect.
#[derive(Debug, Clone)]
pub struct Prior {
    pub record_id: String,
    pub kind: String,
    pub decided_on: Date,
    pub case_ref: Option<String>,
}

/// An art. 10 aggravating factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Factor {
    Accident,
    HitAndRun,
    NoLicence,
    Overloading,
    Drugs,
    CommercialPassengers,
    SchoolBus,
    Expressway,
    HeavyGoodsVehicle,
    HazardousGoods,
    EvadedCheck,
    ObstructedJustice,
    /// Drink-driving punishment within 2 years (the record's id).
    DrinkPrior(String),
    /// Dangerous-driving conviction or non-prosecution within 5 years.
    DangerousPrior(String),
}

impl Factor {
    /// Short citation for evidence.
    pub fn label(&self) -> String {
        match self {
            Factor::Accident => "10(1)事故全部或主要责任".into(),
            Factor::HitAndRun => "10(2)肇事逃逸".into(),
            Factor::NoLicence => "10(3)未取得驾驶证".into(),
            Factor::Overloading => "10(4)严重超员超载超速".into(),
            Factor::Drugs => "10(5)服用管制药品".into(),
            Factor::CommercialPassengers => "10(6)从事客运载有乘客".into(),
            Factor::SchoolBus => "10(7)校车载有师生".into(),
            Factor::Expressway => "10(8)高速公路".into(),
            Factor::HeavyGoodsVehicle => "10(9)重型载货汽车".into(),
            Factor::HazardousGoods => "10(10)运输危险货物".into(),
            Factor::EvadedCheck => "10(11)逃避阻碍检查".into(),
            Factor::ObstructedJustice => "10(12)妨害司法".into(),
            Factor::DrinkPrior(id) => format!("10(13)二年内饮酒驾驶处罚[{id}]"),
            Factor::DangerousPrior(id) => format!("10(14)五年内危险驾驶定罪或不起诉[{id}]"),
        }
    }
}

/// An art. 12 ground.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ground {
    BacBelow,
    Emergency,
    ShortMove,
    TookOver,
}

impl Ground {
    pub fn label(self) -> &'static str {
        match self {
            Ground::BacBelow => "12(1)血液酒精含量不满150",
            Ground::Emergency => "12(2)急救等紧急情况",
            Ground::ShortMove => "12(3)小区停车场短距离挪车",
            Ground::TookOver => "12(4)短距离接替驾驶",
        }
    }
}

/// What the model reports about a case.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// Lead A: still 立案 although art. 12 applies.
    OpenButMinor {
        grounds: Vec<Ground>,
        days_open: i64,
    },
    /// Lead B: withdrawn, licence not revoked. `factors` are the art. 10
    /// factors found (the withdrawal itself may deserve a look).
    WithdrawnNotRevoked { factors: Vec<Factor> },
}

/// The BAC the rule uses: blood tests take precedence over breath tests
/// (the Opinion makes the blood result the basis); among tests of the same
/// kind the highest value. Tests dated after `as_of` are ignored.
pub fn bac(tests: &[Test], as_of: Date) -> Option<(Decimal, bool)> {
    let usable: Vec<&Test> = tests
        .iter()
        .filter(|t| t.tested_on.is_none_or(|d| d <= as_of))
        .collect();
    let blood = usable.iter().any(|t| t.blood);
    usable
        .iter()
        .filter(|t| t.blood == blood)
        .map(|t| t.bac)
        .max()
        .map(|b| (b, blood))
}

impl Params {
    /// The case's status on `as_of`: a change dated after it has not
    /// happened yet, so the case was still 立案.
    pub fn status_on_as_of(&self, case: &Case) -> Status {
        match case.status_on {
            Some(d) if case.status != Status::Filed && d > self.as_of => Status::Filed,
            _ => case.status,
        }
    }

    /// Whether the suspect had no driving licence when driving: none on
    /// record, first issued after the offence, or revoked/cancelled
    /// (`no_licence_statuses`) before the offence date.
    pub fn no_licence(&self, licence: Option<&Licence>, offence: Date) -> bool {
        let Some(l) = licence else { return true };
        if l.first_issued_on.is_some_and(|d| d > offence) {
            return true;
        }
        self.no_licence_statuses.contains(&l.status) && l.revoked_on.is_some_and(|d| d < offence)
    }

    /// Whether the licence was revoked by `as_of` (a revocation without a
    /// date counts; one dated after `as_of` does not).
    pub fn revoked(&self, licence: &Licence) -> bool {
        self.revoked_statuses.contains(&licence.status)
            && licence.revoked_on.is_none_or(|d| d <= self.as_of)
    }

    /// The first prior of one of `kinds` decided within `years` before the
    /// offence (same calendar day `years` earlier up to the offence date,
    /// both included), excluding records of this very case.
    fn prior_within<'p>(
        &self,
        priors: &'p [Prior],
        case: &Case,
        kinds: &[String],
        years: u32,
    ) -> Option<&'p Prior> {
        let from = years_before(case.offence_date, years);
        priors.iter().find(|p| {
            kinds.contains(&p.kind)
                && p.case_ref.as_deref() != Some(case.case_id.as_str())
                && p.decided_on >= from
                && p.decided_on <= case.offence_date
                && p.decided_on <= self.as_of
        })
    }

    /// The art. 10 factors of a case.
    pub fn aggravating(
        &self,
        case: &Case,
        licence: Option<&Licence>,
        priors: &[Prior],
    ) -> Vec<Factor> {
        let f = &case.facts;
        let mut out = Vec::new();
        if f.accident_responsibility
            .as_ref()
            .is_some_and(|r| self.main_responsibility.contains(r))
        {
            out.push(Factor::Accident);
        }
        let flags = [
            (f.hit_and_run, Factor::HitAndRun),
            (
                self.no_licence(licence, case.offence_date),
                Factor::NoLicence,
            ),
            (f.overloaded || f.speeding, Factor::Overloading),
            (f.drugs, Factor::Drugs),
            (f.commercial_passengers, Factor::CommercialPassengers),
            (f.school_bus, Factor::SchoolBus),
            (f.expressway, Factor::Expressway),
            (f.heavy_goods_vehicle, Factor::HeavyGoodsVehicle),
            (f.hazardous_goods, Factor::HazardousGoods),
            (f.evaded_check, Factor::EvadedCheck),
            (f.obstructed_justice, Factor::ObstructedJustice),
        ];
        out.extend(flags.into_iter().filter(|(on, _)| *on).map(|(_, f)| f));
        if let Some(p) = self.prior_within(
            priors,
            case,
            &self.drink_prior_kinds,
            self.drink_prior_years,
        ) {
            out.push(Factor::DrinkPrior(p.record_id.clone()));
        }
        if let Some(p) = self.prior_within(
            priors,
            case,
            &self.dangerous_prior_kinds,
            self.dangerous_prior_years,
        ) {
            out.push(Factor::DangerousPrior(p.record_id.clone()));
        }
        out
    }

    /// The art. 12 grounds of a case; `bac` as chosen by [`bac`].
    pub fn minor_grounds(&self, case: &Case, bac: Option<Decimal>) -> Vec<Ground> {
        let f = &case.facts;
        let mut out = Vec::new();
        if bac.is_some_and(|b| b < self.minor_bac) {
            out.push(Ground::BacBelow);
        }
        if f.emergency {
            out.push(Ground::Emergency);
        }
        if f.short_move {
            out.push(Ground::ShortMove);
        }
        if f.took_over {
            out.push(Ground::TookOver);
        }
        out
    }

    /// The finding for one case, or `None` when it is not a lead.
    pub fn assess(
        &self,
        case: &Case,
        bac: Option<Decimal>,
        licence: Option<&Licence>,
        priors: &[Prior],
    ) -> Option<Finding> {
        if case.offence_date > self.as_of || case.filed_on > self.as_of {
            return None;
        }
        match self.status_on_as_of(case) {
            Status::Filed => {
                if !self.aggravating(case, licence, priors).is_empty() {
                    return None;
                }
                let grounds = self.minor_grounds(case, bac);
                let days_open = days_between(case.filed_on, self.as_of);
                if grounds.is_empty() || days_open < self.min_open_days {
                    return None;
                }
                Some(Finding::OpenButMinor { grounds, days_open })
            }
            Status::Withdrawn => {
                // Revocation is required of a drunk driver; a test below
                // the drunk threshold means the case was rightly dropped.
                if bac.is_some_and(|b| b < self.drunk_bac) {
                    return None;
                }
                let licence = licence?;
                if self.revoked(licence) {
                    return None;
                }
                Some(Finding::WithdrawnNotRevoked {
                    factors: self.aggravating(case, Some(licence), priors),
                })
            }
            Status::Transferred => None,
        }
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
            drunk_bac: dec("80"),
            minor_bac: dec("150"),
            drink_prior_years: 2,
            drink_prior_kinds: list("饮酒驾驶,醉酒驾驶"),
            dangerous_prior_years: 5,
            dangerous_prior_kinds: list("危险驾驶有罪判决，危险驾驶相对不起诉"),
            main_responsibility: list("全部,主要"),
            revoked_statuses: list("吊销"),
            no_licence_statuses: list("吊销,注销,撤销"),
            min_open_days: 0,
        }
    }

    fn case(status: Status) -> Case {
        Case {
            case_id: "A1".into(),
            offence_date: d("2024-06-01"),
            filed_on: d("2024-06-02"),
            status,
            status_on: Some(d("2024-09-01")),
            facts: Facts::default(),
        }
    }

    fn licence() -> Licence {
        Licence {
            first_issued_on: Some(d("2010-01-01")),
            status: "正常".into(),
            revoked_on: None,
        }
    }

    fn prior(kind: &str, on: &str) -> Prior {
        Prior {
            record_id: "P1".into(),
            kind: kind.into(),
            decided_on: d(on),
            case_ref: None,
        }
    }

    fn lead_a(p: &Params, c: &Case, bac: &str, priors: &[Prior]) -> bool {
        matches!(
            p.assess(c, Some(dec(bac)), Some(&licence()), priors),
            Some(Finding::OpenButMinor { .. })
        )
    }

    #[test]
    fn bac_exactly_150_is_not_below_150() {
        let p = params();
        let c = case(Status::Filed);
        assert!(lead_a(&p, &c, "149.9", &[]));
        assert!(!lead_a(&p, &c, "150", &[]));
        assert!(!lead_a(&p, &c, "150.0", &[]));
    }

    #[test]
    fn any_aggravating_factor_excludes_art_12() {
        let p = params();
        let mut c = case(Status::Filed);
        c.facts.expressway = true;
        assert!(!lead_a(&p, &c, "100", &[]));
        let mut c = case(Status::Filed);
        c.facts.accident_responsibility = Some("主要".into());
        assert!(!lead_a(&p, &c, "100", &[]));
        // Equal or minor responsibility is not an art. 10 factor.
        c.facts.accident_responsibility = Some("同等".into());
        assert!(lead_a(&p, &c, "100", &[]));
    }

    #[test]
    fn emergency_short_move_or_take_over_apply_at_any_bac() {
        let p = params();
        for set in [
            |f: &mut Facts| f.emergency = true,
            |f: &mut Facts| f.short_move = true,
            |f: &mut Facts| f.took_over = true,
        ] {
            let mut c = case(Status::Filed);
            set(&mut c.facts);
            assert!(lead_a(&p, &c, "220", &[]));
        }
        assert!(!lead_a(&p, &case(Status::Filed), "220", &[]));
    }

    #[test]
    fn drink_driving_record_counts_for_two_years_from_the_same_calendar_day() {
        let p = params();
        let c = case(Status::Filed); // offence 2024-06-01
        assert!(!lead_a(&p, &c, "100", &[prior("饮酒驾驶", "2022-06-01")]));
        assert!(lead_a(&p, &c, "100", &[prior("饮酒驾驶", "2022-05-31")]));
        // A kind that is not a drink-driving punishment does not count.
        assert!(lead_a(&p, &c, "100", &[prior("盗窃", "2024-01-01")]));
    }

    #[test]
    fn dangerous_driving_prior_five_years_and_one_day_old_does_not_count() {
        let p = params();
        let c = case(Status::Filed); // offence 2024-06-01
        assert!(!lead_a(
            &p,
            &c,
            "100",
            &[prior("危险驾驶相对不起诉", "2019-06-01")]
        ));
        assert!(lead_a(
            &p,
            &c,
            "100",
            &[prior("危险驾驶有罪判决", "2019-05-31")]
        ));
    }

    #[test]
    fn leap_day_offence_reaches_back_to_28_february() {
        let p = params();
        let mut c = case(Status::Filed);
        c.offence_date = d("2024-02-29");
        c.filed_on = d("2024-02-29");
        assert!(!lead_a(
            &p,
            &c,
            "100",
            &[prior("危险驾驶有罪判决", "2019-02-28")]
        ));
        assert!(lead_a(
            &p,
            &c,
            "100",
            &[prior("危险驾驶有罪判决", "2019-02-27")]
        ));
    }

    #[test]
    fn a_record_of_the_same_case_is_not_a_prior() {
        let p = params();
        let c = case(Status::Filed);
        let mut own = prior("醉酒驾驶", "2024-06-01");
        own.case_ref = Some("A1".into());
        assert!(lead_a(&p, &c, "100", &[own]));
    }

    #[test]
    fn no_licence_is_an_aggravating_factor() {
        let p = params();
        let c = case(Status::Filed);
        assert_eq!(
            p.assess(&c, Some(dec("100")), None, &[]),
            None,
            "no licence on record"
        );
        let mut later = licence();
        later.first_issued_on = Some(d("2024-06-02"));
        assert!(p.no_licence(Some(&later), c.offence_date));
        let mut revoked_before = licence();
        revoked_before.status = "吊销".into();
        revoked_before.revoked_on = Some(d("2024-05-31"));
        assert!(p.no_licence(Some(&revoked_before), c.offence_date));
        revoked_before.revoked_on = Some(d("2024-06-01"));
        assert!(!p.no_licence(Some(&revoked_before), c.offence_date));
    }

    #[test]
    fn transferred_cases_are_not_leads_and_a_status_change_after_as_of_has_not_happened() {
        let p = params();
        assert_eq!(
            p.assess(
                &case(Status::Transferred),
                Some(dec("100")),
                Some(&licence()),
                &[]
            ),
            None
        );
        let mut c = case(Status::Transferred);
        c.status_on = Some(d("2025-01-01"));
        assert!(lead_a(&p, &c, "100", &[]));
    }

    #[test]
    fn records_after_as_of_are_ignored() {
        let p = params();
        let mut c = case(Status::Filed);
        c.offence_date = d("2025-01-01");
        c.filed_on = d("2025-01-01");
        assert!(!lead_a(&p, &c, "100", &[]));
    }

    #[test]
    fn cases_open_fewer_than_min_open_days_wait() {
        let mut p = params();
        p.min_open_days = 30;
        let mut c = case(Status::Filed);
        c.filed_on = d("2024-12-01"); // 30 days to 2024-12-31
        assert!(lead_a(&p, &c, "100", &[]));
        c.filed_on = d("2024-12-02");
        assert!(!lead_a(&p, &c, "100", &[]));
    }

    #[test]
    fn withdrawn_without_revocation_is_lead_b() {
        let p = params();
        let c = case(Status::Withdrawn);
        assert!(matches!(
            p.assess(&c, Some(dec("200")), Some(&licence()), &[]),
            Some(Finding::WithdrawnNotRevoked { .. })
        ));
        let mut l = licence();
        l.status = "吊销".into();
        l.revoked_on = Some(d("2024-12-31"));
        assert_eq!(p.assess(&c, Some(dec("200")), Some(&l), &[]), None);
        l.revoked_on = Some(d("2025-01-01"));
        assert!(p.assess(&c, Some(dec("200")), Some(&l), &[]).is_some());
        // Not drunk: revocation is not required.
        assert_eq!(p.assess(&c, Some(dec("79.9")), Some(&licence()), &[]), None);
        assert!(p
            .assess(&c, Some(dec("80")), Some(&licence()), &[])
            .is_some());
        // No licence on record: nothing to revoke.
        assert_eq!(p.assess(&c, Some(dec("200")), None, &[]), None);
    }

    #[test]
    fn blood_test_takes_precedence_over_breath() {
        let as_of = d("2024-12-31");
        let t = |blood, bac: &str, on: &str| Test {
            blood,
            bac: dec(bac),
            tested_on: Some(d(on)),
        };
        let tests = [
            t(false, "180", "2024-06-01"),
            t(true, "140", "2024-06-01"),
            t(true, "120", "2024-06-02"),
        ];
        assert_eq!(bac(&tests, as_of), Some((dec("140"), true)));
        assert_eq!(bac(&tests[..1], as_of), Some((dec("180"), false)));
        assert_eq!(bac(&[t(true, "100", "2025-01-01")], as_of), None);
    }
}
