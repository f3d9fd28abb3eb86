// repro-line for browsers: registers LINE User IDs with Repro.
// The queue, validation, ordering, retries and exactly-once delivery run in
// WebAssembly (the same Rust Session as the native SDKs); this file loads it,
// decides which tab delivers (Web Locks), and wires page events.
import init, { Client, ReproLineError } from './wasm.js';

export { ReproLineError };

const g = globalThis;
const NS = 'repro-line';
// Relative to the built npm/index.js (this file is bundled into it by scripts/web-build.sh).
const WASM = new URL('./dist/repro_line_wasm_bg.wasm', import.meta.url);

// Load the wasm before any call: setup() and every call are synchronous after import. Node, Deno
// and Bun take the package's `node` entry (src/node.js), which has read the file before this runs
// (their fetch has no file: URLs): `init` then does nothing, and browsers carry no Node branch.
await init(WASM);

// A number option as the page gave it; anything else means the default (NaN to the wasm; a page's
// own NaN goes as -1, which the wasm's rules treat alike).
function num(v) {
  return typeof v === 'number' ? (v === v ? v : -1) : NaN;
}

// What `Client.call` does, by number (bindings-wasm/src/lib.rs), written as literals below (named
// constants were a `var` each in the minified file): 0 SET_USER_ID, 1 LINK, 2 LINK_TOKEN, 3 UNLINK,
// 4 OPT_IN, 5 OPT_OUT, 6 FLUSH, 7 SET_SDK_TOKEN, 8 PROMOTE, 9 STORAGE_EVENT, 10 PAGE_HIDDEN,
// 11 PAGE_SHOWN, 12 SHUTDOWN, 15 STORE_WRITE; the driver's I/O results (bindings-wasm/src/http.rs):
// 13 TICK, 14 NETWORK, 1000 + status RESPONSE. A call without its string argument gets '' (src/abi.rs);
// the loader makes any other value a string (npm/src/wasm.js `put`), so a channel left out (undefined
// or null) is the default channel while an explicit '' is invalid, as on native.

// The wasm reports with primitives; these build the objects pages see (index.d.ts).
function opReport(opId, seq, kind, userId, lineUserId, channelId, status, code, text) {
  // Pause/resume: `kind` is the state, `userId` the reason ('' for none).
  if (!opId) return userId ? { type: 'state', state: kind, reason: userId } : { type: 'state', state: kind };
  const r = { type: 'op', opId, seq, kind, userId };
  if (channelId) {
    r.lineUserId = lineUserId;
    r.channelId = channelId;
  }
  if (status === 'rejected') {
    r.code = code;
    r.message = text;
  } else if (status === 'dropped') {
    r.reason = text;
  }
  r.status = status;
  return r;
}

// `persistent` is for 'storage' only; a 'storage' report back in localStorage has no reason.
function stateReport(type, leader, persistent, reason) {
  const s = { type, leader };
  if (type === 'storage') s.persistent = persistent;
  if (type !== 'storage' || !persistent) s.reason = reason;
  return s;
}

function warn(where, e) {
  try {
    console.warn('repro-line: ' + where + ': ' + ((e && e.message) || e));
  } catch (_) {
    /* no console */
  }
}

// The wasm's I/O, one client's (`js::Page` in bindings-wasm/src/js.rs): `f()` has the journal
// written at the end of this task (what was appended in it: one write per task); `w(ms)` arms one timer
// that calls `TICK` after `ms` (0: at the end of this task, below 0: none), replacing the one
// before; `p(...)` does one POST ended after `ms`, its outcome handed back as `NETWORK` or
// `RESPONSE + status`. Everything else (what to send, when, retries) is the wasm's. Cookies are
// never sent (the token authenticates, and they must not leak to the endpoint); `keepalive` lets
// the request outlive the page (flush on pagehide / hidden); the abort timer also ends a body that
// never finishes. `Retry-After` is readable cross-origin only if the endpoint sends
// `Access-Control-Expose-Headers: Retry-After`.
function io(c) {
  let timer,
    n = 0;
  const write = () => c.call(15 /* STORE_WRITE */);
  return {
    f() {
      queueMicrotask(write);
    },
    w(ms) {
      clearTimeout(timer);
      const mine = ++n;
      const tick = () => mine === n && c.call(13 /* TICK */);
      if (ms === 0) queueMicrotask(tick);
      else if (ms > 0) timer = setTimeout(tick, ms);
    },
    p(ms, url, tokenHeader, token, retryHeader, retry, body, keepalive) {
      const abort = new AbortController();
      let late;
      const t = setTimeout(() => {
        late = '';
        abort.abort();
      }, ms);
      new Promise((ok) =>
        ok(
          fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', [tokenHeader]: token, [retryHeader]: '' + retry },
            body, // a copy (npm/src/wasm.js), not a view of the wasm's memory
            credentials: 'omit',
            cache: 'no-store',
            keepalive,
            signal: abort.signal,
          }),
        ),
      )
        .then(async (r) => [1000 /* RESPONSE */ + r.status, await r.text(), r.headers.get('retry-after')])
        .catch((e) => [14 /* NETWORK */, String((e && e.message) || e), late])
        .then((o) => {
          clearTimeout(t);
          c.call(...o);
        });
    },
  };
}

// One tab delivers: the holder of the Web Lock NS:leader. The others take a slot lock
// (their inbox key) and queue for the leader lock, which the browser hands over when
// the leader's page goes away.
const locks = g.navigator && g.navigator.locks;
// This tab's role: delivering (`isLeader`), its inbox slot otherwise, and the locks it holds.
let isLeader = true,
  slot = 0;
const releases = [];
let current = null;

// The lock `name` if it is free: its release function (the lock is held until it is called), else
// null (taken, or `request` failed or threw).
function tryLock(name) {
  return new Promise((resolve) =>
    locks
      .request(name, { ifAvailable: true }, (lock) => (lock ? new Promise(resolve) : resolve(null)))
      .catch(() => resolve(null)),
  ).catch(() => null);
}

let storage;
try {
  storage = g.localStorage;
} catch (_) {
  /* access denied: no localStorage */
}
if (locks && storage) {
  const leader = await tryLock(NS + ':leader');
  if (leader) {
    releases.push(leader);
  } else {
    isLeader = false;
    slot = 16 + Math.floor(Math.random() * 1e9); // only if all 16 slots are taken
    for (let i = 0; i < 16; i++) {
      const held = await tryLock(NS + ':tab:' + i);
      if (held) {
        slot = i;
        releases.push(held);
        break;
      }
    }
    locks
      .request(NS + ':leader', () => {
        isLeader = true;
        if (current) current._promote();
        return new Promise((release) => releases.push(release));
      })
      .catch(() => {});
  }
}

/** The client. Create it with `ReproLine.setup(options)`. */
export class ReproLine {
  #c;
  #listeners = new Set();
  #stateListeners = new Set();
  #memory;
  #off = [];
  #storage = null;

  /** Opens the queue (in localStorage unless `storage: "memory"`) and starts delivering. */
  static setup(options) {
    return new ReproLine(options || {});
  }

  constructor(options) {
    this.#memory = options.storage === 'memory';
    // The page's one localStorage-backed client: a second setup() replaces the first (keeping the locks).
    if (!this.#memory && current) current.#stop();
    const o = options;
    this.#c = new Client(
        o.sdkToken,
        o.endpoint,
        o.defaultChannelId,
        typeof o.namespace === 'string' ? o.namespace : undefined,
        this.#memory,
        this.#memory || isLeader,
        slot,
        num(o.storageBudgetBytes),
        num(o.requestTimeoutMs),
        num(o.debounceMs),
        num(o.maxBatchOps),
        num(o.maxQueueOps),
        num(o.maxOpAgeMs),
      );
    this.#c.listen(
      (...a) => this.#emit(this.#listeners, opReport(...a)),
      (...a) => {
        const st = stateReport(...a);
        if (st.type === 'storage') this.#storage = st.persistent ? null : st;
        this.#emit(this.#stateListeners, st);
      },
      io(this.#c),
    );
    if (this.#memory) return;
    current = this;
    const on = (target, type, fn) => {
      if (!target || !target.addEventListener) return;
      target.addEventListener(type, fn);
      this.#off.push(() => target.removeEventListener(type, fn));
    };
    on(g, 'pagehide', () => this.#c.call(10 /* PAGE_HIDDEN */));
    on(g, 'pageshow', () => this.#c.call(11 /* PAGE_SHOWN */));
    on(g.document, 'visibilitychange', () =>
      this.#c.call(g.document.visibilityState === 'hidden' ? 10 : 11),
    );
    // Every key: the client knows its namespace's inbox and journal keys (a custom `namespace`
    // does not start with NS) and ignores the rest.
    on(g, 'storage', (e) => this.#c.call(9 /* STORAGE_EVENT */, '', e.key));
  }

  #emit(set, value) {
    for (const cb of set) {
      try {
        cb(value);
      } catch (e) {
        warn('listener', e);
      }
    }
  }

  #stop() {
    this.#c.call(12 /* SHUTDOWN */);
    for (const off of this.#off.splice(0)) off();
  }

  _promote() {
    this.#c.call(8 /* PROMOTE */);
  }

  /** Repro's `setUserID`. Throws `ReproLineError` if `userId` breaks the rule. */
  setUserId(userId) {
    this.#c.call(0 /* SET_USER_ID */, userId);
  }

  setUserID(userId) {
    this.setUserId(userId);
  }

  /** Links `lineUserId` (`U` + 32 letters/digits) to the current user ID on `channelId` (default: `defaultChannelId`). */
  setLineUserId(lineUserId, channelId) {
    this.#c.call(1 /* LINK */, lineUserId, channelId);
  }

  /** Unverified: the page claims `lineUserId`. Prefer `linkLineIDToken` (for trusted server-side use only). */
  linkLineID(lineUserId, channelId) {
    this.setLineUserId(lineUserId, channelId);
  }

  /**
   * Verified link: the LINE ID token (`liff.getIDToken()`) is sent as is and verified by the
   * endpoint; its `sub` is the LINE user ID linked to the current user ID on `channelId`
   * (default: `defaultChannelId`; Repro's LINE channel ID, not the LINE Login channel's).
   * The token is a secret: never logged, not in errors; reports show its `sub`.
   */
  linkLineIDToken(idToken, channelId) {
    this.#c.call(2 /* LINK_TOKEN */, idToken, channelId);
  }

  unlinkLineUserId(lineUserId, channelId) {
    this.#c.call(3 /* UNLINK */, lineUserId, channelId);
  }

  unlinkLineID(lineUserId, channelId) {
    this.unlinkLineUserId(lineUserId, channelId);
  }

  /** Opt in (default) or out; opting out drops the queue and ignores later calls until opted in. */
  optIn(optedIn = true) {
    this.#c.call(optedIn !== false ? 4 /* OPT_IN */ : 5 /* OPT_OUT */);
  }

  optOut() {
    this.optIn(false);
  }

  /**
   * Sends now (skipping the debounce) and resolves when every call is reported, delivery
   * is paused, or `timeoutMs` passes: `{drained, pending, paused}`. Never rejects.
   */
  flush(timeoutMs = 30000) {
    try {
      this.#c.call(6 /* FLUSH */);
    } catch (e) {
      warn('flush', e);
    }
    const start = Date.now();
    return new Promise((resolve) => {
      const check = () => {
        const pending = this.#c.num(0);
        const paused = this.#c.text(0);
        if (pending === 0 || paused || Date.now() - start >= timeoutMs) {
          resolve({ drained: pending === 0, pending, paused: paused || null });
        } else {
          setTimeout(check, 25);
        }
      };
      check();
    });
  }

  /** `cb(report)` once per call with its final status; also `{type:"state"}` on pause/resume. Returns an unsubscribe function. */
  onDelivery(cb) {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /**
   * `cb(state)` when the queue moves between localStorage and memory, or a warning; called at once
   * if the queue is in memory already. Returns an unsubscribe function.
   */
  onState(cb) {
    this.#stateListeners.add(cb);
    // A listener added after setup() still learns that the queue is in memory only.
    if (this.#storage) this.#emit([cb], this.#storage);
    return () => this.#stateListeners.delete(cb);
  }

  /** Uses a new SDK token and resumes delivery paused by `auth_failed`. */
  setSdkToken(token) {
    this.#c.call(7 /* SET_SDK_TOKEN */, token);
  }

  get deviceId() {
    return this.#c.text(1);
  }

  get userId() {
    return this.#c.text(2) || undefined;
  }

  get optedIn() {
    return this.#c.num(1) === 1;
  }

  /** Calls accepted and not yet reported. */
  get pendingOps() {
    return this.#c.num(0);
  }

  /** Whether this tab is the one delivering. */
  get isLeader() {
    return this.#c.num(2) === 1;
  }

  /** Whether the queue is in localStorage (false: memory only, see `onState`). */
  get persistent() {
    return this.#c.num(3) === 1;
  }

  get requestsSent() {
    return this.#c.num(4);
  }

  /** Stops delivering; the queue stays in localStorage for the next page. */
  shutdown() {
    this.#stop();
    if (current === this) {
      current = null;
      for (const release of releases.splice(0)) release();
      isLeader = false;
    }
  }
}

// The commands, each the method of the same name (`setUserID` is `setUserId`'s alias there). A set:
// only these names are found, whatever `command` is.
const COMMANDS = new Set(
  'setUserID setUserId setLineUserId linkLineID linkLineIDToken unlinkLineID unlinkLineUserId optIn optOut flush onDelivery onState setSdkToken'.split(' '),
);

let instance = null;

/**
 * Command API: `reproline("setup", {sdkToken, endpoint, defaultChannelId})`,
 * then `reproline("setUserID", id)`, `reproline("linkLineIDToken", idToken, channelId?)`, …
 * Its own name, so it never meets Repro's Web SDK (`reproio`) on the same page.
 */
export function reproline(command, ...args) {
  if (command === 'setup') {
    const o = typeof args[0] === 'string' ? { ...(args[1] || {}), sdkToken: args[0] } : args[0];
    instance = ReproLine.setup(o);
    return instance;
  }
  if (!COMMANDS.has(command)) throw new ReproLineError('unknown_command', 'unknown reproline command ' + JSON.stringify(command));
  if (!instance) throw new ReproLineError('not_set_up', 'call reproline("setup", {sdkToken, endpoint}) first');
  return instance[command](...args);
}

/** The same function under Repro-style naming, for imports (no global is touched). */
export { reproline as reproio };

export { ReproLine as default };
