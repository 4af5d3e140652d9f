// Server configuration: every default in one object, read from NIXFLEET_* environment variables
// with a clear error for each value that makes no sense. Nothing else reads process.env.
import { readFileSync } from 'node:fs';
import type { Limits } from '../protocol/schema.js';
import { DEFAULT_AGENT_POLICY, parseOpTimeouts, type AgentPolicy } from './agents/agent-policy.js';

export type SqliteSynchronous = 'FULL' | 'NORMAL';

export interface ServerConfig {
  /** host:port to listen on; port 0 picks a free one. */
  listenHost: string;
  listenPort: number;
  /** Directory of the SQLite store. */
  dataDir: string;
  /** Interval of the `sync` beacon. */
  beaconIntervalMs: number;
  /** Interval of WebSocket pings; a peer that missed one whole interval is terminated. */
  pingIntervalMs: number;
  /** Trimming limits of the state (events = NIXFLEET_INIT_EVENT_LIMIT). */
  limits: Limits;
  /** Bytes a client may have waiting in its send buffer before it stops receiving deltas. */
  clientBufferLimit: number;
  /** How long a client may stay over its buffer limit before it is closed with 4008. */
  slowClientTimeoutMs: number;
  /** Largest client frame accepted; larger ones close the socket with 1009. */
  maxClientMessageBytes: number;
  /** Client frames allowed per second (burst of twice that). */
  clientMessagesPerSecond: number;
  /** Largest HTTP request body. */
  maxBodyBytes: number;
  /** Bytes (UTF-8) of output stored per command; past it the log is cut with a marker line. */
  outputMaxBytes: number;
  /** Bytes of command output one token or user may send per second (twice that in a burst). */
  outputBytesPerSecond: number;
  /** Open WebSocket connections accepted; more are closed with 1013. */
  maxClients: number;
  /** Open TCP connections (HTTP and WebSocket) from one client address; trusted proxies are exempt. */
  maxConnectionsPerAddress: number;
  /** Open TCP connections in all; by default what the open-file limit leaves room for. */
  maxConnections: number;
  /** Time a client has to send a request's headers, from its first byte (or its connection). */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, body included. */
  requestTimeoutMs: number;
  /** A connection with no traffic at all for this long is destroyed (WebSockets have ping/pong instead). */
  idleTimeoutMs: number;
  /** Negotiate permessage-deflate and send init/full_state deflated (deltas never are). */
  deflateSnapshots: boolean;
  /** SQLite `synchronous` pragma: FULL survives power loss, NORMAL only process crashes. */
  sqliteSynchronous: SqliteSynchronous;
  /** A snapshot of the state is written every N changes, so a restart replays at most N. */
  snapshotEvery: number;
  /** Changes kept in the log behind the latest snapshot. */
  changeLogRetention: number;
  logLevel: LogLevel;
  /** Absolute lifetime of a login session. */
  sessionDurationMs: number;
  /** A session unused (no request, no open socket) for this long ends. */
  sessionIdleMs: number;
  /** Browser origins allowed besides the server's own (for the WebSocket and cookie requests). */
  allowedOrigins: string[];
  /** Proxies whose X-Forwarded-For is believed: comma-separated IPs and CIDRs. */
  trustedProxies: string;
  /** PEM files; both set: serve HTTPS (and WSS). */
  tlsCertFile: string | null;
  tlsKeyFile: string | null;
  /** Password for the `admin` user created on first start; random (printed once) if unset. */
  adminPassword: string | null;
  /** postgres:// URL: use the shared PostgreSQL store (several instances) instead of SQLite. */
  databaseUrl: string | null;
  /** How agents are judged: liveness, reconnect windows, stop grace, op timeouts, heartbeat publishing. */
  agents: AgentPolicy;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export const DEFAULT_CONFIG: Readonly<ServerConfig> = Object.freeze({
  listenHost: '127.0.0.1',
  listenPort: 8000,
  dataDir: './data',
  beaconIntervalMs: 30_000,
  pingIntervalMs: 30_000,
  limits: Object.freeze({ events: 100, commands: 50, pipelines: 20, output_tail: 64 * 1024 }),
  clientBufferLimit: 1024 * 1024,
  slowClientTimeoutMs: 30_000,
  maxClientMessageBytes: 4096,
  clientMessagesPerSecond: 20,
  maxBodyBytes: 1024 * 1024,
  outputMaxBytes: 16 * 1024 * 1024,
  outputBytesPerSecond: 2 * 1024 * 1024,
  maxClients: 10_000,
  maxConnectionsPerAddress: 256,
  maxConnections: defaultMaxConnections(),
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  deflateSnapshots: true,
  sqliteSynchronous: 'FULL',
  snapshotEvery: 1000,
  changeLogRetention: 10_000,
  logLevel: 'info',
  sessionDurationMs: 24 * 3_600_000,
  sessionIdleMs: 8 * 3_600_000,
  allowedOrigins: [],
  trustedProxies: '',
  tlsCertFile: null,
  tlsKeyFile: null,
  adminPassword: null,
  databaseUrl: null,
  agents: DEFAULT_AGENT_POLICY,
});

export class ConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Reads the configuration from environment variables; throws ConfigError naming the variable. */
export function configFromEnv(env: Record<string, string | undefined> = process.env): ServerConfig {
  const read = <T>(name: string, fallback: T, parse: (raw: string) => T): T => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    try {
      return parse(raw.trim());
    } catch (error) {
      throw new ConfigError(`${name}=${JSON.stringify(raw)}: ${(error as Error).message}`);
    }
  };
  const [listenHost, listenPort] = read('NIXFLEET_LISTEN', [DEFAULT_CONFIG.listenHost, DEFAULT_CONFIG.listenPort] as const, parseListen);
  const d = DEFAULT_CONFIG;
  const config: ServerConfig = {
    listenHost,
    listenPort,
    dataDir: read('NIXFLEET_DATA_DIR', d.dataDir, (s) => s),
    beaconIntervalMs: read('NIXFLEET_SYNC_BEACON_INTERVAL', d.beaconIntervalMs, parseDuration),
    pingIntervalMs: read('NIXFLEET_PING_INTERVAL', d.pingIntervalMs, parseDuration),
    limits: {
      events: read('NIXFLEET_INIT_EVENT_LIMIT', d.limits.events, intIn(1, 100_000)),
      commands: read('NIXFLEET_RECENT_COMMANDS', d.limits.commands, intIn(0, 100_000)),
      pipelines: read('NIXFLEET_RECENT_PIPELINES', d.limits.pipelines, intIn(0, 100_000)),
      output_tail: read('NIXFLEET_OUTPUT_TAIL', d.limits.output_tail, intIn(0, 16 * 1024 * 1024)),
    },
    clientBufferLimit: read('NIXFLEET_CLIENT_BUFFER_LIMIT', d.clientBufferLimit, intIn(1024, 1024 ** 3)),
    slowClientTimeoutMs: read('NIXFLEET_SLOW_CLIENT_TIMEOUT', d.slowClientTimeoutMs, parseDuration),
    maxClientMessageBytes: d.maxClientMessageBytes,
    clientMessagesPerSecond: d.clientMessagesPerSecond,
    maxBodyBytes: d.maxBodyBytes,
    outputMaxBytes: read('NIXFLEET_OUTPUT_MAX_BYTES', d.outputMaxBytes, intIn(1024, 2 ** 40)),
    outputBytesPerSecond: read('NIXFLEET_OUTPUT_RATE', d.outputBytesPerSecond, intIn(1024, 2 ** 40)),
    maxClients: read('NIXFLEET_MAX_CLIENTS', d.maxClients, intIn(1, 1_000_000)),
    maxConnectionsPerAddress: read('NIXFLEET_MAX_CONNECTIONS_PER_ADDRESS', d.maxConnectionsPerAddress, intIn(1, 1_000_000)),
    maxConnections: read('NIXFLEET_MAX_CONNECTIONS', d.maxConnections, intIn(1, 10_000_000)),
    headersTimeoutMs: read('NIXFLEET_HEADERS_TIMEOUT', d.headersTimeoutMs, parseDuration),
    requestTimeoutMs: read('NIXFLEET_REQUEST_TIMEOUT', d.requestTimeoutMs, parseDuration),
    idleTimeoutMs: read('NIXFLEET_IDLE_TIMEOUT', d.idleTimeoutMs, parseDuration),
    deflateSnapshots: read('NIXFLEET_WS_DEFLATE', d.deflateSnapshots, parseOnOff),
    sqliteSynchronous: read('NIXFLEET_SQLITE_SYNCHRONOUS', d.sqliteSynchronous, parseSynchronous),
    snapshotEvery: read('NIXFLEET_SNAPSHOT_EVERY', d.snapshotEvery, intIn(1, 10_000_000)),
    changeLogRetention: read('NIXFLEET_CHANGE_LOG_RETENTION', d.changeLogRetention, intIn(0, 100_000_000)),
    logLevel: read('NIXFLEET_LOG_LEVEL', d.logLevel, parseLogLevel),
    sessionDurationMs: read('NIXFLEET_SESSION_DURATION', d.sessionDurationMs, (raw) => parseDuration(raw, 365 * 86_400_000)),
    sessionIdleMs: read('NIXFLEET_SESSION_IDLE_TIMEOUT', d.sessionIdleMs, (raw) => parseDuration(raw, 365 * 86_400_000)),
    allowedOrigins: read('NIXFLEET_ALLOWED_ORIGINS', d.allowedOrigins, parseOrigins),
    trustedProxies: read('NIXFLEET_TRUSTED_PROXIES', d.trustedProxies, (s) => s),
    tlsCertFile: read('NIXFLEET_TLS_CERT', d.tlsCertFile, (s) => s),
    tlsKeyFile: read('NIXFLEET_TLS_KEY', d.tlsKeyFile, (s) => s),
    adminPassword: env.NIXFLEET_ADMIN_PASSWORD ? env.NIXFLEET_ADMIN_PASSWORD : null,
    databaseUrl: read('NIXFLEET_DATABASE_URL', d.databaseUrl, parseDatabaseUrl),
    agents: {
      ...d.agents,
      missedHeartbeats: read('NIXFLEET_AGENT_MISSED_HEARTBEATS', d.agents.missedHeartbeats, intIn(1, 100)),
      reconnectWindowMs: read('NIXFLEET_AGENT_RECONNECT_WINDOW', d.agents.reconnectWindowMs, parseDuration),
      restartGraceMs: read('NIXFLEET_AGENT_RESTART_GRACE', d.agents.restartGraceMs, parseDuration),
      stopGraceMs: read('NIXFLEET_CANCEL_GRACE', d.agents.stopGraceMs, parseDuration),
      metricsPublishMs: read('NIXFLEET_METRICS_PUBLISH_INTERVAL', d.agents.metricsPublishMs, parseDuration),
      lastSeenPublishMs: read('NIXFLEET_LAST_SEEN_PUBLISH_INTERVAL', d.agents.lastSeenPublishMs, parseDuration),
      leaseTtlMs: read('NIXFLEET_AGENT_LEASE_TTL', d.agents.leaseTtlMs, parseDuration),
      queueMaxAgeMs: read('NIXFLEET_QUEUE_MAX_AGE', d.agents.queueMaxAgeMs, (raw) => parseDuration(raw, 30 * 86_400_000)),
      opTimeouts: read('NIXFLEET_OP_TIMEOUTS', d.agents.opTimeouts, (raw) => parseOpTimeouts(raw, parseDuration)),
    },
  };
  if (config.headersTimeoutMs > config.requestTimeoutMs) {
    throw new ConfigError(`NIXFLEET_HEADERS_TIMEOUT (${config.headersTimeoutMs} ms) must not be longer than NIXFLEET_REQUEST_TIMEOUT (${config.requestTimeoutMs} ms)`);
  }
  if ((config.tlsCertFile === null) !== (config.tlsKeyFile === null)) {
    throw new ConfigError('NIXFLEET_TLS_CERT and NIXFLEET_TLS_KEY must be set together');
  }
  return config;
}

/** Descriptors kept for everything but client connections: the store, logs, the dashboard's files. */
const RESERVED_DESCRIPTORS = 256;

/**
 * The connections the process can hold: its open-file limit (Node raises the soft limit to the
 * hard one at start) less a reserve for everything else. 10,000 where the limit cannot be read.
 */
export function defaultMaxConnections(limitsFile = '/proc/self/limits'): number {
  try {
    const line = readFileSync(limitsFile, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    if (Number.isSafeInteger(soft) && soft > 0) return Math.max(64, soft - RESERVED_DESCRIPTORS);
  } catch {
    // not Linux, or /proc not mounted
  }
  return 10_000;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses `500ms`, `30s`, `2m`, `1h`, `1.5s` or a bare number of seconds (`30`, `0.5`) into
 * milliseconds. Must be at least 10 ms and at most 24 h.
 */
export function parseDuration(raw: string, maxMs = 86_400_000): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!match) throw new Error('expected a duration such as 500ms, 30s, 2m, 1h or a number of seconds');
  const ms = Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? 's']!);
  if (ms < 10) throw new Error('must be at least 10ms');
  if (ms > maxMs) throw new Error(`must be at most ${maxMs / 3_600_000}h`);
  return ms;
}

/** Parses `host:port`, `:port` (all interfaces) or `[::1]:port`. */
export function parseListen(raw: string): readonly [string, number] {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(raw);
  if (!match) throw new Error('expected host:port, for example 127.0.0.1:8000 or :8000');
  const port = Number(match[3]);
  if (port > 65535) throw new Error('port must be at most 65535');
  const host = match[1] ?? match[2] ?? '';
  return [host === '' ? '0.0.0.0' : host, port] as const;
}

function intIn(min: number, max: number): (raw: string) => number {
  return (raw) => {
    if (!/^\d+$/.test(raw)) throw new Error('expected a whole number');
    const value = Number(raw);
    if (value < min || value > max) throw new Error(`must be between ${min} and ${max}`);
    return value;
  };
}

function parseDatabaseUrl(raw: string): string {
  if (!/^postgres(ql)?:\/\//.test(raw)) throw new Error('expected a postgres:// URL, e.g. postgres://user@127.0.0.1:5432/nixfleet');
  return raw;
}

function parseOrigins(raw: string): string[] {
  return raw.split(',').map((origin) => {
    const trimmed = origin.trim();
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      throw new Error(`${JSON.stringify(trimmed)} is not an origin such as https://fleet.example.org`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== trimmed) {
      throw new Error(`${JSON.stringify(trimmed)} is not an origin such as https://fleet.example.org (scheme, host and port only)`);
    }
    return trimmed;
  });
}

function parseOnOff(raw: string): boolean {
  const value = raw.toLowerCase();
  if (['on', 'true', '1', 'yes'].includes(value)) return true;
  if (['off', 'false', '0', 'no'].includes(value)) return false;
  throw new Error('expected on or off');
}

function parseSynchronous(raw: string): SqliteSynchronous {
  const value = raw.toUpperCase();
  if (value !== 'FULL' && value !== 'NORMAL') throw new Error('expected FULL or NORMAL');
  return value;
}

function parseLogLevel(raw: string): LogLevel {
  const levels: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
  if (!levels.includes(raw as LogLevel)) throw new Error(`expected one of ${levels.join(', ')}`);
  return raw as LogLevel;
}
