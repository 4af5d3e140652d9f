// The `npm start` entry point: configuration from the environment, the server, and the process
// lifecycle (SIGTERM/SIGINT drain, a clear message and exit code 1 on any startup failure).
import { ConfigError, configFromEnv } from './config.js';
import { createLogger } from './logger.js';
import { exitOnSignals } from './shutdown.js';
import { startServer } from './server.js';
import { StoreError } from './store/store.js';

async function main(): Promise<void> {
  let config;
  try {
    config = configFromEnv();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`nixfleet: invalid configuration: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  process.on('uncaughtException', (error) => {
    // State is in the store, committed before every broadcast: exiting loses nothing
    // acknowledged, and a supervisor restarts us on the same epoch.
    logger.error('uncaught exception; exiting', { error: error.stack ?? String(error) });
    process.exit(1);
  });

  let server;
  try {
    server = await startServer(config, { logger });
  } catch (error) {
    const reason = error instanceof StoreError ? `${error.code}: ${error.message}` : (error as Error).message;
    process.stderr.write(`nixfleet: cannot start: ${reason}\n`);
    process.exit(1);
  }
  if (server.generatedAdminPassword !== null) {
    // Shown this once, on the console only (never through the logger): it is not stored anywhere.
    process.stdout.write(`\nCreated user "admin" with password: ${server.generatedAdminPassword}\nChange it after logging in, or set NIXFLEET_ADMIN_PASSWORD before the first start.\n\n`);
  }
  // One line on stdout that tools (and tests) can read for the bound address.
  process.stdout.write(`nixfleet listening on ${server.url} (epoch ${server.manager.epoch}, version ${server.manager.version})\n`);

  exitOnSignals(() => server.close(), logger, { name: 'nixfleet', forceAfterMs: 10_000 });
}

void main();
