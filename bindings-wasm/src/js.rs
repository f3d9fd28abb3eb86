//! The few Web APIs the driver uses, as plain wasm imports (module `r`, implemented by the
//! hand-written loader npm/src/wasm.js; see `abi.rs` for the exports).
//!
//! Why raw imports instead of wasm-bindgen: its runtime and JS glue cost the page ~4–5 KB gzip
//! for a boundary of a few numbers and strings. Strings go to JS as `(ptr, len)` of UTF-8 in
//! this module's memory; strings from JS come back through the scratch buffer (`abi::buf`): the
//! import writes them there and returns their length. `fetch`, `setTimeout` and `localStorage` are
//! reached through `globalThis`, so the same code runs in a page, a worker and Node; every import
//! that can throw catches in JS and returns a status, so a browser quirk becomes an `Err` here and
//! never an exception in the page. Fetch itself is the browser's: no HTTP stack in the wasm.
//!
//! Status of the imports that can fail: `>= 0` success (a length where a string comes back),
//! `-1` JS `null` (`getItem`, `key`), `<= -2` the call threw and its message (a string as is,
//! else its string `message`, else "unknown error") is the `-2 - r` bytes in the buffer.

use crate::abi::take_buf;

/// What a failed import threw: its message (for the state callback's reasons and diagnostics).
pub type JsError = String;

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "r")]
extern "C" {
    // `globalThis.localStorage` as a storage handle (0: missing, not an object, or access throws).
    fn ls() -> u32;
    fn gi(s: u32, k: *const u8, kl: usize) -> i32;
    fn si(s: u32, k: *const u8, kl: usize, v: *const u8, vl: usize) -> i32;
    fn ri(s: u32, k: *const u8, kl: usize) -> i32;
    fn ky(s: u32, i: u32) -> i32;
    fn ln(s: u32) -> i32;
    fn now() -> f64;
    // Fills `len` bytes from crypto.getRandomValues; 0 on success.
    pub(crate) fn rnd(p: *mut u8, len: usize) -> i32;
    // The event listener of client `h` (see `op`), its state listener (see `state`) and its I/O.
    #[allow(clippy::too_many_arguments)]
    fn op(
        h: u32,
        id: *const u8,
        idl: usize,
        seq: f64,
        kind: *const u8,
        kindl: usize,
        user: *const u8,
        userl: usize,
        line: *const u8,
        linel: usize,
        channel: *const u8,
        channell: usize,
        status: *const u8,
        statusl: usize,
        code: u32,
        text: *const u8,
        textl: usize,
    );
    fn st(
        h: u32,
        kind: *const u8,
        kindl: usize,
        leader: u32,
        persistent: u32,
        r: *const u8,
        rl: usize,
    );
    fn w(h: u32, ms: f64);
    fn f(h: u32);
    #[allow(clippy::too_many_arguments)]
    fn p(
        h: u32,
        ms: f64,
        url: *const u8,
        urll: usize,
        th: *const u8,
        thl: usize,
        token: *const u8,
        tokenl: usize,
        rh: *const u8,
        rhl: usize,
        retry: u32,
        body: *const u8,
        bodyl: usize,
        keepalive: u32,
    ) -> i32;
}

// Outside wasm32 (the native unit tests of tabs.rs, clippy on the host) there is no page: no
// localStorage (a client runs in memory), no listeners or I/O, the system clock.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments, clippy::missing_safety_doc)]
mod host {
    pub unsafe fn ls() -> u32 {
        0
    }
    // The host's randomness through uuid's v4 (the OS RNG), 16 bytes at a time.
    pub unsafe fn rnd(p: *mut u8, len: usize) -> i32 {
        for chunk in std::slice::from_raw_parts_mut(p, len).chunks_mut(16) {
            chunk.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..chunk.len()]);
        }
        0
    }
    pub unsafe fn gi(_: u32, _: *const u8, _: usize) -> i32 {
        -1
    }
    pub unsafe fn si(_: u32, _: *const u8, _: usize, _: *const u8, _: usize) -> i32 {
        0
    }
    pub unsafe fn ri(_: u32, _: *const u8, _: usize) -> i32 {
        0
    }
    pub unsafe fn ky(_: u32, _: u32) -> i32 {
        -1
    }
    pub unsafe fn ln(_: u32) -> i32 {
        0
    }
    pub unsafe fn now() -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_millis() as f64)
    }
    pub unsafe fn op(
        _: u32,
        _: *const u8,
        _: usize,
        _: f64,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: u32,
        _: *const u8,
        _: usize,
    ) {
    }
    pub unsafe fn st(_: u32, _: *const u8, _: usize, _: u32, _: u32, _: *const u8, _: usize) {}
    pub unsafe fn w(_: u32, _: f64) {}
    pub unsafe fn f(_: u32) {}
    pub unsafe fn p(
        _: u32,
        _: f64,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: u32,
        _: *const u8,
        _: usize,
        _: u32,
    ) -> i32 {
        0
    }
}
#[cfg(not(target_arch = "wasm32"))]
use host::*;

/// An import's status as a `Result`: `Ok(None)` for JS `null`, `Ok(Some(len))` otherwise.
fn status(r: i32) -> Result<Option<usize>, JsError> {
    match r {
        -1 => Ok(None),
        r if r < -1 => Err(take_buf((-2 - r) as usize)),
        r => Ok(Some(r as usize)),
    }
}

/// An import's status as success or what it threw.
fn done(r: i32) -> Result<(), JsError> {
    status(r).map(drop)
}

/// A string an import returned (in the buffer), or JS `null`, or what it threw.
fn text(r: i32) -> Result<Option<String>, JsError> {
    Ok(status(r)?.map(take_buf))
}

/// `localStorage` (or anything with the same methods), by the loader's handle for it.
#[derive(Clone, Copy)]
pub struct Storage(u32);

impl Storage {
    pub fn get_item(&self, key: &str) -> Result<Option<String>, JsError> {
        // SAFETY (every import call below): the pointers are live Rust strings of the given lengths;
        // the loader only reads them during the call.
        let r = unsafe { gi(self.0, key.as_ptr(), key.len()) };
        text(r)
    }

    pub fn set_item(&self, key: &str, value: &str) -> Result<(), JsError> {
        let r = unsafe { si(self.0, key.as_ptr(), key.len(), value.as_ptr(), value.len()) };
        done(r)
    }

    pub fn remove_item(&self, key: &str) -> Result<(), JsError> {
        let r = unsafe { ri(self.0, key.as_ptr(), key.len()) };
        done(r)
    }

    pub fn key(&self, index: u32) -> Result<Option<String>, JsError> {
        let r = unsafe { ky(self.0, index) };
        text(r)
    }

    pub fn length(&self) -> Result<u32, JsError> {
        let r = unsafe { ln(self.0) };
        Ok(status(r)?.unwrap_or(0) as u32)
    }
}

/// `globalThis.localStorage`, or `None` where it is missing or access throws.
pub fn local_storage() -> Option<Storage> {
    // SAFETY: no arguments.
    let s = unsafe { ls() };
    (s != 0).then_some(Storage(s))
}

/// 128 bits from crypto.getRandomValues (a Session's seed: the device ID and the retry jitter),
/// or `None` where it is missing or throws.
pub fn random_u128() -> Option<u128> {
    let mut b = [0u8; 16];
    // SAFETY: a live buffer of the given length; the loader only writes it during the call.
    let r = unsafe { rnd(b.as_mut_ptr(), b.len()) };
    (r == 0).then(|| u128::from_le_bytes(b))
}

pub fn now_ms() -> u64 {
    // SAFETY: no arguments.
    unsafe { now() as u64 }
}

/// The page's side of one client (by its handle): listeners and I/O, given by `Client.listen` in
/// npm/src/wasm.js. The listeners are called with primitives (npm/src/index.js builds the objects
/// pages see): `op(opId, seq, kind, userId, lineUserId|"", channelId|"", status, code,
/// message|reason|"")` and `op("", 0, "paused"|"resumed", reason|"", …)` on the event listener (the
/// empty `opId` tells them apart); `state(type, leader, persistent, reason)` on the state listener
/// (`persistent` means something for `"storage"` only). An exception in a listener is caught by the
/// loader: it never stops delivery.
#[derive(Clone, Copy)]
pub struct Page(pub u32);

impl Page {
    #[allow(clippy::too_many_arguments)]
    pub fn op(
        &self,
        id: &str,
        seq: f64,
        kind: &str,
        user: &str,
        line: &str,
        channel: &str,
        status: &str,
        code: u32,
        text: &str,
    ) {
        // SAFETY: as in `Storage`.
        unsafe {
            op(
                self.0,
                id.as_ptr(),
                id.len(),
                seq,
                kind.as_ptr(),
                kind.len(),
                user.as_ptr(),
                user.len(),
                line.as_ptr(),
                line.len(),
                channel.as_ptr(),
                channel.len(),
                status.as_ptr(),
                status.len(),
                code,
                text.as_ptr(),
                text.len(),
            )
        }
    }

    pub fn state(&self, kind: &str, leader: bool, persistent: bool, reason: &str) {
        // SAFETY: as in `Storage`.
        unsafe {
            st(
                self.0,
                kind.as_ptr(),
                kind.len(),
                leader as u32,
                persistent as u32,
                reason.as_ptr(),
                reason.len(),
            )
        }
    }

    /// `io.w(ms)`: arms one timer that calls `TICK` after `ms` (see `http::wait`); cannot throw.
    pub fn wait(&self, ms: f64) {
        // SAFETY: numbers only.
        unsafe { w(self.0, ms) }
    }

    /// `io.f()`: `Client.call(STORE_WRITE)` at the end of this task (a microtask; cannot throw).
    pub fn write_later(&self) {
        // SAFETY: numbers only.
        unsafe { f(self.0) }
    }

    /// `io.p(ms, url, tokenHeader, token, retryHeader, retry, body, keepalive)`: one POST ended
    /// after `ms`; its outcome comes back later through `Client.call`. `Err`: it threw.
    #[allow(clippy::too_many_arguments)]
    pub fn post(
        &self,
        ms: f64,
        url: &str,
        token_header: &str,
        token: &str,
        retry_header: &str,
        retry: u32,
        body: &[u8],
        keepalive: bool,
    ) -> Result<(), JsError> {
        // SAFETY: as in `Storage` (the loader copies the body during the call).
        let r = unsafe {
            p(
                self.0,
                ms,
                url.as_ptr(),
                url.len(),
                token_header.as_ptr(),
                token_header.len(),
                token.as_ptr(),
                token.len(),
                retry_header.as_ptr(),
                retry_header.len(),
                retry,
                body.as_ptr(),
                body.len(),
                keepalive as u32,
            )
        };
        done(r)
    }
}
