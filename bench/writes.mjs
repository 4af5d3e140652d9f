// Write throughput of the real path: StateManager.apply → SQLite commit → publish, with FULL and
// NORMAL durability, sequential (one change per commit) and concurrent (group commit), plus the
// authenticated HTTP API with concurrent callers. Run after `npm run build`:
//   node bench/writes.mjs [--changes 20000] [--repeats 3]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { StateManager } from '../dist/server/state-manager.js';
import { SqliteStore } from '../dist/server/store/sqlite-store.js';
import { startServer } from '../dist/server/server.js';
import { DEFAULT_CONFIG } from '../dist/server/config.js';
import { median, round, withTempDir } from './lib/stats.mjs';

const event = (i) => ({
  type: 'event',
  event: { id: `ev-${i}`, timestamp: '2026-01-01T00:00:00.000Z', category: 'bench', level: 'info', actor: null, host_id: null, action: null, message: `event ${i}`, details: null },
});

async function applyRun(synchronous, concurrent, n) {
  const tmp = withTempDir();
  const manager = await StateManager.open(new SqliteStore({ dataDir: tmp.dir, synchronous }), { limits: DEFAULT_CONFIG.limits });
  const start = process.hrtime.bigint();
  if (concurrent) {
    const inflight = [];
    for (let i = 0; i < n; i++) inflight.push(manager.apply(event(i)));
    await Promise.all(inflight);
  } else {
    for (let i = 0; i < n; i++) await manager.apply(event(i));
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await manager.close();
  tmp.remove();
  return { perSecond: n / seconds, commits: manager.stats.commits };
}

async function httpRun(synchronous, callers, n) {
  const tmp = withTempDir();
  const server = await startServer({ listenHost: '127.0.0.1', listenPort: 0, dataDir: tmp.dir, sqliteSynchronous: synchronous, logLevel: 'silent' });
  const { token } = await server.auth.createToken({ name: 'bench', role: 'admin' }, 'bench');
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: callers }, async () => {
    while (next < n) {
      const i = next++;
      const res = await fetch(`${server.url}/api/events`, { method: 'POST', headers, body: JSON.stringify({ level: 'info', category: 'bench', message: `event ${i}` }) });
      if (res.status !== 201) throw new Error(`status ${res.status}: ${await res.text()}`);
      await res.text();
    }
  }));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const commits = server.manager.stats.commits;
  await server.close();
  tmp.remove();
  return { perSecond: n / seconds, commits };
}

export async function run({ changes = 20_000, httpChanges = 5000, repeats = 3, callers = 32 } = {}) {
  const cases = [];
  for (const synchronous of ['FULL', 'NORMAL']) {
    cases.push({ path: 'apply, sequential (1 change/commit)', synchronous, n: Math.min(changes, synchronous === 'FULL' ? 5000 : changes), go: (n) => applyRun(synchronous, false, n) });
    cases.push({ path: 'apply, concurrent (group commit)', synchronous, n: changes, go: (n) => applyRun(synchronous, true, n) });
    cases.push({ path: `HTTP POST /api/events, ${callers} callers in-process`, synchronous, n: httpChanges, go: (n) => httpRun(synchronous, callers, n) });
  }
  const rows = [];
  for (const c of cases) {
    const runs = [];
    for (let r = 0; r < repeats; r++) runs.push(await c.go(c.n));
    rows.push({ path: c.path, synchronous: c.synchronous, changes: c.n, 'changes/s': round(median(runs.map((x) => x.perSecond))), commits: runs[0].commits });
  }
  return { rows };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { changes: { type: 'string' }, repeats: { type: 'string' } } });
  const result = await run({ ...(values.changes ? { changes: Number(values.changes) } : {}), ...(values.repeats ? { repeats: Number(values.repeats) } : {}) });
  console.log('writes (median of repeats)');
  console.table(result.rows);
}
