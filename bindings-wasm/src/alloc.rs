//! The wasm's allocator: power-of-two size classes, each a LIFO free list, over lol_alloc's
//! bump allocator for fresh blocks.
//!
//! Why not lol_alloc's `FreeListAllocator` (used before): its one free list is searched linearly,
//! so with thousands of queued calls (each a few heap blocks) an allocation's cost grew with
//! fragmentation and made the per-call tail (issue 15: p99 with 1,000 calls queued). Here every
//! allocation and free is O(1); the price is up to 2× per block, and a freed block is only reused
//! by its own class (the journal's `Vec`s grow by doubling, so they stay in step).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;

use lol_alloc::LeakingAllocator;

/// Blocks of 2^2 .. 2^31 bytes (a block holds at least the free list's next pointer).
const CLASSES: usize = 32;
/// Fresh blocks are aligned to their size up to this, so any block of a class serves any
/// request of that class with an alignment up to it.
const MAX_SHARED_ALIGN: usize = 16;

pub struct SizeClasses {
    fresh: LeakingAllocator,
    free: UnsafeCell<[*mut u8; CLASSES]>,
}

impl SizeClasses {
    pub const fn new() -> Self {
        SizeClasses {
            fresh: LeakingAllocator::new(),
            free: UnsafeCell::new([std::ptr::null_mut(); CLASSES]),
        }
    }
}

/// The class of `layout` and its block size.
fn class(layout: Layout) -> (usize, usize) {
    let size = layout
        .size()
        .max(layout.align())
        .max(std::mem::size_of::<usize>())
        .next_power_of_two();
    (size.trailing_zeros() as usize, size)
}

// SAFETY: built for wasm32-unknown-unknown without threads (no `atomics` target feature): the
// page's one thread is the only caller, so the cells are never used concurrently.
unsafe impl Sync for SizeClasses {}

// SAFETY: single-threaded (above); a free block's first word is the next free block of its class.
unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (c, size) = class(layout);
        if c >= CLASSES {
            return std::ptr::null_mut();
        }
        let free = &mut *self.free.get();
        let head = free[c];
        if !head.is_null() && layout.align() <= MAX_SHARED_ALIGN {
            free[c] = *(head as *mut *mut u8);
            return head;
        }
        let align = layout.align().max(size.min(MAX_SHARED_ALIGN));
        match Layout::from_size_align(size, align) {
            Ok(block) => self.fresh.alloc(block),
            Err(_) => std::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let (c, _) = class(layout);
        let free = &mut *self.free.get();
        *(ptr as *mut *mut u8) = free[c];
        free[c] = ptr;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Same class: the block already has room.
        if let Ok(new) = Layout::from_size_align(new_size, layout.align()) {
            if class(new).0 == class(layout).0 {
                return ptr;
            }
            let p = self.alloc(new);
            if !p.is_null() {
                std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            return p;
        }
        std::ptr::null_mut()
    }
}
