//! Partitioned runs: a model that declares `[partition]` in its model.toml
//! runs as one sandboxed instance per range of its key, all at once, and
//! its leads are merged.
//!
//! The ranges are cut at block boundaries of the largest dataset split on
//! the key (its blocks' first keys give the bounds, so every part starts
//! reading at the beginning of a block), and the same bounds cut every
//! other split dataset. Every part is a self-contained task — the run's
//! model and its digest, the parameters, the dataset versions and digests,
//! and one key range — so the same shape could be handed to a distributed
//! work queue; here the parts go through a queue on this host, taken by
//! one worker per core, several parts per core when the data fills them,
//! so that the cores finish together even when the data is not spread
//! evenly over the key. Parts cover disjoint
//! keys, so they must emit disjoint subjects; the merged leads, and so the
//! leads digest, are those of a single-instance run.

use crate::catalog::Manifest;
use crate::dataset::access::Access;
use crate::dataset::{block, KeyRange};
use std::collections::HashMap;

/// The most parts a run is split into.
pub const MAX_PARTS: usize = 64;

/// How a run is split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The key, as model.toml names it.
    pub key: String,
    /// The datasets cut into ranges; the others are read whole by every part.
    pub datasets: Vec<String>,
    pub ranges: Vec<KeyRange>,
}

/// Parts per core when the caller does not say how many: enough that a
/// part that takes longer than the others (a range with more data, a
/// core that is slower for a while) leaves the other cores work to share,
/// and few enough that each part's start (an instance, its first blocks)
/// stays small beside its work.
pub const PARTS_PER_CORE: usize = 8;

/// The cores parts run on at once.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Records of the largest split dataset per part, at least, before a run
/// is cut into more parts than cores: below it a part's start (an
/// instance, a plan checked, its first blocks) is no longer small beside
/// its work.
pub const MIN_PART_RECORDS: u64 = 65_536;

/// How many parts to make when the caller does not say, for a largest
/// split dataset of `records`: one per core at least, and
/// [`PARTS_PER_CORE`] per core (at most [`MAX_PARTS`]) when each gets
/// [`MIN_PART_RECORDS`].
pub fn default_parts(records: u64) -> usize {
    let by_size = usize::try_from(records / MIN_PART_RECORDS).unwrap_or(usize::MAX);
    let most = (cores() * PARTS_PER_CORE).min(MAX_PARTS);
    by_size.clamp(cores().min(most), most)
}

/// How a run of `manifest` over `datasets` splits into (at most) `parts`
/// parts ([`default_parts`] of its data when `None`); `None` when it runs
/// as one instance (the model declares no `[partition]`, one part is asked
/// for, or the data is one block). `Err` when the declaration does not fit
/// the data: the run is refused.
pub fn split(
    manifest: &Manifest,
    datasets: &HashMap<String, Access>,
    parts: Option<usize>,
) -> Result<Option<Split>, String> {
    let Some(decl) = &manifest.partition else {
        return Ok(None);
    };
    let mut split: Vec<String> = Vec::new();
    for name in manifest.datasets.keys() {
        let Some(access) = datasets.get(name) else {
            continue;
        };
        let field = decl.field_in(name);
        let first = access.reader.info.schema.primary_key.first();
        if first.map(String::as_str) != Some(field) {
            if decl.fields.contains_key(name) {
                return Err(format!(
                    "{}: [partition] says `{name}` holds the key in `{field}`, but its primary key begins with `{}`",
                    manifest.id(),
                    first.map_or("nothing", String::as_str)
                ));
            }
            continue;
        }
        if !access.can_split() {
            // Its records reach the model in pseudonym order, which a range
            // of clear values does not follow: one instance reads all.
            tracing::debug!(
                "{}: `{name}` is keyed by a personal field the model gets as pseudonyms; the run is not split",
                manifest.id()
            );
            return Ok(None);
        }
        split.push(name.clone());
    }
    if split.is_empty() {
        return Err(format!(
            "{}: [partition] key `{}` begins the primary key of none of its datasets; name the field that holds it under [partition] fields",
            manifest.id(),
            decl.key
        ));
    }
    // Bounds from the block boundaries of the largest split dataset.
    let largest = split
        .iter()
        .filter_map(|n| datasets.get(n))
        .max_by_key(|a| a.reader.info.records)
        .expect("at least one split dataset");
    let parts = parts
        .unwrap_or_else(|| default_parts(largest.reader.info.records))
        .clamp(1, MAX_PARTS);
    if parts == 1 {
        return Ok(None);
    }
    let Some(segment) = largest
        .reader
        .info
        .segments
        .iter()
        .max_by_key(|s| s.first_keys.len())
    else {
        return Ok(None);
    };
    let first_keys = &segment.first_keys;
    let mut bounds: Vec<String> = (1..parts)
        .map(|j| j * first_keys.len() / parts)
        .filter(|&i| i > 0 && i < first_keys.len())
        .map(|i| {
            first_keys[i]
                .split(block::KEY_SEP)
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .filter(|b| !b.is_empty())
        .collect();
    bounds.dedup();
    if bounds.is_empty() {
        return Ok(None);
    }
    let mut ranges = Vec::with_capacity(bounds.len() + 1);
    let mut lo = None;
    for b in bounds {
        ranges.push(KeyRange {
            lo: lo.take(),
            hi: Some(b.clone()),
        });
        lo = Some(b);
    }
    ranges.push(KeyRange { lo, hi: None });
    Ok(Some(Split {
        key: decl.key.clone(),
        datasets: split,
        ranges,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::ingest::{self, Options};
    use crate::dataset::Schema;
    use crate::Store;
    use std::path::Path;

    /// A dataset `name` keyed by (`first`, n), with `rows` rows over 2,000
    /// values of its first field.
    fn dataset(store: &Store, dir: &Path, name: &str, first: &str, rows: u32) {
        let schema = Schema::parse(
            "s.toml",
            &format!(
                "name = \"{name}\"\ndepartment = \"d\"\nprimary_key = [\"{first}\", \"n\"]\n\
                 [[fields]]\nname = \"{first}\"\ntype = \"string\"\n\
                 [[fields]]\nname = \"n\"\ntype = \"int\"\n"
            ),
        )
        .unwrap();
        let path = dir.join(format!("{name}.csv"));
        let mut text = format!("{first},n\n");
        for i in 0..rows {
            text.push_str(&format!("K{:05},{i}\n", i % 2_000));
        }
        std::fs::write(&path, text).unwrap();
        let opts = Options {
            schema: Some(schema),
            ..Options::default()
        };
        let (staged, _) = ingest::stage(store, name, &path, &opts).unwrap();
        staged.commit(store).unwrap();
    }

    fn manifest(partition: &str) -> Manifest {
        Manifest::parse(
            Path::new("model.toml"),
            &format!(
                "name = \"m\"\nversion = \"1.0.0\"\ntitle = \"t\"\nunit = \"u\"\nsdk = \"^0.2\"\n\
                 [datasets]\na = {{}}\nb = {{}}\n{partition}"
            ),
        )
        .unwrap()
    }

    #[test]
    fn runs_split_at_block_boundaries_of_their_largest_dataset_or_say_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        dataset(&store, dir.path(), "a", "x", 20_000);
        dataset(&store, dir.path(), "b", "y", 3_000);
        let datasets: HashMap<String, Access> = ["a", "b"]
            .iter()
            .map(|n| {
                let access = Access::current(&store, n, None, false).unwrap().unwrap();
                (n.to_string(), access)
            })
            .collect();
        let declared = manifest("[partition]\nkey = \"x\"\nfields = { b = \"y\" }\n");
        let three = split_of(&declared, &datasets, 3).expect("split");
        assert_eq!(three.datasets, ["a", "b"]);
        assert_eq!(three.ranges.len(), 3);
        assert!(three.ranges[0].lo.is_none() && three.ranges[2].hi.is_none());
        assert_eq!(three.ranges[0].hi, three.ranges[1].lo);
        // The bounds are first fields of `a`'s blocks.
        let first_keys = &datasets["a"].reader.info.segments[0].first_keys;
        let bound = three.ranges[1].lo.as_deref().unwrap();
        assert!(first_keys.iter().any(|k| k.starts_with(bound)), "{bound}");
        // One part, or no [partition]: one instance.
        assert_eq!(split_of(&declared, &datasets, 1), None);
        assert_eq!(split_of(&manifest(""), &datasets, 3), None);
        // `b` alone is not cut when its first field is not named: read whole.
        let only_a = split_of(&manifest("[partition]\nkey = \"x\"\n"), &datasets, 2).unwrap();
        assert_eq!(only_a.datasets, ["a"]);
        // A key no dataset begins with, or a field a dataset does not
        // begin with, is refused by name.
        let err = split(&manifest("[partition]\nkey = \"z\"\n"), &datasets, Some(2)).unwrap_err();
        assert!(
            err.contains("key `z` begins the primary key of none"),
            "{err}"
        );
        let wrong = manifest("[partition]\nkey = \"x\"\nfields = { b = \"n\" }\n");
        let err = split(&wrong, &datasets, Some(2)).unwrap_err();
        assert!(err.contains("its primary key begins with `y`"), "{err}");
    }

    fn split_of(m: &Manifest, d: &HashMap<String, Access>, parts: usize) -> Option<Split> {
        split(m, d, Some(parts)).unwrap()
    }

    #[test]
    fn by_default_a_part_per_core_and_more_only_for_data_that_fills_them() {
        let (cores, most) = (cores(), (cores() * PARTS_PER_CORE).min(MAX_PARTS));
        assert_eq!(default_parts(0), cores.min(most));
        assert_eq!(
            default_parts(MIN_PART_RECORDS * cores as u64),
            cores.min(most)
        );
        let between = (cores as u64 + 1) * MIN_PART_RECORDS;
        assert_eq!(default_parts(between), (cores + 1).min(most));
        assert_eq!(default_parts(u64::MAX), most);
        assert!(most <= MAX_PARTS && most >= cores.min(MAX_PARTS));
    }
}
