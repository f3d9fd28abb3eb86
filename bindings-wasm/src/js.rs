//! The few Web APIs the driver uses, bound directly.
//!
//! Why hand-written bindings on the global scope instead of `web_sys::Window`:
//! `fetch`, `setTimeout` and `localStorage` are reached through `globalThis`,
//! so the same code runs in a page, a worker and Node (the unit and
//! conformance tests); every import that can throw is declared `catch`, so a
//! browser quirk becomes an `Err` here and never an exception in the page.
//! Fetch itself is the browser's: no HTTP stack is compiled into the wasm
//! (reqwest on wasm wraps the same `fetch` but adds ~100 KB of code).
//!
//! No js-sys: its `global`, `Reflect` and `Date` linked ~4 KB of its own (closure shims for
//! every typed array, futures); the two lookups below are a few lines of JS instead.

use wasm_bindgen::prelude::*;

// `localStorage` (`undefined` where missing, not an object, or access throws: sandboxed
// iframes, some private modes, Node) and the message of a thrown value (a string as is, else its
// string `message`, else "unknown error"); bundled into index.js by scripts/web-build.sh.
#[wasm_bindgen(
    inline_js = "export function ls(){try{const s=globalThis.localStorage;if(typeof s==='object'&&s)return s}catch(_){}}\
export function msg(e){if(typeof e==='string')return e;try{const m=Reflect.get(e,'message');if(typeof m==='string')return m}catch(_){}return'unknown error'}"
)]
extern "C" {
    fn ls() -> Option<Storage>;
    fn msg(e: &JsValue) -> String;
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    pub fn warn(msg: &str);

    /// A listener of npm/src/index.js, called with primitives (it builds the objects pages see):
    /// `op(opId, seq, kind, userId, lineUserId|"", channelId|"", status, code, message|reason|"")`
    /// and `op("", 0, "paused"|"resumed", reason|"", …)` on the event listener (the empty `opId`
    /// tells them apart); `state(type, leader, persistent, reason)` on the state listener
    /// (`persistent` means something for `"storage"` only, `reason` is absent from a
    /// `"storage"` report with `persistent` true).
    /// Called as `listener.call(null, ...)`; `catch`: an exception never stops delivery.
    #[derive(Clone)]
    pub type Listener;
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(method, catch, js_name = call)]
    pub fn op(
        this: &Listener,
        this_arg: &JsValue,
        op_id: &str,
        seq: f64,
        kind: &str,
        user_id: &str,
        line_user_id: &str,
        channel_id: &str,
        status: &str,
        code: u32,
        text: &str,
    ) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = call)]
    pub fn state(
        this: &Listener,
        this_arg: &JsValue,
        kind: &str,
        leader: bool,
        persistent: bool,
        reason: &str,
    ) -> Result<(), JsValue>;

    /// The driver's I/O in npm/src/index.js (`io`): `w(ms)` arms one timer (see `http::wait`),
    /// `f()` asks for the journal's end-of-task write,
    /// `p(ms, url, tokenHeader, token, retryHeader, retry, body, keepalive)` does one POST ended
    /// after `ms`. Results come back later through `Client.call`, never from within these calls.
    /// `w` takes a number only: it runs once or twice per call (a string or array argument is
    /// JS garbage each time) and cannot throw.
    #[derive(Clone)]
    pub type Io;
    #[wasm_bindgen(method, js_name = w)]
    pub fn wait(this: &Io, ms: f64);
    /// `f()`: `Client.call(STORE_WRITE)` at the end of this task (a microtask; cannot throw).
    /// The page's JS schedules it: a wasm-bindgen `Closure` for it cost ~0.5 KB of glue.
    #[wasm_bindgen(method, js_name = f)]
    pub fn write_later(this: &Io);
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(method, catch, js_name = p)]
    pub fn post(
        this: &Io,
        ms: f64,
        url: &str,
        token_header: &str,
        token: &str,
        retry_header: &str,
        retry: u32,
        body: &[u8],
        keepalive: bool,
    ) -> Result<(), JsValue>;

    /// `localStorage` (or anything with the same methods).
    #[derive(Clone)]
    pub type Storage;
    #[wasm_bindgen(method, catch, js_name = getItem)]
    pub fn get_item(this: &Storage, key: &str) -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(method, catch, js_name = setItem)]
    pub fn set_item(this: &Storage, key: &str, value: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = removeItem)]
    pub fn remove_item(this: &Storage, key: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    pub fn key(this: &Storage, index: u32) -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(method, getter, catch)]
    pub fn length(this: &Storage) -> Result<u32, JsValue>;

    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
}

/// `globalThis.localStorage`, or `None` where it is missing or access throws.
pub fn local_storage() -> Option<Storage> {
    ls()
}

pub fn now_ms() -> u64 {
    date_now() as u64
}

/// The message of a thrown value, for diagnostics.
pub fn message(e: &JsValue) -> String {
    msg(e)
}
