// Conformance scenarios through the JS API (npm package `repro-line`) in Node, against the emulator.
// Usage: node conformance.mjs EMULATOR_URL [SCENARIOS_JSON]
//
// Runs conformance/scenarios.json when it exists (every platform runs the same file), plus the
// built-in scenarios below. Scenario shape understood here (keys in snake_case or camelCase):
//   { "name": "...", "default_channel_id"?: "...", "faults"?: "<emulator spec>",
//     "identity"?: "any"|"id_token", "login_channels"?: {"<Repro channel>": ["<LINE Login channel>"]},
//     "steps": [ {"call": "set_user_id", "user_id": "..."},
//                {"call": "link_line_id" | "set_line_user_id", "line_user_id": "...", "channel_id"?: "..."},
//                {"call": "unlink_line_id", "line_user_id": "...", "channel_id"?: "..."},
//                {"call": "link_line_id_token", "mint": {"line_user_id", "login_channel_id"?, "expires_at"?},
//                 "forge"?: true, "channel_id"?: "..."}   (token minted by the emulator's admin route),
//                {"call": "opt_in", "value": true|false},
//                {"faults": "<spec>"}, {"flush": true},
//                ... each call step may carry "error": "<code>" (the call must throw it) ],
//     "expect": { "links"?: [{"channel_id","line_user_id","user_id"}], "device_user"?: "...",
//                 "statuses"?: ["delivered", ...], "applied"?: N, "duplicates"?: N } }
// Prints `N passed, N failed` last.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
/** localStorage for Node (installed before the module loads, cleared per scenario), so `restart` reopens the same journal. */
class MemoryLocalStorage {
  #m = new Map();
  getItem(k) { return this.#m.has(k) ? this.#m.get(k) : null; }
  setItem(k, v) { this.#m.set(k, String(v)); }
  removeItem(k) { this.#m.delete(k); }
  key(i) { return [...this.#m.keys()][i] ?? null; }
  get length() { return this.#m.size; }
  clear() { this.#m.clear(); }
}

globalThis.localStorage = new MemoryLocalStorage();
const { ReproLine, ReproLineError } = await import('../npm/index.node.js');

const EMU = process.argv[2];
const HERE = path.dirname(fileURLToPath(import.meta.url));
const FILE = process.argv[3] || path.resolve(HERE, '../../conformance/scenarios.json');
const TOKEN = process.env.EMULATOR_TOKEN || 'T';
const L = (n) => 'U' + String(n).padStart(32, '0');

async function admin(method, route, body) {
  const r = await fetch(EMU + route, { method, body });
  if (!r.ok) throw new Error(method + ' ' + route + ' → ' + r.status);
  const t = await r.text();
  return t ? JSON.parse(t) : null;
}

const pick = (o, ...keys) => keys.map((k) => o[k]).find((v) => v !== undefined);

// ---- LINE ID tokens (protocol v1.1): minted by the emulator, which plays LINE ----
const LOGIN_CHANNEL = '1650000001';

/** `PUT /admin/identity` and `PUT /admin/line/login-channels`; not part of `POST /admin/reset`. */
async function identityConfig(identity = 'any', loginChannels = {}) {
  await admin('PUT', '/admin/identity', identity);
  await admin('PUT', '/admin/line/login-channels', JSON.stringify(loginChannels));
}

/** A token from `POST /admin/line/id-tokens`; `forge`: the same header and claims with another signature. */
async function mintToken(m, forge) {
  const body = { line_user_id: m.line_user_id, login_channel_id: m.login_channel_id ?? LOGIN_CHANNEL };
  if (m.expires_at !== undefined) body.expires_at = m.expires_at;
  if (m.expires_in_s !== undefined) body.expires_at = Math.floor(Date.now() / 1000) + m.expires_in_s;
  const { id_token: t } = await admin('POST', '/admin/line/id-tokens', JSON.stringify(body));
  if (!forge) return t;
  const [h, p, sig] = t.split('.');
  return h + '.' + p + '.' + (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
}

const BUILTIN = [
  {
    name: 'set, link, unlink, relink: one op per call in call order, final state per the model',
    steps: [
      { call: 'set_user_id', user_id: 'u1' },
      { call: 'link_line_id', line_user_id: L(1) },
      { call: 'unlink_line_id', line_user_id: L(1) },
      { call: 'link_line_id', line_user_id: L(1), channel_id: '777' },
      { call: 'set_user_id', user_id: 'u2' },
      { call: 'link_line_id', line_user_id: L(2) },
    ],
    expect: {
      links: [
        { channel_id: '777', line_user_id: L(1), user_id: 'u1' },
        { channel_id: '1234567890', line_user_id: L(2), user_id: 'u2' },
      ],
      device_user: 'u2',
      statuses: ['delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered'],
      duplicates: 0,
    },
  },
  {
    name: 'validation errors throw with the rule and enqueue nothing',
    steps: [
      { call: 'link_line_id', line_user_id: L(3), error: 'user_id_not_set' },
      { call: 'set_user_id', user_id: '', error: 'invalid_user_id' },
      { call: 'set_user_id', user_id: 'x'.repeat(192), error: 'invalid_user_id' },
      { call: 'set_user_id', user_id: 'a\nb', error: 'invalid_user_id' },
      { call: 'set_user_id', user_id: 'ok-user' },
      { call: 'link_line_id', line_user_id: 'U123', error: 'invalid_line_user_id' },
      { call: 'link_line_id', line_user_id: L(3), channel_id: 'no spaces', error: 'invalid_channel_id' },
      { call: 'link_line_id', line_user_id: L(3) },
    ],
    expect: { links: [{ channel_id: '1234567890', line_user_id: L(3), user_id: 'ok-user' }], applied: 2 },
  },
  {
    name: 'transient failures (503, 500, lost responses) are retried; each op applied exactly once',
    faults: 'script=503;500;reset_after;reset_before,retry_after=1',
    steps: [
      { call: 'set_user_id', user_id: 'retry-user' },
      { call: 'link_line_id', line_user_id: L(4) },
    ],
    expect: {
      links: [{ channel_id: '1234567890', line_user_id: L(4), user_id: 'retry-user' }],
      applied: 2,
      // The reset_after attempt applied both; the resend is answered duplicate (exactly once).
      statuses: ['duplicate', 'duplicate'],
      duplicates: 2,
    },
  },
  {
    name: 'identical consecutive calls coalesce; reports still one per call',
    steps: [
      { call: 'set_user_id', user_id: 'co' },
      { call: 'link_line_id', line_user_id: L(5) },
      { call: 'link_line_id', line_user_id: L(5) },
      { call: 'link_line_id', line_user_id: L(5) },
    ],
    expect: { statuses: ['delivered', 'delivered', 'delivered', 'delivered'], applied: 2 },
  },
  {
    name: 'opting out drops the queue and ignores calls until opted in again',
    steps: [
      { call: 'set_user_id', user_id: 'oo' },
      { call: 'opt_in', value: false },
      { call: 'link_line_id', line_user_id: L(6) },
      { call: 'opt_in', value: true },
      { call: 'set_user_id', user_id: 'oo2' },
    ],
    expect: { statuses: ['dropped', 'delivered'], applied: 1, device_user: 'oo2' },
  },
  {
    name: 'token links (LINE ID tokens minted by the emulator): verified sub applied; forged, wrong aud, expired rejected 1008',
    login_channels: { '1234567890': [LOGIN_CHANNEL] },
    steps: [
      { call: 'link_line_id_token', mint: { line_user_id: L(7) }, error: 'user_id_not_set' },
      { call: 'set_user_id', user_id: 'tok' },
      { call: 'link_line_id_token', id_token: 'a.b', error: 'invalid_id_token' },
      { call: 'link_line_id_token', mint: { line_user_id: L(7) } },
      { call: 'link_line_id_token', mint: { line_user_id: L(8) }, forge: true },
      { call: 'link_line_id_token', mint: { line_user_id: L(9), login_channel_id: '1659999999' } },
      { call: 'link_line_id_token', mint: { line_user_id: L(10), expires_at: 1000000000 } },
    ],
    expect: {
      links: [{ channel_id: '1234567890', line_user_id: L(7), user_id: 'tok' }],
      statuses: ['delivered', 'delivered', 'rejected', 'rejected', 'rejected'],
      codes: [null, null, 1008, 1008, 1008],
      subs: [null, L(7), L(8), L(9), L(10)],
      applied: 2,
    },
  },
  {
    name: 'endpoint set to id_token only: a raw link is rejected 1007, a token link applied',
    identity: 'id_token',
    login_channels: { '1234567890': [LOGIN_CHANNEL] },
    steps: [
      { call: 'set_user_id', user_id: 'only-tokens' },
      { call: 'link_line_id', line_user_id: L(11) },
      { call: 'link_line_id_token', mint: { line_user_id: L(12) } },
    ],
    expect: {
      links: [{ channel_id: '1234567890', line_user_id: L(12), user_id: 'only-tokens' }],
      statuses: ['delivered', 'rejected', 'delivered'],
      codes: [null, 1007, null],
    },
  },
];

async function run(s) {
  await admin('POST', '/admin/reset');
  await admin('PUT', '/admin/faults', s.faults || '');
  await identityConfig(s.identity, s.login_channels);
  const client = ReproLine.setup({
    sdkToken: TOKEN,
    endpoint: EMU,
    defaultChannelId: pick(s, 'default_channel_id', 'defaultChannelId') ?? '1234567890',
    storage: 'memory',
    debounceMs: 20,
  });
  const reports = [];
  const tokens = [];
  client.onDelivery((e) => e.type === 'op' && reports.push(e));
  try {
    for (const step of s.steps || []) {
      if (step.faults !== undefined && !step.call) {
        await admin('PUT', '/admin/faults', step.faults);
        continue;
      }
      if (step.flush) {
        await client.flush(20000);
        continue;
      }
      const call = pick(step, 'call', 'op', 'action', 'type');
      const want = pick(step, 'error', 'expect_error', 'expectError');
      const line = pick(step, 'line_user_id', 'lineUserId');
      const channel = pick(step, 'channel_id', 'channelId');
      let got = null;
      try {
        if (call === 'set_user_id' || call === 'setUserId') client.setUserId(pick(step, 'user_id', 'userId'));
        else if (['link_line_id', 'set_line_user_id', 'link', 'linkLineID'].includes(call)) client.setLineUserId(line, channel);
        else if (['unlink_line_id', 'unlink_line_user_id', 'unlink', 'unlinkLineID'].includes(call)) client.unlinkLineUserId(line, channel);
        else if (call === 'opt_in' || call === 'optIn') client.optIn(pick(step, 'value', 'opted_in') !== false);
        else if (call === 'link_line_id_token' || call === 'linkLineIDToken') {
          const token = step.mint ? await mintToken(step.mint, step.forge) : step.id_token;
          if (step.mint) tokens.push(token);
          client.linkLineIDToken(token, channel);
        }
        else throw new Error('unknown step ' + JSON.stringify(step));
      } catch (e) {
        if (!(e instanceof ReproLineError)) throw e;
        got = e;
      }
      if ((want || null) !== (got && got.code)) {
        throw new Error('step ' + JSON.stringify(step) + ': expected ' + (want || 'success') + ', got ' + (got ? got.code + ' (' + got.message + ')' : 'success'));
      }
    }
    const flushed = await client.flush(30000);
    if (!flushed.drained) throw new Error('not drained: ' + JSON.stringify(flushed));
    const exp = s.expect || {};
    const state = await admin('GET', '/admin/state');
    const stats = await admin('GET', '/admin/stats');
    const key = (l) => [l.channel_id, l.line_user_id, l.user_id].join('|');
    if (exp.links) {
      const have = state.links.filter((l) => !l.status || l.status === 'deliverable').map(key).sort();
      const want = exp.links.map(key).sort();
      if (JSON.stringify(have) !== JSON.stringify(want)) throw new Error('links ' + JSON.stringify(have) + ' != ' + JSON.stringify(want));
    }
    const du = pick(exp, 'device_user', 'deviceUser');
    if (du !== undefined && state.devices[0]?.current_user_id !== du) throw new Error('device user ' + state.devices[0]?.current_user_id + ' != ' + du);
    if (exp.statuses) {
      const have = reports.sort((a, b) => a.seq - b.seq).map((r) => r.status);
      if (JSON.stringify(have) !== JSON.stringify(exp.statuses)) throw new Error('statuses ' + JSON.stringify(have) + ' != ' + JSON.stringify(exp.statuses));
    }
    const bySeq = reports.sort((a, b) => a.seq - b.seq);
    if (exp.codes) {
      const have = bySeq.map((r) => r.code ?? null);
      if (JSON.stringify(have) !== JSON.stringify(exp.codes)) throw new Error('codes ' + JSON.stringify(have) + ' != ' + JSON.stringify(exp.codes));
    }
    if (exp.subs) {
      const have = bySeq.map((r) => (r.kind === 'link_line_id_token' ? r.lineUserId : null));
      if (JSON.stringify(have) !== JSON.stringify(exp.subs)) throw new Error('token reports\' subs ' + JSON.stringify(have));
    }
    // A token is a secret: no report may carry one (nor its signature).
    const all = JSON.stringify(reports);
    for (const t of tokens) if (all.includes(t.split('.').pop())) throw new Error('a report holds a token');
    if (exp.applied !== undefined && stats.ops_applied !== exp.applied) throw new Error('applied ' + stats.ops_applied + ' != ' + exp.applied);
    const dup = pick(exp, 'duplicates');
    if (dup !== undefined && stats.ops_duplicate !== dup) throw new Error('duplicates ' + stats.ops_duplicate + ' != ' + dup);
    if (stats.retry_after_violations || stats.seq_regressions) throw new Error('protocol violations: ' + JSON.stringify(stats));
  } finally {
    client.shutdown();
  }
}


// ---- conformance/scenarios.json (format 1, see conformance/README.md) ----

/** `{"repeat": S, "times": N}` → S×N, recursively. */
const expand = (v) =>
  v && typeof v === 'object' && !Array.isArray(v) && 'repeat' in v
    ? String(v.repeat).repeat(v.times)
    : Array.isArray(v)
      ? v.map(expand)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expand(x)]))
        : v;

/** Error kinds are the Rust variant names; the JS codes are their snake_case. */
const kindToCode = (kind) => kind.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
const camel = (snake) => snake.replace(/(^|_)([a-z])/g, (_, __, c) => c.toUpperCase());

function reportStatus(r) {
  if (r.status === 'rejected') return 'Rejected:' + r.code;
  if (r.status === 'dropped') return 'Dropped:' + camel(r.reason);
  return camel(r.status);
}

/** Scenarios this runner does not run in Node, with why (printed, counted as skipped). */
const NODE_SKIPS = {
  restart: 'reopening a localStorage journal needs a browser: covered by the Chromium reload test in e2e.mjs',
};

async function runShared(s, defaults) {
  await admin('POST', '/admin/reset');
  await admin('PUT', '/admin/faults', '');
  await identityConfig();
  globalThis.localStorage.clear();
  const cfg = { ...defaults, ...(s.config || {}) };
  const options = {
    sdkToken: cfg.sdk_token ?? TOKEN,
    endpoint: cfg.endpoint ?? EMU,
    storage: 'memory',
    debounceMs: cfg.debounce_ms,
    requestTimeoutMs: cfg.request_timeout_ms,
  };
  if (cfg.default_channel_id !== null && cfg.default_channel_id !== undefined) options.defaultChannelId = cfg.default_channel_id;
  if (s.open_error) {
    try {
      ReproLine.setup(options).shutdown();
    } catch (e) {
      if (!(e instanceof ReproLineError) || e.code !== kindToCode(s.open_error)) throw new Error('open failed with ' + e.code + ', expected ' + s.open_error);
      if (s.open_message_contains && !e.message.includes(s.open_message_contains)) throw new Error('message ' + JSON.stringify(e.message) + ' lacks ' + JSON.stringify(s.open_message_contains));
      return;
    }
    throw new Error('open succeeded, expected ' + s.open_error);
  }
  let reports = [];
  const open = () => {
    const c = ReproLine.setup(options);
    c.onDelivery((e) => e.type === 'op' && reports.push(e));
    return c;
  };
  let client = open();
  try {
    for (const raw of s.steps) {
      const step = expand(raw);
      const what = JSON.stringify(raw);
      switch (step.do) {
        case 'set_user_id':
        case 'link':
        case 'link_id_token':
        case 'unlink':
        case 'opt_in': {
          let got = null;
          // {literal: S} or {mint: {...}, forge?: "signature"} (conformance/scenarios.json's description).
          const token =
            step.do !== 'link_id_token'
              ? null
              : step.token.mint
                ? await mintToken(step.token.mint, step.token.forge)
                : step.token.literal;
          try {
            if (step.do === 'set_user_id') client.setUserId(step.user_id);
            else if (step.do === 'link') client.setLineUserId(step.line_user_id, step.channel_id);
            else if (step.do === 'link_id_token') client.linkLineIDToken(token, step.channel_id);
            else if (step.do === 'unlink') client.unlinkLineUserId(step.line_user_id, step.channel_id);
            else client.optIn(step.value);
          } catch (e) {
            if (!(e instanceof ReproLineError)) throw e;
            got = e;
          }
          const want = step.error ? kindToCode(step.error) : null;
          if (want !== (got && got.code)) throw new Error(what + ': expected ' + (want || 'success') + ', got ' + (got ? got.code + ' (' + got.message + ')' : 'success'));
          if (got && step.message_contains && !got.message.includes(step.message_contains)) throw new Error(what + ': message ' + JSON.stringify(got.message));
          if (got && token && got.message.includes(token)) throw new Error(what + ': the error message holds the token');
          break;
        }
        case 'flush': {
          const r = await client.flush(cfg.flush_timeout_ms);
          const outcome = r.drained ? 'Drained' : r.paused ? 'Paused' : 'TimedOut';
          if (outcome !== step.outcome) throw new Error(what + ': outcome ' + outcome);
          const sorted = reports.sort((a, b) => a.seq - b.seq);
          const have = sorted.map(reportStatus);
          reports = [];
          if (JSON.stringify(have) !== JSON.stringify(step.reports)) throw new Error(what + ': reports ' + JSON.stringify(have));
          if (step.report_line_user_ids) {
            const ids = sorted.map((r) => r.lineUserId ?? null);
            if (JSON.stringify(ids) !== JSON.stringify(step.report_line_user_ids)) throw new Error(what + ': report LINE user IDs ' + JSON.stringify(ids));
          }
          break;
        }
        case 'expect_client': {
          if ('user_id' in step && (client.userId ?? null) !== step.user_id) throw new Error(what + ': user_id ' + client.userId);
          if ('pending_ops' in step && client.pendingOps !== step.pending_ops) throw new Error(what + ': pending_ops ' + client.pendingOps);
          if ('opted_in' in step && client.optedIn !== step.opted_in) throw new Error(what + ': opted_in ' + client.optedIn);
          break;
        }
        case 'expect_state': {
          const state = await admin('GET', '/admin/state');
          const links = state.links.map((l) => ({ channel_id: l.channel_id, line_user_id: l.line_user_id, user_id: l.user_id }));
          const have = { users: state.users, device_user_id: state.devices[0]?.current_user_id ?? null, links };
          const want = { users: step.users, device_user_id: step.device_user_id, links: step.links };
          if (JSON.stringify(have) !== JSON.stringify(want)) throw new Error(what + ': state ' + JSON.stringify(have));
          break;
        }
        case 'restart':
          client.shutdown();
          client = open();
          break;
        case 'reset_emulator':
          await admin('POST', '/admin/reset');
          break;
        case 'set_login_channels':
          await admin('PUT', '/admin/line/login-channels', JSON.stringify(step.channels));
          break;
        case 'set_identity':
          await admin('PUT', '/admin/identity', step.mode);
          break;
        case 'set_faults':
          await admin('PUT', '/admin/faults', step.spec);
          break;
        default:
          throw new Error('unknown step ' + what);
      }
    }
  } finally {
    client.shutdown();
  }
}

let scenarios = BUILTIN.map((s) => ({ ...s, name: 'builtin: ' + s.name, runner: (x) => run(x) }));
if (fs.existsSync(FILE)) {
  const doc = JSON.parse(fs.readFileSync(FILE, 'utf8'));
  scenarios = scenarios.concat(doc.scenarios.map((s) => ({ ...s, name: 'shared: ' + s.name, runner: (x) => runShared(x, doc.defaults || {}) })));
} else {
  throw new Error(FILE + ' not found');
}

let passed = 0;
let failed = 0;
let skipped = 0;
for (const s of scenarios) {
  const skip = (s.steps || []).map((st) => NODE_SKIPS[st.do]).find(Boolean);
  if (skip) {
    skipped++;
    console.log('skip ' + s.name + ': ' + skip);
    continue;
  }
  const t0 = Date.now();
  try {
    await s.runner(s);
    passed++;
    console.log('ok   ' + s.name + ' (' + (Date.now() - t0) + ' ms)');
  } catch (e) {
    failed++;
    console.log('FAIL ' + s.name + ': ' + (e && e.message));
  }
}
console.log(passed + ' passed, ' + failed + ' failed, ' + skipped + ' skipped');
process.exit(failed ? 1 : 0);
