// StateSync in Node against the real server, through a WebSocket fault proxy: dropped and
// duplicated frames, half-open links, unanswered get_state, restarts on the same and on a wiped
// store, backoff, page lifecycle triggers. Every test ends by comparing with the server.
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { describe, expect, it } from 'vitest';
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
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(events).toBe(0);
      expect(proxy.links.size).toBe(0);
    });
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
    await new Promise((resolve) => setTimeout(resolve, 50));
    sync.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(errors).toEqual([]);
  });
});
