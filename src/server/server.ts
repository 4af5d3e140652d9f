// Composes one NixFleet server: SQLite store → StateManager → SyncHub + HTTP API on one port.
// `startServer` is the embedding entry point; main.ts adds the environment and the signals.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ActionContext } from './fleet-actions.js';
import { createApiRouter } from './http/api-routes.js';
import { addDashboardRoutes, DEFAULT_DASHBOARD_DIR } from './http/static-files.js';
import { sendError, toHttpError } from './http/http-error.js';
import type { Router } from './http/router.js';
import { silentLogger, type Logger } from './logger.js';
import { DEFAULT_CONFIG, type ServerConfig } from './config.js';
import { StateManager } from './state-manager.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { Store } from './store/store.js';
import { SyncHub } from './sync-hub.js';

export interface StartOptions {
  logger?: Logger;
  /** Use this store instead of SQLite in `config.dataDir`. */
  store?: Store;
  /** Clock and id generation for changes (tests). */
  actions?: ActionContext;
  /** Directory of the built dashboard. Default: dist/dashboard of this package. */
  dashboardDir?: string;
}

export interface NixFleetServer {
  readonly config: ServerConfig;
  readonly manager: StateManager;
  readonly hub: SyncHub;
  readonly http: Server;
  /** http://host:port of the bound listener (the real port when 0 was asked). */
  readonly url: string;
  readonly wsUrl: string;
  /** Stops accepting, closes sockets with 1001, commits what is queued and closes the store. */
  close(): Promise<void>;
}

export async function startServer(overrides: Partial<ServerConfig> = {}, options: StartOptions = {}): Promise<NixFleetServer> {
  const config: ServerConfig = { ...DEFAULT_CONFIG, ...overrides, limits: { ...DEFAULT_CONFIG.limits, ...overrides.limits } };
  const logger = options.logger ?? silentLogger;
  const store = options.store ?? new SqliteStore({ dataDir: config.dataDir, synchronous: config.sqliteSynchronous, changeLogRetention: config.changeLogRetention });
  const manager = await StateManager.open(store, { limits: config.limits, snapshotEvery: config.snapshotEvery, logger });
  const hub = new SyncHub(manager, { ...config, logger });
  const router = createApiRouter(manager, { maxBodyBytes: config.maxBodyBytes, ...(options.actions ? { actions: options.actions } : {}) });
  addDashboardRoutes(router, { dir: options.dashboardDir ?? DEFAULT_DASHBOARD_DIR, beaconIntervalMs: config.beaconIntervalMs });

  const http = createHttpServer((req, res) => void handleRequest(router, req, res, logger));
  http.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    hub.handleUpgrade(req, socket, head);
  });
  http.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

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

  const address = http.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info('nixfleet listening', { url, epoch: manager.epoch, version: manager.version, dataDir: config.dataDir });

  let closing: Promise<void> | null = null;
  return {
    config,
    manager,
    hub,
    http,
    url,
    wsUrl: `ws://${host}:${address.port}/ws`,
    close() {
      closing ??= (async () => {
        const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
        await hub.close();
        http.closeIdleConnections();
        await manager.close();
        http.closeAllConnections();
        await httpClosed;
        logger.info('nixfleet stopped', { epoch: manager.epoch, version: manager.version });
      })();
      return closing;
    },
  };
}

async function handleRequest(router: Router, req: IncomingMessage, res: ServerResponse, logger: Logger): Promise<void> {
  try {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    const { handler, params } = router.match(req.method ?? 'GET', pathname);
    await handler(req, res, params);
  } catch (error) {
    const httpError = toHttpError(error);
    if (httpError.status >= 500) logger.error('request failed', { method: req.method, url: req.url, error: (error as Error).message });
    if (!res.headersSent) sendError(res, httpError);
    else res.destroy();
  }
}
