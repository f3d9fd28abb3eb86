// The web package delivers to the gateway (issue 12, "Done when"): `repro-line gateway --config`
// with examples/gateway/local.toml (rewritten for a temp store, moto as Repro's S3 and the
// emulator as LINE, all on 127.0.0.1), the npm package (built dist, as conformance.mjs loads it)
// makes setUserId + linkLineIDToken + linkLineID calls, and the exported Format 1 files in moto
// sit at the right keys, hold the right rows and pass `repro-line csv validate`.
// Usage: node gateway.mjs REPRO_LINE_BIN EMULATOR_URL. Prints `N passed, N failed` last.
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [CLI, EMU] = process.argv.slice(2);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const { ReproLine } = await import('../npm/index.node.js');

// From examples/gateway/local.toml: its app `demo`, channel and LINE Login channel.
const SDK_TOKEN = 'dev-token';
const APP_ID = 'demoapp';
const CHANNEL = '1234567890';
const LOGIN = '1650000000';
// Appended app with identity = "any" (a trusted sender's raw links).
const RAW_TOKEN = 'web-raw-token';
const RAW_APP_ID = 'webrawapp';
const L = (n) => 'U' + String(n).padStart(32, '0');

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log((ok ? 'ok   ' : 'FAIL ') + name + (ok || !detail ? '' : ': ' + detail));
}

// moto keys objects by the caller's access key: the gateway's `testing`, so requests here say the same.
const S3_AUTH = { authorization: 'AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00' };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(secs, what, f) {
  const deadline = Date.now() + secs * 1000;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await sleep(100);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** `<app>/line_user_id/<channel>/<yyyy>/<mm>/<dd>/followed/` for today in Asia/Tokyo (UTC+9, no DST). */
function followedPrefix(app) {
  const d = new Date(Date.now() + 9 * 3600 * 1000);
  const p2 = (n) => String(n).padStart(2, '0');
  return `${app}/line_user_id/${CHANNEL}/${d.getUTCFullYear()}/${p2(d.getUTCMonth() + 1)}/${p2(d.getUTCDate())}/followed/`;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'web-gateway-'));
const children = [];
function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
}

async function startMoto() {
  if (spawnSync('sh', ['-c', 'command -v moto_server'], { stdio: 'ignore' }).status !== 0) {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts/ensure-moto.sh')], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('scripts/ensure-moto.sh failed');
  }
  const port = await freePort();
  const moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  children.push(moto);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(60, 'moto', async () => {
    try {
      return (await fetch(url + '/repro-data-store', { method: 'PUT', headers: S3_AUTH })).ok;
    } catch {
      return false;
    }
  });
  return url;
}

/** examples/gateway/local.toml with test-local values; every other key as the example has it. */
function writeConfig(s3) {
  const example = fs.readFileSync(path.join(ROOT, 'examples/gateway/local.toml'), 'utf8');
  const set = (text, key, value) => {
    const re = new RegExp(`^${key} = .*$`, 'm');
    if (!re.test(text)) throw new Error(`examples/gateway/local.toml has no ${key}`);
    return text.replace(re, `${key} = ${value}`);
  };
  let text = example;
  text = set(text, 'listen', '"127.0.0.1:0"');
  text = set(text, 'store', JSON.stringify('sqlite://' + path.join(work, 'gateway.db')));
  text = set(text, 'line_api', JSON.stringify(EMU));
  text = set(text, 'export_interval_secs', '0.5');
  text = set(text, 'endpoint', JSON.stringify(s3));
  text += `
[[apps]]
name = "webraw"
tokens = ["${RAW_TOKEN}"]
repro_app_id = "${RAW_APP_ID}"
identity = "any"
[[apps.channels]]
id = "${CHANNEL}"
`;
  const file = path.join(work, 'gateway.toml');
  fs.writeFileSync(file, text);
  return file;
}

function startGateway(config) {
  const env = { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', REPRO_LINE_LOG: 'warn' };
  for (const k of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3']) delete env[k];
  const gw = spawn(CLI, ['gateway', '--config', config], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(gw);
  return new Promise((resolve, reject) => {
    let out = '';
    const early = (code) => reject(new Error('gateway exited with ' + code));
    gw.once('exit', early);
    gw.stdout.on('data', (d) => {
      out += d;
      const m = /^listening on (http\S+)/m.exec(out);
      if (m) {
        gw.off('exit', early);
        resolve({ proc: gw, url: m[1] });
      }
    });
  });
}

async function mint(lineUserId) {
  const r = await fetch(EMU + '/admin/line/id-tokens', {
    method: 'POST',
    body: JSON.stringify({ line_user_id: lineUserId, login_channel_id: LOGIN }),
  });
  if (!r.ok) throw new Error('mint → ' + r.status);
  return (await r.json()).id_token;
}

/** One SDK instance: runs `calls(client)`, flushes, shuts down; returns its op reports by seq. */
async function deliver(token, endpoint, calls) {
  const client = ReproLine.setup({ sdkToken: token, endpoint, defaultChannelId: CHANNEL, storage: 'memory', debounceMs: 20 });
  const reports = [];
  client.onDelivery((e) => e.type === 'op' && reports.push(e));
  try {
    await calls(client);
    const f = await client.flush(30000);
    if (!f.drained) throw new Error('not drained: ' + JSON.stringify(f));
  } finally {
    client.shutdown();
  }
  return reports.sort((a, b) => a.seq - b.seq);
}

async function listKeys(s3, prefix) {
  const r = await fetch(`${s3}/repro-data-store?list-type=2&prefix=${encodeURIComponent(prefix)}`, { headers: S3_AUTH });
  if (!r.ok) throw new Error('list → ' + r.status);
  return [...(await r.text()).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
}

/** { key: text } of every file under `prefix`. */
async function files(s3, prefix) {
  const out = {};
  for (const key of await listKeys(s3, prefix)) {
    const r = await fetch(`${s3}/repro-data-store/${key}`, { headers: S3_AUTH });
    if (!r.ok) throw new Error('get ' + key + ' → ' + r.status);
    out[key] = await r.text();
  }
  return out;
}

const rowsOf = (fileMap) =>
  Object.values(fileMap)
    .flatMap((t) => t.split('\n').slice(1).filter(Boolean))
    .sort();

try {
  const s3 = await startMoto();
  const gw = await startGateway(writeConfig(s3));

  // Verified links (the example app, identity = "id_token"): the `sub` of each token is linked.
  // Last mapping wins within a file: L(2) moves from web-bob to web-carol.
  const tokens = [await mint(L(1)), await mint(L(2)), await mint(L(2))];
  const verified = await deliver(SDK_TOKEN, gw.url, async (c) => {
    c.setUserId('web-alice');
    c.linkLineIDToken(tokens[0]);
    c.setUserId('web-bob');
    c.linkLineIDToken(tokens[1]);
    c.setUserId('web-carol');
    c.linkLineIDToken(tokens[2], CHANNEL);
    // A raw link to an id_token app is refused (1007) and never exported.
    c.linkLineID(L(9));
  });
  const statuses = verified.map((r) => r.status + (r.code ? ':' + r.code : ''));
  check(
    'id_token app: set + linkLineIDToken delivered, a raw link rejected 1007',
    JSON.stringify(statuses) === JSON.stringify(['delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'rejected:1007']),
    JSON.stringify(statuses),
  );
  check(
    'token reports carry the verified sub, never the token',
    verified.filter((r) => r.kind === 'link_line_id_token').map((r) => r.lineUserId).join() === [L(1), L(2), L(2)].join() &&
      !tokens.some((t) => JSON.stringify(verified).includes(t.split('.').pop())),
    JSON.stringify(verified),
  );

  // Raw links (identity = "any"), both call spellings.
  const raw = await deliver(RAW_TOKEN, gw.url, async (c) => {
    c.setUserId('web-dave');
    c.linkLineID(L(3));
    c.setLineUserId(L(4), CHANNEL);
  });
  check('any app: set + linkLineID delivered', raw.every((r) => r.status === 'delivered') && raw.length === 3, JSON.stringify(raw));

  // Within an export interval or so: Format 1 files at the right keys with the right rows.
  const vPrefix = followedPrefix(APP_ID);
  const rPrefix = followedPrefix(RAW_APP_ID);
  const wantV = [`${L(1)},web-alice`, `${L(2)},web-carol`].sort();
  const wantR = [`${L(3)},web-dave`, `${L(4)},web-dave`].sort();
  let vFiles = {};
  let rFiles = {};
  try {
    await waitFor(30, 'the export', async () => {
      vFiles = await files(s3, vPrefix);
      rFiles = await files(s3, rPrefix);
      return rowsOf(vFiles).length >= wantV.length && rowsOf(rFiles).length >= wantR.length;
    });
  } catch (e) {
    console.log(String(e));
  }
  check(`id_token app's rows exported under ${vPrefix}`, JSON.stringify(rowsOf(vFiles)) === JSON.stringify(wantV), JSON.stringify(vFiles));
  check(`any app's rows exported under ${rPrefix}`, JSON.stringify(rowsOf(rFiles)) === JSON.stringify(wantR), JSON.stringify(rFiles));

  const all = { ...vFiles, ...rFiles };
  const badNames = Object.keys(all).filter((k) => !/\/followed\/local1-\d+\.csv$/.test(k));
  check('files are named <gateway_id>-<sequence>.csv', Object.keys(all).length > 0 && badNames.length === 0, JSON.stringify(badNames));
  const invalid = [];
  for (const [key, text] of Object.entries(all)) {
    const local = path.join(work, key.replaceAll('/', '_'));
    fs.writeFileSync(local, text);
    const r = spawnSync(CLI, ['csv', 'validate', local], { encoding: 'utf8' });
    if (r.status !== 0) invalid.push(key + ': ' + r.status + ' ' + r.stdout + r.stderr);
  }
  check('every exported file passes `repro-line csv validate`', Object.keys(all).length > 0 && invalid.length === 0, invalid.join('; '));

  // SIGTERM: a graceful exit.
  const exit = new Promise((resolve) => gw.proc.once('exit', (code) => resolve(code)));
  gw.proc.kill('SIGTERM');
  check('gateway exits 0 on SIGTERM', (await exit) === 0);
} catch (e) {
  failed++;
  console.log('FAIL ' + (e && e.stack ? e.stack : e));
} finally {
  cleanup();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
