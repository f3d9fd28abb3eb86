//! Endpoint URL checks. Hand-written (not the `url` crate) because only the
//! scheme and host matter here and the wasm build should not carry a URL parser.

use crate::protocol::BATCH_PATH;
use crate::text::find_byte;
use crate::Error;

/// Validates `endpoint` and returns the full batch URL.
/// `https` is required unless the host is loopback (`localhost`, 127.0.0.0/8, `::1`).
///
/// No `format!`, `str` patterns or `str::parse` here: they pulled `core::fmt`, std's
/// substring searcher and integer parser into the browser build (issue 15).
pub fn batch_url(endpoint: &str) -> Result<String, Error> {
    let endpoint = crate::text::trim(endpoint);
    let invalid = |why: &str| {
        let mut m = String::from("endpoint ");
        crate::text::push_debug_str(&mut m, endpoint);
        m.push(' ');
        m.push_str(why);
        Error::InvalidConfig(m)
    };
    // The first `://`, by a plain loop (no `windows` adapter in the wasm build).
    let b = endpoint.as_bytes();
    let mut sep = 0;
    while !b[sep..].starts_with(b"://") {
        sep += 1;
        if sep >= b.len() {
            return Err(invalid(
                "is not an absolute URL (expected https://host[:port][/path])",
            ));
        }
    }
    let (scheme, rest) = (&endpoint[..sep], &endpoint[sep + 3..]);
    let authority = &rest[..find_byte(rest, b"/?#")];
    if authority.is_empty() || find_byte(authority, b"@") < authority.len() {
        return Err(invalid("has no host, or has credentials in it"));
    }
    let host = host_of(authority);
    if host.is_empty() {
        return Err(invalid("has no host"));
    }
    if let Some(port) = port_of(authority) {
        // What `port.parse::<u16>()` accepted (a `+` sign included), above zero.
        if !crate::text::parse_u64(port).is_some_and(|p| (1..=65535).contains(&p)) {
            return Err(invalid("has an invalid port (a port is 1 to 65535)"));
        }
    }
    if scheme.eq_ignore_ascii_case("https") {
    } else if scheme.eq_ignore_ascii_case("http") {
        if !is_loopback(host) {
            return Err(Error::InsecureEndpoint(endpoint.to_owned()));
        }
    } else {
        return Err(invalid("must use https (or http on loopback)"));
    }
    if find_byte(rest, b"?#") < rest.len() {
        return Err(invalid("must not contain a query or fragment"));
    }
    let mut end = endpoint.len();
    while end > 0 && endpoint.as_bytes()[end - 1] == b'/' {
        end -= 1; // what `trim_end_matches('/')` did
    }
    Ok(endpoint[..end].to_owned() + BATCH_PATH)
}

/// The index of the last `:` of `s`, or `s.len()` if it has none (one value, not an `Option`).
fn last_colon(s: &str) -> usize {
    // A plain loop: `rposition` over `bytes()` was ~180 B of the wasm build.
    let b = s.as_bytes();
    let mut i = b.len();
    while i > 0 {
        i -= 1;
        if b[i] == b':' {
            return i;
        }
    }
    b.len()
}

fn host_of(authority: &str) -> &str {
    if let Some(v6) = crate::text::strip_byte(authority, b'[') {
        return &v6[..find_byte(v6, b"]")];
    }
    &authority[..last_colon(authority)]
}

/// The text after the host's `:`, if any (`[::1]:80` → `80`, `[::1]` → none).
fn port_of(authority: &str) -> Option<&str> {
    let after_host = match crate::text::strip_byte(authority, b'[') {
        Some(v6) => v6.get(find_byte(v6, b"]") + 1..).unwrap_or(""),
        None => authority,
    };
    after_host.get(last_colon(after_host) + 1..)
}

/// `localhost`, or a host that `std` parses as an `IpAddr` whose `is_loopback()` holds (127.0.0.0/8,
/// `::1`), in every spelling std accepts. Std's grammar re-written for these two answers only (std's
/// generic address parser is ~2 KB of the wasm); the proptest below checks it against std.
fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let mut p = Ip {
        s: host.as_bytes(),
        i: 0,
    };
    let v4 = p.ipv4();
    if v4 != NOT_IPV4 {
        return p.i == p.s.len() && v4 >> 24 == 127;
    }
    p.i = 0;
    p.ipv6_is_loopback() && p.i == p.s.len()
}

/// What [`Ip::ipv4`] gives for no address (above any four octets).
const NOT_IPV4: u64 = u64::MAX;
/// The flag [`Ip::groups`] adds to its count (at most 8) when an IPv4 address ended the groups.
const ENDED_BY_IPV4: usize = 16;

/// `core::net`'s address parser, step for step: every read either succeeds or leaves `i` unchanged.
struct Ip<'a> {
    s: &'a [u8],
    i: usize,
}

impl Ip<'_> {
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.s.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    /// Up to `max` digits (more is an error, not a stop), value at most `limit`; a leading `0` only
    /// alone unless `zero_prefix`.
    fn number(&mut self, radix: u32, max: usize, zero_prefix: bool, limit: u32) -> Option<u16> {
        let start = self.i;
        let (mut v, mut n) = (0u32, 0);
        while let Some(d) = self
            .s
            .get(self.i)
            .map(|&c| crate::text::digit(c))
            .filter(|&d| d < radix)
        {
            v = v * radix + d;
            n += 1;
            self.i += 1;
            if n > max || v > limit {
                self.i = start;
                return None;
            }
        }
        if n == 0 || (!zero_prefix && n > 1 && self.s[start] == b'0') {
            self.i = start;
            return None;
        }
        Some(v as u16)
    }

    /// `sep` (unless first) then `read`, or nothing read.
    fn part<T>(
        &mut self,
        first: bool,
        sep: u8,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let start = self.i;
        let got = if first || self.eat(sep) {
            read(self)
        } else {
            None
        };
        if got.is_none() {
            self.i = start;
        }
        got
    }

    /// The four octets as one number (the first highest), or [`NOT_IPV4`]: one value back, not
    /// an array through memory (smaller in the wasm).
    fn ipv4(&mut self) -> u64 {
        let start = self.i;
        let mut v = 0;
        for k in 0..4 {
            match self.part(k == 0, b'.', |p| p.number(10, 3, false, 255)) {
                Some(o) => v = v << 8 | u64::from(o),
                None => {
                    self.i = start;
                    return NOT_IPV4;
                }
            }
        }
        v
    }

    /// Groups of hex up to `g.len()`, the last two of which may be an embedded IPv4 address:
    /// how many were read, plus [`ENDED_BY_IPV4`] if an IPv4 address ended them (one value back).
    fn groups(&mut self, g: &mut [u16]) -> usize {
        let limit = g.len();
        for i in 0..limit {
            if i + 1 < limit {
                let start = self.i;
                if i == 0 || self.eat(b':') {
                    let v4 = self.ipv4();
                    if v4 != NOT_IPV4 {
                        g[i] = (v4 >> 16) as u16;
                        g[i + 1] = v4 as u16;
                        return (i + 2) | ENDED_BY_IPV4;
                    }
                }
                self.i = start;
            }
            match self.part(i == 0, b':', |p| p.number(16, 4, true, 0xffff)) {
                Some(v) => g[i] = v,
                None => return i,
            }
        }
        limit
    }

    /// Whether an IPv6 address is read and it is `::1` (one answer back, not the address).
    fn ipv6_is_loopback(&mut self) -> bool {
        let mut head = [0; 8];
        let got = self.groups(&mut head);
        let n = got & !ENDED_BY_IPV4;
        if n < 8 {
            // No IPv4 address before `::`, which stands for at least one zero group.
            if got != n || !self.eat(b':') || !self.eat(b':') {
                return false;
            }
            let mut tail = [0; 7];
            let t = self.groups(&mut tail[..7 - n]) & !ENDED_BY_IPV4;
            head[8 - t..].copy_from_slice(&tail[..t]);
        }
        head == [0, 0, 0, 0, 0, 0, 0, 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::IpAddr;

    /// What `is_loopback` must answer: std's parser and `IpAddr::is_loopback`.
    fn std_loopback(host: &str) -> bool {
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// An IPv4 octet spelled with or without extra leading zeros (std refuses those).
    fn octet() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just(127u16), Just(0), Just(1), Just(255), 0u16..300],
            0usize..3,
        )
            .prop_map(|(v, zeros)| "0".repeat(zeros) + &v.to_string())
    }

    fn ipv4() -> impl Strategy<Value = String> {
        (octet(), octet(), octet(), octet()).prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}"))
    }

    /// An IPv6 address near `::1` (mostly zero groups), spelled in the ways std may accept or refuse:
    /// hex case, leading zeros (4 digits at most), a `::` anywhere, an embedded IPv4 tail.
    fn ipv6() -> impl Strategy<Value = String> {
        let group = prop_oneof![8 => Just(0u16), 2 => Just(1u16), 1 => any::<u16>()];
        let v4 = prop_oneof![
            3 => Just("0.0.0.0".to_owned()),
            3 => Just("0.0.0.1".to_owned()),
            1 => ipv4(),
        ];
        (
            // Half of them `::1` itself, spelled in any of the ways below.
            prop_oneof![
                Just(vec![0, 0, 0, 0, 0, 0, 0, 1]),
                proptest::collection::vec(group, 8)
            ],
            proptest::collection::vec((0usize..3, any::<bool>()), 8),
            any::<bool>(),
            0usize..9,
            0usize..9,
            prop_oneof![Just(None), v4.prop_map(Some)],
            0usize..7,
        )
            .prop_map(|(groups, spelling, compress, cut, run, v4, at)| {
                let mut parts: Vec<String> = groups
                    .iter()
                    .zip(spelling)
                    .map(|(&v, (zeros, upper))| {
                        let h = "0".repeat(zeros) + &format!("{v:x}");
                        if upper {
                            h.to_uppercase()
                        } else {
                            h
                        }
                    })
                    .collect();
                if let Some(v4) = v4 {
                    // Anywhere: std takes it only as the last two groups.
                    parts.truncate(6);
                    parts.insert(at, v4);
                }
                if compress {
                    // `::` in place of `run` groups after the first `cut`.
                    let cut = cut.min(parts.len());
                    let end = (cut + run).min(parts.len());
                    parts[..cut].join(":") + "::" + &parts[end..].join(":")
                } else {
                    parts.join(":")
                }
            })
    }

    /// Pieces of addresses joined in any order: an IPv4 address before `::`, `::` twice, too many groups.
    fn pieces() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("0.0.0.0"),
            Just("0.0.0.1"),
            Just("0"),
            Just("1"),
            Just(":"),
            Just("::"),
            Just("."),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(50_000))]

        #[test]
        fn loopback_is_exactly_std_is_loopback(host in prop_oneof![
            ipv4(),
            ipv6(),
            "[0-9a-fA-F:.]{0,24}",
            "(0{0,5}:{0,3}){0,9}(1|0001|01|00001|0.0.0.1|127.0.0.1)",
            pieces(),
            "127(\\.[0-9]{0,4}){0,5}",
            "[lL][oO][cC][aA][lL][hH][oO][sS][tT]\\.?",
            any::<String>(),
        ]) {
            prop_assert_eq!(is_loopback(&host), std_loopback(&host), "{:?}", host);
        }
    }

    #[test]
    fn loopback_spellings() {
        for yes in [
            "localhost",
            "LocalHost",
            "127.0.0.1",
            "127.255.255.255",
            "127.0.0.0",
            "::1",
            "0::1",
            "0:0:0:0:0:0:0:1",
            "::0:1",
            "0000::0001",
            "::0.0.0.1",
            "0:0:0:0:0:0:0.0.0.1",
            "::0:0.0.0.1",
        ] {
            assert!(is_loopback(yes), "{yes}");
            assert!(std_loopback(yes), "{yes}");
        }
        for no in [
            "",
            "127.0.0.01",
            "127.0.0",
            "127.0.0.1.",
            "127.0.0.256",
            "0127.0.0.1",
            "128.0.0.1",
            "::",
            "::2",
            ":::1",
            "::1:",
            "1::1",
            "::00001",
            "::ffff:127.0.0.1",
            "0.0.0.1::",
            "0.0.0.0::1",
            "0:0.0.0.0::1",
            "::1%1",
            "localhost.",
            "0:0:0:0:0:0:0:0:1",
            "::0.0.0.01",
            "0:0:0:0:0:0:0:1:",
        ] {
            assert!(!is_loopback(no), "{no}");
            assert!(!std_loopback(no), "{no}");
        }
    }

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert_eq!(
            batch_url("https://api.example.com").unwrap(),
            "https://api.example.com/v1/identity/batch"
        );
        assert_eq!(
            batch_url("https://api.example.com/base/").unwrap(),
            "https://api.example.com/base/v1/identity/batch"
        );
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9000/",
            "http://127.5.5.5",
        ] {
            assert!(batch_url(ok).is_ok(), "{ok}");
        }
        for insecure in [
            "http://api.example.com",
            "http://10.0.0.1:80",
            "http://localhost.evil.com",
        ] {
            assert!(
                matches!(batch_url(insecure), Err(Error::InsecureEndpoint(_))),
                "{insecure}"
            );
        }
        for bad in [
            "",
            "api.example.com",
            "ftp://x",
            "https://",
            "https://user:pw@host",
            "https://h?x=1",
            "https://127.0.0.1:99999",
            "http://127.0.0.1:0",
            "http://127.0.0.1:",
            "https://host:8o",
            "http://[::1]:70000",
        ] {
            assert!(
                matches!(batch_url(bad), Err(Error::InvalidConfig(_))),
                "{bad}"
            );
        }
    }

    /// The `format!`/`str`-pattern/`str::parse` version the hand-written one replaced (the reference).
    fn host_of_before(authority: &str) -> &str {
        if let Some(v6) = authority.strip_prefix('[') {
            return v6.split(']').next().unwrap_or_default();
        }
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    }

    fn port_of_before(authority: &str) -> Option<&str> {
        let after_host = match authority.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
            None => authority,
        };
        after_host.rsplit_once(':').map(|(_, p)| p)
    }

    fn batch_url_before(endpoint: &str) -> Result<String, Error> {
        let endpoint = endpoint.trim();
        let invalid = |why: &str| Error::InvalidConfig(format!("endpoint {endpoint:?} {why}"));
        let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| {
            invalid("is not an absolute URL (expected https://host[:port][/path])")
        })?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid("has no host, or has credentials in it"));
        }
        let host = host_of_before(authority);
        if host.is_empty() {
            return Err(invalid("has no host"));
        }
        if let Some(port) = port_of_before(authority) {
            if !port.parse::<u16>().is_ok_and(|p| p > 0) {
                return Err(invalid("has an invalid port (a port is 1 to 65535)"));
            }
        }
        match scheme.to_ascii_lowercase().as_str() {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => return Err(Error::InsecureEndpoint(endpoint.to_owned())),
            _ => return Err(invalid("must use https (or http on loopback)")),
        }
        if rest.contains(['?', '#']) {
            return Err(invalid("must not contain a query or fragment"));
        }
        Ok(format!("{}{}", endpoint.trim_end_matches('/'), BATCH_PATH))
    }

    #[test]
    fn odd_endpoints_judged_and_worded_as_before() {
        for e in [
            "http://127.0.0.1:+80",
            "http://127.0.0.1:+",
            "http://127.0.0.1:65535",
            "http://127.0.0.1:65536",
            "http://127.0.0.1:-1",
            "HtTp://LocalHost:8080/a//",
            "HTTPS://x",
            "https:/x",
            "https:://x",
            "a://b://c",
            "ht\"tp://x",
            "\u{a0} https://x/ \u{85}",
            "https://[::1]:+1",
            "http://[::1",
            "http://[::1]x:80",
            "http://[::1]]:80",
            "http://[]:80",
            "http://[127.0.0.1]",
            "http://:80",
            "http://host:",
            "https://a:b:c",
            "https://h:1:2",
            "http://127.0.0.1:80:80",
            "http://[::1]:80:80",
            "https://h///",
            "https://h#",
            "https://h/?",
            "http://[::1]:\u{a0}1",
            "\"q\"://\n\u{7f}\u{301}",
        ] {
            assert_eq!(batch_url(e), batch_url_before(e), "{e:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        #[test]
        fn batch_url_judges_and_words_as_before(e in prop_oneof![
            "[hH][tT][tT][pP][sS]?:?/?/?(\\[?::1\\]?|127\\.0\\.0\\.1|localhost|[a-z@]{0,3})(:[+-]?[0-9]{0,6}){0,2}[/?#]?[a-z/]{0,3}",
            "[ -~]{0,16}",
        ]) {
            prop_assert_eq!(batch_url(&e), batch_url_before(&e), "{:?}", e);
        }
    }
}
