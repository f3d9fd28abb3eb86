// The wasm's loader and its raw ABI (bindings-wasm/src/abi.rs: exports, src/js.rs: imports),
// hand-written instead of wasm-bindgen's glue: numbers cross the boundary, strings as UTF-8 in the
// wasm's memory (JS → wasm: written into the scratch buffer `b(len)`, passed as byte lengths, -1
// for none; wasm → JS: `(ptr, len)` arguments, or a length in the buffer for a returned string).
// Clients are handles; each handle's listeners and I/O live here in `H`, localStorage objects in
// `S` (handle 0: none). Imports that can throw catch here and return a status (src/js.rs), so no
// exception of the page's crosses the wasm.
let w;
const enc = new TextEncoder();
const dec = new TextDecoder();
const H = [];
const S = [0];
let M;
// The wasm's memory as bytes: one view, made again only after the memory grew (which detaches the
// old one, its length then 0). A new view per call was garbage that showed in the calls' p99.
const mem = () => (M && M.byteLength ? M : (M = new Uint8Array(w.memory.buffer)));
const u8 = (p, l) => mem().subarray(p, p + l);
const str = (p, l) => dec.decode(u8(p, l));
// Writes `s` at `p` (room for 3 bytes per UTF-16 unit); its length in bytes. ASCII goes byte by
// byte (no garbage: calls carry ASCII IDs), the rest from the first other unit through TextEncoder.
function put1(s, p) {
  const m = mem();
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) return i + enc.encodeInto(s.slice(i), m.subarray(p + i, p + 3 * n)).written;
    m[p + i] = c;
  }
  return n;
}
// The strings `a` (undefined/null: none; anything else as `String` makes it) written back to back
// into the buffer; their byte lengths.
function put(...a) {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] != null) n += (a[i] = String(a[i])).length * 3;
  let p = w.b(n);
  for (let i = 0; i < a.length; i++) {
    if (a[i] == null) a[i] = -1;
    else p += a[i] = put1(a[i], p);
  }
  return a;
}
// A string in the buffer (what the wasm returned), `n` bytes.
const out = (n) => str(w.b(0), n);
// The message of a thrown value (a string as is, else its string `message`, else "unknown error"),
// as the status `-2 - length` of an import that threw.
function fail(e) {
  let m = 'unknown error';
  if (typeof e === 'string') m = e;
  else
    try {
      if (typeof e.message === 'string') m = e.message;
    } catch (_) {}
  return -2 - put(m)[0];
}
// A string or null from JS as an import's status (-1: null).
const give = (v) => (v == null ? -1 : put(String(v))[0]);
// `f()`'s status (src/js.rs), or the status of what it threw.
function attempt(f) {
  try {
    return f();
  } catch (e) {
    return fail(e);
  }
}

const imports = {
  r: {
    ls() {
      try {
        const s = globalThis.localStorage;
        if (typeof s === 'object' && s) {
          const i = S.indexOf(s);
          return i < 0 ? S.push(s) - 1 : i;
        }
      } catch (_) {}
      return 0;
    },
    gi: (s, k, kl) => attempt(() => give(S[s].getItem(str(k, kl)))),
    si: (s, k, kl, v, vl) => attempt(() => (S[s].setItem(str(k, kl), str(v, vl)), 0)),
    ri: (s, k, kl) => attempt(() => (S[s].removeItem(str(k, kl)), 0)),
    ky: (s, i) => attempt(() => give(S[s].key(i))),
    ln: (s) => attempt(() => S[s].length >>> 0),
    now: Date.now,
    rnd(p, l) {
      try {
        crypto.getRandomValues(u8(p, l));
        return 0;
      } catch (_) {
        return 1;
      }
    },
    op(h, id, idl, seq, k, kl, u, ul, l, ll, c, cl, s, sl, code, t, tl) {
      try {
        H[h][0](str(id, idl), seq, str(k, kl), str(u, ul), str(l, ll), str(c, cl), str(s, sl), code, str(t, tl));
      } catch (_) {}
    },
    st(h, k, kl, leader, persistent, r, rl) {
      try {
        H[h][1](str(k, kl), !!leader, !!persistent, str(r, rl));
      } catch (_) {}
    },
    w(h, ms) {
      H[h][2].w(ms);
    },
    f(h) {
      H[h][2].f();
    },
    p: (h, ms, u, ul, th, thl, t, tl, rh, rhl, retry, b, bl, keepalive) =>
      attempt(() => (H[h][2].p(ms, str(u, ul), str(th, thl), str(t, tl), str(rh, rhl), retry, u8(b, bl).slice(), !!keepalive), 0)),
  },
};

/** Thrown by calls with an invalid argument or configuration; `code` names the rule. */
export class ReproLineError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ReproLineError';
    this.code = code;
  }
}

// The wasm's `"code:message"` error of `n` bytes in the buffer, thrown as a ReproLineError.
function raise(n) {
  const e = out(n);
  const i = e.indexOf(':');
  throw new ReproLineError(e.slice(0, i), e.slice(i + 1));
}

/** One client in the wasm: `new Client(...)` and `call` throw `ReproLineError`s. */
export class Client {
  constructor(sdkToken, endpoint, channel, namespace, ...rest) {
    const h = w.c(...put(sdkToken, endpoint, channel, namespace), ...rest);
    if (h < 0) raise(-h);
    this.h = h;
  }
  call(what, a, b) {
    const n = w.k(this.h, what, ...put(a, b));
    if (n) raise(n);
  }
  // `events(...)`, `states(...)` and `io` (see src/js.rs `Page`); delivery starts here.
  listen(events, states, io) {
    H[this.h] = [events, states, io];
    w.l(this.h);
  }
  num(what) {
    return w.q(this.h, what + 3) >>> 0;
  }
  text(what) {
    return out(w.q(this.h, what));
  }
}

/** Instantiates the wasm from its bytes (or a compiled module) now; a no-op once loaded. */
export function initSync(bytes) {
  if (!w) w = new WebAssembly.Instance(bytes instanceof WebAssembly.Module ? bytes : new WebAssembly.Module(bytes), imports).exports;
}

/**
 * Fetches and instantiates the wasm at `url`, whatever its content type. Not streaming: the module
 * is small (V8 compiled it in 0.5-2 ms in Node 20 on our 2-core machine), and the code that chose
 * streaming for `application/wasm` cost 42 B gzip.
 */
export default async function init(url) {
  if (w) return;
  const { instance } = await WebAssembly.instantiate(await (await fetch(url)).arrayBuffer(), imports);
  w = w || instance.exports;
}
