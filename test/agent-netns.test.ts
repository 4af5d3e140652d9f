// Our agent in its own network namespace, joined to the server by a veth pair: a real network,
// and a real partition when the link goes down (this kernel has no netem; loss and delay are the
// fault proxy's, in other tests). The host goes offline during the partition and comes back after
// it, and the command streaming across it loses no output line and doubles none.
import { describe, expect, it } from 'vitest';
import { spawnAgent } from './support/agent-process.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { api } from './support/http.js';
import { createNetns, netnsUnavailable } from './support/netns.js';
import { startTestServer } from './support/test-server.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();
const unavailable = netnsUnavailable();
const LINES = 600;
/** Numbered lines, a pause every 20: about 4 s. */
const COUNTER = `i=1; while [ $i -le ${LINES} ]; do echo "line $i"; [ $((i % 20)) -eq 0 ] && sleep 0.12; i=$((i + 1)); done\n`;

describe.skipIf(unavailable !== null)(`agent across a real network (veth pair into a namespace)${unavailable ? ` — skipped: ${unavailable}` : ''}`, () => {
  it('a partition takes the host offline and back; the output streaming across it arrives whole, once', async () => {
    const ns = createNetns();
    defer(() => ns.remove());
    const server = await startTestServer({ listenHost: ns.hostAddress, agents: { outputFlushMs: 20, missedHeartbeats: 3 } });
    defer(() => server.dispose());
    const { token } = await server.auth.createToken({ name: 'agent web-1', role: 'agent', hostId: 'web-1' }, 'tests');
    spawnAgent(
      {
        url: server.wsUrl,
        token,
        hostname: 'web-1',
        scripts: { test: COUNTER },
        prefix: ns.exec,
        env: { NIXFLEET_PING_INTERVAL: '0.3', NIXFLEET_DEAD_AFTER: '1.2' },
      },
      defer,
    );
    await until('online from inside the namespace', () => server.manager.state.hosts.get('web-1')?.status === 'online', 15_000);

    const http = api(server.url, server.token);
    const id = (await http.post('/api/commands', { host_id: 'web-1', op: 'test' })).body.command.id as string;
    const command = () => server.manager.state.commands.get(id)!;
    await until('streaming', () => command().output_seq >= 60, 10_000);

    ns.link(false);
    const cutAt = command().output_seq;
    await until('offline during the partition', () => server.manager.state.hosts.get('web-1')!.status === 'offline', 5_000);
    expect(command().output_seq).toBeLessThan(LINES); // the op went on, its lines did not get through
    await new Promise((resolve) => setTimeout(resolve, 1500));
    ns.link(true);

    await until('online again', () => server.manager.state.hosts.get('web-1')!.status === 'online', 15_000);
    await until('success', () => command().status === 'success', 20_000);
    const stored = await (await fetch(`${server.url}/api/commands/${id}/output`, { headers: server.authHeaders })).text();
    expect(stored.split('\n').filter(Boolean)).toEqual(Array.from({ length: LINES }, (_, i) => `line ${i + 1}`));
    expect(cutAt).toBeGreaterThan(0);
    const events = server.manager.state.events.filter((e) => e.host_id === 'web-1').map((e) => e.message);
    expect(events.some((m) => m.startsWith('agent disconnected'))).toBe(true);
  });
});
