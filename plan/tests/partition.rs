//! A plan whose model declares `[partition]` is checked for steps whose
//! answer would depend on how the run is split: each part sees only its
//! range of the key in the split datasets.

mod common;
use common::{PEOPLE, PLACES, VISITS};
use jiandu_plan::{check_plan, Catalog, Plan};

/// The test model split on `person_id` (people and visits begin their
/// primary keys with it; places are read whole by every part).
fn split_catalog() -> Catalog {
    let model = format!("{}\n[partition]\nkey = \"person_id\"\n", common::MODEL);
    Catalog::from_toml(&model, &[PEOPLE, VISITS, PLACES]).unwrap()
}

fn check(steps: &str) -> Result<(), String> {
    let plan = Plan::parse("test.plan.toml", steps).map_err(|e| e.to_string())?;
    check_plan(&plan, &split_catalog())
        .map(drop)
        .map_err(|e| e.to_string())
}

const READS: &str = r#"
[[step]]
name = "people"
op = "read"
dataset = "people"

[[step]]
name = "visits"
op = "read"
dataset = "visits"
"#;

const EMIT: &str = r#"
[[step]]
name = "leads"
op = "emit"
subject = "person_id"
subject_personal = true
title = "t"
"#;

#[test]
fn the_catalog_names_the_datasets_a_run_is_split_on() {
    let c = split_catalog();
    let p = c.partition.expect("declared");
    assert_eq!(p.key, "person_id");
    let split: Vec<(&str, &str)> = p
        .split
        .iter()
        .map(|(d, f)| (d.as_str(), f.as_str()))
        .collect();
    assert_eq!(split, [("people", "person_id"), ("visits", "person_id")]);
    // Without [partition], nothing is split and nothing is checked.
    assert!(common::catalog().partition.is_none());
}

#[test]
fn steps_that_keep_each_key_to_itself_are_accepted() {
    let plan = format!(
        r#"{READS}
[[step]]
name = "per_person"
op = "group"
input = "visits"
by = ["person_id"]
aggregates = {{ n = "count()", total = "sum(amount)" }}

[[step]]
name = "with_people"
op = "join"
input = "people"
with = "per_person"
on = "person_id"

[[step]]
name = "places"
op = "read"
dataset = "places"

[[step]]
name = "ranked"
op = "rank"
input = "with_people"
by = ["person_id"]
order_by = ["total"]
rank = "r"
{}"#,
        EMIT.replace(
            "subject = \"person_id\"",
            "subject = \"person_id\"\ninput = \"ranked\""
        )
    );
    // `places` is read but unused: it must feed something.
    let plan = plan.replace(
        "[[step]]\nname = \"places\"\nop = \"read\"\ndataset = \"places\"\n",
        "",
    );
    check(&plan).unwrap();
}

#[test]
fn a_group_over_other_fields_than_the_key_is_refused_naming_the_step() {
    let plan = format!(
        r#"{READS}
[[step]]
name = "per_place"
op = "group"
input = "visits"
by = ["place_id"]
aggregates = {{ n = "count()" }}

[[step]]
name = "leads"
op = "emit"
input = "per_place"
subject = "place_id"
title = "t"
"#
    );
    let e = check(&plan.replace(
        "[[step]]\nname = \"people\"\nop = \"read\"\ndataset = \"people\"\n",
        "",
    ))
    .unwrap_err();
    assert!(
        e.contains("step `per_place`: groups rows of different keys together")
            && e.contains("model.toml declares [partition] on `person_id`")
            && e.contains("`visits` (by `person_id`)"),
        "{e}"
    );
}

#[test]
fn a_ranking_across_keys_is_refused() {
    let plan = r#"
[[step]]
name = "people"
op = "read"
dataset = "people"

[[step]]
name = "ranked"
op = "rank"
input = "people"
by = ["region"]
order_by = ["score"]
rank = "r"

[[step]]
name = "leads"
op = "emit"
input = "ranked"
subject = "person_id"
subject_personal = true
title = "t"
"#;
    let e = check(plan).unwrap_err();
    assert!(
        e.contains("step `ranked`: ranks rows of different keys against each other"),
        "{e}"
    );
}

#[test]
fn a_join_of_split_rows_to_rows_read_whole_or_on_another_field_is_refused() {
    // Places (read whole) joined to visits (split): a place's visits are
    // spread over the parts.
    let plan = r#"
[[step]]
name = "places"
op = "read"
dataset = "places"

[[step]]
name = "visits"
op = "read"
dataset = "visits"

[[step]]
name = "by_place"
op = "sort"
input = "visits"
by = ["place_id"]

[[step]]
name = "joined"
op = "join"
kind = "anti"
input = "places"
with = "by_place"
on = "place_id"

[[step]]
name = "leads"
op = "emit"
input = "joined"
subject = "place_id"
title = "t"
"#;
    let e = check(plan).unwrap_err();
    assert!(
        e.contains("step `joined`: joins `by_place`, whose rows a part has only for its range, to `places`, which every part reads whole"),
        "{e}"
    );
}

#[test]
fn rows_from_no_split_dataset_cannot_be_emitted() {
    let plan = r#"
[[step]]
name = "places"
op = "read"
dataset = "places"

[[step]]
name = "leads"
op = "emit"
input = "places"
subject = "place_id"
title = "t"
"#;
    let e = check(plan).unwrap_err();
    assert!(
        e.contains("step `leads`: emits rows that come from no split dataset"),
        "{e}"
    );
}

#[test]
fn the_sample_partitioned_plan_is_accepted() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("plugins/disability-fund-arrears/plan");
    let model = std::fs::read_to_string(dir.join("model.toml")).unwrap();
    let schemas: Vec<String> = [
        "employers",
        "social_insurance",
        "disabled_employees",
        "fund_payments",
    ]
    .iter()
    .map(|d| std::fs::read_to_string(root.join(format!("datasets/{d}.toml"))).unwrap())
    .collect();
    let refs: Vec<&str> = schemas.iter().map(String::as_str).collect();
    let catalog = Catalog::from_toml(&model, &refs).unwrap();
    assert_eq!(catalog.partition.as_ref().unwrap().split.len(), 4);
    let text = std::fs::read_to_string(dir.join("rule.plan.toml")).unwrap();
    let plan = Plan::parse("rule.plan.toml", &text).unwrap();
    check_plan(&plan, &catalog).unwrap();
}
