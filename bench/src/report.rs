//! The figures of one benchmark run, as a markdown table.

use crate::machine::Machine;
use anyhow::Result;
use std::fmt::Write as _;
use std::time::Duration;

/// One measured figure beside its baseline.
#[derive(Debug, Clone)]
pub struct Figure {
    pub section: &'static str,
    pub what: String,
    pub jiandu: String,
    pub baseline: String,
    pub ratio: Option<f64>,
    /// What the ratio is, e.g. "wasm ÷ native throughput".
    pub ratio_means: &'static str,
    pub target: String,
    /// Whether the target is met; `None` when there is nothing to meet.
    pub met: Option<bool>,
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub machine: Machine,
    pub command: String,
    pub scale: u64,
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
    pub load_at_end: String,
    pub elapsed: Duration,
}

impl Report {
    /// The report as markdown: the machine, the table, the notes.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut s = String::new();
        let _ = writeln!(s, "Command: `{}`", self.command);
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Machine: {} × {}, {:.1} GiB memory; load average {} at the start, {} at the end; {:.0} s in all.",
            m.cores,
            m.cpu,
            m.memory_gib,
            m.load_at_start,
            self.load_at_end,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| figure | what | Jiandu | baseline | ratio | target | met |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for f in &self.figures {
            let ratio = f
                .ratio
                .map(|r| format!("{r:.2}× {}", f.ratio_means))
                .unwrap_or_else(|| "–".into());
            let met = match f.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                f.section, f.what, f.jiandu, f.baseline, ratio, f.target, met
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s);
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s
    }
}

/// The shortest of `reps` timings (at least one).
pub fn best_of(reps: usize, mut f: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..reps.max(1) {
        best = best.min(f()?);
    }
    Ok(best)
}
