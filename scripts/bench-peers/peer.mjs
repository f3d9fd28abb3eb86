// Sends N identify calls through one Node analytics SDK to the local sink and
// waits until the SDK says it has flushed. CPU and peak RSS are measured by the
// parent (wait4), so this prints only timings.
// Usage: node peer.mjs segment|amplitude|posthog URL N [default|raised]
//   raised: the SDK's in-memory queue cap is lifted (as repro-line's max_queue_ops is in the bench).
const [lib, url, nArg, mode = 'raised'] = process.argv.slice(2);
const n = Number(nArg);
const line = (i) => 'U' + i.toString(16).padStart(32, '0');
const traits = (i) => ({ line_user_id: line(i), channel_id: '1234567890' });
const t0 = process.hrtime.bigint();
let enqueued;

if (lib === 'segment') {
  const { Analytics } = await import('@segment/analytics-node');
  const a = new Analytics({ writeKey: 'bench', host: url, path: '/v1/batch' });
  a.on('error', () => {});
  for (let i = 0; i < n; i++) a.identify({ userId: `member-${i}`, traits: traits(i) });
  enqueued = process.hrtime.bigint();
  await a.closeAndFlush({ timeout: 900_000 });
} else if (lib === 'amplitude') {
  const amp = await import('@amplitude/analytics-node');
  const c = amp.createInstance();
  await c.init('bench-api-key', { serverUrl: `${url}/2/httpapi`, logLevel: 0 }).promise;
  for (let i = 0; i < n; i++) {
    const id = new amp.Identify().set('line_user_id', line(i)).set('channel_id', '1234567890');
    c.identify(id, { user_id: `member-${i}` });
  }
  enqueued = process.hrtime.bigint();
  await c.flush().promise;
} else if (lib === 'posthog') {
  const { PostHog } = await import('posthog-node');
  const opts = { host: url, flushAt: 100 };
  if (mode === 'raised') opts.maxQueueSize = 10_000_000;
  const p = new PostHog('phc_bench', opts);
  p.on?.('error', () => {});
  for (let i = 0; i < n; i++) p.identify({ distinctId: `member-${i}`, properties: traits(i) });
  enqueued = process.hrtime.bigint();
  await p.shutdown(900_000);
} else {
  throw new Error(`unknown lib ${lib}`);
}
const done = process.hrtime.bigint();
process.stdout.write(JSON.stringify({ lib: `node:${lib}`, mode, n, enqueue_s: Number(enqueued - t0) / 1e9, elapsed_s: Number(done - t0) / 1e9 }) + '\n');
process.exit(0);
