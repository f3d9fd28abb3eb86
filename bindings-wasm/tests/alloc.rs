//! The wasm's allocator (`src/alloc.rs`: size classes with LIFO free lists over a bump
//! allocator) under Node (`wasm-bindgen-test`, run by scripts/web-test.sh). Every heap block of
//! the SDK in a page comes from it, so a block handed out twice or a realloc that loses bytes
//! would corrupt the queue or the journal silently: these tests hold it to what it promises.
#![cfg(target_arch = "wasm32")]

use std::alloc::{alloc, dealloc, realloc, Layout};

use wasm_bindgen_test::wasm_bindgen_test;

// The allocator's source, compiled into this test and installed the way src/lib.rs installs it.
// Not by linking the library: its raw exports would pull in the page's imports (module `r`), which
// wasm-bindgen-test's runner cannot provide.
#[path = "../src/alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOCATOR: alloc::SizeClasses = alloc::SizeClasses::new();

/// A small deterministic generator (xorshift64*), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Block {
    ptr: *mut u8,
    layout: Layout,
    fill: u8,
}

fn fill(b: &Block) {
    // SAFETY: `ptr` is a live block of `layout.size()` bytes.
    unsafe { std::ptr::write_bytes(b.ptr, b.fill, b.layout.size()) }
}

fn intact(b: &Block) -> bool {
    // SAFETY: as above.
    let bytes = unsafe { std::slice::from_raw_parts(b.ptr, b.layout.size()) };
    bytes.iter().all(|&x| x == b.fill)
}

#[wasm_bindgen_test]
fn live_blocks_are_aligned_disjoint_and_keep_their_bytes_through_frees_and_reallocs() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<Block> = Vec::new();
    for step in 0..10_000u32 {
        match rng.below(10) {
            // Allocate: sizes across many classes, alignments up to 64.
            0..=4 => {
                let max = if rng.below(16) == 0 { 20_000 } else { 300 };
                let size = 1 + rng.below(max) as usize;
                let align = 1usize << rng.below(7);
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero size.
                let ptr = unsafe { alloc(layout) };
                assert!(!ptr.is_null(), "step {step}: out of memory for {layout:?}");
                assert_eq!(
                    ptr as usize % align,
                    0,
                    "step {step}: {layout:?} misaligned"
                );
                let b = Block {
                    ptr,
                    layout,
                    fill: step as u8,
                };
                fill(&b);
                live.push(b);
            }
            // Free one (any order).
            5..=7 if !live.is_empty() => {
                let b = live.swap_remove(rng.below(live.len() as u64) as usize);
                assert!(intact(&b), "step {step}: a live block was overwritten");
                // SAFETY: allocated with this layout and not freed before.
                unsafe { dealloc(b.ptr, b.layout) };
            }
            // Grow or shrink one: its first bytes must survive, in the same class or another.
            _ if !live.is_empty() => {
                let i = rng.below(live.len() as u64) as usize;
                let old = &live[i];
                assert!(intact(old), "step {step}: a live block was overwritten");
                let new_size = 1 + rng.below(2 * old.layout.size() as u64 + 64) as usize;
                // SAFETY: a live block, its layout, a non-zero size.
                let ptr = unsafe { realloc(old.ptr, old.layout, new_size) };
                assert!(!ptr.is_null(), "step {step}: realloc to {new_size} failed");
                let kept = old.layout.size().min(new_size);
                // SAFETY: at least `kept` bytes are live at `ptr`.
                let bytes = unsafe { std::slice::from_raw_parts(ptr, kept) };
                assert!(
                    bytes.iter().all(|&x| x == old.fill),
                    "step {step}: realloc lost bytes"
                );
                let layout = Layout::from_size_align(new_size, old.layout.align()).unwrap();
                assert_eq!(
                    ptr as usize % layout.align(),
                    0,
                    "step {step}: realloc misaligned"
                );
                live[i] = Block {
                    ptr,
                    layout,
                    fill: step as u8,
                };
                fill(&live[i]);
            }
            _ => {}
        }
        if step % 2_000 == 1_999 {
            // No two live blocks overlap, and none was written by another's fill.
            let mut spans: Vec<(usize, usize)> = live
                .iter()
                .map(|b| (b.ptr as usize, b.ptr as usize + b.layout.size()))
                .collect();
            spans.sort_unstable();
            for w in spans.windows(2) {
                assert!(w[0].1 <= w[1].0, "step {step}: blocks {w:?} overlap");
            }
            assert!(
                live.iter().all(intact),
                "step {step}: a live block was overwritten"
            );
        }
    }
    for b in live {
        assert!(intact(&b));
        // SAFETY: allocated with this layout and not freed before.
        unsafe { dealloc(b.ptr, b.layout) };
    }
}

#[wasm_bindgen_test]
fn a_freed_block_serves_the_next_request_of_its_class_so_a_steady_state_never_grows_memory() {
    let pages = || core::arch::wasm32::memory_size(0);
    let layout = |size| Layout::from_size_align(size, 8).unwrap();
    // SAFETY (all blocks below): non-zero sizes; each freed once with the layout it was made with.
    // Growing within the class keeps the block (the allocator's own `realloc`, not a copy).
    let block = unsafe { alloc(layout(40)) };
    let grown = unsafe { realloc(block, layout(40), 64) };
    assert_eq!(
        grown, block,
        "a realloc within the 64-byte class moved the block"
    );
    unsafe { dealloc(grown, layout(64)) };
    let first = unsafe { alloc(layout(40)) };
    unsafe { dealloc(first, layout(40)) };
    let before = pages();
    let mut rng = Rng(7);
    for _ in 0..100_000 {
        // 33..=64 bytes: one class, so the block freed last is the one handed out next.
        let size = 33 + rng.below(32) as usize;
        let p = unsafe { alloc(layout(size)) };
        assert_eq!(
            p, first,
            "a {size}-byte request did not reuse the freed 64-byte block"
        );
        unsafe { dealloc(p, layout(size)) };
    }
    // A queue that grows and drains again (what a page does between deliveries).
    for _ in 0..20 {
        let blocks: Vec<(*mut u8, usize)> = (0..2_000)
            .map(|_| {
                let size = 1 + rng.below(200) as usize;
                (unsafe { alloc(layout(size)) }, size)
            })
            .collect();
        for (p, size) in blocks {
            unsafe { dealloc(p, layout(size)) };
        }
    }
    let grown = pages() - before;
    // The first round may take fresh pages; the next 19 rounds reuse them.
    assert!(
        grown <= 16,
        "memory grew by {grown} pages over 20 identical rounds"
    );
}
