//! Block-packed storage of a dataset version.
//!
//! A segment of a version is a run of records sorted by primary key, packed
//! a few thousand to a block (stored in the run's file, see [`super::file`]):
//!
//! ```text
//! block := n: u32 | data_offsets[n+1]: u32 | key_offsets[n+1]: u32 | data | keys
//! ```
//!
//! `data` holds the records exactly as a model receives them (the offsets
//! are relative to its start), so a scan hands a block to the guest without
//! re-encoding; `keys` holds each record's primary key text for gets and
//! merges. A secondary index is a run of blocks of the same shape whose
//! "records" are primary keys and whose keys are the indexed values.

use crate::{Error, Result};

/// Records per block.
pub const BLOCK_RECORDS: usize = 4096;

/// Separator between the fields of a composite key: below every printable
/// character, so composite keys sort like tuples.
pub const KEY_SEP: char = '\u{1f}';

/// Builds one block from (key, record) pairs already in key order.
#[derive(Default)]
pub struct BlockBuilder {
    data: Vec<u8>,
    keys: Vec<u8>,
    data_offsets: Vec<u32>,
    key_offsets: Vec<u32>,
}

impl BlockBuilder {
    pub fn new() -> Self {
        BlockBuilder {
            data_offsets: vec![0],
            key_offsets: vec![0],
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.data_offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, key: &[u8], record: &[u8]) {
        self.data.extend_from_slice(record);
        self.keys.extend_from_slice(key);
        self.data_offsets.push(self.data.len() as u32);
        self.key_offsets.push(self.keys.len() as u32);
    }

    /// The encoded block; the builder is left empty, its room kept for the
    /// next block (growing it anew for every block cost copies).
    pub fn finish(&mut self) -> Vec<u8> {
        let n = self.len();
        let mut out = Vec::with_capacity(4 + 8 * (n + 1) + self.data.len() + self.keys.len());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        for o in &self.data_offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        for o in &self.key_offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.keys);
        self.data.clear();
        self.keys.clear();
        self.data_offsets.truncate(1);
        self.key_offsets.truncate(1);
        out
    }
}

/// A read view of one stored block.
pub struct Block<'a> {
    bytes: &'a [u8],
    n: usize,
    data_start: usize,
    keys_start: usize,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

impl<'a> Block<'a> {
    /// Checks the header against the length of the value.
    pub fn parse(bytes: &'a [u8]) -> Result<Block<'a>> {
        let corrupt = || Error::Other("dataset block is corrupt (header does not fit)".into());
        if bytes.len() < 4 {
            return Err(corrupt());
        }
        let n = u32_at(bytes, 0) as usize;
        let header = 4usize
            .checked_add(
                n.checked_add(1)
                    .ok_or_else(corrupt)?
                    .checked_mul(8)
                    .ok_or_else(corrupt)?,
            )
            .ok_or_else(corrupt)?;
        if header > bytes.len() {
            return Err(corrupt());
        }
        let data_len = u32_at(bytes, 4 + 4 * n) as usize;
        let keys_len = u32_at(bytes, 4 + 4 * (n + 1) + 4 * n) as usize;
        if header + data_len + keys_len != bytes.len() {
            return Err(corrupt());
        }
        Ok(Block {
            bytes,
            n,
            data_start: header,
            keys_start: header + data_len,
        })
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn data_offset(&self, i: usize) -> usize {
        u32_at(self.bytes, 4 + 4 * i) as usize
    }

    fn key_offset(&self, i: usize) -> usize {
        u32_at(self.bytes, 4 + 4 * (self.n + 1) + 4 * i) as usize
    }

    /// Length of the header and records area (everything before the keys).
    pub fn front_len(&self) -> usize {
        self.keys_start
    }

    /// The records area, as the guest receives it.
    pub fn data(&self) -> &'a [u8] {
        &self.bytes[self.data_start..self.keys_start]
    }

    /// The record offsets (n + 1 of them), relative to [`Block::data`].
    pub fn offsets(&self) -> Vec<u32> {
        (0..=self.n).map(|i| self.data_offset(i) as u32).collect()
    }

    pub fn record(&self, i: usize) -> &'a [u8] {
        &self.data()[self.data_offset(i)..self.data_offset(i + 1)]
    }

    pub fn key(&self, i: usize) -> &'a [u8] {
        &self.bytes[self.keys_start + self.key_offset(i)..self.keys_start + self.key_offset(i + 1)]
    }

    /// Position of the first record whose key is ≥ `key`.
    pub fn lower_bound(&self, key: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trips_and_searches() {
        let mut b = BlockBuilder::new();
        for (k, r) in [("a", "rec-a"), ("c", "rec-c"), ("e", "")] {
            b.push(k.as_bytes(), r.as_bytes());
        }
        let bytes = b.finish();
        let block = Block::parse(&bytes).unwrap();
        assert_eq!(block.len(), 3);
        assert_eq!(block.record(1), b"rec-c");
        assert_eq!(block.key(2), b"e");
        assert_eq!(block.record(2), b"");
        assert_eq!(block.offsets(), vec![0, 5, 10, 10]);
        assert_eq!(block.lower_bound(b"b"), 1);
        assert_eq!(block.lower_bound(b"c"), 1);
        assert_eq!(block.lower_bound(b"z"), 3);
    }

    #[test]
    fn corrupt_block_is_an_error() {
        let mut b = BlockBuilder::new();
        b.push(b"k", b"v");
        let bytes = b.finish();
        for cut in 0..bytes.len() {
            assert!(Block::parse(&bytes[..cut]).is_err());
        }
        let mut bad = bytes.clone();
        bad[0] = 0xff;
        assert!(Block::parse(&bad).is_err());
    }
}
