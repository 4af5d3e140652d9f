// Epoch, version and state across restarts, crashes and broken stores: in-process restarts for
// byte-level comparisons, real child processes for kill -9, SIGTERM and exit codes.
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { hostDetailOf } from '../src/protocol/fleet-state.js';
import type { Pipeline } from '../src/protocol/schema.js';
import { DATABASE_FILE } from '../src/server/store/sqlite-store.js';
import { api } from './support/http.js';
import { until } from './support/until.js';
import { runServerToExit, spawnServer, type ServerProcess } from './support/server-process.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { startTestServer, tempDir, type TestServer } from './support/test-server.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function scratchDir(): string {
  const dir = tempDir();
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function serverOn(dataDir: string, overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const server = await startTestServer({ dataDir, ...overrides });
  cleanups.push(() => server.dispose());
  return server;
}

async function processOn(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const proc = await spawnServer({ NIXFLEET_DATA_DIR: dataDir, ...env });
  cleanups.push(async () => void (await proc.kill('SIGKILL')));
  return proc;
}

/** Hosts, a command with more output than the tail keeps, a pipeline and events. */
async function populate(target: { url: string; token: string }): Promise<{ commandId: string; output: string }> {
  const http = api(target.url, target.token);
  await http.addHost('web-1', { host_type: 'nixos', agent_version: '2.1.0' });
  await http.addHost('mac-1', { host_type: 'macos' });
  await http.patch('/api/hosts/web-1', { status: 'online', compartments: { git: { status: 'ok', message: 'up to date', checked_at: '2026-01-01T00:00:00.000Z' } } });
  const command = (await http.post('/api/commands', { host_id: 'web-1', op: 'pull-switch' })).body.command.id as string;
  let output = '';
  for (let i = 0; i < 30; i++) {
    const chunk = `building derivation ${i} ✓ ${'#'.repeat(40)}\n`;
    output += chunk;
    expect((await http.post(`/api/commands/${command}/output`, { output: chunk })).status).toBe(200);
  }
  await http.post(`/api/commands/${command}/finish`, { status: 'success', exit_code: 0 });
  const pipeline = (await http.post('/api/pipelines', { name: 'do-all', hosts: ['web-1', 'mac-1'], stages: ['pull', 'switch', 'test'] })).body.pipeline.id as string;
  // The server runs it: web-1 gets its pull (it waits for an agent), mac-1 has none and is dropped.
  await until('the pipeline took its first steps', async () => {
    const state = (await http.get('/api/state')).body.payload;
    const running = state.pipelines.find((p: Pipeline) => p.id === pipeline) as Pipeline;
    return hostDetailOf(running, 'web-1').steps.length === 1 && running.host_status['mac-1'] === 'skipped';
  });
  for (let i = 0; i < 8; i++) await http.post('/api/events', { level: 'info', category: 'test', message: `event ${i}`, details: { i } });
  return { commandId: command, output };
}

describe('restart on the same store', () => {
  it('keeps epoch and version and serves a byte-identical full state', async () => {
    const dir = scratchDir();
    const first = await serverOn(dir, { limits: { events: 5, commands: 50, pipelines: 20, output_tail: 256 } });
    await populate(first);
    const before = await api(first.url, first.token).get('/api/state');
    const raw = JSON.stringify(before.body);
    await first.close();

    const second = await serverOn(dir, { limits: { events: 5, commands: 50, pipelines: 20, output_tail: 256 } });
    const after = await api(second.url, second.token).get('/api/state');
    expect(after.body.epoch).toBe(before.body.epoch);
    expect(after.body.version).toBe(before.body.version);
    expect(JSON.stringify(after.body)).toBe(raw);
    // And the first change after the restart continues the counter.
    const res = await api(second.url, second.token).post('/api/events', { level: 'info', category: 'test', message: 'after restart' });
    expect(res.body.version).toBe(before.body.version + 1);
  });

  it('rebuilds the same state from a snapshot plus the change log after it', async () => {
    const dir = scratchDir();
    const first = await serverOn(dir, { snapshotEvery: 7 });
    await populate(first);
    const before = JSON.stringify((await api(first.url, first.token).get('/api/state')).body);
    // Simulate a crash: no final snapshot is written by close when the process dies, so copy the
    // database as it was before close() (WAL included) and open that copy.
    const crashDir = scratchDir();
    // Both files must be there: without the WAL the copy would be an older database, and the
    // test would quietly check another scenario.
    for (const suffix of ['', '-wal']) copyFileSync(join(dir, DATABASE_FILE + suffix), join(crashDir, DATABASE_FILE + suffix));
    await first.close();
    const db = new Database(join(crashDir, DATABASE_FILE), { readonly: true });
    const snapshotVersion = (db.prepare('SELECT max(version) AS v FROM snapshots').get() as { v: number }).v;
    db.close();
    expect(snapshotVersion).toBeGreaterThan(0);
    const second = await serverOn(crashDir, { snapshotEvery: 7 });
    expect(second.manager.version).toBeGreaterThan(snapshotVersion);
    expect(JSON.stringify((await api(second.url, second.token).get('/api/state')).body)).toBe(before);
  });

  it('applies new trimming limits as one versioned change, never by rewriting history', async () => {
    const dir = scratchDir();
    const first = await serverOn(dir);
    await populate(first);
    const version = first.manager.version;
    await first.close();
    const second = await serverOn(dir, { limits: { events: 3, commands: 50, pipelines: 20, output_tail: 100 } });
    expect(second.manager.version).toBe(version + 1);
    const state = (await api(second.url, second.token).get('/api/state')).body.payload;
    expect(state.events).toHaveLength(3);
    expect(state.limits).toEqual({ events: 3, commands: 50, pipelines: 20, output_tail: 100 });
    for (const command of state.commands) expect(command.output.length).toBeLessThanOrEqual(100);
  });

  it('serves the whole command output, beyond the tail kept in the state, after a restart too', async () => {
    const dir = scratchDir();
    const first = await serverOn(dir, { limits: { events: 100, commands: 50, pipelines: 20, output_tail: 64 } });
    const { commandId, output } = await populate(first);
    const inState = (await api(first.url, first.token).get('/api/state')).body.payload.commands.find((c: any) => c.id === commandId);
    expect(inState.output).toBe(output.slice(-64));
    expect(inState.output_size).toBe(output.length);
    await first.close();
    const second = await serverOn(dir, { limits: { events: 100, commands: 50, pipelines: 20, output_tail: 64 } });
    const log = await api(second.url, second.token).get(`/api/commands/${commandId}/output`);
    expect(log.status).toBe(200);
    expect(log.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(log.body).toBe(output);
  });
});

describe('a new, wiped or replaced store', () => {
  it('gets a new epoch and starts at version 0', async () => {
    const dir = scratchDir();
    const first = await serverOn(dir);
    await api(first.url, first.token).addHost('one');
    const oldEpoch = first.manager.epoch;
    await first.close();
    rmSync(dir, { recursive: true, force: true });
    const second = await serverOn(dir);
    expect(second.manager.epoch).not.toBe(oldEpoch);
    expect(second.manager.version).toBe(0);
    const other = await serverOn(scratchDir());
    expect(other.manager.epoch).not.toBe(second.manager.epoch);
  });

  it('tells a connected client of the new epoch on its next connection', async () => {
    const dir = scratchDir();
    const first = await serverOn(dir);
    await api(first.url, first.token).addHost('one');
    const client = await SyncRecorder.connect(first.wsUrl, { headers: first.authHeaders });
    await client.waitForVersion(1);
    await first.close();
    rmSync(dir, { recursive: true, force: true });
    const second = await serverOn(dir, { listenPort: Number(new URL(first.url).port) });
    const again = await SyncRecorder.connect(second.wsUrl, { headers: second.authHeaders });
    await again.waitForVersion(0);
    expect(again.epoch).not.toBe(client.epoch);
    again.close();
  });
});

describe('a store that cannot be read', () => {
  it('exits non-zero with a clear message and leaves a corrupt file untouched', async () => {
    const dir = scratchDir();
    const garbage = Buffer.from('this is not an sqlite database, it is someone\'s precious data\n'.repeat(200));
    writeFileSync(join(dir, DATABASE_FILE), garbage);
    const result = await runServerToExit({ NIXFLEET_DATA_DIR: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot start: store_unreadable: .*nixfleet\.db/);
    expect(readFileSync(join(dir, DATABASE_FILE)).equals(garbage)).toBe(true);
  });

  it('refuses an SQLite database that is not a NixFleet store', async () => {
    const dir = scratchDir();
    const db = new Database(join(dir, DATABASE_FILE));
    db.exec('CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER); INSERT INTO accounts VALUES (1, 100);');
    db.close();
    const result = await runServerToExit({ NIXFLEET_DATA_DIR: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/not a NixFleet store/);
    const check = new Database(join(dir, DATABASE_FILE), { readonly: true });
    expect(check.prepare('SELECT balance FROM accounts').get()).toEqual({ balance: 100 });
    check.close();
  });

  it('refuses a second server on the same data directory', async () => {
    const dir = scratchDir();
    const running = await processOn(dir);
    const result = await runServerToExit({ NIXFLEET_DATA_DIR: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/store_locked: .*in use by another process/);
    expect((await api(running.url, running.token).get('/healthz')).status).toBe(200);
  });

  it('exits non-zero naming the variable on bad configuration', async () => {
    const result = await runServerToExit({ NIXFLEET_DATA_DIR: scratchDir(), NIXFLEET_SYNC_BEACON_INTERVAL: 'soon' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/NIXFLEET_SYNC_BEACON_INTERVAL="soon": expected a duration/);
  });
});

describe('crash durability', () => {
  it('loses no acknowledged change to kill -9 under concurrent write load', async () => {
    const dir = scratchDir();
    for (let cycle = 0; cycle < 3; cycle++) {
      const proc = await processOn(dir);
      const epoch = (await api(proc.url, proc.token).get('/healthz')).body.epoch as string;
      const watcher = await SyncRecorder.connect(proc.wsUrl, { headers: proc.authHeaders });
      const acknowledged: Array<{ id: string; version: number }> = [];
      let stop = false;
      const writers = Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const id = `c${cycle}-w${w}-${i}`;
          try {
            const res = await api(proc.url, proc.token).post('/api/hosts', { hostname: id, id });
            if (res.status === 201) acknowledged.push({ id, version: res.body.version });
          } catch {
            return; // connection refused or reset: the process is gone
          }
        }
      });
      // Killed once the load is well under way (later in each cycle), however slow the machine:
      // a fixed delay acknowledged too few writes on a loaded CI run.
      await until('writes acknowledged under load', () => acknowledged.length >= 12 + cycle * 8, 20_000, 5);
      await proc.kill('SIGKILL');
      stop = true;
      await Promise.all(writers);
      watcher.close();
      expect(acknowledged.length).toBeGreaterThanOrEqual(12 + cycle * 8);

      const restarted = await processOn(dir);
      const state = (await api(restarted.url, restarted.token).get('/api/state')).body;
      expect(state.epoch).toBe(epoch);
      const ids = new Set(state.payload.hosts.map((h: { id: string }) => h.id));
      const lost = acknowledged.filter((a) => !ids.has(a.id));
      expect(lost).toEqual([]);
      expect(state.version).toBeGreaterThanOrEqual(Math.max(...acknowledged.map((a) => a.version)));
      expect(state.version).toBeGreaterThanOrEqual(watcher.version);
      await restarted.kill('SIGKILL');
    }
  });
});

describe('graceful shutdown', () => {
  it('closes sockets with 1001 on SIGTERM, exits 0 and keeps every change', async () => {
    const dir = scratchDir();
    const proc = await processOn(dir);
    await populate(proc);
    const before = (await api(proc.url, proc.token).get('/api/state')).body;
    const clients = await Promise.all([SyncRecorder.connect(proc.wsUrl, { headers: proc.authHeaders }), SyncRecorder.connect(proc.wsUrl, { headers: proc.authHeaders })]);
    await Promise.all(clients.map((c) => c.waitForVersion(before.version)));
    expect(await proc.kill('SIGTERM')).toBe(0);
    for (const client of clients) {
      await client.waitForClose();
      expect(client.closeCode).toBe(1001);
    }
    const again = await processOn(dir);
    const after = (await api(again.url, again.token).get('/api/state')).body;
    expect(JSON.stringify(after)).toBe(JSON.stringify(before));
  });
});
