// Server frames prepared once and written as-is to every socket, like gorilla/websocket's
// PreparedMessage. A server frame is never masked, so a delta's whole frame (header + payload)
// is the same bytes for every client: built once per delta, it goes out with one plain `write`
// per client instead of ws building a header and a two-buffer writev each time.
// Safe beside ws's own writes (pings, pongs, close) because the server never asks ws to
// compress: ws then writes synchronously, so both reach the socket in call order.
import type { Socket } from 'node:net';
import type { Frame } from './state-manager.js';

/** Frames up to this size are copied once into one buffer with their header; larger ones are not. */
const JOIN_MAX_BYTES = 64 * 1024;

const FIN = 0x80;
const RSV1 = 0x40;
const OPCODE_TEXT = 0x01;

const joined = new WeakMap<Frame, Buffer>();

/** Writes `frame` as one uncompressed text message. */
export function writeTextFrame(socket: Socket, frame: Frame, onWritten?: () => void): void {
  const done = onWritten ? () => onWritten() : undefined;
  if (frame.data.length > JOIN_MAX_BYTES) {
    writeParts(socket, frameHeader(frame.data.length, false), frame.data, done);
    return;
  }
  let bytes = joined.get(frame);
  if (!bytes) {
    bytes = Buffer.concat([frameHeader(frame.data.length, false), frame.data]);
    joined.set(frame, bytes);
  }
  socket.write(bytes, done);
}

/** Writes an already deflated payload as one compressed (RSV1) text message. */
export function writeDeflatedTextFrame(socket: Socket, payload: Buffer, onWritten?: () => void): void {
  writeParts(socket, frameHeader(payload.length, true), payload, onWritten ? () => onWritten() : undefined);
}

function writeParts(socket: Socket, header: Buffer, payload: Buffer, done?: () => void): void {
  socket.cork();
  socket.write(header);
  socket.write(payload, done);
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
