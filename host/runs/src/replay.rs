//! `jiandu audit replay <run>`: run a recorded run again and say whether it
//! comes out the same.
//!
//! Everything a run's outcome depends on is on the record or kept by
//! digest: the model by its wasm sha256 (every version built or imported
//! is kept under `<store>/models/.versions/<sha256>/`, see
//! [`crate::catalog::versions_dir`]), each dataset version it read (old
//! versions stay readable) with its digest, whether it saw personal fields
//! in clear, what an incremental scan had read before, its parameters as
//! resolved, and its limits. Models have no clock, randomness or other
//! input, and fuel is counted exactly, so a replay of an unchanged model on
//! unchanged data emits the same leads, or fails the same way.
//!
//! A replay reads data about people through a model, so it is on the
//! record like a run: `replay-started` before the model runs (no entry, no
//! replay) and `replay-finished` after, with its outcome, its leads digest
//! and whether it reproduced the run. It keeps no leads.

use crate::catalog::{self, Installed};
use crate::dataset::{access::Access, VersionReader};
use crate::ledger::{self, Draft, Entry, Kind, Outcome, RunRecord};
use crate::runtime::{Failure, Runtime, Session};
use crate::{Error, Result, Store};
use serde::Serialize;
use std::collections::HashMap;

/// How a run (or its replay) ended, as compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ending {
    /// `succeeded`, `failed`, or `unfinished` for a run the host never
    /// finished.
    pub outcome: String,
    pub error_kind: Option<String>,
    pub leads: Option<u64>,
    pub leads_digest: Option<String>,
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    /// The run replayed, and the replay's own id.
    pub run_id: String,
    pub replay_id: String,
    pub model: String,
    pub wasm_sha256: String,
    /// `name@version` of each dataset version read.
    pub datasets: Vec<String>,
    pub recorded: Ending,
    pub replayed: Ending,
    /// Whether the replay ended as the run did (same leads digest and
    /// count, or the same kind of failure); `None` when the run's ending
    /// says nothing about the model (it never finished, or the host failed
    /// to keep its leads).
    pub reproduced: Option<bool>,
    /// The `replay-started` and `replay-finished` entries.
    pub entries: (u64, u64),
}

/// The recorded entries of run `run_id` in this store's ledger.
fn recorded(store: &Store, run_id: &str) -> Result<(Entry, Option<Entry>)> {
    let mut started = None;
    let mut finished = None;
    let needle = format!("\"{run_id}\"");
    for item in ledger::entries(store, 1) {
        let (seq, bytes) = item?;
        // Cheap filter before parsing the whole entry.
        if !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            continue;
        }
        let e: Entry = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Ledger(format!("entry {seq} is unreadable: {e}")))?;
        if e.run.run_id != run_id {
            continue;
        }
        match e.kind {
            Kind::RunStarted => started = Some(e),
            Kind::RunFinished => finished = Some(e),
            Kind::RunRefused => {
                return Err(Error::Ledger(format!(
                    "run {run_id} was refused (entry {seq}): nothing ran, nothing to replay"
                )))
            }
            _ => {}
        }
    }
    let started = started.ok_or_else(|| {
        Error::Ledger(format!(
            "no run {run_id} in this store's ledger; `jiandu audit log` lists the runs"
        ))
    })?;
    Ok((started, finished))
}

/// The model version the run used, by its wasm digest: kept under
/// `.versions`, or still the installed one.
fn model(store: &Store, run: &RunRecord) -> Result<Installed> {
    let m = &run.model;
    let id = format!("{}@{}", m.name, m.version);
    let kept = catalog::kept_dir(
        &store.models_dir(),
        (&m.name, &m.version),
        &m.wasm_sha256,
        m.plan.as_ref().map(|p| p.sha256.as_str()),
    );
    let installed = if kept.join("model.wasm").is_file() {
        catalog::load_dir(&kept)?
    } else {
        match catalog::load(&store.models_dir(), &m.name) {
            Ok(i)
                if i.wasm_sha256 == m.wasm_sha256
                    && i.plan_sha256.as_deref() == m.plan.as_ref().map(|p| p.sha256.as_str()) =>
            {
                i
            }
            _ => {
                return Err(Error::model(
                    &id,
                    format!(
                        "the version this run used (wasm sha256 {}) is not kept in this store (it was installed before versions were kept, or removed); install it again to replay",
                        m.wasm_sha256
                    ),
                ))
            }
        }
    };
    if installed.wasm_sha256 != m.wasm_sha256 {
        return Err(Error::file(
            installed.dir.join("model.wasm"),
            format!(
                "hashes to {}, not to the {} the run recorded: damaged or edited",
                installed.wasm_sha256, m.wasm_sha256
            ),
        ));
    }
    // A kept folder is named by the hashes, not checked by its name: the
    // plan in it is the rule that runs, so it must be the one recorded.
    let recorded = m.plan.as_ref().map(|p| p.sha256.as_str());
    if installed.plan_sha256.as_deref() != recorded {
        let file = installed
            .manifest
            .plan
            .clone()
            .or_else(|| m.plan.as_ref().map(|p| p.file.clone()))
            .unwrap_or_else(|| "model.toml".into());
        return Err(Error::file(
            installed.dir.join(file),
            format!(
                "the plan hashes to {}, not to the {} the run recorded: damaged or edited",
                installed
                    .plan_sha256
                    .as_deref()
                    .unwrap_or("nothing (no plan)"),
                recorded.unwrap_or("nothing (no plan)")
            ),
        ));
    }
    let found = (&installed.manifest.name, &installed.manifest.version);
    if found != (&m.name, &m.version) {
        return Err(Error::file(
            installed.dir.join("model.toml"),
            format!(
                "names {}@{}, not the {id} the run recorded: damaged or edited",
                found.0, found.1
            ),
        ));
    }
    Ok(installed)
}

/// The session of the run as recorded: its parameters, limits, data
/// versions and views, and what its incremental scans had read. Built as
/// [`crate::run`] builds a run's.
fn session(store: &Store, installed: &Installed, run: &RunRecord) -> Result<Session> {
    let manifest = &installed.manifest;
    let limits = run
        .limits
        .as_ref()
        .map(crate::run::limits_from_record)
        .ok_or_else(|| {
            Error::Ledger(format!(
                "run {} records no limits; it cannot be replayed as it ran",
                run.run_id
            ))
        })?;
    let mut datasets = HashMap::new();
    let mut cursors = HashMap::new();
    for d in &run.datasets {
        let reader = VersionReader::version(store, &d.name, d.version)?;
        if reader.info.digest != d.digest {
            return Err(Error::dataset(
                &d.name,
                format!(
                    "version {} now has digest {}, but the run read {}: the data changed since (`jiandu audit verify` says where)",
                    d.version, reader.info.digest, d.digest
                ),
            ));
        }
        let decl = manifest.datasets.get(&d.name).ok_or_else(|| {
            Error::model(
                &manifest.id(),
                format!("does not declare `{}`, which the run read", d.name),
            )
        })?;
        let access = Access::of(store, reader, decl.fields.as_deref(), d.clear_personal)?
            .map_err(|e| Error::model(&manifest.id(), e))?;
        if !d.seen.is_empty() {
            cursors.insert(d.name.clone(), d.seen.clone());
        }
        datasets.insert(d.name.clone(), access);
    }
    let mut session = Session::new(manifest.name.clone(), limits, run.params.clone(), datasets);
    session
        .leads
        .spill_to(store.root().join("tmp"), crate::run::spill_budget()?);
    session.cursors = cursors;
    session.plan = crate::plans::source(store, installed)?.map(Into::into);
    Ok(session)
}

fn ending_of(entry: Option<&Entry>) -> Ending {
    match entry {
        None => Ending {
            outcome: "unfinished".into(),
            error_kind: None,
            leads: None,
            leads_digest: None,
        },
        Some(e) => Ending {
            outcome: e.run.outcome.as_str().into(),
            error_kind: e.run.error.as_ref().map(|x| x.kind.clone()),
            leads: e.run.leads_count,
            leads_digest: e.run.leads_digest.clone(),
        },
    }
}

/// Whether `replayed` ends as `recorded` did, when that says anything
/// about the model.
fn compare(recorded: &Ending, replayed: &Ending) -> Option<bool> {
    match (recorded.outcome.as_str(), recorded.error_kind.as_deref()) {
        ("unfinished", _) | (_, Some("host-error")) => None,
        ("succeeded", _) => Some(
            replayed.outcome == "succeeded"
                && replayed.leads_digest == recorded.leads_digest
                && replayed.leads == recorded.leads,
        ),
        _ => {
            Some(replayed.outcome == recorded.outcome && replayed.error_kind == recorded.error_kind)
        }
    }
}

/// Replays run `run_id` of this store: the same model version over the
/// same dataset versions with the same parameters and limits, on the
/// record, keeping no leads.
pub fn replay(
    store: &Store,
    runtime: &Runtime,
    unit: String,
    operator: String,
    run_id: &str,
) -> Result<Replay> {
    let (started, finished) = recorded(store, run_id)?;
    let original = &started.run;
    let installed = model(store, original)?;
    let session = session(store, &installed, original)?;
    let replay_id = format!("replay-{}", crate::run::new_run_id());
    let mut record = RunRecord {
        run_id: replay_id.clone(),
        model: original.model.clone(),
        datasets: original.datasets.clone(),
        params: original.params.clone(),
        limits: original.limits,
        started_at: crate::time::now_text(),
        outcome: Outcome::Started,
        replay_of: Some(run_id.to_string()),
        ..RunRecord::default()
    };
    let draft =
        |kind, record: &RunRecord| Draft::run(unit.clone(), operator.clone(), kind, record.clone());
    // Fail closed, as a run does.
    let first = ledger::append(store, &draft(Kind::ReplayStarted, &record))?;

    let limits = session.limits;
    let ran = crate::run::load_and_run(runtime, None, &installed, None, session, limits);
    record.ended_at = Some(crate::time::now_text());
    record.fuel_used = Some(ran.fuel_used);
    record.peak_memory = Some(ran.peak_memory);
    record.records_read = Some(ran.session.records_read);
    let mut failure = ran.failure.clone();
    if failure.is_none() {
        match digest_leads(&ran.session.leads) {
            Ok((count, digest)) => {
                record.outcome = Outcome::Succeeded;
                record.leads_count = Some(count);
                record.leads_digest = Some(digest);
            }
            Err(e) => {
                failure = Some(Failure {
                    kind: "host-error".into(),
                    message: format!("the host could not read the replay's leads back: {e}"),
                    limit: None,
                    used: None,
                })
            }
        }
    }
    if failure.is_some() {
        record.outcome = Outcome::Failed;
        record.leads_count = Some(0);
    }
    let recorded = ending_of(finished.as_ref());
    let replayed = Ending {
        outcome: record.outcome.as_str().into(),
        error_kind: failure.as_ref().map(|f| f.kind.clone()),
        leads: record.leads_count,
        leads_digest: record.leads_digest.clone(),
    };
    let reproduced = compare(&recorded, &replayed);
    record.reproduced = reproduced;
    let mut last = draft(Kind::ReplayFinished, &record);
    if let Some(f) = &failure {
        last = last.failed(crate::run::stopped(f));
    }
    let last = ledger::append(store, &last)?;
    Ok(Replay {
        run_id: run_id.to_string(),
        replay_id,
        model: format!("{}@{}", original.model.name, original.model.version),
        wasm_sha256: original.model.wasm_sha256.clone(),
        datasets: original
            .datasets
            .iter()
            .map(|d| format!("{}@{}", d.name, d.version))
            .collect(),
        recorded,
        replayed,
        reproduced,
        entries: (first.seq, last.seq),
    })
}

/// How many leads a replay emitted, and their digest as the ledger
/// records it.
fn digest_leads(leads: &crate::emitted::Emitted) -> Result<(u64, String)> {
    let mut digest = crate::leads::LeadsDigest::default();
    let mut count = 0u64;
    let mut each = leads.iter();
    while let Some(lead) = each.next_bytes()? {
        digest.add_bytes(&lead);
        count += 1;
    }
    Ok((count, digest.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(outcome: &str, kind: Option<&str>, leads: u64, digest: &str) -> Ending {
        Ending {
            outcome: outcome.into(),
            error_kind: kind.map(Into::into),
            leads: Some(leads),
            leads_digest: (!digest.is_empty()).then(|| digest.into()),
        }
    }

    #[test]
    fn a_replay_reproduces_the_same_leads_or_the_same_kind_of_failure() {
        let ok = ending("succeeded", None, 3, "d1");
        assert_eq!(compare(&ok, &ok), Some(true));
        assert_eq!(
            compare(&ok, &ending("succeeded", None, 3, "d2")),
            Some(false)
        );
        assert_eq!(
            compare(&ok, &ending("succeeded", None, 4, "d1")),
            Some(false)
        );
        let fuel = ending("failed", Some("fuel-exhausted"), 0, "");
        assert_eq!(compare(&ok, &fuel), Some(false));
        assert_eq!(compare(&fuel, &fuel), Some(true));
        assert_eq!(
            compare(&fuel, &ending("failed", Some("panic"), 0, "")),
            Some(false)
        );
        // Nothing to compare with: the run never finished, or the host
        // (not the model) failed it.
        let unfinished = Ending {
            outcome: "unfinished".into(),
            error_kind: None,
            leads: None,
            leads_digest: None,
        };
        assert_eq!(compare(&unfinished, &ok), None);
        assert_eq!(
            compare(&ending("failed", Some("host-error"), 0, ""), &ok),
            None
        );
    }
}
