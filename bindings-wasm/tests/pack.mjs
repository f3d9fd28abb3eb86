// The npm package as `npm pack` makes it (run after scripts/web-build.sh): entry points, types,
// README, licence, sideEffects, the single-file build. Prints `N passed, N failed` last.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../npm');
const manifest = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'));
// Packed once, for real: its file list is checked here and the tarball installed below.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'repro-line-pack-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const [packed] = JSON.parse(
  execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: PKG, stdio: ['ignore', 'pipe', 'ignore'] }),
);
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
const browserIndex = fs.readFileSync(path.join(PKG, 'index.js'), 'utf8');
check('pack: the browsers\' index.js carries no Node branch (Node has index.node.js)', !/getBuiltinModule|node:fs|readFileSync/.test(browserIndex));

// The package as an app gets it: the tarball unpacked into node_modules, imported by name in Node
// (the `node` condition: index.node.js, auto.node.js), one instance across the entries.
{
  const dir = path.join(tmp, 'node_modules/repro-line');
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['xzf', path.join(tmp, packed.filename), '-C', dir, '--strip-components=1']);
  const app = `
    const m = await import('repro-line');
    const c = m.ReproLine.setup({ sdkToken: 'T', endpoint: 'http://127.0.0.1:9', storage: 'memory', debounceMs: 60000 });
    c.setUserId('user-1');
    let code;
    try { c.setUserId(''); } catch (e) { code = e instanceof m.ReproLineError && e.code; }
    await import('repro-line/auto');
    await import('repro-line/auto-reproio');
    c.shutdown();
    console.log(JSON.stringify({
      userId: c.userId, code,
      auto: globalThis.reproline === m.reproline, reproio: globalThis.reproio === m.reproline,
      entry: import.meta.resolve('repro-line'), autoEntry: import.meta.resolve('repro-line/auto'),
    }));`;
  let got;
  try {
    got = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', app], { cwd: tmp, encoding: 'utf8', timeout: 60000 }));
  } catch (e) {
    got = { error: String((e && e.stderr) || e) };
  }
  check(
    'pack: installed, `import "repro-line"` in Node loads index.node.js and works; "repro-line/auto" installs the same reproline',
    got.userId === 'user-1' &&
      got.code === 'invalid_user_id' &&
      got.auto === true &&
      got.reproio === true &&
      /\/node_modules\/repro-line\/index\.node\.js$/.test(got.entry) &&
      /\/node_modules\/repro-line\/auto\.node\.js$/.test(got.autoEntry),
    JSON.stringify(got),
  );
}
console.log(passed + ' passed, ' + failed + ' failed');
process.exit(failed ? 1 : 0);
