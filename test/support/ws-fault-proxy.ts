// A WebSocket-level fault proxy between clients and a real server: every client connection is
// paired with its own upstream connection, and frames are forwarded one by one, so a test can
// drop, duplicate, rewrite, inject or hold frames, stall a link (half-open: up but silent) or reset it, and, per
// link, delay frames with jitter (order kept, as TCP keeps it) or throttle a slow reader.
// Plain HTTP requests are passed through untouched, Host header included, as a reverse proxy
// would: a browser can load the dashboard from the proxy (`httpUrl`), and its socket, wherever
// the page opens it (a worker included), goes through the faults.
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

export type Direction = 'down' | 'up'; // down: server → client; up: client → server

export interface FrameRule {
  direction: Direction;
  /** Which frames: return true to act on this one. Receives the parsed JSON (or null). */
  match: (message: any, raw: string) => boolean;
  /** `rewrite`: the frame goes on as `rewrite(message)`, re-encoded (what a newer server would send). */
  action: 'drop' | 'duplicate' | 'rewrite';
  rewrite?: (message: any) => unknown;
  /** How many matching frames to act on; then the rule is removed. */
  times: number;
  /** Only on links with this tag (the `c` query parameter of the client's URL). */
  tag?: string;
}

/** How one link carries server → client frames: fixed delay plus jitter, and a byte rate. */
export interface LinkShape {
  delayMs?: number;
  jitterMs?: number;
  /** A slow reader: bytes per second; the upstream socket stops being read while 16 KiB wait. */
  bytesPerSecond?: number;
}

export interface Link {
  /** The `c` query parameter of the client's URL, to aim faults at one client. */
  tag: string;
  client: WebSocket;
  upstream: WebSocket;
  stalled: boolean;
  shape: LinkShape;
  queue: Array<{ raw: string; at: number }>;
  queuedBytes: number;
  releaseAt: number;
  timer: NodeJS.Timeout | null;
}

const SLOW_READER_HIGH_WATER = 16 * 1024;

export class WsFaultProxy {
  readonly links = new Set<Link>();
  readonly stats = { dropped: 0, duplicated: 0, rewritten: 0, injected: 0, connections: 0, resets: 0, stalls: 0, delayed: 0 };
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

  /** Listens on `port` (0: any free one) of 127.0.0.1. */
  static async start(upstreamUrl: string, port = 0): Promise<WsFaultProxy> {
    const http = createServer((req, res) => proxy.passThrough(req, res));
    const wss = new WebSocketServer({ noServer: true });
    const proxy = new WsFaultProxy(http, wss, upstreamUrl);
    http.on('upgrade', (req, socket, head) => {
      if (proxy.refuse) return socket.destroy();
      const tag = new URL(req.url ?? '/', 'http://proxy').searchParams.get('c') ?? '';
      wss.handleUpgrade(req, socket, head, (client) => proxy.pair(client, req.headers, tag));
    });
    await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.http.address() as AddressInfo).port}/ws`;
  }

  /** The proxy's HTTP origin: load the dashboard from here and its socket goes through the proxy. */
  get httpUrl(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
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

  /** Rewrites the next `times` server frames of this type, e.g. into a change type of a newer server. */
  rewriteNext(type: string, rewrite: (message: any) => unknown, times = 1): void {
    this.addRule({ direction: 'down', match: (m) => m?.type === type, action: 'rewrite', rewrite, times });
  }

  /** Sends `raw` down every link (or those tagged `tag`) now, in order with the frames already queued. */
  inject(raw: string, tag?: string): void {
    for (const link of this.select(tag)) {
      this.stats.injected++;
      this.deliverDown(link, raw);
    }
  }

  /** Half-open: every link (or those tagged `tag`) stays connected but nothing flows until resume(). */
  stall(tag?: string): void {
    for (const link of this.select(tag)) {
      link.stalled = true;
      this.stats.stalls++;
    }
  }

  resume(tag?: string): void {
    for (const link of this.select(tag)) link.stalled = false;
  }

  /** Resets every link (or those tagged `tag`) abruptly (no close frame), as a network failure would. */
  resetAll(tag?: string): void {
    for (const link of this.select(tag)) {
      this.stats.resets++;
      link.client.terminate();
      link.upstream.terminate();
    }
  }

  /** Closes the links tagged `tag` (all when undefined) cleanly, as a server going away would. */
  closeLinks(tag?: string, code = 1001): void {
    for (const link of this.select(tag)) {
      if (link.client.readyState === WebSocket.OPEN) link.client.close(code, 'proxy closed the link');
      if (link.upstream.readyState === WebSocket.OPEN) link.upstream.close(1000);
    }
  }

  /** Shapes server → client traffic on the links tagged `tag` (all when undefined); `{}` restores. */
  shape(shape: LinkShape, tag?: string): void {
    for (const link of this.select(tag)) link.shape = shape;
  }

  /** Ends every fault: resumes stalled links, removes the rules and shapes (queued frames still go). */
  heal(): void {
    this.rules = [];
    const now = Date.now();
    for (const link of this.links) {
      link.stalled = false;
      link.shape = {};
      for (const queued of link.queue) queued.at = Math.min(queued.at, now);
      link.releaseAt = Math.min(link.releaseAt, now);
      if (link.timer) clearTimeout(link.timer);
      link.timer = null;
      this.pump(link);
    }
  }

  private select(tag: string | undefined): Link[] {
    return [...this.links].filter((link) => tag === undefined || link.tag === tag);
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

  private passThrough(req: IncomingMessage, res: ServerResponse): void {
    const upstream = new URL(this.upstreamUrl);
    const forwarded = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forwarded.on('error', () => res.headersSent ? res.destroy() : res.writeHead(502).end());
    req.pipe(forwarded);
  }

  private pair(client: WebSocket, headers: IncomingHttpHeaders, tag: string): void {
    this.stats.connections++;
    // The client's credentials and the Host it asked for travel on, as through a reverse proxy.
    const forwarded: Record<string, string> = {};
    for (const name of ['authorization', 'cookie', 'origin', 'host'] as const) {
      const value = headers[name];
      if (typeof value === 'string') forwarded[name] = value;
    }
    const upstream = new WebSocket(this.upstreamUrl, { headers: forwarded });
    const link: Link = { tag, client, upstream, stalled: false, shape: {}, queue: [], queuedBytes: 0, releaseAt: 0, timer: null };
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
      if (link.timer) clearTimeout(link.timer);
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
    const rule = this.rules.find((r) => r.direction === direction && (r.tag === undefined || r.tag === link.tag) && r.match(message, raw));
    let copies = 1;
    if (rule) {
      rule.times--;
      if (rule.times <= 0) this.rules.splice(this.rules.indexOf(rule), 1);
      if (rule.action === 'drop') {
        this.stats.dropped++;
        return;
      }
      if (rule.action === 'rewrite') {
        this.stats.rewritten++;
        raw = JSON.stringify(rule.rewrite!(message));
      } else {
        this.stats.duplicated++;
        copies = 2;
      }
    }
    for (let i = 0; i < copies; i++) {
      if (direction === 'down') this.deliverDown(link, raw);
      else if (target.readyState === WebSocket.OPEN) target.send(raw);
    }
  }

  /** Server → client, through the link's shape: FIFO, so delay and jitter never reorder frames. */
  private deliverDown(link: Link, raw: string): void {
    const { delayMs = 0, jitterMs = 0, bytesPerSecond } = link.shape;
    if (link.queue.length === 0 && delayMs === 0 && jitterMs === 0 && bytesPerSecond === undefined) {
      if (link.client.readyState === WebSocket.OPEN) link.client.send(raw);
      return;
    }
    this.stats.delayed++;
    const now = Date.now();
    const transfer = bytesPerSecond ? (Buffer.byteLength(raw) / bytesPerSecond) * 1000 : 0;
    link.releaseAt = Math.max(link.releaseAt, now + delayMs + Math.random() * jitterMs) + transfer;
    link.queue.push({ raw, at: link.releaseAt });
    link.queuedBytes += raw.length;
    if (link.queuedBytes > SLOW_READER_HIGH_WATER) link.upstream.pause(); // backpressure reaches the server
    this.pump(link);
  }

  private pump(link: Link): void {
    if (link.timer) return;
    const next = link.queue[0];
    if (!next) return;
    link.timer = setTimeout(() => {
      link.timer = null;
      const now = Date.now();
      while (link.queue.length > 0 && link.queue[0]!.at <= now) {
        const { raw } = link.queue.shift()!;
        link.queuedBytes -= raw.length;
        if (!link.stalled && link.client.readyState === WebSocket.OPEN) link.client.send(raw);
      }
      if (link.queuedBytes <= SLOW_READER_HIGH_WATER / 2 && link.upstream.isPaused) link.upstream.resume();
      this.pump(link);
    }, Math.max(0, next.at - Date.now()));
  }
}

/** Close codes a peer may send on the wire (1005/1006 are local-only). */
function validCloseCode(code: number): number {
  return code === 1005 || code === 1006 || code < 1000 ? 1000 : code;
}
