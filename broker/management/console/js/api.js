// The REST API client of the console: the tokens in sessionStorage, JSON in and out, and one
// error type carrying the API's message, `failure` and `fieldErrors`. An expired access token is
// renewed once with the refresh token (`POST /api/auth/token`) and the call repeated; any other
// 401 (or a refused refresh) drops the tokens and asks the app to show the login page.

const TOKEN_KEY = 'tributary.token';
const REFRESH_KEY = 'tributary.refreshToken';
/** TBMQ's errorCode of an expired token. */
const TOKEN_EXPIRED = 11;

/** An answer other than 2xx, or no answer at all (status 0). */
export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && typeof body.message === 'string' && body.message) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.failure = body && body.failure ? String(body.failure) : null;
    this.fieldErrors = Array.isArray(body && body.fieldErrors) ? body.fieldErrors : [];
  }
}

let unauthorized = () => {};

/** What to do when the token is refused (the app goes to the login page). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function hasToken() {
  return Boolean(sessionStorage.getItem(TOKEN_KEY));
}

export function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(REFRESH_KEY);
}

function keep(answer) {
  sessionStorage.setItem(TOKEN_KEY, answer.token);
  sessionStorage.setItem(REFRESH_KEY, answer.refreshToken);
}

export async function login(username, password) {
  keep(await call('POST', '/api/auth/login', { username, password }));
}

// One refresh at a time: calls that meet an expired token together wait for the same one.
let refreshing = null;

/** Renews the tokens with the refresh token; false when there is none or it was refused. */
async function renew() {
  const refreshToken = sessionStorage.getItem(REFRESH_KEY);
  if (!refreshToken) return false;
  refreshing = refreshing || call('POST', '/api/auth/token', { refreshToken })
    .then((answer) => { keep(answer); return true; }, () => false)
    .finally(() => { refreshing = null; });
  return refreshing;
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const api = {
  get: (path) => call('GET', path),
  post: (path, body) => call('POST', path, body),
  del: (path) => call('DELETE', path),
};

const PUBLIC = ['/api/auth/login', '/api/auth/token'];

async function call(method, path, body, renewed = false) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token && !PUBLIC.includes(path)) headers['X-Authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { message: `The server did not answer (${e.message}).` });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text.slice(0, 500) };
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !PUBLIC.includes(path)) {
      if (!renewed && data && data.errorCode === TOKEN_EXPIRED && (await renew())) {
        return call(method, path, body, true);
      }
      logout();
      unauthorized(error.message);
    }
    throw error;
  }
  return data;
}
