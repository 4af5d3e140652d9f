// Who a request (HTTP or WebSocket upgrade) comes from, and whether its Origin may speak for
// a browser session. Bearer tokens are for programs; the session cookie is for browsers.
import type { IncomingMessage } from 'node:http';
import type { AuthService } from '../auth/auth-service.js';
import type { Principal } from '../auth/roles.js';
import { HttpError } from './http-error.js';
import { readSessionCookie } from './session-cookie.js';

/**
 * The caller's principal; null when the request carries no credential. A credential that is
 * present but wrong is a 401, never a silent fall-back to anonymous or to the other credential.
 */
export async function authenticate(req: IncomingMessage, auth: AuthService, secure: boolean): Promise<Principal | null> {
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    const principal = match ? await auth.resolveToken(match[1]!) : null;
    if (!principal) throw new HttpError(401, 'invalid_token', 'the bearer token is malformed, unknown or revoked', { 'www-authenticate': 'Bearer' });
    return principal;
  }
  const sessionId = readSessionCookie(req, secure);
  if (sessionId === null) return null;
  const principal = await auth.resolveSession(sessionId);
  if (!principal) throw new HttpError(401, 'session_expired', 'your session has ended; log in again');
  return principal;
}

/**
 * Whether the request's Origin is one a browser may use this server from: its own (decided from
 * where it listens, see own-origins.ts) or NIXFLEET_ALLOWED_ORIGINS. Never judged by the Host
 * header, which a page on a rebound DNS name controls.
 */
export function originAllowed(req: IncomingMessage, allowed: ReadonlySet<string>): boolean {
  const origin = req.headers.origin;
  return origin !== undefined && allowed.has(origin);
}
