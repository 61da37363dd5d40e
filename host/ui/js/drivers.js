// The drivers this server has: versions, digests, capabilities, descriptions, signatures; admins upload and withdraw plugins.

import { api } from './api.js';
import { fill, h } from './dom.js';
import { localTime, shortDigest } from './format.js';

/** What a driver asks of the host, in words. */
function capabilities(description) {
  const caps = description?.capabilities;
  if (!caps) return h('span', { class: 'muted' }, 'not described');
  const items = [];
  if (caps.exec?.length) items.push(h('li', null, 'runs ', caps.exec.map((program, i) => [i ? ', ' : '', h('code', null, program)])));
  for (const [key, words] of [['workspace', 'a workspace'], ['network', 'the network'], ['container', 'containers'], ['secrets', 'secrets']]) {
    if (caps[key]) items.push(h('li', null, words));
  }
  return items.length ? h('ul', { class: 'caps' }, items) : h('span', { class: 'muted' }, 'nothing');
}

function origin(version) {
  const kind = version.origin?.kind || version.origin;
  if (kind === 'folder') return `plugins folder (${version.origin.path || ''})`;
  if (kind === 'builtin') return 'built in';
  if (kind === 'upload') return 'uploaded';
  return String(kind || '');
}

function signature(version) {
  if (version.signed_by) return h('span', { class: 'signed', title: `signed by the trusted key ${version.signed_by}` }, `signed (${version.signed_by.slice(0, 12)}…)`);
  if ((version.origin?.kind || version.origin) === 'builtin') return h('span', { class: 'muted' }, 'no signature needed');
  return h('span', { class: 'unsigned' }, 'unsigned');
}

export function mount(main, view) {
  const { context } = view;
  const admin = context.can('admin');
  const abort = new AbortController();
  const tbody = h('tbody');
  const error = h('p', { id: 'drivers-error', class: 'error', role: 'alert', hidden: true });
  const table = h('table', { id: 'drivers', class: 'grid drivers' },
    h('thead', null, h('tr', null,
      ['Driver', 'Versions', 'Capabilities', 'Description'].map((label) => h('th', { scope: 'col' }, label)))),
    tbody);

  const section = h('section', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', null, 'Drivers')),
    h('p', { class: 'muted' }, 'What DAG nodes can name in ', h('code', null, 'driver'), '. A bare name runs the newest version that is not withdrawn or blocked.'),
    error,
    h('div', { class: 'table-wrap' }, table));
  if (admin) section.append(uploadForm(() => load()));
  main.append(section);

  async function withdraw(name, version, button) {
    if (!confirm(`Withdraw ${name} ${version}? Runs that use it keep it until they end; new runs cannot use it.`)) return;
    button.disabled = true;
    try {
      await api(`/api/v1/plugins/${encodeURIComponent(name)}/${encodeURIComponent(version)}`, { method: 'DELETE', signal: abort.signal });
      await load();
    } catch (e) {
      if (e.name === 'AbortError') return;
      error.textContent = e.message;
      error.hidden = false;
      button.disabled = false;
    }
  }

  function versionItem(name, version, current) {
    const removable = admin && (version.origin?.kind || version.origin) === 'upload';
    return h('li', { class: 'version', 'data-version': version.version },
      h('div', { class: 'version-head' },
        h('strong', null, version.version),
        version.version === current ? h('span', { class: 'badge' }, 'current') : null,
        version.blocked ? h('span', { class: 'badge warn', title: version.blocked }, 'blocked') : null,
        removable ? h('button', {
          type: 'button', class: 'withdraw danger small', 'data-name': name, 'data-version': version.version,
          onclick: (event) => withdraw(name, version.version, event.currentTarget),
        }, 'Withdraw') : null),
      h('div', { class: 'version-facts' },
        h('code', { class: 'digest', title: version.digest }, shortDigest(version.digest)),
        ' · ', origin(version),
        ' · ', signature(version),
        version.published_at ? [' · published ', localTime(version.published_at)] : null,
        version.blocked ? h('div', { class: 'muted' }, version.blocked) : null));
  }

  async function load() {
    try {
      const [drivers, plugins] = await Promise.all([
        api('/api/v1/drivers', { signal: abort.signal }),
        api('/api/v1/plugins', { signal: abort.signal }),
      ]);
      const names = new Set([...(plugins.plugins || []).map((p) => p.name), ...(drivers.drivers || []).map((d) => d.name)]);
      const byName = new Map((drivers.drivers || []).map((d) => [d.name, d]));
      const details = await Promise.all([...names].sort().map((name) => api(`/api/v1/plugins/${encodeURIComponent(name)}`, { signal: abort.signal })
        .catch(() => ({ name, versions: [] }))));
      fill(tbody, details.map(({ name, versions }) => {
        const driver = byName.get(name);
        const description = driver?.description || versions.filter((v) => v.description).pop()?.description;
        const current = driver?.version;
        return h('tr', { 'data-driver': name },
          h('th', { scope: 'row' }, h('span', { class: 'driver-name' }, name), driver?.builtin ? h('span', { class: 'badge' }, 'built in') : null,
            driver ? null : h('div', { class: 'muted' }, 'no usable version')),
          h('td', null, h('ul', { class: 'versions' }, [...versions].reverse().map((version) => versionItem(name, version, current)))),
          h('td', null, capabilities(description)),
          h('td', { class: 'description' },
            description?.summary ? h('p', null, description.summary) : h('span', { class: 'muted' }, '—'),
            description?.artifact ? h('p', { class: 'muted' }, h('em', null, 'artifact: '), description.artifact) : null));
      }));
      error.hidden = true;
    } catch (e) {
      if (e.name === 'AbortError') return;
      error.textContent = e.message;
      error.hidden = false;
    }
  }

  load();
  return { destroy: () => abort.abort() };
}

/** The form that publishes a component: its bytes as `application/wasm`, name and version in the query, the signature in a header. */
function uploadForm(done) {
  const name = h('input', { id: 'plugin-name', name: 'name', placeholder: 'from the component', pattern: '[a-z][a-z0-9\\-]*', autocomplete: 'off' });
  const version = h('input', { id: 'plugin-version', name: 'version', placeholder: 'from the component', autocomplete: 'off' });
  const file = h('input', { id: 'plugin-file', name: 'file', type: 'file', accept: '.wasm,application/wasm', required: true });
  const signature = h('input', { id: 'plugin-signature', name: 'signature', placeholder: 'base64 ed25519 over sha256:<hex>', autocomplete: 'off' });
  const signatureFile = h('input', { id: 'plugin-signature-file', type: 'file', accept: '.sig,.txt,text/plain' });
  const error = h('p', { id: 'plugin-error', class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: 'plugin-result', class: 'ok', role: 'status', hidden: true });
  const button = h('button', { id: 'plugin-submit', type: 'submit' }, 'Upload');
  signatureFile.addEventListener('change', async () => {
    const chosen = signatureFile.files?.[0];
    if (chosen) signature.value = (await chosen.text()).trim();
  });
  const form = h('form', { id: 'plugin-upload', class: 'card upload' },
    h('h2', null, 'Upload a plugin'),
    h('p', { class: 'muted' }, 'A driver component (.wasm). Name and version default to what it describes; a signature is needed when the server requires signed plugins.'),
    h('div', { class: 'form-grid' },
      h('label', null, h('span', null, 'Component'), file),
      h('label', null, h('span', null, 'Name'), name),
      h('label', null, h('span', null, 'Version'), version),
      h('label', null, h('span', null, 'Signature'), signature),
      h('label', null, h('span', null, 'or its file'), signatureFile)),
    h('div', { class: 'form-actions' }, button),
    error, result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    result.hidden = true;
    const component = file.files?.[0];
    if (!component) {
      error.textContent = 'Choose the component file first.';
      error.hidden = false;
      return;
    }
    button.disabled = true;
    try {
      const headers = signature.value.trim() ? { 'X-Drover-Signature': signature.value.trim() } : {};
      const published = await api('/api/v1/plugins', {
        method: 'POST',
        query: { name: name.value.trim(), version: version.value.trim() },
        body: component,
        type: 'application/wasm',
        headers,
      });
      result.textContent = `Published ${published.name} ${published.version} (${shortDigest(published.digest)}).`;
      result.hidden = false;
      form.reset();
      await done();
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
