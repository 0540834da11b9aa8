//! Lead review: the list (facets, search, sort, paging, export), a page
//! per lead, and the actions on leads, one at a time or in bulk.
//!
//! Leads are shown masked; a person allowed to see clear values asks for
//! them on a lead's page, and that is a `personal-data-revealed` entry
//! before anything is shown.

use crate::web::{self, field, pairs, percent, Chrome, Ctx, Failure, Reply};
use crate::App;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use jiandu_record::ledger::Disclosure;
use jiandu_runs::leads::{self, ExportFormat, Filter, Headers, Lead, Status};
use jiandu_runs::review::{self, Act, Reason, Record, Shown};
use jiandu_runs::users::{self, Action};
use jiandu_store::dataset::resolve::Reveal;
use jiandu_store::Store;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

const REVIEW: &[Action] = &[Action::ReviewLeads];

/// Leads on one page of the list.
pub const PER_PAGE: usize = 50;

/// Evidence fields that say where a lead belongs (the region facet).
const REGION_FIELDS: &[&str] = &["region", "district", "department", "area", "地区", "区域"];

/// The list's query, as the URL carries it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Query {
    pub model: Option<String>,
    pub status: Option<String>,
    pub review: Option<String>,
    pub assignee: Option<String>,
    pub region: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub q: Option<String>,
    pub sort: String,
    pub dir: String,
    pub page: usize,
}

impl Query {
    fn parse(raw: &str) -> Query {
        let p = pairs(raw.as_bytes());
        let get = |k: &str| {
            field(&p, k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let sort = match field(&p, "sort") {
            Some(s @ ("updated" | "amount" | "model" | "subject" | "review")) => s.to_string(),
            _ => "updated".into(),
        };
        let dir = match field(&p, "dir") {
            Some("asc") => "asc".into(),
            _ => "desc".into(),
        };
        Query {
            model: get("model"),
            status: get("status"),
            review: get("review"),
            assignee: get("assignee"),
            region: get("region"),
            from: get("from"),
            to: get("to"),
            q: get("q"),
            sort,
            dir,
            page: field(&p, "page")
                .and_then(|v| v.parse().ok())
                .filter(|n| *n >= 1)
                .unwrap_or(1),
        }
    }

    /// The value of filter `name`, if set.
    fn value(&self, name: &str) -> Option<&str> {
        match name {
            "model" => self.model.as_deref(),
            "status" => self.status.as_deref(),
            "review" => self.review.as_deref(),
            "assignee" => self.assignee.as_deref(),
            "region" => self.region.as_deref(),
            _ => None,
        }
    }

    fn entries(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut put = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                out.push((k, v.clone()));
            }
        };
        put("model", &self.model);
        put("status", &self.status);
        put("review", &self.review);
        put("assignee", &self.assignee);
        put("region", &self.region);
        put("from", &self.from);
        put("to", &self.to);
        put("q", &self.q);
        if self.sort != "updated" {
            out.push(("sort", self.sort.clone()));
        }
        if self.dir != "desc" {
            out.push(("dir", self.dir.clone()));
        }
        out
    }

    fn href_of(entries: &[(&str, String)], path: &str) -> String {
        if entries.is_empty() {
            return path.to_string();
        }
        let q: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect();
        format!("{path}?{}", q.join("&"))
    }

    /// This query's URL at `path` (page 1 unless `page` is given).
    pub fn href(&self, path: &str, page: Option<usize>) -> String {
        let mut e = self.entries();
        if let Some(p) = page.filter(|p| *p > 1) {
            e.push(("page", p.to_string()));
        }
        Query::href_of(&e, path)
    }

    /// The URL with facet `key` set to `value`, or cleared when it is set
    /// to it already.
    fn toggled(&self, key: &'static str, value: &str) -> String {
        let mut e: Vec<(&str, String)> = self
            .entries()
            .into_iter()
            .filter(|(k, _)| *k != key)
            .collect();
        let already = self.entries().iter().any(|(k, v)| *k == key && v == value);
        if !already {
            e.push((key, value.to_string()));
        }
        Query::href_of(&e, "/leads")
    }

    /// The URL sorted by `column` (flipping the direction when it is the
    /// current sort).
    fn sorted(&self, column: &str) -> String {
        let mut q = self.clone();
        if q.sort == column {
            q.dir = if q.dir == "asc" {
                "desc".into()
            } else {
                "asc".into()
            };
        } else {
            q.sort = column.to_string();
            q.dir = "desc".into();
        }
        q.href("/leads", None)
    }
}

/// A lead as a row of the list.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub model: String,
    /// The subject as stored (a pseudonym for a person): what forms send.
    pub subject_key: String,
    /// The subject as shown (masked when personal).
    pub subject: String,
    pub title: String,
    pub amount: Option<String>,
    pub status: String,
    pub status_label: String,
    pub review: String,
    pub review_label: String,
    pub assignee: Option<String>,
    pub region: Option<String>,
    pub updated_at: String,
    pub href: String,
    /// `model/subject`, the value of the bulk checkbox.
    pub key: String,
}

/// One value of a facet, with how many leads have it.
#[derive(Debug, Clone, Serialize)]
pub struct FacetValue {
    pub value: String,
    pub label: String,
    pub count: usize,
    pub selected: bool,
    pub href: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Facet {
    pub name: &'static str,
    pub label: &'static str,
    pub values: Vec<FacetValue>,
}

/// A sortable column header.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub label: &'static str,
    pub href: String,
    pub arrow: &'static str,
}

/// The list page's data (and its JSON twin).
#[derive(Debug, Clone, Serialize)]
pub struct ListData {
    pub query: Query,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub rows: Vec<Row>,
    pub facets: Vec<Facet>,
    #[serde(skip)]
    pub columns: Vec<Column>,
    #[serde(skip)]
    pub prev: Option<String>,
    #[serde(skip)]
    pub next: Option<String>,
    #[serde(skip)]
    pub export: String,
    #[serde(skip)]
    pub back: String,
    #[serde(skip)]
    pub reviewers: Vec<String>,
    #[serde(skip)]
    pub reasons: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "leads.html")]
struct ListPage<'a> {
    chrome: &'a Chrome,
    d: &'a ListData,
}

pub fn status_label(s: Status) -> &'static str {
    match s {
        Status::New => "新发现",
        Status::Open => "持续存在",
        Status::Resolved => "已消除",
    }
}

fn region_of(lead: &Lead) -> Option<&str> {
    lead.evidence
        .iter()
        .find(|e| !e.personal && REGION_FIELDS.contains(&e.name.as_str()))
        .map(|e| e.value.as_str())
}

/// What the list needs of a lead, as the cache keeps it: a few hundred
/// bytes where a whole lead with its evidence takes several kilobytes.
pub struct Brief {
    model: Arc<str>,
    subject: Box<str>,
    subject_personal: bool,
    title: Box<str>,
    amount: Option<Box<str>>,
    /// The amount as a number, for sorting (`None` sorts first).
    amount_value: Option<Decimal>,
    status: Status,
    last_run: Box<str>,
    updated_at: Box<str>,
    region: Option<Box<str>>,
    /// What search looks in, lower-cased: the title, the amount, and the
    /// subject and evidence values unless personal.
    search: Box<str>,
}

impl Brief {
    fn of(model: &Arc<str>, lead: &Lead) -> Brief {
        let mut search = lead.title.to_lowercase();
        let mut add = |t: &str| {
            search.push('\n');
            search.push_str(&t.to_lowercase());
        };
        if let Some(a) = &lead.amount {
            add(a);
        }
        if !lead.subject_personal {
            add(&lead.subject);
        }
        for e in lead.evidence.iter().filter(|e| !e.personal) {
            add(&e.value);
        }
        Brief {
            model: model.clone(),
            subject: lead.subject.as_str().into(),
            subject_personal: lead.subject_personal,
            title: lead.title.as_str().into(),
            amount: lead.amount.as_deref().map(Into::into),
            amount_value: lead
                .amount
                .as_deref()
                .and_then(|a| Decimal::from_str(a).ok()),
            status: lead.status,
            last_run: lead.last_run.as_str().into(),
            updated_at: lead.updated_at.as_str().into(),
            region: region_of(lead).map(Into::into),
            search: search.into(),
        }
    }

    /// A lead with what the list shows of it (no evidence), to be shown
    /// to people ([`leads::for_people`]).
    fn as_lead(&self) -> Lead {
        Lead {
            model: self.model.to_string(),
            model_version: String::new(),
            subject: self.subject.to_string(),
            subject_personal: self.subject_personal,
            title: self.title.to_string(),
            amount: self.amount.as_deref().map(str::to_string),
            evidence: Vec::new(),
            status: self.status,
            first_run: String::new(),
            last_run: self.last_run.to_string(),
            resolved_by: None,
            updated_at: self.updated_at.to_string(),
        }
    }
}

/// Each model's leads as its snapshot held them when last read, by the
/// snapshot's sha256 and run: a snapshot is never modified, so a page
/// reads a model's file again only once a run has replaced it, or kept it
/// (its live leads are then read as open, last produced by that run).
/// With a few hundred thousand leads, reading them all for every page
/// would take seconds.
#[derive(Default)]
pub struct LeadsCache {
    /// By model: the snapshot's sha256 and run, and its leads.
    models: Mutex<HashMap<String, (SnapshotKey, ModelLeads)>>,
}

/// What a model's cached leads were read from: its snapshot's sha256 and
/// the run whose leads it holds.
type SnapshotKey = (String, String);

/// One model's leads, shared by the pages that read them.
type ModelLeads = Arc<Vec<Brief>>;

impl LeadsCache {
    /// The leads of every model, by model then subject, each model's as
    /// its current snapshot holds them.
    fn leads(&self, store: &Store) -> Result<Vec<ModelLeads>, Failure> {
        let snapshots = leads::snapshots(store)?;
        let mut out = Vec::new();
        for snap in &snapshots {
            let cached = {
                let models = self.models.lock().expect("leads cache lock");
                models
                    .get(&snap.model)
                    .filter(|((sha, run), _)| *sha == snap.sha256 && *run == snap.run)
                    .map(|(_, l)| l.clone())
            };
            let leads = match cached {
                Some(l) => l,
                None => {
                    let model: Arc<str> = snap.model.as_str().into();
                    let mut read = Vec::with_capacity(snap.leads as usize);
                    leads::each(store, &snap.model, |l| read.push(Brief::of(&model, &l)))?;
                    let read = Arc::new(read);
                    self.models.lock().expect("leads cache lock").insert(
                        snap.model.clone(),
                        ((snap.sha256.clone(), snap.run.clone()), read.clone()),
                    );
                    read
                }
            };
            out.push(leads);
        }
        // Models whose leads are gone leave the cache.
        let live: std::collections::HashSet<&str> =
            snapshots.iter().map(|s| s.model.as_str()).collect();
        self.models
            .lock()
            .expect("leads cache lock")
            .retain(|m, _| live.contains(m.as_str()));
        Ok(out)
    }
}

/// A lead with its review, and what the console shows for both.
struct Reviewed<'a> {
    lead: &'a Brief,
    record: Option<&'a Record>,
    shown: Shown,
}

/// Every model's leads and every review, read once for a request.
struct Reading {
    leads: Vec<ModelLeads>,
    reviews: HashMap<String, HashMap<String, Record>>,
}

impl Reading {
    fn new(ctx: &Ctx) -> Result<Reading, Failure> {
        Ok(Reading {
            leads: ctx.app.leads.leads(ctx.store())?,
            reviews: review::all(ctx.store())?,
        })
    }

    fn reviewed(&self) -> Vec<Reviewed<'_>> {
        let mut out = Vec::with_capacity(self.leads.iter().map(|m| m.len()).sum());
        for model in &self.leads {
            let Some(first) = model.first() else { continue };
            let reviews = self.reviews.get(&*first.model);
            for lead in model.iter() {
                let record = reviews.and_then(|r| r.get(&*lead.subject));
                out.push(Reviewed {
                    lead,
                    record,
                    shown: Shown::given(record, lead.status, &lead.last_run),
                });
            }
        }
        out
    }
}

fn assignee<'a>(r: &Reviewed<'a>) -> Option<&'a str> {
    r.record.and_then(|x| x.assignee.as_deref())
}

/// Whether a lead passes every filter of `q` but the facet `skip`.
fn passes(r: &Reviewed<'_>, q: &Query, words: Option<&str>, skip: &str) -> bool {
    let l = r.lead;
    let day = l.updated_at.get(..10).unwrap_or("");
    (skip == "model" || q.model.as_deref().is_none_or(|m| m == &*l.model))
        && (skip == "status" || q.status.as_deref().is_none_or(|s| s == l.status.as_str()))
        && (skip == "review" || q.review.as_deref().is_none_or(|s| s == r.shown.as_str()))
        && (skip == "assignee"
            || q.assignee.as_deref().is_none_or(|a| match assignee(r) {
                Some(x) => x == a,
                None => a == "-",
            }))
        && (skip == "region"
            || q.region
                .as_deref()
                .is_none_or(|g| l.region.as_deref() == Some(g)))
        && q.from.as_deref().is_none_or(|f| day >= f)
        && q.to.as_deref().is_none_or(|t| day <= t)
        && words.is_none_or(|w| l.search.contains(w))
}

/// The leads of a request, its query and its search words (lower-cased).
struct Selection<'a, 'b> {
    all: &'a [Reviewed<'b>],
    q: &'a Query,
    words: Option<&'a str>,
}

impl<'a, 'b> Selection<'a, 'b> {
    /// A facet's values over the leads that pass the other filters, each
    /// counted by its value and labelled once.
    fn facet(
        &self,
        name: &'static str,
        label: &'static str,
        value_of: impl Fn(&Reviewed<'b>) -> Option<&'b str>,
        label_of: impl Fn(&str) -> String,
    ) -> Facet {
        let selected = self.q.value(name);
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in self
            .all
            .iter()
            .filter(|r| passes(r, self.q, self.words, name))
        {
            if let Some(v) = value_of(r) {
                *counts.entry(v).or_insert(0) += 1;
            }
        }
        Facet {
            name,
            label,
            values: counts
                .into_iter()
                .map(|(value, count)| FacetValue {
                    selected: selected == Some(value),
                    href: self.q.toggled(name, value),
                    value: value.to_string(),
                    label: label_of(value),
                    count,
                })
                .collect(),
        }
    }
}

/// The leads `q` selects, sorted (every page), and the facets.
fn select<'a>(all: &'a [Reviewed<'a>], q: &Query) -> (Vec<&'a Reviewed<'a>>, Vec<Facet>) {
    let words = q.q.as_deref().map(str::to_lowercase);
    let words = words.as_deref();
    let same = |v: &str| v.to_string();
    let sel = Selection { all, q, words };
    let facets = vec![
        sel.facet("model", "监督模型", |r| Some(&*r.lead.model), same),
        sel.facet(
            "status",
            "运行状态",
            |r| Some(r.lead.status.as_str()),
            |v| {
                [Status::New, Status::Open, Status::Resolved]
                    .into_iter()
                    .find(|s| s.as_str() == v)
                    .map_or(v.to_string(), |s| status_label(s).to_string())
            },
        ),
        sel.facet(
            "review",
            "研判状态",
            |r| Some(r.shown.as_str()),
            |v| Shown::parse(v).map_or(v.to_string(), |s| s.label().to_string()),
        ),
        sel.facet(
            "assignee",
            "承办人",
            |r| Some(assignee(r).unwrap_or("-")),
            |v| {
                if v == "-" {
                    "未指派".to_string()
                } else {
                    v.to_string()
                }
            },
        ),
        sel.facet("region", "地区/部门", |r| r.lead.region.as_deref(), same),
    ];
    let mut chosen: Vec<&Reviewed<'_>> = all.iter().filter(|r| passes(r, q, words, "")).collect();
    chosen.sort_by(|a, b| {
        let (x, y) = (a.lead, b.lead);
        let o = match q.sort.as_str() {
            "amount" => x.amount_value.cmp(&y.amount_value),
            "model" => x.model.cmp(&y.model),
            "subject" => x.subject.cmp(&y.subject),
            "review" => a.shown.as_str().cmp(b.shown.as_str()),
            _ => x.updated_at.cmp(&y.updated_at),
        };
        let o = o.then_with(|| (&x.model, &x.subject).cmp(&(&y.model, &y.subject)));
        if q.dir == "asc" {
            o
        } else {
            o.reverse()
        }
    });
    (chosen, facets)
}

fn reviewers(ctx: &Ctx) -> Result<Vec<String>, Failure> {
    Ok(users::list(ctx.store())?
        .into_iter()
        .filter(|u| u.may(Action::ReviewLeads))
        .map(|u| u.name)
        .collect())
}

fn reasons() -> Vec<(&'static str, &'static str)> {
    Reason::ALL
        .iter()
        .map(|r| (r.as_str(), r.label()))
        .collect()
}

fn lead_href(model: &str, subject: &str) -> String {
    format!(
        "/lead?model={}&subject={}",
        percent(model),
        percent(subject)
    )
}

fn list_data(ctx: &Ctx, raw: &str) -> Result<ListData, Failure> {
    let q = Query::parse(raw);
    let reading = Reading::new(ctx)?;
    let all = reading.reviewed();
    let (chosen, facets) = select(&all, &q);
    let total = chosen.len();
    let pages = total.div_ceil(PER_PAGE).max(1);
    let page = q.page.min(pages);
    let on_page: Vec<&Reviewed<'_>> = chosen
        .into_iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .collect();
    let stored: Vec<Lead> = on_page.iter().map(|r| r.lead.as_lead()).collect();
    let (shown, _) = leads::for_people(ctx.store(), &stored, Reveal::Masked)?;
    let rows = on_page
        .iter()
        .zip(shown)
        .map(|(r, s)| Row {
            model: r.lead.model.to_string(),
            subject_key: r.lead.subject.to_string(),
            subject: s.subject,
            title: s.title,
            amount: s.amount,
            status: r.lead.status.as_str().into(),
            status_label: status_label(r.lead.status).into(),
            review: r.shown.as_str().into(),
            review_label: r.shown.label().into(),
            assignee: assignee(r).map(str::to_string),
            region: r.lead.region.as_deref().map(str::to_string),
            updated_at: r.lead.updated_at.to_string(),
            href: lead_href(&r.lead.model, &r.lead.subject),
            key: format!("{}/{}", r.lead.model, r.lead.subject),
        })
        .collect();
    let arrow = |c: &str| match (q.sort == c, q.dir.as_str()) {
        (true, "asc") => "▲",
        (true, _) => "▼",
        _ => "",
    };
    let columns = [
        ("监督模型", "model"),
        ("线索对象", "subject"),
        ("金额（元）", "amount"),
        ("研判状态", "review"),
        ("更新时间", "updated"),
    ]
    .into_iter()
    .map(|(label, c)| Column {
        label,
        href: q.sorted(c),
        arrow: arrow(c),
    })
    .collect();
    Ok(ListData {
        prev: (page > 1).then(|| q.href("/leads", Some(page - 1))),
        next: (page < pages).then(|| q.href("/leads", Some(page + 1))),
        export: q.href("/leads.xlsx", None),
        back: q.href("/leads", Some(page)),
        reviewers: reviewers(ctx)?,
        reasons: reasons(),
        query: Query { page, ..q },
        total,
        page,
        pages,
        rows,
        facets,
        columns,
    })
}

/// `GET /leads`.
pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let raw = uri.query().unwrap_or("").to_string();
    web::page(app, headers, uri, REVIEW, move |ctx| {
        let d = list_data(ctx, &raw)?;
        web::show(
            ctx,
            &ctx.chrome("线索研判", "/leads"),
            &d,
            |chrome, d| ListPage { chrome, d },
        )
    })
    .await
}

/// `GET /leads.xlsx`: the leads the list's query selects (every page),
/// masked, with Chinese headers and numbers as numbers.
pub async fn export(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let raw = uri.query().unwrap_or("").to_string();
    web::page(app, headers, uri, REVIEW, move |ctx| {
        let q = Query::parse(&raw);
        let reading = Reading::new(ctx)?;
        let all = reading.reviewed();
        let (chosen, _) = select(&all, &q);
        // The whole leads of the models chosen, evidence and all, in the
        // order of the selection.
        let mut by_model: HashMap<&str, HashMap<String, Lead>> = HashMap::new();
        for r in &chosen {
            if !by_model.contains_key(&*r.lead.model) {
                let whole = leads::list(
                    ctx.store(),
                    &Filter {
                        model: Some(r.lead.model.to_string()),
                        status: None,
                    },
                )?;
                by_model.insert(
                    &r.lead.model,
                    whole.into_iter().map(|l| (l.subject.clone(), l)).collect(),
                );
            }
        }
        let mut stored = Vec::with_capacity(chosen.len());
        let mut reviews = Vec::with_capacity(chosen.len());
        for r in &chosen {
            // A run that replaced the snapshot meanwhile may have dropped it.
            if let Some(l) = by_model
                .get_mut(&*r.lead.model)
                .and_then(|m| m.remove(&*r.lead.subject))
            {
                stored.push(l);
                reviews.push((r.shown, r.record.cloned()));
            }
        }
        let (mut shown, _) = leads::for_people(ctx.store(), &stored, Reveal::Masked)?;
        // The review as columns after the model's evidence.
        for (lead, (state, record)) in shown.iter_mut().zip(reviews) {
            let column = |name: &str, value: String| leads::Evidence {
                name: name.to_string(),
                value,
                personal: false,
            };
            let record = record.unwrap_or_default();
            lead.evidence
                .push(column("研判状态", state.label().to_string()));
            lead.evidence
                .push(column("承办人", record.assignee.unwrap_or_default()));
            lead.evidence.push(column(
                "排除原因",
                record
                    .reason
                    .map(|r| r.label().to_string())
                    .unwrap_or_default(),
            ));
            lead.evidence.push(column(
                "移送单位",
                record.transferred_to.unwrap_or_default(),
            ));
        }
        let dir = tempfile::tempdir_in(ctx.store().root().join("tmp"))
            .or_else(|_| tempfile::tempdir())
            .map_err(|e| Failure::internal(format!("no folder for the export: {e}")))?;
        let path = dir.path().join("leads.xlsx");
        leads::export(&shown, ExportFormat::Xlsx, Headers::Zh, &path)?;
        let bytes = std::fs::read(&path)
            .map_err(|e| Failure::internal(format!("cannot read the export back: {e}")))?;
        Ok(Reply::File {
            name: format!("线索-{}.xlsx", &jiandu_store::time::now_text()[..10]),
            mime: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            bytes,
        })
    })
    .await
}

/// One evidence field as the lead page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRow {
    pub name: String,
    pub value: String,
    pub personal: bool,
}

/// One action of the lead's history as shown.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub seq: u64,
    pub at: String,
    pub by: String,
    pub action: String,
    pub action_label: String,
    pub from_label: String,
    pub to_label: String,
    pub reason: Option<String>,
    pub target: Option<String>,
    pub text: Option<String>,
    pub redacted: bool,
    pub seen_in_run: String,
}

/// The lead page's data (and its JSON twin).
#[derive(Debug, Clone, Serialize)]
pub struct LeadData {
    pub model: String,
    pub model_version: String,
    pub subject_key: String,
    pub subject: String,
    pub title: String,
    pub amount: Option<String>,
    pub status: String,
    pub status_label: String,
    pub review: String,
    pub review_label: String,
    pub reason: Option<String>,
    pub assignee: Option<String>,
    pub transferred_to: Option<String>,
    pub evidence: Vec<EvidenceRow>,
    pub first_run: String,
    pub last_run: String,
    pub resolved_by: Option<String>,
    pub updated_at: String,
    pub history: Vec<StepRow>,
    /// The runs that produced the lead, and the one that resolved it.
    pub runs: Vec<RunStep>,
    /// The records behind the lead, in the datasets its model reads.
    pub behind: Vec<Behind>,
    /// Personal values are shown in clear (and that is on the record).
    pub clear: bool,
    pub may_reveal: bool,
    #[serde(skip)]
    pub reviewers: Vec<String>,
    #[serde(skip)]
    pub reasons: Vec<(&'static str, &'static str)>,
    #[serde(skip)]
    pub see_runs: bool,
}

#[derive(Template)]
#[template(path = "lead.html")]
struct LeadPage<'a> {
    chrome: &'a Chrome,
    d: &'a LeadData,
}

fn find(ctx: &Ctx, model: &str, subject: &str) -> Result<Lead, Failure> {
    if model.is_empty() || subject.is_empty() {
        return Err(Failure::bad("须指明线索的模型（model）和对象（subject）"));
    }
    leads::find(ctx.store(), model, subject)?
        .ok_or_else(|| Failure::not_found(format!("模型 {model} 没有这条线索")))
}

fn state_label(s: &str) -> String {
    review::State::parse(s).map_or(s.to_string(), |s| s.label().to_string())
}

fn reason_label(r: Option<&str>) -> Option<String> {
    r.map(|r| Reason::parse(r).map_or(r.to_string(), |x| x.label().to_string()))
}

/// Records behind a lead shown from each dataset, at most.
const BEHIND_ROWS: usize = 20;

/// Records of one dataset the model reads that name the lead's subject.
#[derive(Debug, Clone, Serialize)]
pub struct Behind {
    pub dataset: String,
    pub version: u64,
    pub fields: Vec<String>,
    /// Which fields are personal (masked unless shown in clear).
    pub personal: Vec<bool>,
    pub rows: Vec<Vec<Option<String>>>,
    /// More records matched than are shown.
    pub more: bool,
}

/// The records behind `lead`: in each dataset its model reads, those
/// whose primary key, or a field with an index, holds the lead's subject
/// (a pseudonymous subject is looked up by its clear value, never shown
/// unless `reveal` is clear). Returns them and how many personal values
/// they show in clear.
fn behind(ctx: &Ctx, lead: &Lead, reveal: Reveal) -> Result<(Vec<Behind>, u64), Failure> {
    let store = ctx.store();
    let Ok(installed) = jiandu_sandbox::catalog::load(&store.models_dir(), &lead.model) else {
        return Ok((Vec::new(), 0));
    };
    let value = if jiandu_store::pseudonym::is_pseudonym(&lead.subject) {
        match jiandu_store::dataset::resolve::Resolver::new(store).lookup(&lead.subject)? {
            Some((_, clear)) => clear,
            None => return Ok((Vec::new(), 0)),
        }
    } else {
        lead.subject.clone()
    };
    let clear = reveal == Reveal::Clear;
    let mut out = Vec::new();
    let mut clear_values = 0;
    for name in installed.manifest.datasets.keys() {
        let Ok(reader) = jiandu_store::dataset::VersionReader::current(store, name) else {
            continue;
        };
        let schema = reader.info().schema.clone();
        let mut keys = Vec::new();
        if schema.primary_key.len() == 1 && reader.get(&value)?.is_some() {
            keys.push(value.clone());
        }
        for index in schema.indexes.keys().filter(|i| !i.starts_with('#')) {
            keys.extend(reader.index_keys(index, &value)?);
        }
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            continue;
        }
        let mut rows = Vec::new();
        for key in keys.iter().take(BEHIND_ROWS) {
            if let Some(record) = reader.get(key)? {
                let (row, n) = jiandu_store::dataset::compare::shown_row(&schema, &record, clear)?;
                clear_values += n;
                rows.push(row);
            }
        }
        out.push(Behind {
            dataset: name.clone(),
            version: reader.info().version,
            fields: schema.fields.iter().map(|f| f.name.clone()).collect(),
            personal: schema.fields.iter().map(|f| f.personal.is_some()).collect(),
            rows,
            more: keys.len() > BEHIND_ROWS,
        });
    }
    Ok((out, clear_values))
}

/// A run of the lead's model and what it made of the lead.
#[derive(Debug, Clone, Serialize)]
pub struct RunStep {
    pub run_id: String,
    pub at: String,
    /// `produced` (the run found the lead) or `resolved` (the run that
    /// no longer found it).
    pub what: String,
}

/// Runs shown in a lead's history across runs, at most (the latest).
const RUN_STEPS: usize = 50;

/// The runs of the lead's model that produced it since it was last first
/// found, and the one that resolved it: a lead is produced by every
/// successful run from `first_run` to `last_run`, or it would have been
/// resolved in between.
fn runs_of(ctx: &Ctx, lead: &Lead) -> Result<Vec<RunStep>, Failure> {
    use jiandu_record::audit::query::{self, Filter, Scope};
    let rows = query::log(
        ctx.store(),
        &Filter {
            scope: Scope::Local,
            model: Some(lead.model.clone()),
            ..Filter::default()
        },
    )?;
    let mut steps = Vec::new();
    let mut inside = false;
    for r in rows {
        let run = &r.entry.run;
        let kept = r.entry.kind == "run-finished"
            && run.outcome == "succeeded"
            && r.stored["run"]["dry_run"] != serde_json::Value::Bool(true);
        if !kept {
            continue;
        }
        if run.run_id == lead.first_run {
            inside = true;
        }
        if inside {
            steps.push(RunStep {
                run_id: run.run_id.clone(),
                at: run.started_at.clone(),
                what: "produced".into(),
            });
        }
        if inside && run.run_id == lead.last_run {
            inside = false;
        }
        if lead.resolved_by.as_deref() == Some(run.run_id.as_str()) {
            steps.push(RunStep {
                run_id: run.run_id.clone(),
                at: run.started_at.clone(),
                what: "resolved".into(),
            });
        }
    }
    let skip = steps.len().saturating_sub(RUN_STEPS);
    Ok(steps.split_off(skip))
}

fn lead_data(ctx: &Ctx, model: &str, subject: &str, reveal: Reveal) -> Result<LeadData, Failure> {
    let lead = find(ctx, model, subject)?;
    let (shown, in_lead) = leads::for_people(ctx.store(), std::slice::from_ref(&lead), reveal)?;
    let s = shown.into_iter().next().expect("one lead in, one out");
    let (behind, in_records) = behind(ctx, &lead, reveal)?;
    let revealed = in_lead + in_records;
    if reveal == Reveal::Clear {
        let unit = jiandu_runs::policy::store_unit_label(ctx.store())?;
        leads::record_disclosure(
            ctx.store(),
            &unit,
            &ctx.user.name,
            &Disclosure {
                command: "console lead".into(),
                model: Some(model.to_string()),
                status: None,
                output: None,
                dataset: None,
                leads: 1,
                values: revealed,
            },
        )?;
    }
    let record = review::get(ctx.store(), model, subject)?;
    let shown_state = Shown::of(record.as_ref(), &lead);
    let history = review::history(ctx.store(), model, subject)?
        .into_iter()
        .map(|h| StepRow {
            action_label: review::action_label(&h.action).into(),
            from_label: state_label(&h.from),
            to_label: state_label(&h.to),
            reason: reason_label(h.reason.as_deref()),
            seq: h.seq,
            at: h.at,
            by: h.by,
            action: h.action,
            target: h.target,
            text: h.text,
            redacted: h.redacted,
            seen_in_run: h.seen_in_run,
        })
        .collect();
    Ok(LeadData {
        model: lead.model.clone(),
        model_version: lead.model_version.clone(),
        subject_key: lead.subject.clone(),
        subject: s.subject,
        title: s.title,
        amount: s.amount,
        status: lead.status.as_str().into(),
        status_label: status_label(lead.status).into(),
        review: shown_state.as_str().into(),
        review_label: shown_state.label().into(),
        reason: reason_label(record.as_ref().and_then(|r| r.reason).map(|r| r.as_str())),
        assignee: record.as_ref().and_then(|r| r.assignee.clone()),
        transferred_to: record.as_ref().and_then(|r| r.transferred_to.clone()),
        evidence: s
            .evidence
            .into_iter()
            .map(|e| EvidenceRow {
                name: e.name,
                value: e.value,
                personal: e.personal,
            })
            .collect(),
        first_run: lead.first_run.clone(),
        last_run: lead.last_run.clone(),
        resolved_by: lead.resolved_by.clone(),
        updated_at: lead.updated_at.clone(),
        history,
        runs: runs_of(ctx, &lead)?,
        behind,
        clear: reveal == Reveal::Clear,
        may_reveal: ctx.user.may(Action::RevealClear),
        reviewers: reviewers(ctx)?,
        reasons: reasons(),
        see_runs: ctx.user.may(Action::ManageRuns),
    })
}

fn render_lead(ctx: &Ctx, d: &LeadData) -> Result<Reply, Failure> {
    web::show(
        ctx,
        &ctx.chrome(&format!("线索 {}", d.subject), "/leads"),
        d,
        |chrome, d| LeadPage { chrome, d },
    )
}

/// `GET /lead?model=…&subject=…`.
pub async fn show(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let q = pairs(uri.query().unwrap_or("").as_bytes());
    web::page(app, headers, uri, REVIEW, move |ctx| {
        let model = field(&q, "model").unwrap_or("");
        let subject = field(&q, "subject").unwrap_or("");
        let d = lead_data(ctx, model, subject, Reveal::Masked)?;
        render_lead(ctx, &d)
    })
    .await
}

/// `POST /lead/reveal`: the lead with personal values in clear, for a
/// person allowed to see them; on the record before it is shown.
pub async fn reveal(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    web::form(app, headers, uri, body, &[Action::RevealClear], |ctx, f| {
        if !ctx.user.may(Action::ReviewLeads) {
            return Err(Failure::forbidden());
        }
        let model = field(f, "model").unwrap_or("");
        let subject = field(f, "subject").unwrap_or("");
        let d = lead_data(ctx, model, subject, Reveal::Clear)?;
        render_lead(ctx, &d)
    })
    .await
}

/// The action a form asks for.
fn act_of(f: &[(String, String)]) -> Result<Act, Failure> {
    let text = field(f, "text").map(str::to_string);
    let to = field(f, "to").unwrap_or("").to_string();
    match field(f, "action").unwrap_or("") {
        "confirm" => Ok(Act::Confirm),
        "dismiss" => {
            let reason = field(f, "reason").and_then(Reason::parse).ok_or_else(|| {
                Failure::bad("排除须选择原因：误报、重复线索、不属本院管辖或其他")
            })?;
            Ok(Act::Dismiss { reason, text })
        }
        "transfer" => Ok(Act::Transfer { to }),
        "reopen" => Ok(Act::Reopen),
        "assign" => Ok(Act::Assign { to }),
        "note" => Ok(Act::Note {
            text: text.unwrap_or_default(),
        }),
        other => Err(Failure::bad(format!(
            "没有“{other}”这个操作：confirm、dismiss、transfer、reopen、assign 或 note"
        ))),
    }
}

/// `POST /lead/act`: one action on one lead.
pub async fn act_one(
    State(app): State<App>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    web::form(app, headers, uri, body, REVIEW, |ctx, f| {
        let model = field(f, "model").unwrap_or("");
        let subject = field(f, "subject").unwrap_or("");
        let act = act_of(f)?;
        let lead = find(ctx, model, subject)?;
        let unit = jiandu_runs::policy::store_unit_label(ctx.store())?;
        let entry = review::act(ctx.store(), &unit, &ctx.user.name, &lead, &act)?;
        if ctx.json {
            return Ok(Reply::Json(serde_json::json!({
                "seq": entry.seq,
                "review": entry.review,
            })));
        }
        Ok(Reply::Redirect(lead_href(model, subject)))
    })
    .await
}

/// What a bulk action did.
#[derive(Debug, Clone, Serialize)]
pub struct BulkData {
    pub action: String,
    pub action_label: String,
    pub done: Vec<String>,
    pub refused: Vec<(String, String)>,
    pub back: String,
}

#[derive(Template)]
#[template(path = "bulk.html")]
struct BulkPage<'a> {
    chrome: &'a Chrome,
    d: &'a BulkData,
}

/// `POST /leads/act`: one action on every lead ticked (`key` =
/// `model/subject`, repeated). Each lead is its own ledger entry; a lead
/// the action does not fit is listed with why, the others are done.
pub async fn act_bulk(
    State(app): State<App>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    web::form(app, headers, uri, body, REVIEW, |ctx, f| {
        let act = act_of(f)?;
        let keys: Vec<&str> = f
            .iter()
            .filter(|(k, _)| k == "key")
            .map(|(_, v)| v.as_str())
            .collect();
        if keys.is_empty() {
            return Err(Failure::bad("请先勾选线索"));
        }
        let unit = jiandu_runs::policy::store_unit_label(ctx.store())?;
        let mut by_model: BTreeMap<&str, Vec<Lead>> = BTreeMap::new();
        let mut d = BulkData {
            action: act.as_str().into(),
            action_label: act.label().into(),
            done: Vec::new(),
            refused: Vec::new(),
            back: field(f, "back")
                .filter(|b| b.starts_with("/leads"))
                .unwrap_or("/leads")
                .to_string(),
        };
        for key in keys {
            let Some((model, subject)) = key.split_once('/') else {
                d.refused.push((key.to_string(), "不是线索的标识".into()));
                continue;
            };
            if !by_model.contains_key(model) {
                let all = leads::list(
                    ctx.store(),
                    &Filter {
                        model: Some(model.to_string()),
                        status: None,
                    },
                )?;
                by_model.insert(model, all);
            }
            let Some(lead) = by_model[model].iter().find(|l| l.subject == subject) else {
                d.refused.push((key.to_string(), "没有这条线索".into()));
                continue;
            };
            match review::act(ctx.store(), &unit, &ctx.user.name, lead, &act) {
                Ok(_) => d.done.push(key.to_string()),
                Err(jiandu_store::Error::Refused(why)) => d.refused.push((key.to_string(), why)),
                Err(e) => return Err(e.into()),
            }
        }
        web::show(
            ctx,
            &ctx.chrome("批量操作结果", "/leads"),
            &d,
            |chrome, d| BulkPage { chrome, d },
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_round_trips_through_its_url() {
        let q = Query::parse(
            "model=m%2F1&review=dismissed&q=%E5%85%AC%E5%8F%B8&sort=amount&dir=asc&page=3",
        );
        assert_eq!(q.model.as_deref(), Some("m/1"));
        assert_eq!(q.q.as_deref(), Some("公司"));
        assert_eq!(q.page, 3);
        let again = Query::parse(q.href("/leads", Some(3)).split_once('?').unwrap().1);
        assert_eq!(format!("{again:?}"), format!("{q:?}"));
    }

    #[test]
    fn a_facet_link_sets_its_value_or_clears_it() {
        let q = Query::parse("review=dismissed");
        assert_eq!(q.toggled("review", "dismissed"), "/leads");
        assert_eq!(q.toggled("review", "pending"), "/leads?review=pending");
        assert_eq!(q.toggled("model", "m"), "/leads?review=dismissed&model=m");
    }

    #[test]
    fn unknown_sorts_and_pages_fall_back() {
        let q = Query::parse("sort=evil&dir=up&page=-1");
        assert_eq!(
            (q.sort.as_str(), q.dir.as_str(), q.page),
            ("updated", "desc", 1)
        );
    }
}
