// One simulated host and its agent: registration (or reuse of an existing host), a jittered
// heartbeat with metrics and changed checks, occasional offline spells, and running ops.
import type { Host, Metrics } from '../protocol/schema.js';
import type { Logger } from '../server/index.js';
import type { FleetApi } from './api-client.js';
import type { SimClock } from './clock.js';
import { runCommand, type CommandResult } from './command-runner.js';
import type { FleetRepo } from './fleet-repo.js';
import { HostChecks } from './host-checks.js';
import { initialMetrics, nextMetrics, type Activity } from './metrics.js';
import { AGENT_VERSIONS, type HostProfile } from './names.js';
import { outputLines, type DemoOp, type Outcome } from './output-lines.js';
import type { Rng } from './random.js';

export const HEARTBEAT_MS = 5000;
/** Chance per heartbeat that a host not running a command drops off the network for a while. */
const OFFLINE_CHANCE = 1 / 180;

const OUTCOMES: Record<DemoOp, Record<Outcome, number>> = {
  pull: { success: 96, error: 3, timeout: 1 },
  switch: { success: 90, error: 8, timeout: 2 },
  'pull-switch': { success: 90, error: 8, timeout: 2 },
  test: { success: 91, error: 8, timeout: 1 },
  rollback: { success: 90, error: 10, timeout: 0 },
  restart: { success: 93, error: 7, timeout: 0 },
  stop: { success: 95, error: 5, timeout: 0 },
  reboot: { success: 95, error: 5, timeout: 0 },
};
/** Ids of recent commands an agent remembers having run, so it never runs one twice. */
const REMEMBERED_COMMANDS = 50;

export interface AgentDeps {
  api: FleetApi;
  clock: SimClock;
  rng: Rng;
  repo: FleetRepo;
  logger: Logger;
}

export class HostAgent {
  /** Id of the host in the store: the profile name, or the id of an existing host of that name. */
  id: string;
  registered = false;
  online = true;
  busy = false;
  /** Pipeline holding this host between its stages. */
  reservedBy: string | null = null;

  private readonly checks: HostChecks;
  private readonly handled: string[] = [];
  private rebootRequested = false;
  /** Set once the host was removed through the API: the agent stops for good. */
  private retired = false;
  private agentVersion: string;
  private metrics: Metrics;
  private activity: Activity = 'idle';

  constructor(
    readonly profile: HostProfile,
    private readonly deps: AgentDeps,
  ) {
    this.id = profile.name;
    this.agentVersion = deps.rng.weighted(AGENT_VERSIONS);
    this.checks = new HostChecks(deps.repo, deps.rng);
    this.metrics = initialMetrics(profile, deps.rng);
  }

  get hostname(): string {
    return this.profile.name;
  }

  /** Online, registered, not running a command and not held by a pipeline. */
  get idle(): boolean {
    return this.registered && this.online && !this.busy && this.reservedBy === null;
  }

  get gitOutdated(): boolean {
    return this.checks.gitOutdated;
  }

  get systemOutdated(): boolean {
    return this.checks.systemOutdated;
  }

  /** Whether this agent ran (or is running) the command. */
  hasHandled(commandId: string): boolean {
    return this.handled.includes(commandId);
  }

  /** Takes over a host that already exists in the store (a second demo run). */
  adopt(host: Host): void {
    this.id = host.id;
    this.registered = true;
    if (host.agent_version) this.agentVersion = host.agent_version;
    if (host.metrics) this.metrics = { ...host.metrics };
    this.checks.adopt(host);
  }

  /** Registers the host; `exists` (409) means the caller should adopt it from the state. */
  async register(): Promise<'registered' | 'exists' | 'failed'> {
    const now = new Date().toISOString();
    const res = await this.deps.api.addHost({
      id: this.id,
      hostname: this.hostname,
      host_type: this.profile.host_type,
      status: 'online',
      last_seen: now,
      agent_version: this.agentVersion,
      generation: this.checks.systemCommit,
      metrics: this.metrics,
      compartments: this.checks.changed(now, true)!,
    });
    if (res.ok) {
      this.registered = true;
      return 'registered';
    }
    this.checks.unreported();
    return res.status === 409 ? 'exists' : 'failed';
  }

  /** The heartbeat loop: staggered start, a beat every ~5 s, now and then an offline spell. */
  async run(): Promise<void> {
    const { clock, rng } = this.deps;
    if (!(await clock.sleep(rng.between(0, HEARTBEAT_MS)))) return;
    while (!clock.stopped && !this.retired) {
      if (!this.registered) {
        if ((await this.register()) === 'exists') await this.adoptFromState();
      } else if (this.rebootRequested && !this.busy) {
        this.rebootRequested = false;
        await this.offlineSpell('reboot');
      } else if (!this.busy && rng.chance(OFFLINE_CHANCE)) {
        await this.offlineSpell('lost');
      } else {
        await this.heartbeat();
      }
      if (!(await clock.sleep(rng.jitter(HEARTBEAT_MS, 0.2)))) return;
    }
  }

  async heartbeat(): Promise<void> {
    if (this.deps.clock.stopped) return;
    const now = new Date().toISOString();
    this.metrics = nextMetrics(this.metrics, this.profile, this.activity, this.deps.rng);
    const compartments = this.checks.changed(now);
    const res = await this.deps.api.updateHost(this.id, { status: 'online', last_seen: now, metrics: this.metrics, ...(compartments ? { compartments } : {}) });
    if (res.status === 404) {
      // Someone removed the host (the dashboard's Remove): respect it, this agent stops.
      this.retired = true;
      this.registered = false;
      this.deps.logger.info('demo host removed through the API; its agent stops', { host: this.id });
    } else if (!res.ok) this.checks.unreported();
  }

  /**
   * Runs `op` on this host through the API (or, given `existingId`, the command someone else
   * started on it), then reports its checks and generation.
   */
  async runCommand(op: DemoOp, pipelineId: string | null = null, existingId?: string): Promise<CommandResult> {
    if (this.busy) return 'busy';
    if (!this.registered || !this.online) return 'failed';
    this.busy = true;
    if (existingId !== undefined) this.remember(existingId);
    const { api, rng } = this.deps;
    const plan = this.checks.plan(op);
    let result: CommandResult = 'failed';
    try {
      const outcome = rng.weighted(OUTCOMES[op]);
      const lines = outputLines(op, { hostname: this.hostname, hostType: this.profile.host_type, fromCommit: plan.from, toCommit: plan.to, outcome }, rng);
      const spec = { hostId: this.id, hostname: this.hostname, op, pipelineId, outcome, lines, ...(existingId !== undefined ? { existingId } : {}) };
      result = await runCommand(this.deps, spec, {
        started: async (id) => {
          this.remember(id);
          this.activity = op === 'switch' || op === 'pull-switch' ? 'build' : 'light';
          this.checks.begin(op);
          const compartments = this.checks.changed(new Date().toISOString());
          if (compartments) await api.updateHost(this.id, { compartments });
        },
      });
      return result;
    } finally {
      this.checks.end(op, result === 'success' || result === 'error' || result === 'timeout' ? result : null, plan);
      if (op === 'reboot' && result === 'success') {
        this.rebootRequested = true;
        this.online = false; // going down: no beats and no new commands until it is back
      }
      this.activity = 'idle';
      if (result !== 'busy' && result !== 'failed' && !this.deps.clock.stopped) {
        const compartments = this.checks.changed(new Date().toISOString());
        await api.updateHost(this.id, { generation: this.checks.systemCommit, ...(compartments ? { compartments } : {}) });
      }
      this.busy = false;
    }
  }

  /**
   * Silent for a few beats, then marked offline (as a monitor would), back after 20-60 s; a
   * reboot goes quiet at once and is back sooner.
   */
  private async offlineSpell(why: 'lost' | 'reboot'): Promise<void> {
    const { api, clock, rng } = this.deps;
    const reboot = why === 'reboot';
    this.online = false;
    try {
      if (!(await clock.sleep(reboot ? rng.between(1000, 2000) : rng.between(10_000, 15_000)))) return;
      await api.updateHost(this.id, { status: 'offline' });
      const message = reboot ? `${this.hostname} is rebooting` : `${this.hostname} missed its heartbeats and is offline`;
      await api.logEvent({ level: reboot ? 'info' : 'warning', category: 'host', host_id: this.id, action: 'offline', message });
      if (!(await clock.sleep(reboot ? rng.between(15_000, 30_000) : rng.between(20_000, 60_000)))) return;
      this.online = true;
      await this.heartbeat();
      await api.logEvent({ level: 'success', category: 'host', host_id: this.id, action: 'online', message: `${this.hostname} is back online${reboot ? ' after its reboot' : ''}` });
    } finally {
      this.online = true;
    }
  }

  private remember(commandId: string): void {
    if (this.handled.includes(commandId)) return;
    this.handled.push(commandId);
    if (this.handled.length > REMEMBERED_COMMANDS) this.handled.shift();
  }

  private async adoptFromState(): Promise<void> {
    const state = await this.deps.api.getState();
    const host = state.body?.payload.hosts.find((h) => h.id === this.id || h.hostname === this.hostname);
    if (host) this.adopt(host);
  }
}
