//! `op = "lookup"`: records of another dataset found through its declared
//! secondary index, one lookup per input row, over data in memory.

use jiandu_plan::exec::{Input, Lead, MemoryInput};
use jiandu_plan::{check_plan, Catalog, Plan, RunError, Value};

const MODEL: &str = r#"
[datasets]
cases = { fields = ["case_id", "suspect_id", "offence_date", "region", "year"] }
priors = { fields = ["record_id", "person_id", "kind", "decided_on", "fine", "year"] }

[params]
kind = { type = "string", default = "盗窃" }
"#;

const CASES: &str = r#"
name = "cases"
primary_key = ["case_id"]
fields = [
  { name = "case_id", type = "string" },
  { name = "suspect_id", type = "string", personal = "id" },
  { name = "offence_date", type = "date", required = true },
  { name = "region", type = "string" },
  { name = "year", type = "int" },
]
"#;

const PRIORS: &str = r#"
name = "priors"
primary_key = ["record_id"]
fields = [
  { name = "record_id", type = "string" },
  { name = "person_id", type = "string", personal = "id" },
  { name = "kind", type = "string" },
  { name = "decided_on", type = "date", required = true },
  { name = "fine", type = "decimal" },
  { name = "year", type = "int" },
  { name = "secret", type = "string" },
]
[indexes]
by_person = "person_id"
by_kind = "kind"
by_year = "year"
by_secret = "secret"
"#;

fn catalog() -> Catalog {
    Catalog::from_toml(MODEL, &[CASES, PRIORS]).expect("test catalog")
}

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn date(x: &str) -> Value {
    Value::parse(jiandu_plan::Type::Date, x).expect("test date")
}

fn data() -> MemoryInput {
    let mut input = MemoryInput::default();
    input.add(
        "cases",
        &["case_id", "suspect_id", "offence_date", "region", "year"],
        &["case_id"],
        vec![
            // p1: two priors; p2: none; null suspect; p1 again; p3: five.
            vec![
                s("c1"),
                s("p1"),
                date("2024-03-01"),
                s("650100"),
                Value::Int(2024),
            ],
            vec![
                s("c2"),
                s("p2"),
                date("2024-03-02"),
                s("650100"),
                Value::Int(2024),
            ],
            vec![
                s("c3"),
                Value::Null,
                date("2024-03-03"),
                s("650200"),
                Value::Int(2023),
            ],
            vec![
                s("c4"),
                s("p1"),
                date("2024-03-04"),
                s("650200"),
                Value::Int(2022),
            ],
            vec![
                s("c5"),
                s("p3"),
                date("2024-03-05"),
                Value::Null,
                Value::Null,
            ],
        ],
    );
    let mut priors = vec![
        // Out of key order on purpose: the store sorts on the primary key,
        // which is the index's order among equal values.
        vec![
            s("r2"),
            s("p1"),
            s("醉驾"),
            date("2021-06-01"),
            Value::Null,
            Value::Int(2021),
        ],
        vec![
            s("r1"),
            s("p1"),
            s("盗窃"),
            date("2020-01-15"),
            dec("500.50"),
            Value::Int(2020),
        ],
        vec![
            s("r9"),
            s("p4"),
            s("盗窃"),
            date("2019-01-01"),
            Value::Null,
            Value::Int(2019),
        ],
    ];
    for i in 0..5 {
        priors.push(vec![
            s(&format!("r3{i}")),
            s("p3"),
            s("盗窃"),
            date(&format!("2022-0{}-01", i + 1)),
            dec(&format!("{}", 100 * (i + 1))),
            Value::Int(2022),
        ]);
    }
    input.add(
        "priors",
        &[
            "record_id",
            "person_id",
            "kind",
            "decided_on",
            "fine",
            "year",
        ],
        &["record_id"],
        priors,
    );
    input.index("priors", "by_person", "person_id");
    input.index("priors", "by_kind", "kind");
    input.index("priors", "by_year", "year");
    input
}

fn dec(x: &str) -> Value {
    Value::Decimal(x.parse().expect("test decimal"))
}

const CASES_STEP: &str = "[[step]]\nname = \"cases\"\nop = \"read\"\ndataset = \"cases\"\n\n";

/// A plan reading the cases, then `lookup` (the step's keys), then an
/// emit of `title`.
fn plan(lookup: &str, title: &str) -> String {
    format!(
        "{CASES_STEP}[[step]]\nname = \"found\"\nop = \"lookup\"\n{lookup}\n\n[[step]]\nname = \"leads\"\nop = \"emit\"\nsubject = \"case_id\"\ntitle = \"{title}\"\n"
    )
}

fn run_with(text: &str, mut input: MemoryInput) -> Result<Vec<Lead>, RunError> {
    let plan = Plan::parse("test.plan.toml", text).unwrap_or_else(|e| panic!("{e}"));
    let checked = check_plan(&plan, &catalog()).unwrap_or_else(|e| panic!("{e}"));
    let program = checked.bind(&[]).unwrap_or_else(|e| panic!("{e}"));
    let mut leads = Vec::new();
    program.run(&mut input, &mut leads)?;
    Ok(leads)
}

fn titles(text: &str) -> Vec<String> {
    run_with(text, data())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|l| l.title)
        .collect()
}

fn check_err(text: &str) -> String {
    let plan = match Plan::parse("test.plan.toml", text) {
        Ok(p) => p,
        Err(e) => return e.to_string(),
    };
    match check_plan(&plan, &catalog()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const BY_PERSON: &str = "dataset = \"priors\"\nindex = \"by_person\"\nkey = \"suspect_id\"";

#[test]
fn inner_lookup_gives_one_row_per_record_in_input_then_index_order() {
    let t = titles(&plan(
        &format!("{BY_PERSON}\nfields = [\"record_id\", \"kind\", \"decided_on\", \"fine\"]"),
        "{case_id} {record_id} {kind} {decided_on} {fine}",
    ));
    assert_eq!(
        t,
        [
            // c2 (no record) and c3 (null key) give nothing.
            "c1 r1 盗窃 2020-01-15 500.50",
            "c1 r2 醉驾 2021-06-01 ",
            "c4 r1 盗窃 2020-01-15 500.50",
            "c4 r2 醉驾 2021-06-01 ",
            "c5 r30 盗窃 2022-01-01 100",
            "c5 r31 盗窃 2022-02-01 200",
            "c5 r32 盗窃 2022-03-01 300",
            "c5 r33 盗窃 2022-04-01 400",
            "c5 r34 盗窃 2022-05-01 500",
        ]
    );
}

#[test]
fn left_lookup_keeps_rows_without_records_with_nulls() {
    let t = titles(&plan(
        &format!("{BY_PERSON}\nkind = \"left\"\nfields = [\"record_id\", \"decided_on\"]"),
        "{case_id} {has(record_id)} {decided_on}",
    ));
    assert_eq!(
        t,
        [
            "c1 true 2020-01-15",
            "c1 true 2021-06-01",
            "c2 false ",
            "c3 false ",
            "c4 true 2020-01-15",
            "c4 true 2021-06-01",
            "c5 true 2022-01-01",
            "c5 true 2022-02-01",
            "c5 true 2022-03-01",
            "c5 true 2022-04-01",
            "c5 true 2022-05-01",
        ]
    );
    // A left lookup makes the dataset's fields nullable, even required ones.
    let p = Plan::parse(
        "t",
        &plan(
            &format!("{BY_PERSON}\nkind = \"left\"\nprefix = \"p_\""),
            "{case_id}",
        ),
    )
    .unwrap();
    let checked = check_plan(&p, &catalog()).unwrap();
    let cols = checked.columns("found").unwrap();
    let decided = cols.iter().find(|c| c.name == "p_decided_on").unwrap();
    assert!(decided.nullable);
    assert!(
        !cols.iter().any(|c| c.name == "p_person_id"),
        "the indexed field is the key"
    );
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names[5..],
        ["p_record_id", "p_kind", "p_decided_on", "p_fine", "p_year"]
    );
    assert_eq!(checked.sorted_by("found").unwrap(), ["case_id"]);
    assert_eq!(checked.datasets(), ["cases", "priors"]);
    assert_eq!(checked.lookups(), [("priors", "by_person")]);
}

#[test]
fn semi_and_anti_lookups_keep_input_rows_once() {
    let semi = titles(&plan(&format!("{BY_PERSON}\nkind = \"semi\""), "{case_id}"));
    assert_eq!(semi, ["c1", "c4", "c5"]);
    let anti = titles(&plan(&format!("{BY_PERSON}\nkind = \"anti\""), "{case_id}"));
    assert_eq!(anti, ["c2", "c3"]);
    // They add no fields.
    let p = Plan::parse(
        "t",
        &plan(&format!("{BY_PERSON}\nkind = \"semi\""), "{case_id}"),
    )
    .unwrap();
    let checked = check_plan(&p, &catalog()).unwrap();
    assert_eq!(checked.columns("found").unwrap().len(), 5);
}

#[test]
fn key_is_an_expression_and_prefix_renames_fields() {
    // Priors of the year before the case's, by a computed int key; the
    // dataset's `year` clashes with the case's and is renamed.
    let t = titles(&plan(
        "dataset = \"priors\"\nindex = \"by_year\"\nkey = \"year - 2\"\nprefix = \"p_\"\nfields = [\"record_id\", \"year\"]",
        "{case_id} {year} {p_record_id} {p_year}",
    ));
    assert_eq!(
        t,
        [
            "c1 2024 r30 2022",
            "c1 2024 r31 2022",
            "c1 2024 r32 2022",
            "c1 2024 r33 2022",
            "c1 2024 r34 2022",
            "c2 2024 r30 2022",
            "c2 2024 r31 2022",
            "c2 2024 r32 2022",
            "c2 2024 r33 2022",
            "c2 2024 r34 2022",
            "c3 2023 r2 2021",
            "c4 2022 r1 2020",
        ]
    );
    // Parameters fold into the key.
    let t = titles(&plan(
        "dataset = \"priors\"\nindex = \"by_kind\"\nkey = \"$kind\"\nkind = \"semi\"",
        "{case_id}",
    ));
    assert_eq!(t, ["c1", "c2", "c3", "c4", "c5"]);
}

#[test]
fn a_key_of_another_type_is_refused_where_it_is_written() {
    let e = check_err(&plan(
        "dataset = \"priors\"\nindex = \"by_person\"\nkey = \"offence_date\"",
        "x",
    ));
    assert_eq!(
        e,
        "test.plan.toml:11:8: `key`: expected string like `person_id`, the field index `by_person` of `priors` is on, found date"
    );
    let e = check_err(&plan(
        "dataset = \"priors\"\nindex = \"by_year\"\nkey = \"region\"",
        "x",
    ));
    assert!(
        e.starts_with("test.plan.toml:11:8: `key`: expected int like `year`"),
        "{e}"
    );
}

#[test]
fn an_undeclared_index_or_dataset_is_refused() {
    let e = check_err(&plan(
        "dataset = \"priors\"\nindex = \"by_place\"\nkey = \"suspect_id\"",
        "x",
    ));
    assert_eq!(
        e,
        "test.plan.toml:10:9: unknown index `by_place` of `priors`; expected one that its schema declares in [indexes]: by_kind, by_person, by_secret, by_year"
    );
    let e = check_err(&plan(
        "dataset = \"cases\"\nindex = \"by_person\"\nkey = \"suspect_id\"",
        "x",
    ));
    assert_eq!(
        e,
        "test.plan.toml:10:9: unknown index `by_person` of `cases`, whose schema declares no [indexes]; use `read` and `join` instead"
    );
    let e = check_err(&plan(
        "dataset = \"people\"\nindex = \"by_person\"\nkey = \"suspect_id\"",
        "x",
    ));
    assert_eq!(
        e,
        "test.plan.toml:9:11: unknown dataset `people`; expected one that model.toml declares in [datasets]: cases, priors"
    );
    // An index on a field the model does not declare: the host would
    // refuse the lookup.
    let e = check_err(&plan(
        "dataset = \"priors\"\nindex = \"by_secret\"\nkey = \"region\"",
        "x",
    ));
    assert!(
        e.starts_with("test.plan.toml:10:9: index `by_secret` is on `secret`: field `secret` of `priors` is not declared for this model; add it to model.toml"),
        "{e}"
    );
}

#[test]
fn personal_and_clear_keys_do_not_mix() {
    let e = check_err(&plan(
        "dataset = \"priors\"\nindex = \"by_person\"\nkey = \"region\"",
        "x",
    ));
    assert!(
        e.starts_with("test.plan.toml:11:8: `key`: expected personal data like `person_id` (id)"),
        "{e}"
    );
    let e = check_err(&plan(
        "dataset = \"priors\"\nindex = \"by_kind\"\nkey = \"suspect_id\"",
        "x",
    ));
    assert!(
        e.starts_with("test.plan.toml:11:8: `key` is personal data (id)"),
        "{e}"
    );
}

#[test]
fn fields_and_names_are_checked() {
    let e = check_err(&plan(
        &format!("{BY_PERSON}\nkind = \"semi\"\nfields = [\"kind\"]"),
        "x",
    ));
    assert_eq!(
        e,
        "test.plan.toml:13:1: `fields` in step `found` (lookup): a semi lookup adds no fields; expected no `fields` (or kind inner or left)"
    );
    let e = check_err(&plan(&format!("{BY_PERSON}\nfields = [\"secret\"]"), "x"));
    assert!(
        e.starts_with("test.plan.toml:12:11: field `secret` of `priors` is not declared"),
        "{e}"
    );
    // `year` is in both: the input's, and the dataset's.
    let e = check_err(&plan(BY_PERSON, "x"));
    assert_eq!(
        e,
        "test.plan.toml:9:11: field `year` is both in the rows of `cases` and in `priors`; set `prefix = \"priors_\"` to rename the fields of `priors`"
    );
    let e = check_err(&plan("dataset = \"priors\"\nindex = \"by_person\"", "x"));
    assert!(e.contains("step `found` (lookup) needs `key`"), "{e}");
    let e = check_err(&plan(&format!("{BY_PERSON}\nwith = \"cases\""), "x"));
    assert!(
        e.contains("unknown key `with` in step `found` (lookup)"),
        "{e}"
    );
}

#[test]
fn a_failed_lookup_stops_the_run_with_the_step_and_the_host_message() {
    let mut input = data();
    input.limit_lookups(4);
    let text = plan(BY_PERSON.to_owned().as_str(), "{record_id}").replace(
        "key = \"suspect_id\"",
        "key = \"suspect_id\"\nfields = [\"record_id\"]",
    );
    let e = run_with(&text, input).unwrap_err();
    assert!(
        matches!(&e, RunError::Lookup(l) if l.step == "found" && l.key.is_none()),
        "{e:?}"
    );
    // The key is personal: not shown.
    assert_eq!(
        e.to_string(),
        "test.plan.toml:11:8: step `found`: looking up `priors` by index `by_person` for a personal key (not shown): 5 records match; a lookup returns at most 4 (scan by the index instead)"
    );
    // A clear key is shown.
    let mut input = data();
    input.limit_lookups(4);
    let e = run_with(
        &plan(
            "dataset = \"priors\"\nindex = \"by_kind\"\nkey = \"$kind\"\nkind = \"anti\"",
            "x",
        ),
        input,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.plan.toml:11:8: step `found`: looking up `priors` by index `by_kind` for `盗窃`: 7 records match; a lookup returns at most 4 (scan by the index instead)"
    );
    // An input that cannot look up says so.
    struct ScanOnly(MemoryInput);
    impl Input for ScanOnly {
        fn scan(
            &mut self,
            dataset: &str,
            fields: &[&str],
        ) -> Result<Box<dyn jiandu_plan::Scan>, jiandu_plan::error::HostError> {
            self.0.scan(dataset, fields)
        }
    }
    let p = Plan::parse(
        "test.plan.toml",
        &plan(BY_PERSON, "x").replace(
            "key = \"suspect_id\"",
            "key = \"suspect_id\"\nkind = \"semi\"",
        ),
    )
    .unwrap();
    let program = check_plan(&p, &catalog()).unwrap().bind(&[]).unwrap();
    let e = program
        .run(&mut ScanOnly(data()), &mut Vec::new())
        .unwrap_err();
    assert!(
        e.to_string()
            .ends_with("this input cannot look records up (dataset `priors`, index `by_person`)"),
        "{e}"
    );
}

#[test]
fn a_looked_up_value_of_another_type_is_the_hosts_error() {
    let mut input = data();
    input.add(
        "priors",
        &[
            "record_id",
            "person_id",
            "kind",
            "decided_on",
            "fine",
            "year",
        ],
        &["record_id"],
        vec![vec![
            s("r1"),
            s("p1"),
            s("盗窃"),
            s("not a date"),
            Value::Null,
            Value::Int(1),
        ]],
    );
    let e = run_with(&plan(&format!("{BY_PERSON}\nprefix = \"p_\""), "x"), input).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dataset `priors`, field `decided_on`: expected date, found string not a date"
    );
}

#[test]
fn lookups_count_as_rows_read_and_hold_one_lookup_at_a_time() {
    let p = Plan::parse("t", &plan(&format!("{BY_PERSON}\nprefix = \"p_\""), "x")).unwrap();
    let program = check_plan(&p, &catalog()).unwrap().bind(&[]).unwrap();
    let mut leads: Vec<Lead> = Vec::new();
    let stats = program.run(&mut data(), &mut leads).unwrap();
    assert_eq!(stats.rows_read["cases"], 5);
    // 2 + 0 + (null key: no lookup) + 2 + 5
    assert_eq!(stats.rows_read["priors"], 9);
    assert_eq!(stats.leads, 9);
}

#[test]
fn every_lookup_argument_is_part_of_the_hash() {
    // Every argument is part of the hash; leaving out `kind` is `inner`.
    let base = plan(&format!("{BY_PERSON}\nprefix = \"p_\""), "x");
    let h = Plan::parse("a", &base).unwrap().hash();
    let same = base.replace("key = \"suspect_id\"", "kind = 'inner'\nkey = 'suspect_id'");
    assert_eq!(Plan::parse("b", &same).unwrap().hash(), h);
    for changed in [
        base.replace(
            "key = \"suspect_id\"",
            "key = \"suspect_id\"\nkind = \"left\"",
        ),
        base.replace("prefix = \"p_\"", "prefix = \"q_\""),
        base.replace(
            "key = \"suspect_id\"",
            "key = \"suspect_id\"\nfields = [\"kind\"]",
        ),
        base.replace("by_person", "by_kind"),
    ] {
        assert_ne!(Plan::parse("c", &changed).unwrap().hash(), h, "{changed}");
    }
    let json = Plan::parse("a", &base).unwrap().canonical_json();
    assert!(
        json.contains(r#"{"dataset":"priors","index":"by_person","input":"cases","key":"suspect_id","kind":"inner","name":"found","op":"lookup","prefix":"p_"}"#),
        "{json}"
    );
}

#[test]
fn explain_says_what_is_looked_up_where() {
    let p = Plan::parse(
        "t",
        &plan(
            &format!("{BY_PERSON}\nkind = \"left\"\nfields = [\"kind\"]"),
            "x",
        ),
    )
    .unwrap();
    let lines = jiandu_plan::explain(&p, &catalog());
    assert_eq!(
        lines[1],
        "2. 对第 1 步（cases）的每条记录，以 suspect_id 在 priors的索引 by_person（person_id）中查找记录，每查到一条输出一条，查不到的也保留（查到的字段为空），带上其字段 kind。"
    );
    let p = Plan::parse("t", &plan(&format!("{BY_PERSON}\nkind = \"anti\""), "x")).unwrap();
    assert_eq!(
        jiandu_plan::explain(&p, &catalog())[1],
        "2. 从第 1 步（cases）中仅保留以 suspect_id 在 priors的索引 by_person（person_id）中查不到记录的记录。"
    );
}

/// The same pairing written as a merge join: its hash is the one the code
/// before `lookup` existed gave (plans without a lookup hash as before).
const MERGE_PLAN: &str = r#"[[step]]
name = "cases"
op = "read"
dataset = "cases"

[[step]]
name = "priors"
op = "read"
dataset = "priors"

[[step]]
name = "by_person"
op = "sort"
input = "priors"
by = ["person_id", "record_id"]

[[step]]
name = "found"
op = "join"
kind = "left"
input = "cases"
with = "by_person"
on = "suspect_id"
with_on = "person_id"
prefix = "p_"

[[step]]
name = "leads"
op = "emit"
subject = "case_id"
title = "{case_id} {p_record_id}"
"#;

#[test]
fn plans_without_lookup_keep_their_hash() {
    let plan = Plan::parse("merge.plan.toml", MERGE_PLAN).unwrap();
    assert_eq!(
        plan.hash(),
        "482c5a5d77da974af029476ac5d41b6da998e94f88b94ce84fb3a732a09718e7"
    );
    // The merge needs both sides sorted on the key, which the cases are
    // not: the checker says so, and a lookup needs no order.
    let checked = check_plan(&plan, &catalog()).unwrap_err().to_string();
    assert!(
        checked.contains("expected both sides sorted on the join key (suspect_id)"),
        "{checked}"
    );
}
