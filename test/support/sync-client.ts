// A StateSync under test, and the check that it holds exactly the server's state.
import { expect } from 'vitest';
import { StateSync, type StateSyncOptions, type StatusEvent } from '../../src/client/index.js';
import { toFullState } from '../../src/protocol/index.js';
import type { TestServer } from './test-server.js';
import { until } from './until.js';

/** Starts `options` as a StateSync that records its statuses; its close is deferred to `defer`. */
export function startSync(options: StateSyncOptions, defer: (cleanup: () => unknown) => void): StateSync & { statuses: StatusEvent[] } {
  const sync = new StateSync(options);
  const statuses: StatusEvent[] = [];
  sync.on('status', (status) => statuses.push(status));
  sync.start();
  defer(() => sync.close());
  return Object.assign(sync, { statuses });
}

/** The client holds exactly the server's state at the server's version, and is live. */
export async function converged(sync: StateSync, server: TestServer, timeoutMs = 5000): Promise<void> {
  await until(`client at v${server.manager.version} (is at v${sync.version}, ${sync.status.status})`, () => sync.version === server.manager.version && sync.status.status === 'live', timeoutMs, 10);
  expect(sync.epoch).toBe(server.manager.epoch);
  expect(toFullState(sync.state as never)).toEqual(toFullState(server.manager.state));
}
