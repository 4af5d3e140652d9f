// Our agent as a child process (the one-file bundle, plain node) against the real server, its
// ops small shell scripts: the whole lifecycle, a stop that kills the op's whole process group,
// a server-enforced timeout, `kill -9` of the agent mid-command, the server restarted
// mid-command (no line lost, none doubled), and two agents claiming one host.
import { describe, expect, it } from 'vitest';
import { startServer } from '../src/server/server.js';
import { alive, groupMembers, spawnAgent } from './support/agent-process.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { api } from './support/http.js';
import { freePort } from './support/ports.js';
import { startTestServer, tempDir, TEST_ADMIN_PASSWORD, type TestServer } from './support/test-server.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();
const LINES = 400;
/** Numbered lines with a pause every 20, then exit 0: about 1.5 s. */
const COUNTER = `i=1; while [ $i -le ${LINES} ]; do echo "line $i"; [ $((i % 20)) -eq 0 ] && sleep 0.07; i=$((i + 1)); done\n`;
/** A long op with a grandchild in its process group. */
const SLEEPER = `echo "starting"; sleep 300 & wait\n`;
const counted = Array.from({ length: LINES }, (_, i) => `line ${i + 1}`);

async function agentToken(server: TestServer, hostId = 'web-1'): Promise<string> {
  return (await server.auth.createToken({ name: `agent ${hostId}`, role: 'agent', hostId }, 'tests')).token;
}

async function storedLines(server: { url: string }, token: string, id: string): Promise<string[]> {
  const response = await fetch(`${server.url}/api/commands/${id}/output`, { headers: { authorization: `Bearer ${token}` } });
  return (await response.text()).split('\n').filter(Boolean);
}

const commandOf = (server: TestServer, id: string) => server.manager.state.commands.get(id)!;

async function online(server: TestServer, hostId = 'web-1'): Promise<void> {
  await until(`${hostId} online`, () => server.manager.state.hosts.get(hostId)?.status === 'online', 15_000);
}

describe('nixfleet-agent process on the real server', () => {
  it('runs a command through its whole lifecycle: pending, running with its pid, every line, success', async () => {
    const server = await startTestServer({ agents: { outputFlushMs: 20 } });
    defer(() => server.dispose());
    spawnAgent({ url: server.wsUrl, token: await agentToken(server), hostname: 'web-1', scripts: { test: COUNTER } }, defer);
    await online(server);
    expect(server.manager.state.hosts.get('web-1')).toMatchObject({ host_type: 'nixos', agent_version: expect.any(String) });
    const started = await api(server.url, server.token).post('/api/commands', { host_id: 'web-1', op: 'test' });
    expect(started.body.command.status).toBe('pending');
    const id = started.body.command.id as string;
    await until('running with a pid', () => commandOf(server, id).status === 'running' && commandOf(server, id).pid !== null);
    await until('success', () => commandOf(server, id).status === 'success', 15_000);
    expect(commandOf(server, id).exit_code).toBe(0);
    expect(await storedLines(server, server.token, id)).toEqual(counted);
    expect(commandOf(server, id).output_seq).toBe(LINES);
  });

  it('stop kills the op\'s whole process group and the command ends cancelled', async () => {
    const server = await startTestServer();
    defer(() => server.dispose());
    spawnAgent({ url: server.wsUrl, token: await agentToken(server), hostname: 'web-1', scripts: { test: SLEEPER } }, defer);
    await online(server);
    const http = api(server.url, server.token);
    const id = (await http.post('/api/commands', { host_id: 'web-1', op: 'test' })).body.command.id as string;
    await until('running with a pid', () => commandOf(server, id).pid !== null);
    const pgid = commandOf(server, id).pid!;
    await until('the sleep grandchild runs', () => groupMembers(pgid).length >= 2);
    const members = groupMembers(pgid);
    expect((await http.post(`/api/commands/${id}/cancel`)).status).toBe(202);
    await until('cancelled', () => commandOf(server, id).status === 'cancelled', 10_000);
    expect(commandOf(server, id).exit_code).toBe(130);
    await until('the whole group is gone', () => members.every((pid) => !alive(pid)), 5_000);
  });

  it('an op past its hard limit ends timeout, and the agent stops its process group', async () => {
    const server = await startTestServer({ agents: { opTimeouts: { test: { warnMs: 300, hardMs: 1000 }, default: { warnMs: 60_000, hardMs: 60_000 } }, superviseIntervalMs: 100 } });
    defer(() => server.dispose());
    spawnAgent({ url: server.wsUrl, token: await agentToken(server), hostname: 'web-1', scripts: { test: SLEEPER } }, defer);
    await online(server);
    const id = (await api(server.url, server.token).post('/api/commands', { host_id: 'web-1', op: 'test' })).body.command.id as string;
    await until('running with a pid', () => commandOf(server, id).pid !== null);
    const pgid = commandOf(server, id).pid!;
    await until('timeout', () => commandOf(server, id).status === 'timeout', 10_000);
    const messages = server.manager.state.events.filter((e) => e.details?.command_id === id).map((e) => e.message);
    expect(messages.some((m) => m.startsWith('test is taking long'))).toBe(true);
    expect(messages.some((m) => m.startsWith('test timed out'))).toBe(true);
    await until('the op group is gone', () => groupMembers(pgid).length === 0, 5_000);
    // The host is free for the next command.
    expect(server.manager.state.hosts.get('web-1')!.pending_command).toBeNull();
  });

  it('kill -9 of the agent mid-command: offline at once; restarted, it runs nothing, so the command ends error', async () => {
    const server = await startTestServer({ agents: { outputFlushMs: 20 } });
    defer(() => server.dispose());
    const token = await agentToken(server);
    const first = spawnAgent({ url: server.wsUrl, token, hostname: 'web-1', scripts: { test: SLEEPER } }, defer);
    await online(server);
    const id = (await api(server.url, server.token).post('/api/commands', { host_id: 'web-1', op: 'test' })).body.command.id as string;
    await until('running with a pid', () => commandOf(server, id).pid !== null);
    const pgid = commandOf(server, id).pid!;
    // systemd would kill the agent's cgroup with it; here the orphaned op group is ours to end.
    defer(() => groupMembers(pgid).forEach((pid) => process.kill(pid, 'SIGKILL')));
    await first.kill('SIGKILL');
    await until('offline', () => server.manager.state.hosts.get('web-1')!.status === 'offline', 5_000);
    expect(commandOf(server, id).status).toBe('running'); // it waits for the agent to come back
    spawnAgent({ url: server.wsUrl, token, hostname: 'web-1', scripts: { test: SLEEPER }, dir: first.dir }, defer);
    await until('error', () => commandOf(server, id).status === 'error', 10_000);
    expect(server.manager.state.events.some((e) => e.details?.command_id === id && e.message.includes('ended with no result'))).toBe(true);
  });

  it('the server restarted mid-command: the agent reconnects, resends what the store lacks, and the command succeeds with every line once', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const config = { listenHost: '127.0.0.1', listenPort: port, dataDir, logLevel: 'silent' as const, adminPassword: TEST_ADMIN_PASSWORD, agents: { outputFlushMs: 20 } };
    let server = await startServer(config);
    defer(() => server.close());
    const { token: admin } = await server.auth.createToken({ name: 'admin', role: 'admin' }, 'tests');
    const { token } = await server.auth.createToken({ name: 'agent web-1', role: 'agent', hostId: 'web-1' }, 'tests');
    spawnAgent({ url: server.wsUrl, token, hostname: 'web-1', scripts: { test: COUNTER } }, defer);
    await until('online', () => server.manager.state.hosts.get('web-1')?.status === 'online', 15_000);
    const id = (await api(server.url, admin).post('/api/commands', { host_id: 'web-1', op: 'test' })).body.command.id as string;
    await until('some output stored', () => (server.manager.state.commands.get(id)?.output_seq ?? 0) >= 60, 10_000);
    await server.close();
    server = await startServer(config);
    await until('success after the restart', () => server.manager.state.commands.get(id)?.status === 'success', 20_000);
    expect(await storedLines(server, admin, id)).toEqual(counted);
  });

  it('two agents claiming one host: the newer holds it, the host stays online, commands reach one agent only', async () => {
    const server = await startTestServer();
    defer(() => server.dispose());
    const token = await agentToken(server);
    const first = spawnAgent({ url: server.wsUrl, token, hostname: 'web-1', scripts: { test: 'echo from-first\n' } }, defer);
    await online(server);
    const second = spawnAgent({ url: server.wsUrl, token, hostname: 'web-1', scripts: { test: 'echo from-second\n' } }, defer);
    await until('the first was replaced', () => first.stderr().includes('4409'), 10_000);
    expect(server.agents.sessionCount).toBe(1);
    expect(server.manager.state.hosts.get('web-1')!.status).toBe('online');
    const id = (await api(server.url, server.token).post('/api/commands', { host_id: 'web-1', op: 'test' })).body.command.id as string;
    await until('success', () => commandOf(server, id).status === 'success', 10_000);
    expect(await storedLines(server, server.token, id)).toEqual(['from-second']);
    expect(second.child.exitCode).toBeNull();
  });
});
