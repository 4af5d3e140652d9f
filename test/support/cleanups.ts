// What a test started is undone after it, in reverse order, whether it passed or failed:
// `const defer = cleanupAfterEach();` at the top of a file, then `defer(() => server.dispose())`.
import { afterEach } from 'vitest';

export function cleanupAfterEach(): (cleanup: () => unknown) => void {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return (cleanup) => void cleanups.push(cleanup);
}
