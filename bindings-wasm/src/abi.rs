//! The wasm's exports, numbers only (npm/src/wasm.js is the other side; `js.rs` the imports).
//!
//! - `b(len) -> ptr`: the scratch buffer, at least `len` bytes. JS writes a call's strings there
//!   (UTF-8, back to back) and passes their byte lengths (-1: none); results come back the same
//!   way (written there, their length returned; JS reads them at `b(0)`).
//! - `c(4 lengths, memory, leader, slot, 6 numbers) -> h`: a client (`Client::new`'s arguments);
//!   `h > 0` its handle, `h < 0` the `"code:message"` error of `-h` bytes in the buffer.
//! - `k(h, what, alen, blen) -> n`: `Client::call`; 0, or the error's length in the buffer.
//! - `l(h)`: `Client::listen` (JS has the handle's listeners and I/O by then).
//! - `q(h, what) -> n`: `Client::get`: a number, or a string's length (the string in the buffer).
//!
//! Strings are copied out of the buffer before anything else runs: a listener the call reaches
//! may call in again and overwrite it.

use std::cell::RefCell;

use crate::{js, Client, Options};

/// Single-threaded state (wasm32 without threads): a plain cell, smaller than `thread_local!`.
struct Local<T>(RefCell<T>);

// SAFETY: built for wasm32-unknown-unknown without threads: the page's one thread is the only user.
unsafe impl<T> Sync for Local<T> {}

static BUF: Local<Vec<u8>> = Local(RefCell::new(Vec::new()));
/// Clients by handle - 1. Never freed: a page keeps every client it set up (a second `setup()`
/// shuts the first one down, whose getters still answer), so the ABI has no `free` and each
/// client is leaked for the page's lifetime (`&'static`: no reference count, no drop code).
static CLIENTS: Local<Vec<&'static Client>> = Local(RefCell::new(Vec::new()));

/// The scratch buffer, grown to at least `len` bytes.
#[cfg_attr(target_arch = "wasm32", export_name = "b")]
pub extern "C" fn buf(len: usize) -> *mut u8 {
    let mut b = BUF.0.borrow_mut();
    if b.len() < len {
        b.resize(len, 0);
    }
    b.as_mut_ptr()
}

/// `bytes` the loader wrote as a string.
fn utf8(bytes: &[u8]) -> String {
    // SAFETY: only the loader writes strings into the buffer, with TextEncoder.encodeInto, which
    // writes whole UTF-8 sequences only (a lone surrogate becomes U+FFFD); the lengths are its
    // `written` counts. Unchecked as in wasm-bindgen's own string ABI (-71 B gzip of wasm).
    unsafe { String::from_utf8_unchecked(bytes.to_vec()) }
}

/// The first `len` bytes of the buffer as a string (what an import or the page wrote there).
pub fn take_buf(len: usize) -> String {
    let b = BUF.0.borrow();
    utf8(&b[..len.min(b.len())])
}

/// Puts `s` in the buffer; its length for the page.
pub(crate) fn give(s: &str) -> u32 {
    let mut b = BUF.0.borrow_mut();
    b.clear();
    b.extend_from_slice(s.as_bytes());
    s.len() as u32
}

/// The strings of a call, read from the buffer in order by their lengths (-1: `None`).
struct Args(usize);

impl Args {
    fn next(&mut self, len: i32) -> Option<String> {
        let len = usize::try_from(len).ok()?;
        let at = self.0;
        self.0 += len;
        let b = BUF.0.borrow();
        Some(utf8(b.get(at..at + len).unwrap_or_default()))
    }
}

fn client(h: u32) -> Option<&'static Client> {
    let clients = CLIENTS.0.borrow();
    clients.get((h as usize).wrapping_sub(1)).cloned()
}

#[allow(clippy::too_many_arguments)]
#[cfg_attr(target_arch = "wasm32", export_name = "c")]
pub extern "C" fn create(
    sdk_token: i32,
    endpoint: i32,
    default_channel: i32,
    namespace: i32,
    memory: u32,
    leader: u32,
    slot: u32,
    storage_budget_bytes: f64,
    request_timeout_ms: f64,
    debounce_ms: f64,
    max_batch_ops: f64,
    max_queue_ops: f64,
    max_op_age_ms: f64,
) -> i32 {
    let mut a = Args(0);
    // NaN: the default (npm/src/index.js passes a page's own NaN as -1, which the rules treat as
    // NaN was: 0).
    let options = Options {
        sdk_token: a.next(sdk_token).unwrap_or_default(),
        endpoint: a.next(endpoint).unwrap_or_default(),
        default_channel: a.next(default_channel),
        namespace: a.next(namespace),
        memory: memory != 0,
        leader: leader != 0,
        slot,
        storage_budget_bytes,
        request_timeout_ms,
        debounce_ms,
        max_batch_ops,
        max_queue_ops,
        max_op_age_ms,
    };
    match Client::open(options) {
        Ok(c) => {
            let mut clients = CLIENTS.0.borrow_mut();
            clients.push(Box::leak(Box::new(c)));
            clients.len() as i32
        }
        Err(e) => -(give(&e) as i32),
    }
}

#[cfg_attr(target_arch = "wasm32", export_name = "k")]
pub extern "C" fn call(h: u32, what: u32, a: i32, b: i32) -> u32 {
    let mut args = Args(0);
    let a = args.next(a).unwrap_or_default();
    let b = args.next(b);
    match client(h).map(|c| c.call(what, &a, b)) {
        Some(Err(e)) => give(&e),
        _ => 0,
    }
}

#[cfg_attr(target_arch = "wasm32", export_name = "l")]
pub extern "C" fn listen(h: u32) {
    if let Some(c) = client(h) {
        c.listen(js::Page(h));
    }
}

#[cfg_attr(target_arch = "wasm32", export_name = "q")]
pub extern "C" fn get(h: u32, what: u32) -> u32 {
    // An unknown handle: 0, and "" (nothing to read).
    client(h).map_or(0, |c| c.get(what))
}

/// uuid's v4 randomness on wasm32 (getrandom's `custom` backend): the page's
/// crypto.getRandomValues through the `rnd` import. Needed to link uuid's `rng-getrandom`
/// (core's `Session::open`); nothing in this crate calls it since sessions are seeded by
/// `js::random_u128`, which reports a missing `crypto` as an error instead of uuid's panic.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), getrandom::Error> {
    if js::rnd(dest, len) == 0 {
        Ok(())
    } else {
        Err(getrandom::Error::UNSUPPORTED)
    }
}
