//! Running one model over a store in the sandbox: the model alone, or a
//! whole `jiandu run` with its ledger entries and leads commit (natively:
//! [`crate::native`]); and comparing what runs found.

use anyhow::{bail, Result};
use jiandu::catalog::Installed;
use jiandu::emitted::Emitted;
use jiandu::native;
use jiandu::policy::Policy;
use jiandu::run::{self, Request};
use jiandu::runtime::{Finished, Loaded, Runtime, Session};
use jiandu::{leads, Store};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A run's leads as compared across engines: subject → amount.
pub type LeadSet = BTreeMap<String, Option<Decimal>>;

/// A lead's amount as written, read exactly.
pub fn amount(text: Option<&str>) -> Result<Option<Decimal>> {
    text.map(|a| {
        a.parse::<Decimal>()
            .map_err(|e| anyhow::anyhow!("amount `{a}`: {e}"))
    })
    .transpose()
}

/// The lead set of a sandboxed run's emitted leads.
pub fn emitted_set(leads: &Emitted) -> Result<LeadSet> {
    let mut set = LeadSet::new();
    let mut each = leads.iter();
    while let Some(l) = each.next_lead()? {
        set.insert(l.subject.to_string(), amount(l.amount)?);
    }
    Ok(set)
}

/// Fails, naming the first differences, unless `a` and `b` are the same.
pub fn check_agree(a_name: &str, a: &LeadSet, b_name: &str, b: &LeadSet) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let mut diffs = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => diffs.push(format!("{k}: {a_name} {v:?}, {b_name} none")),
            Some(w) if w != v => diffs.push(format!("{k}: {a_name} {v:?}, {b_name} {w:?}")),
            _ => {}
        }
    }
    for (k, w) in b {
        if !a.contains_key(k) {
            diffs.push(format!("{k}: {a_name} none, {b_name} {w:?}"));
        }
    }
    let shown: Vec<&str> = diffs.iter().take(5).map(String::as_str).collect();
    bail!(
        "{a_name} ({} leads) and {b_name} ({} leads) disagree on {} subjects: {}",
        a.len(),
        b.len(),
        diffs.len(),
        shown.join("; ")
    )
}

/// The model alone in the sandbox: a fresh instance with fuel and epoch
/// deadline, as `jiandu run` runs it, without the ledger and leads commit.
pub fn sandboxed(
    runtime: &Runtime,
    loaded: &Loaded,
    store: &Store,
    policy: &Policy,
    model: &Installed,
    params: &[(String, String)],
) -> Result<(Duration, Finished)> {
    let p = native::prepare(store, policy, &model.manifest, params)?;
    let session = Session::new(model.manifest.name.clone(), p.limits, p.params, p.datasets);
    let t = Instant::now();
    let finished = runtime.run(loaded, session);
    let elapsed = t.elapsed();
    if let Some(f) = &finished.failure {
        bail!(
            "{} failed in the sandbox: {}: {}",
            model.manifest.id(),
            f.kind,
            f.message
        );
    }
    Ok((elapsed, finished))
}

/// A whole `jiandu run` (policy, ledger start entry, sandboxed run, leads
/// and ledger commit) of a model loaded beforehand. Returns the run id.
pub fn full_run(
    runtime: &Runtime,
    loaded: &Loaded,
    store: &Store,
    policy: &Policy,
    model: &Installed,
    params: &[(String, String)],
) -> Result<(Duration, run::Report)> {
    let t = Instant::now();
    let report = run::execute_installed(
        store,
        runtime,
        policy,
        model,
        Some(loaded),
        &Request {
            model: model.manifest.name.clone(),
            params: params.to_vec(),
            operator: "jiandu-bench".into(),
            partitions: None,
        },
    )?;
    let elapsed = t.elapsed();
    if let Some(f) = &report.failure {
        bail!("{} failed: {}: {}", model.manifest.id(), f.kind, f.message);
    }
    Ok((elapsed, report))
}

/// The leads a full run committed.
pub fn committed_leads(store: &Store, model: &str, run_id: &str) -> Result<LeadSet> {
    let filter = leads::Filter {
        model: Some(model.to_string()),
        status: None,
    };
    leads::list(store, &filter)?
        .into_iter()
        .filter(|l| l.last_run == run_id)
        .map(|l| Ok((l.subject, amount(l.amount.as_deref())?)))
        .collect()
}
