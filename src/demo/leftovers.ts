// What the demo leaves when it stops: the commands still running on its hosts are stopped
// through the API (their agents, about to close, end them `cancelled`), and the pipelines it
// drives are finished `cancelled`, since nothing else would finish them. A switch whose agent
// already reported success is left alone: it succeeds when that agent registers again.
import { isTerminalCommandStatus, isTerminalPipelineStatus } from '../protocol/constants.js';
import type { FleetApi } from './api-client.js';
import type { FleetView } from './fleet-view.js';

/** Returns how many commands and pipelines it ended. */
export async function cancelLeftovers(api: FleetApi, view: FleetView, hostIds: ReadonlySet<string>, claimed: ReadonlySet<string>, reason: string): Promise<{ commands: number; pipelines: number }> {
  const { commands, pipelines } = view.state;
  const unfinished = [...commands.values()].filter((c) => !isTerminalCommandStatus(c.status) && c.stop_requested_at === null && c.exit_code === null && hostIds.has(c.host_id));
  const driven = [...pipelines.values()].filter((p) => !isTerminalPipelineStatus(p.status) && claimed.has(p.id));
  const stopped = await Promise.all(unfinished.map(async (command) => (await api.cancelCommand(command.id)).ok));
  const finished = await Promise.all(
    driven.map(async (pipeline) => {
      const open = Object.entries(pipeline.host_status).filter(([, status]) => status === 'pending' || status === 'running');
      if (open.length > 0) await api.updatePipeline(pipeline.id, { host_status: Object.fromEntries(open.map(([host]) => [host, 'skipped' as const])) });
      if (!(await api.finishPipeline(pipeline.id, 'cancelled')).ok) return false;
      await api.logEvent({ level: 'warning', category: 'pipeline', action: pipeline.name, message: `pipeline ${pipeline.name} cancelled: ${reason}`, details: { pipeline_id: pipeline.id } });
      return true;
    }),
  );
  return { commands: stopped.filter(Boolean).length, pipelines: finished.filter(Boolean).length };
}
