//! Tab coordination, without I/O: what a follower tab records for a call, how
//! it rebuilds its read-only view of the journal, and how the leader feeds
//! every tab's inbox into its Session. `lib.rs` does the `localStorage` reads
//! and writes around these functions.
//!
//! Right user: a link, token link or unlink records the user ID in force in the calling
//! tab when the call is made (what that tab's `userId` shows). A follower's
//! inbox entry carries it, because by the time the leader applies the entry
//! another tab's `setUserId` may have been applied in between.

use repro_line_core::session::Call;
use repro_line_core::{Error, Session};

use crate::inbox::{Entry, Kind};
use crate::{FLUSH, LINK, LINK_TOKEN, OPT_IN, SET_USER_ID, UNLINK};

/// Applies one call. `user`: the user ID the calling tab had in force (a
/// follower's link/unlink). If the journal's user differs, the call goes in
/// under `user` and the journal's user is set back after it, in one atomic append.
pub fn apply(
    session: &mut Session,
    now: u64,
    kind: &Kind,
    user: Option<&str>,
    checkpoint: Option<(&str, u64)>,
) -> Result<(), Error> {
    let (a, b) = (&kind.a, kind.b.as_deref());
    let call = match kind.what {
        SET_USER_ID => Call::SetUserId(a.clone()),
        LINK => Call::link(a, b),
        LINK_TOKEN => Call::link_id_token(a, b),
        UNLINK => Call::unlink(a, b),
        // Opt-in/out and flush: no journal call; a follower's entry moves its inbox's checkpoint only.
        what => {
            if what == FLUSH {
                session.request_flush();
            } else {
                session.set_opted_in(what == OPT_IN)?;
            }
            return match checkpoint {
                Some(_) => session.apply(now, &[], checkpoint),
                None => Ok(()),
            };
        }
    };
    match user {
        // Core has no per-call user yet, so the switch is spelled as setUserId calls.
        Some(u) if session.user_id() != Some(u) => {
            // On the stack: the user set back only if the journal had one.
            let current = session.user_id();
            let n = if current.is_some() { 3 } else { 2 };
            let back = Call::SetUserId(current.unwrap_or_default().to_owned());
            let calls = [Call::SetUserId(u.to_owned()), call, back];
            session.apply(now, calls.get(..n).unwrap_or_default(), checkpoint)
        }
        _ => session.apply(now, &[call], checkpoint),
    }
}

/// A tab that does not deliver: its calls not yet taken by the leader.
#[derive(Debug, Default)]
pub struct Follower {
    pub inbox_key: String,
    /// What the inbox key holds.
    pub mine: Vec<Entry>,
}

impl Follower {
    /// Queues for the leader a call `shadow` (this tab's view) has just accepted (`apply`: the
    /// same path as a leader's call).
    pub fn queue(
        &mut self,
        shadow: &mut Session,
        now: u64,
        mut kind: Kind,
        default_channel: Option<&str>,
    ) {
        let _ = shadow.take_events();
        let user = if matches!(kind.what, LINK..=UNLINK) {
            // The default channel is resolved here so the leader's configuration cannot change it.
            if kind.b.is_none() {
                kind.b = default_channel.map(str::to_owned);
            }
            shadow.user_id().map(str::to_owned)
        } else {
            None
        };
        let last = self.mine.last().map_or(0, |e| e.n);
        let n = last.max(shadow.checkpoint(&self.inbox_key).unwrap_or(0)) + 1;
        self.mine.push(Entry {
            n,
            at_ms: now,
            kind,
            user,
        });
    }

    /// This tab's view: `shadow` (a Session on a copy of the journal) plus its calls the leader
    /// has not taken (those are dropped from `mine`; returns whether any were, i.e. the inbox
    /// must be rewritten).
    pub fn rebuild(&mut self, shadow: &mut Session) -> bool {
        let before = self.mine.len();
        drop_taken(shadow, &self.inbox_key, &mut self.mine);
        for e in &self.mine {
            let _ = apply(shadow, e.at_ms, &e.kind, e.user.as_deref(), None);
        }
        let _ = shadow.take_events();
        self.mine.len() != before
    }
}

/// Drops the entries of inbox `key` that `session` has taken (one `retain` for both callers).
fn drop_taken(session: &Session, key: &str, entries: &mut Vec<Entry>) {
    let taken = session.checkpoint(key).unwrap_or(0);
    entries.retain(|e| e.n > taken);
}

/// Leader: enqueues every inbox entry not taken yet, oldest call first across tabs
/// (each inbox stays in its own order so its checkpoint only moves forward).
/// Returns a warning per call that was valid in its tab but is refused here.
pub fn ingest(session: &mut Session, mut inboxes: Vec<(String, Vec<Entry>)>) -> Vec<String> {
    // In place (an iterator's collect here costs its own in-place machinery in the wasm).
    for (key, entries) in &mut inboxes {
        drop_taken(session, key, entries);
        entries.reverse();
    }
    let mut warnings = Vec::new();
    loop {
        // The inbox whose next entry is the oldest (the first such inbox on a tie).
        let mut next: Option<(u64, usize)> = None;
        for (i, (_, v)) in inboxes.iter().enumerate() {
            if let Some(e) = v.last() {
                if next.map_or(true, |(at, _)| e.at_ms < at) {
                    next = Some((e.at_ms, i));
                }
            }
        }
        let Some((key, entries)) = next.and_then(|(_, i)| inboxes.get_mut(i)) else {
            break;
        };
        let Some(e) = entries.pop() else { break };
        let checkpoint = Some((key.as_str(), e.n));
        if let Err(err) = apply(session, e.at_ms, &e.kind, e.user.as_deref(), checkpoint) {
            // Valid in its tab but not here (e.g. no user ID in this journal): report, and move past it.
            let _ = session.apply(e.at_ms, &[], checkpoint);
            warnings.push("a call from another tab was refused: ".to_owned() + &err.message());
        }
    }
    warnings
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::inbox::{decode, encode};
    use repro_line_core::protocol::OpKind;
    use repro_line_core::{EngineConfig, MemoryStore};

    const CHANNEL: &str = "1234567890";

    fn line(n: usize) -> String {
        format!("U{n:032}")
    }

    fn cfg() -> EngineConfig {
        EngineConfig {
            max_queue_ops: 10_000,
            debounce_ms: 60_000,
            ..EngineConfig::default()
        }
    }

    /// A follower's read-only Session on a copy of the journal, as lib.rs opens it.
    fn shadow_of(journal: Vec<u8>) -> Session {
        let store = crate::store::LocalStore::memory(journal);
        Session::open(cfg(), Some(CHANNEL.into()), Box::new(store)).expect("shadow")
    }

    /// Tabs of one origin: the leader's journal, each follower's inbox text (what
    /// `localStorage` holds), and each follower's view, as lib.rs keeps them.
    struct Origin {
        journal: MemoryStore,
        leader: Session,
        followers: Vec<(Follower, Session)>,
        inboxes: Vec<String>,
        now: u64,
    }

    impl Origin {
        fn new(followers: usize) -> Origin {
            let journal = MemoryStore::new();
            let leader = Session::open(cfg(), Some(CHANNEL.into()), Box::new(journal.clone()))
                .expect("open");
            let mut o = Origin {
                journal,
                leader,
                followers: Vec::new(),
                inboxes: vec![String::new(); followers],
                now: 1_000,
            };
            for i in 0..followers {
                let mut f = Follower {
                    inbox_key: format!("repro-line:in:{i}"),
                    mine: Vec::new(),
                };
                let mut shadow = shadow_of(o.journal.snapshot());
                f.rebuild(&mut shadow);
                o.followers.push((f, shadow));
            }
            o
        }

        /// One call in tab `tab` (0: the leader; i > 0: follower i - 1) at the current
        /// millisecond: tabs' calls in the same millisecond carry the same `Date.now()`.
        fn call(&mut self, tab: usize, kind: Kind) -> Result<(), Error> {
            if tab == 0 {
                return apply(&mut self.leader, self.now, &kind, None, None);
            }
            let (f, shadow) = &mut self.followers[tab - 1];
            apply(shadow, self.now, &kind, None, None)?;
            f.queue(shadow, self.now, kind, Some(CHANNEL));
            self.inboxes[tab - 1] = encode(&f.mine);
            Ok(())
        }

        /// What `userId` shows in tab `tab`.
        fn user(&self, tab: usize) -> Option<String> {
            match tab {
                0 => self.leader.user_id().map(str::to_owned),
                t => self.followers[t - 1].1.user_id().map(str::to_owned),
            }
        }

        /// The leader handles the `storage` events of the inboxes.
        fn ingest(&mut self) -> Vec<String> {
            let inboxes = self
                .inboxes
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("repro-line:in:{i}"), decode(t)))
                .collect();
            ingest(&mut self.leader, inboxes)
        }

        /// A follower handles the `storage` event of the journal.
        fn refresh(&mut self, i: usize) {
            let (f, shadow) = &mut self.followers[i];
            *shadow = shadow_of(self.journal.snapshot());
            if f.rebuild(shadow) {
                self.inboxes[i] = encode(&f.mine);
            }
        }

        /// Every queued link: line user ID → user ID, from a fresh Session on the journal
        /// (what a reloaded page would deliver).
        fn links(&self) -> Vec<(String, String)> {
            let s = Session::open(cfg(), Some(CHANNEL.into()), Box::new(self.journal.clone()))
                .expect("reopen");
            s.engine()
                .entries()
                .flat_map(|e| e.merged.iter().chain([&e.op]))
                .filter_map(|op| match &op.kind {
                    OpKind::LinkLineId {
                        user_id,
                        line_user_id,
                        ..
                    } => Some((line_user_id.clone(), user_id.clone())),
                    _ => None,
                })
                .collect()
        }
    }

    /// A small deterministic generator (xorshift), so a failure replays exactly.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn each_tab_sets_its_user_then_links_in_one_task_and_the_leader_ingests_in_between() {
        // The reported failure: tabs each call setUserId(u) then linkLineID(L); the leader
        // applied another tab's setUserId between them.
        let mut o = Origin::new(3);
        let mut expected = Vec::new();
        for round in 0..40 {
            let t0 = o.now;
            for tab in 0..4 {
                let user = format!("user-{tab}-{round}");
                o.now = t0;
                o.call(tab, Kind::set_user_id(user.clone())).expect("set");
                // Some tasks cross a millisecond between the two calls.
                o.now = t0 + (tab % 2) as u64;
                let l = line(round * 4 + tab);
                o.call(tab, Kind::link(l.clone(), None)).expect("link");
                expected.push((l, user));
            }
            o.now = t0 + 2;
            if round % 3 == 0 {
                assert!(o.ingest().is_empty());
            }
            if round % 5 == 0 {
                o.refresh(round % 3);
            }
        }
        assert!(o.ingest().is_empty());
        let mut links = o.links();
        links.sort();
        expected.sort();
        assert_eq!(links, expected);
    }

    #[test]
    fn calls_interleaved_task_by_task_record_the_user_each_tab_showed() {
        for seed in 1..=20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut o = Origin::new(2);
            let mut expected = Vec::new();
            // Every tab has a user first (a link without one is refused in the tab itself).
            for tab in 0..3 {
                o.call(tab, Kind::set_user_id(format!("first-{tab}")))
                    .expect("set");
            }
            for step in 0..200 {
                o.now += rng.below(2);
                let tab = rng.below(3) as usize;
                match rng.below(6) {
                    0 | 1 => o
                        .call(tab, Kind::set_user_id(format!("user-{tab}-{step}")))
                        .expect("set"),
                    2 | 3 => {
                        let l = line(step);
                        let user = o.user(tab).expect("a user is set");
                        o.call(tab, Kind::link(l.clone(), None)).expect("link");
                        expected.push((l, user));
                    }
                    4 => assert!(o.ingest().is_empty()),
                    _ => {
                        let f = rng.below(2) as usize;
                        o.refresh(f);
                    }
                }
            }
            assert!(o.ingest().is_empty());
            let mut links = o.links();
            links.sort();
            expected.sort();
            assert_eq!(links, expected, "seed {seed}");
        }
    }

    #[test]
    fn an_entry_is_taken_once_and_the_follower_drops_what_was_taken() {
        let mut o = Origin::new(1);
        o.call(1, Kind::set_user_id("u1".into())).expect("set");
        o.call(1, Kind::link(line(1), None)).expect("link");
        assert!(o.ingest().is_empty());
        assert!(o.ingest().is_empty(), "a second storage event adds nothing");
        assert_eq!(o.leader.pending_ops(), 2);
        o.refresh(0);
        assert!(o.followers[0].0.mine.is_empty());
        assert_eq!(o.inboxes[0], "");
        assert_eq!(o.user(1).as_deref(), Some("u1"));
        // Numbering continues after the leader's checkpoint.
        o.call(1, Kind::link(line(2), None)).expect("link");
        assert_eq!(o.followers[0].0.mine[0].n, 3);
        assert!(o.ingest().is_empty());
        assert_eq!(o.leader.pending_ops(), 3);
    }

    #[test]
    fn the_leaders_user_stays_its_own_after_a_followers_link_under_another_user() {
        let mut o = Origin::new(1);
        o.call(1, Kind::set_user_id("follower".into()))
            .expect("set");
        assert!(o.ingest().is_empty());
        o.call(0, Kind::set_user_id("leader".into())).expect("set");
        // The follower has not seen the leader's setUserId yet: its link is the follower's user's.
        o.call(1, Kind::link(line(1), None)).expect("link");
        assert!(o.ingest().is_empty());
        assert_eq!(o.user(0).as_deref(), Some("leader"));
        o.call(0, Kind::link(line(2), None)).expect("link");
        let mut links = o.links();
        links.sort();
        assert_eq!(
            links,
            vec![(line(1), "follower".into()), (line(2), "leader".into())]
        );
    }

    /// An unsigned compact JWT with `sub` (the client checks its shape and `sub`, not the signature).
    fn id_token(sub: &str) -> String {
        fn b64(bytes: &[u8]) -> String {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b))
                    << (8 * (3 - chunk.len()));
                for i in 0..=chunk.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                }
            }
            out
        }
        let payload = format!(
            r#"{{"iss":"https://access.line.me","sub":"{sub}","aud":"1650000000","exp":4102444800,"iat":1700000000}}"#
        );
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"ES256","typ":"JWT"}"#),
            b64(payload.as_bytes()),
            b64(b"signature")
        )
    }

    /// Every queued token link: (sub, user ID, channel), from a fresh Session on the journal.
    fn token_links(o: &Origin) -> Vec<(String, String, String)> {
        let s = Session::open(cfg(), Some(CHANNEL.into()), Box::new(o.journal.clone()))
            .expect("reopen");
        s.engine()
            .entries()
            .flat_map(|e| e.merged.iter().chain([&e.op]))
            .filter_map(|op| match &op.kind {
                OpKind::LinkLineIdToken {
                    user_id,
                    id_token,
                    channel_id,
                } => Some((
                    repro_line_core::protocol::id_token_subject(id_token)?,
                    user_id.clone(),
                    channel_id.clone(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_followers_token_link_goes_in_under_the_user_that_tab_showed() {
        let mut o = Origin::new(1);
        o.call(1, Kind::set_user_id("follower".into()))
            .expect("set");
        assert!(o.ingest().is_empty());
        o.call(0, Kind::set_user_id("leader".into())).expect("set");
        // The follower has not seen the leader's setUserId: its token link is the follower's user's.
        o.call(1, Kind::link_token(id_token(&line(1)), None))
            .expect("token link");
        assert!(o.ingest().is_empty());
        assert_eq!(o.user(0).as_deref(), Some("leader"));
        o.call(
            0,
            Kind::link_token(id_token(&line(2)), Some("2000000000".into())),
        )
        .expect("token link");
        let mut links = token_links(&o);
        links.sort();
        assert_eq!(
            links,
            vec![
                (line(1), "follower".into(), CHANNEL.into()),
                (line(2), "leader".into(), "2000000000".into()),
            ]
        );
    }

    #[test]
    fn a_token_that_is_not_a_compact_jwt_is_refused_in_the_follower_and_never_queued() {
        let mut o = Origin::new(1);
        o.call(1, Kind::set_user_id("u".into())).expect("set");
        let bad = "not-a-jwt".to_owned();
        let err = o
            .call(1, Kind::link_token(bad.clone(), None))
            .expect_err("refused");
        assert!(
            !err.to_string().contains(&bad),
            "the token is not echoed: {err}"
        );
        assert!(!o.inboxes[0].contains(&bad));
        assert!(o.ingest().is_empty());
        assert!(token_links(&o).is_empty());
    }

    #[test]
    fn a_call_the_leader_cannot_take_is_reported_and_passed() {
        let mut o = Origin::new(1);
        // Entry from an older version: no user recorded, and the journal has none.
        o.inboxes[0] = "1\tl\t5\t".to_owned() + &line(1) + "\t" + CHANNEL + "\n";
        let warnings = o.ingest();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("refused"));
        assert!(o.ingest().is_empty(), "moved past it");
        assert_eq!(o.leader.pending_ops(), 0);
    }

    #[test]
    fn inbox_round_trip() {
        let entries = vec![
            Entry {
                n: 1,
                at_ms: 5,
                kind: Kind::set_user_id("user 1 ✓".into()),
                user: None,
            },
            Entry {
                n: 2,
                at_ms: 6,
                kind: Kind::link("U0".into(), Some("123".into())),
                user: Some("user 1 ✓".into()),
            },
            Entry {
                n: 3,
                at_ms: 7,
                kind: Kind::unlink("U1".into(), None),
                user: Some("u".into()),
            },
            Entry {
                n: 4,
                at_ms: 8,
                kind: Kind::link_token("eyJh.eyJz.c2ln_-".into(), Some("123".into())),
                user: Some("u".into()),
            },
            Entry {
                n: 4,
                at_ms: 8,
                kind: Kind::opt_in(false),
                user: None,
            },
            Entry {
                n: 5,
                at_ms: 9,
                kind: Kind::flush(),
                user: None,
            },
        ];
        assert_eq!(decode(&encode(&entries)), entries);
        assert_eq!(decode("garbage\n7\tz\t1\ta\tb\n"), vec![]);
        // Older lines: no `user` field, or neither `b` nor `user`; the last line may lack its
        // newline; a line with too few fields is skipped.
        let old = decode("1\tl\t5\tU0\t123\n2\tx\t6\tU1\n3\to\t7\n4\to\t8\t1");
        let want = [
            (1, 5, Kind::link("U0".into(), Some("123".into()))),
            (2, 6, Kind::unlink("U1".into(), None)),
            (4, 8, Kind::opt_in(true)),
        ];
        let want: Vec<Entry> = want
            .into_iter()
            .map(|(n, at_ms, kind)| Entry {
                n,
                at_ms,
                kind,
                user: None,
            })
            .collect();
        assert_eq!(old, want);
    }
}
