//! `jiandu model explain`: the plan as numbered Chinese sentences, one per
//! step, for the people who sign a model off. Parameters read with their
//! labels, values and units; parts computed from parameters alone read
//! with their value (`征收年度（2024） − 1（2023）`); each step's note and
//! legal basis follow it, and the model's legal basis closes the list.

use crate::catalog::Catalog;
use crate::expr::check::{check, Scope};
use crate::expr::compile::{compile, Cx, Env};
use crate::expr::print::{chinese, Chinese};
use crate::expr::Expr;
use crate::plan::{JoinKind, Name, Op, Plan, SortKey, Step, TemplatePart};
use crate::value::Value;

/// The plan as numbered Chinese sentences, one per step, then the legal
/// basis. Works on any parsed plan (names that do not resolve read as
/// written), with parameter values from the catalog's defaults.
pub fn explain(plan: &Plan, catalog: &Catalog) -> Vec<String> {
    let words = Words { plan, catalog };
    let mut out: Vec<String> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}. {}", i + 1, words.step(s)))
        .collect();
    if !catalog.legal_basis.is_empty() {
        out.push(format!(
            "{}. 法律依据：{}。",
            out.len() + 1,
            catalog.legal_basis.join("；")
        ));
    }
    out
}

pub(crate) struct Words<'a> {
    pub plan: &'a Plan,
    pub catalog: &'a Catalog,
}

/// A value as a sentence shows it.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "空".into(),
        Value::Str(s) => format!("“{s}”"),
        Value::Bool(true) => "是".into(),
        Value::Bool(false) => "否".into(),
        other => other.to_string(),
    }
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().collect::<Vec<_>>().join("、")
}

impl Words<'_> {
    fn field(&self, name: &str) -> String {
        match self.plan.label(name) {
            Some(l) => format!("{l}（{name}）"),
            None => name.to_owned(),
        }
    }

    fn param(&self, name: &str) -> String {
        let label = self.plan.label(name).unwrap_or(name);
        match self.catalog.param(name) {
            Some((_, p)) => {
                let value = match &p.default {
                    Value::Str(s) => s.clone(),
                    v => value_text(v),
                };
                match &p.unit {
                    Some(u) => format!("{label}（{value}，{u}）"),
                    None => format!("{label}（{value}）"),
                }
            }
            None => format!("{label}（未声明的参数）"),
        }
    }

    /// The value of a parameters-only expression under the defaults.
    fn fold(&self, e: &Expr) -> Option<String> {
        let scope = Scope {
            columns: &[],
            params: &self.catalog.params,
            datasets: None,
        };
        let t = check(e, &scope).ok()?;
        let defaults: Vec<Value> = self
            .catalog
            .params
            .iter()
            .map(|p| p.default.clone())
            .collect();
        let mut pool = Vec::new();
        let c = compile(
            &t,
            &mut Cx {
                params: &defaults,
                pool: &mut pool,
            },
        );
        let mut v = Value::Null;
        c.eval_into(
            &Env {
                row: &[],
                pool: &pool,
            },
            &mut v,
        )
        .ok()?;
        // A computed yes/no or text adds noise, not information.
        match v {
            Value::Bool(_) | Value::Str(_) | Value::Null => None,
            v => Some(value_text(&v)),
        }
    }

    pub(crate) fn expr(&self, e: &Expr) -> String {
        let field = |n: &str| self.field(n);
        let param = |n: &str| self.param(n);
        let fold = |x: &Expr| self.fold(x);
        chinese(
            e,
            &Chinese {
                field: &field,
                param: &param,
                fold: &fold,
            },
        )
    }

    fn step_ref(&self, name: &Name) -> String {
        match self
            .plan
            .steps
            .iter()
            .position(|s| s.name.value == name.value)
        {
            Some(i) => format!("第 {} 步（{}）", i + 1, name.value),
            None => format!("步骤 {}", name.value),
        }
    }

    fn names(&self, names: &[Name]) -> String {
        list(names.iter().map(|n| self.field(&n.value)))
    }

    fn sort_keys(&self, keys: &[SortKey]) -> String {
        list(keys.iter().map(|k| {
            format!(
                "{}（{}）",
                self.field(&k.field.value),
                if k.descending {
                    "从大到小"
                } else {
                    "从小到大"
                }
            )
        }))
    }

    /// One step's sentence, without its number.
    pub(crate) fn step(&self, s: &Step) -> String {
        let mut text = match &s.op {
            Op::Read { dataset, fields } => {
                let (label, key) = match self.catalog.dataset(&dataset.value) {
                    Some(ds) => (ds.label(), ds.primary_key.clone()),
                    None => (dataset.value.clone(), Vec::new()),
                };
                let fields = match fields {
                    Some(f) => self.names(f),
                    None => match self.catalog.dataset(&dataset.value) {
                        Some(ds) => list(ds.fields.iter().map(|f| self.field(&f.name))),
                        None => "全部已声明字段".into(),
                    },
                };
                let order = if key.is_empty() {
                    String::new()
                } else {
                    format!("，按 {} 排序", key.join("、"))
                };
                format!("读取 {label}的记录（字段：{fields}{order}）。")
            }
            Op::Filter { input, cond } => format!(
                "从{}中筛选 {} 的记录。",
                self.step_ref(input),
                self.expr(cond)
            ),
            Op::Derive { input, fields } => format!(
                "对{}的每条记录计算：{}。",
                self.step_ref(input),
                fields
                    .iter()
                    .map(|(n, e)| format!("{} = {}", self.field(&n.value), self.expr(e)))
                    .collect::<Vec<_>>()
                    .join("；")
            ),
            Op::Select { input, fields } => format!(
                "从{}中仅保留字段 {}。",
                self.step_ref(input),
                self.names(fields)
            ),
            Op::Join {
                input,
                with,
                kind,
                on,
                with_on,
                prefix,
            } => {
                let key = if on == with_on {
                    self.names(on)
                } else {
                    list(on.iter().zip(with_on).map(|(a, b)| {
                        format!("{} = {}", self.field(&a.value), self.field(&b.value))
                    }))
                };
                let (l, r) = (self.step_ref(input), self.step_ref(with));
                let renamed = match prefix {
                    Some(p) => format!("，{r}的字段名前加“{}”", p.value),
                    None => String::new(),
                };
                match kind {
                    JoinKind::Inner => format!("将{l}与{r}按 {key} 关联，仅保留两边都有的记录{renamed}。"),
                    JoinKind::Left => format!("将{l}与{r}按 {key} 关联，{r}中没有对应记录的也保留（其字段为空）{renamed}。"),
                    JoinKind::Semi => format!("从{l}中仅保留在{r}中有相同 {key} 记录的记录。"),
                    JoinKind::Anti => format!("从{l}中仅保留在{r}中没有相同 {key} 记录的记录。"),
                }
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
                let ds = self.catalog.dataset(&dataset.value);
                let label = ds.map_or_else(|| dataset.value.clone(), |d| d.label());
                let on = match ds.and_then(|d| d.indexes.get(&index.value)) {
                    Some(f) => format!("{}（{}）", index.value, self.field(f)),
                    None => index.value.clone(),
                };
                let l = self.step_ref(input);
                let by = format!("以 {} 在 {label}的索引 {on}中", self.expr(key));
                let fields = match fields {
                    Some(f) => format!("，带上其字段 {}", self.names(f)),
                    None => String::new(),
                };
                let renamed = match prefix {
                    Some(p) => format!("，其字段名前加“{}”", p.value),
                    None => String::new(),
                };
                match kind {
                    JoinKind::Inner => format!("对{l}的每条记录，{by}查找记录，每查到一条输出一条，查不到的不保留{fields}{renamed}。"),
                    JoinKind::Left => format!("对{l}的每条记录，{by}查找记录，每查到一条输出一条，查不到的也保留（查到的字段为空）{fields}{renamed}。"),
                    JoinKind::Semi => format!("从{l}中仅保留{by}能查到记录的记录。"),
                    JoinKind::Anti => format!("从{l}中仅保留{by}查不到记录的记录。"),
                }
            }
            Op::Group {
                input,
                by,
                aggregates,
            } => {
                let computed = aggregates
                    .iter()
                    .map(|(n, a)| format!("{} = {}", self.field(&n.value), self.expr(&a.call())))
                    .collect::<Vec<_>>()
                    .join("；");
                let input = self.step_ref(input);
                if by.is_empty() {
                    // One row, even over no records: say so, since "count
                    // = 0" rules depend on it.
                    format!("对{input}的全部记录汇总（没有记录时也得出一行），计算：{computed}。")
                } else {
                    format!(
                        "将{input}按 {} 分组，每组计算：{computed}。",
                        self.names(by)
                    )
                }
            }
            Op::Sort { input, by } => {
                format!("将{}按 {} 排序。", self.step_ref(input), self.sort_keys(by))
            }
            Op::Rank {
                input,
                by,
                order,
                rank,
                size,
                ties_in_order,
            } => {
                let within = if by.is_empty() {
                    "在全部记录中".to_string()
                } else {
                    format!("在每个 {} 相同的组内", self.names(by))
                };
                let size = match size {
                    Some(s) => format!("，组内记录数记为 {}", s.value),
                    None => String::new(),
                };
                format!(
                    "对{}{}按 {} 排名（{}），名次记为 {}{}。",
                    self.step_ref(input),
                    within,
                    self.sort_keys(order),
                    if *ties_in_order {
                        "并列者按原有顺序依次编号"
                    } else {
                        "并列者名次相同"
                    },
                    rank.value,
                    size
                )
            }
            Op::Window {
                input,
                by,
                time,
                days,
                count,
            } => {
                let group = if by.is_empty() {
                    "全部记录".to_string()
                } else {
                    // Spaced from 统计 as every field name is from Chinese.
                    format!(" {} 相同的记录", self.names(by))
                };
                format!(
                    "对{}的每条记录，统计{}中 {} 在其前 {} 天至当日（含两端）的记录数，记为 {}。",
                    self.step_ref(input),
                    group,
                    self.expr(time),
                    self.expr(days),
                    count.value
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
                let title: String = title
                    .parts
                    .iter()
                    .map(|p| match p {
                        TemplatePart::Text(t) => t.clone(),
                        TemplatePart::Expr(e) => format!("〔{}〕", self.expr(e)),
                    })
                    .collect();
                let mut t = format!(
                    "对{}的每条记录生成一条线索：对象为 {}{}，标题为“{}”",
                    self.step_ref(input),
                    self.expr(subject),
                    if *subject_personal {
                        "（个人信息）"
                    } else {
                        ""
                    },
                    title
                );
                if let Some(a) = amount {
                    t.push_str(&format!("，金额为 {}（元，四舍五入到分）", self.expr(a)));
                }
                if !evidence.is_empty() {
                    t.push_str(&format!(
                        "，证据：{}",
                        evidence
                            .iter()
                            .map(|(n, e)| format!("{} = {}", n.value, self.expr(e)))
                            .collect::<Vec<_>>()
                            .join("；")
                    ));
                }
                if !personal.is_empty() {
                    t.push_str(&format!(
                        "；其中 {} 为个人信息，向人员展示时遮蔽",
                        list(personal.iter().map(|p| p.value.clone()))
                    ));
                }
                if !optional.is_empty() {
                    t.push_str(&format!(
                        "；{} 为空时不列出",
                        list(optional.iter().map(|p| p.value.clone()))
                    ));
                }
                t.push('。');
                t
            }
            Op::Union { inputs } => format!(
                "将{}的记录合并为一个表（字段相同），保持共同的排序。",
                list(inputs.iter().map(|n| self.step_ref(n)))
            ),
        };
        if let Some(n) = &s.note {
            text.push_str(&format!("说明：{n}"));
        }
        if let Some(b) = &s.basis {
            text.push_str(&format!("依据：{b}"));
        }
        text
    }
}
