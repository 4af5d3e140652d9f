// WorkerSockets: WebSockets that live in a dedicated Worker (socket-worker.ts), seen from the page
// as ordinary WebSocketLike objects. Pass `.WebSocket` to StateSync and nothing above the socket
// changes: the engine, the watchdog and the page triggers stay on the page. What changes is the
// cost: in Chromium every WebSocket message is a main-thread task of its own, and at thousands of
// messages/s those tasks alone push frames past their 16 ms (bench/chromium-baseline.mjs: from
// 5,000/s on a slow 2-core machine, 20,000/s on a faster one). Here the page runs one task per
// batch of frames.
//
// If the first worker cannot start (a CSP without worker-src, a missing script, no Worker at
// all), sockets fail with 1006 and later ones are opened with `fallback` on the page. If a worker
// dies after one has worked (an error, or silence: it must accept every open within
// `workerTimeoutMs`), its sockets close with 1006 and the next socket starts a new worker.
import type { FromSocketWorker, ToSocketWorker } from './socket-worker.js';
import type { WebSocketConstructorLike, WebSocketLike } from './state-sync.js';

/**
 * A handler property that a DOM `Worker` satisfies: declared through a method so its parameter is
 * checked bivariantly (the DOM's handlers take a full MessageEvent; we only read `data`).
 */
type Handler<E> = { handle(event: E): void }['handle'];

/** The part of the browser's `Worker` used here. */
export interface WorkerLike {
  onmessage: Handler<{ data: unknown }> | null;
  onerror: Handler<unknown> | null;
  postMessage(message: ToSocketWorker): void;
  terminate(): void;
}

export interface WorkerSocketsOptions {
  /**
   * Opens sockets on the page once the worker proved unable to start. Default: the page's own
   * `globalThis.WebSocket`; `null`: none, sockets keep failing with 1006.
   */
  fallback?: WebSocketConstructorLike | null;
  /** How long the worker may leave an `open` unanswered before it is taken for dead. Default 10 000 ms. */
  workerTimeoutMs?: number;
}

export interface WorkerSocketsStats {
  /** Worker messages received, each a batch of events. */
  batches: number;
  /** WebSocket frames delivered through them. */
  frames: number;
  /** Workers started (more than one: a worker died and was replaced). */
  workersStarted: number;
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

export class WorkerSockets {
  /** The constructor to give StateSync (`options.WebSocket`). */
  readonly WebSocket: WebSocketConstructorLike;
  readonly stats: WorkerSocketsStats = { batches: 0, frames: 0, workersStarted: 0 };
  private worker: WorkerLike | null = null;
  /** The current worker has answered: a later failure is a crash, not an inability to start. */
  private workerReady = false;
  /** Some worker has answered: workers can run here, so one that is slow to start is just slow. */
  private everReady = false;
  /** The worker could not start: sockets go to the fallback from now on. */
  private unusable = false;
  private nextId = 1;
  private readonly sockets = new Map<number, WorkerSocket>();
  private readonly fallback: WebSocketConstructorLike | null;
  private readonly workerTimeoutMs: number;
  /** Opens posted to the worker and not yet accepted, with the timer that gives up on it. */
  private readonly unaccepted = new Map<number, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly createWorker: () => WorkerLike,
    options: WorkerSocketsOptions = {},
  ) {
    this.fallback = options.fallback === undefined ? ((globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket ?? null) : options.fallback;
    this.workerTimeoutMs = options.workerTimeoutMs ?? 10_000;
    const owner = this;
    // A constructor that returns the socket it made: `new` on it yields a WorkerSocket, or the
    // fallback's socket once the worker is unusable.
    this.WebSocket = function OpenSocket(url: string) {
      return owner.open(url);
    } as unknown as WebSocketConstructorLike;
  }

  /** Where new sockets are opened: `worker`, or `page` once the worker could not start. */
  get mode(): 'worker' | 'page' {
    return this.unusable && this.fallback ? 'page' : 'worker';
  }

  /** The sockets in the worker that are not closed yet, for debugging (and tests). */
  describe(): Array<{ url: string; readyState: number; extensions: string }> {
    return [...this.sockets.values()].map(({ url, readyState, extensions }) => ({ url, readyState, extensions }));
  }

  /** Closes every socket (1006) and stops the worker. Sockets opened later start a new one. */
  terminate(): void {
    this.dropWorker('socket worker terminated');
  }

  private open(url: string): WebSocketLike {
    if (this.unusable && this.fallback) return new this.fallback(url);
    const id = this.nextId++;
    const socket = new WorkerSocket(url, (message) => this.post(message), () => this.sockets.delete(id), id);
    this.sockets.set(id, socket);
    if (this.unusable || !this.ensureWorker()) {
      queueMicrotask(() => socket.fail('socket worker unavailable'));
      return socket;
    }
    this.post({ op: 'open', id, url });
    const worker = this.worker;
    this.unaccepted.set(
      id,
      setTimeout(() => {
        if (this.worker === worker) this.workerFailed('not answering');
      }, this.workerTimeoutMs),
    );
    return socket;
  }

  private ensureWorker(): boolean {
    if (this.worker) return true;
    try {
      const worker = this.createWorker();
      worker.onmessage = (event) => {
        if (this.worker === worker) this.receive(event.data as FromSocketWorker[]);
      };
      worker.onerror = () => {
        if (this.worker === worker) this.workerFailed('failed');
      };
      this.worker = worker;
      this.workerReady = false;
      this.stats.workersStarted++;
      return true;
    } catch {
      this.unusable = true; // `new Worker` threw: blocked, or no Worker in this environment
      return false;
    }
  }

  private post(message: ToSocketWorker): void {
    this.worker?.postMessage(message);
  }

  private receive(batch: FromSocketWorker[]): void {
    this.stats.batches++;
    for (const event of batch) {
      if (event.ev === 'ready') {
        this.workerReady = this.everReady = true;
        continue;
      }
      if (event.ev === 'accepted') {
        clearTimeout(this.unaccepted.get(event.id));
        this.unaccepted.delete(event.id);
        continue;
      }
      // Events of a socket the page has already forgotten (it closed) are dropped.
      const socket = this.sockets.get(event.id);
      if (!socket) continue;
      if (event.ev === 'frames') {
        this.stats.frames += event.frames.length;
        socket.deliverFrames(event.frames);
      } else if (event.ev === 'open') socket.opened(event.extensions);
      else if (event.ev === 'error') socket.errored();
      else socket.closed(event.code, event.reason);
    }
  }

  private workerFailed(how: string): void {
    // A first worker that fails before its first word never ran (CSP, 404, syntax, or too slow
    // to be worth waiting for): workers will not do here. Once one has run, a replacement that
    // fails to start is retried with the next socket instead.
    if (!this.workerReady && !this.everReady) this.unusable = true;
    this.dropWorker(this.workerReady ? `socket worker ${how}` : `socket worker could not start (${how})`);
  }

  private dropWorker(reason: string): void {
    const worker = this.worker;
    this.worker = null;
    if (worker) {
      worker.onmessage = null;
      worker.onerror = null;
      worker.terminate();
    }
    for (const timer of this.unaccepted.values()) clearTimeout(timer);
    this.unaccepted.clear();
    for (const socket of [...this.sockets.values()]) socket.fail(reason);
  }
}

/** The page's handle on one socket in the worker: a WebSocketLike whose events arrive in batches. */
class WorkerSocket implements WebSocketLike {
  readyState = CONNECTING;
  /** The negotiated extensions, as the browser's `WebSocket.extensions` reports them. */
  extensions = '';
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(
    readonly url: string,
    private readonly post: (message: ToSocketWorker) => void,
    private readonly forget: () => void,
    private readonly id: number,
  ) {}

  send(data: string): void {
    if (this.readyState === CONNECTING) throw new Error('InvalidStateError: the socket is still connecting');
    if (this.readyState === OPEN) this.post({ op: 'send', id: this.id, data });
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= CLOSING) return;
    this.readyState = CLOSING;
    this.post({ op: 'close', id: this.id, ...(code === undefined ? {} : { code }), ...(reason === undefined ? {} : { reason }) });
  }

  opened(extensions: string): void {
    if (this.readyState !== CONNECTING) return;
    this.readyState = OPEN;
    this.extensions = extensions;
    this.onopen?.({ type: 'open' });
  }

  deliverFrames(frames: unknown[]): void {
    for (const data of frames) {
      // As in a browser, nothing is delivered once close() was called, even mid-batch.
      if (this.readyState !== OPEN || !this.onmessage) return;
      this.onmessage({ data });
    }
  }

  errored(): void {
    this.onerror?.({ type: 'error' });
  }

  closed(code: number, reason: string): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.forget();
    this.onclose?.({ code, reason });
  }

  /** The worker is gone: an abnormal close, as when a network link dies. */
  fail(reason: string): void {
    if (this.readyState === CLOSED) return;
    this.errored();
    this.closed(1006, reason);
  }
}
