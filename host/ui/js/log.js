// A node's log beside the graph: loaded as text, then followed live from the run's events; colours, search, wrap, follow, download.

import { api } from './api.js';
import { AnsiReader } from './ansi.js';
import { debounce, h } from './dom.js';

/** The most lines kept on the page; the download has them all. */
const KEEP = 20000;

export class LogView {
  /**
   * The log of `node` in run `model.id`. While the run goes on, lines come
   * from the run's event stream through `take(seq, message)`; the text
   * loaded first already holds some of them (see `load`).
   */
  constructor(model, node) {
    this.model = model;
    this.node = node;
    this.reader = new AnsiReader();
    this.lines = [];
    this.pending = [];
    this.queued = [];
    this.loading = true;
    this.skip = 0;
    this.since = 0;
    this.dropped = 0;
    this.query = '';
    this.frame = 0;
    this.destroyed = false;

    const url = `/api/v1/runs/${encodeURIComponent(model.id)}/nodes/${encodeURIComponent(node)}/logs`;
    this.search = h('input', { id: 'log-search', type: 'search', placeholder: 'search the log…', autocomplete: 'off', 'aria-label': 'Search the log' });
    this.wrap = h('input', { id: 'log-wrap', type: 'checkbox' });
    this.follow = h('input', { id: 'log-follow', type: 'checkbox', checked: true });
    this.count = h('span', { class: 'log-count muted' });
    this.body = h('div', { id: 'node-log', class: 'log', role: 'log', 'aria-live': 'off', tabindex: '0' });
    this.status = h('p', { class: 'log-status muted' }, 'Loading the log…');
    this.el = h('section', { class: 'log-panel', 'aria-label': `Log of ${node}` },
      h('div', { class: 'log-tools' },
        this.search,
        h('label', { class: 'toggle' }, this.wrap, ' wrap'),
        h('label', { class: 'toggle' }, this.follow, ' follow'),
        h('a', { id: 'log-download', class: 'button quiet', href: url, download: `${model.id}-${node}.log` }, 'Download'),
        this.count),
      this.status,
      this.body);

    this.search.addEventListener('input', debounce(() => this.filter(this.search.value), 150));
    this.wrap.addEventListener('change', () => this.body.classList.toggle('wrap', this.wrap.checked));
    this.follow.addEventListener('change', () => { if (this.follow.checked) this.toBottom(); });
    // Scrolling up pauses following; coming back to the bottom resumes it.
    this.body.addEventListener('scroll', () => {
      const atBottom = this.body.scrollHeight - this.body.scrollTop - this.body.clientHeight < 4;
      if (this.follow.checked !== atBottom) this.follow.checked = atBottom;
    });
    this.url = url;
    this.load();
  }

  /**
   * Loads the text of the log. Every event the stream delivered before the
   * request is durable, so in the text; of the lines that come after
   * (`seq` past `since`), the text may hold the first few: as many as it
   * has lines beyond those counted before. Those are skipped.
   */
  async load() {
    const live = this.model.running;
    this.since = this.model.lastSeq;
    const counted = this.model.logCounts.get(this.node) || 0;
    let text;
    try {
      text = await api(this.url, { headers: { Accept: 'text/plain' } });
    } catch (error) {
      if (this.destroyed) return;
      this.status.textContent = `The log could not be loaded: ${error.message}`;
      this.status.classList.add('error');
      this.loading = false;
      return;
    }
    if (this.destroyed) return;
    const lines = String(text ?? '').split('\n');
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    this.skip = live ? Math.max(0, lines.length - counted) : 0;
    this.loading = false;
    this.add(lines);
    const pending = this.pending;
    this.pending = [];
    for (const [seq, message] of pending) this.take(seq, message);
    this.showStatus();
  }

  /** A line of this node from the run's event stream. */
  take(seq, message) {
    if (this.destroyed || (seq && seq <= this.since)) return;
    if (this.loading) {
      this.pending.push([seq, message]);
      return;
    }
    if (this.skip > 0) {
      this.skip -= 1;
      return;
    }
    this.add([message]);
  }

  showStatus() {
    const total = this.lines.length + this.dropped;
    const reused = this.model.byName.get(this.node)?.reusedFrom;
    if (total === 0 && reused) {
      // A reused node did not run in this run: its log is the earlier run's.
      this.status.replaceChildren('Reused: this node did not run here. Its log is in ',
        h('a', { href: `/ui/runs/${encodeURIComponent(reused)}?node=${encodeURIComponent(this.node)}` }, `run ${reused}`), '.');
      this.status.hidden = false;
    } else if (total === 0) {
      this.status.textContent = this.model.running ? 'No log lines yet.' : 'This node logged nothing.';
      this.status.hidden = false;
    } else if (this.dropped) {
      this.status.textContent = `The first ${this.dropped} lines are not shown here (the page keeps the last ${KEEP}); the download has them all.`;
      this.status.hidden = false;
    } else {
      this.status.hidden = true;
    }
    this.count.textContent = `${total} line${total === 1 ? '' : 's'}`;
    // An empty log of a node that is done needs no empty frame.
    this.body.hidden = total === 0 && !this.model.running;
  }

  add(messages) {
    this.queued.push(...messages);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  render() {
    this.frame = 0;
    if (this.destroyed || !this.queued.length) return;
    const fragment = document.createDocumentFragment();
    const query = this.query.toLowerCase();
    for (const message of this.queued) {
      const segments = this.reader.parse(message);
      const text = segments.map((segment) => segment.text).join('');
      const el = lineElement(segments, query, this.lines.length + this.dropped + 1);
      const line = { text, segments, el };
      if (query && !text.toLowerCase().includes(query)) el.hidden = true;
      this.lines.push(line);
      fragment.appendChild(el);
    }
    this.queued = [];
    this.body.appendChild(fragment);
    if (this.lines.length > KEEP) {
      const gone = this.lines.splice(0, this.lines.length - KEEP);
      for (const line of gone) line.el.remove();
      this.dropped += gone.length;
    }
    this.showStatus();
    if (this.follow.checked) this.toBottom();
  }

  toBottom() {
    this.body.scrollTop = this.body.scrollHeight;
  }

  /** Shows only the lines with `query` in them, the matches marked. */
  filter(query) {
    this.query = query.trim();
    const q = this.query.toLowerCase();
    let shown = 0;
    for (const line of this.lines) {
      const matches = !q || line.text.toLowerCase().includes(q);
      if (matches) {
        shown += 1;
        const marked = line.el.dataset.marked === '1';
        if (q || marked) {
          const fresh = lineElement(line.segments, q, Number(line.el.dataset.n));
          line.el.replaceWith(fresh);
          line.el = fresh;
        }
      }
      line.el.hidden = !matches;
    }
    this.count.textContent = q ? `${shown} of ${this.lines.length} lines match` : `${this.lines.length + this.dropped} lines`;
    if (this.follow.checked) this.toBottom();
  }

  destroy() {
    this.destroyed = true;
    if (this.frame) cancelAnimationFrame(this.frame);
  }
}

/** One line as an element: a span per coloured segment, `mark`s around what the search found. */
function lineElement(segments, query, n) {
  const el = document.createElement('div');
  el.className = 'log-line';
  el.dataset.n = String(n);
  const text = segments.map((segment) => segment.text).join('');
  const lower = text.toLowerCase();
  const marks = [];
  if (query) {
    for (let at = lower.indexOf(query); at >= 0; at = lower.indexOf(query, at + query.length)) {
      marks.push([at, at + query.length]);
    }
    if (marks.length) el.dataset.marked = '1';
  }
  let offset = 0;
  for (const segment of segments) {
    const start = offset;
    const end = offset + segment.text.length;
    offset = end;
    const span = document.createElement('span');
    if (segment.classes) span.className = segment.classes;
    if (segment.color) span.style.color = segment.color;
    if (segment.background) span.style.backgroundColor = segment.background;
    let cursor = start;
    for (const [a, b] of marks) {
      if (b <= cursor || a >= end) continue;
      const from = Math.max(a, cursor);
      const to = Math.min(b, end);
      if (from > cursor) span.appendChild(document.createTextNode(text.slice(cursor, from)));
      const mark = document.createElement('mark');
      mark.textContent = text.slice(from, to);
      span.appendChild(mark);
      cursor = to;
    }
    if (cursor < end) span.appendChild(document.createTextNode(text.slice(cursor, end)));
    el.appendChild(segment.classes || segment.color || segment.background || marks.length ? span : document.createTextNode(segment.text));
  }
  return el;
}
