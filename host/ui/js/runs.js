// The runs list: filters kept in the URL, paging by cursor, rows updated in place every 2 s while the tab is visible.

import { api, withQuery } from './api.js';
import { h, setAttr, setText } from './dom.js';
import { RUN_STATES, between, duration, fromLocalInput, localTime, stateClass, toLocalInput } from './format.js';

const POLL_MS = 2000;
const PAGE = 50;

/** Names people use for run states, mapped to the API's. */
const ALIASES = { failed: 'failure', succeeded: 'success', successful: 'success', cancelled: 'canceled', timedout: 'timeout', 'timed-out': 'timeout' };

/** The filters and page a URL's query asks for. */
function readQuery(query) {
  let state = (query.get('state') || '').toLowerCase();
  state = ALIASES[state] || state;
  const instant = (value) => {
    if (!value) return '';
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace('.000Z', 'Z');
  };
  return {
    state: RUN_STATES.includes(state) ? state : '',
    name: query.get('name') || '',
    since: instant(query.get('since')),
    until: instant(query.get('until')),
    before: query.get('before') || '',
    trail: (query.get('trail') || '').split(',').filter(Boolean),
  };
}

function urlOf(filters) {
  return withQuery('/ui/runs', {
    state: filters.state,
    name: filters.name,
    since: filters.since,
    until: filters.until,
    before: filters.before,
    trail: filters.trail.join(','),
  });
}

/** How a run came to be: a re-run, or the API it was submitted through. */
function trigger(run) {
  if (run.rerun_of) return ['rerun of ', h('a', { href: `/ui/runs/${encodeURIComponent(run.rerun_of)}` }, run.rerun_of)];
  // drover's own API is the usual way in; gorchestrator's is worth naming.
  if (run.api && run.api !== 'native') return [`${run.api} api`];
  return ['api'];
}

export function mount(main, view) {
  const { context } = view;
  let filters = readQuery(view.query);
  const abort = new AbortController();
  let timer = 0;
  let loading = false;
  let again = false;
  let next = null;

  const stateSelect = h('select', { id: 'filter-state', name: 'state' },
    h('option', { value: '' }, 'any state'),
    RUN_STATES.map((state) => h('option', { value: state }, state)));
  const nameInput = h('input', { id: 'filter-name', name: 'name', type: 'search', placeholder: 'name contains…', autocomplete: 'off' });
  const sinceInput = h('input', { id: 'filter-since', name: 'since', type: 'datetime-local' });
  const untilInput = h('input', { id: 'filter-until', name: 'until', type: 'datetime-local' });
  const apply = h('button', { id: 'filter-apply', type: 'submit' }, 'Apply');
  const clear = h('button', { type: 'button', class: 'quiet', onclick: () => context.navigate('/ui/runs') }, 'Clear');
  const form = h('form', { class: 'filters', onsubmit: (event) => { event.preventDefault(); applyForm(); } },
    h('label', null, h('span', null, 'State'), stateSelect),
    h('label', null, h('span', null, 'Name'), nameInput),
    h('label', null, h('span', null, 'Submitted since'), sinceInput),
    h('label', null, h('span', null, 'until'), untilInput),
    h('div', { class: 'filter-buttons' }, apply, clear));
  // Enter in any field applies, the select included.
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && event.target.tagName !== 'BUTTON') {
      event.preventDefault();
      applyForm();
    }
  });

  const tbody = h('tbody');
  const table = h('table', { id: 'runs', class: 'grid runs' },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col' }, 'Name'),
      h('th', { scope: 'col' }, 'Id'),
      h('th', { scope: 'col' }, 'Trigger'),
      h('th', { scope: 'col' }, 'Started'),
      h('th', { scope: 'col' }, 'Duration'))),
    tbody);
  const empty = h('p', { class: 'empty', hidden: true }, 'No runs match these filters.');
  const error = h('p', { id: 'runs-error', class: 'error', role: 'alert', hidden: true });
  const prev = h('button', { id: 'page-prev', type: 'button', class: 'quiet', onclick: () => goBack() }, '← Newer');
  const nextButton = h('button', { id: 'page-next', type: 'button', class: 'quiet', onclick: () => goNext() }, 'Older →');
  const pageInfo = h('span', { class: 'page-info' });

  main.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' },
      h('h1', null, 'Runs'),
      context.can('operator') ? h('a', { class: 'button', href: '/ui/submit' }, 'Submit a DAG') : null),
    form,
    error,
    h('div', { class: 'table-wrap' }, table),
    empty,
    h('div', { class: 'pager' }, prev, pageInfo, nextButton)));

  const rows = new Map();

  function fillForm() {
    stateSelect.value = filters.state;
    nameInput.value = filters.name;
    sinceInput.value = toLocalInput(filters.since);
    untilInput.value = toLocalInput(filters.until);
    prev.disabled = !filters.before;
    setText(pageInfo, filters.before ? `page ${filters.trail.length + 2}` : 'newest first');
  }

  function applyForm() {
    const wanted = {
      state: stateSelect.value,
      name: nameInput.value.trim(),
      since: fromLocalInput(sinceInput.value),
      until: fromLocalInput(untilInput.value),
      before: '',
      trail: [],
    };
    context.navigate(urlOf(wanted));
  }

  function goNext() {
    if (!next) return;
    const trail = filters.before ? [...filters.trail, filters.before] : [];
    context.navigate(urlOf({ ...filters, before: next, trail }));
  }

  function goBack() {
    if (!filters.before) return;
    const trail = [...filters.trail];
    const before = trail.pop() || '';
    context.navigate(urlOf({ ...filters, before, trail }));
  }

  /** Whether `run` passes the filters: the server filters too, this keeps an older server's answer honest. */
  function passes(run) {
    if (filters.state && run.state !== filters.state) return false;
    if (filters.name && !String(run.name).toLowerCase().includes(filters.name.toLowerCase())) return false;
    const at = new Date(run.submitted_at).getTime();
    if (filters.since && at < new Date(filters.since).getTime()) return false;
    if (filters.until && at > new Date(filters.until).getTime()) return false;
    return true;
  }

  function rowFor(run) {
    let row = rows.get(run.id);
    if (row) return row;
    const cells = {
      state: h('td', { class: 'state' }),
      name: h('td', { class: 'name' }, h('a', { href: `/ui/runs/${encodeURIComponent(run.id)}` })),
      id: h('td', { class: 'id' }, h('a', { href: `/ui/runs/${encodeURIComponent(run.id)}`, class: 'mono' }, run.id)),
      trigger: h('td', { class: 'trigger' }),
      started: h('td', { class: 'started' }),
      duration: h('td', { class: 'duration num' }),
    };
    const tr = h('tr', { 'data-run-id': run.id },
      cells.state, cells.name, cells.id, cells.trigger, cells.started, cells.duration);
    row = { tr, cells, trigger: null };
    rows.set(run.id, row);
    return row;
  }

  function update(row, run) {
    const { cells } = row;
    setText(cells.state, run.state);
    setAttr(cells.state, 'class', `state ${stateClass(run.state)}`);
    setAttr(row.tr, 'data-state', run.state);
    setText(cells.name.firstChild, run.name);
    const how = run.rerun_of ? `rerun:${run.rerun_of}` : `api:${run.api || ''}`;
    if (row.trigger !== how) {
      cells.trigger.replaceChildren(...trigger(run).map((part) => (typeof part === 'string' ? document.createTextNode(part) : part)));
      row.trigger = how;
    }
    setText(cells.started, localTime(run.submitted_at));
    setAttr(cells.started, 'title', run.submitted_at || '');
    const ms = between(run.submitted_at, run.finished_at);
    setText(cells.duration, run.state === 'running' && !run.finished_at ? `${duration(ms)} so far` : duration(ms));
  }

  function show(list) {
    const seen = new Set();
    let cursor = tbody.firstChild;
    for (const run of list) {
      seen.add(run.id);
      const row = rowFor(run);
      update(row, run);
      if (row.tr !== cursor) tbody.insertBefore(row.tr, cursor);
      else cursor = cursor.nextSibling;
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        rows.delete(id);
      }
    }
    empty.hidden = list.length > 0;
  }

  async function load() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    const asked = urlOf(filters);
    try {
      const page = await api('/api/v1/runs', {
        query: { state: filters.state, name: filters.name, since: filters.since, until: filters.until, before: filters.before, limit: PAGE },
        signal: abort.signal,
      });
      if (asked !== urlOf(filters)) return;
      next = page.next || null;
      nextButton.disabled = !next;
      show((page.runs || []).filter(passes));
      error.hidden = true;
    } catch (e) {
      if (e.name === 'AbortError') return;
      error.textContent = e.message;
      error.hidden = false;
    } finally {
      loading = false;
      if (again) {
        again = false;
        load();
      }
    }
  }

  function poll() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (document.visibilityState === 'visible') await load();
      if (!abort.signal.aborted) poll();
    }, POLL_MS);
  }

  const onVisible = () => {
    if (document.visibilityState === 'visible') load();
  };
  document.addEventListener('visibilitychange', onVisible);

  fillForm();
  nextButton.disabled = true;
  load();
  poll();

  return {
    update(nextView) {
      filters = readQuery(nextView.query);
      fillForm();
      load();
    },
    destroy() {
      abort.abort();
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    },
  };
}
