//! Whether a plan gives the same leads when the host splits its run on
//! model.toml's `[partition]` key as when one instance runs it.
//!
//! A partitioned run gives each part one range of the key: the datasets
//! whose primary key begins with the field holding the key are cut into
//! those ranges, the others are read whole by every part, and the parts'
//! leads are merged. A step that brings together rows of different keys
//! (a group, rank or window over something else, a join of two split
//! inputs on another field) would see only its part's rows and give other
//! answers than one instance; rows that come from no split dataset would
//! be emitted by every part. Such a plan is refused at build, naming the
//! step, rather than run and give other leads than it would whole.
//!
//! The analysis follows, for each step, whether its rows come from a split
//! dataset and which of its columns hold the key (read from the field
//! that holds it, then kept through filters, derives, selects, sorts,
//! joins on it and groups by it).

use crate::catalog::Partition;
use crate::check::{CKind, CStep};
use crate::error::Located;

/// What a step's rows are, for a partitioned run.
#[derive(Clone)]
struct Rows {
    /// Whether they come from a split dataset (each part has some).
    split: bool,
    /// Per column: whether it holds the partition key.
    key: Vec<bool>,
}

impl Rows {
    fn any_key(&self, cols: &[usize]) -> bool {
        cols.iter()
            .any(|&c| self.key.get(c).copied().unwrap_or(false))
    }
}

/// Refuses the first step of `steps` (a checked plan, in order) whose
/// answer would depend on how the run is split on `partition`.
pub(crate) fn check_split(steps: &[CStep], partition: &Partition) -> Result<(), Located> {
    let mut rows: Vec<Rows> = Vec::with_capacity(steps.len());
    for step in steps {
        let width = step.columns.len();
        let inherit = |i: usize| {
            let mut r: Rows = rows[i].clone();
            r.key.resize(width, false);
            r
        };
        let refuse = |why: String| {
            Err(Located::new(
                step.pos,
                format!(
                    "step `{}`: {why}; model.toml declares [partition] on `{}`, and a part sees only its range of it in {} (the other datasets whole): either keep the key in this step, or do not declare [partition]",
                    step.name,
                    partition.key,
                    split_datasets(partition)
                ),
            ))
        };
        let r = match &step.kind {
            CKind::Read { dataset } => {
                let field = partition.split.get(dataset);
                Rows {
                    split: field.is_some(),
                    key: step
                        .columns
                        .iter()
                        .map(|c| Some(&c.name) == field)
                        .collect(),
                }
            }
            CKind::Filter { input, .. }
            | CKind::Derive { input, .. }
            | CKind::Sort { input, .. } => inherit(*input),
            CKind::Select { input, keep } => Rows {
                split: rows[*input].split,
                key: keep.iter().map(|&c| rows[*input].key[c]).collect(),
            },
            CKind::Join {
                input,
                with,
                left_keys,
                right_keys,
                right_keep,
                ..
            } => {
                let (l, r) = (&rows[*input], &rows[*with]);
                let on_key = left_keys
                    .iter()
                    .zip(right_keys)
                    .any(|(&a, &b)| l.key[a] && r.key[b]);
                if r.split && !(l.split && on_key) {
                    return refuse(format!(
                        "joins `{}`, whose rows a part has only for its range, {}",
                        steps[*with].name,
                        if l.split {
                            "on another field than the key".to_string()
                        } else {
                            format!("to `{}`, which every part reads whole", steps[*input].name)
                        }
                    ));
                }
                let mut key = l.key.clone();
                // A left key paired with the right's key holds it too.
                for (&a, &b) in left_keys.iter().zip(right_keys) {
                    key[a] |= r.key[b];
                }
                key.extend(right_keep.iter().map(|&c| r.key[c]));
                Rows {
                    split: l.split || r.split,
                    key,
                }
            }
            CKind::Lookup { input, dataset, .. } => {
                if partition.split.contains_key(dataset) {
                    return refuse(format!(
                        "looks up records of `{dataset}`, of which a part holds only its range; read it and `join` on the key instead"
                    ));
                }
                inherit(*input)
            }
            CKind::Group { input, by, .. } => {
                let i = &rows[*input];
                if i.split && !i.any_key(by) {
                    return refuse("groups rows of different keys together".into());
                }
                let mut key: Vec<bool> = by.iter().map(|&c| i.key[c]).collect();
                key.resize(width, false);
                Rows {
                    split: i.split,
                    key,
                }
            }
            CKind::Rank { input, by, .. } => {
                if rows[*input].split && !rows[*input].any_key(by) {
                    return refuse("ranks rows of different keys against each other".into());
                }
                inherit(*input)
            }
            CKind::Window { input, by, .. } => {
                if rows[*input].split && !rows[*input].any_key(by) {
                    return refuse("counts rows of different keys in one window".into());
                }
                inherit(*input)
            }
            CKind::Emit { input, .. } => {
                if !rows[*input].split {
                    return refuse(
                        "emits rows that come from no split dataset, which every part would emit"
                            .into(),
                    );
                }
                inherit(*input)
            }
            CKind::Union { inputs, maps } => {
                let split: Vec<bool> = inputs.iter().map(|&i| rows[i].split).collect();
                if split.iter().any(|&s| s) && !split.iter().all(|&s| s) {
                    return refuse(
                        "puts rows of a split dataset with rows every part reads whole".into(),
                    );
                }
                Rows {
                    split: split.iter().any(|&s| s),
                    key: (0..width)
                        .map(|c| inputs.iter().zip(maps).all(|(&i, map)| rows[i].key[map[c]]))
                        .collect(),
                }
            }
        };
        rows.push(r);
    }
    Ok(())
}

/// The split datasets, for a message.
fn split_datasets(partition: &Partition) -> String {
    if partition.split.is_empty() {
        return "none of the datasets".into();
    }
    partition
        .split
        .iter()
        .map(|(ds, field)| format!("`{ds}` (by `{field}`)"))
        .collect::<Vec<_>>()
        .join(", ")
}
