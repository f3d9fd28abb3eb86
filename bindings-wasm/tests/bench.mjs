// Per-call cost benchmark in headless Chromium (run by hand, not in CI: `bash scripts/web-bench.sh`).
// Usage: node bench.mjs [ROUNDS]   (env PLAYWRIGHT_CORE = path of the playwright-core package;
// the package must be built: scripts/web-build.sh).
//
// Each round is a fresh browser profile with one leader tab that delivers nothing (a closed
// loopback port), so the queue only grows: 1,000 calls fill it, then 1,000 more are measured,
// one `linkLineID` per task (as a page makes them). For each measured call: the synchronous
// call, the call plus its end-of-task `localStorage` write, and the characters written
// (keys + values, counted in `Storage.prototype.setItem`). A `setTimeout` yield every 50 calls,
// as a page's own tasks would give (BENCH_NO_YIELD=1: none, one long task as in e2e.mjs; the
// p50s halve then — the browser's own work between tasks lands on the next calls). Baselines in the same page: a bare
// `setItem` of the same size, and the call with `storage: "memory"` (no journal). The page is
// cross-origin isolated, so `performance.now()` has 5 µs resolution. Prints per-round and
// pooled p50/p99, and exits 1 if characters per call grow with the queue (the CI test in
// e2e.mjs asserts that too) — the timings are reported, not asserted (machine-dependent).
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';

const ROUNDS = Number(process.argv[2] || 5);
const PW = process.env.PLAYWRIGHT_CORE;
const { chromium } = await import(pathToFileURL(path.join(PW, 'index.mjs')).href);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NPM = path.join(ROOT, 'bindings-wasm/npm/');
const PAGE = path.join(ROOT, 'bindings-wasm/tests/pages/module.html');

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  let file;
  if (url.pathname === '/bench.html') file = PAGE;
  else if (url.pathname.startsWith('/npm/')) file = path.normalize(path.join(NPM, url.pathname.slice(5)));
  if (!file || !file.startsWith(path.dirname(PAGE)) && !file.startsWith(NPM) || !fs.existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  let body = fs.readFileSync(file);
  if (file === PAGE) body = body.toString().replaceAll('YOUR_SDK_TOKEN', 'T').replaceAll('YOUR_CHANNEL_ID', '1234567890');
  res.writeHead(200, {
    'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
  });
  res.end(body);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const SITE = 'http://127.0.0.1:' + server.address().port;

const OPTS = { endpoint: 'http://127.0.0.1:9', debounceMs: 3600000, maxQueueOps: 5000, storageBudgetBytes: 4 << 20 };

// Runs in the page: fills the queue to FILL, measures N more calls.
async function inPage({ fill, n, YIELD }) {
  const line = (i) => 'U' + String(i).padStart(32, '0');
  let chars = 0;
  const setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (k, v) {
    chars += String(k).length + String(v).length;
    return setItem.call(this, k, v);
  };
  __rl.setUserId('bench-user');
  await null;
  const m = { call: [], task: [], chars: [], firstChars: [] };
  for (let i = 0; i < fill + n; i++) {
    const c0 = chars;
    const t0 = performance.now();
    __rl.linkLineID(line(100000 + i));
    const t1 = performance.now();
    await null; // after the SDK's end-of-task write (a microtask queued before this one)
    const t2 = performance.now();
    if (i < 100) m.firstChars.push(chars - c0);
    if (i >= fill) {
      m.call.push((t1 - t0) * 1000);
      m.task.push((t2 - t0) * 1000);
      m.chars.push(chars - c0);
    }
    if (YIELD && i % 50 === 49) await new Promise((r) => setTimeout(r, 0)); // let the browser breathe, as a page would
  }
  Storage.prototype.setItem = setItem;
  // Baseline: a bare setItem of the same size, one per task.
  const value = 'x'.repeat(Math.max(100, Math.round(m.chars.reduce((s, v) => s + v, 0) / m.chars.length) - 12));
  m.setItem = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    localStorage.setItem('bench:' + i, value);
    m.setItem.push((performance.now() - t0) * 1000);
    await null;
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 0));
  }
  for (let i = 0; i < n; i++) localStorage.removeItem('bench:' + i);
  m.pending = __rl.pendingOps;
  m.isolated = self.crossOriginIsolated;
  return m;
}

const q = (a, p) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];
const f = (a) => 'p50 ' + q(a, 0.5).toFixed(0).padStart(4) + ' µs, p99 ' + q(a, 0.99).toFixed(0).padStart(5) + ' µs';
const avg = (a) => a.reduce((s, v) => s + v, 0) / a.length;

async function round(storage) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'repro-line-bench-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: BROWSER,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  try {
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(SITE + '/bench.html?opts=' + encodeURIComponent(JSON.stringify({ ...OPTS, storage })));
    for (let i = 0; i < 100 && !(await page.evaluate(() => window.__ready === true)); i++) await new Promise((r) => setTimeout(r, 100));
    const m = await page.evaluate(inPage, { fill: 1000, n: 1000, YIELD: process.env.BENCH_NO_YIELD !== '1' });
    if (errors.length) throw new Error('errors in the page: ' + errors.join('; '));
    if (m.pending !== 2001) throw new Error('expected 2001 queued calls, got ' + m.pending);
    return m;
  } finally {
    await ctx.close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

let ok = true;
const all = { call: [], task: [], setItem: [], memory: [] };
const BROWSER = process.env.CHROMIUM || '/usr/bin/chromium';
console.log(`${execFileSync(BROWSER, ['--version']).toString().trim()}; ${os.cpus().length} × ${os.cpus()[0].model}; load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
for (let r = 1; r <= ROUNDS; r++) {
  const m = await round('local');
  const mem = await round('memory');
  const grows = Math.max(...m.chars) > Math.max(...m.firstChars) + 8 || Math.abs(avg(m.chars) - avg(m.firstChars)) > 8;
  ok &&= !grows && m.isolated;
  all.call.push(...m.call);
  all.task.push(...m.task);
  all.setItem.push(...m.setItem);
  all.memory.push(...mem.call);
  console.log(
    `round ${r}: call ${f(m.call)} | call + write ${f(m.task)} | bare setItem ${f(m.setItem)} | call, memory storage ${f(mem.call)} | ` +
      `chars/call ${avg(m.firstChars).toFixed(1)} (calls 1–100) vs ${avg(m.chars).toFixed(1)} (1,001–2,000)${grows ? ' GROWS' : ''}${m.isolated ? '' : ' NOT ISOLATED'}`,
  );
}
console.log(`pooled (${ROUNDS} × 1,000 calls with 1,000–2,000 queued): call ${f(all.call)} | call + write ${f(all.task)} | bare setItem ${f(all.setItem)} | call, memory storage ${f(all.memory)}`);
console.log(`load after: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
server.close();
process.exit(ok ? 0 : 1);
