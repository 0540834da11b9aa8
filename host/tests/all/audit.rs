//! Central audit through the real binary: units sign their ledgers and
//! export them; a central office registers the units, imports, verifies,
//! queries and reports; tampered exports are refused with their location.

use crate::common;

use common::{jiandu, repo, stderr, stdout, store_with_model};
use jiandu_demo::generate::disability;
use std::path::{Path, PathBuf};

const MODEL: &str = "disability-fund-arrears";

/// The store's `run-finished` entries, oldest first.
fn finished_runs(store: &Path) -> Vec<serde_json::Value> {
    common::ledger(store)
        .into_iter()
        .filter(|e| e["kind"] == "run-finished")
        .collect()
}

fn ingest_generated(store: &Path, employers: usize, seed: u64) {
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate(data.path(), employers, seed).unwrap();
    common::ingest_files(store, &g.files);
}

/// A unit store with the sample model, a unit key, data (4 datasets, an
/// ingest entry each), `runs` successful runs and one refused run.
fn unit_store(name: &str, code: &str, runs: usize, seed: u64) -> tempfile::TempDir {
    let store = store_with_model(MODEL);
    jiandu(store.path())
        .args(["unit", "init", "--name", name, "--code", code])
        .assert()
        .success();
    ingest_generated(store.path(), 300, seed);
    for _ in 0..runs {
        jiandu(store.path()).args(["run", MODEL]).assert().success();
    }
    jiandu(store.path())
        .args(["run", MODEL, "--param", "ratio=lots"])
        .assert()
        .failure();
    store
}

fn export(store: &Path, file: &Path, since: Option<&str>) {
    let mut cmd = jiandu(store);
    cmd.args(["audit", "export", "-o"]).arg(file);
    if let Some(s) = since {
        cmd.args(["--since", s]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

fn register(central: &Path, unit: &Path, dir: &Path) {
    let out = jiandu(unit)
        .args(["unit", "show", "--format", "json"])
        .output()
        .unwrap();
    let file = dir.join(format!(
        "{}.json",
        unit.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&file, &out.stdout).unwrap();
    jiandu(central)
        .args(["audit", "unit", "add"])
        .arg(&file)
        .assert()
        .success();
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(out), stderr(out)))
}

/// `audit import --format json` of one file: the refusal, if refused.
fn import(central: &Path, file: &Path) -> (bool, serde_json::Value) {
    let out = jiandu(central)
        .args(["audit", "import", "--format", "json"])
        .arg(file)
        .output()
        .unwrap();
    let v = json(&out);
    let accepted = v[0]["accepted"].as_bool().unwrap();
    assert_eq!(out.status.success(), accepted);
    (accepted, v[0]["refusal"].clone())
}

fn lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(file: &Path, lines: &[String]) -> PathBuf {
    std::fs::write(file, lines.join("\n") + "\n").unwrap();
    file.to_path_buf()
}

#[test]
fn three_units_export_and_the_central_office_imports_verifies_queries_and_reports() {
    let a = unit_store("温宿县人民检察院", "11652922MB1234567X", 2, 1);
    let b = unit_store("乌什县人民检察院", "11652927MB7654321Y", 1, 2);
    let c = unit_store("阿瓦提县人民检察院", "11652928MB1111111Z", 1, 3);
    let central = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let mut exports = Vec::new();
    for (i, u) in [&a, &b, &c].iter().enumerate() {
        register(central.path(), u.path(), files.path());
        let f = files.path().join(format!("unit{i}.jsonl"));
        export(u.path(), &f, None);
        exports.push(f);
    }
    let out = jiandu(central.path())
        .args(["audit", "import"])
        .args(&exports)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).matches("accepted").count(),
        3,
        "{}",
        stdout(&out)
    );

    let out = jiandu(central.path())
        .args(["audit", "verify", "--central"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).matches("verified").count(),
        3,
        "{}",
        stdout(&out)
    );

    // Unit A: 4 ingests, 2 runs of 2 entries and one refusal = 9 entries.
    let out = jiandu(central.path())
        .args([
            "audit",
            "log",
            "--unit",
            "温宿县人民检察院",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let entries = json(&out);
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 9);
    assert!(entries
        .iter()
        .all(|e| e["ledger"]["unit"] == "温宿县人民检察院" && e["ledger"]["imported"] == true));

    let out = jiandu(central.path())
        .args(["audit", "log", "--outcome", "refused", "--format", "csv"])
        .output()
        .unwrap();
    let csv = stdout(&out);
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        csv.lines().skip(1).all(|l| l.contains(",refused,")),
        "{csv}"
    );

    let count = |args: &[&str]| -> usize {
        let out = jiandu(central.path())
            .args(["audit", "log", "--format", "json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        json(&out).as_array().unwrap().len()
    };
    assert_eq!(count(&[]), 9 + 7 + 7);
    assert_eq!(
        count(&[
            "--model",
            MODEL,
            "--version",
            "1.0.0",
            "--operator",
            "tester"
        ]),
        11
    );
    assert_eq!(count(&["--version", "9.9.9"]), 0);
    assert_eq!(count(&["--operator", "someone-else"]), 0);
    // The refused run read no dataset; each unit loaded it once.
    assert_eq!(count(&["--dataset", "disabled_employees"]), 8 + 3);
    assert_eq!(
        count(&["--outcome", "succeeded", "--unit", "11652927MB7654321Y"]),
        1
    );
    assert_eq!(
        count(&["--since", "2000-01-01", "--until", "2999-12-31"]),
        23
    );
    assert_eq!(count(&["--until", "2000-01-01"]), 0);
    assert_eq!(count(&["--central"]), 23);
    assert_eq!(count(&["--local"]), 0);

    let out = jiandu(central.path())
        .args(["audit", "report", "--format", "json"])
        .output()
        .unwrap();
    let report = json(&out);
    let wensu = report
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "温宿县人民检察院")
        .unwrap();
    assert_eq!(wensu["runs"], 3);
    assert_eq!(wensu["succeeded"], 2);
    assert_eq!(wensu["refused"], 1);
    assert_eq!(wensu["unfinished"], 0);
    let model = &wensu["models"][0];
    assert_eq!(model["model"], MODEL);
    assert_eq!(model["publishers"][0], "local build");
    let datasets = model["datasets"].as_array().unwrap();
    assert_eq!(datasets.len(), 4, "{datasets:?}");
    for d in datasets {
        // Personal-data datasets are those whose schema marks a field personal.
        let name = d["name"].as_str().unwrap();
        let schema =
            std::fs::read_to_string(repo().join("datasets").join(format!("{name}.toml"))).unwrap();
        let holds_personal = schema
            .lines()
            .any(|l| l.trim_start().starts_with("personal"));
        assert_eq!(d["personal"], holds_personal, "{d}");
    }
    assert!(datasets.iter().any(|d| d["personal"] == true));
    assert!(datasets.iter().any(|d| d["personal"] == false));
    let out = jiandu(central.path())
        .args(["audit", "report"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("disabled_employees@1 [PERSONAL]"), "{text}");
    assert!(
        text.contains("3 runs: 2 succeeded, 0 failed, 1 refused, 0 unfinished"),
        "{text}"
    );

    // Unit A runs again and exports what follows its previous export.
    jiandu(a.path()).args(["run", MODEL]).assert().success();
    let next = files.path().join("unit0-next.jsonl");
    export(a.path(), &next, Some(exports[0].to_str().unwrap()));
    let out = jiandu(central.path())
        .args(["audit", "import"])
        .arg(&next)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("2 new entries"), "{}", stdout(&out));
    let out = jiandu(central.path())
        .args(["audit", "unit", "list", "--format", "csv"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("温宿县人民检察院,11652922MB1234567X"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("温宿县人民检察院") && l.contains(",11,")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn tampered_exports_are_refused_with_the_line_entry_and_check() {
    let a = unit_store("温宿县人民检察院", "C1", 2, 4);
    let b = unit_store("乌什县人民检察院", "C2", 1, 5);
    let central = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    register(central.path(), a.path(), dir.path());
    register(central.path(), b.path(), dir.path());
    let good = dir.path().join("a.jsonl");
    export(a.path(), &good, None);
    let other = dir.path().join("b.jsonl");
    export(b.path(), &other, None);
    let good_lines = lines(&good);
    // 1 header, 2..=10 entries 1..=9, 11 checkpoint.
    assert_eq!(good_lines.len(), 11);

    let expect = |file: &Path, line: u64, seq: Option<u64>, check: &str| {
        let (accepted, r) = import(central.path(), file);
        assert!(!accepted, "{} was accepted", file.display());
        assert_eq!(r["line"], line, "{r}");
        assert_eq!(r["check"], check, "{r}");
        if let Some(seq) = seq {
            assert_eq!(r["seq"], seq, "{r}");
        }
    };

    // One byte of entry 3 (the operator's name, who loaded a dataset).
    let mut edited = good_lines.clone();
    edited[3] = edited[3].replacen("tester", "Tester", 1);
    expect(
        &write_lines(&dir.path().join("edit.jsonl"), &edited),
        4,
        Some(3),
        "hash",
    );
    // Its hash recomputed too: the signature no longer matches.
    let mut rehashed: serde_json::Value = serde_json::from_str(&edited[3]).unwrap();
    let entry = rehashed["entry"].as_str().unwrap().to_string();
    rehashed["hash"] = jiandu::ledger::hash(entry.as_bytes()).into();
    edited[3] = rehashed.to_string();
    expect(
        &write_lines(&dir.path().join("rehash.jsonl"), &edited),
        4,
        Some(3),
        "signature",
    );

    let mut deleted = good_lines.clone();
    deleted.remove(2);
    expect(
        &write_lines(&dir.path().join("delete.jsonl"), &deleted),
        3,
        Some(2),
        "sequence",
    );

    let mut reordered = good_lines.clone();
    reordered.swap(2, 3);
    expect(
        &write_lines(&dir.path().join("reorder.jsonl"), &reordered),
        3,
        None,
        "sequence",
    );

    expect(
        &write_lines(&dir.path().join("truncate.jsonl"), &good_lines[..4]),
        5,
        Some(4),
        "format",
    );
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    expect(&cut, 11, None, "format");

    let mut spliced = good_lines.clone();
    spliced[2] = lines(&other)[2].clone();
    expect(
        &write_lines(&dir.path().join("splice.jsonl"), &spliced),
        3,
        Some(2),
        "signature",
    );

    // An impostor with A's name and code but its own key.
    let impostor = unit_store("温宿县人民检察院", "C1", 1, 6);
    let forged = dir.path().join("impostor.jsonl");
    export(impostor.path(), &forged, None);
    expect(&forged, 1, None, "unit");
    let out = jiandu(central.path())
        .args(["audit", "import"])
        .arg(&forged)
        .output()
        .unwrap();
    assert!(stderr(&out).contains("wrong key"), "{}", stderr(&out));

    // The genuine export is accepted once; importing it again is a replay.
    let (accepted, _) = import(central.path(), &good);
    assert!(accepted);
    expect(&good, 11, None, "replay");
    let out = jiandu(central.path())
        .args(["audit", "import"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("line 11: the replay check failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_signed_local_ledger_names_the_first_bad_entry_and_the_check() {
    let a = unit_store("温宿县人民检察院", "C1", 2, 7);
    let out = jiandu(a.path()).args(["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("9 entries (all signed with key"),
        "{}",
        stdout(&out)
    );
    {
        let s = jiandu::Store::open(a.path()).unwrap();
        let key = 2u64.to_be_bytes();
        let mut bytes = s.ledger.get(key).unwrap().unwrap().to_vec();
        let at = bytes.windows(8).position(|w| w == b"\"tester\"").unwrap();
        bytes[at + 1] = b'T';
        s.ledger.insert(key, bytes).unwrap();
        s.flush().unwrap();
    }
    let out = jiandu(a.path()).args(["audit", "verify"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("entry 2 failed the hash check"),
        "{}",
        stderr(&out)
    );
    // A broken ledger is not exported.
    let out = jiandu(a.path())
        .args(["audit", "export", "-o"])
        .arg(a.path().join("x.jsonl"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("entry 2 failed the hash check"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_run_whose_start_cannot_be_signed_does_not_happen() {
    let a = unit_store("温宿县人民检察院", "C1", 1, 8);
    let before = common::ledger(a.path()).len();
    let key = a.path().join("unit").join("unit.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    #[cfg(not(unix))]
    std::fs::remove_file(&key).unwrap();
    let out = jiandu(a.path()).args(["run", MODEL]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unit.key"), "{}", stderr(&out));
    assert_eq!(common::ledger(a.path()).len(), before, "no entry, no run");
}

#[test]
fn a_run_that_never_finished_is_reported_as_unfinished_at_the_central_office() {
    let a = unit_store("温宿县人民检察院", "C1", 1, 9);
    // The host stopped while the model ran: a start entry and nothing else.
    {
        let s = jiandu::Store::open(a.path()).unwrap();
        let mut started = jiandu::ledger::read_all(&s)
            .unwrap()
            .into_iter()
            .find(|e| e.kind == jiandu::ledger::Kind::RunStarted)
            .unwrap();
        started.run.run_id = "crashed-run".into();
        let draft = jiandu::ledger::Draft::run(
            started.unit,
            "tester".into(),
            jiandu::ledger::Kind::RunStarted,
            started.run,
        );
        jiandu::ledger::append(&s, &draft).unwrap();
    }
    let central = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    register(central.path(), a.path(), dir.path());
    let file = dir.path().join("a.jsonl");
    export(a.path(), &file, None);
    jiandu(central.path())
        .args(["audit", "import"])
        .arg(&file)
        .assert()
        .success();
    let out = jiandu(central.path())
        .args([
            "audit",
            "log",
            "--outcome",
            "unfinished",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let rows = json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["run"]["run_id"], "crashed-run");
    let out = jiandu(central.path())
        .args(["audit", "report"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("1 unfinished"), "{}", stdout(&out));
}

#[test]
fn tampering_with_an_imported_ledger_is_located_by_verify() {
    let a = unit_store("温宿县人民检察院", "C1", 2, 10);
    let central = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    register(central.path(), a.path(), dir.path());
    let file = dir.path().join("a.jsonl");
    export(a.path(), &file, None);
    jiandu(central.path())
        .args(["audit", "import"])
        .arg(&file)
        .assert()
        .success();
    {
        let s = jiandu::Store::open(central.path()).unwrap();
        let (k, v) = s.central.iter().nth(3).unwrap().unwrap();
        let mut line: serde_json::Value = serde_json::from_slice(&v).unwrap();
        let entry = line["entry"]
            .as_str()
            .unwrap()
            .replacen("tester", "Tester", 1);
        line["entry"] = entry.into();
        s.central
            .insert(k, serde_json::to_vec(&line).unwrap())
            .unwrap();
        s.flush().unwrap();
    }
    let out = jiandu(central.path())
        .args(["audit", "verify", "--unit", "C1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("entry 4 failed the hash check"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_models_text_is_shown_beside_its_entry_redacted_on_the_record_and_never_exported() {
    let a = unit_store("温宿县人民检察院", "11652922MB1234567X", 0, 11);
    // Too little fuel: the run fails with a backtrace naming the model's
    // functions, text the model (not the host) chose.
    std::fs::write(a.path().join("jiandu.toml"), "[defaults]\nfuel = 100_000\n").unwrap();
    jiandu(a.path()).args(["run", MODEL]).assert().failure();
    let entries = common::ledger(a.path());
    let finished = entries.last().unwrap();
    assert_eq!(finished["run"]["error"]["kind"], "fuel-exhausted");
    let text = finished["run"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("used all its fuel"), "{finished:#}");
    assert_eq!(finished["model_text"]["state"], "present");
    let seq = finished["seq"].as_u64().unwrap();
    let run = finished["run"]["run_id"].as_str().unwrap().to_string();
    {
        let s = jiandu::Store::open(a.path()).unwrap();
        let bytes = s.ledger.get(seq.to_be_bytes()).unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("used all its fuel"));
    }
    let out = jiandu(a.path())
        .args(["audit", "show", &run])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("used all its fuel"),
        "{}",
        stdout(&out)
    );

    let out = jiandu(a.path())
        .args([
            "audit",
            "redact",
            &seq.to_string(),
            "--reason",
            "review: quotes a name",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = jiandu(a.path()).args(["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "the model text of entry {seq} was redacted by entry {}",
            seq + 1
        )),
        "{}",
        stdout(&out)
    );
    let out = jiandu(a.path())
        .args(["audit", "show", &run])
        .output()
        .unwrap();
    let shown = stdout(&out);
    assert!(!shown.contains("used all its fuel"), "{shown}");
    assert!(
        shown.contains("[redacted: review: quotes a name]"),
        "{shown}"
    );
    let last = common::ledger(a.path()).pop().unwrap();
    assert_eq!(last["kind"], "text-redacted");
    assert_eq!(last["operator"], "tester");
    assert_eq!(last["redaction"]["seq"], seq);
    // Redacting again is refused and writes nothing.
    let out = jiandu(a.path())
        .args(["audit", "redact", &seq.to_string(), "--reason", "again"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("redacted already"),
        "{}",
        stderr(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.jsonl");
    export(a.path(), &file, None);
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(!exported.contains("used all its fuel"));
    let central = tempfile::tempdir().unwrap();
    register(central.path(), a.path(), dir.path());
    assert!(import(central.path(), &file).0);
    let out = jiandu(central.path())
        .args(["audit", "verify", "--central"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn which_data_a_run_saw_and_who_loaded_it_is_on_the_record() {
    let store = store_with_model(MODEL);
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate(data.path(), 200, 12).unwrap();
    common::ingest_files(store.path(), &g.files);
    // A daily increment by someone else: three records of the same file
    // (JSON Lines).
    let payments = g
        .files
        .iter()
        .find(|f| f.dataset == "fund_payments")
        .unwrap();
    let text = std::fs::read_to_string(&payments.path).unwrap();
    let more = data.path().join("more.jsonl");
    std::fs::write(
        &more,
        text.lines().take(3).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let out = jiandu(store.path())
        .env("JIANDU_OPERATOR", "李四")
        .args(["dataset", "ingest", "fund_payments"])
        .arg(&more)
        .arg("--append")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    jiandu(store.path()).args(["run", MODEL]).assert().success();

    let entries = common::ledger(store.path());
    let ingests: Vec<_> = entries
        .iter()
        .filter(|e| e["kind"] == "dataset-ingested")
        .collect();
    assert_eq!(ingests.len(), 5, "{entries:#?}");
    let appended = ingests[4];
    assert_eq!(appended["operator"], "李四");
    let i = &appended["ingest"];
    assert_eq!(
        (&i["dataset"], &i["version"], &i["rows"], &i["appended_to"]),
        (&"fund_payments".into(), &2.into(), &3.into(), &1.into())
    );
    assert_eq!(
        i["source_sha256"],
        jiandu::ledger::hash(&std::fs::read(&more).unwrap())
    );
    let started = entries.iter().find(|e| e["kind"] == "run-started").unwrap();
    let run = started["run"]["run_id"].as_str().unwrap();

    let out = jiandu(store.path())
        .args(["audit", "show", run, "--format", "json"])
        .output()
        .unwrap();
    let shown = json(&out);
    let seen = shown[0]["data"].as_array().unwrap();
    assert_eq!(seen.len(), 4, "{shown:#}");
    for d in seen {
        let recorded = started["run"]["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == d["name"])
            .unwrap();
        assert_eq!(d["digest"], recorded["digest"], "the version the run read");
        assert_eq!(d["digest_recorded"], true, "{d:#}");
        let loaded = d["loaded"].as_array().unwrap();
        assert_eq!(loaded[0]["ingest"]["digest"], d["digest"]);
        if d["name"] == "fund_payments" {
            // Version 2 holds the rows of both ingests, newest first.
            let who: Vec<_> = loaded.iter().map(|l| l["operator"].clone()).collect();
            assert_eq!(who, ["李四", "tester"]);
            assert_eq!(loaded[1]["seq"], ingests[3]["seq"]);
        } else {
            assert_eq!(loaded.len(), 1);
            assert_eq!(loaded[0]["operator"], "tester");
        }
    }
    let out = jiandu(store.path())
        .args(["audit", "show", run])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("fund_payments@2"), "{text}");
    assert!(text.contains("by 李四: 3 rows from"), "{text}");
    assert!(text.contains("appended to 1"), "{text}");

    // Asking by dataset finds its ingests beside the runs that read it.
    let out = jiandu(store.path())
        .args([
            "audit",
            "log",
            "--dataset",
            "fund_payments",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let kinds: Vec<_> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "dataset-ingested",
            "dataset-ingested",
            "run-started",
            "run-finished"
        ]
    );
}

/// `audit verify`'s exit status and its stderr.
fn verify_store(store: &Path, quick: bool) -> (bool, String, String) {
    let mut cmd = jiandu(store);
    cmd.args(["audit", "verify"]);
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd.output().unwrap();
    (out.status.success(), stdout(&out), stderr(&out))
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_rerun_that_keeps_the_snapshot_verifies_and_a_pointer_naming_another_run_is_caught() {
    let store = store_with_model(MODEL);
    ingest_generated(store.path(), 300, 13);
    // A run with another ratio (other leads), then two with the default:
    // the third finds what the second did and keeps its file.
    jiandu(store.path())
        .args(["run", MODEL, "--param", "ratio=0.03"])
        .assert()
        .success();
    for _ in 0..2 {
        jiandu(store.path()).args(["run", MODEL]).assert().success();
    }
    let finished = finished_runs(store.path());
    assert_eq!(finished.len(), 3);
    let (first, second, third) = (
        &finished[0]["run"],
        &finished[1]["run"],
        &finished[2]["run"],
    );
    assert_ne!(first["leads_snapshot"], second["leads_snapshot"]);
    assert_eq!(second["leads_snapshot"], third["leads_snapshot"]);
    assert_eq!(second["leads_digest"], third["leads_digest"]);
    let folder = store.path().join("leads").join(MODEL);
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 1);
    let (ok, out, err) = verify_store(store.path(), false);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("1 leads digest"), "{out}");
    let leads = common::leads(store.path(), MODEL, false);
    assert!(!leads.is_empty());
    for l in &leads {
        if l["status"] != "resolved" {
            assert_eq!(l["status"], "open", "{l}");
            assert_eq!(l["last_run"], third["run_id"], "{l}");
        }
    }

    // The pointer edited to say the first run kept the file: that run's
    // entry names another file.
    {
        let s = jiandu::Store::open(store.path()).unwrap();
        let key = format!("leads/{MODEL}/current");
        let mut pointer: serde_json::Value =
            serde_json::from_slice(&s.meta.get(&key).unwrap().unwrap()).unwrap();
        assert_eq!(pointer["run"], third["run_id"]);
        assert_eq!(pointer["written_by"], second["run_id"]);
        pointer["run"] = first["run_id"].clone();
        s.put_meta(&key, &pointer).unwrap();
        s.flush().unwrap();
    }
    let (ok, _, err) = verify_store(store.path(), false);
    assert!(!ok);
    assert!(err.contains("kept this file"), "{err}");

    // Set back to the run that wrote the file (its entry names the same
    // file and sha256, and its leads digest to the same): the ledger's
    // last run of the model is a later one.
    let edit_pointer = |edit: &dyn Fn(&mut serde_json::Value)| {
        let s = jiandu::Store::open(store.path()).unwrap();
        let key = format!("leads/{MODEL}/current");
        let mut pointer: serde_json::Value =
            serde_json::from_slice(&s.meta.get(&key).unwrap().unwrap()).unwrap();
        edit(&mut pointer);
        s.put_meta(&key, &pointer).unwrap();
        s.flush().unwrap();
    };
    edit_pointer(&|p| p["run"] = second["run_id"].clone());
    let (ok, _, err) = verify_store(store.path(), false);
    assert!(!ok);
    assert!(err.contains("the pointer was set back"), "{err}");
    assert!(
        err.contains(&format!(
            "the last run of {MODEL} on the record is {}",
            third["run_id"].as_str().unwrap()
        )),
        "{err}"
    );
    assert!(!err.contains("kept this file"), "{err}");
    edit_pointer(&|p| p["run"] = third["run_id"].clone());
    let (ok, out, err) = verify_store(store.path(), false);
    assert!(ok, "restored: {out}\n{err}");

    // Removed: the model's leads would vanish from every list.
    {
        let s = jiandu::Store::open(store.path()).unwrap();
        s.meta.remove(format!("leads/{MODEL}/current")).unwrap();
        s.flush().unwrap();
    }
    let (ok, _, err) = verify_store(store.path(), false);
    assert!(!ok);
    assert!(
        err.contains("is gone: the model's leads are hidden"),
        "{err}"
    );
}

#[test]
fn verify_names_a_leads_file_or_a_dataset_block_that_changed_under_the_ledger() {
    let store = store_with_model(MODEL);
    ingest_generated(store.path(), 300, 13);
    jiandu(store.path()).args(["run", MODEL]).assert().success();
    let entries = common::ledger(store.path());
    let finished = entries.last().unwrap();
    assert!(finished["run"]["leads_count"].as_u64().unwrap() > 0);
    let snapshot = &finished["run"]["leads_snapshot"];
    let leads_file = store
        .path()
        .join("leads")
        .join(MODEL)
        .join(snapshot["file"].as_str().unwrap());
    let (ok, out, err) = verify_store(store.path(), false);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("files the ledger points at verified: 1 leads file, 4 dataset versions"),
        "{out}"
    );
    assert!(
        out.contains("1 leads digest and 4 version digests recomputed"),
        "{out}"
    );

    // One byte of the leads snapshot.
    let original = std::fs::read(&leads_file).unwrap();
    flip(&leads_file, original.len() / 2);
    let (ok, _, err) = verify_store(store.path(), true);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "entry {}: {}",
            finished["seq"],
            leads_file.display()
        )),
        "{err}"
    );
    assert!(err.contains("does not match the sha256 entry"), "{err}");
    // The pointer in meta rewritten to match the edit: the signed entry
    // still tells.
    {
        let s = jiandu::Store::open(store.path()).unwrap();
        let key = format!("leads/{MODEL}/current");
        let mut pointer: serde_json::Value =
            serde_json::from_slice(&s.meta.get(&key).unwrap().unwrap()).unwrap();
        pointer["sha256"] = jiandu::ledger::hash(&std::fs::read(&leads_file).unwrap()).into();
        s.put_meta(&key, &pointer).unwrap();
        s.flush().unwrap();
    }
    let (ok, _, err) = verify_store(store.path(), false);
    assert!(!ok);
    assert!(err.contains("the pointer was edited"), "{err}");
    assert!(err.contains("does not match the sha256 entry"), "{err}");
    std::fs::write(&leads_file, &original).unwrap();
    {
        let s = jiandu::Store::open(store.path()).unwrap();
        let key = format!("leads/{MODEL}/current");
        let mut pointer: serde_json::Value =
            serde_json::from_slice(&s.meta.get(&key).unwrap().unwrap()).unwrap();
        pointer["sha256"] = snapshot["sha256"].clone();
        s.put_meta(&key, &pointer).unwrap();
        s.flush().unwrap();
    }
    assert!(verify_store(store.path(), false).0, "restored");

    // One byte of a dataset block: its CRC names the file and the block.
    let ingest = entries
        .iter()
        .find(|e| e["kind"] == "dataset-ingested" && e["ingest"]["dataset"] == "employers")
        .unwrap();
    let block_file = store.path().join("data/employers/1/0-0.blk");
    let original = std::fs::read(&block_file).unwrap();
    flip(&block_file, original.len() / 2);
    for quick in [true, false] {
        let (ok, _, err) = verify_store(store.path(), quick);
        assert!(!ok);
        assert!(
            err.contains(&format!(
                "entry {}: {} block 0: block 0 is corrupt (checksum mismatch): the file is not what this version wrote (damaged, replaced or edited); keep it as it is for the audit",
                ingest["seq"],
                block_file.display()
            )),
            "{err}"
        );
        assert!(!err.contains("re-ingest"), "{err}");
    }

    // A byte changed and the block's CRC recomputed to match: the CRCs
    // pass, the version's digest does not.
    let mut bytes = original.clone();
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let front = le32(&bytes, 4) as usize;
    bytes[20 + front - 1] ^= 0x01;
    let crc = crc32fast::hash(&bytes[20..20 + front]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&block_file, &bytes).unwrap();
    let (ok, out, err) = verify_store(store.path(), true);
    assert!(ok, "--quick checks CRCs only: {out}\n{err}");
    let (ok, _, err) = verify_store(store.path(), false);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "entry {}: {}: employers@1: its records digest to",
            ingest["seq"],
            store.path().join("data/employers/1").display()
        )),
        "{err}"
    );
    std::fs::write(&block_file, &original).unwrap();
    assert!(verify_store(store.path(), false).0, "restored");
}

/// Edits the JSON value `meta` holds under `key`, as someone with write
/// access to sled's files could.
fn edit_meta(store: &Path, key: &str, edit: &dyn Fn(&mut serde_json::Value)) {
    let s = jiandu::Store::open(store).unwrap();
    let mut value: serde_json::Value =
        serde_json::from_slice(&s.meta.get(key).unwrap().unwrap()).unwrap();
    edit(&mut value);
    s.put_meta(key, &value).unwrap();
    s.flush().unwrap();
}

#[test]
fn verify_names_a_dataset_switched_a_version_redescribed_or_a_review_changed_without_an_entry() {
    let store = store_with_model(MODEL);
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate(data.path(), 200, 16).unwrap();
    common::ingest_files(store.path(), &g.files);
    // A second version of the payments, then the model run on it.
    let payments = g
        .files
        .iter()
        .find(|f| f.dataset == "fund_payments")
        .unwrap()
        .clone();
    let text = std::fs::read_to_string(&payments.path).unwrap();
    let fewer: String = text.lines().take(20).map(|l| format!("{l}\n")).collect();
    std::fs::write(&payments.path, fewer).unwrap();
    common::ingest_files(store.path(), &[payments]);
    jiandu(store.path()).args(["run", MODEL]).assert().success();
    // A reviewer confirms a lead (what the console's action calls).
    let subject = {
        let s = jiandu::Store::open(store.path()).unwrap();
        let mut first = None;
        jiandu::leads::each(&s, MODEL, |l| {
            first.get_or_insert(l);
        })
        .unwrap();
        let lead = first.expect("a lead");
        jiandu::review::act(&s, "", "审查员甲", &lead, &jiandu::review::Act::Confirm).unwrap();
        s.flush().unwrap();
        lead.subject
    };
    let (ok, out, err) = verify_store(store.path(), false);
    assert!(ok, "{out}\n{err}");

    // The payments switched back to version 1 in meta, with no rollback
    // on the record: the next run would read other data.
    let head = "dataset/fund_payments";
    edit_meta(store.path(), head, &|h| h["current"] = 1.into());
    let (ok, _, err) = verify_store(store.path(), true);
    assert!(!ok, "a check of meta, not of digests: --quick too");
    assert!(
        err.contains("fund_payments: meta makes version 1 current, but this entry, the last to change it on the record, made version 2 current"),
        "{err}"
    );
    edit_meta(store.path(), head, &|h| h["current"] = 2.into());
    assert!(verify_store(store.path(), false).0, "restored");
    // A rollback on the record moves it: verify follows.
    jiandu(store.path())
        .args(["dataset", "rollback", "fund_payments", "--to", "1"])
        .assert()
        .success();
    assert!(
        verify_store(store.path(), false).0,
        "rolled back on the record"
    );

    // Who ingested version 2, and from which file, as `dataset show`
    // prints them.
    edit_meta(store.path(), head, &|h| {
        let v = h["versions"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|v| v["version"] == 2)
            .unwrap();
        v["operator"] = "carol".into();
        v["source"] = "/mnt/tax/official/payments.csv".into();
    });
    let (ok, _, err) = verify_store(store.path(), true);
    assert!(!ok);
    assert!(
        err.contains(
            "fund_payments@2: meta records operator `carol`, but its ingest entry records"
        ) && err.contains("fund_payments@2: meta records source `/mnt/tax/official/payments.csv`"),
        "{err}"
    );

    // The confirmed lead shown as dismissed by someone else.
    let review = format!("review/{MODEL}/{subject}");
    edit_meta(store.path(), &review, &|r| {
        r["state"] = "dismissed".into();
        r["by"] = "eve".into();
    });
    let (ok, _, err) = verify_store(store.path(), true);
    assert!(!ok);
    assert!(
        err.contains(&format!("the review of lead {subject} of {MODEL}: meta records state `dismissed`, but this entry, the last action on it, left `confirmed`"))
            && err.contains("meta records by `eve`"),
        "{err}"
    );
    // Removed: the lead reads as never reviewed.
    {
        let s = jiandu::Store::open(store.path()).unwrap();
        s.meta.remove(&review).unwrap();
        s.flush().unwrap();
    }
    let (ok, _, err) = verify_store(store.path(), true);
    assert!(!ok);
    assert!(
        err.contains("left it `confirmed`, but meta has no review for it: the review was removed"),
        "{err}"
    );
}

/// Replaces or removes meta `key` directly, as someone with the store's
/// files could.
fn set_meta(store: &Path, key: &str, value: Option<serde_json::Value>) {
    let s = jiandu::Store::open(store).unwrap();
    match value {
        Some(v) => s.put_meta(key, &v).unwrap(),
        None => {
            s.meta.remove(key).unwrap();
        }
    }
    s.flush().unwrap();
}

#[test]
fn verify_names_an_incremental_cursor_set_back_removed_or_added_without_a_run() {
    let store = store_with_model(MODEL);
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate(data.path(), 200, 17).unwrap();
    common::ingest_files(store.path(), &g.files);
    // The payments in two segments: an increment appended to them.
    let payments = g
        .files
        .iter()
        .find(|f| f.dataset == "fund_payments")
        .unwrap();
    let text = std::fs::read_to_string(&payments.path).unwrap();
    let last = text.lines().last().unwrap();
    let more = data.path().join("more.jsonl");
    std::fs::write(&more, format!("{last}\n")).unwrap();
    jiandu(store.path())
        .args(["dataset", "ingest", "fund_payments"])
        .arg(&more)
        .arg("--append")
        .assert()
        .success();
    jiandu(store.path()).args(["run", MODEL]).assert().success();
    // A dry run moves no cursor, and verify expects none moved.
    jiandu(store.path())
        .args(["run", MODEL, "--dry-run"])
        .assert()
        .success();
    let (ok, out, err) = verify_store(store.path(), true);
    assert!(ok, "{out}\n{err}");

    let key = format!("cursor/{MODEL}/fund_payments");
    let s = jiandu::Store::open(store.path()).unwrap();
    let cursor: serde_json::Value = s.get_meta(&key).unwrap().expect("the run moved it");
    drop(s);
    let segments = cursor.as_array().unwrap().clone();
    assert_eq!(segments.len(), 2, "{cursor}");

    // Set back to the first segment: the next incremental run would read
    // the increment again.
    set_meta(store.path(), &key, Some(serde_json::json!([segments[0]])));
    let (ok, _, err) = verify_store(store.path(), true);
    assert!(!ok, "a check of meta: --quick too");
    assert!(
        err.contains(&format!("meta `{key}` names segments"))
            && err.contains("read fund_payments@2, whose segments are")
            && err.contains("the cursor was edited"),
        "{err}"
    );
    // Moved ahead over both, as the run left it: verified again.
    set_meta(store.path(), &key, Some(cursor.clone()));
    assert!(verify_store(store.path(), false).0, "restored");

    // Removed: every record would read as new.
    set_meta(store.path(), &key, None);
    let (ok, _, err) = verify_store(store.path(), true);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "meta `{key}`: the run of this entry read fund_payments@2"
        )) && err.contains("meta has no cursor: it was removed"),
        "{err}"
    );
    set_meta(store.path(), &key, Some(cursor));

    // A cursor for a model no run on the record moved.
    let stray = "cursor/some-other-model/fund_payments";
    set_meta(store.path(), stray, Some(serde_json::json!([[1, 0]])));
    let (ok, _, err) = verify_store(store.path(), true);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "meta `{stray}`: no successful run on the record moved this cursor"
        )),
        "{err}"
    );
    set_meta(store.path(), stray, None);

    // Another run on the record moves it on; verify follows.
    jiandu(store.path()).args(["run", MODEL]).assert().success();
    assert!(verify_store(store.path(), false).0);
}

/// Recomputes the CRCs of every frame of a dataset run file, as the store
/// writes them: what someone who rewrites entries in place would do.
fn recompute_crcs(bytes: &mut [u8]) {
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let mut at = 0;
    while at < bytes.len() {
        let (front, keys) = (le32(bytes, at + 4), le32(bytes, at + 8));
        let body = at + 20;
        let crc_front = crc32fast::hash(&bytes[body..body + front]);
        let crc_keys = crc32fast::hash(&bytes[body + front..body + front + keys]);
        bytes[at + 12..at + 16].copy_from_slice(&crc_front.to_le_bytes());
        bytes[at + 16..at + 20].copy_from_slice(&crc_keys.to_le_bytes());
        at = body + front + keys;
    }
}

#[test]
fn verify_names_an_index_or_pseudonym_run_rewritten_with_its_crcs_recomputed() {
    let store = store_with_model(MODEL);
    ingest_generated(store.path(), 300, 15);
    let (ok, out, err) = verify_store(store.path(), false);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("the index and pseudonym runs of 4 segments built again"),
        "{out}"
    );
    // `#clear` says which person a pseudonym stands for: two of its ID
    // numbers traded, the CRCs made to match. A reviewer revealing a lead
    // would be shown another person's ID.
    let dir = store.path().join("data/disabled_employees/1");
    let id = |b: &[u8]| {
        b.len() == 19
            && b[0] == b'i'
            && b[1..18].iter().all(u8::is_ascii_digit)
            && (b[18].is_ascii_digit() || b[18] == b'X')
    };
    let (path, original, at) = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("0-0.blk"))
        .find_map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let at: Vec<usize> = (0..bytes.len().saturating_sub(19))
                .filter(|&i| id(&bytes[i..i + 19]))
                .take(2)
                .collect();
            (at.len() == 2).then_some((p, bytes, at))
        })
        .expect("a pseudonym run with ID numbers in clear");
    let mut bytes = original.clone();
    let (a, b) = (at[0], at[1]);
    let (x, y) = (bytes[a..a + 19].to_vec(), bytes[b..b + 19].to_vec());
    assert_ne!(x, y);
    bytes[a..a + 19].copy_from_slice(&y);
    bytes[b..b + 19].copy_from_slice(&x);
    recompute_crcs(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let (ok, out, err) = verify_store(store.path(), true);
    assert!(ok, "--quick checks CRCs only: {out}\n{err}");
    let (ok, _, err) = verify_store(store.path(), false);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "{} block 0: disabled_employees@1: run `#clear` entry ",
            path.display()
        )) && err.contains("differs from what the records give"),
        "{err}"
    );
    assert!(
        !err.contains(std::str::from_utf8(&x[1..]).unwrap()),
        "no ID number in the report: {err}"
    );
    std::fs::write(&path, &original).unwrap();
    assert!(verify_store(store.path(), false).0, "restored");

    // An index sending a lookup to another record: two keys of the
    // employers' index traded.
    let by_code = store.path().join("data/disabled_employees/1");
    let index = std::fs::read_dir(&by_code)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.ends_with("0-1.blk"))
        .unwrap();
    let original = std::fs::read(&index).unwrap();
    let mut bytes = original.clone();
    let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    assert!(len > 2, "{len} entries");
    // The block's data (the primary keys) starts after its count and two
    // offset tables; trade the first two keys' first bytes where they differ.
    let offsets = 20 + 4;
    let off = |i: usize| {
        u32::from_le_bytes(
            bytes[offsets + 4 * i..offsets + 4 * i + 4]
                .try_into()
                .unwrap(),
        ) as usize
    };
    let data = offsets + 8 * (len + 1);
    let (k0, k1) = (data + off(0), data + off(1));
    let (k0, k1) = (bytes[k0..k1].to_vec(), bytes[k1..data + off(2)].to_vec());
    assert_eq!(k0.len(), k1.len(), "keys of equal widths");
    assert_ne!(k0, k1);
    let start = data + off(0);
    bytes[start..start + k0.len()].copy_from_slice(&k1);
    bytes[start + k0.len()..start + 2 * k0.len()].copy_from_slice(&k0);
    recompute_crcs(&mut bytes);
    std::fs::write(&index, &bytes).unwrap();
    let (ok, _, err) = verify_store(store.path(), false);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "{} block 0: disabled_employees@1: run `",
            index.display()
        )) && err.contains("entry 0 differs from what the records give"),
        "{err}"
    );
    std::fs::write(&index, &original).unwrap();
    assert!(verify_store(store.path(), false).0, "restored");
}

#[test]
fn a_run_whose_leads_cannot_be_committed_ends_on_the_record_as_a_host_error() {
    let store = store_with_model(MODEL);
    ingest_generated(store.path(), 200, 14);
    // Where the model's leads folder belongs, a file: the snapshot cannot
    // be written, as on a full or failing disk.
    std::fs::create_dir_all(store.path().join("leads")).unwrap();
    let blocker = store.path().join("leads").join(MODEL);
    std::fs::write(&blocker, "not a folder").unwrap();
    let out = jiandu(store.path()).args(["run", MODEL]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("failed (host-error)"),
        "{}",
        stderr(&out)
    );
    let entries = common::ledger(store.path());
    let finished = entries.last().unwrap();
    assert_eq!(finished["kind"], "run-finished", "{finished:#}");
    assert_eq!(finished["run"]["outcome"], "failed");
    assert_eq!(finished["run"]["leads_count"], 0);
    assert!(
        finished["run"].get("leads_digest").is_none(),
        "{finished:#}"
    );
    assert_eq!(finished["run"]["error"]["kind"], "host-error");
    assert!(
        finished["run"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not commit the run's leads"),
        "{finished:#}"
    );
    let (ok, out, err) = verify_store(store.path(), false);
    assert!(ok, "{out}\n{err}");
    // Once the disk is fixed, the next run commits.
    std::fs::remove_file(&blocker).unwrap();
    jiandu(store.path()).args(["run", MODEL]).assert().success();
}

#[test]
fn a_recorded_run_replays_on_the_model_version_and_data_versions_it_used() {
    let store = tempfile::tempdir().unwrap();
    jiandu(store.path())
        .args(["model", "build"])
        .arg(repo().join("plugins").join(MODEL))
        .assert()
        .success();
    ingest_generated(store.path(), 300, 15);
    jiandu(store.path()).args(["run", MODEL]).assert().success();
    // Too little fuel: a run that fails, deterministically.
    std::fs::write(
        store.path().join("jiandu.toml"),
        "[defaults]\nfuel = 100_000\n",
    )
    .unwrap();
    jiandu(store.path()).args(["run", MODEL]).assert().failure();
    std::fs::remove_file(store.path().join("jiandu.toml")).unwrap();
    // New employers data, and a run on it.
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate(data.path(), 250, 16).unwrap();
    let employers: Vec<_> = g
        .files
        .into_iter()
        .filter(|f| f.dataset == "employers")
        .collect();
    common::ingest_files(store.path(), &employers);
    jiandu(store.path()).args(["run", MODEL]).assert().success();
    let finished = finished_runs(store.path());
    assert_eq!(finished.len(), 3);
    // The installed model goes; the version the runs used is kept by its
    // digest.
    let m = &finished[0]["run"]["model"];
    let kept = store.path().join("models/.versions").join(format!(
        "{}@{}-{}",
        m["name"].as_str().unwrap(),
        m["version"].as_str().unwrap(),
        m["wasm_sha256"].as_str().unwrap()
    ));
    assert!(kept.join("model.wasm").is_file());
    std::fs::remove_dir_all(store.path().join("models").join(MODEL)).unwrap();

    let replay = |run: &serde_json::Value| {
        let out = jiandu(store.path())
            .args(["audit", "replay", run["run"]["run_id"].as_str().unwrap()])
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        json(&out)
    };
    let first = replay(&finished[0]);
    assert_eq!(first["reproduced"], true, "{first:#}");
    assert_eq!(
        first["replayed"]["leads_digest"],
        finished[0]["run"]["leads_digest"]
    );
    assert!(first["datasets"]
        .as_array()
        .unwrap()
        .contains(&"employers@1".into()));
    let failed = replay(&finished[1]);
    assert_eq!(failed["reproduced"], true, "{failed:#}");
    assert_eq!(failed["replayed"]["error_kind"], "fuel-exhausted");
    let last = replay(&finished[2]);
    assert_eq!(last["reproduced"], true, "{last:#}");
    assert!(last["datasets"]
        .as_array()
        .unwrap()
        .contains(&"employers@2".into()));

    // On the record, beside the runs but not counted as runs.
    let entries = common::ledger(store.path());
    let done = entries.last().unwrap();
    assert_eq!(done["kind"], "replay-finished");
    assert_eq!(done["run"]["replay_of"], finished[2]["run"]["run_id"]);
    assert_eq!(done["run"]["reproduced"], true);
    let out = jiandu(store.path())
        .args(["audit", "report"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("3 runs: 2 succeeded, 1 failed"),
        "{}",
        stdout(&out)
    );
    let (ok, out, err) = verify_store(store.path(), false);
    assert!(ok, "{out}\n{err}");

    // A kept module that changed is refused, and nothing runs.
    flip(&kept.join("model.wasm"), 100);
    let before = entries.len();
    let out = jiandu(store.path())
        .args([
            "audit",
            "replay",
            finished[0]["run"]["run_id"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("damaged or edited"),
        "{}",
        stderr(&out)
    );
    assert_eq!(common::ledger(store.path()).len(), before);
}

#[test]
fn rollback_and_prune_are_on_the_record_and_a_version_runs_read_needs_force() {
    let store = store_with_model(MODEL);
    ingest_generated(store.path(), 200, 21);
    jiandu(store.path()).args(["run", MODEL]).assert().success();
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate(data.path(), 150, 22).unwrap();
    let employers: Vec<_> = g
        .files
        .into_iter()
        .filter(|f| f.dataset == "employers")
        .collect();
    common::ingest_files(store.path(), &employers);
    let current = |store: &Path| -> u64 {
        let out = jiandu(store)
            .args(["dataset", "show", "employers", "--format", "json"])
            .output()
            .unwrap();
        json(&out)["current"].as_u64().unwrap()
    };
    assert_eq!(current(store.path()), 2);

    // Back to version 1, on the record.
    let out = jiandu(store.path())
        .args(["dataset", "rollback", "employers"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(current(store.path()), 1);
    let e = common::ledger(store.path()).pop().unwrap();
    assert_eq!(e["kind"], "dataset-rolled-back");
    assert_eq!(e["dataset"]["from"], 2);
    assert_eq!(e["dataset"]["to"], 1);

    // The current version cannot be pruned.
    let out = jiandu(store.path())
        .args(["dataset", "prune", "employers", "--version", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is current"), "{}", stderr(&out));

    // Version 1 was read by a recorded run: pruning it takes --force.
    jiandu(store.path())
        .args(["dataset", "rollback", "employers", "--to", "2"])
        .assert()
        .success();
    let entries = common::ledger(store.path()).len();
    let out = jiandu(store.path())
        .args(["dataset", "prune", "employers", "--keep", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(common::ledger(store.path()).len(), entries);
    let v1 = store.path().join("data/employers/1");
    assert!(v1.is_dir());
    let out = jiandu(store.path())
        .args(["dataset", "prune", "employers", "--keep", "1", "--force"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!v1.exists());
    let e = common::ledger(store.path()).pop().unwrap();
    assert_eq!(e["kind"], "dataset-pruned");
    assert_eq!(e["dataset"]["pruned"][0]["version"], 1);
    assert_eq!(e["dataset"]["forced"], true);
    assert_eq!(e["dataset"]["runs_read"], 1);
    let out = jiandu(store.path())
        .args(["audit", "log", "--dataset", "employers"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("employers pruned @1"),
        "{}",
        stdout(&out)
    );

    // The record still verifies, and the pruned run says why it cannot be
    // replayed.
    let (ok, out, err) = verify_store(store.path(), false);
    assert!(ok, "{out}\n{err}");
    let run = common::ledger(store.path())
        .into_iter()
        .find(|e| e["kind"] == "run-finished")
        .unwrap();
    let out = jiandu(store.path())
        .args(["audit", "replay", run["run"]["run_id"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has no version 1"),
        "{}",
        stderr(&out)
    );

    // A version that leaves the store without a prune on the record is a
    // fault `audit verify` names.
    common::ingest_files(store.path(), &employers);
    {
        let s = jiandu::Store::open(store.path()).unwrap();
        let mut head = jiandu::dataset::require_head(&s, "employers").unwrap();
        head.versions.retain(|v| v.version != 2);
        s.put_meta("dataset/employers", &head).unwrap();
        s.flush().unwrap();
    }
    let (ok, out, err) = verify_store(store.path(), false);
    assert!(!ok);
    assert!(
        format!("{out}{err}").contains("employers@2 was stored by this entry"),
        "{out}\n{err}"
    );
}
