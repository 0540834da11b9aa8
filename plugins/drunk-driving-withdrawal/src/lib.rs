//! 醉驾撤案监督模型: drunk-driving cases that should have been closed under
//! art. 12 of the 2023 Opinion but are still open (lead A), and cases
//! withdrawn without the driving-licence revocation the law still requires
//! (lead B). See README.md beside this file for the rule in plain words.

use jiandu_sdk::{export_model, Context, Date, Decimal, Lead, Model, Result};
use serde::Deserialize;

pub mod rule;

use rule::{Finding, Status};

#[derive(Deserialize)]
struct PoliceCase {
    case_id: String,
    suspect_id: String,
    suspect_name: Option<String>,
    offence_date: Date,
    filed_on: Date,
    status: String,
    status_on: Option<Date>,
    accident_responsibility: Option<String>,
    hit_and_run: Option<bool>,
    overloaded: Option<bool>,
    speeding: Option<bool>,
    drugs: Option<bool>,
    commercial_passengers: Option<bool>,
    school_bus: Option<bool>,
    expressway: Option<bool>,
    heavy_goods_vehicle: Option<bool>,
    hazardous_goods: Option<bool>,
    evaded_check: Option<bool>,
    obstructed_justice: Option<bool>,
    emergency: Option<bool>,
    short_move: Option<bool>,
    took_over: Option<bool>,
}

#[derive(Deserialize)]
struct BacTest {
    case_id: String,
    method: String,
    bac: Decimal,
    tested_on: Option<Date>,
}

#[derive(Deserialize)]
struct Licence {
    first_issued_on: Option<Date>,
    status: String,
    revoked_on: Option<Date>,
}

#[derive(Deserialize)]
struct PriorRecord {
    record_id: String,
    kind: String,
    decided_on: Date,
    case_ref: Option<String>,
}

pub struct DrunkDrivingWithdrawal;

fn flag(b: Option<bool>) -> bool {
    b.unwrap_or(false)
}

impl Model for DrunkDrivingWithdrawal {
    fn run(ctx: &mut Context) -> Result<()> {
        let p = rule::Params::from_context(ctx)?;
        let mut tests = ctx
            .read("bac_tests")
            .into::<BacTest>()?
            .keyed(|t| t.case_id.clone());
        let (mut open, mut withdrawn) = (0u64, 0u64);
        for row in ctx.read("police_cases").into::<PoliceCase>()? {
            let c = row?;
            let tests = tests.take(&c.case_id)?;
            let Some(status) = Status::parse(&c.status) else {
                ctx.warn(format!(
                    "case {}: unknown status `{}`, skipped",
                    c.case_id, c.status
                ));
                continue;
            };
            let case = rule::Case {
                case_id: c.case_id.clone(),
                offence_date: c.offence_date,
                filed_on: c.filed_on,
                status,
                status_on: c.status_on,
                facts: rule::Facts {
                    accident_responsibility: c.accident_responsibility.clone(),
                    hit_and_run: flag(c.hit_and_run),
                    overloaded: flag(c.overloaded),
                    speeding: flag(c.speeding),
                    drugs: flag(c.drugs),
                    commercial_passengers: flag(c.commercial_passengers),
                    school_bus: flag(c.school_bus),
                    expressway: flag(c.expressway),
                    heavy_goods_vehicle: flag(c.heavy_goods_vehicle),
                    hazardous_goods: flag(c.hazardous_goods),
                    evaded_check: flag(c.evaded_check),
                    obstructed_justice: flag(c.obstructed_justice),
                    emergency: flag(c.emergency),
                    short_move: flag(c.short_move),
                    took_over: flag(c.took_over),
                },
            };
            // Only cases that can be leads need the other departments' data.
            let status_now = p.status_on_as_of(&case);
            if status_now == Status::Transferred
                || case.offence_date > p.as_of
                || case.filed_on > p.as_of
            {
                continue;
            }
            let tests: Vec<rule::Test> = tests
                .iter()
                .map(|t| rule::Test {
                    blood: t.method == "血液",
                    bac: t.bac,
                    tested_on: t.tested_on,
                })
                .collect();
            let bac = rule::bac(&tests, p.as_of);
            let licence = ctx
                .get::<Licence>("driving_licences", &[&c.suspect_id])?
                .map(|l| rule::Licence {
                    first_issued_on: l.first_issued_on,
                    status: l.status,
                    revoked_on: l.revoked_on,
                });
            let priors: Vec<rule::Prior> = ctx
                .lookup::<PriorRecord>("prior_records", "by_person", &c.suspect_id)?
                .into_iter()
                .map(|r| rule::Prior {
                    record_id: r.record_id,
                    kind: r.kind,
                    decided_on: r.decided_on,
                    case_ref: r.case_ref,
                })
                .collect();
            let Some(finding) = p.assess(&case, bac.map(|b| b.0), licence.as_ref(), &priors) else {
                continue;
            };
            let bac_text = match bac {
                Some((b, true)) => format!("{b} (血液)"),
                Some((b, false)) => format!("{b} (呼气)"),
                None => "无检测记录".to_string(),
            };
            let mut lead = Lead::new(&c.case_id)
                .personal_evidence("suspect_id", &c.suspect_id)
                .personal_evidence("suspect_name", c.suspect_name.as_deref().unwrap_or(""))
                .evidence("offence_date", c.offence_date)
                .evidence("filed_on", c.filed_on)
                .evidence("status_as_of", status_now.label())
                .evidence(
                    "status_in_file",
                    match c.status_on {
                        Some(d) => format!("{} {d}", c.status),
                        None => c.status.clone(),
                    },
                )
                .evidence("bac_mg_100ml", bac_text);
            lead = match finding {
                Finding::OpenButMinor { grounds, days_open } => {
                    open += 1;
                    lead.title(format!(
                        "醉驾案件{}符合情节显著轻微（第十二条）仍未撤案",
                        c.case_id
                    ))
                    .evidence("finding", "A 符合第十二条仍在立案侦查")
                    .evidence(
                        "art12_grounds",
                        grounds
                            .iter()
                            .map(|g| g.label())
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                    .evidence("art10_factors", "无")
                    .evidence("days_open", days_open)
                }
                Finding::WithdrawnNotRevoked { factors } => {
                    withdrawn += 1;
                    let l = licence.as_ref().expect("lead B has a licence");
                    lead.title(format!("醉驾案件{}撤案后未吊销驾驶证", c.case_id))
                        .evidence("finding", "B 撤案后未吊销驾驶证")
                        .evidence("licence_status", &l.status)
                        .evidence(
                            "licence_revoked_on",
                            l.revoked_on.map(|d| d.to_string()).unwrap_or_default(),
                        )
                        .evidence(
                            "art10_factors",
                            if factors.is_empty() {
                                "无".to_string()
                            } else {
                                factors
                                    .iter()
                                    .map(|f| f.label())
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            },
                        )
                }
            };
            ctx.emit(lead)?;
        }
        ctx.info(format!(
            "as of {}: {open} open cases meet art. 12, {withdrawn} withdrawn cases without revocation",
            p.as_of
        ));
        Ok(())
    }
}

export_model!(DrunkDrivingWithdrawal);
