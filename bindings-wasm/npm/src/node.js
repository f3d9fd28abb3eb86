// Node's entry (built into index.node.js; package.json's `node` condition, which Deno and Bun
// honour too): the same module as index.js, with the wasm read from the package's file first.
// A module of its own, imported first, because a module's imports all run before its body.
import './node-load.js';

export * from './index.js';
export { default } from './index.js';
