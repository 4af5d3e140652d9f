// What the agent's tests share: FakeAgentServer, a small real agent endpoint (the real server
// side is built elsewhere): a WebSocketServer on an ephemeral port that checks the Bearer token,
// records every message with the connection it came on, answers `register` as the test says, and
// can refuse upgrades, cut the link, or stop answering pings; startTestAgent, an in-process
// agent with real processes as ops, in a temp dir; and processGone.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { Agent, type AgentDeps } from '../src/agent/agent.js';
import { parseAgentConfig } from '../src/agent/config.js';
import { statOf } from '../src/agent/process-group.js';
import type { RegisteredPayload, RegisterPayload } from '../src/protocol/agent-wire.js';
import { createLogger } from '../src/server/logger.js';

export interface Received {
  type: string;
  payload: Record<string, unknown>;
  /** 1 for the first accepted connection, 2 for the next, … */
  connection: number;
  at: number;
}

export interface FakeServerOptions {
  token?: string;
  /** Answer to the n-th `register` (1-based); null: no `registered` at all. Default `{host_id: hostname}`. */
  registered?: (register: RegisterPayload, connection: number) => RegisteredPayload | null;
  /** Answer pings (default true); false makes the link look dead to the agent. */
  autoPong?: boolean;
}

export class FakeAgentServer {
  readonly received: Received[] = [];
  /** Upgrade requests seen, accepted or refused. */
  upgrades = 0;
  connections = 0;
  /** When each connection was accepted. */
  readonly acceptedAt: number[] = [];
  /** When set, upgrades are answered with this HTTP status. */
  refuseWith: number | null = null;
  /** Close codes of the agent sockets, in order. */
  readonly closeCodes: number[] = [];
  private socket: WebSocket | null = null;
  private readonly wss: WebSocketServer;

  private constructor(
    private readonly http: Server,
    readonly url: string,
    private readonly options: FakeServerOptions,
    wss: WebSocketServer,
  ) {
    this.wss = wss;
  }

  static async start(options: FakeServerOptions = {}): Promise<FakeAgentServer> {
    const token = options.token ?? 'agent-secret';
    const http = createServer((_request, response) => response.writeHead(404).end());
    const wss = new WebSocketServer({ noServer: true, autoPong: options.autoPong ?? true });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const { port } = http.address() as AddressInfo;
    const server = new FakeAgentServer(http, `ws://127.0.0.1:${port}/ws`, options, wss);
    http.on('upgrade', (request, socket, head) => {
      server.upgrades++;
      const status = server.refuseWith ?? (request.headers.authorization === `Bearer ${token}` && request.url === '/ws' ? null : 401);
      if (status !== null) {
        socket.end(`HTTP/1.1 ${status} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => server.accept(ws));
    });
    return server;
  }

  private accept(ws: WebSocket): void {
    const connection = ++this.connections;
    this.acceptedAt.push(Date.now());
    this.socket = ws;
    ws.on('close', (code) => this.closeCodes.push(code));
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string; payload: Record<string, unknown> };
      this.received.push({ ...frame, connection, at: Date.now() });
      if (frame.type === 'register') {
        const register = frame.payload as unknown as RegisterPayload;
        const answer = this.options.registered ? this.options.registered(register, connection) : { host_id: register.hostname };
        if (answer) ws.send(JSON.stringify({ type: 'registered', payload: answer }));
      }
    });
  }

  /** Messages of one type (payloads), optionally on one connection. */
  of(type: string, connection?: number): Record<string, unknown>[] {
    return this.received.filter((message) => message.type === type && (connection === undefined || message.connection === connection)).map((message) => message.payload);
  }

  /** Sends to the agent on the latest connection. */
  send(type: string, payload: unknown): void {
    if (!this.socket) throw new Error('no agent connected');
    this.socket.send(JSON.stringify({ type, payload }));
  }

  command(op: string, commandId?: string): void {
    this.send('command', { command: op, ...(commandId ? { command_id: commandId } : {}) });
  }

  /** Closes the agent's socket with a close frame, as the server does. */
  closeWith(code: number, reason = ''): void {
    this.socket?.close(code, reason);
  }

  /** Cuts the link without a close handshake, as a dying network does. */
  cut(): void {
    this.socket?.terminate();
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

/** A process is gone: no /proc entry, or a zombie nobody reaped yet (it no longer runs). */
export function processGone(pid: number): boolean {
  const stat = statOf(pid);
  return stat === null || stat.state === 'Z';
}

export const TEST_TOKEN = 'agent-secret';
export const TEST_FACTS = { os_version: 'NixOS 24.11 (Vicuna)', nixpkgs_version: '24.11.20241126.abcdef0', generation: 'abc1234' };

export interface TestAgentOptions {
  server?: FakeServerOptions;
  /** Extra NIXFLEET_* variables. */
  env?: Record<string, string>;
  /** Ops file entries; {repo_dir} is the test's temp dir. */
  ops?: Record<string, string | string[] | null>;
  deps?: Partial<AgentDeps>;
}

export interface TestAgent {
  server: FakeAgentServer;
  agent: Agent;
  dir: string;
  /** The agent's log lines, parsed. */
  logs: Array<{ level: string; msg: string } & Record<string, unknown>>;
}

/**
 * A fake server and an in-process agent (heartbeat 0.2 s, stop grace 1 s, fast backoff) that
 * runs ops as real processes from an ops file. `defer` undoes it all after the test.
 */
export async function startTestAgent(defer: (cleanup: () => unknown) => void, options: TestAgentOptions = {}): Promise<TestAgent> {
  const server = await FakeAgentServer.start(options.server);
  defer(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), 'nixfleet-agent-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  const env: Record<string, string> = {
    NIXFLEET_URL: server.url,
    NIXFLEET_TOKEN: TEST_TOKEN,
    NIXFLEET_HOSTNAME: 'web-01',
    NIXFLEET_INTERVAL: '0.2',
    NIXFLEET_STOP_GRACE: '1',
    NIXFLEET_REPO_DIR: dir,
    ...options.env,
  };
  if (options.ops) {
    writeFileSync(join(dir, 'ops.json'), JSON.stringify({ ops: options.ops }));
    env.NIXFLEET_OPS_FILE = join(dir, 'ops.json');
  }
  const logs: TestAgent['logs'] = [];
  const agent = new Agent(parseAgentConfig(env, 'linux'), {
    logger: createLogger('debug', (line) => logs.push(JSON.parse(line))),
    hostFacts: () => ({ ...TEST_FACTS }),
    timing: { backoffBaseMs: 20, backoffCapMs: 200 },
    ...options.deps,
  });
  defer(() => agent.close());
  await agent.start();
  return { server, agent, dir, logs };
}

/** A shell script in `dir`, for an ops file entry ["sh", "{repo_dir}/<name>"]. */
export function script(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
}
