// The agent's configuration: read from NIXFLEET_* environment variables like the original Go
// agent (plus a few of ours), every default in one table that --help prints too, and a clear
// error naming the variable for each value that makes no sense. Nothing else reads process.env.
import { hostname as systemHostname } from 'node:os';

export type AgentLogLevel = 'debug' | 'info' | 'warn' | 'error';
/** After a successful switch: exit so the supervisor starts the new build, or keep running. */
export type RestartAfterSwitch = 'exit' | 'stay';
export type AgentHostType = 'nixos' | 'macos';

export interface AgentConfig {
  /** ws:// or wss:// URL of the server's /ws. */
  url: string;
  token: string;
  heartbeatIntervalMs: number;
  hostname: string;
  hostType: AgentHostType;
  repoUrl: string;
  /** "" when neither NIXFLEET_REPO_DIR nor NIXFLEET_REPO_URL is set: ops that need it fail clearly. */
  repoDir: string;
  branch: string;
  location: string;
  deviceType: string;
  themeColor: string;
  logLevel: AgentLogLevel;
  /** JSON file overriding what ops run, or null for the built-in defaults. */
  opsFile: string | null;
  /** Between SIGTERM and SIGKILL when an op is stopped. */
  stopGraceMs: number;
  restartAfterSwitch: RestartAfterSwitch;
  /** Exit code that makes the supervisor restart the agent: 101 for systemd, 0 for launchd. */
  restartExitCode: number;
  /** Output lines of the current command kept for a resend after a reconnect. */
  outputBufferLines: number;
  /** Between the agent's keepalive pings. */
  pingIntervalMs: number;
  /** A link with no pong and no message for this long is taken for dead and redialled. */
  deadAfterMs: number;
}

export class AgentConfigError extends Error {
  readonly code = 'AGENT_CONFIG_INVALID';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'AgentConfigError';
  }
}

export interface AgentEnvVariable {
  name: string;
  /** The default as --help shows it ("" for none, "required"). */
  default: string;
  description: string;
}

/** Every variable the agent reads, in the order --help lists them. */
export const AGENT_ENV_VARIABLES: readonly AgentEnvVariable[] = [
  { name: 'NIXFLEET_URL', default: 'required', description: 'WebSocket URL of the server, e.g. wss://fleet.example/ws (http(s):// is mapped to ws(s)://; a bare host gets /ws)' },
  { name: 'NIXFLEET_TOKEN', default: 'required', description: 'agent token, sent as "Authorization: Bearer <token>"' },
  { name: 'NIXFLEET_INTERVAL', default: '5', description: 'seconds between heartbeats (fractions allowed)' },
  { name: 'NIXFLEET_HOSTNAME', default: 'short os hostname', description: 'the host name this agent reports (and the flake attribute it switches to)' },
  { name: 'NIXFLEET_REPO_URL', default: '', description: 'git URL of the fleet config, cloned into NIXFLEET_REPO_DIR by `pull` when missing' },
  { name: 'NIXFLEET_REPO_DIR', default: '/var/lib/nixfleet/repo if NIXFLEET_REPO_URL is set (macOS: ~/.local/share/nixfleet/repo)', description: "the agent's clone of the fleet config" },
  { name: 'NIXFLEET_BRANCH', default: 'main', description: 'branch that `pull` follows' },
  { name: 'NIXFLEET_LOCATION', default: '', description: 'free text shown on the dashboard' },
  { name: 'NIXFLEET_DEVICE_TYPE', default: '', description: 'free text shown on the dashboard (server, desktop, laptop, …)' },
  { name: 'NIXFLEET_THEME_COLOR', default: '', description: 'the host colour on the dashboard, #rrggbb' },
  { name: 'NIXFLEET_LOG_LEVEL', default: 'info', description: 'debug | info | warn | error (JSON lines on stderr)' },
  { name: 'NIXFLEET_OPS_FILE', default: '', description: 'JSON file {"ops": {"<op>": ["argv0", …] | "shell string" | null}} overriding the built-in commands; placeholders {repo_dir} {repo_url} {hostname} {branch} {op}' },
  { name: 'NIXFLEET_STOP_GRACE', default: '3', description: 'seconds between SIGTERM and SIGKILL when an op is stopped' },
  { name: 'NIXFLEET_RESTART_AFTER_SWITCH', default: 'exit', description: 'exit: after a successful switch/pull-switch exit (101 on Linux, 0 on macOS) so systemd/launchd starts the new build; stay: keep running' },
  { name: 'NIXFLEET_PING_INTERVAL', default: '10', description: 'seconds between keepalive pings' },
  { name: 'NIXFLEET_DEAD_AFTER', default: '45', description: 'seconds without a pong or any message after which the link is taken for dead and redialled' },
  { name: 'NIXFLEET_OUTPUT_BUFFER_LINES', default: '10000', description: "output lines of the current command kept to resend after a reconnect (the oldest are dropped past it)" },
];

const LOG_LEVELS: readonly AgentLogLevel[] = ['debug', 'info', 'warn', 'error'];
const RESTART_MODES: readonly RestartAfterSwitch[] = ['exit', 'stay'];

/**
 * The configuration from `env` for a host running `platform` (`process.platform`). Pure apart
 * from the default hostname, which `machineHostname` supplies (the OS's by default).
 */
export function parseAgentConfig(env: Readonly<Record<string, string | undefined>>, platform: NodeJS.Platform, machineHostname: () => string = systemHostname): AgentConfig {
  const read = (name: string): string => (env[name] ?? '').trim();
  const macos = platform === 'darwin';

  const token = read('NIXFLEET_TOKEN');
  if (token === '') throw new AgentConfigError('NIXFLEET_TOKEN', 'is required: the agent token the server issued for this host');

  const repoUrl = read('NIXFLEET_REPO_URL');
  let repoDir = read('NIXFLEET_REPO_DIR');
  if (repoDir === '' && repoUrl !== '') repoDir = macos ? `${read('HOME') || '/var/root'}/.local/share/nixfleet/repo` : '/var/lib/nixfleet/repo';

  const themeColor = read('NIXFLEET_THEME_COLOR');
  if (themeColor !== '' && !/^#[0-9a-fA-F]{6}$/.test(themeColor)) throw new AgentConfigError('NIXFLEET_THEME_COLOR', `must be a colour like #4f8cc9, got "${themeColor}"`);

  return {
    url: parseUrl(read('NIXFLEET_URL')),
    token,
    heartbeatIntervalMs: seconds(env, 'NIXFLEET_INTERVAL', 5, { min: 0.05, max: 3600 }),
    // The flake attribute is the short name; os.hostname() may be fully qualified.
    hostname: read('NIXFLEET_HOSTNAME') || machineHostname().split('.')[0] || 'localhost',
    hostType: macos ? 'macos' : 'nixos',
    repoUrl,
    repoDir,
    branch: read('NIXFLEET_BRANCH') || 'main',
    location: read('NIXFLEET_LOCATION'),
    deviceType: read('NIXFLEET_DEVICE_TYPE'),
    themeColor,
    logLevel: oneOf(env, 'NIXFLEET_LOG_LEVEL', LOG_LEVELS, 'info'),
    opsFile: read('NIXFLEET_OPS_FILE') || null,
    stopGraceMs: seconds(env, 'NIXFLEET_STOP_GRACE', 3, { min: 0, max: 600 }),
    restartAfterSwitch: oneOf(env, 'NIXFLEET_RESTART_AFTER_SWITCH', RESTART_MODES, 'exit'),
    restartExitCode: macos ? 0 : 101,
    outputBufferLines: positiveInteger(env, 'NIXFLEET_OUTPUT_BUFFER_LINES', 10_000, 10_000_000),
    pingIntervalMs: seconds(env, 'NIXFLEET_PING_INTERVAL', 10, { min: 0.05, max: 3600 }),
    deadAfterMs: seconds(env, 'NIXFLEET_DEAD_AFTER', 45, { min: 0.1, max: 3600 }),
  };
}

/** ws(s):// as given; http(s):// mapped to ws(s)://; a URL without a path gets the server's /ws. */
function parseUrl(raw: string): string {
  if (raw === '') throw new AgentConfigError('NIXFLEET_URL', 'is required: the WebSocket URL of the server, e.g. wss://fleet.example/ws');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AgentConfigError('NIXFLEET_URL', `is not a URL: "${raw}"`);
  }
  const schemes: Record<string, string> = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' };
  const scheme = schemes[url.protocol];
  if (scheme === undefined) throw new AgentConfigError('NIXFLEET_URL', `must start with ws://, wss://, http:// or https://, got "${raw}"`);
  // Assigning the protocol of a special URL to another special scheme is allowed by WHATWG URL.
  url.protocol = scheme;
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/ws';
  url.hash = '';
  return url.toString();
}

function seconds(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number, range: { min: number; max: number }): number {
  const raw = (env[name] ?? '').trim();
  if (raw === '') return fallback * 1000;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < range.min || value > range.max) {
    throw new AgentConfigError(name, `must be a number of seconds from ${range.min} to ${range.max}, got "${raw}"`);
  }
  return Math.round(value * 1000);
}

function positiveInteger(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number, max: number): number {
  const raw = (env[name] ?? '').trim();
  if (raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > max) throw new AgentConfigError(name, `must be a whole number from 1 to ${max}, got "${raw}"`);
  return value;
}

function oneOf<T extends string>(env: Readonly<Record<string, string | undefined>>, name: string, allowed: readonly T[], fallback: T): T {
  const raw = (env[name] ?? '').trim().toLowerCase();
  if (raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new AgentConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  return raw as T;
}
