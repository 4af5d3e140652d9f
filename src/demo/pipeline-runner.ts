// One `do-all` pipeline over a few hosts, as an operator starts it: created with the preset, run
// by the server (stage by stage, dropping the hosts that fail), watched here until it ends. Its
// hosts are reserved meanwhile so the demo's operator leaves them alone; when the demo stops it
// cancels the pipeline, so nothing of it runs on.
import { isTerminalPipelineStatus } from '../protocol/constants.js';
import type { FleetApi } from './api-client.js';
import type { SimClock } from './clock.js';
import type { FleetView } from './fleet-view.js';
import { DEMO_PIPELINE_PREFIX } from './leftovers.js';
import type { Rng } from './random.js';

export interface PipelineDeps {
  api: FleetApi;
  view: FleetView;
  clock: SimClock;
  rng: Rng;
  /** Hosts held by a pipeline; the operator leaves them alone. */
  reserved: Set<string>;
}

/** How often the pipeline's end is looked for (demo time). */
const WATCH_MS = 500;

/** Runs a `do-all` pipeline over `hostIds` to its end, or cancels it when the demo stops. */
export async function runPipeline(deps: PipelineDeps, hostIds: readonly string[]): Promise<void> {
  const { api, view, clock, rng } = deps;
  const id = `${DEMO_PIPELINE_PREFIX}${rng.gitHash(12)}`;
  for (const host of hostIds) deps.reserved.add(host);
  try {
    if (!(await api.startPipeline(id, 'do-all', [...hostIds])).ok) return;
    for (;;) {
      const pipeline = view.state.pipelines.get(id);
      if (pipeline && isTerminalPipelineStatus(pipeline.status)) return;
      if (!(await clock.sleep(WATCH_MS))) {
        await api.cancelPipeline(id);
        return;
      }
    }
  } finally {
    for (const host of hostIds) deps.reserved.delete(host);
  }
}
