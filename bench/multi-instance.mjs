// Two instances on one PostgreSQL: write throughput through both at once (commits contend for
// the version counter row), and delivery latency from `apply` on instance A to a client of
// instance B. Run after `npm run build`:
//   node bench/multi-instance.mjs [changes] [admin database URL]
import pg from 'pg';
import WebSocket from 'ws';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../dist/server/server.js';

const N = Number(process.argv[2] ?? 4000);
const ADMIN_URL = process.argv[3] ?? process.env.NIXFLEET_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const name = `nixfleet_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: ADMIN_URL });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = new URL(ADMIN_URL);
url.pathname = `/${name}`;
const dirs = [];
const start = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nixfleet-bench-'));
  dirs.push(dir);
  return startServer({ listenHost: '127.0.0.1', listenPort: 0, dataDir: dir, databaseUrl: url.toString(), logLevel: 'silent', adminPassword: 'bench password 1234' });
};
const a = await start();
const b = await start();
const { token } = await a.auth.createToken({ name: 'bench', role: 'admin' }, 'bench');

const received = new Map();
const ws = new WebSocket(b.wsUrl, { headers: { authorization: `Bearer ${token}` } });
ws.on('message', (data) => {
  const text = String(data);
  if (text.startsWith('{"type":"delta"')) received.set(JSON.parse(text).version, performance.now());
});
await new Promise((resolve) => ws.once('open', resolve));

const event = (i, who) => ({
  type: 'event',
  event: { id: `ev-${who}-${i}`, timestamp: new Date().toISOString(), category: 'bench', level: 'info', actor: null, host_id: null, action: null, message: `event ${i}`, details: null },
});

// 1. Throughput: both instances apply N/2 changes each, as fast as they accept them.
let t0 = performance.now();
await Promise.all([a, b].map(async (server, who) => {
  const inflight = [];
  for (let i = 0; i < N / 2; i++) {
    inflight.push(server.manager.apply(event(i, who)));
    if (inflight.length >= 200) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
}));
const seconds = (performance.now() - t0) / 1000;
const conflicts = a.manager.stats.conflicts + b.manager.stats.conflicts;

// 2. Latency: 50 changes/s applied on A, received by a client of B.
const latencies = [];
for (let i = 0; i < 200; i++) {
  const sent = performance.now();
  const version = await a.manager.apply(event(i, 'paced'));
  const deadline = Date.now() + 5000;
  while (!received.has(version) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
  latencies.push(received.get(version) - sent);
  await new Promise((resolve) => setTimeout(resolve, 20));
}
latencies.sort((x, y) => x - y);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(1);

console.table([
  { measure: 'writes through 2 instances at once (apply, durable commit)', value: `${Math.round(N / seconds)} changes/s`, detail: `${N} changes, ${a.manager.stats.commits + b.manager.stats.commits} commits, ${conflicts} lost races re-staged` },
  { measure: 'delivery latency apply on A → client of B (50/s)', value: `p50 ${pct(50)} ms, p99 ${pct(99)} ms`, detail: 'LISTEN/NOTIFY, then the change log read by B' },
]);

ws.close();
await a.close();
await b.close();
await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
await admin.end();
for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
