// Login, logout and the management of users and API tokens over HTTP (src/protocol/api.ts).
// Access and bodies are checked by the front door; AuthError becomes its HTTP answer in
// toHttpError. Logging out, revoking a token or removing a user closes the sockets that used
// them (the hub listens to AuthService).
import type { ApiBody } from '../../protocol/api-schemas.js';
import { sha256, type AuthService } from '../auth/auth-service.js';
import { actorOf, type Principal } from '../auth/roles.js';
import { HttpError, sendJson } from './http-error.js';
import type { RouteContext, Router } from './router.js';
import { clearedSessionCookie, readSessionCookie, sessionCookie } from './session-cookie.js';

export interface AuthRouteOptions {
  sessionDurationMs: number;
}

export function addAuthRoutes(router: Router, auth: AuthService, options: AuthRouteOptions): Router {
  return router
    .api('login', async ({ req, res, body, address, secure }) => {
      const result = await auth.login(body, address);
      // Whatever session id the browser sent before is ended, not reused (fixation).
      const previous = readSessionCookie(req, secure);
      if (previous) await auth.logout(sha256(previous));
      sendJson(res, 200, { user: result.user, csrf_token: result.csrfToken }, {
        'set-cookie': sessionCookie(result.sessionId, secure, Math.floor(options.sessionDurationMs / 1000)),
      });
    })
    .api('logout', async ({ res, principal, secure }) => {
      if (principal?.kind === 'session') await auth.logout(principal.sessionId);
      sendJson(res, 200, { ok: true }, { 'set-cookie': clearedSessionCookie(secure) });
    })
    .api('me', ({ res, principal }) => {
      const p = principal!;
      sendJson(res, 200, p.kind === 'session' ? { user: { name: p.user, role: p.role }, csrf_token: p.csrfToken } : { token: { id: p.tokenId, name: p.name, role: p.role, host_id: p.hostId } });
    })

    .api('listTokens', ({ res }) => {
      sendJson(res, 200, { tokens: auth.listTokens().map(toTokenJson) });
    })
    .api('createToken', async ({ res, body, principal }) => {
      sendJson(res, 201, await auth.createToken({ name: body.name, role: body.role, hostId: body.host_id ?? null }, actorOf(principal!)));
    })
    .api('revokeToken', async ({ res, params }) => {
      await auth.revokeToken(params.id ?? '');
      sendJson(res, 200, { ok: true });
    })

    .api('listUsers', ({ res }) => {
      sendJson(res, 200, { users: auth.listUsers().map((u) => ({ name: u.name, role: u.role, totp: u.totp, created_at: u.createdAt })) });
    })
    .api('createUser', async ({ res, body }) => {
      await auth.addUser(body.name, body.role, body.password);
      sendJson(res, 201, { user: { name: body.name, role: body.role } });
    })
    .api('updateUser', async ({ res, params, body }) => {
      const name = params.name ?? '';
      if (body.role) await auth.setRole(name, body.role);
      if (body.password) await auth.setPassword(name, body.password);
      sendJson(res, 200, { ok: true });
    })
    .api('removeUser', async ({ res, params, principal }) => {
      const name = params.name ?? '';
      if (principal?.kind === 'session' && principal.user.toLowerCase() === name.toLowerCase()) {
        throw new HttpError(409, 'conflict', 'you cannot remove yourself');
      }
      await auth.removeUser(name);
      sendJson(res, 200, { ok: true });
    })
    // A second factor changes only with proof that the person is at the keyboard: a session
    // gives its user's password (and, to turn its own TOTP off, a current code). Admin tokens
    // are programs with no password; they may already change any user's password.
    .api('enableTotp', async (ctx) => {
      const name = ctx.params.name ?? '';
      await confirmIdentity(auth, ctx, { code: false, self: isSelf(ctx.principal!, name) });
      sendJson(ctx.res, 200, await auth.enableTotp(name));
    })
    .api('disableTotp', async (ctx) => {
      const name = ctx.params.name ?? '';
      const self = isSelf(ctx.principal!, name);
      await confirmIdentity(auth, ctx, { code: self, self });
      await auth.disableTotp(name);
      sendJson(ctx.res, 200, { ok: true });
    });
}

function toTokenJson(t: ReturnType<AuthService['listTokens']>[number]) {
  return { id: t.id, name: t.name, role: t.role, host_id: t.hostId, created_by: t.createdBy, created_at: t.createdAt, revoked_at: t.revokedAt };
}

function isSelf(principal: Principal, name: string): boolean {
  return principal.kind === 'session' && principal.user.toLowerCase() === name.toLowerCase();
}

/**
 * A session proves its user is present: the password, plus a current code when `code` (turning
 * one's own second factor off) and the user has one. Tokens prove nothing more than themselves.
 */
async function confirmIdentity(auth: AuthService, ctx: RouteContext<ApiBody<'enableTotp'>>, options: { code: boolean; self: boolean }): Promise<void> {
  const principal = ctx.principal!;
  const proof = ctx.body;
  if (principal.kind !== 'session') return;
  if (proof.password === undefined) throw new HttpError(400, 'invalid_request', `password: required: give ${options.self ? 'your' : "your own (the admin's)"} password to change a second factor`);
  if (options.code && auth.hasTotp(principal.user) && proof.totp === undefined) throw new HttpError(400, 'invalid_request', 'totp: required: give a current code from your authenticator app to turn it off');
  await auth.reauthenticate(principal.user, { password: proof.password, totp: proof.totp }, ctx.address, { code: options.code });
}
