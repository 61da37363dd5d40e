// Builds driver.js into a drover driver component with componentize-js.
//
//   node componentize.mjs OUT.wasm
//
// componentize-js is imported from $COMPONENTIZE_JS (the package's folder;
// build.sh installs it in a cache outside the work tree), else from a
// node_modules beside this script.
//
// We call the library rather than `jco componentize`: the CLI fails on our
// machines, and the library call is all it does anyway.

import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
if (!process.argv[2]) {
  console.error('usage: node componentize.mjs OUT.wasm');
  process.exit(2);
}
const out = resolve(process.argv[2]); // before the chdir below

// The package is ESM-only (its `exports` has just an `import` entry), so it
// cannot be found with createRequire(); follow that entry by hand.
const pkgDir = process.env.COMPONENTIZE_JS ?? join(here, 'node_modules/@bytecodealliance/componentize-js');
const pkg = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8'));
const { componentize, version } = await import(pathToFileURL(join(pkgDir, pkg.exports.import)).href);

// componentize-js maps the folder holding the source into the build sandbox
// and strips the working directory from paths; building from here keeps
// error messages short (`driver.js:12`) and independent of the caller's cwd.
process.chdir(here);

const started = Date.now();
const { component } = await componentize({
  sourcePath: join(here, 'driver.js'),
  witPath: resolve(here, '../../../wit'),
  worldName: 'driver',
  // The driver needs none of these; leaving them out drops their WASI
  // imports. `stdio` stays: console.* and uncaught errors write to it.
  disableFeatures: ['http', 'fetch-event', 'random', 'clocks'],
});
await writeFile(out, component);

const mib = (component.length / 2 ** 20).toFixed(1);
const secs = ((Date.now() - started) / 1000).toFixed(1);
console.error(`componentize-js ${version}: ${mib} MiB in ${secs}s`);
