// One pipeline over a few hosts (by default `do-all`: pull, switch, test), driven through the
// API as an automation would, since the server does not run pipelines itself yet: create it (or
// take over one started elsewhere), start each stage's op on every still-active host with the
// pipeline's id, wait for the agents to finish them, report `current_stage` and per-host status,
// and finish it.
import type { Pipeline, PipelineFields } from '../protocol/schema.js';
import type { FleetApi } from './api-client.js';
import type { SimClock } from './clock.js';
import type { CommandEnd, FleetView } from './fleet-view.js';
import type { DemoOp } from './output-lines.js';
import type { Rng } from './random.js';

type HostStatus = NonNullable<PipelineFields['host_status']>[string];
/** A stage's command on one host, or why the host has none. */
type StageStart = { host: string; command: string; visibleAt: number } | { host: string; command: null; status: HostStatus };

export interface PipelineDeps {
  api: FleetApi;
  view: FleetView;
  clock: SimClock;
  rng: Rng;
  /** Hosts held by a pipeline; the operator leaves them alone. */
  reserved: Set<string>;
  /** Told the id of every pipeline this runner drives, before it exists. */
  claim(pipelineId: string): void;
}

export const DO_ALL_STAGES: readonly DemoOp[] = ['pull', 'switch', 'test'];
/** Demo time a stage waits for its hosts to finish what they were running before it. */
const BUSY_WAIT_MS = 60_000;
const BUSY_POLL_MS = 500;

/**
 * Runs the pipeline to its end (or until the demo stops). Its hosts are reserved for the whole
 * run so no ad-hoc op lands on them between stages. A host whose command fails is `failed` and
 * skipped by the later stages; a host offline when its stage begins is `skipped`.
 * `existing`: a pipeline someone else created, continued from its current stage.
 */
export async function runPipeline(deps: PipelineDeps, hostIds: readonly string[], existing?: Pipeline): Promise<void> {
  const { api, view, clock, rng } = deps;
  const name = existing?.name ?? 'do-all';
  const stages = (existing?.stages ?? DO_ALL_STAGES) as readonly DemoOp[];
  const id = existing?.id ?? `pipe-demo-${rng.gitHash(12)}`;
  deps.claim(id);
  for (const host of hostIds) deps.reserved.add(host);
  try {
    if (!existing && !(await api.startPipeline(id, name, [...hostIds], [...stages])).ok) return;
    const hostnames = hostIds.map((h) => view.state.hosts.get(h)?.hostname ?? h);
    const verb = existing ? 'picked up' : 'started';
    await api.logEvent({ level: 'info', category: 'pipeline', action: name, message: `pipeline ${name} ${verb} on ${hostIds.length} hosts: ${hostnames.join(', ')}`, details: { pipeline_id: id, hosts: hostIds.length } });

    const status = new Map<string, HostStatus>(hostIds.map((h) => [h, carriedOver(existing?.host_status[h])]));
    for (let index = existing?.current_stage ?? 0; index < stages.length; index++) {
      const op = stages[index]!;
      if (!(await clock.sleep(rng.between(500, 1500)))) return;
      const active = hostIds.filter((h) => status.get(h) === 'pending' || status.get(h) === 'success');
      if (active.length === 0) break;
      const busy = () => active.some((h) => view.state.hosts.get(h)?.pending_command != null);
      for (let waited = 0; busy() && waited < BUSY_WAIT_MS; waited += BUSY_POLL_MS) {
        if (!(await clock.sleep(BUSY_POLL_MS))) return;
      }

      // Each host's command, or why it has none: offline (or gone) is `skipped`, a refusal `failed`.
      const started = await Promise.all(
        active.map(async (host): Promise<StageStart> => {
          const res = await api.startCommand(host, op, id);
          if (res.ok && res.body) return { host, command: res.body.command.id, visibleAt: res.body.version };
          const skipped = res.status === 404 || (res.status === 409 && (res.error ?? '').includes('host_offline'));
          return { host, command: null, status: skipped ? 'skipped' : 'failed' };
        }),
      );
      const update: Record<string, HostStatus> = {};
      for (const entry of started) update[entry.host] = entry.command !== null ? 'running' : entry.status;
      for (const [host, value] of Object.entries(update)) status.set(host, value);
      await api.updatePipeline(id, { current_stage: index, host_status: update });

      const running = started.filter((entry): entry is Extract<StageStart, { visibleAt: number }> => entry.command !== null);
      const ends: CommandEnd[] = await Promise.all(running.map((entry) => view.waitForEnd(entry.command, entry.visibleAt)));
      if (ends.includes('stopped')) return;
      const done: Record<string, HostStatus> = {};
      running.forEach((entry, i) => (done[entry.host] = ends[i] === 'success' ? 'success' : 'failed'));
      for (const [host, value] of Object.entries(done)) status.set(host, value);
      if (running.length > 0) await api.updatePipeline(id, { host_status: done });
    }
    if (clock.stopped) return;

    const succeeded = hostIds.filter((h) => status.get(h) === 'success').length;
    const final = succeeded === hostIds.length ? 'complete' : succeeded > 0 ? 'partial' : 'failed';
    await api.finishPipeline(id, final);
    const level = final === 'complete' ? 'success' : final === 'partial' ? 'warning' : 'error';
    const summary = final === 'complete' ? `all ${hostIds.length} hosts succeeded` : `${succeeded} of ${hostIds.length} hosts succeeded`;
    await api.logEvent({ level, category: 'pipeline', action: name, message: `pipeline ${name} ${final}: ${summary}`, details: { pipeline_id: id, succeeded, hosts: hostIds.length } });
  } finally {
    for (const host of hostIds) deps.reserved.delete(host);
  }
}

/** A taken-over pipeline keeps its hosts' results; a host caught mid-stage runs that stage again. */
function carriedOver(status: HostStatus | undefined): HostStatus {
  return status === 'failed' || status === 'skipped' || status === 'success' ? status : 'pending';
}
