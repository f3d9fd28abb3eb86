// Entry for the copy-paste snippet: replays the calls the page queued in
// `window.reproio.q` before this module loaded, in order, then replaces the stub.
// Queued calls cannot throw into the page (their caller has moved on): their
// errors go to console.warn. Calls made after this point throw as documented.
import { reproio } from './index.js';

const g = globalThis;
const stub = g.reproio;
const queue = stub && Array.isArray(stub.q) ? stub.q : [];
g.reproio = reproio;
while (queue.length) {
  const args = queue.shift();
  try {
    const r = reproio(...args);
    if (r && typeof r.then === 'function') r.then(undefined, () => {});
  } catch (e) {
    try {
      console.warn('repro-line: reproio(' + JSON.stringify(args[0]) + ') failed: ' + (e && e.message));
    } catch (_) {
      /* no console */
    }
  }
}
export { reproio };
