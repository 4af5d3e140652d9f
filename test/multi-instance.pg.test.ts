// Several dashboard instances on one PostgreSQL: one version stream. Clients spread over three
// instances see the same epoch, the same versions and byte-identical deltas while writes go
// through all three at once; a killed instance's clients continue on another; a listener
// connection terminated by the database costs latency, never a delta.
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { StateSync, type WebSocketConstructorLike } from '../src/client/index.js';
import { toFullState } from '../src/protocol/index.js';
import { runAdmin } from '../src/server/admin-cli.js';
import type { PgStore } from '../src/server/store/pg-store.js';
import { withAgents } from './support/go-agent.js';
import { api } from './support/http.js';
import { freshDatabase, pgAvailable, PG_SKIP_REASON, type FreshDatabase } from './support/pg.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { WsFaultProxy } from './support/ws-fault-proxy.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();

async function cluster(size: number): Promise<{ db: FreshDatabase; instances: TestServer[] }> {
  const db = await freshDatabase();
  defer(() => db.drop());
  const instances: TestServer[] = [];
  for (let i = 0; i < size; i++) {
    const server = await startTestServer({ databaseUrl: db.url, beaconIntervalMs: 200 });
    defer(() => server.dispose());
    instances.push(server);
  }
  return { db, instances };
}

const deltas = (r: SyncRecorder) => r.frames.filter((f) => f.message.type === 'delta').map((f) => f.raw);

describe.skipIf(!pgAvailable)('several instances on one PostgreSQL', () => {
  it('serves one version stream: same epoch, versions and byte-identical deltas under concurrent writes through all instances', async () => {
    const { instances } = await cluster(3);
    expect(new Set(instances.map((s) => s.manager.epoch)).size).toBe(1);
    const clients = await Promise.all(instances.flatMap((s) => [0, 1].map(() => SyncRecorder.connect(s.wsUrl, { headers: s.authHeaders }))));
    defer(() => clients.forEach((c) => c.close()));

    // Every instance writes at once; versions are contended on every commit.
    const acknowledged: number[] = [];
    await Promise.all(
      instances.map(async (server, i) => {
        const http = api(server.url, instances[(i + 1) % 3]!.token); // a token minted on another instance
        for (let n = 0; n < 25; n++) {
          const res = await http.post('/api/events', { level: 'info', category: 'load', message: `instance ${i} event ${n}` });
          expect(res.status).toBe(201);
          acknowledged.push(res.body.version);
        }
        await http.addHost(`host-${i}`);
      }),
    );
    const finalVersion = Math.max(...instances.map((s) => s.manager.version));
    expect(finalVersion).toBe(78);
    expect(new Set(acknowledged).size).toBe(acknowledged.length); // no version acknowledged twice

    for (const client of clients) await client.waitForVersion(finalVersion, 10_000);
    for (const client of clients) {
      expect(client.violations).toEqual([]);
      expect(client.deltaVersions).toEqual(Array.from({ length: finalVersion }, (_, i) => i + 1));
      expect(deltas(client)).toEqual(deltas(clients[0]!));
      expect(client.fullState).toEqual(toFullState(instances[0]!.manager.state));
    }
    for (const server of instances) expect(server.manager.stateJson()).toBe(instances[0]!.manager.stateJson());
  });

  it('starts several instances at once on a new database: one migration, one epoch', async () => {
    const db = await freshDatabase();
    defer(() => db.drop());
    const instances = await Promise.all([0, 1, 2].map(() => startTestServer({ databaseUrl: db.url })));
    defer(() => Promise.all(instances.map((s) => s.dispose())));
    // A migration applied twice would fail its CREATE TABLE and the start with it.
    expect(new Set(instances.map((s) => s.manager.epoch)).size).toBe(1);
    expect(instances.map((s) => s.manager.version)).toEqual([0, 0, 0]);
  });

  it('keeps serving its last state while the database connections are cut, then catches up', async () => {
    const { db, instances } = await cluster(2);
    const [a, b] = instances as [TestServer, TestServer];
    await api(a.url, a.token).addHost('first');
    const watcher = await SyncRecorder.connect(b.wsUrl, { headers: b.authHeaders });
    defer(() => watcher.close());
    await watcher.waitForVersion(1);
    // The database drops every connection of both instances (a failover, a restart).
    const name = new URL(db.url).pathname.slice(1);
    await db.admin('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    // b still serves version 1, and says so: beacons carry the version it really has.
    await watcher.waitFor(() => watcher.messages('sync').length > 2, 3000);
    expect(watcher.messages('sync').at(-1)!.version).toBe(1);
    // Writes work again through a (its pool reconnects) and b catches up by itself.
    await until('a writes again', async () => (await api(a.url, a.token).post('/api/events', { level: 'info', category: 'db', message: 'after the cut' })).status === 201);
    await watcher.waitForVersion(a.manager.version, 10_000);
    expect(watcher.violations).toEqual([]);
    expect(watcher.fullState).toEqual(toFullState(a.manager.state));
  });

  it('lets the admin CLI manage access while the instances run; revocation reaches every instance', async () => {
    const { db, instances } = await cluster(2);
    const lines: string[] = [];
    const env = { NIXFLEET_DATABASE_URL: db.url };
    expect(await runAdmin(['token', 'create', 'ci', '--role', 'viewer'], env, (l) => lines.push(l))).toBe(0);
    const token = /nft_\S+/.exec(lines.join('\n'))![0];
    const ws = await SyncRecorder.connect(instances[1]!.wsUrl, { headers: { authorization: `Bearer ${token}` } });
    await ws.waitForVersion(0);
    expect((await api(instances[0]!.url, token).get('/api/state')).status).toBe(200);
    expect(await runAdmin(['token', 'revoke', token.split('_')[1]!], env, (l) => lines.push(l))).toBe(0);
    await ws.waitForClose(3000);
    expect(ws.closeCode).toBe(4401);
    await until('revocation seen by instance 0', async () => (await api(instances[0]!.url, token).get('/api/state')).status === 401, 3000);
  });

  it('refuses a second command on a busy host whichever instance it goes through', async () => {
    const { instances } = await cluster(2);
    await api(instances[0]!.url, instances[0]!.token).addHost('web-1');
    await withAgents(instances[0]!, ['web-1'], defer);
    const results = await Promise.all(instances.map((s) => api(s.url, s.token).post('/api/commands', { host_id: 'web-1', op: 'switch' })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
  });

  it('moves the clients of a killed instance to another, and survives its listener being terminated', async () => {
    const { db, instances } = await cluster(3);
    const [a, b, c] = instances as [TestServer, TestServer, TestServer];
    const proxy = await WsFaultProxy.start(a.wsUrl);
    defer(() => proxy.close());
    let headers = a.authHeaders;
    const Authed = class extends WebSocket {
      constructor(url: string) {
        super(url, { headers });
      }
    } as unknown as WebSocketConstructorLike;
    const syncs = [0, 1, 2].map(() => {
      const sync = new StateSync({ url: proxy.url, WebSocket: Authed, beaconIntervalMs: 200, backoffBaseMs: 50, backoffCapMs: 400, page: null });
      sync.start();
      defer(() => sync.close());
      return sync;
    });
    await api(b.url, b.token).addHost('before');
    await until('clients on a', () => syncs.every((s) => s.version === 1 && s.status.status === 'live'));

    // The database ends b's LISTEN connection: notifications stop until it reconnects, the
    // poll and the catch-up on reconnect make sure nothing is missed.
    const listener = (b.manager as unknown as { store: PgStore }).store.listenerPid;
    expect(listener).not.toBeNull();
    await db.admin('SELECT pg_terminate_backend($1)', [listener]);
    await api(c.url, c.token).addHost('while-b-deaf');
    await until('b caught up', () => b.manager.version === 2);

    // Instance a dies; the load balancer (the proxy) sends its clients to b.
    proxy.setUpstream(b.wsUrl);
    headers = b.authHeaders;
    await a.close();
    await api(c.url, c.token).addHost('after-a-died');
    await until('clients moved to b', () => syncs.every((s) => s.version === 3 && s.status.status === 'live'), 15_000);
    for (const sync of syncs) {
      expect(sync.epoch).toBe(b.manager.epoch);
      expect(toFullState(sync.state as never)).toEqual(toFullState(c.manager.state));
    }
  });
});

describe.skipIf(pgAvailable)('several instances on one PostgreSQL', () => {
  it.skip(`skipped: ${PG_SKIP_REASON}`, () => {});
});
