// The drones behind a distributed leader and each pool's queue, refreshed every 2 s while the tab is visible.

import { api } from './api.js';
import { fill, h } from './dom.js';
import { between, duration, localTime } from './format.js';

const POLL_MS = 2000;

export function mount(main) {
  const abort = new AbortController();
  let timer = 0;
  const mode = h('p', { id: 'drones-mode', class: 'muted' }, 'Loading…');
  const error = h('p', { id: 'drones-error', class: 'error', role: 'alert', hidden: true });
  const drones = h('tbody');
  const pools = h('tbody');
  const dronesTable = h('table', { id: 'drones', class: 'grid' },
    h('thead', null, h('tr', null, ['Drone', 'State', 'Pools', 'Load', 'Finished', 'Host', 'Last seen', 'Version'].map((label) => h('th', { scope: 'col' }, label)))),
    drones);
  const poolsTable = h('table', { id: 'pools', class: 'grid' },
    h('thead', null, h('tr', null, ['Pool', 'Queued', 'Running', 'Drones'].map((label) => h('th', { scope: 'col' }, label)))),
    pools);
  main.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', null, 'Drones')),
    mode, error,
    h('h2', null, 'Pools'),
    h('div', { class: 'table-wrap' }, poolsTable),
    h('h2', null, 'Drones'),
    h('div', { class: 'table-wrap' }, dronesTable)));

  async function load() {
    try {
      const list = await api('/api/v1/drones', { signal: abort.signal });
      error.hidden = true;
      if (list.mode === 'embedded') {
        mode.textContent = 'This server runs embedded: it runs every node itself, with no drones and no pools. Drones serve a distributed leader (drover serve with Redis; see distributed.md).';
      } else {
        const alive = (list.drones || []).filter((d) => d.alive).length;
        mode.textContent = `Distributed: ${alive} drone${alive === 1 ? '' : 's'} alive of ${(list.drones || []).length} seen; refreshed every 2 s.`;
      }
      fill(pools, (list.pools || []).length
        ? list.pools.map((pool) => h('tr', { 'data-pool': pool.name },
          h('th', { scope: 'row' }, pool.name),
          h('td', { class: 'num' }, String(pool.queued ?? 0)),
          h('td', { class: 'num' }, String(pool.running ?? 0)),
          h('td', { class: 'num' }, String(pool.drones ?? 0))))
        : h('tr', null, h('td', { colspan: 4, class: 'muted' }, 'No pools.')));
      fill(drones, (list.drones || []).length
        ? list.drones.map((drone) => h('tr', { 'data-drone': drone.id, class: drone.alive ? '' : 'gone' },
          h('th', { scope: 'row' }, h('code', null, drone.id)),
          h('td', null, h('span', { class: drone.alive ? 'state st-success' : 'state st-canceled' }, drone.alive ? 'alive' : 'gone')),
          h('td', null, (drone.pools || []).join(', ')),
          h('td', { class: 'num' }, drone.running !== null && drone.running !== undefined ? `${drone.running} / ${drone.concurrency ?? '?'}` : ''),
          h('td', { class: 'num' }, drone.finished ?? ''),
          h('td', null, drone.host ? `${drone.host}${drone.pid ? ` (pid ${drone.pid})` : ''}` : ''),
          h('td', { title: drone.last_seen || '' }, drone.last_seen ? `${localTime(drone.last_seen)} (${duration(between(drone.last_seen))} ago)` : 'heartbeat expired'),
          h('td', null, drone.version ?? '')))
        : h('tr', null, h('td', { colspan: 8, class: 'muted' }, 'No drones.')));
    } catch (e) {
      if (e.name === 'AbortError') return;
      error.textContent = e.message;
      error.hidden = false;
    }
  }

  function poll() {
    timer = setTimeout(async () => {
      if (document.visibilityState === 'visible') await load();
      if (!abort.signal.aborted) poll();
    }, POLL_MS);
  }

  load();
  poll();
  return {
    destroy() {
      abort.abort();
      clearTimeout(timer);
    },
  };
}
