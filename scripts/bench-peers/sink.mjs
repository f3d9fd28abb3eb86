// A local sink that speaks just enough of four ingestion APIs to answer 200 and
// count deliveries, distinct vs duplicate, by each message's own id:
//   POST /v1/identity/batch  repro-line   ops[].op_id       (answers per-op results)
//   POST /v1/batch           Segment      batch[].messageId
//   POST /2/httpapi          Amplitude    events[].insert_id
//   POST /batch[/]           PostHog      batch[].uuid
// gzip request bodies are inflated. GET /stats answers the counters; POST /reset clears them.
// Usage: node sink.mjs [port]   (prints {"url": …} once listening on 127.0.0.1)
import http from 'node:http';
import zlib from 'node:zlib';

let stats;
const reset = () => {
  stats = { requests: 0, events: 0, distinct: 0, duplicates: 0, missing_id: 0, bytes: 0, body_bytes: 0, paths: {} };
  seen = new Set();
};
let seen;
reset();

function ids(path, doc) {
  if (path === '/v1/identity/batch') return (doc.ops || []).map((o) => o.op_id);
  if (path === '/v1/batch') return (doc.batch || []).map((m) => m.messageId);
  if (path === '/2/httpapi') return (doc.events || []).map((e) => e.insert_id);
  if (path === '/batch' || path === '/batch/') return (doc.batch || []).map((e) => e.uuid);
  return [];
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const path = req.url.split('?')[0];
    if (req.method === 'GET' && path === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(stats));
    }
    if (req.method === 'POST' && path === '/reset') {
      reset();
      res.writeHead(200);
      return res.end('{}');
    }
    let raw = Buffer.concat(chunks);
    stats.requests += 1;
    stats.body_bytes += raw.length;
    // Request line + headers as sent (approximation: rawHeaders joined as on the wire).
    let head = `${req.method} ${req.url} HTTP/1.1\r\n`.length + 2;
    for (let i = 0; i < req.rawHeaders.length; i += 2) head += req.rawHeaders[i].length + req.rawHeaders[i + 1].length + 4;
    stats.bytes += head + raw.length;
    stats.paths[path] = (stats.paths[path] || 0) + 1;
    let doc = {};
    try {
      if ((req.headers['content-encoding'] || '').includes('gzip')) raw = zlib.gunzipSync(raw);
      doc = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      res.writeHead(400, { 'content-type': 'application/json' });
      return res.end('{"error":{"code":1001,"message":"unreadable body"}}');
    }
    const list = ids(path, doc);
    const results = [];
    for (const id of list) {
      stats.events += 1;
      if (id === undefined || id === null) { stats.missing_id += 1; continue; }
      const fresh = !seen.has(id);
      if (fresh) { seen.add(id); stats.distinct += 1; } else stats.duplicates += 1;
      results.push({ op_id: id, status: fresh ? 'applied' : 'duplicate' });
    }
    let body;
    if (path === '/v1/identity/batch') body = { results };
    else if (path === '/2/httpapi') body = { code: 200, events_ingested: list.length, payload_size_bytes: raw.length, server_upload_time: Date.now() };
    else if (path.startsWith('/batch')) body = { status: 1 };
    else body = { success: true };
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }) + '\n');
});
