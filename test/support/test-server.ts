// Starts a real in-process server on an ephemeral port with its own temporary data directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type NixFleetServer, type ServerOverrides, type StartOptions } from '../../src/server/server.js';

/** The admin password every test server starts with. */
export const TEST_ADMIN_PASSWORD = 'correct horse battery staple';

export interface TestServer extends NixFleetServer {
  dataDir: string;
  /** An admin API token, for tests that are not about access control. */
  token: string;
  /** Headers that authenticate a WebSocket or HTTP client with `token`. */
  authHeaders: { authorization: string };
  /** Closes the server (if still open) and removes its data directory. */
  dispose(): Promise<void>;
}

export function tempDir(prefix = 'nixfleet-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startTestServer(overrides: ServerOverrides = {}, options: StartOptions = {}): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? tempDir();
  const server = await startServer({ listenHost: '127.0.0.1', listenPort: 0, dataDir, logLevel: 'silent', adminPassword: TEST_ADMIN_PASSWORD, ...overrides }, options);
  const { token } = await server.auth.createToken({ name: 'test-admin', role: 'admin' }, 'tests');
  return {
    ...server,
    dataDir,
    token,
    authHeaders: { authorization: `Bearer ${token}` },
    async dispose() {
      await server.close();
      if (!overrides.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
