// An agent that floods output far past the per-command cap (a verbose build) cannot take the
// server's memory or its event loop: its socket is paused while its backlog is deep (TCP slows
// the agent down), the server keeps answering meanwhile, the flooding agent is not mistaken
// for a silent one, and the command ends as the agent reports it, its log cut at the cap.
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { connectGoAgent } from './support/go-agent.js';
import { api } from './support/http.js';
import { startTestServer } from './support/test-server.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();
const LINE = `building '/nix/store/${'x'.repeat(32)}-some-package-1.2.3.drv'... copying path to the store`;

describe('an agent flooding output', () => {
  it('is slowed by backpressure; the server stays responsive; the log stops at the cap; the command ends success', async () => {
    const cap = 1024 * 1024;
    const server = await startTestServer({ outputMaxBytes: cap });
    defer(() => server.dispose());
    const agent = await connectGoAgent(server, 'web-1');
    defer(() => agent.close());
    const client = api(server.url, server.token);
    const id = (await client.post('/api/commands', { host_id: 'web-1', op: 'switch' })).body.command.id as string;
    await agent.waitFor('command');

    const lines = 150_000; // ~16 MB, sixteen times the cap
    const heapBefore = process.memoryUsage().heapUsed;
    let slowest = 0;
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const started = performance.now();
        expect((await client.get('/healthz')).status).toBe(200);
        slowest = Math.max(slowest, performance.now() - started);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // Sent in slices, so this process's own loop (which the in-process server shares) is not
    // what stalls /healthz.
    for (let i = 1; i <= lines; i++) {
      agent.output(`${LINE} ${i}`);
      if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    agent.status('ok', 'switch', 0);
    const session = () => (server.agents as unknown as { sessions: Map<string, { pauses: number }> }).sessions.get('web-1');
    await until('the switch reported', () => server.manager.state.commands.get(id)!.exit_code === 0, 60_000, 50);
    probing = false;
    await probe;

    expect(slowest).toBeLessThan(1000);
    expect(agent.closeCode).toBeNull(); // not closed as silent while its backlog was worked off
    expect(session()!.pauses).toBeGreaterThan(0);
    const stored = await (await fetch(`${server.url}/api/commands/${id}/output`, { headers: server.authHeaders })).text();
    expect(Buffer.byteLength(stored)).toBeLessThan(cap + 1024);
    expect(stored).toMatch(/output cut at 1048576 bytes/);
    // In-process, the server shares this heap with the test's own queued frames: the bound is loose.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(200 * 1024 * 1024);
  });
});
