// Runs the pipelines. Every tick, and at once after a commit that can move one along (a command
// ended, a pipeline started or was cancelled, a host came or went), it plans each running pipeline
// from the committed state (pipeline-plan.ts) and takes the steps. Nothing a decision depends on
// is kept in memory, so a restarted server, or another instance, carries on where this one
// stopped. With several instances one drives at a time: the supervisor's turn
// (AgentPresence.supervising), which passes on when its holder dies.
import { isTerminalPipelineStatus } from '../../protocol/constants.js';
import type { Change } from '../../protocol/schema.js';
import type { AgentPresence } from '../agents/agent-presence.js';
import type { CommandLifecycle } from '../agents/command-lifecycle.js';
import type { ActionContext } from '../fleet-actions.js';
import type { Logger } from '../logger.js';
import { ChangeRejectedError, type StateManager } from '../state-manager.js';
import { planPipeline, RUNNER_ACTOR, type PipelineAction } from './pipeline-plan.js';

export interface PipelineRunnerOptions {
  presence: AgentPresence;
  lifecycle: CommandLifecycle;
  actions: ActionContext;
  logger: Logger;
  /** How often every running pipeline is looked at even when nothing was committed. */
  intervalMs: number;
}

/** Plans taken in a row within one pass before it yields to the next tick (a bug must not spin). */
const MAX_ROUNDS = 50;

export class PipelineRunner {
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private pass: Promise<void> | null = null;
  private again = false;
  /** Whether this instance had the turn at its last look; only then do commits wake it. */
  private driving = false;
  private closed = false;
  readonly stats = { passes: 0, steps: 0, refused: 0 };

  constructor(
    private readonly manager: StateManager,
    private readonly options: PipelineRunnerOptions,
  ) {}

  start(): void {
    this.unsubscribe = this.manager.subscribe(({ change }) => {
      if (this.driving && movesPipelines(change)) this.kick();
    });
    this.timer = setInterval(() => this.kick(), this.options.intervalMs).unref();
    this.kick();
  }

  /** Stops taking steps; resolves once the pass under way has ended. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    while (this.pass) await this.pass;
  }

  /** Runs a pass and resolves when no pass is under way (tests). */
  async tick(): Promise<void> {
    this.kick();
    while (this.pass) await this.pass;
  }

  /** A pass now, or right after the one under way. */
  private kick(): void {
    if (this.closed) return;
    if (this.pass) {
      this.again = true;
      return;
    }
    this.pass = this.run()
      .catch((error) => this.options.logger.warn('pipeline pass failed', { error: (error as Error).message }))
      .finally(() => {
        this.pass = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async run(): Promise<void> {
    this.driving = await this.options.presence.supervising();
    if (!this.driving || this.closed) return;
    // Another instance may have driven until a moment ago: decide on what it committed.
    await this.manager.caughtUp();
    this.stats.passes++;
    for (let round = 0; round < MAX_ROUNDS && !this.closed; round++) {
      const actions = this.plan();
      if (actions.length === 0) return;
      const taken = await Promise.all(actions.map((action) => this.take(action)));
      // Every step refused: the state moved under us; the next commit or tick plans again.
      if (!taken.includes(true)) return;
    }
    this.options.logger.warn('pipelines still had steps to take after a full pass; continuing on the next tick', { rounds: MAX_ROUNDS });
  }

  private plan(): PipelineAction[] {
    const state = this.manager.state;
    const actions: PipelineAction[] = [];
    for (const pipeline of state.pipelines.values()) {
      if (!isTerminalPipelineStatus(pipeline.status)) actions.push(...planPipeline(state, pipeline, this.options.actions));
    }
    return actions;
  }

  /** Takes one step; answers whether it was applied. Applied together, in the order planned (one group commit). */
  private async take(action: PipelineAction): Promise<boolean> {
    try {
      if (action.kind === 'apply') await this.manager.applyAll(action.changes);
      else await this.options.lifecycle.cancel(action.command, RUNNER_ACTOR, action.because);
      this.stats.steps++;
      return true;
    } catch (error) {
      this.stats.refused++;
      // Refused against a newer state (a command ended, another start won): planned again from it.
      if (error instanceof ChangeRejectedError && (error.code === 'conflict' || error.code === 'not_found' || error.code === 'closed')) {
        this.options.logger.debug('pipeline step refused', { error: error.message });
      } else {
        this.options.logger.warn('pipeline step failed', { error: (error as Error).message });
      }
      return false;
    }
  }
}

/** Commits after which a pipeline may have a step to take. */
function movesPipelines(change: Change): boolean {
  switch (change.type) {
    case 'command_finished':
    case 'pipeline_started':
    case 'host_removed':
      return true;
    case 'pipeline_updated':
      return change.fields.cancel_requested_at !== undefined;
    case 'host_updated':
      return change.fields.status !== undefined;
    default:
      return false;
  }
}
