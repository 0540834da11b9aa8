//! The export file: a unit's ledger (all of it, or what follows a
//! checkpoint the central office already holds) in one JSON Lines file.
//!
//! ```text
//! {"type":"header","header":{"format":"jiandu-ledger-export/1","unit":…,"code":…,"fingerprint":…,"public_key":…,"since":null|{"size":…,"root":…,"head_hash":…},"to":…,"time":…},"sig":…}
//! {"type":"entry","seq":1,"hash":…,"sig":…|null,"entry":"{\"seq\":1,\"prev_hash\":…}"}
//! …one line per entry, in order…
//! {"type":"checkpoint","checkpoint":{"unit":…,"code":…,"fingerprint":…,"size":…,"root":…,"head_hash":…,"time":…},"sig":…}
//! ```
//!
//! - The **header** says whose ledger this is, which entries follow
//!   (`since.size + 1 ..= to`; `since` is the checkpoint they extend, or
//!   null for the whole ledger) and is signed by the unit key
//!   (prefix `jiandu ledger export v1\n` + the header's JSON).
//! - Each **entry** line carries the exact stored bytes of the entry as a
//!   JSON string (`entry`), their sha256 (`hash`) and the unit's signature
//!   of that hash (`sig`, null for entries written before the unit had a
//!   key).
//! - The **checkpoint** line is a fresh signed checkpoint over entries
//!   `1..=to`.
//!
//! Hashes and signatures are lowercase hex. Readers accept any JSON
//! spelling of the same values (whitespace, escapes) because every value
//! that matters is covered by a hash or a signature; unknown fields are
//! refused.

use super::checkpoint::{self, Checkpoint, SignedCheckpoint};
use super::merkle::Tree;
use super::signed_message;
use crate::ledger::{self, Signer, GENESIS};
use crate::{Error, Result, Store};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// `header.format` of the files this version writes and reads.
pub const FORMAT: &str = "jiandu-ledger-export/1";

/// What a unit signs for an export header, before its canonical JSON.
pub const EXPORT_SIGNATURE_PREFIX: &str = "jiandu ledger export v1\n";

/// The checkpoint an export extends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    pub size: u64,
    pub root: String,
    pub head_hash: String,
}

/// Whose ledger, and which part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub unit: String,
    pub code: String,
    pub fingerprint: String,
    pub public_key: String,
    pub since: Option<Base>,
    /// The last entry in the file (and the checkpoint's size).
    pub to: u64,
    pub time: String,
}

impl Header {
    /// The first entry in the file.
    pub fn from(&self) -> u64 {
        self.since.as_ref().map_or(0, |b| b.size) + 1
    }

    /// The exact bytes signed.
    pub fn message(&self) -> Vec<u8> {
        signed_message(
            EXPORT_SIGNATURE_PREFIX,
            &serde_json::to_vec(self).expect("headers serialize"),
        )
    }
}

/// Line 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderLine {
    #[serde(rename = "type")]
    pub kind: String,
    pub header: Header,
    pub sig: String,
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryLine {
    #[serde(rename = "type")]
    pub kind: String,
    pub seq: u64,
    pub hash: String,
    pub sig: Option<String>,
    /// The entry's stored bytes (UTF-8 JSON), exactly.
    pub entry: String,
}

/// The last line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointLine {
    #[serde(rename = "type")]
    pub kind: String,
    pub checkpoint: Checkpoint,
    pub sig: String,
}

impl CheckpointLine {
    pub fn signed(&self) -> SignedCheckpoint {
        SignedCheckpoint {
            checkpoint: self.checkpoint.clone(),
            sig: self.sig.clone(),
        }
    }
}

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
