// The agent's one WebSocket to the server, kept up: dial with the Bearer token, ping every 10 s
// and give up on a link silent for 45 s, reconnect with full-jitter backoff (1 s → 60 s), reset
// once a connection stayed up. It carries text; what the messages mean is agent.ts's business.
import WebSocket from 'ws';
import { fullJitterDelay } from '../client/backoff.js';
import { AgentCloseCode } from '../protocol/agent-wire.js';
import type { Logger } from '../server/logger.js';
import type { AgentClock } from './clock.js';
import { AGENT_VERSION } from './version.js';

export interface LinkTiming {
  /** Between our pings. */
  pingIntervalMs: number;
  /** A link with no pong and no message for this long is dead. */
  deadAfterMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  /** A connection up this long resets the backoff. */
  stableAfterMs: number;
  /** Time allowed for the TCP, TLS and HTTP upgrade. */
  handshakeTimeoutMs: number;
}

export const DEFAULT_LINK_TIMING: Readonly<LinkTiming> = Object.freeze({
  pingIntervalMs: 10_000,
  deadAfterMs: 45_000,
  backoffBaseMs: 1000,
  backoffCapMs: 60_000,
  stableAfterMs: 30_000,
  handshakeTimeoutMs: 15_000,
});

export interface LinkEvents {
  /** A socket is open (register now). */
  open(): void;
  message(text: string): void;
  /** The open socket closed; a reconnect is scheduled unless the link was closed. */
  down(reason: string): void;
}

export interface LinkOptions {
  url: string;
  token: string;
  logger: Logger;
  clock: AgentClock;
  random: () => number;
  timing: LinkTiming;
}

/** A WebSocket to the agent endpoint, authenticated as the original agent does. */
export function openAgentSocket(url: string, token: string, handshakeTimeoutMs: number): WebSocket {
  return new WebSocket(url, {
    headers: { Authorization: `Bearer ${token}`, 'User-Agent': `nixfleet-agent/${AGENT_VERSION}` },
    handshakeTimeout: handshakeTimeoutMs,
  });
}

/** Words for an HTTP status refusing the upgrade. */
export function describeUpgradeRefusal(status: number): string {
  if (status === 401) return '401: the server refused the token (check NIXFLEET_TOKEN)';
  if (status === 403) return '403: the token may not act as this host (check NIXFLEET_TOKEN and NIXFLEET_HOSTNAME)';
  if (status === 404) return '404: no WebSocket endpoint at this URL (check NIXFLEET_URL; the path is usually /ws)';
  return `${status}: the server refused the WebSocket upgrade`;
}

/** What the server's own close codes (docs/AGENT-PROTOCOL.md) mean for whoever reads the log. */
const SERVER_CLOSES: Readonly<Record<number, { level: 'info' | 'warn' | 'error'; text: string }>> = {
  [AgentCloseCode.GOING_AWAY]: { level: 'info', text: 'the server is shutting down or restarting' },
  [AgentCloseCode.PROTOCOL_ERROR]: { level: 'error', text: 'the server says this agent broke the protocol' },
  [AgentCloseCode.UNAUTHORIZED]: { level: 'error', text: 'the token was revoked (configure a new NIXFLEET_TOKEN)' },
  [AgentCloseCode.WRONG_HOST]: { level: 'error', text: 'the token may not register this hostname (check NIXFLEET_HOSTNAME and NIXFLEET_TOKEN)' },
  [AgentCloseCode.SILENT]: { level: 'warn', text: 'the server heard nothing from this agent for too long' },
  [AgentCloseCode.REPLACED]: { level: 'warn', text: 'another agent registered as this host; trying again after the longest backoff' },
};

export class AgentLink {
  private socket: WebSocket | null = null;
  private attempt = 0;
  private closed = false;
  private lastSeen = 0;
  private cancelPing: (() => void) | null = null;
  private cancelRetry: (() => void) | null = null;

  constructor(
    private readonly options: LinkOptions,
    private readonly events: LinkEvents,
  ) {}

  start(): void {
    if (this.socket === null && this.cancelRetry === null && !this.closed) this.dial();
  }

  get isOpen(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Bytes queued in the socket, not yet written to the kernel. */
  get bufferedAmount(): number {
    return this.socket?.bufferedAmount ?? 0;
  }

  /** Sends on the open socket; false (and `onWritten` is not called) when there is none. */
  send(text: string, onWritten?: (error?: Error) => void): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(text, onWritten ? (error) => onWritten(error ?? undefined) : undefined);
    return true;
  }

  /** Closes the socket cleanly and dials again at once (a simulated agent restart). */
  reconnectNow(reason: string): void {
    if (this.closed) return;
    this.cancelRetry?.();
    this.cancelRetry = null;
    this.attempt = 0;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      this.stopPinging();
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.close(1000, reason);
      this.events.down(reason);
    }
    this.dial();
  }

  /** Stops for good: closes the socket with `code` and resolves once it is closed (at most 2 s). */
  close(code = 1000, reason = 'agent stopping'): Promise<void> {
    this.closed = true;
    this.cancelRetry?.();
    this.cancelRetry = null;
    this.stopPinging();
    const socket = this.socket;
    if (!socket || socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const cancel = this.options.clock.after(2000, () => {
        socket.terminate();
        resolve();
      });
      socket.once('close', () => {
        cancel();
        resolve();
      });
      if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
      else socket.close(code, reason);
    });
  }

  private dial(): void {
    const { url, token, logger, timing } = this.options;
    logger.debug('connecting', { url });
    const socket = openAgentSocket(url, token, timing.handshakeTimeoutMs);
    this.socket = socket;
    let refusal: string | null = null;
    let lastError: string | null = null;
    let openedAt: number | null = null;

    socket.on('unexpected-response', (_request, response) => {
      refusal = describeUpgradeRefusal(response.statusCode ?? 0);
      response.resume();
      socket.terminate();
    });
    socket.on('error', (error) => {
      lastError = error.message;
    });
    socket.on('open', () => {
      openedAt = this.lastSeen = this.options.clock.now();
      logger.info('connected', { url });
      this.schedulePing(socket);
      this.events.open();
    });
    const alive = () => (this.lastSeen = this.options.clock.now());
    socket.on('pong', alive);
    socket.on('ping', alive);
    socket.on('message', (data, isBinary) => {
      alive();
      if (!isBinary) this.events.message(data.toString());
    });
    socket.on('close', (code, reasonBuffer) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.stopPinging();
      const wasOpen = openedAt !== null;
      const upFor = openedAt !== null ? this.options.clock.now() - openedAt : 0;
      if (wasOpen) {
        const reason = `closed with ${code}${reasonBuffer.length ? ` (${reasonBuffer.toString()})` : ''}`;
        const known = SERVER_CLOSES[code];
        // A close this agent asked for (stopping, restarting) is news, not trouble.
        const level = this.closed ? 'info' : (known?.level ?? 'warn');
        logger[level](known ? `disconnected: ${known.text}` : 'disconnected', { reason });
        this.events.down(reason);
      } else if (refusal !== null) {
        // Logged at error: a refused token does not heal by itself, but the original keeps
        // retrying (the token may be registered on the server later), and so do we.
        logger.error(`the server refused the connection: ${refusal}`, { url });
      } else {
        logger.warn('cannot connect', { url, error: lastError ?? `closed with ${code}` });
      }
      if (this.closed) return;
      if (upFor >= timing.stableAfterMs) this.attempt = 0;
      // Replaced by a newer connection of this host: that one is the agent now. Coming straight
      // back would replace it in turn, and two agents would take turns forever.
      const delay = code === AgentCloseCode.REPLACED ? timing.backoffCapMs : fullJitterDelay(this.attempt++, timing.backoffBaseMs, timing.backoffCapMs, this.options.random);
      logger.info('reconnecting', { in_ms: delay, attempt: this.attempt });
      this.cancelRetry = this.options.clock.after(delay, () => {
        this.cancelRetry = null;
        if (!this.closed) this.dial();
      });
    });
  }

  /** Pings on a timer; terminates the socket once it has been silent past the dead-link limit. */
  private schedulePing(socket: WebSocket): void {
    const { clock, timing, logger } = this.options;
    this.cancelPing = clock.after(timing.pingIntervalMs, () => {
      if (this.socket !== socket || socket.readyState !== WebSocket.OPEN) return;
      const silentFor = clock.now() - this.lastSeen;
      if (silentFor >= timing.deadAfterMs) {
        logger.warn('no pong from the server: the link is dead', { silent_ms: silentFor });
        socket.terminate();
        return;
      }
      socket.ping();
      this.schedulePing(socket);
    });
  }

  private stopPinging(): void {
    this.cancelPing?.();
    this.cancelPing = null;
  }
}
