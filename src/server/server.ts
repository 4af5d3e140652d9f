// Composes one NixFleet server: SQLite store → StateManager → SyncHub + HTTP API on one port.
// `startServer` is the embedding entry point; main.ts adds the environment and the signals.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { AuthService } from './auth/auth-service.js';
import { parseTrustedProxies } from './auth/client-address.js';
import { randomPassword } from './auth/passwords.js';
import type { ActionContext } from './fleet-actions.js';
import { addApiRoutes } from './http/api-routes.js';
import { Router, type Route } from './http/router.js';
import { OutputIntake } from './output-intake.js';
import { answerClientError, ConnectionGate } from './http/connection-gate.js';
import { ownOrigins } from './http/own-origins.js';
import { addAuthRoutes } from './http/auth-routes.js';
import { createRequestHandler, createUpgradeHandler } from './http/request-handler.js';
import { addDashboardRoutes, DEFAULT_DASHBOARD_DIR } from './http/static-files.js';
import { silentLogger, type Logger } from './logger.js';
import { throttledLogger } from './log-throttle.js';
import { DEFAULT_CONFIG, type ServerConfig } from './config.js';
import { StateManager } from './state-manager.js';
import { openStores } from './store/open-stores.js';
import type { Store } from './store/store.js';
import type { AuthStore } from './auth/auth-store.js';
import { SyncHub } from './transport/sync-hub.js';
import { AgentHub } from './agents/agent-hub.js';
import { LocalPresence, type AgentPresence } from './agents/agent-presence.js';
import { PgPresence } from './agents/pg-presence.js';
import { PgStore } from './store/pg-store.js';
import { CommandLifecycle } from './agents/command-lifecycle.js';
import { CommandSupervisor } from './agents/command-supervisor.js';
import { PipelineRunner } from './pipelines/pipeline-runner.js';
import { defaultActionContext } from './fleet-actions.js';

export interface StartOptions {
  logger?: Logger;
  /** Use this store instead of SQLite in `config.dataDir` (then `authStore` is required too). */
  store?: Store;
  /** Where users, sessions and tokens live; default: tables in the SQLite store. */
  authStore?: AuthStore;
  /** Clock for sessions and logins (tests). */
  now?: () => number;
  /** Clock and id generation for changes (tests). */
  actions?: ActionContext;
  /** Directory of the built dashboard. Default: dist/dashboard of this package. */
  dashboardDir?: string;
  /** Which instance holds each host's agent session; default: this process alone. */
  presence?: AgentPresence;
}

export interface NixFleetServer {
  readonly config: ServerConfig;
  readonly manager: StateManager;
  readonly hub: SyncHub;
  /** The agents' sessions (agent tokens on /ws). */
  readonly agents: AgentHub;
  /** Timeouts, stop grace, vanished agents. */
  readonly supervisor: CommandSupervisor;
  /** Runs the pipelines (one instance at a time: the supervisor's turn). */
  readonly pipelines: PipelineRunner;
  readonly auth: AuthService;
  readonly http: Server;
  /** Every route the front door serves, with its access rule. */
  readonly routes: readonly Route[];
  /** The password of the `admin` user created at this start, when it was generated; else null. */
  readonly generatedAdminPassword: string | null;
  /** http://host:port of the bound listener (the real port when 0 was asked). */
  readonly url: string;
  readonly wsUrl: string;
  /** Stops accepting, closes sockets with 1001, commits what is queued and closes the store. */
  close(): Promise<void>;
}

/** Settings that differ from the defaults; `limits` and `agents` may name only some of theirs. */
export type ServerOverrides = Partial<Omit<ServerConfig, 'limits' | 'agents'>> & { limits?: Partial<ServerConfig['limits']>; agents?: Partial<ServerConfig['agents']> };

export async function startServer(overrides: ServerOverrides = {}, options: StartOptions = {}): Promise<NixFleetServer> {
  const config: ServerConfig = {
    ...DEFAULT_CONFIG,
    ...overrides,
    limits: { ...DEFAULT_CONFIG.limits, ...overrides.limits },
    agents: { ...DEFAULT_CONFIG.agents, ...overrides.agents },
  };
  // Outsiders can make the server log (refused connections, aborted uploads): no one message may
  // fill the log.
  const logger = throttledLogger(options.logger ?? silentLogger);
  if (options.store && !options.authStore) throw new TypeError('startServer: a custom store needs options.authStore as well');
  const { store, authStore } = options.store ? { store: options.store, authStore: options.authStore! } : openStores(config, logger);
  let manager: StateManager;
  try {
    manager = await StateManager.open(store, { limits: config.limits, snapshotEvery: config.snapshotEvery, logger });
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  const auth = await AuthService.open(authStore, { sessionDurationMs: config.sessionDurationMs, sessionIdleMs: config.sessionIdleMs, ...(options.now ? { now: options.now } : {}) });
  const generatedAdminPassword = await auth.ensureAdmin(config.adminPassword ?? undefined, randomPassword);

  const hub = new SyncHub(manager, { ...config, logger, credentials: auth });
  const output = await OutputIntake.open(manager, { maxBytesPerCommand: config.outputMaxBytes, bytesPerSecond: config.outputBytesPerSecond });
  const actions = options.actions ?? defaultActionContext;
  const presence =
    options.presence ??
    (store instanceof PgStore && config.databaseUrl ? new PgPresence(store.pool, { connectionString: config.databaseUrl, leaseTtlMs: config.agents.leaseTtlMs, logger }) : new LocalPresence());
  const lifecycle = new CommandLifecycle(manager, actions, logger);
  const agentParts = { policy: config.agents, presence, lifecycle, actions, logger };
  const agents = new AgentHub(manager, { ...agentParts, output, credentials: auth });
  const supervisor = new CommandSupervisor(manager, agentParts);
  const pipelines = new PipelineRunner(manager, { presence, lifecycle, actions, logger, intervalMs: config.agents.superviseIntervalMs });
  const router = new Router();
  addApiRoutes(router, manager, { output, lifecycle, actions, agentTokens: auth });
  addAuthRoutes(router, auth, { sessionDurationMs: config.sessionDurationMs });
  addDashboardRoutes(router, { dir: options.dashboardDir ?? DEFAULT_DASHBOARD_DIR, beaconIntervalMs: config.beaconIntervalMs });

  const secure = config.tlsCertFile !== null;
  const door = {
    router,
    auth,
    logger,
    secure,
    trustedProxies: parseTrustedProxies(config.trustedProxies),
    // Filled once the listener is bound: the port may be chosen by the OS.
    allowedOrigins: new Set<string>(),
    maxBodyBytes: config.maxBodyBytes,
    hostOfCommand: (id: string) => manager.state.commands.get(id)?.host_id ?? null,
  };
  const handler = createRequestHandler(door);
  const timeouts = {
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    // How often the two above are enforced; Node's default (30 s) would let a slow client keep
    // its descriptor that much longer than promised.
    connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
  };
  const http: Server = secure
    ? createHttpsServer({ cert: readFileSync(config.tlsCertFile!), key: readFileSync(config.tlsKeyFile!), ...timeouts }, handler)
    : createHttpServer(timeouts, handler);
  // A socket silent this long is destroyed ('timeout' with no listener); ws clears it on upgrade.
  http.setTimeout(config.idleTimeoutMs);
  new ConnectionGate({ perAddress: config.maxConnectionsPerAddress, total: config.maxConnections, exempt: door.trustedProxies, secure, logger }).attach(http);
  http.on('upgrade', createUpgradeHandler(door, hub, agents));
  http.on('clientError', answerClientError);
  const sweeper = setInterval(() => void auth.sweepExpired().catch(() => {}), 60_000).unref();

  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(config.listenPort, config.listenHost, () => {
        http.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await manager.close();
    throw error;
  }
  hub.start();
  agents.start();
  supervisor.start();
  pipelines.start();

  const address = http.address() as AddressInfo;
  const origins = ownOrigins(config.listenHost, address.port, secure, config.allowedOrigins);
  for (const origin of origins.origins) door.allowedOrigins.add(origin);
  if (origins.warning) logger.warn(origins.warning);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${secure ? 'https' : 'http'}://${host}:${address.port}`;
  logger.info('nixfleet listening', { url, epoch: manager.epoch, version: manager.version, dataDir: config.dataDir });

  let closing: Promise<void> | null = null;
  return {
    config,
    manager,
    hub,
    agents,
    supervisor,
    pipelines,
    auth,
    http,
    routes: router.routes,
    url,
    wsUrl: `${secure ? 'wss' : 'ws'}://${host}:${address.port}/ws`,
    generatedAdminPassword,
    close() {
      closing ??= (async () => {
        clearInterval(sweeper);
        const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
        await pipelines.close();
        await supervisor.close();
        await agents.close();
        await presence.close();
        await hub.close();
        http.closeIdleConnections();
        auth.close();
        output.close();
        await manager.close();
        http.closeAllConnections();
        await httpClosed;
        logger.info('nixfleet stopped', { epoch: manager.epoch, version: manager.version });
      })();
      return closing;
    },
  };
}
