// Build input for dist/repro-line.js (scripts/web-build.sh, esbuild): the wasm embedded in the
// file and instantiated before index.js loads, so index.js finds it ready and fetches nothing.
import { initSync } from '../src/wasm.js';
import wasm from '../dist/repro_line_wasm_bg.wasm';

initSync(wasm);
