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

use crate::{OPT_IN, OPT_OUT};

/// A call as the page made it: `what` its `Client::call` number (`SET_USER_ID..=FLUSH`), `a` the
/// user ID, LINE user ID or ID token (a secret: only ever in this tab's inbox and the journal;
/// opt-in/out: "1"/"0", as the line holds it), `b` the channel. One shape for every call: the
/// page's call, the inbox line and the Session's call are the same three fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    pub what: u32,
    pub a: String,
    pub b: Option<String>,
}

/// The calls by name, for the tests (tabs.rs; native only).
#[cfg(all(test, not(target_arch = "wasm32")))]
impl Kind {
    fn of(what: u32, a: String, b: Option<String>) -> Kind {
        Kind { what, a, b }
    }
    pub fn set_user_id(u: String) -> Kind {
        Kind::of(crate::SET_USER_ID, u, None)
    }
    pub fn link(l: String, c: Option<String>) -> Kind {
        Kind::of(crate::LINK, l, c)
    }
    pub fn link_token(t: String, c: Option<String>) -> Kind {
        Kind::of(crate::LINK_TOKEN, t, c)
    }
    pub fn unlink(l: String, c: Option<String>) -> Kind {
        Kind::of(crate::UNLINK, l, c)
    }
    pub fn opt_in(yes: bool) -> Kind {
        let (what, a) = if yes { (OPT_IN, "1") } else { (OPT_OUT, "0") };
        Kind::of(what, a.into(), None)
    }
    pub fn flush() -> Kind {
        Kind::of(crate::FLUSH, String::new(), None)
    }
}

/// The line's kind letter of each call, by `what`.
const LETTERS: &[u8; 7] = b"ultxoof";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub n: u64,
    pub at_ms: u64,
    pub kind: Kind,
    /// Link/token link/unlink: the user ID the calling tab had in force.
    pub user: Option<String>,
}

// Out of line: a smaller wasm (measured with wasm-opt's one-caller limit; BENCHMARKS §8).
#[inline(never)]
pub fn encode(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        repro_line_core::text::push_u64(&mut out, e.n);
        let k = &e.kind;
        out.push('\t');
        out.push(char::from(
            LETTERS.get(k.what as usize).copied().unwrap_or(b'f'),
        ));
        out.push('\t');
        repro_line_core::text::push_u64(&mut out, e.at_ms);
        out.push('\t');
        out.push_str(&k.a);
        out.push('\t');
        out.push_str(k.b.as_deref().unwrap_or(""));
        out.push('\t');
        out.push_str(e.user.as_deref().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// Every well-formed line; anything else is skipped. One pass over the bytes
/// (tab and newline are ASCII, so every cut is a char boundary): smaller in
/// wasm than `str::split` twice over.
// Out of line: a smaller wasm (measured with wasm-opt's one-caller limit; BENCHMARKS §8).
#[inline(never)]
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
    let [c] = f[1].as_bytes() else {
        return None;
    };
    let what = LETTERS.iter().position(|l| l == c)? as u32;
    // "o": opt-in for "1", opt-out otherwise.
    let what = if what == OPT_IN && f[3] != "1" {
        OPT_OUT
    } else {
        what
    };
    let kind = Kind {
        what,
        a: f[3].to_owned(),
        b: opt(f[4]),
    };
    Some(Entry {
        n,
        at_ms,
        kind,
        user: opt(f[5]),
    })
}
