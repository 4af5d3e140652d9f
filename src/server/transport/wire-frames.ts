// Server frames prepared once and written as-is to every socket, like gorilla/websocket's
// PreparedMessage. A server frame is never masked, so a delta's whole frame (header + payload)
// is the same bytes for every client: the hub prepares it once per batch, and each client costs
// one plain `write` of those bytes instead of ws building a header and a two-buffer writev.
// Safe beside ws's own writes (pings, pongs, close) because the server never asks ws to
// compress: ws then writes synchronously, so both reach the socket in call order.
import type { Socket } from 'node:net';
import type { Frame } from '../state-manager.js';

/** A frame as it goes on the wire: header and payload in one buffer, shared by every client. */
export interface WireFrame {
  version: number;
  bytes: Buffer;
}

const FIN = 0x80;
const RSV1 = 0x40;
const OPCODE_TEXT = 0x01;

/** Joins the frame's header and payload once (one copy of a small delta per batch, not per client). */
export function toWire(frame: Frame): WireFrame {
  return { version: frame.version, bytes: Buffer.concat([frameHeader(frame.data.length, false), frame.data]) };
}

/**
 * Writes a snapshot (init or full_state) as one text message: `payload` is the frame's JSON, or
 * its deflated form when `compressed` (RSV1). Header and payload go out in one corked write, without
 * copying a payload that can be megabytes.
 */
export function writeSnapshotFrame(socket: Socket, payload: Buffer, compressed: boolean, onWritten?: () => void): void {
  socket.cork();
  socket.write(frameHeader(payload.length, compressed));
  socket.write(payload, onWritten ? () => onWritten() : undefined);
  socket.uncork();
}

/** RFC 6455 §5.2 header of a final, unmasked text frame of `length` bytes. */
function frameHeader(length: number, compressed: boolean): Buffer {
  const first = FIN | (compressed ? RSV1 : 0) | OPCODE_TEXT;
  if (length < 126) return Buffer.from([first, length]);
  if (length < 0x10000) {
    const header = Buffer.allocUnsafe(4);
    header[0] = first;
    header[1] = 126;
    header.writeUInt16BE(length, 2);
    return header;
  }
  const header = Buffer.allocUnsafe(10);
  header[0] = first;
  header[1] = 127;
  header.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
  header.writeUInt32BE(length >>> 0, 6);
  return header;
}
