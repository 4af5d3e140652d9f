// Reads and validates a JSON request body: size-limited, JSON content type required, parsed
// into the route's schema. Every failure is an HttpError saying what is wrong.
import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { HttpError, validationError } from './http-error.js';

export interface BodyOptions {
  /** A request with no body at all (a bare DELETE) is read as this value instead of a 415. */
  emptyAs?: Record<string, never>;
}

export async function readJsonBody<S extends z.ZodType>(req: IncomingMessage, schema: S, maxBytes: number, options: BodyOptions = {}): Promise<z.infer<S>> {
  if (options.emptyAs && hasNoBody(req)) return parseWith(schema, options.emptyAs);
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new HttpError(415, 'unsupported_media_type', 'send the body as JSON with Content-Type: application/json');
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw new HttpError(413, 'body_too_large', `request body is larger than ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      req.resume();
      throw new HttpError(413, 'body_too_large', `request body is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'invalid_request', 'request body must be a JSON object');
  }
  return parseWith(schema, value);
}

function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(result.error);
  return result.data;
}

function hasNoBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] === undefined || req.headers['content-length'] === '0');
}
