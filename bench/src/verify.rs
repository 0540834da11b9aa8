//! `audit verify` over data: every block of a dataset read back and checked
//! against its CRCs, and every version's records digested again and
//! compared with the digest its ingest entry records (`--quick`: the CRCs
//! only), beside SQLite's own check of the same table
//! (`PRAGMA integrity_check`: every page, the b-trees and the indexes
//! against the table; no content hash).
//!
//! Jiandu's side is `ledger::verify` plus `stored::verify` on the
//! store the ingest figure wrote, in this process; SQLite's is the pragma on
//! the database the same file was loaded into.

use crate::machine::{per_second, secs};
use crate::report::Figure;
use anyhow::{ensure, Result};
use jiandu::Store;
use rusqlite::Connection;
use std::time::{Duration, Instant};

/// What was measured on one store.
#[derive(Debug, Clone)]
pub struct VerifyFigures {
    pub records: u64,
    pub bytes: u64,
    pub full: Duration,
    pub quick: Duration,
    pub sqlite: Duration,
}

/// Times a full and a quick `audit verify` of `store` (which holds
/// `records` records) and SQLite's integrity check of `conn`.
pub fn measure(store: &Store, records: u64, conn: &Connection) -> Result<VerifyFigures> {
    let t = Instant::now();
    let v = jiandu::audit::verify::local(store)?;
    let files = jiandu::stored::verify(store, false)?;
    let full = t.elapsed();
    ensure!(
        v.problem.is_none(),
        "the ledger does not verify: {:?}",
        v.problem
    );
    ensure!(files.faults.is_empty(), "faults: {:?}", files.faults);
    ensure!(files.digests > 0, "no version digest was checked");
    let t = Instant::now();
    jiandu::audit::verify::local(store)?;
    let quick_files = jiandu::stored::verify(store, true)?;
    let quick = t.elapsed();
    ensure!(
        quick_files.faults.is_empty(),
        "faults: {:?}",
        quick_files.faults
    );
    let t = Instant::now();
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    let sqlite = t.elapsed();
    ensure!(ok == "ok", "SQLite's integrity check says: {ok}");
    Ok(VerifyFigures {
        records,
        bytes: files.bytes,
        full,
        quick,
        sqlite,
    })
}

impl VerifyFigures {
    pub fn figures(&self) -> Vec<Figure> {
        let n = self.records;
        let row = |what: String, took: Duration| Figure {
            section: "Verify",
            what,
            jiandu: format!("{} ({})", per_second(n, took), secs(took)),
            baseline: format!(
                "SQLite `PRAGMA integrity_check` {} ({})",
                per_second(n, self.sqlite),
                secs(self.sqlite)
            ),
            ratio: Some(self.sqlite.as_secs_f64() / took.as_secs_f64().max(1e-9)),
            ratio_means: "SQLite time ÷ Jiandu time",
            target: "–".into(),
            met: None,
        };
        vec![
            row(
                format!(
                    "`audit verify` of a store with {n} records ({} MiB of blocks): every block's CRCs and every version's digest",
                    self.bytes >> 20
                ),
                self.full,
            ),
            row(
                "`audit verify --quick` of the same store: block CRCs only".to_string(),
                self.quick,
            ),
        ]
    }
}
