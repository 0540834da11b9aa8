//! Triggers: a model runs every `interval_seconds`, and/or when a dataset
//! named in its `[triggers] on_new_data` gets a new version (an ingest or an
//! `--append` increment). Models that want only the new records scan with
//! `ctx.read(..).only_new()`; the host keeps their cursor.

use super::Server;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the trigger thread looks for due work.
const TICK: Duration = Duration::from_millis(100);

/// Starts the trigger thread; it stops when the server stops.
pub fn spawn(server: Arc<Server>) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("jiandu-triggers".into())
        .spawn(move || {
            let mut last_interval_run: HashMap<String, Instant> = HashMap::new();
            let mut seen_versions: HashMap<String, Option<u64>> = HashMap::new();
            // Versions present at start are not "new".
            for head in crate::dataset::list(&server.store).unwrap_or_default() {
                seen_versions.insert(head.schema.name.clone(), head.current);
            }
            while !server.is_stopping() {
                std::thread::sleep(TICK);
                let mut changed = Vec::new();
                for head in crate::dataset::list(&server.store).unwrap_or_default() {
                    let name = head.schema.name.clone();
                    let prev = seen_versions.insert(name.clone(), head.current);
                    if prev != Some(head.current) && head.current.is_some() {
                        changed.push(name);
                    }
                }
                for name in server.model_names() {
                    let Some(live) = server.live(&name) else {
                        continue;
                    };
                    let triggers = &live.installed.manifest.triggers;
                    let reason = if let Some(ds) =
                        changed.iter().find(|d| triggers.on_new_data.contains(d))
                    {
                        Some(format!("new data in {ds}"))
                    } else if let Some(secs) = triggers.interval_seconds {
                        let due = last_interval_run
                            .get(&name)
                            .is_none_or(|t| t.elapsed() >= Duration::from_secs(secs.max(1)));
                        due.then(|| format!("every {secs} s"))
                    } else {
                        None
                    };
                    let Some(reason) = reason else { continue };
                    last_interval_run.insert(name.clone(), Instant::now());
                    let operator = format!("{} (trigger: {reason})", server.operator);
                    match server.run(&name, Vec::new(), &operator) {
                        Ok(r) => tracing::info!(
                            "triggered run {} of {name} ({reason}): {}, {} leads",
                            r.run_id,
                            r.outcome.as_str(),
                            r.leads
                        ),
                        Err(e) => tracing::warn!("triggered run of {name} ({reason}) refused: {e}"),
                    }
                }
            }
        })
        .map_err(|e| Error::Other(format!("cannot start the trigger thread: {e}")))
}
