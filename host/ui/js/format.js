// Shared words and numbers: states, times, durations, roles.

/** Every state a run can be in, in the order filters list them. */
export const RUN_STATES = ['running', 'success', 'failure', 'timeout', 'canceled'];

/** Every state a node can be in, in the order summaries list them. */
export const NODE_STATES = [
  'initial', 'to-run', 'running', 'success', 'failure', 'timeout', 'not-runnable', 'canceled', 'interrupted',
];

/** Whether a node in `state` is done for good. */
export function isFinal(state) {
  return ['success', 'failure', 'not-runnable', 'timeout', 'canceled'].includes(state);
}

const ROLES = { viewer: 1, operator: 2, admin: 3 };

/** Whether `role` may do what needs `needed`. */
export function allows(role, needed) {
  return (ROLES[role] || 0) >= ROLES[needed];
}

/** The state badge: the state named in text, its colour from the stylesheet. */
export function stateClass(state) {
  return `state st-${state}`;
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

/** A time in the browser's zone: `2025-05-01 14:03:07`. */
export function localTime(value) {
  if (!value) return '';
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The value a datetime-local input takes for `value` (RFC 3339 or the input's own form). */
export function toLocalInput(value) {
  if (!value) return '';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** RFC 3339 (UTC) for a datetime-local input's value; '' for none or a bad one. */
export function fromLocalInput(value) {
  if (!value) return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace('.000Z', 'Z');
}

/** Milliseconds as people read them: `850 ms`, `4.2 s`, `3 m 05 s`, `2 h 07 m`. */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${pad(Math.floor(s % 60))} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${pad(m % 60)} m`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** The time between two instants (RFC 3339 or Date), up to now when `end` is missing. */
export function between(start, end) {
  if (!start) return null;
  const a = new Date(start).getTime();
  const b = end ? new Date(end).getTime() : Date.now();
  return b - a;
}

/** The first `n` hex digits of a `sha256:…` digest, for tables (the full one goes in a title). */
export function shortDigest(digest, n = 12) {
  if (!digest) return '';
  const hex = String(digest).replace(/^sha256:/, '');
  return `sha256:${hex.slice(0, n)}`;
}
