//! `uniffi-bindgen`, built from the same uniffi version as `repro-line-ffi`.
//! Usage: `cargo run -p repro-line-uniffi-bindgen -- generate --library <lib> --language kotlin --out-dir <dir>`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
