// The demo fleet on real agents: DemoFleet against a real server in this process (its agents
// connect over real sockets and run the op simulator as real processes), and the demo process
// (dist/demo/main.js) as a newcomer meets it: the URL, a living fleet, a command of theirs that
// runs, streams and stops, and a Ctrl-C that leaves no op process behind.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AGENT_VERSION } from '../src/agent/index.js';
import { DemoFleet } from '../src/demo/demo-fleet.js';
import { parseDemoOptions } from '../src/demo/options.js';
import { seededRandom } from '../src/demo/random.js';
import type { Command, FullState, Host } from '../src/protocol/index.js';
import { processGone } from './agent-harness.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { api, logInSession, request } from './support/http.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { startTestServer, tempDir, type TestServer } from './support/test-server.js';
import { until } from './support/until.js';

const DEMO_MAIN = fileURLToPath(new URL('../dist/demo/main.js', import.meta.url));
const SIMULATOR = fileURLToPath(new URL('../dist/demo/simulated-op.js', import.meta.url));
const TERMINAL = ['success', 'error', 'timeout', 'cancelled'];

const defer = cleanupAfterEach();

/** Pids of the op simulator's processes running now (zombies do not run). */
function simulatorProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(SIMULATOR) && !processGone(Number(entry))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function stateOf(url: string, token: string): Promise<{ version: number; payload: FullState }> {
  return (await api(url, token).get('/api/state')).body;
}

/** Starts `op` on `hostId` as an operator would: again while the host is busy or its agent away. */
async function startCommand(url: string, token: string, hostId: string, op: string): Promise<Command> {
  let command: Command | null = null;
  await until(`${hostId} to take ${op}`, async () => {
    const res = await api(url, token).post('/api/commands', { host_id: hostId, op });
    if (res.status === 201) command = res.body.command;
    else expect(res.status).toBe(409); // busy, or its agent away for a while: try again
    return command !== null;
  }, 20_000, 100);
  return command!;
}

/** The statuses a command went through on the wire: its start, updates and end. */
function lifecycle(recorder: SyncRecorder, id: string): string[] {
  const statuses: string[] = [];
  for (const { message } of recorder.frames) {
    if (message.type !== 'delta') continue;
    const change = message.payload;
    if (change.type === 'command_started' && change.command.id === id) statuses.push(change.command.status);
    if (change.type === 'command_updated' && change.id === id && change.fields.status) statuses.push(change.fields.status);
    if (change.type === 'command_finished' && change.id === id) statuses.push(change.status);
  }
  return statuses;
}

/** A fleet at 20x (a 60 s switch takes 3 s) whose stop is deferred. */
function startFleet(server: TestServer, hosts: number, options: { seed: number; failRate?: number }): DemoFleet {
  const fleet = new DemoFleet({
    server,
    hosts,
    speed: 20,
    random: seededRandom(options.seed),
    simulator: SIMULATOR,
    ...(options.failRate !== undefined ? { failRate: options.failRate } : {}),
  });
  defer(() => fleet.stop());
  return fleet;
}

const online = (hosts: readonly Host[]) => hosts.filter((h) => h.status === 'online');

describe('DemoFleet', () => {
  it('runs a lively fleet of real agents, seen consistently on the wire, and stops leaving nothing behind', async () => {
    // Short windows: what the stopped agents leave (a stop not yet confirmed, a switch waiting for
    // its agent's restart) is ended by the server within seconds, not minutes.
    const server = await startTestServer({ agents: { reconnectWindowMs: 2000, stopGraceMs: 1000 } });
    defer(() => server.dispose());
    const recorder = await SyncRecorder.connect(server.wsUrl, { headers: server.authHeaders });
    defer(() => recorder.close());
    const fleet = startFleet(server, 4, { seed: 7 });
    await fleet.start();

    // Hosts registered by their agents (zero-touch), commands their agents ran to the end with
    // output, metrics from the heartbeats.
    const lively = ({ hosts, commands }: FullState) =>
      online(hosts).length === 4 &&
      hosts.every((h) => h.metrics !== null) &&
      commands.some((c) => (c.status === 'success' || c.status === 'error') && c.output_size > 0 && c.pid !== null);
    let seen = await stateOf(server.url, server.token);
    await until('a lively fleet', async () => lively((seen = await stateOf(server.url, server.token)).payload), 20_000, 100);

    const { payload } = seen;
    await recorder.waitForVersion(seen.version);
    // In the order their agents happened to register.
    expect(payload.hosts.map((h) => h.id).sort()).toEqual(['build-01', 'db-01', 'web-01', 'web-02']);
    for (const host of payload.hosts) {
      expect(host).toMatchObject({ status: 'online', agent_version: AGENT_VERSION, host_type: 'nixos', os_version: 'NixOS 24.11 (Vicuna)' });
      expect(host.generation).toMatch(/^[0-9a-f]{7}$/);
      // The simulation's checks, reported through the agent's update_status.
      for (const compartment of Object.values(host.compartments)) expect(['ok', 'outdated', 'error', 'unknown', 'working']).toContain(compartment.status);
      expect(host.compartments.git.checked_at).not.toBeNull();
    }
    const ran = payload.commands.find((c) => (c.status === 'success' || c.status === 'error') && c.output_size > 0)!;
    expect(lifecycle(recorder, ran.id)).toEqual(['pending', 'running', ran.status]);
    expect(payload.commands.map((c) => c.output).join('')).toMatch(/\/nix\/store\/[0-9a-z]{32}-|From github\.com|checks against generation/);
    expect(payload.events.some((e) => e.actor === 'token:demo operator' && / requested$/.test(e.message))).toBe(true);
    expect(payload.events.some((e) => e.actor?.startsWith('agent:') && /succeeded|failed/.test(e.message))).toBe(true);

    const stopping = fleet.stop();
    expect(fleet.stop()).toBe(stopping);
    await stopping;
    expect(fleet.activity).toEqual({ timers: 0, requests: 0, tasks: 0 });
    expect(simulatorProcesses()).toEqual([]);
    // Its tokens are revoked; its agents gone, so its hosts go offline; what ran was stopped.
    expect(server.auth.listTokens().filter((t) => t.createdBy === 'demo' && t.revokedAt === null)).toEqual([]);
    await until('every host offline', async () => online((await stateOf(server.url, server.token)).payload.hosts).length === 0, 5000, 50);
    // The pipelines it drove are finished; every command ended (most stopped by the demo itself).
    let after = await stateOf(server.url, server.token);
    expect(after.payload.pipelines.every((p) => !['pending', 'running'].includes(p.status))).toBe(true);
    await until('every command ended', async () => (after = await stateOf(server.url, server.token)).payload.commands.every((c) => TERMINAL.includes(c.status)), 10_000, 100);

    // The wire: one init, then every version as a consecutive delta, folding to GET /api/state.
    await recorder.waitForVersion(after.version);
    expect(recorder.violations).toEqual([]);
    const init = recorder.messages('init')[0]!;
    expect(recorder.deltaVersions).toEqual(Array.from({ length: recorder.version - init.version }, (_, i) => init.version + i + 1));
    expect(recorder.fullState).toEqual((await stateOf(server.url, server.token)).payload);
  }, 60_000);

  it('an agent that goes away takes its host offline until its next agent is back; a reboot does too', async () => {
    const server = await startTestServer();
    defer(() => server.dispose());
    const fleet = startFleet(server, 2, { seed: 3, failRate: 0 });
    await fleet.start();
    const statusOf = (id: string) => server.manager.state.hosts.get(id)?.status;
    await until('both hosts online', () => statusOf('web-01') === 'online' && statusOf('web-02') === 'online', 10_000);

    // 20 s of demo time: a second at 20x.
    const back = fleet.host('web-01')!.goAway(20_000);
    await until('web-01 offline', () => statusOf('web-01') === 'offline', 5000, 10);
    await back;
    await until('web-01 online again', () => statusOf('web-01') === 'online', 10_000, 20);
    const messages = server.manager.state.events.filter((e) => e.host_id === 'web-01' && e.category === 'agent').map((e) => e.message);
    expect(messages.slice(-2)).toEqual([expect.stringMatching(/^agent disconnected \(1000/), 'agent connected']);

    const reboot = await startCommand(server.url, server.token, 'web-02', 'reboot');
    await until('the reboot to succeed', () => server.manager.state.commands.get(reboot.id)?.status === 'success', 10_000);
    expect(server.manager.state.commands.get(reboot.id)!.output).toContain('Broadcast message from root@web-02');
    await until('web-02 down for its reboot', () => statusOf('web-02') === 'offline', 5000, 10);
    await until('web-02 back up', () => statusOf('web-02') === 'online', 10_000, 20);
  }, 60_000);

  it('reuses the hosts of an earlier run, matched by hostname, and revokes the tokens a killed run left', async () => {
    const dataDir = tempDir();
    defer(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await startTestServer({ dataDir });
    // A host someone added by hand under another id: the demo's web-01 is this one.
    await api(first.url, first.token).addHost('web-01', { id: 'legacy-web' });
    const fleet1 = startFleet(first, 2, { seed: 1 });
    await fleet1.start();
    await until('both hosts online', () => [...first.manager.state.hosts.values()].filter((h) => h.status === 'online').length === 2, 10_000);
    await fleet1.stop();
    const before = (await stateOf(first.url, first.token)).payload.hosts;
    expect(before.map((h) => [h.id, h.hostname])).toEqual([
      ['legacy-web', 'web-01'],
      ['web-02', 'web-02'],
    ]);
    // What a run killed with -9 leaves: a token nobody holds any more.
    const leftover = await first.auth.createToken({ name: 'demo agent web-02', role: 'agent', hostId: 'web-02' }, 'demo');
    await first.close();

    const server = await startTestServer({ dataDir });
    defer(() => server.close());
    const fleet2 = startFleet(server, 3, { seed: 2 });
    await fleet2.start();
    expect(server.auth.listTokens().find((t) => t.id === leftover.id)!.revokedAt).not.toBeNull();
    await until('three hosts online', () => [...server.manager.state.hosts.values()].filter((h) => h.status === 'online').length === 3, 10_000);
    const after = (await stateOf(server.url, server.token)).payload.hosts;
    expect(after.map((h) => h.id)).toEqual(['legacy-web', 'web-02', 'db-01']);
    for (const host of before) expect(after.find((h) => h.id === host.id)!.created_at).toBe(host.created_at);
    const agentTokens = server.auth.listTokens().filter((t) => t.createdBy === 'demo' && t.role === 'agent' && t.revokedAt === null);
    expect(agentTokens.map((t) => t.hostId).sort()).toEqual(['db-01', 'legacy-web', 'web-02']);
  }, 60_000);

  it('lets a host removed through the API go: its agent stops', async () => {
    const server = await startTestServer();
    defer(() => server.dispose());
    const fleet = startFleet(server, 2, { seed: 4 });
    await fleet.start();
    await until('web-02 online', () => server.manager.state.hosts.get('web-02')?.status === 'online', 10_000);
    // 409 while web-02 runs a command: try again, as a user would.
    await until('web-02 removed', async () => (await api(server.url, server.token).delete('/api/hosts/web-02')).status === 200, 10_000, 100);
    await until('its agent gone', () => !server.agents.hostIds.includes('web-02'), 5000);
    await fleet.stop();
    expect([...server.manager.state.hosts.keys()]).toEqual(['web-01']);
  }, 60_000);
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
    // Dead before its data directory is removed (the cleanups run in reverse order).
    defer(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    return { child, exited, out: () => stdout, err: () => stderr };
  }

  it('prints the URL and runs a living fleet of agents; a command of ours runs, streams and stops; SIGINT leaves no op behind', async () => {
    const dataDir = tempDir();
    defer(() => rmSync(dataDir, { recursive: true, force: true }));
    const demo = runDemo(['--hosts', '4', '--speed', '20'], { NIXFLEET_DATA_DIR: dataDir });
    let url = '';
    await until('the URL', () => ((url = /open (http:\/\/\S+)/.exec(demo.out())?.[1] ?? ''), url !== ''), 10_000, 50);
    // The banner tells a newcomer how to log in; do as they would, then make a token for a script.
    const password = /log in as admin, password: (\S+)/.exec(demo.out())?.[1] ?? '';
    const session = await logInSession(url, 'admin', password);
    const created = await request(url, 'POST', '/api/tokens', { name: 'test operator', role: 'operator' }, session.headers);
    expect(created.status).toBe(201);
    const token: string = created.body.token;
    const recorder = await SyncRecorder.connect(`${url.replace('http', 'ws')}/ws`, { headers: { authorization: `Bearer ${token}` } });
    defer(() => recorder.close());

    // A living fleet: every host online through its agent, with metrics from its heartbeats, and
    // commands the agents took from pending through running to their end, with output.
    // (An op the agent carries out itself, a restart, ends with no output: look for one with some.)
    const ranWithOutput = () => [...(recorder.state?.commands.values() ?? [])].find((c) => ['success', 'error'].includes(c.status) && c.output_size > 0 && lifecycle(recorder, c.id).length === 3);
    await until('a living fleet', () => {
      const hosts = recorder.state ? [...recorder.state.hosts.values()] : [];
      return hosts.length === 4 && online(hosts).length === 4 && hosts.every((h) => h.agent_version === AGENT_VERSION && h.metrics !== null) && ranWithOutput() !== undefined;
    }, 20_000, 100);
    const done = ranWithOutput()!;
    expect(lifecycle(recorder, done.id)).toEqual(['pending', 'running', done.status]);
    expect(done.output_size).toBeGreaterThan(0);

    // A command of ours on a demo host runs on its agent, as a process, to its end…
    const test = await startCommand(url, token, 'web-01', 'test');
    await until('our test to end', () => ['success', 'error'].includes(recorder.state!.commands.get(test.id)?.status ?? ''), 10_000, 20);
    expect(lifecycle(recorder, test.id)).toEqual(['pending', 'running', recorder.state!.commands.get(test.id)!.status]);
    // It checks the generation the host runs: the simulation tells the op simulator.
    expect(recorder.state!.commands.get(test.id)!.output).toMatch(new RegExp(`running \\d+ checks against generation ${recorder.state!.hosts.get('web-01')!.generation}`));

    // …and another one streams its output until we stop it (a pull-switch: its pull part never
    // fails, so it still runs when we do).
    const ours = await startCommand(url, token, 'build-01', 'pull-switch');
    await until('our pull-switch to stream output', () => (recorder.state!.commands.get(ours.id)?.output_size ?? 0) > 0, 10_000, 20);
    const running = recorder.state!.commands.get(ours.id)!;
    expect(running).toMatchObject({ status: 'running', host_id: 'build-01' });
    expect(running.output).toContain('git -C /etc/nixfleet pull --ff-only');
    expect(simulatorProcesses()).toContain(running.pid);
    // …and Stop ends it: its agent stops the process, the command ends `cancelled`.
    const stop = await api(url, token).post(`/api/commands/${ours.id}/cancel`);
    expect(stop.status).toBe(202);
    await until('our pull-switch cancelled', () => recorder.state!.commands.get(ours.id)?.status === 'cancelled', 10_000, 20);
    expect(processGone(running.pid!)).toBe(true);
    expect(lifecycle(recorder, ours.id)).toEqual(['pending', 'running', 'cancelled']);

    // Ctrl-C: the agents stop their ops, the server closes, exit 0, no op process left.
    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(0);
    expect(demo.out()).toContain('nixfleet demo stopped');
    expect(simulatorProcesses()).toEqual([]);
  }, 90_000);

  it('refuses a bad host count with a clear message', async () => {
    const demo = runDemo(['--hosts', '900'], {});
    expect(await demo.exited).toBe(2);
    expect(demo.err()).toContain('--hosts must be a whole number from 1 to 500, got "900"');
  });
});
