// Reconnect storm: N clients (in child processes) connected to a state of H hosts all drop and
// reconnect at once, after a new version. Reports time until every client has its init, full-state
// encodings during the storm (must be 1 per version) and peak RSS. Run after `npm run build`:
//   node --expose-gc bench/storm.mjs [--clients 1000] [--hosts 10000] [--repeats 3]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { startNixfleet } from './lib/peers.mjs';
import { heartbeat, seedHosts } from './lib/fleet.mjs';
import { ClientPool } from './lib/workers.mjs';
import { median, nowNs, round, settledRss } from './lib/stats.mjs';

async function storm(peer, pool, hosts) {
  const manager = peer.server.manager;
  await manager.apply(heartbeat(hosts)); // a new version: the storm must encode it exactly once
  const encodings0 = manager.stats.fullStateEncodings;
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
  const inits = answers.reduce((sum, a) => sum + a.inits, 0);
  return {
    seconds: (Math.max(...answers.map((a) => a.doneAt)) - t0) / 1e9,
    encodings: manager.stats.fullStateEncodings - encodings0,
    versions: manager.version - version0 + 1,
    inits,
    serverCpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakMiB: peak / 2 ** 20,
    growthMiB: (peak - rss0) / 2 ** 20,
  };
}

export async function run({ clients = 1000, hosts = 10_000, repeats = 3, workers = 2 } = {}) {
  const peer = await startNixfleet();
  const pool = await ClientPool.start(workers);
  try {
    await seedHosts(peer.server.manager, hosts);
    const stateMiB = Buffer.byteLength(peer.server.manager.stateJson()) / 2 ** 20;
    await pool.connect(peer.kind, peer.url, peer.headers, clients);
    await settledRss();
    const runs = [];
    for (let r = 0; r < repeats; r++) runs.push(await storm(peer, pool, hosts));
    return {
      rows: [{
        clients,
        hosts,
        'state MiB': round(stateMiB, 2),
        'all live s (median)': round(median(runs.map((r) => r.seconds)), 3),
        'all live s (max)': round(Math.max(...runs.map((r) => r.seconds)), 3),
        'server CPU s (median)': round(median(runs.map((r) => r.serverCpuSeconds)), 2),
        'inits received': runs.map((r) => r.inits).join('/'),
        'full-state encodings / versions': runs.map((r) => `${r.encodings}/${r.versions}`).join(' '),
        'peak RSS MiB': round(Math.max(...runs.map((r) => r.peakMiB)), 0),
        'RSS growth MiB': round(median(runs.map((r) => r.growthMiB)), 0),
      }],
      runs,
    };
  } finally {
    await pool.close();
    await peer.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { clients: { type: 'string' }, hosts: { type: 'string' }, repeats: { type: 'string' } } });
  const result = await run({ ...(values.clients ? { clients: Number(values.clients) } : {}), ...(values.hosts ? { hosts: Number(values.hosts) } : {}), ...(values.repeats ? { repeats: Number(values.repeats) } : {}) });
  console.log('reconnect storm (FULL durability)');
  console.table(result.rows);
}
