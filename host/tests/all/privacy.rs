//! Personal data leaves through no door: a model without a clear grant
//! learns no personal value through any host call the contract offers,
//! people read its leads resolved (masked, or clear on the record), and
//! keys and indexes must be declared.
//!
//! The `snoop` model (`tests/models/snoop`) tries every door: it dumps what
//! it reads into leads, unmarked; it asks for records by clear candidate
//! values through `get` and `lookup`; it reads scans by a personal key and
//! by an index over a personal field to learn their order; and it asks for
//! records by fields it did not declare.

use crate::common;

use common::{ingest_text, jiandu, leads, ledger, stderr, stdout, store_with_crate, test_model};
use std::path::Path;
use std::process::Output;

const PEOPLE_SCHEMA: &str = r#"
name = "people"
department = "公安局"
primary_key = ["id_number"]

[[fields]]
name = "id_number"
type = "string"
personal = "id"

[[fields]]
name = "name"
type = "string"
personal = "name"

[[fields]]
name = "city"
type = "string"

[indexes]
by_name = "name"
by_city = "city"

[[derived]]
name = "birth_date"
from = "id_number"
value = "birth_date"

[[derived]]
name = "sex"
from = "id_number"
value = "sex"
"#;

const PEOPLE_CSV: &str = "id_number,name,city\n\
11010519491231002X,张三,北京\n\
110105199001010011,李四,北京\n\
320102198502023344,王五,北京\n\
440106200012121235,赵六,广州\n";

const LICENCES_SCHEMA: &str = r#"
name = "licences"
department = "车管所"
primary_key = ["holder_id"]

[[fields]]
name = "holder_id"
type = "string"
personal = "id"

[[fields]]
name = "status"
type = "string"
"#;

const LICENCES_CSV: &str = "holder_id,status\n\
11010519491231002X,正常\n\
320102198502023344,吊销\n";

const CASES_SCHEMA: &str = r#"
name = "cases"
department = "公安局"
primary_key = ["case_id"]

[[fields]]
name = "case_id"
type = "string"

[[fields]]
name = "suspect_id"
type = "string"
personal = "id"

[[fields]]
name = "status"
type = "string"

[indexes]
by_suspect = "suspect_id"
by_status = "status"
"#;

const CASES_CSV: &str = "case_id,suspect_id,status\n\
C1,110105199001010011,立案\n\
C2,440106200012121235,撤案\n";

const CLEAR_IDS: [&str; 4] = [
    "11010519491231002X",
    "110105199001010011",
    "320102198502023344",
    "440106200012121235",
];
const CLEAR_NAMES: [&str; 4] = ["张三", "李四", "王五", "赵六"];

fn store() -> tempfile::TempDir {
    let store = store_with_crate(&test_model("snoop"));
    ingest_text(store.path(), "people", PEOPLE_SCHEMA, PEOPLE_CSV);
    ingest_text(store.path(), "licences", LICENCES_SCHEMA, LICENCES_CSV);
    ingest_text(store.path(), "cases", CASES_SCHEMA, CASES_CSV);
    store
}

fn snoop(store: &Path, attack: &str, candidates: &str) -> Output {
    jiandu(store)
        .args(["run", "snoop", "--param"])
        .arg(format!("attack={attack}"))
        .arg("--param")
        .arg(format!("candidates={candidates}"))
        .output()
        .unwrap()
}

fn ok(out: Output) {
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
}

/// Every byte of the model's stored leads snapshot files.
fn stored_leads(store: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(store.join("leads").join("snoop")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    text
}

/// Whether `s` is a pseudonym: `P-` and 32 lowercase hex digits.
fn is_pseudonym(s: &str) -> bool {
    s.len() == 34
        && s.starts_with("P-")
        && s[2..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn lead<'a>(leads: &'a [serde_json::Value], subject: &str) -> &'a serde_json::Value {
    leads
        .iter()
        .find(|l| l["subject"] == subject)
        .unwrap_or_else(|| panic!("no lead {subject} in {leads:#?}"))
}

/// One evidence value of a lead as `leads list --format json` shows it
/// (an object of typed values), as text.
fn evidence(lead: &serde_json::Value, name: &str) -> String {
    match &lead["evidence"][name] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => panic!("no evidence {name} in {lead:#}"),
        other => other.to_string(),
    }
}

#[test]
fn a_model_without_a_clear_grant_receives_pseudonyms_in_every_personal_field() {
    let store = store();
    ok(snoop(store.path(), "dump", ""));
    // What the model wrote, as stored: no clear value, no masked fragment.
    let stored = stored_leads(store.path());
    for clear in CLEAR_IDS.iter().chain(&CLEAR_NAMES) {
        assert!(!stored.contains(clear), "{clear} reached the model");
    }
    assert!(!stored.contains("****"), "a masked value reached the model");
    let raw = leads(store.path(), "snoop", true);
    assert_eq!(raw.len(), 4 + 2 + 2);
    // People read the pseudonyms resolved, wherever the model put them,
    // even unmarked: masked by default …
    let masked = serde_json::to_string(&leads(store.path(), "snoop", false)).unwrap();
    for clear in CLEAR_IDS.iter().chain(&CLEAR_NAMES) {
        assert!(!masked.contains(clear), "{clear} shown without --clear");
    }
    assert!(!masked.contains("P-"), "an unresolved pseudonym: {masked}");
    let masked = leads(store.path(), "snoop", false);
    let zhang = lead(&masked, "110105***********X");
    assert_eq!(zhang["title"], "张* 110105***********X");
    assert_eq!(evidence(zhang, "name"), "张*");
    // … and in clear with --clear.
    let clear = leads(store.path(), "snoop", true);
    let zhang = lead(&clear, "11010519491231002X");
    assert_eq!(zhang["title"], "张三 11010519491231002X");
    assert_eq!(evidence(zhang, "id"), "11010519491231002X");
    // What the schema derives reaches the model; nothing else of the ID.
    assert_eq!(evidence(zhang, "birth_date"), "1949-12-31");
    assert_eq!(evidence(zhang, "sex"), "女");
    assert_eq!(evidence(zhang, "city"), "北京");
    lead(&clear, "licence 320102198502023344");
    lead(&clear, "case 440106200012121235");
}

#[test]
fn clear_values_passed_as_keys_find_nothing_and_pseudonyms_find_their_records() {
    let store = store();
    let candidates = CLEAR_IDS
        .iter()
        .chain(&CLEAR_NAMES)
        .copied()
        .collect::<Vec<_>>()
        .join(",");
    ok(snoop(store.path(), "enumerate", &candidates));
    let subjects: Vec<String> = leads(store.path(), "snoop", false)
        .iter()
        .map(|l| l["subject"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !subjects.iter().any(|s| s.starts_with("HIT")),
        "a clear value found records: {subjects:?}"
    );
    let count = |prefix: &str| subjects.iter().filter(|s| s.starts_with(prefix)).count();
    assert_eq!(count("OK get people "), 4, "{subjects:?}");
    assert_eq!(count("OK get licences "), 2, "{subjects:?}");
    assert_eq!(count("OK lookup by_name "), 4, "{subjects:?}");
}

#[test]
fn scans_by_a_personal_key_or_index_come_in_pseudonym_order() {
    let store = store();
    ok(snoop(store.path(), "order", ""));
    let raw = leads(store.path(), "snoop", false);
    for what in ["people", "by_name", "by_city", "lookup by_city", "licences"] {
        let l = lead(&raw, &format!("order {what}"));
        assert_eq!(evidence(l, "ascending"), "true", "{l:#}");
    }
    // The keys as the model saw them are pseudonyms (shown masked here).
    let stored = stored_leads(store.path());
    let keys = stored
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|t| t.starts_with("P-"))
        .count();
    assert!(keys >= 4 + 4 + 4 + 3 + 2, "{stored}");
    assert!(stored
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|t| t.starts_with("P-"))
        .all(is_pseudonym));
}

fn assert_ended_undeclared(store: &Path, out: &Output) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    assert!(stderr(out).contains("undeclared-field"), "{}", stderr(out));
    let entries = ledger(store);
    let run = &entries[entries.len() - 1]["run"];
    assert_eq!(run["outcome"], "failed", "{run:#}");
    assert_eq!(run["error"]["kind"], "undeclared-field", "{run:#}");
    assert!(leads(store, "snoop", true).is_empty());
    let out = jiandu(store).args(["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_get_by_an_undeclared_primary_key_ends_the_run() {
    let store = store();
    let out = snoop(store.path(), "undeclared-key", "");
    assert_ended_undeclared(store.path(), &out);
    assert!(stderr(&out).contains("case_id"), "{}", stderr(&out));
}

#[test]
fn a_lookup_through_an_index_over_an_undeclared_field_ends_the_run() {
    let store = store();
    let out = snoop(store.path(), "undeclared-index", "");
    assert_ended_undeclared(store.path(), &out);
    assert!(stderr(&out).contains("status"), "{}", stderr(&out));
}

#[test]
fn a_clear_grant_gives_clear_values_and_the_ledger_says_so() {
    let store = store();
    std::fs::write(
        store.path().join("jiandu.toml"),
        "[models.snoop]\nclear_personal = true\n",
    )
    .unwrap();
    ok(snoop(store.path(), "dump", ""));
    let stored = stored_leads(store.path());
    assert!(stored.contains("11010519491231002X"), "{stored}");
    assert!(stored.contains("张三"), "{stored}");
    let entries = ledger(store.path());
    let started = entries
        .iter()
        .rev()
        .find(|e| e["kind"] == "run-started")
        .unwrap();
    for ds in started["run"]["datasets"].as_array().unwrap() {
        assert_eq!(ds["clear_personal"], true, "{ds:#}");
    }
    // The clear values a model wrote unmarked are its responsibility; the
    // ones it marked or that are pseudonyms are masked for readers.
    let masked = leads(store.path(), "snoop", false);
    assert!(masked
        .iter()
        .all(|l| !l["subject"].as_str().unwrap().starts_with("P-")));
}
