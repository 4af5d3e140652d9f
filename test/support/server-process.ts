// Runs the built server (dist/server/main.js, as `npm start` does) in a child process, for tests
// that need a real process: kill -9, SIGTERM, exit codes.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runAdmin } from '../../src/server/admin-cli.js';
import { TEST_ADMIN_PASSWORD } from './test-server.js';

export const MAIN = fileURLToPath(new URL('../../dist/server/main.js', import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  /** An admin API token created (offline, with the admin CLI) before the server started. */
  token: string;
  authHeaders: { authorization: string };
  url: string;
  wsUrl: string;
  stderr(): string;
  stdout(): string;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface RunResult {
  code: number | string;
  stdout: string;
  stderr: string;
}

/** Runs the server until it exits by itself (for startup failures). */
export function runServerToExit(env: Record<string, string>, timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN], { env: { ...process.env, NIXFLEET_LISTEN: '127.0.0.1:0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not exit within ${timeoutMs}ms; stdout: ${stdout} stderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stdout, stderr });
    });
  });
}

/** Creates an admin token in the store of `dataDir` with the admin CLI (the server must be stopped). */
export async function createOfflineToken(dataDir: string): Promise<string> {
  const lines: string[] = [];
  const code = await runAdmin(['token', 'create', 'tests', '--role', 'admin'], { NIXFLEET_DATA_DIR: dataDir }, (line) => lines.push(line));
  const token = /nft_\S+/.exec(lines.join('\n'))?.[0];
  if (code !== 0 || !token) throw new Error(`admin CLI failed: ${lines.join('\n')}`);
  return token;
}

export async function spawnServer(env: Record<string, string>, timeoutMs = 10_000): Promise<ServerProcess> {
  const token = env.NIXFLEET_DATA_DIR ? await createOfflineToken(env.NIXFLEET_DATA_DIR) : '';
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, NIXFLEET_LISTEN: '127.0.0.1:0', NIXFLEET_LOG_LEVEL: 'warn', NIXFLEET_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within ${timeoutMs}ms: ${stderr}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d;
      const match = /listening on (https?:\/\/\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${stderr}`));
    });
  });
  return {
    child,
    token,
    authHeaders: { authorization: `Bearer ${token}` },
    url,
    wsUrl: url.replace(/^http/, 'ws') + '/ws',
    stderr: () => stderr,
    stdout: () => stdout,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
