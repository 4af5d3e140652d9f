// Fan-out benchmark: this server's real path against a plain `ws` loop and Socket.IO, clients in
// child processes. Per peer and client count: deliveries/s of a burst, server CPU per delivery,
// apply→receipt latency at paced rates. (Memory per idle connection: bench/idle-memory.mjs, which
// gives each server a fresh process.) Run after `npm run build`:
//   node --expose-gc bench/fanout.mjs [--clients 100,1000,5000] [--repeats 3] [--seconds 3]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { PEERS } from './lib/peers.mjs';
import { ClientPool, next } from './lib/workers.mjs';
import { median, mergeInto, newHistogram, nowNs, quantileMs, round, sleep } from './lib/stats.mjs';

const DEFAULTS = { clients: [100, 1000, 5000], peers: ['nixfleet', 'ws', 'sio'], repeats: 3, seconds: 3, rates: [20, 100], deliveries: 200_000, perTurn: 50, workers: 2 };

/** Emits `count` messages, `perTurn` per event-loop turn; resolves when all are handed over. */
async function burst(peer, count, perTurn) {
  const pending = [];
  for (let sent = 0; sent < count; ) {
    for (let k = 0; k < perTurn && sent < count; k++, sent++) {
      const result = peer.emit();
      if (result) pending.push(result);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(pending);
}

async function throughput(peer, pool, clients, opts) {
  const each = Math.max(10, Math.round(opts.deliveries / clients));
  await pool.ask('ready', { cmd: 'expect', count: each });
  const done = Promise.all(pool.workers.map((w) => next(w, 'done', 120_000)));
  const cpu0 = process.cpuUsage();
  const t0 = nowNs();
  await burst(peer, each, opts.perTurn);
  const answers = await done;
  const cpu = process.cpuUsage(cpu0);
  const deliveries = each * clients;
  const seconds = (Math.max(...answers.map((a) => a.lastAt)) - t0) / 1e9;
  return { perSecond: deliveries / seconds, cpuUsPerDelivery: (cpu.user + cpu.system) / deliveries };
}

async function latency(peer, pool, clients, rate, seconds) {
  await pool.ask('latency', { cmd: 'latency', on: true });
  const count = Math.max(2, Math.round(rate * seconds));
  // Each message is stamped with the time it was due, not the time it went out: a peer whose
  // sends block the loop (a plain ws loop, Socket.IO) would otherwise hide its own backlog from
  // the latency (coordinated omission).
  const startNs = nowNs();
  const cpu0 = process.cpuUsage();
  const pending = [];
  for (let i = 0; i < count; i++) {
    const dueNs = startNs + Math.round((i * 1e9) / rate);
    const waitMs = (dueNs - nowNs()) / 1e6;
    if (waitMs > 0) await sleep(waitMs);
    const result = peer.emit(dueNs);
    if (result) pending.push(result);
  }
  await Promise.all(pending);
  await sleep(300);
  const answers = await pool.ask('latency', { cmd: 'latency', on: false });
  const histogram = newHistogram();
  let received = 0;
  for (const a of answers) {
    mergeInto(histogram, a.histogram);
    received += a.received;
  }
  const serverCpu = process.cpuUsage(cpu0);
  const serverBusy = ((serverCpu.user + serverCpu.system) * 1000) / (nowNs() - startNs);
  return { p50: quantileMs(histogram, 0.5), p99: quantileMs(histogram, 0.99), complete: received / (count * clients), clientBusy: answers.reduce((sum, a) => sum + a.busy, 0), serverBusy };
}

async function measure(peerName, clients, opts) {
  const peer = await PEERS[peerName]();
  const pool = await ClientPool.start(opts.workers);
  try {
    await pool.connect(peer.kind, peer.url, peer.headers, clients);
    const runs = [];
    for (let r = 0; r < opts.repeats; r++) runs.push(await throughput(peer, pool, clients, opts));
    const row = {
      peer: peer.name,
      clients,
      'deliveries/s': round(median(runs.map((r) => r.perSecond))),
      'server CPU µs/delivery': round(median(runs.map((r) => r.cpuUsPerDelivery)), 2),
    };
    for (const rate of opts.rates) {
      const l = await latency(peer, pool, clients, rate, opts.seconds);
      row[`p50 ms @${rate}/s`] = round(l.p50, 2);
      row[`p99 ms @${rate}/s`] = round(l.p99, 2);
      // Cores busy while paced (server process; both client processes together): on 2 cores,
      // a sum near 2 means the latency is queueing for CPU.
      row[`cores server/clients @${rate}/s`] = `${round(l.serverBusy, 2)}/${round(l.clientBusy, 2)}`;
      if (l.complete < 0.999) row[`delivered @${rate}/s`] = round(l.complete, 3);
    }
    return row;
  } finally {
    await pool.close();
    await peer.close();
  }
}

export async function run(options = {}) {
  const opts = { ...DEFAULTS, ...options };
  const rows = [];
  for (const clients of opts.clients) {
    for (const peer of opts.peers) rows.push(await measure(peer, clients, opts));
  }
  const ratios = opts.clients.map((clients) => {
    const at = (p) => rows.find((r) => r.clients === clients && r.peer.startsWith(p === 'sio' ? 'Socket.IO' : p === 'ws' ? 'plain ws' : 'nixfleet'));
    const ours = at('nixfleet');
    const ratio = (p) => (ours && at(p) ? round(ours['deliveries/s'] / at(p)['deliveries/s'], 2) : null);
    return { clients, 'nixfleet ÷ plain ws': ratio('ws'), 'nixfleet ÷ Socket.IO': ratio('sio') };
  });
  return { rows, ratios, settings: { perTurn: opts.perTurn, deliveriesPerBurst: opts.deliveries, repeats: opts.repeats, latencySeconds: opts.seconds, workers: opts.workers } };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { clients: { type: 'string' }, repeats: { type: 'string' }, seconds: { type: 'string' }, peers: { type: 'string' } } });
  const result = await run({
    ...(values.clients ? { clients: values.clients.split(',').map(Number) } : {}),
    ...(values.peers ? { peers: values.peers.split(',') } : {}),
    ...(values.repeats ? { repeats: Number(values.repeats) } : {}),
    ...(values.seconds ? { seconds: Number(values.seconds) } : {}),
  });
  console.log('fan-out', JSON.stringify(result.settings));
  console.table(result.rows);
  console.table(result.ratios);
}
