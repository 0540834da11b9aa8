//! `jiandu audit export`: a unit's ledger (all of it, or what follows a
//! checkpoint the central office already holds) written to one JSON Lines
//! file, in the format of [`super::format`].

use super::merkle::Tree;
use crate::ledger::checkpoint::{self, SignedCheckpoint};
use crate::ledger::{self, Signer, GENESIS};
use crate::{Error, Result, Store};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

pub use super::format::{
    Base, CheckpointLine, EntryLine, Header, HeaderLine, EXPORT_SIGNATURE_PREFIX, FORMAT,
};

/// Where an export starts.
#[derive(Debug, Clone)]
pub enum Since {
    /// After the first `n` entries.
    Size(u64),
    /// After the entries a checkpoint covers (one this unit signed, e.g.
    /// the last line of its previous export, or the checkpoint the central
    /// office last accepted).
    Checkpoint(SignedCheckpoint),
}

/// Reads `--since`: an entry count, or a file holding a checkpoint (a
/// checkpoint's JSON, or an export file whose last line is its checkpoint).
pub fn parse_since(text: &str) -> Result<Since> {
    if let Ok(n) = text.trim().parse::<u64>() {
        return Ok(Since::Size(n));
    }
    let path = Path::new(text);
    let content = std::fs::read_to_string(path).map_err(|e| {
        Error::file(
            path,
            format!("--since takes an entry count or a file holding a checkpoint: {e}"),
        )
    })?;
    let last = content
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if let Ok(line) = serde_json::from_str::<CheckpointLine>(last) {
        return Ok(Since::Checkpoint(line.signed()));
    }
    serde_json::from_str::<SignedCheckpoint>(content.trim())
        .map(Since::Checkpoint)
        .map_err(|_| {
            Error::file(
                path,
                "holds no checkpoint (neither an export file nor a checkpoint)",
            )
        })
}

/// What [`export_to`] wrote.
#[derive(Debug, Clone)]
pub struct Export {
    pub header: Header,
    pub checkpoint: SignedCheckpoint,
    /// Entries in the file.
    pub entries: u64,
}

/// Exports this store's ledger after `since` to the file `path`, all or
/// nothing (see [`export_to`]).
pub fn export_file(store: &Store, since: Option<&Since>, path: &Path) -> Result<Export> {
    let mut failed = None;
    let written = crate::fsio::write_atomic_with(path, |out| {
        export_to(store, since, out).map_err(|e| {
            let io = std::io::Error::other(e.to_string());
            failed = Some(e);
            io
        })
    });
    match (written, failed) {
        (Ok(e), _) => Ok(e),
        (Err(_), Some(e)) => Err(e),
        (Err(io), None) => Err(Error::file(path, io)),
    }
}

/// Writes this store's ledger after `since`, with a fresh checkpoint, to
/// `out`, one line at a time. Needs a unit; refuses a ledger that does
/// not verify.
pub fn export_to(store: &Store, since: Option<&Since>, out: &mut dyn Write) -> Result<Export> {
    let signer = Signer::for_store(store)?.ok_or_else(|| {
        Error::Ledger(
            "exporting needs this store's unit key to sign the export; create it with `jiandu unit init --name … --code …`".into(),
        )
    })?;
    let unit = crate::unit::current(store)?.expect("a signer implies a unit");
    let walk = super::verify::local_walk(store)?;
    if let Some(p) = &walk.verification.problem {
        return Err(Error::Ledger(format!(
            "the ledger does not verify, so it is not exported: entry {} failed the {} check: {}",
            p.seq, p.check, p.message
        )));
    }
    let tree = &walk.tree;
    let base = match since {
        None | Some(Since::Size(0)) => None,
        Some(Since::Size(n)) => {
            if *n > tree.len() {
                return Err(Error::Ledger(format!(
                    "--since {n}: the ledger holds only {} entries",
                    tree.len()
                )));
            }
            let prefix = checkpoint::prefix(tree, *n);
            Some(Base {
                size: *n,
                root: prefix.root(),
                head_hash: checkpoint::head_of(&prefix),
            })
        }
        Some(Since::Checkpoint(cp)) => Some(base_from_checkpoint(&signer, tree, cp)?),
    };
    let checkpoint = checkpoint::write_over(store, &signer, tree)?;
    let header = Header {
        format: FORMAT.to_string(),
        unit: unit.name.clone(),
        code: unit.code.clone(),
        fingerprint: unit.fingerprint.clone(),
        public_key: unit.public_key.clone(),
        since: base,
        to: tree.len(),
        time: crate::time::now_text(),
    };
    let sig = signer.sign(&header.message());
    push_line(
        out,
        &HeaderLine {
            kind: "header".into(),
            header: header.clone(),
            sig,
        },
    )?;
    let from = header.from();
    let mut entries = 0;
    for item in ledger::entries(store, from) {
        let (seq, bytes) = item?;
        if seq > header.to {
            break;
        }
        let seal = ledger::seal(store, seq)?.map_err(Error::Ledger)?;
        let entry = String::from_utf8(bytes)
            .map_err(|_| Error::Ledger(format!("entry {seq} is not UTF-8")))?;
        push_line(
            out,
            &EntryLine {
                kind: "entry".into(),
                seq,
                hash: ledger::hash(entry.as_bytes()),
                sig: seal.and_then(|s| s.sig),
                entry,
            },
        )?;
        entries += 1;
    }
    push_line(
        out,
        &CheckpointLine {
            kind: "checkpoint".into(),
            checkpoint: checkpoint.checkpoint.clone(),
            sig: checkpoint.sig.clone(),
        },
    )?;
    Ok(Export {
        header,
        checkpoint,
        entries,
    })
}

/// The base of an export that continues after `cp`, which must be this
/// unit's own checkpoint of this very ledger.
fn base_from_checkpoint(signer: &Signer, tree: &Tree, cp: &SignedCheckpoint) -> Result<Base> {
    cp.check_signature(&signer.public())
        .map_err(|why| Error::Ledger(format!("--since: not a checkpoint of this unit: {why}")))?;
    let c = &cp.checkpoint;
    let fork = |why: String| {
        Error::Ledger(format!(
            "--since: this ledger no longer contains the checkpoint of {} entries signed at {}: {why}; the ledger has been rewritten since (a fork): `jiandu audit verify` and ask the central office",
            c.size, c.time
        ))
    };
    if c.size > tree.len() {
        return Err(fork(format!(
            "the ledger holds only {} entries",
            tree.len()
        )));
    }
    let prefix = checkpoint::prefix(tree, c.size);
    if prefix.root() != c.root || checkpoint::head_of(&prefix) != c.head_hash {
        return Err(fork("its Merkle root differs".into()));
    }
    Ok(Base {
        size: c.size,
        root: c.root.clone(),
        head_hash: if c.size == 0 {
            GENESIS.to_string()
        } else {
            c.head_hash.clone()
        },
    })
}

/// Writes `value` as one line of compact JSON.
fn push_line<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<()> {
    serde_json::to_writer(&mut *out, value)
        .map_err(|e| Error::Ledger(format!("writing the export: {e}")))?;
    out.write_all(b"\n")
        .map_err(|e| Error::Ledger(format!("writing the export: {e}")))
}
