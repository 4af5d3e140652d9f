// The rules that need a clock, checked every second by one instance at a time (the presence's
// supervisor turn; with SQLite, the only instance): an op past its warning or hard limit, a stop
// the agent never confirmed, a command whose agent is gone and did not come back within the
// reconnect window (after a switch, a lost link, a server restart), and a host shown online with
// no agent session anywhere (its instance died, or the server restarted without it).
import { isTerminalCommandStatus } from '../../protocol/constants.js';
import type { Command } from '../../protocol/schema.js';
import { eventLogged, type ActionContext } from '../fleet-actions.js';
import type { Logger } from '../logger.js';
import type { StateManager } from '../state-manager.js';
import { opTimeout, type AgentPolicy } from './agent-policy.js';
import type { AgentPresence } from './agent-presence.js';
import type { CommandLifecycle } from './command-lifecycle.js';

const ACTOR = 'server';

export interface SupervisorOptions {
  policy: AgentPolicy;
  presence: AgentPresence;
  lifecycle: CommandLifecycle;
  actions: ActionContext;
  logger: Logger;
  now?: () => number;
}

export class CommandSupervisor {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly startedAt: number;
  private readonly now: () => number;
  /** When each command (or host) was first seen without a live agent: its window starts there. */
  private readonly agentlessSince = new Map<string, number>();
  private readonly warned = new Set<string>();

  constructor(
    private readonly manager: StateManager,
    private readonly options: SupervisorOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
  }

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.tick()
        .catch((error) => this.options.logger.warn('supervisor tick failed', { error: (error as Error).message }))
        .finally(() => (this.running = null));
    }, this.options.policy.superviseIntervalMs).unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass over the rules (exposed for tests). */
  async tick(): Promise<void> {
    if (!(await this.options.presence.supervising())) {
      this.agentlessSince.clear();
      return;
    }
    const { live, lapsed } = await this.options.presence.sessions();
    const now = this.now();
    const seen = new Set<string>();
    for (const command of [...this.manager.state.commands.values()]) {
      if (isTerminalCommandStatus(command.status)) continue;
      seen.add(command.id);
      await this.checkCommand(command, live.has(command.host_id), now);
    }
    for (const host of [...this.manager.state.hosts.values()]) {
      if (host.status !== 'online' || live.has(host.id)) continue;
      const key = `host:${host.id}`;
      seen.add(key);
      // A lapsed lease is its instance's death: offline at once. No lease at all (a restart of
      // the only instance) gets a few heartbeats' time for the agent to come back.
      const died = lapsed.has(host.id);
      if (!died && now - this.since(key, now) < this.hostGraceMs()) continue;
      this.agentlessSince.delete(key);
      const message = died ? 'agent session lost: its server instance stopped renewing it' : 'no agent session for this host (the server restarted and the agent did not reconnect)';
      await this.manager
        .applyAll([
          { type: 'host_updated', id: host.id, fields: { status: 'offline' } },
          eventLogged({ level: 'warning', category: 'agent', message, actor: ACTOR, host_id: host.id, action: null, details: null }, this.options.actions),
        ])
        .then(() => this.options.presence.forget(host.id))
        .catch((error) => this.options.logger.debug('marking a host offline lost a race', { host: host.id, error: (error as Error).message }));
    }
    for (const key of this.agentlessSince.keys()) if (!seen.has(key)) this.agentlessSince.delete(key);
    for (const id of this.warned) if (!seen.has(id)) this.warned.delete(id);
  }

  private async checkCommand(command: Command, agentLive: boolean, now: number): Promise<void> {
    const { lifecycle, policy } = this.options;
    const note = { actor: ACTOR };
    if (command.stop_requested_at !== null && now - Date.parse(command.stop_requested_at) > policy.stopGraceMs) {
      return lifecycle.finished(command, 'cancelled', null, { ...note, message: `${command.op} cancelled: the agent did not confirm the stop within ${policy.stopGraceMs / 1000} s` });
    }
    // Queued by an operator for an offline host (never sent): it expires by age, and no agent
    // window applies. A pipeline's command is never queued: it falls to the agent window below,
    // so its pipeline is not held up for a day by one vanished agent.
    if (command.sent_at === null && command.status === 'pending' && command.pipeline_id === null) {
      if (now - Date.parse(command.created_at) <= policy.queueMaxAgeMs) return;
      return lifecycle.finished(command, 'cancelled', null, { ...note, message: `${command.op} expired: its host had no agent for ${Math.round(policy.queueMaxAgeMs / 60_000)} min (NIXFLEET_QUEUE_MAX_AGE)` });
    }
    const limits = opTimeout(policy, command.op);
    const ranFor = now - Date.parse(command.started_at ?? command.sent_at ?? command.created_at);
    if (ranFor > limits.hardMs) {
      return lifecycle.finished(command, 'timeout', null, { ...note, message: `${command.op} timed out after ${Math.round(limits.hardMs / 1000)} s; the agent was told to stop`, details: { hard_limit_ms: limits.hardMs } });
    }
    if (ranFor > limits.warnMs && !this.warned.has(command.id)) {
      this.warned.add(command.id);
      await this.manager
        .apply(eventLogged({ level: 'warning', category: 'command', message: `${command.op} is taking long: over ${Math.round(limits.warnMs / 1000)} s`, actor: ACTOR, host_id: command.host_id, action: command.op, details: { command_id: command.id, warn_limit_ms: limits.warnMs } }, this.options.actions))
        .catch(() => {});
    }
    if (agentLive) {
      this.agentlessSince.delete(command.id);
      return;
    }
    const since = this.since(command.id, now);
    if (now - since < policy.reconnectWindowMs) return;
    this.agentlessSince.delete(command.id);
    const window = `${Math.round(policy.reconnectWindowMs / 1000)} s`;
    const afterRestart = since - this.startedAt < policy.superviseIntervalMs * 2;
    const message =
      command.stop_requested_at !== null
        ? `${command.op} cancelled: its agent is gone`
        : command.exit_code !== null
          ? `${command.op} reported success, but the agent did not come back within ${window}`
          : afterRestart
            ? `${command.op} ended with no result: the server restarted and the agent did not report within ${window}`
            : `${command.op} ended with no result: the agent did not come back within ${window}`;
    await lifecycle.finished(command, command.stop_requested_at !== null ? 'cancelled' : 'error', null, { ...note, message });
  }

  private since(key: string, now: number): number {
    let since = this.agentlessSince.get(key);
    if (since === undefined) this.agentlessSince.set(key, (since = now));
    return since;
  }

  /** A host shown online with no session anywhere gets the time of a few missed heartbeats to come back. */
  private hostGraceMs(): number {
    return this.options.policy.missedHeartbeats * 5_000;
  }
}
