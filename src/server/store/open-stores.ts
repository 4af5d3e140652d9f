// Which stores a configuration means, in one place for the server and the admin CLI: the shared
// PostgreSQL of NIXFLEET_DATABASE_URL, or the SQLite file in NIXFLEET_DATA_DIR, each with the
// AuthStore that lives beside it. Nothing is opened yet: StateManager.open opens the store.
import type { AuthStore } from '../auth/auth-store.js';
import { PgAuthStore } from '../auth/pg-auth-store.js';
import { SqliteAuthStore } from '../auth/sqlite-auth-store.js';
import type { ServerConfig } from '../config.js';
import { silentLogger, type Logger } from '../logger.js';
import { PgStore } from './pg-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

export interface Stores {
  store: Store;
  authStore: AuthStore;
}

export function openStores(config: Pick<ServerConfig, 'databaseUrl' | 'dataDir' | 'sqliteSynchronous' | 'changeLogRetention'>, logger: Logger = silentLogger): Stores {
  if (config.databaseUrl) {
    const store = new PgStore({ connectionString: config.databaseUrl, logger, changeLogRetention: config.changeLogRetention });
    return { store, authStore: new PgAuthStore(store.pool) };
  }
  const store = new SqliteStore({ dataDir: config.dataDir, synchronous: config.sqliteSynchronous, changeLogRetention: config.changeLogRetention });
  return { store, authStore: new SqliteAuthStore(store) };
}
