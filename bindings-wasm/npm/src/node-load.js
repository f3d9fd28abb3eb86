// Instantiates the wasm from the package's file (src/node.js imports this before index.js), so
// index.js's `init` finds it loaded and fetches nothing. The URL is relative to the built
// npm/index.node.js, beside npm/index.js.
import { readFileSync } from 'node:fs';
import { initSync } from './wasm.js';

initSync(readFileSync(new URL('./dist/repro_line_wasm_bg.wasm', import.meta.url)));
