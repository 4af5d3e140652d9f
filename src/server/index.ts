// The server package entry: embed the sync server, or its parts, in another application.
export { startServer, type NixFleetServer, type StartOptions } from './server.js';
export { StateManager, ChangeRejectedError, type Frame, type CommitListener, type StateManagerOptions } from './state-manager.js';
export { SyncHub, type SyncHubOptions } from './transport/sync-hub.js';
export { SqliteStore, type SqliteStoreOptions } from './store/sqlite-store.js';
export { StoreError, type Store, type StoredState, type ChangeRecord } from './store/store.js';
export { configFromEnv, parseDuration, DEFAULT_CONFIG, ConfigError, type ServerConfig } from './config.js';
export { createLogger, silentLogger, type Logger } from './logger.js';
export { exitOnSignals } from './shutdown.js';
export { randomPassword } from './auth/passwords.js';
