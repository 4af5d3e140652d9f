// The session cookie: random id only (the server stores its hash), HttpOnly, SameSite=Strict,
// and over TLS Secure with the __Host- prefix (bound to this host, path / and HTTPS).
import type { IncomingMessage } from 'node:http';

export function sessionCookieName(secure: boolean): string {
  return secure ? '__Host-nixfleet_session' : 'nixfleet_session';
}

export function readSessionCookie(req: IncomingMessage, secure: boolean): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  const name = sessionCookieName(secure);
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{1,128}$/.test(value) ? value : null;
    }
  }
  return null;
}

export function sessionCookie(value: string, secure: boolean, maxAgeSeconds: number): string {
  return [`${sessionCookieName(secure)}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSeconds}`, ...(secure ? ['Secure'] : [])].join('; ');
}

export function clearedSessionCookie(secure: boolean): string {
  return sessionCookie('', secure, 0);
}
