// The socket worker in a Node worker thread, for test/worker-sockets.test.ts: the real
// serveSockets (from the build) with `ws` sockets carrying the test's bearer token. The string
// message 'crash' makes the thread throw, as a worker that fails would.
import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';
import { serveSockets } from '../../dist/client/socket-worker.js';

const scope = { onmessage: null, postMessage: (message) => parentPort.postMessage(message) };
parentPort.on('message', (data) => {
  if (data === 'crash') throw new Error('the test crashed this worker');
  scope.onmessage?.({ data });
});
class AuthedWebSocket extends WebSocket {
  constructor(url) {
    super(url, { headers: workerData.headers });
  }
}
serveSockets(scope, { WebSocket: AuthedWebSocket, flushIntervalMs: workerData.flushIntervalMs });
