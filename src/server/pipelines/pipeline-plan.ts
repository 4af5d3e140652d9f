// What a running pipeline needs next, decided from the fleet state alone, so that whichever
// instance drives pipelines, after whatever restart, takes the same next steps (the rules are in
// docs/PIPELINES.md). Pure: ids and times come from the ActionContext, nothing from I/O. Each
// action is one atomic group of changes, or a stop request for a command; the runner takes them
// and plans again from the state they produced. Does not own: sending commands to agents (the
// agent hub follows `command_started`), a command's lifecycle, the clock-driven rules.
import { isTerminalCommandStatus, isTerminalPipelineStatus, PIPELINE_STOP_REASONS } from '../../protocol/constants.js';
import { emptyHostDetail, type FleetState } from '../../protocol/fleet-state.js';
import type { Change, Command, EventLogEntry, Op, Pipeline, PipelineDrop, PipelineFields, PipelineHostDetail, PipelineHostUpdate } from '../../protocol/schema.js';
import { commandStarted, eventLogged, iso, type ActionContext } from '../fleet-actions.js';

/** The actor of every step the runner takes. */
export const RUNNER_ACTOR = 'server';

export type PipelineAction =
  /** Applied together or not at all. */
  | { kind: 'apply'; changes: Change[] }
  /** Ask the command's agent to stop it (a cancelled pipeline). */
  | { kind: 'stop'; command: Command; because: string };

type HostStatus = Pipeline['host_status'][string];
type StopReason = (typeof PIPELINE_STOP_REASONS)[number];
type StepStatus = PipelineHostDetail['steps'][number]['status'];

const ENDED: ReadonlySet<HostStatus> = new Set(['success', 'failed', 'skipped']);

/** The next steps of one pipeline; none when it waits for something outside (a command, a busy host). */
export function planPipeline(state: Readonly<FleetState>, pipeline: Pipeline, ctx: ActionContext): PipelineAction[] {
  if (isTerminalPipelineStatus(pipeline.status)) return [];
  const run = new PipelineRun(state, pipeline, ctx);
  if (pipeline.cancel_requested_at !== null) return run.cancel();
  // A pipeline a client drove by hand (a log from before the runner) is only ever cancelled.
  if (pipeline.run_by !== 'server') return [];
  // One phase at a time: each reads the state the previous one left.
  for (const phase of [run.outcomes, run.stopCheck, run.stopDrops, run.finishCheck, run.advance]) {
    const actions = phase.call(run);
    if (actions.length > 0) return actions;
  }
  return [];
}

/** The changes of one pipeline_updated and the events that go with it. */
class Update {
  readonly fields: PipelineFields = {};
  readonly events: Change[] = [];

  constructor(private readonly pipelineId: string) {}

  host(hostId: string, status: HostStatus | null, detail: PipelineHostUpdate | null): this {
    if (status !== null) (this.fields.host_status ??= {})[hostId] = status;
    if (detail !== null) (this.fields.host_detail ??= {})[hostId] = detail;
    return this;
  }

  get empty(): boolean {
    return Object.keys(this.fields).length === 0 && this.events.length === 0;
  }

  changes(): Change[] {
    const update: Change[] = Object.keys(this.fields).length > 0 ? [{ type: 'pipeline_updated', id: this.pipelineId, fields: this.fields }] : [];
    return [...update, ...this.events];
  }

  action(): PipelineAction {
    return { kind: 'apply', changes: this.changes() };
  }
}

class PipelineRun {
  private readonly last: number;
  /** Each host's detail by id, looked up once per plan. */
  private readonly details: Map<string, PipelineHostDetail>;

  constructor(
    private readonly state: Readonly<FleetState>,
    private readonly p: Pipeline,
    private readonly ctx: ActionContext,
  ) {
    this.last = p.stages.length - 1;
    this.details = new Map(p.hosts.map((hostId, i) => [hostId, p.host_detail[i] ?? emptyHostDetail(hostId)]));
  }

  /**
   * Cancelled: every running command of the pipeline is asked to stop (but a switch that has
   * already succeeded and waits for its agent to restart); hosts with none running
   * end (skipped, reason `cancelled`, unless they were through or had failed); once no command
   * runs, the pipeline ends `cancelled`.
   */
  cancel(): PipelineAction[] {
    const actions: PipelineAction[] = [];
    let running = 0;
    for (const command of this.state.commands.values()) {
      if (command.pipeline_id !== this.p.id || isTerminalCommandStatus(command.status)) continue;
      running++;
      // A switch that reported success only waits for its agent to restart: nothing to stop.
      if (command.stop_requested_at === null && command.exit_code === null) actions.push({ kind: 'stop', command, because: `pipeline "${this.p.name}" cancelled` });
    }
    const update = new Update(this.p.id);
    let notRun = 0;
    for (const hostId of this.p.hosts) {
      if (this.ended(hostId)) continue;
      const detail = this.detail(hostId);
      const step = detail.steps[detail.stage];
      const status = step ? this.statusOf(step) : null;
      if (status === 'started') continue;
      if (status === 'success' && detail.stage === this.last) {
        this.through(update, hostId);
      } else if (status === 'error' || status === 'timeout') {
        this.failed(update, hostId, detail, status);
      } else {
        notRun++;
        // Its command was stopped by the cancel, or it never started the stage it was due for.
        const stage = status === 'success' ? detail.stage + 1 : detail.stage;
        const op = this.op(stage);
        const message = status === 'cancelled' ? `${op} stopped: the pipeline was cancelled` : `not run: the pipeline was cancelled before its stage ${stage + 1} (${op})`;
        const stopped = status === 'cancelled' ? step! : null;
        update.host(hostId, 'skipped', { dropped: this.drop('cancelled', stage, stopped?.command_id ?? null, stopped?.exit_code ?? null, message) });
      }
    }
    if (notRun > 0) update.events.push(this.event('warning', `pipeline "${this.p.name}": ${plural(notRun, 'host')} left without finishing (cancelled)`, null, null, { not_run: notRun }));
    if (!update.empty) actions.push(update.action());
    if (actions.length === 0 && running === 0) return [this.finish('cancelled')];
    return actions;
  }

  /** A host whose command of its stage ended moves to the next stage, is through, or is dropped (`failed`). */
  outcomes(): PipelineAction[] {
    const update = new Update(this.p.id);
    for (const hostId of this.p.hosts) {
      if (this.ended(hostId)) continue;
      const detail = this.detail(hostId);
      const step = detail.steps[detail.stage];
      const status = step ? this.statusOf(step) : 'started';
      if (status === 'started') continue;
      if (status !== 'success') this.failed(update, hostId, detail, status);
      else if (detail.stage === this.last) this.through(update, hostId);
      else update.host(hostId, null, { stage: detail.stage + 1 });
    }
    return update.empty ? [] : [update.action()];
  }

  /** Records, once, that the rollout stops: a canary host failed, too many hosts failed, or no canary host got through. */
  stopCheck(): PipelineAction[] {
    if (this.p.stop_reason !== null) return [];
    const stop = this.stopReason();
    if (!stop) return [];
    const update = new Update(this.p.id);
    update.fields.stop_reason = stop.reason;
    update.events.push(this.event('error', `pipeline "${this.p.name}": the rollout stops: ${stop.why}`, null, null, { stop_reason: stop.reason }));
    return [update.action()];
  }

  /** After a stop, hosts not running a command leave (skipped, reason `stopped`); running commands finish. */
  stopDrops(): PipelineAction[] {
    if (this.p.stop_reason === null) return [];
    const update = new Update(this.p.id);
    let dropped = 0;
    for (const hostId of this.p.hosts) {
      if (this.ended(hostId)) continue;
      const detail = this.detail(hostId);
      if (detail.steps[detail.stage] !== undefined) continue; // its command is still running (outcomes took the ended ones)
      dropped++;
      update.host(hostId, 'skipped', { dropped: this.drop('stopped', detail.stage, null, null, `not run: the rollout stopped (${STOP_TEXT[this.p.stop_reason]})`) });
    }
    if (dropped === 0) return [];
    update.events.push(this.event('warning', `pipeline "${this.p.name}": ${plural(dropped, 'host')} skipped, the rollout stopped`, null, null, { skipped: dropped }));
    return [update.action()];
  }

  /** Every host ended: the pipeline ends. */
  finishCheck(): PipelineAction[] {
    if (!this.p.hosts.every((hostId) => this.ended(hostId))) return [];
    const through = this.p.hosts.filter((hostId) => this.p.host_status[hostId] === 'success').length;
    const status = this.p.stop_reason !== null || through === 0 ? 'failed' : through === this.p.hosts.length ? 'complete' : 'partial';
    return [this.finish(status)];
  }

  /**
   * The batch now running (the canary hosts until each has ended, then every host still in) is
   * at the lowest stage any of its hosts is at; hosts already past it wait for the others. Its
   * hosts without a command for that stage get one, up to `parallel` running at once, in the
   * pipeline's host order: a host without a live agent is dropped (`offline`), a host busy with
   * another command waits for it.
   */
  advance(): PipelineAction[] {
    const canary = this.p.canary === null ? [] : this.p.hosts.slice(0, this.p.canary).filter((hostId) => !this.ended(hostId));
    const phase = canary.length > 0 ? 'canary' : 'rollout';
    const batch = phase === 'canary' ? canary : this.p.hosts.filter((hostId) => !this.ended(hostId));
    let stage = this.last;
    for (const hostId of batch) stage = Math.min(stage, this.detail(hostId).stage);
    const op = this.op(stage);
    const actions: PipelineAction[] = [];
    const due: string[] = [];
    let running = 0;
    for (const hostId of batch) {
      const detail = this.detail(hostId);
      if (detail.stage !== stage) continue;
      if (detail.steps[stage] === undefined) due.push(hostId);
      else running++;
    }
    if (this.p.phase !== phase || this.p.current_stage !== stage) {
      const update = new Update(this.p.id);
      update.fields.phase = phase;
      update.fields.current_stage = stage;
      const where = `stage ${stage + 1}/${this.p.stages.length} (${op}) on ${plural(due.length + running, 'host')}`;
      const what = phase === 'canary' ? `canary ${where}` : this.p.phase === 'canary' ? `the canary got through; ${where}` : where;
      update.events.push(this.event('info', `pipeline "${this.p.name}": ${what}`, null, op, { stage, phase }));
      actions.push(update.action());
    }
    const offline = new Update(this.p.id);
    const starting: string[] = [];
    let slots = this.p.parallel === null ? Infinity : this.p.parallel - running;
    for (const hostId of due) {
      if (slots <= 0) break;
      const host = this.state.hosts.get(hostId);
      if (!host || host.status !== 'online') {
        const message = host ? `no live agent when its ${op} was due (the host is ${host.status})` : 'the host was removed from the fleet';
        offline.host(hostId, 'skipped', { dropped: this.drop('offline', stage, null, null, message) });
        offline.events.push(this.event('warning', `pipeline "${this.p.name}": ${host?.hostname ?? hostId} dropped at stage ${stage + 1} (${op}): ${message}`, host ? hostId : null, op, { stage, reason: 'offline' }));
        continue;
      }
      if (host.pending_command !== null) continue; // busy with another command: it waits for it
      starting.push(hostId);
      slots--;
    }
    if (starting.length > 0) actions.push(this.start(starting, stage));
    if (!offline.empty) actions.push(offline.action());
    return actions;
  }

  /**
   * Starts the hosts' commands of `stage`: each command and its event, and the pipeline's record
   * of them, in one group, so the state always says whether a command was started, and a second
   * start of the same stage is refused by checkChange. One pipeline_updated for them all: the
   * fold copies the pipeline's per-host maps once per update, not once per host.
   */
  private start(hostIds: readonly string[], stage: number): PipelineAction {
    const op = this.op(stage);
    const changes: Change[] = [];
    const update = new Update(this.p.id);
    for (const hostId of hostIds) {
      const started = commandStarted({ host_id: hostId, op, pipeline_id: this.p.id }, this.ctx);
      changes.push(started, this.event('info', `pipeline "${this.p.name}": ${op} on ${this.hostname(hostId)} (stage ${stage + 1}/${this.p.stages.length})`, hostId, op, { stage, command_id: started.command.id }));
      update.host(hostId, 'running', { stage, command_id: started.command.id });
    }
    return { kind: 'apply', changes: [...changes, ...update.changes()] };
  }

  private stopReason(): { reason: StopReason; why: string } | null {
    const canary = this.p.canary === null ? [] : this.p.hosts.slice(0, this.p.canary);
    const failed = this.p.hosts.filter((hostId) => this.detail(hostId).dropped?.reason === 'failed');
    const failedCanary = canary.find((hostId) => failed.includes(hostId));
    if (failedCanary !== undefined) {
      const drop = this.detail(failedCanary).dropped!;
      return { reason: 'canary_failed', why: `canary host ${this.hostname(failedCanary)} failed stage ${drop.stage + 1} (${drop.op})` };
    }
    if (this.p.max_failures !== null && failed.length > this.p.max_failures) {
      return { reason: 'max_failures', why: `${plural(failed.length, 'host')} failed, more than max_failures ${this.p.max_failures}` };
    }
    if (canary.length > 0 && canary.every((hostId) => this.ended(hostId)) && !canary.some((hostId) => this.p.host_status[hostId] === 'success')) {
      return { reason: 'canary_unproven', why: 'no canary host went through every stage (none had a live agent)' };
    }
    return null;
  }

  private through(update: Update, hostId: string): void {
    update.host(hostId, 'success', null);
    update.events.push(this.event('success', `pipeline "${this.p.name}": ${this.hostname(hostId)} went through every stage`, hostId, null, {}));
  }

  private failed(update: Update, hostId: string, detail: PipelineHostDetail, status: Exclude<StepStatus, 'started' | 'success'>): void {
    const step = detail.steps[detail.stage]!;
    const op = this.op(detail.stage);
    const message = `${op} ended ${status}${step.exit_code !== null ? ` (exit ${step.exit_code})` : ''} at stage ${detail.stage + 1}`;
    update.host(hostId, 'failed', { dropped: this.drop('failed', detail.stage, step.command_id, step.exit_code, message) });
    update.events.push(this.event('warning', `pipeline "${this.p.name}": ${this.hostname(hostId)} dropped: ${message}`, hostId, op, { stage: detail.stage, reason: 'failed', command_id: step.command_id, exit_code: step.exit_code }));
  }

  private finish(status: 'complete' | 'partial' | 'failed' | 'cancelled'): PipelineAction {
    const through = this.p.hosts.filter((hostId) => this.p.host_status[hostId] === 'success').length;
    const level: EventLogEntry['level'] = status === 'complete' ? 'success' : status === 'partial' || status === 'cancelled' ? 'warning' : 'error';
    const message = `pipeline "${this.p.name}" ${status}: ${through} of ${plural(this.p.hosts.length, 'host')} went through every stage`;
    return {
      kind: 'apply',
      changes: [{ type: 'pipeline_finished', id: this.p.id, status, finished_at: iso(this.ctx) }, this.event(level, message, null, null, { status, through, hosts: this.p.hosts.length })],
    };
  }

  private drop(reason: PipelineDrop['reason'], stage: number, commandId: string | null, exitCode: number | null, message: string): PipelineDrop {
    return { reason, stage, op: this.op(stage), command_id: commandId, exit_code: exitCode, message: message.slice(0, 500) };
  }

  /** How a step went; a step whose command is gone from the state (it cannot be: running commands are kept) counts as an error. */
  private statusOf(step: PipelineHostDetail['steps'][number]): StepStatus {
    if (step.status !== 'started') return step.status;
    const command = this.state.commands.get(step.command_id);
    if (!command) return 'error';
    return isTerminalCommandStatus(command.status) ? (command.status as StepStatus) : 'started';
  }

  private ended(hostId: string): boolean {
    return ENDED.has(this.p.host_status[hostId] ?? 'pending');
  }

  private detail(hostId: string): PipelineHostDetail {
    return this.details.get(hostId) ?? emptyHostDetail(hostId);
  }

  private op(stage: number): Op {
    return this.p.stages[Math.min(stage, this.last)]!;
  }

  private hostname(hostId: string): string {
    return this.state.hosts.get(hostId)?.hostname ?? hostId;
  }

  private event(level: EventLogEntry['level'], message: string, hostId: string | null, action: string | null, details: Record<string, string | number | null>): Change {
    return eventLogged({ level, category: 'pipeline', message: message.slice(0, 2000), actor: RUNNER_ACTOR, host_id: hostId, action, details: { pipeline_id: this.p.id, ...details } }, this.ctx);
  }
}

const STOP_TEXT: Record<StopReason, string> = {
  canary_failed: 'a canary host failed',
  canary_unproven: 'no canary host got through',
  max_failures: 'more hosts failed than max_failures allows',
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
