// Write throughput of the real path: StateManager.apply → SQLite commit → publish, with
// FULL and NORMAL durability, sequential (one change per commit) and concurrent (group
// commit), plus the HTTP API with concurrent callers. Run after `npm run build`:
//   node bench/writes.mjs [changes]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateManager } from '../dist/server/state-manager.js';
import { SqliteStore } from '../dist/server/store/sqlite-store.js';
import { startServer } from '../dist/server/server.js';
import { DEFAULT_CONFIG } from '../dist/server/config.js';

const N = Number(process.argv[2] ?? 20_000);
const event = (i) => ({
  type: 'event',
  event: { id: `ev-${i}`, timestamp: '2026-01-01T00:00:00.000Z', category: 'bench', level: 'info', actor: null, host_id: null, action: null, message: `event ${i}`, details: null },
});

async function applyRun(synchronous, concurrent) {
  const dir = mkdtempSync(join(tmpdir(), 'nixfleet-bench-'));
  const manager = await StateManager.open(new SqliteStore({ dataDir: dir, synchronous }), { limits: DEFAULT_CONFIG.limits });
  const start = process.hrtime.bigint();
  if (concurrent) {
    const inflight = [];
    for (let i = 0; i < N; i++) inflight.push(manager.apply(event(i)));
    await Promise.all(inflight);
  } else {
    for (let i = 0; i < N; i++) await manager.apply(event(i));
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await manager.close();
  rmSync(dir, { recursive: true, force: true });
  return { path: `apply ${concurrent ? 'concurrent (group commit)' : 'sequential (1 change/commit)'}`, synchronous, changes: N, perSecond: Math.round(N / seconds), commits: manager.stats.commits };
}

async function httpRun(synchronous, callers) {
  const dir = mkdtempSync(join(tmpdir(), 'nixfleet-bench-'));
  const server = await startServer({ listenHost: '127.0.0.1', listenPort: 0, dataDir: dir, sqliteSynchronous: synchronous, logLevel: 'silent' });
  const total = Math.min(N, 5000);
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: callers }, async () => {
    while (next < total) {
      const i = next++;
      const res = await fetch(`${server.url}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ level: 'info', category: 'bench', message: `event ${i}` }) });
      if (res.status !== 201) throw new Error(`status ${res.status}`);
      await res.text();
    }
  }));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  return { path: `HTTP POST /api/events, ${callers} callers`, synchronous, changes: total, perSecond: Math.round(total / seconds), commits: server.manager.stats.commits };
}

const rows = [];
for (const synchronous of ['FULL', 'NORMAL']) {
  rows.push(await applyRun(synchronous, false));
  rows.push(await applyRun(synchronous, true));
  rows.push(await httpRun(synchronous, 32));
}
console.table(rows);
