// StateSync in Node against the real server, through a WebSocket fault proxy: dropped and
// duplicated frames, half-open links, unanswered get_state, restarts on the same and on a wiped
// store, backoff, page lifecycle triggers. Every test ends by comparing with the server.
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { describe, expect, it, vi } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { StateSync, type PageLike, type StateSyncOptions, type WebSocketConstructorLike } from '../src/client/index.js';
import { api } from './support/http.js';
import { startTestServer, tempDir } from './support/test-server.js';
import { converged, startSync } from './support/sync-client.js';
import { until } from './support/until.js';
import { WsFaultProxy } from './support/ws-fault-proxy.js';

const defer = cleanupAfterEach();

async function serverWithProxy(overrides: Parameters<typeof startTestServer>[0] = {}) {
  const server = await startTestServer({ beaconIntervalMs: 300, ...overrides });
  currentAuth = server.authHeaders;
  defer(() => server.dispose());
  const proxy = await WsFaultProxy.start(server.wsUrl);
  defer(() => proxy.close());
  return { server, proxy, http: api(server.url, server.token) };
}

/** The current test server's bearer token, read at every (re)connect. */
let currentAuth: Record<string, string> = {};

/** `ws` with the test admin's bearer token (browsers use the session cookie instead). */
const AuthedWebSocket = class extends WebSocket {
  constructor(url: string) {
    super(url, { headers: currentAuth });
  }
} as unknown as WebSocketConstructorLike;

function client(url: string, options: Partial<StateSyncOptions> = {}) {
  return startSync({ url, WebSocket: AuthedWebSocket, beaconIntervalMs: 300, backoffBaseMs: 50, backoffCapMs: 400, page: null, ...options }, defer);
}

describe('StateSync', () => {
  it('starts from init, goes live, and applies every delta in order', async () => {
    const { server, proxy, http } = await serverWithProxy();
    await http.addHost('a');
    const sync = client(proxy.url);
    const versions: number[] = [];
    sync.on('change', (e) => e.kind === 'delta' && versions.push(e.version));
    await converged(sync, server);
    for (let i = 0; i < 20; i++) await http.patch('/api/hosts/a', { status: i % 2 ? 'online' : 'offline' });
    await converged(sync, server);
    expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    expect(sync.statuses.map((s) => s.status)).toEqual(['connecting', 'live']);
    expect(sync.stats.resyncs.gap + sync.stats.resyncs.drift).toBe(0);
  });

  it('heals a dropped delta with exactly one get_state, keeping later deltas', async () => {
    const { server, proxy, http } = await serverWithProxy({ beaconIntervalMs: 60_000 });
    await http.addHost('a');
    const sync = client(proxy.url, { beaconIntervalMs: 60_000 });
    await converged(sync, server);
    let getStates = 0;
    proxy.addRule({ direction: 'up', match: (m) => m?.type === 'get_state' && ++getStates > 0 && false, action: 'drop' });
    proxy.dropNext('delta');
    for (let i = 0; i < 10; i++) await http.patch('/api/hosts/a', { generation: `g${i}` });
    await converged(sync, server);
    expect(proxy.stats.dropped).toBe(1);
    expect(getStates).toBe(1);
    expect(sync.stats.resyncs.gap).toBe(1);
  });

  it('catches a lost last delta with the sync beacon', async () => {
    const { server, proxy, http } = await serverWithProxy({ beaconIntervalMs: 200 });
    await http.addHost('a');
    const sync = client(proxy.url, { beaconIntervalMs: 200 });
    await converged(sync, server);
    proxy.dropNext('delta');
    const started = Date.now();
    await http.patch('/api/hosts/a', { status: 'online' });
    await converged(sync, server, 2000);
    expect(Date.now() - started).toBeLessThan(200 + 300);
    expect(sync.stats.resyncs.drift).toBe(1);
  });

  it('drops duplicated deltas', async () => {
    const { server, proxy, http } = await serverWithProxy();
    await http.addHost('a');
    const sync = client(proxy.url);
    await converged(sync, server);
    proxy.addRule({ direction: 'down', match: (m) => m?.type === 'delta', action: 'duplicate', times: 3 });
    for (let i = 0; i < 5; i++) await http.post('/api/events', { level: 'info', category: 'dup', message: `e${i}` });
    await converged(sync, server);
    expect(sync.stats.duplicatesDropped).toBe(3);
    expect(sync.state!.events).toHaveLength(5);
  });

  it('treats a silent (half-open) link as dead and reconnects', async () => {
    const { server, proxy, http } = await serverWithProxy({ beaconIntervalMs: 100 });
    const sync = client(proxy.url, { beaconIntervalMs: 100, silenceTimeoutMs: 400 });
    await converged(sync, server);
    proxy.stall();
    await http.addHost('while-stalled');
    await until('dead link', () => sync.stats.deadLinks === 1, 3000, 10);
    expect(sync.statuses.some((s) => s.status === 'offline' && s.reason === 'silence')).toBe(true);
    await converged(sync, server, 3000);
    expect(sync.state!.hosts.has('while-stalled')).toBe(true);
  });

  it('reconnects when a get_state stays unanswered', async () => {
    const { server, proxy, http } = await serverWithProxy({ beaconIntervalMs: 60_000 });
    await http.addHost('a');
    const sync = client(proxy.url, { beaconIntervalMs: 60_000, resyncTimeoutMs: 300 });
    await converged(sync, server);
    proxy.addRule({ direction: 'up', match: (m) => m?.type === 'get_state', action: 'drop' });
    proxy.dropNext('delta');
    await http.patch('/api/hosts/a', { status: 'online' });
    await http.patch('/api/hosts/a', { status: 'offline' });
    await until('resync timeout', () => sync.statuses.some((s) => s.reason === 'resync timeout'), 3000, 10);
    await converged(sync, server, 3000);
  });

  it('recovers from a server restart on the same store without losing anything', async () => {
    const dataDir = tempDir();
    defer(() => rmSync(dataDir, { recursive: true, force: true }));
    let server = await startTestServer({ dataDir, beaconIntervalMs: 300 });
    currentAuth = server.authHeaders;
    const port = Number(new URL(server.url).port);
    const sync = client(server.wsUrl);
    await api(server.url, server.token).addHost('a');
    await converged(sync, server);
    await server.close();
    await until('offline', () => sync.status.status === 'offline', 2000, 10);
    server = await startTestServer({ dataDir, listenPort: port, beaconIntervalMs: 300 });
    defer(() => server.close());
    await api(server.url, server.token).addHost('b');
    await converged(sync, server, 5000);
    expect([...sync.state!.hosts.keys()]).toEqual(['a', 'b']);
  });

  it('drops the old state entirely on a new epoch (wiped store)', async () => {
    const dataDir = tempDir();
    defer(() => rmSync(dataDir, { recursive: true, force: true }));
    let server = await startTestServer({ dataDir, beaconIntervalMs: 300 });
    currentAuth = server.authHeaders;
    const port = Number(new URL(server.url).port);
    const sync = client(server.wsUrl);
    const snapshots: boolean[] = [];
    sync.on('change', (e) => e.kind === 'snapshot' && snapshots.push(e.epochChanged));
    for (const name of ['a', 'b', 'c']) await api(server.url, server.token).addHost(name);
    await converged(sync, server);
    const oldEpoch = sync.epoch;
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
    server = await startTestServer({ dataDir, listenPort: port, beaconIntervalMs: 300 });
    currentAuth = server.authHeaders; // the wiped store forgot the old token too
    defer(() => server.close());
    await api(server.url, server.token).addHost('z');
    await converged(sync, server, 5000);
    expect(sync.epoch).not.toBe(oldEpoch);
    expect([...sync.state!.hosts.keys()]).toEqual(['z']);
    expect(sync.version).toBe(1);
    expect(snapshots.at(-1)).toBe(true);
  });

  it('checks the link at once when the page becomes visible after a long silence', async () => {
    const { server, proxy, http } = await serverWithProxy({ beaconIntervalMs: 60_000 });
    const listeners = new Map<string, (e: { persisted?: boolean }) => void>();
    let visibility = 'hidden';
    const page: PageLike = {
      addEventListener: (type, l) => listeners.set(type, l),
      removeEventListener: (type) => listeners.delete(type),
      visibilityState: () => visibility,
    };
    let now = Date.now();
    const sync = client(proxy.url, { beaconIntervalMs: 60_000, page, now: () => now });
    await converged(sync, server);
    proxy.dropNext('delta'); // the change the frozen tab missed
    await http.addHost('missed');
    now += 120_000; // the tab was frozen for two minutes
    visibility = 'visible';
    listeners.get('visibilitychange')!({});
    await converged(sync, server, 2000);
    expect(sync.stats.resyncs.visibility).toBe(1);
    sync.close();
    expect(listeners.size).toBe(0);
  });

  it('backs off with jitter and resets only after init is applied, not on open', async () => {
    // A server that accepts the WebSocket and closes it at once: the y-websocket failure mode.
    const http = createServer();
    const wss = new WebSocketServer({ server: http });
    let accepted = 0;
    wss.on('connection', (ws) => {
      accepted++;
      ws.close(1011, 'nope');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise<void>((resolve) => { wss.close(); http.closeAllConnections(); http.close(() => resolve()); }));
    const delays: number[] = [];
    const realSetTimeout = setTimeout;
    const sync = client(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/ws`, {
      backoffBaseMs: 20,
      backoffCapMs: 160,
      random: () => 1,
      timers: {
        setTimeout: (cb, ms) => {
          if (ms !== 50 && ms !== 5000) delays.push(ms);
          return realSetTimeout(cb, ms);
        },
        clearTimeout: (h) => clearTimeout(h as never),
      },
    });
    await until('six attempts and their delays', () => accepted >= 6 && delays.length >= 6, 5000, 10);
    sync.close();
    // 20·2^n capped at 160 (random() = 1 gives the ceiling), never reset by a successful open.
    expect(delays.slice(0, 6)).toEqual([20, 40, 80, 160, 160, 160]);
    expect(sync.stats.reconnects).toBeGreaterThanOrEqual(5);
  });

  describe('#close', () => {
    it('is idempotent, stops reconnecting and emits nothing after', async () => {
      const { server, proxy } = await serverWithProxy();
      const sync = client(proxy.url);
      await converged(sync, server);
      let events = 0;
      sync.on('change', () => events++);
      sync.close();
      sync.close();
      expect(sync.status).toEqual({ status: 'offline', reason: 'closed' });
      await api(server.url, server.token).addHost('after-close');
      await new Promise((resolve) => setTimeout(resolve, 300)); // nothing reaches a closed client
      expect(events).toBe(0);
      expect(proxy.links.size).toBe(0);
    });
  });
});

describe('StateSync and a newer server (docs/PROTOCOL.md, "Compatibility")', () => {
  /** Console warnings and errors during the test: an error would mean something broke. */
  function watchConsole() {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    defer(() => {
      warn.mockRestore();
      error.mockRestore();
    });
    return { warnings: () => warn.mock.calls.map((c) => String(c[0])), errors: () => error.mock.calls.map((c) => String(c[0])) };
  }

  it('ignores frame types it does not know, warns once per type, and stays live on the same socket', async () => {
    const { server, proxy, http } = await serverWithProxy();
    const sync = client(proxy.url);
    await converged(sync, server);
    const console_ = watchConsole();
    proxy.inject('{"type":"presence","epoch":"whatever","version":999999,"users":["alice"]}');
    proxy.inject('{"type":"presence","users":[]}');
    proxy.inject('{"type":"cursor","at":[1,2]}');
    await http.addHost('after-unknown-frames');
    await converged(sync, server);
    expect(sync.stats.unknownFrames).toBe(3);
    expect(console_.warnings()).toHaveLength(2);
    expect(console_.warnings().join('\n')).toMatch(/presence[^]*cursor/);
    expect(console_.errors()).toEqual([]);
    expect(sync.stats.reconnects).toBe(0);
    expect(Object.values(sync.stats.resyncs).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('heals a delta whose change type it does not know with one full_state on the same socket', async () => {
    const { server, proxy, http } = await serverWithProxy({ beaconIntervalMs: 60_000 });
    const sync = client(proxy.url, { beaconIntervalMs: 60_000 });
    await converged(sync, server);
    const console_ = watchConsole();
    // The host_added at this version reaches the client as a change type of a newer protocol.
    proxy.rewriteNext('delta', (frame) => ({ ...frame, payload: { type: 'host_presence', id: frame.payload.host.id, seen_by: ['alice'] } }));
    await http.addHost('web-1');
    await http.addHost('web-2'); // arrives while the full state is on its way
    await converged(sync, server);
    expect(sync.state!.hosts.has('web-1')).toBe(true); // not skipped: the full state brought it
    expect(sync.stats.unknownChanges).toBe(1);
    expect(sync.stats.resyncs.unknown_change).toBe(1);
    expect(sync.stats.snapshotsApplied).toBe(2); // init, and that one full state
    expect(sync.stats.reconnects).toBe(0);
    expect(console_.warnings()).toHaveLength(1);
    expect(console_.errors()).toEqual([]);
    // Once healed it goes on as before: the next unknown change costs one more full state, no loop.
    proxy.rewriteNext('delta', (frame) => ({ ...frame, payload: { type: 'host_presence', id: 'web-2' } }));
    await http.patch('/api/hosts/web-2', { status: 'online' });
    await converged(sync, server);
    expect(sync.stats.snapshotsApplied).toBe(3);
    expect(console_.warnings()).toHaveLength(1);
  });

  it('ignores unknown fields and keeps a new value of a known field as it is', async () => {
    const { server, proxy, http } = await serverWithProxy();
    const sync = client(proxy.url);
    await converged(sync, server);
    const console_ = watchConsole();
    await http.addHost('web-1');
    await converged(sync, server);
    proxy.rewriteNext('delta', (frame) => ({
      ...frame,
      trace_id: 'abc', // a new frame field
      payload: { ...frame.payload, reason: 'agent', fields: { ...frame.payload.fields, status: 'maintenance', rack: 'r-7' } },
    }));
    const { body } = await http.patch('/api/hosts/web-1', { status: 'online' });
    await until('the rewritten update applied', () => sync.version === body.version);
    const host = sync.state!.hosts.get('web-1')!;
    expect(host.status).toBe('maintenance'); // shown as it is, not rejected
    expect('rack' in host).toBe(false); // a field the entity does not have is not taken
    expect(sync.status.status).toBe('live');
    await http.patch('/api/hosts/web-1', { status: 'offline' });
    await converged(sync, server);
    expect(console_.errors()).toEqual([]);
    expect(sync.stats.reconnects).toBe(0);
  });

  it('still reconnects on a frame that is not the protocol at all', async () => {
    const { server, proxy } = await serverWithProxy();
    const sync = client(proxy.url);
    await converged(sync, server);
    const console_ = watchConsole();
    proxy.inject('{"type":"delta","payload":{"type":"host_removed","id":"x"}}'); // no epoch, no version
    await until('a reconnect', () => sync.stats.reconnects === 1);
    await converged(sync, server);
    expect(console_.errors().join('\n')).toMatch(/not the State Sync Protocol/);
  });
});

describe('StateSync in Node', () => {
  it('can be closed while its socket is still connecting, without an uncaught error', async () => {
    // A server that accepts TCP but never answers the upgrade: the socket stays CONNECTING.
    const { createServer: createTcpServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise<void>((resolve) => {
      sockets.forEach((s) => s.destroy());
      silent.close(() => resolve());
    }));
    const errors: unknown[] = [];
    const onError = (error: unknown) => errors.push(error);
    process.on('uncaughtException', onError);
    defer(() => process.off('uncaughtException', onError));
    const sync = new StateSync({ url: `ws://127.0.0.1:${(silent.address() as AddressInfo).port}/ws`, WebSocket: WebSocket as unknown as WebSocketConstructorLike, page: null });
    sync.start();
    await new Promise((resolve) => setTimeout(resolve, 50)); // the socket is connecting, never opened
    sync.close();
    await new Promise((resolve) => setTimeout(resolve, 100)); // no late error surfaces
    expect(errors).toEqual([]);
  });
});
