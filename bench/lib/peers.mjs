// The three fan-out servers compared side by side, behind one interface: this server's real path
// (apply → SQLite commit → broadcast), a plain `ws` loop (encode once, one send per client) and
// Socket.IO `io.emit`. Each message is the same ~235-byte delta JSON carrying a `"t=<ns>` stamp.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { Server as SocketIoServer } from 'socket.io';
import { encodeDelta } from '../../dist/protocol/index.js';
import { startServer } from '../../dist/server/server.js';
import { nowNs, withTempDir } from './stats.mjs';

let seq = 0;
/**
 * An event change stamped with a monotonic time: when it was due to be sent (paced runs, so a
 * sender that falls behind is charged for its own backlog too), else when it was produced.
 */
export function stampedEvent(stampNs = nowNs()) {
  const i = seq++;
  return {
    type: 'event',
    event: { id: `ev-${i}`, timestamp: '2026-01-01T00:00:00.000Z', category: 'bench', level: 'info', actor: 'bench', host_id: null, action: null, message: `t=${stampNs}`, details: null },
  };
}

export async function startNixfleet({ synchronous = 'FULL', deflateSnapshots = true } = {}) {
  const tmp = withTempDir();
  // Every bench client comes from 127.0.0.1: the per-address cap is lifted (the global one stays).
  const server = await startServer({ listenHost: '127.0.0.1', listenPort: 0, dataDir: tmp.dir, logLevel: 'silent', sqliteSynchronous: synchronous, maxClients: 20_000, maxConnectionsPerAddress: 1_000_000, deflateSnapshots });
  const { token } = await server.auth.createToken({ name: 'bench', role: 'admin' }, 'bench');
  return {
    name: `nixfleet (apply→commit ${synchronous}→broadcast)`,
    kind: 'nixfleet',
    url: server.wsUrl,
    headers: { authorization: `Bearer ${token}` },
    server,
    emit: (stampNs) => server.manager.apply(stampedEvent(stampNs)),
    async close() {
      await server.close();
      tmp.remove();
    },
  };
}

async function listen(http) {
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  return http.address().port;
}

export async function startPlainWs() {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  const port = await listen(http);
  let version = 0;
  return {
    name: 'plain ws loop (encode once, send per client)',
    kind: 'ws',
    url: `ws://127.0.0.1:${port}`,
    headers: {},
    emit(stampNs) {
      const data = Buffer.from(encodeDelta('bench', ++version, stampedEvent(stampNs)));
      for (const client of wss.clients) client.send(data, { binary: false });
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

export async function startSocketIo() {
  const http = createServer();
  const io = new SocketIoServer(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  const port = await listen(http);
  let version = 0;
  return {
    name: 'Socket.IO io.emit',
    kind: 'sio',
    url: `http://127.0.0.1:${port}`,
    headers: {},
    emit(stampNs) {
      io.emit('d', encodeDelta('bench', ++version, stampedEvent(stampNs)));
    },
    async close() {
      io.disconnectSockets(true);
      await new Promise((resolve) => io.close(() => resolve()));
    },
  };
}

export const PEERS = { nixfleet: startNixfleet, ws: startPlainWs, sio: startSocketIo };
