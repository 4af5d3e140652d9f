// A WebSocket receiver that costs its process as little as possible: it does the upgrade itself
// (offering permessage-deflate, as a browser does), then walks the frame headers and counts
// payload bytes without copying, inflating or validating them. In the reconnect storm 1000 of
// these share one core with the server, so what they measure is the server: when the last byte
// of each client's init left it. Decoding (inflate, UTF-8, JSON) is each real client's own work on
// its own machine; `keep: true` keeps the payload so a sample of clients can be checked.
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { constants, inflateRawSync } from 'node:zlib';

/**
 * Opens `url` and resolves with { socket, bytes, compressed, payload? } once the first message
 * (the init) has fully arrived. Later frames are read and dropped.
 */
export function openLean(url, headers = {}, { deflate = true, keep = false } = {}) {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    let upgraded = false;
    // Frame parser state: a header may straddle chunks; a payload is only counted.
    let pending = Buffer.alloc(0);
    let payloadLeft = 0;
    let first = true;
    let compressed = false;
    let bytes = 0;
    const kept = [];

    const onPayload = (chunk) => {
      if (!first) return;
      bytes += chunk.length;
      if (keep) kept.push(chunk);
    };
    const onMessageEnd = () => {
      if (!first) return;
      first = false;
      resolve({ socket, bytes, compressed, ...(keep ? { payload: Buffer.concat(kept) } : {}) });
    };
    let fin = false;
    const parse = (chunk) => {
      const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      pending = Buffer.alloc(0);
      let at = 0;
      while (at < buf.length) {
        if (payloadLeft > 0) {
          const take = Math.min(payloadLeft, buf.length - at);
          onPayload(buf.subarray(at, at + take));
          payloadLeft -= take;
          at += take;
          if (payloadLeft === 0 && fin) onMessageEnd();
          continue;
        }
        // A header is 2 to 10 bytes and may straddle two chunks: keep the start for the next one.
        const short = buf.length - at >= 2 ? buf[at + 1] & 0x7f : 0;
        const size = short === 126 ? 4 : short === 127 ? 10 : 2;
        if (buf.length - at < size) {
          pending = Buffer.from(buf.subarray(at));
          return;
        }
        fin = (buf[at] & 0x80) !== 0;
        const opcode = buf[at] & 0x0f;
        if (first && opcode !== 0 && opcode < 8) compressed = (buf[at] & 0x40) !== 0;
        payloadLeft = short === 126 ? buf.readUInt16BE(at + 2) : short === 127 ? buf.readUInt32BE(at + 2) * 2 ** 32 + buf.readUInt32BE(at + 6) : short;
        at += size;
        if (payloadLeft === 0 && fin) onMessageEnd();
      }
    };

    socket.on('data', (chunk) => {
      if (upgraded) return parse(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!head.subarray(0, 13).toString('latin1').startsWith('HTTP/1.1 101')) {
        socket.destroy();
        return reject(new Error(`upgrade refused: ${head.subarray(0, head.indexOf('\r\n')).toString('latin1')}`));
      }
      upgraded = true;
      const rest = head.subarray(end + 4);
      head = null;
      if (rest.length) parse(rest);
    });
    socket.on('error', reject);
    socket.on('connect', () => {
      const lines = [
        `GET ${pathname} HTTP/1.1`,
        `Host: ${hostname}:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        ...(deflate ? ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits'] : []),
        ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      ];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
  });
}

/** Decodes a kept init (inflating it when it came compressed) and returns the parsed message. */
export function decodeKept({ payload, compressed }) {
  const text = compressed
    ? inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH })
    : payload;
  return JSON.parse(text.toString());
}
