//! A direct-mapped fast path for the hot calls (`linkLineID`, `setUserID`) from Kotlin.
//!
//! Through the generated bindings one call costs ~50 µs on the JVM: each string becomes a
//! `RustBuffer` through extra native calls and every call allocates a JNA `RustCallStatus`
//! structure. Here the arguments are byte arrays and the result an `i32` (JNA direct
//! mapping copies the arrays; nothing else is allocated). On any failure nothing was
//! accepted and the wrapper repeats the call through the generated bindings, which throw
//! the typed exception (or succeed, for a transient storage error): one code path decides.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::presetup::ReproLineSdk;

/// The call was accepted.
const ACCEPTED: i32 = 0;
/// Not accepted: repeat it through the generated bindings for the typed error.
const RETRY_SLOW: i32 = 1;

#[uniffi::export]
impl ReproLineSdk {
    /// A handle for the fast path: one strong reference, never released (the wrapper's SDK
    /// object lives as long as the process).
    pub fn fast_handle(self: Arc<Self>) -> u64 {
        Arc::into_raw(self) as usize as u64
    }
}

/// `len < 0` is `None`; bytes that are not UTF-8 go the slow way (which rejects them).
///
/// # Safety
/// `ptr` points to `len` readable bytes when `len >= 0`.
unsafe fn text(ptr: *const u8, len: i32) -> Result<Option<String>, ()> {
    let Ok(len) = usize::try_from(len) else {
        return Ok(None);
    };
    if ptr.is_null() {
        return Err(());
    }
    let bytes = std::slice::from_raw_parts(ptr, len);
    std::str::from_utf8(bytes)
        .map(|s| Some(s.to_owned()))
        .map_err(drop)
}

/// # Safety
/// `handle` comes from [`ReproLineSdk::fast_handle`].
unsafe fn run(handle: u64, f: impl FnOnce(&ReproLineSdk) -> Result<(), ()>) -> i32 {
    let sdk = &*(handle as usize as *const ReproLineSdk);
    match catch_unwind(AssertUnwindSafe(|| f(sdk))) {
        Ok(Ok(())) => ACCEPTED,
        _ => RETRY_SLOW,
    }
}

/// `linkLineID(lineUserId, lineChannelId)`; `channel_len < 0` for no channel.
///
/// # Safety
/// `handle` comes from [`ReproLineSdk::fast_handle`]; each pointer points to its `len`
/// readable bytes (when `len >= 0`).
#[no_mangle]
pub unsafe extern "C" fn reproline_fast_link_line_id(
    handle: u64,
    line_user_id: *const u8,
    line_user_id_len: i32,
    channel_id: *const u8,
    channel_len: i32,
) -> i32 {
    run(handle, |sdk| {
        let line = text(line_user_id, line_user_id_len)?.ok_or(())?;
        let channel = text(channel_id, channel_len)?;
        sdk.link_line_id(line, channel).map_err(drop)
    })
}

/// `setUserID(userId)`.
///
/// # Safety
/// As [`reproline_fast_link_line_id`].
#[no_mangle]
pub unsafe extern "C" fn reproline_fast_set_user_id(
    handle: u64,
    user_id: *const u8,
    user_id_len: i32,
) -> i32 {
    run(handle, |sdk| {
        let user = text(user_id, user_id_len)?.ok_or(())?;
        sdk.set_user_id(user).map_err(drop)
    })
}
