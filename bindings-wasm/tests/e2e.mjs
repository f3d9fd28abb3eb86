// End-to-end tests in headless Chromium (Debian's, driven by playwright-core) against the emulator.
// Usage: node e2e.mjs EMULATOR_URL   (env PLAYWRIGHT_CORE = path of the playwright-core package)
// Pages are served from a loopback static server; the snippet's placeholders are rewritten to
// the local package, the emulator and a test token. Prints `N passed, N failed` last.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const EMU = process.argv[2];
if (!EMU) {
  console.error('usage: node e2e.mjs EMULATOR_URL');
  process.exit(2);
}
const PW = process.env.PLAYWRIGHT_CORE;
const { chromium } = await import(pathToFileURL(path.join(PW, 'index.mjs')).href);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHANNEL = '1234567890';
const TOKEN = 'T';
const line = (n) => 'U' + String(n).padStart(32, '0');
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

// ---- static server --------------------------------------------------------------------------
const MOUNTS = {
  '/npm/': path.join(ROOT, 'bindings-wasm/npm/'),
  '/examples/': path.join(ROOT, 'examples/'),
  '/pages/': path.join(ROOT, 'bindings-wasm/tests/pages/'),
};
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const mount = Object.keys(MOUNTS).find((m) => url.pathname.startsWith(m));
  const file = mount && path.normalize(path.join(MOUNTS[mount], url.pathname.slice(mount.length)));
  if (!file || !file.startsWith(MOUNTS[mount]) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404).end('not found');
    return;
  }
  let body = fs.readFileSync(file);
  const ext = path.extname(file);
  if (ext === '.html') {
    body = body
      .toString()
      .replaceAll('https://YOUR.CDN/repro-line@0.1.0/auto.js', '/npm/auto.js')
      .replaceAll('https://YOUR.CDN/repro-line@0.1.0/dist/repro-line.js', '/npm/dist/repro-line.js')
      .replaceAll('YOUR_SDK_TOKEN', TOKEN)
      .replaceAll('https://YOUR_ENDPOINT', EMU)
      .replaceAll('YOUR_CHANNEL_ID', CHANNEL)
      .replaceAll('YOUR_LIFF_ID', 'test-liff-id');
  }
  const headers = { 'content-type': TYPES[ext] || 'application/octet-stream', 'cache-control': 'no-store' };
  if (url.searchParams.has('isolated')) {
    // Cross-origin isolation: performance.now() at 5 µs instead of 100 µs (the benchmark).
    headers['cross-origin-opener-policy'] = 'same-origin';
    headers['cross-origin-embedder-policy'] = 'require-corp';
  }
  res.writeHead(200, headers);
  res.end(body);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const SITE = 'http://127.0.0.1:' + server.address().port;

// ---- helpers --------------------------------------------------------------------------------
async function admin(method, route, body) {
  const r = await fetch(EMU + route, { method, body });
  if (!r.ok) throw new Error(method + ' ' + route + ' → ' + r.status);
  const t = await r.text();
  return t ? JSON.parse(t) : null;
}
const faults = (spec) => admin('PUT', '/admin/faults', spec);
const state = () => admin('GET', '/admin/state');
const stats = () => admin('GET', '/admin/stats');

async function until(what, fn, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('timed out waiting for ' + what);
}

async function linked(lineUserId, userId) {
  const s = await state();
  return s.links.some((l) => l.line_user_id === lineUserId && l.user_id === userId && l.channel_id === CHANNEL);
}

function assert(cond, msg) {
  if (!cond) throw new Error('assertion failed: ' + msg);
}

/** A fresh profile (user-data-dir) per test, so storage and locks never leak between tests. */
async function browser() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'repro-line-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
  });
  ctx.__dir = dir;
  return ctx;
}

async function close(ctx) {
  await ctx.close().catch(() => {});
  fs.rmSync(ctx.__dir, { recursive: true, force: true });
}

/** Opens a page and records errors thrown into it and the batch requests it sends. */
async function open(ctx, url) {
  const page = await ctx.newPage();
  page.__errors = [];
  page.__batches = 0;
  page.on('pageerror', (e) => page.__errors.push(String(e)));
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().includes('/v1/identity/batch')) page.__batches++;
  });
  await page.goto(url);
  return page;
}

async function noErrors(page) {
  const inPage = await page.evaluate(() => window.__errors || []).catch(() => []);
  const all = page.__errors.concat(inPage);
  assert(all.length === 0, 'errors thrown into the page: ' + JSON.stringify(all));
}

const testPage = (calls, extra = '') =>
  SITE + '/pages/snippet.html?calls=' + encodeURIComponent(JSON.stringify(calls)) + extra;

// ---- tests ----------------------------------------------------------------------------------
const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('snippet: calls made before the SDK loads are replayed and delivered in order', async (ctx) => {
  const calls = [
    ['setUserID', 'order-1'],
    ['linkLineID', line(1)],
    ['unlinkLineID', line(1)],
    ['setUserID', 'order-2'],
    ['linkLineID', line(2)],
    ['linkLineID', line(1)],
  ];
  const page = await open(ctx, testPage(calls));
  assert((await page.evaluate(() => window.__queuedBeforeLoad)) >= calls.length, 'calls were queued before load');
  const events = await until('6 reports', async () => {
    const ev = await page.evaluate(() => window.__events.filter((e) => e.type === 'op'));
    return ev.length >= 6 && ev;
  });
  const seqs = events.map((e) => e.seq).sort((a, b) => a - b);
  assert(events.every((e) => e.status === 'delivered'), 'all delivered: ' + JSON.stringify(events.map((e) => e.status)));
  assert(JSON.stringify(seqs) === '[1,2,3,4,5,6]', 'one op per call, seq in call order: ' + seqs);
  const byseq = Object.fromEntries(events.map((e) => [e.seq, e.kind + ':' + (e.lineUserId || e.userId)]));
  assert(byseq[3] === 'unlink_line_id:' + line(1) && byseq[4] === 'set_user_id:order-2', 'kinds in call order');
  const s = await state();
  assert(s.devices[0].current_user_id === 'order-2', 'device user is the last one set');
  assert(await linked(line(1), 'order-2'), 'L1 ends linked to order-2');
  assert(await linked(line(2), 'order-2'), 'L2 linked to order-2');
  await noErrors(page);
});

test('a reload in the middle of a backoff still delivers (the queue survives in localStorage)', async (ctx) => {
  await faults('503=1.0,retry_after=1');
  const page = await open(ctx, testPage([['setUserID', 'reload-1'], ['linkLineID', line(3)]]));
  await until('two failed attempts', async () => (await stats()).requests >= 2);
  await page.goto(testPage([])); // the reloaded page makes no call of its own
  await faults('');
  await until('the link after the reload', () => linked(line(3), 'reload-1'));
  const st = await stats();
  assert(st.ops_applied === 2, 'applied once each: ' + JSON.stringify(st));
  assert(st.retry_after_violations === 0, 'Retry-After honoured across the reload: ' + JSON.stringify(st));
  await noErrors(page);
});

test('two tabs: one delivers, nothing is sent twice, the other takes over when it closes', async (ctx) => {
  await faults('503=1.0,retry_after=1');
  const a = await open(ctx, testPage([['setUserID', 'tab-a'], ['linkLineID', line(4)]]));
  await until('tab A tried', async () => (await stats()).requests >= 1);
  const b = await open(ctx, testPage([['setUserID', 'tab-b'], ['linkLineID', line(5)]]));
  await until('tab B loaded', () => b.evaluate(() => typeof window.reproline === 'function' && !window.reproline.q));
  await new Promise((r) => setTimeout(r, 500));
  await faults('');
  await until('both links', async () => (await linked(line(4), 'tab-a')) && (await linked(line(5), 'tab-b')));
  await new Promise((r) => setTimeout(r, 1000));
  let st = await stats();
  assert(st.ops_duplicate === 0, 'no op sent twice: ' + JSON.stringify(st));
  assert(st.ops_applied === 4, 'four ops applied: ' + JSON.stringify(st));
  assert(b.__batches === 0, 'tab B (follower) sent nothing, sent ' + b.__batches);
  assert(st.retry_after_violations === 0, 'Retry-After honoured: ' + JSON.stringify(st));
  await noErrors(a);
  await noErrors(b);
  // Close the delivering tab: B gets the lock, and its new call is delivered from B.
  await a.close();
  await b.evaluate((l) => reproline('linkLineID', l), line(6));
  await until('the link made after the hand-over', () => linked(line(6), 'tab-b'));
  st = await stats();
  assert(st.ops_duplicate === 0 && st.ops_applied === 5, 'exactly once after the hand-over: ' + JSON.stringify(st));
  assert(b.__batches >= 1, 'tab B delivers after the hand-over');
  await noErrors(b);
});

const modulePage = (opts = {}, extra = '') =>
  SITE + '/pages/module.html?opts=' + encodeURIComponent(JSON.stringify(opts)) + extra;
const ready = (page) => until('SDK loaded', () => page.evaluate(() => window.__ready === true));

test('an endpoint that never answers: each attempt is cut at requestTimeoutMs and retried; delivered exactly once when it answers again', async (ctx) => {
  // The emulator holds every batch request for 60 s (longer than any test): only the SDK's own
  // timer can end an attempt. Without it the first fetch would hang and nothing would be retried.
  await faults('latency_ms=60000');
  const page = await open(ctx, modulePage({ requestTimeoutMs: 300 }));
  const aborted = [];
  page.on('requestfailed', (r) => {
    if (r.url().includes('/v1/identity/batch')) aborted.push(r.failure() && r.failure().errorText);
  });
  await ready(page);
  await page.evaluate((l) => {
    __rl.setUserId('hang-1');
    __rl.linkLineID(l);
  }, line(8));
  await until('two attempts cut by the timeout', async () => aborted.length >= 2, 15000);
  const before = await state();
  assert(before.links.length === 0, 'nothing applied while the endpoint hangs: ' + JSON.stringify(before.links));
  assert(
    (await page.evaluate(() => __events.filter((e) => e.type === 'op').length)) === 0,
    'no report while the endpoint hangs (the calls are still queued)',
  );
  await faults(''); // the endpoint answers again
  await until('the link after recovery', () => linked(line(8), 'hang-1'), 20000);
  const events = await until('two reports', async () => {
    const ev = await page.evaluate(() => __events.filter((e) => e.type === 'op'));
    return ev.length >= 2 && ev;
  });
  await new Promise((r) => setTimeout(r, 500));
  const st = await stats();
  assert(st.ops_applied === 2 && st.ops_duplicate === 0, 'each call applied exactly once: ' + JSON.stringify(st));
  assert(events.length === 2 && events.every((e) => e.status === 'delivered'), 'reports: ' + JSON.stringify(events));
  const answered = (await admin('GET', '/admin/requests')).filter((r) => r.status === 200);
  assert(answered.length === 1 && answered[0].retry_count >= 2, 'one answered request, a retry: ' + JSON.stringify(answered));
  await noErrors(page);
});

test('two tabs interleaving setUserId/linkLineID task by task: every link has the user in force in its tab', async (ctx) => {
  const a = await open(ctx, modulePage());
  await ready(a);
  const b = await open(ctx, modulePage());
  await ready(b);
  assert(await a.evaluate(() => __rl.isLeader), 'tab A delivers');
  assert(!(await b.evaluate(() => __rl.isLeader)), 'tab B is a follower');
  const tabs = [a, b];
  const expected = new Map();
  // Deterministic pseudo-random schedule (xorshift): which tab, and set / link / set+link in one task.
  let x = 0x2545f491;
  const rnd = (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  for (let t = 0; t < 2; t++) await tabs[t].evaluate((u) => __rl.setUserId(u), 'first-' + t);
  for (let step = 0; step < 200; step++) {
    const t = rnd(2);
    const l = line(1000 + step);
    const kind = rnd(3);
    const user = await tabs[t].evaluate(
      ([kind, u, l]) => {
        if (kind !== 1) __rl.setUserId(u);
        if (kind === 0) return null;
        const inForce = __rl.userId; // what this tab shows when it makes the call
        __rl.linkLineID(l);
        return inForce;
      },
      [kind, 'user-' + t + '-' + step, l],
    );
    if (user !== null) expected.set(l, user);
    if (step % 7 === 0) await new Promise((r) => setTimeout(r, rnd(20)));
  }
  await until('every link', async () => {
    const s = await state();
    return s.links.filter((l) => expected.has(l.line_user_id)).length === expected.size;
  });
  const s = await state();
  const wrong = s.links
    .filter((l) => expected.has(l.line_user_id) && expected.get(l.line_user_id) !== l.user_id)
    .map((l) => l.line_user_id.slice(-4) + ' → ' + l.user_id + ' (expected ' + expected.get(l.line_user_id) + ')');
  assert(wrong.length === 0, wrong.length + ' of ' + expected.size + ' links under the wrong user: ' + wrong.slice(0, 5).join('; '));
  assert(s.links.every((l) => l.channel_id === CHANNEL), 'default channel');
  const st = await stats();
  assert(st.ops_duplicate === 0, 'nothing applied twice: ' + JSON.stringify(st));
  assert(b.__batches === 0, 'the follower sent nothing');
  await noErrors(a);
  await noErrors(b);
});

for (const repro of ['plain', 'queue']) {
  for (const order of ['before', 'after']) {
    test(`beside Repro's Web SDK (${repro === 'plain' ? 'a plain function' : 'queueing in reproio.q'}, loaded ${order} ours): each gets exactly its own calls`, async (ctx) => {
      const L = line(order === 'before' ? 20 : 21);
      const page = await open(ctx, SITE + '/pages/coexist.html?repro=' + repro + '&order=' + order + '&line=' + L);
      await until('both SDKs loaded', () =>
        page.evaluate(() => window.__reproLoaded === true && typeof window.reproline === 'function' && !window.reproline.q),
      );
      await until('our link', () => linked(L, 'coexist-user'));
      const seen = await page.evaluate(() => ({
        repro: window.__repro,
        ours: typeof window.reproio === 'function' && window.reproio === window.reproline,
        q: window.reproio && window.reproio.q,
      }));
      assert(
        JSON.stringify(seen.repro) ===
          JSON.stringify([['setup', 'REPRO_APP_TOKEN'], ['track', 'page-view'], ['setUserID', 'repro-user']]),
        "Repro's SDK got exactly its calls: " + JSON.stringify(seen.repro),
      );
      assert(!seen.ours, 'window.reproio is not ours');
      await new Promise((r) => setTimeout(r, 300));
      const st = await stats();
      assert(st.ops_applied === 2, 'we delivered exactly our two calls: ' + JSON.stringify(st));
      const s = await state();
      assert(s.devices[0].current_user_id === 'coexist-user', 'our user, not Repro\'s: ' + JSON.stringify(s.devices));
      await noErrors(page);
    });
  }
}

test('opt-in reproio names: deliver on a page without Repro; leave Repro\'s SDK alone if it is there', async (ctx) => {
  const page = await open(ctx, SITE + '/pages/optin.html?line=' + line(22));
  await until('the link', () => linked(line(22), 'optin-user'));
  assert(await page.evaluate(() => !window.reproio.q && window.__repro.length === 0), 'reproio is ours');
  await noErrors(page);
  const p2 = await open(ctx, SITE + '/pages/optin.html?repro=plain&line=' + line(23));
  await until('loaded', () => p2.evaluate(() => window.__loaded === true));
  const seen = await p2.evaluate(() => ({ repro: window.__repro, warnings: window.__warnings }));
  assert(seen.repro.length === 3 && seen.repro[0][0] === 'setup', "Repro's SDK got the calls made to it: " + JSON.stringify(seen.repro));
  assert(seen.warnings.some((w) => w.includes('belongs to another script')), 'a console warning says why: ' + JSON.stringify(seen.warnings));
  await noErrors(p2);
});

test('constant cost per call: characters written to localStorage do not grow with the queue (benchmark printed)', async (ctx) => {
  // Nothing is delivered (a closed loopback port), so the queue only grows; 2 MiB budget for 2,000 calls.
  const opts = { endpoint: 'http://127.0.0.1:9', debounceMs: 3600000, maxQueueOps: 5000, storageBudgetBytes: 2 << 20 };
  const page = await open(ctx, modulePage(opts, '&isolated=1'));
  await ready(page);
  const r = await page.evaluate(async () => {
    const line = (n) => 'U' + String(n).padStart(32, '0');
    let chars = 0;
    const setItem = Storage.prototype.setItem;
    Storage.prototype.setItem = function (k, v) {
      chars += String(k).length + String(v).length;
      return setItem.call(this, k, v);
    };
    __rl.setUserId('bench-user');
    await null;
    const perCall = [];
    const call = [];
    const task = [];
    for (let i = 0; i < 2000; i++) {
      // One call per task; `await null` runs after the SDK's end-of-task write.
      const c0 = chars;
      const t0 = performance.now();
      __rl.linkLineID(line(100000 + i));
      const t1 = performance.now();
      await null;
      const t2 = performance.now();
      call.push((t1 - t0) * 1000);
      task.push((t2 - t0) * 1000);
      perCall.push(chars - c0);
    }
    Storage.prototype.setItem = setItem;
    return { perCall, call, task, isolated: self.crossOriginIsolated, pending: __rl.pendingOps, persistent: __rl.persistent };
  });
  assert(r.pending === 2001 && r.persistent, 'all 2001 calls queued in localStorage: ' + r.pending + ' ' + r.persistent);
  const avg = (a) => a.reduce((s, v) => s + v, 0) / a.length;
  const first = r.perCall.slice(0, 100);
  const late = r.perCall.slice(1000);
  assert(Math.min(...r.perCall) > 0, 'every call is written by the end of its task');
  // Only the numbers grow: the chunk key's counter and the op's seq gain a digit or two.
  assert(Math.max(...late) <= Math.max(...first) + 8, 'no call with 1,000+ queued writes more than the first calls did: ' + Math.max(...first) + ' vs ' + Math.max(...late));
  assert(Math.abs(avg(late) - avg(first)) <= 8, 'characters per call independent of the queue: ' + avg(first) + ' vs ' + avg(late));
  assert(Math.max(...r.perCall) < 1024, 'one small write per call: max ' + Math.max(...r.perCall));
  const q = (a, p) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];
  const f = (a) => 'p50 ' + q(a, 0.5).toFixed(0) + ' µs, p99 ' + q(a, 0.99).toFixed(0) + ' µs';
  console.log(
    '     bench, with 1,000–2,000 calls queued: the call ' + f(r.call.slice(1000)) + '; call + its end-of-task write ' + f(r.task.slice(1000)) +
      '; first 100 calls: call ' + f(r.call.slice(0, 100)) + '; ' + avg(late).toFixed(1) + ' characters written per call' +
      ' (timer ' + (r.isolated ? '5 µs, cross-origin isolated' : 'coarse: not isolated') + ')',
  );
  // Reload: the 2,001 calls come back from the chunked journal.
  await page.reload();
  await ready(page);
  assert((await page.evaluate(() => __rl.pendingOps)) === 2001, 'the queue survives a reload');
  await noErrors(page);
});

test('a full localStorage never throws into the page; the queue falls back to memory', async (ctx) => {
  const page = await open(ctx, testPage([['setUserID', 'quota-1'], ['linkLineID', line(7)]], '&fill=1'));
  await until('the link', () => linked(line(7), 'quota-1'));
  const states = await page.evaluate(() => window.__states);
  assert(
    states.some((s) => s.type === 'storage' && s.persistent === false),
    'fallback reported through onState: ' + JSON.stringify(states),
  );
  // Further calls still work.
  await page.evaluate((l) => reproline('unlinkLineID', l), line(7));
  await until('the unlink', async () => !(await linked(line(7), 'quota-1')));
  await noErrors(page);
});

test('an invalid explicit call throws ReproLineError with a code and the rule', async (ctx) => {
  const page = await open(ctx, testPage([['setUserID', 'valid-1']]));
  await until('SDK loaded', () => page.evaluate(() => typeof window.reproline === 'function' && !window.reproline.q));
  const [name, code, message, isError] = await page.evaluate(() => {
    try {
      reproline('linkLineID', 'U123');
      return [];
    } catch (e) {
      return [e.name, e.code, e.message, e instanceof Error];
    }
  });
  assert(name === 'ReproLineError' && code === 'invalid_line_user_id' && isError, 'error: ' + name + ' ' + code);
  assert(message.includes('U followed by 32 ASCII letters or digits'), 'rule in message: ' + message);
  // A queued (pre-load) invalid call is only reported on the console, never thrown.
  const p2 = await open(ctx, testPage([['setUserID', '']]));
  await until('SDK loaded', () => p2.evaluate(() => typeof window.reproline === 'function' && !window.reproline.q));
  await noErrors(p2);
});

test('examples/web-snippet registers a link', async (ctx) => {
  const page = await open(ctx, SITE + '/examples/web-snippet/index.html');
  await page.fill('#user', 'site-member-1');
  await page.fill('#line', line(8));
  await page.click('button[type=submit]');
  await until('the link', () => linked(line(8), 'site-member-1'));
  await until('the report in the page', async () => (await page.textContent('#log')).includes('link_line_id → delivered'));
  await noErrors(page);
});

// ---- verified linking with a LINE ID token (issue 13) ------------------------------------------
// The emulator plays LINE: it mints ES256 ID tokens and verifies them against its own key, for
// Repro's channel CHANNEL when their `aud` (the LINE Login channel) is allowed for it.
const LOGIN_CHANNEL = '1650000001';
const allowLogin = () => admin('PUT', '/admin/line/login-channels', JSON.stringify({ [CHANNEL]: [LOGIN_CHANNEL] }));
const idTokenOnly = () => admin('PUT', '/admin/identity', 'id_token');
const mint = async (lineUserId, loginChannel = LOGIN_CHANNEL) =>
  (await admin('POST', '/admin/line/id-tokens', JSON.stringify({ line_user_id: lineUserId, login_channel_id: loginChannel }))).id_token;
const opEvents = (page, kind) => page.evaluate((k) => window.__events.filter((e) => e.type === 'op' && e.kind === k), kind);

test('examples/web-liff links with liff.getIDToken(): the emulator verifies the token and links its sub', async (ctx) => {
  await allowLogin();
  await idTokenOnly(); // a raw link of the profile would be refused: only the token path can pass
  const LIFF_USER = line(9);
  const idToken = await mint(LIFF_USER);
  await ctx.route('https://static.line-scdn.net/**', (route) =>
    route.fulfill({ status: 200, contentType: 'text/javascript', body: '/* LIFF SDK: replaced by the test stub */' }),
  );
  await ctx.addInitScript(([idToken, other]) => {
    window.liff = {
      init: async () => {},
      isLoggedIn: () => true,
      login: () => {},
      // Another ID than the token's: the example must not link what the profile claims.
      getProfile: async () => ({ userId: other, displayName: 'Test User' }),
      getIDToken: () => idToken,
      getDecodedIDToken: () => ({ name: 'Test User' }),
    };
  }, [idToken, line(10)]);
  const consoleText = [];
  ctx.on('console', (m) => consoleText.push(m.text()));
  const page = await open(ctx, SITE + '/examples/web-liff/index.html?member=liff-member-1');
  await until('the link', () => linked(LIFF_USER, 'liff-member-1'));
  await until('the report in the page', async () => (await page.textContent('#log')).includes('link_line_id_token → delivered'));
  await until('status', async () => (await page.textContent('#status')).startsWith('Linked'));
  const s = await state();
  assert(!s.links.some((l) => l.line_user_id === line(10)), 'the profile ID was not linked');
  assert((await stats()).ops_applied === 2, 'setUserID and the token link applied');
  const shown = (await page.content()) + consoleText.join('\n');
  assert(!shown.includes(idToken), 'the token is neither shown in the page nor logged');
  await noErrors(page);
});

test('snippet command linkLineIDToken: replayed from the queue, verified; reports show the sub, never the token', async (ctx) => {
  await allowLogin();
  const good = await mint(line(12));
  const forgedFrom = await mint(line(13));
  // Same header and claims, another signature: the endpoint must refuse it (1008).
  const parts = forgedFrom.split('.');
  const forged = parts[0] + '.' + parts[1] + '.' + (parts[2][0] === 'A' ? 'B' : 'A') + parts[2].slice(1);
  const otherLogin = await mint(line(14), '1650009999'); // aud not allowed for CHANNEL
  const page = await open(ctx, testPage([
    ['setUserID', 'tok-1'],
    ['linkLineIDToken', good],
    ['linkLineIDToken', forged],
    ['linkLineIDToken', otherLogin, CHANNEL],
  ]));
  const events = await until('3 token reports', async () => {
    const ev = await opEvents(page, 'link_line_id_token');
    return ev.length >= 3 && ev.sort((a, b) => a.seq - b.seq);
  });
  assert(events.map((e) => e.lineUserId).join() === [line(12), line(13), line(14)].join(), 'reports carry each sub: ' + JSON.stringify(events));
  assert(events[0].status === 'delivered' && events[0].channelId === CHANNEL && events[0].userId === 'tok-1', 'applied: ' + JSON.stringify(events[0]));
  assert(events[1].status === 'rejected' && events[1].code === 1008, 'forged signature 1008: ' + JSON.stringify(events[1]));
  assert(events[2].status === 'rejected' && events[2].code === 1008, 'LINE Login channel not allowed 1008: ' + JSON.stringify(events[2]));
  const all = JSON.stringify(await page.evaluate(() => [window.__events, window.__states]));
  for (const t of [good, forged, otherLogin]) assert(!all.includes(t) && !all.includes(t.split('.')[2]), 'no report holds a token');
  assert(await linked(line(12), 'tok-1'), 'the verified sub is linked');
  const s = await state();
  assert(!s.links.some((l) => l.line_user_id === line(13) || l.line_user_id === line(14)), 'refused tokens link nothing');
  // Caller-side checks throw the rule, not the token.
  const thrown = await page.evaluate(() => {
    const out = [];
    for (const t of ['abc.def', 'a.b.c', 'x'.repeat(9000) + '.e.f']) {
      try {
        reproline('linkLineIDToken', t);
        out.push(null);
      } catch (e) {
        out.push({ code: e.code, echoes: e.message.includes(t) });
      }
    }
    return out;
  });
  assert(thrown.every((t) => t && t.code === 'invalid_id_token' && !t.echoes), 'invalid tokens throw invalid_id_token without echoing: ' + JSON.stringify(thrown));
  await noErrors(page);
});

test('endpoint set to id_token only: a raw linkLineID is rejected 1007 and links nothing', async (ctx) => {
  await idTokenOnly();
  const page = await open(ctx, testPage([['setUserID', 'raw-1'], ['linkLineID', line(15)]]));
  const [ev] = await until('the raw link report', async () => {
    const e = await opEvents(page, 'link_line_id');
    return e.length >= 1 && e;
  });
  assert(ev.status === 'rejected' && ev.code === 1007, 'raw link refused 1007: ' + JSON.stringify(ev));
  assert(!(await state()).links.some((l) => l.line_user_id === line(15)), 'nothing linked');
  await noErrors(page);
});

test('two tabs: a follower tab\'s token link is delivered by the leader under the user in force in the follower', async (ctx) => {
  await allowLogin();
  const a = await open(ctx, modulePage());
  await ready(a);
  const b = await open(ctx, modulePage());
  await ready(b);
  assert(!(await b.evaluate(() => __rl.isLeader)), 'tab B is a follower');
  const tokens = [await mint(line(31)), await mint(line(32))];
  await a.evaluate(() => __rl.setUserId('tab-a'));
  // In one task, as a page would: B sets its user and links, before the leader has taken it.
  const shown = await b.evaluate((t) => {
    __rl.setUserId('tab-b');
    const u = __rl.userId;
    __rl.linkLineIDToken(t);
    return u;
  }, tokens[0]);
  const shownA = await a.evaluate((t) => {
    const u = __rl.userId;
    __rl.linkLineIDToken(t);
    return u;
  }, tokens[1]);
  await until('both token links', async () => (await linked(line(31), shown)) && (await linked(line(32), shownA)));
  assert(shown === 'tab-b', 'tab B showed its own user: ' + shown);
  const st = await stats();
  assert(st.ops_duplicate === 0, 'nothing applied twice: ' + JSON.stringify(st));
  assert(b.__batches === 0, 'the follower sent nothing');
  // Once the follower has seen the journal (any call or getter), it trims what the leader took.
  await until('the follower\'s inbox no longer holds the token', () =>
    b.evaluate((t) => {
      void __rl.pendingOps;
      return !Object.keys(localStorage).some((k) => k.includes(':in:') && localStorage.getItem(k).includes(t));
    }, tokens[0]),
  );
  await noErrors(a);
  await noErrors(b);
});

test('a custom namespace: a follower\'s call is taken by the leader while both tabs are open, and the follower sees the journal change', async (ctx) => {
  const opts = { namespace: 'shop' };
  const a = await open(ctx, modulePage(opts));
  await ready(a);
  const b = await open(ctx, modulePage(opts));
  await ready(b);
  assert(!(await b.evaluate(() => __rl.isLeader)), 'tab B is a follower');
  await b.evaluate((l) => {
    __rl.setUserId('shop-b');
    __rl.linkLineID(l);
  }, line(41));
  // The leader learns of B's inbox from the storage event, not only when it next starts or leads.
  await until('the follower\'s link, delivered by the leader', () => linked(line(41), 'shop-b'));
  // B learns the journal changed (its pending count falls to 0 once the leader has delivered).
  await until('the follower sees the queue drained', () => b.evaluate(() => __rl.pendingOps === 0));
  assert(b.__batches === 0, 'the follower sent nothing');
  assert(Object.keys(await a.evaluate(() => ({ ...localStorage }))).every((k) => k.startsWith('shop:')), 'every key under the namespace');
  await noErrors(a);
  await noErrors(b);
});

// ---- run ------------------------------------------------------------------------------------
let passed = 0;
let failed = 0;
const only = process.env.E2E_ONLY;
for (const t of tests) {
  if (only && !t.name.includes(only)) continue;
  await admin('POST', '/admin/reset');
  await faults('');
  // Not part of the emulator's reset: back to accepting raw links, no LINE Login channel allowed.
  await admin('PUT', '/admin/identity', 'any');
  await admin('PUT', '/admin/line/login-channels', '{}');
  const ctx = await browser();
  const t0 = Date.now();
  try {
    await t.fn(ctx);
    passed++;
    console.log('ok   ' + t.name + ' (' + (Date.now() - t0) + ' ms)');
  } catch (e) {
    failed++;
    console.log('FAIL ' + t.name + ': ' + (e && e.stack ? e.stack : e));
  } finally {
    await close(ctx);
  }
}
server.close();
console.log(passed + ' passed, ' + failed + ' failed');
process.exit(failed ? 1 : 0);
