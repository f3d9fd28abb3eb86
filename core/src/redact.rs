//! Redaction for logs and error messages: LINE User IDs are personal data, so
//! anything printed at default levels shows only a short prefix.

/// `U4af4980629a1…` → `U4af…(33 chars)`: enough to tell two IDs apart in a log,
/// not enough to message the user.
pub fn line_user_id(value: &str) -> String {
    // Byte loops (crate::text), not `chars().take().collect()`/`count()`: smaller in the wasm.
    let mut out = crate::text::prefix_chars(value, 4).to_owned();
    out.push_str("…(");
    crate::text::push_u64(&mut out, crate::text::char_count(value) as u64);
    out.push_str(" chars)");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefix_and_length_in_characters() {
        assert_eq!(
            super::line_user_id("U4af4980629a1b2c3d4e5f60718293a4b"),
            "U4af…(33 chars)"
        );
        assert_eq!(super::line_user_id("あいうえお"), "あいうえ…(5 chars)");
        assert_eq!(super::line_user_id(""), "…(0 chars)");
        assert_eq!(super::line_user_id("aé✓😀b"), "aé✓😀…(5 chars)");
    }
}
