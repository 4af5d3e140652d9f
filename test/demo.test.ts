// The demo fleet: the simulator drives a real server through its HTTP API only, the stream stays
// consistent, stop() leaves nothing behind, a second run reuses the hosts, and the demo process
// (dist/demo/main.js) starts, validates its flags and exits 0 on SIGINT.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { Command, EventLogEntry, FullState, Host } from '../src/protocol/index.js';
import { FleetSimulator } from '../src/demo/fleet-simulator.js';
import { parseDemoOptions } from '../src/demo/options.js';
import { seededRandom } from '../src/demo/random.js';
import { api, request } from './support/http.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { startTestServer, tempDir, type TestServer } from './support/test-server.js';
import { until } from './support/until.js';

const DEMO_MAIN = fileURLToPath(new URL('../dist/demo/main.js', import.meta.url));
const TERMINAL = ['success', 'error', 'timeout', 'cancelled'];

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function fullState(server: TestServer): Promise<{ version: number; payload: FullState }> {
  return (await api(server.url, server.token).get('/api/state')).body;
}

function timeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('FleetSimulator', () => {
  it('runs a lively fleet of 6 hosts through the API, seen consistently on the wire, and stops cleanly', async () => {
    const server = await startTestServer();
    cleanups.push(() => server.dispose());
    const recorder = await SyncRecorder.connect(server.wsUrl, { headers: server.authHeaders });
    cleanups.push(() => recorder.close());
    const timersBefore = timeouts();

    const started = Date.now();
    const sim = new FleetSimulator({ baseUrl: server.url, token: server.token, hosts: 6, speed: 10, random: seededRandom(7) });
    await sim.start();
    expect((await fullState(server)).payload.hosts).toHaveLength(6);

    // What the fleet shows within seconds at 10x (a few simulated minutes): commands that ran
    // to their end, with their events, and heartbeats after registration.
    const lively = (state: FullState) =>
      state.commands.some((c) => c.status !== 'running' && c.status !== 'cancelled' && c.output_size > 0) &&
      state.events.filter((e) => e.category === 'command').length >= 2 &&
      state.events.some((e) => e.category === 'command' && /succeeded|failed|timed out/.test(e.message)) &&
      state.hosts.some((h) => h.last_seen !== null && Date.parse(h.last_seen) > started + 500);
    await until('a lively fleet', async () => lively((await fullState(server)).payload), 15_000, 100);

    const stopping = sim.stop();
    expect(sim.stop()).toBe(stopping);
    await stopping;
    expect(sim.activity).toEqual({ timers: 0, requests: 0, tasks: 0 });
    expect(timeouts()).toBeLessThanOrEqual(timersBefore);

    const { version, payload } = await fullState(server);
    // Nothing is sent after stop() resolved.
    await sleep(300);
    expect((await fullState(server)).version).toBe(version);

    const hosts: Host[] = payload.hosts;
    expect(hosts.map((h) => h.id)).toEqual(['web-01', 'web-02', 'db-01', 'build-01', 'build-mac-01', 'cache-01']);
    expect(new Set(hosts.map((h) => h.host_type))).toEqual(new Set(['nixos', 'macos']));
    for (const host of hosts) {
      expect(host.agent_version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(host.generation).toMatch(/^[0-9a-f]{7}$/);
      expect(host.pending_command).toBeNull();
      expect(host.metrics).not.toBeNull();
      for (const value of [host.metrics!.cpu, host.metrics!.ram, host.metrics!.swap]) {
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThanOrEqual(100);
      }
    }
    // Heartbeats: hosts were seen during the run, after their registration.
    const beats = hosts.filter((h) => h.last_seen !== null && Date.parse(h.last_seen) > started + 500 && Date.parse(h.last_seen) <= Date.now());
    expect(beats.length).toBeGreaterThan(0);
    expect(hosts.every((h) => h.last_seen === null || h.last_seen.endsWith('Z'))).toBe(true);

    const commands: Command[] = payload.commands;
    expect(commands.every((c) => TERMINAL.includes(c.status))).toBe(true); // stop() cancels what ran
    const done = commands.filter((c) => ['success', 'error', 'timeout'].includes(c.status) && c.output_size > 0);
    expect(done.length).toBeGreaterThan(0);
    const log = (await api(server.url, server.token).get(`/api/commands/${done[0]!.id}/output`)).body as string;
    expect(log.length).toBe(done[0]!.output_size);
    expect(commands.map((c) => c.output).join('')).toMatch(/\/nix\/store\/[0-9a-z]{32}-|From github\.com|checks against generation/);
    expect(commands.map((c) => c.output).join('')).toContain('\u001b[');
    for (const c of done) expect(c.exit_code).toBe(c.status === 'success' ? 0 : c.status === 'error' ? 1 : null);

    const events: EventLogEntry[] = payload.events;
    const commandEvents = events.filter((e) => e.category === 'command');
    expect(commandEvents.length).toBeGreaterThanOrEqual(2);
    expect(commandEvents.every((e) => e.actor === 'token:test-admin' && e.host_id !== null && hosts.some((h) => h.id === e.host_id))).toBe(true);
    expect(commandEvents.some((e) => /started on/.test(e.message))).toBe(true);
    expect(commandEvents.some((e) => /succeeded|failed|timed out/.test(e.message))).toBe(true);
    expect(payload.pipelines.every((p) => !['pending', 'running'].includes(p.status))).toBe(true);

    // The wire: one init, then every version as a consecutive delta, folding to GET /api/state.
    await recorder.waitForVersion(version);
    expect(recorder.violations).toEqual([]);
    const init = recorder.messages('init')[0]!;
    expect(recorder.deltaVersions).toEqual(Array.from({ length: version - init.version }, (_, i) => init.version + i + 1));
    expect(recorder.messages('full_state')).toEqual([]);
    expect(recorder.fullState).toEqual(payload);
  });

  it('reuses the hosts of an earlier run on the same store and cancels what that run left running', async () => {
    const dataDir = tempDir();
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await startTestServer({ dataDir });
    const sim1 = new FleetSimulator({ baseUrl: first.url, token: first.token, hosts: 4, speed: 10, random: seededRandom(1) });
    await sim1.start();
    await sleep(300); // let it start some work, which the next run must find and cancel
    await sim1.stop();
    const before = (await fullState(first)).payload.hosts;
    expect(before.map((h) => h.id)).toEqual(['web-01', 'web-02', 'db-01', 'build-01']);
    // A run killed with -9 leaves its command running.
    const leftover = await api(first.url, first.token).post('/api/commands', { host_id: 'db-01', op: 'switch' });
    expect(leftover.status).toBe(201);
    await first.close();

    const server = await startTestServer({ dataDir });
    cleanups.push(() => server.close());
    const sim2 = new FleetSimulator({ baseUrl: server.url, token: server.token, hosts: 6, speed: 10, random: seededRandom(2) });
    cleanups.push(() => sim2.stop());
    await sim2.start();
    const after = (await fullState(server)).payload;
    expect(after.hosts.map((h) => h.id)).toEqual(['web-01', 'web-02', 'db-01', 'build-01', 'build-mac-01', 'cache-01']);
    for (const host of before) expect(after.hosts.find((h) => h.id === host.id)!.created_at).toBe(host.created_at);
    const cancelled = after.commands.find((c) => c.id === leftover.body.command.id)!;
    expect(cancelled.status).toBe('cancelled');
    expect(after.hosts.find((h) => h.id === 'db-01')!.pending_command).toBeNull();
    expect(after.events.some((e) => e.message.includes('interrupted by an earlier demo run'))).toBe(true);

    // The reused hosts heartbeat again.
    const lastSeen = new Map(before.map((h) => [h.id, h.last_seen]));
    await until('a heartbeat on a reused host', async () => (await fullState(server)).payload.hosts.some((h) => lastSeen.has(h.id) && h.last_seen !== lastSeen.get(h.id)), 3000, 100);
    await sim2.stop();
    expect(sim2.activity).toEqual({ timers: 0, requests: 0, tasks: 0 });
  });

  it('runs what others start on its hosts, as agents do: a command and a pipeline from the dashboard', async () => {
    const server = await startTestServer();
    cleanups.push(() => server.dispose());
    const http = api(server.url, server.token);
    const sim = new FleetSimulator({ baseUrl: server.url, token: server.token, hosts: 3, speed: 20, random: seededRandom(5) });
    cleanups.push(() => sim.stop());
    await sim.start();
    // Whatever the demo's operator is doing on db-01 now, the dashboard's command waits for it.
    let command: { id: string } | null = null;
    await until('db-01 to accept a command', async () => {
      const res = await http.post('/api/commands', { host_id: 'db-01', op: 'reboot' });
      if (res.status === 201) command = res.body.command;
      return command !== null;
    }, 3000, 100);
    const pipeline = (await http.post('/api/pipelines', { name: 'deploy-web', hosts: ['web-01', 'web-02'], stages: ['switch', 'test'] })).body.pipeline;

    await until('both to finish', async () => {
      const { payload } = await fullState(server);
      const done = payload.commands.find((c) => c.id === command!.id);
      const pipe = payload.pipelines.find((p) => p.id === pipeline.id);
      return done !== undefined && TERMINAL.includes(done.status) && pipe !== undefined && !['pending', 'running'].includes(pipe.status);
    }, 6000, 100);
    const { payload } = await fullState(server);
    const reboot = payload.commands.find((c) => c.id === command!.id)!;
    expect(['success', 'error']).toContain(reboot.status);
    expect(reboot.output).toMatch(/reboot/);
    const pipe = payload.pipelines.find((p) => p.id === pipeline.id)!;
    expect(['complete', 'partial', 'failed']).toContain(pipe.status);
    expect(pipe.current_stage).toBeGreaterThanOrEqual(0);
    const stageCommands = payload.commands.filter((c) => c.pipeline_id === pipeline.id);
    expect(stageCommands.length).toBeGreaterThanOrEqual(2);
    expect(stageCommands.every((c) => ['web-01', 'web-02'].includes(c.host_id) && c.status !== 'running')).toBe(true);
    expect(payload.events.some((e) => e.message.startsWith('pipeline deploy-web picked up'))).toBe(true);
    await sim.stop();
  });

  it('respects a host removed through the API: its agent stops instead of registering it again', async () => {
    const server = await startTestServer();
    cleanups.push(() => server.dispose());
    const http = api(server.url, server.token);
    const sim = new FleetSimulator({ baseUrl: server.url, token: server.token, hosts: 2, speed: 20, random: seededRandom(4) });
    cleanups.push(() => sim.stop());
    await sim.start();
    // 409 while web-02 runs a command: try again, as a user would.
    await until('web-02 removed', async () => (await http.delete('/api/hosts/web-02')).status === 200, 3000, 100);
    await sleep(1000); // nothing brings it back within four heartbeat intervals at 20x
    expect((await fullState(server)).payload.hosts.map((h) => h.id)).toEqual(['web-01']);
    await sim.stop();
  });

  it('survives a server that goes away: requests fail quietly and stop() still resolves', async () => {
    const server = await startTestServer();
    const sim = new FleetSimulator({ baseUrl: server.url, token: server.token, hosts: 2, speed: 20, random: seededRandom(3) });
    await sim.start();
    await server.dispose();
    await sleep(500); // let its requests meet the closed server for a while
    await sim.stop();
    expect(sim.activity).toEqual({ timers: 0, requests: 0, tasks: 0 });
  });
});

describe('demo options', () => {
  it('reads --hosts, NIXFLEET_DEMO_HOSTS and --speed, and names what is wrong', () => {
    expect(parseDemoOptions([], {})).toEqual({ hosts: 12, speed: 1, help: false });
    expect(parseDemoOptions(['--hosts', '30', '--speed=2.5'], {})).toEqual({ hosts: 30, speed: 2.5, help: false });
    expect(parseDemoOptions([], { NIXFLEET_DEMO_HOSTS: '7' }).hosts).toBe(7);
    expect(parseDemoOptions(['--hosts=3'], { NIXFLEET_DEMO_HOSTS: '7' }).hosts).toBe(3);
    expect(() => parseDemoOptions(['--hosts', '0'], {})).toThrow('--hosts must be a whole number from 1 to 500, got "0"');
    expect(() => parseDemoOptions(['--hosts', '501'], {})).toThrow(/1 to 500/);
    expect(() => parseDemoOptions(['--hosts', '2.5'], {})).toThrow(/whole number/);
    expect(() => parseDemoOptions([], { NIXFLEET_DEMO_HOSTS: 'many' })).toThrow('NIXFLEET_DEMO_HOSTS must be a whole number from 1 to 500, got "many"');
    expect(() => parseDemoOptions(['--hosts'], {})).toThrow('--hosts needs a value');
    expect(() => parseDemoOptions(['--speed', '0'], {})).toThrow(/--speed must be a number from 0.1 to 100/);
    expect(() => parseDemoOptions(['--fast'], {})).toThrow('unknown argument "--fast"');
  });
});

describe('npm run demo (dist/demo/main.js)', () => {
  function runDemo(args: string[], env: Record<string, string>) {
    const child = spawn(process.execPath, [DEMO_MAIN, ...args], { env: { ...process.env, NIXFLEET_LISTEN: '127.0.0.1:0', NIXFLEET_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    cleanups.push(() => void child.kill('SIGKILL'));
    return { child, exited, out: () => stdout, err: () => stderr };
  }

  it('prints the URL, runs the fleet and exits 0 on SIGINT', async () => {
    const dataDir = tempDir();
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const demo = runDemo(['--hosts', '3', '--speed', '10'], { NIXFLEET_DATA_DIR: dataDir });
    let url = '';
    await until('the URL', async () => ((url = /open (http:\/\/\S+)/.exec(demo.out())?.[1] ?? ''), url !== ''), 5000, 100);
    // The banner tells a newcomer how to log in; do as they would.
    const password = /log in as admin, password: (\S+)/.exec(demo.out())?.[1] ?? '';
    const login = await request(url, 'POST', '/api/login', { username: 'admin', password });
    expect(login.status).toBe(200);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    await until('three hosts', async () => ((await request(url, 'GET', '/api/state', undefined, { cookie })).body.payload.hosts.length === 3), 5000, 100);
    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(0);
    expect(demo.out()).toContain('nixfleet demo stopped');
  });

  it('refuses a bad host count with a clear message', async () => {
    const demo = runDemo(['--hosts', '900'], {});
    expect(await demo.exited).toBe(2);
    expect(demo.err()).toContain('--hosts must be a whole number from 1 to 500, got "900"');
  });
});
