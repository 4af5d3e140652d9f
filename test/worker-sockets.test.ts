// WorkerSockets: StateSync with its socket in a worker (a Node worker thread running the real
// serveSockets, real `ws` sockets, real structured clone between the threads) against the real
// server. Covers batching, order, closes in both directions, get_state upstream, a worker that
// crashes, one that dies silently, one that cannot start (fallback to page sockets), and the
// page half's browser semantics on crafted batches.
import { Worker } from 'node:worker_threads';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { WorkerSockets, type StateSyncOptions, type WebSocketConstructorLike, type WorkerLike } from '../src/client/index.js';
import type { FromSocketWorker, ToSocketWorker } from '../src/client/socket-worker.js';
import { api } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { converged, startSync } from './support/sync-client.js';
import { until } from './support/until.js';

const THREAD = new URL('./support/socket-worker-thread.mjs', import.meta.url);

const defer = cleanupAfterEach();

async function server(): Promise<TestServer> {
  const s = await startTestServer({ beaconIntervalMs: 300 });
  defer(() => s.dispose());
  return s;
}

interface Thread extends WorkerLike {
  thread: Worker;
}

/** A worker thread seen through the browser's Worker interface (onmessage / onerror). */
function workerThread(headers: Record<string, string>, flushIntervalMs = 8, script: URL = THREAD): Thread {
  const thread = new Worker(script, { workerData: { headers, flushIntervalMs } });
  const worker: Thread = {
    thread,
    onmessage: null,
    onerror: null,
    postMessage: (message) => thread.postMessage(message),
    terminate: () => void thread.terminate(),
  };
  thread.on('message', (data) => worker.onmessage?.({ data }));
  thread.on('error', (error) => worker.onerror?.(error));
  defer(() => thread.terminate());
  return worker;
}

/** A socket on "the page" (the test's own thread) with the test's credentials: the fallback. */
function pageWebSocket(headers: Record<string, string>): WebSocketConstructorLike {
  return class extends WebSocket {
    constructor(url: string) {
      super(url, { headers });
    }
  } as unknown as WebSocketConstructorLike;
}

function sockets(headers: Record<string, string>, options: { flushIntervalMs?: number; workerTimeoutMs?: number; fallback?: WebSocketConstructorLike | null } = {}) {
  const threads: Thread[] = [];
  const workerSockets = new WorkerSockets(
    () => {
      const worker = workerThread(headers, options.flushIntervalMs);
      threads.push(worker);
      return worker;
    },
    { fallback: options.fallback ?? null, ...(options.workerTimeoutMs ? { workerTimeoutMs: options.workerTimeoutMs } : {}) },
  );
  defer(() => workerSockets.terminate());
  return { workerSockets, threads };
}

function client(url: string, WebSocketImpl: WebSocketConstructorLike, options: Partial<StateSyncOptions> = {}) {
  return startSync({ url, WebSocket: WebSocketImpl, beaconIntervalMs: 300, backoffBaseMs: 20, backoffCapMs: 200, page: null, ...options }, defer);
}

const event = (i: number) => ({ type: 'event' as const, event: { id: `e-${i}`, timestamp: new Date().toISOString(), category: 'burst', level: 'info' as const, actor: null, host_id: null, action: null, message: `event ${i}`, details: null } });

describe('WorkerSockets', () => {
  it('carries a StateSync through a worker: init, then every delta in order, many frames per batch', async () => {
    const s = await server();
    await api(s.url, s.token).addHost('a');
    const { workerSockets } = sockets(s.authHeaders);
    const sync = client(s.wsUrl, workerSockets.WebSocket);
    const versions: number[] = [];
    sync.on('change', (e) => e.kind === 'delta' && versions.push(e.version));
    await converged(sync, s);
    const from = s.manager.version;
    await Promise.all(Array.from({ length: 2000 }, (_, i) => s.manager.apply(event(i))));
    await converged(sync, s);
    expect(versions).toEqual(Array.from({ length: 2000 }, (_, i) => from + 1 + i));
    expect(sync.stats.resyncs.gap + sync.stats.resyncs.drift).toBe(0);
    expect(workerSockets.mode).toBe('worker');
    expect(workerSockets.stats.frames).toBeGreaterThanOrEqual(2001);
    // 2,000 deltas committed together arrive in a handful of posts, not one per frame.
    expect(workerSockets.stats.batches).toBeLessThan(workerSockets.stats.frames / 20);
  });

  it('posts at most one batch per flush interval under a steady stream', async () => {
    const s = await server();
    const { workerSockets } = sockets(s.authHeaders, { flushIntervalMs: 50 });
    const sync = client(s.wsUrl, workerSockets.WebSocket);
    await converged(sync, s);
    const before = workerSockets.stats.batches;
    const started = Date.now();
    for (let i = 0; i < 100; i++) {
      await s.manager.apply(event(i));
      await new Promise((resolve) => setTimeout(resolve, 5)); // a paced stream, not one burst
    }
    await converged(sync, s);
    const elapsed = Date.now() - started;
    const batches = workerSockets.stats.batches - before;
    // ~100 frames over `elapsed` ms: one post per 50 ms at most (+2 for the edges), far below 100.
    expect(batches).toBeLessThanOrEqual(Math.ceil(elapsed / 50) + 2);
    expect(batches).toBeLessThan(50);
  });

  it('asks for the full state through the worker (get_state goes up)', async () => {
    const s = await server();
    const { workerSockets } = sockets(s.authHeaders);
    const sync = client(s.wsUrl, workerSockets.WebSocket);
    await converged(sync, s);
    const snapshots = sync.stats.snapshotsApplied;
    const sent = s.hub.stats.fullStatesSent;
    sync.resync();
    await until('a full_state', () => sync.stats.snapshotsApplied === snapshots + 1);
    expect(s.hub.stats.fullStatesSent).toBe(sent + 1);
    await converged(sync, s);
  });

  it('passes a terminal close (4401) to the page after every frame before it', async () => {
    const s = await server();
    const admin = api(s.url, s.token);
    const created = await admin.post('/api/tokens', { name: 'worker', role: 'viewer' });
    const { workerSockets } = sockets({ authorization: `Bearer ${created.body.token}` });
    const sync = client(s.wsUrl, workerSockets.WebSocket);
    await converged(sync, s);
    await admin.addHost('last-before-revoke');
    await until('the delta', () => sync.version === s.manager.version);
    expect((await admin.delete(`/api/tokens/${created.body.id}`)).status).toBe(200);
    await until('the unauthorized close', () => sync.status.reason === 'unauthorized', 3000);
    expect(sync.status.status).toBe('offline');
    expect(sync.state!.hosts.has('last-before-revoke')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300)); // no retry comes within several backoffs
    expect(sync.stats.reconnects).toBe(0); // terminal: no retries
  });

  it('closes the real socket when the page closes its handle', async () => {
    const s = await server();
    const { workerSockets } = sockets(s.authHeaders);
    const sync = client(s.wsUrl, workerSockets.WebSocket);
    await converged(sync, s);
    expect(s.hub.clientCount).toBe(1);
    sync.close();
    await until('the server to see the close', () => s.hub.clientCount === 0, 3000);
  });

  it('recovers from a worker that crashes: its sockets close with 1006, a new worker takes over', async () => {
    const s = await server();
    const { workerSockets, threads } = sockets(s.authHeaders);
    const sync = client(s.wsUrl, workerSockets.WebSocket);
    await converged(sync, s);
    threads[0]!.thread.postMessage('crash');
    await until('the crash to reach the page', () => sync.statuses.some((e) => e.status === 'offline' && e.reason === 'closed 1006 socket worker failed'), 3000);
    await api(s.url, s.token).addHost('after-crash');
    await converged(sync, s);
    expect(workerSockets.stats.workersStarted).toBe(2);
    expect(workerSockets.mode).toBe('worker');
    expect(sync.state!.hosts.has('after-crash')).toBe(true);
  });

  it('replaces a worker that died without a word (the silence watchdog, then the open it never accepts)', async () => {
    const s = await server();
    // Long enough for a worker thread to boot on a loaded machine.
    const { workerSockets, threads } = sockets(s.authHeaders, { workerTimeoutMs: 1500 });
    const sync = client(s.wsUrl, workerSockets.WebSocket, { beaconIntervalMs: 100, silenceTimeoutMs: 500 });
    await converged(sync, s);
    // Terminated from outside: no error event, the page just stops hearing from it.
    threads[0]!.thread.removeAllListeners('error');
    await threads[0]!.thread.terminate();
    await api(s.url, s.token).addHost('after-silent-death');
    await converged(sync, s, 10_000);
    expect(sync.stats.deadLinks).toBeGreaterThanOrEqual(1);
    expect(workerSockets.stats.workersStarted).toBeGreaterThanOrEqual(2);
    expect(sync.state!.hosts.has('after-silent-death')).toBe(true);
  });

  it('falls back to page sockets when the worker cannot start', async () => {
    const s = await server();
    const PageWebSocket = pageWebSocket(s.authHeaders);
    const missing = new URL('./support/no-such-worker.mjs', import.meta.url);
    const workerSockets = new WorkerSockets(() => workerThread(s.authHeaders, 8, missing), { fallback: PageWebSocket });
    defer(() => workerSockets.terminate());
    const sync = client(s.wsUrl, workerSockets.WebSocket);
    await converged(sync, s);
    expect(workerSockets.mode).toBe('page');
    expect(sync.statuses.some((e) => e.reason.startsWith('closed 1006 socket worker could not start'))).toBe(true);
  });

  it('falls back to page sockets when creating the worker throws', async () => {
    const s = await server();
    const PageWebSocket = pageWebSocket(s.authHeaders);
    const workerSockets = new WorkerSockets(
      () => {
        throw new Error('SecurityError: blocked by worker-src');
      },
      { fallback: PageWebSocket },
    );
    const sync = client(s.wsUrl, workerSockets.WebSocket);
    await converged(sync, s);
    expect(workerSockets.mode).toBe('page');
  });
});

/** A worker that is only a pair of queues: the test plays the worker's side by hand. */
function handWorker() {
  const received: ToSocketWorker[] = [];
  const worker: WorkerLike & { send(batch: FromSocketWorker[]): void; received: ToSocketWorker[] } = {
    received,
    onmessage: null,
    onerror: null,
    postMessage: (message) => received.push(message),
    terminate: () => {},
    send: (batch) => worker.onmessage?.({ data: batch }),
  };
  return worker;
}

describe('WorkerSockets, the page half', () => {
  it('behaves like a browser WebSocket: states, no delivery after close(), unknown ids ignored', () => {
    const worker = handWorker();
    const { WebSocket: Socket } = new WorkerSockets(() => worker, { fallback: null });
    const socket = new Socket('ws://fleet/ws');
    const seen: unknown[] = [];
    socket.onmessage = (e) => {
      seen.push(e.data);
      if (e.data === 'close-now') socket.close(4000, 'bad frame');
    };
    let closed: { code: number; reason: string } | null = null;
    socket.onclose = (e) => (closed = e);
    expect(worker.received).toEqual([{ op: 'open', id: 1, url: 'ws://fleet/ws' }]);
    expect(socket.readyState).toBe(0);
    expect(() => socket.send('{"type":"get_state"}')).toThrow(/InvalidStateError/);
    worker.send([{ ev: 'ready' }, { ev: 'accepted', id: 1 }, { ev: 'open', id: 1, extensions: 'permessage-deflate' }]);
    expect(socket.readyState).toBe(1);
    socket.send('{"type":"get_state"}');
    expect(worker.received[1]).toEqual({ op: 'send', id: 1, data: '{"type":"get_state"}' });
    // A handler that closes mid-batch: the rest of the batch is not delivered.
    worker.send([{ ev: 'frames', id: 1, frames: ['a', 'close-now', 'never'] }, { ev: 'frames', id: 99, frames: ['other socket'] }]);
    expect(seen).toEqual(['a', 'close-now']);
    expect(socket.readyState).toBe(2);
    expect(worker.received[2]).toEqual({ op: 'close', id: 1, code: 4000, reason: 'bad frame' });
    socket.send('dropped'); // closing: dropped silently, as browsers do
    expect(worker.received).toHaveLength(3);
    worker.send([{ ev: 'close', id: 1, code: 4000, reason: 'bad frame' }]);
    expect(socket.readyState).toBe(3);
    expect(closed).toEqual({ code: 4000, reason: 'bad frame' });
    worker.send([{ ev: 'frames', id: 1, frames: ['after close'] }]);
    expect(seen).toEqual(['a', 'close-now']);
  });

  it('falls back to the page when the first worker never answers, but only retries a slow replacement', async () => {
    const closeOf = (socket: { onclose: unknown }) => new Promise<{ code: number; reason: string }>((resolve) => (socket.onclose = resolve));
    const Fallback = class {
      readonly fallback = true;
    } as unknown as WebSocketConstructorLike;

    // A first worker that never says a word: workers do not run here; the page takes over.
    const silent = new WorkerSockets(() => handWorker(), { fallback: Fallback, workerTimeoutMs: 20 });
    expect(await closeOf(new silent.WebSocket('ws://fleet/ws'))).toEqual({ code: 1006, reason: 'socket worker could not start (not answering)' });
    expect(silent.mode).toBe('page');
    expect((new silent.WebSocket('ws://fleet/ws') as unknown as { fallback: boolean }).fallback).toBe(true);

    // A worker that ran, then crashed, and a replacement slow to start: retried, never the page.
    const workers: ReturnType<typeof handWorker>[] = [];
    const sockets = new WorkerSockets(
      () => {
        workers.push(handWorker());
        return workers.at(-1)!;
      },
      { fallback: Fallback, workerTimeoutMs: 20 },
    );
    const first = closeOf(new sockets.WebSocket('ws://fleet/ws'));
    workers[0]!.send([{ ev: 'ready' }, { ev: 'accepted', id: 1 }]);
    workers[0]!.onerror?.(new Error('crashed'));
    expect(await first).toEqual({ code: 1006, reason: 'socket worker failed' });
    expect(await closeOf(new sockets.WebSocket('ws://fleet/ws'))).toEqual({ code: 1006, reason: 'socket worker could not start (not answering)' });
    expect(sockets.mode).toBe('worker');
    const third = closeOf(new sockets.WebSocket('ws://fleet/ws'));
    expect(workers).toHaveLength(3);
    expect(workers[2]!.received).toEqual([{ op: 'open', id: 3, url: 'ws://fleet/ws' }]);
    sockets.terminate();
    expect(await third).toEqual({ code: 1006, reason: 'socket worker terminated' });
  });

  it('fails sockets with 1006 when no worker and no fallback are available', async () => {
    const { WebSocket: Socket, mode } = new WorkerSockets(
      () => {
        throw new Error('no Worker here');
      },
      { fallback: null },
    );
    expect(mode).toBe('worker');
    const socket = new Socket('ws://fleet/ws');
    const closed = await new Promise<{ code: number; reason: string }>((resolve) => (socket.onclose = resolve));
    expect(closed).toEqual({ code: 1006, reason: 'socket worker unavailable' });
  });
});
