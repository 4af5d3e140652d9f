// One simulated host: the real agent (src/agent) with the host's own agent token, on a real
// socket to the server, whose ops run the op simulator as processes (the ops file) and whose
// metrics, checks and generation come from the simulation. Now and then its agent goes away, as
// a killed agent process would, and a new one comes back; a reboot takes it away for a while.
import { Agent, opTableFor, parseAgentConfig, processOpRunner, type AgentConfig, type AgentDeps, type OpExit, type OpRunnerFactory, type OpStart, type OpTable, type RunningOp } from '../agent/index.js';
import type { Host, Metrics } from '../protocol/schema.js';
import type { Logger } from '../server/index.js';
import type { SimClock } from './clock.js';
import type { FleetRepo } from './fleet-repo.js';
import { HostChecks, type OpPlan } from './host-checks.js';
import { initialMetrics, nextMetrics, type Activity } from './metrics.js';
import type { HostProfile } from './names.js';
import type { Rng } from './random.js';
import type { TaskGroup } from './tasks.js';

export interface SimulatedHostDeps {
  /** The server's /ws. */
  wsUrl: string;
  opsFile: string;
  /** Real milliseconds between heartbeats. */
  heartbeatMs: number;
  clock: SimClock;
  rng: Rng;
  repo: FleetRepo;
  tasks: TaskGroup;
  logger: Logger;
}

/** Demo time within which the agents of a starting fleet come up, one by one. */
const STARTUP_SPREAD_MS = 3000;
/** Demo time between two looks at whether an idle host's agent goes away. */
const LOOK_EVERY_MS = 5000;
/** Chance per look that it does: once in 15 minutes of demo time per host. */
const OFFLINE_CHANCE = 1 / 180;
/** How long a lost agent stays away, and a rebooting host, in demo time. */
const AWAY_MS: readonly [number, number] = [20_000, 60_000];
const REBOOT_MS: readonly [number, number] = [15_000, 30_000];
/** Ops that build a system: the host works hard meanwhile. */
const BUILDS: readonly string[] = ['switch', 'pull-switch', 'rollback'];

const OS_VERSIONS = { nixos: 'NixOS 24.11 (Vicuna)', macos: 'macOS 15.1.1' } as const;
const NIXPKGS_VERSION = '24.11.20241126.5083ec8';

export class SimulatedHost {
  private agent: Agent | null = null;
  private readonly config: AgentConfig;
  private readonly agentDeps: AgentDeps;
  private readonly opTable: OpTable;
  private readonly checks: HostChecks;
  private metrics: Metrics;
  private activity: Activity = 'idle';
  /** The offline spell under way. */
  private away: Promise<void> | null = null;
  private retired = false;

  constructor(
    readonly profile: HostProfile,
    /** The host's id in the store: the profile's name, or the id of the existing host of that name. */
    readonly id: string,
    token: string,
    private readonly deps: SimulatedHostDeps,
    existing: Host | null = null,
  ) {
    this.checks = new HostChecks(deps.repo, deps.rng);
    if (existing) this.checks.adopt(existing);
    this.metrics = existing?.metrics ?? initialMetrics(profile, deps.rng);
    this.config = parseAgentConfig(
      {
        NIXFLEET_URL: deps.wsUrl,
        NIXFLEET_TOKEN: token,
        // `register` must name the host exactly as the store has it.
        NIXFLEET_HOSTNAME: existing?.hostname ?? profile.name,
        NIXFLEET_INTERVAL: String(deps.heartbeatMs / 1000),
        NIXFLEET_OPS_FILE: deps.opsFile,
        NIXFLEET_DEVICE_TYPE: profile.role,
      },
      profile.host_type === 'macos' ? 'darwin' : 'linux',
    );
    this.opTable = opTableFor(this.config);
    this.agentDeps = {
      opRunner: (start) => this.runOp(start),
      metrics: { sample: () => (this.metrics = nextMetrics(this.metrics, profile, this.activity, deps.rng)) },
      updateStatus: { payload: () => this.checks.updateStatus(new Date()) },
      hostFacts: () => ({ os_version: OS_VERSIONS[profile.host_type], nixpkgs_version: NIXPKGS_VERSION, generation: this.checks.systemCommit }),
      logger: agentLogger(deps.logger, this.config.hostname),
    };
  }

  get hostname(): string {
    return this.config.hostname;
  }

  /** Its agent is connected and runs no op. */
  get idle(): boolean {
    const snapshot = this.agent?.snapshot;
    return snapshot !== undefined && snapshot.registered && snapshot.command === null;
  }

  /** Starts its agent (within the first seconds of the demo), then lives until the demo stops. */
  start(): void {
    this.deps.tasks.spawn(`host ${this.id}`, () => this.live());
  }

  /**
   * Its agent goes away, as a killed agent process would (the server takes the host offline),
   * and a new one starts `simulatedMs` later. Resolves once that one started, or the demo stopped;
   * while it is away already, once that spell ends.
   */
  goAway(simulatedMs: number): Promise<void> {
    if (this.retired) return Promise.resolve();
    this.away ??= (async () => {
      try {
        const agent = this.agent;
        this.agent = null;
        await agent?.close();
        this.activity = 'idle';
        if (await this.deps.clock.sleep(simulatedMs)) await this.connect();
      } finally {
        this.away = null;
      }
    })();
    return this.away;
  }

  /** Its agent stops for good (the demo stops, or the host was removed), stopping a running op's process. */
  async retire(): Promise<void> {
    this.retired = true;
    const agent = this.agent;
    this.agent = null;
    await agent?.close();
  }

  private async live(): Promise<void> {
    const { clock, rng } = this.deps;
    if (!(await clock.sleep(rng.between(0, STARTUP_SPREAD_MS)))) return;
    await this.connect();
    while (await clock.sleep(rng.jitter(LOOK_EVERY_MS, 0.2))) {
      if (this.retired) return;
      if (this.idle && rng.chance(OFFLINE_CHANCE)) await this.goAway(rng.between(...AWAY_MS));
    }
  }

  /** A new agent, as a fresh process: it registers and reports from scratch. */
  private async connect(): Promise<void> {
    if (this.retired) return;
    const agent = new Agent(this.config, this.agentDeps);
    this.agent = agent;
    await agent.start();
  }

  /** The agent's op runner: the ops file's process, with the simulation told where it starts and ends. */
  private runOp(start: OpStart): RunningOp {
    const plan = this.checks.plan(start.op);
    // Only what the simulator needs: nothing of the demo's own environment reaches its ops.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NIXFLEET_SIM_FROM: plan.from, NIXFLEET_SIM_TO: plan.to, NIXFLEET_SIM_HOST_TYPE: this.profile.host_type };
    const runner: OpRunnerFactory = processOpRunner({ table: this.opTable, vars: { repo_dir: '', repo_url: '', hostname: this.hostname, branch: 'main' }, stopGraceMs: this.config.stopGraceMs, env });
    const running = runner(start);
    this.checks.begin(start.op);
    this.activity = BUILDS.includes(start.op) ? 'build' : 'light';
    // Settled before the agent sees the end, so the status and heartbeat it sends then carry the
    // new generation and checks.
    const done = running.done.then((exit) => {
      this.ended(start.op, exit, plan);
      return exit;
    });
    return { pid: running.pid, done, stop: () => running.stop(), kill: (signal) => running.kill(signal) };
  }

  private ended(op: string, exit: OpExit, plan: OpPlan): void {
    const outcome = exit.stopped ? null : exit.exitCode === 0 ? 'success' : 'error';
    this.checks.end(op, outcome, plan);
    this.activity = 'idle';
    if (op === 'reboot' && outcome === 'success') this.deps.tasks.spawn(`reboot ${this.id}`, () => this.reboot());
  }

  /** The machine goes down a moment after its agent reported the reboot, and is back later. */
  private async reboot(): Promise<void> {
    const { clock, rng } = this.deps;
    if (await clock.sleep(rng.between(500, 1500))) await this.goAway(rng.between(...REBOOT_MS));
  }
}

/**
 * An agent's routine (connecting, ops, restarts, its own closes) is the demo's debug output; only
 * its errors (a refused token) reach the demo's warnings.
 */
function agentLogger(logger: Logger, host: string): Logger {
  return {
    debug: (msg, fields) => logger.debug(msg, { host, ...fields }),
    info: (msg, fields) => logger.debug(msg, { host, ...fields }),
    warn: (msg, fields) => logger.debug(msg, { host, ...fields }),
    error: (msg, fields) => logger.warn(msg, { host, ...fields }),
  };
}
