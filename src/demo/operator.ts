// The demo's operator at the dashboard, through the HTTP API: every few seconds an op on an idle
// online host (a pull-switch where the host's git is behind, a switch where its system is), and
// now and then a Stop of one of its own long ops (never of what someone else started), so the
// whole command lifecycle shows. It only reads the fleet (FleetView) and asks; the hosts' agents
// do the work.
import { isTerminalCommandStatus } from '../protocol/constants.js';
import type { Command, Host } from '../protocol/schema.js';
import type { FleetApi } from './api-client.js';
import type { SimClock } from './clock.js';
import type { FleetView } from './fleet-view.js';
import type { DemoOp } from './output-lines.js';
import type { Rng } from './random.js';

export interface OperatorDeps {
  api: FleetApi;
  view: FleetView;
  clock: SimClock;
  rng: Rng;
  /** The demo's hosts. */
  hostIds: ReadonlySet<string>;
  /** Hosts a pipeline holds: left alone. */
  reserved: ReadonlySet<string>;
}

const AD_HOC_OPS: Record<DemoOp, number> = { test: 30, switch: 20, pull: 20, 'pull-switch': 15, rollback: 5, restart: 8, reboot: 2, stop: 0 };
/** Ops long enough to be worth stopping. */
const STOPPABLE: readonly string[] = ['switch', 'pull-switch', 'test', 'rollback'];
/** Chance per round that the operator stops one of them: about one Stop every two minutes of a 12-host fleet. */
const STOP_CHANCE = 0.04;
/** Demo time an op runs before the operator considers it long. */
const LONG_AFTER_MS = 8000;

/** Runs until the demo stops. */
export async function operatorLoop(deps: OperatorDeps): Promise<void> {
  const { clock, rng } = deps;
  /** The commands it started, while they run. */
  const mine = new Set<string>();
  const n = deps.hostIds.size;
  // A larger fleet gets more hands: the pace per host stays about the same.
  const spacing = Math.min(1, Math.sqrt(12 / n));
  const maxConcurrent = Math.max(1, Math.ceil(n / 3));
  if (!(await clock.sleep(rng.between(500, 2000)))) return;
  for (;;) {
    await startOne(deps, maxConcurrent, mine);
    if (rng.chance(STOP_CHANCE)) await stopOne(deps, mine);
    if (!(await clock.sleep(rng.between(2000, 7000) * spacing))) return;
  }
}

/** Hosts of the demo that are online, run nothing and are not held by a pipeline. */
export function idleHosts(deps: Pick<OperatorDeps, 'view' | 'hostIds' | 'reserved'>): Host[] {
  return [...deps.view.state.hosts.values()].filter((h) => deps.hostIds.has(h.id) && h.status === 'online' && h.pending_command === null && !deps.reserved.has(h.id));
}

async function startOne(deps: OperatorDeps, maxConcurrent: number, mine: Set<string>): Promise<void> {
  const adHoc = unfinishedAdHoc(deps);
  for (const id of mine) if (!adHoc.some((c) => c.id === id)) mine.delete(id);
  const idle = idleHosts(deps);
  if (idle.length === 0 || adHoc.length >= maxConcurrent) return;
  const host = deps.rng.pick(idle);
  const started = await deps.api.startCommand(host.id, suggestOp(host, deps.rng));
  if (started.body) mine.add(started.body.command.id);
}

/** Stops one of its long-running ops (202): its agent ends the process and the command ends `cancelled`. */
async function stopOne(deps: OperatorDeps, mine: ReadonlySet<string>): Promise<void> {
  const now = Date.now();
  const long = unfinishedAdHoc(deps).filter(
    (c) => mine.has(c.id) && c.status === 'running' && STOPPABLE.includes(c.op) && c.stop_requested_at === null && c.exit_code === null && c.started_at !== null && (now - Date.parse(c.started_at)) * deps.clock.speed > LONG_AFTER_MS,
  );
  if (long.length > 0) await deps.api.cancelCommand(deps.rng.pick(long).id);
}

function unfinishedAdHoc(deps: OperatorDeps): Command[] {
  return [...deps.view.state.commands.values()].filter((c) => !isTerminalCommandStatus(c.status) && c.pipeline_id === null && deps.hostIds.has(c.host_id));
}

/** What an operator would run on this host, judging by its checks. */
export function suggestOp(host: Host, rng: Rng): DemoOp {
  if (host.compartments.git.status === 'outdated' && rng.chance(0.7)) return rng.chance(0.6) ? 'pull-switch' : 'pull';
  if (host.compartments.system.status === 'outdated' && rng.chance(0.7)) return 'switch';
  const op = rng.weighted(AD_HOC_OPS);
  return op === 'rollback' && host.host_type === 'macos' ? 'switch' : op;
}
