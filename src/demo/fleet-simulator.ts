// The demo fleet: registers (or reuses) N hosts and drives them through the public HTTP API
// only: heartbeats, ad-hoc ops, `do-all` pipelines, new commits, and running what others start
// on its hosts, all scaled by `speed`.
import type { Host, Pipeline } from '../protocol/schema.js';
import { silentLogger, type Logger } from '../server/index.js';
import type { FullStateMessage } from '../protocol/messages.js';
import { FleetApi } from './api-client.js';
import { SimClock } from './clock.js';
import { FleetRepo } from './fleet-repo.js';
import { watchForeignWork } from './foreign-work.js';
import { HostAgent } from './host-agent.js';
import { cancelLeftovers } from './leftovers.js';
import { hostProfiles } from './names.js';
import type { DemoOp } from './output-lines.js';
import { runPipeline, type PipelineDeps } from './pipeline-runner.js';
import { Rng, type RandomSource } from './random.js';
import { TaskGroup } from './tasks.js';

export interface FleetSimulatorOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8000. */
  baseUrl: string;
  /** Number of hosts (1..500). */
  hosts: number;
  /** An operator API token to act with. */
  token?: string;
  /** Time multiplier: 10 makes every interval ten times shorter. Default 1. */
  speed?: number;
  random?: RandomSource;
  logger?: Logger;
}

export interface SimulatorActivity {
  timers: number;
  requests: number;
  tasks: number;
}

/** After a stop, requests still waiting this long (real time) are aborted. */
const STOP_GRACE_MS = 3000;
const AD_HOC_OPS: Record<DemoOp, number> = { test: 30, switch: 20, pull: 20, 'pull-switch': 15, rollback: 5, restart: 8, reboot: 2, stop: 0 };

export class FleetSimulator {
  readonly agents: HostAgent[] = [];
  private readonly api: FleetApi;
  private readonly clock: SimClock;
  private readonly tasks: TaskGroup;
  private readonly rng: Rng;
  private readonly repo: FleetRepo;
  private readonly logger: Logger;
  /** Pipelines the simulator drives (its own and those it took over). */
  private readonly claimed = new Set<string>();
  private readonly pipelineDeps: PipelineDeps;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;

  constructor(private readonly options: FleetSimulatorOptions) {
    if (!Number.isInteger(options.hosts) || options.hosts < 1 || options.hosts > 500) throw new RangeError(`hosts must be a whole number from 1 to 500, got ${options.hosts}`);
    this.logger = options.logger ?? silentLogger;
    this.rng = new Rng(options.random ?? Math.random);
    this.clock = new SimClock(options.speed ?? 1);
    this.api = new FleetApi(options.baseUrl.replace(/\/+$/, ''), this.logger, 5000, 'demo', options.token ?? null);
    this.tasks = new TaskGroup(this.logger);
    this.repo = new FleetRepo(this.rng);
    this.pipelineDeps = { api: this.api, clock: this.clock, rng: this.rng, claim: (id) => this.claimed.add(id) };
  }

  /** Timers, requests and tasks still alive: all zero once `stop()` has resolved. */
  get activity(): SimulatorActivity {
    return { timers: this.clock.pendingTimers, requests: this.api.requestsInFlight, tasks: this.tasks.size };
  }

  /**
   * Registers the hosts (reusing those that already exist), then starts the simulation in the
   * background. Resolves once the hosts are registered; never rejects.
   */
  start(): Promise<void> {
    this.starting ??= this.tasks.spawn('bootstrap', () => this.bootstrap()) ?? Promise.resolve();
    return this.starting;
  }

  /** Stops every loop and timer, waits for requests in flight, cancels unfinished work. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.clock.stop();
      const hardStop = setTimeout(() => this.api.abortAll(), STOP_GRACE_MS);
      try {
        await this.tasks.drain();
      } finally {
        clearTimeout(hardStop);
      }
      if (this.agents.length > 0) {
        const cancelled = await cancelLeftovers(this.api, new Set(this.agents.map((a) => a.id)), 'demo stopped');
        this.logger.debug('demo simulator stopped', cancelled);
      }
    })();
    return this.stopping;
  }

  private async bootstrap(): Promise<void> {
    const frame = (await this.api.getState()).body;
    const existing = frame?.payload.hosts ?? [];
    const profiles = hostProfiles(this.options.hosts);
    const find = (name: string, hosts: readonly Host[]) => hosts.find((h) => h.id === name) ?? hosts.find((h) => h.hostname === name);

    // Reused hosts keep their generation: make the most common one the head of main.
    const generations = new Map<string, number>();
    for (const profile of profiles) {
      const generation = find(profile.name, existing)?.generation;
      if (generation) generations.set(generation, (generations.get(generation) ?? 0) + 1);
    }
    const common = [...generations].sort((a, b) => b[1] - a[1])[0];
    if (common) this.repo.adoptHead(common[0]);

    const deps = { api: this.api, clock: this.clock, rng: this.rng, repo: this.repo, logger: this.logger };
    for (const profile of profiles) this.agents.push(new HostAgent(profile, deps));
    let reused = 0;
    const conflicts: HostAgent[] = [];
    await inBatches(this.agents, 16, async (agent) => {
      if (this.clock.stopped) return;
      const host = find(agent.profile.name, existing);
      if (host) {
        agent.adopt(host);
        reused++;
      } else if ((await agent.register()) === 'exists') {
        conflicts.push(agent);
      }
    });
    let latest: FullStateMessage | null = frame;
    if (conflicts.length > 0) {
      latest = (await this.api.getState()).body;
      for (const agent of conflicts) {
        const host = find(agent.profile.name, latest?.payload.hosts ?? []);
        if (host) {
          agent.adopt(host);
          reused++;
        }
      }
    }
    if (this.clock.stopped) return;
    // Commands and pipelines an earlier run left running can never finish: cancel them.
    const cancelled = await cancelLeftovers(this.api, new Set(this.agents.map((a) => a.id)), 'interrupted by an earlier demo run', latest);
    const registered = this.agents.filter((a) => a.registered).length;
    this.logger.info('demo fleet ready', { hosts: this.agents.length, registered, reused, cancelledCommands: cancelled.commands, cancelledPipelines: cancelled.pipelines });

    for (const agent of this.agents) this.tasks.spawn(`heartbeat ${agent.id}`, () => agent.run());
    this.tasks.spawn('operator', () => this.operatorLoop());
    this.tasks.spawn('pipelines', () => this.pipelineLoop());
    this.tasks.spawn('commits', () => this.commitLoop());
    this.tasks.spawn('foreign work', () =>
      watchForeignWork({
        api: this.api,
        clock: this.clock,
        tasks: this.tasks,
        agents: new Map(this.agents.map((a) => [a.id, a])),
        isClaimed: (id) => this.claimed.has(id),
        takeOver: (pipeline, agents) => this.takeOverPipeline(pipeline, agents),
      }),
    );
  }

  /** Drives a pipeline someone else created over demo hosts, from the stage it is at. */
  private takeOverPipeline(pipeline: Pipeline, agents: HostAgent[]): void {
    this.claimed.add(pipeline.id);
    this.tasks.spawn(`pipeline ${pipeline.id}`, () => runPipeline(this.pipelineDeps, agents, pipeline));
  }

  /** An operator starting an op on a random idle host every few seconds. */
  private async operatorLoop(): Promise<void> {
    const { clock, rng } = this;
    const n = this.agents.length;
    const spacing = Math.min(1, Math.sqrt(12 / n));
    const maxConcurrent = Math.max(1, Math.ceil(n / 3));
    if (!(await clock.sleep(rng.between(500, 2000)))) return;
    for (;;) {
      const adHoc = this.agents.filter((a) => a.busy && a.reservedBy === null).length;
      const idle = this.agents.filter((a) => a.idle);
      if (idle.length > 0 && adHoc < maxConcurrent) {
        const agent = rng.pick(idle);
        const op = this.suggestOp(agent);
        this.tasks.spawn(`${op} on ${agent.id}`, async () => {
          const result = await agent.runCommand(op);
          this.logger.debug('demo command done', { host: agent.id, op, result });
        });
      }
      if (!(await clock.sleep(rng.between(2000, 7000) * spacing))) return;
    }
  }

  private suggestOp(agent: HostAgent): DemoOp {
    if (agent.gitOutdated && this.rng.chance(0.7)) return this.rng.chance(0.6) ? 'pull-switch' : 'pull';
    if (agent.systemOutdated && this.rng.chance(0.7)) return 'switch';
    const op = this.rng.weighted(AD_HOC_OPS);
    return op === 'rollback' && agent.profile.host_type === 'macos' ? 'switch' : op;
  }

  /** A `do-all` pipeline over 3-6 idle hosts roughly every minute, the first within seconds. */
  private async pipelineLoop(): Promise<void> {
    const { clock, rng } = this;
    if (!(await clock.sleep(rng.between(8000, 15_000)))) return;
    for (;;) {
      const idle = this.agents.filter((a) => a.idle);
      if (idle.length >= Math.min(3, this.agents.length)) {
        const agents = rng.sample(idle, rng.int(3, 6));
        await runPipeline(this.pipelineDeps, agents);
        if (!(await clock.sleep(rng.between(40_000, 80_000)))) return;
      } else if (!(await clock.sleep(5000))) return;
    }
  }

  /** Someone pushes to the fleet's repository now and then; hosts notice on their next check. */
  private async commitLoop(): Promise<void> {
    const { clock, rng } = this;
    if (!(await clock.sleep(rng.between(20_000, 40_000)))) return;
    for (;;) {
      const commit = this.repo.commit();
      await this.api.logEvent({ level: 'info', category: 'git', action: 'push', message: `new commit ${commit.hash} on main: ${commit.message}`, details: { commit: commit.hash } });
      if (!(await clock.sleep(rng.between(45_000, 120_000)))) return;
    }
  }
}

async function inBatches<T>(items: readonly T[], size: number, job: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(job));
}
