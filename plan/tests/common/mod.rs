//! A small model over three datasets, for the integration tests.
#![allow(dead_code)]

use jiandu_plan::exec::{Lead, MemoryInput};
use jiandu_plan::{check_plan, Catalog, Plan, PlanError, RunError, Value};

pub const MODEL: &str = r#"
title = "测试模型"
legal_basis = ["《测试条例》第一条"]

[datasets]
people = { fields = ["person_id", "name", "region", "score", "born"] }
visits = { fields = ["person_id", "visit_id", "place_id", "seen_at", "amount", "ok"] }
places = { fields = ["place_id", "kind"] }

[params]
as_of = { type = "date", default = "2024-12-31" }
min_amount = { type = "decimal", default = "10.5", unit = "元" }
days = { type = "int", default = 7, unit = "天" }
share = { type = "decimal", default = "0.5" }
kinds = { type = "string", default = "网吧,酒店" }
"#;

pub const PEOPLE: &str = r#"
name = "people"
department = "公安局"
primary_key = ["person_id"]
fields = [
  { name = "person_id", type = "string", personal = "id" },
  { name = "name", type = "string", personal = "name" },
  { name = "region", type = "string" },
  { name = "score", type = "float" },
  { name = "born", type = "date" },
  { name = "secret", type = "string" },
]
"#;

pub const VISITS: &str = r#"
name = "visits"
department = "公安局"
primary_key = ["person_id", "visit_id"]
fields = [
  { name = "person_id", type = "string", personal = "id" },
  { name = "visit_id", type = "string" },
  { name = "place_id", type = "string", required = true },
  { name = "seen_at", type = "string", required = true },
  { name = "amount", type = "decimal" },
  { name = "ok", type = "bool" },
]
[indexes]
by_place = "place_id"
"#;

pub const PLACES: &str = r#"
name = "places"
title = "场所"
department = "市场监督管理局"
primary_key = ["place_id"]
fields = [
  { name = "place_id", type = "string" },
  { name = "kind", type = "string" },
]
"#;

pub fn catalog() -> Catalog {
    Catalog::from_toml(MODEL, &[PEOPLE, VISITS, PLACES]).expect("test catalog")
}

pub fn s(x: &str) -> Value {
    Value::Str(x.into())
}

pub fn d(x: &str) -> Value {
    Value::Decimal(x.parse().expect("test decimal"))
}

pub fn date(x: &str) -> Value {
    Value::parse(jiandu_plan::Type::Date, x).expect("test date")
}

pub fn data() -> MemoryInput {
    let mut input = MemoryInput::default();
    input.add(
        "people",
        &["person_id", "name", "region", "score", "born"],
        &["person_id"],
        vec![
            vec![
                s("p1"),
                s("张三"),
                s("650100"),
                Value::Float(1.5),
                date("1990-02-28"),
            ],
            vec![
                s("p2"),
                s("李四"),
                s("650200"),
                Value::Float(2.0),
                date("1985-06-01"),
            ],
            vec![s("p3"), s("王五"), s("650100"), Value::Null, Value::Null],
        ],
    );
    // (person, visit, place, seen_at, amount, ok)
    let visits = [
        ("p1", "v1", "A", "2024-12-01 09:10", "12", true),
        ("p1", "v2", "A", "2024-12-05 21:00", "3", false),
        ("p1", "v3", "A", "2024-12-08 09:30", "20", true),
        ("p1", "v4", "B", "2024-12-09 10:00", "1", true),
        ("p2", "v5", "B", "2024-12-20 10:15", "30", true),
        ("p4", "v6", "C", "2024-11-01 23:59", "5", false),
    ];
    input.add(
        "visits",
        &[
            "person_id",
            "visit_id",
            "place_id",
            "seen_at",
            "amount",
            "ok",
        ],
        &["person_id", "visit_id"],
        visits
            .iter()
            .map(|(p, v, pl, t, a, ok)| vec![s(p), s(v), s(pl), s(t), d(a), Value::Bool(*ok)])
            .collect(),
    );
    input.add(
        "places",
        &["place_id", "kind"],
        &["place_id"],
        vec![
            vec![s("A"), s("网吧")],
            vec![s("B"), s("酒店")],
            vec![s("D"), s("商场")],
        ],
    );
    input
}

pub fn parse(text: &str) -> Result<Plan, PlanError> {
    Plan::parse("test.plan.toml", text)
}

/// Parses and checks; the error's display text on failure.
pub fn check_err(text: &str) -> String {
    let plan = match parse(text) {
        Ok(p) => p,
        Err(e) => return e.to_string(),
    };
    match check_plan(&plan, &catalog()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

pub fn run_with(
    text: &str,
    params: &[(&str, Value)],
    mut input: MemoryInput,
) -> Result<Vec<Lead>, RunError> {
    let plan = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let checked = check_plan(&plan, &catalog()).unwrap_or_else(|e| panic!("{e}"));
    let program = checked.bind(params).unwrap_or_else(|e| panic!("{e}"));
    let mut leads = Vec::new();
    program.run(&mut input, &mut leads)?;
    Ok(leads)
}

pub fn run(text: &str) -> Vec<Lead> {
    run_with(text, &[], data()).unwrap_or_else(|e| panic!("{e}"))
}

pub fn subjects(leads: &[Lead]) -> Vec<String> {
    leads.iter().map(|l| l.subject.clone()).collect()
}

pub fn ev<'a>(lead: &'a Lead, name: &str) -> &'a str {
    &lead
        .evidence
        .iter()
        .find(|e| e.name == name)
        .expect("evidence")
        .value
}
