// Build input for dist/repro-line.js: one file for a <script type="module"> tag (the snippet
// loads it): the wasm, its loader, the API and the `window.reproline` install of auto.js.
import './inline.js';
import '../src/auto.js';

export * from '../src/index.js';
export { default } from '../src/index.js';
