//! Files a process is writing and has not yet committed or dropped, which
//! cleanup of orphaned files leaves alone.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Snapshot files planned in this process and not yet dropped, which
/// orphan cleanup leaves alone. One per store, shared by its clones.
#[derive(Default)]
pub struct InFlight {
    files: Mutex<HashSet<PathBuf>>,
}

impl InFlight {
    /// The files held now.
    pub fn lock(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
