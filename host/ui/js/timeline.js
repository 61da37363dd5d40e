// The run's attempts as a Gantt chart: a row per node, a bar per attempt coloured by how it ended, a time axis; only rows in view are drawn.

import { h, s } from './dom.js';
import { duration, localTime } from './format.js';

const ROW = 24;
const LABEL = 190;
const EXTRA = 6;
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400].map((sec) => sec * 1000);

const time = (value) => (value ? new Date(value).getTime() : null);

export class Timeline {
  constructor(model, { onSelect }) {
    this.model = model;
    this.onSelect = onSelect;
    this.axis = s('svg', { class: 'tl-axis', height: 28 });
    this.spacer = h('div', { class: 'spacer' });
    this.body = h('div', { class: 'tl-body' }, this.spacer);
    this.note = h('p', { class: 'muted tl-note' });
    this.el = h('div', { id: 'timeline', class: 'timeline' },
      this.note,
      h('div', { class: 'tl-head' }, h('div', { class: 'tl-corner muted' }, 'node'), this.axis),
      this.body);
    this.body.addEventListener('scroll', () => this.schedule());
    this.body.addEventListener('click', (event) => {
      const row = event.target.closest('[data-node]');
      if (row) this.onSelect(row.dataset.node);
    });
    this.frame = 0;
    this.order = [];
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  /** Each node's bars: its attempts, and the one running now. */
  bars(node) {
    const bars = node.attempts.map((attempt) => ({
      start: time(attempt.started_at),
      end: time(attempt.finished_at),
      state: attempt.state,
      label: `attempt ${attempt.attempt}: ${attempt.state}, ${duration(time(attempt.finished_at) - time(attempt.started_at))}${attempt.exit_code !== null && attempt.exit_code !== undefined ? `, exit code ${attempt.exit_code}` : ''}${attempt.error ? ` (${attempt.error})` : ''}`,
    }));
    if (node.state === 'running' && node.runningSince) {
      const start = time(node.runningSince);
      bars.push({ start, end: Date.now(), state: 'running', label: `attempt ${node.attempts.length + 1}: running for ${duration(Date.now() - start)}` });
    }
    return bars;
  }

  /** The time the chart spans. */
  range() {
    let start = Infinity;
    let end = -Infinity;
    for (const node of this.model.nodes) {
      for (const bar of this.bars(node)) {
        start = Math.min(start, bar.start);
        end = Math.max(end, bar.end);
      }
    }
    if (this.model.running) end = Math.max(end, Date.now());
    return Number.isFinite(start) ? [start, Math.max(end, start + 1000)] : null;
  }

  render() {
    const range = this.range();
    // Nodes in the order they started; those that never did, after, in DAG order.
    const started = (node) => time(node.attempts[0]?.started_at) ?? time(node.runningSince) ?? time(node.startedAt);
    this.order = [...this.model.nodes].sort((a, b) => (started(a) ?? Infinity) - (started(b) ?? Infinity) || a.index - b.index);
    this.spacer.style.height = `${this.order.length * ROW}px`;
    if (!range) {
      this.note.textContent = 'No attempt has started yet.';
      this.note.hidden = false;
      this.axis.replaceChildren();
    } else {
      this.note.hidden = true;
    }
    const width = Math.max(240, (this.body.clientWidth || 900) - LABEL - 12);
    const [t0, t1] = range || [0, 1];
    const x = (t) => ((t - t0) / (t1 - t0)) * width;
    if (range) this.drawAxis(t0, t1, width, x);

    const top = this.body.scrollTop;
    const height = this.body.clientHeight || 400;
    const first = Math.max(0, Math.floor(top / ROW) - EXTRA);
    const last = Math.min(this.order.length, Math.ceil((top + height) / ROW) + EXTRA);
    const rows = [];
    for (let i = first; i < last; i += 1) {
      const node = this.order[i];
      const svg = s('svg', { class: 'tl-bars', width, height: ROW });
      for (const bar of this.bars(node)) {
        const left = Math.max(0, x(bar.start));
        const w = Math.max(2, x(bar.end) - left);
        svg.appendChild(s('rect', { class: `bar st-${bar.state}`, x: left.toFixed(1), y: 5, width: w.toFixed(1), height: ROW - 10, rx: 3 },
          s('title', null, bar.label)));
      }
      let note = '';
      if (node.reusedFrom !== null) note = 'reused';
      else if (!node.attempts.length && node.state !== 'running') note = node.state;
      if (note) svg.appendChild(s('text', { class: 'tl-none', x: 4, y: ROW / 2 + 4 }, note));
      const row = h('div', { class: 'tl-row', 'data-node': node.name, 'data-state': node.state, title: node.name },
        h('span', { class: 'tl-label' }, node.name), svg);
      row.style.transform = `translateY(${i * ROW}px)`;
      rows.push(row);
    }
    this.spacer.replaceChildren(...rows);
  }

  drawAxis(t0, t1, width, x) {
    const span = t1 - t0;
    const step = STEPS.find((candidate) => span / candidate <= Math.max(2, width / 110)) || STEPS[STEPS.length - 1];
    const ticks = [];
    for (let t = 0; t <= span; t += step) {
      const at = x(t0 + t);
      ticks.push(s('line', { x1: at.toFixed(1), x2: at.toFixed(1), y1: 18, y2: 28, class: 'tick' }));
      ticks.push(s('text', { x: (at + 3).toFixed(1), y: 14, class: 'tick-label' }, t === 0 ? localTime(new Date(t0)).slice(11) : `+${duration(t)}`));
    }
    this.axis.setAttribute('width', String(width));
    this.axis.replaceChildren(...ticks);
  }

  destroy() {
    if (this.frame) cancelAnimationFrame(this.frame);
  }
}
