// What the demo leaves when it stops: the commands still running on its hosts are stopped
// through the API (their agents, about to close, end them `cancelled`), and its pipelines are
// cancelled (the server runs them; cancelled, they start nothing more). A switch whose agent
// already reported success is left alone: it succeeds when that agent registers again.
import { isTerminalCommandStatus, isTerminalPipelineStatus } from '../protocol/constants.js';
import type { FleetApi } from './api-client.js';
import type { FleetView } from './fleet-view.js';

/** Ids the demo gives its pipelines. */
export const DEMO_PIPELINE_PREFIX = 'pipe-demo-';

/** Returns how many commands and pipelines it ended. */
export async function cancelLeftovers(api: FleetApi, view: FleetView, hostIds: ReadonlySet<string>): Promise<{ commands: number; pipelines: number }> {
  const { commands, pipelines } = view.state;
  const unfinished = [...commands.values()].filter((c) => !isTerminalCommandStatus(c.status) && c.stop_requested_at === null && c.exit_code === null && hostIds.has(c.host_id));
  const ours = [...pipelines.values()].filter((p) => !isTerminalPipelineStatus(p.status) && p.id.startsWith(DEMO_PIPELINE_PREFIX));
  const stopped = await Promise.all(unfinished.map(async (command) => (await api.cancelCommand(command.id)).ok));
  const cancelled = await Promise.all(ours.map(async (pipeline) => (await api.cancelPipeline(pipeline.id)).ok));
  return { commands: stopped.filter(Boolean).length, pipelines: cancelled.filter(Boolean).length };
}
