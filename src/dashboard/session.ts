// Who is logged in, and the CSRF token every mutation must carry. Loaded once from /api/me
// before the dashboard starts; a 401 anywhere (or a socket closed as unauthorized) sends the
// browser to the login page.
// (Plain fetch here, not callApi: a missing session is the normal case, not an error.)
import { computed, signal } from '@preact/signals';
import { API, apiPath, type ApiResponses } from '../protocol/api.js';
import type { UserRole } from '../protocol/constants.js';

export interface Me {
  name: string;
  role: UserRole;
}

export const me = signal<Me | null>(null);
export const canOperate = computed(() => me.value?.role === 'operator' || me.value?.role === 'admin');
export const isAdmin = computed(() => me.value?.role === 'admin');
let csrfToken = '';

export function csrfHeader(): Record<string, string> {
  return csrfToken ? { 'x-csrf-token': csrfToken } : {};
}

let leaving = false;
/** Goes to the login page, once: logout, a 401 and the socket's 4401 may all ask at the same time. */
export function toLogin(): void {
  if (leaving) return;
  leaving = true;
  location.assign('/login');
}

/** Reads the session; resolves false (and leaves for the login page) when there is none. */
export async function loadSession(): Promise<boolean> {
  const response = await fetch(apiPath('me'), { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (response.status === 401) {
    toLogin();
    return false;
  }
  const body = (await response.json()) as ApiResponses['me'];
  me.value = 'user' in body ? body.user : null;
  csrfToken = 'csrf_token' in body ? body.csrf_token : '';
  return true;
}

/**
 * While offline, asks whether the session itself ended (then: login page). A refused socket
 * upgrade looks like any network failure to the page, so only this can tell them apart.
 */
export async function probeSession(): Promise<void> {
  try {
    const response = await fetch(apiPath('me'), { credentials: 'same-origin' });
    if (response.status === 401) toLogin();
  } catch {
    // the server is unreachable: the reconnect loop handles that
  }
}

export async function logout(): Promise<void> {
  await fetch(apiPath('logout'), { method: API.logout.method, credentials: 'same-origin', headers: { 'content-type': 'application/json', ...csrfHeader() }, body: '{}' }).catch(() => {});
  toLogin();
}
