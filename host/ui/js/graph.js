// The DAG as SVG, left to right, each node coloured and named by its state; pan, zoom, fit, search highlights.

import { s, setAttr, setText } from './dom.js';
import { edgePath, layout } from './layout.js';

const NODE_W = 184;
const NODE_H = 48;
const MARGIN = 24;
/** The smallest scale at which names can still be read. */
const LEGIBLE = 0.55;

/** A name cut to fit a node, with an ellipsis. */
function fit(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export class GraphView {
  constructor(model, { onSelect }) {
    this.model = model;
    this.onSelect = onSelect;
    this.view = { k: 1, x: 0, y: 0 };
    this.selected = null;
    this.elements = new Map();
    this.pointers = new Map();
    /** Whether the user moved the view (then it is left where they put it). */
    this.touched = false;

    const plan = this.plan();
    this.size = { width: plan.width, height: plan.height };
    this.viewport = s('g', { class: 'viewport' });
    const edges = s('g', { class: 'edges' });
    const nodes = s('g', { class: 'nodes' });
    this.edgesByNode = new Map();
    for (const edge of plan.edges) {
      const path = s('path', { class: 'edge', d: edgePath(edge.points), 'marker-end': 'url(#arrow)', 'data-from': edge.from, 'data-to': edge.to });
      edges.appendChild(path);
      for (const name of [edge.from, edge.to]) {
        if (!this.edgesByNode.has(name)) this.edgesByNode.set(name, []);
        this.edgesByNode.get(name).push(path);
      }
    }
    for (const place of plan.nodes) {
      const node = model.byName.get(place.name);
      const title = s('title');
      const label = s('text', { class: 'label', x: 12, y: 20 }, fit(place.name, 22));
      const state = s('text', { class: 'state-text', x: 12, y: 37 });
      const badge = s('text', { class: 'badge-text', x: NODE_W - 10, y: 37, 'text-anchor': 'end' });
      const g = s('g', {
        class: 'node',
        'data-node': place.name,
        'data-state': node.state,
        transform: `translate(${place.x},${place.y})`,
        tabindex: '0',
        role: 'button',
        'aria-label': place.name,
      },
      title,
      s('rect', { class: 'box', width: NODE_W, height: NODE_H, rx: 7 }),
      s('rect', { class: 'stripe', width: 6, height: NODE_H, rx: 3 }),
      label, state, badge);
      g.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          this.onSelect(place.name);
        }
      });
      nodes.appendChild(g);
      this.elements.set(place.name, { g, title, state, badge });
      this.paint(node);
    }
    this.viewport.append(edges, nodes);

    this.svg = s('svg', { id: 'graph', class: 'graph', role: 'img', 'aria-label': `The graph of ${model.name}: ${model.nodes.length} nodes` },
      s('defs', null,
        s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
          s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }))),
      this.viewport);
    this.listen();
  }

  /** Positions: the layered layout, or a grid when the record does not say what needs what. */
  plan() {
    const nodes = this.model.nodes.map((node) => ({ name: node.name, needs: node.needs || [] }));
    const options = { nodeWidth: NODE_W, nodeHeight: NODE_H, layerGap: 72, nodeGap: 16 };
    const planned = layout(nodes, options);
    if (planned.edges.length || nodes.length < 6) return planned;
    const rows = Math.ceil(Math.sqrt(nodes.length * 2.5));
    const placed = nodes.map((node, i) => ({
      name: node.name,
      x: Math.floor(i / rows) * (NODE_W + 32),
      y: (i % rows) * (NODE_H + 14),
    }));
    return {
      nodes: placed,
      edges: [],
      width: Math.ceil(nodes.length / rows) * (NODE_W + 32) - 32,
      height: Math.min(rows, nodes.length) * (NODE_H + 14) - 14,
    };
  }

  /** Brings one node's drawing up to date with the model. */
  paint(node) {
    const el = this.elements.get(node.name);
    if (!el) return;
    setAttr(el.g, 'data-state', node.state);
    const tries = node.attempts.length > 1 ? ` · ${node.attempts.length} attempts` : '';
    setText(el.state, `${node.state}${tries}`);
    setText(el.badge, node.reusedFrom !== null ? 'reused' : '');
    el.g.classList.toggle('reused', node.reusedFrom !== null);
    setText(el.title, `${node.name}: ${node.state}${node.reusedFrom !== null ? ' (reused)' : ''}`);
  }

  update(changed) {
    for (const name of changed) {
      const node = this.model.byName.get(name);
      if (node) this.paint(node);
    }
  }

  select(name) {
    if (this.selected) {
      this.elements.get(this.selected)?.g.classList.remove('selected');
      for (const path of this.edgesByNode.get(this.selected) || []) path.classList.remove('near');
    }
    this.selected = name;
    if (name) {
      this.elements.get(name)?.g.classList.add('selected');
      for (const path of this.edgesByNode.get(name) || []) path.classList.add('near');
    }
  }

  /** Dims every node that neither contains `query` nor is in one of `states` (when any is given). */
  highlight(query, states) {
    const q = query.trim().toLowerCase();
    const active = Boolean(q) || states.size > 0;
    this.svg.classList.toggle('filtering', active);
    let first = null;
    for (const node of this.model.nodes) {
      const el = this.elements.get(node.name);
      const match = active && (!q || node.name.toLowerCase().includes(q)) && (!states.size || states.has(node.state));
      el.g.classList.toggle('match', match);
      if (match && !first) first = node.name;
    }
    return first;
  }

  apply() {
    const { k, x, y } = this.view;
    this.viewport.setAttribute('transform', `translate(${x.toFixed(1)},${y.toFixed(1)}) scale(${k.toFixed(4)})`);
  }

  /**
   * The whole graph in view (at most at natural size). With `readable`, a
   * graph that would shrink past legibility is shown from its start at the
   * smallest legible size instead: the Fit button shows it whole.
   */
  fit(readable = false) {
    const width = this.svg.clientWidth || 800;
    const height = this.svg.clientHeight || 500;
    const k = Math.min((width - 2 * MARGIN) / Math.max(this.size.width, 1), (height - 2 * MARGIN) / Math.max(this.size.height, 1), 1.25);
    this.view.k = Math.max(k, 0.02);
    this.view.x = (width - this.size.width * this.view.k) / 2;
    this.view.y = (height - this.size.height * this.view.k) / 2;
    if (readable && k < LEGIBLE) {
      const tall = this.size.height * LEGIBLE > height - 2 * MARGIN;
      this.view.k = LEGIBLE;
      this.view.x = MARGIN;
      this.view.y = tall ? MARGIN : (height - this.size.height * LEGIBLE) / 2;
    }
    this.apply();
  }

  zoom(factor, cx, cy) {
    const width = this.svg.clientWidth || 800;
    const height = this.svg.clientHeight || 500;
    const px = cx ?? width / 2;
    const py = cy ?? height / 2;
    const k = Math.max(0.02, Math.min(4, this.view.k * factor));
    this.view.x = px - ((px - this.view.x) * k) / this.view.k;
    this.view.y = py - ((py - this.view.y) * k) / this.view.k;
    this.view.k = k;
    this.apply();
  }

  /** Centres the view on a node, zooming in to a readable size if needed. */
  reveal(name) {
    const el = this.elements.get(name);
    if (!el) return;
    const match = /translate\(([-\d.]+),([-\d.]+)\)/.exec(el.g.getAttribute('transform'));
    if (!match) return;
    const width = this.svg.clientWidth || 800;
    const height = this.svg.clientHeight || 500;
    this.view.k = Math.max(this.view.k, 0.8);
    this.view.x = width / 2 - (Number(match[1]) + NODE_W / 2) * this.view.k;
    this.view.y = height / 2 - (Number(match[2]) + NODE_H / 2) * this.view.k;
    this.apply();
  }

  listen() {
    const svg = this.svg;
    svg.addEventListener('wheel', (event) => {
      event.preventDefault();
      this.touched = true;
      const box = svg.getBoundingClientRect();
      const step = event.deltaMode === 1 ? 0.05 : 0.0015;
      this.zoom(Math.exp(-event.deltaY * step), event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
    let press = null;
    svg.addEventListener('pointerdown', (event) => {
      if (event.button !== 0) return;
      svg.setPointerCapture(event.pointerId);
      this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      const node = event.target.closest?.('g.node');
      press = { node: node ? node.dataset.node : null, x: event.clientX, y: event.clientY, moved: false };
    });
    svg.addEventListener('pointermove', (event) => {
      const last = this.pointers.get(event.pointerId);
      if (!last) return;
      if (this.pointers.size === 2) {
        // Two fingers: zoom by how much their distance changed, around their middle.
        const [a, b] = [...this.pointers.entries()];
        const other = a[0] === event.pointerId ? b[1] : a[1];
        const before = Math.hypot(last.x - other.x, last.y - other.y);
        const after = Math.hypot(event.clientX - other.x, event.clientY - other.y);
        const box = svg.getBoundingClientRect();
        if (before > 0) this.zoom(after / before, (event.clientX + other.x) / 2 - box.left, (event.clientY + other.y) / 2 - box.top);
        if (press) press.moved = true;
      } else {
        this.view.x += event.clientX - last.x;
        this.view.y += event.clientY - last.y;
        this.apply();
        if (press && Math.hypot(event.clientX - press.x, event.clientY - press.y) > 4) press.moved = true;
        if (press?.moved) this.touched = true;
        svg.classList.toggle('dragging', Boolean(press?.moved));
      }
      this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    });
    const release = (event) => {
      this.pointers.delete(event.pointerId);
      svg.classList.remove('dragging');
      if (press && !press.moved && event.type === 'pointerup' && press.node) this.onSelect(press.node);
      if (!this.pointers.size) press = null;
    };
    svg.addEventListener('pointerup', release);
    svg.addEventListener('pointercancel', release);
  }
}
