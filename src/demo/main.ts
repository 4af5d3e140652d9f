// The `npm run demo` entry point: a NixFleet server (data in ./data/demo unless NIXFLEET_DATA_DIR
// is set) and, in the same process, a simulated fleet of real agents connected to it over real
// sockets, with an operator at work; SIGINT/SIGTERM stop both cleanly.
import { ConfigError, configFromEnv, createLogger, exitOnSignals, randomPassword, startServer, StoreError, type ServerConfig } from '../server/index.js';
import { DemoFleet } from './demo-fleet.js';
import { DEMO_USAGE, DemoUsageError, parseDemoOptions, type DemoOptions } from './options.js';

export const DEMO_DATA_DIR = './data/demo';

function fail(message: string, code: number): never {
  process.stderr.write(`nixfleet demo: ${message}\n`);
  process.exit(code);
}

function readOptions(): { options: DemoOptions; config: ServerConfig } {
  let options: DemoOptions;
  try {
    options = parseDemoOptions(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof DemoUsageError) fail(`${error.message}\n\n${DEMO_USAGE}`, 2);
    throw error;
  }
  if (options.help) {
    process.stdout.write(`${DEMO_USAGE}\n`);
    process.exit(0);
  }
  try {
    const config = configFromEnv(process.env);
    if ((process.env.NIXFLEET_DATA_DIR ?? '').trim() === '') config.dataDir = DEMO_DATA_DIR;
    // Every simulated host connects from this machine, as a fleet behind one NAT would: the
    // per-address cap is lifted unless set explicitly (real agents each have their own address).
    if ((process.env.NIXFLEET_MAX_CONNECTIONS_PER_ADDRESS ?? '').trim() === '') config.maxConnectionsPerAddress = config.maxConnections;
    return { options, config };
  } catch (error) {
    if (error instanceof ConfigError) fail(`invalid configuration: ${error.message}`, 1);
    throw error;
  }
}

/** The URL a browser on this machine can open (a wildcard listener is reached via loopback). */
function localUrl(url: string): string {
  return url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
}

async function main(): Promise<void> {
  const { options, config } = readOptions();
  const logger = createLogger(config.logLevel);

  let server;
  try {
    server = await startServer(config, { logger });
  } catch (error) {
    const reason = error instanceof StoreError ? `${error.code}: ${error.message}` : (error as Error).message;
    fail(`cannot start: ${reason}`, 1);
  }
  const url = localUrl(server.url);
  // A demo store is for trying things: without NIXFLEET_ADMIN_PASSWORD, admin gets a fresh
  // password at every start, shown below, so a newcomer can always log in.
  const adminPassword = config.adminPassword ?? randomPassword();
  if (config.adminPassword === null) {
    await server.auth.setPassword('admin', adminPassword).catch(() => server.auth.addUser('admin', 'admin', adminPassword));
  }
  // The fleet issues its own tokens (an operator's, one per host's agent) and revokes them at stop.
  const fleet = new DemoFleet({ server: { url, wsUrl: localUrl(server.wsUrl), auth: server.auth }, hosts: options.hosts, speed: options.speed, logger });

  exitOnSignals(
    async () => {
      await fleet.stop();
      await server.close();
    },
    logger,
    { name: 'nixfleet demo', forceAfterMs: 15_000, onStopped: () => process.stdout.write('nixfleet demo stopped\n') },
  );

  process.stdout.write(
    [
      `nixfleet listening on ${server.url} (epoch ${server.manager.epoch}, version ${server.manager.version})`,
      '',
      `  NixFleet demo: ${options.hosts} simulated host${options.hosts === 1 ? '' : 's'} (real agents, simulated ops), speed ${options.speed}x, data in ${config.dataDir}`,
      '',
      `    open ${url}`,
      `    log in as admin, password: ${config.adminPassword === null ? adminPassword : '(NIXFLEET_ADMIN_PASSWORD)'}`,
      '',
      '  Ctrl-C stops the agents, their ops and the server.',
      '',
    ].join('\n'),
  );
  try {
    await fleet.start();
  } catch (error) {
    await fleet.stop();
    await server.close();
    fail(`cannot start the fleet: ${(error as Error).message}`, 1);
  }
}

void main();
