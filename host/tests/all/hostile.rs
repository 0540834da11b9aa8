//! The sandbox against hostile models.
//!
//! Each attack runs through the real `jiandu` binary on a store holding the
//! hostile model, a well-behaved one (`good`) and two datasets. Every test
//! checks the same four things: the run's outcome, its ledger entry (kind
//! of breach, limit, amount used), that none of the model's leads were
//! kept, and that a good run afterwards still works and the ledger still
//! verifies.
//!
//! Models written in Rust live in `tests/models/`; models that need to
//! break the contract itself (WASI, foreign imports, another contract
//! version, wrong exports) are written here as WAT, given the contract's
//! WIT with `wit-component`, and installed as files.

use crate::common;

use common::{
    add_model, built_model, ingest_text, jiandu, json, leads, ledger, stderr, stdout,
    store_with_crate, test_model, PEOPLE_SCHEMA,
};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

const PEOPLE_CSV: &str = "id_number,name,city,age\n\
11010519491231002X,张三,北京,75\n\
110105199001010011,李四,上海,34\n";

const SECRETS_CSV: &str = "id_number,name,city,age\n\
110105198001010022,王五,深圳,44\n";

/// The host policy of these tests: small budgets so that attacks end
/// quickly, and a maximum far below what the hostile model asks for.
const POLICY: &str = r#"
[defaults]
fuel = 2_000_000_000
max_leads = 100
max_log_lines = 5

[maximum]
memory_mib = 64
fuel = 2_000_000_000
wall_seconds = 120
"#;

/// A store with the hostile and the good model, `people` and `secrets`
/// ingested, and [`POLICY`] as its `jiandu.toml`.
fn host() -> tempfile::TempDir {
    let store = store_with_crate(&test_model("hostile"));
    add_model(store.path(), &test_model("good"));
    ingest_text(store.path(), "people", PEOPLE_SCHEMA, PEOPLE_CSV);
    ingest_text(
        store.path(),
        "secrets",
        &PEOPLE_SCHEMA.replace("\"people\"", "\"secrets\""),
        SECRETS_CSV,
    );
    set_policy(store.path(), POLICY);
    store
}

fn set_policy(store: &Path, text: &str) {
    std::fs::write(store.join("jiandu.toml"), text).unwrap();
}

/// `jiandu run hostile --param attack=<attack>`.
fn attack(store: &Path, attack: &str) -> Output {
    jiandu(store)
        .args(["run", "hostile", "--param"])
        .arg(format!("attack={attack}"))
        .output()
        .unwrap()
}

/// Asserts that a run of `model` was contained: exit code 1 with a readable
/// error, a `run-started` entry followed by a `failed` `run-finished` entry
/// of `kind` with no leads, none of the model's leads in the store, and a
/// good run afterwards that works. Returns the entry's `error`.
fn assert_contained(store: &Path, model: &str, out: &Output, kind: &str) -> Value {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{}\n{err}", stdout(out));
    assert!(err.contains(&format!("failed ({kind})")), "{err}");
    assert!(err.contains("no leads were kept"), "{err}");
    let entries = ledger(store);
    let finished = &entries[entries.len() - 1];
    let started = &entries[entries.len() - 2];
    assert_eq!(finished["kind"], "run-finished", "{finished:#}");
    assert_eq!(started["kind"], "run-started", "{started:#}");
    assert_eq!(started["run"]["run_id"], finished["run"]["run_id"]);
    let run = &finished["run"];
    assert_eq!(run["model"]["name"], model);
    assert_eq!(run["outcome"], "failed", "{run:#}");
    assert_eq!(run["leads_count"], 0, "{run:#}");
    assert!(run.get("leads_digest").is_none(), "{run:#}");
    assert_eq!(run["error"]["kind"], kind, "{run:#}");
    assert!(
        leads(store, model, true).is_empty(),
        "leads of {model} were kept"
    );
    good_run_still_works(store);
    run["error"].clone()
}

/// The good model runs, keeps its one lead, and the ledger verifies.
fn good_run_still_works(store: &Path) {
    let out = jiandu(store).args(["run", "good"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(leads(store, "good", false).len(), 1);
    let out = jiandu(store).args(["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
}

fn number(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a number"))
}

// ---------------------------------------------------------------------------
// Run-time containment

#[test]
fn infinite_loop_stops_at_the_fuel_budget() {
    let store = host();
    let out = attack(store.path(), "infinite-loop");
    let error = assert_contained(store.path(), "hostile", &out, "fuel-exhausted");
    assert_eq!(number(&error["limit"]), 2_000_000_000);
    assert_eq!(number(&error["used"]), 2_000_000_000, "{error:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("hostile::Hostile"),
        "a wasm backtrace: {error:#}"
    );
}

#[test]
fn infinite_loop_with_fuel_to_spare_stops_at_the_wall_time() {
    let store = host();
    set_policy(
        store.path(),
        "[defaults]\nwall_seconds = 1\n[maximum]\nwall_seconds = 1\n",
    );
    let out = attack(store.path(), "infinite-loop");
    let error = assert_contained(store.path(), "hostile", &out, "wall-time");
    assert_eq!(number(&error["limit"]), 1);
    assert!(number(&error["used"]) >= 1, "{error:#}");
}

#[test]
fn memory_bomb_fails_at_the_memory_cap() {
    let store = host();
    let out = attack(store.path(), "memory-bomb");
    let error = assert_contained(store.path(), "hostile", &out, "memory-limit");
    assert_eq!(number(&error["limit"]), 64 << 20);
    assert!(number(&error["used"]) > 64 << 20, "{error:#}");
}

#[test]
fn deep_recursion_traps_as_a_stack_overflow() {
    let store = host();
    let out = attack(store.path(), "deep-recursion");
    let error = assert_contained(store.path(), "hostile", &out, "stack-overflow");
    assert_eq!(number(&error["limit"]), 1024 * 1024);
    assert!(
        error["message"].as_str().unwrap().contains("recurse"),
        "the backtrace names the recursing function: {error:#}"
    );
}

#[test]
fn lead_flood_stops_at_max_leads() {
    let store = host();
    let out = attack(store.path(), "lead-flood");
    let error = assert_contained(store.path(), "hostile", &out, "lead-flood");
    assert_eq!(number(&error["limit"]), 100);
    assert_eq!(number(&error["used"]), 101);
    // A policy limit names the setting to change, with no wasm backtrace.
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("`max_leads`") && message.contains("jiandu.toml"),
        "{message}"
    );
    assert!(!message.contains("wasm backtrace"), "{message}");
    assert!(!stderr(&out).contains("wasm backtrace"), "{}", stderr(&out));
}

#[test]
fn leads_beyond_the_lead_volume_cap_end_the_run_naming_the_setting() {
    let store = host();
    set_policy(
        store.path(),
        "[defaults]\nfuel = 2_000_000_000\nmax_leads = 1_000_000\n\
         [maximum]\nmax_lead_mib = 6\nfuel = 2_000_000_000\n",
    );
    let out = attack(store.path(), "lead-volume");
    let error = assert_contained(store.path(), "hostile", &out, "lead-volume");
    assert_eq!(number(&error["limit"]), 6 << 20);
    assert!(number(&error["used"]) > 6 << 20, "{error:#}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("`max_lead_mib`"), "{message}");
    assert!(!message.contains("wasm backtrace"), "{message}");
}

#[test]
fn oversized_lead_is_refused() {
    let store = host();
    let out = attack(store.path(), "oversized-lead");
    let error = assert_contained(store.path(), "hostile", &out, "lead-too-large");
    assert_eq!(number(&error["limit"]), 16 * 1024);
    assert!(number(&error["used"]) > 100_000, "{error:#}");
}

#[test]
fn lead_with_a_control_character_in_its_subject_is_refused() {
    let store = host();
    let out = attack(store.path(), "invalid-lead");
    let error = assert_contained(store.path(), "hostile", &out, "invalid-lead");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("control characters"),
        "{error:#}"
    );
}

#[test]
fn a_second_lead_for_a_subject_ends_the_run_naming_it_instead_of_replacing_the_first() {
    let store = host();
    // Each batch of leads spilled: the first lead is found in a file.
    let out = jiandu(store.path())
        .env("JIANDU_LEADS_MEMORY", "1")
        .args(["run", "hostile", "--param", "attack=same-subject-twice"])
        .output()
        .unwrap();
    let error = assert_contained(store.path(), "hostile", &out, "invalid-lead");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("a second lead for subject `DUP000000000000` in one run"),
        "{error:#}"
    );
}

#[test]
fn reading_an_undeclared_dataset_ends_the_run_and_names_it() {
    let store = host();
    let out = attack(store.path(), "undeclared-dataset");
    let error = assert_contained(store.path(), "hostile", &out, "undeclared-dataset");
    assert!(
        error["message"].as_str().unwrap().contains("`secrets`"),
        "{error:#}"
    );
}

#[test]
fn huge_dataset_name_fails_before_the_host_copies_it() {
    let store = host();
    let out = attack(store.path(), "huge-dataset-name");
    let error = assert_contained(store.path(), "hostile", &out, "host-call-too-large");
    assert!(number(&error["limit"]) < 10 << 20, "{error:#}");
}

#[test]
fn guest_panic_becomes_an_error_with_the_panic_message() {
    let store = host();
    let out = attack(store.path(), "panic");
    let error = assert_contained(store.path(), "hostile", &out, "panic");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("panicked: hostile model gave up on purpose"),
        "{message}"
    );
    assert!(stderr(&out).contains("hostile model gave up on purpose"));
}

#[test]
fn a_model_that_traps_leaves_no_leads_and_a_failed_ledger_entry_and_the_host_exits_cleanly() {
    let store = host();
    let out = attack(store.path(), "trap");
    let error = assert_contained(store.path(), "hostile", &out, "trap");
    assert!(
        error["message"].as_str().unwrap().contains("unreachable"),
        "{error:#}"
    );
    let err = stderr(&out);
    assert!(
        err.starts_with("error: run ") && err.contains("of hostile@1.0.0 failed (trap)"),
        "one readable error, no host panic: {err}"
    );
    assert!(!err.contains("panicked at"), "{err}");
}

#[test]
fn an_error_the_model_returns_is_recorded_as_its_own_message() {
    let store = host();
    let out = attack(store.path(), "model-error");
    let error = assert_contained(store.path(), "hostile", &out, "model-error");
    assert_eq!(error["message"], "hostile model reports failure");
}

#[test]
fn huge_parameter_value_is_refused_before_the_run_starts() {
    let store = host();
    let before = ledger(store.path()).len();
    let out = jiandu(store.path())
        .args(["run", "hostile", "--param"])
        .arg(format!("note={}", "n".repeat(100_000)))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        stderr(&out).contains("parameter `note` is 100000 bytes long"),
        "{}",
        stderr(&out)
    );
    let entries = ledger(store.path());
    assert_eq!(entries.len(), before + 1, "one refusal, no start");
    let refused = &entries[before];
    assert_eq!(refused["kind"], "run-refused");
    assert_eq!(refused["run"]["outcome"], "refused");
    assert!(leads(store.path(), "hostile", true).is_empty());
    good_run_still_works(store.path());
}

#[test]
fn log_flood_keeps_only_max_log_lines() {
    let store = host();
    let out = attack(store.path(), "log-flood");
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("[hostile] info: log line"))
        .count();
    assert_eq!(lines, 5);
    good_run_still_works(store.path());
}

#[test]
fn a_model_that_stops_reading_early_closes_its_scans_and_one_that_hoards_them_is_stopped() {
    let store = host();
    let out = attack(store.path(), "scan-and-leave");
    assert!(out.status.success(), "{}", stderr(&out));
    // A fresh store: the run above kept its leads.
    let store = host();
    let out = attack(store.path(), "scan-and-hoard");
    assert_contained(store.path(), "hostile", &out, "too-many-scans");
}

// ---------------------------------------------------------------------------
// Policy: grants, limits, --config

#[test]
fn declared_but_ungranted_dataset_refuses_the_run_before_it_starts() {
    let store = host();
    set_policy(
        store.path(),
        &format!("{POLICY}\n[models.hostile]\ndatasets = []\n"),
    );
    let before = ledger(store.path()).len();
    let out = attack(store.path(), "none");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("dataset `people` is declared by hostile@1.0.0 but not granted"),
        "{err}"
    );
    let entries = ledger(store.path());
    assert_eq!(
        entries.len(),
        before + 1,
        "refused before a run-started entry"
    );
    let run = &entries[before]["run"];
    assert_eq!(entries[before]["kind"], "run-refused");
    assert_eq!(run["error"]["kind"], "refused");
    assert!(run["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`people`"));
    assert!(leads(store.path(), "hostile", true).is_empty());
    good_run_still_works(store.path());
}

#[test]
fn a_models_own_limits_are_capped_by_policy() {
    let store = host();
    let out = attack(store.path(), "none");
    assert!(out.status.success(), "{}", stderr(&out));
    let entries = ledger(store.path());
    let limits = &entries.last().unwrap()["run"]["limits"];
    // model.toml asks for 1,000,000 MiB, 9e18 fuel and 1e8 seconds.
    assert_eq!(number(&limits["memory_mib"]), 64, "{limits:#}");
    assert_eq!(number(&limits["fuel"]), 2_000_000_000, "{limits:#}");
    assert_eq!(number(&limits["wall_seconds"]), 120, "{limits:#}");
    assert_eq!(leads(store.path(), "hostile", false).len(), 2);
}

#[test]
fn config_flag_policy_governs_the_run_and_must_exist() {
    let store = host();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strict.toml");
    std::fs::write(&config, "[models.good]\ndatasets = []\n").unwrap();
    let out = jiandu(store.path())
        .args(["run", "good", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("dataset `people`"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("strict.toml"), "{}", stderr(&out));

    let before = ledger(store.path()).len();
    let out = jiandu(store.path())
        .args(["run", "good", "--config"])
        .arg(dir.path().join("typo.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("typo.toml"), "{}", stderr(&out));
    assert_eq!(ledger(store.path()).len(), before, "nothing ran");
    good_run_still_works(store.path());
}

#[test]
fn a_policy_outside_what_the_sandbox_enforces_is_refused() {
    let store = host();
    set_policy(store.path(), "[defaults]\nmemory_mib = 0\n");
    let out = jiandu(store.path()).args(["run", "good"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("jiandu.toml") && err.contains("memory_mib = 0"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Masking

/// Every byte of `model`'s stored leads snapshot files: what it emitted.
fn stored_leads(store: &Path, model: &str) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(store.join("leads").join(model)).unwrap() {
        text.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.unwrap().path()).unwrap(),
        ));
    }
    text
}

#[test]
fn personal_fields_reach_a_model_as_pseudonyms_unless_policy_grants_them_clear() {
    let store = host();
    let out = jiandu(store.path()).args(["run", "good"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = stored_leads(store.path(), "good");
    for clear in ["11010519491231002X", "张三", "110105****", "张*"] {
        assert!(!seen.contains(clear), "{clear} in {seen}");
    }
    assert!(seen.contains("P-"), "{seen}");
    // People read them resolved: masked, or clear on request.
    let shown = serde_json::to_string(&leads(store.path(), "good", false)).unwrap();
    assert!(
        shown.contains("110105***********X") && shown.contains("张*"),
        "{shown}"
    );
    let clear = serde_json::to_string(&leads(store.path(), "good", true)).unwrap();
    assert!(
        clear.contains("11010519491231002X") && clear.contains("张三"),
        "{clear}"
    );

    set_policy(
        store.path(),
        &format!("{POLICY}\n[models.good]\nclear_personal = true\n"),
    );
    let out = jiandu(store.path()).args(["run", "good"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = stored_leads(store.path(), "good");
    assert!(
        seen.contains("11010519491231002X") && seen.contains("张三"),
        "{seen}"
    );
    let shown = serde_json::to_string(&leads(store.path(), "good", false)).unwrap();
    assert!(
        !shown.contains("11010519491231002X") && !shown.contains("张三"),
        "{shown}"
    );
    // The last run's entry (the clear listing above added its own).
    let entries = ledger(store.path());
    let finished = entries
        .iter()
        .rev()
        .find(|e| e["kind"] == "run-finished")
        .unwrap();
    assert_eq!(finished["run"]["datasets"][0]["clear_personal"], true);
}

// ---------------------------------------------------------------------------
// Load-time checks: models that break the contract itself

/// The contract's WIT, as the SDK and the host use it.
const MODEL_WIT: &str = include_str!("../../../sdk/wit/model.wit");

/// Turns a core module into a component of the `model` world described by
/// `wits` (packages in dependency order, the contract's last).
fn componentize(wits: &[String], core_wat: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let mut main = None;
    for (i, text) in wits.iter().enumerate() {
        main = Some(
            resolve
                .push_str(format!("package{i}.wit"), text)
                .unwrap_or_else(|e| panic!("WIT {i}: {e:#}")),
        );
    }
    let world = resolve
        .select_world(&[main.expect("a WIT package")], Some("model"))
        .expect("world `model`");
    let mut module = wat::parse_str(core_wat).expect("WAT parses");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .unwrap_or_else(|e| panic!("component encodes: {e:#}"))
}

/// A core module with the model world's exports (`describe`, `run`), a
/// bump allocator, and room for extra imports, fields and code.
#[derive(Default)]
struct CoreModel<'a> {
    /// `name@version` that `describe` returns.
    id: &'a str,
    /// Import declarations (they come first in a module).
    imports: &'a str,
    /// Other module fields (tables, data).
    fields: &'a str,
    /// Code run at the start of `describe`.
    describe: &'a str,
    /// Code run at the start of `run` (a local `$i i32` is available).
    run: &'a str,
    /// Initial memory in 64 KiB pages (default 32).
    pages: Option<u32>,
}

impl CoreModel<'_> {
    fn wat(&self) -> String {
        format!(
            r#"(module
  {imports}
  (memory (export "memory") {pages})
  (global $bump (mut i32) (i32.const 0x180000))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
    (global.set $bump (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (data (i32.const 0x100) "{id}")
  {fields}
  (func (export "describe") (result i32)
    {describe}
    (i32.store (i32.const 0x40) (i32.const 0x100))
    (i32.store (i32.const 0x44) (i32.const {len}))
    (i32.const 0x40))
  (func (export "run") (result i32)
    (local $i i32)
    {run}
    (i32.store8 (i32.const 0x80) (i32.const 0))
    (i32.const 0x80)))"#,
            imports = self.imports,
            pages = self.pages.unwrap_or(32),
            id = self.id,
            len = self.id.len(),
            fields = self.fields,
            describe = self.describe,
            run = self.run,
        )
    }
}

/// Writes `wasm` and a model.toml for `name@1.0.0` into the store's models
/// folder, as a copied or imported model would arrive.
fn install_raw(store: &Path, name: &str, wasm: &[u8]) {
    let dir = store.join("models").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("model.toml"),
        format!(
            "name = \"{name}\"\nversion = \"1.0.0\"\ntitle = \"测试\"\nunit = \"测试单位\"\nsdk = \"^0.2\"\n\n[datasets]\npeople = {{}}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("model.wasm"), wasm).unwrap();
}

/// Runs `name`, which must be refused at load: a `load` failure that names
/// the model, its file and `reason`.
fn assert_refused_at_load(store: &Path, name: &str, reason: &str) {
    let out = jiandu(store).args(["run", name]).output().unwrap();
    let error = assert_contained(store, name, &out, "load");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(&format!("{name}@1.0.0")), "{message}");
    assert!(
        message.contains(&format!("models/{name}/model.wasm")),
        "{message}"
    );
    assert!(message.contains(reason), "{message}");

    // The library refuses it the same way, whoever installs it.
    let installed = jiandu::catalog::load_dir(&store.join("models").join(name)).unwrap();
    let runtime = jiandu::runtime::Runtime::new(1024).unwrap();
    let Err(err) = runtime.load(&installed) else {
        panic!("{name} loaded");
    };
    assert!(err.reason.contains(reason), "{}", err.reason);
}

#[test]
fn a_module_that_describes_itself_as_another_version_is_refused_at_load() {
    let store = host();
    let wasm = componentize(
        &[MODEL_WIT.to_string()],
        &CoreModel {
            id: "described@2.0.0",
            imports: r#"(import "jiandu:model/host@0.2.0" "log" (func $log (param i32 i32 i32)))"#,
            run: "(call $log (i32.const 1) (i32.const 0x100) (i32.const 9))",
            ..Default::default()
        }
        .wat(),
    );
    install_raw(store.path(), "described", &wasm);
    assert_refused_at_load(
        store.path(),
        "described",
        "the module says it is described@2.0.0 but model.toml says described@1.0.0",
    );
}

#[test]
fn a_well_formed_wat_model_loads_and_runs() {
    // The baseline the refusals below differ from by one thing each.
    let store = host();
    let wasm = componentize(
        &[MODEL_WIT.to_string()],
        &CoreModel {
            id: "wat-model@1.0.0",
            imports: r#"(import "jiandu:model/host@0.2.0" "log" (func $log (param i32 i32 i32)))"#,
            run: "(call $log (i32.const 1) (i32.const 0x100) (i32.const 9))",
            ..Default::default()
        }
        .wat(),
    );
    install_raw(store.path(), "wat-model", &wasm);
    let out = jiandu(store.path())
        .args(["run", "wat-model"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("[wat-model] info: wat-model"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn importing_wasi_is_refused_at_load() {
    let store = host();
    let wasi =
        "package wasi:random@0.2.0;\ninterface random {\n  get-random-u64: func() -> u64;\n}\n";
    let wit = MODEL_WIT.replace(
        "world model {\n    import host;",
        "world model {\n    import host;\n    import wasi:random/random@0.2.0;",
    );
    assert_ne!(wit, MODEL_WIT);
    let wasm = componentize(
        &[wasi.to_string(), wit],
        &CoreModel {
            id: "wasi-user@1.0.0",
            imports: r#"(import "wasi:random/random@0.2.0" "get-random-u64" (func $r (result i64)))"#,
            run: "(drop (call $r))",
            ..Default::default()
        }
        .wat(),
    );
    install_raw(store.path(), "wasi-user", &wasm);
    assert_refused_at_load(
        store.path(),
        "wasi-user",
        "imports WASI (`wasi:random/random@0.2.0`)",
    );
}

#[test]
fn importing_an_interface_outside_the_contract_is_refused_at_load() {
    let store = host();
    let evil = "package evil:net@1.0.0;\ninterface socket {\n  send: func(data: u32);\n}\n";
    let wit = MODEL_WIT.replace(
        "world model {\n    import host;",
        "world model {\n    import host;\n    import evil:net/socket@1.0.0;",
    );
    let wasm = componentize(
        &[evil.to_string(), wit],
        &CoreModel {
            id: "exfiltrator@1.0.0",
            imports: r#"(import "evil:net/socket@1.0.0" "send" (func $send (param i32)))"#,
            run: "(call $send (i32.const 42))",
            ..Default::default()
        }
        .wat(),
    );
    install_raw(store.path(), "exfiltrator", &wasm);
    assert_refused_at_load(
        store.path(),
        "exfiltrator",
        "imports `evil:net/socket@1.0.0`, which is not part of the Jiandu contract",
    );
}

#[test]
fn importing_an_unknown_function_of_the_contract_interface_is_refused_at_load() {
    let store = host();
    let wit = MODEL_WIT.replace(
        "interface host {",
        "interface host {\n    steal-keys: func() -> u32;",
    );
    assert_ne!(wit, MODEL_WIT);
    let wasm = componentize(
        &[wit],
        &CoreModel {
            id: "key-thief@1.0.0",
            imports: r#"(import "jiandu:model/host@0.2.0" "steal-keys" (func $steal (result i32)))"#,
            run: "(drop (call $steal))",
            ..Default::default()
        }
        .wat(),
    );
    install_raw(store.path(), "key-thief", &wasm);
    assert_refused_at_load(store.path(), "key-thief", "steal-keys");
}

#[test]
fn a_model_built_for_another_contract_version_is_refused_at_load() {
    let store = host();
    let wit = MODEL_WIT.replace("package jiandu:model@0.2.1;", "package jiandu:model@9.0.0;");
    assert_ne!(wit, MODEL_WIT);
    let wasm = componentize(
        &[wit],
        &CoreModel {
            id: "from-the-future@1.0.0",
            imports: r#"(import "jiandu:model/host@9.0.0" "log" (func $log (param i32 i32 i32)))"#,
            run: "(call $log (i32.const 1) (i32.const 0x100) (i32.const 4))",
            ..Default::default()
        }
        .wat(),
    );
    install_raw(store.path(), "from-the-future", &wasm);
    assert_refused_at_load(
        store.path(),
        "from-the-future",
        "built for contract version 9.0.0",
    );
}

#[test]
fn exports_that_do_not_match_the_contract_are_refused_at_load() {
    let store = host();
    let wit = MODEL_WIT.replace(
        "export run: func() -> result<_, string>;",
        "export run: func() -> u32;",
    );
    assert_ne!(wit, MODEL_WIT);
    let wasm = componentize(
        &[wit],
        &CoreModel {
            id: "wrong-shape@1.0.0",
            ..Default::default()
        }
        .wat(),
    );
    install_raw(store.path(), "wrong-shape", &wasm);
    assert_refused_at_load(
        store.path(),
        "wrong-shape",
        "its exports do not match the contract",
    );
}

#[test]
fn a_describe_that_never_returns_is_refused_at_load() {
    let store = host();
    let wasm = componentize(
        &[MODEL_WIT.to_string()],
        &CoreModel {
            id: "spinner@1.0.0",
            describe: "(loop $spin (br $spin))",
            ..Default::default()
        }
        .wat(),
    );
    install_raw(store.path(), "spinner", &wasm);
    assert_refused_at_load(
        store.path(),
        "spinner",
        "`describe` failed (fuel-exhausted)",
    );
}

#[test]
fn a_core_module_is_refused_at_load() {
    let store = host();
    let wasm = wat::parse_str(
        CoreModel {
            id: "core-only@1.0.0",
            ..Default::default()
        }
        .wat(),
    )
    .unwrap();
    install_raw(store.path(), "core-only", &wasm);
    assert_refused_at_load(
        store.path(),
        "core-only",
        "a core WebAssembly module, not a component",
    );
}

#[test]
fn a_truncated_component_is_refused_at_load() {
    let store = host();
    let good = std::fs::read(built_model(&test_model("good")).join("model.wasm")).unwrap();
    install_raw(store.path(), "truncated", &good[..good.len() / 2]);
    assert_refused_at_load(store.path(), "truncated", "invalid component");
}

#[test]
fn random_bytes_are_refused_at_load() {
    let store = host();
    // xorshift64: the same "random" bytes every time.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    install_raw(store.path(), "noise", &bytes);
    assert_refused_at_load(store.path(), "noise", "not a WebAssembly file");
    // Random bytes after a component header are no better.
    let mut headed = b"\0asm\x0d\x00\x01\x00".to_vec();
    headed.extend_from_slice(&bytes);
    install_raw(store.path(), "headed-noise", &headed);
    assert_refused_at_load(store.path(), "headed-noise", "invalid component");
    // And neither is made into a component by the build path.
    assert!(jiandu::catalog::componentize(&bytes).is_err());
    assert!(jiandu::catalog::componentize(&headed).is_err());
}

// ---------------------------------------------------------------------------
// Run-time containment: attacks that need raw wasm

#[test]
fn table_growth_beyond_the_cap_fails() {
    let store = host();
    let wasm = componentize(
        &[MODEL_WIT.to_string()],
        &CoreModel {
            id: "table-bomb@1.0.0",
            fields: "(table $t 1 funcref)",
            run: "(loop $grow (drop (table.grow $t (ref.null func) (i32.const 10000))) (br $grow))",
            ..Default::default()
        }
        .wat(),
    );
    install_raw(store.path(), "table-bomb", &wasm);
    let out = jiandu(store.path())
        .args(["run", "table-bomb"])
        .output()
        .unwrap();
    let error = assert_contained(store.path(), "table-bomb", &out, "table-limit");
    assert!(
        number(&error["used"]) > number(&error["limit"]),
        "{error:#}"
    );
}

#[test]
fn a_huge_initial_memory_fails_at_the_memory_cap() {
    let store = host();
    let wasm = componentize(
        &[MODEL_WIT.to_string()],
        &CoreModel {
            id: "big-start@1.0.0",
            pages: Some(2000),
            ..Default::default()
        }
        .wat(),
    );
    install_raw(store.path(), "big-start", &wasm);
    let out = jiandu(store.path())
        .args(["run", "big-start"])
        .output()
        .unwrap();
    let error = assert_contained(store.path(), "big-start", &out, "memory-limit");
    assert_eq!(number(&error["limit"]), 64 << 20);
    assert!(number(&error["used"]) >= 2000 << 16, "{error:#}");
}

#[test]
fn a_key_list_of_one_string_repeated_cannot_make_the_host_copy_gigabytes() {
    // 4,096 list entries all pointing at the same 1 MiB string: 4 GiB if
    // the host copied each. wasmtime counts the bytes before copying them.
    let store = host();
    let wasm = componentize(
        &[MODEL_WIT.to_string()],
        &CoreModel {
            id: "amplifier@1.0.0",
            imports: r#"(import "jiandu:model/host@0.2.0" "get" (func $get (param i32 i32 i32 i32 i32)))"#,
            fields: r#"(data (i32.const 0x200) "people")"#,
            run: r#"
    (memory.fill (i32.const 0x10000) (i32.const 0x6b) (i32.const 0x100000))
    (loop $fill
      (i32.store (i32.add (i32.const 0x120000) (i32.mul (local.get $i) (i32.const 8)))
                 (i32.const 0x10000))
      (i32.store (i32.add (i32.const 0x120004) (i32.mul (local.get $i) (i32.const 8)))
                 (i32.const 0x100000))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 4096))))
    (call $get (i32.const 0x200) (i32.const 6) (i32.const 0x120000) (i32.const 4096) (i32.const 0xC0))"#,
            ..Default::default()
        }
        .wat(),
    );
    install_raw(store.path(), "amplifier", &wasm);
    let out = jiandu(store.path())
        .args(["run", "amplifier"])
        .output()
        .unwrap();
    let error = assert_contained(store.path(), "amplifier", &out, "host-call-too-large");
    assert!(number(&error["limit"]) <= 16 << 20, "{error:#}");
}

// ---------------------------------------------------------------------------
// The build path: nothing of a refused model is installed

/// `jiandu model build` of the test crate `name` into `store`.
fn build(store: &Path, name: &str) -> Output {
    jiandu(store)
        .args(["model", "build"])
        .arg(test_model(name))
        .output()
        .unwrap()
}

fn installed_names(store: &Path) -> Vec<String> {
    let out = jiandu(store)
        .args(["model", "list", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn model_build_refuses_a_module_that_describes_another_version_and_installs_nothing() {
    let store = tempfile::tempdir().unwrap();
    let out = build(store.path(), "mismatch");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // Named before anything is compiled: both files, both values.
    assert!(
        err.contains("Cargo.toml says version = \"0.9.0\"")
            && err.contains("model.toml says version = \"1.0.0\""),
        "{err}"
    );
    assert!(!err.contains("Compiling"), "{err}");
    assert!(err.contains("nothing was installed"), "{err}");
    assert!(!store.path().join("models/mismatch").exists());
    assert!(installed_names(store.path()).is_empty());
    let staging = store.path().join(".staging");
    assert!(
        !staging.exists() || std::fs::read_dir(&staging).unwrap().next().is_none(),
        "the staging folder is cleaned up"
    );
}

#[test]
fn a_refused_rebuild_leaves_the_installed_version_untouched() {
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("models/mismatch");
    std::fs::create_dir_all(&dir).unwrap();
    let toml = std::fs::read_to_string(test_model("mismatch").join("model.toml")).unwrap();
    std::fs::write(dir.join("model.toml"), &toml).unwrap();
    std::fs::write(dir.join("model.wasm"), b"the installed version").unwrap();
    let out = build(store.path(), "mismatch");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("model.toml")).unwrap(),
        toml
    );
    assert_eq!(
        std::fs::read(dir.join("model.wasm")).unwrap(),
        b"the installed version"
    );
}

#[test]
fn model_build_refuses_a_foreign_import_and_installs_nothing() {
    let store = tempfile::tempdir().unwrap();
    let out = build(store.path(), "foreign-import");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("foreign-import@1.0.0"), "{err}");
    assert!(err.contains("exfiltrate"), "names the import: {err}");
    assert!(!store.path().join("models/foreign-import").exists());
    assert!(installed_names(store.path()).is_empty());
}

// ---------------------------------------------------------------------------
// Isolation between runs

#[test]
fn concurrent_runs_on_one_runtime_share_nothing_and_a_failing_one_disturbs_no_other() {
    use jiandu::run::{execute, Request};
    let store = host();
    let s = jiandu::Store::open(store.path()).unwrap();
    let policy = jiandu::policy::Policy::load(&s.policy_path()).unwrap();
    let runtime = jiandu::runtime::Runtime::new(policy.defaults.stack_kib).unwrap();
    let request = |model: &str, params: &[(&str, &str)]| Request {
        model: model.to_string(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        operator: "tester".into(),
        partitions: None,
    };
    // All three start together, so the good runs overlap the bad ones.
    let start = std::sync::Barrier::new(3);
    let (bomb, spin, goods) = std::thread::scope(|scope| {
        let bomb = scope.spawn(|| {
            start.wait();
            execute(
                &s,
                &runtime,
                &policy,
                &request("hostile", &[("attack", "memory-bomb")]),
            )
        });
        let spin = scope.spawn(|| {
            start.wait();
            execute(
                &s,
                &runtime,
                &policy,
                &request("hostile", &[("attack", "infinite-loop")]),
            )
        });
        let goods = scope.spawn(|| {
            start.wait();
            (0..4)
                .map(|_| execute(&s, &runtime, &policy, &request("good", &[])))
                .collect::<Vec<_>>()
        });
        (
            bomb.join().unwrap(),
            spin.join().unwrap(),
            goods.join().unwrap(),
        )
    });
    let bomb = bomb.unwrap();
    assert_eq!(bomb.failure.as_ref().unwrap().kind, "memory-limit");
    assert_eq!(bomb.leads, 0);
    let spin = spin.unwrap();
    assert_eq!(spin.failure.as_ref().unwrap().kind, "fuel-exhausted");
    for good in goods {
        let good = good.unwrap();
        assert!(good.failure.is_none(), "{:?}", good.failure);
        assert_eq!(good.leads, 1);
        assert_eq!(good.records_read, 2, "a run reads only its own data");
    }

    // Checked in this process: the store stays open here.
    let of = |model: &str| {
        jiandu::leads::list(
            &s,
            &jiandu::leads::Filter {
                model: Some(model.to_string()),
                status: None,
            },
        )
        .unwrap()
    };
    assert!(of("hostile").is_empty());
    assert_eq!(of("good").len(), 1);
    let verified = jiandu::audit::verify::local(&s).unwrap();
    assert!(verified.problem.is_none(), "{:?}", verified.problem);
    // 2 failed runs and 4 good ones, each a start and a finish entry.
    let finished: Vec<_> = jiandu::ledger::read_all(&s)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == jiandu::ledger::Kind::RunFinished)
        .collect();
    assert_eq!(finished.len(), 6);
    assert_eq!(
        finished
            .iter()
            .filter(|e| e.run.outcome == jiandu::ledger::Outcome::Failed)
            .count(),
        2
    );
}

#[test]
fn a_runtime_stack_far_above_the_callers_thread_stack_still_traps_cleanly() {
    // Test threads have a 2 MiB stack; the wasm stack limit here is 8 MiB.
    // Runs get a thread of their own sized to the limit, so the model
    // overflows its wasm stack, not the host's.
    let store = host();
    set_policy(
        store.path(),
        &POLICY
            .replace("[defaults]", "[defaults]\nstack_kib = 8192")
            .replace("[maximum]", "[maximum]\nstack_kib = 8192"),
    );
    let s = jiandu::Store::open(store.path()).unwrap();
    let policy = jiandu::policy::Policy::load(&s.policy_path()).unwrap();
    let runtime = jiandu::runtime::Runtime::new(policy.defaults.stack_kib).unwrap();
    assert_eq!(runtime.stack_kib(), 8192);
    let report = jiandu::run::execute(
        &s,
        &runtime,
        &policy,
        &jiandu::run::Request {
            model: "hostile".into(),
            params: vec![("attack".into(), "deep-recursion".into())],
            operator: "tester".into(),
            partitions: None,
        },
    )
    .unwrap();
    let failure = report.failure.expect("the run failed");
    assert_eq!(failure.kind, "stack-overflow");
    assert_eq!(failure.limit, Some(8192 * 1024));
}

// ---------------------------------------------------------------------------
// A damaged store

#[test]
fn a_damaged_block_file_fails_the_run_by_name_and_keeps_no_leads() {
    let store = host();
    let file = store.path().join("data/people/1/0-0.blk");
    let good = std::fs::read(&file).unwrap();
    let mut bad = good.clone();
    // A byte of a record (past the frame and block headers).
    let at = bad.len() - 40;
    bad[at] ^= 0x20;
    std::fs::write(&file, &bad).unwrap();
    let out = jiandu(store.path()).args(["run", "good"]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}\n{err}", stdout(&out));
    assert!(err.contains("0-0.blk") && err.contains("corrupt"), "{err}");
    assert!(leads(store.path(), "good", true).is_empty());
    // Restored, the same store runs and its ledger (with the failed run) verifies.
    std::fs::write(&file, &good).unwrap();
    good_run_still_works(store.path());
}

/// A batch of leads as a raw component would send it through
/// `emit-leads`: `bytes` at 0x200 of its memory.
fn emit_leads_model(name: &str, bytes: &[u8]) -> Vec<u8> {
    let escaped: String = bytes.iter().map(|b| format!("\\{b:02x}")).collect();
    let id = format!("{name}@1.0.0");
    let fields = format!(r#"(data (i32.const 0x200) "{escaped}")"#);
    let run = format!(
        "(call $emit (i32.const 0x200) (i32.const {}) (i32.const 0x300))",
        bytes.len()
    );
    componentize(
        &[MODEL_WIT.to_string()],
        &CoreModel {
            id: &id,
            imports: r#"(import "jiandu:model/host@0.2.1" "emit-leads" (func $emit (param i32 i32 i32)))"#,
            fields: &fields,
            run: &run,
            ..Default::default()
        }
        .wat(),
    )
}

#[test]
fn a_batch_of_leads_that_is_not_well_formed_ends_the_run_and_keeps_nothing() {
    let store = host();
    let lead = |subject: &str, title: &str| {
        let mut out = Vec::new();
        jiandu_sdk::encoded_lead::put_data(
            &mut out,
            &jiandu_sdk::LeadData {
                subject: subject.into(),
                subject_personal: false,
                title: title.into(),
                amount: Some("1.00".into()),
                evidence: Vec::new(),
            },
        );
        out
    };
    // A good lead first: nothing of a failed run is kept, not even it.
    let good = lead("S1", "t");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "batch-cut",
            [good.clone(), lead("S2", "t")[..9].to_vec()].concat(),
            "lead 2 of a batch",
        ),
        (
            "batch-utf8",
            {
                let mut bad = lead("S2", "标题");
                let at = bad.len() - 14;
                bad[at] = 0xff;
                [good.clone(), bad].concat()
            },
            "not UTF-8",
        ),
        (
            "batch-flag",
            {
                let mut bad = lead("S2", "t");
                bad[4 + 4 + 2] = 7;
                bad
            },
            "neither 0 nor 1",
        ),
        (
            "batch-subject",
            [good.clone(), lead("", "t")].concat(),
            "empty subject",
        ),
        (
            "batch-amount",
            {
                let mut out = Vec::new();
                jiandu_sdk::encoded_lead::put_data(
                    &mut out,
                    &jiandu_sdk::LeadData {
                        subject: "S3".into(),
                        subject_personal: false,
                        title: "t".into(),
                        amount: Some("1e9 yuan".into()),
                        evidence: Vec::new(),
                    },
                );
                [good.clone(), out].concat()
            },
            "is not a decimal number",
        ),
    ];
    for (name, bytes, reason) in cases {
        install_raw(store.path(), name, &emit_leads_model(name, &bytes));
        let out = jiandu(store.path()).args(["run", name]).output().unwrap();
        let error = assert_contained(store.path(), name, &out, "invalid-lead");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(reason), "{name}: {message}");
    }

    // The same bytes, well formed, are leads like any other.
    install_raw(
        store.path(),
        "batch-good",
        &emit_leads_model("batch-good", &[good, lead("S2", "第二条")].concat()),
    );
    let out = jiandu(store.path())
        .args(["run", "batch-good"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let kept = leads(store.path(), "batch-good", false);
    assert_eq!(kept.len(), 2, "{kept:?}");
}
