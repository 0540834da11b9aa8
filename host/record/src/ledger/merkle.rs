//! Merkle tree hashes over a ledger, in the layout of RFC 6962 §2.1
//! (Certificate Transparency), computed by the `ct-merkle` crate.
//!
//! Leaf `i` is the 32-byte sha256 of the stored bytes of entry `i + 1` (the
//! entry hash the chain already uses), so a tree is built from the hashes
//! alone: leaf hash `SHA-256(0x00 || entry hash)`, node hash
//! `SHA-256(0x01 || left || right)`, the empty tree `SHA-256("")`. A
//! checkpoint's root over the first `n` entries therefore commits to every
//! one of them, and a longer ledger that keeps them unchanged has, at size
//! `n`, the same root.
//!
//! Appending keeps only the tree's right edge ([`Frontier`]): the roots of
//! its perfect subtrees, one per set bit of the size. A push merges at most
//! log2(n) of them and the root folds them; the frontier is kept with the
//! ledger head, so a checkpoint costs the same at entry 64 and at entry
//! 6,400,000, and nothing is read back.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use sha2::{Digest, Sha256};

/// An append-only tree of entry hashes.
#[derive(Clone, Default)]
pub struct Tree {
    inner: MemoryBackedTree<Sha256, [u8; 32]>,
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Appends the hash of the next entry.
    pub fn push(&mut self, entry_hash: [u8; 32]) {
        self.inner.push(entry_hash);
    }

    /// Number of leaves (entries).
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The Merkle Tree Hash of all leaves so far, hex.
    pub fn root(&self) -> String {
        hex::encode(self.inner.root().as_bytes())
    }

    /// The hash of entry `seq` (1-based), if the tree holds it.
    pub fn entry_hash(&self, seq: u64) -> Option<[u8; 32]> {
        let idx = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.inner.get(idx).copied()
    }
}

/// The right edge of an RFC 6962 tree over entry hashes: what appending
/// and the root need, O(log n) hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first: one per
    /// set bit of `size`.
    roots: Vec<[u8; 32]>,
}

fn leaf_hash(entry_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry_hash);
    h.finalize().into()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The frontier of a tree of `size` leaves from its subtree roots (hex,
    /// largest first), as [`Frontier::to_hex`] writes them.
    pub fn from_hex(size: u64, roots: &[String]) -> Result<Frontier, String> {
        if roots.len() != size.count_ones() as usize {
            return Err(format!(
                "a tree of {size} entries has {} subtree roots, not {}",
                size.count_ones(),
                roots.len()
            ));
        }
        let roots = roots
            .iter()
            .map(|r| parse_hash(r).ok_or_else(|| format!("`{r}` is not a sha256")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Frontier { size, roots })
    }

    pub fn to_hex(&self) -> Vec<String> {
        self.roots.iter().map(hex::encode).collect()
    }

    /// Appends the hash of the next entry.
    pub fn push(&mut self, entry_hash: [u8; 32]) {
        let mut node = leaf_hash(&entry_hash);
        // Each trailing 1 bit of the size is a subtree as large as the one
        // being carried: merge them, as binary addition carries.
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.roots.pop().expect("one root per set bit");
            node = node_hash(&left, &node);
            size >>= 1;
        }
        self.roots.push(node);
        self.size += 1;
    }

    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The Merkle Tree Hash of all leaves so far, hex: the subtree roots
    /// folded from the right, as RFC 6962 splits at the largest power of
    /// two.
    pub fn root(&self) -> String {
        let mut roots = self.roots.iter().rev();
        let Some(last) = roots.next() else {
            return hex::encode(Sha256::digest(b""));
        };
        let root = roots.fold(*last, |acc, left| node_hash(left, &acc));
        hex::encode(root)
    }
}

/// Parses a 64-character lowercase hex sha256, as entries and checkpoints
/// write them.
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(text).ok()?.try_into().ok()
}

/// The root of a tree over `hashes`.
pub fn root_of(hashes: impl IntoIterator<Item = [u8; 32]>) -> String {
    let mut tree = Tree::new();
    for h in hashes {
        tree.push(h);
    }
    tree.root()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    /// MTH exactly as RFC 6962 §2.1 defines it, recursively.
    fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
        let n = leaves.len();
        let mut h = Sha256::new();
        match n {
            0 => {}
            1 => {
                h.update([0u8]);
                h.update(&leaves[0]);
            }
            _ => {
                let k = split(n);
                h.update([1u8]);
                h.update(mth(&leaves[..k]));
                h.update(mth(&leaves[k..]));
            }
        }
        h.finalize().into()
    }

    /// The largest power of two smaller than `n` (n > 1).
    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    #[test]
    fn split_point_is_the_largest_power_of_two_below_n() {
        for n in 2..200usize {
            let k = split(n);
            assert!(k.is_power_of_two() && k < n && n <= 2 * k, "n={n} k={k}");
        }
    }

    /// Known answers from the Certificate Transparency reference vectors
    /// (transparency-dev/merkle `testonly`): roots of the trees over the
    /// first 1..=8 of these leaves.
    #[test]
    fn ct_merkle_matches_the_rfc_6962_reference_vectors() {
        let leaves: Vec<Vec<u8>> = [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect();
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut tree: MemoryBackedTree<Sha256, Vec<u8>> = MemoryBackedTree::new();
        for (i, leaf) in leaves.iter().enumerate() {
            tree.push(leaf.clone());
            assert_eq!(
                hex::encode(tree.root().as_bytes()),
                roots[i],
                "size {}",
                i + 1
            );
            assert_eq!(
                hex::encode(mth(&leaves[..=i])),
                roots[i],
                "reference, size {}",
                i + 1
            );
        }
    }

    #[test]
    fn tree_of_entry_hashes_matches_the_rfc_definition_at_every_size() {
        let hashes: Vec<[u8; 32]> = (0..70u32)
            .map(|i| Sha256::digest(i.to_be_bytes()).into())
            .collect();
        let mut tree = Tree::new();
        assert_eq!(tree.root(), hex::encode(Sha256::digest(b"")));
        for (i, h) in hashes.iter().enumerate() {
            tree.push(*h);
            let leaves: Vec<Vec<u8>> = hashes[..=i].iter().map(|h| h.to_vec()).collect();
            assert_eq!(tree.root(), hex::encode(mth(&leaves)), "size {}", i + 1);
            assert_eq!(tree.entry_hash(i as u64 + 1), Some(*h));
        }
        assert_eq!(root_of(hashes.iter().copied()), tree.root());
    }

    #[test]
    fn the_frontier_gives_the_tree_root_at_every_size_and_round_trips() {
        let mut tree = Tree::new();
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), tree.root());
        for i in 0..300u32 {
            let h: [u8; 32] = Sha256::digest(i.to_le_bytes()).into();
            tree.push(h);
            frontier.push(h);
            assert_eq!(frontier.root(), tree.root(), "size {}", i + 1);
            assert_eq!(frontier.len(), tree.len());
            let again = Frontier::from_hex(frontier.len(), &frontier.to_hex()).unwrap();
            assert_eq!(again, frontier);
        }
        // 300 = 256 + 32 + 8 + 4: four subtrees.
        assert_eq!(frontier.to_hex().len(), 4);
        assert!(Frontier::from_hex(300, &frontier.to_hex()[..3]).is_err());
        let mut bad = frontier.to_hex();
        bad[0] = bad[0].to_uppercase();
        assert!(Frontier::from_hex(300, &bad).is_err());
    }

    #[test]
    fn hashes_parse_only_in_canonical_form() {
        let h = hex::encode([0xabu8; 32]);
        assert_eq!(parse_hash(&h), Some([0xab; 32]));
        assert_eq!(parse_hash(&h.to_uppercase()), None);
        assert_eq!(parse_hash(&h[..62]), None);
        assert_eq!(parse_hash("zz"), None);
    }
}
