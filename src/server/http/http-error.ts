// The one error type of the HTTP layer and its mapping to a JSON response. Every failure a
// client can cause becomes an HttpError with a stable code; anything else is a 500.
import type { ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { ApiErrorCode } from '../../protocol/api.js';
import { AuthError, type AuthErrorCode } from '../auth/auth-service.js';
import { OutputRateLimitedError } from '../output-intake.js';
import { ChangeRejectedError } from '../state-manager.js';
import { StoreError } from '../store/store.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    /** One of the API's documented error codes (src/protocol/api.ts). */
    readonly code: ApiErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** A 400 naming each invalid field, e.g. `hostname: expected string, received undefined`. */
export function validationError(error: z.ZodError): HttpError {
  const parts = error.issues.slice(0, 5).map((issue) => {
    const path = issue.path.map(String).join('.');
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  return new HttpError(400, 'invalid_request', parts.join('; '));
}

/** HTTP status of each AuthError code. */
const AUTH_STATUS: Record<AuthErrorCode, number> = {
  invalid_credentials: 401,
  totp_required: 401,
  totp_reused: 401,
  reauthentication_failed: 403,
  last_admin: 409,
  rate_limited: 429,
  kdf_busy: 503,
  weak_password: 400,
  invalid: 400,
  exists: 409,
  not_found: 404,
};

/**
 * The one mapping from every error a handler can meet to an HTTP answer, so no route needs a
 * wrapper of its own; unexpected errors become a 500 without internals.
 */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof ChangeRejectedError) {
    const status = { invalid: 400, not_found: 404, conflict: 409, closed: 503 }[error.code];
    return new HttpError(status, error.code === 'invalid' ? 'invalid_request' : error.code, error.message);
  }
  if (error instanceof StoreError) {
    return new HttpError(503, error.code, 'the change could not be stored; nothing was applied. Try again.');
  }
  if (error instanceof AuthError) {
    return new HttpError(AUTH_STATUS[error.code], error.code === 'invalid' ? 'invalid_request' : error.code, error.message, retryAfter(error.retryAfterMs));
  }
  if (error instanceof OutputRateLimitedError) {
    return new HttpError(429, 'rate_limited', error.message, retryAfter(error.retryAfterMs));
  }
  return new HttpError(500, 'internal_error', 'internal server error');
}

function retryAfter(ms: number | undefined): Record<string, string> {
  return ms === undefined ? {} : { 'retry-after': String(Math.max(1, Math.ceil(ms / 1000))) };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendText(res, status, typeof body === 'string' ? body : JSON.stringify(body), 'application/json; charset=utf-8', headers);
}

export function sendText(res: ServerResponse, status: number, body: string, contentType: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(body);
}

export function sendError(res: ServerResponse, error: HttpError): void {
  sendJson(res, error.status, { error: error.code, message: error.message }, error.headers);
}
