//! Type checking a plan against a [`Catalog`]: `jiandu model build` runs
//! this, so that every dataset, field, parameter, join key, aggregate and
//! expression is known to fit before anything runs.
//!
//! The result, a [`CheckedPlan`], knows each step's columns, their types,
//! nullability and personal markings, and the order each step's rows come
//! in, which is what lets joins and groups stream.

use crate::catalog::{Catalog, Dataset, Field, Param};
use crate::error::{Located, PlanError};
use crate::expr::check::{check, check_as, Scope, TExpr};
use crate::plan::{AggFunc, JoinKind, Name, Op, Plan, TemplatePart, MAX_WINDOW_DAYS};
use crate::span::Pos;
use crate::value::{PersonalKind, Type, Value};
use std::collections::BTreeSet;

/// The most evidence fields a lead carries (the host refuses more).
pub const MAX_EVIDENCE_FIELDS: usize = 64;

/// The most scans a run may hold open at once (the contract's limit,
/// `sdk/wit/model.wit`; the host refuses the next one). Each `read` an
/// `emit` builds on is one open scan while that `emit` runs.
pub const MAX_OPEN_SCANS: usize = 64;

pub use crate::expr::check::Column;

/// A plan that type-checked, ready to be bound to parameter values
/// ([`CheckedPlan::bind`]).
#[derive(Debug, Clone)]
pub struct CheckedPlan {
    pub(crate) file: String,
    pub(crate) params: Vec<Param>,
    pub(crate) steps: Vec<CStep>,
}

#[derive(Debug, Clone)]
pub(crate) struct CStep {
    pub name: String,
    pub pos: Pos,
    pub columns: Vec<Column>,
    /// Columns the rows are sorted on, most significant first.
    pub sorted_by: Vec<usize>,
    pub kind: CKind,
}

#[derive(Debug, Clone)]
pub(crate) enum CKind {
    Read {
        dataset: String,
    },
    Filter {
        input: usize,
        cond: TExpr,
    },
    Derive {
        input: usize,
        exprs: Vec<TExpr>,
    },
    Select {
        input: usize,
        keep: Vec<usize>,
    },
    Join {
        input: usize,
        with: usize,
        kind: JoinKind,
        left_keys: Vec<usize>,
        right_keys: Vec<usize>,
        /// Columns of the other side that the output carries.
        right_keep: Vec<usize>,
    },
    Lookup {
        input: usize,
        dataset: String,
        index: String,
        kind: JoinKind,
        key: TExpr,
        /// The dataset's fields the output carries (none for semi and
        /// anti), as the host is asked for them; their columns follow the
        /// input's.
        fields: Vec<String>,
    },
    Group {
        input: usize,
        by: Vec<usize>,
        /// Whether `by` leads the input's order, so groups arrive whole.
        streaming: bool,
        aggregates: Vec<(AggFunc, Option<TExpr>)>,
        /// Per aggregate: the separator of `list` (empty for the others).
        seps: Vec<String>,
    },
    Sort {
        input: usize,
        keys: Vec<(usize, bool)>,
    },
    Rank {
        input: usize,
        chunk: Vec<usize>,
        by: Vec<usize>,
        order: Vec<(usize, bool)>,
        size: bool,
        ties_in_order: bool,
    },
    Window {
        input: usize,
        chunk: Vec<usize>,
        by: Vec<usize>,
        time: TExpr,
        days: TExpr,
    },
    Emit {
        input: usize,
        subject: TExpr,
        subject_personal: bool,
        title: Vec<CPart>,
        amount: Option<TExpr>,
        evidence: Vec<(String, TExpr, bool)>,
        /// Per evidence: left out when null.
        optional: Vec<bool>,
    },
    Union {
        inputs: Vec<usize>,
        /// Per input: its column for each output column.
        maps: Vec<Vec<usize>>,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum CPart {
    Text(String),
    Expr(TExpr),
}

impl CheckedPlan {
    /// The names of the steps, in order.
    pub fn step_names(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|s| s.name.as_str())
    }

    /// The columns of a step's rows (none for an emit step).
    pub fn columns(&self, step: &str) -> Option<&[Column]> {
        self.steps
            .iter()
            .find(|s| s.name == step)
            .map(|s| s.columns.as_slice())
    }

    /// The fields a step's rows are sorted on, most significant first.
    pub fn sorted_by(&self, step: &str) -> Option<Vec<&str>> {
        let s = self.steps.iter().find(|s| s.name == step)?;
        Some(
            s.sorted_by
                .iter()
                .map(|&i| s.columns[i].name.as_str())
                .collect(),
        )
    }

    /// The datasets the plan reads or looks records up in, each once, in
    /// order of first use.
    pub fn datasets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.steps {
            if let CKind::Read { dataset } | CKind::Lookup { dataset, .. } = &s.kind {
                if !out.contains(&dataset.as_str()) {
                    out.push(dataset);
                }
            }
        }
        out
    }

    /// The lookups the plan makes: (dataset, index) pairs, each once, in
    /// plan order.
    pub fn lookups(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for s in &self.steps {
            if let CKind::Lookup { dataset, index, .. } = &s.kind {
                if !out.contains(&(dataset.as_str(), index.as_str())) {
                    out.push((dataset, index));
                }
            }
        }
        out
    }

    /// The parameters the plan was checked against.
    pub fn params(&self) -> &[Param] {
        &self.params
    }
}

/// Type-checks `plan` against `catalog`.
pub fn check_plan(plan: &Plan, catalog: &Catalog) -> Result<CheckedPlan, PlanError> {
    Checker {
        plan,
        catalog,
        steps: Vec::new(),
    }
    .run()
    .map_err(|e| e.in_file(&plan.file))
}

struct Checker<'a> {
    plan: &'a Plan,
    catalog: &'a Catalog,
    steps: Vec<CStep>,
}

fn col_index(cols: &[Column], name: &Name, what: &str) -> Result<usize, Located> {
    cols.iter()
        .position(|c| c.name == name.value)
        .ok_or_else(|| {
            let known: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
            Located::new(
                name.pos,
                format!(
                    "unknown field `{}` in {what}; expected one of: {}",
                    name.value,
                    known.join(", ")
                ),
            )
        })
}

/// What to do about a field of `ds` the model does not declare: a plan
/// reads only what model.toml declares (the host grants no more).
pub(crate) fn declare_advice(ds: &Dataset) -> String {
    let declared: Vec<&str> = ds.fields.iter().map(|f| f.name.as_str()).collect();
    format!(
        "add it to model.toml [datasets] {} fields (declared: {})",
        ds.name,
        declared.join(", ")
    )
}

/// The field `name` of `ds`, which the model must declare.
fn dataset_field<'d>(ds: &'d Dataset, name: &Name) -> Result<&'d Field, Located> {
    ds.field(&name.value).ok_or_else(|| {
        let declared: Vec<&str> = ds.fields.iter().map(|f| f.name.as_str()).collect();
        let msg = if ds.undeclared.contains(&name.value) {
            format!(
                "field `{}` of `{}` is not declared for this model; {}",
                name.value,
                ds.name,
                declare_advice(ds)
            )
        } else {
            format!(
                "unknown field `{}` of `{}`; expected one of: {}",
                name.value,
                ds.name,
                declared.join(", ")
            )
        };
        Located::new(name.pos, msg)
    })
}

/// The number of days a `window` looks back, if it is one it can count:
/// not negative (a window ending before its own row counts nothing
/// sensible), and at most [`MAX_WINDOW_DAYS`].
pub(crate) fn window_days(days: i64) -> Result<i64, String> {
    if (0..=MAX_WINDOW_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(format!(
            "`days`: expected a number of days from 0 to {MAX_WINDOW_DAYS} (100 years), found {days}"
        ))
    }
}

/// Refuses two keys compared for equality (a join's `on` and `with_on`, a
/// lookup's `key` and its indexed field) that could never be equal because
/// of personal data: the model sees personal values as keyed pseudonyms,
/// a pseudonym never equals a clear value, and the host pseudonymizes each
/// kind its own way (an ID's check letter is upper-cased first), so a join
/// between such keys silently pairs nothing (and an `anti` join keeps
/// every row). `key` is the key being checked, as a message names it;
/// `other` the key it must match: its name and, when the name alone does
/// not say, what it is (`the field index … is on`).
fn personal_keys_match(
    key: &str,
    personal: Option<PersonalKind>,
    (other, role): (&str, &str),
    other_personal: Option<PersonalKind>,
) -> Result<(), String> {
    const RULE: &str = "both keys must be personal data of the same kind, or neither";
    let role = if role.is_empty() {
        String::new()
    } else {
        format!(", {role},")
    };
    match (other_personal, personal) {
        (Some(p), None) => Err(format!(
            "{key}: expected personal data like {other} ({}){}, which the model sees as pseudonyms, found a value that is not personal data; {RULE}",
            p.name(),
            role.trim_end_matches(','),
        )),
        (None, Some(p)) => Err(format!(
            "{key} is personal data ({}), which the model sees as pseudonyms, but {other}{role} is not; they would never be equal: {RULE}",
            p.name()
        )),
        (Some(a), Some(b)) if a != b => Err(format!(
            "{key} is personal data ({}), but {other}{role} is personal data of another kind ({}); their pseudonyms would never be equal: {RULE}",
            b.name(),
            a.name()
        )),
        _ => Ok(()),
    }
}

fn new_name(cols: &[Column], name: &Name, taken: &mut BTreeSet<String>) -> Result<(), Located> {
    if cols.iter().any(|c| c.name == name.value) || !taken.insert(name.value.clone()) {
        return Err(Located::new(
            name.pos,
            format!("field `{}` already exists; choose another name", name.value),
        ));
    }
    Ok(())
}

/// The longest prefix of `sorted` whose columns are all in `set`.
fn prefix_within(sorted: &[usize], set: &[usize]) -> Vec<usize> {
    sorted
        .iter()
        .take_while(|c| set.contains(c))
        .copied()
        .collect()
}

impl<'a> Checker<'a> {
    fn run(mut self) -> Result<CheckedPlan, Located> {
        let mut names = BTreeSet::new();
        for step in &self.plan.steps {
            if !names.insert(step.name.value.clone()) {
                return Err(Located::new(
                    step.name.pos,
                    format!(
                        "a step called `{}` already exists; step names must be unique",
                        step.name.value
                    ),
                ));
            }
            let checked = self.step(step)?;
            self.steps.push(checked);
        }
        if let Some(partition) = &self.catalog.partition {
            crate::split::check_split(&self.steps, partition)?;
        }
        // Every step feeds another, and something is emitted: a dangling
        // step is almost always a mistake in the wiring.
        let mut used = vec![false; self.steps.len()];
        for s in &self.steps {
            for i in inputs(&s.kind) {
                used[i] = true;
            }
        }
        if !self
            .steps
            .iter()
            .any(|s| matches!(s.kind, CKind::Emit { .. }))
        {
            let pos = self.plan.steps.last().map_or(Pos::new(1, 1), |s| s.pos);
            return Err(Located::new(
                pos,
                "expected an `emit` step: a plan that emits nothing finds no leads",
            ));
        }
        for (s, used) in self.steps.iter().zip(used) {
            if !used && !matches!(s.kind, CKind::Emit { .. }) {
                return Err(Located::new(
                    s.pos,
                    format!(
                        "step `{}` is never used; use it as a later step's `input` or remove it",
                        s.name
                    ),
                ));
            }
        }
        check_scans(&self.steps)?;
        Ok(CheckedPlan {
            file: self.plan.file.clone(),
            params: self.catalog.params.clone(),
            steps: self.steps,
        })
    }

    fn input(&self, name: &Name) -> Result<usize, Located> {
        match self.steps.iter().position(|s| s.name == name.value) {
            Some(i) if matches!(self.steps[i].kind, CKind::Emit { .. }) => Err(Located::new(
                name.pos,
                format!("step `{}` emits leads and has no rows to read", name.value),
            )),
            Some(i) => Ok(i),
            None => {
                let earlier: Vec<&str> = self.steps.iter().map(|s| s.name.as_str()).collect();
                Err(Located::new(
                    name.pos,
                    format!(
                        "`{}` is not an earlier step; expected one of: {}",
                        name.value,
                        if earlier.is_empty() {
                            "(no steps before this one)".to_string()
                        } else {
                            earlier.join(", ")
                        }
                    ),
                ))
            }
        }
    }

    fn scope<'s>(&'s self, i: usize) -> Scope<'s> {
        Scope {
            columns: &self.steps[i].columns,
            params: &self.catalog.params,
            datasets: Some(self.catalog),
        }
    }

    /// The declared dataset called `name`.
    fn dataset(&self, name: &Name) -> Result<&'a Dataset, Located> {
        self.catalog.dataset(&name.value).ok_or_else(|| {
            let known: Vec<&str> = self.catalog.datasets.keys().map(String::as_str).collect();
            Located::new(
                name.pos,
                format!(
                    "unknown dataset `{}`; expected one that model.toml declares in [datasets]: {}",
                    name.value,
                    known.join(", ")
                ),
            )
        })
    }

    fn describe_order(&self, i: usize) -> String {
        let s = &self.steps[i];
        if s.sorted_by.is_empty() {
            format!("step `{}` is in no known order", s.name)
        } else {
            let names: Vec<&str> = s
                .sorted_by
                .iter()
                .map(|&c| s.columns[c].name.as_str())
                .collect();
            format!("step `{}` is sorted by ({})", s.name, names.join(", "))
        }
    }

    fn step(&self, step: &crate::plan::Step) -> Result<CStep, Located> {
        let mk = |columns: Vec<Column>, sorted_by: Vec<usize>, kind: CKind| CStep {
            name: step.name.value.clone(),
            pos: step.pos,
            columns,
            sorted_by,
            kind,
        };
        Ok(match &step.op {
            Op::Read { dataset, fields } => {
                let ds = self.dataset(dataset)?;
                let wanted: Vec<Name> = match fields {
                    Some(f) => f.clone(),
                    None => ds
                        .fields
                        .iter()
                        .map(|f| Name::new(f.name.clone(), dataset.pos))
                        .collect(),
                };
                let mut columns = Vec::new();
                for f in &wanted {
                    let field = dataset_field(ds, f)?;
                    if columns.iter().any(|c: &Column| c.name == f.value) {
                        return Err(Located::new(
                            f.pos,
                            format!("field `{}` is listed twice", f.value),
                        ));
                    }
                    columns.push(Column {
                        name: field.name.clone(),
                        ty: field.ty,
                        nullable: !field.required,
                        personal: field.personal,
                    });
                }
                let sorted_by = ds
                    .primary_key
                    .iter()
                    .map_while(|k| columns.iter().position(|c| &c.name == k))
                    .collect();
                mk(
                    columns,
                    sorted_by,
                    CKind::Read {
                        dataset: ds.name.clone(),
                    },
                )
            }
            Op::Filter { input, cond } => {
                let i = self.input(input)?;
                let cond = check_as(cond, &self.scope(i), Type::Bool, "`where`")?;
                let s = &self.steps[i];
                mk(
                    s.columns.clone(),
                    s.sorted_by.clone(),
                    CKind::Filter { input: i, cond },
                )
            }
            Op::Derive { input, fields } => {
                let i = self.input(input)?;
                let mut columns = self.steps[i].columns.clone();
                let mut exprs = Vec::new();
                let mut taken = BTreeSet::new();
                for (name, e) in fields {
                    new_name(&self.steps[i].columns, name, &mut taken)?;
                    let t = check(e, &self.scope(i))?;
                    columns.push(Column {
                        name: name.value.clone(),
                        ty: t.ty,
                        nullable: t.nullable,
                        personal: t.personal,
                    });
                    exprs.push(t);
                }
                mk(
                    columns,
                    self.steps[i].sorted_by.clone(),
                    CKind::Derive { input: i, exprs },
                )
            }
            Op::Select { input, fields } => {
                let i = self.input(input)?;
                let s = &self.steps[i];
                let mut keep = Vec::new();
                for f in fields {
                    let c = col_index(&s.columns, f, &format!("the rows of `{}`", s.name))?;
                    if keep.contains(&c) {
                        return Err(Located::new(
                            f.pos,
                            format!("field `{}` is listed twice", f.value),
                        ));
                    }
                    keep.push(c);
                }
                let columns = keep.iter().map(|&c| s.columns[c].clone()).collect();
                let sorted_by = s
                    .sorted_by
                    .iter()
                    .map_while(|c| keep.iter().position(|k| k == c))
                    .collect();
                mk(columns, sorted_by, CKind::Select { input: i, keep })
            }
            Op::Join {
                input,
                with,
                kind,
                on,
                with_on,
                prefix,
            } => {
                let (l, r) = (self.input(input)?, self.input(with)?);
                let (ls, rs) = (&self.steps[l], &self.steps[r]);
                let mut left_keys = Vec::new();
                let mut right_keys = Vec::new();
                for (a, b) in on.iter().zip(with_on) {
                    let lk = col_index(&ls.columns, a, &format!("the rows of `{}`", ls.name))?;
                    let rk = col_index(&rs.columns, b, &format!("the rows of `{}`", rs.name))?;
                    let (lt, rt) = (ls.columns[lk].ty, rs.columns[rk].ty);
                    if lt != rt {
                        return Err(Located::new(
                            b.pos,
                            format!("join key `{}` of `{}`: expected {lt} like `{}` of `{}`, found {rt}", b.value, rs.name, a.value, ls.name),
                        ));
                    }
                    personal_keys_match(
                        &format!("join key `{}` of `{}`", b.value, rs.name),
                        rs.columns[rk].personal,
                        (&format!("`{}` of `{}`", a.value, ls.name), ""),
                        ls.columns[lk].personal,
                    )
                    .map_err(|m| Located::new(b.pos, m))?;
                    left_keys.push(lk);
                    right_keys.push(rk);
                }
                for (step, keys, idx, key_names) in
                    [(ls, &left_keys, l, on), (rs, &right_keys, r, with_on)]
                {
                    if step.sorted_by.len() < keys.len() || step.sorted_by[..keys.len()] != keys[..]
                    {
                        let names: Vec<&str> = key_names.iter().map(|n| n.value.as_str()).collect();
                        return Err(Located::new(
                            key_names[0].pos,
                            format!(
                                "expected both sides sorted on the join key ({}), but {}; join on the leading field(s) of its order, or add a `sort` step before (it holds all rows)",
                                names.join(", "),
                                self.describe_order(idx)
                            ),
                        ));
                    }
                }
                let mut columns = ls.columns.clone();
                let mut right_keep = Vec::new();
                if matches!(kind, JoinKind::Inner | JoinKind::Left) {
                    for (c, col) in rs.columns.iter().enumerate() {
                        if right_keys.contains(&c) {
                            continue;
                        }
                        let name = match prefix {
                            Some(p) => format!("{}{}", p.value, col.name),
                            None => col.name.clone(),
                        };
                        if columns.iter().any(|x| x.name == name) {
                            return Err(Located::new(
                                with.pos,
                                format!(
                                    "field `{name}` is on both sides of the join; set `prefix = \"{}_\"` to rename the fields of `{}`",
                                    rs.name, rs.name
                                ),
                            ));
                        }
                        columns.push(Column {
                            name,
                            nullable: col.nullable || *kind == JoinKind::Left,
                            ..col.clone()
                        });
                        right_keep.push(c);
                    }
                }
                mk(
                    columns,
                    ls.sorted_by.clone(),
                    CKind::Join {
                        input: l,
                        with: r,
                        kind: *kind,
                        left_keys,
                        right_keys,
                        right_keep,
                    },
                )
            }
            Op::Lookup {
                input,
                dataset,
                index,
                key,
                kind,
                fields,
                prefix,
            } => {
                let i = self.input(input)?;
                let ds = self.dataset(dataset)?;
                let Some(indexed) = ds.indexes.get(&index.value) else {
                    let known: Vec<&str> = ds.indexes.keys().map(String::as_str).collect();
                    return Err(Located::new(
                        index.pos,
                        if known.is_empty() {
                            format!(
                                "unknown index `{}` of `{}`, whose schema declares no [indexes]; use `read` and `join` instead",
                                index.value, ds.name
                            )
                        } else {
                            format!(
                                "unknown index `{}` of `{}`; expected one that its schema declares in [indexes]: {}",
                                index.value,
                                ds.name,
                                known.join(", ")
                            )
                        },
                    ));
                };
                // The host looks up only through fields the model declares.
                let field =
                    dataset_field(ds, &Name::new(indexed.clone(), index.pos)).map_err(|e| {
                        Located::new(
                            index.pos,
                            format!("index `{}` is on `{indexed}`: {}", index.value, e.message),
                        )
                    })?;
                let k = check(key, &self.scope(i))?;
                if k.ty != field.ty {
                    return Err(Located::new(
                        key.pos,
                        format!(
                            "`key`: expected {} like `{}`, the field index `{}` of `{}` is on, found {}",
                            field.ty, field.name, index.value, ds.name, k.ty
                        ),
                    ));
                }
                personal_keys_match(
                    "`key`",
                    k.personal,
                    (
                        &format!("`{}`", field.name),
                        &format!("the field index `{}` is on", index.value),
                    ),
                    field.personal,
                )
                .map_err(|m| Located::new(key.pos, m))?;
                let s = &self.steps[i];
                let mut columns = s.columns.clone();
                let mut names = Vec::new();
                if matches!(kind, JoinKind::Inner | JoinKind::Left) {
                    let wanted: Vec<Name> = match fields {
                        Some(f) => f.clone(),
                        None => ds
                            .fields
                            .iter()
                            .filter(|f| f.name != field.name)
                            .map(|f| Name::new(f.name.clone(), dataset.pos))
                            .collect(),
                    };
                    for f in &wanted {
                        let col = dataset_field(ds, f)?;
                        if names.contains(&col.name) {
                            return Err(Located::new(
                                f.pos,
                                format!("field `{}` is listed twice", f.value),
                            ));
                        }
                        let name = match prefix {
                            Some(p) => format!("{}{}", p.value, col.name),
                            None => col.name.clone(),
                        };
                        if columns.iter().any(|x| x.name == name) {
                            return Err(Located::new(
                                f.pos,
                                format!(
                                    "field `{name}` is both in the rows of `{}` and in `{}`; set `prefix = \"{}_\"` to rename the fields of `{}`",
                                    s.name, ds.name, ds.name, ds.name
                                ),
                            ));
                        }
                        columns.push(Column {
                            name,
                            ty: col.ty,
                            nullable: !col.required || *kind == JoinKind::Left,
                            personal: col.personal,
                        });
                        names.push(col.name.clone());
                    }
                }
                mk(
                    columns,
                    s.sorted_by.clone(),
                    CKind::Lookup {
                        input: i,
                        dataset: ds.name.clone(),
                        index: index.value.clone(),
                        kind: *kind,
                        key: k,
                        fields: names,
                    },
                )
            }
            Op::Group {
                input,
                by,
                aggregates,
            } => {
                let i = self.input(input)?;
                let s = &self.steps[i];
                let mut by_idx = Vec::new();
                for b in by {
                    let c = col_index(&s.columns, b, &format!("the rows of `{}`", s.name))?;
                    if by_idx.contains(&c) {
                        return Err(Located::new(
                            b.pos,
                            format!("field `{}` is listed twice", b.value),
                        ));
                    }
                    by_idx.push(c);
                }
                let lead = prefix_within(&s.sorted_by, &by_idx);
                let streaming = lead.len() == by_idx.len();
                // Streaming groups come out in the input's order of the keys.
                if streaming {
                    by_idx = lead;
                }
                let mut columns: Vec<Column> =
                    by_idx.iter().map(|&c| s.columns[c].clone()).collect();
                let mut aggs = Vec::new();
                let mut seps = Vec::new();
                let mut taken = BTreeSet::new();
                for (name, agg) in aggregates {
                    new_name(&columns, name, &mut taken)?;
                    let arg = match &agg.arg {
                        Some(e) => Some(check(e, &self.scope(i))?),
                        None => None,
                    };
                    let (ty, nullable, personal) = aggregate_type(agg.func, arg.as_ref(), agg.pos)?;
                    columns.push(Column {
                        name: name.value.clone(),
                        ty,
                        nullable,
                        personal,
                    });
                    aggs.push((agg.func, arg));
                    seps.push(agg.sep.clone().unwrap_or_default());
                }
                let sorted_by = (0..by_idx.len()).collect();
                mk(
                    columns,
                    sorted_by,
                    CKind::Group {
                        input: i,
                        by: by_idx,
                        streaming,
                        aggregates: aggs,
                        seps,
                    },
                )
            }
            Op::Sort { input, by } => {
                let i = self.input(input)?;
                let s = &self.steps[i];
                let mut keys = Vec::new();
                for k in by {
                    keys.push((
                        col_index(&s.columns, &k.field, &format!("the rows of `{}`", s.name))?,
                        k.descending,
                    ));
                }
                let sorted_by = keys
                    .iter()
                    .map_while(|&(c, desc)| (!desc).then_some(c))
                    .collect();
                mk(s.columns.clone(), sorted_by, CKind::Sort { input: i, keys })
            }
            Op::Rank {
                input,
                by,
                order,
                rank,
                size,
                ties_in_order,
            } => {
                let i = self.input(input)?;
                let s = &self.steps[i];
                let what = format!("the rows of `{}`", s.name);
                let by_idx = by
                    .iter()
                    .map(|b| col_index(&s.columns, b, &what))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut order_idx = Vec::new();
                for k in order {
                    let c = col_index(&s.columns, &k.field, &what)?;
                    if s.columns[c].ty == Type::Bool {
                        return Err(Located::new(
                            k.field.pos,
                            format!(
                                "`order_by`: expected a number, date or text, found bool (`{}`)",
                                k.field.value
                            ),
                        ));
                    }
                    order_idx.push((c, k.descending));
                }
                let mut columns = s.columns.clone();
                let mut taken = BTreeSet::new();
                new_name(&s.columns, rank, &mut taken)?;
                columns.push(Column {
                    name: rank.value.clone(),
                    ty: Type::Int,
                    nullable: false,
                    personal: None,
                });
                if let Some(size) = size {
                    new_name(&s.columns, size, &mut taken)?;
                    columns.push(Column {
                        name: size.value.clone(),
                        ty: Type::Int,
                        nullable: false,
                        personal: None,
                    });
                }
                let chunk = prefix_within(&s.sorted_by, &by_idx);
                mk(
                    columns,
                    s.sorted_by.clone(),
                    CKind::Rank {
                        input: i,
                        chunk,
                        by: by_idx,
                        order: order_idx,
                        size: size.is_some(),
                        ties_in_order: *ties_in_order,
                    },
                )
            }
            Op::Window {
                input,
                by,
                time,
                days,
                count,
            } => {
                let i = self.input(input)?;
                let s = &self.steps[i];
                let what = format!("the rows of `{}`", s.name);
                let by_idx = by
                    .iter()
                    .map(|b| col_index(&s.columns, b, &what))
                    .collect::<Result<Vec<_>, _>>()?;
                let time = check_as(time, &self.scope(i), Type::Date, "`time`")?;
                let days_t = check_as(days, &self.scope(i), Type::Int, "`days`")?;
                if !days_t.is_const() {
                    return Err(Located::new(days.pos, "`days`: expected a number or a parameter, found an expression that reads fields"));
                }
                // A parameter's value is known only when the run binds it
                // (`CheckedPlan::bind` checks it then).
                if let crate::expr::check::TNode::Const(Value::Int(n)) = days_t.node {
                    window_days(n).map_err(|m| Located::new(days.pos, m))?;
                }
                let mut columns = s.columns.clone();
                new_name(&s.columns, count, &mut BTreeSet::new())?;
                columns.push(Column {
                    name: count.value.clone(),
                    ty: Type::Int,
                    nullable: false,
                    personal: None,
                });
                let chunk = prefix_within(&s.sorted_by, &by_idx);
                mk(
                    columns,
                    s.sorted_by.clone(),
                    CKind::Window {
                        input: i,
                        chunk,
                        by: by_idx,
                        time,
                        days: days_t,
                    },
                )
            }
            Op::Emit {
                input,
                subject,
                subject_personal,
                title,
                amount,
                evidence,
                personal,
                optional,
            } => {
                let i = self.input(input)?;
                let scope = self.scope(i);
                let subj = check(subject, &scope)?;
                if !matches!(subj.ty, Type::Str | Type::Int) {
                    return Err(Located::new(
                        subject.pos,
                        format!("`subject`: expected string or int, found {}", subj.ty),
                    ));
                }
                if subj.personal.is_some() && !subject_personal {
                    return Err(Located::new(
                        subject.pos,
                        "`subject` is personal data; set `subject_personal = true` so it is masked for people",
                    ));
                }
                let mut parts = Vec::new();
                for p in &title.parts {
                    parts.push(match p {
                        TemplatePart::Text(t) => CPart::Text(t.clone()),
                        TemplatePart::Expr(e) => {
                            let t = check(e, &scope)?;
                            if t.personal.is_some() {
                                return Err(Located::new(
                                    e.pos,
                                    "the title shows personal data, which a title cannot mask; show it as evidence listed in `personal`",
                                ));
                            }
                            CPart::Expr(t)
                        }
                    });
                }
                let amount = match amount {
                    Some(a) => Some(check_as(a, &scope, Type::Decimal, "`amount`")?),
                    None => None,
                };
                let mut ev = Vec::new();
                if let Some((name, _)) = evidence.get(MAX_EVIDENCE_FIELDS) {
                    return Err(Located::new(
                        name.pos,
                        format!(
                            "expected at most {MAX_EVIDENCE_FIELDS} evidence fields (what a lead carries), found {}",
                            evidence.len()
                        ),
                    ));
                }
                for (name, e) in evidence {
                    if ev
                        .iter()
                        .any(|(n, _, _): &(String, TExpr, bool)| n == &name.value)
                    {
                        return Err(Located::new(
                            name.pos,
                            format!("evidence `{}` is listed twice", name.value),
                        ));
                    }
                    let t = check(e, &scope)?;
                    let marked = personal.iter().any(|p| p.value == name.value);
                    if let Some(kind) = t.personal {
                        if !marked {
                            return Err(Located::new(
                                name.pos,
                                format!(
                                    "evidence `{}` shows personal data ({}); add \"{}\" to `personal` so it is masked for people",
                                    name.value,
                                    kind.name(),
                                    name.value
                                ),
                            ));
                        }
                    }
                    ev.push((name.value.clone(), t, marked));
                }
                for p in personal {
                    if !evidence.iter().any(|(n, _)| n.value == p.value) {
                        let names: Vec<&str> =
                            evidence.iter().map(|(n, _)| n.value.as_str()).collect();
                        return Err(Located::new(
                            p.pos,
                            format!(
                                "`personal` names `{}`, which is not evidence; expected one of: {}",
                                p.value,
                                names.join(", ")
                            ),
                        ));
                    }
                }
                for o in optional {
                    if !evidence.iter().any(|(n, _)| n.value == o.value) {
                        let names: Vec<&str> =
                            evidence.iter().map(|(n, _)| n.value.as_str()).collect();
                        return Err(Located::new(
                            o.pos,
                            format!(
                                "`optional` names `{}`, which is not evidence; expected one of: {}",
                                o.value,
                                names.join(", ")
                            ),
                        ));
                    }
                }
                let optional = ev
                    .iter()
                    .map(|(n, _, _)| optional.iter().any(|o| &o.value == n))
                    .collect();
                mk(
                    Vec::new(),
                    Vec::new(),
                    CKind::Emit {
                        input: i,
                        subject: subj,
                        subject_personal: *subject_personal,
                        title: parts,
                        amount,
                        evidence: ev,
                        optional,
                    },
                )
            }
            Op::Union { inputs } => {
                let mut idx = Vec::new();
                for n in inputs {
                    let i = self.input(n)?;
                    if idx.contains(&i) {
                        return Err(Located::new(
                            n.pos,
                            format!("step `{}` is listed twice", n.value),
                        ));
                    }
                    idx.push(i);
                }
                let first = &self.steps[idx[0]];
                let mut columns = first.columns.clone();
                let mut maps = vec![(0..columns.len()).collect::<Vec<_>>()];
                for (n, &i) in inputs.iter().zip(&idx).skip(1) {
                    let s = &self.steps[i];
                    let names = |cols: &[Column]| {
                        cols.iter()
                            .map(|c| format!("{} {}", c.name, c.ty))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let same = s.columns.len() == columns.len()
                        && s.columns
                            .iter()
                            .all(|c| columns.iter().any(|d| d.name == c.name && d.ty == c.ty));
                    if !same {
                        return Err(Located::new(
                            n.pos,
                            format!(
                                "step `{}` has the fields ({}); expected the same fields and types as `{}`: ({}); use `select` or `derive` to make them match",
                                s.name,
                                names(&s.columns),
                                first.name,
                                names(&first.columns)
                            ),
                        ));
                    }
                    let map: Vec<usize> = columns
                        .iter()
                        .map(|d| {
                            s.columns
                                .iter()
                                .position(|c| c.name == d.name)
                                .expect("same names")
                        })
                        .collect();
                    for (d, &c) in columns.iter_mut().zip(&map) {
                        d.nullable |= s.columns[c].nullable;
                        d.personal = d.personal.or(s.columns[c].personal);
                    }
                    maps.push(map);
                }
                // The order all inputs share: the longest common prefix of
                // their sort orders, by field name.
                let mut sorted_by = Vec::new();
                for (k, &c) in first.sorted_by.iter().enumerate() {
                    let shared = idx
                        .iter()
                        .zip(&maps)
                        .all(|(&i, map)| self.steps[i].sorted_by.get(k) == Some(&map[c]));
                    if !shared {
                        break;
                    }
                    sorted_by.push(c);
                }
                mk(columns, sorted_by, CKind::Union { inputs: idx, maps })
            }
        })
    }
}

/// Refuses an `emit` whose rows would come through more than
/// [`MAX_OPEN_SCANS`] reads at once. The executor builds each step's rows
/// once for every step that takes them, so a step taken by two steps
/// reads its datasets twice: the reads under an `emit` are counted as
/// they unfold (a `read` is one; any other step, the sum of its inputs').
/// Without this check such a plan builds, then fails at run when the host
/// refuses the 65th scan.
fn check_scans(steps: &[CStep]) -> Result<(), Located> {
    let mut reads: Vec<u64> = Vec::with_capacity(steps.len());
    for s in steps {
        let n = match &s.kind {
            CKind::Read { .. } => 1,
            kind => inputs(kind)
                .iter()
                .fold(0u64, |n, &i| n.saturating_add(reads[i])),
        };
        reads.push(n);
        if matches!(s.kind, CKind::Emit { .. }) && n > MAX_OPEN_SCANS as u64 {
            let many = if n == u64::MAX {
                "more than can be counted".to_string()
            } else {
                n.to_string()
            };
            return Err(Located::new(
                s.pos,
                format!(
                    "step `{}` would read datasets through {many} reads at once, more than the {MAX_OPEN_SCANS} a run may hold open: a step taken by two later steps is read again for each, so read each dataset once and build on that step rather than on copies of a chain",
                    s.name
                ),
            ));
        }
    }
    Ok(())
}

pub(crate) fn inputs(kind: &CKind) -> Vec<usize> {
    match kind {
        CKind::Read { .. } => vec![],
        CKind::Join { input, with, .. } => vec![*input, *with],
        CKind::Filter { input, .. }
        | CKind::Derive { input, .. }
        | CKind::Select { input, .. }
        | CKind::Lookup { input, .. }
        | CKind::Group { input, .. }
        | CKind::Sort { input, .. }
        | CKind::Rank { input, .. }
        | CKind::Window { input, .. }
        | CKind::Emit { input, .. } => vec![*input],
        CKind::Union { inputs, .. } => inputs.clone(),
    }
}

fn aggregate_type(
    func: AggFunc,
    arg: Option<&TExpr>,
    pos: Pos,
) -> Result<(Type, bool, Option<crate::value::PersonalKind>), Located> {
    let want = |ok: bool, expected: &str| -> Result<(), Located> {
        if ok {
            Ok(())
        } else {
            let found = arg.map_or("nothing".to_string(), |a| a.ty.to_string());
            Err(Located::new(
                arg.map_or(pos, |a| a.pos),
                format!("`{}`: expected {expected}, found {found}", func.name()),
            ))
        }
    };
    Ok(match func {
        AggFunc::Count => {
            if let Some(a) = arg {
                want(a.ty == Type::Bool, "a condition (bool)")?;
            }
            (Type::Int, false, None)
        }
        AggFunc::Sum => {
            let a = arg.expect("sum has an argument (parser)");
            want(a.ty.is_numeric(), "a number")?;
            (a.ty, false, None)
        }
        AggFunc::Min | AggFunc::Max => {
            let a = arg.expect("min/max have an argument (parser)");
            want(a.ty != Type::Bool, "a number, date or text")?;
            (a.ty, true, a.personal)
        }
        AggFunc::Any | AggFunc::All => {
            want(
                arg.is_some_and(|a| a.ty == Type::Bool),
                "a condition (bool)",
            )?;
            (Type::Bool, false, None)
        }
        AggFunc::CollectDistinct => {
            let a = arg.expect("collect_distinct has an argument (parser)");
            (Type::Str, true, a.personal)
        }
        AggFunc::List => {
            let a = arg.expect("list has an argument (parser)");
            (Type::Str, true, a.personal)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = r#"
[datasets]
people = { fields = ["person_id", "region", "born"] }
priors = { fields = ["record_id", "person_id", "kind", "amount"] }
"#;
    const PEOPLE: &str = r#"
name = "people"
primary_key = ["person_id"]
fields = [
  { name = "person_id", type = "string" },
  { name = "region", type = "string" },
  { name = "born", type = "date" },
]
"#;
    const PRIORS: &str = r#"
name = "priors"
primary_key = ["record_id"]
fields = [
  { name = "record_id", type = "string" },
  { name = "person_id", type = "string" },
  { name = "kind", type = "string", required = true },
  { name = "amount", type = "decimal" },
]
[indexes]
by_person = "person_id"
by_amount = "amount"
"#;

    fn checked(lookup: &str) -> Result<CheckedPlan, PlanError> {
        let text = format!(
            "[[step]]\nname = \"people\"\nop = \"read\"\ndataset = \"people\"\n\n[[step]]\nname = \"l\"\nop = \"lookup\"\ndataset = \"priors\"\n{lookup}\n\n[[step]]\nname = \"e\"\nop = \"emit\"\nsubject = \"person_id\"\ntitle = \"t\"\n"
        );
        let plan = Plan::parse("t.plan.toml", &text)?;
        let catalog = Catalog::from_toml(MODEL, &[PEOPLE, PRIORS]).unwrap();
        check_plan(&plan, &catalog)
    }

    #[test]
    fn a_lookup_adds_the_declared_fields_but_the_indexed_one() {
        let c = checked("index = \"by_person\"\nkey = \"person_id\"\nprefix = \"p_\"").unwrap();
        let cols: Vec<(&str, bool)> = c
            .columns("l")
            .unwrap()
            .iter()
            .map(|c| (c.name.as_str(), c.nullable))
            .collect();
        assert_eq!(
            cols,
            [
                ("person_id", false),
                ("region", true),
                ("born", true),
                ("p_record_id", false),
                ("p_kind", false),
                ("p_amount", true),
            ]
        );
        let Some(CKind::Lookup { fields, key, .. }) =
            c.steps.iter().find(|s| s.name == "l").map(|s| &s.kind)
        else {
            panic!("a lookup step");
        };
        assert_eq!(fields, &["record_id", "kind", "amount"]);
        assert_eq!(key.ty, Type::Str);
    }

    #[test]
    fn a_lookup_key_must_have_the_indexed_type_exactly() {
        // An int is not widened to the decimal the index holds.
        let e = checked("index = \"by_amount\"\nkey = \"1\"").unwrap_err();
        assert_eq!(e.pos, Pos::new(11, 8));
        assert!(e.message.contains("expected decimal like `amount`"), "{e}");
        assert!(checked("index = \"by_amount\"\nkey = \"decimal(1)\"\nkind = \"semi\"").is_ok());
        // An unknown kind is refused where it is written.
        let e =
            checked("index = \"by_person\"\nkey = \"person_id\"\nkind = \"outer\"").unwrap_err();
        assert_eq!(e.pos, Pos::new(12, 9));
        assert!(e.message.starts_with("unknown join kind `outer`"), "{e}");
    }
}
