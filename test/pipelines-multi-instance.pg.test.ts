// Pipelines with several instances on one PostgreSQL: exactly one instance drives them (the
// supervisor's turn); when it dies (kill -9), another takes the turn and finishes what it began,
// and the change stream shows no command started twice.
import { describe, expect, it } from 'vitest';
import { isTerminalPipelineStatus } from '../src/protocol/constants.js';
import { hostDetailOf } from '../src/protocol/fleet-state.js';
import type { Change } from '../src/protocol/schema.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { api } from './support/http.js';
import { freshDatabase, pgAvailable } from './support/pg.js';
import { scriptedAgents } from './support/scripted-agent.js';
import { spawnServer } from './support/server-process.js';
import { startTestServer } from './support/test-server.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();
const HOSTS = ['h0', 'h1', 'h2', 'h3', 'h4', 'h5'];

describe.skipIf(!pgAvailable)('pipelines across instances (PostgreSQL)', () => {
  it('the instance driving a pipeline is killed; another takes over and finishes it', async () => {
    const db = await freshDatabase();
    defer(() => db.drop());
    // A starts first and takes the turn; the agents and the operator are on B.
    const a = await spawnServer({ NIXFLEET_DATABASE_URL: db.url, NIXFLEET_AGENT_LEASE_TTL: '1s', NIXFLEET_AGENT_RESTART_GRACE: '50ms' });
    defer(() => a.kill('SIGKILL'));
    const name = new URL(db.url).pathname.slice(1);
    const turnTaken = `SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1`;
    await until('A takes the turn', async () => (await db.admin(turnTaken, [name])).rowCount === 1);
    const b = await startTestServer({ databaseUrl: db.url, agents: { leaseTtlMs: 1000, superviseIntervalMs: 200, restartGraceMs: 50 } });
    defer(() => b.dispose());
    const changes: Change[] = [];
    defer(b.manager.subscribe(({ change }) => changes.push(change)));
    const agents = await scriptedAgents(b, HOSTS, { runMs: 250 }, defer);

    const started = await api(b.url, b.token).post('/api/pipelines', { name: 'hand over', hosts: HOSTS, stages: ['pull', 'switch', 'test'], parallel: 2 });
    expect(started.status).toBe(201);
    const id = started.body.pipeline.id as string;
    const pipeline = () => b.manager.state.pipelines.get(id)!;
    await until('a switch runs', () => HOSTS.some((h) => hostDetailOf(pipeline(), h).steps.length === 2), 15_000);
    // So far A drove it: B never had the turn.
    expect(b.pipelines.stats.passes).toBe(0);
    await a.kill('SIGKILL');

    await until('the pipeline ends', () => isTerminalPipelineStatus(pipeline().status), 20_000);
    expect(b.pipelines.stats.passes).toBeGreaterThan(0);
    const p = pipeline();
    expect(p.status).toBe('complete');
    for (const host of HOSTS) expect(hostDetailOf(p, host).steps.map((s) => s.status)).toEqual(['success', 'success', 'success']);
    // One command per host and stage, and each agent ran each op once.
    const starts = changes.filter((c): c is Extract<Change, { type: 'command_started' }> => c.type === 'command_started' && c.command.pipeline_id === id);
    expect(starts).toHaveLength(HOSTS.length * 3);
    expect(new Set(starts.map((c) => `${c.command.host_id}/${c.command.op}`)).size).toBe(HOSTS.length * 3);
    for (const scripted of agents) expect(scripted.ran).toEqual(['pull', 'switch', 'test']);
    // Some of them were started by B after A died: the stage that was under way finished under B.
    const handedOver = changes.findIndex((c) => c.type === 'event' && c.event.actor === 'server' && c.event.category === 'pipeline' && /stage 3\/3/.test(c.event.message));
    expect(handedOver).toBeGreaterThan(-1);
  });
});
