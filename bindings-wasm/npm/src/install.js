// Puts `reproline` on a global name and replays the calls the snippet's stub queued there
// (`window[name].q`) before this module loaded, in order. Only our own stub (marked `rl`) is
// replaced: anything else under that name belongs to another script and is left alone.
// Queued calls cannot throw into the page (their caller has moved on): their errors go to
// console.warn. Calls made after this point throw as documented.
import { reproline } from './index.js';

// Re-exported so the entries that install it import index.js through this module only (one
// import statement once bundled).
export { reproline };

function warn(msg) {
  try {
    console.warn('repro-line: ' + msg);
  } catch (_) {
    /* no console */
  }
}

export function install(name) {
  const g = globalThis;
  const stub = g[name];
  if (stub === reproline) return;
  if (stub !== undefined && !(stub && stub.rl === 1 && Array.isArray(stub.q))) {
    warn('window.' + name + ' belongs to another script; not replacing it');
    return;
  }
  const queue = stub ? stub.q : [];
  g[name] = reproline;
  while (queue.length) {
    const args = queue.shift();
    try {
      // What a queued call returns is dropped: `flush`'s promise never rejects.
      reproline(...args);
    } catch (e) {
      warn(name + '(' + JSON.stringify(args[0]) + ') failed: ' + (e && e.message));
    }
  }
}
