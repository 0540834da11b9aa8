//! `jiandu serve`: how long a changed model takes to go live, and how long
//! a restart with 50 models takes when their code is in the module cache.
//!
//! The 50 models are the 残保金 component with a distinguishing custom
//! section appended (valid components with 50 different digests, so 50
//! cache entries), loaded through the same `ModuleCache::load` the server
//! calls for each model at start; the baseline is the same 50 loads with an
//! empty cache (every one compiled).

use crate::report::{best_of, Figure};
use anyhow::{ensure, Context, Result};
use jiandu::cache::{ModuleCache, Source};
use jiandu::catalog::{self, Installed};
use jiandu::runtime::Runtime;
use jiandu::serve::{watch, Server};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Models in the restart figure.
pub const MODELS: usize = 50;

/// The debounce the reload figure runs with (the server's default is 300 ms).
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// What was measured.
#[derive(Debug, Clone)]
pub struct ServeFigures {
    pub model: String,
    /// 50 loads, every one compiling.
    pub start_compiling: Duration,
    /// 50 loads from the module cache (best of reps).
    pub start_cached: Duration,
    /// File replaced → new version served, when the version must compile.
    pub reload_compiling: Duration,
    /// The same when the version's code is already in the cache.
    pub reload_cached: Duration,
}

/// `wasm` with a custom section that makes its digest unique to `n`.
pub fn variant(wasm: &[u8], n: usize) -> Vec<u8> {
    let name = b"jiandu-bench-variant";
    let payload = n.to_le_bytes();
    let mut body = Vec::new();
    body.push(name.len() as u8);
    body.extend_from_slice(name);
    body.extend_from_slice(&payload);
    let mut out = wasm.to_vec();
    out.push(0); // custom section
    out.push(body.len() as u8); // LEB128 of a size below 128
    out.extend_from_slice(&body);
    out
}

fn with_wasm(model: &Installed, wasm: Vec<u8>) -> Installed {
    Installed {
        wasm_sha256: catalog::sha256_hex(&wasm),
        wasm,
        ..model.clone()
    }
}

/// Measures restart and reload for `model` in `dir`.
pub fn measure(dir: &Path, model: &Installed, reps: usize) -> Result<ServeFigures> {
    std::fs::create_dir_all(dir)?;
    let variants: Vec<Installed> = (0..MODELS)
        .map(|n| with_wasm(model, variant(&model.wasm, n)))
        .collect();

    // Restart: the server's start loads every model through the cache.
    let cache_store = crate::data::open_store(&dir.join("restart"))?;
    let runtime = Runtime::new(256)?;
    let cache = ModuleCache::open(&cache_store, &runtime)?;
    let t = Instant::now();
    for m in &variants {
        let (_, source) = cache
            .load(&runtime, m)
            .map_err(|e| anyhow::anyhow!("{}: {e}", m.manifest.id()))?;
        ensure!(source == Source::Compiled, "a variant was already cached");
    }
    let start_compiling = t.elapsed();
    let start_cached = best_of(reps, || {
        // A restart: a new engine and cache handle over the same store.
        let runtime = Runtime::new(256)?;
        let cache = ModuleCache::open(&cache_store, &runtime)?;
        let t = Instant::now();
        for m in &variants {
            let (_, source) = cache
                .load(&runtime, m)
                .map_err(|e| anyhow::anyhow!("{}: {e}", m.manifest.id()))?;
            ensure!(source == Source::Cache, "a variant was compiled again");
        }
        Ok(t.elapsed())
    })?;
    drop(cache_store);

    // Reload: a real server watching its models folder.
    let store_dir = dir.join("reload");
    let store = crate::data::open_store(&store_dir)?;
    let name = &model.manifest.name;
    let model_dir = store.models_dir().join(name);
    std::fs::create_dir_all(&model_dir)?;
    std::fs::copy(model.dir.join("model.toml"), model_dir.join("model.toml"))?;
    std::fs::write(model_dir.join("model.wasm"), &model.wasm)?;
    let server = Server::start(store, None, "bench".into())?;
    let watcher = watch::spawn(server.clone(), DEBOUNCE)?;
    let swap = |server: &Arc<Server>, m: &Installed| -> Result<Duration> {
        let tmp = model_dir.join(".model.wasm.tmp");
        let t = Instant::now();
        std::fs::write(&tmp, &m.wasm)?;
        std::fs::rename(&tmp, model_dir.join("model.wasm"))?;
        let deadline = t + Duration::from_secs(120);
        loop {
            if server
                .live(name)
                .is_some_and(|l| l.installed.wasm_sha256 == m.wasm_sha256)
            {
                return Ok(t.elapsed());
            }
            ensure!(
                Instant::now() < deadline,
                "{} never went live",
                &m.wasm_sha256[..12]
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let mut compiling = Duration::MAX;
    let mut cached = Duration::MAX;
    for rep in 0..reps.max(1) {
        // A version never seen: compiled on reload.
        compiling = compiling.min(swap(&server, &variants[rep % MODELS])?);
        // Back to a version served before: its code is in the cache.
        cached = cached.min(swap(&server, &with_wasm(model, model.wasm.clone()))?);
    }
    server.stop().context("stopping the server")?;
    let _ = watcher.join();
    Ok(ServeFigures {
        model: model.manifest.id(),
        start_compiling,
        start_cached,
        reload_compiling: compiling,
        reload_cached: cached,
    })
}

impl ServeFigures {
    pub fn figures(&self) -> Vec<Figure> {
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
        vec![
            Figure {
                section: "Serve",
                what: format!(
                    "restart with {MODELS} models ({} variants): load every model",
                    self.model
                ),
                jiandu: format!("from the module cache {}", ms(self.start_cached)),
                baseline: format!("empty cache (compile each) {}", ms(self.start_compiling)),
                ratio: Some(
                    self.start_compiling.as_secs_f64() / self.start_cached.as_secs_f64().max(1e-9),
                ),
                ratio_means: "faster with the cache",
                target: "report".into(),
                met: None,
            },
            Figure {
                section: "Serve",
                what: format!(
                    "file change to new version live ({}, debounce {} ms included)",
                    self.model,
                    DEBOUNCE.as_millis()
                ),
                jiandu: format!("code in the cache {}", ms(self.reload_cached)),
                baseline: format!("new code, compiled {}", ms(self.reload_compiling)),
                ratio: None,
                ratio_means: "",
                target: "report".into(),
                met: None,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_differ_and_stay_valid_wasm_prefixes() {
        let base = b"\0asm\x0d\0\x01\0".to_vec();
        let a = variant(&base, 1);
        let b = variant(&base, 2);
        assert_ne!(a, b);
        assert!(a.starts_with(&base));
    }
}
