//! Compaction: the segments of a version that daily `--append`s built up,
//! rewritten as one segment of a new version with the same records.
//!
//! Each appended segment makes a scan merge one more source and a lookup
//! check one more segment; compacting brings that back to one. The new
//! version is an ordinary one (staged, then made current with its ledger
//! entry), so the version compacted stays readable until it is pruned and
//! runs that read it can still be replayed. Its content digest is that of
//! its records in one segment, which differs from the chained digest of the
//! appended version it replaces.

use super::derived::Derived;
use super::ingest::{Rows, DEFAULT_MAX_ERRORS, INDEXES_BUDGET, RECORDS_BUDGET};
use super::sort::Sorter;
use super::{require_head, stage_version, NewVersion, PseudonymEntries, Staged, VersionReader};
use crate::{Error, Result, Store};

/// An appended version with more segments than this is compacted after
/// the ingest that appended the last one.
pub const COMPACT_AFTER_SEGMENTS: usize = 16;

/// Stages the current version of `name` rewritten as one segment; `None`
/// when it already is one.
pub fn stage(store: &Store, name: &str, operator: &str) -> Result<Option<Staged>> {
    let head = require_head(store, name)?;
    let Some(base) = head.current_version().cloned() else {
        return Err(Error::dataset(name, "has no current version to compact"));
    };
    if base.segments.len() <= 1 {
        return Ok(None);
    }
    let schema = base.schema.clone();
    let tmp = store.root().join("tmp");
    let mut records = Sorter::new(&tmp, RECORDS_BUDGET);
    let pseudonymizer = super::pseudonymizer_for(store, &schema)?;
    let mut derived = Derived::new(&schema, pseudonymizer.as_ref(), &tmp, INDEXES_BUDGET);
    let reader = VersionReader::new(store, name, base.clone());
    let mut all = reader.records();
    let mut n = 0u64;
    while let Some((key, record)) = all.peek()? {
        records.push(key, n, record).map_err(super::sort_failed)?;
        n += 1;
        derived.add(key, record)?;
        all.advance()?;
    }
    let rows = Rows {
        records,
        indexes: derived.indexes,
        pseudonyms: derived.pseudonyms.map(PseudonymEntries::finish),
        file: format!("{name} version {}", base.version).into(),
        max_errors: DEFAULT_MAX_ERRORS,
    };
    let source = format!(
        "compaction of version {} ({} segments)",
        base.version,
        base.segments.len()
    );
    let staged = stage_version(
        store,
        name,
        rows,
        NewVersion {
            append: false,
            schema: Some(&schema),
            source: &source,
            source_sha256: base.digest.clone(),
            operator,
            warnings: base.warnings,
        },
    )?;
    Ok(Some(staged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::compare::{diff, display_key};
    use crate::dataset::ingest::{self, Options};
    use crate::dataset::tests::schema;
    use crate::pseudonym::Pseudonymizer;

    #[test]
    fn many_appended_segments_compact_into_one_version_with_the_same_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        let path = dir.path().join("day.csv");
        for day in 0..20 {
            // Each day adds a key and moves key 0 to another place.
            let text = match day {
                0 => "id,place\nk00,p0\n".to_string(),
                _ => format!("id,place\nk{day:02},p{}\nk00,moved{day}\n", day % 3),
            };
            std::fs::write(&path, text).unwrap();
            let opts = Options {
                schema: Some(schema()),
                append: day > 0,
                ..Options::default()
            };
            let (staged, _) = ingest::stage(&store, "sightings", &path, &opts).unwrap();
            staged.commit(&store).unwrap();
        }
        let before = VersionReader::current(&store, "sightings").unwrap();
        assert_eq!(before.info().segments.len(), 20);
        let staged = stage(&store, "sightings", "tester")
            .unwrap()
            .expect("compacted");
        staged.commit(&store).unwrap();
        let after = VersionReader::current(&store, "sightings").unwrap();
        assert_eq!(after.info().segments.len(), 1);
        assert_eq!(after.info().records, before.info().records);
        assert!(after.info().source.contains("compaction of version 20"));
        let show = |k: &[u8]| display_key(&schema(), k, false);
        let d = diff(Some(&before), &after, 5, &show).unwrap();
        assert_eq!((d.added, d.removed, d.changed, d.unchanged), (0, 0, 0, 20));
        assert_eq!(after.get("k00").unwrap(), before.get("k00").unwrap());
        for place in ["p0", "p1", "p2", "moved19", "moved3"] {
            assert_eq!(
                after.index_keys("by_place", place).unwrap(),
                before.index_keys("by_place", place).unwrap(),
                "{place}"
            );
        }
        assert_eq!(after.index_keys("by_place", "moved19").unwrap(), ["k00"]);
        // One segment already: nothing to do.
        assert!(stage(&store, "sightings", "tester").unwrap().is_none());
    }

    #[test]
    fn a_compacted_version_of_personal_fields_has_the_pseudonym_runs_of_its_records() {
        use crate::dataset::{pseudo, pseudonymous_key};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        let schema = crate::dataset::Schema::parse(
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
[indexes]
by_name = "name"
"#,
        )
        .unwrap();
        let path = dir.path().join("day.csv");
        for day in 0..3 {
            let text = match day {
                0 => "id,name\n650,李0\n".to_string(),
                _ => format!("id,name\n65{day},张{day}\n650,李{day}\n"),
            };
            std::fs::write(&path, text).unwrap();
            let opts = Options {
                schema: Some(schema.clone()),
                append: day > 0,
                ..Options::default()
            };
            let (staged, _) = ingest::stage(&store, "people", &path, &opts).unwrap();
            staged.commit(&store).unwrap();
        }
        stage(&store, "people", "tester")
            .unwrap()
            .expect("compacted")
            .commit(&store)
            .unwrap();
        let after = VersionReader::current(&store, "people").unwrap();
        assert_eq!(after.info().segments.len(), 1);
        let p = Pseudonymizer::for_store(&store).unwrap();
        let keys: Vec<String> = after
            .records()
            .map(|r| String::from_utf8(r.unwrap().0).unwrap())
            .collect();
        assert_eq!(keys, ["650", "651", "652"]);
        let mut key_order: Vec<(String, String)> = keys
            .iter()
            .map(|k| (pseudonymous_key(&schema, &p, k), k.clone()))
            .collect();
        key_order.sort();
        assert_eq!(
            after.index_pairs(pseudo::KEY_ORDER, None).unwrap(),
            key_order
        );
        let mut by_name: Vec<(String, String)> = [("李2", "650"), ("张1", "651"), ("张2", "652")]
            .iter()
            .map(|(name, k)| {
                let kind = crate::mask::PersonalKind::Name;
                (p.pseudonym(kind, name), k.to_string())
            })
            .collect();
        by_name.sort();
        let run = pseudo::index("by_name");
        assert_eq!(after.index_pairs(&run, None).unwrap(), by_name);
        assert_eq!(after.index_pairs(pseudo::CLEAR, None).unwrap().len(), 6);
    }
}
