// The agent wire protocol (docs/AGENT-PROTOCOL.md): what a host's agent and the server say to
// each other over /ws. It is the original NixFleet agent's protocol, message for message, so an
// unmodified Go agent works with our server; our own agent adds a few optional fields (marked
// "extension") that the original dashboard would ignore and that our server uses when present.
// Types only and tiny helpers: free of zod and Node, shared by the agent and the server.

/** Every message, both ways. No version, no id. */
export interface AgentEnvelope<T extends string = string, P = unknown> {
  type: T;
  payload: P;
}

/** What the Go agent sends for a string it never set: "" (not null, not absent). */
export type GoString = string;

/** One of the four checks the agent runs: git, lock, system, tests. */
export interface WireCompartment {
  /** `ok | outdated | error | unknown`; "" when never checked (the Go agent leaves `git` empty). */
  status: GoString;
  message: GoString;
  /** RFC 3339, or "" when never checked. */
  checked_at: GoString;
}

export interface WireUpdateStatus {
  git?: WireCompartment | null;
  lock?: WireCompartment | null;
  system?: WireCompartment | null;
  tests?: WireCompartment | null;
}

/** Percentages (floats) and the 1-minute load average. */
export interface WireMetrics {
  cpu: number;
  ram: number;
  swap: number;
  load: number;
}

// ── agent → server ─────────────────────────────────────────────────────────────────────────────

export interface RegisterPayload {
  hostname: string;
  /** `nixos` or `macos`. */
  host_type: GoString;
  agent_version: GoString;
  os_version: GoString;
  nixpkgs_version: GoString;
  /** Git commit of the fleet config the host runs. */
  generation: GoString;
  theme_color?: GoString;
  /** Seconds between heartbeats. */
  heartbeat_interval?: number;
  location?: GoString;
  device_type?: GoString;
  repo_url?: GoString;
  repo_dir?: GoString;
  source_commit?: GoString;
  store_path?: GoString;
  binary_hash?: GoString;
}

export interface HeartbeatPayload {
  generation: GoString;
  nixpkgs_version: GoString;
  /** The op the agent is running now, or null. */
  pending_command: string | null;
  command_pid: number | null;
  metrics: WireMetrics | null;
  update_status: WireUpdateStatus | null;
  source_commit?: GoString;
  store_path?: GoString;
  binary_hash?: GoString;
  lock_hash?: GoString;
}

export interface OutputPayload {
  /** One line, without its newline. */
  line: string;
  stream: 'stdout' | 'stderr';
  /** The op this line belongs to. */
  command: string;
  is_error: boolean;
  /**
   * Extension: 1, 2, 3, … per command run. The server keeps the last one it stored, drops a line
   * it already has (a resend after a reconnect) and says in `registered` where it stopped.
   */
  seq?: number;
}

export interface StatusPayload {
  /** `ok | error`; `warning` is seen for a version mismatch. */
  status: string;
  command: string;
  exit_code: number;
  message?: string;
  generation?: string;
}

export interface CommandRejectedPayload {
  reason: string;
  current_command: GoString;
  current_pid: number;
}

export interface OperationProgressPayload {
  progress: Record<string, unknown>;
}

export interface TestProgressPayload {
  current: number;
  total: number;
  passed: number;
  running: boolean;
  result: string;
}

export interface CommandCompletePayload {
  command: string;
  exit_code: number;
  fresh_status?: WireUpdateStatus | null;
}

export interface AgentToServer {
  register: RegisterPayload;
  heartbeat: HeartbeatPayload;
  output: OutputPayload;
  status: StatusPayload;
  command_rejected: CommandRejectedPayload;
  operation_progress: OperationProgressPayload;
  test_progress: TestProgressPayload;
  command_complete: CommandCompletePayload;
}

// ── server → agent ─────────────────────────────────────────────────────────────────────────────

export interface RegisteredPayload {
  host_id: string;
  /**
   * Extension: the op of the host's unfinished command as the server sees it, or null. An agent
   * that finished that op while the link was down resends its `status`; an agent whose last
   * result the server already has does not.
   */
  command?: string | null;
  /** Extension: the last output `seq` the server stored for that command (0: none). */
  output_seq?: number;
  /**
   * Extension: the server's id of that command (the `command_id` it was sent with), so an agent
   * never mistakes it for an earlier run of the same op.
   */
  command_id?: string | null;
}

export interface CommandPayload {
  /** The op name (`pull`, `switch`, …, or `stop` to stop the running one). */
  command: string;
  /** Extension: the server's id of the command, for logs. */
  command_id?: string;
}

export interface KillCommandPayload {
  signal: 'SIGTERM' | 'SIGKILL';
  /** 0: the current command. */
  pid: number;
}

export interface ServerToAgent {
  registered: RegisteredPayload;
  command: CommandPayload;
  kill_command: KillCommandPayload;
}

export type AgentMessageType = keyof AgentToServer;
export type ServerToAgentType = keyof ServerToAgent;

export const AGENT_MESSAGE_TYPES = [
  'register',
  'heartbeat',
  'output',
  'status',
  'command_rejected',
  'operation_progress',
  'test_progress',
  'command_complete',
] as const satisfies readonly AgentMessageType[];

/** Ops the agents know. `stop`, `restart` and `reboot` are accepted while another op runs. */
export const AGENT_OPS = [
  'pull',
  'switch',
  'pull-switch',
  'test',
  'rollback',
  'update',
  'refresh-git',
  'refresh-lock',
  'refresh-system',
  'refresh-all',
  'force-update',
  'check-version',
  'stop',
  'restart',
  'reboot',
] as const;

/** Ops after whose success the original agent exits so that its new build runs. */
export const SWITCH_OPS: readonly string[] = ['switch', 'pull-switch'];

/** Exit code of an agent that restarts itself after a successful switch (systemd restarts it). */
export const SWITCH_RESTART_EXIT_CODE = 101;

export function encodeAgentMessage<T extends keyof (AgentToServer & ServerToAgent)>(type: T, payload: (AgentToServer & ServerToAgent)[T]): string {
  return JSON.stringify({ type, payload });
}

/** Close codes the server uses on an agent's socket (docs/AGENT-PROTOCOL.md, "Close codes"). */
export const AgentCloseCode = {
  /** The server is shutting down or restarting: reconnect. */
  GOING_AWAY: 1001,
  /** The agent broke the protocol: no `register` first, or none within the register timeout. */
  PROTOCOL_ERROR: 1008,
  /** The token was revoked or removed. */
  UNAUTHORIZED: 4401,
  /** `register` named a host other than the one the token is bound to, or a name that cannot be a host's. */
  WRONG_HOST: 4403,
  /** No heartbeat (nor any frame) for `missed heartbeats × interval`. */
  SILENT: 4408,
  /** A newer connection registered for the same host. */
  REPLACED: 4409,
} as const;
