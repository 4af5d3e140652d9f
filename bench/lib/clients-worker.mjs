// A child process holding many benchmark clients of one kind (nixfleet, plain ws, Socket.IO, or
// lean receivers of nixfleet inits); the parent drives it over IPC: connect, expect N messages
// each, record latency, reconnect. Latency is receipt time minus the `"t=<ns>` stamp the producer
// put in the message.
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { decodeKept, openLean } from './lean-receiver.mjs';
import { newHistogram, nowNs, record, toSparse } from './stats.mjs';

/** One lean receiver in this many keeps its init, which is then decoded and checked. */
const LEAN_SAMPLE_EVERY = 100;

let clients = [];
let expectEach = 0;
let received = 0;
let target = 0;
let lastAt = 0;
let latencyOn = false;
let histogram = newHistogram();
let inits = 0;
let cpuAtLatencyOn = process.cpuUsage();
let latencyOnAt = 0;
/** Lean receivers: init bytes received, and the decoded samples' versions. */
let initBytes = 0;
let compressedInits = 0;
let sampled = [];
let opened = 0;
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

/** Opens one client; resolves with a handle when it is usable (nixfleet: when its init arrived). */
function open(kind, url, headers, deflate) {
  const index = opened++;
  if (kind === 'lean') {
    const keep = index % LEAN_SAMPLE_EVERY === 0;
    return openLean(url, headers, { deflate, keep }).then((init) => {
      inits++;
      initBytes += init.bytes;
      if (init.compressed) compressedInits++;
      if (keep) sampled.push(init);
      return { close: () => init.socket.destroy() };
    });
  }
  return new Promise((resolve, reject) => {
    if (kind === 'sio') {
      const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, extraHeaders: headers });
      socket.on('d', onMessage);
      socket.once('connect', () => resolve({ close: () => socket.disconnect() }));
      socket.once('connect_error', reject);
      return;
    }
    const ws = new WebSocket(url, { headers, perMessageDeflate: deflate });
    const handle = { close: () => ws.terminate() };
    ws.on('error', reject); // stays attached: a reset after open must not crash the worker
    ws.on('message', (data) => {
      // nixfleet frames start with {"type":" — byte 9 is 'd' for delta, 'i' for init.
      if (kind === 'ws') return onMessage(data);
      if (data[9] === 0x64) return onMessage(data);
      if (data[9] === 0x69) {
        inits++;
        resolve(handle);
      }
    });
    if (kind === 'ws') ws.once('open', () => resolve(handle));
  });
}

/** Decodes the kept inits; every one must be an init at one version. */
function checkSamples() {
  const versions = new Set();
  for (const init of sampled) {
    const message = decodeKept(init);
    if (message.type !== 'init') throw new Error(`a lean receiver's first message was ${message.type}, not init`);
    versions.add(message.version);
  }
  const result = { verified: sampled.length, versions: [...versions] };
  sampled = [];
  return result;
}

async function connectAll({ kind, url, headers = {}, count, deflate = kind === 'nixfleet' || kind === 'lean' }, parallel) {
  const started = nowNs();
  const result = [];
  opened = 0;
  for (let i = 0; i < count; i += parallel) {
    const chunk = await Promise.all(Array.from({ length: Math.min(parallel, count - i) }, () => open(kind, url, headers, deflate)));
    result.push(...chunk);
  }
  return { clients: result, ms: (nowNs() - started) / 1e6 };
}

function closeAll() {
  for (const c of clients) c.close();
  clients = [];
}

let spec = null;
process.on('message', async (msg) => {
  try {
    switch (msg.cmd) {
      case 'connect': {
        spec = msg;
        const connected = await connectAll(msg, msg.parallel ?? 250);
        clients = connected.clients;
        return send({ ev: 'connected', ms: connected.ms, count: clients.length });
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
        if (msg.on) {
          histogram = newHistogram();
          cpuAtLatencyOn = process.cpuUsage();
          latencyOnAt = nowNs();
        }
        // The share of a core this process used while recording: how busy the receivers were.
        const cpu = process.cpuUsage(cpuAtLatencyOn);
        const busy = msg.on ? 0 : (cpu.user + cpu.system) * 1000 / (nowNs() - latencyOnAt);
        return send({ ev: 'latency', received: counted, busy, histogram: msg.on ? [] : toSparse(histogram) });
      }
      case 'collect':
        return send({ ev: 'collected', received, histogram: toSparse(histogram) });
      case 'reconnect': {
        // Drop every socket and open them all again at once (a storm after a restart or deploy).
        closeAll();
        inits = 0;
        initBytes = 0;
        compressedInits = 0;
        sampled = [];
        const reconnected = await connectAll(spec, spec.count);
        const doneAt = nowNs();
        clients = reconnected.clients;
        return send({ ev: 'reconnected', ms: reconnected.ms, inits, initBytes, compressedInits, samples: checkSamples(), doneAt });
      }
      case 'close':
        closeAll();
        send({ ev: 'closed' });
        return setTimeout(() => process.exit(0), 20);
    }
  } catch (error) {
    send({ ev: 'error', message: String(error?.message ?? error) });
  }
});
send({ ev: 'up' });
