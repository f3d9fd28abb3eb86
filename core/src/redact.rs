//! Redaction for logs and error messages: LINE User IDs are personal data, so
//! anything printed at default levels shows only a short prefix.

/// `U4af4980629a1…` → `U4af…(33 chars)`: enough to tell two IDs apart in a log,
/// not enough to message the user.
pub fn line_user_id(value: &str) -> String {
    let prefix: String = value.chars().take(4).collect();
    format!("{prefix}…({} chars)", value.chars().count())
}
