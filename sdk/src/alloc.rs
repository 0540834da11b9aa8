//! The guest's allocator: a free list per small size class in front of the
//! system allocator (dlmalloc on `wasm32-unknown-unknown`).
//!
//! A model allocates and frees small values for every record it reads (a
//! `String` per text field, a `Vec` per merge-join group); dlmalloc spends
//! a hundred-odd wasm instructions on each, glibc's thread cache a few
//! dozen on the native build of the same model. Freed blocks of up to
//! 256 bytes are kept on their class's list and handed out again, so the
//! steady state of a scan costs a pointer swap per allocation. Blocks on
//! the lists are not returned to dlmalloc: the model's memory is the peak
//! of its small values, and the host's memory cap still bounds it.
//!
//! It is installed as the global allocator of wasm builds by the default
//! `small-alloc` feature; a model with an allocator of its own turns that
//! feature off (`default-features = false`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Bytes per size class step, and the alignment of every small block.
const STEP: usize = 16;
/// Size classes: blocks of up to `STEP * CLASSES` bytes.
const CLASSES: usize = 16;

/// The allocator. Not thread-safe: a wasm model has one thread.
pub struct SmallAlloc {
    free: UnsafeCell<[*mut u8; CLASSES]>,
}

// SAFETY: installed only on `wasm32-unknown-unknown`, where a model runs on
// one thread; the tests use their own instance from one thread.
unsafe impl Sync for SmallAlloc {}

impl SmallAlloc {
    pub const fn new() -> Self {
        SmallAlloc {
            free: UnsafeCell::new([ptr::null_mut(); CLASSES]),
        }
    }
}

impl Default for SmallAlloc {
    fn default() -> Self {
        Self::new()
    }
}

/// The size class of `layout`, if it is small.
fn class(layout: Layout) -> Option<usize> {
    (layout.size() > 0 && layout.size() <= STEP * CLASSES && layout.align() <= STEP)
        .then(|| (layout.size() - 1) / STEP)
}

/// The layout every block of class `c` is allocated with.
fn class_layout(c: usize) -> Layout {
    Layout::from_size_align((c + 1) * STEP, STEP).expect("small class layouts are valid")
}

unsafe impl GlobalAlloc for SmallAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class(layout) else {
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: one thread, and no reference to the lists outlives a call.
        let free = unsafe { &mut *self.free.get() };
        let head = free[c];
        if head.is_null() {
            return unsafe { System.alloc(class_layout(c)) };
        }
        // SAFETY: a free block starts with the next free block's address
        // (blocks are at least 16 bytes and 16-aligned).
        free[c] = unsafe { head.cast::<*mut u8>().read() };
        head
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(c) = class(layout) else {
            return unsafe { System.dealloc(block, layout) };
        };
        let free = unsafe { &mut *self.free.get() };
        // SAFETY: `block` came from `alloc` with this class and is no
        // longer used by its owner.
        unsafe { block.cast::<*mut u8>().write(free[c]) };
        free[c] = block;
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = match Layout::from_size_align(new_size, layout.align()) {
            Ok(l) => l,
            Err(_) => return ptr::null_mut(),
        };
        match (class(layout), class(new_layout)) {
            // Both large: dlmalloc may grow in place.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            // Same class: the block already has room.
            (Some(a), Some(b)) if a == b => block,
            _ => {
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks hold at least the smaller size.
                    unsafe {
                        ptr::copy_nonoverlapping(block, new, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_blocks_are_reused_by_class_and_large_ones_pass_through() {
        let a = SmallAlloc::new();
        let l18 = Layout::from_size_align(18, 1).unwrap();
        unsafe {
            let p = a.alloc(l18);
            assert!(!p.is_null());
            assert_eq!(p as usize % STEP, 0);
            p.write_bytes(7, 18);
            a.dealloc(p, l18);
            // The same class (17..=32 bytes) gets the same block back.
            let q = a.alloc(Layout::from_size_align(30, 8).unwrap());
            assert_eq!(p, q);
            // Another class does not.
            let r = a.alloc(Layout::from_size_align(40, 8).unwrap());
            assert_ne!(r, q);
            let big = Layout::from_size_align(4096, 8).unwrap();
            let b = a.alloc(big);
            assert!(!b.is_null());
            a.dealloc(b, big);
            a.dealloc(q, Layout::from_size_align(30, 8).unwrap());
            a.dealloc(r, Layout::from_size_align(40, 8).unwrap());
        }
    }

    #[test]
    fn realloc_keeps_the_bytes_across_classes() {
        let a = SmallAlloc::new();
        unsafe {
            let l = Layout::from_size_align(10, 1).unwrap();
            let mut p = a.alloc(l);
            for i in 0..10 {
                p.add(i).write(i as u8);
            }
            let mut size = 10;
            for new_size in [12, 100, 300, 5000, 200, 5] {
                p = a.realloc(p, Layout::from_size_align(size, 1).unwrap(), new_size);
                assert!(!p.is_null());
                for i in 0..size.min(new_size).min(5) {
                    assert_eq!(
                        p.add(i).read(),
                        i as u8,
                        "byte {i} after {size} → {new_size}"
                    );
                }
                size = new_size;
            }
            a.dealloc(p, Layout::from_size_align(size, 1).unwrap());
        }
    }

    #[test]
    fn over_aligned_and_zero_classes_are_not_small() {
        assert_eq!(class(Layout::from_size_align(8, 32).unwrap()), None);
        assert_eq!(class(Layout::from_size_align(257, 8).unwrap()), None);
        assert_eq!(class(Layout::from_size_align(256, 8).unwrap()), Some(15));
        assert_eq!(class(Layout::from_size_align(1, 1).unwrap()), Some(0));
    }
}
