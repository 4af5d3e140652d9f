// Our agent against our real server (src/server/agents), through a WebSocket fault proxy: a
// command an operator starts over the API runs as a real process and ends `success` with its
// output stored; a link reset mid-output or a result produced offline still leaves the stored
// output whole (every line once, in order); a cancel stops the process group; a switch restarts
// the agent and succeeds when it is back.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Agent } from '../src/agent/agent.js';
import { parseAgentConfig } from '../src/agent/config.js';
import { createLogger } from '../src/server/logger.js';
import { processGone, TEST_FACTS } from './agent-harness.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { api } from './support/http.js';
import { startTestServer, tempDir, type TestServer } from './support/test-server.js';
import { until } from './support/until.js';
import { WsFaultProxy } from './support/ws-fault-proxy.js';

const defer = cleanupAfterEach();
const LINES = 300;
const COUNTER = `i=1; while [ $i -le ${LINES} ]; do echo "line $i"; [ $((i % 10)) -eq 0 ] && sleep 0.02; i=$((i + 1)); done\n`;

async function fleet(ops: Record<string, string | string[]>) {
  const server = await startTestServer({ agents: { outputFlushMs: 20 } });
  defer(() => server.dispose());
  const proxy = await WsFaultProxy.start(server.wsUrl);
  defer(() => proxy.close());
  const { token } = await server.auth.createToken({ name: 'agent-web-1', role: 'agent', hostId: 'web-1' }, 'tests');
  const dir = tempDir('nixfleet-agent-real-');
  defer(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'counter.sh'), COUNTER);
  writeFileSync(join(dir, 'ops.json'), JSON.stringify({ ops }));
  const config = parseAgentConfig(
    { NIXFLEET_URL: proxy.url, NIXFLEET_TOKEN: token, NIXFLEET_HOSTNAME: 'web-1', NIXFLEET_INTERVAL: '0.2', NIXFLEET_STOP_GRACE: '1', NIXFLEET_REPO_DIR: dir, NIXFLEET_OPS_FILE: join(dir, 'ops.json') },
    'linux',
  );
  const agent = new Agent(config, { logger: createLogger('error'), hostFacts: () => ({ ...TEST_FACTS }), timing: { backoffBaseMs: 20, backoffCapMs: 200 } });
  defer(() => agent.close());
  await agent.start();
  await until('the host online', () => server.manager.state.hosts.get('web-1')?.status === 'online');
  return { server, proxy, agent, client: api(server.url, server.token) };
}

const commandOf = (server: TestServer, id: string) => server.manager.state.commands.get(id)!;

async function start(client: ReturnType<typeof api>, op: string): Promise<string> {
  const started = await client.post('/api/commands', { host_id: 'web-1', op });
  expect(started.status).toBe(201);
  return started.body.command.id as string;
}

async function storedOutput(server: TestServer, id: string): Promise<string[]> {
  const response = await fetch(`${server.url}/api/commands/${id}/output`, { headers: server.authHeaders });
  return (await response.text()).split('\n').filter(Boolean);
}

const counted = Array.from({ length: LINES }, (_, i) => `line ${i + 1}`);

describe('nixfleet-agent on the NixFleet server', () => {
  it('registers the host and runs an operator command to success with its output stored', async () => {
    const { server, client } = await fleet({ test: ['sh', '{repo_dir}/counter.sh'] });
    expect(server.manager.state.hosts.get('web-1')).toMatchObject({ status: 'online', os_version: TEST_FACTS.os_version, generation: TEST_FACTS.generation });
    const id = await start(client, 'test');
    await until('success', () => commandOf(server, id).status === 'success');
    expect(commandOf(server, id)).toMatchObject({ exit_code: 0, output_seq: LINES });
    expect(await storedOutput(server, id)).toEqual(counted);
  });

  it('a link reset mid-output leaves the stored output whole', async () => {
    const { server, proxy, client } = await fleet({ test: ['sh', '{repo_dir}/counter.sh'] });
    const id = await start(client, 'test');
    await until('40 lines stored', () => (commandOf(server, id).output_seq ?? 0) >= 40);
    proxy.resetAll();
    await until('success', () => commandOf(server, id).status === 'success', 15_000);
    expect(proxy.stats.connections).toBe(2);
    expect(await storedOutput(server, id)).toEqual(counted);
  });

  it('a command that finished while the link was down ends with its real result and whole output', async () => {
    const { server, proxy, agent, client } = await fleet({ test: ['sh', '-c', `sh "$0"; exit 4`, '{repo_dir}/counter.sh'] });
    const id = await start(client, 'test');
    await until('40 lines stored', () => (commandOf(server, id).output_seq ?? 0) >= 40);
    proxy.setRefusing(true);
    proxy.resetAll();
    await until('the op finished offline', () => agent.snapshot.command === null && !agent.snapshot.connected);
    proxy.setRefusing(false);
    await until('the command ended', () => commandOf(server, id).status !== 'running', 15_000);
    expect(commandOf(server, id)).toMatchObject({ status: 'error', exit_code: 4 });
    expect(await storedOutput(server, id)).toEqual(counted);
  });

  it('cancel stops the process group and the command ends cancelled', async () => {
    const { server, client } = await fleet({ test: 'sleep 300 & echo "grandchild $!"; wait' });
    const id = await start(client, 'test');
    await until('running with output', () => commandOf(server, id).status === 'running' && (commandOf(server, id).output_seq ?? 0) >= 1);
    const pid = commandOf(server, id).pid!;
    const grandchild = Number((await storedOutput(server, id))[0]!.split(' ')[1]);
    expect((await client.post(`/api/commands/${id}/cancel`)).status).toBe(202);
    await until('cancelled', () => commandOf(server, id).status === 'cancelled');
    expect(commandOf(server, id).exit_code).toBe(130);
    expect(processGone(pid)).toBe(true);
    expect(processGone(grandchild)).toBe(true);
  });

  it('a switch restarts the agent and succeeds once it is back', async () => {
    const { server, proxy, client } = await fleet({ switch: 'echo "activating the configuration..."' });
    const id = await start(client, 'switch');
    await until('success', () => commandOf(server, id).status === 'success', 15_000);
    expect(commandOf(server, id).exit_code).toBe(0);
    expect(proxy.stats.connections).toBe(2);
    expect(server.manager.state.hosts.get('web-1')!.status).toBe('online');
  });
});
