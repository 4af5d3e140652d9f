// A WebSocket-level fault proxy between clients and a real server: every client connection is
// paired with its own upstream connection, and frames are forwarded one by one, so a test can
// drop, duplicate or hold frames, stall a link (half-open: up but silent) or reset it.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

export type Direction = 'down' | 'up'; // down: server → client; up: client → server

export interface FrameRule {
  direction: Direction;
  /** Which frames: return true to act on this one. Receives the parsed JSON (or null). */
  match: (message: any, raw: string) => boolean;
  action: 'drop' | 'duplicate';
  /** How many matching frames to act on; then the rule is removed. */
  times: number;
}

interface Link {
  client: WebSocket;
  upstream: WebSocket;
  stalled: boolean;
}

export class WsFaultProxy {
  readonly links = new Set<Link>();
  readonly stats = { dropped: 0, duplicated: 0, connections: 0 };
  private rules: FrameRule[] = [];
  private upstreamUrl: string;
  private refuse = false;

  private constructor(
    private readonly http: Server,
    private readonly wss: WebSocketServer,
    upstreamUrl: string,
  ) {
    this.upstreamUrl = upstreamUrl;
  }

  static async start(upstreamUrl: string): Promise<WsFaultProxy> {
    const http = createServer((_req, res) => res.writeHead(404).end());
    const wss = new WebSocketServer({ noServer: true });
    const proxy = new WsFaultProxy(http, wss, upstreamUrl);
    http.on('upgrade', (req, socket, head) => {
      if (proxy.refuse) return socket.destroy();
      wss.handleUpgrade(req, socket, head, (client) => proxy.pair(client, req.headers));
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.http.address() as AddressInfo).port}/ws`;
  }

  /** Points new connections at another upstream (a restarted server on a new port). */
  setUpstream(url: string): void {
    this.upstreamUrl = url;
  }

  addRule(rule: Omit<FrameRule, 'times'> & { times?: number }): void {
    this.rules.push({ times: 1, ...rule });
  }

  /** Drops the next `times` server frames of this type. */
  dropNext(type: string, times = 1): void {
    this.addRule({ direction: 'down', match: (m) => m?.type === type, action: 'drop', times });
  }

  /** Half-open: every link stays connected but nothing flows either way until resume(). */
  stall(): void {
    for (const link of this.links) link.stalled = true;
  }

  resume(): void {
    for (const link of this.links) link.stalled = false;
  }

  /** Resets every link abruptly (no close frame), as a network failure would. */
  resetAll(): void {
    for (const link of this.links) {
      link.client.terminate();
      link.upstream.terminate();
    }
  }

  /** While set, new connections are refused at the TCP level. */
  setRefusing(refuse: boolean): void {
    this.refuse = refuse;
  }

  async close(): Promise<void> {
    this.resetAll();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private pair(client: WebSocket, headers: IncomingHttpHeaders): void {
    this.stats.connections++;
    // The client's credentials travel on, as through any reverse proxy.
    const forwarded: Record<string, string> = {};
    for (const name of ['authorization', 'cookie', 'origin'] as const) {
      const value = headers[name];
      if (typeof value === 'string') forwarded[name] = value;
    }
    const upstream = new WebSocket(this.upstreamUrl, { headers: forwarded });
    const link: Link = { client, upstream, stalled: false };
    this.links.add(link);
    const pendingUp: string[] = [];
    upstream.on('open', () => {
      for (const raw of pendingUp.splice(0)) upstream.send(raw);
    });
    upstream.on('message', (data) => this.forward(link, 'down', data.toString()));
    client.on('message', (data) => {
      if (upstream.readyState === WebSocket.CONNECTING) pendingUp.push(data.toString());
      else this.forward(link, 'up', data.toString());
    });
    const end = (from: WebSocket, to: WebSocket) => (code: number, reason: Buffer) => {
      this.links.delete(link);
      if (to.readyState === WebSocket.OPEN) to.close(validCloseCode(code), reason.toString());
      else to.terminate();
      void from;
    };
    upstream.on('close', end(upstream, client));
    client.on('close', end(client, upstream));
    upstream.on('error', () => client.terminate());
    client.on('error', () => upstream.terminate());
  }

  private forward(link: Link, direction: Direction, raw: string): void {
    if (link.stalled) return;
    const target = direction === 'down' ? link.client : link.upstream;
    let message: unknown = null;
    try {
      message = JSON.parse(raw);
    } catch {}
    const rule = this.rules.find((r) => r.direction === direction && r.match(message, raw));
    if (rule) {
      rule.times--;
      if (rule.times <= 0) this.rules.splice(this.rules.indexOf(rule), 1);
      if (rule.action === 'drop') {
        this.stats.dropped++;
        return;
      }
      this.stats.duplicated++;
      if (target.readyState === WebSocket.OPEN) target.send(raw);
    }
    if (target.readyState === WebSocket.OPEN) target.send(raw);
  }
}

/** Close codes a peer may send on the wire (1005/1006 are local-only). */
function validCloseCode(code: number): number {
  return code === 1005 || code === 1006 || code < 1000 ? 1000 : code;
}
