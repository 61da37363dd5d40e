// A run as the page knows it: the record it loaded, brought up to date by the run's events, with changes handed to the views once per frame.

import { isFinal } from './format.js';

const RANK = { initial: 0, 'to-run': 1, running: 2 };
const rank = (state) => (isFinal(state) ? 3 : RANK[state] ?? 0);

/** Whether a node was reused from an earlier run, under either name a server may use for it. */
function reusedOf(source) {
  if (source.reused_from) return String(source.reused_from);
  if (source.reused === true) return '';
  if (typeof source.reused === 'string' && source.reused) return source.reused;
  return null;
}

function nodeOf(record, index) {
  const attempts = Array.isArray(record.attempts) ? [...record.attempts] : [];
  const node = {
    name: record.name,
    index,
    driver: record.driver ?? null,
    needs: Array.isArray(record.needs) ? record.needs : null,
    digest: record.driver_digest ?? null,
    state: record.state,
    attempts,
    error: record.error ?? null,
    exitCode: record.exit_code ?? null,
    outputs: record.outputs ?? {},
    startedAt: record.started_at ?? null,
    finishedAt: record.finished_at ?? null,
    runningSince: null,
    reusedFrom: reusedOf(record),
    retry: null,
    // Events replayed from the start of the run may be older than the
    // record: a node only moves forward, by attempt then by state.
    key: isFinal(record.state) ? [Infinity, 3] : [attempts.length + 1, rank(record.state)],
  };
  if (record.state === 'running') {
    node.runningSince = attempts.length ? null : node.startedAt;
  }
  return node;
}

export class RunModel {
  constructor(record) {
    this.listeners = new Set();
    this.logListener = null;
    this.changed = new Set();
    this.runChanged = false;
    this.scheduled = false;
    this.lastSeq = 0;
    this.logCounts = new Map();
    this.load(record);
  }

  /** Takes a (fresher) record as the truth. */
  load(record) {
    this.record = record;
    this.id = record.id;
    this.name = record.name;
    this.state = record.state;
    this.rerunOf = record.rerun_of ?? null;
    this.submittedAt = record.submitted_at ?? null;
    this.finishedAt = record.finished_at ?? null;
    const fresh = (record.nodes || []).map(nodeOf);
    if (this.nodes && this.nodes.length === fresh.length && fresh.every((node) => this.byName.has(node.name))) {
      // The views hold these objects: bring them up to date in place.
      for (const node of fresh) Object.assign(this.byName.get(node.name), node, { index: this.byName.get(node.name).index });
    } else {
      this.nodes = fresh;
      this.byName = new Map(this.nodes.map((node) => [node.name, node]));
    }
    this.counts = {};
    for (const node of this.nodes) this.counts[node.state] = (this.counts[node.state] || 0) + 1;
    this.hasGraph = this.nodes.some((node) => node.needs !== null);
    this.runChanged = true;
    for (const node of this.nodes) this.changed.add(node.name);
    this.schedule();
  }

  get running() {
    return this.state === 'running';
  }

  /** The first time a node started, and the last it finished (the run's span when the record has no times of its own). */
  span() {
    let first = null;
    let last = null;
    for (const node of this.nodes) {
      const start = node.startedAt || node.attempts[0]?.started_at;
      if (start && (!first || start < first)) first = start;
      if (node.finishedAt && (!last || node.finishedAt > last)) last = node.finishedAt;
    }
    return { first, last };
  }

  /** `fn(changedNames, runChanged)`, at most once per frame. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.scheduled = false;
    if (!this.changed.size && !this.runChanged) return;
    const changed = this.changed;
    const runChanged = this.runChanged;
    this.changed = new Set();
    this.runChanged = false;
    for (const fn of this.listeners) fn(changed, runChanged);
  }

  setState(node, state) {
    if (node.state === state) return;
    this.counts[node.state] -= 1;
    if (!this.counts[node.state]) delete this.counts[node.state];
    this.counts[state] = (this.counts[state] || 0) + 1;
    node.state = state;
  }

  /** Whether an event about `node`'s `attempt` and `state` is news. */
  advance(node, attempt, state) {
    const [a, r] = node.key;
    const next = [attempt, rank(state)];
    if (next[0] < a || (next[0] === a && next[1] < r)) return false;
    node.key = next;
    return true;
  }

  /** Applies one event of the run's stream (`type` is the SSE event name). */
  apply(type, data, seq) {
    if (seq) this.lastSeq = Math.max(this.lastSeq, seq);
    if (type === 'finished') {
      this.state = data.state;
      this.runChanged = true;
      this.schedule();
      return;
    }
    const node = this.byName.get(data.node);
    if (!node) return;
    switch (type) {
      case 'node': {
        const reused = reusedOf(data);
        if (reused !== null) node.reusedFrom = reused;
        if (!this.advance(node, data.attempt ?? 1, data.state)) break;
        this.setState(node, data.state);
        if (data.state === 'running') {
          node.runningSince = data.at;
          if (!node.startedAt) node.startedAt = data.at;
          node.retry = null;
        } else if (isFinal(data.state)) {
          node.finishedAt = data.at;
          node.error = data.error ?? null;
          node.runningSince = null;
          node.retry = null;
          if (data.outputs) node.outputs = data.outputs;
        }
        this.changed.add(node.name);
        break;
      }
      case 'node-reused': {
        node.reusedFrom = data.from ?? data.reused_from ?? '';
        this.changed.add(node.name);
        break;
      }
      case 'attempt': {
        const attempt = data.attempt;
        if (!attempt) break;
        const at = node.attempts.findIndex((a) => a.attempt === attempt.attempt);
        if (at >= 0) node.attempts[at] = attempt;
        else {
          node.attempts.push(attempt);
          node.attempts.sort((a, b) => a.attempt - b.attempt);
        }
        if (!node.startedAt || attempt.started_at < node.startedAt) node.startedAt = attempt.started_at;
        if (at < 0 && node.state === 'running') node.runningSince = null;
        node.exitCode = attempt.exit_code ?? null;
        this.changed.add(node.name);
        break;
      }
      case 'retry': {
        if (!this.advance(node, (data.attempt ?? 0) + 1, 'to-run')) break;
        this.setState(node, 'to-run');
        node.runningSince = null;
        node.retry = { after: data.attempt, state: data.state, delayMs: data.delay_ms, error: data.error };
        this.changed.add(node.name);
        break;
      }
      case 'log': {
        this.logCounts.set(node.name, (this.logCounts.get(node.name) || 0) + 1);
        this.logListener?.(node.name, data, seq);
        return;
      }
      default:
        return;
    }
    this.schedule();
  }
}
