//! `jiandu model new`: a model crate that builds as it is, anywhere: its
//! own copy of the SDK (carried in this binary, so it matches the host),
//! `Cargo.toml` and `model.toml` with the same name and version, the SDK
//! glue in `src/lib.rs`, a pure rule with a test in `src/rule.rs`, a README
//! for prosecutors, and the schemas of the datasets it reads when the
//! store has them.

use crate::dataset::schema::{FieldType, Schema};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The SDK's files, as this host was built with them.
const SDK_FILES: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../../sdk/src/lib.rs")),
    ("src/alloc.rs", include_str!("../../../sdk/src/alloc.rs")),
    (
        "src/backend.rs",
        include_str!("../../../sdk/src/backend.rs"),
    ),
    (
        "src/context.rs",
        include_str!("../../../sdk/src/context.rs"),
    ),
    ("src/de.rs", include_str!("../../../sdk/src/de.rs")),
    ("src/error.rs", include_str!("../../../sdk/src/error.rs")),
    ("src/lead.rs", include_str!("../../../sdk/src/lead.rs")),
    (
        "src/decimal_text.rs",
        include_str!("../../../sdk/src/decimal_text.rs"),
    ),
    (
        "src/encoded_lead.rs",
        include_str!("../../../sdk/src/encoded_lead.rs"),
    ),
    ("src/record.rs", include_str!("../../../sdk/src/record.rs")),
    ("src/rows.rs", include_str!("../../../sdk/src/rows.rs")),
    ("src/scan.rs", include_str!("../../../sdk/src/scan.rs")),
    ("wit/model.wit", include_str!("../../../sdk/wit/model.wit")),
];

/// The SDK's manifest and the workspace's shared dependency versions it
/// inherits.
const SDK_MANIFEST: &str = include_str!("../../../sdk/Cargo.toml");
const WORKSPACE_MANIFEST: &str = include_str!("../../../Cargo.toml");

/// A dataset the new model reads: its schema when the store has it.
pub struct Reads {
    pub dataset: String,
    pub schema: Option<Schema>,
}

/// Writes a new model crate `name` into `dir` (which must not exist or be
/// empty); the files written, relative to `dir`.
pub fn new_model(dir: &Path, name: &str, unit: &str, reads: &[Reads]) -> Result<Vec<PathBuf>> {
    crate::catalog::check_name(name).map_err(|e| Error::model(name, e))?;
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if occupied {
        return Err(Error::file(
            dir,
            "is not empty; `jiandu model new` writes a new crate into a new folder",
        ));
    }
    let mut files: Vec<(PathBuf, String)> = vec![
        ("Cargo.toml".into(), cargo_toml(name)),
        ("model.toml".into(), model_toml(name, unit, reads)),
        ("src/lib.rs".into(), lib_rs(name, reads.first())),
        ("src/rule.rs".into(), RULE_RS.to_string()),
        ("README.md".into(), readme(name, reads)),
        ("sdk/Cargo.toml".into(), sdk_manifest()?),
    ];
    for (path, text) in SDK_FILES {
        files.push((Path::new("sdk").join(path), text.to_string()));
    }
    for r in reads {
        if let Some(schema) = &r.schema {
            let text = toml::to_string(schema)
                .map_err(|e| Error::Other(format!("the schema of `{}`: {e}", r.dataset)))?;
            files.push((
                PathBuf::from(format!("schemas/{}.toml", r.dataset)),
                format!(
                    "# The schema of `{}` as this store registered it.\n{text}",
                    r.dataset
                ),
            ));
        }
    }
    write_files(dir, files)
}

/// Writes a new scripted model `name` into `dir` (which must not exist or
/// be empty): `model.toml` naming `rule.plan.toml`, a plan that reads the
/// first dataset, keeps the records whose first amount is above a
/// threshold and emits a lead for each, and a README. Every dataset needs
/// its schema (a plan is checked against it); the files written,
/// relative to `dir`.
pub fn new_plan_model(dir: &Path, name: &str, unit: &str, reads: &[Reads]) -> Result<Vec<PathBuf>> {
    crate::catalog::check_name(name).map_err(|e| Error::model(name, e))?;
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if occupied {
        return Err(Error::file(
            dir,
            "is not empty; `jiandu model new` writes a new model into a new folder",
        ));
    }
    if let Some(r) = reads.iter().find(|r| r.schema.is_none()) {
        return Err(Error::dataset(
            &r.dataset,
            "is not in this store: a plan is checked against its datasets' schemas, so ingest it first (or leave it out of --datasets)",
        ));
    }
    let Some(first) = reads.first() else {
        return Err(Error::model(
            name,
            "a plan reads at least one dataset: name it with --datasets",
        ));
    };
    let mut model = model_toml(name, unit, reads);
    model = model.replacen(
        "version = \"0.1.0\"\n",
        "version = \"0.1.0\"\nplan = \"rule.plan.toml\"          # the rule, step by step (docs/plans.md)\n",
        1,
    );
    let files: Vec<(PathBuf, String)> = vec![
        ("model.toml".into(), model),
        ("rule.plan.toml".into(), plan_toml(first)),
        ("README.md".into(), readme(name, reads)),
    ];
    write_files(dir, files)
}

/// The starting plan: read the first dataset, keep what is above the
/// threshold (when it has a number), emit a lead per record.
fn plan_toml(first: &Reads) -> String {
    let schema = first.schema.as_ref().expect("checked by the caller");
    let key = schema
        .primary_key
        .first()
        .cloned()
        .unwrap_or_else(|| schema.fields[0].name.clone());
    let key_personal = schema
        .fields
        .iter()
        .any(|f| f.name == key && f.personal.is_some());
    let number = schema
        .fields
        .iter()
        .find(|f| f.personal.is_none() && matches!(f.ty, FieldType::Decimal))
        .or_else(|| {
            schema
                .fields
                .iter()
                .find(|f| f.personal.is_none() && matches!(f.ty, FieldType::Int))
        });
    let evidence: Vec<&str> = schema
        .fields
        .iter()
        .filter(|f| f.name != key && f.personal.is_none())
        .take(3)
        .map(|f| f.name.as_str())
        .collect();
    let mut out = format!(
        r#"# The rule, step by step: each [[step]] takes the rows of the step
# before it (or of `input`). `jiandu model build .` checks every step
# against the store's schemas; `jiandu model explain NAME` reads it back
# as sentences. The language: docs/plans.md.
format = 1
description = "What this model supervises, in one sentence."

[[step]]
name = "records"
op = "read"
dataset = "{dataset}"
"#,
        dataset = first.dataset
    );
    if let Some(n) = number {
        out.push_str(&format!(
            r#"
[[step]]
name = "above_threshold"
op = "filter"
where = "{field} > $threshold"
note = "A record is a lead when its {field} is above the threshold."
"#,
            field = n.name
        ));
    }
    // A run gives one lead per subject: where the key has more fields than
    // the subject's, a key's records are gathered into one row first.
    let grouped = schema.primary_key.len() > 1;
    if grouped {
        let most = number
            .map(|n| format!(", {f} = \"max({f})\"", f = n.name))
            .unwrap_or_default();
        out.push_str(&format!(
            r#"
[[step]]
name = "per_{key}"
op = "group"
by = ["{key}"]
aggregates = {{ records = "count()"{most} }}
note = "One lead per {key}: its records gathered into one row."
"#
        ));
    }
    out.push_str(&format!(
        r#"
[[step]]
name = "leads"
op = "emit"
subject = "{key}"
{personal}title = "{title}"
"#,
        personal = if key_personal {
            format!("subject_personal = true\npersonal = [\"{key}\"]\n")
        } else {
            String::new()
        },
        // A title cannot mask: a personal key is shown as evidence, which
        // people see masked.
        title = if key_personal {
            first.dataset.clone()
        } else {
            format!("{} {{{key}}}", first.dataset)
        },
    ));
    if let Some(n) = number.filter(|n| matches!(n.ty, FieldType::Decimal)) {
        out.push_str(&format!("amount = \"{}\"\n", n.name));
    }
    let mut evidence = if grouped { vec!["records"] } else { evidence };
    if key_personal {
        evidence.insert(0, key.as_str());
    }
    if !evidence.is_empty() {
        out.push_str("\n[step.evidence]\n");
        for f in evidence {
            out.push_str(&format!("{f} = \"{f}\"\n"));
        }
    }
    out
}

/// Writes `files` (paths relative to `dir`); the paths written.
fn write_files(dir: &Path, files: Vec<(PathBuf, String)>) -> Result<Vec<PathBuf>> {
    for (path, text) in &files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::file(parent, e))?;
        }
        crate::fsio::write_atomic_shared(&full, text.as_bytes())
            .map_err(|e| Error::file(&full, e))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"          # must equal `name` in model.toml
version = "0.1.0"        # must equal `version` in model.toml
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]   # cdylib: the model; rlib: `cargo test` of the rule

[dependencies]
jiandu-sdk = {{ path = "sdk" }}   # the SDK this host was built with

# A crate of its own, not a member of any workspace above this folder.
[workspace]
"#
    )
}

fn model_toml(name: &str, unit: &str, reads: &[Reads]) -> String {
    let mut datasets = String::new();
    for r in reads {
        match &r.schema {
            Some(s) => datasets.push_str(&format!(
                "{} = {{ fields = [{}] }}\n",
                r.dataset,
                s.fields
                    .iter()
                    .map(|f| format!("\"{}\"", f.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => datasets.push_str(&format!(
                "{} = {{}}                     # all fields; list the ones the model reads\n",
                r.dataset
            )),
        }
    }
    format!(
        r#"name = "{name}"
version = "0.1.0"
title = "{name}"
unit = "{unit}"
sdk = "^0.2"
description = "What this model supervises, in one sentence."
legal_basis = ["The provision the rule applies"]

[datasets]               # the model reads these and nothing else
{datasets}
[params]
threshold = {{ type = "decimal", default = "0", description = "A record is a lead when its value is above this" }}
"#
    )
}

/// The glue: reads the first dataset, asks the rule, emits leads.
fn lib_rs(name: &str, first: Option<&Reads>) -> String {
    let ty = name
        .split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<String>();
    let ty = if ty.starts_with(|c: char| c.is_ascii_digit()) {
        format!("Model{ty}")
    } else {
        ty
    };
    let schema = first.and_then(|r| r.schema.as_ref().map(|s| (&r.dataset, s)));
    // The body, and whether it emits a `Lead` itself.
    let (body, emits) = match schema.and_then(|(d, s)| {
        let key = s.primary_key.first()?;
        // A money field if there is one, else a count.
        let value = s
            .fields
            .iter()
            .find(|f| f.ty == FieldType::Decimal)
            .or_else(|| s.fields.iter().find(|f| f.ty == FieldType::Int))?;
        Some((d, key, value))
    }) {
        Some((dataset, key, value)) => {
            let read = if value.ty == FieldType::Int {
                "Decimal::from(row.i64(value)?)".to_string()
            } else {
                "row.decimal(value)?".to_string()
            };
            let body = format!(
                r#"        let threshold: Decimal = ctx.param("threshold")?;
        let mut rows = ctx.read("{dataset}").rows()?;
        let key = rows.field("{key}")?;
        let value = rows.field("{value}")?;
        // A run gives one lead per subject; the records come in key
        // order, so a {key} already found is passed over.
        let mut found = String::new();
        while let Some(row) = rows.next_row()? {{
            let amount = {read};
            if row.str(key)? == found {{
                continue;
            }}
            if rule::is_lead(amount, threshold) {{
                found.clear();
                found.push_str(row.str(key)?);
                ctx.emit(
                    Lead::new(row.str(key)?)
                        .title(format!("{value} {{amount}} is above {{threshold}}"))
                        .amount(amount)
                        .evidence("threshold", threshold),
                )?;
            }}
        }}
        Ok(())"#,
                value = value.name
            );
            (body, true)
        }
        None => (
            r#"        // Read a declared dataset (`ctx.read("name").rows()?`, or
        // `ctx.read("name").into::<T>()?` with a struct of the fields you
        // read), ask `rule`, and emit a lead for each finding:
        // `ctx.emit(jiandu_sdk::Lead::new(subject).title(..).amount(..))?`.
        let threshold: Decimal = ctx.param("threshold")?;
        let _ = rule::is_lead(Decimal::ZERO, threshold);
        Ok(())"#
                .to_string(),
            false,
        ),
    };
    // Only what the body uses: a new crate builds without a warning.
    let lead = if emits { "Lead, " } else { "" };
    format!(
        r#"//! The SDK glue of `{name}`: reads the datasets, asks the rule in
//! `rule.rs`, emits leads. The rule itself stays pure and tested.

mod rule;

use jiandu_sdk::{{export_model, Context, Decimal, {lead}Model, Result}};

struct {ty};

impl Model for {ty} {{
    fn run(ctx: &mut Context) -> Result<()> {{
{body}
    }}
}}

export_model!({ty});
"#
    )
}

const RULE_RS: &str = r#"//! The rule, in plain functions over plain values: no clock (take the
//! date as a parameter), money in `Decimal`, every constant a parameter.

use jiandu_sdk::Decimal;

/// Whether a record with `value` is a lead: above `threshold`.
pub fn is_lead(value: Decimal, threshold: Decimal) -> bool {
    value > threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_above_the_threshold_is_a_lead_and_one_at_it_is_not() {
        let t = Decimal::new(1000, 2);
        assert!(is_lead(Decimal::new(1001, 2), t));
        assert!(!is_lead(t, t));
    }
}
"#;

fn readme(name: &str, reads: &[Reads]) -> String {
    let datasets = reads
        .iter()
        .map(|r| format!("- `{}`", r.dataset))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        r#"# {name}

**监督点 / What it supervises**: one paragraph a prosecutor can read.

**规则 / The rule, in plain words**: when a record is a lead, and why.

**数据 / Data it reads**:
{datasets}

**线索 / Each lead**: its subject, title, amount and every evidence field.

**已知局限 / Known limits**: what the rule does not see.

## Try it

```sh
cargo test                                   # the rule's tests
jiandu model test . --data DATASET=FILE …    # on sample files, in a throwaway store
jiandu model build .                         # install it
```
"#
    )
}

/// The SDK's manifest with the workspace's shared versions written in, so
/// the copy builds outside the workspace.
fn sdk_manifest() -> Result<String> {
    let bad = |e: String| Error::Other(format!("the SDK manifest this host carries: {e}"));
    let mut sdk: toml::Table = SDK_MANIFEST.parse().map_err(|e| bad(format!("{e}")))?;
    let ws: toml::Table = WORKSPACE_MANIFEST
        .parse()
        .map_err(|e| bad(format!("{e}")))?;
    let shared = ws
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|d| d.as_table())
        .cloned()
        .unwrap_or_default();
    let package = sdk
        .get_mut("package")
        .and_then(|p| p.as_table_mut())
        .ok_or_else(|| bad("no [package]".into()))?;
    for key in ["edition", "license", "rust-version"] {
        if let Some(v) = ws
            .get("workspace")
            .and_then(|w| w.get("package"))
            .and_then(|p| p.get(key))
        {
            package.insert(key.to_string(), v.clone());
        }
    }
    for section in ["dependencies", "dev-dependencies"] {
        let Some(deps) = sdk.get_mut(section).and_then(|d| d.as_table_mut()) else {
            continue;
        };
        for (name, dep) in deps.iter_mut() {
            let inherits = dep
                .as_table()
                .and_then(|t| t.get("workspace"))
                .and_then(|w| w.as_bool())
                == Some(true);
            if inherits {
                *dep = shared
                    .get(name)
                    .cloned()
                    .ok_or_else(|| bad(format!("`{name}` is not a workspace dependency")))?;
            }
        }
    }
    toml::to_string(&sdk).map_err(|e| bad(format!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_copy_inherits_nothing_from_a_workspace() {
        let text = sdk_manifest().unwrap();
        assert!(!text.contains("workspace"), "{text}");
        let t: toml::Table = text.parse().unwrap();
        assert_eq!(t["package"]["name"].as_str(), Some("jiandu-sdk"));
        assert!(
            t["dependencies"]["serde"].get("version").is_some(),
            "{text}"
        );
        assert!(t["package"].get("edition").is_some(), "{text}");
    }

    #[test]
    fn the_sdk_copy_holds_every_file_of_the_sdk() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
        for folder in ["src", "wit"] {
            for entry in std::fs::read_dir(sdk.join(folder)).unwrap() {
                let name = format!("{folder}/{}", entry.unwrap().file_name().to_string_lossy());
                assert!(
                    SDK_FILES.iter().any(|(f, _)| *f == name),
                    "{name} is not in SDK_FILES: a new model's copy of the SDK would not build"
                );
            }
        }
    }

    #[test]
    fn a_folder_with_files_in_it_is_not_written_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let err = new_model(dir.path(), "m", "u", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not empty"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
