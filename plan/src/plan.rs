//! The parsed plan: a list of named steps, each one typed operator whose
//! arguments keep their positions in the file.
//!
//! ```toml
//! format = 1
//!
//! [[step]]
//! name = "payments"
//! op = "read"
//! dataset = "fund_payments"
//!
//! [[step]]
//! name = "this_year"
//! op = "filter"                 # input defaults to the step before
//! where = "levy_year == $levy_year && paid_on <= $as_of"
//!
//! [[step]]
//! name = "paid"
//! op = "group"
//! by = "credit_code"
//! aggregates = { paid = "sum(amount)" }
//! ```
//!
//! [`Plan::parse`] reads this; the operators and their arguments are
//! documented on [`Op`].

use crate::expr::Expr;
use crate::span::{Pos, Spanned};

/// A name written in the plan (a step, a field, a dataset) and where.
pub type Name = Spanned<String>;

/// A parsed plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The file it was parsed from, as the caller named it (errors only;
    /// not part of the plan's meaning or hash).
    pub file: String,
    /// The format version (`format = 1`).
    pub format: u32,
    /// A description for readers.
    pub description: Option<String>,
    /// Chinese labels of parameters and fields for explanations
    /// (`[labels] levy_year = "征收年度"`), in file order.
    pub labels: Vec<(Name, String)>,
    /// The steps, in order; a step reads only earlier steps.
    pub steps: Vec<Step>,
}

impl Plan {
    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name.value == name)
    }

    /// The label of a parameter or field, if the plan gives one.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n.value == name)
            .map(|(_, l)| l.as_str())
    }
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Its name, unique in the plan.
    pub name: Name,
    /// Where its table starts.
    pub pos: Pos,
    /// A note for readers, shown by `model explain`.
    pub note: Option<String>,
    /// The legal basis of this step, shown by `model explain`.
    pub basis: Option<String>,
    /// What it does.
    pub op: Op,
}

/// The operators. Every operator but `read` has an `input`: the name of an
/// earlier step (by default the step just before). Rows flow in the
/// order of their dataset's primary key, and every operator but `sort`
/// keeps its input's order.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `op = "read"`: the rows of a dataset the model declares, sorted by
    /// its primary key. `fields` (default: all declared) picks columns.
    Read {
        /// `dataset`
        dataset: Name,
        /// `fields`
        fields: Option<Vec<Name>>,
    },
    /// `op = "filter"`: keeps the rows where `where` is true.
    Filter {
        /// `input`
        input: Name,
        /// `where`
        cond: Expr,
    },
    /// `op = "derive"`: adds fields computed from each row (`set = { name
    /// = "expression" }`); the expressions see the input's fields only,
    /// so a field derived from another derived field needs a second step.
    Derive {
        /// `input`
        input: Name,
        /// `set`, in file order.
        fields: Vec<(Name, Expr)>,
    },
    /// `op = "select"`: keeps only the named fields.
    Select {
        /// `input`
        input: Name,
        /// `fields`
        fields: Vec<Name>,
    },
    /// `op = "join"`: pairs each input row with the rows of step `with`
    /// that have the same key (`on`, and `with_on` when the other side
    /// names it differently). Both sides must be sorted on the key: the
    /// join is one streaming merge.
    Join {
        /// `input`
        input: Name,
        /// `with`
        with: Name,
        /// `kind`: inner (default), left, semi, anti.
        kind: JoinKind,
        /// `on`
        on: Vec<Name>,
        /// `with_on` (default: `on`).
        with_on: Vec<Name>,
        /// `prefix` for the other side's fields, when names clash.
        prefix: Option<Name>,
    },
    /// `op = "lookup"`: for each input row, the records of dataset
    /// `dataset` whose secondary index `index` (declared in the dataset's
    /// schema) has the value of `key`, an expression over the input row.
    /// Unlike `join` it needs no order on either side: the host finds the
    /// records through the index, one lookup per input row, and holds one
    /// lookup's records at a time. Output rows keep the input's order,
    /// one per record found, in the index's order.
    Lookup {
        /// `input`
        input: Name,
        /// `dataset`: a dataset the model declares.
        dataset: Name,
        /// `index`: one of the dataset's `[indexes]`.
        index: Name,
        /// `key`: an expression of the indexed field's type.
        key: Expr,
        /// `kind`: inner (default), left, semi, anti.
        kind: JoinKind,
        /// `fields` (default: every declared field but the indexed one,
        /// whose value is the key) for inner and left lookups.
        fields: Option<Vec<Name>>,
        /// `prefix` for the dataset's fields, when names clash.
        prefix: Option<Name>,
    },
    /// `op = "group"`: one row per distinct `by`, with `aggregates`
    /// (`{ paid = "sum(amount)" }`). Streams when `by` leads the input's
    /// order; otherwise holds one accumulator per group. With `by = []`
    /// the whole input is one group, and gives its one row even when the
    /// input is empty (aggregates over no values: count 0, sum 0, min,
    /// max, list and collect_distinct null, any false, all true), as
    /// SQL's aggregate without GROUP BY does.
    Group {
        /// `input`
        input: Name,
        /// `by`
        by: Vec<Name>,
        /// `aggregates`, in file order.
        aggregates: Vec<(Name, Aggregate)>,
    },
    /// `op = "sort"`: reorders rows (`by = ["place_id", "thefts desc"]`).
    /// Holds the whole input: use it only where a merge needs another
    /// order.
    Sort {
        /// `input`
        input: Name,
        /// `by`
        by: Vec<SortKey>,
    },
    /// `op = "rank"`: numbers rows within each `by` group (or overall)
    /// in `order_by` order, ties sharing the best rank (1, 2, 2, 4); adds
    /// the rank as field `rank` and, with `size`, the group's row count.
    /// Holds one group (or the whole input) at a time.
    Rank {
        /// `input`
        input: Name,
        /// `by` (default: none, rank overall)
        by: Vec<Name>,
        /// `order_by`
        order: Vec<SortKey>,
        /// `rank` (default `rank`)
        rank: Name,
        /// `size`
        size: Option<Name>,
        /// `ties = "in_order"`: rows that tie are numbered in the order
        /// they come (1, 2, 3, 4) instead of sharing a rank (`"shared"`,
        /// the default).
        ties_in_order: bool,
    },
    /// `op = "window"`: for each row, counts the rows of its `by` group
    /// whose `time` lies from `days` days before the row's time up to it,
    /// both ends included, so `days = 7` spans eight calendar days; adds
    /// the count as field `count`.
    Window {
        /// `input`
        input: Name,
        /// `by`
        by: Vec<Name>,
        /// `time`: a date expression.
        time: Expr,
        /// `days`: an integer literal or parameter, 0 to
        /// [`MAX_WINDOW_DAYS`].
        days: Expr,
        /// `count`: the new field's name.
        count: Name,
    },
    /// `op = "emit"`: one lead per input row.
    Emit {
        /// `input`
        input: Name,
        /// `subject`: the lead's key (credit code, case number…).
        subject: Expr,
        /// `subject_personal`: the subject is personal data.
        subject_personal: bool,
        /// `title`: text with `{expression}` parts.
        title: Template,
        /// `amount`: yuan, exact, rounded half-up to the fen on output.
        amount: Option<Expr>,
        /// `evidence`, in file order.
        evidence: Vec<(Name, Expr)>,
        /// `personal`: evidence names that show personal data.
        personal: Vec<Name>,
        /// `optional`: evidence names left out of the lead when their
        /// value is null (evidence that only some leads have).
        optional: Vec<Name>,
    },
    /// `op = "union"`: the rows of all `inputs` (steps with the same
    /// fields, in the same order, of the same types), merged on the order
    /// they share, so the result keeps it; rows of equal keys come in the
    /// order of `inputs`.
    Union {
        /// `inputs`
        inputs: Vec<Name>,
    },
}

impl Op {
    /// The operator's name as written in `op = "…"`.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Read { .. } => "read",
            Op::Filter { .. } => "filter",
            Op::Derive { .. } => "derive",
            Op::Select { .. } => "select",
            Op::Join { .. } => "join",
            Op::Lookup { .. } => "lookup",
            Op::Group { .. } => "group",
            Op::Sort { .. } => "sort",
            Op::Rank { .. } => "rank",
            Op::Window { .. } => "window",
            Op::Emit { .. } => "emit",
            Op::Union { .. } => "union",
        }
    }

    /// The steps this one reads.
    pub fn inputs(&self) -> Vec<&Name> {
        match self {
            Op::Read { .. } => vec![],
            Op::Join { input, with, .. } => vec![input, with],
            Op::Filter { input, .. }
            | Op::Derive { input, .. }
            | Op::Select { input, .. }
            | Op::Lookup { input, .. }
            | Op::Group { input, .. }
            | Op::Sort { input, .. }
            | Op::Rank { input, .. }
            | Op::Window { input, .. }
            | Op::Emit { input, .. } => vec![input],
            Op::Union { inputs } => inputs.iter().collect(),
        }
    }
}

/// The most days a `window` may look back: 100 years of 366 days. Far
/// beyond any rule ("within N days" is days or months), and small enough
/// that the window's first day is a date the plan can represent (years
/// 0001–9999) for any date after the first century.
pub const MAX_WINDOW_DAYS: i64 = 36_600;

/// The operators' names, as errors list them.
pub const OPS: &[&str] = &[
    "read", "filter", "derive", "select", "join", "group", "sort", "rank", "window", "emit",
    "union", "lookup",
];

/// How a join or a lookup treats rows without a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Only rows with a partner, once per partner.
    Inner,
    /// Every input row; the other side's fields are null without a partner.
    Left,
    /// Input rows that have a partner, once, without its fields.
    Semi,
    /// Input rows that have no partner.
    Anti,
}

impl JoinKind {
    /// The name as written in `kind = "…"`.
    pub fn name(self) -> &'static str {
        match self {
            JoinKind::Inner => "inner",
            JoinKind::Left => "left",
            JoinKind::Semi => "semi",
            JoinKind::Anti => "anti",
        }
    }
}

/// An aggregate of a group step.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// Which.
    pub func: AggFunc,
    /// Its argument (none for `count()`).
    pub arg: Option<Expr>,
    /// The separator of `list(x, sep)`.
    pub sep: Option<String>,
    /// Where it is written.
    pub pos: Pos,
}

/// The aggregate functions ([`crate::expr::AGGREGATES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// `count()` or `count(cond)`
    Count,
    /// `sum(x)`
    Sum,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
    /// `any(cond)`
    Any,
    /// `all(cond)`
    All,
    /// `collect_distinct(x)`
    CollectDistinct,
    /// `list(x, sep)`
    List,
}

impl Aggregate {
    /// The aggregate as the call it is written as (`sum(amount)`,
    /// `list(x, '; ')`).
    pub fn call(&self) -> Expr {
        let mut args: Vec<Expr> = self.arg.iter().cloned().collect();
        if let Some(sep) = &self.sep {
            args.push(Expr {
                kind: crate::expr::ExprKind::Str(sep.clone()),
                pos: self.pos,
            });
        }
        Expr {
            kind: crate::expr::ExprKind::Call(self.func.name().into(), args),
            pos: self.pos,
        }
    }
}

impl AggFunc {
    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Any => "any",
            AggFunc::All => "all",
            AggFunc::CollectDistinct => "collect_distinct",
            AggFunc::List => "list",
        }
    }

    /// The function called `name`.
    pub fn from_name(name: &str) -> Option<AggFunc> {
        [
            AggFunc::Count,
            AggFunc::Sum,
            AggFunc::Min,
            AggFunc::Max,
            AggFunc::Any,
            AggFunc::All,
            AggFunc::CollectDistinct,
            AggFunc::List,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }
}

/// A field to order by.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// The field.
    pub field: Name,
    /// Largest first (`"thefts desc"`).
    pub descending: bool,
}

/// A title with `{expression}` parts; `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Text and expressions, in order.
    pub parts: Vec<TemplatePart>,
}

/// A part of a [`Template`].
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    /// Literal text.
    Text(String),
    /// An expression whose value is written in.
    Expr(Expr),
}
