//! Unit tests of the exported client under Node (`wasm-bindgen-test`, run by scripts/web-test.sh).
//! No network: the endpoint is never reached within a test.

use std::rc::Rc;

use js_sys::{Function, Reflect};
use repro_line_wasm::{Client, Options};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

const LINE: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

/// The options as npm/index.js passes them (leader, local storage), changed by `edit`.
fn options(edit: impl FnOnce(&mut Options)) -> Options {
    let mut o = Options {
        sdk_token: "T".into(),
        endpoint: "http://127.0.0.1:9".into(),
        default_channel: Some("1234567890".into()),
        leader: true,
        debounce_ms: Some(60_000.0),
        ..Options::default()
    };
    edit(&mut o);
    o
}

fn memory(o: &mut Options) {
    o.memory = true;
}

fn local(_: &mut Options) {}

/// The wasm throws `"code:message"`.
fn code(e: JsValue) -> String {
    let s = e.as_string().unwrap();
    s[..s.find(':').unwrap()].to_owned()
}

fn message(e: JsValue) -> String {
    let s = e.as_string().unwrap();
    s[s.find(':').unwrap() + 1..].to_owned()
}

/// A listener for `Client::listen` that does nothing.
fn ignore() -> JsValue {
    Function::new_no_args("").into()
}

/// The driver's I/O for `Client::listen` that never sends and never fires a timer.
fn idle_io() -> JsValue {
    Function::new_no_args("return { w() {}, p() {}, f() {} }")
        .call0(&JsValue::NULL)
        .unwrap()
}

/// The driver's I/O as npm/src/index.js gives it, for the journal's end-of-task write only: `f()`
/// queues a microtask that calls `Client.call(STORE_WRITE)` (15); never sends, no timers.
fn page_io(c: &Rc<Client>) -> JsValue {
    let c = Rc::clone(c);
    let write = Closure::<dyn FnMut()>::new(move || {
        let _ = c.call(15, "", None);
    })
    .into_js_value();
    Function::new_with_args(
        "write",
        "return { w() {}, p() {}, f() { queueMicrotask(write) } }",
    )
    .call1(&JsValue::NULL, &write)
    .unwrap()
}

/// Lets the end of the current task run: the journal is written in a microtask.
async fn end_of_task() {
    let _ = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&JsValue::NULL)).await;
}

#[wasm_bindgen_test]
fn validation_errors_carry_code_and_rule() {
    let c = Client::open(options(memory)).unwrap();
    let e = c.set_line_user_id(LINE, None).unwrap_err();
    assert_eq!(code(e), "user_id_not_set");
    let e = c.set_user_id("").unwrap_err();
    assert_eq!(code(e.clone()), "invalid_user_id");
    assert!(message(e).contains("1 to 191 characters"));
    c.set_user_id("user1").unwrap();
    let e = c.set_line_user_id("Ubad", None).unwrap_err();
    assert_eq!(code(e.clone()), "invalid_line_user_id");
    assert!(message(e).contains("U followed by 32 ASCII letters or digits"));
    let e = c.set_line_user_id(LINE, Some("12-34".into())).unwrap_err();
    assert_eq!(code(e), "invalid_channel_id");
    c.set_line_user_id(LINE, None).unwrap();
    c.unlink_line_user_id(LINE, Some("999".into())).unwrap();
    assert_eq!(c.pending_ops(), 3);
    assert_eq!(c.user_id().as_deref(), Some("user1"));
    c.shutdown();
}

/// An unsigned ID token whose `sub` is `LINE` (the client checks shape and `sub`, not the signature).
const ID_TOKEN: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2FjY2Vzcy5saW5lLm1lIiwic3ViIjoiVTRhZjQ5ODA2MjlhMWIyYzNkNGU1ZjYwNzE4MjkzYTRiIiwiYXVkIjoiMTY1MDAwMDAwMSIsImV4cCI6NDEwMjQ0NDgwMH0.bm90LWEtcmVhbC1zaWduYXR1cmU";

#[wasm_bindgen_test]
fn token_links_are_checked_on_the_callers_thread_and_never_echo_the_token() {
    let c = Client::open(options(memory)).unwrap();
    let e = c.link_line_id_token(ID_TOKEN, None).unwrap_err();
    assert_eq!(code(e), "user_id_not_set");
    c.set_user_id("user1").unwrap();
    let forged_sub = ID_TOKEN.replacen("eyJpc3Mi", "eyJpc3Mx", 1);
    for bad in [
        "only.two",
        "a..c",
        "a.b.c",
        forged_sub.as_str(),
        &(ID_TOKEN.to_owned() + &"A".repeat(8 * 1024)),
    ] {
        let e = c.link_line_id_token(bad, None).unwrap_err();
        assert_eq!(code(e.clone()), "invalid_id_token", "{bad:.20}");
        let m = message(e);
        assert!(m.contains("compact JWT"), "the rule is stated: {m}");
        assert!(!m.contains(bad), "the token is not echoed");
    }
    let e = c
        .link_line_id_token(ID_TOKEN, Some("12-34".into()))
        .unwrap_err();
    assert_eq!(code(e), "invalid_channel_id");
    assert_eq!(c.pending_ops(), 1, "only setUserId was accepted so far");
    c.link_line_id_token(ID_TOKEN, None).unwrap();
    c.link_line_id_token(ID_TOKEN, Some("999".into())).unwrap();
    assert_eq!(c.pending_ops(), 3);
    c.shutdown();
}

#[wasm_bindgen_test]
fn configuration_is_checked() {
    type Edit = fn(&mut Options);
    let cases: [(Edit, &str); 5] = [
        (|o| o.sdk_token = " ".into(), "invalid_config"),
        (
            |o| o.endpoint = "http://example.com".into(),
            "insecure_endpoint",
        ),
        (|o| o.endpoint = "nope".into(), "invalid_config"),
        (|o| o.max_batch_ops = Some(0.0), "invalid_config"),
        (
            |o| o.default_channel = Some("a b".into()),
            "invalid_channel_id",
        ),
    ];
    for (edit, want) in cases {
        let e = Client::open(options(edit)).err().expect(want);
        assert_eq!(code(e), want);
    }
}

#[wasm_bindgen_test]
fn opting_out_drops_the_queue_and_ignores_calls() {
    let c = Client::open(options(memory)).unwrap();
    // The event listener's arguments: opId, seq, kind, userId, lineUserId, channelId, status, code, text.
    let seen = Function::new_with_args(
        "id, seq, kind, user, line, channel, status, code, text",
        "globalThis.__seen = (globalThis.__seen || []).concat([status + ':' + text])",
    );
    c.listen(
        seen.unchecked_into(),
        ignore().unchecked_into(),
        idle_io().unchecked_into(),
    );
    c.set_user_id("u").unwrap();
    c.set_opted_in(false).unwrap();
    assert_eq!(c.pending_ops(), 0);
    c.set_user_id("v").unwrap();
    assert_eq!(c.pending_ops(), 0);
    assert!(!c.opted_in());
    let seen = Reflect::get(&js_sys::global(), &"__seen".into()).unwrap();
    assert_eq!(
        js_sys::Array::from(&seen).join(",").as_string().unwrap(),
        "dropped:opted_out"
    );
    c.shutdown();
}

#[wasm_bindgen_test]
async fn storage_failures_fall_back_to_memory_without_throwing() {
    // A localStorage whose writes always fail (quota full), installed for this test only.
    let install = Function::new_no_args(
        "globalThis.localStorage = { getItem() { return null }, setItem() { const e = new Error('quota'); e.name = 'QuotaExceededError'; throw e }, removeItem() {}, key() { return null }, length: 0 };",
    );
    install.call0(&JsValue::NULL).unwrap();
    let c = Client::open(options(local)).unwrap();
    // The state listener's arguments: type, leader, persistent, reason (npm/index.js makes the object).
    let states = Function::new_with_args(
        "type, leader, persistent, reason",
        "globalThis.__states = (globalThis.__states || []).concat([{ type, leader, persistent, reason }])",
    );
    c.listen(
        ignore().unchecked_into(),
        states.unchecked_into(),
        idle_io().unchecked_into(),
    );
    end_of_task().await;
    assert!(!c.persistent());
    c.set_user_id("user1").unwrap();
    c.set_line_user_id(LINE, None).unwrap();
    assert_eq!(c.pending_ops(), 2);
    let states = js_sys::Array::from(&Reflect::get(&js_sys::global(), &"__states".into()).unwrap());
    assert!(states.length() >= 1);
    let first = states.get(0);
    assert_eq!(
        Reflect::get(&first, &"type".into())
            .unwrap()
            .as_string()
            .unwrap(),
        "storage"
    );
    assert_eq!(
        Reflect::get(&first, &"persistent".into())
            .unwrap()
            .as_bool(),
        Some(false)
    );
    assert!(message_of(&first).contains("quota"));
    c.shutdown();
    Function::new_no_args("delete globalThis.localStorage")
        .call0(&JsValue::NULL)
        .unwrap();
}

/// Node has no localStorage: a Map-backed one (also at `globalThis.__m` for inspection).
fn install_memory_local_storage() {
    Function::new_no_args(
        "const m = new Map(); globalThis.__m = m; globalThis.localStorage = { getItem: k => m.has(k) ? m.get(k) : null, setItem: (k, v) => { m.set(k, String(v)) }, removeItem: k => { m.delete(k) }, key: i => [...m.keys()][i] ?? null, get length() { return m.size } };",
    )
    .call0(&JsValue::NULL)
    .unwrap();
}

fn message_of(v: &JsValue) -> String {
    Reflect::get(v, &"reason".into())
        .unwrap()
        .as_string()
        .unwrap_or_default()
}

#[wasm_bindgen_test]
async fn journal_in_local_storage_survives_a_restart() {
    install_memory_local_storage();
    let a = Client::open(options(local)).unwrap();
    assert!(a.persistent());
    a.set_user_id("user1").unwrap();
    a.set_line_user_id(LINE, None).unwrap();
    let device = a.device_id();
    a.shutdown();
    drop(a);
    end_of_task().await;
    let b = Client::open(options(local)).unwrap();
    assert_eq!(b.device_id(), device);
    assert_eq!(b.pending_ops(), 2);
    assert_eq!(b.user_id().as_deref(), Some("user1"));
    b.shutdown();
    Function::new_no_args("delete globalThis.localStorage")
        .call0(&JsValue::NULL)
        .unwrap();
}

#[wasm_bindgen_test]
async fn a_second_setup_in_the_same_task_keeps_the_first_ones_calls() {
    install_memory_local_storage();
    let a = Rc::new(Client::open(options(local)).unwrap());
    a.listen(
        ignore().unchecked_into(),
        ignore().unchecked_into(),
        page_io(&a).unchecked_into(),
    );
    a.set_user_id("user1").unwrap();
    a.set_line_user_id(LINE, None).unwrap();
    a.shutdown();
    // No end of task in between: the first client's writes are still pending.
    let b = Rc::new(Client::open(options(local)).unwrap());
    b.listen(
        ignore().unchecked_into(),
        ignore().unchecked_into(),
        page_io(&b).unchecked_into(),
    );
    assert_eq!(b.pending_ops(), 2);
    b.unlink_line_user_id(LINE, None).unwrap();
    b.shutdown();
    end_of_task().await;
    let c = Client::open(options(local)).unwrap();
    assert_eq!(c.pending_ops(), 3, "nothing written over");
    c.shutdown();
    Function::new_no_args("delete globalThis.localStorage")
        .call0(&JsValue::NULL)
        .unwrap();
}

#[wasm_bindgen_test]
async fn a_journal_in_the_single_key_of_earlier_versions_is_carried_over() {
    install_memory_local_storage();
    let a = Client::open(options(local)).unwrap();
    a.set_user_id("user1").unwrap();
    a.set_line_user_id(LINE, None).unwrap();
    let device = a.device_id();
    a.shutdown();
    drop(a);
    end_of_task().await;
    // What an earlier version left: the same bytes, in one key.
    let keys = Function::new_no_args(
        "const m = globalThis.__m; const ks = [...m.keys()].filter(k => k.startsWith('repro-line:j')).sort((x, y) => +x.split(':').pop() - +y.split(':').pop()); m.set('repro-line:journal', ks.map(k => m.get(k)).join('')); ks.forEach(k => m.delete(k)); return [...m.keys()].join(',')",
    )
    .call0(&JsValue::NULL)
    .unwrap();
    assert_eq!(keys.as_string().as_deref(), Some("repro-line:journal"));
    let b = Client::open(options(local)).unwrap();
    assert_eq!(b.device_id(), device);
    assert_eq!(b.pending_ops(), 2);
    assert_eq!(b.user_id().as_deref(), Some("user1"));
    let old = Function::new_no_args("return globalThis.localStorage.getItem('repro-line:journal')")
        .call0(&JsValue::NULL)
        .unwrap();
    assert!(old.is_null(), "the old key is gone once carried over");
    b.shutdown();
    drop(b);
    end_of_task().await;
    let c = Client::open(options(local)).unwrap();
    assert_eq!(c.pending_ops(), 2, "and the new keys hold it");
    c.shutdown();
    Function::new_no_args("delete globalThis.localStorage; delete globalThis.__m")
        .call0(&JsValue::NULL)
        .unwrap();
}

#[wasm_bindgen_test]
async fn a_follower_queues_in_its_inbox_and_the_leader_takes_it_once() {
    install_memory_local_storage();
    let leader = Client::open(options(local)).unwrap();
    leader.set_user_id("user1").unwrap();
    end_of_task().await;
    let follower = Client::open(options(|o| {
        o.leader = false;
        o.slot = 3;
    }))
    .unwrap();
    assert!(!follower.is_leader());
    // The follower sees the leader's user ID in the journal, so it may link.
    follower.set_line_user_id(LINE, None).unwrap();
    assert_eq!(follower.pending_ops(), 2);
    let e = follower.set_line_user_id("Ubad", None).unwrap_err();
    assert_eq!(code(e), "invalid_line_user_id");
    leader.on_storage(Some("repro-line:in:3".into()));
    leader.on_storage(Some("repro-line:in:3".into()));
    // Taken exactly once, even when told twice; the follower then trims its inbox.
    assert_eq!(leader.pending_ops(), 2);
    end_of_task().await;
    follower.on_storage(Some("repro-line:j:0:3".into()));
    assert_eq!(follower.pending_ops(), 2);
    let inbox = Function::new_no_args("return globalThis.localStorage.getItem('repro-line:in:3')")
        .call0(&JsValue::NULL)
        .unwrap();
    assert!(inbox.is_null(), "trimmed: {inbox:?}");
    leader.shutdown();
    follower.shutdown();
    Function::new_no_args("delete globalThis.localStorage")
        .call0(&JsValue::NULL)
        .unwrap();
}
