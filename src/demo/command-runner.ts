// One command's life over the API, as an agent reports it: start it, log the start, stream its
// output in chunks every 100-500 ms, finish it (success, error or timeout) and log the end.
import type { FleetApi } from './api-client.js';
import type { SimClock } from './clock.js';
import type { DemoOp, Outcome } from './output-lines.js';
import type { Rng } from './random.js';

/**
 * How a run ended: the command's own outcome; `busy` (409: the host runs another command);
 * `failed` (the API refused or was unreachable); `cancelled` (finished by someone else);
 * `stopped` (the simulator stopped mid-run, the command is left to the stop's clean-up).
 */
export type CommandResult = Outcome | 'busy' | 'failed' | 'cancelled' | 'stopped';

export interface CommandSpec {
  hostId: string;
  hostname: string;
  op: DemoOp;
  pipelineId: string | null;
  outcome: Outcome;
  lines: readonly string[];
  /** A command someone else started on this host (dashboard, curl): run it instead of starting one. */
  existingId?: string;
}

export interface CommandHooks {
  /** Called once the command exists (its id known), before the first output. */
  started(commandId: string): Promise<void>;
}

export interface RunnerDeps {
  api: FleetApi;
  clock: SimClock;
  rng: Rng;
}

export async function runCommand(deps: RunnerDeps, spec: CommandSpec, hooks: CommandHooks): Promise<CommandResult> {
  const { api, clock, rng } = deps;
  let id = spec.existingId;
  if (id === undefined) {
    const started = await api.startCommand(spec.hostId, spec.op, spec.pipelineId);
    if (!started.ok || !started.body) return started.status === 409 ? 'busy' : 'failed';
    id = started.body.command.id;
  }
  const details = { command_id: id, pipeline_id: spec.pipelineId };
  await api.logEvent({ level: 'info', category: 'command', host_id: spec.hostId, action: spec.op, message: `${spec.op} started on ${spec.hostname}`, details });
  await hooks.started(id);

  let simulatedMs = 0;
  const wait = async (ms: number) => {
    simulatedMs += ms;
    return clock.sleep(ms);
  };
  // Checks and git print line by line; builds print in bursts.
  const burst = spec.op === 'test' || spec.op === 'pull' ? 2 : 4;
  for (const chunk of chunks(spec.lines, rng, burst)) {
    if (!(await wait(rng.between(100, 500)))) return 'stopped';
    const sent = await api.appendOutput(id, chunk);
    if (sent.status === 409 || sent.status === 404) return 'cancelled';
  }
  // A command that times out hangs silently until the agent gives up on it.
  if (spec.outcome === 'timeout' && !(await wait(rng.between(3000, 6000)))) return 'stopped';
  if (clock.stopped) return 'stopped';

  const exitCode = spec.outcome === 'success' ? 0 : spec.outcome === 'error' ? 1 : null;
  const finished = await api.finishCommand(id, spec.outcome, exitCode);
  if (!finished.ok) return finished.status === 409 || finished.status === 404 ? 'cancelled' : 'failed';

  const seconds = Math.round(simulatedMs / 100) / 10;
  const end = {
    success: { level: 'success', message: `${spec.op} on ${spec.hostname} succeeded in ${seconds}s` },
    error: { level: 'error', message: `${spec.op} on ${spec.hostname} failed with exit code 1` },
    timeout: { level: 'warning', message: `${spec.op} on ${spec.hostname} timed out after ${seconds}s` },
  } as const;
  await api.logEvent({ ...end[spec.outcome], category: 'command', host_id: spec.hostId, action: spec.op, details: { ...details, exit_code: exitCode, seconds } });
  return spec.outcome;
}

/** Groups lines into chunks of 1..`burst` lines, the way a pipe hands them to the agent. */
function chunks(lines: readonly string[], rng: Rng, burst: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    const n = rng.int(1, burst);
    out.push(lines.slice(i, i + n).join(''));
    i += n;
  }
  return out;
}
