// Calls to drover's API: same-origin fetch with the session cookie, and RFC 9457 problems turned into readable errors.

/** A refused or failed call: the problem's title, detail and, for a refused DAG, every problem with its location. */
export class ApiError extends Error {
  constructor(status, problem, fallback) {
    const title = problem?.title || fallback || `HTTP ${status}`;
    const detail = problem?.detail || '';
    super(detail ? `${title}: ${detail}` : title);
    this.name = 'ApiError';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.problems = Array.isArray(problem?.problems) ? problem.problems : [];
  }
}

let unauthorized = () => {};

/** What to do when a call answers 401 (the session ended): set once by the app. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** `path` with the non-empty values of `query` as its query string. */
export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Calls the API. `body` is sent with `type` (JSON by default: objects are
 * serialised); a call without a body sends no Content-Type. Answers the
 * parsed JSON, the text for text answers, `null` for 204; throws ApiError.
 */
export async function api(path, options = {}) {
  const { method = 'GET', query, body, type, headers = {}, signal, quiet401 = false } = options;
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json, application/problem+json;q=0.9, */*;q=0.5', ...headers },
    signal,
  };
  if (body !== undefined) {
    const isObject = body !== null && typeof body === 'object' && !(body instanceof Blob);
    init.body = isObject ? JSON.stringify(body) : body;
    init.headers['Content-Type'] = type || 'application/json';
  }
  let response;
  try {
    response = await fetch(withQuery(path, query), init);
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    throw new ApiError(0, null, `Cannot reach the server (${error?.message || error})`);
  }
  if (response.ok) {
    if (response.status === 204 || response.status === 304) return null;
    const kind = response.headers.get('Content-Type') || '';
    return kind.includes('json') ? response.json() : response.text();
  }
  const kind = response.headers.get('Content-Type') || '';
  let problem = null;
  if (kind.includes('json')) {
    problem = await response.json().catch(() => null);
  } else {
    const text = await response.text().catch(() => '');
    problem = { title: `${response.status} ${response.statusText}`.trim(), detail: text.trim() };
  }
  if (response.status === 401 && !quiet401) unauthorized();
  throw new ApiError(response.status, problem);
}
