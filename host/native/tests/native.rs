//! A native run reads what its backend was given, as a sandboxed run
//! would: declared datasets and fields only, personal values as
//! pseudonyms unless granted in clear.

use jiandu_native::{run, NativeBackend};
use jiandu_sdk::{Context, Decimal, Lead, Model, Result};
use jiandu_store::dataset::access::Access;
use jiandu_store::dataset::ingest::{self, Options};
use jiandu_store::dataset::schema::Schema;
use jiandu_store::Store;
use std::collections::{BTreeMap, HashMap};

const SCHEMA: &str = r#"
name = "payments"
department = "财政局"
primary_key = ["id"]
[[fields]]
name = "id"
type = "string"
personal = "id"
[[fields]]
name = "amount"
type = "decimal"
[[fields]]
name = "note"
type = "string"
"#;

/// A store holding five payments.
fn store(dir: &std::path::Path) -> Store {
    let store = Store::open(dir.join("s")).unwrap();
    let path = dir.join("payments.csv");
    std::fs::write(
        &path,
        "id,amount,note\n\
         110105194912310021,5.00,a\n\
         110105194912310038,12.50,b\n\
         11010519491231004X,30,c\n\
         110105194912310054,10,d\n\
         110105194912310062,10.01,e\n",
    )
    .unwrap();
    let opts = Options {
        schema: Some(Schema::parse("payments.toml", SCHEMA).unwrap()),
        ..Options::default()
    };
    let (staged, _) = ingest::stage(&store, "payments", &path, &opts).unwrap();
    staged.commit(&store).unwrap();
    store
}

/// A lead for each payment over the `over` parameter, by its payer.
struct Large;

impl Model for Large {
    fn run(ctx: &mut Context) -> Result<()> {
        let over: Decimal = ctx.param("over")?;
        let mut rows = ctx.read("payments").rows()?;
        let id = rows.field("id")?;
        let amount = rows.field("amount")?;
        while let Some(r) = rows.next_row()? {
            let a = r.decimal(amount)?;
            if a > over {
                ctx.emit(Lead::new(r.str(id)?).personal_subject().amount(a))?;
            }
        }
        Ok(())
    }
}

/// Reads a field it was not given.
struct ReadsNote;

impl Model for ReadsNote {
    fn run(ctx: &mut Context) -> Result<()> {
        let rows = ctx.read("payments").rows()?;
        rows.field("note")?;
        Ok(())
    }
}

/// Reads a dataset it was not given.
struct ReadsOther;

impl Model for ReadsOther {
    fn run(ctx: &mut Context) -> Result<()> {
        ctx.read("employers").rows()?;
        Ok(())
    }
}

fn backend(store: &Store, fields: Option<&[String]>, clear: bool) -> NativeBackend {
    let access = Access::current(store, "payments", fields, clear)
        .unwrap()
        .unwrap();
    let params = BTreeMap::from([("over".to_string(), "10".to_string())]);
    NativeBackend::new(params, HashMap::from([("payments".to_string(), access)]))
}

#[test]
fn a_native_run_sees_pseudonyms_unless_granted_clear_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let fields = ["id".to_string(), "amount".to_string()];

    let out = run::<Large>(backend(&store, Some(&fields), false)).unwrap();
    assert_eq!(out.records_read, 5);
    let amounts: Vec<&str> = out
        .leads
        .values()
        .map(|l| l.amount.as_deref().unwrap())
        .collect();
    assert_eq!(amounts.len(), 3, "{:?}", out.leads);
    assert!(
        out.leads.keys().all(|s| s.starts_with("P-")),
        "{:?}",
        out.leads.keys()
    );
    let mut sorted = amounts.clone();
    sorted.sort();
    assert_eq!(sorted, ["10.01", "12.50", "30.00"]);

    let clear = run::<Large>(backend(&store, Some(&fields), true)).unwrap();
    let subjects: Vec<&str> = clear.leads.keys().map(String::as_str).collect();
    assert_eq!(
        subjects,
        [
            "110105194912310038",
            "11010519491231004X",
            "110105194912310062"
        ]
    );
}

#[test]
fn a_native_run_reads_only_the_fields_and_datasets_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let fields = ["id".to_string(), "amount".to_string()];

    let err = run::<ReadsNote>(backend(&store, Some(&fields), false)).unwrap_err();
    assert!(err.contains("note"), "{err}");
    // Given every field, it reads it.
    run::<ReadsNote>(backend(&store, None, false)).unwrap();

    let err = run::<ReadsOther>(backend(&store, None, false)).unwrap_err();
    assert!(err.contains("`employers` is not declared"), "{err}");
}

/// Emits a lead for every payment under one subject.
struct OneSubject;

impl Model for OneSubject {
    fn run(ctx: &mut Context) -> Result<()> {
        let mut rows = ctx.read("payments").rows()?;
        let amount = rows.field("amount")?;
        while let Some(r) = rows.next_row()? {
            ctx.emit(Lead::new("同一单位").amount(r.decimal(amount)?))?;
        }
        Ok(())
    }
}

#[test]
fn a_second_lead_for_a_subject_ends_a_native_run_as_it_ends_a_sandboxed_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let err = run::<OneSubject>(backend(&store, None, false)).unwrap_err();
    assert!(
        err.contains("a second lead for subject `同一单位`"),
        "{err}"
    );
}
