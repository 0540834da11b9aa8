//! Everything `docs/plans.md` shows is what the library does today.
//!
//! The doc is read at run time and its fenced blocks are checked by their
//! info string:
//!
//! - `toml plan`: a complete plan; it must parse and check against one of
//!   the catalogs below (the four sample models, or a `toml model` block of
//!   the doc over the doc's invented schemas).
//! - `toml step`: one or more steps. They are checked in the context of a
//!   sample plan (or a `toml plan` block): the steps before the first step
//!   of the same name are kept (so a step quoted from a sample checks where
//!   it stands), the block follows, and an emit is added for every step
//!   nothing reads.
//! - `toml model`: a model.toml of the doc's own example; it makes a
//!   catalog with [`SCHEMAS`].
//! - `toml broken` followed by `text error`: the plan must fail with
//!   exactly that text (parsed as `rule.plan.toml`).
//! - `text explain`: `explain()` of the last `toml plan` block.
//! - `toml replace` then `text diff`: the last `toml plan` block with the
//!   steps of the `toml replace` block put in place of the steps of the
//!   same name is version 2, checked against the last `toml model` block;
//!   `diff()` from the plan to it must print the `text diff` block.
//! - `text expr`: lines `expression → result`; each expression is
//!   evaluated on the example row of [`EXAMPLE_SCHEMA`] and [`EXAMPLE_MODEL`]
//!   and written as lead evidence (`null` when it is null).
//! - `text leads`: the leads of the last `toml plan` block on [`deceased_data`].

use jiandu_plan::exec::{Lead, MemoryInput};
use jiandu_plan::plan::Op;
use jiandu_plan::{check_plan, diff, explain, Catalog, Plan, Value};
use std::path::{Path, PathBuf};

/// The plan file name pasted errors show.
const FILE: &str = "rule.plan.toml";

/// The invented schemas of the doc's fifth example (described in prose
/// there): 民政 subsistence payments and 公安 death records.
const SCHEMAS: [&str; 2] = [
    r#"
name = "subsistence_payments"
title = "最低生活保障金发放"
department = "民政局"
primary_key = ["person_id", "period"]
fields = [
  { name = "person_id", type = "string", personal = "id" },
  { name = "person_name", type = "string", personal = "name" },
  { name = "household_id", type = "string" },
  { name = "period", type = "date" },
  { name = "amount", type = "decimal", required = true },
  { name = "paid_on", type = "date", required = true },
]
"#,
    r#"
name = "death_records"
title = "死亡人员信息"
department = "公安局（户籍注销）"
primary_key = ["person_id"]
fields = [
  { name = "person_id", type = "string", personal = "id" },
  { name = "person_name", type = "string", personal = "name" },
  { name = "died_on", type = "date", required = true },
  { name = "registered_on", type = "date", required = true },
  { name = "source", type = "string" },
]
"#,
];

/// The one-row dataset the `text expr` examples are evaluated on.
const EXAMPLE_SCHEMA: &str = r#"
name = "example"
primary_key = ["name"]
fields = [
  { name = "name", type = "string" },
  { name = "staff", type = "int" },
  { name = "wage_total", type = "decimal" },
  { name = "amount", type = "decimal" },
  { name = "paid_on", type = "date" },
  { name = "kind", type = "string" },
  { name = "tags", type = "string" },
  { name = "seen_at", type = "string" },
  { name = "remark", type = "string" },
  { name = "insured", type = "bool" },
  { name = "score", type = "float" },
]
"#;

const EXAMPLE_MODEL: &str = r#"
[datasets]
example = { fields = ["name", "staff", "wage_total", "amount", "paid_on", "kind", "tags", "seen_at", "remark", "insured", "score"] }

[params]
levy_year = { type = "int", default = 2024 }
ratio = { type = "decimal", default = "0.015" }
as_of = { type = "date", default = "2024-12-31" }
kinds = { type = "string", default = "盗窃,抢夺" }
"#;

const SAMPLES: [(&str, &str); 4] = [
    ("disability-fund-arrears", "disability-fund-arrears"),
    ("drunk-driving-withdrawal", "drunk-driving-withdrawal"),
    ("land-transfer-fee-arrears", "land-transfer-fee-arrears"),
    ("repeat-theft-warning", "repeat-theft-warning"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fenced block of the doc.
#[derive(Debug, Clone)]
struct Block {
    info: String,
    body: String,
    /// The doc line of the opening fence.
    line: usize,
}

fn blocks() -> Vec<Block> {
    let doc = read(&repo().join("docs").join("plans.md"));
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in doc.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("```") {
            match open.take() {
                None => {
                    open = Some(Block {
                        info: rest.trim().to_owned(),
                        body: String::new(),
                        line: i + 1,
                    })
                }
                Some(b) => out.push(b),
            }
        } else if let Some(b) = &mut open {
            b.body.push_str(line);
            b.body.push('\n');
        }
    }
    assert!(open.is_none(), "docs/plans.md: a code block is not closed");
    let known = [
        "toml plan",
        "toml step",
        "toml model",
        "toml broken",
        "toml replace",
        "text error",
        "text explain",
        "text diff",
        "text expr",
        "text leads",
    ];
    for b in &out {
        if (b.info.starts_with("toml ") || b.info.starts_with("text "))
            && !known.contains(&b.info.as_str())
        {
            panic!("docs/plans.md:{}: unknown block kind `{}`", b.line, b.info);
        }
    }
    out
}

/// Every schema of the repository and of the doc's example.
fn all_schemas() -> Vec<String> {
    let mut out: Vec<String> = SCHEMAS.iter().map(|s| s.to_string()).collect();
    for entry in std::fs::read_dir(repo().join("datasets")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            out.push(read(&path));
        }
    }
    out
}

fn catalog_of(model_toml: &str, schemas: &[String]) -> Catalog {
    let refs: Vec<&str> = schemas.iter().map(String::as_str).collect();
    Catalog::from_toml(model_toml, &refs).unwrap_or_else(|e| panic!("{e}"))
}

/// A named catalog (a sample model's, or a `toml model` block's).
struct Ctx {
    name: String,
    catalog: Catalog,
}

fn sample_catalogs(schemas: &[String]) -> Vec<Ctx> {
    SAMPLES
        .iter()
        .map(|(model, _)| Ctx {
            name: (*model).to_owned(),
            catalog: catalog_of(
                &read(&repo().join("plugins").join(model).join("model.toml")),
                schemas,
            ),
        })
        .collect()
}

fn doc_catalogs(blocks: &[Block], schemas: &[String]) -> Vec<Ctx> {
    blocks
        .iter()
        .filter(|b| b.info == "toml model")
        .map(|b| Ctx {
            name: format!("docs/plans.md:{}", b.line),
            catalog: catalog_of(&b.body, schemas),
        })
        .collect()
}

/// Parses and checks `text` against each catalog; the first that takes
/// it, or every error.
fn check_any<'c>(text: &str, ctxs: &'c [Ctx]) -> Result<(Plan, &'c Ctx), String> {
    let plan = Plan::parse(FILE, text).map_err(|e| e.to_string())?;
    let mut errors = Vec::new();
    for c in ctxs {
        match check_plan(&plan, &c.catalog) {
            Ok(_) => return Ok((plan, c)),
            Err(e) => errors.push(format!("  with {}: {e}", c.name)),
        }
    }
    Err(errors.join("\n"))
}

/// The text of a plan cut into its header and one chunk per `[[step]]`.
fn chunks(text: &str) -> (String, Vec<String>) {
    let mut header = String::new();
    let mut steps: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.trim() == "[[step]]" {
            steps.push(String::new());
        }
        match steps.last_mut() {
            Some(s) => s.push_str(line),
            None => header.push_str(line),
        }
        match steps.last_mut() {
            Some(s) => s.push('\n'),
            None => header.push('\n'),
        }
    }
    (header, steps)
}

/// The names of the `[[step]]` tables of a snippet.
fn step_names(snippet: &str) -> Vec<String> {
    let doc = toml_edit::ImDocument::parse(snippet.to_owned())
        .unwrap_or_else(|e| panic!("not TOML: {e}\n{snippet}"));
    doc.get("step")
        .and_then(|s| s.as_array_of_tables())
        .map(|a| {
            a.iter()
                .map(|t| {
                    t.get("name")
                        .and_then(|n| n.as_str())
                        .unwrap_or("")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `context`'s steps before the first one named in `snippet`, then
/// `snippet`, then an emit for each step nothing reads.
fn in_context(context: &str, snippet: &str) -> Result<String, String> {
    let names = step_names(snippet);
    let (header, steps) = chunks(context);
    let parsed = Plan::parse(FILE, context).map_err(|e| e.to_string())?;
    let keep = parsed
        .steps
        .iter()
        .position(|s| names.contains(&s.name.value))
        .unwrap_or(parsed.steps.len());
    let mut text = header;
    for s in &steps[..keep] {
        text.push_str(s);
    }
    text.push('\n');
    text.push_str(snippet);
    let plan = Plan::parse(FILE, &text).map_err(|e| e.to_string())?;
    let used: Vec<&str> = plan
        .steps
        .iter()
        .flat_map(|s| s.op.inputs())
        .map(|n| n.value.as_str())
        .collect();
    for (i, s) in plan.steps.iter().enumerate() {
        if !matches!(s.op, Op::Emit { .. }) && !used.contains(&s.name.value.as_str()) {
            text.push_str(&format!(
                "\n[[step]]\nname = \"doc_emit_{i}\"\nop = \"emit\"\ninput = \"{}\"\nsubject = \"'x'\"\ntitle = \"x\"\n",
                s.name.value
            ));
        }
    }
    Ok(text)
}

/// The plan's text with the steps of `replace` in place of those of the
/// same name.
fn replaced(plan: &str, replace: &str) -> String {
    let (header, steps) = chunks(plan);
    let (_, new_steps) = chunks(replace);
    let names: Vec<String> = new_steps.iter().map(|s| step_names(s)[0].clone()).collect();
    let mut text = header;
    for s in steps {
        let name = step_names(&s)[0].clone();
        match names.iter().position(|n| *n == name) {
            Some(i) => text.push_str(&new_steps[i]),
            None => text.push_str(&s),
        }
    }
    text
}

fn show(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// Reports every mismatch at once, with what the library says, so that the
/// doc can be corrected from the message.
fn finish(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} problem(s) in docs/plans.md:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_plan_and_step_in_the_doc_checks() {
    let blocks = blocks();
    let schemas = all_schemas();
    let mut ctxs = doc_catalogs(&blocks, &schemas);
    ctxs.extend(sample_catalogs(&schemas));
    // Contexts for steps: the sample plans, then the doc's plans.
    let mut contexts: Vec<(String, String)> = SAMPLES
        .iter()
        .map(|(_, plan)| {
            (
                (*plan).to_owned(),
                read(
                    &repo()
                        .join("plugins")
                        .join(plan)
                        .join("plan")
                        .join("rule.plan.toml"),
                ),
            )
        })
        .collect();
    let mut failures = Vec::new();
    let (mut plans, mut steps) = (0, 0);
    for b in blocks.iter().filter(|b| b.info == "toml plan") {
        plans += 1;
        match check_any(&b.body, &ctxs) {
            Ok(_) => contexts.push((format!("docs/plans.md:{}", b.line), b.body.clone())),
            Err(e) => failures.push(format!(
                "docs/plans.md:{}: plan does not check:\n{e}",
                b.line
            )),
        }
    }
    for b in blocks.iter().filter(|b| b.info == "toml step") {
        steps += 1;
        let mut errors = Vec::new();
        let mut ok = false;
        for (name, context) in &contexts {
            match in_context(context, &b.body).and_then(|t| check_any(&t, &ctxs).map(|_| ())) {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => errors.push(format!(" after {name}:\n{e}")),
            }
        }
        if !ok {
            failures.push(format!(
                "docs/plans.md:{}: step block checks in no context:\n{}",
                b.line,
                errors.join("\n")
            ));
        }
    }
    finish(failures);
    assert!(
        plans >= 2 && steps >= 20,
        "{plans} plans, {steps} step blocks"
    );
}

#[test]
fn section_5_names_every_step_of_the_four_samples() {
    let doc = read(&repo().join("docs").join("plans.md"));
    let mut failures = Vec::new();
    for (_, sample) in SAMPLES {
        let path = repo()
            .join("plugins")
            .join(sample)
            .join("plan")
            .join("rule.plan.toml");
        let start = doc
            .find(&format!("`plugins/{sample}/plan/rule.plan.toml`"))
            .unwrap_or_else(|| panic!("docs/plans.md does not explain {sample}"));
        let section = &doc[start..];
        let section = &section[..section
            .find("\n### ")
            .or_else(|| section.find("\n## "))
            .unwrap_or(section.len())];
        let plan = Plan::parse(FILE, &read(&path)).unwrap();
        for step in &plan.steps {
            if !section.contains(&format!("`{}`", step.name.value)) {
                failures.push(format!(
                    "{sample}: step `{}` is not explained",
                    step.name.value
                ));
            }
        }
    }
    finish(failures);
}

#[test]
fn every_error_explanation_and_diff_in_the_doc_is_the_library_s() {
    let blocks = blocks();
    let schemas = all_schemas();
    let mut ctxs = doc_catalogs(&blocks, &schemas);
    ctxs.extend(sample_catalogs(&schemas));
    let mut failures = Vec::new();
    let mut errors = 0;
    let mut last_plan: Option<(Plan, String, usize)> = None;
    let mut last_model: Option<Catalog> = None;
    let mut version2: Option<Plan> = None;
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("docs/plans.md:{}", b.line);
        match b.info.as_str() {
            "toml model" => last_model = Some(catalog_of(&b.body, &schemas)),
            "toml plan" => {
                if let Ok((plan, c)) = check_any(&b.body, &ctxs) {
                    let idx = ctxs.iter().position(|x| std::ptr::eq(x, c)).unwrap();
                    last_plan = Some((plan, b.body.clone(), idx));
                }
            }
            "toml broken" => {
                errors += 1;
                let Some(next) = blocks.get(i + 1).filter(|n| n.info == "text error") else {
                    failures.push(format!(
                        "{at}: a `toml broken` block needs a `text error` block next"
                    ));
                    continue;
                };
                let actual: Vec<String> = match Plan::parse(FILE, &b.body) {
                    Err(e) => vec![e.to_string()],
                    Ok(plan) => ctxs
                        .iter()
                        .map(|c| match check_plan(&plan, &c.catalog) {
                            Err(e) => e.to_string(),
                            Ok(_) => format!("(checks with {})", c.name),
                        })
                        .collect(),
                };
                let want = next.body.trim_end();
                if !actual.iter().any(|a| a == want) {
                    failures.push(format!(
                        "{at}: the library says\n{}\nnot\n{want}",
                        actual[0]
                    ));
                }
            }
            "text explain" => {
                let Some((plan, _, idx)) = &last_plan else {
                    failures.push(format!("{at}: no plan before it"));
                    continue;
                };
                let actual = show(&explain(plan, &ctxs[*idx].catalog));
                if actual != b.body {
                    failures.push(format!("{at}: explain prints\n{actual}"));
                }
            }
            "toml replace" => {
                let Some((_, text, _)) = &last_plan else {
                    failures.push(format!("{at}: no plan before it"));
                    continue;
                };
                let Some(model) = &last_model else {
                    failures.push(format!("{at}: no model before it"));
                    continue;
                };
                let text = replaced(text, &b.body);
                match Plan::parse(FILE, &text) {
                    Err(e) => failures.push(format!("{at}: version 2 does not parse: {e}")),
                    Ok(p) => match check_plan(&p, model) {
                        Err(e) => failures.push(format!("{at}: version 2 does not check: {e}")),
                        Ok(_) => version2 = Some(p),
                    },
                }
            }
            "text diff" => {
                let (Some((old, _, idx)), Some(new), Some(model)) =
                    (&last_plan, &version2, &last_model)
                else {
                    failures.push(format!(
                        "{at}: needs a plan, a model and a replace block before it"
                    ));
                    continue;
                };
                let actual = show(&diff(old, &ctxs[*idx].catalog, new, model));
                if actual != b.body {
                    failures.push(format!("{at}: diff prints\n{actual}"));
                }
            }
            _ => {}
        }
    }
    finish(failures);
    assert!(errors >= 5, "{errors} pasted errors");
}

fn example_row() -> MemoryInput {
    let s = |x: &str| Value::Str(x.into());
    let d = |x: &str| Value::Decimal(x.parse().unwrap());
    let mut input = MemoryInput::default();
    input.add(
        "example",
        &[
            "name",
            "staff",
            "wage_total",
            "amount",
            "paid_on",
            "kind",
            "tags",
            "seen_at",
            "remark",
            "insured",
            "score",
        ],
        &["name"],
        vec![vec![
            s("甲公司"),
            Value::Int(200),
            d("16000000.00"),
            d("1234.565"),
            Value::parse(jiandu_plan::Type::Date, "2024-02-29").unwrap(),
            s("盗窃"),
            s("口罩;伪装"),
            s("2024/12/31 08:05"),
            Value::Null,
            Value::Bool(true),
            Value::Float(1.5),
        ]],
    );
    input
}

/// The value of `expr` on the example row, as lead evidence text (`null`
/// when null), or the error.
fn eval(expr: &str, catalog: &Catalog) -> String {
    let quoted = expr.replace('\\', "\\\\").replace('"', "\\\"");
    let text = format!(
        "[[step]]\nname = \"rows\"\nop = \"read\"\ndataset = \"example\"\n\n[[step]]\nname = \"out\"\nop = \"emit\"\nsubject = \"name\"\ntitle = \"x\"\noptional = [\"v\"]\nevidence = {{ v = \"{quoted}\" }}\n"
    );
    let plan = match Plan::parse(FILE, &text) {
        Ok(p) => p,
        Err(e) => return format!("error: {}", e.message),
    };
    let checked = match check_plan(&plan, catalog) {
        Ok(c) => c,
        Err(e) => return format!("error: {}", e.message),
    };
    let program = checked.bind(&[]).unwrap();
    let mut leads: Vec<Lead> = Vec::new();
    if let Err(e) = program.run(&mut example_row(), &mut leads) {
        return format!("error: {e}");
    }
    match leads[0].evidence.first() {
        Some(e) => e.value.clone(),
        None => "null".into(),
    }
}

#[test]
fn every_expression_example_in_the_doc_gives_the_value_shown() {
    let catalog = Catalog::from_toml(EXAMPLE_MODEL, &[EXAMPLE_SCHEMA]).unwrap();
    let mut failures = Vec::new();
    let mut n = 0;
    for b in blocks().iter().filter(|b| b.info == "text expr") {
        for (k, line) in b.body.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("docs/plans.md:{}", b.line + 1 + k);
            let Some((expr, want)) = line.split_once(" → ") else {
                failures.push(format!("{at}: expected `expression → result`"));
                continue;
            };
            n += 1;
            let got = eval(expr.trim(), &catalog);
            if got != want.trim() {
                failures.push(format!(
                    "{at}: `{}` gives `{got}`, not `{}`",
                    expr.trim(),
                    want.trim()
                ));
            }
        }
    }
    finish(failures);
    assert!(n >= 40, "{n} expression examples");
}

/// The doc's small data set for the fifth example: who died when, what
/// was paid for which month.
fn deceased_data() -> MemoryInput {
    let s = |x: &str| Value::Str(x.into());
    let d = |x: &str| Value::Decimal(x.parse().unwrap());
    let date = |x: &str| Value::parse(jiandu_plan::Type::Date, x).unwrap();
    let mut input = MemoryInput::default();
    let payments = [
        // (person, name, household, period, amount, paid_on)
        ("P1", "张某", "H1", "2024-03-01", "650.00", "2024-03-05"),
        ("P1", "张某", "H1", "2024-04-01", "650.00", "2024-04-05"),
        ("P1", "张某", "H1", "2024-05-01", "650.00", "2024-05-06"),
        ("P1", "张某", "H1", "2024-06-01", "650.00", "2024-06-05"),
        ("P2", "李某", "H2", "2024-05-01", "480.50", "2024-05-06"),
        ("P2", "李某", "H2", "2024-06-01", "480.50", "2024-06-05"),
        ("P3", "王某", "H3", "2024-11-01", "700.00", "2024-11-05"),
        ("P3", "王某", "H3", "2024-12-01", "700.00", "2024-12-05"),
        ("P3", "王某", "H3", "2025-01-01", "700.00", "2025-01-06"),
        ("P4", "赵某", "H4", "2024-09-01", "520.25", "2024-09-05"),
        ("P4", "赵某", "H4", "2024-10-01", "520.25", "2024-10-08"),
        ("P4", "赵某", "H4", "2024-11-01", "520.25", "2024-11-06"),
        ("P4", "赵某", "H4", "2024-12-01", "520.25", "2025-01-03"),
    ];
    input.add(
        "subsistence_payments",
        &[
            "person_id",
            "person_name",
            "household_id",
            "period",
            "amount",
            "paid_on",
        ],
        &["person_id", "period"],
        payments
            .iter()
            .map(|(p, n, h, m, a, on)| vec![s(p), s(n), s(h), date(m), d(a), date(on)])
            .collect(),
    );
    let deaths = [
        // P1 died in March: April and later are paid after death.
        ("P1", "张某", "2024-03-31", "2024-04-10", "户籍注销"),
        // P2 died on 1 June: the June payment is for the month of death.
        ("P2", "李某", "2024-06-01", "2024-06-03", "死亡医学证明"),
        // P3 died in November, registered only in 2025 (after as_of).
        ("P3", "王某", "2024-11-15", "2025-01-20", "户籍注销"),
        // P4 died in September: October and November count; December was
        // paid only after as_of.
        ("P4", "赵某", "2024-09-10", "2024-09-20", "户籍注销"),
    ];
    input.add(
        "death_records",
        &[
            "person_id",
            "person_name",
            "died_on",
            "registered_on",
            "source",
        ],
        &["person_id"],
        deaths
            .iter()
            .map(|(p, n, died, reg, src)| vec![s(p), s(n), date(died), date(reg), s(src)])
            .collect(),
    );
    input
}

#[test]
fn the_leads_shown_for_the_fifth_example_are_what_it_finds() {
    let blocks = blocks();
    let schemas = all_schemas();
    let ctxs = doc_catalogs(&blocks, &schemas);
    let mut last: Option<(Plan, usize)> = None;
    let mut shown = 0;
    for b in &blocks {
        if b.info == "toml plan" {
            last = check_any(&b.body, &ctxs).ok().map(|(p, c)| {
                (
                    p.clone(),
                    ctxs.iter().position(|x| std::ptr::eq(x, c)).unwrap(),
                )
            });
        }
        if b.info == "text leads" {
            shown += 1;
            let (plan, idx) = last.as_ref().expect("a plan before the leads");
            let program = check_plan(plan, &ctxs[*idx].catalog)
                .unwrap()
                .bind(&[])
                .unwrap();
            let mut leads: Vec<Lead> = Vec::new();
            program.run(&mut deceased_data(), &mut leads).unwrap();
            let mut text = String::new();
            for l in &leads {
                text.push_str(&format!(
                    "{}{} | {} | {}\n",
                    l.subject,
                    if l.subject_personal {
                        "（个人信息）"
                    } else {
                        ""
                    },
                    l.title,
                    l.amount.as_deref().unwrap_or("-")
                ));
                for e in &l.evidence {
                    text.push_str(&format!(
                        "    {} = {}{}\n",
                        e.name,
                        e.value,
                        if e.personal { "（个人信息）" } else { "" }
                    ));
                }
            }
            assert_eq!(
                text, b.body,
                "docs/plans.md:{}: the plan finds\n{text}",
                b.line
            );
        }
    }
    assert!(shown >= 1, "no `text leads` block");
}
