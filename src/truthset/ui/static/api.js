// The REST API from the browser: the session cookie plus the page's CSRF token.
// Errors: ApiError (the server answered with an error) or NetworkError (no answer at all).

const csrfMeta = document.querySelector('meta[name="csrf-token"]');
export const csrfToken = csrfMeta ? csrfMeta.content : '';
export const API = '/api/v1';

let skewMs = 0; // server clock minus this clock, from the Date header of API responses

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = error.code || 'error';
    this.details = error.details;
  }
}

export class NetworkError extends Error {
  constructor(message) {
    super(message || 'network error');
    this.name = 'NetworkError';
  }
}

/** Worth trying again later: no answer, a timeout, or the server (or a proxy) in trouble. */
export function retryable(error) {
  if (error instanceof NetworkError) return true;
  return error instanceof ApiError && (error.status >= 500 || error.status === 429 || error.status === 408);
}

export function serverNow() {
  return Date.now() + skewMs;
}

export async function api(method, path, { body, headers = {}, timeoutMs = 15000, keepalive = false } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const allHeaders = { Accept: 'application/json', 'X-CSRF-Token': csrfToken, ...headers };
  if (body !== undefined) allHeaders['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers: allHeaders,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal: controller.signal,
      keepalive,
      cache: 'no-store',
    });
  } catch (error) {
    throw new NetworkError(error && error.name === 'AbortError' ? 'the server did not answer in time' : 'offline');
  } finally {
    clearTimeout(timer);
  }
  const date = response.headers.get('Date');
  if (date) {
    const parsed = Date.parse(date);
    if (!Number.isNaN(parsed)) skewMs = parsed - Date.now();
  }
  if (response.status === 204) return { status: 204, data: null };
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null; // the status arrived, so the server acted; an unreadable body changes nothing
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return { status: response.status, data };
}

/** Fire-and-forget for page unload: a keepalive request outlives the page. */
export function beacon(path) {
  try {
    fetch(API + path, {
      method: 'POST',
      headers: { 'X-CSRF-Token': csrfToken },
      credentials: 'same-origin',
      keepalive: true,
    }).catch(() => {});
  } catch {
    // nothing to do: the lease expires on its own
  }
}
