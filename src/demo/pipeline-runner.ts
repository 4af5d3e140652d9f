// One pipeline over a few hosts (by default `do-all`: pull, switch, test): create it (or take
// over one started elsewhere), run each stage's op on every still-active host in parallel with
// the pipeline's id, report `current_stage` and per-host status, and finish it.
import type { Pipeline, PipelineFields } from '../protocol/schema.js';
import type { FleetApi } from './api-client.js';
import type { SimClock } from './clock.js';
import type { HostAgent } from './host-agent.js';
import type { DemoOp } from './output-lines.js';
import type { Rng } from './random.js';

type HostStatus = NonNullable<PipelineFields['host_status']>[string];

export interface PipelineDeps {
  api: FleetApi;
  clock: SimClock;
  rng: Rng;
  /** Told the id of every pipeline this runner drives, as soon as it is known. */
  claim(pipelineId: string): void;
}

export const DO_ALL_STAGES: readonly DemoOp[] = ['pull', 'switch', 'test'];
/** How long a stage waits for its hosts to finish what they were running before it. */
const BUSY_WAIT_MS = 60_000;

/**
 * Runs the pipeline to its end (or until the simulator stops). The agents are reserved for the
 * whole run so no ad-hoc command lands on them between stages. A host whose command fails is
 * `failed` and skipped by the later stages; a host offline when its stage begins is `skipped`.
 * `existing`: a pipeline someone else created over these hosts, continued from its current stage.
 */
export async function runPipeline(deps: PipelineDeps, agents: HostAgent[], existing?: Pipeline): Promise<void> {
  const { api, clock, rng } = deps;
  const name = existing?.name ?? 'do-all';
  const stages = (existing?.stages ?? DO_ALL_STAGES) as readonly DemoOp[];
  for (const agent of agents) agent.reservedBy = existing?.id ?? name;
  try {
    let id = existing?.id;
    if (id === undefined) {
      const created = await api.startPipeline(name, agents.map((a) => a.id), [...stages]);
      if (!created.ok || !created.body) return;
      id = created.body.pipeline.id;
    }
    deps.claim(id);
    const hostList = agents.map((a) => a.hostname).join(', ');
    const verb = existing ? 'picked up' : 'started';
    await api.logEvent({ level: 'info', category: 'pipeline', action: name, message: `pipeline ${name} ${verb} on ${agents.length} hosts: ${hostList}`, details: { pipeline_id: id, hosts: agents.length } });

    const status = new Map<HostAgent, HostStatus>(agents.map((a) => [a, carriedOver(existing?.host_status[a.id])]));
    for (let index = existing?.current_stage ?? 0; index < stages.length; index++) {
      const op = stages[index]!;
      if (!(await clock.sleep(rng.between(500, 1500)))) return;
      const active = agents.filter((a) => status.get(a) === 'pending' || status.get(a) === 'success');
      if (active.length === 0) break;
      for (let waited = 0; active.some((a) => a.busy) && waited < BUSY_WAIT_MS; waited += 500) {
        if (!(await clock.sleep(500))) return;
      }
      const update: Record<string, HostStatus> = {};
      for (const agent of active) {
        const next: HostStatus = agent.online ? 'running' : 'skipped';
        status.set(agent, next);
        update[agent.id] = next;
      }
      await api.updatePipeline(id, { current_stage: index, host_status: update });
      const running = active.filter((a) => status.get(a) === 'running');
      const results = await Promise.all(running.map((agent) => agent.runCommand(op, id)));
      if (clock.stopped || results.includes('stopped')) return;
      const done: Record<string, HostStatus> = {};
      running.forEach((agent, i) => {
        const result: HostStatus = results[i] === 'success' ? 'success' : 'failed';
        status.set(agent, result);
        done[agent.id] = result;
      });
      if (running.length > 0) await api.updatePipeline(id, { host_status: done });
    }
    if (clock.stopped) return;

    const succeeded = agents.filter((a) => status.get(a) === 'success').length;
    const final = succeeded === agents.length ? 'complete' : succeeded > 0 ? 'partial' : 'failed';
    await api.finishPipeline(id, final);
    const level = final === 'complete' ? 'success' : final === 'partial' ? 'warning' : 'error';
    const summary = final === 'complete' ? `all ${agents.length} hosts succeeded` : `${succeeded} of ${agents.length} hosts succeeded`;
    await api.logEvent({ level, category: 'pipeline', action: name, message: `pipeline ${name} ${final}: ${summary}`, details: { pipeline_id: id, succeeded, hosts: agents.length } });
  } finally {
    for (const agent of agents) agent.reservedBy = null;
  }
}

/** A taken-over pipeline keeps its hosts' results; a host caught mid-stage runs that stage again. */
function carriedOver(status: HostStatus | undefined): HostStatus {
  return status === 'failed' || status === 'skipped' || status === 'success' ? status : 'pending';
}
