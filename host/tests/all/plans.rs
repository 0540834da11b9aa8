//! Scripted models: a rule plan checked against the store's schemas when it
//! is built, run by the one plan interpreter inside the sandbox, and named
//! on the record by its hash beside the interpreter's digest.

use crate::common;

use common::*;
use jiandu_demo::generate::disability;
use std::path::Path;

const RUST_MODEL: &str = "disability-fund-arrears";

/// A scripted model folder: the 残保金 sample's `model.toml` under another
/// name, saying `plan = "rule.plan.toml"`, beside the sample plan (with
/// `edit` applied to it).
fn plan_model(name: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let toml = std::fs::read_to_string(repo().join("plugins").join(RUST_MODEL).join("model.toml"))
        .unwrap()
        .replace(
            &format!("name = \"{RUST_MODEL}\""),
            &format!("name = \"{name}\"\nplan = \"rule.plan.toml\""),
        );
    // One instance: the plan reads each dataset whole.
    let toml = match toml.find("\n# Runs as one instance") {
        Some(at) => {
            let limits = toml.find("\n[limits]").unwrap();
            format!("{}{}", &toml[..at], &toml[limits..])
        }
        None => toml,
    };
    std::fs::write(dir.path().join("model.toml"), toml).unwrap();
    let plan = std::fs::read_to_string(
        repo()
            .join("plugins")
            .join(RUST_MODEL)
            .join("plan")
            .join("rule.plan.toml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("rule.plan.toml"), edit(plan)).unwrap();
    dir
}

/// `jiandu model build DIR` into `store`, which must succeed.
fn build(store: &Path, dir: &Path) {
    let out = jiandu(store)
        .args(["model", "build"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

fn ingest_generated(store: &Path, employers: usize, seed: u64) {
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate(data.path(), employers, seed).unwrap();
    ingest_files(store, &g.files);
}

/// A lead as compared across the two models: subject, amount, evidence.
fn essentials(leads: &[serde_json::Value]) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = leads
        .iter()
        .map(|l| {
            (
                l["subject"].as_str().unwrap().to_string(),
                l["amount"].to_string(),
                l["evidence"].to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_plan_finds_the_leads_of_the_rust_model_and_the_record_names_the_plan() {
    let store = store_with_model(RUST_MODEL);
    ingest_generated(store.path(), 2_000, 5);
    let model = plan_model("arrears-plan", |p| p);
    build(store.path(), model.path());

    for name in [RUST_MODEL, "arrears-plan"] {
        let out = jiandu(store.path()).args(["run", name]).output().unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
    let rust = leads(store.path(), RUST_MODEL, false);
    let plan = leads(store.path(), "arrears-plan", false);
    assert!(rust.len() > 20, "{} leads", rust.len());
    assert_eq!(essentials(&plan), essentials(&rust));

    // The record: the interpreter's digest as the model's, the plan by
    // its file and hash.
    let entries = ledger(store.path());
    let finished = entries
        .iter()
        .rev()
        .find(|e| e["kind"] == "run-finished")
        .unwrap();
    let model_ref = &finished["run"]["model"];
    assert_eq!(model_ref["name"], "arrears-plan");
    assert_eq!(model_ref["plan"]["file"], "rule.plan.toml");
    let hash = model_ref["plan"]["sha256"].as_str().unwrap();
    assert_eq!(hash.len(), 64, "{model_ref}");
    let installed = std::fs::read(store.path().join("models/arrears-plan/model.wasm")).unwrap();
    assert_eq!(
        model_ref["wasm_sha256"].as_str().unwrap(),
        jiandu::catalog::sha256_hex(&installed)
    );
    // The Rust model's runs name no plan.
    let rust_run = entries
        .iter()
        .find(|e| e["kind"] == "run-finished" && e["run"]["model"]["name"] == RUST_MODEL)
        .unwrap();
    assert!(rust_run["run"]["model"].get("plan").is_none());

    // Reformatting the plan (comments, layout) keeps its hash: the record
    // names the rule, not its text.
    let reformatted = plan_model("arrears-plan", |p| {
        format!("# 重新排版\n{}", p.replace(" = ", "   =   "))
    });
    build(store.path(), reformatted.path());
    let out = jiandu(store.path())
        .args(["run", "arrears-plan"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let entries = ledger(store.path());
    let last = entries
        .iter()
        .rev()
        .find(|e| e["kind"] == "run-finished")
        .unwrap();
    assert_eq!(last["run"]["model"]["plan"]["sha256"], hash);
}

#[test]
fn a_plan_that_does_not_check_is_refused_at_build_naming_its_line_and_column() {
    let store = store_with_model(RUST_MODEL);
    ingest_generated(store.path(), 200, 3);
    let model = plan_model("bad-plan", |p| {
        p.replace(
            "where = \"year == $levy_year - 1\"",
            "where = \"yeer == $levy_year - 1\"",
        )
    });
    let text = std::fs::read_to_string(model.path().join("rule.plan.toml")).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("yeer"))
        .expect("the edit is in the plan")
        + 1;
    let out = jiandu(store.path())
        .args(["model", "build"])
        .arg(model.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("rule.plan.toml:{line}:")), "{err}");
    assert!(err.contains("yeer"), "{err}");
    assert!(err.contains("nothing was installed"), "{err}");
    assert!(!store.path().join("models/bad-plan").exists());
}

#[test]
fn a_plan_model_is_packed_signed_imported_and_run_by_another_unit_as_published() {
    // Unit A builds the plan model and packs it.
    let a = store_with_model(RUST_MODEL);
    ingest_generated(a.path(), 300, 2);
    jiandu(a.path())
        .args([
            "unit",
            "init",
            "--name",
            "阿克苏地区人民检察院",
            "--code",
            "11652900MB0000000A",
        ])
        .assert()
        .success();
    let model = plan_model("arrears-plan", |p| p);
    build(a.path(), model.path());
    let out_dir = tempfile::tempdir().unwrap();
    let out = jiandu(a.path())
        .args(["model", "pack", "arrears-plan", "-o"])
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let bundle = out_dir.path().join("arrears-plan-1.0.0.jiandu");
    let key_file = out_dir.path().join("a.json");
    let shown = jiandu(a.path())
        .args(["unit", "show", "--format", "json"])
        .output()
        .unwrap();
    std::fs::write(&key_file, &shown.stdout).unwrap();
    let out = jiandu(a.path())
        .args(["run", "arrears-plan"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // Unit B trusts A, holds the same data, imports the bundle and runs it.
    let b = store_with_model(RUST_MODEL);
    ingest_generated(b.path(), 300, 2);
    let out = jiandu(b.path())
        .args(["trust", "add"])
        .arg(&key_file)
        .args(["--unit", "阿克苏地区人民检察院"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = jiandu(b.path())
        .args(["model", "import", "arrears-plan", "--yes", "--from"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(b
        .path()
        .join("models/arrears-plan/rule.plan.toml")
        .is_file());
    // B's policy grants A's model what it declares, as for any import.
    let a_key: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&key_file).unwrap()).unwrap();
    std::fs::write(
        b.path().join("jiandu.toml"),
        format!(
            "[models.arrears-plan]\npublisher = \"{}\"\n",
            a_key["fingerprint"].as_str().unwrap()
        ),
    )
    .unwrap();
    let out = jiandu(b.path())
        .args(["run", "arrears-plan"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        essentials(&leads(b.path(), "arrears-plan", false)),
        essentials(&leads(a.path(), "arrears-plan", false))
    );
    let run_a = finished_runs(a.path(), "arrears-plan").pop().unwrap();
    let run_b = finished_runs(b.path(), "arrears-plan").pop().unwrap();
    assert_eq!(run_b["run"]["model"]["plan"], run_a["run"]["model"]["plan"]);
    let publisher = run_b["run"]["model"]["publisher"].as_str().unwrap();
    assert!(publisher.contains("阿克苏地区人民检察院"), "{publisher}");

    // The plan edited after import no longer passes for A's.
    let file = b.path().join("models/arrears-plan/rule.plan.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("gap > 0", "gap > 1")).unwrap();
    let out = jiandu(b.path())
        .args(["run", "arrears-plan"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("changed after it was imported"),
        "{}",
        stderr(&out)
    );

    // Unit C holds the employers' names as personal data: A's plan shows
    // the name in its titles, which cannot mask it. Refused at import,
    // before anything is installed, rather than at every run.
    let c = store_with_model(RUST_MODEL);
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate(data.path(), 100, 3).unwrap();
    ingest_files(c.path(), &g.files);
    let schema = data.path().join("employers.toml");
    let text = std::fs::read_to_string(repo().join("datasets/employers.toml")).unwrap();
    std::fs::write(
        &schema,
        text.replacen(
            "name = \"name\"\ntype = \"string\"\n",
            "name = \"name\"\ntype = \"string\"\npersonal = \"name\"\n",
            1,
        ),
    )
    .unwrap();
    let employers = g.files.iter().find(|f| f.dataset == "employers").unwrap();
    jiandu(c.path())
        .args(["dataset", "ingest", "employers"])
        .arg(&employers.path)
        .arg("--schema")
        .arg(&schema)
        .assert()
        .success();
    jiandu(c.path())
        .args(["trust", "add"])
        .arg(&key_file)
        .args(["--unit", "阿克苏地区人民检察院"])
        .assert()
        .success();
    let out = jiandu(c.path())
        .args(["model", "import", "arrears-plan", "--yes", "--from"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the title shows personal data")
            && stderr(&out).contains("nothing was installed"),
        "{}",
        stderr(&out)
    );
    assert!(!c.path().join("models/arrears-plan").exists());
}

/// The `run-finished` entries of `model`, oldest first.
fn finished_runs(store: &Path, model: &str) -> Vec<serde_json::Value> {
    ledger(store)
        .into_iter()
        .filter(|e| e["kind"] == "run-finished" && e["run"]["model"]["name"] == model)
        .collect()
}

#[test]
fn explain_and_diff_read_the_plan_as_sentences_with_its_values() {
    let store = store_with_model(RUST_MODEL);
    ingest_generated(store.path(), 100, 4);
    let v1 = plan_model("arrears-plan", |p| p);
    build(store.path(), v1.path());
    let out = jiandu(store.path())
        .args(["model", "explain", "arrears-plan"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // Numbered sentences, parameters with their values, the legal basis.
    assert!(text.contains("\n1. 读取 employers"), "{text}");
    assert!(text.contains("征收年度（2024）"), "{text}");
    assert!(text.contains("安排比例（0.015"), "{text}");
    assert!(text.contains("财税〔2015〕72号"), "{text}");

    // Version 1.1.0: another ratio and a threshold on the gap.
    let v2 = plan_model("arrears-plan", |p| {
        p.replace("where = \"gap > 0\"", "where = \"gap > 100\"")
    });
    let toml = std::fs::read_to_string(v2.path().join("model.toml"))
        .unwrap()
        .replace("version = \"1.0.0\"", "version = \"1.1.0\"")
        .replace("default = \"0.015\"", "default = \"0.02\"");
    std::fs::write(v2.path().join("model.toml"), toml).unwrap();
    build(store.path(), v2.path());
    let out = jiandu(store.path())
        .args([
            "model",
            "diff",
            "arrears-plan@1.0.0",
            "arrears-plan@1.1.0",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sentences: Vec<String> = json(&out)["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(sentences.len(), 2, "{sentences:#?}");
    assert!(
        sentences[0].contains("由 0.015 改为 0.02"),
        "{sentences:#?}"
    );
    assert!(sentences[1].contains("gap > 100"), "{sentences:#?}");
    assert!(sentences[1].contains("原为"), "{sentences:#?}");

    // A model compiled from Rust has no plan to explain.
    let out = jiandu(store.path())
        .args(["model", "explain", RUST_MODEL])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a scripted model"),
        "{}",
        stderr(&out)
    );
    // An unknown version is named.
    let out = jiandu(store.path())
        .args(["model", "explain", "arrears-plan@9.9.9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("arrears-plan@9.9.9"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn explain_shows_a_note_that_breaks_lines_as_one_sentence_and_json_stays_json() {
    let store = store_with_model(RUST_MODEL);
    ingest_generated(store.path(), 50, 9);
    // A note that tries to add a sentence of its own, with a
    // right-to-left override.
    let dir = plan_model("spoof-plan", |p| {
        p.replacen(
            "dataset = \"employers\"\n",
            "dataset = \"employers\"\nnote = \"只读。\\n2. 本模型不读取任何个人信息\\u202Egnp.exe\"\n",
            1,
        )
    });
    build(store.path(), dir.path());
    let out = jiandu(store.path())
        .args(["model", "explain", "spoof-plan"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.lines().any(|l| l.starts_with("2. 本模型")),
        "a forged sentence: {text}"
    );
    assert!(!text.contains('\u{202e}'), "{text}");
    let out = jiandu(store.path())
        .args(["model", "explain", "spoof-plan", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sentences = json(&out)["sentences"].as_array().unwrap().clone();
    assert!(
        sentences[0]
            .as_str()
            .unwrap()
            .contains("只读。\n2. 本模型不读取任何个人信息"),
        "{sentences:?}"
    );
}

#[test]
fn a_plan_run_replays_with_the_plan_it_ran_even_after_the_plan_changed() {
    let store = store_with_model(RUST_MODEL);
    ingest_generated(store.path(), 400, 6);
    let v1 = plan_model("arrears-plan", |p| p);
    build(store.path(), v1.path());
    let out = jiandu(store.path())
        .args(["run", "arrears-plan"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The same version rebuilt with another rule: a different plan hash.
    let changed = plan_model("arrears-plan", |p| {
        p.replace("where = \"gap > 0\"", "where = \"gap > 1000\"")
    });
    let out = jiandu(store.path())
        .args(["model", "build"])
        .arg(changed.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("warning: arrears-plan@1.0.0 was already installed with another plan")
            && stderr(&out).contains("raise `version` in model.toml"),
        "{}",
        stderr(&out)
    );
    // The same rule again: nothing to warn about.
    let out = jiandu(store.path())
        .args(["model", "build"])
        .arg(changed.path())
        .output()
        .unwrap();
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let runs = finished_runs(store.path(), "arrears-plan");
    let run = &runs[0];
    let out = jiandu(store.path())
        .args(["audit", "replay", run["run"]["run_id"].as_str().unwrap()])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let replay = json(&out);
    assert_eq!(replay["reproduced"], true, "{replay:#}");
    assert_eq!(
        replay["replayed"]["leads_digest"],
        run["run"]["leads_digest"]
    );

    // The kept plan edited in place (its folder is named by the hashes,
    // which no longer hold): the replay refuses it by file, rather than
    // running another rule and calling the run not reproduced.
    let recorded = run["run"]["model"]["plan"]["sha256"].as_str().unwrap();
    let kept = std::fs::read_dir(store.path().join("models/.versions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().ends_with(recorded))
        .expect("the run's version kept");
    let plan = kept.join("rule.plan.toml");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(
        &plan,
        text.replace("where = \"gap > 0\"", "where = \"gap > 30000\""),
    )
    .unwrap();
    let out = jiandu(store.path())
        .args(["audit", "replay", run["run"]["run_id"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("{}: the plan hashes to", plan.display()))
            && stderr(&out).contains(&format!(
                "not to the {recorded} the run recorded: damaged or edited"
            )),
        "{}",
        stderr(&out)
    );
    // `audit verify` names it too, with the run that ran it.
    let out = jiandu(store.path())
        .args(["audit", "verify", "--quick"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "{}: arrears-plan@{}, as this run ran it: the plan kept is not the one the run recorded: damaged or edited",
            plan.display(),
            run["run"]["model"]["version"].as_str().unwrap()
        )),
        "{}",
        stderr(&out)
    );
    std::fs::write(&plan, text).unwrap();
    let out = jiandu(store.path())
        .args(["audit", "verify", "--quick"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 kept model version;"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn plan_models_that_share_a_plan_are_kept_apart_and_each_replays_as_it_ran() {
    let store = store_with_model(RUST_MODEL);
    ingest_generated(store.path(), 200, 8);
    // Two units' names for one rule, and the same rule at a new version:
    // one interpreter, one plan hash, three model.toml files.
    let a = plan_model("arrears-a", |p| p);
    let b = plan_model("arrears-b", |p| p);
    let bumped = plan_model("arrears-a", |p| p);
    let toml = bumped.path().join("model.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replacen("version = \"1.0.0\"", "version = \"1.0.1\"", 1),
    )
    .unwrap();
    for dir in [a.path(), b.path()] {
        build(store.path(), dir);
    }
    for model in ["arrears-a", "arrears-b"] {
        jiandu(store.path()).args(["run", model]).assert().success();
    }
    build(store.path(), bumped.path());
    jiandu(store.path())
        .args(["run", "arrears-a"])
        .assert()
        .success();
    let out = jiandu(store.path())
        .args(["audit", "verify", "--quick"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 kept model versions;"),
        "{}",
        stdout(&out)
    );
    for model in ["arrears-a", "arrears-b"] {
        for run in finished_runs(store.path(), model) {
            let out = jiandu(store.path())
                .args(["audit", "replay", run["run"]["run_id"].as_str().unwrap()])
                .args(["--format", "json"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{model}: {}", stderr(&out));
            assert_eq!(json(&out)["reproduced"], true, "{model}");
        }
    }
}

#[test]
fn model_new_plan_writes_a_plan_model_that_builds_runs_and_explains_as_it_is() {
    let store = store_with_model(RUST_MODEL);
    ingest_generated(store.path(), 150, 8);
    let work = tempfile::tempdir().unwrap();
    let out = jiandu(store.path())
        .current_dir(work.path())
        .args([
            "model",
            "new",
            "fresh-plan",
            "--plan",
            "--datasets",
            "social_insurance,employers",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = work.path().join("fresh-plan");
    for f in ["model.toml", "rule.plan.toml", "README.md"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    assert!(!dir.join("Cargo.toml").exists());
    build(store.path(), &dir);
    let out = jiandu(store.path())
        .args(["run", "fresh-plan"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!leads(store.path(), "fresh-plan", false).is_empty());
    let out = jiandu(store.path())
        .args(["model", "explain", "fresh-plan"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1. 读取 social_insurance"),
        "{}",
        stdout(&out)
    );

    // A dataset the store does not hold cannot be planned against.
    let out = jiandu(store.path())
        .current_dir(work.path())
        .args([
            "model",
            "new",
            "other-plan",
            "--plan",
            "--datasets",
            "police_cases",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("police_cases"), "{}", stderr(&out));
    assert!(stderr(&out).contains("ingest it first"), "{}", stderr(&out));

    // A dataset keyed by a person: the subject is personal, shown to
    // people as masked evidence, never in the title (which cannot mask).
    let csv = work.path().join("sightings.csv");
    std::fs::write(
        &csv,
        "person_id,sighting_id,place_id,seen_at,tags\n\
         11010519491231002X,S1,G1,2024-03-01 10:00,\n\
         11010519491231002X,S2,G2,2024-03-02 11:00,伪装\n",
    )
    .unwrap();
    jiandu(store.path())
        .args(["dataset", "ingest", "sightings"])
        .arg(&csv)
        .arg("--schema")
        .arg(repo().join("datasets/sightings.toml"))
        .assert()
        .success();
    jiandu(store.path())
        .current_dir(work.path())
        .args([
            "model",
            "new",
            "seen-plan",
            "--plan",
            "--datasets",
            "sightings",
        ])
        .assert()
        .success();
    build(store.path(), &work.path().join("seen-plan"));
    let out = jiandu(store.path())
        .args(["run", "seen-plan"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let found = leads(store.path(), "seen-plan", false);
    assert_eq!(found.len(), 1, "one person: {found:?}");
    let shown = found[0].to_string();
    assert!(
        shown.contains("110105***********X") && !shown.contains("11010519491231002X"),
        "{shown}"
    );
}

/// A scripted model folder named `name` reading land contracts and bids,
/// with `steps` as its plan after the read of the contracts.
fn land_plan(name: &str, steps: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("model.toml"),
        format!(
            "name = \"{name}\"\nplan = \"rule.plan.toml\"\nversion = \"1.0.0\"\ntitle = \"中标合同\"\nunit = \"测试单位\"\nsdk = \"^0.2\"\n\n[datasets]\nland_contracts = {{ fields = [\"contract_no\", \"parcel_no\"] }}\nland_bids = {{ fields = [\"parcel_no\", \"bid_id\", \"won\", \"bid_price\"] }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rule.plan.toml"),
        format!(
            "format = 1\n\n[[step]]\nname = \"contracts\"\nop = \"read\"\ndataset = \"land_contracts\"\n{steps}\n[[step]]\nname = \"leads\"\nop = \"emit\"\nsubject = \"contract_no\"\ntitle = \"{{contract_no}} 中标 {{bid_id}}\"\namount = \"bid_price\"\n\n[step.evidence]\nbid_id = \"bid_id\"\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn a_lookup_through_an_index_in_the_sandbox_finds_what_a_sorted_merge_finds() {
    let store = tempfile::tempdir().unwrap();
    let out = jiandu(store.path())
        .args(["demo", "--scale", "0.05", "--no-rectify"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Each contract's winning bid, looked up by parcel through the index …
    let lookup = land_plan(
        "winner-by-lookup",
        "\n[[step]]\nname = \"bids\"\nop = \"lookup\"\ndataset = \"land_bids\"\nindex = \"by_parcel\"\nkey = \"parcel_no\"\nfields = [\"bid_id\", \"won\", \"bid_price\"]\n\n[[step]]\nname = \"won\"\nop = \"filter\"\nwhere = \"won\"\n",
    );
    // … and by sorting the contracts by parcel and merging with the bids.
    let merge = land_plan(
        "winner-by-merge",
        "\n[[step]]\nname = \"by_parcel\"\nop = \"sort\"\nby = [\"parcel_no\"]\n\n[[step]]\nname = \"bids\"\nop = \"read\"\ndataset = \"land_bids\"\n\n[[step]]\nname = \"won_bids\"\nop = \"filter\"\nwhere = \"won\"\n\n[[step]]\nname = \"joined\"\nop = \"join\"\ninput = \"by_parcel\"\nwith = \"won_bids\"\non = \"parcel_no\"\n",
    );
    for (name, dir) in [("winner-by-lookup", &lookup), ("winner-by-merge", &merge)] {
        build(store.path(), dir.path());
        let out = jiandu(store.path()).args(["run", name]).output().unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
    let by_lookup = essentials(&leads(store.path(), "winner-by-lookup", false));
    assert!(by_lookup.len() > 5, "{} leads", by_lookup.len());
    assert_eq!(
        by_lookup,
        essentials(&leads(store.path(), "winner-by-merge", false))
    );
}

#[test]
fn a_plan_model_builds_and_runs_where_there_is_no_compiler() {
    let store = store_with_model(RUST_MODEL);
    ingest_generated(store.path(), 300, 11);
    let model = plan_model("arrears-plan", |p| p);
    // No cargo, no rustup, no compiler anywhere this command could look.
    let empty = tempfile::tempdir().unwrap();
    let out = jiandu(store.path())
        .env("PATH", empty.path())
        .env("CARGO", empty.path().join("cargo"))
        .env_remove("RUSTUP_HOME")
        .args(["model", "build"])
        .arg(model.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The build compiled the interpreter into the module cache: the first
    // run loads it.
    let out = jiandu(store.path())
        .env("PATH", empty.path())
        .args(["-vv", "run", "arrears-plan"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("arrears-plan@1.0.0 loaded from the module cache"),
        "{}",
        stderr(&out)
    );
    let interpreter = jiandu::catalog::componentize(jiandu::catalog::PLAN_INTERPRETER).unwrap();
    let installed = jiandu::catalog::load(&store.path().join("models"), "arrears-plan").unwrap();
    assert_eq!(
        installed.wasm, interpreter,
        "the installed component is the interpreter this jiandu carries"
    );
}

/// A copy of the sample plan, partitioned on the credit code, whose leads
/// are about `subject`.
fn partitioned_plan(name: &str, subject: &str) -> tempfile::TempDir {
    let model = plan_model(name, |p| {
        p.replace(
            r#"subject = "credit_code""#,
            &format!("subject = \"{subject}\""),
        )
    });
    let toml = std::fs::read_to_string(model.path().join("model.toml")).unwrap();
    let partition = "\n[partition]\nkey = \"credit_code\"\nfields = { disabled_employees = \"employer_credit_code\" }\n";
    std::fs::write(model.path().join("model.toml"), toml + partition).unwrap();
    model
}

/// The snapshot files in `model`'s leads folder.
fn snapshot_files(store: &Path, model: &str) -> Vec<String> {
    let dir = store.join("leads").join(model);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A partitioned run plans its leads as its parts finish when each part's
/// subjects come after the parts' before it (the subject is the key the
/// run is split on); when they do not (leads about the employer's name,
/// which the credit codes do not order), the leads are planned once the
/// parts are over. Either way: the leads, digest and snapshot of one
/// instance.
#[test]
fn a_partitioned_runs_leads_are_those_of_one_instance_whatever_order_its_subjects_take() {
    let store = store_with_model(RUST_MODEL);
    ingest_generated(store.path(), 3_000, 11);
    for (model, subject, early) in [("by-code", "credit_code", true), ("by-name", "name", false)] {
        let dir = partitioned_plan(model, subject);
        build(store.path(), dir.path());
        let run = |parts: &str| {
            let out = jiandu(store.path())
                .args(["-vv", "run", model, "--partitions", parts])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            let run = finished_runs(store.path(), model).pop().unwrap()["run"].clone();
            let kept = leads(store.path(), model, false);
            (stderr(&out), run, kept)
        };
        let (_, one, one_leads) = run("1");
        let (said, parts, parts_leads) = run("8");
        assert!(
            parts["partitions"].as_array().unwrap().len() > 1,
            "{parts:#}"
        );
        assert!(one["leads_count"].as_u64().unwrap() > 100, "{one:#}");
        assert_eq!(one["leads_count"], parts["leads_count"], "{model}");
        assert_eq!(one["leads_digest"], parts["leads_digest"], "{model}");
        assert_eq!(
            one["leads_snapshot"]["leads"],
            parts["leads_snapshot"]["leads"]
        );
        // The same leads, found again: open, none new or resolved.
        assert_eq!(essentials(&one_leads), essentials(&parts_leads), "{model}");
        assert!(parts_leads.iter().all(|l| l["status"] == "open"), "{model}");
        assert_eq!(
            said.contains("planned after the run"),
            !early,
            "{model}: {said}"
        );
        assert_eq!(snapshot_files(store.path(), model).len(), 1, "{model}");
    }
    let out = jiandu(store.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_failing_part_fails_the_run_by_its_part_and_parts_not_started_do_not_run() {
    let store = store_with_model(RUST_MODEL);
    ingest_generated(store.path(), 20_000, 7);
    // The sample plan with its [partition], failing on every employer.
    let model = plan_model("failing-parts", |p| {
        p.replace(
            r#"set.d = "coalesce(disabled_d, 0)""#,
            r#"set.d = "coalesce(disabled_d, 0) + staff / (staff - staff)""#,
        )
    });
    let toml = std::fs::read_to_string(model.path().join("model.toml")).unwrap();
    let partition = "\n[partition]\nkey = \"credit_code\"\nfields = { disabled_employees = \"employer_credit_code\" }\n";
    std::fs::write(model.path().join("model.toml"), toml + partition).unwrap();
    build(store.path(), model.path());
    let out = jiandu(store.path())
        .args(["run", "failing-parts", "--partitions", "32"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(said.contains("part 1 of "), "{said}");
    assert!(said.contains("division by zero"), "{said}");
    let run = finished_runs(store.path(), "failing-parts").pop().unwrap();
    let parts = run["run"]["partitions"].as_array().expect("the parts");
    let ran = parts
        .iter()
        .filter(|p| p["records_read"].as_u64().unwrap() > 0)
        .count();
    // The first part fails on its first employer; a worker that comes
    // back for another part finds the run failed.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bound = cores.min(parts.len());
    assert!(
        ran >= 1 && ran <= bound,
        "{ran} of {} parts ran",
        parts.len()
    );
    // Nothing of the leads planned while the parts ran is left.
    assert_eq!(
        snapshot_files(store.path(), "failing-parts"),
        Vec::<String>::new()
    );
}

#[test]
fn a_plan_that_runs_out_of_fuel_says_where_to_look_without_the_interpreters_backtrace() {
    let store = store_with_model(RUST_MODEL);
    ingest_generated(store.path(), 400, 12);
    let model = plan_model("thirsty-plan", |p| p);
    let toml = std::fs::read_to_string(model.path().join("model.toml")).unwrap();
    assert!(
        toml.trim_end().ends_with("memory_mib = 64"),
        "[limits] last"
    );
    std::fs::write(
        model.path().join("model.toml"),
        toml.trim_end().to_string() + "\nfuel = 2_000_000\n",
    )
    .unwrap();
    build(store.path(), model.path());
    let out = jiandu(store.path())
        .args(["run", "thirsty-plan"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let error = finished_runs(store.path(), "thirsty-plan").pop().unwrap()["run"]["error"].clone();
    assert_eq!(error["kind"], "fuel-exhausted", "{error:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("in a plan, most often a join whose key has many rows on both sides")
            && message.contains("raise `fuel` under [limits] in model.toml"),
        "{message}"
    );
    assert!(
        !message.contains("jiandu_plan") && !message.contains("wasm backtrace"),
        "no frames of the interpreter: {message}"
    );
}
