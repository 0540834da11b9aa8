//! Watching the models folder: changes are debounced per model (a build
//! writes several files in a burst), then the model is reloaded off the
//! serving path.

use super::Server;
use crate::{Error, Result};
use notify::{RecursiveMode, Watcher};
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The model a changed path belongs to: the first folder under `models`.
fn model_of(models: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(models).ok()?;
    let first = rel.components().next()?;
    let name = first.as_os_str().to_str()?.to_string();
    crate::catalog::check_name(&name).ok()?;
    Some(name)
}

/// Starts the watcher thread; it stops when the server stops.
pub fn spawn(server: Arc<Server>, debounce: Duration) -> Result<std::thread::JoinHandle<()>> {
    let models = server.store.models_dir();
    let models = models.canonicalize().map_err(|e| Error::file(&models, e))?;
    let (tx, rx) = channel();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Reading a model (to load it) raises access events: only changes count.
        if let Ok(event) = res {
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            for p in event.paths {
                let _ = tx.send(p);
            }
        }
    })
    .map_err(|e| Error::Other(format!("cannot watch {}: {e}", models.display())))?;
    watcher
        .watch(&models, RecursiveMode::Recursive)
        .map_err(|e| Error::Other(format!("cannot watch {}: {e}", models.display())))?;
    std::thread::Builder::new()
        .name("jiandu-watch".into())
        .spawn(move || {
            let _watcher = watcher;
            let mut pending: HashMap<String, Instant> = HashMap::new();
            loop {
                if server.is_stopping() {
                    break;
                }
                let wait = pending
                    .values()
                    .map(|t| (*t + debounce).saturating_duration_since(Instant::now()))
                    .min()
                    .unwrap_or(Duration::from_millis(500));
                match rx.recv_timeout(wait) {
                    Ok(path) => {
                        if let Some(name) = model_of(&models, &path) {
                            pending.insert(name, Instant::now());
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                let due: Vec<String> = pending
                    .iter()
                    .filter(|(_, t)| t.elapsed() >= debounce)
                    .map(|(n, _)| n.clone())
                    .collect();
                for name in due {
                    pending.remove(&name);
                    server.reload(&name);
                }
            }
        })
        .map_err(|e| Error::Other(format!("cannot start the watcher thread: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_model_folder() {
        let m = Path::new("/s/models");
        assert_eq!(
            model_of(m, Path::new("/s/models/abc/model.wasm")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            model_of(m, Path::new("/s/models/abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(model_of(m, Path::new("/s/other/abc")), None);
        assert_eq!(model_of(m, Path::new("/s/models/.tmp")), None);
    }
}
