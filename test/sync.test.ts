// The server's side of the State Sync Protocol, through real sockets: init, deltas, the beacon,
// get_state, fan-out under concurrent load, and the guarantees each of them carries.
import { afterEach, describe, expect, it } from 'vitest';
import { toFullState } from '../src/protocol/index.js';
import { withAgents } from './support/go-agent.js';
import { api } from './support/http.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { until } from './support/until.js';

let server: TestServer;
const recorders: SyncRecorder[] = [];
const cleanups: Array<() => unknown> = [];
const defer = (cleanup: () => unknown) => void cleanups.push(cleanup);

async function connect(options: { deflate?: boolean } = {}): Promise<SyncRecorder> {
  const recorder = await SyncRecorder.connect(server.wsUrl, { headers: server.authHeaders, perMessageDeflate: options.deflate ?? true });
  recorders.push(recorder);
  return recorder;
}

afterEach(async () => {
  for (const r of recorders.splice(0)) r.close();
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await server?.dispose();
});

/** A mixed workload of API calls that all succeed: hosts, commands with output, pipelines, events. */
async function mixedWorkload(target: TestServer, workers: number, rounds: number): Promise<void> {
  const client = api(target.url, target.token);
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      const host = await client.addHost(`load-${w}`);
      await withAgents(target, [host], defer);
      for (let i = 0; i < rounds; i++) {
        const started = await client.post('/api/commands', { host_id: host, op: 'switch' });
        expect(started.status).toBe(201);
        const id = started.body.command.id as string;
        expect((await client.post(`/api/commands/${id}/output`, { output: `line ${i} of worker ${w}\n` })).status).toBe(200);
        expect((await client.patch(`/api/hosts/${host}`, { status: 'online', metrics: { cpu: i % 100, ram: 50, swap: 0, load: 0.5 } })).status).toBe(200);
        expect((await client.post(`/api/commands/${id}/finish`, { status: 'success', exit_code: 0 })).status).toBe(200);
        expect((await client.post('/api/events', { level: 'info', category: 'test', message: `round ${i}`, host_id: host })).status).toBe(201);
      }
    }),
  );
}

describe('init', () => {
  it('is the first frame and carries the state and version of that instant', async () => {
    server = await startTestServer();
    const http = api(server.url, server.token);
    await http.addHost('alpha');
    await http.addHost('beta');
    const client = await connect();
    await client.waitFor(() => client.frames.length > 0);
    const first = client.frames[0]!.message;
    expect(first.type).toBe('init');
    if (first.type !== 'init') return;
    expect(first.version).toBe(2);
    expect(first.epoch).toBe(server.manager.epoch);
    expect(first.payload.hosts.map((h) => h.id)).toEqual(['alpha', 'beta']);
    expect(Object.keys(first.payload)).toEqual(expect.arrayContaining(['hosts', 'commands', 'pipelines', 'events']));
  });

  it('is never preceded by a delta, and nothing falls between it and the first delta, while writes are in flight', async () => {
    server = await startTestServer();
    const load = mixedWorkload(server, 4, 15);
    const joined: SyncRecorder[] = [];
    for (let i = 0; i < 20; i++) {
      joined.push(await connect());
      await new Promise((resolve) => setTimeout(resolve, 5)); // spread the joins over the writes
    }
    await load;
    const finalVersion = server.manager.version;
    for (const client of joined) {
      await client.waitForVersion(finalVersion);
      expect(client.violations).toEqual([]);
      expect(client.frames[0]!.message.type).toBe('init');
      expect(client.fullState).toEqual(toFullState(server.manager.state));
    }
  });
});

describe('reconnection', () => {
  it('starts every new connection from init at the current version, including what was missed', async () => {
    server = await startTestServer();
    const http = api(server.url, server.token);
    await http.addHost('a');
    const first = await connect();
    await first.waitForVersion(1);
    first.close();
    await first.waitForClose();
    await http.addHost('b');
    await http.patch('/api/hosts/a', { status: 'online' });
    const again = await connect();
    await again.waitForVersion(3);
    expect(again.frames[0]!.message).toMatchObject({ type: 'init', version: 3, epoch: first.epoch });
    expect(again.deltaVersions).toEqual([]);
    expect(again.fullState).toEqual(toFullState(server.manager.state));
  });
});

describe('delta', () => {
  it('reaches every client consecutively, byte-identical, and the fold equals full_state', async () => {
    server = await startTestServer();
    const clients = await Promise.all(Array.from({ length: 5 }, () => connect()));
    await mixedWorkload(server, 6, 10);
    const finalVersion = server.manager.version;
    // Per worker: its host, its agent's register (host + event); per round: the command (+ its
    // event), its sending to the agent (sent_at + event), first output (running + progress),
    // host update, finish, event.
    expect(finalVersion).toBe(6 * 3 + 6 * 10 * 9);

    const deltasOf = (c: SyncRecorder) => c.frames.filter((f) => f.message.type === 'delta').map((f) => f.raw);
    for (const client of clients) {
      await client.waitForVersion(finalVersion);
      expect(client.violations).toEqual([]);
      expect(client.deltaVersions).toEqual(Array.from({ length: finalVersion }, (_, i) => i + 1));
      expect(deltasOf(client)).toEqual(deltasOf(clients[0]!));
    }

    const state = await api(server.url, server.token).get('/api/state');
    expect(state.body.version).toBe(finalVersion);
    expect(clients[0]!.fullState).toEqual(state.body.payload);

    clients[0]!.send({ type: 'get_state' });
    await clients[0]!.waitFor(() => clients[0]!.messages('full_state').length === 1);
    const fullState = clients[0]!.messages('full_state')[0]!;
    expect(fullState.version).toBe(finalVersion);
    expect(JSON.stringify(fullState.payload)).toBe(JSON.stringify(state.body.payload));
  });

  it('is encoded once and shared: one JSON encoding per committed change whatever the client count', async () => {
    server = await startTestServer();
    const clients = await Promise.all(Array.from({ length: 10 }, () => connect()));
    const raws = new Set<string>();
    await api(server.url, server.token).addHost('gamma');
    for (const client of clients) {
      await client.waitForVersion(1);
      raws.add(client.messages('delta')[0] ? client.frames.find((f) => f.message.type === 'delta')!.raw : '');
    }
    expect(raws.size).toBe(1);
  });
});

describe('sync beacon', () => {
  it('arrives at the configured interval with the current epoch and version', async () => {
    server = await startTestServer({ beaconIntervalMs: 150 });
    const client = await connect();
    await api(server.url, server.token).addHost('delta-host');
    await client.waitFor(() => client.messages('sync').length >= 5, 3000);
    const syncs = client.frames.filter((f) => f.message.type === 'sync');
    const gaps = syncs.slice(1).map((f, i) => f.at - syncs[i]!.at);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThan(90);
      expect(gap).toBeLessThan(400);
    }
    const last = client.messages('sync').at(-1)!;
    expect(last).toEqual({ type: 'sync', epoch: server.manager.epoch, version: 1 });
  });
});

describe('get_state', () => {
  it('answers full_state at the current version and accepts an empty payload', async () => {
    server = await startTestServer();
    await api(server.url, server.token).addHost('h1');
    const client = await connect();
    await client.waitForVersion(1);
    client.send({ type: 'get_state', payload: {} });
    await client.waitFor(() => client.messages('full_state').length === 1);
    expect(client.messages('full_state')[0]!.version).toBe(1);
    expect(client.violations).toEqual([]);
  });

  it('coalesces a burst from one client and encodes the full state once per version for many clients', async () => {
    server = await startTestServer({ clientMessagesPerSecond: 1000 });
    await api(server.url, server.token).addHost('h1');
    const clients = await Promise.all(Array.from({ length: 20 }, () => connect()));
    await Promise.all(clients.map((c) => c.waitForVersion(1)));
    const encodingsBefore = server.manager.stats.fullStateEncodings;
    for (const client of clients) for (let i = 0; i < 50; i++) client.send({ type: 'get_state' });
    await until('every client answered', () => clients.every((c) => c.messages('full_state').length >= 1));
    await new Promise((resolve) => setTimeout(resolve, 100)); // and no flood of answers follows
    for (const client of clients) {
      const answers = client.messages('full_state').length;
      expect(answers).toBeGreaterThanOrEqual(1);
      expect(answers).toBeLessThan(10);
    }
    // Every init and every full_state at version 1 shared one encoding.
    expect(server.manager.stats.fullStateEncodings).toBe(encodingsBefore);
  });
});

describe('liveness', () => {
  it('terminates a peer that stops answering pings', async () => {
    server = await startTestServer({ pingIntervalMs: 100 });
    const dead = await SyncRecorder.connect(server.wsUrl, { autoPong: false, headers: server.authHeaders });
    recorders.push(dead);
    const alive = await connect();
    await dead.waitForClose(2000);
    expect(dead.closeCode).toBe(1006);
    expect(server.hub.stats.reaped).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300)); // three more ping rounds: the live one stays
    expect(alive.closeCode).toBeNull();
    expect(server.hub.clientCount).toBe(1);
  });
});

describe('slow consumers', () => {
  it('pauses deltas for a client that stops reading, bounds its buffer, then heals it with one full_state', async () => {
    const bufferLimit = 64 * 1024;
    server = await startTestServer({ clientBufferLimit: bufferLimit, slowClientTimeoutMs: 60_000, limits: { events: 100, commands: 50, pipelines: 20, output_tail: 4096 } });
    const http = api(server.url, server.token);
    const host = await http.addHost('chatty');
    await withAgents(server, [host], defer);
    const command = (await http.post('/api/commands', { host_id: host, op: 'switch' })).body.command.id as string;
    const slow = await connect();
    const healthy = await connect();
    await slow.waitForVersion(server.manager.version);
    (slow.ws as any)._socket.pause();

    const chunk = 'x'.repeat(16 * 1024);
    let maxBuffered = 0;
    for (let i = 0; i < 400; i++) {
      await http.post(`/api/commands/${command}/output`, { output: chunk });
      for (const c of server.hub.inspectClients()) maxBuffered = Math.max(maxBuffered, c.bufferedAmount);
    }
    const finalVersion = server.manager.version;
    expect(server.hub.stats.staleMarks).toBeGreaterThanOrEqual(1);
    // Socket buffer bounded by the limit plus one frame plus the init it was sent, not 400 × 16 KiB.
    const initBytes = slow.frames[0]!.raw.length;
    expect(maxBuffered).toBeLessThanOrEqual(bufferLimit + chunk.length + 200 + initBytes);
    await healthy.waitForVersion(finalVersion);
    expect(healthy.messages('full_state')).toHaveLength(0);

    (slow.ws as any)._socket.resume();
    await slow.waitForVersion(finalVersion, 5000);
    expect(slow.violations).toEqual([]);
    expect(slow.messages('full_state').at(-1)!.version).toBe(finalVersion);
    expect(slow.fullState).toEqual(healthy.fullState);

    // Deltas flow again after the heal.
    await http.patch(`/api/hosts/${host}`, { status: 'online' });
    await slow.waitForVersion(finalVersion + 1);
    expect(slow.violations).toEqual([]);
  });

  it('closes a client that stays stuck past the timeout and frees it', async () => {
    server = await startTestServer({ clientBufferLimit: 16 * 1024, slowClientTimeoutMs: 300 });
    const http = api(server.url, server.token);
    const host = await http.addHost('chatty');
    await withAgents(server, [host], defer);
    const command = (await http.post('/api/commands', { host_id: host, op: 'switch' })).body.command.id as string;
    // No deflate: each time this client drains it gets a full_state, which deflated is a few
    // hundred bytes of this repetitive output, so the loopback buffers would take far longer
    // than the loop below to fill. The bound under test is the same either way.
    const slow = await connect({ deflate: false });
    await slow.waitForVersion(server.manager.version);
    (slow.ws as any)._socket.pause();
    // Keep traffic flowing: first the loopback socket buffers (several MiB) fill, then the
    // 16 KiB bound is crossed, and a client stuck past the timeout is closed.
    const deadline = Date.now() + 10_000;
    while (server.hub.stats.slowClosed === 0 && Date.now() < deadline) {
      await Promise.all(Array.from({ length: 10 }, () => http.post(`/api/commands/${command}/output`, { output: 'y'.repeat(32 * 1024) })));
    }
    await new Promise((resolve) => setTimeout(resolve, 1200)); // the close grace period
    (slow.ws as any)._socket.resume();
    await slow.waitForClose(3000);
    expect(server.hub.stats.slowClosed).toBe(1);
    expect(server.hub.stats.staleMarks).toBeGreaterThanOrEqual(1);
    expect(server.hub.clientCount).toBe(0);
  });
});

describe('bad input on the socket', () => {
  it('answers malformed frames with an error and keeps serving', async () => {
    server = await startTestServer();
    const client = await connect();
    await client.waitForVersion(0);
    const bad = [
      'not json',
      '[]',
      'null',
      '{"type":42}',
      '{"type":"delete_everything"}',
      '{"type":"get_state","payload":{"x":1}}',
      '{"type":"get_state","__proto__":{"polluted":true}}',
      `{"type":"get_state","payload":${'['.repeat(1500)}${']'.repeat(1500)}}`,
    ];
    for (const frame of bad) client.send(frame);
    client.ws.send(Buffer.from('{"type":"get_state"}'), { binary: true });
    await client.waitFor(() => client.messages('error').length === bad.length + 1);
    expect(client.messages('error').map((e) => e.code)).toEqual([
      'invalid_json',
      'invalid_message',
      'invalid_message',
      'invalid_message',
      'unknown_type',
      'invalid_message',
      'invalid_message',
      'invalid_message',
      'invalid_message',
    ]);
    expect(({} as any).polluted).toBeUndefined();
    await api(server.url, server.token).addHost('still-alive');
    await client.waitForVersion(1);
    expect(client.closeCode).toBeNull();
  });

  it('closes with 1009 on a frame over the size limit', async () => {
    server = await startTestServer();
    const client = await connect();
    client.send(JSON.stringify({ type: 'get_state', pad: 'z'.repeat(10_000) }));
    await client.waitForClose();
    expect(client.closeCode).toBe(1009);
    const other = await connect();
    await other.waitForVersion(0);
  });

  it('rate-limits a flood, says so once a second, and closes an abuser with 1008', async () => {
    server = await startTestServer({ clientMessagesPerSecond: 10 });
    const client = await connect();
    const bystander = await connect();
    for (let i = 0; i < 60; i++) client.send('{"type":"nope"}');
    await client.waitFor(() => client.messages('error').some((e) => e.code === 'rate_limited'));
    await new Promise((resolve) => setTimeout(resolve, 100)); // no second notice arrives within the second
    const codes = client.messages('error').map((e) => e.code);
    expect(codes.filter((c) => c === 'unknown_type').length).toBeLessThanOrEqual(21);
    expect(codes.filter((c) => c === 'rate_limited')).toHaveLength(1);
    expect(client.closeCode).toBeNull();

    for (let i = 0; i < 200; i++) client.send('{"type":"nope"}');
    await client.waitForClose();
    expect(client.closeCode).toBe(1008);
    expect(bystander.closeCode).toBeNull();
  });
});

describe('transport', () => {
  it('refuses WebSocket upgrades on other paths', async () => {
    server = await startTestServer();
    await expect(SyncRecorder.connect(server.wsUrl.replace('/ws', '/other'), { headers: server.authHeaders })).rejects.toThrow();
  });

  it('turns away connections beyond the client limit with 1013 and no state', async () => {
    server = await startTestServer({ maxClients: 2 });
    await Promise.all([connect(), connect()]);
    const third = await connect();
    await third.waitForClose();
    expect(third.closeCode).toBe(1013);
    expect(third.frames).toHaveLength(0);
  });

  it('closes every client with 1001 on shutdown', async () => {
    server = await startTestServer();
    const clients = await Promise.all([connect(), connect(), connect()]);
    await server.close();
    for (const client of clients) {
      await client.waitForClose();
      expect(client.closeCode).toBe(1001);
    }
  });
});
