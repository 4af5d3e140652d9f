// Pipelines the server runs, end to end: a real server, Go agents on real sockets that carry out
// what they receive as each test scripts it (test/support/scripted-agent.ts), and the committed
// changes as the record of what happened when. The rules are in docs/PIPELINES.md.
import { describe, expect, it } from 'vitest';
import { isTerminalPipelineStatus } from '../src/protocol/constants.js';
import { hostDetailOf } from '../src/protocol/fleet-state.js';
import type { Pipeline } from '../src/protocol/schema.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { api } from './support/http.js';
import { scriptedAgents, type AgentScript, type ScriptedAgent } from './support/scripted-agent.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();

const hosts = (n: number) => Array.from({ length: n }, (_, i) => `h${i}`);

interface Fleet {
  server: TestServer;
  http: ReturnType<typeof api>;
  agent: (hostId: string) => ScriptedAgent;
  /** Starts and ends of pipeline commands, in commit order. */
  log: CommandStep[];
}

interface CommandStep {
  kind: 'start' | 'end';
  host: string;
  op: string;
  id: string;
}

async function fleet(hostIds: string[], script: AgentScript = {}): Promise<Fleet> {
  const server = await startTestServer({ agents: { restartGraceMs: 50, outputFlushMs: 20 }, limits: { events: 1000, commands: 200, pipelines: 20, output_tail: 1024 } });
  defer(() => server.dispose());
  const log: CommandStep[] = [];
  const started = new Map<string, { host: string; op: string }>();
  defer(
    server.manager.subscribe(({ change }) => {
      if (change.type === 'command_started' && change.command.pipeline_id !== null) {
        started.set(change.command.id, { host: change.command.host_id, op: change.command.op });
        log.push({ kind: 'start', host: change.command.host_id, op: change.command.op, id: change.command.id });
      }
      const ended = change.type === 'command_finished' ? started.get(change.id) : undefined;
      if (change.type === 'command_finished' && ended) log.push({ kind: 'end', ...ended, id: change.id });
    }),
  );
  const agents = await scriptedAgents(server, hostIds, script, defer);
  return { server, http: api(server.url, server.token), agent: (id) => agents.find((a) => a.hostId === id)!, log };
}

async function start(f: Fleet, body: Record<string, unknown>): Promise<string> {
  const res = await f.http.post('/api/pipelines', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.pipeline).toMatchObject({ status: 'running', run_by: 'server' });
  return res.body.pipeline.id as string;
}

const pipelineOf = (f: Fleet, id: string): Pipeline => f.server.manager.state.pipelines.get(id)!;

async function ended(f: Fleet, id: string, timeoutMs = 15_000): Promise<Pipeline> {
  await until(`pipeline ${id} ends`, () => isTerminalPipelineStatus(pipelineOf(f, id).status), timeoutMs);
  return pipelineOf(f, id);
}

/** Most commands of one op running at once, from the committed starts and ends. */
function mostAtOnce(log: readonly CommandStep[], op: string): number {
  let running = 0;
  let most = 0;
  for (const step of log.filter((s) => s.op === op)) {
    running += step.kind === 'start' ? 1 : -1;
    most = Math.max(most, running);
  }
  return most;
}

const pipelineEvents = (f: Fleet) => f.server.manager.state.events.filter((e) => e.category === 'pipeline');

describe('a pipeline the server runs', () => {
  it('runs 3 stages over 6 hosts; a host failing a stage leaves the later ones; ends partial with each reason', async () => {
    const f = await fleet(hosts(6), { exitCode: (host, op) => (host === 'h2' && op === 'pull' ? 1 : host === 'h4' && op === 'switch' ? 2 : 0) });
    const browser = await SyncRecorder.connect(f.server.wsUrl, { headers: f.server.authHeaders });
    defer(() => browser.close());
    const id = await start(f, { name: 'weekly update', hosts: hosts(6), stages: ['pull', 'switch', 'test'] });

    const p = await ended(f, id);
    expect(p.status).toBe('partial');
    expect(p.host_status).toEqual({ h0: 'success', h1: 'success', h2: 'failed', h3: 'success', h4: 'failed', h5: 'success' });
    const h2 = hostDetailOf(p, 'h2');
    expect(h2.steps.map((s) => s.status)).toEqual(['error']);
    expect(h2.dropped).toEqual({ reason: 'failed', stage: 0, op: 'pull', command_id: h2.steps[0]!.command_id, exit_code: 1, message: 'pull ended error (exit 1) at stage 1' });
    const h4 = hostDetailOf(p, 'h4');
    expect(h4.steps.map((s) => s.status)).toEqual(['success', 'error']);
    expect(h4.dropped).toMatchObject({ reason: 'failed', stage: 1, op: 'switch', exit_code: 2, command_id: h4.steps[1]!.command_id });
    for (const host of ['h0', 'h1', 'h3', 'h5']) {
      expect(hostDetailOf(p, host)).toMatchObject({ stage: 2, dropped: null });
      expect(hostDetailOf(p, host).steps.map((s) => s.status)).toEqual(['success', 'success', 'success']);
    }
    // Each stage ran on the hosts still in it, and only once every host had ended the one before.
    expect(f.agent('h2').ran).toEqual(['pull']);
    expect(f.agent('h4').ran).toEqual(['pull', 'switch']);
    for (const host of ['h0', 'h1', 'h3', 'h5']) expect(f.agent(host).ran).toEqual(['pull', 'switch', 'test']);
    const position = (kind: string, op: string, which: 'first' | 'last') => {
      const indices = f.log.flatMap((s, i) => (s.kind === kind && s.op === op ? [i] : []));
      return which === 'first' ? indices[0]! : indices.at(-1)!;
    };
    expect(position('start', 'switch', 'first')).toBeGreaterThan(position('end', 'pull', 'last'));
    expect(position('start', 'test', 'first')).toBeGreaterThan(position('end', 'switch', 'last'));
    expect(f.log.filter((s) => s.kind === 'start')).toHaveLength(6 + 5 + 4);

    // Every step is an event: started by the operator, run by the server.
    const events = pipelineEvents(f);
    expect(events[0]).toMatchObject({ actor: expect.stringContaining('test-admin'), message: 'pipeline "weekly update" started on 6 hosts: pull → switch → test' });
    expect(events.filter((e) => e.actor === 'server' && e.message.includes(' on h') && e.message.includes('(stage '))).toHaveLength(15);
    expect(events.map((e) => e.message)).toEqual(
      expect.arrayContaining([
        'pipeline "weekly update": h2 dropped: pull ended error (exit 1) at stage 1',
        'pipeline "weekly update": h4 dropped: switch ended error (exit 2) at stage 2',
        'pipeline "weekly update": stage 2/3 (switch) on 5 hosts',
        'pipeline "weekly update" partial: 4 of 6 hosts went through every stage',
      ]),
    );
    // The stream carries it all: a browser folds to the same pipeline.
    await browser.waitFor(() => browser.version === f.server.manager.version, 5000, 'the browser catches up');
    expect(browser.state!.pipelines.get(id)).toEqual(p);
    expect(browser.violations).toEqual([]);
  });

  it('parallel: 2 runs two commands of a stage together, never more', async () => {
    const f = await fleet(hosts(5), { runMs: 80 });
    const id = await start(f, { name: 'two at a time', hosts: hosts(5), stages: ['pull', 'test'], parallel: 2 });
    expect((await ended(f, id)).status).toBe('complete');
    expect(mostAtOnce(f.log, 'pull')).toBe(2);
    expect(mostAtOnce(f.log, 'test')).toBe(2);
    expect(f.log.filter((s) => s.kind === 'start')).toHaveLength(10);
  });

  it('canary: the canary hosts go through every stage before any other host starts', async () => {
    const f = await fleet(hosts(4));
    const id = await start(f, { name: 'canary first', hosts: hosts(4), preset: 'do-all', canary: 1 });
    const p = await ended(f, id);
    expect(p).toMatchObject({ status: 'complete', stages: ['pull', 'switch', 'test'], preset: 'do-all', canary: 1, phase: 'rollout' });
    const canaryDone = f.log.findIndex((s) => s.kind === 'end' && s.host === 'h0' && s.op === 'test');
    const othersStart = f.log.findIndex((s) => s.kind === 'start' && s.host !== 'h0');
    expect(canaryDone).toBeGreaterThanOrEqual(0);
    expect(othersStart).toBeGreaterThan(canaryDone);
    expect(pipelineEvents(f).map((e) => e.message)).toEqual(expect.arrayContaining(['pipeline "canary first": the canary got through; stage 1/3 (pull) on 3 hosts']));
  });

  it('a failed canary stops the rollout: failed, the hosts it never reached skipped', async () => {
    const f = await fleet(hosts(5), { exitCode: (host, op) => (host === 'h1' && op === 'switch' ? 1 : 0) });
    const id = await start(f, { name: 'careful', hosts: hosts(5), stages: ['pull', 'switch', 'test'], canary: 2 });
    const p = await ended(f, id);
    expect(p).toMatchObject({ status: 'failed', stop_reason: 'canary_failed' });
    expect(p.host_status).toEqual({ h0: 'skipped', h1: 'failed', h2: 'skipped', h3: 'skipped', h4: 'skipped' });
    expect(hostDetailOf(p, 'h1').dropped).toMatchObject({ reason: 'failed', stage: 1, op: 'switch', exit_code: 1 });
    // The other canary host finished the stage it was in, and went no further.
    expect(hostDetailOf(p, 'h0').dropped).toMatchObject({ reason: 'stopped', stage: 2, op: 'test', command_id: null, message: 'not run: the rollout stopped (a canary host failed)' });
    expect(f.agent('h0').ran).toEqual(['pull', 'switch']);
    for (const host of ['h2', 'h3', 'h4']) {
      expect(hostDetailOf(p, host)).toEqual({ host, stage: 0, steps: [], dropped: expect.objectContaining({ reason: 'stopped', stage: 0, op: 'pull' }) });
      expect(f.agent(host).ran).toEqual([]);
    }
    expect(pipelineEvents(f).map((e) => e.message)).toContain('pipeline "careful": the rollout stops: canary host h1 failed stage 2 (switch)');
  });

  it('max_failures: more failed hosts than allowed stop the rollout', async () => {
    const f = await fleet(hosts(6), { exitCode: (host) => (host === 'h1' || host === 'h2' ? 1 : 0) });
    const id = await start(f, { name: 'at most one', hosts: hosts(6), stages: ['pull'], parallel: 1, max_failures: 1 });
    const p = await ended(f, id);
    expect(p).toMatchObject({ status: 'failed', stop_reason: 'max_failures' });
    expect(p.host_status).toEqual({ h0: 'success', h1: 'failed', h2: 'failed', h3: 'skipped', h4: 'skipped', h5: 'skipped' });
    for (const host of ['h3', 'h4', 'h5']) {
      expect(hostDetailOf(p, host).dropped).toMatchObject({ reason: 'stopped', message: 'not run: the rollout stopped (more hosts failed than max_failures allows)' });
      expect(f.agent(host).ran).toEqual([]);
    }
    expect(pipelineEvents(f).map((e) => e.message)).toContain('pipeline "at most one": the rollout stops: 2 hosts failed, more than max_failures 1');
  });

  it('cancel: running commands are told to stop, nothing new starts, it ends cancelled', async () => {
    const f = await fleet(hosts(3), { exitCode: (_host, op) => (op === 'pull' ? null : 0) });
    const id = await start(f, { name: 'long pull', hosts: hosts(3), stages: ['pull', 'test'] });
    await until('every host runs its pull', () => hosts(3).every((h) => f.agent(h).busyWith === 'pull'));
    const res = await f.http.post(`/api/pipelines/${id}/cancel`);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ version: expect.any(Number), status: 'cancelling' });
    for (const host of hosts(3)) expect((await f.agent(host).agent.waitFor('command', 1)).payload).toMatchObject({ command: 'stop' });

    const p = await ended(f, id);
    expect(p.status).toBe('cancelled');
    expect(p.cancel_requested_at).not.toBeNull();
    for (const host of hosts(3)) {
      const detail = hostDetailOf(p, host);
      expect(detail.steps).toEqual([{ command_id: expect.any(String), status: 'cancelled', exit_code: 130 }]);
      expect(detail.dropped).toEqual({ reason: 'cancelled', stage: 0, op: 'pull', command_id: detail.steps[0]!.command_id, exit_code: 130, message: 'pull stopped: the pipeline was cancelled' });
      expect(p.host_status[host]).toBe('skipped');
      expect(f.agent(host).ran).toEqual(['pull']);
    }
    expect(pipelineEvents(f).find((e) => e.message === 'pipeline "long pull": cancel requested')?.actor).toContain('test-admin');
    expect((await f.http.post(`/api/pipelines/${id}/cancel`)).status).toBe(409);
    expect((await f.http.post('/api/pipelines/nope/cancel')).status).toBe(404);
  });

  it('drops a host without a live agent when its stage starts (offline), and keeps the others going', async () => {
    const f = await fleet(hosts(3), { runMs: (host, op) => (host === 'h0' && op === 'pull' ? 1500 : 30) });
    f.agent('h2').agent.close();
    await until('h2 offline', () => f.server.manager.state.hosts.get('h2')?.status === 'offline');
    const id = await start(f, { name: 'some away', hosts: hosts(3), stages: ['pull', 'test'] });
    await until('h2 dropped at once', () => pipelineOf(f, id).host_status.h2 === 'skipped', 5000);
    expect(hostDetailOf(pipelineOf(f, id), 'h2').dropped).toEqual({ reason: 'offline', stage: 0, op: 'pull', command_id: null, exit_code: null, message: 'no live agent when its pull was due (the host is offline)' });
    // h1 is through its pull while h0's still runs; its agent goes away before the next stage.
    await until('h1 waits for stage 2', () => hostDetailOf(pipelineOf(f, id), 'h1').stage === 1);
    f.agent('h1').agent.close();
    await until('h1 offline', () => f.server.manager.state.hosts.get('h1')?.status === 'offline');
    expect(pipelineOf(f, id).host_status.h0).toBe('running');

    const p = await ended(f, id);
    expect(p.status).toBe('partial');
    expect(p.host_status).toEqual({ h0: 'success', h1: 'skipped', h2: 'skipped' });
    expect(hostDetailOf(p, 'h1').dropped).toMatchObject({ reason: 'offline', stage: 1, op: 'test', command_id: null });
    expect(f.agent('h1').ran).toEqual(['pull']);
  });

  it('a host busy with another command waits for it instead of being dropped', async () => {
    const f = await fleet(hosts(2), { exitCode: (_host, op) => (op === 'rollback' ? null : 0) });
    const adHoc = await f.http.post('/api/commands', { host_id: 'h0', op: 'rollback' });
    expect(adHoc.status).toBe(201);
    await until('h0 runs its rollback', () => f.agent('h0').busyWith === 'rollback');
    const id = await start(f, { name: 'after the rollback', hosts: hosts(2), stages: ['pull'] });
    await until('h1 through', () => pipelineOf(f, id).host_status.h1 === 'success');
    await f.server.pipelines.tick();
    expect(pipelineOf(f, id)).toMatchObject({ status: 'running', host_status: { h0: 'pending' } });
    expect(hostDetailOf(pipelineOf(f, id), 'h0')).toEqual({ host: 'h0', stage: 0, steps: [], dropped: null });

    expect((await f.http.post(`/api/commands/${adHoc.body.command.id}/cancel`)).status).toBe(202);
    const p = await ended(f, id);
    expect(p.status).toBe('complete');
    expect(f.agent('h0').ran).toEqual(['rollback', 'pull']);
  });
});
