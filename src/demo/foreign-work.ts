// Work others start on the demo's hosts (the dashboard's Run and Start pipeline, curl): a real
// agent runs the commands queued for its host, so the demo does too, and drives their pipelines.
import { isTerminalCommandStatus, isTerminalPipelineStatus } from '../protocol/constants.js';
import type { FleetApi } from './api-client.js';
import type { SimClock } from './clock.js';
import type { Pipeline } from '../protocol/schema.js';
import type { HostAgent } from './host-agent.js';
import type { TaskGroup } from './tasks.js';

export interface ForeignWorkDeps {
  api: FleetApi;
  clock: SimClock;
  tasks: TaskGroup;
  agents: ReadonlyMap<string, HostAgent>;
  /** Whether the simulator already drives this pipeline. */
  isClaimed(pipelineId: string): boolean;
  /** Drives a pipeline someone else created over these agents. */
  takeOver(pipeline: Pipeline, agents: HostAgent[]): void;
}

/** Demo time between two looks at the state (and at least a quarter second of real time). */
const POLL_MS = 2000;
const MIN_REAL_POLL_MS = 250;

/** Polls the state and hands each unclaimed command and pipeline on the demo's hosts to them. */
export async function watchForeignWork(deps: ForeignWorkDeps): Promise<void> {
  const { api, clock, tasks, agents } = deps;
  for (;;) {
    if (!(await clock.sleep(Math.max(POLL_MS, MIN_REAL_POLL_MS * clock.speed)))) return;
    const frame = (await api.getState()).body;
    if (!frame || clock.stopped) continue;
    for (const command of frame.payload.commands) {
      const agent = agents.get(command.host_id);
      if (!agent || isTerminalCommandStatus(command.status) || agent.hasHandled(command.id)) continue;
      if (agent.busy || !agent.registered || !agent.online) continue; // its agent picks it up later
      void tasks.spawn(`${command.op} ${command.id} on ${agent.id}`, async () => {
        await agent.runCommand(command.op, command.pipeline_id, command.id);
      });
    }
    for (const pipeline of frame.payload.pipelines) {
      if (isTerminalPipelineStatus(pipeline.status) || deps.isClaimed(pipeline.id)) continue;
      const members = pipeline.hosts.map((id) => agents.get(id));
      // Only pipelines entirely over demo hosts, and not while another pipeline holds one of them.
      if (members.some((a) => a === undefined || a.reservedBy !== null)) continue;
      deps.takeOver(pipeline, members as HostAgent[]);
    }
  }
}
