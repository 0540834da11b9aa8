//! Native runs: the same model code, compiled for the host instead of for
//! the sandbox, reading the same dataset versions through the same views
//! (declared fields only, personal fields as pseudonyms unless granted).
//!
//! The backend itself is [`jiandu_native`] (no wasmtime in it, so that a
//! native runner can be built with the models' profile); this module
//! resolves what a run of a model may read, as `jiandu run` resolves it.
//! A native run is a baseline for benchmarks and a harness for tests, not a
//! way to run models in production: no fuel, no memory cap, no wall-time
//! limit, no ledger. `jiandu run` always uses [`crate::runtime`].
//!
//! ```no_run
//! # fn demo(store: &jiandu_store::Store, manifest: &jiandu_sandbox::catalog::Manifest) -> jiandu_store::Result<()> {
//! # struct MyModel;
//! # impl jiandu_sdk::Model for MyModel {
//! #     fn run(_: &mut jiandu_sdk::Context) -> jiandu_sdk::Result<()> { Ok(()) }
//! # }
//! use jiandu_runs::native;
//! use jiandu_runs::policy::Policy;
//!
//! let backend = native::backend_for(store, &Policy::default(), manifest, &[])?;
//! let out = native::run::<MyModel>(backend).map_err(jiandu_store::Error::Other)?;
//! println!("{} leads from {} records", out.leads.len(), out.records_read);
//! # Ok(())
//! # }
//! ```

use crate::catalog::Manifest;
use crate::dataset::access::Access;
use crate::policy::{Limits, Policy};
use crate::{Error, Result, Store};
pub use jiandu_native::{run, NativeBackend, NativeOutput};
use std::collections::{BTreeMap, HashMap};

/// The backend a sandboxed run of `manifest` would get (see [`prepare`]).
pub fn backend_for(
    store: &Store,
    policy: &Policy,
    manifest: &Manifest,
    params: &[(String, String)],
) -> Result<NativeBackend> {
    let p = prepare(store, policy, manifest, params)?;
    Ok(NativeBackend::new(p.params, p.datasets))
}

/// What a run of a model reads, resolved the way `jiandu run` resolves it.
pub struct Prepared {
    pub params: BTreeMap<String, String>,
    /// The current version of each declared dataset, through the model's
    /// view of it.
    pub datasets: HashMap<String, Access>,
    pub limits: Limits,
}

/// What a run of a model may read and with which parameters, decided the
/// way `jiandu run` decides it, before any dataset is opened: what a
/// native runner in a process of its own is told.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub params: BTreeMap<String, String>,
    /// Each declared dataset and its declared fields (`None`: every field).
    pub reads: Vec<(String, Option<Vec<String>>)>,
    /// Whether personal fields are read in clear (else as pseudonyms).
    pub clear_personal: bool,
    pub limits: Limits,
}

/// Resolves a run of `manifest`: parameters checked against their
/// declarations (defaults applied), grants, masking and limits decided by
/// `policy`.
pub fn resolve(
    policy: &Policy,
    manifest: &Manifest,
    params: &[(String, String)],
) -> Result<Resolved> {
    let refused = |message: String| Error::RunRefused {
        model: manifest.id(),
        message,
    };
    let params = manifest.resolve_params(params).map_err(refused)?;
    // A native run is of a crate built here: no publisher.
    let decision = policy.decide(manifest, None).map_err(refused)?;
    let reads = manifest
        .datasets
        .iter()
        .map(|(name, decl)| (name.clone(), decl.fields.clone()))
        .collect();
    Ok(Resolved {
        params,
        reads,
        clear_personal: decision.clear_personal,
        limits: decision.limits,
    })
}

/// [`resolve`]s a run of `manifest` and opens the current version of each
/// declared dataset through the model's view of it. The same inputs serve
/// a native run ([`backend_for`]) and a sandboxed one
/// ([`crate::runtime::Session::new`]), so the two can be compared.
pub fn prepare(
    store: &Store,
    policy: &Policy,
    manifest: &Manifest,
    params: &[(String, String)],
) -> Result<Prepared> {
    let resolved = resolve(policy, manifest, params)?;
    let mut datasets = HashMap::new();
    for (name, fields) in &resolved.reads {
        let access = Access::current(store, name, fields.as_deref(), resolved.clear_personal)?
            .map_err(|e| Error::RunRefused {
                model: manifest.id(),
                message: format!("{} {e}", manifest.id()),
            })?;
        datasets.insert(name.clone(), access);
    }
    Ok(Prepared {
        params: resolved.params,
        datasets,
        limits: resolved.limits,
    })
}
