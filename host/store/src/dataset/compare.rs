//! What changed between two versions of a dataset, and stored rows as a
//! person reads them (personal values masked unless shown in clear).
//!
//! Both walk versions in key order ([`VersionReader::records`]): a diff is
//! one merge of the two, in memory bounded by a block of each.

use super::block::KEY_SEP;
use super::{Schema, VersionReader};
use crate::{Error, Result};
use jiandu_sdk::record::{RecordRef, Value};
use serde::Serialize;

/// How one key differs between two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

/// What changed from one version to another, by primary key.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    pub unchanged: u64,
    /// The first keys that changed (as [`display_key`] shows them).
    pub samples: Vec<(Change, String)>,
}

impl Diff {
    fn note(&mut self, change: Change, key: &[u8], room: usize, show: &dyn Fn(&[u8]) -> String) {
        match change {
            Change::Added => self.added += 1,
            Change::Removed => self.removed += 1,
            Change::Changed => self.changed += 1,
        }
        if self.samples.len() < room {
            self.samples.push((change, show(key)));
        }
    }
}

/// Compares `old` (none: an empty dataset) with `new`, naming up to
/// `samples` changed keys as `show` writes them.
pub fn diff(
    old: Option<&VersionReader>,
    new: &VersionReader,
    samples: usize,
    show: &dyn Fn(&[u8]) -> String,
) -> Result<Diff> {
    let mut d = Diff::default();
    let mut a = old.map(|r| r.records());
    let mut b = new.records();
    loop {
        // Both sides' next records, lent from their blocks.
        let ea = match &mut a {
            Some(a) => a.peek()?,
            None => None,
        };
        let eb = b.peek()?;
        let (change, passed) = match (ea, eb) {
            (None, None) => break,
            (Some((k, _)), None) => (Some((Change::Removed, k)), (true, false)),
            (None, Some((k, _))) => (Some((Change::Added, k)), (false, true)),
            (Some((ka, ra)), Some((kb, rb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => (Some((Change::Removed, ka)), (true, false)),
                std::cmp::Ordering::Greater => (Some((Change::Added, kb)), (false, true)),
                std::cmp::Ordering::Equal if ra == rb => (None, (true, true)),
                std::cmp::Ordering::Equal => (Some((Change::Changed, ka)), (true, true)),
            },
        };
        match change {
            Some((change, key)) => d.note(change, key, samples, show),
            None => d.unchanged += 1,
        }
        if passed.0 {
            if let Some(a) = &mut a {
                a.advance()?;
            }
        }
        if passed.1 {
            b.advance()?;
        }
    }
    Ok(d)
}

/// A stored primary key as a person reads it: its parts joined by `+`,
/// personal parts masked unless `clear`.
pub fn display_key(schema: &Schema, key: &[u8], clear: bool) -> String {
    let key = String::from_utf8_lossy(key);
    key.split(KEY_SEP)
        .zip(&schema.primary_key)
        .map(|(part, field)| {
            let kind = schema
                .field_index(field)
                .and_then(|i| schema.fields[i].personal);
            match kind {
                Some(kind) if !clear => crate::mask::mask(kind, part),
                _ => part.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// Stored rows as a person reads them.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    /// The schema's field names, in order.
    pub fields: Vec<String>,
    /// Each row's values as text (`None`: no value), in key order.
    pub rows: Vec<Vec<Option<String>>>,
    /// Personal values shown in clear (none unless asked for).
    pub clear_values: u64,
}

/// The first `n` rows of a version, personal values masked unless `clear`.
pub fn head(reader: &VersionReader, n: usize, clear: bool) -> Result<Shown> {
    let schema = &reader.info().schema;
    let mut shown = Shown {
        fields: schema.fields.iter().map(|f| f.name.clone()).collect(),
        rows: Vec::new(),
        clear_values: 0,
    };
    for item in reader.records().take(n) {
        let (_, record) = item?;
        let (row, clear_values) = shown_row(schema, &record, clear)?;
        shown.clear_values += clear_values;
        shown.rows.push(row);
    }
    Ok(shown)
}

/// One stored record's values as text (`None`: no value), personal values
/// masked unless `clear`; and how many personal values are in clear.
pub fn shown_row(
    schema: &Schema,
    record: &[u8],
    clear: bool,
) -> Result<(Vec<Option<String>>, u64)> {
    let rec = RecordRef::new(record).map_err(|e| Error::Other(e.to_string()))?;
    let mut row = Vec::with_capacity(schema.fields.len());
    let mut clear_values = 0;
    for (i, field) in schema.fields.iter().enumerate() {
        let value = rec
            .field(i)
            .map_err(|e| Error::Other(e.to_string()))?
            .filter(|v| !matches!(v, Value::Null))
            .map(|v| v.to_string());
        row.push(match (value, field.personal) {
            (Some(v), Some(kind)) if !clear => Some(crate::mask::mask(kind, &v)),
            (Some(v), Some(_)) => {
                clear_values += 1;
                Some(v)
            }
            (v, _) => v,
        });
    }
    Ok((row, clear_values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::ingest::{self, Options};
    use crate::Store;

    fn schema() -> Schema {
        Schema::parse(
            "p.toml",
            r#"
name = "people"
department = "公安"
primary_key = ["id"]
[[fields]]
name = "id"
type = "string"
personal = "id"
[[fields]]
name = "name"
type = "string"
personal = "name"
[[fields]]
name = "town"
type = "string"
"#,
        )
        .unwrap()
    }

    fn ingest(store: &Store, dir: &std::path::Path, text: &str, append: bool) -> VersionReader {
        let path = dir.join("p.csv");
        std::fs::write(&path, text).unwrap();
        let opts = Options {
            schema: Some(schema()),
            append,
            ..Options::default()
        };
        let (staged, _) = ingest::stage(store, "people", &path, &opts).unwrap();
        staged.commit(store).unwrap();
        VersionReader::current(store, "people").unwrap()
    }

    #[test]
    fn a_diff_counts_added_removed_and_changed_keys_and_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        let v1 = ingest(
            &store,
            dir.path(),
            "id,name,town\nA1,张三,x\nB2,李四,y\nC3,王五,z\n",
            false,
        );
        let v2 = ingest(
            &store,
            dir.path(),
            "id,name,town\nB2,李四,y\nC3,王五,w\nD4,赵六,x\n",
            false,
        );
        let show = |k: &[u8]| display_key(&schema(), k, false);
        let d = diff(Some(&v1), &v2, 10, &show).unwrap();
        assert_eq!((d.added, d.removed, d.changed, d.unchanged), (1, 1, 1, 1));
        assert_eq!(d.samples.len(), 3);
        assert!(d.samples.contains(&(
            Change::Removed,
            crate::mask::mask(crate::mask::PersonalKind::Id, "A1")
        )));
        // Against nothing, everything is added; a version against itself,
        // nothing changed.
        let d = diff(None, &v2, 0, &show).unwrap();
        assert_eq!((d.added, d.samples.len()), (3, 0));
        let d = diff(Some(&v2), &v2, 10, &show).unwrap();
        assert_eq!((d.added, d.removed, d.changed, d.unchanged), (0, 0, 0, 3));
        // An appended segment: its rows win over the base's.
        let v3 = ingest(
            &store,
            dir.path(),
            "id,name,town\nC3,王五,q\nE5,钱七,x\n",
            true,
        );
        let d = diff(Some(&v2), &v3, 10, &show).unwrap();
        assert_eq!((d.added, d.removed, d.changed, d.unchanged), (1, 0, 1, 2));
    }

    #[test]
    fn rows_are_shown_masked_unless_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        let v = ingest(
            &store,
            dir.path(),
            "id,name,town\n110105194912310021,张三,x\nB2,李四,\n",
            false,
        );
        let masked = head(&v, 10, false).unwrap();
        assert_eq!(masked.fields, ["id", "name", "town"]);
        assert_eq!(masked.clear_values, 0);
        let text = format!("{:?}", masked.rows);
        assert!(
            !text.contains("张三") && !text.contains("110105194912310021"),
            "{text}"
        );
        assert_eq!(masked.rows[1][2], None);
        let clear = head(&v, 1, true).unwrap();
        assert_eq!(clear.rows.len(), 1);
        assert_eq!(clear.rows[0][1].as_deref(), Some("张三"));
        assert_eq!(clear.clear_values, 2);
    }
}
