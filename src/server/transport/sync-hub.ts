// The WebSocket side of the protocol: accepts clients at /ws, sends `init` in the same step as
// registering them, fans every committed delta out in version order, sends the `sync` beacon,
// answers `get_state`, reaps dead peers with ping/pong and bounds what a slow client can cost.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { CloseCode, encodeError, parseClientMessage, type ErrorCode } from '../../protocol/index.js';
import type { Principal } from '../auth/roles.js';
import { ClientConnection } from './client-connection.js';
import { maybeCrash } from '../fault-injection.js';
import { silentLogger, type Logger } from '../logger.js';
import type { Frame, StateManager } from '../state-manager.js';
import { toWire, type WireFrame } from './wire-frames.js';
import { rawToString } from './raw-data.js';

export interface SyncHubOptions {
  beaconIntervalMs: number;
  pingIntervalMs: number;
  clientBufferLimit: number;
  slowClientTimeoutMs: number;
  maxClientMessageBytes: number;
  clientMessagesPerSecond: number;
  /** Connections beyond this are closed with 1013 (try again later). */
  maxClients?: number;
  logger?: Logger;
  now?: () => number;
  /** Re-checks the credential behind each socket; a socket whose credential ended is closed with 4401. */
  credentials?: CredentialCheck;
  /**
   * Negotiate permessage-deflate and send init/full_state deflated (once per version, shared by
   * every client). Deltas are never compressed. Default true.
   */
  deflateSnapshots?: boolean;
}

export interface CredentialCheck {
  stillValid(principal: Principal): boolean;
  /** An open socket counts as use of its session. */
  keepAlive(principal: Principal): void;
  /** Fires when any credential ends (logout, revocation, removal). */
  onRevoke(listener: () => void): () => void;
}

/** How often open sockets' credentials are re-checked (expiry is time-based). */
const CREDENTIAL_CHECK_MS = 1000;

/** How often stale clients are checked for having drained. */
const STALE_CHECK_MS = 50;
/** How long a closing socket gets for the close handshake before it is destroyed. */
const CLOSE_GRACE_MS = 1000;

export class SyncHub {
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<ClientConnection>();
  private readonly staleClients = new Set<ClientConnection>();
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly timers: NodeJS.Timeout[] = [];
  private staleTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private unsubscribeRevoke: (() => void) | null = null;
  private closing = false;
  readonly stats = { connections: 0, staleMarks: 0, slowClosed: 0, reaped: 0, fullStatesSent: 0, clientErrors: 0, rateLimitClosed: 0, snapshotDeflations: 0 };
  private readonly deflates: boolean;

  constructor(
    private readonly manager: StateManager,
    private readonly options: SyncHubOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.deflates = options.deflateSnapshots ?? true;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxClientMessageBytes,
      // Accepting the extension costs an idle connection nothing (ws creates zlib contexts only
      // when a compressed frame arrives); server_no_context_takeover makes each message standalone.
      perMessageDeflate: this.deflates ? { serverNoContextTakeover: true, clientNoContextTakeover: true } : false,
      clientTracking: false,
    });
  }

  /** Subscribes to commits and starts the beacon and ping timers. */
  start(): void {
    this.unsubscribe = this.manager.subscribeBatches((deltas) => this.broadcast(deltas));
    this.timers.push(setInterval(() => this.beacon(), this.options.beaconIntervalMs).unref());
    this.timers.push(setInterval(() => this.ping(), this.options.pingIntervalMs).unref());
    const credentials = this.options.credentials;
    if (credentials) {
      this.unsubscribeRevoke = credentials.onRevoke(() => this.checkCredentials());
      this.timers.push(setInterval(() => this.checkCredentials(), CREDENTIAL_CHECK_MS).unref());
    }
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** A view of each client's flow-control state, for metrics and tests. */
  inspectClients(): Array<{ id: number; bufferedAmount: number; stale: boolean; sentVersion: number }> {
    return [...this.clients].map((c) => ({ id: c.id, bufferedAmount: c.bufferedAmount, stale: c.isStale, sentVersion: c.sentVersion }));
  }

  /** Hands an authenticated HTTP upgrade request for /ws to the WebSocket server. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, principal: Principal | null = null): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, principal));
  }

  /** Closes every client with 1001 and stops the timers. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.unsubscribe?.();
    this.unsubscribeRevoke?.();
    for (const timer of this.timers) clearInterval(timer);
    if (this.staleTimer) clearInterval(this.staleTimer);
    const closed = [...this.clients].map((client) => client.close(CloseCode.GOING_AWAY, 'server shutting down', CLOSE_GRACE_MS));
    await Promise.all(closed);
    this.wss.close();
  }

  private accept(ws: WebSocket, principal: Principal | null): void {
    // An 'error' listener first: without one, a frame over maxPayload crashes the process.
    ws.on('error', (error) => {
      this.stats.clientErrors++;
      this.logger.debug('client socket error', { error: error.message });
    });
    if (this.closing || this.clients.size >= (this.options.maxClients ?? Infinity)) {
      ws.close(CloseCode.TRY_AGAIN_LATER, this.closing ? 'server shutting down' : 'too many clients');
      return;
    }
    const client = new ClientConnection(ws, {
      bufferLimit: this.options.clientBufferLimit,
      messagesPerSecond: this.options.clientMessagesPerSecond,
      now: this.now,
      deflateSnapshots: this.deflates,
      onDeflate: this.onDeflate,
    }, principal);
    ws.on('message', (data, isBinary) => {
      try {
        this.receive(client, data, isBinary);
      } catch (error) {
        this.logger.error('failed to handle a client frame', { client: client.id, error: (error as Error).message });
        ws.close(CloseCode.INTERNAL_ERROR, 'internal error');
      }
    });
    ws.on('pong', () => client.pong());
    ws.on('close', () => {
      this.clients.delete(client);
      this.staleClients.delete(client);
    });
    // Registering and sending init happen in one synchronous step: no commit can fall between
    // them, so no delta precedes init and none is missing or doubled after it.
    this.clients.add(client);
    this.stats.connections++;
    client.sendSnapshot(this.manager.snapshotFrame('init'));
  }

  private receive(client: ClientConnection, data: RawData, isBinary: boolean): void {
    switch (client.admitFrame()) {
      case 'accept':
        break;
      case 'drop':
        return;
      case 'notify':
        this.reject(client, 'rate_limited', `more than ${this.options.clientMessagesPerSecond} frames per second; frames are being dropped`);
        return;
      case 'close':
        this.stats.rateLimitClosed++;
        void client.close(CloseCode.POLICY_VIOLATION, 'rate limit exceeded', CLOSE_GRACE_MS);
        return;
    }
    if (isBinary) {
      this.reject(client, 'invalid_message', 'binary frames are not accepted; send JSON text frames');
      return;
    }
    const parsed = parseClientMessage(rawToString(data));
    if (!parsed.ok) {
      this.reject(client, parsed.code, parsed.message);
      return;
    }
    switch (parsed.message.type) {
      case 'get_state':
        client.requestFullState(() => this.manager.snapshotFrame('full_state'), () => this.stats.fullStatesSent++);
        return;
    }
  }

  private reject(client: ClientConnection, code: ErrorCode, message: string): void {
    if (client.isOpen) client.socket.send(encodeError(code, message), { compress: false });
  }

  private readonly onDeflate = (): void => {
    this.stats.snapshotDeflations++;
  };

  /**
   * Fans a committed batch out, client by client: a client's deltas of the batch leave in one
   * socket write (coalescing) and it gets them before the next client is served, so the first
   * clients do not wait for the last one's sends.
   */
  private broadcast(deltas: readonly Frame[]): void {
    const frames = deltas.map(toWire); // once per batch, shared by every client
    let left = this.clients.size;
    for (const client of this.clients) {
      this.deliver(client, frames);
      if (--left > 0) maybeCrash('mid_broadcast'); // some clients have this batch, others not yet
    }
  }

  private beacon(): void {
    const frames = [toWire(this.manager.syncFrame())];
    for (const client of this.clients) this.deliver(client, frames);
  }

  private deliver(client: ClientConnection, frames: readonly WireFrame[]): void {
    const sent = frames.length === 1 ? client.send(frames[0]!) : client.sendAll(frames);
    if (sent || !client.isStale || this.staleClients.has(client)) return;
    this.stats.staleMarks++;
    this.staleClients.add(client);
    this.logger.warn('client fell behind; deltas paused until it drains', { client: client.id, buffered: client.bufferedAmount });
    this.staleTimer ??= setInterval(() => this.checkStale(), STALE_CHECK_MS).unref();
  }

  /** Stale clients that drained get one full state; those stuck too long are closed with 4008. */
  private checkStale(): void {
    const now = this.now();
    for (const client of this.staleClients) {
      if (!client.isOpen) {
        this.staleClients.delete(client);
      } else if (client.bufferedAmount <= this.options.clientBufferLimit / 4) {
        this.staleClients.delete(client);
        this.stats.fullStatesSent++;
        client.sendSnapshot(this.manager.snapshotFrame('full_state'));
      } else if (now - (client.staleSince ?? now) > this.options.slowClientTimeoutMs) {
        this.staleClients.delete(client);
        this.stats.slowClosed++;
        this.logger.warn('closing a client that stopped reading', { client: client.id, buffered: client.bufferedAmount });
        void client.close(CloseCode.SLOW_CONSUMER, 'slow consumer', CLOSE_GRACE_MS);
      }
    }
    if (this.staleClients.size === 0 && this.staleTimer) {
      clearInterval(this.staleTimer);
      this.staleTimer = null;
    }
  }

  /** Closes, with 4401, every socket whose session or token has ended. */
  private checkCredentials(): void {
    const credentials = this.options.credentials;
    if (!credentials) return;
    for (const client of this.clients) {
      if (!client.principal) continue;
      if (credentials.stillValid(client.principal)) {
        credentials.keepAlive(client.principal);
        continue;
      }
      this.clients.delete(client);
      this.staleClients.delete(client);
      void client.close(CloseCode.UNAUTHORIZED, 'session ended', CLOSE_GRACE_MS);
    }
  }

  private ping(): void {
    for (const client of this.clients) {
      if (client.ping()) continue;
      this.stats.reaped++;
      this.clients.delete(client);
      this.staleClients.delete(client);
      client.socket.terminate();
    }
  }
}

