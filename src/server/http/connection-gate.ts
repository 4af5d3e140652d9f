// How long a connection may hold a descriptor. ConnectionGate caps the TCP connections (HTTP and
// WebSocket alike: an upgrade keeps its connection) one client address may hold, and the process
// in all, so no client can take every file descriptor. It counts at accept, before a byte is
// parsed; an address is its peer IP (an IPv6 client by its /64), and trusted proxies are exempt
// from the per-address cap, since every client behind them shares their address. Whatever is
// refused is told why, then destroyed, never left half-closed for the client to let go of.
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { clientBucket, type TrustedProxies } from '../auth/client-address.js';
import type { Logger } from '../logger.js';

export interface ConnectionGateOptions {
  perAddress: number;
  total: number;
  exempt: TrustedProxies;
  /** A TLS listener: refusals cannot be answered in plain HTTP, they are only closed. */
  secure: boolean;
  logger: Logger;
}

const REFUSAL_BODY = JSON.stringify({ error: 'too_many_connections', message: 'too many open connections from your address (or to this server); close some and retry' });
const REFUSAL = `HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${REFUSAL_BODY.length}\r\n\r\n${REFUSAL_BODY}`;

export class ConnectionGate {
  private readonly perBucket = new Map<string, number>();
  private openCount = 0;
  readonly stats = { refusedPerAddress: 0, refusedTotal: 0 };

  constructor(private readonly options: ConnectionGateOptions) {}

  /** Counts every connection the server accepts, ahead of the HTTP machinery. */
  attach(server: Server): void {
    server.prependListener('connection', (socket: Socket) => this.admit(socket));
  }

  /** Connections open now. */
  get open(): number {
    return this.openCount;
  }

  private admit(socket: Socket): void {
    const peer = socket.remoteAddress;
    if (peer === undefined) return void socket.destroy(); // gone before we saw it
    const bucket = this.options.exempt.contains(peer) ? null : (clientBucket(peer) ?? peer);
    const held = bucket === null ? 0 : (this.perBucket.get(bucket) ?? 0);
    if (this.openCount >= this.options.total) {
      this.stats.refusedTotal++;
      return this.refuse(socket, 'connection refused: the server holds its maximum of connections (NIXFLEET_MAX_CONNECTIONS)', { open: this.openCount });
    }
    if (bucket !== null && held >= this.options.perAddress) {
      this.stats.refusedPerAddress++;
      return this.refuse(socket, 'connection refused: the address holds its maximum of connections (NIXFLEET_MAX_CONNECTIONS_PER_ADDRESS)', { address: bucket, open: held });
    }
    this.openCount++;
    if (bucket !== null) this.perBucket.set(bucket, held + 1);
    socket.once('close', () => {
      this.openCount--;
      if (bucket === null) return;
      const left = (this.perBucket.get(bucket) ?? 1) - 1;
      if (left > 0) this.perBucket.set(bucket, left);
      else this.perBucket.delete(bucket);
    });
  }

  private refuse(socket: Socket, message: string, fields: Record<string, unknown>): void {
    this.options.logger.warn(message, fields);
    socket.on('error', () => {});
    if (this.options.secure) return void socket.destroy();
    answerAndDestroy(socket, REFUSAL);
  }
}

/**
 * Writes a last answer and destroys the socket once the kernel has it, or after a second when
 * the peer reads nothing: its descriptor never waits for the client to close.
 */
export function answerAndDestroy(socket: Duplex, answer: string): void {
  if (!socket.writable) return void socket.destroy();
  socket.end(answer, () => socket.destroy());
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** The server's 'clientError': a request the parser refused or that ran out of time. */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
  answerAndDestroy(socket, `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
