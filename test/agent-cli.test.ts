// The `nixfleet-agent` CLI as hosts run it: the one-file bundle (scripts/build-agent.mjs) run
// by plain `node` from a directory without node_modules. --help, --check, configuration errors,
// the exit with 101 after a successful switch, and a clean stop on SIGTERM.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_ENV_VARIABLES } from '../src/agent/config.js';
import { FakeAgentServer, processGone, TEST_TOKEN, type FakeServerOptions } from './agent-harness.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();
let dir: string;
let bundle: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nixfleet-agent-cli-'));
  bundle = join(dir, 'nixfleet-agent.mjs');
  execFileSync(process.execPath, ['scripts/build-agent.mjs', '--outfile', bundle], { stdio: 'pipe' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function runAgent(env: Record<string, string>, args: string[] = []): Run {
  // Only what the agent needs: nothing of the test runner's environment leaks into the config.
  const child = spawn(process.execPath, [bundle, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  defer(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function fakeServer(options: FakeServerOptions = {}): Promise<FakeAgentServer> {
  const server = await FakeAgentServer.start(options);
  defer(() => server.close());
  return server;
}

function agentEnv(server: FakeAgentServer, extra: Record<string, string> = {}): Record<string, string> {
  return { NIXFLEET_URL: server.url, NIXFLEET_TOKEN: TEST_TOKEN, NIXFLEET_HOSTNAME: 'web-01', NIXFLEET_INTERVAL: '0.2', NIXFLEET_LOG_LEVEL: 'warn', ...extra };
}

function opsFile(ops: Record<string, unknown>): string {
  const path = join(dir, `ops-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify({ ops }));
  return path;
}

describe('nixfleet-agent (bundled)', () => {
  it('--help lists every variable with its default and exits 0', async () => {
    const run = runAgent({}, ['--help']);
    expect((await run.exited).code).toBe(0);
    for (const variable of AGENT_ENV_VARIABLES) expect(run.stdout()).toContain(variable.name);
    expect(run.stdout()).toContain('default: 5');
    expect(run.stdout()).toContain('--check');
  });

  it('names the variable of an invalid configuration and exits 1', async () => {
    const run = runAgent({ NIXFLEET_URL: 'wss://fleet.example/ws' });
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toMatch(/invalid configuration: NIXFLEET_TOKEN: is required/);
  });

  it('rejects an invalid ops file before connecting', async () => {
    const run = runAgent({ NIXFLEET_URL: 'wss://fleet.example/ws', NIXFLEET_TOKEN: 'x', NIXFLEET_OPS_FILE: opsFile({ deploy: ['true'] }) });
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toMatch(/NIXFLEET_OPS_FILE: .*unknown op "deploy"/);
  });

  describe('--check', () => {
    it('exits 0 when the server answers registered', async () => {
      const server = await fakeServer();
      const run = runAgent(agentEnv(server), ['--check']);
      expect((await run.exited).code).toBe(0);
      expect(run.stdout()).toMatch(/^OK: registered as web-01 \(host id web-01\) at ws:\/\/127\.0\.0\.1:\d+\/ws\n$/);
      expect(server.of('register')).toEqual([expect.objectContaining({ hostname: 'web-01', host_type: 'nixos', heartbeat_interval: 0.2 })]);
    });

    it('exits 1 and says why when the server answers 401', async () => {
      const server = await fakeServer();
      const run = runAgent(agentEnv(server, { NIXFLEET_TOKEN: 'wrong' }), ['--check']);
      expect((await run.exited).code).toBe(1);
      expect(run.stderr()).toBe('FAILED: 401: the server refused the token (check NIXFLEET_TOKEN)\n');
    });

    it('exits 1 when nothing listens', async () => {
      const server = await fakeServer();
      await server.close();
      const run = runAgent(agentEnv(server), ['--check']);
      expect((await run.exited).code).toBe(1);
      expect(run.stderr()).toMatch(/^FAILED: cannot connect to ws:\/\/127\.0\.0\.1:\d+\/ws: .*ECONNREFUSED/);
    });
  });

  it('exits with 101 right after the status of a successful switch reached the server', async () => {
    const server = await fakeServer();
    const run = runAgent(agentEnv(server, { NIXFLEET_OPS_FILE: opsFile({ switch: ['sh', '-c', 'echo "building the system configuration..."; echo Done.'] }) }));
    await until('registered', () => server.of('heartbeat').length >= 1);
    server.command('switch');
    const exit = await run.exited;

    expect(exit.code).toBe(101);
    const status = server.received.find((message) => message.type === 'status')!;
    expect(status.payload).toMatchObject({ status: 'ok', command: 'switch', exit_code: 0 });
    expect(status.at).toBeLessThanOrEqual(exit.at);
    expect(server.of('output').map((output) => output.line)).toEqual(['building the system configuration...', 'Done.']);
    // It closed its socket cleanly before exiting.
    await until('the close', () => server.closeCodes.length === 1);
    expect(server.closeCodes).toEqual([1000]);
  });

  it('on SIGTERM stops the running op group, reports it, closes with 1000 and exits 0', async () => {
    const server = await fakeServer();
    const run = runAgent(agentEnv(server, { NIXFLEET_STOP_GRACE: '1', NIXFLEET_OPS_FILE: opsFile({ test: 'sleep 300 & echo "grandchild $!"; echo ready; wait' }) }));
    await until('registered', () => server.of('heartbeat').length >= 1);
    server.command('test');
    await until('the op is ready', () => server.of('output').some((output) => output.line === 'ready'));
    const grandchild = Number((server.of('output')[0]!.line as string).split(' ')[1]);

    run.child.kill('SIGTERM');
    const exit = await run.exited;
    expect(exit.code).toBe(0);
    expect(server.of('status')).toEqual([expect.objectContaining({ command: 'test', status: 'error', exit_code: 130 })]);
    expect(processGone(grandchild)).toBe(true);
    await until('the close', () => server.closeCodes.length === 1);
    expect(server.closeCodes).toEqual([1000]);
  });
});
