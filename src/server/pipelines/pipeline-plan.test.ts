// The planner on states built by hand: the rules the end-to-end tests (test/pipelines*.test.ts)
// cannot easily reach, and the guarantee under them: a stale plan applied twice starts nothing twice.
import { describe, expect, it } from 'vitest';
import { applyChange, checkChange, cloneState, emptyState, hostDetailOf, type FleetState } from '../../protocol/fleet-state.js';
import type { Change, Host, Pipeline } from '../../protocol/schema.js';
import { hostAdded, pipelineStarted, type ActionContext } from '../fleet-actions.js';
import { planPipeline, type PipelineAction } from './pipeline-plan.js';

function context(): ActionContext {
  let n = 0;
  return { now: () => new Date('2026-12-01T10:00:00.000Z'), newId: (prefix) => `${prefix}-${n++}` };
}

function fleet(online: string[], offline: string[] = []): { state: FleetState; ctx: ActionContext } {
  const ctx = context();
  const state = emptyState({ events: 1000, commands: 1000, pipelines: 10, output_tail: 100 });
  for (const [ids, status] of [[online, 'online'], [offline, 'offline']] as const) {
    for (const id of ids) {
      applyChange(state, hostAdded({ id, hostname: id, host_type: 'nixos', status: status as Host['status'], last_seen: null, agent_version: null, generation: null, os_version: null, nixpkgs_version: null, metrics: null, compartments: {} }, ctx));
    }
  }
  return { state, ctx };
}

function start(state: FleetState, ctx: ActionContext, body: Partial<Parameters<typeof pipelineStarted>[0]> & { hosts: string[] }): string {
  const change = pipelineStarted({ name: 'p', stages: ['pull', 'test'], ...body }, ctx);
  applyChange(state, change);
  return change.pipeline.id;
}

/** Applies each action as the runner would: a group only if every change of it passes. */
function take(state: FleetState, actions: PipelineAction[]): number {
  let applied = 0;
  for (const action of actions) {
    const changes: Change[] = action.kind === 'apply' ? action.changes : [{ type: 'command_updated', id: action.command.id, fields: { stop_requested_at: '2026-12-01T10:00:01.000Z' } }];
    const trial = cloneState(state);
    if (changes.every((change) => checkChange(trial, change) === null && (applyChange(trial, change), true))) {
      for (const change of changes) applyChange(state, change);
      applied++;
    }
  }
  return applied;
}

/** Plans and applies until nothing is left to do now. */
function settle(state: FleetState, ctx: ActionContext, id: string): void {
  for (let i = 0; i < 50; i++) if (take(state, planPipeline(state, state.pipelines.get(id)!, ctx)) === 0) return;
  throw new Error('the plan did not settle');
}

function finishCommandsOf(state: FleetState, id: string, status: 'success' | 'error' | 'cancelled' = 'success'): void {
  for (const command of [...state.commands.values()]) {
    if (command.pipeline_id === id && (command.status === 'pending' || command.status === 'running')) {
      applyChange(state, { type: 'command_finished', id: command.id, status, exit_code: status === 'success' ? 0 : 1, finished_at: '2026-12-01T10:00:02.000Z' });
    }
  }
}

const running = (state: FleetState, id: string) => [...state.commands.values()].filter((c) => c.pipeline_id === id && c.status === 'pending').map((c) => c.host_id);
const pipeline = (state: FleetState, id: string): Pipeline => state.pipelines.get(id)!;

describe('planPipeline', () => {
  it('starts the first `parallel` hosts in order, then fills a slot as soon as one ends', () => {
    const { state, ctx } = fleet(['a', 'b', 'c', 'd', 'e']);
    const id = start(state, ctx, { hosts: ['a', 'b', 'c', 'd', 'e'], stages: ['pull'], parallel: 2 });
    settle(state, ctx, id);
    expect(running(state, id)).toEqual(['a', 'b']);
    applyChange(state, { type: 'command_finished', id: hostDetailOf(pipeline(state, id), 'a').steps[0]!.command_id, status: 'success', exit_code: 0, finished_at: '2026-12-01T10:00:02.000Z' });
    settle(state, ctx, id);
    expect(running(state, id)).toEqual(['b', 'c']);
  });

  it('a plan taken twice (a stale instance, a retried pass) starts no command twice', () => {
    const { state, ctx } = fleet(['a', 'b']);
    const id = start(state, ctx, { hosts: ['a', 'b'] });
    const plan = planPipeline(state, pipeline(state, id), ctx);
    take(state, plan);
    expect(running(state, id)).toEqual(['a', 'b']);
    finishCommandsOf(state, id);
    // The same starts again, as a runner deciding on the old state would: every one is refused.
    expect(take(state, plan.filter((a) => a.kind === 'apply' && a.changes[0]!.type === 'command_started'))).toBe(0);
    // And a plan made from a state where the stage has a command plans none for it.
    const fresh = planPipeline(state, pipeline(state, id), ctx).flatMap((a) => (a.kind === 'apply' ? a.changes : []));
    expect(fresh.some((c) => c.type === 'command_started')).toBe(false);
  });

  it('a canary with no live agent proves nothing: the rollout stops (canary_unproven), the rest skipped', () => {
    const { state, ctx } = fleet(['b', 'c'], ['a']);
    const id = start(state, ctx, { hosts: ['a', 'b', 'c'], canary: 1 });
    settle(state, ctx, id);
    expect(pipeline(state, id)).toMatchObject({ status: 'failed', stop_reason: 'canary_unproven', host_status: { a: 'skipped', b: 'skipped', c: 'skipped' } });
    expect(hostDetailOf(pipeline(state, id), 'a').dropped!.reason).toBe('offline');
    expect(hostDetailOf(pipeline(state, id), 'b').dropped!.reason).toBe('stopped');
    expect(state.commands.size).toBe(0);
  });

  it('leaves a pipeline a client drove alone, and ends it when it is cancelled, its commands stopped first', () => {
    const { state, ctx } = fleet(['a']);
    const id = start(state, ctx, { hosts: ['a'] });
    const { run_by: _r, host_detail: _d, ...old } = pipeline(state, id);
    state.pipelines.set(id, { ...old, run_by: 'client', host_detail: [] } as Pipeline);
    applyChange(state, { type: 'command_started', command: { id: 'by-hand', host_id: 'a', op: 'pull', status: 'running', created_at: '2026-12-01T09:00:00.000Z', started_at: null, finished_at: null, exit_code: null, pipeline_id: id, output: '', output_size: 0, sent_at: null, pid: null, stop_requested_at: null, output_seq: 0 } });
    expect(planPipeline(state, pipeline(state, id), ctx)).toEqual([]);

    applyChange(state, { type: 'pipeline_updated', id, fields: { cancel_requested_at: '2026-12-01T10:00:00.000Z' } });
    const plan = planPipeline(state, pipeline(state, id), ctx);
    expect(plan.filter((a) => a.kind === 'stop').map((a) => (a.kind === 'stop' ? a.command.id : null))).toEqual(['by-hand']);
    settle(state, ctx, id);
    expect(pipeline(state, id).status).toBe('running');
    finishCommandsOf(state, id, 'cancelled');
    settle(state, ctx, id);
    expect(pipeline(state, id)).toMatchObject({ status: 'cancelled', host_status: { a: 'skipped' } });
    expect(hostDetailOf(pipeline(state, id), 'a').dropped).toMatchObject({ reason: 'cancelled', stage: 0, op: 'pull' });
  });

  it('a stopped rollout lets a running command finish: a host through its last stage counts as through', () => {
    const { state, ctx } = fleet(['a', 'b', 'c']);
    const id = start(state, ctx, { hosts: ['a', 'b', 'c'], stages: ['pull'], max_failures: 0 });
    settle(state, ctx, id);
    const command = (host: string) => hostDetailOf(pipeline(state, id), host).steps[0]!.command_id;
    applyChange(state, { type: 'command_finished', id: command('a'), status: 'error', exit_code: 1, finished_at: '2026-12-01T10:00:02.000Z' });
    settle(state, ctx, id);
    expect(pipeline(state, id)).toMatchObject({ status: 'running', stop_reason: 'max_failures', host_status: { a: 'failed', b: 'running', c: 'running' } });
    applyChange(state, { type: 'command_finished', id: command('b'), status: 'success', exit_code: 0, finished_at: '2026-12-01T10:00:03.000Z' });
    applyChange(state, { type: 'command_finished', id: command('c'), status: 'success', exit_code: 0, finished_at: '2026-12-01T10:00:03.000Z' });
    settle(state, ctx, id);
    expect(pipeline(state, id)).toMatchObject({ status: 'failed', host_status: { a: 'failed', b: 'success', c: 'success' } });
  });
});
