// json-pick: a drover driver written in JavaScript, built into a WebAssembly
// component by componentize-js (see componentize.mjs).
//
// WIT → JS, as componentize-js maps it: the world's exported functions are
// this module's exports; records are plain objects with camelCase fields
// (`run-id` → `runId`); tuples are arrays; `option<T>` is `undefined` or the
// value; enums are their case names as strings (`'info'`, `'success'`).

import { write as log } from 'drover:driver/log@0.1.0';

const NAME = 'json-pick';
const VERSION = '1.0.0';

/** Longest value shown in a log line; outputs themselves are never cut. */
const LOG_VALUE_MAX = 120;

export function describe() {
  return {
    name: NAME,
    version: VERSION,
    summary: 'Picks fields out of a JSON document into outputs.',
    artifact:
      'The JSON document, usually an upstream output: `${{ nodes.NAME.outputs.KEY }}`.',
    args:
      'Pairs `NAME=PATH`: output NAME gets the value at PATH, a dotted path with ' +
      'optional array indexes: `.status`, `.items[0].name`, `.` (the whole document).',
    outputs:
      'One output per arg: strings as they are, other JSON values serialized compactly. ' +
      'The node fails if the document is not JSON or a path is absent.',
    // Pure computation on the task's fields: nothing to ask the host for.
    capabilities: { exec: [], workspace: false, network: false, container: false, secrets: false },
  };
}

export function validate(task) {
  const problems = [];
  const problem = (field, message) => problems.push({ field, message });

  if (task.args.length === 0) {
    problem('args', 'no picks: give at least one `NAME=PATH`, e.g. `status=.status`');
  }
  const seen = new Set();
  task.args.forEach((arg, i) => {
    // An arg holding an upstream output can only be parsed once substituted.
    if (arg.includes('${{')) return;
    const pick = parseArg(arg);
    if (typeof pick === 'string') {
      problem('args', `args[${i}] \`${arg}\`: ${pick}`);
    } else if (seen.has(pick.name)) {
      problem('args', `args[${i}] \`${arg}\`: output \`${pick.name}\` is picked twice`);
    } else {
      seen.add(pick.name);
    }
  });

  // Before `run`, the host has not yet substituted upstream outputs: a
  // document still holding a reference can only be checked then.
  if (!task.artifact.includes('${{')) {
    try {
      JSON.parse(task.artifact);
    } catch (e) {
      problem('artifact', `not a JSON document: ${e.message}`);
    }
  }
  return problems;
}

export function run(task) {
  // An exception escaping an export traps the component and the host only
  // sees a crash, so every failure becomes an outcome with a message.
  const failure = (message) => ({ status: 'failure', exitCode: undefined, outputs: [], message });

  let doc;
  try {
    doc = JSON.parse(task.artifact);
  } catch (e) {
    return failure(`the artifact is not a JSON document: ${e.message}`);
  }

  const outputs = [];
  const errors = [];
  for (const arg of task.args) {
    const pick = parseArg(arg);
    if (typeof pick === 'string') {
      errors.push(`${arg}: ${pick}`);
      continue;
    }
    const found = resolve(doc, pick.path);
    if ('error' in found) {
      errors.push(`${arg}: ${found.error}`);
      continue;
    }
    const { value } = found;
    outputs.push([pick.name, typeof value === 'string' ? value : JSON.stringify(value)]);
    log('info', `${pick.name} = ${cut(JSON.stringify(value))}`);
  }

  if (errors.length > 0) return failure(errors.join('; '));
  if (outputs.length === 0) return failure('no picks: give at least one `NAME=PATH`');
  // A declared output nobody picks would only show up downstream, as a
  // reference to a missing value: say so here.
  for (const name of task.outputs) {
    if (!outputs.some(([picked]) => picked === name)) {
      log('warn', `declared output \`${name}\` is not picked: add an arg \`${name}=PATH\``);
    }
  }
  return { status: 'success', exitCode: undefined, outputs, message: `picked ${outputs.length}` };
}

/**
 * Splits `NAME=PATH` and parses PATH into segments: strings are object keys,
 * numbers array indexes. Returns `{ name, path }`, or a message saying what
 * is wrong.
 */
function parseArg(arg) {
  const eq = arg.indexOf('=');
  if (eq < 0) return 'expected `NAME=PATH`, e.g. `status=.status`';
  const name = arg.slice(0, eq);
  if (name === '' || /\s/.test(name)) {
    return 'NAME must be non-empty, without whitespace';
  }
  const text = arg.slice(eq + 1);
  if (!text.startsWith('.')) return `path \`${text}\` must start with \`.\``;
  if (text === '.') return { name, path: [] };

  // `.key` or `[N]`, repeated; the leading `.` may be followed by `[N]`
  // directly (`.[0]` picks from a top-level array).
  const segment = /\.([^.[\]]+)|\[(\d+)\]/y;
  const path = [];
  let at = text.startsWith('.[') ? 1 : 0;
  while (at < text.length) {
    segment.lastIndex = at;
    const m = segment.exec(text);
    if (!m) {
      return `path \`${text}\` does not parse at \`${text.slice(at)}\`: ` +
        'expected `.key` or `[index]`';
    }
    path.push(m[1] ?? Number(m[2]));
    at = segment.lastIndex;
  }
  return { name, path };
}

/** Walks `path` into `doc`: `{ value }`, or `{ error }` naming the missing segment. */
function resolve(doc, path) {
  let value = doc;
  let where = '';
  for (const seg of path) {
    const at = where || '.';
    if (typeof seg === 'number') {
      if (!Array.isArray(value)) return { error: `no index ${seg} at ${at}: it is ${kind(value)}` };
      if (seg >= value.length) {
        return { error: `no index ${seg} at ${at}: it has ${value.length} element(s)` };
      }
      where += `[${seg}]`;
    } else {
      if (kind(value) !== 'an object') {
        return { error: `no key ${JSON.stringify(seg)} at ${at}: it is ${kind(value)}` };
      }
      // Own keys only: `.constructor` must not find Object's prototype.
      if (!Object.hasOwn(value, seg)) return { error: `no key ${JSON.stringify(seg)} at ${at}` };
      where += `.${seg}`;
    }
    value = value[seg];
  }
  return { value };
}

function kind(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function cut(text) {
  const chars = [...text]; // code points, so that no surrogate pair is split
  return chars.length <= LOG_VALUE_MAX
    ? text
    : `${chars.slice(0, LOG_VALUE_MAX).join('')}… (${chars.length} chars)`;
}
