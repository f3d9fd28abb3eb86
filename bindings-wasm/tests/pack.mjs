// The npm package as `npm pack` makes it (run after scripts/web-build.sh): entry points, types,
// README, licence, sideEffects, the single-file build. Prints `N passed, N failed` last.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../npm');
const manifest = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'));
const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: PKG, stdio: ['ignore', 'pipe', 'ignore'] }));
const files = new Set(packed.files.map((f) => f.path));

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log((ok ? 'ok   ' : 'FAIL ') + name + (ok || !detail ? '' : ': ' + detail));
}

const targets = (v) => (typeof v === 'string' ? [v] : Object.values(v).flatMap(targets));
const exported = Object.entries(manifest.exports)
  .filter(([k]) => !k.includes('*'))
  .flatMap(([, v]) => targets(v))
  .map((t) => t.replace(/^\.\//, ''));
const missing = exported.filter((t) => !files.has(t));
check('pack: every file named by "exports" is in the package', missing.length === 0, missing.join(', '));
check(
  'pack: README, LICENSE (Apache-2.0), types and sideEffects false',
  files.has('README.md') &&
    files.has('LICENSE') &&
    manifest.license === 'Apache-2.0' &&
    fs.readFileSync(path.join(PKG, 'LICENSE'), 'utf8').includes('Apache License') &&
    files.has(manifest.types.replace(/^\.\//, '')) &&
    manifest.sideEffects === false,
  JSON.stringify({ license: manifest.license, types: manifest.types, sideEffects: manifest.sideEffects }),
);
const single = path.join(PKG, 'dist/repro-line.js');
const text = fs.existsSync(single) ? fs.readFileSync(single, 'utf8') : '';
const wasmBytes = fs.statSync(path.join(PKG, 'dist/repro_line_wasm_bg.wasm')).size;
check(
  'pack: the single-file build is in the package, embeds the wasm and installs window.reproline',
  files.has('dist/repro-line.js') && text.length > wasmBytes && text.includes('reproline') && !/\bimport\s*[{*"']/.test(text),
  'size ' + text.length + ' vs wasm ' + wasmBytes,
);
const snippet = fs.readFileSync(path.join(PKG, 'snippet.html'), 'utf8');
check('pack: the snippet loads the single file under window.reproline', snippet.includes('/dist/repro-line.js"') && snippet.includes('"reproline"'));
console.log(passed + ' passed, ' + failed + ' failed');
process.exit(failed ? 1 : 0);
