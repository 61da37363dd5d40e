// The nodes of a large run as a list: only the rows in view exist, so ten thousand nodes scroll and update as fast as ten.

import { h, setAttr, setText } from './dom.js';
import { between, duration, stateClass } from './format.js';

const ROW = 32;
const EXTRA = 8;

export class NodeList {
  constructor(model, { onSelect }) {
    this.model = model;
    this.onSelect = onSelect;
    this.query = '';
    this.states = new Set();
    this.selected = null;
    this.shown = model.nodes;
    this.rows = new Map();
    this.spacer = h('div', { class: 'spacer' });
    this.empty = h('p', { class: 'empty', hidden: true }, 'No node matches.');
    this.el = h('div', { id: 'node-list', class: 'node-list', role: 'list', tabindex: '0', 'aria-label': `${model.nodes.length} nodes` }, this.spacer, this.empty);
    this.el.addEventListener('scroll', () => this.schedule());
    this.el.addEventListener('click', (event) => {
      const row = event.target.closest('[data-node]');
      if (row) this.onSelect(row.dataset.node);
    });
    this.el.addEventListener('keydown', (event) => {
      const row = event.target.closest?.('[data-node]');
      if (row && (event.key === 'Enter' || event.key === ' ')) {
        event.preventDefault();
        this.onSelect(row.dataset.node);
      }
    });
    this.frame = 0;
    this.refilter();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  /** Recomputes which nodes pass the search and the state filter. */
  refilter() {
    const q = this.query.toLowerCase();
    this.shown = q || this.states.size
      ? this.model.nodes.filter((node) => (!q || node.name.toLowerCase().includes(q)) && (!this.states.size || this.states.has(node.state)))
      : this.model.nodes;
    this.spacer.style.height = `${this.shown.length * ROW}px`;
    this.empty.hidden = this.shown.length > 0;
    this.schedule();
  }

  filter(query, states) {
    this.query = query.trim();
    this.states = states;
    this.el.scrollTop = 0;
    this.refilter();
  }

  update(changed) {
    for (const name of changed) {
      const row = this.rows.get(name);
      const node = this.model.byName.get(name);
      if (row && node) this.paint(row, node);
    }
    // A node may have entered or left the states shown.
    if (this.states.size) this.refilter();
  }

  /** Refreshes the durations of running nodes in view. */
  tick() {
    for (const [name, row] of this.rows) {
      const node = this.model.byName.get(name);
      if (node?.state === 'running') this.paint(row, node);
    }
  }

  select(name) {
    this.selected = name;
    for (const [rowName, row] of this.rows) row.el.classList.toggle('selected', rowName === name);
  }

  /** Scrolls a node into view. */
  reveal(name) {
    const at = this.shown.findIndex((node) => node.name === name);
    if (at >= 0) this.el.scrollTop = Math.max(0, at * ROW - this.el.clientHeight / 2);
  }

  makeRow() {
    const cells = {
      state: h('span', { class: 'state' }),
      name: h('span', { class: 'name' }),
      driver: h('span', { class: 'driver muted' }),
      attempts: h('span', { class: 'attempts muted' }),
      took: h('span', { class: 'took num' }),
      reused: h('span', { class: 'badge reused-badge' }, 'reused'),
    };
    const el = h('div', { class: 'row', role: 'listitem', tabindex: '-1' },
      cells.state, cells.name, cells.reused, cells.driver, cells.attempts, cells.took);
    return { el, cells, index: -1 };
  }

  paint(row, node) {
    const { cells } = row;
    setAttr(row.el, 'data-node', node.name);
    setAttr(row.el, 'data-state', node.state);
    setText(cells.state, node.state);
    setAttr(cells.state, 'class', stateClass(node.state));
    setText(cells.name, node.name);
    setAttr(cells.name, 'title', node.name);
    setText(cells.driver, node.driver || '');
    setText(cells.attempts, node.attempts.length > 1 ? `${node.attempts.length} attempts` : '');
    cells.reused.classList.toggle('off', node.reusedFrom === null);
    const end = node.finishedAt;
    const start = node.startedAt;
    setText(cells.took, start ? duration(between(start, end)) : '');
    row.el.classList.toggle('selected', node.name === this.selected);
  }

  render() {
    const top = this.el.scrollTop;
    const height = this.el.clientHeight || 480;
    const first = Math.max(0, Math.floor(top / ROW) - EXTRA);
    const last = Math.min(this.shown.length, Math.ceil((top + height) / ROW) + EXTRA);
    const wanted = new Set();
    for (let i = first; i < last; i += 1) wanted.add(this.shown[i].name);
    const spare = [];
    for (const [name, row] of this.rows) {
      if (!wanted.has(name)) {
        spare.push(row);
        this.rows.delete(name);
      }
    }
    for (let i = first; i < last; i += 1) {
      const node = this.shown[i];
      let row = this.rows.get(node.name);
      if (!row) {
        row = spare.pop() || this.makeRow();
        this.rows.set(node.name, row);
        if (!row.el.parentNode) this.spacer.appendChild(row.el);
        this.paint(row, node);
      }
      if (row.index !== i) {
        row.el.style.transform = `translateY(${i * ROW}px)`;
        row.index = i;
      }
    }
    for (const row of spare) row.el.remove();
  }
}
