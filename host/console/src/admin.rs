//! Runs, models and datasets: for admins, who also start runs, and for
//! auditors, who read them.

use crate::web::{self, field, pairs, percent, Chrome, Ctx, Failure, Reply};
use crate::App;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use jiandu_record::audit::query::{self, Filter, OutcomeFilter, Scope, TimeBound};
use jiandu_runs::trust::TrustState;
use jiandu_runs::users::Action;
use jiandu_sandbox::catalog;
use jiandu_store::dataset;
use serde::Serialize;
use std::collections::BTreeMap;

const SEE: &[Action] = &[Action::ManageRuns, Action::SeeAudit];

/// Runs shown on one page of the history.
const RUNS_SHOWN: usize = 200;

pub fn outcome_label(o: &str) -> &'static str {
    match o {
        "succeeded" => "成功",
        "failed" => "失败",
        "refused" => "被拒绝",
        "started" => "未完成",
        _ => "其他",
    }
}

/// One run of the history.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub run_id: String,
    pub model: String,
    pub version: String,
    pub operator: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: String,
    pub outcome_label: String,
    pub leads: Option<u64>,
    pub error_kind: Option<String>,
    pub href: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunsQuery {
    pub model: Option<String>,
    pub outcome: Option<String>,
    pub operator: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunsData {
    pub query: RunsQuery,
    pub total: usize,
    pub runs: Vec<RunRow>,
    #[serde(skip)]
    pub models: Vec<String>,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage<'a> {
    chrome: &'a Chrome,
    d: &'a RunsData,
}

fn run_href(id: &str) -> String {
    format!("/run?id={}", percent(id))
}

fn runs_data(ctx: &Ctx, raw: &str) -> Result<RunsData, Failure> {
    let p = pairs(raw.as_bytes());
    let get = |k: &str| {
        field(&p, k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let q = RunsQuery {
        model: get("model"),
        outcome: get("outcome"),
        operator: get("operator"),
        from: get("from"),
        to: get("to"),
    };
    let filter = Filter {
        scope: Scope::Local,
        model: q.model.clone(),
        operator: q.operator.clone(),
        outcome: q
            .outcome
            .as_deref()
            .map(|o| o.parse::<OutcomeFilter>().map_err(Failure::bad))
            .transpose()?,
        since: q
            .from
            .as_deref()
            .map(|t| TimeBound::since(t).map_err(Failure::bad))
            .transpose()?,
        until: q
            .to
            .as_deref()
            .map(|t| TimeBound::until(t).map_err(Failure::bad))
            .transpose()?,
        ..Filter::default()
    };
    let mut runs: Vec<RunRow> = query::log(ctx.store(), &filter)?
        .into_iter()
        .filter(|r| {
            matches!(r.entry.kind.as_str(), "run-finished" | "run-refused")
                || (r.entry.kind == "run-started" && r.unfinished)
        })
        .map(|r| {
            let run = &r.entry.run;
            RunRow {
                href: run_href(&run.run_id),
                run_id: run.run_id.clone(),
                model: run.model.name.clone(),
                version: run.model.version.clone(),
                operator: r.entry.operator.clone(),
                started_at: run.started_at.clone(),
                ended_at: run.ended_at.clone(),
                outcome_label: outcome_label(&run.outcome).into(),
                outcome: run.outcome.clone(),
                leads: run.leads_count,
                error_kind: run.error.as_ref().map(|e| e.kind.clone()),
            }
        })
        .collect();
    runs.reverse();
    let total = runs.len();
    runs.truncate(RUNS_SHOWN);
    Ok(RunsData {
        query: q,
        total,
        runs,
        models: catalog::list_names(&ctx.store().models_dir())?,
    })
}

/// `GET /runs`: the run history, newest first, with filters.
pub async fn runs(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let raw = uri.query().unwrap_or("").to_string();
    web::page(app, headers, uri, SEE, move |ctx| {
        let d = runs_data(ctx, &raw)?;
        web::show(
            ctx,
            &ctx.chrome("运行记录", "/runs"),
            &d,
            |chrome, d| RunsPage { chrome, d },
        )
    })
    .await
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetRead {
    pub name: String,
    pub version: u64,
    pub digest: String,
    pub clear_personal: bool,
    pub personal_fields: Vec<String>,
}

/// One run, as its entries record it.
#[derive(Debug, Clone, Serialize)]
pub struct RunData {
    pub run_id: String,
    pub model: String,
    pub version: String,
    pub wasm_sha256: String,
    pub operator: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: String,
    pub outcome_label: String,
    pub params: BTreeMap<String, String>,
    pub datasets: Vec<DatasetRead>,
    pub records_read: Option<u64>,
    pub leads: Option<u64>,
    pub leads_digest: Option<String>,
    pub limits: serde_json::Value,
    pub error_kind: Option<String>,
    /// The error as the host wrote it; a model's own words stay beside
    /// the entry (`audit show`), since they may quote personal data.
    pub error: Option<String>,
    pub entries: Vec<u64>,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage<'a> {
    chrome: &'a Chrome,
    d: &'a RunData,
}

/// `GET /run?id=…`.
pub async fn run(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let p = pairs(uri.query().unwrap_or("").as_bytes());
    web::page(app, headers, uri, SEE, move |ctx| {
        let id = field(&p, "id").unwrap_or("").to_string();
        let rows: Vec<query::LogRow> = query::log(
            ctx.store(),
            &Filter {
                scope: Scope::Local,
                ..Filter::default()
            },
        )?
        .into_iter()
        .filter(|r| r.entry.kind.starts_with("run-") && r.entry.run.run_id == id)
        .collect();
        let last = rows
            .last()
            .ok_or_else(|| Failure::not_found(format!("没有运行 {id}")))?;
        let run = &last.entry.run;
        let d = RunData {
            run_id: id.clone(),
            model: run.model.name.clone(),
            version: run.model.version.clone(),
            wasm_sha256: run.model.wasm_sha256.clone(),
            operator: last.entry.operator.clone(),
            started_at: run.started_at.clone(),
            ended_at: run.ended_at.clone(),
            outcome: run.outcome.clone(),
            outcome_label: outcome_label(&run.outcome).into(),
            params: run.params.clone(),
            datasets: run
                .datasets
                .iter()
                .map(|d| DatasetRead {
                    name: d.name.clone(),
                    version: d.version,
                    digest: d.digest.clone(),
                    clear_personal: d.clear_personal,
                    personal_fields: d.personal_fields.clone(),
                })
                .collect(),
            records_read: run.records_read,
            leads: run.leads_count,
            leads_digest: run.leads_digest.clone(),
            limits: last.stored["run"]["limits"].clone(),
            error_kind: run.error.as_ref().map(|e| e.kind.clone()),
            error: run
                .error
                .as_ref()
                .filter(|e| !e.message.is_empty())
                .map(|e| e.message.clone()),
            entries: rows.iter().map(|r| r.entry.seq).collect(),
        };
        web::show(
            ctx,
            &ctx.chrome(&format!("运行 {id}"), "/runs"),
            &d,
            |chrome, d| RunPage { chrome, d },
        )
    })
    .await
}

/// A dataset a model reads, with its personal fields marked.
#[derive(Debug, Clone, Serialize)]
pub struct ReadField {
    pub name: String,
    pub personal: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelReads {
    pub dataset: String,
    pub fields: Vec<ReadField>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParamRow {
    pub name: String,
    pub ty: String,
    pub default: Option<String>,
    pub unit: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    pub name: String,
    pub version: String,
    pub title: String,
    pub publisher: String,
    pub plan: bool,
    pub href: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelsData {
    pub models: Vec<ModelRow>,
    /// Models whose folder does not load, with why.
    pub broken: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "models.html")]
struct ModelsPage<'a> {
    chrome: &'a Chrome,
    d: &'a ModelsData,
}

fn publisher(installed: &catalog::Installed) -> String {
    match &installed.provenance {
        Some(p) => p.publisher_unit.clone(),
        None => "本单位构建".into(),
    }
}

/// `GET /models`.
pub async fn models(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    web::page(app, headers, uri, SEE, move |ctx| {
        let dir = ctx.store().models_dir();
        let mut d = ModelsData {
            models: Vec::new(),
            broken: Vec::new(),
        };
        for name in catalog::list_names(&dir)? {
            match catalog::load(&dir, &name) {
                Ok(m) => d.models.push(ModelRow {
                    href: format!("/model?name={}", percent(&name)),
                    version: m.manifest.version.clone(),
                    title: m.manifest.title.clone(),
                    publisher: publisher(&m),
                    plan: m.plan.is_some(),
                    name,
                }),
                Err(e) => d.broken.push((name, e.to_string())),
            }
        }
        web::show(ctx, &ctx.chrome("模型", "/models"), &d, |chrome, d| {
            ModelsPage { chrome, d }
        })
    })
    .await
}

/// One model: what it reads, its basis, parameters, publisher, reloads,
/// and for a plan the rule in words.
#[derive(Debug, Clone, Serialize)]
pub struct ModelData {
    pub name: String,
    pub version: String,
    pub title: String,
    pub description: Option<String>,
    pub legal_basis: Vec<String>,
    pub reads: Vec<ModelReads>,
    pub params: Vec<ParamRow>,
    pub publisher: String,
    pub signed_by: Option<String>,
    /// `local`, `trusted` or `untrusted` (imported, its publisher's key
    /// no longer in the trust store: runs are refused).
    pub trust: String,
    pub trust_label: String,
    pub wasm_sha256: String,
    pub plan_sha256: Option<String>,
    pub explain: Vec<String>,
    pub reloads: Vec<crate::ModelEvent>,
    pub may_run: bool,
    #[serde(skip)]
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "model.html")]
struct ModelPage<'a> {
    chrome: &'a Chrome,
    d: &'a ModelData,
}

fn model_data(ctx: &Ctx, name: &str) -> Result<ModelData, Failure> {
    let dir = ctx.store().models_dir();
    if !catalog::list_names(&dir)?.iter().any(|n| n == name) {
        return Err(Failure::not_found(format!("没有模型 {name}")));
    }
    let m = catalog::load(&dir, name)?;
    let mut reads = Vec::new();
    for (ds, decl) in &m.manifest.datasets {
        let schema = dataset::head(ctx.store(), ds)?.map(|h| h.schema);
        let personal = |f: &str| {
            schema
                .as_ref()
                .and_then(|s| s.fields.iter().find(|x| x.name == f))
                .is_some_and(|x| x.personal.is_some())
        };
        let names: Vec<String> = match (&decl.fields, &schema) {
            (Some(f), _) => f.clone(),
            (None, Some(s)) => s.fields.iter().map(|x| x.name.clone()).collect(),
            (None, None) => Vec::new(),
        };
        reads.push(ModelReads {
            dataset: ds.clone(),
            fields: names
                .into_iter()
                .map(|n| ReadField {
                    personal: personal(&n),
                    name: n,
                })
                .collect(),
        });
    }
    let trust = jiandu_runs::trust::state(ctx.store(), &m)?;
    let explain = if m.plan.is_some() {
        jiandu_runs::plans::explain(ctx.store(), &m)
            .unwrap_or_else(|e| vec![format!("（无法解释：{e}）")])
    } else {
        Vec::new()
    };
    let reloads = ctx
        .app
        .host
        .as_ref()
        .map(|h| {
            h.model_events()
                .into_iter()
                .filter(|e| e.model == name)
                .collect()
        })
        .unwrap_or_default();
    Ok(ModelData {
        name: name.to_string(),
        version: m.manifest.version.clone(),
        title: m.manifest.title.clone(),
        description: m.manifest.description.clone(),
        legal_basis: m.manifest.legal_basis.clone(),
        reads,
        params: m
            .manifest
            .params
            .iter()
            .map(|(k, p)| ParamRow {
                name: k.clone(),
                ty: format!("{:?}", p.ty).to_lowercase(),
                default: p.default.as_ref().map(toml_text),
                unit: p.unit.clone(),
                description: p.description.clone(),
            })
            .collect(),
        publisher: publisher(&m),
        signed_by: m.provenance.as_ref().map(|p| p.fingerprint.clone()),
        trust: trust.as_str().into(),
        trust_label: match trust {
            TrustState::Local => "本单位构建",
            TrustState::Trusted => "发布单位密钥受信任",
            TrustState::Untrusted => "发布单位密钥已不受信任（运行将被拒绝）",
        }
        .into(),
        wasm_sha256: m.wasm_sha256.clone(),
        plan_sha256: m.plan_sha256.clone(),
        explain,
        reloads,
        may_run: ctx.user.may(Action::ManageRuns) && ctx.app.host.is_some(),
        csrf: ctx.csrf.clone(),
    })
}

fn toml_text<T: std::fmt::Display>(v: &T) -> String {
    let t = v.to_string();
    t.trim_matches('"').to_string()
}

/// `GET /model?name=…`.
pub async fn model(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let p = pairs(uri.query().unwrap_or("").as_bytes());
    web::page(app, headers, uri, SEE, move |ctx| {
        let name = field(&p, "name").unwrap_or("").to_string();
        let d = model_data(ctx, &name)?;
        web::show(
            ctx,
            &ctx.chrome(&format!("模型 {name}"), "/models"),
            &d,
            |chrome, d| ModelPage { chrome, d },
        )
    })
    .await
}

/// `POST /model/run`: an admin starts a run of a loaded model with the
/// parameters the form gives (`param.<name>`; empty means the default).
pub async fn start_run(
    State(app): State<App>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    web::form(app, headers, uri, body, &[Action::ManageRuns], |ctx, f| {
        let name = field(f, "name").unwrap_or("").to_string();
        let Some(host) = ctx.app.host.clone() else {
            return Err(Failure::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "此控制台未与运行服务相连，无法发起运行",
            ));
        };
        let params: Vec<(String, String)> = f
            .iter()
            .filter_map(|(k, v)| {
                Some((k.strip_prefix("param.")?.to_string(), v.trim().to_string()))
            })
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let started = host
            .run(&name, params, &ctx.user.name)
            .map_err(|e| Failure::new(axum::http::StatusCode::CONFLICT, e))?;
        if ctx.json {
            return Ok(Reply::Json(
                serde_json::to_value(&started).unwrap_or_default(),
            ));
        }
        Ok(Reply::Redirect(run_href(&started.run_id)))
    })
    .await
}

/// A dataset and its versions: who loaded what, and when.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetRow {
    pub name: String,
    pub department: String,
    pub personal: bool,
    pub current: Option<u64>,
    pub versions: Vec<VersionRow>,
}

impl DatasetRow {
    pub fn is_current(&self, version: &u64) -> bool {
        self.current == Some(*version)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    pub version: u64,
    pub records: u64,
    pub created_at: String,
    pub operator: String,
    pub source: String,
    pub warnings: u64,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetsData {
    pub datasets: Vec<DatasetRow>,
    /// The person may roll a dataset back (an admin).
    pub may_manage: bool,
    #[serde(skip)]
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "datasets.html")]
struct DatasetsPage<'a> {
    chrome: &'a Chrome,
    d: &'a DatasetsData,
}

/// `GET /datasets`.
pub async fn datasets(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    web::page(app, headers, uri, SEE, move |ctx| {
        let d = DatasetsData {
            may_manage: ctx.user.may(Action::ManageDatasets),
            csrf: ctx.csrf.clone(),
            datasets: dataset::list(ctx.store())?
                .into_iter()
                .map(|h| DatasetRow {
                    name: h.schema.name.clone(),
                    department: h.schema.department.clone(),
                    personal: h.schema.fields.iter().any(|f| f.personal.is_some()),
                    current: h.current,
                    versions: h
                        .versions
                        .iter()
                        .rev()
                        .map(|v| VersionRow {
                            version: v.version,
                            records: v.records,
                            created_at: v.created_at.clone(),
                            operator: v.operator.clone(),
                            source: v.source.clone(),
                            warnings: v.warnings,
                            digest: v.digest.clone(),
                        })
                        .collect(),
                })
                .collect(),
        };
        web::show(
            ctx,
            &ctx.chrome("数据集", "/datasets"),
            &d,
            |chrome, d| DatasetsPage { chrome, d },
        )
    })
    .await
}

/// `POST /dataset/rollback`: an admin makes an earlier version of a dataset
/// current again (`to`, or the version before the current one), on the
/// record, as `jiandu dataset rollback` does.
pub async fn rollback(
    State(app): State<App>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    web::form(
        app,
        headers,
        uri,
        body,
        &[Action::ManageDatasets],
        |ctx, f| {
            let name = field(f, "name").unwrap_or("").to_string();
            let to = match field(f, "to").map(str::trim).filter(|t| !t.is_empty()) {
                None => None,
                Some(t) => Some(
                    t.parse::<u64>()
                        .map_err(|_| Failure::bad(format!("“{t}”不是版本号")))?,
                ),
            };
            let unit = jiandu_runs::policy::store_unit_label(ctx.store())?;
            let done =
                jiandu_runs::versions::rollback(ctx.store(), &name, to, unit, &ctx.user.name)
                    .map_err(|e| match e {
                        jiandu_store::Error::Dataset { .. } => {
                            Failure::new(axum::http::StatusCode::CONFLICT, e.to_string())
                        }
                        e => e.into(),
                    })?;
            if ctx.json {
                return Ok(Reply::Json(serde_json::json!({
                    "dataset": name,
                    "from": done.from,
                    "to": done.to.version,
                    "seq": done.seq,
                })));
            }
            Ok(Reply::Redirect("/datasets".into()))
        },
    )
    .await
}
