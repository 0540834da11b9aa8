//! Reading a plan file: TOML walked key by key with `toml_edit`, so that
//! every key and value keeps its line and column, unknown keys are
//! refused by name, and a missing argument is reported at its step.

use crate::error::{Located, PlanError};
use crate::expr::{parser::parse_located, Expr, ExprKind};
use crate::plan::{
    AggFunc, Aggregate, JoinKind, Name, Op, Plan, SortKey, Step, Template, TemplatePart, OPS,
};
use crate::span::{LineIndex, Origin, Pos, Spanned};
use toml_edit::{Item, TableLike, Value as TomlValue};

/// The largest plan file accepted, in bytes.
pub const MAX_PLAN_BYTES: usize = 1 << 20;

/// The most steps a plan may have.
pub const MAX_STEPS: usize = 500;

impl Plan {
    /// Parses the text of a plan file; `file` names it in errors.
    ///
    /// ```
    /// let plan = jiandu_plan::Plan::parse("demo.plan.toml", r#"
    /// [[step]]
    /// name = "employers"
    /// op = "read"
    /// dataset = "employers"
    /// "#).unwrap();
    /// assert_eq!(plan.steps[0].op.name(), "read");
    /// ```
    pub fn parse(file: &str, text: &str) -> Result<Plan, PlanError> {
        parse_plan(file, text).map_err(|e| e.in_file(file))
    }
}

struct Src<'a> {
    text: &'a str,
    lines: LineIndex,
}

impl Src<'_> {
    fn pos(&self, span: Option<std::ops::Range<usize>>) -> Option<Pos> {
        span.map(|s| self.lines.pos(self.text, s.start))
    }

    /// Where the characters of a string value start, and whether they are
    /// the file's characters one for one.
    fn origin(&self, v: &TomlValue, value: &str, fallback: Pos) -> Origin {
        let Some(span) = v.span() else {
            return Origin {
                start: fallback,
                exact: false,
            };
        };
        let raw = &self.text[span.clone()];
        let (open, close) = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            (3, 3)
        } else {
            (1, 1)
        };
        if raw.len() < open + close {
            return Origin {
                start: fallback,
                exact: false,
            };
        }
        let mut start = span.start + open;
        let mut inner = &raw[open..raw.len() - close];
        // A multi-line string drops a newline right after its opening quotes.
        if open == 3 {
            if let Some(rest) = inner
                .strip_prefix("\r\n")
                .or_else(|| inner.strip_prefix('\n'))
            {
                start += inner.len() - rest.len();
                inner = rest;
            }
        }
        Origin {
            start: self.lines.pos(self.text, start),
            exact: inner == value,
        }
    }
}

/// One table of the file (the root or a step) being read.
struct Table<'a, 'b> {
    src: &'b Src<'a>,
    t: &'b dyn TableLike,
    pos: Pos,
    /// What the table is, for messages: "step `x` (filter)".
    what: String,
}

impl<'b> Table<'_, 'b> {
    fn key_pos(&self, key: &str) -> Pos {
        self.t
            .get_key_value(key)
            .and_then(|(k, _)| self.src.pos(k.span()))
            .unwrap_or(self.pos)
    }

    fn value_pos(&self, key: &str) -> Pos {
        self.t
            .get(key)
            .and_then(|i| self.src.pos(i.span()))
            .unwrap_or_else(|| self.key_pos(key))
    }

    fn only(&self, allowed: &[&str]) -> Result<(), Located> {
        for (k, _) in self.t.iter() {
            if !allowed.contains(&k) {
                return Err(Located::new(
                    self.key_pos(k),
                    format!(
                        "unknown key `{k}` in {}; expected one of: {}",
                        self.what,
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn missing(&self, key: &str, what: &str) -> Located {
        Located::new(self.pos, format!("{} needs `{key}`: {what}", self.what))
    }

    fn wrong(&self, key: &str, expected: &str) -> Located {
        let found = match self.t.get(key) {
            Some(Item::Value(v)) => v.type_name(),
            Some(i) => i.type_name(),
            None => "nothing",
        };
        Located::new(
            self.value_pos(key),
            format!(
                "`{key}` in {}: expected {expected}, found {found}",
                self.what
            ),
        )
    }

    fn opt_str(&self, key: &str) -> Result<Option<(String, Origin)>, Located> {
        match self.t.get(key) {
            None => Ok(None),
            Some(Item::Value(v @ TomlValue::String(s))) => {
                let value = s.value().clone();
                let origin = self.src.origin(v, &value, self.value_pos(key));
                Ok(Some((value, origin)))
            }
            Some(_) => Err(self.wrong(key, "text in quotes")),
        }
    }

    fn str(&self, key: &str, what: &str) -> Result<(String, Origin), Located> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key, what))
    }

    fn name(&self, key: &str, what: &str) -> Result<Name, Located> {
        let (v, _) = self.str(key, what)?;
        let pos = self.value_pos(key);
        check_ident(&v, pos, key)?;
        Ok(Spanned::new(v, pos))
    }

    fn opt_name(&self, key: &str) -> Result<Option<Name>, Located> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some((v, _)) => {
                let pos = self.value_pos(key);
                check_ident(&v, pos, key)?;
                Ok(Some(Spanned::new(v, pos)))
            }
        }
    }

    fn expr(&self, key: &str, what: &str) -> Result<Expr, Located> {
        let (text, origin) = self.str(key, what)?;
        parse_located(&text, &origin)
    }

    /// A name or a list of names (`by = "credit_code"` or `by = ["a", "b"]`).
    fn names(&self, key: &str) -> Result<Option<Vec<(String, Pos)>>, Located> {
        let Some(item) = self.t.get(key) else {
            return Ok(None);
        };
        let expected = "a name in quotes or a list of names";
        match item.as_value() {
            Some(TomlValue::String(s)) => Ok(Some(vec![(s.value().clone(), self.value_pos(key))])),
            Some(TomlValue::Array(a)) => {
                let mut out = Vec::new();
                for v in a.iter() {
                    let pos = self
                        .src
                        .pos(v.span())
                        .unwrap_or_else(|| self.value_pos(key));
                    match v.as_str() {
                        Some(s) => out.push((s.to_owned(), pos)),
                        None => {
                            return Err(Located::new(
                                pos,
                                format!(
                                    "`{key}` in {}: expected {expected}, found {}",
                                    self.what,
                                    v.type_name()
                                ),
                            ))
                        }
                    }
                }
                Ok(Some(out))
            }
            _ => Err(self.wrong(key, expected)),
        }
    }

    fn ident_list(&self, key: &str) -> Result<Option<Vec<Name>>, Located> {
        let Some(list) = self.names(key)? else {
            return Ok(None);
        };
        list.into_iter()
            .map(|(n, p)| {
                check_ident(&n, p, key)?;
                Ok(Spanned::new(n, p))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, Located> {
        match self.t.get(key) {
            None => Ok(None),
            Some(i) => i
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "true or false")),
        }
    }

    /// A table of name → text (`set`, `aggregates`, `evidence`), in file order.
    fn entries(&self, key: &str, what: &str) -> Result<Vec<(Name, String, Origin)>, Located> {
        let Some(item) = self.t.get(key) else {
            return Err(self.missing(key, what));
        };
        let Some(table) = item.as_table_like() else {
            return Err(self.wrong(key, "a table of name = \"expression\""));
        };
        let mut out = Vec::new();
        for (k, v) in table.iter() {
            let kpos = table
                .get_key_value(k)
                .and_then(|(key, _)| self.src.pos(key.span()))
                .unwrap_or_else(|| self.value_pos(key));
            check_ident(k, kpos, key)?;
            let Some(val @ TomlValue::String(s)) = v.as_value() else {
                let found = v.as_value().map_or(v.type_name(), |x| x.type_name());
                return Err(Located::new(
                    kpos,
                    format!(
                        "`{key}.{k}` in {}: expected an expression in quotes, found {found}",
                        self.what
                    ),
                ));
            };
            let origin = self.src.origin(val, s.value(), kpos);
            out.push((Spanned::new(k.to_owned(), kpos), s.value().clone(), origin));
        }
        if out.is_empty() {
            return Err(Located::new(
                self.value_pos(key),
                format!("`{key}` in {} is empty; {what}", self.what),
            ));
        }
        Ok(out)
    }
}

fn check_ident(name: &str, pos: Pos, key: &str) -> Result<(), Located> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(Located::new(
            pos,
            format!("`{key}`: expected a name of ASCII letters, digits and _ (at most 64), found `{name}`"),
        ))
    }
}

fn parse_plan(_file: &str, text: &str) -> Result<Plan, Located> {
    if text.len() > MAX_PLAN_BYTES {
        return Err(Located::new(
            Pos::new(1, 1),
            format!(
                "expected a plan of at most {MAX_PLAN_BYTES} bytes, found {}",
                text.len()
            ),
        ));
    }
    let src = Src {
        text,
        lines: LineIndex::new(text),
    };
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        let pos = src.pos(e.span()).unwrap_or(Pos::new(1, 1));
        Located::new(pos, format!("not valid TOML: {}", e.message()))
    })?;
    let root = Table {
        src: &src,
        t: doc.as_table(),
        pos: Pos::new(1, 1),
        what: "the plan".into(),
    };
    root.only(&["format", "description", "labels", "step"])?;
    let format = match root.t.get("format") {
        None => 1,
        Some(i) => match i.as_integer() {
            Some(1) => 1,
            _ => return Err(root.wrong("format", "1 (the only plan format so far)")),
        },
    };
    let description = root.opt_str("description")?.map(|(s, _)| s);
    let mut labels = Vec::new();
    if let Some(item) = root.t.get("labels") {
        let t = item
            .as_table_like()
            .ok_or_else(|| root.wrong("labels", "a table of name = \"中文名称\""))?;
        for (k, v) in t.iter() {
            let pos = t
                .get_key_value(k)
                .and_then(|(key, _)| src.pos(key.span()))
                .unwrap_or(Pos::new(1, 1));
            let label = v.as_str().ok_or_else(|| {
                Located::new(
                    pos,
                    format!(
                        "label `{k}`: expected text in quotes, found {}",
                        v.type_name()
                    ),
                )
            })?;
            labels.push((Spanned::new(k.to_owned(), pos), label.to_owned()));
        }
    }
    let mut steps: Vec<Step> = Vec::new();
    match root.t.get("step") {
        None => {
            return Err(Located::new(
                Pos::new(1, 1),
                "a plan needs steps: `[[step]]` tables with `name` and `op`",
            ))
        }
        Some(Item::ArrayOfTables(a)) => {
            if a.len() > MAX_STEPS {
                return Err(Located::new(
                    Pos::new(1, 1),
                    format!("expected at most {MAX_STEPS} steps, found {}", a.len()),
                ));
            }
            for t in a.iter() {
                let pos = src.pos(t.span()).unwrap_or(Pos::new(1, 1));
                let prev = steps.last().map(|s| s.name.clone());
                steps.push(parse_step(&src, t, pos, prev)?);
            }
        }
        Some(_) => return Err(root.wrong("step", "`[[step]]` tables")),
    }
    Ok(Plan {
        file: _file.to_owned(),
        format,
        description,
        labels,
        steps,
    })
}

const COMMON: &[&str] = &["name", "op", "note", "basis"];

fn keys(extra: &[&'static str]) -> Vec<&'static str> {
    COMMON.iter().chain(extra).copied().collect()
}

fn parse_step(
    src: &Src<'_>,
    t: &dyn TableLike,
    pos: Pos,
    prev: Option<Name>,
) -> Result<Step, Located> {
    let mut tab = Table {
        src,
        t,
        pos,
        what: "a step".into(),
    };
    let name = tab.name(
        "name",
        "the step's name, which later steps use as their `input`",
    )?;
    tab.what = format!("step `{}`", name.value);
    let (op, _) = tab.str("op", &format!("the operator, one of: {}", OPS.join(", ")))?;
    if !OPS.contains(&op.as_str()) {
        return Err(Located::new(
            tab.value_pos("op"),
            format!("unknown op `{op}`; expected one of: {}", OPS.join(", ")),
        ));
    }
    tab.what = format!("step `{}` ({op})", name.value);
    let note = tab.opt_str("note")?.map(|(s, _)| s);
    let basis = tab.opt_str("basis")?.map(|(s, _)| s);
    let input = |tab: &Table<'_, '_>| -> Result<Name, Located> {
        match tab.opt_name("input")? {
            Some(n) => Ok(n),
            None => prev.clone().ok_or_else(|| {
                tab.missing(
                    "input",
                    "the step whose rows it takes (there is no step before it)",
                )
            }),
        }
    };
    let op = match op.as_str() {
        "read" => {
            tab.only(&keys(&["dataset", "fields"]))?;
            Op::Read {
                dataset: tab.name("dataset", "the dataset to read, as model.toml declares it")?,
                fields: tab.ident_list("fields")?,
            }
        }
        "filter" => {
            tab.only(&keys(&["input", "where"]))?;
            Op::Filter {
                input: input(&tab)?,
                cond: tab.expr(
                    "where",
                    "the condition rows must meet, e.g. \"year == $levy_year - 1\"",
                )?,
            }
        }
        "derive" => {
            tab.only(&keys(&["input", "set"]))?;
            let fields = tab
                .entries(
                    "set",
                    "give each new field an expression: set = { gap = \"due - paid\" }",
                )?
                .into_iter()
                .map(|(n, text, origin)| Ok((n, parse_located(&text, &origin)?)))
                .collect::<Result<_, Located>>()?;
            Op::Derive {
                input: input(&tab)?,
                fields,
            }
        }
        "select" => {
            tab.only(&keys(&["input", "fields"]))?;
            Op::Select {
                input: input(&tab)?,
                fields: tab
                    .ident_list("fields")?
                    .ok_or_else(|| tab.missing("fields", "the fields to keep"))?,
            }
        }
        "join" => {
            tab.only(&keys(&["input", "with", "kind", "on", "with_on", "prefix"]))?;
            let kind = join_kind(&tab)?;
            let on = tab
                .ident_list("on")?
                .ok_or_else(|| tab.missing("on", "the key field(s) both sides are sorted on"))?;
            let with_on = tab.ident_list("with_on")?.unwrap_or_else(|| on.clone());
            if with_on.len() != on.len() {
                return Err(Located::new(
                    tab.value_pos("with_on"),
                    format!(
                        "`with_on` names {} fields; expected as many as `on` ({})",
                        with_on.len(),
                        on.len()
                    ),
                ));
            }
            Op::Join {
                input: input(&tab)?,
                with: tab.name("with", "the step to join with")?,
                kind,
                on,
                with_on,
                prefix: tab
                    .opt_str("prefix")?
                    .map(|(p, o)| Spanned::new(p, o.start)),
            }
        }
        "lookup" => {
            tab.only(&keys(&[
                "input", "dataset", "index", "key", "kind", "fields", "prefix",
            ]))?;
            let kind = join_kind(&tab)?;
            let fields = tab.ident_list("fields")?;
            let prefix = tab
                .opt_str("prefix")?
                .map(|(p, o)| Spanned::new(p, o.start));
            if matches!(kind, JoinKind::Semi | JoinKind::Anti) {
                // A semi or anti lookup only asks whether records exist.
                for k in ["fields", "prefix"] {
                    if tab.t.contains_key(k) {
                        return Err(Located::new(
                            tab.key_pos(k),
                            format!(
                                "`{k}` in {}: a {} lookup adds no fields; expected no `{k}` (or kind inner or left)",
                                tab.what,
                                kind.name()
                            ),
                        ));
                    }
                }
            }
            Op::Lookup {
                input: input(&tab)?,
                dataset: tab.name(
                    "dataset",
                    "the dataset to look records up in, as model.toml declares it",
                )?,
                index: tab.name(
                    "index",
                    "the dataset's index to look up by, as its schema declares it in [indexes]",
                )?,
                key: tab.expr(
                    "key",
                    "the value to look up for each row, e.g. \"suspect_id\"",
                )?,
                kind,
                fields,
                prefix,
            }
        }
        "group" => {
            tab.only(&keys(&["input", "by", "aggregates"]))?;
            let aggregates = tab
                .entries(
                    "aggregates",
                    "name each aggregate: aggregates = { paid = \"sum(amount)\" }",
                )?
                .into_iter()
                .map(|(n, text, origin)| Ok((n, aggregate(&text, &origin)?)))
                .collect::<Result<_, Located>>()?;
            Op::Group {
                input: input(&tab)?,
                by: tab
                    .ident_list("by")?
                    .ok_or_else(|| tab.missing("by", "the field(s) to group by"))?,
                aggregates,
            }
        }
        "sort" => {
            tab.only(&keys(&["input", "by"]))?;
            Op::Sort {
                input: input(&tab)?,
                by: sort_keys(&tab, "by")?
                    .ok_or_else(|| tab.missing("by", "the field(s) to sort by"))?,
            }
        }
        "rank" => {
            tab.only(&keys(&["input", "by", "order_by", "rank", "size", "ties"]))?;
            let ties_in_order = match tab.opt_str("ties")? {
                None => false,
                Some((t, o)) => match t.as_str() {
                    "shared" => false,
                    "in_order" => true,
                    _ => {
                        return Err(Located::new(
                            o.start,
                            format!("unknown `ties` `{t}`; expected shared (1, 2, 2, 4) or in_order (1, 2, 3, 4)"),
                        ))
                    }
                },
            };
            Op::Rank {
                ties_in_order,
                input: input(&tab)?,
                by: tab.ident_list("by")?.unwrap_or_default(),
                order: sort_keys(&tab, "order_by")?.ok_or_else(|| {
                    tab.missing("order_by", "the field(s) to rank by, e.g. \"thefts desc\"")
                })?,
                rank: tab
                    .opt_name("rank")?
                    .unwrap_or_else(|| Spanned::new("rank".into(), pos)),
                size: tab.opt_name("size")?,
            }
        }
        "window" => {
            tab.only(&keys(&["input", "by", "time", "days", "count"]))?;
            let days = match tab.t.get("days").and_then(Item::as_value) {
                Some(TomlValue::Integer(i)) => Expr {
                    kind: ExprKind::Int(*i.value()),
                    pos: tab.value_pos("days"),
                },
                Some(TomlValue::String(_)) => tab.expr("days", "")?,
                Some(_) => {
                    return Err(tab.wrong(
                        "days",
                        "a number of days or a parameter such as \"$repeat_days\"",
                    ))
                }
                None => return Err(tab.missing("days", "the window's length in days")),
            };
            Op::Window {
                input: input(&tab)?,
                by: tab.ident_list("by")?.unwrap_or_default(),
                time: tab.expr("time", "the date each row happened, e.g. \"date(seen_at)\"")?,
                days,
                count: tab.name("count", "the name of the new field holding the count")?,
            }
        }
        "emit" => {
            tab.only(&keys(&[
                "input",
                "subject",
                "subject_personal",
                "title",
                "amount",
                "evidence",
                "personal",
                "optional",
            ]))?;
            let (title, origin) =
                tab.str("title", "the lead's title, e.g. \"{name} 未足额缴纳\"")?;
            let amount = match tab.opt_str("amount")? {
                None => None,
                Some((text, origin)) => Some(parse_located(&text, &origin)?),
            };
            let evidence = match tab.t.get("evidence") {
                None => Vec::new(),
                Some(_) => tab
                    .entries(
                        "evidence",
                        "name each piece of evidence: evidence = { due = \"yuan(due)\" }",
                    )?
                    .into_iter()
                    .map(|(n, text, origin)| Ok((n, parse_located(&text, &origin)?)))
                    .collect::<Result<_, Located>>()?,
            };
            Op::Emit {
                input: input(&tab)?,
                subject: tab.expr("subject", "the lead's key, e.g. \"credit_code\"")?,
                subject_personal: tab.bool("subject_personal")?.unwrap_or(false),
                title: template(&title, &origin)?,
                amount,
                evidence,
                personal: tab.ident_list("personal")?.unwrap_or_default(),
                optional: tab.ident_list("optional")?.unwrap_or_default(),
            }
        }
        "union" => {
            tab.only(&keys(&["inputs"]))?;
            let inputs = tab.ident_list("inputs")?.ok_or_else(|| {
                tab.missing(
                    "inputs",
                    "the steps whose rows it merges, e.g. inputs = [\"a\", \"b\"]",
                )
            })?;
            if inputs.len() < 2 {
                return Err(Located::new(
                    tab.value_pos("inputs"),
                    format!(
                        "`inputs` names {} step; expected at least two",
                        inputs.len()
                    ),
                ));
            }
            Op::Union { inputs }
        }
        _ => unreachable!("op names are checked against OPS above"),
    };
    Ok(Step {
        name,
        pos,
        note,
        basis,
        op,
    })
}

/// `kind` of a join or a lookup (default inner).
fn join_kind(tab: &Table<'_, '_>) -> Result<JoinKind, Located> {
    Ok(match tab.opt_str("kind")? {
        None => JoinKind::Inner,
        Some((k, o)) => match k.as_str() {
            "inner" => JoinKind::Inner,
            "left" => JoinKind::Left,
            "semi" => JoinKind::Semi,
            "anti" => JoinKind::Anti,
            _ => {
                return Err(Located::new(
                    o.start,
                    format!("unknown join kind `{k}`; expected one of: inner, left, semi, anti"),
                ))
            }
        },
    })
}

fn sort_keys(tab: &Table<'_, '_>, key: &str) -> Result<Option<Vec<SortKey>>, Located> {
    let Some(list) = tab.names(key)? else {
        return Ok(None);
    };
    list.into_iter()
        .map(|(text, pos)| {
            let mut words = text.split_whitespace();
            let field = words.next().unwrap_or("");
            let descending = match words.next() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => {
                    return Err(Located::new(
                        pos,
                        format!(
                            "`{key}`: expected `asc` or `desc` after the field, found `{other}`"
                        ),
                    ))
                }
            };
            if words.next().is_some() {
                return Err(Located::new(
                    pos,
                    format!("`{key}`: expected \"field\" or \"field desc\", found `{text}`"),
                ));
            }
            check_ident(field, pos, key)?;
            Ok(SortKey {
                field: Spanned::new(field.to_owned(), pos),
                descending,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn aggregate(text: &str, origin: &Origin) -> Result<Aggregate, Located> {
    let e = parse_located(text, origin)?;
    let expected = crate::expr::names_of(crate::expr::AGGREGATES);
    let ExprKind::Call(name, mut args) = e.kind else {
        return Err(Located::new(
            e.pos,
            format!("expected an aggregate such as \"sum(amount)\" (one of: {expected})"),
        ));
    };
    let func = AggFunc::from_name(&name).ok_or_else(|| {
        Located::new(
            e.pos,
            format!("unknown aggregate `{name}`; expected one of: {expected}"),
        )
    })?;
    let arity_ok = match func {
        AggFunc::Count => args.len() <= 1,
        AggFunc::List => args.len() == 2,
        _ => args.len() == 1,
    };
    if !arity_ok {
        let sig = crate::expr::AGGREGATES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, s)| s);
        return Err(Located::new(
            e.pos,
            format!(
                "`{name}` takes {}; expected {sig}",
                if func == AggFunc::Count {
                    "zero or one argument"
                } else if func == AggFunc::List {
                    "two arguments"
                } else {
                    "one argument"
                }
            ),
        ));
    }
    let sep = if func == AggFunc::List {
        let sep = args.pop().expect("arity checked");
        match sep.kind {
            ExprKind::Str(s) => Some(s),
            _ => {
                return Err(Located::new(
                    sep.pos,
                    "argument 2 of `list`: expected the separator as text in quotes, e.g. '; '",
                ))
            }
        }
    } else {
        None
    };
    Ok(Aggregate {
        func,
        arg: args.pop(),
        sep,
        pos: e.pos,
    })
}

/// Whether `expr` ends inside a quoted text (`'…` or `"…`, with `\\`
/// escapes as the lexer reads them): then the `}` after it, which ended
/// the template's expression, was meant to be part of the text.
fn open_quote(expr: &str) -> bool {
    let mut quote = None;
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            _ => {}
        }
    }
    quote.is_some()
}

fn template(text: &str, origin: &Origin) -> Result<Template, Located> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let b = text.as_bytes();
    while i < b.len() {
        match b[i] {
            b'{' if b.get(i + 1) == Some(&b'{') => {
                lit.push('{');
                i += 2;
            }
            b'}' if b.get(i + 1) == Some(&b'}') => {
                lit.push('}');
                i += 2;
            }
            b'{' => {
                let end = text[i..].find('}').map(|e| i + e).ok_or_else(|| {
                    Located::new(
                        origin.at(text, i),
                        "expected `}` closing this `{` (write `{{` for a brace)",
                    )
                })?;
                if !lit.is_empty() {
                    parts.push(TemplatePart::Text(std::mem::take(&mut lit)));
                }
                let inner = Origin {
                    start: origin.at(text, i + 1),
                    exact: origin.exact,
                };
                if open_quote(&text[i + 1..end]) {
                    return Err(Located::new(
                        origin.at(text, end),
                        "an expression in a template cannot contain `}`: this one ends the expression inside a quoted text; compute the text in a `derive` step and show that field",
                    ));
                }
                parts.push(TemplatePart::Expr(parse_located(
                    &text[i + 1..end],
                    &inner,
                )?));
                i = end + 1;
            }
            b'}' => {
                return Err(Located::new(
                    origin.at(text, i),
                    "expected `}}` for a literal brace, found a lone `}`",
                ))
            }
            _ => {
                let ch = text[i..].chars().next().expect("i is inside the text");
                lit.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    if !lit.is_empty() {
        parts.push(TemplatePart::Text(lit));
    }
    Ok(Template { parts })
}
