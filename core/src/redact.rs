//! Redaction for logs and error messages: LINE User IDs are personal data, so
//! anything printed at default levels shows only a short prefix.

/// `U4af4980629a1…` → `U4af…(33 chars)`: enough to tell two IDs apart in a log,
/// not enough to message the user.
pub fn line_user_id(value: &str) -> String {
    let mut out: String = value.chars().take(4).collect();
    out.push_str("…(");
    crate::text::push_u64(&mut out, value.chars().count() as u64);
    out.push_str(" chars)");
    out
}
