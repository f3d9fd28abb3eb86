//! The validator's rules: one id, one severity and one meaning each. The README's
//! rule table is generated from [`Rule::ALL`] (see `rules_table_markdown`), so
//! the docs and the code cannot drift apart.

use serde::Serialize;

/// Repro's limit per import file. "500 MB" is read as 500,000,000 bytes: the
/// stricter reading, so a file we accept is accepted under either.
pub const MAX_FILE_BYTES: u64 = 500_000_000;

/// How long a shown value may get before it is cut (in characters).
pub const VALUE_DISPLAY_CHARS: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Every check the validator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    FileEmpty,
    FileTooLarge,
    FileNoRows,
    EncodingBom,
    EncodingUtf8,
    HeaderInvalid,
    RowBlank,
    RowColumns,
    CsvQuote,
    LineEndingInconsistent,
    LineUserIdEmpty,
    LineUserIdInvalid,
    LineUserIdNotLowerHex,
    LineUserIdDuplicate,
    LineUserIdConflict,
    UserIdEmpty,
    UserIdTooLong,
    UserIdControl,
    UserIdWhitespace,
}

impl Rule {
    pub const ALL: [Rule; 19] = [
        Rule::FileEmpty,
        Rule::FileTooLarge,
        Rule::FileNoRows,
        Rule::EncodingBom,
        Rule::EncodingUtf8,
        Rule::HeaderInvalid,
        Rule::RowBlank,
        Rule::RowColumns,
        Rule::CsvQuote,
        Rule::LineEndingInconsistent,
        Rule::LineUserIdEmpty,
        Rule::LineUserIdInvalid,
        Rule::LineUserIdNotLowerHex,
        Rule::LineUserIdDuplicate,
        Rule::LineUserIdConflict,
        Rule::UserIdEmpty,
        Rule::UserIdTooLong,
        Rule::UserIdControl,
        Rule::UserIdWhitespace,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::FileEmpty => "file.empty",
            Rule::FileTooLarge => "file.too_large",
            Rule::FileNoRows => "file.no_rows",
            Rule::EncodingBom => "encoding.bom",
            Rule::EncodingUtf8 => "encoding.utf8",
            Rule::HeaderInvalid => "header.invalid",
            Rule::RowBlank => "row.blank",
            Rule::RowColumns => "row.columns",
            Rule::CsvQuote => "csv.quote",
            Rule::LineEndingInconsistent => "line_ending.inconsistent",
            Rule::LineUserIdEmpty => "line_user_id.empty",
            Rule::LineUserIdInvalid => "line_user_id.invalid",
            Rule::LineUserIdNotLowerHex => "line_user_id.not_lower_hex",
            Rule::LineUserIdDuplicate => "line_user_id.duplicate",
            Rule::LineUserIdConflict => "line_user_id.conflict",
            Rule::UserIdEmpty => "user_id.empty",
            Rule::UserIdTooLong => "user_id.too_long",
            Rule::UserIdControl => "user_id.control",
            Rule::UserIdWhitespace => "user_id.whitespace",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::FileNoRows
            | Rule::LineUserIdNotLowerHex
            | Rule::LineUserIdDuplicate
            | Rule::UserIdEmpty
            | Rule::UserIdWhitespace => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// One sentence for the rule table.
    pub fn meaning(self) -> &'static str {
        match self {
            Rule::FileEmpty => "The file has no bytes; the first line must be the header.",
            Rule::FileTooLarge => "The file is over 500 MB (500,000,000 bytes); split it with `csv fix --split-mb 500`.",
            Rule::FileNoRows => "Only a header, no rows: the import would do nothing.",
            Rule::EncodingBom => "The file starts with a byte order mark; Repro wants UTF-8 without BOM (`csv fix` strips it).",
            Rule::EncodingUtf8 => "A field is not valid UTF-8 (reported instead of that field's other rules).",
            Rule::HeaderInvalid => "Line 1 is not exactly `line_user_id,user_id` (Format 1) or `line_user_id` (Format 2), or not the one `--format` asks for.",
            Rule::RowBlank => "An empty line (`csv fix` drops it).",
            Rule::RowColumns => "A row has a different number of fields than the header (2 for Format 1, 1 for Format 2).",
            Rule::CsvQuote => "RFC 4180 quoting broken: a quote inside an unquoted field, text after a closing quote, or a quoted field that never closes.",
            Rule::LineEndingInconsistent => "A row ends with CRLF where the header ends with LF, or the other way round (`csv fix` normalises to LF).",
            Rule::LineUserIdEmpty => "`line_user_id` is empty; it is required.",
            Rule::LineUserIdInvalid => "`line_user_id` is not `U` followed by 32 ASCII letters or digits (33 characters); the message says when it looks like a display name or an @-ID.",
            Rule::LineUserIdNotLowerHex => "`line_user_id` passes the rule but is not `U` + 32 lowercase hex digits, the form LINE issues: likely mangled.",
            Rule::LineUserIdDuplicate => "The same `line_user_id` (with the same `user_id`) is already on an earlier line (`csv fix` drops the repeat).",
            Rule::LineUserIdConflict => "The same `line_user_id` is on an earlier line with a different `user_id`: which one is right cannot be known.",
            Rule::UserIdEmpty => "Format 1 row with an empty `user_id`: the LINE ID is imported without a user ID (broadcast only).",
            Rule::UserIdTooLong => "`user_id` is over 191 characters (Unicode scalar values, not bytes).",
            Rule::UserIdControl => "`user_id` contains a control character (including a line break inside quotes).",
            Rule::UserIdWhitespace => "`user_id` starts or ends with a space (ASCII or full-width); Repro keeps it, so it will not match the user ID your app sets.",
        }
    }

    /// Rules `csv fix` repairs itself; every other error rejects the row.
    pub fn fixed_by_fix(self) -> bool {
        matches!(
            self,
            Rule::EncodingBom | Rule::LineEndingInconsistent | Rule::FileTooLarge | Rule::RowBlank
        )
    }

    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// The CSV column a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Column {
    #[serde(rename = "line_user_id")]
    LineUserId,
    #[serde(rename = "user_id")]
    UserId,
}

impl Column {
    pub fn name(self) -> &'static str {
        match self {
            Column::LineUserId => "line_user_id",
            Column::UserId => "user_id",
        }
    }

    pub fn from_index(i: usize) -> Option<Column> {
        match i {
            0 => Some(Column::LineUserId),
            1 => Some(Column::UserId),
            _ => None,
        }
    }
}

/// One broken rule at one place. `line` is the physical line (1 = header) where
/// the record starts; 0 means the whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub line: u64,
    pub column: Option<Column>,
    /// The offending value, cut to [`VALUE_DISPLAY_CHARS`] characters, control
    /// characters escaped so it is safe to print.
    pub value: String,
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    pub fn new(
        line: u64,
        column: Option<Column>,
        rule: Rule,
        value: String,
        message: String,
    ) -> Self {
        Finding {
            line,
            column,
            value,
            rule,
            severity: rule.severity(),
            message,
        }
    }

    /// The `--errors-out` row: `line,column,value,rule,severity`.
    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{},{},{}\n",
            self.line,
            self.column.map(Column::name).unwrap_or(""),
            csv_quote(&self.value),
            self.rule.id(),
            self.severity.as_str()
        )
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match (self.line, self.column) {
            (0, _) => "file".to_string(),
            (l, Some(c)) => format!("line {l}, {}", c.name()),
            (l, None) => format!("line {l}"),
        };
        write!(
            f,
            "{place}: {} [{}] {}",
            self.severity.as_str(),
            self.rule.id(),
            self.message
        )?;
        if !self.value.is_empty() {
            write!(f, ": \"{}\"", self.value)?;
        }
        Ok(())
    }
}

/// The header of the `--errors-out` file.
pub const ERRORS_CSV_HEADER: &str = "line,column,value,rule,severity\n";

/// RFC 4180 quoting for a field we write.
pub fn csv_quote(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// A value as shown in findings: lossy UTF-8, control characters escaped
/// (a CSV from elsewhere must not drive the terminal), cut to a few characters.
pub fn display_value(bytes: &[u8], known_longer: bool) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut cut = known_longer;
    for (n, c) in text.chars().enumerate() {
        if n == VALUE_DISPLAY_CHARS {
            cut = true;
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut {
        out.push('…');
    }
    out
}

/// The rule table in Markdown, as the README shows it.
pub fn rules_table_markdown() -> String {
    let mut s = String::from("| rule | severity | meaning |\n| --- | --- | --- |\n");
    for r in Rule::ALL {
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            r.id(),
            r.severity().as_str(),
            r.meaning()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip() {
        let mut ids: Vec<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
        for r in Rule::ALL {
            assert_eq!(Rule::from_id(r.id()), Some(r));
        }
    }

    #[test]
    fn display_value_escapes_and_cuts() {
        assert_eq!(display_value(b"a\nb", false), "a\\nb");
        assert_eq!(display_value(b"\x1b[31m", false), "\\u{1b}[31m");
        let long = "x".repeat(100);
        let shown = display_value(long.as_bytes(), false);
        assert_eq!(shown.chars().count(), VALUE_DISPLAY_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(display_value(b"ab\xff", false), "ab\u{fffd}");
    }

    #[test]
    fn csv_row_quotes() {
        let f = Finding::new(
            3,
            Some(Column::UserId),
            Rule::UserIdControl,
            "a,\"b".into(),
            "m".into(),
        );
        assert_eq!(f.csv_row(), "3,user_id,\"a,\"\"b\",user_id.control,error\n");
    }

    #[test]
    fn readme_table_is_current() {
        let t = rules_table_markdown();
        for r in Rule::ALL {
            assert!(t.contains(r.id()));
        }
        assert!(
            include_str!("../../README.md").contains(&t),
            "the rule table in the project README is out of date; it should read:\n{t}"
        );
    }
}
