// The HTTP API as a contract: every route (method, path, who may call it) and the shape of every
// answer. The server registers exactly these routes and its front door enforces each `access`;
// the dashboard and the demo build their requests from them. Request bodies are validated by
// the schemas in api-schemas.ts (zod); this file is free of zod, so the browser bundle can use it.
import type { Action, TokenRole, UserRole } from './constants.js';
import type { FullStateMessage } from './messages.js';
import type { Command, EventLogEntry, Host, Pipeline } from './schema.js';

/** Where a host-scoped route finds the host it touches: the path's `:id`, the command `:id` runs on, or the body's `host_id`. */
export type HostOf = 'path' | 'command' | 'body';

/**
 * Who may call a route:
 * - `public`: anyone (a route may still use a credential when one is sent);
 * - `authenticated`: any valid session or token;
 * - `role`: callers allowed `action` (roles.ts `can`);
 * - `report`: operators and up, or the agent token of the host found by `host`;
 * - `self_or_admin`: the user named by the path's `:name` (their session), or an admin.
 */
export type Access =
  | { kind: 'public' }
  | { kind: 'authenticated' }
  | { kind: 'role'; action: Exclude<Action, 'report'> }
  | { kind: 'report'; host: HostOf }
  | { kind: 'self_or_admin' };

export interface RouteSpec {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** With `:name` parameters, each one path segment. */
  path: string;
  access: Access;
}

const PUBLIC: Access = { kind: 'public' };
const AUTHENTICATED: Access = { kind: 'authenticated' };
const SELF_OR_ADMIN: Access = { kind: 'self_or_admin' };
const role = (action: Exclude<Action, 'report'>): Access => ({ kind: 'role', action });
const report = (host: HostOf): Access => ({ kind: 'report', host });
const route = (method: RouteSpec['method'], path: string, access: Access): RouteSpec => ({ method, path, access });

export const API = {
  health: route('GET', '/healthz', PUBLIC),
  login: route('POST', '/api/login', PUBLIC),
  logout: route('POST', '/api/logout', AUTHENTICATED),
  me: route('GET', '/api/me', AUTHENTICATED),
  state: route('GET', '/api/state', role('read')),

  createHost: route('POST', '/api/hosts', role('operate')),
  updateHost: route('PATCH', '/api/hosts/:id', report('path')),
  removeHost: route('DELETE', '/api/hosts/:id', role('operate')),

  startCommand: route('POST', '/api/commands', role('operate')),
  appendOutput: route('POST', '/api/commands/:id/output', report('command')),
  finishCommand: route('POST', '/api/commands/:id/finish', report('command')),
  cancelCommand: route('POST', '/api/commands/:id/cancel', role('operate')),
  commandOutput: route('GET', '/api/commands/:id/output', role('read')),

  /** Starts it at once: the server runs it (docs/PIPELINES.md). */
  createPipeline: route('POST', '/api/pipelines', role('operate')),
  cancelPipeline: route('POST', '/api/pipelines/:id/cancel', role('operate')),
  /** Retired: a client drove pipelines by hand through these. They answer 405 (RETIRED_ROUTES). */
  updatePipeline: route('PATCH', '/api/pipelines/:id', role('operate')),
  finishPipeline: route('POST', '/api/pipelines/:id/finish', role('operate')),

  createEvent: route('POST', '/api/events', report('body')),

  listTokens: route('GET', '/api/tokens', role('admin')),
  createToken: route('POST', '/api/tokens', role('admin')),
  revokeToken: route('DELETE', '/api/tokens/:id', role('admin')),
  listUsers: route('GET', '/api/users', role('admin')),
  createUser: route('POST', '/api/users', role('admin')),
  updateUser: route('PATCH', '/api/users/:name', role('admin')),
  removeUser: route('DELETE', '/api/users/:name', role('admin')),
  enableTotp: route('POST', '/api/users/:name/totp', SELF_OR_ADMIN),
  disableTotp: route('DELETE', '/api/users/:name/totp', SELF_OR_ADMIN),
} as const satisfies Record<string, RouteSpec>;

export type ApiRoute = keyof typeof API;

/**
 * Routes kept in the table so that the front door still checks who calls them (an old client
 * learns why, a stranger learns nothing), answered with 405 and this message.
 */
export const RETIRED_ROUTES = {
  updatePipeline: 'the server runs pipelines: a client can no longer move one along; start one with POST /api/pipelines, stop one with POST /api/pipelines/:id/cancel',
  finishPipeline: 'the server runs pipelines and ends them itself; to stop one, POST /api/pipelines/:id/cancel',
} as const satisfies Partial<Record<ApiRoute, string>>;

/** A route's path with its parameters filled in, each one encoded as one segment. */
export function apiPath(name: ApiRoute, params: Record<string, string> = {}): string {
  return API[name].path.replace(/:([a-z_]+)/g, (_match, param: string) => {
    const value = params[param];
    if (value === undefined) throw new TypeError(`apiPath(${name}): missing parameter ${param}`);
    return encodeURIComponent(value);
  });
}

// ── answers ───────────────────────────────────────────────────────────────────────────────────

/** Every mutation answers with the version at which it is visible in the stream. */
export interface Versioned {
  version: number;
}

export interface UserInfo {
  name: string;
  role: UserRole;
  totp: boolean;
  created_at: string;
}

export interface TokenInfo {
  id: string;
  name: string;
  role: TokenRole;
  host_id: string | null;
  created_by: string | null;
  created_at: string;
  revoked_at: string | null;
}

export interface ApiResponses {
  health: { status: 'ok'; epoch: string; version: number };
  login: { user: { name: string; role: UserRole }; csrf_token: string };
  logout: { ok: true };
  me: { user: { name: string; role: UserRole }; csrf_token: string } | { token: { id: string; name: string; role: TokenRole; host_id: string | null } };
  state: FullStateMessage;
  createHost: Versioned & { host: Host };
  updateHost: Versioned;
  removeHost: Versioned;
  startCommand: Versioned & { command: Command };
  /** `kept`: bytes of the chunk stored; `cut`: the log reached its cap, the rest is dropped. */
  appendOutput: Versioned & { kept: number; cut: boolean };
  finishCommand: Versioned;
  /** 202: the agent was told to stop; `command_finished` follows when it confirms (or after the grace). */
  cancelCommand: Versioned & { status: 'stopping' | 'cancelled' };
  /** text/plain, streamed. */
  commandOutput: string;
  createPipeline: Versioned & { pipeline: Pipeline };
  /** 202: nothing new starts; its running commands were told to stop; it ends `cancelled` once they ended. */
  cancelPipeline: Versioned & { status: 'cancelling' };
  /** Retired: always 405. */
  updatePipeline: never;
  finishPipeline: never;
  createEvent: Versioned & { event: EventLogEntry };
  listTokens: { tokens: TokenInfo[] };
  /** The token is shown this once. */
  createToken: { id: string; token: string };
  revokeToken: { ok: true };
  listUsers: { users: UserInfo[] };
  createUser: { user: { name: string; role: UserRole } };
  updateUser: { ok: true };
  removeUser: { ok: true };
  /** The secret and its otpauth:// URI, shown this once. */
  enableTotp: { secret: string; uri: string };
  disableTotp: { ok: true };
}

/** Stable codes of `{"error": code, "message": text}` answers. */
export const API_ERROR_CODES = [
  'invalid_request',
  'invalid_json',
  'unsupported_media_type',
  'body_too_large',
  'unauthenticated',
  'invalid_token',
  'session_expired',
  'invalid_credentials',
  'totp_required',
  'totp_reused',
  'reauthentication_failed',
  'forbidden',
  'csrf',
  'origin',
  'not_found',
  'method_not_allowed',
  'conflict',
  'host_offline',
  'exists',
  'last_admin',
  'weak_password',
  'rate_limited',
  'kdf_busy',
  'too_many_connections',
  'dashboard_missing',
  'store_unreadable',
  'store_locked',
  'store_corrupt',
  'store_commit_failed',
  'store_conflict',
  'store_closed',
  'closed',
  'internal_error',
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

export interface ApiErrorBody {
  error: ApiErrorCode;
  message: string;
}
