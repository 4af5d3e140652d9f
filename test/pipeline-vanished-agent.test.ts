// A pipeline's command whose host has no agent to send it to (the agent vanished between the
// runner starting it and its sending) must not wait a day in the queue: it ends after the
// reconnect window, as a sent command would, and the pipeline goes on without that host.
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { api } from './support/http.js';
import { startTestServer } from './support/test-server.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();

describe('a pipeline command with no agent to carry it', () => {
  it('ends error after the reconnect window, and the pipeline ends without that host', async () => {
    const server = await startTestServer({ agents: { reconnectWindowMs: 300, superviseIntervalMs: 50 } });
    defer(() => server.dispose());
    const client = api(server.url, server.token);
    // Shown online (reported over HTTP) but with no agent session: nothing can send it the command.
    await client.addHost('web-1', { status: 'online' });
    const created = await client.post('/api/pipelines', { name: 'rollout', hosts: ['web-1'], stages: ['pull'] });
    expect(created.status).toBe(201);
    const id = created.body.pipeline.id as string;
    await until('the runner started its command', () => [...server.manager.state.commands.values()].some((c) => c.pipeline_id === id));
    const command = [...server.manager.state.commands.values()].find((c) => c.pipeline_id === id)!;
    expect(command.sent_at).toBeNull();
    await until('the command ended', () => server.manager.state.commands.get(command.id)!.status === 'error', 10_000);
    await until('the pipeline ended', () => ['failed', 'partial', 'complete', 'cancelled'].includes(server.manager.state.pipelines.get(id)!.status), 10_000);
    expect(server.manager.state.pipelines.get(id)!.status).toBe('failed');
  });
});
