//! The four sample models on generated department files, through the real
//! binary: every planted lead is found with the independently computed
//! amounts and evidence, no near miss is, and the lead lifecycle and export
//! work as a case handler uses them.

use crate::common;

use common::{add_model, jiandu, repo, stderr, stdout};
use jiandu_demo::generate::{self, disability, drunk, land, theft, DataFile};
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const DRUNK: &str = "drunk-driving-withdrawal";
const LAND: &str = "land-transfer-fee-arrears";
const THEFT: &str = "repeat-theft-warning";
const DISABILITY: &str = "disability-fund-arrears";

/// A store with `model` installed and, with `clear_personal`, a host
/// policy granting it personal fields in clear.
fn store_for(model: &str, clear_personal: bool) -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    add_model(store.path(), &repo().join("plugins").join(model));
    if clear_personal {
        std::fs::write(
            store.path().join("jiandu.toml"),
            format!("[models.{model}]\nclear_personal = true\n"),
        )
        .unwrap();
    }
    store
}

fn ingest(store: &Path, files: &[DataFile]) {
    common::ingest_files(store, files);
}

fn run(store: &Path, model: &str, params: &[(String, String)]) -> std::process::Output {
    let mut cmd = jiandu(store);
    cmd.args(["run", model]);
    for (k, v) in params {
        cmd.arg("--param").arg(format!("{k}={v}"));
    }
    cmd.output().unwrap()
}

fn run_ok(store: &Path, model: &str, params: &[(String, String)]) -> String {
    let out = run(store, model, params);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// The model's leads as exported to CSV: one map per lead, evidence fields
/// as columns, keyed by subject.
fn exported(
    store: &Path,
    model: &str,
    extra: &[&str],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let file = store.join("export.csv");
    let out = jiandu(store)
        .args(["leads", "export", "--model", model, "-o"])
        .arg(&file)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&file).unwrap();
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").expect("BOM")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            let row: BTreeMap<String, String> = header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect();
            (row["subject"].clone(), row)
        })
        .collect()
}

fn yuan(x: Decimal) -> String {
    format!(
        "{:.2}",
        x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    )
}

fn subjects<T>(m: &BTreeMap<String, T>) -> BTreeSet<String> {
    m.keys().cloned().collect()
}

#[test]
fn drunk_driving_finds_every_planted_case_and_no_near_miss() {
    let store = store_for(DRUNK, false);
    let data = tempfile::tempdir().unwrap();
    let g = drunk::generate(data.path(), 1200, 17).unwrap();
    ingest(store.path(), &g.files);
    let out = run_ok(store.path(), DRUNK, &[]);
    assert!(
        out.contains(&format!("{} leads", g.expected.len())),
        "{out}"
    );
    let leads = exported(store.path(), DRUNK, &["--clear"]);
    let want: BTreeSet<String> = g.expected.iter().map(|e| e.case_id.clone()).collect();
    assert_eq!(subjects(&leads), want);
    for e in &g.expected {
        let l = &leads[&e.case_id];
        assert!(
            l["finding"].starts_with(e.lead),
            "{:?} at {}: {}",
            e.scenario,
            e.case_id,
            l["finding"]
        );
        if let Some(days) = e.days_open {
            assert_eq!(l["days_open"], days.to_string(), "{}", e.case_id);
        }
        let bac = e.bac.map(|b| b.normalize().to_string());
        let shown = l["bac_mg_100ml"]
            .split(' ')
            .next()
            .unwrap()
            .parse::<Decimal>();
        assert_eq!(
            shown.ok().map(|b| b.normalize().to_string()),
            bac,
            "{}",
            e.case_id
        );
        // The suspect's ID is personal data, kept with the lead.
        assert_eq!(l["suspect_id"].len(), 18, "{}", e.case_id);
    }
    for (case, scenario) in &g.near_misses {
        assert!(
            !leads.contains_key(case),
            "near miss {scenario:?} at {case}"
        );
    }
}

/// The leads a person sees in clear, after a run with or without a clear
/// grant on the same data.
fn clear_leads_after_run(
    model: &str,
    clear_personal: bool,
    files: &[DataFile],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let store = store_for(model, clear_personal);
    ingest(store.path(), files);
    run_ok(store.path(), model, &[]);
    exported(store.path(), model, &["--clear"])
}

#[test]
fn id_joining_models_find_the_same_leads_without_a_clear_grant() {
    let data = tempfile::tempdir().unwrap();
    let drunk = drunk::generate(&data.path().join("drunk"), 600, 5).unwrap();
    let theft = theft::generate(&data.path().join("theft"), 800, 9).unwrap();
    for (model, files) in [(DRUNK, &drunk.files), (THEFT, &theft.files)] {
        let pseudonymous = clear_leads_after_run(model, false, files);
        let clear = clear_leads_after_run(model, true, files);
        assert!(!clear.is_empty(), "{model} found no leads");
        // Same people, same evidence; only the run ids and times differ.
        let content = |leads: &BTreeMap<String, BTreeMap<String, String>>| {
            leads
                .iter()
                .map(|(subject, row)| {
                    let mut row = row.clone();
                    for volatile in ["first_run", "last_run", "updated_at"] {
                        row.remove(volatile);
                    }
                    (subject.clone(), row)
                })
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(content(&pseudonymous), content(&clear), "{model}");
    }
}

fn check_land(
    leads: &BTreeMap<String, BTreeMap<String, String>>,
    expected: &[land::Expected],
    near_misses: &[(String, land::Scenario)],
) {
    let want: BTreeSet<String> = expected.iter().map(|e| e.contract_no.clone()).collect();
    assert_eq!(subjects(leads), want);
    for e in expected {
        let l = &leads[&e.contract_no];
        let letters: String = l["findings"]
            .split("; ")
            .filter_map(|f| f.chars().next())
            .collect();
        assert_eq!(letters, e.findings, "{:?} at {}", e.scenario, e.contract_no);
        if e.findings.contains('A') {
            assert_eq!(l["amount"], yuan(e.arrears), "{}", e.contract_no);
            assert_eq!(l["overdue_arrears"], yuan(e.arrears), "{}", e.contract_no);
            assert_eq!(l["penalty"], yuan(e.penalty), "{}", e.contract_no);
            assert_eq!(
                l["overdue_no_action_flag"],
                e.flag.to_string(),
                "{:?} at {}",
                e.scenario,
                e.contract_no
            );
        } else {
            assert_eq!(l["amount"], "", "{}", e.contract_no);
        }
    }
    for (no, scenario) in near_misses {
        if !want.contains(no) {
            assert!(!leads.contains_key(no), "near miss {scenario:?} at {no}");
        }
    }
}

#[test]
fn land_transfer_finds_every_planted_contract_with_penalty_and_flag() {
    let store = store_for(LAND, false);
    let data = tempfile::tempdir().unwrap();
    let g = land::generate(data.path(), 900, 23).unwrap();
    ingest(store.path(), &g.files);
    run_ok(store.path(), LAND, &g.params);
    let leads = exported(store.path(), LAND, &[]);
    check_land(&leads, &g.expected, &g.near_misses);
    // Every near miss stays out under the generator's grace period.
    for (no, scenario) in &g.near_misses {
        assert!(!leads.contains_key(no), "near miss {scenario:?} at {no}");
    }
}

#[test]
fn land_transfer_without_a_grace_period_reports_one_day_late() {
    let store = store_for(LAND, false);
    let data = tempfile::tempdir().unwrap();
    let g = land::generate(data.path(), 300, 29).unwrap();
    ingest(store.path(), &g.files);
    run_ok(store.path(), LAND, &[]);
    let strict = g.expected_for(0);
    assert!(strict.len() > g.expected.len());
    let leads = exported(store.path(), LAND, &[]);
    check_land(&leads, &strict, &g.near_misses);
}

#[test]
fn repeat_theft_alerts_exactly_the_planted_people_with_their_scores() {
    let store = store_for(THEFT, false);
    let data = tempfile::tempdir().unwrap();
    let g = theft::generate(data.path(), 2000, 31).unwrap();
    ingest(store.path(), &g.files);
    run_ok(store.path(), THEFT, &[]);
    let leads = exported(store.path(), THEFT, &["--clear"]);
    let want: BTreeSet<String> = g.expected.iter().map(|e| e.person_id.clone()).collect();
    assert_eq!(subjects(&leads), want);
    for e in &g.expected {
        assert_eq!(
            leads[&e.person_id]["score"],
            e.score.to_string(),
            "{:?} at {}",
            e.scenario,
            e.person_id
        );
    }
    for (person, scenario) in &g.near_misses {
        assert!(!leads.contains_key(person), "near miss {scenario:?}");
    }
}

#[test]
fn export_masks_personal_fields_unless_clear_and_xlsx_reads_back() {
    let store = store_for(THEFT, false);
    let data = tempfile::tempdir().unwrap();
    let g = theft::generate(data.path(), 300, 7).unwrap();
    ingest(store.path(), &g.files);
    run_ok(store.path(), THEFT, &[]);
    let masked = exported(store.path(), THEFT, &[]);
    assert_eq!(masked.len(), g.expected.len());
    for subject in masked.keys() {
        assert!(subject.contains("********"), "{subject}");
        assert!(!g.expected.iter().any(|e| &e.person_id == subject));
    }
    let file = store.path().join("leads.xlsx");
    jiandu(store.path())
        .args(["leads", "export", "--format", "xlsx", "-o"])
        .arg(&file)
        .assert()
        .success();
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&file).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<Vec<String>> = range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    // Chinese headers for case handlers by default; English for scripts.
    assert_eq!(rows[0][2], "线索对象");
    assert_eq!(rows[0][4], "金额（元）");
    assert_eq!(rows.len(), g.expected.len() + 1);
    // Whole numbers in evidence are numbers; identifiers stay text.
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&file).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    let typed: Vec<&calamine::Data> = range.rows().skip(1).flat_map(|r| r.iter()).collect();
    assert!(
        typed
            .iter()
            .any(|c| matches!(c, calamine::Data::Float(_) | calamine::Data::Int(_))),
        "no number among {typed:?}"
    );
    let english = store.path().join("leads-en.xlsx");
    jiandu(store.path())
        .args(["leads", "export", "--headers", "en", "-o"])
        .arg(&english)
        .assert()
        .success();
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&english).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(range.rows().next().unwrap()[2].to_string(), "subject");
    let text = rows.concat().join(" ");
    for e in &g.expected {
        assert!(!text.contains(&e.person_id), "{} in clear", e.person_id);
    }
}

#[test]
fn rectified_employers_are_resolved_by_the_rerun() {
    let store = store_for(DISABILITY, false);
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate(data.path(), 1500, 13).unwrap();
    ingest(store.path(), &g.files);
    run_ok(store.path(), DISABILITY, &[]);
    // A third of the employers pay their gap before the assessment date.
    let payments = g
        .files
        .iter()
        .find(|f| f.dataset == "fund_payments")
        .unwrap();
    let mut text = std::fs::read_to_string(&payments.path).unwrap();
    let rectified: BTreeSet<String> = g
        .expected
        .iter()
        .step_by(3)
        .map(|e| {
            text.push_str(
                &serde_json::json!({
                    "credit_code": e.credit_code,
                    "levy_year": disability::LEVY_YEAR,
                    "payment_id": format!("ZG{}", e.credit_code),
                    "amount": e.gap.to_string(),
                    "paid_on": "2024-12-20",
                })
                .to_string(),
            );
            text.push('\n');
            e.credit_code.clone()
        })
        .collect();
    let file = data.path().join("fund_payments_rectified.jsonl");
    std::fs::write(&file, text).unwrap();
    ingest(
        store.path(),
        &[DataFile {
            dataset: "fund_payments".into(),
            path: file,
            rows: 0,
        }],
    );
    let out = run_ok(store.path(), DISABILITY, &[]);
    assert!(
        out.contains(&format!("resolved {}", rectified.len())),
        "{out}"
    );
    let list = |status: &str| -> Vec<serde_json::Value> {
        let out = jiandu(store.path())
            .args(["leads", "list", "--model", DISABILITY, "--format", "json"])
            .args(["--status", status])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let resolved = list("resolved");
    let open = list("open");
    let got: BTreeSet<String> = resolved
        .iter()
        .map(|l| l["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, rectified);
    assert_eq!(open.len(), g.expected.len() - rectified.len());
    assert!(list("new").is_empty());
    // Resolved by the second run: the run every open lead was last seen in.
    let second_run = open[0]["last_run"].clone();
    assert!(resolved.iter().all(|l| l["resolved_by"] == second_run));
    let exported = exported(store.path(), DISABILITY, &["--status", "resolved"]);
    assert_eq!(subjects(&exported), rectified);
    assert!(exported.values().all(|l| l["status"] == "resolved"));
}

#[test]
fn shipped_schemas_cover_every_dataset_the_models_declare() {
    for model in [DISABILITY, DRUNK, LAND, THEFT] {
        let text =
            std::fs::read_to_string(repo().join("plugins").join(model).join("model.toml")).unwrap();
        let manifest: toml::Value = toml::from_str(&text).unwrap();
        for (dataset, decl) in manifest["datasets"].as_table().unwrap() {
            let schema = generate::schema(dataset)
                .unwrap_or_else(|| panic!("{model} reads `{dataset}`, which has no schema"));
            for field in decl["fields"].as_array().unwrap() {
                let field = field.as_str().unwrap();
                assert!(
                    schema.field_index(field).is_some(),
                    "{model}: {dataset}.{field} is not in datasets/{dataset}.toml"
                );
            }
        }
    }
}

/// The last `run-finished` entry's run record.
fn last_run(store: &Path) -> serde_json::Value {
    common::ledger(store)
        .into_iter()
        .rev()
        .find(|e| e["kind"] == "run-finished")
        .expect("a run-finished entry")["run"]
        .clone()
}

#[test]
fn a_partitioned_run_keeps_the_leads_and_digest_of_a_single_instance() {
    let store = store_for(DISABILITY, false);
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate_at_rate(data.path(), 20_000, 17, 250).unwrap();
    ingest(store.path(), &g.files);
    let run_parts = |parts: &str| {
        let out = jiandu(store.path())
            .args(["run", DISABILITY, "--partitions", parts])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        // The summary says when a run ran as parts.
        let said = stdout(&out);
        assert_eq!(said.contains(" parts: "), parts != "1", "{said}");
        // Each part logs its count; without -v the first part's line
        // stands for the others'.
        let logged = stderr(&out);
        let lines = logged.lines().filter(|l| l.contains("] info: ")).count();
        if parts == "1" {
            assert_eq!(lines, 1, "{logged}");
        } else {
            assert!(logged.contains("] info: part 1 of "), "{logged}");
            assert!(!logged.contains("] info: part 2 of "), "{logged}");
            assert!(
                logged.contains("more info lines from the other parts (-v shows them)"),
                "{logged}"
            );
        }
        last_run(store.path())
    };
    let one = run_parts("1");
    assert!(one.get("partitions").is_none(), "{one:#}");
    let three = run_parts("3");
    let parts = three["partitions"]
        .as_array()
        .expect("the parts are recorded");
    assert!(parts.len() >= 2, "{three:#}");
    // The same leads: the same digest, nothing changed by the second run.
    assert_eq!(one["leads_digest"], three["leads_digest"]);
    assert_eq!(one["leads_count"], three["leads_count"]);
    assert_eq!(three["leads_count"], g.expected.len());
    let exported = exported(store.path(), DISABILITY, &[]);
    assert_eq!(exported.len(), g.expected.len());
    for e in &g.expected {
        assert_eq!(exported[&e.credit_code]["amount"], e.gap.to_string());
    }
    // The parts cover the keys once: contiguous ranges, open at both ends,
    // reading together what one instance read.
    assert!(parts[0].get("from").is_none() && parts[parts.len() - 1].get("to").is_none());
    for w in parts.windows(2) {
        assert_eq!(w[0]["to"], w[1]["from"]);
        assert!(w[0]["to"].as_str() < w[1]["to"].as_str().or(Some("\u{10ffff}")));
    }
    let read: u64 = parts
        .iter()
        .map(|p| p["records_read"].as_u64().unwrap())
        .sum();
    assert_eq!(read, three["records_read"].as_u64().unwrap());
    assert_eq!(read, one["records_read"].as_u64().unwrap());
    for p in parts {
        assert_eq!(p["key"], "credit_code");
        assert_eq!(p["datasets"].as_array().unwrap().len(), 4, "{p:#}");
    }
    // More parts than cores (the default makes several per core): they
    // take turns on the cores, with the same leads.
    let many = run_parts("24");
    let count = many["partitions"].as_array().expect("the parts").len();
    assert!(count > parts.len(), "{many:#}");
    // With -v, every part's line.
    let out = jiandu(store.path())
        .args(["-v", "run", DISABILITY, "--partitions", "3"])
        .output()
        .unwrap();
    let logged = stderr(&out);
    let lines = logged
        .lines()
        .filter(|l| l.contains("] info: part "))
        .count();
    assert_eq!(lines, parts.len(), "{logged}");
    assert_eq!(one["leads_digest"], many["leads_digest"]);
    assert_eq!(one["records_read"], many["records_read"]);
    let out = jiandu(store.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}
