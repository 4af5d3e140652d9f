// One WebSocket client of the sync hub: its send-side flow control (a byte bound on what waits
// in its buffer, the stale mark when it falls behind), its liveness flag for ping/pong and its
// inbound rate limit, and the coalescing of its output: the frames of one committed batch leave
// in one socket write. Knows nothing of the state; the hub decides what to send.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Principal } from './auth/roles.js';
import { acceptsDeflatedSnapshot, DEFLATE_MIN_BYTES, deflatedPayload } from './deflated-snapshot.js';
import type { Frame } from './state-manager.js';
import { writeDeflatedTextFrame, writeTextFrame } from './wire-frames.js';

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
  staleSince: number | null = null;
  /** Cleared on each ping, set by the pong; a client still false at the next ping is dead. */
  alive = true;
  /** A full_state for this client is scheduled or still being written: further requests coalesce. */
  fullStatePending = false;
  /** The version of the last frame this client was sent. */
  sentVersion = -1;
  /** Inbound frames dropped for exceeding the rate, over the connection's life. */
  droppedFrames = 0;
  /** When the client was last told it is rate-limited (told at most once a second). */
  rateNoticeAt = -Infinity;
  /** Set once the server started closing this connection. */
  closing: Promise<void> | null = null;
  private snapshotBytes = 0;
  /** Whether snapshots go to this socket deflated (known from the handshake). */
  private readonly deflates: boolean;
  private tokens: number;
  private tokensAt: number;

  constructor(
    readonly socket: WebSocket,
    private readonly options: ClientConnectionOptions,
    /** Who opened this socket; null when the hub runs without access control. */
    readonly principal: Principal | null = null,
  ) {
    this.tokens = options.messagesPerSecond * 2;
    this.tokensAt = options.now();
    this.deflates = options.deflateSnapshots === true && acceptsDeflatedSnapshot(socket);
  }

  get isOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  get isStale(): boolean {
    return this.staleSince !== null;
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  /**
   * Sends a delta or beacon unless the client is stale or the frame would take its buffer over
   * the bound, in which case the client becomes stale. Returns whether the frame was sent.
   */
  send(frame: Frame): boolean {
    if (this.staleSince !== null || !this.isOpen) return false;
    if (this.socket.bufferedAmount + frame.data.length > this.options.bufferLimit + this.snapshotBytes) {
      this.staleSince = this.options.now();
      return false;
    }
    this.write(frame);
    return true;
  }

  /** Sends an init or full_state, whatever is buffered: it replaces everything the client missed. */
  sendSnapshot(frame: Frame, onWritten?: () => void): void {
    if (!this.isOpen) return;
    this.staleSince = null;
    const raw = rawSocket(this.socket);
    if (this.deflates && frame.data.length >= DEFLATE_MIN_BYTES && raw && !raw.destroyed) {
      const payload = deflatedPayload(frame, this.options.onDeflate);
      this.snapshotBytes = payload.length;
      this.sentVersion = frame.version;
      writeDeflatedTextFrame(raw, payload, onWritten);
      return;
    }
    // The full state is shared memory (one buffer for every client), so it does not count
    // against this client's own bound.
    this.snapshotBytes = frame.data.length;
    this.write(frame, onWritten);
  }

  /** Takes one token for an inbound frame; false when the client is over its rate. */
  takeToken(): boolean {
    const now = this.options.now();
    const rate = this.options.messagesPerSecond;
    this.tokens = Math.min(rate * 2, this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * `send` for each frame, stopping at the first it refuses, in one socket write: the socket is
   * corked around them, so the kernel gets one writev instead of one syscall per frame. Each
   * frame stays its own message. Returns whether all were sent.
   */
  sendAll(frames: readonly Frame[]): boolean {
    const raw = rawSocket(this.socket);
    if (!raw || raw.destroyed || !this.isOpen) return false;
    // Corked bytes still count in bufferedAmount, so the bound in send() keeps working.
    raw.cork();
    try {
      for (const frame of frames) if (!this.send(frame)) return false;
      return true;
    } finally {
      raw.uncork();
    }
  }

  private write(frame: Frame, onWritten?: () => void): void {
    this.sentVersion = frame.version;
    const raw = rawSocket(this.socket);
    // The prepared frame is shared by every client. Never through ws.send with compression:
    // ws would deflate per client, asynchronously, letting a later frame overtake it.
    if (raw && !raw.destroyed) writeTextFrame(raw, frame, onWritten);
    else this.socket.send(frame.data, { binary: false, compress: false }, onWritten);
  }
}

/** The TCP socket under a ws WebSocket (`_socket` is not public API; absent before open). */
function rawSocket(ws: WebSocket): Socket | undefined {
  return (ws as unknown as { _socket?: Socket })._socket;
}
