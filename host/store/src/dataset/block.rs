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
    layout: Layout,
}

/// Where a parsed block's parts lie: kept by a reader that views the same
/// bytes many times, so that [`Block::parse`] checks them once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout {
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
        Block::parse_parts(bytes, true)
    }

    /// A block's header and records area without its keys (what
    /// [`super::file::RunFile::read_front_into`] reads), checked against
    /// its length. Its keys must not be asked for: use
    /// [`Block::lower_bound_records`] rather than [`Block::lower_bound`].
    pub fn parse_front(bytes: &'a [u8]) -> Result<Block<'a>> {
        Block::parse_parts(bytes, false)
    }

    /// Checks the header against the length of `bytes`, which end after
    /// the keys area when `with_keys`, else after the records area.
    fn parse_parts(bytes: &'a [u8], with_keys: bool) -> Result<Block<'a>> {
        let corrupt = || Error::Other("dataset block is corrupt (header does not fit)".into());
        if bytes.len() < 4 {
            return Err(corrupt());
        }
        let n = u32_at(bytes, 0) as usize;
        let header = n
            .checked_add(1)
            .and_then(|m| m.checked_mul(8))
            .and_then(|m| m.checked_add(4))
            .filter(|&h| h <= bytes.len())
            .ok_or_else(corrupt)?;
        let data_len = u32_at(bytes, 4 + 4 * n) as usize;
        let keys_len = if with_keys {
            u32_at(bytes, 4 + 4 * (n + 1) + 4 * n) as usize
        } else {
            0
        };
        if header + data_len + keys_len != bytes.len() {
            return Err(corrupt());
        }
        Ok(Block {
            bytes,
            layout: Layout {
                n,
                data_start: header,
                keys_start: header + data_len,
            },
        })
    }

    /// The view of `bytes` that [`Block::parse`] gave as `layout`, without
    /// checking the header again (the bytes must be the ones parsed: other
    /// bytes give wrong records or a panic, never other memory).
    pub fn with_layout(bytes: &'a [u8], layout: Layout) -> Block<'a> {
        Block { bytes, layout }
    }

    /// Where this block's parts lie, for [`Block::with_layout`].
    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn len(&self) -> usize {
        self.layout.n
    }

    pub fn is_empty(&self) -> bool {
        self.layout.n == 0
    }

    fn data_offset(&self, i: usize) -> usize {
        u32_at(self.bytes, 4 + 4 * i) as usize
    }

    fn key_offset(&self, i: usize) -> usize {
        u32_at(self.bytes, 4 + 4 * (self.layout.n + 1) + 4 * i) as usize
    }

    /// Length of the header and records area (everything before the keys).
    pub fn front_len(&self) -> usize {
        self.layout.keys_start
    }

    /// The records area, as the guest receives it.
    pub fn data(&self) -> &'a [u8] {
        &self.bytes[self.layout.data_start..self.layout.keys_start]
    }

    /// The record offsets (n + 1 of them), relative to [`Block::data`].
    pub fn offsets(&self) -> Vec<u32> {
        (0..=self.layout.n)
            .map(|i| self.data_offset(i) as u32)
            .collect()
    }

    pub fn record(&self, i: usize) -> &'a [u8] {
        &self.data()[self.data_offset(i)..self.data_offset(i + 1)]
    }

    pub fn key(&self, i: usize) -> &'a [u8] {
        let keys = self.layout.keys_start;
        &self.bytes[keys + self.key_offset(i)..keys + self.key_offset(i + 1)]
    }

    /// Position of the first record whose key is ≥ `key`.
    pub fn lower_bound(&self, key: &[u8]) -> usize {
        self.partition_point(|i| self.key(i) < key)
    }

    /// Position of the first record that is ≥ `key` as bytes: for runs
    /// whose records are ordered like their keys as far as `key` tells
    /// (a `#key` run's clear keys against a bound on their first field).
    pub fn lower_bound_records(&self, key: &[u8]) -> usize {
        self.partition_point(|i| self.record(i) < key)
    }

    /// The first position where `below` is false (it must be true, then
    /// false, along the block).
    fn partition_point(&self, below: impl Fn(usize) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.layout.n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if below(mid) {
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
    fn a_block_front_reads_its_records_without_its_keys() {
        let mut b = BlockBuilder::new();
        for (k, r) in [("k1", "a\u{1f}1"), ("k2", "b\u{1f}2"), ("k3", "b\u{1f}3")] {
            b.push(k.as_bytes(), r.as_bytes());
        }
        let bytes = b.finish();
        let whole = Block::parse(&bytes).unwrap();
        let front = &bytes[..whole.front_len()];
        let block = Block::parse_front(front).unwrap();
        assert_eq!(block.len(), 3);
        for i in 0..3 {
            assert_eq!(block.record(i), whole.record(i));
        }
        assert_eq!(block.lower_bound_records(b"a"), 0);
        assert_eq!(block.lower_bound_records(b"b"), 1);
        assert_eq!(block.lower_bound_records(b"c"), 3);
        // Cut anywhere, or with its keys, it is refused.
        for cut in 0..front.len() {
            assert!(Block::parse_front(&front[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Block::parse_front(&bytes).is_err());
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
