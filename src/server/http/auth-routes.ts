// Login, logout and the management of users and API tokens over HTTP. Logging out, revoking
// a token or removing a user closes the sockets that used them (the hub listens to AuthService).
import { z } from 'zod';
import { displayNameSchema, IdSchema, UserNameSchema } from '../../protocol/schema.js';
import { AuthError, sha256, type AuthService } from '../auth/auth-service.js';
import { actorOf, TOKEN_ROLES, USER_ROLES, type Principal } from '../auth/roles.js';
import { readJsonBody } from './body.js';
import { HttpError, sendJson } from './http-error.js';
import type { RequestContext, Router } from './router.js';
import { clearedSessionCookie, readSessionCookie, sessionCookie } from './session-cookie.js';

const LoginBody = z.strictObject({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
  totp: z.string().max(16).optional(),
});
const CreateTokenBody = z.strictObject({
  name: displayNameSchema(100),
  role: z.enum(TOKEN_ROLES),
  host_id: IdSchema.optional(),
});
const CreateUserBody = z.strictObject({
  name: UserNameSchema,
  role: z.enum(USER_ROLES),
  password: z.string().min(1).max(1024),
});
/** Proof of presence for changing a second factor (see confirmIdentity). */
const TotpChangeBody = z.strictObject({
  password: z.string().min(1).max(1024).optional(),
  totp: z.string().max(16).optional(),
});
const UpdateUserBody = z
  .strictObject({ role: z.enum(USER_ROLES), password: z.string().min(1).max(1024) })
  .partial()
  .refine((body) => Object.keys(body).length > 0, 'must name role or password');

export interface AuthRouteOptions {
  maxBodyBytes: number;
  sessionDurationMs: number;
}

export function addAuthRoutes(router: Router, auth: AuthService, options: AuthRouteOptions): Router {
  const limit = Math.min(options.maxBodyBytes, 16 * 1024);
  return router
    .on('POST', '/api/login', 'public', async (req, res, _params, ctx) => {
      const body = await readJsonBody(req, LoginBody, limit);
      const result = await authCall(() => auth.login(body, ctx.address));
      // Whatever session id the browser sent before is ended, not reused (fixation).
      const previous = readSessionCookie(req, ctx.secure);
      if (previous) await auth.logout(sha256(previous));
      sendJson(res, 200, { user: result.user, csrf_token: result.csrfToken }, {
        'set-cookie': sessionCookie(result.sessionId, ctx.secure, Math.floor(options.sessionDurationMs / 1000)),
      });
    })
    .on('POST', '/api/logout', 'authenticated', async (_req, res, _params, ctx) => {
      if (ctx.principal?.kind === 'session') await auth.logout(ctx.principal.sessionId);
      sendJson(res, 200, { ok: true }, { 'set-cookie': clearedSessionCookie(ctx.secure) });
    })
    .on('GET', '/api/me', 'authenticated', (_req, res, _params, ctx) => {
      const p = ctx.principal!;
      sendJson(res, 200, p.kind === 'session' ? { user: { name: p.user, role: p.role }, csrf_token: p.csrfToken } : { token: { id: p.tokenId, name: p.name, role: p.role, host_id: p.hostId } });
    })

    .on('GET', '/api/tokens', 'admin', (_req, res) => {
      sendJson(res, 200, { tokens: auth.listTokens().map(toTokenJson) });
    })
    .on('POST', '/api/tokens', 'admin', async (req, res, _params, ctx) => {
      const body = await readJsonBody(req, CreateTokenBody, limit);
      const created = await authCall(() => auth.createToken({ name: body.name, role: body.role, hostId: body.host_id ?? null }, ctx.principal ? actorOf(ctx.principal) : null));
      sendJson(res, 201, created);
    })
    .on('DELETE', '/api/tokens/:id', 'admin', async (_req, res, params) => {
      await authCall(() => auth.revokeToken(params.id ?? ''));
      sendJson(res, 200, { ok: true });
    })

    .on('GET', '/api/users', 'admin', (_req, res) => {
      sendJson(res, 200, { users: auth.listUsers().map((u) => ({ name: u.name, role: u.role, totp: u.totp, created_at: u.createdAt })) });
    })
    .on('POST', '/api/users', 'admin', async (req, res) => {
      const body = await readJsonBody(req, CreateUserBody, limit);
      await authCall(() => auth.addUser(body.name, body.role, body.password));
      sendJson(res, 201, { user: { name: body.name, role: body.role } });
    })
    .on('PATCH', '/api/users/:name', 'admin', async (req, res, params) => {
      const body = await readJsonBody(req, UpdateUserBody, limit);
      const name = params.name ?? '';
      if (body.role) await authCall(() => auth.setRole(name, body.role!));
      if (body.password) await authCall(() => auth.setPassword(name, body.password!));
      sendJson(res, 200, { ok: true });
    })
    .on('DELETE', '/api/users/:name', 'admin', async (_req, res, params, ctx) => {
      const name = params.name ?? '';
      if (ctx.principal?.kind === 'session' && ctx.principal.user.toLowerCase() === name.toLowerCase()) {
        throw new HttpError(409, 'conflict', 'you cannot remove yourself');
      }
      await authCall(() => auth.removeUser(name));
      sendJson(res, 200, { ok: true });
    })
    // A second factor changes only with proof that the person is at the keyboard: a session
    // gives its user's password (and, to turn its own TOTP off, a current code). Admin tokens
    // are programs with no password; they may already change any user's password.
    .on('POST', '/api/users/:name/totp', 'authenticated', async (req, res, params, ctx) => {
      const name = params.name ?? '';
      const self = selfOrAdmin(ctx.principal, name);
      const proof = await readJsonBody(req, TotpChangeBody, limit, { emptyAs: {} });
      await confirmIdentity(auth, ctx, proof, { code: false, self });
      sendJson(res, 200, await authCall(() => auth.enableTotp(name)));
    })
    .on('DELETE', '/api/users/:name/totp', 'authenticated', async (req, res, params, ctx) => {
      const name = params.name ?? '';
      const self = selfOrAdmin(ctx.principal, name);
      const proof = await readJsonBody(req, TotpChangeBody, limit, { emptyAs: {} });
      await confirmIdentity(auth, ctx, proof, { code: self, self });
      await authCall(() => auth.disableTotp(name));
      sendJson(res, 200, { ok: true });
    });
}

function toTokenJson(t: ReturnType<AuthService['listTokens']>[number]) {
  return { id: t.id, name: t.name, role: t.role, host_id: t.hostId, created_by: t.createdBy, created_at: t.createdAt, revoked_at: t.revokedAt };
}

/** Whether the caller acts on their own account; refuses anyone but the user and admins. */
function selfOrAdmin(principal: Principal | null, name: string): boolean {
  const self = principal?.kind === 'session' && principal.user.toLowerCase() === name.toLowerCase();
  if (!self && principal?.role !== 'admin') throw new HttpError(403, 'forbidden', 'only an admin may change another user\'s second factor');
  return self;
}

/**
 * A session proves its user is present: the password, plus a current code when `code` (turning
 * one's own second factor off) and the user has one. Tokens prove nothing more than themselves.
 */
async function confirmIdentity(auth: AuthService, ctx: RequestContext, proof: z.infer<typeof TotpChangeBody>, options: { code: boolean; self: boolean }): Promise<void> {
  const principal = ctx.principal!;
  if (principal.kind !== 'session') return;
  if (proof.password === undefined) throw new HttpError(400, 'invalid_request', `password: required: give ${options.self ? 'your' : 'your own (the admin\'s)'} password to change a second factor`);
  if (options.code && auth.hasTotp(principal.user) && proof.totp === undefined) throw new HttpError(400, 'invalid_request', 'totp: required: give a current code from your authenticator app to turn it off');
  await authCall(() => auth.reauthenticate(principal.user, { password: proof.password!, totp: proof.totp }, ctx.address, { code: options.code }));
}

/** Maps AuthError to HTTP: 401 bad credentials, 429 rate limits, 503 busy KDF, 400/404/409. */
async function authCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!(error instanceof AuthError)) throw error;
    const retry: Record<string, string> = error.retryAfterMs !== undefined ? { 'retry-after': String(Math.ceil(error.retryAfterMs / 1000)) } : {};
    const status = {
      invalid_credentials: 401,
      reauthentication_failed: 403,
      last_admin: 409,
      totp_required: 401,
      totp_reused: 401,
      rate_limited: 429,
      kdf_busy: 503,
      weak_password: 400,
      invalid: 400,
      exists: 409,
      not_found: 404,
    }[error.code];
    throw new HttpError(status, error.code, error.message, retry);
  }
}

