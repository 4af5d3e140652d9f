// Agents at scale: N simulated agents (bench/lib/agents-worker.mjs, the Go agent's messages)
// heartbeating every I seconds on one server, with B browsers (StateSync clients, admin token,
// bench/lib/browsers-worker.mjs) folding the state stream. The server runs alone in its own
// process (bench/lib/agent-server.mjs) with the defaults (SQLite, synchronous=FULL, metrics
// published at most every 10 s per host, last_seen every 60 s). After every agent registered
// and a warm-up, a steady window measures:
//   - server CPU (user + system of its process, % of one core);
//   - versioned changes per second published (version counter), and commits per second;
//   - bytes written to storage per second (/proc/<pid>/io write_bytes: WAL, checkpoints,
//     snapshots) and the data directory's growth;
//   - heartbeat → browser latency: a sample of heartbeats carries a new generation
//     `t=<monotonic ns>` (published at once); each browser times its fold of that host_updated.
// Then the heartbeats stop and every browser must hold the server's state (same digest).
// Each case is a fresh server; the default cases are 1000 agents at 5 s, 250 at 5 s and 1000
// at 2.5 s, so the table shows what grows with the fleet and what does not grow with the rate.
// Run after `npm run build`:
//   node bench/agents.mjs [--cases 1000@5,250@5,1000@2.5] [--browsers 100] [--seconds 60] [--warmup 15]
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ClientPool } from './lib/workers.mjs';
import { startServerProcess } from './lib/server-process.mjs';
import { busyCores, machineCpu, mergeInto, newHistogram, nowNs, quantileMs, round, sleep, until } from './lib/stats.mjs';

const AGENTS_WORKER = fileURLToPath(new URL('./lib/agents-worker.mjs', import.meta.url));
const BROWSERS_WORKER = fileURLToPath(new URL('./lib/browsers-worker.mjs', import.meta.url));

export const DEFAULTS = {
  cases: [
    { agents: 1000, intervalMs: 5000 },
    { agents: 250, intervalMs: 5000 },
    { agents: 1000, intervalMs: 2500 },
  ],
  browsers: 100,
  seconds: 60,
  warmupSeconds: 15,
  /** Latency samples: stamped heartbeats per second per 1000 agents (300 in a 60 s window). */
  stampsPerSecond: 5,
  agentWorkers: 2,
  browserWorkers: 2,
  /** Server settings besides the defaults (e.g. { sqliteSynchronous: 'NORMAL' }). */
  server: {},
};

const share = (total, parts, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0);
const hostId = (i) => `host-${String(i).padStart(5, '0')}`;
const sum = (list, key) => list.reduce((total, item) => total + (item[key] ?? 0), 0);

async function runCase({ agents, intervalMs }, opts) {
  const server = await startServerProcess(opts.server);
  const agentPool = await ClientPool.start(Math.min(opts.agentWorkers, agents), AGENTS_WORKER);
  const browserPool = await ClientPool.start(Math.min(opts.browserWorkers, Math.max(1, opts.browsers)), BROWSERS_WORKER);
  let logged = null;
  try {
    const { tokens } = await server.ask({ cmd: 'tokens', hostIds: Array.from({ length: agents }, (_, i) => hostId(i)) }, 'tokens', 120_000);
    // The browsers first: they watch the fleet come up, live.
    const nb = browserPool.workers.length;
    await browserPool.ask('connected', (i) => ({ cmd: 'connect', url: server.wsUrl, token: server.adminToken, count: share(opts.browsers, nb, i) }), 120_000);

    const na = agentPool.workers.length;
    const slices = [];
    for (let i = 0, from = 0; i < na; i++) {
      const n = share(agents, na, i);
      slices.push({ from, list: tokens.slice(from, from + n) });
      from += n;
    }
    const registerStart = nowNs();
    const connected = await agentPool.ask('connected', (i) => ({ cmd: 'connect', url: server.wsUrl, agents: slices[i].list, firstIndex: slices[i].from, intervalMs, parallel: 50 }), 180_000);
    const registerSeconds = (nowNs() - registerStart) / 1e9;
    // Every agent must be registered and online (a mismatch shows in the row; the run goes on).
    const registered = await server.stats();

    await sleep(opts.warmupSeconds * 1000);

    // The steady window.
    const heartbeatsPerSecond = agents / (intervalMs / 1000);
    const probability = Math.min(1, (opts.stampsPerSecond * agents) / 1000 / heartbeatsPerSecond);
    await browserPool.ask('latency', { cmd: 'latency', on: true });
    const before = { stats: await server.stats(true), written: server.writeBytes(), data: server.dataBytes(), at: nowNs(), machine: machineCpu() };
    const stamps0 = sum(await agentPool.ask('sampling', { cmd: 'sample', probability }), 'stamps');
    await sleep(opts.seconds * 1000);
    const stamps1 = sum(await agentPool.ask('sampling', { cmd: 'sample', probability: 0 }), 'stamps');
    const after = { stats: await server.stats(), written: server.writeBytes(), data: server.dataBytes(), at: nowNs(), machine: machineCpu() };
    // Stamped heartbeats still on their way reach the browsers.
    await sleep(1000);
    const latency = await browserPool.ask('latency', { cmd: 'latency', on: false });
    const histogram = newHistogram();
    for (const answer of latency) mergeInto(histogram, answer.histogram);
    const deliveries = sum(latency, 'samples');

    // Quiet: every browser must now hold exactly the server's state.
    const stopped = await agentPool.ask('stopped', { cmd: 'stop' });
    let digest = await server.ask({ cmd: 'digest' }, 'digest');
    await until(async () => {
      await sleep(200);
      const again = await server.ask({ cmd: 'digest' }, 'digest');
      const stable = again.version === digest.version;
      digest = again;
      return stable;
    }, 20_000, 'the server to stop changing');
    let views = [];
    await until(async () => {
      views = (await browserPool.ask('digest', { cmd: 'digest' })).flatMap((answer) => answer.clients);
      return views.every((view) => view.version === digest.version);
    }, 20_000, `every browser at version ${digest.version}`, 100).catch(() => {});
    // Beating again, so that no agent is closed as silent while everything shuts down.
    await agentPool.ask('resumed', { cmd: 'resume' });
    const converged = views.filter((view) => view.version === digest.version && view.digest === digest.digest && view.epoch === digest.epoch && view.status === 'live').length;
    const final = await server.stats();
    const unexpectedCloses = {};
    for (const answer of stopped) for (const [code, n] of Object.entries(answer.unexpectedCloses)) unexpectedCloses[code] = (unexpectedCloses[code] ?? 0) + n;

    const seconds = (after.at - before.at) / 1e9;
    const d = (path) => path(after.stats) - path(before.stats);
    const cpuSeconds = (d((s) => s.cpu.user) + d((s) => s.cpu.system)) / 1e6;
    const changes = d((s) => s.version);
    const written = after.written === null ? null : after.written - before.written;
    const browserBusy = latency.map((a) => a.busy);
    return {
      row: {
        agents,
        'heartbeat s': intervalMs / 1000,
        browsers: opts.browsers,
        'heartbeats/s': round(d((s) => s.agents.heartbeats) / seconds, 1),
        'server CPU % of a core': round((cpuSeconds / seconds) * 100, 1),
        'changes/s': round(changes / seconds, 1),
        'changes/s per 1000 agents': round((changes / seconds / agents) * 1000, 1),
        'changes per heartbeat': round(changes / d((s) => s.agents.heartbeats), 3),
        'commits/s': round(d((s) => s.manager.commits) / seconds, 1),
        'disk KiB/s': written === null ? null : round(written / seconds / 1024, 1),
        'disk bytes/change': written === null ? null : round(written / changes, 0),
        'data dir growth KiB/s': round((after.data - before.data) / seconds / 1024, 1),
        'server loop delay p99 / max ms': `${round(after.stats.loopDelayMs.p99, 1)} / ${round(after.stats.loopDelayMs.max, 1)}`,
        'p50 ms': round(quantileMs(histogram, 0.5), 2),
        'p99 ms': round(quantileMs(histogram, 0.99), 2),
        'max ms': round(quantileMs(histogram, 1), 2),
        'latency samples (stamps × browsers)': `${deliveries} (${stamps1 - stamps0} × ${opts.browsers})`,
        'registered in s': round(registerSeconds, 2),
        'register → registered ms (p50 / max)': `${round(Math.max(...connected.map((c) => c.registerMs.p50)), 0)} / ${round(Math.max(...connected.map((c) => c.registerMs.max)), 0)}`,
        'agents online': `${registered.online}/${agents}`,
        'browsers converged': `${converged}/${opts.browsers}`,
        // Agents whose session the server closed (4408: it thought them silent), and hosts online at the end.
        'agents closed by the server': Object.entries(unexpectedCloses).map(([code, n]) => `${n}×${code}`).join(' ') || 0,
        'online at end': `${final.online}/${agents}`,
        // The whole machine: server + agents + browsers, and anything else that ran meanwhile.
        'machine busy cores': round(busyCores(before.machine, after.machine), 2),
      },
      detail: {
        window: round(seconds, 1),
        // A snapshot of the whole state is written every 1000 changes (NIXFLEET_SNAPSHOT_EVERY).
        stateKiB: round(digest.stateBytes / 1024, 1),
        snapshotKiBPerSecond: round(((changes / seconds / (opts.server.snapshotEvery ?? 1000)) * digest.stateBytes) / 1024, 1),
        stamps: stamps1 - stamps0,
        deliveries,
        heartbeatChanges: d((s) => s.agents.heartbeatChanges),
        browserCores: browserBusy.map((b) => round(b, 2)),
        browserLoopDelayMs: latency.map((a) => `${round(a.loopDelayMs.p99, 1)} / ${round(a.loopDelayMs.max, 1)}`),
        unexpectedCloses,
        invalidFrames: final.agents.invalidFrames,
        hub: final.hub,
        fullStatesToBrowsers: sum(latency, 'fullStates'),
        browserStatuses: latency.map((a) => a.statuses),
        rss: server.rss(),
        sessionsAtEnd: final.agents.sessions,
        onlineAtEnd: final.online,
      },
    };
  } finally {
    await browserPool.close();
    logged = await server.close();
    await agentPool.close();
    if (logged && (logged.warn || logged.error)) console.warn(`server logged ${logged.warn} warnings, ${logged.error} errors; first:`, logged.first.slice(0, 5));
  }
}

export async function run(options = {}) {
  const opts = { ...DEFAULTS, ...options };
  const rows = [];
  const details = [];
  for (const c of opts.cases) {
    const result = await runCase(c, opts);
    rows.push(result.row);
    details.push(result.detail);
  }
  return { rows, details, settings: { browsers: opts.browsers, seconds: opts.seconds, warmupSeconds: opts.warmupSeconds, stampsPerSecondPer1000: opts.stampsPerSecond } };
}

export function parseCases(text) {
  return text.split(',').map((part) => {
    const [agents, seconds] = part.split('@');
    return { agents: Number(agents), intervalMs: Math.round(Number(seconds ?? 5) * 1000) };
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { cases: { type: 'string' }, browsers: { type: 'string' }, seconds: { type: 'string' }, warmup: { type: 'string' } } });
  const result = await run({
    ...(values.cases ? { cases: parseCases(values.cases) } : {}),
    ...(values.browsers ? { browsers: Number(values.browsers) } : {}),
    ...(values.seconds ? { seconds: Number(values.seconds) } : {}),
    ...(values.warmup ? { warmupSeconds: Number(values.warmup) } : {}),
  });
  console.log('agents', JSON.stringify(result.settings));
  console.table(result.rows);
  console.log(JSON.stringify(result.details, null, 1));
}
