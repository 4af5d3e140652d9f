// The demo fleet: N simulated hosts, each the real agent with an agent token of its own (a new
// host is created by its agent's first `register`; a second run on the same store reuses the
// hosts, matched by hostname), an operator who runs ops and now and then stops one through the
// HTTP API, `do-all` pipelines, and now and then a new commit to the fleet's repository, all
// paced by `speed`. stop() ends every loop, op process, agent and token it started.
import { silentLogger, type Logger, type NixFleetServer } from '../server/index.js';
import type { Host } from '../protocol/schema.js';
import { FleetApi } from './api-client.js';
import { SimClock } from './clock.js';
import { FleetRepo } from './fleet-repo.js';
import { FleetView } from './fleet-view.js';
import { cancelLeftovers } from './leftovers.js';
import { hostProfiles } from './names.js';
import { idleHosts, operatorLoop } from './operator.js';
import { DEFAULT_SIMULATOR, writeOpsFile, type OpsFile } from './ops-file.js';
import { runPipeline, type PipelineDeps } from './pipeline-runner.js';
import { Rng, type RandomSource } from './random.js';
import { SimulatedHost } from './simulated-host.js';
import { TaskGroup } from './tasks.js';

/** What the fleet needs of the server: where to connect, and its auth service to issue tokens. */
export interface DemoFleetServer {
  url: string;
  wsUrl: string;
  auth: Pick<NixFleetServer['auth'], 'createToken' | 'revokeToken' | 'listTokens'>;
}

export interface DemoFleetOptions {
  server: DemoFleetServer;
  /** Number of hosts (1..500). */
  hosts: number;
  /** Time multiplier: 10 makes every interval and op ten times shorter. Default 1. */
  speed?: number;
  random?: RandomSource;
  logger?: Logger;
  /** One fail rate for every simulated op instead of each op's usual one (tests use 0). */
  failRate?: number;
  /** Path of the op simulator (default: simulated-op.js beside this module, i.e. in dist/). */
  simulator?: string;
}

export interface FleetActivity {
  timers: number;
  requests: number;
  tasks: number;
}

/** The `created_by` of every token the demo issues, so a later run can revoke what a killed one left. */
const TOKEN_CREATOR = 'demo';
/** After a stop, requests still waiting this long (real time) are aborted. */
const STOP_GRACE_MS = 3000;
/** A real agent's heartbeat interval, scaled by the speed. */
const HEARTBEAT_MS = 5000;
/** But agents beat at least this far apart: a loaded machine must not take them for silent. */
const MIN_HEARTBEAT_MS = 1000;
/** And a large fleet spreads its heartbeats to at most this many a second. */
const MAX_HEARTBEATS_PER_SECOND = 400;

export class DemoFleet {
  readonly hosts: SimulatedHost[] = [];
  private readonly clock: SimClock;
  private readonly rng: Rng;
  private readonly repo: FleetRepo;
  private readonly tasks: TaskGroup;
  private readonly logger: Logger;
  private readonly auth: DemoFleetServer['auth'];
  /** Token ids to revoke at stop: the operator's and each host's (by host id). */
  private operatorTokenId: string | null = null;
  private readonly agentTokenIds = new Map<string, string>();
  /** Pipelines the demo drives (its own and those it took over), and the hosts they hold. */
  private readonly reserved = new Set<string>();
  private api: FleetApi | null = null;
  private view: FleetView | null = null;
  private opsFile: OpsFile | null = null;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;

  constructor(private readonly options: DemoFleetOptions) {
    if (!Number.isInteger(options.hosts) || options.hosts < 1 || options.hosts > 500) throw new RangeError(`hosts must be a whole number from 1 to 500, got ${options.hosts}`);
    this.logger = options.logger ?? silentLogger;
    this.rng = new Rng(options.random ?? Math.random);
    this.clock = new SimClock(options.speed ?? 1);
    this.repo = new FleetRepo(this.rng);
    this.tasks = new TaskGroup(this.logger);
    this.auth = options.server.auth;
  }

  /** Loops, timers and requests still alive: all zero once `stop()` has resolved. */
  get activity(): FleetActivity {
    return { timers: this.clock.pendingTimers, requests: this.api?.requestsInFlight ?? 0, tasks: this.tasks.size };
  }

  host(id: string): SimulatedHost | undefined {
    return this.hosts.find((host) => host.id === id);
  }

  /** Issues the tokens, starts the agents and the loops. Resolves once they run; rejects if the fleet cannot start. */
  start(): Promise<void> {
    this.starting ??= this.bootstrap();
    return this.starting;
  }

  /** Stops the loops, the commands on its hosts, the agents (and their op processes); revokes its tokens. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.teardown();
    return this.stopping;
  }

  private async bootstrap(): Promise<void> {
    const { server } = this.options;
    await this.revokeStaleTokens();
    const operator = await this.auth.createToken({ name: 'demo operator', role: 'operator' }, TOKEN_CREATOR);
    this.operatorTokenId = operator.id;
    this.api = new FleetApi(server.url.replace(/\/+$/, ''), this.logger, 5000, operator.token);
    this.view = new FleetView(server.wsUrl, operator.token);
    await this.view.start();
    if (this.clock.stopped) return;

    const existing = [...this.view.state.hosts.values()];
    const profiles = hostProfiles(this.options.hosts);
    const hostOf = (name: string) => existing.find((h) => h.hostname.toLowerCase() === name);
    this.adoptFleetHead(profiles.map((p) => hostOf(p.name)).filter((h): h is Host => h !== undefined));

    const speed = this.clock.speed;
    this.opsFile = writeOpsFile({ simulator: this.options.simulator ?? DEFAULT_SIMULATOR, speed, ...(this.options.failRate !== undefined ? { failRate: this.options.failRate } : {}) });
    const heartbeatMs = Math.round(Math.max(HEARTBEAT_MS / speed, MIN_HEARTBEAT_MS, (profiles.length * 1000) / MAX_HEARTBEATS_PER_SECOND));
    const deps = { wsUrl: server.wsUrl, opsFile: this.opsFile.path, heartbeatMs, clock: this.clock, rng: this.rng, repo: this.repo, tasks: this.tasks, logger: this.logger };
    for (const profile of profiles) {
      const host = hostOf(profile.name) ?? null;
      // Bound to the existing host, or to the id its agent's first `register` creates (one no
      // other host has: a token bound to another's id could never register this hostname).
      let id = host?.id ?? profile.name;
      for (let n = 2; !host && existing.some((h) => h.id === id); n++) id = `${profile.name}-${n}`;
      const token = await this.auth.createToken({ name: `demo agent ${profile.name}`, role: 'agent', hostId: id }, TOKEN_CREATOR);
      this.agentTokenIds.set(id, token.id);
      this.hosts.push(new SimulatedHost(profile, id, token.token, deps, host));
    }
    this.view.onHostRemoved((id) => this.hostRemoved(id));
    const reused = this.hosts.filter((h) => hostOf(h.profile.name)).length;
    this.logger.info('demo fleet starting', { hosts: this.hosts.length, reused, heartbeat_ms: heartbeatMs, ops_file: this.opsFile.path });
    if (this.clock.stopped) return;

    for (const host of this.hosts) host.start();
    const hostIds = new Set(this.hosts.map((h) => h.id));
    const view = this.view;
    const api = this.api;
    const pipelineDeps: PipelineDeps = { api, view, clock: this.clock, rng: this.rng, reserved: this.reserved };
    this.tasks.spawn('operator', () => operatorLoop({ api, view, clock: this.clock, rng: this.rng, hostIds, reserved: this.reserved }));
    this.tasks.spawn('pipelines', () => this.pipelineLoop(pipelineDeps, hostIds));
    this.tasks.spawn('commits', () => this.commitLoop(api));
  }

  private async teardown(): Promise<void> {
    this.clock.stop();
    this.view?.stopWaiting();
    await this.starting?.catch(() => {});
    const hardStop = setTimeout(() => this.api?.abortAll(), STOP_GRACE_MS);
    try {
      await this.tasks.drain();
      if (this.api && this.view && this.hosts.length > 0) {
        const ended = await cancelLeftovers(this.api, this.view, new Set(this.hosts.map((h) => h.id)));
        this.logger.debug('demo leftovers ended', ended);
      }
    } finally {
      clearTimeout(hardStop);
    }
    // Each agent stops its op's process (and waits for it) before it closes its socket.
    await Promise.all(this.hosts.map((host) => host.retire()));
    this.view?.close();
    const tokens = [...this.agentTokenIds.values(), ...(this.operatorTokenId ? [this.operatorTokenId] : [])];
    await Promise.all(tokens.map((id) => this.auth.revokeToken(id).catch(() => {})));
    this.opsFile?.remove();
  }

  /** Tokens an earlier demo run issued and could not revoke (it was killed): nobody holds their secrets. */
  private async revokeStaleTokens(): Promise<void> {
    const stale = this.auth.listTokens().filter((t) => t.createdBy === TOKEN_CREATOR && t.revokedAt === null);
    await Promise.all(stale.map((t) => this.auth.revokeToken(t.id).catch(() => {})));
  }

  /** Reused hosts keep their generation: the most common one becomes the head of main. */
  private adoptFleetHead(reused: readonly Host[]): void {
    const generations = new Map<string, number>();
    for (const host of reused) if (host.generation) generations.set(host.generation, (generations.get(host.generation) ?? 0) + 1);
    const common = [...generations].sort((a, b) => b[1] - a[1])[0];
    if (common) this.repo.adoptHead(common[0]);
  }

  /** Someone removed a demo host (its agent tokens end with it): its agent stops for good. */
  private hostRemoved(id: string): void {
    const host = this.host(id);
    if (!host) return;
    this.tasks.spawn(`retire ${id}`, () => host.retire());
    this.logger.info('a demo host was removed; its agent stops', { host: id });
  }

  /** A `do-all` pipeline over 3-6 idle hosts roughly every minute, the first within seconds. */
  private async pipelineLoop(deps: PipelineDeps, hostIds: ReadonlySet<string>): Promise<void> {
    const { clock, rng } = this;
    if (!(await clock.sleep(rng.between(8000, 15_000)))) return;
    for (;;) {
      const idle = idleHosts({ view: deps.view, hostIds, reserved: this.reserved });
      if (idle.length >= Math.min(3, hostIds.size)) {
        await runPipeline(deps, rng.sample(idle, rng.int(3, 6)).map((h) => h.id));
        if (!(await clock.sleep(rng.between(40_000, 80_000)))) return;
      } else if (!(await clock.sleep(5000))) return;
    }
  }

  /** Someone pushes to the fleet's repository now and then; the hosts' git checks show it. */
  private async commitLoop(api: FleetApi): Promise<void> {
    const { clock, rng } = this;
    if (!(await clock.sleep(rng.between(20_000, 40_000)))) return;
    for (;;) {
      const commit = this.repo.commit();
      await api.logEvent({ level: 'info', category: 'git', action: 'push', message: `new commit ${commit.hash} on main: ${commit.message}`, details: { commit: commit.hash } });
      if (!(await clock.sleep(rng.between(45_000, 120_000)))) return;
    }
  }
}
