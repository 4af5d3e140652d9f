// Agents with several instances on one PostgreSQL: the instance holding a host's agent session
// decides for that host. An operator on instance B reaches an agent on instance A, and its output
// reaches a browser on B; when A dies (kill -9), B's supervisor marks the host offline once A's
// lease lapses, and only one instance supervises at a time.
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { GoAgent } from './support/go-agent.js';
import { api } from './support/http.js';
import { freshDatabase, pgAvailable } from './support/pg.js';
import { spawnServer } from './support/server-process.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { startTestServer } from './support/test-server.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();

async function database() {
  const db = await freshDatabase();
  defer(() => db.drop());
  return db;
}

describe.skipIf(!pgAvailable)('agents across instances (PostgreSQL)', () => {
  it('an operator on B runs a command on an agent held by A; the output reaches a browser on B', async () => {
    const db = await database();
    const a = await startTestServer({ databaseUrl: db.url, agents: { outputFlushMs: 20 } });
    defer(() => a.dispose());
    const b = await startTestServer({ databaseUrl: db.url });
    defer(() => b.dispose());
    const { token } = await b.auth.createToken({ name: 'agent web-1', role: 'agent', hostId: 'web-1' }, 'tests');
    const agent = await new GoAgent(a.wsUrl, token, { hostname: 'web-1' }).start();
    defer(() => agent.close());
    expect(a.agents.hostIds).toEqual(['web-1']);
    await until('B sees web-1 online', () => b.manager.state.hosts.get('web-1')?.status === 'online');

    const browser = await SyncRecorder.connect(b.wsUrl, { headers: b.authHeaders });
    defer(() => browser.close());
    const started = await api(b.url, b.token).post('/api/commands', { host_id: 'web-1', op: 'pull' });
    expect(started.status).toBe(201);
    const id = started.body.command.id as string;
    expect((await agent.waitFor('command')).payload).toMatchObject({ command: 'pull', command_id: id });
    agent.output('Fetching origin');
    agent.output('HEAD is now at 1234567');
    agent.status('ok', 'pull', 0);
    await browser.waitFor(() => browser.state?.commands.get(id)?.status === 'success', 10_000, 'the browser on B sees the success');
    expect(browser.state!.commands.get(id)!.output).toBe('Fetching origin\nHEAD is now at 1234567\n');
    expect(browser.violations).toEqual([]);

    // Cancel through B reaches the agent on A as well.
    const second = (await api(b.url, b.token).post('/api/commands', { host_id: 'web-1', op: 'test' })).body.command.id as string;
    await agent.waitFor('command', 1);
    expect((await api(b.url, b.token).post(`/api/commands/${second}/cancel`)).status).toBe(202);
    expect((await agent.waitFor('command', 2)).payload.command).toBe('stop');
    agent.status('stopped', 'test', 130);
    await until('cancelled on B', () => b.manager.state.commands.get(second)?.status === 'cancelled');
  });

  it('a second connection on another instance takes the host; the first is closed without taking it offline', async () => {
    const db = await database();
    const a = await startTestServer({ databaseUrl: db.url });
    defer(() => a.dispose());
    const b = await startTestServer({ databaseUrl: db.url });
    defer(() => b.dispose());
    const { token } = await a.auth.createToken({ name: 'agent web-1', role: 'agent', hostId: 'web-1' }, 'tests');
    const first = await new GoAgent(a.wsUrl, token, { hostname: 'web-1' }).start();
    defer(() => first.close());
    const second = await new GoAgent(b.wsUrl, token, { hostname: 'web-1' }).start();
    defer(() => second.close());
    expect(await first.waitClosed(5000)).toBe(4409);
    await new Promise((r) => setTimeout(r, 500));
    expect(b.manager.state.hosts.get('web-1')!.status).toBe('online');
    expect(a.agents.hostIds).toEqual([]);
    expect(b.agents.hostIds).toEqual(['web-1']);
  });

  it('instance A killed: the host its agent was on goes offline within the lease time, marked by B', async () => {
    const db = await database();
    const b = await startTestServer({ databaseUrl: db.url, agents: { leaseTtlMs: 1000, superviseIntervalMs: 200 } });
    defer(() => b.dispose());
    const a = await spawnServer({ NIXFLEET_DATABASE_URL: db.url, NIXFLEET_AGENT_LEASE_TTL: '1s' });
    defer(() => a.kill());
    const { token } = await b.auth.createToken({ name: 'agent web-1', role: 'agent', hostId: 'web-1' }, 'tests');
    const agent = await new GoAgent(a.wsUrl, token, { hostname: 'web-1' }).start();
    defer(() => agent.close());
    agent.keepBeating(200);
    await until('B sees web-1 online', () => b.manager.state.hosts.get('web-1')?.status === 'online');
    const killedAt = Date.now();
    await a.kill('SIGKILL');
    await until('B marks web-1 offline', () => b.manager.state.hosts.get('web-1')?.status === 'offline', 10_000);
    const tookMs = Date.now() - killedAt;
    expect(tookMs).toBeLessThan(1000 + 200 + 1500); // lease + one supervisor pass + the lock changing hands
    expect(b.manager.state.events.some((e) => e.host_id === 'web-1' && e.message.startsWith('agent session lost'))).toBe(true);
  });
});
