// A child process holding many "browsers" for the agent benchmarks: each a StateSync (the real
// client, dist/client) on a `ws` socket with an admin token, folding the state stream as the
// dashboard does. The parent drives it over IPC (bench/lib/workers.mjs `next`):
//   connect {url, token, count}  → connected {ms} once every client is live
//   latency {on}   on: time each host_updated whose generation is `t=<monotonic ns>` (stamped by
//                  an agent as it sent the heartbeat) from that stamp to this client's fold;
//                  off: report the histogram
//   digest         → each client's version, status and state digest
//   command {id}   → each client's view of one command (status, exit code, output tail digest)
//   close → closed
import { monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket from 'ws';
import { StateSync } from '../../dist/client/index.js';
import { newHistogram, nowNs, record, toSparse } from './stats.mjs';
import { stateDigest, textDigest } from './digest.mjs';

let syncs = [];
let latencyOn = false;
let histogram = newHistogram();
let samples = 0;
let busyFrom = { cpu: process.cpuUsage(), at: nowNs() };
const counts = { deltas: 0, snapshots: 0, fullStates: 0, statuses: {} };
const send = (message) => process.send(message);
// How late this process's event loop ran while timing: a latency tail from the receivers' side.
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

function onChange(event) {
  if (event.kind === 'snapshot') {
    counts.snapshots++;
    if (event.source === 'full_state') counts.fullStates++;
    return;
  }
  counts.deltas++;
  if (!latencyOn) return;
  const { change } = event;
  if (change.type !== 'host_updated') return;
  const generation = change.fields.generation;
  if (typeof generation === 'string' && generation.startsWith('t=')) {
    record(histogram, nowNs() - Number(generation.slice(2)));
    samples++;
  }
}

async function connect({ url, token, count }) {
  const Authed = class extends WebSocket {
    constructor(target) {
      super(target, { headers: { authorization: `Bearer ${token}` } });
    }
  };
  const started = nowNs();
  for (let i = 0; i < count; i++) {
    const sync = new StateSync({ url, WebSocket: Authed, page: null, backoffBaseMs: 200, backoffCapMs: 2000 });
    sync.on('change', onChange);
    sync.on('status', ({ status, reason }) => {
      const key = `${status} ${reason}`;
      counts.statuses[key] = (counts.statuses[key] ?? 0) + 1;
    });
    sync.start();
    syncs.push(sync);
  }
  const deadline = Date.now() + 60_000;
  while (syncs.some((s) => s.status.status !== 'live')) {
    if (Date.now() > deadline) throw new Error(`${syncs.filter((s) => s.status.status !== 'live').length} browsers not live after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { ms: (nowNs() - started) / 1e6 };
}

process.on('message', async (msg) => {
  try {
    switch (msg.cmd) {
      case 'connect':
        return send({ ev: 'connected', ...(await connect(msg)), count: syncs.length });
      case 'latency': {
        latencyOn = msg.on;
        const cpu = process.cpuUsage(busyFrom.cpu);
        const busy = ((cpu.user + cpu.system) * 1000) / (nowNs() - busyFrom.at);
        const answer = { ev: 'latency', samples, busy, loopDelayMs: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 }, histogram: msg.on ? [] : toSparse(histogram), ...counts };
        if (msg.on) {
          loop.reset();
          histogram = newHistogram();
          samples = 0;
          busyFrom = { cpu: process.cpuUsage(), at: nowNs() };
        }
        return send(answer);
      }
      case 'digest':
        return send({ ev: 'digest', clients: syncs.map((s) => ({ version: s.version, epoch: s.epoch, status: s.status.status, digest: s.state ? stateDigest(s.state) : null })), ...counts });
      case 'command':
        return send({
          ev: 'command',
          clients: syncs.map((s) => {
            const c = s.state?.commands.get(msg.id);
            return { version: s.version, status: s.status.status, command: c ? { status: c.status, exit_code: c.exit_code, output_size: c.output_size, outputLength: c.output.length, outputDigest: textDigest(c.output), tail: c.output.slice(-300) } : null };
          }),
          ...counts,
        });
      case 'close':
        for (const s of syncs) s.close();
        syncs = [];
        send({ ev: 'closed' });
        return setTimeout(() => process.exit(0), 20);
    }
  } catch (error) {
    send({ ev: 'error', message: String(error?.message ?? error) });
  }
});
send({ ev: 'up' });
