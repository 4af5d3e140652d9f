// Reconnect storm: N clients (in child processes) connected to a state of H hosts all drop and
// reconnect at once, after a new version. Reports time until every client has its init, full-state
// encodings and deflations during the storm (1 per version), bytes on the wire and peak RSS.
//
// Each mode is one server and one kind of client:
//   deflate+lean  snapshots deflated; lean receivers (count bytes, decode 1 in 100): server-bound
//   deflate+ws    snapshots deflated; `ws` clients inflate and UTF-8-check every init
//   plain+lean    NIXFLEET_WS_DEFLATE=off; lean receivers
//   plain+ws      NIXFLEET_WS_DEFLATE=off; `ws` clients (the figure before deflate)
// On one machine the clients share the cores with the server, so the `ws` modes add 1000 clients'
// decoding to the server's time; a browser does that work on its own machine.
// Run after `npm run build`:
//   node --expose-gc bench/storm.mjs [--clients 1000] [--hosts 10000] [--repeats 3] [--modes deflate+lean,deflate+ws]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { startNixfleet } from './lib/peers.mjs';
import { heartbeat, seedHosts } from './lib/fleet.mjs';
import { ClientPool } from './lib/workers.mjs';
import { median, nowNs, round, settledRss } from './lib/stats.mjs';

export const MODES = {
  'deflate+lean': { deflate: true, kind: 'lean' },
  'deflate+ws': { deflate: true, kind: 'nixfleet' },
  'plain+lean': { deflate: false, kind: 'lean' },
  'plain+ws': { deflate: false, kind: 'nixfleet' },
};

async function storm(peer, pool, hosts) {
  const { manager, hub } = peer.server;
  await manager.apply(heartbeat(hosts)); // a new version: the storm must encode it exactly once
  const encodings0 = manager.stats.fullStateEncodings;
  const deflations0 = hub.stats.snapshotDeflations;
  const version0 = manager.version;
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const cpu0 = process.cpuUsage();
  const t0 = nowNs();
  const answers = await pool.ask('reconnected', { cmd: 'reconnect' }, 120_000);
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpu0);
  peak = Math.max(peak, process.memoryUsage().rss);
  const sum = (key) => answers.reduce((total, a) => total + (a[key] ?? 0), 0);
  const versions = new Set(answers.flatMap((a) => a.samples.versions));
  if ([...versions].some((v) => v !== manager.version)) throw new Error(`sampled inits at versions ${[...versions]}, expected ${manager.version}`);
  return {
    seconds: (Math.max(...answers.map((a) => a.doneAt)) - t0) / 1e9,
    encodings: manager.stats.fullStateEncodings - encodings0,
    deflations: hub.stats.snapshotDeflations - deflations0,
    versions: manager.version - version0 + 1,
    inits: sum('inits'),
    initBytes: sum('initBytes'),
    compressedInits: sum('compressedInits'),
    verified: answers.reduce((total, a) => total + a.samples.verified, 0),
    serverCpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakMiB: peak / 2 ** 20,
    growthMiB: (peak - rss0) / 2 ** 20,
  };
}

async function runMode(mode, { clients, hosts, repeats, workers }) {
  const { deflate, kind } = MODES[mode];
  const peer = await startNixfleet({ deflateSnapshots: deflate });
  const pool = await ClientPool.start(workers);
  try {
    await seedHosts(peer.server.manager, hosts);
    const stateMiB = Buffer.byteLength(peer.server.manager.stateJson()) / 2 ** 20;
    await pool.connect(kind, peer.url, peer.headers, clients);
    await settledRss();
    const runs = [];
    for (let r = 0; r < repeats; r++) runs.push(await storm(peer, pool, hosts));
    const last = runs.at(-1);
    return {
      row: {
        mode,
        clients,
        hosts,
        'state MiB': round(stateMiB, 2),
        // Counted by the lean receivers only (a ws client does not expose its wire bytes).
        'init KiB on the wire': kind === 'lean' ? round(last.initBytes / last.inits / 1024, 1) : '—',
        'all live s (median)': round(median(runs.map((r) => r.seconds)), 3),
        'all live s (max)': round(Math.max(...runs.map((r) => r.seconds)), 3),
        'server CPU s (median)': round(median(runs.map((r) => r.serverCpuSeconds)), 2),
        'inits received': runs.map((r) => r.inits).join('/'),
        'encodings / deflations / versions': runs.map((r) => `${r.encodings}/${r.deflations}/${r.versions}`).join(' '),
        'peak RSS MiB': round(Math.max(...runs.map((r) => r.peakMiB)), 0),
        'RSS growth MiB': round(median(runs.map((r) => r.growthMiB)), 0),
      },
      runs,
    };
  } finally {
    await pool.close();
    await peer.close();
  }
}

export async function run({ clients = 1000, hosts = 10_000, repeats = 3, workers = 2, modes = Object.keys(MODES) } = {}) {
  const results = [];
  for (const mode of modes) {
    if (!MODES[mode]) throw new Error(`unknown mode ${mode}; known: ${Object.keys(MODES).join(', ')}`);
    results.push(await runMode(mode, { clients, hosts, repeats, workers }));
  }
  return { rows: results.map((r) => r.row), runs: results.map((r) => r.runs) };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { clients: { type: 'string' }, hosts: { type: 'string' }, repeats: { type: 'string' }, modes: { type: 'string' } } });
  const result = await run({
    ...(values.clients ? { clients: Number(values.clients) } : {}),
    ...(values.hosts ? { hosts: Number(values.hosts) } : {}),
    ...(values.repeats ? { repeats: Number(values.repeats) } : {}),
    ...(values.modes ? { modes: values.modes.split(',') } : {}),
  });
  console.log('reconnect storm (FULL durability)');
  console.table(result.rows);
}
