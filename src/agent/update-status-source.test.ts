// AgentDeps.updateStatus: an embedder (the demo's simulated hosts) supplies the heartbeat's
// `update_status`, read afresh at every heartbeat; without it the agent reports what its own
// checking ops learnt, as before.
import { describe, expect, it } from 'vitest';
import type { WireUpdateStatus } from '../protocol/agent-wire.js';
import { startTestAgent } from '../../test/agent-harness.js';
import { cleanupAfterEach } from '../../test/support/cleanups.js';
import { until } from '../../test/support/until.js';

const defer = cleanupAfterEach();

const compartment = (status: string, message: string) => ({ status, message, checked_at: '2026-01-01T00:00:00.000Z' });

describe('AgentDeps.updateStatus', () => {
  it('reports the source at every heartbeat, as it changes', async () => {
    let current: WireUpdateStatus = { git: compartment('outdated', 'behind by 1'), lock: compartment('ok', ''), system: compartment('ok', ''), tests: compartment('unknown', '') };
    const { server } = await startTestAgent(defer, { deps: { updateStatus: { payload: () => current } } });
    await until('a heartbeat', () => server.of('heartbeat').length >= 1);
    expect(server.of('heartbeat')[0]!.update_status).toEqual(current);

    current = { ...current, git: compartment('ok', 'up to date') };
    const seen = server.of('heartbeat').length;
    await until('the next heartbeat', () => server.of('heartbeat').length > seen);
    expect(server.of('heartbeat').at(-1)!.update_status).toEqual(current);
  });

  it('defaults to what the agent learnt itself: nothing before a checking op', async () => {
    const { server } = await startTestAgent(defer);
    await until('two heartbeats', () => server.of('heartbeat').length >= 2);
    expect(server.of('heartbeat').every((beat) => beat.update_status === null)).toBe(true);
  });
});
