// Submitting a DAG: paste or load one, see its problems where they are as you type, then run it.

import { api } from './api.js';
import { debounce, fill, h } from './dom.js';

const EXAMPLE = `name: hello
nodes:
  greet:
    driver: shell
    artifact: 'echo "greeting"; echo word=world'
    outputs: [word]
  answer:
    driver: shell
    needs: [greet]
    artifact: 'echo "hello, \${{ nodes.greet.outputs.word }}"'
`;

/** JSON when the text starts with `{` (native or gorchestrator's), YAML otherwise. */
function typeOf(text) {
  return text.trimStart().startsWith('{') ? 'application/json' : 'application/yaml';
}

export function mount(main, view) {
  const { context } = view;
  const can = context.can('operator');
  const abort = new AbortController();
  let checking = null;

  const text = h('textarea', {
    id: 'dag-text', name: 'dag', rows: 20, spellcheck: false, autocomplete: 'off',
    placeholder: EXAMPLE, 'aria-label': 'The DAG, as YAML or JSON',
  });
  const file = h('input', { id: 'dag-file', type: 'file', accept: '.yaml,.yml,.json,application/json,application/yaml,text/yaml' });
  const validate = can ? h('button', { id: 'validate', type: 'button', class: 'quiet' }, 'Validate') : null;
  const submit = can ? h('button', { id: 'submit', type: 'submit' }, 'Run') : null;
  const parallelism = h('input', { id: 'opt-parallelism', type: 'number', min: 1, max: 65535, placeholder: 'server default', inputmode: 'numeric' });
  const timeout = h('input', { id: 'opt-timeout', type: 'text', placeholder: 'e.g. 10m', autocomplete: 'off' });
  const failFast = h('input', { id: 'opt-fail-fast', type: 'checkbox' });
  const verdict = h('p', { id: 'validation', class: 'verdict', role: 'status' });
  const problems = h('ul', { id: 'problems', class: 'problems', 'aria-label': 'Problems' });
  const error = h('p', { id: 'submit-error', class: 'error', role: 'alert', hidden: true });

  const form = h('form', { class: 'submit-form' },
    h('div', { class: 'editor' },
      h('label', { class: 'file-pick' }, h('span', null, 'Load a file '), file),
      text),
    h('div', { class: 'side' },
      h('div', { class: 'card' },
        h('h2', null, 'Check'),
        verdict,
        problems),
      h('details', { class: 'card options' },
        h('summary', null, 'Options'),
        h('label', null, h('span', null, 'Parallelism'), parallelism),
        h('label', null, h('span', null, 'Run timeout'), timeout),
        h('label', { class: 'toggle' }, failFast, ' stop at the first failure')),
      can ? h('div', { class: 'form-actions' }, validate, submit) : h('p', { class: 'muted' }, 'Your role may read runs but not submit them.'),
      error));

  main.append(h('section', { class: 'page submit-page' },
    h('div', { class: 'page-head' }, h('h1', null, 'Submit a DAG')),
    h('p', { class: 'muted' }, 'drover\u2019s YAML or JSON, or gorchestrator\u2019s JSON. Problems show as you type; nothing runs until you press Run.'),
    form));

  function showProblems(list, summary, good) {
    verdict.textContent = summary;
    verdict.className = `verdict ${good ? 'ok' : list.length ? 'bad' : ''}`;
    fill(problems, list.map((problem) => {
      const at = /line (\d+)(?:, column (\d+))?/.exec(problem.location || '');
      return h('li', { class: `problem${at ? ' at-line' : ''}`, title: at ? 'Show this line' : undefined, onclick: at ? () => goTo(Number(at[1]), Number(at[2] || 1)) : undefined },
        h('span', { class: 'location' }, problem.location || 'DAG'),
        h('span', { class: 'message' }, problem.message || ''));
    }));
  }

  /** Puts the cursor at a line and column of the text. */
  function goTo(line, column) {
    const lines = text.value.split('\n');
    let offset = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i += 1) offset += lines[i].length + 1;
    offset += Math.max(0, column - 1);
    text.focus();
    text.setSelectionRange(offset, offset);
    const lineHeight = parseFloat(getComputedStyle(text).lineHeight) || 20;
    text.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  function refused(e) {
    if (e.problems.length) {
      showProblems(e.problems, `${e.problems.length} problem${e.problems.length === 1 ? '' : 's'}:`, false);
    } else {
      showProblems([{ location: e.title, message: e.detail || e.message }], 'Refused:', false);
    }
  }

  async function check() {
    const body = text.value;
    if (!can) return;
    if (!body.trim()) {
      showProblems([], 'Paste a DAG or load a file.', false);
      return;
    }
    checking?.abort();
    const mine = new AbortController();
    checking = mine;
    verdict.textContent = 'Checking…';
    try {
      const answer = await api('/api/v1/dags/validate', { method: 'POST', body, type: typeOf(body), signal: mine.signal });
      const drivers = (answer.drivers || []).map((d) => (typeof d === 'string' ? d : d.name || JSON.stringify(d)));
      showProblems([], `Valid: ${answer.name}, ${answer.nodes} node${answer.nodes === 1 ? '' : 's'}${drivers.length ? `, drivers ${drivers.join(', ')}` : ''}.`, true);
    } catch (e) {
      if (e.name === 'AbortError') return;
      refused(e);
    }
  }
  const checkSoon = debounce(check, 500);

  text.addEventListener('input', () => { error.hidden = true; checkSoon(); });
  validate?.addEventListener('click', () => { checkSoon.cancel(); check(); });
  file.addEventListener('change', async () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    text.value = await chosen.text();
    checkSoon.cancel();
    check();
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!can) return;
    checkSoon.cancel();
    checking?.abort();
    error.hidden = true;
    const body = text.value;
    if (!body.trim()) {
      showProblems([], 'Paste a DAG or load a file.', false);
      return;
    }
    submit.disabled = true;
    try {
      const created = await api('/api/v1/runs', {
        method: 'POST',
        body,
        type: typeOf(body),
        query: { parallelism: parallelism.value, timeout: timeout.value.trim(), fail_fast: failFast.checked ? 'true' : '' },
        signal: abort.signal,
      });
      context.navigate(`/ui/runs/${encodeURIComponent(created.id)}`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 422 || e.problems.length) refused(e);
      else {
        error.textContent = e.message;
        error.hidden = false;
      }
    } finally {
      submit.disabled = false;
    }
  });

  showProblems([], can ? 'Paste a DAG or load a file.' : '', false);
  text.focus();
  return {
    destroy() {
      abort.abort();
      checking?.abort();
      checkSoon.cancel();
    },
  };
}
