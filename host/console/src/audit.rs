//! The audit views, for auditors: every unit whose record this store
//! holds (its own and those imported at a central office), whether each
//! verifies, runs per unit, model and month, failures and refusals,
//! leads; and a unit's record, entry by entry.

use crate::admin::outcome_label;
use crate::web::{self, field, pairs, percent, Chrome, Failure};
use crate::App;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use jiandu_record::audit::query::{self, Filter, Scope};
use jiandu_record::audit::{units, verify};
use jiandu_record::ledger::Verification;
use jiandu_runs::users::Action;
use serde::Serialize;
use std::collections::BTreeMap;

const AUDIT: &[Action] = &[Action::SeeAudit];

/// Entries shown on a unit's page, newest first.
const ENTRIES_SHOWN: usize = 300;

/// Runs of one model at one unit in one month.
#[derive(Debug, Clone, Serialize)]
pub struct MonthRow {
    pub month: String,
    pub model: String,
    pub runs: u64,
    pub failed: u64,
    pub refused: u64,
    pub leads: u64,
}

/// One unit on the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct UnitRow {
    pub unit: String,
    pub code: Option<String>,
    /// `local` for this store's own record, else the unit key's fingerprint.
    pub id: String,
    pub local: bool,
    pub entries: u64,
    pub checkpoint_size: Option<u64>,
    pub checkpoint_time: Option<String>,
    /// Whether the record verifies; when not, which check failed (a gap,
    /// a fork, an entry rewritten, a bad signature) at which entry.
    pub verified: bool,
    pub problem_check: Option<String>,
    pub problem_label: Option<String>,
    pub problem: Option<String>,
    pub runs: u64,
    pub failed: u64,
    pub refused: u64,
    pub unfinished: u64,
    pub leads: u64,
    pub months: Vec<MonthRow>,
    pub href: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DashboardData {
    pub units: Vec<UnitRow>,
    pub imported: usize,
    pub problems: usize,
    pub runs: u64,
    pub failed: u64,
    pub refused: u64,
    pub leads: u64,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct DashboardPage<'a> {
    chrome: &'a Chrome,
    d: &'a DashboardData,
}

/// What a failed check means, in the words of the dashboard.
fn problem_label(check: &str) -> &'static str {
    match check {
        "sequence" => "缺号（记录有缺口）",
        "chain" => "链断裂（分叉或被改写）",
        "hash" => "记录被改写",
        "signature" => "签名不符",
        "checkpoint" => "检查点不符（分叉）",
        "head" => "链头不符（截断或回滚）",
        "text" => "附记文本不符",
        "parse" => "记录无法解析",
        _ => "校验失败",
    }
}

fn verification(
    v: Result<Verification, jiandu_store::Error>,
) -> (bool, Option<String>, Option<String>) {
    match v {
        Ok(v) => match v.problem {
            None => (true, None, None),
            Some(p) => (
                false,
                Some(p.check.to_string()),
                Some(format!("第 {} 条：{}", p.seq, p.message)),
            ),
        },
        Err(e) => (false, Some("parse".into()), Some(e.to_string())),
    }
}

fn months(rows: &[query::LogRow]) -> Vec<MonthRow> {
    let mut by: BTreeMap<(String, String), MonthRow> = BTreeMap::new();
    for r in rows {
        let kind = r.entry.kind.as_str();
        if !matches!(kind, "run-finished" | "run-refused") {
            continue;
        }
        let run = &r.entry.run;
        let month = run.started_at.get(..7).unwrap_or("").to_string();
        let row = by
            .entry((month.clone(), run.model.name.clone()))
            .or_insert_with(|| MonthRow {
                month,
                model: run.model.name.clone(),
                runs: 0,
                failed: 0,
                refused: 0,
                leads: 0,
            });
        row.runs += 1;
        match run.outcome.as_str() {
            "failed" => row.failed += 1,
            "refused" => row.refused += 1,
            _ => row.leads += run.leads_count.unwrap_or(0),
        }
    }
    by.into_values().rev().collect()
}

/// `GET /audit`.
pub async fn dashboard(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    web::page(app, headers, uri, AUDIT, move |ctx| {
        let store = ctx.store();
        let summaries = query::report(store, &Filter::default())?;
        let mut d = DashboardData {
            units: Vec::new(),
            imported: 0,
            problems: 0,
            runs: 0,
            failed: 0,
            refused: 0,
            leads: 0,
        };
        for s in summaries {
            let (id, v) = match &s.fingerprint {
                Some(fp) if !s.local => {
                    let unit = units::get(store, fp)?
                        .ok_or_else(|| Failure::internal(format!("unit {fp} is not registered")))?;
                    (fp.clone(), verify::central(store, &unit))
                }
                _ => ("local".to_string(), verify::local(store)),
            };
            let (verified, check, problem) = verification(v);
            let rows = query::log(store, &unit_filter(&id))?;
            d.imported += usize::from(!s.local);
            d.problems += usize::from(!verified);
            d.runs += s.counts.runs;
            d.failed += s.counts.failed;
            d.refused += s.counts.refused;
            d.leads += s.counts.leads;
            d.units.push(UnitRow {
                href: format!("/audit/unit?id={}", percent(&id)),
                unit: s.unit.clone(),
                code: s.code.clone(),
                id,
                local: s.local,
                entries: s.entries,
                checkpoint_size: s.checkpoint.as_ref().map(|c| c.size),
                checkpoint_time: s.checkpoint.as_ref().map(|c| c.time.clone()),
                verified,
                problem_label: check.as_deref().map(|c| problem_label(c).to_string()),
                problem_check: check,
                problem,
                runs: s.counts.runs,
                failed: s.counts.failed,
                refused: s.counts.refused,
                unfinished: s.counts.unfinished,
                leads: s.counts.leads,
                months: months(&rows),
            });
        }
        web::show(
            ctx,
            &ctx.chrome("审计总览", "/audit"),
            &d,
            |chrome, d| DashboardPage { chrome, d },
        )
    })
    .await
}

fn unit_filter(id: &str) -> Filter {
    if id == "local" {
        Filter {
            scope: Scope::Local,
            ..Filter::default()
        }
    } else {
        Filter {
            scope: Scope::Central,
            unit: Some(id.to_string()),
            ..Filter::default()
        }
    }
}

/// One entry of a unit's record as shown.
#[derive(Debug, Clone, Serialize)]
pub struct EntryRow {
    pub seq: u64,
    pub at: String,
    pub operator: String,
    pub kind: String,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitData {
    pub id: String,
    pub unit: String,
    pub total: usize,
    pub entries: Vec<EntryRow>,
}

#[derive(Template)]
#[template(path = "audit_unit.html")]
struct UnitPage<'a> {
    chrome: &'a Chrome,
    d: &'a UnitData,
}

fn summary(e: &jiandu_record::audit::EntryView) -> String {
    if let Some(r) = &e.review {
        return format!(
            "{} {}：{}（{} → {}）",
            r.model,
            r.subject,
            jiandu_runs::review::action_label(&r.action),
            r.from,
            r.to
        );
    }
    if let Some(l) = &e.login {
        return match &l.refusal {
            None => format!("{} 登录（{}）", l.name, l.from),
            Some(why) => format!("{} 登录被拒：{why}（{}）", l.name, l.from),
        };
    }
    if let Some(i) = &e.ingest {
        return format!(
            "{} 第 {} 版，{} 条，来自 {}",
            i.dataset, i.version, i.records, i.source
        );
    }
    if let Some(d) = &e.disclosure {
        return format!(
            "{}：{} 条线索，{} 个个人信息明文",
            d.command, d.leads, d.values
        );
    }
    if !e.run.run_id.is_empty() {
        let r = &e.run;
        return format!(
            "{} {} {}{}",
            r.model.name,
            r.run_id,
            outcome_label(&r.outcome),
            r.leads_count
                .map(|n| format!("，{n} 条线索"))
                .unwrap_or_default()
        );
    }
    String::new()
}

/// `GET /audit/unit?id=…`: a unit's record, newest first.
pub async fn unit(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let p = pairs(uri.query().unwrap_or("").as_bytes());
    web::page(app, headers, uri, AUDIT, move |ctx| {
        let id = field(&p, "id").unwrap_or("local").to_string();
        let rows = query::log(ctx.store(), &unit_filter(&id))?;
        let unit = rows
            .first()
            .map(|r| r.unit.clone())
            .unwrap_or_else(|| id.clone());
        let total = rows.len();
        let entries = rows
            .iter()
            .rev()
            .take(ENTRIES_SHOWN)
            .map(|r| EntryRow {
                seq: r.entry.seq,
                at: r.entry.at.clone(),
                operator: r.entry.operator.clone(),
                kind: r.entry.kind.clone(),
                summary: summary(&r.entry),
            })
            .collect();
        let d = UnitData {
            id,
            unit,
            total,
            entries,
        };
        web::show(
            ctx,
            &ctx.chrome(&format!("审计：{}", d.unit), "/audit"),
            &d,
            |chrome, d| UnitPage { chrome, d },
        )
    })
    .await
}
