// The StreamGate HTTP API (docs/api.md) and the session kept in localStorage.

const SESSION_KEY = 'streamgate.session';
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** `{ token, address, expires_at }` while a session is valid, else null. */
export function session() {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null');
    if (s && s.token && Date.parse(s.expires_at) > Date.now()) return s;
    if (s) endSession('expired');
  } catch {
    localStorage.removeItem(SESSION_KEY);
  }
  return null;
}

/** Keeps the session; `chain_id` is the wallet's chain at sign-in (a later change ends it). */
export function saveSession(s) {
  localStorage.setItem(SESSION_KEY, JSON.stringify({ token: s.token, address: s.address, expires_at: s.expires_at, chain_id: s.chain_id }));
  for (const f of listeners) f(s, null);
}

/** Forgets the session here; `why` ('expired', 'revoked', 'signed_out', 'wallet_changed') goes to the listeners. */
export function endSession(why) {
  const had = localStorage.getItem(SESSION_KEY) !== null;
  localStorage.removeItem(SESSION_KEY);
  if (had) for (const f of listeners) f(null, why);
}

export function onSessionChange(f) {
  listeners.add(f);
}

// Another tab signed in or out.
window.addEventListener('storage', (e) => {
  if (e.key === SESSION_KEY) for (const f of listeners) f(session(), e.newValue ? null : 'signed_out');
});

const SESSION_ENDED = new Set(['token_expired', 'token_revoked', 'invalid_token', 'unknown_key', 'missing_token']);

/** Calls the API; answers the JSON body, or throws ApiError with the API's code and sentence. */
export async function api(method, path, { json, auth = true } = {}) {
  const headers = {};
  const s = auth ? session() : null;
  if (s) headers.authorization = `Bearer ${s.token}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  } catch {
    throw new ApiError(0, 'network', 'StreamGate could not be reached. Check your connection and try again.');
  }
  if (res.status === 204) return null;
  const body = await res.json().catch(() => null);
  if (res.ok) return body;
  const code = body?.code ?? 'http_' + res.status;
  if (s && res.status === 401 && SESSION_ENDED.has(code)) {
    endSession(code === 'token_revoked' ? 'revoked' : 'expired');
  }
  throw new ApiError(res.status, code, body?.error ?? `The server answered ${res.status}.`, body);
}

let configPromise;
/** The deployment's `{ chains, media_base_url }` (served by the web component). */
export function config() {
  configPromise ??= fetch('/config.json').then((r) => r.json()).catch(() => ({ chains: [], media_base_url: '' }));
  return configPromise;
}
