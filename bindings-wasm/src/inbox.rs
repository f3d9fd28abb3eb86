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

/// Every well-formed line; anything else is skipped.
pub fn decode(text: &str) -> Vec<Entry> {
    text.split('\n').filter_map(decode_line).collect()
}

fn decode_line(line: &str) -> Option<Entry> {
    let mut f = line.split('\t');
    let n = repro_line_core::text::parse_u64(f.next()?)?;
    let k = f.next()?;
    let at_ms = repro_line_core::text::parse_u64(f.next()?)?;
    let a = f.next()?.to_owned();
    let b = f.next().filter(|b| !b.is_empty()).map(str::to_owned);
    let user = f.next().filter(|u| !u.is_empty()).map(str::to_owned);
    let kind = match k {
        "u" => Kind::SetUserId(a),
        "l" => Kind::Link(a, b),
        "t" => Kind::LinkToken(a, b),
        "x" => Kind::Unlink(a, b),
        "o" => Kind::OptIn(a == "1"),
        "f" => Kind::Flush,
        _ => return None,
    };
    Some(Entry {
        n,
        at_ms,
        kind,
        user,
    })
}
