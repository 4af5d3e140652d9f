// Pipelines others create over the demo's hosts (the dashboard's Start pipeline, curl, or an
// earlier demo run that was killed): the server does not run pipelines yet, so the demo drives
// them as it drives its own. Commands others start need nothing from the demo: the agents run them.
import { isTerminalPipelineStatus } from '../protocol/constants.js';
import type { Pipeline } from '../protocol/schema.js';
import type { SimClock } from './clock.js';
import type { FleetView } from './fleet-view.js';

export interface ForeignWorkDeps {
  view: FleetView;
  clock: SimClock;
  /** The demo's hosts. */
  hostIds: ReadonlySet<string>;
  /** Hosts a pipeline already holds. */
  reserved: ReadonlySet<string>;
  /** Whether the demo already drives this pipeline. */
  isClaimed(pipelineId: string): boolean;
  /** Drives a pipeline someone else created. */
  takeOver(pipeline: Pipeline): void;
}

/** Demo time between two looks at the state (and at least a quarter second of real time). */
const LOOK_EVERY_MS = 2000;
const MIN_REAL_LOOK_MS = 250;

/** Looks at the fleet now and then and takes over each unclaimed pipeline over demo hosts only. */
export async function watchForeignPipelines(deps: ForeignWorkDeps): Promise<void> {
  const { view, clock } = deps;
  while (await clock.sleep(Math.max(LOOK_EVERY_MS, MIN_REAL_LOOK_MS * clock.speed))) {
    for (const pipeline of view.state.pipelines.values()) {
      if (isTerminalPipelineStatus(pipeline.status) || deps.isClaimed(pipeline.id)) continue;
      // Not while another pipeline holds one of its hosts: it is picked up once they are free.
      if (pipeline.hosts.some((id) => !deps.hostIds.has(id) || deps.reserved.has(id))) continue;
      deps.takeOver(pipeline);
    }
  }
}
