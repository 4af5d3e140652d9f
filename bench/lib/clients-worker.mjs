// A child process holding many benchmark clients of one kind (nixfleet, plain ws or Socket.IO);
// the parent drives it over IPC: connect, expect N messages each, record latency, reconnect.
// Latency is receipt time minus the `"t=<ns>` stamp the producer put in the message.
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { newHistogram, nowNs, record, toSparse } from './stats.mjs';

let clients = [];
let expectEach = 0;
let received = 0;
let target = 0;
let lastAt = 0;
let latencyOn = false;
let histogram = newHistogram();
let inits = 0;
const send = (message) => process.send(message);

function stampOf(text) {
  const at = text.indexOf('"t=');
  if (at < 0) return null;
  let value = 0;
  for (let i = at + 3; i < text.length; i++) {
    const code = typeof text === 'string' ? text.charCodeAt(i) : text[i];
    if (code < 48 || code > 57) break;
    value = value * 10 + (code - 48);
  }
  return value;
}

function onMessage(data) {
  const at = nowNs();
  received++;
  lastAt = at;
  if (latencyOn) {
    const stamp = stampOf(data);
    if (stamp !== null) record(histogram, at - stamp);
  }
  if (target > 0 && received === target) send({ ev: 'done', lastAt, received });
}

/** Opens one client; resolves when it is usable (nixfleet: when its init arrived). */
function open(kind, url, headers) {
  return new Promise((resolve, reject) => {
    if (kind === 'sio') {
      const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, extraHeaders: headers });
      socket.on('d', onMessage);
      socket.once('connect', () => resolve(socket));
      socket.once('connect_error', reject);
      return;
    }
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.on('error', reject); // stays attached: a reset after open must not crash the worker
    ws.on('message', (data) => {
      // nixfleet frames start with {"type":" — byte 9 is 'd' for delta, 'i' for init.
      if (kind === 'ws') return onMessage(data);
      if (data[9] === 0x64) return onMessage(data);
      if (data[9] === 0x69) {
        inits++;
        resolve(ws);
      }
    });
    if (kind === 'ws') ws.once('open', () => resolve(ws));
  });
}

async function connectAll(kind, url, headers, count, parallel) {
  const started = nowNs();
  const result = [];
  for (let i = 0; i < count; i += parallel) {
    const chunk = await Promise.all(Array.from({ length: Math.min(parallel, count - i) }, () => open(kind, url, headers)));
    result.push(...chunk);
  }
  return { clients: result, ms: (nowNs() - started) / 1e6 };
}

function closeAll(kind) {
  for (const c of clients) {
    if (kind === 'sio') c.disconnect();
    else c.terminate();
  }
  clients = [];
}

let spec = null;
process.on('message', async (msg) => {
  try {
    switch (msg.cmd) {
      case 'connect': {
        spec = msg;
        const { clients: opened, ms } = await connectAll(msg.kind, msg.url, msg.headers ?? {}, msg.count, msg.parallel ?? 250);
        clients = opened;
        return send({ ev: 'connected', ms, count: clients.length });
      }
      case 'expect':
        received = 0;
        expectEach = msg.count;
        target = expectEach * clients.length;
        return send({ ev: 'ready' });
      case 'latency': {
        // on: start counting and recording; off: stop and report what was recorded.
        const counted = received;
        received = 0;
        target = 0;
        latencyOn = msg.on;
        if (msg.on) histogram = newHistogram();
        return send({ ev: 'latency', received: counted, histogram: msg.on ? [] : toSparse(histogram) });
      }
      case 'collect':
        return send({ ev: 'collected', received, histogram: toSparse(histogram) });
      case 'reconnect': {
        // Drop every socket and open them all again at once (a storm after a restart or deploy).
        closeAll(spec.kind);
        inits = 0;
        const { clients: opened, ms } = await connectAll(spec.kind, spec.url, spec.headers ?? {}, spec.count, spec.count);
        clients = opened;
        return send({ ev: 'reconnected', ms, inits, doneAt: nowNs() });
      }
      case 'close':
        closeAll(spec?.kind);
        send({ ev: 'closed' });
        return setTimeout(() => process.exit(0), 20);
    }
  } catch (error) {
    send({ ev: 'error', message: String(error?.message ?? error) });
  }
});
send({ ev: 'up' });
