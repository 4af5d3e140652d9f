// The front door of every HTTP request and WebSocket upgrade: security headers, the client
// address, authentication, the route's declared access rule (role, the host a report is about,
// the user an account change is about), CSRF for cookie-authenticated mutations, the Origin
// check for browsers, and the route's body, parsed by its schema. Handlers only ever see
// requests that passed all of it: none can forget a check.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Access } from '../../protocol/api.js';
import type { AuthService } from '../auth/auth-service.js';
import { clientAddress, type TrustedProxies } from '../auth/client-address.js';
import { can, mayReport, type Principal } from '../auth/roles.js';
import type { Logger } from '../logger.js';
import type { SyncHub } from '../transport/sync-hub.js';
import type { AgentHub } from '../agents/agent-hub.js';
import { readJsonBody } from './body.js';
import { answerAndDestroy } from './connection-gate.js';
import { HttpError, sendError, toHttpError } from './http-error.js';
import { authenticate, originAllowed } from './request-auth.js';
import type { Params, Route, RouteContext, Router } from './router.js';
import { setSecurityHeaders } from './security-headers.js';

export interface FrontDoor {
  router: Router;
  auth: AuthService;
  logger: Logger;
  secure: boolean;
  trustedProxies: TrustedProxies;
  /** Browser origins allowed: the server's own and NIXFLEET_ALLOWED_ORIGINS (see own-origins.ts). */
  allowedOrigins: ReadonlySet<string>;
  /** Largest request body; a route may set a lower one. */
  maxBodyBytes: number;
  /** The host a command runs on, for routes that report about a command. */
  hostOfCommand(commandId: string): string | null;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function createRequestHandler(door: FrontDoor): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => void handle(door, req, res);
}

async function handle(door: FrontDoor, req: IncomingMessage, res: ServerResponse): Promise<void> {
  setSecurityHeaders(res, door.secure);
  try {
    const method = req.method ?? 'GET';
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    const { route, params } = door.router.match(method, pathname);
    const ctx: RouteContext = {
      req,
      res,
      params,
      body: undefined,
      principal: null,
      address: clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], door.trustedProxies),
      secure: door.secure,
    };
    if (route.access.kind === 'public') {
      // Public routes still learn who is calling when they can (login replaces a session).
      ctx.principal = await tryAuthenticate(req, door);
    } else {
      ctx.principal = await authenticate(req, door.auth, door.secure);
      if (!ctx.principal) throw new HttpError(401, 'unauthenticated', 'log in (POST /api/login) or send Authorization: Bearer <token>');
      admit(ctx.principal, route.access, params);
      // Every cookie-authenticated mutation proves it comes from the dashboard.
      if (ctx.principal.kind === 'session' && !SAFE_METHODS.has(method)) checkCsrf(req, ctx.principal, door);
    }
    const access = route.access;
    if (access.kind === 'report' && access.host !== 'body') checkHost(ctx.principal!, access.host === 'path' ? (params.id ?? null) : door.hostOfCommand(params.id ?? ''));
    if (route.body) ctx.body = await readBody(req, route, door);
    if (access.kind === 'report' && access.host === 'body') checkHost(ctx.principal!, (ctx.body as { host_id?: string | null }).host_id ?? null);
    await route.handler(ctx);
  } catch (error) {
    if (clientWentAway(req, error)) {
      // An aborted upload is the client's business, not a server failure.
      door.logger.debug('client went away mid-request', { method: req.method, url: req.url?.slice(0, 200) });
      return void res.destroy();
    }
    const httpError = toHttpError(error);
    if (httpError.code === 'internal_error') {
      door.logger.error('request failed', { method: req.method, url: req.url?.slice(0, 200), error: (error as Error).message });
    } else if (httpError.status >= 500) {
      // Refusals the server meant (a busy password queue, a store that is down) are not bugs.
      door.logger.warn('request refused', { method: req.method, url: req.url?.slice(0, 200), status: httpError.status, code: httpError.code });
    }
    if (!res.headersSent) sendError(res, httpError);
    else res.destroy();
  }
}

function clientWentAway(req: IncomingMessage, error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return req.destroyed && (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (error as Error | null)?.message === 'aborted');
}

async function tryAuthenticate(req: IncomingMessage, door: FrontDoor): Promise<Principal | null> {
  try {
    return await authenticate(req, door.auth, door.secure);
  } catch {
    return null;
  }
}

/** The route's rule, as far as it can be checked before the body is read. */
function admit(principal: Principal, access: Access, params: Params): void {
  switch (access.kind) {
    case 'public':
    case 'authenticated':
      return;
    case 'role':
      if (!can(principal, access.action)) throw new HttpError(403, 'forbidden', `your role (${principal.role}) may not ${access.action}`);
      return;
    case 'report':
      if (!mayReport(principal)) throw new HttpError(403, 'forbidden', `your role (${principal.role}) may not report`);
      return;
    case 'self_or_admin': {
      const self = principal.kind === 'session' && principal.user.toLowerCase() === (params.name ?? '').toLowerCase();
      if (!self && principal.role !== 'admin') throw new HttpError(403, 'forbidden', 'only that user or an admin may change this account');
      return;
    }
  }
}

/** A report must be about a host the caller may report for (an agent token: its own). */
function checkHost(principal: Principal, hostId: string | null): void {
  if (can(principal, 'report', hostId)) return;
  const scope = principal.kind === 'token' && principal.hostId ? ` (this token reports for host '${principal.hostId}' only)` : '';
  throw new HttpError(403, 'forbidden', `your role (${principal.role}) may not report${hostId ? ` for host '${hostId}'` : ' without a host'}${scope}`);
}

function readBody(req: IncomingMessage, route: Route, door: FrontDoor): Promise<unknown> {
  const rule = route.body!;
  const limit = Math.min(rule.maxBytes ?? door.maxBodyBytes, door.maxBodyBytes);
  return readJsonBody(req, rule.schema, limit, rule.emptyAsObject ? { emptyAs: {} } : {});
}

/**
 * A cookie-authenticated mutation must carry the login's CSRF token, and, when the browser
 * says where it comes from, come from an allowed origin.
 */
function checkCsrf(req: IncomingMessage, principal: Extract<Principal, { kind: 'session' }>, door: FrontDoor): void {
  const given = req.headers['x-csrf-token'];
  const expected = Buffer.from(principal.csrfToken);
  const ok = typeof given === 'string' && given.length === principal.csrfToken.length && timingSafeEqual(Buffer.from(given), expected);
  if (!ok) throw new HttpError(403, 'csrf', 'missing or wrong X-CSRF-Token header (use the csrf_token from login or GET /api/me)');
  if (req.headers.origin !== undefined && !originAllowed(req, door.allowedOrigins)) {
    throw new HttpError(403, 'origin', `origin ${req.headers.origin} is not allowed`);
  }
}

/**
 * WebSocket upgrades at /ws: a valid session (browsers, whose Origin must be allowed) or bearer
 * token (programs) opens the state stream; an agent token opens an agent session instead (the
 * agent protocol; it never receives the state). Refused with a plain HTTP status before any
 * frame, let alone state, is sent: an unknown or revoked token gets 401, as the Go agent expects.
 */
export function createUpgradeHandler(door: FrontDoor, hub: SyncHub, agents: AgentHub): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => void upgrade(door, hub, agents, req, socket, head);
}

async function upgrade(door: FrontDoor, hub: SyncHub, agents: AgentHub, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  {
    socket.on('error', () => socket.destroy());
    // Answered, then destroyed: a refused client must not keep its descriptor by not closing.
    const refuse = (status: number, text: string) => {
      answerAndDestroy(socket, `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
    };
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/ws') return refuse(404, 'Not Found');
    let principal: Principal | null;
    try {
      principal = await authenticate(req, door.auth, door.secure);
    } catch {
      return refuse(401, 'Unauthorized');
    }
    if (!principal) return refuse(401, 'Unauthorized');
    // Browsers always send Origin; a cookie must never let another site open our socket.
    const fromBrowser = principal.kind === 'session' || req.headers.origin !== undefined;
    if (fromBrowser && !originAllowed(req, door.allowedOrigins)) return refuse(403, 'Forbidden');
    if (principal.kind === 'token' && principal.role === 'agent') {
      if (socket.destroyed) return;
      return agents.handleUpgrade(req, socket, head, principal);
    }
    if (!can(principal, 'read')) return refuse(403, 'Forbidden');
    if (socket.destroyed) return;
    hub.handleUpgrade(req, socket, head, principal);
  }
}
