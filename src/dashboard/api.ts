// The HTTP API client of the dashboard: typed calls built from the API contract
// (src/protocol/api.ts: paths, methods, answers; api-schemas.ts: request bodies, as types only,
// so zod stays out of the bundle). Errors become ApiError with the server's `{error, message}`.
// Results are never applied locally: the sync stream shows them.
import { API, apiPath, type ApiResponses, type ApiRoute } from '../protocol/api.js';
import type { ApiRequest } from '../protocol/api-schemas.js';
import type { HOST_TYPES } from '../protocol/constants.js';
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

export type HostType = (typeof HOST_TYPES)[number];

/** Calls one route of the API contract; resolves with its answer, rejects with ApiError. */
export async function callApi<R extends ApiRoute>(name: R, request: { params?: Record<string, string>; body?: ApiRequest<R> } = {}): Promise<ApiResponses[R]> {
  const { method } = API[name];
  let response: Response;
  try {
    response = await fetch(apiPath(name, request.params), {
      method,
      headers: {
        accept: 'application/json',
        ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(method === 'GET' ? {} : csrfHeader()),
      },
      body: request.body === undefined ? null : JSON.stringify(request.body),
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
  return json as ApiResponses[R];
}

export const addHost = (hostname: string, hostType: HostType) => callApi('createHost', { body: { hostname, host_type: hostType } });
export const removeHost = (id: string) => callApi('removeHost', { params: { id } });
export const startCommand = (hostId: string, op: Op) => callApi('startCommand', { body: { host_id: hostId, op } });
export const cancelCommand = (id: string) => callApi('cancelCommand', { params: { id } });
/** What a pipeline runs (its stages, or a preset) and how (the rollout controls, each optional). */
export type PipelinePlan = Omit<ApiRequest<'createPipeline'>, 'name' | 'hosts' | 'id'>;
export const startPipeline = (name: string, hosts: string[], plan: PipelinePlan) => callApi('createPipeline', { body: { name, hosts, ...plan } });
export const cancelPipeline = (id: string) => callApi('cancelPipeline', { params: { id } });

/** The whole log of a command as text/plain (the state carries only its tail). */
export function commandOutputUrl(id: string): string {
  return apiPath('commandOutput', { id });
}
