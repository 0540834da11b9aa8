//! What people are shown, through the real binary: text a model chose
//! reaches a terminal and a spreadsheet inert, and every showing of
//! personal values in clear is on the record.
//!
//! The `printer` test model emits one lead whose title, evidence and log
//! line are its parameters (with `\xNN` escapes it decodes), so each test
//! decides exactly what a model hands the host.

use crate::common;

use common::{
    add_model, ingest_text, jiandu, json, ledger, stderr, stdout, test_model, PEOPLE_SCHEMA,
};
use serde_json::Value;
use std::path::Path;

/// Characters a terminal acts on, none of which may be printed raw.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| c.is_control() && c != '\n')
        .collect()
}

fn printer_store() -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    add_model(store.path(), &test_model("printer"));
    store
}

/// `jiandu run printer` with `params` (name=value, escapes decoded by the
/// model).
fn print_run(store: &Path, params: &[&str]) -> std::process::Output {
    let mut cmd = jiandu(store);
    cmd.args(["run", "printer"]);
    for p in params {
        cmd.args(["--param", p]);
    }
    cmd.output().unwrap()
}

fn ok(out: std::process::Output) -> std::process::Output {
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    out
}

// ---------------------------------------------------------------------------
// Model text on a terminal

#[test]
fn control_characters_in_lead_text_print_escaped_in_tables_and_csv() {
    let store = printer_store();
    ok(print_run(
        store.path(),
        &[
            "title=\\x1b[2J\\x1b]0;owned\\x07fake\\x0dtitle\\x08",
            "evidence_name=n\\x1b[31m",
            "evidence_value=v\\u{9b}1m\\x7f",
        ],
    ));
    for format in ["table", "csv"] {
        let out = ok(jiandu(store.path())
            .args(["leads", "list", "--format", format])
            .output()
            .unwrap());
        let text = stdout(&out);
        assert_eq!(raw_controls(&text), Vec::<char>::new(), "{format}: {text}");
        assert!(
            text.contains("\\u{1b}[2J\\u{1b}]0;owned\\u{7}fake\\u{d}title\\u{8}"),
            "{format}: {text}"
        );
        assert!(
            text.contains("n\\u{1b}[31m=v\\u{9b}1m\\u{7f}"),
            "{format}: {text}"
        );
    }
    // JSON stays JSON: the text reads back exactly as the model wrote it,
    // and nothing in the bytes acts on a terminal.
    let out = ok(jiandu(store.path())
        .args(["leads", "list", "--format", "json"])
        .output()
        .unwrap());
    assert_eq!(raw_controls(&stdout(&out)), Vec::<char>::new());
    let leads = json(&out);
    assert_eq!(
        leads[0]["title"],
        "\u{1b}[2J\u{1b}]0;owned\u{7}fake\rtitle\u{8}"
    );
    assert_eq!(
        leads[0]["evidence"],
        serde_json::json!({"n\u{1b}[31m": "v\u{9b}1m\u{7f}"})
    );
}

#[test]
fn log_lines_and_failure_messages_of_a_run_print_escaped() {
    let store = printer_store();
    let out = print_run(
        store.path(),
        &[
            "log=first\\x0arun 1 of printer succeeded\\x1b[1A",
            "fail=gave up\\x1b[2K\\x0drun succeeded\\u{85}",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(raw_controls(&err), Vec::<char>::new(), "{err}");
    // A log line stays one line.
    assert!(
        err.contains("[printer] info: first\\u{a}run 1 of printer succeeded\\u{1b}[1A\n"),
        "{err}"
    );
    assert!(
        err.contains("failed (panic)")
            && err.contains("gave up\\u{1b}[2K\\u{d}run succeeded\\u{85}"),
        "{err}"
    );

    let out = print_run(store.path(), &["fail=bad\\x07\\x1bc", "fail_as=error"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(raw_controls(&err), Vec::<char>::new(), "{err}");
    assert!(err.contains("bad\\u{7}\\u{1b}c"), "{err}");

    // The ledger's table shows the failure escaped too.
    for format in ["table", "csv"] {
        let out = ok(jiandu(store.path())
            .args(["audit", "log", "--outcome", "failed", "--format", format])
            .output()
            .unwrap());
        let text = stdout(&out);
        assert_eq!(raw_controls(&text), Vec::<char>::new(), "{format}: {text}");
        assert!(text.contains("bad\\u{7}\\u{1b}c"), "{format}: {text}");
    }
}

#[test]
fn error_messages_print_escaped() {
    let store = printer_store();
    let out = jiandu(store.path())
        .args(["run", "printer", "--param", "no\u{1b}[2Jsuch=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = stderr(&out);
    assert_eq!(raw_controls(&err), Vec::<char>::new(), "{err}");
    assert!(err.contains("no\\u{1b}[2Jsuch"), "{err}");
}

// ---------------------------------------------------------------------------
// Model text in a spreadsheet

/// Cells a spreadsheet would run as formulas, as a model wrote them, and
/// as they must come out.
const FORMULAS: [(&str, &str); 4] = [
    (
        "=HYPERLINK(\"http://x\",\"y\")",
        "'=HYPERLINK(\"http://x\",\"y\")",
    ),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("+1-2", "'+1-2"),
    ("＝1+1", "'＝1+1"),
];

fn formula_store() -> tempfile::TempDir {
    let store = printer_store();
    ok(print_run(
        store.path(),
        &[
            &format!("evidence_name={}", FORMULAS[0].0),
            &format!("evidence_value={}", FORMULAS[1].0),
            &format!("title={}", FORMULAS[2].0),
            &format!("personal={}", FORMULAS[3].0),
        ],
    ));
    store
}

#[test]
fn formula_starts_are_neutralised_in_every_csv_export_cell_header_included() {
    let store = formula_store();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leads.csv");
    ok(jiandu(store.path())
        .args(["leads", "export", "--clear", "-o"])
        .arg(&file)
        .output()
        .unwrap());
    let text = std::fs::read_to_string(&file).unwrap();
    let mut rows = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(String::from).collect();
    let row: Vec<String> = rows
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(String::from)
        .collect();
    let cell = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
    assert!(header.contains(&FORMULAS[0].1.to_string()), "{header:?}");
    assert_eq!(cell(FORMULAS[0].1), FORMULAS[1].1);
    assert_eq!(cell("title"), FORMULAS[2].1);
    assert_eq!(cell("name"), FORMULAS[3].1);
    for c in header.iter().chain(&row) {
        assert!(
            !c.starts_with(['=', '+', '@', '＝', '＋', '＠']),
            "{c} would run: {text}"
        );
    }
}

#[test]
fn formula_starts_are_neutralised_in_every_xlsx_export_cell_header_included() {
    use calamine::{Reader, Xlsx};
    let store = formula_store();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leads.xlsx");
    ok(jiandu(store.path())
        .args(["leads", "export", "--clear", "-o"])
        .arg(&file)
        .output()
        .unwrap());
    let mut book: Xlsx<_> = calamine::open_workbook(&file).unwrap();
    let sheet = book.worksheet_range("线索").unwrap();
    let cells: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    let (header, row) = (&cells[0], &cells[1]);
    let cell = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
    assert!(header.contains(&FORMULAS[0].1.to_string()), "{header:?}");
    assert_eq!(cell(FORMULAS[0].1), FORMULAS[1].1);
    assert_eq!(cell("线索摘要"), FORMULAS[2].1);
    assert_eq!(cell("name"), FORMULAS[3].1);
}

#[test]
fn leads_listed_as_csv_are_neutralised_too() {
    let store = formula_store();
    let out = ok(jiandu(store.path())
        .args(["leads", "list", "--format", "csv"])
        .output()
        .unwrap());
    let text = stdout(&out);
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(String::from).collect();
    let row: Vec<String> = rows
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(String::from)
        .collect();
    let cell = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
    assert_eq!(cell("title"), FORMULAS[2].1);
    // The evidence cell starts with the first evidence name.
    assert!(cell("evidence").starts_with(FORMULAS[0].1), "{text}");
}

// ---------------------------------------------------------------------------
// model.toml text

/// The printer crate copied to a folder of its own, its model.toml edited.
fn printer_crate_with(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&test_model("printer"), dir.path());
    let toml = dir.path().join("model.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, edit(&text)).unwrap();
    dir
}

#[test]
fn model_build_refuses_a_dataset_name_that_is_not_a_name() {
    let crate_dir = printer_crate_with(|t| format!("{t}\n[datasets]\n\"../x\" = {{}}\n"));
    let store = tempfile::tempdir().unwrap();
    let out = jiandu(store.path())
        .args(["model", "build"])
        .arg(crate_dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("[datasets]") && err.contains("`../x`"),
        "{err}"
    );
    assert!(!store.path().join("models").join("printer").exists());
}

#[test]
fn model_build_refuses_control_characters_in_the_title_naming_the_key() {
    let crate_dir =
        printer_crate_with(|t| t.replace("title = \"测试：输出\"", "title = \"测试\\u001b[2J\""));
    let store = tempfile::tempdir().unwrap();
    let out = jiandu(store.path())
        .args(["model", "build"])
        .arg(crate_dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(raw_controls(&err), Vec::<char>::new(), "{err}");
    assert!(err.contains("title: ") && err.contains("U+001B"), "{err}");
    assert!(!store.path().join("models").join("printer").exists());
}

#[test]
fn an_installed_model_toml_edited_to_hold_control_characters_is_refused_at_load() {
    let store = printer_store();
    let toml = store
        .path()
        .join("models")
        .join("printer")
        .join("model.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replace(
            "description = \"A log line",
            "description = \"A log\\u009b2J line",
        ),
    )
    .unwrap();
    for args in [&["model", "show", "printer"][..], &["run", "printer"]] {
        let out = jiandu(store.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("params.log.description") && err.contains("U+009B"),
            "{args:?}: {err}"
        );
    }
}

// ---------------------------------------------------------------------------
// Personal values in clear, on the record

const PEOPLE_CSV: &str = "id_number,name,city,age\n\
11010519491231002X,张三,北京,75\n\
110105199001010011,李四,上海,34\n\
110105195001010033,王五,深圳,74\n";

/// A store where the `good` model (no clear grant: it sees pseudonyms)
/// has run over `people`: two leads, each with a personal subject and two
/// personal evidence fields.
fn people_store() -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    add_model(store.path(), &test_model("good"));
    ingest_text(store.path(), "people", PEOPLE_SCHEMA, PEOPLE_CSV);
    ok(jiandu(store.path()).args(["run", "good"]).output().unwrap());
    store
}

fn disclosures(store: &Path) -> Vec<Value> {
    ledger(store)
        .into_iter()
        .filter(|e| e["kind"] == "personal-data-revealed")
        .collect()
}

#[test]
fn listing_leads_in_clear_is_recorded_with_operator_and_counts() {
    let store = people_store();
    let before = ledger(store.path()).len();
    let out = ok(jiandu(store.path())
        .args(["leads", "list", "--model", "good"])
        .output()
        .unwrap());
    assert!(!stdout(&out).contains("11010519491231002X"));
    assert_eq!(
        ledger(store.path()).len(),
        before,
        "masked: nothing to record"
    );

    let out = ok(jiandu(store.path())
        .args([
            "--operator",
            "检察官甲",
            "leads",
            "list",
            "--clear",
            "--model",
            "good",
        ])
        .output()
        .unwrap());
    assert!(
        stdout(&out).contains("11010519491231002X"),
        "{}",
        stdout(&out)
    );
    let entries = ledger(store.path());
    assert_eq!(entries.len(), before + 1);
    let e = &entries[before];
    assert_eq!(e["kind"], "personal-data-revealed", "{e:#}");
    assert_eq!(e["operator"], "检察官甲");
    let d = &e["disclosure"];
    assert_eq!(d["command"], "leads list");
    assert_eq!(d["model"], "good");
    assert_eq!(d["leads"], 2, "{d:#}");
    // Per lead: the subject, the ID and the name.
    assert_eq!(d["values"], 6, "{d:#}");
    assert!(
        stderr(&out).contains(&format!("ledger entry {}", e["seq"])),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exporting_leads_in_clear_is_recorded_with_the_file_and_filters() {
    let store = people_store();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("线索.xlsx");
    ok(jiandu(store.path())
        .args(["leads", "export", "--status", "new", "-o"])
        .arg(&file)
        .output()
        .unwrap());
    assert_eq!(
        disclosures(store.path()).len(),
        0,
        "masked: nothing to record"
    );
    ok(jiandu(store.path())
        .args(["leads", "export", "--clear", "--status", "new", "-o"])
        .arg(&file)
        .output()
        .unwrap());
    let found = disclosures(store.path());
    assert_eq!(found.len(), 1);
    let d = &found[0]["disclosure"];
    assert_eq!(d["command"], "leads export");
    assert_eq!(d["status"], "new");
    assert_eq!(d["output"], file.display().to_string());
    assert_eq!(
        (d["leads"].as_u64(), d["values"].as_u64()),
        (Some(2), Some(6))
    );
    assert!(d.get("model").is_none(), "{d:#}");
}

#[test]
fn leads_in_clear_without_personal_values_write_no_entry() {
    let store = printer_store();
    ok(print_run(store.path(), &[]));
    let before = ledger(store.path()).len();
    ok(jiandu(store.path())
        .args(["leads", "list", "--clear"])
        .output()
        .unwrap());
    assert_eq!(ledger(store.path()).len(), before);
}

#[test]
fn a_ledger_with_disclosures_verifies_exports_imports_and_reports_no_extra_runs() {
    let unit = people_store();
    jiandu(unit.path())
        .args([
            "unit",
            "init",
            "--name",
            "温宿县人民检察院",
            "--code",
            "11652922MB1234567X",
        ])
        .assert()
        .success();
    ok(jiandu(unit.path())
        .args(["leads", "list", "--clear"])
        .output()
        .unwrap());
    ok(jiandu(unit.path()).args(["run", "good"]).output().unwrap());
    ok(jiandu(unit.path())
        .args(["leads", "list", "--clear", "--model", "good"])
        .output()
        .unwrap());
    assert_eq!(disclosures(unit.path()).len(), 2);

    let out = ok(jiandu(unit.path())
        .args(["audit", "verify"])
        .output()
        .unwrap());
    assert!(stdout(&out).contains("verified"), "{}", stdout(&out));

    // The table names what was shown, and to whom.
    let out = ok(jiandu(unit.path())
        .args(["audit", "log", "--model", "good"])
        .output()
        .unwrap());
    let table = stdout(&out);
    assert!(
        table.contains("6 personal values in clear in 2 leads: leads list --model good"),
        "{table}"
    );

    // A report counts runs, not disclosures.
    let out = ok(jiandu(unit.path())
        .args(["audit", "report", "--format", "json"])
        .output()
        .unwrap());
    let report = json(&out);
    assert_eq!(report[0]["runs"], 2, "{report:#}");
    assert_eq!(
        report[0]["models"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );

    // The central office imports and verifies it like any ledger.
    let files = tempfile::tempdir().unwrap();
    let export = files.path().join("wensu.jsonl");
    ok(jiandu(unit.path())
        .args(["audit", "export", "-o"])
        .arg(&export)
        .output()
        .unwrap());
    let key = files.path().join("unit.json");
    let out = ok(jiandu(unit.path())
        .args(["unit", "show", "--format", "json"])
        .output()
        .unwrap());
    std::fs::write(&key, &out.stdout).unwrap();
    let central = tempfile::tempdir().unwrap();
    ok(jiandu(central.path())
        .args(["audit", "unit", "add"])
        .arg(&key)
        .output()
        .unwrap());
    ok(jiandu(central.path())
        .args(["audit", "import"])
        .arg(&export)
        .output()
        .unwrap());
    ok(jiandu(central.path())
        .args(["audit", "verify", "--central"])
        .output()
        .unwrap());
    let out = ok(jiandu(central.path())
        .args(["audit", "log", "--central", "--format", "json"])
        .output()
        .unwrap());
    let imported: Vec<Value> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "personal-data-revealed")
        .cloned()
        .collect();
    assert_eq!(imported.len(), 2);
    assert_eq!(imported[1]["disclosure"]["values"], 6);
}

#[test]
fn quiet_shows_results_only_and_cannot_be_verbose_too() {
    let store = tempfile::tempdir().unwrap();
    let out = jiandu(store.path())
        .args(["--quiet", "dataset", "list", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "[]");
    assert_eq!(stderr(&out), "");
    let out = jiandu(store.path())
        .args(["-q", "-v", "dataset", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_models_log_lines_show_by_level_as_the_hosts_own() {
    let store = printer_store();
    // (level, flags, shown)
    let cases: &[(&str, &[&str], bool)] = &[
        ("debug", &[], false),
        ("debug", &["-v"], true),
        ("debug", &["--quiet"], false),
        ("info", &[], true),
        ("info", &["--quiet"], false),
        ("warn", &[], true),
        ("warn", &["--quiet"], true),
    ];
    for (level, flags, shown) in cases {
        let out = jiandu(store.path())
            .args(*flags)
            .args(["run", "printer", "--param", "log=the line"])
            .args(["--param", &format!("log_level={level}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let line = format!("[printer] {level}: the line");
        assert_eq!(
            stderr(&out).contains(&line),
            *shown,
            "{level} with {flags:?}:\n{}",
            stderr(&out)
        );
    }
}
