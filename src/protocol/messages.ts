// The frames of the State Sync Protocol (docs/PROTOCOL.md is the authoritative description):
// their types, their encoders (the server encodes each frame once and shares the bytes) and the
// parser of client frames, which never throws.
import type { Change, FullState } from './schema.js';

export const SERVER_MESSAGE_TYPES = ['init', 'delta', 'sync', 'full_state', 'error'] as const;
export const CLIENT_MESSAGE_TYPES = ['get_state'] as const;

export interface InitMessage { type: 'init'; epoch: string; version: number; payload: FullState }
export interface DeltaMessage { type: 'delta'; epoch: string; version: number; payload: Change }
export interface SyncMessage { type: 'sync'; epoch: string; version: number }
export interface FullStateMessage { type: 'full_state'; epoch: string; version: number; payload: FullState }
export interface ErrorMessage { type: 'error'; code: ErrorCode; message: string }
export type ServerMessage = InitMessage | DeltaMessage | SyncMessage | FullStateMessage | ErrorMessage;

export interface GetStateMessage { type: 'get_state' }
export type ClientMessage = GetStateMessage;

/** Codes of `error` frames. The connection stays open after each of them. */
export const ERROR_CODES = ['invalid_json', 'invalid_message', 'unknown_type', 'rate_limited'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** WebSocket close codes the server uses (docs/PROTOCOL.md, "Close codes"). */
export const CloseCode = {
  /** Server shutting down or restarting: reconnect with backoff. */
  GOING_AWAY: 1001,
  /** The client kept sending far beyond its frame rate. */
  POLICY_VIOLATION: 1008,
  /** A client frame was larger than the limit. */
  MESSAGE_TOO_BIG: 1009,
  /** Unexpected server error while serving this connection. */
  INTERNAL_ERROR: 1011,
  /** The server is overloaded: reconnect later with backoff. */
  TRY_AGAIN_LATER: 1013,
  /** The client did not read its frames for too long (slow consumer); reconnect. */
  SLOW_CONSUMER: 4008,
  /** The session or token behind this socket ended (logout, expiry, revocation): log in again. Terminal. */
  UNAUTHORIZED: 4401,
} as const;

/** Frames that carry a full state: the state is encoded once per version and spliced in. */
export type SnapshotFrameType = 'init' | 'full_state';

export function encodeSnapshotFrame(type: SnapshotFrameType, epoch: string, version: number, stateJson: string): string {
  return `{"type":"${type}","epoch":${JSON.stringify(epoch)},"version":${version},"payload":${stateJson}}`;
}

export function encodeDelta(epoch: string, version: number, change: Change): string {
  return encodeDeltaJson(epoch, version, JSON.stringify(change));
}

/** A delta frame around a change already encoded (the same bytes as `encodeDelta`). */
export function encodeDeltaJson(epoch: string, version: number, changeJson: string): string {
  return `{"type":"delta","epoch":${JSON.stringify(epoch)},"version":${version},"payload":${changeJson}}`;
}

export function encodeSync(epoch: string, version: number): string {
  return JSON.stringify({ type: 'sync', epoch, version } satisfies SyncMessage);
}

export function encodeError(code: ErrorCode, message: string): string {
  return JSON.stringify({ type: 'error', code, message } satisfies ErrorMessage);
}

export type ParsedClientMessage = { ok: true; message: ClientMessage } | { ok: false; code: ErrorCode; message: string };

/**
 * Parses one client frame. Accepts `{"type":"get_state"}` and `{"type":"get_state","payload":{}}`;
 * anything else is answered with an error code and a message saying what is wrong.
 */
export function parseClientMessage(text: string): ParsedClientMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'invalid_json', message: 'frame is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'invalid_message', message: 'frame must be a JSON object' };
  }
  const record = value as Record<string, unknown>;
  if (typeof record.type !== 'string') {
    return { ok: false, code: 'invalid_message', message: 'field "type" must be a string' };
  }
  if (!(CLIENT_MESSAGE_TYPES as readonly string[]).includes(record.type)) {
    return { ok: false, code: 'unknown_type', message: `unknown message type ${JSON.stringify(record.type.slice(0, 64))}; expected one of: ${CLIENT_MESSAGE_TYPES.join(', ')}` };
  }
  for (const key of Object.keys(record)) {
    if (key !== 'type' && key !== 'payload') {
      return { ok: false, code: 'invalid_message', message: `unexpected field ${JSON.stringify(key.slice(0, 64))}` };
    }
  }
  if ('payload' in record) {
    const payload = record.payload;
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload) || Object.keys(payload).length > 0) {
      return { ok: false, code: 'invalid_message', message: 'field "payload" of get_state must be an empty object' };
    }
  }
  return { ok: true, message: { type: 'get_state' } };
}
