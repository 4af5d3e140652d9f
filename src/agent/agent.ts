// The host agent: registers over the link, heartbeats, runs one op at a time and reports its
// output and result so that nothing is lost when the link drops mid-command (numbered lines,
// resent from where the server's `registered` says it stopped). Runs as the CLI (main.ts) or
// many times in one process (the demo): every outside effect comes in through AgentDeps.
import {
  AGENT_OPS,
  encodeAgentMessage,
  type AgentToServer,
  type ServerToAgent,
  SWITCH_OPS,
  type CommandPayload,
  type HeartbeatPayload,
  type KillCommandPayload,
  type RegisteredPayload,
  type StatusPayload,
} from '../protocol/agent-wire.js';
import { createLogger, type Logger } from '../server/logger.js';
import { systemClock, type AgentClock } from './clock.js';
import { CommandRun } from './command-run.js';
import type { AgentConfig } from './config.js';
import { systemHostFacts, type HostFacts, type HostFactsSource } from './host-facts.js';
import { AgentLink, DEFAULT_LINK_TIMING, type LinkTiming } from './link.js';
import { systemMetrics, type MetricsSource } from './metrics.js';
import { processOpRunner, type OpExit, type OpRunnerFactory, type OutputStream } from './op-runner.js';
import { OpUnavailableError, opTableFor } from './ops.js';
import { buildFields, registerPayload } from './register-payload.js';
import { decodeServerMessage } from './server-messages.js';
import { UpdateStatus, type UpdateStatusSource } from './update-status.js';

export interface AgentTiming extends LinkTiming {
  /** Without `registered` this long after `register`, the server is taken for an old one. */
  registeredTimeoutMs: number;
}

export const DEFAULT_AGENT_TIMING: Readonly<AgentTiming> = Object.freeze({ ...DEFAULT_LINK_TIMING, registeredTimeoutMs: 10_000 });

export interface AgentDeps {
  /** Starts ops; default: processes per NIXFLEET_OPS_FILE and the built-in commands. */
  opRunner?: OpRunnerFactory;
  metrics?: MetricsSource;
  /** The heartbeat's `update_status`; default: what this agent's checking ops (test, refresh-*) learnt. */
  updateStatus?: UpdateStatusSource;
  hostFacts?: HostFactsSource;
  clock?: AgentClock;
  /** Backoff jitter. */
  random?: () => number;
  logger?: Logger;
  /**
   * The agent wants to be restarted (after a successful switch, or a `restart` command), its
   * result already written to the socket. The CLI exits with `exitCode`; without a hook the
   * agent simulates a restart in-process: it reconnects and registers afresh.
   */
  onRestartRequested?: (exitCode: number, agent: Agent) => void | Promise<void>;
  timing?: Partial<AgentTiming>;
}

export interface AgentSnapshot {
  connected: boolean;
  /** `registered` arrived on the current socket. */
  registered: boolean;
  hostId: string | null;
  /** The op running now, or null. */
  command: string | null;
  pid: number | null;
  generation: string;
}

/** Bytes waiting in the socket above which output waits (a slow link must not grow memory). */
const OUTPUT_HIGH_WATER_BYTES = 1 << 20;
/** How long after the stop grace close() waits for a stopped op to end. */
const STOP_MARGIN_MS = 3000;
/** Exit code reported for an op that could not be started (unknown, disabled, misconfigured). */
const NOT_RUN_EXIT_CODE = 127;

export class Agent {
  private readonly link: AgentLink;
  private readonly logger: Logger;
  private readonly clock: AgentClock;
  private readonly metrics: MetricsSource;
  private readonly hostFacts: HostFactsSource;
  private readonly opRunner: OpRunnerFactory;
  private readonly timing: AgentTiming;
  /** What the checking ops this agent ran found; reported unless deps.updateStatus replaces it. */
  private readonly learnt = new UpdateStatus();
  private readonly updateStatus: UpdateStatusSource;
  private facts: HostFacts = { os_version: '', nixpkgs_version: '', generation: '' };
  /** A generation an op runner reported; it wins over the facts from then on. */
  private generationOverride: string | null = null;
  /** The current run, or the last one until the next starts. */
  private run: CommandRun | null = null;
  private ready = false;
  private hostId: string | null = null;
  private started = false;
  private closed = false;
  private restarting = false;
  private cancelHeartbeat: (() => void) | null = null;
  private cancelRegisteredWait: (() => void) | null = null;
  private pumpScheduled = false;

  constructor(
    readonly config: AgentConfig,
    private readonly deps: AgentDeps = {},
  ) {
    this.logger = deps.logger ?? createLogger(config.logLevel);
    this.clock = deps.clock ?? systemClock;
    this.metrics = deps.metrics ?? systemMetrics();
    this.hostFacts = deps.hostFacts ?? systemHostFacts(config);
    this.updateStatus = deps.updateStatus ?? this.learnt;
    // The configured keepalive, unless a caller (a test) sets the timing itself.
    this.timing = { ...DEFAULT_AGENT_TIMING, pingIntervalMs: config.pingIntervalMs, deadAfterMs: config.deadAfterMs, ...deps.timing };
    this.opRunner =
      deps.opRunner ??
      processOpRunner({
        table: opTableFor(config),
        vars: { repo_dir: config.repoDir, repo_url: config.repoUrl, hostname: config.hostname, branch: config.branch },
        stopGraceMs: config.stopGraceMs,
      });
    this.link = new AgentLink(
      { url: config.url, token: config.token, logger: this.logger, clock: this.clock, random: deps.random ?? Math.random, timing: this.timing },
      { open: () => this.onOpen(), message: (text) => this.onMessage(text), down: () => this.onDown() },
    );
  }

  /** Reads the host facts, then connects and keeps the link up until close(). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.refreshFacts();
    if (this.closed) return;
    this.link.start();
    this.scheduleHeartbeat();
  }

  /** Stops the running op (its result is sent if the link is up), then closes the socket with 1000. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancelHeartbeat?.();
    this.cancelRegisteredWait?.();
    const running = this.currentRun();
    if (running) {
      this.stopRun(running);
      // SIGKILL follows the grace; a process that survives even that must not hold the agent.
      const waited = await this.within(running.ended, this.config.stopGraceMs + STOP_MARGIN_MS);
      if (!waited) this.logger.error('the op did not end after SIGKILL; closing anyway', { op: running.op, pid: running.pid });
    }
    await this.link.close(1000, 'agent stopping');
  }

  get snapshot(): AgentSnapshot {
    const running = this.currentRun();
    return {
      connected: this.link.isOpen,
      registered: this.ready,
      hostId: this.hostId,
      command: running?.op ?? null,
      pid: running?.pid ?? null,
      generation: this.generation,
    };
  }

  /** The in-process restart: a clean close and a fresh `register` (with the current facts). */
  async simulateRestart(): Promise<void> {
    await this.refreshFacts();
    // A restarted agent remembers no finished command (a running one was stopped before).
    if (!this.currentRun()) this.run = null;
    this.ready = false;
    this.restarting = false;
    this.link.reconnectNow('agent restarting');
  }

  // ── link ───────────────────────────────────────────────────────────────────────────────────

  private onOpen(): void {
    this.ready = false;
    this.send('register', registerPayload(this.config, { ...this.facts, generation: this.generation }));
    this.cancelRegisteredWait?.();
    this.cancelRegisteredWait = this.clock.after(this.timing.registeredTimeoutMs, () => {
      this.cancelRegisteredWait = null;
      if (this.ready || !this.link.isOpen) return;
      this.logger.warn('no `registered` from the server: taking it for one without resend support', { waited_ms: this.timing.registeredTimeoutMs });
      this.onRegistered({ host_id: '' });
    });
  }

  private onDown(): void {
    this.ready = false;
    this.cancelRegisteredWait?.();
    this.cancelRegisteredWait = null;
  }

  private onMessage(text: string): void {
    const message = decodeServerMessage(text);
    switch (message.type) {
      case 'registered':
        this.onRegistered(message.payload);
        return;
      case 'command':
        this.onCommand(message.payload);
        return;
      case 'kill_command':
        this.onKillCommand(message.payload);
        return;
      case 'ignored':
        this.logger.debug('ignored a message from the server', { reason: message.reason });
        return;
      default: {
        const unhandled: never = message;
        throw new Error(`unhandled server message ${JSON.stringify(unhandled)}`);
      }
    }
  }

  /**
   * The server acknowledged `register`. With our extension fields it says which command it
   * considers unfinished and the last output line it stored: lines after that are resent, and
   * a result it lacks is sent again. Nothing goes out before this, so resent and new lines stay
   * in order.
   */
  private onRegistered(payload: RegisteredPayload): void {
    if (this.ready) return;
    this.ready = true;
    this.cancelRegisteredWait?.();
    this.cancelRegisteredWait = null;
    this.hostId = payload.host_id || this.hostId;
    this.logger.info('registered', { host_id: payload.host_id, command: payload.command, output_seq: payload.output_seq });

    const run = this.run;
    let resendStatus = false;
    if (run) {
      const extension = payload.command !== undefined || payload.output_seq !== undefined;
      if (!extension) {
        // An old server keeps no seq: lines or a result the last socket may have delivered are
        // not resent (they could arrive twice). Only what never reached any socket goes out.
        run.sentSeq = run.handedSeq;
        resendStatus = run.finished && !run.statusHanded;
      } else if (sameCommand(payload, run) && !run.statusConfirmed) {
        run.sentSeq = Math.min(payload.output_seq ?? 0, run.output.lastSeq);
        resendStatus = run.finished;
      } else if (run.finished) {
        // The server does not (or no longer) consider this op unfinished: it has the result.
        run.sentSeq = run.output.lastSeq;
        run.statusConfirmed = true;
      } else {
        // A live op the server does not name (it gave up on it, or lost it): nothing is resent,
        // but lines no socket had yet still go out, and the heartbeat says what runs.
        run.sentSeq = run.handedSeq;
      }
    }
    this.pumpOutput();
    if (run && resendStatus) {
      this.sendStatus(run);
      return;
    }
    this.sendHeartbeat();
    // A switch whose result the server already has: the restart is still due.
    if (run?.finished && run.restartCode !== null && (run.statusConfirmed || run.statusHanded)) this.requestRestart(run.restartCode, `${run.op} succeeded`);
  }

  // ── commands ───────────────────────────────────────────────────────────────────────────────

  private onCommand({ command: op, command_id }: CommandPayload): void {
    this.logger.info('command received', { op, command_id });
    if (op === 'stop') {
      const running = this.currentRun();
      if (running) this.stopRun(running);
      else {
        // As the Go agent: a `status` for the op `stop` says there was nothing to stop, so the
        // server can end a command it asked to stop that never ran here.
        this.logger.info('stop: no command is running');
        this.send('status', { status: 'ok', command: 'stop', exit_code: 0, message: 'no command running' });
        this.sendHeartbeat();
      }
      return;
    }
    if (op === 'restart') {
      void this.restartOnRequest();
      return;
    }
    if (!(AGENT_OPS as readonly string[]).includes(op)) {
      this.refuse(op, `unknown op "${op}"`);
      return;
    }
    const running = this.currentRun();
    if (running && op === 'reboot') {
      // A reboot goes ahead of a running op: stop it (its result is reported), then reboot.
      this.stopRun(running);
      void running.ended.then(() => this.startOp(op, command_id ?? null));
      return;
    }
    if (running) {
      this.logger.info('command rejected: another is running', { op, current: running.op });
      this.send('command_rejected', { reason: 'command already running', current_command: running.op, current_pid: running.pid ?? 0 });
      return;
    }
    this.startOp(op, command_id ?? null);
  }

  private onKillCommand({ signal, pid }: KillCommandPayload): void {
    const running = this.currentRun();
    if (!running || (pid !== 0 && pid !== running.pid)) {
      // Never signal a pid that is not our command's: the server names one, we check it.
      this.logger.warn('kill_command for no running command of ours', { signal, pid, current_pid: running?.pid ?? null });
      return;
    }
    this.logger.info('kill_command', { signal, op: running.op, pid: running.pid });
    running.handle?.kill(signal);
  }

  private startOp(op: string, commandId: string | null): void {
    if (this.closed) return;
    const run = new CommandRun(op, this.config.outputBufferLines, commandId);
    try {
      run.handle = this.opRunner({ op, onLine: (line, stream) => this.onLine(run, line, stream) });
    } catch (error) {
      const reason = error instanceof OpUnavailableError ? error.message : `cannot start ${op}: ${(error as Error).message}`;
      this.refuse(op, reason);
      return;
    }
    this.run = run;
    this.logger.info('op started', { op, pid: run.pid });
    // The start acknowledgement: the server learns the op runs, and its pid, before any line.
    this.sendHeartbeat();
    run.announced = true;
    this.pumpOutput();
    run.handle.done.then(
      (exit) => this.finishRun(run, exit),
      (error: unknown) => this.finishRun(run, { exitCode: 1, signal: null, stopped: run.stopRequested, message: `the op runner failed: ${(error as Error).message}` }),
    );
  }

  private stopRun(run: CommandRun): void {
    this.logger.info('stopping op', { op: run.op, pid: run.pid, grace_ms: this.config.stopGraceMs });
    run.stopRequested = true;
    run.handle?.stop();
  }

  private async finishRun(run: CommandRun, exit: OpExit): Promise<void> {
    if (exit.generation) this.generationOverride = exit.generation;
    // The op may have moved the clone (pull) or the system (switch): report the new facts.
    await this.refreshFacts();
    const stopped = exit.stopped || run.stopRequested;
    const ok = exit.exitCode === 0 && !stopped;
    const message = stopped ? (exit.message ?? 'stopped') : (exit.message ?? (ok ? undefined : `exit code ${exit.exitCode}`));
    const status: StatusPayload = { status: ok ? 'ok' : 'error', command: run.op, exit_code: exit.exitCode };
    if (message !== undefined) status.message = message;
    if (this.generation) status.generation = this.generation;
    // A checking op's verdict is its last line ("3 of 4 tests passed"), else how it ended.
    this.learnt.record(run.op, exit.exitCode, lastLineOf(run) || message || '', new Date(this.clock.now()));
    if (ok && SWITCH_OPS.includes(run.op) && this.config.restartAfterSwitch === 'exit') run.restartCode = this.config.restartExitCode;
    run.finish(status);
    this.logger.info('op finished', { op: run.op, exit_code: exit.exitCode, status: status.status, lines: run.output.lastSeq, ...(stopped ? { stopped: true } : {}) });
    // While the link is down the result waits for the next `registered`.
    if (this.ready && run === this.run) this.sendStatus(run);
  }

  /** A `status error` for an op that did not run (unknown, disabled, cannot start). */
  private refuse(op: string, reason: string): void {
    this.logger.warn('op refused', { op, reason });
    this.send('status', { status: 'error', command: op, exit_code: NOT_RUN_EXIT_CODE, message: reason });
    this.sendHeartbeat();
  }

  /** `restart`: stop a running op (reporting it), confirm, then restart once that is written. */
  private async restartOnRequest(): Promise<void> {
    const running = this.currentRun();
    if (running) {
      this.stopRun(running);
      await running.ended;
    }
    const written = this.send('status', { status: 'ok', command: 'restart', exit_code: 0 }, () => this.requestRestart(this.config.restartExitCode, 'restart requested'));
    if (!written) this.requestRestart(this.config.restartExitCode, 'restart requested');
  }

  private requestRestart(exitCode: number, why: string): void {
    if (this.restarting || this.closed) return;
    this.restarting = true;
    if (this.run) this.run.restartCode = null;
    this.logger.info('restarting the agent', { why, exit_code: exitCode });
    const hook = this.deps.onRestartRequested;
    void Promise.resolve(hook ? hook(exitCode, this) : this.simulateRestart()).catch((error: unknown) => {
      this.logger.error('the restart hook failed', { error: (error as Error).message });
    });
  }

  // ── sending ────────────────────────────────────────────────────────────────────────────────

  private onLine(run: CommandRun, line: string, stream: OutputStream): void {
    const { droppedOldest } = run.output.push({ line, stream, command: run.op, is_error: stream === 'stderr' });
    if (droppedOldest && !run.warnedAboutDroppedLines) {
      run.warnedAboutDroppedLines = true;
      this.logger.warn('output buffer full: dropping the oldest lines of this command until it can send them', { op: run.op, limit: run.output.capacity });
    }
    if (run === this.run) this.pumpOutput();
  }

  /** Sends the lines the current socket has not had yet, in seq order, pausing on a full socket. */
  private pumpOutput(): void {
    const run = this.run;
    if (!run || !run.announced || !this.ready) return;
    while (run.sentSeq < run.output.lastSeq) {
      if (this.link.bufferedAmount > OUTPUT_HIGH_WATER_BYTES) {
        if (!this.pumpScheduled) {
          this.pumpScheduled = true;
          this.clock.after(20, () => {
            this.pumpScheduled = false;
            this.pumpOutput();
          });
        }
        return;
      }
      const seq = Math.max(run.sentSeq + 1, run.output.firstSeq);
      const payload = run.output.get(seq);
      if (!payload || !this.send('output', payload)) return;
      run.sentSeq = seq;
      run.handedSeq = Math.max(run.handedSeq, seq);
    }
  }

  /** The run's result, then a heartbeat; a due restart follows once both are written. */
  private sendStatus(run: CommandRun): void {
    if (!run.status || !this.send('status', run.status)) return;
    run.statusHanded = true;
    const restartCode = run.restartCode;
    if (restartCode === null) this.sendHeartbeat();
    else this.sendHeartbeat(() => this.requestRestart(restartCode, `${run.op} succeeded`));
  }

  private sendHeartbeat(onWritten?: () => void): void {
    if (!this.ready) return;
    const running = this.currentRun();
    const payload: HeartbeatPayload = {
      generation: this.generation,
      nixpkgs_version: this.facts.nixpkgs_version,
      pending_command: running?.op ?? null,
      command_pid: running?.pid ?? null,
      metrics: this.metrics.sample(),
      update_status: this.updateStatus.payload(),
      ...buildFields(this.facts),
    };
    this.send('heartbeat', payload, onWritten);
  }

  private scheduleHeartbeat(): void {
    this.cancelHeartbeat = this.clock.after(this.config.heartbeatIntervalMs, () => {
      if (this.closed) return;
      this.sendHeartbeat();
      this.scheduleHeartbeat();
    });
  }

  private send<T extends keyof AgentToServer>(type: T, payload: (AgentToServer & ServerToAgent)[T], onWritten?: () => void): boolean {
    return this.link.send(encodeAgentMessage(type, payload), onWritten ? (error) => (error ? undefined : onWritten()) : undefined);
  }

  private get generation(): string {
    return this.generationOverride ?? this.facts.generation;
  }

  /** True when `promise` settled within `ms`. */
  private within(promise: Promise<unknown>, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const cancel = this.clock.after(ms, () => resolve(false));
      void promise.then(() => {
        cancel();
        resolve(true);
      });
    });
  }

  private currentRun(): CommandRun | null {
    return this.run && !this.run.finished ? this.run : null;
  }

  private async refreshFacts(): Promise<void> {
    try {
      this.facts = await this.hostFacts();
    } catch (error) {
      this.logger.warn('cannot read the host facts', { error: (error as Error).message });
    }
  }
}

/** Starts an agent; resolves once it is connecting. */
export async function startAgent(config: AgentConfig, deps: AgentDeps = {}): Promise<Agent> {
  const agent = new Agent(config, deps);
  await agent.start();
  return agent;
}

function lastLineOf(run: CommandRun): string {
  return run.output.get(run.output.lastSeq)?.line ?? '';
}

/**
 * Whether the command a `registered` names is this run: by the server's id when both sides know
 * it (two runs of one op cannot be confused), else by the op name.
 */
function sameCommand(payload: RegisteredPayload, run: CommandRun): boolean {
  if (typeof payload.command_id === 'string' && run.commandId !== null) return payload.command_id === run.commandId;
  return payload.command === run.op;
}
