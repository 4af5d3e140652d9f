// kill -9 at random points of the write path (NIXFLEET_FAULT_CRASH: before_commit, after_commit,
// mid_broadcast) and SIGTERM, over one data directory, with 5 recording clients across every
// restart: Durability (every acknowledged change at its version, version never behind what a
// client saw, same epoch), the history invariants against the change log, and convergence.
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_FILE } from '../../src/server/store/sqlite-store.js';
import { api } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { spawnServer, type ServerProcess } from '../support/server-process.js';
import { tempDir } from '../support/test-server.js';
import { Fleet } from './fleet.js';
import { checkConvergence, checkDurability, checkHistory, lostAcknowledged, type Oracle, type Violation } from './invariants.js';
import { FaultSummary, scaled } from './summary.js';

const BEACON_MS = 100;
const CLIENT = { beaconIntervalMs: BEACON_MS, backoffBaseMs: 50, backoffCapMs: 250, silenceTimeoutMs: 600, resyncTimeoutMs: 500 };
const LIMIT_MS = 5000;
const POINTS = [
  ['before_commit', 0.05],
  ['after_commit', 0.05],
  ['mid_broadcast', 0.02],
] as const;

const summary = new FaultSummary('crash');
const dataDir = tempDir('nixfleet-crash-');
const oracle: Oracle = { changes: new Map(), states: new Map() };
let port = 0;
let auth: Record<string, string> = {};
let fleet: Fleet;

beforeAll(async () => {
  port = await freePort();
  fleet = new Fleet({ auth: () => auth, client: CLIENT });
});

afterAll(() => {
  for (const c of fleet.all) {
    summary.violations.push(...checkHistory(c.history, oracle));
    summary.addClientStats(c.sync.stats);
  }
  fleet.close();
  summary.clients = fleet.all.length;
  summary.print();
  rmSync(dataDir, { recursive: true, force: true });
  expect(summary.violations).toEqual([]);
});

/** Reads epoch, version and the change log from a copy of the store, as a restart would find it. */
function readStore(): { epoch: string; version: number; log: Map<number, string> } {
  const copy = tempDir('nixfleet-crash-copy-');
  try {
    for (const suffix of ['', '-wal']) if (existsSync(join(dataDir, DATABASE_FILE + suffix))) copyFileSync(join(dataDir, DATABASE_FILE + suffix), join(copy, DATABASE_FILE + suffix));
    const db = new Database(join(copy, DATABASE_FILE));
    const meta = db.prepare('SELECT epoch, version FROM store_meta WHERE id = 1').get() as { epoch: string; version: number };
    const log = new Map((db.prepare('SELECT version, change FROM changes').all() as Array<{ version: number; change: string }>).map((r) => [r.version, r.change]));
    db.close();
    return { ...meta, log };
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

async function start(env: Record<string, string> = {}): Promise<ServerProcess> {
  const proc = await spawnServer({ NIXFLEET_DATA_DIR: dataDir, NIXFLEET_LISTEN: `127.0.0.1:${port}`, NIXFLEET_SYNC_BEACON_INTERVAL: `${BEACON_MS}ms`, NIXFLEET_LOG_LEVEL: 'error', ...env });
  auth = proc.authHeaders;
  if (fleet.clients.length === 0) fleet.add(proc.wsUrl, 5);
  return proc;
}

/** Waits for every client to hold the server's state; records the times. */
async function converge(proc: ServerProcess, since: number): Promise<Violation[]> {
  const body = (await api(proc.url, proc.token).get('/api/state')).body;
  const results = await fleet.converge({ epoch: body.epoch, version: body.version, stateJson: JSON.stringify(body.payload) }, since, LIMIT_MS, { beaconMs: BEACON_MS, backoffCapMs: CLIENT.backoffCapMs });
  for (const r of results) {
    if (r.ms === null) continue;
    summary.convergeMs.push(r.ms);
    if (r.ms > r.boundMs + 50) summary.overSpecBound++;
  }
  return checkConvergence(results, LIMIT_MS);
}

/** Writes events from `writers` concurrent callers until the process dies; returns what was acknowledged. */
async function writeUntilDeath(proc: ServerProcess, tag: string, writers = 4): Promise<Array<{ version: number; changeJson: string }>> {
  const acks: Array<{ version: number; changeJson: string }> = [];
  let dead = false;
  void proc.exited.then(() => (dead = true));
  const http = api(proc.url, proc.token);
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; !dead; i++) {
        try {
          const res = await http.post('/api/events', { level: 'info', category: 'crash', message: `${tag}-w${w}-${i}` });
          if (res.status === 201) acks.push({ version: res.body.version, changeJson: JSON.stringify({ type: 'event', event: res.body.event }) });
        } catch {
          return; // refused or reset: the process is gone
        }
      }
    }),
  );
  return acks;
}

/** After the process ended: check durability against the store, then restart and converge. */
async function afterDeath(acks: Array<{ version: number; changeJson: string }>, epochBefore: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const seenVersion = Math.max(...fleet.clients.filter((c) => c.sync.epoch === epochBefore).map((c) => c.sync.version));
  const stored = readStore();
  for (const [v, change] of stored.log) oracle.changes.set(`${stored.epoch}:${v}`, change);
  const durability = checkDurability({ acknowledged: acks, epochBefore, seenVersion, after: stored, log: stored.log });
  summary.acknowledged += acks.length;
  summary.lostAcknowledged += lostAcknowledged(durability);
  const proc = await start(env);
  const since = Date.now();
  const health = (await api(proc.url, proc.token).get('/healthz')).body;
  if (health.epoch !== stored.epoch || health.version !== stored.version) durability.push({ invariant: 'Durability', client: 'server', message: `restart loaded v${health.version} of ${health.epoch}, the store holds v${stored.version} of ${stored.epoch}` });
  summary.violations.push(...durability, ...(await converge(proc, since)));
  expect(durability).toEqual([]);
  return proc;
}

describe('crash durability', () => {
  it(`kill -9 at random points of the write path, ${scaled(50)} cycles`, { timeout: 30 * 60_000 }, async () => {
    const armed = (cycle: number) => {
      const [point, p] = POINTS[cycle % POINTS.length]!;
      return { NIXFLEET_FAULT_CRASH: `${point}:${p}` };
    };
    let proc = await start(armed(0));
    summary.violations.push(...(await converge(proc, Date.now())));
    for (let cycle = 0; cycle < scaled(50); cycle++) {
      const epoch = (await api(proc.url, proc.token).get('/healthz')).body.epoch as string;
      const watchdog = setTimeout(() => void proc.kill('SIGKILL'), 8000); // the hook should fire long before
      const acks = await writeUntilDeath(proc, `c${cycle}`);
      clearTimeout(watchdog);
      const how = await proc.exited;
      // Evidence that the crash cut a broadcast short: the clients saw different last versions.
      if (new Set(fleet.clients.map((c) => c.sync.version)).size > 1) summary.extra.crashesWithClientsSplit = Number(summary.extra.crashesWithClientsSplit ?? 0) + 1;
      summary.fault(how === 'SIGKILL' ? `kill -9 ${POINTS[cycle % POINTS.length]![0]}` : `exit ${how}`);
      summary.schedules++;
      // The restart is armed for the next cycle: the hook only fires on writes, made after the checks.
      proc = await afterDeath(acks, epoch, cycle + 1 < scaled(50) ? armed(cycle + 1) : {});
    }
    expect(await proc.kill('SIGTERM')).toBe(0);
  });

  it(`SIGTERM under write load and restart, ${scaled(10)} cycles`, { timeout: 10 * 60_000 }, async () => {
    for (let cycle = 0; cycle < scaled(10); cycle++) {
      const proc = await start();
      const epoch = (await api(proc.url, proc.token).get('/healthz')).body.epoch as string;
      summary.violations.push(...(await converge(proc, Date.now())));
      const writing = writeUntilDeath(proc, `t${cycle}`, 2);
      await new Promise((resolve) => setTimeout(resolve, 100 + 50 * (cycle % 4)));
      expect(await proc.kill('SIGTERM')).toBe(0);
      summary.fault('SIGTERM');
      summary.schedules++;
      const acks = await writing;
      await (await afterDeath(acks, epoch)).kill('SIGTERM');
    }
  });
});
