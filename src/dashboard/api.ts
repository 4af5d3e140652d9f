// The HTTP API client: JSON requests to the server's /api routes. Errors become ApiError with the
// server's `{error, message}`. Results are never applied locally: the sync stream shows them.
import type { Op } from '../protocol/schema.js';
import { csrfHeader, toLogin } from './session.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface Versioned {
  version: number;
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(method === 'GET' ? {} : csrfHeader()),
      },
      body: body === undefined ? null : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (error) {
    throw new ApiError(0, 'network_error', `the server could not be reached (${(error as Error).message})`);
  }
  const text = await response.text();
  let json: unknown = undefined;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON: reported below if it is an error
  }
  if (response.status === 401) toLogin();
  if (!response.ok) {
    const err = (json ?? {}) as { error?: unknown; message?: unknown };
    const code = typeof err.error === 'string' ? err.error : `http_${response.status}`;
    const message = typeof err.message === 'string' ? err.message : text.slice(0, 300) || response.statusText;
    throw new ApiError(response.status, code, message);
  }
  return json as T;
}

const path = (...parts: string[]) => parts.map(encodeURIComponent).join('/');

export function addHost(hostname: string, hostType: 'nixos' | 'macos' | 'other'): Promise<Versioned> {
  return call('POST', '/api/hosts', { hostname, host_type: hostType });
}

export function removeHost(id: string): Promise<Versioned> {
  return call('DELETE', `/api/hosts/${path(id)}`);
}

export function startCommand(hostId: string, op: Op): Promise<Versioned> {
  return call('POST', '/api/commands', { host_id: hostId, op });
}

export function cancelCommand(id: string): Promise<Versioned> {
  return call('POST', `/api/commands/${path(id)}/cancel`);
}

export function startPipeline(name: string, hosts: string[], stages: Op[]): Promise<Versioned> {
  return call('POST', '/api/pipelines', { name, hosts, stages });
}

/** The whole log of a command as text/plain (the state carries only its tail). */
export function commandOutputUrl(id: string): string {
  return `/api/commands/${path(id)}/output`;
}
