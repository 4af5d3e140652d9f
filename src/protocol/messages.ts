// The frames of the State Sync Protocol (docs/PROTOCOL.md is the authoritative description):
// their types, their encoders (the server encodes each frame once and shares the bytes) and the
// parser of client frames, which never throws.
import { CHANGE_TYPES } from './constants.js';
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

/** WebSocket close codes of the protocol (docs/PROTOCOL.md, "Close codes"). */
export const CloseCode = {
  /** The client closed (StateSync.close). */
  NORMAL: 1000,
  /** Sent by a client that gives up on a link (bad frame, silence) to reconnect at once. */
  CLIENT_RECONNECT: 4000,
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
  /** Reserved: the credential may no longer read the state. Terminal. */
  FORBIDDEN: 4403,
} as const;

/** Close codes after which reconnecting cannot succeed: the client stops and asks for a login. */
export function isTerminalCloseCode(code: number): boolean {
  return code === CloseCode.UNAUTHORIZED || code === CloseCode.FORBIDDEN;
}

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

/** The one client frame: ask for the full state. */
export function encodeGetState(): string {
  return '{"type":"get_state"}';
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

/**
 * What a client makes of one server frame. Total: every input is one of these, nothing throws.
 * A frame or change type this version does not know is not an error (docs/PROTOCOL.md,
 * "Compatibility"): a newer server may send it, and the client must go on.
 */
export type DecodedFrame =
  | { kind: 'message'; message: ServerMessage }
  /** A frame type from a newer server: ignore it. */
  | { kind: 'unknown_frame'; type: string }
  /** A delta whose change type is from a newer server: it cannot be applied; get the full state. */
  | { kind: 'unknown_change'; epoch: string; version: number; changeType: string }
  /** Not a frame of this protocol at all (not JSON, or a known frame without its fields). */
  | { kind: 'invalid'; reason: string };

const KNOWN_CHANGES: ReadonlySet<string> = new Set(CHANGE_TYPES);

/**
 * Decodes a server frame. Checks the envelope only (type, epoch, version, the payload's shape),
 * not every entity field: the server is the authority on those, and fields the client does not
 * know are simply not read.
 */
export function decodeServerFrame(text: string): DecodedFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return invalid('not JSON');
  }
  if (!isObject(value) || typeof value.type !== 'string') return invalid('not an object with a string "type"');
  const frame = value;
  const type: string = value.type;
  switch (type) {
    case 'init':
    case 'full_state':
      if (!hasPosition(frame)) return invalid(`${type} without a string epoch and a whole version`);
      if (!isFullState(frame.payload)) return invalid(`${type} without a full state payload`);
      return { kind: 'message', message: frame as unknown as InitMessage | FullStateMessage };
    case 'delta':
      if (!hasPosition(frame)) return invalid('delta without a string epoch and a whole version');
      if (!isObject(frame.payload) || typeof frame.payload.type !== 'string') return invalid('delta without a change');
      if (!KNOWN_CHANGES.has(frame.payload.type)) return { kind: 'unknown_change', epoch: frame.epoch, version: frame.version, changeType: frame.payload.type.slice(0, 64) };
      return { kind: 'message', message: frame as unknown as DeltaMessage };
    case 'sync':
      if (!hasPosition(frame)) return invalid('sync without a string epoch and a whole version');
      return { kind: 'message', message: { type: 'sync', epoch: frame.epoch, version: frame.version } };
    case 'error':
      if (typeof frame.code !== 'string' || typeof frame.message !== 'string') return invalid('error without a code and a message');
      return { kind: 'message', message: { type: 'error', code: frame.code as ErrorCode, message: frame.message } };
    default:
      return { kind: 'unknown_frame', type: type.slice(0, 64) };
  }
}

function invalid(reason: string): DecodedFrame {
  return { kind: 'invalid', reason };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasPosition(frame: Record<string, unknown>): frame is Record<string, unknown> & { epoch: string; version: number } {
  return typeof frame.epoch === 'string' && frame.epoch !== '' && Number.isSafeInteger(frame.version) && (frame.version as number) >= 0;
}

function isFullState(payload: unknown): payload is FullState {
  return (
    isObject(payload) &&
    Array.isArray(payload.hosts) &&
    Array.isArray(payload.commands) &&
    Array.isArray(payload.pipelines) &&
    Array.isArray(payload.events) &&
    isObject(payload.limits)
  );
}
