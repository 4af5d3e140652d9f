// An unmodified NixFleet Go agent against our server, message for message as it speaks
// (test/support/go-agent.ts emulates it): register, heartbeat, command, output, status, reject,
// stop, switch-and-restart; the values it sends as they are ("" for unset strings, an empty git
// compartment, floats); and the fleet state the browsers see, live.
import { afterEach, describe, expect, it } from 'vitest';
import { AgentCloseCode } from '../src/protocol/agent-wire.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { connectGoAgent, GoAgent } from './support/go-agent.js';
import { api } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();

async function serverWithAgent(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<{ server: TestServer; agent: GoAgent; client: ReturnType<typeof api> }> {
  const server = await startTestServer({ agents: { outputFlushMs: 20, ...overrides.agents }, ...overrides });
  defer(() => server.dispose());
  const agent = await connectGoAgent(server, 'web-1');
  defer(() => agent.close());
  return { server, agent, client: api(server.url, server.token) };
}

const host = (server: TestServer, id = 'web-1') => server.manager.state.hosts.get(id)!;
const command = (server: TestServer, id: string) => server.manager.state.commands.get(id)!;
const events = (server: TestServer) => server.manager.state.events.map((e) => `${e.actor}: ${e.message}`);

describe('a Go agent on our server', () => {
  afterEach(() => {});

  it('registers: a token for a host that does not exist yet creates it, online, with what the agent said', async () => {
    const { server, agent } = await serverWithAgent();
    const registered = await agent.waitFor('registered');
    expect(registered.payload).toMatchObject({ host_id: 'web-1' });
    expect(host(server)).toMatchObject({
      id: 'web-1',
      hostname: 'web-1',
      host_type: 'nixos',
      status: 'online',
      agent_version: '3.1.0',
      os_version: '24.11 (Vicuna)',
      nixpkgs_version: '24.11.20250101.abcdef0',
      generation: 'a1b2c3d',
    });
    expect(events(server)).toContain('agent:web-1: agent registered a new host');
  });

  it('maps heartbeat values our schema cannot hold as sent: empty git kept, "" times null, offsets to UTC, metrics clamped', async () => {
    const { server, agent } = await serverWithAgent();
    agent.heartbeat(null, null, { metrics: { cpu: 133.7, ram: 43.25, swap: -1, load: 0.42 } });
    await until('heartbeat published', () => host(server).metrics !== null);
    const h = host(server);
    expect(h.metrics).toEqual({ cpu: 100, ram: 43.25, swap: 0, load: 0.42 });
    expect(h.compartments.git).toEqual({ status: 'unknown', message: '', checked_at: null }); // untouched: the agent left it empty
    expect(h.compartments.lock).toEqual({ status: 'ok', message: 'flake.lock is current', checked_at: '2026-12-01T10:00:00.000Z' });
    expect(h.compartments.system).toEqual({ status: 'outdated', message: 'a newer generation is built', checked_at: '2026-12-01T09:00:00.000Z' });
    expect(h.compartments.tests.checked_at).toBeNull();
  });

  it('publishes a heartbeat only when something shown changed', async () => {
    const { server, agent } = await serverWithAgent();
    agent.heartbeat();
    await until('first heartbeat published', () => host(server).metrics !== null);
    await server.agents.settled('web-1');
    const before = server.manager.version;
    for (let i = 0; i < 20; i++) agent.heartbeat(null, null, { metrics: { cpu: 12.5 + (i % 2) * 0.1, ram: 43.25, swap: 0, load: 0.42 } });
    await until('heartbeats handled', () => server.agents.stats.heartbeats >= 21);
    await server.agents.settled('web-1');
    expect(server.manager.version).toBe(before);
    agent.heartbeat(null, null, { generation: 'f00dfeed' });
    await until('a new generation is published at once', () => host(server).generation === 'f00dfeed');
  });

  it('runs a command: pending, sent to the agent, running on its heartbeat, output batched, success on status ok', async () => {
    const { server, agent, client } = await serverWithAgent();
    const res = await client.post('/api/commands', { host_id: 'web-1', op: 'pull' });
    expect(res.status).toBe(201);
    expect(res.body.command.status).toBe('pending');
    const id = res.body.command.id as string;
    const sent = await agent.waitFor('command');
    expect(sent.payload.command).toBe('pull');
    agent.heartbeat('pull', 4242);
    await until('running', () => command(server, id).status === 'running');
    expect(command(server, id).pid).toBe(4242);
    const versionBefore = server.manager.version;
    for (let i = 1; i <= 200; i++) agent.output(`line ${i}`);
    agent.status('ok', 'pull', 0, '', 'b2c3d4e');
    await until('finished', () => command(server, id).status === 'success');
    const c = command(server, id);
    expect(c.exit_code).toBe(0);
    expect(c.output).toBe(Array.from({ length: 200 }, (_, i) => `line ${i + 1}\n`).join(''));
    // 200 lines, far fewer versioned changes (batched), plus the end and its event.
    expect(server.manager.version - versionBefore).toBeLessThan(20);
    expect(host(server).pending_command).toBeNull();
    expect(events(server).some((e) => e.startsWith('agent:web-1: pull succeeded'))).toBe(true);
  });

  it('a first output line is the start when no heartbeat said so', async () => {
    const { server, agent, client } = await serverWithAgent();
    const id = (await client.post('/api/commands', { host_id: 'web-1', op: 'test' })).body.command.id;
    await agent.waitFor('command');
    agent.output('running tests');
    await until('running', () => command(server, id).status === 'running');
    expect(command(server, id).started_at).not.toBeNull();
    agent.status('error', 'test', 3, 'tests failed');
    await until('error', () => command(server, id).status === 'error');
    expect(command(server, id).exit_code).toBe(3);
  });

  it('command_rejected ends the command as error with the reason in the event log', async () => {
    const { server, agent, client } = await serverWithAgent();
    const id = (await client.post('/api/commands', { host_id: 'web-1', op: 'switch' })).body.command.id;
    await agent.waitFor('command');
    agent.rejected('pull', 99);
    await until('error', () => command(server, id).status === 'error');
    expect(events(server).some((e) => e.includes('rejected by the agent: command already running (it runs pull, pid 99)'))).toBe(true);
  });

  it('cancel sends stop; the agent\'s `status stopped 130` ends it cancelled; its later error status changes nothing', async () => {
    const { server, agent, client } = await serverWithAgent();
    const id = (await client.post('/api/commands', { host_id: 'web-1', op: 'switch' })).body.command.id;
    await agent.waitFor('command');
    agent.heartbeat('switch', 777);
    await until('running', () => command(server, id).status === 'running');
    const cancel = await client.post(`/api/commands/${id}/cancel`);
    expect(cancel.status).toBe(202);
    expect(cancel.body.status).toBe('stopping');
    const stop = await agent.waitFor('command', 1);
    expect(stop.payload.command).toBe('stop');
    expect(command(server, id).stop_requested_at).not.toBeNull();
    agent.status('stopped', 'switch', 130, 'terminated by user');
    agent.status('error', 'switch', 143, 'rebuild failed');
    await until('cancelled', () => command(server, id).status === 'cancelled');
    await server.agents.settled('web-1');
    expect(command(server, id)).toMatchObject({ status: 'cancelled', exit_code: 130 });
  });

  it('a stop the agent never confirms ends cancelled after the grace', async () => {
    const { server, agent, client } = await serverWithAgent({ agents: { stopGraceMs: 300, superviseIntervalMs: 50 } });
    const id = (await client.post('/api/commands', { host_id: 'web-1', op: 'test' })).body.command.id;
    await agent.waitFor('command');
    expect((await client.post(`/api/commands/${id}/cancel`)).status).toBe(202);
    await until('cancelled by the server', () => command(server, id).status === 'cancelled');
    expect(events(server).some((e) => e.startsWith('server: test cancelled: the agent did not confirm the stop'))).toBe(true);
  });

  it('a switch: status ok, the agent exits (101) and registers again with its new build: success', async () => {
    const { server, agent, client } = await serverWithAgent();
    const id = (await client.post('/api/commands', { host_id: 'web-1', op: 'switch' })).body.command.id;
    await agent.waitFor('command');
    agent.heartbeat('switch', 1000);
    agent.output('building the system configuration...');
    agent.status('ok', 'switch', 0);
    await until('waiting for the restart', () => command(server, id).exit_code === 0);
    expect(command(server, id).status).toBe('running');
    agent.kill(); // the agent process exits
    await until('offline', () => host(server).status === 'offline');
    const back = new GoAgent(server.wsUrl, agent.token, { hostname: 'web-1', agentVersion: '3.2.0', generation: 'c0ffee1' });
    defer(() => back.close());
    await back.start();
    // Its return is the switch's success, at once: `registered` names no unfinished command.
    expect(command(server, id).status).toBe('success');
    expect(back.ofType('registered')[0]!.payload).toMatchObject({ host_id: 'web-1', command: null });
    expect(host(server)).toMatchObject({ status: 'online', agent_version: '3.2.0', generation: 'c0ffee1' });
    expect(events(server).some((e) => e.includes('switch succeeded: the agent came back (agent 3.2.0, generation c0ffee1)'))).toBe(true);
  });

  it('a switch whose agent does not restart succeeds after the restart grace', async () => {
    const { server, agent, client } = await serverWithAgent({ agents: { restartGraceMs: 200 } });
    const id = (await client.post('/api/commands', { host_id: 'web-1', op: 'pull-switch' })).body.command.id;
    await agent.waitFor('command');
    agent.status('ok', 'pull-switch', 0);
    await until('success', () => command(server, id).status === 'success');
  });

  it('a switch whose agent never comes back ends error after the reconnect window', async () => {
    const { server, agent, client } = await serverWithAgent({ agents: { reconnectWindowMs: 400, superviseIntervalMs: 50 } });
    const id = (await client.post('/api/commands', { host_id: 'web-1', op: 'switch' })).body.command.id;
    await agent.waitFor('command');
    agent.status('ok', 'switch', 0);
    await until('reported', () => command(server, id).exit_code === 0);
    // It succeeded on the host; only the agent's return is awaited: nothing left to stop.
    expect((await client.post(`/api/commands/${id}/cancel`)).status).toBe(409);
    agent.kill();
    await until('error', () => command(server, id).status === 'error', 5000);
    expect(events(server).some((e) => e.includes('reported success, but the agent did not come back'))).toBe(true);
  });

  it('goes offline at once when its socket closes, and after missed heartbeats when it falls silent', async () => {
    const { server, agent } = await serverWithAgent();
    agent.close();
    await until('offline after close', () => host(server).status === 'offline');
    expect(events(server).some((e) => e.startsWith('agent:web-1: agent disconnected'))).toBe(true);

    const silent = new GoAgent(server.wsUrl, agent.token, { hostname: 'web-1' });
    defer(() => silent.close());
    await silent.connect();
    silent.register({ heartbeat_interval: 0.2 }); // 3 missed beats = 600 ms
    await until('online again', () => host(server).status === 'online');
    expect(await silent.waitClosed(5000)).toBe(AgentCloseCode.SILENT);
    await until('offline after silence', () => host(server).status === 'offline');
  });

  it('a command for a host without a live agent gets 409 host_offline', async () => {
    const { server, agent, client } = await serverWithAgent();
    agent.close();
    await until('offline', () => host(server).status === 'offline');
    const res = await client.post('/api/commands', { host_id: 'web-1', op: 'pull' });
    expect(res.status).toBe(409);
    expect(res.body.error).toBe('host_offline');
  });

  it('a second connection for the same host replaces the first, which does not take the host offline', async () => {
    const { server, agent } = await serverWithAgent();
    const second = new GoAgent(server.wsUrl, agent.token, { hostname: 'web-1' });
    defer(() => second.close());
    await second.start();
    expect(await agent.waitClosed()).toBe(AgentCloseCode.REPLACED);
    await server.agents.settled('web-1');
    expect(host(server).status).toBe('online');
    expect(server.agents.hostIds).toEqual(['web-1']);
  });
});

describe('commands that wait for offline hosts', () => {
  it('queue: true answers 202 and keeps the command pending; it is sent when the agent registers, once', async () => {
    const { server, agent, client } = await serverWithAgent();
    agent.close();
    await until('offline', () => host(server).status === 'offline');
    const queued = await client.post('/api/commands', { host_id: 'web-1', op: 'pull', queue: true });
    expect(queued.status).toBe(202);
    expect(queued.body.command).toMatchObject({ status: 'pending', sent_at: null });
    const id = queued.body.command.id as string;
    expect((await client.post('/api/commands', { host_id: 'web-1', op: 'test', queue: true })).status).toBe(409); // one unfinished command per host
    const back = new GoAgent(server.wsUrl, agent.token, { hostname: 'web-1' });
    defer(() => back.close());
    await back.start();
    // `registered` does not name it (the agent has nothing to report on it); then it is sent.
    expect(back.ofType('registered')[0]!.payload).toMatchObject({ command: null });
    expect((await back.waitFor('command')).payload).toMatchObject({ command: 'pull', command_id: id });
    expect(command(server, id).sent_at).not.toBeNull();
    back.heartbeat('pull', 55);
    back.status('ok', 'pull', 0);
    await until('success', () => command(server, id).status === 'success');
    // Reconnecting again sends nothing twice.
    back.close();
    const third = new GoAgent(server.wsUrl, agent.token, { hostname: 'web-1' });
    defer(() => third.close());
    await third.start();
    await new Promise((r) => setTimeout(r, 200));
    expect(third.ofType('command')).toEqual([]);
  });

  it('a queued command can be cancelled while it waits, and expires when too old', async () => {
    const { server, agent, client } = await serverWithAgent({ agents: { queueMaxAgeMs: 400, superviseIntervalMs: 50 } });
    agent.close();
    await until('offline', () => host(server).status === 'offline');
    const first = (await client.post('/api/commands', { host_id: 'web-1', op: 'switch', queue: true })).body.command.id as string;
    const cancelled = await client.post(`/api/commands/${first}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(command(server, first).status).toBe('cancelled');
    const second = (await client.post('/api/commands', { host_id: 'web-1', op: 'switch', queue: true })).body.command.id as string;
    await until('expired', () => command(server, second).status === 'cancelled', 5000);
    expect(events(server).some((e) => e.startsWith('server: switch expired'))).toBe(true);
  });

  it('without queue, a command for an offline host is still refused with host_offline', async () => {
    const { server, agent, client } = await serverWithAgent();
    agent.close();
    await until('offline', () => host(server).status === 'offline');
    const res = await client.post('/api/commands', { host_id: 'web-1', op: 'pull' });
    expect(res.status).toBe(409);
    expect(res.body.message).toMatch(/"queue": true/);
  });

  it('a command marked sent whose agent reconnects without it ends "not delivered", never sent twice', async () => {
    const { server, agent, client } = await serverWithAgent();
    const id = (await client.post('/api/commands', { host_id: 'web-1', op: 'pull' })).body.command.id as string;
    await agent.waitFor('command');
    agent.kill(); // as if the frame was lost with the link
    await until('offline', () => host(server).status === 'offline');
    const back = new GoAgent(server.wsUrl, agent.token, { hostname: 'web-1' });
    defer(() => back.close());
    await back.start();
    await new Promise((r) => setTimeout(r, 1_100));
    back.heartbeat(null, null);
    await until('error', () => command(server, id).status === 'error');
    expect(back.ofType('command')).toEqual([]);
    expect(events(server).some((e) => e.includes('was not delivered'))).toBe(true);
  });
});

describe('agent access', () => {
  it('an unknown token gets 401 at the upgrade; a revoked one is closed with 4401', async () => {
    const server = await startTestServer();
    defer(() => server.dispose());
    const stranger = new GoAgent(server.wsUrl, 'nxf_not-a-token', { hostname: 'web-1' });
    await stranger.connect();
    expect(stranger.refusedStatus).toBe(401);

    const { id, token } = await server.auth.createToken({ name: 'agent-web-1', role: 'agent', hostId: 'web-1' }, 'tests');
    const agent = new GoAgent(server.wsUrl, token, { hostname: 'web-1' });
    await agent.start();
    expect((await api(server.url, server.token).delete(`/api/tokens/${id}`)).status).toBe(200);
    expect(await agent.waitClosed()).toBe(AgentCloseCode.UNAUTHORIZED);
  });

  it('an agent token cannot register as another host: closed with 4403 and an event', async () => {
    const server = await startTestServer();
    defer(() => server.dispose());
    const real = await connectGoAgent(server, 'db-1');
    defer(() => real.close());
    const { token } = await server.auth.createToken({ name: 'agent-web-1', role: 'agent', hostId: 'web-1' }, 'tests');
    await server.auth.createToken({ name: 'x', role: 'agent', hostId: 'db-1' }, 'tests');
    const impostor = new GoAgent(server.wsUrl, token, { hostname: 'db-1' });
    await impostor.connect();
    impostor.register();
    expect(await impostor.waitClosed()).toBe(AgentCloseCode.WRONG_HOST);
    // web-1 does not exist, and 'db-1' is another host's name (case-insensitively too).
    const again = new GoAgent(server.wsUrl, token, { hostname: 'DB-1' });
    await again.connect();
    again.register();
    expect(await again.waitClosed()).toBe(AgentCloseCode.WRONG_HOST);
    expect(server.manager.state.hosts.has('web-1')).toBe(false);
    expect(server.manager.state.events.filter((e) => e.message.startsWith('agent registration refused')).length).toBe(2);
    // The bound host of an existing host: another name is refused.
    const { token: dbToken } = await server.auth.createToken({ name: 'agent-db-1', role: 'agent', hostId: 'db-1' }, 'tests');
    const renamed = new GoAgent(server.wsUrl, dbToken, { hostname: 'web-9' });
    await renamed.connect();
    renamed.register();
    expect(await renamed.waitClosed()).toBe(AgentCloseCode.WRONG_HOST);
  });

  it('an agent token never receives the fleet state and cannot act for another host over HTTP', async () => {
    const server = await startTestServer();
    defer(() => server.dispose());
    const other = await connectGoAgent(server, 'db-1');
    defer(() => other.close());
    const other2 = await connectGoAgent(server, 'web-1');
    defer(() => other2.close());
    // Every frame web-1's agent received: only `registered`.
    await new Promise((r) => setTimeout(r, 200));
    expect(other2.received.map((m) => m.type)).toEqual(['registered']);
    const { token } = await server.auth.createToken({ name: 'agent-web-1b', role: 'agent', hostId: 'web-1' }, 'tests');
    const asAgent = api(server.url, token);
    expect((await asAgent.get('/api/state')).status).toBe(403);
    const cmd = await api(server.url, server.token).post('/api/commands', { host_id: 'db-1', op: 'pull' });
    expect((await asAgent.post(`/api/commands/${cmd.body.command.id}/output`, { output: 'forged\n' })).status).toBe(403);
    expect((await asAgent.post('/api/commands', { host_id: 'web-1', op: 'pull' })).status).toBe(403);
  });

  it('removing a host ends its agent tokens: the session closes with 4401 and the agent cannot bring the host back', async () => {
    const server = await startTestServer();
    defer(() => server.dispose());
    const agent = await connectGoAgent(server, 'web-1');
    agent.close();
    await until('offline', () => server.manager.state.hosts.get('web-1')?.status === 'offline');
    const back = new GoAgent(server.wsUrl, agent.token, { hostname: 'web-1' });
    await back.start();
    expect((await api(server.url, server.token).delete('/api/hosts/web-1')).status).toBe(200);
    expect(await back.waitClosed()).toBe(AgentCloseCode.UNAUTHORIZED);
    const again = new GoAgent(server.wsUrl, agent.token, { hostname: 'web-1' });
    await again.connect();
    expect(again.refusedStatus).toBe(401);
    expect(server.manager.state.hosts.has('web-1')).toBe(false);
  });

  it('a first frame that is not register closes the socket with 1008', async () => {
    const server = await startTestServer();
    defer(() => server.dispose());
    const { token } = await server.auth.createToken({ name: 'agent-web-1', role: 'agent', hostId: 'web-1' }, 'tests');
    const agent = new GoAgent(server.wsUrl, token, { hostname: 'web-1' });
    await agent.connect();
    agent.heartbeat();
    expect(await agent.waitClosed()).toBe(AgentCloseCode.PROTOCOL_ERROR);
  });
});
