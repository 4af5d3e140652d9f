// StateSync: the client of the State Sync Protocol for browsers and Node. Owns one WebSocket at
// a time, feeds its frames to the SyncEngine, reconnects with full-jitter backoff, and does not
// trust timers in background tabs: a watchdog treats long silence as a dead link, and becoming
// visible, returning from the back/forward cache or coming online checks the link at once.
import type { Change, FleetState } from '../protocol/index.js';
import { CloseCode, decodeServerFrame, encodeGetState, isTerminalCloseCode } from '../protocol/messages.js';
import { fullJitterDelay } from './backoff.js';
import { Emitter } from './emitter.js';
import { SyncEngine, type EngineCounters, type EngineResult, type ResyncReason } from './sync-engine.js';

/** The subset of the WebSocket API StateSync uses: the browser's, or `ws` in Node. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructorLike = new (url: string) => WebSocketLike;

/** Where page lifecycle events come from: `window` and `document` in a browser. */
export interface PageLike {
  addEventListener(type: string, listener: (event: { persisted?: boolean }) => void): void;
  removeEventListener(type: string, listener: (event: { persisted?: boolean }) => void): void;
  /** `document.visibilityState`. */
  visibilityState(): 'visible' | 'hidden' | string;
}

export interface TimerLike {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export type SyncStatus = 'connecting' | 'live' | 'resyncing' | 'offline';

export interface StatusEvent {
  status: SyncStatus;
  /** Why: `start`, `init`, `gap`, `drift`, `epoch`, `closed 1006`, `silence`, `resync timeout`, … */
  reason: string;
}

/**
 * One state change: a delta applied, or the whole state replaced (init or full_state). A delta's
 * `change` shares its objects with `state` (nothing is copied on the way in): treat both as
 * read-only, as the dashboard does.
 */
export type ChangeEvent =
  | { kind: 'delta'; change: Change; version: number; epoch: string }
  | { kind: 'snapshot'; source: 'init' | 'full_state'; version: number; epoch: string; epochChanged: boolean };

export interface StateSyncEvents extends Record<string, unknown> {
  change: ChangeEvent;
  status: StatusEvent;
  /** An `error` frame from the server about one of our frames. */
  serverError: { code: string; message: string };
}

export interface StateSyncOptions {
  /** WebSocket URL of the server, e.g. `wss://fleet.example.org/ws`. */
  url: string;
  /** WebSocket constructor. Default: `globalThis.WebSocket` (pass `ws` in Node 20). */
  WebSocket?: WebSocketConstructorLike;
  /** The server's beacon interval. Default 30 000 ms. */
  beaconIntervalMs?: number;
  /** Silence (no frame at all) after which the link is taken for dead. Default 2 × beacon + 60 s. */
  silenceTimeoutMs?: number;
  /** How long a get_state may stay unanswered before the link is taken for dead. Default 10 000 ms. */
  resyncTimeoutMs?: number;
  /** Backoff base and cap for reconnects. Defaults 500 ms and 30 000 ms. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Page lifecycle source. Default: `window` + `document` when present, else none. */
  page?: PageLike | null;
  /** Clock, randomness and timers, injectable for deterministic tests. */
  now?: () => number;
  random?: () => number;
  timers?: TimerLike;
}

export interface StateSyncStats extends EngineCounters {
  /** Reconnect attempts made after the first connection. */
  reconnects: number;
  /** Links given up as dead by the watchdog (silence or unanswered get_state). */
  deadLinks: number;
  messages: number;
  /** Frames of a type this client does not know, ignored (docs/PROTOCOL.md, "Compatibility"). */
  unknownFrames: number;
  /** Deltas with a change type this client does not know, healed by a full state. */
  unknownChanges: number;
}

const OPEN = 1;

export class StateSync extends Emitter<StateSyncEvents> {
  /** Owns what it receives: each message is parsed from its frame here and handed over. */
  private readonly engine = new SyncEngine(true);
  private readonly options: Required<Omit<StateSyncOptions, 'page' | 'WebSocket'>> & { WebSocket: WebSocketConstructorLike };
  private readonly page: PageLike | null;
  private socket: WebSocketLike | null = null;
  private currentStatus: StatusEvent = { status: 'offline', reason: 'not started' };
  private attempt = 0;
  private reconnectTimer: unknown = null;
  private watchdogTimer: unknown = null;
  /** When the server last sent a frame (any connection): what `silenceMs` reports. */
  private lastMessageAt = 0;
  /** When the current socket last showed life (opened or received): what the watchdog checks. */
  private linkActiveAt = 0;
  private resyncSentAt = 0;
  private started = false;
  private closed = false;
  /** Set after a terminal close: no more reconnects until start() is called again. */
  private stopped = false;
  private readonly counters = { reconnects: 0, deadLinks: 0, messages: 0, unknownFrames: 0, unknownChanges: 0 };
  /** Unknown frame and change types already warned about. */
  private readonly warned = new Set<string>();
  private readonly pageListeners: Array<[string, (event: { persisted?: boolean }) => void]> = [];

  constructor(options: StateSyncOptions) {
    super();
    const beacon = options.beaconIntervalMs ?? 30_000;
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
    if (!WebSocketImpl) throw new TypeError('StateSync: no WebSocket implementation; pass options.WebSocket (e.g. the `ws` package in Node)');
    if (typeof options.url !== 'string' || !/^wss?:\/\//.test(options.url)) throw new TypeError(`StateSync: url must be a ws:// or wss:// URL, got ${String(options.url)}`);
    this.options = {
      url: options.url,
      WebSocket: WebSocketImpl,
      beaconIntervalMs: beacon,
      silenceTimeoutMs: options.silenceTimeoutMs ?? 2 * beacon + 60_000,
      resyncTimeoutMs: options.resyncTimeoutMs ?? 10_000,
      backoffBaseMs: options.backoffBaseMs ?? 500,
      backoffCapMs: options.backoffCapMs ?? 30_000,
      now: options.now ?? Date.now,
      random: options.random ?? Math.random,
      timers: options.timers ?? { setTimeout: (cb, ms) => setTimeout(cb, ms), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) },
    };
    this.page = options.page === undefined ? browserPage() : options.page;
  }

  /** The current state, or null before the first init. Read-only: it changes on every delta. */
  get state(): Readonly<FleetState> | null {
    return this.engine.state;
  }
  get version(): number {
    return this.engine.version;
  }
  get epoch(): string | null {
    return this.engine.epoch;
  }
  get status(): StatusEvent {
    return this.currentStatus;
  }
  /** Milliseconds since the last frame from the server (any frame). */
  get silenceMs(): number {
    return this.lastMessageAt === 0 ? Infinity : this.options.now() - this.lastMessageAt;
  }
  get stats(): StateSyncStats {
    return { ...this.engine.counters, resyncs: { ...this.engine.counters.resyncs }, ...this.counters };
  }

  /**
   * Connects and keeps connected until close(). Calling it again does nothing, except after a
   * terminal close (status `offline`, reason `unauthorized`), when it connects again (e.g. after
   * a new login).
   */
  start(): void {
    if (this.closed) return;
    if (this.stopped) {
      this.stopped = false;
      this.attempt = 0;
      this.connect('start');
      return;
    }
    if (this.started) return;
    this.started = true;
    this.listenToPage();
    this.connect('start');
    this.armWatchdog();
  }

  /** Closes the socket, stops every timer and listener. Idempotent; a closed StateSync stays closed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dropSocket(CloseCode.NORMAL, 'client closed');
    this.clearTimer('reconnectTimer');
    this.clearTimer('watchdogTimer');
    for (const [type, listener] of this.pageListeners) this.page?.removeEventListener(type, listener);
    this.pageListeners.length = 0;
    this.setStatus('offline', 'closed');
    this.removeAllListeners();
  }

  /** Asks the server for the full state now (unless a request is already pending). */
  resync(reason: ResyncReason = 'manual'): void {
    this.sendResync(this.engine.requestResync(reason));
  }

  private connect(reason: string): void {
    if (this.closed) return;
    this.reconnectTimer = null;
    this.engine.connectionReset();
    this.setStatus('connecting', reason);
    let socket: WebSocketLike;
    try {
      socket = new this.options.WebSocket(this.options.url);
    } catch (error) {
      this.scheduleReconnect(`cannot connect: ${(error as Error).message}`);
      return;
    }
    this.socket = socket;
    this.linkActiveAt = this.options.now();
    socket.onmessage = (event) => {
      if (this.socket === socket) this.receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (isTerminalCloseCode(event.code)) {
        // Retrying cannot help (the session ended): stop, and let the app send the user to log in.
        this.stopped = true;
        this.setStatus('offline', 'unauthorized');
        return;
      }
      this.scheduleReconnect(`closed ${event.code}${event.reason ? ` ${event.reason}` : ''}`);
    };
    socket.onerror = () => {
      // A close event always follows; reconnecting is decided there.
    };
  }

  private receive(data: unknown): void {
    this.lastMessageAt = this.linkActiveAt = this.options.now();
    this.counters.messages++;
    const decoded = decodeServerFrame(typeof data === 'string' ? data : String(data));
    let result: EngineResult;
    switch (decoded.kind) {
      case 'invalid':
        // Not this protocol at all: the link or the server is broken; start over from init.
        console.error(`nixfleet: a frame that is not the State Sync Protocol (${decoded.reason}); reconnecting`);
        this.reconnectNow('bad frame');
        return;
      case 'unknown_frame':
        // A newer server's frame: not breakage, so a warning, once per type.
        this.counters.unknownFrames++;
        this.warnOnce(`frame type "${decoded.type}"`);
        return;
      case 'unknown_change':
        this.counters.unknownChanges++;
        this.warnOnce(`change type "${decoded.changeType}"`);
        result = this.engine.receiveUnknownChange(decoded.epoch, decoded.version);
        break;
      case 'message':
        try {
          result = this.engine.receive(decoded.message);
        } catch (error) {
          // A frame our reducer cannot apply: the local state is suspect, start over from init.
          console.error('nixfleet: failed to apply a frame; reconnecting', error);
          this.reconnectNow('bad frame');
          return;
        }
        break;
    }
    this.report(result);
  }

  /** A newer server speaks a type this client does not know: say so once, not on every frame. */
  private warnOnce(what: string): void {
    if (this.warned.has(what)) return;
    this.warned.add(what);
    console.warn(`nixfleet: ignoring a ${what} this client does not know (a newer server?)`);
  }

  private report(result: EngineResult): void {
    const epoch = this.engine.epoch!;
    const replaced = result.replaced;
    if (replaced) {
      if (replaced.source === 'init') this.attempt = 0; // backoff resets only once init is applied
      this.emit('change', { kind: 'snapshot', ...replaced, epoch });
    }
    for (const { change, version } of result.applied) this.emit('change', { kind: 'delta', change, version, epoch });
    if (result.error) this.emit('serverError', result.error);
    this.sendResync(result.resync);
    if (this.engine.pendingResync === null && this.engine.state !== null && this.currentStatus.status !== 'live') {
      this.setStatus('live', replaced?.source ?? 'caught up');
    }
  }

  private sendResync(reason: ResyncReason | null): void {
    if (reason === null) return;
    this.resyncSentAt = this.options.now();
    this.setStatus('resyncing', reason);
    if (this.socket?.readyState === OPEN) this.socket.send(encodeGetState());
    else this.engine.connectionReset(); // no link to ask on: the next init answers instead
  }

  /** Periodic check; cheap, and harmless when a background tab delays it. */
  private armWatchdog(): void {
    const every = Math.max(50, Math.min(5_000, this.options.silenceTimeoutMs / 4, this.options.resyncTimeoutMs / 2));
    this.watchdogTimer = this.options.timers.setTimeout(() => {
      this.watchdog();
      if (!this.closed) this.armWatchdog();
    }, every);
  }

  private watchdog(): void {
    if (this.socket === null) return;
    const now = this.options.now();
    if (now - this.linkActiveAt > this.options.silenceTimeoutMs) {
      this.counters.deadLinks++;
      this.reconnectNow('silence');
    } else if (this.engine.pendingResync !== null && now - this.resyncSentAt > this.options.resyncTimeoutMs) {
      this.counters.deadLinks++;
      this.reconnectNow('resync timeout');
    }
  }

  /** The page became visible, came back from bfcache or went online: verify the link now. */
  private checkNow(reason: 'visibility' | 'pageshow' | 'online'): void {
    if (this.closed || !this.started || this.stopped) return;
    if (this.socket === null) {
      // Waiting out a backoff delay: the trigger is a good moment to try at once.
      this.clearTimer('reconnectTimer');
      this.counters.reconnects++;
      this.connect(reason);
      return;
    }
    if (this.socket.readyState === OPEN && this.engine.state !== null && this.options.now() - this.linkActiveAt > this.options.beaconIntervalMs) {
      // Possibly missed frames while frozen, or a dead link: a get_state answers both (a
      // dead link then trips the resync timeout).
      this.sendResync(this.engine.requestResync(reason));
    }
  }

  private reconnectNow(reason: string): void {
    this.dropSocket(CloseCode.CLIENT_RECONNECT, reason);
    this.scheduleReconnect(reason);
  }

  private scheduleReconnect(reason: string): void {
    if (this.closed) return;
    this.clearTimer('reconnectTimer');
    this.setStatus('offline', reason);
    const delay = fullJitterDelay(this.attempt, this.options.backoffBaseMs, this.options.backoffCapMs, this.options.random);
    this.attempt++;
    this.reconnectTimer = this.options.timers.setTimeout(() => {
      this.counters.reconnects++;
      this.connect('reconnect');
    }, delay);
  }

  /**
   * Forgets the socket before closing it: on a dead link the close handshake can hang for
   * minutes, and nothing from that socket may reach the engine any more.
   */
  private dropSocket(code: number, reason: string): void {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onopen = null;
    // Not null: closing a socket that is still connecting makes `ws` emit an 'error' later,
    // which would be an uncaught exception in Node without a listener.
    socket.onerror = () => {};
    try {
      socket.close(code, reason.slice(0, 100));
    } catch {
      // already closed or never opened
    }
  }

  private listenToPage(): void {
    const page = this.page;
    if (!page) return;
    const add = (type: string, listener: (event: { persisted?: boolean }) => void) => {
      page.addEventListener(type, listener);
      this.pageListeners.push([type, listener]);
    };
    add('visibilitychange', () => {
      if (page.visibilityState() === 'visible') this.checkNow('visibility');
    });
    add('pageshow', (event) => {
      if (event.persisted) this.checkNow('pageshow');
    });
    add('online', () => this.checkNow('online'));
  }

  private setStatus(status: SyncStatus, reason: string): void {
    if (this.currentStatus.status === status && this.currentStatus.reason === reason) return;
    this.currentStatus = { status, reason };
    this.emit('status', this.currentStatus);
  }

  private clearTimer(which: 'reconnectTimer' | 'watchdogTimer'): void {
    if (this[which] !== null) this.options.timers.clearTimeout(this[which]);
    this[which] = null;
  }
}

/** window + document when running in a browser; null in Node. */
function browserPage(): PageLike | null {
  type Target = Pick<PageLike, 'addEventListener' | 'removeEventListener'>;
  const g = globalThis as unknown as { window?: Target; document?: Target & { visibilityState: string } };
  if (!g.window || !g.document) return null;
  const win = g.window;
  const doc = g.document;
  return {
    addEventListener: (type, listener) => (type === 'visibilitychange' ? doc : win).addEventListener(type, listener),
    removeEventListener: (type, listener) => (type === 'visibilitychange' ? doc : win).removeEventListener(type, listener),
    visibilityState: () => doc.visibilityState,
  };
}
