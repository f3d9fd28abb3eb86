// repro-line for browsers: registers LINE User IDs with Repro.
// The queue, validation, ordering, retries and exactly-once delivery run in
// WebAssembly (the same Rust Session as the native SDKs); this file loads it,
// decides which tab delivers (Web Locks), and wires page events.
import init, { initSync, Client } from './dist/repro_line_wasm.js';

const g = globalThis;
const NS = 'repro-line';
const WASM = new URL('./dist/repro_line_wasm_bg.wasm', import.meta.url);

// Load the wasm before any call: setup() and every call are synchronous after import.
if (typeof process === 'object' && process.versions && process.versions.node && process.getBuiltinModule) {
  initSync({ module: process.getBuiltinModule('fs').readFileSync(WASM) });
} else {
  await init({ module_or_path: WASM });
}

/** Thrown by calls with an invalid argument or configuration; `code` names the rule. */
export class ReproLineError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ReproLineError';
    this.code = code;
  }
}

function rethrow(e) {
  if (e && typeof e === 'object' && typeof e.code === 'string' && !(e instanceof Error)) {
    throw new ReproLineError(e.code, e.message);
  }
  throw e;
}

function str(v) {
  return typeof v === 'string' ? v : v == null ? '' : String(v);
}

function opt(v) {
  return v == null || v === '' ? undefined : str(v);
}

/** A call's channel argument: omitted means the default channel, but an explicit '' is invalid (as on native). */
function optArg(v) {
  return v == null ? undefined : str(v);
}

function warn(where, e) {
  try {
    console.warn('repro-line: ' + where + ': ' + ((e && e.message) || e));
  } catch (_) {
    /* no console */
  }
}

function hasLocalStorage() {
  try {
    return !!g.localStorage;
  } catch (_) {
    return false;
  }
}

// One tab delivers: the holder of the Web Lock NS:leader. The others take a slot lock
// (their inbox key) and queue for the leader lock, which the browser hands over when
// the leader's page goes away.
const locks = g.navigator && g.navigator.locks;
const role = { leader: true, slot: 0, promoted: false, releases: [] };
let current = null;

function tryLock(name) {
  return new Promise((resolve) => {
    try {
      locks
        .request(name, { ifAvailable: true }, (lock) =>
          lock ? new Promise((release) => resolve(release)) : resolve(null),
        )
        .catch(() => resolve(null));
    } catch (_) {
      resolve(null);
    }
  });
}

if (locks && hasLocalStorage()) {
  const leader = await tryLock(NS + ':leader');
  if (leader) {
    role.releases.push(leader);
  } else {
    role.leader = false;
    role.slot = 16 + Math.floor(Math.random() * 1e9); // only if all 16 slots are taken
    for (let i = 0; i < 16; i++) {
      const slot = await tryLock(NS + ':tab:' + i);
      if (slot) {
        role.slot = i;
        role.releases.push(slot);
        break;
      }
    }
    locks
      .request(NS + ':leader', () => {
        role.leader = true;
        if (current) current._promote();
        return new Promise((release) => role.releases.push(release));
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
    try {
      this.#c = new Client({
        ...options,
        sdkToken: str(options.sdkToken),
        endpoint: str(options.endpoint),
        defaultChannelId: opt(options.defaultChannelId),
        leader: this.#memory || role.leader,
        slot: role.slot,
      });
    } catch (e) {
      rethrow(e);
    }
    this.#c.onEvent((ev) => this.#emit(this.#listeners, ev));
    this.#c.onState((st) => {
      if (st.type === 'storage') this.#storage = st.persistent ? null : st;
      this.#emit(this.#stateListeners, st);
    });
    if (this.#memory) return;
    current = this;
    const on = (target, type, fn) => {
      if (!target || !target.addEventListener) return;
      target.addEventListener(type, fn);
      this.#off.push(() => target.removeEventListener(type, fn));
    };
    on(g, 'pagehide', () => this.#c.pageHidden(true));
    on(g, 'pageshow', () => this.#c.pageHidden(false));
    on(g.document, 'visibilitychange', () => this.#c.pageHidden(g.document.visibilityState === 'hidden'));
    on(g, 'storage', (e) => {
      if (e.key == null || e.key.startsWith(NS + ':')) this.#c.onStorage(e.key);
    });
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
    this.#c.shutdown();
    for (const off of this.#off.splice(0)) off();
  }

  _promote() {
    this.#c.promote();
  }

  #call(fn) {
    try {
      return fn();
    } catch (e) {
      rethrow(e);
    }
  }

  /** Repro's `setUserID`. Throws `ReproLineError` if `userId` breaks the rule. */
  setUserId(userId) {
    this.#call(() => this.#c.setUserId(str(userId)));
  }

  setUserID(userId) {
    this.setUserId(userId);
  }

  /** Links `lineUserId` (`U` + 32 letters/digits) to the current user ID on `channelId` (default: `defaultChannelId`). */
  setLineUserId(lineUserId, channelId) {
    this.#call(() => this.#c.setLineUserId(str(lineUserId), optArg(channelId)));
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
    this.#call(() => this.#c.linkLineIdToken(str(idToken), optArg(channelId)));
  }

  unlinkLineUserId(lineUserId, channelId) {
    this.#call(() => this.#c.unlinkLineUserId(str(lineUserId), optArg(channelId)));
  }

  unlinkLineID(lineUserId, channelId) {
    this.unlinkLineUserId(lineUserId, channelId);
  }

  /** Opt in (default) or out; opting out drops the queue and ignores later calls until opted in. */
  optIn(optedIn = true) {
    this.#call(() => this.#c.setOptedIn(optedIn !== false));
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
      this.#c.requestFlush();
    } catch (e) {
      warn('flush', e);
    }
    const start = Date.now();
    return new Promise((resolve) => {
      const check = () => {
        const pending = this.#c.pendingOps();
        const paused = this.#c.paused();
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
    this.#call(() => this.#c.setSdkToken(str(token)));
  }

  get deviceId() {
    return this.#c.deviceId();
  }

  get userId() {
    return this.#c.userId();
  }

  get optedIn() {
    return this.#c.optedIn();
  }

  /** Calls accepted and not yet reported. */
  get pendingOps() {
    return this.#c.pendingOps();
  }

  /** Whether this tab is the one delivering. */
  get isLeader() {
    return this.#c.isLeader();
  }

  /** Whether the queue is in localStorage (false: memory only, see `onState`). */
  get persistent() {
    return this.#c.persistent();
  }

  get requestsSent() {
    return this.#c.requestsSent();
  }

  /** Stops delivering; the queue stays in localStorage for the next page. */
  shutdown() {
    this.#stop();
    if (current === this) {
      current = null;
      for (const release of role.releases.splice(0)) release();
      role.leader = false;
    }
  }
}

const COMMANDS = {
  setUserID: 'setUserId',
  setUserId: 'setUserId',
  setLineUserId: 'setLineUserId',
  linkLineID: 'linkLineID',
  linkLineIDToken: 'linkLineIDToken',
  unlinkLineID: 'unlinkLineID',
  unlinkLineUserId: 'unlinkLineUserId',
  optIn: 'optIn',
  optOut: 'optOut',
  flush: 'flush',
  onDelivery: 'onDelivery',
  onState: 'onState',
  setSdkToken: 'setSdkToken',
};

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
  const method = Object.prototype.hasOwnProperty.call(COMMANDS, command) ? COMMANDS[command] : null;
  if (!method) throw new ReproLineError('unknown_command', 'unknown reproline command ' + JSON.stringify(command));
  if (!instance) throw new ReproLineError('not_set_up', 'call reproline("setup", {sdkToken, endpoint}) first');
  return instance[method](...args);
}

/** The same function under Repro-style naming, for imports (no global is touched). */
export { reproline as reproio };

export default ReproLine;
