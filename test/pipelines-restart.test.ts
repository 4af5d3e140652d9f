// A pipeline survives its server: kill -9 in the middle of a stage, a new process on the same
// data directory and port, the agents come back, and the runner carries on from the state. The
// change log, read from the store afterwards, shows that no command was started twice.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { hostDetailOf } from '../src/protocol/fleet-state.js';
import type { Change, FullState, Pipeline } from '../src/protocol/schema.js';
import { DATABASE_FILE } from '../src/server/store/sqlite-store.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { api } from './support/http.js';
import { freePort } from './support/ports.js';
import { scriptedAgentsVia } from './support/scripted-agent.js';
import { spawnServer, type ServerProcess } from './support/server-process.js';
import { tempDir } from './support/test-server.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();
const HOSTS = ['h0', 'h1', 'h2', 'h3', 'h4', 'h5'];
const STAGES = ['pull', 'switch', 'test'];

async function pipelineOn(server: ServerProcess, id: string): Promise<Pipeline | undefined> {
  const state = (await api(server.url, server.token).get('/api/state')).body.payload as FullState;
  return state.pipelines.find((p) => p.id === id);
}

describe('a pipeline across a server crash', () => {
  it('is resumed by the restarted server after kill -9, and no command is started twice', async () => {
    const dir = tempDir();
    defer(() => rmSync(dir, { recursive: true, force: true }));
    const env = { NIXFLEET_DATA_DIR: dir, NIXFLEET_LISTEN: `127.0.0.1:${await freePort()}`, NIXFLEET_AGENT_RESTART_GRACE: '50ms' };
    let server = await spawnServer(env);
    defer(() => server.kill('SIGKILL'));
    const agents = await scriptedAgentsVia(server, HOSTS, { runMs: 250 }, defer);
    const started = await api(server.url, server.token).post('/api/pipelines', { name: 'through a crash', hosts: HOSTS, stages: STAGES, parallel: 3 });
    expect(started.status).toBe(201);
    const id = started.body.pipeline.id as string;

    // In the middle of stage 2: some switch started, not every host through it.
    await until('a switch runs', async () => {
      const p = await pipelineOn(server, id);
      return HOSTS.some((h) => hostDetailOf(p!, h).steps.length === 2);
    }, 15_000, 25);
    expect(await server.kill('SIGKILL')).toBe('SIGKILL');

    server = await spawnServer(env);
    await Promise.all(
      agents.map((scripted) =>
        until(`${scripted.hostId} reconnects`, () => scripted.agent.reconnect().then(() => true, () => false), 10_000, 100),
      ),
    );
    await until('the pipeline ends', async () => ['complete', 'partial', 'failed'].includes((await pipelineOn(server, id))!.status), 20_000, 100);
    const p = (await pipelineOn(server, id))!;
    expect(await server.kill('SIGTERM')).toBe(0);

    // A command that was marked sent when the process died but never reached its agent ends in an
    // error rather than being sent again; every other host goes through.
    expect(['complete', 'partial']).toContain(p.status);
    for (const host of HOSTS) {
      const detail = hostDetailOf(p, host);
      if (p.host_status[host] === 'success') expect(detail.steps.map((s) => s.status)).toEqual(['success', 'success', 'success']);
      else expect(detail.dropped?.reason, `${host}: ${JSON.stringify(detail)}`).toBe('failed');
    }
    expect(HOSTS.filter((h) => p.host_status[h] === 'success').length).toBeGreaterThanOrEqual(HOSTS.length - 3);

    // The change log: each (host, stage) got at most one command, and the restarted server started some.
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
    const changes = db.prepare('SELECT change FROM changes ORDER BY version').all().map((row) => JSON.parse((row as { change: string }).change) as Change);
    db.close();
    const startedCommands = changes.filter((c): c is Extract<Change, { type: 'command_started' }> => c.type === 'command_started' && c.command.pipeline_id === id);
    const recorded = new Map<string, string>();
    for (const change of changes) {
      if (change.type !== 'pipeline_updated' || change.id !== id) continue;
      for (const [host, update] of Object.entries(change.fields.host_detail ?? {})) {
        if (update.command_id === undefined) continue;
        const key = `${host}/${update.stage}`;
        expect(recorded.has(key), `a second command for ${key}`).toBe(false);
        recorded.set(key, update.command_id);
      }
    }
    expect(startedCommands.map((c) => c.command.id).sort()).toEqual([...recorded.values()].sort());
    for (const scripted of agents) expect(new Set(scripted.ran).size, `${scripted.hostId} ran ${scripted.ran.join(', ')}`).toBe(scripted.ran.length);
    expect(agents.some((scripted) => scripted.ran.includes('test'))).toBe(true);
  });
});
