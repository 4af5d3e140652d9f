// The worker half of WorkerSockets (worker-sockets.ts): owns the real WebSockets inside a
// dedicated Worker and forwards their events to the page. Frames are batched: the page gets at
// most one message per `flushIntervalMs` however many frames arrived, so its main thread runs one
// task per batch instead of one per WebSocket message (in Chromium that per-message task, not our
// JSON.parse, is what costs frames at thousands of messages per second; bench/chromium-baseline).
// Order is kept exactly: frames, opens, errors and closes of every socket leave in the order they
// happened, and a close is never posted before the frames that preceded it.
import type { WebSocketConstructorLike, WebSocketLike } from './state-sync.js';

/** Page → worker. */
export type ToSocketWorker =
  | { op: 'open'; id: number; url: string }
  | { op: 'send'; id: number; data: string }
  | { op: 'close'; id: number; code?: number; reason?: string };

/** Worker → page: each posted message is an array of these, in order. */
export type FromSocketWorker =
  | { ev: 'ready' }
  /** The worker took an `open`: it is alive (the page restarts a worker that does not answer). */
  | { ev: 'accepted'; id: number }
  | { ev: 'open'; id: number; extensions: string }
  | { ev: 'frames'; id: number; frames: unknown[] }
  | { ev: 'error'; id: number }
  | { ev: 'close'; id: number; code: number; reason: string };

/** `self` in a dedicated worker, or one end of a MessageChannel in tests. */
export interface SocketWorkerScope {
  onmessage: ((event: { data: unknown }) => void) | null;
  postMessage(message: FromSocketWorker[]): void;
}

export interface SocketWorkerOptions {
  /** Default: `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructorLike;
  /**
   * Frames are posted at most this often. An isolated frame leaves at once; under load, frames
   * wait at most this long and leave together. Default 8 ms: under one 60 Hz frame, so a page
   * that renders once per animation frame sees no added delay, and even a 120 Hz display gets a
   * batch for every other frame.
   */
  flushIntervalMs?: number;
}

const OPEN = 1;

export function serveSockets(scope: SocketWorkerScope, options: SocketWorkerOptions = {}): void {
  const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
  if (!WebSocketImpl) throw new TypeError('serveSockets: no WebSocket implementation in this worker');
  const interval = options.flushIntervalMs ?? 8;
  const sockets = new Map<number, WebSocketLike>();
  let outbox: FromSocketWorker[] = [];
  let flushTimer: ReturnType<typeof setTimeout> | null = null;
  let lastFlushAt = -Infinity;

  const flush = () => {
    if (flushTimer !== null) clearTimeout(flushTimer);
    flushTimer = null;
    if (outbox.length === 0) return;
    lastFlushAt = performance.now();
    const batch = outbox;
    outbox = [];
    scope.postMessage(batch);
  };
  const queueFrame = (id: number, data: unknown) => {
    const last = outbox[outbox.length - 1];
    if (last?.ev === 'frames' && last.id === id) last.frames.push(data);
    else outbox.push({ ev: 'frames', id, frames: [data] });
    if (flushTimer === null) flushTimer = setTimeout(flush, Math.max(0, lastFlushAt + interval - performance.now()));
  };
  /** Opens, errors and closes are rare and change what the page may do: they leave at once. */
  const postNow = (event: FromSocketWorker) => {
    outbox.push(event);
    flush();
  };

  const open = (id: number, url: string) => {
    postNow({ ev: 'accepted', id });
    let socket: WebSocketLike;
    try {
      socket = new WebSocketImpl(url);
    } catch {
      // What a browser does with a URL it refuses: error, then an abnormal close.
      postNow({ ev: 'error', id });
      postNow({ ev: 'close', id, code: 1006, reason: 'cannot connect' });
      return;
    }
    sockets.set(id, socket);
    socket.onopen = () => postNow({ ev: 'open', id, extensions: (socket as { extensions?: string }).extensions ?? '' });
    socket.onmessage = (event) => queueFrame(id, event.data);
    socket.onerror = () => postNow({ ev: 'error', id });
    socket.onclose = (event) => {
      sockets.delete(id);
      postNow({ ev: 'close', id, code: event.code, reason: event.reason });
    };
  };

  const close = (id: number, code?: number, reason?: string) => {
    const socket = sockets.get(id);
    if (!socket) return;
    try {
      socket.close(code, reason);
    } catch {
      socket.close(); // a code or reason the browser refuses; closing matters more than either
    }
  };

  scope.onmessage = (event) => {
    const message = event.data as ToSocketWorker;
    switch (message?.op) {
      case 'open':
        return open(message.id, message.url);
      case 'send': {
        // Like a browser socket that is closing or closed: the frame is dropped.
        const socket = sockets.get(message.id);
        if (socket?.readyState === OPEN) socket.send(message.data);
        return;
      }
      case 'close':
        return close(message.id, message.code, message.reason);
    }
  };
  postNow({ ev: 'ready' });
}
