// Process lifecycle on SIGTERM/SIGINT, shared by the server and the demo: run `stop` once, exit 0
// when it resolves, 1 when it fails or takes longer than the limit. A second signal exits at
// once, for an operator who does not want to wait.
import type { Logger } from './logger.js';

export function exitOnSignals(stop: () => Promise<void>, logger: Logger, options: { name: string; forceAfterMs: number; onStopped?: () => void }): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`${options.name}: ${signal} again, exiting without waiting\n`);
      process.exit(1);
    }
    stopping = true;
    logger.info(`${options.name} shutting down`, { signal });
    const force = setTimeout(() => {
      logger.error(`${options.name} shutdown took longer than ${options.forceAfterMs / 1000}s; exiting`);
      process.exit(1);
    }, options.forceAfterMs).unref();
    stop().then(
      () => {
        clearTimeout(force);
        options.onStopped?.();
        process.exit(0);
      },
      (error: Error) => {
        logger.error(`${options.name} shutdown failed`, { error: error.message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
