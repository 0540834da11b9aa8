//! Cold start: compiling a model, and loading it again from the host's
//! compiled-module cache (`jiandu::cache`, keyed by the wasm digest and
//! verified against the HMAC the store recorded when it wrote it).

use crate::report::{best_of, Figure};
use anyhow::{ensure, Result};
use jiandu::cache::{ModuleCache, Source};
use jiandu::catalog::Installed;
use jiandu::runtime::Runtime;
use jiandu::Store;
use std::time::{Duration, Instant};

/// Cold-start figures of one model.
#[derive(Debug, Clone)]
pub struct ColdStart {
    pub model: String,
    pub wasm_bytes: usize,
    /// `Runtime::compile`: wasm to native code.
    pub compile: Duration,
    /// `Runtime::load`: compile plus the load-time checks.
    pub load: Duration,
    /// The first `ModuleCache::load`: compile, checks, cache file written.
    pub first_cached_load: Duration,
    /// Later `ModuleCache::load`s: cache file read, verified,
    /// deserialized, checked.
    pub load_from_cache: Duration,
}

/// Measures `model`, best of `reps`, with the module cache of `store`.
pub fn measure(
    runtime: &Runtime,
    store: &Store,
    model: &Installed,
    reps: usize,
) -> Result<ColdStart> {
    let id = model.manifest.id();
    let failed = |e: jiandu::runtime::LoadError| anyhow::anyhow!("{id}: {e}");
    let compile = best_of(reps, || {
        let t = Instant::now();
        runtime.compile(&model.wasm).map_err(failed)?;
        Ok(t.elapsed())
    })?;
    let load = best_of(reps, || {
        let t = Instant::now();
        runtime.load(model).map_err(failed)?;
        Ok(t.elapsed())
    })?;
    let cache = ModuleCache::open(store, runtime)?;
    let t = Instant::now();
    let (_, source) = cache.load(runtime, model).map_err(failed)?;
    let first_cached_load = t.elapsed();
    ensure!(
        source == Source::Compiled,
        "{id} was already in a fresh cache"
    );
    let load_from_cache = best_of(reps, || {
        let t = Instant::now();
        let (_, source) = cache.load(runtime, model).map_err(failed)?;
        let took = t.elapsed();
        ensure!(
            source == Source::Cache,
            "{id} was compiled again, not loaded from the cache"
        );
        Ok(took)
    })?;
    Ok(ColdStart {
        model: id,
        wasm_bytes: model.wasm.len(),
        compile,
        load,
        first_cached_load,
        load_from_cache,
    })
}

impl ColdStart {
    pub fn figures(&self) -> Vec<Figure> {
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        vec![Figure {
            section: "Cold start",
            what: format!(
                "{} ({} KiB wasm): load from the module cache vs compile",
                self.model,
                self.wasm_bytes / 1024
            ),
            jiandu: format!(
                "from the cache {} (first load, compiling and writing the cache: {}; load without a cache: {})",
                ms(self.load_from_cache),
                ms(self.first_cached_load),
                ms(self.load)
            ),
            baseline: format!("compile {}", ms(self.compile)),
            ratio: Some(self.compile.as_secs_f64() / self.load_from_cache.as_secs_f64().max(1e-9)),
            ratio_means: "faster from the cache",
            target: "report".into(),
            met: None,
        }]
    }
}
