//! Running a checked plan: each step becomes a pull-based node over a
//! reusable row buffer, and the emit steps pull leads through them.
//!
//! Rows stream. `read` holds one row; `filter`, `derive`, `select` one;
//! `join` merges two inputs sorted on its key and holds only the other
//! side's rows of the current key; `lookup` asks the input for the records
//! of one row's key and holds only those; `group` holds one group's accumulators
//! when its keys lead the input's order. Only `sort`, a `group` on keys
//! that do not lead the order, and `rank`/`window` over rows that are not
//! partitioned by the order hold more (one partition, or all rows), which
//! is what those operations need. Inputs that break the promised order
//! stop the run with [`RunError::Unsorted`] instead of giving wrong leads.
//!
//! The host (or the guest interpreter, over the SDK) provides rows through
//! [`Input`] and [`Scan`] (and looked-up records through
//! [`Input::lookup`]) and receives leads through [`LeadSink`].

use crate::catalog::Param;
use crate::check::{window_days, CKind, CPart, CStep, CheckedPlan, Column};
use crate::date::Date;
use crate::error::{EvalError, HostError, LookupError, PlanError, RunError};
use crate::expr::check::{TExpr, TNode};
use crate::expr::compile::{
    compile, condition, fail, scalar, write_yuan, Compiled, CondF, Cx, Env, Fail, F,
};
use crate::plan::{AggFunc, JoinKind};
use crate::span::Pos;
use crate::value::{Type, Value};
use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// Where a run's rows come from.
pub trait Input {
    /// Opens a scan of `dataset` that yields the values of `fields`, in
    /// that order, for each row, rows sorted by the dataset's primary key
    /// (personal keys in pseudonym order). A plan that reads a dataset
    /// twice opens it twice.
    fn scan(&mut self, dataset: &str, fields: &[&str]) -> Result<Box<dyn Scan>, HostError>;

    /// Looks up the records of `dataset` whose secondary `index` (a name
    /// of the schema's `[indexes]`) has `value` (never null; of the
    /// indexed field's type), as the SDK's `Context::lookup` does: writes
    /// the values of `fields`, in that order, of each record into `rows`
    /// (record `j` into `rows[j]`, one slot per field; grow `rows` as
    /// needed and reuse its slots, with [`Value::assign`] or
    /// [`Value::set_str`]) in the index's order (primary-key order among
    /// equal index values, personal keys in pseudonym order), and returns
    /// how many records there are. `fields` may be empty: then only the
    /// count matters. The host bounds the records one lookup returns and
    /// fails beyond, so a plan holds one lookup's records at a time.
    ///
    /// Inputs that only scan keep the default, which refuses.
    fn lookup(
        &mut self,
        dataset: &str,
        index: &str,
        value: &Value,
        fields: &[&str],
        rows: &mut Vec<Vec<Value>>,
    ) -> Result<usize, HostError> {
        let _ = (value, fields, rows);
        Err(HostError(format!(
            "this input cannot look records up (dataset `{dataset}`, index `{index}`)"
        )))
    }
}

/// The run's input, shared by the nodes that read (at build time) and
/// those that look records up (while rows flow).
type Host<'h> = std::cell::RefCell<&'h mut dyn Input>;

/// One dataset's rows, one at a time.
///
/// A scan may also decode a row's values lazily ([`Scan::next_some`] and
/// [`Scan::fill`]): the executor then asks first for the columns the
/// plan's first steps over the dataset read, and for the others only
/// when a row gets as far as a step that reads them, so that rows an early
/// filter drops never pay for the rest, and columns nothing reads are
/// never decoded. Scans that keep the defaults decode every row whole.
pub trait Scan {
    /// Writes the next row's values into `row` (one slot per requested
    /// field, reusing text buffers with [`Value::set_str`]) and returns
    /// `true`, or returns `false` at the end.
    fn next_row(&mut self, row: &mut [Value]) -> Result<bool, HostError>;

    /// Moves to the next row as [`Scan::next_row`] does, writing at least
    /// the columns `now` (positions in the requested fields, ascending);
    /// the others keep whatever their slots held until
    /// [`Scan::fill`] writes them.
    ///
    /// A scan that defers columns must still refuse a row with a value of
    /// another type than its column's (the host's error, see
    /// [`RunError::BadValue`]) whether or not that column is ever read: it
    /// tells such a row by the stored kinds, without decoding, and writes
    /// it whole ([`Next::Row`]) for the executor to report. The default
    /// writes every row whole.
    fn next_some(&mut self, row: &mut [Value], now: &[usize]) -> Result<Next, HostError> {
        let _ = now;
        Ok(if self.next_row(row)? {
            Next::Row
        } else {
            Next::End
        })
    }

    /// Writes the columns `cols` (positions in the requested fields) of
    /// the row the last [`Scan::next_some`] moved to into `row`, which
    /// holds that row wherever the executor has moved it since. Called
    /// only after [`Next::Some`], before the scan moves on.
    fn fill(&mut self, row: &mut [Value], cols: &[usize]) -> Result<(), HostError> {
        let _ = (row, cols);
        Ok(())
    }
}

/// What [`Scan::next_some`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing: the scan is at its end.
    End,
    /// The columns asked for; the others come through [`Scan::fill`].
    Some,
    /// The whole row.
    Row,
}

/// Where leads go.
pub trait LeadSink {
    /// Receives one lead; the reference is reused for the next one.
    fn emit(&mut self, lead: &Lead) -> Result<(), HostError>;
}

/// A lead (线索) as a plan emits it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lead {
    /// The step that emitted it.
    pub step: String,
    /// The subject's key (credit code, case number…).
    pub subject: String,
    /// Whether the subject is personal data.
    pub subject_personal: bool,
    /// The title.
    pub title: String,
    /// Yuan rounded half-up to the fen, with two decimals (`"12345.68"`).
    pub amount: Option<String>,
    /// Evidence, in the plan's order.
    pub evidence: Vec<Evidence>,
}

/// One piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    /// Its name.
    pub name: String,
    /// Its value as text (empty for null).
    pub value: String,
    /// Whether it shows personal data (to be masked for people).
    pub personal: bool,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunStats {
    /// Rows read per dataset.
    pub rows_read: BTreeMap<String, u64>,
    /// Leads emitted.
    pub leads: u64,
    /// Rows that reached an emit step with an empty or null subject: no
    /// lead can be identified without one, so none was emitted.
    pub without_subject: u64,
}

/// A checked plan bound to parameter values, compiled, ready to run any
/// number of times.
pub struct Program {
    file: String,
    steps: Vec<CStep>,
    compiled: Vec<PStep>,
    pool: Vec<String>,
    params: Vec<(String, Value)>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("file", &self.file)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

enum PStep {
    None,
    Filter(CondF),
    Derive(Vec<Compiled>),
    /// A group's aggregates, and the derive step whose expressions they
    /// evaluate in place of its columns, if any ([`fused_derive`]).
    Group(Vec<(AggFunc, AggArg)>, Option<usize>),
    Lookup(Compiled),
    Window {
        time: F<Date>,
        days: i64,
    },
    Emit {
        subject: Compiled,
        title: Vec<PPart>,
        amount: Option<F<Decimal>>,
        /// Name, expression, personal, optional (left out when null).
        evidence: Vec<(String, Compiled, bool, bool)>,
    },
}

/// An aggregate's argument: none (`count()`), a column read in place, or
/// an expression, with the step whose expression it is (the group's own,
/// or the derive step fused into it), which an error names.
enum AggArg {
    None,
    Field(usize),
    Expr(Compiled, usize),
}

/// A derive step's input and expressions.
fn derive_parts(step: &CStep) -> Option<(usize, &[TExpr])> {
    match &step.kind {
        CKind::Derive { input, exprs } => Some((*input, exprs)),
        _ => None,
    }
}

/// The derive step that group step `i` may evaluate in place, as its
/// aggregates' arguments, instead of reading its columns from a pipe: the
/// group's input, when nothing else reads that derive, the group's keys
/// are not among its columns, and the aggregates read columns whole (or
/// nothing), each of the derive's columns once and in its order. The rows,
/// the values and the errors are the same (each expression evaluated for
/// each row in the same order, an error named after the derive step); the
/// group reads the derive's input directly, one node and a copy of each
/// row fewer.
fn fused_derive(steps: &[CStep], i: usize) -> Option<usize> {
    let CKind::Group {
        input: d,
        by,
        aggregates,
        ..
    } = &steps[i].kind
    else {
        return None;
    };
    let (src, _) = derive_parts(&steps[*d])?;
    let (at, width) = (steps[src].columns.len(), steps[*d].columns.len());
    let readers = steps
        .iter()
        .filter(|s| crate::check::inputs(&s.kind).contains(d))
        .count();
    let mut derived = Vec::new();
    for (_, a) in aggregates {
        match a.as_ref().map(|a| &a.node) {
            None => {}
            Some(TNode::Field(c)) if *c >= at => derived.push(*c),
            Some(TNode::Field(_)) => {}
            Some(_) => return None,
        }
    }
    let fits = readers == 1 && by.iter().all(|&c| c < at) && derived.iter().copied().eq(at..width);
    fits.then_some(*d)
}

enum PPart {
    Text(String),
    Expr(Compiled),
}

impl CheckedPlan {
    /// Binds parameter values (by name; the others take model.toml's
    /// defaults) and compiles every expression.
    pub fn bind(&self, values: &[(&str, Value)]) -> Result<Program, PlanError> {
        let bad = |message: String| PlanError {
            file: self.file.clone(),
            pos: Pos::new(1, 1),
            message,
        };
        let mut params: Vec<Value> = self.params.iter().map(|p| p.default.clone()).collect();
        for (name, v) in values {
            let Some(i) = self.params.iter().position(|p| p.name == *name) else {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                return Err(bad(format!(
                    "unknown parameter `{name}`; expected one of: {}",
                    known.join(", ")
                )));
            };
            let p: &Param = &self.params[i];
            let v = match (p.ty, v) {
                (Type::Decimal, Value::Int(x)) => Value::Decimal(Decimal::from(*x)),
                (ty, v) if v.ty() == Some(ty) => v.clone(),
                (ty, v) => {
                    return Err(bad(format!(
                        "parameter `{name}`: expected {ty}, found {}",
                        v.ty().map_or("null", Type::name)
                    )))
                }
            };
            params[i] = v;
        }
        let mut pool = Vec::new();
        let mut compiled = Vec::new();
        for s in &self.steps {
            let mut cx = Cx {
                params: &params,
                pool: &mut pool,
            };
            compiled.push(match &s.kind {
                CKind::Filter { cond, .. } => PStep::Filter(condition(cond, &mut cx)),
                CKind::Derive { exprs, .. } => {
                    PStep::Derive(exprs.iter().map(|e| compile(e, &mut cx)).collect())
                }
                CKind::Lookup { key, .. } => PStep::Lookup(compile(key, &mut cx)),
                CKind::Group { aggregates, .. } => {
                    let i = compiled.len();
                    let fused = fused_derive(&self.steps, i);
                    // The fused derive: the step, its input's width, its
                    // expressions.
                    let derived = fused.and_then(|d| {
                        let (input, exprs) = derive_parts(&self.steps[d])?;
                        Some((d, self.steps[input].columns.len(), exprs))
                    });
                    let aggs = aggregates
                        .iter()
                        .map(|(f, a)| {
                            let arg = match (a, derived) {
                                (None, _) => AggArg::None,
                                (
                                    Some(TExpr {
                                        node: TNode::Field(c),
                                        ..
                                    }),
                                    Some((d, at, exprs)),
                                ) if *c >= at => AggArg::Expr(compile(&exprs[*c - at], &mut cx), d),
                                (
                                    Some(TExpr {
                                        node: TNode::Field(c),
                                        ..
                                    }),
                                    _,
                                ) => AggArg::Field(*c),
                                (Some(a), _) => AggArg::Expr(compile(a, &mut cx), i),
                            };
                            (*f, arg)
                        })
                        .collect();
                    PStep::Group(aggs, fused)
                }
                CKind::Window { time, days, .. } => {
                    let d: F<i64> = scalar(days, &mut cx);
                    let env = Env {
                        row: &[],
                        pool: cx.pool,
                    };
                    // The position of `days` in the plan: a parameter's
                    // value is checked here, once it is known.
                    let at = |message: String| PlanError {
                        file: self.file.clone(),
                        pos: days.pos,
                        message: format!("step `{}`: {message}", s.name),
                    };
                    let days = d(&env)
                        .map_err(|e| at(format!("`days`: {}", e.message)))?
                        .ok_or_else(|| at("`days` is null".into()))?;
                    let days = window_days(days).map_err(at)?;
                    PStep::Window {
                        time: scalar(time, &mut cx),
                        days,
                    }
                }
                CKind::Emit {
                    subject,
                    title,
                    amount,
                    evidence,
                    optional,
                    ..
                } => PStep::Emit {
                    subject: compile(subject, &mut cx),
                    title: title
                        .iter()
                        .map(|p| match p {
                            CPart::Text(t) => PPart::Text(t.clone()),
                            CPart::Expr(e) => PPart::Expr(compile(e, &mut cx)),
                        })
                        .collect(),
                    amount: amount.as_ref().map(|a| scalar(a, &mut cx)),
                    evidence: evidence
                        .iter()
                        .zip(optional)
                        .map(|((n, e, p), o)| (n.clone(), compile(e, &mut cx), *p, *o))
                        .collect(),
                },
                _ => PStep::None,
            });
        }
        Ok(Program {
            file: self.file.clone(),
            steps: self.steps.clone(),
            compiled,
            pool,
            params: self
                .params
                .iter()
                .map(|p| p.name.clone())
                .zip(params)
                .collect(),
        })
    }
}

impl Program {
    /// The parameter values the program was bound to, in model.toml order.
    pub fn params(&self) -> &[(String, Value)] {
        &self.params
    }

    /// Runs every emit step in plan order, reading from `input` and
    /// sending leads to `sink`.
    pub fn run(
        &self,
        input: &mut dyn Input,
        sink: &mut dyn LeadSink,
    ) -> Result<RunStats, RunError> {
        let mut stats = RunStats::default();
        let mut lead = Lead::default();
        let host: Host<'_> = std::cell::RefCell::new(input);
        for (i, s) in self.steps.iter().enumerate() {
            let (
                CKind::Emit {
                    input: src,
                    subject_personal,
                    ..
                },
                PStep::Emit {
                    subject,
                    title,
                    amount,
                    evidence,
                },
            ) = (&s.kind, &self.compiled[i])
            else {
                continue;
            };
            let mut node = self
                .node(*src, &host, &emit_need(&self.steps, i))
                .map_err(|e| *e)?;
            lead.step.clone_from(&s.name);
            lead.subject_personal = *subject_personal;
            lead.evidence.resize_with(evidence.len(), Evidence::default);
            let mut scratch = String::new();
            while node.next().map_err(|e| *e)? {
                let env = Env {
                    row: node.row(),
                    pool: &self.pool,
                };
                let fail = |error: Fail| RunError::Eval {
                    file: self.file.clone(),
                    step: s.name.clone(),
                    error: *error,
                };
                subject.write_text(&env, &mut lead.subject).map_err(fail)?;
                if lead.subject.is_empty() {
                    // A lead is identified by its subject: without one it
                    // could not be reviewed, deduplicated or resolved.
                    stats.without_subject += 1;
                    continue;
                }
                lead.title.clear();
                for p in title {
                    match p {
                        PPart::Text(t) => lead.title.push_str(t),
                        PPart::Expr(e) => {
                            e.write_text(&env, &mut scratch).map_err(fail)?;
                            lead.title.push_str(&scratch);
                        }
                    }
                }
                // Written as `{:.2}` of the rounded amount, into the
                // previous lead's buffer.
                let mut text = lead.amount.take().unwrap_or_default();
                lead.amount = match amount {
                    Some(a) => a(&env).map_err(fail)?.map(|v| {
                        text.clear();
                        write_yuan(&mut text, v);
                        text
                    }),
                    None => None,
                };
                let mut n = 0;
                for (name, e, personal, optional) in evidence {
                    if *optional && e.is_null(&env).map_err(fail)? {
                        continue;
                    }
                    if n == lead.evidence.len() {
                        lead.evidence.push(Evidence::default());
                    }
                    let slot = &mut lead.evidence[n];
                    slot.name.clone_from(name);
                    slot.personal = *personal;
                    e.write_text(&env, &mut slot.value).map_err(fail)?;
                    n += 1;
                }
                lead.evidence.truncate(n);
                sink.emit(&lead).map_err(RunError::Output)?;
                stats.leads += 1;
            }
            for (ds, n) in node.rows_read() {
                *stats.rows_read.entry(ds).or_default() += n;
            }
        }
        Ok(stats)
    }

    fn eval_error(&self, step: usize, error: EvalError) -> Box<RunError> {
        Box::new(RunError::Eval {
            file: self.file.clone(),
            step: self.steps[step].name.clone(),
            error,
        })
    }

    fn unsorted(&self, step: usize, message: String) -> Box<RunError> {
        Box::new(RunError::Unsorted {
            file: self.file.clone(),
            step: self.steps[step].name.clone(),
            pos: self.steps[step].pos,
            message,
        })
    }

    /// Step `i`, a filter or a derive, and the filters and derives it
    /// reads from, as one node: a row passes all of them in one call.
    fn pipe<'p, 'h: 'p>(
        &'p self,
        i: usize,
        input: &'p Host<'h>,
        need: &Need,
    ) -> Fallible<Box<dyn Node + 'p>> {
        let mut ops = Vec::new();
        let mut j = i;
        loop {
            match (&self.steps[j].kind, &self.compiled[j]) {
                (CKind::Filter { input: src, .. }, PStep::Filter(cond)) => {
                    ops.push(PipeOp::Filter { step: j, cond });
                    j = *src;
                }
                (CKind::Derive { input: src, .. }, PStep::Derive(exprs)) => {
                    ops.push(PipeOp::Derive {
                        step: j,
                        exprs,
                        at: self.steps[*src].columns.len(),
                    });
                    j = *src;
                }
                _ => break,
            }
        }
        ops.reverse();
        let width = self.steps[i].columns.len();
        let (input_need, fills, fill_end) = self.pipe_need(j, &ops, need);
        Ok(Box::new(PipeNode {
            p: self,
            input: self.node(j, input, &input_need)?,
            ops,
            fills,
            fill_end,
            buf: vec![Value::Null; width],
            width,
            own: false,
        }))
    }

    /// What a pipe over step `j` running `ops` asks of its input, given
    /// what the pipe's reader needs. A column that the first op reads, or
    /// that is read before any filter could drop the row, comes with the
    /// row; the others are filled just before the first op that reads
    /// them (`fills[k]` before op `k`), at the end for the pipe's reader
    /// (the last value), or by the reader's own `fill`, so that rows a
    /// filter drops never decode them.
    fn pipe_need(
        &self,
        j: usize,
        ops: &[PipeOp<'_>],
        need: &Need,
    ) -> (Need, Vec<Vec<usize>>, Vec<usize>) {
        let w0 = self.steps[j].columns.len();
        let mut input = Need::new(w0);
        let mut fills = Vec::with_capacity(ops.len());
        // Whether a filter runs before the current op.
        let mut filtered = false;
        for op in ops {
            let (step, is_filter) = match op {
                PipeOp::Filter { step, .. } => (*step, true),
                PipeOp::Derive { step, .. } => (*step, false),
            };
            let mut used = vec![false; self.steps[step].columns.len()];
            match &self.steps[step].kind {
                CKind::Filter { cond, .. } => mark(cond, &mut used),
                CKind::Derive { exprs, .. } => exprs.iter().for_each(|e| mark(e, &mut used)),
                _ => unreachable!("a pipe runs filters and derives"),
            }
            let mut fill = Vec::new();
            for (c, &used) in used[..w0].iter().enumerate() {
                if !used || input.uses(c) {
                    continue;
                }
                if filtered {
                    input.later[c] = true;
                    fill.push(c);
                } else {
                    input.now[c] = true;
                }
            }
            fills.push(fill);
            filtered |= is_filter;
        }
        let mut fill_end = Vec::new();
        for c in 0..w0 {
            if input.uses(c) {
                continue;
            }
            if need.now[c] {
                if filtered {
                    input.later[c] = true;
                    fill_end.push(c);
                } else {
                    input.now[c] = true;
                }
            } else if need.later[c] {
                input.later[c] = true;
            }
        }
        (input, fills, fill_end)
    }

    /// Whether step `i`'s rows come with strictly increasing `keys`
    /// whatever its input: a group's rows, one per key, when `keys` are
    /// exactly its keys (the group has checked its input's order).
    fn keys_strictly_ordered(&self, i: usize, keys: &[usize]) -> bool {
        match &self.steps[i].kind {
            CKind::Group { by, .. } => keys.iter().copied().eq(0..by.len()),
            _ => false,
        }
    }

    /// Builds the node tree that produces step `i`'s rows for a reader
    /// that uses the columns `need` says.
    fn node<'p, 'h: 'p>(
        &'p self,
        i: usize,
        input: &'p Host<'h>,
        need: &Need,
    ) -> Fallible<Box<dyn Node + 'p>> {
        let s = &self.steps[i];
        let width = s.columns.len();
        // What the step needs of its input `src` (all columns it reads now).
        let now = |src: usize, cols: &mut dyn Iterator<Item = usize>| {
            let mut n = Need::new(self.steps[src].columns.len());
            cols.for_each(|c| n.now[c] = true);
            n
        };
        let used = |c: &usize| need.uses(*c);
        Ok(match &s.kind {
            CKind::Read { dataset } => {
                let names: Vec<&str> = s.columns.iter().map(|c| c.name.as_str()).collect();
                let scan = borrow(input)
                    .and_then(|mut input| input.scan(dataset, &names))
                    .map_err(|error| RunError::Input {
                        dataset: dataset.clone(),
                        error,
                    })?;
                let lazy = !need.now.iter().all(|&n| n);
                Box::new(ReadNode {
                    step: s,
                    dataset,
                    scan,
                    tags: s.columns.iter().map(|c| Value::tag_of(c.ty)).collect(),
                    buf: vec![Value::Null; width],
                    width,
                    rows: 0,
                    lazy,
                    now: (0..width).filter(|&c| need.now[c]).collect(),
                    deferred: need.later.clone(),
                    whole: true,
                    pick: Vec::new(),
                })
            }
            CKind::Filter { .. } | CKind::Derive { .. } => self.pipe(i, input, need)?,
            CKind::Select { input: src, keep } => Box::new(SelectNode {
                input: self.node(
                    *src,
                    input,
                    &now(*src, &mut (0..width).filter(used).map(|j| keep[j])),
                )?,
                keep,
                buf: vec![Value::Null; width],
                width,
            }),
            CKind::Join {
                input: src,
                with,
                kind,
                left_keys,
                right_keys,
                right_keep,
            } => Box::new(JoinNode {
                p: self,
                step: i,
                left: self.node(
                    *src,
                    input,
                    &need.passed(self.steps[*src].columns.len(), left_keys),
                )?,
                right: self.node(
                    *with,
                    input,
                    &now(
                        *with,
                        &mut right_keys.iter().copied().chain(
                            right_keep
                                .iter()
                                .enumerate()
                                .filter(|(j, _)| need.uses(self.steps[*src].columns.len() + j))
                                .map(|(_, &c)| c),
                        ),
                    ),
                )?,
                pairing: Pairing::new(*kind),
                lk: left_keys,
                rk: right_keys,
                keep: right_keep,
                buf: vec![Value::Null; width],
                width,
                group: Vec::new(),
                group_len: 0,
                group_key: Vec::new(),
                key_in_group: false,
                partner_keys: left_keys
                    .iter()
                    .map(|&k| self.steps[*src].columns[k].ty)
                    .chain(right_keys.iter().map(|&k| self.steps[*with].columns[k].ty))
                    .all(|t| !matches!(t, Type::Decimal | Type::Float)),
                right_state: RightState::Start,
                last_right: LastRight::None,
                last_key: Vec::new(),
                ident: (0..left_keys.len()).collect(),
                right_ordered: self.keys_strictly_ordered(*with, right_keys),
            }),
            CKind::Lookup {
                input: src,
                dataset,
                index,
                kind,
                key,
                fields,
            } => {
                let PStep::Lookup(compiled) = &self.compiled[i] else {
                    unreachable!("lookup compiles to a lookup")
                };
                let at = self.steps[*src].columns.len();
                let mut key_cols = vec![false; at];
                mark(key, &mut key_cols);
                let keys: Vec<usize> = (0..at).filter(|&c| key_cols[c]).collect();
                let source = self.node(*src, input, &need.passed(at, &keys))?;
                Box::new(LookupNode {
                    p: self,
                    step: i,
                    input: source,
                    host: input,
                    dataset,
                    index,
                    pairing: Pairing::new(*kind),
                    key: compiled,
                    key_pos: key.pos,
                    key_personal: key.personal.is_some(),
                    fields: fields.iter().map(String::as_str).collect(),
                    columns: &s.columns[at..],
                    value: Value::Null,
                    found: Vec::new(),
                    found_len: 0,
                    buf: vec![Value::Null; width],
                    width,
                    records: 0,
                })
            }
            CKind::Group {
                input: src,
                by,
                streaming,
                seps,
                ..
            } => {
                let PStep::Group(aggs, fused) = &self.compiled[i] else {
                    unreachable!("group compiles to a group")
                };
                let CKind::Group { aggregates, .. } = &s.kind else {
                    unreachable!("matched above")
                };
                // A fused derive's expressions read its input's columns,
                // which the group then reads instead of the derive's rows.
                let (src, derived) = match fused.and_then(|d| derive_parts(&self.steps[d])) {
                    Some((input, exprs)) => (input, Some(exprs)),
                    None => (*src, None),
                };
                let at = self.steps[src].columns.len();
                let mut cols = vec![false; at];
                by.iter().for_each(|&c| cols[c] = true);
                for a in aggregates.iter().filter_map(|(_, a)| a.as_ref()) {
                    match (&a.node, derived) {
                        // Its expressions read the derive's input only.
                        (TNode::Field(c), Some(exprs)) if *c >= at => {
                            mark(&exprs[*c - at], &mut cols)
                        }
                        _ => mark(a, &mut cols),
                    }
                }
                let node = self.node(
                    src,
                    input,
                    &now(src, &mut (0..cols.len()).filter(|&c| cols[c])),
                )?;
                let types: Vec<Type> = s.columns[by.len()..].iter().map(|c| c.ty).collect();
                if *streaming {
                    Box::new(GroupNode {
                        p: self,
                        step: i,
                        input: node,
                        by,
                        aggs,
                        accs: types
                            .iter()
                            .zip(aggs.iter())
                            .zip(seps)
                            .map(|((t, (f, _)), sep)| Acc::new(*f, *t, sep))
                            .collect(),
                        scratch: Value::Null,
                        buf: vec![Value::Null; width],
                        width,
                        pending: false,
                        done: false,
                        started: false,
                        ident: (0..by.len()).collect(),
                    })
                } else {
                    Box::new(HashGroupNode {
                        p: self,
                        step: i,
                        input: Some(node),
                        by,
                        aggs,
                        seps,
                        types,
                        out: Vec::new(),
                        at: 0,
                        buf: vec![Value::Null; width],
                        width,
                    })
                }
            }
            CKind::Sort { input: src, keys } => Box::new(SortNode {
                input: Some(self.node(
                    *src,
                    input,
                    &now(
                        *src,
                        &mut (0..width).filter(used).chain(keys.iter().map(|k| k.0)),
                    ),
                )?),
                keys,
                rows: Vec::new(),
                at: 0,
            }),
            CKind::Rank {
                input: src,
                chunk,
                by,
                order,
                size,
                ties_in_order,
            } => Box::new(ChunkNode {
                p: self,
                step: i,
                chunker: Chunker::new(
                    self.node(
                        *src,
                        input,
                        &now(
                            *src,
                            &mut (0..self.steps[*src].columns.len())
                                .filter(used)
                                .chain(chunk.iter().chain(by).copied())
                                .chain(order.iter().map(|o| o.0)),
                        ),
                    )?,
                    chunk,
                ),
                work: ChunkWork::Rank {
                    by,
                    order,
                    size: *size,
                    ties_in_order: *ties_in_order,
                },
                rows: Vec::new(),
                extra: Vec::new(),
                len: 0,
                at: 0,
                buf: vec![Value::Null; width],
                width,
            }),
            CKind::Window {
                input: src,
                chunk,
                by,
                ..
            } => {
                let PStep::Window { time, days } = &self.compiled[i] else {
                    unreachable!("window compiles to a window")
                };
                let CKind::Window { time: t, .. } = &s.kind else {
                    unreachable!("matched above")
                };
                let w = self.steps[*src].columns.len();
                let mut cols: Vec<bool> = (0..w).map(|c| need.uses(c)).collect();
                chunk.iter().chain(by.iter()).for_each(|&c| cols[c] = true);
                mark(t, &mut cols);
                Box::new(ChunkNode {
                    p: self,
                    step: i,
                    chunker: Chunker::new(
                        self.node(*src, input, &now(*src, &mut (0..w).filter(|&c| cols[c])))?,
                        chunk,
                    ),
                    work: ChunkWork::Window {
                        by,
                        time,
                        days: *days,
                    },
                    rows: Vec::new(),
                    extra: Vec::new(),
                    len: 0,
                    at: 0,
                    buf: vec![Value::Null; width],
                    width,
                })
            }
            CKind::Union { inputs, maps } => {
                let mut children = Vec::with_capacity(inputs.len());
                for (&src, map) in inputs.iter().zip(maps) {
                    let cols = (0..width).filter(used).chain(s.sorted_by.iter().copied());
                    children.push(self.node(src, input, &now(src, &mut cols.map(|c| map[c])))?);
                }
                let n = children.len();
                Box::new(UnionNode {
                    children,
                    maps,
                    key: &s.sorted_by,
                    state: vec![UnionState::Start; n],
                    buf: vec![Value::Null; width],
                    width,
                })
            }
            CKind::Emit { .. } => unreachable!("the checker refuses an emit step as input"),
        })
    }
}

/// Which columns of a step's rows the node reading them uses: `now`
/// as soon as a row comes, `later` only through [`Node::fill`] (before it
/// asks for the next row), the others never.
#[derive(Debug, Clone)]
struct Need {
    now: Vec<bool>,
    later: Vec<bool>,
}

impl Need {
    fn new(width: usize) -> Need {
        Need {
            now: vec![false; width],
            later: vec![false; width],
        }
    }

    fn uses(&self, c: usize) -> bool {
        self.now[c] || self.later[c]
    }

    /// What a node whose rows start with its input's `width` columns (a
    /// join's or lookup's input) asks of that input: the same, and `keys`
    /// now.
    fn passed(&self, width: usize, keys: &[usize]) -> Need {
        let mut n = Need {
            now: self.now[..width].to_vec(),
            later: self.later[..width].to_vec(),
        };
        for &k in keys {
            n.now[k] = true;
        }
        for c in 0..width {
            n.later[c] &= !n.now[c];
        }
        n
    }
}

/// What emit step `i` reads of its input: every column its expressions
/// name, as soon as a row comes.
fn emit_need(steps: &[CStep], i: usize) -> Need {
    let CKind::Emit {
        input,
        subject,
        title,
        amount,
        evidence,
        ..
    } = &steps[i].kind
    else {
        unreachable!("called for emit steps")
    };
    let mut need = Need::new(steps[*input].columns.len());
    mark(subject, &mut need.now);
    for p in title {
        if let CPart::Expr(e) = p {
            mark(e, &mut need.now);
        }
    }
    if let Some(a) = amount {
        mark(a, &mut need.now);
    }
    for (_, e, _) in evidence {
        mark(e, &mut need.now);
    }
    need
}

/// Marks the columns `e` reads.
fn mark(e: &TExpr, used: &mut [bool]) {
    match &e.node {
        TNode::Field(c) => used[*c] = true,
        TNode::Const(_) | TNode::Param(_) => {}
        TNode::Not(a) | TNode::Neg(a) | TNode::IsNull(a, _) | TNode::Cast(a) => mark(a, used),
        TNode::Arith(_, a, b)
        | TNode::Concat(a, b)
        | TNode::Cmp(_, a, b)
        | TNode::And(a, b)
        | TNode::Or(a, b) => {
            mark(a, used);
            mark(b, used);
        }
        TNode::Cond(c, a, b) => {
            mark(c, used);
            mark(a, used);
            mark(b, used);
        }
        TNode::In(x, list) => {
            mark(x, used);
            list.iter().for_each(|e| mark(e, used));
        }
        TNode::Call(_, args) => args.iter().for_each(|e| mark(e, used)),
    }
}

/// A node's result. The error is boxed: errors end a run and are rare,
/// and a result of one word comes back from the calls made for every row
/// in registers instead of through memory (in the sandbox, where `RunError`
/// would be returned through the stack on every `next`).
type Fallible<T> = Result<T, Box<RunError>>;

/// A source of rows: advance, then read the current row.
trait Node {
    /// Moves to the next row; `false` at the end.
    fn next(&mut self) -> Fallible<bool>;
    /// The current row (valid after `next` returned `true`).
    fn row(&self) -> &[Value];
    /// Rows read from datasets by this node and the nodes under it.
    fn rows_read(&self) -> Vec<(String, u64)>;
    /// Gives the current row away instead of copying it: swaps the
    /// node's buffer with `buf`, whose first slots then hold the row, and
    /// returns `true`; the node writes its next row into the buffer it got
    /// back (keeping the text slots' allocations circulating). The row
    /// must not be read from the node again before `next`.
    fn swap_row(&mut self, buf: &mut Vec<Value>) -> bool;
    /// Writes the current row's deferred columns among `cols` (this
    /// node's numbering; columns it does not defer are left alone) into
    /// `row`, which holds the current row wherever it went since (handed
    /// on by `swap_row`, or copied). Nodes that defer nothing keep the
    /// default.
    fn fill(&mut self, cols: &[usize], row: &mut [Value]) -> Fallible<()> {
        let _ = (cols, row);
        Ok(())
    }
    /// [`Node::fill`] into the node's own current row, not handed on.
    fn fill_own(&mut self, cols: &[usize]) -> Fallible<()> {
        let _ = cols;
        Ok(())
    }
}

/// Makes `buf` hold at least `width` slots (after a swap it may hold
/// another node's, shorter, buffer).
#[inline]
fn fit(buf: &mut Vec<Value>, width: usize) {
    if buf.len() < width {
        buf.resize(width, Value::Null);
    }
}

struct ReadNode<'p> {
    step: &'p CStep,
    dataset: &'p str,
    scan: Box<dyn Scan>,
    /// The tags ([`Value::tag_of`]) of the columns' types, in order.
    tags: Vec<u8>,
    buf: Vec<Value>,
    /// Slots of `buf` that are this node's row (`buf` may be longer
    /// after a swap).
    width: usize,
    rows: u64,
    /// Whether the reader leaves columns out or fills some later: then
    /// only `now` is decoded with the row.
    lazy: bool,
    /// The columns decoded with the row, ascending.
    now: Vec<usize>,
    /// The columns the reader fills later.
    deferred: Vec<bool>,
    /// Whether the scan wrote the current row whole.
    whole: bool,
    /// The columns of one `fill` that are deferred (reused).
    pick: Vec<usize>,
}

impl ReadNode<'_> {
    /// The error for the first value of `row` among `cols` of another
    /// type than its column's.
    #[cold]
    fn bad_value(&self, row: &[Value], cols: &mut dyn Iterator<Item = usize>) -> Box<RunError> {
        let (v, c) = cols
            .map(|i| (&row[i], &self.step.columns[i]))
            .find(|(v, c)| !v.fits(c.ty))
            .expect("called on a row with a value of another type");
        Box::new(RunError::BadValue {
            dataset: self.dataset.to_owned(),
            field: c.name.clone(),
            expected: c.ty.name().to_owned(),
            found: format!("{} {v}", v.ty().map_or("null", Type::name)),
        })
    }
}

impl ReadNode<'_> {
    fn input_error(&self, error: HostError) -> Box<RunError> {
        Box::new(RunError::Input {
            dataset: self.dataset.to_owned(),
            error,
        })
    }

    /// Checks the columns `cols` of `row` against their types.
    #[inline]
    fn check(&self, row: &[Value], cols: &[usize]) -> Fallible<()> {
        let fits = |&c: &usize| {
            let tag = row[c].tag();
            tag == 0 || tag == self.tags[c]
        };
        if !cols.iter().all(fits) {
            return Err(self.bad_value(row, &mut cols.iter().copied()));
        }
        Ok(())
    }
}

impl Node for ReadNode<'_> {
    fn next(&mut self) -> Fallible<bool> {
        fit(&mut self.buf, self.width);
        let next = if self.lazy {
            self.scan
                .next_some(&mut self.buf[..self.width], &self.now)
                .map_err(|e| self.input_error(e))?
        } else {
            match self.scan.next_row(&mut self.buf[..self.width]) {
                Ok(true) => Next::Row,
                Ok(false) => Next::End,
                Err(e) => return Err(self.input_error(e)),
            }
        };
        // Expressions were compiled for the schema's types: a value of
        // another type is the host's error, reported as such.
        let row = &self.buf[..self.width];
        match next {
            Next::End => return Ok(false),
            Next::Some => {
                self.whole = false;
                self.check(row, &self.now)?;
            }
            Next::Row => {
                self.whole = true;
                let fits = |(v, &t): (&Value, &u8)| {
                    let tag = v.tag();
                    tag == 0 || tag == t
                };
                if !row.iter().zip(&self.tags).all(fits) {
                    return Err(self.bad_value(row, &mut (0..self.width)));
                }
            }
        }
        self.rows += 1;
        Ok(true)
    }

    fn fill(&mut self, cols: &[usize], row: &mut [Value]) -> Fallible<()> {
        if self.whole {
            return Ok(());
        }
        let row = &mut row[..self.width];
        // Pipes ask for deferred columns only, as a rule: passed on as
        // they are, without picking.
        if cols.iter().all(|&c| c < self.width && self.deferred[c]) {
            if cols.is_empty() {
                return Ok(());
            }
            return match self.scan.fill(row, cols) {
                Ok(()) => self.check(row, cols),
                Err(e) => Err(self.input_error(e)),
            };
        }
        let mut pick = std::mem::take(&mut self.pick);
        pick.clear();
        pick.extend(
            cols.iter()
                .copied()
                .filter(|&c| c < self.width && self.deferred[c]),
        );
        if pick.is_empty() {
            self.pick = pick;
            return Ok(());
        }
        let done = match self.scan.fill(row, &pick) {
            Ok(()) => self.check(row, &pick),
            Err(e) => Err(self.input_error(e)),
        };
        self.pick = pick;
        done
    }

    fn fill_own(&mut self, cols: &[usize]) -> Fallible<()> {
        let mut buf = std::mem::take(&mut self.buf);
        let done = self.fill(cols, &mut buf);
        self.buf = buf;
        done
    }

    fn row(&self) -> &[Value] {
        &self.buf[..self.width]
    }

    fn swap_row(&mut self, buf: &mut Vec<Value>) -> bool {
        std::mem::swap(&mut self.buf, buf);
        true
    }

    fn rows_read(&self) -> Vec<(String, u64)> {
        vec![(self.dataset.to_owned(), self.rows)]
    }
}

/// One step of a [`PipeNode`].
enum PipeOp<'p> {
    Filter {
        step: usize,
        cond: &'p CondF,
    },
    /// Computes `exprs` into the slots from `at` on.
    Derive {
        step: usize,
        exprs: &'p [Compiled],
        at: usize,
    },
}

/// A run of filters and derives over one input.
struct PipeNode<'p> {
    p: &'p Program,
    input: Box<dyn Node + 'p>,
    ops: Vec<PipeOp<'p>>,
    /// Per op: the input's deferred columns to fill before it runs.
    fills: Vec<Vec<usize>>,
    /// The input's deferred columns to fill once a row passed every op.
    fill_end: Vec<usize>,
    buf: Vec<Value>,
    /// Slots of `buf` that are this node's row (`buf` may be longer
    /// after a swap).
    width: usize,
    /// Whether the current row is in `buf` (a derive ran), or still the
    /// input's.
    own: bool,
}

/// Fills a pipe input's deferred `cols` into the current row: into the
/// pipe's `buf` when a derive took the row (`own`), else where the input
/// holds it.
fn fill_input(input: &mut dyn Node, buf: &mut [Value], own: bool, cols: &[usize]) -> Fallible<()> {
    if own {
        input.fill(cols, buf)
    } else {
        input.fill_own(cols)
    }
}

impl Node for PipeNode<'_> {
    fn next(&mut self) -> Fallible<bool> {
        let p = self.p;
        'rows: while self.input.next()? {
            let mut own = false;
            for (op, fill) in self.ops.iter().zip(&self.fills) {
                if !fill.is_empty() {
                    fill_input(&mut *self.input, &mut self.buf, own, fill)?;
                }
                match op {
                    PipeOp::Filter { step, cond } => {
                        let row = if own { &self.buf[..] } else { self.input.row() };
                        let env = Env { row, pool: &p.pool };
                        if !cond(&env).map_err(|e| p.eval_error(*step, *e))? {
                            continue 'rows;
                        }
                    }
                    PipeOp::Derive { step, exprs, at } => {
                        if !own {
                            if !self.input.swap_row(&mut self.buf) {
                                let row = self.input.row();
                                fit(&mut self.buf, row.len());
                                for (slot, v) in self.buf.iter_mut().zip(row) {
                                    slot.assign(v);
                                }
                            }
                            own = true;
                        }
                        fit(&mut self.buf, at + exprs.len());
                        let (head, tail) = self.buf.split_at_mut(*at);
                        let env = Env {
                            row: head,
                            pool: &p.pool,
                        };
                        for (slot, e) in tail.iter_mut().zip(exprs.iter()) {
                            e.eval_into(&env, slot)
                                .map_err(|e| p.eval_error(*step, *e))?;
                        }
                    }
                }
            }
            if !self.fill_end.is_empty() {
                fill_input(&mut *self.input, &mut self.buf, own, &self.fill_end)?;
            }
            self.own = own;
            return Ok(true);
        }
        Ok(false)
    }

    fn fill(&mut self, cols: &[usize], row: &mut [Value]) -> Fallible<()> {
        self.input.fill(cols, row)
    }

    fn fill_own(&mut self, cols: &[usize]) -> Fallible<()> {
        fill_input(&mut *self.input, &mut self.buf, self.own, cols)
    }

    fn row(&self) -> &[Value] {
        if self.own {
            &self.buf[..self.width]
        } else {
            self.input.row()
        }
    }

    fn swap_row(&mut self, buf: &mut Vec<Value>) -> bool {
        if self.own {
            std::mem::swap(&mut self.buf, buf);
            true
        } else {
            self.input.swap_row(buf)
        }
    }

    fn rows_read(&self) -> Vec<(String, u64)> {
        self.input.rows_read()
    }
}

struct SelectNode<'p> {
    input: Box<dyn Node + 'p>,
    keep: &'p [usize],
    buf: Vec<Value>,
    /// Slots of `buf` that are this node's row (`buf` may be longer
    /// after a swap).
    width: usize,
}

impl Node for SelectNode<'_> {
    fn next(&mut self) -> Fallible<bool> {
        if !self.input.next()? {
            return Ok(false);
        }
        fit(&mut self.buf, self.width);
        let row = self.input.row();
        for (slot, &c) in self.buf.iter_mut().zip(self.keep) {
            slot.assign(&row[c]);
        }
        Ok(true)
    }

    fn row(&self) -> &[Value] {
        &self.buf[..self.width]
    }

    fn swap_row(&mut self, buf: &mut Vec<Value>) -> bool {
        std::mem::swap(&mut self.buf, buf);
        true
    }

    fn rows_read(&self) -> Vec<(String, u64)> {
        self.input.rows_read()
    }
}

fn cmp_keys(a: &[Value], ak: &[usize], b: &[Value], bk: &[usize]) -> Ordering {
    for (&i, &j) in ak.iter().zip(bk) {
        match a[i].cmp_key(&b[j]) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    Ordering::Equal
}

fn copy_key(dst: &mut Vec<Value>, row: &[Value], keys: &[usize]) {
    // Sized once: a key is copied for every row of a join.
    if dst.len() != keys.len() {
        dst.resize(keys.len(), Value::Null);
    }
    for (d, &k) in dst.iter_mut().zip(keys) {
        d.assign(&row[k]);
    }
}

fn key_text(row: &[Value], keys: &[usize]) -> String {
    keys.iter()
        .map(|&k| row[k].to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum RightState {
    /// Nothing read yet.
    Start,
    /// The other side's current row is read and not yet placed.
    Pending,
    /// The other side's current row was placed; read the next.
    Consumed,
    /// The other side is exhausted.
    Done,
}

/// Where a merge join finds the key of the other side's last row read.
#[derive(Clone, Copy)]
enum LastRight {
    /// No row read yet.
    None,
    /// Copied into `last_key` (a row without partner).
    Key,
    /// In the row of `group` slot `g` (a partner, not copied).
    Slot(usize),
}

/// Where a join (a merge or a lookup) stands with its current input row:
/// the kind decides what a row with or without partners becomes.
struct Pairing {
    kind: JoinKind,
    /// Next partner to pair the current row with.
    at: usize,
    /// Whether the current row still has partners to pair with.
    active: bool,
}

impl Pairing {
    fn new(kind: JoinKind) -> Pairing {
        Pairing {
            kind,
            at: 0,
            active: false,
        }
    }

    /// The row a join shows: its input's for semi and anti joins (which
    /// add no columns), else the first `width` slots of the paired row.
    /// Each is read only when it is the one: the other may have handed its
    /// buffer on (`swap_row`).
    fn row<'a>(
        &self,
        input: &'a (dyn Node + 'a),
        paired: &'a [Value],
        width: usize,
    ) -> &'a [Value] {
        match self.kind {
            JoinKind::Semi | JoinKind::Anti => input.row(),
            _ => &paired[..width],
        }
    }

    /// Fills the input's deferred `cols` into the row the join shows
    /// (the input's own columns keep their places in the paired row).
    fn fill_own(&self, input: &mut dyn Node, paired: &mut [Value], cols: &[usize]) -> Fallible<()> {
        match self.kind {
            JoinKind::Semi | JoinKind::Anti => input.fill_own(cols),
            _ => input.fill(cols, paired),
        }
    }

    fn swap_row(
        &self,
        input: &mut dyn Node,
        paired: &mut Vec<Value>,
        buf: &mut Vec<Value>,
    ) -> bool {
        match self.kind {
            JoinKind::Semi | JoinKind::Anti => input.swap_row(buf),
            _ => {
                std::mem::swap(paired, buf);
                true
            }
        }
    }
}

/// A node that pairs each input row with its partners (rows of the other
/// side with the same key, or records looked up).
trait Joined {
    fn pairing(&mut self) -> &mut Pairing;
    /// Moves to the next input row and finds its partners; false at the end.
    fn next_input(&mut self) -> Fallible<bool>;
    /// How many partners the current input row has.
    fn partners(&self) -> usize;
    /// Makes the output row of the current input row and `partner` (none:
    /// a left join's row without one).
    fn pair(&mut self, partner: Option<usize>, last: bool);
}

/// The next output row of a join, by its kind: each partner in turn
/// (inner, left), the input row alone (left without partners, semi with
/// some, anti with none), or on to the next input row.
fn next_joined(n: &mut impl Joined) -> Fallible<bool> {
    loop {
        let partners = n.partners();
        let p = n.pairing();
        if p.active {
            if p.at < partners {
                let at = p.at;
                p.at += 1;
                n.pair(Some(at), at + 1 == partners);
                return Ok(true);
            }
            p.active = false;
        }
        if !n.next_input()? {
            return Ok(false);
        }
        let partners = n.partners();
        let p = n.pairing();
        match p.kind {
            JoinKind::Semi if partners > 0 => return Ok(true),
            JoinKind::Anti if partners == 0 => return Ok(true),
            JoinKind::Semi | JoinKind::Anti => {}
            JoinKind::Left if partners == 0 => {
                n.pair(None, true);
                return Ok(true);
            }
            JoinKind::Inner | JoinKind::Left => {
                p.active = true;
                p.at = 0;
            }
        }
    }
}

struct JoinNode<'p> {
    p: &'p Program,
    step: usize,
    left: Box<dyn Node + 'p>,
    right: Box<dyn Node + 'p>,
    pairing: Pairing,
    lk: &'p [usize],
    rk: &'p [usize],
    keep: &'p [usize],
    buf: Vec<Value>,
    /// Slots of `buf` that are this node's row (`buf` may be longer
    /// after a swap).
    width: usize,
    /// The other side's rows with the current key (slots reused).
    group: Vec<Vec<Value>>,
    group_len: usize,
    /// The key `group` holds rows for (empty before the first), unless
    /// `key_in_group`.
    group_key: Vec<Value>,
    /// Whether that key is the key of `group[0]` instead (not copied).
    key_in_group: bool,
    /// Whether the keys' types write equal values alike, so that a
    /// partner's key may stand for the left key (in messages too).
    partner_keys: bool,
    right_state: RightState,
    /// Where the key of the other side's last row read is, for checking
    /// the next one's order (when it is not known to increase).
    last_right: LastRight,
    /// That key, when it is copied ([`LastRight::Key`]).
    last_key: Vec<Value>,
    /// 0..number of keys: how a stored key is indexed.
    ident: Vec<usize>,
    /// Whether the other side's keys are known to increase strictly, so
    /// that their order need not be checked here.
    right_ordered: bool,
}

impl JoinNode<'_> {
    /// Makes `group` hold the other side's rows whose key equals the
    /// current left row's key: those of the previous left row when the
    /// key is the same, else the next ones ([`JoinNode::find_partners`]).
    fn load_group(&mut self) -> Fallible<()> {
        let left = self.left.row();
        // The previous left row's key: equal means the same partners;
        // smaller means the input broke its order.
        let previous = if self.key_in_group {
            Some((&self.group[0][..], self.rk))
        } else if !self.group_key.is_empty() {
            Some((&self.group_key[..], &self.ident[..]))
        } else {
            None
        };
        if let Some((row, keys)) = previous {
            match cmp_keys(left, self.lk, row, keys) {
                Ordering::Equal => return Ok(()),
                Ordering::Greater => {}
                Ordering::Less => {
                    let msg = format!(
                        "the input rows are not sorted on the join key: ({}) comes after ({})",
                        key_text(left, self.lk),
                        key_text(row, keys)
                    );
                    return Err(self.p.unsorted(self.step, msg));
                }
            }
        }
        self.group_len = 0;
        self.key_in_group = false;
        if self.lk.iter().any(|&k| left[k].is_null()) {
            // A null key has no partner.
            copy_key(&mut self.group_key, left, self.lk);
            return Ok(());
        }
        self.find_partners()?;
        // A partner's key is the left key, to compare the next left row
        // with, as text too when the keys' type writes equal values alike
        // (not decimals: 1.0 and 1.00): then it need not be copied.
        let left = self.left.row();
        if self.group_len > 0 && self.partner_keys {
            self.key_in_group = true;
        } else {
            copy_key(&mut self.group_key, left, self.lk);
        }
        Ok(())
    }

    /// Fills `group` with the other side's rows whose key equals the
    /// current left row's (not null) key, reading past smaller keys.
    fn find_partners(&mut self) -> Fallible<()> {
        let left = self.left.row();
        loop {
            // Whether the other side's row was just read.
            let mut fresh = false;
            if matches!(self.right_state, RightState::Start | RightState::Consumed) {
                if !self.right.next()? {
                    self.right_state = RightState::Done;
                    return Ok(());
                }
                self.right_state = RightState::Pending;
                fresh = !self.right_ordered;
            }
            if self.right_state == RightState::Done {
                return Ok(());
            }
            let r = self.right.row();
            let order = cmp_keys(r, self.rk, left, self.lk);
            // The other side's order: a row is checked against the one
            // read before it only when it is smaller than the left key.
            // That one was paired with or passed over for a left key at
            // most this one, so a row at least this key is in order.
            if fresh && order == Ordering::Less {
                let prev = match self.last_right {
                    LastRight::None => None,
                    LastRight::Key => Some((&self.last_key[..], &self.ident[..])),
                    LastRight::Slot(g) => Some((&self.group[g][..], self.rk)),
                };
                if let Some((row, keys)) = prev {
                    if cmp_keys(r, self.rk, row, keys) == Ordering::Less {
                        let msg = format!(
                            "the rows joined with are not sorted on the join key: ({}) comes after ({})",
                            key_text(r, self.rk),
                            key_text(row, keys)
                        );
                        return Err(self.p.unsorted(self.step, msg));
                    }
                }
            }
            match order {
                Ordering::Less => {
                    if !self.right_ordered {
                        copy_key(&mut self.last_key, r, self.rk);
                        self.last_right = LastRight::Key;
                    }
                    self.right_state = RightState::Consumed;
                }
                Ordering::Equal => {
                    if self.group.len() == self.group_len {
                        self.group.push(Vec::new());
                    }
                    let slot = &mut self.group[self.group_len];
                    if !self.right.swap_row(slot) {
                        let r = self.right.row();
                        slot.resize(r.len(), Value::Null);
                        for (d, v) in slot.iter_mut().zip(r) {
                            d.assign(v);
                        }
                    }
                    // Kept in its slot until a later row takes the slot,
                    // and with it the place of the last row read.
                    self.last_right = LastRight::Slot(self.group_len);
                    self.group_len += 1;
                    self.right_state = RightState::Consumed;
                }
                Ordering::Greater => return Ok(()),
            }
        }
    }

    /// Writes the current left row and its partner (or nulls); `last`
    /// says the left row is not needed again, so it may be taken.
    fn pair(&mut self, partner: Option<usize>, last: bool) {
        // The left row's width, known without asking the left node.
        let n = self.width - self.keep.len();
        debug_assert_eq!(n, self.left.row().len());
        if !(last && self.left.swap_row(&mut self.buf)) {
            fit(&mut self.buf, self.width);
            let left = self.left.row();
            for (d, v) in self.buf[..n].iter_mut().zip(left) {
                d.assign(v);
            }
        }
        fit(&mut self.buf, self.width);
        for (j, &c) in self.keep.iter().enumerate() {
            match partner {
                Some(g) => self.buf[n + j].assign(&self.group[g][c]),
                None => self.buf[n + j] = Value::Null,
            }
        }
    }
}

impl Joined for JoinNode<'_> {
    fn pairing(&mut self) -> &mut Pairing {
        &mut self.pairing
    }

    fn next_input(&mut self) -> Fallible<bool> {
        if !self.left.next()? {
            return Ok(false);
        }
        self.load_group()?;
        Ok(true)
    }

    fn partners(&self) -> usize {
        self.group_len
    }

    fn pair(&mut self, partner: Option<usize>, last: bool) {
        JoinNode::pair(self, partner, last)
    }
}

impl Node for JoinNode<'_> {
    fn next(&mut self) -> Fallible<bool> {
        next_joined(self)
    }

    fn row(&self) -> &[Value] {
        self.pairing.row(&*self.left, &self.buf, self.width)
    }

    fn fill(&mut self, cols: &[usize], row: &mut [Value]) -> Fallible<()> {
        self.left.fill(cols, row)
    }

    fn fill_own(&mut self, cols: &[usize]) -> Fallible<()> {
        self.pairing.fill_own(&mut *self.left, &mut self.buf, cols)
    }

    fn swap_row(&mut self, buf: &mut Vec<Value>) -> bool {
        self.pairing.swap_row(&mut *self.left, &mut self.buf, buf)
    }

    fn rows_read(&self) -> Vec<(String, u64)> {
        let mut v = self.left.rows_read();
        v.extend(self.right.rows_read());
        v
    }
}

/// The run's input, borrowed for one call.
fn borrow<'a, 'h>(
    host: &'a Host<'h>,
) -> Result<std::cell::RefMut<'a, &'h mut dyn Input>, HostError> {
    host.try_borrow_mut()
        .map_err(|_| HostError("the input is busy with another call".into()))
}

/// `lookup`: for each input row, the records the index has for its key,
/// one output row per record (or per input row for semi, anti and a
/// left lookup without records).
struct LookupNode<'p, 'h> {
    p: &'p Program,
    step: usize,
    input: Box<dyn Node + 'p>,
    host: &'p Host<'h>,
    dataset: &'p str,
    index: &'p str,
    pairing: Pairing,
    key: &'p Compiled,
    key_pos: Pos,
    /// Whether the key is personal data (kept out of error messages).
    key_personal: bool,
    fields: Vec<&'p str>,
    /// The columns of the looked-up fields.
    columns: &'p [Column],
    /// The current key.
    value: Value,
    /// The current row's records (slots reused).
    found: Vec<Vec<Value>>,
    found_len: usize,
    buf: Vec<Value>,
    /// Slots of `buf` that are this node's row (`buf` may be longer
    /// after a swap).
    width: usize,
    /// Records looked up, for the statistics.
    records: u64,
}

impl LookupNode<'_, '_> {
    fn failed(&self, error: HostError) -> Box<RunError> {
        Box::new(RunError::Lookup(Box::new(LookupError {
            file: self.p.file.clone(),
            step: self.p.steps[self.step].name.clone(),
            pos: self.key_pos,
            dataset: self.dataset.to_owned(),
            index: self.index.to_owned(),
            key: (!self.key_personal).then(|| self.value.to_string()),
            error,
        })))
    }

    /// Looks up the current input row's key.
    fn look(&mut self) -> Fallible<()> {
        let env = Env {
            row: self.input.row(),
            pool: &self.p.pool,
        };
        self.key
            .eval_into(&env, &mut self.value)
            .map_err(|e| self.p.eval_error(self.step, *e))?;
        self.found_len = 0;
        if self.value.is_null() {
            // A null key has no records.
            return Ok(());
        }
        let n = borrow(self.host)
            .and_then(|mut host| {
                host.lookup(
                    self.dataset,
                    self.index,
                    &self.value,
                    &self.fields,
                    &mut self.found,
                )
            })
            .map_err(|error| self.failed(error))?;
        if n > self.found.len() {
            return Err(self.failed(HostError(format!(
                "the input says {n} records match but gave {}",
                self.found.len()
            ))));
        }
        self.found_len = n;
        self.records += n as u64;
        // Expressions were compiled for the schema's types: a value of
        // another type is the host's error, reported as such.
        for r in &self.found[..n] {
            if r.len() < self.columns.len() {
                return Err(Box::new(RunError::BadValue {
                    dataset: self.dataset.to_owned(),
                    field: self.columns[r.len()].name.clone(),
                    expected: self.columns[r.len()].ty.name().to_owned(),
                    found: "no value (a record with too few fields)".into(),
                }));
            }
            for ((v, c), name) in r.iter().zip(self.columns).zip(&self.fields) {
                if let Some(t) = v.ty() {
                    if t != c.ty {
                        return Err(Box::new(RunError::BadValue {
                            dataset: self.dataset.to_owned(),
                            field: (*name).to_owned(),
                            expected: c.ty.name().to_owned(),
                            found: format!("{} {v}", t.name()),
                        }));
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the current input row and record `j` (or nulls); `last`
    /// says the input row is not needed again, so it may be taken.
    fn pair(&mut self, record: Option<usize>, last: bool) {
        // The input row's width, known without asking the input node.
        let n = self.width - self.columns.len();
        debug_assert_eq!(n, self.input.row().len());
        if !(last && self.input.swap_row(&mut self.buf)) {
            fit(&mut self.buf, self.width);
            let row = self.input.row();
            for (d, v) in self.buf[..n].iter_mut().zip(row) {
                d.assign(v);
            }
        }
        fit(&mut self.buf, self.width);
        let out = &mut self.buf[n..self.width];
        match record {
            Some(j) => {
                for (d, v) in out.iter_mut().zip(&self.found[j]) {
                    d.assign(v);
                }
            }
            None => out.iter_mut().for_each(|d| *d = Value::Null),
        }
    }
}

impl Joined for LookupNode<'_, '_> {
    fn pairing(&mut self) -> &mut Pairing {
        &mut self.pairing
    }

    fn next_input(&mut self) -> Fallible<bool> {
        if !self.input.next()? {
            return Ok(false);
        }
        self.look()?;
        Ok(true)
    }

    fn partners(&self) -> usize {
        self.found_len
    }

    fn pair(&mut self, partner: Option<usize>, last: bool) {
        LookupNode::pair(self, partner, last)
    }
}

impl Node for LookupNode<'_, '_> {
    fn next(&mut self) -> Fallible<bool> {
        next_joined(self)
    }

    fn row(&self) -> &[Value] {
        self.pairing.row(&*self.input, &self.buf, self.width)
    }

    fn fill(&mut self, cols: &[usize], row: &mut [Value]) -> Fallible<()> {
        self.input.fill(cols, row)
    }

    fn fill_own(&mut self, cols: &[usize]) -> Fallible<()> {
        self.pairing.fill_own(&mut *self.input, &mut self.buf, cols)
    }

    fn swap_row(&mut self, buf: &mut Vec<Value>) -> bool {
        self.pairing.swap_row(&mut *self.input, &mut self.buf, buf)
    }

    fn rows_read(&self) -> Vec<(String, u64)> {
        let mut v = self.input.rows_read();
        v.push((self.dataset.to_owned(), self.records));
        v
    }
}

/// One aggregate's running value.
enum Acc {
    Count(i64),
    SumInt(i64),
    SumDec(Decimal),
    SumFloat(f64),
    Min(Value),
    Max(Value),
    Any(bool),
    All(bool),
    Distinct(BTreeSet<String>),
    /// `list`: the text so far, whether any value came, the separator.
    List(String, bool, String),
}

impl Acc {
    fn new(f: AggFunc, ty: Type, sep: &str) -> Acc {
        match f {
            AggFunc::Count => Acc::Count(0),
            AggFunc::Sum => match ty {
                Type::Int => Acc::SumInt(0),
                Type::Float => Acc::SumFloat(0.0),
                _ => Acc::SumDec(Decimal::ZERO),
            },
            AggFunc::Min => Acc::Min(Value::Null),
            AggFunc::Max => Acc::Max(Value::Null),
            AggFunc::Any => Acc::Any(false),
            AggFunc::All => Acc::All(true),
            AggFunc::CollectDistinct => Acc::Distinct(BTreeSet::new()),
            AggFunc::List => Acc::List(String::new(), false, sep.to_owned()),
        }
    }

    fn reset(&mut self) {
        match self {
            Acc::Count(n) | Acc::SumInt(n) => *n = 0,
            Acc::SumDec(d) => *d = Decimal::ZERO,
            Acc::SumFloat(x) => *x = 0.0,
            Acc::Min(v) | Acc::Max(v) => *v = Value::Null,
            Acc::Any(b) => *b = false,
            Acc::All(b) => *b = true,
            Acc::Distinct(s) => s.clear(),
            Acc::List(s, any, _) => {
                s.clear();
                *any = false;
            }
        }
    }

    /// Adds one row's value (`v`: the argument's value; for `count()`, unused).
    fn add(&mut self, v: &Value, has_arg: bool, pos: Pos) -> Result<(), Fail> {
        let overflow = || fail(pos, "the sum is out of range (overflow)");
        match (self, v) {
            (Acc::Count(n), _) if !has_arg => *n += 1,
            (Acc::Count(n), Value::Bool(true)) => *n += 1,
            (Acc::Count(_), _) => {}
            (Acc::SumInt(n), Value::Int(x)) => *n = n.checked_add(*x).ok_or_else(overflow)?,
            (Acc::SumDec(d), Value::Decimal(x)) => {
                let s = d.checked_add(*x).ok_or_else(overflow)?;
                *d = crate::expr::compile::sum_scale(s, *d, *x);
            }
            (Acc::SumFloat(s), Value::Float(x)) => {
                *s += x;
                if !s.is_finite() {
                    return Err(overflow());
                }
            }
            (_, Value::Null) => {}
            (Acc::Min(m), v) => {
                if m.is_null() || v.cmp_key(m) == Ordering::Less {
                    m.assign(v);
                }
            }
            (Acc::Max(m), v) => {
                if m.is_null() || v.cmp_key(m) == Ordering::Greater {
                    m.assign(v);
                }
            }
            (Acc::Any(b), Value::Bool(x)) => *b |= *x,
            (Acc::All(b), Value::Bool(x)) => *b &= *x,
            (Acc::List(s, any, sep), v) => {
                use std::fmt::Write;
                if *any {
                    s.push_str(sep);
                }
                *any = true;
                let _ = write!(s, "{v}");
            }
            (Acc::Distinct(s), v) => {
                let text = v.to_string();
                if !s.contains(&text) {
                    s.insert(text);
                }
            }
            _ => {
                return Err(fail(
                    pos,
                    "an aggregate received a value of another type than checked",
                ))
            }
        }
        Ok(())
    }

    fn finish(&self, out: &mut Value) {
        match self {
            Acc::Count(n) | Acc::SumInt(n) => *out = Value::Int(*n),
            Acc::SumDec(d) => match out {
                Value::Decimal(slot) => *slot = *d,
                _ => *out = Value::Decimal(*d),
            },
            Acc::SumFloat(x) => *out = Value::Float(*x),
            Acc::Min(v) | Acc::Max(v) => out.assign(v),
            Acc::Any(b) | Acc::All(b) => *out = Value::Bool(*b),
            Acc::List(s, any, _) => {
                if *any {
                    out.set_str(s);
                } else {
                    *out = Value::Null;
                }
            }
            // Like `list`, nothing collected is null, not empty text.
            Acc::Distinct(s) if s.is_empty() => *out = Value::Null,
            Acc::Distinct(s) => {
                let joined = s.iter().map(String::as_str).collect::<Vec<_>>().join(",");
                out.set_str(&joined);
            }
        }
    }
}

fn fold(
    p: &Program,
    step: usize,
    row: &[Value],
    aggs: &[(AggFunc, AggArg)],
    accs: &mut [Acc],
    scratch: &mut Value,
) -> Fallible<()> {
    let env = Env { row, pool: &p.pool };
    let pos = p.steps[step].pos;
    for ((_, arg), acc) in aggs.iter().zip(accs.iter_mut()) {
        let v = match arg {
            AggArg::Field(c) => &row[*c],
            AggArg::Expr(a, from) => {
                a.eval_into(&env, scratch)
                    .map_err(|e| p.eval_error(*from, *e))?;
                &*scratch
            }
            AggArg::None => {
                acc.add(&Value::Null, false, pos)
                    .map_err(|e| p.eval_error(step, *e))?;
                continue;
            }
        };
        // The commonest aggregates, a sum of a column or of an expression
        // (a fused derive's, say), added in place.
        match (&mut *acc, v) {
            (Acc::SumInt(n), Value::Int(x)) => {
                if let Some(s) = n.checked_add(*x) {
                    *n = s;
                    continue;
                }
            }
            (Acc::SumDec(d), Value::Decimal(x)) => {
                if let Some(s) = d.checked_add(*x) {
                    *d = crate::expr::compile::sum_scale(s, *d, *x);
                    continue;
                }
            }
            _ => {}
        }
        acc.add(v, true, pos).map_err(|e| p.eval_error(step, *e))?
    }
    Ok(())
}

struct GroupNode<'p> {
    p: &'p Program,
    step: usize,
    input: Box<dyn Node + 'p>,
    by: &'p [usize],
    aggs: &'p [(AggFunc, AggArg)],
    accs: Vec<Acc>,
    scratch: Value,
    buf: Vec<Value>,
    /// Slots of `buf` that are this node's row (`buf` may be longer
    /// after a swap).
    width: usize,
    /// The input's current row starts the next group.
    pending: bool,
    done: bool,
    /// Whether a row has been asked for: a group without keys gives its
    /// one row even over no input.
    started: bool,
    /// 0..number of keys.
    ident: Vec<usize>,
}

impl GroupNode<'_> {
    /// The row of a group without keys over an empty input: every
    /// aggregate over no values (count 0, sum 0, min null…), as SQL's
    /// aggregate without GROUP BY gives, so that "none at all" can be a
    /// rule.
    fn total_of_nothing(&mut self) -> bool {
        fit(&mut self.buf, self.width);
        self.accs.iter_mut().for_each(Acc::reset);
        for (acc, out) in self.accs.iter().zip(&mut self.buf) {
            acc.finish(out);
        }
        true
    }
}

impl Node for GroupNode<'_> {
    fn next(&mut self) -> Fallible<bool> {
        let first = !std::mem::replace(&mut self.started, true);
        if self.done || (!self.pending && !self.input.next()?) {
            self.done = true;
            return Ok(first && self.by.is_empty() && self.total_of_nothing());
        }
        let nb = self.by.len();
        fit(&mut self.buf, self.width);
        let key = &self.ident;
        let mut row = self.input.row();
        for (d, &c) in self.buf[..nb].iter_mut().zip(self.by) {
            d.assign(&row[c]);
        }
        self.accs.iter_mut().for_each(Acc::reset);
        loop {
            fold(
                self.p,
                self.step,
                row,
                self.aggs,
                &mut self.accs,
                &mut self.scratch,
            )?;
            if !self.input.next()? {
                self.done = true;
                self.pending = false;
                break;
            }
            row = self.input.row();
            match cmp_keys(row, self.by, &self.buf, key) {
                Ordering::Equal => {}
                Ordering::Greater => {
                    self.pending = true;
                    break;
                }
                Ordering::Less => {
                    let msg = format!(
                        "the input rows are not sorted on the group key: ({}) comes after ({})",
                        key_text(row, self.by),
                        key_text(&self.buf, key)
                    );
                    return Err(self.p.unsorted(self.step, msg));
                }
            }
        }
        for (acc, out) in self.accs.iter().zip(&mut self.buf[nb..]) {
            acc.finish(out);
        }
        Ok(true)
    }

    fn row(&self) -> &[Value] {
        &self.buf[..self.width]
    }

    fn swap_row(&mut self, buf: &mut Vec<Value>) -> bool {
        std::mem::swap(&mut self.buf, buf);
        true
    }

    fn rows_read(&self) -> Vec<(String, u64)> {
        self.input.rows_read()
    }
}

/// Values ordered as keys (see [`Value::cmp_key`]).
#[derive(Clone)]
struct Key(Vec<Value>);

impl PartialEq for Key {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Key {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0
            .iter()
            .zip(&o.0)
            .map(|(a, b)| a.cmp_key(b))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    }
}

/// A group whose keys do not lead the input's order: one accumulator set
/// per distinct key, groups emitted in key order.
struct HashGroupNode<'p> {
    p: &'p Program,
    step: usize,
    input: Option<Box<dyn Node + 'p>>,
    by: &'p [usize],
    aggs: &'p [(AggFunc, AggArg)],
    seps: &'p [String],
    types: Vec<Type>,
    out: Vec<(Key, Vec<Acc>)>,
    at: usize,
    buf: Vec<Value>,
    /// Slots of `buf` that are this node's row (`buf` may be longer
    /// after a swap).
    width: usize,
}

impl Node for HashGroupNode<'_> {
    fn next(&mut self) -> Fallible<bool> {
        if let Some(mut input) = self.input.take() {
            let mut groups: BTreeMap<Key, Vec<Acc>> = BTreeMap::new();
            let mut scratch = Value::Null;
            let mut key = Key(Vec::new());
            while input.next()? {
                let row = input.row();
                copy_key(&mut key.0, row, self.by);
                if !groups.contains_key(&key) {
                    let accs = self
                        .types
                        .iter()
                        .zip(self.aggs)
                        .zip(self.seps)
                        .map(|((t, (f, _)), sep)| Acc::new(*f, *t, sep))
                        .collect();
                    groups.insert(key.clone(), accs);
                }
                let accs = groups.get_mut(&key).expect("inserted above");
                fold(self.p, self.step, row, self.aggs, accs, &mut scratch)?;
            }
            self.out = groups.into_iter().collect();
            // The input is dropped here; its counts were not kept, which
            // only the statistics would show.
        }
        let Some((key, accs)) = self.out.get(self.at) else {
            return Ok(false);
        };
        self.at += 1;
        let nb = key.0.len();
        fit(&mut self.buf, self.width);
        for (d, v) in self.buf.iter_mut().zip(&key.0) {
            d.assign(v);
        }
        for (acc, out) in accs.iter().zip(&mut self.buf[nb..]) {
            acc.finish(out);
        }
        Ok(true)
    }

    fn row(&self) -> &[Value] {
        &self.buf[..self.width]
    }

    fn swap_row(&mut self, buf: &mut Vec<Value>) -> bool {
        std::mem::swap(&mut self.buf, buf);
        true
    }

    fn rows_read(&self) -> Vec<(String, u64)> {
        self.input
            .as_ref()
            .map(|i| i.rows_read())
            .unwrap_or_default()
    }
}

fn cmp_sort(a: &[Value], b: &[Value], keys: &[(usize, bool)]) -> Ordering {
    for &(c, desc) in keys {
        let o = a[c].cmp_key(&b[c]);
        let o = if desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

struct SortNode<'p> {
    input: Option<Box<dyn Node + 'p>>,
    keys: &'p [(usize, bool)],
    rows: Vec<Vec<Value>>,
    at: usize,
}

impl Node for SortNode<'_> {
    fn next(&mut self) -> Fallible<bool> {
        if let Some(mut input) = self.input.take() {
            while input.next()? {
                self.rows.push(input.row().to_vec());
            }
            let keys = self.keys;
            self.rows.sort_by(|a, b| cmp_sort(a, b, keys));
            self.at = 0;
        } else {
            self.at += 1;
        }
        Ok(self.at < self.rows.len())
    }

    fn row(&self) -> &[Value] {
        &self.rows[self.at]
    }

    fn swap_row(&mut self, buf: &mut Vec<Value>) -> bool {
        // Each sorted row is handed out once.
        std::mem::swap(&mut self.rows[self.at], buf);
        true
    }

    fn rows_read(&self) -> Vec<(String, u64)> {
        self.input
            .as_ref()
            .map(|i| i.rows_read())
            .unwrap_or_default()
    }
}

/// Reads an input in chunks of rows that agree on the leading sorted
/// columns a rank or window partitions by.
struct Chunker<'p> {
    input: Box<dyn Node + 'p>,
    cols: &'p [usize],
    pending: bool,
    done: bool,
}

impl<'p> Chunker<'p> {
    fn new(input: Box<dyn Node + 'p>, cols: &'p [usize]) -> Self {
        Chunker {
            input,
            cols,
            pending: false,
            done: false,
        }
    }

    /// Reads the next chunk into `rows` (slots reused); its length, 0 at
    /// the end.
    fn fill(&mut self, rows: &mut Vec<Vec<Value>>) -> Fallible<usize> {
        if self.done || (!self.pending && !self.input.next()?) {
            self.done = true;
            return Ok(0);
        }
        let mut n = 0;
        loop {
            let row = self.input.row();
            if n == rows.len() {
                rows.push(Vec::new());
            }
            rows[n].resize(row.len(), Value::Null);
            for (d, v) in rows[n].iter_mut().zip(row) {
                d.assign(v);
            }
            n += 1;
            if !self.input.next()? {
                self.done = true;
                self.pending = false;
                return Ok(n);
            }
            if cmp_keys(self.input.row(), self.cols, &rows[0], self.cols) != Ordering::Equal {
                self.pending = true;
                return Ok(n);
            }
        }
    }
}

enum ChunkWork<'p> {
    Rank {
        by: &'p [usize],
        order: &'p [(usize, bool)],
        size: bool,
        ties_in_order: bool,
    },
    Window {
        by: &'p [usize],
        time: &'p F<Date>,
        days: i64,
    },
}

/// `rank` and `window`: read a chunk, compute the extra column(s) for each
/// row, hand the rows out in input order.
struct ChunkNode<'p> {
    p: &'p Program,
    step: usize,
    chunker: Chunker<'p>,
    work: ChunkWork<'p>,
    rows: Vec<Vec<Value>>,
    /// Per row of the chunk: the added values (rank and size, or count).
    extra: Vec<(i64, i64)>,
    len: usize,
    at: usize,
    buf: Vec<Value>,
    /// Slots of `buf` that are this node's row (`buf` may be longer
    /// after a swap).
    width: usize,
}

impl ChunkNode<'_> {
    fn compute(&mut self) -> Fallible<()> {
        let n = self.len;
        let rows = &self.rows[..n];
        self.extra.clear();
        self.extra.resize(n, (0, 0));
        let mut idx: Vec<usize> = (0..n).collect();
        match &self.work {
            ChunkWork::Rank {
                by,
                order,
                ties_in_order,
                ..
            } => {
                idx.sort_by(|&a, &b| {
                    cmp_keys(&rows[a], by, &rows[b], by)
                        .then_with(|| cmp_sort(&rows[a], &rows[b], order))
                });
                let mut start = 0;
                while start < n {
                    let mut end = start + 1;
                    while end < n
                        && cmp_keys(&rows[idx[start]], by, &rows[idx[end]], by) == Ordering::Equal
                    {
                        end += 1;
                    }
                    let size = (end - start) as i64;
                    let mut rank = 1;
                    for k in start..end {
                        // The sort is stable: ties keep the input's order.
                        if k > start
                            && (*ties_in_order
                                || cmp_sort(&rows[idx[k - 1]], &rows[idx[k]], order)
                                    != Ordering::Equal)
                        {
                            rank = (k - start + 1) as i64;
                        }
                        self.extra[idx[k]] = (rank, size);
                    }
                    start = end;
                }
            }
            ChunkWork::Window { by, time, days } => {
                let mut times = Vec::with_capacity(n);
                for r in rows {
                    let env = Env {
                        row: r,
                        pool: &self.p.pool,
                    };
                    times.push(time(&env).map_err(|e| self.p.eval_error(self.step, *e))?);
                }
                idx.sort_by(|&a, &b| {
                    cmp_keys(&rows[a], by, &rows[b], by).then_with(|| times[a].cmp(&times[b]))
                });
                let mut start = 0;
                while start < n {
                    let mut end = start + 1;
                    while end < n
                        && cmp_keys(&rows[idx[start]], by, &rows[idx[end]], by) == Ordering::Equal
                    {
                        end += 1;
                    }
                    let part = &idx[start..end];
                    for &i in part {
                        let Some(t) = times[i] else { continue };
                        // Nulls sort first, then dates ascending. A window
                        // reaching before the year 1 starts at the first date.
                        let lo = match t.add_days(-days) {
                            Some(from) => {
                                part.partition_point(|&j| times[j].is_none_or(|x| x < from))
                            }
                            None => part.partition_point(|&j| times[j].is_none()),
                        };
                        let hi = part.partition_point(|&j| times[j].is_none_or(|x| x <= t));
                        self.extra[i] = ((hi - lo) as i64, 0);
                    }
                    start = end;
                }
            }
        }
        Ok(())
    }
}

impl Node for ChunkNode<'_> {
    fn next(&mut self) -> Fallible<bool> {
        if self.at >= self.len {
            self.len = self.chunker.fill(&mut self.rows)?;
            self.at = 0;
            if self.len == 0 {
                return Ok(false);
            }
            self.compute()?;
        }
        fit(&mut self.buf, self.width);
        let row = &self.rows[self.at];
        let n = row.len();
        for (d, v) in self.buf.iter_mut().zip(row) {
            d.assign(v);
        }
        let (a, b) = self.extra[self.at];
        self.buf[n] = Value::Int(a);
        if let ChunkWork::Rank { size: true, .. } = self.work {
            self.buf[n + 1] = Value::Int(b);
        }
        self.at += 1;
        Ok(true)
    }

    fn row(&self) -> &[Value] {
        &self.buf[..self.width]
    }

    fn swap_row(&mut self, buf: &mut Vec<Value>) -> bool {
        std::mem::swap(&mut self.buf, buf);
        true
    }

    fn rows_read(&self) -> Vec<(String, u64)> {
        self.chunker.input.rows_read()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum UnionState {
    /// Not read yet, or its row was handed out: read the next.
    Start,
    /// Its current row waits to be handed out.
    Ready,
    /// Exhausted.
    Done,
}

/// `union`: merges its inputs on the order they share; equal keys in the
/// order of the inputs.
struct UnionNode<'p> {
    children: Vec<Box<dyn Node + 'p>>,
    /// Per input: its column for each output column.
    maps: &'p [Vec<usize>],
    /// Output columns the inputs are all sorted on.
    key: &'p [usize],
    state: Vec<UnionState>,
    buf: Vec<Value>,
    width: usize,
}

impl Node for UnionNode<'_> {
    fn next(&mut self) -> Fallible<bool> {
        let mut best: Option<usize> = None;
        for i in 0..self.children.len() {
            if self.state[i] == UnionState::Start {
                self.state[i] = if self.children[i].next()? {
                    UnionState::Ready
                } else {
                    UnionState::Done
                };
            }
            if self.state[i] != UnionState::Ready {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let (rb, ri) = (self.children[b].row(), self.children[i].row());
                    let (mb, mi) = (&self.maps[b], &self.maps[i]);
                    let mut o = Ordering::Equal;
                    for &k in self.key {
                        o = ri[mi[k]].cmp_key(&rb[mb[k]]);
                        if o != Ordering::Equal {
                            break;
                        }
                    }
                    if o == Ordering::Less {
                        Some(i)
                    } else {
                        Some(b)
                    }
                }
            };
        }
        let Some(b) = best else {
            return Ok(false);
        };
        fit(&mut self.buf, self.width);
        let row = self.children[b].row();
        for (d, &c) in self.buf.iter_mut().zip(&self.maps[b]) {
            d.assign(&row[c]);
        }
        self.state[b] = UnionState::Start;
        Ok(true)
    }

    fn row(&self) -> &[Value] {
        &self.buf[..self.width]
    }

    fn swap_row(&mut self, buf: &mut Vec<Value>) -> bool {
        std::mem::swap(&mut self.buf, buf);
        true
    }

    fn rows_read(&self) -> Vec<(String, u64)> {
        self.children.iter().flat_map(|c| c.rows_read()).collect()
    }
}

/// A dataset in memory: its columns and its sorted rows.
type MemoryTable = (Vec<String>, std::rc::Rc<Vec<Vec<Value>>>);

/// Datasets held in memory: for tests, examples and dry runs.
///
/// ```
/// use jiandu_plan::{exec::MemoryInput, Value};
/// let mut input = MemoryInput::default();
/// input.add("employers", &["credit_code", "name"], &["credit_code"], vec![
///     vec![Value::Str("91350100M000100Y43".into()), Value::Str("甲公司".into())],
/// ]);
/// ```
///
/// Lookups go through indexes declared with [`MemoryInput::index`], and
/// may be bounded as the host bounds them ([`MemoryInput::limit_lookups`]).
#[derive(Debug, Clone, Default)]
pub struct MemoryInput {
    datasets: BTreeMap<String, MemoryTable>,
    /// (dataset, index) → indexed field.
    indexes: BTreeMap<(String, String), String>,
    max_lookup: Option<usize>,
}

impl MemoryInput {
    /// Adds a dataset with its columns and rows, sorted here on
    /// `primary_key` as the store would.
    pub fn add(
        &mut self,
        dataset: &str,
        columns: &[&str],
        primary_key: &[&str],
        mut rows: Vec<Vec<Value>>,
    ) {
        let key: Vec<usize> = primary_key
            .iter()
            .filter_map(|k| columns.iter().position(|c| c == k))
            .collect();
        rows.sort_by(|a, b| cmp_keys(a, &key, b, &key));
        self.datasets.insert(
            dataset.to_owned(),
            (
                columns.iter().map(|c| (*c).to_owned()).collect(),
                std::rc::Rc::new(rows),
            ),
        );
    }

    /// Declares the secondary index `index` of `dataset` on `field`, as
    /// the schema's `[indexes]` does, for lookups.
    ///
    /// ```
    /// use jiandu_plan::{exec::{Input, MemoryInput}, Value};
    /// let mut input = MemoryInput::default();
    /// input.add("priors", &["record_id", "person_id", "kind"], &["record_id"], vec![
    ///     vec![Value::Str("r2".into()), Value::Str("p1".into()), Value::Str("醉驾".into())],
    ///     vec![Value::Str("r1".into()), Value::Str("p1".into()), Value::Str("盗窃".into())],
    ///     vec![Value::Str("r3".into()), Value::Str("p2".into()), Value::Str("盗窃".into())],
    /// ]);
    /// input.index("priors", "by_person", "person_id");
    /// let mut rows = Vec::new();
    /// let n = input.lookup("priors", "by_person", &Value::Str("p1".into()), &["record_id"], &mut rows).unwrap();
    /// assert_eq!(n, 2);
    /// assert_eq!(rows[..n], [vec![Value::Str("r1".into())], vec![Value::Str("r2".into())]]);
    /// ```
    pub fn index(&mut self, dataset: &str, index: &str, field: &str) {
        self.indexes
            .insert((dataset.to_owned(), index.to_owned()), field.to_owned());
    }

    /// Fails every lookup that finds more than `max` records, with the
    /// host's message (the host returns at most 4096).
    pub fn limit_lookups(&mut self, max: usize) {
        self.max_lookup = Some(max);
    }
}

struct MemoryScan {
    cols: Vec<usize>,
    rows: std::rc::Rc<Vec<Vec<Value>>>,
    at: usize,
}

impl MemoryInput {
    /// The dataset's table and the positions of `fields` in its rows.
    fn table(
        &self,
        dataset: &str,
        fields: &[&str],
    ) -> Result<(&MemoryTable, Vec<usize>), HostError> {
        let table = self
            .datasets
            .get(dataset)
            .ok_or_else(|| HostError(format!("no dataset `{dataset}` in memory")))?;
        let cols = fields
            .iter()
            .map(|f| {
                table
                    .0
                    .iter()
                    .position(|c| c == f)
                    .ok_or_else(|| HostError(format!("dataset `{dataset}` has no field `{f}`")))
            })
            .collect::<Result<_, _>>()?;
        Ok((table, cols))
    }
}

impl Input for MemoryInput {
    fn scan(&mut self, dataset: &str, fields: &[&str]) -> Result<Box<dyn Scan>, HostError> {
        let ((_, rows), cols) = self.table(dataset, fields)?;
        Ok(Box::new(MemoryScan {
            cols,
            rows: rows.clone(),
            at: 0,
        }))
    }

    fn lookup(
        &mut self,
        dataset: &str,
        index: &str,
        value: &Value,
        fields: &[&str],
        out: &mut Vec<Vec<Value>>,
    ) -> Result<usize, HostError> {
        let field = self
            .indexes
            .get(&(dataset.to_owned(), index.to_owned()))
            .ok_or_else(|| HostError(format!("dataset `{dataset}` has no index `{index}`")))?;
        let ((_, rows), cols) = self.table(dataset, fields)?;
        let (_, key) = self.table(dataset, &[field])?;
        // Rows are in primary-key order, the index's order among equals.
        let found = rows.iter().filter(|r| {
            r.get(key[0])
                .is_some_and(|v| !v.is_null() && v.cmp_key(value) == Ordering::Equal)
        });
        let count = found.clone().count();
        if let Some(max) = self.max_lookup.filter(|&m| count > m) {
            return Err(HostError(format!(
                "{count} records match; a lookup returns at most {max} (scan by the index instead)"
            )));
        }
        for (j, r) in found.enumerate() {
            if j == out.len() {
                out.push(Vec::new());
            }
            let slot = &mut out[j];
            slot.resize(cols.len(), Value::Null);
            for (d, &c) in slot.iter_mut().zip(&cols) {
                d.assign(r.get(c).unwrap_or(&Value::Null));
            }
        }
        Ok(count)
    }
}

impl Scan for MemoryScan {
    fn next_row(&mut self, row: &mut [Value]) -> Result<bool, HostError> {
        let Some(r) = self.rows.get(self.at) else {
            return Ok(false);
        };
        self.at += 1;
        for (slot, &c) in row.iter_mut().zip(&self.cols) {
            slot.assign(r.get(c).unwrap_or(&Value::Null));
        }
        Ok(true)
    }
}

/// Collects leads in memory.
impl LeadSink for Vec<Lead> {
    fn emit(&mut self, lead: &Lead) -> Result<(), HostError> {
        self.push(lead.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn priors() -> MemoryInput {
        let mut input = MemoryInput::default();
        input.add(
            "priors",
            &["record_id", "person_id", "year"],
            &["record_id"],
            vec![
                vec![s("r3"), s("p1"), Value::Int(2022)],
                vec![s("r1"), s("p1"), Value::Int(2020)],
                vec![s("r2"), Value::Null, Value::Int(2021)],
                vec![s("r4"), s("p2"), Value::Int(2020)],
            ],
        );
        input.index("priors", "by_person", "person_id");
        input.index("priors", "by_year", "year");
        input
    }

    #[test]
    fn memory_lookup_filters_in_key_order_reusing_slots() {
        let mut input = priors();
        // Stale slots from an earlier lookup are overwritten, not appended.
        let mut rows = vec![vec![s("old"), s("old")]; 3];
        let n = input
            .lookup(
                "priors",
                "by_person",
                &s("p1"),
                &["record_id", "year"],
                &mut rows,
            )
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            rows[..n],
            [
                vec![s("r1"), Value::Int(2020)],
                vec![s("r3"), Value::Int(2022)]
            ]
        );
        assert_eq!(rows.len(), 3, "slots are kept for the next lookup");
        let n = input
            .lookup("priors", "by_year", &Value::Int(2020), &[], &mut rows)
            .unwrap();
        assert_eq!(n, 2);
        assert!(rows[..n].iter().all(Vec::is_empty));
        // A value of another type, or a null field, matches nothing.
        for v in [Value::Decimal(2020.into()), Value::Null] {
            let n = input
                .lookup("priors", "by_year", &v, &["record_id"], &mut rows)
                .unwrap();
            assert_eq!(n, 0);
        }
    }

    #[test]
    fn memory_lookup_refuses_as_the_host_does() {
        let mut input = priors();
        let mut rows = Vec::new();
        let e = input
            .lookup("priors", "by_kind", &s("x"), &[], &mut rows)
            .unwrap_err();
        assert_eq!(e.0, "dataset `priors` has no index `by_kind`");
        let e = input
            .lookup("priors", "by_person", &s("p1"), &["kind"], &mut rows)
            .unwrap_err();
        assert_eq!(e.0, "dataset `priors` has no field `kind`");
        input.limit_lookups(1);
        let e = input
            .lookup("priors", "by_person", &s("p1"), &[], &mut rows)
            .unwrap_err();
        assert_eq!(
            e.0,
            "2 records match; a lookup returns at most 1 (scan by the index instead)"
        );
        assert!(input
            .lookup("priors", "by_person", &s("p2"), &[], &mut rows)
            .is_ok());
    }

    #[test]
    fn an_input_that_only_scans_refuses_lookups() {
        struct ScanOnly;
        impl Input for ScanOnly {
            fn scan(&mut self, _: &str, _: &[&str]) -> Result<Box<dyn Scan>, HostError> {
                Err(HostError("no".into()))
            }
        }
        let e = ScanOnly
            .lookup("priors", "by_person", &s("p1"), &[], &mut Vec::new())
            .unwrap_err();
        assert_eq!(
            e.0,
            "this input cannot look records up (dataset `priors`, index `by_person`)"
        );
    }

    /// The `model.toml` and schema of the `fund_payments` tests.
    const PAYMENTS_MODEL: &str = r#"
[datasets]
fund_payments = { fields = ["credit_code", "levy_year", "amount"] }
"#;
    const PAYMENTS_SCHEMA: &str = r#"
name = "fund_payments"
primary_key = ["credit_code", "levy_year"]
fields = [
  { name = "credit_code", type = "string" },
  { name = "levy_year", type = "int" },
  { name = "amount", type = "decimal" },
]
"#;

    /// The plan `text` over `fund_payments`, checked and bound.
    fn payments_plan(text: &str) -> Program {
        let plan = crate::Plan::parse("t.plan.toml", text).expect("test plan");
        let catalog =
            crate::Catalog::from_toml(PAYMENTS_MODEL, &[PAYMENTS_SCHEMA]).expect("test catalog");
        crate::check_plan(&plan, &catalog)
            .expect("checks")
            .bind(&[])
            .expect("binds")
    }

    /// A plan that reads `fund_payments` and emits every row.
    fn payments_program() -> Program {
        payments_plan(
            r#"
[[step]]
name = "payments"
op = "read"
dataset = "fund_payments"

[[step]]
name = "leads"
op = "emit"
subject = "credit_code"
title = "{credit_code}"
"#,
        )
    }

    fn payments(rows: Vec<Vec<Value>>) -> MemoryInput {
        let mut input = MemoryInput::default();
        input.add(
            "fund_payments",
            &["credit_code", "levy_year", "amount"],
            &["credit_code", "levy_year"],
            rows,
        );
        input
    }

    #[test]
    fn group_sums_are_exact_skip_nulls_and_overflow_is_an_error() {
        let program = payments_plan(
            r#"
[[step]]
name = "payments"
op = "read"
dataset = "fund_payments"

[[step]]
name = "per_employer"
op = "group"
by = "credit_code"
aggregates = { years = "sum(levy_year)", paid = "sum(amount)" }

[[step]]
name = "leads"
op = "emit"
subject = "credit_code"
title = "{years} {paid}"
"#,
        );
        let dec = |x: &str| Value::Decimal(x.parse().expect("decimal"));
        let mut leads: Vec<Lead> = Vec::new();
        let rows = vec![
            vec![s("A"), Value::Int(2023), dec("0.1")],
            vec![s("A"), Value::Null, dec("0.2")],
            vec![s("A"), Value::Int(2024), Value::Null],
            vec![s("B"), Value::Int(1), dec("-5")],
        ];
        program.run(&mut payments(rows), &mut leads).expect("sums");
        let titles: Vec<&str> = leads.iter().map(|l| l.title.as_str()).collect();
        assert_eq!(titles, ["4047 0.3", "1 -5"]);
        let rows = vec![
            vec![s("A"), Value::Int(i64::MAX), dec("0")],
            vec![s("A"), Value::Int(1), dec("0")],
        ];
        let e = program
            .run(&mut payments(rows), &mut Vec::<Lead>::new())
            .unwrap_err();
        assert!(
            e.to_string().contains("the sum is out of range (overflow)"),
            "{e}"
        );
    }

    /// A plan deriving `weight` and `half` from each payment, then
    /// summing them per employer; `extra` adds steps at the end.
    fn derived_sums(aggregates: &str, extra: &str) -> Program {
        payments_plan(&format!(
            r#"
[[step]]
name = "payments"
op = "read"
dataset = "fund_payments"

[[step]]
name = "weighed"
op = "derive"
set.weight = "levy_year >= 2024 ? 2 : 1"
set.half = "amount / (levy_year - 2000)"

[[step]]
name = "per_employer"
op = "group"
by = "credit_code"
aggregates = {aggregates}

[[step]]
name = "leads"
op = "emit"
input = "per_employer"
subject = "credit_code"
title = "{{w}} {{h}}"
{extra}"#
        ))
    }

    #[test]
    fn a_derive_read_only_by_a_group_is_evaluated_in_it_with_the_same_sums_and_errors() {
        let fused = r#"{ w = "sum(weight)", h = "sum(half)" }"#;
        let program = derived_sums(fused, "");
        let group = program.steps.iter().position(|s| s.name == "per_employer");
        assert_eq!(fused_derive(&program.steps, group.unwrap()), Some(1));
        // Not fused: the derive read by another step too, its columns out
        // of order, one left out, one read twice, an expression over one,
        // a key among its columns.
        let another = r#"
[[step]]
name = "more"
op = "emit"
input = "weighed"
subject = "credit_code"
title = "x"
"#;
        let unfused = [
            derived_sums(fused, another),
            derived_sums(r#"{ h = "sum(half)", w = "sum(weight)" }"#, ""),
            derived_sums(r#"{ w = "sum(weight)", h = "count()" }"#, ""),
            derived_sums(
                r#"{ w = "sum(weight)", h = "sum(half)", x = "max(half)" }"#,
                "",
            ),
            derived_sums(r#"{ w = "sum(weight)", h = "sum(half * 2)" }"#, ""),
        ];
        for p in &unfused {
            let g = p
                .steps
                .iter()
                .position(|s| s.name == "per_employer")
                .unwrap();
            assert_eq!(fused_derive(&p.steps, g), None);
        }
        let dec = |x: &str| Value::Decimal(x.parse().expect("decimal"));
        let rows = || {
            vec![
                vec![s("A"), Value::Int(2024), dec("48")],
                vec![s("A"), Value::Int(2023), dec("46")],
                vec![s("A"), Value::Null, dec("1")],
                vec![s("B"), Value::Int(2010), Value::Null],
            ]
        };
        let titles = |p: &Program| {
            let mut leads: Vec<Lead> = Vec::new();
            p.run(&mut payments(rows()), &mut leads).expect("runs");
            leads
                .into_iter()
                .filter(|l| l.step == "leads")
                .map(|l| l.title)
                .collect::<Vec<_>>()
        };
        assert_eq!(titles(&program), ["4 4", "1 0"]);
        assert_eq!(titles(&program), titles(&unfused[0]));
        // A division by zero in the fused derive names the derive step.
        let zero = vec![vec![s("A"), Value::Int(2000), dec("1")]];
        for p in [&program, &unfused[0]] {
            let e = p
                .run(&mut payments(zero.clone()), &mut Vec::<Lead>::new())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("weighed") && e.contains("division by zero"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_scanned_value_of_another_type_is_the_hosts_error_even_when_unused() {
        let program = payments_program();
        let ok = vec![s("A"), Value::Int(2024), Value::Decimal(Decimal::ONE)];
        let nulls = vec![s("B"), Value::Null, Value::Null];
        let mut leads: Vec<Lead> = Vec::new();
        program
            .run(&mut payments(vec![ok.clone(), nulls]), &mut leads)
            .expect("nulls fit every type");
        assert_eq!(leads.len(), 2);
        // `amount` is read by nothing, and is still checked.
        let bad = vec![s("C"), Value::Int(2024), Value::Str("12.5".into())];
        let e = program
            .run(&mut payments(vec![ok, bad]), &mut Vec::<Lead>::new())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "dataset `fund_payments`, field `amount`: expected decimal, found string 12.5"
        );
    }

    /// Hands out `MemoryInput`'s rows as a lazy scan does: a column not
    /// asked for holds a value of another type until it is filled (so a
    /// step that read it unfilled would fail or differ), a row with a
    /// value of another type than its column's is written whole, and
    /// every value written is counted per dataset and field.
    struct LazyInput {
        inner: MemoryInput,
        types: BTreeMap<String, Vec<(String, Type)>>,
        written: std::rc::Rc<std::cell::RefCell<BTreeMap<String, usize>>>,
    }

    struct LazyScan {
        inner: Box<dyn Scan>,
        full: Vec<Value>,
        names: Vec<String>,
        types: Vec<Type>,
        written: std::rc::Rc<std::cell::RefCell<BTreeMap<String, usize>>>,
    }

    impl LazyScan {
        fn write(&self, row: &mut [Value], c: usize) {
            row[c].assign(&self.full[c]);
            *self
                .written
                .borrow_mut()
                .entry(self.names[c].clone())
                .or_default() += 1;
        }
    }

    impl Input for LazyInput {
        fn scan(&mut self, dataset: &str, fields: &[&str]) -> Result<Box<dyn Scan>, HostError> {
            let declared = &self.types[dataset];
            let types = fields
                .iter()
                .map(|f| declared.iter().find(|(n, _)| n == f).expect("declared").1)
                .collect();
            Ok(Box::new(LazyScan {
                inner: self.inner.scan(dataset, fields)?,
                full: vec![Value::Null; fields.len()],
                names: fields.iter().map(|f| format!("{dataset}.{f}")).collect(),
                types,
                written: self.written.clone(),
            }))
        }
    }

    impl Scan for LazyScan {
        fn next_row(&mut self, row: &mut [Value]) -> Result<bool, HostError> {
            if !self.inner.next_row(&mut self.full)? {
                return Ok(false);
            }
            (0..row.len()).for_each(|c| self.write(row, c));
            Ok(true)
        }

        fn next_some(&mut self, row: &mut [Value], now: &[usize]) -> Result<Next, HostError> {
            if !self.inner.next_row(&mut self.full)? {
                return Ok(Next::End);
            }
            if self.full.iter().zip(&self.types).any(|(v, t)| !v.fits(*t)) {
                (0..row.len()).for_each(|c| self.write(row, c));
                return Ok(Next::Row);
            }
            for (c, slot) in row.iter_mut().enumerate() {
                *slot = match self.types[c] {
                    Type::Str => Value::Bool(false),
                    _ => s("unfilled"),
                };
            }
            now.iter().for_each(|&c| self.write(row, c));
            Ok(Next::Some)
        }

        fn fill(&mut self, row: &mut [Value], cols: &[usize]) -> Result<(), HostError> {
            cols.iter().for_each(|&c| self.write(row, c));
            Ok(())
        }
    }

    const LAZY_MODEL: &str = r#"
[datasets]
employers = { fields = ["credit_code", "name", "entity_type", "note"] }
fund_payments = { fields = ["credit_code", "levy_year", "amount", "memo"] }
"#;
    const LAZY_SCHEMAS: [&str; 2] = [
        r#"
name = "employers"
primary_key = ["credit_code"]
fields = [
  { name = "credit_code", type = "string" },
  { name = "name", type = "string" },
  { name = "entity_type", type = "string" },
  { name = "note", type = "string" },
]
"#,
        r#"
name = "fund_payments"
primary_key = ["credit_code", "levy_year"]
fields = [
  { name = "credit_code", type = "string" },
  { name = "levy_year", type = "int" },
  { name = "amount", type = "decimal" },
  { name = "memo", type = "string" },
]
"#,
    ];
    /// Reads every kind of deferral: a filter over a read (payments of
    /// other years never decode their code or amount), columns read only
    /// after joins (`name`, `entity_type`), a semi join, columns nothing
    /// reads (`note`, `memo`).
    const LAZY_PLAN: &str = r#"
[[step]]
name = "employers"
op = "read"
dataset = "employers"

[[step]]
name = "payments"
op = "read"
dataset = "fund_payments"

[[step]]
name = "this_year"
op = "filter"
where = "levy_year == 2024"

[[step]]
name = "paid"
op = "group"
by = "credit_code"
aggregates = { paid = "sum(amount)" }

[[step]]
name = "with_paid"
op = "join"
kind = "left"
input = "employers"
with = "paid"
on = "credit_code"

[[step]]
name = "small"
op = "filter"
where = "coalesce(paid, 0) < 100"

[[step]]
name = "small_companies"
op = "filter"
where = "entity_type == \"企业\""

[[step]]
name = "figures"
op = "derive"
set = { total = "coalesce(paid, 0)" }

[[step]]
name = "leads"
op = "emit"
subject = "credit_code"
title = "{name} {total}"

[[step]]
name = "payers"
op = "join"
kind = "semi"
input = "employers"
with = "paid"
on = "credit_code"

[[step]]
name = "companies"
op = "filter"
where = "entity_type == \"企业\""

[[step]]
name = "payer_leads"
op = "emit"
subject = "credit_code"
title = "{name} pays"
"#;

    fn lazy_inputs(
        employers: Vec<Vec<Value>>,
        payments: Vec<Vec<Value>>,
    ) -> (MemoryInput, LazyInput) {
        let mut input = MemoryInput::default();
        input.add(
            "employers",
            &["credit_code", "name", "entity_type", "note"],
            &["credit_code"],
            employers,
        );
        input.add(
            "fund_payments",
            &["credit_code", "levy_year", "amount", "memo"],
            &["credit_code", "levy_year"],
            payments,
        );
        let types = |fields: &[(&str, Type)]| {
            fields
                .iter()
                .map(|(n, t)| ((*n).to_owned(), *t))
                .collect::<Vec<_>>()
        };
        let lazy = LazyInput {
            inner: input.clone(),
            types: BTreeMap::from([
                (
                    "employers".to_owned(),
                    types(&[
                        ("credit_code", Type::Str),
                        ("name", Type::Str),
                        ("entity_type", Type::Str),
                        ("note", Type::Str),
                    ]),
                ),
                (
                    "fund_payments".to_owned(),
                    types(&[
                        ("credit_code", Type::Str),
                        ("levy_year", Type::Int),
                        ("amount", Type::Decimal),
                        ("memo", Type::Str),
                    ]),
                ),
            ]),
            written: Default::default(),
        };
        (input, lazy)
    }

    fn lazy_program() -> Program {
        let plan = crate::Plan::parse("lazy.plan.toml", LAZY_PLAN).expect("test plan");
        let catalog = crate::Catalog::from_toml(LAZY_MODEL, &LAZY_SCHEMAS).expect("catalog");
        crate::check_plan(&plan, &catalog)
            .expect("checks")
            .bind(&[])
            .expect("binds")
    }

    #[test]
    fn columns_decoded_late_or_never_give_the_leads_of_whole_rows() {
        let dec = |x: &str| Value::Decimal(x.parse().expect("decimal"));
        let employer =
            |code: &str, name: &str, kind: &str| vec![s(code), s(name), s(kind), s("附注")];
        let employers = vec![
            employer("A", "甲公司", "企业"),
            employer("B", "乙事业单位", "事业单位"),
            employer("C", "丙公司", "企业"),
            employer("D", "丁公司", "企业"),
            vec![s("E"), Value::Null, s("企业"), Value::Null],
        ];
        let payment = |code: &str, year: i64, amount: &str| {
            vec![s(code), Value::Int(year), dec(amount), s("备注")]
        };
        let payments = vec![
            payment("A", 2023, "500"),
            payment("A", 2024, "50.5"),
            payment("B", 2024, "10"),
            payment("C", 2022, "1"),
            payment("C", 2023, "1"),
            payment("D", 2024, "300"),
            vec![s("E"), Value::Int(2024), Value::Null, Value::Null],
        ];
        let program = lazy_program();
        let (mut eager, mut lazy) = lazy_inputs(employers, payments);
        let mut expected: Vec<Lead> = Vec::new();
        let stats = program.run(&mut eager, &mut expected).expect("runs");
        let mut leads: Vec<Lead> = Vec::new();
        let lazy_stats = program.run(&mut lazy, &mut leads).expect("runs lazily");
        assert_eq!(leads, expected);
        assert_eq!(lazy_stats, stats);
        let titles: Vec<&str> = leads.iter().map(|l| l.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "甲公司 50.5",
                "丙公司 0",
                " 0",
                "甲公司 pays",
                "丁公司 pays",
                " pays"
            ]
        );
        let written = lazy.written.borrow();
        let count = |field: &str| written.get(field).copied().unwrap_or(0);
        // Each read of payments decodes every year, and the code and
        // amount of this year's four rows only; twice (two emits).
        assert_eq!(count("fund_payments.levy_year"), 2 * 7);
        assert_eq!(count("fund_payments.credit_code"), 2 * 4);
        assert_eq!(count("fund_payments.amount"), 2 * 4);
        // Employers: codes always; the type, read after the joins, of
        // the four rows the first filter keeps (all five where the first
        // filter reads it), names only of the rows that pass every filter.
        assert_eq!(count("employers.credit_code"), 2 * 5);
        assert_eq!(count("employers.entity_type"), 4 + 5);
        assert_eq!(count("employers.name"), 3 + 3);
        assert_eq!(count("employers.note"), 0);
        assert_eq!(count("fund_payments.memo"), 0);
    }

    /// Employers joined with this year's payments, a filter over a read:
    /// a join that checks the other side's order itself.
    const MERGE_PLAN: &str = r#"
[[step]]
name = "employers"
op = "read"
dataset = "employers"

[[step]]
name = "payments"
op = "read"
dataset = "fund_payments"

[[step]]
name = "this_year"
op = "filter"
where = "levy_year == 2024"

[[step]]
name = "joined"
op = "join"
input = "employers"
with = "this_year"
on = "credit_code"

[[step]]
name = "leads"
op = "emit"
subject = "credit_code"
title = "{name} {amount}"
"#;

    /// The leads of [`MERGE_PLAN`] over employers and payments with these
    /// codes, in this order, or the error.
    fn merge(employers: &[&str], payments: &[&str]) -> Result<Vec<String>, String> {
        let plan = crate::Plan::parse("merge.plan.toml", MERGE_PLAN).expect("test plan");
        let catalog = crate::Catalog::from_toml(LAZY_MODEL, &LAZY_SCHEMAS).expect("catalog");
        let program = crate::check_plan(&plan, &catalog)
            .expect("checks")
            .bind(&[])
            .expect("binds");
        let employers = employers
            .iter()
            .map(|c| vec![s(c), s(&format!("{c}公司")), s("企业"), Value::Null])
            .collect();
        let payments = payments
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let amount = Value::Decimal(Decimal::from(i as i64));
                vec![s(c), Value::Int(2024), amount, Value::Null]
            })
            .collect();
        // Kept in the order given: no key to sort them on.
        let mut input = MemoryInput::default();
        input.add(
            "employers",
            &["credit_code", "name", "entity_type", "note"],
            &[],
            employers,
        );
        input.add(
            "fund_payments",
            &["credit_code", "levy_year", "amount", "memo"],
            &[],
            payments,
        );
        let mut leads: Vec<Lead> = Vec::new();
        program
            .run(&mut input, &mut leads)
            .map_err(|e| e.to_string())?;
        Ok(leads.into_iter().map(|l| l.title).collect())
    }

    #[test]
    fn a_merge_join_refuses_either_side_out_of_order_and_shares_partners() {
        let unsorted = |a: &str, b: &str| {
            format!("the rows joined with are not sorted on the join key: ({a}) comes after ({b})")
        };
        let refused = |employers: &[&str], payments: &[&str], a: &str, b: &str| {
            let e = merge(employers, payments).expect_err("out of order");
            assert!(e.contains(&unsorted(a, b)), "{e}");
        };
        // After a partner of the current key.
        refused(&["A", "B", "C"], &["B", "A"], "A", "B");
        refused(&["A", "B"], &["A", "B", "B", "A"], "A", "B");
        // After a row without partner.
        refused(&["C"], &["B", "A"], "A", "B");
        // After a partner of an earlier key, or a row passed over for it.
        refused(&["A", "C"], &["A", "C", "B"], "B", "C");
        refused(&["A", "D"], &["A", "B", "C", "A"], "A", "C");
        refused(&["B", "D"], &["A", "B", "A"], "A", "B");
        // The left side out of order, after a key with partners or one
        // without.
        let left_unsorted = |a: &str, b: &str| {
            format!("the input rows are not sorted on the join key: ({a}) comes after ({b})")
        };
        for payments in [&["A", "B"][..], &["C"], &[]] {
            let e = merge(&["B", "A"], payments).expect_err("out of order");
            assert!(e.contains(&left_unsorted("A", "B")), "{e}");
        }
        // Repeated left keys share their partners.
        assert_eq!(
            merge(&["A", "A", "B", "B"], &["A", "B", "B"]),
            Ok(vec![
                "A公司 0",
                "A公司 0",
                "B公司 1",
                "B公司 2",
                "B公司 1",
                "B公司 2"
            ]
            .into_iter()
            .map(String::from)
            .collect())
        );
        // In order, with repeated keys and rows without partners.
        assert_eq!(
            merge(&["A", "B", "D", "F"], &["A", "A", "C", "D", "E", "F", "G"]),
            Ok(vec!["A公司 0", "A公司 1", "D公司 3", "F公司 5"]
                .into_iter()
                .map(String::from)
                .collect())
        );
    }

    #[test]
    fn a_value_of_another_type_in_a_column_never_read_is_refused_when_reading_lazily() {
        let employers = vec![
            vec![s("A"), s("甲公司"), s("企业"), s("附注")],
            vec![s("B"), s("乙公司"), s("企业"), Value::Int(7)],
        ];
        let program = lazy_program();
        let (mut eager, mut lazy) = lazy_inputs(employers, Vec::new());
        let expected = program
            .run(&mut eager, &mut Vec::<Lead>::new())
            .unwrap_err();
        let e = program.run(&mut lazy, &mut Vec::<Lead>::new()).unwrap_err();
        assert_eq!(e.to_string(), expected.to_string());
        assert_eq!(
            e.to_string(),
            "dataset `employers`, field `note`: expected string, found int 7"
        );
    }
}
