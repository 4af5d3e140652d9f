// The op simulator (src/demo/simulated-op.ts) as the demo uses it: a real process printing
// realistic output over a scaled duration, failing at its fail rate, dying promptly of SIGTERM;
// and an agent whose ops file runs it through the {op} and {hostname} placeholders.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestAgent } from './agent-harness.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();
let dir: string;
let simulator: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nixfleet-sim-'));
  simulator = join(dir, 'simulated-op.mjs');
  await build({ entryPoints: ['src/demo/simulated-op.ts'], outfile: simulator, bundle: true, platform: 'node', target: 'node20', format: 'esm', logLevel: 'warning' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string[];
  stderr: string[];
  ms: number;
}

function simulate(args: string[], onStdout?: (line: string, kill: (signal: NodeJS.Signals) => void) => void): Promise<Result> {
  const started = Date.now();
  const child = spawn(process.execPath, [simulator, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
  defer(() => child.kill('SIGKILL'));
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => {
    out.stdout += chunk.toString();
    onStdout?.(chunk.toString(), (signal) => child.kill(signal));
  });
  child.stderr.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
  return new Promise((resolve) =>
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: out.stdout.split('\n').filter(Boolean), stderr: out.stderr.split('\n').filter(Boolean), ms: Date.now() - started }),
    ),
  );
}

describe('simulated-op', () => {
  it('prints a nix build for switch and exits 0', async () => {
    const result = await simulate(['switch', '--duration-scale', '0.005', '--fail-rate', '0', '--seed', '1', '--hostname', 'web-01']);
    expect(result.code).toBe(0);
    expect(result.stdout[0]).toContain('nixos-rebuild switch --flake .#web-01');
    expect(result.stdout.some((line) => line.startsWith('building \'/nix/store/'))).toBe(true);
    expect(result.stdout.at(-1)).toMatch(/Done\..*nixos-system-web-01/);
  });

  it('prints git output for pull and test results for test', async () => {
    const pull = await simulate(['pull', '--duration-scale', '0', '--fail-rate', '0', '--seed', '2']);
    expect(pull.stdout).toContain('From github.com:acme/fleet-config');
    const test = await simulate(['test', '--duration-scale', '0', '--fail-rate', '0', '--seed', '3']);
    expect(test.stdout.filter((line) => line.startsWith('test: ')).length).toBeGreaterThanOrEqual(4);
    expect(test.stdout.at(-1)).toMatch(/all \d+ checks passed/);
  });

  it('fails at its fail rate, with the error on stderr and the tool\'s exit code', async () => {
    const result = await simulate(['pull', '--duration-scale', '0', '--fail-rate', '1']);
    expect(result.code).toBe(128);
    expect(result.stderr.join('\n')).toMatch(/fatal:.*Could not resolve host/);
  });

  it('takes a duration scaled by --duration-scale', async () => {
    // test takes 8-25 s at scale 1: 0.02 makes it 160-500 ms.
    const result = await simulate(['test', '--duration-scale', '0.02', '--fail-rate', '0']);
    expect(result.ms).toBeGreaterThanOrEqual(150);
    expect(result.ms).toBeLessThan(5000);
  });

  it('dies of SIGTERM promptly, saying so', async () => {
    let sent = 0;
    const result = await simulate(['switch', '--fail-rate', '0'], (_line, kill) => {
      if (sent === 0) {
        sent = Date.now();
        kill('SIGTERM');
      }
    });
    expect(result.signal).toBe('SIGTERM');
    expect(Date.now() - sent).toBeLessThan(2000);
    expect(result.stderr).toContain('switch: interrupted by SIGTERM');
  });

  it('refuses an unknown op with exit 2', async () => {
    const result = await simulate(['deploy']);
    expect(result.code).toBe(2);
    expect(result.stderr[0]).toMatch(/unknown op "deploy"/);
  });

  it('runs as the ops of an agent, through the {op} and {hostname} placeholders', async () => {
    const argv = [process.execPath, simulator, '{op}', '--hostname', '{hostname}', '--duration-scale', '0.005', '--fail-rate', '0', '--seed', '4'];
    const { server } = await startTestAgent(defer, { ops: { switch: argv, test: argv }, env: { NIXFLEET_RESTART_AFTER_SWITCH: 'stay' } });
    await until('registered', () => server.of('heartbeat').length >= 1);
    server.command('switch');
    await until('the status', () => server.of('status').length === 1);
    expect(server.of('status')[0]).toMatchObject({ status: 'ok', command: 'switch', exit_code: 0 });
    const lines = server.of('output').map((output) => output.line as string);
    expect(lines[0]).toContain('nixos-rebuild switch --flake .#web-01');
    expect(server.of('output').map((output) => output.seq)).toEqual(lines.map((_, i) => i + 1));
  });
});
