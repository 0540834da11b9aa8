//! A binary min-heap of source numbers, ordered by a comparison the caller
//! passes to each call: what a k-way merge needs when its sources' next
//! items stay where they lie (in a block, in a spill file's buffer) and are
//! compared there, rather than copied into the heap. Segments merged by key
//! (`dataset::SegmentMerge`) and a run's spilled leads merged by subject
//! (`jiandu_sandbox::emitted::Merge`) use it.

/// Source numbers in heap order: `before(a, b)` says whether source `a`'s
/// next item comes out before source `b`'s. The caller passes the same
/// order to every call, and keeps it fixed while a source is in the heap.
#[derive(Debug, Default)]
pub struct IndexHeap {
    items: Vec<usize>,
}

impl IndexHeap {
    pub fn new() -> IndexHeap {
        IndexHeap::default()
    }

    /// The source whose item comes out first.
    pub fn first(&self) -> Option<usize> {
        self.items.first().copied()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds source `i`, O(log n).
    pub fn push(&mut self, i: usize, before: impl Fn(usize, usize) -> bool) {
        self.items.push(i);
        let mut at = self.items.len() - 1;
        while at > 0 {
            let parent = (at - 1) / 2;
            if !before(self.items[at], self.items[parent]) {
                break;
            }
            self.items.swap(at, parent);
            at = parent;
        }
    }

    /// Takes the first source out, O(log n).
    pub fn pop(&mut self, before: impl Fn(usize, usize) -> bool) -> Option<usize> {
        let first = self.first()?;
        let last = self.items.pop().expect("not empty");
        if !self.items.is_empty() {
            self.items[0] = last;
            self.sift_down(before);
        }
        Some(first)
    }

    /// Puts the first source back in its place after its next item
    /// changed (it moved on to a later one), O(log n).
    pub fn first_moved(&mut self, before: impl Fn(usize, usize) -> bool) {
        self.sift_down(before);
    }

    fn sift_down(&mut self, before: impl Fn(usize, usize) -> bool) {
        let mut at = 0;
        loop {
            let (l, r) = (2 * at + 1, 2 * at + 2);
            let mut first = at;
            if l < self.items.len() && before(self.items[l], self.items[first]) {
                first = l;
            }
            if r < self.items.len() && before(self.items[r], self.items[first]) {
                first = r;
            }
            if first == at {
                return;
            }
            self.items.swap(at, first);
            at = first;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sources holding sorted runs, merged through the heap as the merges
    /// do (pop the first, move it on, push it back), give the runs' items
    /// in order, ties to the later source first.
    #[test]
    fn runs_merged_through_the_heap_come_out_in_order() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for sources in [1, 2, 3, 7, 16] {
            let runs: Vec<Vec<u64>> = (0..sources)
                .map(|_| {
                    let mut run: Vec<u64> = (0..next(50)).map(|_| next(100)).collect();
                    run.sort();
                    run
                })
                .collect();
            let mut at = vec![0usize; sources];
            let head = |at: &[usize], s: usize| runs[s][at[s]];
            let mut heap = IndexHeap::new();
            for (s, run) in runs.iter().enumerate() {
                if !run.is_empty() {
                    heap.push(s, |a, b| (head(&at, a), b) < (head(&at, b), a));
                }
            }
            let mut out = Vec::new();
            while let Some(s) = heap.first() {
                out.push((head(&at, s), s));
                at[s] += 1;
                if at[s] < runs[s].len() {
                    heap.first_moved(|a, b| (head(&at, a), b) < (head(&at, b), a));
                } else {
                    heap.pop(|a, b| (head(&at, a), b) < (head(&at, b), a));
                }
            }
            let mut want: Vec<(u64, usize)> = runs
                .iter()
                .enumerate()
                .flat_map(|(s, run)| run.iter().map(move |&v| (v, s)))
                .collect();
            want.sort_by(|x, y| x.0.cmp(&y.0).then(y.1.cmp(&x.1)));
            assert_eq!(out, want, "{sources} sources");
        }
    }
}
