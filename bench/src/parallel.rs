//! Parallel: two independent runs at once (two threads, one shared
//! `Runtime`, one store) against the same two runs one after the other.
//! Both are whole `jiandu run`s of the 残保金 model, the second under
//! another model name so that the two commit different leads.

use crate::machine::{self, secs};
use crate::report::Figure;
use crate::runs;
use anyhow::Result;
use jiandu::catalog::Installed;
use jiandu::policy::Policy;
use jiandu::runtime::{Loaded, Runtime};
use jiandu::Store;
use std::time::{Duration, Instant};

/// Minimum throughput of two runs at once over two in a row.
pub const TARGET: f64 = 1.8;

#[derive(Debug, Clone)]
pub struct ParallelResult {
    pub model: String,
    pub one_after_other: Duration,
    pub at_once: Duration,
    /// Cores the process kept busy (CPU time ÷ wall time) in each way: two
    /// runs at once on an idle two-core machine should reach about 2.
    pub cores_one_after_other: Option<f64>,
    pub cores_at_once: Option<f64>,
}

/// Runs `f` and returns its wall time and the cores it kept busy.
fn timed(f: impl FnOnce() -> Result<()>) -> Result<(Duration, Option<f64>)> {
    let cpu = machine::cpu_time();
    let t = Instant::now();
    f()?;
    let wall = t.elapsed();
    let cores = cpu
        .zip(machine::cpu_time())
        .map(|(a, b)| (b - a).as_secs_f64() / wall.as_secs_f64().max(1e-9));
    Ok((wall, cores))
}

/// Best of `reps` for each way, interleaved.
pub fn measure(
    runtime: &Runtime,
    loaded: &Loaded,
    store: &Store,
    policy: &Policy,
    model: &Installed,
    reps: usize,
) -> Result<ParallelResult> {
    // The second run is of the same code under another model name, so the
    // two runs are independent: their leads have different keys (a model's
    // leads are keyed by its name) and neither overwrites the other's.
    let mut twin = model.clone();
    twin.manifest.name = format!("{}-twin", model.manifest.name);
    let first = || runs::full_run(runtime, loaded, store, policy, model, &[]).map(|_| ());
    let second = || runs::full_run(runtime, loaded, store, policy, &twin, &[]).map(|_| ());
    // First runs, so that every measured run re-runs over committed leads.
    first()?;
    second()?;
    let mut one_after_other = (Duration::MAX, None);
    let mut at_once = (Duration::MAX, None);
    for _ in 0..reps.max(1) {
        let m = timed(|| {
            first()?;
            second()
        })?;
        if m.0 < one_after_other.0 {
            one_after_other = m;
        }
        let m = timed(|| {
            std::thread::scope(|s| {
                let a = s.spawn(first);
                let b = s.spawn(second);
                let a = a.join().expect("a run thread panicked");
                let b = b.join().expect("a run thread panicked");
                a.and(b)
            })
        })?;
        if m.0 < at_once.0 {
            at_once = m;
        }
    }
    Ok(ParallelResult {
        model: model.manifest.id(),
        one_after_other: one_after_other.0,
        at_once: at_once.0,
        cores_one_after_other: one_after_other.1,
        cores_at_once: at_once.1,
    })
}

fn cores(c: Option<f64>) -> String {
    c.map(|c| format!(", {c:.2} cores busy"))
        .unwrap_or_default()
}

impl ParallelResult {
    pub fn ratio(&self) -> f64 {
        self.one_after_other.as_secs_f64() / self.at_once.as_secs_f64().max(1e-9)
    }

    pub fn figures(&self) -> Vec<Figure> {
        let ratio = self.ratio();
        vec![Figure {
            section: "Parallel",
            what: format!(
                "two whole `jiandu run`s of {} (the second as a twin with its own leads), two threads sharing one Runtime and store",
                self.model
            ),
            jiandu: format!(
                "at once {}{}",
                secs(self.at_once),
                cores(self.cores_at_once)
            ),
            baseline: format!(
                "one after the other {}{}",
                secs(self.one_after_other),
                cores(self.cores_one_after_other)
            ),
            ratio: Some(ratio),
            ratio_means: "throughput at once ÷ in a row",
            target: format!("≥ {TARGET}×"),
            met: Some(ratio >= TARGET),
        }]
    }
}
