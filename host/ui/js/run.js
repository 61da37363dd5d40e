// A run's page: its header and actions, the graph (or, for a large run, a list) changing live, a node's panel and log, the timeline and the record.

import { api, withQuery } from './api.js';
import { fill, h, perFrame, setText } from './dom.js';
import { NODE_STATES, between, duration, localTime, stateClass } from './format.js';
import { GraphView } from './graph.js';
import { LogView } from './log.js';
import { RunModel } from './model.js';
import { NodeList } from './nodelist.js';
import { Timeline } from './timeline.js';

/** Above this many nodes the page lists them rather than drawing them. */
const DRAW_AT_MOST = 400;
const TABS = ['graph', 'timeline', 'json'];
/** The events the page listens to; `node-reused` only in case a server names one. */
const EVENTS = ['node', 'attempt', 'retry', 'log', 'finished', 'node-reused'];

export function mount(main, view) {
  const id = view.params[0];
  const { context } = view;
  const page = h('section', { class: 'page run-page' }, h('p', { class: 'loading' }, 'Loading the run…'));
  main.append(page);
  const state = { destroyed: false, source: null, timer: 0, cleanup: [] };
  let controller = null;

  api(`/api/v1/runs/${encodeURIComponent(id)}`).then((record) => {
    if (state.destroyed) return;
    controller = new RunPage(page, record, view, context, state);
  }).catch((error) => {
    if (state.destroyed) return;
    fill(page,
      h('h1', null, 'Run ', h('code', null, id)),
      h('p', { class: 'error', role: 'alert' }, error.message),
      h('p', null, h('a', { href: '/ui/runs' }, 'Back to the runs')));
  });

  return {
    update(next) {
      controller?.fromQuery(next.query);
    },
    destroy() {
      state.destroyed = true;
      controller?.destroy();
    },
  };
}

class RunPage {
  constructor(page, record, view, context, state) {
    this.page = page;
    this.context = context;
    this.state = state;
    this.model = new RunModel(record);
    this.id = record.id;
    this.selected = null;
    this.logView = null;
    this.tab = 'graph';
    this.search = '';
    this.states = new Set();
    this.build();
    this.model.subscribe((changed, runChanged) => this.changed(changed, runChanged));
    this.model.logListener = (node, data, seq) => {
      if (this.logView && this.logView.node === node) this.logView.take(seq, data.message);
    };
    this.fromQuery(view.query);
    if (this.model.running) this.connect();
    // Durations of what is running grow by themselves.
    state.timer = setInterval(() => this.tick(), 1000);
    const onResize = perFrame(() => { if (this.tab === 'timeline') this.timeline.render(); });
    window.addEventListener('resize', onResize);
    state.cleanup.push(() => window.removeEventListener('resize', onResize));
  }

  build() {
    const m = this.model;
    const can = this.context.can('operator');
    this.runState = h('span', { id: 'run-state', class: stateClass(m.state) }, m.state);
    this.meta = h('dl', { class: 'run-meta' });
    this.cancel = can ? h('button', { id: 'cancel', type: 'button', class: 'danger', onclick: () => this.doCancel() }, 'Cancel') : null;
    this.rerun = can ? h('button', { id: 'rerun', type: 'button', onclick: () => this.doRerun('all') }, 'Re-run') : null;
    this.rerunFailed = can ? h('button', { id: 'rerun-failed', type: 'button', onclick: () => this.doRerun('failed') }, 'Re-run from failed') : null;
    this.actionError = h('p', { id: 'action-error', class: 'error', role: 'alert', hidden: true });
    this.actionNote = h('p', { class: 'muted action-note', hidden: true });
    this.live = h('span', { class: 'live-dot', hidden: true, title: 'Live: following the run’s events' }, 'live');

    this.tabs = new Map(TABS.map((tab) => [tab, h('button', {
      type: 'button', role: 'tab', 'data-tab': tab, class: 'tab', onclick: () => this.show(tab, true),
    }, { graph: 'Graph', timeline: 'Timeline', json: 'JSON' }[tab])]));

    // The graph tab: search and state summary, the drawing or the list, the node's panel.
    this.searchInput = h('input', { id: 'node-search', type: 'search', placeholder: 'find a node…', autocomplete: 'off', 'aria-label': 'Find a node' });
    this.searchInput.addEventListener('input', () => this.filter());
    this.searchInput.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        const first = this.filter();
        if (first) this.select(first);
      }
    });
    this.summary = h('div', { id: 'state-summary', class: 'state-summary', role: 'group', 'aria-label': 'Nodes by state' });
    this.summary.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-state]');
      if (!button) return;
      const st = button.dataset.state;
      if (st === '') this.states.clear();
      else if (this.states.has(st)) this.states.delete(st);
      else this.states.add(st);
      this.paintSummary();
      this.filter();
    });
    const large = m.nodes.length > DRAW_AT_MOST;
    const onSelect = (name) => this.select(name);
    let area;
    const tools = [];
    if (large) {
      this.list = new NodeList(m, { onSelect });
      area = this.list.el;
    } else {
      this.graph = new GraphView(m, { onSelect });
      area = h('div', { class: 'graph-wrap' }, this.graph.svg);
      tools.push(
        h('button', { type: 'button', class: 'quiet icon', title: 'Zoom in', 'aria-label': 'Zoom in', onclick: () => { this.graph.touched = true; this.graph.zoom(1.25); } }, '+'),
        h('button', { type: 'button', class: 'quiet icon', title: 'Zoom out', 'aria-label': 'Zoom out', onclick: () => { this.graph.touched = true; this.graph.zoom(0.8); } }, '−'),
        h('button', { id: 'graph-fit', type: 'button', class: 'quiet', title: 'Fit the graph to the screen', onclick: () => { this.graph.touched = true; this.graph.fit(); } }, 'Fit'));
    }
    this.panel = h('aside', { id: 'node-panel', class: 'node-panel', hidden: true, 'aria-label': 'Node' });
    this.panel.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && event.target.tagName !== 'INPUT') this.closePanel(true);
    });
    this.graphTab = h('div', { class: 'tab-body', 'data-body': 'graph', role: 'tabpanel' },
      h('div', { class: 'graph-tools' }, this.searchInput, this.summary, h('div', { class: 'zoom' }, tools)),
      large ? h('p', { class: 'muted note' }, `${m.nodes.length} nodes: too many to draw, so they are listed. Search, or pick states above.`) : null,
      h('div', { class: 'split' }, h('div', { class: 'area' }, area), this.panel));

    this.timeline = new Timeline(m, { onSelect: (name) => { this.show('graph', true); this.select(name); } });
    this.timelineTab = h('div', { class: 'tab-body', 'data-body': 'timeline', role: 'tabpanel', hidden: true }, this.timeline.el);

    this.json = h('pre', { id: 'record-json', class: 'json' });
    this.download = h('a', {
      id: 'record-download', class: 'button quiet', href: `/api/v1/runs/${encodeURIComponent(this.id)}`, download: `run-${this.id}.json`,
    }, 'Download the record');
    this.jsonTab = h('div', { class: 'tab-body', 'data-body': 'json', role: 'tabpanel', hidden: true },
      h('div', { class: 'json-tools' }, this.download, h('button', { type: 'button', class: 'quiet', onclick: () => this.loadJson() }, 'Refresh')),
      this.json);

    fill(this.page,
      h('header', { class: 'run-head' },
        h('div', { class: 'run-title' },
          h('h1', null, m.name),
          this.runState,
          this.live),
        this.meta,
        h('div', { class: 'actions' }, this.cancel, this.rerun, this.rerunFailed),
        this.actionNote,
        this.actionError),
      h('nav', { class: 'tabs', role: 'tablist' }, [...this.tabs.values()]),
      this.graphTab, this.timelineTab, this.jsonTab);
    this.paintHead();
    this.paintSummary();
    requestAnimationFrame(() => this.fitOnce());
  }

  /** Fits the graph to its frame the first time the frame has a size. */
  fitOnce() {
    if (!this.graph || this.fitted || this.graphTab.hidden || !this.graph.svg.clientWidth) return;
    this.graph.fit(true);
    this.fitted = true;
  }

  /** The tab and node a URL names. */
  fromQuery(query) {
    const tab = TABS.includes(query.get('tab')) ? query.get('tab') : 'graph';
    this.show(tab, false);
    const node = query.get('node');
    if (node && this.model.byName.has(node)) {
      if (node !== this.selected) this.select(node, false);
    } else if (this.selected) {
      this.closePanel(false);
    }
  }

  /** Keeps the tab and the node in the URL, so that the link shows the same. */
  remember() {
    const path = withQuery(`/ui/runs/${encodeURIComponent(this.id)}`, {
      tab: this.tab === 'graph' ? '' : this.tab,
      node: this.selected || '',
    });
    if (path !== location.pathname + location.search) history.replaceState(null, '', path);
  }

  show(tab, remember) {
    this.tab = tab;
    for (const [name, button] of this.tabs) {
      button.setAttribute('aria-selected', String(name === tab));
      button.classList.toggle('active', name === tab);
    }
    this.graphTab.hidden = tab !== 'graph';
    this.timelineTab.hidden = tab !== 'timeline';
    this.jsonTab.hidden = tab !== 'json';
    if (tab === 'timeline') this.timeline.render();
    if (tab === 'json') this.loadJson();
    if (tab === 'graph' && this.graph && !this.fitted) requestAnimationFrame(() => this.fitOnce());
    if (remember) this.remember();
  }

  async loadJson() {
    try {
      const record = await api(`/api/v1/runs/${encodeURIComponent(this.id)}`);
      if (this.state.destroyed) return;
      this.json.textContent = JSON.stringify(record, null, 2);
    } catch (error) {
      this.json.textContent = `The record could not be loaded: ${error.message}`;
    }
  }

  /** Applies the search and state filter: highlights in the graph, filters the list. */
  filter() {
    const query = this.searchInput.value;
    if (this.list) {
      this.list.filter(query, this.states);
      const q = query.trim().toLowerCase();
      return q ? this.list.shown[0]?.name ?? null : null;
    }
    const first = this.graph.highlight(query, this.states);
    if (first && query.trim()) this.graph.reveal(first);
    return first;
  }

  /** The count of nodes per state, as buttons that filter; updated in place so that a click is never lost to a redraw. */
  paintSummary() {
    const counts = this.model.counts;
    this.chips ??= new Map();
    const chip = (st, label) => {
      let button = this.chips.get(st);
      if (!button) {
        button = h('button', { type: 'button', 'data-state': st });
        this.chips.set(st, button);
      }
      const on = st === '' ? this.states.size === 0 : this.states.has(st);
      setText(button, label);
      button.className = `chip${st ? ` ${stateClass(st)}` : ''}${on ? ' on' : ''}`;
      button.setAttribute('aria-pressed', String(on));
      return button;
    };
    const wanted = [chip('', `all ${this.model.nodes.length}`)];
    for (const st of NODE_STATES) {
      if (counts[st] || this.states.has(st)) wanted.push(chip(st, `${st} ${counts[st] || 0}`));
    }
    const current = [...this.summary.children];
    if (current.length !== wanted.length || current.some((el, i) => el !== wanted[i])) this.summary.replaceChildren(...wanted);
  }

  paintHead() {
    const m = this.model;
    document.title = `${m.name} (${m.state}) · drover`;
    setText(this.runState, m.state);
    this.runState.className = stateClass(m.state);
    const { first, last } = m.span();
    const finished = m.finishedAt || (m.running ? null : last);
    const started = m.submittedAt || first;
    const took = started ? `${duration(between(started, finished))}${m.running ? ' so far' : ''}` : '';
    // Rebuilt only when what it shows changes, not at every second of a running run.
    const shape = JSON.stringify([m.id, m.rerunOf, started, finished, m.nodes.length]);
    if (shape !== this.headShape) {
      this.headShape = shape;
      this.took = h('dd', { id: 'run-duration' }, took);
      const items = [['id', h('code', null, m.id)]];
      if (m.rerunOf) items.push(['re-runs', h('a', { id: 'rerun-of', href: `/ui/runs/${encodeURIComponent(m.rerunOf)}` }, m.rerunOf)]);
      if (started) items.push([m.submittedAt ? 'submitted' : 'started', h('time', { datetime: started, title: started }, localTime(started))]);
      if (finished) items.push(['finished', h('time', { datetime: finished, title: finished }, localTime(finished))]);
      fill(this.meta,
        items.map(([term, value]) => h('div', null, h('dt', null, term), h('dd', null, value))),
        started ? h('div', null, h('dt', null, 'duration'), this.took) : null,
        h('div', null, h('dt', null, 'nodes'), h('dd', null, String(m.nodes.length))));
    } else {
      setText(this.took, took);
    }
    if (this.cancel) this.cancel.hidden = !m.running;
    if (this.rerun) this.rerun.hidden = m.running;
    if (this.rerunFailed) this.rerunFailed.hidden = m.running || m.nodes.every((node) => node.state === 'success');
    this.live.hidden = !this.state.source;
  }

  changed(changed, runChanged) {
    this.graph?.update(changed);
    this.list?.update(changed);
    if (this.states.size && this.graph) this.graph.highlight(this.searchInput.value, this.states);
    this.paintSummary();
    if (runChanged) this.paintHead();
    if (this.selected && changed.has(this.selected)) this.paintPanel();
    if (this.tab === 'timeline') this.timeline.schedule();
  }

  tick() {
    if (!this.model.running) return;
    this.paintHead();
    this.list?.tick();
    if (this.tab === 'timeline' && document.visibilityState === 'visible') this.timeline.render();
    if (this.selected && this.model.byName.get(this.selected)?.state === 'running') this.paintPanel();
  }

  /** Follows the run's events until it ends; the browser resumes a dropped stream after the last event id. */
  connect() {
    const source = new EventSource(`/api/v1/runs/${encodeURIComponent(this.id)}/events`);
    this.state.source = source;
    for (const type of EVENTS) {
      source.addEventListener(type, (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        this.model.apply(type, data, Number(event.lastEventId) || data.seq || 0);
        if (type === 'finished') this.finished();
      });
    }
    source.addEventListener('open', () => { this.live.classList.remove('lost'); this.live.textContent = 'live'; });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        this.live.textContent = 'not live';
        this.live.classList.add('lost');
        this.state.source = null;
        // The server refused the stream (the session ended, the run is gone): the record says which.
        api(`/api/v1/runs/${encodeURIComponent(this.id)}`).then((record) => {
          if (!this.state.destroyed && record.state !== 'running') this.finished();
        }).catch(() => {});
      } else {
        this.live.textContent = 'reconnecting…';
        this.live.classList.add('lost');
      }
    });
    this.paintHead();
  }

  /** The run ended: stop following, and take the final record (outputs and all). */
  async finished() {
    this.state.source?.close();
    this.state.source = null;
    try {
      const record = await api(`/api/v1/runs/${encodeURIComponent(this.id)}`);
      if (this.state.destroyed) return;
      this.model.load(record);
      if (this.tab === 'json') this.json.textContent = JSON.stringify(record, null, 2);
    } catch {
      // The events already said how it ended.
    }
    this.paintHead();
  }

  select(name, remember = true) {
    const node = this.model.byName.get(name);
    if (!node) return;
    if (this.selected !== name || this.panel.hidden) {
      this.selected = name;
      this.graph?.select(name);
      this.list?.select(name);
      this.panel.hidden = false;
      this.logView?.destroy();
      this.logView = new LogView(this.model, name);
      this.details = h('div', { class: 'details' });
      fill(this.panel,
        h('div', { class: 'panel-head' },
          h('h2', { title: name }, name),
          h('button', { type: 'button', class: 'quiet icon close', 'aria-label': 'Close the node panel', onclick: () => this.closePanel(true) }, '×')),
        this.details,
        this.logView.el);
      this.paintPanel();
      this.panel.scrollTop = 0;
      // The drawing's frame just narrowed: fit it again unless the user placed it.
      if (this.graph && !this.graph.touched) requestAnimationFrame(() => this.graph.fit(true));
      if (window.matchMedia('(max-width: 900px)').matches) this.panel.scrollIntoView({ block: 'start', behavior: 'smooth' });
    }
    if (remember) this.remember();
  }

  closePanel(remember) {
    this.selected = null;
    this.graph?.select(null);
    this.list?.select(null);
    this.logView?.destroy();
    this.logView = null;
    this.panel.hidden = true;
    this.panel.replaceChildren();
    if (remember) this.remember();
  }

  paintPanel() {
    const node = this.model.byName.get(this.selected);
    if (!node || !this.details) return;
    const rows = [
      ['state', h('span', { id: 'node-state', class: stateClass(node.state) }, node.state)],
    ];
    if (node.reusedFrom !== null) {
      rows.push(['reused', node.reusedFrom
        ? ['outputs of run ', h('a', { href: `/ui/runs/${encodeURIComponent(node.reusedFrom)}` }, node.reusedFrom)]
        : 'outputs of the run it re-runs']);
    }
    if (node.driver) rows.push(['driver', node.driver]);
    if (node.digest) rows.push(['digest', h('code', { class: 'digest', title: node.digest }, node.digest)]);
    if (node.needs?.length) rows.push(['needs', node.needs.join(', ')]);
    if (node.startedAt) rows.push(['started', localTime(node.startedAt)]);
    if (node.finishedAt) rows.push(['finished', localTime(node.finishedAt)]);
    if (node.startedAt) rows.push(['duration', `${duration(between(node.startedAt, node.finishedAt))}${node.finishedAt ? '' : ' so far'}`]);
    if (node.exitCode !== null && node.exitCode !== undefined) rows.push(['exit code', h('span', { id: 'node-exit-code' }, String(node.exitCode))]);
    if (node.retry) rows.push(['retry', `attempt ${node.retry.after} ended ${node.retry.state}; the next starts after ${duration(node.retry.delayMs)}`]);
    const parts = [h('dl', { class: 'facts' }, rows.map(([term, value]) => h('div', null, h('dt', null, term), h('dd', null, value))))];
    if (node.error) parts.push(h('p', { id: 'node-error', class: 'error node-error' }, node.error));
    if (node.attempts.length) {
      parts.push(h('table', { class: 'grid attempts-table' },
        h('thead', null, h('tr', null, ['#', 'state', 'started', 'took', 'exit', 'error'].map((label) => h('th', { scope: 'col' }, label)))),
        h('tbody', null, node.attempts.map((attempt) => h('tr', { 'data-attempt': attempt.attempt },
          h('td', { class: 'num' }, String(attempt.attempt)),
          h('td', null, h('span', { class: stateClass(attempt.state) }, attempt.state)),
          h('td', null, localTime(attempt.started_at)),
          h('td', { class: 'num' }, duration(between(attempt.started_at, attempt.finished_at))),
          h('td', { class: 'num' }, attempt.exit_code ?? ''),
          h('td', { class: 'wrap-text' }, attempt.error ?? ''))))));
    }
    const outputs = Object.entries(node.outputs || {});
    if (outputs.length) {
      parts.push(h('h3', null, 'Outputs'), h('table', { class: 'grid outputs-table', id: 'node-outputs' },
        h('tbody', null, outputs.map(([key, value]) => h('tr', { 'data-output': key }, h('th', { scope: 'row' }, key), h('td', { class: 'mono wrap-text' }, value))))));
    }
    fill(this.details, parts);
  }

  async doCancel() {
    this.actionError.hidden = true;
    this.cancel.disabled = true;
    try {
      await api(`/api/v1/runs/${encodeURIComponent(this.id)}/cancel`, { method: 'POST' });
      this.actionNote.textContent = 'Cancel requested: running nodes are being stopped.';
      this.actionNote.hidden = false;
    } catch (error) {
      this.actionError.textContent = error.message;
      this.actionError.hidden = false;
      this.cancel.disabled = false;
    }
  }

  async doRerun(from) {
    this.actionError.hidden = true;
    const buttons = [this.rerun, this.rerunFailed];
    for (const button of buttons) button.disabled = true;
    try {
      const created = await api(`/api/v1/runs/${encodeURIComponent(this.id)}/rerun`, { method: 'POST', query: { from } });
      this.context.navigate(`/ui/runs/${encodeURIComponent(created.id)}`);
    } catch (error) {
      this.actionError.textContent = error.message;
      this.actionError.hidden = false;
      for (const button of buttons) button.disabled = false;
    }
  }

  destroy() {
    this.state.source?.close();
    this.state.source = null;
    clearInterval(this.state.timer);
    for (const fn of this.state.cleanup) fn();
    this.logView?.destroy();
    this.timeline.destroy();
  }
}
