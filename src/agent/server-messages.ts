// Decodes what the server sends the agent. Total: a frame that is not JSON, has an unknown type
// or a payload of the wrong shape becomes `ignored` with the reason, never an exception.
import type { CommandPayload, KillCommandPayload, RegisteredPayload } from '../protocol/agent-wire.js';

export type ServerMessage =
  | { type: 'registered'; payload: RegisteredPayload }
  | { type: 'command'; payload: CommandPayload }
  | { type: 'kill_command'; payload: KillCommandPayload }
  | { type: 'ignored'; reason: string };

export function decodeServerMessage(text: string): ServerMessage {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return { type: 'ignored', reason: 'not JSON' };
  }
  if (!isRecord(frame) || typeof frame.type !== 'string') return { type: 'ignored', reason: 'no type' };
  const payload = isRecord(frame.payload) ? frame.payload : {};
  switch (frame.type) {
    case 'registered':
      return { type: 'registered', payload: registered(payload) };
    case 'command': {
      if (typeof payload.command !== 'string' || payload.command === '') return { type: 'ignored', reason: 'command without an op' };
      const command: CommandPayload = { command: payload.command };
      if (typeof payload.command_id === 'string') command.command_id = payload.command_id;
      return { type: 'command', payload: command };
    }
    case 'kill_command': {
      const signal = payload.signal;
      if (signal !== 'SIGTERM' && signal !== 'SIGKILL') return { type: 'ignored', reason: `kill_command with signal ${JSON.stringify(signal)}` };
      const pid = typeof payload.pid === 'number' && Number.isInteger(payload.pid) ? payload.pid : 0;
      return { type: 'kill_command', payload: { signal, pid } };
    }
    default:
      return { type: 'ignored', reason: `unknown type ${JSON.stringify(frame.type).slice(0, 60)}` };
  }
}

/** Keeps the extension fields only when they are present and well-formed, so an old server's
 * `registered {host_id}` stays recognisable as one. */
function registered(payload: Record<string, unknown>): RegisteredPayload {
  const result: RegisteredPayload = { host_id: typeof payload.host_id === 'string' ? payload.host_id : String(payload.host_id ?? '') };
  if (payload.command === null || typeof payload.command === 'string') result.command = payload.command;
  if (typeof payload.output_seq === 'number' && Number.isInteger(payload.output_seq) && payload.output_seq >= 0) result.output_seq = payload.output_seq;
  if (payload.command_id === null || typeof payload.command_id === 'string') result.command_id = payload.command_id;
  return result;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
