// One WebSocket client of the sync hub and the small state machines it owns: send-side flow
// control (a byte bound on what waits in its buffer, the stale mark when it falls behind), the
// coalescing of its output (the frames of one committed batch leave in one socket write), one
// pending full state at a time, its inbound rate limit, ping/pong liveness and its close. Knows
// nothing of the state; the hub decides what to send.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/roles.js';
import { acceptsDeflatedSnapshot, DEFLATE_MIN_BYTES, deflatedPayload } from './deflated-snapshot.js';
import type { Frame } from '../state-manager.js';
import { TokenBucket } from '../token-bucket.js';
import { writeSnapshotFrame, type WireFrame } from './wire-frames.js';

export interface ClientConnectionOptions {
  /** Bytes that may wait in the socket's send buffer, besides the latest full state. */
  bufferLimit: number;
  /** Client frames per second (token bucket holding two seconds' worth). */
  messagesPerSecond: number;
  now: () => number;
  /** Send init and full_state deflated when the socket negotiated permessage-deflate. */
  deflateSnapshots?: boolean;
  /** Told each time a snapshot had to be deflated (once per version when caching works). */
  onDeflate?: () => void;
}

let nextClientId = 1;

export class ClientConnection {
  readonly id = nextClientId++;
  /** Set when the client fell behind: it gets no deltas until it drains and receives a full state. */
  private staleAt: number | null = null;
  /** Cleared on each ping, set by the pong; a client still false at the next ping is dead. */
  private alive = true;
  /** A full_state for this client is scheduled or still being written: further requests coalesce. */
  private fullStatePending = false;
  /** The version of the last frame this client was sent. */
  private lastSentVersion = -1;
  /** Inbound frames dropped for exceeding the rate, over the connection's life. */
  private droppedFrames = 0;
  /** When the client was last told it is rate-limited (told at most once a second). */
  private rateNoticeAt = -Infinity;
  /** Set once the server started closing this connection. */
  private closing: Promise<void> | null = null;
  private snapshotBytes = 0;
  /** Whether snapshots go to this socket deflated (known from the handshake). */
  private readonly deflates: boolean;
  /** The TCP socket under the WebSocket, where prepared frames are written. */
  private readonly raw: Socket;
  /** Inbound frames: two seconds' worth at the client's rate. */
  private readonly inbound: TokenBucket;

  constructor(
    readonly socket: WebSocket,
    private readonly options: ClientConnectionOptions,
    /** Who opened this socket; null when the hub runs without access control. */
    readonly principal: Principal | null = null,
  ) {
    this.inbound = new TokenBucket(options.messagesPerSecond * 2, options.messagesPerSecond, options.now);
    this.deflates = options.deflateSnapshots === true && acceptsDeflatedSnapshot(socket);
    this.raw = rawSocket(socket);
  }

  get isOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN && !this.raw.destroyed;
  }

  get isStale(): boolean {
    return this.staleAt !== null;
  }

  /** When the client fell behind, or null while it keeps up. */
  get staleSince(): number | null {
    return this.staleAt;
  }

  /** The version of the last frame this client was sent. */
  get sentVersion(): number {
    return this.lastSentVersion;
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  /**
   * Sends a delta or beacon unless the client is stale or the frame would take its buffer over
   * the bound, in which case the client becomes stale. Returns whether the frame was sent.
   */
  send(frame: WireFrame): boolean {
    if (this.staleAt !== null || !this.isOpen) return false;
    if (this.socket.bufferedAmount + frame.bytes.length > this.options.bufferLimit + this.snapshotBytes) {
      this.staleAt = this.options.now();
      return false;
    }
    this.lastSentVersion = frame.version;
    this.raw.write(frame.bytes);
    return true;
  }

  /** Sends an init or full_state, whatever is buffered: it replaces everything the client missed. */
  sendSnapshot(frame: Frame, onWritten?: () => void): void {
    if (!this.isOpen) return;
    this.staleAt = null;
    const compressed = this.deflates && frame.data.length >= DEFLATE_MIN_BYTES;
    const payload = compressed ? deflatedPayload(frame, this.options.onDeflate) : frame.data;
    // The snapshot is shared memory (one buffer for every client), so it does not count against
    // this client's own bound.
    this.snapshotBytes = payload.length;
    this.lastSentVersion = frame.version;
    writeSnapshotFrame(this.raw, payload, compressed, onWritten);
  }

  /**
   * Answers a get_state with one full state taken when it is sent, unless one is already
   * scheduled or on its way (requests coalesce); a stale client gets its full state when it
   * drains instead. `onSend` is told each time one is sent.
   */
  requestFullState(snapshot: () => Frame, onSend: () => void): void {
    if (this.fullStatePending) return;
    this.fullStatePending = true;
    setImmediate(() => {
      if (this.isStale || !this.isOpen) {
        this.fullStatePending = false;
        return;
      }
      onSend();
      this.sendSnapshot(snapshot(), () => {
        this.fullStatePending = false;
      });
    });
  }

  /**
   * What to do with an inbound frame, by the client's rate (a token bucket of two seconds'
   * worth): `accept` it; `drop` it silently; drop it and `notify` the client (at most once a
   * second, so a flood cannot make the server flood back); or `close` the connection once it
   * has sent ten seconds' worth of frames beyond its rate.
   */
  admitFrame(): 'accept' | 'drop' | 'notify' | 'close' {
    if (this.inbound.take() === 0) return 'accept';
    const now = this.options.now();
    this.droppedFrames++;
    if (this.droppedFrames > this.options.messagesPerSecond * 10) return 'close';
    if (now - this.rateNoticeAt < 1000) return 'drop';
    this.rateNoticeAt = now;
    return 'notify';
  }

  /** The client answered a ping. */
  pong(): void {
    this.alive = true;
  }

  /** Pings the client; false (and no ping) when it never answered the previous one: it is dead. */
  ping(): boolean {
    if (!this.alive) return false;
    this.alive = false;
    this.socket.ping();
    return true;
  }

  /** Starts the close handshake and destroys the socket if it does not finish within `graceMs`. Idempotent. */
  close(code: number, reason: string, graceMs: number): Promise<void> {
    const ws = this.socket;
    this.closing ??= new Promise<void>((resolve) => {
      if (ws.readyState === ws.CLOSED) return resolve();
      const timer = setTimeout(() => ws.terminate(), graceMs).unref();
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close(code, reason);
    });
    return this.closing;
  }

  /**
   * `send` for each frame, stopping at the first it refuses, in one socket write: the socket is
   * corked around them, so the kernel gets one writev instead of one syscall per frame. Each
   * frame stays its own message. Returns whether all were sent.
   */
  sendAll(frames: readonly WireFrame[]): boolean {
    if (!this.isOpen) return false;
    // Corked bytes still count in bufferedAmount, so the bound in send() keeps working.
    this.raw.cork();
    try {
      for (const frame of frames) if (!this.send(frame)) return false;
      return true;
    } finally {
      this.raw.uncork();
    }
  }
}

/** The TCP socket under an open ws WebSocket (`_socket` is not public API). */
function rawSocket(ws: WebSocket): Socket {
  const socket = (ws as unknown as { _socket?: Socket })._socket;
  if (!socket) throw new Error('a ClientConnection needs an open WebSocket');
  return socket;
}
