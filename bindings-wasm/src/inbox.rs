//! Calls made in a tab that does not deliver ("follower") wait in that tab's
//! own inbox key until the delivering tab ("leader") feeds them to its Session.
//! Each key has one writer: the follower appends and trims its inbox, the
//! leader only reads it and stores how far it got as a Session checkpoint
//! (`apply(.., Some((inbox_key, n)))`), atomically with the ops it enqueued, so
//! an entry is enqueued exactly once even if a tab dies in between.
//!
//! Line format: `n \t kind \t at_ms \t a \t b \t user \n`. `user` is the user
//! ID in force in the tab when it made a link, token link or unlink (empty otherwise; a
//! line without it, from an older version, means "the journal's user").
//! Validated values hold no control characters (user IDs), only ASCII
//! alphanumerics, or base64url and `.` (ID tokens), so tab and newline never
//! occur inside a field.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    SetUserId(String),
    Link(String, Option<String>),
    /// A LINE ID token (a secret: only ever in this tab's inbox and the journal) and channel.
    LinkToken(String, Option<String>),
    Unlink(String, Option<String>),
    OptIn(bool),
    Flush,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub n: u64,
    pub at_ms: u64,
    pub kind: Kind,
    /// Link/token link/unlink: the user ID the calling tab had in force.
    pub user: Option<String>,
}

pub fn encode(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        repro_line_core::text::push_u64(&mut out, e.n);
        let (k, a, b) = match &e.kind {
            Kind::SetUserId(u) => ("u", u.as_str(), None),
            Kind::Link(l, c) => ("l", l.as_str(), c.as_deref()),
            Kind::LinkToken(t, c) => ("t", t.as_str(), c.as_deref()),
            Kind::Unlink(l, c) => ("x", l.as_str(), c.as_deref()),
            Kind::OptIn(true) => ("o", "1", None),
            Kind::OptIn(false) => ("o", "0", None),
            Kind::Flush => ("f", "", None),
        };
        out.push('\t');
        out.push_str(k);
        out.push('\t');
        repro_line_core::text::push_u64(&mut out, e.at_ms);
        out.push('\t');
        out.push_str(a);
        out.push('\t');
        out.push_str(b.unwrap_or(""));
        out.push('\t');
        out.push_str(e.user.as_deref().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// Every well-formed line; anything else is skipped. One pass over the bytes
/// (tab and newline are ASCII, so every cut is a char boundary): smaller in
/// wasm than `str::split` twice over.
pub fn decode(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    // The line's first six fields (absent ones stay empty) and how many it has.
    let mut f = [""; 6];
    let mut n = 0;
    let mut start = 0;
    let bytes = text.as_bytes();
    for i in 0..=bytes.len() {
        let c = bytes.get(i).copied().unwrap_or(b'\n');
        if c == b'\t' || c == b'\n' {
            if let (Some(slot), Some(s)) = (f.get_mut(n), text.get(start..i)) {
                *slot = s;
            }
            n += 1;
            start = i + 1;
            if c == b'\n' {
                if let Some(e) = decode_line(&f, n) {
                    out.push(e);
                }
                f = [""; 6];
                n = 0;
            }
        }
    }
    out
}

/// Line format above; `n` fields, at least four (`b` and `user` may be absent).
// Not inlined into `decode` (measured: 19 B gzip smaller).
#[inline(never)]
fn decode_line(f: &[&str; 6], n: usize) -> Option<Entry> {
    if n < 4 {
        return None;
    }
    let n = repro_line_core::text::parse_u64(f[0])?;
    let at_ms = repro_line_core::text::parse_u64(f[2])?;
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let a = f[3].to_owned();
    let b = opt(f[4]);
    let kind = match f[1].as_bytes() {
        b"u" => Kind::SetUserId(a),
        b"l" => Kind::Link(a, b),
        b"t" => Kind::LinkToken(a, b),
        b"x" => Kind::Unlink(a, b),
        b"o" => Kind::OptIn(a == "1"),
        b"f" => Kind::Flush,
        _ => return None,
    };
    Some(Entry {
        n,
        at_ms,
        kind,
        user: opt(f[5]),
    })
}
