// Runs one op as a child process in its own process group and streams its output line by line.
// Stopping signals the whole group (SIGTERM, SIGKILL after a grace), so a build's grandchildren
// go with it. What to run comes from ops.ts; the agent only sees the OpRunnerFactory interface,
// so the demo can run ops without processes.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { LineSplitter } from './line-splitter.js';
import { groupRunning, signalGroup } from './process-group.js';
import { resolveOpCommand, type OpTable, type OpVariables } from './ops.js';

export type OutputStream = 'stdout' | 'stderr';

export interface OpExit {
  /** The exit code; 128+n for a process ended by signal n, 130 when our stop() ended it. */
  exitCode: number;
  /** The signal that ended the process, if one did. */
  signal: NodeJS.Signals | null;
  /** The agent's stop() asked it to end. */
  stopped: boolean;
  /** Why it ended, when the exit code does not say (it could not be started, …). */
  message?: string;
  /** Set by a runner that knows the generation the op produced (a simulated switch). */
  generation?: string;
}

export interface RunningOp {
  /** The child's pid (and process group id), or null when it could not be started. */
  readonly pid: number | null;
  /** Settles once the process and its output have ended (and, after stop(), its whole group). */
  readonly done: Promise<OpExit>;
  /** SIGTERM to the process group, SIGKILL after the grace. Idempotent. */
  stop(): void;
  /** Sends `signal` to the process group. */
  kill(signal: NodeJS.Signals): void;
}

export interface OpStart {
  op: string;
  /** Called for each output line (no newline). Never called synchronously from the factory. */
  onLine(line: string, stream: OutputStream): void;
}

/** Starts an op; throws OpUnavailableError (ops.ts) when this host cannot run it. */
export type OpRunnerFactory = (start: OpStart) => RunningOp;

export interface ProcessOpRunnerOptions {
  table: OpTable;
  vars: OpVariables;
  stopGraceMs: number;
  /** Environment of the child; the agent's own by default. NIXFLEET_OP is added. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** The real runner: resolves the op to a command (ops.ts) and runs it as a process. */
export function processOpRunner(options: ProcessOpRunnerOptions): OpRunnerFactory {
  return ({ op, onLine }) => {
    const argv = resolveOpCommand(options.table, op, options.vars);
    const env = { ...(options.env ?? process.env), NIXFLEET_OP: op };
    return runProcess(argv, { onLine, stopGraceMs: options.stopGraceMs, env, ...(options.cwd !== undefined ? { cwd: options.cwd } : {}) });
  };
}

export interface RunProcessOptions {
  onLine(line: string, stream: OutputStream): void;
  stopGraceMs: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** How long output may keep flowing after the process exited (a grandchild holding the pipe). */
const OUTPUT_AFTER_EXIT_MS = 2000;
/** How often a stopped op's process group is checked for members left. */
const GROUP_POLL_MS = 25;
/** The exit code reported for an op our stop() ended by signal, as the original agent does. */
export const STOPPED_EXIT_CODE = 130;

export function runProcess(argv: readonly string[], options: RunProcessOptions): RunningOp {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('runProcess needs a command');
  // detached: the child leads a new process group, so -pid reaches it and all it started.
  const child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: options.env, cwd: options.cwd });
  const pid = child.pid ?? null;
  const splitters = {
    stdout: new LineSplitter((line) => options.onLine(line, 'stdout')),
    stderr: new LineSplitter((line) => options.onLine(line, 'stderr')),
  };
  child.stdout.on('data', (chunk: Buffer) => splitters.stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => splitters.stderr.push(chunk));

  let stopped = false;
  let stopAt = 0;
  const remainingGrace = () => Math.max(0, stopAt + options.stopGraceMs - Date.now());
  let settled = false;
  let killTimer: ReturnType<typeof setTimeout> | null = null;
  let afterExitTimer: ReturnType<typeof setTimeout> | null = null;
  let resolveDone!: (exit: OpExit) => void;
  const done = new Promise<OpExit>((resolve) => (resolveDone = resolve));

  const signal = (name: NodeJS.Signals): void => {
    if (pid !== null) signalGroup(pid, name);
  };
  const groupAlive = (): boolean => pid !== null && groupRunning(pid);

  const settle = (exit: OpExit): void => {
    if (settled) return;
    settled = true;
    if (afterExitTimer) clearTimeout(afterExitTimer);
    splitters.stdout.end();
    splitters.stderr.end();
    if (killTimer) clearTimeout(killTimer);
    // A stop ends the whole group: members still there (dying, or ignoring SIGTERM) are awaited
    // until the grace ends and then get the SIGKILL, before the op is reported ended.
    if (stopped) awaitGroupGone(() => resolveDone(exit));
    else resolveDone(exit);
  };

  const awaitGroupGone = (then: () => void): void => {
    if (!groupAlive()) return then();
    if (remainingGrace() === 0) {
      signal('SIGKILL');
      return then();
    }
    setTimeout(() => awaitGroupGone(then), Math.min(GROUP_POLL_MS, remainingGrace()));
  };

  const exitOf = (code: number | null, killedBy: NodeJS.Signals | null): OpExit => {
    if (code !== null) return { exitCode: code, signal: null, stopped };
    const number = killedBy ? (constants.signals[killedBy] ?? 0) : 0;
    const exitCode = stopped ? STOPPED_EXIT_CODE : 128 + number;
    return { exitCode, signal: killedBy, stopped, message: stopped ? `stopped (${killedBy})` : `killed by ${killedBy}` };
  };

  child.on('error', (error) => {
    // Only a failed spawn ends the op here; a failed kill() of a live child is not an exit.
    if (pid === null) settle({ exitCode: 127, signal: null, stopped, message: `cannot run ${file}: ${error.message}` });
  });
  child.on('exit', (code, killedBy) => {
    const exit = exitOf(code, killedBy);
    // Normally 'close' follows at once; a grandchild holding stdout open must not hold the op.
    afterExitTimer = setTimeout(() => {
      child.stdout.destroy();
      child.stderr.destroy();
      settle(exit);
    }, OUTPUT_AFTER_EXIT_MS);
  });
  child.on('close', (code, killedBy) => {
    if (pid !== null) settle(exitOf(code, killedBy));
  });

  return {
    pid,
    done,
    stop() {
      if (settled || stopped) return;
      stopped = true;
      stopAt = Date.now();
      signal('SIGTERM');
      killTimer = setTimeout(() => signal('SIGKILL'), options.stopGraceMs);
    },
    kill(name) {
      if (!settled) signal(name);
    },
  };
}
