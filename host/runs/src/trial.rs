//! `jiandu model test`: a model crate built and run on sample files in a
//! throwaway store, its leads shown and compared with the leads expected.
//! Nothing touches a real store: the trial's store lives in the system's
//! temporary folder and is removed when the trial ends, whatever happens.

use crate::catalog::BuildObserver;
use crate::dataset::resolve::Reveal;
use crate::dataset::{ingest::Options, Schema};
use crate::leads::{self, Evidence, Filter, Lead};
use crate::policy::Policy;
use crate::run::{Report, Request};
use crate::runtime::Runtime;
use crate::{Error, Result, Store};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One sample file: the dataset it is loaded as, and the schema it is
/// validated against.
pub struct Sample {
    pub dataset: String,
    pub file: PathBuf,
    pub schema: Schema,
}

/// What a trial did: the model's run and its leads as people see them.
pub struct Trial {
    pub model: String,
    pub version: String,
    pub records: Vec<(String, u64)>,
    pub run: Report,
    pub leads: Vec<TrialLead>,
}

/// A lead as a trial shows it, and as an expected-leads file lists it
/// (`--format json` writes one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialLead {
    pub subject: String,
    pub title: String,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub evidence: Vec<(String, String)>,
}

impl From<&Lead> for TrialLead {
    fn from(l: &Lead) -> TrialLead {
        TrialLead {
            subject: l.subject.clone(),
            title: l.title.clone(),
            amount: l.amount.clone(),
            evidence: l
                .evidence
                .iter()
                .map(|Evidence { name, value, .. }| (name.clone(), value.clone()))
                .collect(),
        }
    }
}

/// Builds the model in `crate_dir`, loads `samples` into a throwaway
/// store, runs the model there under `policy` with `params`, and returns
/// its leads (personal values shown as `reveal` says).
pub fn run(
    crate_dir: &Path,
    samples: &[Sample],
    params: Vec<(String, String)>,
    policy: &Policy,
    reveal: Reveal,
    observer: &mut dyn BuildObserver,
) -> Result<Trial> {
    let dir = Throwaway::new()?;
    let store = Store::open(&dir.0)?;
    let operator = "jiandu model test".to_string();
    let mut records = Vec::new();
    for s in samples {
        observer.step(&format!("loading {} as `{}`", s.file.display(), s.dataset));
        let ingested = crate::ingest::ingest(
            &store,
            &s.dataset,
            &s.file,
            &Options {
                operator: operator.clone(),
                schema: Some(s.schema.clone()),
                ..Options::default()
            },
            operator.clone(),
        )?;
        records.push((s.dataset.clone(), ingested.version.records));
    }
    let runtime = Runtime::new(policy.defaults.stack_kib)?;
    let installed = crate::models::build_and_install(&store, &runtime, crate_dir, observer)?;
    let model = installed.manifest.name.clone();
    observer.step(&format!("running {}", installed.manifest.id()));
    let run = crate::run::execute(
        &store,
        &runtime,
        policy,
        &Request {
            model: model.clone(),
            params,
            operator,
            partitions: None,
        },
    )?;
    let found = leads::list(
        &store,
        &Filter {
            model: Some(model.clone()),
            status: None,
        },
    )?;
    let (shown, _) = leads::for_people(&store, &found, reveal)?;
    Ok(Trial {
        model,
        version: installed.manifest.version.clone(),
        records,
        run,
        leads: shown.iter().map(TrialLead::from).collect(),
    })
}

/// How a trial's leads differ from the expected ones, by subject.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Differences {
    /// Expected and not found.
    pub missing: Vec<TrialLead>,
    /// Found and not expected.
    pub unexpected: Vec<TrialLead>,
    /// Found with other content: (expected, found).
    pub changed: Vec<(TrialLead, TrialLead)>,
}

impl Differences {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.changed.is_empty()
    }
}

/// Compares found leads with expected ones, subject by subject. Subjects
/// shown masked (`650102***********X`) can be alike for two people, so a
/// subject may stand for several leads on either side: leads equal in
/// everything are paired first, then the rest of a subject in order.
pub fn compare(expected: &[TrialLead], found: &[TrialLead]) -> Differences {
    let mut d = Differences::default();
    let mut by_subject: std::collections::HashMap<&str, Vec<&TrialLead>> =
        std::collections::HashMap::new();
    for f in found {
        by_subject.entry(f.subject.as_str()).or_default().push(f);
    }
    let mut unequal = Vec::new();
    for e in expected {
        let same = by_subject.get_mut(e.subject.as_str());
        match same.and_then(|fs| fs.iter().position(|f| *f == e).map(|i| fs.remove(i))) {
            Some(_) => {}
            None => unequal.push(e),
        }
    }
    for e in unequal {
        match by_subject
            .get_mut(e.subject.as_str())
            .filter(|fs| !fs.is_empty())
        {
            Some(fs) => d.changed.push((e.clone(), fs.remove(0).clone())),
            None => d.missing.push(e.clone()),
        }
    }
    let left: std::collections::HashSet<*const TrialLead> = by_subject
        .into_values()
        .flatten()
        .map(|f| f as *const TrialLead)
        .collect();
    d.unexpected = found
        .iter()
        .filter(|f| left.contains(&(*f as *const TrialLead)))
        .cloned()
        .collect();
    d
}

/// What differs between an expected lead and the one found for its
/// subject, a line each: the title, the amount, each evidence field.
pub fn what_changed(expected: &TrialLead, found: &TrialLead) -> Vec<String> {
    let mut lines = Vec::new();
    if expected.title != found.title {
        lines.push(format!(
            "title: expected `{}`, found `{}`",
            expected.title, found.title
        ));
    }
    let amount = |a: &Option<String>| a.clone().unwrap_or_else(|| "none".into());
    if expected.amount != found.amount {
        lines.push(format!(
            "amount: expected {}, found {}",
            amount(&expected.amount),
            amount(&found.amount)
        ));
    }
    let value = |ev: &[(String, String)], name: &str| {
        ev.iter()
            .find(|(n, _)| n == name)
            .map_or("none".to_string(), |(_, v)| format!("`{v}`"))
    };
    let mut names: Vec<&str> = Vec::new();
    for (n, _) in expected.evidence.iter().chain(&found.evidence) {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    for name in names {
        let (e, f) = (
            value(&expected.evidence, name),
            value(&found.evidence, name),
        );
        if e != f {
            lines.push(format!("evidence `{name}`: expected {e}, found {f}"));
        }
    }
    if lines.is_empty() {
        // Equal values in another order.
        lines.push("evidence in another order".into());
    }
    lines
}

/// Reads an expected-leads file: the JSON `jiandu model test --format
/// json` writes.
pub fn read_expected(path: &Path) -> Result<Vec<TrialLead>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::file(
            path,
            format!("is not a list of expected leads (as `jiandu model test --format json` writes): {e}"),
        )
    })
}

/// A folder under the system's temporary folder, removed when dropped.
struct Throwaway(PathBuf);

impl Throwaway {
    fn new() -> Result<Throwaway> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("jiandu-model-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, e))?;
        Ok(Throwaway(dir))
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(subject: &str, amount: &str) -> TrialLead {
        TrialLead {
            subject: subject.into(),
            title: "t".into(),
            amount: Some(amount.into()),
            evidence: vec![("k".into(), "v".into())],
        }
    }

    #[test]
    fn differences_are_found_subject_by_subject() {
        let expected = [lead("a", "1.00"), lead("b", "2.00"), lead("c", "3.00")];
        let found = [lead("a", "1.00"), lead("b", "2.50"), lead("d", "4.00")];
        let d = compare(&expected, &found);
        assert_eq!(d.missing, [lead("c", "3.00")]);
        assert_eq!(d.unexpected, [lead("d", "4.00")]);
        assert_eq!(d.changed, [(lead("b", "2.00"), lead("b", "2.50"))]);
        assert!(compare(&found, &found).is_empty());
    }

    #[test]
    fn leads_whose_masked_subjects_are_alike_are_paired_by_content() {
        // Two people whose ID numbers mask alike, in either order.
        let (p, q) = (
            lead("650102***********X", "1.00"),
            lead("650102***********X", "2.00"),
        );
        let d = compare(&[p.clone(), q.clone()], &[q.clone(), p.clone()]);
        assert!(d.is_empty(), "{d:?}");
        // One of them changed: paired with the one left, not the first.
        let r = lead("650102***********X", "2.50");
        let d = compare(&[p.clone(), q.clone()], &[r.clone(), p.clone()]);
        assert_eq!(d.changed, [(q.clone(), r)]);
        assert!(d.missing.is_empty() && d.unexpected.is_empty(), "{d:?}");
        // One more found than expected under the subject.
        let d = compare(std::slice::from_ref(&p), &[q.clone(), p.clone()]);
        assert_eq!((d.unexpected, d.missing), (vec![q], vec![]));
    }

    #[test]
    fn a_change_is_told_field_by_field() {
        let mut found = lead("a", "1.00");
        found.title = "u".into();
        found.evidence = vec![("k".into(), "w".into()), ("n".into(), "1".into())];
        assert_eq!(
            what_changed(&lead("a", "1.00"), &found),
            [
                "title: expected `t`, found `u`",
                "evidence `k`: expected `v`, found `w`",
                "evidence `n`: expected none, found `1`"
            ]
        );
    }

    #[test]
    fn the_throwaway_store_is_removed_when_the_trial_ends() {
        let t = Throwaway::new().unwrap();
        let dir = t.0.clone();
        Store::open(&dir).unwrap();
        assert!(dir.is_dir());
        drop(t);
        assert!(!dir.exists());
    }
}
