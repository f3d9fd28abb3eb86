// Unit tests of the wasm's client through its raw ABI (npm/src/wasm.js: the loader index.js
// bundles) under Node, on the built dist/repro_line_wasm_bg.wasm; run by scripts/web-test.sh.
// Ported from the wasm-bindgen-test suite (tests/node.rs) with the same names and assertions.
// No network: the endpoint is never reached within a test. Prints `N passed, N failed` last.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Client, initSync, ReproLineError } from '../npm/src/wasm.js';

initSync(fs.readFileSync(new URL('../npm/dist/repro_line_wasm_bg.wasm', import.meta.url)));

const LINE = 'U4af4980629a1b2c3d4e5f60718293a4b';
// `Client.call` codes (src/lib.rs) and `num`/`text` selectors.
const SET_USER_ID = 0, LINK = 1, LINK_TOKEN = 2, UNLINK = 3, OPT_IN = 4, OPT_OUT = 5;
const STORAGE_EVENT = 9, SHUTDOWN = 12, STORE_WRITE = 15;
const PENDING = 0, OPTED_IN = 1, LEADER = 2, PERSISTENT = 3;
const DEVICE_ID = 1, USER_ID = 2;

/** A client with the options as npm/index.js passes them (leader, local storage), changed by `edit`. */
function open(edit = () => {}) {
  const o = {
    sdkToken: 'T',
    endpoint: 'http://127.0.0.1:9',
    defaultChannel: '1234567890',
    namespace: undefined,
    memory: false,
    leader: true,
    slot: 0,
    storageBudgetBytes: NaN,
    requestTimeoutMs: NaN,
    debounceMs: 60000,
    maxBatchOps: NaN,
    maxQueueOps: NaN,
    maxOpAgeMs: NaN,
  };
  edit(o);
  return new Client(...Object.values(o));
}
const memory = (o) => (o.memory = true);
const local = () => {};

/** What `f()` threw: the loader turns the wasm's `"code:message"` into a `ReproLineError`. */
function thrown(f) {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ReproLineError, 'a ReproLineError');
    assert.equal(e.name, 'ReproLineError');
    return e;
  }
  assert.fail('did not throw');
}
const code = (e) => e.code;
const message = (e) => e.message;

const ignore = () => {};
/** The driver's I/O that never sends and never fires a timer. */
const idleIo = () => ({ w() {}, p() {}, f() {} });
/** The driver's I/O as npm/src/index.js gives it, for the journal's end-of-task write only. */
const pageIo = (c) => ({ w() {}, p() {}, f() { queueMicrotask(() => c.call(STORE_WRITE, '')); } });
/** Lets the end of the current task run: the journal is written in a microtask. */
const endOfTask = () => Promise.resolve();

/** Node has no localStorage: a Map-backed one (returned for inspection). */
function installMemoryLocalStorage() {
  const m = new Map();
  globalThis.localStorage = {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => { m.set(k, String(v)); },
    removeItem: (k) => { m.delete(k); },
    key: (i) => [...m.keys()][i] ?? null,
    get length() { return m.size; },
  };
  return m;
}

const tests = [];
const test = (name, f) => tests.push([name, f]);

test('validation_errors_carry_code_and_rule', () => {
  const c = open(memory);
  assert.equal(code(thrown(() => c.call(LINK, LINE))), 'user_id_not_set');
  let e = thrown(() => c.call(SET_USER_ID, ''));
  assert.equal(code(e), 'invalid_user_id');
  assert.ok(message(e).includes('1 to 191 characters'));
  c.call(SET_USER_ID, 'user1');
  e = thrown(() => c.call(LINK, 'Ubad'));
  assert.equal(code(e), 'invalid_line_user_id');
  assert.ok(message(e).includes('U followed by 32 ASCII letters or digits'));
  assert.equal(code(thrown(() => c.call(LINK, LINE, '12-34'))), 'invalid_channel_id');
  c.call(LINK, LINE);
  c.call(UNLINK, LINE, '999');
  assert.equal(c.num(PENDING), 3);
  assert.equal(c.text(USER_ID), 'user1');
  c.call(SHUTDOWN, '');
});

/** An unsigned ID token whose `sub` is `LINE` (the client checks shape and `sub`, not the signature). */
const ID_TOKEN =
  'eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2FjY2Vzcy5saW5lLm1lIiwic3ViIjoiVTRhZjQ5ODA2MjlhMWIyYzNkNGU1ZjYwNzE4MjkzYTRiIiwiYXVkIjoiMTY1MDAwMDAwMSIsImV4cCI6NDEwMjQ0NDgwMH0.bm90LWEtcmVhbC1zaWduYXR1cmU';

test('token_links_are_checked_on_the_callers_thread_and_never_echo_the_token', () => {
  const c = open(memory);
  assert.equal(code(thrown(() => c.call(LINK_TOKEN, ID_TOKEN))), 'user_id_not_set');
  c.call(SET_USER_ID, 'user1');
  const forgedSub = ID_TOKEN.replace('eyJpc3Mi', 'eyJpc3Mx');
  for (const bad of ['only.two', 'a..c', 'a.b.c', forgedSub, ID_TOKEN + 'A'.repeat(8 * 1024)]) {
    const e = thrown(() => c.call(LINK_TOKEN, bad));
    assert.equal(code(e), 'invalid_id_token', bad.slice(0, 20));
    const m = message(e);
    assert.ok(m.includes('compact JWT'), 'the rule is stated: ' + m);
    assert.ok(!m.includes(bad), 'the token is not echoed');
  }
  assert.equal(code(thrown(() => c.call(LINK_TOKEN, ID_TOKEN, '12-34'))), 'invalid_channel_id');
  assert.equal(c.num(PENDING), 1, 'only setUserId was accepted so far');
  c.call(LINK_TOKEN, ID_TOKEN);
  c.call(LINK_TOKEN, ID_TOKEN, '999');
  assert.equal(c.num(PENDING), 3);
  c.call(SHUTDOWN, '');
});

test('configuration_is_checked', () => {
  const cases = [
    [(o) => (o.sdkToken = ' '), 'invalid_config'],
    [(o) => (o.endpoint = 'http://example.com'), 'insecure_endpoint'],
    [(o) => (o.endpoint = 'nope'), 'invalid_config'],
    [(o) => (o.maxBatchOps = 0), 'invalid_config'],
    [(o) => (o.defaultChannel = 'a b'), 'invalid_channel_id'],
  ];
  for (const [edit, want] of cases) assert.equal(code(thrown(() => open(edit))), want);
});

test('opting_out_drops_the_queue_and_ignores_calls', () => {
  const c = open(memory);
  // The event listener's arguments: opId, seq, kind, userId, lineUserId, channelId, status, code, text.
  const seen = [];
  c.listen((id, seq, kind, user, line, channel, status, code, text) => seen.push(status + ':' + text), ignore, idleIo());
  c.call(SET_USER_ID, 'u');
  c.call(OPT_OUT, '');
  assert.equal(c.num(PENDING), 0);
  c.call(SET_USER_ID, 'v');
  assert.equal(c.num(PENDING), 0);
  assert.equal(c.num(OPTED_IN), 0);
  assert.equal(seen.join(','), 'dropped:opted_out');
  c.call(OPT_IN, '');
  assert.equal(c.num(OPTED_IN), 1);
  c.call(SHUTDOWN, '');
});

test('storage_failures_fall_back_to_memory_without_throwing', async () => {
  // A localStorage whose writes always fail (quota full), installed for this test only.
  globalThis.localStorage = {
    getItem() { return null; },
    setItem() { const e = new Error('quota'); e.name = 'QuotaExceededError'; throw e; },
    removeItem() {},
    key() { return null; },
    length: 0,
  };
  const c = open(local);
  // The state listener's arguments: type, leader, persistent, reason (npm/index.js makes the object).
  const states = [];
  c.listen(ignore, (type, leader, persistent, reason) => states.push({ type, leader, persistent, reason }), idleIo());
  await endOfTask();
  assert.equal(c.num(PERSISTENT), 0);
  c.call(SET_USER_ID, 'user1');
  c.call(LINK, LINE);
  assert.equal(c.num(PENDING), 2);
  assert.ok(states.length >= 1);
  assert.equal(states[0].type, 'storage');
  assert.equal(states[0].persistent, false);
  assert.ok(states[0].reason.includes('quota'), states[0].reason);
  c.call(SHUTDOWN, '');
  delete globalThis.localStorage;
});

test('journal_in_local_storage_survives_a_restart', async () => {
  installMemoryLocalStorage();
  const a = open(local);
  assert.equal(a.num(PERSISTENT), 1);
  a.call(SET_USER_ID, 'user1');
  a.call(LINK, LINE);
  const device = a.text(DEVICE_ID);
  a.call(SHUTDOWN, '');
  await endOfTask();
  const b = open(local);
  assert.equal(b.text(DEVICE_ID), device);
  assert.equal(b.num(PENDING), 2);
  assert.equal(b.text(USER_ID), 'user1');
  b.call(SHUTDOWN, '');
  delete globalThis.localStorage;
});

test('a_second_setup_in_the_same_task_keeps_the_first_ones_calls', async () => {
  installMemoryLocalStorage();
  const a = open(local);
  a.listen(ignore, ignore, pageIo(a));
  a.call(SET_USER_ID, 'user1');
  a.call(LINK, LINE);
  a.call(SHUTDOWN, '');
  // No end of task in between: the first client's writes are still pending.
  const b = open(local);
  b.listen(ignore, ignore, pageIo(b));
  assert.equal(b.num(PENDING), 2);
  b.call(UNLINK, LINE);
  b.call(SHUTDOWN, '');
  await endOfTask();
  const c = open(local);
  assert.equal(c.num(PENDING), 3, 'nothing written over');
  c.call(SHUTDOWN, '');
  delete globalThis.localStorage;
});

test('a_journal_in_the_single_key_of_earlier_versions_is_carried_over', async () => {
  const m = installMemoryLocalStorage();
  const a = open(local);
  a.call(SET_USER_ID, 'user1');
  a.call(LINK, LINE);
  const device = a.text(DEVICE_ID);
  a.call(SHUTDOWN, '');
  await endOfTask();
  // What an earlier version left: the same bytes, in one key.
  const ks = [...m.keys()].filter((k) => k.startsWith('repro-line:j')).sort((x, y) => +x.split(':').pop() - +y.split(':').pop());
  m.set('repro-line:journal', ks.map((k) => m.get(k)).join(''));
  ks.forEach((k) => m.delete(k));
  assert.equal([...m.keys()].join(','), 'repro-line:journal');
  const b = open(local);
  assert.equal(b.text(DEVICE_ID), device);
  assert.equal(b.num(PENDING), 2);
  assert.equal(b.text(USER_ID), 'user1');
  assert.equal(globalThis.localStorage.getItem('repro-line:journal'), null, 'the old key is gone once carried over');
  b.call(SHUTDOWN, '');
  await endOfTask();
  const c = open(local);
  assert.equal(c.num(PENDING), 2, 'and the new keys hold it');
  c.call(SHUTDOWN, '');
  delete globalThis.localStorage;
});

test('a_follower_queues_in_its_inbox_and_the_leader_takes_it_once', async () => {
  installMemoryLocalStorage();
  const leader = open(local);
  leader.call(SET_USER_ID, 'user1');
  await endOfTask();
  const follower = open((o) => {
    o.leader = false;
    o.slot = 3;
  });
  assert.equal(follower.num(LEADER), 0);
  // The follower sees the leader's user ID in the journal, so it may link.
  follower.call(LINK, LINE);
  assert.equal(follower.num(PENDING), 2);
  assert.equal(code(thrown(() => follower.call(LINK, 'Ubad'))), 'invalid_line_user_id');
  leader.call(STORAGE_EVENT, '', 'repro-line:in:3');
  leader.call(STORAGE_EVENT, '', 'repro-line:in:3');
  // Taken exactly once, even when told twice; the follower then trims its inbox.
  assert.equal(leader.num(PENDING), 2);
  await endOfTask();
  follower.call(STORAGE_EVENT, '', 'repro-line:j:0:3');
  assert.equal(follower.num(PENDING), 2);
  const inbox = globalThis.localStorage.getItem('repro-line:in:3');
  assert.equal(inbox, null, 'trimmed: ' + inbox);
  leader.call(SHUTDOWN, '');
  follower.call(SHUTDOWN, '');
  delete globalThis.localStorage;
});

// The raw ABI itself (what wasm-bindgen's glue did before).

test('clients_are_handles_several_live_in_one_instance', () => {
  const a = open(memory);
  const b = open(memory);
  assert.notEqual(a.h, b.h);
  a.call(SET_USER_ID, 'a');
  b.call(SET_USER_ID, 'b');
  b.call(LINK, LINE);
  assert.equal(a.text(USER_ID), 'a');
  assert.equal(b.text(USER_ID), 'b');
  assert.equal([a.num(PENDING), b.num(PENDING)].join(), '1,2');
  // A handle no client has answers nothing and throws nothing.
  const none = Object.assign(Object.create(Client.prototype), { h: 1e9 });
  assert.equal(none.num(PENDING), 0);
  assert.equal(none.text(USER_ID), '');
  none.call(SET_USER_ID, 'x');
  assert.equal([a.num(PENDING), b.num(PENDING)].join(), '1,2', 'the clients are untouched');
});

test('strings_cross_the_boundary_as_utf8_both_ways', () => {
  const c = open(memory);
  // Non-ASCII, astral, and long enough to grow the scratch buffer.
  const user = 'ユーザー😀é' + 'x'.repeat(150);
  c.call(SET_USER_ID, user);
  assert.equal(c.text(USER_ID), user);
  assert.match(c.text(DEVICE_ID), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const e = thrown(() => c.call(SET_USER_ID, 'y'.repeat(5000)));
  assert.equal(code(e), 'invalid_user_id');
  // ASCII first, then other characters (the loader switches encoders mid-string); a lone
  // surrogate arrives as U+FFFD, as TextEncoder writes it.
  for (const [sent, got] of [['ab😀cd', 'ab😀cd'], ['xé', 'xé'], ['a\uD800b', 'a\uFFFDb']]) {
    c.call(SET_USER_ID, sent);
    assert.equal(c.text(USER_ID), got);
  }
  // Any other value goes as `String` makes it (the API passes page values as they are).
  c.call(SET_USER_ID, 12345);
  assert.equal(c.text(USER_ID), '12345');
  // Two strings in one call: the second is read at the first one's UTF-8 length, not its JS length.
  const m = message(thrown(() => c.call(LINK, LINE, 'é😀チャンネル')));
  assert.ok(m.includes('"é😀チャンネル"'), m);
});

test('device_ids_are_random_v4_from_crypto', () => {
  const ids = new Set();
  for (let i = 0; i < 20; i++) {
    const c = open(memory);
    ids.add(c.text(DEVICE_ID));
  }
  assert.equal(ids.size, 20);
});

test('without_crypto_setup_throws_a_typed_error_not_a_trap', () => {
  const real = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
  try {
    const e = thrown(() => open(memory));
    assert.equal(code(e), 'internal');
    assert.match(message(e), /crypto\.getRandomValues is not available/);
  } finally {
    Object.defineProperty(globalThis, 'crypto', real);
  }
  // And with it back, set-up works again in the same instance.
  assert.match(open(memory).text(DEVICE_ID), /^[0-9a-f-]{36}$/);
});

test('a_throwing_listener_or_io_never_throws_into_the_caller', async () => {
  installMemoryLocalStorage();
  const c = open(local);
  let posts = 0;
  const io = {
    w(ms) {
      if (ms === 0) queueMicrotask(() => c.call(13, ''));
    },
    f() {
      queueMicrotask(() => c.call(STORE_WRITE, ''));
    },
    p() {
      posts++;
      throw new Error('no fetch here');
    },
  };
  const boom = () => {
    throw new Error('listener bug');
  };
  c.listen(boom, boom, io);
  c.call(SET_USER_ID, 'user1');
  c.call(6, ''); // FLUSH: sends at once, and io.p throws: a network failure for the retry policy
  for (let i = 0; i < 5; i++) await endOfTask();
  assert.ok(posts >= 1, 'a send was attempted');
  assert.equal(c.num(PENDING), 1, 'kept for a retry');
  assert.equal(c.num(4), posts, 'requestsSent counts the attempts');
  c.call(SHUTDOWN, '');
  delete globalThis.localStorage;
});

test('init_loads_the_wasm_whatever_its_content_type', async () => {
  const bytes = fs.readFileSync(new URL('../npm/dist/repro_line_wasm_bg.wasm', import.meta.url));
  const http = await import('node:http');
  const served = [];
  const server = http.createServer((req, res) => {
    served.push(req.url);
    const type = { '/typed.wasm': 'application/wasm', '/untyped.wasm': 'application/octet-stream' }[req.url] || 'text/html';
    res.writeHead(200, { 'content-type': type });
    res.end(bytes);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const base = 'http://127.0.0.1:' + server.address().port;
  try {
    for (const path of ['/typed.wasm', '/untyped.wasm', '/misconfigured.wasm']) {
      // A fresh instance of the loader module (its own wasm instance), loaded the way a page does.
      const fresh = await import('../npm/src/wasm.js?' + path.slice(1));
      await fresh.default(new URL(base + path));
      const c = new fresh.Client('T', 'http://127.0.0.1:9', undefined, undefined, true, true, 0, NaN, NaN, 60000, NaN, NaN, NaN);
      c.call(SET_USER_ID, 'user1');
      assert.equal(c.text(USER_ID), 'user1', path);
      // A second init is a no-op (the single-file build instantiates before index.js's init runs).
      await fresh.default(new URL(base + path));
      assert.equal(c.text(USER_ID), 'user1', path);
    }
    assert.deepEqual(served, ['/typed.wasm', '/untyped.wasm', '/misconfigured.wasm']);
  } finally {
    server.close();
  }
});

let passed = 0;
let failed = 0;
for (const [name, f] of tests) {
  try {
    await f();
    passed++;
    console.log('ok   node::' + name);
  } catch (e) {
    failed++;
    console.log('FAIL node::' + name + ': ' + ((e && e.stack) || e));
  }
}
console.log(passed + ' passed, ' + failed + ' failed');
process.exit(failed ? 1 : 0);
