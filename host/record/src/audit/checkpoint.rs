//! Checkpoints as audit uses them: the ledger's checkpoint types and
//! writing ([`crate::ledger::checkpoint`]), and a checkpoint written only
//! over a ledger that verifies.

pub use crate::ledger::checkpoint::*;

use crate::ledger::Signer;
use crate::{Error, Result, Store};

/// Verifies this store's ledger and, if it verifies, signs and stores a
/// checkpoint over all of it.
pub fn write_local(store: &Store, signer: &Signer) -> Result<SignedCheckpoint> {
    let walk = super::verify::local_walk(store)?;
    if let Some(p) = &walk.verification.problem {
        return Err(Error::Ledger(format!(
            "the ledger does not verify (entry {} failed the {} check: {}); no checkpoint was written",
            p.seq, p.check, p.message
        )));
    }
    write_over(store, signer, &walk.tree)
}
