// An emulation of the original NixFleet Go agent, message for message as it writes them
// (../shared/spec/nixfleet-agent-protocol.md and its source): unset strings as "", the git
// compartment left empty, metrics as floats, output lines without `command` or `seq`, a stop
// answered by `status stopped 130`. Tests drive it step by step; it also makes a host "have a
// live agent" for tests about something else.
import WebSocket from 'ws';
import { until } from './until.js';

export interface ReceivedAgentMessage {
  type: string;
  payload: any;
}

export interface GoAgentOptions {
  hostname: string;
  /** Default `nixos`. */
  hostType?: string;
  generation?: string;
  agentVersion?: string;
}

export class GoAgent {
  readonly received: ReceivedAgentMessage[] = [];
  closeCode: number | null = null;
  closeReason = '';
  /** HTTP status of a refused upgrade. */
  refusedStatus: number | null = null;
  private socket: WebSocket | null = null;
  private beating: NodeJS.Timeout | null = null;
  private readonly listeners = new Set<(message: ReceivedAgentMessage) => void>();

  constructor(
    readonly wsUrl: string,
    readonly token: string,
    readonly options: GoAgentOptions,
  ) {}

  /** Opens the socket; resolves when it is open, or when the upgrade was refused. */
  connect(): Promise<void> {
    this.closeCode = null;
    this.refusedStatus = null;
    return new Promise((resolve) => {
      const socket = new WebSocket(this.wsUrl, { headers: { authorization: `Bearer ${this.token}` } });
      this.socket = socket;
      socket.on('open', () => resolve());
      socket.on('unexpected-response', (_req, res) => {
        this.refusedStatus = res.statusCode ?? null;
        res.resume();
        resolve();
      });
      socket.on('error', () => resolve());
      socket.on('message', (data) => {
        const message = JSON.parse(data.toString()) as ReceivedAgentMessage;
        this.received.push(message);
        for (const listener of this.listeners) listener(message);
      });
      socket.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
      });
    });
  }

  /** connect + register + wait for `registered`. */
  async start(): Promise<this> {
    await this.connect();
    this.register();
    // Registering commits a change (and, with PostgreSQL, takes a lease): generous on a busy machine.
    await this.waitFor('registered', 0, 15_000);
    return this;
  }

  /** Calls `listener` with every message received from now on; returns the function that stops it. */
  onMessage(listener: (message: ReceivedAgentMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Opens a new link and registers again, waiting for the new `registered` (an agent coming
   * back). Rejects at once when the server does not accept the link.
   */
  async reconnect(): Promise<void> {
    const seen = this.ofType('registered').length;
    await this.connect();
    if (!this.open) throw new Error(`agent ${this.options.hostname}: the server did not accept the link`);
    this.register();
    await this.waitFor('registered', seen);
  }

  get open(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  send(type: string, payload: unknown): void {
    this.socket!.send(JSON.stringify({ type, payload }));
  }

  register(overrides: Record<string, unknown> = {}): void {
    this.send('register', {
      hostname: this.options.hostname,
      host_type: this.options.hostType ?? 'nixos',
      agent_version: this.options.agentVersion ?? '3.1.0',
      os_version: '24.11 (Vicuna)',
      nixpkgs_version: '24.11.20250101.abcdef0',
      generation: this.options.generation ?? 'a1b2c3d',
      theme_color: '#7aa2f7',
      heartbeat_interval: 5,
      location: 'home',
      device_type: 'server',
      repo_url: '',
      repo_dir: '/home/fleet/nixcfg',
      ...overrides,
    });
  }

  heartbeat(runs: string | null = null, pid: number | null = null, overrides: Record<string, unknown> = {}): void {
    this.send('heartbeat', {
      generation: this.options.generation ?? 'a1b2c3d',
      nixpkgs_version: '24.11.20250101.abcdef0',
      pending_command: runs,
      command_pid: pid,
      metrics: { cpu: 12.5, ram: 43.25, swap: 0, load: 0.42 },
      update_status: {
        git: { status: '', message: '', checked_at: '' },
        lock: { status: 'ok', message: 'flake.lock is current', checked_at: '2026-12-01T10:00:00Z' },
        system: { status: 'outdated', message: 'a newer generation is built', checked_at: '2026-12-01T10:00:00+01:00' },
        tests: { status: 'unknown', message: '', checked_at: '' },
      },
      ...overrides,
    });
  }

  /** As the Go agent's sendOutput: `command` and `is_error` left at their zero values. */
  output(line: string, stream: 'stdout' | 'stderr' = 'stdout'): void {
    this.send('output', { line, stream, command: '', is_error: false });
  }

  status(status: string, command: string, exitCode: number, message = '', generation = ''): void {
    this.send('status', { status, command, exit_code: exitCode, ...(message ? { message } : {}), ...(generation ? { generation } : {}) });
  }

  rejected(current: string, pid: number): void {
    this.send('command_rejected', { reason: 'command already running', current_command: current, current_pid: pid });
  }

  /** The n-th (from 0) message of `type` received, waiting for it. */
  async waitFor(type: string, index = 0, timeoutMs = 5000): Promise<ReceivedAgentMessage> {
    await until(`agent ${this.options.hostname} receives ${type} #${index}`, () => this.ofType(type).length > index, timeoutMs);
    return this.ofType(type)[index]!;
  }

  ofType(type: string): ReceivedAgentMessage[] {
    return this.received.filter((m) => m.type === type);
  }

  async waitClosed(timeoutMs = 5000): Promise<number> {
    await until(`agent ${this.options.hostname} socket closed`, () => this.closeCode !== null || this.refusedStatus !== null, timeoutMs);
    return this.closeCode ?? this.refusedStatus!;
  }

  /** Drops the link without a close frame, as a killed process or a cut cable does. */
  kill(): void {
    this.socket?.terminate();
  }

  close(): void {
    this.stopBeating();
    this.socket?.close(1000);
  }

  /**
   * Beats every `ms` with nothing to publish (no metrics, no compartments), so the host stays
   * online without adding versions: for tests about something else.
   */
  keepBeating(ms = 1000): this {
    this.stopBeating();
    this.beating = setInterval(() => {
      if (this.open) this.heartbeat(null, null, { metrics: null, update_status: null });
    }, ms).unref();
    return this;
  }

  stopBeating(): void {
    if (this.beating) clearInterval(this.beating);
    this.beating = null;
  }
}

type ServerWithAgents = Parameters<typeof connectGoAgent>[0] & { manager: { state: { hosts: Map<string, { hostname: string }> } } };

/**
 * Gives each host (existing, by id) a live Go agent that beats quietly: the host is online and
 * can run commands. Closed by `defer`.
 */
export async function withAgents(server: ServerWithAgents, hostIds: readonly string[], defer: (cleanup: () => unknown) => void): Promise<GoAgent[]> {
  return Promise.all(
    hostIds.map(async (id) => {
      const agent = await connectGoAgent(server, id, server.manager.state.hosts.get(id)?.hostname ?? id);
      defer(() => agent.close());
      return agent.keepBeating();
    }),
  );
}

/** An agent token bound to `hostId` and a Go agent registered with it: the host is online. */
export async function connectGoAgent(server: { auth: { createToken: (input: { name: string; role: 'agent'; hostId: string }, by: string) => Promise<{ token: string }> }; wsUrl: string }, hostId: string, hostname = hostId): Promise<GoAgent> {
  const { token } = await server.auth.createToken({ name: `agent-${hostId}`, role: 'agent', hostId }, 'tests');
  return new GoAgent(server.wsUrl, token, { hostname }).start();
}

/**
 * A quietly beating Go agent for `hostId` on a server reached only over HTTP (a server process):
 * its token is created with the admin token through the API.
 */
export async function goAgentVia(server: { url: string; wsUrl: string; token: string }, hostId: string, hostname = hostId): Promise<GoAgent> {
  const res = await fetch(`${server.url}/api/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `agent ${hostId}`, role: 'agent', host_id: hostId }),
  });
  if (res.status !== 201) throw new Error(`agent token for ${hostId}: ${res.status} ${await res.text()}`);
  const { token } = (await res.json()) as { token: string };
  const agent = await new GoAgent(server.wsUrl, token, { hostname }).start();
  return agent.keepBeating();
}
