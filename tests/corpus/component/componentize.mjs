// Make a WASI preview 1 core module into a WASI preview 2 component, as `wasm-tools component
// new --adapt wasi_snapshot_preview1=ADAPTER` does (wasm-tools compiled to JavaScript, from
// npm's @bytecodealliance/jco-transpile). Usage: node componentize.mjs CORE ADAPTER OUTPUT
import { componentNew } from '@bytecodealliance/jco-transpile/wasm-tools';
import { readFileSync, writeFileSync } from 'node:fs';

const [, , core, adapter, output] = process.argv;
const component = await componentNew(readFileSync(core), [['wasi_snapshot_preview1', readFileSync(adapter)]]);
writeFileSync(output, component);
console.log(`${output}: ${component.length} bytes`);
